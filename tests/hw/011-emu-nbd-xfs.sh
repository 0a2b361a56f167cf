#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# 010-emu-nbd.sh with the backing file on a loop-mounted XFS (issue #6 §7: "ext4 or XFS"): the
# same fragmented file with holes, the same proofs through maptbl-emu and the nbdkit plugin
# (nbdcopy equals the zero-padded file, writes to mapped blocks land in the file, a write to a
# hole faults and completes after the fault is serviced, disk audit inside the file's blocks).
MAPTBL_HW_FS=xfs exec "$(dirname "$0")/010-emu-nbd.sh"
