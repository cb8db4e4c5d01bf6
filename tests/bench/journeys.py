#!/usr/bin/env python3
"""journeys — a load generator in the style of boulder's: starts whole
renewal journeys (tests/e2e/journey.py) at a configurable rate for a
configurable time, several at once, with a mix of RSA and SM2 keys, on a
throw-away suite; prints journeys/s, per-step p50/p99 latency and error
counts. Reports numbers; never fails on time. Bounded: stops starting new
journeys at the deadline and waits for those under way.

  tests/bench/journeys.py [--rate 0.5] [--duration 60] [--concurrency 4] [--sm2 0.5]
"""
import argparse
import collections
import concurrent.futures
import os
import random
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in ("deploy/scripts", "tests", "tests/integration", "tests/e2e"):
    sys.path.insert(0, os.path.join(ROOT, p))
import suite as suite_mod  # noqa: E402
from journey import Journey  # noqa: E402


def pct(values, q):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=0.5, help="journeys started per second")
    ap.add_argument("--duration", type=float, default=60, help="seconds of starting journeys")
    ap.add_argument("--concurrency", type=int, default=4, help="journeys at once at most")
    ap.add_argument("--sm2", type=float, default=0.5, help="share of holders with SM2 keys")
    args = ap.parse_args()

    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    os.environ.setdefault("CAPLAT_LOG_LEVEL", "warn")
    base = tempfile.mkdtemp(prefix="caplat-bench-")
    os.chmod(base, 0o755)
    suite = suite_mod.Suite(base)  # free ports, a temporary directory
    try:
        suite.start_all()
    except BaseException as e:
        print(f"journeys: suite start-up failed: {e}", file=sys.stderr)
        suite.stop_all()
        suite.destroy()
        sys.exit(1)
    lock = threading.Lock()
    step_times = collections.defaultdict(list)
    results = {"ok": 0, "failed": 0, "errors": collections.Counter()}

    def one(seq):
        rnd = random.Random(seq)
        channel = "wechat" if seq % 2 else "alipay"
        algs = tuple("sm2" if rnd.random() < args.sm2 else "rsa" for _ in range(4))
        j = Journey(suite, channel=channel, invoice="e_normal", algs=algs)
        t_start = time.time()
        try:
            for step in j.steps():
                t0 = time.time()
                step()
                with lock:
                    step_times[step.__name__].append(time.time() - t0)
            with lock:
                results["ok"] += 1
                step_times["journey"].append(time.time() - t_start)
        except Exception as e:  # counted, not fatal: a load run reports
            with lock:
                results["failed"] += 1
                results["errors"][type(e).__name__ + ": " + str(e)[:120]] += 1
            traceback.print_exc()

    started = time.time()
    try:
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            seq = 0
            while time.time() - started < args.duration:
                pool.submit(one, seq)
                seq += 1
                time.sleep(1.0 / args.rate)
        elapsed = time.time() - started
    finally:
        suite.stop_all()
        suite.destroy()
    print(f"\nmachine: {os.cpu_count()} cores; load generator and suite on the same cores")
    print(f"journeys: {results['ok']} ok, {results['failed']} failed in {elapsed:.0f}s "
          f"= {results['ok'] / elapsed:.2f} journeys/s (rate {args.rate}/s, concurrency {args.concurrency})")
    print(f"{'step':28} {'n':>5} {'p50 ms':>9} {'p99 ms':>9}")
    for name, values in step_times.items():
        print(f"{name:28} {len(values):5d} {pct(values, 0.5) * 1000:9.0f} {pct(values, 0.99) * 1000:9.0f}")
    for err, n in results["errors"].most_common(10):
        print(f"error x{n}: {err}")


if __name__ == "__main__":
    main()
