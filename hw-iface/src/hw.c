/* SPDX-License-Identifier: MIT */
/*
 * hw.c - libmaptbl-hw: the device-independent driver (registers, VFs, tables, counters, fault
 * queue, block I/O through a function's rings, synchronous or with several requests in flight)
 * over a backend (internal.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_TIMEOUT_MS 30000
#define BOUNCE_MAX (1u << 20)

/*
 * The note libmaptbl-hw keeps after a pushed table, in the same DMA allocation (the device never
 * reads past TABLE_LEN): who pushed what, for maptbl_hw_vf_info() and `maptbl vf list`.
 * REGISTERS.md §11.4.
 */
#define NOTE_MAGIC "MTHWNOTE"
struct hw_note {
	char magic[8];
	maptbl_le64_t table_len;
	char label[256];
};

static uint64_t note_offset(uint64_t table_len)
{
	return (table_len + 4095) & ~(uint64_t)4095;
}

static bool hw_ok(const struct maptbl_hw *hw)
{
	return hw && hw->magic == HW_MAGIC;
}

MAPTBL_API int maptbl_hw_open_opts_init(struct maptbl_hw_open_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(*opts))
		return -EINVAL;
	memset(opts, 0, sz);
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_hw_open_opts) == 16, "update the init");
	return 0;
}

MAPTBL_API int maptbl_hw_push_opts_init(struct maptbl_hw_push_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(*opts))
		return -EINVAL;
	memset(opts, 0, sz);
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_hw_push_opts) == 32, "update the init");
	return 0;
}

/* STYLE.md §7: a caller's opts struct may be older (smaller: refused below the first version)
 * or newer (larger: the extra bytes must be zero). */
static int opts_ok(const void *opts, size_t user_sz, size_t known, const char *name)
{
	const uint8_t *p = opts;

	if (user_sz < known) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s: sz %zu is smaller than %zu", name, user_sz, known);
		return -EINVAL;
	}
	for (size_t i = known; i < user_sz; i++)
		if (p[i]) {
			maptbl_log(MAPTBL_LOG_ERROR, "%s has non-zero bytes past the fields it knows", name);
			return -EINVAL;
		}
	return 0;
}

MAPTBL_API int maptbl_hw_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val)
{
	if (!hw_ok(hw) || !val)
		return -EINVAL;
	return hw->ops->read32(hw, fn, off, val);
}

MAPTBL_API int maptbl_hw_read64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t *val)
{
	if (!hw_ok(hw) || !val)
		return -EINVAL;
	return hw->ops->read64(hw, fn, off, val);
}

MAPTBL_API int maptbl_hw_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	if (!hw_ok(hw))
		return -EINVAL;
	return hw->ops->write32(hw, fn, off, val);
}

MAPTBL_API int maptbl_hw_write64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t val)
{
	if (!hw_ok(hw))
		return -EINVAL;
	return hw->ops->write64(hw, fn, off, val);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hw_poll_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors)
{
	int64_t end = now_ms() + timeout_ms;
	uint32_t st;
	int err;

	for (;;) {
		err = hw->ops->read32(hw, fn, MAPTBL_REG_INT_STATUS, &st);
		if (err)
			return err;
		if (st && st != UINT32_MAX) {
			hw->ops->write32(hw, fn, MAPTBL_REG_INT_STATUS, st);
			*vectors = st;
			return 0;
		}
		if (timeout_ms >= 0 && now_ms() >= end)
			return -ETIMEDOUT;
		sleep_ms(1);
	}
}

MAPTBL_API int maptbl_hw_wait_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms,
				  uint32_t *vectors)
{
	uint32_t v = 0;
	int err;

	if (!hw_ok(hw) || fn > hw->max_vfs)
		return hw_ok(hw) ? -ENODEV : -EINVAL;
	err = hw->ops->wait_irq(hw, fn, timeout_ms, &v);
	if (vectors)
		*vectors = v;
	return err;
}

MAPTBL_API int maptbl_hw_open(const char *dev, const struct maptbl_hw_open_opts *opts,
			      struct maptbl_hw **out)
{
	static const struct maptbl_hw_ops *const backends[] = { &hw_emu_ops, &hw_pci_ops,
								  &hw_vfio_ops };
	const struct maptbl_hw_ops *ops = NULL;
	struct maptbl_hw *hw;
	const char *arg = NULL;
	uint32_t id, version, max_vfs;
	int err;

	if (!dev || !out)
		return -EINVAL;
	*out = NULL;
	if (opts && (err = opts_ok(opts, opts->sz, sizeof(*opts), "maptbl_hw_open_opts")))
		return err;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		size_t n = strlen(backends[i]->name);

		if (!strncmp(dev, backends[i]->name, n) && dev[n] == ':') {
			ops = backends[i];
			arg = dev + n + 1;
		}
	}
	if (!ops || !*arg) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s: not a device name (emu:SOCKET, pci:BDF or vfio:BDF)",
			   dev);
		return -EINVAL;
	}
	hw = calloc(1, sizeof(*hw));
	if (!hw)
		return -ENOMEM;
	hw->magic = HW_MAGIC;
	hw->ops = ops;
	hw->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
	hw->max_vfs = MAPTBL_HW_MAX_VFS;
	err = ops->open(hw, arg);
	if (err) {
		free(hw);
		return err;
	}
	if ((err = ops->read32(hw, 0, MAPTBL_REG_ID, &id)) ||
	    (err = ops->read32(hw, 0, MAPTBL_REG_VERSION, &version)) ||
	    (err = ops->read32(hw, 0, MAPTBL_REG_PF_MAX_VFS, &max_vfs)))
		goto fail;
	if (id != MAPTBL_HW_ID) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s: not a maptbl device (ID 0x%08" PRIx32 ")", dev, id);
		err = -EPROTO;
		goto fail;
	}
	if (version >> 16 != MAPTBL_HW_VERSION_MAJOR || max_vfs > MAPTBL_HW_MAX_VFS) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s: device version %u.%u, this driver knows %u.x", dev,
			   version >> 16, version & 0xffff, MAPTBL_HW_VERSION_MAJOR);
		err = -EPROTO;
		goto fail;
	}
	hw->max_vfs = max_vfs;
	*out = hw;
	return 0;
fail:
	ops->close(hw);
	free(hw);
	return err;
}

MAPTBL_API void maptbl_hw_close(struct maptbl_hw *hw)
{
	if (!hw_ok(hw))
		return;
	if (hw->fq)
		maptbl_hw_fault_stop(hw);
	while (hw->dmas)
		maptbl_hw_dma_free(hw->dmas);
	hw->ops->close(hw);
	hw->magic = 0;
	free(hw);
}

MAPTBL_API int maptbl_hw_dev_info(struct maptbl_hw *hw, struct maptbl_hw_dev_info *info)
{
	uint32_t ci = 0;
	int err;

	if (!hw_ok(hw) || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->backend = hw->ops->name;
	if ((err = hw->ops->read32(hw, 0, MAPTBL_REG_VERSION, &info->version)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_MAX_VFS, &info->max_vfs)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_NUM_VFS, &info->num_vfs)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_BLOCK_SIZE, &info->block_size)) ||
	    (err = hw->ops->read64(hw, 0, MAPTBL_REG_DISK_BLOCKS, &info->disk_blocks)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_MAX_XFER, &info->max_xfer)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_CACHE_INFO, &ci)))
		return err;
	info->xcache_entries = maptbl_hw_get(ci, MAPTBL_CACHE_INFO_XC_SHIFT, MAPTBL_CACHE_INFO_XC_MASK);
	info->ncache_entries = maptbl_hw_get(ci, MAPTBL_CACHE_INFO_NC_SHIFT, MAPTBL_CACHE_INFO_NC_MASK);
	return 0;
}

MAPTBL_API int maptbl_hw_set_num_vfs(struct maptbl_hw *hw, unsigned n)
{
	uint32_t now;
	int err;

	if (!hw_ok(hw))
		return -EINVAL;
	if (n > hw->max_vfs) {
		maptbl_log(MAPTBL_LOG_ERROR, "%u VFs asked, the device has %u", n, hw->max_vfs);
		return -ENODEV;
	}
	err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_NUM_VFS, n);
	if (!err)
		err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_NUM_VFS, &now);
	if (!err && now != n) {
		maptbl_log(MAPTBL_LOG_ERROR, "NUM_VFS reads %u after writing %u", now, n);
		err = -EIO;
	}
	return err;
}

/* ---- DMA ---- */

MAPTBL_API int maptbl_hw_dma_alloc(struct maptbl_hw *hw, size_t len, unsigned flags,
				   struct maptbl_hw_dma **out)
{
	struct maptbl_hw_dma *d;
	int err;

	if (!hw_ok(hw) || !out || !len || (flags & ~MAPTBL_HW_DMA_PERSIST))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	err = hw->ops->dma_alloc(hw, len, flags, &d->vaddr, &d->addr, &d->priv);
	if (err) {
		free(d);
		return err;
	}
	d->hw = hw;
	d->len = len;
	d->flags = flags;
	d->next = hw->dmas;
	hw->dmas = d;
	*out = d;
	return 0;
}

MAPTBL_API void maptbl_hw_dma_free(struct maptbl_hw_dma *dma)
{
	struct maptbl_hw_dma **pp;

	if (!dma)
		return;
	for (pp = &dma->hw->dmas; *pp; pp = &(*pp)->next)
		if (*pp == dma) {
			*pp = dma->next;
			break;
		}
	dma->hw->ops->dma_free(dma->hw, dma->vaddr, dma->addr, dma->len, dma->priv,
			       dma->flags & MAPTBL_HW_DMA_PERSIST);
	free(dma);
}

MAPTBL_API int maptbl_hw_dma_release(struct maptbl_hw *hw, uint64_t addr)
{
	if (!hw_ok(hw))
		return -EINVAL;
	/* A buffer of this handle: drop the handle too. */
	for (struct maptbl_hw_dma *d = hw->dmas; d; d = d->next)
		if (d->addr == addr) {
			d->flags &= ~MAPTBL_HW_DMA_PERSIST;
			maptbl_hw_dma_free(d);
			return 0;
		}
	return hw->ops->dma_release(hw, addr);
}

MAPTBL_API void *maptbl_hw_dma_ptr(const struct maptbl_hw_dma *dma)
{
	return dma ? dma->vaddr : NULL;
}

MAPTBL_API uint64_t maptbl_hw_dma_addr(const struct maptbl_hw_dma *dma)
{
	return dma ? dma->addr : 0;
}

MAPTBL_API size_t maptbl_hw_dma_len(const struct maptbl_hw_dma *dma)
{
	return dma ? dma->len : 0;
}

/* ---- names ---- */

MAPTBL_API const char *maptbl_hw_stat_name(unsigned idx)
{
	static const char *const names[MAPTBL_STAT_COUNT] = {
		"requests", "read_blocks", "write_blocks", "errors", "walks", "nodes", "xc_hits",
		"xc_misses", "nc_hits", "nc_misses", "faults", "zero_blocks", "flushes", "dma_bytes",
	};

	return idx < MAPTBL_STAT_COUNT ? names[idx] : NULL;
}

MAPTBL_API const char *maptbl_hw_status_name(uint32_t status)
{
	static const char *const names[] = { "ok", "bad-opcode", "bad-request", "out-of-range",
					     "dma-error", "table-error", "read-only", "io-error",
					     "aborted", "no-space", "not-ready" };

	return status < sizeof(names) / sizeof(names[0]) ? names[status] : "unknown";
}

MAPTBL_API const char *maptbl_hw_terr_name(uint32_t terr)
{
	static const char *const names[] = { "none", "dma", "bad-header", "unsupported", "bad-node",
					     "bad-crc", "mismatch", "bad-config", "past-disk" };

	return terr < sizeof(names) / sizeof(names[0]) ? names[terr] : "unknown";
}

/* ---- VFs ---- */

static int vf_ok(struct maptbl_hw *hw, unsigned vf)
{
	if (!hw_ok(hw))
		return -EINVAL;
	if (vf < 1 || vf > hw->max_vfs) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: the device has VFs 1 .. %u", vf, hw->max_vfs);
		return -ENODEV;
	}
	return 0;
}

static uint32_t cfg(unsigned vf, uint32_t reg)
{
	return (uint32_t)MAPTBL_REG_PF_VFCFG(vf) + reg;
}

MAPTBL_API int maptbl_hw_vf_info(struct maptbl_hw *hw, unsigned vf, struct maptbl_hw_vf_info *info)
{
	uint32_t num, ctrl, st, bs, gen, fc, fi;
	uint64_t base, len, vb, flba;
	const struct hw_note *note;
	int err = vf_ok(hw, vf);

	if (err)
		return err;
	if (!info)
		return -EINVAL;
	if ((err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_NUM_VFS, &num)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), &ctrl)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_STATUS), &st)) ||
	    (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), &base)) ||
	    (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_LEN), &len)) ||
	    (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_VIRT_BLOCKS), &vb)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_BLOCK_SIZE), &bs)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_GENERATION), &gen)) ||
	    (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_FAULT_LBA), &flba)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_FAULT_COUNT), &fc)) ||
	    (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_FAULT_INFO), &fi)))
		return err;
	memset(info, 0, sizeof(*info));
	info->vf = vf;
	info->exists = vf <= num;
	info->enabled = st & MAPTBL_VFCFG_STATUS_ENABLED;
	info->read_only = ctrl & MAPTBL_VFCFG_CTRL_READ_ONLY;
	info->stalled = st & MAPTBL_VFCFG_STATUS_STALLED;
	info->table_error = st & MAPTBL_VFCFG_STATUS_TABLE_ERROR;
	info->terr = maptbl_hw_get(st, MAPTBL_VFCFG_STATUS_TERR_SHIFT, MAPTBL_VFCFG_STATUS_TERR_MASK);
	info->table_base = base;
	info->table_len = len;
	info->virt_blocks = vb;
	info->block_size = bs;
	info->generation = gen;
	info->fault_lba = flba;
	info->fault_count = fc;
	info->fault_info = fi;
	if (info->enabled && len && len < (1ull << 40) && base <= UINT64_MAX - note_offset(len) &&
	    (note = hw->ops->dma_map(hw, base + note_offset(len), sizeof(*note))) &&
	    !memcmp(note->magic, NOTE_MAGIC, 8) && maptbl_le64_to_cpu(note->table_len) == len) {
		memcpy(info->label, note->label, sizeof(info->label) - 1);
		info->label[sizeof(info->label) - 1] = 0;
	}
	return 0;
}

MAPTBL_API int maptbl_hw_vf_find_free(struct maptbl_hw *hw, unsigned *vf)
{
	if (!hw_ok(hw) || !vf)
		return -EINVAL;
	for (unsigned n = 1; n <= hw->max_vfs; n++) {
		uint32_t ctrl;
		int err = hw->ops->read32(hw, 0, cfg(n, MAPTBL_VFCFG_CTRL), &ctrl);

		if (err)
			return err;
		if (!(ctrl & MAPTBL_VFCFG_CTRL_ENABLE)) {
			*vf = n;
			return 0;
		}
	}
	maptbl_log(MAPTBL_LOG_ERROR, "all %u VFs have a table", hw->max_vfs);
	return -ENOSPC;
}

/* After a latch: 0, or -EBADMSG with the device's reason logged. */
static int check_latched(struct maptbl_hw *hw, unsigned vf)
{
	uint32_t st;
	int err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_STATUS), &st);

	if (err)
		return err;
	if ((st & MAPTBL_VFCFG_STATUS_TABLE_ERROR) || !(st & MAPTBL_VFCFG_STATUS_ENABLED)) {
		uint32_t terr = maptbl_hw_get(st, MAPTBL_VFCFG_STATUS_TERR_SHIFT,
					      MAPTBL_VFCFG_STATUS_TERR_MASK);

		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: the device refused the table: %s", vf,
			   (st & MAPTBL_VFCFG_STATUS_TABLE_ERROR) ? maptbl_hw_terr_name(terr)
								  : "not enabled");
		return -EBADMSG;
	}
	return 0;
}

MAPTBL_API int maptbl_hw_vf_push(struct maptbl_hw *hw, unsigned vf, const struct maptbl_table *t,
				 const struct maptbl_hw_push_opts *opts)
{
	struct maptbl_hw_push_opts o;
	struct maptbl_hw_dma *dma = NULL;
	struct hw_note *note;
	uint64_t len, vb, old_base = 0, old_len = 0, old_vb = 0;
	uint32_t old_bs = 0;
	uint32_t num, ctrl, newctrl;
	bool was_enabled;
	int err = vf_ok(hw, vf);

	if (err)
		return err;
	if (!t)
		return -EINVAL;
	maptbl_hw_push_opts_init(&o, sizeof(o));
	if (opts) {
		if ((err = opts_ok(opts, opts->sz, sizeof(o), "maptbl_hw_push_opts")))
			return err;
		memcpy(&o, opts, sizeof(o));
	}
	len = maptbl_table_len(t);
	vb = o.virt_blocks ? o.virt_blocks : maptbl_table_virtual_blocks(t);
	if (!vb) /* an empty table of an empty file: one block of hole */
		vb = 1;
	if (vb > (1ull << 48) || vb < maptbl_table_virtual_blocks(t)) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: virtual size of %" PRIu64 " blocks: %s", vf, vb,
			   vb > (1ull << 48) ? "over 2^48" : "smaller than the table's");
		return -EINVAL;
	}
	if ((err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_NUM_VFS, &num)))
		return err;
	if (num < vf && (err = maptbl_hw_set_num_vfs(hw, vf)))
		return err;

	err = maptbl_hw_dma_alloc(hw, note_offset(len) + sizeof(*note), MAPTBL_HW_DMA_PERSIST, &dma);
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: no DMA memory for a table of %" PRIu64 " bytes", vf,
			   len);
		return err;
	}
	memcpy(dma->vaddr, maptbl_table_data(t), len);
	note = (struct hw_note *)((uint8_t *)dma->vaddr + note_offset(len));
	memcpy(note->magic, NOTE_MAGIC, 8);
	note->table_len = maptbl_cpu_to_le64(len);
	if (o.label)
		snprintf(note->label, sizeof(note->label), "%s", o.label);

	if ((err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), &ctrl)))
		goto fail;
	was_enabled = ctrl & MAPTBL_VFCFG_CTRL_ENABLE;
	if (was_enabled &&
	    ((err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), &old_base)) ||
	     (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_LEN), &old_len)) ||
	     (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_VIRT_BLOCKS), &old_vb)) ||
	     (err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_BLOCK_SIZE), &old_bs))))
		goto fail;
	/* A new table of a running VF keeps COMMIT: what the service allocated and its filesystem
	 * has not committed yet is committed at the VF's next flush all the same (§12.6). */
	newctrl = MAPTBL_VFCFG_CTRL_ENABLE | (o.read_only ? MAPTBL_VFCFG_CTRL_READ_ONLY : 0) |
		  (o.check_crc ? MAPTBL_VFCFG_CTRL_CHECK_CRC : 0) |
		  (was_enabled ? ctrl & MAPTBL_VFCFG_CTRL_COMMIT : 0);
	if ((err = hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), dma->addr)) ||
	    (err = hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_LEN), len)) ||
	    (err = hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_VIRT_BLOCKS), vb)) ||
	    (err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_BLOCK_SIZE),
				    maptbl_table_block_size(t))))
		goto fail;
	if (was_enabled) {
		/* Keep the VF running: set the bits that take effect at once, then re-latch. */
		err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), newctrl);
		if (!err)
			err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_WALK_AGAIN),
					       MAPTBL_WALK_AGAIN_RETRY);
	} else {
		err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), newctrl);
	}
	if (!err)
		err = check_latched(hw, vf);
	if (err) {
		if (was_enabled) { /* the old table stays: point the registers back at it */
			hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), old_base);
			hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_LEN), old_len);
			hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_VIRT_BLOCKS), old_vb);
			hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_BLOCK_SIZE), old_bs);
		}
		goto fail;
	}
	if (was_enabled && old_base != dma->addr && hw->ops->dma_release(hw, old_base))
		maptbl_log(MAPTBL_LOG_DEBUG, "VF %u: old table at 0x%" PRIx64 " not freed (not ours)",
			   vf, old_base);
	maptbl_log(MAPTBL_LOG_INFO, "VF %u: table of %" PRIu64 " bytes at 0x%" PRIx64 ", %" PRIu64
		   " blocks of %u%s", vf, len, dma->addr, vb, maptbl_table_block_size(t),
		   o.read_only ? ", read-only" : "");
	maptbl_hw_dma_free(dma); /* the handle only: the memory stays with the VF */
	return 0;
fail:
	dma->flags &= ~MAPTBL_HW_DMA_PERSIST;
	maptbl_hw_dma_free(dma);
	return err;
}

MAPTBL_API int maptbl_hw_vf_destroy(struct maptbl_hw *hw, unsigned vf)
{
	uint32_t ctrl;
	uint64_t base;
	int err = vf_ok(hw, vf);

	if (err)
		return err;
	if ((err = hw->ops->read32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), &ctrl)) ||
	    (err = hw->ops->read64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), &base)))
		return err;
	if (!(ctrl & MAPTBL_VFCFG_CTRL_ENABLE)) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u has no table", vf);
		return -ENOENT;
	}
	if ((err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_CTRL), 0)) ||
	    (err = hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_BASE), 0)) ||
	    (err = hw->ops->write64(hw, 0, cfg(vf, MAPTBL_VFCFG_TABLE_LEN), 0)))
		return err;
	if (base && maptbl_hw_dma_release(hw, base))
		maptbl_log(MAPTBL_LOG_DEBUG, "VF %u: table at 0x%" PRIx64 " not freed (not ours)", vf,
			   base);
	return 0;
}

MAPTBL_API int maptbl_hw_vf_walk_again(struct maptbl_hw *hw, unsigned vf, bool fail)
{
	int err = vf_ok(hw, vf);

	if (err)
		return err;
	err = hw->ops->write32(hw, 0, cfg(vf, MAPTBL_VFCFG_WALK_AGAIN),
			       fail ? MAPTBL_WALK_AGAIN_FAIL : MAPTBL_WALK_AGAIN_RETRY);
	if (!err && !fail)
		err = check_latched(hw, vf);
	return err;
}

/* ---- counters ---- */

MAPTBL_API int maptbl_hw_counters(struct maptbl_hw *hw, unsigned fn, struct maptbl_hw_counters *c)
{
	int err;

	if (!hw_ok(hw) || !c)
		return -EINVAL;
	if (fn > hw->max_vfs)
		return -ENODEV;
	/* Through the PF's window: works for a VF whose page this process cannot reach. */
	if ((err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_STATS_SEL, fn)))
		return err;
	for (unsigned i = 0; i < MAPTBL_STAT_COUNT; i++)
		if ((err = hw->ops->read64(hw, 0, MAPTBL_REG_PF_STATS_WIN + 8 * i, &c->c[i])))
			return err;
	return 0;
}

MAPTBL_API int maptbl_hw_counters_clear(struct maptbl_hw *hw, unsigned fn)
{
	int err;

	if (!hw_ok(hw))
		return -EINVAL;
	if (fn > hw->max_vfs)
		return -ENODEV;
	if ((err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_STATS_SEL, fn)))
		return err;
	return hw->ops->write32(hw, 0, MAPTBL_REG_PF_STATS_CTRL, MAPTBL_STATS_CTRL_CLEAR);
}

/* ---- the fault queue ---- */

static bool pow2_ring(unsigned n)
{
	return n >= MAPTBL_HW_RING_MIN && n <= MAPTBL_HW_RING_MAX && !(n & (n - 1));
}

MAPTBL_API int maptbl_hw_fault_start(struct maptbl_hw *hw, unsigned entries)
{
	uint32_t ctrl, st;
	int err;

	if (!hw_ok(hw) || !pow2_ring(entries))
		return -EINVAL;
	if (hw->fq)
		return -EBUSY;
	if ((err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_FQ_CTRL, &ctrl)))
		return err;
	if (ctrl & MAPTBL_FQ_CTRL_ENABLE) {
		maptbl_log(MAPTBL_LOG_ERROR, "the fault queue already runs (another process services faults)");
		return -EBUSY;
	}
	err = maptbl_hw_dma_alloc(hw, entries * sizeof(struct maptbl_hw_fault), 0, &hw->fq);
	if (err)
		return err;
	if ((err = hw->ops->write64(hw, 0, MAPTBL_REG_PF_FQ_BASE, hw->fq->addr)) ||
	    (err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_FQ_SIZE, entries)) ||
	    (err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_FQ_CTRL, MAPTBL_FQ_CTRL_ENABLE)) ||
	    (err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_FQ_STATUS, &st)))
		goto fail;
	if (!(st & MAPTBL_FQ_STATUS_RUNNING)) {
		maptbl_log(MAPTBL_LOG_ERROR, "the device refused the fault queue (FQ_STATUS 0x%x)", st);
		err = -EIO;
		goto fail;
	}
	hw->fq_size = entries;
	hw->fq_head = 0;
	hw->fq_phase = 1;
	return 0;
fail:
	maptbl_hw_dma_free(hw->fq);
	hw->fq = NULL;
	return err;
}

MAPTBL_API int maptbl_hw_fault_stop(struct maptbl_hw *hw)
{
	int err;

	if (!hw_ok(hw) || !hw->fq)
		return -EINVAL;
	err = hw->ops->write32(hw, 0, MAPTBL_REG_PF_FQ_CTRL, 0);
	maptbl_hw_dma_free(hw->fq);
	hw->fq = NULL;
	return err;
}

MAPTBL_API int maptbl_hw_fault_read(struct maptbl_hw *hw, struct maptbl_hw_fault_entry *out,
				    size_t max, int timeout_ms)
{
	int64_t end = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	bool woke = false;
	int64_t now;
	size_t n;

	if (!hw_ok(hw) || !hw->fq || (max && !out))
		return -EINVAL;
	for (;;) {
		uint32_t head = hw->fq_head, phase = hw->fq_phase, st;
		int err;

		for (n = 0; n < max; n++) {
			const struct maptbl_hw_fault *f =
				(const struct maptbl_hw_fault *)hw->fq->vaddr + head;
			uint16_t flags = maptbl_le16_to_cpu(f->flags), info;

			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			if ((flags & MAPTBL_FAULT_F_PHASE) != phase)
				break;
			info = maptbl_le16_to_cpu(f->info);
			out[n] = (struct maptbl_hw_fault_entry){
				.lba = maptbl_le64_to_cpu(f->lba),
				.count = maptbl_le32_to_cpu(f->count),
				.tag = maptbl_le32_to_cpu(f->tag),
				.vf = maptbl_le16_to_cpu(f->vf),
				.reason = maptbl_hw_fault_reason(info),
				.write = info & MAPTBL_FAULT_INFO_WRITE,
				.seq = maptbl_le32_to_cpu(f->seq),
			};
			if (++head == hw->fq_size)
				head = 0, phase ^= 1;
		}
		if (n || !max)
			return (int)n;
		if ((err = hw->ops->read32(hw, 0, MAPTBL_REG_PF_FQ_STATUS, &st)))
			return err;
		if (st & MAPTBL_FQ_STATUS_ERROR) {
			maptbl_log(MAPTBL_LOG_ERROR, "the fault queue stopped: error %u",
				   maptbl_hw_get(st, MAPTBL_FQ_STATUS_ERR_SHIFT, MAPTBL_FQ_STATUS_ERR_MASK));
			return -EIO;
		}
		now = now_ms();
		if (timeout_ms == 0 || (timeout_ms > 0 && now >= end))
			return 0;
		if (woke) {
			/*
			 * Woken, and nothing there: FAULT is an edge (INT_STATUS 0 to 1, §1), so clear
			 * it and look once more before sleeping, or the next entry raises nothing and
			 * waits for the 100 ms poll below.
			 */
			woke = false;
			if ((err = hw->ops->write32(hw, 0, MAPTBL_REG_INT_STATUS, MAPTBL_INT_FAULT)))
				return err;
			continue;
		}
		{
			/* From the same clock reading as the check above: a thread preempted between two
			 * readings used to pass a negative time-out, which waits for ever. */
			int64_t left = timeout_ms < 0 ? 100 : end - now;
			uint32_t v = 0;

			err = hw->ops->wait_irq(hw, 0, (int)(left < 100 ? left : 100), &v);
			if (err && err != -ETIMEDOUT)
				return err;
			woke = !err;
		}
	}
}

MAPTBL_API int maptbl_hw_fault_ack(struct maptbl_hw *hw, unsigned n)
{
	if (!hw_ok(hw) || !hw->fq || n >= hw->fq_size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (++hw->fq_head == hw->fq_size)
			hw->fq_head = 0, hw->fq_phase ^= 1;
	return hw->ops->write32(hw, 0, MAPTBL_REG_PF_FQ_HEAD, hw->fq_head);
}

/* ---- I/O through a function's rings ---- */

struct maptbl_hw_queue {
	struct maptbl_hw *hw;
	unsigned fn, entries;
	struct maptbl_hw_dma *rq, *cq, *bounce;
	uint32_t bs, max_xfer, tail, head, phase, tag;
	uint64_t blocks;
	/* asynchronous requests: the tag of a request is its slot in udata/busy */
	uint32_t dev_max_xfer;	/* MAX_XFER of the device (max_xfer is cut to the bounce buffer) */
	uint32_t rung;		/* RQ_TAIL the device was last told */
	bool rung_synced;	/* the last doorbell write was answered: no barrier needed */
	uint32_t unacked;	/* completions reaped, CQ_HEAD not yet written */
	unsigned inflight;	/* posted, not reaped */
	uint64_t *udata;
	bool *busy;
	uint32_t *free_tags;	/* stack of free slots */
	unsigned nfree;
};

MAPTBL_API int maptbl_hw_queue_open(struct maptbl_hw *hw, unsigned fn, unsigned entries,
				    struct maptbl_hw_queue **out)
{
	struct maptbl_hw_queue *q;
	uint32_t qc, st;
	size_t blen;
	int err;

	if (!hw_ok(hw) || !out || !pow2_ring(entries))
		return -EINVAL;
	if (fn > hw->max_vfs)
		return -ENODEV;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->hw = hw;
	q->fn = fn;
	q->entries = entries;
	q->phase = 1;
	if ((err = hw->ops->read32(hw, fn, MAPTBL_REG_BLOCK_SIZE, &q->bs)) ||
	    (err = hw->ops->read32(hw, fn, MAPTBL_REG_MAX_XFER, &q->max_xfer)) ||
	    (err = hw->ops->read64(hw, fn, MAPTBL_REG_DISK_BLOCKS, &q->blocks)) ||
	    (err = hw->ops->read32(hw, fn, MAPTBL_REG_Q_CTRL, &qc)))
		goto fail;
	if (!q->bs || q->bs == UINT32_MAX || !q->max_xfer || q->max_xfer == UINT32_MAX) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u has no table (or does not exist)", fn);
		err = -ENODEV;
		goto fail;
	}
	if (qc & MAPTBL_Q_CTRL_ENABLE) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: its rings already run (another driver)", fn);
		err = -EBUSY;
		goto fail;
	}
	q->dev_max_xfer = q->max_xfer;
	q->udata = calloc(entries, sizeof(*q->udata));
	q->busy = calloc(entries, sizeof(*q->busy));
	q->free_tags = calloc(entries, sizeof(*q->free_tags));
	if (!q->udata || !q->busy || !q->free_tags) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < entries; i++)
		q->free_tags[q->nfree++] = entries - 1 - i;
	blen = BOUNCE_MAX < (uint64_t)q->bs * q->max_xfer ? BOUNCE_MAX : (size_t)q->bs * q->max_xfer;
	if (blen < q->bs)
		blen = q->bs;
	q->max_xfer = (uint32_t)(blen / q->bs);
	if ((err = maptbl_hw_dma_alloc(hw, (size_t)entries * sizeof(struct maptbl_hw_req), 0, &q->rq)) ||
	    (err = maptbl_hw_dma_alloc(hw, (size_t)entries * sizeof(struct maptbl_hw_cpl), 0, &q->cq)) ||
	    (err = maptbl_hw_dma_alloc(hw, blen, 0, &q->bounce)))
		goto fail;
	if ((err = hw->ops->write64(hw, fn, MAPTBL_REG_RQ_BASE, q->rq->addr)) ||
	    (err = hw->ops->write64(hw, fn, MAPTBL_REG_CQ_BASE, q->cq->addr)) ||
	    (err = hw->ops->write32(hw, fn, MAPTBL_REG_RQ_SIZE, entries)) ||
	    (err = hw->ops->write32(hw, fn, MAPTBL_REG_CQ_SIZE, entries)) ||
	    (err = hw->ops->write32(hw, fn, MAPTBL_REG_INT_MASK, 0)) ||
	    (err = hw->ops->write32(hw, fn, MAPTBL_REG_Q_CTRL, MAPTBL_Q_CTRL_ENABLE)) ||
	    (err = hw->ops->read32(hw, fn, MAPTBL_REG_Q_STATUS, &st)))
		goto fail;
	if (!(st & MAPTBL_Q_STATUS_RUNNING)) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: the device refused the rings (Q_STATUS 0x%x)",
			   fn, st);
		err = -EIO;
		goto fail;
	}
	*out = q;
	return 0;
fail:
	maptbl_hw_dma_free(q->rq);
	maptbl_hw_dma_free(q->cq);
	maptbl_hw_dma_free(q->bounce);
	free(q->udata);
	free(q->busy);
	free(q->free_tags);
	free(q);
	return err;
}

MAPTBL_API void maptbl_hw_queue_close(struct maptbl_hw_queue *q)
{
	if (!q)
		return;
	q->hw->ops->write32(q->hw, q->fn, MAPTBL_REG_Q_CTRL, 0);
	maptbl_hw_dma_free(q->rq);
	maptbl_hw_dma_free(q->cq);
	maptbl_hw_dma_free(q->bounce);
	free(q->udata);
	free(q->busy);
	free(q->free_tags);
	free(q);
}

MAPTBL_API uint32_t maptbl_hw_queue_block_size(const struct maptbl_hw_queue *q)
{
	return q ? q->bs : 0;
}

MAPTBL_API uint64_t maptbl_hw_queue_blocks(const struct maptbl_hw_queue *q)
{
	return q ? q->blocks : 0;
}

static int status_errno(uint32_t st)
{
	switch (st) {
	case MAPTBL_ST_OK:
		return 0;
	case MAPTBL_ST_READ_ONLY:
		return -EROFS;
	case MAPTBL_ST_NO_SPACE:
		return -ENOSPC;
	case MAPTBL_ST_OUT_OF_RANGE:
		return -ERANGE;
	case MAPTBL_ST_NOT_READY:
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int post32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	return hw->ops->post32 ? hw->ops->post32(hw, fn, off, val)
			       : hw->ops->write32(hw, fn, off, val);
}

/* True when the completion entry at q->head is new (its phase bit is the one expected). */
static bool cq_ready(const struct maptbl_hw_queue *q)
{
	const struct maptbl_hw_cpl *c = (const struct maptbl_hw_cpl *)q->cq->vaddr + q->head;
	bool ready = (maptbl_le16_to_cpu(c->flags) & MAPTBL_CPL_F_PHASE) == q->phase;

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return ready;
}

/*
 * Waits up to @timeout_ms (< 0 for ever, 0 not at all) for a completion at q->head: 0,
 * -ETIMEDOUT, -EIO (the rings stopped), -errno. It reads INT_STATUS once first (a barrier
 * after the doorbell, see below). Before sleeping it acknowledges the completion
 * interrupt (INT_STATUS.CQ, W1C) and looks again: the device raises the interrupt only when the
 * cause goes from clear to set, so a completion posted while the cause was still set from an
 * earlier one would otherwise wake nobody. (This used to be missing: every request after the
 * first waited out a 1 ms poll instead of its interrupt.) Interrupts are hints: Q_STATUS is
 * checked every second.
 */
static int cq_wait(struct maptbl_hw_queue *q, int timeout_ms)
{
	struct maptbl_hw *hw = q->hw;
	int64_t start = now_ms(), last_check = start;
	bool synced = q->rung_synced, armed = false;
	int err;

	q->rung_synced = false;
	for (;;) {
		int64_t now, slice;
		uint32_t v;

		if (cq_ready(q))
			return 0;
		now = now_ms();
		if (!timeout_ms || (timeout_ms > 0 && now - start >= timeout_ms))
			return -ETIMEDOUT;
		if (now - last_check >= 1000) {
			uint32_t qs;

			last_check = now;
			if ((err = hw->ops->read32(hw, q->fn, MAPTBL_REG_Q_STATUS, &qs)))
				return err;
			if (!(qs & MAPTBL_Q_STATUS_RUNNING)) {
				maptbl_log(MAPTBL_LOG_ERROR, "function %u: the rings stopped (Q_STATUS 0x%x)",
					   q->fn, qs);
				return -EIO;
			}
		}
		if (!synced) {
			/*
			 * First a read (non-posted, so ordered after any posted write): a device
			 * that served the requests at the doorbell (maptbl-emu does) has posted their
			 * completions by the time it answers, and the interrupt cause, still set
			 * from an earlier completion, raised no interrupt message on the way.
			 */
			uint32_t st;

			if ((err = hw->ops->read32(hw, q->fn, MAPTBL_REG_INT_STATUS, &st)))
				return err;
			synced = true;
			continue;
		}
		if (!armed) {
			/* Not posted: the acknowledgement must be done before we look again. */
			if ((err = hw->ops->write32(hw, q->fn, MAPTBL_REG_INT_STATUS, MAPTBL_INT_CQ)))
				return err;
			armed = true;
			continue;
		}
		slice = 1000 - (now - last_check);
		if (timeout_ms > 0 && start + timeout_ms - now < slice)
			slice = start + timeout_ms - now;
		err = hw->ops->wait_irq(hw, q->fn, (int)(slice > 0 ? slice : 1), &v);
		if (!err)
			armed = false; /* the cause is set again: acknowledge before sleeping again */
		else if (err != -ETIMEDOUT)
			return err;
	}
}

/* One request of at most max_xfer blocks; waits for its completion. */
static int queue_one(struct maptbl_hw_queue *q, uint32_t opcode, uint32_t flags, uint64_t lba,
		     uint32_t nblocks, int timeout_ms, uint32_t *status, uint32_t *done)
{
	struct maptbl_hw *hw = q->hw;
	struct maptbl_hw_req *r = (struct maptbl_hw_req *)q->rq->vaddr + q->tail;
	const struct maptbl_hw_cpl *c = (const struct maptbl_hw_cpl *)q->cq->vaddr + q->head;
	uint32_t tag = ++q->tag;
	int err;

	memset(r, 0, sizeof(*r));
	r->opcode = (uint8_t)opcode;
	r->flags = (uint8_t)flags;
	r->tag = maptbl_cpu_to_le32(tag);
	r->lba = maptbl_cpu_to_le64(lba);
	r->nblocks = maptbl_cpu_to_le32(nblocks);
	if (opcode == MAPTBL_OP_READ || opcode == MAPTBL_OP_WRITE) {
		r->nseg = maptbl_cpu_to_le16(1);
		r->seg[0].addr = maptbl_cpu_to_le64(q->bounce->addr);
		r->seg[0].len = maptbl_cpu_to_le32(nblocks * q->bs);
	}
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->tail = (q->tail + 1) % q->entries;
	q->rung = q->tail;
	if ((err = hw->ops->write32(hw, q->fn, MAPTBL_REG_RQ_TAIL, q->tail)))
		return err;
	q->rung_synced = true;
	err = cq_wait(q, timeout_ms > 0 ? timeout_ms : -1);
	if (err == -ETIMEDOUT)
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: request at block %" PRIu64
			   " not completed after %d ms", q->fn, lba, timeout_ms);
	if (err)
		return err;
	*status = maptbl_le16_to_cpu(c->status);
	*done = maptbl_le32_to_cpu(c->blocks);
	if (maptbl_le32_to_cpu(c->tag) != tag) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: completion of tag %u, expected %u", q->fn,
			   maptbl_le32_to_cpu(c->tag), tag);
		return -EPROTO;
	}
	if (++q->head == q->entries)
		q->head = 0, q->phase ^= 1;
	/* CQ_HEAD lazily, as maptbl_hw_queue_reap() does: one request is in flight at a time. */
	if (++q->unacked < q->entries / 2)
		return 0;
	q->unacked = 0;
	return post32(hw, q->fn, MAPTBL_REG_CQ_HEAD, q->head);
}

MAPTBL_API int maptbl_hw_queue_io(struct maptbl_hw_queue *q, struct maptbl_hw_io *io)
{
	uint64_t left;
	uint8_t *buf;

	if (!q || !io)
		return -EINVAL;
	io->status = 0;
	io->blocks = 0;
	if ((io->flags & ~MAPTBL_REQ_F_FUA) ||
	    ((io->opcode == MAPTBL_OP_READ || io->opcode == MAPTBL_OP_WRITE) && !io->buf))
		return -EINVAL;
	if (q->inflight) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: %u asynchronous requests outstanding",
			   q->fn, q->inflight);
		return -EBUSY;
	}
	if (io->opcode == MAPTBL_OP_FLUSH) {
		uint32_t st, done;
		int err = queue_one(q, MAPTBL_OP_FLUSH, 0, 0, 0, io->timeout_ms, &st, &done);

		if (err)
			return err;
		io->status = st;
		return status_errno(st);
	}
	if (io->opcode < MAPTBL_OP_READ || io->opcode > MAPTBL_OP_WRITE_ZEROES ||
	    io->opcode == MAPTBL_OP_FLUSH)
		return -EINVAL;
	buf = io->buf;
	left = io->nblocks;
	while (left) {
		uint32_t n = left < q->max_xfer ? (uint32_t)left : q->max_xfer, st, done;
		size_t bytes = (size_t)n * q->bs;
		int err;

		if (io->opcode == MAPTBL_OP_WRITE)
			memcpy(q->bounce->vaddr, buf, bytes);
		err = queue_one(q, io->opcode, io->flags, io->lba + io->blocks, n, io->timeout_ms, &st,
				&done);
		if (err)
			return err;
		if (io->opcode == MAPTBL_OP_READ && st == MAPTBL_ST_OK)
			memcpy(buf, q->bounce->vaddr, bytes);
		if (st != MAPTBL_ST_OK) {
			io->status = st;
			io->blocks += done < n ? done : 0;
			return status_errno(st);
		}
		io->blocks += n;
		left -= n;
		if (buf)
			buf += bytes;
	}
	return 0;
}

/* ---- for serve.c: a table in DMA memory of its own ---- */

size_t hw_table_alloc_len(uint64_t table_len)
{
	return (size_t)(note_offset(table_len) + sizeof(struct hw_note));
}

void hw_note_put(void *table, uint64_t table_len, const char *label)
{
	struct hw_note *note = (struct hw_note *)((uint8_t *)table + note_offset(table_len));

	memset(note, 0, sizeof(*note));
	memcpy(note->magic, NOTE_MAGIC, 8);
	note->table_len = maptbl_cpu_to_le64(table_len);
	if (label)
		snprintf(note->label, sizeof(note->label), "%s", label);
}

/* ---- asynchronous I/O ---- */

/* The bus address of [p, p + len) if one DMA buffer of @hw holds it all. */
static bool dma_bus_addr(const struct maptbl_hw *hw, const void *p, size_t len, uint64_t *addr)
{
	uintptr_t a = (uintptr_t)p;

	for (const struct maptbl_hw_dma *d = hw->dmas; d; d = d->next) {
		uintptr_t v = (uintptr_t)d->vaddr;

		if (a >= v && a - v <= d->len && len <= d->len - (a - v)) {
			*addr = d->addr + (a - v);
			return true;
		}
	}
	return false;
}

/* Checks @a and fills ring entry @r (tag still to be set). 0 or -EINVAL (logged). */
static int aio_entry(const struct maptbl_hw_queue *q, const struct maptbl_hw_aio *a,
		     struct maptbl_hw_req *r)
{
	bool data = a->opcode == MAPTBL_OP_READ || a->opcode == MAPTBL_OP_WRITE;
	uint64_t addr = 0;

	if (a->opcode < MAPTBL_OP_READ || a->opcode > MAPTBL_OP_WRITE_ZEROES || a->reserved ||
	    (a->flags & ~MAPTBL_REQ_F_FUA) ||
	    (a->opcode == MAPTBL_OP_FLUSH ? a->nblocks || a->lba || a->buf || a->flags
					  : !a->nblocks || a->nblocks > q->dev_max_xfer) ||
	    (!data && a->buf)) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: bad request (opcode %u, flags 0x%x, %u blocks)",
			   q->fn, a->opcode, a->flags, a->nblocks);
		return -EINVAL;
	}
	if (a->opcode != MAPTBL_OP_FLUSH && (a->lba > q->blocks || a->nblocks > q->blocks - a->lba)) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: blocks %" PRIu64 " + %u past its %" PRIu64,
			   q->fn, a->lba, a->nblocks, q->blocks);
		return -EINVAL;
	}
	if (data && (!a->buf || !dma_bus_addr(q->hw, a->buf, (size_t)a->nblocks * q->bs, &addr))) {
		maptbl_log(MAPTBL_LOG_ERROR, "function %u: the buffer of a %u-block request is not in DMA memory of this handle",
			   q->fn, a->nblocks);
		return -EINVAL;
	}
	memset(r, 0, sizeof(*r));
	r->opcode = (uint8_t)a->opcode;
	r->flags = (uint8_t)a->flags;
	r->lba = maptbl_cpu_to_le64(a->lba);
	r->nblocks = maptbl_cpu_to_le32(a->nblocks);
	if (data) {
		r->nseg = maptbl_cpu_to_le16(1);
		r->seg[0].addr = maptbl_cpu_to_le64(addr);
		r->seg[0].len = maptbl_cpu_to_le32(a->nblocks * q->bs);
	}
	return 0;
}

/* Tells the device how far the host consumed completions. */
static int cq_ack(struct maptbl_hw_queue *q)
{
	if (!q->unacked)
		return 0;
	q->unacked = 0;
	return post32(q->hw, q->fn, MAPTBL_REG_CQ_HEAD, q->head);
}

MAPTBL_API int maptbl_hw_queue_post(struct maptbl_hw_queue *q, const struct maptbl_hw_aio *reqs,
				    unsigned n)
{
	unsigned done = 0;
	int err;

	if (!q || (n && !reqs))
		return -EINVAL;
	while (done < n) {
		struct maptbl_hw_req *r = (struct maptbl_hw_req *)q->rq->vaddr + q->tail;
		uint32_t tag;

		/*
		 * Room: the device consumes a request only when the completion ring has room for
		 * it, so outstanding requests plus completions not yet returned with CQ_HEAD must
		 * fit in the ring (entries - 1). Returning them makes room.
		 */
		if (q->inflight + q->unacked >= q->entries - 1 && q->unacked &&
		    (err = cq_ack(q)))
			return done ? (int)done : err;
		if (q->inflight >= q->entries - 1 || !q->nfree)
			return done ? (int)done : -EAGAIN;
		if ((err = aio_entry(q, &reqs[done], r)))
			return done ? (int)done : err;
		tag = q->free_tags[--q->nfree];
		q->busy[tag] = true;
		q->udata[tag] = reqs[done].user_data;
		r->tag = maptbl_cpu_to_le32(tag);
		q->tail = (q->tail + 1) % q->entries;
		q->inflight++;
		done++;
	}
	return (int)done;
}

MAPTBL_API int maptbl_hw_queue_submit(struct maptbl_hw_queue *q, const struct maptbl_hw_aio *reqs,
				      unsigned n)
{
	int posted = 0, err;

	if (!q)
		return -EINVAL;
	if (n && (posted = maptbl_hw_queue_post(q, reqs, n)) < 0 && q->rung == q->tail)
		return posted;
	if (q->rung != q->tail) {
		/* The entries must be in memory before the device sees the doorbell. */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		q->rung = q->tail;
		/*
		 * Not posted: the reply comes once the device took the doorbell, and maptbl-emu
		 * serves requests at the doorbell, so their completions are usually in memory when
		 * this returns; the wait that follows needs no barrier read (one round trip per
		 * batch instead of a message and a round trip, and one wake-up less).
		 */
		if ((err = q->hw->ops->write32(q->hw, q->fn, MAPTBL_REG_RQ_TAIL, q->tail)))
			return err;
		q->rung_synced = true;
	}
	return posted;
}

MAPTBL_API int maptbl_hw_queue_reap(struct maptbl_hw_queue *q, struct maptbl_hw_aio_cpl *out,
				    unsigned max, int timeout_ms)
{
	unsigned got = 0;
	int err;

	if (!q || (max && !out))
		return -EINVAL;
	if (!max || (!q->inflight && !cq_ready(q)))
		return 0;
	err = cq_wait(q, timeout_ms);
	if (err == -ETIMEDOUT)
		return 0;
	if (err)
		return err;
	while (got < max && cq_ready(q)) {
		const struct maptbl_hw_cpl *c = (const struct maptbl_hw_cpl *)q->cq->vaddr + q->head;
		uint32_t tag = maptbl_le32_to_cpu(c->tag);

		if (tag >= q->entries || !q->busy[tag]) {
			maptbl_log(MAPTBL_LOG_ERROR, "function %u: completion of tag %u, which is not outstanding",
				   q->fn, tag);
			return got ? (int)got : -EPROTO;
		}
		out[got].user_data = q->udata[tag];
		out[got].status = maptbl_le16_to_cpu(c->status);
		out[got].blocks = maptbl_le32_to_cpu(c->blocks);
		out[got].err = status_errno(out[got].status);
		out[got].reserved = 0;
		q->busy[tag] = false;
		q->free_tags[q->nfree++] = tag;
		q->inflight--;
		got++;
		if (++q->head == q->entries)
			q->head = 0, q->phase ^= 1;
		q->unacked++;
	}
	/*
	 * CQ_HEAD is written lazily: post() writes it when the ring needs the room (the device
	 * takes a request only when its completion fits), and here once half the ring waits for it.
	 * A doorbell message saved per request is a wake-up of the emulator saved.
	 */
	if (q->unacked >= q->entries / 2 && (err = cq_ack(q)))
		return err;
	return (int)got;
}

MAPTBL_API unsigned maptbl_hw_queue_inflight(const struct maptbl_hw_queue *q)
{
	return q ? q->inflight : 0;
}

MAPTBL_API unsigned maptbl_hw_queue_depth(const struct maptbl_hw_queue *q)
{
	return q ? q->entries - 1 : 0;
}

MAPTBL_API uint32_t maptbl_hw_queue_max_blocks(const struct maptbl_hw_queue *q)
{
	return q ? q->dev_max_xfer : 0;
}
