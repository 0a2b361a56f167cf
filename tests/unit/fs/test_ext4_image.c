/* SPDX-License-Identifier: MIT */
/*
 * test_ext4_image.c - the ext4-image backend of libmaptbl-fs (libext2fs, no mount, no root) on
 * images made here with `mkfs.ext4 -d`: a file's extents checked against the bytes of the image,
 * a sparse file's hole, a block-mapped file (-O ^extent) merged, unwritten extents (debugfs
 * fallocate), an inline_data file refused, the errors, and a table built from a map. Skips (77)
 * without mkfs.ext4.
 */
#include "../../../fs-adapters/src/fs.c"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fsutil.h"

#define SKIP 77
#define TOOLS_PATH "PATH=\"$PATH:/usr/sbin:/sbin\" "
#define BIG_SIZE 300000u
#define SPARSE_GAP (1024u * 1024u)

static char tmpdir[] = "/tmp/maptbl-unit-ext4-XXXXXX";
static char img_ext[PATH_MAX], img_inline[PATH_MAX], img_blk[PATH_MAX], img_fa[PATH_MAX];
static char src_big[PATH_MAX];
static bool have_fallocate;
static uint8_t *big;

static uint8_t big_byte(size_t i)
{
	uint64_t x = (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15) + 7;

	x ^= x >> 29;
	return (uint8_t)(x * UINT64_C(0xBF58476D1CE4E5B9) >> 56);
}

static int write_file(const char *dir, const char *name, const void *buf, size_t len, off_t at)
{
	char path[PATH_MAX];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return -1;
	ok = !len || pwrite(fd, buf, len, at) == (ssize_t)len;
	return close(fd) == 0 && ok ? 0 : -1;
}

static int run(const char *fmt, ...) MTFS_PRINTF(1, 2);

static int run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

/* Makes the source tree and the images once for every test. */
static int make_images(void)
{
	char src[256], sub[256];
	uint8_t blk[4096];
	size_t i;

	snprintf(src, sizeof(src), "%s/src", tmpdir);
	snprintf(sub, sizeof(sub), "%s/src/sub", tmpdir);
	if (mkdir(src, 0755) || mkdir(sub, 0755))
		return -1;
	big = malloc(BIG_SIZE);
	if (!big)
		return -1;
	for (i = 0; i < BIG_SIZE; i++)
		big[i] = big_byte(i);
	snprintf(src_big, sizeof(src_big), "%s/big", src);
	memset(blk, 'A', sizeof(blk));
	if (write_file(src, "big", big, BIG_SIZE, 0) || write_file(src, "sparse", blk, 4096, 0))
		return -1;
	memset(blk, 'B', sizeof(blk));
	if (write_file(src, "sparse", blk, 4096, SPARSE_GAP) ||
	    write_file(src, "small", "hello\n", 6, 0) || write_file(src, "empty", "", 0, 0) ||
	    write_file(src, "pre", "", 0, 0))
		return -1;
	memset(blk, 'N', sizeof(blk));
	if (write_file(sub, "nested", blk, 4096, 0))
		return -1;
	snprintf(img_ext, sizeof(img_ext), "%s/ext.img", tmpdir);
	snprintf(img_inline, sizeof(img_inline), "%s/inline.img", tmpdir);
	snprintf(img_blk, sizeof(img_blk), "%s/blockmap.img", tmpdir);
	snprintf(img_fa, sizeof(img_fa), "%s/fallocate.img", tmpdir);
	if (run(TOOLS_PATH "mkfs.ext4 -q -F -d '%s' '%s' 16M >/dev/null 2>&1", src, img_ext) ||
	    run(TOOLS_PATH "mkfs.ext4 -q -F -O inline_data -d '%s' '%s' 16M >/dev/null 2>&1", src,
		img_inline) ||
	    run(TOOLS_PATH "mkfs.ext4 -q -F -O ^extent,^64bit -d '%s' '%s' 16M >/dev/null 2>&1",
		src, img_blk) ||
	    run(TOOLS_PATH "mkfs.ext4 -q -F -d '%s' '%s' 16M >/dev/null 2>&1", src, img_fa)) {
		fprintf(stderr, "mkfs.ext4 -d failed\n");
		return -1;
	}
	/* Blocks 0..15 of the empty file "pre", allocated unwritten. */
	have_fallocate = run(TOOLS_PATH "debugfs -w -R 'fallocate /pre 0 15' '%s' >/dev/null 2>&1",
			     img_fa) == 0;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	return make_images();
}

static int teardown(void **state)
{
	(void)state;
	free(big);
	return run("rm -rf '%s'", tmpdir);
}

/* Maps @path in @image with table block size @bs (0: the filesystem's). */
static struct maptbl_fs_map *map_in(const char *image, const char *path, uint32_t bs)
{
	struct maptbl_fs_opts o;
	struct maptbl_fs_map *m = NULL;
	int err;

	maptbl_fs_opts_init(&o, sizeof(o));
	o.image = image;
	o.block_size = bs;
	err = maptbl_fs_map_file(path, &o, &m);
	if (err)
		fail_msg("maptbl_fs_map_file(%s in %s) failed: %d", path, image, err);
	assert_non_null(m);
	return m;
}

static int map_err(const char *image, const char *path)
{
	struct maptbl_fs_opts o;
	struct maptbl_fs_map *m = (struct maptbl_fs_map *)&o;
	int err;

	maptbl_fs_opts_init(&o, sizeof(o));
	o.image = image;
	err = maptbl_fs_map_file(path, &o, &m);
	if (!err)
		maptbl_fs_map_free(m);
	else
		assert_null(m);
	return err;
}

/*
 * Every extent is sorted, inside the disk, and holds the file's bytes (@want, @size bytes) at its
 * place in the image. Returns the bytes of [0, size) the extents cover.
 */
static uint64_t check_data(const struct maptbl_fs_map *m, const char *image, const uint8_t *want,
			   uint64_t size)
{
	const uint32_t bs = maptbl_fs_map_block_size(m);
	const struct maptbl_extent *e;
	uint64_t covered = 0, end = 0;
	uint8_t *buf;
	size_t n, i;
	int fd;

	e = maptbl_fs_map_extents(m, &n);
	assert_non_null(e);
	fd = open(image, O_RDONLY);
	assert_true(fd >= 0);
	for (i = 0; i < n; i++) {
		uint64_t off = e[i].lblk * bs, len = e[i].len * bs;

		assert_true(e[i].len > 0);
		assert_true(e[i].lblk * bs >= end); /* sorted, disjoint */
		end = (e[i].lblk + e[i].len) * bs;
		assert_true((e[i].pblk + e[i].len) * bs <= maptbl_fs_map_disk_size(m));
		if (off >= size)
			continue;
		if (len > size - off)
			len = size - off;
		buf = malloc(len);
		assert_non_null(buf);
		assert_int_equal(pread(fd, buf, len, (off_t)(e[i].pblk * bs)), (ssize_t)len);
		if (memcmp(buf, want + off, len))
			fail_msg("extent %zu (lblk %llu pblk %llu len %llu): the image does not hold the file's bytes",
				 i, (unsigned long long)e[i].lblk, (unsigned long long)e[i].pblk,
				 (unsigned long long)e[i].len);
		free(buf);
		covered += len;
	}
	close(fd);
	return covered;
}

static void test_extents(void **state)
{
	struct maptbl_fs_map *m = map_in(img_ext, "/big", 0);
	char real[PATH_MAX];
	uint64_t id;
	size_t n;

	(void)state;
	assert_int_equal(maptbl_fs_map_source(m), MAPTBL_FS_SOURCE_EXT4_IMAGE);
	assert_int_equal(maptbl_fs_map_file_size(m), BIG_SIZE);
	/* mkfs.ext4 gives a 16 MiB filesystem 1 KiB blocks; the table uses the same. */
	assert_int_equal(maptbl_fs_map_block_size(m), m->fs_block_size);
	assert_true(maptbl_fs_map_block_size(m) >= 1024);
	assert_non_null(realpath(img_ext, real));
	assert_string_equal(maptbl_fs_map_disk(m), real);
	assert_int_equal(maptbl_fs_map_disk_size(m), 16 * 1024 * 1024);
	assert_int_equal(maptbl_fs_map_disk_offset(m), 0);
	assert_non_null(strstr(maptbl_fs_map_layers(m), "ext4 image"));
	assert_int_equal(maptbl_fs_disk_id(img_ext, &id), 0);
	assert_int_equal(maptbl_fs_map_disk_id(m), id);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	assert_int_equal(maptbl_fs_map_check(m, true), 0);
	maptbl_fs_map_extents(m, &n);
	assert_true(n >= 1);
	assert_int_equal(check_data(m, img_ext, big, BIG_SIZE), BIG_SIZE);
	maptbl_fs_map_free(m);

	/* A file in a directory, the path with and without the leading slash. */
	m = map_in(img_ext, "/sub/nested", 0);
	assert_int_equal(maptbl_fs_map_file_size(m), 4096);
	{
		uint8_t want[4096];

		memset(want, 'N', sizeof(want));
		assert_int_equal(check_data(m, img_ext, want, 4096), 4096);
	}
	maptbl_fs_map_free(m);
	m = map_in(img_ext, "sub/nested", 0);
	assert_int_equal(maptbl_fs_map_file_size(m), 4096);
	maptbl_fs_map_free(m);
}

static void test_sparse(void **state)
{
	struct maptbl_fs_map *m = map_in(img_ext, "/sparse", 0);
	const uint64_t size = SPARSE_GAP + 4096;
	const struct maptbl_extent *e;
	uint32_t bs;
	uint8_t *want;
	size_t n;

	(void)state;
	bs = maptbl_fs_map_block_size(m);
	assert_int_equal(maptbl_fs_map_file_size(m), size);
	e = maptbl_fs_map_extents(m, &n);
	/* Data at [0, 4096) and [1 MiB, 1 MiB + 4096); the hole between is in no extent. */
	assert_int_equal(n, 2);
	assert_int_equal(e[0].lblk, 0);
	assert_int_equal(e[0].len, 4096 / bs);
	assert_int_equal(e[1].lblk, SPARSE_GAP / bs);
	assert_int_equal(e[1].len, 4096 / bs);
	assert_int_equal(e[0].flags | e[1].flags, 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	want = calloc(1, size);
	assert_non_null(want);
	memset(want, 'A', 4096);
	memset(want + SPARSE_GAP, 'B', 4096);
	assert_int_equal(check_data(m, img_ext, want, size), 8192);
	free(want);
	maptbl_fs_map_free(m);
}

static void test_block_mapped(void **state)
{
	struct maptbl_fs_map *m = map_in(img_blk, "/big", 0);
	const struct maptbl_extent *e;
	size_t n, i;

	(void)state;
	e = maptbl_fs_map_extents(m, &n);
	/* One record per block from ext2fs_block_iterate3(), merged into runs: the indirect blocks
	 * split the data, so a few extents, never one per block. */
	assert_true(n >= 2);
	assert_true(n <= 8);
	for (i = 1; i < n; i++)
		if (e[i - 1].lblk + e[i - 1].len == e[i].lblk &&
		    e[i - 1].pblk + e[i - 1].len == e[i].pblk)
			fail_msg("extents %zu and %zu are contiguous but not merged", i - 1, i);
	assert_int_equal(check_data(m, img_blk, big, BIG_SIZE), BIG_SIZE);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	maptbl_fs_map_free(m);
}

static void test_unwritten(void **state)
{
	struct maptbl_fs_map *m;
	const struct maptbl_extent *e;
	size_t n;

	(void)state;
	if (!have_fallocate)
		skip();
	m = map_in(img_fa, "/pre", 0);
	e = maptbl_fs_map_extents(m, &n);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].lblk, 0);
	assert_int_equal(e[0].len, 16);
	assert_int_equal(e[0].flags, MAPTBL_EXTENT_UNWRITTEN);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	maptbl_fs_map_free(m);
}

static void test_inline(void **state)
{
	const struct maptbl_fs_finding *f;
	struct maptbl_fs_map *m;
	char real[PATH_MAX];
	struct logcap lc;
	size_t n;

	(void)state;
	m = map_in(img_inline, "/small", 0);
	assert_int_equal(maptbl_fs_map_file_size(m), 6);
	maptbl_fs_map_extents(m, &n);
	assert_int_equal(n, 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 1);
	f = maptbl_fs_map_finding(m, 0);
	assert_int_equal(f->rule, MAPTBL_FS_RULE_INLINE);
	assert_int_equal(f->offset, 0);
	assert_int_equal(f->length, 6);
	assert_int_equal(f->refuses, MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
	logcap_start(&lc);
	assert_int_equal(maptbl_fs_map_check(m, false), -EINVAL);
	assert_non_null(strstr(lc.last, "inline"));
	assert_int_equal(maptbl_fs_map_check(m, true), -EINVAL);
	assert_non_null(strstr(lc.last, "bytes 0..5"));
	logcap_stop();
	/*
	 * The disk is known even when the file is refused. This used to be NULL for an inline or
	 * encrypted file in an image (and `maptbl verify --against` passed it to strcmp()).
	 */
	assert_non_null(realpath(img_inline, real));
	assert_non_null(maptbl_fs_map_disk(m));
	assert_string_equal(maptbl_fs_map_disk(m), real);
	assert_int_not_equal(maptbl_fs_map_disk_id(m), 0);
	maptbl_fs_map_free(m);

	/* An empty file carries the inline flag too, but holds no byte a table could miss. */
	m = map_in(img_inline, "/empty", 0);
	assert_int_equal(maptbl_fs_map_file_size(m), 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	assert_int_equal(maptbl_fs_map_check(m, false), 0);
	maptbl_fs_map_free(m);

	/* A file too big for the inode in the same image is mapped as usual. */
	m = map_in(img_inline, "/big", 0);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	assert_int_equal(check_data(m, img_inline, big, BIG_SIZE), BIG_SIZE);
	maptbl_fs_map_free(m);
}

static void test_block_size(void **state)
{
	struct maptbl_fs_map *m;
	const struct maptbl_extent *e;
	uint64_t bytes = 0;
	size_t n, i;

	(void)state;
	/* 4 KiB table blocks on 1 KiB filesystem blocks: 293 KiB of data cannot all be aligned. */
	m = map_in(img_ext, "/big", 4096);
	assert_int_equal(maptbl_fs_map_block_size(m), 4096);
	assert_true(maptbl_fs_map_nr_findings(m) >= 1);
	for (i = 0; i < maptbl_fs_map_nr_findings(m); i++) {
		const struct maptbl_fs_finding *f = maptbl_fs_map_finding(m, i);

		assert_int_equal(f->rule, MAPTBL_FS_RULE_NOT_ALIGNED);
		assert_int_equal(f->refuses, MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
		bytes += f->length;
	}
	e = maptbl_fs_map_extents(m, &n);
	for (i = 0; i < n; i++)
		bytes += e[i].len * 4096;
	/* Every byte of the data is in an extent or a finding, none in both. */
	assert_int_equal(bytes, (BIG_SIZE + 1023) / 1024 * 1024);
	assert_int_equal(maptbl_fs_map_check(m, true), -EINVAL);
	maptbl_fs_map_free(m);
	/* 512-byte table blocks on the same: everything is aligned. */
	m = map_in(img_ext, "/big", 512);
	assert_int_equal(maptbl_fs_map_nr_findings(m), 0);
	assert_int_equal(check_data(m, img_ext, big, BIG_SIZE), BIG_SIZE);
	maptbl_fs_map_free(m);
}

static void test_errors(void **state)
{
	char path[PATH_MAX];

	(void)state;
	assert_int_equal(map_err(img_ext, "/nope"), -ENOENT);
	assert_int_equal(map_err(img_ext, "/sub/nope"), -ENOENT);
	assert_int_equal(map_err(img_ext, "/sub"), -EISDIR);
	assert_int_equal(map_err(img_ext, "/"), -EISDIR);
	snprintf(path, sizeof(path), "%s/none.img", tmpdir);
	assert_int_equal(map_err(path, "/big"), -ENOENT);
	/* Not an ext4 image. */
	assert_int_equal(map_err(src_big, "/big"), -EINVAL);
}

/* The map into a table: the disk record names the image. */
static void test_table(void **state)
{
	struct maptbl_fs_map *m = map_in(img_ext, "/big", 0);
	const struct maptbl_extent *e;
	struct maptbl_table *t = NULL, *t2 = NULL;
	struct maptbl_build_opts o;
	struct maptbl_mapping mp;
	size_t n;

	(void)state;
	e = maptbl_fs_map_extents(m, &n);
	maptbl_build_opts_init(&o, sizeof(o));
	o.block_size = maptbl_fs_map_block_size(m);
	o.node_size = 256;
	o.disk_blocks = maptbl_fs_map_disk_size(m) / o.block_size;
	o.disk_path = maptbl_fs_map_disk(m);
	o.disk_id = maptbl_fs_map_disk_id(m);
	assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), NULL, &t2), 0);
	assert_string_equal(maptbl_table_disk_path(t2), maptbl_fs_map_disk(m));
	assert_int_equal(maptbl_table_disk_id(t2), maptbl_fs_map_disk_id(m));
	assert_false(maptbl_table_readonly(t2));
	assert_int_equal(maptbl_table_lookup(t2, e[0].lblk + 1, &mp), 0);
	assert_int_equal(mp.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(mp.pblk, e[0].pblk + 1);
	maptbl_table_free(t2);
	maptbl_table_free(t);
	maptbl_fs_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extents),
		cmocka_unit_test(test_sparse),
		cmocka_unit_test(test_block_mapped),
		cmocka_unit_test(test_unwritten),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_table),
	};

	if (system(TOOLS_PATH "command -v mkfs.ext4 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "mkfs.ext4 not found: skipped\n");
		return SKIP;
	}
	return cmocka_run_group_tests_name("libmaptbl-fs ext4 image", tests, setup, teardown);
}
