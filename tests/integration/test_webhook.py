#!/usr/bin/env python3
"""HITL.sh's callbacks (issue 17): hitld's webhook listener (webhook.listen,
webhook.public_url; daemon/inbox.h, webhook.h, callback.h). The emulator
POSTs the §6.1 body to the callback_url of a request as soon as it is final
(docs/HITL-API.md "Callbacks"); these tests check that hitld gives each
create its own capability URL, finishes the request from the callback, and
that forged, replayed, oversized and malformed posts change nothing."""
import http.client
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, SANITIZER, HitldTestCase, free_port, main, single_select_request, wait_for  # noqa: E402

HOOK_PATH = "/hitl/callback"


def post(port, path, body, headers=None, timeout=10):
    """One POST to the listener: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request("POST", path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class WebhookTestCase(HitldTestCase):
    START_DAEMON = False
    # Polls as rare as allowed, so that what finishes a request is the callback.
    POLL = {"min_poll_interval_s": 3600}

    def setUp(self):
        self.t0 = time.monotonic()
        super().setUp()
        self.port = free_port()
        self.public_url = "http://127.0.0.1:%d%s" % (self.port, HOOK_PATH)
        self.hitld = self.new_daemon({
            "webhook": {"listen": "127.0.0.1:%d" % self.port, "public_url": self.public_url},
            "budget": dict(self.POLL),
        }).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def submit_pending(self, **extra):
        sub = self.c.call("request.submit", single_select_request(self.loop_id, **extra))
        r = self.wait_state(sub["id"], "pending")
        remote = self.emu.requests(hitld_id=sub["id"])
        self.assertEqual(len(remote), 1)
        return r, remote[0]

    def assert_logged_once_a_minute(self):
        """Refusals from one source: one entry a minute at most (the test
        started a minute ago at most, unless the machine is very loaded)."""
        n = self.hitld.log_text().count("Refused a callback from 127.0.0.1")
        minutes = (time.monotonic() - self.t0) / 60
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, 1 + int(minutes))

    def webhook_status(self):
        return self.c.call("status")["webhook"]

    def polls(self):
        return [c for c in self.emu.api_calls() if c[0] == "GET" and "/requests" in c[1]]


class TestCallbacks(WebhookTestCase):
    def test_status_shows_the_listener(self):
        w = self.webhook_status()
        self.assertEqual(w["enabled"], True)
        self.assertEqual(w["listen"], "127.0.0.1:%d" % self.port)
        self.assertEqual(w["public_url"], self.public_url)
        self.assertEqual((w["received"], w["rejected"], w["last_at"]), (0, 0, None))
        out = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "status"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("Webhook:  callbacks on 127.0.0.1:%d for %s: 0 received (last never), 0 refused"
                      % (self.port, self.public_url), out.stdout)

    def test_each_create_carries_its_own_capability_url(self):
        a, ra = self.submit_pending(request_text="first")
        b, rb = self.submit_pending(request_text="second")
        pat = re.escape(self.public_url) + r"/(r_[0-9A-Z]{26})\.([0-9a-f]{64})$"
        ma, mb = re.match(pat, ra["callback_url"]), re.match(pat, rb["callback_url"])
        self.assertTrue(ma and mb, (ra["callback_url"], rb["callback_url"]))
        self.assertEqual((ma.group(1), mb.group(1)), (a["id"], b["id"]))
        self.assertNotEqual(ma.group(2), mb.group(2))
        # The token is the secret: clients never see it.
        self.assertNotIn(ma.group(2), json.dumps(self.c.call("request.get", {"id": a["id"]})))

    def test_a_callback_finishes_the_request_without_a_poll(self):
        r, remote = self.submit_pending()
        polls_before = len(self.polls())
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        done = self.c.call("request.wait", {"id": r["id"], "timeout_ms": 30000})
        self.assertTrue(done["done"])
        got = done["request"]
        self.assertEqual((got["state"], got["result"], got["result_source"]), ("completed", "approve", "reviewer"))
        self.assertEqual(len(self.polls()), polls_before, "a poll, not the callback, finished it")
        w = self.webhook_status()
        self.assertEqual((w["received"], w["rejected"]), (1, 0))
        self.assertIsNotNone(w["last_at"])
        d = [x for x in self.emu.stats()["callbacks"]["deliveries"] if x["request_id"] == remote["id"]]
        self.assertEqual([(x["result"], x["last_status"]) for x in d], [("sent", 200)])

    def test_timeout_and_cancel_callbacks(self):
        r, remote = self.submit_pending(timeout_seconds=120)
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 300})
        got = self.wait_state(r["id"], "timeout")
        self.assertEqual((got["result"], got["result_source"]), ("reject", "default"))
        self.assertEqual(self.webhook_status()["received"], 1)

    def test_a_client_callback_url_is_kept_and_polled(self):
        own = "http://127.0.0.1:9/own-receiver"
        sub = self.c.call("request.submit", single_select_request(self.loop_id, callback_url=own))
        self.wait_state(sub["id"], "pending")
        remote = self.emu.requests(hitld_id=sub["id"])[0]
        self.assertEqual(remote["callback_url"], own)
        self.assertIsNone(self.c.call("request.get", {"id": sub["id"]}).get("callback_token"))

    def test_the_token_survives_a_restart(self):
        r, remote = self.submit_pending()
        self.hitld.stop()
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        got = self.wait_state(r["id"], "completed")
        self.assertEqual(got["result"], "approve")
        self.assertEqual(self.webhook_status()["received"], 1)


class TestForgedCallbacks(WebhookTestCase):
    """Issue 17, must show: a forged callback to a wrong token, a replayed
    one and an oversized one change nothing, and the client still sees the
    reviewer's real answer."""

    def forged_body(self, remote_id, value="approve"):
        return json.dumps({"event": "request.completed", "request_id": remote_id, "status": "completed",
                           "response_data": {"selected_value": value},
                           "response_by": {"user_id": "0" * 24}}).encode()

    def snapshot(self, rid):
        r = self.c.call("request.get", {"id": rid})
        return {k: r.get(k) for k in ("state", "result", "result_source", "response", "updated_at")}

    def test_forged_replayed_and_oversized_callbacks_change_nothing(self):
        r, remote = self.submit_pending()
        url = remote["callback_url"]
        path = url[len("http://127.0.0.1:%d" % self.port):]
        self.assertTrue(path.startswith(HOOK_PATH + "/"))
        lid, token = path.rsplit("/", 1)[1].split(".")
        before = self.snapshot(r["id"])
        rejected = 0

        # Forged: the right request id, a wrong token (one digit off, and another's).
        wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
        for p in (HOOK_PATH + "/%s.%s" % (lid, wrong), HOOK_PATH + "/%s.%s" % (lid, "f" * 64),
                  HOOK_PATH + "/%s" % token, HOOK_PATH, "/", HOOK_PATH + "/%s.%s" % ("r_" + "0" * 26, token)):
            with self.subTest(path=p):
                status, _ = post(self.port, p, self.forged_body(remote["id"]))
                self.assertEqual(status, 404)
                rejected += 1
        # Oversized, to the right URL: declared, and chunked without a length.
        status, _ = post(self.port, path, b"{" + b" " * (64 * 1024) + b"}")
        self.assertEqual(status, 413)
        rejected += 1
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            def chunks():
                for _ in range(80):
                    yield b" " * 1024
            conn.request("POST", path, body=chunks(), encode_chunked=True,
                         headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            self.assertEqual(conn.getresponse().status, 413)
            rejected += 1
        finally:
            conn.close()
        # Not a callback: garbage, a status that is not final, another request's id.
        for body in (b"garbage", b"[]", json.dumps({"request_id": remote["id"], "status": "pending"}).encode(),
                     self.forged_body("a" * 24)):
            with self.subTest(body=body[:40]):
                status, _ = post(self.port, path, body)
                self.assertEqual(status, 400)
                rejected += 1
        self.assertEqual(self.snapshot(r["id"]), before)

        # The reviewer's real answer arrives by the real callback.
        self.emu.respond(remote["id"], {"selected_value": "reject"})
        got = self.wait_state(r["id"], "completed")
        self.assertEqual((got["result"], got["result_source"]), ("reject", "reviewer"))
        after = self.snapshot(r["id"])

        # Replayed: the real delivery again is idempotent (200, nothing changes);
        # the used token with another outcome is refused.
        real = json.dumps({"event": "request.completed", "request_id": remote["id"], "status": "completed",
                           "response_data": {"selected_value": "reject"}}).encode()
        status, _ = post(self.port, path, real)
        self.assertEqual(status, 200)
        for body in (json.dumps({"event": "request.cancelled", "request_id": remote["id"],
                                 "status": "cancelled"}).encode(),
                     json.dumps({"event": "request.timeout", "request_id": remote["id"],
                                 "status": "timeout"}).encode()):
            status, _ = post(self.port, path, body)
            self.assertEqual(status, 404)
            rejected += 1
        # A forged "completed" with another answer is a repeat of the outcome,
        # not a change: the answer stays the reviewer's.
        status, _ = post(self.port, path, self.forged_body(remote["id"], "approve"))
        self.assertEqual(status, 200)
        self.assertEqual(self.snapshot(r["id"]), after)

        done = self.c.call("request.wait", {"id": r["id"], "timeout_ms": 1000})
        self.assertEqual((done["request"]["state"], done["request"]["result"]), ("completed", "reject"))
        w = self.webhook_status()
        self.assertEqual(w["rejected"], rejected)
        self.assertEqual(w["received"], 3)   # the real one and two repeats of its outcome
        self.assertIsNotNone(w["last_rejected_at"])
        # Rejections are logged, at most once a minute per source.
        self.assert_logged_once_a_minute()

    def test_only_post(self):
        for method in ("GET", "PUT", "DELETE"):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request(method, HOOK_PATH + "/x")
                self.assertEqual(conn.getresponse().status, 405)
            finally:
                conn.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_fd_limit(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def closed_by_peer(sock):
    """Has the peer closed (EOF or reset)? Reads and drops what is there."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


class TestHostileListener(WebhookTestCase):
    """Issue 17, item 7: garbage, huge bodies, slowloris, thousands of
    connections and wrong tokens at the listener; the control socket's
    clients stay served and hitld's memory stays bounded."""
    MAX_CONN = 32
    TIMEOUT_S = 2

    def setUp(self):
        self.t0 = time.monotonic()
        self.fd_limit = raise_fd_limit()
        HitldTestCase.setUp(self)
        self.port = free_port()
        self.public_url = "http://127.0.0.1:%d%s" % (self.port, HOOK_PATH)
        self.hitld = self.new_daemon({
            "webhook": {"listen": "127.0.0.1:%d" % self.port, "public_url": self.public_url,
                        "max_connections": self.MAX_CONN, "timeout_s": self.TIMEOUT_S},
            "budget": dict(self.POLL),
            "log": {"level": "info"},
        }).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def test_the_listener_survives_a_crowd_and_socket_clients_stay_served(self):
        r, remote = self.submit_pending()
        url_path = remote["callback_url"][len("http://127.0.0.1:%d" % self.port):]
        pid = self.hitld.proc.pid
        for _ in range(20):
            self.c.call("status")
        rss_before = rss_kb(pid)
        stop = threading.Event()
        errors, counts = [], {"status": 0}

        # A well-behaved socket client, all along.
        def socket_client():
            c = self.hitld.client()
            try:
                while not stop.is_set():
                    st = c.call("status")
                    assert st["queue"]["pending"] == 1, st["queue"]
                    counts["status"] += 1
                    time.sleep(0.01)
            except Exception as e:  # reported below
                errors.append("socket client: %r" % e)
            finally:
                c.close()
        good = threading.Thread(target=socket_client)
        good.start()
        try:
            # 1. Slowloris: the headers of a POST, then nothing. Closed within
            #    timeout_s of silence.
            slow = [self.connect() for _ in range(8)]
            for s in slow:
                s.sendall(b"POST " + url_path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            wait_for(lambda: all(closed_by_peer(s) for s in slow), 30, interval=0.2,
                     what="the idle connections to be closed")

            # 2. Thousands of connections at once, held open: hitld holds at
            #    most max_connections of them (libmicrohttpd stops accepting
            #    at the limit; the rest wait in the kernel's backlog or are
            #    refused there), and drops the ones it holds once they are quiet.
            n = min(2000, self.fd_limit - 200)
            base_fds = len(os.listdir("/proc/%d/fd" % pid))
            crowd, most = [], 0
            try:
                for _ in range(n):
                    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    c.setblocking(False)
                    c.connect_ex(("127.0.0.1", self.port))
                    crowd.append(c)
                deadline = time.monotonic() + 3 * self.TIMEOUT_S
                while time.monotonic() < deadline:
                    most = max(most, len(os.listdir("/proc/%d/fd" % pid)) - base_fds)
                    time.sleep(0.05)
            finally:
                for c in crowd:
                    c.close()
            self.assertGreater(n, 1000)
            # A few descriptors of slack: a call to HITL.sh or a socket
            # client may come and go meanwhile; 2,000 held would show.
            self.assertLessEqual(most, self.MAX_CONN + 4)
            wait_for(lambda: len(os.listdir("/proc/%d/fd" % pid)) <= base_fds, 60, interval=0.2,
                     what="hitld to let the crowd's connections go")

            # 3. Garbage: random bytes, and an HTTP request line that is not one.
            rng = random.Random(17)
            for i in range(50):
                s = self.connect()
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))) + b"\r\n\r\n")
                s.close()
            s = self.connect()
            s.sendall(b"\x16\x03\x01\x00\xa5 not TLS either\r\n\r\n")
            s.close()

            # 4. Huge bodies: declared (refused unread) and chunked (cut off).
            status, _ = post(self.port, url_path, b"", headers={"Content-Length": str(10 ** 9)})
            self.assertEqual(status, 413)
            s = self.connect()
            s.sendall(b"POST " + url_path.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
            sent = 0
            try:
                for _ in range(160):           # 10 MiB offered
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass                           # cut off, as it should be
            self.assertTrue(wait_for(lambda: closed_by_peer(s), 30, interval=0.1, what="the chunked flood to be cut"))

            # 5. Wrong tokens, many.
            lid = url_path.rsplit("/", 1)[1].split(".")[0]
            for i in range(300):
                token = "%064x" % rng.getrandbits(256)
                status, _ = post(self.port, "%s/%s.%s" % (HOOK_PATH, lid, token),
                                 json.dumps({"request_id": remote["id"], "status": "cancelled"}).encode())
                self.assertEqual(status, 404)
        finally:
            stop.set()
            good.join(60)
        rss_after = rss_kb(pid)
        print("\nwebhook crowd: %d socket status calls served meanwhile; hitld RSS %d -> %d KiB"
              % (counts["status"], rss_before, rss_after), file=sys.stderr)
        self.assertEqual(errors, [])
        self.assertGreater(counts["status"], 0)
        self.assertEqual(self.c.call("request.get", {"id": r["id"]})["state"], "pending")
        if not SANITIZER:
            # Bounded by max_connections x (16 KiB of headers + 64 KiB of
            # body): 2.5 MiB here; allow heap slack, far below what 2,000
            # connections held with their buffers would take.
            self.assertLess(rss_after - rss_before, 16 * 1024)
        # One log entry for all of this source's refusals within the minute.
        self.assert_logged_once_a_minute()
        self.assertGreaterEqual(self.webhook_status()["rejected"], 300)

        # The listener still works: the reviewer's answer arrives by callback.
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        got = self.wait_state(r["id"], "completed")
        self.assertEqual(got["result"], "approve")
        self.assertEqual(self.webhook_status()["received"], 1)


class TestSocketActivation(HitldTestCase):
    """hitld-webhook.socket: systemd binds the port and passes it named
    "webhook" beside the control socket (LISTEN_FDNAMES)."""
    START_DAEMON = False

    def start_activated(self, names, webhook_cfg):
        from systemd_support import CommandDaemon
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl_path = os.path.join(self.tmp, "activated.sock")
        ctl.bind(ctl_path)
        ctl.listen(16)
        self.addCleanup(ctl.close)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)
        self.addCleanup(tcp.close)
        port = tcp.getsockname()[1]
        cfg = {"budget": {"min_poll_interval_s": 3600}}
        if webhook_cfg is not None:
            cfg["webhook"] = {k: v.replace("PORT", str(port)) for k, v in webhook_cfg.items()}
        d = CommandDaemon(self.tmp, self.emu, config_extra=cfg, name="activated", inherit_fds=[ctl.fileno(), tcp.fileno()],
                          socket_arg=False, extra_args=["--foreground"], env_extra={"LISTEN_FDNAMES": names})
        d.socket = ctl_path
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        return d, port

    def test_the_named_socket_receives_callbacks(self):
        d, port = self.start_activated("hitld.socket:webhook",
                                       {"public_url": "http://127.0.0.1:PORT/hook"})
        d.start()
        c = d.client()
        self.addCleanup(c.close)
        w = c.call("status")["webhook"]
        self.assertEqual((w["enabled"], w["activated"], w["listen"]), (True, True, "127.0.0.1:%d" % port))
        sub = c.call("request.submit", single_select_request(self.loop_id))
        self.wait_state(sub["id"], "pending", client=c)
        remote = self.emu.requests(hitld_id=sub["id"])[0]
        self.assertTrue(remote["callback_url"].startswith("http://127.0.0.1:%d/hook/%s." % (port, sub["id"])))
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        got = self.wait_state(sub["id"], "completed", client=c)
        self.assertEqual(got["result"], "approve")
        self.assertEqual(c.call("status")["webhook"]["received"], 1)

    def test_without_a_public_url_the_socket_is_not_used(self):
        d, port = self.start_activated("hitld.socket:webhook", None)
        d.start()
        c = d.client()
        self.addCleanup(c.close)
        self.assertEqual(c.call("status")["webhook"]["enabled"], False)
        self.assertIn("webhook.public_url is not set", d.log_text())

    def test_two_unnamed_sockets_are_still_refused(self):
        d, port = self.start_activated("a:b", {"public_url": "http://127.0.0.1:PORT/hook"})
        d.start(wait=False)
        self.assertNotEqual(d.proc.wait(30), 0)
        d.stderr.close()
        self.assertIn("expected exactly one", d.log_text())


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class TestUnits(unittest.TestCase):
    """hitld-webhook.socket is a valid unit for hitld.service; the receiver
    costs the sandbox nothing: the exposure with a drop-in allowing
    webhook.listen's port is the exposure without it (docs: hitld(8),
    CALLBACKS)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hitld-units-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def analyze(self, *args):
        p = subprocess.run(["systemd-analyze"] + list(args), capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr

    def exposure(self, path):
        rc, out = self.analyze("security", "--no-pager", "--offline=true", path)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out)
        self.assertIsNotNone(m, out)
        return float(m.group(1))

    def test_the_socket_verifies_and_the_receiver_costs_no_exposure(self):
        from systemd_support import read_unit, staged_units
        d = staged_units(self.tmp)
        sock = read_unit(os.path.join(d, "hitld-webhook.socket"))["Socket"]
        self.assertEqual(sock["FileDescriptorName"], ["webhook"])
        self.assertEqual(sock["Service"], ["hitld.service"])
        self.assertTrue(all(a.startswith("127.0.0.1:") for a in sock["ListenStream"]), sock["ListenStream"])
        rc, out = self.analyze("verify", "--man=no", os.path.join(d, "hitld-webhook.socket"),
                               os.path.join(d, "hitld.service"), os.path.join(d, "hitld.socket"))
        self.assertEqual((rc, out.strip()), (0, ""))
        for name in ("hitld.service", "hitld@.service"):
            self.assertEqual(read_unit(os.path.join(d, name))["Service"]["SocketBindDeny"], ["any"])
        without = self.exposure(os.path.join(d, "hitld.service"))
        with open(os.path.join(d, "hitld.service")) as f:
            text = f.read()
        listen = os.path.join(d, "hitld-listen.service")
        with open(listen, "w") as f:
            f.write(text.replace("SocketBindDeny=any\n", "SocketBindDeny=any\nSocketBindAllow=tcp:8089\n"))
        self.assertEqual(self.exposure(listen), without)
        self.assertLessEqual(without, 2.0)


class TestConfig(WebhookTestCase):
    START_DAEMON = False

    def setUp(self):
        HitldTestCase.setUp(self)

    def test_listen_without_public_url_is_refused(self):
        d = self.new_daemon({"webhook": {"listen": "127.0.0.1:%d" % free_port()}})
        d.start(wait=False)
        self.assertNotEqual(d.proc.wait(30), 0)
        d.stderr.close()
        self.assertIn("webhook.listen", d.log_text())

    def test_off_by_default(self):
        d = self.new_daemon().start()
        c = d.client()
        self.addCleanup(c.close)
        self.assertEqual(c.call("status")["webhook"]["enabled"], False)
        sub = c.call("request.submit", single_select_request(self.loop_id))
        self.wait_state(sub["id"], "pending", client=c)
        self.assertIsNone(self.emu.requests(hitld_id=sub["id"])[0]["callback_url"])

    def test_a_taken_port_fails_the_start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        port = s.getsockname()[1]
        d = self.new_daemon({"webhook": {"listen": "127.0.0.1:%d" % port,
                                         "public_url": "https://example.com/hook"}})
        d.start(wait=False)
        self.assertNotEqual(d.proc.wait(30), 0)
        d.stderr.close()
        self.assertIn("Failed to bind the webhook listener", d.log_text())


if __name__ == "__main__":
    main()
