#!/usr/bin/env python3
"""cpu_groups — the CPU ticks of every process of a throw-away suite, by
group (tests/bench/audit.sh). `snap STATE PG_PORT` prints one JSON object
{group: ticks}: each process under STATE/run/*.pid and its descendants,
PostgreSQL backends named by their role and application_name
(pg:<role>:<pool|bus-…>), its other processes by kind, and the exited
children (cutime/cstime of the root processes) as <name>:exited. `diff A B N`
prints each group's microseconds per request between two snapshots of N
requests, largest first, as "group us" lines. `pids STATE` prints the pids
of the suite's processes, comma-separated (for perf report --pid)."""
import glob
import json
import os
import subprocess
import sys


def children(pid):
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def stat(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12]), int(f[13]) + int(f[14])
    except OSError:
        return 0, 0


def backends(port):
    out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", "-h", "127.0.0.1", "-p", port, "-U", "admin",
                          "-d", "caplat", "-c", "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''),"
                          " backend_type FROM pg_stat_activity"], capture_output=True, text=True).stdout
    acts = {}
    for line in out.splitlines():
        pid, user, app, kind = line.split("|")
        if kind != "client backend":
            acts[int(pid)] = "pg:" + kind
        elif user == "admin":
            acts[int(pid)] = "pg:admin (the benchmark's own queries)"
        else:
            acts[int(pid)] = f"pg:{user}:" + (app.replace(f"caplat-{user}-", "") if app else "pool")
    return acts


def snap(state, port):
    acts = backends(port)
    groups = {}
    for f in glob.glob(os.path.join(state, "run", "*.pid")):
        name = os.path.basename(f)[:-4]
        root = int(open(f).read().strip() or 0)
        todo = [root]
        while todo:
            pid = todo.pop()
            todo += children(pid)
            own, dead = stat(pid)
            label = acts.get(pid) or ("pg:other" if name == "postgres" and pid != root else name)
            groups[label] = groups.get(label, 0) + own
            if pid == root:
                groups[name + ":exited"] = groups.get(name + ":exited", 0) + dead
    print(json.dumps(groups))


def diff(a, b, n):
    a, b = json.load(open(a)), json.load(open(b))
    hz = os.sysconf("SC_CLK_TCK")
    for k, v in sorted(((k, (b.get(k, 0) - a.get(k, 0)) * 1e6 / hz / n) for k in set(a) | set(b)),
                       key=lambda kv: -kv[1]):
        print(f"{k} {v:.1f}")


def pids(state):
    out = []
    for f in glob.glob(os.path.join(state, "run", "*.pid")):
        todo = [int(open(f).read().strip() or 0)]
        while todo:
            pid = todo.pop()
            todo += children(pid)
            out.append(str(pid))
    print(",".join(out))


if __name__ == "__main__":
    if sys.argv[1] == "snap":
        snap(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "pids":
        pids(sys.argv[2])
    else:
        diff(sys.argv[2], sys.argv[3], int(sys.argv[4]))
