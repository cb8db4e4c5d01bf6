#!/usr/bin/env bash
# login.sh — USB-key logins per second through nginx, with an SM2 and an RSA
# key (each bound first), on a throw-away suite. Reports; never fails on time.
# Usage: tests/bench/login.sh [SECONDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
THREADS=${2:-16}
PY=/usr/bin/python3
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
# Whatever happens from here on (a failed start included), stop what was
# started and remove the directory.
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null 2>&1; rm -rf "$STATE"' EXIT
$PY tests/bench/suite_up.py up "$STATE" --bind > "$STATE/env"
# shellcheck disable=SC1091
. "$STATE/env"
echo "machine: $(nproc) cores; $THREADS client threads on the same cores; ${DUR}s each"
for alg in sm2 rsa; do
	key=LOCK_${alg^^}
	build/bin/loginbench 127.0.0.1 "$GATEWAY_PORT" "${!key}.key.pem" "${!key}.cert.pem" "$THREADS" "$DUR"
done
echo "openssl speed (one core) for comparison:"
openssl speed -seconds 2 rsa2048 2>/dev/null | grep -E "^rsa 2048" || true
openssl speed -seconds 2 sm2 2>/dev/null | grep -iE "^ *256 bits SM2|SM2" | tail -1 || true
