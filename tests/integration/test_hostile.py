#!/usr/bin/env python3
"""Hostile local clients (PROTOCOL.md §1, §5): every bad input gets the error
the protocol names and changes nothing; and while a crowd of bad clients
attacks at once (10,000 rapid connects, a thousand idle connections,
slowloris, clients that never read, random bytes, malformed input of every
kind), a well-behaved client's status calls keep succeeding with a p99 under
50 ms and hitld's memory stays bounded.

Who runs as whom: the well-behaved client is root (this process). The
attackers are forked children that drop to other uids: the thousand idle
connections come from uid 65534, every other attacker from uid 65533. The
per-uid cap (socket.max_connections_per_uid, raised to its maximum 1024 for
this test) then bounds each attacking uid on its own and never counts the
well-behaved client's connection, exactly as it would on a real host where a
misbehaving program runs under its own uid. The idle holder opens four
connections past the cap and checks they are refused with -32003.
socket.max_connections is raised to 4096 and RLIMIT_NOFILE to at least 8192
(inherited by hitld) so that the total fits.
"""
import json
import os
import random
import resource
import select
import socket
import statistics
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SANITIZER, SLOW, HitldTestCase, RpcError, main, single_select_request  # noqa: E402

MAX_LINE = 1024 * 1024
IDLE_UID = 65534
ATTACK_UID = 65533
PER_UID_CAP = 1024
IDLE_CONNECTIONS = 1000
RAPID_CONNECTS = 10000
P99_LIMIT_MS = 50.0
RSS_GROWTH_LIMIT_KB = 64 * 1024


def rpc_line(method, params=None, rid=1):
    msg = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode() + b"\n"


def raise_fd_limit(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def rss_kb(pid):
    """(VmRSS, VmHWM) of pid in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


class Raw:
    """A bare connection for sending bytes and reading reply lines."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def at_eof(self):
        """True if the daemon closed the connection (after any pending lines)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# the bad inputs, each with the error PROTOCOL.md names

def deep(n):
    return b'{"jsonrpc":"2.0","id":1,"method":"hello","params":' + b'{"a":' * n + b"1" + b"}" * n + b"}\n"


# (name, bytes, expected code, connection stays usable)
BAD_INPUTS = [
    ("not JSON", b'{"jsonrpc":"2.0","id":1,"method":\n', -32700, True),
    ("truncated object", b'{"jsonrpc":"2.0","id":1,"method":"hello"\n', -32700, True),
    ("trailing garbage", b'{"jsonrpc":"2.0","id":1,"method":"hello"} x\n', -32700, True),
    ("single quotes", b"{'jsonrpc':'2.0','id':1,'method':'hello'}\n", -32700, True),
    ("invalid UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":"\xff\xfe"}}\n', -32700, True),
    ("overlong UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":"\xc0\xaf"}}\n', -32700, True),
    ("UTF-16 surrogate in UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":"\xed\xa0\x80"}}\n',
     -32700, True),
    ("NUL bytes", b"\x00\x00\x00\n", -32700, True),
    ("batch", b'[{"jsonrpc":"2.0","id":1,"method":"hello"},{"jsonrpc":"2.0","id":2,"method":"hello"}]\n',
     -32600, True),
    ("empty batch", b"[]\n", -32600, True),
    ("not an object", b'"hello"\n', -32600, True),
    ("no jsonrpc", b'{"id":1,"method":"hello"}\n', -32600, True),
    ("jsonrpc 1.0", b'{"jsonrpc":"1.0","id":1,"method":"hello"}\n', -32600, True),
    ("method not a string", b'{"jsonrpc":"2.0","id":1,"method":42}\n', -32600, True),
    ("id an object", b'{"jsonrpc":"2.0","id":{"a":1},"method":"hello"}\n', -32600, True),
    ("params a string", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":"x"}\n', -32600, True),
    ("params by position", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":[1]}\n', -32602, True),
    ("unknown method", b'{"jsonrpc":"2.0","id":1,"method":"rm -rf"}\n', -32601, True),
    ("deep nesting (10,000 objects)", deep(10000), -32700, True),
    ("deep nesting (100,000 arrays)", b"[" * 100000 + b"\n", -32700, True),
    # Not JSON (RFC 8259 has no such literals): must not be accepted and
    # passed on to HITL.sh, which would refuse the request later.
    ("NaN", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":NaN}}\n', -32700, True),
    ("Infinity", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":-Infinity}}\n', -32700, True),
    ("NaN as id", b'{"jsonrpc":"2.0","id":NaN,"method":"hello"}\n', -32700, True),
    # Numbers past what a double or a 64-bit integer holds: refused rather
    # than silently changed (a reply must carry the id the client sent).
    ("huge number", b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"client":1e400}}\n', -32700, True),
    ("huge integer id", b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"hello"}\n', -32700, True),
    ("huge negative integer", b'{"jsonrpc":"2.0","id":1,"method":"request.list","params":{"limit":-99999999999999999999999}}\n',
     -32700, True),
    ("huge integer param", b'{"jsonrpc":"2.0","id":1,"method":"request.wait","params":{"id":"r_x","timeout_ms":99999999999999999999999}}\n',
     -32700, True),
    ("over-long line", b"{" + b" " * MAX_LINE + b"}\n", -32600, False),
    ("over-long line without newline", b"x" * (MAX_LINE + 4096), -32600, False),
]


class BadInputs(HitldTestCase):
    def check_one(self, name, data, code, usable):
        r = Raw(self.hitld.socket)
        try:
            r.send(data)
            reply = r.line()
            self.assertIn("error", reply, "%s: %s" % (name, reply))
            self.assertEqual(reply["error"]["code"], code, "%s: %s" % (name, reply))
            self.assertEqual(reply["jsonrpc"], "2.0")
            if code in (-32700, -32600):
                self.assertIn("reason", reply["error"].get("data") or {}, name)
            if code == -32600 and not usable:
                self.assertEqual(reply["error"]["data"]["reason"], "message too large")
                self.assertIsNone(reply["id"])
            if usable:
                r.send(rpc_line("hello", rid=7))
                ok = r.line()
                self.assertEqual(ok.get("id"), 7, "%s: connection not usable after: %s" % (name, ok))
                self.assertIn("result", ok)
            else:
                self.assertTrue(r.at_eof(), "%s: connection stays open" % name)
        finally:
            r.close()

    def test_each_bad_input_gets_the_error_the_protocol_names(self):
        for name, data, code, usable in BAD_INPUTS:
            with self.subTest(name):
                self.check_one(name, data, code, usable)
        # Nothing of it reached the outbox or HITL.sh.
        self.assertEqual(self.c.call("request.list")["requests"], [])
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_a_request_with_nan_in_its_context_is_refused_not_stored(self):
        base = json.dumps(single_select_request(self.loop_id))[:-1]
        for lit in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"99999999999999999999999"):
            with self.subTest(lit.decode()):
                r = Raw(self.hitld.socket)
                try:
                    r.send(b'{"jsonrpc":"2.0","id":1,"method":"request.submit","params":' + base.encode()
                           + b',"context":{"x":' + lit + b"}}}\n")
                    reply = r.line()
                finally:
                    r.close()
                self.assertIn("error", reply, "%s was accepted: %s" % (lit, reply))
                self.assertEqual(reply["error"]["code"], -32700)
        self.assertEqual(self.c.call("request.list")["requests"], [])

    def test_pipelined_requests_are_answered_in_order_with_errors_in_place(self):
        r = Raw(self.hitld.socket)
        try:
            r.send(rpc_line("hello", rid=1) + b"garbage\n" + rpc_line("status", rid=3) + b"[1]\n"
                   + rpc_line("nope", rid=5))
            got = [r.line() for _ in range(5)]
        finally:
            r.close()
        self.assertEqual([g.get("id") for g in got], [1, None, 3, None, 5])
        self.assertEqual([g["error"]["code"] for g in got if "error" in g], [-32700, -32600, -32601])

    def test_notifications_are_not_answered(self):
        r = Raw(self.hitld.socket)
        try:
            r.send(b'{"jsonrpc":"2.0","method":"hello"}\n' + rpc_line("hello", rid=2))
            self.assertEqual(r.line()["id"], 2)
        finally:
            r.close()

    def test_random_bytes_get_one_error_each_and_the_daemon_stays_up(self):
        rng = random.Random(1234)
        alphabet = bytes(b for b in range(256) if b not in b"\n\r\t ")
        lines = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 300))) for _ in range(300)]
        r = Raw(self.hitld.socket)
        try:
            r.send(b"\n".join(lines) + b"\n")
            codes = [r.line()["error"]["code"] for _ in lines]
        finally:
            r.close()
        self.assertTrue(set(codes) <= {-32700, -32600}, set(codes))
        self.assertEqual(self.c.call("hello")["daemon"], "hitld")


class NeverReadingWatcher(HitldTestCase):
    def test_a_watcher_that_never_reads_is_told_overflow_and_cut_off(self):
        """PROTOCOL §4 watch: more than 1,000 events behind -> watch.overflow,
        disconnected; the daemon buffers nothing without bound meanwhile."""
        w = Raw(self.hitld.socket)
        self.addCleanup(w.close)
        w.send(rpc_line("watch", rid=1))
        time.sleep(0.2)
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.c.call("queue.pause")
        rss_before, _ = rss_kb(self.hitld.proc.pid)
        # Submit and cancel: two events each, never more than one live request.
        for i in range(800):
            rid = self.c.call("request.submit", single_select_request(self.loop_id, text="w %d" % i))["id"]
            self.c.call("request.cancel", {"id": rid})
        rss_after, _ = rss_kb(self.hitld.proc.pid)
        msgs = []
        while True:
            try:
                msgs.append(w.line())
            except ConnectionError:
                break
        self.assertEqual(msgs[0].get("result"), {"watching": 0})
        self.assertEqual(msgs[-1].get("method"), "watch.overflow", msgs[-1])
        changed = [m for m in msgs if m.get("method") == "request.changed"]
        self.assertGreaterEqual(len(changed), 1000)
        self.assertLess(len(changed), 1600)
        print("\nnever-reading watcher: %d events delivered, then watch.overflow; RSS %d -> %d KiB"
              % (len(changed), rss_before, rss_after), file=sys.stderr)
        # The daemon is fine and still serving.
        self.assertEqual(self.c.call("status")["queue"]["cancelled"], 800)


# --------------------------------------------------------------------------
# the crowd

CHILD_CLOSE = []   # fds a child must not keep (the control pipe's write end)


def child(uid, fn, *args):
    """Runs fn(*args) in a child process as uid; returns (pid, result fd)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(rfd)
            for fd in CHILD_CLOSE:
                os.close(fd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result = fn(*args)
        except BaseException as e:  # report anything, never return into unittest
            result = {"error": "%s: %s" % (type(e).__name__, e)}
            code = 1
        try:
            os.write(wfd, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    return pid, rfd


def collect(pid, rfd):
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass   # reaped already
    return json.loads(data or b'{"error":"no result"}')


def stopped(ctl_fd, timeout=0):
    r, _, _ = select.select([ctl_fd], [], [], timeout)
    return bool(r)


def attack_idle(path, ctl_fd, ready_fd):
    """Holds IDLE_CONNECTIONS silent connections (and a few past the cap)."""
    socks = []
    extra = PER_UID_CAP - IDLE_CONNECTIONS + 4
    for _ in range(IDLE_CONNECTIONS + extra):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    # The last four are past the cap: one -32003 line, then closed.
    refused = 0
    for s in socks[-4:]:
        s.settimeout(10 * SLOW)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        line = json.loads(data.split(b"\n")[0]) if data else {}
        if line.get("error", {}).get("code") == -32003 and line["error"].get("data", {}).get("limit") == PER_UID_CAP:
            refused += 1
    os.write(ready_fd, b"x")
    stopped(ctl_fd, None)
    # Still open after the whole attack (no idle timeout at 300 s)?
    still_open = 0
    for s in socks[:IDLE_CONNECTIONS]:
        s.setblocking(False)
        try:
            still_open += 1 if s.recv(1) != b"" else 0
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
    for s in socks:
        s.close()
    return {"held": len(socks) - 4, "refused_past_cap": refused, "still_open": still_open}


def attack_rapid(path, ctl_fd, n, seed):
    """n connects as fast as possible: close at once, half a line, or a whole call."""
    rng = random.Random(seed)
    stats = {"connects": 0, "answered": 0, "refused": 0, "errors": 0}
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SLOW)
        try:
            s.connect(path)
            stats["connects"] += 1
            k = rng.random()
            if k < 0.6:
                pass
            elif k < 0.8:
                s.send(b'{"jsonrpc":"2.0","id":1,"meth')
            else:
                s.sendall(rpc_line("hello"))
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                reply = json.loads(data.split(b"\n")[0])
                if "result" in reply:
                    stats["answered"] += 1
                elif reply.get("error", {}).get("code") == -32003:
                    stats["refused"] += 1
                else:
                    stats["errors"] += 1
        except (OSError, ValueError):
            stats["errors"] += 1
        finally:
            s.close()
    return stats


def attack_slowloris(path, ctl_fd, n):
    """n connections each sending a request one byte a second."""
    msg = rpc_line("status")
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    sent = 0
    while not stopped(ctl_fd, 1.0):
        for s in socks:
            try:
                s.send(msg[sent % len(msg):sent % len(msg) + 1])
            except OSError:
                pass
        sent += 1
    for s in socks:
        s.close()
    return {"bytes_each": sent}


def attack_never_reads(path, ctl_fd, n):
    """n connections that pipeline big requests and never read a reply."""
    line = rpc_line("request.list", {"limit": 1000})
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.setblocking(False)
        socks.append(s)
    sent = [0] * n
    closed = [False] * n
    while not stopped(ctl_fd, 0.05):
        for i, s in enumerate(socks):
            if closed[i]:
                continue
            try:
                while True:
                    k = s.send(line)
                    sent[i] += k
                    if k < len(line):
                        break
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = True
    for s in socks:
        s.close()
    return {"bytes_sent": sent, "closed_by_daemon": sum(closed)}


def attack_garbage(path, ctl_fd, seed):
    """Every bad input of BAD_INPUTS and random bytes, over and over; checks each answer."""
    rng = random.Random(seed)
    alphabet = bytes(b for b in range(256) if b not in b"\n\r\t ")
    stats = {"sent": 0, "wrong": []}
    while not stopped(ctl_fd):
        if rng.random() < 0.5:
            name, data, code, _ = rng.choice(BAD_INPUTS)
        else:
            name = "random bytes"
            data = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 2000))) + b"\n"
            code = None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 * SLOW)
        try:
            s.connect(path)
            s.sendall(data)
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            reply = json.loads(buf.split(b"\n")[0])
            got = reply.get("error", {}).get("code")
            ok = got == code if code is not None else got in (-32700, -32600)
            if not ok:
                stats["wrong"].append("%s: %s" % (name, reply))
            stats["sent"] += 1
        except (OSError, ValueError) as e:
            stats["wrong"].append("%s: %s" % (name, e))
        finally:
            s.close()
    stats["wrong"] = stats["wrong"][:10]
    return stats


@unittest.skipUnless(os.geteuid() == 0, "the attackers drop to other uids: needs root")
class Crowd(HitldTestCase):
    CONFIG = {"socket": {"max_connections_per_uid": PER_UID_CAP, "max_connections": 4096},
              "log": {"level": "info"}}

    def setUp(self):
        raise_fd_limit()
        super().setUp()

    def test_a_crowd_of_bad_clients_does_not_starve_a_good_one(self):
        # Something for request.list to chew on: 40 requests of ~2 KB.
        self.c.call("queue.pause")
        for i in range(40):
            self.c.call("request.submit", single_select_request(self.loop_id, text=("x%d " % i) * 500))
        pid = self.hitld.proc.pid
        for _ in range(20):
            self.c.call("status")
        rss_before, _ = rss_kb(pid)

        path = self.hitld.socket
        ctl_r, ctl_w = os.pipe()
        ready_r, ready_w = os.pipe()
        CHILD_CLOSE[:] = [ctl_w, ready_r]
        kids = {}
        try:
            kids["idle"] = child(IDLE_UID, attack_idle, path, ctl_r, ready_w)
            os.close(ready_w)
            ready_w = None
            CHILD_CLOSE[:] = [ctl_w, ready_r]
            # The idle connections first, so that the rest runs against them.
            self.assertTrue(stopped(ready_r, 60 * SLOW), "idle connections not opened")
            kids["rapid1"] = child(ATTACK_UID, attack_rapid, path, ctl_r, RAPID_CONNECTS // 2, 1)
            kids["rapid2"] = child(ATTACK_UID, attack_rapid, path, ctl_r, RAPID_CONNECTS // 2, 2)
            kids["slowloris"] = child(ATTACK_UID, attack_slowloris, path, ctl_r, 16)
            kids["never_reads"] = child(ATTACK_UID, attack_never_reads, path, ctl_r, 4)
            kids["garbage"] = child(ATTACK_UID, attack_garbage, path, ctl_r, 3)

            # The well-behaved client, while the crowd is at it: until both
            # rapid connectors are through, and at least 8 seconds.
            lat, failures, peak = [], [], 0
            t0 = time.monotonic()
            rapid_done = set()
            while True:
                for k in ("rapid1", "rapid2"):
                    if k not in rapid_done and os.waitpid(kids[k][0], os.WNOHANG)[0] != 0:
                        rapid_done.add(k)
                elapsed = time.monotonic() - t0
                if (len(rapid_done) == 2 and elapsed > 8) or elapsed > 150 * SLOW:
                    break
                s = time.perf_counter()
                try:
                    st = self.c.call("status")
                    assert st["queue"]["queued"] == 40
                    lat.append((time.perf_counter() - s) * 1000)
                except (OSError, ConnectionError, RpcError, AssertionError) as e:
                    failures.append(repr(e))
                    self.c = self.hitld.client()
                    self.addCleanup(self.c.close)
                if len(lat) % 50 == 0:
                    peak = max(peak, rss_kb(pid)[0])
                time.sleep(0.01)
            attack_s = time.monotonic() - t0
        finally:
            os.close(ctl_w)
            results = {k: collect(*v) for k, v in kids.items()}
            os.close(ctl_r)
            os.close(ready_r)
            if ready_w is not None:
                os.close(ready_w)

        time.sleep(1)
        rss_after, hwm = rss_kb(pid)
        lat.sort()
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        print("\nhostile crowd: %.1f s; well-behaved status calls %d, failed %d, p50 %.2f ms, p99 %.2f ms, "
              "max %.2f ms" % (attack_s, len(lat), len(failures), p50, p99, lat[-1] if lat else 0), file=sys.stderr)
        print("hitld RSS before %d KiB, peak seen %d KiB, after %d KiB (VmHWM %d KiB)"
              % (rss_before, max(peak, rss_after), rss_after, hwm), file=sys.stderr)
        print("attackers: %s" % json.dumps(results), file=sys.stderr)

        for k, v in results.items():
            self.assertNotIn("error", v, "%s: %s" % (k, v))
        self.assertEqual(failures, [])
        self.assertGreater(len(lat), 100)
        if not SANITIZER:
            # Starvation shows in the plain build (p99 a few ms against 50);
            # under ASan, with the suite's other programs on the same 2 cores,
            # p99 went from 130 to 230 ms between two runs of the same tree:
            # a clock, not the daemon. There every call must still succeed.
            self.assertLess(p99, P99_LIMIT_MS, "p99 %.1f ms" % p99)
            # ASan keeps freed memory in its quarantine (256 MB): RSS says
            # nothing there; the plain build is the one measured.
            self.assertLess(rss_after - rss_before, RSS_GROWTH_LIMIT_KB)
            self.assertLess(hwm - rss_before, 4 * RSS_GROWTH_LIMIT_KB)

        idle = results["idle"]
        self.assertEqual(idle["held"], PER_UID_CAP)
        self.assertEqual(idle["refused_past_cap"], 4)
        self.assertEqual(idle["still_open"], IDLE_CONNECTIONS)
        rapid = [results["rapid1"], results["rapid2"]]
        self.assertEqual(sum(r["connects"] for r in rapid), RAPID_CONNECTS)
        self.assertEqual(sum(r["errors"] for r in rapid), 0, rapid)
        self.assertGreater(sum(r["answered"] for r in rapid), 0)
        self.assertEqual(results["garbage"]["wrong"], [])
        self.assertGreater(results["garbage"]["sent"], 10)
        # A client that never reads is cut off or stalled, never buffered
        # without bound: what it managed to send is bounded by the pause.
        for sent in results["never_reads"]["bytes_sent"]:
            self.assertLess(sent, 64 * 1024 * 1024)

        # Afterwards: everything still there, the daemon serves as before.
        self.assertEqual(self.c.call("status")["queue"]["queued"], 40)
        self.assertEqual(len(self.c.call("request.list", {"limit": 1000})["requests"]), 40)


if __name__ == "__main__":
    main()
