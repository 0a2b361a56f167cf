#!/bin/busybox sh
# SPDX-License-Identifier: MIT
#
# guest.sh - /init of the guest of tests/qemu/run.sh: one function per step, run in the order the
# kernel command line's maptbl_mode picks (the STEPS_* lists below). Each step prints
#   @@ NAME ok SECONDS s DETAIL      or      @@ NAME FAIL: REASON   (then the guest powers off)
# and the last line is "@@ RESULT pass|fail|skip REASON". To add a step: write t_NAME (set MSG,
# call fail on error) and put NAME into a list. The host side (run.sh) checks the disk image.
#
# Files from run.sh: /t.mtb (the table of /payload), /expected (the file), /pattern (8 KiB),
# /expected2 (the file after the pci: write), /pattern2 (4 KiB), /expected3 (after the vfio:
# write too), /lib/*.ko (pci-pf-stub; vfio's modules in dependency order in /lib/vfio.order, the
# serve guest's virtio-blk and ext4 in /lib/serve.order).
/bin/busybox --install -s /bin
export PATH=/bin LD_LIBRARY_PATH=/lib
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev

STEPS_pci="enumerate sriov_stub push read write hostile_ring hostile_bar vf_cycle recover teardown_stub"
STEPS_serve="enumerate sriov_stub serve_modules serve_mount serve_create serve_write serve_fs teardown_serve"
STEPS_vfio="enumerate iommu vfio_modules vfio_bind vfio_read vfio_write vfio_token vfio_hostile teardown_vfio"

now() { read u _ </proc/uptime; echo "$u"; }
fail() { echo "@@ $S FAIL: $*"; echo "@@ RESULT fail"; poweroff -f; sleep 10; }
skip() { echo "@@ $S skip: $*"; echo "@@ RESULT skip $*"; poweroff -f; sleep 10; }
setcmd() { setpci -s "${1##*/}" COMMAND=0x0006 || fail "setpci ${1##*/}"; }	# MEM + Bus Master
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
vfs() { lspci -n | grep -c '1234:4d55'; }

# ---- common --------------------------------------------------------------------------------
t_enumerate() {
	PF=
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0x4d54 ] && PF=$d
	done
	[ -n "$PF" ] || { lspci -nn; fail "no maptbl PF (1234:4d54) on the bus"; }
	BDF=${PF##*/}
	MSG="PF $BDF, sriov_totalvfs $(cat $PF/sriov_totalvfs)"
}

# ---- pci: (pci-pf-stub, sysfs resource0, pagemap DMA; no IOMMU) -----------------------------
t_sriov_stub() {
	insmod /lib/pci-pf-stub.ko || fail "insmod pci-pf-stub"
	echo "1234 4d54" >/sys/bus/pci/drivers/pci-pf-stub/new_id
	echo 0 >$PF/sriov_drivers_autoprobe
	echo 2 >$PF/sriov_numvfs || fail "sriov_numvfs"
	[ -e $PF/virtfn0 ] && [ -e $PF/virtfn1 ] || fail "VFs did not appear"
	[ "$(vfs)" = 2 ] || fail "lspci shows $(vfs) VFs, not 2"
	setcmd $PF
	for v in $PF/virtfn0 $PF/virtfn1; do setcmd $(readlink -f $v); done
	echo 64 >/proc/sys/vm/nr_hugepages
	MSG="$(lspci -n | grep 1234:4d55 | cut -d' ' -f1,3 | tr '\n' ' ')"
}

# 'maptbl push --hold' keeps the table in its DMA memory; VF 1 must become ready.
# vf1_ready PID WHAT LOG: wait (20 s at most) until VF 1 is ready while PID (which makes it) runs;
# MSG = its line of 'vf list'. WHAT names PID in the failure, LOG (optional) is shown with it.
vf1_ready() {
	i=0
	until maptbl vf list --dev pci:$BDF 2>/dev/null | grep -q '^ *1 .*ready'; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "VF 1 not ready: ${3:+$(cat $3)}$(maptbl vf list --dev pci:$BDF --all 2>&1)"
		kill -0 $1 2>/dev/null || fail "$2 exited${3:+: $(cat $3)}"
		sleep 0.2
	done
	MSG="$(maptbl vf list --dev pci:$BDF 2>&1 | tail -1)"
}

t_push() {
	maptbl push --dev pci:$BDF --vf 1 /t.mtb --hold &
	PUSH=$!
	vf1_ready $PUSH "maptbl push"
}
# This used to fail: the pci: backend unmapped the pushed table's hugepage right after the push
# (pci_dma_free ignored "persistent"), and the next allocation zeroed and reused it.

t_read() {
	maptbl-vfrw pci:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw read"
	cmp /tmp/vf1 ${WANT:-/expected} || fail "VF 1 differs from the file (${WANT:-/expected})"
	MSG="$(stat -c %s /tmp/vf1) bytes = the file"
}

t_write() {
	maptbl-vfrw pci:$BDF 1 write 3 /pattern || fail "maptbl-vfrw write"
	maptbl-vfrw pci:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw read after the write"
	cmp /tmp/vf1 /expected2 || fail "VF 1 after the write differs"
	MSG="8 KiB at block 3, read back"
}

# §4: random register writes and reads on the PF's and both VFs' BAR0 (seeded).
t_hostile_bar() {
	MSG=$(maptbl-hostile pci:$BDF bar "$(arg maptbl_seed)" 20000 0 1 2 2>&1) || fail "maptbl-hostile bar: $MSG"
}

# §4: requests with bad fields and DMA addresses outside guest memory, on both VFs and the PF.
t_hostile_ring() {
	MSG=$(maptbl-hostile pci:$BDF ring "$(arg maptbl_seed)" 200 1 2 0 2>&1) || fail "maptbl-hostile ring: $MSG"
}

# §4: VFs disabled and enabled (sriov_numvfs 0 then 2) while reads and rewrites of the same
# bytes (the file already holds /pattern at block 3) are in flight on VF 1.
t_vf_cycle() {
	n=0 inflight=0
	for round in 1 2 3; do
		# Every round gets its table: VF disable resets the VF's registers, so without a new
		# push rounds 2 and 3 used to run on a VF without one (every read failed at once).
		kill $PUSH; wait $PUSH
		t_push >/dev/null
		# Reads one after the other until one fails (the VFs went) or 2000 are done: a fixed
		# number (4) used to end before the VFs went on a quiet machine (CI), and the test
		# failed for want of a transfer in flight.
		echo 0 >/tmp/reads.$round
		(i=0; while [ $i -lt 2000 ]; do
			MAPTBL_VFRW_TIMEOUT_MS=3000 maptbl-vfrw pci:$BDF 1 read >/dev/null 2>&1 || exit 1
			i=$((i + 1))
			echo $i >/tmp/reads.$round
		done) &
		r=$!
		# the VF works this round: a whole read first (20 s at most), then the disable
		i=0
		until [ "$(cat /tmp/reads.$round)" -gt 0 ]; do
			i=$((i + 1))
			[ $i -lt 200 ] && kill -0 $r 2>/dev/null ||
				fail "round $round: no whole read of VF 1 (no table?)"
			sleep 0.1
		done
		MAPTBL_VFRW_TIMEOUT_MS=3000 maptbl-vfrw pci:$BDF 1 write 3 /pattern >/dev/null 2>&1 &
		w=$!
		sleep 0.$round
		kill -0 $r 2>/dev/null && inflight=$((inflight + 1))
		kill -0 $w 2>/dev/null && inflight=$((inflight + 1))
		echo 0 >$PF/sriov_numvfs || fail "sriov_numvfs = 0 (round $round)"
		kill $r 2>/dev/null	# a read loop still going (it should have failed by now)
		wait $r && n=$((n + 1)); wait $w && n=$((n + 1))
		echo 2 >$PF/sriov_numvfs || fail "sriov_numvfs = 2 (round $round)"
		[ "$(vfs)" = 2 ] || fail "round $round: $(vfs) VFs after re-enabling"
		for v in $PF/virtfn0 $PF/virtfn1; do setcmd $(readlink -f $v); done
	done
	[ $inflight -gt 0 ] || fail "no transfer was still running when the VFs went (too slow a start?)"
	MSG="3 rounds, $inflight of 6 readers and writers running at VF disable, $n completed, reads per round $(cat /tmp/reads.1 /tmp/reads.2 /tmp/reads.3 | tr '\n' ' ')"
}

# After all that, a new push and a whole read of VF 1 give the file again.
t_recover() {
	kill $PUSH 2>/dev/null; wait $PUSH
	setcmd $PF
	t_push >/dev/null
	WANT=/expected2 t_read
	MSG="VF 1 = the file again (${MSG%% *} bytes)"
}

t_teardown_stub() {
	kill $PUSH; wait $PUSH
	echo 0 >$PF/sriov_numvfs || fail "sriov_numvfs = 0"
	[ ! -e $PF/virtfn0 ] || fail "VFs still there"
	[ "$(vfs)" = 0 ] || fail "lspci still shows $(vfs) VFs"
	MSG="VFs gone"
}

# ---- vfio: (intel-iommu, vfio-pci enable_sriov, VF token, VFIO_IOMMU_MAP_DMA) ---------------
t_iommu() {
	[ -d /sys/class/iommu ] && [ -n "$(ls /sys/class/iommu)" ] || fail "no IOMMU (/sys/class/iommu empty)"
	g=$(readlink $PF/iommu_group) || fail "the PF has no IOMMU group"
	MSG="$(ls /sys/class/iommu), PF in group ${g##*/}, $(cat /sys/kernel/iommu_groups/${g##*/}/type 2>/dev/null)"
}

t_vfio_modules() {
	for m in $(cat /lib/vfio.order); do
		case $m in
		vfio-pci) insmod /lib/$m.ko enable_sriov=1 || fail "insmod $m enable_sriov=1" ;;
		*) insmod /lib/$m.ko || fail "insmod $m" ;;
		esac
	done
	[ -c /dev/vfio/vfio ] || fail "no /dev/vfio/vfio"
	MSG="$(cat /lib/vfio.order | tr '\n' ' ')"
}

# The PF first (vfio-pci refuses a PF that already has VFs), then the VFs; they bind to vfio-pci.
t_vfio_bind() {
	echo vfio-pci >$PF/driver_override
	echo $BDF >/sys/bus/pci/drivers_probe
	[ "$(readlink $PF/driver)" ] && [ "$(basename $(readlink $PF/driver))" = vfio-pci ] ||
		fail "the PF is not bound to vfio-pci"
	# vfio-pci resets a function when it is opened and closed. An FLR of the PF clears VF Enable
	# (SR-IOV spec; QEMU removes the VFs) under the VFs' feet: with the PF's resets on, VF 1 did
	# not answer after the PF's open ("Invalid read ... rejected", VF config space all ones).
	# An empty reset_method (Linux 5.15+) turns them off for the PF.
	echo "" >$PF/reset_method || fail "cannot clear $PF/reset_method"
	[ -z "$(cat $PF/reset_method)" ] || fail "reset_method is '$(cat $PF/reset_method)'"
	echo 2 >$PF/sriov_numvfs || fail "sriov_numvfs = 2 with vfio-pci"
	[ "$(vfs)" = 2 ] || fail "lspci shows $(vfs) VFs, not 2"
	MSG="groups:"
	for f in $PF $(readlink -f $PF/virtfn0) $(readlink -f $PF/virtfn1); do
		d=$(readlink $f/driver); g=$(readlink $f/iommu_group)
		[ "${d##*/}" = vfio-pci ] || fail "${f##*/} bound to '${d##*/}', not vfio-pci"
		[ -c /dev/vfio/${g##*/} ] || fail "no /dev/vfio/${g##*/} for ${f##*/}"
		MSG="$MSG ${f##*/}=${g##*/}"
	done
}

# One process (the PF's group is exclusive): push the table through vfio: (VFIO_IOMMU_MAP_DMA),
# open VF 1 with the VF token the PF set, read it whole through its rings.
t_vfio_read() {
	maptbl-vfrw --push /t.mtb vfio:$BDF 1 read >/tmp/vf1 || {
		for f in $BDF $(readlink -f $PF/virtfn0); do
			echo "${f##*/}: COMMAND $(setpci -s ${f##*/} COMMAND) $(head -1 /sys/bus/pci/devices/${f##*/}/resource)"
		done
		dmesg | grep -v 'hiding cap' | tail -10
		fail "maptbl-vfrw --push vfio: read"
	}
	cmp /tmp/vf1 /expected2 || fail "VF 1 (vfio:) differs from the file"
	MSG="$(stat -c %s /tmp/vf1) bytes = the file"
}

t_vfio_write() {
	maptbl-vfrw --push /t.mtb vfio:$BDF 1 write 10 /pattern2 || fail "maptbl-vfrw vfio: write"
	maptbl-vfrw --push /t.mtb vfio:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw vfio: read after the write"
	cmp /tmp/vf1 /expected3 || fail "VF 1 (vfio:) after the write differs"
	MSG="4 KiB at block 10, read back"
}

# A token given on the device name is set on the PF (vfio_read used a token of the library's
# own, set with VFIO_DEVICE_FEATURE_PCI_VF_TOKEN). The kernel keeps it after the PF's user is
# gone: a VF user on its own then gets VF 1 with that token and EACCES with another or none.
t_vfio_token() {
	tok=$(cat /proc/sys/kernel/random/uuid)
	maptbl-vfrw --push /t.mtb "vfio:$BDF,vf_token=$tok" 1 read >/tmp/vf1 ||
		fail "maptbl-vfrw with vf_token=$tok"
	cmp /tmp/vf1 /expected3 || fail "VF 1 (vfio:, given token) differs from the file"
	VF1=$(readlink -f $PF/virtfn0); VF1=${VF1##*/}
	r1=$(maptbl-hostile $VF1 vf-token $tok) || fail "VF 1 with the PF's token: $r1"
	r2=$(maptbl-hostile $VF1 vf-token $(cat /proc/sys/kernel/random/uuid)) && fail "VF 1 with another token: $r2"
	r3=$(maptbl-hostile $VF1 vf-token -) && fail "VF 1 without a token: $r3"
	out=$(maptbl-vfrw "vfio:$BDF,vf_token=bad" 1 read 2>&1 >/dev/null) && fail "a malformed token was accepted"
	MSG="the PF's token: $r1; another: $r2; none: $r3; malformed: ${out##*: }"
}

# §4 behind the IOMMU: bad requests (buffers at IOVAs nobody mapped) and random register writes
# through vfio: with any DMA address (the IOMMU confines the device to this process's mappings;
# the rest are DMA faults the guest kernel reports as DMAR faults), then VF 1 again.
t_vfio_hostile() {
	r=$(maptbl-hostile vfio:$BDF ring "$(arg maptbl_seed)" 50 1 0 2>&1) || fail "maptbl-hostile ring: $r"
	MSG=$(maptbl-hostile vfio:$BDF bar-iommu "$(arg maptbl_seed)" 5000 0 1 2 2>&1) ||
		fail "maptbl-hostile bar-iommu: $MSG"
	MSG="ring: $r; bar: $MSG"
	maptbl-vfrw --push /t.mtb vfio:$BDF 1 read >/tmp/vf1 || fail "VF 1 after the hostile writes"
	cmp /tmp/vf1 /expected3 || fail "VF 1 (vfio:) differs after the hostile writes"
	MSG="$MSG; then VF 1 = the file; DMAR faults: $(dmesg | grep -c 'DMAR: \[DMA')"
}

t_teardown_vfio() {
	echo 0 >$PF/sriov_numvfs || fail "sriov_numvfs = 0"
	[ "$(vfs)" = 0 ] || fail "lspci still shows $(vfs) VFs"
	MSG="VFs gone"
}

# ---- serve: the fault service (issue #7) in the guest, on its own ext4 ----------------------
t_serve_modules() {
	for m in $(cat /lib/serve.order); do insmod /lib/$m.ko || fail "insmod $m"; done
	i=0
	until [ -b /dev/vda ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "no /dev/vda"; sleep 0.1; done
	MSG="$(tr '\n' ' ' </lib/serve.order)"
}

t_serve_mount() {
	mkdir -p /mnt
	mount -t ext4 /dev/vda /mnt || fail "mount /dev/vda"
	cp /mnt/payload /tmp/want || fail "cp /mnt/payload"
	dd if=/pattern of=/tmp/want bs=4096 seek=300 conv=notrunc 2>/dev/null || fail "dd"
	MSG="/dev/vda (the PF's disk) on /mnt, /mnt/payload $(stat -c %b /mnt/payload) sectors"
}

# vf create --serve: VF 1 from /mnt/payload (FIEMAP on /dev/vda), then the service, in one process
# (with pci:, DMA memory belongs to its process).
t_serve_create() {
	maptbl vf create --dev pci:$BDF --vf 1 --serve /mnt/payload >/tmp/serve.log 2>&1 &
	SERVE=$!
	vf1_ready $SERVE "vf create --serve" /tmp/serve.log
}

# 8 KiB into the hole at blocks 256-383: the write stalls, the service allocates, it lands.
t_serve_write() {
	maptbl-vfrw pci:$BDF 1 write 300 /pattern || fail "maptbl-vfrw write into the hole: $(cat /tmp/serve.log)"
	maptbl-vfrw pci:$BDF 1 read >/tmp/vf1 || fail "maptbl-vfrw read"
	cmp /tmp/vf1 /tmp/want || fail "VF 1 after the served write differs"
	grep -q . /tmp/serve.log || fail "the service logged no fault"
	MSG="$(grep -c . /tmp/serve.log) service lines: $(tail -1 /tmp/serve.log)"
}

# The filesystem sees what the device wrote (the service dropped the range from the page cache).
t_serve_fs() {
	echo 3 >/proc/sys/vm/drop_caches
	cmp /mnt/payload /tmp/want || fail "/mnt/payload differs from what VF 1 wrote"
	MSG="/mnt/payload holds the write, $(stat -c %b /mnt/payload) sectors"
}

t_teardown_serve() {
	kill $SERVE; wait $SERVE; rc=$?
	[ $rc = 0 ] || fail "vf create --serve exited $rc after SIGTERM: $(cat /tmp/serve.log)"
	umount /mnt || fail "umount /mnt"
	echo 0 >$PF/sriov_numvfs || fail "sriov_numvfs = 0"
	MSG="service stopped, /mnt unmounted"
}

# ---- run --------------------------------------------------------------------------------------
MODE=$(arg maptbl_mode)
eval "STEPS=\$STEPS_$MODE"
[ -n "$STEPS" ] || { S=init; fail "unknown maptbl_mode '$MODE'"; }
for S in $STEPS; do
	T0=$(now); MSG=
	t_$S
	echo "@@ $S ok $(awk "BEGIN { printf \"%.2f\", $(now) - $T0 }") s $MSG"
done
echo "@@ RESULT pass"
sync
poweroff -f
