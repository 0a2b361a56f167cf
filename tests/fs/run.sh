#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh MAPTBL FRAGMENT TEST.sh: runs one filesystem test, then checks that it left no loop
# device, device-mapper device or mount of its own behind (even when it failed).
# This used to leave a loop device attached: attach() ran in a subshell, so the cleanup never
# saw it.
# Each run has its own tag (in lib.sh's work directory and device-mapper names), so that two runs
# at once (two build trees, or a session beside CI) do not blame each other's devices.
export MAPTBL=$(readlink -f "$1") FRAGMENT=$(readlink -f "$2")
export MAPTBL_FS_TAG=r$$
bash "$3"
rc=$?
left=$( (losetup -a; dmsetup ls 2>/dev/null; grep maptbl-fs /proc/mounts) |
	grep -E "maptbl-fs\.$MAPTBL_FS_TAG\.|maptbl_fs_$MAPTBL_FS_TAG" )
if [ -n "$left" ]; then
	echo "FAIL: left behind:"
	echo "$left"
	exit 1
fi
exit $rc
