"""Integration harness: a real HITL.sh emulator and a real hitld, on loopback
and Unix sockets in a temporary directory, started and stopped per test.

HITLD_BUILD names the build directory (build/ or build/asan/). Everything a
test starts is stopped in tearDown, also when the test fails.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HITLD_BUILD", os.path.join(ROOT, "build"))
EMULATOR = os.path.join(ROOT, "tests", "emulator", "hitl_emulator.py")
SANITIZER = os.environ.get("HITLD_SANITIZER") == "1"
# Sanitizer builds are slower; give them more time.
SLOW = 3.0 if SANITIZER else 1.0

KEY = "hitl_test_" + "0123456789abcdef" * 3
REVIEWER = "reviewer@example.com"


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for listeners the
    test starts: the webhook receiver, sshd)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_client_program(source, exe):
    """Compiles one C file against the build's libhitlclient.a (and the
    sanitizers' runtime when that library was built with them); returns None,
    or the compiler's complaint."""
    lib = os.path.join(BUILD, "libhitlclient.a")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "json-c"], capture_output=True, text=True,
                           check=True).stdout.split()
    with open(lib, "rb") as f:
        if b"__asan_" in f.read():
            flags += ["-fsanitize=address,undefined"]
    p = subprocess.run(["cc", "-std=c17", "-Wall", "-Werror", "-I", os.path.join(ROOT, "client"), source, lib] +
                       flags + ["-o", exe], capture_output=True, text=True, timeout=120)
    return None if p.returncode == 0 else p.stderr


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def as_uid(uid, fn):
    """fn() in a forked child running as uid/gid `uid` (no passwd entry
    needed, no supplementary groups); returns its JSON-able result, or
    {"exception": repr} if it raised. Needs root."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                out = fn()
            except BaseException as e:  # report, never escape the child
                out = {"exception": repr(e)}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


class Emulator:
    def __init__(self, workdir, window=20, limit=100, extra=()):
        self.workdir = workdir
        self.port_file = os.path.join(workdir, "emulator.port")
        self.log = open(os.path.join(workdir, "emulator.log"), "w")
        args = [sys.executable, EMULATOR, "--port", "0", "--port-file", self.port_file,
                "--window", str(window), "--limit", str(limit), "--key", KEY,
                "--loop-member", REVIEWER, "--quiet"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        info = wait_for(self._read_port_file, 10, what="emulator port file")
        self.port = info["port"]
        self.loop_id = info.get("default_loop_id")
        self.base = "http://127.0.0.1:%d" % self.port

    def _read_port_file(self):
        if self.proc.poll() is not None:
            raise AssertionError("emulator exited with %s" % self.proc.returncode)
        try:
            with open(self.port_file) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def ctl(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError("emulator %s %s: %s %s" % (method, path, e.code, e.read()))

    def stats(self):
        return self.ctl("GET", "/_emu/stats")

    def requests(self, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        return self.ctl("GET", "/_emu/requests" + ("?" + q if q else ""))["requests"]

    def api_calls(self):
        """API calls (not control calls) received, as (method, path, status)."""
        return [(c["method"], c["path"], c["status"]) for c in self.stats()["calls"]]

    def respond(self, remote_id, response_data):
        return self.ctl("POST", "/_emu/requests/%s/respond" % remote_id, {"response_data": response_data})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class RpcError(Exception):
    def __init__(self, error):
        super().__init__("%s %s %s" % (error.get("code"), error.get("message"), error.get("data")))
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class Client:
    """A JSON-RPC 2.0 client on the daemon's socket, one line per message."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SLOW)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.next_id = 1
        self.notifications = []

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_message(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None, raw=False):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.read_message()
            if "id" not in reply:
                self.notifications.append(reply)
                continue
            if reply["id"] != rid:
                raise AssertionError("reply for id %s, expected %s" % (reply["id"], rid))
            if raw:
                return reply
            if "error" in reply:
                raise RpcError(reply["error"])
            return reply["result"]


def single_select_request(loop_id, text="Deploy build 4812 to production?", **extra):
    req = {
        "loop_id": loop_id,
        "request_text": text,
        "response_type": "single_select",
        "response_config": {"options": [{"value": "approve", "label": "Approve"},
                                        {"value": "reject", "label": "Reject"}]},
        "default_response": "reject",
        "processing_type": "time-sensitive",
        "timeout_seconds": 900,
        "priority": "high",
    }
    req.update(extra)
    return req


class Daemon:
    def __init__(self, workdir, emulator, config_extra=None, env_extra=None, key=KEY, name="hitld"):
        self.workdir = workdir
        self.socket = os.path.join(workdir, name + ".sock")
        self.state_dir = os.path.join(workdir, name + "-state")
        self.config = os.path.join(workdir, name + ".conf")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.emulator = emulator
        self.key = key
        self.env_extra = env_extra or {}
        with open(self.config, "w") as f:
            f.write(self.config_text(config_extra))
        self.proc = None
        self.runs = 0

    def config_text(self, overrides):
        """libconfig text: the test defaults with overrides ({group: {key: value}})."""
        groups = {
            "api": {"base_url": "http://127.0.0.1:%d/v1" % self.emulator.port, "timeout_s": 5},
            "budget": {"min_poll_interval_s": 1, "window_s": 20},
            "socket": {"group": "", "mode": "0666"},
            "outbox": {"min_free_mb": 0},
            "log": {"level": "debug"},
        }
        for g, kv in (overrides or {}).items():
            groups.setdefault(g, {}).update(kv)
        out = []
        for g, kv in groups.items():
            out.append("%s: {" % g)
            for k, v in kv.items():
                out.append("  %s = %s;" % (k, json.dumps(v)))
            out.append("};")
        return "\n".join(out) + "\n"

    def start(self, wait=True):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_FDS", None)
        env.pop("CREDENTIALS_DIRECTORY", None)
        if self.key is not None:
            env["HITL_API_KEY"] = self.key
        env.update(self.env_extra)
        self.stderr = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "hitld"), "--config", self.config, "--socket", self.socket,
             "--state-dir", self.state_dir, "--foreground"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr, env=env)
        self.runs += 1
        if wait:
            wait_for(self._connectable, 15, what="hitld socket")
        return self

    def _connectable(self):
        if self.proc.poll() is not None:
            raise AssertionError("hitld exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
        c = None
        try:
            c = Client(self.socket, timeout=2)
            c.call("hello")
            return True
        except (OSError, ConnectionError):
            return False
        finally:
            if c:
                c.close()

    def client(self, timeout=30):
        return Client(self.socket, timeout=timeout)

    def log_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, expect_code=0):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(20 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("hitld did not stop on %s" % sig)
        self.stderr.close()
        if expect_code is not None and sig != signal.SIGKILL:
            assert rc == expect_code, "hitld exited %s, expected %s:\n%s" % (rc, expect_code, self.log_text()[-5000:])
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def sanitizer_reports(self):
        text = self.log_text()
        return [l for l in text.splitlines()
                if "AddressSanitizer" in l or "runtime error:" in l or "LeakSanitizer" in l]


class HitldTestCase(unittest.TestCase):
    """Starts an emulator (EMULATOR_ARGS) and a daemon (CONFIG) per test."""
    EMULATOR_ARGS = ()
    WINDOW = 20
    LIMIT = 100
    CONFIG = {}
    START_DAEMON = True

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hitld-test-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(self._cleanup_tmp)
        self.emu = Emulator(self.tmp, window=self.WINDOW, limit=self.LIMIT, extra=self.EMULATOR_ARGS)
        self.addCleanup(self.emu.stop)
        self.addCleanup(self._check_create_bodies)
        self.loop_id = self.emu.loop_id
        self.daemons = []
        if self.START_DAEMON:
            self.hitld = self.new_daemon().start()
            self.c = self.hitld.client()
            self.addCleanup(self.c.close)

    def new_daemon(self, config=None, **kw):
        d = Daemon(self.tmp, self.emu, self.CONFIG if config is None else config, **kw)
        self.daemons.append(d)
        self.addCleanup(self._stop_daemon, d)
        return d

    def _check_create_bodies(self):
        """hitld sends only documented fields within documented ranges
        (docs/HITL-API.md §2.3): the strict emulator refuses anything else,
        and this makes such a refusal fail the test even where nothing else
        would notice."""
        if self.emu.proc.poll() is not None:
            return
        try:
            errors = self.emu.stats()["create_errors"]
        except (AssertionError, OSError):
            return
        bad = [e for e in errors if e["msg"] == "Invalid request body"
               or "timeout_seconds" in json.dumps(e.get("data"))]
        if bad:
            raise AssertionError("hitld sent create bodies HITL.sh would refuse: %s" % bad)

    def _stop_daemon(self, d):
        try:
            if d.proc and d.proc.poll() is None:
                d.stop()
        finally:
            reports = d.sanitizer_reports()
            if reports:
                raise AssertionError("sanitizer reports:\n" + d.log_text()[-8000:])

    def _cleanup_tmp(self):
        if os.environ.get("HITLD_KEEP_TMP"):
            print("kept", self.tmp, file=sys.stderr)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)

    def wait_state(self, rid, states, timeout=30, client=None):
        client = client or self.c
        if isinstance(states, str):
            states = (states,)
        last = {}

        def done():
            last["r"] = client.call("request.get", {"id": rid})
            return last["r"]["state"] in states and last["r"]
        try:
            return wait_for(done, timeout, interval=0.1, what="%s to reach %s" % (rid, states))
        except AssertionError:
            raise AssertionError("%s stayed %s, wanted %s" % (rid, last.get("r", {}).get("state"), states))

    def remote_of(self, rid):
        """The emulator's copy of a local request, found by context.hitld_id."""
        reqs = self.emu.requests(hitld_id=rid)
        return reqs


def main():
    unittest.main(verbosity=2)
