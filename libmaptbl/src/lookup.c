/* SPDX-License-Identifier: MIT */
/*
 * lookup.c - the table handle: getters, statistics, lookup and ordered iteration. Every function
 * here runs on a table that build.c or verify.c has fully checked, so it reads nodes directly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct maptbl_table *mt_table_new(uint8_t *buf, size_t len)
{
	const struct maptbl_header *h = (const void *)buf;
	struct maptbl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->magic = MT_TABLE_MAGIC;
	t->buf = buf;
	t->len = len;
	t->block_size = maptbl_le32_to_cpu(h->block_size);
	t->node_size = maptbl_le32_to_cpu(h->node_size);
	t->node_shift = mt_log2(t->node_size);
	t->root = maptbl_le32_to_cpu(h->root);
	t->generation = maptbl_le32_to_cpu(h->generation);
	t->virtual_blocks = maptbl_le64_to_cpu(h->virtual_blocks);
	t->disk_blocks = maptbl_le64_to_cpu(h->disk_blocks);
	t->incompat = maptbl_le64_to_cpu(h->incompat);
	t->ro_compat = maptbl_le64_to_cpu(h->ro_compat);
	t->compat = maptbl_le64_to_cpu(h->compat);
	if (t->compat & MAPTBL_COMPAT_DISK_INFO) {
		/* Checked by verify.c (or written by build.c): in bounds, no NUL. */
		const struct maptbl_disk_info *d = (const void *)(buf + MAPTBL_DISK_INFO_OFFSET);
		size_t n = maptbl_le16_to_cpu(d->path_len);

		t->disk_id = maptbl_le64_to_cpu(d->disk_id);
		if (n) {
			t->disk_path = malloc(n + 1);
			if (!t->disk_path) {
				free(t);
				return NULL;
			}
			memcpy(t->disk_path, buf + MAPTBL_DISK_PATH_OFFSET, n);
			t->disk_path[n] = 0;
		}
	}
	mt_table_changed(t);
	return t;
}

void mt_stats_node(struct maptbl_stats *st, unsigned kind, unsigned level, uint32_t nr_entries,
		   uint32_t node_size)
{
	st->nr_nodes++;
	if (kind == MAPTBL_NODE_INDEX)
		st->nr_index_nodes++;
	else if (kind == MAPTBL_NODE_LEAF_COMPACT)
		st->nr_compact_leaves++;
	else
		st->nr_wide_leaves++;
	if (level < MAPTBL_MAX_DEPTH) {
		st->nodes_per_level[level]++;
		st->entries_per_level[level] += nr_entries;
		st->capacity_per_level[level] += maptbl_node_capacity(node_size, kind);
	}
	st->entries_used += nr_entries;
	st->entries_capacity += maptbl_node_capacity(node_size, kind);
	st->entry_bytes += MAPTBL_NODE_HDR_SIZE + (uint64_t)nr_entries * maptbl_entry_size(kind);
}

void mt_stats_extent(struct maptbl_stats *st, uint64_t len, uint32_t flags)
{
	st->nr_extents++;
	st->mapped_blocks += len;
	if (flags & MAPTBL_EXTENT_UNWRITTEN)
		st->nr_unwritten++;
}

static void accel_free(struct mt_accel *a);

static bool ok(const struct maptbl_table *t)
{
	return t && t->magic == MT_TABLE_MAGIC;
}

MAPTBL_API void maptbl_table_free(struct maptbl_table *t)
{
	if (!t)
		return;
	t->magic = 0;
	mt_wstate_free(t->ws);
	accel_free(t->acc);
	free(t->disk_path);
	if (!t->borrowed)
		free(t->buf);
	free(t);
}

MAPTBL_API const void *maptbl_table_data(const struct maptbl_table *t)
{
	return ok(t) ? t->buf : NULL;
}

MAPTBL_API size_t maptbl_table_len(const struct maptbl_table *t)
{
	return ok(t) ? t->len : 0;
}

MAPTBL_API uint32_t maptbl_table_block_size(const struct maptbl_table *t)
{
	return ok(t) ? t->block_size : 0;
}

MAPTBL_API uint32_t maptbl_table_node_size(const struct maptbl_table *t)
{
	return ok(t) ? t->node_size : 0;
}

MAPTBL_API uint64_t maptbl_table_virtual_blocks(const struct maptbl_table *t)
{
	return ok(t) ? t->virtual_blocks : 0;
}

MAPTBL_API uint64_t maptbl_table_disk_blocks(const struct maptbl_table *t)
{
	return ok(t) ? t->disk_blocks : 0;
}

MAPTBL_API const char *maptbl_table_disk_path(const struct maptbl_table *t)
{
	return ok(t) ? t->disk_path : NULL;
}

MAPTBL_API uint64_t maptbl_table_disk_id(const struct maptbl_table *t)
{
	return ok(t) ? t->disk_id : 0;
}

MAPTBL_API uint32_t maptbl_table_generation(const struct maptbl_table *t)
{
	return ok(t) ? t->generation : 0;
}

MAPTBL_API uint64_t maptbl_table_nr_extents(const struct maptbl_table *t)
{
	return ok(t) ? t->st.nr_extents : 0;
}

MAPTBL_API uint32_t maptbl_table_depth(const struct maptbl_table *t)
{
	return ok(t) ? t->st.depth : 0;
}

MAPTBL_API uint64_t maptbl_table_features(const struct maptbl_table *t, int which)
{
	if (!ok(t))
		return 0;
	return which == 0 ? t->incompat : which == 1 ? t->ro_compat : which == 2 ? t->compat : 0;
}

MAPTBL_API bool maptbl_table_readonly(const struct maptbl_table *t)
{
	return ok(t) && t->readonly;
}

MAPTBL_API int maptbl_table_stats(const struct maptbl_table *t, struct maptbl_stats *st, size_t sz)
{
	if (!ok(t) || !st)
		return -EINVAL;
	memset(st, 0, sz);
	memcpy(st, &t->st, sz < sizeof(t->st) ? sz : sizeof(t->st));
	return 0;
}

/* Start of entry i, per kind; the node is already checked. */
static inline uint64_t idx_first(const uint8_t *node, uint32_t i)
{
	return maptbl_index_first((const struct maptbl_index_entry *)(node + MAPTBL_NODE_HDR_SIZE) + i);
}

static inline uint32_t cmp_off(const uint8_t *node, uint32_t i)
{
	return maptbl_le32_to_cpu(
		((const struct maptbl_compact_entry *)(node + MAPTBL_NODE_HDR_SIZE))[i].lblk_off);
}

static inline uint64_t wide_first(const uint8_t *node, uint32_t i)
{
	return maptbl_le64_to_cpu(
		((const struct maptbl_wide_entry *)(node + MAPTBL_NODE_HDR_SIZE))[i].lblk);
}

/*
 * Prefetching for tables larger than the caches. A binary search over a node that is not cached
 * waits for one cache miss per step, one after the other. Prefetching the 15 entries the next
 * four steps may probe, and at the end the window the last steps search, turns about log2(nr)
 * serial misses into two or three rounds of parallel ones. A table that fits the caches gains
 * nothing and pays the extra instructions, so only tables above PF_MIN_TABLE prefetch.
 * A prefetch changes no result.
 */
#if defined(__GNUC__)
#define PF_LINE(p) __builtin_prefetch(p)
#else
#define PF_LINE(p) ((void)(p))
#endif

#define PF_MIN_TABLE ((size_t)2 << 20) /* bytes: about the L2 cache of a current core */
#define PF_WINDOW_MAX 512u	       /* bytes: prefetch a window of up to 8 lines at once */

/*
 * Step k of the search from @ent over @nr entries probes ent + hk, plus any of the earlier
 * halves: the 15 entries the next four steps may probe. A macro, not a function: GCC 12 finds a
 * function that only prefetches free of side effects (IPA pure-const) and deletes the calls to it.
 */
#define PF_PROBES(ent, nr, esz)                                                                    \
	do {                                                                                       \
		size_t h1 = (nr) / 2, m1 = (nr) - h1, h2 = m1 / 2, m2 = m1 - h2, h3 = m2 / 2;      \
		size_t h4 = (m2 - h3) / 2;                                                         \
		PF_LINE((ent) + h1 * (esz));                                                       \
		PF_LINE((ent) + h2 * (esz));                                                       \
		PF_LINE((ent) + (h1 + h2) * (esz));                                                \
		PF_LINE((ent) + h3 * (esz));                                                       \
		PF_LINE((ent) + (h1 + h3) * (esz));                                                \
		PF_LINE((ent) + (h2 + h3) * (esz));                                                \
		PF_LINE((ent) + (h1 + h2 + h3) * (esz));                                           \
		PF_LINE((ent) + h4 * (esz));                                                       \
		PF_LINE((ent) + (h1 + h4) * (esz));                                                \
		PF_LINE((ent) + (h2 + h4) * (esz));                                                \
		PF_LINE((ent) + (h1 + h2 + h4) * (esz));                                           \
		PF_LINE((ent) + (h3 + h4) * (esz));                                                \
		PF_LINE((ent) + (h1 + h3 + h4) * (esz));                                           \
		PF_LINE((ent) + (h2 + h3 + h4) * (esz));                                           \
		PF_LINE((ent) + (h1 + h2 + h3 + h4) * (esz));                                      \
	} while (0)

/* The cache lines of [p, p + bytes). */
#define PF_WINDOW(p, bytes)                                                                        \
	do {                                                                                       \
		uintptr_t a_ = (uintptr_t)(p) & ~(uintptr_t)63, e_ = (uintptr_t)(p) + (bytes);     \
		for (; a_ < e_; a_ += 64)                                                          \
			PF_LINE((const uint8_t *)a_);                                              \
	} while (0)

/*
 * Binary searches: the number of entries whose start is <= key (the candidate entry is that count
 * minus one). KEYF(node, i) gives entry i's start; ESZ is the entry size. Branch-free halving:
 * log2(nr) loads. With @pf, while the remaining window is larger than PF_WINDOW_MAX bytes, each
 * group of four steps runs after the prefetch of its probes, and the rest after the prefetch of
 * the window; the steps are those of the plain loop, so the result is the same.
 */
#define DEFINE_UPPER_BOUND(name, KEYF, ktype, ESZ)                                                 \
	static inline uint32_t name(const uint8_t *node, uint32_t nr, ktype key, bool pf)          \
	{                                                                                          \
		const uint8_t *ent = node + MAPTBL_NODE_HDR_SIZE;                                  \
		uint32_t lo = 0, n = nr, step;                                                     \
		if (pf && n * ESZ > PF_WINDOW_MAX) {                                               \
			do {                                                                       \
				PF_PROBES(ent + (size_t)lo * ESZ, n, ESZ);                         \
				for (step = 0; step < 4; step++) {                                 \
					uint32_t half = n / 2;                                     \
					lo = KEYF(node, lo + half) <= key ? lo + half : lo;        \
					n -= half;                                                 \
				}                                                                  \
			} while (n * ESZ > PF_WINDOW_MAX);                                         \
			PF_WINDOW(ent + (size_t)lo * ESZ, n * ESZ);                                \
		}                                                                                  \
		while (n > 1) {                                                                    \
			uint32_t half = n / 2;                                                     \
			lo = KEYF(node, lo + half) <= key ? lo + half : lo;                        \
			n -= half;                                                                 \
		}                                                                                  \
		return lo + (KEYF(node, lo) <= key);                                               \
	}
DEFINE_UPPER_BOUND(ub_index, idx_first, uint64_t, 16u)
DEFINE_UPPER_BOUND(ub_compact, cmp_off, uint32_t, 12u)
DEFINE_UPPER_BOUND(ub_wide, wide_first, uint64_t, 24u)

static inline void set_result(struct maptbl_mapping *m, uint32_t state, uint64_t pblk, uint64_t len,
			      uint32_t nodes)
{
	m->state = state;
	m->pblk = pblk;
	m->len = len;
	m->nodes = nodes;
}

/* Start of entry i < nr of a node of @kind whose base_lblk is @base. */
static inline uint64_t node_start(const uint8_t *node, unsigned kind, uint64_t base, uint32_t i)
{
	return kind == MAPTBL_NODE_INDEX	? idx_first(node, i)
	       : kind == MAPTBL_NODE_LEAF_COMPACT ? base + cmp_off(node, i)
						  : wide_first(node, i);
}

/*
 * The decision in one node once its search is over: c of its nr entries start at or before
 * lblk (so entry c - 1 is the candidate). Fills @m and returns 0, or returns the child to descend
 * into and narrows *hi to the child's range. @base is the node's base_lblk; @nodes counts this
 * node already. Reads entries c - 1 and, for a hole, c; never the node header.
 */
static inline uint32_t node_decide(const uint8_t *node, unsigned kind, uint32_t nr, uint64_t base,
				   uint32_t c, uint64_t lblk, uint64_t *hi,
				   struct maptbl_mapping *m, uint32_t nodes)
{
	if (!c) {
		set_result(m, MAPTBL_MAP_HOLE, 0, node_start(node, kind, base, 0) - lblk, nodes);
		return 0;
	}
	switch (kind) {
	case MAPTBL_NODE_INDEX: {
		const struct maptbl_index_entry *x =
			(const struct maptbl_index_entry *)(node + MAPTBL_NODE_HDR_SIZE) + c - 1;
		uint64_t end = maptbl_index_first(x) + maptbl_index_nblocks(x);
		uint32_t child;

		if (lblk >= end)
			break;
		child = maptbl_le32_to_cpu(x->child);
		if (!child) {
			set_result(m, MAPTBL_MAP_ABSENT, 0, end - lblk, nodes);
			return 0;
		}
		*hi = end;
		return child;
	}
	case MAPTBL_NODE_LEAF_COMPACT: {
		const struct maptbl_compact_entry *x =
			(const struct maptbl_compact_entry *)(node + MAPTBL_NODE_HDR_SIZE) + c - 1;
		uint16_t lf = maptbl_le16_to_cpu(x->len_flags);
		uint32_t len = (lf & MAPTBL_COMPACT_LEN_MASK) + 1u;
		uint64_t off = lblk - base - maptbl_le32_to_cpu(x->lblk_off);

		if (off >= len)
			break;
		set_result(m, lf & MAPTBL_COMPACT_UNWRITTEN ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED,
			   maptbl_compact_pblk(x) + off, len - off, nodes);
		return 0;
	}
	default: { /* MAPTBL_NODE_LEAF_WIDE */
		const struct maptbl_wide_entry *x =
			(const struct maptbl_wide_entry *)(node + MAPTBL_NODE_HDR_SIZE) + c - 1;
		uint64_t off = lblk - maptbl_le64_to_cpu(x->lblk), len = maptbl_wide_len(x);

		if (off >= len)
			break;
		set_result(m, maptbl_le16_to_cpu(x->flags) & MAPTBL_WIDE_UNWRITTEN
				      ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED,
			   maptbl_le64_to_cpu(x->pblk) + off, len - off, nodes);
		return 0;
	}
	}
	/* Past the end of entry c - 1: a hole up to the next entry or the end of the range. */
	set_result(m, MAPTBL_MAP_HOLE, 0, (c < nr ? node_start(node, kind, base, c) : *hi) - lblk,
		   nodes);
	return 0;
}

/* Binary search of a node itself: the entries that start at or before lblk. */
static inline uint32_t node_search(const uint8_t *node, unsigned kind, uint32_t nr, uint64_t base,
				   uint64_t lblk, bool pf)
{
	if (kind == MAPTBL_NODE_INDEX)
		return ub_index(node, nr, lblk, pf);
	if (kind == MAPTBL_NODE_LEAF_COMPACT) {
		if (lblk < base)
			return 0;
		return lblk - base > MAPTBL_COMPACT_MAX_OFF ? nr
							    : ub_compact(node, nr, (uint32_t)(lblk - base), pf);
	}
	return ub_wide(node, nr, lblk, pf);
}

/* The plain walk: binary searches in the nodes themselves (a table without a lookup index). */
static int lookup_plain(const struct maptbl_table *t, uint64_t lblk, struct maptbl_mapping *m)
{
	uint64_t hi = t->virtual_blocks;
	uint32_t n = t->root, nodes = 0;
	bool pf = t->len > PF_MIN_TABLE;

	m->lblk = lblk;
	if (!n) {
		set_result(m, MAPTBL_MAP_HOLE, 0, hi - lblk, 0);
		return 0;
	}
	do {
		const uint8_t *node = t->buf + ((size_t)n << t->node_shift);
		const struct maptbl_node_hdr *h = (const void *)node;
		uint32_t nr = maptbl_le16_to_cpu(h->nr_entries);
		uint64_t base = maptbl_le64_to_cpu(h->base_lblk);

		n = node_decide(node, node[2], nr, base, node_search(node, node[2], nr, base, lblk, pf),
				lblk, &hi, m, ++nodes);
	} while (n);
	return 0;
}

/*
 * ---- The lookup index (see mt_table_changed() in internal.h) ----
 *
 * Host memory only, derived from the buffer. For every tree node a record, a small static B-tree
 * of 32-bit keys: key k is the start of entry k * W minus the node's base_lblk (W = 2 entries per
 * key in wide leaves, 4 otherwise, so the W entries of a window lie in at most two adjacent cache
 * lines). Keys are grouped 16 to a 64-byte line (level 0); level 1 holds the first key of every
 * level-0 line, and so on up to a level of at most SUM_TOP keys, which sits in the record's first
 * line next to the node's kind, entry count and base_lblk. A search reads the first line, one line
 * per level below it (one for nodes up to 8 KiB), and then the window of entries in the node: one
 * line each, where the binary search in the node reads about log2(entries) lines one after the
 * other. The node's own header is not read.
 *
 * Because the starts in a node strictly increase, counting the keys <= the block level by level
 * and then the window's starts gives exactly the number of entries starting at or before the
 * block, the number the binary search of lookup_plain() and the reference walker find; the
 * decision (node_decide()) is then the same code, so the answers and the nodes visited (`nodes`,
 * what a device walk reads) are the same.
 *
 * A node whose starts span 2^32 blocks or more (possible in index nodes and wide leaves) gets a
 * record with `plain` set: it is searched in the node itself. Records are 64-byte aligned; unit[n]
 * is node n's record offset in 64-byte units (nodes are reached only through checked child
 * references, so slots that are not tree nodes are never read). Unused key slots hold UINT32_MAX,
 * counts are capped at the level's size. With 4 KiB nodes a full compact leaf's record is 448
 * bytes for 338 extents (1.33 bytes per extent), a full wide leaf's 448 for 169. Only tables
 * between mt_index_min_table and mt_index_max_table bytes get one.
 */
#define SUM_LINE 16u	  /* keys per 64-byte line */
#define SUM_TOP 12u	  /* keys in the first line, after the 16-byte header */

struct mt_sum {
	uint8_t kind;
	uint8_t shift;	  /* W = 1 << shift entries per level-0 key */
	uint8_t levels;	  /* levels below the first line (0: the first line holds every key) */
	uint8_t plain;	  /* 1: no keys, search the node itself */
	uint16_t nr;	  /* entries */
	uint16_t ntop;	  /* keys in top[] */
	uint64_t base;	  /* the node's base_lblk: keys are start - base */
	uint32_t top[SUM_TOP];
};
_Static_assert(sizeof(struct mt_sum) == 64, "a record's first line");

struct mt_accel {
	uint32_t *unit;	  /* per node slot: record offset in 64-byte units << 1 | (index node) */
	uint8_t *sum;	  /* the records, 64-byte aligned */
	size_t bytes;	  /* memory held: both arrays and this struct */
	bool hot_index;	  /* the index nodes and their records fit SUM_HOT_INDEX bytes */
	uint32_t pf_bytes; /* the largest record, at most SUM_PF_MAX bytes: what lookup_acc() prefetches */
};

/*
 * lookup_acc() prefetches a node's whole record (up to this many bytes) when it enters the node,
 * so that the line of the level below the first arrives with the first instead of after it: one
 * wait for DRAM less per node (measured: 1.3-1.6x single lookups at 10^6 extents).
 */
#define SUM_PF_MAX 448u

/*
 * Index nodes and their records of at most this many bytes in all stay in the caches of a core
 * that looks up a lot (about its L2): lookup_many() then searches them at once rather than
 * interleaved (measured: docs/PERFORMANCE.md).
 */
#define SUM_HOT_INDEX ((size_t)1 << 20)

static inline const struct mt_sum *rec_at(const struct mt_accel *a, uint32_t u)
{
	return (const struct mt_sum *)(a->sum + ((size_t)(u >> 1) << 6));
}

static inline const struct mt_sum *sum_of(const struct mt_accel *a, uint32_t n)
{
	return rec_at(a, a->unit[n]);
}

static inline uint32_t win_shift(unsigned kind)
{
	return kind == MAPTBL_NODE_LEAF_WIDE ? 1u : 2u;
}

static inline uint32_t lines_of(uint32_t keys)
{
	return (keys + SUM_LINE - 1) / SUM_LINE;
}

/* Size of level l and the record line where it starts (levels below the first line only). */
static inline uint32_t lvl_size(const struct mt_sum *s, uint32_t l)
{
	uint32_t n = ((s->nr - 1) >> s->shift) + 1;

	while (l--)
		n = lines_of(n);
	return n;
}

static inline uint32_t lvl_line(const struct mt_sum *s, uint32_t l)
{
	uint32_t n = ((s->nr - 1) >> s->shift) + 1, line = 1;

	while (l--) {
		line += lines_of(n);
		n = lines_of(n);
	}
	return line;
}

/* Keys <= key among k[0 .. 16) (unused slots hold UINT32_MAX), capped at n. */
static inline uint32_t count_line(const uint32_t *k, uint32_t n, uint32_t key)
{
	uint32_t c = 0, i;

	for (i = 0; i < SUM_LINE; i++)
		c += k[i] <= key;
	return c < n ? c : n;
}

static inline uint32_t count_top(const struct mt_sum *s, uint32_t key)
{
	uint32_t c = 0, i;

	for (i = 0; i < SUM_TOP; i++)
		c += s->top[i] <= key;
	return c < s->ntop ? c : s->ntop;
}

/* The block as a key of the record: false when it is before the node's first entry. */
static inline bool sum_key(const struct mt_sum *s, uint64_t lblk, uint32_t *key)
{
	uint64_t off = lblk - s->base;

	if (lblk < s->base)
		return false;
	/* Every key is below 2^32: a larger offset is past all of them. */
	*key = off > UINT32_MAX ? UINT32_MAX : (uint32_t)off;
	return true;
}

/* One level down: @idx keys of level l + 1 are <= key; returns how many of level l are. */
static inline uint32_t sum_descend(const struct mt_sum *s, uint32_t l, uint32_t idx, uint32_t key)
{
	const uint32_t *k = (const uint32_t *)s + (size_t)(lvl_line(s, l) + idx - 1) * SUM_LINE;

	return (idx - 1) * SUM_LINE + count_line(k, lvl_size(s, l) - (idx - 1) * SUM_LINE, key);
}

/* Start of the lines sum_descend(s, l, idx, ...) reads. */
static inline const void *sum_line(const struct mt_sum *s, uint32_t l, uint32_t idx)
{
	return (const uint32_t *)s + (size_t)(lvl_line(s, l) + idx - 1) * SUM_LINE;
}

/*
 * The window: j >= 1 level-0 keys are <= the block, so entry (j - 1) * W starts at or before it
 * and entry j * W (if any) after it; counts the starts in between. A window cut short by the end
 * of the node repeats its last entry, and the count is capped at nr.
 */
#define DEFINE_WINDOW(name, KEYF, ktype)                                                           \
	static inline uint32_t name(const uint8_t *node, uint32_t nr, uint32_t i0, uint32_t w,     \
				    ktype key)                                                     \
	{                                                                                          \
		uint32_t last = nr - 1, c = i0 + 1, k;                                             \
		for (k = 1; k < w; k++)                                                            \
			c += KEYF(node, i0 + k < last ? i0 + k : last) <= key;                     \
		return c < nr ? c : nr;                                                            \
	}
DEFINE_WINDOW(win_index, idx_first, uint64_t)
DEFINE_WINDOW(win_compact, cmp_off, uint32_t)
DEFINE_WINDOW(win_wide, wide_first, uint64_t)

static inline uint32_t sum_window(const uint8_t *node, const struct mt_sum *s, uint32_t j,
				  uint64_t lblk)
{
	uint32_t i0 = (j - 1) << s->shift, w = 1u << s->shift;

	if (s->kind == MAPTBL_NODE_INDEX)
		return win_index(node, s->nr, i0, w, lblk);
	if (s->kind == MAPTBL_NODE_LEAF_WIDE)
		return win_wide(node, s->nr, i0, w, lblk);
	/* lblk >= base here (j >= 1); an offset past 2^32 is past every entry (c = nr). */
	return win_compact(node, s->nr, i0, w,
			   lblk - s->base > UINT32_MAX ? UINT32_MAX : (uint32_t)(lblk - s->base));
}

/* The whole search in one node through its record: the entries starting at or before lblk. */
static inline uint32_t sum_search(const uint8_t *node, const struct mt_sum *s, uint64_t lblk)
{
	uint32_t key, j, l;

	if (MT_UNLIKELY(s->plain))
		return node_search(node, s->kind, s->nr, s->base, lblk, false);
	if (!sum_key(s, lblk, &key))
		return 0;
	j = count_top(s, key);
	for (l = s->levels; l-- > 0 && j;)
		j = sum_descend(s, l, j, key);
	return j ? sum_window(node, s, j, lblk) : 0;
}

static int lookup_acc(const struct maptbl_table *t, uint64_t lblk, struct maptbl_mapping *m)
{
	const struct mt_accel *a = t->acc;
	uint64_t hi = t->virtual_blocks;
	uint32_t n = t->root, nodes = 0;

	m->lblk = lblk;
	do { /* an index exists only for a non-empty tree */
		const struct mt_sum *s = sum_of(a, n);
		const uint8_t *node = t->buf + ((size_t)n << t->node_shift);

		PF_WINDOW(s, a->pf_bytes);
		n = node_decide(node, s->kind, s->nr, s->base, sum_search(node, s, lblk), lblk, &hi, m,
				++nodes);
	} while (n);
	return 0;
}

/* Calls fn(ctx, n) for every tree node n, parents before children. */
static void for_each_node(const struct maptbl_table *t, void (*fn)(void *, uint32_t), void *ctx)
{
	struct {
		uint32_t node, next;
	} stack[MAPTBL_MAX_DEPTH];
	int sp = 0;

	stack[0].node = t->root;
	stack[0].next = 0;
	fn(ctx, t->root);
	while (sp >= 0) {
		const uint8_t *node = t->buf + ((size_t)stack[sp].node << t->node_shift);
		uint32_t nr = maptbl_le16_to_cpu(((const struct maptbl_node_hdr *)node)->nr_entries);
		const struct maptbl_index_entry *x;
		uint32_t child;

		if (node[2] != MAPTBL_NODE_INDEX || stack[sp].next >= nr) {
			sp--;
			continue;
		}
		x = (const struct maptbl_index_entry *)(node + MAPTBL_NODE_HDR_SIZE) + stack[sp].next++;
		child = maptbl_le32_to_cpu(x->child);
		if (!child)
			continue;
		fn(ctx, child);
		/* Levels strictly decrease (checked), so sp stays below 16. */
		sp++;
		stack[sp].node = child;
		stack[sp].next = 0;
	}
}

/* Fills the header of node n's record (no keys) and returns the record's size in lines. */
static uint32_t sum_header(const struct maptbl_table *t, uint32_t n, struct mt_sum *s)
{
	const uint8_t *node = t->buf + ((size_t)n << t->node_shift);
	const struct maptbl_node_hdr *h = (const void *)node;
	uint32_t nr = maptbl_le16_to_cpu(h->nr_entries), lines = 1, keys;

	memset(s, 0xFF, sizeof(*s));
	s->kind = node[2];
	s->nr = (uint16_t)nr;
	s->base = maptbl_le64_to_cpu(h->base_lblk);
	s->shift = (uint8_t)win_shift(s->kind);
	s->levels = 0;
	s->plain = node_start(node, s->kind, s->base, nr - 1) - s->base > UINT32_MAX;
	if (s->plain)
		return 1;
	for (keys = ((nr - 1) >> s->shift) + 1; keys > SUM_TOP; keys = lines_of(keys)) {
		lines += lines_of(keys);
		s->levels++;
	}
	s->ntop = (uint16_t)keys;
	return lines;
}

struct accel_ctx {
	const struct maptbl_table *t;
	struct mt_accel *a;
	uint64_t units, index_bytes;
	uint32_t max_lines;
};

static void accel_count(void *p, uint32_t n)
{
	struct accel_ctx *x = p;
	struct mt_sum s;
	uint32_t lines = sum_header(x->t, n, &s);

	x->units += lines;
	if (lines > x->max_lines)
		x->max_lines = lines;
	if (s.kind == MAPTBL_NODE_INDEX)
		x->index_bytes += x->t->node_size + (uint64_t)lines * 64;
}

static void accel_fill(void *p, uint32_t n)
{
	struct accel_ctx *x = p;
	const uint8_t *node = x->t->buf + ((size_t)n << x->t->node_shift);
	struct mt_sum *s = (struct mt_sum *)(x->a->sum + (x->units << 6));
	uint32_t lines = sum_header(x->t, n, s), l, i, size;
	uint32_t *lvl;

	x->a->unit[n] = (uint32_t)(x->units << 1 | (s->kind == MAPTBL_NODE_INDEX));
	x->units += lines;
	if (s->plain)
		return;
	memset(s + 1, 0xFF, (size_t)(lines - 1) * 64);
	/* Level 0 (or the top, when it is the only level), then each level from the one below. */
	lvl = s->levels ? (uint32_t *)(s + 1) : s->top;
	size = lvl_size(s, 0);
	for (i = 0; i < size; i++)
		lvl[i] = (uint32_t)(node_start(node, s->kind, s->base, i << s->shift) - s->base);
	for (l = 1; l <= s->levels; l++) {
		const uint32_t *below = lvl;

		lvl = l == s->levels ? s->top : (uint32_t *)s + (size_t)lvl_line(s, l) * SUM_LINE;
		size = lvl_size(s, l);
		for (i = 0; i < size; i++)
			lvl[i] = below[i * SUM_LINE];
	}
}

static void accel_free(struct mt_accel *a)
{
	if (a) {
		free(a->unit);
		free(a->sum);
		free(a);
	}
}

size_t mt_index_min_table = (size_t)64 << 10;

/*
 * Tables above this many bytes get no index: measured at 10^7 extents (241 MB, an index of 26 MB)
 * the index made lookups 0.74-0.84x and lookup_many() 0.6x the plain search, which reads a node's
 * lines within one page where the index adds a second random page (and its TLB miss) per node;
 * at 10^6 (24 MB, index 2.6 MB) it gains. The crossover in between was not measured.
 */
size_t mt_index_max_table = (size_t)64 << 20;

void mt_table_changed(struct maptbl_table *t)
{
	struct accel_ctx x = { .t = t };
	size_t nslots = t->len >> t->node_shift;
	struct mt_accel *a;

	accel_free(t->acc);
	t->acc = NULL;
	/*
	 * A table that is being updated in place (update.c made its writer state) gets no index:
	 * rebuilding it is one pass over every node, which would turn a microseconds update into
	 * milliseconds at 10^6 extents, and such a table is walked by the device, not looked up by
	 * the host. Lookups on it take the plain search.
	 */
	if (t->ws || !t->root || t->len < mt_index_min_table || t->len > mt_index_max_table)
		return;
	for_each_node(t, accel_count, &x);
	if (x.units > UINT32_MAX >> 1)
		return;
	a = calloc(1, sizeof(*a));
	if (!a)
		return;
	a->unit = malloc(nslots * sizeof(*a->unit));
	a->sum = aligned_alloc(64, (size_t)x.units << 6); /* a multiple of 64 bytes */
	if (!a->unit || !a->sum) {
		accel_free(a);
		return;
	}
	a->bytes = sizeof(*a) + nslots * sizeof(*a->unit) + ((size_t)x.units << 6);
	a->hot_index = x.index_bytes <= SUM_HOT_INDEX;
	a->pf_bytes = x.max_lines * 64 < SUM_PF_MAX ? x.max_lines * 64 : SUM_PF_MAX;
	x.a = a;
	x.units = 0;
	for_each_node(t, accel_fill, &x);
	t->acc = a;
}

size_t mt_table_accel_bytes(const struct maptbl_table *t)
{
	return t->acc ? t->acc->bytes : 0;
}

MAPTBL_API int maptbl_table_lookup(const struct maptbl_table *t, uint64_t lblk,
				   struct maptbl_mapping *m)
{
	if (!ok(t) || !m)
		return -EINVAL;
	if (lblk >= t->virtual_blocks)
		return -ERANGE;
	return t->acc ? lookup_acc(t, lblk, m) : lookup_plain(t, lblk, m);
}

/*
 * Batched lookup: BATCH walks advance in turn, each by one cache line of its search at a time
 * (a record's first line, a line of a lower level, the window of entries in the node), and every
 * step prefetches the line the same walk reads next. By the time a walk comes back to that line
 * it has arrived, so the cache misses of the BATCH walks overlap instead of following one another.
 * A walk that finishes takes the next block at once. Each walk makes exactly the steps of
 * lookup_acc(), so the answers are identical.
 */
#define BATCH 32u /* measured: 16 gives 0.9x, 48 no more (docs/PERFORMANCE.md) */

enum { PH_ENTER, PH_LEVEL, PH_WINDOW };

struct lane {
	const uint8_t *node;	/* NULL: the lane is free */
	const struct mt_sum *s;	/* node's record */
	uint64_t lblk, hi;
	uint32_t key, j, nodes;
	int level;		/* PH_LEVEL: the level whose line comes next */
	unsigned phase;		/* what the next step reads: the record's first line, a level, the window */
	struct maptbl_mapping *m;
};

/*
 * The walk goes on in node @child (0: it is over, return false). With a hot index, index nodes are
 * searched at once; the lane stops at the first leaf, whose record's first line is prefetched.
 */
static inline bool lane_descend(const struct maptbl_table *t, struct lane *l, uint32_t child)
{
	const struct mt_accel *a = t->acc;

	while (child) {
		uint32_t u = a->unit[child];

		l->node = t->buf + ((size_t)child << t->node_shift);
		l->s = rec_at(a, u);
		if (!(u & 1) || !a->hot_index) {
			PF_LINE(l->s);
			l->phase = PH_ENTER;
			return true;
		}
		child = node_decide(l->node, l->s->kind, l->s->nr, l->s->base,
				    sum_search(l->node, l->s, l->lblk), l->lblk, &l->hi, l->m,
				    ++l->nodes);
	}
	return false;
}

/* One step of a lane's walk (the line it reads was prefetched); false when the walk is over. */
static inline bool lane_step(const struct maptbl_table *t, struct lane *l)
{
	const struct mt_sum *s = l->s;
	uint32_t c, esz;

	switch (l->phase) {
	case PH_ENTER:
		if (MT_UNLIKELY(s->plain)) {
			c = node_search(l->node, s->kind, s->nr, s->base, l->lblk, false);
			break;
		}
		if (!sum_key(s, l->lblk, &l->key) || !(l->j = count_top(s, l->key))) {
			c = 0;
			break;
		}
		l->level = (int)s->levels - 1;
		goto next_line;
	case PH_LEVEL:
		l->j = sum_descend(s, (uint32_t)l->level, l->j, l->key);
		l->level--;
		goto next_line;
	default:
		c = sum_window(l->node, s, l->j, l->lblk);
		break;
	}
	return lane_descend(t, l, node_decide(l->node, s->kind, s->nr, s->base, c, l->lblk, &l->hi,
					      l->m, ++l->nodes));
next_line:
	if (l->level >= 0) {
		PF_LINE(sum_line(s, (uint32_t)l->level, l->j));
		l->phase = PH_LEVEL;
		return true;
	}
	/* The window and the entry after it (the end of a hole). */
	esz = maptbl_entry_size(s->kind);
	PF_WINDOW(l->node + MAPTBL_NODE_HDR_SIZE + (size_t)((l->j - 1) << s->shift) * esz,
		  (size_t)esz * ((1u << s->shift) + 1));
	l->phase = PH_WINDOW;
	return true;
}

static void many_acc(const struct maptbl_table *t, const uint64_t *lblk, size_t nr,
		     struct maptbl_mapping *m)
{
	struct lane lanes[BATCH];
	size_t next = 0;
	uint32_t k, active = 0;

	for (k = 0; k < BATCH; k++)
		lanes[k].node = NULL;
	/* Keep every lane busy: a lane that finishes takes the next block at once. */
	for (;;) {
		for (k = 0; k < BATCH; k++) {
			struct lane *l = &lanes[k];
			bool alive;

			if (!l->node) {
				if (next >= nr)
					continue;
				l->lblk = lblk[next];
				l->m = &m[next];
				l->m->lblk = l->lblk;
				l->hi = t->virtual_blocks;
				l->nodes = 0;
				next++;
				active++;
				alive = lane_descend(t, l, t->root);
			} else {
				alive = lane_step(t, l);
			}
			if (!alive) {
				l->node = NULL;
				active--;
			}
		}
		if (!active && next >= nr)
			break;
	}
}

/*
 * Batched lookup without an index (tables above mt_index_max_table): up to PBATCH walks advance in
 * turn, one binary-search step each, and every step prefetches what the same walk reads next, so
 * the cache misses of independent walks overlap. Each walk takes exactly the steps of
 * lookup_plain() (same probes, same decisions), so the answers are identical.
 */
#define PBATCH 16u
#define PLANE_WINDOW 256u /* bytes: a window this small is prefetched whole, then searched at once */

struct plane {
	const uint8_t *node; /* current node, NULL when the walk is done */
	uint64_t lblk, key, hi;
	uint32_t lo, n, nr, nodes;
	uint8_t kind;
	bool entered;	     /* header read, search under way */
	struct maptbl_mapping *m;
};

static inline uint64_t key_at(const uint8_t *node, unsigned kind, uint32_t i)
{
	return kind == MAPTBL_NODE_INDEX	? idx_first(node, i)
	       : kind == MAPTBL_NODE_LEAF_COMPACT ? cmp_off(node, i)
						  : wide_first(node, i);
}

static inline const uint8_t *entry_at(const uint8_t *node, unsigned kind, uint32_t i)
{
	return node + MAPTBL_NODE_HDR_SIZE + (size_t)i * maptbl_entry_size(kind);
}

/* The search in this node is over: c entries start at or before the key. */
static inline void plane_decide(const struct maptbl_table *t, struct plane *l, uint32_t c)
{
	const struct maptbl_node_hdr *h = (const void *)l->node;
	uint32_t child = node_decide(l->node, l->kind, l->nr, maptbl_le64_to_cpu(h->base_lblk), c,
				     l->lblk, &l->hi, l->m, l->nodes);

	l->entered = false;
	l->node = child ? t->buf + ((size_t)child << t->node_shift) : NULL;
	if (child)
		PF_LINE(l->node);
}

/* The rest of the search in the current node, in one go (its entries are cached by now). */
static inline void plane_search_all(const struct maptbl_table *t, struct plane *l)
{
	while (l->n > 1) {
		uint32_t half = l->n / 2;

		l->lo = key_at(l->node, l->kind, l->lo + half) <= l->key ? l->lo + half : l->lo;
		l->n -= half;
	}
	plane_decide(t, l, l->lo + (key_at(l->node, l->kind, l->lo) <= l->key));
}

/* Prefetch what the lane reads next: its next probe, or its whole (small) window. */
static inline void plane_prefetch(struct plane *l)
{
	uint32_t esz = maptbl_entry_size(l->kind);

	if (l->n * esz <= PLANE_WINDOW)
		PF_WINDOW(entry_at(l->node, l->kind, l->lo), (size_t)(l->n + 1) * esz);
	else
		PF_LINE(entry_at(l->node, l->kind, l->lo + l->n / 2));
}

/* One turn of the lane's walk: enter a node, one halving step, or the end of a small search. */
static inline void plane_step(const struct maptbl_table *t, struct plane *l)
{
	if (!l->entered) {
		const struct maptbl_node_hdr *h = (const void *)l->node;

		l->nodes++;
		l->kind = l->node[2];
		l->nr = maptbl_le16_to_cpu(h->nr_entries);
		l->lo = 0;
		l->n = l->nr;
		l->key = l->lblk;
		if (l->kind == MAPTBL_NODE_LEAF_COMPACT) {
			uint64_t base = maptbl_le64_to_cpu(h->base_lblk);

			if (l->lblk < base) {
				plane_decide(t, l, 0);
				return;
			}
			l->key = l->lblk - base;
			if (l->key > MAPTBL_COMPACT_MAX_OFF) {
				l->lo = l->nr - 1; /* every entry starts before: the last is the candidate */
				l->n = 1;
				l->key = MAPTBL_COMPACT_MAX_OFF;
			}
		}
		l->entered = true;
		if (l->nodes == 1) { /* the root stays cached: search it now */
			plane_search_all(t, l);
			return;
		}
		plane_prefetch(l);
		return;
	}
	if (l->n * maptbl_entry_size(l->kind) <= PLANE_WINDOW) {
		plane_search_all(t, l);
		return;
	}
	{
		uint32_t half = l->n / 2;

		l->lo = key_at(l->node, l->kind, l->lo + half) <= l->key ? l->lo + half : l->lo;
		l->n -= half;
	}
	plane_prefetch(l);
}

static void many_plain(const struct maptbl_table *t, const uint64_t *lblk, size_t nr,
		       struct maptbl_mapping *m)
{
	struct plane lanes[PBATCH];
	size_t next = 0;
	uint32_t k, active = 0;

	for (k = 0; k < PBATCH; k++)
		lanes[k].node = NULL;
	for (;;) {
		for (k = 0; k < PBATCH; k++) {
			struct plane *l = &lanes[k];

			if (!l->node) {
				if (next >= nr)
					continue;
				l->lblk = lblk[next];
				l->m = &m[next];
				l->m->lblk = lblk[next];
				l->hi = t->virtual_blocks;
				l->nodes = 0;
				l->entered = false;
				l->node = t->buf + ((size_t)t->root << t->node_shift);
				next++;
				active++;
				continue; /* the root is hot; enter it on the next turn */
			}
			plane_step(t, l);
			if (!l->node)
				active--;
		}
		if (!active && next >= nr)
			break;
	}
}

MAPTBL_API int maptbl_table_lookup_many(const struct maptbl_table *t, const uint64_t *lblk,
					size_t nr, struct maptbl_mapping *m)
{
	size_t i;

	if (!ok(t) || (nr && (!lblk || !m)))
		return -EINVAL;
	for (i = 0; i < nr; i++)
		if (lblk[i] >= t->virtual_blocks)
			return -ERANGE;
	if (t->acc) {
		many_acc(t, lblk, nr, m);
		return 0;
	}
	if (t->root && t->len > mt_index_max_table) {
		many_plain(t, lblk, nr, m);
		return 0;
	}
	for (i = 0; i < nr; i++) /* a small or empty table (or out of memory): one walk at a time */
		lookup_plain(t, lblk[i], &m[i]);
	return 0;
}

MAPTBL_API int maptbl_table_iterate(const struct maptbl_table *t, maptbl_extent_fn fn, void *ctx)
{
	struct {
		uint32_t node, next;
	} stack[MAPTBL_MAX_DEPTH];
	int sp = 0, ret;

	if (!ok(t) || !fn)
		return -EINVAL;
	if (!t->root)
		return 0;
	stack[0].node = t->root;
	stack[0].next = 0;
	while (sp >= 0) {
		const uint8_t *node = t->buf + ((size_t)stack[sp].node << t->node_shift);
		uint32_t nr = maptbl_le16_to_cpu(((const struct maptbl_node_hdr *)node)->nr_entries);
		unsigned kind = node[2];
		struct maptbl_extent x;
		struct mt_entry e;

		if (stack[sp].next >= nr) {
			sp--;
			continue;
		}
		mt_decode_entry(node, kind, stack[sp].next++, &e);
		if (kind == MAPTBL_NODE_INDEX && e.child) {
			/* Levels strictly decrease (checked), so sp stays below 16. */
			sp++;
			stack[sp].node = e.child;
			stack[sp].next = 0;
			continue;
		}
		x.lblk = e.start;
		x.pblk = e.pblk;
		x.len = e.len;
		x.flags = e.flags;
		x.reserved = 0;
		ret = fn(ctx, &x);
		if (ret)
			return ret;
	}
	return 0;
}
