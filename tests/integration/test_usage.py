#!/usr/bin/env python3
"""The usage history and foreign use of the key (issue 16).

- `usage` (and `hitlctl usage --since 1h --by kind --json`) matches the
  emulator's call log call for call, also across a kill -9 of hitld while a
  call is in flight (the call counts as "no reply": the server saw it).
- A user sees only their own share; an admin sees everyone's.
- A second client spending calls with the same key: hitld reports exactly
  that many foreign calls in status, in usage (uid "foreign") and in the
  journal (MID_FOREIGN_USE), and its own spend stays within what the server
  allows (the emulator never answers hitld 429).
"""
import json
import os
import re
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, KEY, HitldTestCase, RpcError, as_uid, main, single_select_request,  # noqa: E402
                     wait_for)

ALICE = 40011
HEX24 = r"[0-9a-fA-F]{24}"


def kind_of(method, path):
    """The usage kind(s) an emulator call log entry is: a tuple, as one
    GET /requests/{id} may be a poll or a reconcile's candidate read."""
    p, _, q = path.partition("?")
    if re.fullmatch(r"/v1/api/loops/%s/requests" % HEX24, p):
        return ("create",) if method == "POST" else ("poll",)
    if p == "/v1/api/requests":
        return ("reconcile",) if "loop_id=" in q else ("poll",)
    if re.fullmatch(r"/v1/api/requests/%s/feedback" % HEX24, p):
        return ("feedback",)
    if re.fullmatch(r"/v1/api/requests/%s" % HEX24, p):
        return ("cancel",) if method == "DELETE" else ("poll", "reconcile")
    if p == "/v1/test":
        return ("probe", "interactive")
    if "/workflows/" in p:
        return ("trigger",)
    return ("interactive",)


def emulator_by_kind(calls, key_mask=None):
    """{kind tuple: count} of the emulator's API calls."""
    out = {}
    for c in calls:
        if key_mask is not None and c["key"] != key_mask:
            continue
        k = kind_of(c["method"], c["path"])
        out[k] = out.get(k, 0) + 1
    return out


class UsageMatchesEmulator(HitldTestCase):
    # The harness's 20 s windows of 100 calls: polls come every second, and
    # no window runs out.

    def settle(self):
        """The queue paused and no call in flight: both sides are final."""
        self.c.call("queue.pause")
        wait_for(lambda: self.c.call("usage", {"since": "1h"})["in_flight"] == 0, 30, what="no call in flight")

    def assert_matches(self, usage):
        calls = self.emu.stats()["calls"]
        emu = emulator_by_kind(calls)
        by = {r["kind"]: r["calls"] for r in usage["rows"]}
        # Every call hitld made is in the log, and no other.
        self.assertEqual(usage["total"]["calls"], len(calls), (usage, emu))
        # Kinds a log entry cannot tell apart (GET /requests/{id}: a poll or
        # a reconcile's read) are compared together, and each one within
        # what the log allows.
        components = [{"create"}, {"poll", "reconcile"}, {"cancel"}, {"feedback"}, {"probe", "interactive"},
                      {"trigger"}]
        for comp in components:
            n = sum(v for kinds, v in emu.items() if set(kinds) <= comp)
            self.assertEqual(sum(by.get(k, 0) for k in comp), n, "kinds %s: hitld %s, emulator %s" % (comp, by, emu))
            for k in comp:
                surely = emu.get((k,), 0)
                maybe = sum(v for kinds, v in emu.items() if k in kinds)
                self.assertTrue(surely <= by.get(k, 0) <= maybe, "kind %s: hitld %s, emulator %s" % (k, by, emu))
        self.assertFalse(set(by) - set().union(*components), by)

    def hitlctl_usage(self, *args):
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "usage"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode()

    def test_usage_matches_the_emulator_call_for_call_across_kill9(self):
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="Q%d?" % i))["id"]
               for i in range(4)]
        remotes = [self.wait_state(rid, "pending")["remote_id"] for rid in ids]
        for r in remotes[:2]:
            self.emu.respond(r, {"selected_value": "approve", "selected_label": "Approve"})
        for rid in ids[:2]:
            self.wait_state(rid, "completed")

        # A create the emulator has done but not yet answered when hitld dies
        # (hitld gives up after timeout_s = 5 anyway: no reply either way).
        self.emu.ctl("POST", "/_emu/faults", {"kind": "slow", "seconds": 30,
                                               "match": {"method": "POST", "path_prefix": "/v1/api/loops/"}})
        before = self.emu.stats()["creates"]
        self.c.call("request.submit", single_select_request(self.loop_id, text="In flight?"))
        wait_for(lambda: self.emu.stats()["creates"] > before, 30, what="the create at the emulator")
        self.c.close()
        self.hitld.kill9()

        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        rid = self.c.call("request.submit", single_select_request(self.loop_id, text="After?"))["id"]
        remote = self.wait_state(rid, "pending")["remote_id"]
        self.emu.respond(remote, {"selected_value": "approve", "selected_label": "Approve"})
        self.wait_state(rid, "completed")

        self.settle()
        out = self.hitlctl_usage("--since", "1h", "--by", "kind", "--json")
        usage = json.loads(out)
        self.assert_matches(usage)
        by = {r["kind"]: r for r in usage["rows"]}
        # The create in flight at the kill counts, as no reply.
        self.assertGreaterEqual(by["create"]["outcomes"]["no_reply"], 1, usage)
        self.assertEqual(by["create"]["calls"], self.emu.stats()["creates"])
        self.assertEqual(usage["total"]["decisions"], 3, usage)
        # and the same through the socket
        self.assertEqual(self.c.call("usage", {"since": "1h", "by": "kind"})["total"], usage["total"])

    def test_human_table_and_hour_chart(self):
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "pending")
        self.settle()
        table = self.hitlctl_usage("--since", "24h", "--by", "kind")
        self.assertRegex(table, r"(?m)^KIND\s+CALLS\b")
        self.assertRegex(table, r"(?m)^create\s+1\b")
        by_loop = self.hitlctl_usage("--by", "loop")
        self.assertRegex(by_loop, r"(?m)^%s\s+1\b" % self.loop_id)
        chart = self.hitlctl_usage("--since", "24h", "--by", "hour")
        self.assertIn("limit 100", chart)
        self.assertRegex(chart, r"#")

    def test_trigger_calls_are_attributed_to_their_workflow(self):
        # Two long ids alike in their first 12 characters after wf_, and a short one.
        long_a, long_b = "wf_customer_onboarding_step_1", "wf_customer_onboarding_step_2"
        for wf in ("wf_deploy_4812", long_a, long_b):
            self.emu.ctl("POST", "/_emu/workflows", {"key": KEY, "id": wf})
        for wf in ("wf_deploy_4812", "wf_deploy_4812", long_a, long_b):
            done = self.c.call("workflow.trigger", {"workflow_id": wf, "wait": True, "timeout_ms": 20000})
            self.assertEqual(done["request"]["state"], "completed", done)
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "pending")
        self.settle()

        def check(usage):
            flows = {r["workflow_id"]: r["calls"] for r in usage["rows"] if r.get("workflow_id")}
            self.assertEqual(flows.get("wf_deploy_4812"), 2, usage)
            longs = [w for w in flows if w.startswith("wf_customer_o")]
            self.assertEqual(len(longs), 2, usage)
            self.assertEqual([flows[w] for w in longs], [1, 1], usage)
            for r in usage["rows"]:
                if r.get("workflow_id"):
                    self.assertIsNone(r["loop_id"], r)
            loops = {r["loop_id"]: r["calls"] for r in usage["rows"] if r["loop_id"]}
            self.assertEqual(loops.get(self.loop_id), 1, usage)
            by_kind = {r["kind"]: r["calls"] for r in self.c.call("usage", {"since": "1h", "by": "kind"})["rows"]}
            self.assertEqual(sum(flows.values()), by_kind["trigger"])

        check(self.c.call("usage", {"since": "1h", "by": "loop"}))
        table = self.hitlctl_usage("--by", "loop")
        self.assertRegex(table, r"(?m)^workflow:wf_deploy_4812\s+2\b")
        self.assertRegex(table, r"(?m)^%s\s+1\b" % self.loop_id)

        # Written to the day files and read back.
        self.c.close()
        self.hitld.stop()
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)
        check(self.c.call("usage", {"since": "1h", "by": "loop"}))

    def test_bad_params_are_refused_naming_the_field(self):
        for params, field in (({"by": "nope"}, "by"), ({"since": "2y"}, "since"), ({"since": "40d"}, "since"),
                              ({"since": 0}, "since"), ({"sort": "x"}, "sort")):
            with self.subTest(params):
                with self.assertRaises(RpcError) as cm:
                    self.c.call("usage", params)
                self.assertEqual(cm.exception.code, -32602)
                self.assertEqual(cm.exception.data.get("field"), field, cm.exception.data)
        self.assertEqual(self.c.call("usage", {"since": 5400, "by": "hour"})["by"], "hour")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch uids")
    def test_a_user_sees_their_own_share_an_admin_everyones(self):
        sock = self.hitld.socket

        def alice():
            from harness import Client
            c = Client(sock)
            try:
                rid = c.call("request.submit", single_select_request(self.loop_id, text="Alice?"))["id"]
                return {"id": rid}
            finally:
                c.close()
        rid = as_uid(ALICE, alice)["id"]
        self.c.call("request.submit", single_select_request(self.loop_id, text="Root?"))
        self.wait_state(rid, "pending")
        wait_for(lambda: self.emu.stats()["creates"] >= 2, 30, what="both creates")
        self.settle()

        def alice_usage():
            from harness import Client
            c = Client(sock)
            try:
                return c.call("usage", {"since": "1h", "by": "uid"})
            finally:
                c.close()
        mine = as_uid(ALICE, alice_usage)
        self.assertEqual(mine["scope"], "own")
        self.assertEqual([r["uid"] for r in mine["rows"]], [str(ALICE)])
        self.assertEqual(mine["rows"][0]["calls"], 1)
        everyone = self.c.call("usage", {"since": "1h", "by": "uid"})
        self.assertEqual(everyone["scope"], "all")
        uids = {r["uid"] for r in everyone["rows"]}
        self.assertIn(str(ALICE), uids)
        self.assertIn("0", uids)


def spend_as_another_client(emu, n):
    """n real API calls with hitld's key from another program."""
    for _ in range(n):
        req = urllib.request.Request(emu.base + "/v1/test", headers={"Authorization": "Bearer " + KEY})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()


class ForeignScenario:
    WINDOW = 3600
    LIMIT = 40
    # hitld makes 2 creates, the other client 30 calls: hitld's next create
    # shows them, and then fewer than the poll reserve (10) are left.
    FOREIGN = 30

    def key_window(self):
        (k,) = self.emu.stats()["per_key"].values()
        return k

    def run_foreign_scenario(self, c):
        """hitld creates 2, another client spends FOREIGN, then hitld gets a
        backlog of 20: returns the emulator's window (reset epoch)."""
        for i in range(2):
            c.call("request.submit", single_select_request(self.loop_id, text="Own %d?" % i))
        wait_for(lambda: self.emu.stats()["creates"] >= 2, 30, what="own creates")
        reset = self.key_window()["window_reset_epoch"]
        spend_as_another_client(self.emu, self.FOREIGN)
        # Deferred: once hitld knows the window is spent, a request that must
        # be answered within 15 minutes would be refused at submit.
        for i in range(20):
            c.call("request.submit", single_select_request(self.loop_id, text="Backlog %d?" % i,
                                                           processing_type="deferred", timeout_seconds=86400))
        wait_for(lambda: c.call("status")["api"]["foreign"]["calls"] >= self.FOREIGN, 30, what="foreign calls seen")
        if self.key_window()["window_reset_epoch"] != reset:
            self.skipTest("the emulator's window ended mid-test")
        return reset


class ForeignUse(ForeignScenario, HitldTestCase):
    def test_foreign_calls_are_reported_exactly_and_hitld_stays_within_the_limit(self):
        self.run_foreign_scenario(self.c)
        st = self.c.call("status")["api"]["foreign"]
        self.assertEqual(st["calls"], self.FOREIGN, st)
        self.assertTrue(st["alarm"])

        # hitld knows what the server allows now: it stops creating (what
        # is left is the poll reserve) instead of running into the limit.
        self.assertLessEqual(self.c.call("status")["budget"]["remaining"], self.LIMIT - self.FOREIGN - 2)
        self.c.call("queue.pause")
        wait_for(lambda: self.c.call("usage", {"since": "1h"})["in_flight"] == 0, 30, what="no call in flight")
        k = self.key_window()
        self.assertLessEqual(k["used_in_window"], self.LIMIT)
        self.assertGreater(self.c.call("status")["queue"]["queued"], 0)
        self.assertEqual(self.emu.stats()["over_limit_attempts"], 0, "hitld ran into the limit")
        own = self.c.call("status")["api"]["foreign"]["own_calls"]
        self.assertEqual(own + self.FOREIGN, k["used_in_window"])
        self.assertEqual(self.c.call("status")["api"]["foreign"]["calls"], self.FOREIGN)

        u = self.c.call("usage", {"since": "1h", "by": "uid"})
        (foreign,) = [r for r in u["rows"] if r["uid"] == "foreign"]
        self.assertEqual(foreign["calls"], self.FOREIGN)
        k = self.c.call("usage", {"since": "1h", "by": "kind"})
        self.assertEqual({r["kind"]: r["calls"] for r in k["rows"]}.get("foreign"), self.FOREIGN)
        self.assertIn("%d calls in the window" % self.FOREIGN, self.hitld.log_text())
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "status"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode(), r"(?m)^Foreign:\s+%d calls this window" % self.FOREIGN)

    def test_a_single_unexplained_call_raises_no_alarm(self):
        self.c.call("request.submit", single_select_request(self.loop_id))
        wait_for(lambda: self.emu.stats()["creates"] >= 1, 30, what="a create")
        spend_as_another_client(self.emu, 1)
        self.c.call("request.submit", single_select_request(self.loop_id, text="Again?"))
        wait_for(lambda: self.c.call("status")["api"]["foreign"]["calls"] >= 1, 30, what="the foreign call seen")
        st = self.c.call("status")["api"]["foreign"]
        self.assertEqual(st["calls"], 1)
        self.assertFalse(st["alarm"])
        self.assertNotIn("Someone else uses this API key", self.hitld.log_text())


def journal_case():
    """ForeignUse in the journal, on test_systemd's private journald."""
    try:
        from test_systemd import JournalTestCase
        from systemd_support import message_ids
    except Exception as e:  # pragma: no cover
        return None, repr(e)
    return (JournalTestCase, message_ids), None


_jc, _why = journal_case()
if _jc:
    JournalTestCase, message_ids = _jc

    class ForeignUseInTheJournal(ForeignScenario, JournalTestCase):
        def test_the_journal_names_the_foreign_calls_with_the_message_id(self):
            mid = message_ids()["MID_FOREIGN_USE"]
            d = self.journal_daemon().start()
            c = d.client()
            self.addCleanup(c.close)
            self.run_foreign_scenario(c)
            (e,) = self.entries_of(d.proc.pid, "MESSAGE_ID=" + mid, want=lambda es: es)
            self.assertEqual(e["HITL_FOREIGN_CALLS"], str(self.FOREIGN))
            self.assertEqual(e["PRIORITY"], "4")
            self.assertIn("%d calls" % self.FOREIGN, e["MESSAGE"])


if __name__ == "__main__":
    main()
