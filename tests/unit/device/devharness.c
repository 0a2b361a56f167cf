/* SPDX-License-Identifier: MIT */
/*
 * devharness.c - see devharness.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devharness.h"

static bool in_mem(const struct devh *h, unsigned fn, uint64_t addr, uint64_t len)
{
	uint64_t lo = DEVH_MEM_BASE, hi = DEVH_MEM_BASE + h->mem_size;

	if (fn && h->vf_win) {
		lo = DEVH_MEM_BASE + h->mem_size - (uint64_t)MAPTBL_HW_MAX_VFS * h->vf_win +
		     (uint64_t)(fn - 1) * h->vf_win;
		hi = lo + h->vf_win;
	}
	return len && addr >= lo && addr <= hi && len <= hi - addr;
}

void *devh_ptr(struct devh *h, uint64_t addr, uint64_t len)
{
	if (!in_mem(h, 0, addr, len ? len : 1))
		return NULL;
	return h->mem + (addr - DEVH_MEM_BASE);
}

static int cb_dma_read(void *ctx, unsigned fn, uint64_t addr, void *buf, size_t len)
{
	struct devh *h = ctx;

	if (!len || addr + len < addr)
		h->dma_oob++;	/* the model promised never to ask for these */
	if (!in_mem(h, fn, addr, len))
		return -1;
	memcpy(buf, h->mem + (addr - DEVH_MEM_BASE), len);
	return 0;
}

static int cb_dma_write(void *ctx, unsigned fn, uint64_t addr, const void *buf, size_t len)
{
	struct devh *h = ctx;

	if (!len || addr + len < addr)
		h->dma_oob++;
	if (!in_mem(h, fn, addr, len))
		return -1;
	memcpy(h->mem + (addr - DEVH_MEM_BASE), buf, len);
	return 0;
}

/* Every block of [off, off + len) a VF touches must be inside its allowed ranges. */
static void audit(struct devh *h, unsigned fn, uint64_t off, size_t len)
{
	const struct devh_extent_set *s = &h->allowed[fn];
	uint64_t first, last;
	size_t lo = 0, hi;

	if (!fn || !h->audit || h->audit_off[fn])
		return;
	if (!s->block_size || off % s->block_size || len % s->block_size) {
		h->audit_violations++;
		return;
	}
	first = off / s->block_size;
	last = first + len / s->block_size;	/* exclusive */
	hi = s->n;
	while (lo < hi) {	/* first range whose end is > first */
		size_t mid = lo + (hi - lo) / 2;

		if (s->end[mid] <= first)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == s->n || s->start[lo] > first || s->end[lo] < last) {
		/* Ranges are merged when adjacent, so one range must hold the whole access. */
		h->audit_violations++;
		if (h->verbose)
			fprintf(stderr, "AUDIT: VF %u touched blocks [%llu, %llu)\n", fn,
				(unsigned long long)first, (unsigned long long)last);
	}
}

static int cb_disk_read(void *ctx, unsigned fn, uint64_t off, void *buf, size_t len)
{
	struct devh *h = ctx;

	if (!len || off > h->disk_size || len > h->disk_size - off) {
		h->disk_oob++;
		return -1;
	}
	audit(h, fn, off, len);
	h->disk_reads++;
	if (h->fail_disk > 0 && !--h->fail_disk)
		return -1;
	memcpy(buf, h->disk + off, len);
	return 0;
}

static int cb_disk_write(void *ctx, unsigned fn, uint64_t off, const void *buf, size_t len)
{
	struct devh *h = ctx;

	if (!len || off > h->disk_size || len > h->disk_size - off) {
		h->disk_oob++;
		return -1;
	}
	audit(h, fn, off, len);
	h->disk_writes++;
	if (h->fail_disk > 0 && !--h->fail_disk)
		return -1;
	memcpy(h->disk + off, buf, len);
	return 0;
}

static int cb_disk_flush(void *ctx, unsigned fn)
{
	struct devh *h = ctx;

	(void)fn;
	h->disk_flushes++;
	return 0;
}

static void cb_irq(void *ctx, unsigned fn, unsigned vector)
{
	struct devh *h = ctx;

	if (fn < DEVH_FNS && vector < MAPTBL_NR_VECTORS)
		h->irqs[fn][vector]++;
	if (fn == 0 && vector == MAPTBL_VEC_FAULT && h->fq_size) { /* is the entry there yet? */
		const struct maptbl_hw_fault *f =
			devh_ptr(h, h->fq + (uint64_t)h->fq_head * sizeof(*f), sizeof(*f));

		if (f && (maptbl_le16_to_cpu(f->flags) & MAPTBL_FAULT_F_PHASE) != h->fq_phase)
			h->fault_irq_early++;
	}
}

static void cb_log(void *ctx, enum mtdev_log_cat cat, const char *msg)
{
	struct devh *h = ctx;

	h->logs++;
	if (cat == MTDEV_LOG_GUEST_ERROR)
		h->guest_errors++;
	if (h->verbose)
		fprintf(stderr, "mtdev[%d]: %s\n", (int)cat, msg);
}

static const struct mtdev_ops devh_ops = {
	.dma_read = cb_dma_read,
	.dma_write = cb_dma_write,
	.disk_read = cb_disk_read,
	.disk_write = cb_disk_write,
	.disk_flush = cb_disk_flush,
	.irq = cb_irq,
	.log = cb_log,
};

int devh_init(struct devh *h, const struct devh_cfg *cfg)
{
	struct mtdev_params p;
	const char *v = getenv("MTDEV_VERBOSE");

	memset(h, 0, sizeof(*h));
	h->verbose = v && *v && *v != '0';
	h->mem_size = cfg->mem_size ? cfg->mem_size : (UINT64_C(16) << 20);
	h->vf_win = cfg->vf_win;
	if (h->vf_win * MAPTBL_HW_MAX_VFS >= h->mem_size)
		return -EINVAL;
	h->disk_size = cfg->disk_size ? cfg->disk_size : (UINT64_C(8) << 20);
	h->mem = calloc(1, h->mem_size);
	h->disk = calloc(1, h->disk_size);
	if (!h->mem || !h->disk)
		return -ENOMEM;
	h->audit = true;
	mtdev_params_init(&p);
	p.ops = &devh_ops;
	p.ctx = h;
	p.nr_vfs = cfg->nr_vfs;
	p.disk_bytes = h->disk_size;
	p.pf_block_size = cfg->pf_block_size;
	p.max_xfer_blocks = cfg->max_xfer;
	if (cfg->xc)
		p.xcache_entries = cfg->xc;
	if (cfg->nc)
		p.ncache_entries = cfg->nc;
	p.xcache_disable = cfg->no_xc;
	p.ncache_disable = cfg->no_nc;
	return mtdev_create(&p, &h->d);
}

void devh_fini(struct devh *h)
{
	unsigned i;

	mtdev_destroy(h->d);
	for (i = 0; i < DEVH_FNS; i++) {
		free(h->allowed[i].start);
		free(h->allowed[i].end);
	}
	free(h->mem);
	free(h->disk);
	memset(h, 0, sizeof(*h));
}

uint32_t rd32(struct devh *h, unsigned fn, uint32_t off)
{
	return (uint32_t)mtdev_mmio_read(h->d, fn, off, 4);
}

uint64_t rd64(struct devh *h, unsigned fn, uint32_t off)
{
	return mtdev_mmio_read(h->d, fn, off, 8);
}

void wr32(struct devh *h, unsigned fn, uint32_t off, uint32_t v)
{
	mtdev_mmio_write(h->d, fn, off, 4, v);
}

void wr64(struct devh *h, unsigned fn, uint32_t off, uint64_t v)
{
	mtdev_mmio_write(h->d, fn, off, 8, v);
}

uint64_t devh_alloc(struct devh *h, unsigned fn, uint64_t len, uint64_t align)
{
	uint64_t lo, hi, *next, a;

	if (fn && h->vf_win) {
		lo = h->mem_size - (uint64_t)MAPTBL_HW_MAX_VFS * h->vf_win + (fn - 1) * h->vf_win;
		hi = lo + h->vf_win;
		next = &h->vf_next[fn];
	} else {
		lo = 0;
		hi = h->vf_win ? h->mem_size - (uint64_t)MAPTBL_HW_MAX_VFS * h->vf_win : h->mem_size;
		next = &h->pf_next;
	}
	if (*next < lo)
		*next = lo;
	a = (*next + align - 1) / align * align;
	if (a > hi || len > hi - a)
		return 0;
	*next = a + len;
	return DEVH_MEM_BASE + a;
}

uint64_t devh_push(struct devh *h, const void *tbl, size_t len)
{
	uint64_t a = devh_alloc(h, 0, len, 4096);

	if (a)
		memcpy(devh_ptr(h, a, len), tbl, len);
	return a;
}

struct allow_ctx {
	struct devh_extent_set *s;
	size_t cap;
};

static int allow_one(void *ctx, const struct maptbl_extent *e)
{
	struct allow_ctx *a = ctx;
	struct devh_extent_set *s = a->s;

	if (e->flags & (MAPTBL_EXTENT_UNWRITTEN | MAPTBL_EXTENT_ABSENT))
		return 0;	/* the device must never touch unwritten blocks */
	if (s->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		uint64_t *ns = realloc(s->start, cap * sizeof(*ns));
		uint64_t *ne;

		if (!ns)
			return -ENOMEM;
		s->start = ns;
		ne = realloc(s->end, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		s->end = ne;
		a->cap = cap;
	}
	s->start[s->n] = e->pblk;
	s->end[s->n] = e->pblk + e->len;
	s->n++;
	return 0;
}

static int cmp_u64pair(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void devh_allow(struct devh *h, unsigned vf, const struct maptbl_table *t)
{
	struct devh_extent_set *s = &h->allowed[vf];
	struct allow_ctx a = { s, 0 };
	uint64_t *pairs;
	size_t i, m = 0;

	free(s->start);
	free(s->end);
	memset(s, 0, sizeof(*s));
	if (!t)
		return;
	s->block_size = maptbl_table_block_size(t);
	if (maptbl_table_iterate(t, allow_one, &a) || !s->n)
		return;
	/* Sort by physical start and merge overlapping or adjacent ranges. */
	pairs = malloc(s->n * 2 * sizeof(*pairs));
	if (!pairs)
		return;
	for (i = 0; i < s->n; i++) {
		pairs[2 * i] = s->start[i];
		pairs[2 * i + 1] = s->end[i];
	}
	qsort(pairs, s->n, 2 * sizeof(*pairs), cmp_u64pair);
	for (i = 0; i < s->n; i++) {
		if (m && pairs[2 * i] <= s->end[m - 1]) {
			if (pairs[2 * i + 1] > s->end[m - 1])
				s->end[m - 1] = pairs[2 * i + 1];
			continue;
		}
		s->start[m] = pairs[2 * i];
		s->end[m] = pairs[2 * i + 1];
		m++;
	}
	s->n = m;
	free(pairs);
}

uint32_t devh_vf_enable(struct devh *h, unsigned vf, uint64_t addr, uint64_t len,
			uint64_t virt_blocks, uint32_t block_size, uint32_t ctrl)
{
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(vf);

	if (rd32(h, 0, MAPTBL_REG_PF_NUM_VFS) < vf)
		wr32(h, 0, MAPTBL_REG_PF_NUM_VFS, vf);
	wr64(h, 0, cfg + MAPTBL_VFCFG_TABLE_BASE, addr);
	wr64(h, 0, cfg + MAPTBL_VFCFG_TABLE_LEN, len);
	wr64(h, 0, cfg + MAPTBL_VFCFG_VIRT_BLOCKS, virt_blocks);
	wr32(h, 0, cfg + MAPTBL_VFCFG_BLOCK_SIZE, block_size);
	wr32(h, 0, cfg + MAPTBL_VFCFG_CTRL, ctrl | MAPTBL_VFCFG_CTRL_ENABLE);
	return rd32(h, 0, cfg + MAPTBL_VFCFG_STATUS);
}

uint32_t devh_vf_table(struct devh *h, unsigned vf, const struct maptbl_table *t, uint32_t ctrl)
{
	uint64_t a = devh_push(h, maptbl_table_data(t), maptbl_table_len(t));

	devh_allow(h, vf, t);
	return devh_vf_enable(h, vf, a, maptbl_table_len(t), maptbl_table_virtual_blocks(t),
			      maptbl_table_block_size(t), ctrl);
}

uint32_t devh_rings(struct devh *h, unsigned fn, uint32_t rq_size, uint32_t cq_size)
{
	struct devh_ring *r = &h->ring[fn];

	r->rq = devh_alloc(h, fn, (uint64_t)rq_size * sizeof(struct maptbl_hw_req), 64);
	r->cq = devh_alloc(h, fn, (uint64_t)cq_size * sizeof(struct maptbl_hw_cpl), 64);
	r->rq_size = rq_size;
	r->cq_size = cq_size;
	r->rq_tail = r->cq_head = 0;
	r->phase = MAPTBL_CPL_F_PHASE;
	wr64(h, fn, MAPTBL_REG_RQ_BASE, r->rq);
	wr64(h, fn, MAPTBL_REG_CQ_BASE, r->cq);
	wr32(h, fn, MAPTBL_REG_RQ_SIZE, rq_size);
	wr32(h, fn, MAPTBL_REG_CQ_SIZE, cq_size);
	wr32(h, fn, MAPTBL_REG_Q_CTRL, MAPTBL_Q_CTRL_ENABLE);
	return rd32(h, fn, MAPTBL_REG_Q_STATUS);
}

uint32_t devh_fq(struct devh *h, uint32_t size)
{
	h->fq = devh_alloc(h, 0, (uint64_t)size * sizeof(struct maptbl_hw_fault), 64);
	h->fq_size = size;
	h->fq_head = 0;
	h->fq_phase = MAPTBL_FAULT_F_PHASE;
	wr64(h, 0, MAPTBL_REG_PF_FQ_BASE, h->fq);
	wr32(h, 0, MAPTBL_REG_PF_FQ_SIZE, size);
	wr32(h, 0, MAPTBL_REG_PF_FQ_CTRL, MAPTBL_FQ_CTRL_ENABLE);
	return rd32(h, 0, MAPTBL_REG_PF_FQ_STATUS);
}

void devh_req(struct maptbl_hw_req *q, unsigned op, uint32_t tag, uint64_t lba, uint32_t nblocks,
	      uint64_t buf, uint32_t len)
{
	memset(q, 0, sizeof(*q));
	q->opcode = (uint8_t)op;
	q->tag = maptbl_cpu_to_le32(tag);
	q->lba = maptbl_cpu_to_le64(lba);
	q->nblocks = maptbl_cpu_to_le32(nblocks);
	if (len) {
		q->nseg = maptbl_cpu_to_le16(1);
		q->seg[0].addr = maptbl_cpu_to_le64(buf);
		q->seg[0].len = maptbl_cpu_to_le32(len);
	}
}

void devh_submit(struct devh *h, unsigned fn, const struct maptbl_hw_req *q)
{
	struct devh_ring *r = &h->ring[fn];
	void *p;

	if (!r->rq_size)
		return;	/* no rings set up on this function */
	p = devh_ptr(h, r->rq + (uint64_t)r->rq_tail * sizeof(*q), sizeof(*q));
	if (p)
		memcpy(p, q, sizeof(*q));
	r->rq_tail = (r->rq_tail + 1) % r->rq_size;
	wr32(h, fn, MAPTBL_REG_RQ_TAIL, r->rq_tail);
}

bool devh_reap(struct devh *h, unsigned fn, struct maptbl_hw_cpl *c)
{
	struct devh_ring *r = &h->ring[fn];
	void *p;

	if (!r->cq_size)
		return false;
	p = devh_ptr(h, r->cq + (uint64_t)r->cq_head * sizeof(*c), sizeof(*c));
	if (!p)
		return false;
	memcpy(c, p, sizeof(*c));
	if ((maptbl_le16_to_cpu(c->flags) & MAPTBL_CPL_F_PHASE) != r->phase)
		return false;
	r->cq_head = (r->cq_head + 1) % r->cq_size;
	if (!r->cq_head)
		r->phase ^= MAPTBL_CPL_F_PHASE;
	wr32(h, fn, MAPTBL_REG_CQ_HEAD, r->cq_head);
	return true;
}

bool devh_fault(struct devh *h, struct maptbl_hw_fault *f)
{
	void *p = devh_ptr(h, h->fq + (uint64_t)h->fq_head * sizeof(*f), sizeof(*f));

	if (!p || !h->fq_size)
		return false;
	memcpy(f, p, sizeof(*f));
	if ((maptbl_le16_to_cpu(f->flags) & MAPTBL_FAULT_F_PHASE) != h->fq_phase)
		return false;
	h->fq_head = (h->fq_head + 1) % h->fq_size;
	if (!h->fq_head)
		h->fq_phase ^= MAPTBL_FAULT_F_PHASE;
	wr32(h, 0, MAPTBL_REG_PF_FQ_HEAD, h->fq_head);
	return true;
}

int devh_io(struct devh *h, unsigned fn, unsigned op, uint64_t lba, uint32_t nblocks, uint64_t buf,
	    uint32_t *blocks)
{
	uint32_t bs = rd32(h, fn, MAPTBL_REG_BLOCK_SIZE);
	struct maptbl_hw_req q;
	struct maptbl_hw_cpl c;

	devh_req(&q, op, 0x5A00u + op, lba, nblocks, buf,
		 op == MAPTBL_OP_READ || op == MAPTBL_OP_WRITE ? nblocks * bs : 0);
	devh_submit(h, fn, &q);
	mtdev_process(h->d, 0);
	if (!devh_reap(h, fn, &c))
		return -1;
	if (blocks)
		*blocks = maptbl_le32_to_cpu(c.blocks);
	return maptbl_le16_to_cpu(c.status);
}
