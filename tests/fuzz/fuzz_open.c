/* SPDX-License-Identifier: MIT */
/*
 * fuzz_open.c - libFuzzer target: an untrusted buffer given to maptbl_table_open() and to the
 * reference walker (STYLE.md §10).
 *
 * For every input:
 *  - maptbl_table_open() either fails with -EBADMSG or -EOPNOTSUPP and a diagnostic, or succeeds;
 *  - the walker (with and without MAPTBL_WALK_CHECK_CRC) reads the input through a bounds-checked
 *    callback and looks up blocks taken from the input: it must never crash, never read past
 *    table_len, and every answer must keep to the walker's contract (fuzz_util.h).
 * When the table opened, in addition:
 *  - the getters, the statistics and maptbl_table_iterate() agree with each other and with the
 *    header;
 *  - for every extent boundary and for blocks derived from the input, maptbl_table_lookup(), both
 *    walkers and the iterated extent list give the same state, pblk, run length (and, library
 *    versus walker, the same number of nodes);
 *  - rebuilding the iterated extents with maptbl_table_build() gives a table that answers the
 *    same (when the table has no absent subtree, which the builder cannot write).
 *
 * Any disagreement aborts. tests/fuzz/fuzz_replay.c runs this over the corpus without libFuzzer.
 */
#include "fuzz_util.h"

#define MAX_EXTENTS 65536u	/* iterated extents kept for the checks (inputs are small) */
#define MAX_DERIVED 256u	/* lookups of blocks taken from the input bytes */

struct ext_list {
	struct maptbl_extent *e;
	size_t n, cap;
	int overflow;
};

static int collect(void *ctx, const struct maptbl_extent *e)
{
	struct ext_list *l = ctx;

	if (l->n == l->cap) {
		if (l->cap == MAX_EXTENTS) {
			l->overflow = 1;
			return 0;
		}
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
		FZ_CHECK(l->e != NULL, "out of memory");
	}
	l->e[l->n++] = *e;
	return 0;
}

static int stop_at(void *ctx, const struct maptbl_extent *e)
{
	size_t *left = ctx;

	(void)e;
	return --*left == 0 ? 7 : 0;
}

/* What the iterated extent list says about @lblk: the oracle for a table that opened. */
static void oracle(const struct ext_list *l, uint64_t vb, uint64_t lblk, struct maptbl_mapping *m)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) { /* first extent that ends after lblk */
		size_t mid = lo + (hi - lo) / 2;

		if (l->e[mid].lblk + l->e[mid].len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	m->pblk = 0;
	if (lo == l->n) {
		m->state = MAPTBL_MAP_HOLE;
		m->len = vb - lblk;
	} else if (l->e[lo].lblk > lblk) {
		m->state = MAPTBL_MAP_HOLE;
		m->len = l->e[lo].lblk - lblk;
	} else {
		const struct maptbl_extent *e = &l->e[lo];

		m->len = e->lblk + e->len - lblk;
		if (e->flags & MAPTBL_EXTENT_ABSENT) {
			m->state = MAPTBL_MAP_ABSENT;
		} else {
			m->state = e->flags & MAPTBL_EXTENT_UNWRITTEN ? MAPTBL_MAP_UNWRITTEN
								      : MAPTBL_MAP_MAPPED;
			m->pblk = e->pblk + (lblk - e->lblk);
		}
	}
}

struct probe_ctx {
	const struct maptbl_table *t;
	struct maptbl_walker *wc, *wn;	/* walkers with and without CRC checks */
	const struct ext_list *l;
	const struct maptbl_stats *st;
	const struct maptbl_table *rebuilt;
};

static void probe(const struct probe_ctx *c, uint64_t lblk)
{
	uint64_t vb = maptbl_table_virtual_blocks(c->t);
	struct maptbl_mapping m, o, b;

	fz_compare(c->t, c->wc, lblk);
	fz_compare(c->t, c->wn, lblk);
	if (lblk >= vb)
		return;
	FZ_CHECK(maptbl_table_lookup(c->t, lblk, &m) == 0, "lookup %" PRIu64, lblk);
	FZ_CHECK(m.nodes <= c->st->max_nodes_touched,
		 "block %" PRIu64 ": %u nodes, but the longest path is %u", lblk, m.nodes,
		 c->st->max_nodes_touched);
	if (c->l->overflow)
		return;
	oracle(c->l, vb, lblk, &o);
	FZ_CHECK(m.state == o.state && m.pblk == o.pblk && m.len == o.len,
		 "block %" PRIu64 ": lookup state %u pblk %" PRIu64 " len %" PRIu64
		 ", iterated extents say state %u pblk %" PRIu64 " len %" PRIu64,
		 lblk, m.state, m.pblk, m.len, o.state, o.pblk, o.len);
	if (c->rebuilt) {
		FZ_CHECK(maptbl_table_lookup(c->rebuilt, lblk, &b) == 0, "rebuilt lookup %" PRIu64,
			 lblk);
		FZ_CHECK(m.state == b.state && m.pblk == b.pblk && m.len == b.len,
			 "block %" PRIu64 ": state %u pblk %" PRIu64 " len %" PRIu64
			 ", rebuilt table says state %u pblk %" PRIu64 " len %" PRIu64,
			 lblk, m.state, m.pblk, m.len, b.state, b.pblk, b.len);
	}
}

/* Checks of the iterated list against the statistics and the format's ordering rules. */
static void check_list(const struct maptbl_table *t, const struct ext_list *l,
		       const struct maptbl_stats *st)
{
	uint64_t prev_end = 0, nr = 0, unwritten = 0, absent = 0, blocks = 0;
	uint64_t vb = maptbl_table_virtual_blocks(t), db = maptbl_table_disk_blocks(t);
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct maptbl_extent *e = &l->e[i];

		FZ_CHECK(e->len >= 1 && e->lblk >= prev_end && e->lblk + e->len <= vb,
			 "extent %zu [%" PRIu64 ", +%" PRIu64 ") unsorted or outside the disk", i,
			 e->lblk, e->len);
		FZ_CHECK(e->reserved == 0 && !(e->flags & ~(MAPTBL_EXTENT_UNWRITTEN |
							      MAPTBL_EXTENT_ABSENT)),
			 "extent %zu: flags 0x%x", i, e->flags);
		prev_end = e->lblk + e->len;
		if (e->flags & MAPTBL_EXTENT_ABSENT) {
			FZ_CHECK(e->pblk == 0 && e->flags == MAPTBL_EXTENT_ABSENT,
				 "absent range %zu with pblk %" PRIu64, i, e->pblk);
			absent++;
			continue;
		}
		FZ_CHECK(e->pblk + e->len <= MAPTBL_MAX_BLK && (!db || e->pblk + e->len <= db),
			 "extent %zu: physical end %" PRIu64, i, e->pblk + e->len);
		nr++;
		blocks += e->len;
		if (e->flags & MAPTBL_EXTENT_UNWRITTEN)
			unwritten++;
	}
	if (l->overflow)
		return;
	FZ_CHECK(nr == st->nr_extents && nr == maptbl_table_nr_extents(t),
		 "iterated %" PRIu64 " extents, stats say %" PRIu64, nr, st->nr_extents);
	FZ_CHECK(unwritten == st->nr_unwritten && absent == st->nr_absent &&
			 blocks == st->mapped_blocks,
		 "iterated %" PRIu64 "/%" PRIu64 "/%" PRIu64 " unwritten/absent/blocks, stats say %" PRIu64
		 "/%" PRIu64 "/%" PRIu64,
		 unwritten, absent, blocks, st->nr_unwritten, st->nr_absent, st->mapped_blocks);
}

static void check_stats(const struct maptbl_table *t, const uint8_t *data, size_t size,
			struct maptbl_stats *st)
{
	const struct maptbl_header *h = (const void *)data;
	uint64_t per_level = 0;
	uint32_t l;

	FZ_CHECK(maptbl_table_stats(t, st, sizeof(*st)) == 0, "stats");
	FZ_CHECK(maptbl_table_len(t) == size && !memcmp(maptbl_table_data(t), data, size),
		 "the opened table is not the input");
	FZ_CHECK(maptbl_table_block_size(t) == maptbl_le32_to_cpu(h->block_size) &&
			 maptbl_table_node_size(t) == maptbl_le32_to_cpu(h->node_size) &&
			 maptbl_table_virtual_blocks(t) == maptbl_le64_to_cpu(h->virtual_blocks) &&
			 maptbl_table_disk_blocks(t) == maptbl_le64_to_cpu(h->disk_blocks) &&
			 maptbl_table_generation(t) == maptbl_le32_to_cpu(h->generation) &&
			 maptbl_table_features(t, 0) == maptbl_le64_to_cpu(h->incompat) &&
			 maptbl_table_features(t, 1) == maptbl_le64_to_cpu(h->ro_compat) &&
			 maptbl_table_features(t, 2) == maptbl_le64_to_cpu(h->compat) &&
			 maptbl_table_features(t, 3) == 0,
		 "a getter disagrees with the header");
	if (maptbl_le64_to_cpu(h->ro_compat) & ~MAPTBL_RO_COMPAT_KNOWN)
		FZ_CHECK(maptbl_table_readonly(t), "unknown ro_compat bit, but not read-only");
	FZ_CHECK(st->table_bytes == size, "table_bytes %" PRIu64, st->table_bytes);
	FZ_CHECK(st->depth == maptbl_table_depth(t) && st->depth <= MAPTBL_MAX_DEPTH &&
			 st->max_nodes_touched <= st->depth && (st->depth == 0) == (st->nr_nodes == 0),
		 "depth %u, longest path %u, %" PRIu64 " nodes", st->depth, st->max_nodes_touched,
		 st->nr_nodes);
	for (l = 0; l < MAPTBL_MAX_DEPTH; l++)
		per_level += st->nodes_per_level[l];
	FZ_CHECK(per_level == st->nr_nodes &&
			 st->nr_nodes == st->nr_index_nodes + st->nr_compact_leaves +
						 st->nr_wide_leaves &&
			 st->entries_used <= st->entries_capacity &&
			 st->nr_nodes * maptbl_table_node_size(t) < size + (size == 0),
		 "node counts do not add up");
	if (st->nr_wide_leaves)
		FZ_CHECK(maptbl_table_features(t, 0) & MAPTBL_INCOMPAT_WIDE_LEAF,
			 "wide leaves without WIDE_LEAF");
}

/* Rebuilds the iterated extents with the table's parameters (NULL when not possible). */
static struct maptbl_table *rebuild(const struct maptbl_table *t, const struct ext_list *l,
				    const struct maptbl_stats *st)
{
	struct maptbl_build_opts o;
	struct maptbl_table *b = NULL;
	int err;

	if (l->overflow || st->nr_absent)
		return NULL;
	FZ_CHECK(maptbl_build_opts_init(&o, sizeof(o)) == 0, "opts init");
	o.block_size = maptbl_table_block_size(t);
	o.node_size = maptbl_table_node_size(t);
	o.virtual_blocks = maptbl_table_virtual_blocks(t);
	o.disk_blocks = maptbl_table_disk_blocks(t);
	o.generation = maptbl_table_generation(t);
	err = maptbl_table_build(l->e, l->n, &o, &b);
	FZ_CHECK(err == 0, "rebuilding %zu extents failed: %d", l->n, err);
	FZ_CHECK(maptbl_table_nr_extents(b) == l->n &&
			 maptbl_table_virtual_blocks(b) == maptbl_table_virtual_blocks(t),
		 "rebuilt table differs");
	return b;
}

/* Walker lookups on an input whatever it is; answers are only checked against the contract. */
static void walk_any(struct maptbl_walker *w, const uint8_t *data, size_t size)
{
	struct maptbl_walk_result r;
	enum maptbl_walk_status st;
	uint64_t vb = w->virtual_blocks;
	size_t i, k = 0;

	for (i = 0; i + 8 <= size && k < MAX_DERIVED; i += 8, k++) {
		uint64_t lblk = fz_get(data, size, i, 8);

		if (vb)
			lblk %= vb;
		st = maptbl_walk_lookup(w, lblk, &r);
		fz_check_walk_result(w, lblk, st, &r);
	}
	st = maptbl_walk_lookup(w, 0, &r);
	fz_check_walk_result(w, 0, st, &r);
	if (vb) {
		st = maptbl_walk_lookup(w, vb - 1, &r);
		fz_check_walk_result(w, vb - 1, st, &r);
	}
	st = maptbl_walk_lookup(w, vb, &r);
	fz_check_walk_result(w, vb, st, &r);
}

static enum maptbl_walk_status walker_init(struct maptbl_walker *w, struct fz_mem *mem,
					   uint8_t *scratch, uint32_t flags)
{
	enum maptbl_walk_status st;

	mem->limit = 0;
	st = maptbl_walk_init(w, fz_read, mem, scratch, FZ_SCRATCH_LEN, flags);
	FZ_CHECK(st == MAPTBL_WALK_OK || st == MAPTBL_WALK_READ_ERROR ||
			 st == MAPTBL_WALK_BAD_HEADER || st == MAPTBL_WALK_UNSUPPORTED,
		 "walker init gave %d", (int)st);
	if (st == MAPTBL_WALK_OK)
		mem->limit = w->table_len;
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_mem mem_c = { data, size, 0, 0 }, mem_n = { data, size, 0, 0 };
	struct maptbl_walker wc, wn;
	struct maptbl_open_opts oo;
	struct maptbl_table *t = NULL;
	struct maptbl_diag diag;
	enum maptbl_walk_status sc, sn;
	uint8_t *scratch = fz_scratch();
	static uint8_t *scratch_n;
	int err;

	if (!scratch_n) {
		scratch_n = malloc(FZ_SCRATCH_LEN);
		FZ_CHECK(scratch_n != NULL, "out of memory");
	}
	FZ_CHECK(maptbl_open_opts_init(&oo, sizeof(oo)) == 0, "opts init");
	oo.diag = &diag;
	err = maptbl_table_open(data, size, &oo, &t);

	sc = walker_init(&wc, &mem_c, scratch, MAPTBL_WALK_CHECK_CRC);
	sn = walker_init(&wn, &mem_n, scratch_n, 0);

	if (err) {
		FZ_CHECK(err == -EBADMSG || err == -EOPNOTSUPP, "open failed with %d", err);
		FZ_CHECK(t == NULL, "a failed open returned a table");
		FZ_CHECK(diag.reason[0] && memchr(diag.reason, 0, sizeof(diag.reason)),
			 "open failed (%d) without a reason", err);
		FZ_CHECK(diag.offset < (size > 128 ? size : 128),
			 "diag offset %" PRIu64 " outside a %zu-byte input", diag.offset, size);
		/* The walker must survive the same bytes; its answers are not compared. */
		if (sc == MAPTBL_WALK_OK)
			walk_any(&wc, data, size);
		if (sn == MAPTBL_WALK_OK)
			walk_any(&wn, data, size);
		return 0;
	}

	/* The table opened: the walker must accept it and agree with the library everywhere. */
	{
		struct ext_list l = { 0 };
		struct maptbl_stats st;
		struct probe_ctx c;
		uint64_t vb = maptbl_table_virtual_blocks(t);
		size_t i, k, left;

		FZ_CHECK(sc == MAPTBL_WALK_OK && sn == MAPTBL_WALK_OK,
			 "opened table, walker init gave %d/%d", (int)sc, (int)sn);
		FZ_CHECK(wc.node_size == maptbl_table_node_size(t) &&
				 wc.block_size == maptbl_table_block_size(t) &&
				 wc.virtual_blocks == vb && wc.table_len == size &&
				 wc.disk_blocks == maptbl_table_disk_blocks(t) &&
				 wc.generation == maptbl_table_generation(t),
			 "walker header fields differ from the getters");
		check_stats(t, data, size, &st);
		FZ_CHECK(maptbl_table_iterate(t, collect, &l) == 0, "iterate");
		check_list(t, &l, &st);
		if (l.n > 2 && !l.overflow) {
			left = l.n / 2;
			FZ_CHECK(maptbl_table_iterate(t, stop_at, &left) == 7,
				 "iterate did not stop with the callback's value");
		}

		c.t = t;
		c.wc = &wc;
		c.wn = &wn;
		c.l = &l;
		c.st = &st;
		c.rebuilt = rebuild(t, &l, &st);
		for (i = 0; i < l.n; i++) {
			const struct maptbl_extent *e = &l.e[i];

			probe(&c, e->lblk);
			probe(&c, e->lblk + e->len - 1);
			probe(&c, e->lblk + e->len);
			if (e->lblk)
				probe(&c, e->lblk - 1);
			if (e->len > 2)
				probe(&c, e->lblk + e->len / 2);
		}
		for (i = 0, k = 0; i + 8 <= size && k < MAX_DERIVED; i += 8, k++) {
			uint64_t x = fz_get(data, size, i, 8);

			probe(&c, vb ? x % vb : x);
		}
		probe(&c, 0);
		if (vb)
			probe(&c, vb - 1);
		probe(&c, vb);
		probe(&c, UINT64_MAX);
		maptbl_table_free((struct maptbl_table *)c.rebuilt);
		free(l.e);
	}
	maptbl_table_free(t);
	return 0;
}
