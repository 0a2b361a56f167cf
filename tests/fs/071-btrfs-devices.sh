#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A two-device btrfs with the SINGLE data profile (-d single), filled until files land on both
# devices: a file whose data is all on one device maps to that device's image (its extents equal
# filefrag's translated through btrfs-progs' reading of the chunk tree, and 'maptbl cat' equals
# the file); a file whose data spans both devices is refused, writable and read-only, naming the
# other device. After 'btrfs device remove' of the second device, 'verify --against' catches the
# moved file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/btrfs-lib.sh"
need_root_and_loop
need_btrfs

truncate -s 400M "$WORK/d1.img" "$WORK/d2.img"
attach "$WORK/d1.img"
D1=$DEV
attach "$WORK/d2.img"
D2=$DEV
mkfs.btrfs -q -f -d single -m dup "$D1" "$D2" >/dev/null 2>&1 || { echo "mkfs.btrfs failed"; exit 1; }
bmount "$D1" b
cd "$MNT"
BS=4096
img() { [ "$1" = 1 ] && echo "$WORK/d1.img" || echo "$WORK/d2.img"; }
devid_of() { # the btrfs device id of a loop device
	btrfs filesystem show "$MNT" | awk -v d="$1" '$NF == d { print $2 }'
}
ID1=$(devid_of "$D1")
ID2=$(devid_of "$D2")
check "two devices, ids $ID1 and $ID2" test -n "$ID1" -a -n "$ID2"

# Files until both devices hold a whole file; then one big enough to cross chunks of both.
seen1=0 seen2=0
for i in $(seq 1 12); do
	nocow_file "f$i" && dd if=/dev/urandom of="f$i" bs=1M count=24 status=none || break
	sync
	btrfs_chunks "$D1" >"$WORK/chunks"
	devs=$(filefrag_devices "f$i" $BS "$WORK/chunks" | cut -d' ' -f1 | sort -u | tr '\n' ' ')
	case "$devs" in
	"$ID1 ") seen1=$((seen1 + 1)); files1+=("f$i") ;;
	"$ID2 ") seen2=$((seen2 + 1)); files2+=("f$i") ;;
	esac
	[ $seen1 -gt 0 ] && [ $seen2 -gt 0 ] && break
done
check "a file wholly on device $ID1" test $seen1 -gt 0
check "a file wholly on device $ID2" test $seen2 -gt 0
nocow_file span && dd if=/dev/urandom of=span bs=1M count=120 status=none
sync
btrfs_chunks "$D1" >"$WORK/chunks"
check "span: on both devices (filefrag through the chunk tree)" \
	test "$(filefrag_devices span $BS "$WORK/chunks" | cut -d' ' -f1 | sort -u | wc -l)" = 2

for f in "${files1[@]:0:1}" "${files2[@]:0:1}"; do
	d=$(filefrag_devices "$f" $BS "$WORK/chunks" | cut -d' ' -f1 | sort -u)
	"$MAPTBL" build "$f" -o "$WORK/$f.mtb" -q 2>/dev/null || { check "build $f" false; continue; }
	check "$f: the table's disk is device $d's image" test "$(disk_of "$WORK/$f.mtb")" = "$(img $((d == ID1 ? 1 : 2)))"
	check "$f: extents equal filefrag's through the chunk tree" \
		diff <(filefrag_devices "$f" $BS "$WORK/chunks" | cut -d' ' -f2-) <(table_extents "$WORK/$f.mtb")
	check "$f: maptbl cat equals the file" cat_matches "$WORK/$f.mtb" "$f"
	check "$f: verify --against accepts it" "$MAPTBL" verify -q "$WORK/$f.mtb" --against "$f"
done

out=$("$MAPTBL" build span -o "$WORK/span.mtb" 2>&1)
check "span: refused for a writable table (status 1)" test $? = 1
check "span: the message names other-device" grep -q "span: bytes [0-9]*\.\.[0-9]*: other-device: refused" <<<"$out"
check "span: the message names the other device" grep -q "some extents on device [0-9]*, /dev/loop" <<<"$out"
check "span: refused --read-only too" eval '! "$MAPTBL" build span --read-only -o "$WORK/span.mtb" 2>/dev/null'
check "span: no table written" test ! -e "$WORK/span.mtb"
echo "$out" | sed 's/^/  /'

# 'btrfs device remove' moves the second device's chunks to the first: a table of a file that was
# on the second device is stale (another disk), and a new one maps the first.
rm -f span
f=${files2[0]}
check "btrfs device remove" btrfs device remove "$D2" "$MNT"
out=$("$MAPTBL" verify "$WORK/$f.mtb" --against "$f" 2>&1)
check "after device remove: verify --against fails (status 1)" test $? = 1
check "after device remove: it names the new disk" grep -q "stale: it maps disk $WORK/d2.img, but $f is now on $WORK/d1.img" <<<"$out"
echo "  $out"
"$MAPTBL" build "$f" -o "$WORK/$f-2.mtb" -q 2>/dev/null
check "after device remove: a new table maps device 1's image" test "$(disk_of "$WORK/$f-2.mtb")" = "$WORK/d1.img"
check "after device remove: its cat equals the file" cat_matches "$WORK/$f-2.mtb" "$f"
cd /
finish
