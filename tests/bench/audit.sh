#!/usr/bin/env bash
# audit.sh — what the audit trail costs (issue 12: "the cost the audit adds
# per audited request, goal under 5% of that request's time, and the export
# rate"), on a throw-away suite. Reports, never fails on time.
# Usage: tests/bench/audit.sh [SECONDS per round, 5] [ROWS for the chain, 200000]
#   ROUNDS=4 CONC=8: alternating rounds per figure, the moderate concurrency;
#   ROUTES="read price decision" the routes of part 1; CHAIN=0 skips
#   part 2. Run it under the shared lock:
#   flock /tmp/caplat-bench.lock tests/bench/audit.sh
# Part 1 prints, for each audited route (ROUTES: an operator's full read,
# an operator's price change, finance's reconciliation decision) with the
# audit ON and OFF in alternating rounds of the same run: the request's
# latency (mean and p50, at 1 and CONC connections through nginx) and the
# CPU per request of every process of the suite (PostgreSQL included), each
# with the ratio to the 5% goal, then where the added CPU goes (by process). Part 2: the chain's
# append rate and the export's rows/s beside PostgreSQL's own COPY of the
# same rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-5}
ROWS=${2:-200000}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
# Free ports, not the fixed ones of `make run` (another suite may hold them).
$PY -c 'import sys; sys.path.insert(0, "deploy/scripts"); import suite; suite.Suite(sys.argv[1])' "$STATE"
$PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null' EXIT
export PGPASSWORD=$PG_ADMIN_PW
PSQL=(psql -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U admin -d caplat)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------
# 1. The cost per audited request, measured on real audited routes through
#    nginx, each with the audit ON and OFF:
#    read      GET /api/v1/review/records/{id} by an operator: a full read of
#              an enterprise record, audited as enterprise.record.read_full
#              (the entry is written by an INSERT … SELECT in the read's own
#              batch, so the read commits durably: the worst case, a read
#              that writes nothing else);
#    price     POST /api/v1/platforms/{code}/prices by an operator: a new
#              price version, audited as price.set by outbox_emit() in the
#              same statement (orders);
#    decision  POST /api/v1/finance/reconciliations/{id}/items/{seq}/decision
#              by finance, over 40 differences in turn: an UPDATE through
#              recon_decide(), audited as reconciliation.decided by
#              audit_add() in the same batch (payments).
#    Each entry's outbox row is held, flushed with others as one
#    <svc>.audit.batch event, relayed through JetStream and chained by auth.
#    Audit OFF, for this benchmark only: a BEFORE INSERT trigger on the
#    service's outbox (bench_audit_off, dropped at the end) discards the
#    *.audit.recorded row, so no entry is written, held, flushed, relayed or
#    chained; the action itself is unchanged (the read then writes nothing,
#    so its transaction has no WAL flush; a write still commits its own
#    change durably). What OFF keeps of the audit: the entry's JSON built in
#    the service and sent with the statement.
#    Rounds alternate OFF, ON (ROUNDS each, DUR s each, at 1 and at CONC
#    connections); each round: (a) wrk's mean latency and p50, (b) the CPU
#    ticks of EVERY process of the suite (PostgreSQL with all its backends
#    and exited children, NATS, Redis, nginx, the five services; the
#    benchmark's own psql polls included) from the round's start until every
#    entry of the round is in the chain, divided by the round's requests
#    (tests/bench/cpu_groups.py). Medians of the rounds are kept.
#    ROUTES="read price decision" picks the routes (none: part 2 only).
#    HELD=1 adds a third kind of round between them: the entries written in
#    the request as ON, but the schema's audit_flush() replaced by a stub
#    for the round (restored after it, then the bench flushes), so the
#    figure is the request's own part of the audit, without the flush,
#    relay, NATS and chain work running beside it. PERF=1 samples the
#    whole machine with perf during the ON rounds at CONC connections and
#    prints the suite's hottest functions per route (a profiling run: the
#    sampling costs CPU, do not compare its figures with one without).
ROUNDS=${ROUNDS:-4}
CONC=${CONC:-8}
ROUTES=${ROUTES:-read price decision}
"${PSQL[@]}" -c "CREATE FUNCTION public.bench_audit_off() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NULL; END \$\$"
for sch in enterprise orders payments; do
	"${PSQL[@]}" -c "CREATE TRIGGER bench_audit_off BEFORE INSERT ON $sch.outbox FOR EACH ROW
		WHEN (NEW.type LIKE '%.audit.recorded') EXECUTE FUNCTION public.bench_audit_off()"
	"${PSQL[@]}" -c "ALTER TABLE $sch.outbox DISABLE TRIGGER bench_audit_off"
done
# shellcheck disable=SC2034
read -r RID OP_TOKEN FIN_TOKEN RECON ITEMS < <($PY - "$STATE" <<'PY'
import datetime, sys, uuid
sys.path.insert(0, "deploy/scripts"); sys.path.insert(0, "tests"); sys.path.insert(0, "tests/integration")
import suite as suite_mod
from client import Api, call
from test_enterprise_fixtures import admin, fill_record, staff_token
from test_payments import SHANGHAI, finance_token, sim_url
s = suite_mod.Suite(sys.argv[1], persistent=True)
rec = fill_record(admin(s, name="辽宁审计压测有限公司"), name="辽宁审计压测有限公司")
# a reconciliation with 40 differences of its own (payments unknown locally)
fin = finance_token(s)
today = datetime.datetime.now(SHANGHAI).strftime("%Y-%m-%d")
lines = call(sim_url(s), "GET", f"/sim/bills/wechat/{today}").raw.decode().split("\r\n")
tag = uuid.uuid4().hex[:8].upper()
foreign = [",".join("`" + c for c in [
    f"{today} 11:00:00", "wx8888888888888888", "1900000001", "0", "", f"43{tag}{i:02d}",
    f"BENCH{tag}{i}", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "NATIVE", "SUCCESS", "OTHERS", "CNY",
    "2.00", "0.00", "0", "0", "0.00", "0.00", "", "", "证书续期", "", "0.01200", "0.60%",
    "2.00", "0.00", ""]) for i in range(40)]
r = call(s.gateway, "POST", f"/api/v1/finance/bills/wechat/{today}", raw="\r\n".join(
    [lines[0]] + lines[1:-3] + foreign + lines[-3:]).encode(), token=fin, headers={"Content-Type": "text/csv"})
assert r.status == 201, r
rid = r.json["id"]
items = Api(s).get(f"/api/v1/finance/reconciliations/{rid}/items?limit=1000", token=fin).json["items"]
seqs = [str(i["seq"]) for i in items if (i["out_trade_no"] or "").startswith(f"BENCH{tag}")]
assert len(seqs) == 40, seqs
print(rec["id"], staff_token(s, "operator"), fin, rid, ",".join(seqs))
PY
)
cat > "$STATE/price.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"renew_fen": 7000, "add_fen": 27000, "lock_kind": "agent", "reason": "压测调价"}'
LUA
cat > "$STATE/decision.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local seqs = {$ITEMS}
local decisions = {"write_off", "provider_claim", "ignore", "refund_payer"}
local i = 0
request = function()
	i = i + 1
	return wrk.format(nil, "/api/v1/finance/reconciliations/$RECON/items/" .. seqs[i % #seqs + 1] .. "/decision", nil,
		'{"decision": "' .. decisions[i % 4 + 1] .. '", "note": "压测"}')
end
LUA
HZ=$(getconf CLK_TCK)
# route NAME → SCHEMA ACTION URL TOKEN SCRIPT
route_def() {
	case "$1" in
	read) echo "enterprise enterprise.record.read_full $GATEWAY/api/v1/review/records/$RID $OP_TOKEN -" ;;
	price) echo "orders price.set $GATEWAY/api/v1/platforms/SF_JSXM/prices $OP_TOKEN $STATE/price.lua" ;;
	decision) echo "payments reconciliation.decided $GATEWAY/api/v1/finance/reconciliations/$RECON/items/1/decision $FIN_TOKEN $STATE/decision.lua" ;;
	esac
}
chained() { "${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log WHERE action = '$1'"; }
drain() { # schema action expected: until the schema holds no entry and no batch, and the chain has expected entries
	for _ in $(seq 1 150); do
		[ "$("${PSQL[@]}" -c "SELECT NOT EXISTS (SELECT 1 FROM $1.outbox WHERE published_at = 'infinity'
				OR (published_at IS NULL AND type LIKE '%.audit.batch'))
			AND (SELECT count(*) FROM auth.audit_log WHERE action = '$2') >= $3")" = t ] && return 0
		sleep 0.2
	done
	echo "  (not drained)" >&2
}
route_round() { # route on|held|off connections → "mean_ms p50_ms rps cpu_us_per_request"; $STATE/groups.<route>.<mode> gets the round's CPU by group
	local out n n0 sch action url token script
	read -r sch action url token script < <(route_def "$1")
	if [ "$2" = off ]; then
		"${PSQL[@]}" -c "ALTER TABLE $sch.outbox ENABLE TRIGGER bench_audit_off"
	else
		"${PSQL[@]}" -c "ALTER TABLE $sch.outbox DISABLE TRIGGER bench_audit_off"
	fi
	drain "$sch" "$action" 0
	if [ "$2" = held ]; then # the flush finds nothing during the round
		"${PSQL[@]}" -c "ALTER FUNCTION $sch.audit_flush(int) RENAME TO audit_flush_bench_real" \
			-c "CREATE FUNCTION $sch.audit_flush(int) RETURNS int LANGUAGE sql AS 'SELECT 0'"
	fi
	n0=$(chained "$action")
	$PY tests/bench/cpu_groups.py snap "$STATE" "$PG_PORT" > "$STATE/snap0"
	if [ "${PERF:-0}" = 1 ] && [ "$2" = on ] && [ "$3" != 1 ]; then
		perf record -q -a -g -F 499 -o "$STATE/perf.$1" -- sleep "$DUR" >/dev/null 2>&1 &
	fi
	if [ "$script" = - ]; then
		out=$(wrk -t1 -c"$3" -d"${DUR}s" --latency -H "Authorization: Bearer $token" "$url")
	else
		out=$(wrk -t1 -c"$3" -d"${DUR}s" --latency -s "$script" -H "Authorization: Bearer $token" "$url")
	fi
	n=$(awk '/requests in/ {print $1}' <<< "$out")
	wait
	if [ "$2" = held ]; then
		$PY tests/bench/cpu_groups.py snap "$STATE" "$PG_PORT" > "$STATE/snap1"
		[ "$(chained "$action")" = "$n0" ] || echo "  (held round: entries were chained during it)" >&2
		"${PSQL[@]}" -c "DROP FUNCTION $sch.audit_flush(int)" \
			-c "ALTER FUNCTION $sch.audit_flush_bench_real(int) RENAME TO audit_flush"
		until [ "$("${PSQL[@]}" -c "SELECT $sch.audit_flush(200)")" = 0 ]; do :; done
		drain "$sch" "$action" $((n0 + n))
	elif [ "$2" = on ]; then
		drain "$sch" "$action" $((n0 + n))
	else
		drain "$sch" "$action" 0
	fi
	[ "$2" = held ] || $PY tests/bench/cpu_groups.py snap "$STATE" "$PG_PORT" > "$STATE/snap1"
	$PY tests/bench/cpu_groups.py diff "$STATE/snap0" "$STATE/snap1" "$n" | sed "s/^/$3 /" >> "$STATE/groups.$1.$2"
	if grep -q "Non-2xx" <<< "$out"; then echo "  (non-2xx answers: $(grep Non-2xx <<< "$out"))" >&2; fi
	awk -v n="$n" -v d="$DUR" -v cpu="$($PY tests/bench/cpu_groups.py diff "$STATE/snap0" "$STATE/snap1" "$n" | awk '{s += $NF} END {print s}')" '
		function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 } if (v ~ /ms$/) { sub(/ms/, "", v); return v + 0 }
			sub(/s/, "", v); return v * 1000 }
		/^    Latency/ {mean = ms($2)} /^     50%/ {p50 = ms($2)}
		END {printf "%.3f %.3f %.0f %.1f\n", mean, p50, n / d, cpu}' <<< "$out"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
col() { awk -v k="$1" '{print $k}' "$2" | median; }
for route in $ROUTES; do
[ "$route" = none ] && continue
read -r _ action url _ _ < <(route_def "$route")
echo
echo "== 1. $route: ${url#"$GATEWAY"} ($action) through nginx, audit ON vs OFF"
echo "   ($ROUNDS alternating rounds of ${DUR}s each, medians; CPU = every suite process, until the round's entries are chained)"
for c in 1 "$CONC"; do
	: > "$STATE/r_off"; : > "$STATE/r_on"; : > "$STATE/r_held"
	for _ in $(seq 1 "$ROUNDS"); do
		route_round "$route" off "$c" >> "$STATE/r_off"
		[ "${HELD:-0}" = 1 ] && route_round "$route" held "$c" >> "$STATE/r_held"
		route_round "$route" on "$c" >> "$STATE/r_on"
	done
	for k in 1 2 3 4; do
		eval "off$k=$(col $k "$STATE/r_off"); on$k=$(col $k "$STATE/r_on")"
	done
	# shellcheck disable=SC2154
	{
	printf "  %s %s connection(s), load %s:\n" "$route" "$c" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf "    latency mean: OFF %.3f ms, ON %.3f ms: %+.0f us = %+.1f%% of the request (goal < 5%%: %.1fx the goal)  [OFF rounds: %s; ON rounds: %s]\n" \
		"$off1" "$on1" "$(echo "($on1 - $off1) * 1000" | bc -l)" "$(echo "($on1 - $off1) / $off1 * 100" | bc -l)" \
		"$(echo "($on1 - $off1) / $off1 * 100 / 5" | bc -l)" "$(awk '{printf "%s ", $1}' "$STATE/r_off")" "$(awk '{printf "%s ", $1}' "$STATE/r_on")"
	printf "    latency p50:  OFF %.3f ms, ON %.3f ms: %+.1f%%\n" "$off2" "$on2" "$(echo "($on2 - $off2) / $off2 * 100" | bc -l)"
	printf "    throughput:   OFF %.0f/s, ON %.0f/s\n" "$off3" "$on3"
	if [ -s "$STATE/r_held" ]; then
		for k in 1 2 3 4; do eval "held$k=$(col $k "$STATE/r_held")"; done
		printf "    HELD (entries written in the request, flush stopped: the request's own part): latency mean %.3f ms (%+.1f%%), p50 %.3f ms (%+.1f%%), CPU %.0f us (%+.0f us = %+.1f%%)  [rounds: %s]\n" \
			"$held1" "$(echo "($held1 - $off1) / $off1 * 100" | bc -l)" "$held2" "$(echo "($held2 - $off2) / $off2 * 100" | bc -l)" \
			"$held4" "$(echo "$held4 - $off4" | bc -l)" "$(echo "($held4 - $off4) / $off4 * 100" | bc -l)" "$(awk '{printf "%s/%.0f ", $2, $4}' "$STATE/r_held")"
	fi
	printf "    CPU per request, all processes: OFF %.0f us, ON %.0f us: %+.0f us = %+.1f%% (goal < 5%%: %.1fx the goal)  [OFF rounds: %s; ON rounds: %s]\n" \
		"$off4" "$on4" "$(echo "$on4 - $off4" | bc -l)" "$(echo "($on4 - $off4) / $off4 * 100" | bc -l)" \
		"$(echo "($on4 - $off4) / $off4 * 100 / 5" | bc -l)" "$(awk '{printf "%.0f ", $4}' "$STATE/r_off")" "$(awk '{printf "%.0f ", $4}' "$STATE/r_on")"
	}
	echo "    where the CPU goes, by process (median of the rounds, us per request; groups that moved by 2 us or more):"
	$PY - "$c" "$STATE/groups.$route.off" "$STATE/groups.$route.on" <<'PY'
import statistics, sys
conc, files = sys.argv[1], sys.argv[2:]
med = []
for f in files:
    rounds = {}
    for line in open(f):
        c, rest = line.split(" ", 1)
        if c != conc:
            continue
        label, v = rest.rsplit(" ", 1)
        rounds.setdefault(label, []).append(float(v))
    med.append({k: statistics.median(v) for k, v in rounds.items()})
off, on = med
for k in sorted(set(off) | set(on), key=lambda k: -(on.get(k, 0) - off.get(k, 0))):
    a, b = off.get(k, 0), on.get(k, 0)
    if abs(b - a) >= 2:
        print(f"      {k:55s} OFF {a:6.0f}  ON {b:6.0f}  {b - a:+6.0f}")
PY
done
if [ "${PERF:-0}" = 1 ] && [ -f "$STATE/perf.$route" ]; then
	echo "    perf, the last ON round at $CONC connections (whole machine sampled, the suite's processes shown; % of their samples):"
	perf report -q -i "$STATE/perf.$route" --no-children --pid "$($PY tests/bench/cpu_groups.py pids "$STATE")" \
		--sort comm,dso,sym --percentage relative -g none 2>/dev/null | awk 'NF && $1 + 0 >= 0.4' | head -60 | sed 's/^/     /'
fi
done
for sch in enterprise orders payments; do
	"${PSQL[@]}" -c "DROP TRIGGER bench_audit_off ON $sch.outbox"
done
"${PSQL[@]}" -c "DROP FUNCTION public.bench_audit_off()"

# ---------------------------------------------------------------------------
# 2. The chain and the export. ROWS synthetic entries appended by auth's
#    audit_append_batch() in batches of 200 (what auth's consumer does with
#    each <svc>.audit.batch event), with the backend's CPU per entry; then
#    the export through nginx as CSV and JSON Lines (rows/s, auth's peak
#    memory before and after). The export's same-run reference is the
#    database alone: the same columns of the same rows sent by PostgreSQL
#    with COPY (SELECT …) TO STDOUT into /dev/null. Last, the verifier.
#    Between the two, what each index of audit_log costs an appended entry
#    (INDEX_ROWS entries, 100000, copied into copies of the table).
if [ "${CHAIN:-1}" = 1 ]; then
echo
echo "== 2. the chain: $ROWS synthetic entries, then the export"
"${PSQL[@]}" -c "SET client_min_messages TO warning" -c "CREATE TABLE public.bench_batches AS SELECT g / 200 AS k, jsonb_agg(jsonb_build_object('id', gen_random_uuid(),
	'type', 'orders.audit.recorded', 'time', now(), 'data', jsonb_build_object('actor', jsonb_build_object('type', 'account', 'id', md5(g::text),
	'identity_id', md5(g::text || 'i'), 'role', 'admin', 'ip', '203.0.113.7', 'request_id', md5(g::text || 'r')), 'service', 'orders',
	'action', 'bench.synthetic', 'object_type', 'order', 'object_id', md5(g::text || 'o'), 'uscc', '91350100M000100Y43', 'before', NULL,
	'after', jsonb_build_object('status', 'paid', 'total_fen', g))) ORDER BY g)::text b FROM generate_series(0, $ROWS - 1) g GROUP BY g / 200"
read -r secs ticks < <($PY - "$PG_PORT" "$STATE/perf.append" <<'PY'
import os, signal, subprocess, sys, time
p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", sys.argv[1], "-U", "admin", "-d", "caplat"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
p.stdin.write("SET search_path TO auth;\nSELECT pg_backend_pid();\n"); p.stdin.flush()
pid = int(p.stdout.readline())
prof = None
if os.environ.get("PERF") == "1":
    prof = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(pid), "-o", sys.argv[2]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t0, w0 = ticks(pid), time.time()
# one transaction per batch, as the consumer appends them
p.stdin.write("DO $$ DECLARE r record; BEGIN FOR r IN SELECT b FROM public.bench_batches ORDER BY k LOOP"
              " PERFORM audit_append_batch(r.b::jsonb); COMMIT; END LOOP; END $$;\nSELECT 1;\n"); p.stdin.flush()
p.stdout.readline()
w1, t1 = time.time(), ticks(pid)
if prof is not None:
    prof.send_signal(signal.SIGINT); prof.wait()
p.stdin.close(); p.wait()
print(w1 - w0, t1 - t0)
PY
)
"${PSQL[@]}" -c "DROP TABLE public.bench_batches"
printf "  appended %s in batches of 200 (audit_append_batch, one transaction each): %.1f s, %.0f entries/s, %.1f us of backend CPU per entry\n" \
	"$ROWS" "$secs" "$(echo "$ROWS / $secs" | bc -l)" "$(echo "$ticks * 1000000 / $HZ / $ROWS" | bc -l)"
if [ "${PERF:-0}" = 1 ] && [ -f "$STATE/perf.append" ]; then
	echo "  perf of the appending backend (self time, % of its samples):"
	perf report -q -i "$STATE/perf.append" --no-children --sort sym -g none 2>/dev/null | awk 'NF && $1 + 0 >= 0.8' | head -40 | sed 's/^/     /'
fi
# What each index of the chain costs an appended entry: the same N entries
# (the chain's first N) inserted into copies of audit_log, one with every
# index of audit_log, one with only its primary key and event_id's unique
# index (what the append itself needs), then one per filter index; the
# backend's CPU per entry of each (one session, one transaction per copy,
# rolled back).
N2=${INDEX_ROWS:-100000}
echo "  what the indexes cost per appended entry ($N2 entries copied into a copy of audit_log, backend CPU, median of 3):"
$PY - "$PG_PORT" "$N2" <<'PY'
import statistics, subprocess, sys
port, n = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", port, "-U", "admin", "-d", "caplat"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
def q(sql):
    p.stdin.write(sql.rstrip(";") + ";\nSELECT 'done';\n"); p.stdin.flush()
    out = []
    while True:
        line = p.stdout.readline().strip()
        if line == "done":
            return out
        if line:
            out.append(line)
pid = int(q("SELECT pg_backend_pid();")[0])
def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
import os
hz = os.sysconf("SC_CLK_TCK")
q(f"CREATE TEMP TABLE src AS SELECT * FROM auth.audit_log ORDER BY seq LIMIT {n};")
idx = q("SELECT indexname || '|' || regexp_replace(indexdef, ' ON auth.audit_log ', ' ON ') FROM pg_indexes"
        " WHERE schemaname = 'auth' AND tablename = 'audit_log' AND indexname NOT IN ('audit_log_pkey', 'audit_log_event_id_key')")
def run(extra):
    res = []
    for _ in range(3):
        q("BEGIN; CREATE TABLE public.bench_copy (LIKE auth.audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
          " ALTER TABLE public.bench_copy ADD PRIMARY KEY (seq), ADD UNIQUE (event_id);")
        for name, d in extra:
            q(d.split(" ON ", 1)[0].replace(name, "bc_" + name) + " ON public.bench_copy " + d.split(" ON ", 1)[1] + ";")
        t0 = ticks()
        q("INSERT INTO public.bench_copy SELECT * FROM src;")
        t1 = ticks()
        q("ROLLBACK;")
        res.append((t1 - t0) * 1e6 / hz / n)
    return statistics.median(res)
indexes = [tuple(l.split("|", 1)) for l in idx]
base = run([])
full = run(indexes)
print(f"    primary key + event_id only: {base:.1f} us/entry; with all {len(indexes)} filter indexes too: {full:.1f} us/entry (+{full - base:.1f})")
for name, d in indexes:
    one = run([(name, d)])
    print(f"    + {name:28s} {one - base:+.1f} us/entry")
p.stdin.close(); p.wait()
PY
total=$("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log")
AUTH_PID=$(cat "$STATE/run/auth.pid")
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$AUTH_PID/status"; }
echo "  auth peak memory before the exports: $(hwm)"
OP_TOKEN=$($PY - "$STATE" <<'PY'
import sys
sys.path.insert(0, "deploy/scripts"); sys.path.insert(0, "tests"); sys.path.insert(0, "tests/integration")
import suite as suite_mod
from test_enterprise_fixtures import staff_token
print(staff_token(suite_mod.Suite(sys.argv[1], persistent=True), "operator"))
PY
)
t0=$(date +%s.%N)
"${PSQL[@]}" -c "COPY (SELECT seq, event_id, service, action, actor_type, actor_id, identity_id, role, ip, request_id, object_type, object_id,
	uscc, before::text, after::text, auth.audit_time(occurred_at), auth.audit_time(recorded_at), hash FROM auth.audit_log ORDER BY seq) TO STDOUT" > /dev/null
t1=$(date +%s.%N)
ref=$(echo "$total / ($t1 - $t0)" | bc -l)
printf "  reference: PostgreSQL alone, COPY of the same columns to /dev/null: %s entries in %.1f s: %.0f rows/s\n" "$total" "$(echo "$t1 - $t0" | bc -l)" "$ref"
for fmt in csv jsonl; do
	out=$(curl -s -o "$STATE/export.$fmt" -w '%{http_code} %{size_download} %{time_total}' -H "Authorization: Bearer $OP_TOKEN" "$GATEWAY/api/v1/audit/export?format=$fmt")
	read -r code size secs <<< "$out"
	lines=$(wc -l < "$STATE/export.$fmt")
	[ "$fmt" = csv ] && lines=$((lines - 1))
	printf "  export %-5s HTTP %s: %s entries, %.0f MB in %.1f s: %.0f rows/s (%.0f%% of the reference), %.1f MB/s; auth peak memory after: %s\n" \
		"$fmt" "$code" "$lines" "$(echo "$size / 1048576" | bc -l)" "$secs" "$(echo "$lines / $secs" | bc -l)" \
		"$(echo "$lines / $secs / $ref * 100" | bc -l)" "$(echo "$size / 1048576 / $secs" | bc -l)" "$(hwm)"
	rm -f "$STATE/export.$fmt"
done
t0=$(date +%s.%N)
res=$(CAPLAT_DB_URL="postgresql://admin:$PG_ADMIN_PW@127.0.0.1:$PG_PORT/caplat" build/bin/caplat-audit verify)
t1=$(date +%s.%N)
printf "  caplat-audit verify: %s (%.1f s, %.0f entries/s)\n" "$res" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$total / ($t1 - $t0)" | bc -l)"
fi
