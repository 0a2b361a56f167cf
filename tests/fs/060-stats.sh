#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats on a mounted ext4 and a mounted XFS with known fragmentation: every file's extent
# count equals filefrag's; the rows are the same with io_uring batches, plain calls (--no-uring)
# and io_uring refused; holes, unwritten and shared records where they must be; the JSON of
# two runs over two subdirectories, merged, equals the run over both; one filesystem unless
# --cross-mounts; unreadable files and directories are counted errors (as an unprivileged user),
# and a tree of nothing but unreadable files gives status 1.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs ext4
need_fs xfs
command -v filefrag >/dev/null || skip "no filefrag"
BS=4096

# make_tree DIR REFLINK: the files, in DIR/d1 and DIR/d2.
make_tree() {
	local d=$1
	mkdir -p "$d/d1" "$d/d2/deep/er" "$d/d2/small"
	(
		cd "$d/d1" || exit 1
		dd if=/dev/urandom of=contig bs=1M count=8 status=none
		"$FRAGMENT" frag-a frag-b 3000 $BS || exit 1
		truncate -s 64M sparse
		dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none
		dd if=/dev/urandom of=sparse bs=4K count=5 seek=9000 conv=notrunc status=none
		fallocate -l 16M prealloc
		dd if=/dev/urandom of=prealloc bs=4K count=100 seek=1000 conv=notrunc status=none
		: > empty
		ln -s contig link-to-contig
		mkfifo fifo
	) || exit 1
	(
		cd "$d/d2" || exit 1
		for i in $(seq 1 300); do
			head -c $((i * 37)) /dev/urandom > "small/f$i"
		done
		truncate -s 3G deep/er/big-sparse
		dd if=/dev/urandom of=deep/er/big-sparse bs=1M count=2 seek=2000 conv=notrunc status=none
		"$FRAGMENT" deep/frag-c deep/frag-d 500 $BS || exit 1
		if [ "$2" = reflink ]; then
			dd if=/dev/urandom of=orig bs=1M count=4 status=none
			cp --reflink=always orig reflinked
		fi
	) || exit 1
}

# filefrag's "N extents found" for FILE.
ff_count() {
	filefrag "$1" | sed -n 's/.*: \([0-9]*\) extents\? found$/\1/p'
}

# check_tree NAME DIR: the per-file rows against filefrag, the expected holes and flags, and
# the merge of two runs against one run (paths are relative to DIR in every run, so the JSON
# must be identical byte for byte).
check_tree() {
	local name=$1 dir=$2
	cd "$dir" || exit 1
	"$MAPTBL" stats --per-file --threads 2 . > "$WORK/$name.tsv"
	check "$name: stats --per-file exits 0" test $? = 0
	local rows files
	rows=$(($(wc -l < "$WORK/$name.tsv") - 1))
	files=$(find . -xdev -type f | wc -l)
	check "$name: one row per regular file ($rows of $files)" test "$rows" = "$files"
	# Every file: extents equal filefrag's.
	local bad=0 path size ext rec holes unw shared tb depth want
	while IFS=$'\t' read -r path size ext rec holes unw shared tb depth; do
		[ "$path" = path ] && continue
		want=$(ff_count "$path")
		if [ "$want" != "$ext" ]; then
			echo "  $path: maptbl $ext extents, filefrag $want"
			bad=1
		fi
	done < "$WORK/$name.tsv"
	check "$name: every file's extents equal filefrag's" test $bad = 0
	# The same rows with plain system calls as with io_uring batches, and, as another user, when
	# io_uring is refused (the fallback) as when it is not.
	"$MAPTBL" stats --per-file --threads 2 --no-uring . > "$WORK/$name-plain.tsv"
	check "$name: --no-uring gives the same rows" \
		diff <(sort "$WORK/$name.tsv") <(sort "$WORK/$name-plain.tsv")
	if command -v setpriv >/dev/null && [ -w /proc/sys/kernel/io_uring_disabled ]; then
		local nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
		chmod 755 "$WORK"
		$nobody "$MAPTBL" stats --per-file --threads 2 . > "$WORK/$name-user.tsv"
		io_uring_off
		$nobody "$MAPTBL" -vv stats --per-file --threads 2 . > "$WORK/$name-refused.tsv" \
			2> "$WORK/$name-refused.err"
		check "$name: io_uring refused: stats exits 0" test $? = 0
		io_uring_on
		chmod 700 "$WORK"
		check "$name: io_uring refused: the plain calls were used" \
			grep -q "no io_uring (Operation not permitted): plain calls" "$WORK/$name-refused.err"
		check "$name: another user reads every file ($(wc -l < "$WORK/$name-user.tsv") rows)" \
			test "$(wc -l < "$WORK/$name-user.tsv")" = "$(wc -l < "$WORK/$name.tsv")"
		check "$name: io_uring refused: the same rows" \
			diff <(sort "$WORK/$name-user.tsv") <(sort "$WORK/$name-refused.tsv")
	else
		echo "skip $name: io_uring refused: no setpriv or no /proc/sys/kernel/io_uring_disabled"
	fi
	row() { awk -F'\t' -v p="$1" '$1 == p' "$WORK/$name.tsv"; }
	col() { row "$1" | cut -f"$2"; }
	check "$name: frag-a has at least 1000 extents ($(col ./d1/frag-a 3))" \
		test "$(col ./d1/frag-a 3)" -ge 1000
	check "$name: contig is one extent" test "$(col ./d1/contig 3)" = 1
	check "$name: sparse has 3 holes ($(col ./d1/sparse 5))" test "$(col ./d1/sparse 5)" = 3
	check "$name: big-sparse has 2 holes" test "$(col ./d2/deep/er/big-sparse 5)" = 2
	check "$name: prealloc has unwritten records" test "$(col ./d1/prealloc 6)" -ge 1
	check "$name: prealloc has written records too" test "$(col ./d1/prealloc 4)" -gt "$(col ./d1/prealloc 6)"
	check "$name: contig is not shared" test "$(col ./d1/contig 7)" = 0
	check "$name: empty file: 0 extents, depth 0" test "$(col ./d1/empty 3),$(col ./d1/empty 9)" = 0,0
	check "$name: frag-a's table is deeper than 1" test "$(col ./d1/frag-a 9)" -ge 2
	check "$name: symlink and fifo are not rows" test -z "$(row ./d1/link-to-contig)$(row ./d1/fifo)"

	# Merge: d1 and d2 apart, merged, equal d1 and d2 together.
	"$MAPTBL" stats --json d1 > "$WORK/$name-a.json" &&
		"$MAPTBL" stats --json --threads 1 d2 > "$WORK/$name-b.json" &&
		"$MAPTBL" stats --json --threads 3 d1 d2 > "$WORK/$name-ab.json" &&
		"$MAPTBL" stats --json --merge "$WORK/$name-a.json" "$WORK/$name-b.json" > "$WORK/$name-m.json"
	check "$name: the JSON runs exit 0" test $? = 0
	check "$name: merge of d1 and d2 equals the run over both" \
		diff "$WORK/$name-ab.json" "$WORK/$name-m.json"
	local n
	n=$(grep -m1 -o '"files": [0-9]*' "$WORK/$name-ab.json" | grep -o '[0-9]*$')
	check "$name: the summary counts every file ($n)" test "$n" = "$files"
	"$MAPTBL" stats d1 d2 > "$WORK/$name.txt"
	first_top() { grep -A2 "most fragmented" "$1" | tail -1 | grep -q "d1/frag-a"; }
	check "$name: text summary names frag-a first (ties by path)" first_top "$WORK/$name.txt"
	cd /
}

mkfs_mount ext4 1G e4
E4=$MNT
make_tree "$E4" none || exit 1
mkfs_mount xfs 1G x -m reflink=1
X=$MNT
make_tree "$X" reflink || exit 1
sync

check_tree ext4 "$E4"
check_tree xfs "$X"
cd "$X"
"$MAPTBL" stats --per-file . > "$WORK/x2.tsv"
shared_of() { awk -F'\t' -v p="$1" '$1 == p { print $7 }' "$WORK/x2.tsv"; }
check "xfs: reflinked has shared records" test "$(shared_of ./d2/reflinked)" -ge 1
check "xfs: its original too" test "$(shared_of ./d2/orig)" -ge 1
cd /

# One filesystem unless --cross-mounts: XFS mounted inside the ext4 tree.
mkdir "$E4/mnt"
mount --bind "$X" "$E4/mnt" && MOUNTS+=("$E4/mnt")
one=$("$MAPTBL" stats --per-file "$E4" | wc -l)
all=$("$MAPTBL" stats --per-file --cross-mounts "$E4" | wc -l)
xf=$(find "$X" -type f | wc -l)
check "cross-mounts adds the XFS files ($one + $xf = $all)" test $((one + xf)) = "$all"
umount "$E4/mnt" && unset 'MOUNTS[${#MOUNTS[@]}-1]'

# Errors, as an unprivileged user (root reads everything): an unreadable directory and an
# unreadable file are counted, the walk finishes with status 0 and says how many.
if command -v setpriv >/dev/null; then
	chmod 755 "$WORK"
	mkdir -p "$E4/err/closed" "$E4/err/open" "$E4/none"
	echo x > "$E4/err/open/readable"
	echo x > "$E4/err/open/secret"
	echo x > "$E4/none/secret"
	chmod 000 "$E4/err/closed" "$E4/err/open/secret" "$E4/none/secret"
	asuser() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	out=$(asuser "$MAPTBL" stats --json "$E4/err" 2>"$WORK/err.txt")
	rc=$?
	check "errors: status 0 with counted errors" test $rc = 0
	check "errors: 1 file measured" grep -q '"files": 1,' <<<"$out"
	check "errors: 2 errors counted" grep -q '"errors": 2,' <<<"$out"
	check "errors: reason EACCES" grep -q '"errno": 13' <<<"$out"
	asuser "$MAPTBL" stats "$E4/err" >/dev/null 2>"$WORK/err.txt"
	check "errors: stderr says how many" grep -q "2 files or directories could not be read" "$WORK/err.txt"
	asuser "$MAPTBL" stats "$E4/none" >/dev/null 2>&1
	check "nothing scanned: status 1" test $? = 1
	asuser "$MAPTBL" stats "$E4/err/closed" >/dev/null 2>&1
	check "unreadable PATH given: status 3" test $? = 3
	chmod 700 "$WORK"
else
	echo "skip errors: no setpriv"
fi
"$MAPTBL" stats "$WORK/does-not-exist" >/dev/null 2>&1
check "missing PATH: status 3" test $? = 3

# A sample of this machine's own files: every 50th file of /usr against filefrag.
if [ -d /usr/share ]; then
	"$MAPTBL" stats --per-file /usr/share 2>/dev/null | awk -F'\t' 'NR > 1 && NR % 50 == 0' \
		> "$WORK/usr.tsv"
	bad=0
	while IFS=$'\t' read -r path size ext rest; do
		want=$(ff_count "$path")
		[ -z "$want" ] && continue # vanished meanwhile
		[ "$want" = "$ext" ] || { echo "  $path: maptbl $ext extents, filefrag $want"; bad=1; }
	done < "$WORK/usr.tsv"
	check "/usr/share sample ($(wc -l < "$WORK/usr.tsv") files): extents equal filefrag's" \
		test $bad = 0
fi
finish
