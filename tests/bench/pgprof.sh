#!/usr/bin/env bash
# pgprof — where PostgreSQL's share of a renewal goes (issue 16): a
# throw-away suite with pg_stat_statements (planning tracked) and
# track_functions=all, N RSA renewals (tests/tools/renewbench), `perf
# record -g` on every PostgreSQL backend meanwhile; prints CPU per renewal
# by process (tests/bench/where.py), statements by total time (exec vs
# plan) per renewal, PL/pgSQL functions and triggers (self time) per
# renewal, WAL per renewal, and perf's top symbols of the backends; beside
# it, cfssl serve's CPU per signature in the same run. Reports only.
#
# Usage: tests/bench/pgprof.sh [N=200] [CONNECTIONS=16]   (PERF=0: no perf)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
CONN=${2:-16}
PY=/usr/bin/python3
PERF=${PERF:-1}
make -s all
STATE=$(mktemp -d /tmp/caplat-pgprof.XXXXXX)
chmod 755 "$STATE"
CFSSL_PID= PERF_PID=
cleanup() {
	[ -n "$CFSSL_PID" ] && kill "$CFSSL_PID" 2>/dev/null
	[ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null
	$PY tests/bench/suite_up.py down "$STATE" >/dev/null 2>&1
	rm -rf "$STATE"
}
trap cleanup EXIT
CAPLAT_PG_OPTS="shared_preload_libraries=pg_stat_statements pg_stat_statements.track=all pg_stat_statements.track_planning=on track_functions=all" \
	$PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
echo "machine: $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); other work on the machine is not stopped"
q() { PGPASSWORD=$PG_ADMIN_PW psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U admin caplat -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
$PY tests/bench/renewals_setup.py "$STATE" rsa "$N" "$STATE/rsa.list"
$PY tests/bench/where.py settle "$STATE"
q -c "SELECT pg_stat_statements_reset(), pg_stat_reset(), pg_stat_reset_shared('wal')" >/dev/null
PM=$(cat "$STATE/run/postgres.pid")
if [ "$PERF" != 0 ]; then
	PIDS=$(pgrep -d, -P "$PM")
	perf record -q -F 999 -g -p "$PM,$PIDS" -o "$STATE/pg.data" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
fi
out=$(RENEWBENCH_BEFORE="$PY tests/bench/where.py snap $STATE $STATE/before.json" \
	RENEWBENCH_AFTER="$PY tests/bench/where.py snap $STATE $STATE/after.json" \
	build/bin/renewbench caplat 127.0.0.1 "$GATEWAY_PORT" "$STATE/rsa.list" "$CONN" 120)
sleep 11 # the relay's lazy mark; backends report function and transaction counts when idle (at most every 10 s)
echo "$out" | grep ^RESULT
n=$(sed -n 's/.*\bn=\([0-9]*\).*/\1/p' <<<"$(grep ^RESULT <<<"$out")")
$PY tests/bench/where.py diff "$STATE/before.json" "$STATE/after.json" "$n" "rsa renewal"
if [ -n "$PERF_PID" ]; then
	kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
fi

echo; echo "== statements per renewal (pg_stat_statements; ms = total / $n renewals; calls per renewal)"
q -P pager=off -c "
SELECT round(((total_exec_time + total_plan_time) / $n)::numeric, 3) AS ms,
       round((total_exec_time / $n)::numeric, 3) AS exec_ms,
       round((total_plan_time / $n)::numeric, 3) AS plan_ms,
       round((calls::numeric / $n), 2) AS calls,
       round((wal_bytes / $n)::numeric) AS wal_b,
       toplevel AS top,
       left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
FROM pg_stat_statements WHERE calls > 0
ORDER BY total_exec_time + total_plan_time DESC LIMIT 40"
q -P pager=off -c "
SELECT toplevel, round((sum(total_exec_time) / $n)::numeric, 3) AS exec_ms,
       round((sum(total_plan_time) / $n)::numeric, 3) AS plan_ms,
       round((sum(calls)::numeric / $n), 1) AS calls
FROM pg_stat_statements GROUP BY toplevel"
echo; echo "== PL/pgSQL functions and triggers per renewal (pg_stat_user_functions)"
q -P pager=off -c "
SELECT round((self_time / $n)::numeric, 3) AS self_ms, round((total_time / $n)::numeric, 3) AS total_ms,
       round(calls::numeric / $n, 2) AS calls, schemaname || '.' || funcname AS function
FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 25"
echo; echo "== WAL per renewal"
q -P pager=off -c "SELECT round(wal_records::numeric / $n, 1) AS records, round(wal_bytes / $n) AS bytes,
  round(wal_fpi::numeric / $n, 2) AS fpi, wal_sync AS syncs, round((wal_sync::numeric / $n), 2) AS syncs_per_renewal FROM pg_stat_wal"
q -P pager=off -c "SELECT round(sum(xact_commit)::numeric / $n, 2) AS commits_per_renewal FROM pg_stat_database WHERE datname = 'caplat'"

if [ "$PERF" != 0 ]; then
	echo; echo "== perf: PostgreSQL backends, self time by dso"
	perf report -i "$STATE/pg.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12 || true
	echo "== perf: self time by symbol"
	perf report -i "$STATE/pg.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -45 || true
	echo "== perf: inclusive (children) by symbol"
	perf report -i "$STATE/pg.data" --children --sort symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -60 || true
fi

echo; echo "== reference: cfssl serve signing the same kind of RSA-2048 CSRs, 8s"
PKI="$STATE/pki"
CF_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cfssl serve -loglevel 3 -address 127.0.0.1 -port "$CF_PORT" -ca "$PKI/rsa-ca.cert.pem" \
	-ca-key "$PKI/rsa-ca.key.pem" > "$STATE/cfssl.log" 2>&1 &
CFSSL_PID=$!
sleep 1
c0=$(awk '{print $14+$15}' "/proc/$CFSSL_PID/stat")
out=$(build/bin/renewbench cfssl 127.0.0.1 "$CF_PORT" "$STATE/rsa.list" "$CONN" 8)
c1=$(awk '{print $14+$15}' "/proc/$CFSSL_PID/stat")
echo "$out" | grep ^RESULT
cn=$(sed -n 's/.*\bn=\([0-9]*\).*/\1/p' <<<"$(grep ^RESULT <<<"$out")")
awk -v a="$c0" -v b="$c1" -v n="$cn" -v t="$(getconf CLK_TCK)" \
	'BEGIN { printf "cfssl CPU per signature: %.2f ms; load %s\n", (b - a) / t * 1000 / (n > 0 ? n : 1), "'"$(cut -d' ' -f1-3 /proc/loadavg)"'" }'
