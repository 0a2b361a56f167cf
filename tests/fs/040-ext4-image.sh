#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The offline backend: files inside an unmounted ext4 image (mkfs.ext4 -d), read through
# libext2fs. maptbl cat through the image equals the file; the table equals the one built from
# the same file with the image loop-mounted (FIEMAP); block-mapped (ext3-style, no extents)
# files are merged into extents; inline-data files are refused; a mounted image is refused.
. "$(dirname "$0")/lib.sh"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"

mkdir -p "$WORK/src"
dd if=/dev/urandom of="$WORK/src/plain" bs=1M count=3 status=none
truncate -s 20M "$WORK/src/sparse"
dd if=/dev/urandom of="$WORK/src/sparse" bs=64K count=2 seek=50 conv=notrunc status=none
printf 'small\n' > "$WORK/src/tiny"
mkfs.ext4 -q -F -b 4096 -O inline_data -d "$WORK/src" "$WORK/img.ext4" 64M >/dev/null 2>&1 || exit 1
mkfs.ext4 -q -F -b 4096 -O ^extent,^64bit,^inline_data -d "$WORK/src" "$WORK/old.ext4" 64M >/dev/null 2>&1 || exit 1

for f in plain sparse; do
	check "$f: build from the image" "$MAPTBL" build "/$f" --image "$WORK/img.ext4" -o "$WORK/$f.mtb" -q
	check "$f: maptbl cat equals the file" cat_matches "$WORK/$f.mtb" "$WORK/src/$f"
	check "$f: block-mapped copy builds" "$MAPTBL" build "/$f" --image "$WORK/old.ext4" -o "$WORK/$f-old.mtb" -q
	check "$f: block-mapped copy: maptbl cat equals the file" cat_matches "$WORK/$f-old.mtb" "$WORK/src/$f"
	check "$f: verify --against the image" "$MAPTBL" verify -q "$WORK/$f.mtb" --against "/$f" --image "$WORK/img.ext4"
done
n=$(table_extents "$WORK/plain-old.mtb" | wc -l)
check "block-mapped plain file is merged into few extents ($n)" test "$n" -le 2

out=$("$MAPTBL" build /tiny --image "$WORK/img.ext4" -o "$WORK/tiny.mtb" 2>&1)
check "inline: refused" test $? = 1
check "inline: the message names the rule" grep -q "inline" <<<"$out"
out=$("$MAPTBL" build /missing --image "$WORK/img.ext4" -o "$WORK/m.mtb" 2>&1)
check "missing path: status 3 and a message" test $? = 3
echo "  $out"
out=$("$MAPTBL" build /plain --image "$WORK/src/plain" -o "$WORK/m.mtb" 2>&1)
check "not an ext4 image: refused" test $? = 1
echo "  $out"

# The same file through the mounted image gives the same extents.
if [ "$(id -u)" = 0 ] && [ -e /dev/loop-control ]; then
	attach "$WORK/img.ext4"
	mkdir -p "$WORK/mnt"
	mount -o ro "$DEV" "$WORK/mnt" || exit 1
	MOUNTS+=("$WORK/mnt")
	"$MAPTBL" build "$WORK/mnt/sparse" -o "$WORK/live.mtb" -q
	check "live and offline tables have the same extents" \
		diff <(table_extents "$WORK/live.mtb") <(table_extents "$WORK/sparse.mtb")
	out=$("$MAPTBL" build /plain --image "$DEV" -o "$WORK/busy.mtb" 2>&1)
	check "a mounted image is refused" test $? = 1
fi
cd /
finish
