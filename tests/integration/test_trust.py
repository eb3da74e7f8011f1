#!/usr/bin/env python3
"""What hitld trusts at start-up and on reload (issue 12, items 1, 2, 8, 9,
10 and part of 14): one daemon per state directory (a lock naming the
holder), state, socket and key directories nobody else may write (OpenSSH's
StrictModes rule, daemon/pathtrust.h), a socket file replaced under the
daemon is noticed, the socket path survives a reload (valgrind runs
Reload here), a FIFO as the key file neither hangs the start nor a reload,
and --check-config applies the daemon's own rules (and --dump exists).

Needs root (other owners, other uids); skipped otherwise.
"""
import grp
import os
import pwd
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, SLOW, Daemon, HitldTestCase, main, single_select_request, wait_for  # noqa: E402
from sec_util import (Accounts, UserDaemon, call, start_expecting_failure, sweep_stale_accounts,  # noqa: E402
                      write_key_file)

NOBODY = pwd.getpwnam("nobody")
IS_ROOT = os.geteuid() == 0


def other_group():
    """A group that is neither root's nor hitld's (the test runs hitld as root)."""
    for name in ("nogroup", "nobody", "daemon"):
        try:
            return grp.getgrnam(name)
        except KeyError:
            pass
    raise unittest.SkipTest("no group to give a directory to")


class RootTestCase(HitldTestCase):
    START_DAEMON = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not IS_ROOT:
            raise unittest.SkipTest("needs root to give files to other owners")

    def refused(self, d, *expect):
        rc, log = start_expecting_failure(d)
        self.assertNotEqual(rc, 0, log)
        for e in expect:
            self.assertIn(e, log)
        return log

    def submit_some(self, d, n):
        c = d.client()
        try:
            return [c.call("request.submit", single_select_request(self.loop_id, text="request %d" % i))["id"]
                    for i in range(n)]
        finally:
            c.close()

    def all_there(self, d, ids):
        c = d.client()
        try:
            for rid in ids:
                self.assertEqual(c.call("request.get", {"id": rid})["id"], rid)
            return c.call("request.list", {"limit": 1000})
        finally:
            c.close()


# --------------------------------------------------------------------------- item 1: one daemon per state directory

class StateLock(RootTestCase):
    def test_a_second_daemon_on_the_same_state_directory_is_refused_naming_the_holder(self):
        first = self.new_daemon().start()
        ids = self.submit_some(first, 5)
        second = self.new_daemon(name="hitld-second")
        second.state_dir = first.state_dir
        log = self.refused(second, first.state_dir, "pid %d" % first.proc.pid)
        self.assertNotIn("started:", log)
        # The first one kept every request, also after a restart.
        self.all_there(first, ids)
        more = self.submit_some(first, 2)
        first.stop()
        first.start()
        self.all_there(first, ids + more)
        self.assertIn("%d requests recovered" % len(ids + more), first.log_text())

    def test_check_config_needs_no_lock(self):
        first = self.new_daemon().start()
        p = subprocess.run([os.path.join(BUILD, "hitld"), "--config", first.config, "--state-dir",
                            first.state_dir, "--check-config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_the_lock_is_released_with_the_process(self):
        d = self.new_daemon().start()
        d.kill9()
        d.start()
        self.assertEqual(self.all_there(d, [])["requests"], [])


# --------------------------------------------------------------------------- item 2: the state directory's owner and mode

class StateDirTrust(RootTestCase):
    def test_refuses_a_state_directory_others_may_write(self):
        grp_other = other_group()
        cases = (
            ("everyone", 0o777, None, "writable by everyone", "chmod o-w"),
            ("group", 0o770, grp_other.gr_gid, "writable by group", "chmod g-w"),
            ("owner", 0o700, NOBODY.pw_uid, "owned by uid %d" % NOBODY.pw_uid, "chown"),
            ("sticky", 0o1777, None, "writable by everyone", "chmod o-w"),
        )
        for tag, mode, who, *expect in cases:
            with self.subTest(tag):
                d = self.new_daemon(name="hitld-" + tag)
                os.mkdir(d.state_dir)
                if tag == "group":
                    os.chown(d.state_dir, -1, who)
                elif tag == "owner":
                    os.chown(d.state_dir, who, -1)
                os.chmod(d.state_dir, mode)
                self.refused(d, d.state_dir, *expect)
                self.assertEqual(os.listdir(d.state_dir), [], "hitld wrote into a refused state directory")

    def test_refuses_a_parent_others_may_write_and_names_it(self):
        parent = os.path.join(self.tmp, "open")
        os.mkdir(parent)
        os.chmod(parent, 0o777)
        d = self.new_daemon()
        d.state_dir = os.path.join(parent, "state")
        os.mkdir(d.state_dir, 0o700)
        self.refused(d, parent, "writable by everyone", "chmod o-w %s" % parent)
        # A parent that is root's and sticky (like /tmp): others cannot move our directory.
        os.chmod(parent, 0o1777)
        d.start()
        d.stop()
        # Owned by another user, even 0755: that user may move our directory aside.
        os.chmod(parent, 0o755)
        os.chown(parent, NOBODY.pw_uid, -1)
        self.refused(d, parent, "owned by uid %d" % NOBODY.pw_uid)

    def test_a_sticky_parent_owned_by_another_user_is_refused(self):
        parent = os.path.join(self.tmp, "theirs")
        os.mkdir(parent)
        os.chown(parent, NOBODY.pw_uid, -1)
        os.chmod(parent, 0o1777)
        d = self.new_daemon()
        d.state_dir = os.path.join(parent, "state")
        self.refused(d, parent, "owned by uid %d" % NOBODY.pw_uid)


class StateDirAsUser(RootTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sweep_stale_accounts()
        cls.accounts = Accounts(cls.addClassCleanup)
        cls.user = cls.accounts.user("t")

    def test_the_systemd_state_directory_layout_is_accepted(self):
        """StateDirectory=hitld: /var/lib (root, 0755) / hitld (hitld's user, 0700)."""
        lib = os.path.join(self.tmp, "var-lib")
        os.mkdir(lib, 0o755)
        home = os.path.join(self.tmp, "run")
        os.mkdir(home, 0o755)
        os.chown(home, self.user.pw_uid, self.user.pw_gid)
        d = UserDaemon(home, self.emu, self.user)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.state_dir = os.path.join(lib, "hitld")
        os.mkdir(d.state_dir, 0o700)
        os.chown(d.state_dir, self.user.pw_uid, self.user.pw_gid)
        d.start()
        ids = self.submit_some(d, 1)
        self.all_there(d, ids)
        d.stop()
        # Another user's directory is refused even though hitld could write it.
        os.chown(d.state_dir, NOBODY.pw_uid, -1)
        os.chmod(d.state_dir, 0o777)
        self.refused(d, d.state_dir, "owned by uid %d" % NOBODY.pw_uid)


# --------------------------------------------------------------------------- item 8: the socket directory, a replaced socket

class SocketTrust(RootTestCase):
    def test_refuses_a_socket_directory_a_group_or_another_user_may_write(self):
        grp_other = other_group()
        for tag, setup, expect in (
                ("group", lambda p: (os.chown(p, -1, grp_other.gr_gid), os.chmod(p, 0o770)),
                 ("writable by group", "chmod g-w")),
                ("owner", lambda p: (os.chown(p, NOBODY.pw_uid, -1), os.chmod(p, 0o755)),
                 ("owned by uid %d" % NOBODY.pw_uid,)),
                ("sticky-theirs", lambda p: (os.chown(p, NOBODY.pw_uid, -1), os.chmod(p, 0o1777)),
                 ("owned by uid %d" % NOBODY.pw_uid,))):
            with self.subTest(tag):
                sockdir = os.path.join(self.tmp, "sock-" + tag)
                os.mkdir(sockdir)
                setup(sockdir)
                d = self.new_daemon(name="hitld-" + tag)
                d.socket = os.path.join(sockdir, "hitld.sock")
                self.refused(d, sockdir, *expect)
                self.assertFalse(os.path.lexists(d.socket))

    def test_a_replaced_socket_is_noticed_and_reported(self):
        d = self.new_daemon().start()
        c = d.client()
        self.addCleanup(c.close)
        st = c.call("status")
        self.assertEqual(st["socket"]["path"], d.socket)
        self.assertFalse(st["socket"]["replaced"])
        # An impostor takes the path (what a writer of the directory could do).
        os.unlink(d.socket)
        impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(impostor.close)
        impostor.bind(d.socket)
        impostor.listen(1)
        wait_for(lambda: "was replaced" in d.log_text(), 30, what="the replaced socket in the log")
        self.assertIn(d.socket, d.log_text())
        st = c.call("status")
        self.assertTrue(st["socket"]["replaced"])
        # At exit hitld leaves the impostor's file alone: it is not ours to remove.
        d.stop()
        self.assertTrue(os.path.lexists(d.socket))

    def test_a_socket_removed_is_noticed_too(self):
        d = self.new_daemon().start()
        c = d.client()
        self.addCleanup(c.close)
        os.unlink(d.socket)
        self.assertTrue(c.call("status")["socket"]["replaced"])
        wait_for(lambda: "was replaced" in d.log_text() or "was removed" in d.log_text(), 30,
                 what="the removed socket in the log")


# --------------------------------------------------------------------------- item 9: reload keeps the socket path

class ConfigPathDaemon(Daemon):
    """socket.path and outbox.state_dir from the configuration file, not the command line."""

    def __init__(self, workdir, emulator, **kw):
        self.paths = {"socket": os.path.join(workdir, "cfg.sock"), "state": os.path.join(workdir, "cfg-state")}
        super().__init__(workdir, emulator, config_extra={"socket": {"path": self.paths["socket"]},
                                                          "outbox": {"state_dir": self.paths["state"]}}, **kw)

    def start(self, wait=True):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "CREDENTIALS_DIRECTORY"):
            env.pop(k, None)
        env["HITL_API_KEY"] = self.key
        self.stderr = open(self.stderr_path, "a")
        self.proc = subprocess.Popen([os.path.join(BUILD, "hitld"), "--config", self.config, "--foreground"],
                                     stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, env=env)
        self.runs += 1
        if wait:
            wait_for(self._connectable, 15, what="hitld socket")
        return self


class Reload(HitldTestCase):
    START_DAEMON = False

    def test_start_reload_stop_with_the_socket_path_from_the_configuration(self):
        d = ConfigPathDaemon(self.tmp, self.emu)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.socket = d.paths["socket"]
        d.start()
        rid = call(d.socket, "request.submit", single_select_request(self.loop_id))["result"]["id"]
        for n in (1, 2):
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log_text().count("Configuration reloaded.") >= n, 15, what="reload %d" % n)
        self.assertEqual(call(d.socket, "request.get", {"id": rid})["result"]["id"], rid)
        d.stop()
        self.assertFalse(os.path.lexists(d.socket), "the socket was not removed at exit")
        self.assertTrue(os.path.isdir(d.paths["state"]))


# --------------------------------------------------------------------------- item 10: the key file

class KeyFileTrust(RootTestCase):
    def test_a_fifo_as_the_key_file_is_refused_at_start_without_hanging(self):
        fifo = os.path.join(self.tmp, "api.key")
        os.mkfifo(fifo, 0o600)
        d = self.new_daemon({"api": {"key_file": fifo}})
        self.refused(d, fifo, "not a regular file")

    def test_a_fifo_as_the_key_file_on_reload_keeps_the_daemon_serving(self):
        key_file = os.path.join(self.tmp, "api.key")
        write_key_file(key_file, KEY)
        d = self.new_daemon({"api": {"key_file": key_file}}, key=None).start()
        os.unlink(key_file)
        os.mkfifo(key_file, 0o600)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the current one" in d.log_text(), 15, what="the reload")
        self.assertIn("not a regular file", d.log_text())
        c = d.client(timeout=10)
        try:
            self.assertTrue(c.call("status")["key"]["loaded"])
        finally:
            c.close()
        self.assertEqual(d.stop(), 0)

    def test_refuses_a_key_file_in_a_directory_others_may_write(self):
        grp_other = other_group()
        for tag, mode, gid, expect in (("everyone", 0o777, None, "writable by everyone"),
                                       ("group", 0o770, grp_other.gr_gid, "writable by group"),
                                       ("sticky-theirs", 0o1777, None, "owned by uid %d" % NOBODY.pw_uid)):
            with self.subTest(tag):
                keydir = os.path.join(self.tmp, "keys-" + tag)
                os.mkdir(keydir)
                key_file = os.path.join(keydir, "api.key")
                write_key_file(key_file, KEY)
                if gid is not None:
                    os.chown(keydir, -1, gid)
                if tag == "sticky-theirs":
                    os.chown(keydir, NOBODY.pw_uid, -1)
                os.chmod(keydir, mode)
                d = self.new_daemon({"api": {"key_file": key_file}}, name="hitld-" + tag)
                self.refused(d, keydir, expect)


# --------------------------------------------------------------------------- item 14 (part): --check-config, --dump

class CheckConfig(HitldTestCase):
    START_DAEMON = False

    def hitld(self, *args, config_text=None):
        path = os.path.join(self.tmp, "check.conf")
        with open(path, "w") as f:
            f.write(config_text or "")
        return subprocess.run([os.path.join(BUILD, "hitld"), "--config", path] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW,
                              universal_newlines=True)

    def test_check_config_refuses_plain_http_to_a_remote_host_like_the_daemon(self):
        text = 'api: { base_url = "http://api.example.com/v1"; };\n'
        p = self.hitld("--check-config", config_text=text)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("api.base_url", p.stderr)
        self.assertIn("loopback", p.stderr)
        for ok in ("http://127.0.0.1:8080/v1", "http://localhost/v1", "http://[::1]:9/v1",
                   "https://api.example.com/v1"):
            with self.subTest(ok):
                p = self.hitld("--check-config", config_text='api: { base_url = "%s"; };\n' % ok)
                self.assertEqual(p.returncode, 0, p.stderr)

    def test_dump_prints_the_effective_configuration(self):
        text = 'budget: { poll_reserve = 7; };\n'
        p = self.hitld("--check-config", "--dump", "--socket", "/run/x/h.sock", config_text=text)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("poll_reserve = 7;", p.stdout)
        self.assertIn('path = "/run/x/h.sock";', p.stdout)
        self.assertIn("base_url", p.stdout)
        # The dump reads back as the same configuration.
        again = self.hitld("--check-config", "--dump", config_text=p.stdout)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, p.stdout)
        # --dump alone implies --check-config: it never starts the daemon.
        alone = self.hitld("--dump", config_text=text)
        self.assertEqual((alone.returncode, alone.stdout), (0, p.stdout.replace('"/run/x/h.sock"', '"/run/hitld.sock"')))


if __name__ == "__main__":
    main()
