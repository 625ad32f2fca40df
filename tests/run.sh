#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tests/run.sh JOBS TEST_PROGRAM... - what `make test` runs.
#
# Runs every test program (Criterion), each with JOBS tests at a time,
# even when an earlier one failed, and ends with one line summed over all
# of them:
#
#	412 passed, 0 failed, 6 skipped
#
# then, when something failed, the programs that did. A program that dies
# without writing its report counts as one failure. Exit status 0 only
# when nothing failed.
set -u
jobs=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/evring-tests.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM

passed=0 failed=0 skipped=0 bad=""
for t in "$@"; do
	name=$(basename "$t")
	echo "== $name"
	"$t" --jobs "$jobs" --short-filename --json="$dir/$name.json"
	rc=$?
	# the report's first four numbers are the program's totals
	counts=$(sed -n 's/^  "\(passed\|failed\|errored\|skipped\)": \([0-9]*\),$/\2/p' \
		"$dir/$name.json" 2>/dev/null | head -n 4 | tr '\n' ' ')
	read -r p f e s <<-END
		$counts
	END
	if [ -z "${s:-}" ]; then
		echo "$name: no report (exit status $rc): counted as a failure"
		failed=$((failed + 1))
		bad="$bad $name"
		continue
	fi
	passed=$((passed + p))
	failed=$((failed + f + e))
	skipped=$((skipped + s))
	if [ $((f + e)) -ne 0 ] || [ $rc -ne 0 ]; then
		[ $((f + e)) -ne 0 ] || failed=$((failed + 1))
		bad="$bad $name"
	fi
done
echo "$passed passed, $failed failed, $skipped skipped"
if [ -n "$bad" ]; then
	echo "FAILED:$bad"
	exit 1
fi
