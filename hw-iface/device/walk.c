/* SPDX-License-Identifier: MIT */
/*
 * walk.c - the device's table walker, node cache and extent cache (REGISTERS.md §5.1, §5.3, §7).
 *
 * A second, independent reader of docs/FORMAT.md: it includes only maptbl/format.h and
 * maptbl/hw_regs.h, never libmaptbl's code, and tests/unit/device holds it against libmaptbl's
 * reference walker. It fetches the table through the PF's DMA callback and trusts nothing it
 * reads: each node is checked whole when it is fetched (before it enters the node cache) and
 * against its parent's entry each time a walk uses it. A bad table gives a table error code,
 * never a crash and never a read outside [TABLE_BASE, TABLE_BASE + TABLE_LEN).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

uint32_t mtdev_crc32c(const struct mtdev *d, uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--)
		crc = d->crc_tab[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

static bool pow2_in(uint64_t x, uint64_t lo, uint64_t hi)
{
	return x >= lo && x <= hi && !(x & (x - 1));
}

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* PF DMA read of table bytes [off, off + len): inside the latched table, checked by callers. */
static int tread(struct mtdev *d, const struct mtdev_table *t, uint64_t off, void *buf, size_t len)
{
	return d->ops.dma_read(d->ctx, 0, t->base + off, buf, len);
}

/*
 * Latch the VF configuration registers into f->tbl after checking the header (§5.1). On failure
 * f->tbl is left as it was and the table error is returned.
 */
unsigned mtdev_table_latch(struct mtdev *d, struct mtdev_fn *f)
{
	const struct mtdev_vfcfg *c = &f->cfg;
	struct mtdev_table t;
	struct maptbl_header h;
	uint32_t hlen;
	unsigned i;

	memset(&t, 0, sizeof(t));
	t.base = c->table_base;
	t.len = c->table_len;
	t.virt_blocks = c->virt_blocks;
	t.check_crc = c->ctrl & MAPTBL_VFCFG_CTRL_CHECK_CRC;
	if (t.base % 8 || t.len < MAPTBL_MIN_NODE_SIZE || !mtdev_range_ok(t.base, t.len) ||
	    !t.virt_blocks || t.virt_blocks > MAPTBL_MAX_BLK) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
			  "VF %u: table base 0x%llx, length %llu, virtual size %llu refused", f->num,
			  (unsigned long long)t.base, (unsigned long long)t.len,
			  (unsigned long long)t.virt_blocks);
		return MAPTBL_TERR_BAD_CONFIG;
	}
	if (tread(d, &t, 0, &h, sizeof(h))) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u: table header at 0x%llx not readable",
			  f->num, (unsigned long long)t.base);
		return MAPTBL_TERR_DMA;
	}
	for (i = 0; i < MAPTBL_MAGIC_LEN; i++)
		if (h.magic[i] != (uint8_t)MAPTBL_MAGIC_STR[i])
			goto bad_header;
	t.incompat = maptbl_le64_to_cpu(h.incompat);
	if (maptbl_le16_to_cpu(h.version) != MAPTBL_VERSION || (t.incompat & ~MAPTBL_INCOMPAT_KNOWN)) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u: table version %u, incompat 0x%llx: unsupported",
			  f->num, maptbl_le16_to_cpu(h.version), (unsigned long long)t.incompat);
		return MAPTBL_TERR_UNSUPPORTED;
	}
	hlen = maptbl_le16_to_cpu(h.header_len);
	t.block_size = maptbl_le32_to_cpu(h.block_size);
	t.node_size = maptbl_le32_to_cpu(h.node_size);
	t.tbl_blocks = maptbl_le64_to_cpu(h.virtual_blocks);
	t.disk_blocks = maptbl_le64_to_cpu(h.disk_blocks);
	if (!pow2_in(t.block_size, MAPTBL_MIN_BLOCK_SIZE, MAPTBL_MAX_BLOCK_SIZE) ||
	    !pow2_in(t.node_size, MAPTBL_MIN_NODE_SIZE, MAPTBL_MAX_NODE_SIZE) ||
	    hlen < MAPTBL_HEADER_SIZE || hlen % 8 || hlen > t.node_size ||
	    maptbl_le64_to_cpu(h.table_len) < t.node_size ||
	    maptbl_le64_to_cpu(h.table_len) % t.node_size ||
	    maptbl_le64_to_cpu(h.table_len) / t.node_size > (UINT64_C(1) << 32) ||
	    t.tbl_blocks > MAPTBL_MAX_BLK || t.disk_blocks > MAPTBL_MAX_BLK ||
	    !zero(h.reserved, sizeof(h.reserved)))
		goto bad_header;
	if (maptbl_le64_to_cpu(h.table_len) != t.len || t.block_size != c->block_size) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR,
			  "VF %u: header says table_len %llu, block_size %u; registers %llu, %u",
			  f->num, (unsigned long long)maptbl_le64_to_cpu(h.table_len), t.block_size,
			  (unsigned long long)t.len, c->block_size);
		return MAPTBL_TERR_MISMATCH;
	}
	if (t.check_crc) {
		uint8_t *buf = d->scratch;
		uint32_t crc;

		if (tread(d, &t, 0, buf, hlen))
			return MAPTBL_TERR_DMA;
		crc = mtdev_crc32c(d, 0, buf, 12);
		crc = mtdev_crc32c(d, crc, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
		crc = mtdev_crc32c(d, crc, buf + 24, hlen - 24);
		if (crc != maptbl_le32_to_cpu(h.header_crc)) {
			mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u: table header CRC32C 0x%08x, computed 0x%08x",
				  f->num, maptbl_le32_to_cpu(h.header_crc), crc);
			return MAPTBL_TERR_BAD_HEADER;
		}
	}
	t.nslots = t.len / t.node_size;
	t.valid = true;
	f->tbl = t;
	mtdev_cache_flush(d, f->num);
	return MAPTBL_TERR_NONE;

bad_header:
	mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u: table header at 0x%llx is malformed", f->num,
		  (unsigned long long)t.base);
	return MAPTBL_TERR_BAD_HEADER;
}

/* ---- Caches ---- */

/* ---- Node cache links (index + 1; 0 = none) ---- */

static uint32_t nc_bucket(const struct mtdev *d, unsigned fn, uint32_t node)
{
	return (uint32_t)((node * UINT64_C(0x9E3779B1) + fn * UINT64_C(0x85EBCA77)) >> 7) &
	       d->nc_hmask;
}

static void lru_unlink(struct mtdev *d, uint32_t i)
{
	struct mtdev_nc_entry *e = &d->nc[i - 1];

	if (e->prev)
		d->nc[e->prev - 1].next = e->next;
	else
		d->lru_head = e->next;
	if (e->next)
		d->nc[e->next - 1].prev = e->prev;
	else
		d->lru_tail = e->prev;
	e->prev = e->next = 0;
}

static void lru_front(struct mtdev *d, uint32_t i)
{
	struct mtdev_nc_entry *e = &d->nc[i - 1];

	e->next = d->lru_head;
	e->prev = 0;
	if (d->lru_head)
		d->nc[d->lru_head - 1].prev = i;
	else
		d->lru_tail = i;
	d->lru_head = i;
}

static void lru_back(struct mtdev *d, uint32_t i)
{
	struct mtdev_nc_entry *e = &d->nc[i - 1];

	e->prev = d->lru_tail;
	e->next = 0;
	if (d->lru_tail)
		d->nc[d->lru_tail - 1].next = i;
	else
		d->lru_head = i;
	d->lru_tail = i;
}

static void hash_remove(struct mtdev *d, uint32_t i)
{
	struct mtdev_nc_entry *e = &d->nc[i - 1];
	uint32_t *link = &d->nc_hash[nc_bucket(d, e->fn, e->node)];

	while (*link && *link != i)
		link = &d->nc[*link - 1].hnext;
	if (*link)
		*link = e->hnext;
	e->hnext = 0;
}

/* Drop entry @i (1-based) from the node cache: out of its chain, to the LRU tail. */
static void nc_drop(struct mtdev *d, uint32_t i)
{
	if (d->nc[i - 1].valid)
		hash_remove(d, i);
	d->nc[i - 1].valid = false;
	lru_unlink(d, i);
	lru_back(d, i);
}

void mtdev_cache_init(struct mtdev *d)
{
	uint32_t i;

	d->lru_head = d->lru_tail = 0;
	for (i = 1; i <= d->nc_n; i++) {
		d->nc[i - 1].valid = false;
		d->nc[i - 1].hnext = 0;
		lru_back(d, i);
	}
	for (i = 0; i <= d->nc_hmask; i++)
		d->nc_hash[i] = 0;
	for (i = 0; i < d->xc_n; i++)
		d->xc[i].valid = false;
}

void mtdev_cache_flush(struct mtdev *d, unsigned fn)
{
	unsigned i;

	for (i = 0; i < d->xc_n; i++)
		if (!fn || d->xc[i].fn == fn)
			d->xc[i].valid = false;
	for (i = 1; i <= d->nc_n; i++)
		if (d->nc[i - 1].valid && (!fn || d->nc[i - 1].fn == fn))
			nc_drop(d, i);
}

static bool xc_lookup(struct mtdev *d, unsigned fn, uint64_t lba, struct mtdev_xlat *out)
{
	unsigned i;

	for (i = 0; i < d->xc_n; i++) {
		const struct mtdev_xc_entry *e = &d->xc[i];

		if (e->valid && e->fn == fn && lba >= e->x.lba && lba - e->x.lba < e->x.len) {
			out->lba = lba;
			out->len = e->x.len - (lba - e->x.lba);
			out->state = e->x.state;
			out->pblk = e->x.state == MTDEV_MAPPED || e->x.state == MTDEV_UNWRITTEN
					    ? e->x.pblk + (lba - e->x.lba) : 0;
			return true;
		}
	}
	return false;
}

/* FIFO replacement, like NeSC's BTLB (the oldest entry goes). */
static void xc_insert(struct mtdev *d, unsigned fn, const struct mtdev_xlat *x)
{
	struct mtdev_xc_entry *e;

	if (!d->xc_n)
		return;
	e = &d->xc[d->xc_next];
	d->xc_next = (d->xc_next + 1) % d->xc_n;
	e->valid = true;
	e->fn = fn;
	e->x = *x;
}

/* ---- Nodes ---- */

/* A decoded entry. */
struct ent {
	uint64_t start, end, pblk;
	uint32_t child;
	bool unwritten;
};

static void get_ent(const uint8_t *node, unsigned kind, uint32_t i, struct ent *e)
{
	const uint8_t *p = node + MAPTBL_NODE_HDR_SIZE + (size_t)i * maptbl_entry_size(kind);
	uint64_t len = 0;

	e->pblk = 0;
	e->child = 0;
	e->unwritten = false;
	switch (kind) {
	case MAPTBL_NODE_INDEX: {
		const struct maptbl_index_entry *x = (const void *)p;

		e->start = maptbl_index_first(x);
		len = maptbl_index_nblocks(x);
		e->child = maptbl_le32_to_cpu(x->child);
		break;
	}
	case MAPTBL_NODE_LEAF_COMPACT: {
		const struct maptbl_compact_entry *x = (const void *)p;

		e->start = maptbl_le64_to_cpu(((const struct maptbl_node_hdr *)node)->base_lblk) +
			   maptbl_le32_to_cpu(x->lblk_off);
		len = maptbl_compact_len(x);
		e->pblk = maptbl_compact_pblk(x);
		e->unwritten = maptbl_le16_to_cpu(x->len_flags) & MAPTBL_COMPACT_UNWRITTEN;
		break;
	}
	default: {
		const struct maptbl_wide_entry *x = (const void *)p;

		e->start = maptbl_le64_to_cpu(x->lblk);
		len = maptbl_wide_len(x);
		e->pblk = maptbl_le64_to_cpu(x->pblk);
		e->unwritten = maptbl_le16_to_cpu(x->flags) & MAPTBL_WIDE_UNWRITTEN;
		break;
	}
	}
	/* Callers checked start < MAX_BLK and len <= MAX_BLK - start: no overflow. */
	e->end = e->start + len;
}

/*
 * Check node @n (bytes in @node) on its own, all of it (§5.3): everything that does not depend
 * on the path that reached it.
 */
static unsigned check_node(struct mtdev *d, const struct mtdev_table *t, uint32_t n,
			   const uint8_t *node)
{
	const struct maptbl_node_hdr *h = (const void *)node;
	unsigned kind = h->kind, level = h->level;
	uint32_t nr = maptbl_le16_to_cpu(h->nr_entries), esz = maptbl_entry_size(kind), i, used;
	uint64_t base = maptbl_le64_to_cpu(h->base_lblk), prev_end = 0;

	if (maptbl_le16_to_cpu(h->magic) != MAPTBL_NODE_MAGIC || maptbl_le32_to_cpu(h->self) != n ||
	    !esz || (kind == MAPTBL_NODE_LEAF_WIDE && !(t->incompat & MAPTBL_INCOMPAT_WIDE_LEAF)) ||
	    (kind == MAPTBL_NODE_INDEX ? level < 1 || level > MAPTBL_MAX_LEVEL : level != 0) ||
	    nr < 1 || nr > maptbl_node_capacity(t->node_size, kind) ||
	    maptbl_le16_to_cpu(h->flags) || maptbl_le64_to_cpu(h->reserved) || base >= MAPTBL_MAX_BLK)
		return MAPTBL_TERR_BAD_NODE;
	used = MAPTBL_NODE_HDR_SIZE + nr * esz;
	if (t->check_crc) {
		uint32_t crc = mtdev_crc32c(d, 0, node, 8);

		crc = mtdev_crc32c(d, crc, "\0\0\0\0", 4);
		crc = mtdev_crc32c(d, crc, node + 12, used - 12);
		if (crc != maptbl_le32_to_cpu(h->crc))
			return MAPTBL_TERR_BAD_CRC;
	}
	if (!zero(node + used, t->node_size - used))
		return MAPTBL_TERR_BAD_NODE;
	for (i = 0; i < nr; i++) {
		const uint8_t *p = node + MAPTBL_NODE_HDR_SIZE + (size_t)i * esz;
		uint64_t start, len, pblk = 0;
		uint32_t child = 0;

		if (kind == MAPTBL_NODE_INDEX) {
			const struct maptbl_index_entry *x = (const void *)p;

			start = maptbl_index_first(x);
			len = maptbl_index_nblocks(x);
			child = maptbl_le32_to_cpu(x->child);
		} else if (kind == MAPTBL_NODE_LEAF_COMPACT) {
			const struct maptbl_compact_entry *x = (const void *)p;

			start = base + maptbl_le32_to_cpu(x->lblk_off);
			len = maptbl_compact_len(x);
			pblk = maptbl_compact_pblk(x);
		} else {
			const struct maptbl_wide_entry *x = (const void *)p;

			start = maptbl_le64_to_cpu(x->lblk);
			len = maptbl_wide_len(x);
			pblk = maptbl_le64_to_cpu(x->pblk);
			if (maptbl_le16_to_cpu(x->flags) & ~MAPTBL_WIDE_UNWRITTEN)
				return MAPTBL_TERR_BAD_NODE;
		}
		if (!len || start >= MAPTBL_MAX_BLK || len > MAPTBL_MAX_BLK - start ||
		    (i == 0 && start != base) || (i > 0 && start < prev_end) ||
		    start + len > t->tbl_blocks)
			return MAPTBL_TERR_BAD_NODE;
		prev_end = start + len;
		if (kind == MAPTBL_NODE_INDEX) {
			if (child >= t->nslots)
				return MAPTBL_TERR_BAD_NODE;
			continue;
		}
		if (pblk >= MAPTBL_MAX_BLK || len > MAPTBL_MAX_BLK - pblk ||
		    (t->disk_blocks && pblk + len > t->disk_blocks))
			return MAPTBL_TERR_BAD_NODE;
	}
	return MAPTBL_TERR_NONE;
}

/*
 * Node @n of VF @f's table: from the node cache, or fetched by DMA and checked. *out points to
 * node_size bytes valid until the next get_node().
 */
static unsigned get_node(struct mtdev *d, struct mtdev_fn *f, uint32_t n, const uint8_t **out)
{
	const struct mtdev_table *t = &f->tbl;
	struct mtdev_nc_entry *victim = NULL;
	uint8_t *buf = d->scratch;
	uint32_t i, v = 0;
	unsigned terr;

	if (d->nc_n) {
		for (i = d->nc_hash[nc_bucket(d, f->num, n)]; i; i = d->nc[i - 1].hnext) {
			struct mtdev_nc_entry *e = &d->nc[i - 1];

			if (e->fn == f->num && e->node == n && e->size == t->node_size) {
				lru_unlink(d, i);
				lru_front(d, i);
				f->stats[MAPTBL_STAT_NC_HITS]++;
				*out = e->buf;
				return MAPTBL_TERR_NONE;
			}
		}
		v = d->lru_tail;	/* the least recently used, or a free entry */
		nc_drop(d, v);
		victim = &d->nc[v - 1];
		if (victim->cap < t->node_size) {
			uint8_t *nb = realloc(victim->buf, t->node_size);

			if (nb) {
				victim->buf = nb;
				victim->cap = t->node_size;
			}
		}
		if (victim->cap >= t->node_size)
			buf = victim->buf;
		else
			victim = NULL;	/* out of memory: walk uncached */
	}
	f->stats[MAPTBL_STAT_NC_MISSES]++;
	/* n < nslots, so [n * node_size, + node_size) lies inside the table. */
	if (tread(d, t, (uint64_t)n * t->node_size, buf, t->node_size))
		return MAPTBL_TERR_DMA;
	terr = check_node(d, t, n, buf);
	if (terr)
		return terr;
	if (victim) {
		uint32_t b = nc_bucket(d, f->num, n);

		victim->valid = true;
		victim->fn = f->num;
		victim->node = n;
		victim->size = t->node_size;
		victim->hnext = d->nc_hash[b];
		d->nc_hash[b] = v;
		lru_unlink(d, v);
		lru_front(d, v);
	}
	*out = buf;
	return MAPTBL_TERR_NONE;
}

/* FORMAT.md §8, with every node checked (§5.3). */
static unsigned walk(struct mtdev *d, struct mtdev_fn *f, uint64_t lba, struct mtdev_xlat *x)
{
	const struct mtdev_table *t = &f->tbl;
	uint64_t lo = 0, hi = t->tbl_blocks;
	unsigned parent_level = MAPTBL_MAX_LEVEL + 1, depth, terr;
	bool exact = false;
	uint8_t live[8];
	uint32_t n;

	if (tread(d, t, 16, live, sizeof(live)))
		return MAPTBL_TERR_DMA;
	n = (uint32_t)live[0] | (uint32_t)live[1] << 8 | (uint32_t)live[2] << 16 |
	    (uint32_t)live[3] << 24;
	f->cfg.root = n;
	f->cfg.generation = (uint32_t)live[4] | (uint32_t)live[5] << 8 |
			    (uint32_t)live[6] << 16 | (uint32_t)live[7] << 24;
	if (n >= t->nslots)
		return MAPTBL_TERR_BAD_HEADER;
	x->lba = lba;
	x->pblk = 0;
	if (!n) {
		x->state = MTDEV_HOLE;
		x->len = hi - lba;
		return MAPTBL_TERR_NONE;
	}
	for (depth = 0; depth < MAPTBL_MAX_DEPTH; depth++) {
		const uint8_t *node;
		const struct maptbl_node_hdr *h;
		uint32_t nr, lo_i, cnt;
		unsigned kind, level;
		struct ent e, first, last;

		terr = get_node(d, f, n, &node);
		if (terr)
			return terr;
		f->stats[MAPTBL_STAT_NODES]++;
		h = (const void *)node;
		kind = h->kind;
		level = h->level;
		nr = maptbl_le16_to_cpu(h->nr_entries);
		if (level >= parent_level)
			return MAPTBL_TERR_BAD_NODE;
		get_ent(node, kind, 0, &first);
		get_ent(node, kind, nr - 1, &last);
		if (first.start < lo || last.end > hi || (exact && (first.start != lo || last.end != hi)))
			return MAPTBL_TERR_BAD_NODE;
		if (lba < first.start) {
			x->state = MTDEV_HOLE;
			x->len = first.start - lba;
			return MAPTBL_TERR_NONE;
		}
		/* Last entry starting at or before lba (entries are sorted: check_node). */
		lo_i = 0;
		cnt = nr;
		while (cnt > 1) {
			uint32_t half = cnt / 2;

			get_ent(node, kind, lo_i + half, &e);
			if (e.start <= lba)
				lo_i += half;
			cnt -= half;
		}
		get_ent(node, kind, lo_i, &e);
		if (lba >= e.end) {
			uint64_t next = hi;

			if (lo_i + 1 < nr) {
				struct ent nx;

				get_ent(node, kind, lo_i + 1, &nx);
				next = nx.start;
			}
			x->state = MTDEV_HOLE;
			x->len = next - lba;
			return MAPTBL_TERR_NONE;
		}
		if (kind == MAPTBL_NODE_INDEX) {
			if (!e.child) {
				x->state = MTDEV_ABSENT;
				x->len = e.end - lba;
				return MAPTBL_TERR_NONE;
			}
			n = e.child;
			lo = e.start;
			hi = e.end;
			exact = true;
			parent_level = level;
			continue;
		}
		x->state = e.unwritten ? MTDEV_UNWRITTEN : MTDEV_MAPPED;
		x->pblk = e.pblk + (lba - e.start);
		x->len = e.end - lba;
		return MAPTBL_TERR_NONE;
	}
	return MAPTBL_TERR_BAD_NODE;	/* unreachable: levels strictly decrease from <= 15 */
}

/*
 * Translate virtual block @lba of VF @f (lba < tbl.virt_blocks) into one run. Returns a table
 * error, or 0 with *out filled (out->len >= 1).
 */
unsigned mtdev_translate(struct mtdev *d, struct mtdev_fn *f, uint64_t lba,
			 struct mtdev_xlat *out)
{
	unsigned terr;

	if (lba >= f->tbl.tbl_blocks) {
		/* Past the table's virtual size, inside the VF's: a hole (REGISTERS.md §5). */
		out->lba = lba;
		out->len = f->tbl.virt_blocks - lba;
		out->pblk = 0;
		out->state = MTDEV_HOLE;
		return MAPTBL_TERR_NONE;
	}
	if (xc_lookup(d, f->num, lba, out)) {
		f->stats[MAPTBL_STAT_XC_HITS]++;
		return MAPTBL_TERR_NONE;
	}
	f->stats[MAPTBL_STAT_XC_MISSES]++;
	f->stats[MAPTBL_STAT_WALKS]++;
	terr = walk(d, f, lba, out);
	if (terr) {
		mtdev_log(d, MTDEV_LOG_GUEST_ERROR, "VF %u: walk for block %llu: table error %u",
			  f->num, (unsigned long long)lba, terr);
		return terr;
	}
	if (out->state != MTDEV_ABSENT)
		xc_insert(d, f->num, out);
	return MAPTBL_TERR_NONE;
}
