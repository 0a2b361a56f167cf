#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Zeroing ahead (issue #7 §5, REGISTERS.md §12.2): while a VM writes a sparse VF front to back,
# the fault service's thread allocates and zeroes the ranges of the writer's next two faults, and
# a fault on a prepared range only maps it. On loop-mounted ext4 and XFS, through nbdfuse, with
# the thread held back (MAPTBL_SERVE_AHEAD_DELAY_MS) so that the writer catches up with it:
#  - a fault on a range the thread is still zeroing waits for it ("waited": true), is served,
#    and the file reads back the VM's data there, not the zeros (after its cached pages were dropped);
#  - the whole 12 MiB write is in the file; the ranges zeroed ahead but not written read zeros,
#    through the file and through the VF (the whole VF equals the file);
#  - after the service, filefrag shows no unwritten extent in what the VM wrote nor in what the
#    thread zeroed: the filesystem records all of it as written data;
#  - a range the thread prepared, read by the host (its zeros cached), then written by the VM:
#    the host reads the VM's data without a drop_caches (the fault drops the cached zeros);
#  - SIGTERM while the thread has a range to zero: the service ends (exit 0) and joins it, and a
#    service started again serves a write into that range (it lands in the file).
# Needs root, loop devices, FUSE (nbdfuse), nbdkit, filefrag and mkfs.xfs; skips (77) without.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse
need_fs ext4
need_fs xfs
command -v filefrag >/dev/null || { echo "SKIP: no filefrag (e2fsprogs)"; exit 77; }

M=$((1024 * 1024))
# extents_in FILE FROM_MIB TO_MIB: per extent of FILE (filefrag -v) that overlaps the range,
# "BYTES_IN_RANGE UNWRITTEN(0/1)".
extents_in() {
	local bs
	bs=$(stat -f -c %S "$1")
	filefrag -v "$1" | awk -v a=$(($2 * M)) -v b=$(($3 * M)) -v bs="$bs" '
		{ line = $0 }
		sub(/^ *[0-9]+: */, "", line) { split(line, f, /[.: ]+/)
			s = f[1] * bs; e = (f[2] + 1) * bs; if (s < a) s = a; if (e > b) e = b
			if (e > s) print e - s, /unwritten/ ? 1 : 0 }'
}
# unwritten_in FILE FROM TO: extents flagged unwritten in the range; written_in: bytes written.
unwritten_in() { extents_in "$@" | awk '$2 { n++ } END { print n + 0 }'; }
written_in() { extents_in "$@" | awk '!$2 { n += $1 } END { printf "%d\n", n }'; }

run() { # run FSTYPE SIZE [mkfs options]
	local fs=$1 size=$2
	shift 2
	echo "--- $fs"
	mkfs_mount "$fs" "$size" "$fs" "$@"
	local img=$MNT/vm.img
	truncate -s 32M "$img"
	export MAPTBL_SERVE_AHEAD_DELAY_MS=400
	served_vf "$fs" "$WORK/$fs.img" "$img"
	local log=$SERVE_LOG

	head -c $((12 * M)) /dev/urandom >"$WORK/seq"
	# Faults at 0 (1 MiB), 1 (2 MiB: sequential, the thread gets 3..7 and 7..15), 3 (waits).
	dd if="$WORK/seq" of="$VFDEV" bs=256K conv=notrunc,fsync status=none
	check "$fs: a sequential 12 MiB write into a hole completes" [ $? = 0 ]
	check "$fs: no fault failed" [ "$(grep -c '"result": "failed"' "$log")" = 0 ]
	check "$fs: a fault waited for the thread zeroing its range" grep -q '"waited": true' "$log"
	local wlba
	wlba=$(grep '"waited": true' "$log" | head -1 | grep -o '"lba": [0-9]*' | grep -o '[0-9]*$')
	echo "$fs: the first fault that waited: block $wlba"
	drop_cached "$img"
	check "$fs: the write is in the file (the VM's data, not the thread's zeros)" \
		cmp <(file_range "$img" 0 $((12 * M))) "$WORK/seq"
	check "$fs: what was zeroed ahead and not written reads zeros" \
		cmp <(file_range "$img" $((12 * M)) $((3 * M))) <(head -c $((3 * M)) /dev/zero)
	nbdcopy "$NBDURI" "$WORK/vf.out"
	check "$fs: the whole VF read back equals the file" cmp "$WORK/vf.out" "$img"
	check "$fs: no unwritten extent where the VM wrote (filefrag)" [ "$(unwritten_in "$img" 0 12)" = 0 ]
	check "$fs: ... all of it is written data" [ "$(written_in "$img" 0 12)" = $((12 * M)) ]
	check "$fs: none where the thread zeroed ahead (filefrag)" [ "$(unwritten_in "$img" 12 15)" = 0 ]
	check "$fs: ... all of it is written data" [ "$(written_in "$img" 12 15)" = $((3 * M)) ]

	# The thread prepares 15..31 (queued by the fault at 7 MiB); once it is done, the host reads
	# the zeros there into its page cache. The fault at 15 MiB only maps the prepared range, and
	# drops those cached zeros: the host then reads the VM's data without a drop_caches. It
	# also queues 31..32: SIGTERM below while the thread sleeps before zeroing that.
	for _ in $(seq 100); do [ "$(written_in "$img" 15 31)" = $((16 * M)) ] && break; sleep 0.1; done
	check "$fs: the thread made 15..31 MiB written data" [ "$(written_in "$img" 15 31)" = $((16 * M)) ]
	sleep 0.5 # its fdatasync and page cache drop
	file_range "$img" $((15 * M)) $((2 * M)) >/dev/null
	head -c $((2 * M)) /dev/urandom >"$WORK/more"
	dd if="$WORK/more" of="$VFDEV" bs=256K seek=60 conv=notrunc,fsync status=none
	check "$fs: the write at 15 MiB completes" [ $? = 0 ]
	check "$fs: ... the host reads it, not the zeros it had cached (no drop_caches)" \
		cmp <(file_range "$img" $((15 * M)) $((2 * M))) "$WORK/more"
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID"
	check "$fs: SIGTERM while the thread zeroes: the service exits 0" [ $? = 0 ]
	unset MAPTBL_SERVE_AHEAD_DELAY_MS
	start_serve "$log"
	head -c $((1 * M)) /dev/urandom >"$WORK/after"
	dd if="$WORK/after" of="$VFDEV" bs=256K seek=124 conv=notrunc,fsync status=none
	check "$fs: a service started again serves the write at 31 MiB" [ $? = 0 ]
	drop_cached "$img"
	check "$fs: ... it is in the file" cmp <(file_range "$img" $((31 * M)) $M) "$WORK/after"
	check "$fs: ... and so is the write before the SIGTERM" \
		cmp <(file_range "$img" $((15 * M)) $((2 * M))) "$WORK/more"
	check "$fs: no VF is left stalled" sh -c "! '$MAPTBL' vf list | grep -q stalled"
	run_down "$WORK/$fs.fuse"
}

run ext4 96M -b 4096
run xfs 320M
[ $FAILED = 0 ] || { cat "$WORK"/*.serve.log "$WORK/serve.err"; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
