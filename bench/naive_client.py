#!/usr/bin/env python3
"""The baseline for the budget-economy benchmark: a client written the way the
vendor's examples work (docs/HITL-API.md §1.1, §2.4: poll each request): create a
request, then GET each outstanding request every 30 s until it is final; on a
429 sleep for Retry-After (60 s when absent) and go on. No batching, no
budget ledger, no list calls.

The benchmark compresses time: with a rate-limit window of W seconds instead
of an hour, every period the examples use is scaled by W/3600 (30 s of an hour
becomes 30*W/3600 s), so the client spends its budget at the same rate per
window as the real one would.

Run standalone against the emulator:
    bench/naive_client.py --url http://127.0.0.1:PORT --key KEY --loop LOOP_ID \
        --count 100 --window 20 --duration 60
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

FINAL = ("completed", "timeout", "cancelled")


def request_body(i, text_bytes=200):
    """The create body the benchmark sends for request number i (hitld gets the same)."""
    text = ("Benchmark request %d: approve the change? " % i).ljust(text_bytes, "x")
    return {
        "request_text": text,
        "response_type": "single_select",
        "response_config": {"options": [{"value": "approve", "label": "Approve"},
                                        {"value": "reject", "label": "Reject"}]},
        "default_response": "reject",
        "processing_type": "deferred",
        "type": "markdown",
        "priority": "medium",
    }


class NaiveClient:
    def __init__(self, url, key, loop_id, count, window_s=3600.0, poll_s=30.0, retry_default_s=60.0,
                 text_bytes=200, on_visible=None):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.prefix = u.path.rstrip("/") + "/v1/api"
        self.key = key
        self.loop_id = loop_id
        self.count = count
        scale = window_s / 3600.0
        self.poll_period = poll_s * scale
        self.retry_default = retry_default_s * scale
        self.text_bytes = text_bytes
        self.on_visible = on_visible
        self.conn = None
        # Counters the benchmark reads.
        self.created = 0
        self.completed = 0
        self.calls = 0
        self.too_many = 0
        self.errors = 0
        self.outstanding = {}   # remote id -> next poll time (monotonic)
        self.visible_at = {}    # remote id -> wall-clock time the answer was seen
        self.lock = threading.Lock()

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer " + self.key}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
                self.calls += 1
                return r.status, r.getheader("Retry-After"), json.loads(payload or b"null")
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("not reached")

    def _rate_limited(self, status, retry_after, stop):
        if status != 429:
            return False
        self.too_many += 1
        wait = float(retry_after) if retry_after else self.retry_default
        stop.wait(wait)
        return True

    def run(self, stop):
        """Runs until every request is final or stop (a threading.Event) is set."""
        next_create = 0
        while not stop.is_set():
            now = time.monotonic()
            # Poll every outstanding request that is due, oldest first.
            due = sorted((t, rid) for rid, t in self.outstanding.items() if t <= now)
            for _, rid in due:
                if stop.is_set():
                    return
                status, retry_after, body = self._call("GET", "/requests/" + rid)
                if self._rate_limited(status, retry_after, stop):
                    break
                if status != 200:
                    self.errors += 1
                    self.outstanding[rid] = time.monotonic() + self.poll_period
                    continue
                req = (body.get("data") or {}).get("request") or body.get("data") or {}
                if req.get("status") in FINAL:
                    del self.outstanding[rid]
                    self.completed += 1
                    seen = time.time()
                    self.visible_at[rid] = seen
                    if self.on_visible:
                        self.on_visible(rid, seen)
                else:
                    self.outstanding[rid] = time.monotonic() + self.poll_period
            else:
                # Then create the next request, as the examples do in their loop.
                if next_create < self.count:
                    status, retry_after, body = self._call(
                        "POST", "/loops/%s/requests" % self.loop_id, request_body(next_create, self.text_bytes))
                    if self._rate_limited(status, retry_after, stop):
                        continue
                    if status == 201:
                        rid = body["data"]["request_id"]
                        self.outstanding[rid] = time.monotonic() + self.poll_period
                        self.created += 1
                        next_create += 1
                    else:
                        self.errors += 1
                        next_create += 1
                    continue
                if not self.outstanding:
                    return
                # Nothing due: sleep until the next poll.
                stop.wait(max(0.0, min(self.outstanding.values()) - time.monotonic()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--loop", required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--window", type=float, default=3600.0, help="rate-limit window in seconds (scales 30 s)")
    ap.add_argument("--duration", type=float, default=60.0)
    a = ap.parse_args()
    client = NaiveClient(a.url, a.key, a.loop, a.count, window_s=a.window)
    stop = threading.Event()
    timer = threading.Timer(a.duration, stop.set)
    timer.start()
    client.run(stop)
    timer.cancel()
    print(json.dumps({"created": client.created, "completed": client.completed, "calls": client.calls,
                      "429s": client.too_many, "errors": client.errors}))


if __name__ == "__main__":
    sys.exit(main())
