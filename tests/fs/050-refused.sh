#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a device must not be given a table for is refused with a one-line message that names the
# layer or the problem, and no table: a file on tmpfs (no block device: status 1), a directory
# (status 1), a missing file (status 3).
. "$(dirname "$0")/lib.sh"
need_root_and_loop

mkdir -p "$WORK/tmpfs"
if mount -t tmpfs -o size=16M tmpfs "$WORK/tmpfs" 2>/dev/null; then
	MOUNTS+=("$WORK/tmpfs")
	dd if=/dev/urandom of="$WORK/tmpfs/f" bs=64K count=4 status=none
	out=$("$MAPTBL" build "$WORK/tmpfs/f" -o "$WORK/t.mtb" 2>&1)
	check "tmpfs: refused with status 1" test $? = 1
	check "tmpfs: the message names tmpfs" grep -q "on tmpfs, which has no block device" <<<"$out"
	check "tmpfs: no table" test ! -e "$WORK/t.mtb"
	echo "  $out"
fi
out=$("$MAPTBL" build "$WORK" -o "$WORK/d.mtb" 2>&1)
check "a directory: refused with status 1" test $? = 1
echo "  $out"
out=$("$MAPTBL" build "$WORK/missing" -o "$WORK/m.mtb" 2>&1)
check "a missing file: status 3" test $? = 3
echo "  $out"
check "no table written" test ! -e "$WORK/d.mtb" -a ! -e "$WORK/m.mtb"
finish
