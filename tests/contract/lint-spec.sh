#!/usr/bin/env bash
# Lints proto/openapi.yaml (or the file given) with the Redocly CLI pinned in
# tests/contract/package-lock.json and the rules of tests/contract/redocly.yaml.
# Installs the linter first (npm ci) when it is missing. Exit 0 only when clean.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spec="$(realpath "${1:-$here/../../proto/openapi.yaml}")"
cd "$here"
if [ ! -x node_modules/.bin/redocly ]; then
	command -v npm >/dev/null || {
		echo "lint-spec: npm is missing (deploy/scripts/install-deps.sh installs it)" >&2
		exit 1
	}
	npm ci --no-audit --no-fund --loglevel=error
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec node_modules/.bin/redocly lint --config redocly.yaml --format=codeframe "$spec"
