#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats on btrfs measures each file from its extent items (tree search, not FIEMAP):
# every file's extent count equals filefrag's (which sees btrfs logical addresses), over
# contiguous, fragmented, sparse, preallocated, compressed, inline, reflinked and snapshotted
# files; prealloc is counted as unwritten, reflinked extents as shared (the pieces of one
# prealloc extent are not), holes where they are.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/btrfs-lib.sh"
need_root_and_loop
need_btrfs

truncate -s 1G "$WORK/s.img"
attach "$WORK/s.img"
mkfs.btrfs -q -f "$DEV" >/dev/null 2>&1 || { echo "mkfs.btrfs failed"; exit 1; }
bmount "$DEV" s
cd "$MNT"
dd if=/dev/urandom of=contig bs=1M count=8 status=none
for i in $(seq 0 63); do
	dd if=/dev/urandom of=frag-a bs=4K count=1 seek=$i conv=notrunc,fsync status=none
	dd if=/dev/urandom of=frag-b bs=4K count=1 seek=$i conv=notrunc,fsync status=none
done
truncate -s 64M sparse
dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none
fallocate -l 16M prealloc
dd if=/dev/urandom of=prealloc bs=4K count=10 seek=100 conv=notrunc status=none
printf 'tiny\n' >inline
cp --reflink=always contig reflinked
mount -o remount,compress=zstd "$MNT"
yes 'compressible text' | head -c 2M >compressed
sync
mount -o remount,compress=no "$MNT"

"$MAPTBL" stats --per-file . >"$WORK/s.tsv"
check "stats --per-file exits 0" test $? = 0
bad=0
while IFS=$'\t' read -r path size ext rec holes unw shared tb depth; do
	[ "$path" = path ] && continue
	want=$(filefrag "$path" | sed -n 's/.*: \([0-9]*\) extents\? found$/\1/p')
	if [ "$want" != "$ext" ]; then
		echo "  $path: maptbl $ext extents, filefrag $want"
		bad=1
	fi
done <"$WORK/s.tsv"
check "every file's extents equal filefrag's" test $bad = 0
col() { awk -F'\t' -v p="./$1" '$1 == p' "$WORK/s.tsv" | cut -f"$2"; }
check "frag-a is fragmented ($(col frag-a 3) extents)" test "$(col frag-a 3)" -ge 32
check "contig is one extent" test "$(col contig 3)" = 1
check "sparse has 2 holes" test "$(col sparse 5)" = 2
check "prealloc has unwritten records ($(col prealloc 6))" test "$(col prealloc 6)" = 2
# This used to count the three items of the written-into prealloc extent as shared.
check "prealloc: its pieces of one extent are not shared" test "$(col prealloc 7)" = 0
check "reflinked is shared ($(col reflinked 7))" test "$(col reflinked 7)" -ge 1
check "contig is shared with it ($(col contig 7))" test "$(col contig 7)" -ge 1
check "frag-b is not shared" test "$(col frag-b 7)" = 0
check "compressed: 16 extents of 128 KiB ($(col compressed 3))" test "$(col compressed 3)" = 16
check "inline: one extent" test "$(col inline 3)" = 1
cat "$WORK/s.tsv" | sed 's/^/  /'

# A subvolume of more than one leaf (600 small files and a 4 MiB one), snapshotted: both trees
# share its leaves, so every data extent keeps one reference in the extent tree.
# This used to report its files "not shared": stats judged sharing by that reference count.
btrfs subvolume create sv >/dev/null
for i in $(seq 600); do head -c 8192 /dev/urandom >"sv/f$i"; done
dd if=/dev/urandom of=sv/big bs=1M count=4 status=none
sync
btrfs subvolume snapshot sv snap >/dev/null
sync
"$MAPTBL" stats --per-file sv >"$WORK/sv.tsv"
check "stats --per-file sv exits 0" test $? = 0
bad=0 n=0 nshared=0
while IFS=$'\t' read -r path size ext rec holes unw shared rest; do
	[ "$path" = path ] && continue
	n=$((n + 1))
	want=0
	filefrag -v "$path" | grep -qw shared && want=1
	got=0
	[ "$shared" -gt 0 ] && got=1
	nshared=$((nshared + got))
	if [ $got != $want ]; then
		echo "  $path: maptbl shared $shared, filefrag's shared flag $want"
		bad=1
	fi
done <"$WORK/sv.tsv"
check "601 files measured in the subvolume ($n)" test $n = 601
check "every file's shared column equals filefrag's shared flag" test $bad = 0
check "the snapshotted files are shared ($nshared of 601)" test $nshared = 601

# btrfs' own counts reach the summary: the compress=zstd file's 16 compressed records, the
# inline file. This used to leave them out of every output.
"$MAPTBL" stats --json . >"$WORK/s.json"
check "stats --json exits 0" test $? = 0
# The summary comes first in the JSON; a missing field is 0.
jsum() { grep -m1 -o "\"$1\": [0-9]*" "$WORK/s.json" | grep -o '[0-9]*$' || echo 0; }
check "summary: 16 compressed records ($(jsum compressed))" test "$(jsum compressed)" = 16
check "summary: 1 file with compressed records ($(jsum files_compressed))" test "$(jsum files_compressed)" = 1
check "summary: 1 inline record ($(jsum inline_extents))" test "$(jsum inline_extents)" = 1
check "summary: 1 file with an inline record ($(jsum files_inline))" test "$(jsum files_inline)" = 1
check "summary: disk extents counted ($(jsum disk_extents))" test "$(jsum disk_extents)" -ge 64
"$MAPTBL" stats . >"$WORK/s.txt"
check "the text summary has a btrfs line" grep -q '^btrfs: *compressed 16 (1 files), inline 1 (1 files)' "$WORK/s.txt"

# Subvolumes and snapshots are the same filesystem (each has its own st_dev, one fsid); a
# separate btrfs mounted inside the tree is not. This used to skip every subvolume without
# --cross-mounts.
truncate -s 256M "$WORK/o.img"
attach "$WORK/o.img"
mkfs.btrfs -q -f "$DEV" >/dev/null 2>&1 || { echo "mkfs.btrfs (second) failed"; exit 1; }
mkdir other
mount "$DEV" other || { echo "mount of the second btrfs failed"; exit 1; }
MOUNTS+=("$MNT/other")
dd if=/dev/urandom of=other/elsewhere bs=64K count=1 status=none
"$MAPTBL" stats --per-file . >"$WORK/all.tsv"
check "stats --per-file . exits 0" test $? = 0
rows() { grep -c "^\./$1" "$WORK/all.tsv"; }
check "the subvolume's files are counted ($(rows sv/) rows)" test "$(rows sv/)" = 601
check "the snapshot's files are counted ($(rows snap/) rows)" test "$(rows snap/)" = 601
check "the other btrfs is not ($(rows other/) rows)" test "$(rows other/)" = 0
"$MAPTBL" stats --per-file --cross-mounts . >"$WORK/all.tsv"
check "... but is with --cross-mounts" test "$(rows other/)" = 1

# A dirty file not written back yet has no extent items (delalloc). This used to count it as 0
# extents, 0 records, where filefrag counts its delalloc record.
dd if=/dev/urandom of=dirty bs=1M count=4 status=none
"$MAPTBL" stats --per-file dirty >"$WORK/d.tsv"
want=$(filefrag dirty | sed -n 's/.*: \([0-9]*\) extents\? found$/\1/p')
got=$(awk -F'\t' '$1 == "dirty" { print $3 }' "$WORK/d.tsv")
check "dirty: extents as filefrag's ($got, filefrag $want)" test "$got" = "$want"
check "dirty: at least one extent" test "${got:-0}" -ge 1
cd /
finish
