#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The fault service (issue #7 §2, §3): maptbl vf serve answers the write faults of a VF on a
# sparse file, on loop-mounted ext4 and XFS. Through the nbdkit plugin and nbdfuse:
#  - a write into a hole and one into an unwritten (fallocated) range land in the file (read back
#    through the filesystem after its cached pages were dropped);
#  - a write past the end of the file grows it to exactly the end of that write (the size follows
#    the highest block written; such writes fault once per request);
#  - a sequential write of 4 MiB into a hole faults once per allocation, not per request, and the
#    allocations double while the write goes on (1, 2, 4 MiB: allocation ahead);
#  - the last block of the VF is served (the allocation is clipped to the virtual size);
#  - the whole VF read back equals the file padded to the virtual size; no VF is left stalled.
# Needs root, loop devices, FUSE (nbdfuse), nbdkit and mkfs.xfs; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse nbdcopy
need_fs ext4
need_fs xfs

K=1024 M=$((1024 * 1024))
run() { # run FSTYPE SIZE [mkfs options]
	local fs=$1 size=$2
	shift 2
	echo "--- $fs"
	mkfs_mount "$fs" "$size" "$fs" "$@"
	local img=$MNT/vm.img
	truncate -s 16M "$img"
	head -c $((64 * K)) /dev/urandom >"$WORK/head"
	dd if="$WORK/head" of="$img" conv=notrunc status=none
	fallocate -o $((4 * M)) -l $M "$img"
	sync
	served_vf "$fs" "$WORK/$fs.img" "$img" --size 24M # a 24 MiB VF on a 16 MiB file
	local log=$SERVE_LOG

	head -c $((64 * K)) /dev/urandom >"$WORK/a"
	head -c $((128 * K)) /dev/urandom >"$WORK/b"
	head -c $((64 * K)) /dev/urandom >"$WORK/c"
	head -c $((4 * M)) /dev/urandom >"$WORK/seq"
	head -c 4096 /dev/urandom >"$WORK/last"
	dd if="$WORK/a" of="$VFDEV" bs=64K seek=17 conv=notrunc,fsync status=none
	check "$fs: a write into a hole completes" [ $? = 0 ]
	dd if="$WORK/b" of="$VFDEV" oflag=seek_bytes seek=$((4 * M + 8 * K)) conv=notrunc,fsync status=none
	check "$fs: a write into an unwritten range completes" [ $? = 0 ]
	dd if="$WORK/seq" of="$VFDEV" bs=256K oflag=seek_bytes seek=$((8 * M)) conv=notrunc,fsync status=none
	check "$fs: a sequential 4 MiB write into a hole completes" [ $? = 0 ]
	dd if="$WORK/c" of="$VFDEV" oflag=seek_bytes seek=$((20 * M)) conv=notrunc,fsync status=none
	check "$fs: a write past the end of the file completes" [ $? = 0 ]
	check "$fs: the file grew to exactly the end of that write" \
		[ "$(stat -c %s "$img")" = $((20 * M + 64 * K)) ]
	dd if="$WORK/last" of="$VFDEV" oflag=seek_bytes seek=$((24 * M - 4096)) conv=notrunc,fsync status=none
	check "$fs: a write to the last block of the VF completes; the file is 24 MiB" \
		[ "$(stat -c %s "$img")" = $((24 * M)) ]

	drop_cached "$img"
	check "$fs: the hole write is in the file" cmp <(file_range "$img" $((17 * 64 * K)) $((64 * K))) "$WORK/a"
	check "$fs: the unwritten-range write is in the file" \
		cmp <(file_range "$img" $((4 * M + 8 * K)) $((128 * K))) "$WORK/b"
	check "$fs: the sequential write is in the file" cmp <(file_range "$img" $((8 * M)) $((4 * M))) "$WORK/seq"
	check "$fs: the write past the old end is in the file" \
		cmp <(file_range "$img" $((20 * M)) $((64 * K))) "$WORK/c"
	check "$fs: the last block is in the file" cmp <(file_range "$img" $((24 * M - 4096)) 4096) "$WORK/last"
	check "$fs: the data written before the VF existed is intact" \
		cmp <(file_range "$img" 0 $((64 * K))) "$WORK/head"
	check "$fs: bytes between the writes read as zeros" \
		cmp <(file_range "$img" $((12 * M)) $((4 * M))) <(head -c $((4 * M)) /dev/zero)

	nbdcopy "$NBDURI" "$WORK/vf.out"
	check "$fs: the whole VF read back equals the file" cmp "$WORK/vf.out" "$img"
	local nseq
	nseq=$(awk -F'"lba": ' '{ split($2, a, ","); l = a[1] } /"result": "served"/ && l * bs >= 8 * 1048576 && l * bs < 12 * 1048576 { n++ } END { print n + 0 }' \
		bs="$(stat -f -c %S "$MNT")" "$log")
	# 1 MiB, then (sequential: where the last allocation ended) 2 MiB, then 4 MiB: allocation ahead.
	check "$fs: the 4 MiB sequential write took 3 faults ($nseq): 1, 2, 4 MiB allocated ahead" [ "$nseq" = 3 ]
	check "$fs: no fault failed" [ "$(grep -c '"result": "failed"' "$log")" = 0 ]
	# vf create builds a writable VF's table with room: no fault had to compact it (every VF's
	# first fault did before).
	check "$fs: no fault compacted the table" [ "$(grep -c '"compacted": true' "$log")" = 0 ]
	check "$fs: the service logged the growth" grep -q '"grew": true' "$log"
	check "$fs: the service logged the unwritten fault" grep -q '"reason": "unwritten"' "$log"
	check "$fs: no VF is left stalled" sh -c "! '$MAPTBL' vf list | grep -q stalled"
	"$MAPTBL" vf stats 1 | grep faults
	run_down "$WORK/$fs.fuse"
}

run ext4 64M -b 4096
run xfs 320M
[ $FAILED = 0 ] || { cat "$WORK"/*.serve.log "$WORK/serve.err"; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
