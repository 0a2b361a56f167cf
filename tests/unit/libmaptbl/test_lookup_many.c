/* SPDX-License-Identifier: MIT */
/*
 * test_lookup_many.c - maptbl_table_lookup_many() gives, block for block, what
 * maptbl_table_lookup() gives, and both give through the table's lookup index (lookup.c) what
 * the plain binary search without it gives: random tables at every node size (with holes,
 * unwritten, long extents in wide leaves), extent boundaries and random blocks, an absent subtree,
 * an empty table, and its argument errors; for tables without an index, also the interleaved
 * plain searches. mt_table_changed() rebuilds the index after the table's bytes change.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maptbl/maptbl.h"
#include "testutil.h"
#include "../../../libmaptbl/src/internal.h" /* t->acc, mt_table_changed() */

static struct maptbl_extent *random_extents(struct rng *r, size_t n, uint64_t *end)
{
	struct maptbl_extent *e = calloc(n ? n : 1, sizeof(*e));
	uint64_t l = 0, p = 0;
	size_t i;

	assert_non_null(e);
	for (i = 0; i < n; i++) {
		uint64_t len = rng_below(r, 40) == 0 ? rng_range(r, 32769, 200000) : rng_range(r, 1, 300);

		if (rng_below(r, 3) == 0)
			l += rng_range(r, 1, 100);
		e[i] = (struct maptbl_extent){ .lblk = l, .pblk = p, .len = len,
					       .flags = rng_below(r, 10) == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0 };
		l += len;
		p += len + rng_below(r, 5);
	}
	*end = l;
	return e;
}

static void same(const struct maptbl_mapping *a, const struct maptbl_mapping *b)
{
	assert_int_equal(a->lblk, b->lblk);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->pblk, b->pblk);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->nodes, b->nodes);
}

/*
 * The reference: maptbl_table_lookup() without the index (the plain binary search, which the
 * property test holds against the walker and an oracle). Then, with the index, single and batched
 * lookups, and batched without it.
 */
static void compare(struct maptbl_table *t, const uint64_t *b, size_t q)
{
	struct maptbl_mapping *ref = calloc(q, sizeof(*ref)), *m = calloc(q, sizeof(*m));
	struct mt_accel *acc = t->acc;
	size_t i;
	int pass;

	assert_non_null(ref);
	assert_non_null(m);
	assert_non_null(acc);
	t->acc = NULL;
	for (i = 0; i < q; i++)
		assert_int_equal(maptbl_table_lookup(t, b[i], &ref[i]), 0);
	t->acc = acc;
	for (i = 0; i < q; i++) {
		assert_int_equal(maptbl_table_lookup(t, b[i], &m[i]), 0);
		same(&m[i], &ref[i]);
	}
	for (pass = 0; pass < 3; pass++) {
		size_t saved = mt_index_max_table;

		memset(m, 0, q * sizeof(*m));
		t->acc = pass ? NULL : acc;
		if (pass == 2)
			mt_index_max_table = 0; /* the interleaved plain searches of a huge table */
		assert_int_equal(maptbl_table_lookup_many(t, b, q, m), 0);
		mt_index_max_table = saved;
		t->acc = acc;
		for (i = 0; i < q; i++)
			same(&m[i], &ref[i]);
	}
	free(ref);
	free(m);
}

static void test_agrees_with_lookup(void **state)
{
	static const uint32_t sizes[] = { 256, 512, 4096, 65536 };
	static const size_t counts[] = { 1, 17, 5000, 200000 }; /* 200,000: 2.4 MB and more */
	struct rng r;
	size_t s, c;

	(void)state;
	rng_seed(&r, test_seed(0x5eed));
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			struct maptbl_build_opts o;
			struct maptbl_table *t;
			struct maptbl_extent *e;
			uint64_t end, *b;
			size_t i, q = 0, n = counts[c];

			e = random_extents(&r, n, &end);
			maptbl_build_opts_init(&o, sizeof(o));
			o.node_size = sizes[s];
			o.virtual_blocks = end + 50;
			assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
			b = calloc(4 * n + 20000, sizeof(*b));
			assert_non_null(b);
			for (i = 0; i < n; i++) { /* every boundary */
				b[q++] = e[i].lblk;
				b[q++] = e[i].lblk + e[i].len - 1;
				b[q++] = e[i].lblk + e[i].len;
				if (e[i].lblk)
					b[q++] = e[i].lblk - 1;
			}
			for (i = 0; i < 20000; i++)
				b[q++] = rng_below(&r, end + 50);
			if (n == 200000)
				assert_true(maptbl_table_len(t) > ((size_t)2 << 20));
			compare(t, b, q);
			free(b);
			free(e);
			maptbl_table_free(t);
		}
	}
}

static void test_empty_and_errors(void **state)
{
	struct maptbl_mapping m[3];
	struct maptbl_build_opts o;
	struct maptbl_extent e = { .lblk = 10, .pblk = 5, .len = 4 };
	struct maptbl_table *t;
	uint64_t b[3] = { 0, 63, 12 };

	(void)state;
	maptbl_build_opts_init(&o, sizeof(o));
	o.virtual_blocks = 64;
	assert_int_equal(maptbl_table_build(&e, 0, &o, &t), 0);
	assert_int_equal(maptbl_table_lookup_many(t, b, 2, m), 0);
	assert_int_equal(m[0].state, MAPTBL_MAP_HOLE);
	assert_int_equal(m[0].len, 64);
	assert_int_equal(m[1].len, 1);
	maptbl_table_free(t);

	assert_int_equal(maptbl_table_build(&e, 1, &o, &t), 0);
	assert_int_equal(maptbl_table_lookup_many(t, b, 0, NULL), 0);
	assert_int_equal(maptbl_table_lookup_many(NULL, b, 1, m), -EINVAL);
	assert_int_equal(maptbl_table_lookup_many(t, NULL, 1, m), -EINVAL);
	b[2] = 64; /* past the virtual disk: nothing is written */
	memset(m, 0xAB, sizeof(m));
	assert_int_equal(maptbl_table_lookup_many(t, b, 3, m), -ERANGE);
	assert_int_equal(m[0].state, 0xABABABABu);
	b[2] = 12;
	assert_int_equal(maptbl_table_lookup_many(t, b, 3, m), 0);
	assert_int_equal(m[2].state, MAPTBL_MAP_MAPPED);
	assert_int_equal(m[2].pblk, 7);
	assert_int_equal(m[2].len, 2);
	maptbl_table_free(t);
}

static void test_absent_subtree(void **state)
{
	/* Clear the child of the root's second entry (a two-level table), fix the CRC, reopen. */
	struct maptbl_extent e[40];
	struct maptbl_build_opts o;
	struct maptbl_table *t, *t2;
	uint8_t *buf;
	uint64_t b[200];
	size_t len, i;

	(void)state;
	for (i = 0; i < 40; i++)
		e[i] = (struct maptbl_extent){ .lblk = 10 * i, .pblk = 1000 + 10 * i, .len = 5 };
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 256; /* 18 compact entries per leaf: three leaves under one root */
	assert_int_equal(maptbl_table_build(e, 40, &o, &t), 0);
	len = maptbl_table_len(t);
	buf = malloc(len);
	assert_non_null(buf);
	memcpy(buf, maptbl_table_data(t), len);
	put_le32(buf + 256 + 32 + 16 + 12, 0);		  /* root entry 1: child 0 */
	put_le32(buf + 256 + 8, 0);
	put_le32(buf + 256 + 8, tw_node_crc(buf + 256, 32 + 3 * 16));
	assert_int_equal(maptbl_table_open(buf, len, NULL, &t2), 0);
	for (i = 0; i < 200; i++)
		b[i] = i * 2 % 395;
	compare(t2, b, 200);
	{
		struct maptbl_mapping m;
		uint64_t mid = 200; /* extent 20: in the second leaf, now absent */

		assert_int_equal(maptbl_table_lookup_many(t2, &mid, 1, &m), 0);
		assert_int_equal(m.state, MAPTBL_MAP_ABSENT);
	}
	free(buf);
	maptbl_table_free(t);
	maptbl_table_free(t2);
}

/*
 * The index is derived state: after the table's bytes change (as an update publishes them),
 * mt_table_changed() must rebuild it. Table A's buffer is overwritten with table B's (the same
 * shape, every extent one block later); until mt_table_changed() runs, lookups through A's stale
 * index differ from B's (which shows the check below can fail), afterwards they agree block for
 * block, single and batched.
 */
static void test_table_changed(void **state)
{
	static const uint32_t sizes[] = { 256, 4096 };
	size_t s;

	(void)state;
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct maptbl_extent *ea, *eb;
		struct maptbl_table *ta, *tb;
		struct maptbl_build_opts o;
		struct maptbl_mapping ma, mb;
		size_t i, n = 20000, q = 0, differ = 0;
		uint64_t end, *b;
		struct rng r;

		rng_seed(&r, test_seed(0xc4a9 + s));
		ea = random_extents(&r, n, &end);
		eb = calloc(n, sizeof(*eb));
		assert_non_null(eb);
		for (i = 0; i < n; i++) {
			eb[i] = ea[i];
			eb[i].lblk++; /* the same lengths and gaps: the same tree shape */
		}
		maptbl_build_opts_init(&o, sizeof(o));
		o.node_size = sizes[s];
		o.virtual_blocks = end + 50;
		assert_int_equal(maptbl_table_build(ea, n, &o, &ta), 0);
		assert_int_equal(maptbl_table_build(eb, n, &o, &tb), 0);
		assert_int_equal(maptbl_table_len(ta), maptbl_table_len(tb));
		assert_int_equal(ta->root, tb->root);
		b = calloc(2 * n, sizeof(*b));
		assert_non_null(b);
		for (i = 0; i < n; i++) {
			b[q++] = eb[i].lblk;
			b[q++] = eb[i].lblk - 1;
		}
		memcpy(ta->buf, tb->buf, ta->len);
		for (i = 0; i < q; i++) {
			assert_int_equal(maptbl_table_lookup(ta, b[i], &ma), 0);
			assert_int_equal(maptbl_table_lookup(tb, b[i], &mb), 0);
			differ += memcmp(&ma, &mb, sizeof(ma)) != 0;
		}
		assert_true(differ > 0);
		mt_table_changed(ta);
		assert_non_null(ta->acc);
		for (i = 0; i < q; i++) {
			assert_int_equal(maptbl_table_lookup(ta, b[i], &ma), 0);
			assert_int_equal(maptbl_table_lookup(tb, b[i], &mb), 0);
			same(&ma, &mb);
		}
		compare(ta, b, q);
		free(b);
		free(ea);
		free(eb);
		maptbl_table_free(ta);
		maptbl_table_free(tb);
	}
}

/*
 * A block more than 2^32 past a node's first entry but inside the node: inside a last extent of
 * 2^33 blocks in a wide leaf whose starts span little, so the leaf's index record has keys and the
 * block's key saturates at UINT32_MAX. This used to count the unused slots of the record's first
 * line as keys and read past the record (ASan: heap-buffer-overflow in count_line()).
 */
static void test_saturated_key(void **state)
{
	struct maptbl_extent e[101];
	struct maptbl_build_opts o;
	struct maptbl_mapping m;
	struct maptbl_table *t;
	uint64_t b[6], big = UINT64_C(1) << 33;
	size_t i;

	(void)state;
	for (i = 0; i < 100; i++)
		e[i] = (struct maptbl_extent){ .lblk = 10 * i, .pblk = 5000 + 10 * i, .len = 4 };
	e[100] = (struct maptbl_extent){ .lblk = 1000, .pblk = 1u << 20, .len = big };
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 4096; /* one wide leaf */
	o.virtual_blocks = 1000 + big + 7;
	assert_int_equal(maptbl_table_build(e, 101, &o, &t), 0);
	b[0] = 1000 + (UINT64_C(1) << 32) + 10;
	b[1] = 1000 + big - 1;
	b[2] = 1000 + big;
	b[3] = 1000 + (UINT64_C(1) << 32) - 1;
	b[4] = 1000 + (UINT64_C(1) << 32);
	b[5] = 995;
	for (i = 0; i < 5; i++) {
		assert_int_equal(maptbl_table_lookup(t, b[i], &m), 0);
		if (i == 2) {
			assert_int_equal(m.state, MAPTBL_MAP_HOLE);
			assert_int_equal(m.len, 7);
		} else {
			assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
			assert_int_equal(m.pblk, (1u << 20) + b[i] - 1000);
		}
	}
	compare(t, b, 6);
	maptbl_table_free(t);
}

/* With the default threshold a small table has no index (plain search), a larger one has. */
static void test_index_threshold(void **state)
{
	struct maptbl_extent *e;
	struct maptbl_build_opts o;
	struct maptbl_table *t;
	size_t saved = mt_index_min_table;
	uint64_t end;
	struct rng r;

	(void)state;
	mt_index_min_table = (size_t)64 << 10;
	rng_seed(&r, test_seed(0x7e5));
	e = random_extents(&r, 20000, &end);
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 4096;
	assert_int_equal(maptbl_table_build(e, 100, &o, &t), 0);
	assert_true(maptbl_table_len(t) < mt_index_min_table);
	assert_null(t->acc);
	maptbl_table_free(t);
	assert_int_equal(maptbl_table_build(e, 20000, &o, &t), 0);
	assert_true(maptbl_table_len(t) >= mt_index_min_table);
	assert_non_null(t->acc);
	assert_true(mt_table_accel_bytes(t) > 0);
	maptbl_table_free(t);
	free(e);
	mt_index_min_table = saved;
}

/*
 * An update drops the index (a rebuild per publish would cost a pass over every node): the
 * updated table answers through the plain search, and answers right.
 */
static void test_update_drops_index(void **state)
{
	struct maptbl_extent e[64], ins = { .lblk = 0, .pblk = 900000, .len = 1 };
	struct maptbl_build_opts o;
	struct maptbl_table *t;
	struct maptbl_mapping m;
	size_t saved = mt_index_min_table;
	size_t i;

	(void)state;
	mt_index_min_table = 0;
	for (i = 0; i < 64; i++) /* extents at 10, 20, ...: holes between them */
		e[i] = (struct maptbl_extent){ .lblk = 10 * (i + 1), .pblk = 5000 + 100 * i, .len = 5 };
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 256;
	o.spare_nodes = 16;
	assert_int_equal(maptbl_table_build(e, 64, &o, &t), 0);
	assert_non_null(t->acc);
	ins.lblk = 10 * 33 + 7; /* a hole in the middle */
	assert_int_equal(maptbl_table_insert(t, &ins, 0), 0);
	assert_null(t->acc);
	assert_int_equal(maptbl_table_lookup(t, ins.lblk, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(m.pblk, ins.pblk);
	for (i = 0; i < 64; i++) {
		assert_int_equal(maptbl_table_lookup(t, e[i].lblk + 4, &m), 0);
		assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
		assert_int_equal(m.pblk, e[i].pblk + 4);
	}
	maptbl_table_free(t);
	mt_index_min_table = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_drops_index),
		cmocka_unit_test(test_index_threshold),
		cmocka_unit_test(test_agrees_with_lookup),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_absent_subtree),
		cmocka_unit_test(test_table_changed),
		cmocka_unit_test(test_saturated_key),
	};

	mt_index_min_table = 0; /* a lookup index for every table, however small */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
