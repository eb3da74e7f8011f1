#!/usr/bin/env python3
"""A server that echoes the API key (issue 12 item 12): whatever HITL.sh says
— msg, strings in data, member names — passes through api.c, which replaces
the key with "[redacted]" before anything else sees it. The key must then
appear neither in `status` (readable by every local user), nor in `hitlctl
status`, nor in a request's last_error, nor in an RPC error's data, nor in
the daemon's log. "[redacted]" must appear where the server's text is shown,
which proves the server's words took that path.

The HITL.sh emulator cannot return an arbitrary body, so a small HTTP server
in the test stands in: it answers every call with the status and envelope the
test sets, with {KEY} replaced by the bearer token it was sent.
"""
import http.server
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, HitldTestCase, RpcError, main, single_select_request, wait_for  # noqa: E402
from sec_util import secret_needles  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
LOOP = "a" * 24


class EchoServer:
    def __init__(self):
        self.reply = (500, {"error": True, "msg": "x"})
        self.calls = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                auth = self.headers.get("Authorization", "")
                key = auth[len("Bearer "):] if auth.startswith("Bearer ") else auth
                outer.calls.append((self.command, self.path))
                status, env = outer.reply
                body = json.dumps(env).replace("{KEY}", key).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


ECHO = {
    "error": True,
    "msg": "Invalid API key {KEY} (Authorization: Bearer {KEY})",
    "data": {"key": "{KEY}", "list": ["ok", "also {KEY}"], "{KEY}": {"nested": "{KEY}"}},
}


class Redaction(HitldTestCase):
    START_DAEMON = False

    def setUp(self):
        super().setUp()
        self.srv = EchoServer()
        self.addCleanup(self.srv.stop)
        self.hitld = self.new_daemon({"api": {"base_url": "http://127.0.0.1:%d/v1" % self.srv.port}}).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def assert_no_key(self, what, text):
        for n in secret_needles(KEY):
            self.assertNotIn(n, text, "%s holds the key" % what)

    def hitlctl(self, *args):
        return subprocess.run([HITLCTL, "--socket", self.hitld.socket] + list(args), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_a_refused_key_message_echoing_the_key_is_redacted(self):
        self.srv.reply = (401, ECHO)
        with self.assertRaises(RpcError) as e:
            self.c.call("key.test")
        self.assert_no_key("key.test's error", json.dumps(e.exception.args, default=str))
        st = self.c.call("status")
        self.assert_no_key("status", json.dumps(st))
        self.assertIn("[redacted]", json.dumps(st))
        p = self.hitlctl("status")
        self.assert_no_key("hitlctl status", p.stdout + p.stderr)
        self.assert_no_key("the log", self.hitld.log_text())

    def test_a_server_error_echoing_the_key_is_redacted_in_status_and_log(self):
        self.srv.reply = (503, ECHO)
        rid = self.c.call("request.submit", single_select_request(LOOP))["id"]
        wait_for(lambda: len(self.srv.calls) >= 1, 20, what="a call to the server")
        wait_for(lambda: "Invalid API key" in json.dumps(self.c.call("status")), 20, what="the error in status")
        self.assert_no_key("status", json.dumps(self.c.call("status")))
        self.assertIn("[redacted]", json.dumps(self.c.call("status")))
        self.assert_no_key("request", json.dumps(self.c.call("request.get", {"id": rid})))
        p = self.hitlctl("status")
        self.assert_no_key("hitlctl status", p.stdout + p.stderr)
        self.assert_no_key("the log", self.hitld.log_text())

    def test_a_rejected_create_echoing_the_key_is_redacted_in_last_error(self):
        self.srv.reply = (400, ECHO)
        rid = self.c.call("request.submit", single_select_request(LOOP))["id"]

        def failed():
            r = self.c.call("request.get", {"id": rid})
            return r if r["state"] == "failed" else None
        r = wait_for(failed, 30, what="the create refused")
        self.assert_no_key("request", json.dumps(r))
        self.assertIn("[redacted]", json.dumps(r))
        p = self.hitlctl("get", rid)
        self.assert_no_key("hitlctl get", p.stdout + p.stderr)
        self.assert_no_key("status", json.dumps(self.c.call("status")))
        self.assert_no_key("the log", self.hitld.log_text())

    def test_a_remote_call_error_echoing_the_key_is_redacted_in_the_rpc_error(self):
        self.srv.reply = (422, ECHO)
        with self.assertRaises(RpcError) as e:
            self.c.call("loop.list")
        text = json.dumps(e.exception.args, default=str)
        self.assert_no_key("loop.list's error", text)
        self.assertIn("[redacted]", text)
        self.assert_no_key("the log", self.hitld.log_text())


if __name__ == "__main__":
    main()
