#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A stalled write survives the fault service (issue #7 §2, §4): the service is stopped (SIGSTOP)
# while a VM writes into a hole, so the fault is posted to its queue and never answered, then
# killed (SIGKILL: its fault queue goes with it). The write stays stalled, not failed, not
# dropped; a new `maptbl vf serve` finds the stalled VF and serves it, and the write completes
# and is in the file. Also: a second service is refused while one runs (the fault queue has one
# owner); `vf create --serve` then leaves the new VF to the running service; SIGTERM stops a
# service cleanly (exit 0, pidfile removed). A VF pushed from a table file is not served (its
# label names the table file, not a backing file) and the table file stays as it was.
# Needs root, loop devices, FUSE (nbdfuse) and nbdkit; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_nbd_fuse
need_fs ext4

K=1024
mkfs_mount ext4 64M fs -b 4096
IMG=$MNT/vm.img
truncate -s 8M "$IMG"
truncate -s 8M "$MNT/other.img"
served_vf restart "$WORK/fs.img" "$IMG"
LOG=$SERVE_LOG FIRST=$SERVE_PID

head -c $((64 * K)) /dev/urandom >"$WORK/a"
head -c $((64 * K)) /dev/urandom >"$WORK/b"
dd if="$WORK/a" of="$VFDEV" bs=64K seek=1 conv=notrunc,fsync status=none
check "a write into a hole is served" [ $? = 0 ]

"$MAPTBL" vf serve --timeout 500 2>"$WORK/second.err"
check "a second service is refused while one runs (exit 1)" [ $? = 1 ]
check "... saying the fault queue is taken" grep -q "fault queue is taken" "$WORK/second.err"
"$MAPTBL" vf create "$MNT/other.img" --serve >"$WORK/create.out" 2>"$WORK/create.err"
check "vf create --serve with a service running creates the VF and exits 0" [ $? = 0 ]
check "... printing its number" [ "$(cat "$WORK/create.out")" = 2 ]
check "... and saying who serves it" grep -q "serves the new VF" "$WORK/create.err"

# A VF pushed from a table file (maptbl push) is labelled with the table file: the service must
# not take that for the VF's backing file (allocating there would write zeros into the table).
"$MAPTBL" build -q "$MNT/other.img" -o "$WORK/other.mtb"
cp "$WORK/other.mtb" "$WORK/other.mtb.orig"
"$MAPTBL" push --vf 3 "$WORK/other.mtb" >/dev/null
start_nbd "$WORK/restart.sock" 3 "$WORK/nbd3.sock"
head -c 4096 /dev/urandom >"$WORK/blk"
nbdcopy "$WORK/blk" "nbd+unix:///?socket=$WORK/nbd3.sock" 2>/dev/null
check "a write into a hole of a VF pushed from a table file fails" [ $? != 0 ]
check "... the service refused it: a table file is no backing file" \
	grep -q '"vf": 3, "result": "failed".*is a table file' "$LOG"
check "... and the table file is untouched" cmp "$WORK/other.mtb" "$WORK/other.mtb.orig"

kill -STOP $FIRST
dd if="$WORK/b" of="$VFDEV" bs=64K seek=40 conv=notrunc,fsync status=none &
DD=$!
stalled=0
for _ in $(seq 100); do
	"$MAPTBL" vf list | grep -q stalled && { stalled=1; break; }
	sleep 0.1
done
check "with the service stopped, the write stalls" [ $stalled = 1 ]
sleep 0.3 # the fault is posted to the stopped service's queue
kill -KILL $FIRST
wait $FIRST 2>/dev/null
sleep 0.5
check "after the service was killed the writer still waits" kill -0 $DD
check "... and VF 1 is still stalled" sh -c "'$MAPTBL' vf list | grep -q '^1 .*stalled'"
check "the killed service served one write fault" \
	[ "$(grep '"result": "served"' "$LOG" | grep -c '"reason": "hole"')" = 1 ]
check "... and committed it at the writer's fsync (a COMMIT fault)" \
	[ "$(grep '"result": "served"' "$LOG" | grep -c '"reason": "commit", .*"committed": true')" = 1 ]

: >"$LOG"
start_serve "$LOG"
SECOND=$SERVE_PID
wait $DD
check "a restarted service serves the stalled write: it completes" [ $? = 0 ]
check "the restarted service logged it as served" grep -q '"vf": 1, "result": "served", "write": true, "reason": "hole", "lba": 640' "$LOG"
drop_cached "$IMG"
check "the first write is in the file" cmp <(file_range "$IMG" $((64 * K)) $((64 * K))) "$WORK/a"
check "the write that outlived a service is in the file" cmp <(file_range "$IMG" $((40 * 64 * K)) $((64 * K))) "$WORK/b"
kill -TERM $SECOND
wait $SECOND
check "SIGTERM: the service exits with 0" [ $? = 0 ]
check "SIGTERM: its pidfile is gone" [ ! -e "$WORK/serve.pid" ]
"$MAPTBL" vf serve --once --timeout 300 2>"$WORK/once.err"
check "vf serve --once --timeout: no fault within the time is exit 1" [ $? = 1 ]
check "... saying so" grep -q "no fault within 300 ms" "$WORK/once.err"
check "the services reported no sanitizer error" sh -c "! grep -q Sanitizer '$WORK/serve.err'"
# Bad options: one-line usage errors, exit 2, before the device is reached.
for args in "serve --alloc-unit 0" "serve --alloc-unit 2G" "serve --timeout x" "serve --vf 65" \
	"serve --size 1M" "list --serve" "faults --once" "create --once $IMG" "serve extra"; do
	"$MAPTBL" vf $args >/dev/null 2>"$WORK/usage.err"
	check "vf $args: usage error (exit 2)" [ $? = 2 ]
done
[ $FAILED = 0 ] || { cat "$LOG" "$WORK/serve.err"; tail -n 20 "$WORK/emu.log"; }
exit $FAILED
