#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats on a whole XFS filesystem through XFS_IOC_BULKSTAT (--bulkstat) against the walk
# (--no-bulkstat) and filefrag, on known fragmentation: interleaved writes, written records next
# to unwritten ones (2 XFS records, 1 filefrag extent), sparse and preallocated files, a
# reflinked pair, empty files, a hard link, a directory tree. Every file's extent count (the top
# list of --top 100000 lists them all, with paths) equals the walk's and filefrag's; the JSON
# summaries of both are equal byte for byte; --bulkstat=counts has the same extents per file and
# the same histogram, and misses only the unwritten record of a file with a single one; where the
# fast path does not apply (a subdirectory, no CAP_SYS_ADMIN) the walk is used and -v says so.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs xfs
command -v filefrag >/dev/null || skip "no filefrag"
command -v python3 >/dev/null || skip "no python3"
BS=4096

mkfs_mount xfs 512M x -m reflink=1 -d agcount=4
X=$MNT
mkdir -p "$X/a/b/c" "$X/small" "$X/sub"
(
	cd "$X" || exit 1
	dd if=/dev/urandom of=a/contig bs=1M count=4 status=none
	"$FRAGMENT" a/frag-a a/frag-b 700 $BS || exit 1
	"$FRAGMENT" a/b/c/frag-c sub/frag-d 90 $BS || exit 1
	truncate -s 64M a/sparse
	dd if=/dev/urandom of=a/sparse bs=64K count=3 seek=100 conv=notrunc status=none
	dd if=/dev/urandom of=a/sparse bs=4K count=5 seek=9000 conv=notrunc status=none
	# written then unwritten, physically contiguous: 2 records, 1 extent for filefrag
	fallocate -l 1M a/half-written
	dd if=/dev/urandom of=a/half-written bs=64K count=4 conv=notrunc status=none
	fallocate -l 8M a/prealloc-only # one unwritten record
	fallocate -l 16M a/b/prealloc
	dd if=/dev/urandom of=a/b/prealloc bs=4K count=10 seek=1000 conv=notrunc status=none
	dd if=/dev/urandom of=a/b/orig bs=1M count=2 status=none
	cp --reflink=always a/b/orig a/b/reflinked
	: > empty
	: > a/b/c/empty2
	truncate -s 1M a/hole-only
	ln a/contig a/contig-link
	ln -s a/contig symlink
	for i in $(seq 1 60); do head -c $((i * 97)) /dev/urandom > "small/f$i"; done
) || exit 1
sync
# Speculative preallocation past EOF that the background scan would trim minutes later (between
# two runs, in a slow CI) goes now.
xfs_spaceman -c "prealloc -s" "$X" >/dev/null 2>&1
sync

# summarize JSON NAME: NAME.top ("path extents" per entry of the top list) and NAME.kv (the
# summary's numbers, percentiles and the histogram, as FIELD=VALUE), in one python3 run.
summarize() {
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
with open(sys.argv[2] + ".top", "w") as f:
	for t in s["top"]:
		print(t["path"], t["extents"], file=f)
s = s["summary"]
with open(sys.argv[2] + ".kv", "w") as f:
	for k, v in list(s.items()) + list(s["percentiles"].items()):
		if not isinstance(v, (dict, list)):
			print("%s=%s" % (k, v), file=f)
	print("histogram=" + ";".join("%d:%d" % (h["min"], h["files"]) for h in s["histogram"]), file=f)' \
		"$1" "$WORK/$2"
}
field() { sed -n "s/^$2=//p" "$WORK/$1.kv"; } # field NAME FIELD

"$MAPTBL" -v stats --json --top 100000 "$X" > "$WORK/bulk.json" 2> "$WORK/bulk.err"
check "bulkstat: exits 0" test $? = 0
check "bulkstat: used by default on the XFS root, as root (-v says so)" \
	grep -q "XFS bulkstat (exact)" "$WORK/bulk.err"
"$MAPTBL" -v stats --json --top 100000 --no-bulkstat "$X" > "$WORK/walk.json" 2> "$WORK/walk.err"
check "walk: exits 0" test $? = 0
check "walk: --no-bulkstat walks (-v is silent about bulkstat)" \
	test "$(grep -c bulkstat "$WORK/walk.err")" = 0
check "bulkstat and walk: equal JSON summaries" diff "$WORK/walk.json" "$WORK/bulk.json"
summarize "$WORK/bulk.json" bulk
files=$(find "$X" -type f | wc -l)
check "bulkstat: every name of every file counted ($(field bulk files) of $files)" \
	test "$(field bulk files)" = "$files"

# Every file's extents against filefrag (the top list holds every file).
check "bulkstat: the top list names every file" test "$(wc -l < "$WORK/bulk.top")" = "$files"
bad=0
while read -r path ext; do
	want=$(filefrag "$path" | sed -n 's/.*: \([0-9]*\) extents\? found$/\1/p')
	[ "$want" = "$ext" ] || { echo "  $path: bulkstat $ext extents, filefrag $want"; bad=1; }
done < "$WORK/bulk.top"
check "bulkstat: every file's extents equal filefrag's" test $bad = 0
ext_of() { awk -v p="$X/$1" '$1 == p { print $2 }' "$WORK/bulk.top"; }
check "frag-a is fragmented ($(ext_of a/frag-a))" test "$(ext_of a/frag-a)" -ge 100
check "half-written: 2 XFS records, 1 extent" test "$(ext_of a/half-written)" = 1
check "empty and hole-only: 0 extents" test "$(ext_of empty),$(ext_of a/hole-only)" = 0,0
check "the hard link is listed under both names" \
	test "$(ext_of a/contig-link),$(ext_of a/contig)" = 1,1

# --bulkstat=counts: files with one record are not opened; the same extents everywhere.
"$MAPTBL" stats --json --top 100000 --bulkstat=counts "$X" > "$WORK/counts.json"
check "counts: exits 0" test $? = 0
summarize "$WORK/counts.json" counts
check "counts: every file's extents equal" diff "$WORK/bulk.top" "$WORK/counts.top"
for f in files bytes extents p50 p90 p99 max multi_files multi_bytes table_bytes histogram; do
	check "counts: $f equals exact mode's" test "$(field counts $f)" = "$(field bulk $f)"
done
u_exact=$(field bulk unwritten)
u_counts=$(field counts unwritten)
check "counts: misses just prealloc-only's unwritten record ($u_counts = $u_exact - 1)" \
	test "$u_counts" = $((u_exact - 1))

# Where it does not apply: the walk, said with -v; --bulkstat makes it an error.
"$MAPTBL" -v stats --json "$X/a" > "$WORK/sub.json" 2> "$WORK/sub.err"
check "subdirectory: walked" grep -q "walking the tree (no XFS bulkstat: not the root" "$WORK/sub.err"
"$MAPTBL" stats --bulkstat "$X/a" > /dev/null 2> "$WORK/sub2.err"
check "subdirectory with --bulkstat: status 3" test $? = 3
check "subdirectory with --bulkstat: says why" grep -q "not the root directory of an XFS" "$WORK/sub2.err"
"$MAPTBL" stats --bulkstat --per-file "$X" > /dev/null 2>&1
check "--bulkstat --per-file: usage error" test $? = 2
"$MAPTBL" stats --bulkstat=fast "$X" > /dev/null 2>&1
check "--bulkstat=fast: usage error" test $? = 2
if command -v setpriv >/dev/null; then
	chmod 755 "$WORK"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$MAPTBL" -v stats --json "$X" \
		> "$WORK/user.json" 2> "$WORK/user.err"
	check "unprivileged: walked" grep -q "no XFS bulkstat: it needs CAP_SYS_ADMIN" "$WORK/user.err"
	summarize "$WORK/user.json" user
	check "unprivileged: the same files" test "$(field user files)" = "$files"
	chmod 700 "$WORK"
fi
finish
