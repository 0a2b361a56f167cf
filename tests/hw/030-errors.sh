#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Bad input to the device commands and the driver (COMMON standards: a one-line error naming the
# input, a documented exit status, never a crash): missing devices of each backend, bad options,
# corrupt tables, tables the device refuses, VFs that do not exist. No root needed: the emulator
# runs on a plain image file and tables come from extent lists.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?}
WORK=$(mktemp -d /var/tmp/maptbl-hw-errors.XXXXXX)
PIDS=()
cleanup() { rm -rf "$WORK"; }
source "$HERE/lib.sh"
FAILED=0
check() {
	local name=$1
	shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; FAILED=1; fi
}
# expect STATUS PATTERN CMD...: the command exits with STATUS and its stderr matches PATTERN.
expect() {
	local want=$1 pat=$2 rc
	shift 2
	"$@" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	check "$* -> $want" [ $rc = "$want" ]
	check "$* says: $pat" grep -q -- "$pat" "$WORK/err" "$WORK/out" # JSON mode: errors on stdout
	[ "$(wc -l <"$WORK/err")" -le 2 ] || { echo "     (more than a line or two: $(cat "$WORK/err"))"; FAILED=1; }
}

truncate -s 16M "$WORK/disk.img"
printf '0 100 16\n20 200 4 unwritten\n' | "$MAPTBL" build -q -e - -d 16M -o "$WORK/t.mtb"
printf '0 5000 16\n' | "$MAPTBL" build -q -e - -o "$WORK/far.mtb" # past the 16 MiB disk
head -c 300 "$WORK/t.mtb" >"$WORK/short.mtb"
start_emu "$WORK/disk.img" "$WORK/emu.sock" --vfs 4
D=emu:$WORK/emu.sock

expect 1 "emu:$WORK/none.sock: No such file" "$MAPTBL" push --dev "emu:$WORK/none.sock" --vf 1 "$WORK/t.mtb"
expect 1 "pci:0000:ff:1f.7: no such PCI device" "$MAPTBL" push --dev pci:0000:ff:1f.7 --vf 1 "$WORK/t.mtb"
expect 1 "vfio:0000:ff:1f.7: no such PCI device" "$MAPTBL" vf list --dev vfio:0000:ff:1f.7
expect 1 "not a PCI address" "$MAPTBL" vf list --dev pci:nonsense
expect 1 "vfio:0000:ff:1f.7,vf_token=bad: not BDF or BDF,vf_token=UUID" "$MAPTBL" vf list --dev vfio:0000:ff:1f.7,vf_token=bad
expect 1 "vfio:0000:ff:1f.7: no such PCI device" "$MAPTBL" vf list --dev vfio:0000:ff:1f.7,vf_token=5e1f2d3c-0a4b-4c6d-8e9f-001122334455
expect 1 "bogus: not a device name" "$MAPTBL" vf list --dev bogus
expect 2 "no device" env -u MAPTBL_DEV "$MAPTBL" vf list
expect 2 "--vf '65' is not a VF number" "$MAPTBL" push --dev "$D" --vf 65 "$WORK/t.mtb"
expect 2 "--vf N is required" "$MAPTBL" push --dev "$D" "$WORK/t.mtb"
expect 2 "unknown subcommand 'frobnicate'" "$MAPTBL" vf frobnicate
expect 2 "--json is not supported by 'vf create'" "$MAPTBL" --json vf create --dev "$D" "$WORK/t.mtb"
expect 2 "is smaller than the table" "$MAPTBL" push --dev "$D" --vf 1 --size 4K "$WORK/t.mtb"
expect 1 "short.mtb: invalid table" "$MAPTBL" push --dev "$D" --vf 1 "$WORK/short.mtb"
expect 3 "missing.mtb: No such file" "$MAPTBL" push --dev "$D" --vf 1 "$WORK/missing.mtb"
expect 1 "VF 5: the device has VFs 1 .. 4" "$MAPTBL" push --dev "$D" --vf 5 "$WORK/t.mtb"
expect 1 "VF 2 has no table" "$MAPTBL" vf destroy --dev "$D" 2

check "a good push" "$MAPTBL" push --dev "$D" --vf 1 "$WORK/t.mtb"
check "a second push to the same VF (walk again)" "$MAPTBL" push --dev "$D" --vf 1 --read-only "$WORK/t.mtb"
check "vf list shows VF 1 read-only" grep -q '"vf": 1, "state": "ready", .*"read_only": true' \
	<("$MAPTBL" --json vf list --dev "$D")
# The table that maps past the disk is accepted at latch time (the header is fine) and refused
# per request (PAST_DISK): no crash, the emulator keeps serving.
check "a table mapping past the disk can be pushed" "$MAPTBL" push --dev "$D" --vf 2 "$WORK/far.mtb"
check "VFs 1 and 2 listed" [ "$("$MAPTBL" vf list --dev "$D" | tail -n +2 | wc -l)" = 2 ]
check "vf destroy 1 2" "$MAPTBL" vf destroy --dev "$D" 1 2
check "the emulator still runs" kill -0 $EMU_PID
expect 2 "--vfs '65' is not a number from 1 to 64" "$EMU" --disk "$WORK/disk.img" --socket "$WORK/x" --vfs 65
expect 1 "another emulator is listening" "$EMU" --disk "$WORK/disk.img" --socket "$WORK/emu.sock" -f
expect 1 "nothing.img: No such file" "$EMU" --disk "$WORK/nothing.img" --socket "$WORK/y" -f
exit $FAILED
