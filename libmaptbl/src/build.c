/* SPDX-License-Identifier: MIT */
/*
 * build.c - bulk-load a table from a sorted extent array (FORMAT.md; layout breadth-first, root in
 * node 1, leaves last).
 *
 * Two passes: the first decides the leaves (compact or wide, how many extents each) and the node
 * count of every level; the second writes every node once, at its final place, leaves first so
 * that each index level can be written from the ranges of the level below.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_BLOCK_SIZE 4096u

struct params {
	uint32_t block_size, node_size, fill_pct, generation;
	uint64_t virtual_blocks, disk_blocks;
	struct maptbl_diag *diag;
	const char *disk_path;
	size_t disk_path_len;
	uint64_t disk_id;
	uint64_t spare_nodes;
	uint32_t header_len;
};

struct leaf {
	size_t start;
	uint32_t count;
	uint32_t kind;
};

static int resolve_opts(const struct maptbl_build_opts *opts, struct params *p)
{
	struct maptbl_build_opts o;
	int err;

	memset(p, 0, sizeof(*p));
	err = mt_opts_copy(&o, opts, sizeof(o), "maptbl_build_opts");
	if (err)
		return err;
	p->block_size = o.block_size;
	p->node_size = o.node_size;
	p->fill_pct = o.fill_pct;
	p->generation = o.generation;
	p->virtual_blocks = o.virtual_blocks;
	p->disk_blocks = o.disk_blocks;
	p->diag = o.diag;
	p->disk_path = o.disk_path;
	p->disk_id = o.disk_id;
	p->spare_nodes = o.spare_nodes;
	if (p->diag) {
		memset(p->diag, 0, sizeof(*p->diag));
		p->diag->index = -1;
	}
	if (!p->block_size)
		p->block_size = DEFAULT_BLOCK_SIZE;
	if (!p->node_size)
		p->node_size = MAPTBL_DEFAULT_NODE_SIZE;
	if (!p->fill_pct)
		p->fill_pct = 100;
	if (!mt_is_pow2(p->block_size) || p->block_size < MAPTBL_MIN_BLOCK_SIZE ||
	    p->block_size > MAPTBL_MAX_BLOCK_SIZE) {
		mt_diag(p->diag, 0, -1, "block size %u is not a power of two from 512 to 65536",
			p->block_size);
		return -EINVAL;
	}
	if (!mt_is_pow2(p->node_size) || p->node_size < MAPTBL_MIN_NODE_SIZE ||
	    p->node_size > MAPTBL_MAX_NODE_SIZE) {
		mt_diag(p->diag, 0, -1, "node size %u is not a power of two from 256 to 65536",
			p->node_size);
		return -EINVAL;
	}
	if (p->fill_pct > 100) {
		mt_diag(p->diag, 0, -1, "fill %u%% is not from 1 to 100", p->fill_pct);
		return -EINVAL;
	}
	if (p->virtual_blocks > MAPTBL_MAX_BLK) {
		mt_diag(p->diag, 0, -1, "virtual size %llu blocks exceeds 2^48 blocks",
			(unsigned long long)p->virtual_blocks);
		return -EINVAL;
	}
	if (p->disk_blocks > MAPTBL_MAX_BLK) {
		mt_diag(p->diag, 0, -1, "disk size %llu blocks exceeds 2^48 blocks",
			(unsigned long long)p->disk_blocks);
		return -EINVAL;
	}
	/*
	 * The disk record (FORMAT.md §3.1) must fit the header slot, node 0, and header_len its 16
	 * bits: with 65536-byte nodes a header ends at 65528 at most.
	 */
	p->header_len = MAPTBL_HEADER_SIZE;
	if (p->disk_path || p->disk_id) {
		p->disk_path_len = p->disk_path ? strlen(p->disk_path) : 0;
		p->header_len = (uint32_t)((MAPTBL_DISK_PATH_OFFSET + p->disk_path_len + 7) & ~(size_t)7);
		if (p->disk_path_len > UINT16_MAX || p->header_len > p->node_size ||
		    p->header_len > UINT16_MAX) {
			mt_diag(p->diag, 0, -1,
				"disk path of %zu bytes does not fit the header of a %u-byte node",
				p->disk_path_len, p->node_size);
			return -EINVAL;
		}
	}
	return 0;
}

/* Checks the extents; *end gets the end of the last one. */
static int check_extents(const struct maptbl_extent *ext, size_t nr, const struct params *p,
			 uint64_t *end)
{
	uint64_t prev_end = 0;
	size_t i;

	for (i = 0; i < nr; i++) {
		const struct maptbl_extent *e = &ext[i];
		unsigned long long lb = (unsigned long long)e->lblk;

		if (MT_UNLIKELY(e->flags & ~MAPTBL_EXTENT_UNWRITTEN)) {
			mt_diag(p->diag, 0, (int64_t)i, "extent %zu (lblk %llu): unknown flags 0x%x",
				i, lb, e->flags & ~MAPTBL_EXTENT_UNWRITTEN);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(e->reserved)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (lblk %llu): reserved field 0x%x must be zero", i, lb,
				e->reserved);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(!e->len)) {
			mt_diag(p->diag, 0, (int64_t)i, "extent %zu (lblk %llu): length is 0", i, lb);
			return -EBADMSG;
		}
		/* Length fields hold 48 bits: 2^48 itself (only [0, 2^48) could have it) does not fit. */
		if (MT_UNLIKELY(e->len >= MAPTBL_MAX_BLK)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (lblk %llu): length %llu does not fit in 48 bits", i, lb,
				(unsigned long long)e->len);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(e->lblk >= MAPTBL_MAX_BLK || e->len > MAPTBL_MAX_BLK - e->lblk)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (lblk %llu, length %llu): logical end exceeds 2^48 blocks",
				i, lb, (unsigned long long)e->len);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(e->pblk >= MAPTBL_MAX_BLK || e->len > MAPTBL_MAX_BLK - e->pblk)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (pblk %llu, length %llu): physical end exceeds 2^48 blocks",
				i, (unsigned long long)e->pblk, (unsigned long long)e->len);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(i && e->lblk < prev_end)) {
			if (e->lblk < ext[i - 1].lblk)
				mt_diag(p->diag, 0, (int64_t)i,
					"extent %zu (lblk %llu): not sorted, follows lblk %llu", i, lb,
					(unsigned long long)ext[i - 1].lblk);
			else
				mt_diag(p->diag, 0, (int64_t)i,
					"extent %zu (lblk %llu): overlaps extent %zu, which ends at block %llu",
					i, lb, i - 1, (unsigned long long)prev_end);
			return -EBADMSG;
		}
		if (MT_UNLIKELY(p->disk_blocks && e->pblk + e->len > p->disk_blocks)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (pblk %llu, length %llu): ends past the disk's %llu blocks",
				i, (unsigned long long)e->pblk, (unsigned long long)e->len,
				(unsigned long long)p->disk_blocks);
			return -EBADMSG;
		}
		prev_end = e->lblk + e->len;
		if (MT_UNLIKELY(p->virtual_blocks && prev_end > p->virtual_blocks)) {
			mt_diag(p->diag, 0, (int64_t)i,
				"extent %zu (lblk %llu): ends at block %llu, past the virtual disk's %llu blocks",
				i, lb, (unsigned long long)prev_end,
				(unsigned long long)p->virtual_blocks);
			return -EBADMSG;
		}
	}
	*end = prev_end;
	return 0;
}

MAPTBL_API int maptbl_extents_check(const struct maptbl_extent *ext, size_t nr,
				    const struct maptbl_build_opts *opts)
{
	struct params p;
	uint64_t end;
	int err;

	if (!ext && nr)
		return -EINVAL;
	err = resolve_opts(opts, &p);
	if (err)
		return err;
	return check_extents(ext, nr, &p, &end);
}

/* How many extents from @i fit one compact leaf based at ext[i].lblk (at most @max). */
static uint32_t compact_run(const struct maptbl_extent *ext, size_t nr, size_t i, uint32_t max)
{
	uint64_t base = ext[i].lblk;
	uint32_t k = 0;

	while (k < max && i + k < nr && ext[i + k].len <= MAPTBL_COMPACT_MAX_LEN &&
	       ext[i + k].lblk - base <= MAPTBL_COMPACT_MAX_OFF)
		k++;
	return k;
}

void mt_write_node_hdr(uint8_t *node, unsigned kind, unsigned level, uint32_t nr, uint32_t self,
		       uint64_t base, uint32_t node_size)
{
	struct maptbl_node_hdr *h = (struct maptbl_node_hdr *)node;
	uint32_t used = MAPTBL_NODE_HDR_SIZE + nr * maptbl_entry_size(kind);

	h->magic = maptbl_cpu_to_le16(MAPTBL_NODE_MAGIC);
	h->kind = (uint8_t)kind;
	h->level = (uint8_t)level;
	h->nr_entries = maptbl_cpu_to_le16((uint16_t)nr);
	h->flags = maptbl_cpu_to_le16(0);
	h->crc = maptbl_cpu_to_le32(0);
	h->self = maptbl_cpu_to_le32(self);
	h->base_lblk = maptbl_cpu_to_le64(base);
	h->reserved = maptbl_cpu_to_le64(0);
	memset(node + used, 0, node_size - used);
	h->crc = maptbl_cpu_to_le32(mt_node_crc(node, used));
}

static void write_leaf(uint8_t *node, const struct maptbl_extent *ext, const struct leaf *lf,
		       uint32_t self, uint32_t node_size)
{
	const struct maptbl_extent *e = ext + lf->start;
	uint64_t base = e->lblk;
	uint32_t j;

	if (lf->kind == MAPTBL_NODE_LEAF_COMPACT) {
		struct maptbl_compact_entry *c =
			(struct maptbl_compact_entry *)(node + MAPTBL_NODE_HDR_SIZE);

		for (j = 0; j < lf->count; j++, e++, c++) {
			uint16_t lf16 = (uint16_t)(e->len - 1);

			if (e->flags & MAPTBL_EXTENT_UNWRITTEN)
				lf16 |= MAPTBL_COMPACT_UNWRITTEN;
			c->lblk_off = maptbl_cpu_to_le32((uint32_t)(e->lblk - base));
			c->len_flags = maptbl_cpu_to_le16(lf16);
			c->pblk_hi = maptbl_cpu_to_le16((uint16_t)(e->pblk >> 32));
			c->pblk_lo = maptbl_cpu_to_le32((uint32_t)e->pblk);
		}
	} else {
		struct maptbl_wide_entry *w =
			(struct maptbl_wide_entry *)(node + MAPTBL_NODE_HDR_SIZE);

		for (j = 0; j < lf->count; j++, e++, w++) {
			w->lblk = maptbl_cpu_to_le64(e->lblk);
			w->pblk = maptbl_cpu_to_le64(e->pblk);
			w->len_lo = maptbl_cpu_to_le32((uint32_t)e->len);
			w->len_hi = maptbl_cpu_to_le16((uint16_t)(e->len >> 32));
			w->flags = maptbl_cpu_to_le16(
				e->flags & MAPTBL_EXTENT_UNWRITTEN ? MAPTBL_WIDE_UNWRITTEN : 0);
		}
	}
	mt_write_node_hdr(node, lf->kind, 0, lf->count, self, base, node_size);
}

static void write_header(uint8_t *buf, const struct params *p, uint32_t root, uint64_t incompat,
			 uint64_t table_len)
{
	struct maptbl_header *h = (struct maptbl_header *)buf;

	memset(buf, 0, p->node_size);
	memcpy(h->magic, MAPTBL_MAGIC_STR, MAPTBL_MAGIC_LEN);
	h->version = maptbl_cpu_to_le16(MAPTBL_VERSION);
	h->header_len = maptbl_cpu_to_le16((uint16_t)p->header_len);
	h->root = maptbl_cpu_to_le32(root);
	h->generation = maptbl_cpu_to_le32(p->generation);
	h->incompat = maptbl_cpu_to_le64(incompat);
	h->block_size = maptbl_cpu_to_le32(p->block_size);
	h->node_size = maptbl_cpu_to_le32(p->node_size);
	h->virtual_blocks = maptbl_cpu_to_le64(p->virtual_blocks);
	h->disk_blocks = maptbl_cpu_to_le64(p->disk_blocks);
	h->table_len = maptbl_cpu_to_le64(table_len);
	if (p->header_len > MAPTBL_HEADER_SIZE) {
		struct maptbl_disk_info *d = (struct maptbl_disk_info *)(buf + MAPTBL_DISK_INFO_OFFSET);

		h->compat = maptbl_cpu_to_le64(MAPTBL_COMPAT_DISK_INFO);
		d->disk_id = maptbl_cpu_to_le64(p->disk_id);
		d->path_len = maptbl_cpu_to_le16((uint16_t)p->disk_path_len);
		if (p->disk_path_len)
			memcpy(buf + MAPTBL_DISK_PATH_OFFSET, p->disk_path, p->disk_path_len);
	}
	h->header_crc = maptbl_cpu_to_le32(mt_header_crc(buf, p->header_len));
}

MAPTBL_API int maptbl_table_build(const struct maptbl_extent *ext, size_t nr,
				  const struct maptbl_build_opts *opts, struct maptbl_table **out)
{
	uint64_t counts[MAPTBL_MAX_DEPTH] = { 0 }, base[MAPTBL_MAX_DEPTH] = { 0 };
	uint64_t total, end, incompat = 0, *first = NULL, *last = NULL;
	uint32_t per_c, per_w, per_i, levels = 0, l;
	struct leaf *leaves = NULL;
	struct maptbl_table *t;
	struct maptbl_stats st;
	size_t nleaves = 0, i, table_len;
	uint8_t *buf = NULL;
	struct params p;
	int err;

	if (!out || (!ext && nr))
		return -EINVAL;
	*out = NULL;
	err = resolve_opts(opts, &p);
	if (err)
		return err;
	err = check_extents(ext, nr, &p, &end);
	if (err)
		return err;
	if (!p.virtual_blocks)
		p.virtual_blocks = end;

	per_c = maptbl_node_capacity(p.node_size, MAPTBL_NODE_LEAF_COMPACT) * p.fill_pct / 100;
	per_w = maptbl_node_capacity(p.node_size, MAPTBL_NODE_LEAF_WIDE) * p.fill_pct / 100;
	per_i = maptbl_node_capacity(p.node_size, MAPTBL_NODE_INDEX) * p.fill_pct / 100;
	per_c = per_c ? per_c : 1;
	per_w = per_w ? per_w : 1;
	per_i = per_i > 2 ? per_i : 2;

	/* Pass 1: the leaves. Every leaf but the last holds at least per_w extents. */
	if (nr) {
		leaves = malloc((nr / per_w + 1) * sizeof(*leaves));
		if (!leaves)
			return -ENOMEM;
	}
	for (i = 0; i < nr;) {
		uint32_t k = compact_run(ext, nr, i, per_c);
		uint32_t need = nr - i < per_w ? (uint32_t)(nr - i) : per_w;
		struct leaf *lf = &leaves[nleaves++];

		lf->start = i;
		if (k >= need) {
			lf->kind = MAPTBL_NODE_LEAF_COMPACT;
			lf->count = k;
		} else {
			lf->kind = MAPTBL_NODE_LEAF_WIDE;
			lf->count = need;
			incompat |= MAPTBL_INCOMPAT_WIDE_LEAF;
		}
		i += lf->count;
	}

	/* Node count of every level; base[l] is the first node number of level l. */
	total = 1;
	if (nleaves) {
		counts[0] = nleaves;
		while (counts[levels] > 1) {
			if (levels + 1 > MAPTBL_MAX_LEVEL) {
				mt_diag(p.diag, 0, -1, "the table would need more than %d levels",
					MAPTBL_MAX_DEPTH);
				err = -E2BIG;
				goto out;
			}
			counts[levels + 1] = (counts[levels] + per_i - 1) / per_i;
			levels++;
		}
		levels++;
		for (l = levels; l-- > 0;) {
			base[l] = total;
			total += counts[l];
		}
	}
	if (p.spare_nodes > UINT32_MAX || total + p.spare_nodes > UINT32_MAX ||
	    total + p.spare_nodes > SIZE_MAX / p.node_size) {
		mt_diag(p.diag, 0, -1,
			"the table would need %llu nodes and %llu spare ones, more than 2^32 - 1",
			(unsigned long long)total, (unsigned long long)p.spare_nodes);
		err = -E2BIG;
		goto out;
	}
	table_len = (size_t)(total + p.spare_nodes) * p.node_size;
	if (posix_memalign((void **)&buf, 4096, table_len)) {
		err = -ENOMEM;
		goto out;
	}
	/* Spare slots are free: zero (FORMAT.md §2). */
	memset(buf + (size_t)total * p.node_size, 0, (size_t)p.spare_nodes * p.node_size);

	memset(&st, 0, sizeof(st));
	if (nleaves) {
		first = malloc(nleaves * sizeof(*first));
		last = malloc(nleaves * sizeof(*last));
		if (!first || !last) {
			err = -ENOMEM;
			goto out;
		}
	}
	/* Pass 2: leaves, then each index level from the ranges of the one below. */
	for (i = 0; i < nleaves; i++) {
		const struct leaf *lf = &leaves[i];
		const struct maptbl_extent *le = &ext[lf->start + lf->count - 1];
		uint32_t self = (uint32_t)(base[0] + i);

		write_leaf(buf + (size_t)self * p.node_size, ext, lf, self, p.node_size);
		first[i] = ext[lf->start].lblk;
		last[i] = le->lblk + le->len;
		mt_stats_node(&st, lf->kind, 0, lf->count, p.node_size);
	}
	for (i = 0; i < nr; i++)
		mt_stats_extent(&st, ext[i].len, ext[i].flags);
	for (l = 1; l < levels; l++) {
		uint64_t j, nchild = counts[l - 1];

		for (j = 0; j < counts[l]; j++) {
			uint32_t self = (uint32_t)(base[l] + j), k;
			uint64_t c0 = j * per_i;
			uint32_t n = nchild - c0 < per_i ? (uint32_t)(nchild - c0) : per_i;
			uint8_t *node = buf + (size_t)self * p.node_size;
			struct maptbl_index_entry *x =
				(struct maptbl_index_entry *)(node + MAPTBL_NODE_HDR_SIZE);

			for (k = 0; k < n; k++, x++) {
				uint64_t f = first[c0 + k], nb = last[c0 + k] - f;

				x->first_lo = maptbl_cpu_to_le32((uint32_t)f);
				x->first_hi = maptbl_cpu_to_le16((uint16_t)(f >> 32));
				x->nblocks_hi = maptbl_cpu_to_le16((uint16_t)(nb >> 32));
				x->nblocks_lo = maptbl_cpu_to_le32((uint32_t)nb);
				x->child = maptbl_cpu_to_le32((uint32_t)(base[l - 1] + c0 + k));
			}
			mt_write_node_hdr(node, MAPTBL_NODE_INDEX, l, n, self, first[c0], p.node_size);
			/* The ranges shrink in place: entry j of this level replaces child j. */
			first[j] = first[c0];
			last[j] = last[c0 + n - 1];
			mt_stats_node(&st, MAPTBL_NODE_INDEX, l, n, p.node_size);
		}
	}
	st.depth = levels;
	st.max_nodes_touched = levels;
	st.table_bytes = table_len;
	write_header(buf, &p, nleaves ? 1 : 0, incompat, table_len);

	t = mt_table_new(buf, table_len);
	if (!t) {
		err = -ENOMEM;
		goto out;
	}
	buf = NULL;
	t->st = st;
	*out = t;
out:
	free(first);
	free(last);
	free(leaves);
	free(buf);
	return err;
}

MAPTBL_API int maptbl_table_estimate(uint64_t nr_extents, uint64_t nr_long,
				     const struct maptbl_build_opts *opts,
				     struct maptbl_estimate *est)
{
	uint64_t nleaves, level, total, by_w;
	uint32_t per_c, per_w, per_i, levels = 0;
	struct params p;
	int err;

	if (!est || nr_long > nr_extents)
		return -EINVAL;
	memset(est, 0, sizeof(*est));
	err = resolve_opts(opts, &p);
	if (err)
		return err;
	/* The capacities of maptbl_table_build(), from the same formulas. */
	per_c = maptbl_node_capacity(p.node_size, MAPTBL_NODE_LEAF_COMPACT) * p.fill_pct / 100;
	per_w = maptbl_node_capacity(p.node_size, MAPTBL_NODE_LEAF_WIDE) * p.fill_pct / 100;
	per_i = maptbl_node_capacity(p.node_size, MAPTBL_NODE_INDEX) * p.fill_pct / 100;
	per_c = per_c ? per_c : 1;
	per_w = per_w ? per_w : 1;
	per_i = per_i > 2 ? per_i : 2;

	/*
	 * Without long extents every leaf is compact and full but the last. A long extent makes
	 * at most two leaves short: the compact leaf it ends (still >= per_w extents) and the wide
	 * leaf it starts; and no leaf but the last holds fewer than per_w extents.
	 */
	nleaves = (nr_extents + per_c - 1) / per_c;
	if (nr_long) {
		by_w = (nr_extents + per_w - 1) / per_w;
		nleaves = nleaves + 2 * nr_long < by_w ? nleaves + 2 * nr_long : by_w;
	}
	total = 1;
	if (nleaves) {
		level = nleaves;
		total += level;
		levels = 1;
		while (level > 1) {
			if (levels + 1 > MAPTBL_MAX_DEPTH)
				return -E2BIG;
			level = (level + per_i - 1) / per_i;
			total += level;
			levels++;
		}
	}
	if (p.spare_nodes > UINT32_MAX || total + p.spare_nodes > UINT32_MAX)
		return -E2BIG;
	est->nodes = total - 1;
	est->bytes = (total + p.spare_nodes) * p.node_size;
	est->depth = levels;
	return 0;
}
