#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/nbd/run.sh [BUILD_DIR]: the issue #6 §8 benchmark (docs/PERFORMANCE.md, "The device
# through NBD"). Not a test.
#
# As root: makes an ext4 image on a loop device with a file of EXTENTS (default 100,000) extents
# (the fragmenter of the filesystem tests: two files allocated a block at a time, alternately),
# checks the count with filefrag, unmounts the filesystem, then for each cache configuration of
# SWEEP starts maptbl-emu on the image, pushes the file's table to VF 1 (maptbl vf create), and
# serves it with nbdkit and the maptbl plugin; the anchor is the same nbdkit serving the raw image
# with its file plugin. fio's nbd engine (libnbd) does 4 KiB random reads at queue depth 1 and 32
# on both, alternately, RUNS times; the script prints the medians, the VF/raw ratios and, from
# the VF's counters (maptbl vf stats), extent cache (BTLB) and node cache hit rates and nodes
# walked per request, the servers' CPU time and (with perf) context switches per request; then maptbl-bench-emu on the same VF without NBD (register round trip,
# one request through the rings, 32 in flight) for the latency breakdown.
#
# Environment: EXTENTS (100000), RUNS (5), RUNTIME (seconds per fio run, 5), SWEEP (cache
# configurations "XCACHE:NCACHE" separated by spaces, default "8:64"; 0 disables that cache),
# THREADS (nbdkit threads, 32), PLUGIN_OPTS (more parameters for the maptbl plugin, e.g.
# "poll=20"), WORKDIR (~1 GiB of image, default /dev/shm: other processes'
# `echo 3 > drop_caches` then cannot turn page-cache reads into disk reads halfway), MAPTBL,
# EMU, PLUGIN, FRAGMENT (the programs, default under BUILD_DIR). CEILING=1 (default off) adds,
# after the sweep (SWEEP="" skips it), the ceiling of a device outside nbdkit's request thread:
# nbdkit's file plugin against bench/nbd's handoff plugin (mode=inline, thread, process; HANDOFF;
# CEILING_ARMS, default "file inline thread process"; also thread-batch, process-batch, and
# ARM@N for nbdkit -t N).
# Without root, loop devices, nbdkit or fio it says so and exits 77.
set -u
BUILD=$(readlink -f "${1:-build}")
MAPTBL=${MAPTBL:-$BUILD/cli/maptbl}
EMU=${EMU:-$BUILD/hw-iface/emu/maptbl-emu}
PLUGIN=${PLUGIN:-$BUILD/hw-iface/nbd/nbdkit-maptbl-plugin.so}
FRAGMENT=${FRAGMENT:-$BUILD/bench/fs/maptbl-bench-fragment}
BENCH_EMU=${BENCH_EMU:-$BUILD/bench/nbd/maptbl-bench-emu}
EXTENTS=${EXTENTS:-100000}
RUNS=${RUNS:-5}
RUNTIME=${RUNTIME:-5}
SWEEP=${SWEEP:-8:64}
THREADS=${THREADS:-32}
BS=4096

skip() {
	echo "run.sh: skipped: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mount)"
command -v losetup >/dev/null || skip "no losetup"
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null
[ -e /dev/loop-control ] || skip "the kernel has no loop device support"
command -v mkfs.ext4 >/dev/null || skip "no mkfs.ext4"
command -v filefrag >/dev/null || skip "no filefrag (e2fsprogs)"
command -v nbdkit >/dev/null || skip "no nbdkit (apt-get install nbdkit)"
command -v fio >/dev/null || skip "no fio (apt-get install fio)"
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd engine (Debian's fio has it: apt-get install fio)"
for p in "$MAPTBL" "$EMU" "$PLUGIN" "$FRAGMENT" "$BENCH_EMU"; do
	[ -e "$p" ] || { echo "run.sh: $p not found: build first (cmake --build $BUILD)" >&2; exit 2; }
done
HANDOFF=${HANDOFF:-$BUILD/bench/nbd/nbdkit-handoff-plugin.so}
[ "${CEILING:-0}" != 1 ] || [ -e "$HANDOFF" ] ||
	{ echo "run.sh: $HANDOFF not found: build first (needs nbdkit-plugin-dev)" >&2; exit 2; }

WORKDIR=${WORKDIR:-/dev/shm}
[ -d "$WORKDIR" ] || WORKDIR=${TMPDIR:-/var/tmp}
WORK=$(mktemp -d "$WORKDIR/maptbl-bench-nbd.XXXXXX") || exit 1
MNT=$WORK/mnt
DEV=
MOUNTED=0
PIDS=()

stop_daemons() {
	local p
	[ ${#PIDS[@]} = 0 ] && return 0
	kill "${PIDS[@]}" 2>/dev/null
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
}

cleanup() {
	cd /
	stop_daemons
	if [ "$MOUNTED" = 1 ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$DEV" ] && losetup -d "$DEV" 2>/dev/null
	rm -rf "$WORK"
}
# On failure show what the daemons said.
trap '[ $? = 0 ] || tail -n 5 "$WORK"/*.log 2>/dev/null; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

wait_socket() {
	local i
	for i in $(seq 100); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	echo "run.sh: no socket $1" >&2
	exit 1
}

source "$(dirname "$0")/../fragmented_image.sh"
fragmented_image vm.img other
"$MAPTBL" build -q "$MNT/vm.img" -o "$WORK/vm.mtb" || exit 1
"$MAPTBL" dump "$WORK/vm.mtb" | sed -n "s/^/run.sh: table: /;1,4p"
# The table is built; the filesystem is not needed any more (the device reads the image).
detach
echo "run.sh: $(uname -r); $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

# fio_run URI QD: prints "IOPS MEAN-LATENCY-US" (terse v3: field 8 read IOPS, 40 read lat mean).
fio_run() {
	fio --name=randread --ioengine=nbd --uri="$1" --rw=randread --bs=$BS --iodepth="$2" \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --output-format=terse \
		--terse-version=3 2>"$WORK/fio.err" | awk -F';' 'NF > 40 { print int($8), $40 }'
}

# ticks PID...: user + system CPU time of the processes so far, in clock ticks.
ticks() { local p t=0; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo $t; }
HZ=$(getconf CLK_TCK)

# cs_start PID...: counts the context switches of the processes (all their threads) until
# cs_stop, which prints them per request: cs_stop IOPS. Needs perf; without it prints "-".
PERF=$(command -v perf)
cs_start() {
	CSPID=
	[ -n "$PERF" ] || return 0
	local IFS=,
	"$PERF" stat -x, -e context-switches -p "$*" -o "$WORK/cs.out" 2>/dev/null &
	CSPID=$!
}
cs_stop() {
	if [ -z "$CSPID" ]; then echo -; return; fi
	kill -INT "$CSPID" 2>/dev/null
	wait "$CSPID" 2>/dev/null
	awk -F, -v n="$1" -v s="$((RUNTIME + 1))" '$3 == "context-switches" { c = $1 }
		END { if (n && c != "") printf "%.2f\n", c / (n * s); else print "-" }' "$WORK/cs.out"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# cpu_per_req TICKS0 IOPS PID...: server CPU microseconds per request of the fio run just done
# (requests ~ IOPS x (runtime + 1 s of ramp)).
cpu_per_req() {
	local t0=$1 iops=$2
	shift 2
	awk -v t="$(($(ticks "$@") - t0))" -v hz="$HZ" -v n="$iops" -v s="$((RUNTIME + 1))" \
		'BEGIN { printf "%.1f\n", n ? t / hz * 1e6 / (n * s) : 0 }'
}

# measure NAME URI QD PID...: one fio run on URI; appends its IOPS, mean latency, context
# switches and CPU per request of the server processes PID... to $WORK/NAME.{iops,lat,cs,cpu}.
measure() {
	local name=$1 uri=$2 qd=$3 t0 i l
	shift 3
	t0=$(ticks "$@")
	cs_start "$@"
	read -r i l < <(fio_run "$uri" "$qd"); echo "${i:-0}" >>"$WORK/$name.iops"; echo "${l:-0}" >>"$WORK/$name.lat"
	cs_stop "$i" >>"$WORK/$name.cs"
	cpu_per_req "$t0" "$i" "$@" >>"$WORK/$name.cpu"
}

counters() { # counters FILE: VF 1's counters as "name value" lines
	"$MAPTBL" vf stats 1 | awk 'NF == 2 && $2 ~ /^[0-9]+$/ { print $1, $2 }' >"$1"
}
counter() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }

export MAPTBL_DEV=emu:$WORK/emu.sock
RAWSOCK=$WORK/raw.sock VFSOCK=$WORK/vf.sock
RAWURI="nbd+unix:///?socket=$RAWSOCK" VFURI="nbd+unix:///?socket=$VFSOCK"
printf '\n%-8s %4s %10s %10s %6s %9s %9s %7s %7s %8s\n' "xc:nc" QD "raw IOPS" "VF IOPS" "VF/raw" \
	"raw lat" "VF lat" "XC hit" "NC hit" "nodes/rq"
for cfg in $SWEEP; do
	xc=${cfg%%:*} nc=${cfg##*:}
	"$EMU" --disk "$WORK/fs.img" --socket "$WORK/emu.sock" --foreground --read-only \
		--xcache "$xc" --ncache "$nc" --log-level warn 2>>"$WORK/emu.log" &
	EMUPID=$!
	PIDS+=($!)
	wait_socket "$WORK/emu.sock"
	"$MAPTBL" push --vf 1 "$WORK/vm.mtb" >/dev/null || exit 1
	rm -f "$RAWSOCK" "$VFSOCK" # nbdkit leaves its socket behind
	nbdkit -f -r -t "$THREADS" -U "$RAWSOCK" file "$WORK/fs.img" 2>>"$WORK/nbdkit.log" &
	RAWPID=$!
	PIDS+=($!)
	# shellcheck disable=SC2086 # PLUGIN_OPTS: several parameters
	nbdkit -f -t "$THREADS" -U "$VFSOCK" "$PLUGIN" dev="emu:$WORK/emu.sock" vf=1 ${PLUGIN_OPTS:-} \
		2>>"$WORK/nbdkit.log" &
	VFPID=$!
	PIDS+=($!)
	wait_socket "$RAWSOCK"
	wait_socket "$VFSOCK"
	for qd in 1 32; do
		: >"$WORK/raw.iops"; : >"$WORK/vf.iops"; : >"$WORK/raw.lat"; : >"$WORK/vf.lat"
		: >"$WORK/raw.cpu"; : >"$WORK/vf.cpu"; : >"$WORK/raw.cs"; : >"$WORK/vf.cs"
		counters "$WORK/c0"
		for r in $(seq "$RUNS"); do
			measure raw "$RAWURI" $qd $RAWPID
			measure vf "$VFURI" $qd $VFPID $EMUPID
		done
		counters "$WORK/c1"
		d() { echo $(($(counter "$WORK/c1" "$1") - $(counter "$WORK/c0" "$1"))); }
		req=$(d requests) xh=$(d xc_hits) xm=$(d xc_misses) nh=$(d nc_hits) nm=$(d nc_misses) nodes=$(d nodes)
		ri=$(median <"$WORK/raw.iops") vi=$(median <"$WORK/vf.iops")
		rl=$(median <"$WORK/raw.lat") vl=$(median <"$WORK/vf.lat")
		printf '%-8s %4s %10s %10s %6s %8.1fu %8.1fu %6s%% %6s%% %8s\n' "$cfg" $qd "$ri" "$vi" \
			"$(awk -v a="$vi" -v b="$ri" 'BEGIN { printf "%.2f", b ? a / b : 0 }')" "$rl" "$vl" \
			"$(awk -v h="$xh" -v m="$xm" 'BEGIN { printf "%.1f", h + m ? 100 * h / (h + m) : 0 }')" \
			"$(awk -v h="$nh" -v m="$nm" 'BEGIN { printf "%.1f", h + m ? 100 * h / (h + m) : 0 }')" \
			"$(awk -v n="$nodes" -v r="$req" 'BEGIN { printf "%.2f", r ? n / r : 0 }')"
		echo "  runs: raw $(tr '\n' ' ' <"$WORK/raw.iops")/ VF $(tr '\n' ' ' <"$WORK/vf.iops")" \
		     "IOPS; DMA node fetches/request $(awk -v n="$nm" -v r="$req" 'BEGIN { printf "%.2f", r ? n / r : 0 }')"
		echo "  server CPU per request (median): raw nbdkit $(median <"$WORK/raw.cpu") us," \
		     "VF nbdkit + maptbl-emu $(median <"$WORK/vf.cpu") us"
		[ -z "$PERF" ] || echo "  server context switches per request (median): raw" \
			"$(median <"$WORK/raw.cs"), VF $(median <"$WORK/vf.cs")"
	done
	# The same VF without NBD: register round trip, one request through the rings, 32 in flight
	# (nbdkit holds the VF's rings: the plugin's server is stopped first).
	kill $VFPID && wait $VFPID 2>/dev/null
	"$BENCH_EMU" "emu:$WORK/emu.sock" 1 5000 | sed "s/^/  $cfg without NBD: /"
	stop_daemons
done

# CEILING=1: the ceiling of a device outside nbdkit's request thread (docs/PERFORMANCE.md, "The
# ceiling of a device outside the request thread"): nbdkit's file plugin (the anchor) against
# bench/nbd's handoff plugin on the same image, its pread in the request thread (inline), in one
# worker thread (thread) or in a forked process (process), all with THREADS nbdkit threads.
[ "${CEILING:-0}" = 1 ] || exit 0
# An arm MODE-batch is the handoff plugin with mode=MODE wake=batch; ARM@N runs nbdkit -t N
# (default THREADS), and its ratio is to file@N if that is an arm, else to the first arm.
ARMS=${CEILING_ARMS:-file inline thread process}
declare -A APIDS
for a in $ARMS; do
	rm -f "$WORK/$a.sock"
	m=${a%@*} t=$THREADS
	[ "$m" = "$a" ] || t=${a##*@}
	if [ "$m" = file ]; then
		nbdkit -f -r -t "$t" -U "$WORK/$a.sock" file "$WORK/fs.img" 2>>"$WORK/nbdkit.log" &
	else
		nbdkit -f -r -t "$t" -U "$WORK/$a.sock" "$HANDOFF" file="$WORK/fs.img" "mode=${m%-batch}" \
			"wake=$([ "${m%-batch}" = "$m" ] && echo each || echo batch)" 2>>"$WORK/nbdkit.log" &
	fi
	PIDS+=($!)
	wait_socket "$WORK/$a.sock"
	# The server's processes: nbdkit and, in process mode, the executor it forks (after
	# binding its socket: wait for it).
	APIDS[$a]=$!
	for i in $(seq 50); do
		[ "${m%-batch}" != process ] && break
		c=$(cat /proc/$!/task/*/children) && [ -n "$c" ] && APIDS[$a]="$! $c" && break
		sleep 0.1
	done
done
echo "run.sh: ceiling (nbdkit -t $THREADS, ARM@N: -t N): load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-16s %4s %10s %7s %9s %12s %12s\n' arm QD IOPS "/file" "lat" "CPU/rq" "switches/rq"
for qd in 1 32; do
	for a in $ARMS; do : >"$WORK/$a.iops"; : >"$WORK/$a.lat"; : >"$WORK/$a.cpu"; : >"$WORK/$a.cs"; done
	for r in $(seq "$RUNS"); do
		# Alternately, each repetition starting with the next arm.
		# shellcheck disable=SC2086 # ARMS: a list
		set -- $ARMS
		for _ in $(seq $(((r - 1) % $#))); do set -- "${@:2}" "$1"; done
		for a in "$@"; do
			# shellcheck disable=SC2086 # APIDS: one or two PIDs
			measure "$a" "nbd+unix:///?socket=$WORK/$a.sock" $qd ${APIDS[$a]}
		done
	done
	# shellcheck disable=SC2086 # ARMS: a list
	set -- $ARMS
	for a in $ARMS; do
		anchor=$1
		[ "${a%@*}" = "$a" ] || [ ! -s "$WORK/file@${a##*@}.iops" ] || anchor=file@${a##*@}
		[ "${a%@*}" != "$a" ] || [ ! -s "$WORK/file.iops" ] || anchor="file"
		anchor=$(median <"$WORK/$anchor.iops")
		i=$(median <"$WORK/$a.iops")
		printf '%-16s %4s %10s %7s %8.1fu %9s us %12s\n' "$a" $qd "$i" \
			"$(awk -v a="$i" -v b="$anchor" 'BEGIN { printf "%.2f", b ? a / b : 0 }')" \
			"$(median <"$WORK/$a.lat")" "$(median <"$WORK/$a.cpu")" "$(median <"$WORK/$a.cs")"
	done
	for a in $ARMS; do echo "  runs $a: $(tr '\n' ' ' <"$WORK/$a.iops")"; done
done
echo "run.sh: ceiling done: load $(cut -d' ' -f1-3 /proc/loadavg)"
