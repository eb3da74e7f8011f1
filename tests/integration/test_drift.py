#!/usr/bin/env python3
# run-suite: about 45 s
"""hitld against the emulator's drift switches for errors that are not about
one request (docs/HITL-API.md §5): an inactive key (as 401 and as 403), a
spent monthly quota, and loop endpoints that answer 404, 410 or a redirect.

For each: requests queued while the switch is on stay queued (the count
before equals the count after, nothing fails, nothing is created), `status`
names the reason, and once the switch is turned off the queue drains, each
request created exactly once. The status-word drifts (alternative words, the
flat GET shape) are in test_api2026.py.
"""
import json
import os
import subprocess

from harness import BUILD, HitldTestCase, main, single_select_request, wait_for

N = 3


class DriftTestCase(HitldTestCase):
    DRIFT = {}
    OFF = {}

    def drift(self, settings):
        self.emu.ctl("POST", "/_emu/drift", settings)

    def queue(self):
        return self.c.call("status")["queue"]

    def reason(self, st):
        """What status says holds the creates back, as text, or None."""
        api = st["api"]
        if api.get("creates_paused"):
            return json.dumps(api["creates_paused"])
        if st["key"].get("valid") is False:
            return json.dumps(st["key"])
        return None

    def run_drift(self, words):
        self.c.call("queue.pause")
        self.drift(self.DRIFT)
        rids = [self.c.call("request.submit", single_select_request(self.loop_id, text="Drift %d?" % i))["id"]
                for i in range(N)]
        before = self.queue()
        self.assertEqual(before["queued"], N)
        self.c.call("queue.resume")

        # The first create meets the drift; the daemon stops and says why.
        st = wait_for(lambda: (lambda s: self.reason(s) and s)(self.c.call("status")), 30,
                      interval=0.2, what="status to name why creates are held back")
        reason = self.reason(st).lower()
        self.assertTrue(any(w in reason for w in words), "status says %r, wanted one of %s" % (reason, words))
        # hitlctl status says it in words too.
        out = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "status"],
                             capture_output=True, text=True, timeout=30).stdout
        self.assertTrue(any(w in out.lower() for w in words), out)
        self.assertRegex(out, r"Creates: +PAUSED|Key: +REFUSED", out)
        # Let it try again while the drift holds: still nothing lost.
        seen = len(self.emu.api_calls())
        wait_for(lambda: len(self.emu.api_calls()) > seen, 30, interval=0.2, what="another call (a probe)")
        after = self.queue()
        self.assertEqual((after["queued"] + after["submitting"], after["failed"], after["timeout"]),
                         (N, 0, 0), after)
        for rid in rids:
            r = self.c.call("request.get", {"id": rid})
            self.assertIn(r["state"], ("queued", "submitting"), r)
        self.assertEqual([r for r in self.emu.requests() if r.get("hitld_id") in rids], [])

        # The switch goes off: the queue drains, each request created once.
        self.drift(self.OFF)
        for rid in rids:
            self.wait_state(rid, "pending", timeout=90)
        for rid in rids:
            self.assertEqual(len(self.remote_of(rid)), 1, "request %s created more than once" % rid)
        wait_for(lambda: self.reason(self.c.call("status")) is None, 30, interval=0.2,
                 what="status to clear the reason")
        self.assertEqual(self.queue()["failed"], 0)


class KeyInactive401(DriftTestCase):
    DRIFT = {"key_inactive": 401}
    OFF = {"key_inactive": None}

    def test_an_inactive_key_as_401_keeps_the_queue(self):
        self.run_drift(["inactive"])


class KeyInactive403(DriftTestCase):
    DRIFT = {"key_inactive": 403}
    OFF = {"key_inactive": None}

    def test_an_inactive_key_as_403_keeps_the_queue(self):
        self.run_drift(["inactive"])


class QuotaExhausted(DriftTestCase):
    DRIFT = {"quota_exhausted": True}
    OFF = {"quota_exhausted": False}

    def test_a_spent_monthly_quota_keeps_the_queue(self):
        self.run_drift(["limit", "quota"])


class LoopEndpoints404(DriftTestCase):
    DRIFT = {"loop_endpoints": 404}
    OFF = {"loop_endpoints": None}

    def test_loop_endpoints_answering_404_keep_the_queue(self):
        self.run_drift(["404", "endpoint"])


class LoopEndpoints410(DriftTestCase):
    DRIFT = {"loop_endpoints": 410}
    OFF = {"loop_endpoints": None}

    def test_loop_endpoints_answering_410_keep_the_queue(self):
        self.run_drift(["410", "endpoint", "retired"])


class LoopEndpoints301(DriftTestCase):
    DRIFT = {"loop_endpoints": 301}
    OFF = {"loop_endpoints": None}

    def test_loop_endpoints_answering_a_redirect_keep_the_queue(self):
        self.run_drift(["301", "redirect", "endpoint"])


if __name__ == "__main__":
    main()
