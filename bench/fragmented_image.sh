# SPDX-License-Identifier: MIT
# Sourced by bench/fs/run.sh and bench/nbd/run.sh: an ext4 image $WORK/fs.img on a loop device,
# mounted on $MNT, with two files fragmented against each other. Needs WORK, MNT, BS, EXTENTS,
# FRAGMENT; sets DEV and MOUNTED (the caller's cleanup trap undoes them).

attach_mount() {
	DEV=$(losetup -f --show "$WORK/fs.img") || { echo "run.sh: losetup failed" >&2; exit 1; }
	mount "$DEV" "$MNT" || { echo "run.sh: mount failed" >&2; exit 1; }
	MOUNTED=1
}

detach() {
	umount "$MNT" || { echo "run.sh: umount failed" >&2; exit 1; }
	MOUNTED=0
	losetup -d "$DEV"
	DEV=
}

extents_of() {
	filefrag "$1" | sed -n 's/.*: \([0-9]*\) extents\{0,1\} found.*/\1/p'
}

# fragmented_image A B: files $MNT/A and $MNT/B of N blocks each, allocated a block at a time,
# alternately (FRAGMENT), more blocks until A has EXTENTS extents (the allocator sometimes puts a
# file's blocks side by side). Leaves the image mounted.
fragmented_image() {
	local attempt size n blocks=$EXTENTS
	mkdir -p "$MNT"
	for attempt in 1 2 3; do
		size=$(((2 * blocks * BS * 13 / 10) / 1048576 + 64))
		rm -f "$WORK/fs.img"
		truncate -s "${size}M" "$WORK/fs.img"
		mkfs.ext4 -q -F -b $BS "$WORK/fs.img" >/dev/null || { echo "run.sh: mkfs.ext4 failed" >&2; exit 1; }
		attach_mount
		echo "run.sh: fragmenting 2 x $blocks blocks on a ${size} MiB ext4 image ($DEV)..."
		"$FRAGMENT" "$MNT/$1" "$MNT/$2" "$blocks" $BS || exit 1
		sync
		n=$(extents_of "$MNT/$1")
		echo "run.sh: $MNT/$1: $n extents (filefrag)"
		[ "${n:-0}" -ge "$EXTENTS" ] && return 0
		detach
		blocks=$((blocks * EXTENTS / (n > 0 ? n : 1) + 256))
	done
	echo "run.sh: could not make a file of $EXTENTS extents" >&2
	exit 1
}
