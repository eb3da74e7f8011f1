#!/usr/bin/env python3
# run-suite: about 5 s
"""One local user cannot make hitld hold more of its unfinished input lines
than hitld(8) LIMITS allows (socket.max_input_mb_per_uid, 8 MiB).

A non-admin uid opens its 32 connections (socket.max_connections_per_uid's
default) and on each sends a request line just under the maximum message
size (socket.max_message_bytes, 1 MiB) that it never finishes: without a
per-uid bound on input hitld holds all 32 partial lines, 32 MiB for one
uid (512 MiB with the largest message size, and max_connections x 16 MiB
in all). With the bound, the uid's connection holding the most buffered
input is answered -32600 {"reason":"message too large"} and closed, so the
partial lines hitld still holds for that uid add up to at most the bound.
Meanwhile another uid's large line (half the message size, sent in two
halves around the attack) and root's status calls are served.

Then the total (socket.max_input_mb_total): two uids, each under its own
bound, together past the total; the connections holding the most are
refused until the rest fits.

Measured: the bytes on the connections hitld kept open (every byte sent on
them has been read by hitld: the client's send queue is empty) and, in
the plain build, hitld's resident memory (VmRSS) before and after.
"""
import fcntl
import json
import os
import socket
import struct
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SANITIZER, SLOW, HitldTestCase, main  # noqa: E402
from test_hostile import CHILD_CLOSE, child, collect, rss_kb, stopped  # noqa: E402

ATTACK_UID = 65531
VICTIM_UID = 65530
CONNS = 32                       # socket.max_connections_per_uid's default
MAX_MESSAGE = 1024 * 1024        # socket.max_message_bytes's default
PARTIAL = MAX_MESSAGE - 1024     # just under it: never "message too large" on its own
INPUT_PER_UID = 8 * 1024 * 1024  # socket.max_input_mb_per_uid's default (hitld(8) LIMITS)
# hitld(8): besides the bound, each connection's buffer may hold 128 KiB more
# than its input; and 6 MiB for the heap (freed buffers are not all given back).
RSS_SLACK = CONNS * 128 * 1024 + 6 * 1024 * 1024


def unread(sock):
    """Bytes sent on sock that hitld has not read yet."""
    return struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0" * 4))[0]


def partial_line(size, rid=1):
    head = b'{"jsonrpc":"2.0","id":%d,"method":"hello","params":{"pad":"' % rid
    return head + b"x" * (size - len(head))


class Held:
    """One attacking connection: what was sent, what came back, whether it is closed."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.sent = 0
        self.reply = b""
        self.closed = False

    def poll(self, data):
        """Sends more of data and reads what hitld says; returns True while busy."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    break
                self.reply += chunk
        except BlockingIOError:
            pass
        except ConnectionResetError:
            self.closed = True
        if self.closed:
            return False
        if self.sent < len(data):
            try:
                self.sent += self.sock.send(data[self.sent:self.sent + 65536])
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                return False
            return True
        return unread(self.sock) > 0

    def refused(self):
        return self.closed or b'"error"' in self.reply

    def errors(self):
        out = []
        for line in self.reply.split(b"\n"):
            if line:
                msg = json.loads(line)
                out.append([msg.get("error", {}).get("code"),
                            (msg.get("error", {}).get("data") or {}).get("reason")])
        return out


def hold_partial_lines(path, ctl_fd, ready_fd, n, size, bound, seconds):
    """As ATTACK_UID: n connections, each sent `size` bytes of a line never
    finished. Waits (at most `seconds`) until hitld has read everything sent
    on the connections it kept open and the bytes on them are within bound."""
    data = partial_line(size)
    conns = [Held(path) for _ in range(n)]
    deadline = time.monotonic() + seconds
    idle_since = None
    while time.monotonic() < deadline:
        busy = [c.poll(data) for c in conns]
        held = sum(c.sent for c in conns if not c.closed)
        if any(busy):
            idle_since = None
        elif held <= bound:
            break
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 5 * SLOW:
            break    # everything was read and hitld closes nothing more
        time.sleep(0.002)
    held = sum(c.sent for c in conns if not c.closed)
    os.write(ready_fd, b"x")
    stopped(ctl_fd, 600)
    for c in conns:
        c.poll(data)
    # held_end: after what other uids did meanwhile (a refusal is sent the moment it happens).
    result = {"held": held, "open": sum(not c.closed for c in conns),
              "held_end": sum(c.sent for c in conns if not c.refused()),
              "errors": [e for c in conns for e in c.errors()]}
    for c in conns:
        c.sock.close()
    return result


def finish_late(path, ctl_fd, ready_fd, size):
    """As VICTIM_UID: half of a large line, (signal) then the rest; the reply
    must come and the connection must stay open for a second call."""
    data = partial_line(size) + b'"}}\n'
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60 * SLOW)
    s.connect(path)
    s.sendall(data[:size // 2])
    os.write(ready_fd, b"x")
    stopped(ctl_fd, 600)
    s.sendall(data[size // 2:])
    s.sendall(b'{"jsonrpc":"2.0","id":2,"method":"status"}\n')
    buf = b""
    while buf.count(b"\n") < 2:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return {"replies": [json.loads(x) for x in buf.split(b"\n") if x]}


class PartialLines(HitldTestCase):
    def test_one_uids_unfinished_lines_stay_within_its_input_bound(self):
        path = self.hitld.socket
        pid = self.hitld.proc.pid
        for _ in range(20):
            self.c.call("status")
        rss_before, _ = rss_kb(pid)
        ctl_r, ctl_w = os.pipe()
        victim_ctl_r, victim_ctl_w = os.pipe()
        kids = {}
        try:
            ready_r, ready_w = os.pipe()
            CHILD_CLOSE[:] = [ctl_w, victim_ctl_w, ready_r]
            kids["victim"] = child(VICTIM_UID, finish_late, path, victim_ctl_r, ready_w, MAX_MESSAGE // 2)
            os.close(ready_w)
            self.assertTrue(stopped(ready_r, 60 * SLOW), "victim not ready")
            os.close(ready_r)
            ready_r, ready_w = os.pipe()
            CHILD_CLOSE[:] = [ctl_w, victim_ctl_w, ready_r]
            kids["attack"] = child(ATTACK_UID, hold_partial_lines, path, ctl_r, ready_w,
                                   CONNS, PARTIAL, INPUT_PER_UID, 60 * SLOW)
            os.close(ready_w)
            self.assertTrue(stopped(ready_r, 120 * SLOW), "attack not done")
            os.close(ready_r)
            for _ in range(5):
                self.c.call("status")
            rss_after, _ = rss_kb(pid)
            os.close(victim_ctl_w)
            victim_ctl_w = None
            victim = collect(*kids.pop("victim"))
        finally:
            os.close(ctl_w)
            if victim_ctl_w is not None:
                os.close(victim_ctl_w)
            results = {k: collect(*v) for k, v in kids.items()}
            os.close(ctl_r)
            os.close(victim_ctl_r)
        attack = results["attack"]
        extra = (rss_after - rss_before) * 1024
        print("\n%d connections of one uid each sent %d bytes of a line never finished: hitld "
              "kept %d open holding %d bytes (bound %d); RSS %d KiB before, %d KiB after "
              "(+%.1f MiB, bound + slack %.1f MiB)"
              % (CONNS, PARTIAL, attack.get("open", -1), attack.get("held", -1), INPUT_PER_UID,
                 rss_before, rss_after, extra / 2**20, (INPUT_PER_UID + RSS_SLACK) / 2**20),
              file=sys.stderr)
        self.assertNotIn("error", attack, attack)
        self.assertNotIn("error", victim, victim)
        # The other uid's large line was answered (hello takes no "pad": any
        # answer but "message too large") and its connection stayed open.
        replies = victim["replies"]
        self.assertEqual([r.get("id") for r in replies], [1, 2], replies)
        self.assertNotEqual((replies[0].get("error", {}).get("data") or {}).get("reason"),
                            "message too large", replies)
        self.assertIn("result", replies[1], replies)
        # The uid's partial lines hitld still holds fit the bound...
        self.assertLessEqual(attack["held"], INPUT_PER_UID, attack)
        # ... the others were refused the way an over-long line is.
        self.assertGreater(len(attack["errors"]), 0, attack)
        for e in attack["errors"]:
            self.assertEqual(e, [-32600, "message too large"], attack)
        if not SANITIZER:
            # ASan's quarantine keeps freed memory: RSS there says nothing.
            self.assertLess(extra, INPUT_PER_UID + RSS_SLACK)


class PartialLinesOfSeveralUids(HitldTestCase):
    # 1 MiB per uid and in all; 256 KiB lines keep the per-uid floor (640 KiB) under it.
    CONFIG = {"socket": {"max_message_bytes": 256 * 1024, "max_input_mb_per_uid": 1,
                         "max_input_mb_total": 1}}

    def test_the_total_bound_holds_across_uids(self):
        path = self.hitld.socket
        ctl_r, ctl_w = os.pipe()
        kids, size = {}, 230 * 1024
        try:
            # Three lines of one uid (690 KiB, under its own bound), then three of
            # another: each uid stays under 1 MiB, together they would hold 1.35 MiB.
            for uid in (ATTACK_UID, VICTIM_UID):
                ready_r, ready_w = os.pipe()
                CHILD_CLOSE[:] = [ctl_w, ready_r]
                kids[uid] = child(uid, hold_partial_lines, path, ctl_r, ready_w, 3, size,
                                  1024 * 1024, 60 * SLOW)
                os.close(ready_w)
                self.assertTrue(stopped(ready_r, 120 * SLOW), "uid %d not done" % uid)
                os.close(ready_r)
            self.c.call("status")
        finally:
            os.close(ctl_w)
            results = {k: collect(*v) for k, v in kids.items()}
            os.close(ctl_r)
        for v in results.values():
            self.assertNotIn("error", v, results)
        held = sum(v["held_end"] for v in results.values())
        errors = [e for v in results.values() for e in v["errors"]]
        print("\ntwo uids, 3 unfinished lines of %d bytes each: hitld kept %d bytes (bound %d), "
              "refused %d" % (size, held, 1024 * 1024, len(errors)), file=sys.stderr)
        self.assertLessEqual(held, 1024 * 1024, results)
        self.assertEqual(len(errors), 2, results)
        for e in errors:
            self.assertEqual(e, [-32600, "message too large"], results)


if __name__ == "__main__":
    main()
