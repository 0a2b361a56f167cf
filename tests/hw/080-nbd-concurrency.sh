#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The nbdkit plugin's request path under concurrency (issue #6 §8: the plugin hands completions
# to waiting nbdkit threads through per-slot futex words, spins poll=US before sleeping, and
# passes the lead from thread to thread). Through the plugin, on a VF made from a fragmented
# file on a loop-mounted ext4 image:
#  - many small requests in flight (nbdcopy, 96 requests of 4 KiB in flight, more than the
#    plugin's 64 slots, 96 nbdkit threads), with the
#    waiting threads sleeping at once (poll=0) and spinning first (poll=200), with the emulator
#    serving at the doorbell and with it serving everything in its processing thread
#    (--inline 0, completions announced by interrupt messages): every request completes (no
#    hang: each copy is bounded by `timeout`), reads equal the file, writes land in the file;
#  - requests that time out (timeout=MS) while the VF is stalled on a fault: more of them than
#    the plugin has request slots (64); requests that find no free slot time out too. They
#    fail with an error, not a hang; once the fault is
#    serviced their slots come back (the leader frees an abandoned slot when its request
#    completes), so a full-depth copy afterwards completes. This used to be untested: a slot
#    leaked by the time-out path would hang every later request once 64 had leaked.
# Needs root, loop devices and nbdkit/nbdcopy; skips (77) without them.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
MAPTBL=${MAPTBL:?} EMU=${MAPTBL_EMU:?} PLUGIN=${MAPTBL_NBD_PLUGIN:?} FRAGMENT=${MAPTBL_FRAGMENT:?}
source "$HERE/../fs/lib.sh"
source "$HERE/lib.sh"
need_root_and_loop
need_fs ext4
for t in nbdkit nbdcopy; do
	command -v $t >/dev/null || skip "no $t"
done

BS=4096
BLOCKS=2048 # 8 MiB
mkfs_mount ext4 64M fs -b $BS
"$FRAGMENT" "$MNT/vm.img" "$MNT/other" $BLOCKS $BS || exit 1
head -c $((BLOCKS * BS)) /dev/urandom >"$WORK/data"
dd if="$WORK/data" of="$MNT/vm.img" bs=1M conv=notrunc,fsync status=none || exit 1
sync
check "the file is fragmented" [ "$(filefrag "$MNT/vm.img" | awk '{print $2}')" -gt 100 ]

# nbd_up NAME THREADS PLUGIN-OPTIONS...: the plugin on VF 1 of the emulator at $SOCK, with
# THREADS nbdkit threads per connection.
nbd_up() {
	local name=$1 threads=$2
	shift 2
	LD_PRELOAD="${MAPTBL_NBD_PRELOAD:-}" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" \
		nbdkit --exit-with-parent -f -t $threads -U "$WORK/$name.nbd" "$PLUGIN" dev="emu:$SOCK" vf=1 "$@" \
		2>>"$WORK/nbdkit.log" &
	NBD_PID=$!
	PIDS+=($NBD_PID)
	wait_socket "$WORK/$name.nbd" || exit 1
	URI="nbd+unix:///?socket=$WORK/$name.nbd"
}

# copy SRC DST: nbdcopy with 96 requests of 4 KiB in flight (more than the plugin's 64 slots),
# at most 30 s.
copy() {
	timeout 30 nbdcopy --connections=1 --requests=96 --request-size=$BS "$1" "$2"
}

round=0
for inline in 32 0; do
	SOCK=$WORK/emu$inline.sock
	start_emu "$WORK/fs.img" "$SOCK" --inline $inline
	export MAPTBL_DEV=emu:$SOCK
	check "inline $inline: vf create gives VF 1" [ "$("$MAPTBL" vf create "$MNT/vm.img")" = 1 ]
	for poll in 0 200; do
		round=$((round + 1))
		nbd_up "r$round" 96 poll=$poll
		rm -f "$WORK/out"
		copy "$URI" "$WORK/out"
		check "inline $inline, poll=$poll: a copy of the VF in 2048 requests of 4 KiB completes" [ $? = 0 ]
		check "inline $inline, poll=$poll: it equals the file" cmp "$WORK/out" "$WORK/data"
		head -c $((BLOCKS * BS)) /dev/urandom >"$WORK/data"
		copy "$WORK/data" "$URI"
		check "inline $inline, poll=$poll: a copy onto the VF in 2048 requests of 4 KiB completes" [ $? = 0 ]
		stop $NBD_PID
		drop_cached "$MNT/vm.img"
		check "inline $inline, poll=$poll: the writes are in the file" cmp "$MNT/vm.img" "$WORK/data"
	done
	"$MAPTBL" vf destroy 1
	stop $EMU_PID
done

# Time-outs on a stalled VF: punch a hole, write into it with timeout=2000 and no fault service.
fallocate -p -o $((100 * BS)) -l $((64 * BS)) "$MNT/vm.img" || exit 1
sync
SOCK=$WORK/emut.sock
start_emu "$WORK/fs.img" "$SOCK"
export MAPTBL_DEV=emu:$SOCK
check "timeouts: vf create gives VF 1" [ "$("$MAPTBL" vf create "$MNT/vm.img")" = 1 ]
nbd_up t 80 timeout=2000
head -c $((BLOCKS * BS)) /dev/urandom >"$WORK/w"
# The whole VF in requests of 4 KiB, 80 in flight, served by 80 nbdkit threads: the first one
# to reach the hole stalls the VF's rings, every request queued behind it waits, all 64 slots
# are taken and time out (the other threads wait for a slot).
# nbdcopy gives up at its first error; if some of its requests had not reached the plugin by
# then, copy again (the VF is still stalled) until every slot was abandoned.
# nbdkit 1.32 (Debian 12) can abort when a client leaves with replies still pending: one
# thread's reply meets the closed socket (EPIPE) and closes it, another's then fails
# "connections.c: raw_send_socket: Assertion `sock >= 0'" (nbdkit's own race, not the plugin's:
# seen in 2 of about 8 runs under load). These copies leave at their first error by design;
# when nbdkit died that way the checks that need it are not run, and the test says so.
skip_if_nbdkit_died_of_its_race() {
	grep -q "raw_send_socket: Assertion" "$WORK/nbdkit.log" || return 0
	echo "SKIP (the rest): nbdkit aborted in raw_send_socket (its race when a client leaves" \
		"with replies pending); the checks after it are not run this time"
	[ $FAILED = 0 ] && exit 77
	exit $FAILED
}
n=0
for try in 1 2 3; do
	start=$(date +%s)
	timeout 30 nbdcopy --connections=1 --requests=80 --request-size=$BS "$WORK/w" \
		"nbd+unix:///?socket=$WORK/t.nbd" 2>"$WORK/tcopy.err" </dev/null
	rc=$?
	check "timeouts: copy $try into the stalled VF fails (not hangs, not succeeds)" [ $rc != 0 -a $rc != 124 ]
	check "timeouts: it failed within 30 s" [ $(($(date +%s) - start)) -lt 30 ]
	sleep 3 # nbdcopy left at the first error: the requests still in the plugin time out now
	n=$(grep -c "write of 1 blocks at [0-9]*: Connection timed out" "$WORK/nbdkit.log")
	echo "copy $try: $(head -c 300 "$WORK/tcopy.err")"
	[ "$n" -ge 64 ] && break
done
skip_if_nbdkit_died_of_its_race
check "timeouts: all 64 request slots timed out ($n)" [ "$n" -ge 64 ]
# Every slot is held by an abandoned request now: new requests find none, and time out too.
timeout 30 nbdcopy --connections=1 --requests=16 --request-size=$BS "$WORK/w" \
	"nbd+unix:///?socket=$WORK/t.nbd" 2>"$WORK/tcopy.err" </dev/null
rc=$?
check "timeouts: a copy that finds no free slot fails (not hangs)" [ $rc != 0 -a $rc != 124 ]
check "timeouts: the plugin says no slot came free" grep -q "no request slot free within 2000 ms" "$WORK/nbdkit.log"
sleep 2.5 # the requests of that copy still in the plugin time out now
skip_if_nbdkit_died_of_its_race
"$MAPTBL" --json vf list >"$WORK/list.json"
check "timeouts: VF 1 is still stalled on the hole" grep -q '"stalled": true' "$WORK/list.json"
# Service the fault by hand: the hole's blocks written through the filesystem, walk again.
dd if=/dev/zero of="$MNT/vm.img" bs=$BS seek=100 count=64 conv=notrunc,fsync status=none
"$MAPTBL" vf create --vf 1 "$MNT/vm.img" >/dev/null
check "timeouts: the VF is no longer stalled" sh -c "'$MAPTBL' --json vf list | grep -q '\"stalled\": false'"
# The abandoned requests complete in the device; their slots must come back. Every slot is
# needed again by the next copies.
rm -f "$WORK/out"
copy "nbd+unix:///?socket=$WORK/t.nbd" "$WORK/out"
check "timeouts: after the service a full-depth copy of the VF completes" [ $? = 0 ]
drop_cached "$MNT/vm.img"
head -c $((BLOCKS * BS)) "$MNT/vm.img" >"$WORK/now"
check "timeouts: it equals the file" cmp "$WORK/out" "$WORK/now"
copy "$WORK/out" "nbd+unix:///?socket=$WORK/t.nbd"
check "timeouts: and a full-depth copy onto it completes" [ $? = 0 ]
[ $FAILED = 0 ] || { echo "--- emulator log"; tail -n 30 "$WORK/emu.log"; tail -n 30 "$WORK/nbdkit.log"; }
exit $FAILED
