#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The fault service on a full filesystem (issue #7 §2, §4): a VF larger than the free space of a
# small loop-mounted ext4. Writes of 1 MiB chunks through the nbdkit plugin and nbdfuse go on
# until the filesystem is full; then the VM's write fails (the device completed it with NO_SPACE
# after the service failed the fault with ENOSPC; NBD carries it as ENOSPC), and:
#  - every chunk written before is in the file, byte for byte (nothing lost);
#  - the service logged the failure as ENOSPC, and no VF is left stalled;
#  - writes to blocks already allocated still work afterwards;
#  - the host filesystem is clean (e2fsck -fn).
# Needs root, loop devices, FUSE (nbdfuse) and nbdkit; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse e2fsck
need_fs ext4

M=$((1024 * 1024))
mkfs_mount ext4 32M fs -b 4096
IMG=$MNT/vm.img
truncate -s 64M "$IMG"
served_vf full "$WORK/fs.img" "$IMG" # a 64 MiB VF on a 32 MiB filesystem
LOG=$SERVE_LOG

head -c $((48 * M)) /dev/urandom >"$WORK/src"
ok=0 failed_at=
for i in $(seq 0 47); do
	if dd if="$WORK/src" of="$VFDEV" bs=1M skip=$i seek=$i count=1 conv=notrunc,fsync \
		status=none 2>"$WORK/dd.err"; then
		ok=$((ok + 1))
	else
		failed_at=$i
		break
	fi
done
echo "chunks written: $ok, failed at: ${failed_at:-none}"
cat "$WORK/dd.err"
check "the filesystem filled up: a write failed" [ -n "$failed_at" ]
check "the VM's write failed with ENOSPC (NO_SPACE through NBD)" grep -qi "no space left on device" "$WORK/dd.err"
check "more than half of the free space was written first ($ok MiB)" [ "$ok" -ge 12 ]
check "the service failed a fault with ENOSPC" grep -q '"result": "failed".*"errno": "ENOSPC"' "$LOG"
check "no VF is left stalled" sh -c "! '$MAPTBL' vf list | grep -q stalled"

# Rewrite chunk 0 (allocated): still works on a full filesystem.
head -c $M /dev/urandom >"$WORK/again"
dd if="$WORK/again" of="$VFDEV" bs=1M count=1 conv=notrunc,fsync status=none
check "a write to allocated blocks works on the full filesystem" [ $? = 0 ]
drop_cached "$IMG"
check "every chunk written before the failure is in the file" \
	cmp <(file_range "$IMG" $M $(((ok - 1) * M))) <(file_range "$WORK/src" $M $(((ok - 1) * M)))
check "the rewritten chunk is in the file" cmp <(file_range "$IMG" 0 $M) "$WORK/again"
fusermount3 -u "$WORK/full.fuse"
FUSES=()
stop "${PIDS[@]}"
PIDS=()
umount "$MNT"
MOUNTS=()
e2fsck -fn "$WORK/fs.img" >"$WORK/fsck" 2>&1
check "the host filesystem is clean (e2fsck -fn)" [ $? = 0 ]
[ $FAILED = 0 ] || { cat "$LOG" "$WORK/serve.err" "$WORK/fsck"; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
