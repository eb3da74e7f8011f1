#!/usr/bin/env python3
"""API key rotation (DESIGN.md §5, PROTOCOL.md daemon.reload): SIGHUP or
daemon.reload re-reads api.key_file; requests queued and pending keep going
with the new key, nothing is lost or created twice; a new key that is not
usable leaves the old one in place and the log says why.

The emulator's second key of the same account stands for the rotated key.
HITL.sh lists only the requests created with the calling key (docs/HITL-API.md
§2.5), so after a rotation the requests created with the old key must be
followed some other way; the tests revoke the old key right after the
rotation, as an operator would, so nothing can quietly lean on it.
"""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KEY, SLOW, HitldTestCase, main, single_select_request, wait_for  # noqa: E402
from sec_util import add_key_same_account, new_key, secret_needles, write_key_file  # noqa: E402

TERMINAL = ("completed", "timeout", "cancelled", "failed")


def mask(key):
    return "****" + key[-4:]


class RotationBase(HitldTestCase):
    START_DAEMON = False
    EMULATOR_ARGS = ("--auto-review", "3")

    def setUp(self):
        super().setUp()
        self.new = new_key()
        self.new_id = add_key_same_account(self.emu, KEY, self.new)["api_key_id"]
        self.key_file = os.path.join(self.tmp, "api.key")
        write_key_file(self.key_file, KEY)
        self.hitld = self.new_daemon({"api": {"key_file": self.key_file}}, key=None).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def old_id(self):
        for name, info in self.emu.stats()["per_key"].items():
            if name.startswith(mask(KEY)):
                return info["api_key_id"]
        raise AssertionError("no old key")

    def rotate(self, how="sighup", key=None):
        """Puts the new key in the file and reloads; returns once the daemon
        says it loaded it."""
        write_key_file(self.key_file, key or self.new)
        before = self.hitld.log_text().count("API key reloaded from the key file.")
        if how == "sighup":
            self.hitld.proc.send_signal(signal.SIGHUP)
        else:
            self.assertEqual(self.c.call("daemon.reload"),
                             {"reloaded": True, "key": {"loaded": True, "source": "key_file"}, "restart_needed": []})
        wait_for(lambda: self.hitld.log_text().count("API key reloaded from the key file.") > before, 10,
                 what="the key reload")

    def wait_all(self, ids, states=TERMINAL, timeout=90):
        last = {}

        def done():
            last["states"] = {i: self.c.call("request.get", {"id": i})["state"] for i in ids}
            return all(s in states for s in last["states"].values())
        try:
            wait_for(done, timeout, interval=0.25, what="all requests final")
        except AssertionError:
            stuck = {i: s for i, s in last["states"].items() if s not in states}
            raise AssertionError("%d of %d requests stuck: %s\n%s" % (
                len(stuck), len(ids), stuck, self.hitld.log_text()[-4000:]))
        return [self.c.call("request.get", {"id": i}) for i in ids]

    def remote_by_local(self):
        by = {}
        for r in self.emu.requests():
            by.setdefault(r["hitld_id"], []).append(r)
        return by

    def assert_key_not_logged(self):
        log = self.hitld.log_text()
        for k in (KEY, self.new):
            for n in secret_needles(k):
                self.assertNotIn(n, log)



class Rotation(RotationBase):
    def test_rotation_under_a_steady_submit_load_loses_and_duplicates_nothing(self):
        n_total, rotate_after = 36, 12
        submitted = []          # (id, monotonic time of the ack)
        errors = []

        def submitter():
            c = self.hitld.client()
            try:
                for i in range(n_total):
                    got = c.call("request.submit", single_select_request(
                        self.loop_id, text="load %d" % i, client_ref="load-%d" % i))
                    submitted.append((got["id"], time.monotonic()))
                    time.sleep(0.1)
            except Exception as e:  # surfaced below
                errors.append(e)
            finally:
                c.close()

        t = threading.Thread(target=submitter)
        t.start()
        try:
            wait_for(lambda: len(submitted) >= rotate_after or errors, 30, what="load to build up")
            self.rotate("sighup")
            confirmed = time.monotonic()
            # Rotation done as an operator would: the old key is revoked.
            self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        finally:
            t.join(120 * SLOW)
        self.assertEqual(errors, [])
        self.assertEqual(len(submitted), n_total)
        ids = [i for i, _ in submitted]
        after = {i for i, at in submitted if at > confirmed}
        self.assertGreater(len(after), 5)

        records = self.wait_all(ids)
        self.assertEqual({r["state"] for r in records}, {"completed"},
                         [(r["id"], r["state"], r["error"]) for r in records if r["state"] != "completed"])

        # Every request was created exactly once, none twice, none lost.
        remote = self.remote_by_local()
        for rid in ids:
            self.assertEqual(len(remote.get(rid, [])), 1, "request %s created %d times" % (rid, len(remote.get(rid, []))))
        stats = self.emu.stats()
        self.assertEqual(stats["duplicates"]["count"], 0, stats["duplicates"])
        self.assertEqual(stats["creates"], n_total)
        # Requests made with the old key kept going after it was rotated out,
        # and every request accepted after the reload went out with the new key.
        old_id = self.old_id()
        created_with = {rid: remote[rid][0]["api_key_id"] for rid in ids}
        self.assertIn(old_id, created_with.values(), "the rotation came too late to test anything")
        for rid in after:
            self.assertEqual(created_with[rid], self.new_id, rid)
        # In call order: once the new key is used, the old one never is again;
        # nothing was refused for a stale key.
        keys = [call["key"] for call in stats["calls"]]
        self.assertEqual(stats["calls_dropped"], 0)
        first_new = keys.index(mask(self.new))
        self.assertNotIn(mask(KEY), keys[first_new:])
        self.assertNotIn(401, [call["status"] for call in stats["calls"]])
        self.assertEqual(self.c.call("key.test")["api_key_id"], self.new_id)
        self.assert_key_not_logged()

    def test_queued_requests_go_out_with_the_new_key(self):
        self.c.call("queue.pause")
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="q%d" % i))["id"]
               for i in range(3)]
        self.rotate("reload")
        self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        self.c.call("queue.resume")
        records = self.wait_all(ids)
        self.assertEqual({r["state"] for r in records}, {"completed"})
        remote = self.remote_by_local()
        self.assertEqual({remote[i][0]["api_key_id"] for i in ids}, {self.new_id})
        self.assertEqual({c["key"] for c in self.emu.stats()["calls"]}, {mask(self.new)})

    def test_an_unusable_new_key_keeps_the_old_one_and_the_log_says_why(self):
        old_id = self.c.call("key.test")["api_key_id"]
        cases = [("not a key", 0o600, "does not hold a key"),
                 (self.new, 0o644, "accessible by group or others"),
                 (None, None, "does not exist")]
        for content, mode, why in cases:
            with self.subTest(why):
                if content is None:
                    os.unlink(self.key_file)
                else:
                    write_key_file(self.key_file, content, mode)
                before = self.hitld.log_text()
                got = self.c.call("daemon.reload")
                self.assertTrue(got["reloaded"])
                self.assertFalse(got["key"]["loaded"])
                self.assertTrue(got["key"]["kept"])
                log = self.hitld.log_text()[len(before):]
                self.assertIn(why, log)
                self.assertIn("keeping the current one", log)
                self.assertNotIn("API key reloaded", log)
                st = self.c.call("status")
                self.assertTrue(st["key"]["loaded"])
                self.assertEqual(self.c.call("key.test")["api_key_id"], old_id)
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, ("pending", "completed"))
        self.assertEqual(self.remote_by_local()[rid][0]["api_key"], mask(KEY))
        self.assert_key_not_logged()

    def test_a_revoked_key_replaced_by_a_reload_resumes_the_queue(self):
        self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        wait_for(lambda: self.c.call("status")["key"]["valid"] is False, 15, what="the 401")
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
        self.rotate("sighup")
        self.wait_state(rid, ("pending", "completed"))
        self.assertEqual(self.remote_by_local()[rid][0]["api_key_id"], self.new_id)
        wait_for(lambda: self.c.call("status")["key"]["valid"] is True, 15, what="the new key accepted")

    def test_feedback_on_a_request_of_the_old_key_is_tried_once_and_settles(self):
        """HITL.sh takes feedback only with the key that created the request
        (docs/HITL-API.md §2.8): after a rotation it may refuse it. The daemon must
        settle (sent or failed), not retry forever."""
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "completed")
        self.rotate("sighup")
        self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        self.c.call("request.feedback", {"id": rid, "feedback": {"rating": 4}})
        rec = wait_for(lambda: (lambda r: r["feedback_state"] in ("sent", "failed") and r)(
            self.c.call("request.get", {"id": rid})), 30, what="feedback settled")
        time.sleep(1.5)
        fb_calls = [c for c in self.emu.stats()["calls"] if c["path"].endswith("/feedback")]
        self.assertEqual(len(fb_calls), 1, fb_calls)
        self.assertEqual(self.c.call("request.get", {"id": rid})["feedback_state"], rec["feedback_state"])


class OldKeyRequestsAfterRotation(RotationBase):
    EMULATOR_ARGS = ()

    def test_old_key_requests_are_polled_through_their_loop_not_one_by_one(self):
        # Five requests created with the old key, then the key rotates: the
        # new key's list does not show them (HITL.sh lists per key).
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="old %d" % i))["id"]
               for i in range(5)]
        pend = [self.wait_state(i, "pending") for i in ids]
        self.rotate()
        self.emu.ctl("POST", "/_emu/stats/reset", {})
        for r in pend:
            self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        for i in ids:
            self.assertEqual(self.wait_state(i, "completed", timeout=60)["result"], "approve")
        calls = [(c["method"], c["path"].split("?")[0]) for c in self.emu.stats()["calls"]]
        gets = [c for c in calls if c[0] == "GET" and "/api/requests/" in c[1]]
        loop_lists = [c for c in calls if c[0] == "GET" and c[1].endswith("/requests") and "/loops/" in c[1]]
        self.assertGreaterEqual(len(loop_lists), 1)
        self.assertLess(len(gets), 5, "asked for each old-key request by id: %s" % calls)


class KeyLater(HitldTestCase):
    START_DAEMON = False

    def test_a_daemon_without_a_key_queues_and_sends_once_a_key_arrives(self):
        key_file = os.path.join(self.tmp, "api.key")
        d = self.new_daemon({"api": {"key_file": key_file}}, key=None).start()
        c = d.client()
        self.addCleanup(c.close)
        st = c.call("status")
        self.assertFalse(st["key"]["loaded"])
        rid = c.call("request.submit", single_select_request(self.loop_id))["id"]
        time.sleep(1)
        self.assertEqual(c.call("request.get", {"id": rid})["state"], "queued")
        self.assertEqual(self.emu.stats()["calls_total"], 0)
        write_key_file(key_file, KEY)
        d.proc.send_signal(signal.SIGHUP)
        self.wait_state(rid, "pending", client=c)
        self.assertTrue(c.call("status")["key"]["loaded"])


if __name__ == "__main__":
    main()
