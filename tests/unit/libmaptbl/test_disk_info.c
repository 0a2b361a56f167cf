/* SPDX-License-Identifier: MIT */
/*
 * test_disk_info.c - the disk record (FORMAT.md §3.1, compat bit DISK_INFO): what the builder
 * writes byte for byte, the round trip through maptbl_table_open(), the size limits, each rule of
 * the record broken in a crafted table (the header checksum recomputed with the reference CRC of
 * testutil.c, FORMAT.md §7, so that the rule and not the checksum is what fails), the read-only
 * cases, and the reference walker on a table that carries a record.
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

#define DI_ID	  128u /* disk_id */
#define DI_PLEN	  136u /* path_len */
#define DI_RSV	  138u /* reserved, 6 bytes */
#define DI_PATH	  144u /* disk_path */
#define TEST_PATH "/dev/nvme0n1" /* 12 bytes: header_len 160, 4 bytes of padding */
#define TEST_ID	  UINT64_C(0x0123456789ABCDEF)

static uint8_t scratch[65536];

struct tbl {
	uint8_t *buf;
	size_t len;
};


#define NEXT 50

/* Builds NEXT extents with @path and @id (NULL / 0: none); returns the table handle. */
static struct maptbl_table *build_t(uint32_t ns, const char *path, uint64_t id)
{
	struct maptbl_extent e[NEXT];
	struct maptbl_build_opts o;
	struct maptbl_diag d;
	struct maptbl_table *t = NULL;
	int err;

	tu_gen_ext(e, NEXT);
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = ns;
	o.disk_path = path;
	o.disk_id = id;
	o.diag = &d;
	err = maptbl_table_build(e, NEXT, &o, &t);
	if (err)
		fail_msg("build failed %d: %s", err, d.reason);
	assert_non_null(t);
	return t;
}

static struct tbl take(struct maptbl_table *t)
{
	struct tbl tb;

	tb.len = maptbl_table_len(t);
	tb.buf = malloc(tb.len);
	assert_non_null(tb.buf);
	memcpy(tb.buf, maptbl_table_data(t), tb.len);
	maptbl_table_free(t);
	return tb;
}

static struct tbl build_b(uint32_t ns, const char *path, uint64_t id)
{
	return take(build_t(ns, path, id));
}

static void reseal(struct tbl *tb)
{
	tw_seal_header(tb->buf, tb->len);
}

static struct maptbl_table *open_ok(const struct tbl *tb)
{
	struct maptbl_open_opts o;
	struct maptbl_diag d;
	struct maptbl_table *t = NULL;
	int err;

	maptbl_open_opts_init(&o, sizeof(o));
	o.diag = &d;
	err = maptbl_table_open(tb->buf, tb->len, &o, &t);
	if (err)
		fail_msg("open failed %d at offset %llu: %s", err, (unsigned long long)d.offset,
			 d.reason);
	assert_non_null(t);
	return t;
}

/* Open fails with -EBADMSG, the diag at byte @off, its reason containing @word. */
static void expect_bad(const struct tbl *tb, uint64_t off, const char *word)
{
	struct maptbl_open_opts o;
	struct maptbl_diag d;
	struct maptbl_table *t = (struct maptbl_table *)&o;
	int err;

	memset(&d, 0x55, sizeof(d));
	maptbl_open_opts_init(&o, sizeof(o));
	o.diag = &d;
	err = maptbl_table_open(tb->buf, tb->len, &o, &t);
	if (err != -EBADMSG)
		fail_msg("open returned %d, want -EBADMSG (offset %llu: %s)", err,
			 (unsigned long long)d.offset, err ? d.reason : "");
	assert_null(t);
	if (d.offset != off)
		fail_msg("diag.offset %llu, want %llu; reason: %s", (unsigned long long)d.offset,
			 (unsigned long long)off, d.reason);
	assert_int_equal(d.index, -1);
	if (!contains_word(d.reason, word))
		fail_msg("reason \"%s\" does not mention \"%s\"", d.reason, word);
}

static uint32_t roundup8(uint32_t x)
{
	return (x + 7) & ~7u;
}

/* ---- the builder ---- */

static void test_build_bytes(void **state)
{
	struct maptbl_table *t = build_t(4096, TEST_PATH, TEST_ID);
	const uint8_t *b = maptbl_table_data(t);
	const uint32_t plen = (uint32_t)strlen(TEST_PATH);
	uint32_t i;

	(void)state;
	assert_int_equal(get_le16(b + 10), 144 + roundup8(plen));
	assert_int_equal(get_le16(b + 10), 160);
	assert_int_equal(get_le64(b + TW_COMPAT), MAPTBL_COMPAT_DISK_INFO);
	assert_int_equal(get_le64(b + TW_INCOMPAT), 0);
	assert_int_equal(get_le64(b + TW_RO_COMPAT), 0);
	assert_int_equal(get_le64(b + DI_ID), TEST_ID);
	assert_int_equal(get_le16(b + DI_PLEN), plen);
	for (i = DI_RSV; i < DI_PATH; i++)
		assert_int_equal(b[i], 0);
	assert_memory_equal(b + DI_PATH, TEST_PATH, plen);
	/* Zero padding up to header_len, and nothing written after it in node 0. */
	for (i = DI_PATH + plen; i < 4096; i++)
		if (b[i])
			fail_msg("byte %u of node 0 is 0x%02x, want 0", i, b[i]);
	/* The checksum covers the record (FORMAT.md §7), so it differs from a 128-byte one. */
	assert_int_equal(get_le32(b + TW_HDR_CRC), tw_header_crc(b, 160));
	assert_int_not_equal(get_le32(b + TW_HDR_CRC), tw_header_crc(b, 128));
	/* The built handle itself. */
	assert_string_equal(maptbl_table_disk_path(t), TEST_PATH);
	assert_int_equal(maptbl_table_disk_id(t), TEST_ID);
	assert_false(maptbl_table_readonly(t));
	assert_int_equal(maptbl_table_features(t, 2), MAPTBL_COMPAT_DISK_INFO);
	maptbl_table_free(t);
}

/* Every path length from 1 to 64 at 4096-byte nodes: header_len, round trip, tree unchanged. */
static void test_build_lengths(void **state)
{
	struct tbl plain = build_b(4096, NULL, 0);
	char path[65];
	size_t n;

	(void)state;
	assert_int_equal(get_le16(plain.buf + 10), 128);
	for (n = 1; n <= 64; n++) {
		struct maptbl_table *t;
		struct tbl tb;
		size_t i;

		for (i = 0; i < n; i++)
			path[i] = (char)('a' + i % 26);
		path[n] = 0;
		tb = build_b(4096, path, n);
		if (get_le16(tb.buf + 10) != 144 + roundup8((uint32_t)n))
			fail_msg("path of %zu bytes: header_len %u, want %u", n, get_le16(tb.buf + 10),
				 144 + roundup8((uint32_t)n));
		assert_int_equal(get_le16(tb.buf + DI_PLEN), n);
		/* Only node 0 differs from the table without a record. */
		assert_int_equal(tb.len, plain.len);
		assert_memory_equal(tb.buf + 4096, plain.buf + 4096, tb.len - 4096);
		t = open_ok(&tb);
		assert_string_equal(maptbl_table_disk_path(t), path);
		assert_int_equal(maptbl_table_disk_id(t), n);
		assert_false(maptbl_table_readonly(t));
		assert_int_equal(maptbl_table_features(t, 2), MAPTBL_COMPAT_DISK_INFO);
		assert_int_equal(maptbl_table_nr_extents(t), NEXT);
		maptbl_table_free(t);
		free(tb.buf);
	}
	free(plain.buf);
}

static void test_open_round_trip(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	struct maptbl_mapping m;
	struct maptbl_table *t;
	const char *p;

	(void)state;
	t = open_ok(&tb);
	p = maptbl_table_disk_path(t);
	assert_non_null(p);
	assert_string_equal(p, TEST_PATH);
	/* A copy owned by the table, not a pointer into the caller's buffer. */
	assert_true(p < (const char *)tb.buf || p >= (const char *)tb.buf + tb.len);
	assert_int_equal(maptbl_table_disk_id(t), TEST_ID);
	assert_false(maptbl_table_readonly(t));
	assert_int_equal(maptbl_table_features(t, 2), MAPTBL_COMPAT_DISK_INFO);
	/* The tree is unaffected: block 31 is in extent 3 (lblk 30, len 4, unwritten). */
	assert_int_equal(maptbl_table_lookup(t, 31, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_UNWRITTEN);
	assert_int_equal(m.pblk, 100000 + 3 * 8 + 1);
	maptbl_table_free(t);
	/* A NULL or freed handle gives nothing. */
	assert_null(maptbl_table_disk_path(NULL));
	assert_int_equal(maptbl_table_disk_id(NULL), 0);
	free(tb.buf);
}

static void test_no_record(void **state)
{
	struct tbl tb = build_b(4096, NULL, 0);
	struct maptbl_table *t;

	(void)state;
	assert_int_equal(get_le16(tb.buf + 10), 128);
	assert_int_equal(get_le64(tb.buf + TW_COMPAT), 0);
	t = open_ok(&tb);
	assert_null(maptbl_table_disk_path(t));
	assert_int_equal(maptbl_table_disk_id(t), 0);
	assert_int_equal(maptbl_table_features(t, 2), 0);
	maptbl_table_free(t);
	free(tb.buf);
}

static void test_id_without_path(void **state)
{
	struct tbl tb = build_b(256, NULL, TEST_ID);
	struct maptbl_table *t;
	uint32_t i;

	(void)state;
	assert_int_equal(get_le16(tb.buf + 10), 144);
	assert_int_equal(get_le64(tb.buf + TW_COMPAT), MAPTBL_COMPAT_DISK_INFO);
	assert_int_equal(get_le64(tb.buf + DI_ID), TEST_ID);
	assert_int_equal(get_le16(tb.buf + DI_PLEN), 0);
	for (i = DI_RSV; i < 256; i++)
		assert_int_equal(tb.buf[i], 0);
	t = open_ok(&tb);
	assert_null(maptbl_table_disk_path(t));
	assert_int_equal(maptbl_table_disk_id(t), TEST_ID);
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
	free(tb.buf);
}

static void test_path_without_id(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, 0);
	struct maptbl_table *t;

	(void)state;
	assert_int_equal(get_le16(tb.buf + 10), 160);
	assert_int_equal(get_le64(tb.buf + DI_ID), 0);
	t = open_ok(&tb);
	assert_string_equal(maptbl_table_disk_path(t), TEST_PATH);
	assert_int_equal(maptbl_table_disk_id(t), 0);
	maptbl_table_free(t);
	free(tb.buf);
}

/* Build with a path of @n bytes at @ns-byte nodes; returns the error, and the diag. */
static int build_path_len(uint32_t ns, size_t n, struct maptbl_diag *d, struct tbl *out)
{
	struct maptbl_extent e[NEXT];
	struct maptbl_build_opts o;
	struct maptbl_table *t = (struct maptbl_table *)&o;
	char *path = malloc(n + 1);
	int err;

	assert_non_null(path);
	memset(path, 'p', n);
	path[0] = '/';
	path[n] = 0;
	tu_gen_ext(e, NEXT);
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = ns;
	o.disk_path = path;
	o.diag = d;
	err = maptbl_table_build(e, NEXT, &o, &t);
	free(path);
	if (err) {
		assert_null(t);
		return err;
	}
	*out = take(t);
	return 0;
}

static void test_path_too_long(void **state)
{
	struct maptbl_diag d;
	struct maptbl_table *t;
	struct tbl tb;

	(void)state;
	/* 256-byte nodes hold a path of at most 256 - 144 = 112 bytes. */
	memset(&d, 0x55, sizeof(d));
	assert_int_equal(build_path_len(256, 200, &d, &tb), -EINVAL);
	assert_true(contains_word(d.reason, "disk path"));
	assert_true(contains_word(d.reason, "200"));
	assert_int_equal(d.index, -1);
	assert_int_equal(build_path_len(256, 113, &d, &tb), -EINVAL);
	assert_true(contains_word(d.reason, "disk path"));
	assert_int_equal(build_path_len(256, 112, &d, &tb), 0);
	assert_int_equal(get_le16(tb.buf + 10), 256);
	t = open_ok(&tb);
	assert_int_equal(strlen(maptbl_table_disk_path(t)), 112);
	maptbl_table_free(t);
	free(tb.buf);
	/* 512-byte nodes hold the 200-byte path. */
	assert_int_equal(build_path_len(512, 200, &d, &tb), 0);
	assert_int_equal(get_le16(tb.buf + 10), 344);
	free(tb.buf);
}

/*
 * header_len is a 16-bit field: with 65536-byte nodes the longest path is 65528 - 144 = 65384
 * bytes. This used to build a table with a 65392-byte path whose header_len (65536) was stored
 * truncated to 0, a table that maptbl_table_open() then refused.
 */
static void test_path_header_len_16_bits(void **state)
{
	struct maptbl_diag d;
	struct maptbl_table *t;
	struct tbl tb;

	(void)state;
	assert_int_equal(build_path_len(65536, 65392, &d, &tb), -EINVAL);
	assert_true(contains_word(d.reason, "disk path"));
	assert_int_equal(build_path_len(65536, 65385, &d, &tb), -EINVAL);
	assert_int_equal(build_path_len(65536, 65384, &d, &tb), 0);
	assert_int_equal(get_le16(tb.buf + 10), 65528);
	t = open_ok(&tb);
	assert_int_equal(strlen(maptbl_table_disk_path(t)), 65384);
	maptbl_table_free(t);
	free(tb.buf);
}

/* ---- crafted tables: each rule of §3.1 ---- */

static void test_bad_header_len(void **state)
{
	struct tbl tb = build_b(256, NULL, TEST_ID);

	(void)state;
	/* The bit set, header_len 136 and 128: too short for the 16-byte record. */
	put_le16(tb.buf + 10, 136);
	reseal(&tb);
	expect_bad(&tb, 10, "header_len");
	put_le16(tb.buf + 10, 128);
	reseal(&tb);
	expect_bad(&tb, 10, "disk record");
	/* 144 is enough (path_len 0). */
	put_le16(tb.buf + 10, 144);
	reseal(&tb);
	maptbl_table_free(open_ok(&tb));
	free(tb.buf);
}

static void test_bad_path_len(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	struct maptbl_table *t;

	(void)state;
	/* header_len 160 leaves 16 bytes for the path. */
	put_le16(tb.buf + DI_PLEN, 17);
	reseal(&tb);
	expect_bad(&tb, DI_PLEN, "header_len");
	put_le16(tb.buf + DI_PLEN, 0xFFFF);
	reseal(&tb);
	expect_bad(&tb, DI_PLEN, "path");
	/* Exactly 16 bytes, the padding filled with non-NUL bytes, is valid. */
	memcpy(tb.buf + DI_PATH + 12, "p1p2", 4);
	put_le16(tb.buf + DI_PLEN, 16);
	reseal(&tb);
	t = open_ok(&tb);
	assert_string_equal(maptbl_table_disk_path(t), TEST_PATH "p1p2");
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
	free(tb.buf);
}

static void test_bad_reserved(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	uint32_t i;

	(void)state;
	for (i = DI_RSV; i < DI_PATH; i++) {
		tb.buf[i] = 0x80;
		reseal(&tb);
		expect_bad(&tb, i, "reserved");
		tb.buf[i] = 0;
	}
	reseal(&tb);
	maptbl_table_free(open_ok(&tb));
	free(tb.buf);
}

static void test_nul_in_path(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	const uint32_t plen = (uint32_t)strlen(TEST_PATH);
	uint32_t i;

	(void)state;
	/* A NUL anywhere in the path, first byte to last: the disk_path field is bad. */
	for (i = 0; i < plen; i++) {
		uint8_t c = tb.buf[DI_PATH + i];

		tb.buf[DI_PATH + i] = 0;
		reseal(&tb);
		expect_bad(&tb, DI_PATH, "NUL");
		tb.buf[DI_PATH + i] = c;
	}
	/* path_len one longer takes in the first padding byte, a NUL. */
	put_le16(tb.buf + DI_PLEN, (uint16_t)(plen + 1));
	reseal(&tb);
	expect_bad(&tb, DI_PATH, "NUL");
	free(tb.buf);
}

static void test_nonzero_after_path(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	struct maptbl_table *t;
	uint32_t i;

	(void)state;
	/* Each padding byte (156..159) set: opens, read-only, the record still read. */
	for (i = DI_PATH + 12; i < 160; i++) {
		tb.buf[i] = 0x7F;
		reseal(&tb);
		t = open_ok(&tb);
		if (!maptbl_table_readonly(t))
			fail_msg("byte %u set after the path: table not read-only", i);
		assert_string_equal(maptbl_table_disk_path(t), TEST_PATH);
		assert_int_equal(maptbl_table_disk_id(t), TEST_ID);
		maptbl_table_free(t);
		tb.buf[i] = 0;
	}
	/* A longer header_len, the last byte of the node set. */
	put_le16(tb.buf + 10, 256);
	reseal(&tb);
	t = open_ok(&tb);
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
	tb.buf[255] = 1;
	reseal(&tb);
	t = open_ok(&tb);
	assert_true(maptbl_table_readonly(t));
	maptbl_table_free(t);
	/* Past header_len nothing counts (and the checksum does not cover it). */
	put_le16(tb.buf + 10, 160);
	reseal(&tb);
	t = open_ok(&tb);
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
	free(tb.buf);
}

static void test_bit_clear(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);
	struct maptbl_table *t;

	(void)state;
	/* A reader that does not know the record: bytes past 128 it cannot claim, read-only. */
	put_le64(tb.buf + TW_COMPAT, 0);
	reseal(&tb);
	t = open_ok(&tb);
	assert_true(maptbl_table_readonly(t));
	assert_null(maptbl_table_disk_path(t));
	assert_int_equal(maptbl_table_disk_id(t), 0);
	maptbl_table_free(t);
	/* Not read-only when those bytes are zero. */
	memset(tb.buf + 128, 0, 32);
	reseal(&tb);
	t = open_ok(&tb);
	assert_false(maptbl_table_readonly(t));
	maptbl_table_free(t);
	/* The bit clear, rules of the record broken: not a record, so only read-only. */
	put_le16(tb.buf + DI_PLEN, 0xFFFF);
	tb.buf[DI_RSV] = 1;
	reseal(&tb);
	t = open_ok(&tb);
	assert_true(maptbl_table_readonly(t));
	maptbl_table_free(t);
	free(tb.buf);
}

/* The header checksum covers the record: a changed path byte without a new checksum fails. */
static void test_record_checksum(void **state)
{
	struct tbl tb = build_b(256, TEST_PATH, TEST_ID);

	(void)state;
	tb.buf[DI_PATH + 5] ^= 0x20;
	expect_bad(&tb, 12, "checksum");
	tb.buf[DI_PATH + 5] ^= 0x20;
	tb.buf[DI_ID] ^= 1;
	expect_bad(&tb, 12, "checksum");
	free(tb.buf);
}

/* ---- the reference walker ---- */

static void test_walker(void **state)
{
	static const uint32_t sizes[] = { 256, 4096, 65536 };
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct tbl tb = build_b(sizes[k], TEST_PATH, TEST_ID);
		struct maptbl_walk_result r;
		struct maptbl_walker w;
		struct membuf mb;

		membuf_init(&mb, tb.buf, tb.len);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
						  MAPTBL_WALK_CHECK_CRC),
				 MAPTBL_WALK_OK);
		assert_int_equal(mb.oob, 0);
		assert_int_equal(maptbl_walk_lookup(&w, 31, &r), MAPTBL_WALK_OK);
		assert_int_equal(r.state, MAPTBL_MAP_UNWRITTEN);
		assert_int_equal(r.pblk, 100000 + 3 * 8 + 1);
		assert_int_equal(maptbl_walk_lookup(&w, 490, &r), MAPTBL_WALK_OK);
		assert_int_equal(r.state, MAPTBL_MAP_MAPPED);
		assert_int_equal(r.pblk, 100000 + 49 * 8);
		/* With the checksum check, a changed path byte is a bad header. */
		tb.buf[DI_PATH + 1] ^= 1;
		membuf_init(&mb, tb.buf, tb.len);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
						  MAPTBL_WALK_CHECK_CRC),
				 MAPTBL_WALK_BAD_HEADER);
		/* Without it the walker does not read the record at all. */
		membuf_init(&mb, tb.buf, tb.len);
		assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch), 0),
				 MAPTBL_WALK_OK);
		free(tb.buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_bytes),
		cmocka_unit_test(test_build_lengths),
		cmocka_unit_test(test_open_round_trip),
		cmocka_unit_test(test_no_record),
		cmocka_unit_test(test_id_without_path),
		cmocka_unit_test(test_path_without_id),
		cmocka_unit_test(test_path_too_long),
		cmocka_unit_test(test_path_header_len_16_bits),
		cmocka_unit_test(test_bad_header_len),
		cmocka_unit_test(test_bad_path_len),
		cmocka_unit_test(test_bad_reserved),
		cmocka_unit_test(test_nul_in_path),
		cmocka_unit_test(test_nonzero_after_path),
		cmocka_unit_test(test_bit_clear),
		cmocka_unit_test(test_record_checksum),
		cmocka_unit_test(test_walker),
	};

	return cmocka_run_group_tests_name("libmaptbl disk record", tests, NULL, NULL);
}
