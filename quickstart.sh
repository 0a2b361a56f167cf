#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# quickstart.sh demo|test - everything a newcomer needs, on a fresh Debian 12 machine.
#
#   ./quickstart.sh demo   install what is missing, build, then build a table from
#                          examples/sample-extents.txt, verify it, dump it and look blocks up
#   ./quickstart.sh test   install what is missing, build, run the whole test suite (ctest)
#
# Missing Debian packages are installed with apt-get when run as root; otherwise the script
# names them and stops. Environment: BUILD_DIR (default build), MAPTBL_WERROR=1 (CI: -Werror),
# JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

mode=${1:-}
case "$mode" in
demo | test) ;;
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# Build tools and libraries (libext2fs, the XFS headers, libdevmapper for the filesystem adapters);
# what the tests use: cmocka for unit tests, diffutils/gawk for the CLI tests, mkfs, filefrag,
# xfs_bmap, sfdisk, losetup and dmsetup for the tests on real filesystems.
packages=(gcc make cmake pkg-config libc6-dev libcmocka-dev libjansson-dev diffutils gawk
	libext2fs-dev xfslibs-dev libdevmapper-dev e2fsprogs xfsprogs fdisk util-linux mount dmsetup
	btrfs-progs libbtrfsutil-dev)
# maptbl stats opens and closes files in io_uring batches (liburing).
packages+=(liburing-dev)
# maptbl stats --yaml (libyaml); its tests: xmllint checks the --plot SVG, python3-yaml reads the YAML.
packages+=(libyaml-dev libxml2-utils python3 python3-yaml)
# The device (issue #6; vf apply uses the libyaml above): nbdkit and its plugin headers, nbdcopy/nbdfuse, FUSE.
packages+=(nbdkit nbdkit-plugin-dev libnbd-bin fuse3)
# The QEMU device (hw-iface/qemu, tests/qemu): QEMU 7.2's build dependencies, firmware, busybox, pciutils.
packages+=(build-essential meson ninja-build libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev
	dpkg-dev xz-utils seabios qemu-system-data busybox-static pciutils)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "quickstart: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "quickstart: missing Debian packages: ${missing[*]}" >&2
		echo "quickstart: run as root, or: sudo apt-get install ${missing[*]}" >&2
		exit 3
	fi
fi

werror=OFF
[ "${MAPTBL_WERROR:-0}" = 1 ] && werror=ON
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAPTBL_WERROR=$werror >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" >/dev/null

if [ "$mode" = test ]; then
	exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS"
fi

maptbl=$BUILD_DIR/cli/maptbl
table=$BUILD_DIR/sample.mtb
run() {
	echo
	echo "\$ maptbl $*"
	"$maptbl" "$@"
}
run build --extents examples/sample-extents.txt -o "$table" --virtual-size 16G --disk-size 64G
run verify "$table"
run dump "$table" > "$BUILD_DIR/sample.dump"
head -n 22 "$BUILD_DIR/sample.dump"
echo "  ... ($(grep -c '^ *[0-9]*: ' "$BUILD_DIR/sample.dump") extents in all: $BUILD_DIR/sample.dump)"
# A mapped block, a hole, an unwritten block, the hole at the end of the virtual disk, and a
# block past it (an error: status 1, which the demo expects).
run lookup "$table" 100 8000 19500 4194303 4194304 || [ $? = 1 ]

# A real file: an ext4 image made from this checkout's docs (no root needed: libext2fs reads the
# unmounted image), a table for one of its files, checked against the file and read through.
demo=$BUILD_DIR/demo
rm -rf "$demo" && mkdir -p "$demo/src"
cp docs/FORMAT.md "$demo/src/FORMAT.md"
truncate -s 3M "$demo/src/FORMAT.md" # a hole at the end
mkfs.ext4 -q -F -b 4096 -d "$demo/src" "$demo/fs.img" 16M >/dev/null 2>&1
run build /FORMAT.md --image "$demo/fs.img" -o "$demo/format.mtb"
run verify "$demo/format.mtb" --against /FORMAT.md --image "$demo/fs.img"
echo
echo "\$ maptbl cat $demo/format.mtb | cmp - $demo/src/FORMAT.md"
"$maptbl" cat "$demo/format.mtb" | cmp - "$demo/src/FORMAT.md" && echo "identical: the table reads the file's bytes from the image"
