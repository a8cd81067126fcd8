#!/bin/sh
# Run a libFuzzer harness for a bounded time over its seed corpus.  New inputs
# go to a scratch copy, never into the source tree.
# A crash, leak or timeout exits 1: libFuzzer's own code for them is 77 (and 70 for a
# timeout), which meson counts as a skip, not a failure.
# Usage: run-fuzzer.sh FUZZER SEED_DIR SECONDS
set -eu
fuzzer=$1
seeds=$2
secs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
[ -d "$seeds" ] && cp -r "$seeds/." "$work/corpus/"
cd "$work"
exec "$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 \
	"$work/corpus"
