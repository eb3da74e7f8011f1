#!/usr/bin/env python3
"""Tests of the HITL.sh emulator (tests/emulator/hitl_emulator.py) against
docs/HITL-API.md. Each test class runs its own emulator process on an ephemeral
port; every test starts from POST /_emu/reset.

Run: python3 tests/emulator/test_emulator.py [-v]
"""

import email.utils
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.join(HERE, "hitl_emulator.py")
KEY = "hitl_test_" + "a1" * 24
KEY2 = "hitl_test_" + "b2" * 24
MEMBER = "reviewer@example.com"
DEL = object()   # marks a field to delete from a request body
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HEX24_RE = re.compile(r"^[0-9a-f]{24}$")


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def msg(self):
        return self.json.get("msg")

    @property
    def data(self):
        return self.json.get("data")

    def h(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<Resp %s %r>" % (self.status, self.raw[:300])


class Emu:
    """One emulator subprocess."""

    def __init__(self, args=(), keys=(KEY, KEY2), members=(MEMBER,)):
        self.dir = tempfile.mkdtemp(prefix="hitlemu-")
        self.port_file = os.path.join(self.dir, "port.json")
        self.log_path = os.path.join(self.dir, "emu.log")
        cmd = [sys.executable, EMU, "--port", "0", "--port-file", self.port_file, "--quiet"]
        for k in keys:
            cmd += ["--key", k]
        for m in members:
            cmd += ["--loop-member", m]
        cmd += list(args)
        self.errf = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.errf)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("emulator did not start: " + self.stderr())
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.info = json.load(f)
        self.port = self.info["port"]

    def stderr(self):
        try:
            with open(os.path.join(self.dir, "stderr")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, method, path, body=None, key=KEY, headers=None, raw=None,
             ctype="application/json", timeout=10, auth=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Accept": "application/json"}
        if auth is not None:
            h["Authorization"] = auth
        elif key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None and ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        try:
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    def ctl(self, method, path, body=None):
        return self.call(method, path, body=body, key=None)


def req_body(**kw):
    b = {"processing_type": "time-sensitive", "type": "markdown", "priority": "medium",
         "request_text": "Approve this?", "timeout_seconds": 600, "response_type": "single_select",
         "response_config": {"options": ["Approve", "Reject"]}, "default_response": "Reject",
         "platform": "api"}
    for k, v in kw.items():
        if v is DEL:
            b.pop(k, None)
        else:
            b[k] = v
    return b


class EmuCase(unittest.TestCase):
    ARGS = ()
    KEYS = (KEY, KEY2)
    MEMBERS = (MEMBER,)
    ALIGN = True     # move the emulator clock to hh:01:40 so no test straddles an hourly reset

    @classmethod
    def setUpClass(cls):
        cls.emu = Emu(cls.ARGS, cls.KEYS, cls.MEMBERS)
        cls.addClassCleanup(cls.emu.stop)

    def setUp(self):
        r = self.emu.ctl("POST", "/_emu/reset")
        self.assertEqual(r.status, 200, r)
        self.loop = self.emu.info.get("default_loop_id")
        if self.ALIGN:
            now = self.ctl("GET", "/_emu/clock").json["now_epoch"]
            self.advance(3600 - now % 3600 + 100)

    # helpers
    def api(self, method, path, body=None, key=KEY, **kw):
        return self.emu.call(method, path, body=body, key=key, **kw)

    def ctl(self, method, path, body=None):
        return self.emu.ctl(method, path, body)

    def ok(self, r, status=200, msg=None):
        self.assertEqual(r.status, status, r)
        self.assertIs(r.json["error"], False, r)
        if msg is not None:
            self.assertEqual(r.msg, msg)
        return r.data

    def err(self, r, status, msg, data=DEL):
        self.assertEqual(r.status, status, r)
        self.assertIs(r.json["error"], True, r)
        self.assertEqual(r.msg, msg, r)
        if data is not DEL:
            self.assertEqual(r.data, data, r)
        return r

    def create(self, loop=None, key=KEY, **kw):
        r = self.api("POST", "/v1/api/loops/%s/requests" % (loop or self.loop), req_body(**kw), key=key)
        return self.ok(r, 201)["request_id"]

    def respond(self, rid, response_data, **kw):
        body = dict(kw, response_data=response_data)
        r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, body)
        self.assertEqual(r.status, 200, r)
        return r.json

    def get_req(self, rid, key=KEY):
        return self.ok(self.api("GET", "/v1/api/requests/" + rid, key=key))["request"]

    def advance(self, seconds):
        r = self.ctl("POST", "/_emu/clock/advance", {"seconds": seconds})
        self.assertEqual(r.status, 200, r)
        return r.json

    def remaining(self, r):
        return int(r.h("X-RateLimit-Remaining"))

    def stats(self):
        r = self.ctl("GET", "/_emu/stats")
        self.assertEqual(r.status, 200)
        return r.json

    def assert_rl_headers(self, r, limit=None):
        for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Date"):
            self.assertIsNotNone(r.h(h), "%s missing on %s" % (h, r))
        if limit is not None:
            self.assertEqual(int(r.h("X-RateLimit-Limit")), limit)
        self.assertTrue(r.h("Content-Type").startswith("application/json"))
        self.assertEqual(int(r.h("Content-Length")), len(r.raw))


# ==========================================================================

class TestEnvelopeAuthRoutes(EmuCase):
    def test_test_endpoint_shape(self):
        for path in ("/v1/test", "/v1/api/test"):
            r = self.api("GET", path)
            d = self.ok(r, 200, "API key is valid")
            self.assert_rl_headers(r, 100)
            self.assertEqual(d["user_id"], self.emu.info["keys"][KEY])
            self.assertRegex(d["api_key_id"], HEX24_RE)
            self.assertEqual(d["email"], "owner1@example.com")
            self.assertEqual(d["account_status"], "active")
            self.assertEqual(d["permissions"], ["loops:read", "loops:write", "requests:read", "requests:write"])
            rl = d["rate_limit"]
            self.assertEqual(rl["limit"], 100)
            self.assertEqual(rl["remaining"], self.remaining(r))
            self.assertRegex(rl["reset_at"], ISO_RE)
            self.assertTrue(rl["reset_at"].endswith(":00:00Z"))

    def test_auth_missing_header(self):
        for auth in (None, ""):
            with self.subTest(auth=auth):
                if auth is None:
                    r = self.api("GET", "/v1/test", key=None)
                else:
                    r = self.api("GET", "/v1/test", auth=auth)
                self.err(r, 401, "Missing Authorization header")
                self.assert_rl_headers(r, 100)
                self.assertEqual(self.remaining(r), 100)

    def test_auth_malformed_header(self):
        for auth in ("Basic abc", "Bearer", "Bearer ", "Bearer a b", "Bearer  " + KEY, "Token " + KEY,
                     "bearer " + KEY, "BEARER " + KEY):
            with self.subTest(auth=auth):
                r = self.api("GET", "/v1/test", auth=auth)
                self.err(r, 401, "Invalid Authorization header format. Use 'Bearer <api_key>'")
                self.assertEqual(self.remaining(r), 100)

    def test_auth_unknown_revoked_inactive(self):
        self.err(self.api("GET", "/v1/test", key="hitl_test_nope"), 401, "Invalid API key")
        self.assertEqual(self.ctl("POST", "/_emu/keys", {"key": "k_inactive", "status": "inactive"}).status, 201)
        self.err(self.api("GET", "/v1/test", key="k_inactive"), 401, "API key is inactive")
        self.assertEqual(self.ctl("POST", "/_emu/keys/k_inactive", {"status": "active"}).status, 200)
        self.ok(self.api("GET", "/v1/test", key="k_inactive"))
        self.assertEqual(self.ctl("DELETE", "/_emu/keys/k_inactive").status, 200)
        self.err(self.api("GET", "/v1/test", key="k_inactive"), 401, "Invalid API key")

    def test_401_not_counted(self):
        r1 = self.api("GET", "/v1/test")
        for _ in range(3):
            self.api("GET", "/v1/test", key=None)
            self.api("GET", "/v1/test", key="wrong")
        r2 = self.api("GET", "/v1/test")
        self.assertEqual(self.remaining(r1) - 1, self.remaining(r2))

    def test_unknown_routes_404(self):
        for method, path in (("GET", "/v1/api/nothing"), ("GET", "/v1/api/loops/x/y/z"), ("GET", "/"),
                             ("GET", "/api/v1/loops"), ("POST", "/v1/api/test/x")):
            with self.subTest(path=path):
                r = self.api(method, path)
                self.err(r, 404, "Route not found")
                self.assert_rl_headers(r)

    def test_wrong_method_405(self):
        for method, path in (("PUT", "/v1/api/requests"), ("POST", "/v1/test"), ("DELETE", "/v1/api/loops"),
                             ("POST", "/v1/api/requests/" + "0" * 24), ("PUT", "/v1/api/loops/%s/members" % ("0" * 24)),
                             ("GET", "/v1/api/requests/%s/feedback" % ("0" * 24))):
            with self.subTest(method=method, path=path):
                r = self.api(method, path)
                self.err(r, 405, "Method not allowed")
                self.assert_rl_headers(r)

    def test_unconfirmed_routes_404_without_compat(self):
        rid = self.create()
        for method, path, body in (("PATCH", "/v1/api/requests/" + rid, {"priority": "high"}),
                                   ("POST", "/v1/api/requests/%s/cancel" % rid, {}),
                                   ("POST", "/v1/api/requests", req_body(loop_id=self.loop))):
            with self.subTest(method=method, path=path):
                self.err(self.api(method, path, body), 404, "Route not found")
        self.assertEqual(self.get_req(rid)["status"], "pending")

    def test_legacy_paths_behave_identically(self):
        d = self.ok(self.api("GET", "/v1/loops"), 200, "Loops retrieved successfully")
        self.assertEqual(d["count"], 1)
        r = self.api("POST", "/v1/loops/%s/requests" % self.loop, req_body())
        rid = self.ok(r, 201, "Request created and broadcasted successfully")["request_id"]
        self.assertEqual(self.ok(self.api("GET", "/v1/requests/" + rid))["request"]["id"], rid)
        self.assertEqual(self.ok(self.api("GET", "/v1/requests"))["count"], 1)
        self.ok(self.api("GET", "/v1/loops/%s/members" % self.loop))
        self.ok(self.api("DELETE", "/v1/requests/" + rid), 200, "Request cancelled successfully")

    def test_headers_on_every_response(self):
        responses = [self.api("GET", "/v1/api/loops"), self.api("GET", "/v1/api/nope"),
                     self.api("POST", "/v1/api/loops", {}), self.api("GET", "/v1/test", key="bad"),
                     self.api("GET", "/v1/api/requests/" + "f" * 24)]
        self.ctl("POST", "/_emu/faults", {"kind": "500"})
        responses.append(self.api("GET", "/v1/api/loops"))
        self.assertEqual([r.status for r in responses], [200, 404, 400, 401, 404, 500])
        for r in responses:
            self.assert_rl_headers(r, 100)
            self.assertEqual(int(r.h("X-RateLimit-Reset")) % 3600, 0)
            self.assertIn("error", r.json)
            self.assertIn("msg", r.json)
            self.assertIn("data", r.json)

    def test_head_is_get_without_body(self):
        r1 = self.api("GET", "/v1/test")
        r = self.api("HEAD", "/v1/test")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.raw, b"")
        self.assertGreater(int(r.h("Content-Length")), 0)
        self.assertEqual(self.remaining(r), self.remaining(r1) - 1)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.port, timeout=5)
        try:
            socks = []
            for _ in range(3):
                conn.request("GET", "/v1/test", headers={"Authorization": "Bearer " + KEY})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.version, 11)
                socks.append(conn.sock)
            self.assertIsNotNone(socks[0])
            self.assertTrue(all(s is socks[0] for s in socks))
        finally:
            conn.close()

    def test_body_needs_json_content_type(self):
        r = self.api("POST", "/v1/api/loops/%s/requests" % self.loop, raw=json.dumps(req_body()).encode(),
                     ctype="application/x-www-form-urlencoded")
        self.err(r, 400, "Invalid request body")
        self.assertEqual(r.data["field"], "body")


class TestLoops(EmuCase):
    def test_create_loop(self):
        r = self.api("POST", "/v1/api/loops", {"name": "Moderation", "icon": "shield-check",
                                               "description": "Review content"})
        d = self.ok(r, 201, "Loop created successfully with QR code")
        loop = d["loop"]
        self.assertRegex(loop["id"], HEX24_RE)
        self.assertEqual((loop["name"], loop["icon"], loop["description"]),
                         ("Moderation", "shield-check", "Review content"))
        uid = self.emu.info["keys"][KEY]
        self.assertEqual(loop["creator_id"], uid)
        self.assertEqual(len(loop["members"]), 1)
        m = loop["members"][0]
        self.assertEqual((m["user_id"], m["email"], m["status"]), (uid, "owner1@example.com", "active"))
        self.assertRegex(m["joined_at"], ISO_RE)
        self.assertEqual((loop["member_count"], loop["pending_count"]), (1, 0))
        self.assertRegex(loop["created_at"], ISO_RE)
        self.assertRegex(loop["updated_at"], ISO_RE)
        self.assertRegex(d["invite_code"], r"^[A-Z0-9]{6}$")
        self.assertTrue(d["qr_code_base64"].startswith("data:image/png;base64,"))
        self.assertEqual(d["qr_code_url"], "https://api.hitl.sh/qr/%s.png" % d["invite_code"])
        self.assertEqual(d["join_url"], "https://my.hitl.sh/join/%s" % d["invite_code"])
        self.assertEqual(self.ok(self.api("GET", "/v1/api/loops/" + loop["id"]))["loop"], loop)

    def test_create_loop_validation(self):
        cases = [
            ({"icon": "x"}, "Validation failed", "name is required"),
            ({"name": "", "icon": "x"}, "Validation failed", "name must be between 1 and 100 characters"),
            ({"name": "n" * 101, "icon": "x"}, "Validation failed", "name must be between 1 and 100 characters"),
            ({"name": 5, "icon": "x"}, "Validation failed", "name must be a string"),
            ({"name": "n", "icon": "x", "description": "d" * 501}, "Validation failed",
             "description must be at most 500 characters"),
            ({"name": "n"}, "Validation failed", "icon is required"),
            ({"name": "n", "icon": "i" * 101}, "Validation failed", "icon must be between 1 and 100 characters"),
        ]
        for body, msg, data in cases:
            with self.subTest(body=body):
                self.err(self.api("POST", "/v1/api/loops", body), 400, msg, data)
        for body in ({"name": "n" * 100, "icon": "i" * 100, "description": "d" * 500}, {"name": "n", "icon": "🛡"}):
            with self.subTest(body=body):
                self.ok(self.api("POST", "/v1/api/loops", body), 201)
        for raw in (b"{not json", b"[1,2]", b"\"x\"", b"NaN"):
            with self.subTest(raw=raw):
                r = self.api("POST", "/v1/api/loops", raw=raw)
                self.err(r, 400, "Invalid request body", {"field": "body", "issue": "Field is required"})

    def test_list_loops_created_or_member(self):
        self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "other-with-me", "members": ["owner1@example.com"]})
        self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "other-pending", "pending_members": ["owner1@example.com"]})
        self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "other-private"})
        d = self.ok(self.api("GET", "/v1/api/loops"), 200, "Loops retrieved successfully")
        self.assertEqual(sorted(lp["name"] for lp in d["loops"]), ["default", "other-with-me"])
        self.assertEqual(d["count"], 2)
        d2 = self.ok(self.api("GET", "/v1/api/loops", key=KEY2))
        self.assertEqual(d2["count"], 3)

    def test_get_loop_errors(self):
        other = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "private"}).json["id"]
        self.err(self.api("GET", "/v1/api/loops/" + other), 403, "Access denied to this loop")
        self.err(self.api("GET", "/v1/api/loops/" + "0" * 24), 404, "Loop not found")
        for bad in ("123", "z" * 24, "0" * 25):
            self.err(self.api("GET", "/v1/api/loops/" + bad), 400, "Invalid loop ID format")
        d = self.ok(self.api("GET", "/v1/api/loops/" + self.loop), 200, "Loop retrieved successfully")
        self.assertEqual(d["loop"]["member_count"], 2)
        self.ok(self.api("GET", "/v1/api/loops/" + self.loop.upper()))

    def test_member_counts_include_pending(self):
        self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": "p@example.com", "status": "pending"})
        loop = self.ok(self.api("GET", "/v1/api/loops/" + self.loop))["loop"]
        self.assertEqual((loop["member_count"], loop["pending_count"]), (3, 1))
        pend = [m for m in loop["members"] if m["status"] == "pending"][0]
        self.assertIsNone(pend["joined_at"])

    def test_update_loop(self):
        self.advance(120)
        before = self.ok(self.api("GET", "/v1/api/loops/" + self.loop))["loop"]
        self.advance(120)
        d = self.ok(self.api("PUT", "/v1/api/loops/" + self.loop, {"description": "new"}), 200,
                    "Loop updated successfully")
        self.assertEqual(d["loop"]["description"], "new")
        self.assertEqual(d["loop"]["name"], "default")
        self.assertEqual(d["loop"]["members"], before["members"])
        self.assertGreater(d["loop"]["updated_at"], before["updated_at"])
        self.err(self.api("PUT", "/v1/api/loops/" + self.loop, {}), 400,
                 "At least one field must be provided for update")
        self.err(self.api("PUT", "/v1/api/loops/" + self.loop, {"unrelated": 1}), 400,
                 "At least one field must be provided for update")
        self.err(self.api("PUT", "/v1/api/loops/" + self.loop), 400, "At least one field must be provided for update")
        self.err(self.api("PUT", "/v1/api/loops/" + self.loop, {"name": ""}), 400, "Validation failed",
                 "name must be between 1 and 100 characters")
        self.err(self.api("PUT", "/v1/api/loops/" + self.loop, {"name": "x"}, key=KEY2), 403,
                 "Access denied to this loop")
        self.err(self.api("PUT", "/v1/api/loops/" + "0" * 24, {"name": "x"}), 404, "Loop not found")

    def test_member_cannot_modify(self):
        loop = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "shared", "members": ["owner1@example.com"]}).json
        self.ok(self.api("GET", "/v1/api/loops/" + loop["id"]))
        self.err(self.api("PUT", "/v1/api/loops/" + loop["id"], {"name": "x"}), 403, "Access denied to this loop")
        self.err(self.api("DELETE", "/v1/api/loops/" + loop["id"]), 403, "Access denied to this loop")
        self.err(self.api("POST", "/v1/api/loops/%s/requests" % loop["id"], req_body()), 403,
                 "Only loop creators can create requests")

    def test_delete_loop_cascades(self):
        r1 = self.create()
        r2 = self.create()
        self.respond(r2, "Approve")
        d = self.ok(self.api("DELETE", "/v1/api/loops/" + self.loop), 200, "Loop deleted successfully")
        self.assertEqual(d["loop_id"], self.loop)
        self.assertRegex(d["deleted_at"], ISO_RE)
        self.assertEqual(d["deleted_data"], {"members_removed": 2, "requests_deleted": 2, "responses_deleted": 1})
        self.err(self.api("GET", "/v1/api/requests/" + r1), 404, "Request not found")
        self.err(self.api("GET", "/v1/api/requests/" + r2), 404, "Request not found")
        self.err(self.api("GET", "/v1/api/loops/" + self.loop), 404, "Loop not found")
        self.assertEqual(self.ok(self.api("GET", "/v1/api/requests"))["total"], 0)
        self.assertEqual(self.ctl("GET", "/_emu/requests").json["requests"], [])
        self.err(self.api("DELETE", "/v1/api/loops/" + self.loop), 404, "Loop not found")

    def test_delete_loop_only_creator(self):
        self.err(self.api("DELETE", "/v1/api/loops/" + self.loop, key=KEY2), 403, "Access denied to this loop")
        self.ok(self.api("GET", "/v1/api/loops/" + self.loop))

    def test_members_endpoint(self):
        self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": "p@example.com", "status": "pending"})
        d = self.ok(self.api("GET", "/v1/api/loops/%s/members" % self.loop), 200,
                    "Loop members retrieved successfully")
        self.assertEqual((d["total_count"], d["active_count"], d["pending_count"]), (3, 2, 1))
        roles = {m["email"]: (m["role"], m["status"]) for m in d["members"]}
        self.assertEqual(roles, {"owner1@example.com": ("admin", "active"), MEMBER: ("member", "active"),
                                 "p@example.com": ("member", "pending")})
        for m in d["members"]:
            self.assertEqual(set(m), {"user_id", "email", "status", "joined_at", "role", "last_active"})
            if m["status"] == "pending":
                self.assertIsNone(m["joined_at"])
                self.assertIsNone(m["last_active"])
            else:
                self.assertRegex(m["last_active"], ISO_RE)
        self.assertEqual(set(d["statistics"]), {"avg_join_time_days", "newest_member_joined", "oldest_member_joined"})
        other = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "private"}).json["id"]
        self.err(self.api("GET", "/v1/api/loops/%s/members" % other), 403, "Access denied to this loop")
        self.err(self.api("GET", "/v1/api/loops/%s/members" % ("0" * 24)), 404, "Loop not found")
        self.err(self.api("GET", "/v1/api/loops/bad/members"), 400, "Invalid loop ID format")

    def test_remove_member(self):
        m = self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": "gone@example.com"}).json
        base = "/v1/api/loops/%s/members/" % self.loop
        self.err(self.api("DELETE", base + m["user_id"], key=KEY2), 403, "Access denied to this loop")
        d = self.ok(self.api("DELETE", base + m["user_id"]), 200, "Member removed from loop successfully")
        self.assertEqual((d["loop_id"], d["user_id"]), (self.loop, m["user_id"]))
        self.assertRegex(d["removed_at"], ISO_RE)
        self.err(self.api("DELETE", base + m["user_id"]), 404, "Member not found in this loop")
        self.err(self.api("DELETE", base + self.emu.info["keys"][KEY]), 400, "Loop creator cannot be removed")
        self.err(self.api("DELETE", base + "nothex"), 400, "Invalid user ID format")
        self.err(self.api("DELETE", "/v1/api/loops/%s/members/%s" % ("0" * 24, m["user_id"])), 404, "Loop not found")
        loop = self.ok(self.api("GET", "/v1/api/loops/" + self.loop))["loop"]
        self.assertEqual(loop["member_count"], 2)

    def test_loop_requests_listing(self):
        a = self.create(request_text="first")
        self.advance(5)
        b = self.create(request_text="second")
        d = self.ok(self.api("GET", "/v1/api/loops/%s/requests" % self.loop), 200,
                    "Loop requests retrieved successfully")
        self.assertEqual(d["loop_id"], self.loop)
        self.assertEqual(d["count"], 2)
        self.assertEqual([x["id"] for x in d["requests"]], [b, a])
        self.assertIn("context", d["requests"][0])
        self.assertIsInstance(d["requests"][0]["broadcasted_to"], list)
        other = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "private"}).json["id"]
        self.err(self.api("GET", "/v1/api/loops/%s/requests" % other), 403, "Access denied to this loop")
        self.err(self.api("GET", "/v1/api/loops/%s/requests" % ("0" * 24)), 404, "Loop not found")


class TestCreateRequest(EmuCase):
    def post(self, body, loop=None, key=KEY):
        return self.api("POST", "/v1/api/loops/%s/requests" % (loop or self.loop), body, key=key)

    def test_create_shape(self):
        self.advance(0)
        r = self.post(req_body(priority="high", timeout_seconds=3600))
        d = self.ok(r, 201, "Request created and broadcasted successfully")
        # request_id only: the id duplicate was one test script's reading.
        self.assertEqual(set(d), {"request_id", "status", "processing_type", "type", "priority",
                                  "timeout_at", "broadcasted_to", "notifications_sent", "polling_url"})
        self.assertRegex(d["request_id"], HEX24_RE)
        self.assertEqual((d["status"], d["processing_type"], d["type"], d["priority"]),
                         ("pending", "time-sensitive", "markdown", "high"))
        self.assertEqual(d["broadcasted_to"], 2)
        self.assertIsInstance(d["broadcasted_to"], int)
        self.assertLessEqual(d["notifications_sent"], d["broadcasted_to"])
        self.assertEqual(d["polling_url"], "/v1/api/requests/" + d["request_id"])
        full = self.get_req(d["request_id"])
        created = email.utils.parsedate_to_datetime(r.h("Date")).timestamp()
        t_created = time.mktime(time.strptime(full["created_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        t_timeout = time.mktime(time.strptime(d["timeout_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertEqual(t_timeout - t_created, 3600)
        self.assertLessEqual(abs(created - t_created), 1)

    def test_missing_required_fields(self):
        for f in ("processing_type", "type", "priority", "request_text", "response_type", "response_config",
                  "default_response"):
            with self.subTest(field=f):
                self.err(self.post(req_body(**{f: DEL})), 400, "Invalid request body",
                         {"field": f, "issue": "Field is required"})
                self.err(self.post(req_body(**{f: None})), 400, "Invalid request body",
                         {"field": f, "issue": "Field is required"})

    def test_bad_bodies(self):
        url = "/v1/api/loops/%s/requests" % self.loop
        for raw in (b"", b"{", b"[]", b"42", b"{\"a\": NaN}", b"\xff\xfe"):
            with self.subTest(raw=raw):
                self.err(self.api("POST", url, raw=raw), 400, "Invalid request body",
                         {"field": "body", "issue": "Field is required"})

    def test_platform_defaults_to_api(self):
        rid = self.ok(self.post(req_body(platform=DEL)), 201)["request_id"]
        self.assertEqual(self.get_req(rid)["platform"], "api")

    def test_field_rules(self):
        V = "Validation failed"
        cases = [
            ("processing_type enum", {"processing_type": "urgent"}, V,
             "processing_type must be one of: time-sensitive, deferred"),
            ("type enum", {"type": "pdf"}, V, "type must be one of: markdown, image, file, video, audio"),
            ("priority enum", {"priority": "urgent"}, V, "priority must be one of: low, medium, high, critical"),
            ("priority case", {"priority": "High"}, V, "priority must be one of: low, medium, high, critical"),
            ("response_type enum", {"response_type": "slider"}, V,
             "response_type must be one of: text, single_select, multi_select, rating, number, boolean, "
             "editable_text"),
            ("platform enum", {"platform": "slack"}, V,
             "platform must be one of: n8n, zapier, web_portal, api, mobile, webhook"),
            ("text empty", {"request_text": ""}, V, "request_text must be between 1 and 2000 characters"),
            ("text long", {"request_text": "x" * 2001}, V, "request_text must be between 1 and 2000 characters"),
            ("text not string", {"request_text": 5}, V, "request_text must be between 1 and 2000 characters"),
            ("text 2001 code points", {"request_text": "é" * 2001}, V,
             "request_text must be between 1 and 2000 characters"),
            ("ts missing timeout", {"timeout_seconds": DEL}, V,
             "timeout_seconds is required for time-sensitive requests"),
            ("ts 59", {"timeout_seconds": 59}, V, "timeout_seconds must be between 60 and 86400"),
            ("ts 86401", {"timeout_seconds": 86401}, V, "timeout_seconds must be between 60 and 86400"),
            ("ts fraction", {"timeout_seconds": 600.5}, V, "timeout_seconds must be an integer"),
            ("ts float literal", {"timeout_seconds": 600.0}, V, "timeout_seconds must be an integer"),
            ("ts string", {"timeout_seconds": "600"}, V, "timeout_seconds must be an integer"),
            ("ts bool", {"timeout_seconds": True}, V, "timeout_seconds must be an integer"),
            ("deferred 59", {"processing_type": "deferred", "timeout_seconds": 59}, V,
             "timeout_seconds must be between 60 and 86400"),
            ("deferred 86401", {"processing_type": "deferred", "timeout_seconds": 86401}, V,
             "timeout_seconds must be between 60 and 86400"),
            ("deferred 30 days given", {"processing_type": "deferred", "timeout_seconds": 2592000}, V,
             "timeout_seconds must be between 60 and 86400"),
            ("image_url on markdown", {"image_url": "http://example.com/a.png"}, V,
             "image_url is only allowed when type is image"),
            ("file without url", {"type": "file", "file_type": "pdf", "file_name": "a.pdf"}, V,
             "file_url is required when type is file"),
            ("file without name", {"type": "file", "file_url": "https://x.example/a.pdf", "file_type": "pdf"}, V,
             "file_name is required when type is file"),
            ("file empty type", {"type": "file", "file_url": "https://x.example/a.pdf", "file_type": "",
                                 "file_name": "a.pdf"}, V, "file_type must be between 1 and 100 characters"),
            ("video without url", {"type": "video"}, V, "video_url is required when type is video"),
            ("video bad url", {"type": "video", "video_url": "rtsp://x.example/a"}, V,
             "video_url must be a valid http or https URL"),
            ("audio url on video", {"type": "video", "video_url": "https://x.example/a.mp4",
                                    "audio_url": "https://x.example/a.mp3"}, V,
             "audio_url is only allowed when type is audio"),
            ("audio without url", {"type": "audio"}, V, "audio_url is required when type is audio"),
            ("image without url", {"type": "image"}, V, "image_url is required when type is image"),
            ("image ftp url", {"type": "image", "image_url": "ftp://x.example/a.png"}, V,
             "image_url must be a valid http or https URL"),
            ("image not url", {"type": "image", "image_url": "not a url"}, V,
             "image_url must be a valid http or https URL"),
            ("callback not url", {"callback_url": "localhost:80/cb"}, V,
             "callback_url must be a valid http or https URL"),
            ("callback number", {"callback_url": 5}, V, "callback_url must be a valid http or https URL"),
            ("context array", {"context": [1]}, V, "context must be an object"),
            ("context string", {"context": "x"}, V, "context must be an object"),
            ("platform_version number", {"platform_version": 1}, V, "platform_version must be a string"),
            ("config not object", {"response_config": ["a"]}, "Invalid response configuration",
             "response_config must be an object"),
        ]
        for name, kw, msg, data in cases:
            with self.subTest(name):
                self.err(self.post(req_body(**kw)), 400, msg, data)

    def test_field_accepts(self):
        cases = [
            ("text 2000", {"request_text": "x" * 2000}),
            ("text 2000 emoji", {"request_text": "😀" * 2000}),
            ("text 1", {"request_text": "x"}),
            ("ts 60", {"timeout_seconds": 60}),
            ("ts 86400", {"timeout_seconds": 86400}),
            ("deferred default", {"processing_type": "deferred", "timeout_seconds": DEL}),
            ("deferred max", {"processing_type": "deferred", "timeout_seconds": 86400}),
            ("image", {"type": "image", "image_url": "https://example.com/a.png"}),
            ("file", {"type": "file", "file_url": "https://example.com/a.pdf", "file_type": "pdf",
                      "file_name": "a.pdf"}),
            ("video", {"type": "video", "video_url": "https://example.com/a.mp4"}),
            ("audio", {"type": "audio", "audio_url": "https://example.com/a.mp3"}),
            ("callback", {"callback_url": "https://example.com/hook"}),
            ("context", {"context": {"hitld_id": "abc", "nested": {"x": [1, 2]}}}),
            ("platform_version", {"platform_version": "1.0.0", "platform": "n8n"}),
            ("all priorities", {"priority": "critical"}),
        ]
        for name, kw in cases:
            with self.subTest(name):
                self.ok(self.post(req_body(**kw)), 201)

    def test_unknown_top_level_fields_are_rejected(self):
        for f, v in (("tags", ["a"]), ("whatever", {"x": 1}), ("id", "x"), ("loop_id", self.loop)):
            with self.subTest(field=f):
                self.err(self.post(req_body(**{f: v})), 400, "Invalid request body",
                         {"field": f, "issue": "Unknown field"})
        errors = self.ctl("GET", "/_emu/stats").json["create_errors"]
        self.assertEqual([e["data"]["field"] for e in errors[-4:]], ["tags", "whatever", "id", "loop_id"])

    def test_create_body_is_kept(self):
        body = req_body(processing_type="deferred", timeout_seconds=DEL)
        rid = self.ok(self.post(body), 201)["request_id"]
        stored = self.ctl("GET", "/_emu/requests").json["requests"][-1]
        self.assertEqual(stored["id"], rid)
        self.assertEqual(stored["create_body"], body)
        self.assertNotIn("timeout_seconds", stored["create_body"])

    def test_deferred_default_timeout(self):
        d = self.ok(self.post(req_body(processing_type="deferred", timeout_seconds=DEL)), 201)
        full = self.get_req(d["request_id"])
        t0 = time.mktime(time.strptime(full["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
        t1 = time.mktime(time.strptime(full["timeout_at"], "%Y-%m-%dT%H:%M:%SZ"))
        self.assertEqual(t1 - t0, 2592000)

    def test_loop_errors(self):
        self.err(self.post(req_body(), loop="0" * 24), 404, "Loop not found")
        self.err(self.post(req_body(), loop="xyz"), 400, "Invalid loop ID format")
        self.err(self.post(req_body(), key=KEY2), 403, "Only loop creators can create requests")

    def test_no_active_members(self):
        owner = self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": "owner1@example.com",
                                                                        "status": "pending"})
        self.assertEqual(owner.status, 200)
        self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": MEMBER, "status": "pending"})
        self.err(self.post(req_body()), 400, "No active members found in the loop")
        self.ctl("POST", "/_emu/loops/%s/members" % self.loop, {"email": MEMBER, "status": "active"})
        d = self.ok(self.post(req_body()), 201)
        self.assertEqual(d["broadcasted_to"], 1)

    def test_stored_request_echoes_and_normalises(self):
        body = req_body(response_config={"options": ["Approve", {"value": "rej", "label": "Reject it",
                                                                  "color": "#ff0000"}], "allow_other": True},
                        default_response="Reject it", context={"hitld_id": "h1"},
                        callback_url="http://127.0.0.1:9/cb", platform_version="2.0")
        rid = self.ok(self.post(body), 201)["request_id"]
        full = self.get_req(rid)
        self.assertEqual(full["response_config"], {
            "options": [{"value": "Approve", "label": "Approve"},
                        {"value": "rej", "label": "Reject it", "color": "#ff0000"}], "allow_other": True})
        self.assertEqual(full["default_response"], "Reject it")
        self.assertEqual(full["context"], {"hitld_id": "h1"})
        self.assertEqual(full["callback_url"], "http://127.0.0.1:9/cb")
        self.assertEqual(full["platform_version"], "2.0")


# --------------------------------------------------------------------------
# section 5: response_config and default_response, table-driven

OPTS3 = ["a", "b", "c"]
CFG = "Invalid response configuration"
VF = "Validation failed"

RESPONSE_CASES = [
    # (name, response_type, config, default, None for 201 | (msg, data))
    # text
    ("text defaults", "text", {}, "hello", None),
    ("text max 5000", "text", {"max_length": 5000}, "x", None),
    ("text max 1", "text", {"max_length": 1}, "x", None),
    ("text max 5001", "text", {"max_length": 5001}, "x", (CFG, "max_length must be an integer between 1 and 5000")),
    ("text max 0", "text", {"max_length": 0}, "x", (CFG, "max_length must be an integer between 1 and 5000")),
    ("text max float", "text", {"max_length": 10.5}, "x", (CFG, "max_length must be an integer between 1 and 5000")),
    ("text min negative", "text", {"min_length": -1}, "x", (CFG, "min_length must be an integer >= 0")),
    ("text min > max", "text", {"min_length": 10, "max_length": 5}, "x", (CFG, "min_length must be <= max_length")),
    ("text min == max", "text", {"min_length": 5, "max_length": 5}, "abcde", None),
    ("text required not bool", "text", {"required": "yes"}, "x", (CFG, "required must be a boolean")),
    ("text placeholder not string", "text", {"placeholder": 3}, "x", (CFG, "placeholder must be a string")),
    ("text min float", "text", {"min_length": 1.5}, "xx", (CFG, "min_length must be an integer >= 0")),
    ("text guidelines not string", "text", {"guidelines": []}, "x", (CFG, "guidelines must be a string")),
    ("text extras", "text", {"placeholder": "p", "guidelines": "g", "required": False, "min_length": 0}, "", None),
    ("text default too long", "text", {"max_length": 5}, "toolong", (VF, "default_response must be at most 5 characters")),
    ("text default default-max 1000", "text", {}, "x" * 1000, None),
    ("text default 1001 over default max", "text", {}, "x" * 1001, (VF, "default_response must be at most 1000 characters")),
    ("text default too short", "text", {"min_length": 3}, "ab", (VF, "default_response must be at least 3 characters")),
    ("text default not string", "text", {}, 5, (VF, "default_response must be a string")),
    ("text default blank but required", "text", {"required": True}, "   ", (VF, "default_response must not be empty")),
    ("text default empty ok", "text", {}, "", None),
    # single_select
    ("single strings", "single_select", {"options": OPTS3}, "b", None),
    ("single one option", "single_select", {"options": ["only"]}, "only", None),
    ("single 20 options", "single_select", {"options": ["o%d" % i for i in range(20)]}, "o19", None),
    ("single 21 options", "single_select", {"options": ["o%d" % i for i in range(21)]}, "o1",
     (CFG, "options must contain between 1 and 20 items")),
    ("single missing options", "single_select", {}, "a", (CFG, "options array required for select response type")),
    ("single empty options", "single_select", {"options": []}, "a", (CFG, "options array required for select response type")),
    ("single options not array", "single_select", {"options": "a,b"}, "a",
     (CFG, "options array required for select response type")),
    ("single duplicate strings", "single_select", {"options": ["a", "a"]}, "a", (CFG, "duplicate option value: a")),
    ("single duplicate objects", "single_select",
     {"options": [{"value": "x", "label": "X"}, {"value": "x", "label": "Y"}]}, "x", (CFG, "duplicate option value: x")),
    ("single duplicate mixed", "single_select", {"options": ["x", {"value": "x", "label": "Other"}]}, "x",
     (CFG, "duplicate option value: x")),
    ("single empty string option", "single_select", {"options": ["a", ""]}, "a",
     (CFG, "options[1] must be a non-empty string of at most 100 characters")),
    ("single string option 100", "single_select", {"options": ["v" * 100]}, "v" * 100, None),
    ("single string option 101", "single_select", {"options": ["v" * 101]}, "v" * 101,
     (CFG, "options[0] must be a non-empty string of at most 100 characters")),
    ("single value 100 label 200", "single_select", {"options": [{"value": "v" * 100, "label": "l" * 200}]},
     "v" * 100, None),
    ("single value 101", "single_select", {"options": [{"value": "v" * 101, "label": "l"}]}, "l",
     (CFG, "options[0].value must be a non-empty string of at most 100 characters")),
    ("single label 201", "single_select", {"options": [{"value": "v", "label": "l" * 201}]}, "v",
     (CFG, "options[0].label must be a non-empty string of at most 200 characters")),
    ("single object no label", "single_select", {"options": [{"value": "v"}]}, "v",
     (CFG, "options[0].label must be a non-empty string of at most 200 characters")),
    ("single object empty value", "single_select", {"options": [{"value": "", "label": "L"}]}, "L",
     (CFG, "options[0].value must be a non-empty string of at most 100 characters")),
    ("single color ok", "single_select", {"options": [{"value": "v", "label": "L", "color": "#00ff00",
                                                       "description": "d"}]}, "v", None),
    ("single color bad", "single_select", {"options": [{"value": "v", "label": "L", "color": "green"}]}, "v",
     (CFG, "options[0].color must be a hex color #rrggbb")),
    ("single description bad", "single_select", {"options": [{"value": "v", "label": "L", "description": 5}]}, "v",
     (CFG, "options[0].description must be a string")),
    ("single option number", "single_select", {"options": ["a", 7]}, "a",
     (CFG, "options[1] must be a string or an object with value and label")),
    ("single guide extras accepted", "single_select", {"options": OPTS3, "allow_other": True,
                                                       "randomize_order": False}, "a", None),
    ("single default unknown", "single_select", {"options": OPTS3}, "z", (VF, "default_response must be one of the option values")),
    ("single default not string", "single_select", {"options": OPTS3}, 1, (VF, "default_response must be one of the option values")),
    ("single default structured rejected", "single_select", {"options": OPTS3}, {"selected_value": "a"},
     (VF, "default_response must be one of the option values")),
    ("single default by label", "single_select", {"options": [{"value": "approve", "label": "Approve it"}]},
     "Approve it", None),
    ("single default by ci label", "single_select", {"options": [{"value": "approve", "label": "Approve it"}]},
     "aPPROVE IT", None),
    ("single default by snake label", "single_select", {"options": [{"value": "nmw", "label": "Needs More Work"}]},
     "needs_more_work", None),
    ("single default by snake of string option", "single_select", {"options": ["✅ Approve", "❌ Reject"]},
     "approve", None),
    ("single default snake mismatch", "single_select", {"options": [{"value": "nmw", "label": "Needs More Work"}]},
     "needs-more-work", (VF, "default_response must be one of the option values")),
    ("single value is case sensitive", "single_select", {"options": [{"value": "yes", "label": "Y"}]},
     "YES", (VF, "default_response must be one of the option values")),
    # multi_select
    ("multi ok", "multi_select", {"options": OPTS3}, ["a"], None),
    ("multi empty default min 0", "multi_select", {"options": OPTS3}, [], None),
    ("multi all three default max", "multi_select", {"options": OPTS3}, ["a", "b", "c"], None),
    ("multi bounds 0..3", "multi_select", {"options": OPTS3, "min_selections": 0, "max_selections": 3}, ["c"], None),
    ("multi min 3 max 3", "multi_select", {"options": OPTS3, "min_selections": 3, "max_selections": 3},
     ["a", "b", "c"], None),
    ("multi max 0", "multi_select", {"options": OPTS3, "max_selections": 0}, [], None),
    ("multi min negative", "multi_select", {"options": OPTS3, "min_selections": -1}, [],
     (CFG, "min_selections must be an integer >= 0")),
    ("multi max over options", "multi_select", {"options": OPTS3, "max_selections": 4}, [],
     (CFG, "max_selections must be <= 3 (the number of options)")),
    ("multi min over options", "multi_select", {"options": OPTS3, "min_selections": 4}, [],
     (CFG, "min_selections must be <= 3 (the number of options)")),
    ("multi min > max", "multi_select", {"options": OPTS3, "min_selections": 2, "max_selections": 1}, ["a"],
     (CFG, "max_selections must be >= min_selections")),
    ("multi max float", "multi_select", {"options": OPTS3, "max_selections": 1.5}, [],
     (CFG, "max_selections must be an integer >= 0")),
    ("multi missing options", "multi_select", {"max_selections": 1}, [],
     (CFG, "options array required for select response type")),
    ("multi duplicate options", "multi_select", {"options": ["a", "b", "a"]}, [], (CFG, "duplicate option value: a")),
    ("multi default under min", "multi_select", {"options": OPTS3, "min_selections": 1}, [],
     (VF, "default_response must contain at least 1 selections")),
    ("multi default over max", "multi_select", {"options": OPTS3, "max_selections": 1}, ["a", "b"],
     (VF, "default_response must contain at most 1 selections")),
    ("multi default duplicate", "multi_select", {"options": OPTS3}, ["a", "a"],
     (VF, "default_response must not contain duplicate selections")),
    ("multi default value+label duplicate", "multi_select", {"options": [{"value": "a", "label": "A1"}, "b"]},
     ["a", "A1"], (VF, "default_response must not contain duplicate selections")),
    ("multi default not array", "multi_select", {"options": OPTS3}, "a",
     (VF, "default_response must be an array of option values")),
    ("multi default unknown", "multi_select", {"options": OPTS3}, ["z"],
     (VF, "default_response must contain only option values")),
    ("multi default by label", "multi_select", {"options": [{"value": "s", "label": "Spam"}, "b"]}, ["Spam", "b"], None),
    ("multi required needs one", "multi_select", {"options": OPTS3, "required": True}, [],
     (VF, "default_response must contain at least 1 selections")),
    # rating
    ("rating ok", "rating", {"scale_max": 5}, 3, None),
    ("rating min edge", "rating", {"scale_max": 5}, 1, None),
    ("rating max edge", "rating", {"scale_max": 5}, 5, None),
    ("rating default above", "rating", {"scale_max": 5}, 6, (VF, "default_response must be between 1 and 5")),
    ("rating default below", "rating", {"scale_max": 5}, 0, (VF, "default_response must be between 1 and 5")),
    ("rating default off step", "rating", {"scale_max": 5}, 3.5, (VF, "default_response must be on a step of 1 from 1")),
    ("rating half step", "rating", {"scale_max": 5, "scale_step": 0.5}, 3.5, None),
    ("rating tenth step float", "rating", {"scale_min": 0, "scale_max": 1, "scale_step": 0.1}, 0.3, None),
    ("rating default string", "rating", {"scale_max": 5}, "3", (VF, "default_response must be a number")),
    ("rating default bool", "rating", {"scale_max": 5}, True, (VF, "default_response must be a number")),
    ("rating missing max", "rating", {"scale_min": 1}, 1, (CFG, "scale_max is required")),
    ("rating max 100", "rating", {"scale_max": 100}, 100, None),
    ("rating max 101", "rating", {"scale_max": 101}, 1, (CFG, "scale_max must be <= 100")),
    ("rating max string", "rating", {"scale_max": "5"}, 1, (CFG, "scale_max must be a number")),
    ("rating min string", "rating", {"scale_max": 5, "scale_min": "1"}, 1, (CFG, "scale_min must be a number")),
    ("rating step string", "rating", {"scale_max": 5, "scale_step": "1"}, 1, (CFG, "scale_step must be a number > 0")),
    ("rating min above max alias", "rating", {"min": 6, "max": 5}, 5, (CFG, "max must be > min")),
    ("rating max == min", "rating", {"scale_min": 5, "scale_max": 5}, 5, (CFG, "scale_max must be > scale_min")),
    ("rating step 0", "rating", {"scale_max": 5, "scale_step": 0}, 1, (CFG, "scale_step must be a number > 0")),
    ("rating step negative", "rating", {"scale_max": 5, "scale_step": -1}, 1, (CFG, "scale_step must be a number > 0")),
    ("rating negative min", "rating", {"scale_min": -5, "scale_max": 5}, -5, None),
    ("rating alias min/max", "rating", {"min": 0, "max": 10}, 0, None),
    ("rating alias min_value/max_value/step", "rating", {"min_value": 1, "max_value": 10, "step": 0.5}, 9.5, None),
    ("rating alias max 101", "rating", {"max": 101}, 1, (CFG, "max must be <= 100")),
    ("rating canonical wins", "rating", {"scale_max": 5, "max": 10}, 7, (VF, "default_response must be between 1 and 5")),
    ("rating canonical min wins", "rating", {"scale_min": 2, "min": 0, "scale_max": 5}, 1,
     (VF, "default_response must be between 2 and 5")),
    ("rating labels", "rating", {"scale_max": 5, "labels": {"1": "Poor", "5": "Great"}}, 5, None),
    ("rating labels non-string", "rating", {"scale_max": 5, "labels": {"1": 3}}, 5, (CFG, "labels must be an object of strings")),
    ("rating labels array", "rating", {"scale_max": 5, "labels": ["Poor"]}, 5, (CFG, "labels must be an object of strings")),
    # number
    ("number ok", "number", {"max_value": 1000}, 299.99, None),
    ("number int", "number", {"max_value": 1000}, 300, None),
    ("number too many decimals", "number", {"max_value": 1000}, 299.999,
     (VF, "default_response must have at most 2 decimal places")),
    ("number dp 0 fraction", "number", {"max_value": 1000, "decimal_places": 0}, 3.5,
     (VF, "default_response must have at most 0 decimal places")),
    ("number dp 4", "number", {"max_value": 1000, "decimal_places": 4}, 1.2345, None),
    ("number negative not allowed", "number", {"max_value": 10, "min_value": -10}, -1,
     (VF, "default_response must not be negative")),
    ("number negative allowed", "number", {"max_value": 10, "min_value": -10, "allow_negative": True}, -5.5, None),
    ("number above max", "number", {"max_value": 1000}, 1001, (VF, "default_response must be <= 1000")),
    ("number below min", "number", {"max_value": 1000, "min_value": 10}, 5, (VF, "default_response must be >= 10")),
    ("number edges", "number", {"max_value": 1000, "min_value": 10}, 1000, None),
    ("number default string", "number", {"max_value": 10}, "5", (VF, "default_response must be a number")),
    ("number missing max", "number", {"min_value": 0}, 1, (CFG, "max_value is required")),
    ("number max not > min", "number", {"max_value": 0}, 0, (CFG, "max_value must be > min_value")),
    ("number max string", "number", {"max_value": "x"}, 0, (CFG, "max_value must be a number")),
    ("number min string", "number", {"max_value": 10, "min_value": "0"}, 1, (CFG, "min_value must be a number")),
    ("number suffix not string", "number", {"max_value": 10, "suffix": 1}, 1, (CFG, "suffix must be a string")),
    ("number aliases not accepted", "number", {"max": 10}, 1, (CFG, "max_value is required")),
    ("number dp 11", "number", {"max_value": 10, "decimal_places": 11}, 1,
     (CFG, "decimal_places must be an integer between 0 and 10")),
    ("number dp 10", "number", {"max_value": 10, "decimal_places": 10}, 1.0000000001, None),
    ("number dp float", "number", {"max_value": 10, "decimal_places": 2.5}, 1,
     (CFG, "decimal_places must be an integer between 0 and 10")),
    ("number allow_negative not bool", "number", {"max_value": 10, "allow_negative": "yes"}, 1,
     (CFG, "allow_negative must be a boolean")),
    ("number prefix not string", "number", {"max_value": 10, "prefix": 5}, 1, (CFG, "prefix must be a string")),
    ("number prefix suffix", "number", {"max_value": 10, "prefix": "$", "suffix": " USD"}, 1, None),
    # editable_text
    ("editable draft", "editable_text", {"draft_text": "Dear customer,", "max_length": 200}, "Dear customer,", None),
    ("editable default max", "editable_text", {"draft_text": "d" * 5000}, "x", None),
    ("editable no draft", "editable_text", {"max_length": 10}, "x",
     (CFG, "draft_text is required for editable_text")),
    ("editable max 0", "editable_text", {"draft_text": "d", "max_length": 0}, "x",
     (CFG, "max_length must be an integer between 1 and 5000")),
    ("editable max 5001", "editable_text", {"draft_text": "d", "max_length": 5001}, "x",
     (CFG, "max_length must be an integer between 1 and 5000")),
    ("editable draft too long", "editable_text", {"draft_text": "abcdef", "max_length": 5}, "x",
     (CFG, "draft_text must be at most max_length characters")),
    ("editable default too long", "editable_text", {"draft_text": "d", "max_length": 3}, "abcd",
     (VF, "default_response must be at most 3 characters")),
    ("editable default object", "editable_text", {"draft_text": "d"}, {"revised_text": "d"},
     (VF, "default_response must be a string")),
    # boolean
    ("boolean empty config", "boolean", {}, True, None),
    ("boolean labels", "boolean", {"true_label": "Safe", "false_label": "Unsafe", "true_color": "#16a34a"}, False, None),
    ("boolean default string", "boolean", {}, "true", (VF, "default_response must be a boolean")),
    ("boolean default int", "boolean", {}, 1, (VF, "default_response must be a boolean")),
    ("boolean label not string", "boolean", {"true_label": 5}, True,
     (CFG, "true_label must be a non-empty string of at most 100 characters")),
    ("boolean label empty", "boolean", {"false_label": ""}, True,
     (CFG, "false_label must be a non-empty string of at most 100 characters")),
    ("boolean color bad", "boolean", {"true_color": "red"}, True, (CFG, "true_color must be a hex color #rrggbb")),
    ("boolean false color bad", "boolean", {"false_color": "#12345"}, True,
     (CFG, "false_color must be a hex color #rrggbb")),
    ("boolean label 101", "boolean", {"true_label": "t" * 101}, True,
     (CFG, "true_label must be a non-empty string of at most 100 characters")),
    ("multi min float", "multi_select", {"options": OPTS3, "min_selections": 0.5}, [],
     (CFG, "min_selections must be an integer >= 0")),
    ("multi option forms mixed", "multi_select", {"options": ["a", {"value": "b", "label": "Bee", "description": "d"}]},
     ["a", "bee"], None),
]


class TestResponseTypes(EmuCase):
    ARGS = ("--limit", "100000")

    def test_config_and_default_rules(self):
        for name, rtype, cfg, default, expect in RESPONSE_CASES:
            with self.subTest(name):
                r = self.api("POST", "/v1/api/loops/%s/requests" % self.loop,
                             req_body(response_type=rtype, response_config=cfg, default_response=default))
                if expect is None:
                    self.ok(r, 201)
                else:
                    self.err(r, 400, expect[0], expect[1])

    def answer_cases(self):
        # (name, rtype, config, answer, expected structured response_data | None for reject, reject reason)
        return [
            ("text", "text", {}, "looks fine", "looks fine", None),
            ("text too long", "text", {"max_length": 3}, "abcd", None, "response_data must be at most 3 characters"),
            ("text required blank", "text", {"required": True}, "  ", None, "response_data must not be empty"),
            ("single plain", "single_select", {"options": ["Approve", "Reject"]}, "Reject",
             {"selected_value": "Reject", "selected_label": "Reject"}, None),
            ("single structured", "single_select", {"options": [{"value": "ok", "label": "✅ OK"}, "No"]},
             {"selected_value": "ok"}, {"selected_value": "ok", "selected_label": "✅ OK"}, None),
            ("single by label", "single_select", {"options": [{"value": "ok", "label": "Looks Good"}]}, "looks_good",
             {"selected_value": "ok", "selected_label": "Looks Good"}, None),
            ("single unknown", "single_select", {"options": ["A"]}, "B", None,
             "response_data must be one of the option values"),
            ("single structured missing key", "single_select", {"options": ["A"]}, {"value": "A"}, None,
             "response_data must contain selected_value"),
            ("multi plain", "multi_select", {"options": [{"value": "s", "label": "Spam"}, "Other"]}, ["s", "Other"],
             {"selected_values": ["s", "Other"], "selected_labels": ["Spam", "Other"]}, None),
            ("multi structured", "multi_select", {"options": OPTS3}, {"selected_values": ["c"]},
             {"selected_values": ["c"], "selected_labels": ["c"]}, None),
            ("multi too many", "multi_select", {"options": OPTS3, "max_selections": 2}, ["a", "b", "c"], None,
             "response_data must contain at most 2 selections"),
            ("multi too few", "multi_select", {"options": OPTS3, "min_selections": 2}, ["a"], None,
             "response_data must contain at least 2 selections"),
            ("rating exact label", "rating", {"scale_max": 5, "labels": {"1": "Poor", "3": "OK", "5": "Great"}}, 5,
             {"rating": 5, "rating_label": "Great"}, None),
            ("rating nearest lower label", "rating", {"scale_max": 5, "labels": {"1": "Poor", "3": "OK"}}, 4,
             {"rating": 4, "rating_label": "OK"}, None),
            ("rating no label", "rating", {"scale_max": 5, "labels": {"3": "OK"}}, 2, {"rating": 2}, None),
            ("rating structured half", "rating", {"scale_max": 5, "scale_step": 0.5}, {"rating": 4.5},
             {"rating": 4.5}, None),
            ("rating out of range", "rating", {"scale_max": 5}, 9, None, "response_data must be between 1 and 5"),
            ("rating off step", "rating", {"scale_max": 10, "scale_step": 2}, 4, None,
             "response_data must be on a step of 2 from 1"),
            ("number formatted", "number", {"max_value": 1000, "prefix": "$", "suffix": " USD"}, 299.99,
             {"number": 299.99, "formatted_value": "$299.99 USD"}, None),
            ("number units", "number", {"max_value": 1000, "suffix": " units", "decimal_places": 0}, 347,
             {"number": 347, "formatted_value": "347 units"}, None),
            ("number structured percent", "number", {"max_value": 100, "suffix": "%"}, {"number": 87.5},
             {"number": 87.5, "formatted_value": "87.5%"}, None),
            ("number decimals", "number", {"max_value": 100, "decimal_places": 1}, 1.25, None,
             "response_data must have at most 1 decimal places"),
            ("number negative", "number", {"max_value": 100, "min_value": -100}, -3, None,
             "response_data must not be negative"),
            ("boolean true", "boolean", {"true_label": "✅ Normal - Approve"}, True,
             {"boolean": True, "boolean_label": "✅ Normal - Approve"}, None),
            ("boolean false default label", "boolean", {}, {"boolean": False},
             {"boolean": False, "boolean_label": "No"}, None),
            ("boolean wrong type", "boolean", {}, "yes", None, "response_data must be a boolean"),
            ("editable edited", "editable_text", {"draft_text": "Hi"}, {"revised_text": "Hello", "was_edited": True},
             {"revised_text": "Hello", "was_edited": True}, None),
            ("editable unchanged", "editable_text", {"draft_text": "Hi"}, "Hi",
             {"revised_text": "Hi", "was_edited": False}, None),
            ("editable too long", "editable_text", {"draft_text": "Hi", "max_length": 3}, "Hello", None,
             "response_data must be at most 3 characters"),
            ("editable without text", "editable_text", {"draft_text": "Hi"}, {"was_edited": True}, None,
             "response_data must contain revised_text"),
        ]

    def test_answers_structured_encoding(self):
        for name, rtype, cfg, answer, want, reason in self.answer_cases():
            with self.subTest(name):
                default = {"text": "", "single_select": None, "multi_select": [], "rating": None,
                           "number": None, "boolean": False, "editable_text": "Hi"}[rtype]
                if rtype == "single_select":
                    o = cfg["options"][0]
                    default = o if isinstance(o, str) else o["value"]
                if rtype == "rating":
                    default = cfg.get("scale_min", 1)
                if rtype == "number":
                    default = cfg.get("min_value", 0) if cfg.get("min_value", 0) >= 0 else 0
                if rtype == "multi_select" and cfg.get("min_selections"):
                    default = OPTS3[:cfg["min_selections"]]
                if rtype == "text" and cfg.get("required"):
                    default = "x"
                rid = self.create(response_type=rtype, response_config=cfg, default_response=default)
                r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, {"response_data": answer})
                if reason:
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json["msg"], "Invalid response_data: " + reason)
                    self.assertEqual(self.get_req(rid)["status"], "pending")
                else:
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(self.get_req(rid)["response_data"], want)


class TestLifecycle(EmuCase):
    def test_claim_release_respond(self):
        rid = self.create()
        member_uid = [m for m in self.ok(self.api("GET", "/v1/api/loops/" + self.loop))["loop"]["members"]
                      if m["email"] == MEMBER][0]["user_id"]
        r = self.ctl("POST", "/_emu/requests/%s/claim" % rid, {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["claimed_by"], member_uid)
        self.assertEqual(self.get_req(rid)["status"], "claimed")
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/claim" % rid, {}).json["msg"], "Request is no longer pending")
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/release" % rid).status, 200)
        self.assertEqual(self.get_req(rid)["status"], "pending")
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/release" % rid).status, 400)
        self.advance(90)
        self.respond(rid, "Approve")
        full = self.get_req(rid)
        self.assertEqual(full["status"], "completed")
        self.assertEqual(full["response_data"], {"selected_value": "Approve", "selected_label": "Approve"})
        self.assertEqual(full["response_by"], member_uid)
        self.assertEqual(full["response_by_user"], {"user_id": member_uid, "name": "reviewer", "email": MEMBER})
        self.assertEqual(full["completed_at"], full["response_at"])
        self.assertRegex(full["response_at"], ISO_RE)
        self.assertAlmostEqual(full["response_time_seconds"], 90, delta=2)
        self.assertIsInstance(full["response_time_seconds"], float)
        r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, {"response_data": "Reject"})
        self.assertEqual((r.status, r.json["msg"]), (400, "Request is no longer pending"))

    def test_full_object_fields(self):
        rid = self.create(context={"hitld_id": "x"})
        full = self.get_req(rid)
        self.assertEqual(set(full), {
            "id", "loop_id", "creator_id", "api_key_id", "processing_type", "type", "priority", "request_text",
            "image_url", "file_url", "file_type", "file_name", "video_url", "audio_url",
            "context", "platform", "platform_version", "response_type", "response_config",
            "default_response", "timeout_at", "callback_url", "broadcasted_to", "broadcasted_at", "status",
            "response_by", "response_at", "response_data", "response_time_seconds", "created_at", "updated_at",
            "response_by_user", "completed_at"})
        self.assertEqual(full["creator_id"], self.emu.info["keys"][KEY])
        self.assertEqual(full["api_key_id"], self.ok(self.api("GET", "/v1/test"))["api_key_id"])
        self.assertEqual(len(full["broadcasted_to"]), 2)
        for b in full["broadcasted_to"]:
            self.assertEqual(set(b), {"user_id", "email", "role", "notification_sent", "notification_error"})
        for f in ("response_by", "response_at", "response_data", "response_time_seconds", "response_by_user",
                  "completed_at"):
            self.assertIsNone(full[f])

    def test_get_request_errors(self):
        rid = self.create()
        self.ctl("POST", "/_emu/keys", {"key": "k_same_user", "email": "owner1@example.com"})
        self.ok(self.api("GET", "/v1/api/requests/" + rid, key="k_same_user"), 200, "Request retrieved successfully")
        self.err(self.api("GET", "/v1/api/requests/" + rid, key=KEY2), 403, "Access denied to this request")
        self.err(self.api("GET", "/v1/api/requests/" + "0" * 24), 404, "Request not found")
        self.err(self.api("GET", "/v1/api/requests/123"), 400, "Invalid request ID format")

    def test_timeout_via_clock(self):
        rid = self.create(timeout_seconds=60)
        self.advance(58)
        self.assertEqual(self.get_req(rid)["status"], "pending")
        self.advance(3)
        full = self.get_req(rid)
        self.assertEqual(full["status"], "timeout")
        self.assertIsNone(full["response_data"])
        self.assertIsNone(full["response_by"])
        self.assertIsNone(full["response_at"])
        self.assertEqual(full["default_response"], "Reject")
        self.assertEqual(full["updated_at"], full["timeout_at"])
        r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, {"response_data": "Approve"})
        self.assertEqual((r.status, r.json["msg"]), (400, "Request is no longer pending"))

    def test_claimed_request_times_out_too(self):
        rid = self.create(timeout_seconds=60)
        self.ctl("POST", "/_emu/requests/%s/claim" % rid, {})
        self.advance(61)
        self.assertEqual(self.get_req(rid)["status"], "timeout")

    def test_background_timeout_without_api_calls(self):
        rid = self.create(timeout_seconds=60)
        self.advance(61)
        time.sleep(0.3)
        st = self.ctl("GET", "/_emu/requests?status=timeout").json
        self.assertEqual([x["id"] for x in st["requests"]], [rid])

    def test_cancel_pending_refund_arithmetic(self):
        rid = self.create()
        r0 = self.api("GET", "/v1/test")
        before = self.remaining(r0)
        r = self.api("DELETE", "/v1/api/requests/" + rid)
        d = self.ok(r, 200, "Request cancelled successfully")
        self.assertEqual(d["request_id"], rid)
        self.assertEqual(d["status"], "cancelled")
        self.assertEqual(d["previous_status"], "pending")
        self.assertRegex(d["cancelled_at"], ISO_RE)
        self.assertEqual(d["refund_info"], {"refunded": True, "reason": "Request cancelled before processing began"})
        self.assertEqual(self.remaining(r), before)           # the cancel's unit came back
        self.assertEqual(self.remaining(self.api("GET", "/v1/test")), before - 1)
        self.assertEqual(self.get_req(rid)["status"], "cancelled")
        self.err(self.api("DELETE", "/v1/api/requests/" + rid), 400, "Request cannot be cancelled in current state")

    def test_cancel_claimed_not_refunded(self):
        rid = self.create()
        self.ctl("POST", "/_emu/requests/%s/claim" % rid, {})
        before = self.remaining(self.api("GET", "/v1/test"))
        r = self.api("DELETE", "/v1/api/requests/" + rid)
        d = self.ok(r)
        self.assertEqual(d["previous_status"], "claimed")
        self.assertEqual(d["refund_info"], {"refunded": False,
                                            "reason": "Request was already being processed by reviewer"})
        self.assertEqual(self.remaining(r), before - 1)

    def test_cancel_terminal_and_access(self):
        done = self.create()
        self.respond(done, "Approve")
        self.err(self.api("DELETE", "/v1/api/requests/" + done), 400, "Request cannot be cancelled in current state")
        to = self.create(timeout_seconds=60)
        self.advance(61)
        self.err(self.api("DELETE", "/v1/api/requests/" + to), 400, "Request cannot be cancelled in current state")
        rid = self.create()
        self.err(self.api("DELETE", "/v1/api/requests/" + rid, key=KEY2), 403, "Access denied to this request")
        self.err(self.api("DELETE", "/v1/api/requests/" + "0" * 24), 404, "Request not found")
        self.err(self.api("DELETE", "/v1/api/requests/zz"), 400, "Invalid request ID format")
        self.assertEqual(self.get_req(rid)["status"], "pending")

    def test_feedback_rules(self):
        rid = self.create()
        url = "/v1/api/requests/%s/feedback" % rid
        self.err(self.api("POST", url, {"feedback": {"rating": 5}}), 400,
                 "Feedback can only be added to completed requests")
        self.respond(rid, "Approve")
        self.err(self.api("POST", url, {}), 400, "Invalid request body", {"field": "feedback", "issue": "Field is required"})
        self.err(self.api("POST", url, {"feedback": "great"}), 400, "Invalid request body")
        self.err(self.api("POST", url, {"feedback": {}}), 400, "Validation failed")
        for fb in ({"rating": 6}, {"rating": 0}, {"accuracy": 0}, {"timeliness": 5.5}, {"helpfulness": "5"},
                   {"rating": True}):
            with self.subTest(fb=fb):
                self.err(self.api("POST", url, {"feedback": fb}), 400, "Rating values must be between 1 and 5")
        self.err(self.api("POST", url, {"feedback": {"comment": "c" * 1001}}), 400,
                 "Comment exceeds maximum length of 1000 characters")
        self.err(self.api("POST", url, {"feedback": {"category": "meh"}}), 400, "Validation failed",
                 "category must be one of: positive, constructive, issue")
        self.err(self.api("POST", url, {"feedback": {"would_recommend": "yes"}}), 400, "Validation failed",
                 "would_recommend must be a boolean")
        self.err(self.api("POST", url, {"feedback": {"tags": "quick"}}), 400, "Validation failed",
                 "tags must be an array of strings")
        self.err(self.api("POST", url, {"feedback": {"rating": 5}}, key=KEY2), 404, "Request not found")
        self.ctl("POST", "/_emu/keys", {"key": "k_same_user", "email": "owner1@example.com"})
        self.err(self.api("POST", url, {"feedback": {"rating": 5}}, key="k_same_user"), 404, "Request not found")
        fb = {"rating": 5, "comment": "c" * 1000, "accuracy": 1, "timeliness": 4.5, "helpfulness": 3,
              "would_recommend": True, "tags": ["thorough"], "follow_up_needed": False, "category": "positive",
              "custom_key": {"x": 1}}
        d = self.ok(self.api("POST", url, {"feedback": fb}), 200, "Feedback added successfully")
        self.assertEqual(d["request_id"], rid)
        self.assertEqual(d["feedback"], fb)
        self.assertRegex(d["feedback_id"], HEX24_RE)
        self.assertRegex(d["submitted_at"], ISO_RE)
        self.assertIs(d["reviewer_notified"], True)
        self.err(self.api("POST", url, {"feedback": {"rating": 4}}), 400, "Feedback already exists for this request")
        self.err(self.api("POST", "/v1/api/requests/%s/feedback" % ("0" * 24), {"feedback": {"rating": 4}}), 404,
                 "Request not found")
        self.err(self.api("POST", "/v1/api/requests/x/feedback", {"feedback": {"rating": 4}}), 400,
                 "Invalid request ID format")


class TestRequestList(EmuCase):
    def test_filters_sort_pagination(self):
        ids = {}
        for i, prio in enumerate(["low", "critical", "medium", "high", "medium"]):
            ids[i] = self.create(priority=prio, request_text="r%d" % i)
            self.advance(10)
        self.respond(ids[0], "Approve")
        self.api("DELETE", "/v1/api/requests/" + ids[1])
        d = self.ok(self.api("GET", "/v1/api/requests"), 200, "Requests retrieved successfully")
        self.assertEqual([x["id"] for x in d["requests"]], [ids[i] for i in (4, 3, 2, 1, 0)])
        self.assertEqual((d["count"], d["total"], d["has_more"]), (5, 5, False))
        self.assertEqual(d["pagination"], {"limit": 50, "offset": 0, "next_offset": None})
        self.assertEqual(set(d["requests"][0]), {
            "id", "loop_id", "processing_type", "type", "priority", "request_text", "response_type", "status",
            "response_data", "response_by", "response_at", "response_time_seconds", "timeout_at", "created_at",
            "updated_at"})

        def order(q):
            return [x["id"] for x in self.ok(self.api("GET", "/v1/api/requests" + q))["requests"]]

        self.assertEqual(order("?sort=created_at_asc"), [ids[i] for i in range(5)])
        self.assertEqual(order("?sort=priority_desc"), [ids[i] for i in (1, 3, 4, 2, 0)])
        self.assertEqual(order("?sort=status_asc"), [ids[1], ids[0], ids[4], ids[3], ids[2]])
        self.assertEqual(order("?status=pending"), [ids[i] for i in (4, 3, 2)])
        self.assertEqual(order("?status=completed"), [ids[0]])
        self.assertEqual(order("?priority=medium"), [ids[4], ids[2]])
        self.assertEqual(order("?status=pending&priority=medium&sort=created_at_asc"), [ids[2], ids[4]])
        self.assertEqual(order("?loop_id=" + self.loop), [ids[i] for i in (4, 3, 2, 1, 0)])
        self.assertEqual(order("?loop_id=" + "0" * 24), [])

        d = self.ok(self.api("GET", "/v1/api/requests?limit=2"))
        self.assertEqual((d["count"], d["total"], d["has_more"]), (2, 5, True))
        self.assertEqual(d["pagination"], {"limit": 2, "offset": 0, "next_offset": 2})
        d = self.ok(self.api("GET", "/v1/api/requests?limit=2&offset=2"))
        self.assertEqual([x["id"] for x in d["requests"]], [ids[2], ids[1]])
        self.assertEqual(d["pagination"], {"limit": 2, "offset": 2, "next_offset": 4})
        d = self.ok(self.api("GET", "/v1/api/requests?limit=2&offset=4"))
        self.assertEqual((d["count"], d["has_more"], d["pagination"]["next_offset"]), (1, False, None))
        d = self.ok(self.api("GET", "/v1/api/requests?offset=10"))
        self.assertEqual((d["count"], d["total"], d["has_more"]), (0, 5, False))
        for q, lim, off in (("limit=0", 50, 0), ("limit=101", 50, 0), ("limit=abc", 50, 0), ("limit=100", 100, 0),
                            ("limit=1", 1, 0), ("offset=-1", 50, 0), ("offset=x", 50, 0), ("offset=3", 50, 3)):
            with self.subTest(q=q):
                p = self.ok(self.api("GET", "/v1/api/requests?" + q))["pagination"]
                self.assertEqual((p["limit"], p["offset"]), (lim, off))

    def test_bad_enum_params(self):
        for q, data in (("status=done", "status must be one of: pending, claimed, completed, timeout, cancelled"),
                        ("priority=urgent", "priority must be one of: low, medium, high, critical"),
                        ("sort=newest", "sort must be one of: created_at_desc, created_at_asc, priority_desc, status_asc")):
            with self.subTest(q=q):
                self.err(self.api("GET", "/v1/api/requests?" + q), 400, "Validation failed", data)
        self.err(self.api("GET", "/v1/api/requests?loop_id=nothex"), 400, "Invalid loop ID format")

    def test_only_this_keys_requests(self):
        self.create()
        self.ctl("POST", "/_emu/keys", {"key": "k_same_user", "email": "owner1@example.com"})
        self.assertEqual(self.ok(self.api("GET", "/v1/api/requests"))["total"], 1)
        self.assertEqual(self.ok(self.api("GET", "/v1/api/requests", key="k_same_user"))["total"], 0)
        self.assertEqual(self.ok(self.api("GET", "/v1/api/requests", key=KEY2))["total"], 0)
        rid2 = self.create(key="k_same_user")
        d = self.ok(self.api("GET", "/v1/api/requests", key="k_same_user"))
        self.assertEqual([x["id"] for x in d["requests"]], [rid2])


class TestRateLimit(EmuCase):
    def test_100_then_429_then_window_reset(self):
        self.ctl("POST", "/_emu/keys", {"key": "k_rl"})
        first = None
        for i in range(100):
            r = self.api("GET", "/v1/test", key="k_rl")
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(self.remaining(r), 99 - i)
            self.assertEqual(int(r.h("X-RateLimit-Limit")), 100)
            first = first or r
        reset = int(first.h("X-RateLimit-Reset"))
        self.assertEqual(reset % 3600, 0)
        r = self.api("GET", "/v1/test", key="k_rl")
        self.err(r, 429, "API rate limit exceeded")
        self.assertEqual(self.remaining(r), 0)
        self.assertEqual(int(r.h("X-RateLimit-Reset")), reset)
        self.assertEqual(r.data["usage_count"], 100)
        self.assertEqual(r.data["usage_limit"], 100)
        self.assertEqual(r.data["remaining"], 0)
        self.assertEqual(r.data["reset_at"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset)))
        date = email.utils.parsedate_to_datetime(r.h("Date")).timestamp()
        ra = int(r.h("Retry-After"))
        self.assertGreaterEqual(ra, 1)
        self.assertLessEqual(abs((date + ra) - reset), 2)
        # all endpoints are refused, usage does not grow
        self.err(self.api("GET", "/v1/api/loops", key="k_rl"), 429, "API rate limit exceeded")
        self.assertEqual(self.stats()["over_limit_attempts"], 2)
        pk = self.stats()["per_key"]["****" + "k_rl"[-4:]]
        self.assertEqual((pk["used_in_window"], pk["over_limit_attempts"], pk["calls_total"]), (100, 2, 102))
        # other keys are separate
        self.assertEqual(self.remaining(self.ok_resp(self.api("GET", "/v1/test"))), 99)
        # the window resets at Reset
        now = self.ctl("GET", "/_emu/clock").json["now_epoch"]
        self.advance(reset - now + 0.01)
        r = self.api("GET", "/v1/test", key="k_rl")
        self.ok(r)
        self.assertEqual(self.remaining(r), 99)
        self.assertEqual(int(r.h("X-RateLimit-Reset")), reset + 3600)

    def ok_resp(self, r):
        self.ok(r)
        return r

    def test_errors_count_against_quota(self):
        r1 = self.api("GET", "/v1/test")
        self.api("GET", "/v1/api/nothing")
        self.api("GET", "/v1/api/requests/" + "0" * 24)
        self.api("POST", "/v1/api/loops", {})
        r2 = self.api("GET", "/v1/test")
        self.assertEqual(self.remaining(r1) - self.remaining(r2), 4)

    def test_limit_override_and_spend(self):
        self.ctl("POST", "/_emu/keys", {"key": "k_small", "limit": 5})
        r = self.api("GET", "/v1/test", key="k_small")
        self.assertEqual((int(r.h("X-RateLimit-Limit")), self.remaining(r)), (5, 4))
        s = self.ctl("POST", "/_emu/keys/k_small/spend", {"calls": 2})
        self.assertEqual(s.status, 200)
        self.assertEqual(s.json["remaining"], 2)
        r = self.api("GET", "/v1/test", key="k_small")
        self.assertEqual(self.remaining(r), 1)
        self.ctl("POST", "/_emu/keys/k_small/spend", {"calls": 50})
        r = self.api("GET", "/v1/test", key="k_small")
        self.err(r, 429, "API rate limit exceeded")
        self.assertEqual(r.data["usage_count"], 5)
        self.ctl("POST", "/_emu/keys/k_small", {"limit": 7})
        r = self.api("GET", "/v1/test", key="k_small")
        self.assertEqual((r.status, self.remaining(r), int(r.h("X-RateLimit-Limit"))), (200, 1, 7))
        self.assertEqual(self.ctl("POST", "/_emu/keys/k_small/spend", {"calls": -1}).status, 400)
        self.assertEqual(self.ctl("POST", "/_emu/keys/nokey/spend", {"calls": 1}).status, 404)

    def test_key_control_endpoint(self):
        r = self.ctl("POST", "/_emu/keys", {"key": "k_new", "email": "new@example.com", "limit": 3})
        self.assertEqual(r.status, 201)
        self.assertRegex(r.json["user_id"], HEX24_RE)
        self.assertRegex(r.json["api_key_id"], HEX24_RE)
        r2 = self.ctl("POST", "/_emu/keys", {"key": "k_new2", "email": "new@example.com"})
        self.assertEqual(r2.json["user_id"], r.json["user_id"])
        r3 = self.ctl("POST", "/_emu/keys", {"key": "k_new3", "user_id": r.json["user_id"]})
        self.assertEqual(r3.json["user_id"], r.json["user_id"])
        uid = "abcdef0123456789abcdef01"
        self.assertEqual(self.ctl("POST", "/_emu/keys", {"key": "k_uid", "user_id": uid}).json["user_id"], uid)
        self.assertEqual(self.ok(self.api("GET", "/v1/test", key="k_uid"))["user_id"], uid)
        for bad in ({}, {"key": ""}, {"key": "a b"}, {"key": "x", "limit": -1}, {"key": "x", "status": "gone"},
                    {"key": "x", "user_id": "nothex"}):
            with self.subTest(bad=bad):
                self.assertEqual(self.ctl("POST", "/_emu/keys", bad).status, 400)
        self.assertEqual(self.ctl("POST", "/_emu/keys", {"key": "k_new"}).status, 409)
        self.assertEqual(self.ctl("DELETE", "/_emu/keys/none").status, 404)
        self.assertEqual(self.ctl("POST", "/_emu/keys/none", {"limit": 1}).status, 404)


class TestWindowAndClockOffset(EmuCase):
    ARGS = ("--window", "2", "--clock-offset", "-7200", "--limit", "3")
    ALIGN = False

    def test_short_window_real_wait(self):
        # align to just after a window start so the 3 calls land in one window
        while True:
            now = self.ctl("GET", "/_emu/clock").json["now_epoch"]
            if now % 2 < 0.5:
                break
            time.sleep(0.05)
        rs = [self.api("GET", "/v1/test") for _ in range(4)]
        self.assertEqual([r.status for r in rs], [200, 200, 200, 429])
        reset = int(rs[0].h("X-RateLimit-Reset"))
        self.assertEqual(reset % 2, 0)
        self.assertIn(int(rs[3].h("Retry-After")), (1, 2))
        time.sleep(max(0, reset - self.ctl("GET", "/_emu/clock").json["now_epoch"]) + 0.05)
        r = self.api("GET", "/v1/test")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.remaining(r), 2)

    def test_offset_in_date_and_reset(self):
        r = self.api("GET", "/v1/test")
        date = email.utils.parsedate_to_datetime(r.h("Date")).timestamp()
        self.assertLess(abs(date - (time.time() - 7200)), 3)
        reset = int(r.h("X-RateLimit-Reset"))
        self.assertTrue(0 < reset - (time.time() - 7200) <= 3)
        c = self.ctl("GET", "/_emu/clock").json
        self.assertEqual(c["offset"], -7200)
        self.assertRegex(c["now"], ISO_RE)
        self.ctl("POST", "/_emu/clock/set", {"offset_seconds": 3600})
        r = self.api("GET", "/v1/test")
        date = email.utils.parsedate_to_datetime(r.h("Date")).timestamp()
        self.assertLess(abs(date - (time.time() + 3600)), 3)
        self.assertEqual(self.ctl("POST", "/_emu/clock/set", {"offset_seconds": "x"}).status, 400)
        self.assertEqual(self.ctl("POST", "/_emu/clock/advance", {}).status, 400)
        # reset restores the CLI offset
        self.ctl("POST", "/_emu/reset")
        self.assertEqual(self.ctl("GET", "/_emu/clock").json["offset"], -7200)


class TestFaults(EmuCase):
    def fault(self, **kw):
        r = self.ctl("POST", "/_emu/faults", kw)
        self.assertEqual(r.status, 201, r)
        return r.json

    def test_500_503_with_headers_then_normal(self):
        r0 = self.api("GET", "/v1/test")
        self.fault(kind="500")
        self.fault(kind="503")
        r1 = self.api("GET", "/v1/api/loops")
        self.err(r1, 500, "Internal server error")
        self.assert_rl_headers(r1, 100)
        self.assertEqual(self.remaining(r1), self.remaining(r0))     # nothing processed
        r2 = self.api("GET", "/v1/api/loops")
        self.err(r2, 503, "Service temporarily unavailable")
        self.assert_rl_headers(r2, 100)
        r3 = self.api("GET", "/v1/api/loops")
        self.ok(r3)
        self.assertEqual(self.remaining(r3), self.remaining(r0) - 1)
        calls = self.stats()["calls"]
        self.assertEqual([c.get("fault") for c in calls[-3:]], ["500", "503", None])

    def test_injected_429(self):
        self.fault(kind="429")
        r = self.api("GET", "/v1/test")
        self.err(r, 429, "API rate limit exceeded")
        self.assertEqual(self.remaining(r), 0)
        self.assertGreaterEqual(int(r.h("Retry-After")), 1)
        self.assertEqual(int(r.h("X-RateLimit-Reset")) % 3600, 0)
        self.assertEqual(set(r.data), {"usage_count", "usage_limit", "remaining", "reset_at"})
        self.assertEqual(self.stats()["over_limit_attempts"], 0)
        self.ok(self.api("GET", "/v1/test"))

    def assert_rst(self, fn):
        try:
            fn()
        except http.client.RemoteDisconnected:      # a subclass of ConnectionResetError: a clean FIN
            self.fail("connection closed cleanly, expected a TCP reset")
        except (ConnectionResetError, BrokenPipeError):
            return
        self.fail("no connection error")

    def test_reset_nothing_happens(self):
        self.fault(kind="reset", match={"method": "POST"})
        self.assert_rst(lambda: self.api("POST", "/v1/api/loops/%s/requests" % self.loop,
                                         req_body(context={"hitld_id": "r1"})))
        self.assertEqual(self.ctl("GET", "/_emu/requests").json["requests"], [])
        self.assertEqual(self.ctl("GET", "/_emu/faults").json["faults"], [])
        self.ok(self.api("POST", "/v1/api/loops/%s/requests" % self.loop, req_body()), 201)

    def test_commit_no_reply(self):
        self.fault(kind="commit_no_reply", match={"path_prefix": "/v1/api/loops/"})
        before = self.remaining(self.api("GET", "/v1/test"))
        self.assert_rst(lambda: self.api("POST", "/v1/api/loops/%s/requests" % self.loop,
                                         req_body(context={"hitld_id": "h-77"})))
        found = self.ctl("GET", "/_emu/requests?hitld_id=h-77").json["requests"]
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0]["status"], "pending")
        self.assertEqual(found[0]["hitld_id"], "h-77")
        self.assertEqual(found[0]["api_key"], "****" + KEY[-4:])
        self.assertEqual(self.remaining(self.api("GET", "/v1/test")), before - 2)
        st = self.stats()
        self.assertEqual(st["creates"], 1)
        self.assertEqual([c for c in st["calls"] if c.get("fault")][0]["status"], 201)

    def test_hang_client_timeout(self):
        self.fault(kind="hang", seconds=5)
        t0 = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.api("GET", "/v1/test", timeout=0.5)
        self.assertLess(time.monotonic() - t0, 3)
        self.ok(self.api("GET", "/v1/test"))

    def test_slow(self):
        self.fault(kind="slow", seconds=0.8)
        t0 = time.monotonic()
        d = self.ok(self.api("POST", "/v1/api/loops/%s/requests" % self.loop, req_body()), 201)
        self.assertGreaterEqual(time.monotonic() - t0, 0.75)
        self.assertEqual(self.get_req(d["request_id"])["status"], "pending")

    def test_match_count_fifo_list_clear(self):
        self.fault(kind="500", match={"method": "POST"}, count=2)
        self.fault(kind="503")
        faults = self.ctl("GET", "/_emu/faults").json["faults"]
        self.assertEqual([(f["kind"], f["count"]) for f in faults], [("500", 2), ("503", 1)])
        self.assertEqual(self.api("GET", "/v1/test").status, 503)     # first fault does not match GET
        self.assertEqual(self.api("GET", "/v1/test").status, 200)
        self.assertEqual(self.api("POST", "/v1/api/loops", {"name": "a", "icon": "b"}).status, 500)
        self.assertEqual(self.ctl("GET", "/_emu/health").status, 200)  # control endpoints are never faulted
        self.assertEqual(self.api("POST", "/v1/api/loops", {"name": "a", "icon": "b"}).status, 500)
        self.assertEqual(self.api("POST", "/v1/api/loops", {"name": "a", "icon": "b"}).status, 201)
        self.fault(kind="reset", count=5)
        self.assertEqual(self.ctl("DELETE", "/_emu/faults").json["cleared"], 1)
        self.assertEqual(self.api("GET", "/v1/test").status, 200)

    def test_bad_fault_requests(self):
        for bad in ({"kind": "404"}, {"kind": "500", "count": 0}, {"kind": "hang", "seconds": -1},
                    {"kind": "500", "match": {"host": "x"}}, {}):
            with self.subTest(bad=bad):
                self.assertEqual(self.ctl("POST", "/_emu/faults", bad).status, 400)


class CallbackReceiver:
    def __init__(self):
        self.events = []
        self.times = []
        self.flaky_seen = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.events.append((self.path, json.loads(body), dict(self.headers)))
                outer.times.append((self.path, time.monotonic()))
                code = 200
                if self.path == "/flaky":
                    outer.flaky_seen += 1
                    code = 500 if outer.flaky_seen == 1 else 200
                elif self.path == "/bad":
                    code = 400
                elif self.path.startswith("/code/"):
                    code = int(self.path[len("/code/"):])
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait(self, n, timeout=8):
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TestCallbacksAndStats(EmuCase):
    def setUp(self):
        super().setUp()
        self.rx = CallbackReceiver()
        self.addCleanup(self.rx.close)

    def wait_cb_stats(self, key, n, timeout=8):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cb = self.stats()["callbacks"]
            if cb[key] >= n:
                return cb
            time.sleep(0.05)
        self.fail("callback stats %s never reached %d: %r" % (key, n, self.stats()["callbacks"]))

    def test_completed_timeout_cancelled_callbacks(self):
        a = self.create(callback_url=self.rx.url("/ok"))
        b = self.create(callback_url=self.rx.url("/ok"), timeout_seconds=60)
        c = self.create(callback_url=self.rx.url("/ok"))
        self.advance(30)
        self.respond(a, "Approve")
        self.api("DELETE", "/v1/api/requests/" + c)
        self.advance(31)
        ev = self.rx.wait(3)
        self.assertEqual(len(ev), 3)
        by_id = {e[1]["request_id"]: e for e in ev}
        body = by_id[a][1]
        self.assertEqual(set(body), {"event", "request_id", "loop_id", "status", "response_data", "response_by",
                                     "response_at", "response_time_seconds", "created_at"})
        self.assertEqual((body["event"], body["status"], body["loop_id"]), ("request.completed", "completed", self.loop))
        self.assertEqual(body["response_data"], {"selected_value": "Approve", "selected_label": "Approve"})
        self.assertEqual(body["response_by"]["email"], MEMBER)
        self.assertEqual(set(body["response_by"]), {"user_id", "name", "email"})
        self.assertAlmostEqual(body["response_time_seconds"], 30, delta=2)
        self.assertTrue(by_id[a][2]["Content-Type"].startswith("application/json"))
        self.assertNotIn("X-HITL-Signature-256", by_id[a][2])
        for rid, event in ((b, "request.timeout"), (c, "request.cancelled")):
            body = by_id[rid][1]
            self.assertEqual(body["event"], event)
            for f in ("response_data", "response_by", "response_at", "response_time_seconds"):
                self.assertIsNone(body[f])
        self.assertEqual(self.wait_cb_stats("sent", 3)["sent"], 3)

    def test_retry_on_5xx_not_on_4xx_and_non_loopback_skipped(self):
        a = self.create(callback_url=self.rx.url("/flaky"))
        b = self.create(callback_url=self.rx.url("/bad"))
        c = self.create(callback_url="https://example.com/hook")
        for rid in (a, b, c):
            self.respond(rid, "Approve")
        cb = self.wait_cb_stats("sent", 1)
        cb = self.wait_cb_stats("failed", 1)
        self.assertEqual(cb["skipped_non_loopback"], 1)
        by = {d["request_id"]: d for d in cb["deliveries"]}
        self.assertEqual((by[a]["attempts"], by[a]["result"]), (2, "sent"))
        self.assertEqual((by[b]["attempts"], by[b]["result"], by[b]["last_status"]), (1, "failed", 400))
        self.assertEqual((by[c]["attempts"], by[c]["result"]), (0, "skipped_non_loopback"))
        self.assertEqual([e[0] for e in self.rx.events].count("/flaky"), 2)
        t = [tm for path, tm in self.rx.times if path == "/flaky"]
        self.assertGreaterEqual(t[1] - t[0], 0.9)          # 1 s backoff before the retry
        self.assertEqual([e[0] for e in self.rx.events].count("/bad"), 1)

    def test_stats_duplicates_and_routes(self):
        ids = [self.create(context={"hitld_id": "dup-1"}, request_text="same") for _ in range(3)]
        other = self.create(context={"hitld_id": "one"}, request_text="same")
        self.advance(400)
        late = self.create(context={"hitld_id": "late"}, request_text="same")
        self.api("GET", "/v1/api/requests?status=pending")
        self.api("GET", "/v1/test", key=KEY2)
        st = self.stats()
        self.assertEqual(st["duplicates"]["by_hitld_id"], [ids])
        self.assertEqual(st["duplicates"]["count"], 2)
        self.assertEqual(st["duplicates"]["similar"], [ids + [other]])
        self.assertNotIn(late, sum(st["duplicates"]["similar"], []))
        self.assertEqual(st["creates"], 5)
        self.assertEqual(st["requests_by_status"]["pending"], 5)
        pk = st["per_key"]["****" + KEY[-4:]]
        self.assertEqual(pk["by_route"], {"POST /v1/api/loops/{id}/requests": 5, "GET /v1/api/requests": 1})
        self.assertEqual(pk["calls_total"], 6)
        self.assertEqual(pk["used_in_window"], 6)
        self.assertEqual(pk["limit"], 100)
        self.assertEqual(st["per_key"]["****" + KEY2[-4:]]["by_route"], {"GET /v1/test": 1})
        self.assertEqual(st["calls_total"], 7)
        self.assertEqual(len(st["calls"]), 7)
        c = st["calls"][0]
        self.assertEqual((c["method"], c["status"], c["key"]), ("POST", 201, "****" + KEY[-4:]))
        self.assertRegex(c["t"], ISO_RE)
        self.assertNotIn(KEY, json.dumps(st))
        self.assertEqual(self.ctl("POST", "/_emu/stats/reset").status, 200)
        st = self.stats()
        self.assertEqual((st["calls_total"], st["calls"], st["creates"]), (0, [], 0))
        self.assertEqual(st["requests_by_status"]["pending"], 5)
        self.assertEqual(st["duplicates"]["count"], 2)

    def test_log_never_contains_full_key(self):
        self.api("GET", "/v1/test")
        self.api("GET", "/v1/test", key="hitl_test_unknownkey123456")
        # the class emulator runs --quiet; a dedicated one writes a log file
        emu = Emu(("--log", os.path.join(tempfile.gettempdir(), "hitlemu-%d.log" % os.getpid())))
        try:
            emu.call("GET", "/v1/test")
            emu.call("GET", "/v1/test", key="hitl_test_unknownkey123456")
        finally:
            emu.stop()
        path = os.path.join(tempfile.gettempdir(), "hitlemu-%d.log" % os.getpid())
        with open(path) as f:
            log = f.read()
        os.unlink(path)
        self.assertEqual(len(log.strip().splitlines()), 2)
        self.assertNotIn(KEY, log)
        self.assertNotIn("hitl_test_unknownkey123456", log)
        self.assertIn("****3456", log)


class TestAutoReviewAndControl(EmuCase):
    def test_auto_review_rules_first_default_none(self):
        r = self.ctl("POST", "/_emu/auto-review", {"delay_s": 30, "rules": [
            {"match": "spam", "response_data": "Reject"},
            {"match": "bad rule", "response_data": "Nonexistent"}], "default": "first"})
        self.assertEqual(r.status, 200, r)
        spam = self.create(request_text="this is spam")
        normal = self.create(request_text="normal")
        bad = self.create(request_text="bad rule here")
        rating = self.create(request_text="rate", response_type="rating",
                             response_config={"scale_min": 2, "scale_max": 5}, default_response=4)
        self.advance(29)
        self.assertEqual(self.get_req(spam)["status"], "pending")
        self.advance(2)
        self.assertEqual(self.get_req(spam)["response_data"]["selected_value"], "Reject")
        self.assertEqual(self.get_req(normal)["response_data"]["selected_value"], "Approve")
        self.assertEqual(self.get_req(bad)["status"], "pending")   # invalid rule answer -> no fallback
        self.assertEqual(self.get_req(rating)["response_data"], {"rating": 2})
        self.assertEqual(self.get_req(normal)["response_by_user"]["email"], MEMBER)
        self.assertAlmostEqual(self.get_req(normal)["response_time_seconds"], 30, delta=1.5)

        self.ctl("POST", "/_emu/auto-review", {"delay_s": 10, "default": "default"})
        d = self.create()
        self.advance(11)
        self.assertEqual(self.get_req(d)["response_data"]["selected_value"], "Reject")

        self.ctl("POST", "/_emu/auto-review", {"delay_s": 10, "default": "none"})
        n = self.create()
        self.advance(11)
        self.assertEqual(self.get_req(n)["status"], "pending")

        self.ctl("POST", "/_emu/auto-review", {"enabled": False})
        self.assertEqual(self.ctl("GET", "/_emu/auto-review").json, {"enabled": False})
        off = self.create()
        self.advance(100)
        self.assertEqual(self.get_req(off)["status"], "pending")
        for bad in ({"delay_s": -1}, {"delay_s": 1, "default": "x"}, {"delay_s": 1, "rules": [{"match": 1}]}, {}):
            with self.subTest(bad=bad):
                self.assertEqual(self.ctl("POST", "/_emu/auto-review", bad).status, 400)

    def test_auto_review_never_after_timeout(self):
        self.ctl("POST", "/_emu/auto-review", {"delay_s": 120})
        rid = self.create(timeout_seconds=60)
        self.advance(200)
        self.assertEqual(self.get_req(rid)["status"], "timeout")

    def test_control_loops_and_members(self):
        r = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "L2", "members": ["a@example.com", "b@example.com"],
                                             "pending_members": ["c@example.com"]})
        self.assertEqual(r.status, 201, r)
        loop = r.json
        self.assertEqual((loop["member_count"], loop["pending_count"]), (4, 1))
        self.assertEqual(loop["creator_id"], self.emu.info["keys"][KEY2])
        m = self.ctl("POST", "/_emu/loops/%s/members" % loop["id"], {"email": "c@example.com", "status": "active"})
        self.assertEqual((m.status, m.json["status"]), (200, "active"))
        self.assertRegex(m.json["joined_at"], ISO_RE)
        self.assertEqual(self.ctl("POST", "/_emu/loops/%s/members" % ("0" * 24), {"email": "x@example.com"}).status, 404)
        self.assertEqual(self.ctl("POST", "/_emu/loops/%s/members" % loop["id"], {"email": "nope"}).status, 400)
        self.assertEqual(self.ctl("POST", "/_emu/loops", {"key": "unknown", "name": "x"}).status, 404)
        self.assertEqual(self.ctl("POST", "/_emu/loops", {"key": KEY, "name": ""}).status, 400)
        rid = self.create(loop=loop["id"], key=KEY2)
        a_uid = [x for x in loop["members"] if x["email"] == "a@example.com"][0]["user_id"]
        b_uid = [x for x in loop["members"] if x["email"] == "b@example.com"][0]["user_id"]
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/claim" % rid, {"user_id": b_uid}).json["claimed_by"], b_uid)
        r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, {"user_id": a_uid, "response_data": "Approve"})
        self.assertEqual((r.status, r.json["msg"]), (400, "Request is claimed by another reviewer"))
        r = self.ctl("POST", "/_emu/requests/%s/respond" % rid, {"response_data": "Approve"})
        self.assertEqual((r.status, r.json["response_by"]), (200, b_uid))

    def test_control_requests_filters_and_errors(self):
        a = self.create(context={"hitld_id": "A"})
        other = self.ctl("POST", "/_emu/loops", {"key": KEY2, "name": "L2", "members": ["z@example.com"]}).json["id"]
        b = self.create(loop=other, key=KEY2, context={"hitld_id": "B"})
        allr = self.ctl("GET", "/_emu/requests").json["requests"]
        self.assertEqual([x["id"] for x in allr], [a, b])
        self.assertEqual(allr[1]["creator"]["user_id"], self.emu.info["keys"][KEY2])
        self.assertEqual(allr[1]["context"], {"hitld_id": "B"})
        self.assertEqual([x["id"] for x in self.ctl("GET", "/_emu/requests?hitld_id=B").json["requests"]], [b])
        self.assertEqual([x["id"] for x in self.ctl("GET", "/_emu/requests?loop_id=" + other).json["requests"]], [b])
        self.respond(a, "Approve")
        self.assertEqual([x["id"] for x in self.ctl("GET", "/_emu/requests?status=completed").json["requests"]], [a])
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/respond" % ("0" * 24), {"response_data": "x"}).status, 404)
        r = self.ctl("POST", "/_emu/requests/%s/respond" % b, {})
        self.assertEqual(r.status, 400)
        self.assertTrue(r.json["msg"].startswith("Invalid response_data: "))
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/claim" % b, {"user_id": "f" * 24}).status, 400)
        self.assertEqual(self.ctl("GET", "/_emu/nothing").status, 404)
        self.assertEqual(self.ctl("DELETE", "/_emu/health").status, 405)
        self.assertEqual(self.ctl("GET", "/_emu/health").json, {"ok": True})
        r = self.emu.call("POST", "/_emu/keys", raw=b"{bad", key=None)
        self.assertEqual(r.status, 400)
        self.assertIs(r.json["error"], True)

    def test_reset_restores_provisioned_state(self):
        self.create()
        self.ctl("POST", "/_emu/keys", {"key": "k_tmp"})
        self.ctl("POST", "/_emu/faults", {"kind": "500"})
        self.advance(5000)
        r = self.ctl("POST", "/_emu/reset")
        self.assertEqual(r.json["keys"], self.emu.info["keys"])
        self.assertEqual(r.json["default_loop_id"], self.loop)
        self.assertEqual(self.ctl("GET", "/_emu/requests").json["requests"], [])
        self.assertEqual(self.ctl("GET", "/_emu/faults").json["faults"], [])
        self.assertEqual(self.ctl("GET", "/_emu/clock").json["offset"], 0)
        self.err(self.api("GET", "/v1/test", key="k_tmp"), 401, "Invalid API key")
        d = self.ok(self.api("GET", "/v1/test"))
        self.assertEqual(d["user_id"], self.emu.info["keys"][KEY])
        self.assertEqual(d["rate_limit"]["remaining"], 99)
        self.ok(self.api("GET", "/v1/api/loops/" + self.loop))


class TestPlainEncodingAndFlags(EmuCase):
    ARGS = ("--encoding", "plain", "--no-boolean", "--cancel-pending-only", "--no-refund", "--compat-routes")

    def test_plain_encoding(self):
        cases = [("single_select", {"options": [{"value": "ok", "label": "OK!"}]}, "ok", {"selected_value": "ok"}, "ok"),
                 ("multi_select", {"options": OPTS3}, [], ["b", "a"], ["b", "a"]),
                 ("rating", {"scale_max": 5, "labels": {"4": "Good"}}, 1, {"rating": 4}, 4),
                 ("number", {"max_value": 10, "prefix": "$"}, 0, 2.5, 2.5),
                 ("text", {}, "", "fine", "fine")]
        for rtype, cfg, default, answer, want in cases:
            with self.subTest(rtype):
                rid = self.create(response_type=rtype, response_config=cfg, default_response=default)
                self.respond(rid, answer)
                self.assertEqual(self.get_req(rid)["response_data"], want)
                listed = self.ok(self.api("GET", "/v1/api/requests?status=completed&limit=1"))["requests"][0]
                self.assertEqual(listed["response_data"], want)

    def test_no_boolean(self):
        r = self.api("POST", "/v1/api/loops/%s/requests" % self.loop,
                     req_body(response_type="boolean", response_config={}, default_response=True))
        self.err(r, 400, "Validation failed", "response_type must be one of: text, single_select, multi_select, "
                                              "rating, number, editable_text")

    def test_cancel_pending_only_and_no_refund(self):
        rid = self.create()
        before = self.remaining(self.api("GET", "/v1/test"))
        r = self.api("DELETE", "/v1/api/requests/" + rid)
        d = self.ok(r)
        self.assertEqual(d["refund_info"]["refunded"], True)
        self.assertEqual(self.remaining(r), before - 1)          # --no-refund: quota not given back
        claimed = self.create()
        self.ctl("POST", "/_emu/requests/%s/claim" % claimed, {})
        self.err(self.api("DELETE", "/v1/api/requests/" + claimed), 400, "Request cannot be cancelled in current state")

    def test_compat_routes(self):
        d = self.ok(self.api("POST", "/v1/api/requests", req_body(loop_id=self.loop)), 201)
        rid = d["request_id"]
        self.err(self.api("POST", "/v1/api/requests", req_body()), 400, "Invalid request body",
                 {"field": "loop_id", "issue": "Field is required"})
        p = self.ok(self.api("PATCH", "/v1/api/requests/" + rid, {"priority": "critical"}), 200,
                    "Request updated successfully")
        self.assertEqual(p["request"]["priority"], "critical")
        self.ok(self.api("POST", "/v1/api/requests/%s/cancel" % rid, {}), 200, "Request cancelled successfully")
        self.assertEqual(self.get_req(rid)["status"], "cancelled")


class TestCallbackDelivery(EmuCase):
    """Delivery as docs/HITL-API.md "Callbacks" states it: retries on 5xx and
    network errors, none on 4xx (408/429 only under a switch), and the
    /_emu/callbacks switches that lose and repeat callbacks."""

    def setUp(self):
        super().setUp()
        self.rx = CallbackReceiver()
        self.addCleanup(self.rx.close)

    def switches(self, **kw):
        r = self.ctl("POST", "/_emu/callbacks", kw)
        self.assertEqual(r.status, 200, r)
        return r.json

    def settled(self, n, timeout=20):
        """The callbacks counters once n deliveries (originals and repeats)
        have ended, and none is in progress."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cb = self.stats()["callbacks"]
            done = [d for d in cb["deliveries"] if d["result"] != "in_progress"]
            if len(done) >= n and len(done) == len(cb["deliveries"]):
                return cb
            time.sleep(0.05)
        self.fail("callbacks never settled at %d: %r" % (n, self.stats()["callbacks"]))

    def stats(self):
        r = self.ctl("GET", "/_emu/stats?calls=0")
        self.assertEqual(r.status, 200, r)
        return r.json

    def finish_many(self, n, path):
        ids = [self.create(callback_url=self.rx.url(path), request_text="Approve %d?" % i) for i in range(n)]
        for rid in ids:
            self.respond(rid, "Approve")
        return ids

    def test_5xx_retried_three_attempts_then_failed(self):
        a = self.finish_many(1, "/code/503")[0]
        cb = self.settled(1)
        d = cb["deliveries"][0]
        self.assertEqual((d["request_id"], d["attempts"], d["result"], d["last_status"]), (a, 3, "failed", 503))
        self.assertEqual((cb["attempts"], cb["retried"], cb["failed"], cb["delivered"]), (3, 2, 1, 0))
        t = [tm for path, tm in self.rx.times if path == "/code/503"]
        self.assertEqual(len(t), 3)
        self.assertGreaterEqual(t[2] - t[1], 1.9)          # 2 s before the third attempt (window 3600)

    def test_network_error_retried(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()                                           # nothing listens there now
        rid = self.create(callback_url="http://127.0.0.1:%d/cb" % port)
        self.respond(rid, "Approve")
        cb = self.settled(1)
        d = cb["deliveries"][0]
        self.assertEqual((d["attempts"], d["result"], d["last_status"]), (3, "failed", None))
        self.assertTrue(d["last_error"])
        self.assertEqual(cb["retried"], 2)

    def test_4xx_not_retried_408_429_only_under_switch(self):
        self.finish_many(1, "/code/404")
        self.finish_many(1, "/code/408")
        self.finish_many(1, "/code/429")
        cb = self.settled(3)
        self.assertEqual(sorted((d["last_status"], d["attempts"]) for d in cb["deliveries"]),
                         [(404, 1), (408, 1), (429, 1)])
        self.assertEqual(cb["retried"], 0)
        self.assertIs(self.switches(retry_408_429=True)["retry_408_429"], True)
        self.ctl("POST", "/_emu/stats/reset")
        self.finish_many(1, "/code/404")
        self.finish_many(1, "/code/408")
        self.finish_many(1, "/code/429")
        cb = self.settled(3)
        self.assertEqual(sorted((d["last_status"], d["attempts"]) for d in cb["deliveries"]),
                         [(404, 1), (408, 3), (429, 3)])
        self.assertEqual((cb["retried"], cb["failed"]), (4, 3))

    def dropped_pattern(self, n):
        ids = self.finish_many(n, "/ok")
        cb = self.settled(n)
        by = {d["request_id"]: d["result"] for d in cb["deliveries"]}
        return [by[i] for i in ids], cb

    def test_drop_is_a_seeded_fraction(self):
        self.assertEqual(self.switches(drop=0.5, seed=7)["drop"], 0.5)
        first, cb = self.dropped_pattern(30)
        dropped = first.count("dropped")
        self.assertEqual(first.count("sent") + dropped, 30)
        self.assertTrue(3 <= dropped <= 27, first)
        self.assertEqual((cb["dropped"], cb["delivered"], cb["sent"]), (dropped, 30 - dropped, 30 - dropped))
        got = self.rx.wait(30 - dropped)
        self.assertEqual(len(got), 30 - dropped)
        time.sleep(0.2)
        self.assertEqual(len(self.rx.events), 30 - dropped)   # the dropped ones never come
        # The same seed loses the same callbacks of the same sequence.
        self.ctl("POST", "/_emu/reset")
        self.switches(drop=0.5, seed=7)
        again, _ = self.dropped_pattern(30)
        self.assertEqual(again, first)

    def test_duplicate_delivers_twice(self):
        self.switches(duplicate=1.0)
        ids = self.finish_many(3, "/ok")
        cb = self.settled(6)
        self.assertEqual((cb["delivered"], cb["duplicated"], cb["sent"], cb["dropped"]), (3, 3, 6, 0))
        self.assertEqual(sorted(d["duplicate"] for d in cb["deliveries"]), [False] * 3 + [True] * 3)
        ev = self.rx.wait(6)
        bodies = [e[1] for e in ev]
        for rid in ids:
            two = [b for b in bodies if b["request_id"] == rid]
            self.assertEqual(len(two), 2)
            self.assertEqual(two[0], two[1])

    def test_duplicate_only_after_a_delivery(self):
        self.switches(duplicate=1.0)
        self.finish_many(1, "/code/400")
        cb = self.settled(1)
        time.sleep(0.2)
        cb = self.stats()["callbacks"]
        self.assertEqual((len(cb["deliveries"]), cb["duplicated"], cb["failed"]), (1, 0, 1))

    def test_switch_validation(self):
        for body, msg in (({"lose": 1}, "unknown callbacks switch lose"),
                          ({"drop": 1.5}, "drop must be a number from 0 to 1"),
                          ({"duplicate": "x"}, "duplicate must be a number from 0 to 1"),
                          ({"seed": 1.5}, "seed must be an integer"),
                          ({"retry_408_429": 1}, "retry_408_429 must be true or false")):
            r = self.ctl("POST", "/_emu/callbacks", body)
            self.assertEqual(r.status, 400, r)
            self.assertTrue(r.json["msg"].startswith(msg), r.json)
        g = self.ctl("GET", "/_emu/callbacks").json
        self.assertEqual((g["drop"], g["duplicate"], g["seed"], g["retry_408_429"]), (0.0, 0.0, 0, False))
        self.assertEqual(g["retry_delays_s"], [1.0, 2.0])


class TestCallbackScaledWindow(EmuCase):
    """A 36-s window stands for an hour: the retries come 100 times sooner,
    and the CLI switches are what /_emu/reset returns to."""
    ARGS = ("--window", "36", "--callback-drop", "0.25", "--callback-seed", "3")
    ALIGN = False

    def test_scaled_retries_and_cli_switches(self):
        rx = CallbackReceiver()
        self.addCleanup(rx.close)
        self.ctl("POST", "/_emu/callbacks", {"drop": 0})
        g = self.ctl("GET", "/_emu/callbacks").json
        self.assertEqual(g["retry_delays_s"], [0.01, 0.02])
        rid = self.create(callback_url=rx.url("/code/500"))
        self.respond(rid, "Approve")
        deadline = time.monotonic() + 10
        while len(rx.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(rx.events), 3)
        self.ctl("POST", "/_emu/reset")
        g = self.ctl("GET", "/_emu/callbacks").json
        self.assertEqual((g["drop"], g["seed"]), (0.25, 3))


class TestProcess(unittest.TestCase):
    def test_port_file_and_auto_review_flag(self):
        rx = CallbackReceiver()
        self.addCleanup(rx.close)
        emu = Emu(("--auto-review", "0"))
        self.addCleanup(emu.stop)
        info = emu.info
        self.assertEqual(set(info) >= {"port", "pid", "keys", "default_loop_id"}, True)
        self.assertEqual(info["pid"], emu.proc.pid)
        self.assertEqual(set(info["keys"]), {KEY, KEY2})
        r = emu.call("POST", "/v1/api/loops/%s/requests" % info["default_loop_id"],
                     req_body(callback_url=rx.url("/ok")))
        self.assertEqual(r.status, 201)
        # completed by the background ticker: no further calls are made
        ev = rx.wait(1, timeout=3)
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0][1]["event"], "request.completed")
        self.assertEqual(ev[0][1]["response_data"]["selected_value"], "Approve")

    def test_sigterm_with_hanging_connection_exits_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                emu = Emu()
                self.addCleanup(emu.stop)
                emu.ctl("POST", "/_emu/faults", {"kind": "hang", "seconds": 60})
                s = socket.create_connection(("127.0.0.1", emu.port))
                self.addCleanup(s.close)
                s.sendall(b"GET /v1/test HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n\r\n")
                idle = socket.create_connection(("127.0.0.1", emu.port))     # idle keep-alive connection
                self.addCleanup(idle.close)
                time.sleep(0.2)
                t0 = time.monotonic()
                emu.proc.send_signal(sig)
                self.assertEqual(emu.proc.wait(5), 0)
                self.assertLess(time.monotonic() - t0, 2)

    def test_refuses_non_loopback_host(self):
        for host in ("0.0.0.0", "192.0.2.1", "example.com"):
            with self.subTest(host=host):
                p = subprocess.run([sys.executable, EMU, "--host", host, "--port", "0"], capture_output=True, timeout=10)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(b"non-loopback", p.stderr)

    @unittest.skipUnless(shutil.which("openssl"), "openssl not installed")
    def test_tls(self):
        import ssl
        d = tempfile.mkdtemp(prefix="hitlemu-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=30)
        emu = Emu(("--tls-cert", cert, "--tls-key", key))
        self.addCleanup(emu.stop)
        self.assertTrue(emu.info["url"].startswith("https://"))
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", emu.port, context=ctx, timeout=5)
        try:
            conn.request("GET", "/v1/test", headers={"Authorization": "Bearer " + KEY})
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual((r.status, body["msg"]), (200, "API key is valid"))
            conn.request("GET", "/v1/test", headers={"Authorization": "Bearer " + KEY})   # same TLS connection
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.getheader("X-RateLimit-Remaining"), "98")
        finally:
            conn.close()

    def test_starts_fast(self):
        t0 = time.monotonic()
        emu = Emu()
        self.addCleanup(emu.stop)
        self.assertLess(time.monotonic() - t0, 1.0)



# --------------------------------------------------------------------------
# workflows and drift switches (docs/HITL-API.md "Workflows", README "Drift")

class TestWorkflows(EmuCase):
    def test_trigger_counts_and_returns_an_execution_id(self):
        wf = self.ctl("POST", "/_emu/workflows", {"id": "wf_abc123", "name": "deploy"})
        self.assertEqual(wf.status, 201, wf)
        d = self.ok(self.api("POST", "/v1/workflows/wf_abc123/trigger", {"build": 4812}), 200,
                    "Workflow triggered successfully")
        self.assertTrue(d["execution_id"].startswith("exec_"))
        self.assertEqual(d["workflow_id"], "wf_abc123")
        self.ok(self.api("POST", "/v1/workflows/wf_abc123/trigger", raw=b""))
        st = self.stats()
        self.assertEqual(st["workflow_triggers"], 2)
        self.assertEqual(st["workflows"], {"wf_abc123": 2})
        wfs = self.ctl("GET", "/_emu/workflows").json["workflows"]
        self.assertEqual([e["body"] for e in wfs[0]["executions"]], [{"build": 4812}, None])
        self.assertEqual(wfs[0]["executions"][0]["execution_id"], d["execution_id"])

    def test_trigger_errors(self):
        self.ctl("POST", "/_emu/workflows", {"id": "wf_mine", "key": KEY})
        self.err(self.api("POST", "/v1/workflows/wf_nope/trigger", {}), 404, "Workflow not found")
        self.err(self.api("POST", "/v1/workflows/65f1234567890abcdef12345/trigger", {}), 400,
                 "Invalid workflow ID format")
        self.err(self.api("POST", "/v1/workflows/wf_mine/trigger", {}, key=KEY2), 403,
                 "Access denied to this workflow")
        self.err(self.api("POST", "/v1/workflows/wf_mine/trigger", raw=b"{"), 400, "Invalid request body")
        self.err(self.api("GET", "/v1/workflows/wf_mine/trigger"), 405, "Method not allowed")
        self.assertEqual(self.stats()["workflow_triggers"], 0)
        self.assertEqual(self.ctl("POST", "/_emu/workflows", {"id": "wf_mine"}).status, 409)
        self.assertEqual(self.ctl("POST", "/_emu/workflows", {"id": "bad"}).status, 400)

    def test_reset_removes_workflows(self):
        self.ctl("POST", "/_emu/workflows", {"id": "wf_x"})
        self.ctl("POST", "/_emu/reset")
        self.assertEqual(self.ctl("GET", "/_emu/workflows").json["workflows"], [])


class TestDrift(EmuCase):
    def drift(self, **kw):
        r = self.ctl("POST", "/_emu/drift", kw)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_get_set_and_reset(self):
        self.assertEqual(self.ctl("GET", "/_emu/drift").json,
                         {"status_words": "standard", "status_shape": "nested", "key_inactive": None,
                          "quota_exhausted": False, "loop_endpoints": None})
        d = self.drift(status_words="alt", key_inactive=403)
        self.assertEqual((d["status_words"], d["key_inactive"], d["status_shape"]), ("alt", 403, "nested"))
        for bad in ({"status_words": "odd"}, {"key_inactive": 500}, {"key_inactive": True},
                    {"quota_exhausted": 1}, {"loop_endpoints": "404"}, {"nope": 1}):
            with self.subTest(bad=bad):
                self.assertEqual(self.ctl("POST", "/_emu/drift", bad).status, 400)
        self.ctl("POST", "/_emu/reset")
        self.assertEqual(self.ctl("GET", "/_emu/drift").json["status_words"], "standard")

    def test_alt_status_words(self):
        self.drift(status_words="alt")
        a, b, c = self.create(), self.create(), self.create(timeout_seconds=60)
        self.respond(a, {"selected_value": "Approve"})
        self.respond(b, {"selected_value": "Reject"})
        self.advance(61)
        words = {self.get_req(a)["status"], self.get_req(b)["status"]}
        self.assertEqual(words, {"answered", "resolved"})
        self.assertEqual(self.get_req(c)["status"], "timed_out")
        listed = {x["id"]: x["status"] for x in self.ok(self.api("GET", "/v1/api/requests"))["requests"]}
        self.assertEqual(listed[c], "timed_out")
        # The control view keeps the documented word beside the shown one.
        emu = {x["id"]: x for x in self.ctl("GET", "/_emu/requests").json["requests"]}
        self.assertEqual((emu[c]["status"], emu[c]["shown_status"]), ("timeout", "timed_out"))

    def test_show_status_overrides_the_word_only(self):
        rid = self.create()
        r = self.ctl("POST", "/_emu/requests/%s/show-status" % rid, {"status": "in_review"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.get_req(rid)["status"], "in_review")
        self.respond(rid, {"selected_value": "Approve"})
        full = self.get_req(rid)
        self.assertEqual((full["status"], full["response_data"]["selected_value"]), ("in_review", "Approve"))
        self.ctl("POST", "/_emu/requests/%s/show-status" % rid, {"status": None})
        self.assertEqual(self.get_req(rid)["status"], "completed")
        self.assertEqual(self.ctl("POST", "/_emu/requests/%s/show-status" % rid, {"status": 5}).status, 400)

    def test_flat_status_shape(self):
        rid = self.create()
        self.drift(status_shape="flat")
        d = self.ok(self.api("GET", "/v1/api/requests/" + rid))
        self.assertEqual((d["id"], d["status"]), (rid, "pending"))
        self.assertNotIn("request", d)

    def test_key_inactive_as_401_or_403(self):
        for status in (401, 403):
            with self.subTest(status=status):
                self.drift(key_inactive=status)
                self.err(self.api("GET", "/v1/test"), status, "API key is inactive")
                self.err(self.api("POST", "/v1/api/loops/%s/requests" % self.loop, req_body()), status,
                         "API key is inactive")
        self.drift(key_inactive=None)
        self.ok(self.api("GET", "/v1/test"))

    def test_one_key_deactivated_as_403_leaves_the_others_working(self):
        # A key deactivated mid-run (hitld's standby key test): only that key
        # is refused, with the status asked for; another key of the account
        # goes on.
        self.ctl("POST", "/_emu/keys", {"key": "k_other", "user_id": self.ok(self.api("GET", "/v1/test"))["user_id"]})
        r = self.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "inactive", "inactive_status": 403})
        self.assertEqual((r.status, r.json["status"], r.json["inactive_status"]), (200, "inactive", 403))
        self.err(self.api("GET", "/v1/test"), 403, "API key is inactive")
        self.ok(self.api("GET", "/v1/test", key="k_other"))
        self.assertEqual(self.ctl("POST", "/_emu/keys/%s" % KEY, {"inactive_status": 402}).status, 400)
        self.ctl("POST", "/_emu/keys/%s" % KEY, {"inactive_status": None})
        self.err(self.api("GET", "/v1/test"), 401, "API key is inactive")
        self.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "active"})
        self.ok(self.api("GET", "/v1/test"))

    def test_quota_exhausted_refuses_creates_only(self):
        self.drift(quota_exhausted=True)
        r = self.api("POST", "/v1/api/loops/%s/requests" % self.loop, req_body())
        self.err(r, 403, "Monthly response limit reached")
        self.assertEqual((r.data["limit"], r.data["used"]), (500, 500))
        self.assertRegex(r.data["reset_at"], r"^\d{4}-\d\d-01T00:00:00Z$")
        self.ok(self.api("GET", "/v1/api/requests"))
        self.assertEqual(self.stats()["creates"], 0)
        self.drift(quota_exhausted=False)
        self.create()

    def test_retired_loop_endpoints(self):
        self.ctl("POST", "/_emu/workflows", {"id": "wf_still"})
        for status, msg in ((404, "Route not found"),
                            (410, "This endpoint has been retired: loops are replaced by workflows"),
                            (301, "Moved Permanently")):
            with self.subTest(status=status):
                self.drift(loop_endpoints=status)
                before = self.remaining(self.api("GET", "/v1/test"))
                for method, path in (("GET", "/v1/api/loops"), ("GET", "/v1/api/requests"),
                                     ("POST", "/v1/api/loops/%s/requests" % self.loop)):
                    r = self.api(method, path, req_body() if method == "POST" else None)
                    self.err(r, status, msg)
                    if status == 301:
                        self.assertTrue(r.h("Location").startswith("https://"))
                # The key test and workflows still answer; retired calls are not counted.
                self.assertEqual(self.remaining(self.api("GET", "/v1/test")), before - 1)
                self.ok(self.api("POST", "/v1/workflows/wf_still/trigger", {}))
        self.drift(loop_endpoints=None)
        self.ok(self.api("GET", "/v1/api/loops"))


class TestDriftFlags(EmuCase):
    ARGS = ("--drift-status-words", "alt", "--drift-status-shape", "flat", "--drift-key-inactive", "403",
            "--drift-quota-exhausted", "--drift-loop-endpoints", "410")

    def test_flags_set_the_switches_and_reset_returns_to_them(self):
        want = {"status_words": "alt", "status_shape": "flat", "key_inactive": 403, "quota_exhausted": True,
                "loop_endpoints": 410}
        self.assertEqual(self.ctl("GET", "/_emu/drift").json, want)
        self.ctl("POST", "/_emu/drift", {"key_inactive": None})
        self.ctl("POST", "/_emu/reset")
        self.assertEqual(self.ctl("GET", "/_emu/drift").json, want)


if __name__ == "__main__":
    unittest.main()
