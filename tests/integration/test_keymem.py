#!/usr/bin/env python3
"""The old API key leaves hitld's memory when it is replaced (hitld(8),
API KEY): after a rotation by SIGHUP, root reads the live daemon's whole
address space (/proc/PID/maps + /proc/PID/mem) and must find neither the old
key nor "Bearer <old key>" anywhere — not in hitld's own buffers, not in
libcurl's freed request buffers, and over TLS not in OpenSSL's freed record
buffers either. The new key is found (a control: the search can see the key
when it is there).
"""
import os
import re
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, KEY, HitldTestCase, main, single_select_request, wait_for  # noqa: E402
from sec_util import (TlsEmulator, add_key_same_account, make_ca, make_server_cert,  # noqa: E402
                      new_key, write_key_file)


CHUNK = 16 << 20
REGION_MAX = 1 << 30   # larger mappings are reservations (ASan's shadow), not data


def memory_hits(pid, needles):
    """{needle: count} of every needle in the readable mappings of pid."""
    hits = {n: 0 for n in needles}
    overlap = max(len(n) for n in needles) - 1
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or m.group(3)[0] != "r" or line.endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start > REGION_MAX:
                continue
            tail = b""
            for at in range(start, end, CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(CHUNK, end - at))
                except (OSError, OverflowError, ValueError):
                    break
                for n in needles:
                    hits[n] += data.count(n.encode()) - tail.count(n.encode())
                tail = data[-overlap:] if overlap else b""
    return hits


def sanitizer_build():
    with open(os.path.join(BUILD, "hitld"), "rb") as f:
        return b"__asan_" in f.read()


class KeyMemory(HitldTestCase):
    START_DAEMON = False
    TLS = False

    def setUp(self):
        super().setUp()
        if self.TLS:
            pki = tempfile.mkdtemp(prefix="hitld-pki-")
            self.addCleanup(shutil.rmtree, pki, True)
            ca = make_ca(pki, "ca")
            cert = make_server_cert(pki, "server", ca)
            self.emu.stop()
            os.unlink(self.emu.port_file)
            self.emu = TlsEmulator(self.tmp, cert[0], cert[1], ca[0], window=self.WINDOW, limit=self.LIMIT)
            self.addCleanup(self.emu.stop)
            self.loop_id = self.emu.loop_id
            api = {"base_url": "https://127.0.0.1:%d/v1" % self.emu.port, "ca_file": ca[0]}
        else:
            api = {}
        self.new = new_key()
        add_key_same_account(self.emu, KEY, self.new)
        self.key_file = os.path.join(self.tmp, "api.key")
        write_key_file(self.key_file, KEY)
        api["key_file"] = self.key_file
        self.hitld = self.new_daemon({"api": api}, key=None).start()
        self.c = self.hitld.client()
        self.addCleanup(self.c.close)

    def test_no_copy_of_the_old_key_survives_a_rotation(self):
        # Several calls with the old key: GETs and a POST with a body.
        for _ in range(3):
            self.c.call("key.test")
        rid = self.c.call("request.submit", single_select_request(self.loop_id))["id"]
        self.wait_state(rid, "pending", client=self.c)

        write_key_file(self.key_file, self.new)
        self.hitld.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "API key reloaded from the key file." in self.hitld.log_text(), 10,
                 what="the key reload")
        # Calls with the new key reuse the heap the old calls freed.
        for _ in range(2):
            self.c.call("key.test")

        got = memory_hits(self.hitld.proc.pid, ["Bearer " + KEY, KEY, self.new])
        self.assertGreater(got[self.new], 0, "control: the search finds the current key")
        old = {n: c for n, c in got.items() if n != self.new and c}
        self.assertEqual(old, {}, "copies of the old key in the daemon's memory")
        # The key's own pages are locked in RAM (ASan turns mlock into a no-op).
        with open("/proc/%d/status" % self.hitld.proc.pid) as f:
            locked_kb = int(re.search(r"^VmLck:\s+(\d+) kB", f.read(), re.M).group(1))
        if not sanitizer_build():
            self.assertGreaterEqual(locked_kb, 4)
        self.assertNotIn("Could not lock", self.hitld.log_text())
        # libcurl on OpenSSL (Debian's libcurl4-openssl): its allocator is hooked too.
        self.assertNotIn("not wiped on free", self.hitld.log_text())
        self.assertIn("libcurl uses OpenSSL: its buffers are wiped on free too.", self.hitld.log_text())


class KeyMemoryTls(KeyMemory):
    TLS = True


if __name__ == "__main__":
    main()
