#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tables from files on a mounted ext4 (loop device): for every kind of file, the extent list
# equals filefrag's, 'maptbl cat' through the table equals the file read through the filesystem,
# 'verify --against' accepts the unchanged file and catches a changed one, and refused files fail
# with their rule and leave no table.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs ext4
command -v filefrag >/dev/null || skip "no filefrag"

mkfs_mount ext4 1G e4 -O inline_data
cd "$MNT"
BS=4096

# The files.
dd if=/dev/urandom of=contig bs=1M count=8 status=none
"$FRAGMENT" frag-a frag-b 12000 $BS || exit 1
truncate -s 64M sparse
dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none
dd if=/dev/urandom of=sparse bs=4K count=5 seek=9000 conv=notrunc status=none
fallocate -l 16M prealloc
dd if=/dev/urandom of=prealloc bs=4K count=100 seek=1000 conv=notrunc status=none
truncate -s 5G big-sparse
dd if=/dev/urandom of=big-sparse bs=1M count=2 seek=4600 conv=notrunc status=none
printf 'tiny\n' > inline
sync

for f in contig frag-a sparse prealloc big-sparse; do
	"$MAPTBL" build "$f" -o "$WORK/$f.mtb" -q || { check "build $f" false; continue; }
	off=$(($(grep -o '+[0-9]*' <<<"$("$MAPTBL" build "$f" -o "$WORK/x.mtb" | tail -1)" | head -1 | tr -d +) / BS))
	check "$f: extents equal filefrag's" \
		diff <(filefrag_extents "$f" $BS) <(table_extents "$WORK/$f.mtb" "$off")
	check "$f: maptbl cat equals the file" cat_matches "$WORK/$f.mtb" "$f" "$WORK/e4.img"
	check "$f: verify --against accepts it" "$MAPTBL" verify -q "$WORK/$f.mtb" --against "$f"
done
n=$(table_extents "$WORK/frag-a.mtb" | wc -l)
check "frag-a has at least 10000 extents ($n)" test "$n" -ge 10000
check "prealloc has unwritten extents" grep -q unwritten <(table_extents "$WORK/prealloc.mtb")
check "big-sparse: virtual disk of 5 GiB" test "$(json_field "$WORK/big-sparse.mtb" virtual_blocks)" = $((5 * 1024 * 1024 * 1024 / BS))

# Refused: inline data. The message names the file, the byte range and the rule.
out=$("$MAPTBL" build inline -o "$WORK/inline.mtb" 2>&1)
rc=$?
check "inline: refused with status 1" test $rc = 1
check "inline: the message names the rule" grep -q "inline: bytes 0\.\.4: inline: refused" <<<"$out"
check "inline: no table written" test ! -e "$WORK/inline.mtb"

# The layout changes: verify --against notices.
fallocate -p -o 0 -l 1M contig
check "punched contig: verify --against fails" \
	eval '! "$MAPTBL" verify -q "$WORK/contig.mtb" --against contig 2>/dev/null'
"$MAPTBL" verify "$WORK/contig.mtb" --against contig 2>&1 | sed 's/^/  /'
truncate -s 32M sparse
check "truncated sparse: verify --against fails" \
	eval '! "$MAPTBL" verify -q "$WORK/sparse.mtb" --against sparse 2>/dev/null'
cd /
finish
