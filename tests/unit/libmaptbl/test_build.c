/* SPDX-License-Identifier: MIT */
/*
 * test_build.c - maptbl_table_build() and maptbl_extents_check(): one test per input rule (with
 * the exact extent index and a reason that names the problem), then the shapes the builder makes
 * (FORMAT.md §5 capacities, §10 depth limits, §11 leaf choice).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const uint32_t node_sizes[] = { 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 };

/* ---- helpers ---- */

static void opts(struct maptbl_build_opts *o, struct maptbl_diag *d, uint32_t node_size,
		 uint64_t virt, uint64_t disk)
{
	assert_int_equal(maptbl_build_opts_init(o, sizeof(*o)), 0);
	o->node_size = node_size;
	o->virtual_blocks = virt;
	o->disk_blocks = disk;
	o->diag = d;
}

/*
 * Both maptbl_extents_check() and maptbl_table_build() refuse @e with -EBADMSG, name extent
 * @idx, and give a reason that contains every word of @words ('|'-separated).
 */
static void expect_bad_ext(const struct maptbl_extent *e, size_t nr, uint64_t virt,
			   uint64_t disk, int64_t idx, const char *words)
{
	struct maptbl_build_opts o;
	struct maptbl_diag d;
	struct maptbl_table *t = (struct maptbl_table *)&o;
	char buf[128], *w, *save = NULL;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		memset(&d, 0x55, sizeof(d));
		opts(&o, &d, 256, virt, disk);
		if (pass == 0) {
			assert_int_equal(maptbl_extents_check(e, nr, &o), -EBADMSG);
		} else {
			assert_int_equal(maptbl_table_build(e, nr, &o, &t), -EBADMSG);
			assert_null(t);
		}
		if (d.index != idx)
			fail_msg("diag.index %lld, want %lld (reason: %s)", (long long)d.index,
				 (long long)idx, d.reason);
		assert_int_equal(d.offset, 0);
		snprintf(buf, sizeof(buf), "%s", words);
		for (w = strtok_r(buf, "|", &save); w; w = strtok_r(NULL, "|", &save))
			if (!contains_word(d.reason, w))
				fail_msg("reason \"%s\" does not mention \"%s\"", d.reason, w);
	}
}

/* The options in @o are refused with -EINVAL by both calls, the reason naming @word. */
static void expect_bad_opts(struct maptbl_build_opts *o, const char *word)
{
	static const struct maptbl_extent e[] = { { .lblk = 0, .pblk = 0, .len = 1 } };
	struct maptbl_table *t = (struct maptbl_table *)o;
	struct maptbl_diag d;

	memset(&d, 0x55, sizeof(d));
	o->diag = &d;
	assert_int_equal(maptbl_extents_check(e, 1, o), -EINVAL);
	assert_int_equal(d.index, -1);
	if (!contains_word(d.reason, word))
		fail_msg("reason \"%s\" does not mention \"%s\"", d.reason, word);
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(maptbl_table_build(e, 1, o, &t), -EINVAL);
	assert_null(t);
	assert_int_equal(d.index, -1);
	if (!contains_word(d.reason, word))
		fail_msg("reason \"%s\" does not mention \"%s\"", d.reason, word);
}

static void expect_good_opts(struct maptbl_build_opts *o)
{
	static const struct maptbl_extent e[] = { { .lblk = 0, .pblk = 0, .len = 1 } };
	struct maptbl_table *t = NULL;

	o->diag = NULL;
	assert_int_equal(maptbl_extents_check(e, 1, o), 0);
	assert_int_equal(maptbl_table_build(e, 1, o, &t), 0);
	maptbl_table_free(t);
}

struct collect {
	struct maptbl_extent *e;
	size_t n, cap;
};

static int collect_fn(void *ctx, const struct maptbl_extent *e)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->e = realloc(c->e, c->cap * sizeof(*c->e));
		if (!c->e)
			return -ENOMEM;
	}
	c->e[c->n++] = *e;
	return 0;
}

/* @t iterates to exactly @e, re-opens from its bytes, and the re-opened table agrees. */
static void roundtrip(const struct maptbl_table *t, const struct maptbl_extent *e, size_t nr)
{
	struct collect c = { 0 };
	struct maptbl_table *t2 = NULL;
	struct maptbl_stats s1, s2;
	size_t i;

	assert_int_equal(maptbl_table_iterate(t, collect_fn, &c), 0);
	assert_int_equal(c.n, nr);
	for (i = 0; i < nr; i++) {
		assert_int_equal(c.e[i].lblk, e[i].lblk);
		assert_int_equal(c.e[i].pblk, e[i].pblk);
		assert_int_equal(c.e[i].len, e[i].len);
		assert_int_equal(c.e[i].flags, e[i].flags);
		assert_int_equal(c.e[i].reserved, 0);
	}
	free(c.e);
	assert_int_equal(maptbl_table_nr_extents(t), nr);
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), NULL, &t2), 0);
	assert_int_equal(maptbl_table_stats(t, &s1, sizeof(s1)), 0);
	assert_int_equal(maptbl_table_stats(t2, &s2, sizeof(s2)), 0);
	assert_memory_equal(&s1, &s2, sizeof(s1));
	for (i = 0; i < nr; i++) {
		struct maptbl_mapping m1, m2;

		assert_int_equal(maptbl_table_lookup(t, e[i].lblk, &m1), 0);
		assert_int_equal(maptbl_table_lookup(t2, e[i].lblk, &m2), 0);
		assert_memory_equal(&m1, &m2, sizeof(m1));
		assert_int_equal(m1.pblk, e[i].pblk);
		assert_int_equal(m1.len, e[i].len);
	}
	maptbl_table_free(t2);
}

static void lookup_is(const struct maptbl_table *t, uint64_t lblk, uint32_t state, uint64_t pblk,
		      uint64_t len)
{
	struct maptbl_mapping m;

	assert_int_equal(maptbl_table_lookup(t, lblk, &m), 0);
	if (m.state != state || m.pblk != pblk || m.len != len)
		fail_msg("lookup %llu: state %u pblk %llu len %llu, want %u %llu %llu",
			 (unsigned long long)lblk, m.state, (unsigned long long)m.pblk,
			 (unsigned long long)m.len, state, (unsigned long long)pblk,
			 (unsigned long long)len);
}

/* ---- input rules ---- */

static void test_args(void **state)
{
	struct maptbl_extent e = { .lblk = 0, .pblk = 0, .len = 1 };
	struct maptbl_table *t = (struct maptbl_table *)&e;

	(void)state;
	assert_int_equal(maptbl_table_build(&e, 1, NULL, NULL), -EINVAL);
	assert_int_equal(maptbl_table_build(NULL, 1, NULL, &t), -EINVAL);
	assert_int_equal(maptbl_extents_check(NULL, 1, NULL), -EINVAL);
	assert_int_equal(maptbl_extents_check(NULL, 0, NULL), 0);
	assert_int_equal(maptbl_extents_check(&e, 1, NULL), 0);
}

static void test_rule_len_zero(void **state)
{
	const struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 4, .pblk = 20, .len = 4 },
		{ .lblk = 10, .pblk = 30, .len = 0 },
	};

	(void)state;
	expect_bad_ext(e, 3, 0, 0, 2, "length is 0");
	expect_bad_ext(e + 2, 1, 0, 0, 0, "length is 0");
}

static void test_rule_unknown_flags(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4, .flags = MAPTBL_EXTENT_UNWRITTEN },
		{ .lblk = 5, .pblk = 20, .len = 4, .flags = 0x4 },
	};
	const uint32_t bad[] = { 0x4, MAPTBL_EXTENT_ABSENT, MAPTBL_EXTENT_ABSENT | 1, 0x80000000u };
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		e[1].flags = bad[i];
		expect_bad_ext(e, 2, 0, 0, 1, "flags");
	}
}

/*
 * This used to report a non-zero reserved field as "unknown flags 0x0", which names neither the
 * field nor the problem.
 */
static void test_rule_reserved(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 5, .pblk = 20, .len = 4, .reserved = 1 },
	};

	(void)state;
	expect_bad_ext(e, 2, 0, 0, 1, "reserved");
	e[1].reserved = 0x80000000u;
	expect_bad_ext(e, 2, 0, 0, 1, "reserved");
}

static void test_rule_logical_end(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = MAX_BLK - 1, .pblk = 20, .len = 2 },
	};
	struct maptbl_table *t = NULL;

	(void)state;
	expect_bad_ext(e, 2, 0, 0, 1, "logical|2^48");
	e[1].lblk = MAX_BLK;
	e[1].len = 1;
	expect_bad_ext(e, 2, 0, 0, 1, "logical|2^48");
	e[1].lblk = 10;
	e[1].len = MAX_BLK - 9;
	expect_bad_ext(e, 2, 0, 0, 1, "logical|2^48");
	e[1].lblk = UINT64_MAX;
	e[1].len = 2; /* wraps around in 64 bits */
	expect_bad_ext(e, 2, 0, 0, 1, "logical|2^48");
	/* Ending exactly at 2^48 is allowed. */
	e[1].lblk = MAX_BLK - 1;
	e[1].len = 1;
	assert_int_equal(maptbl_table_build(e, 2, NULL, &t), 0);
	assert_int_equal(maptbl_table_virtual_blocks(t), MAX_BLK);
	lookup_is(t, MAX_BLK - 1, MAPTBL_MAP_MAPPED, 20, 1);
	roundtrip(t, e, 2);
	maptbl_table_free(t);
}

/*
 * Length fields hold 48 bits: a length of 2^48 (only [0, 2^48) at pblk 0 could have one and
 * still end in range) cannot be stored. 2^48 - 1 can, in a wide leaf.
 */
static void test_rule_len_48_bits(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 0, .len = MAX_BLK },
	};
	struct maptbl_table *t = NULL;
	struct maptbl_mapping m;

	(void)state;
	expect_bad_ext(e, 1, 0, 0, 0, "48 bits");
	e[0].len = MAX_BLK - 1;
	assert_int_equal(maptbl_table_build(e, 1, NULL, &t), 0);
	assert_int_equal(maptbl_table_features(t, 0), MAPTBL_INCOMPAT_WIDE_LEAF);
	lookup_is(t, MAX_BLK - 2, MAPTBL_MAP_MAPPED, MAX_BLK - 2, 1);
	assert_int_equal(maptbl_table_lookup(t, MAX_BLK - 1, &m), -ERANGE);
	roundtrip(t, e, 1);
	maptbl_table_free(t);
}

static void test_rule_physical_end(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 4, .pblk = MAX_BLK - 1, .len = 2 },
	};
	struct maptbl_table *t = NULL;

	(void)state;
	expect_bad_ext(e, 2, 0, 0, 1, "physical|2^48");
	e[1].pblk = MAX_BLK;
	e[1].len = 1;
	expect_bad_ext(e, 2, 0, 0, 1, "physical|2^48");
	e[1].pblk = UINT64_MAX;
	expect_bad_ext(e, 2, 0, 0, 1, "physical|2^48");
	e[1].pblk = MAX_BLK - 1;
	assert_int_equal(maptbl_table_build(e, 2, NULL, &t), 0);
	lookup_is(t, 4, MAPTBL_MAP_MAPPED, MAX_BLK - 1, 1);
	roundtrip(t, e, 2);
	maptbl_table_free(t);
}

static void test_rule_not_sorted(void **state)
{
	const struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 100, .pblk = 20, .len = 4 },
		{ .lblk = 50, .pblk = 30, .len = 4 },
	};

	(void)state;
	expect_bad_ext(e, 3, 0, 0, 2, "not sorted");
}

static void test_rule_overlapping(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 100, .pblk = 20, .len = 10 },
		{ .lblk = 109, .pblk = 30, .len = 4 },
	};

	(void)state;
	expect_bad_ext(e, 3, 0, 0, 2, "overlaps");
	e[2].lblk = 100; /* same start */
	expect_bad_ext(e, 3, 0, 0, 2, "overlaps");
}

static void test_rule_past_disk(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 10, .pblk = 95, .len = 6 },
	};
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;

	(void)state;
	expect_bad_ext(e, 2, 0, 100, 1, "disk");
	e[1].pblk = 100;
	e[1].len = 1;
	expect_bad_ext(e, 2, 0, 100, 1, "disk");
	/* Ending exactly at disk_blocks is allowed, and disk_blocks is recorded. */
	e[1].pblk = 95;
	e[1].len = 5;
	opts(&o, NULL, 256, 0, 100);
	assert_int_equal(maptbl_table_build(e, 2, &o, &t), 0);
	assert_int_equal(maptbl_table_disk_blocks(t), 100);
	assert_int_equal(get_le64((const uint8_t *)maptbl_table_data(t) + TW_DISK), 100);
	roundtrip(t, e, 2);
	maptbl_table_free(t);
}

static void test_rule_past_virtual(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 10, .len = 4 },
		{ .lblk = 95, .pblk = 20, .len = 6 },
	};
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;

	(void)state;
	expect_bad_ext(e, 2, 100, 0, 1, "virtual");
	e[1].lblk = 100;
	e[1].len = 1;
	expect_bad_ext(e, 2, 100, 0, 1, "virtual");
	e[1].lblk = 95;
	e[1].len = 5;
	opts(&o, NULL, 256, 100, 0);
	assert_int_equal(maptbl_table_build(e, 2, &o, &t), 0);
	assert_int_equal(maptbl_table_virtual_blocks(t), 100);
	roundtrip(t, e, 2);
	maptbl_table_free(t);
}

static void test_rule_block_size(void **state)
{
	const uint32_t bad[] = { 1, 256, 511, 1000, 3000, 131072, 0x80000000u, 0xFFFFFFFFu };
	const uint32_t good[] = { 0, 512, 1024, 4096, 65536 };
	struct maptbl_build_opts o;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		opts(&o, NULL, 0, 0, 0);
		o.block_size = bad[i];
		expect_bad_opts(&o, "block size");
	}
	for (i = 0; i < NELEM(good); i++) {
		opts(&o, NULL, 0, 0, 0);
		o.block_size = good[i];
		expect_good_opts(&o);
	}
}

static void test_rule_node_size(void **state)
{
	const uint32_t bad[] = { 1, 32, 128, 255, 300, 4095, 131072, 0x80000000u };
	struct maptbl_build_opts o;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		opts(&o, NULL, bad[i], 0, 0);
		expect_bad_opts(&o, "node size");
	}
	opts(&o, NULL, 0, 0, 0);
	expect_good_opts(&o);
}

static void test_rule_fill(void **state)
{
	const uint32_t bad[] = { 101, 200, 0xFFFFFFFFu };
	struct maptbl_build_opts o;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(bad); i++) {
		opts(&o, NULL, 0, 0, 0);
		o.fill_pct = bad[i];
		expect_bad_opts(&o, "fill");
	}
	for (i = 0; i <= 100; i += 10) {
		opts(&o, NULL, 0, 0, 0);
		o.fill_pct = (uint32_t)i;
		expect_good_opts(&o);
	}
}

static void test_rule_virtual_size(void **state)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;

	(void)state;
	opts(&o, NULL, 0, MAX_BLK + 1, 0);
	expect_bad_opts(&o, "virtual");
	opts(&o, NULL, 0, UINT64_MAX, 0);
	expect_bad_opts(&o, "2^48");
	opts(&o, NULL, 0, 0, MAX_BLK + 1);
	expect_bad_opts(&o, "disk");
	opts(&o, NULL, 0, MAX_BLK, MAX_BLK);
	assert_int_equal(maptbl_table_build(NULL, 0, &o, &t), 0);
	assert_int_equal(maptbl_table_virtual_blocks(t), MAX_BLK);
	lookup_is(t, MAX_BLK - 1, MAPTBL_MAP_HOLE, 0, 1);
	maptbl_table_free(t);
}

/* ---- accepted inputs ---- */

static void test_empty(void **state)
{
	struct maptbl_extent dummy = { 0 };
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL, *t2 = NULL;
	struct maptbl_mapping m;
	struct maptbl_stats st;
	struct collect c = { 0 };
	const uint8_t *d;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(node_sizes); i++) {
		uint64_t l;

		opts(&o, NULL, node_sizes[i], 1000, 0);
		assert_int_equal(maptbl_table_build(i & 1 ? &dummy : NULL, 0, &o, &t), 0);
		d = maptbl_table_data(t);
		assert_int_equal(maptbl_table_len(t), node_sizes[i]);
		assert_int_equal(get_le32(d + TW_ROOT), 0);
		assert_int_equal(get_le64(d + TW_TABLE_LEN), node_sizes[i]);
		assert_int_equal(maptbl_table_depth(t), 0);
		assert_int_equal(maptbl_table_nr_extents(t), 0);
		for (l = 0; l < 1000; l += 37) {
			assert_int_equal(maptbl_table_lookup(t, l, &m), 0);
			assert_int_equal(m.state, MAPTBL_MAP_HOLE);
			assert_int_equal(m.len, 1000 - l);
			assert_int_equal(m.nodes, 0);
		}
		lookup_is(t, 999, MAPTBL_MAP_HOLE, 0, 1);
		assert_int_equal(maptbl_table_lookup(t, 1000, &m), -ERANGE);
		assert_int_equal(maptbl_table_iterate(t, collect_fn, &c), 0);
		assert_int_equal(c.n, 0);
		assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
		assert_int_equal(st.nr_nodes, 0);
		assert_int_equal(st.depth, 0);
		assert_int_equal(maptbl_table_open(d, maptbl_table_len(t), NULL, &t2), 0);
		lookup_is(t2, 0, MAPTBL_MAP_HOLE, 0, 1000);
		maptbl_table_free(t2);
		maptbl_table_free(t);
	}
	/* Without a virtual size the empty table maps nothing at all. */
	assert_int_equal(maptbl_table_build(NULL, 0, NULL, &t), 0);
	assert_int_equal(maptbl_table_virtual_blocks(t), 0);
	assert_int_equal(maptbl_table_lookup(t, 0, &m), -ERANGE);
	maptbl_table_free(t);
}

static void test_one_extent(void **state)
{
	const struct maptbl_extent e[] = { { .lblk = 5, .pblk = 100, .len = 10 } };
	struct maptbl_table *t = NULL;
	struct maptbl_mapping m;

	(void)state;
	assert_int_equal(maptbl_table_build(e, 1, NULL, &t), 0);
	assert_int_equal(maptbl_table_virtual_blocks(t), 15);
	assert_int_equal(maptbl_table_depth(t), 1);
	assert_int_equal(maptbl_table_node_size(t), MAPTBL_DEFAULT_NODE_SIZE);
	assert_int_equal(maptbl_table_block_size(t), 4096);
	assert_int_equal(maptbl_table_len(t), 2 * MAPTBL_DEFAULT_NODE_SIZE);
	lookup_is(t, 0, MAPTBL_MAP_HOLE, 0, 5);
	lookup_is(t, 4, MAPTBL_MAP_HOLE, 0, 1);
	lookup_is(t, 5, MAPTBL_MAP_MAPPED, 100, 10);
	lookup_is(t, 14, MAPTBL_MAP_MAPPED, 109, 1);
	assert_int_equal(maptbl_table_lookup(t, 15, &m), -ERANGE);
	roundtrip(t, e, 1);
	maptbl_table_free(t);
}

/* Adjacent extents stay two extents, even when physically contiguous too. */
static void test_adjacent(void **state)
{
	const struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 100, .len = 10 },
		{ .lblk = 10, .pblk = 110, .len = 10 },
		{ .lblk = 20, .pblk = 7, .len = 5, .flags = MAPTBL_EXTENT_UNWRITTEN },
		{ .lblk = 25, .pblk = 12, .len = 5 },
	};
	struct maptbl_table *t = NULL;

	(void)state;
	assert_int_equal(maptbl_table_build(e, 4, NULL, &t), 0);
	lookup_is(t, 9, MAPTBL_MAP_MAPPED, 109, 1);
	lookup_is(t, 10, MAPTBL_MAP_MAPPED, 110, 10);
	lookup_is(t, 24, MAPTBL_MAP_UNWRITTEN, 11, 1);
	lookup_is(t, 25, MAPTBL_MAP_MAPPED, 12, 5);
	roundtrip(t, e, 4);
	maptbl_table_free(t);
}

/* 32768 blocks fit a compact entry; 32769 force a wide leaf and the WIDE_LEAF feature. */
static void test_compact_vs_wide_length(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 1000, .len = 10 },
		{ .lblk = 100, .pblk = 1u << 20, .len = MAPTBL_COMPACT_MAX_LEN,
		  .flags = MAPTBL_EXTENT_UNWRITTEN },
	};
	struct maptbl_table *t = NULL;
	const uint8_t *d;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(node_sizes); i++) {
		struct maptbl_build_opts o;

		opts(&o, NULL, node_sizes[i], 0, 0);
		e[1].len = MAPTBL_COMPACT_MAX_LEN;
		assert_int_equal(maptbl_table_build(e, 2, &o, &t), 0);
		d = maptbl_table_data(t);
		assert_int_equal(d[node_sizes[i] + 2], MAPTBL_NODE_LEAF_COMPACT);
		assert_int_equal(get_le64(d + TW_INCOMPAT), 0);
		assert_int_equal(maptbl_table_features(t, 0), 0);
		lookup_is(t, 100 + 32767, MAPTBL_MAP_UNWRITTEN, (1u << 20) + 32767, 1);
		roundtrip(t, e, 2);
		maptbl_table_free(t);

		e[1].len = MAPTBL_COMPACT_MAX_LEN + 1;
		assert_int_equal(maptbl_table_build(e, 2, &o, &t), 0);
		d = maptbl_table_data(t);
		assert_int_equal(d[node_sizes[i] + 2], MAPTBL_NODE_LEAF_WIDE);
		assert_int_equal(get_le64(d + TW_INCOMPAT), MAPTBL_INCOMPAT_WIDE_LEAF);
		assert_int_equal(maptbl_table_features(t, 0), MAPTBL_INCOMPAT_WIDE_LEAF);
		lookup_is(t, 100 + 32768, MAPTBL_MAP_UNWRITTEN, (1u << 20) + 32768, 1);
		lookup_is(t, 100, MAPTBL_MAP_UNWRITTEN, 1u << 20, 32769);
		roundtrip(t, e, 2);
		maptbl_table_free(t);
	}
}

/* An extent 0xFFFFFFFF blocks after the leaf's first fits lblk_off; 2^32 does not. */
static void test_lblk_gap_over_2_32(void **state)
{
	struct maptbl_extent e[] = {
		{ .lblk = 7, .pblk = 1000, .len = 10 },
		{ .lblk = 7 + MAPTBL_COMPACT_MAX_OFF, .pblk = 5, .len = 3 },
	};
	struct maptbl_table *t = NULL;
	const uint8_t *d;

	(void)state;
	assert_int_equal(maptbl_table_build(e, 2, NULL, &t), 0);
	d = maptbl_table_data(t);
	assert_int_equal(d[4096 + 2], MAPTBL_NODE_LEAF_COMPACT);
	lookup_is(t, 17, MAPTBL_MAP_HOLE, 0, MAPTBL_COMPACT_MAX_OFF - 10);
	lookup_is(t, 8 + MAPTBL_COMPACT_MAX_OFF, MAPTBL_MAP_MAPPED, 6, 2);
	roundtrip(t, e, 2);
	maptbl_table_free(t);

	e[1].lblk = 7 + (UINT64_C(1) << 32);
	assert_int_equal(maptbl_table_build(e, 2, NULL, &t), 0);
	d = maptbl_table_data(t);
	assert_int_equal(d[4096 + 2], MAPTBL_NODE_LEAF_WIDE);
	assert_int_equal(maptbl_table_features(t, 0), MAPTBL_INCOMPAT_WIDE_LEAF);
	lookup_is(t, 17, MAPTBL_MAP_HOLE, 0, (UINT64_C(1) << 32) - 10);
	lookup_is(t, 8 + (UINT64_C(1) << 32), MAPTBL_MAP_MAPPED, 6, 2);
	roundtrip(t, e, 2);
	maptbl_table_free(t);
}

/* Many extents with a few 2^33 gaps: leaves that straddle a gap are wide, answers stay right. */
static void test_lblk_gaps_many(void **state)
{
	size_t n = 3000, i, compact = 0, wide = 0;
	struct maptbl_extent *e = calloc(n, sizeof(*e));
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct maptbl_stats st;
	uint64_t l = 0;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < n; i++) {
		l += i % 500 == 250 ? UINT64_C(1) << 33 : 3;
		e[i].lblk = l;
		e[i].len = 2;
		e[i].pblk = i * 2;
		l += 2;
	}
	opts(&o, NULL, 1024, 0, 0);
	assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	compact = st.nr_compact_leaves;
	wide = st.nr_wide_leaves;
	assert_true(wide >= 1);
	assert_true(compact >= 1);
	assert_int_equal(maptbl_table_features(t, 0), MAPTBL_INCOMPAT_WIDE_LEAF);
	for (i = 0; i < n; i++) {
		lookup_is(t, e[i].lblk, MAPTBL_MAP_MAPPED, e[i].pblk, 2);
		if (i + 1 < n)
			lookup_is(t, e[i].lblk + 2, MAPTBL_MAP_HOLE, 0, e[i + 1].lblk - e[i].lblk - 2);
	}
	roundtrip(t, e, n);
	maptbl_table_free(t);
	free(e);
}

/*
 * The shape of a built all-compact table from FORMAT.md §5 capacities: per leaf
 * max(1, cap_c * fill / 100) extents, per index node max(2, cap_i * fill / 100) children.
 */
static void check_shape(uint32_t node_size, uint32_t fill, size_t n)
{
	struct maptbl_extent *e = calloc(n, sizeof(*e));
	uint32_t cap_c = maptbl_node_capacity(node_size, MAPTBL_NODE_LEAF_COMPACT);
	uint32_t cap_i = maptbl_node_capacity(node_size, MAPTBL_NODE_INDEX);
	uint64_t per_c = (uint64_t)cap_c * fill / 100, per_i = (uint64_t)cap_i * fill / 100;
	uint64_t count[MAPTBL_MAX_DEPTH] = { 0 }, nodes = 0, used = 0, capacity = 0, first;
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct maptbl_stats st;
	const uint8_t *d;
	uint32_t depth = 0, l;
	size_t i;

	assert_non_null(e);
	for (i = 0; i < n; i++) {
		e[i].lblk = i * 3;
		e[i].len = 1 + i % 2;
		e[i].pblk = 1000 + i;
		e[i].flags = i % 7 == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0;
	}
	per_c = per_c ? per_c : 1;
	per_i = per_i > 2 ? per_i : 2;
	count[0] = (n + per_c - 1) / per_c;
	depth = 1;
	while (count[depth - 1] > 1) {
		count[depth] = (count[depth - 1] + per_i - 1) / per_i;
		depth++;
	}
	for (l = 0; l < depth; l++) {
		nodes += count[l];
		capacity += count[l] * (l ? cap_i : cap_c);
	}
	used = n + nodes - 1; /* every node but the root is one index entry */

	opts(&o, NULL, node_size, 0, 0);
	o.fill_pct = fill;
	assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	if (st.depth != depth || st.nr_nodes != nodes)
		fail_msg("node %u fill %u n %zu: depth %u nodes %llu, want %u %llu", node_size, fill,
			 n, st.depth, (unsigned long long)st.nr_nodes, depth,
			 (unsigned long long)nodes);
	assert_int_equal(maptbl_table_depth(t), depth);
	assert_int_equal(st.max_nodes_touched, depth);
	for (l = 0; l < MAPTBL_MAX_DEPTH; l++)
		assert_int_equal(st.nodes_per_level[l], count[l]);
	assert_int_equal(st.nr_compact_leaves, count[0]);
	assert_int_equal(st.nr_wide_leaves, 0);
	assert_int_equal(st.nr_index_nodes, nodes - count[0]);
	assert_int_equal(st.entries_used, used);
	assert_int_equal(st.entries_capacity, capacity);
	assert_int_equal(st.entry_bytes, nodes * 32 + (uint64_t)n * 12 + (nodes - 1) * 16);
	assert_int_equal(st.nr_extents, n);
	assert_int_equal(st.nr_unwritten, (n + 6) / 7);
	assert_int_equal(st.table_bytes, (nodes + 1) * node_size);
	assert_int_equal(maptbl_table_len(t), (nodes + 1) * node_size);
	assert_int_equal(st.nr_absent, 0);

	/* Breadth-first: root in node 1, then each level left to right; leaves full but the last. */
	d = maptbl_table_data(t);
	first = 1;
	for (l = depth; l-- > 0;) {
		uint64_t k;

		for (k = 0; k < count[l]; k++) {
			const uint8_t *p = d + (first + k) * node_size;
			uint64_t want = l ? per_i : per_c;

			if (k + 1 == count[l])
				want = (l ? count[l - 1] : n) - k * want;
			assert_int_equal(p[3], l);
			assert_int_equal(p[2], l ? MAPTBL_NODE_INDEX : MAPTBL_NODE_LEAF_COMPACT);
			assert_int_equal(get_le16(p + 4), want);
			assert_int_equal(get_le32(p + 12), first + k);
		}
		first += count[l];
	}
	roundtrip(t, e, n);
	maptbl_table_free(t);
	free(e);
}

static void test_every_node_size(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(node_sizes); i++) {
		check_shape(node_sizes[i], 100, 1);
		check_shape(node_sizes[i], 100, maptbl_node_capacity(node_sizes[i], 2));
		check_shape(node_sizes[i], 100, maptbl_node_capacity(node_sizes[i], 2) + 1);
		check_shape(node_sizes[i], 100, 20000);
	}
}

static void test_fill(void **state)
{
	const uint32_t fills[] = { 1, 50, 100 };
	size_t i, j;

	(void)state;
	for (i = 0; i < NELEM(node_sizes); i++)
		for (j = 0; j < NELEM(fills); j++)
			check_shape(node_sizes[i], fills[j], node_sizes[i] <= 1024 ? 700 : 6000);
	check_shape(256, 1, 1000);
	check_shape(4096, 50, 30000);
}

/* FORMAT.md §10: 338 * 254 = 85,852 extents fit two levels of 4096-byte nodes; one more does not. */
static void test_depth_limits(void **state)
{
	size_t n = 85853, i;
	struct maptbl_extent *e = calloc(n, sizeof(*e));
	struct maptbl_table *t = NULL;
	struct maptbl_stats st;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < n; i++) {
		e[i].lblk = i * 2;
		e[i].len = 1;
		e[i].pblk = i;
	}
	assert_int_equal(maptbl_table_build(e, 85852, NULL, &t), 0);
	assert_int_equal(maptbl_table_depth(t), 2);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	assert_int_equal(st.nodes_per_level[0], 254);
	assert_int_equal(st.nodes_per_level[1], 1);
	maptbl_table_free(t);
	assert_int_equal(maptbl_table_build(e, 85853, NULL, &t), 0);
	assert_int_equal(maptbl_table_depth(t), 3);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	assert_int_equal(st.nodes_per_level[0], 255);
	assert_int_equal(st.nodes_per_level[1], 2);
	assert_int_equal(st.nodes_per_level[2], 1);
	lookup_is(t, 85852 * 2, MAPTBL_MAP_MAPPED, 85852, 1);
	maptbl_table_free(t);
	free(e);
}

/*
 * At node_size 256 and fill 1 a leaf holds 1 extent and an index node 2 children, so 2^15
 * extents need the full 16 levels and one more extent would need 17: -E2BIG.
 */
static void test_too_deep(void **state)
{
	size_t n = 32769, i;
	struct maptbl_extent *e = calloc(n, sizeof(*e));
	struct maptbl_build_opts o;
	struct maptbl_diag d;
	struct maptbl_table *t = NULL;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < n; i++) {
		e[i].lblk = i;
		e[i].len = 1;
		e[i].pblk = i;
	}
	opts(&o, &d, 256, 0, 0);
	o.fill_pct = 1;
	assert_int_equal(maptbl_table_build(e, 32768, &o, &t), 0);
	assert_int_equal(maptbl_table_depth(t), MAPTBL_MAX_DEPTH);
	lookup_is(t, 32767, MAPTBL_MAP_MAPPED, 32767, 1);
	{
		struct maptbl_mapping m;

		assert_int_equal(maptbl_table_lookup(t, 12345, &m), 0);
		assert_int_equal(m.nodes, MAPTBL_MAX_DEPTH);
	}
	roundtrip(t, e, 32768);
	maptbl_table_free(t);
	t = (struct maptbl_table *)&o;
	assert_int_equal(maptbl_table_build(e, n, &o, &t), -E2BIG);
	assert_null(t);
	assert_true(contains_word(d.reason, "levels"));
	/* The extents themselves are fine. */
	assert_int_equal(maptbl_extents_check(e, n, &o), 0);
	free(e);
}

static void test_header_fields(void **state)
{
	const struct maptbl_extent e[] = { { .lblk = 0, .pblk = 1, .len = 1 } };
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	const uint8_t *d;

	(void)state;
	opts(&o, NULL, 512, 1000, 2000);
	o.block_size = 512;
	o.generation = 0xABCDEF01u;
	assert_int_equal(maptbl_table_build(e, 1, &o, &t), 0);
	d = maptbl_table_data(t);
	assert_memory_equal(d, MAPTBL_MAGIC_STR, 8);
	assert_int_equal(get_le16(d + 8), 1);
	assert_int_equal(get_le16(d + 10), 128);
	assert_int_equal(get_le32(d + TW_ROOT), 1);
	assert_int_equal(get_le32(d + TW_GEN), 0xABCDEF01u);
	assert_int_equal(maptbl_table_generation(t), 0xABCDEF01u);
	assert_int_equal(get_le32(d + TW_BLOCK_SIZE), 512);
	assert_int_equal(get_le32(d + TW_NODE_SIZE), 512);
	assert_int_equal(get_le64(d + TW_VIRTUAL), 1000);
	assert_int_equal(get_le64(d + TW_DISK), 2000);
	assert_int_equal(get_le64(d + TW_TABLE_LEN), 1024);
	assert_int_equal(get_le32(d + TW_HDR_CRC), tw_header_crc(d, 128));
	assert_int_equal(get_le32(d + 512 + 8), tw_node_crc(d + 512, 32 + 12));
	/* Header padding and the node's zero tail. */
	for (size_t i = 80; i < 512; i++)
		assert_int_equal(d[i], 0);
	for (size_t i = 512 + 44; i < 1024; i++)
		assert_int_equal(d[i], 0);
	maptbl_table_free(t);
}

/* Getters accept NULL; functions that can fail return -EINVAL for it. */
static void test_null_handles(void **state)
{
	struct maptbl_mapping m;
	struct maptbl_stats st;
	struct maptbl_table *t = NULL;
	const struct maptbl_extent e[] = { { .lblk = 0, .pblk = 1, .len = 1 } };

	(void)state;
	maptbl_table_free(NULL);
	assert_null(maptbl_table_data(NULL));
	assert_int_equal(maptbl_table_len(NULL), 0);
	assert_int_equal(maptbl_table_block_size(NULL), 0);
	assert_int_equal(maptbl_table_node_size(NULL), 0);
	assert_int_equal(maptbl_table_virtual_blocks(NULL), 0);
	assert_int_equal(maptbl_table_disk_blocks(NULL), 0);
	assert_int_equal(maptbl_table_generation(NULL), 0);
	assert_int_equal(maptbl_table_nr_extents(NULL), 0);
	assert_int_equal(maptbl_table_depth(NULL), 0);
	assert_int_equal(maptbl_table_features(NULL, 0), 0);
	assert_false(maptbl_table_readonly(NULL));
	assert_int_equal(maptbl_table_lookup(NULL, 0, &m), -EINVAL);
	assert_int_equal(maptbl_table_stats(NULL, &st, sizeof(st)), -EINVAL);
	assert_int_equal(maptbl_table_build(e, 1, NULL, &t), 0);
	assert_int_equal(maptbl_table_lookup(t, 0, NULL), -EINVAL);
	assert_int_equal(maptbl_table_stats(t, NULL, sizeof(st)), -EINVAL);
	/* A caller with a shorter stats struct gets only its part. */
	memset(&st, 0xee, sizeof(st));
	assert_int_equal(maptbl_table_stats(t, &st, offsetof(struct maptbl_stats, nr_absent)), 0);
	assert_int_equal(st.nr_extents, 1);
	assert_int_equal(st.nr_absent, UINT64_C(0xeeeeeeeeeeeeeeee));
	maptbl_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_rule_len_zero),
		cmocka_unit_test(test_rule_unknown_flags),
		cmocka_unit_test(test_rule_reserved),
		cmocka_unit_test(test_rule_logical_end),
		cmocka_unit_test(test_rule_len_48_bits),
		cmocka_unit_test(test_rule_physical_end),
		cmocka_unit_test(test_rule_not_sorted),
		cmocka_unit_test(test_rule_overlapping),
		cmocka_unit_test(test_rule_past_disk),
		cmocka_unit_test(test_rule_past_virtual),
		cmocka_unit_test(test_rule_block_size),
		cmocka_unit_test(test_rule_node_size),
		cmocka_unit_test(test_rule_fill),
		cmocka_unit_test(test_rule_virtual_size),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_one_extent),
		cmocka_unit_test(test_adjacent),
		cmocka_unit_test(test_compact_vs_wide_length),
		cmocka_unit_test(test_lblk_gap_over_2_32),
		cmocka_unit_test(test_lblk_gaps_many),
		cmocka_unit_test(test_every_node_size),
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_depth_limits),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_null_handles),
	};

	return cmocka_run_group_tests_name("libmaptbl build", tests, NULL, NULL);
}
