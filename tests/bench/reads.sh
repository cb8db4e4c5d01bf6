#!/usr/bin/env bash
# reads.sh — the hot reads beside the hello path, same run (issue 16 part 5):
#   hello: nginx -> auth's router 404 (no I/O), the reference;
#   GET /api/v1/auth/me (session in Redis + a PostgreSQL batch);
#   GET /api/v1/platforms (session in Redis + orders' cached catalogue);
#   GET /api/v1/platforms with If-None-Match (304, no body);
# each as requests/s, p50, p99 and the ratio to hello (measured before and
# after the others, the mean used). It starts a throw-away suite
# (tests/bench/suite_up.py); CAPLAT_INSTANCES=orders=2,auth=2 puts several
# processes of a service behind nginx (docs/SCALING.md). Benchmarks report,
# they never fail on time.  Usage: tests/bench/reads.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-5}
CONN=${2:-32}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null 2>&1; rm -rf "$STATE"' EXIT
$PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk ${DUR}s, ${CONN} connections," \
	"2 threads on the same cores; instances: ${CAPLAT_INSTANCES:-one of each}"
ETAG=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "$GATEWAY/api/v1/platforms" |
	tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
declare -A RPS
run() {
	local name=$1; shift
	local out
	out=$(wrk -t2 -c"$CONN" -d"${DUR}s" --latency "$@")
	RPS[$name]=$(echo "$out" | sed -n 's/^Requests\/sec: *//p')
	printf "%-34s %10s req/s  p50 %8s  p99 %8s  %s\n" "$name" "${RPS[$name]}" \
		"$(echo "$out" | awk '$1=="50%"{print $2}')" "$(echo "$out" | awk '$1=="99%"{print $2}')" \
		"$(echo "$out" | grep -o 'Non-2xx or 3xx responses: [0-9]*' || true)"
}
AUTH=(-H "Authorization: Bearer $TOKEN")
run hello-before "$GATEWAY/api/v1/auth/nothing"
run "GET /api/v1/auth/me" "${AUTH[@]}" "$GATEWAY/api/v1/auth/me"
run "GET /api/v1/platforms" "${AUTH[@]}" "$GATEWAY/api/v1/platforms"
run "GET /api/v1/platforms (304)" "${AUTH[@]}" -H "If-None-Match: $ETAG" "$GATEWAY/api/v1/platforms"
run hello-after "$GATEWAY/api/v1/auth/nothing"
echo
echo "(hello answers 404 by design: its Non-2xx count is every request)"
HELLO=$(echo "${RPS[hello-before]} ${RPS[hello-after]}" | awk '{print ($1+$2)/2}')
for k in "GET /api/v1/auth/me" "GET /api/v1/platforms" "GET /api/v1/platforms (304)"; do
	printf "%-34s %.2fx hello (%s req/s)\n" "$k" "$(echo "${RPS[$k]} $HELLO" | awk '{print $1/$2}')" "$HELLO"
done
