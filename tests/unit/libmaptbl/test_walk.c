/* SPDX-License-Identifier: MIT */
/*
 * test_walk.c - the reference walker (maptbl/walk.h): argument checks, read errors, bad headers,
 * bad nodes on the path, checksums, range, the live word and republishing. Every read goes
 * through struct membuf, which counts reads and any request outside the table.
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

#include "testutil.h"

static uint8_t scratch[65536];

struct tbl {
	uint8_t *buf;
	size_t len;
	uint32_t ns;
};


static struct tbl build_from(const struct maptbl_extent *e, size_t n, uint32_t ns, uint64_t disk)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct tbl tb;

	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = ns;
	o.disk_blocks = disk;
	assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
	tb.len = maptbl_table_len(t);
	tb.ns = ns;
	tb.buf = malloc(tb.len);
	assert_non_null(tb.buf);
	memcpy(tb.buf, maptbl_table_data(t), tb.len);
	maptbl_table_free(t);
	return tb;
}

/* 300 extents at 256-byte nodes: root 1 (level 2), index nodes 2-3, leaves 4..20. */
static struct maptbl_extent ext300[300];

static struct tbl three_level(uint64_t disk)
{
	struct tbl tb;

	tu_gen_ext(ext300, 300);
	tb = build_from(ext300, 300, 256, disk);
	assert_int_equal(tb.len, 21 * 256);
	return tb;
}

/* Extent 100 is in leaf 5 (node 9), under index node 2: the path is 1, 2, 9. */
#define L100 (ext300[100].lblk)
#define PATH_LEAF 9u

static struct tbl wide_table(void)
{
	static const struct maptbl_extent e[] = {
		{ .lblk = 0, .pblk = 1000, .len = 40000 },
		{ .lblk = 50000, .pblk = 100000, .len = 40000, .flags = MAPTBL_EXTENT_UNWRITTEN },
	};
	struct tbl tb = build_from(e, 2, 256, 0);

	assert_int_equal(tb.buf[256 + 2], MAPTBL_NODE_LEAF_WIDE);
	return tb;
}

static uint64_t E(const struct tbl *tb, uint32_t n, uint32_t i)
{
	return tw_entry_off(tb->ns, n, tb->buf[(size_t)n * tb->ns + 2], i);
}

static uint8_t *N(const struct tbl *tb, uint32_t n)
{
	return tb->buf + (size_t)n * tb->ns;
}

/* Initialises a walker over @buf and looks up @lblk; never a read outside the table. */
static enum maptbl_walk_status walk(const uint8_t *buf, size_t len, uint32_t flags, uint64_t lblk,
				    struct maptbl_walk_result *r)
{
	struct maptbl_walker w;
	struct membuf mb;
	enum maptbl_walk_status st;

	membuf_init(&mb, buf, len);
	st = maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch), flags);
	if (st == MAPTBL_WALK_OK)
		st = maptbl_walk_lookup(&w, lblk, r);
	assert_int_equal(mb.oob, 0);
	return st;
}

/* Both with and without CHECK_CRC. */
static void walk_both(const struct tbl *tb, uint64_t lblk, enum maptbl_walk_status want)
{
	struct maptbl_walk_result r;
	enum maptbl_walk_status st;

	st = walk(tb->buf, tb->len, 0, lblk, &r);
	if (st != want)
		fail_msg("lookup %llu without CRC: status %d (%s), want %d", (unsigned long long)lblk,
			 st, maptbl_walk_strerror(st), want);
	st = walk(tb->buf, tb->len, MAPTBL_WALK_CHECK_CRC, lblk, &r);
	if (st != want)
		fail_msg("lookup %llu with CRC: status %d (%s), want %d", (unsigned long long)lblk,
			 st, maptbl_walk_strerror(st), want);
}

static void reseal(struct tbl *tb, uint32_t n)
{
	tw_seal_node(tb->buf, tb->ns, n);
}

static void reseal_header(struct tbl *tb)
{
	tw_seal_header(tb->buf, tb->len);
}

/* ---- arguments ---- */

static void test_bad_args(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;

	(void)state;
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(NULL, membuf_read, &mb, scratch, 4096, 0),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, NULL, &mb, scratch, 4096, 0), MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, NULL, 4096, 0), MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 127, 0),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 4096, 0x2),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 4096, 0x80000000u),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(mb.reads, 0);
	/* Room for the header but not for a 256-byte node. */
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 128, 0),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 255, 0),
			 MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, 256,
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.pblk, ext300[100].pblk);

	assert_int_equal(maptbl_walk_lookup(NULL, 0, &r), MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_lookup(&w, 0, NULL), MAPTBL_WALK_BAD_ARG);
	memset(&w, 0, sizeof(w)); /* never initialised */
	assert_int_equal(maptbl_walk_lookup(&w, 0, &r), MAPTBL_WALK_BAD_ARG);
	assert_int_equal(mb.oob, 0);
	free(tb.buf);
}

/*
 * This used to leave a walker whose maptbl_walk_init() failed half set up: init had already
 * stored the header's node_size, so a lookup on it went ahead. With a scratch buffer smaller than
 * the table's nodes (init: BAD_ARG) that lookup read a whole node into the scratch, past its end;
 * after a bad header checksum (init: BAD_HEADER) it walked the table as if nothing were wrong.
 */
static void test_failed_init_unusable(void **state)
{
	const struct maptbl_extent e[] = { { .lblk = 0, .pblk = 9, .len = 4 } };
	struct tbl tb = build_from(e, 1, 4096, 0);
	uint8_t *small = malloc(256 + 64);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	int i;

	(void)state;
	assert_non_null(small);
	memset(small + 256, 0xC5, 64);
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, small, 256, 0), MAPTBL_WALK_BAD_ARG);
	assert_int_equal(maptbl_walk_lookup(&w, 0, &r), MAPTBL_WALK_BAD_ARG);
	for (i = 0; i < 64; i++)
		assert_int_equal(small[256 + i], 0xC5);
	free(small);

	/* Header checksum wrong: init refuses, and so does every lookup after it. */
	tb.buf[TW_COMPAT + 7] ^= 0x80;
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_BAD_HEADER);
	assert_int_equal(maptbl_walk_lookup(&w, 0, &r), MAPTBL_WALK_BAD_ARG);
	/* A bad field: the same. */
	tb.buf[TW_COMPAT + 7] ^= 0x80;
	put_le32(tb.buf + TW_BLOCK_SIZE, 1000);
	tw_seal_header(tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch), 0),
			 MAPTBL_WALK_BAD_HEADER);
	assert_int_equal(maptbl_walk_lookup(&w, 0, &r), MAPTBL_WALK_BAD_ARG);
	/* Fixed, the same walker storage works again. */
	put_le32(tb.buf + TW_BLOCK_SIZE, 4096);
	tw_seal_header(tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, 2, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.pblk, 11);
	free(tb.buf);
}

/* ---- reads ---- */

static void test_read_error(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	int k;

	(void)state;
	membuf_init(&mb, tb.buf, tb.len);
	mb.fail_at = 0; /* the header */
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch), 0),
			 MAPTBL_WALK_READ_ERROR);
	/* A lookup is: the live word, then one node per level (3 here). */
	for (k = 0; k < 4; k++) {
		membuf_init(&mb, tb.buf, tb.len);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
						  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
		assert_int_equal(mb.reads, 1);
		mb.fail_at = 1 + k;
		assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_READ_ERROR);
		assert_int_equal(mb.reads, 2 + k);
		/* The next lookup works again. */
		assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_OK);
		assert_int_equal(r.nodes, 3);
	}
	/* With CHECK_CRC and header_len > 128 the header is read a second time, in full. */
	put_le16(tb.buf + 10, 136);
	reseal_header(&tb);
	membuf_init(&mb, tb.buf, tb.len);
	mb.fail_at = 1;
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_READ_ERROR);
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	free(tb.buf);
}

/* One 8-byte read of the live word and one node-sized read per level, nothing else. */
static void test_reads_per_lookup(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	unsigned before;
	size_t i;

	(void)state;
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(w.node_size, 256);
	assert_int_equal(w.block_size, 4096);
	assert_int_equal(w.table_len, tb.len);
	assert_int_equal(w.virtual_blocks, ext300[299].lblk + ext300[299].len);
	assert_int_equal(w.root, 1);
	for (i = 0; i < 300; i += 7) {
		before = mb.reads;
		mb.node_reads = 0;
		assert_int_equal(maptbl_walk_lookup(&w, ext300[i].lblk, &r), MAPTBL_WALK_OK);
		assert_int_equal(r.state, i % 5 == 3 ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED);
		assert_int_equal(r.pblk, ext300[i].pblk);
		assert_int_equal(r.len, ext300[i].len);
		assert_int_equal(r.nodes, 3);
		assert_int_equal(mb.reads - before, 1 + 3);
		assert_int_equal(mb.node_reads, 3);
	}
	assert_int_equal(mb.oob, 0);
	free(tb.buf);
}

/* ---- header ---- */

static void test_bad_header(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walk_result r;
	uint8_t orig[128];
	struct {
		unsigned off, size;
		uint64_t val;
		enum maptbl_walk_status want;
	} c[] = {
		{ 0, 1, 0x88, MAPTBL_WALK_BAD_HEADER },	      /* magic */
		{ 7, 1, 0x0b, MAPTBL_WALK_BAD_HEADER },	      /* magic */
		{ 8, 2, 2, MAPTBL_WALK_UNSUPPORTED },	      /* version */
		{ 8, 2, 0, MAPTBL_WALK_UNSUPPORTED },	      /* version */
		{ 24, 8, 2, MAPTBL_WALK_UNSUPPORTED },	      /* unknown incompat */
		{ 24, 8, UINT64_C(1) << 63, MAPTBL_WALK_UNSUPPORTED },
		{ 10, 2, 120, MAPTBL_WALK_BAD_HEADER },	      /* header_len */
		{ 10, 2, 132, MAPTBL_WALK_BAD_HEADER },
		{ 10, 2, 264, MAPTBL_WALK_BAD_HEADER },	      /* > node_size */
		{ 48, 4, 256, MAPTBL_WALK_BAD_HEADER },	      /* block_size */
		{ 48, 4, 1000, MAPTBL_WALK_BAD_HEADER },
		{ 48, 4, 131072, MAPTBL_WALK_BAD_HEADER },
		{ 52, 4, 128, MAPTBL_WALK_BAD_HEADER },	      /* node_size */
		{ 52, 4, 300, MAPTBL_WALK_BAD_HEADER },
		{ 52, 4, 131072, MAPTBL_WALK_BAD_HEADER },
		{ 56, 8, MAX_BLK + 1, MAPTBL_WALK_BAD_HEADER }, /* virtual_blocks */
		{ 64, 8, MAX_BLK + 1, MAPTBL_WALK_BAD_HEADER }, /* disk_blocks */
		{ 72, 8, 0, MAPTBL_WALK_BAD_HEADER },	      /* table_len */
		{ 72, 8, 128, MAPTBL_WALK_BAD_HEADER },
		{ 72, 8, 21 * 256 + 8, MAPTBL_WALK_BAD_HEADER },
		{ 72, 8, ((UINT64_C(1) << 32) + 1) * 256, MAPTBL_WALK_BAD_HEADER },
		{ 80, 1, 1, MAPTBL_WALK_BAD_HEADER },	      /* reserved */
		{ 127, 1, 0x80, MAPTBL_WALK_BAD_HEADER },
	};
	size_t i;

	(void)state;
	memcpy(orig, tb.buf, 128);
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memcpy(tb.buf, orig, 128);
		if (c[i].size == 1)
			tb.buf[c[i].off] = (uint8_t)c[i].val;
		else if (c[i].size == 2)
			put_le16(tb.buf + c[i].off, (uint16_t)c[i].val);
		else if (c[i].size == 4)
			put_le32(tb.buf + c[i].off, (uint32_t)c[i].val);
		else
			put_le64(tb.buf + c[i].off, c[i].val);
		reseal_header(&tb);
		if (walk(tb.buf, tb.len, 0, 0, &r) != c[i].want ||
		    walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, 0, &r) != c[i].want)
			fail_msg("case %zu (offset %u = 0x%llx): want status %d", i, c[i].off,
				 (unsigned long long)c[i].val, c[i].want);
	}
	/* Exactly 2^32 nodes is allowed (the walker reads lazily: no buffer needed). */
	memcpy(tb.buf, orig, 128);
	put_le64(tb.buf + 72, (UINT64_C(1) << 32) * 256);
	reseal_header(&tb);
	{
		struct maptbl_walker w;
		struct membuf mb;

		membuf_init(&mb, tb.buf, UINT64_C(1) << 40);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
						  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	}
	free(tb.buf);
}

static void test_header_crc(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walk_result r;

	(void)state;
	tb.buf[TW_COMPAT + 7] ^= 0x40; /* an unknown compat bit: covered by the CRC, else ignored */
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r),
			 MAPTBL_WALK_BAD_HEADER);
	assert_int_equal(walk(tb.buf, tb.len, 0, L100, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.pblk, ext300[100].pblk);
	reseal_header(&tb);
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_OK);
	/* header_len 136: the CRC covers bytes 128..135 too. */
	put_le16(tb.buf + 10, 136);
	reseal_header(&tb);
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_OK);
	tb.buf[131] = 0x01;
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r),
			 MAPTBL_WALK_BAD_HEADER);
	/* The live word is not covered. */
	tb.buf[131] = 0;
	put_le32(tb.buf + TW_GEN, 0x12345678u);
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_OK);
	free(tb.buf);
}

/* ---- nodes on the path ---- */

static void test_bad_node(void **state)
{
	struct tbl tb = three_level(0), orig = three_level(0);
	struct maptbl_walk_result r;
	int k;

	(void)state;
	for (k = 0; k < 19; k++) {
		uint32_t n = k % 3 == 0 ? 1 : k % 3 == 1 ? 2 : PATH_LEAF;
		uint8_t *p = N(&tb, n);

		memcpy(tb.buf, orig.buf, tb.len);
		switch (k) {
		case 0: case 1: case 2:
			p[0] ^= 1; /* magic */
			break;
		case 3: case 4: case 5:
			put_le32(p + 12, n + 1); /* self */
			break;
		case 6: case 7: case 8:
			p[2] = k == 8 ? 0 : 4; /* kind */
			break;
		case 9:
			p[3] = 0; /* index at level 0 */
			break;
		case 10:
			p[3] = 2; /* level 1 index raised to its parent's level */
			break;
		case 11:
			p[3] = 1; /* leaf at level 1 */
			break;
		case 12: case 13: case 14:
			put_le16(p + 4, 0); /* nr_entries */
			break;
		case 15: case 16: case 17:
			put_le16(p + 4, n == PATH_LEAF ? 19 : 15); /* over capacity */
			break;
		case 18:
			p[3] = 16; /* root above the highest level */
			break;
		}
		reseal(&tb, n);
		if (walk(tb.buf, tb.len, 0, L100, &r) != MAPTBL_WALK_BAD_NODE ||
		    walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r) != MAPTBL_WALK_BAD_NODE)
			fail_msg("case %d (node %u): want BAD_NODE", k, n);
		/* Only the path is read: the walk to a block in another subtree still works. */
		if (n == PATH_LEAF || n == 2) {
			assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC,
					      ext300[290].lblk, &r), MAPTBL_WALK_OK);
			assert_int_equal(r.pblk, ext300[290].pblk);
		}
	}
	free(tb.buf);
	free(orig.buf);
}

static void test_bad_entries(void **state)
{
	struct tbl tb = three_level(0), orig = three_level(0);
	uint64_t x;

	(void)state;
	/* A child outside the table: the walker refuses before reading it. */
	x = E(&tb, 2, 5) + 12; /* node 2's entry 5 is leaf 9 */
	assert_int_equal(get_le32(tb.buf + x), PATH_LEAF);
	put_le32(tb.buf + x, 21);
	reseal(&tb, 2);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);
	put_le32(tb.buf + x, 0xFFFFFFFFu);
	reseal(&tb, 2);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);

	/* An index entry with nblocks 0. */
	memcpy(tb.buf, orig.buf, tb.len);
	put_le32(tb.buf + E(&tb, 2, 5) + 8, 0);
	reseal(&tb, 2);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);

	/* A leaf entry outside the range its parent promised (the parent's range is exact). */
	memcpy(tb.buf, orig.buf, tb.len);
	put_le32(tb.buf + E(&tb, PATH_LEAF, 17), get_le32(tb.buf + E(&tb, PATH_LEAF, 17)) + 9);
	reseal(&tb, PATH_LEAF);
	walk_both(&tb, ext300[107].lblk, MAPTBL_WALK_BAD_NODE);

	/* A leaf entry that starts inside the parent's range but runs past its end. */
	memcpy(tb.buf, orig.buf, tb.len);
	assert_int_equal(ext300[107].len, 3);
	put_le16(tb.buf + E(&tb, PATH_LEAF, 17) + 4, 9); /* length 10 */
	reseal(&tb, PATH_LEAF);
	walk_both(&tb, ext300[107].lblk + 1, MAPTBL_WALK_BAD_NODE);
	walk_both(&tb, ext300[106].lblk, MAPTBL_WALK_OK);

	/* A leaf whose first entry starts before the parent's range (base_lblk moved down). */
	memcpy(tb.buf, orig.buf, tb.len);
	assert_int_equal(ext300[90].len, 7);
	put_le64(N(&tb, PATH_LEAF) + 16, ext300[90].lblk - 5);
	reseal(&tb, PATH_LEAF);
	walk_both(&tb, ext300[90].lblk, MAPTBL_WALK_BAD_NODE);

	/* base_lblk at 2^48 makes every compact entry start past the format's limit. */
	memcpy(tb.buf, orig.buf, tb.len);
	put_le64(N(&tb, PATH_LEAF) + 16, MAX_BLK);
	reseal(&tb, PATH_LEAF);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);

	/* A leaf's physical range past 2^48. */
	memcpy(tb.buf, orig.buf, tb.len);
	put_le16(tb.buf + E(&tb, PATH_LEAF, 10) + 6, 0xFFFF);
	put_le32(tb.buf + E(&tb, PATH_LEAF, 10) + 8, 0xFFFFFFFFu);
	reseal(&tb, PATH_LEAF);
	assert_int_equal(ext300[100].len, 3);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);
	free(tb.buf);
	free(orig.buf);

	/* A leaf's physical range past disk_blocks (recorded when built, lowered afterwards). */
	tb = three_level(1u << 20);
	put_le64(tb.buf + TW_DISK, ext300[100].pblk + 2);
	reseal_header(&tb);
	walk_both(&tb, L100, MAPTBL_WALK_BAD_NODE);
	walk_both(&tb, ext300[99].lblk, MAPTBL_WALK_OK);
	free(tb.buf);
}

static void test_wide_leaf_without_feature(void **state)
{
	struct tbl tb = wide_table();
	struct maptbl_walk_result r;

	(void)state;
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, 60000, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_UNWRITTEN);
	assert_int_equal(r.pblk, 110000);
	assert_int_equal(r.len, 30000);
	put_le64(tb.buf + TW_INCOMPAT, 0);
	reseal_header(&tb);
	walk_both(&tb, 60000, MAPTBL_WALK_BAD_NODE);
	/* Wide entry: length 0, flags are not the walker's business beyond bit 0. */
	put_le64(tb.buf + TW_INCOMPAT, MAPTBL_INCOMPAT_WIDE_LEAF);
	reseal_header(&tb);
	put_le32(tb.buf + E(&tb, 1, 1) + 16, 0);
	put_le16(tb.buf + E(&tb, 1, 1) + 20, 0);
	reseal(&tb, 1);
	walk_both(&tb, 60000, MAPTBL_WALK_BAD_NODE);
	free(tb.buf);
}

static void test_bad_crc(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walk_result r;
	uint32_t n[] = { 1, 2, PATH_LEAF };
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		/* Flip one bit of the first entry's last byte (a child number or pblk_lo). */
		uint64_t off = E(&tb, n[i], 0) + (n[i] == PATH_LEAF ? 11 : 15);

		tb.buf[off] ^= 0x80;
		assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r),
				 MAPTBL_WALK_BAD_CRC);
		tb.buf[off] ^= 0x80;
	}
	/* Without CHECK_CRC a flipped pblk bit is read as is. */
	tb.buf[E(&tb, PATH_LEAF, 10) + 8] ^= 0x01;
	assert_int_equal(walk(tb.buf, tb.len, 0, L100, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.pblk, ext300[100].pblk ^ 1);
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_BAD_CRC);
	/* The stored CRC itself. */
	tb.buf[E(&tb, PATH_LEAF, 10) + 8] ^= 0x01;
	tb.buf[(size_t)PATH_LEAF * 256 + 10] ^= 0x01;
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_BAD_CRC);
	assert_int_equal(walk(tb.buf, tb.len, 0, L100, &r), MAPTBL_WALK_OK);
	/* The zero tail is not covered by the CRC (nor checked by the walker). */
	tb.buf[(size_t)PATH_LEAF * 256 + 10] ^= 0x01;
	assert_int_equal(walk(tb.buf, tb.len, MAPTBL_WALK_CHECK_CRC, L100, &r), MAPTBL_WALK_OK);
	free(tb.buf);
}

static void test_out_of_range(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	uint64_t v = ext300[299].lblk + ext300[299].len;

	(void)state;
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch), 0),
			 MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, v, &r), MAPTBL_WALK_OUT_OF_RANGE);
	assert_int_equal(maptbl_walk_lookup(&w, UINT64_MAX, &r), MAPTBL_WALK_OUT_OF_RANGE);
	assert_int_equal(maptbl_walk_lookup(&w, MAX_BLK, &r), MAPTBL_WALK_OUT_OF_RANGE);
	assert_int_equal(mb.reads, 1); /* refused before reading anything */
	assert_int_equal(maptbl_walk_lookup(&w, v - 1, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.len, 1);
	free(tb.buf);
}

static void test_root_outside(void **state)
{
	struct tbl tb = three_level(0);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;

	(void)state;
	membuf_init(&mb, tb.buf, tb.len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	put_le32(tb.buf + TW_ROOT, 21);
	assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_BAD_HEADER);
	put_le32(tb.buf + TW_ROOT, 0xFFFFFFFFu);
	assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_BAD_HEADER);
	/* A root inside the table but not a node (here a leaf's slot: self matches, walk works). */
	put_le32(tb.buf + TW_ROOT, PATH_LEAF);
	assert_int_equal(maptbl_walk_lookup(&w, L100, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.nodes, 1);
	assert_int_equal(mb.oob, 0);
	free(tb.buf);
}

/*
 * Republishing: two trees in one table (slots 1-3), switched by rewriting the live word between
 * lookups with one 8-byte store.
 *   node 1: leaf [0, 10) -> 1000
 *   node 2: index level 1: [0, 10) -> 3, [20, 30) -> 4... no: [20, 30) -> absent
 *   node 3: leaf [0, 10) -> 5000 unwritten
 */
static void test_republish(void **state)
{
	size_t len = 4 * 256;
	uint8_t *b = tw_alloc(256, 4);
	struct maptbl_walker w;
	struct maptbl_walk_result r;
	struct membuf mb;
	uint64_t live;

	(void)state;
	assert_non_null(b);
	tw_header(b, len, 256, 1, 100, 0, 0);
	tw_node(b, 256, 1, MAPTBL_NODE_LEAF_COMPACT, 0, 0);
	tw_compact(b, 256, 1, 0, 10, 1000, false);
	tw_seal_node(b, 256, 1);
	tw_node(b, 256, 2, MAPTBL_NODE_INDEX, 1, 0);
	tw_index(b, 256, 2, 0, 10, 3);
	tw_index(b, 256, 2, 20, 10, 0);
	tw_seal_node(b, 256, 2);
	tw_node(b, 256, 3, MAPTBL_NODE_LEAF_COMPACT, 0, 0);
	tw_compact(b, 256, 3, 0, 10, 5000, true);
	tw_seal_node(b, 256, 3);

	membuf_init(&mb, b, len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, 5, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(r.pblk, 1005);
	assert_int_equal(r.nodes, 1);
	assert_int_equal(w.root, 1);
	assert_int_equal(w.generation, 0);
	assert_int_equal(maptbl_walk_lookup(&w, 25, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_HOLE);
	assert_int_equal(r.len, 75);

	live = 2 | (uint64_t)1 << 32;
	put_le64(b + 16, live);
	assert_int_equal(maptbl_walk_lookup(&w, 5, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_UNWRITTEN);
	assert_int_equal(r.pblk, 5005);
	assert_int_equal(r.len, 5);
	assert_int_equal(r.nodes, 2);
	assert_int_equal(w.root, 2);
	assert_int_equal(w.generation, 1);
	assert_int_equal(maptbl_walk_lookup(&w, 25, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_ABSENT);
	assert_int_equal(r.len, 5);

	/* Unpublish: root 0, everything is a hole. */
	put_le64(b + 16, (uint64_t)2 << 32);
	assert_int_equal(maptbl_walk_lookup(&w, 5, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_HOLE);
	assert_int_equal(r.len, 95);
	assert_int_equal(r.nodes, 0);
	assert_int_equal(w.generation, 2);

	/* And back. The header CRC never changed: the live word is outside it. */
	put_le64(b + 16, 1 | (uint64_t)3 << 32);
	assert_int_equal(maptbl_walk_lookup(&w, 5, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.pblk, 1005);
	assert_int_equal(w.generation, 3);
	assert_int_equal(mb.oob, 0);
	free(b);
}

/* Walker and table agree on every block of small tables at every node size. */
static void test_agrees_small(void **state)
{
	static const uint32_t sizes[] = { 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536 };
	struct maptbl_extent e[400];
	size_t i;

	(void)state;
	tu_gen_ext(e, 400);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct tbl tb = build_from(e, 400, sizes[i], 0);
		struct maptbl_table *t = NULL;
		struct maptbl_walker w;
		struct membuf mb;
		uint64_t l, v;

		assert_int_equal(maptbl_table_open(tb.buf, tb.len, NULL, &t), 0);
		v = maptbl_table_virtual_blocks(t);
		membuf_init(&mb, tb.buf, tb.len);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizes[i],
						  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
		for (l = 0; l < v; l++) {
			struct maptbl_mapping m;
			struct maptbl_walk_result r;

			assert_int_equal(maptbl_table_lookup(t, l, &m), 0);
			assert_int_equal(maptbl_walk_lookup(&w, l, &r), MAPTBL_WALK_OK);
			if (m.state != r.state || m.pblk != r.pblk || m.len != r.len ||
			    m.nodes != r.nodes)
				fail_msg("node %u block %llu: table %u/%llu/%llu/%u walker %u/%llu/%llu/%u",
					 sizes[i], (unsigned long long)l, m.state,
					 (unsigned long long)m.pblk, (unsigned long long)m.len,
					 m.nodes, r.state, (unsigned long long)r.pblk,
					 (unsigned long long)r.len, r.nodes);
		}
		assert_int_equal(mb.oob, 0);
		maptbl_table_free(t);
		free(tb.buf);
	}
}

static void test_status_strings(void **state)
{
	static const struct {
		enum maptbl_walk_status st;
		int err;
	} m[] = {
		{ MAPTBL_WALK_OK, 0 },
		{ MAPTBL_WALK_BAD_ARG, -EINVAL },
		{ MAPTBL_WALK_READ_ERROR, -EIO },
		{ MAPTBL_WALK_BAD_HEADER, -EBADMSG },
		{ MAPTBL_WALK_UNSUPPORTED, -EOPNOTSUPP },
		{ MAPTBL_WALK_BAD_NODE, -EBADMSG },
		{ MAPTBL_WALK_BAD_CRC, -EBADMSG },
		{ MAPTBL_WALK_OUT_OF_RANGE, -ERANGE },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		const char *s = maptbl_walk_strerror(m[i].st);

		assert_int_equal(maptbl_walk_errno(m[i].st), m[i].err);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, maptbl_walk_strerror(m[j].st));
	}
	assert_string_equal(maptbl_walk_strerror((enum maptbl_walk_status)99),
			    "unknown walker status");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_failed_init_unusable),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_reads_per_lookup),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_header_crc),
		cmocka_unit_test(test_bad_node),
		cmocka_unit_test(test_bad_entries),
		cmocka_unit_test(test_wide_leaf_without_feature),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_root_outside),
		cmocka_unit_test(test_republish),
		cmocka_unit_test(test_agrees_small),
		cmocka_unit_test(test_status_strings),
	};

	return cmocka_run_group_tests_name("libmaptbl walk", tests, NULL, NULL);
}
