#!/usr/bin/env bash
# audit.sh — what the audit trail costs, on a throw-away suite (reports,
# never fails on time). Usage: tests/bench/audit.sh [SECONDS] [ROWS]
#
# 1. The cost per audited request. An audited action sends its audit entry
#    as one more statement (an outbox INSERT) in the batch it already sends:
#    same transaction, same round trip (common/audit.c). So the honest A/B is
#    the same batch with and without that statement, sent the way the
#    services send it — pipelined, prepared, one Sync (pgbench \startpipeline
#    -M prepared). The action is POST /api/v1/auth/register's batch (INSERT
#    account + its outbox event). Measured twice:
#    a. in the request's own transaction only: the events go to a copy of
#       the outbox without trigger or relay, so A and B differ by exactly
#       the audit row (its INSERT, its WAL in the same commit);
#    b. the whole system: the real outbox (event typed auth.bench.registered
#       so no other service consumes it), with auth's relay publishing to
#       JetStream and auth's consumer chaining every audit row meanwhile, on
#       the same cores and disk — what an audited request costs the machine.
#       The audit row is held in the outbox and sent with up to 199 others
#       as one auth.audit.batch event (deploy/sql/common/050_audit_batch.sql).
#    Rounds alternate A, B, A, B… (5 each) and the median is kept, so the
#    other load of a shared machine hits both alike. The added latency is
#    set against a whole audited write request through nginx, estimated as
#    GET /api/v1/auth/me (session + one read batch) plus batch A (the write
#    and its commit).
# (AB=0 skips 1a, 1b and the estimate; CPU_TX sets the size of 1d.)
# 2. The chain: audit_append() rate filling ROWS synthetic entries (default
#    10^6), the same in batches of 200 (audit_append_batch(), the sets of
#    055 against the loop of 050 as same-run reference), then the export
#    rate (rows/s) through nginx for CSV and JSON Lines, auth's peak memory
#    (VmHWM) before and after, and the verifier's rate on the whole chain.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
ROWS=${2:-1000000}
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

"${PSQL[@]}" -c "CREATE TABLE public.bench_outbox (LIKE auth.outbox INCLUDING ALL)"
cat > "$STATE/a.sql" <<'SQL'
\set n random(0, 999999999)
\startpipeline
INSERT INTO auth.accounts (id, phone, password_hash) VALUES (gen_random_uuid(), '13' || lpad(:n::text, 9, '0'), 'scrypt$bench') ON CONFLICT (phone) DO NOTHING;
INSERT INTO auth.outbox (id, type, subject, data) VALUES (gen_random_uuid(), 'auth.bench.registered', :n::text, jsonb_build_object('account_id', gen_random_uuid(), 'phone', '13' || lpad(:n::text, 9, '0')));
\endpipeline
SQL
# B: the same batch plus the audit entry, as audit_event_data() writes it.
cat > "$STATE/row.sql" <<'SQL'
INSERT INTO auth.outbox (id, type, subject, data) VALUES (gen_random_uuid(), 'auth.audit.recorded', :n::text, jsonb_build_object('actor', jsonb_build_object('type', 'account', 'id', gen_random_uuid(), 'identity_id', gen_random_uuid(), 'role', 'admin', 'ip', '203.0.113.7', 'request_id', md5(:n::text)), 'service', 'auth', 'action', 'account.registered', 'object_type', 'account', 'object_id', gen_random_uuid(), 'uscc', NULL, 'before', NULL, 'after', jsonb_build_object('phone', '139****0000')));
SQL
sed "/^\\\\endpipeline/e cat $STATE/row.sql" "$STATE/a.sql" > "$STATE/b.sql"
# The same two without trigger and relay: only the request's transaction.
sed 's/auth\.outbox/public.bench_outbox/' "$STATE/a.sql" > "$STATE/a1.sql"
sed 's/auth\.outbox/public.bench_outbox/' "$STATE/b.sql" > "$STATE/b1.sql"

pgb() { # clients script → "tps latency_ms"
	pgbench -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U admin -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -T "$DUR" -f "$2" caplat 2>/dev/null |
		awk '/^latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.0f %.3f\n", tps, lat}'
}
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ab() { # label a-script b-script
	echo "-- $1"
	for c in 1 8; do
		: > "$STATE/la"; : > "$STATE/lb"; : > "$STATE/ta"; : > "$STATE/tb"
		for round in 1 2 3 4 5; do
			read -r tpa la < <(pgb "$c" "$2")
			read -r tpb lb < <(pgb "$c" "$3")
			echo "$la" >> "$STATE/la"; echo "$lb" >> "$STATE/lb"; echo "$tpa" >> "$STATE/ta"; echo "$tpb" >> "$STATE/tb"
		done
		la=$(median < "$STATE/la"); lb=$(median < "$STATE/lb")
		add_us=$(echo "($lb - $la) * 1000" | bc -l)
		printf "  %s client(s): A %s ms (%s/s), B %s ms (%s/s) [medians of 5; A rounds: %s; B rounds: %s]: +%.0f us (%.1f%% of the batch)\n" \
			"$c" "$la" "$(median < "$STATE/ta")" "$lb" "$(median < "$STATE/tb")" "$(paste -sd' ' "$STATE/la")" "$(paste -sd' ' "$STATE/lb")" \
			"$add_us" "$(echo "$add_us / ($la * 1000) * 100" | bc -l)"
		echo "$1 $c $add_us $la" >> "$STATE/added"
	done
}
echo
echo "== 1. per audited request: the action's batch without (A) and with (B) its audit row, ${DUR}s rounds"
if [ "${AB:-1}" = 1 ]; then
	ab "a. the request's transaction alone" "$STATE/a1.sql" "$STATE/b1.sql"
	ab "b. the whole system (relay, JetStream, chaining)" "$STATE/a.sql" "$STATE/b.sql"
fi
sleep 2
echo "  (chain meanwhile: $("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log") entries appended by auth's consumer; outbox rows not yet published: $("${PSQL[@]}" -c "SELECT count(*) FROM auth.outbox WHERE published_at IS NULL"))"
# d. CPU, not latency: what an audited request costs the machine is the CPU
#    the suite's processes spend on it, and CPU time hardly moves when other
#    work shares the cores (wall-clock latency does). A fixed count of
#    transactions (8 clients x CPU_TX), then a wait until every event is
#    published and every audit entry chained; the CPU ticks spent meanwhile
#    by PostgreSQL (with its exited backends), NATS and auth, per request:
#    A without audit, B with it as now (held, batched), and B1 with it sent
#    the old way, one JetStream message per entry (the hold trigger
#    disabled for that round). Rounds alternate A, B, B1 (3 each), medians.
CPU_TX=${CPU_TX:-300}
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
ticks() { # names of run/*.pid → CPU ticks of those processes and their descendants (exited ones too)
	local total=0 p n
	for n in "$@"; do
		for p in $(tree "$(cat "$STATE/run/$n.pid")"); do
			[ -r "/proc/$p/stat" ] && total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}')))
		done
	done
	echo "$total"
}
HZ=$(getconf CLK_TCK)
drained() { # chain count to reach
	for _ in $(seq 1 600); do
		[ "$("${PSQL[@]}" -c "SELECT count(*) FROM auth.outbox WHERE published_at IS NULL OR published_at = 'infinity'")" = 0 ] &&
			[ "$("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "  (not drained)"
}
cpu_run() { # script → CPU microseconds per transaction
	local c0 t0 t1 n
	c0=$("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log")
	n=$((8 * CPU_TX))
	t0=$(ticks postgres nats auth)
	pgbench -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U admin -c 8 -j 2 -t "$CPU_TX" -f "$1" caplat >/dev/null 2>&1
	if grep -q audit.recorded "$1"; then drained $((c0 + n)); else drained "$c0"; fi
	sleep 0.5
	t1=$(ticks postgres nats auth)
	echo "($t1 - $t0) * 1000000 / $HZ / $n" | bc -l
}
echo "-- d. CPU per request of PostgreSQL + NATS + auth (8 clients x $CPU_TX transactions, until drained)"
: > "$STATE/cpu_a"; : > "$STATE/cpu_b"; : > "$STATE/cpu_b1"
for round in 1 2 3; do
	cpu_run "$STATE/a.sql" >> "$STATE/cpu_a"
	cpu_run "$STATE/b.sql" >> "$STATE/cpu_b"
	"${PSQL[@]}" -c "ALTER TABLE auth.outbox DISABLE TRIGGER outbox_audit_hold"
	cpu_run "$STATE/b.sql" >> "$STATE/cpu_b1"
	"${PSQL[@]}" -c "ALTER TABLE auth.outbox ENABLE TRIGGER outbox_audit_hold"
done
ca=$(median < "$STATE/cpu_a"); cb=$(median < "$STATE/cpu_b"); cb1=$(median < "$STATE/cpu_b1")
# the rest of a whole audited request: GET /me through nginx (nginx, auth, Redis, PostgreSQL)
t0=$(ticks postgres redis auth nginx)
nme=$(wrk -t1 -c8 -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/v1/auth/me" | awk '/requests in/ {print $1}')
t1=$(ticks postgres redis auth nginx)
cme=$(echo "($t1 - $t0) * 1000000 / $HZ / $nme" | bc -l)
whole=$(echo "$cme + $ca" | bc -l)
printf "  A (no audit) %.0f us; B (audited, batched) %.0f us; B1 (audited, one message per entry) %.0f us  [rounds A: %s; B: %s; B1: %s]\n" \
	"$ca" "$cb" "$cb1" "$(xargs printf '%.0f ' < "$STATE/cpu_a")" "$(xargs printf '%.0f ' < "$STATE/cpu_b")" "$(xargs printf '%.0f ' < "$STATE/cpu_b1")"
printf "  a whole audited request ~ GET /me through nginx %.0f us (%s requests) + A = %.0f us of CPU\n" "$cme" "$nme" "$whole"
printf "  the audit costs: batched +%.0f us = %.1f%% of it; one message per entry +%.0f us = %.1f%%\n" \
	"$(echo "$cb - $ca" | bc -l)" "$(echo "($cb - $ca) / $whole * 100" | bc -l)" "$(echo "$cb1 - $ca" | bc -l)" "$(echo "($cb1 - $ca) / $whole * 100" | bc -l)"
# c. the audit row's INSERT alone, executed by the server 20000 times in one
#    transaction (no network, no commit): the floor of a. without the noise.
us=$("${PSQL[@]}" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
	FOR i IN 1..20000 LOOP
		INSERT INTO public.bench_outbox (id, type, subject, data) VALUES (gen_random_uuid(), 'auth.audit.recorded', i::text,
			jsonb_build_object('actor', jsonb_build_object('type', 'account', 'id', gen_random_uuid(), 'identity_id', gen_random_uuid(),
			'role', 'admin', 'ip', '203.0.113.7', 'request_id', md5(i::text)), 'service', 'auth', 'action', 'account.registered',
			'object_type', 'account', 'object_id', gen_random_uuid(), 'uscc', NULL, 'before', NULL, 'after', jsonb_build_object('phone', '139****0000')));
	END LOOP;
	RAISE NOTICE 'us=%', round(extract(epoch FROM clock_timestamp() - t0) * 1e6 / 20000, 1);
END \$\$" 2>&1 | sed -n 's/.*us=//p')
echo "-- c. the audit row's INSERT alone, server side (20000 in one transaction): $us us each"
"${PSQL[@]}" -c "DROP TABLE public.bench_outbox"
echo
if [ "${AB:-1}" = 1 ]; then
echo "== a whole audited write request, estimated: GET /api/v1/auth/me through nginx (session + one read batch) + batch A"
for c in 1 8; do
	lat=$(wrk -t1 -c"$c" -d"${DUR}s" --latency -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/v1/auth/me" |
		awk '/^    Latency/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}')
	for what in a. b.; do
		read -r add_us a_ms < <(awk -v c="$c" -v w="$what" '$1 == w && $(NF-2) == c {print $(NF-1), $NF}' "$STATE/added")
		printf "  %s connection(s), %s: GET /me %.3f ms + A %.3f ms = %.3f ms; the audit's %.0f us is %.1f%% of it\n" \
			"$c" "$what" "$lat" "$a_ms" "$(echo "$lat + $a_ms" | bc -l)" "$add_us" "$(echo "$add_us / (($lat + $a_ms) * 1000) * 100" | bc -l)"
	done
done

echo
fi
echo
echo "== 2. the chain: $ROWS synthetic entries appended by audit_append()"
t0=$(date +%s.%N)
"${PSQL[@]}" -c "SET search_path TO auth; SELECT count(audit_append(gen_random_uuid(), 'orders', 'bench.synthetic',
	'account', md5(g::text), md5(g::text || 'i'), 'admin', '203.0.113.7', md5(g::text || 'r'), 'order', md5(g::text || 'o'),
	'91350100M000100Y43', NULL, jsonb_build_object('status', 'paid', 'total_fen', g), now())) FROM generate_series(1, $ROWS) g" >/dev/null
t1=$(date +%s.%N)
total=$("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log")
printf "  appended %s in %.1f s: %.0f entries/s (one transaction, one session)\n" "$ROWS" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$ROWS / ($t1 - $t0)" | bc -l)"
# The same entries as batches of 200 (what auth's consumer appends per
# <svc>.audit.batch event: audit_append_batch(), deploy/sql/auth/050).
t0=$(date +%s.%N)
"${PSQL[@]}" -c "SET search_path TO auth; SELECT sum(audit_append_batch(b)) FROM (SELECT jsonb_agg(jsonb_build_object('id', gen_random_uuid(),
	'type', 'orders.audit.recorded', 'time', now(), 'data', jsonb_build_object('actor', jsonb_build_object('type', 'account', 'id', md5(g::text),
	'identity_id', md5(g::text || 'i'), 'role', 'admin', 'ip', '203.0.113.7', 'request_id', md5(g::text || 'r')), 'service', 'orders',
	'action', 'bench.synthetic', 'object_type', 'order', 'object_id', md5(g::text || 'o'), 'uscc', '91350100M000100Y43', 'before', NULL,
	'after', jsonb_build_object('status', 'paid', 'total_fen', g))) ORDER BY g) b FROM generate_series(1, $ROWS) g GROUP BY g / 200) x" >/dev/null
t1=$(date +%s.%N)
printf "  appended %s more in batches of 200 (audit_append_batch) in %.1f s: %.0f entries/s\n" "$ROWS" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$ROWS / ($t1 - $t0)" | bc -l)"
# Same-run reference for audit_append_batch() as sets (055_audit_batch_set):
# the loop of 050_audit_batch.sql, loaded as audit_append_batch_050, on the
# same entries, alternating rounds of ROWS/10 (the chain grows under both
# alike); wall rate and the CPU of the PostgreSQL backend per entry.
sed -n '/^CREATE FUNCTION audit_append_batch(/,/^\$\$;/p' deploy/sql/auth/050_audit_batch.sql |
	sed 's/FUNCTION audit_append_batch(/FUNCTION audit_append_batch_050(/' | "${PSQL[@]}" -c "SET search_path TO auth" -f -
batch_round() { # function rows → "seconds cpu_ticks"
	"${PSQL[@]}" -c "SET client_min_messages TO warning" -c "DROP TABLE IF EXISTS public.bench_batches" -c "CREATE TABLE public.bench_batches AS SELECT jsonb_agg(jsonb_build_object('id', gen_random_uuid(),
	'type', 'orders.audit.recorded', 'time', now(), 'data', jsonb_build_object('actor', jsonb_build_object('type', 'account', 'id', md5(g::text),
	'identity_id', md5(g::text || 'i'), 'role', 'admin', 'ip', '203.0.113.7', 'request_id', md5(g::text || 'r')), 'service', 'orders',
	'action', 'bench.synthetic', 'object_type', 'order', 'object_id', md5(g::text || 'o'), 'uscc', '91350100M000100Y43', 'before', NULL,
	'after', jsonb_build_object('status', 'paid', 'total_fen', g))) ORDER BY g) b FROM generate_series(1, $2) g GROUP BY g / 200"
	$PY - "$1" "$PG_PORT" <<'PY'
import os, subprocess, sys, time
p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", sys.argv[2], "-U", "admin", "-d", "caplat"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
p.stdin.write("SET search_path TO auth;\nSELECT pg_backend_pid();\n"); p.stdin.flush()
pid = int(p.stdout.readline())
t0, w0 = ticks(pid), time.time()
p.stdin.write(f"SELECT sum({sys.argv[1]}(b)) FROM public.bench_batches;\n"); p.stdin.flush()
p.stdout.readline()
w1, t1 = time.time(), ticks(pid)
p.stdin.close(); p.wait()
print(w1 - w0, t1 - t0)
PY
}
: > "$STATE/batch_new"; : > "$STATE/batch_050"
n10=$((ROWS / 10))
for round in 1 2 3 4 5; do
	batch_round audit_append_batch "$n10" >> "$STATE/batch_new"
	batch_round audit_append_batch_050 "$n10" >> "$STATE/batch_050"
done
for v in new 050; do
	awk -v n="$((n10 * 5))" -v hz="$HZ" -v v="$v" '{w += $1; c += $2} END {printf "  audit_append_batch %s: %.0f entries/s, %.1f us of backend CPU per entry (%d entries in 5 alternating rounds)\n",
		(v == "new" ? "(055, sets)" : "(050, loop; same-run reference)"), n / w, c * 1000000 / hz / n, n}' "$STATE/batch_$v"
done
"${PSQL[@]}" -c "DROP TABLE public.bench_batches" -c "DROP FUNCTION auth.audit_append_batch_050(jsonb)"
total=$("${PSQL[@]}" -c "SELECT count(*) FROM auth.audit_log")
AUTH_PID=$(cat "$STATE/run/auth.pid")
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$AUTH_PID/status"; }
echo "  auth peak memory before the exports: $(hwm)"
OP_TOKEN=$($PY - "$STATE" <<'PY'
import sys, os
sys.path.insert(0, "deploy/scripts"); sys.path.insert(0, "tests")
import suite as suite_mod
from client import Api
s = suite_mod.Suite(sys.argv[1], persistent=True)
print(Api(s).post("/api/v1/auth/staff/login", {"username": "operator", "password": s.secrets["staff_operator"]}).json["token"])
PY
)
for fmt in csv jsonl; do
	out=$(curl -s -o "$STATE/export.$fmt" -w '%{http_code} %{size_download} %{time_total}' -H "Authorization: Bearer $OP_TOKEN" "$GATEWAY/api/v1/audit/export?format=$fmt")
	read -r code size secs <<< "$out"
	lines=$(wc -l < "$STATE/export.$fmt")
	[ "$fmt" = csv ] && lines=$((lines - 1))
	printf "  export %-5s HTTP %s: %s entries, %.0f MB in %.1f s: %.0f rows/s, %.1f MB/s; auth peak memory after: %s\n" \
		"$fmt" "$code" "$lines" "$(echo "$size / 1048576" | bc -l)" "$secs" "$(echo "$lines / $secs" | bc -l)" "$(echo "$size / 1048576 / $secs" | bc -l)" "$(hwm)"
	rm -f "$STATE/export.$fmt"
done
t0=$(date +%s.%N)
res=$(CAPLAT_DB_URL="postgresql://admin:$PG_ADMIN_PW@127.0.0.1:$PG_PORT/caplat" build/bin/caplat-audit verify)
t1=$(date +%s.%N)
printf "  caplat-audit verify: %s (%.1f s, %.0f entries/s)\n" "$res" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$total / ($t1 - $t0)" | bc -l)"
