#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh - the maptbl QEMU device in a Debian guest (issue #8 §3).
#
# Boots Debian's own kernel (linux-image-amd64's image package, extracted, never installed) under
# TCG in the QEMU that hw-iface/qemu/build-qemu.sh built and cached, with a busybox initramfs that
# holds the maptbl tools (dynamically linked; their libraries are copied in). The backing disk of
# the maptbl-pci PF is an ext4 image made here with a file in it; the table is built from that
# file on the host ('maptbl build --image'). In the guest:
#   enumerate  lspci shows the PF (1234:4d54)
#   sriov      pci-pf-stub bound to the PF, sriov_numvfs = 2: VFs 1234:4d55 appear
#   push       'maptbl push --dev pci:BDF --vf 1 TABLE --hold' (sysfs resource0, pagemap DMA):
#              the device checks the table and VF 1 is ready
#   read       the VM side: VF 1 read whole through its rings = the file (maptbl-vfrw gives the
#              table again from its own DMA memory: see the note at the push step)
#   write      8 KiB written through VF 1 at block 3, read back through the VF
#   teardown   the push ends (VF destroyed), sriov_numvfs = 0: the VFs are gone
# and after the VM: the file in the image (debugfs dump) has the 8 KiB at block 3.
# Every step prints its duration. Exit 0 passed, 1 failed, 77 skipped (QEMU not built, or a
# needed Debian package missing), with the reason.
#
# Environment: MAPTBL (maptbl), MAPTBL_VFRW (tests/qemu/maptbl-vfrw), MAPTBL_QEMU_CACHE (the
# cache directory of build-qemu.sh, default /var/cache/maptbl), MAPTBL_QEMU (a qemu-system-x86_64
# to use instead of the cached build), KEEP=1 keeps the work directory.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
MAPTBL=${MAPTBL:-$TOP/build/cli/maptbl}
VFRW=${MAPTBL_VFRW:-$TOP/build/tests/qemu/maptbl-vfrw}
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
step_end "$KPKG"

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
dd if="$W/root/pattern" of="$W/expected2" bs=4096 seek=3 conv=notrunc status=none
cp "$W/expected2" "$W/root/expected2"
step_end "64 MiB ext4 image, 4 MiB file with 2 holes, table of 3 extents"

# --- the initramfs -------------------------------------------------------------------------
step initramfs
cp /bin/busybox "$W/root/bin/busybox"
cp "$MAPTBL" "$W/root/bin/maptbl"
cp "$VFRW" "$W/root/bin/maptbl-vfrw"
cp /usr/bin/lspci /usr/bin/setpci "$W/root/bin/"
cp "$PFSTUB" "$W/root/lib/pci-pf-stub.ko"
for lib in $( (ldd "$MAPTBL"; ldd "$VFRW"; ldd /usr/bin/lspci; ldd /usr/bin/setpci) | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u); do
	case $lib in
	/lib64/*) cp -L "$lib" "$W/root/lib64/" ;;
	*) cp -L "$lib" "$W/root/lib/" ;;
	esac
done
cat >"$W/root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin LD_LIBRARY_PATH=/lib
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
now() { read u _ </proc/uptime; echo "$u"; }
step() { S=$1; T0=$(now); }
ok() { echo "@@ $S ok $(awk "BEGIN { printf \"%.2f\", $(now) - $T0 }") s ${1:-}"; }
fail() { echo "@@ $S FAIL: $*"; echo "@@ RESULT fail"; poweroff -f; }
setcmd() { setpci -s "${1##*/}" COMMAND=0x0006 || fail "setpci ${1##*/}"; }	# MEM + Bus Master

step enumerate
PF=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x4d54 ] && PF=$d
done
lspci -nn
[ -n "$PF" ] || fail "no maptbl PF (1234:4d54) on the bus"
BDF=${PF##*/}
ok "PF $BDF, sriov_totalvfs $(cat $PF/sriov_totalvfs)"

step sriov
insmod /lib/pci-pf-stub.ko || fail "insmod pci-pf-stub"
echo "1234 4d54" >/sys/bus/pci/drivers/pci-pf-stub/new_id
echo 0 >$PF/sriov_drivers_autoprobe
echo 2 >$PF/sriov_numvfs || fail "sriov_numvfs"
[ -e $PF/virtfn0 ] && [ -e $PF/virtfn1 ] || fail "VFs did not appear"
n=$(lspci -n | grep -c '1234:4d55')
[ "$n" = 2 ] || fail "lspci shows $n VFs, not 2"
setcmd $PF
for v in $PF/virtfn0 $PF/virtfn1; do setcmd $(readlink -f $v); done
ok "$(lspci -n | grep 1234:4d55 | cut -d' ' -f1,3 | tr '\n' ' ')"

step push
echo 64 >/proc/sys/vm/nr_hugepages
maptbl push --dev pci:$BDF --vf 1 /t.mtb --hold &
PUSH=$!
i=0
until maptbl vf list --dev pci:$BDF 2>/dev/null | grep -q '^ *1 .*ready\|"state": "ready"'; do
	i=$((i + 1)); [ $i -lt 100 ] || fail "VF 1 not ready: $(maptbl vf list --dev pci:$BDF --all 2>&1)"
	kill -0 $PUSH 2>/dev/null || fail "maptbl push exited"
	sleep 0.2
done
ok "$(maptbl vf list --dev pci:$BDF 2>&1 | tail -1)"
# The VF is read and written through the table that `maptbl push --hold` keeps in its DMA
# memory. This used to fail: the pci: backend unmapped the pushed table's hugepage right after
# the push (pci_dma_free ignored "persistent"), and the next allocation zeroed and reused it.

step read
maptbl-vfrw pci:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw read"
cmp /tmp/vf1 /expected || fail "VF 1 differs from the file"
ok "$(stat -c %s /tmp/vf1) bytes = the file"

step write
maptbl-vfrw pci:$BDF 1 write 3 /pattern || fail "maptbl-vfrw write"
maptbl-vfrw pci:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw read after the write"
cmp /tmp/vf1 /expected2 || fail "VF 1 after the write differs"
ok "8 KiB at block 3, read back"
maptbl vf stats --dev pci:$BDF 1 2>&1 | head -20

step teardown
kill $PUSH; wait $PUSH
echo 0 >$PF/sriov_numvfs || fail "sriov_numvfs = 0"
[ ! -e $PF/virtfn0 ] || fail "VFs still there"
n=$(lspci -n | grep -c '1234:4d55')
[ "$n" = 0 ] || fail "lspci still shows $n VFs"
ok "VFs gone"
echo "@@ RESULT pass"
sync
poweroff -f
EOF
chmod +x "$W/root/init"
(cd "$W/root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$W/initrd.gz"
step_end "$(du -sh "$W/initrd.gz" | cut -f1) compressed"

# --- the VM ----------------------------------------------------------------------------------
step boot+test
set +e
timeout "$TIMEOUT" "$QEMU" -M q35 -accel tcg -m 1024 -smp 1 -nodefaults -display none \
	-serial "file:$W/console.log" -no-reboot \
	-L /usr/share/seabios -L /usr/share/qemu \
	-kernel "$VMLINUZ" -initrd "$W/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet loglevel=4" \
	-drive "if=none,id=d0,file=$W/disk.img,format=raw" \
	-device pcie-root-port,id=rp1,chassis=1 \
	-device maptbl-pci,bus=rp1,drive=d0,total_vfs=4 \
	-d guest_errors -D "$W/qemu.log" </dev/null >"$W/qemu.out" 2>&1 &
QPID=$!
wait "$QPID"
qrc=$?
QPID=
set -e
step_end "QEMU exit $qrc"
grep '^@@' "$W/console.log" | sed 's/^@@/  guest:/' || true
if ! grep -q '^@@ RESULT pass' "$W/console.log"; then
	echo "--- console (last 40 lines)"; tail -40 "$W/console.log"
	echo "--- qemu"; cat "$W/qemu.out"; tail -20 "$W/qemu.log" 2>/dev/null
	die "the guest test did not pass (QEMU exit $qrc)"
fi
[ -s "$W/qemu.log" ] && { echo "--- QEMU guest errors"; head -20 "$W/qemu.log"; }

step disk-check
debugfs -R "dump /payload $W/after" "$W/disk.img" >/dev/null 2>&1
cmp "$W/after" "$W/expected2" || die "the file in the image does not hold what the VF wrote"
step_end "the write landed in the file's blocks"
ms=$((($(date +%s%N) - T_ALL) / 1000000))
echo "total $((ms / 1000)).$((ms % 1000 / 100)) s"
