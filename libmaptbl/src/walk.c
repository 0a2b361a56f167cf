/* SPDX-License-Identifier: MIT */
/*
 * walk.c - the reference walker (maptbl/walk.h): FORMAT.md §8 reading the table only through the
 * caller's read callback, one node-sized read per level, the way a device walks it with DMA.
 *
 * Freestanding: no libc calls, no allocation, no errno. Built and tested with -ffreestanding.
 * It trusts nothing it reads: every node on the path is checked (magic, self, kind, level below
 * the parent's, entry count) and every answer is checked against the range the parent promised,
 * so a corrupt table gives a status, never a wrong read outside the table.
 */
#include <stddef.h>
#include <stdint.h>

#include "maptbl/format.h"
#include "maptbl/walk.h"

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static int all_zero(const uint8_t *p, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static uint32_t header_crc(const uint8_t *h, uint32_t len)
{
	static const uint8_t zero[12];
	uint32_t crc = maptbl_crc32c(0, h, 12);

	crc = maptbl_crc32c(crc, zero, 12);
	return maptbl_crc32c(crc, h + 24, len - 24);
}

static enum maptbl_walk_status walk_init(struct maptbl_walker *w, maptbl_walk_read_fn read,
					 void *ctx, void *scratch, uint32_t scratch_len,
					 uint32_t flags)
{
	const struct maptbl_header *h;
	uint32_t hlen, i;

	if (!w || !read || !scratch || scratch_len < MAPTBL_HEADER_SIZE ||
	    (flags & ~MAPTBL_WALK_CHECK_CRC))
		return MAPTBL_WALK_BAD_ARG;
	for (i = 0; i < sizeof(*w); i++)
		((uint8_t *)w)[i] = 0;
	w->read = read;
	w->ctx = ctx;
	w->scratch = scratch;
	w->scratch_len = scratch_len;
	w->flags = flags;
	if (read(ctx, 0, scratch, MAPTBL_HEADER_SIZE))
		return MAPTBL_WALK_READ_ERROR;
	h = (const struct maptbl_header *)w->scratch;
	for (i = 0; i < MAPTBL_MAGIC_LEN; i++)
		if (h->magic[i] != (uint8_t)MAPTBL_MAGIC_STR[i])
			return MAPTBL_WALK_BAD_HEADER;
	if (maptbl_le16_to_cpu(h->version) != MAPTBL_VERSION ||
	    (maptbl_le64_to_cpu(h->incompat) & ~MAPTBL_INCOMPAT_KNOWN))
		return MAPTBL_WALK_UNSUPPORTED;
	w->block_size = maptbl_le32_to_cpu(h->block_size);
	w->node_size = maptbl_le32_to_cpu(h->node_size);
	w->virtual_blocks = maptbl_le64_to_cpu(h->virtual_blocks);
	w->disk_blocks = maptbl_le64_to_cpu(h->disk_blocks);
	w->table_len = maptbl_le64_to_cpu(h->table_len);
	w->incompat = maptbl_le64_to_cpu(h->incompat);
	hlen = maptbl_le16_to_cpu(h->header_len);
	if (!is_pow2(w->block_size) || w->block_size < MAPTBL_MIN_BLOCK_SIZE ||
	    w->block_size > MAPTBL_MAX_BLOCK_SIZE || !is_pow2(w->node_size) ||
	    w->node_size < MAPTBL_MIN_NODE_SIZE || w->node_size > MAPTBL_MAX_NODE_SIZE ||
	    hlen < MAPTBL_HEADER_SIZE || hlen % 8 || hlen > w->node_size ||
	    w->table_len < w->node_size || w->table_len % w->node_size ||
	    w->table_len / w->node_size > (UINT64_C(1) << 32) ||
	    w->virtual_blocks > MAPTBL_MAX_BLK || w->disk_blocks > MAPTBL_MAX_BLK ||
	    !all_zero(h->reserved, sizeof(h->reserved)))
		return MAPTBL_WALK_BAD_HEADER;
	if (w->node_size > scratch_len)
		return MAPTBL_WALK_BAD_ARG;
	if (flags & MAPTBL_WALK_CHECK_CRC) {
		if (hlen > MAPTBL_HEADER_SIZE && read(ctx, 0, scratch, hlen))
			return MAPTBL_WALK_READ_ERROR;
		if (header_crc(w->scratch, hlen) !=
		    maptbl_le32_to_cpu(((const struct maptbl_header *)w->scratch)->header_crc))
			return MAPTBL_WALK_BAD_HEADER;
	}
	w->root = maptbl_le32_to_cpu(h->root);
	w->generation = maptbl_le32_to_cpu(h->generation);
	return MAPTBL_WALK_OK;
}

MAPTBL_API enum maptbl_walk_status maptbl_walk_init(struct maptbl_walker *w,
						    maptbl_walk_read_fn read, void *ctx,
						    void *scratch, uint32_t scratch_len,
						    uint32_t flags)
{
	enum maptbl_walk_status st = walk_init(w, read, ctx, scratch, scratch_len, flags);

	/*
	 * A walker whose init failed must not walk: node_size may already hold an unchecked value
	 * (larger than the scratch, say). maptbl_walk_lookup() refuses node_size 0 with BAD_ARG.
	 */
	if (st != MAPTBL_WALK_OK && w)
		w->node_size = 0;
	return st;
}

/* Start, end and (leaves) physical block and unwritten flag of entry i of a checked node. */
struct went {
	uint64_t start, end, pblk;
	uint32_t child;
	int unwritten;
};

static int get_entry(const uint8_t *node, unsigned kind, uint32_t i, struct went *e)
{
	const uint8_t *p = node + MAPTBL_NODE_HDR_SIZE + (size_t)i * maptbl_entry_size(kind);
	uint64_t len;

	e->child = 0;
	e->pblk = 0;
	e->unwritten = 0;
	if (kind == MAPTBL_NODE_INDEX) {
		const struct maptbl_index_entry *x = (const struct maptbl_index_entry *)p;

		e->start = maptbl_index_first(x);
		len = maptbl_index_nblocks(x);
		e->child = maptbl_le32_to_cpu(x->child);
	} else if (kind == MAPTBL_NODE_LEAF_COMPACT) {
		const struct maptbl_compact_entry *x = (const struct maptbl_compact_entry *)p;
		uint64_t base = maptbl_le64_to_cpu(((const struct maptbl_node_hdr *)node)->base_lblk);

		if (base >= MAPTBL_MAX_BLK)
			return -1;
		e->start = base + maptbl_le32_to_cpu(x->lblk_off);
		len = maptbl_compact_len(x);
		e->pblk = maptbl_compact_pblk(x);
		e->unwritten = !!(maptbl_le16_to_cpu(x->len_flags) & MAPTBL_COMPACT_UNWRITTEN);
	} else {
		const struct maptbl_wide_entry *x = (const struct maptbl_wide_entry *)p;

		e->start = maptbl_le64_to_cpu(x->lblk);
		len = maptbl_wide_len(x);
		e->pblk = maptbl_le64_to_cpu(x->pblk);
		e->unwritten = !!(maptbl_le16_to_cpu(x->flags) & MAPTBL_WIDE_UNWRITTEN);
	}
	if (!len || e->start >= MAPTBL_MAX_BLK || len > MAPTBL_MAX_BLK - e->start)
		return -1;
	e->end = e->start + len;
	return 0;
}

MAPTBL_API enum maptbl_walk_status maptbl_walk_lookup(struct maptbl_walker *w, uint64_t lblk,
						      struct maptbl_walk_result *r)
{
	uint64_t lo = 0, hi, next, nslots;
	uint32_t n, parent_level = MAPTBL_MAX_LEVEL + 1, nodes = 0;
	uint8_t live[8];

	if (!w || !r || !w->read || !w->node_size)
		return MAPTBL_WALK_BAD_ARG;
	if (lblk >= w->virtual_blocks)
		return MAPTBL_WALK_OUT_OF_RANGE;
	/* One 8-byte read of the live word: root and generation of one publish. */
	if (w->read(w->ctx, 16, live, 8))
		return MAPTBL_WALK_READ_ERROR;
	w->root = (uint32_t)live[0] | (uint32_t)live[1] << 8 | (uint32_t)live[2] << 16 |
		  (uint32_t)live[3] << 24;
	w->generation = (uint32_t)live[4] | (uint32_t)live[5] << 8 | (uint32_t)live[6] << 16 |
			(uint32_t)live[7] << 24;
	nslots = w->table_len / w->node_size;
	hi = w->virtual_blocks;
	n = w->root;
	if (n >= nslots)
		return MAPTBL_WALK_BAD_HEADER;
	if (!n) {
		next = hi;
		goto hole;
	}
	for (;;) {
		const uint8_t *node = w->scratch;
		const struct maptbl_node_hdr *h = (const struct maptbl_node_hdr *)node;
		uint32_t nr, lo_i, cnt, used;
		unsigned kind, level;
		struct went e;

		if (w->read(w->ctx, (uint64_t)n * w->node_size, w->scratch, w->node_size))
			return MAPTBL_WALK_READ_ERROR;
		nodes++;
		kind = h->kind;
		level = h->level;
		nr = maptbl_le16_to_cpu(h->nr_entries);
		if (maptbl_le16_to_cpu(h->magic) != MAPTBL_NODE_MAGIC ||
		    maptbl_le32_to_cpu(h->self) != n || !maptbl_entry_size(kind) ||
		    (kind == MAPTBL_NODE_LEAF_WIDE && !(w->incompat & MAPTBL_INCOMPAT_WIDE_LEAF)) ||
		    (kind == MAPTBL_NODE_INDEX ? level < 1 : level != 0) || level >= parent_level ||
		    nr < 1 || nr > maptbl_node_capacity(w->node_size, kind))
			return MAPTBL_WALK_BAD_NODE;
		used = MAPTBL_NODE_HDR_SIZE + nr * maptbl_entry_size(kind);
		if ((w->flags & MAPTBL_WALK_CHECK_CRC) &&
		    maptbl_le32_to_cpu(h->crc) !=
			    maptbl_crc32c(maptbl_crc32c(maptbl_crc32c(0, node, 8),
							"\0\0\0\0", 4),
					  node + 12, used - 12))
			return MAPTBL_WALK_BAD_CRC;

		/* Binary search for the last entry starting at or before lblk. */
		lo_i = 0;
		cnt = nr;
		while (cnt > 1) {
			uint32_t half = cnt / 2;

			if (get_entry(node, kind, lo_i + half, &e))
				return MAPTBL_WALK_BAD_NODE;
			if (e.start <= lblk)
				lo_i += half;
			cnt -= half;
		}
		if (get_entry(node, kind, lo_i, &e))
			return MAPTBL_WALK_BAD_NODE;
		if (e.start > lblk) {
			/* Before the first entry (lo_i is 0 then): a hole up to it. */
			if (lo_i != 0 || e.start > hi)
				return MAPTBL_WALK_BAD_NODE;
			next = e.start;
			goto hole;
		}
		/* The entry must lie inside what the parent promised. */
		if (e.start < lo || e.end > hi)
			return MAPTBL_WALK_BAD_NODE;
		if (lblk >= e.end) {
			if (lo_i + 1 < nr) {
				struct went nx;

				if (get_entry(node, kind, lo_i + 1, &nx) || nx.start < e.end ||
				    nx.start > hi)
					return MAPTBL_WALK_BAD_NODE;
				next = nx.start;
			} else {
				next = hi;
			}
			goto hole;
		}
		if (kind == MAPTBL_NODE_INDEX) {
			if (!e.child) {
				r->state = MAPTBL_MAP_ABSENT;
				r->pblk = 0;
				r->len = e.end - lblk;
				r->nodes = nodes;
				return MAPTBL_WALK_OK;
			}
			if (e.child >= nslots)
				return MAPTBL_WALK_BAD_NODE;
			n = e.child;
			lo = e.start;
			hi = e.end;
			parent_level = level;
			continue;
		}
		if (e.pblk >= MAPTBL_MAX_BLK || e.end - e.start > MAPTBL_MAX_BLK - e.pblk ||
		    (w->disk_blocks && e.pblk + (e.end - e.start) > w->disk_blocks))
			return MAPTBL_WALK_BAD_NODE;
		r->state = e.unwritten ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED;
		r->pblk = e.pblk + (lblk - e.start);
		r->len = e.end - lblk;
		r->nodes = nodes;
		return MAPTBL_WALK_OK;
	}
hole:
	if (next <= lblk)
		return MAPTBL_WALK_BAD_NODE;
	r->state = MAPTBL_MAP_HOLE;
	r->pblk = 0;
	r->len = next - lblk;
	r->nodes = nodes;
	return MAPTBL_WALK_OK;
}
