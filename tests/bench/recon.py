#!/usr/bin/env python3
"""recon — reconciliation at finance's scale (issue 18 part 8): an Alipay
业务明细 bill (GBK) of N lines (default 10^6) matching N payments of the
day, bulk-loaded into payments (one INSERT … SELECT generate_series), with
a few differences planted (amount mismatches, lines we do not know, local
payments the bill lacks). Reconciled, each time timed with the payments
process's memory sampled meanwhile (RSS, and its peak VmHWM, reset before
each): fetched by the service from the payment simulator's bill download
(POST …/fetch, the download streamed through the parser and COPY), then
uploaded through nginx (POST, the body held once by libevent 2.1). Beside
it, the same lines as a plain CSV: `psql \\copy` into a bare table + one
join with the payments (the floor: parsing, staging, the item table and the
audit are what the service adds). RECON_RUNS rounds (default 5) of fetch,
upload and reference one after the other, each round's ratios and their
median (one round on a shared machine is noise). Starts a throw-away suite
and stops it. Numbers only, never a failure on time. RECON_EXPLAIN=1
also stages the bill once more (psql \\copy, rolled back) and prints the
plan and time of every statement of recon_run_fast (auto_explain);
RECON_PERF=1 profiles the payments process during the fetch (perf record
-g, the top of perf report --no-children).

  /usr/bin/python3 tests/bench/recon.py [LINES]"""
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import suite as suite_mod  # noqa: E402
from client import Api, call  # noqa: E402

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
          "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,"
          "券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")
PLANTED = 1000  # of each kind of difference


def amount(i):
    return 100 + i % 99900


def yuan(fen):
    return f"{fen // 100}.{fen % 100:02d}"


def write_bill(path, plain, n, day, staged=None):
    """The Alipay bill (GBK) and the same lines as a plain CSV for psql.
    Lines 0..n-1 are our payments B<i>; the first PLANTED have another
    amount; PLANTED foreign lines X<i> replace the last PLANTED (so those
    payments are missing from the bill)."""
    ts = f"{day} 10:00:00"
    st = open(staged, "w") if staged else None
    with open(path, "wb") as f, open(plain, "w") as g:
        f.write("\r\n".join(["#支付宝业务明细查询", "#账号：[20881011179556110156]",
                             "#-----------------------------------------业务明细列表------", HEADER])
                .encode("gbk") + b"\r\n")
        rows = []
        for i in range(n):
            if i >= n - PLANTED:
                out_no, trade_no, fen = f"X{i:09d}", f"2026120699{i:010d}", 1000
            else:
                out_no, trade_no, fen = f"B{i:09d}", f"2026120622{i:010d}", amount(i) + (1 if i < PLANTED else 0)
            y = yuan(fen)
            rows.append(f"{trade_no}\t,{out_no}\t,交易\t,证书续期\t,{ts}\t,{ts}\t,\t,\t,\t,\t,b@example.com\t,"
                        f"{y}\t,{y}\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.06\t,0.00\t,\t")
            g.write(f"payment,{out_no},{trade_no},{fen}\n")
            if st:
                st.write(f"{i + 1}\tf\t{out_no}\t{trade_no}\t{fen}\tf\n")
            if len(rows) == 10000:
                f.write(("\r\n".join(rows) + "\r\n").encode("gbk"))
                rows = []
        f.write(("\r\n".join(rows + ["#-----------------------------------------业务明细列表结束------",
                                     f"#交易合计：{n}笔"]) + "\r\n").encode("gbk"))
    if st:
        st.close()


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def explain(s, psql, env, staged, day, n):
    """The plans of recon_run_fast's statements, as auto_explain logs them."""
    pglog = os.path.join(s.log_dir, "postgres.log")
    start = os.path.getsize(pglog)
    script = ("LOAD 'auto_explain';\nSET auto_explain.log_min_duration = 0;\n"
              "SET auto_explain.log_analyze = on;\nSET auto_explain.log_buffers = on;\n"
              "SET auto_explain.log_nested_statements = on;\nSET auto_explain.log_timing = on;\n"
              "SET search_path = payments, public;\n\\timing on\nBEGIN;\nTRUNCATE payments.recon_bill;\n"
              f"\\copy payments.recon_bill FROM '{staged}'\n"
              "SELECT * FROM payments.recon_run_fast(gen_random_uuid(), 'alipay', "
              f"'{day}'::date, 'x', 'bench', {n}, 0, 1000, '{{}}'::jsonb);\nROLLBACK;\n")
    out = subprocess.run(psql + ["-f", "-"], input=script, env=env,
                         capture_output=True, text=True)
    print("EXPLAIN (auto_explain, rolled back):", out.stdout, out.stderr)
    with open(pglog, errors="replace") as f:
        f.seek(start)
        print(f.read()[-20000:])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    subprocess.run(["make", "-s", "all"], cwd=ROOT, check=True)
    base = tempfile.mkdtemp(prefix="caplat-bench-recon.")
    os.chmod(base, 0o755)
    s = suite_mod.Suite(base, persistent=False)
    try:
        s.start_all()
        day = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
        t0 = time.monotonic()
        s.psql("INSERT INTO payments.orders (id, number, account_id, total_fen, expires_at, status)"
               " VALUES ('00000000-0000-4000-8000-000000000001', 'BENCH', gen_random_uuid(), 1,"
               " now() + interval '1 day', 'paid')")
        s.psql("INSERT INTO payments.payments (id, order_id, account_id, channel, out_trade_no, amount_fen,"
               " status, invoice_type, provider_trade_no, paid_at)"
               " SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'alipay',"
               " 'B' || lpad(i::text, 9, '0'), 100 + i % 99900, 'succeeded', 'none',"
               " '2026120622' || lpad(i::text, 10, '0'),"
               f" '{day} 10:00:00+08'::timestamptz FROM generate_series(0, {n - 1}) i")
        s.psql("ANALYZE payments.payments")
        t_load = time.monotonic() - t0
        path, plain = os.path.join(base, "bill.csv"), os.path.join(base, "plain.csv")
        staged = os.path.join(base, "staged.tsv") if os.environ.get("RECON_EXPLAIN") else None
        write_bill(path, plain, n, day, staged)
        os.chmod(path, 0o644)
        size = os.path.getsize(path)
        fin = Api(s).post("/api/v1/auth/staff/login", {"username": "finance",
                                                        "password": s.secrets["staff_finance"]}).json["token"]
        pid = s.pid("payments")
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; bill: {n} lines, "
              f"{size / 1e6:.1f} MB (GBK); {n} payments bulk-loaded in {t_load:.1f}s")

        log = os.path.join(s.log_dir, "payments.log")

        def reconcile(how):
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS
            hwm0, rss0 = rss_kb(pid, "VmHWM"), rss_kb(pid, "VmRSS")
            peak = [rss0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(pid, "VmRSS"))
                    time.sleep(0.05)
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            body = None
            if how == "upload":
                with open(path, "rb") as f:
                    body = f.read()
            prof = None
            if how == "fetch" and os.environ.get("RECON_PERF"):
                prof = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o",
                                         os.path.join(base, "perf.data")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            t0 = time.monotonic()
            if how == "upload":
                r = call(s.gateway, "POST", f"/api/v1/finance/bills/alipay/{day}", raw=body, token=fin,
                         timeout=1800, headers={"Content-Type": "text/csv"})
            else:
                r = call(s.gateway, "POST", f"/api/v1/finance/bills/alipay/{day}/fetch", token=fin, timeout=1800)
            t = time.monotonic() - t0
            if prof is not None:
                prof.send_signal(2)
                prof.wait()
                rep = subprocess.run(["perf", "report", "-i", os.path.join(base, "perf.data"), "--no-children",
                                      "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1"],
                                     capture_output=True, text=True).stdout
                print("perf (payments, fetch):\n" + "\n".join(ln for ln in rep.splitlines()
                                                               if ln.strip() and not ln.startswith("#"))[:4000])
            stop.set()
            th.join()
            del body
            if r.status != 201:
                print("".join(ln for ln in open(log, errors="replace")
                              if "lvl=warn" in ln or "lvl=error" in ln)[-3000:])
            assert r.status == 201, r
            rep = r.json
            print(f"{how}: {t:.2f}s through nginx — matched {rep['matched']}, amount_mismatch "
                  f"{rep['amount_mismatch']}, missing_local {rep['missing_local']}, missing_remote "
                  f"{rep['missing_remote']}, items_total {rep['items_total']} ({len(rep['items'])} inline)")
            assert rep["amount_mismatch"] == PLANTED and rep["missing_local"] == PLANTED
            assert rep["missing_remote"] == PLANTED and rep["matched"] == n - 2 * PLANTED
            phases = [ln for ln in open(log, errors="replace") if "msg=reconciled" in ln][-1:]
            if phases:
                kv = dict(f.split("=", 1) for f in phases[0].split() if "=" in f)
                print(f"  in the service: {'download + ' if how == 'fetch' else ''}hash + stream parse + COPY "
                      f"{int(kv['stream_ms']) / 1000:.2f}s, set-based compare + items + audit "
                      f"{int(kv['compare_ms']) / 1000:.2f}s")
            print(f"  payments memory: RSS {rss0 / 1024:.0f} MB before, {peak[0] / 1024:.0f} MB peak sampled "
                  f"(VmHWM {hwm0 / 1024:.0f} → {rss_kb(pid, 'VmHWM') / 1024:.0f} MB)" +
                  (f"; the body ({size / 1e6:.0f} MB) is held once, by libevent (2.1 reads a request body "
                   "whole before the handler runs)" if how == "upload" else
                   "; the download passes through a pipe of at most 4 MiB, never whole"))
            return t, rep

        r = call(f"http://127.0.0.1:{s.ports['paysim']}", "POST", "/sim/bill-file",
                 body={"channel": "alipay", "date": day, "path": path})
        assert r.status == 200, r
        env = dict(os.environ, PGPASSWORD=s.secrets["db_admin"])
        psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(s.ports["postgres"]), "-U", "admin",
                "-d", "caplat"]

        def reference():
            s.psql("DROP TABLE IF EXISTS public.bench_bill")
            s.psql("CREATE UNLOGGED TABLE public.bench_bill (kind text, out_no text, provider_no text,"
                   " amount_fen bigint)")
            t0 = time.monotonic()
            subprocess.run(psql + ["-c", f"\\copy public.bench_bill FROM '{plain}' WITH (FORMAT csv)"],
                           env=env, check=True)
            t1 = time.monotonic()
            out = subprocess.run(psql + ["-At", "-c",
                                         "SELECT count(*) FILTER (WHERE p.amount_fen = b.amount_fen),"
                                         " count(*) FILTER (WHERE p.amount_fen <> b.amount_fen),"
                                         " count(*) FILTER (WHERE p.id IS NULL), count(*) FILTER (WHERE b.out_no IS NULL)"
                                         " FROM public.bench_bill b FULL JOIN (SELECT * FROM payments.payments"
                                         " WHERE channel = 'alipay') p ON p.out_trade_no = b.out_no"],
                                 env=env, check=True, capture_output=True, text=True).stdout.strip()
            t2 = time.monotonic()
            print(f"reference: psql \\copy of the same {n} lines + one FULL JOIN: {t2 - t0:.2f}s "
                  f"(\\copy {t1 - t0:.2f}s, join {t2 - t1:.2f}s; {out})")
            return t2 - t0

        # RECON_RUNS rounds (default 5) of fetch, upload and the reference one
        # after the other: on a shared machine one round is noise
        runs = int(os.environ.get("RECON_RUNS", "5"))
        ts = {"fetch": [], "upload": [], "reference": []}
        for k in range(runs):
            print(f"-- round {k + 1} (load {os.getloadavg()[0]:.1f})")
            ts["fetch"].append(reconcile("fetch")[0])
            t, rep = reconcile("upload")
            ts["upload"].append(t)
            if k == 0:
                t0 = time.monotonic()
                page = Api(s).get(f"/api/v1/finance/reconciliations/{rep['id']}/items?format=csv", token=fin)
                csv_lines = len(page.raw.split(b"\r\n")) - 2
                print(f"CSV of the differences: {csv_lines} lines in {time.monotonic() - t0:.2f}s")
            ts["reference"].append(reference())
            print(f"   ratio fetch {ts['fetch'][-1] / ts['reference'][-1]:.2f}×, upload "
                  f"{ts['upload'][-1] / ts['reference'][-1]:.2f}× (load {os.getloadavg()[0]:.1f})")
        def median(v):
            return sorted(v)[len(v) // 2]
        med = {k: median(v) for k, v in ts.items()}
        rf = [f / r for f, r in zip(ts["fetch"], ts["reference"])]
        ru = [u / r for u, r in zip(ts["upload"], ts["reference"])]
        print(f"median of {runs} rounds: fetch {med['fetch']:.2f}s, upload {med['upload']:.2f}s, reference "
              f"{med['reference']:.2f}s; ratio in the same round: fetch {median(rf):.2f}× (best {min(rf):.2f}×), "
              f"upload {median(ru):.2f}× (best {min(ru):.2f}×) (load {os.getloadavg()[0]:.1f})")
        if os.environ.get("RECON_EXPLAIN"):
            explain(s, psql, env, staged, day, n)
    finally:
        s.stop_all()
        s.destroy()


if __name__ == "__main__":
    main()
