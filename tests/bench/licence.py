#!/usr/bin/env python3
"""licence — the business-licence recognition benchmark (issue 20). Reports,
never fails on time.

1. Accuracy and speed: draws COUNT clean and COUNT degraded licences
   (tests/tools/licence_gen.py; degraded = rotated / blurred / JPEG / scan
   noise / all at once, in turn) with known fields, runs the service's own
   recogniser (`caplat-enterprise ocr`, OMP_THREAD_LIMIT=1, pinned to one
   core with taskset) and prints per-field accuracy, how often each field was
   unreadable, USCCs wrong while reported readable (must be 0: the check
   character), and seconds per licence (wall and CPU; the engine's one-time
   load apart). Same-run reference: a fixed CPU job (SHA-256 of 64 MiB in
   Python) timed before and after, and the load average, because the machine
   may be shared.
2. API latency beside recognition (--api): starts a throw-away suite, makes
   an enterprise admin, measures GET /api/v1/enterprise with wrk (p50/p99)
   alone (the same-run reference), then again while the recognition thread
   works through uploaded licences, and says how many it finished meanwhile.

Usage: tests/bench/licence.py [--count N] [--api] [--seconds S] [--keep DIR]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import licence_gen  # noqa: E402

BIN = os.path.join(ROOT, "build", "bin", "caplat-enterprise")
FIELDS = ["name", "uscc", "type", "legal_rep", "registered_capital", "founded", "domicile", "term"]
DEGRADED = ["rotated", "blurred", "jpeg", "noise", "degraded"]
MIN_CONFIDENCE = 50  # licence.h LIC_MIN_CONFIDENCE


def norm(s):
    s = unicodedata.normalize("NFKC", s)
    return re.sub(r"\s+", "", s).upper()


def iso(d):
    m = re.fullmatch(r"(\d{4})年(\d{2})月(\d{2})日", d)
    return f"{m[1]}-{m[2]}-{m[3]}"


def truth_of(t):
    start, _, end = t["term"].partition("至")
    return {"name": norm(t["name"]), "uscc": t["uscc"], "type": norm(t["type"]),
            "legal_rep": norm(t["legal_rep"]), "registered_capital": t["capital_fen"],
            "founded": iso(t["founded"]), "domicile": norm(t["domicile"]),
            "term": iso(start) + "/" + ("长期" if end == "长期" else iso(end))}


def reference_s():
    """A fixed CPU job: SHA-256 over 64 MiB, in this process."""
    buf = b"x" * (1 << 20)
    t = time.perf_counter()
    h = hashlib.sha256()
    for _ in range(64):
        h.update(buf)
    return time.perf_counter() - t


def generate(out, count):
    sets = {"clean": [], "degraded": []}
    for i in range(count):
        for kind in ("clean", "degraded"):
            variant = "clean" if kind == "clean" else DEGRADED[i % len(DEGRADED)]
            data, ctype, fields = licence_gen.generate(700000 + i * 2 + (kind == "degraded"), variant)
            path = os.path.join(out, f"{kind}-{i:04d}.{'png' if ctype == 'image/png' else 'jpg'}")
            with open(path, "wb") as fh:
                fh.write(data)
            sets[kind].append((path, variant, truth_of(fields)))
    return sets


def recognise(paths):
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    cmd = ["taskset", "-c", "0", BIN, "ocr"] + paths
    if shutil.which("taskset") is None:
        cmd = cmd[3:]
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE).stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def score(items, results):
    right = {f: 0 for f in FIELDS}
    unread = {f: 0 for f in FIELDS}
    wrong = {f: 0 for f in FIELDS}
    uscc_wrong = 0
    failed = 0
    for (path, variant, truth), r in zip(items, results):
        if r["reason"] is not None:
            failed += 1
        for f in FIELDS:
            got = r["fields"].get(f)
            if got is None or got["normalised"] is None or \
                    (f != "uscc" and got["confidence"] < MIN_CONFIDENCE):
                unread[f] += 1
                continue
            if f == "uscc" and got["normalised"] != truth[f]:
                uscc_wrong += 1
            value = got["normalised"]
            if isinstance(value, str) and f not in ("uscc", "founded", "term"):
                value = norm(value)
            if value == truth[f]:
                right[f] += 1
            else:
                wrong[f] += 1
    return right, unread, uscc_wrong, failed, wrong


def report(kind, items, results):
    n = len(items)
    right, unread, uscc_wrong, failed, wrong = score(items, results)
    total = sum(right.values())
    wall = [r["seconds"] for r in results[1:]] or [results[0]["seconds"]]
    cpu = [r["cpu_seconds"] for r in results[1:]] or [results[0]["cpu_seconds"]]
    print(f"\n== {kind}: {n} licences" + (f" ({', '.join(DEGRADED)} in turn)" if kind == "degraded" else ""))
    print(f"  fields right: {total}/{n * len(FIELDS)} = {100.0 * total / (n * len(FIELDS)):.2f}%"
          f"   (a field unread or under confidence {MIN_CONFIDENCE} counts as wrong)")
    for f in FIELDS:
        print(f"    {f:<20} right {100.0 * right[f] / n:6.2f}%   unreadable {100.0 * unread[f] / n:5.1f}%"
              f"   read wrong (a false red) {100.0 * wrong[f] / n:5.1f}%")
    print(f"  USCC wrong while reported readable: {uscc_wrong}")
    print(f"  recognitions failed: {failed}")
    wall.sort()
    cpu.sort()
    print(f"  seconds per licence, one core: CPU mean {sum(cpu) / len(cpu):.2f} median {cpu[len(cpu) // 2]:.2f}"
          f" max {cpu[-1]:.2f}; wall mean {sum(wall) / len(wall):.2f} median {wall[len(wall) // 2]:.2f}"
          f" (engine load in the first: {results[0]['cpu_seconds']:.2f} s CPU)")
    if kind == "degraded":
        for v in DEGRADED:
            idx = [i for i, it in enumerate(items) if it[1] == v]
            r2, _, _, _, _ = score([items[i] for i in idx], [results[i] for i in idx])
            print(f"    {v:<10} {100.0 * sum(r2.values()) / (len(idx) * len(FIELDS)):6.2f}% of {len(idx)}")


def wrk(url, token, seconds):
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", url],
                         check=True, stdout=subprocess.PIPE).stdout.decode()
    p50 = re.search(r"50%\s+(\S+)", out)[1]
    p99 = re.search(r"99%\s+(\S+)", out)[1]
    rps = re.search(r"Requests/sec:\s+(\S+)", out)[1]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return f"p50 {p50}, p99 {p99}, {rps} req/s" + (f", {non2xx[1]} non-2xx" if non2xx else "")


def api_bench(seconds, nlic):
    sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import suite as suite_mod
    from client import call, join_enterprise, new_phone, sms_code, Api
    if shutil.which("wrk") is None:
        print("wrk is not installed: API part skipped")
        return
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    os.environ["CAPLAT_LOG_LEVEL"] = "warn"
    base = tempfile.mkdtemp(prefix="caplat-licence-bench.")
    os.chmod(base, 0o755)
    s = suite_mod.Suite(base, persistent=True, fixed_ports=False)
    try:
        s.start_all()
        api = Api(s)
        phone = new_phone()
        api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
        token = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(s, phone, "register"),
                                                   "password": "abc12345"}).json["token"]
        uscc = licence_gen.uscc(__import__("random").Random(5), "210102")
        join_enterprise(s, token, uscc, "admin", "沈阳华信科技有限公司")
        url = s.gateway + "/api/v1/enterprise"
        assert api.get("/api/v1/enterprise", token=token).status == 200
        print(f"\n== GET /api/v1/enterprise through nginx, wrk 1 thread 8 connections {seconds} s")
        print(f"  alone (reference):        {wrk(url, token, seconds)}")
        images = [licence_gen.generate(900000 + i, DEGRADED[i % len(DEGRADED)] if i % 2 else "clean")[:2]
                  for i in range(nlic)]
        for data, ctype in images:
            r = call(s.gateway, "POST", "/api/v1/files?purpose=business_license", raw=data, token=token,
                     headers={"Content-Type": ctype}, timeout=30)
            assert r.status == 201, r

        def done():
            return int(s.psql("SELECT count(*) FROM enterprise.licence_ocr WHERE status IN ('done', 'failed')")[0][0])
        before = done()
        t0 = time.time()
        figure = wrk(url, token, seconds)
        finished = done() - before
        print(f"  with recognition running: {figure}"
              f"   ({finished} of {nlic} licences recognised during the {time.time() - t0:.0f} s)")
        print(f"  recognition: {s.psql('SELECT round(avg(elapsed_ms)) FROM enterprise.licence_ocr')[0][0]} ms"
              " wall per licence in the service (1 thread, nice 10)")
    finally:
        s.stop_all()
        s.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=100, help="clean and degraded licences each (default 100: 200 in all)")
    ap.add_argument("--api", action="store_true", help="also measure the API beside recognition")
    ap.add_argument("--api-only", action="store_true")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--keep", help="keep the images in this directory")
    a = ap.parse_args()
    subprocess.run(["make", "-s", "-C", ROOT, "all"], check=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start"
          " (shared machine: figures are noisy)")
    if not a.api_only:
        out = a.keep or tempfile.mkdtemp(prefix="caplat-licences.")
        os.makedirs(out, exist_ok=True)
        ref0 = reference_s()
        t = time.time()
        sets = generate(out, a.count)
        print(f"generated {2 * a.count} licences in {time.time() - t:.0f} s into {out}")
        results = {k: recognise([p for p, _, _ in v]) for k, v in sets.items()}
        ref1 = reference_s()
        print(f"reference: SHA-256 of 64 MiB took {ref0:.3f} s before, {ref1:.3f} s after;"
              f" load average now {os.getloadavg()[0]:.2f}")
        for kind in ("clean", "degraded"):
            report(kind, sets[kind], results[kind])
        if not a.keep:
            shutil.rmtree(out)
    if a.api or a.api_only:
        api_bench(a.seconds, 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
