#!/usr/bin/env python3
"""The Python client (python/hitld) against a real hitld and the emulator:
every method, every error class it maps, ask() with a reviewer answering,
watch(), and the asyncio client; its framing rules (bounded lines, late
replies, overflow) against a scripted fake daemon; and that the package
installs with `pip install --no-build-isolation` and nothing from a registry.

The package is imported from the worktree's python/ directory: no install is
needed to run this file.
"""
import ast
import asyncio
import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import BUILD, HitldTestCase, KEY, ROOT, SLOW, as_uid, main, single_select_request, wait_for  # noqa: E402

PYDIR = os.path.join(ROOT, "python")
sys.path.insert(0, PYDIR)
import hitld  # noqa: E402
import hitld.client  # noqa: E402
from hitld import errors  # noqa: E402

NO_SUCH_ID = "r_" + "0" * 26
ALICE = 40011


class Reviewer(threading.Thread):
    """Answers, at the emulator, the first pending request whose text is
    `text`, as a reviewer would: a stand-in for a person on the phone app."""

    def __init__(self, emu, text, response_data, timeout=30):
        super().__init__(daemon=True)
        self.emu, self.text, self.response_data = emu, text, response_data
        self.deadline = time.monotonic() + timeout * SLOW
        self.answered = None
        self.error = None

    def run(self):
        try:
            while time.monotonic() < self.deadline and self.answered is None:
                for r in self.emu.requests(status="pending"):
                    if r["request_text"] == self.text:
                        self.emu.respond(r["id"], self.response_data)
                        self.answered = r["id"]
                        return
                time.sleep(0.05)
        except Exception as e:  # reported by the test, never lost
            self.error = e




def outcome(fn):
    """{"result": …} or {"error": class name, "code", "data"} of fn()."""
    try:
        return {"result": fn()}
    except hitld.HitldError as e:
        return {"error": type(e).__name__, "code": e.code, "data": e.data, "errno": getattr(e, "errno", None)}


class ClientCase(HitldTestCase):
    def setUp(self):
        super().setUp()
        self.py = hitld.Client(self.hitld.socket, timeout=30 * SLOW)
        self.addCleanup(self.py.close)

    def request(self, text="Deploy build 4812 to production?", **extra):
        return single_select_request(self.loop_id, text=text, **extra)

    def answer_with(self, text, response_data):
        rev = Reviewer(self.emu, text, response_data)
        rev.start()
        self.addCleanup(rev.join, 5)
        return rev


class Connecting(ClientCase):
    def test_the_socket_is_chosen_as_hitlctl_chooses_it(self):
        self.assertEqual(hitld.instance_socket_path("prod"), "/run/hitld-prod.sock")
        self.assertEqual(hitld.instance_socket_path("a_b.c:d@e-1"), "/run/hitld-a_b.c:d@e-1.sock")
        for bad in ("", ".hidden", "a/b", "x" * 65, "sp ace"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                hitld.instance_socket_path(bad)
        with mock.patch.dict(os.environ, {"HITLD_SOCKET": self.hitld.socket}):
            self.assertEqual(hitld.socket_path(), self.hitld.socket)
            self.assertEqual(hitld.socket_path(instance="prod"), "/run/hitld-prod.sock")
            self.assertEqual(hitld.socket_path("/x.sock", instance="prod"), "/x.sock")
            with hitld.Client() as c:
                self.assertEqual(c.path, self.hitld.socket)
                self.assertEqual(c.hello()["daemon"], "hitld")
        with mock.patch.dict(os.environ, {"HITLD_SOCKET": ""}):
            self.assertEqual(hitld.socket_path(), "/run/hitld.sock")

    def test_the_same_socket_as_hitlctl(self):
        """hitlctl names the socket it tried when there is none: ours is it."""
        hitlctl = os.path.join(BUILD, "hitlctl")
        gone = os.path.join(self.tmp, "gone.sock")
        for args, env in [(["--instance", "py-%d" % os.getpid()], {}), ([], {"HITLD_SOCKET": gone}),
                          (["--socket", gone, "--instance", "other"], {})]:
            with self.subTest(args=args, env=env):
                r = subprocess.run([hitlctl] + args + ["status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(os.environ, **env), timeout=30)
                self.assertEqual(r.returncode, 3, r.stderr)
                opts = dict(zip(args[::2], args[1::2]))
                with mock.patch.dict(os.environ, env):
                    path = hitld.socket_path(opts.get("--socket"), opts.get("--instance"))
                    self.assertIn("cannot connect to %s:" % path, r.stderr.decode())
                    with self.assertRaises(hitld.DaemonNotRunning) as e:
                        hitld.Client(opts.get("--socket"), opts.get("--instance"))
                    self.assertEqual(e.exception.path, path)
        r = subprocess.run([hitlctl, "--instance", ".bad", "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        with self.assertRaises(ValueError):
            hitld.Client(instance=".bad")

    def test_no_daemon_is_daemon_not_running(self):
        missing = os.path.join(self.tmp, "nothing.sock")
        with self.assertRaises(hitld.DaemonNotRunning) as e:
            hitld.Client(missing)
        self.assertEqual(e.exception.errno, errno.ENOENT)
        self.assertIsInstance(e.exception, ConnectionError)
        self.assertIn(missing, str(e.exception))
        with self.assertRaises(hitld.DaemonNotRunning) as e:
            hitld.Client(instance="no-such-instance-%d" % os.getpid())
        self.assertIn("systemctl start hitld@no-such-instance", str(e.exception))
        # A socket file with nothing behind it.
        dead = os.path.join(self.tmp, "dead.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(dead)
        s.close()
        with self.assertRaises(hitld.DaemonNotRunning) as e:
            hitld.Client(dead)
        self.assertEqual(e.exception.errno, errno.ECONNREFUSED)

        async def go():
            with self.assertRaises(hitld.DaemonNotRunning):
                await hitld.AsyncClient(missing).status()
        asyncio.run(go())

    def test_a_stopping_daemon_ends_waits_with_shutting_down_then_is_not_running(self):
        self.py.pause()
        rid = self.py.submit(self.request())["id"]
        self.py.close()
        # Nothing shows when the daemon has read the wait: a stop that came
        # first closes the connection instead. Give it longer each time.
        for settle in (0.3, 1.0, 3.0):
            got = {}

            def waiter():
                with hitld.Client(self.hitld.socket) as c:
                    got["started"] = True
                    got["wait"] = outcome(lambda: c.wait(rid, timeout_ms=600000))
            t = threading.Thread(target=waiter)
            t.start()
            wait_for(lambda: got.get("started"), 10, what="the waiter")
            time.sleep(settle * SLOW)
            self.hitld.stop()
            t.join(30 * SLOW)
            self.assertFalse(t.is_alive())
            with self.assertRaises(hitld.DaemonNotRunning):
                hitld.Client(self.hitld.socket)
            # The request is safe: wait again once hitld is back.
            self.hitld.start()
            with hitld.Client(self.hitld.socket) as c:
                self.assertEqual(c.get(rid)["state"], "queued")
            if got["wait"].get("error") != "ConnectionClosed":
                break
        self.assertEqual(got["wait"].get("error"), "ShuttingDown", got)
        self.assertEqual(got["wait"]["code"], -32008)

    def test_ask_outlives_a_kill_9_of_hitld(self):
        text = "Survives kill -9? %d" % os.getpid()
        other = hitld.Client(self.hitld.socket)
        other.pause()
        got = {}

        def asker():
            with hitld.Client(self.hitld.socket) as c:
                got["ask"] = outcome(lambda: tuple(c.ask(self.request(text), client_ref="kill-9", reconnect=120)))
        t = threading.Thread(target=asker)
        t.start()
        self.addCleanup(t.join, 60)
        wait_for(lambda: outcome(lambda: other.get(client_ref="kill-9")).get("result"), 10, what="the submit")
        other.close()
        self.hitld.kill9()
        self.hitld.start()
        with hitld.Client(self.hitld.socket) as c:
            c.resume()
        rev = self.answer_with(text, {"selected_value": "approve"})
        t.join(60 * SLOW)
        self.assertFalse(t.is_alive())
        self.assertIsNone(rev.error)
        result, record = got["ask"]["result"]
        self.assertEqual((result, record["result_source"], record["client_ref"]), ("approve", "reviewer", "kill-9"))
        self.assertEqual(len([r for r in self.emu.requests() if r["request_text"] == text]), 1)

    def test_a_killed_daemon_is_connection_closed(self):
        self.py.pause()
        rid = self.py.submit(self.request())["id"]
        got = {}

        def waiter():
            got["wait"] = outcome(lambda: self.py.wait(rid, timeout_ms=600000))
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.3)
        self.hitld.kill9()
        t.join(30 * SLOW)
        self.assertEqual(got["wait"].get("error"), "ConnectionClosed", got)
        self.assertTrue(self.py.broken)
        with self.assertRaises(hitld.ConnectionClosed):
            self.py.status()


class Requests(ClientCase):
    def test_hello_and_status(self):
        h = self.py.hello()
        self.assertEqual((h["protocol"], h["daemon"], h["uid"], h["admin"]), (1, "hitld", os.geteuid(), True))
        st = self.py.status()
        self.assertEqual(st["budget"]["limit"], 100)
        self.assertIn("queue", st)
        with self.assertRaises(hitld.InvalidParams) as e:
            self.py.hello(protocol=2)
        self.assertEqual(e.exception.field, "protocol")

    def test_submit_get_list_cancel_and_their_errors(self):
        self.py.pause()
        sub = self.py.submit(self.request("one"), client_ref="ref-1")
        self.assertEqual((sub["state"], sub["position"], sub["duplicate"]), ("queued", 1, False))
        again = self.py.submit(self.request("one"), client_ref="ref-1")
        self.assertEqual((again["id"], again["duplicate"]), (sub["id"], True))
        with self.assertRaises(hitld.Conflict) as e:
            self.py.submit(self.request("two"), client_ref="ref-1")
        self.assertEqual(e.exception.code, -32009)
        # Keyword arguments alone make a request too; None means "left out".
        kw = self.py.submit(**self.request("kw"), context=None, platform_version="py-1")
        got = self.py.get(kw["id"])
        self.assertEqual((got["request_text"], got["platform_version"]), ("kw", "py-1"))

        rec = self.py.get(sub["id"])
        self.assertEqual((rec["id"], rec["client_ref"], rec["state"]), (sub["id"], "ref-1", "queued"))
        self.assertEqual(self.py.get(client_ref="ref-1")["id"], sub["id"])
        with self.assertRaises(hitld.NotFound) as e:
            self.py.get(NO_SUCH_ID)
        self.assertEqual((e.exception.code, e.exception.name), (-32001, "not_found"))

        listed = self.py.list(limit=1)
        self.assertEqual([r["id"] for r in listed["requests"]], [kw["id"]])
        self.assertIsNotNone(listed["next_cursor"])
        self.assertEqual([r["id"] for r in self.py.iter_requests(limit=1)], [kw["id"], sub["id"]])
        self.assertEqual(len(self.py.list(["queued", "pending"], loop_id=self.loop_id)["requests"]), 2)
        self.assertEqual(self.py.list("completed")["requests"], [])

        w = self.py.wait(sub["id"], timeout_ms=0)
        self.assertEqual((w["done"], w["request"]["state"]), (False, "queued"))
        with self.assertRaises(hitld.WaitTimeout) as e:
            self.py.wait_final(sub["id"], timeout=0.2)
        self.assertEqual((e.exception.request_id, e.exception.record["state"]), (sub["id"], "queued"))

        self.assertEqual(self.py.cancel(sub["id"])["state"], "cancelled")
        with self.assertRaises(hitld.InvalidState) as e:
            self.py.cancel(sub["id"])
        self.assertEqual(e.exception.code, -32007)
        with self.assertRaises(hitld.RequestFailed) as e:
            self.py.ask(self.request("one"), client_ref="ref-1")  # the cancelled one, by its client_ref
        self.assertEqual((e.exception.state, e.exception.request_id), ("cancelled", sub["id"]))

    def test_invalid_params_carry_the_field(self):
        with self.assertRaises(hitld.InvalidParams) as e:
            self.py.submit(self.request(), default_response="maybe")
        self.assertEqual(e.exception.field, "default_response")
        self.assertEqual(e.exception.code, -32602)
        self.assertIsInstance(e.exception, hitld.RpcError)
        with self.assertRaises(hitld.InvalidParams) as e:
            self.py.get(NO_SUCH_ID, unknown_param=1)
        self.assertEqual(e.exception.data, {"field": "unknown_param", "reason": "unknown parameter"})
        with self.assertRaises(hitld.InvalidParams):
            self.py.wait(NO_SUCH_ID, timeout_ms=3600001)
        with self.assertRaises(hitld.MethodNotFound) as e:
            self.py.call("no.such.method")
        self.assertEqual(e.exception.code, -32601)
        self.assertEqual(self.py.call("request.list", {"limit": 1}, state="queued")["requests"], [])

    def test_ask_returns_the_reviewers_answer_then_feedback(self):
        text = "Ship it? %d" % os.getpid()
        rev = self.answer_with(text, {"selected_value": "approve"})
        answer = self.py.ask(self.request(text), timeout=60 * SLOW)
        self.assertIsNone(rev.error)
        result, record = answer
        self.assertEqual((result, answer.source, answer.state), ("approve", "reviewer", "completed"))
        self.assertEqual(record["remote_id"], rev.answered)
        self.assertEqual(self.py.wait_final(answer.request_id)["result"], "approve")
        fb = self.py.feedback(answer.request_id, rating=5, comment="quick")
        self.assertEqual(fb["feedback_state"], "queued")
        with self.assertRaises(hitld.InvalidState):
            self.py.feedback(answer.request_id, {"rating": 4})
        with self.assertRaises(hitld.InvalidParams) as e:
            self.py.ask(self.request(), default_response="maybe")
        self.assertEqual(e.exception.field, "default_response")

    def test_watch_carries_every_change(self):
        self.py.pause()
        other = hitld.Client(self.hitld.socket)
        self.addCleanup(other.close)
        watch = self.py.watch()
        self.assertEqual(watch.watching, 0)
        self.assertIsNone(watch.next(timeout=0.1))
        rid = other.submit(self.request("watched"))["id"]
        ev = watch.next(timeout=10 * SLOW)
        self.assertEqual((ev.method, ev.request["id"], ev.request["state"]), ("request.changed", rid, "queued"))
        # Calls still work on a watching connection; a second watch does not.
        self.assertEqual(self.py.get(rid)["state"], "queued")
        with self.assertRaises(hitld.InvalidState):
            self.py.watch()
        other.cancel(rid)
        states = []
        for ev in watch:
            states.append(ev.request["state"])
            if ev.request["state"] == "cancelled":
                break
        self.assertEqual(states[-1], "cancelled")

        only = hitld.Client(self.hitld.socket)
        self.addCleanup(only.close)
        w2 = only.watch(ids=[rid])
        self.assertEqual(w2.watching, 1)
        other.submit(self.request("not watched"))
        self.assertIsNone(w2.next(timeout=0.3))

    def test_unread_notifications_past_the_bound_end_the_watch(self):
        self.py.pause()
        other = hitld.Client(self.hitld.socket)
        self.addCleanup(other.close)
        with mock.patch.object(hitld.client, "EVENT_QUEUE_MAX", 3):
            watch = self.py.watch()
            for i in range(5):
                other.submit(self.request("flood %d" % i))
            # Calls read the notifications that come before their replies.
            wait_for(lambda: self.py.status() and self.py._events_overflowed, 10, what="the overflow")
            for _ in range(3):
                self.assertEqual(watch.next(0)[0], "request.changed")
            with self.assertRaises(hitld.WatchOverflow):
                watch.next(0)
        with self.assertRaises(hitld.ConnectionClosed):
            self.py.status()


class Admin(ClientCase):
    def test_admin_methods(self):
        self.assertEqual(self.py.pause(), {"paused": True})
        self.assertTrue(self.py.status()["paused"])
        self.assertEqual(self.py.resume(), {"paused": False})
        self.assertTrue(self.py.reload()["reloaded"])
        kt = self.py.key_test()
        self.assertRegex(kt["api_key_id"], "^[0-9a-f]{24}$")
        with open(self.hitld.config, "a") as f:
            f.write("this is not libconfig\n")
        with self.assertRaises(hitld.InvalidState):
            self.py.reload()

    def test_loops(self):
        first = self.py.loop_list()
        self.assertIn(self.loop_id, [l["id"] for l in first["loops"]])
        self.assertTrue(self.py.loop_list()["cached"])
        made = self.py.loop_create("Deploys", "rocket", description="prod")
        lid = made["loop"]["id"]
        self.assertEqual(self.py.loop_get(lid)["loop"]["name"], "Deploys")
        self.assertEqual(self.py.loop_update(lid, description="Production")["loop"]["description"], "Production")
        member = self.emu.ctl("POST", "/_emu/loops/%s/members" % lid, {"email": "second@example.com"})
        self.assertGreaterEqual(self.py.loop_members(lid)["total_count"], 1)
        removed = self.py.loop_remove_member(lid, member["user_id"])
        self.assertEqual(removed["user_id"], member["user_id"])
        self.py.loop_delete(lid)
        with self.assertRaises(hitld.RemoteError) as e:
            self.py.loop_get(lid)
        self.assertEqual((e.exception.code, e.exception.http_status), (-32006, 404))
        self.assertEqual(e.exception.data["msg"], "Loop not found")
        with self.assertRaises(hitld.InvalidParams) as e:
            self.py.loop_get("nope")
        self.assertEqual(e.exception.field, "id")

    def test_no_budget_is_budget_exhausted_and_a_revoked_key_unavailable(self):
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 100})
        with self.assertRaises(hitld.RemoteError) as e:
            self.py.loop_list()
        self.assertEqual(e.exception.http_status, 429)
        with self.assertRaises(hitld.BudgetExhausted) as e:
            self.py.loop_get(self.loop_id)
        self.assertEqual(e.exception.code, -32004)
        self.assertIsNotNone(e.exception.retry_at)

    def test_a_revoked_key_is_unavailable(self):
        self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        with self.assertRaises(hitld.Unavailable) as e:
            self.py.key_test()
        self.assertEqual(e.exception.code, -32010)

    def test_trigger(self):
        try:
            self.py.trigger("not a workflow id")
        except hitld.MethodNotFound:
            self.skipTest("this hitld has no workflow.trigger yet")
        except hitld.InvalidParams as e:
            self.assertEqual(e.field, "workflow_id")
        else:
            self.fail("an invalid workflow_id was accepted")
        try:  # the emulator's workflows, where it has them
            self.emu.ctl("POST", "/_emu/workflows", {"key": KEY, "id": "wf_python_client"})
            known = True
        except AssertionError:
            known = False
        self.py.pause()
        first = self.py.trigger("wf_python_client", {"build": 4812}, priority="high", client_ref="trigger-1")
        self.assertEqual((first["state"], first["duplicate"]), ("queued", False))
        again = self.py.trigger("wf_python_client", {"build": 4812}, priority="high", client_ref="trigger-1")
        self.assertEqual((again["id"], again["duplicate"]), (first["id"], True))
        with self.assertRaises(hitld.Conflict):
            self.py.trigger("wf_python_client", {"build": 1}, client_ref="trigger-1")
        waited = self.py.trigger("wf_python_client", {"build": 4813}, wait=True, timeout_ms=0)
        self.assertEqual((waited["done"], waited["request"]["state"]), (False, "queued"))
        self.py.resume()
        record = self.py.wait_final(first["id"], timeout=60 * SLOW)
        self.assertEqual(record["state"], "completed" if known else "failed", record)
        done = self.py.trigger("wf_python_client", {"build": 4814}, wait=True, timeout_ms=60000)
        self.assertTrue(done["done"])


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch uids")
class NotAdmin(ClientCase):
    def test_a_non_admin_gets_permission_denied_and_not_found(self):
        rid = self.py.submit(self.request())["id"]
        sock = self.hitld.socket

        def child():
            out = {}
            with hitld.Client(sock) as c:
                out["hello"] = c.hello()
                for name in ("pause", "resume", "reload", "key_test"):
                    out[name] = outcome(getattr(c, name))
                out["list_root"] = outcome(lambda: c.list(owner_uid=0))
                out["get_root"] = outcome(lambda: c.get(rid))
                out["cancel_root"] = outcome(lambda: c.cancel(rid))
                out["loop_create"] = outcome(lambda: c.loop_create("Mine", "x"))
            return out
        got = as_uid(ALICE, child)
        self.assertNotIn("exception", got, got)
        self.assertEqual((got["hello"]["uid"], got["hello"]["admin"]), (ALICE, False))
        for name in ("pause", "resume", "reload", "key_test", "list_root", "loop_create"):
            self.assertEqual((got[name].get("error"), got[name].get("code")), ("PermissionDenied", -32002), name)
        for name in ("get_root", "cancel_root"):
            self.assertEqual(got[name].get("error"), "NotFound", name)

        os.chmod(sock, 0o600)
        denied = as_uid(ALICE, lambda: outcome(lambda: hitld.Client(sock).hello()))
        self.assertEqual((denied.get("error"), denied.get("errno")), ("SocketAccessDenied", errno.EACCES), denied)


class Limits(ClientCase):
    CONFIG = {"outbox": {"max_per_uid": 2}, "socket": {"max_connections_per_uid": 4, "max_message_bytes": 4096}}

    def test_open_requests_past_the_quota(self):
        self.py.submit(self.request("1"))
        self.py.submit(self.request("2"))
        with self.assertRaises(hitld.QuotaExceeded) as e:
            self.py.submit(self.request("3"))
        self.assertEqual((e.exception.code, e.exception.data), (-32003, {"limit": 2}))

    def test_connections_past_the_quota(self):
        # self.c (the harness's) and self.py are two of the four; the
        # harness's start-up probe may still count for a moment.
        refused = None
        for _ in range(6):
            c = hitld.Client(self.hitld.socket)
            self.addCleanup(c.close)
            try:
                c.hello()
            except hitld.QuotaExceeded as e:
                refused = (e, c)
                break
        self.assertIsNotNone(refused, "more than four connections were accepted")
        self.assertEqual((refused[0].code, refused[0].data), (-32003, {"limit": 4}))
        self.assertTrue(refused[1].broken)

    def test_a_line_over_the_daemons_limit_is_invalid_request(self):
        big = {"pad": "x" * 5000}
        small = hitld.Client(self.hitld.socket, max_message=4096)
        self.addCleanup(small.close)
        with self.assertRaises(hitld.MessageTooLarge):
            small.submit(self.request(), context=big)
        self.assertEqual(small.hello()["daemon"], "hitld")  # nothing was sent
        with self.assertRaises(hitld.InvalidRequest) as e:
            self.py.submit(self.request(), context=big)
        self.assertEqual((e.exception.code, e.exception.data), (-32600, {"reason": "message too large"}))
        with self.assertRaises(hitld.ConnectionClosed):
            self.py.status()


class FullDisk(ClientCase):
    START_DAEMON = False

    def setUp(self):
        HitldTestCase.setUp(self)
        self.mnt = os.path.join(self.tmp, "fs")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs here: %s" % r.stdout.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        self.hitld = self.new_daemon()
        self.hitld.state_dir = os.path.join(self.mnt, "state")
        self.hitld.start()
        self.py = hitld.Client(self.hitld.socket)
        self.addCleanup(self.py.close)

    def test_a_full_disk_is_storage_error(self):
        self.py.pause()
        with open(os.path.join(self.mnt, "filler"), "wb", buffering=0) as f:
            chunk = 65536
            while chunk:
                try:
                    f.write(b"\0" * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
        for i in range(64):  # the active segment's last page may take a few
            try:
                self.py.submit(self.request("pad %d" % i), context={"pad": "p" * 300})
            except hitld.StorageError as e:
                self.assertEqual(e.code, -32005)
                break
        else:
            self.fail("a full disk kept accepting submits")
        with hitld.Client(self.hitld.socket) as c:  # reads still work
            self.assertEqual(self.py.status()["version"], c.hello()["version"])


class Async(ClientCase):
    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 120 * SLOW))

    def test_ask_wait_and_concurrent_calls(self):
        text = "Async ship? %d" % os.getpid()
        rev = self.answer_with(text, {"selected_value": "reject"})

        async def go():
            async with hitld.AsyncClient(self.hitld.socket) as c:
                hello, st, listed = await asyncio.gather(c.hello(), c.status(), c.list(limit=5))
                self.assertEqual(hello["daemon"], "hitld")
                self.assertIn("budget", st)
                answer = await c.ask(self.request(text), timeout=60 * SLOW)
                w = await c.wait(answer.request_id, timeout_ms=0)
                with self.assertRaises(hitld.NotFound):
                    await c.get(NO_SUCH_ID)
                with self.assertRaises(hitld.InvalidParams):
                    await c.submit(self.request(), default_response="maybe")
                await c.pause()
                queued = await c.submit(self.request("stays queued"))
                with self.assertRaises(hitld.WaitTimeout):
                    await c.wait_final(queued["id"], timeout=0.2)
                # A long wait and other calls at once on one connection.
                waiting = asyncio.ensure_future(c.wait(queued["id"], timeout_ms=60000))
                got = await c.get(queued["id"])
                cancelled = await c.cancel(queued["id"])
                final = await waiting
                return answer, w, got, cancelled, final
        answer, w, got, cancelled, final = self.run_async(go())
        self.assertIsNone(rev.error)
        self.assertEqual((answer.result, answer.source), ("reject", "reviewer"))
        self.assertTrue(w["done"])
        self.assertEqual(got["state"], "queued")
        self.assertEqual(cancelled["state"], "cancelled")
        self.assertEqual((final["done"], final["request"]["state"]), (True, "cancelled"))

    def test_async_watch(self):
        self.py.pause()

        async def go():
            c = hitld.AsyncClient(instance=None, socket=self.hitld.socket)
            try:
                watch = await c.watch()
                self.assertIsNone(await watch.next(timeout=0.1))
                rid = (await asyncio.get_running_loop().run_in_executor(
                    None, lambda: self.py.submit(self.request("async watched"))))["id"]
                seen = []
                async for ev in watch:
                    seen.append((ev.method, ev.request["id"], ev.request["state"]))
                    if ev.request["state"] == "queued":
                        await c.cancel(rid)
                    if ev.request["state"] == "cancelled":
                        break
                with self.assertRaises(hitld.InvalidState):
                    await c.watch()
                return rid, seen
            finally:
                await c.close()
        rid, seen = self.run_async(go())
        self.assertEqual(seen[0], ("request.changed", rid, "queued"))
        self.assertEqual(seen[-1], ("request.changed", rid, "cancelled"))

    def test_async_ask_outlives_a_restart_of_hitld(self):
        text = "Async survives a restart? %d" % os.getpid()
        self.py.pause()

        async def go():
            async with hitld.AsyncClient(self.hitld.socket) as c, hitld.AsyncClient(self.hitld.socket) as look:
                # (On c, a call made behind ask()'s wait would be answered after it:
                # replies come in request order. Hence a second connection.)
                asking = asyncio.ensure_future(c.ask(self.request(text), client_ref="restart", reconnect=120))
                while (await look.list())["requests"] == []:
                    await asyncio.sleep(0.05)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.hitld.stop)
                await loop.run_in_executor(None, self.hitld.start)
                async with hitld.AsyncClient(self.hitld.socket) as c2:
                    await c2.resume()
                self.answer_with(text, {"selected_value": "approve"})
                return await asking
        answer = self.run_async(go())
        self.assertEqual((answer.result, answer.source), ("approve", "reviewer"))
        self.assertEqual(len([r for r in self.emu.requests() if r["request_text"] == text]), 1)

    def test_async_call_on_a_stopped_daemon(self):
        async def go():
            c = hitld.AsyncClient(self.hitld.socket)
            await c.status()
            self.hitld.stop()
            with self.assertRaises(hitld.ConnectionClosed):
                await c.status()
            await c.close()
        self.run_async(go())


class FakeDaemon:
    """A scripted peer on a Unix socket: script(conn, lines) talks to one
    client; lines() yields the client's requests as dicts."""

    def __init__(self, tmp, script):
        self.path = os.path.join(tmp, "fake-%d.sock" % id(self))
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(4)
        self.srv.settimeout(20)
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script):
        try:
            conn, _ = self.srv.accept()
            conn.settimeout(20)
            with conn:
                f = conn.makefile("rb")

                def lines():
                    for line in f:
                        yield json.loads(line)
                script(conn, lines())
        except Exception as e:
            self.error = e

    def close(self):
        self.srv.close()
        self.thread.join(20)


def reply(rid, result):
    return (json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n").encode()


class Framing(unittest.TestCase):
    """The client's own rules, against a fake daemon: no emulator, no hitld."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hitld-py-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def fake(self, script):
        f = FakeDaemon(self.tmp, script)
        self.addCleanup(f.close)
        return f

    def test_a_late_reply_is_skipped_after_a_timeout(self):
        def script(conn, lines):
            first = next(lines)
            second = next(lines)
            conn.sendall(reply(first["id"], {"late": True}) + reply(second["id"], {"second": True}))
            third = next(lines)
            conn.sendall(reply(third["id"], {"third": True}))
        for make in (lambda p: hitld.Client(p, timeout=0.2), ):
            c = make(self.fake(script).path)
            with c:
                with self.assertRaises(hitld.Timeout) as e:
                    c.status()
                self.assertIsInstance(e.exception, TimeoutError)
                self.assertEqual(c.status(), {"second": True})
                self.assertEqual(c.status(), {"third": True})

        async def go():
            c = hitld.AsyncClient(self.fake(script).path, timeout=0.2)
            with self.assertRaises(hitld.Timeout):
                await c.status()
            self.assertEqual(await c.status(), {"second": True})
            self.assertEqual(await c.status(), {"third": True})
            await c.close()
        asyncio.run(go())

    def test_lines_are_bounded_and_malformed_ones_break_the_connection(self):
        def too_long(conn, lines):
            next(lines)
            conn.sendall(b'{"jsonrpc":"2.0","id":1,"result":"' + b"x" * 10000 + b'"}\n')

        def not_json(conn, lines):
            next(lines)
            conn.sendall(b"<html>\n")

        for script, exc in ((too_long, hitld.MessageTooLarge), (not_json, hitld.ProtocolError)):
            with self.subTest(script.__name__):
                with hitld.Client(self.fake(script).path, max_message=4096) as c:
                    with self.assertRaises(exc):
                        c.status()
                    with self.assertRaises(hitld.ConnectionClosed):
                        c.status()

                async def go():
                    c = hitld.AsyncClient(self.fake(script).path, max_message=4096)
                    with self.assertRaises(exc):
                        await c.status()
                    with self.assertRaises(hitld.ConnectionClosed):
                        await c.status()
                    await c.close()
                asyncio.run(go())

    def test_watch_overflow_and_error_classes(self):
        def script(conn, lines):
            w = next(lines)
            conn.sendall(reply(w["id"], {"watching": 0}))
            conn.sendall(b'{"jsonrpc":"2.0","method":"request.changed","params":{"request":{"id":"r_1"}}}\n'
                         b'{"jsonrpc":"2.0","method":"watch.overflow","params":{}}\n')

        with hitld.Client(self.fake(script).path) as c:
            watch = c.watch()
            self.assertEqual(next(watch).request, {"id": "r_1"})
            with self.assertRaises(hitld.WatchOverflow):
                next(watch)

        async def go():
            c = hitld.AsyncClient(self.fake(script).path)
            watch = await c.watch()
            self.assertEqual((await watch.next(5)).request, {"id": "r_1"})
            with self.assertRaises(hitld.WatchOverflow):
                await watch.next(5)
            await c.close()
        asyncio.run(go())

        for code, cls in [(-32700, hitld.ParseError), (-32600, hitld.InvalidRequest), (-32601, hitld.MethodNotFound),
                          (-32602, hitld.InvalidParams), (-32603, hitld.InternalError), (-32001, hitld.NotFound),
                          (-32002, hitld.PermissionDenied), (-32003, hitld.QuotaExceeded),
                          (-32004, hitld.BudgetExhausted), (-32005, hitld.StorageError), (-32006, hitld.RemoteError),
                          (-32007, hitld.InvalidState), (-32008, hitld.ShuttingDown), (-32009, hitld.Conflict),
                          (-32010, hitld.Unavailable), (-32099, hitld.RpcError)]:
            e = errors.error_from_object({"code": code, "message": "m", "data": {"k": 1}})
            self.assertIs(type(e), cls)
            self.assertEqual((e.code, e.message, e.data), (code, "m", {"k": 1}))

    def test_the_package_is_python_3_9(self):
        for name in sorted(os.listdir(os.path.join(PYDIR, "hitld"))):
            if name.endswith(".py"):
                with open(os.path.join(PYDIR, "hitld", name)) as f:
                    ast.parse(f.read(), name, feature_version=(3, 9))
        self.assertTrue(os.path.exists(os.path.join(PYDIR, "hitld", "py.typed")))


class Types(unittest.TestCase):
    def test_the_type_hints_check_strictly(self):
        mypy = shutil.which("mypy")
        if not mypy:
            self.skipTest("mypy is not installed (Debian: apt-get install mypy)")
        tmp = tempfile.mkdtemp(prefix="hitld-mypy-")
        self.addCleanup(shutil.rmtree, tmp, True)
        r = subprocess.run([mypy, "--strict", "--python-version", "3.9", "--cache-dir", tmp, "hitld"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=PYDIR, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace")[-3000:])


def has_pip(py):
    return subprocess.run([py, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def can_build(py):
    """setuptools, and (before setuptools 70.1, which builds wheels itself)
    the wheel package: what --no-build-isolation needs already there."""
    code = ("import setuptools\n"
            "v = tuple(int(x) for x in setuptools.__version__.split('.')[:2])\n"
            "if v < (70, 1): import wheel\n")
    return subprocess.run([py, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class Install(unittest.TestCase):
    """`pip install --no-build-isolation` with what Debian packages
    (python3-pip, python3-setuptools, python3-wheel) and no registry:
    with Debian's python3 when it has pip, else with the one running the
    tests. The running one is also tried when it differs and has what a
    build needs (a pyenv/venv python may lack wheel: that is not ours)."""

    def install(self, py, tmp, src, n):
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        env.pop("PIP_FIND_LINKS", None)
        target = os.path.join(tmp, "target-%d" % n)
        r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                            "--target", target, src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, cwd=tmp, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace")[-3000:])
        self.assertTrue(os.path.exists(os.path.join(target, "hitld", "py.typed")))
        r = subprocess.run([py, "-c", "import hitld; print(hitld.__file__); print(hitld.__version__)"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=dict(env, PYTHONPATH=target), cwd=tmp, timeout=60)
        out = r.stdout.decode().split()
        self.assertEqual(r.returncode, 0, out)
        self.assertEqual(out, [os.path.join(target, "hitld", "__init__.py"), hitld.__version__])

    def test_pip_installs_it_without_a_registry(self):
        debian = "/usr/bin/python3"
        main_py = debian if os.path.exists(debian) and has_pip(debian) else sys.executable
        if not has_pip(main_py):
            self.skipTest("no python3 with pip on this host (Debian: apt-get install python3-pip)")
        tmp = tempfile.mkdtemp(prefix="hitld-pip-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # A copy: setuptools writes build/ and *.egg-info next to the sources.
        src = os.path.join(tmp, "src")
        shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".*"))
        with self.subTest(python=main_py):
            self.install(main_py, tmp, src, 0)
        other = sys.executable
        if os.path.realpath(other) != os.path.realpath(main_py) and has_pip(other) and can_build(other):
            with self.subTest(python=other):
                self.install(other, tmp, src, 1)


if __name__ == "__main__":
    main()
