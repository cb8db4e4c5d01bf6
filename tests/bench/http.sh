#!/usr/bin/env bash
# http.sh — quick wrk figures for the foundation's paths, on this machine:
#   1. GET /healthz on the auth service directly (evhttp alone)
#   2. POST /api/v1/auth/ca/challenge through nginx (nginx + evhttp + one Redis SET)
#   3. GET /api/v1/auth/me through nginx (session in Redis + a 2-statement
#      PostgreSQL batch)
#   4. GET /api/v1/platforms through nginx (orders: session + catalogue read)
# and, as this machine's limits beside them, the nginx → service hello path
# (GET /api/v1/auth/nothing answered by auth's router) and pgbench single-row
# commits on 1 and 8 connections. It starts a throw-away suite
# (tests/bench/suite_up.py), prints requests/s and latency percentiles, and
# stops it. Benchmarks report, they never fail
# on time. Usage: tests/bench/http.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONN=${2:-64}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
# Whatever happens from here on (a failed start included), stop what was
# started and remove the directory.
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null 2>&1; rm -rf "$STATE"' EXIT
$PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "wrk: ${DUR}s, ${CONN} connections, 2 threads, load generator on the same cores"
run() {
	echo; echo "== $1"; shift
	wrk -t2 -c"$CONN" -d"${DUR}s" --latency "$@" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|Socket errors"
}
run "GET /healthz (auth, direct)" "http://127.0.0.1:$AUTH_PORT/healthz"
cat > "$STATE/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
LUA
run "POST /api/v1/auth/ca/challenge (nginx -> auth -> Redis)" -s "$STATE/post.lua" "$GATEWAY/api/v1/auth/ca/challenge"
run "GET /api/v1/auth/me (nginx -> auth -> Redis + PostgreSQL)" -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/v1/auth/me"
if [ -d services/orders ]; then
	run "GET /api/v1/platforms (nginx -> orders -> Redis + PostgreSQL)" -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/v1/platforms"
fi
run "limit: nginx -> auth hello path (router 404, no I/O)" "$GATEWAY/api/v1/auth/nothing"
echo; echo "== limit: pgbench single-row commits (fsync on)"
export PGPASSWORD=$PG_ADMIN_PW
psql -q -h 127.0.0.1 -p "$PG_PORT" -U admin -d caplat -c "CREATE TABLE public.bench_commit (id bigserial PRIMARY KEY, v int)"
echo "INSERT INTO public.bench_commit (v) VALUES (1);" > "$STATE/commit.sql"
for c in 1 8; do
	echo -n "$c connection(s): "
	pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U admin -c "$c" -j "$c" -T "$DUR" -f "$STATE/commit.sql" caplat 2>/dev/null | grep -E "^tps" | sed 's/ (without initial connection time)//'
done
psql -q -h 127.0.0.1 -p "$PG_PORT" -U admin -d caplat -c "DROP TABLE public.bench_commit"
