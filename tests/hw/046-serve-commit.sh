#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Allocations are committed at the VM's flush (REGISTERS.md §12.6): the fault service maps what it
# allocated and zeroed without syncing the backing file, sets the VF's CTRL.COMMIT, and the VF's
# next flush stalls on a COMMIT fault until the service has synced the file. Crash images prove
# what is durable: a copy of the host filesystem's image taken while it is mounted is what its
# disk holds at that moment (the loop device writes into that file; the device writes the VM's
# blocks there too), and mounting the copy replays its journal as after a power cut.
# On loop-mounted ext4 (commit=600: its journal commits only when asked) and XFS, through nbdfuse:
#  - a direct write into a hole of the VF is served (a write fault), and no COMMIT fault comes
#    before the VM flushes;
#  - ext4: a crash image taken before the VM's flush does not have the VM's data in the file
#    (the commit really is deferred, and this check can see a commit that did not happen);
#  - the VM's flush (fsync of the nbdfuse file: NBD FLUSH) is answered with a COMMIT fault, served
#    ("committed": true), and completes;
#  - a crash image taken after the flush has the VM's data in the file, read through the
#    filesystem after journal (log) recovery: what the VM flushed survives a host crash;
#  - a second flush with nothing new allocated completes without a COMMIT fault;
#  - the service stopped with an allocation not yet committed commits it on the way out: a crash
#    image after SIGTERM has the data, and a later flush completes with no service running.
# Needs root, loop devices, FUSE (nbdfuse), nbdkit and mkfs.xfs; skips (77) without.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse
need_fs ext4
need_fs xfs

M=$((1024 * 1024))

# crash_read FSTYPE FSIMG OFFSET LEN OUT: copy FSIMG (the disk as it is now), mount the copy
# (journal recovery), write LEN bytes of vm.img at OFFSET to OUT (nothing when it is missing).
crash_read() {
	local fs=$1 img=$2 snap=$WORK/crash.img dev mnt=$WORK/crash opts=
	cp --sparse=always "$img" "$snap"
	dev=$(losetup -f --show "$snap") || return 1
	LOOPS+=("$dev")
	mkdir -p "$mnt"
	[ "$fs" = xfs ] && opts=-onouuid
	mount $opts "$dev" "$mnt" || { losetup -d "$dev"; return 1; }
	file_range "$mnt/vm.img" "$3" "$4" >"$5" 2>/dev/null
	umount "$mnt"
	losetup -d "$dev"
	rm -f "$snap"
}
commits() { grep -c '"reason": "commit", .*"committed": true' "$SERVE_LOG"; }

run() { # run FSTYPE SIZE MOUNT_OPTIONS [mkfs options]
	local fs=$1 size=$2 mopts=$3 i
	shift 3
	echo "--- $fs"
	truncate -s "$size" "$WORK/$fs.img"
	attach "$WORK/$fs.img"
	"mkfs.$fs" -q "$@" "$DEV" >/dev/null || { echo "mkfs.$fs failed"; exit 1; }
	MNT=$WORK/$fs
	mkdir -p "$MNT"
	mount -o "$mopts" "$DEV" "$MNT" || { echo "mount failed"; exit 1; }
	MOUNTS+=("$MNT")
	truncate -s 8M "$MNT/vm.img"
	sync -f "$MNT/vm.img" # the empty file is on the disk: only the VM's writes are not
	served_vf "$fs" "$WORK/$fs.img" "$MNT/vm.img"

	head -c $M /dev/urandom >"$WORK/a"
	dd if="$WORK/a" of="$VFDEV" bs=256K oflag=direct conv=notrunc status=none
	check "$fs: a direct write into a hole completes" [ $? = 0 ]
	check "$fs: ... served as a write fault" grep -q '"result": "served", "write": true, "reason": "hole"' "$SERVE_LOG"
	check "$fs: ... and no COMMIT fault came before a flush" [ "$(commits)" = 0 ]
	if [ "$fs" = ext4 ]; then
		# Another test's sync(2) may commit every journal of the machine meanwhile: the
		# deferral must show in one of three tries (each a new 1 MiB write into a hole).
		local deferred=0
		for i in 0 2 4; do
			[ $i = 0 ] || dd if="$WORK/a" of="$VFDEV" bs=256K seek=$((i * 4)) oflag=direct \
				conv=notrunc status=none
			crash_read "$fs" "$WORK/$fs.img" $((i * M)) $M "$WORK/before"
			cmp -s "$WORK/before" "$WORK/a" || { deferred=1; break; }
		done
		check "$fs: a crash before the VM's flush loses the unflushed write (the commit waits)" \
			[ $deferred = 1 ]
	fi

	sync "$VFDEV"
	check "$fs: the VM's flush completes" [ $? = 0 ]
	check "$fs: ... after a COMMIT fault the service answered" [ "$(commits)" = 1 ]
	check "$fs: no fault failed" [ "$(grep -c '"result": "failed"' "$SERVE_LOG")" = 0 ]
	crash_read "$fs" "$WORK/$fs.img" 0 $M "$WORK/after"
	check "$fs: a crash after the VM's flush keeps the VM's data (journal recovered)" \
		cmp "$WORK/after" "$WORK/a"
	sync "$VFDEV"
	check "$fs: a second flush, nothing allocated since: no COMMIT fault" [ "$(commits)" = 1 ]

	# An allocation not committed when the service stops: it commits on the way out.
	head -c $M /dev/urandom >"$WORK/b"
	dd if="$WORK/b" of="$VFDEV" bs=256K seek=24 oflag=direct conv=notrunc status=none
	check "$fs: a write into a hole at 6 MiB completes" [ $? = 0 ]
	stop "$SERVE_PID"
	crash_read "$fs" "$WORK/$fs.img" $((6 * M)) $M "$WORK/after"
	check "$fs: the service stopped: a crash now keeps that write too" cmp "$WORK/after" "$WORK/b"
	timeout 10 sync "$VFDEV"
	check "$fs: ... and a flush completes with no service (COMMIT was cleared)" [ $? = 0 ]
	run_down "$WORK/$fs.fuse"
}

run ext4 64M commit=600 -b 4096
run xfs 320M defaults
[ $FAILED = 0 ] || { cat "$WORK"/*.serve.log "$WORK/serve.err"; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
