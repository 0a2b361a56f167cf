#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Absolute addresses through storage layers: ext4 inside a partition of a partitioned image
# (sfdisk, losetup -P), and XFS on a single linear device-mapper target over a loop device. The
# table maps the disk the device sees (the image file) with the partition start or the dm offset
# added, and maptbl cat through that disk equals the file. A two-target dm device is refused with
# a message that names the layer.
. "$(dirname "$0")/lib.sh"
need_root_and_loop
need_fs ext4
command -v sfdisk >/dev/null || skip "no sfdisk (fdisk)"

# 1. A partitioned image: partition 2 starts at 64 MiB.
truncate -s 256M "$WORK/disk.img"
printf 'label: dos\nstart=2048, size=65536\nstart=131072, size=262144\n' | sfdisk -q "$WORK/disk.img" || exit 1
attach -P "$WORK/disk.img"
PARTDEV=${DEV}p2
for _ in 1 2 3 4 5; do [ -b "$PARTDEV" ] && break; sleep 0.2; done
# Some kernels do not scan loop devices for partitions: partx adds them from user space.
[ -b "$PARTDEV" ] || partx -a "$DEV" 2>/dev/null
[ -b "$PARTDEV" ] || skip "the kernel did not create partition devices for $DEV"
mkfs.ext4 -q "$PARTDEV" || exit 1
mkdir -p "$WORK/p2"
mount "$PARTDEV" "$WORK/p2" || exit 1
MOUNTS+=("$WORK/p2")
dd if=/dev/urandom of="$WORK/p2/file" bs=1M count=6 status=none
truncate -s 10M "$WORK/p2/file"
sync
out=$("$MAPTBL" build "$WORK/p2/file" -o "$WORK/part.mtb")
echo "$out" | sed 's/^/  /'
check "partition: the disk is the image file" grep -q "disk: $WORK/disk.img (+67108864 bytes)" <<<"$out"
check "partition: the table records the image" test "$("$MAPTBL" --json dump "$WORK/part.mtb" | grep -o '"disk_path":"[^"]*"')" = "\"disk_path\":\"$WORK/disk.img\""
check "partition: maptbl cat (recorded disk) equals the file" cat_matches "$WORK/part.mtb" "$WORK/p2/file"
bs=$(json_field "$WORK/part.mtb" block_size)
check "partition: extents equal filefrag's plus the partition start" \
	diff <(filefrag_extents "$WORK/p2/file" "$bs") <(table_extents "$WORK/part.mtb" $((67108864 / bs)))
cp "$WORK/disk.img" "$WORK/copy.img"
out=$("$MAPTBL" cat "$WORK/part.mtb" --device "$WORK/copy.img" 2>&1 >/dev/null)
check "partition: cat refuses a disk that is not the recorded one" grep -q "not the disk" <<<"$out"
rm -f "$WORK/copy.img"

# 2. A linear dm target at 8 MiB into a loop device, XFS on it.
if command -v dmsetup >/dev/null && dmsetup version 2>/dev/null | grep -q '^Driver version' &&
	grep -qw xfs /proc/filesystems; then
	truncate -s 700M "$WORK/dm.img"
	attach "$WORK/dm.img"
	DMNAME=maptbl_fs_${MAPTBL_FS_TAG}_1
	echo "0 $((600 * 2048)) linear $DEV 16384" | dmsetup create $DMNAME || skip "dmsetup create failed"
	DMS+=("$DMNAME")
	mkfs.xfs -q -f /dev/mapper/$DMNAME >/dev/null || exit 1
	mkdir -p "$WORK/dm"
	mount /dev/mapper/$DMNAME "$WORK/dm" || exit 1
	MOUNTS+=("$WORK/dm")
	dd if=/dev/urandom of="$WORK/dm/file" bs=1M count=5 status=none
	sync
	out=$("$MAPTBL" build "$WORK/dm/file" -o "$WORK/dm.mtb")
	echo "$out" | sed 's/^/  /'
	check "dm-linear: the disk is the image behind the loop device" grep -q "disk: $WORK/dm.img (+8388608 bytes)" <<<"$out"
	check "dm-linear: maptbl cat equals the file" cat_matches "$WORK/dm.mtb" "$WORK/dm/file"

	# A dm device of two targets is refused, naming the layer.
	umount "$WORK/dm"
	DM2=maptbl_fs_${MAPTBL_FS_TAG}_2
	printf '0 %d linear %s 16384\n%d %d linear %s 1245184\n' $((300 * 2048)) "$DEV" \
		$((300 * 2048)) $((300 * 2048)) "$DEV" | dmsetup create $DM2 || exit 1
	DMS+=("$DM2")
	mkfs.ext4 -q /dev/mapper/$DM2 || exit 1
	mkdir -p "$WORK/dm2"
	mount /dev/mapper/$DM2 "$WORK/dm2" || exit 1
	MOUNTS+=("$WORK/dm2")
	echo data > "$WORK/dm2/f"
	dd if=/dev/urandom of="$WORK/dm2/f" bs=64K count=1 status=none
	sync
	out=$("$MAPTBL" -v build "$WORK/dm2/f" -o "$WORK/dm2.mtb" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/  /'
	check "two-target dm: refused" test $rc = 1
	check "two-target dm: the message names the layer" grep -q "device-mapper device dm-[0-9]* with 2 targets" <<<"$out"
	check "two-target dm: no table" test ! -e "$WORK/dm2.mtb"
else
	echo "(no device-mapper driver in this kernel, or no dmsetup or xfs: the dm part is skipped)"
fi
cd /
finish
