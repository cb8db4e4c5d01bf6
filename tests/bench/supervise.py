#!/usr/bin/env python3
"""supervise — what a crash costs under light load, on a throw-away suite
(free ports, a temporary directory, stopped and removed at the end, also on
failure) with the supervisor `make run` starts:

  1. kill -9 of each service in turn while client threads call every
     service through nginx for ~20 s: time from the kill until the
     restarted service answers /readyz, and failed requests per service;
  2. kill -9 of Redis under the same load (the supervisor restarts it from
     its append-only file): sessions lost (of N logged in more than a second
     before), time until sessions answer again, failed requests.

Reports numbers; never fails on time.  tests/bench/supervise.py [--threads 4] [--sessions 200]
"""
import argparse
import collections
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in ("deploy/scripts", "tests"):
    sys.path.insert(0, os.path.join(ROOT, p))
import suite as suite_mod  # noqa: E402
from client import Api, call, new_phone, sms_code  # noqa: E402

PATHS = {"auth": "/api/v1/auth/me", "enterprise": "/api/v1/enterprise", "orders": "/api/v1/platforms",
         "payments": "/api/v1/payments", "issuance": "/api/v1/certs"}


def get(url, token):
    """The status of a GET (no contract check: a load loop counts answers)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def ready(s, svc):
    try:
        return call(s.service_url(svc), "GET", "/readyz", timeout=1).status == 200
    except OSError:
        return False


class Load:
    """Threads calling each service's path through nginx in a loop; counts
    answers per (service, status) in the current window."""

    def __init__(self, s, token, threads):
        self.s, self.token, self.stop = s, token, threading.Event()
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(threads)]

    def loop(self, i):
        svcs = [svc for svc in PATHS if svc in self.s.ports]
        n = i
        while not self.stop.is_set():
            svc = svcs[n % len(svcs)]
            n += 1
            try:
                st = get(self.s.gateway + PATHS[svc], self.token)
            except OSError:
                st = "conn"
            with self.lock:
                self.counts[(svc, st)] += 1
            time.sleep(0.01)

    def window(self):
        with self.lock:
            c, self.counts = self.counts, collections.Counter()
        return c


def failed(counts, svc=None):
    return sum(n for (s, st), n in counts.items()
               if (svc is None or s == svc) and (st == "conn" or (isinstance(st, int) and st >= 500)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--sessions", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("CAPLAT_LOG_LEVEL", "warn")
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    base = tempfile.mkdtemp(prefix="caplat-bench-")
    os.chmod(base, 0o755)
    s = suite_mod.Suite(base)
    load = None
    try:
        s.start_all()
        s.start_supervisor()
        api = Api(s)
        phone = new_phone()
        api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
        token = api.post("/api/v1/auth/register", {"phone": phone, "password": "abc12345",
                                                   "sms_code": sms_code(s, phone, "register")}).json["token"]
        load = Load(s, token, args.threads)
        for t in load.threads:
            t.start()
        print(f"machine: {os.cpu_count()} cores; {args.threads} client threads through nginx, same cores")
        print("\n== kill -9 of each service under load")
        print(f"{'service':12} {'back after':>10} {'requests':>9} {'failed':>7}")
        time.sleep(1)
        load.window()
        t_all = time.time()
        for svc in [x for x in PATHS if x in s.ports]:
            old = s.pid(svc)
            os.kill(old, signal.SIGKILL)
            t0 = time.time()
            while not (s.pid(svc) not in (None, old) and ready(s, svc)) and time.time() - t0 < 30:
                time.sleep(0.01)
            took = time.time() - t0
            time.sleep(max(0.0, 4 - took))  # ~4 s per service: ~20 s in all
            c = load.window()
            print(f"{svc:12} {took:9.2f}s {sum(v for (x, _), v in c.items() if x == svc):9d} "
                  f"{failed(c, svc):7d}")
        print(f"load ran {time.time() - t_all:.0f}s")

        print(f"\n== kill -9 of Redis under load, {args.sessions} sessions")
        tokens = []
        for _ in range(args.sessions):
            r = api.post("/api/v1/auth/login", {"phone": phone, "password": "abc12345"})
            if r.status == 200:
                tokens.append(r.json["token"])
        time.sleep(1.5)  # appendfsync everysec
        load.window()
        old = s.pid("redis")
        os.kill(old, signal.SIGKILL)
        t0 = time.time()
        while time.time() - t0 < 30:
            try:
                if get(s.gateway + "/api/v1/auth/me", tokens[0]) == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        took = time.time() - t0
        time.sleep(2)
        c = load.window()
        lost = sum(1 for t in tokens if api.get("/api/v1/auth/me", token=t).status == 401)
        print(f"sessions: {len(tokens)} before, {lost} lost; sessions answer again after {took:.2f}s; "
              f"{sum(c.values())} requests in the window, {failed(c)} failed (503 while Redis was down)")
        restarts = {name: r for name, _, _, r, _ in s.status()}
        print(f"supervisor restarts: {restarts}")
    except suite_mod.SuiteError as e:
        print(f"supervise: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if load:
            load.stop.set()
        s.stop_all()
        s.destroy()


if __name__ == "__main__":
    main()
