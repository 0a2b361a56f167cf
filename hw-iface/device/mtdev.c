/* SPDX-License-Identifier: MIT */
/*
 * mtdev.c - the device model's creation, reset and register pages (REGISTERS.md §1-§5).
 *
 * Every MMIO access is checked before anything else (function, size, alignment, offset, access
 * type); a bad one reads all ones or is ignored and is logged as a guest error (STYLE.md §12).
 * Register side effects that need DMA (latching a VF's table) happen here; ring work happens in
 * mtdev_process() (queue.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void mtdev_log(struct mtdev *d, enum mtdev_log_cat cat, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!d->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->ops.log(d->ctx, cat, msg);
}

/* [addr, addr + len) is a non-empty range that does not wrap past 2^64. */
bool mtdev_range_ok(uint64_t addr, uint64_t len)
{
	return len && len - 1 <= UINT64_MAX - addr;
}

void mtdev_raise(struct mtdev *d, struct mtdev_fn *f, unsigned vector)
{
	uint32_t bit = 1u << vector;
	bool was = f->int_status & bit;

	f->int_status |= bit;
	if (!was && !(f->int_mask & bit) && d->ops.irq)
		d->ops.irq(d->ctx, f->num, vector);
}

void mtdev_error(struct mtdev *d, unsigned fn, unsigned src, unsigned code)
{
	d->last_error = maptbl_hw_set(0, MAPTBL_LAST_ERROR_FN_SHIFT, MAPTBL_LAST_ERROR_FN_MASK, fn);
	d->last_error = maptbl_hw_set(d->last_error, MAPTBL_LAST_ERROR_CODE_SHIFT,
				      MAPTBL_LAST_ERROR_CODE_MASK, code);
	d->last_error = maptbl_hw_set(d->last_error, MAPTBL_LAST_ERROR_SRC_SHIFT,
				      MAPTBL_LAST_ERROR_SRC_MASK, src);
	mtdev_raise(d, &d->fn[0], MAPTBL_VEC_ERROR);
}

void mtdev_params_init(struct mtdev_params *p)
{
	memset(p, 0, sizeof(*p));
	p->nr_vfs = MTDEV_DEF_VFS;
	p->pf_block_size = MTDEV_DEF_PF_BS;
	p->max_xfer_blocks = MTDEV_DEF_XFER;
	p->xcache_entries = MTDEV_DEF_XC;
	p->ncache_entries = MTDEV_DEF_NC;
}

static void plog(const struct mtdev_params *p, const char *msg)
{
	if (p->ops && p->ops->log)
		p->ops->log(p->ctx, MTDEV_LOG_GUEST_ERROR, msg);
}

int mtdev_create(const struct mtdev_params *p, struct mtdev **out)
{
	struct mtdev *d;
	unsigned i;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!p || !p->ops || !p->ops->dma_read || !p->ops->dma_write || !p->ops->disk_read ||
	    !p->ops->disk_write) {
		if (p)
			plog(p, "mtdev_create: the dma_read, dma_write, disk_read and disk_write callbacks are required");
		return -EINVAL;
	}
	if (p->nr_vfs > MAPTBL_HW_MAX_VFS || !p->disk_bytes ||
	    (p->pf_block_size && (p->pf_block_size < 512 || p->pf_block_size > 65536 ||
				  (p->pf_block_size & (p->pf_block_size - 1)))) ||
	    p->xcache_entries > 0xFFFF || p->ncache_entries > 0xFFFF) {
		plog(p, "mtdev_create: bad parameters (nr_vfs <= 64, disk_bytes > 0, pf_block_size a power of two 512..65536, cache sizes <= 65535)");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ops = *p->ops;
	d->ctx = p->ctx;
	d->max_vfs = p->nr_vfs ? p->nr_vfs : MTDEV_DEF_VFS;
	d->disk_bytes = p->disk_bytes;
	d->pf_block_size = p->pf_block_size ? p->pf_block_size : MTDEV_DEF_PF_BS;
	d->max_xfer = p->max_xfer_blocks ? p->max_xfer_blocks : MTDEV_DEF_XFER;
	d->xc_n = p->xcache_disable ? 0 : p->xcache_entries ? p->xcache_entries : MTDEV_DEF_XC;
	d->nc_n = p->ncache_disable ? 0 : p->ncache_entries ? p->ncache_entries : MTDEV_DEF_NC;
	d->fn = calloc(d->max_vfs + 1, sizeof(*d->fn));
	d->xc = calloc(d->xc_n ? d->xc_n : 1, sizeof(*d->xc));
	d->nc = calloc(d->nc_n ? d->nc_n : 1, sizeof(*d->nc));
	for (d->nc_hmask = 1; d->nc_hmask < 2 * d->nc_n; d->nc_hmask <<= 1)
		;
	d->nc_hash = calloc(d->nc_hmask, sizeof(*d->nc_hash));
	d->nc_hmask--;
	d->bounce = malloc(MTDEV_BOUNCE_SIZE);
	d->scratch = malloc(MAPTBL_MAX_NODE_SIZE);
	if (!d->fn || !d->xc || !d->nc || !d->nc_hash || !d->bounce || !d->scratch) {
		mtdev_destroy(d);
		return -ENOMEM;
	}
	d->scratch_cap = MAPTBL_MAX_NODE_SIZE;
	mtdev_cache_init(d);
	for (i = 0; i < 256; i++) {
		uint32_t c = i;
		int k;

		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		d->crc_tab[i] = c;
	}
	mtdev_reset(d);
	*out = d;
	return 0;
}

void mtdev_destroy(struct mtdev *d)
{
	unsigned i;

	if (!d)
		return;
	if (d->nc)
		for (i = 0; i < d->nc_n; i++)
			free(d->nc[i].buf);
	free(d->nc);
	free(d->nc_hash);
	free(d->xc);
	free(d->fn);
	free(d->bounce);
	free(d->scratch);
	free(d);
}

void mtdev_reset(struct mtdev *d)
{
	unsigned i;

	for (i = 0; i <= d->max_vfs; i++) {
		memset(&d->fn[i], 0, sizeof(d->fn[i]));
		d->fn[i].num = i;
	}
	d->num_vfs = 0;
	d->fq_base = 0;
	d->fq_size = d->fq_ctrl = d->fq_tail = d->fq_head = d->fq_status = 0;
	d->fq_phase = 0;
	d->stats_sel = d->last_error = d->fault_seq = 0;
	mtdev_cache_flush(d, 0);
	d->xc_next = 0;
	mtdev_log(d, MTDEV_LOG_INFO, "device reset");
}

uint32_t mtdev_bar_size(const struct mtdev *d, unsigned fn)
{
	if (fn == 0)
		return MAPTBL_HW_PF_BAR_SIZE;
	return fn <= d->max_vfs ? MAPTBL_HW_VF_BAR_SIZE : 0;
}

/* ---- Register decoding ---- */

enum acc { RO, RW, WO, W1C };

struct reg {
	unsigned width;		/* 4 or 8 */
	uint32_t off;		/* offset of the register (its low half) */
	enum acc acc;
};

/* Decode offset @off of function @fn's page. Returns false for a reserved offset. */
static bool decode(const struct mtdev *d, unsigned fn, uint32_t off, struct reg *r)
{
	uint32_t base = off & ~7u;

	r->width = 4;
	r->off = off;
	if (off >= MAPTBL_REG_STATS && off < MAPTBL_REG_STATS + 8 * MAPTBL_STAT_COUNT) {
		*r = (struct reg){ 8, base, RO };
		return true;
	}
	switch (off) {
	case MAPTBL_REG_ID: case MAPTBL_REG_VERSION: case MAPTBL_REG_FUNC: case MAPTBL_REG_STATUS:
	case MAPTBL_REG_BLOCK_SIZE: case MAPTBL_REG_MAX_XFER: case MAPTBL_REG_Q_STATUS:
	case MAPTBL_REG_RQ_HEAD: case MAPTBL_REG_CQ_TAIL:
		r->acc = RO;
		return true;
	case MAPTBL_REG_DISK_BLOCKS: case MAPTBL_REG_DISK_BLOCKS + 4:
		*r = (struct reg){ 8, base, RO };
		return true;
	case MAPTBL_REG_RQ_BASE: case MAPTBL_REG_RQ_BASE + 4:
	case MAPTBL_REG_CQ_BASE: case MAPTBL_REG_CQ_BASE + 4:
		*r = (struct reg){ 8, base, RW };
		return true;
	case MAPTBL_REG_INT_STATUS:
		r->acc = W1C;
		return true;
	case MAPTBL_REG_INT_MASK: case MAPTBL_REG_Q_CTRL: case MAPTBL_REG_RQ_SIZE:
	case MAPTBL_REG_CQ_SIZE: case MAPTBL_REG_RQ_TAIL: case MAPTBL_REG_CQ_HEAD:
		r->acc = RW;
		return true;
	}
	if (fn != 0 || off < 0x100)
		return false;
	/* PF page */
	if (off >= MAPTBL_REG_PF_STATS_WIN && off < MAPTBL_REG_PF_STATS_WIN + 8 * MAPTBL_STAT_COUNT) {
		*r = (struct reg){ 8, base, RO };
		return true;
	}
	if (off >= MAPTBL_REG_PF_VFCFG_BASE) {
		uint32_t vf = (off - MAPTBL_REG_PF_VFCFG_BASE) / MAPTBL_REG_PF_VFCFG_STRIDE + 1;
		uint32_t o = (off - MAPTBL_REG_PF_VFCFG_BASE) % MAPTBL_REG_PF_VFCFG_STRIDE;

		if (vf > d->max_vfs)
			return false;
		switch (o) {
		case MAPTBL_VFCFG_TABLE_BASE: case MAPTBL_VFCFG_TABLE_BASE + 4:
		case MAPTBL_VFCFG_TABLE_LEN: case MAPTBL_VFCFG_TABLE_LEN + 4:
		case MAPTBL_VFCFG_VIRT_BLOCKS: case MAPTBL_VFCFG_VIRT_BLOCKS + 4:
			*r = (struct reg){ 8, base, RW };
			return true;
		case MAPTBL_VFCFG_FAULT_LBA: case MAPTBL_VFCFG_FAULT_LBA + 4:
			*r = (struct reg){ 8, base, RO };
			return true;
		case MAPTBL_VFCFG_BLOCK_SIZE: case MAPTBL_VFCFG_CTRL:
			r->acc = RW;
			return true;
		case MAPTBL_VFCFG_WALK_AGAIN:
			r->acc = WO;
			return true;
		default:	/* STATUS, FAULT_COUNT, FAULT_INFO, GENERATION, ROOT */
			r->acc = RO;
			return true;
		}
	}
	switch (off) {
	case MAPTBL_REG_PF_MAX_VFS: case MAPTBL_REG_PF_CACHE_INFO: case MAPTBL_REG_PF_FQ_TAIL:
	case MAPTBL_REG_PF_FQ_STATUS: case MAPTBL_REG_PF_LAST_ERROR:
		r->acc = RO;
		return true;
	case MAPTBL_REG_PF_NUM_VFS: case MAPTBL_REG_PF_FQ_SIZE: case MAPTBL_REG_PF_FQ_CTRL:
	case MAPTBL_REG_PF_FQ_HEAD: case MAPTBL_REG_PF_STATS_SEL:
		r->acc = RW;
		return true;
	case MAPTBL_REG_PF_CACHE_FLUSH: case MAPTBL_REG_PF_STATS_CTRL: case MAPTBL_REG_PF_DEV_CTRL:
		r->acc = WO;
		return true;
	case MAPTBL_REG_PF_FQ_BASE: case MAPTBL_REG_PF_FQ_BASE + 4:
		*r = (struct reg){ 8, base, RW };
		return true;
	}
	return false;
}

static uint32_t fn_status(const struct mtdev_fn *f)
{
	uint32_t s;

	if (f->num == 0)
		return MAPTBL_FN_STATUS_ENABLED;
	s = f->tbl.valid ? MAPTBL_FN_STATUS_ENABLED : 0;
	if (f->cfg.ctrl & MAPTBL_VFCFG_CTRL_READ_ONLY)
		s |= MAPTBL_FN_STATUS_READ_ONLY;
	if (f->stalled)
		s |= MAPTBL_FN_STATUS_STALLED;
	if (f->cfg.status & MAPTBL_VFCFG_STATUS_TABLE_ERROR)
		s |= MAPTBL_FN_STATUS_TABLE_ERROR;
	return s;
}

static uint64_t vfcfg_get(const struct mtdev_fn *f, uint32_t o)
{
	const struct mtdev_vfcfg *c = &f->cfg;

	switch (o) {
	case MAPTBL_VFCFG_TABLE_BASE: return c->table_base;
	case MAPTBL_VFCFG_TABLE_LEN: return c->table_len;
	case MAPTBL_VFCFG_VIRT_BLOCKS: return c->virt_blocks;
	case MAPTBL_VFCFG_BLOCK_SIZE: return c->block_size;
	case MAPTBL_VFCFG_CTRL: return c->ctrl;
	case MAPTBL_VFCFG_STATUS:
		return (c->status & ~(uint32_t)(MAPTBL_VFCFG_STATUS_ENABLED |
						MAPTBL_VFCFG_STATUS_STALLED)) |
		       (f->tbl.valid ? MAPTBL_VFCFG_STATUS_ENABLED : 0) |
		       (f->stalled ? MAPTBL_VFCFG_STATUS_STALLED : 0);
	case MAPTBL_VFCFG_FAULT_LBA: return c->fault_lba;
	case MAPTBL_VFCFG_FAULT_COUNT: return c->fault_count;
	case MAPTBL_VFCFG_FAULT_INFO: return c->fault_info;
	case MAPTBL_VFCFG_GENERATION: return c->generation;
	case MAPTBL_VFCFG_ROOT: return c->root;
	}
	return 0;
}

/* Full value of register @off (its low-half offset) of function @f. */
static uint64_t reg_get(const struct mtdev *d, const struct mtdev_fn *f, uint32_t off)
{
	if (off >= MAPTBL_REG_STATS && off < MAPTBL_REG_STATS + 8 * MAPTBL_STAT_COUNT)
		return f->stats[(off - MAPTBL_REG_STATS) / 8];
	switch (off) {
	case MAPTBL_REG_ID: return MAPTBL_HW_ID;
	case MAPTBL_REG_VERSION: return MAPTBL_HW_VERSION;
	case MAPTBL_REG_FUNC: return f->num;
	case MAPTBL_REG_STATUS: return fn_status(f);
	case MAPTBL_REG_DISK_BLOCKS:
		if (!f->num)
			return d->disk_bytes / d->pf_block_size;
		return f->tbl.valid ? f->tbl.virt_blocks : 0;
	case MAPTBL_REG_BLOCK_SIZE:
		if (!f->num)
			return d->pf_block_size;
		return f->tbl.valid ? f->tbl.block_size : 0;
	case MAPTBL_REG_MAX_XFER: return d->max_xfer;
	case MAPTBL_REG_INT_STATUS: return f->int_status;
	case MAPTBL_REG_INT_MASK: return f->int_mask;
	case MAPTBL_REG_Q_CTRL: return f->q_ctrl;
	case MAPTBL_REG_Q_STATUS: return f->q_status;
	case MAPTBL_REG_RQ_BASE: return f->rq_base;
	case MAPTBL_REG_CQ_BASE: return f->cq_base;
	case MAPTBL_REG_RQ_SIZE: return f->rq_size;
	case MAPTBL_REG_CQ_SIZE: return f->cq_size;
	case MAPTBL_REG_RQ_TAIL: return f->rq_tail;
	case MAPTBL_REG_RQ_HEAD: return f->rq_head;
	case MAPTBL_REG_CQ_TAIL: return f->cq_tail;
	case MAPTBL_REG_CQ_HEAD: return f->cq_head;
	}
	/* PF page only from here on (decode() made sure). */
	if (off >= MAPTBL_REG_PF_STATS_WIN && off < MAPTBL_REG_PF_STATS_WIN + 8 * MAPTBL_STAT_COUNT)
		return d->fn[d->stats_sel].stats[(off - MAPTBL_REG_PF_STATS_WIN) / 8];
	if (off >= MAPTBL_REG_PF_VFCFG_BASE) {
		uint32_t rel = off - MAPTBL_REG_PF_VFCFG_BASE;

		return vfcfg_get(&d->fn[rel / MAPTBL_REG_PF_VFCFG_STRIDE + 1],
				 rel % MAPTBL_REG_PF_VFCFG_STRIDE);
	}
	switch (off) {
	case MAPTBL_REG_PF_MAX_VFS: return d->max_vfs;
	case MAPTBL_REG_PF_NUM_VFS: return d->num_vfs;
	case MAPTBL_REG_PF_CACHE_INFO:
		return maptbl_hw_set(maptbl_hw_set(0, MAPTBL_CACHE_INFO_XC_SHIFT,
						   MAPTBL_CACHE_INFO_XC_MASK, d->xc_n),
				     MAPTBL_CACHE_INFO_NC_SHIFT, MAPTBL_CACHE_INFO_NC_MASK, d->nc_n);
	case MAPTBL_REG_PF_FQ_BASE: return d->fq_base;
	case MAPTBL_REG_PF_FQ_SIZE: return d->fq_size;
	case MAPTBL_REG_PF_FQ_CTRL: return d->fq_ctrl;
	case MAPTBL_REG_PF_FQ_TAIL: return d->fq_tail;
	case MAPTBL_REG_PF_FQ_HEAD: return d->fq_head;
	case MAPTBL_REG_PF_FQ_STATUS: return d->fq_status;
	case MAPTBL_REG_PF_STATS_SEL: return d->stats_sel;
	case MAPTBL_REG_PF_LAST_ERROR: return d->last_error;
	}
	return 0;
}

/* Checks common to reads and writes; returns the function or NULL (logged). */
static struct mtdev_fn *access_check(struct mtdev *d, unsigned fn, uint64_t off, unsigned size,
				     const char *what, struct reg *r)
{
	if (fn > d->max_vfs) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "%s of function %u: the device has %u VFs", what,
			  fn, d->max_vfs);
		return NULL;
	}
	if (fn && fn > d->num_vfs) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "%s of VF %u at 0x%llx: NUM_VFS is %u", what, fn,
			  (unsigned long long)off, d->num_vfs);
		return NULL;
	}
	if (size != 4 && size != 8) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "%s of function %u at 0x%llx: size %u (4 or 8)",
			  what, fn, (unsigned long long)off, size);
		return NULL;
	}
	if (off % size) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "%s of function %u at 0x%llx: not %u-byte aligned",
			  what, fn, (unsigned long long)off, size);
		return NULL;
	}
	if (off >= mtdev_bar_size(d, fn) || !decode(d, fn, (uint32_t)off, r)) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "%s of function %u at 0x%llx: no register there",
			  what, fn, (unsigned long long)off);
		return NULL;
	}
	if (size == 8 && (r->width != 8 || r->off != off)) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
			  "%s of function %u at 0x%llx: 8-byte access to a 32-bit register", what, fn,
			  (unsigned long long)off);
		return NULL;
	}
	return &d->fn[fn];
}

uint64_t mtdev_mmio_read(struct mtdev *d, unsigned fn, uint64_t off, unsigned size)
{
	struct mtdev_fn *f;
	struct reg r;
	uint64_t v;

	f = access_check(d, fn, off, size, "read", &r);
	if (!f)	/* all ones, of the access's size */
		return size && size < 8 ? (UINT64_C(1) << (8 * size)) - 1 : UINT64_MAX;
	if (r.acc == WO)
		return 0;
	v = reg_get(d, f, r.off);
	if (size == 8)
		return v;
	return (uint32_t)(off == r.off ? v : v >> 32);
}

/* Write the ring registers of the function page while the rings run: refused. */
static bool ring_cfg_locked(struct mtdev *d, struct mtdev_fn *f, uint32_t off)
{
	if (!(f->q_ctrl & MAPTBL_Q_CTRL_ENABLE))
		return false;
	mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
		  "function %u: write to ring register 0x%x while the rings run, ignored", f->num, off);
	return true;
}

/* Distance from @from forward to @to in a ring of @size entries. */
static uint32_t ring_dist(uint32_t from, uint32_t to, uint32_t size)
{
	return (to + size - from) % size;
}

/* A consumer doorbell (CQ_HEAD, FQ_HEAD): @val must be in [head, tail] going forward. */
static bool head_ok(uint32_t val, uint32_t head, uint32_t tail, uint32_t size)
{
	return val < size && ring_dist(head, val, size) <= ring_dist(head, tail, size);
}

static void disable_vf(struct mtdev *d, struct mtdev_fn *f)
{
	mtdev_q_drop(d, f);
	f->q_ctrl = 0;
	f->q_status = 0;
	f->tbl.valid = false;
	f->cfg.ctrl &= ~(MAPTBL_VFCFG_CTRL_ENABLE | MAPTBL_VFCFG_CTRL_COMMIT);
	mtdev_cache_flush(d, f->num);
}

static void vfcfg_ctrl(struct mtdev *d, struct mtdev_fn *f, uint32_t val)
{
	uint32_t old = f->cfg.ctrl;

	if (val & ~MAPTBL_VFCFG_CTRL_MASK)
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u CTRL: reserved bits 0x%x ignored", f->num,
			  val & ~MAPTBL_VFCFG_CTRL_MASK);
	val &= MAPTBL_VFCFG_CTRL_MASK;
	f->cfg.ctrl = (val & ~MAPTBL_VFCFG_CTRL_ENABLE) | (old & MAPTBL_VFCFG_CTRL_ENABLE);
	f->tbl.check_crc = val & MAPTBL_VFCFG_CTRL_CHECK_CRC;
	if ((old ^ val) & MAPTBL_VFCFG_CTRL_CHECK_CRC)
		mtdev_cache_flush(d, f->num);
	if ((val & MAPTBL_VFCFG_CTRL_ENABLE) && !(old & MAPTBL_VFCFG_CTRL_ENABLE)) {
		unsigned terr;

		if (f->num > d->num_vfs) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u CTRL.ENABLE: NUM_VFS is %u", f->num,
				  d->num_vfs);
			return;
		}
		terr = mtdev_table_latch(d, f);
		if (terr) {
			f->cfg.status = maptbl_hw_set(MAPTBL_VFCFG_STATUS_TABLE_ERROR,
						      MAPTBL_VFCFG_STATUS_TERR_SHIFT,
						      MAPTBL_VFCFG_STATUS_TERR_MASK, terr);
			mtdev_error(d, f->num, MAPTBL_ERRSRC_TABLE, terr);
			return;
		}
		f->cfg.status = 0;
		f->cfg.ctrl |= MAPTBL_VFCFG_CTRL_ENABLE;
		mtdev_log(d, MTDEV_LOG_INFO, "VF %u enabled: %llu blocks of %u bytes", f->num,
			  (unsigned long long)f->tbl.virt_blocks, f->tbl.block_size);
	} else if (!(val & MAPTBL_VFCFG_CTRL_ENABLE) && (old & MAPTBL_VFCFG_CTRL_ENABLE)) {
		disable_vf(d, f);
		mtdev_log(d, MTDEV_LOG_INFO, "VF %u disabled", f->num);
	}
}

static void vfcfg_put(struct mtdev *d, struct mtdev_fn *f, uint32_t o, uint64_t val)
{
	switch (o) {
	case MAPTBL_VFCFG_TABLE_BASE: f->cfg.table_base = val; break;
	case MAPTBL_VFCFG_TABLE_LEN: f->cfg.table_len = val; break;
	case MAPTBL_VFCFG_VIRT_BLOCKS: f->cfg.virt_blocks = val; break;
	case MAPTBL_VFCFG_BLOCK_SIZE: f->cfg.block_size = (uint32_t)val; break;
	case MAPTBL_VFCFG_CTRL: vfcfg_ctrl(d, f, (uint32_t)val); break;
	case MAPTBL_VFCFG_WALK_AGAIN: mtdev_walk_again(d, f, (uint32_t)val); break;
	}
}

static void set_num_vfs(struct mtdev *d, uint32_t val)
{
	uint32_t i;

	if (val > d->max_vfs) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "NUM_VFS %u: the device has %u VFs, ignored", val,
			  d->max_vfs);
		return;
	}
	for (i = val + 1; i <= d->num_vfs; i++) {
		struct mtdev_fn *f = &d->fn[i];

		disable_vf(d, f);
		f->int_status = f->int_mask = 0;
		f->rq_base = f->cq_base = 0;
		f->rq_size = f->cq_size = 0;
	}
	d->num_vfs = val;
}

static void pf_put(struct mtdev *d, uint32_t off, uint64_t val)
{
	uint32_t v = (uint32_t)val;

	if (off >= MAPTBL_REG_PF_VFCFG_BASE) {
		uint32_t rel = off - MAPTBL_REG_PF_VFCFG_BASE;

		vfcfg_put(d, &d->fn[rel / MAPTBL_REG_PF_VFCFG_STRIDE + 1],
			  rel % MAPTBL_REG_PF_VFCFG_STRIDE, val);
		return;
	}
	switch (off) {
	case MAPTBL_REG_PF_NUM_VFS:
		set_num_vfs(d, v);
		break;
	case MAPTBL_REG_PF_CACHE_FLUSH:
		if (v == MAPTBL_FLUSH_ALL)
			mtdev_cache_flush(d, 0);
		else if (v >= 1 && v <= d->max_vfs)
			mtdev_cache_flush(d, v);
		else
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "CACHE_FLUSH 0x%x: no such VF, ignored", v);
		break;
	case MAPTBL_REG_PF_FQ_BASE:
	case MAPTBL_REG_PF_FQ_SIZE:
		if (d->fq_ctrl & MAPTBL_FQ_CTRL_ENABLE) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "fault queue register 0x%x written while the queue runs, ignored", off);
			break;
		}
		if (off == MAPTBL_REG_PF_FQ_BASE)
			d->fq_base = val;
		else
			d->fq_size = v;
		break;
	case MAPTBL_REG_PF_FQ_CTRL:
		mtdev_fq_ctrl(d, v);
		break;
	case MAPTBL_REG_PF_FQ_HEAD:
		if (!(d->fq_status & MAPTBL_FQ_STATUS_RUNNING)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "FQ_HEAD written while the fault queue is off");
			break;
		}
		if (!head_ok(v, d->fq_head, d->fq_tail, d->fq_size)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "FQ_HEAD %u outside the posted entries [%u, %u]: fault queue stopped",
				  v, d->fq_head, d->fq_tail);
			d->fq_ctrl = 0;
			d->fq_status = maptbl_hw_set(MAPTBL_FQ_STATUS_ERROR, MAPTBL_FQ_STATUS_ERR_SHIFT,
						     MAPTBL_FQ_STATUS_ERR_MASK,
						     MAPTBL_QERR_BAD_DOORBELL);
			mtdev_error(d, 0, MAPTBL_ERRSRC_FQ, MAPTBL_QERR_BAD_DOORBELL);
			break;
		}
		d->fq_head = v;
		break;
	case MAPTBL_REG_PF_STATS_SEL:
		if (v > d->max_vfs)
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "STATS_SEL %u: no such function, ignored", v);
		else
			d->stats_sel = v;
		break;
	case MAPTBL_REG_PF_STATS_CTRL:
		if (v & MAPTBL_STATS_CTRL_CLEAR)
			memset(d->fn[d->stats_sel].stats, 0, sizeof(d->fn[0].stats));
		if (v & ~MAPTBL_STATS_CTRL_CLEAR)
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "STATS_CTRL: reserved bits 0x%x", v);
		break;
	case MAPTBL_REG_PF_DEV_CTRL:
		if (v & ~MAPTBL_DEV_CTRL_RESET)
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "DEV_CTRL: reserved bits 0x%x", v);
		if (v & MAPTBL_DEV_CTRL_RESET)
			mtdev_reset(d);
		break;
	}
}

static void reg_put(struct mtdev *d, struct mtdev_fn *f, uint32_t off, uint64_t val)
{
	uint32_t v = (uint32_t)val;

	switch (off) {
	case MAPTBL_REG_INT_STATUS:
		f->int_status &= ~v;
		return;
	case MAPTBL_REG_INT_MASK: {
		uint32_t newly = f->int_mask & ~v & f->int_status;
		unsigned vec;

		if (v & ~MAPTBL_INT_ALL)
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u INT_MASK: reserved bits 0x%x",
				  f->num, v & ~MAPTBL_INT_ALL);
		f->int_mask = v & MAPTBL_INT_ALL;
		for (vec = 0; vec < MAPTBL_NR_VECTORS; vec++)
			if ((newly & (1u << vec)) && d->ops.irq)
				d->ops.irq(d->ctx, f->num, vec);
		return;
	}
	case MAPTBL_REG_Q_CTRL:
		mtdev_q_ctrl(d, f, v);
		return;
	case MAPTBL_REG_RQ_BASE:
		if (!ring_cfg_locked(d, f, off))
			f->rq_base = val;
		return;
	case MAPTBL_REG_CQ_BASE:
		if (!ring_cfg_locked(d, f, off))
			f->cq_base = val;
		return;
	case MAPTBL_REG_RQ_SIZE:
		if (!ring_cfg_locked(d, f, off))
			f->rq_size = v;
		return;
	case MAPTBL_REG_CQ_SIZE:
		if (!ring_cfg_locked(d, f, off))
			f->cq_size = v;
		return;
	case MAPTBL_REG_RQ_TAIL:
		if (!(f->q_status & MAPTBL_Q_STATUS_RUNNING)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "function %u RQ_TAIL written while the rings are off", f->num);
			return;
		}
		if (v >= f->rq_size) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "function %u RQ_TAIL %u >= ring size %u",
				  f->num, v, f->rq_size);
			mtdev_q_stop(d, f, MAPTBL_QERR_BAD_DOORBELL);
			return;
		}
		f->rq_tail = v;
		return;
	case MAPTBL_REG_CQ_HEAD:
		if (!(f->q_status & MAPTBL_Q_STATUS_RUNNING)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "function %u CQ_HEAD written while the rings are off", f->num);
			return;
		}
		if (!head_ok(v, f->cq_head, f->cq_tail, f->cq_size)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
				  "function %u CQ_HEAD %u outside the posted completions [%u, %u]",
				  f->num, v, f->cq_head, f->cq_tail);
			mtdev_q_stop(d, f, MAPTBL_QERR_BAD_DOORBELL);
			return;
		}
		f->cq_head = v;
		return;
	}
	pf_put(d, off, val);
}

void mtdev_mmio_write(struct mtdev *d, unsigned fn, uint64_t off, unsigned size, uint64_t val)
{
	struct mtdev_fn *f;
	struct reg r;
	uint64_t full;

	f = access_check(d, fn, off, size, "write", &r);
	if (!f)
		return;
	if (r.acc == RO) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
			  "write of 0x%llx to read-only register 0x%llx of function %u, ignored",
			  (unsigned long long)val, (unsigned long long)off, fn);
		return;
	}
	if (size == 4)
		val &= UINT32_MAX;
	full = val;
	if (r.width == 8 && size == 4) {
		uint64_t cur = reg_get(d, f, r.off);

		full = off == r.off ? (cur & ~(uint64_t)UINT32_MAX) | val
				    : (cur & UINT32_MAX) | val << 32;
	}
	reg_put(d, f, r.off, full);
}
