#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The write path end to end (issue #7 §4), on an ext4 and on an XFS host filesystem: a VF on a
# sparse file, served by `maptbl vf serve`; through the nbdkit plugin, nbdfuse and a loop device,
# mkfs.ext4 on the VF (the nested filesystem), a tree copied in (a slice of /usr/share/doc),
# unmounted, `e2fsck -fn` clean. Then, with the VF gone, the host file itself, loop-mounted
# read-only, shows the same tree with the same bytes (diff -r). Every block the nested
# filesystem wrote went through a write fault the service answered or into blocks it allocated.
# nbdfuse (not qemu-nbd/nbd-client: no kernel nbd module needed, and it is what 010 uses) gives
# a file; a loop device on that file gives the block device mkfs and mount need.
# Needs root, loop devices, FUSE (nbdfuse), nbdkit, mkfs.xfs and e2fsck; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse e2fsck diff
need_fs ext4
need_fs xfs

# The nested mount and its loop device go before the FUSE mount under them.
NESTED_MNT= NESTED_DEV=
e2e_cleanup() {
	[ -n "$NESTED_MNT" ] && umount "$NESTED_MNT" 2>/dev/null
	[ -n "$NESTED_DEV" ] && losetup -d "$NESTED_DEV" 2>/dev/null
	hw_cleanup
}
trap e2e_cleanup EXIT

# The tree: the first 80 entries of /usr/share/doc (about 8 MiB), or what there is.
SRC=/usr/share/doc
[ -d "$SRC" ] || skip "no $SRC"
TREE=$(cd "$SRC" && ls | head -80)

run() { # run FSTYPE SIZE [mkfs options]
	local fs=$1 size=$2
	shift 2
	echo "--- $fs host"
	mkfs_mount "$fs" "$size" "$fs" "$@"
	local img=$MNT/vm.img nested=$WORK/$fs.nested view=$WORK/$fs.view log
	truncate -s 64M "$img"
	served_vf "$fs" "$WORK/$fs.img" "$img"
	log=$SERVE_LOG
	NESTED_DEV=$(losetup -f --show "$VFDEV") || { echo "losetup on the VF failed"; exit 1; }
	mkfs.ext4 -q -F "$NESTED_DEV" >"$WORK/mkfs.out" 2>&1
	check "$fs: mkfs.ext4 on the VF" [ $? = 0 ]
	mkdir -p "$nested"
	mount "$NESTED_DEV" "$nested" && NESTED_MNT=$nested
	check "$fs: the nested filesystem mounts" [ -n "$NESTED_MNT" ]
	(cd "$SRC" && cp -a $TREE "$nested/")
	check "$fs: the tree is copied into the nested filesystem" [ $? = 0 ]
	umount "$nested" && NESTED_MNT=
	check "$fs: the nested filesystem unmounts" [ -z "$NESTED_MNT" ]
	e2fsck -fn "$NESTED_DEV" >"$WORK/fsck.out" 2>&1
	check "$fs: e2fsck -fn of the nested filesystem is clean" [ $? = 0 ]
	losetup -d "$NESTED_DEV" && NESTED_DEV=
	fusermount3 -u "$WORK/$fs.fuse"
	FUSES=()
	check "$fs: no fault failed" [ "$(grep -c '"result": "failed"' "$log")" = 0 ]
	echo "$fs: $(grep -c '"result": "served"' "$log") faults served"
	stop "${PIDS[@]}"
	PIDS=()
	# The host file itself, through the host filesystem (its page cache dropped: the device
	# wrote the disk underneath it).
	drop_cached "$img"
	mkdir -p "$view"
	mount -o loop,ro "$img" "$view" && MOUNTS+=("$view")
	check "$fs: the host file loop-mounts" mountpoint -q "$view"
	(cd "$SRC" && for e in $TREE; do diff -r --no-dereference "$e" "$view/$e" || exit 1; done)
	check "$fs: the host file shows the same tree with the same bytes (diff -r)" [ $? = 0 ]
	umount "$view"
	unset 'MOUNTS[-1]'
	umount "$MNT"
	MOUNTS=()
}

run ext4 256M -b 4096
run xfs 320M
[ $FAILED = 0 ] || { cat "$WORK/mkfs.out" "$WORK/fsck.out" "$WORK/serve.err"; tail -n 5 "$WORK"/*.serve.log; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
