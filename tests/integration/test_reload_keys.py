#!/usr/bin/env python3
# run-suite: about 40 s
"""What `systemctl reload hitld` (SIGHUP, daemon.reload) does with each key
of hitld.conf(5): every key either applies on reload, or a changed one is
named in the reload's one warning (and in daemon.reload's "restart_needed")
as taking effect at the next start. Nothing is silently ignored.

KEYS below names every key `hitld --check-config --dump` prints (a key added
without a line here fails the test) with a value to change it to; the tests
then show the effect of the reloadable ones, by `status` or by behaviour,
and that each start-only one is named. Reloadable keys whose effect is not
shown here on its own: socket.max_connections, max_output_mb_per_uid,
max_output_mb_total and cpu_percent_per_uid (the same RpcLimits push as
max_message_bytes and max_connections_per_uid, shown), budget.warn_drain_hours,
queue.precedence_group, outbox.max_lifetime_s and retention_days, and
webhook.public_url (read where they are used; test_forecast, test_fairness,
test_api2026, test_webhook show what they do).
"""
import datetime
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, HitldTestCase, RpcError, as_uid, main, single_select_request, wait_for  # noqa: E402
from sec_util import write_key_file  # noqa: E402

RESTART_TEXT = "take effect at the next start"
NOBODY = 65534   # and its group nogroup

# key: (applies on reload?, a value that differs from the tests' one)
KEYS = {
    "api.base_url": (False, "http://127.0.0.1:1/v1"),
    "api.key_file": (True, None),               # a path in the test's directory
    "api.next_key_file": (True, None),          # likewise
    "api.rotate_after_days": (True, 5),
    "api.timeout_s": (False, 7),
    "api.min_timeout_margin": (True, 600),
    "api.ca_file": (False, "/etc/hitld/other-ca.pem"),
    "api.loop_cache_ttl_s": (True, 0),
    "api.foreign_threshold": (True, 7),
    "budget.limit_per_hour": (True, 40),
    "budget.poll_reserve": (True, 4),
    "budget.min_poll_interval_s": (True, 1),
    "budget.window_s": (True, 20),
    "budget.interactive_per_uid": (True, 3),
    "budget.interactive_total": (True, 6),
    "budget.warn_drain_hours": (True, 2),
    "socket.path": (False, "/run/hitld-elsewhere.sock"),
    "socket.mode": (False, "0600"),
    "socket.group": (False, "nogroup"),
    "socket.admin_group": (True, "nogroup"),
    "socket.max_connections_per_uid": (True, 5),
    "socket.max_connections": (True, 50),
    "socket.max_message_bytes": (True, 1024),
    "socket.idle_timeout_s": (True, 1),
    "socket.max_output_mb_per_uid": (True, 2),
    "socket.max_output_mb_total": (True, 4),
    "socket.max_input_mb_per_uid": (True, 2),
    "socket.max_input_mb_total": (True, 4),
    "socket.cpu_percent_per_uid": (True, 50),
    "socket.loop_writes": (True, "all"),
    "queue.precedence_group": (True, "nogroup"),
    "outbox.state_dir": (False, "/var/lib/hitld-elsewhere"),
    "outbox.max_requests": (True, 1),
    "outbox.max_per_uid": (True, 1),
    "outbox.min_free_mb": (True, 1048576),
    "outbox.max_lifetime_s": (True, 7200),
    "outbox.retention_days": (True, 3),
    "metrics.textfile": (True, None),           # a path in the test's directory
    "metrics.interval_s": (True, 5),
    "log.level": (True, "warning"),
    "webhook.listen": (False, "127.0.0.1:1"),
    "webhook.public_url": (True, "https://hitld.example.com/hook"),
    "webhook.max_connections": (False, 8),
    "webhook.timeout_s": (False, 3),
    "webhook.sweep_interval_s": (True, 600),
}


def dumped_keys(config_path):
    p = subprocess.run([os.path.join(BUILD, "hitld"), "--check-config", "--dump", "--config", config_path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    keys, group = [], None
    for line in p.stdout.splitlines():
        m = re.match(r"^(\w+) = \{$", line)
        if m:
            group = m.group(1)
            continue
        m = re.match(r"^\t(?:# )?(\w+)(?: = | is not set)", line)
        if m:
            keys.append("%s.%s" % (group, m.group(1)))
    return keys


def epoch(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class ReloadBase(HitldTestCase):
    # A long window, so that no rollover comes between a reload and its check.
    CONFIG = {"budget": {"window_s": 3600}}

    def setUp(self):
        super().setUp()
        self.overrides = {g: dict(kv) for g, kv in self.CONFIG.items()}

    def value(self, key):
        v = KEYS[key][1]
        if key == "api.key_file" or key == "api.next_key_file":
            v = os.path.join(self.tmp, key + ".key")
            write_key_file(v, KEY)
        elif key == "metrics.textfile":
            v = os.path.join(self.tmp, "hitld.prom")
        return v

    def reload_with(self, settings):
        """Writes the configuration with settings ({"group.key": value}) on
        top of what was set before, reloads, and returns daemon.reload's
        reply and the log the reload wrote."""
        for k, v in settings.items():
            g, name = k.split(".", 1)
            self.overrides.setdefault(g, {})[name] = v
        with open(self.hitld.config, "w") as f:
            f.write(self.hitld.config_text(self.overrides))
        before = len(self.hitld.log_text())
        reply = self.c.call("daemon.reload")
        self.assertTrue(reply["reloaded"], reply)
        # The reply comes after the reload's log lines.
        return reply, self.hitld.log_text()[before:]

    def restart_lines(self, log):
        return [l for l in log.splitlines() if RESTART_TEXT in l]


class EveryKeyIsClassified(ReloadBase):
    def test_the_table_names_every_key_of_the_dump(self):
        self.assertEqual(sorted(dumped_keys(self.hitld.config)), sorted(KEYS))

    def test_start_only_keys_are_named_in_one_warning_and_in_the_reply(self):
        start_only = sorted(k for k, (reload, _) in KEYS.items() if not reload)
        settings = {k: self.value(k) for k in start_only}
        settings["webhook.public_url"] = self.value("webhook.public_url")   # webhook.listen needs it
        reply, log = self.reload_with(settings)
        lines = self.restart_lines(log)
        self.assertEqual(len(lines), 1, log)
        for k in start_only:
            self.assertRegex(lines[0], r"\b%s\b" % re.escape(k))
        self.assertEqual(sorted(reply["restart_needed"]), start_only)
        # Still running as it was started: the same socket, the same HITL.sh.
        self.assertEqual(self.c.call("status")["api"]["base_url"], "http://127.0.0.1:%d/v1" % self.emu.port)

        # Reloaded again unchanged: they are still not in effect, and still said.
        reply, log = self.reload_with({})
        self.assertEqual(len(self.restart_lines(log)), 1, log)
        self.assertEqual(sorted(reply["restart_needed"]), start_only)
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "reload"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        line = [l for l in p.stdout.splitlines() if l.startswith("not in effect until hitld restarts")]
        self.assertEqual(len(line), 1, p.stdout)
        self.assertEqual(sorted(line[0].split(":", 1)[1].replace(" ", "").split(",")), start_only)

    def test_reloadable_keys_are_not_named(self):
        settings = {k: self.value(k) for k, (reload, _) in KEYS.items() if reload}
        # Not the ones that would stop the test's own calls.
        for k in ("outbox.min_free_mb", "socket.idle_timeout_s", "socket.max_message_bytes"):
            del settings[k]
        reply, log = self.reload_with(settings)
        self.assertEqual(self.restart_lines(log), [], log)
        self.assertEqual(reply["restart_needed"], [])


class BudgetKeys(ReloadBase):
    def my_share(self):
        c = self.hitld.client()
        try:
            return c.call("status")["budget"]["interactive"]["share"]
        finally:
            c.close()

    def test_limit_window_reserve_and_shares_apply_on_reload(self):
        st = self.c.call("status")
        self.assertEqual(st["budget"]["limit"], 100)
        self.assertEqual(st["budget"]["source"], "local")
        self.assertEqual(st["budget"]["interactive"]["total"], 20)

        # A lower limit: the interactive shares, unset, follow it (limit / 5, / 20).
        self.reload_with({"budget.limit_per_hour": 40})
        st = self.c.call("status")
        self.assertEqual(st["budget"]["limit"], 40)
        self.assertEqual(st["budget"]["remaining"], 40)
        self.assertEqual(st["budget"]["interactive"]["total"], 8)
        self.assertEqual(st["forecast"]["creates_per_window"], 30)
        share = as_uid(NOBODY, self.my_share)
        self.assertEqual(share, 2)

        self.reload_with({"budget.poll_reserve": 4, "budget.interactive_total": 6,
                          "budget.interactive_per_uid": 3})
        st = self.c.call("status")
        self.assertEqual(st["polling"]["poll_reserve"], 4)
        self.assertEqual(st["forecast"]["creates_per_window"], 36)
        self.assertEqual(st["budget"]["interactive"]["total"], 6)
        share = as_uid(NOBODY, self.my_share)
        self.assertEqual(share, 3)

        # A shorter window: the hour in progress ends at the first 20 s boundary.
        self.assertGreater(epoch(st["budget"]["reset_at"]) - time.time(), 0)
        self.reload_with({"budget.window_s": 20})
        reset = epoch(self.c.call("status")["budget"]["reset_at"])
        self.assertLessEqual(reset - time.time(), 21)
        self.assertEqual(reset % 20, 0)

    def test_the_servers_limit_keeps_precedence(self):
        self.c.call("key.test")                    # HITL.sh's headers: limit 100
        self.assertEqual(self.c.call("status")["budget"]["source"], "server")
        self.reload_with({"budget.limit_per_hour": 40})
        self.assertEqual(self.c.call("status")["budget"]["limit"], 100)


class LimitLoweredAndRaised(ReloadBase):
    """A reload that lowers budget.limit_per_hour below what the window used
    keeps the calls counted: status, the metrics and hitlctl show used over
    the limit and 0 left (never a wrapped number), and a second reload that
    raises it again leaves only the raised limit less the calls made."""
    # A day-long window: no rollover between the reloads and their checks.
    CONFIG = {"budget": {"window_s": 86400}}

    def budget_metrics(self):
        text = self.c.call("metrics")["text"]
        got = {}
        for name in ("limit", "used", "remaining"):
            m = re.search(r"^hitld_budget_%s (\S+)$" % name, text, re.M)
            self.assertIsNotNone(m, "hitld_budget_%s in %r" % (name, text[:400]))
            got[name] = float(m.group(1))
        return got

    def test_the_calls_made_stay_counted(self):
        # Calls HITL.sh received but never answered: counted by hitld alone
        # (no rate-limit headers, so the configured limit rules).
        self.emu.ctl("POST", "/_emu/faults", {"kind": "reset", "count": 3,
                                              "match": {"path_prefix": "/v1/test"}})
        for _ in range(3):
            with self.assertRaises(RpcError):
                self.c.call("key.test")
        b = self.c.call("status")["budget"]
        self.assertEqual(b["source"], "local")
        used = b["used"]
        self.assertGreaterEqual(used, 3)

        self.reload_with({"budget.limit_per_hour": 2, "budget.poll_reserve": 0})
        st = self.c.call("status")
        self.assertEqual((st["budget"]["limit"], st["budget"]["used"], st["budget"]["remaining"]), (2, used, 0))
        self.assertEqual(st["forecast"]["creates_per_window"], 2)
        self.assertEqual(self.budget_metrics(), {"limit": 2, "used": used, "remaining": 0})
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "--socket", self.hitld.socket, "status"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("%d/2 calls used this hour, 0 left" % used, p.stdout)

        self.reload_with({"budget.limit_per_hour": 100, "budget.poll_reserve": 10})
        b = self.c.call("status")["budget"]
        self.assertEqual((b["limit"], b["used"], b["remaining"]), (100, used, 100 - used))
        self.assertEqual(self.budget_metrics(), {"limit": 100, "used": used, "remaining": 100 - used})


class PollInterval(ReloadBase):
    CONFIG = {"budget": {"window_s": 3600, "min_poll_interval_s": 3600}}

    def test_a_shorter_poll_interval_applies_to_the_poll_already_scheduled(self):
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        r = self.wait_state(rid, "pending")
        self.emu.respond(r["remote_id"], {"selected_value": "approve"})
        self.reload_with({"budget.min_poll_interval_s": 1})
        self.wait_state(rid, "completed", timeout=60)


class OtherKeys(ReloadBase):
    def submit(self, **extra):
        return self.c.call("request.submit", single_select_request(self.loop_id, **extra))

    def test_status_shows_them(self):
        reply, _ = self.reload_with({k: self.value(k) for k in (
            "api.foreign_threshold", "api.rotate_after_days", "webhook.sweep_interval_s", "api.key_file",
            "api.next_key_file")})
        st = self.c.call("status")
        self.assertEqual(st["api"]["foreign"]["threshold"], 7)
        self.assertEqual(st["key"]["rotate_after_days"], 5)
        self.assertEqual(st["polling"]["sweep_interval_s"], 600)
        self.assertEqual(reply["key"], {"loaded": True, "source": "key_file"})
        self.assertIsNotNone(st["key"]["standby"])

    def test_metrics_textfile_and_log_level(self):
        path = self.value("metrics.textfile")
        self.reload_with({"metrics.textfile": path})
        wait_for(lambda: os.path.exists(path), 30, what="the metrics textfile")
        _, log = self.reload_with({"log.level": "debug"})
        self.assertIn("Configuration reloaded.", log)
        _, log = self.reload_with({"log.level": "warning"})
        self.assertNotIn("Configuration reloaded.", log)

    def test_submit_limits(self):
        with self.assertRaises(RpcError) as e:
            self.reload_with({"api.min_timeout_margin": 600})
            self.submit(timeout_seconds=300)
        self.assertGreaterEqual(e.exception.data["min_timeout_seconds"], 660)
        self.reload_with({"api.min_timeout_margin": 30})

        self.submit()
        self.reload_with({"outbox.max_per_uid": 1})
        with self.assertRaisesRegex(RpcError, "for this user"):
            self.submit()
        self.reload_with({"outbox.max_per_uid": 1000, "outbox.max_requests": 1})
        with self.assertRaisesRegex(RpcError, "in the daemon"):
            self.submit()
        self.reload_with({"outbox.max_requests": 100000, "outbox.min_free_mb": 1048576})
        with self.assertRaisesRegex(RpcError, "no space left"):
            self.submit()

    def test_admin_group(self):
        def reload_as_nobody():
            c = self.hitld.client()
            try:
                c.call("daemon.reload")
                return "ok"
            except RpcError as e:
                return e.message
            finally:
                c.close()
        self.assertNotEqual(as_uid(NOBODY, reload_as_nobody), "ok")
        self.reload_with({"socket.admin_group": "nogroup"})
        self.assertEqual(as_uid(NOBODY, reload_as_nobody), "ok")

    def test_loop_writes_and_the_loop_cache(self):
        def delete_as_nobody():
            c = self.hitld.client()
            try:
                c.call("loop.delete", {"id": "a" * 24})
                return 0
            except RpcError as e:
                return e.code
            finally:
                c.close()
        self.assertEqual(as_uid(NOBODY, delete_as_nobody), -32002)
        self.reload_with({"socket.loop_writes": "all"})
        self.assertNotEqual(as_uid(NOBODY, delete_as_nobody), -32002)

        def loop_reads():
            return sum(1 for m, p, _ in self.emu.api_calls() if m == "GET" and p.endswith("/loops/" + self.loop_id))
        for _ in range(2):
            self.c.call("loop.get", {"id": self.loop_id})
        self.assertEqual(loop_reads(), 1)                 # the second from the cache
        self.reload_with({"api.loop_cache_ttl_s": 0})
        for _ in range(2):
            self.c.call("loop.get", {"id": self.loop_id})
        self.assertEqual(loop_reads(), 3)

    def test_connections_per_uid_and_metrics_interval(self):
        def two_connections_as_nobody():
            a = self.hitld.client()
            b = self.hitld.client()
            try:
                a.call("hello")
                try:
                    b.call("hello")
                    return 0
                except (RpcError, AssertionError, ConnectionError, OSError):
                    return -1
            finally:
                a.close()
                b.close()
        self.assertEqual(as_uid(NOBODY, two_connections_as_nobody), 0)
        self.reload_with({"socket.max_connections_per_uid": 1})
        self.assertEqual(as_uid(NOBODY, two_connections_as_nobody), -1)

        path = self.value("metrics.textfile")
        self.reload_with({"metrics.textfile": path, "metrics.interval_s": 1})
        wait_for(lambda: os.path.exists(path), 30, what="the metrics textfile")
        first = os.stat(path).st_mtime_ns
        wait_for(lambda: os.stat(path).st_mtime_ns != first, 30, what="the textfile rewritten after 1 s")

    def test_socket_limits(self):
        self.reload_with({"socket.max_message_bytes": 1024})
        c = self.hitld.client()
        self.addCleanup(c.close)
        c.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"padding": "%s"}}\n' % (b"x" * 2000))
        self.assertIn("error", c.read_message())

        self.reload_with({"socket.max_message_bytes": 1048576, "socket.idle_timeout_s": 1})
        idle = self.hitld.client()
        self.addCleanup(idle.close)

        def closed():
            try:
                return idle.sock.recv(4096) == b""
            except OSError:
                return True
        idle.sock.settimeout(30)
        self.assertTrue(closed())


if __name__ == "__main__":
    main()
