# SPDX-License-Identifier: MIT
# Helpers for tests/hw/*.sh (sourced after tests/fs/lib.sh): background daemons (the emulator,
# nbdkit, nbdfuse) and FUSE mounts, all undone on exit whether the test passes or fails.
PIDS=()
FUSES=()

# stop PID...: SIGTERM, up to 3 s for all of them to exit, then SIGKILL (an nbdkit that hangs in
# its exit handlers, as with the sanitizer runtimes preloaded, must not hang the test).
stop() {
	local i p alive
	kill "$@" 2>/dev/null
	for i in $(seq 30); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	kill -9 "$@" 2>/dev/null
	for p in "$@"; do wait "$p" 2>/dev/null; done
	return 0
}

hw_cleanup() {
	local f
	for f in "${FUSES[@]}"; do fusermount3 -u "$f" 2>/dev/null; done
	[ ${#PIDS[@]} = 0 ] || stop "${PIDS[@]}"
	cleanup
}
trap hw_cleanup EXIT

# wait_socket PATH: up to 5 s for a daemon's socket.
wait_socket() {
	local i
	for i in $(seq 50); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	echo "no socket $1" >&2
	return 1
}

# start_emu DISK SOCKET [options]: the emulator in the foreground of a background job; its log
# is $WORK/emu.log. Sets EMU_PID.
start_emu() {
	local disk=$1 sock=$2
	shift 2
	"$EMU" --disk "$disk" --socket "$sock" --foreground "$@" 2>>"$WORK/emu.log" &
	EMU_PID=$!
	PIDS+=($EMU_PID)
	wait_socket "$sock" || exit 1
}

# start_nbd SOCKET VF NBDSOCK: the nbdkit plugin serving VF of the emulator at SOCKET.
start_nbd() {
	LD_PRELOAD="${MAPTBL_NBD_PRELOAD:-}" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" \
		nbdkit --exit-with-parent -f -U "$3" "$PLUGIN" dev="emu:$1" vf="$2" \
		2>>"$WORK/nbdkit.log" &
	PIDS+=($!)
	wait_socket "$3" || exit 1
}

# start_serve LOG [vf serve options]: the fault service (maptbl vf serve --json) in the
# background on $MAPTBL_DEV, its JSON lines in LOG; returns once it owns the fault queue (its
# pidfile exists). Sets SERVE_PID.
start_serve() {
	local log=$1 i
	shift
	rm -f "$WORK/serve.pid"
	"$MAPTBL" --json vf serve --pidfile "$WORK/serve.pid" "$@" >>"$log" 2>>"$WORK/serve.err" &
	SERVE_PID=$!
	PIDS+=($SERVE_PID)
	for i in $(seq 50); do
		[ -s "$WORK/serve.pid" ] && return 0
		kill -0 $SERVE_PID 2>/dev/null || break
		sleep 0.1
	done
	echo "the fault service did not start" >&2
	cat "$WORK/serve.err" >&2
	exit 1
}

# mount_nbdfuse URI DIR: nbdfuse of URI on DIR (file DIR/nbd), undone on exit.
mount_nbdfuse() {
	local i
	mkdir -p "$2"
	nbdfuse "$2" "$1" &
	PIDS+=($!)
	FUSES+=("$2")
	for i in $(seq 50); do [ -e "$2/nbd" ] && return 0; sleep 0.1; done
	echo "nbdfuse did not come up on $2" >&2
	exit 1
}

# file_range FILE OFFSET LEN: LEN bytes of FILE at OFFSET, read through the filesystem.
# run_down FUSE: the end of one filesystem's run: nbdfuse at FUSE unmounted, the daemons
# stopped, $MNT unmounted, and the lists the cleanup would undo emptied.
run_down() {
	fusermount3 -u "$1"
	FUSES=()
	stop "${PIDS[@]}"
	PIDS=()
	umount "$MNT"
	MOUNTS=()
}

# drop_cached FILE...: the host's cached pages of FILE go (clean ones: posix_fadvise DONTNEED),
# so that reading it through its filesystem reads what the device wrote on the disk underneath.
# This used to be 'echo 3 > /proc/sys/vm/drop_caches': every cache of the machine, which turned
# the other tests of a parallel ctest, and anyone's benchmark, into cold runs.
drop_cached() {
	local f
	for f in "$@"; do
		dd if="$f" iflag=nocache count=0 status=none || return 1
	done
}

file_range() {
	dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# need_nbd_fuse [TOOL...]: root, loop devices, nbdkit, nbdfuse and FUSE, and the TOOLs; else skip.
need_nbd_fuse() {
	local t
	need_root_and_loop
	for t in nbdkit nbdfuse fusermount3 "$@"; do
		command -v "$t" >/dev/null || skip "no $t"
	done
	[ -e /dev/fuse ] || skip "no /dev/fuse"
}

# served_vf NAME FSIMG FILE [vf create options]: the emulator on FSIMG (socket $WORK/NAME.sock),
# VF 1 made from FILE (checked), the fault service (its log $WORK/NAME.serve.log), the nbdkit
# plugin and nbdfuse; sets MAPTBL_DEV, SERVE_LOG, SERVE_PID, NBDURI and VFDEV (the VF as a file).
served_vf() {
	local name=$1 fsimg=$2 file=$3
	shift 3
	start_emu "$fsimg" "$WORK/$name.sock"
	export MAPTBL_DEV=emu:$WORK/$name.sock
	check "$name: vf create gives VF 1" [ "$("$MAPTBL" vf create "$file" "$@")" = 1 ]
	SERVE_LOG=$WORK/$name.serve.log
	start_serve "$SERVE_LOG"
	start_nbd "$WORK/$name.sock" 1 "$WORK/$name.nbd"
	NBDURI="nbd+unix:///?socket=$WORK/$name.nbd"
	mount_nbdfuse "$NBDURI" "$WORK/$name.fuse"
	VFDEV=$WORK/$name.fuse/nbd
}
