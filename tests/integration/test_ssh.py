#!/usr/bin/env python3
"""Reaching hitld from another host through OpenSSH's Unix-socket forwarding.

A real sshd (Debian's openssh-server) runs on 127.0.0.1 with a throw-away
host key and configuration in the test's temporary directory; two local
accounts log in with their own keys, each running `ssh -N -L
LOCAL.sock:HITLD.sock` as a remote host would. sshd connects to hitld's
socket as the logged-in account, so hitld's per-uid isolation holds per
remote account: alice and bob each see only their own requests through
their forwards, and the other's ids are not found.

Needs root (sshd, extra accounts); skipped without it or without sshd/ssh.
"""
import os
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (free_port, BUILD, SLOW, Client, HitldTestCase, RpcError, main,  # noqa: E402
                     single_select_request, wait_for)
from sec_util import Accounts, _run_locked, stop_quietly, sweep_stale_accounts  # noqa: E402

SSHD = "/usr/sbin/sshd"   # sshd refuses to re-exec itself unless started by absolute path
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")


def keygen(path):
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", os.path.basename(path), "-f", path],
                   check=True, stdout=subprocess.DEVNULL, timeout=30)
    with open(path + ".pub") as f:
        return f.read().strip()


@unittest.skipUnless(os.geteuid() == 0, "sshd and extra accounts need root")
@unittest.skipUnless(os.access(SSHD, os.X_OK) and SSH and SSH_KEYGEN, "openssh-server/client not installed")
class SshForwarding(HitldTestCase):
    """hitld in the harness (socket mode 0666 in a 0755 directory, as
    /run/hitld.sock is 0660 root:hitl for members of hitl), sshd in front."""

    def setUp(self):
        super().setUp()
        sweep_stale_accounts()
        # Registered before sshd's own cleanup, so it runs after it: userdel
        # refuses while an account still has processes (sshd's session children).
        self.accounts = Accounts(self.addCleanup)
        self.ssh_dir = os.path.join(self.tmp, "ssh")
        os.mkdir(self.ssh_dir, 0o755)
        # bob's key may only forward, as a CI runner's would (sshd(8),
        # AUTHORIZED_KEYS FILE FORMAT); alice's is unrestricted.
        self.users = {"alice": self.remote_account("alice"),
                      "bob": self.remote_account("bob", key_options="restrict,port-forwarding")}
        self.sshd_log = os.path.join(self.ssh_dir, "sshd.log")
        self.port = self.start_sshd()

    def remote_account(self, tag, key_options=""):
        """An account with a home in the temporary directory holding its
        authorized_keys (sshd's StrictModes checks the path up to the home,
        so /tmp's mode does not matter), and a key for the client side."""
        pw = self.accounts.user(tag)
        home = os.path.join(self.tmp, "home-" + tag)
        os.makedirs(os.path.join(home, ".ssh"))
        # "*": no password, but not locked ("!" would make sshd refuse the login).
        _run_locked(["usermod", "-d", home, "-p", "*", pw.pw_name])
        key = os.path.join(self.ssh_dir, tag + "_key")
        pub = keygen(key)
        authorized = os.path.join(home, ".ssh", "authorized_keys")
        with open(authorized, "w") as f:
            f.write((key_options + " " if key_options else "") + pub + "\n")
        for path, mode in ((home, 0o755), (os.path.join(home, ".ssh"), 0o700), (authorized, 0o600)):
            os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chmod(path, mode)
        return {"pw": pw, "key": key, "name": pw.pw_name}

    def start_sshd(self):
        host_key = os.path.join(self.ssh_dir, "host_key")
        host_pub = keygen(host_key)
        config = os.path.join(self.ssh_dir, "sshd_config")
        with open(config, "w") as f:
            f.write("\n".join([
                "ListenAddress 127.0.0.1",
                "HostKey " + host_key,
                "PidFile none",
                "AuthorizedKeysFile .ssh/authorized_keys",
                "AuthenticationMethods publickey",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes yes",
                "PermitRootLogin no",
                "AllowUsers " + " ".join(u["name"] for u in self.users.values()),
                # Local forwards only. AllowTcpForwarding must allow them too:
                # with "no", sshd refuses Unix-socket forwards as well.
                "AllowStreamLocalForwarding local",
                "AllowTcpForwarding local",
                "AllowAgentForwarding no",
                "X11Forwarding no",
                "PermitTTY no",
                "LogLevel VERBOSE",
            ]) + "\n")
        # The privilege-separation directory openssh-server's tmpfiles.d
        # makes at boot. Left in place: another sshd (or this test in the
        # other build) may be using it.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for _ in range(5):
            port = free_port()
            log = open(self.sshd_log, "a")
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", config, "-p", str(port)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            self.addCleanup(stop_quietly, proc)

            def listening():
                if proc.poll() is not None:
                    return "exited"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return "up"
                except OSError:
                    return None
            if wait_for(listening, 15, what="sshd listening") == "up":
                self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
                with open(self.known_hosts, "w") as f:
                    f.write("[127.0.0.1]:%d %s\n" % (port, host_pub))
                return port
            # Lost the port to someone else between free_port() and bind: again.
        raise AssertionError("sshd did not start:\n" + self.log("sshd"))

    def log(self, what):
        with open(self.sshd_log if what == "sshd" else what, errors="replace") as f:
            return f.read()[-4000:]

    def forward(self, tag, local=None, remote=None):
        """`ssh -N -L LOCAL:REMOTE user@127.0.0.1` as the client host runs it;
        returns the local socket path once it accepts connections."""
        u = self.users[tag]
        local = local or os.path.join(self.tmp, tag + "-fwd.sock")
        remote = remote or self.hitld.socket
        log_path = os.path.join(self.ssh_dir, tag + "-ssh.log")
        log = open(log_path, "a")
        proc = subprocess.Popen(
            [SSH, "-F", "/dev/null", "-N", "-p", str(self.port), "-i", u["key"],
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", "UserKnownHostsFile=" + self.known_hosts, "-o", "StrictHostKeyChecking=yes",
             "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
             "-o", "StreamLocalBindMask=0177",
             "-L", "%s:%s" % (local, remote), "%s@127.0.0.1" % u["name"]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        self.addCleanup(stop_quietly, proc)

        def ready():
            if proc.poll() is not None:
                raise AssertionError("ssh for %s exited %s:\n%s\nsshd:\n%s"
                                     % (tag, proc.returncode, self.log(log_path), self.log("sshd")))
            return os.path.exists(local)
        wait_for(ready, 20, what="ssh forward for " + tag)
        return local

    def test_two_remote_accounts_are_isolated_through_their_forwards(self):
        fwd = {tag: self.forward(tag) for tag in ("alice", "bob")}
        clients = {tag: Client(path) for tag, path in fwd.items()}
        for c in clients.values():
            self.addCleanup(c.close)

        # hitld sees each forwarded connection as the ssh login account.
        for tag, c in clients.items():
            hello = c.call("hello")
            self.assertEqual(hello["uid"], self.users[tag]["pw"].pw_uid, tag)
            self.assertFalse(hello["admin"], tag)

        ids = {}
        for tag, c in clients.items():
            r = c.call("request.submit", single_select_request(self.loop_id, text="From %s's host" % tag))
            ids[tag] = r["id"]
        for tag, other in (("alice", "bob"), ("bob", "alice")):
            c = clients[tag]
            self.assertEqual([r["id"] for r in c.call("request.list", {})["requests"]], [ids[tag]], tag)
            self.assertEqual(c.call("request.get", {"id": ids[tag]})["id"], ids[tag])
            for method, params in (("request.get", {"id": ids[other]}),
                                   ("request.cancel", {"id": ids[other]}),
                                   ("request.wait", {"id": ids[other], "timeout_ms": 100})):
                with self.subTest(account=tag, method=method):
                    with self.assertRaises(RpcError) as e:
                        c.call(method, params)
                    self.assertEqual(e.exception.code, -32001, e.exception)

        # The owners hitld recorded are the two accounts' uids.
        owners = {r["id"]: r.get("owner_uid", r.get("uid")) for r in self.c.call("request.list", {})["requests"]}
        self.assertEqual(owners, {ids[t]: self.users[t]["pw"].pw_uid for t in ids})

        # hitlctl works unchanged on the forwarded socket (HITLD_SOCKET).
        self.emu.respond(wait_for(lambda: self.remote_of(ids["alice"]), 30, what="alice's request at HITL.sh")[0]["id"],
                         {"selected_value": "approve"})
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "wait", ids["alice"]],
                           env=dict(os.environ, HITLD_SOCKET=fwd["alice"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout.decode().split(), [ids["alice"], "completed", "approve"])
        p = subprocess.run([os.path.join(BUILD, "hitlctl"), "get", ids["alice"]],
                           env=dict(os.environ, HITLD_SOCKET=fwd["bob"]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 4, "bob's forward must not reach alice's request")

        # sshd logged the two logins and nothing was refused.
        log = self.log("sshd")
        for tag in ("alice", "bob"):
            self.assertIn("Accepted publickey for %s" % self.users[tag]["name"], log)

    def test_a_forward_is_only_as_open_as_the_daemons_socket(self):
        """sshd connects as the account: where that account may not open the
        socket (not in group hitl), the forwarded connection is refused."""
        private = os.path.join(self.tmp, "private")
        os.mkdir(private, 0o700)   # root only, as a 0660 root:hitl socket is to non-members
        os.symlink(self.hitld.socket, os.path.join(private, "hitld.sock"))
        fwd = self.forward("alice", remote=os.path.join(private, "hitld.sock"))
        c = None
        with self.assertRaises((ConnectionError, OSError)):
            c = Client(fwd, timeout=10)
            c.call("hello")
        if c:
            c.close()
        wait_for(lambda: "open failed" in self.log("sshd") or "connect to" in self.log("sshd")
                 or "Permission denied" in self.log("sshd"), 10, what="sshd's refusal in its log")
        # The same account through an open path works: the refusal was the mode.
        c = Client(self.forward("alice", local=os.path.join(self.tmp, "alice2.sock")))
        self.addCleanup(c.close)
        self.assertEqual(c.call("hello")["uid"], self.users["alice"]["pw"].pw_uid)


if __name__ == "__main__":
    main()
