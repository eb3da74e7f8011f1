#!/usr/bin/env python3
# run-suite: about 40 s
"""The backlog forecast in status, and the journal's backlog warnings, each
once per condition (hitld(8) "FORECASTS AND WARNINGS"): a backlog that takes
longer than budget.warn_drain_hours to be created, and a budget window that
ends with creates still waiting. The journal test checks their MESSAGE_IDs
and fields in a private journald (skipped where one cannot run)."""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HitldTestCase, main, single_select_request, wait_for  # noqa: E402
import test_systemd  # noqa: E402

SLOW_TEXT = "to be created at the budget's pace"
WINDOW_TEXT = "still waiting to be created"


def epoch(iso):
    return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


class LongDrain(HitldTestCase):
    # 10 calls an hour, 2 of them kept for polls: 8 creates a window.
    WINDOW = 3600
    LIMIT = 10
    CONFIG = {"budget": {"window_s": 3600, "limit_per_hour": 10, "poll_reserve": 2, "warn_drain_hours": 1}}

    def submit(self, n):
        return [self.c.call("request.submit", single_select_request(self.loop_id, text="drain %d" % i))["id"]
                for i in range(n)]

    def created(self):
        return self.emu.stats()["creates"]

    def test_status_forecasts_the_drain_and_a_long_one_is_warned_of_once(self):
        reset_before = self.c.call("status")["budget"]["reset_at"]
        # More than the window's 8 creates: hitld spreads them over the hour,
        # so however many went already, the rest of the 10 wait for the next
        # window, whose start takes the last 2.
        self.submit(10)
        st = self.c.call("status")
        f = st["forecast"]
        self.assertEqual(f["backlog"], st["queue"]["queued"])
        self.assertGreaterEqual(f["backlog"], 2)
        self.assertIsNone(f["held"])
        self.assertEqual(f["creates_per_window"], 8)
        self.assertEqual(f["decisions_per_hour"], 8)
        self.assertEqual(epoch(f["drain_at"]), epoch(st["budget"]["reset_at"]))
        self.assertLessEqual(f["drain_seconds"], 3600)
        self.assertNotIn(SLOW_TEXT, self.hitld.log_text())

        # 12 more than this window has: two more windows, longer than an hour.
        self.submit(10)
        wait_for(lambda: SLOW_TEXT in self.hitld.log_text(), 30, what="the long-drain warning")
        st = self.c.call("status")
        f = st["forecast"]
        self.assertEqual(f["backlog"], st["queue"]["queued"])
        # The next window is as long as this one (3600 s, or a second more
        # when hitld first heard of it in its first second).
        self.assertAlmostEqual(epoch(f["drain_at"]), epoch(st["budget"]["reset_at"]) + 3600, delta=2)
        self.assertGreater(f["drain_seconds"], 3600)
        # More of the same condition: still one warning; a pause holds the
        # forecast and does not start a new condition.
        self.submit(5)
        self.c.call("queue.pause")
        f = self.c.call("status")["forecast"]
        self.assertEqual(f["held"], "queue_paused")
        self.assertIsNone(f["drain_at"])
        self.assertIsNone(f["drain_seconds"])
        self.c.call("queue.resume")
        self.submit(1)
        wait_for(lambda: self.c.call("status")["forecast"]["drain_at"] is not None, 10, what="a forecast")
        self.assertEqual(self.hitld.log_text().count(SLOW_TEXT), 1, self.hitld.log_text()[-3000:])
        self.assertEqual(self.emu.stats()["over_limit_attempts"], 0)
        # Taking the server's window for the local guess ends no window.
        if epoch(self.c.call("status")["budget"]["reset_at"]) - epoch(reset_before) < 60:
            self.assertNotIn(WINDOW_TEXT, self.hitld.log_text())

    def test_a_non_admin_sees_no_drain_time(self):
        from harness import as_uid, Client
        self.submit(12)
        sock = self.hitld.socket

        def theirs():
            c = Client(sock)
            try:
                return c.call("status")["forecast"]
            finally:
                c.close()
        f = as_uid(40012, theirs)
        self.assertEqual(f["backlog"], 0)
        self.assertIsNone(f["drain_at"])
        self.assertIsNone(f["drain_seconds"])
        self.assertEqual(f["decisions_per_hour"], 8)
        self.assertIsNotNone(self.c.call("status")["forecast"]["drain_at"])


class WindowEndsWithCreatesWaiting(HitldTestCase):
    # 8 creates every 5 seconds: 20 requests need three windows.
    WINDOW = 5
    LIMIT = 10
    CONFIG = {"budget": {"window_s": 5, "limit_per_hour": 10, "poll_reserve": 2, "warn_drain_hours": 0}}

    def burst(self, tag):
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="%s %d" % (tag, i)))["id"]
               for i in range(20)]
        wait_for(lambda: all(self.c.call("request.get", {"id": i})["state"] == "pending" for i in ids),
                 120, interval=0.5, what="all requests created")

    def windows_pass(self, n):
        """Waits until hitld's ledger has rolled into n further windows."""
        seen = [self.c.call("status")["budget"]["reset_at"]]

        def rolled():
            r = self.c.call("status")["budget"]["reset_at"]
            if r != seen[-1]:
                seen.append(r)
            return len(seen) > n
        wait_for(rolled, 20 * n, interval=0.2, what="%d windows" % n)

    def test_once_for_a_run_of_such_windows_then_again_after_one_without(self):
        self.burst("first")
        log = self.hitld.log_text()
        self.assertEqual(log.count(WINDOW_TEXT), 1, log[-3000:])
        # Windows that end with nothing waiting re-arm it (pending requests
        # are polled, so hitld looks at every window).
        self.windows_pass(2)
        self.assertEqual(self.hitld.log_text().count(WINDOW_TEXT), 1)
        self.burst("second")
        log = self.hitld.log_text()
        self.assertEqual(log.count(WINDOW_TEXT), 2, log[-3000:])
        self.assertEqual(self.emu.stats()["over_limit_attempts"], 0)
        self.assertNotIn(SLOW_TEXT, log)


class JournalLongDrain(test_systemd.JournalTestCase):
    WINDOW = 3600
    LIMIT = 10

    def test_the_long_drain_warning_carries_its_message_id_and_fields(self):
        mid = test_systemd.message_ids()["MID_BACKLOG_SLOW"]
        d = self.journal_daemon(config_extra=LongDrain.CONFIG).start()
        c = d.client()
        self.addCleanup(c.close)
        for i in range(30):
            c.call("request.submit", single_select_request(self.loop_id, text="j %d" % i))
        self.entries_of(d.proc.pid, "MESSAGE_ID=" + mid, want=lambda es: len(es) >= 1, timeout=30)
        d.stop()
        es = self.journal.entries("_PID=%d" % d.proc.pid, "MESSAGE_ID=" + mid)
        self.assertEqual(len(es), 1, es)
        self.assertEqual(es[0]["PRIORITY"], "4")
        self.assertGreater(int(es[0]["HITL_DRAIN_SECONDS"]), 3600)
        # Logged when the backlog first outgrew two windows' creates.
        self.assertIn(int(es[0]["HITL_QUEUED"]), range(9, 31))
        self.assertEqual(es[0]["HITL_BUDGET_LIMIT"], "10")


class JournalWindowEnded(test_systemd.JournalTestCase):
    WINDOW = 5
    LIMIT = 10

    def test_the_window_warning_carries_its_message_id_and_fields(self):
        mid = test_systemd.message_ids()["MID_WINDOW_ENDED_WAITING"]
        d = self.journal_daemon(config_extra=WindowEndsWithCreatesWaiting.CONFIG).start()
        c = d.client()
        self.addCleanup(c.close)
        ids = [c.call("request.submit", single_select_request(self.loop_id, text="w %d" % i))["id"]
               for i in range(20)]
        wait_for(lambda: all(c.call("request.get", {"id": i})["state"] == "pending" for i in ids),
                 120, interval=0.5, what="all requests created")
        d.stop()
        es = self.journal.entries("_PID=%d" % d.proc.pid, "MESSAGE_ID=" + mid)
        self.assertEqual(len(es), 1, es)
        self.assertEqual(es[0]["PRIORITY"], "4")
        self.assertIn(int(es[0]["HITL_QUEUED"]), range(1, 20))
        self.assertEqual(es[0]["HITL_BUDGET_LIMIT"], "10")


if __name__ == "__main__":
    main()
