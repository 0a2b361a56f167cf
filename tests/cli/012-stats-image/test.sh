#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# maptbl stats --image: a small ext4 image made by mkfs.ext4 -d (no root needed) is read through
# libext2fs; bad images and misuse give one-line errors and the documented exit codes.
. "$(dirname "$0")/../lib.sh"
command -v mkfs.ext4 >/dev/null || { echo "SKIP: no mkfs.ext4"; exit 77; }
mkdir -p tree/sub/deeper
printf 'hello\n' > tree/a
head -c 10000 /dev/zero | tr '\0' x > tree/sub/b
head -c 200000 /dev/zero | tr '\0' y > tree/sub/deeper/c
: > tree/empty
ln tree/a tree/sub/a-again
ln -s a tree/link
truncate -s 8M img
mkfs.ext4 -q -F -b 4096 -O ^has_journal -d tree img || exit 1
echo "== per file: every name of a regular file, from the image's root"
"$MAPTBL" stats --image img --per-file | LC_ALL=C sort | cut -f1-7
echo "[exit ${PIPESTATUS[0]}]"
"$MAPTBL" stats --image img --per-file --csv | head -1
echo "== summary: every inode once (the hard link once)"
"$MAPTBL" stats --image img --top 2 | sed -n '1,3p;/most fragmented/,/^$/p'
"$MAPTBL" stats --image img --json > one.json
grep -m1 '"files"' one.json
echo "== two images add up, and merge like live runs"
cp img img2
"$MAPTBL" stats --image img --image img2 --json | grep -m1 '"files"'
"$MAPTBL" stats --merge --json one.json one.json | grep -m1 '"files"'
echo "== bad images"
run stats --image missing.img
head -c 1048576 /dev/zero > zeros.img
run stats --image zeros.img
printf 'tiny' > tiny.img
run stats --image tiny.img
run stats --image tree
run stats --json --image zeros.img
echo "== misuse"
run stats --image
run stats --image img tree
run stats --image img --merge one.json
run stats --image img --cross-mounts
run stats --image img --threads 0
echo "== the inode scan in threads gives the same summary"
for t in 1 2 5; do
	"$MAPTBL" stats --image img --threads $t --json | cmp - one.json && echo "--threads $t: the same"
done
echo "== the filesystem's own inodes are not files"
# This used to count the project quota file and the orphan file (regular inodes past the
# reserved range that no directory names) as files of the tree: 3 files here, not 1.
mkdir q
printf 'one file\n' > q/only
truncate -s 16M qimg
mkfs.ext4 -q -F -b 4096 -O quota,project,orphan_file -E quotatype=prjquota -d q qimg || exit 1
"$MAPTBL" stats --image qimg --json | grep -m1 '"files"'
