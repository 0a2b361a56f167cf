#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-qemu.sh - build Debian 12's QEMU 7.2 (qemu-system-x86_64, reduced) with maptbl's SR-IOV
# controller (hw-iface/qemu/maptbl-pci.c around the model in hw-iface/device) compiled in.
#
#   build-qemu.sh [--deps] [--print-binary] [--check]
#
#   --deps          install the Debian build dependencies (apt-get install) first
#   --print-binary  print the path of qemu-system-x86_64 in the cached tree and exit 0 when it
#                   exists (exit 3 otherwise); builds nothing
#   --check         as --print-binary, plus exit 3 when the tree's device sources are stale
#
# Steps (each one timed, the times also appended to TREE/build-times.log):
#   fetch      apt-get source --download-only qemu=$QEMU_DEB_VERSION, with a deb-src list given
#              to apt on the command line (-o Dir::Etc::sourcelist/sourceparts, Dir::State::Lists):
#              the system's apt sources are never touched
#   unpack     dpkg-source -x (upstream 7.2 + Debian's patches = 7.2.22)
#   device     copy the glue, the model, format.h and hw_regs.h into hw/maptbl/ (only files that
#              changed, so ninja recompiles only those), hook hw/maptbl into hw/meson.build and
#              hw/Kconfig, install the devices list
#   configure  x86_64-softmmu only, no default features or devices, no docs, no tools
#   build      ninja qemu-system-x86_64
#
# The tree is cached outside the checkout, in $MAPTBL_QEMU_CACHE (default /var/cache/maptbl), as
# qemu-7.2-<key>, where <key> hashes what a rebuild from scratch depends on: the Debian version,
# the configure arguments, the devices list, meson.build and Kconfig of hw/maptbl. The device's C
# files are not part of the key: a change to them is an incremental rebuild of a few seconds.
#
# Exit: 0 built (or up to date), 1 a step failed, 2 usage, 3 (--print-binary/--check) not built.
set -euo pipefail

usage() {
	sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
QEMU_DEB_VERSION=1:7.2+dfsg-7+deb12u18
CACHE=${MAPTBL_QEMU_CACHE:-/var/cache/maptbl}
# What the build needs from Debian (also listed in .ci/run and quickstart.sh). seabios and
# qemu-system-data are run-time firmware: the dfsg tree builds no BIOS images.
DEPS=(build-essential pkg-config python3 meson ninja-build libglib2.0-dev libpixman-1-dev
      zlib1g-dev libfdt-dev dpkg-dev xz-utils seabios qemu-system-data)
CONFIGURE_ARGS=(--target-list=x86_64-softmmu --without-default-features
		--without-default-devices --with-devices-x86_64=maptbl --disable-docs
		--disable-tools --disable-user --enable-fdt=system --disable-werror
		--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)
# The model and its two headers, as they are named inside hw/maptbl/.
MODEL_FILES=(device/mtdev.c device/walk.c device/queue.c device/internal.h device/mtdev.h)

do_deps=0 print_only=0 check=0
for a in "$@"; do
	case $a in
	--deps) do_deps=1 ;;
	--print-binary) print_only=1 ;;
	--check) print_only=1 check=1 ;;
	-h|--help) usage ;;
	*) echo "build-qemu.sh: unknown option '$a'" >&2; usage ;;
	esac
done

key=$( { echo "$QEMU_DEB_VERSION"; printf '%s\n' "${CONFIGURE_ARGS[@]}";
	 cat "$HERE/maptbl-devices.mak" "$HERE/meson.build" "$HERE/Kconfig"; } |
	 sha256sum | cut -c1-12)
TREE=$CACHE/qemu-7.2-$key
SRC=$TREE/src
BIN=$SRC/build/qemu-system-x86_64

# Source (in the checkout) -> destination (in hw/maptbl) pairs.
sync_list() {
	echo "$HERE/maptbl-pci.c maptbl-pci.c"
	echo "$HERE/meson.build meson.build"
	echo "$HERE/Kconfig Kconfig"
	local f
	for f in "${MODEL_FILES[@]}"; do
		echo "$TOP/hw-iface/$f $f"
	done
	echo "$TOP/libmaptbl/include/maptbl/format.h include/maptbl/format.h"
	echo "$TOP/hw-iface/include/maptbl/hw_regs.h include/maptbl/hw_regs.h"
}

stale() {
	local s d
	while read -r s d; do
		cmp -s "$s" "$SRC/hw/maptbl/$d" || return 0
	done < <(sync_list)
	[ "$BIN" -nt "$SRC/hw/maptbl/maptbl-pci.c" ] || return 0
	return 1
}

if [ "$print_only" = 1 ]; then
	[ -x "$BIN" ] || { echo "build-qemu.sh: no built QEMU at $BIN" >&2; exit 3; }
	if [ "$check" = 1 ] && stale; then
		echo "build-qemu.sh: $BIN is older than the device sources" >&2
		exit 3
	fi
	echo "$BIN"
	exit 0
fi

mkdir -p "$TREE"
exec 9>"$TREE.lock"
flock 9	# one build of a tree at a time (CI and a developer on the same machine)

step_t0=0 step_name=
step() {
	step_name=$1
	step_t0=$(date +%s%N)
	echo "== $step_name"
}
step_end() {
	local ms=$((($(date +%s%N) - step_t0) / 1000000))
	local dt=$((ms / 1000)).$((ms % 1000 / 100))
	echo "== $step_name: $dt s"
	echo "$(date -u +%FT%TZ) $step_name $dt" >>"$TREE/build-times.log"
}

if [ "$do_deps" = 1 ]; then
	step deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${DEPS[@]}" \
		>/dev/null
	step_end
fi

missing=()
for p in "${DEPS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "build-qemu.sh: missing Debian packages: ${missing[*]} (run with --deps)" >&2
	exit 1
fi

if [ ! -f "$SRC/VERSION" ]; then
	APT=$CACHE/apt-src
	DL=$CACHE/dl
	mkdir -p "$APT/lists/partial" "$APT/sources.list.d" "$DL"
	cat >"$APT/sources.list" <<-'EOF'
	deb-src http://deb.debian.org/debian bookworm main
	deb-src http://deb.debian.org/debian bookworm-updates main
	deb-src http://deb.debian.org/debian-security bookworm-security main
	EOF
	O=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o "Dir::Etc::sourceparts=$APT/sources.list.d"
	   -o "Dir::State::Lists=$APT/lists" -o "APT::Sandbox::User=root")
	dsc=$DL/qemu_${QEMU_DEB_VERSION#*:}.dsc
	step fetch
	if [ ! -f "$dsc" ]; then
		apt-get "${O[@]}" update >/dev/null
		(cd "$DL" && apt-get "${O[@]}" source --download-only "qemu=$QEMU_DEB_VERSION")
	fi
	step_end
	step unpack
	rm -rf "$SRC.tmp"
	dpkg-source -x "$dsc" "$SRC.tmp" >/dev/null
	rm -rf "$SRC"
	mv "$SRC.tmp" "$SRC"
	step_end
fi

step device
mkdir -p "$SRC/hw/maptbl/device" "$SRC/hw/maptbl/include/maptbl"
changed=0
while read -r s d; do
	if ! cmp -s "$s" "$SRC/hw/maptbl/$d"; then
		cp "$s" "$SRC/hw/maptbl/$d"	# fresh mtime: ninja rebuilds just this file
		echo "   $d"
		changed=1
	fi
done < <(sync_list)
grep -qx "subdir('maptbl')" "$SRC/hw/meson.build" || echo "subdir('maptbl')" >>"$SRC/hw/meson.build"
grep -qx "source maptbl/Kconfig" "$SRC/hw/Kconfig" || echo "source maptbl/Kconfig" >>"$SRC/hw/Kconfig"
cmp -s "$HERE/maptbl-devices.mak" "$SRC/configs/devices/x86_64-softmmu/maptbl.mak" ||
	cp "$HERE/maptbl-devices.mak" "$SRC/configs/devices/x86_64-softmmu/maptbl.mak"
step_end

if [ ! -f "$SRC/build/build.ninja" ]; then
	step configure
	rm -rf "$SRC/build"
	mkdir -p "$SRC/build"
	(cd "$SRC/build" && nice -n 19 ../configure "${CONFIGURE_ARGS[@]}" >configure.log 2>&1) || {
		tail -20 "$SRC/build/configure.log" >&2
		echo "build-qemu.sh: configure failed (log: $SRC/build/configure.log)" >&2
		exit 1
	}
	step_end
fi

step build
jobs=${MAPTBL_QEMU_JOBS:-$(nproc)}
if ! nice -n 19 ninja -C "$SRC/build" -j"$jobs" qemu-system-x86_64 >"$TREE/ninja.log" 2>&1; then
	grep -E 'error|FAILED' "$TREE/ninja.log" | head -30 >&2
	echo "build-qemu.sh: build failed (log: $TREE/ninja.log)" >&2
	exit 1
fi
touch "$BIN"
step_end
[ "$changed" = 1 ] || echo "   (device sources unchanged)"
echo "$BIN"
