#!/usr/bin/env python3
"""hitld's metrics (hitld(8) METRICS) as a real Prometheus parser reads them —
prometheus_client.parser.text_string_to_metric_families from Debian's
python3-prometheus-client — from all three places they come from: the socket
method "metrics", "hitlctl metrics" and the node_exporter textfile; and their
values are the ones status shows."""
import datetime
import json
import math
import os
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, Client, HitldTestCase, as_uid, main, single_select_request, wait_for  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's package, when the python3 running the tests is another one.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

HITLCTL = os.path.join(BUILD, "hitlctl")
OTHER_UID = 40013
STATES = ("queued", "submitting", "pending", "completed", "timeout", "cancelled", "failed")


def epoch(iso):
    return int(datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def parse(text):
    """{sample name: {frozenset(labels): value}} and the families' types, by a real parser."""
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples[name][frozenset(labels.items())]


class Metrics(HitldTestCase):
    # 10 calls per 20 s window: 8 creates, 2 polls.
    WINDOW = 20
    LIMIT = 10
    START_DAEMON = False

    def setUp(self):
        if text_string_to_metric_families is None:
            self.skipTest("python3-prometheus-client is not installed (scripts/install-deps)")
        super().setUp()
        self.promdir = os.path.join(self.tmp, "node-exporter")
        os.mkdir(self.promdir)
        self.textfile = os.path.join(self.promdir, "hitld.prom")
        self.config = {"budget": {"window_s": 20, "limit_per_hour": 10, "poll_reserve": 2},
                       "metrics": {"textfile": self.textfile, "interval_s": 1}}
        self.hitld = self.new_daemon(self.config).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def hitlctl(self, *args):
        p = subprocess.run([HITLCTL, "--socket", self.hitld.socket] + list(args), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def read_textfile(self):
        try:
            with open(self.textfile) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def stable(self, fetch):
        """(status, text, usage): status taken before and after fetch() and
        the usage method agrees and no call was in flight, so all three were
        made from the same state."""
        got = {}

        def same():
            before = self.c.call("status")
            text = fetch()
            usage = self.c.call("usage", {"since": "30d", "by": "kind"})
            after = self.c.call("status")
            keep = ("budget", "queue", "forecast", "key", "paused")
            if text is None or usage["in_flight"] != 0 or any(before[k] != after[k] for k in keep):
                return False
            got["r"] = (after, text, usage)
            return True
        wait_for(same, 60, interval=0.1, what="a steady state")
        return got["r"]

    def check_matches_status(self, st, text, all_requests=True):
        samples, types = parse(text)
        b, f = st["budget"], st["forecast"]
        self.assertEqual(value(samples, "hitld_info", version=st["version"]), 1)
        self.assertEqual(value(samples, "hitld_start_time_seconds"), epoch(st["started_at"]))
        self.assertEqual(value(samples, "hitld_budget_limit"), b["limit"])
        self.assertEqual(value(samples, "hitld_budget_used"), b["used"])
        self.assertEqual(value(samples, "hitld_budget_remaining"), b["remaining"])
        self.assertEqual(value(samples, "hitld_budget_reset_timestamp_seconds"), epoch(b["reset_at"]))
        self.assertEqual(value(samples, "hitld_budget_from_server"), 1 if b["source"] == "server" else 0)
        self.assertEqual(value(samples, "hitld_budget_paused_until_timestamp_seconds"),
                         epoch(b["paused_until"]) if b["paused_until"] else 0)
        self.assertEqual(value(samples, "hitld_budget_creates_per_window"), f["creates_per_window"])
        self.assertEqual(value(samples, "hitld_budget_decisions_per_hour"), f["decisions_per_hour"])
        for s in STATES:
            self.assertEqual(value(samples, "hitld_requests", state=s), st["queue"][s], s)
        if f["drain_seconds"] is None:
            self.assertTrue(math.isnan(value(samples, "hitld_backlog_drain_seconds")))
        else:
            # Counted from the moment each was made.
            self.assertAlmostEqual(value(samples, "hitld_backlog_drain_seconds"), f["drain_seconds"], delta=3)
        self.assertEqual(value(samples, "hitld_queue_paused"), 1 if st["paused"] else 0)
        key = {None: "unknown", True: "valid", False: "invalid"}[st["key"]["valid"]]
        for k in ("missing", "unknown", "valid", "invalid"):
            self.assertEqual(value(samples, "hitld_key_state", state=k), 1 if k == key else 0, k)
        self.assertEqual(value(samples, "hitld_api_reachable"), 1 if st["api"]["reachable"] else 0)
        self.assertEqual(value(samples, "hitld_api_consecutive_failures"), st["api"]["consecutive_failures"])
        self.assertEqual(value(samples, "hitld_creates_paused"), 0 if st["api"]["creates_paused"] is None else 1)
        self.assertEqual(value(samples, "hitld_loops_paused"), len(st["api"]["loops_paused"]))
        self.assertEqual(types["hitld_rate_limited"], "counter")
        self.assertEqual(types["hitld_requests"], "gauge")
        self.assertIn("hitld_rate_limited_total", samples)
        return samples

    def check_counters_match_usage(self, st, text, usage):
        """The counters against the usage method over the whole history."""
        samples, types = parse(text)
        self.assertEqual(types["hitld_api_calls"], "counter")
        rows = {r["kind"]: r for r in usage["rows"]}
        for kind in ("create", "poll", "cancel", "feedback", "reconcile", "interactive", "probe", "trigger"):
            for outcome in ("2xx", "4xx", "429", "5xx", "no_reply", "unsent"):
                want = rows[kind]["outcomes"][outcome] if kind in rows else 0
                self.assertEqual(value(samples, "hitld_api_calls_total", kind=kind, outcome=outcome), want,
                                 (kind, outcome))
        self.assertEqual(value(samples, "hitld_decisions_total"), usage["total"]["decisions"])
        self.assertEqual(value(samples, "hitld_defaults_total"), usage["total"]["defaults"])
        self.assertEqual(value(samples, "hitld_foreign_calls_total"), st["api"]["foreign"]["total"])
        return samples

    def check(self, fetch):
        st, text, usage = self.stable(fetch)
        if isinstance(text, dict):
            self.assertEqual(text["content_type"], "text/plain; version=0.0.4; charset=utf-8")
            text = text["text"]
        self.check_matches_status(st, text)
        return st, self.check_counters_match_usage(st, text, usage)

    def test_socket_hitlctl_and_textfile_parse_and_match_status(self):
        # A decision first.
        rid = self.c.call("request.submit", single_select_request(self.loop_id, text="first"))["id"]
        r = self.wait_state(rid, "pending")
        self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        self.wait_state(rid, "completed")
        # Then a backlog, paused: nothing changes while the three are compared.
        self.c.call("queue.pause")
        ids = [self.c.call("request.submit", single_select_request(self.loop_id, text="m %d" % i))["id"]
               for i in range(12)]
        self.c.call("request.cancel", {"id": ids[-1]})

        st, samples = self.check(lambda: self.c.call("metrics"))
        self.assertEqual(st["queue"]["cancelled"], 1)
        self.assertEqual(st["queue"]["queued"], 11)
        self.assertEqual(st["forecast"]["held"], "queue_paused")
        self.assertEqual(value(samples, "hitld_decisions_total"), 1)
        self.assertEqual(value(samples, "hitld_api_calls_total", kind="create", outcome="2xx"), 1)
        self.assertTrue(math.isnan(value(samples, "hitld_backlog_drain_seconds")))

        self.check(lambda: self.hitlctl("metrics"))
        self.assertEqual(json.loads(self.hitlctl("--json", "metrics"))["content_type"],
                         "text/plain; version=0.0.4; charset=utf-8")

        # The textfile is rewritten every second: wait for one of this state.
        def textfile_current():
            text = self.read_textfile()
            if text is None:
                return None
            samples, _ = parse(text)
            st = self.c.call("status")
            if value(samples, "hitld_queue_paused") != 1 or value(samples, "hitld_budget_used") != st["budget"]["used"]:
                return None
            return text
        wait_for(textfile_current, 30, interval=0.2, what="the textfile")
        self.check(textfile_current)
        self.assertEqual(stat.S_IMODE(os.stat(self.textfile).st_mode), 0o644)
        self.assertEqual(sorted(os.listdir(self.promdir)), ["hitld.prom"])

        # Resumed: a drain forecast, while creates go out.
        self.c.call("queue.resume")
        wait_for(lambda: self.c.call("status")["forecast"]["drain_at"] is not None, 10, what="a forecast")
        st, samples = self.check(lambda: self.c.call("metrics"))
        self.assertGreater(value(samples, "hitld_backlog_drain_seconds"), 0)

    def test_a_non_admin_gets_their_own_requests_and_the_budget(self):
        for i in range(3):
            self.c.call("request.submit", single_select_request(self.loop_id, text="admin %d" % i))
        sock, loop = self.hitld.socket, self.loop_id

        def theirs():
            c = Client(sock)
            try:
                c.call("request.submit", single_select_request(loop, text="mine"))
                for _ in range(100):
                    before = c.call("status")
                    text = c.call("metrics")["text"]
                    after = c.call("status")
                    if all(before[k] == after[k] for k in ("budget", "queue", "forecast", "key", "paused")):
                        return {"status": after, "metrics": text}
                    time.sleep(0.2)
                return {"exception": "no steady state"}
            finally:
                c.close()
        got = as_uid(OTHER_UID, theirs)
        self.assertNotIn("exception", got)
        samples = self.check_matches_status(got["status"], got["metrics"])
        self.assertEqual(sum(value(samples, "hitld_requests", state=s) for s in STATES), 1)
        self.assertTrue(math.isnan(value(samples, "hitld_backlog_drain_seconds")))
        # The call counters are everyone's: an admin's.
        self.assertNotIn("hitld_api_calls_total", samples)
        self.assertNotIn("hitld_foreign_calls_total", samples)
        mine = parse(self.c.call("metrics")["text"])[0]
        self.assertGreaterEqual(sum(value(mine, "hitld_requests", state=s) for s in STATES), 3)

    def test_foreign_calls_count_as_status_says(self):
        # hitld's first reply sets its baseline (calls the server counted
        # before it are taken as hitld's own: see hitld(8), USAGE HISTORY);
        # then someone else spends 4 calls with hitld's key and hitld finds
        # them at its next reply.
        first = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(first, "pending")
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 4})
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "pending")
        wait_for(lambda: self.c.call("status")["api"]["foreign"]["total"] == 4, 30, what="the foreign calls")
        st, samples = self.check(lambda: self.c.call("metrics"))
        self.assertEqual(value(samples, "hitld_foreign_calls_total"), 4)

    def test_textfile_failures_are_logged_once_and_a_reload_moves_it(self):
        missing = os.path.join(self.tmp, "not-yet", "hitld.prom")
        with open(self.hitld.config, "w") as f:
            f.write(self.hitld.config_text({**self.config, "metrics": {"textfile": missing, "interval_s": 1}}))
        self.hitld.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: not os.path.exists(self.textfile), 10, what="the old textfile removed")
        wait_for(lambda: self.hitld.log_text().count("Cannot write the metrics textfile") == 1, 10,
                 what="the failure logged")
        before = self.emu.stats()["calls_total"]
        # Several more intervals fail (one a second): not logged again.
        time.sleep(3)
        self.assertEqual(self.hitld.log_text().count("Cannot write the metrics textfile"), 1)
        os.mkdir(os.path.dirname(missing))
        wait_for(lambda: os.path.exists(missing), 10, what="the textfile written")
        wait_for(lambda: "written again" in self.hitld.log_text(), 10, what="the recovery logged")
        with open(missing) as f:
            samples, _ = parse(f.read())
        self.assertEqual(value(samples, "hitld_budget_limit"), self.c.call("status")["budget"]["limit"])
        self.assertEqual(self.emu.stats()["calls_total"], before, "the textfile cost HITL.sh calls")


if __name__ == "__main__":
    main()
