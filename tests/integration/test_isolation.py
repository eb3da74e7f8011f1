#!/usr/bin/env python3
"""Two local users on one daemon: each sees and touches only its own requests."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, HitldTestCase, RpcError, as_uid, main, single_select_request  # noqa: E402

ALICE, BOB = 40001, 40002




def try_call(sock, method, params):
    c = Client(sock)
    try:
        return {"result": c.call(method, params)}
    except RpcError as e:
        return {"code": e.code}
    finally:
        c.close()


@__import__("unittest").skipUnless(os.geteuid() == 0, "needs root to switch uids")
class TwoUsers(HitldTestCase):
    def test_a_user_cannot_see_or_touch_another_users_request(self):
        sock = self.hitld.socket
        req = single_select_request(self.loop_id, client_ref="alice-1")
        sub = as_uid(ALICE, lambda: try_call(sock, "request.submit", req))
        rid = sub["result"]["id"]

        hello = as_uid(BOB, lambda: try_call(sock, "hello", {}))
        self.assertEqual(hello["result"]["uid"], BOB)
        self.assertFalse(hello["result"]["admin"])

        for method, params in [("request.get", {"id": rid}),
                               ("request.get", {"client_ref": "alice-1"}),
                               ("request.wait", {"id": rid, "timeout_ms": 10}),
                               ("request.cancel", {"id": rid}),
                               ("request.feedback", {"id": rid, "feedback": {"rating": 1}})]:
            with self.subTest(method):
                got = as_uid(BOB, lambda: try_call(sock, method, params))
                self.assertEqual(got.get("code"), -32001, got)

        listed = as_uid(BOB, lambda: try_call(sock, "request.list", {}))
        self.assertEqual(listed["result"]["requests"], [])
        other = as_uid(BOB, lambda: try_call(sock, "request.list", {"owner_uid": ALICE}))
        self.assertEqual(other.get("code"), -32002)
        st = as_uid(BOB, lambda: try_call(sock, "status", {}))
        self.assertEqual(sum(v for k, v in st["result"]["queue"].items() if isinstance(v, int)), 0)
        admin = as_uid(BOB, lambda: try_call(sock, "queue.pause", {}))
        self.assertEqual(admin.get("code"), -32002)

        # Alice still sees hers; root (admin) sees everyone's.
        mine = as_uid(ALICE, lambda: try_call(sock, "request.get", {"id": rid}))
        self.assertEqual(mine["result"]["owner_uid"], ALICE)
        self.assertEqual(self.c.call("request.get", {"id": rid})["owner_uid"], ALICE)
        st = as_uid(ALICE, lambda: try_call(sock, "status", {}))
        self.assertEqual(sum(v for k, v in st["result"]["queue"].items() if isinstance(v, int)), 1)


if __name__ == "__main__":
    main()
