#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data profiles other than SINGLE. DUP (one device) and RAID1 (two): a device write would update
# one copy only, so a writable table is refused ("profile"); a read-only table reads the first
# copy: its extents equal filefrag's translated through stripe 0 of btrfs-progs' chunk tree, and
# 'maptbl cat' equals the file. RAID0 (two devices): small files each inside one 64 KiB stripe
# unit are read from the right device (cat equals the file, and both devices are used); a file
# striped over both devices is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/btrfs-lib.sh"
need_root_and_loop
need_btrfs
BS=4096

# mirrored NAME: a NOCOW file on a DUP or RAID1 filesystem mounted at $MNT (first device $1).
mirrored() {
	local dev=$1 name=$2 f=$MNT/data out
	nocow_file "$f" && dd if=/dev/urandom of="$f" bs=1M count=6 status=none
	sync
	out=$("$MAPTBL" build "$f" -o "$WORK/$name-w.mtb" 2>&1)
	check "$name: refused for a writable table (status 1)" test $? = 1
	check "$name: the message names the profile rule" grep -q "bytes 0\.\.6291455: profile: refused for a writable table (--read-only allows it)" <<<"$out"
	check "$name: no table written" test ! -e "$WORK/$name-w.mtb"
	"$MAPTBL" build "$f" --read-only -o "$WORK/$name.mtb" -q 2>/dev/null || { check "$name: accepted --read-only" false; return; }
	btrfs_chunks "$dev" >"$WORK/chunks"
	check "$name: read-only: extents equal filefrag's through stripe 0" \
		diff <(filefrag_devices "$f" $BS "$WORK/chunks" | cut -d' ' -f2-) <(table_extents "$WORK/$name.mtb")
	check "$name: read-only: maptbl cat equals the file" cat_matches "$WORK/$name.mtb" "$f"
}

# two_devices PROFILE: a btrfs with data PROFILE (metadata RAID1) on two new loop devices,
# mounted on $WORK/PROFILE; sets A (the first device) and MNT.
two_devices() {
	truncate -s 400M "$WORK/$1a.img" "$WORK/$1b.img"
	attach "$WORK/$1a.img"
	A=$DEV
	attach "$WORK/$1b.img"
	mkfs.btrfs -q -f -d "$1" -m raid1 "$A" "$DEV" >/dev/null 2>&1 || { echo "mkfs.btrfs -d $1 failed"; exit 1; }
	bmount "$A" "$1"
}

# DUP on one device.
truncate -s 512M "$WORK/dup.img"
attach "$WORK/dup.img"
mkfs.btrfs -q -f -d dup -m dup "$DEV" >/dev/null 2>&1 || { echo "mkfs.btrfs -d dup failed"; exit 1; }
bmount "$DEV" dup
mirrored "$DEV" dup
umount "$MNT" && unset 'MOUNTS[${#MOUNTS[@]}-1]'

# RAID1 on two devices.
two_devices raid1
mirrored "$A" raid1
umount "$MNT" && unset 'MOUNTS[${#MOUNTS[@]}-1]'

# RAID0 on two devices: 16 KiB files fill 64 KiB stripe units one after the other.
two_devices raid0
cd "$MNT"
for i in $(seq 1 16); do
	nocow_file "s$i" && dd if=/dev/urandom of="s$i" bs=16K count=1 conv=fsync status=none
done
nocow_file big && dd if=/dev/urandom of=big bs=1M count=2 status=none
sync
ok=0 bad=0 disks=
for i in $(seq 1 16); do
	out=$("$MAPTBL" build "s$i" --read-only -o "$WORK/s$i.mtb" 2>&1)
	if [ $? = 0 ]; then
		cat_matches "$WORK/s$i.mtb" "s$i" && ok=$((ok + 1)) || bad=$((bad + 1))
		disks+="$(disk_of "$WORK/s$i.mtb")"$'\n'
	elif ! grep -q "other-device: refused" <<<"$out"; then
		bad=$((bad + 1))
		echo "  s$i: $out"
	fi
done
check "raid0: every small file read through its table equals the file ($ok, $bad wrong)" test $ok -ge 8 -a $bad = 0
check "raid0: the small files are on both devices" test "$(sort -u <<<"$disks" | grep -c img)" = 2
check "raid0: a small file is refused for a writable table (profile)" \
	grep -q "profile: refused for a writable table" <("$MAPTBL" build s1 -o "$WORK/x.mtb" 2>&1)
out=$("$MAPTBL" build big --read-only -o "$WORK/big.mtb" 2>&1)
check "raid0: a striped file is refused --read-only (status 1)" test $? = 1
check "raid0: as other-device" grep -q "big: bytes [0-9.]*: other-device: refused for a read-only table" <<<"$out"
cd /
finish
