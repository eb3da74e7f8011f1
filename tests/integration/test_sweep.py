#!/usr/bin/env python3
# run-suite: about 140 s
"""Polling as the callbacks' safety net (issue 17 item 4; plan.h, sweep.h).

With the webhook receiver on, hitld polls as always until a callback
arrives; then polls drop to one sweep per webhook.sweep_interval_s
(status.polling.mode "sweep", logged once). When callbacks stop (the
emulator loses them all), the sweep still finds every answer, and hitld
goes back to normal polling and says why ("callbacks_silent"); a callback
brings the sweep back. A request past its deadline with no callback
("callback_overdue") does the same.
"""
import time

from harness import HitldTestCase, free_port, main, single_select_request, wait_for

SWEEP_S = 4


class SweepCase(HitldTestCase):
    START_DAEMON = False
    SWEEP = SWEEP_S

    def setUp(self):
        super().setUp()
        port = free_port()
        self.hitld = self.new_daemon({"webhook": {"listen": "127.0.0.1:%d" % port,
                                                  "public_url": "http://127.0.0.1:%d/cb" % port,
                                                  "sweep_interval_s": self.SWEEP}}).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def polling(self):
        return self.c.call("status")["polling"]

    def wait_mode(self, mode, reason, timeout=30):
        return wait_for(lambda: (lambda p: p["mode"] == mode and p["reason"] == reason and p)(self.polling()),
                        timeout, interval=0.1, what="polling %s/%s" % (mode, reason))

    def submit_pending(self, text):
        rid = self.c.call("request.submit", single_select_request(self.loop_id, text=text))["id"]
        return rid, self.wait_state(rid, "pending")["remote_id"]

    def polls(self):
        return [c for c in self.emu.stats()["calls"]
                if c["method"] == "GET" and "/requests" in c["path"] and c["status"] == 200]

    def callbacks(self, **switches):
        self.emu.ctl("POST", "/_emu/callbacks", switches)


class TestSweep(SweepCase):
    def test_sweep_while_callbacks_arrive_normal_when_they_stop(self):
        p = self.polling()
        self.assertEqual((p["mode"], p["reason"], p["sweep_interval_s"]), ("normal", "no_callback_yet", SWEEP_S))

        # A callback: the sweep, logged once.
        a, a_remote = self.submit_pending("first")
        self.emu.respond(a_remote, {"selected_value": "approve"})
        self.assertEqual(self.wait_state(a, "completed")["result"], "approve")
        p = self.wait_mode("sweep", "callbacks_arrive")
        self.assertIsNotNone(p["last_callback_at"])
        self.assertEqual(self.hitld.log_text().count("callbacks arrive: polls drop to one sweep every"), 1)

        # While sweeping, a pending request costs one list call per interval.
        b, b_remote = self.submit_pending("second")
        before = len(self.polls())
        time.sleep(3 * SWEEP_S)
        swept = len(self.polls()) - before
        self.assertGreaterEqual(swept, 1)
        self.assertLessEqual(swept, 4)
        self.assertEqual(self.polling()["mode"], "sweep")

        # Callbacks stop: the sweep still finds the answer, and polling
        # goes back to normal, saying why.
        self.callbacks(drop=1.0)
        self.emu.respond(b_remote, {"selected_value": "reject"})
        self.assertEqual(self.wait_state(b, "completed", timeout=4 * SWEEP_S)["result"], "reject")
        self.wait_mode("normal", "callbacks_silent", timeout=2 * SWEEP_S)
        self.assertEqual(self.hitld.log_text().count("callbacks seem lost"), 1)
        self.assertEqual(self.emu.stats()["callbacks"]["dropped"], 1)

        # They come back: the sweep again.
        self.callbacks(drop=0.0)
        c, c_remote = self.submit_pending("third")
        self.emu.respond(c_remote, {"selected_value": "approve"})
        self.wait_state(c, "completed")
        self.wait_mode("sweep", "callbacks_arrive")
        self.assertEqual(self.hitld.log_text().count("callbacks arrive: polls drop to one sweep every"), 2)

    def test_lost_callbacks_among_others_keep_the_sweep(self):
        # A fifth of the callbacks lost while others arrive: every request
        # completes (the sweep finds the lost ones), and the sweep stays.
        a, a_remote = self.submit_pending("warm-up")
        self.emu.respond(a_remote, {"selected_value": "approve"})
        self.wait_mode("sweep", "callbacks_arrive")
        self.callbacks(drop=0.2, seed=5)
        ids = []
        for i in range(10):
            ids.append(self.submit_pending("batch %d" % i))
        for rid, remote in ids:
            self.emu.respond(remote, {"selected_value": "approve"})
        for rid, _ in ids:
            self.wait_state(rid, "completed", timeout=4 * SWEEP_S)
        self.assertGreaterEqual(self.emu.stats()["callbacks"]["dropped"], 1)
        self.assertEqual(self.polling()["mode"], "sweep")


class TestOverdue(SweepCase):
    SWEEP = 600

    def test_overdue_request_brings_normal_polling(self):
        a, a_remote = self.submit_pending("warm-up")
        self.emu.respond(a_remote, {"selected_value": "approve"})
        self.wait_mode("sweep", "callbacks_arrive")
        # Its timeout callback is lost: 30 s after its deadline hitld polls
        # normally again (a sweep would wait 600 s) and finds the timeout.
        self.callbacks(drop=1.0)
        req = single_select_request(self.loop_id, text="nobody answers")
        req.update(processing_type="time-sensitive", timeout_seconds=90)
        b = self.c.call("request.submit", req)["id"]
        self.wait_state(b, "pending")
        self.wait_mode("normal", "callback_overdue", timeout=150)
        self.assertEqual(self.wait_state(b, "timeout", timeout=30)["state"], "timeout")
        self.assertIn("passed its deadline with no callback", self.hitld.log_text())


if __name__ == "__main__":
    main()
