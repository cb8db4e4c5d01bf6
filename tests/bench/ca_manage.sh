#!/usr/bin/env bash
# ca_manage.sh — CA管理's list (GET /api/v1/certs) through nginx with 10⁵
# certificates in the registry: requests/s and latency percentiles at 64
# connections for the administrator of an enterprise of 5000 keys (the
# default page; a filtered, holder-sorted page; a keyset page deep in the
# list; a 100-row page), on a throw-away suite (tests/bench/suite_up.py).
# Goal (issue 13): p99 under 20 ms at 64 connections. As this machine's
# limit beside it: GET /api/v1/auth/me (a session and a 2-statement batch).
# Reports; never fails.
# Usage: tests/bench/ca_manage.sh [DURATION_S] [CONNECTIONS] [CERTS] [ENTERPRISE_CERTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONN=${2:-64}
TOTAL=${3:-100000}
ENT=${4:-5000}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (deploy/scripts/install-deps.sh)"; exit 1; }
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
# Free ports rather than make run's fixed ones, so that this bench runs
# beside another suite (suite.py reads ports.json when it is there).
$PY - "$STATE" <<'PYEOF'
import json, os, socket, sys
sys.path.insert(0, os.path.join("deploy", "scripts"))
import suite
names = list(suite.FIXED_PORTS) + list(suite.SERVICES)
socks = [socket.socket() for _ in names]
for s in socks:
    s.bind(("127.0.0.1", 0))
json.dump({n: s.getsockname()[1] for n, s in zip(names, socks)}, open(os.path.join(sys.argv[1], "ports.json"), "w"))
PYEOF
$PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null' EXIT
$PY tests/bench/ca_manage.py "$STATE" "$TOKEN" "$TOTAL" "$ENT" > "$STATE/fill"
# shellcheck disable=SC1091
. "$STATE/fill"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "registry: $BENCH_CERTS certificates; the administrator's enterprise: $BENCH_ENT"
echo "wrk: ${DUR}s, ${CONN} connections, 2 threads, load generator on the same cores"
# issuance's own view of each run (its /metrics before and after): mean
# time of the list inside the service, of its database batch (the wait for
# one of the pool's connections included) and of json_dumps, per request.
ISSUANCE_METRICS="http://127.0.0.1:$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["issuance"])' "$STATE/ports.json")/metrics"
scrape() {
	curl -s "$ISSUANCE_METRICS" | grep -E '^caplat_(step_duration_seconds_(sum|count)\{svc="issuance",step="(db_batch|json_build)"|http_request_duration_seconds_(sum|count)\{svc="issuance",method="GET",route="/api/v1/certs"\}|issuance_total\{what="list_cache_(hit|miss)"\})' || true
}
steps() {
	$PY - "$1" "$2" <<'PYEOF'
import sys
def rd(text):
    return {k: float(v) for k, v in (l.rsplit(" ", 1) for l in text.splitlines() if l)}
a, b = rd(sys.argv[1]), rd(sys.argv[2])
out = []
for name, key in (("list in issuance", 'caplat_http_request_duration_seconds_%s{svc="issuance",method="GET",route="/api/v1/certs"}'),
                  ("db_batch", 'caplat_step_duration_seconds_%s{svc="issuance",step="db_batch"}'),
                  ("json_build", 'caplat_step_duration_seconds_%s{svc="issuance",step="json_build"}')):
    n = b.get(key % "count", 0) - a.get(key % "count", 0)
    if n > 0:
        out.append("%s %.2f ms" % (name, 1000 * (b[key % "sum"] - a.get(key % "sum", 0)) / n))
hit = b.get('caplat_issuance_total{what="list_cache_hit"}', 0) - a.get('caplat_issuance_total{what="list_cache_hit"}', 0)
miss = b.get('caplat_issuance_total{what="list_cache_miss"}', 0) - a.get('caplat_issuance_total{what="list_cache_miss"}', 0)
if hit or miss:
    out.append("list cache %d hits / %d misses" % (hit, miss))
if out:
    print("    issuance means per request: " + ", ".join(out))
PYEOF
}
# Per run: wrk's figures; issuance's means; where.py's CPU ms per request
# of every process of the suite (postgres backends, nginx, the services)
# and per step; wrk's own CPU (the load generator shares the 2 cores); the
# load average. CA_MANAGE_ONLY=<regex> runs only the pages whose label
# matches (the two references always run), e.g. CA_MANAGE_ONLY=cold.
# CA_MANAGE_PERF=1 adds a perf profile of issuance, nginx
# and postgres (the backends) during the first page's run
# (CA_MANAGE_PERF_RUN=<regex of a label>: another one's).
run() {
	local label=$1; shift
	case "$label" in limit:* | baseline:*) ;; *)
		if [ -n "${CA_MANAGE_ONLY:-}" ] && ! [[ "$label" =~ $CA_MANAGE_ONLY ]]; then return 0; fi ;;
	esac
	echo; echo "== $label"
	local before; before=$(scrape)
	$PY tests/bench/where.py settle "$STATE" >/dev/null 2>&1 || true
	$PY tests/bench/where.py snap "$STATE" "$STATE/w0.json"
	local perf_pid=""
	if [ "${CA_MANAGE_PERF:-}" = 1 ] && [[ "$label" =~ $PERF_RUN ]]; then
		local pids; pids=$(pgrep -d, -f "caplat-issuance|nginx: worker|postgres: .*caplat" || true)
		perf record -q -g -o "$STATE/perf.data" -p "$pids" -- sleep "$DUR" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	/usr/bin/time -f "    wrk's own CPU: %U s user + %S s system in %e s (%P of one core)" \
		wrk -t2 -c"$CONN" -d"${DUR}s" --latency -H "Authorization: Bearer $ADMIN_TOKEN" "$@" 2>"$STATE/wrk.time" >"$STATE/wrk.out"
	grep -E "Requests/sec|Transfer/sec|Latency|50%|90%|99%|Non-2xx|Socket errors" "$STATE/wrk.out"
	local temp; temp=$(grep -c "buffered to a temporary file" "$STATE/nginx/logs/error.log" 2>/dev/null || true)
	echo "    nginx: ${temp:-0} answers so far buffered to a temporary file (proxy_buffers too small)"
	local reqs; reqs=$(awk '/requests in/ {print $1}' "$STATE/wrk.out")
	$PY tests/bench/where.py snap "$STATE" "$STATE/w1.json"
	cat "$STATE/wrk.time"
	echo "    load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	steps "$before" "$(scrape)"
	$PY tests/bench/where.py diff "$STATE/w0.json" "$STATE/w1.json" "$reqs" request | sed 's/^/    /'
	if [ -n "$perf_pid" ]; then
		wait "$perf_pid" || true
		perf report -i "$STATE/perf.data" --no-children -g none --sort comm,dso,sym --stdio 2>/dev/null |
			grep -E "^ +[0-9]" | sed -n '1,40s/^/    perf /p' || true
	fi
}
# CA_MANAGE_PERF_RUN=<regex>: the run to profile (default the first page).
PERF_RUN=${CA_MANAGE_PERF_RUN:-"^GET /api/v1/certs \\(first page"}
# The machine's own limit beside the list: nginx -> issuance's router
# answering 404 for an unknown path (no session, no I/O).
run "limit: nginx -> issuance hello path (router 404, no I/O)" "$GATEWAY/api/v1/certs/-/-/-/-"
run "baseline: GET /api/v1/auth/me (nginx -> auth -> Redis + PostgreSQL)" "$GATEWAY/api/v1/auth/me"
run "GET /api/v1/certs (first page of 20, soonest notAfter first)" "$GATEWAY/api/v1/certs"
# A different page at each request (random days-left ranges): what a page
# costs when the cache cannot answer it (the cache's miss path).
cat > "$STATE/cold.lua" <<'LUA'
math.randomseed(os.time())
request = function()
	local a = math.random(-30, 369)
	local b = a + math.random(0, 999)
	return wrk.format(nil, "/api/v1/certs?days_left_min=" .. a .. "&days_left_max=" .. b)
end
LUA
run "cold: GET /api/v1/certs?days_left_min=<random>&days_left_max=<random> (a new page each time)" \
	-s "$STATE/cold.lua" "$GATEWAY/api/v1/certs"
run "GET /api/v1/certs?status=valid&days_left_max=90&sort=holder&lock_kind=agent" \
	"$GATEWAY/api/v1/certs?status=valid&days_left_max=90&sort=holder&lock_kind=agent"
CURSOR=$(curl -s -H "Authorization: Bearer $ADMIN_TOKEN" "$GATEWAY/api/v1/certs?limit=100&sort=-applied_at" |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')
run "GET /api/v1/certs?sort=-applied_at&cursor=… (second keyset page)" \
	"$GATEWAY/api/v1/certs?sort=-applied_at&cursor=$CURSOR"
run "GET /api/v1/certs?limit=100" "$GATEWAY/api/v1/certs?limit=100"
