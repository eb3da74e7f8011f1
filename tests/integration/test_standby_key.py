#!/usr/bin/env python3
# run-suite: about 30 s
"""The key's lifecycle and the standby key (hitld(8) "Key rotation", issue 16
item 5): status shows the key's id (never the key) and when it was first
used; a key older than api.rotate_after_days is noticed in the journal once;
a standby key (credential hitl-api-key.next or api.next_key_file) takes over
when HITL.sh refuses the current one, or on `hitlctl key rotate`, without
losing or repeating a request; a standby that HITL.sh refuses leaves hitld on
the current key, and the journal says so.

The daemons log to a private systemd-journald (test_systemd.JournalTestCase),
so the tests check the MESSAGE_IDs and fields, not only the words.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_keymem  # noqa: E402  (memory_hits; its tests are not collected here)
import test_systemd  # noqa: E402  (its JournalTestCase; its tests are not collected here)
from harness import BUILD, KEY, SLOW, HitldTestCase, as_uid, main, single_select_request, wait_for  # noqa: E402
from sec_util import add_key_same_account, new_key, secret_needles, write_key_file  # noqa: E402
from systemd_support import message_ids  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "python"))
import hitld  # noqa: E402
from hitld import errors as hitld_errors  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
TERMINAL = ("completed", "timeout", "cancelled", "failed")
NOBODY = 65534


def mask(key):
    return "****" + key[-4:]


class StandbyBase(test_systemd.JournalTestCase):
    EMULATOR_ARGS = ("--auto-review", "2")

    def setUp(self):
        super().setUp()
        self.mids = message_ids()
        self.new = new_key()
        self.new_id = add_key_same_account(self.emu, KEY, self.new)["api_key_id"]
        self.old_id = self.key_id(KEY)

    def key_id(self, key):
        for name, info in self.emu.stats()["per_key"].items():
            if name.startswith(mask(key)):
                return info["api_key_id"]
        raise AssertionError("the emulator has no key %s" % mask(key))

    def start(self, standby=None, config=None, via="credential"):
        """hitld with KEY as the credential hitl-api-key and standby (if
        given) as the credential hitl-api-key.next, or as api.next_key_file."""
        creds = os.path.join(self.tmp, "credentials")
        os.makedirs(creds, mode=0o700, exist_ok=True)
        write_key_file(os.path.join(creds, "hitl-api-key"), KEY)
        config = dict(config or {})
        if standby is not None and via == "credential":
            write_key_file(os.path.join(creds, "hitl-api-key.next"), standby)
        elif standby is not None:
            path = os.path.join(self.tmp, "next.key")
            write_key_file(path, standby)
            config.setdefault("api", {})["next_key_file"] = path
        self.hitld = self.journal_daemon(key=None, config=config or None,
                                         env_extra={"CREDENTIALS_DIRECTORY": creds}).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        return self.hitld

    def journal_daemon(self, config=None, **kw):
        # JournalTestCase.journal_daemon with a configuration of our own.
        d = test_systemd.CommandDaemon(self.tmp, self.emu, config_extra=self.CONFIG if config is None else config,
                                       prefix=self.journal.in_namespace([]), extra_args=("--log-target=journal",),
                                       **kw)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        return d

    def entries(self, name, want=1, timeout=30):
        """hitld's journal entries with MESSAGE_ID name, once there are want of them."""
        mid = self.mids[name]
        es = self.entries_of(self.hitld.proc.pid, want=lambda es: len(self.by_mid(es, mid)) >= want, timeout=timeout)
        return self.by_mid(es, mid)

    def all_entries(self, name):
        return self.by_mid(self.journal.entries("_PID=%d" % self.hitld.proc.pid), self.mids[name])

    def wait_key_id(self, key_id):
        """hitld asks HITL.sh who its key is once it has worked and nothing
        else needs the call."""
        wait_for(lambda: self.c.call("status")["key"]["api_key_id"] == key_id, 30, what="the key's id in status")

    def submit(self, n, text="standby"):
        return [self.c.call("request.submit", single_select_request(self.loop_id, text="%s %d" % (text, i)))["id"]
                for i in range(n)]

    def wait_all(self, ids, timeout=120):
        last = {}

        def done():
            last["s"] = {i: self.c.call("request.get", {"id": i})["state"] for i in ids}
            return all(s in TERMINAL for s in last["s"].values())
        try:
            wait_for(done, timeout, interval=0.25, what="all requests final")
        except AssertionError:
            raise AssertionError("stuck: %s" % {i: s for i, s in last["s"].items() if s not in TERMINAL})
        return [self.c.call("request.get", {"id": i}) for i in ids]

    def created_once(self, ids):
        """{hitld id: api_key_id it was created with}; fails unless every id
        was created exactly once and the emulator saw no duplicate."""
        by = {}
        for r in self.emu.requests():
            by.setdefault(r["hitld_id"], []).append(r)
        for rid in ids:
            self.assertEqual(len(by.get(rid, [])), 1, "request %s created %d times" % (rid, len(by.get(rid, []))))
        stats = self.emu.stats()
        self.assertEqual(stats["duplicates"]["count"], 0, stats["duplicates"])
        return {rid: by[rid][0]["api_key_id"] for rid in ids}

    def hitlctl(self, *args, uid=None):
        cmd = [HITLCTL, "--socket", self.hitld.socket] + list(args)
        if uid is None:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW, stdin=subprocess.DEVNULL)

        # A copy another uid can run: the build tree may sit in a directory it cannot enter.
        copy = os.path.join(self.tmp, "hitlctl")
        if not os.path.exists(copy):
            shutil.copy2(HITLCTL, copy)
            os.chmod(copy, 0o755)
        cmd[0] = copy

        def run():
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW, stdin=subprocess.DEVNULL)
            return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
        got = as_uid(uid, run)
        self.assertNotIn("exception", got)
        return subprocess.CompletedProcess(cmd, got["rc"], got["out"], got["err"])

    def assert_no_key_in_journal(self):
        text = "\n".join(json.dumps(e) for e in self.journal.entries("_PID=%d" % self.hitld.proc.pid))
        for k in (KEY, self.new):
            for needle in secret_needles(k):
                self.assertNotIn(needle, text)


class StandbyTakesOver(StandbyBase):
    def deactivated_mid_backlog(self, status, via):
        self.start(standby=self.new, via=via)
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["standby"]["state"]), ("primary", "untested"))
        self.wait_all(self.submit(1, "first"))
        self.wait_key_id(self.old_id)
        n = 24
        ids = self.submit(n)     # every one acknowledged: durable in the outbox
        wait_for(lambda: self.emu.stats()["creates"] >= 6, 60, what="the backlog to start draining")
        deactivated = time.time()
        self.emu.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "inactive", "inactive_status": status})

        records = self.wait_all(ids)
        self.assertEqual({r["state"] for r in records}, {"completed"},
                         [(r["id"], r["state"], r["error"]) for r in records if r["state"] != "completed"])
        created_with = self.created_once(ids)
        self.assertEqual(self.emu.stats()["creates"], n + 1)
        self.assertIn(self.old_id, created_with.values(), "the key went before the backlog started")
        self.assertIn(self.new_id, created_with.values(), "the standby key created nothing")

        # The journal says when and why: the key that had worked is refused,
        # then the switch, with both key ids (never a key).
        lost = self.entries("MID_KEY_LOST")
        self.assertEqual(len(lost), 1, lost)
        self.assertEqual(lost[0]["HITL_HTTP_STATUS"], str(status))
        self.assertEqual(lost[0]["HITL_API_KEY_ID"], self.old_id)
        sw = self.entries("MID_KEY_SWITCHED")
        self.assertEqual(len(sw), 1, sw)
        self.assertEqual((sw[0]["HITL_API_KEY_ID"], sw[0]["HITL_OLD_API_KEY_ID"]), (self.new_id, self.old_id))
        self.assertIn("refused the current key", sw[0]["HITL_REASON"])
        self.assertIn("inactive", sw[0]["HITL_REASON"])
        self.assertGreaterEqual(int(sw[0]["__REALTIME_TIMESTAMP"]) / 1e6, deactivated - 1)

        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["api_key_id"], st["valid"], st["standby"]), ("standby", self.new_id, True, None))
        self.assertIn("inactive", st["switch_reason"])
        self.assertIsNotNone(st["first_used_at"])
        # The two keys' windows are not mixed up into "someone else uses the key".
        self.assertFalse(self.c.call("status")["api"]["foreign"]["alarm"])
        self.assertEqual(self.all_entries("MID_FOREIGN_USE"), [])
        self.assert_no_key_in_journal()

    def test_key_deactivated_as_401_mid_backlog_the_credential_standby_takes_over(self):
        self.deactivated_mid_backlog(401, "credential")

    def test_key_deactivated_as_403_mid_backlog_the_next_key_file_takes_over(self):
        self.deactivated_mid_backlog(403, "file")


class KeyRotate(StandbyBase):
    def test_key_rotate_switches_on_purpose_admin_only_and_survives_a_restart(self):
        self.start(standby=self.new)
        first = self.submit(2, "before")
        self.wait_all(first)
        self.wait_key_id(self.old_id)
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["api_key_id"]), ("primary", self.old_id))

        # Not for a non-admin: refused, nothing tested, nothing switched.
        calls = len(self.emu.stats()["calls"])
        p = self.hitlctl("key", "rotate", uid=NOBODY)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("administrators only", p.stderr)
        self.assertEqual(len(self.emu.stats()["calls"]), calls)
        self.assertEqual(self.c.call("status")["key"]["active"], "primary")

        p = self.hitlctl("key", "rotate")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("switched to the standby key: id %s" % self.new_id, p.stdout)
        sw = self.entries("MID_KEY_SWITCHED")
        self.assertEqual((sw[0]["HITL_API_KEY_ID"], sw[0]["HITL_OLD_API_KEY_ID"]), (self.new_id, self.old_id))
        self.assertIn("key.rotate", sw[0]["HITL_REASON"])
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["api_key_id"], st["standby"]), ("standby", self.new_id, None))
        p = self.hitlctl("status")
        self.assertIn("the standby key since a switch", p.stdout)
        # A second rotate has no standby left.
        p = self.hitlctl("key", "rotate")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("No standby key", p.stderr)

        after = self.submit(2, "after")
        self.wait_all(after)
        self.assertEqual(set(self.created_once(after).values()), {self.new_id})

        # A restart finds the old key in hitl-api-key still: hitld switched
        # away from it, so the standby takes over again before any create.
        self.hitld.stop()
        self.start(standby=self.new)
        again = self.submit(1, "restarted")
        self.wait_all(again)
        self.assertEqual(set(self.created_once(again).values()), {self.new_id})
        self.assertIn("retired", self.entries("MID_KEY_SWITCHED")[0]["HITL_REASON"])
        self.assert_no_key_in_journal()

    def test_a_refused_standby_leaves_hitld_on_the_old_key_and_says_so(self):
        bad = new_key()          # HITL.sh knows no such key: GET /test says 401
        self.start(standby=bad)
        p = self.hitlctl("key", "rotate")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("refused the standby key", p.stderr)
        refused = self.entries("MID_KEY_STANDBY_REFUSED")
        # The same through the Python client: invalid_state, nothing switched.
        with hitld.Client(self.hitld.socket) as py:
            with self.assertRaises(hitld_errors.InvalidState) as e:
                py.key_rotate()
        self.assertEqual(e.exception.data["standby"], "refused")
        self.assertEqual(refused[0]["HITL_HTTP_STATUS"], "401")
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["standby"]["state"]), ("primary", "refused"))
        self.assertIn("401", st["standby"]["error"])
        ids = self.submit(2)
        self.wait_all(ids)
        self.assertEqual(set(self.created_once(ids).values()), {self.old_id})
        self.wait_key_id(self.old_id)
        self.assertEqual(self.all_entries("MID_KEY_SWITCHED"), [])

        # Then the old key is deactivated: refused, said once; requests wait
        # in the queue (none fails), and hitld does not switch to the bad key.
        self.emu.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "inactive"})
        waiting = self.submit(3, "waiting")
        lost = self.entries("MID_KEY_LOST")
        self.assertEqual(lost[0]["HITL_API_KEY_ID"], self.old_id)
        wait_for(lambda: self.c.call("status")["key"]["valid"] is False, 30, what="the key refused")
        self.assertEqual({self.c.call("request.get", {"id": i})["state"] for i in waiting}, {"queued"})
        self.assertEqual(self.all_entries("MID_KEY_SWITCHED"), [])
        self.assertEqual(len(self.all_entries("MID_KEY_LOST")), 1)
        self.assertEqual(self.c.call("status")["key"]["active"], "primary")
        self.assert_no_key_in_journal()

    def standby_tests(self):
        """GET /v1/test calls the emulator saw with the standby key."""
        return [c for c in self.emu.stats()["calls"]
                if c.get("key") == mask(self.new) and c.get("path", "").split("?")[0] == "/v1/test"]

    def test_key_rotate_tests_a_refused_standby_again(self):
        # The standby is refused (inactive at HITL.sh's side) when tested...
        self.emu.ctl("POST", "/_emu/keys/%s" % self.new, {"status": "inactive"})
        self.start(standby=self.new)
        p = self.hitlctl("key", "rotate")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("refused the standby key", p.stderr)
        self.entries("MID_KEY_STANDBY_REFUSED")
        self.assertEqual(self.c.call("status")["key"]["standby"]["state"], "refused")
        self.assertEqual(len(self.standby_tests()), 1)

        # ...then the administrator fixes it there and rotates, without a
        # reload: key.rotate tests it again (one GET /v1/test), not the
        # stale refusal, and switches.
        self.emu.ctl("POST", "/_emu/keys/%s" % self.new, {"status": "active"})
        r = self.c.call("key.rotate")
        self.assertTrue(r["switched"], r)
        self.assertEqual(len(self.standby_tests()), 2)
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["api_key_id"], st["standby"]), ("standby", self.new_id, None))
        ids = self.submit(1, "fixed")
        self.wait_all(ids)
        self.assertEqual(set(self.created_once(ids).values()), {self.new_id})
        # hitld does not test a refused standby on its own: only the one
        # refusal and the administrator's rotate (hitld(8)).
        self.assertEqual(len(self.standby_tests()), 2)


class StandbyKeyMemory(HitldTestCase):
    """After a switch to the standby no copy of the old key is left in the
    live daemon's memory (as test_keymem checks for a reload)."""
    START_DAEMON = False

    def test_no_copy_of_the_old_key_survives_a_switch(self):
        new = new_key()
        add_key_same_account(self.emu, KEY, new)
        key_file, next_file = os.path.join(self.tmp, "api.key"), os.path.join(self.tmp, "api.key.next")
        write_key_file(key_file, KEY)
        write_key_file(next_file, new)
        d = self.new_daemon({"api": {"key_file": key_file, "next_key_file": next_file}}, key=None).start()
        c = d.client()
        self.addCleanup(c.close)
        for _ in range(2):
            c.call("key.test")
        rid = c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, ("pending", "completed"), client=c)
        self.assertTrue(c.call("key.rotate")["switched"])
        for _ in range(2):
            c.call("key.test")
        got = test_keymem.memory_hits(d.proc.pid, ["Bearer " + KEY, KEY, new])
        self.assertGreater(got[new], 0, "control: the search finds the current key")
        self.assertEqual({n: k for n, k in got.items() if n != new and k}, {},
                         "copies of the old key in the daemon's memory")


class StandbyKeyFileTrust(HitldTestCase):
    """api.next_key_file gets the checks api.key_file gets: a file others may
    read is refused (and said), hitld runs on with its key and no standby."""
    START_DAEMON = False

    def test_a_standby_key_file_readable_by_others_is_refused(self):
        next_file = os.path.join(self.tmp, "api.key.next")
        write_key_file(next_file, new_key(), mode=0o644)
        d = self.new_daemon({"api": {"next_key_file": next_file}}).start()
        c = d.client()
        self.addCleanup(c.close)
        st = c.call("status")["key"]
        self.assertEqual((st["loaded"], st["standby"]), (True, None))
        self.assertIn("accessible by group or others", d.log_text())
        self.assertIn("standby API key", d.log_text())
        with self.assertRaises(Exception) as e:
            c.call("key.rotate")
        self.assertIn("No standby key", str(e.exception.args))
        # Fixed and reloaded: the standby is there, untested.
        os.chmod(next_file, 0o600)
        c.call("daemon.reload")
        st = c.call("status")["key"]
        self.assertEqual((st["standby"]["state"], st["standby"]["source"]), ("untested", "key_file"))


class KeyAge(StandbyBase):
    def test_an_old_key_is_noticed_once_and_status_shows_its_id_and_first_use(self):
        # hitld first used this key 100 days ago (by its id, as kept in the
        # state directory).
        state = os.path.join(self.tmp, "hitld-state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        first = int((time.time() - 100 * 86400) * 1e6)
        with open(os.path.join(state, "keys.json"), "w") as f:
            json.dump({"version": 1, "keys": [{"api_key_id": self.old_id, "first_used_us": first,
                                               "retired_us": 0}]}, f)
        self.start(config={"api": {"rotate_after_days": 90}})
        st = self.c.call("status")["key"]
        self.assertIsNone(st["api_key_id"])   # not asked yet: no call without work
        ids = self.submit(3)
        self.wait_all(ids)
        self.wait_key_id(self.old_id)
        st = self.c.call("status")["key"]
        self.assertEqual((st["api_key_id"], st["age_days"], st["rotate_after_days"]), (self.old_id, 100, 90))
        self.assertTrue(st["first_used_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(first / 1e6))))
        old = self.entries("MID_KEY_OLD")
        self.assertEqual((old[0]["HITL_API_KEY_ID"], old[0]["HITL_KEY_AGE_DAYS"]), (self.old_id, "100"))
        # Once per start (and day), not per call.
        self.wait_all(self.submit(2, "more"))
        self.assertEqual(len(self.all_entries("MID_KEY_OLD")), 1)
        # GET /test went once for the key's id, not before every create.
        tests = [c for c in self.emu.stats()["calls"] if c["path"].endswith("/v1/test")]
        self.assertEqual(len(tests), 1, tests)
        with open(os.path.join(state, "keys.json")) as f:
            self.assertNotIn(KEY, f.read())

    def test_a_new_key_is_recorded_at_its_first_use_and_not_noticed(self):
        self.start()
        before = time.time()
        self.wait_all(self.submit(1))
        self.wait_key_id(self.old_id)
        st = self.c.call("status")["key"]
        self.assertEqual((st["api_key_id"], st["age_days"], st["rotate_after_days"]), (self.old_id, 0, 90))
        with open(os.path.join(self.tmp, "hitld-state", "keys.json")) as f:
            kept = json.load(f)["keys"]
        self.assertEqual([k["api_key_id"] for k in kept], [self.old_id])
        self.assertGreaterEqual(kept[0]["first_used_us"] / 1e6, before - 5)
        self.assertEqual(self.all_entries("MID_KEY_OLD"), [])


if __name__ == "__main__":
    main()
