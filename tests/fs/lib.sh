# SPDX-License-Identifier: MIT
# Helpers for tests/fs/*.sh (sourced): real filesystems on loop devices. Everything attached or
# mounted is undone on exit, whether the test passes or fails.
set -u
MAPTBL=${MAPTBL:?MAPTBL must name the maptbl command}
# run.sh sets MAPTBL_FS_TAG and looks for devices and mounts of that tag left behind.
MAPTBL_FS_TAG=${MAPTBL_FS_TAG:-r$$}
WORK=$(mktemp -d "/var/tmp/maptbl-fs.$MAPTBL_FS_TAG.XXXXXX")
MOUNTS=()
LOOPS=()
DMS=()
FAILED=0

cleanup() {
	local i
	cd /
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null
	done
	for ((i = ${#DMS[@]} - 1; i >= 0; i--)); do
		dmsetup remove "${DMS[i]}" 2>/dev/null
	done
	for ((i = ${#LOOPS[@]} - 1; i >= 0; i--)); do
		losetup -d "${LOOPS[i]}" 2>/dev/null
	done
	# a test that turned io_uring off (io_uring_off) turns it back on
	[ -n "${URING_WAS:-}" ] && echo "$URING_WAS" > /proc/sys/kernel/io_uring_disabled
	rm -rf "$WORK"
}
trap cleanup EXIT

# io_uring_off / io_uring_on: refuse io_uring to unprivileged processes for a while (kernel 6.6+
# io_uring_disabled = 1: only CAP_SYS_ADMIN or io_uring_group; root's tests running meanwhile
# keep it), to test fallbacks as another user; the cleanup turns it back on. 1 without the sysctl.
io_uring_off() {
	[ -w /proc/sys/kernel/io_uring_disabled ] || return 1
	URING_WAS=$(cat /proc/sys/kernel/io_uring_disabled)
	echo 1 > /proc/sys/kernel/io_uring_disabled
}
io_uring_on() {
	[ -n "${URING_WAS:-}" ] && echo "$URING_WAS" > /proc/sys/kernel/io_uring_disabled
	URING_WAS=
}

skip() {
	echo "SKIP: $*"
	exit 77
}

need_root_and_loop() {
	[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mount)"
	command -v losetup >/dev/null || skip "no losetup"
	[ -e /dev/loop-control ] || modprobe loop 2>/dev/null
	[ -e /dev/loop-control ] || skip "the kernel has no loop device support"
}

need_fs() { # need_fs TYPE
	grep -qw "$1" /proc/filesystems || modprobe "$1" 2>/dev/null
	grep -qw "$1" /proc/filesystems || skip "the kernel has no $1"
	command -v "mkfs.$1" >/dev/null || skip "no mkfs.$1"
}

# attach IMG [losetup options]: sets DEV to the loop device (not in a subshell: LOOPS must
# remember it for the cleanup).
attach() {
	DEV=$(losetup -f --show "$@") || { echo "losetup $* failed" >&2; exit 1; }
	LOOPS+=("$DEV")
}

# mkfs_mount TYPE SIZE NAME [mkfs options]: image $WORK/NAME.img on a loop device, mounted on
# $WORK/NAME; sets DEV and MNT.
mkfs_mount() {
	local type=$1 size=$2 name=$3
	shift 3
	truncate -s "$size" "$WORK/$name.img"
	attach "$WORK/$name.img"
	"mkfs.$type" -q "$@" "$DEV" >/dev/null || { echo "mkfs.$type failed"; exit 1; }
	MNT=$WORK/$name
	mkdir -p "$MNT"
	mount "$DEV" "$MNT" || { echo "mount failed"; exit 1; }
	MOUNTS+=("$MNT")
}

# check NAME COND...: one assertion; prints "ok" or "FAIL" and remembers a failure.
check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		FAILED=1
	fi
}

# filefrag_extents FILE BS: filefrag -v's records as "lblk pblk len [unwritten]" in BS-byte
# blocks, with logically and physically contiguous records of the same kind merged (as maptbl
# merges them), one a line.
filefrag_extents() {
	local bs=$2
	filefrag -v -b"$bs" "$1" | awk '
		/^ *[0-9]+:/ {
			gsub(/[:.]+/, " ");
			l = $2; p = $4; n = $6; u = ($0 ~ /unwritten/) ? " unwritten" : "";
			if (have && u == pu && pl + pn == l && pp + pn == p) { pn += n; next }
			if (have) print pl, pp, pn pu;
			pl = l; pp = p; pn = n; pu = u; have = 1
		}
		END { if (have) print pl, pp, pn pu }'
}

# table_extents TABLE [OFFSET_BLOCKS]: the table's extents in the same form, minus OFFSET_BLOCKS
# on the physical side (to compare with filefrag, which is relative to the filesystem's device).
table_extents() {
	local off=${2:-0}
	"$MAPTBL" --json dump "$1" | tr '{' '\n' | awk -v off="$off" -F'[:,]' '
		/"lblk"/ { l = $2; p = $4; n = $6; u = ($0 ~ /unwritten/) ? " unwritten" : "";
			   print l, p - off, n u }'
}

# json_field TABLE NAME: a number from maptbl dump --json.
json_field() {
	"$MAPTBL" --json dump "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}

# cat_matches TABLE FILE [DEVICE]: maptbl cat equals the file padded with zeros to the virtual size.
cat_matches() {
	local t=$1 f=$2 dev=${3:-}
	local vsize=$(($(json_field "$t" block_size) * $(json_field "$t" virtual_blocks)))
	cp --sparse=always "$f" "$WORK/expect.bin"
	truncate -s "$vsize" "$WORK/expect.bin"
	if [ -n "$dev" ]; then
		"$MAPTBL" cat "$t" --device "$dev" -o "$WORK/got.bin"
	else
		"$MAPTBL" cat "$t" -o "$WORK/got.bin"
	fi || return 1
	cmp "$WORK/expect.bin" "$WORK/got.bin"
	local rc=$?
	rm -f "$WORK/expect.bin" "$WORK/got.bin"
	return $rc
}

finish() {
	if [ "$FAILED" = 0 ]; then
		echo "all checks passed"
		exit 0
	fi
	exit 1
}
