/* SPDX-License-Identifier: MIT */
/*
 * count.c - filefrag's extent count and the rest of one file's statistics, fed one record at a
 * time: shared by the FIEMAP measurement (stats.c), the ext4 image scan (stats_image.c) and the
 * btrfs measurement from extent items (btrfs.c), so that all count alike.
 */
#include <stdbool.h>
#include <string.h>

#include <maptbl/stats.h>

#include "internal.h"

/* Records in logical order, byte units. */
void mtfs_count_init(struct mtfs_count *c, uint32_t bs)
{
	memset(c, 0, sizeof(*c));
	c->bs = bs ? bs : 4096;
}

void mtfs_count_record(struct mtfs_count *c, struct maptbl_file_stats *f, uint64_t logical,
		       uint64_t physical, uint64_t length, uint32_t flags)
{
	uint64_t expected = c->last_phys + logical - c->last_log;
	uint64_t dense = c->last_phys + c->last_len;
	uint32_t unw = flags & MTFS_REC_UNWRITTEN;

	/*
	 * filefrag's rule (misc/filefrag.c): a record starts a new extent unless it is at logical
	 * 0 or physically continues the previous one, densely or across a hole of the same size.
	 */
	if (logical != 0 && physical != expected && physical != dense)
		f->extents++;
	else if (!f->extents)
		f->extents = 1;
	f->records++;
	if (logical > c->end || (!c->any && logical > 0))
		f->holes++;
	f->unwritten += !!unw;
	f->shared += !!(flags & MTFS_REC_SHARED);
	c->bytes += length;
	/* The table's extents: records merged when logically and physically contiguous with the
	 * same unwritten flag, as libmaptbl-fs's make_extents() does. */
	if (c->any && unw == c->t_unw && logical == c->t_lend && physical == c->t_pend) {
		c->t_len += length;
	} else {
		if (c->any && (c->t_len + c->bs - 1) / c->bs > MAPTBL_COMPACT_MAX_LEN)
			f->table_long++;
		f->table_extents++;
		c->t_len = length;
		c->t_unw = unw;
	}
	c->t_lend = logical + length;
	c->t_pend = physical + length;
	c->any = 1;
	if (logical + length > c->end)
		c->end = logical + length;
	c->last_log = logical;
	c->last_phys = physical;
	c->last_len = length;
}

int mtfs_count_finish(struct mtfs_count *c, struct maptbl_file_stats *f, uint64_t size)
{
	struct maptbl_build_opts bo;
	struct maptbl_estimate est;
	int err;

	if (c->any && (c->t_len + c->bs - 1) / c->bs > MAPTBL_COMPACT_MAX_LEN)
		f->table_long++;
	if (size > c->end)
		f->holes++;
	f->size = size;
	f->block_size = c->bs;
	f->blocks = (c->bytes + c->bs - 1) / c->bs;
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.block_size = c->bs >= MAPTBL_MIN_BLOCK_SIZE && c->bs <= MAPTBL_MAX_BLOCK_SIZE ? c->bs : 0;
	err = maptbl_table_estimate(f->table_extents, f->table_long, &bo, &est);
	if (err)
		return err;
	f->table_bytes = est.bytes;
	f->table_nodes = est.nodes;
	f->table_depth = est.depth;
	return 0;
}

/* A bounded min-heap of @cap elements of @sz bytes (at most 64): @cand replaces the least when
 * it is not less than it (by @less). */
void mtfs_heap_offer(void *base, size_t *n, size_t cap, size_t sz, const void *cand,
		     bool (*less)(const void *a, const void *b))
{
	unsigned char *h = base, t[64];
	size_t i;

	if (!cap || sz > sizeof(t))
		return;
#define EL(k) (h + (k) * sz)
#define SWAP(a, b) (memcpy(t, EL(a), sz), memcpy(EL(a), EL(b), sz), memcpy(EL(b), t, sz))
	if (*n < cap) {
		i = (*n)++;
		memcpy(EL(i), cand, sz);
		for (; i && less(EL(i), EL((i - 1) / 2)); i = (i - 1) / 2)
			SWAP(i, (i - 1) / 2);
		return;
	}
	if (!less(EL(0), cand))
		return;
	memcpy(EL(0), cand, sz);
	for (i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < *n && less(EL(l), EL(m)))
			m = l;
		if (r < *n && less(EL(r), EL(m)))
			m = r;
		if (m == i)
			break;
		SWAP(i, m);
		i = m;
	}
#undef SWAP
#undef EL
}
