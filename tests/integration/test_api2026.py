#!/usr/bin/env python3
# run-suite: about 80 s
"""hitld against the HITL.sh of 2026 (docs/HITL-API.md): a strict writer
(documented fields and ranges only), a tolerant reader (alternative status
words and shapes), the newer response and content types end to end through
hitlctl, and local validation that refuses what would cost a create call."""
import os
import subprocess

from harness import BUILD, HitldTestCase, SLOW, main, wait_for

HITLCTL = os.path.join(BUILD, "hitlctl")
MISSING_LOOP = "65f1234567890abcdef99999"


class CtlMixin:
    def ctl(self, *args, timeout=60):
        env = {k: v for k, v in os.environ.items() if k != "HITLD_SOCKET"}
        env["LC_ALL"] = "C.UTF-8"
        return subprocess.run([HITLCTL, "--socket", self.hitld.socket] + [str(a) for a in args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout * SLOW, env=env)

    def ok(self, *args, **kw):
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, "hitlctl %s: rc %d\nstdout: %s\nstderr: %s"
                         % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def creates(self):
        return [c for c in self.emu.stats()["calls"]
                if c["method"] == "POST" and c["path"].endswith("/requests")]


class TestLocalValidation(CtlMixin, HitldTestCase):
    """Issue 12 item 16: what would cost a create call, or blame the wrong flag."""

    def test_max_length_from_config_is_blamed_on_config_not_max(self):
        p = self.ctl("submit", "--loop", self.loop_id, "--type", "text", "--config", '{"max_length": 0}',
                     "--default", "x", "Summarise?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("max_length", p.stderr)
        self.assertIn("--config", p.stderr)
        self.assertNotIn("--max ", p.stderr)

    def test_max_length_from_max_is_still_blamed_on_max(self):
        p = self.ctl("submit", "--loop", self.loop_id, "--type", "text", "--max", "0", "--default", "x", "Summarise?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--max", p.stderr)

    def test_empty_true_label_is_refused_before_any_call(self):
        p = self.ctl("submit", "--loop", self.loop_id, "--type", "boolean", "--config", '{"true_label": ""}',
                     "--default", "true", "Ship it?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("true_label", p.stderr)
        self.assertEqual(self.creates(), [])

    def test_submit_to_a_loop_the_cache_knows_is_missing_is_refused(self):
        with self.assertRaises(Exception) as cm:
            self.c.call("loop.get", {"id": MISSING_LOOP})
        self.assertEqual(getattr(cm.exception, "code", None), -32006, cm.exception)
        from harness import RpcError, single_select_request
        with self.assertRaises(RpcError) as cm:
            self.c.call("request.submit", single_select_request(MISSING_LOOP))
        self.assertEqual(cm.exception.code, -32602)
        self.assertEqual(cm.exception.data["field"], "loop_id")
        self.assertIn("not found", cm.exception.data["reason"].lower())
        # A loop the cache knows nothing about is still accepted (and fails remotely).
        self.c.call("request.submit", single_select_request("65f1234567890abcdef88888"))
        self.assertEqual([c for c in self.creates() if MISSING_LOOP in c["path"]], [])


class TestStrictWriter(CtlMixin, HitldTestCase):
    def test_plain_ask_is_created_without_timeout_and_answered(self):
        self.emu.ctl("POST", "/_emu/auto-review", {"delay_s": 0, "default": "first"})
        p = self.ok("ask", "--loop", self.loop_id, "--option", "approve", "--option", "reject", "--default", "reject",
                    "Deploy?")
        self.assertEqual(p.stdout, "approve\n")
        creates = self.creates()
        self.assertEqual([c["status"] for c in creates], [201])
        (remote,) = self.emu.requests()
        self.assertNotIn("timeout_seconds", remote["create_body"])
        self.assertEqual(remote["create_body"]["processing_type"], "deferred")
        self.assertEqual(self.emu.stats()["create_errors"], [])

    def test_only_documented_fields_are_sent(self):
        self.c.call("request.submit", {
            "loop_id": self.loop_id, "request_text": "All the fields?", "response_type": "text",
            "response_config": {"max_length": 50}, "default_response": "none", "priority": "low",
            "processing_type": "time-sensitive", "timeout_seconds": 86400, "context": {"k": 1},
            "platform": "api", "platform_version": "1.0", "callback_url": "http://127.0.0.1:9/cb"})
        wait_for(lambda: self.emu.requests(), 20, what="the create")
        body = self.emu.requests()[0]["create_body"]
        self.assertEqual(set(body), {"request_text", "response_type", "response_config", "default_response",
                                     "priority", "processing_type", "timeout_seconds", "context", "platform",
                                     "platform_version", "callback_url", "type"})
        self.assertLessEqual(body["timeout_seconds"], 86400)
        self.assertGreaterEqual(body["timeout_seconds"], 86390)

    def test_a_timeout_above_a_day_is_refused_naming_the_range(self):
        from harness import RpcError, single_select_request
        for processing_type in ("time-sensitive", "deferred"):
            with self.assertRaises(RpcError) as cm:
                self.c.call("request.submit", single_select_request(self.loop_id, timeout_seconds=86401,
                                                                    processing_type=processing_type))
            self.assertEqual(cm.exception.code, -32602)
            self.assertEqual(cm.exception.data, {"field": "timeout_seconds",
                                                 "reason": "timeout_seconds must be between 60 and 86400"})
        self.assertEqual(self.creates(), [])

    def test_a_deferred_request_on_the_servers_30_day_default_times_out_there(self):
        rid = self.ok("submit", "--loop", self.loop_id, "--option", "approve", "--option", "reject",
                      "--default", "reject", "Whenever you can?").stdout.strip()
        rec = self.wait_state(rid, "pending")
        self.assertIsNone(rec["deadline_at"])
        (remote,) = self.emu.requests()
        self.assertNotIn("timeout_seconds", remote["create_body"])
        # Nothing local ends it early: a day later it is still pending...
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 86400})
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "pending")
        # ...and HITL.sh's 30 days end it with the default.
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 29 * 86400 + 1})
        rec = self.wait_state(rid, "timeout", timeout=30)
        self.assertEqual((rec["result"], rec["result_source"]), ("reject", "default"))


class TestLifetimeWithoutDeadline(CtlMixin, HitldTestCase):
    CONFIG = {"outbox": {"min_free_mb": 0, "max_lifetime_s": 60}}

    def test_a_deferred_request_without_deadline_still_ends_at_the_queue_lifetime(self):
        """No deadline (HITL.sh's 30-day default) must not mean forever in the
        queue: outbox.max_lifetime_s still ends it (60 s, the smallest)."""
        self.ok("pause")
        rid = self.ok("submit", "--loop", self.loop_id, "--option", "a", "--default", "a", "Q?").stdout.strip()
        rec = self.c.call("request.get", {"id": rid})
        self.assertEqual((rec["state"], rec["deadline_at"]), ("queued", None))
        rec = self.wait_state(rid, "failed", timeout=90)
        self.assertEqual(rec["error"]["code"], "lifetime_exceeded")
        self.assertEqual(self.creates(), [])


class TestAltStatusWords(CtlMixin, HitldTestCase):
    EMULATOR_ARGS = ("--drift-status-words", "alt")

    def test_answered_resolved_and_timed_out_reach_completed_and_timeout(self):
        ids = [self.ok("submit", "--loop", self.loop_id, "--option", "approve", "--option", "reject",
                       "--default", "reject", "--timeout", "300", "Q%d?" % i).stdout.strip() for i in range(3)]
        wait_for(lambda: len(self.emu.requests(status="pending")) == 3, 30, what="three creates")
        by_text = {r["request_text"]: r["id"] for r in self.emu.requests()}
        self.emu.respond(by_text["Q0?"], {"selected_value": "approve"})
        self.emu.respond(by_text["Q1?"], {"selected_value": "approve"})
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 301})
        shown = {r["request_text"]: r["shown_status"] for r in self.emu.requests()}
        self.assertEqual(sorted(shown.values()), ["answered", "resolved", "timed_out"])
        for rid in ids[:2]:
            rec = self.wait_state(rid, "completed")
            self.assertEqual((rec["result"], rec["result_source"]), ("approve", "reviewer"))
        rec = self.wait_state(ids[2], "timeout")
        self.assertEqual((rec["result"], rec["result_source"]), ("reject", "default"))
        self.assertNotIn("does not know", self.hitld.log_text())


class TestFlatGetShape(CtlMixin, HitldTestCase):
    EMULATOR_ARGS = ("--drift-status-shape", "flat", "--drift-status-words", "alt")

    def test_a_single_pending_request_polled_by_id_in_the_flat_shape_completes(self):
        rid = self.ok("submit", "--loop", self.loop_id, "--option", "approve", "--option", "reject",
                      "--default", "reject", "--timeout", "1h", "Flat?").stdout.strip()
        self.wait_state(rid, "pending")
        (remote,) = self.emu.requests()
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        rec = self.wait_state(rid, "completed")
        self.assertEqual((rec["result"], rec["result_source"]), ("approve", "reviewer"))
        gets = [c for c in self.emu.stats()["calls"]
                if c["method"] == "GET" and c["path"].endswith("/requests/" + remote["id"])]
        self.assertTrue(gets, "never read by id: the flat shape was not exercised")


class TestUnknownAndFailedWords(CtlMixin, HitldTestCase):
    def submit_pending(self, n):
        ids = [self.ok("submit", "--loop", self.loop_id, "--option", "approve", "--option", "reject",
                       "--default", "reject", "--timeout", "1h", "W%d?" % i).stdout.strip() for i in range(n)]
        for rid in ids:
            self.wait_state(rid, "pending")
        return ids, {r["hitld_id"]: r["id"] for r in self.emu.requests()}

    def show(self, remote_id, word):
        self.emu.ctl("POST", "/_emu/requests/%s/show-status" % remote_id, {"status": word})

    def test_an_unknown_word_keeps_the_request_pending_is_logged_once_and_an_answer_ends_it(self):
        ids, remote = self.submit_pending(2)
        for rid in ids:
            self.show(remote[rid], "in_review")
        # Polled a few times: still pending, one log line for the word.
        wait_for(lambda: self.hitld.log_text().count('"in_review"') >= 1, 30, what="the word logged")
        polls = len(self.emu.stats()["calls"])
        wait_for(lambda: len(self.emu.stats()["calls"]) >= polls + 3, 30, what="three more polls")
        for rid in ids:
            self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "pending")
        self.assertEqual(self.hitld.log_text().count('"in_review"'), 1, self.hitld.log_text()[-3000:])
        # An answer under the unknown word finishes it.
        self.emu.respond(remote[ids[0]], {"selected_value": "approve"})
        rec = self.wait_state(ids[0], "completed")
        self.assertEqual((rec["result"], rec["result_source"]), ("approve", "reviewer"))
        self.assertEqual(self.c.call("request.get", {"id": ids[1]})["state"], "pending")

    def test_failed_at_hitl_fails_the_request_with_the_servers_word(self):
        ids, remote = self.submit_pending(1)
        self.show(remote[ids[0]], "failed")
        rec = self.wait_state(ids[0], "failed")
        self.assertEqual(rec["error"]["code"], "remote_failed")
        self.assertIn('"failed"', rec["error"]["message"])
        self.assertEqual(rec["remote_status"], "failed")
        self.assertIsNone(rec["result"])


class TestNewTypesEndToEnd(CtlMixin, HitldTestCase):
    def submit(self, *args):
        return self.ok("submit", "--loop", self.loop_id, "--timeout", "1h", *args).stdout.strip()

    def answer(self, rid, response_data):
        self.wait_state(rid, "pending")
        (remote,) = self.emu.requests(hitld_id=rid)
        self.emu.respond(remote["id"], response_data)
        return self.wait_state(rid, "completed"), remote

    def test_editable_text(self):
        rid = self.submit("--type", "editable_text", "--draft-text", "Dear customer, sorry.", "--max-length", "200",
                          "Polish this reply")
        rec, remote = self.answer(rid, {"revised_text": "Dear customer, we are sorry.", "was_edited": True})
        self.assertEqual(remote["create_body"]["response_config"],
                         {"draft_text": "Dear customer, sorry.", "max_length": 200})
        self.assertEqual(remote["create_body"]["default_response"], "Dear customer, sorry.")
        self.assertEqual(rec["result"], "Dear customer, we are sorry.")
        self.assertEqual(rec["response"]["data"], {"revised_text": "Dear customer, we are sorry.", "was_edited": True})

    def test_boolean(self):
        rid = self.submit("--type", "boolean", "--true-label", "Ship", "--false-label", "Hold", "--default", "false",
                          "Ship it?")
        rec, remote = self.answer(rid, {"boolean": True})
        self.assertEqual(remote["create_body"]["response_config"], {"true_label": "Ship", "false_label": "Hold"})
        self.assertIs(rec["result"], True)

    def test_file(self):
        rid = self.submit("--file-url", "https://cdn.example.com/contract.pdf", "--file-type", "pdf",
                          "--file-name", "contract.pdf", "--option", "sign", "--option", "refuse", "--default", "refuse",
                          "Sign this contract?")
        rec, remote = self.answer(rid, {"selected_value": "sign"})
        body = remote["create_body"]
        self.assertEqual((body["type"], body["file_url"], body["file_type"], body["file_name"]),
                         ("file", "https://cdn.example.com/contract.pdf", "pdf", "contract.pdf"))
        self.assertEqual(rec["result"], "sign")

    def test_video(self):
        rid = self.submit("--content", "video", "--video-url", "https://cdn.example.com/clip.mp4",
                          "--type", "rating", "--default", "3", "Rate this clip")
        rec, remote = self.answer(rid, {"rating": 5})
        self.assertEqual((remote["create_body"]["type"], remote["create_body"]["video_url"]),
                         ("video", "https://cdn.example.com/clip.mp4"))
        self.assertEqual(rec["result"], 5)

    def test_audio(self):
        rid = self.submit("--audio-url", "https://cdn.example.com/call.mp3", "--type", "text", "--default", "none",
                          "Transcribe the caller's name")
        rec, remote = self.answer(rid, "Ada Lovelace")
        self.assertEqual((remote["create_body"]["type"], remote["create_body"]["audio_url"]),
                         ("audio", "https://cdn.example.com/call.mp3"))
        self.assertEqual(rec["result"], "Ada Lovelace")

    def test_content_flags_that_disagree_are_refused(self):
        p = self.ctl("submit", "--loop", self.loop_id, "--content", "video", "--audio-url", "https://x.example/a.mp3",
                     "--default", "x", "Q?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--audio-url is for audio requests", p.stderr)
        p = self.ctl("submit", "--loop", self.loop_id, "--content", "file", "--file-url", "https://x.example/a.pdf",
                     "--default", "x", "Q?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("file_type", p.stderr)
        self.assertIn("--file-type", p.stderr)
        self.assertEqual(self.creates(), [])


if __name__ == "__main__":
    main()
