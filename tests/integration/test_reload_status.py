#!/usr/bin/env python3
"""Saying what happened (issue 12 item 14, in part):

- `daemon.reload` says whether the API key was loaded again and, when the
  new one was refused, why; `hitlctl reload` then exits non-zero and says so
  instead of printing success.
- `hitlctl status` labels as "as HITL.sh reported" only what HITL.sh
  reported (the window and limit); the count is hitld's own, "estimated".
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, HitldTestCase, main  # noqa: E402
from sec_util import write_key_file  # noqa: E402
from test_rotation import RotationBase  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
EXIT_REMOTE = 6


def hitlctl(sock, *args):
    return subprocess.run([HITLCTL, "--socket", sock] + list(args), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


class ReloadReply(RotationBase):
    def test_a_refused_new_key_is_in_the_reply_and_hitlctl_fails(self):
        write_key_file(self.key_file, self.new, 0o644)
        got = self.c.call("daemon.reload")
        self.assertTrue(got["reloaded"])              # the configuration was
        self.assertFalse(got["key"]["loaded"], got)   # the key was not
        self.assertTrue(got["key"]["kept"], got)
        self.assertIn("group or others", got["key"]["error"])

        p = hitlctl(self.hitld.socket, "reload")
        self.assertEqual(p.returncode, EXIT_REMOTE, p.stdout + p.stderr)
        self.assertIn("refused", p.stderr)
        self.assertIn("group or others", p.stderr)
        self.assertIn("previous key", p.stderr)

        write_key_file(self.key_file, self.new, 0o600)
        got = self.c.call("daemon.reload")
        self.assertEqual(got["key"], {"loaded": True, "source": "key_file"})
        p = hitlctl(self.hitld.socket, "reload")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("API key loaded from the key file", p.stdout)

    def test_a_key_that_cannot_be_read_again_is_kept_without_failing(self):
        # HITL_API_KEY is read once, at start: a reload keeps it, which is no error.
        d = self.new_daemon(name="envkey", key=KEY).start()
        c = d.client()
        self.addCleanup(c.close)
        got = c.call("daemon.reload")
        self.assertFalse(got["key"]["loaded"])
        self.assertTrue(got["key"]["kept"])
        p = hitlctl(d.socket, "reload")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("previous key stays", p.stdout)


class StatusLabels(HitldTestCase):
    # One long window, so that it cannot roll over between the calls and the status.
    WINDOW = 3600
    CONFIG = {"budget": {"window_s": 3600}}

    def budget_line(self):
        p = hitlctl(self.hitld.socket, "status")
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l for l in p.stdout.splitlines() if l.startswith("Budget:")][0]

    def test_the_count_is_labelled_an_estimate_and_only_the_window_as_reported(self):
        line = self.budget_line()
        self.assertNotIn("reported", line)        # nothing heard from HITL.sh yet
        self.assertIn("estimated", line)

        self.c.call("key.test")                   # HITL.sh's headers: window and limit
        # Another user of the key spends 5 calls: HITL.sh would now report 6 used,
        # hitld counts 1, and must not pass its count off as HITL.sh's.
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 5})
        self.assertEqual(self.c.call("status")["budget"]["source"], "server")
        line = self.budget_line()
        self.assertRegex(line, r"^Budget:\s+1/100 calls used this hour, 99 left")
        self.assertRegex(line, r"estimated")
        self.assertNotRegex(line, r"left[^\[]*\[as HITL\.sh reported\]")
        self.assertRegex(line, r"window and limit as HITL\.sh reported")


if __name__ == "__main__":
    main()
