/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - the stats accumulator (maptbl/stats.h): exact percentiles against a sorted
 * array, the histogram, merge == one accumulator of all files, JSON round trip, the top list,
 * malformed JSON; and maptbl_stats_file() on files of this machine's filesystem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <liburing.h>

#include <maptbl/stats.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* A skewed extent count: mostly 1, a long tail. */
static uint64_t rnd_extents(void)
{
	uint64_t r = rnd() % 100;

	if (r < 5)
		return 0;
	if (r < 70)
		return 1;
	if (r < 90)
		return 2 + rnd() % 3;
	return 1 + (rnd() % (UINT64_C(1) << (rnd() % 20)));
}

static struct maptbl_file_stats rnd_file(unsigned i, char *path, size_t n)
{
	struct maptbl_file_stats f;
	static const uint64_t sizes[] = { 0, 100, 5000, 100000, 2000000, 20000000, 300000000,
					  UINT64_C(5000000000) };

	memset(&f, 0, sizeof(f));
	snprintf(path, n, "/d%u/file-%06u", i % 7, i);
	f.path = path;
	f.size = sizes[rnd() % 8] + rnd() % 1000;
	f.extents = rnd_extents();
	f.records = f.extents + rnd() % 3;
	f.blocks = f.records + rnd() % 1000;
	f.holes = rnd() % 3;
	f.unwritten = rnd() % 2;
	f.shared = rnd() % 2;
	f.table_extents = f.records;
	f.table_depth = (uint32_t)(rnd() % 4);
	f.table_bytes = 4096 * (1 + f.table_depth);
	f.table_nodes = f.table_depth;
	return f;
}

static struct maptbl_stats_acc *new_acc(uint32_t top)
{
	struct maptbl_stats_opts o;
	struct maptbl_stats_acc *a;

	assert_int_equal(maptbl_stats_opts_init(&o, sizeof(o)), 0);
	o.top_n = top;
	assert_int_equal(maptbl_stats_acc_new(&o, &a), 0);
	return a;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static uint64_t nearest_rank(const uint64_t *sorted, size_t n, uint64_t num, uint64_t den)
{
	uint64_t rank = (n * num + den - 1) / den;

	if (!n)
		return 0;
	return sorted[(rank ? rank : 1) - 1];
}

static void test_percentiles(void **state)
{
	static const uint64_t q[][2] = { { 50, 100 }, { 90, 100 }, { 99, 100 }, { 999, 1000 },
					 { 1, 1 }, { 0, 1 }, { 1, 3 }, { 2, 3 }, { 12345, 100000 } };
	static const size_t counts[] = { 0, 1, 2, 3, 10, 99, 100, 101, 999, 1000, 1001, 20000 };
	char path[64];
	size_t c, i, k;

	(void)state;
	for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		size_t n = counts[c];
		uint64_t *v = calloc(n + 1, sizeof(*v)), got;
		struct maptbl_stats_acc *a = new_acc(0);
		struct maptbl_stats_summary s;

		for (i = 0; i < n; i++) {
			struct maptbl_file_stats f = rnd_file((unsigned)i, path, sizeof(path));

			v[i] = f.extents;
			assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
		}
		qsort(v, n, sizeof(*v), cmp_u64);
		for (k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
			assert_int_equal(maptbl_stats_acc_quantile(a, MAPTBL_STATS_ALL, q[k][0],
								   q[k][1], &got), 0);
			assert_int_equal(got, nearest_rank(v, n, q[k][0], q[k][1]));
		}
		assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
		assert_int_equal(s.files, n);
		assert_int_equal(s.p50, nearest_rank(v, n, 50, 100));
		assert_int_equal(s.p90, nearest_rank(v, n, 90, 100));
		assert_int_equal(s.p99, nearest_rank(v, n, 99, 100));
		assert_int_equal(s.p999, nearest_rank(v, n, 999, 1000));
		assert_int_equal(s.max, n ? v[n - 1] : 0);
		assert_int_equal(maptbl_stats_acc_quantile(a, MAPTBL_STATS_ALL, 2, 1, &got), -EINVAL);
		assert_int_equal(maptbl_stats_acc_quantile(a, MAPTBL_STATS_ALL, 0, 0, &got), -EINVAL);
		maptbl_stats_acc_free(a);
		free(v);
	}
}

static void test_histogram(void **state)
{
	uint64_t h[MAPTBL_STATS_BUCKETS], want[MAPTBL_STATS_BUCKETS] = { 0 }, lo, hi, prev_hi = 0;
	static const uint64_t vals[] = { 0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 1000, 1024, 1025,
					 UINT64_C(1) << 40, (UINT64_C(1) << 62) + 1,
					 (UINT64_C(1) << 63) - 1 };
	struct maptbl_stats_acc *a = new_acc(3);
	struct maptbl_file_stats f;
	unsigned b;
	size_t i;
	int n;

	(void)state;
	/* The buckets tile [0, 2^64) without gaps: 0, 1, 2, 3-4, 5-8, ... */
	for (b = 0; b < MAPTBL_STATS_BUCKETS; b++) {
		assert_int_equal(maptbl_stats_bucket_range(b, &lo, &hi), 0);
		assert_true(lo <= hi);
		if (b)
			assert_int_equal(lo, prev_hi + 1);
		prev_hi = hi;
	}
	assert_int_equal(prev_hi, UINT64_MAX);
	assert_int_equal(maptbl_stats_bucket_range(3, &lo, &hi), 0);
	assert_int_equal(lo, 3);
	assert_int_equal(hi, 4);
	assert_int_equal(maptbl_stats_bucket_range(MAPTBL_STATS_BUCKETS, &lo, &hi), -EINVAL);

	assert_int_equal(maptbl_stats_acc_histogram(a, MAPTBL_STATS_ALL, h), 0);
	memset(&f, 0, sizeof(f));
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		f.extents = vals[i];
		f.path = "x";
		f.size = i * 1000;
		assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
		for (b = 0; b < MAPTBL_STATS_BUCKETS; b++) {
			maptbl_stats_bucket_range(b, &lo, &hi);
			if (vals[i] >= lo && vals[i] <= hi)
				want[b] += 1 + (i == 3); /* value 3 is added twice */
		}
		if (i == 3)
			assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	}
	n = maptbl_stats_acc_histogram(a, MAPTBL_STATS_ALL, h);
	assert_int_equal(n, 65); /* 2^63 - 1 is in bucket 64, (2^62, 2^63] */
	assert_memory_equal(h, want, sizeof(h));
	assert_int_equal(want[3], 3); /* 3, 3, 4 */
	assert_int_equal(maptbl_stats_acc_histogram(a, MAPTBL_STATS_CLASSES, h), -EINVAL);
	maptbl_stats_acc_free(a);
}

__attribute__((noinline)) static char *json_of(const struct maptbl_stats_acc *a)
{
	char *s;

	assert_int_equal(maptbl_stats_acc_to_json(a, &s), 0);
	assert_non_null(s);
	return s;
}

static void test_merge_and_json(void **state)
{
	struct maptbl_stats_acc *all = new_acc(7), *parts[3], *m, *back;
	char *ja, *jm, *jb, path[64];
	unsigned i, p;

	(void)state;
	for (p = 0; p < 3; p++)
		parts[p] = new_acc(7);
	/* Part p gets files [p*N/3, (p+1)*N/3): "all" sees them in the same order. */
	for (i = 0; i < 3000; i++) {
		struct maptbl_file_stats f = rnd_file(i, path, sizeof(path));

		p = i * 3 / 3000;
		assert_int_equal(maptbl_stats_acc_add(all, &f), 0);
		assert_int_equal(maptbl_stats_acc_add(parts[p], &f), 0);
		if (i % 97 == 0) {
			int e = i % 2 ? ENOENT : EACCES;

			assert_int_equal(maptbl_stats_acc_error(all, path, e), 0);
			assert_int_equal(maptbl_stats_acc_error(parts[p], path, -e), 0);
		}
	}
	m = new_acc(7);
	for (p = 0; p < 3; p++)
		assert_int_equal(maptbl_stats_acc_merge(m, parts[p]), 0);
	ja = json_of(all);
	jm = json_of(m);
	assert_string_equal(ja, jm);
	assert_int_equal(maptbl_stats_acc_merge(m, m), -EINVAL);

	/* The JSON round trip gives the same accumulator... */
	assert_int_equal(maptbl_stats_acc_from_json(ja, strlen(ja), &back), 0);
	jb = json_of(back);
	assert_string_equal(ja, jb);
	free(jb);
	maptbl_stats_acc_free(back);
	/* ...and merging the parts' JSON equals the whole. */
	maptbl_stats_acc_free(m);
	m = new_acc(7);
	for (p = 0; p < 3; p++) {
		char *jp = json_of(parts[p]);

		assert_int_equal(maptbl_stats_acc_from_json(jp, strlen(jp), &back), 0);
		assert_int_equal(maptbl_stats_acc_merge(m, back), 0);
		maptbl_stats_acc_free(back);
		free(jp);
	}
	free(jm);
	jm = json_of(m);
	assert_string_equal(ja, jm);
	assert_int_equal(maptbl_stats_acc_nr_errors(m), 31);
	assert_int_equal(maptbl_stats_acc_nr_error_reasons(m), 2);
	free(ja);
	free(jm);
	maptbl_stats_acc_free(m);
	maptbl_stats_acc_free(all);
	for (p = 0; p < 3; p++)
		maptbl_stats_acc_free(parts[p]);
}

struct ref {
	uint64_t extents, size;
	char path[32];
};

static int cmp_ref(const void *x, const void *y)
{
	const struct ref *a = x, *b = y;

	if (a->extents != b->extents)
		return a->extents > b->extents ? -1 : 1;
	return strcmp(a->path, b->path);
}

static void test_top(void **state)
{
	static const uint32_t tops[] = { 1, 2, 10, 100, 5000 };
	struct ref *r = calloc(2000, sizeof(*r));
	size_t t, i;

	(void)state;
	for (t = 0; t < sizeof(tops) / sizeof(tops[0]); t++) {
		struct maptbl_stats_acc *a = new_acc(tops[t]);
		size_t want = tops[t] < 2000 ? tops[t] : 2000;

		for (i = 0; i < 2000; i++) {
			struct maptbl_file_stats f;

			memset(&f, 0, sizeof(f));
			r[i].extents = rnd() % 50; /* many ties: the path breaks them */
			r[i].size = i;
			snprintf(r[i].path, sizeof(r[i].path), "f%05zu", (i * 7919) % 2000);
			f.path = r[i].path;
			f.extents = r[i].extents;
			f.size = r[i].size;
			assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
		}
		qsort(r, 2000, sizeof(*r), cmp_ref);
		assert_int_equal(maptbl_stats_acc_nr_top(a), want);
		for (i = 0; i < want; i++) {
			struct maptbl_stats_top x;

			assert_int_equal(maptbl_stats_acc_top(a, i, &x), 0);
			assert_string_equal(x.path, r[i].path);
			assert_int_equal(x.extents, r[i].extents);
			assert_int_equal(x.size, r[i].size);
		}
		assert_int_equal(maptbl_stats_acc_top(a, want, &(struct maptbl_stats_top){ 0 }),
				 -EINVAL);
		maptbl_stats_acc_free(a);
	}
	free(r);
}

static void test_shares_and_layout(void **state)
{
	struct maptbl_stats_acc *a = new_acc(0);
	struct maptbl_stats_summary s;
	struct maptbl_file_stats f;

	(void)state;
	assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
	assert_true(s.layout_score == 1.0);
	memset(&f, 0, sizeof(f));
	/* 10 blocks in 3 extents: 9 blocks have a predecessor, 2 of them are breaks. */
	f.size = 40960;
	f.blocks = 10;
	f.extents = 3;
	assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	/* 1 block, 1 extent: no predecessor. An empty file: nothing. */
	f.size = 100;
	f.blocks = 1;
	f.extents = 1;
	assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	f.size = 0;
	f.blocks = 0;
	f.extents = 0;
	assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
	assert_int_equal(s.files, 3);
	assert_int_equal(s.multi_files, 1);
	assert_int_equal(s.multi_bytes, 40960);
	assert_int_equal(s.pred_blocks, 9);
	assert_int_equal(s.breaks, 2);
	assert_true(s.layout_score > 7.0 / 9 - 1e-12 && s.layout_score < 7.0 / 9 + 1e-12);
	/* By class. */
	assert_int_equal(maptbl_stats_acc_summary(a, maptbl_stats_size_class(40960), &s,
						  sizeof(s)), 0);
	assert_int_equal(s.files, 1);
	assert_int_equal(maptbl_stats_acc_summary(a, 0, &s, sizeof(s)), 0);
	assert_int_equal(s.files, 1);
	assert_int_equal(maptbl_stats_size_class(0), 0);
	assert_int_equal(maptbl_stats_size_class(4095), 1);
	assert_int_equal(maptbl_stats_size_class(4096), 2);
	assert_int_equal(maptbl_stats_size_class(UINT64_C(4) << 30), 7);
	assert_string_equal(maptbl_stats_size_class_name(7), ">=4G");
	assert_null(maptbl_stats_size_class_name(8));
	f.table_depth = MAPTBL_STATS_DEPTHS;
	assert_int_equal(maptbl_stats_acc_add(a, &f), -EINVAL);
	maptbl_stats_acc_free(a);
}

static void test_bad_json(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"[]",
		"{\"maptbl_stats\": 2}",
		"{\"maptbl_stats\": 1, \"top_n\": 0}",
		"{\"maptbl_stats\": 1, \"top_n\": 3, \"classes\": []}",
	};
	struct maptbl_stats_acc *a = new_acc(3), *b;
	struct maptbl_file_stats f;
	char *j, *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(maptbl_stats_acc_from_json(bad[i], strlen(bad[i]), &b), -EBADMSG);
		assert_null(b);
	}
	memset(&f, 0, sizeof(f));
	f.extents = 5;
	f.path = "a";
	assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	j = json_of(a);
	/* A file count that the value map does not add up to. */
	p = strstr(j, "\"class\": \"0\"");
	assert_non_null(p);
	p = strstr(p, "\"files\": 1");
	assert_non_null(p);
	p[9] = '2';
	assert_int_equal(maptbl_stats_acc_from_json(j, strlen(j), &b), -EBADMSG);
	free(j);
	maptbl_stats_acc_free(a);
}

/* Replaces the first @from in @s (which must hold it) by @to, in place (@to no longer). */
static void patch(char *s, const char *from, const char *to)
{
	char *p = strstr(s, from);
	size_t n = strlen(from), m = strlen(to);

	assert_non_null(p);
	assert_true(m <= n);
	memcpy(p, to, m);
	memmove(p + m, p + n, strlen(p + n) + 1);
}

/*
 * The value map carries the bytes of the files of each extent count ([extents, files, bytes]),
 * checked against the class's bytes; an older JSON with [extents, files] pairs still reads and
 * merges, and then the merged map has no bytes (they are unknown), never wrong ones.
 */
static void test_map_bytes(void **state)
{
	static const uint64_t ext[] = { 5, 5, 1 }, size[] = { 100, 200, 300 };
	struct maptbl_stats_summary sa, sb;
	struct maptbl_stats_acc *a = new_acc(3), *b, *m;
	struct maptbl_file_stats f;
	char *j, *k, path[8];
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		memset(&f, 0, sizeof(f));
		snprintf(path, sizeof(path), "f%zu", i);
		f.path = path;
		f.extents = ext[i];
		f.size = size[i];
		f.blocks = 1;
		assert_int_equal(maptbl_stats_acc_add(a, &f), 0);
	}
	j = json_of(a);
	assert_non_null(strstr(j, "     1,\n     1,\n     300\n"));
	assert_non_null(strstr(j, "     5,\n     2,\n     300\n"));
	/* bytes that do not add up to the class's bytes */
	k = strdup(j);
	patch(k, "     5,\n     2,\n     300\n", "     5,\n     2,\n     301\n");
	assert_int_equal(maptbl_stats_acc_from_json(k, strlen(k), &b), -EBADMSG);
	free(k);
	/* an older output: pairs */
	k = strdup(j);
	patch(k, "     5,\n     2,\n     300\n", "     5,\n     2\n");
	patch(k, "     1,\n     1,\n     300\n", "     1,\n     1\n");
	assert_int_equal(maptbl_stats_acc_from_json(k, strlen(k), &b), 0);
	free(k);
	assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &sa, sizeof(sa)), 0);
	assert_int_equal(maptbl_stats_acc_summary(b, MAPTBL_STATS_ALL, &sb, sizeof(sb)), 0);
	assert_memory_equal(&sa, &sb, sizeof(sa));
	m = new_acc(3);
	assert_int_equal(maptbl_stats_acc_merge(m, a), 0);
	assert_int_equal(maptbl_stats_acc_merge(m, b), 0);
	free(j);
	j = json_of(m);
	assert_non_null(strstr(j, "     5,\n     4\n    ]"));
	assert_null(strstr(j, "     5,\n     4,\n"));
	free(j);
	maptbl_stats_acc_free(m);
	maptbl_stats_acc_free(b);
	maptbl_stats_acc_free(a);
}

static void test_file(void **state)
{
	char dir[] = "/tmp/maptbl-stats-XXXXXX", path[64];
	struct maptbl_file_stats f;
	static char buf[65536];
	int fd, dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	fd = openat(dfd, "f", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 1 << 20), (ssize_t)sizeof(buf));
	assert_int_equal(fsync(fd), 0);
	close(fd);
	assert_int_equal(maptbl_stats_file(dfd, "f", 0, &f), 0);
	assert_int_equal(f.size, (1 << 20) + sizeof(buf));
	if (f.records) { /* a filesystem with FIEMAP */
		assert_true(f.extents >= 1);
		assert_true(f.holes >= 1); /* the first MiB */
		assert_true(f.table_depth >= 1);
		assert_true(f.table_bytes >= 8192);
	}
	assert_int_equal(maptbl_stats_file(dfd, ".", 0, &f), -EINVAL);
	assert_int_equal(maptbl_stats_file(dfd, "nothing", 0, &f), -ENOENT);
	snprintf(path, sizeof(path), "%s/f", dir);
	unlink(path);
	close(dfd);
	rmdir(dir);
}

static void count_cb(void *ctx, const struct maptbl_file_stats *f)
{
	unsigned *n = ctx;

	assert_non_null(f->path);
	(*n)++;
}

/* A nested tree walked with 1 and 4 threads gives the same accumulator. */
static void test_scan(void **state)
{
	char dir[] = "/tmp/maptbl-scan-XXXXXX", p[128], *j1 = NULL, *j4;
	struct maptbl_scan_opts so;
	struct maptbl_stats_summary s;
	unsigned i, t, seen;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "%s/d%u", dir, i % 5);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/d%u/e%u", dir, i % 5, i % 3);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/d%u/e%u/f%u", dir, i % 5, i % 3, i);
		fd = open(p, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, p, i * 3), (ssize_t)(i * 3));
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/d0/link", dir);
	assert_int_equal(symlink("e0", p), 0);
	for (t = 1; t <= 8; t += t % 4 ? 3 : 1) { /* 1, 4 threads: io_uring; 5, 8: plain calls */
		struct maptbl_stats_acc *a = new_acc(5);

		assert_int_equal(maptbl_scan_opts_init(&so, sizeof(so)), 0);
		so.threads = t > 4 ? t - 4 : t;
		so.no_uring = t > 4;
		so.per_file = count_cb;
		so.ctx = &seen;
		seen = 0;
		assert_int_equal(maptbl_stats_scan(a, dir, &so), 0);
		assert_int_equal(seen, 40);
		assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
		assert_int_equal(s.files, 40);
		assert_int_equal(s.bytes, 3 * 39 * 40 / 2);
		assert_int_equal(maptbl_stats_acc_nr_errors(a), 0);
		j4 = json_of(a);
		if (j1)
			assert_string_equal(j1, j4);
		free(j1);
		j1 = j4;
		maptbl_stats_acc_free(a);
	}
	free(j1);
	{
		struct maptbl_stats_acc *a = new_acc(5);

		snprintf(p, sizeof(p), "%s/nothing", dir);
		assert_int_equal(maptbl_stats_scan(a, p, NULL), -ENOENT);
		/* A regular file as the root. */
		snprintf(p, sizeof(p), "%s/d1/e1/f1", dir);
		assert_int_equal(maptbl_stats_scan(a, p, NULL), 0);
		assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
		assert_int_equal(s.files, 1);
		/* 0.1's opts struct (up to progress_ctx, before no_uring) is taken; a smaller one,
		 * or unknown non-zero bytes past ours, is refused. */
		assert_int_equal(maptbl_scan_opts_init(&so, sizeof(so)), 0);
		so.sz = offsetof(struct maptbl_scan_opts, no_uring);
		assert_int_equal(maptbl_stats_scan(a, dir, &so), 0);
		so.sz = offsetof(struct maptbl_scan_opts, no_uring) - 8;
		assert_int_equal(maptbl_stats_scan(a, dir, &so), -EINVAL);
		{
			struct { struct maptbl_scan_opts o; uint64_t more; } big;

			assert_int_equal(maptbl_scan_opts_init(&big.o, sizeof(big)), 0);
			assert_int_equal(maptbl_stats_scan(a, dir, &big.o), 0);
			big.more = 1;
			assert_int_equal(maptbl_stats_scan(a, dir, &big.o), -EINVAL);
		}
		maptbl_stats_acc_free(a);
	}
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
}

#define VANISH_FILES 40

struct vanish {
	char dir[64];
	unsigned calls;
};

/* The first file measured removes every other file of its directory: readdir() has already
 * returned their names (one getdents batch), so the walk meets the ones it has not opened yet
 * vanished. */
static void vanish_cb(void *ctx, const struct maptbl_file_stats *f)
{
	struct vanish *v = ctx;
	char p[128];
	unsigned i;

	if (v->calls++)
		return;
	for (i = 0; i < VANISH_FILES; i++) {
		snprintf(p, sizeof(p), "%s/f%02u", v->dir, i);
		if (strcmp(strrchr(f->path, '/'), strrchr(p, '/')))
			assert_int_equal(unlink(p), 0);
	}
}

/* Whether this process may use io_uring (a kernel with it, not disabled, no seccomp filter). */
static bool have_uring(void)
{
	struct io_uring r;

	if (io_uring_queue_init(4, &r, 0))
		return false;
	io_uring_queue_exit(&r);
	return true;
}

/*
 * Files that vanish mid-walk are counted as errors with their reason; the walk finishes. With
 * plain calls every file is opened just before it is measured: 1 measured, the rest vanished.
 * With io_uring the first batch (32 names) is open before the first is measured: those 32 are
 * measured (an open file outlives its name), the 8 names of the next batch have vanished.
 */
static void test_scan_vanished(void **state)
{
	unsigned mode;

	(void)state;
	for (mode = 0; mode < 2; mode++) {
		struct vanish v = { .dir = "/var/tmp/maptbl-vanish-XXXXXX" };
		struct maptbl_scan_opts so;
		struct maptbl_stats_summary s;
		struct maptbl_stats_error e;
		struct maptbl_stats_acc *a = new_acc(5);
		bool batched = !mode && have_uring();
		uint64_t want = batched ? 32 : 1;
		char p[128];
		unsigned i;
		int fd;

		assert_non_null(mkdtemp(v.dir));
		for (i = 0; i < VANISH_FILES; i++) {
			snprintf(p, sizeof(p), "%s/f%02u", v.dir, i);
			fd = open(p, O_WRONLY | O_CREAT, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write(fd, p, 10), 10);
			close(fd);
		}
		assert_int_equal(maptbl_scan_opts_init(&so, sizeof(so)), 0);
		so.threads = 1;
		so.per_file = vanish_cb;
		so.ctx = &v;
		so.no_uring = mode == 1;
		assert_int_equal(maptbl_stats_scan(a, v.dir, &so), 0);
		assert_int_equal(maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
		if (v.calls) { /* a filesystem with FIEMAP: the first file was measured */
			assert_int_equal(s.files, want);
			assert_int_equal(maptbl_stats_acc_nr_errors(a), VANISH_FILES - want);
			assert_int_equal(maptbl_stats_acc_nr_error_reasons(a), 1);
			assert_int_equal(maptbl_stats_acc_error_reason(a, 0, &e), 0);
			assert_int_equal(e.err, ENOENT);
			assert_int_equal(e.count, VANISH_FILES - want);
			assert_non_null(strstr(e.example, v.dir));
		}
		maptbl_stats_acc_free(a);
		snprintf(p, sizeof(p), "rm -rf '%s'", v.dir);
		assert_int_equal(system(p), 0);
	}
}

/* Merges @a into @m through @a's JSON. */
static void merge_json(struct maptbl_stats_acc *m, const struct maptbl_stats_acc *a)
{
	struct maptbl_stats_acc *b;
	char *j = json_of(a);

	assert_int_equal(maptbl_stats_acc_from_json(j, strlen(j), &b), 0);
	free(j);
	assert_int_equal(maptbl_stats_acc_merge(m, b), 0);
	maptbl_stats_acc_free(b);
}

/*
 * This used to drop btrfs' compressed, inline and disk-extent counts: the accumulator had no
 * place for them. Now they are summed, counted per file, merged, and in the JSON only when
 * non-zero (another filesystem's output, or an older one, reads as 0).
 */
static void test_btrfs_counts_merge(void **state)
{
	struct maptbl_stats_acc *bt = new_acc(3), *plain = new_acc(3), *m = new_acc(3), *b;
	struct maptbl_stats_summary s;
	char path[64], *j;
	unsigned i;

	(void)state;
	for (i = 0; i < 50; i++) {
		struct maptbl_file_stats f = rnd_file(i, path, sizeof(path));

		assert_int_equal(maptbl_stats_acc_add(plain, &f), 0);
		f.compressed = i % 5 == 0 ? 16 : 0; /* 10 files, 160 records */
		f.inline_extents = i % 10 == 1;	    /* 5 files */
		f.disk_extents = 2;		    /* 100 */
		assert_int_equal(maptbl_stats_acc_add(bt, &f), 0);
	}
	j = json_of(plain);
	assert_null(strstr(j, "compressed"));
	assert_null(strstr(j, "inline_extents"));
	assert_null(strstr(j, "disk_extents"));
	free(j);
	j = json_of(bt);
	assert_non_null(strstr(j, "\"files_compressed\": 10"));
	free(j);

	merge_json(m, plain);
	merge_json(m, bt);
	assert_int_equal(maptbl_stats_acc_summary(m, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
	assert_int_equal(s.files, 100);
	assert_int_equal(s.compressed, 160);
	assert_int_equal(s.files_compressed, 10);
	assert_int_equal(s.inline_extents, 5);
	assert_int_equal(s.files_inline, 5);
	assert_int_equal(s.disk_extents, 100);
	/* Merged with itself over JSON: exact, not averaged. */
	merge_json(m, m);
	assert_int_equal(maptbl_stats_acc_summary(m, MAPTBL_STATS_ALL, &s, sizeof(s)), 0);
	assert_int_equal(s.compressed, 320);
	assert_int_equal(s.files_inline, 10);
	/* A negative count is refused as any other: every "disk_extents" value's first digit
	 * becomes a minus. */
	j = json_of(bt);
	for (char *q = j; (q = strstr(q, "\"disk_extents\": ")); q++)
		q[strlen("\"disk_extents\": ")] = '-';
	assert_int_equal(maptbl_stats_acc_from_json(j, strlen(j), &b), -EBADMSG);
	free(j);
	maptbl_stats_acc_free(m);
	maptbl_stats_acc_free(plain);
	maptbl_stats_acc_free(bt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles),  cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_merge_and_json), cmocka_unit_test(test_top),
		cmocka_unit_test(test_shares_and_layout), cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_map_bytes), cmocka_unit_test(test_btrfs_counts_merge),
		cmocka_unit_test(test_file), cmocka_unit_test(test_scan),
		cmocka_unit_test(test_scan_vanished),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
