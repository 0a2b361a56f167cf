#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tables from files on a mounted XFS (loop device), through XFS_IOC_GETBMAPX: extents equal
# xfs_bmap's and filefrag's, maptbl cat equals the file; reflinked files are refused for a
# writable table and accepted read-only; the FIEMAP backend gives the same table.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs xfs
command -v xfs_bmap >/dev/null || skip "no xfs_bmap (xfsprogs)"

mkfs_mount xfs 600M x -m reflink=1
cd "$MNT"
BS=4096

# xfs_bmap -vp: "N: [lo..hi]: start..end AG (..) TOTAL FLAGS" in 512-byte units, or "hole";
# FLAGS 010000 is an unwritten extent. Printed in 4 KiB blocks, merged like filefrag_extents.
xfs_bmap_extents() {
	xfs_bmap -vp "$1" | awk '$3 != "hole" && $1 ~ /^[0-9]+:$/ {
		r = $2; gsub(/[\[\]:]/, "", r); split(r, a, /\.\./);
		split($3, b, /\.\./);
		l = a[1] / 8; p = b[1] / 8; n = (b[2] - b[1] + 1) / 8;
		u = ($NF == "010000") ? " unwritten" : "";
		if (have && u == pu && pl + pn == l && pp + pn == p) { pn += n; next }
		if (have) print pl, pp, pn pu;
		pl = l; pp = p; pn = n; pu = u; have = 1 }
		END { if (have) print pl, pp, pn pu }'
}

dd if=/dev/urandom of=contig bs=1M count=8 status=none
"$FRAGMENT" frag-a frag-b 12000 $BS || exit 1
truncate -s 64M sparse
dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none
fallocate -l 16M prealloc
dd if=/dev/urandom of=prealloc bs=4K count=100 seek=1000 conv=notrunc status=none
dd if=/dev/urandom of=orig bs=1M count=4 status=none
cp --reflink=always orig reflinked
sync

for f in contig frag-a sparse prealloc; do
	"$MAPTBL" build "$f" -o "$WORK/$f.mtb" -q || { check "build $f" false; continue; }
	check "$f: extents equal filefrag's" \
		diff <(filefrag_extents "$f" $BS) <(table_extents "$WORK/$f.mtb")
	check "$f: extents equal xfs_bmap's" diff <(xfs_bmap_extents "$f") <(table_extents "$WORK/$f.mtb")
	check "$f: maptbl cat equals the file" cat_matches "$WORK/$f.mtb" "$f"
	"$MAPTBL" build "$f" --source fiemap -o "$WORK/$f-fiemap.mtb" -q
	check "$f: the FIEMAP backend builds the same table" cmp "$WORK/$f.mtb" "$WORK/$f-fiemap.mtb"
done
check "prealloc has unwritten extents" grep -q unwritten <(table_extents "$WORK/prealloc.mtb")

out=$("$MAPTBL" build reflinked -o "$WORK/r.mtb" 2>&1)
rc=$?
check "reflinked: refused for a writable table" test $rc = 1
check "reflinked: the message names the rule" grep -q "shared: refused for a writable table (--read-only allows it)" <<<"$out"
check "reflinked: no table written" test ! -e "$WORK/r.mtb"
check "reflinked: accepted --read-only" "$MAPTBL" build reflinked --read-only -o "$WORK/r.mtb" -q
check "reflinked: maptbl cat equals the file" cat_matches "$WORK/r.mtb" reflinked
cd /
finish
