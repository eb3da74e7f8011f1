#!/usr/bin/env python3
"""Storage faults: the state directory on a tiny tmpfs that fills up.

request.submit answers -32005 storage_error and stores nothing; no
half-written record survives; reads keep being served, also across a restart
on the full disk; a queued request is not sent while it cannot be marked
"submitting" durably; and once space is freed, submits succeed and the queue
drains without a duplicate. (The syscall-level faults -- write, fsync,
rename, directory fsync at every step of a record write -- are unit tests:
tests/unit/test_store.c, tests/unit/test_outbox_faults.c.)

Needs to mount a tmpfs (root with CAP_SYS_ADMIN); skipped otherwise.
"""
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KEY, HitldTestCase, RpcError, main, single_select_request, wait_for  # noqa: E402


def creates(emu):
    return emu.stats()["creates"]


class FullDisk(HitldTestCase):
    START_DAEMON = False
    FS_SIZE = "256k"
    CONFIG = {}

    def setUp(self):
        super().setUp()
        self.mnt = os.path.join(self.tmp, "fs")
        os.makedirs(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % self.FS_SIZE, "tmpfs", self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs here: %s" % r.stdout.decode().strip())
        # Registered before the daemon's: runs after the daemon stopped.
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        self.filler = os.path.join(self.mnt, "filler")
        self.hitld = self.new_daemon()
        self.hitld.state_dir = os.path.join(self.mnt, "state")
        self.hitld.start()
        self.c = self.hitld.client()
        self.addCleanup(lambda: self.c.close())

    # -- helpers
    def fill(self, leave=0):
        """Fills the file system, leaving about `leave` bytes free."""
        with open(self.filler, "ab", buffering=0) as f:
            chunk = 65536
            while chunk >= 1:
                st = os.statvfs(self.mnt)
                free = st.f_bavail * st.f_frsize
                if leave and free - chunk < leave:
                    if chunk == 1:
                        break
                    chunk //= 2
                    continue
                try:
                    f.write(b"\0" * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    chunk //= 2

    def free_space(self):
        os.unlink(self.filler)

    def restart(self):
        self.c.close()
        self.hitld.stop()
        self.hitld.start()
        self.c = self.hitld.client()

    def requests_dir(self):
        return os.path.join(self.hitld.state_dir, "requests")

    def assert_records_whole(self, ids):
        """On disk: exactly the records of ids, each a whole record; no tmp."""
        names = sorted(os.listdir(self.requests_dir()))
        self.assertEqual(names, sorted(i + ".json" for i in ids))
        for n in names:
            with open(os.path.join(self.requests_dir(), n), "rb") as f:
                rec = json.loads(f.read())
            self.assertEqual(rec["id"] + ".json", n)
        self.assertEqual(os.listdir(os.path.join(self.hitld.state_dir, "quarantine")), [])

    def submit(self, text, **kw):
        return self.c.call("request.submit", single_select_request(self.loop_id, text=text, **kw))["id"]

    def assert_storage_error(self, text, **kw):
        with self.assertRaises(RpcError) as e:
            self.submit(text, **kw)
        self.assertEqual(e.exception.code, -32005, e.exception)
        return e.exception

    def quarantine_reports(self):
        return [int(n) for n in re.findall(r"(\d+) quarantined\)", self.hitld.log_text())]

    # -- tests
    def test_full_disk_refuses_submits_keeps_serving_reads_and_recovers(self):
        self.c.call("queue.pause")
        ids = [self.submit("before %d" % i) for i in range(3)]
        self.fill()

        for i, size in enumerate((10, 1900, 50000)):
            err = self.assert_storage_error("full %d" % i, client_ref="full-%d" % i, context={"pad": "x" * size})
        print("\nfull disk: request.submit -> %d %s" % (err.code, err.message), file=sys.stderr)
        # Nothing was accepted: the client_ref is free, nothing half-written.
        with self.assertRaises(RpcError) as e:
            self.c.call("request.get", {"client_ref": "full-0"})
        self.assertEqual(e.exception.code, -32001)
        self.assert_records_whole(ids)

        # Reads are served.
        st = self.c.call("status")
        self.assertEqual(st["queue"]["queued"], 3)
        self.assertEqual([r["id"] for r in self.c.call("request.list")["requests"]], ids[::-1])
        self.assertEqual(self.c.call("request.get", {"id": ids[0]})["state"], "queued")
        self.assertFalse(self.c.call("request.wait", {"id": ids[1], "timeout_ms": 0})["done"])

        # A restart on the full disk loses nothing and quarantines nothing.
        self.restart()
        self.assertEqual(self.c.call("status")["queue"]["queued"], 3)
        self.assert_storage_error("still full")
        self.assertEqual(self.quarantine_reports(), [0, 0])

        # Space comes back: submits succeed again, the queue drains, once each.
        self.free_space()
        ids.append(self.submit("after"))
        self.assert_records_whole(ids)
        self.c.call("queue.resume")
        for i in ids:
            self.wait_state(i, "pending")
        self.assertEqual(creates(self.emu), 4)
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)
        self.assert_records_whole(ids)

    # BUG (methods.c, method_cancel): the state is changed in memory before
    # manager_record_changed() tries to save it; on -32005 it stays changed
    # (waiters are even told "cancelled"), and a restart brings back
    # "queued". Proposed fix in the final report. Remove the decorator then.
    def test_cancel_on_a_full_disk_is_refused_and_changes_nothing(self):
        self.c.call("queue.pause")
        rid = self.submit("to cancel")
        self.fill()
        with self.assertRaises(RpcError) as e:
            self.c.call("request.cancel", {"id": rid})
        self.assertEqual(e.exception.code, -32005)
        # "-32005: the state could not be made durable; nothing was changed."
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
        self.free_space()
        self.assertEqual(self.c.call("request.cancel", {"id": rid})["state"], "cancelled")
        self.restart()
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "cancelled")

    # BUG (manager.c, on_work_timer/try_call): when work_start() fails (the
    # record cannot be marked "submitting"), nothing re-arms the work timer;
    # the request stays queued until some unrelated kick (a new submit) or
    # its local deadline. Proposed fix in the final report (retry after a
    # few seconds). Remove the decorator then.
    def test_a_queued_request_is_not_sent_while_it_cannot_be_marked_submitting(self):
        # The daemon starts without a key, so nothing is sent; the key comes
        # once the disk is full. (Not queue.pause/resume: resuming unlinks
        # the "paused" file, which frees a page of the tmpfs.)
        key_file = os.path.join(self.tmp, "api-key")
        self.c.close()
        self.hitld.stop()
        d = self.new_daemon(config={"api": {"key_file": key_file}}, key=None, name="nokey")
        d.state_dir = os.path.join(self.mnt, "nokey-state")
        self.hitld = d.start()
        self.c = d.client()
        self.assertFalse(self.c.call("status")["key"]["loaded"])
        ids = [self.submit("waits %d" % i) for i in range(2)]
        self.fill()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, KEY.encode())
        os.close(fd)
        self.c.call("daemon.reload")
        self.assertTrue(self.c.call("status")["key"]["loaded"])
        time.sleep(2)
        # Sending it without a durable "submitting" mark could duplicate it
        # after a crash: it must wait.
        self.assertEqual(creates(self.emu), 0)
        for i in ids:
            self.assertEqual(self.c.call("request.get", {"id": i})["state"], "queued")

        # Space comes back; nobody submits anything new: the daemon must
        # notice by itself and send both, once each.
        self.free_space()
        for i in ids:
            self.wait_state(i, "pending", timeout=12)
        self.assertEqual(creates(self.emu), 2)
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)
        self.assert_records_whole(ids)

    def test_kill9_on_a_full_disk_loses_nothing(self):
        ids = [self.submit("k %d" % i) for i in range(3)]
        for i in ids:
            self.wait_state(i, "pending")
        self.fill()
        self.assert_storage_error("refused")
        self.hitld.kill9()
        self.hitld.start()
        self.c = self.hitld.client()
        for i in ids:
            self.assertIn(self.c.call("request.get", {"id": i})["state"], ("pending", "completed"))
        self.assertEqual(self.quarantine_reports(), [0, 0])
        self.assert_records_whole(ids)
        self.free_space()
        for r in self.emu.requests():
            self.emu.respond(r["id"], {"selected_value": "approve"})
        for i in ids:
            self.wait_state(i, "completed")
        self.assertEqual(creates(self.emu), 3)


class MinFreeReserve(FullDisk):
    """outbox.min_free_mb keeps a reserve: new submits are refused before
    the disk is full, so the requests already accepted still progress."""
    FS_SIZE = "3m"
    CONFIG = {"outbox": {"min_free_mb": 1}}

    def test_submits_stop_at_the_reserve_while_accepted_requests_progress(self):
        self.c.call("queue.pause")
        ids = [self.submit("r %d" % i) for i in range(3)]
        self.fill(leave=512 * 1024)
        self.assert_storage_error("over the reserve")
        self.assert_records_whole(ids)
        self.c.call("queue.resume")
        for i in ids:
            self.wait_state(i, "pending")
        self.free_space()
        ids.append(self.submit("after"))
        self.wait_state(ids[-1], "pending")
        self.assertEqual(creates(self.emu), 4)

    # The full-disk tests do not need running again here.
    test_full_disk_refuses_submits_keeps_serving_reads_and_recovers = None
    test_cancel_on_a_full_disk_is_refused_and_changes_nothing = None
    test_a_queued_request_is_not_sent_while_it_cannot_be_marked_submitting = None
    test_kill9_on_a_full_disk_loses_nothing = None


if __name__ == "__main__":
    main()
