#!/usr/bin/env python3
"""Methods that call HITL.sh while the client waits: loops and key.test."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HitldTestCase, KEY, RpcError, main  # noqa: E402


def loop_calls(emu):
    return [c for c in emu.stats()["calls"] if "/loops" in c["path"]]


class Loops(HitldTestCase):
    # An hour's window: with the harness's 20 s one, the key spent at the
    # emulator could be renewed before the next call (a fresh-clone run hit it).
    WINDOW = 3600

    def test_loop_reads_are_cached_and_writes_empty_the_cache(self):
        first = self.c.call("loop.list")
        self.assertFalse(first["cached"])
        self.assertIn(self.loop_id, [l["id"] for l in first["loops"]])
        again = self.c.call("loop.list")
        self.assertTrue(again["cached"])
        self.assertEqual(len(loop_calls(self.emu)), 1)
        created = self.c.call("loop.create", {"name": "Deploys", "icon": "rocket"})
        new_id = created["loop"]["id"]
        after = self.c.call("loop.list")
        self.assertFalse(after["cached"])
        self.assertIn(new_id, [l["id"] for l in after["loops"]])
        got = self.c.call("loop.get", {"id": new_id})
        self.assertEqual(got["loop"]["name"], "Deploys")
        upd = self.c.call("loop.update", {"id": new_id, "description": "Production deploys"})
        self.assertEqual(upd["loop"]["description"], "Production deploys")
        members = self.c.call("loop.members", {"id": self.loop_id})
        self.assertGreaterEqual(members["active_count"], 1)
        self.c.call("loop.delete", {"id": new_id})
        with self.assertRaises(RpcError) as e:
            self.c.call("loop.get", {"id": new_id})
        self.assertEqual(e.exception.code, -32006)
        self.assertEqual(e.exception.data["http_status"], 404)
        self.assertEqual(e.exception.data["msg"], "Loop not found")

    def test_loop_params_are_validated_before_any_call(self):
        for method, params, field in [("loop.get", {"id": "nope"}, "id"),
                                      ("loop.create", {"name": "", "icon": "x"}, "name"),
                                      ("loop.create", {"name": "A"}, "icon"),
                                      ("loop.update", {"id": self.loop_id}, None),
                                      ("loop.remove_member", {"id": self.loop_id, "user_id": "x"}, "user_id")]:
            with self.subTest(method=method, params=params):
                with self.assertRaises(RpcError) as e:
                    self.c.call(method, params)
                self.assertEqual(e.exception.code, -32602)
                if field:
                    self.assertEqual(e.exception.data["field"], field)
        self.assertEqual(self.emu.stats()["calls_total"], 0)

    def test_no_budget_means_budget_exhausted_with_retry_at(self):
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 100})
        with self.assertRaises(RpcError) as e:
            self.c.call("loop.list")
        self.assertEqual(e.exception.code, -32006)
        self.assertEqual(e.exception.data["http_status"], 429)
        with self.assertRaises(RpcError) as e:
            self.c.call("loop.get", {"id": self.loop_id})
        self.assertEqual(e.exception.code, -32004)
        self.assertIn("retry_at", e.exception.data)


class KeyTest(HitldTestCase):
    def test_key_test_reports_the_key_id(self):
        got = self.c.call("key.test")
        self.assertRegex(got["api_key_id"], "^[0-9a-f]{24}$")
        self.assertEqual(self.c.call("status")["key"]["api_key_id"], got["api_key_id"])
        self.assertTrue(self.c.call("status")["key"]["valid"])

    def test_key_test_with_a_revoked_key_is_unavailable(self):
        self.emu.ctl("DELETE", "/_emu/keys/%s" % KEY)
        with self.assertRaises(RpcError) as e:
            self.c.call("key.test")
        self.assertEqual(e.exception.code, -32010)
        self.assertFalse(self.c.call("status")["key"]["valid"])
        with self.assertRaises(RpcError) as e:
            self.c.call("loop.list")
        self.assertEqual(e.exception.code, -32010)


if __name__ == "__main__":
    main()
