#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-bounded.sh BUILD_DIR SECONDS
#
# Runs each libFuzzer target of BUILD_DIR (configured with -DCMAKE_C_COMPILER=clang
# -DMAPTBL_FUZZ=ON and built) for SECONDS seconds on a scratch copy of the seed corpus and the
# regression inputs, in one process each (the machine may be shared). The committed corpus is
# never written. Exits 1 when a fuzzer crashes, leaks, times out or fails a check; the crashing
# input is kept in BUILD_DIR/fuzz-artifacts/<target>/ (add it to tests/fuzz/regress/<target>/ with
# a note once fixed). Exits 2 on usage errors.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)
case $secs in
'' | *[!0-9]*)
	echo "$0: SECONDS must be a whole number" >&2
	exit 2
	;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/maptbl-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for t in open extents stats device; do
	bin=$build/tests/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "$0: $bin not found: configure with -DMAPTBL_FUZZ=ON and build it" >&2
		exit 2
	fi
	mkdir -p "$tmp/$t"
	for d in "$here/corpus/$t" "$here/regress/$t"; do
		[ -d "$d" ] || continue
		find "$d" -maxdepth 1 -type f ! -name '*.md' ! -name '*.txt' ! -name '.*' \
			-exec cp {} "$tmp/$t/" \;
	done
	art=$build/fuzz-artifacts/$t
	mkdir -p "$art"
	echo "== fuzz_$t: $secs s on $(find "$tmp/$t" -type f | wc -l) seeds"
	# -max_len: the largest seed is 20 KiB; leave room for growth without slowing every run.
	if "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -max_len=32768 \
		-print_final_stats=1 -artifact_prefix="$art/" "$tmp/$t" >"$tmp/$t.log" 2>&1; then
		grep -E '^stat::number_of_executed_units|^Done|^#[0-9]+.*DONE' "$tmp/$t.log" || true
	else
		status=1
		echo "fuzz_$t FAILED; the log ends with:" >&2
		tail -n 60 "$tmp/$t.log" >&2
		echo "artifacts kept in $art:" >&2
		ls -l "$art" >&2
	fi
done
exit $status
