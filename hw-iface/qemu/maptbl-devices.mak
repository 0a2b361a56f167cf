# SPDX-License-Identifier: GPL-2.0-or-later
# Devices of maptbl's reduced qemu-system-x86_64 (configure --without-default-devices
# --with-devices-x86_64=maptbl). Every default is off in that mode, so everything is listed.
# Changing this file means a new cache tree and a full rebuild (build-qemu.sh hashes it).
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_PCIE_PORT=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_RNG=y
CONFIG_VTD=y
CONFIG_NVME_PCI=y
CONFIG_MAPTBL_PCI=y
