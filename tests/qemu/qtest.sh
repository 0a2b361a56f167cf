#!/bin/bash
# SPDX-License-Identifier: MIT
# qtest.sh - the maptbl-pci device under QEMU's qtest accelerator, no guest (qtest-smoke.py):
# identity, register pages, VFs appearing and going, thousands of hostile accesses. Skips (77)
# when hw-iface/qemu/build-qemu.sh has not built an up-to-date QEMU. MAPTBL_QEMU overrides it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${MAPTBL_QEMU:-}" ]; then
	QEMU=$MAPTBL_QEMU
else
	QEMU=$("$HERE/../../hw-iface/qemu/build-qemu.sh" --check 2>&1) || {
		echo "SKIP: no up-to-date QEMU with maptbl-pci (${QEMU}); build it with hw-iface/qemu/build-qemu.sh"
		exit 77
	}
fi
[ -e /usr/share/seabios/bios-256k.bin ] || { echo "SKIP: seabios not installed"; exit 77; }
W=$(mktemp -d /var/tmp/maptbl-qtest.XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 "$HERE/qtest-smoke.py" "$QEMU" "$W" ${MAPTBL_QTEST_SEED:-}
