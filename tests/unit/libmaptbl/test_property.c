/* SPDX-License-Identifier: MIT */
/*
 * test_property.c - random extent sets (0, 1, 2, up to ~1000, 100,000 and 1,000,000 extents;
 * gaps from 0 to past 2^32; lengths from 1 to 2^32; random unwritten flags; every node size; fill
 * 100% and random). For every extent boundary (start - 1, start, end - 1, end) and random blocks,
 * maptbl_table_lookup() on the built table, on the table re-opened from its bytes, the walker
 * (with and without CHECK_CRC) and a sorted-array oracle all agree; iteration gives back exactly
 * the input. maptbl_table_lookup() is checked both through the table's lookup index (lookup.c,
 * the normal path) and without it (the plain binary search), and maptbl_table_lookup_many() on all
 * the blocks checked, with and without the index, gives the same answers.
 *
 * The seed is fixed and printed on failure; MAPTBL_SEED=<n> replays or varies it.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "../../../libmaptbl/src/internal.h" /* t->acc: the lookup index, to switch it off */

#define DEFAULT_SEED UINT64_C(0x6D6170746266)

static const uint32_t node_sizes[] = { 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 };
static uint8_t scratch[2][65536];

/* What is being tested right now, for failure messages. */
static struct {
	uint64_t seed;
	size_t n;
	uint32_t node_size, fill;
	int profile;
} cur;

#define CHECK(cond, ...)                                                                          \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			print_message("property failure: seed 0x%" PRIx64 " (MAPTBL_SEED=%" PRIu64 \
				      ") n %zu node_size %u fill %u profile %d\n",                \
				      cur.seed, cur.seed, cur.n, cur.node_size, cur.fill,         \
				      cur.profile);                                               \
			fail_msg(__VA_ARGS__);                                                    \
		}                                                                                 \
	} while (0)

/* ---- random extent sets ---- */

enum profile {
	P_MIXED,	/* every kind of gap and length */
	P_COMPACT,	/* short extents, small gaps: all compact leaves */
	P_WIDE,		/* long extents and huge gaps: mostly wide leaves */
	P_REAL,		/* like a real file: rare long extents, so compact and wide leaves mix */
	P_NPROFILES,
};

static uint64_t gen_gap(struct rng *r, int profile)
{
	uint64_t p = rng_below(r, 1000);

	if (profile == P_COMPACT)
		return p < 300 ? 0 : rng_range(r, 1, 100);
	if (profile == P_WIDE)
		return p < 200 ? 0 : p < 950 ? rng_range(r, 1, 1u << 20)
					     : rng_range(r, UINT64_C(1) << 32, UINT64_C(1) << 34);
	if (profile == P_REAL && p < 999)
		return p < 600 ? 0 : rng_range(r, 1, 256);
	if (p < 300)
		return 0;
	if (p < 900)
		return rng_range(r, 1, 64);
	if (p < 990)
		return rng_range(r, 65, 1u << 20);
	return rng_range(r, (UINT64_C(1) << 32) - 1, UINT64_C(1) << 33);
}

static uint64_t gen_len(struct rng *r, int profile)
{
	uint64_t p = rng_below(r, 1000);

	if (profile == P_COMPACT)
		return rng_range(r, 1, p < 900 ? 16 : MAPTBL_COMPACT_MAX_LEN);
	if (profile == P_WIDE)
		return p < 300 ? rng_range(r, 1, 16)
		       : p < 600 ? rng_range(r, MAPTBL_COMPACT_MAX_LEN - 1, MAPTBL_COMPACT_MAX_LEN + 1)
				 : rng_range(r, 1, UINT64_C(1) << 32);
	if (profile == P_REAL) {
		p = rng_below(r, 100000);
		return p < 90000 ? rng_range(r, 1, 64)
		       : p < 99950 ? rng_range(r, 65, MAPTBL_COMPACT_MAX_LEN)
				   : rng_range(r, MAPTBL_COMPACT_MAX_LEN + 1, UINT64_C(1) << 32);
	}
	if (p < 800)
		return rng_range(r, 1, 16);
	if (p < 950)
		return rng_range(r, 17, MAPTBL_COMPACT_MAX_LEN);
	if (p < 990)
		return rng_range(r, MAPTBL_COMPACT_MAX_LEN + 1, 1u << 20);
	return rng_range(r, 1, UINT64_C(1) << 32);
}

/*
 * Fills @e with up to @n extents (fewer only if 2^48 would be reached); sets *virt (0 = let the
 * builder use the end of the last extent) and *disk (0 = not recorded). Returns the count.
 */
static size_t gen_extents(struct rng *r, struct maptbl_extent *e, size_t n, int profile,
			  uint64_t *virt, uint64_t *disk)
{
	uint64_t l = rng_below(r, 4) == 0 ? 0 : rng_below(r, profile == P_WIDE ? UINT64_C(1) << 40 : 1000);
	uint64_t pend = 0, pmax = 0, end;
	bool top = rng_below(r, 2); /* some extents near the top of the physical space */
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t gap = i ? gen_gap(r, profile) : 0, len = gen_len(r, profile), pb;

		if (gap > MAX_BLK - l || len > MAX_BLK - l - gap) {
			gap = 0;
			len = 1;
			if (l >= MAX_BLK)
				break;
		}
		l += gap;
		switch (rng_below(r, 10)) {
		case 0: case 1: case 2: /* physically contiguous with the previous extent */
			pb = pend <= MAX_BLK - len ? pend : 0;
			break;
		case 3:
			if (top) {
				pb = MAX_BLK - len - rng_below(r, 100 < MAX_BLK - len ? 100 : 1);
				break;
			}
			/* fall through */
		default:
			pb = rng_below(r, (UINT64_C(1) << 40) - len);
			break;
		}
		e[i].lblk = l;
		e[i].len = len;
		e[i].pblk = pb;
		e[i].flags = rng_below(r, 5) == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		e[i].reserved = 0;
		l += len;
		pend = pb + len;
		if (pend > pmax)
			pmax = pend;
	}
	end = l;
	switch (rng_below(r, 4)) {
	case 0:
		*virt = 0;
		break;
	case 1:
		*virt = end ? end : 1;
		break;
	case 2:
		*virt = end + rng_below(r, MAX_BLK - end < 1000 ? MAX_BLK - end + 1 : 1000);
		break;
	default:
		*virt = end + rng_below(r, MAX_BLK - end + 1);
		break;
	}
	if (*virt == 0 && i == 0)
		*virt = 1 + rng_below(r, 1000); /* an empty table needs a size to be looked up */
	*disk = rng_below(r, 2) ? 0 : pmax + rng_below(r, MAX_BLK - pmax + 1);
	if (*disk && rng_below(r, 2))
		*disk = pmax ? pmax : 1;
	return i;
}

/* ---- the oracle: binary search over the sorted input ---- */

struct answer {
	uint32_t state;
	uint64_t pblk, len;
};

static struct answer oracle(const struct maptbl_extent *e, size_t n, uint64_t virt, uint64_t l)
{
	struct answer a = { MAPTBL_MAP_HOLE, 0, 0 };
	size_t lo = 0, hi = n; /* first extent with lblk > l */

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e[mid].lblk <= l)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && l < e[lo - 1].lblk + e[lo - 1].len) {
		const struct maptbl_extent *x = &e[lo - 1];

		a.state = x->flags & MAPTBL_EXTENT_UNWRITTEN ? MAPTBL_MAP_UNWRITTEN
							     : MAPTBL_MAP_MAPPED;
		a.pblk = x->pblk + (l - x->lblk);
		a.len = x->lblk + x->len - l;
		return a;
	}
	a.len = (lo < n ? e[lo].lblk : virt) - l;
	return a;
}

/* ---- one table ---- */

struct ctx {
	const struct maptbl_extent *e;
	size_t n;
	uint64_t virt;
	uint32_t depth;
	struct maptbl_table *t, *t2;
	struct maptbl_walker w[2];
	struct membuf mb[2];
	uint64_t checked;
	uint64_t *blk;			/* the blocks checked (in range) and their answers, */
	struct maptbl_mapping *res;	/* for maptbl_table_lookup_many() at the end */
	size_t nblk, cap;
};

/* maptbl_table_lookup() without the table's lookup index: the plain binary search. */
static int lookup_plain(struct maptbl_table *t, uint64_t l, struct maptbl_mapping *m)
{
	struct mt_accel *acc = t->acc;
	int ret;

	t->acc = NULL;
	ret = maptbl_table_lookup(t, l, m);
	t->acc = acc;
	return ret;
}

static void remember(struct ctx *c, uint64_t l, const struct maptbl_mapping *m)
{
	if (c->nblk == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		c->blk = realloc(c->blk, c->cap * sizeof(*c->blk));
		c->res = realloc(c->res, c->cap * sizeof(*c->res));
		CHECK(c->blk && c->res, "out of memory");
	}
	c->blk[c->nblk] = l;
	c->res[c->nblk++] = *m;
}

/*
 * maptbl_table_lookup_many() (through the index) on every block checked. Without the index it
 * runs the plain search, which check_block() compares block by block already.
 */
static void check_many(struct ctx *c)
{
	struct maptbl_mapping *m = calloc(c->nblk ? c->nblk : 1, sizeof(*m));
	size_t i;

	CHECK(m != NULL, "out of memory");
	memset(m, 0xAB, c->nblk * sizeof(*m));
	CHECK(maptbl_table_lookup_many(c->t, c->blk, c->nblk, m) == 0, "lookup_many failed");
	for (i = 0; i < c->nblk; i++)
		CHECK(memcmp(&m[i], &c->res[i], sizeof(*m)) == 0,
		      "block %" PRIu64 ": lookup_many %u pblk %" PRIu64 " len %" PRIu64 " nodes %u, "
		      "lookup %u pblk %" PRIu64 " len %" PRIu64 " nodes %u", c->blk[i], m[i].state,
		      m[i].pblk, m[i].len, m[i].nodes, c->res[i].state, c->res[i].pblk, c->res[i].len,
		      c->res[i].nodes);
	free(m);
}

static void check_block(struct ctx *c, uint64_t l, bool walker)
{
	struct maptbl_mapping m, m2;
	struct maptbl_walk_result r;
	struct answer a;
	int k;

	if (l >= c->virt) {
		CHECK(maptbl_table_lookup(c->t, l, &m) == -ERANGE, "block %" PRIu64 " past %" PRIu64
		      " not -ERANGE", l, c->virt);
		CHECK(maptbl_table_lookup(c->t2, l, &m) == -ERANGE, "re-opened: block %" PRIu64
		      " not -ERANGE", l);
		CHECK(lookup_plain(c->t, l, &m) == -ERANGE, "plain: block %" PRIu64 " not -ERANGE", l);
		CHECK(maptbl_table_lookup_many(c->t, &l, 1, &m) == -ERANGE,
		      "lookup_many: block %" PRIu64 " not -ERANGE", l);
		if (walker)
			for (k = 0; k < 2; k++)
				CHECK(maptbl_walk_lookup(&c->w[k], l, &r) == MAPTBL_WALK_OUT_OF_RANGE,
				      "walker: block %" PRIu64 " not OUT_OF_RANGE", l);
		return;
	}
	c->checked++;
	a = oracle(c->e, c->n, c->virt, l);
	CHECK(maptbl_table_lookup(c->t, l, &m) == 0, "lookup %" PRIu64 " failed", l);
	CHECK(m.lblk == l && m.state == a.state && m.pblk == a.pblk && m.len == a.len,
	      "block %" PRIu64 ": table %u pblk %" PRIu64 " len %" PRIu64 ", oracle %u pblk %" PRIu64
	      " len %" PRIu64, l, m.state, m.pblk, m.len, a.state, a.pblk, a.len);
	CHECK(m.nodes <= c->depth && (c->depth == 0 || m.nodes >= 1),
	      "block %" PRIu64 ": %u nodes touched, depth %u", l, m.nodes, c->depth);
	CHECK(maptbl_table_lookup(c->t2, l, &m2) == 0, "re-opened lookup %" PRIu64 " failed", l);
	CHECK(memcmp(&m, &m2, sizeof(m)) == 0, "block %" PRIu64 ": re-opened table differs", l);
	CHECK(lookup_plain(c->t, l, &m2) == 0 && memcmp(&m, &m2, sizeof(m)) == 0,
	      "block %" PRIu64 ": index %u pblk %" PRIu64 " len %" PRIu64 " nodes %u, plain search"
	      " %u pblk %" PRIu64 " len %" PRIu64 " nodes %u", l, m.state, m.pblk, m.len, m.nodes,
	      m2.state, m2.pblk, m2.len, m2.nodes);
	remember(c, l, &m);
	if (!walker)
		return;
	for (k = 0; k < 2; k++) {
		enum maptbl_walk_status st = maptbl_walk_lookup(&c->w[k], l, &r);

		CHECK(st == MAPTBL_WALK_OK, "walker (crc %d) block %" PRIu64 ": %s", k, l,
		      maptbl_walk_strerror(st));
		CHECK(r.state == a.state && r.pblk == a.pblk && r.len == a.len && r.nodes == m.nodes,
		      "block %" PRIu64 ": walker (crc %d) %u pblk %" PRIu64 " len %" PRIu64
		      " nodes %u, table %u pblk %" PRIu64 " len %" PRIu64 " nodes %u", l, k, r.state,
		      r.pblk, r.len, r.nodes, m.state, m.pblk, m.len, m.nodes);
	}
}

struct iter {
	const struct maptbl_extent *e;
	size_t n, i;
	int bad;
};

static int iter_fn(void *ctx, const struct maptbl_extent *x)
{
	struct iter *it = ctx;

	if (it->i >= it->n || memcmp(x, &it->e[it->i], sizeof(*x)) != 0) {
		it->bad = 1;
		return 1;
	}
	it->i++;
	return 0;
}

/*
 * Builds a table from @e and checks everything. @walk_every: check the walker on the boundaries
 * of every walk_every-th extent (the table and the oracle on all of them). @nrandom random blocks.
 */
static void check_table(struct rng *r, const struct maptbl_extent *e, size_t n, uint64_t virt,
			uint64_t disk, size_t walk_every, size_t nrandom)
{
	struct maptbl_build_opts o;
	struct maptbl_stats st, st2;
	struct maptbl_diag d;
	struct iter it = { e, n, 0, 0 };
	struct ctx c;
	uint64_t mapped = 0, unwritten = 0, want_virt;
	size_t i;
	int k, err;

	memset(&c, 0, sizeof(c));
	c.e = e;
	c.n = n;
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = cur.node_size;
	o.fill_pct = cur.fill;
	o.virtual_blocks = virt;
	o.disk_blocks = disk;
	o.diag = &d;
	err = maptbl_table_build(e, n, &o, &c.t);
	CHECK(err == 0, "build failed %d: %s", err, d.reason);
	CHECK((n != 0) == (c.t->acc != NULL), "%zu extents, lookup index %p", n, (void *)c.t->acc);
	want_virt = virt ? virt : n ? e[n - 1].lblk + e[n - 1].len : 0;
	c.virt = maptbl_table_virtual_blocks(c.t);
	CHECK(c.virt == want_virt, "virtual_blocks %" PRIu64 ", want %" PRIu64, c.virt, want_virt);
	CHECK(maptbl_table_disk_blocks(c.t) == disk, "disk_blocks");

	/* Statistics. */
	for (i = 0; i < n; i++) {
		mapped += e[i].len;
		unwritten += !!(e[i].flags & MAPTBL_EXTENT_UNWRITTEN);
	}
	CHECK(maptbl_table_stats(c.t, &st, sizeof(st)) == 0, "stats");
	CHECK(st.nr_extents == n && st.mapped_blocks == mapped && st.nr_unwritten == unwritten,
	      "stats: %" PRIu64 " extents %" PRIu64 " blocks %" PRIu64 " unwritten", st.nr_extents,
	      st.mapped_blocks, st.nr_unwritten);
	CHECK(st.nr_nodes == st.nr_index_nodes + st.nr_compact_leaves + st.nr_wide_leaves,
	      "stats: node kinds do not add up");
	CHECK((st.nr_wide_leaves != 0) == !!(maptbl_table_features(c.t, 0) &
					     MAPTBL_INCOMPAT_WIDE_LEAF),
	      "WIDE_LEAF feature bit does not match %" PRIu64 " wide leaves", st.nr_wide_leaves);
	c.depth = st.depth;
	CHECK(c.depth == (n ? st.max_nodes_touched : 0), "depth %u, longest path %u", c.depth,
	      st.max_nodes_touched);

	/* Iteration gives back exactly the input. */
	CHECK(maptbl_table_iterate(c.t, iter_fn, &it) == 0 && !it.bad && it.i == n,
	      "iterate differs from the input at extent %zu", it.i);

	/* Re-open from the bytes: same statistics. */
	err = maptbl_table_open(maptbl_table_data(c.t), maptbl_table_len(c.t), NULL, &c.t2);
	CHECK(err == 0, "re-open failed %d", err);
	CHECK(maptbl_table_stats(c.t2, &st2, sizeof(st2)) == 0, "stats");
	CHECK(memcmp(&st, &st2, sizeof(st)) == 0, "re-opened table has other statistics");
	CHECK(!maptbl_table_readonly(c.t2), "a built table is not read-only");

	/* Walkers over the table bytes, with and without CHECK_CRC. */
	for (k = 0; k < 2; k++) {
		enum maptbl_walk_status s;

		membuf_init(&c.mb[k], maptbl_table_data(c.t), maptbl_table_len(c.t));
		s = maptbl_walk_init(&c.w[k], membuf_read, &c.mb[k], scratch[k], cur.node_size,
				     k ? MAPTBL_WALK_CHECK_CRC : 0);
		CHECK(s == MAPTBL_WALK_OK, "walk_init: %s", maptbl_walk_strerror(s));
	}

	/* Every extent boundary, then random blocks. */
	for (i = 0; i < n; i++) {
		bool w = walk_every <= 1 || i % walk_every == 0;
		uint64_t end = e[i].lblk + e[i].len;

		if (e[i].lblk)
			check_block(&c, e[i].lblk - 1, w);
		check_block(&c, e[i].lblk, w);
		check_block(&c, end - 1, w);
		check_block(&c, end, w);
	}
	if (c.virt) {
		check_block(&c, 0, true);
		check_block(&c, c.virt - 1, true);
		for (i = 0; i < nrandom; i++) {
			/* Half uniform over the disk, half inside or next to a random extent. */
			uint64_t l;

			if (n && rng_below(r, 2)) {
				const struct maptbl_extent *x = &e[rng_below(r, n)];

				l = x->lblk + rng_below(r, x->len + 2);
				l = l ? l - 1 : 0;
			} else {
				l = rng_below(r, c.virt);
			}
			check_block(&c, l, true);
		}
	}
	check_block(&c, c.virt, true);
	check_block(&c, UINT64_MAX, true);
	CHECK(c.mb[0].oob == 0 && c.mb[1].oob == 0, "walker read outside the table");
	check_many(&c);
	free(c.blk);
	free(c.res);
	maptbl_table_free(c.t2);
	maptbl_table_free(c.t);
}

/* One random case: @n extents (a cap: gen may give fewer near 2^48). */
static void run_case(uint64_t seed, size_t n, uint32_t node_size, uint32_t fill, int profile,
		     size_t walk_every, size_t nrandom)
{
	struct maptbl_extent *e = n ? malloc(n * sizeof(*e)) : NULL;
	uint64_t virt, disk;
	struct rng r;

	CHECK(n == 0 || e, "out of memory");
	rng_seed(&r, seed);
	cur.seed = seed;
	cur.node_size = node_size;
	cur.profile = profile;
	cur.fill = fill ? fill : (uint32_t)rng_range(&r, 1, 100);
	cur.n = gen_extents(&r, e, n, profile, &virt, &disk);
	check_table(&r, e, cur.n, virt, disk, walk_every, nrandom);
	free(e);
}

static uint64_t case_seed(uint64_t base, uint64_t a, uint64_t b, uint64_t c)
{
	return base ^ (a * UINT64_C(0x9E3779B97F4A7C15)) ^ (b * UINT64_C(0xC2B2AE3D27D4EB4F)) ^
	       (c * UINT64_C(0x165667B19E3779F9));
}

/* ---- the tests ---- */

/* 0, 1 and 2 extents, every node size, fill 100 and random, every profile. */
static void test_tiny(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED);
	size_t s, n;
	int p, round;

	(void)state;
	for (s = 0; s < sizeof(node_sizes) / sizeof(node_sizes[0]); s++)
		for (n = 0; n <= 2; n++)
			for (p = 0; p < P_NPROFILES; p++)
				for (round = 0; round < 4; round++)
					run_case(case_seed(base, s, n * 16 + (size_t)p, (uint64_t)round),
						 n, node_sizes[s], round & 1 ? 0 : 100, p, 1, 200);
}

/* Up to ~1000 extents, every node size, fill 100 and random, every profile. */
static void test_small(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED) + 1;
	size_t s;
	int p, round;

	(void)state;
	for (s = 0; s < sizeof(node_sizes) / sizeof(node_sizes[0]); s++)
		for (p = 0; p < P_NPROFILES; p++)
			for (round = 0; round < 6; round++) {
				uint64_t seed = case_seed(base, s, (uint64_t)p, (uint64_t)round);
				struct rng r;

				rng_seed(&r, ~seed);
				run_case(seed, 3 + rng_below(&r, 998), node_sizes[s],
					 round & 1 ? 0 : 100, p, 1, 500);
			}
}

/* Exactly a multiple and one past a full leaf / full index node, where levels change. */
static void test_level_boundaries(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED) + 2;
	size_t s;

	(void)state;
	for (s = 0; s < 4; s++) {
		uint32_t ns = node_sizes[s];
		size_t c = maptbl_node_capacity(ns, MAPTBL_NODE_LEAF_COMPACT);
		size_t f = maptbl_node_capacity(ns, MAPTBL_NODE_INDEX);
		const size_t counts[] = { c - 1, c, c + 1, c * f - 1, c * f, c * f + 1 };
		size_t i;

		for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
			run_case(case_seed(base, s, i, 0), counts[i], ns, 100, P_COMPACT, 1, 100);
	}
}

/* 100,000 extents: smallest, default and largest node size, plus a random one at random fill. */
static void test_100k(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED) + 3;
	struct rng r;

	(void)state;
	rng_seed(&r, base);
	run_case(case_seed(base, 1, 0, 0), 100000, 256, 100, P_MIXED, 1, 20000);
	run_case(case_seed(base, 2, 0, 0), 100000, 4096, 100, P_REAL, 1, 20000);
	run_case(case_seed(base, 6, 0, 0), 100000, 1024, 0, P_MIXED, 1, 20000);
	run_case(case_seed(base, 3, 0, 0), 100000, 65536, 0, P_COMPACT, 1, 20000);
	run_case(case_seed(base, 4, 0, 0), 100000,
		 node_sizes[rng_below(&r, sizeof(node_sizes) / sizeof(node_sizes[0]))], 0, P_WIDE,
		 1, 20000);
}

/* 1,000,000 extents at the default node size. */
static void test_1m(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED) + 4;

	(void)state;
	run_case(case_seed(base, 5, 0, 0), 1000000, 4096, 100, P_REAL, 1, 100000);
}

/* Fill 1% at 256-byte nodes: one extent per leaf, two children per index node, 16 levels. */
static void test_deepest(void **state)
{
	uint64_t base = test_seed(DEFAULT_SEED) + 5;

	(void)state;
	run_case(case_seed(base, 7, 0, 0), 20000, 256, 1, P_MIXED, 1, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny),
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_level_boundaries),
		cmocka_unit_test(test_100k),
		cmocka_unit_test(test_1m),
		cmocka_unit_test(test_deepest),
	};

	mt_index_min_table = 0; /* a lookup index for every table, however small */
	print_message("seed 0x%" PRIx64 " (set MAPTBL_SEED to change it)\n",
		      test_seed(DEFAULT_SEED));
	return cmocka_run_group_tests_name("libmaptbl property", tests, NULL, NULL);
}
