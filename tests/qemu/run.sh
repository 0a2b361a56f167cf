#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - the maptbl QEMU device in a Debian guest (issue #8 §3 and §4).
#
# Boots Debian's own kernel (linux-image-amd64's image package, extracted, never installed) under
# TCG in the QEMU that hw-iface/qemu/build-qemu.sh built and cached, with a busybox initramfs that
# holds the maptbl tools (dynamically linked; their libraries are copied in) and the kernel's
# pci-pf-stub and vfio modules. The backing disk of the maptbl-pci PF is an ext4 image made here
# with a file in it; the table is built from that file on the host ('maptbl build --image').
# The guest's /init is guest.sh (one function per step; see there). Three guests, one after the
# other, on the same disk:
#   pci   no IOMMU: pci-pf-stub, sysfs resource0 and pagemap DMA; push, read, write; then hostile
#         input (bad ring entries, random BAR writes, VF disable/enable with I/O in flight) and a
#         VF that reads the file again afterwards
#   vfio  intel-iommu with interrupt remapping: vfio-pci enable_sriov, VF tokens, VFIO DMA; push,
#         read, write through vfio:, the kernel's VF token checks
# and after them, on the host: the file in the image (debugfs dump) holds both writes, and no
# block of the image outside the file's data blocks changed. Then
#   serve the image is also the guest's virtio disk, its ext4 mounted: 'maptbl vf create --serve'
#         makes VF 1 from the file and serves its faults; a VF write into a hole stalls, is served
#         (allocated through the guest's ext4, table updated in place) and lands; the guest's
#         filesystem reads it; on the host the file holds it and e2fsck -fn is clean. Every step prints its duration;
# QEMU's logged guest errors are summed up by kind.
# Exit 0 passed, 1 failed, 77 skipped (QEMU not built, or a needed Debian package missing), with
# the reason.
#
# Environment: MAPTBL (maptbl), MAPTBL_VFRW (tests/qemu/maptbl-vfrw), MAPTBL_HOSTILE
# (tests/qemu/maptbl-hostile), MAPTBL_QEMU_SEED (the hostile steps' seed), MAPTBL_QEMU_MODES
# ("pci vfio serve", or some of them: without both pci and vfio the disk is not checked), MAPTBL_QEMU_CACHE (the cache
# directory of build-qemu.sh, default /var/cache/maptbl), MAPTBL_QEMU (a qemu-system-x86_64 to use
# instead of the cached build), KEEP=1 keeps the work directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MAPTBL=${MAPTBL:-$TOP/build/cli/maptbl}
VFRW=${MAPTBL_VFRW:-$TOP/build/tests/qemu/maptbl-vfrw}
HOSTILE=${MAPTBL_HOSTILE:-$TOP/build/tests/qemu/maptbl-hostile}
SEED=${MAPTBL_QEMU_SEED:-20261130}
MODES=" ${MAPTBL_QEMU_MODES:-pci vfio serve} "	# the guests to run, in this order (all by default)
CACHE=${MAPTBL_QEMU_CACHE:-/var/cache/maptbl}
TIMEOUT=${MAPTBL_QEMU_TIMEOUT:-600}

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }

if [ -n "${MAPTBL_QEMU:-}" ]; then
	QEMU=$MAPTBL_QEMU
else
	QEMU=$("$TOP/hw-iface/qemu/build-qemu.sh" --check 2>&1) ||
		skip "no up-to-date QEMU with maptbl-pci (${QEMU}); build it with hw-iface/qemu/build-qemu.sh"
fi
[ -x "$MAPTBL" ] || die "maptbl not found at $MAPTBL (set MAPTBL)"
[ -x "$VFRW" ] || die "maptbl-vfrw not found at $VFRW (set MAPTBL_VFRW)"
[ -x "$HOSTILE" ] || die "maptbl-hostile not found at $HOSTILE (set MAPTBL_HOSTILE)"
for f in /bin/busybox:busybox-static /usr/share/seabios/bios-256k.bin:seabios \
	 /usr/share/qemu/linuxboot_dma.bin:qemu-system-data /sbin/mke2fs:e2fsprogs \
	 /sbin/debugfs:e2fsprogs /usr/bin/lspci:pciutils /usr/bin/setpci:pciutils; do
	[ -e "${f%%:*}" ] || skip "${f%%:*} missing (Debian package ${f##*:})"
done

T_ALL=$(date +%s%N)
step_t0=0 step_name=
step() { step_name=$1; step_t0=$(date +%s%N); }
step_end() {
	local ms=$((($(date +%s%N) - step_t0) / 1000000))
	printf 'step %-10s %6d.%01d s  %s\n' "$step_name" $((ms / 1000)) $((ms % 1000 / 100)) "${1:-}"
}

W=$(mktemp -d /var/tmp/maptbl-qemu.XXXXXX)
QPID=
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
	if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# --- Debian's kernel ------------------------------------------------------------------------
step kernel
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
[ -n "$KPKG" ] || skip "apt does not know linux-image-amd64 (run apt-get update)"
KDIR=$CACHE/guest/$KPKG
if [ ! -f "$KDIR/.done" ]; then
	mkdir -p "$CACHE/guest"
	rm -rf "$KDIR" "$CACHE/guest/$KPKG"_*.deb
	(cd "$CACHE/guest" && apt-get download "$KPKG" >/dev/null 2>&1) ||
		skip "cannot download $KPKG"
	dpkg-deb -x "$CACHE/guest/$KPKG"_*.deb "$KDIR"
	rm -f "$CACHE/guest/$KPKG"_*.deb
	touch "$KDIR/.done"
fi
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-*)
PFSTUB=$(find "$KDIR/lib/modules" -name 'pci-pf-stub.ko*' | head -1)
[ -n "$PFSTUB" ] || die "$KPKG has no pci-pf-stub module"
# vfio-pci and what it needs, in dependency order (the package has no modules.dep: depmod runs
# at install time; the .ko files name their dependencies in .modinfo "depends=").
ko_of() { find "$KDIR/lib/modules" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -1; }
# add_mod LIST MODULE: append MODULE, after what it depends on, to the variable named LIST.
add_mod() {
	local list=$1 m=$2 ko dep
	case " ${!list} " in *" $m "*) return ;; esac
	ko=$(ko_of "$m")
	[ -n "$ko" ] || die "$KPKG has no module $m"
	for dep in $(tr '\0' '\n' <"$ko" | sed -n 's/^depends=//p' | tr , ' '); do add_mod "$list" "$dep"; done
	case " ${!list} " in *" $(basename "$ko" .ko) "*) return ;; esac
	printf -v "$list" '%s %s' "${!list}" "$(basename "$ko" .ko)"
}
VFIO_ORDER=
add_mod VFIO_ORDER vfio-pci
add_mod VFIO_ORDER vfio_iommu_type1
# The serve guest mounts the disk's ext4 through virtio-blk (crc32c: ext4's metadata checksums
# ask the crypto API for it by name, which no "depends=" says).
SERVE_ORDER=
for m in virtio_pci virtio_blk crc32c_generic ext4; do add_mod SERVE_ORDER $m; done
step_end "$KPKG; vfio modules:$VFIO_ORDER; serve modules:$SERVE_ORDER"

# --- the disk, the file, its table ------------------------------------------------------------
step disk
mkdir -p "$W/fs" "$W/root"/{bin,lib,lib64,proc,sys,dev,tmp}
head -c $((4 << 20)) /dev/urandom >"$W/fs/payload"
# Two holes (blocks 256-383 and 700-704): the table has three extents, the VF reads zeros there.
fallocate -p -o $((256 * 4096)) -l $((128 * 4096)) "$W/fs/payload"
fallocate -p -o $((700 * 4096)) -l $((5 * 4096)) "$W/fs/payload"
truncate -s 64M "$W/disk.img"
mke2fs -q -F -t ext4 -b 4096 -d "$W/fs" "$W/disk.img" >/dev/null
extents=$("$MAPTBL" build /payload --image "$W/disk.img" -o "$W/root/t.mtb" 2>&1 | sed -n 's/.*: \([0-9]*\) extents,.*/\1/p')
[ "$extents" = 3 ] || die "the table of /payload has '$extents' extents, not 3"
# What the VF must read after the write test: the file with 8 KiB of pattern at block 3.
head -c 8192 /dev/urandom >"$W/root/pattern"
cp "$W/fs/payload" "$W/root/expected"
cp "$W/fs/payload" "$W/expected2"
case $MODES in *" pci "*) dd if="$W/root/pattern" of="$W/expected2" bs=4096 seek=3 conv=notrunc status=none ;; esac
cp "$W/expected2" "$W/root/expected2"
# ... and after the vfio: write test, 4 KiB more at block 10.
head -c 4096 /dev/urandom >"$W/root/pattern2"
cp "$W/expected2" "$W/expected3"
dd if="$W/root/pattern2" of="$W/expected3" bs=4096 seek=10 conv=notrunc status=none
cp "$W/expected3" "$W/root/expected3"
# The blocks the VF may write (the file's data blocks); every other byte of the image must be the
# same after the VMs (hostile input included).
debugfs -R "blocks /payload" "$W/disk.img" 2>/dev/null | tr ' ' '\n' | grep -v '^$' >"$W/file-blocks"
[ "$(wc -l <"$W/file-blocks")" = $((1024 - 128 - 5)) ] || die "debugfs lists $(wc -l <"$W/file-blocks") blocks of /payload"
cp "$W/disk.img" "$W/disk-before.img"
step_end "64 MiB ext4 image, 4 MiB file with 2 holes, table of 3 extents"

# --- the initramfs -------------------------------------------------------------------------
step initramfs
cp /bin/busybox "$W/root/bin/busybox"
cp "$MAPTBL" "$W/root/bin/maptbl"
cp "$VFRW" "$W/root/bin/maptbl-vfrw"
cp "$HOSTILE" "$W/root/bin/maptbl-hostile"
cp /usr/bin/lspci /usr/bin/setpci "$W/root/bin/"
cp "$PFSTUB" "$W/root/lib/pci-pf-stub.ko"
for m in $VFIO_ORDER; do cp "$(ko_of "$m")" "$W/root/lib/$m.ko"; echo "$m" >>"$W/root/lib/vfio.order"; done
for m in $SERVE_ORDER; do cp "$(ko_of "$m")" "$W/root/lib/$m.ko"; echo "$m" >>"$W/root/lib/serve.order"; done
for lib in $( (ldd "$MAPTBL"; ldd "$VFRW"; ldd "$HOSTILE"; ldd /usr/bin/lspci; ldd /usr/bin/setpci) | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u); do
	case $lib in
	/lib64/*) cp -L "$lib" "$W/root/lib64/" ;;
	*) cp -L "$lib" "$W/root/lib/" ;;
	esac
done
cp "$HERE/guest.sh" "$W/root/init"
chmod +x "$W/root/init"
(cd "$W/root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$W/initrd.gz"
step_end "$(du -sh "$W/initrd.gz" | cut -f1) compressed"

# --- the VMs --------------------------------------------------------------------------------
# boot MODE QEMU-ARGS...: one guest run of guest.sh's STEPS_MODE; prints its steps.
boot() {
	local mode=$1 qrc
	shift
	step "vm-$mode"
	set +e
	timeout "$TIMEOUT" "$QEMU" -accel tcg -m 1024 -smp 1 -nodefaults -display none \
		-serial "file:$W/console-$mode.log" -no-reboot \
		-L /usr/share/seabios -L /usr/share/qemu \
		-kernel "$VMLINUZ" -initrd "$W/initrd.gz" \
		-drive "if=none,id=d0,file=${DISK:-$W/disk.img},format=raw,file.locking=off" \
		"$@" \
		-device pcie-root-port,id=rp1,chassis=1 \
		-device maptbl-pci,bus=rp1,drive=d0,total_vfs=4 \
		-d guest_errors -D "$W/qemu-$mode.log" </dev/null >"$W/qemu-$mode.out" 2>&1 &
	QPID=$!
	wait "$QPID"
	qrc=$?
	QPID=
	set -e
	step_end "QEMU exit $qrc, $(cat "$W/qemu-$mode.log" 2>/dev/null | wc -l) guest errors logged"
	grep '^@@' "$W/console-$mode.log" | sed 's/^@@/  guest:/' || true
	if grep -q '^@@ RESULT skip' "$W/console-$mode.log"; then
		SKIPPED="$SKIPPED $mode:$(sed -n 's/^@@ RESULT skip//p' "$W/console-$mode.log")"
		return 0
	fi
	if ! grep -q '^@@ RESULT pass' "$W/console-$mode.log" || [ "$qrc" != 0 ]; then
		echo "--- console (last 40 lines)"; tail -40 "$W/console-$mode.log"
		echo "--- qemu"; cat "$W/qemu-$mode.out"; tail -20 "$W/qemu-$mode.log" 2>/dev/null
		die "the $mode guest did not pass (QEMU exit $qrc)"
	fi
	if [ -s "$W/qemu-$mode.log" ]; then
		echo "  QEMU guest errors, by kind (numbers as N):"
		# sed -n, not head: head leaving early made sort die of SIGPIPE (pipefail: the test
		# failed without a word, with 28000 lines of guest errors under ASan).
		sed 's/0x[0-9a-fA-F]*/N/g; s/[0-9][0-9]*/N/g' "$W/qemu-$mode.log" | sort | uniq -c | sort -rn | sed -n '1,8s/^/    /p'
	fi
}
SKIPPED=
case $MODES in *" pci "*)
# pci: no IOMMU; pagemap DMA, hostile input (§4).
boot pci -M q35 -append "console=ttyS0 panic=-1 quiet loglevel=4 maptbl_mode=pci maptbl_seed=$SEED"
# The hostile steps must have been seen as guest errors: refused requests and rejected DMA.
grep -q 'refused: status' "$W/qemu-pci.log" || die "QEMU logged no refused request"
grep -q 'Invalid write at addr 0x10000000000\|Invalid read at addr 0x10000000000' "$W/qemu-pci.log" ||
	die "QEMU logged no DMA at 1 TiB"
;;
esac
case $MODES in *" vfio "*)
# vfio: the emulated VT-d with interrupt remapping (VFIO_SET_IOMMU wants it: EPERM without),
# which needs the split irqchip; the Debian kernel turns the IOMMU on by itself (see QEMU.md).
boot vfio -M q35,kernel-irqchip=split -device intel-iommu,intremap=on \
	-append "console=ttyS0 panic=-1 quiet loglevel=4 no_timer_check intel_iommu=on maptbl_mode=vfio maptbl_seed=$SEED" ;;
esac
case $MODES in *" pci vfio "*)
step disk-check
debugfs -R "dump /payload $W/after" "$W/disk.img" >/dev/null 2>&1
want=$W/expected3
case $SKIPPED in *vfio:*) want=$W/expected2 ;; esac
cmp "$W/after" "$want" || die "the file in the image does not hold what the VFs wrote"
# Every block outside the file's data blocks is as before the VMs.
python3 - "$W/disk-before.img" "$W/disk.img" "$W/file-blocks" <<'PY' || die "a block outside the VF's table changed"
import sys
bs = 4096
allowed = {int(x) for x in open(sys.argv[3])}
a, b = open(sys.argv[1], "rb"), open(sys.argv[2], "rb")
n = bad = 0
while True:
    x, y = a.read(bs), b.read(bs)
    if not x and not y:
        break
    if x != y and n not in allowed:
        print(f"block {n} changed (not a block of /payload)")
        bad += 1
    n += 1
print(f"  {n - len(allowed)} blocks outside the file unchanged" if not bad else f"{bad} blocks changed")
sys.exit(1 if bad else 0)
PY
step_end "the writes landed in the file's blocks; nothing else changed"
;;
*) echo "only$MODES: the disk is not checked" ;;
esac

case $MODES in *" serve "*)
# serve: the guest is the hypervisor of NeSC's write flow. The same image is its virtio disk
# (ext4 mounted at /mnt) and the PF's disk; 'maptbl vf create --serve' builds VF 1 from
# /mnt/payload and serves its faults: a VF write into the file's first hole stalls, the service
# allocates through the guest's ext4, updates the table, and the write lands. The host then
# finds the data in the file (debugfs) and the filesystem clean (e2fsck -fn). Both QEMU drives
# are the one host file (no image locking): the host page cache keeps them coherent.
debugfs -R "dump /payload $W/serve-before" "$W/disk.img" >/dev/null 2>&1
boot serve -M q35 -drive "if=none,id=d1,file=$W/disk.img,format=raw,file.locking=off" \
	-device virtio-blk-pci,drive=d1 \
	-append "console=ttyS0 panic=-1 quiet loglevel=4 maptbl_mode=serve"
case $SKIPPED in *serve:*) ;; *)
step serve-check
cp "$W/serve-before" "$W/serve-want"
dd if="$W/root/pattern" of="$W/serve-want" bs=4096 seek=300 conv=notrunc status=none
debugfs -R "dump /payload $W/serve-after" "$W/disk.img" >/dev/null 2>&1
cmp "$W/serve-after" "$W/serve-want" || die "the file does not hold the served write (8 KiB at block 300)"
e2fsck -fn "$W/disk.img" >"$W/e2fsck.out" 2>&1 || { cat "$W/e2fsck.out"; die "e2fsck -fn after the serve guest"; }
step_end "the served write is in the file; e2fsck -fn clean"
esac
;;
esac
ms=$((($(date +%s%N) - T_ALL) / 1000000))
echo "total $((ms / 1000)).$((ms % 1000 / 100)) s"
if [ -n "$SKIPPED" ]; then
	echo "SKIP:$SKIPPED"
	exit 77
fi
