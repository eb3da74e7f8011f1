#!/usr/bin/env python3
# run-suite: about 100 s
"""hitld spends the emulator's budget without ever causing a 429, polls with
one list call for many requests, follows the server's clock, and stays idle
when there is nothing to do."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HitldTestCase, KEY, main, single_select_request, wait_for  # noqa: E402


def count_calls(emu, method, pred):
    return sum(1 for c in emu.stats()["calls"] if c["method"] == method and pred(c["path"]))


class BudgetAcrossWindows(HitldTestCase):
    # 10 calls per 5-second window: three times the limit takes several windows.
    WINDOW = 5
    LIMIT = 10
    CONFIG = {"budget": {"window_s": 5, "poll_reserve": 2, "limit_per_hour": 10}}

    def test_three_times_the_limit_all_created_without_a_429(self):
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="bulk %d" % i))["id"]
               for i in range(3 * self.LIMIT)]
        deadline = 120
        wait_for(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in ids),
                 deadline, interval=0.5, what="all requests created")
        stats = self.emu.stats()
        self.assertEqual(stats["over_limit_attempts"], 0)
        self.assertEqual(sum(1 for c in stats["calls"] if c["status"] == 429), 0)
        self.assertEqual(stats["creates"], 3 * self.LIMIT)
        self.assertEqual(stats["duplicates"]["count"], 0)


class SkewedServerClock(HitldTestCase):
    # HITL.sh's clock is three hours ahead of ours.
    WINDOW = 5
    LIMIT = 10
    EMULATOR_ARGS = ("--clock-offset", "10800")
    CONFIG = {"budget": {"window_s": 5, "poll_reserve": 2, "limit_per_hour": 10}}

    def test_a_skewed_server_clock_does_not_cause_overspending(self):
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="skew %d" % i))["id"]
               for i in range(25)]
        wait_for(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in ids),
                 120, interval=0.5, what="all requests created")
        stats = self.emu.stats()
        self.assertEqual(stats["over_limit_attempts"], 0)
        self.assertEqual(stats["creates"], 25)


class SkewedServerClockBehind(SkewedServerClock):
    EMULATOR_ARGS = ("--clock-offset", "-10800")


class Polling(HitldTestCase):
    def test_one_list_call_polls_many_requests(self):
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="poll %d" % i))["id"]
               for i in range(6)]
        pend = [self.wait_state(i, "pending") for i in ids]
        for r in pend:
            self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        for i in ids:
            self.wait_state(i, "completed")
        gets = count_calls(self.emu, "GET", lambda p: "/requests/" in p)
        lists = count_calls(self.emu, "GET", lambda p: p.split("?")[0].endswith("/api/requests"))
        self.assertEqual(gets, 0, "polled request by request")
        self.assertGreaterEqual(lists, 1)
        # Six answers seen in few list calls, not one call each.
        self.assertLess(lists, 6 + 3)

    def test_idle_daemon_makes_no_calls(self):
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        r = self.wait_state(sub["id"], "pending")
        self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        self.wait_state(sub["id"], "completed")
        time.sleep(1.5)  # let a poll in flight land
        before = self.emu.stats()["calls_total"]
        time.sleep(float(os.environ.get("HITLD_IDLE_SECONDS", "60")))
        self.assertEqual(self.emu.stats()["calls_total"], before)


class RateLimitedByAnotherUser(HitldTestCase):
    WINDOW = 6
    CONFIG = {"budget": {"window_s": 6}}

    def test_a_429_stops_all_calls_until_the_reset(self):
        # Someone else with the same key spends it all behind our back.
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 100})
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        wait_for(lambda: any(c["status"] == 429 for c in self.emu.stats()["calls"]), 10, what="a 429")
        st = self.c.call("status")
        self.assertIsNotNone(st["budget"]["paused_until"])
        n429 = sum(1 for c in self.emu.stats()["calls"] if c["status"] == 429)
        self.assertEqual(n429, 1, "kept calling after a 429")
        # After the reset the request goes out.
        self.wait_state(sub["id"], "pending", timeout=20)
        self.assertEqual(sum(1 for c in self.emu.stats()["calls"] if c["status"] == 429), 1)


class KeyRefused(HitldTestCase):
    def test_401_stops_remote_traffic_and_probes_until_the_key_works(self):
        self.emu.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "inactive"})
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        wait_for(lambda: self.c.call("status")["key"]["valid"] is False, 10, what="key invalid")
        st = self.c.call("status")
        self.assertEqual(st["api"]["last_error"], "API key is inactive")
        self.assertEqual(self.c.call("request.get", {"id": sub["id"]})["state"], "queued")
        time.sleep(3)
        calls = self.emu.stats()["calls"]
        creates = [c for c in calls if c["method"] == "POST"]
        self.assertEqual(len(creates), 1, "kept creating with a refused key")
        probes = [c for c in calls if c["path"].endswith("/test")]
        self.assertGreaterEqual(len(probes), 1)
        self.assertLessEqual(len(probes), 3, "probes do not back off")
        self.emu.ctl("POST", "/_emu/keys/%s" % KEY, {"status": "active"})
        self.wait_state(sub["id"], "pending", timeout=30)
        self.assertTrue(self.c.call("status")["key"]["valid"])
        self.assertEqual(self.hitld.log_text().count("refused the API key"), 1)
        self.assertNotIn(KEY, self.hitld.log_text())


class ForbiddenLoop(HitldTestCase):
    def test_403_fails_only_the_request_it_concerns(self):
        other = "hitl_test_" + "f" * 48
        self.emu.ctl("POST", "/_emu/keys", {"key": other, "email": "other@example.com"})
        foreign = self.emu.ctl("POST", "/_emu/loops", {"key": other, "name": "Theirs",
                                                         "members": ["someone@example.com"]})
        bad = self.c.call("request.submit", single_select_request(foreign["id"]))
        good = self.c.call("request.submit", single_select_request(self.loop_id))
        failed = self.wait_state(bad["id"], "failed")
        self.assertEqual(failed["error"]["http_status"], 403)
        self.wait_state(good["id"], "pending")
        self.assertTrue(self.c.call("status")["key"]["valid"])


if __name__ == "__main__":
    main()
