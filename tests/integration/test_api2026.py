#!/usr/bin/env python3
"""hitld against the HITL.sh of 2026 (docs/HITL-API.md): a strict writer
(documented fields and ranges only), a tolerant reader (alternative status
words and shapes), the newer response and content types end to end through
hitlctl, and local validation that refuses what would cost a create call."""
import json
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


if __name__ == "__main__":
    main()
