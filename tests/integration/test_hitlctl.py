#!/usr/bin/env python3
# run-suite: about 35 s
"""hitlctl against the real daemon and the HITL.sh emulator: every verb, its
human and --json output, exit codes, and the errors a user meets. Each check
is verified against the daemon's or the emulator's state, not only hitlctl's
word. Runs HITLD_BUILD's hitlctl (so the ASan build tests its own client).
"""
import json
import shutil
import os
import pty
import queue
import re
import signal
import socket
import select
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, KEY, SLOW, HitldTestCase, main, wait_for)  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
ID_RE = r"^r_[0-9A-Z]{26}$"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPLETION = os.path.join(ROOT, "contrib", "bash-completion", "hitlctl")
OTHER_UID = 40011

EXIT_MISMATCH, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_TIMEOUT, EXIT_REMOTE = 1, 2, 3, 4, 5, 6


def drop_to(uid):
    def fn():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return fn


class Lines:
    """Reads a child's stdout on a thread, so a test can wait for a line with a timeout."""

    def __init__(self, stream):
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.t.start()

    def _run(self, stream):
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout=30):
        try:
            line = self.q.get(timeout=timeout * SLOW)
        except queue.Empty:
            raise AssertionError("no line within %ss" % timeout)
        if line is None:
            raise AssertionError("the process closed its output")
        return line


class CtlTestCase(HitldTestCase):
    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if k != "HITLD_SOCKET"}
        env["LC_ALL"] = "C.UTF-8"
        env.update(extra)
        return env

    def hitlctl_for(self, uid):
        """The hitlctl to run: as another uid, a copy in the test's own
        directory, since the build tree may sit below a directory that uid
        cannot enter (a clone in a 0700 temp dir, say)."""
        if uid is None:
            return HITLCTL
        copy = os.path.join(self.tmp, "hitlctl")
        if not os.path.exists(copy):
            shutil.copy2(HITLCTL, copy)
            os.chmod(copy, 0o755)
        return copy

    def ctl(self, *args, socket_path=None, input=None, env=None, uid=None, timeout=60):
        """Runs hitlctl with --socket (unless socket_path is False) and returns the CompletedProcess."""
        cmd = [self.hitlctl_for(uid)]
        if socket_path is not False:
            cmd += ["--socket", socket_path or self.hitld.socket]
        cmd += [str(a) for a in args]
        return subprocess.run(cmd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout * SLOW,
                              env=env or self.env(), preexec_fn=drop_to(uid) if uid is not None else None)

    def ok(self, *args, **kw):
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, "hitlctl %s: rc %d\nstdout: %s\nstderr: %s"
                         % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def ctl_json(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def spawn(self, *args, uid=None):
        p = subprocess.Popen([self.hitlctl_for(uid), "--socket", self.hitld.socket] + [str(a) for a in args],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=self.env(), preexec_fn=drop_to(uid) if uid is not None else None)
        self.addCleanup(self._reap, p)
        return p

    def _reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def submit_select(self, *extra, text="Deploy build 4812?"):
        p = self.ok("submit", "--loop", self.loop_id, "--option", "approve=Approve", "--option", "reject=Reject",
                    "--default", "reject", "--timeout", "15m", *extra, text)
        rid = p.stdout.strip()
        self.assertRegex(rid, ID_RE)
        return rid

    def remote(self, rid):
        got = self.emu.requests(hitld_id=rid)
        self.assertEqual(len(got), 1, got)
        return got[0]

    def api_get(self, path):
        req = urllib.request.Request(self.emu.base + "/v1/api" + path, headers={"Authorization": "Bearer " + KEY})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def auto_review(self, **rules):
        """Emulated reviewers answer requests whose text contains a key with its answer."""
        self.emu.ctl("POST", "/_emu/auto-review", {
            "delay_s": 0, "default": "none",
            "rules": [{"match": k, "response_data": v} for k, v in rules.items()]})


class NewUser(CtlTestCase):
    """The README's path: status, loops, a loop of one's own, submit, wait, feedback, cancel."""

    def test_a_new_user_can_do_everything_from_the_help(self):
        help_text = self.ok("--help").stdout
        for verb in ("status", "submit", "ask", "get", "wait", "list", "cancel", "feedback", "watch",
                     "loops", "key", "pause", "resume", "reload"):
            self.assertRegex(help_text, r"\n  %s " % verb)
        for code in range(0, 7):
            self.assertRegex(help_text, r"\b%d  " % code)

        st = self.ok("status").stdout
        self.assertIn("Budget:", st)
        self.assertIn("100 left", st)
        self.assertIn("Key:", st)

        loops = self.ok("loops", "list").stdout
        self.assertRegex(loops, r"^ID\s+NAME\s+MEMBERS")
        self.assertIn(self.loop_id, loops)

        new_loop = self.ok("loops", "create", "--name", "Deploys", "--icon", "rocket",
                           "--description", "Production deploys").stdout.strip()
        self.assertRegex(new_loop, "^[0-9a-f]{24}$")
        status, body = self.api_get("/loops/" + new_loop)
        self.assertEqual(status, 200)
        self.assertEqual(body["data"]["loop"]["name"], "Deploys")
        self.assertEqual(body["data"]["loop"]["description"], "Production deploys")

        rid = self.submit_select()
        self.assertEqual(self.wait_state(rid, "pending")["state"], "pending")
        remote = self.remote(rid)
        self.assertEqual(remote["response_type"], "single_select")
        self.assertEqual(remote["response_config"]["options"][0]["value"], "approve")
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        out = self.ok("wait", rid, "--timeout", "60s").stdout
        self.assertRegex(out, r"^%s\s+completed\s+approve" % rid)

        fb = self.ok("feedback", rid, "--rating", "5", "--comment", "quick and right").stdout
        self.assertIn("feedback queued", fb)
        wait_for(lambda: self.remote(rid)["feedback"], 30, interval=0.2, what="feedback at HITL.sh")
        self.assertEqual(self.remote(rid)["feedback"]["feedback"], {"rating": 5, "comment": "quick and right"})

        self.ok("pause")
        other = self.submit_select(text="Deploy build 4813?")
        out = self.ok("cancel", other).stdout
        self.assertRegex(out, r"^%s\s+cancelled" % other)
        self.assertEqual(self.c.call("request.get", {"id": other})["state"], "cancelled")
        self.ok("resume")
        time.sleep(1)
        self.assertEqual(self.emu.requests(hitld_id=other), [])  # never reached HITL.sh

        listed = self.ok("list", "--all").stdout
        self.assertRegex(listed, r"^ID\s+STATE\s+PRIORITY\s+CREATED\s+RESULT\s+TEXT\n")
        self.assertRegex(listed, r"%s\s+completed\s+medium\s+.*approve\s+Deploy build 4812\?" % rid)
        self.assertRegex(listed, r"%s\s+cancelled" % other)

    @__import__("unittest").skipUnless(subprocess.run(["sh", "-c", "command -v man"], capture_output=True).returncode == 0,
                                       "man is not installed")
    def test_man_page_renders_every_verb_and_exit_code(self):
        p = subprocess.run(["man", "-l", os.path.join(ROOT, "docs", "hitlctl.1")], capture_output=True, text=True,
                           timeout=60, env=self.env(MANWIDTH="120", MANPAGER="cat", PAGER="cat"))
        self.assertEqual(p.returncode, 0, p.stderr)
        for verb in ("status", "usage", "submit", "ask", "get", "wait", "list", "cancel", "feedback", "watch",
                     "loops list", "loops create", "loops update", "loops delete", "loops members",
                     "loops remove-member", "key test", "pause", "resume", "reload"):
            self.assertRegex(p.stdout, r"(?m)^   %s\b|^       %s\b" % (verb, verb), verb)
        for code in range(7):
            self.assertRegex(p.stdout, r"(?m)^       %d\s" % code)

    def test_every_verb_has_help(self):
        for verb in ("status", "usage", "submit", "ask", "get", "wait", "list", "cancel", "feedback", "watch", "loops",
                     "key", "pause", "resume", "reload", "version"):
            with self.subTest(verb):
                p = self.ok(verb, "--help")
                self.assertIn("Usage: hitlctl " + verb, p.stdout)
                self.assertIn("Exit status:", p.stdout)
        self.assertIn("--expect", self.ok("help", "ask").stdout)


class Ask(CtlTestCase):
    ASK = ["ask", "--option", "approve", "--option", "reject", "--default", "reject", "--timeout", "15m"]

    def ask_shell(self, text, expect="approve"):
        """`hitlctl ask … --expect approve TEXT && echo deployed`, as a user writes it."""
        cmd = " ".join([HITLCTL, "--socket", self.hitld.socket] + self.ASK[:1] + ["--loop", self.loop_id]
                       + self.ASK[1:] + ["--expect", expect, "'%s'" % text]) + " && echo deployed"
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=90 * SLOW,
                              stdin=subprocess.DEVNULL, env=self.env())

    def test_expect_approve_when_approved_exits_0_and_deploys(self):
        self.auto_review(**{"GO-4812": {"selected_value": "approve"}})
        p = self.ask_shell("Deploy build GO-4812?")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "approve\ndeployed\n")
        self.assertEqual(p.stderr, "")  # not a terminal: no live line
        (rec,) = self.c.call("request.list", {"state": ["completed"]})["requests"]
        self.assertEqual(rec["result"], "approve")
        self.assertEqual(self.remote(rec["id"])["status"], "completed")

    def test_expect_approve_when_rejected_exits_1_and_does_not_deploy(self):
        self.auto_review(**{"NO-4812": {"selected_value": "reject"}})
        p = self.ask_shell("Deploy build NO-4812?")
        self.assertEqual(p.returncode, EXIT_MISMATCH, p.stderr)
        self.assertEqual(p.stdout, "reject\n")

    def test_timeout_default_is_printed_and_judged_by_expect(self):
        want_approve = self.spawn("ask", "--loop", self.loop_id, *self.ASK[1:-2], "--timeout", "2m",
                                  "--expect", "approve", "Deploy A?")
        want_reject = self.spawn("ask", "--loop", self.loop_id, *self.ASK[1:-2], "--timeout", "2m",
                                 "--expect", "reject", "Deploy B?")
        wait_for(lambda: len(self.emu.requests(status="pending")) == 2, 30, what="both asks at HITL.sh")
        self.emu.ctl("POST", "/_emu/clock/advance", {"seconds": 300})
        out_a, err_a = want_approve.communicate(timeout=60 * SLOW)
        out_b, err_b = want_reject.communicate(timeout=60 * SLOW)
        self.assertEqual((want_approve.returncode, out_a), (EXIT_MISMATCH, "reject\n"), err_a)
        self.assertEqual((want_reject.returncode, out_b), (0, "reject\n"), err_b)
        for rec in self.c.call("request.list", {})["requests"]:
            self.assertEqual((rec["state"], rec["result_source"]), ("timeout", "default"))

    def test_json_prints_the_final_wait_reply(self):
        self.auto_review(**{"J-1": {"selected_value": "approve"}})
        p = self.ok("--json", "ask", "--loop", self.loop_id, *self.ASK[1:], "J-1")
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 1)
        got = json.loads(lines[0])
        self.assertTrue(got["done"])
        self.assertEqual(got["request"]["result"], "approve")
        self.assertEqual(got["request"], self.c.call("request.get", {"id": got["request"]["id"]}))

    def test_usage_errors_are_exit_2_and_send_nothing(self):
        cases = [
            (["ask", "--loop", self.loop_id, "--type", "single_select", "--default", "x", "Q?"], "--option"),
            (["ask", "--loop", self.loop_id, "--option", "a", "--option", "b", "Q?"], "--default"),
            (["ask", "--option", "a", "--default", "a", "Q?"], "--loop"),
            (["ask", "--loop", self.loop_id, "--option", "a", "--default", "a", "--timeout", "soon", "Q?"], "--timeout"),
            (["ask", "--loop", self.loop_id, "--option", "a", "--default", "a"], "no request text"),
            (["ask", "--loop", self.loop_id, "--option", "a", "--default", "a", "--context", "[1]", "Q?"], "--context"),
            (["ask", "--loop", self.loop_id, "--type", "rating", "--option", "a", "--default", "3", "Q?"], "--option"),
            (["ask", "--loop", self.loop_id, "--option", "a", "--default", "a", "--bogus", "Q?"], "--bogus"),
            (["submit", "--loop", self.loop_id, "--option", "a", "--default", "a", "--expect", "a", "Q?"], "--expect"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                p = self.ctl(*args)
                self.assertEqual(p.returncode, EXIT_USAGE, p.stderr)
                self.assertIn(needle, p.stderr)
                self.assertEqual(p.stdout, "")
        self.assertEqual(self.c.call("request.list", {})["requests"], [])

    def test_daemon_validation_errors_name_the_flag(self):
        p = self.ctl("ask", "--loop", self.loop_id, "--option", "approve", "--option", "reject",
                     "--default", "maybe", "Q?")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--default", p.stderr)
        p = self.ctl("submit", "--loop", self.loop_id, "--option", "a", "--default", "a", "--timeout", "2d", "Q?")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--deferred", p.stderr)
        p = self.ctl("submit", "--loop", "not-a-loop", "--option", "a", "--default", "a", "Q?")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--loop", p.stderr)

    def test_on_a_terminal_a_live_line_shows_state_time_left_and_budget(self):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execve(HITLCTL, [HITLCTL, "--socket", self.hitld.socket, "ask", "--loop", self.loop_id]
                          + self.ASK[1:] + ["--expect", "approve", "Live?"], self.env())
            finally:
                os._exit(127)
        self.addCleanup(lambda: os.close(fd))
        out = b""

        def read_some(timeout):
            nonlocal out
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                return False
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child is gone and the pty closed
                return False
            out += data
            return bool(data)

        wait_for(lambda: read_some(0.2) and b"left" in out and b"budget" in out, 30, what="the live line")
        self.assertRegex(out.decode(), r"\r\x1b\[K(queued|submitting|pending)[^\r]* · 1[45]m \d+s left · budget \d+/100")
        (remote,) = wait_for(lambda: self.emu.requests(status="pending"), 30, what="the ask at HITL.sh")
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        deadline = time.monotonic() + 30 * SLOW
        while read_some(1) or time.monotonic() < deadline:
            if b"approve\r\n" in out:
                break
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        # The live line was erased before the answer.
        self.assertRegex(out.decode(), r"\r\x1b\[Kapprove\r\n$")

    def test_ask_keeps_waiting_across_a_daemon_restart(self):
        asker = self.spawn("ask", "--loop", self.loop_id, *self.ASK[1:], "--expect", "approve", "Restart?")
        wait_for(lambda: len(self.emu.requests(status="pending")) == 1, 30, what="the ask at HITL.sh")
        self.c.close()
        self.hitld.stop()
        self.hitld.start()
        self.c = self.hitld.client()
        (remote,) = self.emu.requests(status="pending")
        self.emu.respond(remote["id"], {"selected_value": "approve"})
        out, err = asker.communicate(timeout=90 * SLOW)
        self.assertEqual((asker.returncode, out), (0, "approve\n"), err)


class Submit(CtlTestCase):
    def test_every_flag_reaches_the_record(self):
        rid = self.ok("submit", "--loop", self.loop_id, "--type", "rating", "--min", "1", "--max", "10",
                      "--step", "0.5", "--default", "5", "--priority", "critical", "--timeout", "15m",
                      "--context", '{"build": 4812}', "--image-url", "https://example.com/shot.png",
                      "--callback-url", "http://127.0.0.1:9/hook", "--ref", "deploy-4812", "--required",
                      "--text", "Rate this screenshot").stdout.strip()
        self.assertRegex(rid, ID_RE)
        rec = self.ctl_json("get", rid)
        self.assertEqual(rec["response_type"], "rating")
        self.assertEqual(rec["response_config"], {"scale_min": 1, "scale_max": 10, "scale_step": 0.5,
                                                  "required": True})
        self.assertEqual(rec["default_response"], 5)
        self.assertEqual(rec["priority"], "critical")
        self.assertEqual(rec["timeout_seconds"], 900)
        self.assertEqual(rec["processing_type"], "time-sensitive")
        self.assertEqual(rec["context"], {"build": 4812})
        self.assertEqual(rec["type"], "image")
        self.assertEqual(rec["image_url"], "https://example.com/shot.png")
        self.assertEqual(rec["callback_url"], "http://127.0.0.1:9/hook")
        self.assertEqual(rec["client_ref"], "deploy-4812")
        self.assertEqual(rec["request_text"], "Rate this screenshot")
        self.wait_state(rid, "pending")
        remote = self.remote(rid)
        self.assertEqual(remote["context"]["build"], 4812)
        self.assertEqual(remote["priority"], "critical")
        # The same --ref again: the same request, nothing new.
        again = self.ctl("submit", "--loop", self.loop_id, "--type", "rating", "--min", "1", "--max", "10",
                         "--step", "0.5", "--default", "5", "--priority", "critical", "--timeout", "15m",
                         "--context", '{"build": 4812}', "--image-url", "https://example.com/shot.png",
                         "--callback-url", "http://127.0.0.1:9/hook", "--ref", "deploy-4812", "--required",
                         "--text", "Rate this screenshot")
        self.assertEqual((again.returncode, again.stdout.strip()), (0, rid), again.stderr)
        self.assertIn("--ref deploy-4812", again.stderr)
        self.assertEqual(self.ctl_json("get", "--ref", "deploy-4812")["id"], rid)

    def test_processing_type_follows_timeout_and_deferred(self):
        self.ok("pause")
        plain = self.submit_plain()
        timed = self.submit_plain("--timeout", "90s")
        deferred = self.submit_plain("--timeout", "1d", "--deferred")
        # No timeout: none is sent, HITL.sh's own 30-day default applies.
        self.assertEqual(self.ctl_json("get", plain)["processing_type"], "deferred")
        self.assertIsNone(self.ctl_json("get", plain)["timeout_seconds"])
        self.assertIsNone(self.ctl_json("get", plain)["deadline_at"])
        self.assertEqual((self.ctl_json("get", timed)["processing_type"], self.ctl_json("get", timed)["timeout_seconds"]),
                         ("time-sensitive", 90))
        self.assertEqual((self.ctl_json("get", deferred)["processing_type"],
                          self.ctl_json("get", deferred)["timeout_seconds"]), ("deferred", 86400))
        # Longer than a day is refused, whatever the processing type.
        p = self.ctl("submit", "--loop", self.loop_id, "--option", "a", "--default", "a", "--timeout", "2d",
                     "--deferred", "Q?")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("timeout_seconds must be between 60 and 86400", p.stderr)
        self.assertIn("--timeout", p.stderr)

    def submit_plain(self, *extra):
        return self.ok("submit", "--loop", self.loop_id, "--option", "a", "--default", "a", *extra, "Q?").stdout.strip()

    def test_text_from_stdin_file_and_params_with_flags_on_top(self):
        self.ok("pause")
        from_stdin = self.ok("submit", "--loop", self.loop_id, "--type", "text", "--max", "200",
                             "--default", "none", input="Describe the outage\n").stdout.strip()
        rec = self.ctl_json("get", from_stdin)
        self.assertEqual(rec["request_text"], "Describe the outage")
        self.assertEqual(rec["response_config"], {"max_length": 200})

        path = os.path.join(self.tmp, "text.md")
        with open(path, "w") as f:
            f.write("# Release notes\n\nShip it?\n")
        from_file = self.ok("submit", "--loop", self.loop_id, "--option", "yes", "--option", "no",
                            "--default", "no", "--text-file", path).stdout.strip()
        self.assertEqual(self.ctl_json("get", from_file)["request_text"], "# Release notes\n\nShip it?")

        params = os.path.join(self.tmp, "params.json")
        with open(params, "w") as f:
            json.dump({"loop_id": self.loop_id, "request_text": "From a file", "response_type": "multi_select",
                       "response_config": {"options": ["Spam", "Misleading", "Fine"], "max_selections": 2},
                       "default_response": ["Fine"], "priority": "low"}, f)
        raw = self.ok("submit", "--params", params, "--priority", "high").stdout.strip()
        rec = self.ctl_json("get", raw)
        self.assertEqual((rec["request_text"], rec["response_type"], rec["priority"], rec["default_response"]),
                         ("From a file", "multi_select", "high", ["Fine"]))

        multi = self.ok("submit", "--loop", self.loop_id, "--type", "multi_select", "--option", "a",
                        "--option", "b", "--option", "c", "--max", "2", "--default", "a,b", "Q?").stdout.strip()
        rec = self.ctl_json("get", multi)
        self.assertEqual((rec["default_response"], rec["response_config"]["max_selections"]), (["a", "b"], 2))

    def test_json_submit_prints_the_daemon_reply(self):
        self.ok("pause")
        got = self.ctl_json("submit", "--loop", self.loop_id, "--option", "a", "--default", "a", "Q?")
        self.assertRegex(got["id"], ID_RE)
        self.assertEqual((got["state"], got["position"], got["duplicate"]), ("queued", 1, False))


class Requests(CtlTestCase):
    def test_get_shows_the_record_and_json_is_the_daemon_record(self):
        rid = self.submit_select("--context", '{"build": 4812}')
        self.wait_state(rid, "pending")
        human = self.ok("get", rid).stdout
        self.assertRegex(human, r"id:\s+%s" % rid)
        self.assertRegex(human, r"state:\s+pending")
        self.assertRegex(human, r"options:\s+approve \(Approve\), reject \(Reject\)")
        self.assertRegex(human, r"default:\s+reject")
        self.assertRegex(human, r"deadline:\s+\S+ \(in 1[45]m")
        self.assertEqual(self.ctl_json("get", rid), self.c.call("request.get", {"id": rid}))

    def test_wait_timeout_exits_5_and_spends_nothing(self):
        self.ok("pause")
        rid = self.submit_select()
        t0 = time.monotonic()
        p = self.ctl("wait", rid, "--timeout", "1s")
        self.assertEqual(p.returncode, EXIT_TIMEOUT, p.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertIn("still queued", p.stderr)
        p = self.ctl("--json", "wait", rid, "--timeout", "0")
        self.assertEqual(p.returncode, EXIT_TIMEOUT)
        self.assertFalse(json.loads(p.stdout)["done"])
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_wait_on_a_final_request_returns_at_once(self):
        self.ok("pause")
        rid = self.submit_select()
        self.ok("cancel", rid)
        p = self.ctl("wait", rid)
        self.assertEqual(p.returncode, EXIT_REMOTE)  # final, but no answer: like ask
        self.assertRegex(p.stdout, r"^%s\s+cancelled" % rid)
        self.assertIn("cancelled before anyone answered", p.stderr)
        p = self.ctl("--json", "wait", rid)
        self.assertEqual(p.returncode, EXIT_REMOTE)
        self.assertTrue(json.loads(p.stdout)["done"])

    def test_list_filters_pages_and_quiet(self):
        self.ok("pause")
        ids = [self.submit_select(text="n%d" % i) for i in range(4)]
        self.ok("cancel", ids[0])
        self.assertEqual(self.ok("list", "-q").stdout.split(), ids[:0:-1])
        self.assertEqual(self.ok("list", "-q", "--all").stdout.split(), ids[::-1])
        self.assertEqual(self.ok("list", "-q", "--state", "cancelled").stdout.split(), ids[:1])
        self.assertEqual(self.ok("list", "-q", "--all", "--limit", "2").stdout.split(), ids[::-1][:2])
        self.assertEqual(self.ok("list", "-q", "--loop", "65f1234567890abcdef12345").stdout, "")
        pages = [json.loads(line) for line in self.ok("--json", "list", "--all").stdout.splitlines()]
        self.assertEqual([r["id"] for r in pages[0]["requests"]], ids[::-1])
        self.assertIsNone(pages[0]["next_cursor"])
        p = self.ctl("list", "--state", "done")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--state done", p.stderr)

    def test_cancel_pending_asks_hitl_and_json_shows_the_record(self):
        rid = self.submit_select()
        self.wait_state(rid, "pending")
        got = self.ctl_json("cancel", rid)
        self.assertTrue(got["cancel_requested"])
        self.wait_state(rid, "cancelled")
        self.assertEqual(self.remote(rid)["status"], "cancelled")
        p = self.ctl("cancel", rid)
        self.assertEqual(p.returncode, EXIT_REMOTE)
        self.assertIn("already final", p.stderr)

    def test_feedback_errors(self):
        self.ok("pause")
        rid = self.submit_select()
        p = self.ctl("feedback", rid, "--rating", "5")
        self.assertEqual(p.returncode, EXIT_REMOTE)  # not completed
        self.assertIn("completed", p.stderr)
        p = self.ctl("feedback", rid)
        self.assertEqual(p.returncode, EXIT_USAGE)
        p = self.ctl("feedback", rid, "--rating", "9")
        self.assertEqual(p.returncode, EXIT_USAGE)
        self.assertIn("--rating", p.stderr)

    def test_watch_prints_one_line_per_change_until_interrupted(self):
        human = self.spawn("watch")
        raw = self.spawn("--json", "watch")
        human_lines, raw_lines = Lines(human.stdout), Lines(raw.stdout)
        # Both are watching once the daemon has counted their connections' watches.
        time.sleep(0.5 * SLOW)
        self.ok("pause")
        rid = self.submit_select()
        self.ok("cancel", rid)
        msgs = [json.loads(raw_lines.get()) for _ in range(2)]
        self.assertEqual([m["method"] for m in msgs], ["request.changed"] * 2)
        self.assertEqual([m["params"]["request"]["state"] for m in msgs], ["queued", "cancelled"])
        self.assertEqual(msgs[1]["params"]["request"]["id"], rid)
        first, second = human_lines.get(), human_lines.get()
        self.assertRegex(first, r"^\d\d:\d\d:\d\d  %s\s+queued\s+Deploy build 4812\?" % rid)
        self.assertRegex(second, r"^\d\d:\d\d:\d\d  %s\s+cancelled" % rid)
        for p in (human, raw):
            p.send_signal(signal.SIGINT)
            p.wait(10 * SLOW)
            self.assertEqual(p.returncode, 0)

    def test_watch_cuts_a_long_answer_as_list_does(self):
        human = self.spawn("watch")
        lines = Lines(human.stdout)
        time.sleep(0.5 * SLOW)
        rid = self.ok("submit", "--loop", self.loop_id, "--type", "text", "--max", "2000", "--default", "none",
                      input="Describe the outage\n").stdout.strip()
        rec = self.wait_state(rid, "pending")
        # A reviewer's escape sequence too: shown escaped, never sent to the terminal.
        answer = "The \x1b[31moutage began when " + "the cache filled up " * 30 + "\nsecond line\tEND"
        self.emu.respond(rec["remote_id"], answer)
        self.wait_state(rid, "completed")
        while True:
            line = lines.get().rstrip("\n")
            if " completed " in line:
                break
        # The answer in at most 20 columns, as in `hitlctl list`, on one line,
        # and the request's text still after it.
        self.assertRegex(line, r"^\d\d:\d\d:\d\d  %s\s+completed\s+The \\x1B\[31moutage.{0,4}…  Describe the outage$" % rid)
        self.assertNotIn("END", line)
        self.assertNotIn("\x1b", line)
        self.assertEqual(self.ctl_json("get", rid)["result"], answer)
        human.send_signal(signal.SIGINT)
        human.wait(10 * SLOW)
        self.assertEqual(human.returncode, 0)


class Errors(CtlTestCase):
    def test_missing_daemon_is_exit_3_with_cause_and_fix(self):
        missing = os.path.join(self.tmp, "nothing-here.sock")
        p = self.ctl("status", socket_path=missing)
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("cannot connect to %s: no such socket" % missing, p.stderr)
        self.assertIn("systemctl start hitld.socket", p.stderr)

        dead = os.path.join(self.tmp, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()
        p = self.ctl("list", socket_path=dead)
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("connection refused", p.stderr)

    @__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
    def test_socket_permission_denied_names_the_group(self):
        path = os.path.join(self.tmp, "private.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(path)
        s.listen(1)
        os.chmod(path, 0o600)
        p = self.ctl("status", socket_path=path, uid=OTHER_UID)
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("permission denied", p.stderr)
        self.assertIn("group hitl", p.stderr)

    def test_wrong_id_is_exit_4(self):
        for args in (["get", "r_01JD00000000000000000000ZZ"], ["wait", "r_01JD00000000000000000000ZZ"],
                     ["cancel", "r_nope"], ["feedback", "r_nope", "--rating", "3"], ["get", "--ref", "never"]):
            with self.subTest(args=args):
                p = self.ctl(*args)
                self.assertEqual(p.returncode, EXIT_NOT_FOUND, p.stderr)
                self.assertIn("no such request", p.stderr)
        p = self.ctl("--json", "get", "r_nope")
        self.assertEqual(p.returncode, EXIT_NOT_FOUND)
        self.assertEqual(json.loads(p.stdout)["error"]["code"], -32001)

    @__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
    def test_another_users_request_is_exit_4_and_admin_verbs_are_refused(self):
        rid = self.submit_select()
        for args in (["get", rid], ["wait", rid, "--timeout", "1"], ["cancel", rid], ["feedback", rid, "--rating", "1"]):
            with self.subTest(args=args):
                p = self.ctl(*args, uid=OTHER_UID)
                self.assertEqual(p.returncode, EXIT_NOT_FOUND, p.stderr)
                self.assertIn("no such request", p.stderr)
        self.assertEqual(self.ctl("list", "-q", "--all", uid=OTHER_UID).stdout, "")
        self.assertNotEqual(self.c.call("request.get", {"id": rid})["state"], "cancelled")
        for verb in (["pause"], ["resume"], ["reload"], ["key", "test"]):
            with self.subTest(verb=verb):
                p = self.ctl(*verb, uid=OTHER_UID)
                self.assertEqual(p.returncode, EXIT_NOT_FOUND, p.stderr)
                self.assertIn("permission denied", p.stderr)
        st = self.ok("status", uid=OTHER_UID).stdout
        self.assertIn("(your requests)", st)
        self.assertFalse(self.c.call("status")["paused"])

    def test_bad_flags_and_verbs_are_exit_2(self):
        for args in (["frob"], ["status", "extra"], ["list", "--limit", "x"], ["get"], ["wait", "a", "b"],
                     ["--bogus", "status"], ["loops"], ["loops", "frob"], ["loops", "get"], ["key"],
                     ["--instance", "../etc", "status"], ["loops", "create", "--name", "x"],
                     ["loops", "delete", "65f1234567890abcdef12345"], ["feedback", "r_x", "--would-recommend", "maybe"]):
            with self.subTest(args=args):
                p = self.ctl(*args)
                self.assertEqual(p.returncode, EXIT_USAGE, p.stderr)
                self.assertTrue(p.stderr.startswith("hitlctl: "), p.stderr)
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_socket_precedence(self):
        good = self.hitld.socket
        # HITLD_SOCKET is used when nothing else is said.
        self.ok("status", socket_path=False, env=self.env(HITLD_SOCKET=good))
        # --instance beats HITLD_SOCKET.
        p = self.ctl("--instance", "hitlctl-test-none", "status", socket_path=False, env=self.env(HITLD_SOCKET=good))
        self.assertEqual(p.returncode, EXIT_UNREACHABLE)
        self.assertIn("/run/hitld-hitlctl-test-none.sock", p.stderr)
        self.assertIn("hitld@hitlctl-test-none.socket", p.stderr)
        # --socket beats --instance, in either order and after the verb too.
        self.ok("--instance", "hitlctl-test-none", "--socket", good, "status", socket_path=False)
        self.ok("status", "--instance", "hitlctl-test-none", "--socket", good, socket_path=False)
        # Nothing at all: /run/hitld.sock.
        if not os.path.exists("/run/hitld.sock"):
            p = self.ctl("status", socket_path=False)
            self.assertEqual(p.returncode, EXIT_UNREACHABLE)
            self.assertIn("/run/hitld.sock", p.stderr)

    def test_no_budget_is_exit_6_with_the_retry_time(self):
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 100})
        p = self.ctl("loops", "list")
        self.assertEqual(p.returncode, EXIT_REMOTE)
        self.assertIn("HTTP 429", p.stderr)
        p = self.ctl("loops", "get", self.loop_id)
        self.assertEqual(p.returncode, EXIT_REMOTE)
        self.assertIn("no HITL.sh API budget left until", p.stderr)


class Completion(CtlTestCase):
    def complete(self, *words):
        script = 'source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _hitlctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (
            COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1)
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                           env=self.env(PATH=BUILD + ":" + os.environ.get("PATH", ""),
                                        HITLD_SOCKET=self.hitld.socket))
        self.assertEqual(p.stderr, "")
        return p.stdout.split()

    def test_bash_completion_knows_verbs_options_values_and_request_ids(self):
        self.assertIn("ask", self.complete("hitlctl", ""))
        self.assertEqual(self.complete("hitlctl", "wa"), ["wait", "watch"])
        self.assertIn("--expect", self.complete("hitlctl", "ask", "--"))
        self.assertNotIn("--expect", self.complete("hitlctl", "submit", "--"))
        self.assertEqual(self.complete("hitlctl", "ask", "--priority", "c"), ["critical"])
        self.assertIn("remove-member", self.complete("hitlctl", "loops", ""))
        self.ok("pause")
        rid = self.submit_select()
        self.assertEqual(self.complete("hitlctl", "cancel", "r_"), [rid])
        self.assertEqual(self.complete("hitlctl", "get", rid, ""), [])


class Admin(CtlTestCase):
    def test_status_json_is_the_daemon_status(self):
        human = self.ok("status").stdout
        for label in ("Daemon:", "Budget:", "Queue:", "Forecast:", "HITL.sh:", "Key:", "Paused:"):
            self.assertRegex(human, r"(?m)^%s" % re.escape(label))
        self.assertRegex(human, r"resets \d\d:\d\d:\d\d \(in ")
        got = self.ctl_json("status")
        self.assertEqual(set(got), {"version", "started_at", "uptime_s", "budget", "queue", "forecast", "api", "key",
                                    "socket", "paused", "webhook", "polling"})
        self.assertEqual(got["budget"]["limit"], 100)

    def test_pause_resume_reload_key_test(self):
        self.assertEqual(self.ctl_json("pause"), {"paused": True})
        self.assertTrue(self.c.call("status")["paused"])
        self.assertIn("YES", self.ok("status").stdout)
        self.assertIn("resumed", self.ok("resume").stdout)
        self.assertFalse(self.c.call("status")["paused"])
        self.assertIn("reloaded", self.ok("reload").stdout)
        out = self.ok("key", "test").stdout
        key_id = self.c.call("status")["key"]["api_key_id"]
        self.assertIn("key valid: id %s" % key_id, out)
        self.assertEqual(self.ctl_json("key", "test")["api_key_id"], key_id)

    def test_loops_verbs_change_hitl_and_json_is_hitl_data(self):
        listed = self.ctl_json("loops", "list")
        self.assertIn(self.loop_id, [l["id"] for l in listed["loops"]])
        self.assertEqual(self.ok("loops", "list", "-q").stdout.split(), [l["id"] for l in listed["loops"]])
        created = self.ctl_json("loops", "create", "--name", "Deploys", "--icon", "rocket")
        lid = created["loop"]["id"]
        self.assertIn("invite_code", created)
        self.assertIn("updated", self.ok("loops", "update", lid, "--name", "Deploys v2").stdout)
        self.assertEqual(self.api_get("/loops/" + lid)[1]["data"]["loop"]["name"], "Deploys v2")
        shown = self.ok("loops", "get", lid).stdout
        self.assertRegex(shown, r"name:\s+Deploys v2")
        members = self.ok("loops", "members", self.loop_id).stdout
        self.assertRegex(members, r"^USER_ID\s+EMAIL\s+STATUS")
        self.assertIn("reviewer@example.com", members)
        reviewer = [m for m in self.ctl_json("loops", "members", self.loop_id)["members"]
                    if m["email"] == "reviewer@example.com"][0]
        self.ok("loops", "remove-member", self.loop_id, reviewer["user_id"])
        emails = [m["email"] for m in self.api_get("/loops/%s/members" % self.loop_id)[1]["data"]["members"]]
        self.assertNotIn("reviewer@example.com", emails)
        self.assertIn("deleted", self.ok("loops", "delete", lid, "--yes").stdout)
        self.assertEqual(self.api_get("/loops/" + lid)[0], 404)
        p = self.ctl("loops", "get", lid)
        self.assertEqual(p.returncode, EXIT_NOT_FOUND)
        self.assertIn("Loop not found", p.stderr)


# C0 controls but \t and \n, DEL, C1 (U+0080..U+009F, 0x9B raw is CSI on 8-bit
# terminals) and the bidi overrides/isolates that reorder what a reader sees.
UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = ("Rotate logs\x1b[2K\r\x1b[32mAPPROVED by security team\x1b[0m\x1b]0;pwned\x07"
           " \u009b31mred\u202egnp.exe\x7f\x08 end")


class TerminalEscapes(CtlTestCase):
    def submit_hostile(self):
        from harness import single_select_request
        return self.c.call("request.submit", single_select_request(self.loop_id, HOSTILE))["id"]

    def assert_safe(self, what, text):
        bad = UNSAFE_RE.findall(text)
        self.assertEqual(bad, [], "%s prints raw control characters: %r" % (what, text))

    def test_get_list_and_watch_escape_control_characters(self):
        rid = self.submit_hostile()
        p = self.ok("get", rid)
        self.assert_safe("get", p.stdout)
        self.assertIn("\\x1B[32mAPPROVED", p.stdout)      # shown, visibly
        self.assertIn("\\u009B31m", p.stdout)
        self.assertIn("\\u202E", p.stdout)
        self.assert_safe("list", self.ok("list").stdout)
        w = self.spawn("watch", rid)
        time.sleep(0.5)
        w.send_signal(signal.SIGINT)
        out, err = w.communicate(timeout=30)
        self.assert_safe("watch", out + err)

    def test_json_output_is_the_daemon_text_unchanged(self):
        rid = self.submit_hostile()
        self.assertEqual(self.ctl_json("get", rid)["request_text"], HOSTILE)
        page = self.ctl_json("list")
        self.assertIn(HOSTILE, [r.get("request_text") for r in page["requests"]])

    # Loop names as HITL.sh may hold them (any local user can name a loop):
    # each shows wider or narrower than its code points once escaped.
    ODD_NAMES = ["ops\x01\x1b[31mred", "\u540d\u524d\u306e\u8868", "cafe\u0301 lounge", "evil\u202eexe.txt",
                 "tab\there"]

    def assert_columns_line_up(self, what, out, n_columns):
        """Every row's first n_columns cells start at the header's display
        columns (cells hold no double space; the last may run on)."""
        lines = out.splitlines()
        self.assertGreater(len(lines), 1, "%s printed no table: %r" % (what, out))
        want = column_starts(lines[0])[:n_columns]
        self.assertEqual(len(want), n_columns, lines[0])
        for line in lines[1:]:
            self.assertEqual(column_starts(line)[:n_columns], want,
                             "%s: a row's columns are not under their headers:\n%s" % (what, out))

    def test_tables_line_up_in_display_columns_after_escaping(self):
        for i, name in enumerate(self.ODD_NAMES):
            self.emu.ctl("POST", "/_emu/loops", {"key": KEY, "name": name, "icon": "inbox",
                                                  "description": "d%d \u8aac\u660e\x07" % i})
        for locale in ("C.UTF-8", "C"):
            with self.subTest(locale=locale):
                out = self.ok("loops", "list", env=self.env(LC_ALL=locale)).stdout
                self.assert_safe("loops list", out)
                self.assertIn("ops\\x01\\x1B[31mred", out)       # shown, visibly
                self.assertIn("evil\\u202Eexe.txt", out)
                self.assertIn("tab\\x09here", out)                 # a tab in a cell would jump a tab stop
                self.assertIn("\u540d\u524d\u306e\u8868", out)
                self.assert_columns_line_up("loops list", out, 4)

    @__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to submit as another uid")
    def test_list_owner_column_lines_up_after_odd_texts(self):
        from harness import single_select_request
        self.ok("submit", "--loop", self.loop_id, "--option", "a", "--option", "b", "--default", "a",
                "--timeout", "15m", "theirs", uid=OTHER_UID)
        for text in ["ctl\x01x", "\u540d\u524d\u306e\u8868\u3092\u78ba\u8a8d", "cafe\u0301 menu", HOSTILE]:
            self.c.call("request.submit", single_select_request(self.loop_id, text))
        out = self.ok("list").stdout
        self.assert_safe("list", out)
        lines = out.splitlines()
        self.assertTrue(lines[0].rstrip().endswith("OWNER"), out)
        want = display_width(lines[0][:lines[0].rindex("OWNER")])
        self.assertIn(str(OTHER_UID), out)
        for line in lines[1:]:
            self.assertEqual(display_width(line[:line.rindex("  ") + 2]), want,
                             "list: the OWNER column is not under its header:\n" + out)


def display_width(s):
    """Terminal columns of s: East Asian wide and fullwidth characters are 2, combining marks 0."""
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me")
               else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def column_starts(line):
    """The display columns where a table line's cells start: the line's start and
    each character after two or more spaces."""
    return [display_width(line[:m.start()]) for m in re.finditer(r"(?:^|(?<=  ))[^ ]", line)]


MISSING_ID = "r_01JD00000000000000000000ZZ"
MISSING_LOOP = "0123456789abcdef01234567"


class Exit:
    """A finished or interrupted hitlctl run, as ExitCodes' rows see it."""

    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


class ExitCodes(CtlTestCase):
    """hitlctl(1) EXIT STATUS, verb by verb (issue 12 item 15): one row per
    documented code each verb can give, and the rows' codes are exactly the
    codes the man page documents."""

    # verb → the codes hitlctl(1) says it can exit with.
    VERB_CODES = {
        "status": {0, 2, 3}, "submit": {0, 2, 3, 6}, "ask": {0, 1, 2, 3, 6, 130},
        "get": {0, 2, 3, 4}, "wait": {0, 2, 3, 4, 5, 6, 130}, "list": {0, 2, 3},
        "cancel": {0, 2, 3, 4, 6}, "feedback": {2, 3, 4, 6}, "watch": {0, 2, 3},
        "loops": {0, 2, 3, 4, 6}, "key": {0, 2, 3, 4, 6}, "pause": {0, 2, 3, 4},
        "resume": {0, 2, 3, 4}, "reload": {0, 2, 3, 4, 6}, "help": {0, 2}, "version": {0},
    }

    def documented_codes(self):
        with open(os.path.join(ROOT, "docs", "hitlctl.1")) as f:
            man = f.read()
        section = man.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
        return {int(c) for c in re.findall(r"^\.TP\n\.B (\d+)\n", section, re.M)}

    def interrupted(self, *args):
        p = self.spawn(*args)
        time.sleep(0.5 * SLOW)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30 * SLOW)
        return Exit(p.returncode, err)

    def ended_by(self, args, action):
        """Runs hitlctl args in the background, does action() once its request is in, returns its exit."""
        before = {r["id"] for r in self.c.call("request.list", {})["requests"]}
        p = self.spawn(*args)
        new = wait_for(lambda: [r["id"] for r in self.c.call("request.list", {})["requests"] if r["id"] not in before],
                       30, what="the request")
        time.sleep(0.2 * SLOW)
        action(new[0])
        _, err = p.communicate(timeout=60 * SLOW)
        return Exit(p.returncode, err)

    @__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
    def test_every_verb_exits_with_the_documented_code(self):
        nowhere = os.path.join(self.tmp, "nowhere.sock")
        sel = ["--loop", self.loop_id, "--option", "approve", "--option", "reject", "--default", "reject",
               "--timeout", "15m"]
        self.ok("pause")
        queued = self.submit_select(text="queued one")
        cancelled = self.submit_select(text="cancelled one")
        self.ok("cancel", cancelled)
        failing = lambda rid: self.c.call("request.cancel", {"id": rid})  # noqa: E731
        other = {"uid": OTHER_UID}
        rows = [
            ("status", 0, lambda: self.ctl("status")),
            ("status", 2, lambda: self.ctl("status", "extra")),
            ("status", 3, lambda: self.ctl("status", socket_path=nowhere)),
            ("submit", 0, lambda: self.ctl("submit", *sel, "--ref", "one", "Q?")),
            ("submit", 2, lambda: self.ctl("submit", "--option", "a", "--default", "a", "Q?")),
            ("submit", 3, lambda: self.ctl("submit", *sel, "Q?", socket_path=nowhere)),
            ("submit", 6, lambda: self.ctl("submit", *sel, "--ref", "one", "Another question?")),
            ("get", 0, lambda: self.ctl("get", queued)),
            ("get", 2, lambda: self.ctl("get")),
            ("get", 3, lambda: self.ctl("get", queued, socket_path=nowhere)),
            ("get", 4, lambda: self.ctl("get", MISSING_ID)),
            ("wait", 2, lambda: self.ctl("wait")),
            ("wait", 3, lambda: self.ctl("wait", queued, socket_path=nowhere)),
            ("wait", 4, lambda: self.ctl("wait", MISSING_ID)),
            ("wait", 5, lambda: self.ctl("wait", queued, "--timeout", "1s")),
            ("wait", 6, lambda: self.ctl("wait", cancelled)),
            ("wait", 130, lambda: self.interrupted("wait", queued)),
            ("list", 0, lambda: self.ctl("list")),
            ("list", 2, lambda: self.ctl("list", "--state", "done")),
            ("list", 3, lambda: self.ctl("list", socket_path=nowhere)),
            ("cancel", 0, lambda: self.ctl("cancel", self.submit_select(text="to cancel"))),
            ("cancel", 2, lambda: self.ctl("cancel")),
            ("cancel", 3, lambda: self.ctl("cancel", queued, socket_path=nowhere)),
            ("cancel", 4, lambda: self.ctl("cancel", MISSING_ID)),
            ("cancel", 6, lambda: self.ctl("cancel", cancelled)),
            ("feedback", 2, lambda: self.ctl("feedback", queued)),
            ("feedback", 3, lambda: self.ctl("feedback", queued, "--rating", "5", socket_path=nowhere)),
            ("feedback", 4, lambda: self.ctl("feedback", MISSING_ID, "--rating", "5")),
            ("feedback", 6, lambda: self.ctl("feedback", queued, "--rating", "5")),
            ("watch", 0, lambda: self.interrupted("watch")),
            ("watch", 2, lambda: self.ctl("watch", "--bogus")),
            ("watch", 3, lambda: self.ctl("watch", socket_path=nowhere)),
            ("pause", 0, lambda: self.ctl("pause")),
            ("pause", 2, lambda: self.ctl("pause", "extra")),
            ("pause", 3, lambda: self.ctl("pause", socket_path=nowhere)),
            ("pause", 4, lambda: self.ctl("pause", **other)),
            ("reload", 0, lambda: self.ctl("reload")),
            ("reload", 2, lambda: self.ctl("reload", "extra")),
            ("reload", 3, lambda: self.ctl("reload", socket_path=nowhere)),
            ("reload", 4, lambda: self.ctl("reload", **other)),
            ("help", 0, lambda: self.ctl("help", "wait")),
            ("help", 2, lambda: self.ctl("help", "frob")),
            ("version", 0, lambda: self.ctl("version", socket_path=nowhere)),
            # From here on the queue runs: HITL.sh is called.
            ("resume", 0, lambda: self.ctl("resume")),
            ("resume", 2, lambda: self.ctl("resume", "extra")),
            ("resume", 3, lambda: self.ctl("resume", socket_path=nowhere)),
            ("resume", 4, lambda: self.ctl("resume", **other)),
            ("ask", 0, lambda: self.ctl("ask", *sel, "--expect", "approve", "EXIT-YES")),
            ("ask", 1, lambda: self.ctl("ask", *sel, "--expect", "approve", "EXIT-NO")),
            ("ask", 2, lambda: self.ctl("ask", *sel[:-2], "--timeout", "soon", "Q?")),
            ("ask", 3, lambda: self.ctl("ask", *sel, "Q?", socket_path=nowhere)),
            ("ask", 6, lambda: self.ended_by(["ask", *sel, "EXIT-HOLD cancelled"], failing)),
            ("ask", 130, lambda: self.interrupted("ask", *sel, "EXIT-HOLD interrupted")),
            ("wait", 0, lambda: self.ctl("wait", self.completed_id())),
            ("loops", 0, lambda: self.ctl("loops", "get", self.loop_id)),
            ("loops", 2, lambda: self.ctl("loops", "frob")),
            ("loops", 3, lambda: self.ctl("loops", "list", socket_path=nowhere)),
            ("loops", 4, lambda: self.ctl("loops", "get", MISSING_LOOP)),
            ("loops", 6, lambda: self.fault_then("GET", "/v1/api/loops", lambda: self.ctl("loops", "list"))),
            ("key", 0, lambda: self.ctl("key", "test")),
            ("key", 2, lambda: self.ctl("key", "frob")),
            ("key", 3, lambda: self.ctl("key", "test", socket_path=nowhere)),
            ("key", 4, lambda: self.ctl("key", "test", **other)),
            ("key", 6, lambda: self.fault_then("GET", "/v1/test", lambda: self.ctl("key", "test"))),
            # Last: it points the configuration at a key file hitld must refuse.
            ("reload", 6, lambda: self.reload_with_refused_key()),
        ]
        self.assertEqual({c for _, c, _ in rows}, self.documented_codes(),
                         "the rows' codes are the codes hitlctl(1) documents")
        got_codes = {}
        for verb, code, _ in rows:
            got_codes.setdefault(verb, set()).add(code)
        self.assertEqual(got_codes, self.VERB_CODES)

        self.auto_review(**{"EXIT-YES": {"selected_value": "approve"}, "EXIT-NO": {"selected_value": "reject"}})
        wrong = []
        for verb, code, run in rows:
            p = run()
            if p.returncode != code:
                wrong.append("%s: exit %s, documented %s — %s" % (verb, p.returncode, code, p.stderr.strip()[:200]))
        self.assertEqual(wrong, [])

    def reload_with_refused_key(self):
        bad = os.path.join(self.tmp, "readable.key")
        with open(bad, "w") as f:
            f.write(KEY + "\n")
        os.chmod(bad, 0o644)
        with open(self.hitld.config, "w") as f:
            f.write(self.hitld.config_text({"api": {"key_file": bad}}))
        return self.ctl("reload")

    def completed_id(self):
        return self.c.call("request.list", {"state": ["completed"]})["requests"][0]["id"]

    def fault_then(self, method, prefix, fn):
        self.emu.ctl("POST", "/_emu/faults", {"kind": "500", "count": 1,
                                              "match": {"method": method, "path_prefix": prefix}})
        return fn()


if __name__ == "__main__":
    main()
