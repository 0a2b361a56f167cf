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
#   stats 1, 2    maptbl stats --threads N TREE
#   image         maptbl stats --image IMG, IMG made by mkfs.ext4 -d TREE (the same files)
# Part 2, peak RSS at SIZES files (default "10000 100000 1000000"): small files (1 to 4096
# bytes) written into a fresh loop-mounted ext4; peak RSS of maptbl stats on the mount and of
# maptbl stats --image on the unmounted image (wait4() rusage).
#
# Environment: TREE, REPS, SIZES, WORKDIR (images, default ${TMPDIR:-/var/tmp}), MAPTBL, BARE;
# IMAGE: an image already made with mkfs.ext4 -d TREE (making one of /usr takes minutes).
# Part 2 needs root and loop devices (else it is skipped and says so). Everything attached or
# mounted is undone on exit.
set -u
BUILD=$(readlink -f "${1:-build}")
MAPTBL=${MAPTBL:-$BUILD/cli/maptbl}
BARE=${BARE:-$BUILD/bench/stats/maptbl-bench-stats-bare}
TREE=${TREE:-/usr}
REPS=${REPS:-7}
SIZES=${SIZES:-10000 100000 1000000}
for p in "$MAPTBL" "$BARE"; do
	[ -x "$p" ] || { echo "run.sh: $p not found: build first (cmake --build $BUILD)" >&2; exit 2; }
done
command -v filefrag >/dev/null || { echo "run.sh: no filefrag (e2fsprogs)" >&2; exit 2; }
command -v mkfs.ext4 >/dev/null || { echo "run.sh: no mkfs.ext4" >&2; exit 2; }

WORK=$(mktemp -d "${WORKDIR:-${TMPDIR:-/var/tmp}}/maptbl-bench-stats.XXXXXX") || exit 1
MNT=$WORK/mnt
DEV=
MOUNTED=0
cleanup() {
	cd /
	[ "$MOUNTED" = 1 ] && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	[ -n "$DEV" ] && losetup -d "$DEV" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# timed NAME CMD...: runs CMD (output discarded), appends the seconds to $WORK/NAME.t
timed() {
	local name=$1 t0 t1
	shift
	t0=$(now)
	"$@" >/dev/null 2>&1
	t1=$(now)
	echo "$t1 - $t0" | bc -l >> "$WORK/$name.t"
}
median() { sort -g "$WORK/$1.t" | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

filefrag_all() { find "$TREE" -xdev -type f -print0 | xargs -0 filefrag; }
echo "# maptbl stats benchmark (issue #4 §5), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# tree: $TREE, $(find "$TREE" -xdev -type f | wc -l) regular files"

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
	timed records1 "$BARE" walk --threads 1 --records "$TREE"
	timed image "$MAPTBL" stats --image "$IMG"
done
echo "# median seconds of $REPS rounds (wall clock, including process start)"
printf '%-44s %8s\n' method seconds
printf '%-44s %8s\n' "find | xargs filefrag" "$(median filefrag)"
printf '%-44s %8s\n' "bare loop, 1 thread (count-only FIEMAP)" "$(median bare1)"
printf '%-44s %8s\n' "bare loop, 1 thread, 64 records per call" "$(median records1)"
printf '%-44s %8s\n' "bare loop, 2 threads" "$(median bare2)"
printf '%-44s %8s\n' "maptbl stats --threads 1" "$(median stats1)"
printf '%-44s %8s\n' "maptbl stats --threads 2" "$(median stats2)"
printf '%-44s %8s\n' "maptbl stats --image" "$(median image)"
echo "# ratios"
echo "stats 1 thread / bare 1 thread:    $(ratio "$(median stats1)" "$(median bare1)")  (goal <= 1.10)"
echo "stats 2 threads / bare 2 threads:  $(ratio "$(median stats2)" "$(median bare2)")  (goal <= 1.10)"
echo "records / count-only (bare, 1 t):  $(ratio "$(median records1)" "$(median bare1)")"
echo "filefrag / stats 2 threads:        $(ratio "$(median filefrag)" "$(median stats2)")"
echo "filefrag / image:                  $(ratio "$(median filefrag)" "$(median image)")  (goal >= 20)"
[ -z "${IMAGE:-}" ] && rm -f "$IMG"

# Part 2: peak RSS as the tree grows.
if [ "$(id -u)" != 0 ] || ! command -v losetup >/dev/null; then
	echo "# peak RSS: skipped (needs root and loop devices)"
	exit 0
fi
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
