"""bench/run section economy-cb: the budget economy with HITL.sh's callbacks
(issue 17). Imported by bench/run, which hands it its helpers (the harness's
Emulator, Daemon and Client, its Watcher, analyze_calls() and
latency_figures()) in a namespace, so this file holds only what is its own.

Three hitld runs at once, each against its own emulator (same window, limit,
backlog and reviewers as section 1):
  polling    hitld as without a receiver: today's figures, in the same run;
  callbacks  webhook on: answers arrive as callbacks, polls drop to a sweep;
  drop20     webhook on, the emulator losing 20 % of the callbacks (seeded):
             the sweep has to find them.
"""
import json
import random
import shutil
import socket
import threading
import time

RUNS = (
    ("polling", False, 0.0),
    ("callbacks", True, 0.0),
    ("drop20", True, 0.2),
)
DROP_SEED = 17
GOAL_CREATES = 0.97       # × limit, per full window while queued
GOAL_CALLS = 1.03         # API calls per completed request
GOAL_P50_S = 0.5
GOAL_P95_S = 1.0


class Reviewer(threading.Thread):
    """As section 1's, but notes the time just BEFORE it answers: a callback
    can reach hitld before the respond call returns, and the latency must
    not come out negative (or flattered)."""

    def __init__(self, emu, delay, jitter, seed):
        super().__init__(daemon=True)
        self.emu, self.delay, self.jitter = emu, delay, jitter
        self.rng = random.Random(seed)
        self.due = {}
        self.answered_at = {}
        self.stop = threading.Event()
        self.errors = 0

    def run(self):
        while not self.stop.wait(0.05):
            try:
                pending = self.emu.ctl("GET", "/_emu/requests?status=pending")["requests"]
            except AssertionError:
                self.errors += 1
                continue
            now = time.monotonic()
            for r in pending:
                rid = r["id"]
                if rid not in self.due:
                    self.due[rid] = now + self.delay + self.rng.uniform(0, self.jitter)
                elif self.due[rid] <= now and rid not in self.answered_at:
                    t = time.time()
                    try:
                        self.emu.ctl("POST", "/_emu/requests/%s/respond" % rid, {"response_data": "approve"})
                        self.answered_at[rid] = t
                    except AssertionError:
                        self.errors += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit_backlog(ctx, d, loop_id, n):
    c = d.client()
    try:
        for start in range(0, n, 50):
            chunk = []
            for k in range(start, min(n, start + 50)):
                b = ctx.naive_client.request_body(k, ctx.TEXT_BYTES)
                b["loop_id"] = loop_id
                chunk.append(json.dumps({"jsonrpc": "2.0", "id": k, "method": "request.submit",
                                         "params": b}).encode() + b"\n")
            c.send_raw(b"".join(chunk))
            for _ in chunk:
                reply = c.read_message()
                if "error" in reply:
                    raise RuntimeError("submit failed: %s" % reply["error"])
    finally:
        c.close()


def bench(ctx):
    W, L, N = ctx.ECON_WINDOW, ctx.ECON_LIMIT, ctx.ECON_REQUESTS
    # webhook.sweep_interval_s's default (1800 s) on the window's time scale.
    sweep_s = max(1, round(1800 * W / 3600))
    wd = ctx.new_workdir("economy-cb")
    runs = {}
    try:
        for i, (name, webhook, drop) in enumerate(RUNS):
            rd = wd + "/" + name
            ctx.os.makedirs(rd)
            extra = ("--callback-drop", str(drop), "--callback-seed", str(DROP_SEED)) if drop else ()
            emu = ctx.Emulator(rd, window=W, limit=L, extra=extra)
            run = runs[name] = {"emu": emu, "webhook": webhook, "drop": drop}
            cfg = {"budget": {"window_s": W, "limit_per_hour": L, "min_poll_interval_s": 1},
                   "log": {"level": "info"}, "outbox": {"max_per_uid": 100000}}
            if webhook:
                port = free_port()
                cfg["webhook"] = {"listen": "127.0.0.1:%d" % port, "public_url": "http://127.0.0.1:%d/cb" % port,
                                  "sweep_interval_s": sweep_s}
            run["daemon"] = d = ctx.Daemon(rd, emu, config_extra=cfg, key=ctx.KEY)
            d.start()
            run["reviewer"] = Reviewer(emu, ctx.REVIEW_DELAY, ctx.REVIEW_JITTER, 10 + i)
            run["watcher"] = ctx.Watcher(d.socket)
        ctx.log("economy-cb: %d requests each to hitld polling, with callbacks, and with 20 %% of them lost; "
                "window %d s, limit %d, sweep every %d s" % (N, W, L, sweep_s))
        t0 = time.time()
        for run in runs.values():
            run["reviewer"].start()
            run["watcher"].start()
        threads = [threading.Thread(target=submit_backlog, args=(ctx, r["daemon"], r["emu"].loop_id, N), daemon=True)
                   for r in runs.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        last = time.time()
        for run in runs.values():
            run["t_end"] = None
        while time.time() - t0 < ctx.ECON_MAX_S:
            now = time.time()
            for run in runs.values():
                if run["t_end"] is None and len(run["watcher"].visible) >= N:
                    run["t_end"] = now
            if all(r["t_end"] for r in runs.values()):
                break
            time.sleep(0.2)
            if now - last > 20:
                last = now
                ctx.log("economy-cb: t=%3.0f s  %s" % (now - t0, "   ".join(
                    "%s %d/%d" % (k, len(r["watcher"].visible), N) for k, r in runs.items())))
        results = {"window_s": W, "limit": L, "requests": N, "sweep_interval_s": sweep_s,
                   "review_delay_s": [ctx.REVIEW_DELAY, ctx.REVIEW_DELAY + ctx.REVIEW_JITTER],
                   "drop_seed": DROP_SEED, "goals": {"creates_per_window": GOAL_CREATES * L,
                                                     "calls_per_completed": GOAL_CALLS,
                                                     "p50_s": GOAL_P50_S, "p95_s": GOAL_P95_S}}
        for name, run in runs.items():
            t_end = run["t_end"] or time.time()
            run["reviewer"].stop.set()
            run["watcher"].stop.set()
            c = run["daemon"].client()
            try:
                st = c.call("status")
            finally:
                c.close()
            stats = run["emu"].stats()
            created = [ctx.epoch(x["t"]) for x in stats["calls"] if x["method"] == "POST" and x["status"] == 201]
            r = ctx.analyze_calls(stats, W, t0, t_end, max(created) if created else t_end)
            done = len(run["watcher"].visible)
            log_text = run["daemon"].log_text()
            cb = stats["callbacks"]
            r.pop("plot_used", None)
            r.update({
                "webhook": run["webhook"], "callback_drop": run["drop"],
                "completed": done, "duration_s": t_end - t0, "finished": run["t_end"] is not None,
                "calls_per_completed": r["calls_total"] / done if done else None,
                "over_limit_attempts": sum(k["over_limit_attempts"] for k in stats["per_key"].values()),
                "duplicates": stats["duplicates"]["count"],
                "latency": ctx.latency_figures(run["reviewer"].answered_at, run["watcher"].visible),
                "callbacks": {k: cb[k] for k in ("delivered", "dropped", "duplicated", "retried", "failed", "sent")},
                "webhook_status": st.get("webhook"), "polling_status": st.get("polling"),
                "sweeps_started": log_text.count("callbacks arrive: polls drop"),
                "fallbacks_silent": log_text.count("callbacks seem lost"),
                "fallbacks_overdue": log_text.count("passed its deadline with no callback"),
                "reviewer_errors": run["reviewer"].errors,
            })
            results[name] = r
            ctx.log("economy-cb: %-9s %d/%d done in %.0f s, %.1f creates/window (min %s), %.3f calls/done, "
                    "answer->visible p50 %s p95 %s s" % (
                        name, done, N, t_end - t0, r["creates_per_window_mean"] or 0, r["creates_per_window_min"],
                        r["calls_per_completed"] or 0, fmt(r["latency"]["p50_s"]), fmt(r["latency"]["p95_s"])))
        results["loadavg"] = ctx.loadavg()
        return results
    finally:
        for run in runs.values():
            if "reviewer" in run:
                run["reviewer"].stop.set()
            if "watcher" in run:
                run["watcher"].stop.set()
            if "daemon" in run:
                ctx.stop_daemon(run["daemon"])
            run["emu"].stop()
        shutil.rmtree(wd, ignore_errors=True)


def fmt(v, f="%.2f"):
    return "–" if v is None else f % v


def summary_rows(e, w, ok):
    """Rows of REPORT.md's summary table."""
    cb, pl, dr = e["callbacks"], e["polling"], e["drop20"]
    g = e["goals"]
    w("| 1b | creates per window while queued, with callbacks (mean, min) | %s, %s | %s, %s (hitld polling) | %s× | ≥ %s (0.97 × limit) | %s |" % (
        fmt(cb["creates_per_window_mean"], "%.1f"), fmt(cb["creates_per_window_min"], "%d"),
        fmt(pl["creates_per_window_mean"], "%.1f"), fmt(pl["creates_per_window_min"], "%d"),
        fmt(ratio(cb["creates_per_window_mean"], pl["creates_per_window_mean"])), fmt(g["creates_per_window"], "%.0f"),
        ok((cb["creates_per_window_mean"] or 0) >= g["creates_per_window"])))
    w("| 1b | API calls per completed request, with callbacks | %s | %s (hitld polling) | | ≤ %.2f | %s |" % (
        fmt(cb["calls_per_completed"], "%.3f"), fmt(pl["calls_per_completed"], "%.3f"), g["calls_per_completed"],
        ok(cb["calls_per_completed"] is not None and cb["calls_per_completed"] <= g["calls_per_completed"])))
    w("| 1b | answer → visible, with callbacks: median / p95 | %s / %s s | %s / %s s (hitld polling) | | ≤ %.1f / %.1f s | %s |" % (
        fmt(cb["latency"]["p50_s"]), fmt(cb["latency"]["p95_s"]), fmt(pl["latency"]["p50_s"]),
        fmt(pl["latency"]["p95_s"]), g["p50_s"], g["p95_s"],
        ok(cb["latency"]["p50_s"] is not None and cb["latency"]["p50_s"] <= g["p50_s"]
           and cb["latency"]["p95_s"] <= g["p95_s"])))
    w("| 1b | 20 %% of callbacks lost: completed; calls per decision; median / p95 | %d of %d; %s; %s / %s s | | | all complete | %s |" % (
        dr["completed"], e["requests"], fmt(dr["calls_per_completed"], "%.3f"), fmt(dr["latency"]["p50_s"]),
        fmt(dr["latency"]["p95_s"]), ok(dr["completed"] == e["requests"])))


def ratio(a, b):
    return a / b if a is not None and b else None


def section(e, w, ok, measured_on):
    """REPORT.md section 1b."""
    runs = [("polling", "hitld polling"), ("callbacks", "with callbacks"), ("drop20", "20 % of callbacks lost")]
    w("## 1b. Budget economy with callbacks")
    w("")
    w("Measured %s%s, load average after: %s." % (e.get("measured", "?"), measured_on, e["loadavg"]))
    w("")
    w("Section 1's setup (a %d-s window, limit %d, a backlog of **%d** requests handed over at once," % (
        e["window_s"], e["limit"], e["requests"]))
    w("a reviewer answering each %.0f–%.0f s after it appears), three times at once, each hitld" % tuple(e["review_delay_s"]))
    w("with its own emulator: **polling** as today (no receiver), **with callbacks** (`webhook.listen`")
    w("and `public_url` on loopback; the emulator POSTs each outcome the moment the reviewer answers),")
    w("and with the emulator **losing 20 %%** of the callbacks (`--callback-drop 0.2`, seed %d), which" % e["drop_seed"])
    w("only the sweep can find. `webhook.sweep_interval_s` is its default (1800 s) on the window's")
    w("scale: %d s. The reviewer notes the time just before it answers; \"visible\" is when hitld's" % e["sweep_interval_s"])
    w("`watch` stream shows the request final. Latencies are wall-clock at this scale (a callback")
    w("is not slowed by the compression; a poll interval is shortened by it).")
    w("")
    w("| | %s |" % " | ".join(t for _, t in runs))
    w("|---|" + "---|" * len(runs))

    def row(label, fn):
        w("| %s | %s |" % (label, " | ".join(fn(e[k]) for k, _ in runs)))
    row("requests answered and seen (of %d)" % e["requests"], lambda r: "%d%s" % (
        r["completed"], "" if r["finished"] else " (time limit)"))
    row("creates per full window while queued: mean (min–max)", lambda r: "%s (%s–%s)" % (
        fmt(r["creates_per_window_mean"], "%.1f"), fmt(r["creates_per_window_min"], "%d"),
        fmt(r["creates_per_window_max"], "%d")))
    row("polls per full window (mean)", lambda r: fmt(r["polls_per_window_mean"], "%.1f"))
    row("API calls in all / per completed request", lambda r: "%d / %s" % (
        r["calls_total"], fmt(r["calls_per_completed"], "%.3f")))
    row("429 responses / over-limit attempts", lambda r: "%d / %d" % (r["status_429"], r["over_limit_attempts"]))
    row("answer → visible: median / p95 / max", lambda r: "%s / %s / %s s" % (
        fmt(r["latency"]["p50_s"]), fmt(r["latency"]["p95_s"]), fmt(r["latency"]["max_s"])))
    row("callbacks delivered / lost / retried", lambda r: "%d / %d / %d" % (
        r["callbacks"]["delivered"], r["callbacks"]["dropped"], r["callbacks"]["retried"]) if r["webhook"] else "–")
    row("receiver: received / rejected", lambda r: "%d / %d" % (
        r["webhook_status"]["received"], r["webhook_status"]["rejected"]) if r["webhook"] and r["webhook_status"] else "–")
    row("polling at the end (mode, reason); sweeps begun; fallbacks", lambda r: "%s, %s; %d; %d" % (
        (r["polling_status"] or {}).get("mode", "?"), (r["polling_status"] or {}).get("reason", "?"),
        r["sweeps_started"], r["fallbacks_silent"] + r["fallbacks_overdue"]))
    row("duration (until every answer was seen)", lambda r: "%.0f s" % r["duration_s"])
    row("duplicates created", lambda r: "%d" % r["duplicates"])
    w("")
    w("Per window with callbacks (windows fully inside the backlog):")
    w("")
    w("| window | creates | polls | calls | 429 |")
    w("|---|---|---|---|---|")
    for r in e["callbacks"]["windows"]:
        w("| %d | %d | %d | %d | %d |" % (r["window"], r["creates"], r["polls"], r["used"], r["429"]))
    w("")
