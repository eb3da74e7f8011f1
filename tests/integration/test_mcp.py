#!/usr/bin/env python3
"""`hitlctl mcp`, the MCP server, driven by the official MCP client SDK
(@modelcontextprotocol/sdk from npm, pinned in tests/mcp/package-lock.json and
installed into build/mcp-sdk by `make mcp-sdk` / scripts/install-deps --mcp-sdk)
through tests/mcp/driver.mjs, against a real hitld and the emulator. A second
group of tests speaks raw newline-delimited JSON-RPC to pin the protocol details
the SDK hides (version negotiation, errors, cancellation of a wait).

A missing node or SDK is a failure, never a skip: the SDK is the point.
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ROOT, SLOW, HitldTestCase, main, wait_for  # noqa: E402

SDK = os.environ.get("HITLD_MCP_SDK") or os.path.join(ROOT, "build", "mcp-sdk")
DRIVER = os.path.join(ROOT, "tests", "mcp", "driver.mjs")
HITLCTL = os.path.join(BUILD, "hitlctl")
ALICE, BOB = 40011, 40012
TOOLS = {"ask_human", "submit_request", "get_request", "wait_request", "list_requests",
         "cancel_request", "give_feedback", "hitl_status", "trigger_workflow"}
# The revision the pinned SDK asks for (LATEST_PROTOCOL_VERSION of 1.32.2).
SDK_REVISION = "2025-11-25"
QUESTION = {"request_text": "Deploy build 4812 to production?", "options": ["approve", "reject"],
            "default_response": "reject"}


def sdk_present():
    node = shutil.which("node")
    pkg = os.path.join(SDK, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
    if not node or not os.path.exists(pkg):
        raise AssertionError("the MCP client SDK is not installed (node: %s, %s missing): run "
                             "`make mcp-sdk` (scripts/install-deps --mcp-sdk build/mcp-sdk)" % (node, pkg))
    return node


def readable_copies(test):
    """The driver, the SDK and hitlctl where another uid can read them: the
    test's own directory (0755). The clone itself may not be (CI clones into a
    `mktemp -d` directory, mode 0700). Copied once per test."""
    d = os.path.join(test.tmp, "mcp-as-user")
    if not os.path.isdir(d):
        os.mkdir(d, 0o755)
        shutil.copy2(DRIVER, d)
        shutil.copytree(SDK, os.path.join(d, "mcp-sdk"), symlinks=True)
        shutil.copy2(HITLCTL, d)
    return os.path.join(d, "driver.mjs"), os.path.join(d, "mcp-sdk"), os.path.join(d, "hitlctl")


class Agent:
    """driver.mjs: an MCP client on the official SDK that runs `hitlctl mcp`.
    Commands go to its stdin, events come back on its stdout (see driver.mjs)."""

    def __init__(self, test, socket, uid=None, extra_args=()):
        node = sdk_present()
        self.events = []
        self.cond = threading.Condition()
        self.stderr = open(os.path.join(test.tmp, "agent-%s.stderr" % (uid or "self")), "a")
        self.args = ["mcp", "--socket", socket, "--loop", test.loop_id, "--progress-interval", "1",
                     "--reconnect-timeout", "120"] + list(extra_args)

        driver, sdk, self.hitlctl = DRIVER, SDK, HITLCTL
        if uid is not None:
            driver, sdk, self.hitlctl = readable_copies(test)

        def as_user():
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
        self.proc = subprocess.Popen([node, driver], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd="/", preexec_fn=as_user,
                                     env=dict(os.environ, HITLD_MCP_SDK=os.path.abspath(sdk)))
        threading.Thread(target=self._read, daemon=True).start()
        test.addCleanup(self.close)

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.events.append(json.loads(line))
                self.cond.notify_all()

    def send(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, pred, timeout=30, what="an event"):
        """The first event matching pred (removed from the list)."""
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while True:
                for i, ev in enumerate(self.events):
                    if pred(ev):
                        return self.events.pop(i)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.events:
                    raise AssertionError("agent: no %s; events: %s" % (what, self.events))
                self.cond.wait(min(left, 0.5))

    def op(self, op, timeout=30, **kw):
        self.send(op=op, **kw)
        ev = self.wait(lambda e: e.get("op") == op, timeout, what="%s reply" % op)
        if "error" in ev:
            raise AssertionError("agent %s: %s" % (op, ev["error"]))
        return ev

    def connect(self):
        return self.op("connect", command=self.hitlctl, args=self.args)

    def call(self, tag, name, arguments, progress=False):
        self.send(op="call", tag=tag, name=name, arguments=arguments, progress=progress)

    def outcome(self, tag, timeout=60):
        return self.wait(lambda e: e.get("tag") == tag and e.get("event") in ("result", "error"), timeout,
                         what="outcome of %s" % tag)

    def result(self, tag, timeout=60):
        ev = self.outcome(tag, timeout)
        if ev["event"] != "result":
            raise AssertionError("call %s failed: %s" % (tag, ev))
        return ev["result"]

    def progress(self, tag, pred, timeout=30):
        return self.wait(lambda e: e.get("tag") == tag and e.get("event") == "progress" and pred(e["params"]),
                         timeout, what="progress of %s" % tag)["params"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()
        sanitizer_reports(self.stderr.name)


def sanitizer_reports(path):
    """hitlctl mcp's stderr (under the ASan build) must hold no sanitizer report."""
    with open(path, errors="replace") as f:
        text = f.read()
    bad = [l for l in text.splitlines() if "AddressSanitizer" in l or "runtime error:" in l or "LeakSanitizer" in l]
    if bad:
        raise AssertionError("sanitizer reports from hitlctl mcp:\n" + text[-8000:])


def pending(params):
    return "pending at HITL.sh" in params.get("message", "")


class McpWithSdk(HitldTestCase):
    def agent(self, **kw):
        a = Agent(self, self.hitld.socket, **kw)
        a.connect()
        return a

    def only_remote(self):
        reqs = wait_for(lambda: self.emu.requests(), 30, what="the request at the emulator")
        self.assertEqual(len(reqs), 1, reqs)
        return reqs[0]

    def test_initialize_and_tool_schemas(self):
        a = Agent(self, self.hitld.socket)
        hello = a.connect()
        self.assertEqual(hello["protocolVersion"], SDK_REVISION)
        self.assertEqual(hello["serverInfo"]["name"], "hitld")
        self.assertIn("tools", hello["capabilities"])
        self.assertIn("ask_human", hello["instructions"])
        samples = {
            "ask_human": [{"args": QUESTION, "valid": True},
                          {"args": dict(QUESTION, loop_id="nothex"), "valid": False},
                          {"args": dict(QUESTION, priority="urgent"), "valid": False},
                          {"args": dict(QUESTION, bogus=1), "valid": False},
                          {"args": {"request_text": "no default"}, "valid": False}],
            "submit_request": [{"args": dict(QUESTION, client_ref="x", timeout_seconds=900), "valid": True},
                               {"args": dict(QUESTION, timeout_seconds=10), "valid": False}],
            "get_request": [{"args": {"id": "r_" + "0" * 26}, "valid": True}, {"args": {"id": 5}, "valid": False}],
            "wait_request": [{"args": {"id": "r_" + "A" * 26, "timeout_seconds": 5}, "valid": True},
                             {"args": {"timeout_seconds": 5}, "valid": False}],
            "list_requests": [{"args": {"state": ["queued"], "limit": 5}, "valid": True},
                              {"args": {"state": ["asleep"]}, "valid": False}],
            "cancel_request": [{"args": {"id": "r_" + "1" * 26}, "valid": True}, {"args": {}, "valid": False}],
            "give_feedback": [{"args": {"id": "r_" + "1" * 26, "feedback": {"rating": 5}}, "valid": True},
                              {"args": {"id": "r_" + "1" * 26, "feedback": {"rating": 9}}, "valid": False}],
            "hitl_status": [{"args": {}, "valid": True}, {"args": {"x": 1}, "valid": False}],
            "trigger_workflow": [{"args": {"workflow_id": "wf_1", "data": {"a": 1}, "wait": True}, "valid": True},
                                 {"args": {"data": {}}, "valid": False}],
        }
        listed = a.op("listTools", samples=samples)
        self.assertEqual(listed["schemaErrors"], [])
        tools = {t["name"]: t for t in listed["tools"]}
        self.assertEqual(set(tools), TOOLS)
        for t in tools.values():
            self.assertIn("outputSchema", t, t["name"])
            self.assertGreater(len(t["description"]), 80, t["name"])
            self.assertIn("readOnlyHint", t["annotations"])
        # --loop given: loop_id is optional for the agent.
        self.assertNotIn("loop_id", tools["ask_human"]["inputSchema"]["required"])
        self.assertIn("budget", tools["ask_human"]["description"])
        self.assertIn("default", tools["ask_human"]["description"])
        # A quick tool's structured result passes the SDK's outputSchema check.
        a.call("s", "hitl_status", {})
        st = a.result("s")["structuredContent"]
        self.assertEqual(st["budget"]["limit"], 100)

    def test_ask_human_answered_with_progress(self):
        a = self.agent()
        a.call("ask", "ask_human", QUESTION, progress=True)
        first = a.progress("ask", lambda p: True)
        self.assertIn("budget", first["message"])
        self.assertRegex(first["message"], r"queued|submitting|pending")
        p = a.progress("ask", pending)
        self.assertGreater(p["progress"], first["progress"])
        remote = self.only_remote()
        self.assertEqual(remote["status"], "pending")
        # While the human thinks, heartbeats keep coming (--progress-interval 1).
        beat = a.progress("ask", pending, timeout=10)
        self.assertGreater(beat["progress"], p["progress"])
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        res = a.result("ask")
        self.assertFalse(res.get("isError", False), res)
        sc = res["structuredContent"]
        self.assertEqual(sc["answer"], "approve")
        self.assertEqual(sc["result_source"], "reviewer")
        self.assertEqual(sc["state"], "completed")
        self.assertEqual(json.loads(res["content"][0]["text"])["answer"], "approve")
        rec = self.c.call("request.get", {"id": sc["request_id"]})
        self.assertEqual(rec["state"], "completed")
        self.assertTrue(rec["client_ref"].startswith("mcp-"))

    def test_cancelling_ask_human_cancels_the_request(self):
        a = self.agent()
        a.call("ask", "ask_human", QUESTION, progress=True)
        a.progress("ask", pending)
        remote = self.only_remote()
        a.op("abort", tag="ask")
        ev = a.outcome("ask")
        self.assertEqual(ev["event"], "error")
        wait_for(lambda: self.emu.requests()[0]["status"] == "cancelled", 30, what="cancel at the emulator")
        rid = remote["hitld_id"]
        self.wait_state(rid, "cancelled")
        # The server is still serving after a cancellation.
        a.call("g", "get_request", {"id": rid})
        self.assertEqual(a.result("g")["structuredContent"]["state"], "cancelled")

    def test_invalid_loop_id_is_a_tool_error_with_the_daemons_message(self):
        a = self.agent()
        a.call("bad", "ask_human", dict(QUESTION, loop_id="not-a-loop"))
        res = a.result("bad")
        self.assertTrue(res["isError"])
        self.assertNotIn("structuredContent", res)
        text = res["content"][0]["text"]
        self.assertIn("loop_id", text)
        self.assertIn("invalid_params", text)
        err = json.loads(res["content"][1]["text"])
        self.assertEqual(err["code"], -32602)
        self.assertEqual(err["data"]["field"], "loop_id")
        self.assertEqual(self.emu.requests(), [])
        # A misspelt argument is refused by the server itself, naming it.
        a.call("typo", "get_request", {"request_id": "r_x"})
        res = a.result("typo")
        self.assertTrue(res["isError"])
        self.assertIn("request_id", res["content"][0]["text"])
        # An unknown request: hitld's not_found, as a tool error.
        a.call("nf", "get_request", {"id": "r_" + "0" * 26})
        res = a.result("nf")
        self.assertTrue(res["isError"])
        self.assertEqual(json.loads(res["content"][1]["text"])["name"], "not_found")

    def test_nobody_answers_in_time_gives_the_default_marked_as_such(self):
        a = self.agent()
        a.call("ask", "ask_human", dict(QUESTION, timeout_seconds=600), progress=True)
        p = a.progress("ask", pending)
        self.assertEqual(p["total"], 600)
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 900})
        sc = a.result("ask", timeout=60)["structuredContent"]
        self.assertEqual((sc["state"], sc["answer"], sc["result_source"]), ("timeout", "reject", "default"))

    def test_submit_wait_list_cancel_feedback(self):
        a = self.agent()
        a.call("sub", "submit_request", dict(QUESTION, client_ref="deploy-4812", timeout_seconds=900))
        sub = a.result("sub")["structuredContent"]
        rid = sub["id"]
        a.call("again", "submit_request", dict(QUESTION, client_ref="deploy-4812", timeout_seconds=900))
        self.assertTrue(a.result("again")["structuredContent"]["duplicate"])
        a.call("w0", "wait_request", {"id": rid, "timeout_seconds": 1})
        w0 = a.result("w0")["structuredContent"]
        self.assertFalse(w0["done"])
        self.wait_state(rid, "pending")
        a.call("w", "wait_request", {"id": rid, "timeout_seconds": 60}, progress=True)
        a.progress("w", pending)
        self.emu.respond(self.only_remote()["id"], {"selected_value": "reject"})
        w = a.result("w")["structuredContent"]
        self.assertTrue(w["done"])
        self.assertEqual(w["request"]["result"], "reject")
        a.call("l", "list_requests", {"state": ["completed"]})
        self.assertEqual([r["id"] for r in a.result("l")["structuredContent"]["requests"]], [rid])
        a.call("f", "give_feedback", {"id": rid, "feedback": {"rating": 5, "comment": "quick"}})
        self.assertEqual(a.result("f")["structuredContent"]["feedback_state"], "queued")
        a.call("c", "cancel_request", {"id": rid})
        res = a.result("c")
        self.assertTrue(res["isError"])
        self.assertEqual(json.loads(res["content"][1]["text"])["name"], "invalid_state")
        a.call("t", "trigger_workflow", {"workflow_id": "wf_test", "data": {}})
        res = a.result("t")
        if res.get("isError"):  # until hitld has workflow.trigger: the daemon's own error
            self.assertIn("hitld refused", res["content"][0]["text"])

    @__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
    def test_two_agents_as_two_uids_do_not_see_each_other(self):
        alice = self.agent(uid=ALICE)
        bob = self.agent(uid=BOB)
        alice.call("sub", "submit_request", QUESTION)
        rid = alice.result("sub")["structuredContent"]["id"]
        self.assertEqual(self.c.call("request.get", {"id": rid})["owner_uid"], ALICE)
        for tag, name, args in (("g", "get_request", {"id": rid}), ("c", "cancel_request", {"id": rid}),
                                ("w", "wait_request", {"id": rid, "timeout_seconds": 1})):
            bob.call(tag, name, args)
            res = bob.result(tag)
            self.assertTrue(res.get("isError"), (name, res))
            self.assertEqual(json.loads(res["content"][1]["text"])["name"], "not_found", name)
        bob.call("l", "list_requests", {})
        self.assertEqual(bob.result("l")["structuredContent"]["requests"], [])
        alice.call("l", "list_requests", {})
        self.assertEqual([r["id"] for r in alice.result("l")["structuredContent"]["requests"]], [rid])
        self.assertNotEqual(self.c.call("request.get", {"id": rid})["state"], "cancelled")

    def test_kill9_of_hitld_while_the_agent_waits(self):
        a = self.agent()
        a.call("ask", "ask_human", QUESTION, progress=True)
        a.progress("ask", pending)
        remote = self.only_remote()
        self.hitld.kill9()
        a.progress("ask", lambda p: "reconnecting" in p.get("message", ""), timeout=15)
        time.sleep(1)  # a few reconnect attempts fail against a dead socket
        self.hitld.start()
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        res = a.result("ask", timeout=90)
        self.assertFalse(res.get("isError", False), res)
        self.assertEqual(res["structuredContent"]["answer"], "approve")
        self.assertEqual(res["structuredContent"]["request_id"], remote["hitld_id"])
        stats = self.emu.stats()
        self.assertEqual(stats["creates"], 1)
        self.assertEqual(stats["duplicates"]["count"], 0)
        self.assertEqual(len(self.emu.requests()), 1)


class Raw:
    """hitlctl mcp spoken to directly, one JSON-RPC message per line."""

    def __init__(self, test, socket, *args):
        self.err = open(os.path.join(test.tmp, "raw.stderr"), "a")
        self.proc = subprocess.Popen([HITLCTL, "mcp", "--socket", socket, "--loop", test.loop_id] + list(args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        test.addCleanup(self.close)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def send(self, msg):
        self.proc.stdin.write((msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout=15):
        try:
            return self.lines.get(timeout=timeout * SLOW)
        except queue.Empty:
            raise AssertionError("hitlctl mcp said nothing")

    def rpc(self, id_, method, params=None):
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}})
        return self.recv()

    def init(self, version):
        return self.rpc(0, "initialize", {"protocolVersion": version, "capabilities": {},
                                          "clientInfo": {"name": "raw", "version": "1"}})

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        sanitizer_reports(self.err.name)


class McpRawProtocol(HitldTestCase):
    def raw(self, *args):
        return Raw(self, self.hitld.socket, *args)

    def test_version_negotiation_and_revision_shapes(self):
        for want, got in (("2024-11-05", "2024-11-05"), ("2025-03-26", "2025-03-26"),
                          ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
                          ("2023-01-01", "2025-11-25"), ("2099-01-01", "2025-11-25")):
            r = self.raw()
            res = r.init(want)["result"]
            self.assertEqual(res["protocolVersion"], got, want)
            r.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            tools = r.rpc(1, "tools/list")["result"]["tools"]
            ask = [t for t in tools if t["name"] == "ask_human"][0]
            self.assertEqual("outputSchema" in ask, got >= "2025-06-18", got)
            self.assertEqual("annotations" in ask, got >= "2025-03-26", got)
            self.assertEqual("instructions" in res, got >= "2025-03-26", got)
            r.close()

    def test_errors_and_lifecycle(self):
        r = self.raw()
        self.assertEqual(r.rpc("p", "ping"), {"jsonrpc": "2.0", "id": "p", "result": {}})
        self.assertEqual(r.rpc(1, "tools/list")["error"]["code"], -32600)  # before initialize
        r.init("2025-06-18")
        self.assertEqual(r.rpc(2, "no/such")["error"]["code"], -32601)
        self.assertEqual(r.rpc(3, "tools/call", {"name": "nope"})["error"]["code"], -32602)
        self.assertEqual(r.rpc(4, "initialize", {"protocolVersion": "2025-06-18"})["error"]["code"], -32600)
        r.send("{not json")
        self.assertEqual(r.recv()["error"]["code"], -32700)
        r.send("[]")
        self.assertEqual(r.recv()["error"]["code"], -32600)
        r.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}})
        r.send("x" * (4 * 1024 * 1024 + 10))
        self.assertEqual(r.recv()["error"]["code"], -32600)
        # Still serving after all that.
        self.assertEqual(r.rpc(5, "ping")["result"], {})

    def test_batches_in_the_revisions_that_have_them(self):
        r = self.raw()
        r.init("2025-03-26")
        sub = r.rpc(1, "tools/call", {"name": "submit_request", "arguments": QUESTION})
        rid = json.loads(sub["result"]["content"][0]["text"])["id"]
        self.assertNotIn("structuredContent", sub["result"])
        r.send([{"jsonrpc": "2.0", "id": "w", "method": "tools/call",
                 "params": {"name": "wait_request", "arguments": {"id": rid, "timeout_seconds": 1}}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": "p", "method": "ping"},
                {"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": {"protocolVersion": "2025-03-26"}},
                7])
        replies = r.recv()  # one array, once the wait is over
        self.assertIsInstance(replies, list)
        by_id = {m["id"]: m for m in replies}
        self.assertEqual(set(by_id), {"w", "p", "i", None})
        self.assertFalse(json.loads(by_id["w"]["result"]["content"][0]["text"])["done"])
        self.assertEqual(by_id["p"]["result"], {})
        self.assertEqual(by_id["i"]["error"]["code"], -32600)
        self.assertEqual(by_id[None]["error"]["code"], -32600)
        r.send([{"jsonrpc": "2.0", "method": "notifications/initialized"}])  # nothing to answer
        self.assertEqual(r.rpc(2, "ping")["id"], 2)
        r.close()
        r = self.raw()
        r.init("2025-06-18")  # batches were removed in 2025-06-18
        r.send([{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
        self.assertEqual(r.recv()["error"]["code"], -32600)

    def test_no_hitld_socket_is_an_immediate_tool_error(self):
        r = Raw(self, os.path.join(self.tmp, "none.sock"))
        r.init("2025-06-18")
        for i, (name, args) in enumerate((("ask_human", QUESTION), ("hitl_status", {}))):
            res = r.rpc(i + 1, "tools/call", {"name": name, "arguments": args})["result"]
            self.assertTrue(res["isError"])
            self.assertIn("no hitld socket there", res["content"][0]["text"])

    def test_cancelling_wait_request_leaves_the_request_alone(self):
        r = self.raw()
        r.init("2025-06-18")
        sub = r.rpc(1, "tools/call", {"name": "submit_request", "arguments": QUESTION})
        rid = sub["result"]["structuredContent"]["id"]
        r.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "wait_request", "arguments": {"id": rid, "timeout_seconds": 60},
                           "_meta": {"progressToken": "tok"}}})
        prog = r.recv()
        self.assertEqual(prog["method"], "notifications/progress")
        self.assertEqual(prog["params"]["progressToken"], "tok")
        r.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
        r.send({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        while True:  # progress sent before the cancellation arrived may come first
            m = r.recv()
            self.assertNotEqual(m.get("id"), 2)
            if m.get("id") == 3:
                break
            self.assertEqual(m["method"], "notifications/progress")
        self.assertNotEqual(self.c.call("request.get", {"id": rid})["state"], "cancelled")
        # No late answer to the cancelled call.
        time.sleep(0.5)
        while not r.lines.empty():
            self.assertNotEqual(r.lines.get().get("id"), 2)

    def test_too_many_waiting_calls_is_a_tool_error(self):
        r = self.raw("--max-calls", "1")
        r.init("2025-06-18")
        rid = r.rpc(1, "tools/call", {"name": "submit_request", "arguments": QUESTION})["result"]["structuredContent"]["id"]
        r.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "wait_request", "arguments": {"id": rid, "timeout_seconds": 60}}})
        res = r.rpc(3, "tools/call", {"name": "wait_request", "arguments": {"id": rid, "timeout_seconds": 60}})
        self.assertTrue(res["result"]["isError"])
        self.assertIn("--max-calls", res["result"]["content"][0]["text"])


class McpDocs(unittest.TestCase):
    def test_help_man_page_completion_and_readme_know_mcp(self):
        p = subprocess.run([HITLCTL, "mcp", "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        for opt in ("--loop", "--progress-interval", "--reconnect-timeout", "--max-calls", "mcpServers"):
            self.assertIn(opt, p.stdout)
        self.assertRegex(subprocess.run([HITLCTL, "--help"], capture_output=True, text=True).stdout, r"(?m)^  mcp\s")
        for bad in (["--bogus"], ["--loop", "nothex"], ["--max-calls", "31"], ["--progress-interval", "0"], ["extra"]):
            self.assertEqual(subprocess.run([HITLCTL, "mcp"] + bad, capture_output=True).returncode, 2, bad)
        if shutil.which("man"):
            p = subprocess.run(["man", "-l", os.path.join(ROOT, "docs", "hitlctl.1")], capture_output=True, text=True,
                               timeout=60, env=dict(os.environ, MANWIDTH="120", MANPAGER="cat", PAGER="cat"))
            self.assertRegex(p.stdout, r"(?m)^   mcp\b")
            self.assertIn("--reconnect-timeout", p.stdout)
        script = ('source %s; COMP_WORDS=(hitlctl mcp --); COMP_CWORD=2; _hitlctl; echo "${COMPREPLY[@]}"; '
                  'COMP_WORDS=(hitlctl mc); COMP_CWORD=1; _hitlctl; echo "${COMPREPLY[@]}"'
                  % os.path.join(ROOT, "contrib", "bash-completion", "hitlctl"))
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30).stdout.splitlines()
        self.assertIn("--progress-interval", out[0].split())
        self.assertEqual(out[1].split(), ["mcp"])
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        for needle in ("## From an AI agent", '"mcpServers"', ".vscode/mcp.json", '"mcp", "--instance"'):
            self.assertIn(needle, readme)


if __name__ == "__main__":
    main()
