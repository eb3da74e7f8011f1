#!/usr/bin/env python3
"""hitld against the emulator: a request's whole life through the socket."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HitldTestCase, RpcError, main, single_select_request, wait_for)  # noqa: E402


def creates(emu):
    return [c for c in emu.stats()["calls"]
            if c["method"] == "POST" and c["path"].endswith("/requests") and "/loops/" in c["path"]]


class RequestLife(HitldTestCase):
    def submit_and_pending(self, req):
        sub = self.c.call("request.submit", req)
        self.assertEqual(sub["state"], "queued")
        self.assertFalse(sub["duplicate"])
        r = self.wait_state(sub["id"], "pending")
        self.assertRegex(r["remote_id"], "^[0-9a-f]{24}$")
        return r

    def test_each_response_type_completes_with_the_normalised_answer(self):
        cases = [
            ("single_select", {"options": [{"value": "approve", "label": "Approve"},
                                           {"value": "reject", "label": "Reject"}]},
             "reject", {"selected_value": "approve", "selected_label": "Approve"}, "approve"),
            ("multi_select", {"options": ["Spam", "Misleading", "Fine"], "max_selections": 2},
             ["Fine"], {"selected_values": ["Spam", "Misleading"]}, ["Spam", "Misleading"]),
            ("rating", {"scale_max": 5}, 3, {"rating": 4}, 4),
            ("number", {"max_value": 1000, "decimal_places": 2}, 0, {"number": 299.99}, 299.99),
            ("text", {"max_length": 200}, "no answer", "Looks fine to me", "Looks fine to me"),
        ]
        for rtype, config, default, answer, expected in cases:
            with self.subTest(rtype):
                r = self.submit_and_pending({
                    "loop_id": self.loop_id, "request_text": "Review this %s" % rtype,
                    "response_type": rtype, "response_config": config,
                    "default_response": default})
                self.emu.respond(r["remote_id"], answer)
                done = self.c.call("request.wait", {"id": r["id"], "timeout_ms": 30000})
                self.assertTrue(done["done"])
                got = done["request"]
                self.assertEqual(got["state"], "completed")
                self.assertEqual(got["result_source"], "reviewer")
                if isinstance(expected, float):
                    self.assertAlmostEqual(got["result"], expected)
                else:
                    self.assertEqual(got["result"], expected)
                self.assertIsNotNone(got["response"])

    def test_remote_timeout_gives_the_default_response(self):
        r = self.submit_and_pending(single_select_request(self.loop_id, timeout_seconds=120))
        # HITL.sh's clock passes the deadline; the daemon learns it by polling.
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 300})
        got = self.wait_state(r["id"], "timeout")
        self.assertEqual(got["result"], "reject")
        self.assertEqual(got["result_source"], "default")

    def test_sent_timeout_is_the_time_left_and_context_carries_the_local_id(self):
        r = self.submit_and_pending(single_select_request(self.loop_id, timeout_seconds=900,
                                                          context={"build": 4812}))
        remote = self.emu.requests(hitld_id=r["id"])
        self.assertEqual(len(remote), 1)
        self.assertEqual(remote[0]["context"], {"build": 4812, "hitld_id": r["id"]})
        self.assertLessEqual(remote[0].get("timeout_seconds", 900), 900)

    def test_cancel_while_queued_spends_no_budget(self):
        self.c.call("queue.pause")
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        got = self.c.call("request.cancel", {"id": sub["id"]})
        self.assertEqual(got["state"], "cancelled")
        self.c.call("queue.resume")
        time.sleep(1.5)
        self.assertEqual(self.emu.stats()["calls_total"], 0)
        with self.assertRaises(RpcError) as e:
            self.c.call("request.cancel", {"id": sub["id"]})
        self.assertEqual(e.exception.code, -32007)

    def test_cancel_while_pending_cancels_at_hitl(self):
        r = self.submit_and_pending(single_select_request(self.loop_id))
        got = self.c.call("request.cancel", {"id": r["id"]})
        self.assertTrue(got["cancel_requested"])
        self.wait_state(r["id"], "cancelled")
        remote = self.emu.requests(hitld_id=r["id"])
        self.assertEqual(remote[0]["status"], "cancelled")

    def test_feedback_reaches_hitl_once(self):
        r = self.submit_and_pending(single_select_request(self.loop_id))
        with self.assertRaises(RpcError) as e:
            self.c.call("request.feedback", {"id": r["id"], "feedback": {"rating": 5}})
        self.assertEqual(e.exception.code, -32007)
        self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        self.wait_state(r["id"], "completed")
        with self.assertRaises(RpcError) as e:
            self.c.call("request.feedback", {"id": r["id"], "feedback": {"rating": 9}})
        self.assertEqual(e.exception.code, -32602)
        got = self.c.call("request.feedback", {"id": r["id"], "feedback": {"rating": 5, "comment": "quick"}})
        self.assertEqual(got["feedback_state"], "queued")
        wait_for(lambda: self.c.call("request.get", {"id": r["id"]})["feedback_state"] == "sent", 20,
                 what="feedback sent")
        posts = [c for c in self.emu.stats()["calls"] if c["path"].endswith("/feedback")]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["status"], 200)

    def test_invalid_request_is_refused_locally_without_a_call(self):
        bad = single_select_request(self.loop_id, default_response="maybe")
        with self.assertRaises(RpcError) as e:
            self.c.call("request.submit", bad)
        self.assertEqual(e.exception.code, -32602)
        self.assertEqual(e.exception.data["field"], "default_response")
        with self.assertRaises(RpcError) as e:
            self.c.call("request.submit", single_select_request(self.loop_id, request_text=""))
        self.assertEqual(e.exception.data["field"], "request_text")
        time.sleep(1)
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_client_ref_makes_submit_idempotent(self):
        req = single_select_request(self.loop_id, client_ref="deploy-4812")
        first = self.c.call("request.submit", req)
        again = self.c.call("request.submit", req)
        self.assertEqual(again["id"], first["id"])
        self.assertTrue(again["duplicate"])
        with self.assertRaises(RpcError) as e:
            self.c.call("request.submit", dict(req, request_text="Something else"))
        self.assertEqual(e.exception.code, -32009)
        got = self.c.call("request.get", {"client_ref": "deploy-4812"})
        self.assertEqual(got["id"], first["id"])
        self.wait_state(first["id"], "pending")
        self.assertEqual(len(creates(self.emu)), 1)

    def test_wait_times_out_without_spending_budget(self):
        self.c.call("queue.pause")
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        t0 = time.monotonic()
        got = self.c.call("request.wait", {"id": sub["id"], "timeout_ms": 300})
        self.assertFalse(got["done"])
        self.assertEqual(got["request"]["state"], "queued")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_list_pages_newest_first_with_a_stable_cursor(self):
        self.c.call("queue.pause")
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="n%d" % i))["id"]
               for i in range(5)]
        page = self.c.call("request.list", {"limit": 2})
        self.assertEqual([r["id"] for r in page["requests"]], ids[::-1][:2])
        # A new request does not disturb the next page.
        self.c.call("request.submit", single_select_request(self.loop_id, text="late"))
        page2 = self.c.call("request.list", {"limit": 2, "cursor": page["next_cursor"]})
        self.assertEqual([r["id"] for r in page2["requests"]], ids[::-1][2:4])
        page3 = self.c.call("request.list", {"limit": 2, "cursor": page2["next_cursor"]})
        self.assertEqual([r["id"] for r in page3["requests"]], ids[:1])
        self.assertIsNone(page3["next_cursor"])
        cancelled = self.c.call("request.cancel", {"id": ids[0]})
        self.assertEqual(cancelled["state"], "cancelled")
        only = self.c.call("request.list", {"state": ["cancelled"]})
        self.assertEqual([r["id"] for r in only["requests"]], [ids[0]])

    def test_list_pages_stop_short_of_the_output_limit(self):
        self.c.call("queue.pause")
        big = {"blob": "x" * 45000}
        ids = {self.c.call("request.submit", single_select_request(self.loop_id, text="big %d" % i,
                                                                   context=big))["id"] for i in range(20)}
        seen, pages, cursor = set(), 0, None
        while True:
            page = self.c.call("request.list", {"limit": 1000, **({"cursor": cursor} if cursor else {})})
            pages += 1
            seen |= {r["id"] for r in page["requests"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, ids)
        self.assertGreater(pages, 1, "one page of 900 KB")

    def test_a_queued_request_says_where_it_stands(self):
        self.c.call("queue.pause")
        a = self.c.call("request.submit", single_select_request(self.loop_id, priority="low"))
        b = self.c.call("request.submit", single_select_request(self.loop_id, priority="critical"))
        self.assertEqual(self.c.call("request.get", {"id": b["id"]})["position"], 1)
        self.assertEqual(self.c.call("request.get", {"id": a["id"]})["position"], 2)

    def test_watch_reports_each_state_change(self):
        w = self.hitld.client()
        self.addCleanup(w.close)
        self.assertEqual(w.call("watch"), {"watching": 0})
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        r = self.wait_state(sub["id"], "pending")
        self.emu.respond(r["remote_id"], {"selected_value": "reject"})
        self.wait_state(sub["id"], "completed")
        seen = []
        while not seen or seen[-1] != "completed":
            msg = w.read_message()
            self.assertEqual(msg["method"], "request.changed")
            seen.append(msg["params"]["request"]["state"])
        self.assertEqual(seen[0], "queued")
        self.assertIn("pending", seen)

    def test_status_reports_budget_queue_and_key(self):
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        self.wait_state(sub["id"], "pending")
        st = self.c.call("status")
        self.assertEqual(st["budget"]["source"], "server")
        self.assertEqual(st["budget"]["limit"], 100)
        self.assertLess(st["budget"]["remaining"], 100)
        self.assertEqual(st["queue"]["pending"], 1)
        self.assertTrue(st["key"]["loaded"])
        self.assertTrue(st["key"]["valid"])
        self.assertTrue(st["api"]["reachable"])
        self.assertNotIn(self.hitld.key, str(st))


class Restarts(HitldTestCase):
    def test_restart_keeps_queued_and_pending_without_duplicates(self):
        a = self.c.call("request.submit", single_select_request(self.loop_id, text="first"))
        ra = self.wait_state(a["id"], "pending")
        self.c.call("queue.pause")
        b = self.c.call("request.submit", single_select_request(self.loop_id, text="second"))
        self.c.close()
        self.hitld.stop()
        self.hitld.start()
        self.c = self.hitld.client()
        self.assertEqual(self.c.call("request.get", {"id": a["id"]})["state"], "pending")
        self.assertEqual(self.c.call("request.get", {"id": b["id"]})["state"], "queued")
        self.assertTrue(self.c.call("status")["paused"])
        self.c.call("queue.resume")
        rb = self.wait_state(b["id"], "pending")
        self.emu.respond(ra["remote_id"], {"selected_value": "approve"})
        self.emu.respond(rb["remote_id"], {"selected_value": "reject"})
        self.assertEqual(self.wait_state(a["id"], "completed")["result"], "approve")
        self.assertEqual(self.wait_state(b["id"], "completed")["result"], "reject")
        stats = self.emu.stats()
        self.assertEqual(stats["creates"], 2)
        self.assertEqual(stats["duplicates"]["count"], 0)

    def test_kill9_right_after_the_ack_loses_nothing_and_creates_once(self):
        self.emu.ctl("POST", "/_emu/auto-review", {"delay_s": 0, "default": "first"})
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        self.hitld.kill9()
        self.hitld.start()
        self.c = self.hitld.client()
        got = self.wait_state(sub["id"], "completed")
        self.assertEqual(got["result"], "approve")
        self.assertEqual(len(self.emu.requests(hitld_id=sub["id"])), 1)
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)

    def test_create_committed_without_a_reply_is_reconciled_not_repeated(self):
        self.emu.ctl("POST", "/_emu/faults", {"kind": "commit_no_reply", "count": 1,
                                              "match": {"method": "POST"}})
        sub = self.c.call("request.submit", single_select_request(self.loop_id))
        got = self.wait_state(sub["id"], "pending")
        self.assertEqual(len(self.emu.requests(hitld_id=sub["id"])), 1)
        self.assertEqual(got["remote_id"], self.emu.requests(hitld_id=sub["id"])[0]["id"])
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)

    def test_sigterm_exits_zero(self):
        self.c.close()
        self.assertEqual(self.hitld.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    main()
