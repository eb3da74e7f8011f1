#!/usr/bin/env python3
# run-suite: about 10 s
"""libhitlclient's typed wrappers for usage, metrics and key.rotate against a
real hitld and the emulator, through a small C program linked with
libhitlclient.a (as test_client_examples.py builds its examples):

- hitl_usage() returns what `hitlctl usage --json` prints (the same totals and
  rows), for an admin and, with its own share only, for another user;
  hitl_metrics() returns the Prometheus text;
- hitl_key_rotate() is refused for a non-admin with HITL_ERROR_PERMISSION and
  no call to HITL.sh, and switches an admin's hitld to the standby key (set
  up as in test_standby_key.py's StandbyKeyMemory); a second one finds no
  standby left (HITL_ERROR_INVALID_STATE).
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, HitldTestCase, compile_client_program, main, single_select_request, wait_for  # noqa: E402
from sec_util import add_key_same_account, new_key, write_key_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HITLCTL = os.path.join(BUILD, "hitlctl")
NOBODY = 65534
TERMINAL = ("completed", "timeout", "cancelled", "failed")

# argv: usage [SINCE|- [BY|- [SECONDS]]] | metrics | key_rotate. Prints one
# JSON line: {"result": …}, {"error": {code, name, message, data}} or {"errno": n}.
PROGRAM = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hitlclient.h>

static const char *arg(int argc, char **argv, int i) {
	return i < argc && strcmp(argv[i], "-") != 0 ? argv[i] : NULL;
}

int main(int argc, char **argv) {
	HitlClient *c = NULL;
	HitlError e = HITL_ERROR_INIT;
	json_object *res = NULL, *out = json_object_new_object();
	int r;

	if (argc < 2)
		return 2;
	r = hitl_client_connect(NULL, &c);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-r));
		return 3;
	}
	if (strcmp(argv[1], "usage") == 0) {
		HitlUsageFilter f = { .since = arg(argc, argv, 2), .by = arg(argc, argv, 3) };

		f.since_seconds = argc > 4 ? (uint32_t) strtoul(argv[4], NULL, 10) : 0;
		r = hitl_usage(c, argc > 2 ? &f : NULL, &res, &e);
	} else if (strcmp(argv[1], "metrics") == 0)
		r = hitl_metrics(c, &res, &e);
	else if (strcmp(argv[1], "key_rotate") == 0)
		r = hitl_key_rotate(c, &res, &e);
	else
		return 2;
	if (r == -EREMOTEIO) {
		json_object *err = json_object_new_object();
		const char *name = hitl_error_code_name(e.code);

		json_object_object_add(err, "code", json_object_new_int(e.code));
		json_object_object_add(err, "name", name ? json_object_new_string(name) : NULL);
		json_object_object_add(err, "message", e.message ? json_object_new_string(e.message) : NULL);
		json_object_object_add(err, "data", json_object_get(e.data));
		json_object_object_add(out, "error", err);
	} else if (r < 0)
		json_object_object_add(out, "errno", json_object_new_int(-r));
	else
		json_object_object_add(out, "result", json_object_get(res));
	puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(res);
	json_object_put(out);
	hitl_error_clear(&e);
	hitl_client_free(c);
	return 0;
}
"""


def compile_program(directory):
    src, exe = os.path.join(directory, "wrappers.c"), os.path.join(directory, "wrappers")
    with open(src, "w") as f:
        f.write(PROGRAM)
    error = compile_client_program(src, exe)
    if error is not None:
        raise AssertionError("the test program does not compile:\n" + error)
    os.chmod(exe, 0o755)
    return exe


def as_user(uid):
    """subprocess.run arguments that run the child as uid (no groups): not an admin."""
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


class WrapperTestCase(HitldTestCase):
    def setUp(self):
        super().setUp()
        self.exe = compile_program(self.tmp)
        # Another uid may not be able to enter the build tree: a copy in the test's directory.
        self.ctl = os.path.join(self.tmp, "hitlctl")
        shutil.copy2(HITLCTL, self.ctl)
        os.chmod(self.ctl, 0o755)

    def wrapper(self, *args, uid=None):
        p = subprocess.run([self.exe] + list(args), capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HITLD_SOCKET=self.hitld.socket), stdin=subprocess.DEVNULL,
                           **as_user(uid))
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def hitlctl(self, *args, uid=None):
        return subprocess.run([self.ctl, "--socket", self.hitld.socket] + list(args), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, **as_user(uid))


class UsageAndMetrics(WrapperTestCase):
    EMULATOR_ARGS = ("--auto-review", "0.5")

    def setUp(self):
        super().setUp()
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="usage %d" % i))["id"]
               for i in range(3)]
        for i in ids:
            self.wait_state(i, TERMINAL, timeout=60)

    def same_as_hitlctl(self, since, by, uid=None):
        """hitl_usage()'s result and `hitlctl usage --json`'s, taken while
        nothing changed (the wrapper's answer before and after hitlctl's is
        the same, no call in flight); "until" (now) left out."""
        got = {}

        def steady():
            a = self.wrapper("usage", since, by, uid=uid)["result"]
            p = self.hitlctl("--json", "usage", "--since", since, "--by", by, uid=uid)
            self.assertEqual(p.returncode, 0, p.stderr)
            h = json.loads(p.stdout)
            b = self.wrapper("usage", since, by, uid=uid)["result"]
            for r in (a, h, b):
                r.pop("until")
            got["r"] = (a, h)
            return a == b and a["in_flight"] == 0
        wait_for(steady, 60, interval=0.2, what="a steady usage history")
        return got["r"]

    def test_usage_returns_what_hitlctl_usage_json_prints(self):
        for by in ("kind", "uid", "hour"):
            mine, theirs = self.same_as_hitlctl("24h", by)
            self.assertEqual(mine, theirs, by)
            self.assertEqual((mine["by"], mine["scope"]), (by, "all"))
        mine, _ = self.same_as_hitlctl("24h", "kind")
        self.assertGreaterEqual(mine["total"]["calls"], 3)          # the creates at least
        self.assertEqual(mine["total"]["decisions"], 3)
        self.assertEqual({r["kind"]: r["calls"] for r in mine["rows"]}.get("create"), 3)
        # Another user sees their own share (none), the same way through both.
        mine, theirs = self.same_as_hitlctl("24h", "kind", uid=NOBODY)
        self.assertEqual(mine, theirs)
        self.assertEqual((mine["scope"], mine["uid"], mine["total"]["calls"]), ("own", str(NOBODY), 0))

    def test_usage_filter_forms(self):
        # No filter: the daemon's defaults; since_seconds: a number of seconds.
        default = self.wrapper("usage")["result"]
        self.assertEqual(default["by"], "kind")
        by_seconds = self.wrapper("usage", "-", "loop", "5400")["result"]
        self.assertEqual(by_seconds["by"], "loop")
        self.assertEqual([r["loop_id"] for r in by_seconds["rows"] if r["loop_id"]], [self.loop_id])
        # Both forms of since at once: refused by the library (EINVAL), nothing sent.
        self.assertEqual(self.wrapper("usage", "1h", "kind", "3600"), {"errno": 22})
        # A since the daemon does not take: invalid params, naming the field.
        err = self.wrapper("usage", "1y", "kind")["error"]
        self.assertEqual((err["code"], err["name"], err["data"]["field"]), (-32602, "invalid_params", "since"))

    def test_metrics_returns_the_prometheus_text(self):
        res = self.wrapper("metrics")["result"]
        self.assertTrue(res["content_type"].startswith("text/plain; version=0.0.4"), res)
        text = res["text"]
        self.assertTrue(text.endswith("\n"))
        self.assertIn("# TYPE hitld_budget_limit gauge\nhitld_budget_limit 100\n", text)
        self.assertIn('hitld_requests{state="completed"} 3\n', text)
        self.assertIn("hitld_api_calls_total{", text)
        # The same families as `hitlctl metrics` prints (values may move between the two).
        p = self.hitlctl("metrics")
        self.assertEqual(p.returncode, 0, p.stderr)
        families = [l for l in text.splitlines() if l.startswith("# TYPE ")]
        self.assertEqual(families, [l for l in p.stdout.splitlines() if l.startswith("# TYPE ")])
        # Another user: the budget, their own requests, none of everyone's counters.
        other = self.wrapper("metrics", uid=NOBODY)["result"]["text"]
        self.assertIn("hitld_budget_limit 100\n", other)
        self.assertIn('hitld_requests{state="completed"} 0\n', other)
        self.assertNotIn("hitld_api_calls_total{", other)


class KeyRotate(WrapperTestCase):
    START_DAEMON = False

    def setUp(self):
        super().setUp()
        self.new = new_key()
        self.new_id = add_key_same_account(self.emu, KEY, self.new)["api_key_id"]
        key_file, next_file = os.path.join(self.tmp, "api.key"), os.path.join(self.tmp, "api.key.next")
        write_key_file(key_file, KEY)
        write_key_file(next_file, self.new)
        self.hitld = self.new_daemon({"api": {"key_file": key_file, "next_key_file": next_file}}, key=None).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def test_key_rotate_is_for_admins_and_switches_to_the_standby(self):
        wait_for(lambda: self.c.call("status")["key"]["standby"] is not None, 30, what="the standby loaded")
        calls = len(self.emu.stats()["calls"])
        err = self.wrapper("key_rotate", uid=NOBODY)["error"]
        self.assertEqual((err["code"], err["name"]), (-32002, "permission_denied"))
        self.assertEqual(len(self.emu.stats()["calls"]), calls, "a refused rotate called HITL.sh")
        self.assertEqual(self.c.call("status")["key"]["active"], "primary")

        self.assertEqual(self.wrapper("key_rotate"), {"result": {"switched": True, "api_key_id": self.new_id}})
        st = self.c.call("status")["key"]
        self.assertEqual((st["active"], st["api_key_id"], st["standby"]), ("standby", self.new_id, None))

        err = self.wrapper("key_rotate")["error"]
        self.assertEqual((err["code"], err["name"]), (-32007, "invalid_state"))
        self.assertIn("No standby key", err["message"])


if __name__ == "__main__":
    main()
