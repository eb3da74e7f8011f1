#!/usr/bin/env python3
"""Storage faults: the state directory on a tiny tmpfs that fills up.

The outbox is an append-only log (STATE_DIR/outbox/*.log): a small record
can still go into the slack of the last page of the active segment after
the file system is full, durably, so each test first uses that slack up
with padding requests (exhaust_slack), which then count as accepted.

Once nothing fits, request.submit answers -32005 storage_error and stores
nothing; nothing half-written survives; reads keep being served, also across
a restart on the full disk; a cancel is refused and changes nothing; a queued
request is not sent while it cannot be marked "submitting" durably; and once
space is freed, submits succeed and the queue drains without a duplicate.
(The syscall-level faults -- write, fsync, directory fsync at every step of
a log commit -- are unit tests: tests/unit/test_store.c,
tests/unit/test_outbox_faults.c.)

Needs to mount a tmpfs (root with CAP_SYS_ADMIN); skipped otherwise.
"""
import errno
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KEY, HitldTestCase, RpcError, main, single_select_request  # noqa: E402


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
        self.texts, self.client_refs = {}, {}
        self.slack_seq = 0
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

    SEGMENT_NAME = re.compile(r"[0-9a-f]{16}\.log\Z")

    def exhaust_slack(self):
        """The log appends into the last page of its active segment, which the
        file system already gave it: after fill(), a few small submits may
        still be stored, durably. Submits padding requests until one is
        refused with -32005 (which also closes that segment: every later
        write needs a new page). Returns the ids accepted on the way: real,
        acknowledged requests."""
        accepted = []
        for _ in range(64):
            self.slack_seq += 1
            n = self.slack_seq
            try:
                accepted.append(self.submit("slack %d" % n, client_ref="slack-%d" % n, context={"pad": "s" * 300}))
            except RpcError as e:
                self.assert_refused(e)
                return accepted
        self.fail("a full disk kept accepting submits: %d accepted" % len(accepted))

    def assert_log_whole(self, running=False):
        """No stray files in the state directory, and every outbox segment a
        run of whole entries (header fields only; the CRCs are checked by the
        daemon's open, see assert_stored). A running daemon may be writing a
        small file (budget.json, keys.json: NAME.tmp, then renamed), so the
        check for stray tmp files is made with the daemon stopped."""
        state = self.hitld.state_dir
        self.assertFalse(os.path.exists(os.path.join(state, "requests")), "legacy requests/ directory exists")
        for top, dirs, files in os.walk(state) if not running else ():
            for n in dirs + files:
                self.assertFalse(n.endswith(".tmp"), "stray %s" % os.path.join(top, n))
        self.assertEqual(os.listdir(os.path.join(state, "quarantine")), [])
        names = sorted(os.listdir(os.path.join(state, "outbox")))
        self.assertTrue(names, "no outbox segment")
        for n in names:
            self.assertRegex(n, self.SEGMENT_NAME)
            with open(os.path.join(state, "outbox", n), "rb") as f:
                data = f.read()
            self.assertTrue(data, "empty segment %s" % n)
            off = 0
            while off < len(data):
                head = data[off:off + 20]
                self.assertTrue(len(head) == 20 and head[:4] == b"HLE1" and head[4] in (1, 2),
                                "%s: no whole entry at offset %d" % (n, off))
                size = 20 + head[5] + int.from_bytes(head[8:12], "little") + int.from_bytes(head[12:16], "little")
                self.assertLessEqual(off + size, len(data), "%s: torn entry at offset %d" % (n, off))
                off += size

    def assert_stored(self, ids, restart=True):
        """What a user depends on: exactly the requests of ids, each readable
        with its original text; nothing quarantined, nothing stray. With
        restart, as a freshly started daemon reads them back from disk."""
        if restart:
            self.c.close()
            self.hitld.stop()
            self.assert_log_whole()
            self.hitld.start()
            self.c = self.hitld.client()
            self.assertEqual(self.quarantine_reports()[-1], 0)
        self.assert_log_whole(running=True)
        listed = self.c.call("request.list", {"limit": 1000})
        self.assertIsNone(listed["next_cursor"])
        self.assertEqual([r["id"] for r in listed["requests"]], ids[::-1])
        for i in ids:
            r = self.c.call("request.get", {"id": i})
            self.assertEqual(r["request_text"], self.texts[i], i)
            self.assertEqual(r["client_ref"], self.client_refs[i], i)

    def submit(self, text, **kw):
        rid = self.c.call("request.submit", single_select_request(self.loop_id, text=text, **kw))["id"]
        self.texts[rid] = text
        self.client_refs[rid] = kw.get("client_ref")
        return rid

    def assert_storage_error(self, text, **kw):
        with self.assertRaises(RpcError) as e:
            self.submit(text, **kw)
        return self.assert_refused(e.exception)

    def assert_refused(self, err):
        """-32005, and a message that says what went wrong."""
        self.assertEqual(err.code, -32005, err)
        self.assertIn("could not be stored", err.message)
        return err

    def quarantine_reports(self):
        return [int(n) for n in re.findall(r"(\d+) quarantined\)", self.hitld.log_text())]

    # -- tests
    def test_full_disk_refuses_submits_keeps_serving_reads_and_recovers(self):
        self.c.call("queue.pause")
        ids = [self.submit("before %d" % i) for i in range(3)]
        self.fill()
        ids += self.exhaust_slack()

        for i, size in enumerate((10, 1900, 50000)):
            err = self.assert_storage_error("full %d" % i, client_ref="full-%d" % i, context={"pad": "x" * size})
        print("\nfull disk: request.submit -> %d %s" % (err.code, err.message), file=sys.stderr)
        # Nothing was accepted: the client_ref is free, nothing half-written.
        with self.assertRaises(RpcError) as e:
            self.c.call("request.get", {"client_ref": "full-0"})
        self.assertEqual(e.exception.code, -32001)
        self.assert_stored(ids, restart=False)

        # Reads are served.
        st = self.c.call("status")
        self.assertEqual(st["queue"]["queued"], len(ids))
        self.assertEqual(self.c.call("request.get", {"id": ids[0]})["state"], "queued")
        self.assertFalse(self.c.call("request.wait", {"id": ids[1], "timeout_ms": 0})["done"])

        # A restart on the full disk loses nothing and quarantines nothing.
        self.assert_stored(ids)
        self.assertEqual(self.c.call("status")["queue"]["queued"], len(ids))
        # The reopened active segment has its page's slack again.
        ids += self.exhaust_slack()
        self.assert_storage_error("still full")
        self.assertEqual(self.quarantine_reports(), [0, 0])

        # Space comes back: submits succeed again, the queue drains, once each.
        self.free_space()
        ids.append(self.submit("after"))
        self.assert_stored(ids)
        self.c.call("queue.resume")
        for i in ids:
            self.wait_state(i, "pending")
        self.assertEqual(creates(self.emu), len(ids))
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)
        self.assert_stored(ids)

    def test_cancel_on_a_full_disk_is_refused_and_changes_nothing(self):
        self.c.call("queue.pause")
        rid = self.submit("to cancel")
        self.fill()
        ids = [rid] + self.exhaust_slack()
        with self.assertRaises(RpcError) as e:
            self.c.call("request.cancel", {"id": rid})
        # "-32005: the state could not be made durable; nothing was changed."
        self.assert_refused(e.exception)
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
        # Also not on disk: a restart (still on the full disk) finds it queued.
        self.assert_stored(ids)
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")
        ids += self.exhaust_slack()
        with self.assertRaises(RpcError) as e:
            self.c.call("request.cancel", {"id": rid})
        self.assert_refused(e.exception)
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "queued")

        self.free_space()
        self.assertEqual(self.c.call("request.cancel", {"id": rid})["state"], "cancelled")
        self.assert_stored(ids)
        self.assertEqual(self.c.call("request.get", {"id": rid})["state"], "cancelled")
        for i in ids[1:]:
            self.assertEqual(self.c.call("request.get", {"id": i})["state"], "queued")

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
        ids += self.exhaust_slack()
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
        # notice by itself and send them all, once each.
        self.free_space()
        for i in ids:
            self.wait_state(i, "pending", timeout=12)
        self.assertEqual(creates(self.emu), len(ids))
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)
        self.assert_stored(ids)

    def test_kill9_on_a_full_disk_loses_nothing(self):
        ids = [self.submit("k %d" % i) for i in range(3)]
        for i in ids:
            self.wait_state(i, "pending")
        # Paused so that the padding requests below stay queued (and the
        # daemon writes nothing of its own while the slack is used up).
        self.c.call("queue.pause")
        self.fill()
        slack = self.exhaust_slack()
        self.assert_storage_error("refused")
        self.c.close()
        self.hitld.kill9()
        self.hitld.start()
        self.c = self.hitld.client()
        for i in ids:
            self.assertIn(self.c.call("request.get", {"id": i})["state"], ("pending", "completed"))
        for i in slack:
            self.assertEqual(self.c.call("request.get", {"id": i})["state"], "queued")
        self.assertEqual(self.quarantine_reports(), [0, 0])
        self.assert_stored(ids + slack, restart=False)
        self.free_space()
        self.c.call("queue.resume")
        for i in slack:
            self.wait_state(i, "pending")
        for r in self.emu.requests():
            self.emu.respond(r["id"], {"selected_value": "approve"})
        for i in ids + slack:
            self.wait_state(i, "completed")
        self.assertEqual(creates(self.emu), len(ids + slack))
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)


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
        self.assert_stored(ids)
        self.c.call("queue.resume")
        for i in ids:
            self.wait_state(i, "pending")
        self.free_space()
        ids.append(self.submit("after"))
        self.wait_state(ids[-1], "pending")
        self.assertEqual(creates(self.emu), 4)
        self.assertEqual(self.emu.stats()["duplicates"]["count"], 0)
        self.assert_stored(ids)

    # The full-disk tests do not need running again here.
    test_full_disk_refuses_submits_keeps_serving_reads_and_recovers = None
    test_cancel_on_a_full_disk_is_refused_and_changes_nothing = None
    test_a_queued_request_is_not_sent_while_it_cannot_be_marked_submitting = None
    test_kill9_on_a_full_disk_loses_nothing = None


if __name__ == "__main__":
    main()
