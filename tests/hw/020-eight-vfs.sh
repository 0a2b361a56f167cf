#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Eight VFs at once (issue #6 §7), provisioned from a YAML file (maptbl vf apply), each read in
# parallel through its own nbdkit plugin: every VF reads back its own file, padded to its size.
# Also: apply checks the whole file first (errors name FILE:LINE, nothing changes), re-applying
# is idempotent, and the emulator answers malformed protocol messages with errors, not a crash.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?} FRAGMENT=${MAPTBL_FRAGMENT:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_root_and_loop
need_fs ext4
for t in nbdkit nbdcopy python3; do command -v $t >/dev/null || skip "no $t"; done

BS=4096
mkfs_mount ext4 96M fs -b $BS
for i in 1 3 5 7; do
	"$FRAGMENT" "$MNT/f$i" "$MNT/f$((i + 1))" $((40 + i * 8)) $BS || exit 1
done
fallocate -p -o $((5 * BS)) -l $((3 * BS)) "$MNT/f2"
sync
SOCK=$WORK/emu.sock
start_emu "$WORK/fs.img" "$SOCK" --vfs 8 --xcache 8 --ncache 16
export MAPTBL_DEV=emu:$SOCK

# A config with two mistakes: nothing may change.
cat >"$WORK/bad.yaml" <<YAML
vfs:
  - file: $MNT/f1
  - file: $MNT/f2
    colour: blue
  - file: $MNT/f3
    vf: 99
YAML
"$MAPTBL" vf apply "$WORK/bad.yaml" 2>"$WORK/err"
rc=$?
check "a bad config fails with status 1" [ $rc = 1 ]
check "the error names the file and line" grep -q "bad.yaml:4: unknown key 'colour'" "$WORK/err"
check "nothing was provisioned" [ -z "$("$MAPTBL" vf list | tail -n +2)" ]
printf 'vfs:\n  - file: %s\n    size: 12345\n' "$MNT/f1" >"$WORK/bad2.yaml"
"$MAPTBL" vf apply "$WORK/bad2.yaml" 2>"$WORK/err2"
check "a size that is not a block multiple is refused with FILE:LINE" \
	grep -q "bad2.yaml:2: $MNT/f1: size 12345 is not a multiple" "$WORK/err2"

{
	echo "device: emu:$SOCK"
	echo "vfs:"
	for i in $(seq 8); do
		echo "  - file: $MNT/f$i"
		[ $i = 2 ] && echo "    size: 1M"
		[ $i = 8 ] && echo "    read-only: true"
	done
} >"$WORK/vfs.yaml"
unset MAPTBL_DEV
"$MAPTBL" vf apply "$WORK/vfs.yaml" >"$WORK/apply1"
check "vf apply provisions 8 VFs" [ $? = 0 -a "$(wc -l <"$WORK/apply1")" = 8 ]
"$MAPTBL" vf apply "$WORK/vfs.yaml" >"$WORK/apply2"
check "re-applying keeps the same VFs" cmp "$WORK/apply1" "$WORK/apply2"
export MAPTBL_DEV=emu:$SOCK
check "vf list shows 8 VFs" [ "$("$MAPTBL" vf list | tail -n +2 | wc -l)" = 8 ]
check "VF 8 is read-only" grep -q '"vf": 8, "state": "ready", .*"read_only": true' <("$MAPTBL" --json vf list)

for i in $(seq 8); do start_nbd "$SOCK" $i "$WORK/nbd$i"; done
CP=()
for i in $(seq 8); do
	nbdcopy "nbd+unix:///?socket=$WORK/nbd$i" "$WORK/out$i" &
	CP+=($!)
done
for p in "${CP[@]}"; do wait "$p" || echo "nbdcopy $p failed"; done
for i in $(seq 8); do
	cp "$MNT/f$i" "$WORK/exp$i"
	[ $i = 2 ] && truncate -s 1M "$WORK/exp$i"
	check "VF $i reads back f$i" cmp "$WORK/out$i" "$WORK/exp$i"
done
"$MAPTBL" --json vf stats >"$WORK/stats.json"
check "every VF served requests" [ "$(grep -c '"requests": [1-9]' "$WORK/stats.json")" = 8 ]

# Malformed protocol messages: error replies, and the emulator keeps serving.
python3 - "$SOCK" >"$WORK/proto" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
def rt(pkt):
    s.send(pkt)
    r = s.recv(64)
    return struct.unpack("<IIIIQQ", r) if len(r) == 32 else ("len", len(r))
print("short", rt(b"\x01\x02\x03"))
print("before-hello", rt(struct.pack("<IIIIQQ", 2, 0, 0, 4, 0, 0)))
print("bad-magic", rt(struct.pack("<IIIIQQ", 1, 0, 0, 0, 0x1234, 1)))
print("hello", rt(struct.pack("<IIIIQQ", 1, 0, 0, 0, 0x4D54454D, 1))[:2])
print("bad-size", rt(struct.pack("<IIIIQQ", 2, 0, 0, 3, 0, 0)))
print("bad-fn", rt(struct.pack("<IIIIQQ", 2, 0, 99, 4, 0, 0)))
print("unknown", rt(struct.pack("<IIIIQQ", 77, 0, 0, 0, 0, 0)))
print("free-table", rt(struct.pack("<IIIIQQ", 5, 0, 0, 0, 0x100000000, 0)))
print("free-nothing", rt(struct.pack("<IIIIQQ", 5, 0, 0, 0, 0x100000000 + (200 << 20), 0)))
print("huge-alloc", rt(struct.pack("<IIIIQQ", 4, 0, 0, 0, 0, 1 << 50)))
print("id", hex(rt(struct.pack("<IIIIQQ", 2, 0, 0, 4, 0, 0))[5]))
PY
check "a short packet gets EPROTO" grep -q "^short (2147483648, 71," "$WORK/proto"
check "a request before HELLO gets EPROTO" grep -q "^before-hello (2147483650, 71," "$WORK/proto"
check "a wrong magic gets EPROTONOSUPPORT" grep -q "^bad-magic (2147483649, 93," "$WORK/proto"
check "a bad access size gets EINVAL" grep -q "^bad-size (2147483650, 22," "$WORK/proto"
check "a missing function gets ENODEV" grep -q "^bad-fn (2147483650, 19," "$WORK/proto"
check "an unknown type gets EPROTO" grep -q "^unknown (2147483725, 71," "$WORK/proto"
check "freeing the memory of a live table gets EBUSY" grep -q "^free-table (2147483653, 16," "$WORK/proto"
check "freeing unallocated memory gets ENOENT" grep -q "^free-nothing (2147483653, 2," "$WORK/proto"
check "a huge allocation gets ENOMEM" grep -q "^huge-alloc (2147483652, 12," "$WORK/proto"
check "the device still answers its ID" grep -q "^id 0x4c42544d" "$WORK/proto"
check "the emulator is still running" kill -0 $EMU_PID

"$MAPTBL" vf destroy $(seq 8)
check "vf destroy of 8 VFs" [ -z "$("$MAPTBL" vf list | tail -n +2)" ]
"$MAPTBL" vf destroy 3 2>"$WORK/err3"
check "destroying a VF without a table fails, named" grep -q "VF 3 has no table" "$WORK/err3"
[ $FAILED = 0 ] || tail -n 20 "$WORK/emu.log"
exit $FAILED
