#!/usr/bin/env bash
# notices.sh — auth's notice pipeline (issue 17) on a throw-away suite
# (tests/bench/suite_up.py): N notices (default 5000) accepted into the
# inbox and the SMS table, then sent through the local provider; beside it
# the bus's own cost per event (tests/bench/notices.py). Reports; never fails.
# Usage: tests/bench/notices.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5000}
PY=/usr/bin/python3
make -s all
STATE=$(mktemp -d /tmp/caplat-bench.XXXXXX)
chmod 755 "$STATE"
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
# every notice goes to its own number, well under the hourly limit
CAPLAT_SMS_DELIVERY_MS=100 $PY tests/bench/suite_up.py up "$STATE" > "$STATE/env"
trap '$PY tests/bench/suite_up.py down "$STATE" >/dev/null' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$PY tests/bench/notices.py "$STATE" "$N"
