#!/usr/bin/env python3
"""import — the operator's certificate import on this machine: rows/s of a
committed import of N rows (default 10^5) through nginx
(POST /api/v1/cert-imports?format=csv, polled until done), beside a plain
`psql \\copy` of the same file into a bare table of text columns (the
floor: parsing and the merge are what the import adds), taken before and after
the import, and how long after it orders and auth have applied its
certificates. Rows are given by
issuer DN + serial under a trusted test CA (as the old platform's export
has them). Starts a throw-away suite and stops it. Numbers only, never a
failure on time.

  /usr/bin/python3 tests/bench/import.py [ROWS]"""
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "issuance"))
import suite as suite_mod  # noqa: E402
from client import Api, call, wait_until  # noqa: E402
from kit import make_leaf, new_uscc, staff_token  # noqa: E402

HEADER = "issuer,serial,not_after,holder,lock_kind,uscc,key_vendor,key_serial,first_applied_on,platforms"


def make_file(issuer, n):
    uscc = new_uscc()
    base = secrets.token_hex(6).upper()
    issuer_csv = '"' + issuer.replace('"', '""') + '"'
    out = io.StringIO()
    out.write(HEADER + "\n")
    for i in range(n):
        out.write(f"{issuer_csv},{base}{i:08X},2027-06-30,持锁人{i},cost_engineer,{uscc},天威诚信,TW{i:08d},"
                  f"2020-01-15,\"LN_JSGC,SY_GGZY\"\n")
    return out.getvalue().encode()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    os.environ["CAPLAT_LOG_LEVEL"] = "info"  # the import's phases are in its log line
    subprocess.run(["make", "-s", "all"], cwd=ROOT, check=True)
    base = tempfile.mkdtemp(prefix="caplat-bench-import.")
    os.chmod(base, 0o755)
    s = suite_mod.Suite(base, persistent=False)
    try:
        s.start_all()
        wait_until(lambda: s.psql("SELECT 1 FROM issuance.platform_catalogue WHERE code = 'SF_JSXM'"),
                   timeout=30, what="catalogue")
        op = staff_token(s)
        body = make_file(make_leaf(s, "ec", "agent").issuer, n)
        path = os.path.join(base, "import.csv")
        with open(path, "wb") as f:
            f.write(body)
        print(f"machine: {os.cpu_count()} cores; file: {n} rows, {len(body) / 1e6:.1f} MB;"
              f" load average {os.getloadavg()[0]:.2f}")

        s.psql("CREATE TABLE public.bench_copy (issuer text, serial text, not_after text, holder text,"
               " lock_kind text, uscc text, key_vendor text, key_serial text, first_applied_on text,"
               " platforms text)")
        env = dict(os.environ, PGPASSWORD=s.secrets["db_admin"])

        def plain_copy():
            s.psql("TRUNCATE public.bench_copy")
            t = time.monotonic()
            subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(s.ports["postgres"]), "-U", "admin",
                            "-d", "caplat", "-c",
                            f"\\copy public.bench_copy FROM '{path}' WITH (FORMAT csv, HEADER)"],
                           env=env, check=True)
            return time.monotonic() - t

        # The reference before the import (an idle suite) and after it (the
        # other services may still be consuming its events): the ratio is
        # taken against the faster of the two.
        t_copy_before = plain_copy()

        t0 = time.monotonic()
        r = call(s.gateway, "POST", "/api/v1/cert-imports?format=csv", token=op, raw=body, timeout=600,
                 headers={"Content-Type": "text/csv"})
        assert r.status == 202, r
        done = wait_until(lambda: (lambda j: j if j["status"] != "running" else None)(
            Api(s).get(f"/api/v1/cert-imports/{r.json['id']}", token=op).json),
            timeout=900, interval=0.05, what="import done")
        t_import = time.monotonic() - t0
        assert done["status"] == "done" and done["inserted"] == n, done

        t_copy_after = plain_copy()
        t_copy = min(t_copy_before, t_copy_after)
        print(f"import (POST + parse + COPY + merge + commit): {t_import:.2f} s, {n / t_import:.0f} rows/s")
        print(f"psql \\copy into a bare table:               {t_copy:.2f} s, {n / t_copy:.0f} rows/s"
              f" (before the import {n / t_copy_before:.0f} rows/s, after {n / t_copy_after:.0f} rows/s)")
        print(f"ratio: {t_copy / t_import:.2f}x of \\copy; load average {os.getloadavg()[0]:.2f}")
        # Until the other services know every imported certificate (orders'
        # certs read model, auth's notice_certs): the import's events, after
        # its commit. At most 180 s.
        t_end = time.monotonic() + 180
        while time.monotonic() < t_end:
            applied = [int(s.psql(f"SELECT count(*) FROM {t}")[0][0]) for t in ("orders.certs", "auth.notice_certs")]
            if min(applied) >= n:
                break
            time.sleep(0.2)
        print(f"consumers (orders, auth) applied {applied[0]}, {applied[1]} certificates"
              f" {time.monotonic() - t0 - t_import:.1f} s after the import was done")
        with open(os.path.join(s.log_dir, "issuance.log"), encoding="utf-8") as f:
            phases = [line.strip() for line in f if "msg=import_finished" in line]
        if phases:
            print("phases (ms):", " ".join(kv for kv in phases[-1].split() if kv.split("=")[0] in
                                           ("read_ms", "check_ms", "merge_ms")))
    finally:
        s.stop_all()


if __name__ == "__main__":
    main()
