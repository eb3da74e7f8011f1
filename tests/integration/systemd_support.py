"""What test_systemd.py needs to play systemd's part without a PID-1 systemd:
a daemon started with a command prefix and an inherited socket, a
NOTIFY_SOCKET listener that records who sent what, a private systemd-journald
in its own mount namespace, and readers for the unit, catalog and msgid files.

Nothing here touches the host's /run/systemd: the private journald runs under
`unshare --mount` with a tmpfs on /run, and its journal files live in a test
directory that `journalctl --root` reads.
"""
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import time

from harness import BUILD, ROOT, SLOW, Daemon, wait_for

SYSTEMD_DIR = os.path.join(ROOT, "systemd")
MSGID_H = os.path.join(ROOT, "daemon", "msgid.h")
CATALOG = os.path.join(SYSTEMD_DIR, "hitld.catalog")
JOURNALD = "/lib/systemd/systemd-journald"


# ------------------------------------------------------------------ source files

def message_ids():
    """{"MID_REQUEST_ACCEPTED": "08a2…", …} from daemon/msgid.h."""
    with open(MSGID_H) as f:
        return dict(re.findall(r'#define\s+(MID_\w+)\s+"([0-9a-f]{32})"', f.read()))


def catalog_entries(path=CATALOG):
    """{id: {"headers": {...}, "body": str}} from a catalog file."""
    entries, cur = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^-- ([0-9A-Za-z]+)(?: (\S+))?$", line)
            if m:
                cur = {"headers": {}, "body": [], "in_body": False, "lang": m.group(2)}
                entries[m.group(1)] = cur
                continue
            if cur is None:
                continue
            if not cur["in_body"]:
                if line == "":
                    cur["in_body"] = True
                    continue
                k, _, v = line.partition(":")
                cur["headers"][k.strip()] = v.strip()
            else:
                cur["body"].append(line)
    for e in entries.values():
        e["body"] = "\n".join(e["body"]).strip()
        del e["in_body"]
    return entries


def read_unit(path):
    """A unit file as {section: {key: [values, in order]}} (keys may repeat)."""
    unit, section, pending = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = unit.setdefault(s[1:-1], {})
                continue
            k, sep, v = s.partition("=")
            if not sep or section is None:
                raise AssertionError("%s: not a unit file line: %r" % (path, line))
            section.setdefault(k.strip(), []).append(v.strip())
    return unit


def staged_units(workdir, hitld=None):
    """Copies systemd/*.service and *.socket to workdir/units, with ExecStart's
    /usr/sbin/hitld pointed at the build (as an install with another PREFIX
    would do), so systemd-analyze can check that the command exists."""
    d = os.path.join(workdir, "units")
    os.makedirs(d, exist_ok=True)
    hitld = hitld or os.path.join(BUILD, "hitld")
    for name in sorted(os.listdir(SYSTEMD_DIR)):
        if name.endswith((".service", ".socket")):
            with open(os.path.join(SYSTEMD_DIR, name)) as f:
                text = f.read().replace("/usr/sbin/hitld", hitld)
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    return d


# ------------------------------------------------------------------ daemons

class CommandDaemon(Daemon):
    """A harness Daemon started through a command prefix (nsenter, strace,
    systemd-socket-activate, …), with extra arguments and environment, and
    optionally with listening sockets passed as systemd passes them: on fds
    3, 4, … with LISTEN_FDS and LISTEN_PID set to the daemon's own pid."""

    def __init__(self, workdir, emulator, prefix=(), extra_args=(), inherit_fds=(),
                 socket_arg=True, **kw):
        super().__init__(workdir, emulator, **kw)
        self.prefix = list(prefix)
        self.extra_args = list(extra_args)
        self.inherit_fds = list(inherit_fds)
        self.socket_arg = socket_arg

    def hitld_argv(self):
        args = [os.path.join(BUILD, "hitld"), "--config", self.config, "--state-dir", self.state_dir]
        if self.socket_arg:
            args += ["--socket", self.socket]
        return args + self.extra_args

    def environment(self):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "CREDENTIALS_DIRECTORY",
                  "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
            env.pop(k, None)
        if self.key is not None:
            env["HITL_API_KEY"] = self.key
        env.update(self.env_extra)
        return env

    def start(self, wait=True):
        env = self.environment()
        argv = self.hitld_argv()
        high = []
        if self.inherit_fds:
            # Park the sockets on high fds, then let a shell put them on 3, 4, …
            # and set LISTEN_PID=$$, the pid hitld keeps after exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 200) for fd in self.inherit_fds]
            moves = " ".join("%d<&%d %d<&-" % (3 + i, h, h) for i, h in enumerate(high))
            env["LISTEN_FDS"] = str(len(high))
            argv = ["/bin/bash", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec %s; exec "$@"' % moves,
                    "sh"] + argv
        self.stderr = open(self.stderr_path, "a")
        try:
            self.proc = subprocess.Popen(self.prefix + argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                         stderr=self.stderr, env=env, pass_fds=tuple(high))
        finally:
            for h in high:
                os.close(h)
        self.runs += 1
        if wait:
            wait_for(self._connectable, 15, what="hitld socket")
        return self

    def daemon_pid(self):
        """hitld's pid: the process itself, or strace's one child."""
        if not self.prefix or os.path.basename(self.prefix[0]) != "strace":
            return self.proc.pid
        def child():
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                    kids = f.read().split()
            except FileNotFoundError:
                return None
            return int(kids[0]) if kids else None
        return wait_for(child, 10, what="the traced hitld")

    def stop(self, sig=signal.SIGTERM, expect_code=0):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.daemon_pid(), sig)
        try:
            rc = self.proc.wait(20 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("hitld did not stop on %s" % sig)
        self.stderr.close()
        if expect_code is not None and sig != signal.SIGKILL:
            assert rc == expect_code, "hitld exited %s, expected %s:\n%s" % (rc, expect_code,
                                                                            self.log_text()[-5000:])
        return rc


# ------------------------------------------------------------------ sd_notify

class NotifySocket:
    """A NOTIFY_SOCKET as the service manager has it: a datagram socket that
    records every message with the sender's pid (SO_PASSCRED)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []   # (monotonic time, sender pid, {KEY: value}, raw text)

    def close(self):
        self.sock.close()

    def drain(self, timeout=0.0):
        """Reads what has arrived, waiting up to timeout for the first datagram."""
        got = 0
        while True:
            r, _, _ = select.select([self.sock], [], [], timeout if got == 0 else 0)
            if not r:
                return got
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                k, sep, v = line.partition("=")
                if sep:
                    fields[k] = v
            self.messages.append((time.monotonic(), pid, fields, text))
            got += 1

    def wait(self, pred, timeout, what, since=None):
        """Waits until pred(message fields) holds for a message received after
        index since (default: from now on); returns it."""
        start = len(self.messages) if since is None else since
        deadline = time.monotonic() + timeout * SLOW
        seen = start
        while True:
            for i in range(seen, len(self.messages)):
                if pred(self.messages[i][2]):
                    return self.messages[i]
            seen = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s; got %r"
                                     % (what, [m[3] for m in self.messages[start:]]))
            self.drain(min(left, 0.2))

    def with_key(self, key):
        return [m for m in self.messages if key in m[2]]


# ------------------------------------------------------------------ journald

class PrivateJournal:
    """systemd-journald in a private mount namespace: /run there is a tmpfs,
    so /run/systemd/journal/socket is its own; /run/log is bound to
    ROOT/run/log so `journalctl --root ROOT` reads its (volatile) journal.
    journalctl -x reads the catalog database from a fixed path, so the
    namespace also has ROOT/var/lib/systemd/catalog bound over
    /var/lib/systemd/catalog. Run programs inside with in_namespace(argv)."""

    CATALOG_DIR = "/var/lib/systemd/catalog"

    CONF = ("[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\n"
            "ForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\nRuntimeMaxUse=16M\n")

    @staticmethod
    def unavailable():
        """Why a private journald cannot run here, or None."""
        if os.geteuid() != 0:
            return "needs root (mount namespaces)"
        for tool in ("unshare", "nsenter", "journalctl"):
            if not shutil.which(tool):
                return "%s is not installed" % tool
        if not os.access(JOURNALD, os.X_OK):
            return "%s is not installed" % JOURNALD
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10)
        if p.returncode != 0:
            return "unshare --mount fails: %s" % p.stderr.decode(errors="replace").strip()
        return None

    def __init__(self, workdir):
        self.root = os.path.join(workdir, "journal-root")
        self.log_path = os.path.join(workdir, "journald.log")
        os.makedirs(os.path.join(self.root, "run", "log"), exist_ok=True)
        os.makedirs(self.root + self.CATALOG_DIR, exist_ok=True)
        self.has_catalog = os.path.isdir(self.CATALOG_DIR)
        script = "\n".join([
            "set -e",
            "mount -t tmpfs -o mode=0755,size=64m hitld-test-run /run",
            "mkdir -p /run/log /run/systemd/journald.conf.d",
            'mount --bind "$1/run/log" /run/log',
            'mount --bind "$1%s" %s' % (self.CATALOG_DIR, self.CATALOG_DIR) if self.has_catalog else "true",
            "cat > /run/systemd/journald.conf.d/hitld-test.conf <<'EOF'",
            self.CONF.rstrip("\n"),
            "EOF",
            "exec %s" % JOURNALD,
        ])
        env = dict(os.environ, SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="info")
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(k, None)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "/bin/sh", "-c", script, "sh", self.root],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        try:
            wait_for(self._ready, 15, what="private systemd-journald")
        except AssertionError:
            self.stop()
            raise AssertionError("systemd-journald did not start:\n" + self.log_text())

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("systemd-journald exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
        # The namespace's view of /run, through the journald process.
        return os.path.exists("/proc/%d/root/run/systemd/journal/socket" % self.proc.pid)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def in_namespace(self, argv):
        return ["nsenter", "--target", str(self.proc.pid), "--mount", "--"] + list(argv)

    def journalctl(self, *args, timeout=30, in_namespace=False):
        argv = ["journalctl", "--root", self.root, "--no-pager"] + list(args)
        if in_namespace:
            argv = self.in_namespace(argv)
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def entries(self, *matches):
        """Journal entries (dicts) matching FIELD=value matches, oldest first."""
        rc, out, err = self.journalctl("-o", "json", *matches)
        if rc not in (0, 1) and "No entries" not in err:
            raise AssertionError("journalctl failed (%d): %s" % (rc, err))
        res = []
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                res.append(json.loads(line))
        return res

    def install_catalog(self, catalog=CATALOG):
        d = os.path.join(self.root, "usr", "lib", "systemd", "catalog")
        os.makedirs(d, exist_ok=True)
        shutil.copy(catalog, os.path.join(d, "hitld.catalog"))
        p = subprocess.run(["journalctl", "--root", self.root, "--update-catalog"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if p.returncode != 0:
            raise AssertionError("journalctl --update-catalog failed: %s" % p.stdout.decode(errors="replace"))

    def raw_bytes(self):
        """Every byte of every journal file (to look for things that must not be there)."""
        data = b""
        for dirpath, _, files in os.walk(os.path.join(self.root, "run", "log")):
            for name in files:
                with open(os.path.join(dirpath, name), "rb") as f:
                    data += f.read()
        return data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

