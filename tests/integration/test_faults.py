#!/usr/bin/env python3
# run-suite: about 65 s
"""Network and server faults from the emulator: 500/503 bursts, connection
resets before and after the server committed, hangs longer than the call
timeout, slow replies (shorter and longer than the timeout), 429s caused by
another user of the key, and a server clock hours off (and stepping back).

For each: hitld keeps serving local clients during the fault, recovers when
it stops, never makes a call past the budget the server reported, and loses
or duplicates nothing (one remote request per local one, found by
context.hitld_id).
"""
import calendar
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KEY, SLOW, HitldTestCase, main, single_select_request, wait_for  # noqa: E402

CREATE = {"method": "POST", "path_prefix": "/v1/api/loops/"}
SERVE_LIMIT_MS = 1000.0


def epoch(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))   # "keeps serving": generous, the point is not being blocked by the fault


class FaultCase(HitldTestCase):
    WINDOW = 10
    CONFIG = {"api": {"timeout_s": 2}, "budget": {"window_s": 10}}

    # -- helpers
    def fault(self, kind, count=1, match=None, seconds=None):
        body = {"kind": kind, "count": count}
        if match:
            body["match"] = match
        if seconds is not None:
            body["seconds"] = seconds
        self.emu.ctl("POST", "/_emu/faults", body)

    def faults_left(self):
        return self.emu.ctl("GET", "/_emu/faults")["faults"]

    def submit(self, n, tag):
        return [self.c.call("request.submit", single_select_request(
            self.loop_id, text="%s %d" % (tag, i), timeout_seconds=86400))["id"] for i in range(n)]

    def serve_until(self, pred, timeout, what):
        """Status calls back to back until pred() holds: each must succeed,
        none may take long. Returns how many were made."""
        deadline = time.monotonic() + timeout * SLOW
        n, worst = 0, 0.0
        while True:
            t = time.perf_counter()
            st = self.c.call("status")
            worst = max(worst, (time.perf_counter() - t) * 1000)
            self.assertIn("queue", st)
            n += 1
            if pred():
                break
            self.assertLess(time.monotonic(), deadline, "timed out waiting for %s" % what)
            time.sleep(0.05)
        self.assertLess(worst, SERVE_LIMIT_MS * SLOW, "a status call took %.0f ms during the fault" % worst)
        return n

    def assert_once_each(self, ids, state="pending", timeout=40):
        for i in ids:
            self.wait_state(i, (state, "completed"), timeout=timeout)
        for i in ids:
            remote = self.emu.requests(hitld_id=i)
            self.assertEqual(len(remote), 1, "%s has %d remote requests" % (i, len(remote)))
            self.assertEqual(self.c.call("request.get", {"id": i})["remote_id"], remote[0]["id"])
        st = self.emu.stats()
        self.assertEqual(st["duplicates"]["count"], 0)
        self.assertEqual(st["creates"], len(self.emu.requests()))
        return st

    def assert_within_budget(self, expected_over=0):
        st = self.emu.stats()
        self.assertEqual(st["over_limit_attempts"], expected_over, "calls past the budget the server reported")

    def assert_recovered(self):
        wait_for(lambda: self.c.call("status")["api"]["last_error"] is None, 20, what="last_error cleared")
        st = self.c.call("status")
        self.assertTrue(st["api"]["reachable"])
        self.assertTrue(st["key"]["valid"])


class ServerErrors(FaultCase):
    def test_a_burst_of_500_and_503_is_survived_without_loss_or_duplicate(self):
        self.fault("500", count=1)
        self.fault("503", count=1)
        ids = self.submit(3, "burst")
        self.serve_until(lambda: not self.faults_left(), 30, "the burst to pass")
        self.assert_once_each(ids)
        self.assert_recovered()
        self.assert_within_budget()
        self.assertEqual(self.emu.stats()["faults_injected"], 2)


class Resets(FaultCase):
    def test_reset_before_the_server_committed_creates_once(self):
        self.fault("reset", match=CREATE)
        ids = self.submit(1, "reset before")
        self.serve_until(lambda: not self.faults_left(), 20, "the reset")
        self.assert_once_each(ids)
        self.assert_recovered()
        self.assert_within_budget()

    def test_reset_after_the_server_committed_is_reconciled_not_repeated(self):
        self.fault("commit_no_reply", count=2, match=CREATE)
        ids = self.submit(2, "reset after")
        self.serve_until(lambda: not self.faults_left(), 20, "both resets")
        self.assert_once_each(ids)
        self.assert_recovered()
        self.assert_within_budget()

    def test_resets_on_polls_and_reconciles_do_no_harm(self):
        ids = self.submit(2, "poll reset")
        for i in ids:
            self.wait_state(i, "pending")
        self.fault("reset", count=2, match={"method": "GET"})
        for r in self.emu.requests():
            self.emu.respond(r["id"], {"selected_value": "approve"})
        self.serve_until(lambda: not self.faults_left(), 40, "the resets on GET")
        for i in ids:
            self.assertEqual(self.wait_state(i, "completed", timeout=40)["result"], "approve")
        self.assert_once_each(ids, state="completed")
        self.assert_within_budget()


class Hangs(FaultCase):
    # The call timeout is 2 s; the server hangs for 6.
    def test_a_hang_longer_than_the_call_timeout_is_cut_and_reconciled(self):
        self.fault("hang", match=CREATE, seconds=6)
        ids = self.submit(1, "hang")
        t0 = time.monotonic()
        # Served all through the hang.
        self.serve_until(lambda: time.monotonic() - t0 > 3, 10, "the hang")
        self.assert_once_each(ids, timeout=30)
        self.assert_recovered()
        self.assert_within_budget()

    def test_a_hang_on_the_poll_does_not_stop_answers_coming_in(self):
        ids = self.submit(1, "hang poll")
        r = self.wait_state(ids[0], "pending")
        self.fault("hang", match={"method": "GET"}, seconds=6)
        self.emu.respond(r["remote_id"], {"selected_value": "reject"})
        self.serve_until(lambda: not self.faults_left(), 20, "the poll to hang")
        self.assertEqual(self.wait_state(ids[0], "completed", timeout=30)["result"], "reject")
        self.assert_within_budget()


class SlowReplies(FaultCase):
    CONFIG = {"api": {"timeout_s": 3}, "budget": {"window_s": 10}}

    def test_slow_replies_within_the_timeout_are_waited_for(self):
        self.fault("slow", count=4, seconds=1.5)
        ids = self.submit(3, "slow")
        self.serve_until(lambda: not self.faults_left(), 30, "the slow replies")
        self.assert_once_each(ids)
        self.assert_recovered()
        self.assert_within_budget()

    def test_a_create_answered_after_the_timeout_is_found_not_repeated(self):
        # The server commits, then answers after 5 s: the daemon gave up at
        # 3 s, so the outcome is unknown and must be reconciled.
        self.fault("slow", match=CREATE, seconds=5)
        ids = self.submit(1, "too slow")
        self.serve_until(lambda: not self.faults_left(), 10, "the slow create")
        self.assert_once_each(ids, timeout=30)
        self.assert_recovered()
        self.assert_within_budget()


class AnotherUserOfTheKey(FaultCase):
    WINDOW = 6
    LIMIT = 30
    CONFIG = {"api": {"timeout_s": 2}, "budget": {"window_s": 6, "limit_per_hour": 30, "poll_reserve": 5}}

    def spend(self, calls):
        return self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": calls})

    def window_info(self):
        return next(iter(self.emu.stats()["per_key"].values()))

    def test_budget_spent_behind_our_back_is_respected_once_reported(self):
        # The daemon makes a call, and so learns the server's count.
        ids = self.submit(1, "first")
        self.wait_state(ids[0], "pending")
        # Another program with the same key leaves 3 calls in this window.
        info = self.spend(0)
        self.spend(info["remaining"] - 3)
        more = self.submit(8, "more")
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in more),
                         60, "the requests to go out in the next window")
        self.assert_once_each(ids + more)
        self.assert_within_budget(0)
        self.assertEqual(sum(1 for c in self.emu.stats()["calls"] if c["status"] == 429), 0)

    def test_a_429_storm_stops_every_call_until_the_reset(self):
        # The whole window spent by someone else, twice running: each time
        # the daemon's first call meets the 429 (it cannot know), and then
        # it makes no call until the reset the server named.
        ids = self.submit(1, "storm first")
        self.wait_state(ids[0], "pending")
        self.spend(self.LIMIT)
        more = self.submit(3, "storm")
        wait_for(lambda: self.emu.stats()["over_limit_attempts"] >= 1, 10, what="the first 429")
        reset = self.window_info()["window_reset_epoch"]
        st = self.c.call("status")
        self.assertIsNotNone(st["budget"]["paused_until"])
        # Right after the reset, the other user empties the new window too.
        wait_for(lambda: self.window_info()["window_reset_epoch"] > reset, 20, interval=0.02, what="the reset")
        self.spend(self.LIMIT)
        reset2 = self.window_info()["window_reset_epoch"]
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in more),
                         60, "the storm to pass")
        calls = self.emu.stats()["calls"]
        n429 = [i for i, c in enumerate(calls) if c["status"] == 429]
        self.assertIn(len(n429), (1, 2), "kept calling into an exhausted window: %s" % [calls[i] for i in n429])
        # After each 429: no call before the reset the server named.
        for i, end in zip(n429, (reset, reset2)):
            early = [c for c in calls[i + 1:] if epoch(c["t"]) < end]
            self.assertEqual(early, [], "called before the reset at %d" % end)
        self.assert_once_each(ids + more)
        self.assertEqual(self.emu.stats()["over_limit_attempts"], len(n429))


class ServerClock(FaultCase):
    """HITL.sh's clock hours off ours, then stepping back to the truth."""
    WINDOW = 6
    LIMIT = 30
    CONFIG = {"api": {"timeout_s": 2}, "budget": {"window_s": 6, "limit_per_hour": 30, "poll_reserve": 5}}

    def clock(self, offset):
        self.emu.ctl("POST", "/_emu/clock/set", {"offset_seconds": offset})

    def spend(self, calls):
        return self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": calls})

    def test_hours_ahead_then_back_keeps_to_the_servers_budget(self):
        self.clock(3 * 3600 + 3.7)
        ids = self.submit(5, "ahead")
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in ids),
                         30, "creates with the clock ahead")
        self.assert_within_budget(0)

        # The server's clock is corrected: three hours back.
        self.clock(0)
        more = self.submit(3, "back")
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in more),
                         30, "creates after the step back")
        # Now someone else leaves 3 calls of this window: the daemon must
        # go by what the server reports, even though its Reset is hours
        # before the one it saw last.
        info = self.spend(0)
        self.spend(info["remaining"] - 3)
        last = self.submit(6, "after spend")
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in last),
                         60, "creates in the next window")
        self.assert_once_each(ids + more + last)
        self.assert_within_budget(0)

    def test_hours_behind_keeps_to_the_servers_budget(self):
        self.clock(-3 * 3600 - 3.7)
        ids = self.submit(3, "behind")
        for i in ids:
            self.wait_state(i, "pending")
        info = self.spend(0)
        self.spend(info["remaining"] - 3)
        more = self.submit(6, "behind more")
        self.serve_until(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in more),
                         60, "creates in the next window")
        self.assert_once_each(ids + more)
        self.assert_within_budget(0)


if __name__ == "__main__":
    main()
