#!/usr/bin/env python3
"""Workflow triggers (workflow.trigger, hitlctl trigger): durable before they
are acknowledged, sent to POST /v1/workflows/{id}/trigger at most once, and
either triggered (execution id to the client) or failed with a reason; a
trigger whose outcome hitld cannot know fails as "outcome_unknown" and is
never sent again."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Client, HitldTestCase, KEY, RpcError, SLOW, as_uid, main, wait_for  # noqa: E402

HITLCTL = os.path.join(BUILD, "hitlctl")
EXEC_RE = r"^exec_[0-9a-f]+$"
ID_RE = r"^r_[0-9A-Z]{26}$"
TRIGGER_PATH = "/v1/workflows/"
ALICE, BOB = 40021, 40022
EXIT_USAGE, EXIT_REMOTE = 2, 6




def try_call(sock, method, params):
    c = Client(sock)
    try:
        return {"result": c.call(method, params)}
    except RpcError as e:
        return {"code": e.code, "data": e.data}
    finally:
        c.close()


class WorkflowCase(HitldTestCase):
    CONFIG = {"api": {"timeout_s": 3}}

    def setUp(self):
        super().setUp()
        self.wf = self.workflow("wf_deploy_4812")

    def workflow(self, wf_id):
        return self.emu.ctl("POST", "/_emu/workflows", {"key": KEY, "id": wf_id})["id"]

    def triggers(self, wf_id=None):
        # Triggers the emulator took, replies lost or not.
        return self.emu.stats()["workflows"].get(wf_id or self.wf, 0)

    def trigger_calls(self):
        return [c for c in self.emu.api_calls() if c[1].startswith(TRIGGER_PATH)]

    def fault(self, kind, count=1, seconds=None):
        body = {"kind": kind, "count": count, "match": {"path_prefix": TRIGGER_PATH}}
        if seconds is not None:
            body["seconds"] = seconds
        self.emu.ctl("POST", "/_emu/faults", body)

    def ctl(self, *args, timeout=60):
        return subprocess.run([HITLCTL, "--socket", self.hitld.socket] + [str(a) for a in args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout * SLOW)

    def restart(self):
        self.c.close()
        self.hitld.kill9()
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def final(self, rid, timeout=30):
        return self.wait_state(rid, ("completed", "failed", "cancelled"), timeout=timeout)


class Trigger(WorkflowCase):
    def test_hitlctl_prints_the_execution_id_and_json_gives_the_daemons_reply(self):
        p = self.ctl("trigger", self.wf, "--data", '{"ticket": 4812, "env": "prod"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.strip(), EXEC_RE)
        self.assertEqual(self.triggers(), 1)

        p = self.ctl("--json", "trigger", self.wf)
        self.assertEqual(p.returncode, 0, p.stderr)
        reply = json.loads(p.stdout)
        rec = reply["request"]
        self.assertTrue(reply["done"])
        self.assertEqual((rec["kind"], rec["state"], rec["workflow_id"]), ("trigger", "completed", self.wf))
        self.assertRegex(rec["execution_id"], EXEC_RE)
        self.assertEqual(rec["remote_status"], "running")
        self.assertIsNone(rec["loop_id"])
        self.assertEqual(self.triggers(), 2)
        # Sent where the API says: no /api segment, once per trigger.
        self.assertEqual([c[:2] for c in self.trigger_calls()], [("POST", TRIGGER_PATH + self.wf + "/trigger")] * 2)

        # The data is kept with the record; get shows it.
        first = self.c.call("request.list", {})["requests"][-1]
        self.assertEqual(first["data"], {"ticket": 4812, "env": "prod"})
        got = self.ctl("get", first["id"])
        self.assertIn(self.wf, got.stdout)
        self.assertIn(first["execution_id"], got.stdout)
        self.assertIn("trigger " + self.wf, self.ctl("list", "--all").stdout)

    def test_help_and_bash_completion_know_the_verb(self):
        self.assertIn("trigger", subprocess.run([HITLCTL, "--help"], capture_output=True, text=True).stdout)
        p = self.ctl("trigger", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("outcome_unknown", p.stdout)
        completion = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                  "contrib", "bash-completion", "hitlctl")

        def complete(*words):
            script = 'source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _hitlctl; printf "%%s\\n" "${COMPREPLY[@]}"' % (
                completion, " ".join("'%s'" % w for w in words), len(words) - 1)
            p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.stderr, "")
            return p.stdout.split()
        self.assertEqual(complete("hitlctl", "tri"), ["trigger"])
        self.assertEqual(complete("hitlctl", "trigger", "--d"), ["--data", "--data-file"])
        self.assertIn("--no-wait", complete("hitlctl", "trigger", "wf_x", "--"))

    def test_socket_wait_replies_with_the_execution_id_and_no_wait_with_the_local_id(self):
        done = self.c.call("workflow.trigger", {"workflow_id": self.wf, "data": {"a": [1, 2]}, "wait": True,
                                                "timeout_ms": 20000})
        self.assertTrue(done["done"])
        self.assertRegex(done["request"]["execution_id"], EXEC_RE)

        ack = self.c.call("workflow.trigger", {"workflow_id": self.wf})
        self.assertRegex(ack["id"], ID_RE)
        self.assertEqual((ack["kind"], ack["state"], ack["duplicate"]), ("trigger", "queued", False))
        rec = self.final(ack["id"])
        self.assertEqual(rec["state"], "completed")
        self.assertRegex(rec["execution_id"], EXEC_RE)
        waited = self.c.call("request.wait", {"id": ack["id"], "timeout_ms": 0})
        self.assertEqual(waited["request"]["execution_id"], rec["execution_id"])
        self.assertEqual(self.triggers(), 2)
        # Budgeted like a create: the ledger counted both calls.
        self.assertGreaterEqual(self.c.call("status")["budget"]["used"], 2)

    def test_invalid_workflow_id_is_refused_locally(self):
        for bad in ("0123456789abcdef01234567", "wf_", "wf_a b", "WF_abc", "wf_" + "a" * 98, "wf_x/../y"):
            with self.subTest(bad):
                with self.assertRaises(RpcError) as cm:
                    self.c.call("workflow.trigger", {"workflow_id": bad})
                self.assertEqual(cm.exception.code, -32602)
                self.assertEqual(cm.exception.data["field"], "workflow_id")
        for params, field in (({}, "workflow_id"), ({"workflow_id": self.wf, "data": [1]}, "data"),
                              ({"workflow_id": self.wf, "data": "x"}, "data"),
                              ({"workflow_id": self.wf, "data": {"x": "y" * 60000}}, "data"),
                              ({"workflow_id": self.wf, "loop_id": "x"}, "loop_id"),
                              ({"workflow_id": self.wf, "wait": 1}, "wait"),
                              ({"workflow_id": self.wf, "priority": "urgent"}, "priority")):
            with self.subTest(params=params):
                with self.assertRaises(RpcError) as cm:
                    self.c.call("workflow.trigger", params)
                self.assertEqual(cm.exception.code, -32602)
                self.assertEqual(cm.exception.data["field"], field)

        p = self.ctl("--json", "trigger", "0123456789abcdef01234567")
        self.assertEqual(p.returncode, EXIT_USAGE, p.stderr)
        self.assertEqual(json.loads(p.stdout)["error"]["code"], -32602)
        self.assertIn("workflow_id", p.stderr)
        p = self.ctl("trigger", self.wf, "--data", "[1, 2]")
        self.assertEqual(p.returncode, EXIT_USAGE, p.stderr)
        self.assertEqual(self.trigger_calls(), [])
        self.assertEqual(self.c.call("request.list", {})["requests"], [])

    def test_unknown_workflow_fails_with_the_servers_words(self):
        p = self.ctl("trigger", "wf_nobody_made_this")
        self.assertEqual(p.returncode, EXIT_REMOTE, p.stderr)
        self.assertIn("Workflow not found", p.stderr)
        rec = self.c.call("request.list", {})["requests"][0]
        self.assertEqual(rec["state"], "failed")
        self.assertEqual(rec["error"], {"code": "remote_rejected", "message": "Workflow not found", "http_status": 404})
        self.assertEqual(len(self.trigger_calls()), 1)   # a 404 is final: not retried

    def test_client_ref_makes_a_retry_the_same_trigger(self):
        a = self.c.call("workflow.trigger", {"workflow_id": self.wf, "data": {"n": 1}, "client_ref": "job-7"})
        self.final(a["id"])
        b = self.c.call("workflow.trigger", {"workflow_id": self.wf, "data": {"n": 1}, "client_ref": "job-7"})
        self.assertEqual((b["id"], b["duplicate"]), (a["id"], True))
        with self.assertRaises(RpcError) as cm:
            self.c.call("workflow.trigger", {"workflow_id": self.wf, "data": {"n": 2}, "client_ref": "job-7"})
        self.assertEqual(cm.exception.code, -32009)
        with self.assertRaises(RpcError) as cm:
            self.c.call("request.submit", {"loop_id": self.loop_id, "request_text": "x", "response_type": "text",
                                           "response_config": {}, "default_response": "x", "client_ref": "job-7"})
        self.assertEqual(cm.exception.code, -32009)
        self.assertEqual(self.triggers(), 1)

    def test_a_queued_trigger_can_be_cancelled_a_sent_one_cannot_and_takes_no_feedback(self):
        self.c.call("queue.pause")
        q = self.c.call("workflow.trigger", {"workflow_id": self.wf})
        self.assertEqual(self.c.call("request.cancel", {"id": q["id"]})["state"], "cancelled")
        self.c.call("queue.resume")
        s = self.c.call("workflow.trigger", {"workflow_id": self.wf, "wait": True, "timeout_ms": 20000})
        sid = s["request"]["id"]
        for method, params in (("request.cancel", {"id": sid}),
                               ("request.feedback", {"id": sid, "feedback": {"rating": 5}})):
            with self.subTest(method):
                with self.assertRaises(RpcError) as cm:
                    self.c.call(method, params)
                self.assertEqual(cm.exception.code, -32007)
        self.assertEqual(self.triggers(), 1)

    def test_503_is_sent_again_a_500_is_outcome_unknown(self):
        self.fault("503")
        rec = self.final(self.c.call("workflow.trigger", {"workflow_id": self.wf})["id"], timeout=60)
        self.assertEqual(rec["state"], "completed")
        self.assertEqual([c[2] for c in self.trigger_calls()], [503, 200])
        self.assertEqual(rec["attempts"], 2)

        self.fault("500")
        rec = self.final(self.c.call("workflow.trigger", {"workflow_id": self.wf})["id"], timeout=60)
        self.assertEqual(rec["state"], "failed")
        self.assertEqual(rec["error"]["code"], "outcome_unknown")
        self.assertEqual(rec["error"]["http_status"], 500)
        self.assertEqual([c[2] for c in self.trigger_calls()], [503, 200, 500])


    def test_an_inactive_key_keeps_the_trigger_queued_until_it_works_again(self):
        # An error about the key is not the trigger's: it waits with the
        # creates (docs/HITL-API.md §5), and goes out once the key works.
        self.emu.ctl("POST", "/_emu/drift", {"key_inactive": 403})
        rid = self.c.call("workflow.trigger", {"workflow_id": self.wf})["id"]
        wait_for(lambda: self.c.call("status")["api"]["creates_paused"], 30, interval=0.2,
                 what="creates to pause")
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
        self.assertEqual(self.triggers(), 0)
        self.emu.ctl("POST", "/_emu/drift", {"key_inactive": None})
        rec = self.final(rid, timeout=90)
        self.assertEqual(rec["state"], "completed", rec)
        self.assertEqual(self.triggers(), 1)


class Durability(WorkflowCase):
    def test_kill9_right_after_the_ack_triggers_exactly_once(self):
        # Paused, the ack is the only thing that happened: what survives
        # kill -9 is the durable record, and it is sent once after restart.
        for i in range(3):
            with self.subTest(i=i):
                before = self.triggers()
                self.c.call("queue.pause")
                p = self.ctl("trigger", "--no-wait", self.wf, "--data", json.dumps({"round": i}))
                self.assertEqual(p.returncode, 0, p.stderr)
                rid = p.stdout.strip()
                self.assertRegex(rid, ID_RE)
                self.restart()
                self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
                self.c.call("queue.resume")
                rec = self.final(rid)
                self.assertEqual(rec["state"], "completed")
                self.assertEqual(rec["data"], {"round": i})
                self.assertEqual(self.triggers(), before + 1)

    def test_kill9_racing_the_send_never_triggers_twice_and_says_which(self):
        # Not paused: the kill lands before, during or after the send. Each
        # trigger either completed (exactly one trigger arrived) or failed as
        # outcome unknown (at most one arrived) — never two.
        for i in range(5):
            with self.subTest(i=i):
                before = self.triggers()
                p = self.ctl("trigger", "--no-wait", self.wf)
                self.assertEqual(p.returncode, 0, p.stderr)
                rid = p.stdout.strip()
                self.restart()
                rec = self.final(rid)
                time.sleep(0.5 * SLOW)   # time for a (wrong) second send
                got = self.triggers() - before
                if rec["state"] == "completed":
                    self.assertEqual(got, 1, rec)
                else:
                    self.assertEqual((rec["state"], rec["error"]["code"]), ("failed", "outcome_unknown"), rec)
                    self.assertLessEqual(got, 1)

    def test_hitlctl_waiting_across_a_kill9_still_prints_the_execution_id(self):
        self.c.call("queue.pause")
        p = subprocess.Popen([HITLCTL, "--socket", self.hitld.socket, "trigger", self.wf],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        wait_for(lambda: self.c.call("request.list", {})["requests"], 10, what="the trigger to be queued")
        self.restart()
        self.c.call("queue.resume")
        out, err = p.communicate(timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, err)
        self.assertRegex(out.strip(), EXEC_RE)
        self.assertEqual(self.triggers(), 1)

    def test_a_lost_reply_is_outcome_unknown_and_never_sent_again(self):
        self.fault("commit_no_reply")
        p = self.ctl("trigger", self.wf)
        self.assertEqual(p.returncode, EXIT_REMOTE, p.stderr)
        self.assertIn("outcome is unknown", p.stderr)
        self.assertIn("may or may not have run", p.stderr)
        self.assertEqual(self.triggers(), 1)   # HITL.sh took it; hitld could not know
        rid = self.c.call("request.list", {})["requests"][0]["id"]
        rec = self.c.call("request.get", {"id": rid})
        self.assertEqual((rec["state"], rec["error"]["code"], rec["execution_id"]), ("failed", "outcome_unknown", None))

        self.restart()
        time.sleep(1.0 * SLOW)
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "failed")
        self.assertEqual(self.triggers(), 1)
        self.assertEqual(len(self.trigger_calls()), 1)

    def test_a_crash_while_sending_is_outcome_unknown_after_restart(self):
        self.fault("hang", seconds=15)
        rid = self.c.call("workflow.trigger", {"workflow_id": self.wf})["id"]
        self.wait_state(rid, "submitting")
        wait_for(self.trigger_calls, 10, what="the trigger to reach the emulator")
        self.restart()
        rec = self.final(rid)
        self.assertEqual((rec["state"], rec["error"]["code"]), ("failed", "outcome_unknown"))
        self.assertIn("hitld stopped while sending it", rec["error"]["message"])
        time.sleep(0.5 * SLOW)
        self.assertEqual(len(self.trigger_calls()), 1)   # the hung one only
        self.assertEqual(self.triggers(), 0)


@__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
class Isolation(WorkflowCase):
    def test_a_user_sees_only_its_own_triggers(self):
        sock, wf = self.hitld.socket, self.wf
        os.chmod(self.tmp, 0o755)
        a = as_uid(ALICE, lambda: try_call(sock, "workflow.trigger", {"workflow_id": wf, "client_ref": "mine",
                                                                       "wait": True, "timeout_ms": 20000}))
        rec = a["result"]["request"]
        self.assertEqual((rec["owner_uid"], rec["state"]), (ALICE, "completed"))
        rid = rec["id"]

        for method, params in (("request.get", {"id": rid}), ("request.get", {"client_ref": "mine"}),
                               ("request.wait", {"id": rid, "timeout_ms": 10}), ("request.cancel", {"id": rid})):
            with self.subTest(method):
                got = as_uid(BOB, lambda: try_call(sock, method, params))
                self.assertEqual(got.get("code"), -32001, got)
        self.assertEqual(as_uid(BOB, lambda: try_call(sock, "request.list", {}))["result"]["requests"], [])
        # Bob's own client_ref "mine" is his, not a duplicate of Alice's.
        b = as_uid(BOB, lambda: try_call(sock, "workflow.trigger", {"workflow_id": wf, "client_ref": "mine"}))
        self.assertEqual(b["result"]["duplicate"], False)
        self.assertNotEqual(b["result"]["id"], rid)
        mine = as_uid(ALICE, lambda: try_call(sock, "request.list", {}))["result"]["requests"]
        self.assertEqual([r["id"] for r in mine], [rid])
        self.final(b["result"]["id"])
        self.assertEqual(self.triggers(), 2)


if __name__ == "__main__":
    main()
