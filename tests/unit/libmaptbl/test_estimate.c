/* SPDX-License-Identifier: MIT */
/*
 * test_estimate.c - maptbl_table_estimate() against maptbl_table_build(): exact without long
 * extents for random counts, node sizes and fills; an upper bound with long ones.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

static const uint32_t node_sizes[] = { 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 };

/* @nr extents with random gaps; @nr_long of them, at random places, longer than 32768 blocks. */
static struct maptbl_extent *make(struct rng *r, size_t nr, size_t nr_long)
{
	struct maptbl_extent *e = calloc(nr ? nr : 1, sizeof(*e));
	uint64_t lblk = rng_below(r, 1000);
	size_t i, k;

	assert_non_null(e);
	for (i = 0; i < nr; i++) {
		e[i].lblk = lblk;
		e[i].pblk = rng_below(r, 1ull << 40);
		e[i].len = 1 + rng_below(r, 64);
		lblk += e[i].len + rng_below(r, 4);
	}
	for (k = 0; k < nr_long; k++) {
		i = rng_below(r, nr);
		if (e[i].len > MAPTBL_COMPACT_MAX_LEN) {
			k--;
			continue;
		}
		e[i].len = MAPTBL_COMPACT_MAX_LEN + 1 + rng_below(r, 100000);
	}
	/* Re-place so that the longer extents do not overlap. */
	for (i = 0, lblk = 0; i < nr; i++) {
		e[i].lblk = lblk;
		lblk += e[i].len + rng_below(r, 3);
	}
	return e;
}

static void check(struct rng *r, size_t nr, size_t nr_long, uint32_t node_size, uint32_t fill)
{
	struct maptbl_extent *e = make(r, nr, nr_long);
	struct maptbl_build_opts o;
	struct maptbl_estimate est;
	struct maptbl_table *t;
	struct maptbl_stats st;

	assert_int_equal(maptbl_build_opts_init(&o, sizeof(o)), 0);
	o.node_size = node_size;
	o.fill_pct = fill;
	assert_int_equal(maptbl_table_build(e, nr, &o, &t), 0);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	assert_int_equal(maptbl_table_estimate(nr, nr_long, &o, &est), 0);
	assert_int_equal(est.reserved, 0);
	if (!nr_long) {
		assert_int_equal(est.bytes, maptbl_table_len(t));
		assert_int_equal(est.nodes, st.nr_nodes);
		assert_int_equal(est.depth, st.depth);
		assert_int_equal(est.depth, maptbl_table_depth(t));
	} else {
		assert_true(est.bytes >= maptbl_table_len(t));
		assert_true(est.nodes >= st.nr_nodes);
		assert_true(est.depth >= st.depth);
	}
	maptbl_table_free(t);
	free(e);
}

static void test_exact_random(void **state)
{
	struct rng r;
	int i;

	(void)state;
	rng_seed(&r, 0x5eed0001);
	for (i = 0; i < 600; i++) {
		uint32_t ns = node_sizes[rng_below(&r, sizeof(node_sizes) / sizeof(node_sizes[0]))];
		uint32_t fill = rng_below(&r, 3) ? 0 : (uint32_t)rng_range(&r, 1, 100);
		size_t nr = rng_below(&r, 4) ? rng_below(&r, 3000) : rng_below(&r, 60000);

		check(&r, nr, 0, ns, fill);
	}
}

static void test_exact_boundaries(void **state)
{
	struct rng r;
	size_t k, n;

	(void)state;
	rng_seed(&r, 0x5eed0002);
	/* Around every multiple of the leaf capacity at 256-byte nodes, and the empty table. */
	for (k = 0; k < 3 * 19 + 2; k++)
		for (n = k * 19 > 0 ? k * 19 - 1 : 0; n <= k * 19 + 1; n++)
			check(&r, n, 0, 256, 0);
}

static void test_upper_bound_long(void **state)
{
	struct rng r;
	int i;

	(void)state;
	rng_seed(&r, 0x5eed0003);
	for (i = 0; i < 400; i++) {
		uint32_t ns = node_sizes[rng_below(&r, 4)];
		size_t nr = 1 + rng_below(&r, 4000);
		size_t nl = 1 + rng_below(&r, rng_below(&r, 2) ? nr : (nr < 20 ? nr : 20));

		check(&r, nr, nl, ns, 0);
	}
	/* All long: exactly wide leaves everywhere. */
	check(&r, 1000, 1000, 256, 0);
}

/* The worst case is reached: a long extent right after each full-wide-sized compact run. */
static void test_bound_reached(void **state)
{
	struct maptbl_extent e[400];
	struct maptbl_estimate est;
	struct maptbl_build_opts o;
	struct maptbl_table *t;
	uint32_t per_w = maptbl_node_capacity(256, MAPTBL_NODE_LEAF_WIDE);
	uint64_t lblk = 0;
	size_t i, nl = 0;

	(void)state;
	for (i = 0; i < 400; i++) {
		bool lng = i % (2 * per_w) == per_w;

		e[i].lblk = lblk;
		e[i].pblk = 1000000 + lblk;
		e[i].len = lng ? MAPTBL_COMPACT_MAX_LEN + 1 : 1;
		e[i].flags = 0;
		e[i].reserved = 0;
		nl += lng;
		lblk += e[i].len;
	}
	assert_int_equal(maptbl_build_opts_init(&o, sizeof(o)), 0);
	o.node_size = 256;
	assert_int_equal(maptbl_table_build(e, 400, &o, &t), 0);
	assert_int_equal(maptbl_table_estimate(400, nl, &o, &est), 0);
	assert_int_equal(est.bytes, maptbl_table_len(t));
	maptbl_table_free(t);
}

static void test_args(void **state)
{
	struct maptbl_estimate est;
	struct maptbl_build_opts o;

	(void)state;
	assert_int_equal(maptbl_table_estimate(1, 0, NULL, NULL), -EINVAL);
	assert_int_equal(maptbl_table_estimate(1, 2, NULL, &est), -EINVAL);
	assert_int_equal(maptbl_build_opts_init(&o, sizeof(o)), 0);
	o.node_size = 300;
	assert_int_equal(maptbl_table_estimate(1, 0, &o, &est), -EINVAL);
	assert_int_equal(maptbl_table_estimate(0, 0, NULL, &est), 0);
	assert_int_equal(est.depth, 0);
	assert_int_equal(est.nodes, 0);
	assert_int_equal(est.bytes, 4096);
	/* 256-byte nodes, 1 per index node minimum 2: deep enough to refuse. */
	o.node_size = 256;
	assert_int_equal(maptbl_table_estimate(UINT64_C(1) << 62, 0, &o, &est), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_exact_boundaries),
		cmocka_unit_test(test_exact_random),
		cmocka_unit_test(test_upper_bound_long),
		cmocka_unit_test(test_bound_reached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
