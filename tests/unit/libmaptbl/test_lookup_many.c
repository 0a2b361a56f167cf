/* SPDX-License-Identifier: MIT */
/*
 * test_lookup_many.c - maptbl_table_lookup_many() gives, block for block, what
 * maptbl_table_lookup() gives: random tables at every node size (with holes, unwritten, long
 * extents in wide leaves), extent boundaries and random blocks, an absent subtree, an empty table,
 * and its argument errors.
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

static void compare(const struct maptbl_table *t, const uint64_t *b, size_t q)
{
	struct maptbl_mapping *one = calloc(q, sizeof(*one)), *many = calloc(q, sizeof(*many));
	size_t i;

	assert_non_null(one);
	assert_non_null(many);
	for (i = 0; i < q; i++)
		assert_int_equal(maptbl_table_lookup(t, b[i], &one[i]), 0);
	assert_int_equal(maptbl_table_lookup_many(t, b, q, many), 0);
	for (i = 0; i < q; i++) {
		assert_int_equal(many[i].lblk, one[i].lblk);
		assert_int_equal(many[i].state, one[i].state);
		assert_int_equal(many[i].pblk, one[i].pblk);
		assert_int_equal(many[i].len, one[i].len);
		assert_int_equal(many[i].nodes, one[i].nodes);
	}
	free(one);
	free(many);
}

static void test_agrees_with_lookup(void **state)
{
	static const uint32_t sizes[] = { 256, 512, 4096, 65536 };
	static const size_t counts[] = { 1, 17, 5000, 800000 }; /* 800,000: tables over 8 MiB, the interleaved path */
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
			if (n == 800000)
				assert_true(maptbl_table_len(t) > ((size_t)8 << 20));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_lookup),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_absent_subtree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
