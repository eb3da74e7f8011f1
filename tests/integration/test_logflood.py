#!/usr/bin/env python3
# run-suite: about 10 s
"""One local user cannot flood hitld's log, nor hide another user's entries
in it (hitld(8) LIMITS, Journal).

- Output: a non-root uid makes hitld close one of its connections for the
  per-uid output bound (socket.max_output_mb_per_uid) 100 times, by
  pipelining status calls it never reads on three connections and opening a
  new one each time hitld closes one. hitld logs at most the documented burst
  per interval for that uid, not one line per closure; a second uid's closure
  right after is logged, and says how many entries were held back.
- Input: a non-root uid makes hitld refuse its input for the per-uid input
  bound (socket.max_input_mb_per_uid) again and again; meanwhile a second uid
  does it once, and that uid's entry is in the log: the first uid's flood
  neither fills the log nor hides the second's entry.
- HITL.sh hangs: with 16 calls in flight (API_MAX_IN_FLIGHT), a non-root
  uid's 200 loop.get calls are each refused "try again" without costing
  budget; hitld logs a bounded number of lines for them, not 200.
- Disk below outbox.min_free_mb: a non-root uid's 200 submits each fail
  "no space left"; hitld logs a bounded number of lines for them, not 200.
- Local churn: a non-root uid submits and cancels 600 requests as fast as it
  can (each accepted and cancelled before it was sent: nothing reaches
  HITL.sh, nothing costs budget). Uncapped, that is two info entries per
  cycle, ~1,000 a second, which trips journald's own per-service limit
  (10,000 in 30 s by default) and so hides every other entry of hitld's,
  the operator's alerts included. hitld logs at most the audit burst per
  uid and interval for these local-only events; a second uid's submit right
  after is logged and counts what was held back.
- Callbacks: a sender posts refused callbacks from 60 loopback addresses;
  hitld logs one entry per address and minute, and at most 10 a minute for
  all addresses together, not one per address.

The log is hitld's stderr (the harness runs it with --foreground): the lines
counted are the ones journald would store.
"""
import errno
import http.client
import json
import math
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Client, HitldTestCase, main, single_select_request, wait_for  # noqa: E402
from test_hostile import CHILD_CLOSE, child, collect, raise_fd_limit, stopped  # noqa: E402
from test_webhook import HOOK_PATH, WebhookTestCase  # noqa: E402

FLOOD_UID = 65531
OTHER_UID = 65530
CLOSURES = 100
# hitld(8) LIMITS, Journal: per cause and uid, LOG_BURST entries per LOG_INTERVAL_S.
LOG_INTERVAL_S = 30
LOG_BURST = 5
STATUS = b'{"jsonrpc":"2.0","id":1,"method":"status"}\n' * 64
PARTIAL = b'{"jsonrpc":"2.0","id":1,"method":"status","params":{"pad":"' + b"x" * (200 * 1024)


def new_reader_that_never_reads(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.setblocking(False)
    return s


def output_closures(path, n, deadline_s):
    """As one uid: three connections pipeline status calls and never read;
    each one hitld closes (its send fails) is replaced. Returns how many
    hitld closed."""
    socks = [new_reader_that_never_reads(path) for _ in range(3)]
    closed = 0
    deadline = time.monotonic() + deadline_s
    while closed < n and time.monotonic() < deadline:
        progress = False
        for i, s in enumerate(socks):
            if closed >= n:
                break
            try:
                s.send(STATUS)
                progress = True
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                    raise
                s.close()
                closed += 1
                socks[i] = new_reader_that_never_reads(path)
                progress = True
        if not progress:
            time.sleep(0.002)
    for s in socks:
        s.close()
    return closed


def input_refusal(path):
    """As one uid: six connections each send 200 KiB of one unfinished line
    (under max_message_bytes), 1.2 MiB in all, past the 1 MiB per-uid input
    bound; hitld refuses (answers and closes) one. Returns True once one was
    closed."""
    socks = []
    try:
        for _ in range(6):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(20 * SLOW)
            s.connect(path)
            socks.append(s)
            try:
                s.sendall(PARTIAL)
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                    raise
                return True
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline:
            for s in socks:
                s.setblocking(False)
                try:
                    while True:
                        if not s.recv(65536):
                            return True
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    return True
            time.sleep(0.01)
        return False
    finally:
        for s in socks:
            s.close()


def input_flood(path, ctl_fd, ready_fd):
    """Refusals until told to stop; tells ready_fd after the first 20."""
    done = 0
    while not stopped(ctl_fd, 0):
        if input_refusal(path):
            done += 1
        if done == 20:
            os.write(ready_fd, b"x")
    return {"refusals": done}


def suppressed(line):
    """N of "(N similar message(s) suppressed)" in a log line, else 0."""
    m = re.search(r"\((\d+) similar messages? suppressed\)", line)
    return int(m.group(1)) if m else 0


def lines_about(text, uid, what):
    return [l for l in text.splitlines() if ("connection of uid %d " % uid) in l and what in l]


class LogFlood(HitldTestCase):
    # max_message_bytes: the per-uid input bound is at least twice it plus 64 KiB (hitld(8)).
    CONFIG = {"socket": {"max_output_mb_per_uid": 1, "max_input_mb_per_uid": 1, "max_message_bytes": 262144,
                         "max_connections_per_uid": 16}}

    def setUp(self):
        raise_fd_limit()
        super().setUp()

    def allowed(self, elapsed_s):
        """Entries the documented limit lets through for one uid and cause in
        elapsed_s: a burst per interval begun (a generous count)."""
        return LOG_BURST * (math.ceil(elapsed_s / LOG_INTERVAL_S) + 1)

    def test_one_uid_closed_for_output_100_times_logs_a_bounded_number_of_lines(self):
        path = self.hitld.socket
        t0 = time.monotonic()
        pid, rfd = child(FLOOD_UID, lambda: {"closed": output_closures(path, CLOSURES, 300 * SLOW)})
        res = collect(pid, rfd)
        elapsed = time.monotonic() - t0
        self.assertNotIn("error", res, res)
        self.assertEqual(res["closed"], CLOSURES, res)
        logged = lines_about(self.hitld.log_text(), FLOOD_UID, "unsent output")
        print("\n%d closures for output in %.1f s: %d log lines (allowed %d)"
              % (res["closed"], elapsed, len(logged), self.allowed(elapsed)), file=sys.stderr)
        self.assertGreater(len(logged), 0)
        self.assertLessEqual(len(logged), self.allowed(elapsed), "\n".join(logged[:20]))
        # Another uid, right after: its first closure is logged.
        pid, rfd = child(OTHER_UID, lambda: {"closed": output_closures(path, 1, 60 * SLOW)})
        res = collect(pid, rfd)
        self.assertEqual(res.get("closed"), 1, res)
        wait_for(lambda: lines_about(self.hitld.log_text(), OTHER_UID, "unsent output"), 10,
                 what="the other uid's output closure in the log")
        # Each of the flood's closures was logged or counted in the next entry let through,
        # the other uid's first (hitld may close one or two the flood did not notice).
        reported = sum(suppressed(l) for l in lines_about(self.hitld.log_text(), FLOOD_UID, "unsent output"))
        other = lines_about(self.hitld.log_text(), OTHER_UID, "unsent output")
        self.assertGreater(suppressed(other[0]), 0, other[0])
        self.assertGreaterEqual(len(logged) + reported + suppressed(other[0]), CLOSURES, other[0])
        self.assertLessEqual(len(logged) + reported + suppressed(other[0]), CLOSURES + 3, other[0])

    def test_one_uids_input_flood_does_not_hide_anothers_entry(self):
        path = self.hitld.socket
        ctl_r, ctl_w = os.pipe()
        ready_r, ready_w = os.pipe()
        CHILD_CLOSE[:] = [ctl_w, ready_r]
        kid = child(FLOOD_UID, input_flood, path, ctl_r, ready_w)
        os.close(ready_w)
        try:
            self.assertTrue(stopped(ready_r, 120 * SLOW), "the flood did not start")
            pid, rfd = child(OTHER_UID, lambda: {"refused": input_refusal(path)})
            other = collect(pid, rfd)
        finally:
            os.close(ctl_w)
            flood = collect(*kid)
            os.close(ctl_r)
            os.close(ready_r)
        self.assertNotIn("error", flood, flood)
        self.assertTrue(other.get("refused"), other)
        text = self.hitld.log_text()
        flood_lines = lines_about(text, FLOOD_UID, "unhandled input")
        print("\n%d input refusals of uid %d: %d log lines"
              % (flood["refusals"], FLOOD_UID, len(flood_lines)), file=sys.stderr)
        self.assertGreater(len(flood_lines), 0)
        self.assertLess(len(flood_lines), flood["refusals"])
        self.assertTrue(lines_about(text, OTHER_UID, "unhandled input"),
                        "uid %d's refusal is not in the log:\n%s" % (OTHER_UID, "\n".join(flood_lines)))


def pipelined(path, method, params, n):
    """As one uid: n pipelined calls of method; returns the error codes (0: a result)."""
    c = Client(path, timeout=60 * SLOW)
    c.send_raw(b"".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
                        .encode() + b"\n" for i in range(n)))
    codes = []
    for _ in range(n):
        m = c.read_message()
        codes.append(m["error"]["code"] if "error" in m else 0)
    c.close()
    return {"codes": codes}


class HangingServer(HitldTestCase):
    CONFIG = {"api": {"timeout_s": 60}}

    def test_calls_refused_while_hitl_sh_hangs_log_a_bounded_number_of_lines(self):
        self.emu.ctl("POST", "/_emu/faults", {"kind": "hang", "count": 16, "seconds": 30 * SLOW,
                                              "match": {"path_prefix": "/v1/api/loops"}})
        root = Client(self.hitld.socket, timeout=60 * SLOW)
        self.addCleanup(root.close)
        root.send_raw(b"".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "loop.create",
                                           "params": {"name": "hang %d" % i, "icon": "rocket"}}).encode() + b"\n"
                               for i in range(16)))
        wait_for(lambda: len([c for c in self.emu.stats()["calls"] if c.get("fault") == "hang"]) >= 16, 20,
                 what="16 calls hanging at HITL.sh")
        t0 = time.monotonic()
        pid, rfd = child(FLOOD_UID, pipelined, self.hitld.socket, "loop.get", {"id": self.loop_id}, 200)
        res = collect(pid, rfd)
        elapsed = time.monotonic() - t0
        self.assertNotIn("error", res, res)
        busy = res["codes"].count(-32010)   # HITL_ERROR_UNAVAILABLE: "try again"
        logged = [l for l in self.hitld.log_text().splitlines() if "Failed to start a HITL.sh call" in l]
        print("\n%d calls refused while HITL.sh hangs (codes %s) in %.1f s: %d log lines (allowed %d)"
              % (busy, sorted(set(res["codes"])), elapsed, len(logged), self.allowed(elapsed)), file=sys.stderr)
        self.assertGreater(busy, 100, res)
        self.assertGreater(len(logged), 0)
        self.assertLessEqual(len(logged), self.allowed(elapsed), "\n".join(logged[:20]))

    allowed = LogFlood.allowed


class DiskFull(HitldTestCase):
    MIN_FREE_MB = 1048576   # the most outbox.min_free_mb takes: 1 TiB

    def test_submits_refused_for_space_log_a_bounded_number_of_lines(self):
        if shutil.disk_usage(self.hitld.state_dir).free >= self.MIN_FREE_MB << 20:
            self.skipTest("more than 1 TiB free")
        self.c.close()
        self.hitld.stop()
        d = self.new_daemon({"outbox": {"min_free_mb": self.MIN_FREE_MB}}, name="full").start()
        t0 = time.monotonic()
        pid, rfd = child(FLOOD_UID, pipelined, d.socket, "request.submit", single_select_request(self.loop_id), 200)
        res = collect(pid, rfd)
        elapsed = time.monotonic() - t0
        self.assertNotIn("error", res, res)
        self.assertEqual(res["codes"].count(0), 0, res)
        logged = [l for l in d.log_text().splitlines() if "Failed to store a new request" in l]
        print("\n%d submits refused for space (codes %s) in %.1f s: %d log lines (allowed %d)"
              % (len(res["codes"]), sorted(set(res["codes"])), elapsed, len(logged), self.allowed(elapsed)),
              file=sys.stderr)
        self.assertGreater(len(logged), 0)
        self.assertLessEqual(len(logged), self.allowed(elapsed), "\n".join(logged[:20]))

    allowed = LogFlood.allowed


# hitld(8) LIMITS, Journal: entries for a request's local-only events (accepted,
# cancelled before it was sent), per uid and AUDIT_INTERVAL_S.
AUDIT_INTERVAL_S = 30
AUDIT_BURST = 100
CHURN = 600


def churn(path, loop_id, n):
    """As one uid: n rounds of a pipelined submit then its cancel."""
    c = Client(path, timeout=60 * SLOW)
    body = single_select_request(loop_id)
    done = 0
    for _ in range(n):
        r = c.call("request.submit", body)
        c.call("request.cancel", {"id": r["id"]})
        done += 1
    c.close()
    return {"cycles": done}


def audit_lines(text, uid, what):
    return [l for l in text.splitlines() if what in l and ("uid %d" % uid) in l]


class LocalChurn(HitldTestCase):
    CONFIG = {"log": {"level": "info"}}

    def test_submit_cancel_churn_logs_a_bounded_number_of_lines(self):
        self.c.call("queue.pause")      # nothing is sent: every cancel is local
        t0 = time.monotonic()
        pid, rfd = child(FLOOD_UID, churn, self.hitld.socket, self.loop_id, CHURN)
        res = collect(pid, rfd)
        elapsed = time.monotonic() - t0
        self.assertNotIn("error", res, res)
        self.assertEqual(res["cycles"], CHURN, res)
        allowed = AUDIT_BURST * (math.ceil(elapsed / AUDIT_INTERVAL_S) + 1)
        # Another uid right after: its entry is logged and counts what was held back.
        pid, rfd = child(OTHER_UID, churn, self.hitld.socket, self.loop_id, 1)
        self.assertEqual(collect(pid, rfd).get("cycles"), 1)
        wait_for(lambda: audit_lines(self.hitld.log_text(), OTHER_UID, "accepted from"), 10,
                 what="the other uid's accepted entry")
        text = self.hitld.log_text()
        for what in ("accepted from", "cancelled before it was sent"):
            logged = audit_lines(text, FLOOD_UID, what)
            other = audit_lines(text, OTHER_UID, what)
            print("\n%d cycles of uid %d in %.1f s: %d '%s' lines (allowed %d)"
                  % (CHURN, FLOOD_UID, elapsed, len(logged), what, allowed), file=sys.stderr)
            self.assertGreater(len(logged), 0)
            self.assertLessEqual(len(logged), allowed, what)
            self.assertEqual(len(other), 1, other)
            # Every entry of the flood was logged or counted as held back.
            held = sum(suppressed(l) for l in logged[1:]) + suppressed(other[0])
            self.assertEqual(len(logged) + held, CHURN, (what, other[0]))


# hitld(8) LIMITS, Journal: a refused callback is logged once a minute per source, 10 a minute in all.
REJECT_INTERVAL_S = 60
REJECT_BURST_ALL = 10
SOURCES = ["127.0.0.%d" % i for i in range(2, 62)]


class CallbackSenderFlood(WebhookTestCase):
    def test_refused_callbacks_from_many_addresses_log_a_bounded_number_of_lines(self):
        t0 = time.monotonic()
        for rnd in range(3):
            for src in SOURCES:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SLOW,
                                                  source_address=(src, 0))
                try:
                    conn.request("POST", HOOK_PATH + "/nosuch.token", body=b"{}",
                                 headers={"Content-Type": "application/json"})
                    self.assertEqual(conn.getresponse().status, 404)
                finally:
                    conn.close()
        elapsed = time.monotonic() - t0
        self.assertEqual(self.webhook_status()["rejected"], 3 * len(SOURCES))
        logged = [l for l in self.hitld.log_text().splitlines() if "Refused a callback from 127.0.0." in l]
        allowed = REJECT_BURST_ALL * (math.ceil(elapsed / REJECT_INTERVAL_S) + 1)
        print("\n%d refused callbacks from %d addresses in %.1f s: %d log lines (allowed %d)"
              % (3 * len(SOURCES), len(SOURCES), elapsed, len(logged), allowed), file=sys.stderr)
        self.assertGreater(len(logged), 0)
        self.assertLessEqual(len(logged), allowed, "\n".join(logged[:20]))


if __name__ == "__main__":
    main()
