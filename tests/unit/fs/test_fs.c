/* SPDX-License-Identifier: MIT */
/*
 * test_fs.c - libmaptbl-fs without a mounted filesystem: record merging (mtfs_add_record),
 * records to extents (make_extents: disk offset, alignment, shared, overlap), findings merging,
 * maptbl_fs_map_check(), the options, the errors maptbl_fs_map_file() gives before any backend
 * runs (directory, missing file, tmpfs, bad options), maptbl_fs_disk_id() and
 * maptbl_fs_rule_name(). fs.c is included to reach its static functions; the backends are linked
 * from their own sources.
 */
#include "../../../fs-adapters/src/fs.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/vfs.h>

#include <cmocka.h>

#include "fsutil.h"

#define KiB UINT64_C(1024)
#define MiB (UINT64_C(1024) * 1024)
#define BOTH (MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY)

static char tmpdir[] = "/tmp/maptbl-unit-fs-XXXXXX";

static void check_rec(const struct maptbl_fs_map *m, size_t i, uint64_t lo, uint64_t ph,
		      uint64_t len, uint32_t flags)
{
	const struct mtfs_record *r;

	assert_true(i < m->nr_rec);
	r = &m->rec[i];
	if (r->logical != lo || r->physical != ph || r->length != len || r->flags != flags)
		fail_msg("record %zu is (%llu, %llu, %llu, 0x%x), want (%llu, %llu, %llu, 0x%x)", i,
			 (unsigned long long)r->logical, (unsigned long long)r->physical,
			 (unsigned long long)r->length, r->flags, (unsigned long long)lo,
			 (unsigned long long)ph, (unsigned long long)len, flags);
}

static void check_ext(const struct maptbl_fs_map *m, size_t i, uint64_t lblk, uint64_t pblk,
		      uint64_t len, uint32_t flags)
{
	const struct maptbl_extent *e;

	assert_true(i < m->nr_ext);
	e = &m->ext[i];
	if (e->lblk != lblk || e->pblk != pblk || e->len != len || e->flags != flags ||
	    e->reserved)
		fail_msg("extent %zu is (%llu, %llu, %llu, 0x%x), want (%llu, %llu, %llu, 0x%x)", i,
			 (unsigned long long)e->lblk, (unsigned long long)e->pblk,
			 (unsigned long long)e->len, e->flags, (unsigned long long)lblk,
			 (unsigned long long)pblk, (unsigned long long)len, flags);
}

static void check_find(const struct maptbl_fs_map *m, size_t i, uint64_t off, uint64_t len,
		       uint32_t rule, uint32_t refuses)
{
	const struct maptbl_fs_finding *f = maptbl_fs_map_finding(m, i);

	assert_non_null(f);
	if (f->offset != off || f->length != len || f->rule != rule || f->refuses != refuses)
		fail_msg("finding %zu is (%llu, %llu, %s, 0x%x), want (%llu, %llu, %s, 0x%x)", i,
			 (unsigned long long)f->offset, (unsigned long long)f->length,
			 maptbl_fs_rule_name(f->rule), f->refuses, (unsigned long long)off,
			 (unsigned long long)len, maptbl_fs_rule_name(rule), refuses);
}

/* ---- mtfs_add_record ---- */

static void test_record_merge(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);

	(void)state;
	assert_non_null(m);
	/* An empty record is dropped. */
	assert_int_equal(mtfs_add_record(m, 0, MiB, 0, 0), 0);
	assert_int_equal(m->nr_rec, 0);
	assert_int_equal(mtfs_add_record(m, 0, MiB, 4096, 0), 0);
	/* Logically and physically contiguous, same flags: extends the record. */
	assert_int_equal(mtfs_add_record(m, 4096, MiB + 4096, 8192, 0), 0);
	assert_int_equal(m->nr_rec, 1);
	check_rec(m, 0, 0, MiB, 12288, 0);
	/* Contiguous, other flags: a new record... */
	assert_int_equal(mtfs_add_record(m, 12288, MiB + 12288, 4096, MTFS_REC_UNWRITTEN), 0);
	assert_int_equal(m->nr_rec, 2);
	/* ...which the next one of its flags extends. */
	assert_int_equal(mtfs_add_record(m, 16384, MiB + 16384, 4096, MTFS_REC_UNWRITTEN), 0);
	assert_int_equal(m->nr_rec, 2);
	check_rec(m, 1, 12288, MiB + 12288, 8192, MTFS_REC_UNWRITTEN);
	/* Logically contiguous, physically not. */
	assert_int_equal(mtfs_add_record(m, 20480, 5 * MiB, 4096, MTFS_REC_UNWRITTEN), 0);
	/* Physically contiguous, logically not (a hole between). */
	assert_int_equal(mtfs_add_record(m, 28672, 5 * MiB + 4096, 4096, MTFS_REC_UNWRITTEN), 0);
	/* Contiguous, shared. */
	assert_int_equal(mtfs_add_record(m, 32768, 5 * MiB + 8192, 4096,
					 MTFS_REC_UNWRITTEN | MTFS_REC_SHARED), 0);
	/* Contiguous with the shared one, not shared: new again. */
	assert_int_equal(mtfs_add_record(m, 36864, 5 * MiB + 12288, 4096, MTFS_REC_UNWRITTEN), 0);
	assert_int_equal(m->nr_rec, 6);
	check_rec(m, 0, 0, MiB, 12288, 0);
	check_rec(m, 1, 12288, MiB + 12288, 8192, MTFS_REC_UNWRITTEN);
	check_rec(m, 2, 20480, 5 * MiB, 4096, MTFS_REC_UNWRITTEN);
	check_rec(m, 3, 28672, 5 * MiB + 4096, 4096, MTFS_REC_UNWRITTEN);
	check_rec(m, 4, 32768, 5 * MiB + 8192, 4096, MTFS_REC_UNWRITTEN | MTFS_REC_SHARED);
	check_rec(m, 5, 36864, 5 * MiB + 12288, 4096, MTFS_REC_UNWRITTEN);
	maptbl_fs_map_free(m);
}

/* A block-mapped file comes one block at a time: 5000 blocks in 3 runs, 1000 scattered. */
static void test_record_many(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);
	uint64_t i;

	(void)state;
	assert_non_null(m);
	for (i = 0; i < 5000; i++) {
		uint64_t run = i < 12 ? 0 : i < 3000 ? 1 : 2;

		assert_int_equal(mtfs_add_record(m, i * 4096, (1000 + i + run) * 4096, 4096, 0), 0);
	}
	assert_int_equal(m->nr_rec, 3);
	check_rec(m, 0, 0, 1000 * 4096, 12 * 4096, 0);
	check_rec(m, 1, 12 * 4096, 1013 * 4096, 2988 * 4096, 0);
	check_rec(m, 2, 3000 * 4096, 4002 * 4096, 2000 * 4096, 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(mtfs_add_record(m, (10000 + 2 * i) * 4096, (90000 + 3 * i) * 4096,
						 4096, (uint32_t)(i & 1)),
				 0);
	assert_int_equal(m->nr_rec, 1003);
	check_rec(m, 3, 10000 * 4096, 90000 * 4096, 4096, 0);
	check_rec(m, 1002, 11998 * 4096, 92997 * 4096, 4096, 1);
	maptbl_fs_map_free(m);
}

/* ---- make_extents ---- */

static void test_extents_offset(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, MiB);

	(void)state;
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 0, 8192, 16384, 0), 0);
	assert_int_equal(mtfs_add_record(m, 16384, 40960, 8192, MTFS_REC_UNWRITTEN), 0);
	assert_int_equal(mtfs_add_record(m, 65536, 4096, 4096, 0), 0);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 3);
	/* pblk = (physical + disk offset) / block size: 1 MiB is 256 blocks. */
	check_ext(m, 0, 0, 256 + 2, 4, 0);
	check_ext(m, 1, 4, 256 + 10, 2, MAPTBL_EXTENT_UNWRITTEN);
	check_ext(m, 2, 16, 256 + 1, 1, 0);
	assert_int_equal(m->nr_find, 0);
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	assert_int_equal(maptbl_fs_map_check(m, true), 0);
	maptbl_fs_map_free(m);

	/* Records of 512-byte units in 4096-byte blocks, no offset. */
	m = new_map(4096, 0);
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 4096, 512 * 24, 4096 * 3, 0), 0);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 1);
	check_ext(m, 0, 1, 3, 3, 0);
	maptbl_fs_map_free(m);

	/* No records: no extents, and the array still exists. */
	m = new_map(4096, 0);
	assert_non_null(m);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 0);
	assert_non_null(m->ext);
	maptbl_fs_map_free(m);
}

/* Table block 16 KiB on a filesystem of 4 KiB blocks. */
static void test_extents_alignment(void **state)
{
	const uint64_t B = 16 * KiB;
	struct maptbl_fs_map *m = new_map((uint32_t)B, 0);

	(void)state;
	assert_non_null(m);
	/* Logical offset not aligned. */
	assert_int_equal(mtfs_add_record(m, 4 * KiB, 10 * B, B, 0), 0);
	/* Physical not aligned. */
	assert_int_equal(mtfs_add_record(m, 2 * B, 20 * B + 4 * KiB, B, 0), 0);
	/* Length not aligned. */
	assert_int_equal(mtfs_add_record(m, 4 * B, 30 * B, 4 * KiB, 0), 0);
	/* Aligned. */
	assert_int_equal(mtfs_add_record(m, 8 * B, 40 * B, 2 * B, MTFS_REC_UNWRITTEN), 0);
	/* Two unaligned records that touch: one finding. */
	assert_int_equal(mtfs_add_record(m, 12 * B, 50 * B, 4 * KiB, 0), 0);
	assert_int_equal(mtfs_add_record(m, 12 * B + 4 * KiB, 60 * B, 8 * KiB, 0), 0);
	assert_int_equal(m->nr_rec, 6);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 1);
	check_ext(m, 0, 8, 40, 2, MAPTBL_EXTENT_UNWRITTEN);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 4);
	check_find(m, 0, 4 * KiB, B, MAPTBL_FS_RULE_NOT_ALIGNED, BOTH);
	check_find(m, 1, 2 * B, B, MAPTBL_FS_RULE_NOT_ALIGNED, BOTH);
	check_find(m, 2, 4 * B, 4 * KiB, MAPTBL_FS_RULE_NOT_ALIGNED, BOTH);
	check_find(m, 3, 12 * B, 12 * KiB, MAPTBL_FS_RULE_NOT_ALIGNED, BOTH);
	assert_int_equal(maptbl_fs_map_check(m, false), -EINVAL);
	assert_int_equal(maptbl_fs_map_check(m, true), -EINVAL);
	maptbl_fs_map_free(m);

	/* A disk offset (a partition at 4 KiB) can unalign every physical address. */
	m = new_map((uint32_t)B, 4 * KiB);
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 0, 10 * B, B, 0), 0);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 0);
	assert_int_equal(m->nr_find, 1);
	check_find(m, 0, 0, B, MAPTBL_FS_RULE_NOT_ALIGNED, BOTH);
	maptbl_fs_map_free(m);

	/* ...and a partition at 12 KiB realign one that was not. */
	m = new_map((uint32_t)B, 12 * KiB);
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 0, 10 * B + 4 * KiB, B, 0), 0);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_find, 0);
	check_ext(m, 0, 0, 11, 1, 0);
	maptbl_fs_map_free(m);
}

static void test_extents_shared(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);

	(void)state;
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 0, 40960, 8192, 0), 0);
	/* Shared, contiguous: a record of its own, but the same extent. */
	assert_int_equal(mtfs_add_record(m, 8192, 49152, 4096, MTFS_REC_SHARED), 0);
	assert_int_equal(mtfs_add_record(m, 65536, 0, 8192, MTFS_REC_SHARED | MTFS_REC_UNWRITTEN),
			 0);
	assert_int_equal(m->nr_rec, 3);
	assert_int_equal(make_extents(m), 0);
	assert_int_equal(m->nr_ext, 2);
	check_ext(m, 0, 0, 10, 3, 0);
	check_ext(m, 1, 16, 0, 2, MAPTBL_EXTENT_UNWRITTEN);
	assert_int_equal(m->nr_find, 2);
	check_find(m, 0, 8192, 4096, MAPTBL_FS_RULE_SHARED, MAPTBL_FS_REFUSES_WRITABLE);
	check_find(m, 1, 65536, 8192, MAPTBL_FS_RULE_SHARED, MAPTBL_FS_REFUSES_WRITABLE);
	/* Refused for a writable table, allowed for a read-only one. */
	assert_int_equal(maptbl_fs_map_check(m, false), -EINVAL);
	assert_int_equal(maptbl_fs_map_check(m, true), 0);
	maptbl_fs_map_free(m);
}

static void test_extents_overlap(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);
	struct logcap lc;

	(void)state;
	assert_non_null(m);
	logcap_start(&lc);
	assert_int_equal(mtfs_add_record(m, 0, 40960, 8192, 0), 0);
	assert_int_equal(mtfs_add_record(m, 4096, 90000 * 4096, 8192, 0), 0);
	assert_int_equal(make_extents(m), -EIO);
	assert_int_equal(lc.n[MAPTBL_LOG_ERROR], 1);
	assert_non_null(strstr(lc.last, "test-file"));
	assert_non_null(strstr(lc.last, "overlapping"));
	assert_non_null(strstr(lc.last, "4096"));
	maptbl_fs_map_free(m);

	/* Out of order is an overlap too. */
	m = new_map(4096, 0);
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 8192, 40960, 4096, 0), 0);
	assert_int_equal(mtfs_add_record(m, 0, 90000 * 4096, 4096, 0), 0);
	assert_int_equal(make_extents(m), -EIO);
	maptbl_fs_map_free(m);

	/* The same range twice, the second shared. */
	m = new_map(4096, 0);
	assert_non_null(m);
	assert_int_equal(mtfs_add_record(m, 0, 40960, 4096, 0), 0);
	assert_int_equal(mtfs_add_record(m, 0, 40960, 4096, MTFS_REC_SHARED), 0);
	assert_int_equal(make_extents(m), -EIO);
	maptbl_fs_map_free(m);
	logcap_stop();
}

/* ---- findings ---- */

static void test_findings_merge(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);
	uint64_t i;

	(void)state;
	assert_non_null(m);
	assert_int_equal(mtfs_add_finding(m, 0, 4096, MAPTBL_FS_RULE_DELALLOC, BOTH), 0);
	/* Adjacent, same rule: merged. */
	assert_int_equal(mtfs_add_finding(m, 4096, 8192, MAPTBL_FS_RULE_DELALLOC, BOTH), 0);
	assert_int_equal(m->nr_find, 1);
	check_find(m, 0, 0, 12288, MAPTBL_FS_RULE_DELALLOC, BOTH);
	/* Adjacent, another rule. */
	assert_int_equal(mtfs_add_finding(m, 12288, 4096, MAPTBL_FS_RULE_INLINE, BOTH), 0);
	/* Same rule, a gap. */
	assert_int_equal(mtfs_add_finding(m, 20480, 4096, MAPTBL_FS_RULE_INLINE, BOTH), 0);
	/* Adjacent, same rule, refusing other tables. */
	assert_int_equal(mtfs_add_finding(m, 24576, 4096, MAPTBL_FS_RULE_INLINE,
					  MAPTBL_FS_REFUSES_WRITABLE), 0);
	assert_int_equal(m->nr_find, 4);
	check_find(m, 1, 12288, 4096, MAPTBL_FS_RULE_INLINE, BOTH);
	check_find(m, 2, 20480, 4096, MAPTBL_FS_RULE_INLINE, BOTH);
	check_find(m, 3, 24576, 4096, MAPTBL_FS_RULE_INLINE, MAPTBL_FS_REFUSES_WRITABLE);
	/* Many: the array grows and keeps them. */
	for (i = 0; i < 100; i++)
		assert_int_equal(mtfs_add_finding(m, MiB + i * 8192, 4096,
						  MAPTBL_FS_RULE_SHARED,
						  MAPTBL_FS_REFUSES_WRITABLE), 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 104);
	check_find(m, 103, MiB + 99 * 8192, 4096, MAPTBL_FS_RULE_SHARED,
		   MAPTBL_FS_REFUSES_WRITABLE);
	assert_null(maptbl_fs_map_finding(m, 104));
	maptbl_fs_map_free(m);
}

/*
 * An empty byte range breaks no rule. This used to add a finding of length 0 (an empty inline or
 * encrypted file), which refused the table and was logged as "bytes 0..18446744073709551615".
 */
static void test_finding_empty(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);

	(void)state;
	assert_non_null(m);
	assert_int_equal(mtfs_add_finding(m, 0, 0, MAPTBL_FS_RULE_INLINE, BOTH), 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	maptbl_fs_map_free(m);
}

static void test_check(void **state)
{
	struct maptbl_fs_map *m = new_map(4096, 0);
	struct logcap lc;

	(void)state;
	assert_non_null(m);
	assert_int_equal(maptbl_fs_map_check(NULL, false), -EINVAL);
	assert_int_equal(maptbl_fs_map_check(NULL, true), -EINVAL);
	/* No finding. */
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	assert_int_equal(maptbl_fs_map_check(m, true), 0);
	/* A finding that refuses only read-only tables (none does yet): the bits are not mixed. */
	assert_int_equal(mtfs_add_finding(m, 0, 4096, MAPTBL_FS_RULE_UNKNOWN,
					  MAPTBL_FS_REFUSES_READONLY), 0);
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	assert_int_equal(maptbl_fs_map_check(m, true), -EINVAL);
	maptbl_fs_map_free(m);

	m = new_map(4096, 0);
	assert_non_null(m);
	assert_int_equal(mtfs_add_finding(m, 4096, 8192, MAPTBL_FS_RULE_SHARED,
					  MAPTBL_FS_REFUSES_WRITABLE), 0);
	logcap_start(&lc);
	assert_int_equal(maptbl_fs_map_check(m, true), 0);
	assert_int_equal(lc.n[MAPTBL_LOG_ERROR], 0);
	assert_int_equal(maptbl_fs_map_check(m, false), -EINVAL);
	assert_int_equal(lc.n[MAPTBL_LOG_ERROR], 1);
	/* The file, the byte range, the rule. */
	assert_string_equal(lc.last, "test-file: bytes 4096..12287: shared: refused for a writable table");
	/* Every refusing finding is logged. */
	assert_int_equal(mtfs_add_finding(m, 65536, 4096, MAPTBL_FS_RULE_DELALLOC, BOTH), 0);
	memset(&lc, 0, sizeof(lc));
	assert_int_equal(maptbl_fs_map_check(m, false), -EINVAL);
	assert_int_equal(lc.n[MAPTBL_LOG_ERROR], 2);
	memset(&lc, 0, sizeof(lc));
	assert_int_equal(maptbl_fs_map_check(m, true), -EINVAL);
	assert_int_equal(lc.n[MAPTBL_LOG_ERROR], 1);
	assert_string_equal(lc.last,
			    "test-file: bytes 65536..69631: delalloc: refused for a read-only table");
	logcap_stop();
	maptbl_fs_map_free(m);
}

/* ---- options ---- */

static void test_opts_init(void **state)
{
	struct maptbl_fs_opts o;
	union {
		struct maptbl_fs_opts o;
		unsigned char raw[sizeof(struct maptbl_fs_opts) + 16];
	} u;
	size_t i;

	(void)state;
	assert_int_equal(maptbl_fs_opts_init(NULL, sizeof(o)), -EINVAL);
	assert_int_equal(maptbl_fs_opts_init(&o, 0), -EINVAL);
	assert_int_equal(maptbl_fs_opts_init(&o, sizeof(size_t) - 1), -EINVAL);
	memset(&o, 0xAA, sizeof(o));
	assert_int_equal(maptbl_fs_opts_init(&o, sizeof(o)), 0);
	assert_int_equal(o.sz, sizeof(o));
	assert_int_equal(o.source, MAPTBL_FS_SOURCE_AUTO);
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.block_size, 0);
	assert_int_equal(o.reserved, 0);
	assert_null(o.image);
	/* An older, smaller caller: nothing past its size is written. */
	memset(u.raw, 0xAA, sizeof(u.raw));
	assert_int_equal(maptbl_fs_opts_init(&u.o, offsetof(struct maptbl_fs_opts, block_size)), 0);
	assert_int_equal(u.o.sz, offsetof(struct maptbl_fs_opts, block_size));
	for (i = sizeof(size_t); i < offsetof(struct maptbl_fs_opts, block_size); i++)
		assert_int_equal(u.raw[i], 0);
	for (i = offsetof(struct maptbl_fs_opts, block_size); i < sizeof(u.raw); i++)
		assert_int_equal(u.raw[i], 0xAA);
	/*
	 * A newer, larger caller: all of its struct is cleared, so that the fields this version
	 * does not know are 0 and maptbl_fs_map_file() accepts them (as maptbl_build_opts_init()
	 * does). This used to clear only sizeof(struct maptbl_fs_opts) bytes.
	 */
	memset(u.raw, 0xAA, sizeof(u.raw));
	assert_int_equal(maptbl_fs_opts_init(&u.o, sizeof(u.raw)), 0);
	assert_int_equal(u.o.sz, sizeof(u.raw));
	for (i = sizeof(size_t); i < sizeof(u.raw); i++)
		assert_int_equal(u.raw[i], 0);
}

/* maptbl_fs_map_file(@path, @o) fails with @err and leaves *out NULL. */
static void expect_map_err(const char *path, const struct maptbl_fs_opts *o, int err)
{
	struct maptbl_fs_map *m = (struct maptbl_fs_map *)&m;
	int got = maptbl_fs_map_file(path, o, &m);

	if (got != err)
		fail_msg("maptbl_fs_map_file(%s) returned %d, want %d", path, got, err);
	assert_null(m);
}

static void test_bad_opts(void **state)
{
	struct maptbl_fs_opts o;
	struct maptbl_fs_map *m;
	static const uint32_t bad_bs[] = { 1, 256, 511, 1000, 4097, 131072, 0x80000000u };
	size_t i;

	(void)state;
	/* The path is a directory: every case below must fail before it is opened. */
	assert_int_equal(maptbl_fs_map_file(NULL, NULL, &m), -EINVAL);
	assert_int_equal(maptbl_fs_map_file(tmpdir, NULL, NULL), -EINVAL);
	maptbl_fs_opts_init(&o, sizeof(o));
	o.reserved = 1;
	expect_map_err(tmpdir, &o, -EINVAL);
	maptbl_fs_opts_init(&o, sizeof(o));
	o.flags = 0x2;
	expect_map_err(tmpdir, &o, -EINVAL);
	o.flags = MAPTBL_FS_NO_SYNC | 0x80000000u;
	expect_map_err(tmpdir, &o, -EINVAL);
	for (i = 0; i < sizeof(bad_bs) / sizeof(bad_bs[0]); i++) {
		maptbl_fs_opts_init(&o, sizeof(o));
		o.block_size = bad_bs[i];
		expect_map_err(tmpdir, &o, -EINVAL);
	}
	maptbl_fs_opts_init(&o, sizeof(o));
	o.source = MAPTBL_FS_SOURCE_BTRFS + 1;
	expect_map_err(tmpdir, &o, -EINVAL);
	/* The ext4-image source without an image, an image with another source. */
	maptbl_fs_opts_init(&o, sizeof(o));
	o.source = MAPTBL_FS_SOURCE_EXT4_IMAGE;
	expect_map_err(tmpdir, &o, -EINVAL);
	o.source = MAPTBL_FS_SOURCE_FIEMAP;
	o.image = "/nonexistent.img";
	expect_map_err(tmpdir, &o, -EINVAL);
	o.source = MAPTBL_FS_SOURCE_XFS;
	expect_map_err(tmpdir, &o, -EINVAL);
	/* An image with the AUTO source is the ext4-image source: now the image is missing. */
	o.source = MAPTBL_FS_SOURCE_AUTO;
	expect_map_err("/file", &o, -ENOENT);
	/* sz smaller than the struct of this version. */
	maptbl_fs_opts_init(&o, sizeof(o));
	o.sz = offsetof(struct maptbl_fs_opts, image);
	expect_map_err(tmpdir, &o, -EINVAL);
	o.sz = 0;
	expect_map_err(tmpdir, &o, -EINVAL);
	/* Good options reach the file: a directory. */
	maptbl_fs_opts_init(&o, sizeof(o));
	o.block_size = 65536;
	expect_map_err(tmpdir, &o, -EISDIR);
	o.block_size = 512;
	expect_map_err(tmpdir, &o, -EISDIR);
}

/*
 * A newer caller's opts with a field this version does not know must be refused when the field is
 * set (STYLE.md §7). This used to be ignored: only sizeof(struct maptbl_fs_opts) bytes were read.
 */
static void test_opts_unknown_tail(void **state)
{
	struct {
		struct maptbl_fs_opts o;
		uint64_t newer;
	} big;

	(void)state;
	memset(&big, 0, sizeof(big));
	maptbl_fs_opts_init(&big.o, sizeof(big));
	assert_int_equal(big.o.sz, sizeof(big));
	big.newer = 1;
	expect_map_err(tmpdir, &big.o, -EINVAL);
	big.newer = 0;
	expect_map_err(tmpdir, &big.o, -EISDIR);
}

/* ---- maptbl_fs_map_file before any backend ---- */

static void test_map_errors(void **state)
{
	char path[sizeof(tmpdir) + 32];
	struct logcap lc;

	(void)state;
	expect_map_err(tmpdir, NULL, -EISDIR);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	expect_map_err(path, NULL, -ENOENT);
	snprintf(path, sizeof(path), "%s/missing/below", tmpdir);
	expect_map_err(path, NULL, -ENOENT);
	/* Not a regular file. */
	logcap_start(&lc);
	expect_map_err("/dev/null", NULL, -EINVAL);
	assert_non_null(strstr(lc.last, "/dev/null"));
	assert_non_null(strstr(lc.last, "not a regular file"));
	logcap_stop();
}

/* A filesystem without a block device: refused, naming it. */
static void test_map_tmpfs(void **state)
{
	static const char *const dirs[] = { "/dev/shm", "/tmp", "/run" };
	char path[64];
	struct logcap lc;
	struct statfs sfs;
	size_t i;
	FILE *f;

	(void)state;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (statfs(dirs[i], &sfs) == 0 && (unsigned long)sfs.f_type == TMPFS_MAGIC &&
		    access(dirs[i], W_OK) == 0)
			break;
	if (i == sizeof(dirs) / sizeof(dirs[0]))
		skip();
	snprintf(path, sizeof(path), "%s/maptbl-unit-fs-%ld", dirs[i], (long)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("data\n", f);
	fclose(f);
	logcap_start(&lc);
	expect_map_err(path, NULL, -EOPNOTSUPP);
	logcap_stop();
	unlink(path);
	assert_non_null(strstr(lc.last, "tmpfs"));
	assert_non_null(strstr(lc.last, path));
}

/* ---- maptbl_fs_disk_id ---- */

/* FNV-1a 64 over (kind, device, inode), each 8 bytes little-endian (FORMAT.md §3.1). */
static uint64_t ref_disk_id(uint64_t kind, uint64_t dev, uint64_t ino)
{
	const uint64_t v[3] = { kind, dev, ino };
	uint64_t h = UINT64_C(14695981039346656037);
	int i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 8; j++) {
			h ^= (uint8_t)(v[i] >> (8 * j));
			h *= UINT64_C(1099511628211);
		}
	return h ? h : 1;
}

static void make_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_disk_id(void **state)
{
	char a[sizeof(tmpdir) + 16], b[sizeof(tmpdir) + 16], l[sizeof(tmpdir) + 16],
		s[sizeof(tmpdir) + 16];
	uint64_t ia, ia2, ib, il, is;
	struct stat st;

	(void)state;
	snprintf(a, sizeof(a), "%s/a.img", tmpdir);
	snprintf(b, sizeof(b), "%s/b.img", tmpdir);
	snprintf(l, sizeof(l), "%s/a.link", tmpdir);
	snprintf(s, sizeof(s), "%s/a.sym", tmpdir);
	make_file(a, "a");
	make_file(b, "b");
	unlink(l);
	unlink(s);
	assert_int_equal(link(a, l), 0);
	assert_int_equal(symlink(a, s), 0);
	assert_int_equal(maptbl_fs_disk_id(a, &ia), 0);
	assert_int_equal(maptbl_fs_disk_id(a, &ia2), 0);
	assert_int_equal(maptbl_fs_disk_id(b, &ib), 0);
	assert_int_not_equal(ia, 0);
	assert_int_equal(ia, ia2);
	assert_int_not_equal(ia, ib);
	/* The identity is the inode, not the name. */
	assert_int_equal(maptbl_fs_disk_id(l, &il), 0);
	assert_int_equal(maptbl_fs_disk_id(s, &is), 0);
	assert_int_equal(il, ia);
	assert_int_equal(is, ia);
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal(ia, ref_disk_id(2, (uint64_t)st.st_dev, (uint64_t)st.st_ino));
	/* A file replaced under the same name is another disk. */
	assert_int_equal(unlink(a), 0);
	assert_int_equal(rename(b, a), 0);
	assert_int_equal(maptbl_fs_disk_id(a, &ia2), 0);
	assert_int_equal(ia2, ib);
	/* Errors. */
	assert_int_equal(maptbl_fs_disk_id(NULL, &ia), -EINVAL);
	assert_int_equal(maptbl_fs_disk_id(a, NULL), -EINVAL);
	snprintf(b, sizeof(b), "%s/none.img", tmpdir);
	assert_int_equal(maptbl_fs_disk_id(b, &ia), -ENOENT);
	unlink(a);
	unlink(l);
	unlink(s);
}

/* ---- names and getters ---- */

static void test_rule_names(void **state)
{
	static const char *const want[] = {
		[MAPTBL_FS_RULE_DELALLOC] = "delalloc",
		[MAPTBL_FS_RULE_INLINE] = "inline",
		[MAPTBL_FS_RULE_NOT_ALIGNED] = "not-aligned",
		[MAPTBL_FS_RULE_ENCODED] = "encoded",
		[MAPTBL_FS_RULE_ENCRYPTED] = "encrypted",
		[MAPTBL_FS_RULE_SHARED] = "shared",
		[MAPTBL_FS_RULE_OTHER_DEVICE] = "other-device",
		[MAPTBL_FS_RULE_UNKNOWN] = "unknown-location",
		[MAPTBL_FS_RULE_COW] = "cow",
		[MAPTBL_FS_RULE_CHECKSUMMED] = "checksummed",
		[MAPTBL_FS_RULE_PROFILE] = "profile",
	};
	uint32_t r;

	(void)state;
	for (r = 1; r < sizeof(want) / sizeof(want[0]); r++)
		assert_string_equal(maptbl_fs_rule_name(r), want[r]);
	assert_string_equal(maptbl_fs_rule_name(0), "?");
	assert_string_equal(maptbl_fs_rule_name(MAPTBL_FS_RULE_PROFILE + 1), "?");
	assert_string_equal(maptbl_fs_rule_name(UINT32_MAX), "?");
}

static void test_null_map(void **state)
{
	size_t n = 99;

	(void)state;
	maptbl_fs_map_free(NULL);
	assert_null(maptbl_fs_map_extents(NULL, &n));
	assert_int_equal(n, 0);
	assert_null(maptbl_fs_map_extents(NULL, NULL));
	assert_int_equal(maptbl_fs_map_nr_findings(NULL), 0);
	assert_null(maptbl_fs_map_finding(NULL, 0));
	assert_int_equal(maptbl_fs_map_file_size(NULL), 0);
	assert_int_equal(maptbl_fs_map_block_size(NULL), 0);
	assert_null(maptbl_fs_map_disk(NULL));
	assert_int_equal(maptbl_fs_map_disk_size(NULL), 0);
	assert_int_equal(maptbl_fs_map_disk_offset(NULL), 0);
	assert_null(maptbl_fs_map_layers(NULL));
	assert_int_equal(maptbl_fs_map_source(NULL), 0);
	assert_int_equal(maptbl_fs_map_disk_id(NULL), 0);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_merge),
		cmocka_unit_test(test_record_many),
		cmocka_unit_test(test_extents_offset),
		cmocka_unit_test(test_extents_alignment),
		cmocka_unit_test(test_extents_shared),
		cmocka_unit_test(test_extents_overlap),
		cmocka_unit_test(test_findings_merge),
		cmocka_unit_test(test_finding_empty),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_opts_init),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_opts_unknown_tail),
		cmocka_unit_test(test_map_errors),
		cmocka_unit_test(test_map_tmpfs),
		cmocka_unit_test(test_disk_id),
		cmocka_unit_test(test_rule_names),
		cmocka_unit_test(test_null_map),
	};

	return cmocka_run_group_tests_name("libmaptbl-fs", tests, setup, teardown);
}
