#!/usr/bin/env python3
"""hitld as a systemd service, tested without a PID-1 systemd.

- The unit files: systemd-analyze verify, systemd-analyze security (exposure
  at most 2.0), the settings the design requires, sysusers and tmpfiles
  applied to a scratch root, the journal catalog, the man page, make install.
- Socket activation: under systemd-socket-activate the first connection
  starts hitld and is served; an inherited socket outlives the daemon and is
  never unlinked; a socket of the wrong kind is refused.
- sd_notify: a test-owned NOTIFY_SOCKET sees READY (only once the socket
  serves), STATUS, WATCHDOG, RELOADING and STOPPING, all from the main pid.
- The journal: a private systemd-journald; a request's life as entries with
  MESSAGE_ID and HITL_* fields, explained by journalctl -x from the catalog;
  the API key nowhere.
- The sandbox: under strace, every system call, socket family, /proc, /dev
  and file write stays inside what hitld.service allows.
"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, KEY, ROOT, SANITIZER, SLOW, Client, HitldTestCase,  # noqa: E402
                     main, single_select_request, wait_for)
from systemd_support import (SYSTEMD_DIR, CommandDaemon, NotifySocket, PrivateJournal,  # noqa: E402
                             catalog_entries, message_ids, read_unit, staged_units)

MAX_EXPOSURE = 2.0
SANDBOX_KEYS = (
    "User", "Group", "UMask", "LimitCORE", "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities",
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateIPC", "PrivateMounts",
    "ProtectProc", "ProcSubset", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectClock", "ProtectHostname", "ProtectControlGroups", "RestrictAddressFamilies",
    "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "RemoveIPC", "KeyringMode",
    "LockPersonality", "MemoryDenyWriteExecute", "DevicePolicy", "SystemCallArchitectures",
    "SystemCallFilter", "SystemCallErrorNumber", "Type", "NotifyAccess", "WatchdogSec", "Restart",
    "ExecReload", "TimeoutStopSec")


def run(argv, timeout=60, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout * SLOW, **kw)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def daemon_hitl_fields():
    """Every HITL_* journal field name the daemon's sources log."""
    names = set()
    d = os.path.join(ROOT, "daemon")
    for name in os.listdir(d):
        if name.endswith(".c"):
            with open(os.path.join(d, name)) as f:
                names.update(re.findall(r'\{\s*"(HITL_[A-Z0-9_]+)"', f.read()))
    return names


class TempDirTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hitld-systemd-")
        self.addCleanup(shutil.rmtree, self.tmp, True)


# ====================================================================== unit files

class UnitFiles(TempDirTestCase):
    def unit(self, name):
        return read_unit(os.path.join(SYSTEMD_DIR, name))

    def test_units_pass_systemd_analyze_verify_without_a_warning(self):
        d = staged_units(self.tmp)
        units = [os.path.join(d, n) for n in ("hitld.service", "hitld.socket",
                                              "hitld@production.service", "hitld@production.socket")]
        rc, out, err = run(["systemd-analyze", "verify", "--man=no"] + units)
        self.assertEqual(rc, 0, out + err)
        # verify only warns about unknown keys or bad values; any output is a defect.
        self.assertEqual((out + err).strip(), "", "systemd-analyze verify complained")

    def test_service_exposure_is_at_most_2_0_for_plain_and_template_units(self):
        d = staged_units(self.tmp)
        for name in ("hitld.service", "hitld@production.service"):
            with self.subTest(name):
                rc, out, err = run(["systemd-analyze", "security", "--no-pager", "--offline=true",
                                    "--threshold=%d" % int(MAX_EXPOSURE * 10), os.path.join(d, name)])
                m = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", out)
                self.assertIsNotNone(m, out + err)
                self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, out)
                self.assertIn(m.group(2), ("OK", "PERFECT"), out)
                self.assertEqual(rc, 0, "exposure above the threshold:\n" + out + err)

    def test_security_threshold_fails_a_unit_that_loses_its_hardening(self):
        # The check above can fail: the same service without its sandbox is refused.
        d = staged_units(self.tmp)
        weak = os.path.join(d, "weak.service")
        with open(os.path.join(d, "hitld.service")) as f:
            lines = [l for l in f if l.split("=")[0] not in SANDBOX_KEYS[2:] or l.startswith("Type")]
        with open(weak, "w") as f:
            f.writelines(lines)
        rc, out, _ = run(["systemd-analyze", "security", "--no-pager", "--offline=true",
                          "--threshold=%d" % int(MAX_EXPOSURE * 10), weak])
        self.assertNotEqual(rc, 0, out)

    def test_service_has_the_settings_the_design_requires(self):
        for name in ("hitld.service", "hitld@.service"):
            with self.subTest(name):
                u = self.unit(name)
                s = u["Service"]
                one = lambda k: (self.assertEqual(len(s.get(k, [])), 1, "%s: %s" % (name, k)), s[k][0])[1]
                self.assertEqual(one("Type"), "notify")
                self.assertEqual(one("NotifyAccess"), "main")
                self.assertRegex(one("WatchdogSec"), r"^\d+(s|min)$")
                self.assertEqual(one("Restart"), "on-failure")
                self.assertTrue(one("ExecStart").startswith("/usr/sbin/hitld "))
                self.assertEqual(one("ExecReload"), "/bin/kill -HUP $MAINPID")
                self.assertEqual(one("User"), "hitld")
                self.assertEqual(one("LimitCORE"), "0")
                self.assertEqual(one("UMask"), "0077")
                # The key, and the optional standby key (hitld(8), "Key rotation").
                self.assertEqual([c.split(":")[0] for c in s["LoadCredential"]], ["hitl-api-key", "hitl-api-key.next"])
                for k in ("StateDirectory", "RuntimeDirectory", "ConfigurationDirectory"):
                    self.assertTrue(one(k), k)
                for k in ("CapabilityBoundingSet", "AmbientCapabilities"):
                    self.assertEqual(one(k), "", "%s must be empty" % k)
                for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateIPC",
                          "PrivateMounts", "ProtectKernelTunables", "ProtectKernelModules",
                          "ProtectKernelLogs", "ProtectClock", "ProtectHostname", "ProtectControlGroups",
                          "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "RemoveIPC",
                          "LockPersonality", "MemoryDenyWriteExecute"):
                    self.assertEqual(one(k), "yes", k)
                self.assertEqual(one("ProtectSystem"), "strict")
                self.assertEqual(one("SystemCallArchitectures"), "native")
                self.assertEqual(sorted(one("RestrictAddressFamilies").split()),
                                 ["AF_INET", "AF_INET6", "AF_UNIX"])
                self.assertEqual(s["SystemCallFilter"][0], "@system-service")
                # PrivateUsers= would map every client to nobody: peer-uid checks break.
                self.assertNotIn("PrivateUsers", s)
                self.assertNotIn("DynamicUser", s)
                self.assertIn("Requires", u["Unit"])

    def test_template_and_plain_service_share_one_sandbox(self):
        a = self.unit("hitld.service")["Service"]
        b = self.unit("hitld@.service")["Service"]
        for k in SANDBOX_KEYS:
            self.assertEqual(a.get(k), b.get(k), "hitld.service and hitld@.service differ in %s" % k)

    def test_sockets_listen_in_run_outside_the_runtime_directory(self):
        for name, path in (("hitld.socket", "/run/hitld.sock"), ("hitld@.socket", "/run/hitld-%i.sock")):
            with self.subTest(name):
                s = self.unit(name)["Socket"]
                self.assertEqual(s["ListenStream"], [path])
                self.assertEqual(s["SocketGroup"], ["hitl"])
                self.assertEqual(s["SocketMode"], ["0660"])
                self.assertNotIn("Accept", [k for k, v in s.items() if v != ["no"]])
        svc = self.unit("hitld.service")["Service"]
        self.assertFalse("/run/hitld.sock".startswith("/run/%s/" % svc["RuntimeDirectory"][0]))

    def test_template_instance_has_its_own_socket_key_config_and_state(self):
        s = self.unit("hitld@.service")["Service"]
        argv = s["ExecStart"][0].split()
        self.assertEqual(argv[argv.index("--config") + 1], "/etc/hitld/%i.conf")
        self.assertEqual(argv[argv.index("--state-dir") + 1], "/var/lib/hitld-%i")
        self.assertEqual(argv[argv.index("--socket") + 1], "/run/hitld-%i.sock")
        self.assertEqual(s["StateDirectory"], ["hitld-%i"])
        self.assertEqual(s["RuntimeDirectory"], ["hitld-%i"])
        self.assertEqual(s["LoadCredential"], ["hitl-api-key:hitl-api-key.%i", "hitl-api-key.next:hitl-api-key.%i.next"])
        self.assertEqual(self.unit("hitld@.service")["Unit"]["Requires"], ["hitld@%i.socket"])
        # The plain service's state directory is the one hitld is told to use.
        p = self.unit("hitld.service")["Service"]
        argv = p["ExecStart"][0].split()
        self.assertEqual(argv[argv.index("--state-dir") + 1], "/var/lib/" + p["StateDirectory"][0])

    def test_sysusers_and_tmpfiles_create_the_user_group_and_directories(self):
        root = self.tmp
        os.makedirs(os.path.join(root, "etc"))
        for src, dst in (("hitld.sysusers", "usr/lib/sysusers.d/hitld.conf"),
                         ("hitld.tmpfiles", "usr/lib/tmpfiles.d/hitld.conf")):
            os.makedirs(os.path.dirname(os.path.join(root, dst)), exist_ok=True)
            shutil.copy(os.path.join(SYSTEMD_DIR, src), os.path.join(root, dst))
        rc, out, err = run(["systemd-sysusers", "--root", root])
        self.assertEqual(rc, 0, out + err)
        with open(os.path.join(root, "etc", "passwd")) as f:
            users = {l.split(":")[0]: l.strip().split(":") for l in f}
        with open(os.path.join(root, "etc", "group")) as f:
            groups = {l.split(":")[0]: l.strip().split(":") for l in f}
        self.assertIn("hitld", users)
        self.assertIn("hitl", groups)
        uid = int(users["hitld"][2])
        self.assertLess(uid, 1000, "hitld must be a system user")
        self.assertEqual(users["hitld"][5], "/var/lib/hitld")
        self.assertTrue(users["hitld"][6].endswith("nologin"))
        rc, out, err = run(["systemd-tmpfiles", "--root", root, "--create"])
        self.assertEqual(rc, 0, out + err)
        st = os.stat(os.path.join(root, "var/lib/hitld"))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (uid, 0o700))
        st = os.stat(os.path.join(root, "etc/credstore"))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o700))
        self.assertTrue(os.path.isdir(os.path.join(root, "etc/hitld")))

    def test_catalog_has_one_entry_per_message_id(self):
        ids = message_ids()
        entries = catalog_entries()
        self.assertGreaterEqual(len(ids), 15)
        self.assertEqual(len(set(ids.values())), len(ids), "two MESSAGE_IDs are equal")
        self.assertEqual(set(entries), set(ids.values()))
        fields = daemon_hitl_fields()
        for name, mid in ids.items():
            with self.subTest(name):
                self.assertRegex(mid, r"^[0-9a-f]{32}$")
                e = entries[mid]
                self.assertIsNone(e["lang"])
                self.assertTrue(e["headers"].get("Subject"))
                self.assertEqual(e["headers"].get("Defined-By"), "hitld")
                self.assertIn("man:hitld(8)", e["headers"].get("Documentation", ""))
                self.assertGreater(len(e["body"]), 80)
                used = set(re.findall(r"@([A-Z0-9_]+)@", e["headers"]["Subject"] + e["body"]))
                # MID_BUDGET_EXHAUSTED's fields are proposed; the others must exist.
                if name != "MID_BUDGET_EXHAUSTED":
                    self.assertLessEqual(used, fields, "catalog uses fields hitld never logs")

    def test_catalog_compiles_and_lists_every_entry(self):
        d = os.path.join(self.tmp, "usr/lib/systemd/catalog")
        os.makedirs(d)
        shutil.copy(os.path.join(SYSTEMD_DIR, "hitld.catalog"), d)
        rc, out, err = run(["journalctl", "--root", self.tmp, "--update-catalog"])
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("hitld.catalog", err)   # parse complaints name the file
        rc, out, err = run(["journalctl", "--root", self.tmp, "--list-catalog", "--no-pager"])
        self.assertEqual(rc, 0, err)
        listed = {l.split()[0] for l in out.splitlines() if l.strip()}
        self.assertEqual(listed, set(message_ids().values()))

    def test_man_page_documents_every_message_id_field_and_option(self):
        with open(os.path.join(ROOT, "docs", "hitld.8")) as f:
            page = f.read()
        flat = page.replace("\\-", "-").replace("\\_", "_")
        for name, mid in message_ids().items():
            self.assertIn(mid, flat, name)
        for field in daemon_hitl_fields():
            self.assertIn(field, flat, field)
        rc, out, _ = run([os.path.join(BUILD, "hitld"), "--help"])
        for opt in set(re.findall(r"(--[a-z][a-z-]+)", out)):
            self.assertIn(opt, flat, opt)
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "SIGNALS", "FILES", "EXIT STATUS", "SEE ALSO"):
            self.assertRegex(page, r'(?m)^\.SH "?%s' % section, section)

    @unittest.skipUnless(shutil.which("groff"), "groff is not installed")
    def test_man_page_renders_without_warnings(self):
        rc, out, err = run(["groff", "-man", "-ww", "-z", "-t", os.path.join(ROOT, "docs", "hitld.8")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(err.strip(), "")


class Install(TempDirTestCase):
    def test_make_install_puts_each_file_in_its_standard_place(self):
        if SANITIZER:
            self.skipTest("packaging is checked against the normal build")
        build = os.path.relpath(BUILD, ROOT)
        q = subprocess.run(["make", "-q", "B=" + build, "all"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        if q.returncode != 0:
            self.skipTest("the build in %s is not up to date; make install would rebuild" % build)
        dest = os.path.join(self.tmp, "dest")
        rc, out, err = run(["make", "--no-print-directory", "install", "DESTDIR=" + dest, "PREFIX=/usr",
                            "B=" + build], cwd=ROOT, timeout=120)
        self.assertEqual(rc, 0, out + err)

        def pc(var, default):
            rc, out, _ = run(["pkg-config", "--variable=" + var, "systemd"])
            return out.strip() if rc == 0 and out.strip() else default
        unitdir = pc("systemdsystemunitdir", "/lib/systemd/system")
        expected = [
            "/usr/sbin/hitld",
            unitdir + "/hitld.service", unitdir + "/hitld.socket",
            unitdir + "/hitld@.service", unitdir + "/hitld@.socket",
            pc("sysusersdir", "/usr/lib/sysusers.d") + "/hitld.conf",
            pc("tmpfilesdir", "/usr/lib/tmpfiles.d") + "/hitld.conf",
            pc("catalogdir", "/usr/lib/systemd/catalog") + "/hitld.catalog",
            "/usr/share/man/man8/hitld.8",
            "/usr/share/man/man3/hitlclient.3",
            "/etc/hitld/hitld.conf",
        ]
        for path in expected:
            self.assertTrue(os.path.isfile(dest + path), "make install did not install %s" % path)
        # `man hitl_request_wait` opens hitlclient(3): a link for each function the header declares.
        with open(os.path.join(ROOT, "client", "hitlclient.h")) as f:
            functions = re.findall(r"^[A-Za-z][\w ]*[ *](hitl_\w+)\(", f.read(), re.M)
        self.assertGreaterEqual(len(functions), 40)
        man3 = dest + "/usr/share/man/man3"
        self.assertEqual(sorted(n for n in os.listdir(man3) if os.path.islink(os.path.join(man3, n))),
                         sorted(fn + ".3" for fn in functions))
        for fn in functions:
            self.assertEqual(os.readlink(os.path.join(man3, fn + ".3")), "hitlclient.3", fn)
        for name in ("hitld.service", "hitld@.service"):
            u = read_unit(dest + unitdir + "/" + name)
            self.assertTrue(u["Service"]["ExecStart"][0].startswith("/usr/sbin/hitld "),
                            "ExecStart must name the installed binary")
        with open(dest + pc("sysusersdir", "/usr/lib/sysusers.d") + "/hitld.conf") as f:
            self.assertIn("u hitld", f.read())
        # The installed tree works with systemd's own tools.
        os.makedirs(os.path.join(dest, "etc"), exist_ok=True)
        rc, out, err = run(["systemd-sysusers", "--root", dest])
        self.assertEqual(rc, 0, err)
        rc, out, err = run(["systemd-tmpfiles", "--root", dest, "--create"])
        self.assertEqual(rc, 0, err)
        rc, out, err = run(["journalctl", "--root", dest, "--update-catalog"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.isfile(os.path.join(dest, "var/lib/systemd/catalog/database")))

        # The library: its SONAME, and a .pc file that still holds where the
        # tree was moved to (pkg-config's ${pcfiledir}), so a program builds
        # against the DESTDIR copy as it would against /usr.
        lib = os.path.join(dest, "usr/lib")
        rc, out, err = run(["readelf", "-d", os.path.join(lib, "libhitlclient.so.0")])
        self.assertEqual(rc, 0, err)
        self.assertIn("Library soname: [libhitlclient.so.0]", out)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(lib, "pkgconfig"))
        rc, out, err = run(["pkg-config", "--variable=libdir", "hitlclient"], env=env)
        self.assertEqual((rc, os.path.realpath(out.strip())), (0, os.path.realpath(lib)), err)
        rc, flags, err = run(["pkg-config", "--cflags", "--libs", "hitlclient"], env=env)
        self.assertEqual(rc, 0, err)
        src = os.path.join(self.tmp, "prog.c")
        with open(src, "w") as f:
            f.write("#include <hitlclient.h>\nint main(void) { HitlClient *c = NULL; return hitl_client_connect(\"/nonexistent\", &c) == 0; }\n")
        exe = os.path.join(self.tmp, "prog")
        rc, out, err = run(["sh", "-c", 'cc -o "$0" "$1" $2 -Wl,-rpath,"$3"', exe, src, flags.strip(), lib])
        self.assertEqual(rc, 0, out + err)


# ====================================================================== socket activation

def listening_unix_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


class SocketActivation(HitldTestCase):
    START_DAEMON = False

    def activate_env(self):
        args = []
        for k in ("HITL_API_KEY", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k == "HITL_API_KEY" or k in os.environ:
                args += ["-E", k]
        return args

    def exe_of(self, pid):
        return os.path.basename(os.readlink("/proc/%d/exe" % pid))

    def test_first_connection_starts_hitld_and_is_served(self):
        if not shutil.which("systemd-socket-activate"):
            self.skipTest("systemd-socket-activate is not installed")
        sock = os.path.join(self.tmp, "activated.sock")
        d = CommandDaemon(self.tmp, self.emu, name="activated", socket_arg=True,
                          prefix=["systemd-socket-activate", "-l", sock] + self.activate_env(),
                          extra_args=["--foreground"])
        d.socket = sock
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.start(wait=False)
        wait_for(lambda: os.path.exists(sock) or d.proc.poll() is not None, 10, what="the activation socket")
        self.assertIsNone(d.proc.poll(), d.log_text())
        time.sleep(0.3)
        self.assertEqual(self.exe_of(d.proc.pid), "systemd-socket-activate", "hitld started before a client came")
        self.assertFalse(os.path.isdir(d.state_dir), "hitld started before a client came")

        c = Client(sock)
        self.addCleanup(c.close)
        hello = c.call("hello")          # this connection starts hitld and is served
        self.assertEqual(hello["daemon"], "hitld")
        self.assertEqual(self.exe_of(d.proc.pid), "hitld")
        self.assertIn("(socket activation)", d.log_text())
        sub = c.call("request.submit", single_select_request(self.loop_id))
        self.wait_state(sub["id"], "pending", client=c)

        # More clients: the same daemon serves them; nothing starts twice.
        c2 = Client(sock)
        self.addCleanup(c2.close)
        self.assertEqual(c2.call("request.get", {"id": sub["id"]})["state"], "pending")
        ino = os.stat(sock).st_ino

        # A second hitld started by hand on the same path refuses and breaks nothing.
        other = self.new_daemon(name="second")
        other.socket = sock
        other.start(wait=False)
        rc = other.proc.wait(20 * SLOW)
        other.stderr.close()
        self.assertNotEqual(rc, 0)
        self.assertIn("in use", other.log_text())
        self.assertEqual(os.stat(sock).st_ino, ino, "the live socket was replaced")
        self.assertEqual(c2.call("hello")["daemon"], "hitld")

        # hitld never unlinks a socket it inherited.
        self.assertEqual(d.stop(), 0)
        self.assertTrue(stat.S_ISSOCK(os.stat(sock).st_mode), "the inherited socket was removed")

    def test_inherited_socket_outlives_the_daemon_and_waiting_clients_are_served(self):
        path = os.path.join(self.tmp, "inherited.sock")
        listener = listening_unix_socket(path)
        self.addCleanup(listener.close)
        d = CommandDaemon(self.tmp, self.emu, name="inherited", inherit_fds=[listener.fileno()],
                          socket_arg=False, extra_args=["--foreground"])
        d.socket = path
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.start()
        c = d.client()
        sub = c.call("request.submit", single_select_request(self.loop_id))
        c.close()
        self.assertEqual(d.stop(), 0)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode), "hitld removed the socket it inherited")

        # While no daemon runs, a client connects (the backlog holds it) and asks.
        waiting = Client(path)
        self.addCleanup(waiting.close)
        waiting.send_raw(b'{"jsonrpc":"2.0","id":7,"method":"request.get","params":{"id":"%s"}}\n'
                         % sub["id"].encode())
        # The same listening socket, passed again: the waiting client is answered.
        d.start(wait=False)
        reply = waiting.read_message()
        self.assertEqual(reply["id"], 7)
        self.assertEqual(reply["result"]["id"], sub["id"])

    def start_expecting_refusal(self, socks, **kw):
        for s in socks:
            self.addCleanup(s.close)
        d = CommandDaemon(self.tmp, self.emu, name="refused", inherit_fds=[s.fileno() for s in socks],
                          socket_arg=False, extra_args=["--foreground"], **kw)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.start(wait=False)
        try:
            rc = d.proc.wait(20 * SLOW)
        except subprocess.TimeoutExpired:
            self.fail("hitld accepted an unusable inherited socket")
        d.stderr.close()
        self.assertNotEqual(rc, 0)
        return d.log_text()

    def test_an_inherited_datagram_socket_is_refused_with_a_clear_error(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(os.path.join(self.tmp, "dgram.sock"))
        log = self.start_expecting_refusal([s])
        self.assertIn("not a listening AF_UNIX stream socket", log)

    def test_an_inherited_tcp_socket_is_refused_with_a_clear_error(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        log = self.start_expecting_refusal([s])
        self.assertIn("not a listening AF_UNIX stream socket", log)

    def test_two_inherited_sockets_are_refused(self):
        a = listening_unix_socket(os.path.join(self.tmp, "a.sock"))
        b = listening_unix_socket(os.path.join(self.tmp, "b.sock"))
        log = self.start_expecting_refusal([a, b])
        self.assertIn("expected exactly one", log)
        # Refusing touches neither socket file.
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "a.sock")))
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "b.sock")))


# ====================================================================== sd_notify

STATUS_RE = re.compile(r"^(Paused\. )?(?:Creates paused: .*?\. )?(\d+) queued, (\d+) submitting, (\d+) pending; "
                       r"budget (\d+)/(\d+) left, resets (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"
                       r"(?:; last API error: (.+))?$")


class Notify(HitldTestCase):
    START_DAEMON = False
    WINDOW = 3600     # the budget window does not roll over during a test
    CONFIG = {"budget": {"window_s": 3600, "min_poll_interval_s": 1}}

    def notified_daemon(self, env=None, **kw):
        path = os.path.join(self.tmp, "notify-%d.sock" % len(self.daemons))
        n = NotifySocket(path)
        self.addCleanup(n.close)
        e = {"NOTIFY_SOCKET": path}
        e.update(env or {})
        d = self.new_daemon(env_extra=e, **kw)
        return d, n

    def assert_from_main_pid(self, d, n):
        pids = {m[1] for m in n.messages}
        self.assertEqual(pids, {d.proc.pid}, "notifications from other processes (NotifyAccess=main)")

    def status(self, n):
        n.drain(0)
        texts = [m[2]["STATUS"] for m in n.with_key("STATUS")]
        return texts[-1] if texts else None

    def wait_status(self, n, pred, what, timeout=20):
        m = n.wait(lambda f: "STATUS" in f and STATUS_RE.match(f["STATUS"]) and
                   pred(STATUS_RE.match(f["STATUS"])), timeout, what)
        return STATUS_RE.match(m[2]["STATUS"])

    def test_ready_comes_once_the_socket_serves_and_the_outbox_is_recovered(self):
        # First life: one request queued while paused (persisted), then stop.
        d = self.new_daemon().start()
        c = d.client()
        c.call("queue.pause")
        c.call("request.submit", single_select_request(self.loop_id))
        c.close()
        d.stop()

        d2, n = self.notified_daemon()
        d2.state_dir = d.state_dir
        d2.start(wait=False)
        ready = n.wait(lambda f: f.get("READY") == "1", 15, "READY=1")
        # At READY the socket serves at once, no retry.
        c = d2.client()
        self.addCleanup(c.close)
        self.assertEqual(c.call("hello")["daemon"], "hitld")
        # The STATUS sent with or before READY already counts the recovered request.
        before = [m for m in n.messages if m[0] <= ready[0] and "STATUS" in m[2]]
        self.assertTrue(before, "no STATUS before READY")
        st = STATUS_RE.match(before[-1][2]["STATUS"])
        self.assertIsNotNone(st, before[-1][2]["STATUS"])
        self.assertEqual(st.group(1), "Paused. ")
        self.assertEqual(st.group(2), "1")
        self.assertEqual(len(n.with_key("READY")), 1)
        d2.stop()
        self.assert_from_main_pid(d2, n)

    def test_status_tells_queue_depth_budget_reset_pause_and_last_api_error(self):
        d, n = self.notified_daemon()
        d.start(wait=False)
        n.wait(lambda f: f.get("READY") == "1", 15, "READY=1")
        c = d.client()
        self.addCleanup(c.close)
        st = STATUS_RE.match(self.status(n))
        self.assertIsNotNone(st, self.status(n))
        self.assertEqual(st.groups()[:4], (None, "0", "0", "0"))
        status = c.call("status")
        self.assertEqual(int(st.group(6)), status["budget"]["limit"])
        self.assertEqual(int(st.group(5)), status["budget"]["remaining"])
        self.assertEqual(st.group(7)[:16], status["budget"]["reset_at"][:16])

        c.call("queue.pause")
        self.wait_status(n, lambda m: m.group(1) == "Paused. ", "Paused. in STATUS")
        sub = c.call("request.submit", single_select_request(self.loop_id))
        self.wait_status(n, lambda m: m.group(1) and m.group(2) == "1", "1 queued while paused")

        # HITL.sh fails: STATUS names the last API error.
        self.emu.ctl("POST", "/_emu/faults", {"kind": "503", "count": 1, "match": {"method": "POST"}})
        c.call("queue.resume")
        m = self.wait_status(n, lambda m: m.group(8), "last API error in STATUS")
        self.assertIsNone(m.group(1))
        # After the backoff it is created; the budget spent shows, the error clears.
        self.wait_state(sub["id"], "pending", client=c)
        m = self.wait_status(n, lambda m: m.group(4) == "1" and not m.group(8), "1 pending, no error")
        self.assertEqual(m.group(2), "0")
        self.assertLess(int(m.group(5)), int(m.group(6)))
        # STATUS= and status agree on the budget once the calls settle (once
        # the key has worked, hitld asks who it is: one GET /v1/test more).
        wait_for(lambda: c.call("status")["key"]["api_key_id"], 30, what="the key's id")

        def agree():
            m = STATUS_RE.match(self.status(n) or "")
            return m and c.call("status")["budget"]["remaining"] in (int(m.group(5)), int(m.group(6)))
        wait_for(agree, 20, what="STATUS= and status to agree on the budget")
        d.stop()
        self.assert_from_main_pid(d, n)

    def test_watchdog_pings_come_from_the_loop_within_the_interval(self):
        interval = 2.0
        d, n = self.notified_daemon(env={"WATCHDOG_USEC": str(int(interval * 1e6))})
        d.start(wait=False)
        n.wait(lambda f: f.get("READY") == "1", 15, "READY=1")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3 * interval:
            n.drain(0.2)
        pings = [m[0] for m in n.messages if m[2].get("WATCHDOG") == "1" and m[0] >= t0]
        self.assertGreaterEqual(len(pings), 3, "too few WATCHDOG=1 in %.0f s" % (3 * interval))
        gaps = [b - a for a, b in zip([t0] + pings, pings)]
        self.assertLess(max(gaps), interval * SLOW, "a watchdog gap of %.2f s (WatchdogSec %.0f s)"
                        % (max(gaps), interval))
        # Not a busy loop either: about two pings per interval.
        self.assertLess(len(pings), 6 * 3)
        d.stop()
        self.assert_from_main_pid(d, n)

    def test_no_watchdog_pings_without_watchdog_usec(self):
        d, n = self.notified_daemon()
        d.start(wait=False)
        n.wait(lambda f: f.get("READY") == "1", 15, "READY=1")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            n.drain(0.2)
        self.assertEqual(n.with_key("WATCHDOG"), [])

    def test_reload_and_stop_are_announced(self):
        d, n = self.notified_daemon()
        d.start(wait=False)
        n.wait(lambda f: f.get("READY") == "1", 15, "READY=1")
        for how in ("SIGHUP", "daemon.reload"):
            with self.subTest(how):
                mark = len(n.messages)
                if how == "SIGHUP":
                    d.proc.send_signal(signal.SIGHUP)
                else:
                    c = d.client()
                    c.call("daemon.reload")
                    c.close()
                n.wait(lambda f: f.get("RELOADING") == "1", 10, "RELOADING=1", since=mark)
                n.wait(lambda f: f.get("READY") == "1", 10, "READY=1 after the reload", since=mark)
                seq = [k for m in n.messages[mark:] for k in ("RELOADING", "READY") if k in m[2]]
                self.assertEqual(seq[:2], ["RELOADING", "READY"])
        # Still serving after the reloads.
        c = d.client()
        self.assertEqual(c.call("hello")["daemon"], "hitld")
        c.close()
        mark = len(n.messages)
        d.proc.send_signal(signal.SIGTERM)
        n.wait(lambda f: f.get("STOPPING") == "1", 10, "STOPPING=1")
        self.assertEqual(d.proc.wait(20 * SLOW), 0)
        d.stderr.close()
        n.drain(0.2)
        self.assertFalse([m for m in n.messages[mark:] if m[2].get("READY") == "1"], "READY=1 after STOPPING")
        self.assert_from_main_pid(d, n)


# ====================================================================== journal

class JournalTestCase(HitldTestCase):
    """One private systemd-journald for the class; a daemon per test."""
    START_DAEMON = False

    @classmethod
    def setUpClass(cls):
        reason = PrivateJournal.unavailable()
        if reason:
            raise unittest.SkipTest("no private systemd-journald: " + reason)
        cls.jtmp = tempfile.mkdtemp(prefix="hitld-journal-")
        cls.journal = None
        try:
            cls.journal = PrivateJournal(cls.jtmp)
            cls.journal.install_catalog()
        except Exception:
            if cls.journal:
                cls.journal.stop()
            shutil.rmtree(cls.jtmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.journal.stop()
        if os.environ.get("HITLD_KEEP_TMP"):
            print("kept", cls.jtmp, file=sys.stderr)
        else:
            shutil.rmtree(cls.jtmp, ignore_errors=True)

    def journal_daemon(self, extra_args=("--log-target=journal",), **kw):
        d = CommandDaemon(self.tmp, self.emu, prefix=self.journal.in_namespace([]), extra_args=extra_args, **kw)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        return d

    def entries_of(self, pid, *matches, want=None, timeout=10):
        """hitld's entries (by _PID), waiting until want(entries) holds."""
        got = {}

        def ready():
            got["e"] = self.journal.entries("_PID=%d" % pid, *matches)
            return want is None or want(got["e"])
        try:
            wait_for(ready, timeout, interval=0.2, what="journal entries")
        except AssertionError:
            raise AssertionError("journal entries did not arrive; have:\n" +
                                 "\n".join("%s %s" % (e.get("MESSAGE_ID"), e.get("MESSAGE")) for e in got["e"]))
        return got["e"]

    def by_mid(self, entries, mid):
        return [e for e in entries if e.get("MESSAGE_ID") == mid]


class Journal(JournalTestCase):
    def test_a_requests_life_is_in_the_journal_with_message_ids_and_fields(self):
        mids = message_ids()
        # A torn log entry from "before" (a record header cut short):
        # quarantined at start, logged.
        os.makedirs(os.path.join(self.tmp, "hitld-state", "outbox"), mode=0o700)
        torn = b"HLE1\x01\x1c\x00\x00" + b"\x10\x00\x00\x00\x00\x00"
        with open(os.path.join(self.tmp, "hitld-state", "outbox", "0000000000000001.log"), "wb") as f:
            f.write(torn)
        # The key as systemd passes it: LoadCredential= -> $CREDENTIALS_DIRECTORY.
        creds = os.path.join(self.tmp, "credentials")
        os.makedirs(creds, mode=0o700)
        with open(os.open(os.path.join(creds, "hitl-api-key"), os.O_WRONLY | os.O_CREAT, 0o400), "w") as f:
            f.write(KEY + "\n")
        d = self.journal_daemon(key=None, env_extra={"CREDENTIALS_DIRECTORY": creds}).start()
        pid = d.proc.pid
        c = d.client()
        self.addCleanup(c.close)

        sub = c.call("request.submit", single_select_request(self.loop_id))
        rid = sub["id"]
        r = self.wait_state(rid, "pending", client=c)
        self.emu.respond(r["remote_id"], {"selected_value": "approve", "selected_label": "Approve"})
        self.assertEqual(c.call("request.wait", {"id": rid, "timeout_ms": 30000})["request"]["state"],
                         "completed")
        c.call("request.feedback", {"id": rid, "feedback": {"rating": 5}})
        self.entries_of(pid, want=lambda es: self.by_mid(es, mids["MID_FEEDBACK_SENT"]), timeout=30)

        # A second request, cancelled before it was sent.
        c.call("queue.pause")
        rid2 = c.call("request.submit", single_select_request(self.loop_id, text="Second?"))["id"]
        c.call("request.cancel", {"id": rid2})
        # Reload (config and key re-read), then a 429 from "another user of the key".
        d.proc.send_signal(signal.SIGHUP)
        self.entries_of(pid, want=lambda es: self.by_mid(es, mids["MID_CONFIG_RELOADED"]))
        self.emu.ctl("POST", "/_emu/faults", {"kind": "429", "count": 1})
        c.call("queue.resume")
        c.call("request.submit", single_select_request(self.loop_id, text="Third?"))
        self.entries_of(pid, want=lambda es: self.by_mid(es, mids["MID_RATE_LIMITED"]), timeout=30)
        d.stop()

        everything = self.entries_of(pid, want=lambda es: self.by_mid(es, mids["MID_DAEMON_STOPPING"]))
        for e in everything:
            self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "hitld", e)
            self.assertTrue(e.get("MESSAGE"), e)
            # Where the event happened, not where the logging wrapper sits.
            self.assertRegex(e.get("CODE_FILE", ""), r"^daemon/\w+\.c$", e)
            self.assertNotEqual(e["CODE_FILE"], "daemon/log.c", e)
            self.assertRegex(e.get("CODE_LINE", ""), r"^[1-9]\d*$", e)
            self.assertNotIn(e.get("CODE_FUNC"), (None, "log_internal", "log_internalv", "request_log"), e)

        # The whole life of the first request, in order, by its id alone.
        life = self.journal.entries("HITL_REQUEST_ID=" + rid)
        want = ["MID_REQUEST_ACCEPTED", "MID_REQUEST_CREATED", "MID_REQUEST_ANSWERED", "MID_FEEDBACK_SENT"]
        self.assertEqual([e.get("MESSAGE_ID") for e in life], [mids[w] for w in want],
                         "\n".join(e["MESSAGE"] for e in life))
        states = ["queued", "pending", "completed", "completed"]
        for e, name, state in zip(life, want, states):
            with self.subTest(name):
                self.assertEqual(e["PRIORITY"], "6")
                self.assertEqual(e["HITL_REQUEST_ID"], rid)
                self.assertEqual(e["HITL_LOOP_ID"], self.loop_id)
                self.assertEqual(e["HITL_UID"], str(os.getuid()))
                self.assertEqual(e["HITL_STATE"], state)
                self.assertIn(rid, e["MESSAGE"])
                if name != "MID_REQUEST_ACCEPTED":
                    self.assertEqual(e["HITL_REMOTE_ID"], r["remote_id"])
        self.assertEqual(life[0]["HITL_PRIORITY"], "high")

        (cancelled,) = self.journal.entries("HITL_REQUEST_ID=" + rid2, "MESSAGE_ID=" + mids["MID_REQUEST_CANCELLED"])
        self.assertEqual(cancelled["HITL_STATE"], "cancelled")
        self.assertEqual(cancelled["PRIORITY"], "6")

        def one(name):
            es = self.by_mid(everything, mids[name])
            self.assertTrue(es, "no %s entry" % name)
            return es[0]
        e = one("MID_RECORD_QUARANTINED")
        self.assertEqual((e["PRIORITY"], e["HITL_FILE"]), ("4", "0000000000000001.log"))
        self.assertTrue(e["HITL_REASON"])
        self.assertIn("Quarantined %d damaged bytes at offset 0 of outbox log segment 0000000000000001.log"
                      % len(torn), e["MESSAGE"])
        e = one("MID_DAEMON_STARTED")
        self.assertEqual((e["PRIORITY"], e["HITL_QUEUED"], e["HITL_PENDING"]), ("6", "0", "0"))
        self.assertIn("1 quarantined", e["MESSAGE"])
        keys = [k for k in self.by_mid(everything, mids["MID_KEY_LOADED"]) if k.get("HITL_KEY_SOURCE")]
        self.assertEqual([k["HITL_KEY_SOURCE"] for k in keys], ["credential", "credential"],
                         "one entry at start, one on reload")
        self.assertEqual(one("MID_CONFIG_RELOADED")["PRIORITY"], "6")
        e = one("MID_RATE_LIMITED")
        self.assertEqual((e["PRIORITY"], e["HITL_HTTP_STATUS"]), ("4", "429"))
        self.assertRegex(e["HITL_BUDGET_REMAINING"], r"^\d+$")
        self.assertEqual(one("MID_DAEMON_STOPPING")["PRIORITY"], "6")

        # The key is nowhere: not in a field, not in the files' bytes.
        rc, out, _ = self.journal.journalctl("-o", "export")
        self.assertNotIn(KEY, out)
        self.assertNotIn(KEY[-24:], out)
        self.assertNotIn(KEY.encode(), self.journal.raw_bytes())

        # journalctl -x explains each entry from the catalog, with its fields.
        if not self.journal.has_catalog:
            self.skipTest("no %s to bind the test's catalog over" % self.journal.CATALOG_DIR)
        rc, out, err = self.journal.journalctl("-x", "HITL_REQUEST_ID=" + rid, in_namespace=True)
        self.assertEqual(rc, 0, err)
        # journalctl prints a field's name where an entry lacks a field its
        # catalog text uses: no entry of this run may show one.
        rc, allx, err = self.journal.journalctl("-x", "_PID=%d" % pid, in_namespace=True)
        self.assertEqual(rc, 0, err)
        explained = "\n".join(l for l in allx.splitlines() if l.startswith("\u2591\u2591 "))
        unfilled = set(re.findall(r"\b(HITL_[A-Z_]+)\b(?!=)", explained)) & daemon_hitl_fields()
        self.assertEqual(unfilled, set(), explained)
        self.assertEqual(explained.count("Subject: "), len([e for e in everything if e.get("MESSAGE_ID")]))
        self.assertIn("Subject: Request %s accepted into the outbox" % rid, out)
        self.assertIn("Subject: Request %s created at HITL.sh as %s" % (rid, r["remote_id"]), out)
        self.assertIn("Subject: Request %s answered by a reviewer" % rid, out)
        self.assertIn("Defined-By: hitld", out)
        self.assertIn("journalctl -x HITL_REQUEST_ID=%s" % rid, out)

    def test_auto_target_uses_the_journal_when_stderr_is_the_journal_stream(self):
        mids = message_ids()
        d = self.journal_daemon(extra_args=())
        # What systemd does for StandardError=journal: JOURNAL_STREAM names stderr.
        d.stderr_path = os.path.join(self.tmp, "stream.stderr")
        open(d.stderr_path, "w").close()
        st = os.stat(d.stderr_path)
        d.env_extra["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        d.start()
        self.entries_of(d.proc.pid, want=lambda es: self.by_mid(es, mids["MID_DAEMON_STARTED"]))
        d.stop()
        self.assertNotIn("started", d.log_text())

    def test_without_a_journal_lines_go_to_stderr_with_priority_prefixes(self):
        for target in ("auto", "journal"):
            with self.subTest(target):
                # Outside the namespace: no journal socket (the host has no journald).
                if target == "journal" and os.path.exists("/run/systemd/journal/socket"):
                    self.skipTest("this host runs a journald; the fallback cannot be shown")
                d = CommandDaemon(self.tmp, self.emu, name="plain-" + target,
                                  extra_args=["--log-target=" + target])
                self.daemons.append(d)
                self.addCleanup(self._stop_daemon, d)
                d.start()
                d.stop()
                lines = d.log_text().splitlines()
                self.assertTrue(lines)
                for line in lines:
                    self.assertRegex(line, r"^<[0-7]>\S")
                self.assertTrue(any(re.match(r"^<6>hitld .* started", l) for l in lines), lines)
                self.assertNotIn(KEY, d.log_text())


class JournalBudget(JournalTestCase):
    WINDOW = 3600     # the emulator's hour does not roll over during the test
    CONFIG = {"budget": {"window_s": 3600}}

    def test_budget_exhaustion_is_one_entry(self):
        mids = message_ids()
        left = 3600 - time.time() % 3600
        if left < 60:
            time.sleep(left + 1)
        # Another user of the key spends 99 of its 100 calls: after hitld's
        # first create, HITL.sh's headers say 0 left, and two requests wait.
        self.emu.ctl("POST", "/_emu/keys/%s/spend" % KEY, {"calls": 99})
        d = self.journal_daemon().start()
        c = d.client()
        self.addCleanup(c.close)
        # A day's timeout: once hitld knows the window is spent, a request
        # that must be answered before the hour ends plus the margin would be
        # refused at submit (how long that is depends on the time of day).
        for i in range(3):
            c.call("request.submit", single_select_request(self.loop_id, text="Budget %d?" % i,
                                                           timeout_seconds=86400))

        def spent():
            st = c.call("status")
            return st["budget"]["remaining"] == 0 and st["queue"]["queued"] == 2
        wait_for(spent, 30, what="the budget to run out with requests waiting")
        time.sleep(1.0)
        es = self.entries_of(d.proc.pid)
        hits = self.by_mid(es, mids["MID_BUDGET_EXHAUSTED"])
        if not hits:
            self.skipTest("hitld does not log MID_BUDGET_EXHAUSTED yet (manager.c; see the report)")
        self.assertEqual(len(hits), 1, "one entry per exhausted window, not one per wakeup")
        self.assertEqual(hits[0]["HITL_BUDGET_REMAINING"], "0")
        self.assertIn(hits[0]["PRIORITY"], ("4", "5"))
        self.assertFalse(self.by_mid(es, mids["MID_RATE_LIMITED"]), "hitld caused a 429")


# ====================================================================== sandbox

def syscall_groups():
    """{"@group": [members: syscalls and @groups]} from systemd-analyze."""
    rc, out, err = run(["systemd-analyze", "syscall-filter", "--no-pager"])
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return groups


def expand(groups, name, seen=None):
    seen = seen if seen is not None else set()
    out = set()
    for m in groups.get(name, []):
        if m.startswith("@"):
            if m not in seen:
                seen.add(m)
                out |= expand(groups, m, seen)
        else:
            out.add(m)
    return out


def unit_allowed_syscalls():
    """The allow list hitld.service's SystemCallFilter= lines make."""
    groups = syscall_groups()
    allowed = None
    svc = read_unit(os.path.join(SYSTEMD_DIR, "hitld.service"))["Service"]
    for value in svc["SystemCallFilter"]:
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= expand(groups, item) if item.startswith("@") else {item}
        if allowed is None:
            allowed = set() if deny else names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


class Sandbox(HitldTestCase):
    """hitld's system calls, traced through a request's life, against what
    hitld.service allows (SystemCallFilter=, RestrictAddressFamilies=,
    MemoryDenyWriteExecute=, ProcSubset=pid, PrivateDevices=, ProtectHome=,
    ProtectSystem=strict). The daemon is root here, so a call the sandbox
    would refuse succeeds: the trace is what shows it."""
    START_DAEMON = False

    CALL = re.compile(r"^(\d+)\s+([a-z_0-9]+)\((.*)$")
    OPEN = re.compile(r'^(?:AT_FDCWD(?:<[^>]*>)?|-?\d+<([^>]*)>|-?\d+), "([^"]*)", ([A-Z_|0-9]+)')

    def test_system_calls_stay_inside_the_units_sandbox(self):
        if SANITIZER:
            self.skipTest("the sanitizer runtime makes calls of its own; checked on the normal build")
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        trace = os.path.join(self.tmp, "strace.out")
        path = os.path.join(self.tmp, "sandbox.sock")
        listener = listening_unix_socket(path)
        self.addCleanup(listener.close)
        d = CommandDaemon(self.tmp, self.emu, name="sandbox", inherit_fds=[listener.fileno()], socket_arg=False,
                          prefix=["strace", "-f", "-qq", "-y", "-s", "512", "-o", trace])
        d.socket = path
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        d.start()
        hitld_pid = d.daemon_pid()
        c = d.client()
        self.addCleanup(c.close)
        rid = c.call("request.submit", single_select_request(self.loop_id))["id"]
        r = self.wait_state(rid, "pending", client=c)
        self.emu.respond(r["remote_id"], {"selected_value": "approve", "selected_label": "Approve"})
        c.call("request.wait", {"id": rid, "timeout_ms": 30000})
        c.call("request.feedback", {"id": rid, "feedback": {"rating": 4}})
        rid2 = c.call("request.submit", single_select_request(self.loop_id, text="Then cancelled?"))["id"]
        self.wait_state(rid2, "pending", client=c)
        c.call("request.cancel", {"id": rid2})
        self.wait_state(rid2, "cancelled", client=c)
        os.kill(hitld_pid, signal.SIGHUP)
        c.call("status")
        time.sleep(0.5)
        c.close()
        self.assertEqual(d.stop(), 0)

        allowed = unit_allowed_syscalls()
        self.assertIn("read", allowed)
        started = set()    # pids past the execve of hitld (the shell wrapper before it does not count)
        used, bad = {}, []
        state = os.path.realpath(d.state_dir)
        # libsystemd's sd-event reads the boot id to spread timers; without it
        # (ProcSubset=pid hides /proc/sys) it uses no perturbation. Harmless.
        proc_ok = re.compile(r"^/proc/((self|thread-self|\d+)(/|$)|sys/kernel/random/boot_id$)")
        dev_ok = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
        with open(trace, errors="replace") as f:
            for line in f:
                m = self.CALL.match(line)
                if not m:
                    continue
                pid, name, args = int(m.group(1)), m.group(2), m.group(3)
                if pid not in started:
                    if pid == hitld_pid:
                        if name == "execve" and args.split(",")[0].endswith('/hitld"'):
                            started.add(pid)
                        continue
                    started.add(pid)    # a thread of hitld
                used[name] = used.get(name, 0) + 1
                if name not in allowed:
                    bad.append("system call %s (not in SystemCallFilter=): %s" % (name, line.strip()))
                if name in ("socket", "socketpair"):
                    fam = args.split(",")[0].strip()
                    if fam not in ("AF_UNIX", "AF_LOCAL", "AF_INET", "AF_INET6"):
                        bad.append("address family %s (RestrictAddressFamilies=): %s" % (fam, line.strip()))
                if name in ("mmap", "mprotect", "pkey_mprotect") and "PROT_WRITE" in args and "PROT_EXEC" in args:
                    bad.append("writable+executable memory (MemoryDenyWriteExecute=): " + line.strip())
                paths = re.findall(r'"(/[^"]*)"', args)
                for p in paths:
                    if p.startswith("/proc/") and not proc_ok.match(p):
                        bad.append("%s outside /proc/PID (ProcSubset=pid): %s" % (p, line.strip()))
                    if p.startswith("/dev/") and p not in dev_ok and not p.startswith(("/dev/pts/", "/dev/shm/")):
                        bad.append("device %s (PrivateDevices=): %s" % (p, line.strip()))
                    if p.startswith(("/home/", "/root/", "/run/user/")):
                        bad.append("%s (ProtectHome=): %s" % (p, line.strip()))
                if name in ("open", "openat", "creat"):
                    om = self.OPEN.match(args)
                    if om and (name == "creat" or re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", om.group(3))):
                        full = os.path.normpath(os.path.join(om.group(1) or "/", om.group(2)))
                        if not (full + "/").startswith(state + "/") and full not in ("/dev/null",):
                            bad.append("write outside the state directory (ProtectSystem=strict): "
                                       + line.strip())
                if name in ("mkdir", "mkdirat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
                            "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat"):
                    dirs = re.findall(r'-?\d+<([^>]*)>', args)
                    names = re.findall(r'"([^"]*)"', args)
                    for i, nm in enumerate(names):
                        base = dirs[i] if i < len(dirs) else "/"
                        full = os.path.normpath(os.path.join(base, nm))
                        if not (full + "/").startswith(state + "/"):
                            bad.append("%s outside the state directory (ProtectSystem=strict): %s"
                                       % (name, line.strip()))
        self.assertIn(hitld_pid, started, "the trace never saw hitld start")
        self.assertGreater(len(used), 20, "suspiciously few system calls traced: %r" % used)
        self.assertEqual(bad, [], "\n".join(bad[:40]))


if __name__ == "__main__":
    main()
