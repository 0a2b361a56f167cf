/* SPDX-License-Identifier: MIT */
/*
 * update.c - changing a table in place while a device walks it (FORMAT.md §12).
 *
 * Every update is "replace what the tree holds in [a, b) by these items" (extents and absent
 * ranges). It is applied by copy-on-write: each node whose entries change is written anew into a
 * free slot of the same buffer, together with the path from the root to it; nothing reachable
 * from the published root is ever written. The new tree becomes visible with one aligned 8-byte
 * release store of the live word (root | generation << 32). The nodes the new tree no longer
 * reaches are *retired* with the generation of that publish and become free only when the caller
 * says no walker still reads an older tree (maptbl_table_reclaim()).
 *
 * The rewrite is recursive: a node hands its parent the list of entries that replace its own
 * entry (none, one, or several after a split; absent ranges as index entries with child 0).
 * Entries the change does not touch keep their nodes. Nodes are split evenly when they overflow;
 * a node is never merged with a neighbour (FORMAT.md allows any fill and non-uniform depth), and
 * maptbl_table_compact() rebuilds a packed table when the caller wants one.
 *
 * Slot states: a table's slots are the header (0), LIVE (reachable from the published root), NEW
 * (written by updates not yet published), RETIRED (waiting for reclamation) and FREE. The writer
 * state is made on the first update: for a table from maptbl_table_open() the free slots are
 * those the published tree does not reach.
 *
 * Failure leaves the table as it was: an operation takes its slots from the top of the free
 * stack and releases the nodes it replaces only when it succeeds, so undoing it is restoring the
 * stack height, the pending root and the statistics.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The live word is published with one lock-free 8-byte store (FORMAT.md §3, §12). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "8-byte atomics must be lock-free");
_Static_assert(sizeof(unsigned long long) == 8, "8-byte live word");

/* SLOT_SQUEEZED: only inside write_node()'s squeeze of the pending list. */
enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_NEW = 2, SLOT_RETIRED = 3, SLOT_HEADER = 4,
       SLOT_SQUEEZED = 5 };

struct retired {
	uint32_t node;
	uint32_t gen; /* generation of the publish that removed it from the tree */
};

struct mt_wstate {
	uint32_t nslots;
	uint8_t *slot;		  /* SLOT_* by node number */
	uint32_t *free;		  /* stack of free slots; the top is free[nfree - 1] */
	uint32_t nfree;
	struct retired *ret;	  /* in publish order, so generations never decrease */
	size_t ret_head, nret;	  /* ret[ret_head .. nret) are waiting */
	uint32_t *drop;		  /* LIVE nodes the pending tree no longer reaches */
	size_t ndrop;
	uint32_t *pend;		  /* slots allocated since the last publish (may repeat) */
	size_t npend;
	uint32_t root;		  /* root of the pending tree */
	uint64_t virtual_blocks;  /* pending virtual size */
	bool dirty;		  /* something to publish */
	bool heights;		  /* every index node's level is its height (1 + its highest child) */
	struct maptbl_stats st;	  /* of the pending tree (depth fields set at publish) */
	uint64_t bytes_written, nodes_written, publishes;
};

struct evec {
	struct mt_entry *v;
	size_t n, cap;
};

/* One update: the table, its writer state and the nodes the operation releases. */
struct upd {
	struct maptbl_table *t;
	struct mt_wstate *ws;
	uint32_t ns, shift;
	uint32_t cap_i, cap_c, cap_w;
	bool wide_ok;
	uint32_t *rel;
	size_t nrel, caprel;
};

#define ULL(x) ((unsigned long long)(x))

void mt_wstate_free(struct mt_wstate *ws)
{
	if (!ws)
		return;
	free(ws->slot);
	free(ws->free);
	free(ws->ret);
	free(ws->drop);
	free(ws->pend);
	free(ws);
}

static int ev_grow(struct evec *ev, size_t cap)
{
	struct mt_entry *v = realloc(ev->v, cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ev->v = v;
	ev->cap = cap;
	return 0;
}

static inline int ev_push(struct evec *ev, const struct mt_entry *e)
{
	if (MT_UNLIKELY(ev->n == ev->cap) && ev_grow(ev, ev->cap ? ev->cap * 2 : 32))
		return -ENOMEM;
	ev->v[ev->n++] = *e;
	return 0;
}

static int cmp_start(const void *x, const void *y)
{
	const struct mt_entry *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

static inline bool intersects(const struct mt_entry *e, uint64_t a, uint64_t b)
{
	return a < b && e->start < b && a < e->start + e->len;
}

static inline uint8_t *node_at(const struct maptbl_table *t, uint32_t n)
{
	return t->buf + ((size_t)n << t->node_shift);
}

static inline uint32_t node_nr(const uint8_t *node)
{
	return maptbl_le16_to_cpu(((const struct maptbl_node_hdr *)node)->nr_entries);
}

/* ---- statistics of one node, added or taken away ---- */

static void stats_apply(struct maptbl_stats *st, const uint8_t *node, uint32_t ns, bool add)
{
	struct maptbl_stats d;
	unsigned kind = node[2], level = node[3];
	uint32_t nr = node_nr(node), i, l;
	uint64_t *dst = (uint64_t *)st, *src = (uint64_t *)&d;

	memset(&d, 0, sizeof(d));
	mt_stats_node(&d, kind, level, nr, ns);
	for (i = 0; i < nr; i++) {
		struct mt_entry e;

		mt_decode_entry(node, kind, i, &e);
		if (kind != MAPTBL_NODE_INDEX)
			mt_stats_extent(&d, e.len, e.flags);
		else if (!e.child)
			d.nr_absent++;
	}
	/* Every counter up to table_bytes, and the per-level arrays, are plain sums. */
	for (l = 0; l < offsetof(struct maptbl_stats, table_bytes) / 8; l++)
		dst[l] = add ? dst[l] + src[l] : dst[l] - src[l];
	dst = (uint64_t *)((uint8_t *)st + offsetof(struct maptbl_stats, entry_bytes));
	src = (uint64_t *)((uint8_t *)&d + offsetof(struct maptbl_stats, entry_bytes));
	for (l = 0; l < 3; l++) /* entry_bytes, entries_used, entries_capacity */
		dst[l] = add ? dst[l] + src[l] : dst[l] - src[l];
	for (l = 0; l < MAPTBL_MAX_DEPTH; l++) {
		st->nodes_per_level[l] += add ? d.nodes_per_level[l] : -d.nodes_per_level[l];
		st->entries_per_level[l] += add ? d.entries_per_level[l] : -d.entries_per_level[l];
		st->capacity_per_level[l] += add ? d.capacity_per_level[l] : -d.capacity_per_level[l];
	}
}
_Static_assert(offsetof(struct maptbl_stats, table_bytes) == 64 &&
		       offsetof(struct maptbl_stats, entry_bytes) == 72 &&
		       offsetof(struct maptbl_stats, depth) == 96,
	       "stats_apply() knows the layout of struct maptbl_stats");

/* Depth (root level + 1) and the longest root-to-leaf path, from the index nodes only. */
static uint32_t longest_path(const struct maptbl_table *t, uint32_t n)
{
	const uint8_t *node = node_at(t, n);
	uint32_t nr = node_nr(node), i, best = 0;

	if (node[2] != MAPTBL_NODE_INDEX)
		return 1;
	for (i = 0; i < nr; i++) {
		struct mt_entry e;
		uint32_t d;

		mt_decode_entry(node, MAPTBL_NODE_INDEX, i, &e);
		if (!e.child)
			continue;
		d = longest_path(t, e.child);
		if (d > best)
			best = d;
	}
	return best + 1;
}

/*
 * When every level is a height and no entry is absent, the longest path is the root's level + 1
 * (each step can go down by exactly one). Otherwise it takes a walk over the index nodes: an
 * index node whose entries are all absent has level 1 but ends its paths (no leaf below it).
 */
static void stats_depth(const struct maptbl_table *t, uint32_t root, bool heights,
			struct maptbl_stats *st)
{
	st->depth = root ? node_at(t, root)[3] + 1u : 0;
	st->max_nodes_touched = !root ? 0
				: heights && !st->nr_absent ? st->depth
							    : longest_path(t, root);
}

/* ---- writer state ---- */

/* Marks @n's subtree LIVE; returns its height (0 for a leaf). */
static uint32_t mark_live(struct mt_wstate *ws, const struct maptbl_table *t, uint32_t n)
{
	const uint8_t *node = node_at(t, n);
	uint32_t nr = node_nr(node), i, h = 0;

	ws->slot[n] = SLOT_LIVE;
	if (node[2] != MAPTBL_NODE_INDEX)
		return 0;
	for (i = 0; i < nr; i++) {
		struct mt_entry e;

		mt_decode_entry(node, MAPTBL_NODE_INDEX, i, &e);
		if (e.child) {
			uint32_t c = mark_live(ws, t, e.child) + 1;

			h = c > h ? c : h;
		}
	}
	if (node[3] != (h ? h : 1))
		ws->heights = false;
	return h ? h : 1;
}

static int ws_get(struct maptbl_table *t, struct mt_wstate **out)
{
	struct mt_wstate *ws = t->ws;
	uint32_t n;

	if (ws) {
		*out = ws;
		return 0;
	}
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->nslots = (uint32_t)(t->len >> t->node_shift);
	ws->slot = calloc(ws->nslots, 1);
	ws->free = malloc((size_t)ws->nslots * sizeof(*ws->free));
	ws->ret = malloc((size_t)ws->nslots * sizeof(*ws->ret));
	ws->drop = malloc((size_t)ws->nslots * sizeof(*ws->drop));
	if (!ws->slot || !ws->free || !ws->ret || !ws->drop) {
		mt_wstate_free(ws);
		return -ENOMEM;
	}
	ws->slot[0] = SLOT_HEADER;
	ws->heights = true; /* builders and updates make them so; a table from elsewhere may not */
	if (t->root)
		mark_live(ws, t, t->root);
	/* Highest first, so that the lowest free slot is handed out first. */
	for (n = ws->nslots; n-- > 1;)
		if (ws->slot[n] == SLOT_FREE)
			ws->free[ws->nfree++] = n;
	ws->root = t->root;
	ws->virtual_blocks = t->virtual_blocks;
	ws->st = t->st;
	t->ws = ws;
	*out = ws;
	return 0;
}

/* Checks and prepares an update of @t. */
static int upd_begin(struct maptbl_table *t, struct upd *u)
{
	int err;

	if (!t || t->magic != MT_TABLE_MAGIC)
		return -EINVAL;
	if (t->readonly) {
		mt_log(MAPTBL_LOG_ERROR, "table is read-only (unknown features): it cannot be updated");
		return -EROFS;
	}
	memset(u, 0, sizeof(*u));
	err = ws_get(t, &u->ws);
	if (err)
		return err;
	u->t = t;
	u->ns = t->node_size;
	u->shift = t->node_shift;
	u->cap_i = maptbl_node_capacity(t->node_size, MAPTBL_NODE_INDEX);
	u->cap_c = maptbl_node_capacity(t->node_size, MAPTBL_NODE_LEAF_COMPACT);
	u->cap_w = maptbl_node_capacity(t->node_size, MAPTBL_NODE_LEAF_WIDE);
	u->wide_ok = !!(t->incompat & MAPTBL_INCOMPAT_WIDE_LEAF);
	return 0;
}

/* A node the operation replaces: released when the operation succeeds. */
static int release(struct upd *u, uint32_t n)
{
	if (u->nrel == u->caprel) {
		size_t cap = u->caprel ? u->caprel * 2 : 16;
		uint32_t *v = realloc(u->rel, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		u->rel = v;
		u->caprel = cap;
	}
	u->rel[u->nrel++] = n;
	stats_apply(&u->ws->st, node_at(u->t, n), u->ns, false);
	return 0;
}

static int release_subtree(struct upd *u, uint32_t n)
{
	const uint8_t *node = node_at(u->t, n);
	uint32_t nr = node_nr(node), i;
	int err;

	if (node[2] == MAPTBL_NODE_INDEX) {
		for (i = 0; i < nr; i++) {
			struct mt_entry e;

			mt_decode_entry(node, MAPTBL_NODE_INDEX, i, &e);
			if (e.child && (err = release_subtree(u, e.child)))
				return err;
		}
	}
	return release(u, n);
}

/* Encode @n entries of @kind into a zeroed node and seal it (header, CRC). */
static void encode_node(uint8_t *node, unsigned kind, unsigned level, uint32_t self,
			const struct mt_entry *e, uint32_t n, uint32_t ns)
{
	uint8_t *p = node + MAPTBL_NODE_HDR_SIZE;
	uint64_t base = e[0].start;
	uint32_t i;

	memset(node, 0, ns);
	for (i = 0; i < n; i++) {
		if (kind == MAPTBL_NODE_INDEX) {
			struct maptbl_index_entry *x = (struct maptbl_index_entry *)p + i;

			x->first_lo = maptbl_cpu_to_le32((uint32_t)e[i].start);
			x->first_hi = maptbl_cpu_to_le16((uint16_t)(e[i].start >> 32));
			x->nblocks_hi = maptbl_cpu_to_le16((uint16_t)(e[i].len >> 32));
			x->nblocks_lo = maptbl_cpu_to_le32((uint32_t)e[i].len);
			x->child = maptbl_cpu_to_le32(e[i].child);
		} else if (kind == MAPTBL_NODE_LEAF_COMPACT) {
			struct maptbl_compact_entry *x = (struct maptbl_compact_entry *)p + i;
			uint16_t lf = (uint16_t)(e[i].len - 1);

			if (e[i].flags & MAPTBL_EXTENT_UNWRITTEN)
				lf |= MAPTBL_COMPACT_UNWRITTEN;
			x->lblk_off = maptbl_cpu_to_le32((uint32_t)(e[i].start - base));
			x->len_flags = maptbl_cpu_to_le16(lf);
			x->pblk_hi = maptbl_cpu_to_le16((uint16_t)(e[i].pblk >> 32));
			x->pblk_lo = maptbl_cpu_to_le32((uint32_t)e[i].pblk);
		} else {
			struct maptbl_wide_entry *x = (struct maptbl_wide_entry *)p + i;

			x->lblk = maptbl_cpu_to_le64(e[i].start);
			x->pblk = maptbl_cpu_to_le64(e[i].pblk);
			x->len_lo = maptbl_cpu_to_le32((uint32_t)e[i].len);
			x->len_hi = maptbl_cpu_to_le16((uint16_t)(e[i].len >> 32));
			x->flags = maptbl_cpu_to_le16(
				e[i].flags & MAPTBL_EXTENT_UNWRITTEN ? MAPTBL_WIDE_UNWRITTEN : 0);
		}
	}
	mt_write_node_hdr(node, kind, level, n, self, base, ns);
}

/* Write a new node into a free slot; @ent gets the parent's entry for it. */
static int write_node(struct upd *u, unsigned kind, unsigned level, const struct mt_entry *e,
		      uint32_t n, struct mt_entry *ent)
{
	struct mt_wstate *ws = u->ws;
	uint32_t self;
	uint8_t *node;

	if (!ws->nfree)
		return -ENOSPC;
	if (ws->npend == ws->nslots) { /* a slot allocated, freed and allocated again: squeeze */
		size_t i, k = 0;

		/*
		 * Keep each slot still new once. This used to keep every entry of a new slot, so a
		 * slot allocated, freed and allocated again stayed twice, the list stayed full and
		 * the next entry went past its end (fuzz_update: tests/fuzz/regress/update).
		 */
		for (i = 0; i < ws->npend; i++)
			if (ws->slot[ws->pend[i]] == SLOT_NEW) {
				ws->slot[ws->pend[i]] = SLOT_SQUEEZED;
				ws->pend[k++] = ws->pend[i];
			}
		for (i = 0; i < k; i++)
			ws->slot[ws->pend[i]] = SLOT_NEW;
		ws->npend = k;
	}
	if (!ws->pend) {
		ws->pend = malloc((size_t)ws->nslots * sizeof(*ws->pend));
		if (!ws->pend)
			return -ENOMEM;
	}
	self = ws->free[--ws->nfree];
	ws->slot[self] = SLOT_NEW;
	ws->pend[ws->npend++] = self;
	node = node_at(u->t, self);
	encode_node(node, kind, level, self, e, n, u->ns);
	stats_apply(&ws->st, node, u->ns, true);
	ws->bytes_written += u->ns;
	ws->nodes_written++;
	ent->start = e[0].start;
	ent->len = e[n - 1].start + e[n - 1].len - e[0].start;
	ent->pblk = 0;
	ent->child = self;
	ent->flags = 0;
	return 0;
}

/* How many extents from e[0] fit one compact leaf (at most @max). */
static uint32_t compact_fit(const struct mt_entry *e, size_t n, uint32_t max)
{
	uint32_t k = 0;

	while (k < max && k < n && e[k].len <= MAPTBL_COMPACT_MAX_LEN &&
	       e[k].start - e[0].start <= MAPTBL_COMPACT_MAX_OFF)
		k++;
	return k;
}

/*
 * Pack a run of extents into leaves, evenly, each as full as @per_c / @per_w allow; append the
 * parent entries to @out. A table without WIDE_LEAF holds no extent longer than a compact entry
 * (the operations split them), so every leaf of it is compact.
 */
static int pack_leaves(struct upd *u, const struct mt_entry *e, size_t n, uint32_t per_c,
		       uint32_t per_w, struct evec *out)
{
	size_t i = 0;
	int err;

	while (i < n) {
		size_t rem = n - i, nodes, take;
		uint32_t k = compact_fit(e + i, rem, per_c);
		unsigned kind;
		struct mt_entry ent;

		if (k && (k >= (rem < per_w ? rem : per_w) || !u->wide_ok)) {
			nodes = (rem + per_c - 1) / per_c;
			take = (rem + nodes - 1) / nodes;
			take = take < k ? take : k;
			kind = MAPTBL_NODE_LEAF_COMPACT;
		} else if (u->wide_ok) {
			nodes = (rem + per_w - 1) / per_w;
			take = (rem + nodes - 1) / nodes;
			kind = MAPTBL_NODE_LEAF_WIDE;
		} else {
			return -EOVERFLOW; /* cannot happen: see above */
		}
		err = write_node(u, kind, 0, e + i, (uint32_t)take, &ent);
		if (!err)
			err = ev_push(out, &ent);
		if (err)
			return err;
		i += take;
	}
	return 0;
}

/* Items (extents and absent ranges, sorted) to parent entries: leaves for runs of extents. */
static int pack_items(struct upd *u, const struct mt_entry *it, size_t n, struct evec *out)
{
	size_t i = 0, j;
	int err;

	while (i < n) {
		if (it[i].flags & MAPTBL_EXTENT_ABSENT) {
			if ((err = ev_push(out, &it[i])))
				return err;
			i++;
			continue;
		}
		for (j = i; j < n && !(it[j].flags & MAPTBL_EXTENT_ABSENT); j++)
			;
		if ((err = pack_leaves(u, it + i, j - i, u->cap_c, u->cap_w, out)))
			return err;
		i = j;
	}
	return 0;
}

static uint32_t entry_level(const struct upd *u, const struct mt_entry *e)
{
	return e->child ? node_at(u->t, e->child)[3] : 0;
}

/*
 * Index entries into index nodes, evenly; the parent entries go to @out. A node's level is one
 * above the highest of its children, so levels are heights and do not creep up as the tree
 * splits and shrinks. A single present entry needs no node of its own: it is handed up as it is
 * (depth need not be uniform).
 */
static int pack_index(struct upd *u, const struct mt_entry *e, size_t n, struct evec *out)
{
	size_t i = 0, nodes, j;
	int err;

	if (!n)
		return 0;
	if (n == 1 && e[0].child)
		return ev_push(out, &e[0]);
	nodes = (n + u->cap_i - 1) / u->cap_i;
	while (i < n) {
		size_t take = (n - i + nodes - 1) / nodes;
		uint32_t level = 0;
		struct mt_entry ent;

		for (j = i; j < i + take; j++)
			if (entry_level(u, &e[j]) > level)
				level = entry_level(u, &e[j]);
		if (++level > MAPTBL_MAX_LEVEL) {
			mt_log(MAPTBL_LOG_ERROR, "the update would make the tree deeper than %d levels",
			       MAPTBL_MAX_DEPTH);
			return -E2BIG;
		}
		if ((err = write_node(u, MAPTBL_NODE_INDEX, level, e + i, (uint32_t)take, &ent)) ||
		    (err = ev_push(out, &ent)))
			return err;
		i += take;
		nodes--;
	}
	return 0;
}

/* Appends the parts of @e outside [a, b) to @v. */
static int keep_outside(struct evec *v, const struct mt_entry *e, uint64_t a, uint64_t b)
{
	struct mt_entry p;
	int err;

	if (e->start < a) {
		p = *e;
		p.len = a - e->start;
		if ((err = ev_push(v, &p)))
			return err;
	}
	if (e->start + e->len > b) {
		p = *e;
		p.start = b;
		p.len = e->start + e->len - b;
		if (!(e->flags & MAPTBL_EXTENT_ABSENT))
			p.pblk = e->pblk + (b - e->start);
		if ((err = ev_push(v, &p)))
			return err;
	}
	return 0;
}

static int rewrite(struct upd *u, uint32_t n, uint64_t a, uint64_t b, const struct mt_entry *it,
		   size_t ni, struct evec *out, bool *changed);

static int rewrite_leaf(struct upd *u, uint32_t n, uint64_t a, uint64_t b,
			const struct mt_entry *it, size_t ni, struct evec *out, bool *changed)
{
	const uint8_t *node = node_at(u->t, n);
	uint32_t nr = node_nr(node), i;
	struct evec v = { 0 };
	bool removed = false;
	size_t k = 0;
	int err = 0;

	/* The kept entries and the items are each sorted: merge them as they come. */
	if (ev_grow(&v, nr + ni + 2))
		return -ENOMEM;
	for (i = 0; i < nr && !err; i++) {
		struct mt_entry e;

		mt_decode_entry(node, node[2], i, &e);
		if (!intersects(&e, a, b)) {
			for (; k < ni && it[k].start < e.start && !err; k++)
				err = ev_push(&v, &it[k]);
			if (!err)
				err = ev_push(&v, &e);
			continue;
		}
		removed = true;
		if (e.start < a) {
			struct mt_entry p = e;

			p.len = a - e.start;
			err = ev_push(&v, &p);
			e.len -= p.len;
			e.pblk += p.len;
			e.start = a;
		}
		for (; k < ni && !err; k++) /* every item lies inside [a, b) */
			err = ev_push(&v, &it[k]);
		if (!err)
			err = keep_outside(&v, &e, a, b);
	}
	*changed = removed || ni;
	if (!err && *changed) {
		for (; k < ni && !err; k++)
			err = ev_push(&v, &it[k]);
		if (!err)
			err = pack_items(u, v.v, v.n, out);
		if (!err)
			err = release(u, n);
	}
	free(v.v);
	return err;
}

static int rewrite_index(struct upd *u, uint32_t n, uint64_t a, uint64_t b,
			 const struct mt_entry *it, size_t ni, struct evec *out, bool *changed)
{
	const uint8_t *node = node_at(u->t, n);
	uint32_t nr = node_nr(node), i;
	struct mt_entry *x = malloc(nr * sizeof(*x));
	size_t *first = calloc(nr, sizeof(*first)), *cnt = calloc(nr, sizeof(*cnt)), k, p;
	struct evec v = { 0 }, loose = { 0 };
	int err = 0;

	if (!x || !first || !cnt || ev_grow(&v, nr + ni + 8)) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nr; i++)
		mt_decode_entry(node, MAPTBL_NODE_INDEX, i, &x[i]);
	/*
	 * Each item goes to the child of the last entry starting at or before it (extending that
	 * child's range is safe: every later entry either starts past b or loses [a, b)), or to
	 * entry 0 when it starts before every entry. When that entry is absent the item stays
	 * here ("loose") and becomes entries of this node.
	 */
	p = 0;
	for (k = 0; k < ni && !err; k++) {
		size_t tgt;

		while (p + 1 < nr && x[p + 1].start <= it[k].start)
			p++;
		tgt = p;
		if (!x[tgt].child) {
			err = ev_push(&loose, &it[k]);
			continue;
		}
		if (!cnt[tgt])
			first[tgt] = k;
		cnt[tgt]++;
	}
	*changed = loose.n > 0;
	for (i = 0; i < nr && !err; i++) {
		bool hit = intersects(&x[i], a, b), ch = false;

		if (!x[i].child) {
			if (!hit) {
				err = ev_push(&v, &x[i]);
			} else {
				*changed = true;
				err = keep_outside(&v, &x[i], a, b);
			}
			continue;
		}
		if (!hit && !cnt[i]) {
			err = ev_push(&v, &x[i]);
			continue;
		}
		if (!cnt[i] && a <= x[i].start && x[i].start + x[i].len <= b) {
			/* The whole subtree goes. */
			*changed = true;
			err = release_subtree(u, x[i].child);
			continue;
		}
		{
			uint64_t ca = a > x[i].start ? a : x[i].start;
			uint64_t cb = b < x[i].start + x[i].len ? b : x[i].start + x[i].len;
			size_t before = v.n;

			if (ca > cb)
				ca = cb;
			err = rewrite(u, x[i].child, ca, cb, cnt[i] ? it + first[i] : NULL, cnt[i], &v,
				      &ch);
			if (!err && !ch) {
				v.n = before;
				err = ev_push(&v, &x[i]);
			}
			*changed = *changed || ch;
		}
	}
	if (!err && loose.n)
		err = pack_items(u, loose.v, loose.n, &v);
	if (!err && *changed) {
		/* In entry order already, but for loose items: those go where they belong. */
		if (loose.n && v.n > 1)
			qsort(v.v, v.n, sizeof(*v.v), cmp_start);
		err = pack_index(u, v.v, v.n, out);
		if (!err)
			err = release(u, n);
	}
out:
	free(x);
	free(first);
	free(cnt);
	free(v.v);
	free(loose.v);
	return err;
}

/*
 * Replace what node @n's subtree holds in [a, b) by the items @it (sorted, inside [a, b), or
 * assigned here by the parent). Appends the entries that replace @n's entry to @out, or sets
 * *changed false (and appends nothing) when nothing changes.
 */
static int rewrite(struct upd *u, uint32_t n, uint64_t a, uint64_t b, const struct mt_entry *it,
		   size_t ni, struct evec *out, bool *changed)
{
	if (node_at(u->t, n)[2] == MAPTBL_NODE_INDEX)
		return rewrite_index(u, n, a, b, it, ni, out, changed);
	return rewrite_leaf(u, n, a, b, it, ni, out, changed);
}

/* Apply "replace [a, b) by @it" to the pending tree. */
static int apply(struct upd *u, uint64_t a, uint64_t b, const struct mt_entry *it, size_t ni)
{
	struct mt_wstate *ws = u->ws;
	struct evec cur = { 0 }, next = { 0 };
	bool changed = true;
	int err;

	if (ws->root)
		err = rewrite(u, ws->root, a, b, it, ni, &cur, &changed);
	else
		err = pack_items(u, it, ni, &cur);
	if (err || !changed)
		goto out;
	/* New levels on top until one present entry is left: that is the root. */
	while (cur.n > 1 || (cur.n == 1 && !cur.v[0].child)) {
		struct evec tmp;

		next.n = 0;
		err = pack_index(u, cur.v, cur.n, &next);
		if (err)
			goto out;
		if (next.n == 1 && next.v[0].child == 0)
			break; /* cannot happen: a packed node is present */
		tmp = cur;
		cur = next;
		next = tmp;
	}
	ws->root = cur.n ? cur.v[0].child : 0;
	ws->dirty = true;
out:
	free(cur.v);
	free(next.v);
	return err ? err : (changed ? 1 : 0);
}

/* ---- one operation: snapshot, apply, commit or undo ---- */

struct snap {
	uint32_t root, nfree;
	size_t npend;
	uint64_t virtual_blocks;
	bool dirty;
	struct maptbl_stats st;
};

static void snap_take(struct upd *u, struct snap *s)
{
	struct mt_wstate *ws = u->ws;

	if (ws->npend > ws->nslots) { /* slots reused within one batch: keep the NEW ones */
		size_t i, k = 0;

		for (i = 0; i < ws->npend; i++)
			if (ws->slot[ws->pend[i]] == SLOT_NEW)
				ws->pend[k++] = ws->pend[i];
		ws->npend = k;
	}
	s->root = ws->root;
	s->nfree = ws->nfree;
	s->npend = ws->npend;
	s->virtual_blocks = ws->virtual_blocks;
	s->dirty = ws->dirty;
	s->st = ws->st;
}

static void undo(struct upd *u, const struct snap *s)
{
	struct mt_wstate *ws = u->ws;
	uint32_t i;

	/* The slots the operation took are still on the stack above the old height. */
	for (i = ws->nfree; i < s->nfree; i++)
		ws->slot[ws->free[i]] = SLOT_FREE;
	ws->nfree = s->nfree;
	ws->npend = s->npend;
	ws->root = s->root;
	ws->virtual_blocks = s->virtual_blocks;
	ws->dirty = s->dirty;
	ws->st = s->st;
}

/* The operation succeeded: what it replaced is freed (unpublished) or retired at publish. */
static void commit(struct upd *u)
{
	struct mt_wstate *ws = u->ws;
	size_t i;

	for (i = 0; i < u->nrel; i++) {
		uint32_t n = u->rel[i];

		if (ws->slot[n] == SLOT_NEW) {
			ws->slot[n] = SLOT_FREE;
			ws->free[ws->nfree++] = n;
		} else {
			ws->drop[ws->ndrop++] = n;
		}
	}
}

static void store_live(uint8_t *buf, uint32_t root, uint32_t gen)
{
	maptbl_le64_t le = maptbl_cpu_to_le64((uint64_t)gen << 32 | root);
	unsigned long long v;

	memcpy(&v, &le, sizeof(v));
	/* The buffer is 4096-aligned, so bytes 16..23 are one aligned 8-byte word. */
	atomic_store_explicit((_Atomic unsigned long long *)(void *)(buf + 16), v,
			      memory_order_release);
}

static void do_publish(struct maptbl_table *t)
{
	struct mt_wstate *ws = t->ws;
	uint32_t gen = t->generation + 1;
	size_t i;

	if (ws->virtual_blocks != t->virtual_blocks) {
		/* Growth: the header's size and checksum, ordered before the live word (§12). */
		const struct maptbl_header *h = (const void *)t->buf;
		maptbl_le64_t vb = maptbl_cpu_to_le64(ws->virtual_blocks);
		unsigned long long v64;
		maptbl_le32_t crc;
		unsigned v32;

		memcpy(&v64, &vb, 8);
		atomic_store_explicit((_Atomic unsigned long long *)(void *)(t->buf + 56), v64,
				      memory_order_relaxed);
		crc = maptbl_cpu_to_le32(mt_header_crc(t->buf, maptbl_le16_to_cpu(h->header_len)));
		memcpy(&v32, &crc, 4);
		atomic_store_explicit((_Atomic unsigned *)(void *)(t->buf + 12), v32,
				      memory_order_relaxed);
		ws->bytes_written += 12;
	}
	for (i = 0; i < ws->npend; i++)
		if (ws->slot[ws->pend[i]] == SLOT_NEW)
			ws->slot[ws->pend[i]] = SLOT_LIVE;
	if (ws->nret + ws->ndrop > ws->nslots) {
		memmove(ws->ret, ws->ret + ws->ret_head, (ws->nret - ws->ret_head) * sizeof(*ws->ret));
		ws->nret -= ws->ret_head;
		ws->ret_head = 0;
	}
	for (i = 0; i < ws->ndrop; i++) {
		ws->slot[ws->drop[i]] = SLOT_RETIRED;
		ws->ret[ws->nret].node = ws->drop[i];
		ws->ret[ws->nret++].gen = gen;
	}
	store_live(t->buf, ws->root, gen);
	ws->bytes_written += 8;
	ws->publishes++;
	ws->npend = 0;
	ws->ndrop = 0;
	ws->dirty = false;
	stats_depth(t, ws->root, ws->heights, &ws->st);
	t->root = ws->root;
	t->generation = gen;
	t->virtual_blocks = ws->virtual_blocks;
	t->st = ws->st;
	mt_table_changed(t);
}

#define UPD_KNOWN_FLAGS MAPTBL_UPDATE_STAGE

/* Replace [a, b) by @it; publish unless staged. @u is released. */
static int run(struct upd *u, uint64_t a, uint64_t b, const struct mt_entry *it, size_t ni,
	       uint32_t flags)
{
	struct snap s;
	int r;

	snap_take(u, &s);
	r = apply(u, a, b, it, ni);
	if (r < 0) {
		undo(u, &s);
		if (r == -ENOSPC)
			mt_log(MAPTBL_LOG_INFO,
			       "no free node left for the update (%u slots): reclaim or compact",
			       u->ws->nslots);
	} else {
		commit(u);
		r = 0;
		if (u->ws->dirty && !(flags & MAPTBL_UPDATE_STAGE))
			do_publish(u->t);
	}
	free(u->rel);
	u->rel = NULL;
	return r;
}

static int start(struct maptbl_table *t, struct upd *u, uint32_t flags, const char *what)
{
	if (flags & ~UPD_KNOWN_FLAGS) {
		mt_log(MAPTBL_LOG_ERROR, "%s: unknown flags 0x%x", what, flags & ~UPD_KNOWN_FLAGS);
		return -EINVAL;
	}
	return upd_begin(t, u);
}

static int check_range(const struct upd *u, const char *what, uint64_t lblk, uint64_t len)
{
	uint64_t vb = u->ws->virtual_blocks;

	if (!len) {
		mt_log(MAPTBL_LOG_ERROR, "%s at block %llu: length is 0", what, ULL(lblk));
		return -EINVAL;
	}
	if (lblk >= vb || len > vb - lblk) {
		mt_log(MAPTBL_LOG_ERROR,
		       "%s of blocks [%llu, +%llu): past the virtual disk's %llu blocks", what,
		       ULL(lblk), ULL(len), ULL(vb));
		return -ERANGE;
	}
	return 0;
}

static int check_phys(const struct upd *u, const char *what, uint64_t pblk, uint64_t len)
{
	uint64_t disk = u->t->disk_blocks;

	if (pblk >= MAPTBL_MAX_BLK || len > MAPTBL_MAX_BLK - pblk || (disk && pblk + len > disk)) {
		mt_log(MAPTBL_LOG_ERROR,
		       "%s: physical blocks [%llu, +%llu) end past the disk (%llu blocks) or 2^48",
		       what, ULL(pblk), ULL(len), ULL(disk));
		return -ERANGE;
	}
	return 0;
}

/* Extents and absent ranges of the pending tree that meet [lo, hi), in order. */
static int collect_node(const struct upd *u, uint32_t n, uint64_t lo, uint64_t hi,
			struct evec *ev)
{
	const uint8_t *node = node_at(u->t, n);
	uint32_t nr = node_nr(node), i;
	int err;

	for (i = 0; i < nr; i++) {
		struct mt_entry e;

		mt_decode_entry(node, node[2], i, &e);
		if (e.start >= hi)
			break;
		if (!intersects(&e, lo, hi))
			continue;
		err = node[2] == MAPTBL_NODE_INDEX && e.child ? collect_node(u, e.child, lo, hi, ev)
							       : ev_push(ev, &e);
		if (err)
			return err;
	}
	return 0;
}

static int collect(const struct upd *u, uint64_t lo, uint64_t hi, struct evec *ev)
{
	ev->n = 0;
	return u->ws->root ? collect_node(u, u->ws->root, lo, hi, ev) : 0;
}

/* Appends @e to @it, cut into compact-sized pieces when the table has no wide leaves. */
static int push_split(const struct upd *u, struct evec *it, const struct mt_entry *e)
{
	struct mt_entry p = *e;
	int err;

	while (!u->wide_ok && p.len > MAPTBL_COMPACT_MAX_LEN) {
		struct mt_entry q = p;

		q.len = MAPTBL_COMPACT_MAX_LEN;
		if ((err = ev_push(it, &q)))
			return err;
		p.start += MAPTBL_COMPACT_MAX_LEN;
		p.pblk += MAPTBL_COMPACT_MAX_LEN;
		p.len -= MAPTBL_COMPACT_MAX_LEN;
	}
	return ev_push(it, &p);
}

/* Whether extent @b continues extent @a on the disk (and the sum fits a length field). */
static bool contiguous(const struct mt_entry *a, const struct mt_entry *b)
{
	return !(a->flags & MAPTBL_EXTENT_ABSENT) && !(b->flags & MAPTBL_EXTENT_ABSENT) &&
	       a->flags == b->flags && a->start + a->len == b->start &&
	       a->pblk + a->len == b->pblk && a->len + b->len < MAPTBL_MAX_BLK;
}

MAPTBL_API int maptbl_table_insert(struct maptbl_table *t, const struct maptbl_extent *e,
				   uint32_t flags)
{
	struct evec near = { 0 }, it = { 0 };
	struct mt_entry x;
	struct upd u;
	uint64_t lo, hi;
	size_t i;
	int err;

	if (!e)
		return -EINVAL;
	if ((err = start(t, &u, flags, "insert")))
		return err;
	if (e->flags & ~MAPTBL_EXTENT_UNWRITTEN || e->reserved) {
		mt_log(MAPTBL_LOG_ERROR, "insert at block %llu: unknown extent flags 0x%x or reserved 0x%x",
		       ULL(e->lblk), e->flags & ~MAPTBL_EXTENT_UNWRITTEN, e->reserved);
		return -EINVAL;
	}
	if ((err = check_range(&u, "insert", e->lblk, e->len)) ||
	    (err = check_phys(&u, "insert", e->pblk, e->len)))
		return err;
	lo = e->lblk ? e->lblk - 1 : 0;
	hi = e->lblk + e->len < u.ws->virtual_blocks ? e->lblk + e->len + 1 : u.ws->virtual_blocks;
	if ((err = collect(&u, lo, hi, &near)))
		goto out;
	x.start = e->lblk;
	x.len = e->len;
	x.pblk = e->pblk;
	x.flags = e->flags;
	x.child = 0;
	for (i = 0; i < near.n; i++) {
		const struct mt_entry *c = &near.v[i];

		if (!intersects(c, e->lblk, e->lblk + e->len))
			continue;
		if (c->flags & MAPTBL_EXTENT_ABSENT) {
			mt_log(MAPTBL_LOG_ERROR,
			       "insert of blocks [%llu, +%llu): blocks [%llu, +%llu) are absent (pruned); unmark them first",
			       ULL(e->lblk), ULL(e->len), ULL(c->start), ULL(c->len));
			err = -ENXIO;
		} else {
			mt_log(MAPTBL_LOG_ERROR,
			       "insert of blocks [%llu, +%llu): overlaps the extent at block %llu (+%llu)",
			       ULL(e->lblk), ULL(e->len), ULL(c->start), ULL(c->len));
			err = -EEXIST;
		}
		goto out;
	}
	/* Merge with the neighbours when the disk blocks continue. */
	for (i = 0; i < near.n; i++) {
		struct mt_entry *c = &near.v[i];

		if (contiguous(c, &x)) {
			x.len += c->len;
			x.start = c->start;
			x.pblk = c->pblk;
		} else if (contiguous(&x, c)) {
			x.len += c->len;
		}
	}
	if (!(err = push_split(&u, &it, &x)))
		err = run(&u, x.start, x.start + x.len, it.v, it.n, flags);
out:
	free(u.rel);
	free(near.v);
	free(it.v);
	return err;
}

MAPTBL_API int maptbl_table_convert(struct maptbl_table *t, uint64_t lblk, uint64_t len,
				    uint32_t flags)
{
	struct evec near = { 0 }, parts = { 0 }, it = { 0 };
	uint64_t lo, hi, end = lblk + len, pos = lblk;
	bool any = false;
	struct upd u;
	size_t i;
	int err;

	if ((err = start(t, &u, flags, "convert")) || (err = check_range(&u, "convert", lblk, len)))
		return err;
	lo = lblk ? lblk - 1 : 0;
	hi = end < u.ws->virtual_blocks ? end + 1 : end;
	if ((err = collect(&u, lo, hi, &near)))
		goto out;
	for (i = 0; i < near.n; i++) {
		const struct mt_entry *c = &near.v[i];

		if (!intersects(c, lblk, end))
			continue;
		if (c->start > pos)
			break; /* a hole at pos */
		if (c->flags & MAPTBL_EXTENT_ABSENT) {
			mt_log(MAPTBL_LOG_ERROR, "convert of blocks [%llu, +%llu): blocks from %llu are absent (pruned)",
			       ULL(lblk), ULL(len), ULL(pos));
			err = -ENXIO;
			goto out;
		}
		pos = c->start + c->len;
		any = any || (c->flags & MAPTBL_EXTENT_UNWRITTEN);
	}
	if (pos < end) {
		mt_log(MAPTBL_LOG_ERROR, "convert of blocks [%llu, +%llu): block %llu is a hole",
		       ULL(lblk), ULL(len), ULL(pos));
		err = -ENOENT;
		goto out;
	}
	if (!any)
		goto out; /* all written already */
	/* The touched extents and their neighbours, cut at the range and written inside it. */
	for (i = 0; i < near.n && !err; i++) {
		struct mt_entry c = near.v[i], p;
		uint64_t ce = c.start + c.len;
		uint64_t m0 = c.start > lblk ? c.start : lblk, m1 = ce < end ? ce : end;

		if (c.flags & MAPTBL_EXTENT_ABSENT)
			continue;
		if (m0 > m1)
			m0 = m1;
		if (c.start < m0) {
			p = c;
			p.len = m0 - c.start;
			err = ev_push(&parts, &p);
		}
		if (!err && m0 < m1) {
			p = c;
			p.start = m0;
			p.pblk = c.pblk + (m0 - c.start);
			p.len = m1 - m0;
			p.flags = 0;
			err = ev_push(&parts, &p);
		}
		if (!err && m1 < ce && m1 > c.start) {
			p = c;
			p.start = m1;
			p.pblk = c.pblk + (m1 - c.start);
			p.len = ce - m1;
			err = ev_push(&parts, &p);
		}
	}
	/* Merge what now continues on the disk, then cut for compact leaves. */
	if (!err) {
		size_t w = 0;

		for (i = 0; i < parts.n; i++) {
			if (w && contiguous(&parts.v[w - 1], &parts.v[i]))
				parts.v[w - 1].len += parts.v[i].len;
			else
				parts.v[w++] = parts.v[i];
		}
		parts.n = w;
		for (i = 0; i < parts.n && !err; i++)
			err = push_split(&u, &it, &parts.v[i]);
	}
	if (!err)
		err = run(&u, parts.v[0].start,
			  parts.v[parts.n - 1].start + parts.v[parts.n - 1].len, it.v, it.n, flags);
out:
	free(u.rel);
	free(near.v);
	free(parts.v);
	free(it.v);
	return err;
}

MAPTBL_API int maptbl_table_punch(struct maptbl_table *t, uint64_t lblk, uint64_t len,
				  uint32_t flags)
{
	struct evec near = { 0 };
	struct upd u;
	size_t i;
	int err;

	if ((err = start(t, &u, flags, "punch")) || (err = check_range(&u, "punch", lblk, len)))
		return err;
	if ((err = collect(&u, lblk, lblk + len, &near)))
		goto out;
	for (i = 0; i < near.n; i++) {
		if (near.v[i].flags & MAPTBL_EXTENT_ABSENT) {
			mt_log(MAPTBL_LOG_ERROR, "punch of blocks [%llu, +%llu): blocks from %llu are absent (pruned)",
			       ULL(lblk), ULL(len), ULL(near.v[i].start));
			err = -ENXIO;
			goto out;
		}
	}
	if (near.n)
		err = run(&u, lblk, lblk + len, NULL, 0, flags);
out:
	free(u.rel);
	free(near.v);
	return err;
}

MAPTBL_API int maptbl_table_mark_absent(struct maptbl_table *t, uint64_t lblk, uint64_t len,
					uint32_t flags)
{
	struct mt_entry x = { .start = lblk, .len = len, .flags = MAPTBL_EXTENT_ABSENT };
	struct upd u;
	int err;

	if ((err = start(t, &u, flags, "mark absent")) ||
	    (err = check_range(&u, "mark absent", lblk, len)))
		return err;
	return run(&u, lblk, lblk + len, &x, 1, flags);
}

MAPTBL_API int maptbl_table_unmark_absent(struct maptbl_table *t, uint64_t lblk, uint64_t len,
					  const struct maptbl_extent *ext, size_t nr,
					  uint32_t flags)
{
	struct evec near = { 0 }, it = { 0 };
	uint64_t end = lblk + len, pos = lblk, prev = lblk;
	struct upd u;
	size_t i;
	int err;

	if (!ext && nr)
		return -EINVAL;
	if ((err = start(t, &u, flags, "unmark absent")) ||
	    (err = check_range(&u, "unmark absent", lblk, len)))
		return err;
	for (i = 0; i < nr; i++) {
		const struct maptbl_extent *e = &ext[i];

		if (e->flags & ~MAPTBL_EXTENT_UNWRITTEN || e->reserved || !e->len ||
		    e->lblk < prev || e->lblk >= end || e->len > end - e->lblk) {
			mt_log(MAPTBL_LOG_ERROR,
			       "unmark absent of blocks [%llu, +%llu): extent %zu (lblk %llu, length %llu) is outside the range, overlaps the one before, has length 0 or unknown flags",
			       ULL(lblk), ULL(len), i, ULL(e->lblk), ULL(e->len));
			return -EINVAL;
		}
		if ((err = check_phys(&u, "unmark absent", e->pblk, e->len)))
			return err;
		prev = e->lblk + e->len;
	}
	if ((err = collect(&u, lblk, end, &near)))
		goto out;
	for (i = 0; i < near.n && pos < end; i++) {
		if (!(near.v[i].flags & MAPTBL_EXTENT_ABSENT) || near.v[i].start > pos)
			break;
		pos = near.v[i].start + near.v[i].len;
	}
	if (pos < end) {
		mt_log(MAPTBL_LOG_ERROR, "unmark absent of blocks [%llu, +%llu): block %llu is not absent",
		       ULL(lblk), ULL(len), ULL(pos));
		err = -ENOENT;
		goto out;
	}
	for (i = 0; i < nr && !err; i++) {
		struct mt_entry x = { .start = ext[i].lblk, .len = ext[i].len, .pblk = ext[i].pblk,
				      .flags = ext[i].flags };

		err = push_split(&u, &it, &x);
	}
	if (!err)
		err = run(&u, lblk, end, it.v, it.n, flags);
out:
	free(u.rel);
	free(near.v);
	free(it.v);
	return err;
}

MAPTBL_API int maptbl_table_grow(struct maptbl_table *t, uint64_t virtual_blocks, uint32_t flags)
{
	struct upd u;
	int err;

	if ((err = start(t, &u, flags, "grow")))
		return err;
	if (virtual_blocks > MAPTBL_MAX_BLK) {
		mt_log(MAPTBL_LOG_ERROR, "grow to %llu blocks: more than 2^48", ULL(virtual_blocks));
		return -ERANGE;
	}
	if (virtual_blocks < u.ws->virtual_blocks) {
		mt_log(MAPTBL_LOG_ERROR, "grow to %llu blocks: smaller than the virtual disk's %llu",
		       ULL(virtual_blocks), ULL(u.ws->virtual_blocks));
		return -EINVAL;
	}
	if (virtual_blocks == u.ws->virtual_blocks)
		return 0;
	u.ws->virtual_blocks = virtual_blocks;
	u.ws->dirty = true;
	if (!(flags & MAPTBL_UPDATE_STAGE))
		do_publish(t);
	return 0;
}

MAPTBL_API int maptbl_table_publish(struct maptbl_table *t)
{
	if (!t || t->magic != MT_TABLE_MAGIC)
		return -EINVAL;
	if (t->ws && t->ws->dirty)
		do_publish(t);
	return 0;
}

MAPTBL_API int maptbl_table_reclaim(struct maptbl_table *t, uint32_t oldest)
{
	struct mt_wstate *ws;
	int n = 0;

	if (!t || t->magic != MT_TABLE_MAGIC)
		return -EINVAL;
	ws = t->ws;
	if (!ws)
		return 0;
	/* Generations never decrease along the list; compare them as serial numbers (wrap). */
	while (ws->ret_head < ws->nret && (int32_t)(ws->ret[ws->ret_head].gen - oldest) <= 0) {
		uint32_t node = ws->ret[ws->ret_head++].node;

		ws->slot[node] = SLOT_FREE;
		ws->free[ws->nfree++] = node;
		if (n < INT32_MAX)
			n++;
	}
	if (ws->ret_head == ws->nret)
		ws->ret_head = ws->nret = 0;
	return n;
}

MAPTBL_API int maptbl_table_space(struct maptbl_table *t, struct maptbl_space *sp, size_t sz)
{
	struct maptbl_space s;
	struct mt_wstate *ws;
	uint32_t n;
	int err;

	if (!t || t->magic != MT_TABLE_MAGIC || !sp)
		return -EINVAL;
	if ((err = ws_get(t, &ws)))
		return err;
	memset(&s, 0, sizeof(s));
	s.slots = ws->nslots;
	for (n = 1; n < ws->nslots; n++) {
		switch (ws->slot[n]) {
		case SLOT_LIVE:
			s.tree_nodes++;
			break;
		case SLOT_NEW:
			s.pending_nodes++;
			break;
		case SLOT_RETIRED:
			s.retired_nodes++;
			break;
		default:
			break;
		}
	}
	/* LIVE nodes that staged updates replaced are still in the published tree. */
	s.free_nodes = ws->nfree;
	s.bytes_written = ws->bytes_written;
	s.nodes_written = ws->nodes_written;
	s.publishes = ws->publishes;
	if (ws->ret_head < ws->nret)
		s.oldest_retired = ws->ret[ws->ret_head].gen;
	memset(sp, 0, sz);
	memcpy(sp, &s, sz < sizeof(s) ? sz : sizeof(s));
	return 0;
}

/* ---- compaction: a packed copy of the pending tree in a new buffer ---- */

struct plan_leaf {
	size_t start;
	uint32_t count, kind;
};

MAPTBL_API int maptbl_table_compact(struct maptbl_table *t, const struct maptbl_build_opts *opts,
				    struct maptbl_table **out)
{
	uint64_t counts[MAPTBL_MAX_DEPTH + 1] = { 0 }, base[MAPTBL_MAX_DEPTH + 1] = { 0 };
	struct evec items = { 0 }, lvl = { 0 }, up = { 0 };
	struct plan_leaf *leaves = NULL;
	uint32_t per_c, per_w, per_i, levels = 0, l, hlen, gen;
	size_t nleaves = 0, i, j, total;
	struct maptbl_build_opts o;
	struct maptbl_table *t2;
	struct maptbl_stats st;
	uint8_t *buf = NULL;
	uint64_t vb, e1;
	struct upd u;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((err = upd_begin(t, &u)))
		return err;
	if ((err = mt_opts_copy(&o, opts, sizeof(o), "maptbl_build_opts")))
		return err;
	vb = o.virtual_blocks ? o.virtual_blocks : u.ws->virtual_blocks;
	if ((o.block_size && o.block_size != t->block_size) ||
	    (o.node_size && o.node_size != t->node_size) || o.fill_pct > 100 ||
	    vb < u.ws->virtual_blocks || vb > MAPTBL_MAX_BLK ||
	    (o.disk_blocks && o.disk_blocks != t->disk_blocks) || o.disk_path || o.disk_id ||
	    o.spare_nodes > UINT32_MAX) {
		mt_log(MAPTBL_LOG_ERROR,
		       "compact: options must keep the block size, node size, disk and disk record, and not shrink the virtual disk");
		return -EINVAL;
	}
	gen = o.generation ? o.generation : t->generation + 1;
	per_c = u.cap_c * (o.fill_pct ? o.fill_pct : 100) / 100;
	per_w = u.cap_w * (o.fill_pct ? o.fill_pct : 100) / 100;
	per_i = u.cap_i * (o.fill_pct ? o.fill_pct : 100) / 100;
	per_c = per_c ? per_c : 1;
	per_w = per_w ? per_w : 1;
	per_i = per_i > 2 ? per_i : 2;
	if ((err = collect(&u, 0, u.ws->virtual_blocks, &items)))
		goto out;

	/* Plan: leaves (as the builder chooses them), then the index levels. */
	leaves = malloc((items.n + 1) * sizeof(*leaves));
	if (!leaves) {
		err = -ENOMEM;
		goto out;
	}
	e1 = 0;
	for (i = 0, j = 0; i < items.n;) {
		size_t rem;
		uint32_t k, need;

		if (items.v[i].flags & MAPTBL_EXTENT_ABSENT) {
			e1++;
			i++;
			continue;
		}
		if (j <= i) /* the end of this run of extents */
			for (j = i; j < items.n && !(items.v[j].flags & MAPTBL_EXTENT_ABSENT); j++)
				;
		rem = j - i;
		k = compact_fit(items.v + i, rem, per_c);
		need = rem < per_w ? (uint32_t)rem : per_w;
		leaves[nleaves].start = i;
		if (k && (k >= need || !u.wide_ok)) {
			leaves[nleaves].kind = MAPTBL_NODE_LEAF_COMPACT;
			leaves[nleaves].count = k;
		} else {
			leaves[nleaves].kind = MAPTBL_NODE_LEAF_WIDE;
			leaves[nleaves].count = need;
		}
		i += leaves[nleaves++].count;
		e1++;
	}
	counts[0] = nleaves;
	/* Index levels until one present entry (a single leaf needs none). */
	{
		uint64_t e = e1;
		bool single_leaf = e1 == 1 && nleaves == 1;

		while (e > 1 || (e == 1 && !single_leaf && levels == 0)) {
			if (levels + 1 > MAPTBL_MAX_LEVEL) {
				mt_log(MAPTBL_LOG_ERROR, "compact: the tree would need more than %d levels",
				       MAPTBL_MAX_DEPTH);
				err = -E2BIG;
				goto out;
			}
			levels++;
			counts[levels] = (e + per_i - 1) / per_i;
			e = counts[levels];
		}
	}
	total = 1;
	for (l = levels + 1; l-- > 0;) {
		base[l] = total;
		total += counts[l];
	}
	if ((uint64_t)total + o.spare_nodes > UINT32_MAX ||
	    (uint64_t)total + o.spare_nodes > SIZE_MAX / t->node_size) {
		err = -E2BIG;
		goto out;
	}
	total += o.spare_nodes;
	if (posix_memalign((void **)&buf, 4096, total * t->node_size)) {
		err = -ENOMEM;
		goto out;
	}
	memset(buf, 0, total * t->node_size);
	memset(&st, 0, sizeof(st));

	/* Leaves, and the entries of level 1 (leaves and absent ranges, in order). */
	for (i = 0, j = 0; i < items.n;) {
		struct mt_entry ent;

		if (items.v[i].flags & MAPTBL_EXTENT_ABSENT) {
			err = ev_push(&lvl, &items.v[i++]);
		} else {
			const struct plan_leaf *pl = &leaves[j];
			const struct mt_entry *e = items.v + pl->start;
			uint32_t self = (uint32_t)(base[0] + j++);
			uint8_t *node = buf + (size_t)self * t->node_size;

			encode_node(node, pl->kind, 0, self, e, pl->count, t->node_size);
			stats_apply(&st, node, t->node_size, true);
			ent.start = e[0].start;
			ent.len = e[pl->count - 1].start + e[pl->count - 1].len - e[0].start;
			ent.pblk = 0;
			ent.child = self;
			ent.flags = 0;
			err = ev_push(&lvl, &ent);
			i += pl->count;
		}
		if (err)
			goto out;
	}
	for (l = 1; l <= levels; l++) {
		struct evec tmp;

		up.n = 0;
		for (i = 0, j = 0; i < lvl.n; i += per_i, j++) {
			uint32_t self = (uint32_t)(base[l] + j);
			uint32_t n = lvl.n - i < per_i ? (uint32_t)(lvl.n - i) : per_i;
			uint8_t *node = buf + (size_t)self * t->node_size;
			struct mt_entry ent = { .start = lvl.v[i].start, .child = self };

			ent.len = lvl.v[i + n - 1].start + lvl.v[i + n - 1].len - ent.start;
			encode_node(node, MAPTBL_NODE_INDEX, l, self, lvl.v + i, n, t->node_size);
			stats_apply(&st, node, t->node_size, true);
			if ((err = ev_push(&up, &ent)))
				goto out;
		}
		tmp = lvl;
		lvl = up;
		up = tmp;
	}

	/* The header: the old one (disk record and all), with the new size, root and length. */
	hlen = maptbl_le16_to_cpu(((const struct maptbl_header *)t->buf)->header_len);
	memcpy(buf, t->buf, hlen);
	{
		struct maptbl_header *h = (struct maptbl_header *)buf;

		h->root = maptbl_cpu_to_le32(lvl.n ? lvl.v[0].child : 0);
		h->generation = maptbl_cpu_to_le32(gen);
		h->virtual_blocks = maptbl_cpu_to_le64(vb);
		h->table_len = maptbl_cpu_to_le64((uint64_t)total * t->node_size);
		h->header_crc = maptbl_cpu_to_le32(mt_header_crc(buf, hlen));
	}
	t2 = mt_table_new(buf, total * t->node_size);
	if (!t2) {
		err = -ENOMEM;
		goto out;
	}
	buf = NULL;
	t2->readonly = false;
	st.table_bytes = t2->len;
	stats_depth(t2, t2->root, true, &st);
	t2->st = st;
	mt_table_changed(t2);
	*out = t2;
out:
	free(buf);
	free(leaves);
	free(items.v);
	free(lvl.v);
	free(up.v);
	return err;
}
