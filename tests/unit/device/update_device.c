/* SPDX-License-Identifier: MIT */
/*
 * update_device.c - the device model as the fourth reader of test_update.c's model test (issue
 * #7 §4): every point the test checks is also translated by hw-iface/device's own walker, reading
 * the very buffer libmaptbl updates in place, through the model's DMA callback.
 *
 * The host side here does what a driver does after an update (docs/REGISTERS.md §5): the VF is
 * programmed and enabled through its configuration registers; when the table moves (compaction
 * into a second buffer) or its virtual size changes, the new base, length and size are written
 * and WALK_AGAIN = RETRY re-latches it; after every publish (a new live word) CACHE_FLUSH drops
 * the VF's cached extents and nodes. The lookup itself is mtdev_translate() -- the function the
 * request path uses -- so the device's extent cache (BTLB) and node cache are on the path. The
 * device's answer must equal the reference walker's: state, physical block and run length.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <maptbl/format.h>
#include <maptbl/hw_regs.h>
#include <maptbl/walk.h>

#include "internal.h"
#include "mtdev.h"
#include "update_device.h"

#define UD_BASE UINT64_C(0x100000000) /* bus address of the table buffer */
#define UD_VF	1u

static struct {
	struct mtdev *d;
	const uint8_t *buf;
	size_t len;
	uint64_t vb;
	uint8_t hdr[sizeof(struct maptbl_header)]; /* the latched header, live word zeroed */
	uint8_t live[8];
	bool enabled;
	char last_log[256];
} ud;

static void ud_log(void *ctx, enum mtdev_log_cat cat, const char *msg)
{
	(void)ctx;
	if (cat == MTDEV_LOG_GUEST_ERROR)
		snprintf(ud.last_log, sizeof(ud.last_log), "%s", msg);
}

static int ud_dma_read(void *ctx, unsigned fn, uint64_t addr, void *dst, size_t len)
{
	(void)ctx;
	if (fn || addr < UD_BASE || addr - UD_BASE > ud.len || len > ud.len - (addr - UD_BASE))
		return -1;
	memcpy(dst, ud.buf + (addr - UD_BASE), len);
	return 0;
}

static int ud_dma_write(void *ctx, unsigned fn, uint64_t addr, const void *src, size_t len)
{
	(void)ctx, (void)fn, (void)addr, (void)src, (void)len;
	return -1; /* nothing here is written by the device: no rings, no fault queue */
}

static int ud_disk(void *ctx, unsigned fn, uint64_t off, void *buf, size_t len)
{
	(void)ctx, (void)fn, (void)off, (void)buf, (void)len;
	return -1; /* translation only: no request ever reaches the disk */
}

static int ud_disk_write(void *ctx, unsigned fn, uint64_t off, const void *buf, size_t len)
{
	(void)ctx, (void)fn, (void)off, (void)buf, (void)len;
	return -1;
}

static const struct mtdev_ops ud_ops = {
	.dma_read = ud_dma_read,
	.dma_write = ud_dma_write,
	.disk_read = ud_disk,
	.disk_write = ud_disk_write,
	.log = ud_log,
};

static void vfcfg(unsigned off, unsigned size, uint64_t val)
{
	mtdev_mmio_write(ud.d, 0, MAPTBL_REG_PF_VFCFG(UD_VF) + off, size, val);
}

static uint32_t vfstatus(void)
{
	return (uint32_t)mtdev_mmio_read(ud.d, 0, MAPTBL_REG_PF_VFCFG(UD_VF) + MAPTBL_VFCFG_STATUS, 4);
}

int update_device_lookup(const uint8_t *buf, size_t len, uint64_t lblk, struct maptbl_walk_result *r)
{
	const struct maptbl_header *h = (const void *)buf;
	uint64_t vb = maptbl_le64_to_cpu(h->virtual_blocks);
	uint8_t hdr[sizeof(struct maptbl_header)];
	struct mtdev_xlat x;

	if (len < sizeof(hdr))
		return -2;
	memcpy(hdr, buf, sizeof(hdr));
	memset(hdr + 16, 0, 8);
	if (!ud.d) {
		struct mtdev_params p;

		mtdev_params_init(&p);
		p.ops = &ud_ops;
		p.nr_vfs = 1;
		/* pblks go up to 2^40 + the largest extent; no request touches the disk. */
		p.disk_bytes = UINT64_C(1) << 60;
		if (mtdev_create(&p, &ud.d))
			return -1;
		mtdev_mmio_write(ud.d, 0, MAPTBL_REG_PF_NUM_VFS, 4, 1);
	}
	if (!ud.enabled || buf != ud.buf || len != ud.len || memcmp(hdr, ud.hdr, sizeof(hdr))) {
		/* A new buffer or header (compaction, growth): program it and re-latch, as a driver
		 * would. */
		memcpy(ud.hdr, hdr, sizeof(hdr));
		ud.buf = buf;
		ud.len = len;
		ud.vb = vb;
		vfcfg(MAPTBL_VFCFG_TABLE_BASE, 8, UD_BASE);
		vfcfg(MAPTBL_VFCFG_TABLE_LEN, 8, len);
		vfcfg(MAPTBL_VFCFG_VIRT_BLOCKS, 8, vb);
		vfcfg(MAPTBL_VFCFG_BLOCK_SIZE, 4, maptbl_le32_to_cpu(h->block_size));
		if (ud.enabled)
			vfcfg(MAPTBL_VFCFG_WALK_AGAIN, 4, MAPTBL_WALK_AGAIN_RETRY);
		else
			vfcfg(MAPTBL_VFCFG_CTRL, 4, MAPTBL_VFCFG_CTRL_ENABLE | MAPTBL_VFCFG_CTRL_CHECK_CRC);
		if ((vfstatus() & (MAPTBL_VFCFG_STATUS_ENABLED | MAPTBL_VFCFG_STATUS_TABLE_ERROR)) !=
		    MAPTBL_VFCFG_STATUS_ENABLED)
			return -2; /* the device refused the table libmaptbl just published */
		ud.enabled = true;
		memcpy(ud.live, buf + 16, sizeof(ud.live));
	} else if (memcmp(ud.live, buf + 16, sizeof(ud.live))) {
		/* Published in place: the cached extents and nodes may be stale (REGISTERS.md §5). */
		mtdev_mmio_write(ud.d, 0, MAPTBL_REG_PF_CACHE_FLUSH, 4, UD_VF);
		memcpy(ud.live, buf + 16, sizeof(ud.live));
	}
	if (lblk >= vb || mtdev_translate(ud.d, &ud.d->fn[UD_VF], lblk, &x))
		return -3;
	switch (x.state) {
	case MTDEV_HOLE: r->state = MAPTBL_MAP_HOLE; break;
	case MTDEV_MAPPED: r->state = MAPTBL_MAP_MAPPED; break;
	case MTDEV_UNWRITTEN: r->state = MAPTBL_MAP_UNWRITTEN; break;
	case MTDEV_ABSENT: r->state = MAPTBL_MAP_ABSENT; break;
	default: return -4;
	}
	r->pblk = x.pblk;
	r->len = x.len;
	r->nodes = 0;
	return 0;
}

uint64_t update_device_counter(unsigned idx)
{
	return ud.d ? ud.d->fn[UD_VF].stats[idx] : 0;
}

const char *update_device_last_error(void)
{
	return ud.last_log;
}

void update_device_fini(void)
{
	mtdev_destroy(ud.d);
	memset(&ud, 0, sizeof(ud));
}
