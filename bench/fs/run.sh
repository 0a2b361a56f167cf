#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/fs/run.sh [BUILD_DIR] [-- maptbl-bench-fs options]: the issue #3 §6 benchmark.
#
# As root: makes an ext4 image on a loop device, a file of at least EXTENTS (default 102400)
# extents in it with the fragmenter of the filesystem tests (two files allocated a block at a time,
# alternately, with fallocate, then written), checks the count with filefrag, unmounts, copies the
# image byte for byte (the offline copy: libext2fs refuses a mounted image), mounts the original
# again, and runs maptbl-bench-fs on the live file and on the same file in the offline copy, in one
# run. Everything attached or mounted is undone on exit, whether it succeeded or not.
#
# Environment: EXTENTS (102400), WORKDIR (a directory for the ~1 GiB of images, default
# ${TMPDIR:-/var/tmp}), BENCH, FRAGMENT, MAPTBL (the programs, default under BUILD_DIR).
# Without root or loop devices it says so and exits 77.
set -u
BUILD=$(readlink -f "${1:-build}")
shift $(($# > 0 ? 1 : 0))
[ "${1:-}" = "--" ] && shift
BENCH=${BENCH:-$BUILD/bench/fs/maptbl-bench-fs}
FRAGMENT=${FRAGMENT:-$BUILD/bench/fs/maptbl-bench-fragment}
MAPTBL=${MAPTBL:-$BUILD/cli/maptbl}
EXTENTS=${EXTENTS:-102400}
BS=4096

skip() {
	echo "run.sh: skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mount)"
command -v losetup >/dev/null || skip "no losetup"
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null
[ -e /dev/loop-control ] || skip "the kernel has no loop device support"
grep -qw ext4 /proc/filesystems || modprobe ext4 2>/dev/null
grep -qw ext4 /proc/filesystems || skip "the kernel has no ext4"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
command -v filefrag >/dev/null || skip "no filefrag (e2fsprogs)"
for p in "$BENCH" "$FRAGMENT"; do
	[ -x "$p" ] || { echo "run.sh: $p not found: build first (cmake --build $BUILD)" >&2; exit 2; }
done
[ -x "$MAPTBL" ] || MAPTBL=

WORK=$(mktemp -d "${WORKDIR:-${TMPDIR:-/var/tmp}}/maptbl-bench-fs.XXXXXX") || exit 1
OUTDIR=$WORK
[ -d /dev/shm ] && OUTDIR=$(mktemp -d /dev/shm/maptbl-bench-fs.XXXXXX)
MNT=$WORK/mnt
DEV=
MOUNTED=0

cleanup() {
	cd /
	if [ "$MOUNTED" = 1 ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$DEV" ] && losetup -d "$DEV" 2>/dev/null
	rm -rf "$WORK"
	[ "$OUTDIR" != "$WORK" ] && rm -rf "$OUTDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE # e.g. the output piped into head

source "$(dirname "$0")/../fragmented_image.sh"
fragmented_image frag-a frag-b
detach
echo "run.sh: copying the image for the offline part..."
cp --sparse=always "$WORK/fs.img" "$WORK/offline.img" || exit 1
attach_mount
echo "run.sh: $(uname -r); $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) CPUs"
echo
"$BENCH" --file "$MNT/frag-a" --image "$WORK/offline.img" --path /frag-a \
	${MAPTBL:+--maptbl "$MAPTBL" --out-dir "$OUTDIR"} "$@"
