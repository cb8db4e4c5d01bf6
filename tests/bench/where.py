#!/usr/bin/env python3
"""where — where an operation's time goes, from two snapshots around a
benchmark run on a suite started by suite_up.py:

  where.py snap SUITE_DIR OUT.json     CPU seconds of every process of the
                                       suite (with its live children: the
                                       PostgreSQL backends, nginx workers)
                                       and each service's caplat_step_*
                                       histograms from its /metrics
  where.py settle SUITE_DIR             waits until the suite is idle (at
                                       most 30 s), before a snapshot
  where.py diff BEFORE.json AFTER.json OPS [LABEL]
                                       CPU ms per operation by process, and
                                       per step: calls and ms per operation

Reports only; never fails on time."""
import json
import os
import re
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
import suite as suite_mod  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PROCS = ["postgres", "redis", "nats", "nginx", "paysim", *suite_mod.SERVICES]
LINE = re.compile(r'^caplat_step_duration_seconds_(sum|count)\{svc="([^"]*)",step="([^"]*)"\} (\S+)$')


def children():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def cpu_of(pid, kids):
    """utime+stime of pid and its live descendants, in seconds."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            continue
        todo += kids.get(p, [])
    return total / TICK


def snap(base, out):
    s = suite_mod.Suite(base, persistent=True)
    kids = children()
    cpu = {name: cpu_of(s.pid(name), kids) for name in PROCS if s.pid(name)}
    steps = {}
    for svc in suite_mod.SERVICES:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{s.ports[svc]}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            m = LINE.match(line)
            if m:
                steps.setdefault(f"{m[2]}/{m[3]}", {})[m[1]] = float(m[4])
    json.dump({"cpu": cpu, "steps": steps}, open(out, "w"))


def settle(base, max_s=30.0, idle=0.15):
    """Waits (at most max_s) until the suite's processes used less than idle
    CPU seconds over one second: the set-up's events have been handled."""
    import time
    s = suite_mod.Suite(base, persistent=True)
    deadline = time.time() + max_s

    def total():
        kids = children()
        return sum(cpu_of(s.pid(n), kids) for n in PROCS if s.pid(n))
    while time.time() < deadline:
        a = total()
        time.sleep(1.0)
        if total() - a < idle:
            return


def diff(a_path, b_path, ops, label):
    a, b = json.load(open(a_path)), json.load(open(b_path))
    ops = max(1, int(ops))
    print(f"-- where a {label}'s time goes ({ops} of them; CPU of every process, any cause, while they ran)")
    total = 0.0
    parts = []
    for name, v in b["cpu"].items():
        d = (v - a["cpu"].get(name, 0.0)) * 1000 / ops
        total += d
        if d >= 0.005:
            parts.append(f"{name} {d:.2f}")
    print(f"   server CPU per {label}: {total:.2f} ms ({', '.join(parts)})")
    print(f"   {'service/step':34} {'calls/op':>9} {'ms/op':>8} {'mean ms':>8}")
    for key in sorted(b["steps"]):
        after, before = b["steps"][key], a["steps"].get(key, {})
        n = after.get("count", 0) - before.get("count", 0)
        t = after.get("sum", 0) - before.get("sum", 0)
        if n > 0:
            print(f"   {key:34} {n / ops:9.2f} {t * 1000 / ops:8.3f} {t * 1000 / n:8.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "snap":
        snap(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "settle":
        settle(sys.argv[2])
    else:
        diff(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else "operation")
