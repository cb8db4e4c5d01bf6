#!/usr/bin/env bash
# Installs the Debian packages caplat needs to build, run and test, if any is
# missing. As root it runs apt-get; otherwise it prints the exact command.
set -euo pipefail
PKGS=(build-essential pkg-config python3 curl openssl ca-certificates
	libevent-dev libhiredis-dev libpq-dev libssl-dev libjansson-dev
	libnats-dev libcmocka-dev python3-yaml python3-jsonschema python3-cryptography
	postgresql redis-server nats-server nginx docker-compose wrk
	clang libclang-rt-dev
	prometheus
	libtesseract-dev libleptonica-dev tesseract-ocr-chi-sim tesseract-ocr-eng
	fonts-noto-cjk python3-pil
	python3-aiosmtpd)
# Tesseract (C API) with its Chinese and English models and Leptonica read
# business licences in enterprise (issue 20); the Noto CJK fonts and PIL
# draw the synthetic licences of the tests (tests/tools/licence_gen.py).
# python3-aiosmtpd: the tests' SMTP server (tests/smtpsink/, issue 18's
# invoice e-mails).
# clang and its runtimes (libFuzzer, ASan, UBSan; only a Recommends of clang)
# build the fuzz harnesses of tests/fuzz (make fuzz). prometheus brings
# promtool: tests/integration/test_monitoring.py checks deploy/monitoring.
# gnutls-bin: certtool, the second independent verifier of the certificate
# chains the local CA issues (tests/integration/test_issuance_new_application.py).
PKGS+=(gnutls-bin)
# libcurl4-openssl-dev: payments sends the invoice e-mails with libcurl's SMTP
# client (issue 18).
PKGS+=(libcurl4-openssl-dev)
# Benchmark-only, deliberately not installed here (nor in CI): golang-cfssl
# (the same-run reference signer) and linux-perf (PERF=dir profiles), which
# tests/bench/renewals installs itself when missing.
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the OpenAPI linter (tests/contract/). A Node.js from
# elsewhere (its own npm included) does as well as Debian's.
command -v npm >/dev/null || missing+=(nodejs npm)
# The linter itself, as pinned in tests/contract/package-lock.json.
contract_deps() {
	local dir
	dir="$(cd "$(dirname "$0")/../../tests/contract" && pwd)"
	[ -x "$dir/node_modules/.bin/redocly" ] && return 0
	echo "installing the OpenAPI linter (npm ci in $dir)" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}
if [ ${#missing[@]} -eq 0 ]; then
	contract_deps
	exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "caplat needs these Debian packages; run as root:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Package scripts may try to start the system services (redis, nginx, postgres);
# caplat runs its own instances, so stop them from starting here.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
contract_deps
