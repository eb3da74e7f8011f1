"""Helpers for the security tests (test_security, test_tls, test_rotation):
throw-away local accounts, running code as another uid, a daemon started as
another uid, a TLS emulator with a test CA, and searching files for a secret.

Everything here cleans up after itself through the test case's addCleanup,
also when the test fails.
"""
import grp
import json
import os
import pwd
import re
import secrets
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, SLOW, Client, Daemon, Emulator, RpcError, wait_for  # noqa: E402

ACCOUNT_PREFIX = "hitlsec"


def new_key():
    """A fresh key shaped like HITL.sh's (hnd_ + 32 hex): random, so a match
    anywhere is the key and never a coincidence."""
    return "hnd_" + secrets.token_hex(16)


# ---------------------------------------------------------------- accounts

def _run_locked(cmd):
    """useradd & co. take /etc/passwd's lock; other tests may hold it."""
    deadline = time.monotonic() + 30
    while True:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode == 0:
            return
        out = p.stdout.decode(errors="replace")
        if "lock" in out and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, out))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale_accounts():
    """Removes accounts left behind by a test run that was killed (their names
    carry the pid of the run that made them)."""
    pat = re.compile(r"^%s(\d+)" % ACCOUNT_PREFIX)
    for pw in pwd.getpwall():
        m = pat.match(pw.pw_name)
        if m and not _pid_alive(int(m.group(1))):
            subprocess.run(["userdel", pw.pw_name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for gr in grp.getgrall():
        m = pat.match(gr.gr_name)
        if m and not _pid_alive(int(m.group(1))):
            subprocess.run(["groupdel", gr.gr_name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Accounts:
    """Real users and groups (passwd/group entries) made for one test and
    removed by its cleanup. Names: hitlsec<pid><tag>."""

    def __init__(self, add_cleanup):
        """add_cleanup: a test case's addCleanup, or a class's addClassCleanup."""
        self.users = []
        self.groups = []
        add_cleanup(self.remove_all)

    def name(self, tag):
        return "%s%d%s" % (ACCOUNT_PREFIX, os.getpid(), tag)

    def group(self, tag):
        name = self.name(tag)
        _run_locked(["groupadd", name])
        self.groups.append(name)
        return grp.getgrnam(name)

    def user(self, tag, groups=()):
        name = self.name(tag)
        cmd = ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-d", "/nonexistent"]
        if groups:
            cmd += ["-G", ",".join(groups)]
        _run_locked(cmd + [name])
        self.users.append(name)
        return pwd.getpwnam(name)

    def remove_all(self):
        errors = []
        for u in reversed(self.users):
            try:
                _run_locked(["userdel", u])
            except AssertionError as e:
                errors.append(str(e))
        for g in reversed(self.groups):
            try:
                _run_locked(["groupdel", g])
            except AssertionError as e:
                errors.append(str(e))
        self.users, self.groups = [], []
        if errors:
            raise AssertionError("; ".join(errors))


# ---------------------------------------------------------------- other uids

class UserChild:
    """fn() running in a forked child as the passwd entry pw (uid, primary gid
    and its supplementary groups, as a login would). result() waits for its
    JSON-able return value; an exception in the child comes back as
    {"exception": repr}."""

    def __init__(self, pw, fn):
        self.name = pw.pw_name
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                try:
                    os.initgroups(pw.pw_name, pw.pw_gid)
                    os.setgid(pw.pw_gid)
                    os.setuid(pw.pw_uid)
                    out = fn()
                except BaseException as e:  # report, never escape the child
                    out = {"exception": repr(e)}
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(0)
        os.close(w)
        self.pid, self.fd = pid, r

    def result(self, timeout=60):
        import select
        data = b""
        deadline = time.monotonic() + timeout * SLOW
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                    os.kill(self.pid, signal.SIGKILL)
                    raise AssertionError("child as %s did not finish" % self.name)
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self.fd)
            os.waitpid(self.pid, 0)
        if not data:
            raise AssertionError("child as %s returned nothing" % self.name)
        out = json.loads(data)
        if isinstance(out, dict) and set(out) == {"exception"}:
            raise AssertionError("child as %s raised %s" % (self.name, out["exception"]))
        return out


def as_user(pw, fn):
    """fn() run as pw in a child; its result."""
    return UserChild(pw, fn).result()


def call(sock, method, params=None, timeout=30):
    """One call on a fresh connection: {"result": …} or {"error": {code, message, data}}."""
    c = Client(sock, timeout=timeout)
    try:
        return {"result": c.call(method, params)}
    except RpcError as e:
        return {"error": {"code": e.code, "message": e.message, "data": e.data}}
    finally:
        c.close()


def calls_on(c, seq):
    """Several calls on the connection c, as [reply, …] in the shape of call()."""
    out = []
    for method, params in seq:
        try:
            out.append({"result": c.call(method, params)})
        except RpcError as e:
            out.append({"error": {"code": e.code, "message": e.message, "data": e.data}})
    return out


def calls(sock, seq):
    """Several calls on one new connection, as [reply, …] in the shape of call()."""
    c = Client(sock)
    try:
        return calls_on(c, seq)
    finally:
        c.close()


def connect_errno(sock):
    """0 if connect() works, else the errno."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock)
        return 0
    except OSError as e:
        return e.errno
    finally:
        s.close()


# ---------------------------------------------------------------- daemons

class UserDaemon(Daemon):
    """A Daemon started as another user (setpriv), for what only shows when the
    daemon is not root: its own uid being admin, and its process being
    non-dumpable to its own uid."""

    def __init__(self, workdir, emulator, pw, **kw):
        self.pw = pw
        super().__init__(workdir, emulator, **kw)

    def start(self, wait=True):
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "CREDENTIALS_DIRECTORY"):
            env.pop(k, None)
        if self.key is not None:
            env["HITL_API_KEY"] = self.key
        env.update(self.env_extra)
        self.stderr = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid", str(self.pw.pw_uid), "--regid", str(self.pw.pw_gid), "--init-groups",
             os.path.join(BUILD, "hitld"), "--config", self.config, "--socket", self.socket,
             "--state-dir", self.state_dir, "--foreground"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, env=env)
        self.runs += 1
        if wait:
            wait_for(self._connectable, 15, what="hitld socket")
        return self


def start_expecting_failure(daemon, timeout=15):
    """Starts daemon, expects it to exit non-zero on its own; returns (rc, log)."""
    daemon.start(wait=False)
    try:
        rc = daemon.proc.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        daemon.proc.kill()
        daemon.proc.wait()
        raise AssertionError("hitld kept running; expected it to refuse to start:\n" + daemon.log_text()[-3000:])
    daemon.stderr.close()
    return rc, daemon.log_text()


def write_key_file(path, key, mode=0o600):
    """Writes key atomically (temp file + rename), the way an operator rotates it."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (key + "\n").encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def emulator_user_id(emu, key):
    """The HITL.sh user id owning key (stats are keyed by the masked key)."""
    for name, info in emu.stats()["per_key"].items():
        if name.startswith("****" + key[-4:]):
            return info["user_id"]
    raise AssertionError("emulator has no key ending in %s" % key[-4:])


def add_key_same_account(emu, old_key, new_key_value):
    """A second key of the same HITL.sh account (what rotating a key gives);
    returns the emulator's key info (api_key_id, …)."""
    return emu.ctl("POST", "/_emu/keys", {"key": new_key_value, "user_id": emulator_user_id(emu, old_key)})


# ---------------------------------------------------------------- secrets in files

def find_secret_in_tree(root, needles):
    """[(path, needle)] for every regular file under root holding a needle."""
    hits = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for n in needles:
                if n.encode() in data:
                    hits.append((path, n))
    return hits


def secret_needles(key):
    """The key and both its halves: a partial leak counts as a leak."""
    half = len(key) // 2
    return [key, key[:half], key[half:]]


# ---------------------------------------------------------------- TLS

def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stdout.decode(errors="replace")))


def make_ca(workdir, name):
    """A self-signed CA: returns (cert_path, key_path)."""
    cert, key = os.path.join(workdir, name + ".crt"), os.path.join(workdir, name + ".key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=hitld test CA %s" % name,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=workdir)
    return cert, key


def make_server_cert(workdir, name, ca, sans=("IP:127.0.0.1", "DNS:localhost")):
    """A server certificate signed by ca (cert, key): returns (cert_path, key_path)."""
    cert, key = os.path.join(workdir, name + ".crt"), os.path.join(workdir, name + ".key")
    csr, ext = os.path.join(workdir, name + ".csr"), os.path.join(workdir, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n" % ",".join(sans))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name, cwd=workdir)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext, cwd=workdir)
    return cert, key


class TlsEmulator(Emulator):
    """The emulator serving HTTPS with cert/key; its control endpoints are
    reached over the same TLS (trusting ca_cert, any host name)."""

    def __init__(self, workdir, cert, key, ca_cert, **kw):
        extra = tuple(kw.pop("extra", ())) + ("--tls-cert", cert, "--tls-key", key)
        self.ctx = ssl.create_default_context(cafile=ca_cert)
        self.ctx.check_hostname = False
        super().__init__(workdir, extra=extra, **kw)
        self.base = "https://127.0.0.1:%d" % self.port

    def ctl(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError("emulator %s %s: %s %s" % (method, path, e.code, e.read()))


def stop_quietly(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
