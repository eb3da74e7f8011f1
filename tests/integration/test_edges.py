#!/usr/bin/env python3
# run-suite: about 165 s
"""The remote work engine at its edges (issue 12 items 3-7 and 14, issue 13
item 3): replies hitld cannot read, listings too big to read whole, replies
that are neither success nor a documented error, timeouts too short to reach
anyone, an unreachable HITL.sh, and errors about the key, the account or the
endpoint rather than one request.

A small fault proxy sits between hitld and the emulator: it forwards every
call, except those a rule matches, which get a canned reply (or the real
reply with its status and body replaced). The emulator decides everything
else, so "one remote request per local one" is counted where it happened.
"""
import http.client
import json
import os
import glob
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, ROOT, SLOW, HitldTestCase, RpcError, main, single_select_request, wait_for  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
if not os.path.exists(HITLCTL):     # BUILD may hold only a wrapped hitld (tests/valgrind)
    HITLCTL = os.path.join(ROOT, "build", "hitlctl")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class Rule:
    def __init__(self, method, prefix, status=None, body=b"", headers=(), count=None, forward=False, query=None,
                 reset=False):
        self.method, self.prefix, self.query = method, prefix, query
        self.status, self.body, self.headers = status, body, list(headers)
        self.count, self.forward, self.reset = count, forward, reset
        self.hits = 0

    def matches(self, method, path, query):
        if self.method and self.method != method:
            return False
        if not path.startswith(self.prefix):
            return False
        if self.query is not None and self.query not in query:
            return False
        return self.count is None or self.hits < self.count


class FaultProxy:
    """An HTTP proxy on loopback in front of the emulator, with rules."""

    def __init__(self, upstream_port, port=0):
        self.upstream_port = upstream_port
        self.rules = []
        self.calls = []          # (t, method, path, status)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path, _, query = self.path.partition("?")
                with proxy.lock:
                    rule = next((r for r in proxy.rules if r.matches(self.command, path, query)), None)
                    if rule:
                        rule.hits += 1
                if rule and rule.reset:
                    proxy.note(self.command, self.path, None)
                    self.close_connection = True
                    return
                if rule is None or rule.forward:
                    try:
                        status, headers, rbody = proxy.forward(self.command, self.path, self.headers, body)
                    except OSError:
                        # The emulator reset the call (commit_no_reply): so do we.
                        proxy.note(self.command, self.path, None)
                        self.close_connection = True
                        return
                    if rule is not None:
                        status = rule.status or status
                        rbody = rule.body
                        headers = [h for h in headers if h[0].lower().startswith("x-ratelimit") or
                                   h[0].lower() == "date"] + rule.headers
                else:
                    status, headers, rbody = rule.status, rule.headers, rule.body
                proxy.note(self.command, self.path, status)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(rbody)
                self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def note(self, method, path, status):
        with self.lock:
            self.calls.append((time.monotonic(), method, path, status))

    def forward(self, method, path, headers, body):
        c = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            h = {k: v for k, v in headers.items() if k.lower() not in HOP}
            c.request(method, path, body=body or None, headers=h)
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def add(self, *a, **kw):
        rule = Rule(*a, **kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules = []

    def count(self, method, prefix, since=0.0):
        with self.lock:
            return sum(1 for t, m, p, _ in self.calls if m == method and p.startswith(prefix) and t >= since)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def envelope(error, msg, data=None):
    return json.dumps({"error": error, "msg": msg, "data": data}).encode()


JSON = [("Content-Type", "application/json")]


class EdgeCase(HitldTestCase):
    START_DAEMON = False
    WINDOW = 60
    CONFIG = {"api": {"timeout_s": 3}, "budget": {"window_s": 60}}

    def setUp(self):
        super().setUp()
        self.proxy = FaultProxy(self.emu.port)
        self.addCleanup(self.proxy.stop)
        self.create_prefix = "/v1/api/loops/%s/requests" % self.loop_id

    def start(self, config=None, **kw):
        cfg = json.loads(json.dumps(self.CONFIG if config is None else config))
        cfg.setdefault("api", {})["base_url"] = "http://127.0.0.1:%d/v1" % self.proxy.port
        self.hitld = self.new_daemon(cfg, **kw).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        return self.hitld

    def submit(self, n, tag, **extra):
        return [self.c.call("request.submit", single_select_request(
            self.loop_id, text="%s %d" % (tag, i), timeout_seconds=86400, **extra))["id"] for i in range(n)]

    def remotes(self, rid):
        return self.emu.requests(hitld_id=rid)

    def assert_at_most_once(self, ids):
        for i in ids:
            self.assertLessEqual(len(self.remotes(i)), 1, "request %s created more than once" % i)

    def creates(self, since=0.0):
        return self.proxy.count("POST", self.create_prefix, since)

    def queue(self):
        return self.c.call("status")["queue"]


class UnreadableCreateReply(EdgeCase):
    """Item 4: a 2xx proves the create; it is never repeated."""

    def test_a_201_with_an_unreadable_body_is_created_once_and_found(self):
        self.start()
        # Creates really happen, but the reply is "{}"; the listing shows
        # nothing for a while.
        create = self.proxy.add("POST", self.create_prefix, status=201, body=b"{}", headers=JSON, forward=True)
        empty = envelope(False, "Requests retrieved successfully",
                         {"loop_id": self.loop_id, "requests": [], "count": 0, "total": 0, "has_more": False})
        listing = self.proxy.add("GET", "/v1/api/requests", status=200, headers=JSON, count=3, query="loop_id=",
                                 body=empty)
        self.proxy.add("GET", "/v1/api/loops/%s/requests" % self.loop_id, status=200, headers=JSON, count=3,
                       body=empty)
        ids = self.submit(3, "unreadable 201")
        wait_for(lambda: create.hits >= 3, 30, what="three creates")
        time.sleep(4 * SLOW)
        for i in ids:
            self.assertEqual(len(self.remotes(i)), 1, "request %s was not created exactly once" % i)
            r = self.c.call("request.get", {"id": i})
            self.assertEqual(r["state"], "pending")
        self.assertEqual(create.hits, 3, "a create with a 2xx reply was sent again")
        self.assertGreaterEqual(listing.hits, 1)
        # Once the listing shows them, each is found and polled as usual.
        self.proxy.clear()
        for i in ids:
            r = self.wait_state(i, "pending", timeout=10)
        wait_for(lambda: all(self.c.call("request.get", {"id": i})["remote_id"] for i in ids), 60,
                 what="the remote ids to be found")
        for i in ids:
            self.assertEqual(self.c.call("request.get", {"id": i})["remote_id"], self.remotes(i)[0]["id"])
        self.assertEqual(self.creates(), 3)


class BigListings(EdgeCase):
    """Item 5: reconcile pages a filtered listing, and always ends."""

    def test_a_loop_listing_of_10_MiB_does_not_stop_creates(self):
        self.start()
        big = b'{"error":false,"msg":"Loop requests retrieved successfully","data":{"requests":[' + \
            b",".join([b'{"id":"%024x","status":"pending","request_text":"' % i + b"x" * 3000 + b'"}'
                       for i in range(3500)]) + b'],"count":3500}}'
        self.assertGreater(len(big), 10 * 1024 * 1024)
        self.proxy.add("GET", "/v1/api/loops/%s/requests" % self.loop_id, status=200, body=big, headers=JSON)
        self.emu.ctl("POST", "/_emu/faults", {"kind": "commit_no_reply", "count": 1,
                                              "match": {"method": "POST", "path_prefix": "/v1/api/loops/"}})
        ids = self.submit(3, "big loop")
        for i in ids:
            self.wait_state(i, "pending", timeout=40)
        for i in ids:
            self.assertEqual(len(self.remotes(i)), 1)

    def test_an_endless_listing_ends_the_reconcile_within_bounded_calls(self):
        self.start()
        # Every page is full of look-alikes (same text, made just now, not
        # ours) and says there is more: a reconcile that does not bound
        # itself never ends.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        items = [{"id": "%024x" % (0xabc000 + i), "loop_id": self.loop_id, "status": "pending",
                  "request_text": "endless 0", "response_type": "single_select", "created_at": now}
                 for i in range(100)]
        page = envelope(False, "Requests retrieved successfully",
                        {"requests": items, "count": 100, "total": 100000, "has_more": True,
                         "pagination": {"limit": 100, "offset": 0, "next_offset": 100}})
        self.proxy.add("GET", "/v1/api/requests", status=200, body=page, headers=JSON, query="loop_id=")
        self.proxy.add("GET", "/v1/api/loops/%s/requests" % self.loop_id, status=200, body=page, headers=JSON)
        self.emu.ctl("POST", "/_emu/faults", {"kind": "500", "count": 1,
                                              "match": {"method": "POST", "path_prefix": "/v1/api/loops/"}})
        t0 = time.monotonic()
        first = self.submit(1, "endless")[0]
        wait_for(lambda: self.creates(t0) >= 1, 20, what="the first create")
        second = self.submit(1, "after endless")[0]
        # The second is created once the first's reconcile gave up.
        self.wait_state(second, "pending", timeout=90)
        reconcile_calls = self.proxy.count("GET", "/v1/api/requests", t0) + \
            self.proxy.count("GET", "/v1/api/loops/", t0)
        self.assertLessEqual(reconcile_calls, 14, "the reconcile did not bound itself")
        r = self.c.call("request.get", {"id": first})
        self.assertIn(r["state"], ("pending", "queued"))
        self.assertEqual(len(self.remotes(first)), 0)   # the 500 created nothing
        self.assert_at_most_once([first, second])


class ListingFailures(EdgeCase):
    """Item 6: every call kind backs off, logs once and shows its error."""

    def check_backoff(self, rule_kw):
        self.start()
        self.proxy.add("GET", "/v1/api/requests", **rule_kw)
        self.proxy.add("GET", "/v1/api/loops/", **rule_kw)
        self.emu.ctl("POST", "/_emu/faults", {"kind": "commit_no_reply", "count": 1,
                                              "match": {"method": "POST", "path_prefix": "/v1/api/loops/"}})
        self.submit(1, "bad listing")
        wait_for(lambda: self.proxy.count("GET", "/v1/api/") >= 1, 20, what="a first reconcile")
        t0 = time.monotonic()
        time.sleep(10)
        n = self.proxy.count("GET", "/v1/api/", t0)
        self.assertLessEqual(n, 5, "%d listing calls in 10 s: no backoff" % n)
        st = self.c.call("status")["api"]
        self.assertTrue(st["last_error"], "status shows no last error")
        self.assertTrue(st.get("last_error_at"))
        self.assertEqual(self.hitld.log_text().count("HITL.sh call failed"), 1, self.hitld.log_text()[-3000:])

    def test_200_with_invalid_json(self):
        self.check_backoff(dict(status=200, body=b"{not json", headers=JSON))

    def test_302(self):
        self.check_backoff(dict(status=302, body=b"", headers=[("Location", "https://example.com/")]))

    def test_418(self):
        self.check_backoff(dict(status=418, body=envelope(True, "I'm a teapot"), headers=JSON))


class ShortTimeouts(EdgeCase):
    """Item 7: a timeout that cannot reach a human is refused; one that ends unsent says so."""

    def test_a_timeout_of_60_is_refused_before_anything_is_queued(self):
        self.start()
        with self.assertRaises(RpcError) as e:
            self.c.call("request.submit", single_select_request(self.loop_id, timeout_seconds=60))
        self.assertEqual(e.exception.code, -32602)
        self.assertEqual(e.exception.data["field"], "timeout_seconds")
        self.assertEqual(e.exception.data["min_timeout_seconds"], 90)
        p = subprocess.run([HITLCTL, "--socket", self.hitld.socket, "ask", "--loop", self.loop_id, "--timeout", "60",
                            "--option", "approve", "--option", "reject", "--default", "approve",
                            "--expect", "approve", "Deploy?"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("approve", p.stdout)
        self.assertIn("90", p.stderr)
        self.assertEqual(sum(self.queue()[s] for s in ("queued", "submitting", "pending", "timeout")), 0)
        self.assertEqual(self.creates(), 0)
        # 90 works.
        rid = self.c.call("request.submit", single_select_request(self.loop_id, timeout_seconds=90))["id"]
        self.wait_state(rid, "pending")

    def test_a_request_that_reaches_its_deadline_unsent_says_unsent(self):
        # No key: nothing can be sent. It ends 60 s before its deadline.
        self.start(key=None)
        p = subprocess.run([HITLCTL, "--socket", self.hitld.socket, "ask", "--loop", self.loop_id, "--timeout", "91",
                            "--option", "approve", "--option", "reject", "--default", "approve",
                            "--expect", "approve", "Deploy?"], capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 5, (p.stdout, p.stderr))
        self.assertIn("never", p.stderr)
        self.assertNotIn("approve", p.stdout)
        rec = self.c.call("request.list", {})["requests"][0]
        self.assertEqual(rec["state"], "timeout")
        self.assertEqual(rec["result_source"], "unsent")
        g = subprocess.run([HITLCTL, "--socket", self.hitld.socket, "get", rec["id"]], capture_output=True, text=True,
                           timeout=30)
        self.assertIn("never sent", g.stdout)
        self.assertEqual(self.creates(), 0)


class Unreachable(EdgeCase):
    """Item 14: an unreachable HITL.sh is logged once, and when it is back."""

    def test_unreachable_is_logged_once_and_shown_in_status(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        cfg = {"api": {"timeout_s": 3, "base_url": "http://127.0.0.1:%d/v1" % port}, "budget": {"window_s": 60}}
        self.hitld = self.new_daemon(cfg).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        rid = self.submit(1, "unreachable")[0]
        wait_for(lambda: self.c.call("status")["api"].get("last_error"), 20, what="a failed attempt")
        time.sleep(8)    # attempts after 2, 4 s (and more): still one line
        self.assertEqual(self.hitld.log_text().count("HITL.sh call failed"), 1, self.hitld.log_text()[-2000:])
        st = self.c.call("status")["api"]
        self.assertGreaterEqual(st["consecutive_failures"], 3)
        self.assertFalse(st["reachable"])
        self.assertTrue(st["last_error"])
        self.assertTrue(st["last_attempt_at"])
        # It comes back: said once, and the request goes.
        back = FaultProxy(self.emu.port, port=port)
        self.addCleanup(back.stop)
        self.wait_state(rid, "pending", timeout=60)
        self.assertEqual(self.hitld.log_text().count("HITL.sh calls work again"), 1)


class Breaker(EdgeCase):
    """Issue 13 item 3: errors about the key, the account or the endpoint
    pause creates; nothing fails, nothing is lost; the queue drains after."""

    def check_pause(self, rule_kw, words, where="creates_paused"):
        self.start()
        rule = self.proxy.add("POST", self.create_prefix, **rule_kw)
        ids = self.submit(3, "breaker")
        wait_for(lambda: rule.hits >= 1, 20, what="a refused create")
        time.sleep(3)
        q = self.queue()
        self.assertEqual(q["queued"], len(ids), q)
        self.assertEqual(q["failed"], 0)
        api = self.c.call("status")["api"]
        if where == "creates_paused":
            self.assertTrue(api["creates_paused"], api)
            self.assertIn(words, api["creates_paused"]["reason"])
        else:
            self.assertEqual(len(api["loops_paused"]), 1, api)
            self.assertIn(words, api["loops_paused"][0]["reason"])
        self.assertLessEqual(rule.hits, 3)
        self.proxy.clear()
        for i in ids:
            self.wait_state(i, "pending", timeout=90)
        for i in ids:
            self.assertEqual(len(self.remotes(i)), 1)
        api = self.c.call("status")["api"]
        self.assertIsNone(api["creates_paused"])
        self.assertEqual(api["loops_paused"], [])
        self.assertEqual(self.hitld.log_text().count("Creates pause"), 1 if where == "creates_paused" else 0)

    def test_403_key_inactive(self):
        self.check_pause(dict(status=403, body=envelope(True, "API key is inactive"), headers=JSON), "inactive")

    def test_402_quota(self):
        self.check_pause(dict(status=402, body=envelope(True, "Monthly request quota exhausted"), headers=JSON),
                         "quota")

    def test_429_without_rate_headers_naming_the_plan(self):
        self.check_pause(dict(status=429, body=envelope(True, "Plan limit reached: upgrade to continue"),
                              headers=JSON), "Plan limit")

    def test_404_route_gone(self):
        self.check_pause(dict(status=404, body=envelope(True, "Route not found"), headers=JSON), "Route not found")

    def test_410_gone(self):
        self.check_pause(dict(status=410, body=envelope(True, "Loops are now workflows"), headers=JSON), "410")

    def test_301_redirect(self):
        self.check_pause(dict(status=301, body=b"", headers=[("Location", "https://api.hitl.sh/v2/")]), "301")

    def test_no_active_members_pauses_only_that_loop(self):
        self.check_pause(dict(status=400, body=envelope(True, "No active members found in the loop"), headers=JSON),
                         "No active members", where="loops_paused")

    def test_the_status_line_names_the_reason(self):
        from systemd_support import NotifySocket
        n = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(n.close)
        self.start(env_extra={"NOTIFY_SOCKET": n.path})
        self.proxy.add("POST", self.create_prefix, status=402, headers=JSON,
                       body=envelope(True, "Monthly request quota exhausted"))
        self.submit(2, "status line")
        n.wait(lambda f: "Creates paused: HTTP 402: Monthly request quota exhausted. 2 queued" in f.get("STATUS", ""),
                   20, "STATUS= naming the reason")
        self.proxy.clear()
        n.wait(lambda f: f.get("STATUS", "").startswith("0 queued") and "Creates paused" not in f["STATUS"], 60,
               "STATUS= without the pause once the queue drained", since=len(n.messages))

    def test_repeated_identical_400_for_different_requests(self):
        self.start()
        rule = self.proxy.add("POST", self.create_prefix, status=400, headers=JSON,
                              body=envelope(True, "Validation failed", "field xyz is required"))
        self.submit(5, "same refusal")
        wait_for(lambda: self.c.call("status")["api"]["creates_paused"], 30, what="the breaker")
        q = self.queue()
        self.assertLessEqual(q["failed"], 2)
        self.assertEqual(q["queued"] + q["failed"], 5)
        self.assertIn("Validation failed", self.c.call("status")["api"]["creates_paused"]["reason"])
        self.proxy.clear()
        wait_for(lambda: self.queue()["pending"] == 5 - q["failed"], 90, what="the queue to drain")
        self.assertGreaterEqual(rule.hits, 3)

    def test_a_request_level_error_fails_only_its_request(self):
        self.start()
        self.proxy.add("POST", self.create_prefix, status=400, headers=JSON, count=1,
                       body=envelope(True, "Invalid response configuration", "options[0] is too long"))
        ids = self.submit(3, "one bad")
        for i in ids:
            self.wait_state(i, ("pending", "failed"), timeout=40)
        q = self.queue()
        self.assertEqual((q["failed"], q["pending"]), (1, 2))
        self.assertIsNone(self.c.call("status")["api"]["creates_paused"])


def log_entries(state_dir):
    """(path, offset, size, id) of every whole entry of the outbox log."""
    out = []
    for path in sorted(glob.glob(os.path.join(state_dir, "outbox", "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        off = 0
        while off + 20 <= len(data) and data[off:off + 4] == b"HLE1":
            id_len = data[off + 5]
            meta_len, params_len = struct.unpack_from("<II", data, off + 8)
            size = 20 + id_len + meta_len + params_len
            if off + size > len(data):
                break
            out.append((path, off, size, data[off + 20:off + 20 + id_len].decode()))
            off += size
    return out


class DamagedLog(EdgeCase):
    """Item 3: a damaged log must not roll a request back into a second create."""

    def test_losing_the_submitting_and_pending_entries_does_not_create_twice(self):
        self.start()
        rid = self.submit(1, "damaged")[0]
        remote = self.wait_state(rid, "pending")["remote_id"]
        self.hitld.stop()
        mine = [e for e in log_entries(self.hitld.state_dir) if e[3] == rid]
        self.assertEqual(len(mine), 3, mine)    # queued, submitting, pending
        (path, o1, s1, _), (_, o2, s2, _) = mine[1], mine[2]
        self.assertEqual(o1 + s1, o2)           # side by side
        with open(path, "r+b") as f:
            for off, size in ((o1, s1), (o2, s2)):
                f.seek(off + size // 2)
                b = f.read(1)
                f.seek(off + size // 2)
                f.write(bytes([b[0] ^ 0x40]))
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        r = self.wait_state(rid, "pending", timeout=40)
        self.assertEqual(r["remote_id"], remote)
        time.sleep(2)
        self.assertEqual(len(self.remotes(rid)), 1, "created twice after the log damage")
        self.assertIn("quarantined", self.hitld.log_text().lower())

    def test_many_queued_requests_before_the_damage_are_settled_by_one_listing(self):
        # Nothing can be sent (no key): five requests stay queued, then a
        # sixth is written and its entry damaged (whole, not torn).
        self.start(key=None)
        ids = self.submit(5, "queued before damage")
        last = self.submit(1, "damaged after")[0]
        self.hitld.stop()
        (path, off, size, rid), = [e for e in log_entries(self.hitld.state_dir) if e[3] == last]
        with open(path, "r+b") as f:
            f.seek(off + size // 2)
            b = f.read(1)
            f.seek(off + size // 2)
            f.write(bytes([b[0] ^ 0x40]))
        self.hitld.key = KEY
        t0 = time.monotonic()
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        self.assertIn("may have been sent already", self.hitld.log_text())
        for i in ids:
            self.wait_state(i, "pending", timeout=60)
        for i in ids:
            self.assertEqual(len(self.remotes(i)), 1)
        listings = self.proxy.count("GET", "/v1/api/requests", t0)
        self.assertLessEqual(listings, 3, "one reconcile per damaged request, not one listing for all")


if __name__ == "__main__":
    main()
