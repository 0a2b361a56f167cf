#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tables from files on a one-device btrfs (loop device, NO_HOLES as mkfs.btrfs makes it now): for
# NOCOW files written, fallocated, sparse and fragmented, the extents equal filefrag's translated
# through btrfs-progs' reading of the chunk tree, and 'maptbl cat' equals the file read through
# the filesystem (the proof the chunk map is right). Without CAP_SYS_ADMIN: status 3, saying why.
# Copy-on-write, inline, compressed, reflinked and snapshotted files are refused for a writable
# table with their rule and byte range; what is safe for reads is accepted --read-only. After a snapshot and a write, and after 'btrfs balance',
# 'verify --against' catches the moved data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/btrfs-lib.sh"
need_root_and_loop
need_btrfs

truncate -s 1G "$WORK/b.img"
attach "$WORK/b.img"
mkfs.btrfs -q -f "$DEV" >/dev/null 2>&1 || { echo "mkfs.btrfs failed"; exit 1; }
bmount "$DEV" b
cd "$MNT"
BS=4096

# NOCOW files of each kind.
nocow_file contig && dd if=/dev/urandom of=contig bs=1M count=8 status=none
nocow_file prealloc && fallocate -l 16M prealloc &&
	dd if=/dev/urandom of=prealloc bs=4K count=100 seek=1000 conv=notrunc status=none
nocow_file sparse && truncate -s 64M sparse &&
	dd if=/dev/urandom of=sparse bs=64K count=3 seek=100 conv=notrunc status=none &&
	dd if=/dev/urandom of=sparse bs=4K count=5 seek=9000 conv=notrunc status=none
nocow_file frag-a && nocow_file frag-b
for i in $(seq 0 99); do
	dd if=/dev/urandom of=frag-a bs=4K count=1 seek=$i conv=notrunc,fsync status=none
	dd if=/dev/urandom of=frag-b bs=4K count=1 seek=$i conv=notrunc,fsync status=none
done
sync

chunks=$WORK/chunks
for f in contig prealloc sparse frag-a; do
	out=$("$MAPTBL" build "$f" -o "$WORK/$f.mtb" 2>&1) || { echo "$out"; check "build $f" false; continue; }
	check "$f: the build notes what moves btrfs data" grep -q "a balance, a device remove" <<<"$out"
	btrfs_chunks "$DEV" >"$chunks"
	check "$f: extents equal filefrag's through the chunk tree" \
		diff <(filefrag_devices "$f" $BS "$chunks" | cut -d' ' -f2-) <(table_extents "$WORK/$f.mtb")
	check "$f: on device 1" test "$(filefrag_devices "$f" $BS "$chunks" | cut -d' ' -f1 | sort -u)" = 1
	check "$f: the table's disk is the image" test "$(disk_of "$WORK/$f.mtb")" = "$WORK/b.img"
	check "$f: maptbl cat equals the file" cat_matches "$WORK/$f.mtb" "$f"
	check "$f: verify --against accepts it" "$MAPTBL" verify -q "$WORK/$f.mtb" --against "$f"
done
n=$(table_extents "$WORK/frag-a.mtb" | wc -l)
check "frag-a has many extents ($n)" test "$n" -ge 20
check "prealloc has unwritten extents" grep -q unwritten <(table_extents "$WORK/prealloc.mtb")
check "sparse has holes (NO_HOLES: implicit)" test "$(table_extents "$WORK/sparse.mtb" | wc -l)" = 2

# refused NAME RULE [RANGE]: a writable table is refused, naming the rule (and the byte range).
refused() {
	local out rc t=$WORK/${1//\//-}-w.mtb
	out=$("$MAPTBL" build "$1" -o "$t" 2>&1)
	rc=$?
	check "$1: refused for a writable table (status 1)" test $rc = 1
	check "$1: the message names $2${3:+ and bytes $3}" grep -q "$1: bytes ${3:-[0-9.]*}: $2: refused" <<<"$out"
	check "$1: no table written" test ! -e "$t"
}
# read_only_ok NAME: accepted --read-only, and maptbl cat equals the file.
read_only_ok() {
	local t=$WORK/${1//\//-}-r.mtb
	check "$1: accepted --read-only" "$MAPTBL" build "$1" --read-only -o "$t" -q 2>/dev/null &&
		check "$1: read-only: maptbl cat equals the file" cat_matches "$t" "$1"
}

# FIEMAP on btrfs gives btrfs logical addresses: --source fiemap is refused there.
out=$("$MAPTBL" build contig --source fiemap -o "$WORK/f.mtb" 2>&1)
check "--source fiemap on btrfs: refused (status 1)" test $? = 1
check "--source fiemap on btrfs: says why" grep -q "FIEMAP gives btrfs logical addresses" <<<"$out"
check "--source btrfs is the default there" cmp <("$MAPTBL" build contig --source btrfs -o - 2>/dev/null) "$WORK/contig.mtb"

# Without CAP_SYS_ADMIN the btrfs trees cannot be searched: status 3, and the message says why.
if command -v setpriv >/dev/null; then
	chmod 755 "$WORK" "$MNT"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$MAPTBL" build contig -o /dev/null 2>&1)
	check "not root: could not check (status 3)" test $? = 3
	check "not root: the message names CAP_SYS_ADMIN" grep -q "needs CAP_SYS_ADMIN" <<<"$out"
	echo "  $out"
fi

# Copy-on-write (no chattr +C): data checksums and COW; reads are fine.
dd if=/dev/urandom of=cow bs=1M count=4 status=none
refused cow cow 0..4194303
refused cow checksummed 0..4194303
read_only_ok cow

# Inline (a small copy-on-write file: btrfs does not inline NOCOW data): refused for both.
printf 'tiny\n' >inline
refused inline inline 0..4
check "inline: refused --read-only too" eval '! "$MAPTBL" build inline --read-only -o "$WORK/i.mtb" 2>/dev/null'

# Reflinked NOCOW file (cp --reflink needs both NOCOW): shared.
nocow_file reflinked && cp --reflink=always contig reflinked
refused reflinked shared 0..8388607
read_only_ok reflinked
refused contig shared 0..8388607 # the original shares them now too

# A snapshot: the file in the subvolume shares every extent with its copy in the snapshot.
btrfs subvolume create vol >/dev/null
nocow_file vol/disk && dd if=/dev/urandom of=vol/disk bs=1M count=4 status=none
sync
"$MAPTBL" build vol/disk -o "$WORK/vol.mtb" -q 2>/dev/null
check "vol/disk: accepted before the snapshot" test -e "$WORK/vol.mtb"
btrfs subvolume snapshot vol snap >/dev/null
refused vol/disk shared 0..4194303
read_only_ok vol/disk
check "vol/disk: the build names the snapshot" \
	grep -q "subvolume 256 (vol), snapshots: snap" <("$MAPTBL" build vol/disk --read-only -o "$WORK/x.mtb" 2>/dev/null)
# A write after the snapshot moves the written range (NOCOW is copied once).
dd if=/dev/urandom of=vol/disk bs=1M count=1 conv=notrunc status=none
sync
out=$("$MAPTBL" verify "$WORK/vol.mtb" --against vol/disk 2>&1)
check "snapshot + write: verify --against fails (status 1)" test $? = 1
echo "  $out"

# Compression: a compress=zstd mount compresses what a COW file gets: encoded, refused for both.
mount -o remount,compress=zstd "$MNT"
yes 'compressible text' | head -c 4M >compressed
sync
refused compressed encoded
check "compressed: refused --read-only too" \
	eval '! "$MAPTBL" build compressed --read-only -o "$WORK/c.mtb" 2>/dev/null'
mount -o remount,compress=no "$MNT"

# A balance relocates every data chunk: the old table is stale, a new one is right.
"$MAPTBL" build frag-b -o "$WORK/frag-b.mtb" -q 2>/dev/null
check "frag-b: verify --against accepts it before the balance" \
	"$MAPTBL" verify -q "$WORK/frag-b.mtb" --against frag-b
btrfs balance start -d "$MNT" >/dev/null 2>&1 || btrfs balance start --full-balance "$MNT" >/dev/null
out=$("$MAPTBL" verify "$WORK/frag-b.mtb" --against frag-b 2>&1)
check "after balance: verify --against fails (status 1)" test $? = 1
check "after balance: it says the extent moved" grep -q "stale: extent" <<<"$out"
echo "  $out"
"$MAPTBL" build frag-b -o "$WORK/frag-b2.mtb" -q 2>/dev/null
check "after balance: a new table's cat equals the file" cat_matches "$WORK/frag-b2.mtb" frag-b
btrfs_chunks "$DEV" >"$chunks"
check "after balance: extents equal filefrag's through the new chunks" \
	diff <(filefrag_devices frag-b $BS "$chunks" | cut -d' ' -f2-) <(table_extents "$WORK/frag-b2.mtb")
cd /
finish
