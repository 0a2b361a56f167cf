#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh MAPTBL TESTDIR [--update]: runs TESTDIR/test.sh in a temporary directory with $MAPTBL
# set to the command under test, and compares its output (stdout and stderr, in order) with
# TESTDIR/expected. --update rewrites expected (review the diff before committing it).
set -u
MAPTBL=$(readlink -f "$1")
dir=$(readlink -f "$2")
update=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MAPTBL SRCDIR=$(readlink -f "$dir/../../..") TESTDIR=$dir LC_ALL=C
cd "$work"
bash "$dir/test.sh" >"$work/.out" 2>&1
rc=$?
if [ "$rc" = 77 ]; then
	cat "$work/.out"
	exit 77
fi
if [ "$rc" != 0 ]; then
	cat "$work/.out"
	echo "FAIL: test.sh exited with status $rc"
	exit 1
fi
if [ "$update" = --update ]; then
	cp "$work/.out" "$dir/expected"
	exit 0
fi
if ! diff -u "$dir/expected" "$work/.out"; then
	echo "FAIL: output differs from $dir/expected"
	exit 1
fi
exit 0
