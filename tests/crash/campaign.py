#!/usr/bin/env python3
"""Crash campaign: many concurrent clients submit, cancel and wait while hitld
is kill -9-ed at random instants and restarted, for N rounds; then every
promise of DESIGN.md §2 (1-3) is checked against the emulator and the
clients' own logs.

Rounds come in kinds, so that the kill lands where it hurts:
  random      at a uniformly random instant of the daemon's life
  startup     within the first 60 ms (while it loads the outbox)
  after_ack   right after some client got a submit reply
  inflight    while a create is in flight: the emulator holds the create's
              reply ("slow" fault) after it committed, and the kill lands
              once the POST has arrived -- between "create sent" and
              "result recorded"
  no_reply    the create commits but its reply is a connection reset
              ("commit_no_reply"); the kill lands during the reconcile
  reconcile   the reconcile call's reply is held back ("slow") and the
              kill lands while it is in flight
  damage      a random round, then, while hitld is down, a random block of
              a random outbox log segment is overwritten with random bytes
              (not only torn tails: the entries it hits may have been
              committed and acted on). A record whose entries were hit may
              be lost or rolled back, which a disk may do; it must never be
              created twice (issue 12 item 3). --no-damage leaves these out.

Clients keep their own log. Only a submit whose reply arrived is
acknowledged. A submit whose reply was lost is resubmitted with the same
client_ref once the daemon is back: the answer says whether the first one
had been stored (duplicate: true) or not.

After the last kill: faults cleared, the auto-reviewer answers at once,
hitld restarted one last time, and the campaign waits until every request is
terminal. Checks (each one line, PASS/FAIL):
  - every acknowledged request exists locally and is terminal
  - no request exists that no client knows of
  - every request the daemon reported terminal kept that state
  - every request acknowledged as cancelled while queued stayed cancelled
  - duplicates 0 (emulator: one remote request per hitld_id)
  - every remote request maps to exactly one local request
  - over-limit attempts 0
  - quarantine/ empty, and no start reported a quarantined record (with
    damage rounds: nothing quarantined but what they broke)
Requests whose log entries a damage round hit are left out of the checks
that a damaged disk may break (exists, content, terminal kept, cancels,
mapping), never out of "duplicates 0" and "at most one remote".
  - a submit refused with an error left nothing behind

Usage: campaign.py [--kills N] [--clients N] [--seed S] [--build DIR]
                   [--keep] [--verbose]
The last line is "N passed, N failed" (one per check).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--build", default=None, help="build directory (default $HITLD_BUILD or build/)")
    ap.add_argument("--window", type=int, default=10, help="emulator rate-limit window, s")
    ap.add_argument("--limit", type=int, default=100, help="emulator calls per window")
    ap.add_argument("--max-uptime", type=float, default=2.0, help="longest life of one round, s")
    ap.add_argument("--final-timeout", type=float, default=150.0)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--no-damage", action="store_true", help="no rounds that damage the outbox log")
    return ap.parse_args(argv)


ARGS = parse_args()
if ARGS.build:
    os.environ["HITLD_BUILD"] = os.path.abspath(ARGS.build)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (reads HITLD_BUILD at import)
from harness import Client, Daemon, Emulator, RpcError, single_select_request  # noqa: E402

TERMINAL = ("completed", "timeout", "cancelled", "failed")
CREATE_MATCH = {"method": "POST", "path_prefix": "/v1/api/loops/"}
# A reconcile reads GET /v1/api/requests?loop_id=… (so does a poll).
RECONCILE_MATCH = {"method": "GET", "path_prefix": "/v1/api/requests"}
KINDS = [("random", 30), ("startup", 8), ("after_ack", 12), ("inflight", 25), ("no_reply", 15),
         ("reconcile", 10)] + ([] if ARGS.no_damage else [("damage", 10)])
MAX_OUTSTANDING = 8   # per client: acknowledged and not yet seen terminal


def log(msg):
    if ARGS.verbose:
        print("[%7.2f] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


def log_entries(path):
    """(offset, size, id) of the whole entries of a log segment, up to the
    first thing that is not one (daemon/seglog.c's format)."""
    with open(path, "rb") as f:
        data = f.read()
    out, off = [], 0
    while off + 20 <= len(data) and data[off:off + 4] == b"HLE1":
        id_len = data[off + 5]
        meta_len, params_len = struct.unpack_from("<II", data, off + 8)
        size = 20 + id_len + meta_len + params_len
        if off + size > len(data):
            break
        out.append((off, size, data[off + 20:off + 20 + id_len].decode(errors="replace")))
        off += size
    return out


class Shared:
    """What the clients and the killer share."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = False
        self.acks = 0                  # submit replies received, all clients
        self.ack_event = threading.Event()
        self.violations = []           # immediate findings (acknowledged request not found, ...)

    def violation(self, text):
        with self.lock:
            self.violations.append(text)
        log("VIOLATION " + text)


class Worker(threading.Thread):
    """One client program: submits, cancels, waits, gets; reconnects after a
    kill; keeps its own log of what the daemon acknowledged."""

    def __init__(self, cid, shared, socket_path, loop_id, seed):
        super().__init__(name="client-%d" % cid, daemon=True)
        self.cid = cid
        self.shared = shared
        self.socket_path = socket_path
        self.loop_id = loop_id
        self.rng = random.Random(seed)
        self.conn = None
        self.n = 0
        self.acked = {}          # id -> {"ref", "text"}
        self.unknown = {}        # client_ref -> params (reply lost)
        self.resolved = {}       # client_ref -> (id, existed)
        self.refused = {}        # client_ref -> error code
        self.terminal_seen = {}  # id -> state the daemon reported as terminal
        self.cancel_acked = {}   # id -> state in the cancel reply
        self.cancel_tried = set()
        self.errors = 0

    # -- connection
    def connect(self):
        if self.conn:
            return True
        try:
            self.conn = Client(self.socket_path, timeout=5)
            return True
        except OSError:
            self.conn = None
            return False

    def drop(self):
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    # -- actions
    def params_for(self, ref, n):
        return single_select_request(self.loop_id, text="crash c%d n%d" % (self.cid, n), client_ref=ref,
                                     timeout_seconds=3600)

    def submit(self, ref, params, retry):
        try:
            res = self.conn.call("request.submit", params)
        except RpcError as e:
            self.unknown.pop(ref, None)
            self.refused[ref] = e.code
            return
        self.unknown.pop(ref, None)
        rid = res["id"]
        if retry:
            self.resolved[ref] = (rid, bool(res["duplicate"]))
        elif res["duplicate"]:
            self.shared.violation("first submit of %s answered duplicate=true (%s)" % (ref, rid))
        self.acked[rid] = {"ref": ref, "text": params["request_text"]}
        with self.shared.lock:
            self.shared.acks += 1
        self.shared.ack_event.set()

    def outstanding(self):
        return [i for i in self.acked if i not in self.terminal_seen]

    def note_record(self, rec):
        if rec["state"] in TERMINAL:
            old = self.terminal_seen.get(rec["id"])
            if old and old != rec["state"]:
                self.shared.violation("%s was %s, later %s" % (rec["id"], old, rec["state"]))
            self.terminal_seen[rec["id"]] = rec["state"]

    def step(self):
        # Lost replies first: resubmit with the same client_ref.
        for ref, params in list(self.unknown.items()):
            self.submit(ref, params, retry=True)
        ids = list(self.acked)
        r = self.rng.random()
        if r < 0.40 and len(self.outstanding()) < MAX_OUTSTANDING:
            self.n += 1
            ref = "c%d-%d" % (self.cid, self.n)
            params = self.params_for(ref, self.n)
            self.unknown[ref] = params      # until the reply arrives
            self.submit(ref, params, retry=False)
        elif r < 0.52 and ids:
            rid = self.rng.choice(ids)
            if rid in self.cancel_tried:
                return
            self.cancel_tried.add(rid)
            try:
                rec = self.conn.call("request.cancel", {"id": rid})
            except RpcError as e:
                if e.code == -32001:
                    self.shared.violation("acknowledged %s not found on cancel" % rid)
                elif e.code != -32007:
                    self.shared.violation("cancel %s: unexpected error %s" % (rid, e))
                return
            self.cancel_acked[rid] = "cancelled" if rec["state"] == "cancelled" else "requested"
            self.note_record(rec)
        elif r < 0.80 and ids:
            out = self.outstanding()
            rid = self.rng.choice(out or ids)
            try:
                res = self.conn.call("request.wait", {"id": rid, "timeout_ms": self.rng.randint(0, 600)})
            except RpcError as e:
                if e.code == -32001:
                    self.shared.violation("acknowledged %s not found on wait" % rid)
                elif e.code != -32008:
                    self.shared.violation("wait %s: unexpected error %s" % (rid, e))
                return
            self.note_record(res["request"])
        elif ids:
            rid = self.rng.choice(ids)
            try:
                rec = self.conn.call("request.get", {"id": rid})
            except RpcError as e:
                self.shared.violation("acknowledged %s: get answered %s" % (rid, e))
                return
            self.note_record(rec)
        else:
            self.conn.call("status")

    def run(self):
        while not self.shared.stop:
            if not self.connect():
                time.sleep(0.02)
                continue
            try:
                self.step()
            except (OSError, ConnectionError, ValueError):
                # Killed under us (ValueError: a reply cut mid-line).
                self.errors += 1
                self.drop()
                continue
            time.sleep(self.rng.uniform(0.01, 0.12))
        self.drop()


class Campaign:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.tmp = tempfile.mkdtemp(prefix="hitld-crash-")
        os.chmod(self.tmp, 0o755)
        self.kind_counts = {k: 0 for k, _ in KINDS}
        self.kills = 0
        self.inflight_kills = 0      # kills verified to land while a create was in flight
        self.damaged_ids = set()     # records whose log entries a damage round hit
        self.damaged_bytes = 0
        self.emu = None
        self.daemon = None
        self.checks = []

    # -- helpers
    def faults_injected(self):
        return self.emu.stats()["faults_injected"]

    def add_fault(self, kind, match, seconds=None, count=1):
        body = {"kind": kind, "count": count, "match": match}
        if seconds is not None:
            body["seconds"] = seconds
        self.emu.ctl("POST", "/_emu/faults", body)

    def clear_faults(self):
        self.emu.ctl("DELETE", "/_emu/faults")

    def wait_until(self, pred, timeout, interval=0.01):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(interval)
        return False

    def kill(self):
        self.daemon.kill9()
        self.kills += 1

    # -- one round
    def round(self, kind):
        rng = self.rng
        self.kind_counts[kind] += 1
        d = self.daemon
        up = rng.uniform(0.1, self.args.max_uptime)
        if kind == "startup":
            d.start(wait=False)
            time.sleep(rng.uniform(0, 0.06))
            self.kill()
            return
        if kind == "random":
            d.start(wait=False)
            time.sleep(up)
            self.kill()
            return
        if kind == "after_ack":
            d.start(wait=False)
            time.sleep(rng.uniform(0.05, 0.5))
            self.shared.ack_event.clear()
            self.shared.ack_event.wait(self.args.max_uptime)
            self.kill()
            return
        if kind in ("inflight", "reconcile"):
            seen = self.faults_injected()
            match = CREATE_MATCH if kind == "inflight" else RECONCILE_MATCH
            # The reply comes after the kill: the create (or list) is done at
            # the emulator, the daemon never learns the outcome.
            self.add_fault("slow", match, seconds=self.args.max_uptime + 1.5)
            d.start(wait=False)
            arrived = self.wait_until(lambda: self.faults_injected() > seen, self.args.max_uptime + 1.0, 0.02)
            if arrived:
                time.sleep(rng.uniform(0, 0.3))
                if kind == "inflight":
                    self.inflight_kills += 1
            self.kill()
            self.clear_faults()
            return
        if kind == "no_reply":
            self.add_fault("commit_no_reply", CREATE_MATCH)
            d.start(wait=False)
            time.sleep(up)
            self.kill()
            self.clear_faults()
            return
        if kind == "damage":
            d.start(wait=False)
            time.sleep(up)
            self.kill()
            self.damage()
            return
        raise AssertionError(kind)

    def damage(self):
        """Overwrites a random block of a random log segment with random
        bytes, noting the records whose entries it hit."""
        rng = self.rng
        segs = sorted(glob.glob(os.path.join(self.daemon.state_dir, "outbox", "*.log")))
        segs = [p for p in segs if os.path.getsize(p) >= 64]
        if not segs:
            return
        path = rng.choice(segs)
        size = os.path.getsize(path)
        n = min(size, rng.randint(32, 4096))
        off = rng.randrange(0, size - n + 1)
        for eoff, esize, rid in log_entries(path):
            if eoff < off + n and off < eoff + esize:
                self.damaged_ids.add(rid)
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(bytes(rng.randrange(256) for _ in range(n)))
            f.flush()
            os.fsync(f.fileno())
        self.damaged_bytes += n
        log("damaged %d bytes at %d of %s" % (n, off, os.path.basename(path)))

    # -- the whole thing
    def run(self):
        a = self.args
        print("crash campaign: seed %d, %d kills, %d clients, build %s, workdir %s"
              % (self.seed, a.kills, a.clients, harness.BUILD, self.tmp), flush=True)
        self.emu = Emulator(self.tmp, window=a.window, limit=a.limit)
        try:
            return self._run()
        finally:
            if self.daemon and self.daemon.proc and self.daemon.proc.poll() is None:
                self.daemon.kill9()
            self.emu.stop()
            if a.keep or any(not ok for _, ok, _ in self.checks):
                print("work directory kept: %s" % self.tmp, flush=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self):
        a = self.args
        emu = self.emu
        loop_id = emu.loop_id
        # Reviewers answer a few seconds after a create, so that cancels
        # and waits meet requests in every state.
        emu.ctl("POST", "/_emu/auto-review", {"delay_s": 2, "jitter_s": 3, "default": "first"})
        self.daemon = Daemon(self.tmp, emu, {
            "budget": {"window_s": a.window, "limit_per_hour": a.limit, "min_poll_interval_s": 1},
            "api": {"timeout_s": 10},
            "log": {"level": "info"},
        })
        self.shared = Shared()
        workers = [Worker(i, self.shared, self.daemon.socket, loop_id, self.rng.randrange(1 << 30))
                   for i in range(a.clients)]
        for w in workers:
            w.start()

        names = [k for k, _ in KINDS]
        weights = [w for _, w in KINDS]
        t_start = time.monotonic()
        while self.kills < a.kills:
            kind = self.rng.choices(names, weights)[0]
            self.round(kind)
            log("kill %d (%s)" % (self.kills, kind))
            time.sleep(self.rng.uniform(0, 0.15))     # down for a moment: clients get refused
        t_kills = time.monotonic() - t_start

        # Final: no faults, answers at once, one last start.
        self.clear_faults()
        emu.ctl("POST", "/_emu/auto-review", {"delay_s": 0, "default": "first"})
        self.daemon.start(wait=True)
        # Let the clients resolve their lost replies, then stop them.
        self.wait_until(lambda: all(not w.unknown for w in workers), 20, 0.05)
        self.shared.stop = True
        for w in workers:
            w.join(30)

        c = self.daemon.client(timeout=30)
        # Whatever a client could not resolve (it stopped first), resolve here.
        for w in workers:
            w.conn = c
            for ref, params in list(w.unknown.items()):
                w.submit(ref, params, retry=True)

        final = self.wait_terminal(c, a.final_timeout)
        t_final = time.monotonic() - t_start - t_kills
        self.check(final, workers)
        c.close()
        rc = self.daemon.stop()
        self.record("hitld exits 0 on SIGTERM after the campaign", rc == 0, "exit %s" % rc)

        st = emu.stats()
        acked = sum(len(w.acked) for w in workers)
        terminal = sum(1 for w in workers for i in w.acked if final.get(i, {}).get("state") in TERMINAL)
        lost_replies = sum(len(w.resolved) for w in workers)
        existed = sum(1 for w in workers for _, ex in w.resolved.values() if ex)
        print("rounds: " + ", ".join("%s %d" % kv for kv in self.kind_counts.items()), flush=True)
        print("timing: kills %.1f s, final %.1f s; client reconnects %d"
              % (t_kills, t_final, sum(w.errors for w in workers)), flush=True)
        print("crash campaign summary: kills=%d inflight_create_kills=%d acknowledged=%d terminal=%d "
              "lost_replies=%d (existed %d) duplicates=%d over_limit=%d quarantined=%d remote_creates=%d "
              "faults_injected=%d damaged_bytes=%d damaged_records=%d"
              % (self.kills, self.inflight_kills, acked, terminal, lost_replies, existed,
                 st["duplicates"]["count"], st["over_limit_attempts"], self.quarantined,
                 st["creates"], st["faults_injected"], self.damaged_bytes, len(self.damaged_ids)), flush=True)
        failed = sum(1 for _, ok, _ in self.checks if not ok)
        print("%d passed, %d failed" % (len(self.checks) - failed, failed), flush=True)
        return failed == 0

    def wait_terminal(self, c, timeout):
        deadline = time.monotonic() + timeout
        while True:
            recs = self.list_all(c)
            live = [r for r in recs.values() if r["state"] not in TERMINAL]
            if not live or time.monotonic() > deadline:
                if live:
                    print("still live after %.0f s: %s" % (timeout, ", ".join(
                        "%s=%s" % (r["id"], r["state"]) for r in live[:20])), flush=True)
                return recs
            time.sleep(0.5)

    def list_all(self, c):
        out, cursor = {}, None
        while True:
            p = {"limit": 1000}
            if cursor:
                p["cursor"] = cursor
            page = c.call("request.list", p)
            for r in page["requests"]:
                out[r["id"]] = r
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def record(self, name, ok, detail=""):
        self.checks.append((name, ok, detail))
        print("%s  %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""),
              flush=True)

    def check(self, final, workers):
        emu = self.emu
        st = emu.stats()
        hit = self.damaged_ids
        # What a damaged disk may break is checked for the others only.
        acked = {i: (w, v) for w in workers for i, v in w.acked.items() if i not in hit}

        missing = [i for i in acked if i not in final]
        self.record("every acknowledged request exists", not missing, "missing %s" % missing[:10])
        live = [i for i in acked if i in final and final[i]["state"] not in TERMINAL]
        self.record("every acknowledged request is terminal", not live,
                    "live %s" % ["%s=%s" % (i, final[i]["state"]) for i in live[:10]])
        wrong = [i for i, (w, v) in acked.items() if i in final and
                 (final[i]["request_text"] != v["text"] or final[i]["client_ref"] != v["ref"])]
        self.record("acknowledged requests kept their content", not wrong, "differ %s" % wrong[:10])

        unknown_local = [i for i in final if not any(i in w.acked for w in workers)]
        self.record("no local request that no client knows of", not unknown_local,
                    "unknown %s" % unknown_local[:10])

        refs = {}
        for r in final.values():
            if r.get("client_ref"):
                refs.setdefault((r["owner_uid"], r["client_ref"]), []).append(r["id"])
        multi = {k: v for k, v in refs.items() if len(v) > 1}
        self.record("one local request per client_ref", not multi, str(list(multi.items())[:5]))
        refused_left = [ref for w in workers for ref in w.refused
                        if any(r.get("client_ref") == ref for r in final.values())]
        self.record("a refused submit left nothing", not refused_left, str(refused_left[:10]))

        flipped = []
        for w in workers:
            for i, s in w.terminal_seen.items():
                if i in final and final[i]["state"] != s and i not in hit:
                    flipped.append("%s %s->%s" % (i, s, final[i]["state"]))
        self.record("terminal states never change", not flipped, str(flipped[:10]))

        uncancel = []
        for w in workers:
            for i, how in w.cancel_acked.items():
                if i in hit:
                    continue
                fs = final.get(i, {}).get("state")
                if how == "cancelled" and fs != "cancelled":
                    uncancel.append("%s cancelled->%s" % (i, fs))
                if how == "requested" and fs not in TERMINAL:
                    uncancel.append("%s cancel requested->%s" % (i, fs))
        self.record("acknowledged cancels hold", not uncancel, str(uncancel[:10]))

        violations = [v for v in self.shared.violations if not any(i in v for i in hit)]
        self.record("clients saw no violation", not violations, "; ".join(violations[:10]))

        self.record("duplicates 0", st["duplicates"]["count"] == 0, json.dumps(st["duplicates"])[:500])
        remote = emu.requests()
        by_h = {}
        for r in remote:
            by_h.setdefault(r.get("hitld_id"), []).append(r)
        stray = [h for h in by_h if h not in final and h not in hit]
        self.record("every remote request maps to a local one", not stray, "unmapped hitld_id %s" % stray[:10])
        dup = {h: [r["id"] for r in rs] for h, rs in by_h.items() if len(rs) > 1}
        self.record("every local request has at most one remote", not dup, str(list(dup.items())[:5]))
        mism = [i for i, r in final.items() if r.get("remote_id") and
                [x["id"] for x in by_h.get(i, [])] != [r["remote_id"]]]
        self.record("remote_id matches the emulator", not mism, str(mism[:10]))

        over = st["over_limit_attempts"]
        per_key = {k: v["over_limit_attempts"] for k, v in st["per_key"].items()}
        self.record("over-limit attempts 0", over == 0, "total %d, per key %s" % (over, per_key))
        n429 = sum(1 for call in st["calls"] if call["status"] == 429)
        self.record("no 429 answered", n429 == 0, "%d" % n429)

        qdir = os.path.join(self.daemon.state_dir, "quarantine")
        q = os.listdir(qdir) if os.path.isdir(qdir) else []
        starts = re.findall(r"(\d+) quarantined\)", self.daemon.log_text())
        self.quarantined = len(q) + sum(int(x) for x in starts)
        if self.kind_counts.get("damage"):
            self.record("nothing quarantined but what the damage rounds broke",
                        not (q or any(int(x) for x in starts)) or self.damaged_bytes > 0,
                        "files %s" % q[:10])
        else:
            self.record("quarantine empty", not q and not any(int(x) for x in starts),
                        "files %s, starts reporting %s" % (q[:10], [x for x in starts if int(x)]))
        self.record("hitld reported its starts", len(starts) >= 1, "starts %d" % len(starts))
        reports = self.daemon.sanitizer_reports()
        self.record("no sanitizer reports", not reports, "\n".join(reports[:5]))


def main():
    ok = Campaign(ARGS).run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
