#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats --image on ext4 (extent trees), ext4 with inline data and ext3 (block maps) with
# known fragmentation: while mounted, filefrag counts every file; unmounted, --image --per-file
# must give every file the same count (and the same holes as the live walk), the summary must
# count every regular inode once with the same total, and the top list must name the most
# fragmented file; the summary is the same for 1, 2, 3 and 16 scan threads. A mounted device is
# refused; an inode with a corrupt extent tree is counted as an error and the scan goes on.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs ext4
command -v filefrag >/dev/null || skip "no filefrag"
command -v debugfs >/dev/null || skip "no debugfs"
BS=4096

ff_count() {
	filefrag "$1" | sed -n 's/.*: \([0-9]*\) extents\? found$/\1/p'
}

# frag_writes A B N: two files written a block at a time, alternately, each write synchronous
# (ext3 has no fallocate for the fragmenter).
frag_writes() {
	local i
	for ((i = 0; i < $3; i++)); do
		dd if=/dev/urandom of="$1" bs=$BS count=1 oflag=sync,append conv=notrunc status=none &&
			dd if=/dev/urandom of="$2" bs=$BS count=1 oflag=sync,append conv=notrunc status=none ||
			return 1
	done
}

# top_is N FILE: the first entry of the text summary's top list has N extents and is frag-a/b.
top_is() {
	grep -A2 "most fragmented" "$2" | tail -1 | grep -Eq "^ *$1 .*/d1/frag-[ab]\$"
}

make_tree() {
	local frag=("$FRAGMENT")
	[ "$1" = ext3 ] && frag=(frag_writes)
	mkdir -p d1 d2/small d2/deep/er
	(
		cd d1 || exit 1
		"${frag[@]}" frag-a frag-b 300 $BS || exit 1
		dd if=/dev/urandom of=contig bs=1M count=4 status=none
		# more than 32768 blocks: ext4 splits it into records, filefrag counts one extent
		dd if=/dev/zero of=big bs=1M count=200 status=none
		truncate -s 64M sparse
		dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none
		dd if=/dev/urandom of=sparse bs=4K count=5 seek=9000 conv=notrunc status=none
		if [ "$1" != ext3 ]; then
			fallocate -l 16M prealloc
			dd if=/dev/urandom of=prealloc bs=4K count=100 seek=1000 conv=notrunc status=none
			printf 'x' > keep
			fallocate -n -o 1M -l 1M keep
		fi
		: > empty
		ln contig hardlink
		# a fragmented file with two names: the top list names it by the ordered pass
		# (the first directory in inode order), not by the directories near its inode
		ln frag-a frag-a-again
		ln -s contig symlink
		mkfifo fifo
	) || exit 1
	for i in $(seq 1 60); do
		head -c $((i * 17)) /dev/urandom > "d2/small/f$i"
	done
	"${frag[@]}" d2/deep/er/frag-c d2/deep/er/frag-d 100 $BS || exit 1
}

# check_fs NAME TYPE [mkfs options]
check_fs() {
	local name=$1 type=$2 dev mnt
	shift 2
	mkfs_mount "$type" 1G "$name" "$@"
	dev=$DEV mnt=$MNT
	cd "$mnt" || exit 1
	make_tree "$type" || exit 1
	sync
	find . -type f | sed 's|^\.||' | sort > "$WORK/$name.files"
	while read -r p; do
		echo "$p $(ff_count ".$p")"
	done < "$WORK/$name.files" > "$WORK/$name.ff"
	"$MAPTBL" stats --per-file . | awk -F'\t' 'NR > 1 { sub(/^\./, "", $1); print $1, $5 }' |
		sort > "$WORK/$name.live-holes"
	local inodes want_ext
	find . -type f -printf '%i\n' | sort -u > "$WORK/$name.inodes"
	inodes=$(wc -l < "$WORK/$name.inodes")
	want_ext=$(find . -type f -printf '%i %p\n' | sort -u -k1,1 | while read -r _ p; do
		ff_count "$p"; done | awk '{ s += $1 } END { print s }')
	"$MAPTBL" stats --image "$dev" >/dev/null 2>"$WORK/$name.mounted"
	check "$name: a mounted device is refused (status 3)" test $? = 3
	check "$name: ... saying so" grep -q "is mounted" "$WORK/$name.mounted"
	cd /
	umount "$mnt" && unset 'MOUNTS[${#MOUNTS[@]}-1]'

	"$MAPTBL" stats --image "$dev" --per-file > "$WORK/$name.tsv"
	check "$name: --image --per-file exits 0" test $? = 0
	awk -F'\t' 'NR > 1 { print $1, $3 }' "$WORK/$name.tsv" | sort > "$WORK/$name.counts"
	check "$name: every file's extents equal filefrag's ($(wc -l < "$WORK/$name.ff") files)" \
		diff "$WORK/$name.ff" "$WORK/$name.counts"
	awk -F'\t' 'NR > 1 { print $1, $5 }' "$WORK/$name.tsv" | sort > "$WORK/$name.img-holes"
	check "$name: every file's holes equal the live walk's" \
		diff "$WORK/$name.live-holes" "$WORK/$name.img-holes"
	if [ "$type" = ext4 ]; then
		check "$name: big (over 32768 blocks) has more than one record" \
			awk -F'\t' '$1 == "/d1/big" && $4 >= 2 { ok = 1 } END { exit !ok }' "$WORK/$name.tsv"
		# written in the middle of unwritten, physically contiguous: 3 records, 1 extent
		check "$name: prealloc is fewer extents than records, and unwritten" \
			awk -F'\t' '$1 == "/d1/prealloc" && $3 < $4 && $6 >= 1 { ok = 1 } END { exit !ok }' \
			"$WORK/$name.tsv"
	fi
	"$MAPTBL" stats --image "$WORK/$name.img" --json > "$WORK/$name.json"
	check "$name: the summary counts every regular inode once ($inodes)" \
		grep -q "\"files\": $inodes," "$WORK/$name.json"
	check "$name: ... and their extents ($want_ext)" \
		grep -q "\"extents\": $want_ext," "$WORK/$name.json"
	# The parallel inode scan: any thread count gives the same document. It means something
	# only when the files' inodes lie in several block groups (the Orlov allocator spreads
	# top-level directories): checked too.
	local ipg groups t
	ipg=$(dumpe2fs -h "$WORK/$name.img" 2>/dev/null | sed -n 's/^Inodes per group: *//p')
	groups=$(cut -d' ' -f1 "$WORK/$name.inodes" | awk -v g="$ipg" '{ print int(($1 - 1) / g) }' |
		sort -u | wc -l)
	check "$name: the files' inodes lie in $groups block groups (at least 2)" test "$groups" -ge 2
	for t in 1 2 3 16; do
		"$MAPTBL" stats --image "$WORK/$name.img" --threads $t --json > "$WORK/$name-t$t.json"
		check "$name: --threads $t gives the same summary" \
			cmp "$WORK/$name.json" "$WORK/$name-t$t.json"
	done
	local top
	top=$(sort -k2,2n "$WORK/$name.ff" | tail -1 | cut -d' ' -f2)
	"$MAPTBL" stats --image "$WORK/$name.img" --top 3 > "$WORK/$name.txt"
	check "$name: the top list starts with a file of $top extents, named" \
		top_is "$top" "$WORK/$name.txt"
	# Every file of a longer top list is named (most by the directories just below its inode
	# number, the rest by the ordered pass), with a name that filefrag gives those extents.
	"$MAPTBL" stats --image "$WORK/$name.img" --top 20 --json |
		python3 -c 'import json, sys
for t in json.load(sys.stdin)["top"]: print(t["path"], t["extents"])' | sort > "$WORK/$name.top"
	check "$name: 20 files in the top list" test "$(wc -l < "$WORK/$name.top")" = 20
	check "$name: each named, with filefrag's extents for that name" \
		test -z "$(comm -23 "$WORK/$name.top" <(sort "$WORK/$name.ff"))"
}

# 256 inodes: 32 per block group, so that the files fill several groups (ext4's flex_bg would
# put them all in group 0) and the parallel scan's threads all have inodes to count.
check_fs ext4 ext4 -N 256
# This used to loop for ever with --per-file: libext2fs reports the ".." of an inline-data
# directory as an ordinary entry, and the walk went back up (fixed in stats_image.c dir_cb).
check_fs inline ext4 -O inline_data -N 256
check_fs ext3 ext3

# A corrupt extent tree: counted as an error naming the inode, the other files still counted.
cp "$WORK/ext4.img" "$WORK/bad.img"
ino=$(debugfs -R "stat /d1/contig" "$WORK/bad.img" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\).*/\1/p')
debugfs -w -R "sif <$ino> block[0] 0x1234" "$WORK/bad.img" >/dev/null 2>&1
"$MAPTBL" stats --image "$WORK/bad.img" --json > "$WORK/bad.json" 2>/dev/null
check "corrupt extent tree: status 0" test $? = 0
check "corrupt extent tree: one error, inode $ino" grep -q "\"example\": \"inode $ino\"" "$WORK/bad.json"
good=$(grep -m1 -o '"files": [0-9]*' "$WORK/ext4.json" | grep -o '[0-9]*$')
check "corrupt extent tree: the other files counted" \
	grep -q "\"files\": $((good - 1))," "$WORK/bad.json"
finish
