#!/usr/bin/env bash
# run.sh BUILD SECONDS TARGET… — runs each libFuzzer harness BUILD/fuzz/fuzz_TARGET
# for SECONDS on its seed corpus tests/fuzz/corpus/TARGET plus what earlier
# runs found (BUILD/corpus/TARGET; the seeds in git stay as they are),
# and prints its executions. A crash, leak or timeout leaves the input in
# BUILD/artifacts/TARGET/, prints the end of the log and fails the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1 secs=$2
shift 2
fail=0
for t in "$@"; do
	bin=$build/fuzz/fuzz_$t log=$build/fuzz_$t.log
	work=$build/corpus/$t art=$build/artifacts/$t/
	mkdir -p "$work" "$art"
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art" \
		"$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
	printf 'fuzz_%-10s %10s executions in %s s, %s, exit %d\n' "$t" \
		"${execs:-?}" "$secs" "${cov:-cov: ?}" "$rc"
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$log"
		fail=1
	fi
done
exit $fail
