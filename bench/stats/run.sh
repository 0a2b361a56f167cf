#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/stats/run.sh [BUILD_DIR]: the issue #4 §5 benchmark of `maptbl stats`, in one run.
#
# Part 1, speed over TREE (default /usr, warm cache), REPS rounds (default 7), every method once
# per round in turn so that the load of a shared machine falls on all of them alike; medians:
#   filefrag      find TREE -xdev -type f -print0 | xargs -0 filefrag
#   bare 1, 2     maptbl-bench-stats-bare walk --threads N TREE (walk + openat + count-only
#                 FIEMAP + close, the anchor)
#   stats 1, 2    maptbl stats --threads N TREE (files opened and closed in io_uring batches)
#   plain 1, 2    maptbl stats --threads N --no-uring TREE (one openat and one close per file)
#   image         maptbl stats --image IMG (the inode scan in as many threads as cores) and
#                 --threads 1; IMG made by mkfs.ext4 -d TREE (the same files)
# Part 2, peak RSS at SIZES files (default "10000 100000 1000000"): small files (1 to 4096
# bytes) written into a fresh loop-mounted ext4; peak RSS of maptbl stats on the mount and of
# maptbl stats --image on the unmounted image (wait4() rusage).
#
# Part 3, XFS (root and loop devices): the same TREE copied into a loop-mounted XFS (or XFS_MNT, the
# mount point of an XFS already holding a copy: copying /usr takes ~10 minutes), REPS rounds:
#   filefrag, bare 1 and 2 (as above, over the XFS copy), walk 1 and 2 (maptbl stats
#   --no-bulkstat), bulkstat 1 and 2 (--bulkstat: files with data opened by handle), counts 1
#   and 2 (--bulkstat=counts: only files with 2 or more records opened); 1-thread runs pinned to
#   CPU 0 (taskset), 2-thread runs to CPUs 0 and 1.
# Part 4, peak RSS of the bulkstat path at SIZES files in a fresh loop-mounted XFS.
#
# Environment: TREE, REPS, SIZES, WORKDIR (images, default ${TMPDIR:-/var/tmp}), MAPTBL, BARE;
# IMAGE: an image already made with mkfs.ext4 -d TREE (making one of /usr takes minutes);
# PARTS: which parts to run (default "1 2 3 4"); XFS_MNT (part 3).
# Part 2 needs root and loop devices (else it is skipped and says so). Everything attached or
# mounted is undone on exit.
set -u
BUILD=$(readlink -f "${1:-build}")
MAPTBL=${MAPTBL:-$BUILD/cli/maptbl}
BARE=${BARE:-$BUILD/bench/stats/maptbl-bench-stats-bare}
TREE=${TREE:-/usr}
REPS=${REPS:-7}
SIZES=${SIZES-10000 100000 1000000}
PARTS=${PARTS:-1 2 3 4}
part() { [[ " $PARTS " == *" $1 "* ]]; }
for p in "$MAPTBL" "$BARE"; do
	[ -x "$p" ] || { echo "run.sh: $p not found: build first (cmake --build $BUILD)" >&2; exit 2; }
done
command -v filefrag >/dev/null || { echo "run.sh: no filefrag (e2fsprogs)" >&2; exit 2; }
command -v mkfs.ext4 >/dev/null || { echo "run.sh: no mkfs.ext4" >&2; exit 2; }

WORK=$(mktemp -d "${WORKDIR:-${TMPDIR:-/var/tmp}}/maptbl-bench-stats.XXXXXX") || exit 1
MNT=$WORK/mnt
DEV=
MOUNTED=0
XMNT=$WORK/xfs
XDEV=
XMOUNTED=0
cleanup() {
	cd /
	[ "$MOUNTED" = 1 ] && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	[ -n "$DEV" ] && losetup -d "$DEV" 2>/dev/null
	[ "$XMOUNTED" = 1 ] && { umount "$XMNT" 2>/dev/null || umount -l "$XMNT"; }
	[ -n "$XDEV" ] && losetup -d "$XDEV" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
# xfs_up IMG: a fresh XFS on IMG, attached and mounted on $XMNT; xfs_down undoes it.
xfs_up() {
	mkfs.xfs -q -f "$1" || exit 1
	XDEV=$(losetup -f --show "$1") || exit 1
	mkdir -p "$XMNT"
	mount "$XDEV" "$XMNT" && XMOUNTED=1 || exit 1
}
xfs_down() {
	umount "$XMNT" && XMOUNTED=0
	losetup -d "$XDEV" && XDEV=
}
trap 'exit 130' INT TERM

# timed NAME CMD...: runs CMD (output discarded); appends "wall cpu" seconds to $WORK/NAME.t,
# cpu = user + system of CMD and all its children (on a loaded machine the wall clock mostly
# measures the wait for a core; the CPU time does not).
timed() {
	local name=$1 t
	shift
	t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' <<<"$t" >> "$WORK/$name.t"
}
# median NAME COLUMN: the median of column 1 (wall) or 2 (cpu) of NAME's runs.
median() {
	awk -v c="$2" '{ print $c }' "$WORK/$1.t" | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() { printf '%-44s %8s %8s\n' "$1" "$(median "$2" 1)" "$(median "$2" 2)"; }
both() { echo "$(ratio "$(median "$1" 1)" "$(median "$2" 1)"), $(ratio "$(median "$1" 2)" "$(median "$2" 2)")"; }

filefrag_all() { find "$TREE" -xdev -type f -print0 | xargs -0 filefrag; }
echo "# maptbl stats benchmark (issue #4 §5), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tree: $TREE, $(find "$TREE" -xdev -type f | wc -l) regular files"

if part 1; then
# The image of the same files.
if [ -n "${IMAGE:-}" ]; then
	IMG=$IMAGE
else
	IMG=$WORK/tree.img
	bytes=$(du -sxb "$TREE" | cut -f1)
	files=$(find "$TREE" -xdev | wc -l)
	truncate -s $((bytes * 13 / 10 + (1 << 30))) "$IMG"
	mkfs.ext4 -q -F -N $((files * 12 / 10 + 65536)) -d "$TREE" "$IMG" >/dev/null 2>&1 ||
		{ echo "run.sh: mkfs.ext4 -d $TREE failed" >&2; exit 1; }
fi
echo "# image: mkfs.ext4 -d $TREE, $(du -h --apparent-size "$IMG" | cut -f1) ($("$MAPTBL" stats --image "$IMG" --json | grep -m1 -o '"files": [0-9]*' | grep -o '[0-9]*') regular inodes)"
echo "# files measured: bare $("$BARE" walk "$TREE" | cut -d' ' -f2), maptbl stats $("$MAPTBL" stats --json "$TREE" 2>/dev/null | grep -m1 -o '"files": [0-9]*' | grep -o '[0-9]*')"

# warm-up: every method once, results discarded
filefrag_all >/dev/null 2>&1
"$BARE" walk "$TREE" >/dev/null
"$MAPTBL" stats "$TREE" >/dev/null 2>&1
"$MAPTBL" stats --image "$IMG" >/dev/null 2>&1
for ((r = 0; r < REPS; r++)); do
	timed filefrag filefrag_all
	timed bare1 "$BARE" walk --threads 1 "$TREE"
	timed stats1 "$MAPTBL" stats --threads 1 "$TREE"
	timed bare2 "$BARE" walk --threads 2 "$TREE"
	timed stats2 "$MAPTBL" stats --threads 2 "$TREE"
	timed plain1 "$MAPTBL" stats --threads 1 --no-uring "$TREE"
	timed plain2 "$MAPTBL" stats --threads 2 --no-uring "$TREE"
	timed records1 "$BARE" walk --threads 1 --records "$TREE"
	timed image "$MAPTBL" stats --image "$IMG"
	timed image1 "$MAPTBL" stats --threads 1 --image "$IMG"
done
echo "# median seconds of $REPS rounds: wall clock (including process start) and CPU (user + system)"
printf '%-44s %8s %8s\n' method wall cpu
row "find | xargs filefrag" filefrag
row "bare loop, 1 thread (count-only FIEMAP)" bare1
row "bare loop, 1 thread, 64 records per call" records1
row "bare loop, 2 threads" bare2
row "maptbl stats --threads 1" stats1
row "maptbl stats --threads 2" stats2
row "maptbl stats --threads 1 --no-uring" plain1
row "maptbl stats --threads 2 --no-uring" plain2
row "maptbl stats --image (2 threads)" image
row "maptbl stats --image --threads 1" image1
echo "# ratios (wall, cpu)"
echo "stats 1 thread / bare 1 thread:    $(both stats1 bare1)  (goal <= 1.10)"
echo "stats 2 threads / bare 2 threads:  $(both stats2 bare2)  (goal <= 1.10)"
echo "--no-uring 1 t / bare 1 t:         $(both plain1 bare1)"
echo "--no-uring 2 t / bare 2 t:         $(both plain2 bare2)"
echo "records / count-only (bare, 1 t):  $(both records1 bare1)"
echo "filefrag / stats 2 threads:        $(both filefrag stats2)"
echo "filefrag / image:                  $(both filefrag image)  (goal >= 20)"
echo "filefrag / image, 1 thread:        $(both filefrag image1)"
[ -z "${IMAGE:-}" ] && rm -f "$IMG"

fi

# Part 2: peak RSS as the tree grows.
ROOT=1
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
	echo "# parts 2 to 4: skipped (need root and loop devices)"
	ROOT=0
fi
if part 2 && [ -n "$SIZES" ] && [ $ROOT = 1 ]; then
echo "# peak RSS (KiB) of maptbl stats --threads 2 on a loop-mounted ext4 and of --image on it unmounted"
printf '%10s %12s %12s %12s\n' files live image bare
for n in $SIZES; do
	img=$WORK/rss.img
	truncate -s $((n * 8192 + (256 << 20))) "$img"
	mkfs.ext4 -q -F -N $((n + n / 10 + 1024)) "$img" || exit 1
	DEV=$(losetup -f --show "$img") || exit 1
	mkdir -p "$MNT"
	mount "$DEV" "$MNT" && MOUNTED=1 || exit 1
	"$BARE" mktree "$MNT" "$n" || exit 1
	sync
	live=$("$BARE" rss "$MAPTBL" stats --threads 2 "$MNT" | cut -d' ' -f2)
	bare=$("$BARE" rss "$BARE" walk --threads 2 "$MNT" | cut -d' ' -f2)
	umount "$MNT" && MOUNTED=0
	losetup -d "$DEV" && DEV=
	image=$("$BARE" rss "$MAPTBL" stats --image "$img" | cut -d' ' -f2)
	printf '%10s %12s %12s %12s\n' "$n" "$live" "$image" "$bare"
	rm -f "$img"
done
fi

# Part 3: XFS, the bulkstat path against the walk, the bare loop and filefrag.
if part 3 && [ $ROOT = 1 ]; then
	if [ -n "${XFS_MNT:-}" ]; then
		X=$XFS_MNT
	else
		command -v mkfs.xfs >/dev/null || { echo "run.sh: no mkfs.xfs" >&2; exit 2; }
		bytes=$(du -sxb "$TREE" | cut -f1)
		truncate -s $(((bytes * 13 / 10 + (1 << 30)) / 4096 * 4096)) "$WORK/xfs.img"
		xfs_up "$WORK/xfs.img"
		cp -a "$TREE" "$XMNT/" || exit 1
		sync
		X=$XMNT
	fi
	echo "# part 3, XFS: $X, $(find "$X" -xdev -type f | wc -l) regular file names, load $(cut -d' ' -f1-3 /proc/loadavg)"
	T1="taskset -c 0"
	T2="taskset -c 0,1"
	command -v taskset >/dev/null || { T1=; T2=; }
	xff() { find "$X" -xdev -type f -print0 | xargs -0 filefrag; }
	xff >/dev/null 2>&1
	"$BARE" walk "$X" >/dev/null
	"$MAPTBL" stats --no-bulkstat "$X" >/dev/null 2>&1
	"$MAPTBL" stats --bulkstat "$X" >/dev/null 2>&1
	for ((r = 0; r < REPS; r++)); do
		timed xfilefrag xff
		timed xbare1 $T1 "$BARE" walk --threads 1 "$X"
		timed xwalk1 $T1 "$MAPTBL" stats --threads 1 --no-bulkstat "$X"
		timed xbulk1 $T1 "$MAPTBL" stats --threads 1 --bulkstat "$X"
		timed xcounts1 $T1 "$MAPTBL" stats --threads 1 --bulkstat=counts "$X"
		timed xbare2 $T2 "$BARE" walk --threads 2 "$X"
		timed xwalk2 $T2 "$MAPTBL" stats --threads 2 --no-bulkstat "$X"
		timed xbulk2 $T2 "$MAPTBL" stats --threads 2 --bulkstat "$X"
		timed xcounts2 $T2 "$MAPTBL" stats --threads 2 --bulkstat=counts "$X"
	done
	echo "# XFS: median seconds of $REPS rounds, wall and CPU; load now $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-44s %8s %8s\n' method wall cpu
	row "find | xargs filefrag" xfilefrag
	row "bare loop, 1 thread" xbare1
	row "bare loop, 2 threads" xbare2
	row "maptbl stats --no-bulkstat, 1 thread" xwalk1
	row "maptbl stats --no-bulkstat, 2 threads" xwalk2
	row "maptbl stats --bulkstat, 1 thread" xbulk1
	row "maptbl stats --bulkstat, 2 threads" xbulk2
	row "maptbl stats --bulkstat=counts, 1 thread" xcounts1
	row "maptbl stats --bulkstat=counts, 2 threads" xcounts2
	echo "# XFS ratios (wall, cpu)"
	echo "walk 1 t / bare 1 t:               $(both xwalk1 xbare1)  (goal <= 1.10)"
	echo "walk 2 t / bare 2 t:               $(both xwalk2 xbare2)  (goal <= 1.10)"
	echo "bulkstat 1 t / bare 1 t:           $(both xbulk1 xbare1)"
	echo "bulkstat 2 t / bare 2 t:           $(both xbulk2 xbare2)"
	echo "counts 1 t / bare 1 t:             $(both xcounts1 xbare1)"
	echo "counts 2 t / bare 2 t:             $(both xcounts2 xbare2)"
	echo "filefrag / counts 2 t:             $(both xfilefrag xcounts2)"
	echo "filefrag / bulkstat 2 t:           $(both xfilefrag xbulk2)"
	if [ "$XMOUNTED" = 1 ]; then
		xfs_down
		rm -f "$WORK/xfs.img"
	fi
fi

# Part 4: peak RSS of the bulkstat path as the filesystem grows.
if part 4 && [ -n "$SIZES" ] && [ $ROOT = 1 ]; then
	echo "# peak RSS (KiB) on a loop-mounted XFS: maptbl stats --threads 2 --bulkstat, --bulkstat=counts, the walk"
	printf '%10s %12s %12s %12s\n' files bulkstat counts walk
	for n in $SIZES; do
		img=$WORK/xrss.img
		truncate -s $((n * 8192 + (512 << 20))) "$img"
		xfs_up "$img"
		"$BARE" mktree "$XMNT" "$n" || exit 1
		sync
		bulk=$("$BARE" rss "$MAPTBL" stats --threads 2 --bulkstat "$XMNT" | cut -d' ' -f2)
		counts=$("$BARE" rss "$MAPTBL" stats --threads 2 --bulkstat=counts "$XMNT" | cut -d' ' -f2)
		walk=$("$BARE" rss "$MAPTBL" stats --threads 2 --no-bulkstat "$XMNT" | cut -d' ' -f2)
		printf '%10s %12s %12s %12s\n' "$n" "$bulk" "$counts" "$walk"
		xfs_down
		rm -f "$img"
	done
fi
