#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# libmaptbl-hw's asynchronous queue API (maptbl_hw_queue_post/submit/reap) on a VF of maptbl-emu
# made from a fragmented file with holes on a loop-mounted ext4: many requests in flight, reaping
# one at a time and in batches over many ring wraps, the ring-full limit, bad requests, and a
# write to a hole that stalls and holds back the requests behind it (the device runs a VF's
# requests in ring order) until the host fails the fault. The checks are in aio.c.
# Needs root and loop devices; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} FRAGMENT=${MAPTBL_FRAGMENT:?} AIO=${MAPTBL_TEST_AIO:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_root_and_loop
need_fs ext4

BS=4096
mkfs_mount ext4 64M fs -b $BS
"$FRAGMENT" "$MNT/vm.img" "$MNT/other" 256 $BS || exit 1
for b in 10 11 100; do
	fallocate -p -o $((b * BS)) -l $BS "$MNT/vm.img" || exit 1
done
sync

SOCK=$WORK/emu.sock
# --inline 0: the processing thread serves every request, so the driver really waits for
# completions (with the default the emulator serves them before it answers the doorbell write).
start_emu "$WORK/fs.img" "$SOCK" --inline 0
export MAPTBL_DEV=emu:$SOCK
vf=$("$MAPTBL" vf create "$MNT/vm.img")
check "vf create prints VF 1" [ "$vf" = 1 ]
"$AIO" "emu:$SOCK" 1 "$MNT/vm.img" 100
check "maptbl-test-aio: every check passed" [ $? = 0 ]
"$MAPTBL" vf stats 1 >"$WORK/stats"
check "the device counted the requests" grep -Eq "requests *[0-9]{4,}" "$WORK/stats"
check "and the refused fault" grep -q "faults *1$" "$WORK/stats"
[ $FAILED = 0 ] || { echo "--- emulator log"; tail -n 30 "$WORK/emu.log"; }
exit $FAILED
