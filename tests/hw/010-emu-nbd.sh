#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The emulator end to end (issue #6 §7): maptbl-emu on an ext4 image (or XFS with
# MAPTBL_HW_FS=xfs: 011-emu-nbd-xfs.sh) that is also loop-mounted; a VF made from a fragmented
# file with holes (maptbl vf create); through the nbdkit plugin:
#  - nbdcopy of the VF equals the file padded with zeros to the virtual size;
#  - a write to a mapped block lands in the file (read back through the filesystem after
#    its cached pages were dropped);
#  - a write to a hole stalls, the VF shows the fault (VF, LBA), the test services it by hand
#    (write the blocks through the filesystem, rebuild, push = walk again) and the write lands.
# Needs root, loop devices, FUSE (nbdfuse) and nbdkit; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?} FRAGMENT=${MAPTBL_FRAGMENT:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
FS=${MAPTBL_HW_FS:-ext4}
need_root_and_loop
need_fs "$FS"
for t in nbdkit nbdcopy nbdfuse fusermount3; do
	command -v $t >/dev/null || skip "no $t"
done
[ -e /dev/fuse ] || skip "no /dev/fuse"

BS=4096
case $FS in
ext4) mkfs_mount ext4 64M fs -b $BS ;;
xfs) mkfs_mount xfs 320M fs -b size=$BS ;; # mkfs.xfs refuses less than 300 MiB
*) echo "MAPTBL_HW_FS=$FS: ext4 or xfs"; exit 1 ;;
esac
echo "backing filesystem: $FS"
# Two files allocated block by block, alternately (fragmented), then holes punched in one.
"$FRAGMENT" "$MNT/vm.img" "$MNT/other" 256 $BS || exit 1
for b in 10 11 12 100 101 200; do
	fallocate -p -o $((b * BS)) -l $BS "$MNT/vm.img" || exit 1
done
sync
[ "$(filefrag "$MNT/vm.img" | awk '{print $2}')" -gt 20 ] || { echo "file not fragmented"; exit 1; }

SOCK=$WORK/emu.sock
start_emu "$WORK/fs.img" "$SOCK" --audit "$WORK/audit"
export MAPTBL_DEV=emu:$SOCK

VSIZE=$((2 * 1024 * 1024))
vf=$("$MAPTBL" vf create "$MNT/vm.img" --size $VSIZE)
check "vf create prints VF 1" [ "$vf" = 1 ]
"$MAPTBL" vf list | tee "$WORK/list"
check "vf list shows the file" grep -q "^1 .*ready.*$MNT/vm.img" "$WORK/list"

NBDSOCK=$WORK/nbd.sock
start_nbd "$SOCK" 1 "$NBDSOCK"
URI="nbd+unix:///?socket=$NBDSOCK"

# 1. nbdcopy of the VF = the file, zero-padded to the virtual size.
nbdcopy "$URI" "$WORK/vf.out"
cp "$MNT/vm.img" "$WORK/expect" && truncate -s $VSIZE "$WORK/expect"
check "nbdcopy of the VF equals the file padded to $VSIZE bytes" cmp "$WORK/vf.out" "$WORK/expect"

# nbdinfo sees the VF's size; nbdcopy onto the VF (writes, zero requests, flush): a copy of the
# VF with mapped block 60 zeroed and block 70 rewritten lands in the file (holes stay holes:
# writing zeros there is a WRITE_ZEROES, which needs no fault).
check "nbdinfo reports the virtual size" [ "$(nbdinfo --size "$URI")" = $VSIZE ]
cp "$WORK/vf.out" "$WORK/src"
dd if=/dev/zero of="$WORK/src" bs=$BS seek=60 count=1 conv=notrunc status=none
head -c $BS /dev/urandom | dd of="$WORK/src" bs=$BS seek=70 count=1 conv=notrunc status=none
nbdcopy --flush "$WORK/src" "$URI"
check "nbdcopy onto the VF completes" [ $? = 0 ]
drop_cached "$MNT/vm.img"
check "the file now equals what was copied onto the VF" \
	cmp "$MNT/vm.img" <(head -c "$(stat -c %s "$MNT/vm.img")" "$WORK/src")
"$MAPTBL" vf stats 1 >"$WORK/stats0"
check "the device counted a flush" grep -q "flushes *[1-9]" "$WORK/stats0"

# 2. A write to a mapped block lands in the file.
FUSE=$WORK/fuse
mkdir -p "$FUSE"
nbdfuse "$FUSE" "$URI" &
PIDS+=($!)
FUSES+=("$FUSE")
for _ in $(seq 50); do [ -e "$FUSE/nbd" ] && break; sleep 0.1; done
head -c $BS /dev/urandom >"$WORK/blk"
dd if="$WORK/blk" of="$FUSE/nbd" bs=$BS seek=50 conv=notrunc,fsync status=none
drop_cached "$MNT/vm.img"
check "a write to mapped block 50 is in the file" \
	cmp <(dd if="$MNT/vm.img" bs=$BS skip=50 count=1 status=none) "$WORK/blk"

# 3. A write to a hole (block 100) stalls and raises a fault with the right VF and LBA.
head -c $BS /dev/urandom >"$WORK/blk2"
dd if="$WORK/blk2" of="$FUSE/nbd" bs=$BS seek=100 conv=notrunc,fsync status=none &
DD=$!
stalled=0
for _ in $(seq 100); do
	"$MAPTBL" --json vf list >"$WORK/list.json"
	grep -q '"stalled": true' "$WORK/list.json" && { stalled=1; break; }
	sleep 0.1
done
check "the write to the hole stalls VF 1" [ $stalled = 1 ]
check "the fault names block 100, a write to a hole" \
	grep -q '"fault": {"lba": 100, "count": 1, "write": true, "reason": 1}' "$WORK/list.json"
check "the writer is still waiting" kill -0 $DD
# The fault queue (maptbl_hw_fault_start/read/ack): the fault raised before the queue ran is posted.
"$MAPTBL" --json vf faults --wait 5000 >"$WORK/faults.json"
check "the fault queue posts VF 1's write fault at block 100 (hole)" \
	grep -q '"vf": 1, "lba": 100, "count": 1, "write": true, "reason": "hole"' "$WORK/faults.json"
check "the writer still waits after the fault was read" kill -0 $DD
# Service by hand: allocate written blocks through the filesystem, rebuild, push (walk again).
dd if=/dev/zero of="$MNT/vm.img" bs=$BS seek=100 count=1 conv=notrunc,fsync status=none
"$MAPTBL" vf create --vf 1 "$MNT/vm.img" --size $VSIZE >/dev/null
check "the stalled write completes after walk again" wait $DD
drop_cached "$MNT/vm.img"
check "the serviced write is in the file" \
	cmp <(dd if="$MNT/vm.img" bs=$BS skip=100 count=1 status=none) "$WORK/blk2"
"$MAPTBL" vf stats 1 >"$WORK/stats"
check "the VF counted one fault" grep -q "faults *1$" "$WORK/stats"

# Isolation: every disk access on behalf of VF 1 is inside a block the file maps.
fusermount3 -u "$FUSE"
FUSES=()
"$MAPTBL" build -q "$MNT/vm.img" -o "$WORK/vm.mtb"
"$MAPTBL" dump "$WORK/vm.mtb" >"$WORK/dump"
check "the audit saw VF 1 reach the disk" grep -q "^R 1 " "$WORK/audit"
check "the disk audit shows VF 1 only in its file's blocks" awk -v bs=$BS -v n=0 '
	NR == FNR { if ($0 ~ /^ *[0-9]+: /) { gsub(/[:.]+/, " "); s[n] = $4 * bs; e[n] = ($5 + 1) * bs; n++ }
		    next }
	$2 == 1 { ok = 0; for (i = 0; i < n; i++) if ($3 >= s[i] && $3 + $4 <= e[i]) ok = 1
		  if (!ok) { print "outside: " $0; bad = 1 } }
	END { exit bad }' "$WORK/dump" "$WORK/audit"

"$MAPTBL" vf destroy 1
check "vf destroy leaves no VF" [ -z "$("$MAPTBL" vf list | tail -n +2)" ]
kill $EMU_PID
wait $EMU_PID
check "SIGTERM: the emulator exits with 0" [ $? = 0 ]
check "SIGTERM: the socket is gone" [ ! -e "$SOCK" ]
[ $FAILED = 0 ] || { echo "--- emulator log"; tail -n 30 "$WORK/emu.log"; cat "$WORK/nbdkit.log"; }
exit $FAILED
