/* SPDX-License-Identifier: MIT */
/*
 * test_format.c - the format as FORMAT.md writes it down: CRC32C (hardware and software paths),
 * the worked example of §9 byte for byte, the capacity table of §5, and the opts struct rules
 * (STYLE.md §7).
 *
 * crc32c.c is included to reach its static crc32c_sw()/crc32c_hw(); the copy of maptbl_crc32c()
 * it brings replaces the one in maptbl_static (the archive member is then never pulled in).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../libmaptbl/src/crc32c.c"

#include "testutil.h"

/* ---- CRC32C ---- */

static uint32_t sw_crc(uint32_t crc, const void *p, size_t len)
{
	return ~crc32c_sw(~crc, p, len);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_HW_PATH 1
static uint32_t hw_crc(uint32_t crc, const void *p, size_t len)
{
	return ~crc32c_hw(~crc, p, len);
}
#else
#define HAVE_HW_PATH 0
#endif

static int hw_available(void)
{
#if HAVE_HW_PATH
	return have_sse42();
#else
	return 0;
#endif
}

/* Every path computes @want for (crc, p, len). */
static void check_all_paths(uint32_t crc, const uint8_t *p, size_t len, uint32_t want)
{
	uint32_t got;

	got = maptbl_crc32c(crc, p, len);
	if (got != want)
		fail_msg("maptbl_crc32c(0x%08x, len %zu, align %u) = 0x%08x, want 0x%08x", crc, len,
			 (unsigned)((uintptr_t)p & 63), got, want);
	got = sw_crc(crc, p, len);
	if (got != want)
		fail_msg("crc32c_sw(0x%08x, len %zu, align %u) = 0x%08x, want 0x%08x", crc, len,
			 (unsigned)((uintptr_t)p & 63), got, want);
#if HAVE_HW_PATH
	if (hw_available()) {
		got = hw_crc(crc, p, len);
		if (got != want)
			fail_msg("crc32c_hw(0x%08x, len %zu, align %u) = 0x%08x, want 0x%08x", crc,
				 len, (unsigned)((uintptr_t)p & 63), got, want);
	}
#endif
}

static void test_crc32c_check_value(void **state)
{
	(void)state;
	assert_int_equal(ref_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(maptbl_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(sw_crc(0, "123456789", 9), 0xE3069283u);
#if HAVE_HW_PATH
	if (hw_available())
		assert_int_equal(hw_crc(0, "123456789", 9), 0xE3069283u);
	else
		print_message("note: no SSE4.2: the hardware path is not exercised\n");
#endif
	/* Continuing a CRC gives the CRC of the concatenation. */
	assert_int_equal(maptbl_crc32c(maptbl_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	assert_int_equal(sw_crc(sw_crc(0, "12345", 5), "6789", 4), 0xE3069283u);
	/* Empty input leaves the CRC as it was. */
	assert_int_equal(maptbl_crc32c(0, "", 0), 0);
	assert_int_equal(maptbl_crc32c(0xDEADBEEFu, "", 0), 0xDEADBEEFu);
}

/* RFC 3720 (iSCSI) appendix B.4 test vectors. */
static void test_crc32c_rfc3720(void **state)
{
	uint8_t buf[32];
	int i;

	(void)state;
	memset(buf, 0, sizeof(buf));
	check_all_paths(0, buf, 32, 0x8A9136AAu);
	memset(buf, 0xff, sizeof(buf));
	check_all_paths(0, buf, 32, 0x62A8AB43u);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	check_all_paths(0, buf, 32, 0x46DD794Eu);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	check_all_paths(0, buf, 32, 0x113FDB5Cu);
}

/* Every alignment 0..63 and every length 0..64, against the byte-wise reference. */
static void test_crc32c_alignments(void **state)
{
	static _Alignas(64) uint8_t buf[256];
	struct rng r;
	unsigned a, len, round;

	(void)state;
	rng_seed(&r, test_seed(0xC0FFEE));
	for (round = 0; round < 4; round++) {
		uint32_t seed_crc = round & 1 ? (uint32_t)rng_next(&r) : 0;

		for (a = 0; a < sizeof(buf); a++)
			buf[a] = (uint8_t)rng_next(&r);
		for (a = 0; a < 64; a++)
			for (len = 0; len <= 64; len++)
				check_all_paths(seed_crc, buf + a, len,
						ref_crc32c(seed_crc, buf + a, len));
	}
}

/* Random buffers of random length, split at random points. */
static void test_crc32c_random(void **state)
{
	size_t max = 1 << 17, len, i, cut;
	uint8_t *buf = malloc(max + 64);
	struct rng r;
	unsigned round;

	(void)state;
	assert_non_null(buf);
	rng_seed(&r, test_seed(0xC4C));
	for (i = 0; i < max + 64; i++)
		buf[i] = (uint8_t)rng_next(&r);
	for (round = 0; round < 200; round++) {
		const uint8_t *p = buf + rng_below(&r, 64);
		uint32_t want;

		len = round < 100 ? rng_below(&r, 4096) : rng_below(&r, max);
		want = ref_crc32c(0, p, len);
		check_all_paths(0, p, len, want);
		cut = rng_below(&r, len + 1);
		assert_int_equal(maptbl_crc32c(maptbl_crc32c(0, p, cut), p + cut, len - cut), want);
		assert_int_equal(sw_crc(sw_crc(0, p, cut), p + cut, len - cut), want);
	}
	/* A one-bit change anywhere changes the CRC. */
	for (round = 0; round < 64; round++) {
		uint32_t before = maptbl_crc32c(0, buf, 1000);
		size_t bit = rng_below(&r, 8000);

		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(maptbl_crc32c(0, buf, 1000), before);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(buf);
}

/* ---- FORMAT.md §9: the worked example ---- */

struct patch {
	uint32_t off;
	uint8_t len;
	uint8_t b[16];
};

/* The non-zero rows of the two hex dumps in FORMAT.md §9, transcribed. */
static const struct patch worked_bytes[] = {
	{ 0x000, 16, { 0x89, 0x4d, 0x41, 0x50, 0x54, 0x42, 0x4c, 0x0a,
		       0x01, 0x00, 0x80, 0x00, 0xae, 0x5b, 0x55, 0x07 } },
	{ 0x010, 16, { 0x01 } },
	{ 0x030, 16, { 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
		       0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x040, 16, { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		       0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ 0x100, 16, { 0x4e, 0x54, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00,
		       0x70, 0x3f, 0xad, 0xf1, 0x01, 0x00, 0x00, 0x00 } },
	{ 0x120, 12, { 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00 } },
	{ 0x12c, 12, { 0x10, 0x00, 0x00, 0x00, 0x03, 0x80, 0x00, 0x00, 0xd0, 0x07, 0x00, 0x00 } },
	{ 0x138, 12, { 0x28, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xf4, 0x01, 0x00, 0x00 } },
};

static const struct maptbl_extent worked_ext[] = {
	{ .lblk = 0, .pblk = 1000, .len = 8 },
	{ .lblk = 16, .pblk = 2000, .len = 4, .flags = MAPTBL_EXTENT_UNWRITTEN },
	{ .lblk = 40, .pblk = 500, .len = 2 },
};

static struct maptbl_table *build_worked(void)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;

	assert_int_equal(maptbl_build_opts_init(&o, sizeof(o)), 0);
	o.block_size = 4096;
	o.node_size = 256;
	o.virtual_blocks = 64;
	assert_int_equal(maptbl_table_build(worked_ext, 3, &o, &t), 0);
	assert_non_null(t);
	return t;
}

static void test_worked_example_bytes(void **state)
{
	uint8_t want[512];
	struct maptbl_table *t = build_worked();
	const uint8_t *got;
	size_t i;

	(void)state;
	memset(want, 0, sizeof(want));
	for (i = 0; i < sizeof(worked_bytes) / sizeof(worked_bytes[0]); i++)
		memcpy(want + worked_bytes[i].off, worked_bytes[i].b, worked_bytes[i].len);

	assert_int_equal(maptbl_table_len(t), 512);
	got = maptbl_table_data(t);
	for (i = 0; i < 512; i++)
		if (got[i] != want[i])
			fail_msg("byte 0x%03zx: built 0x%02x, FORMAT.md §9 says 0x%02x", i, got[i],
				 want[i]);
	/* The two checksums §9 names, and that they are what §7 defines. */
	assert_int_equal(get_le32(got + 12), 0x07555BAEu);
	assert_int_equal(get_le32(got + 256 + 8), 0xF1AD3F70u);
	assert_int_equal(tw_header_crc(want, 128), 0x07555BAEu);
	assert_int_equal(tw_node_crc(want + 256, 32 + 3 * 12), 0xF1AD3F70u);

	assert_int_equal(maptbl_table_block_size(t), 4096);
	assert_int_equal(maptbl_table_node_size(t), 256);
	assert_int_equal(maptbl_table_virtual_blocks(t), 64);
	assert_int_equal(maptbl_table_disk_blocks(t), 0);
	assert_int_equal(maptbl_table_generation(t), 0);
	assert_int_equal(maptbl_table_nr_extents(t), 3);
	assert_int_equal(maptbl_table_depth(t), 1);
	assert_int_equal(maptbl_table_features(t, 0), 0);
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
}

static void check_map(const struct maptbl_table *t, uint64_t lblk, uint32_t state, uint64_t pblk,
		      uint64_t len, uint32_t nodes)
{
	struct maptbl_mapping m;

	memset(&m, 0xee, sizeof(m));
	assert_int_equal(maptbl_table_lookup(t, lblk, &m), 0);
	assert_int_equal(m.lblk, lblk);
	assert_int_equal(m.state, state);
	assert_int_equal(m.pblk, pblk);
	assert_int_equal(m.len, len);
	assert_int_equal(m.nodes, nodes);
}

static void test_worked_example_lookups(void **state)
{
	struct maptbl_table *t = build_worked(), *t2 = NULL;
	struct maptbl_mapping m;
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	uint8_t scratch[256];

	(void)state;
	check_map(t, 3, MAPTBL_MAP_MAPPED, 1003, 5, 1);
	check_map(t, 10, MAPTBL_MAP_HOLE, 0, 6, 1);
	check_map(t, 17, MAPTBL_MAP_UNWRITTEN, 2001, 3, 1);
	check_map(t, 50, MAPTBL_MAP_HOLE, 0, 14, 1);
	assert_int_equal(maptbl_table_lookup(t, 64, &m), -ERANGE);

	/* The same answers from the table re-opened from its bytes and from the walker. */
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), 512, NULL, &t2), 0);
	check_map(t2, 3, MAPTBL_MAP_MAPPED, 1003, 5, 1);
	check_map(t2, 10, MAPTBL_MAP_HOLE, 0, 6, 1);
	check_map(t2, 17, MAPTBL_MAP_UNWRITTEN, 2001, 3, 1);
	check_map(t2, 50, MAPTBL_MAP_HOLE, 0, 14, 1);
	membuf_init(&mb, maptbl_table_data(t), 512);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, 3, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(r.pblk, 1003);
	assert_int_equal(r.len, 5);
	assert_int_equal(r.nodes, 1);
	assert_int_equal(maptbl_walk_lookup(&w, 17, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_UNWRITTEN);
	assert_int_equal(r.pblk, 2001);
	assert_int_equal(r.len, 3);
	assert_int_equal(maptbl_walk_lookup(&w, 50, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_HOLE);
	assert_int_equal(r.len, 14);
	assert_int_equal(maptbl_walk_lookup(&w, 64, &r), MAPTBL_WALK_OUT_OF_RANGE);
	assert_int_equal(mb.oob, 0);
	maptbl_table_free(t2);
	maptbl_table_free(t);
}

/* §9, last paragraph: 1,000 extents at 4096-byte nodes. */
static void test_worked_example_two_levels(void **state)
{
	struct maptbl_extent *e = calloc(1000, sizeof(*e));
	struct maptbl_table *t = NULL;
	struct maptbl_stats st;
	const uint8_t *d;
	uint64_t i;

	(void)state;
	assert_non_null(e);
	for (i = 0; i < 1000; i++) {
		e[i].lblk = i * 10;
		e[i].pblk = 5000 + i * 4;
		e[i].len = 3;
	}
	assert_int_equal(maptbl_table_build(e, 1000, NULL, &t), 0);
	assert_int_equal(maptbl_table_len(t), 5 * 4096);
	d = maptbl_table_data(t);
	assert_int_equal(get_le32(d + 16), 1);		/* root in node 1 */
	assert_int_equal(d[4096 + 2], MAPTBL_NODE_INDEX);
	assert_int_equal(get_le16(d + 4096 + 4), 3);
	assert_int_equal(get_le16(d + 2 * 4096 + 4), 338);
	assert_int_equal(get_le16(d + 3 * 4096 + 4), 338);
	assert_int_equal(get_le16(d + 4 * 4096 + 4), 324);
	for (i = 0; i < 3; i++) {
		const uint8_t *x = d + 4096 + 32 + i * 16;
		uint64_t first = get_le32(x) | (uint64_t)get_le16(x + 4) << 32;
		uint64_t nb = get_le32(x + 8) | (uint64_t)get_le16(x + 6) << 32;
		uint64_t f = i * 338, l = i == 2 ? 999 : i * 338 + 337;

		assert_int_equal(get_le32(x + 12), 2 + i);
		assert_int_equal(first, f * 10);
		assert_int_equal(first + nb, l * 10 + 3);
	}
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	assert_int_equal(st.depth, 2);
	assert_int_equal(st.nr_nodes, 4);
	check_map(t, 5000, MAPTBL_MAP_MAPPED, 5000 + 500 * 4, 3, 2);
	maptbl_table_free(t);
	free(e);
}

/* ---- FORMAT.md §5: capacities ---- */

static void test_capacity_table(void **state)
{
	/* node_size, index, compact, wide: the table in FORMAT.md §5. */
	static const uint32_t cap[][4] = {
		{ 256, 14, 18, 9 },	   { 512, 30, 40, 20 },	      { 1024, 62, 82, 41 },
		{ 2048, 126, 168, 84 },	   { 4096, 254, 338, 169 },   { 8192, 510, 680, 340 },
		{ 16384, 1022, 1362, 681 }, { 32768, 2046, 2728, 1364 }, { 65536, 4094, 5458, 2729 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cap) / sizeof(cap[0]); i++) {
		assert_int_equal(maptbl_node_capacity(cap[i][0], MAPTBL_NODE_INDEX), cap[i][1]);
		assert_int_equal(maptbl_node_capacity(cap[i][0], MAPTBL_NODE_LEAF_COMPACT), cap[i][2]);
		assert_int_equal(maptbl_node_capacity(cap[i][0], MAPTBL_NODE_LEAF_WIDE), cap[i][3]);
		assert_int_equal(maptbl_node_capacity(cap[i][0], 0), 0);
		assert_int_equal(maptbl_node_capacity(cap[i][0], 4), 0);
	}
	/* The 16-bit nr_entries bound: min(65535, ...). */
	assert_int_equal(maptbl_node_capacity(1u << 20, MAPTBL_NODE_LEAF_COMPACT), 65535);
	assert_int_equal(maptbl_node_capacity(16, MAPTBL_NODE_INDEX), 0);
	assert_int_equal(maptbl_entry_size(MAPTBL_NODE_INDEX), 16);
	assert_int_equal(maptbl_entry_size(MAPTBL_NODE_LEAF_COMPACT), 12);
	assert_int_equal(maptbl_entry_size(MAPTBL_NODE_LEAF_WIDE), 24);
	assert_int_equal(maptbl_entry_size(0), 0);
}

/* The endian helpers are little-endian on any host. */
static void test_le_helpers(void **state)
{
	uint8_t b[8] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
	maptbl_le64_t v64;
	maptbl_le32_t v32;
	maptbl_le16_t v16;

	(void)state;
	memcpy(&v64, b, 8);
	memcpy(&v32, b, 4);
	memcpy(&v16, b, 2);
	assert_int_equal(maptbl_le64_to_cpu(v64), UINT64_C(0x0807060504030201));
	assert_int_equal(maptbl_le32_to_cpu(v32), 0x04030201u);
	assert_int_equal(maptbl_le16_to_cpu(v16), 0x0201u);
	v64 = maptbl_cpu_to_le64(UINT64_C(0x0807060504030201));
	assert_memory_equal(v64.b, b, 8);
	v32 = maptbl_cpu_to_le32(0x04030201u);
	assert_memory_equal(v32.b, b, 4);
	v16 = maptbl_cpu_to_le16(0x0201u);
	assert_memory_equal(v16.b, b, 2);
	assert_string_equal(maptbl_version(), MAPTBL_VERSION_STRING);
}

/* ---- Opts structs (STYLE.md §7) ---- */

static const struct maptbl_extent one_ext[] = { { .lblk = 0, .pblk = 7, .len = 1 } };

static void test_opts_init(void **state)
{
	struct maptbl_build_opts b;
	struct maptbl_open_opts o;

	(void)state;
	assert_int_equal(maptbl_build_opts_init(NULL, sizeof(b)), -EINVAL);
	assert_int_equal(maptbl_open_opts_init(NULL, sizeof(o)), -EINVAL);
	assert_int_equal(maptbl_build_opts_init(&b, 0), -EINVAL);
	assert_int_equal(maptbl_build_opts_init(&b, sizeof(size_t) - 1), -EINVAL);
	assert_int_equal(maptbl_open_opts_init(&o, 0), -EINVAL);
	assert_int_equal(maptbl_open_opts_init(&o, sizeof(size_t) - 1), -EINVAL);

	memset(&b, 0xaa, sizeof(b));
	assert_int_equal(maptbl_build_opts_init(&b, sizeof(b)), 0);
	assert_int_equal(b.sz, sizeof(b));
	assert_int_equal(b.block_size, 0);
	assert_int_equal(b.node_size, 0);
	assert_int_equal(b.virtual_blocks, 0);
	assert_int_equal(b.disk_blocks, 0);
	assert_int_equal(b.fill_pct, 0);
	assert_int_equal(b.generation, 0);
	assert_null(b.diag);
	memset(&o, 0xaa, sizeof(o));
	assert_int_equal(maptbl_open_opts_init(&o, sizeof(o)), 0);
	assert_int_equal(o.sz, sizeof(o));
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.reserved, 0);
	assert_null(o.diag);
	assert_int_equal(offsetof(struct maptbl_build_opts, sz), 0);
	assert_int_equal(offsetof(struct maptbl_open_opts, sz), 0);
}

/* An sz smaller than the sz field itself is refused by build, check and open. */
static void test_opts_sz_too_small(void **state)
{
	struct maptbl_build_opts b;
	struct maptbl_open_opts o;
	struct maptbl_table *t = NULL, *t2 = NULL;
	size_t bad[] = { 0, 1, sizeof(size_t) - 1 };
	size_t i;

	(void)state;
	assert_int_equal(maptbl_table_build(one_ext, 1, NULL, &t), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maptbl_table *x = (struct maptbl_table *)&b;

		maptbl_build_opts_init(&b, sizeof(b));
		b.sz = bad[i];
		assert_int_equal(maptbl_table_build(one_ext, 1, &b, &x), -EINVAL);
		assert_null(x);
		assert_int_equal(maptbl_extents_check(one_ext, 1, &b), -EINVAL);
		maptbl_open_opts_init(&o, sizeof(o));
		o.sz = bad[i];
		x = (struct maptbl_table *)&o;
		assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &o, &x),
				 -EINVAL);
		assert_null(x);
	}
	/* Sanity: the same calls succeed with the right sz. */
	maptbl_build_opts_init(&b, sizeof(b));
	assert_int_equal(maptbl_extents_check(one_ext, 1, &b), 0);
	maptbl_open_opts_init(&o, sizeof(o));
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &o, &t2), 0);
	maptbl_table_free(t2);
	maptbl_table_free(t);
}

/* A newer caller's bigger struct: zero bytes past the known fields are fine, others are not. */
struct big_build_opts {
	struct maptbl_build_opts o;
	uint64_t newer_field;
	uint32_t newer_field2;
};

struct big_open_opts {
	struct maptbl_open_opts o;
	uint8_t newer[13];
};

static void test_opts_bigger_struct(void **state)
{
	struct big_build_opts bb;
	struct big_open_opts bo;
	struct maptbl_table *t = NULL, *t2 = NULL;
	size_t k;

	(void)state;
	memset(&bb, 0, sizeof(bb));
	assert_int_equal(maptbl_build_opts_init(&bb.o, sizeof(bb)), 0);
	bb.o.node_size = 256;
	assert_int_equal(maptbl_extents_check(one_ext, 1, &bb.o), 0);
	assert_int_equal(maptbl_table_build(one_ext, 1, &bb.o, &t), 0);
	assert_int_equal(maptbl_table_node_size(t), 256);
	bb.newer_field2 = 1;
	assert_int_equal(maptbl_extents_check(one_ext, 1, &bb.o), -EINVAL);
	assert_int_equal(maptbl_table_build(one_ext, 1, &bb.o, &t2), -EINVAL);
	assert_null(t2);
	bb.newer_field2 = 0;
	bb.newer_field = UINT64_C(1) << 63;
	assert_int_equal(maptbl_table_build(one_ext, 1, &bb.o, &t2), -EINVAL);

	for (k = 0; k < sizeof(bo.newer); k++) {
		memset(&bo, 0, sizeof(bo));
		assert_int_equal(maptbl_open_opts_init(&bo.o, sizeof(bo)), 0);
		assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &bo.o,
						   &t2), 0);
		maptbl_table_free(t2);
		t2 = NULL;
		bo.newer[k] = 0x10;
		assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &bo.o,
						   &t2), -EINVAL);
		assert_null(t2);
	}
	maptbl_table_free(t);
}

/*
 * This used to leave the bytes past the fields the library knows untouched: a newer caller's
 * maptbl_build_opts_init(&big, sizeof(big)) kept its new fields' stack garbage, and the next
 * maptbl_table_build() failed with -EINVAL because they were not zero.
 */
static void test_opts_init_zeroes_whole_struct(void **state)
{
	struct big_build_opts bb;
	struct big_open_opts bo;
	struct maptbl_table *t = NULL, *t2 = NULL;

	(void)state;
	memset(&bb, 0xaa, sizeof(bb));
	assert_int_equal(maptbl_build_opts_init(&bb.o, sizeof(bb)), 0);
	assert_int_equal(bb.newer_field, 0);
	assert_int_equal(bb.newer_field2, 0);
	assert_int_equal(maptbl_table_build(one_ext, 1, &bb.o, &t), 0);
	memset(&bo, 0xaa, sizeof(bo));
	assert_int_equal(maptbl_open_opts_init(&bo.o, sizeof(bo)), 0);
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &bo.o, &t2), 0);
	maptbl_table_free(t2);
	maptbl_table_free(t);
}

/*
 * An older (smaller) struct: the fields past its sz are not the caller's and read as their
 * defaults. This used to read them from whatever followed the caller's struct in memory (an
 * out-of-bounds read: here the 0xff bytes after it gave "virtual size exceeds 2^48" and
 * -EINVAL; AddressSanitizer reports it as a stack-buffer-overflow).
 */
static void test_opts_smaller_struct(void **state)
{
	struct {
		struct maptbl_build_opts o;
	} *bb;
	uint8_t *raw = malloc(sizeof(struct maptbl_build_opts) + 64);
	struct maptbl_open_opts *oo;
	struct maptbl_table *t = NULL, *t2 = NULL;
	size_t sz = offsetof(struct maptbl_build_opts, virtual_blocks);

	(void)state;
	assert_non_null(raw);
	/* Caller's struct: sz, block_size, node_size; everything after it is someone else's. */
	memset(raw, 0xff, sizeof(struct maptbl_build_opts) + 64);
	bb = (void *)raw;
	assert_int_equal(maptbl_build_opts_init(&bb->o, sz), 0);
	assert_int_equal(bb->o.sz, sz);
	assert_int_equal(raw[sz], 0xff); /* init stays inside sz */
	bb->o.node_size = 512;
	assert_int_equal(maptbl_extents_check(one_ext, 1, &bb->o), 0);
	assert_int_equal(maptbl_table_build(one_ext, 1, &bb->o, &t), 0);
	assert_int_equal(maptbl_table_node_size(t), 512);
	assert_int_equal(maptbl_table_virtual_blocks(t), 1);

	/* The open opts with only sz: flags, reserved and diag read as 0. */
	memset(raw, 0xff, sizeof(struct maptbl_build_opts) + 64);
	oo = (void *)raw;
	assert_int_equal(maptbl_open_opts_init(oo, sizeof(size_t)), 0);
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), oo, &t2), 0);
	maptbl_table_free(t2);
	maptbl_table_free(t);
	free(raw);
}

static void test_open_opts_flags(void **state)
{
	struct maptbl_open_opts o;
	struct maptbl_table *t = NULL, *t2 = NULL;

	(void)state;
	assert_int_equal(maptbl_table_build(one_ext, 1, NULL, &t), 0);
	maptbl_open_opts_init(&o, sizeof(o));
	o.flags = 0x2; /* unknown (bit 0 is MAPTBL_OPEN_INPLACE since 0.2: tests/unit/hw/test_serve.c) */
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &o, &t2), -EINVAL);
	o.flags = 0;
	o.reserved = 1;
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &o, &t2), -EINVAL);
	assert_null(t2);
	maptbl_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_value),
		cmocka_unit_test(test_crc32c_rfc3720),
		cmocka_unit_test(test_crc32c_alignments),
		cmocka_unit_test(test_crc32c_random),
		cmocka_unit_test(test_worked_example_bytes),
		cmocka_unit_test(test_worked_example_lookups),
		cmocka_unit_test(test_worked_example_two_levels),
		cmocka_unit_test(test_capacity_table),
		cmocka_unit_test(test_le_helpers),
		cmocka_unit_test(test_opts_init),
		cmocka_unit_test(test_opts_sz_too_small),
		cmocka_unit_test(test_opts_bigger_struct),
		cmocka_unit_test(test_opts_init_zeroes_whole_struct),
		cmocka_unit_test(test_opts_smaller_struct),
		cmocka_unit_test(test_open_opts_flags),
	};

	return cmocka_run_group_tests_name("libmaptbl format", tests, NULL, NULL);
}
