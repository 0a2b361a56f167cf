#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The fault service's cost (issue #7 §5), through real clients: fio's nbd engine (iodepth 1) on
# the nbdkit plugin, the emulator on a loop-mounted ext4 image, `maptbl vf serve --json`.
#   - sequential writes (1 MiB) into a sparse VF against the same writes into an already
#     allocated VF (the anchor), in the same run, alternating which goes first: throughput ratio;
#   - random writes (64 KiB) into a sparse VF;
#   - for both: faults per GiB written, fault service time p50/p99 (from the service's log:
#     reading the fault to WALK_AGAIN), bytes the table update stored per fault against the
#     table's length (what a full rebuild and push writes);
#   - growth: sequential writes past the end of a small file (faults per GiB).
# The service commits its allocations at the VM's flushes (REGISTERS.md §12.6). END_FSYNC=1: fio
# flushes once at the end of each sequential pass (end_fsync: NBD FLUSH), in both arms, so the
# ratio counts the commit (and the anchor's own flush: the writeback of its data); default 0, no
# flush. MAPTBL_SERVE_SYNC=fault in the environment measures the sync at every fault instead.
# The image is a disk: allocated in the machine's filesystem (fallocate), and read into the page
# cache before every sequential pass, so that neither arm pays for memory the other was given
# (PERFORMANCE.md run G: a write into a page new to this guest costs ~20 us here, and only the
# sparse arm's blocks were new). COLD=1: a sparse image, nothing read first (runs A-F).
# Needs root, loop devices, nbdkit, fio (with its nbd engine). Medians over REPS runs.
# Usage: bench/serve/run.sh BUILD_DIR [SIZE_MIB (default 256)] [REPS (default 3)] [ALLOC_UNIT (1M)]
set -eu
B=$(cd "${1:?usage: run.sh BUILD_DIR [SIZE_MIB] [REPS] [ALLOC_UNIT]}" && pwd)
SIZE=${2:-256} REPS=${3:-3} AU=${4:-1M} END_FSYNC=${END_FSYNC:-0} COLD=${COLD:-0}
MAPTBL=$B/cli/maptbl EMU=$B/hw-iface/emu/maptbl-emu PLUGIN=$B/hw-iface/nbd/nbdkit-maptbl-plugin.so
for t in fio nbdkit losetup mkfs.ext4; do command -v $t >/dev/null || { echo "no $t"; exit 77; }; done
W=$(mktemp -d /var/tmp/maptbl-bench-serve.XXXXXX)
PIDS=() DEV= MNT=$W/mnt
cleanup() {
	set +e
	[ ${#PIDS[@]} = 0 ] || { kill "${PIDS[@]}"; sleep 0.5; kill -9 "${PIDS[@]}"; } 2>/dev/null
	wait 2>/dev/null
	mountpoint -q "$MNT" && umount "$MNT"
	[ -n "$DEV" ] && losetup -d "$DEV"
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
# Every page of the image resident before a timed pass (not COLD).
warm() { [ "$COLD" = 1 ] || dd if="$W/fs.img" of=/dev/null bs=4M status=none; }
wait_for() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "nan" }'; }
pct() { # pct P < values
	sort -g | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print NR ? v[i] : "nan" }'
}
fio_bw() { # fio_bw SOCK RW BS SIZE_MIB [OFFSET_MIB [END_FSYNC]]: MiB/s
	fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$1" --rw="$2" --bs="$3" --size="$4M" \
		--offset="${5:-0}M" --end_fsync="${6:-0}" --iodepth=1 --randrepeat=1 --norandommap --output-format=terse \
		--terse-version=3 2>/dev/null | awk -F';' '$1 == 3 { printf "%.1f\n", $48 / 1024 }'
}

# Not COLD: mkfs discards the device by default, which punches the image's blocks out again; the
# lazy initialisation would write the inode tables in the background during the first passes.
if [ "$COLD" = 1 ]; then
	truncate -s $((4 * SIZE + 512))M "$W/fs.img"
	MKFS_OPTS=()
else
	fallocate -l $((4 * SIZE + 512))M "$W/fs.img"
	MKFS_OPTS=(-E nodiscard,lazy_itable_init=0,lazy_journal_init=0)
fi
DEV=$(losetup -f --show "$W/fs.img")
mkfs.ext4 -q -b 4096 "${MKFS_OPTS[@]}" "$DEV"
mkdir -p "$MNT"
mount "$DEV" "$MNT"
"$EMU" --disk "$W/fs.img" --socket "$W/emu.sock" --foreground 2>"$W/emu.log" &
PIDS+=($!)
wait_for "$W/emu.sock"
export MAPTBL_DEV=emu:$W/emu.sock

for rep in $(seq "$REPS"); do
	rm -f "$MNT"/*.img
	truncate -s ${SIZE}M "$MNT/sparse.img" "$MNT/rand.img"
	truncate -s 1M "$MNT/grow.img"
	dd if=/dev/zero of="$MNT/alloc.img" bs=1M count="$SIZE" conv=fsync status=none
	sync
	# VF 1 sparse (sequential), 2 allocated (the anchor), 3 sparse (random), 4 a small file (growth)
	"$MAPTBL" vf create --vf 1 "$MNT/sparse.img" >/dev/null
	"$MAPTBL" vf create --vf 2 "$MNT/alloc.img" >/dev/null
	"$MAPTBL" vf create --vf 3 "$MNT/rand.img" >/dev/null
	"$MAPTBL" vf create --vf 4 "$MNT/grow.img" --size $((SIZE / 4 + 1))M >/dev/null
	: >"$W/serve.log"
	rm -f "$W/serve.pid"
	"$MAPTBL" --json vf serve --alloc-unit "$AU" --pidfile "$W/serve.pid" >"$W/serve.log" 2>"$W/serve.err" &
	SERVE=$!
	PIDS+=($SERVE)
	wait_for "$W/serve.pid"
	NBD=()
	for vf in 1 2 3 4; do
		rm -f "$W/nbd$vf.sock"
		nbdkit -f -U "$W/nbd$vf.sock" "$PLUGIN" dev="$MAPTBL_DEV" vf=$vf 2>>"$W/nbdkit.log" &
		NBD+=($!)
		PIDS+=($!)
		wait_for "$W/nbd$vf.sock"
	done
	# Each pass starts with nothing dirty (sync): a sync the service does (every fault syncs
	# the file, and on a loop device that writes back the image) must not write back the
	# anchor's data, nor the anchor run in the writeback of the sparse pass's.
	if [ $((rep % 2)) = 1 ]; then
		sync; warm; a=$(fio_bw "$W/nbd2.sock" write 1M "$SIZE" 0 "$END_FSYNC")
		sync; warm; s=$(fio_bw "$W/nbd1.sock" write 1M "$SIZE" 0 "$END_FSYNC")
	else
		sync; warm; s=$(fio_bw "$W/nbd1.sock" write 1M "$SIZE" 0 "$END_FSYNC")
		sync; warm; a=$(fio_bw "$W/nbd2.sock" write 1M "$SIZE" 0 "$END_FSYNC")
	fi
	r=$(fio_bw "$W/nbd3.sock" randwrite 64k $((SIZE / 4)))
	g=$(fio_bw "$W/nbd4.sock" write 64k $((SIZE / 4)) 1)
	sleep 1.2 # the last faults logged
	# What a rebuild and push of VF 1's table would write, at the end of the run.
	tl=$("$MAPTBL" --json vf list | grep -o '"vf": 1,[^}]*"table_len": [0-9]*' | grep -o '[0-9]*$')
	kill $SERVE; wait $SERVE || true
	kill "${NBD[@]}"; wait "${NBD[@]}" 2>/dev/null || true
	PIDS=("${PIDS[0]}")
	for vf in 1 3 4; do
		grep "\"vf\": $vf, \"result\": \"served\"" "$W/serve.log" | grep -v '"reason": "commit"' >"$W/vf$vf.log" || true
	done
	grep '"vf": 1, "result": "served".*"reason": "commit"' "$W/serve.log" |
		grep -o '"service_us": [0-9.]*' | cut -d' ' -f2 >>"$W/commit1"
	echo "rep $rep: seq sparse $s MiB/s, allocated $a MiB/s, ratio $(awk -v s="$s" -v a="$a" 'BEGIN { printf "%.3f", s / a }');" \
		"rand sparse $r MiB/s; growth $g MiB/s; table_len $tl;" \
		"faults seq $(wc -l <"$W/vf1.log") rand $(wc -l <"$W/vf3.log") grow $(wc -l <"$W/vf4.log");" \
		"failed $(grep -c '"failed"' "$W/serve.log" || true)"
	awk -v s="$s" -v a="$a" 'BEGIN { print s / a }' >>"$W/ratio"
	echo "$r" >>"$W/bw3"
	echo "$g" >>"$W/bw4"
	for vf in 1 3 4; do
		wc -l <"$W/vf$vf.log" >>"$W/faults$vf"
		grep -o '"service_us": [0-9.]*' "$W/vf$vf.log" | cut -d' ' -f2 >>"$W/svc$vf"
		grep -o '"table_bytes": [0-9]*' "$W/vf$vf.log" | cut -d' ' -f2 >>"$W/tb$vf"
		grep '"compacted": true' "$W/vf$vf.log" | wc -l >>"$W/comp$vf"
	done
	echo "$tl" >>"$W/tl"
done

gib_seq=$(awk -v m="$SIZE" 'BEGIN { print m / 1024 }')
echo "=== $REPS runs, $SIZE MiB per sequential pass, allocation unit $AU, image $([ "$COLD" = 1 ] && echo "sparse, not read first (COLD=1)" || echo "allocated, read before each pass"), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sequential 1 MiB writes$([ "$END_FSYNC" = 1 ] && echo ' and a flush'), sparse / allocated throughput (median ratio): $(median <"$W/ratio") (runs: $(sort -g "$W/ratio" | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }'))"
echo "commits at the sequential passes' flushes: $(wc -l <"$W/commit1" 2>/dev/null || echo 0), time p50 $(pct 50 <"$W/commit1" 2>/dev/null) us (MAPTBL_SERVE_SYNC=${MAPTBL_SERVE_SYNC:-flush})"
for vf in 1 3 4; do
	name=$([ $vf = 1 ] && echo "sequential 1M" || { [ $vf = 3 ] && echo "random 64K" || echo "growth 64K"; })
	gib=$([ $vf = 1 ] && echo "$gib_seq" || awk -v m="$SIZE" 'BEGIN { print m / 4 / 1024 }')
	echo "$name: $([ $vf = 1 ] || echo "throughput median $(median <"$W/bw$vf") MiB/s, ")faults per GiB $(median <"$W/faults$vf" | awk -v g="$gib" '{ printf "%.0f", $1 / g }')," \
		"service time p50 $(pct 50 <"$W/svc$vf") us, p99 $(pct 99 <"$W/svc$vf") us," \
		"table bytes per update median $(median <"$W/tb$vf") (compactions $(awk '{ s += $1 } END { print s }' "$W/comp$vf"))," \
		"VF 1 table at the end $(median <"$W/tl") bytes (a rebuild and push writes all of it)"
done
