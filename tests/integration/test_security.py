#!/usr/bin/env python3
"""Security of one daemon shared by several local users (PROTOCOL.md §2,
DESIGN.md §2.6): peer identity and isolation between real uids, admin-only
methods, per-uid caps, the socket file, and the API key's hygiene (loading
order, refused key files, never in logs/state/environment, no core dumps).

Needs root (it creates throw-away users and groups, removed on cleanup).
The journal side of "the key is never logged" is covered by the journald
test; here the daemon logs to stderr at debug level and that is searched.
"""
import errno
import json
import os
import pwd
import re
import secrets
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KEY, SLOW, Client, HitldTestCase, main, single_select_request, wait_for  # noqa: E402
from sec_util import (calls_on, Accounts, UserChild, UserDaemon, add_key_same_account, as_user, call, calls,  # noqa: E402
                      connect_errno, find_secret_in_tree, new_key, secret_needles, start_expecting_failure,
                      sweep_stale_accounts, write_key_file)

NOBODY = pwd.getpwnam("nobody")
IS_ROOT = os.geteuid() == 0


def fake_id_like(rid):
    """A well-formed request id that names nothing."""
    return rid[:-1] + ("0" if rid[-1] != "0" else "1")


class Gate:
    """Lets a forked child and the parent take turns: the child says ready(),
    the parent answers go()."""

    def __init__(self):
        self.r1, self.w1 = os.pipe()
        self.r2, self.w2 = os.pipe()

    def ready(self):                      # child
        os.write(self.w1, b"r")
        select.select([self.r2], [], [], 60 * SLOW)
        return os.read(self.r2, 1) == b"g"

    def wait_ready(self, timeout=60, child=None):     # parent
        fds = [self.r1] + ([child.fd] if child else [])
        ready = select.select(fds, [], [], timeout * SLOW)[0]
        if self.r1 not in ready:
            # The child ended (or hangs) before its turn: say what it did.
            detail = child.result(timeout=5) if child else None
            raise AssertionError("child never got ready: %s" % (detail,))
        os.read(self.r1, 1)

    def go(self):                         # parent
        os.write(self.w2, b"g")

    def close(self):
        for fd in (self.r1, self.w1, self.r2, self.w2):
            try:
                os.close(fd)
            except OSError:
                pass


def read_for(client, seconds):
    """Messages that arrive on client within seconds."""
    out = []
    client.sock.settimeout(seconds)
    try:
        while True:
            out.append(client.read_message())
    except (socket.timeout, TimeoutError):
        pass
    return out


def queue_total(status):
    return sum(v for v in status["queue"].values() if isinstance(v, int))


class AccountsTestCase(HitldTestCase):
    """Makes the class's accounts once (setUpClass), removes them at the end."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not IS_ROOT:
            raise unittest.SkipTest("needs root to create users and switch uids")
        sweep_stale_accounts()
        cls.accounts = Accounts(cls.addClassCleanup)
        cls.make_accounts()

    @classmethod
    def make_accounts(cls):
        pass


# --------------------------------------------------------------------------- isolation

class TwoRealUsers(AccountsTestCase):
    """Alice = nobody, Bob = a fresh user, Ada = a fresh member of admin_group."""
    START_DAEMON = False

    @classmethod
    def make_accounts(cls):
        cls.admin_group = cls.accounts.group("g")
        cls.alice = NOBODY
        cls.bob = cls.accounts.user("b")
        cls.ada = cls.accounts.user("a", groups=[cls.admin_group.gr_name])

    def setUp(self):
        super().setUp()
        self.hitld = self.new_daemon({
            "socket": {"admin_group": self.admin_group.gr_name, "max_connections_per_uid": 3},
            "outbox": {"max_per_uid": 3},
        }).start()
        self.sock = self.hitld.socket
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def submit_as(self, pw, req):
        got = as_user(pw, lambda: call(self.sock, "request.submit", req))
        self.assertIn("result", got, got)
        return got["result"]["id"]

    def test_a_second_user_learns_nothing_about_the_first_users_requests(self):
        sock, loop = self.sock, self.loop_id
        marker = "alice-secret-" + secrets.token_hex(6)
        a1 = self.submit_as(self.alice, single_select_request(loop, text=marker + " one", client_ref="shared-ref",
                                                             context={"note": marker}))
        a2 = self.submit_as(self.alice, single_select_request(loop, text=marker + " two"))
        rec1 = self.wait_state(a1, "pending")
        rec2 = self.wait_state(a2, "pending")
        self.emu.respond(rec2["remote_id"], "approve")
        self.wait_state(a2, "completed")
        fake = fake_id_like(a1)
        secrets_of_alice = [a1, a2, marker, rec1["remote_id"], rec2["remote_id"], "shared-ref"]

        # Every way to name one of Alice's requests answers exactly as a
        # request that does not exist does: same code, message and data.
        probes = []
        for rid in (a1, a2):
            probes += [(("request.get", {"id": rid}), ("request.get", {"id": fake})),
                       (("request.wait", {"id": rid, "timeout_ms": 0}), ("request.wait", {"id": fake, "timeout_ms": 0})),
                       (("request.wait", {"id": rid, "timeout_ms": 200}), ("request.wait", {"id": fake, "timeout_ms": 200})),
                       (("request.cancel", {"id": rid}), ("request.cancel", {"id": fake})),
                       (("request.feedback", {"id": rid, "feedback": {"rating": 5}}),
                        ("request.feedback", {"id": fake, "feedback": {"rating": 5}}))]
        probes.append((("request.get", {"client_ref": "shared-ref"}), ("request.get", {"client_ref": "never-used"})))
        probes.append((("request.list", {"owner_uid": self.alice.pw_uid}), ("request.list", {"owner_uid": 3999999})))
        flat = [p for pair in probes for p in pair]
        views = [("hello", {}), ("status", {}), ("request.list", {}),
                 ("request.list", {"state": ["queued", "submitting", "pending", "completed", "cancelled"]}),
                 ("request.list", {"loop_id": loop, "limit": 1000}),
                 ("request.list", {"limit": 1}),
                 ("request.list", {"owner_uid": self.bob.pw_uid})]
        gate = Gate()
        self.addCleanup(gate.close)

        def bob():
            watch_all, watch_ids = Client(sock), Client(sock)
            out = {"watch_all": watch_all.call("watch", {}),
                   "watch_ids": watch_ids.call("watch", {"ids": [a1, a2, fake]})}
            # One connection for everything else: with the cap at 3, closing
            # one and opening the next could race the daemon noticing the close.
            c = Client(sock)
            out["probes"] = calls_on(c, flat)
            out["views"] = calls_on(c, views)
            # A made-up cursor (once a global seq) is refused, not served.
            out["cursor"] = calls_on(c, [("request.list", {"cursor": "999999999"})])[0]
            gate.ready()           # the parent now changes Alice's request
            # Bob's own request, with the client_ref Alice used: a separate
            # namespace, so no conflict and no duplicate.
            out["own"] = c.call("request.submit", single_select_request(loop, text="bob's own",
                                                                        client_ref="shared-ref"))
            own = out["own"]["id"]
            events = []
            deadline = time.monotonic() + 20 * SLOW
            while not any(e.get("params", {}).get("request", {}).get("id") == own for e in events):
                if time.monotonic() > deadline:
                    break
                events += read_for(watch_all, 0.5)
            out["events_all"] = events
            out["events_ids"] = read_for(watch_ids, 1.0)
            for x in (watch_all, watch_ids, c):
                x.close()
            return out

        child = UserChild(self.bob, bob)
        gate.wait_ready(child=child)
        # Bob's cancel and feedback probes changed nothing.
        now1, now2 = self.c.call("request.get", {"id": a1}), self.c.call("request.get", {"id": a2})
        self.assertEqual(now1["state"], "pending")
        self.assertFalse(now1["cancel_requested"])
        self.assertIsNone(now2["feedback_state"])
        # Alice's request changes while Bob watches everything he may see.
        got = as_user(self.alice, lambda: call(sock, "request.cancel", {"id": a1}))
        self.assertIn("result", got, got)
        self.wait_state(a1, "cancelled")
        gate.go()
        out = child.result()

        for (mine, other), i in zip(probes, range(0, len(flat), 2)):
            with self.subTest(probe=mine):
                self.assertIn("error", out["probes"][i], out["probes"][i])
                self.assertEqual(out["probes"][i], out["probes"][i + 1])
        for i in range(0, len(flat) - 2, 2):
            self.assertEqual(out["probes"][i]["error"]["code"], -32001)
        self.assertEqual(out["probes"][-2]["error"]["code"], -32002)

        hello, status, *lists, own_list = [v["result"] for v in out["views"]]
        self.assertEqual(out["cursor"]["error"]["code"], -32602, out["cursor"])
        self.assertEqual(out["cursor"]["error"]["data"]["field"], "cursor")
        self.assertEqual((hello["uid"], hello["admin"]), (self.bob.pw_uid, False))
        self.assertEqual(queue_total(status), 0)
        self.assertIsNone(status["queue"]["oldest_queued_at"])
        for listed in lists + [own_list]:
            self.assertEqual(listed["requests"], [])
        self.assertEqual(out["watch_all"], {"watching": 0})
        self.assertEqual(out["watch_ids"], {"watching": 0})
        self.assertFalse(out["own"]["duplicate"])
        self.assertNotIn(out["own"]["id"], (a1, a2))
        own_events = [e["params"]["request"]["id"] for e in out["events_all"] if e.get("method") == "request.changed"]
        self.assertIn(out["own"]["id"], own_events, out["events_all"])
        self.assertEqual(set(own_events), {out["own"]["id"]})
        self.assertEqual(out["events_ids"], [])

        everything_bob_saw = json.dumps(out)
        for s in secrets_of_alice:
            if s == "shared-ref":
                continue  # Bob typed it himself
            self.assertNotIn(s, everything_bob_saw)
        # Alice's requests are as Alice left them, and she still sees them.
        self.assertEqual(self.c.call("request.get", {"id": a2})["feedback_state"], None)
        mine = as_user(self.alice, lambda: call(sock, "request.list", {}))
        self.assertEqual(sorted(r["id"] for r in mine["result"]["requests"]), sorted([a1, a2]))

    def test_admin_methods_and_loop_writes_refuse_a_non_admin(self):
        loop = self.loop_id
        refused = [("queue.pause", {}), ("queue.resume", {}), ("daemon.reload", {}), ("key.test", {}),
                   ("loop.create", {"name": "Mine", "icon": "rocket"}),
                   ("loop.update", {"id": loop, "name": "Renamed"}),
                   ("loop.delete", {"id": loop}),
                   ("loop.remove_member", {"id": loop, "user_id": "0" * 24})]
        got = as_user(self.bob, lambda: calls(self.sock, [("hello", {})] + refused + [("status", {})]))
        self.assertFalse(got[0]["result"]["admin"])
        for (method, _), reply in zip(refused, got[1:-1]):
            with self.subTest(method):
                self.assertEqual(reply.get("error", {}).get("code"), -32002, reply)
        self.assertFalse(got[-1]["result"]["paused"])
        self.assertEqual(self.emu.stats()["calls_total"], 0, "a refused method reached HITL.sh")

    def test_a_member_of_admin_group_is_admin_and_sees_everyone(self):
        a1 = self.submit_as(self.alice, single_select_request(self.loop_id))
        got = as_user(self.ada, lambda: calls(self.sock, [
            ("hello", {}), ("queue.pause", {}), ("request.get", {"id": a1}),
            ("request.list", {"owner_uid": self.alice.pw_uid}), ("queue.resume", {}), ("daemon.reload", {})]))
        self.assertTrue(got[0]["result"]["admin"], got[0])
        self.assertEqual(got[1]["result"], {"paused": True})
        self.assertEqual(got[2]["result"]["owner_uid"], self.alice.pw_uid)
        self.assertEqual([r["id"] for r in got[3]["result"]["requests"]], [a1])
        self.assertEqual(got[4]["result"], {"paused": False})
        self.assertIn("result", got[5], got[5])

    def test_loop_writes_are_open_to_all_only_when_configured(self):
        d = self.new_daemon({"socket": {"loop_writes": "all"}}, name="hitld-open").start()
        got = as_user(self.bob, lambda: call(d.socket, "loop.create", {"name": "Bob's loop", "icon": "rocket"}))
        self.assertIn("result", got, got)
        self.assertRegex(got["result"]["loop"]["id"], "^[0-9a-f]{24}$")
        got = as_user(self.bob, lambda: call(d.socket, "queue.pause", {}))
        self.assertEqual(got["error"]["code"], -32002)

    def test_connection_cap_is_per_uid(self):
        sock = self.sock
        gate = Gate()
        self.addCleanup(gate.close)

        def bob():
            held = [Client(sock) for _ in range(3)]
            for c in held:
                c.call("hello")
            extra = Client(sock)
            out = {"refusal": extra.read_message()}
            try:
                out["after"] = extra.read_message()
            except (ConnectionError, OSError) as e:
                out["after"] = "closed: %r" % e
            gate.ready()               # the parent connects as root meanwhile
            held.pop().close()
            deadline = time.monotonic() + 10 * SLOW
            while True:        # the daemon notices the close asynchronously
                again = Client(sock)
                again.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"hello"}\n')
                reply = again.read_message()     # a refusal comes first, with id null
                again.close()
                if "result" in reply or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            out["again"] = reply
            for c in held + [extra]:
                c.close()
            return out

        child = UserChild(self.bob, bob)
        gate.wait_ready(child=child)
        other = self.hitld.client()       # root has a cap of its own
        self.assertEqual(other.call("hello")["uid"], 0)
        other.close()
        alice = as_user(self.alice, lambda: call(sock, "hello"))
        self.assertEqual(alice["result"]["uid"], self.alice.pw_uid)
        gate.go()
        out = child.result()
        self.assertEqual(out["refusal"]["error"]["code"], -32003, out)
        self.assertEqual(out["refusal"]["error"]["data"], {"limit": 3})
        self.assertIsNone(out["refusal"]["id"])
        self.assertTrue(str(out["after"]).startswith("closed"), out)
        self.assertEqual(out["again"]["result"]["uid"], self.bob.pw_uid, out["again"])

    def test_live_request_quota_is_per_uid(self):
        self.c.call("queue.pause")
        req = single_select_request(self.loop_id)
        got = as_user(self.alice, lambda: calls(self.sock, [("request.submit", req)] * 4))
        ids = [g["result"]["id"] for g in got[:3]]
        self.assertEqual(got[3]["error"]["code"], -32003, got[3])
        self.assertEqual(got[3]["error"]["data"], {"limit": 3})
        # Bob's quota is his own.
        self.submit_as(self.bob, req)
        # A finished request no longer counts.
        got = as_user(self.alice, lambda: calls(self.sock, [("request.cancel", {"id": ids[0]}),
                                                            ("request.submit", req), ("request.submit", req)]))
        self.assertEqual(got[0]["result"]["state"], "cancelled")
        self.assertIn("result", got[1], got[1])
        self.assertEqual(got[2]["error"]["code"], -32003)
        self.assertEqual(self.emu.stats()["calls_total"], 0)


# --------------------------------------------------------------------------- the socket file

class SocketFile(AccountsTestCase):
    START_DAEMON = False

    @classmethod
    def make_accounts(cls):
        cls.sock_group = cls.accounts.group("s")
        cls.member = cls.accounts.user("m", groups=[cls.sock_group.gr_name])
        cls.outsider = NOBODY

    def test_socket_gets_the_configured_mode_and_group_and_outsiders_cannot_connect(self):
        d = self.new_daemon({"socket": {"group": self.sock_group.gr_name, "mode": "0660"}}).start()
        st = os.lstat(d.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, self.sock_group.gr_gid)
        self.assertEqual(st.st_uid, 0)
        self.assertEqual(as_user(self.outsider, lambda: connect_errno(d.socket)), errno.EACCES)
        got = as_user(self.member, lambda: call(d.socket, "hello"))
        self.assertEqual(got["result"]["uid"], self.member.pw_uid)

    def test_a_world_accessible_socket_still_gives_an_outsider_nothing(self):
        """ssh-agent's regression test, here: if the socket is made
        world-accessible (a wrong chmod, a wrong SocketMode=), the peer
        credentials still decide and the outsider gets nothing."""
        d = self.new_daemon({"socket": {"group": self.sock_group.gr_name, "mode": "0660"}}).start()
        rid = as_user(self.member, lambda: call(d.socket, "request.submit",
                                                single_select_request(self.loop_id)))["result"]["id"]
        os.chmod(d.socket, 0o666)
        got = as_user(self.outsider, lambda: calls(d.socket, [
            ("hello", {}), ("request.get", {"id": rid}), ("request.cancel", {"id": rid}), ("request.list", {}),
            ("status", {}), ("watch", {}), ("queue.pause", {}), ("daemon.reload", {}), ("key.test", {})]))
        self.assertEqual((got[0]["result"]["uid"], got[0]["result"]["admin"]), (self.outsider.pw_uid, False))
        self.assertEqual(got[1]["error"]["code"], -32001)
        self.assertEqual(got[2]["error"]["code"], -32001)
        self.assertEqual(got[3]["result"]["requests"], [])
        self.assertEqual(queue_total(got[4]["result"]), 0)
        self.assertEqual(got[5]["result"], {"watching": 0})
        for reply in got[6:]:
            self.assertEqual(reply["error"]["code"], -32002)
        self.assertNotIn(rid, json.dumps(got))
        self.assertFalse(self.hitld_status(d)["paused"])
        self.assertFalse(self.hitld_get(d, rid)["cancel_requested"])

    def hitld_status(self, d):
        c = d.client()
        try:
            return c.call("status")
        finally:
            c.close()

    def hitld_get(self, d, rid):
        c = d.client()
        try:
            return c.call("request.get", {"id": rid})
        finally:
            c.close()

    def test_refuses_a_socket_directory_anyone_may_write_without_the_sticky_bit(self):
        sockdir = os.path.join(self.tmp, "open")
        os.mkdir(sockdir)
        os.chmod(sockdir, 0o777)
        d = self.new_daemon()
        d.socket = os.path.join(sockdir, "hitld.sock")
        rc, log = start_expecting_failure(d)
        self.assertNotEqual(rc, 0)
        self.assertIn("writable by everyone", log)
        self.assertIn(sockdir, log)
        self.assertFalse(os.path.lexists(d.socket))
        # /tmp-like (sticky): nobody can replace another's file there.
        os.chmod(sockdir, 0o1777)
        d.start()
        self.assertTrue(stat.S_ISSOCK(os.lstat(d.socket).st_mode))

    def test_never_replaces_a_file_or_a_symlink_at_the_socket_path(self):
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        for kind in ("file", "symlink", "dangling symlink"):
            with self.subTest(kind):
                path = os.path.join(self.tmp, "sock-" + kind.replace(" ", "-"))
                target = os.path.join(self.tmp, "nowhere-" + kind.replace(" ", "-"))
                if kind == "file":
                    with open(path, "w") as f:
                        f.write("precious\n")
                elif kind == "symlink":
                    os.symlink(victim, path)
                else:
                    os.symlink(target, path)
                d = self.new_daemon(name="hitld-" + kind.replace(" ", "-"))
                d.socket = path
                rc, log = start_expecting_failure(d)
                self.assertNotEqual(rc, 0)
                self.assertIn("is not a socket", log)
                with open(victim) as f:
                    self.assertEqual(f.read(), "precious\n")
                self.assertFalse(os.path.lexists(target))
                self.assertFalse(stat.S_ISSOCK(os.lstat(path).st_mode))

    def test_a_second_daemon_does_not_take_over_a_live_socket(self):
        first = self.new_daemon().start()
        second = self.new_daemon(name="hitld-second")
        second.socket = first.socket
        rc, log = start_expecting_failure(second)
        self.assertNotEqual(rc, 0)
        self.assertIn("in use", log)
        self.assertEqual(self.hitld_status(first)["queue"]["queued"], 0)

    def test_the_state_directory_is_private_to_the_daemon(self):
        d = self.new_daemon().start()
        c = d.client()
        self.addCleanup(c.close)
        rid = c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "pending", client=c)
        seen = 0
        for dirpath, dirnames, filenames in os.walk(d.state_dir):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
                mode = stat.S_IMODE(os.lstat(name).st_mode)
                self.assertEqual(mode & 0o077, 0, "%s has mode %04o" % (name, mode))
                seen += 1
        self.assertGreater(seen, 2)


# --------------------------------------------------------------------------- the API key

class KeyLoading(AccountsTestCase):
    START_DAEMON = False

    def key_id_used(self, d):
        c = d.client()
        try:
            return c.call("key.test")["api_key_id"]
        finally:
            c.close()

    def test_credential_beats_key_file_beats_environment(self):
        k_cred, k_file, k_env = new_key(), new_key(), new_key()
        ids = {k: add_key_same_account(self.emu, KEY, k)["api_key_id"] for k in (k_cred, k_file, k_env)}
        creds = os.path.join(self.tmp, "creds")
        os.mkdir(creds, 0o700)
        cred_path = os.path.join(creds, "hitl-api-key")
        write_key_file(cred_path, k_cred)
        key_file = os.path.join(self.tmp, "api.key")
        write_key_file(key_file, k_file)
        d = self.new_daemon({"api": {"key_file": key_file}}, key=k_env,
                            env_extra={"CREDENTIALS_DIRECTORY": creds})

        for expected, source, remove in ((k_cred, "credential", cred_path), (k_file, "key file", key_file),
                                         (k_env, "environment", None)):
            with self.subTest(source):
                d.start()
                try:
                    self.assertEqual(self.key_id_used(d), ids[expected])
                    with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
                        environ = f.read()
                    for k in (k_cred, k_file, k_env):
                        self.assertNotIn(k.encode(), environ, "a key is still in /proc/pid/environ")
                finally:
                    d.stop()
                log = d.log_text()
                self.assertIn("API key loaded from the %s." % source, log)
                if remove:
                    os.unlink(remove)
        self.assertIn("api.key_file %s does not exist" % key_file, d.log_text())

    def refused(self, d, *expect):
        rc, log = start_expecting_failure(d)
        self.assertNotEqual(rc, 0)
        for e in expect:
            self.assertIn(e, log)
        return log

    def test_a_key_file_others_may_read_is_refused_and_says_why(self):
        key = new_key()
        key_file = os.path.join(self.tmp, "api.key")
        for mode in (0o640, 0o604, 0o660):
            with self.subTest(mode=oct(mode)):
                write_key_file(key_file, key, mode)
                # An environment key is there too: a refused file is an error
                # to fix, not a reason to quietly use something else.
                d = self.new_daemon({"api": {"key_file": key_file}}, name="hitld-%o" % mode)
                log = self.refused(d, key_file, "accessible by group or others", "chmod 0600")
                for n in secret_needles(key):
                    self.assertNotIn(n, log)

    def test_a_key_file_owned_by_another_user_is_refused(self):
        key = new_key()
        key_file = os.path.join(self.tmp, "api.key")
        write_key_file(key_file, key, 0o600)
        os.chown(key_file, NOBODY.pw_uid, NOBODY.pw_gid)
        d = self.new_daemon({"api": {"key_file": key_file}})
        log = self.refused(d, key_file, "owned by uid %d" % NOBODY.pw_uid)
        self.assertNotIn(key, log)

    def test_a_key_file_that_is_a_symlink_or_not_a_file_is_refused(self):
        real = os.path.join(self.tmp, "real.key")
        write_key_file(real, new_key(), 0o600)
        link = os.path.join(self.tmp, "link.key")
        os.symlink(real, link)
        d = self.new_daemon({"api": {"key_file": link}})
        self.refused(d, link, "symbolic link")
        d = self.new_daemon({"api": {"key_file": self.tmp}}, name="hitld-dir")
        self.refused(d, self.tmp, "not a regular file")

    def test_a_malformed_key_is_refused_naming_its_source(self):
        creds = os.path.join(self.tmp, "creds")
        os.mkdir(creds, 0o700)
        with open(os.path.join(creds, "hitl-api-key"), "w") as f:
            f.write("two words\n")
        d = self.new_daemon(env_extra={"CREDENTIALS_DIRECTORY": creds})
        self.refused(d, "credential", os.path.join(creds, "hitl-api-key"), "does not hold a key")
        d = self.new_daemon(key="has space", name="hitld-env")
        self.refused(d, "HITL_API_KEY does not hold a key")


class KeyHygiene(AccountsTestCase):
    START_DAEMON = False

    @classmethod
    def make_accounts(cls):
        cls.daemon_user = cls.accounts.user("d")

    def test_the_key_is_found_nowhere_in_logs_state_environment_or_replies(self):
        key = new_key()
        add_key_same_account(self.emu, KEY, key)
        d = self.new_daemon(key=key).start()   # HITL_API_KEY: the source that lives in environ
        c = d.client()
        self.addCleanup(c.close)
        replies = []

        def rpc(method, params=None):
            reply = c.call(method, params, raw=True)
            replies.append(reply)
            return reply

        a = rpc("request.submit", single_select_request(self.loop_id))["result"]["id"]
        b = rpc("request.submit", single_select_request(self.loop_id, text="second"))["result"]["id"]
        ra = self.wait_state(a, "pending", client=c)
        self.wait_state(b, "pending", client=c)
        self.emu.respond(ra["remote_id"], "approve")
        self.wait_state(a, "completed", client=c)
        rpc("request.feedback", {"id": a, "feedback": {"rating": 5, "comment": "fine"}})
        rpc("request.cancel", {"id": b})
        rpc("key.test")
        rpc("loop.list")
        rpc("request.submit", {"loop_id": self.loop_id})           # an error reply
        d.proc.send_signal(signal.SIGHUP)                            # reload: no key source left
        wait_for(lambda: "keeping the current one" in d.log_text(), 10, what="reload")
        rpc("daemon.reload")
        wait_for(lambda: c.call("request.get", {"id": b})["state"] == "cancelled", 30, what="cancel")
        # The key is revoked: the refusal is logged and reported, the key is not.
        self.emu.ctl("DELETE", "/_emu/keys/%s" % key)
        rpc("key.test")
        rpc("loop.get", {"id": self.loop_id})
        rpc("status")
        rpc("request.list", {})
        self.assertEqual(replies[-4]["error"]["code"], -32010)
        self.assertFalse(replies[-2]["result"]["key"]["valid"])

        pid = d.proc.pid
        with open("/proc/%d/environ" % pid, "rb") as f:
            environ = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        d.stop()
        needles = secret_needles(key)
        for n in needles:
            self.assertNotIn(n.encode(), environ, "/proc/pid/environ holds the key")
            self.assertNotIn(n.encode(), cmdline)
            self.assertNotIn(n, json.dumps(replies), "a reply holds the key")
        log = d.log_text()
        self.assertIn("HITL.sh refused the API key", log)   # the debug log really covered the failure paths
        for n in needles:
            self.assertNotIn(n, log, "the log holds the key")
        # Nothing from curl's verbose mode, no header echoed.
        self.assertNotIn("Authorization", log)
        self.assertNotIn("Bearer", log)
        self.assertEqual(find_secret_in_tree(d.state_dir, needles), [])
        # The search covered real state: the outbox log with the requests, and the ledger.
        files = [os.path.join(p, f) for p, _, fs in os.walk(d.state_dir) for f in fs]
        self.assertTrue(any(f.endswith(".log") and os.path.getsize(f) > 0 for f in files), files)
        self.assertTrue(any(os.path.basename(f) == "budget.json" for f in files), files)

    def test_the_process_is_not_dumpable_and_may_not_write_core_files(self):
        """There is no Dumpable line in /proc/<pid>/status; the robust signs
        are the kernel's: a non-dumpable process's /proc/<pid>/* files belong
        to root, and another process of the SAME uid may not read its
        environ or memory (ptrace access mode), while it may read a
        dumpable sibling's. So the daemon runs as an ordinary user here."""
        home = os.path.join(self.tmp, "home")
        os.mkdir(home, 0o755)
        os.chown(home, self.daemon_user.pw_uid, self.daemon_user.pw_gid)
        d = UserDaemon(home, self.emu, self.daemon_user)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.start()
        pid = d.proc.pid
        with open("/proc/%d/status" % pid) as f:
            uids = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        self.assertEqual(int(uids), self.daemon_user.pw_uid)
        with open("/proc/%d/limits" % pid) as f:
            core = [l for l in f if l.startswith("Max core file size")][0].split()
        self.assertEqual(core[4:6], ["0", "0"], core)
        self.assertEqual(os.stat("/proc/%d/environ" % pid).st_uid, 0, "non-dumpable /proc files belong to root")

        sibling = subprocess.Popen(["setpriv", "--reuid", str(self.daemon_user.pw_uid), "--regid",
                                    str(self.daemon_user.pw_gid), "--clear-groups", "sleep", "60"])
        self.addCleanup(lambda: (sibling.kill(), sibling.wait()))
        # Between setpriv's setuid and its exec of sleep the sibling is not
        # dumpable either (the kernel clears the flag on a uid change): wait
        # for the exec, after which its /proc files are its own uid's.
        wait_for(lambda: os.stat("/proc/%d/environ" % sibling.pid).st_uid == self.daemon_user.pw_uid, 5,
                 what="sibling exec")

        def probe():
            out = {}
            for name, p in (("daemon", pid), ("sibling", sibling.pid)):
                for f in ("environ", "mem"):
                    try:
                        with open("/proc/%d/%s" % (p, f), "rb"):
                            out["%s/%s" % (name, f)] = "readable"
                    except PermissionError:
                        out["%s/%s" % (name, f)] = "denied"
            out["hello"] = call(d.socket, "hello")["result"]
            return out

        got = as_user(self.daemon_user, probe)
        self.assertEqual(got["sibling/environ"], "readable", "control: a dumpable same-uid process is readable")
        self.assertEqual(got["daemon/environ"], "denied")
        self.assertEqual(got["daemon/mem"], "denied")
        # The daemon's own uid is an administrator (PROTOCOL.md §2).
        self.assertTrue(got["hello"]["admin"])
        self.assertFalse(as_user(NOBODY, lambda: call(d.socket, "hello"))["result"]["admin"])


if __name__ == "__main__":
    main()
