/* SPDX-License-Identifier: MIT */
/*
 * stats.c - extents-per-file statistics (maptbl/stats.h): the accumulator, its JSON form, the
 * per-file FIEMAP measurement and the parallel directory walk.
 *
 * The accumulator keeps, per size class, plain sums and a sorted value->count map of extents per
 * file; histograms and percentiles are derived from the map, so merging two accumulators (or
 * their JSON) is exact. The top list is a bounded min-heap ordered by (extents, reverse path).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>
#include <linux/btrfs.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include <jansson.h>
#include <liburing.h>

#include <maptbl/stats.h>

#include "internal.h"

#define DEFAULT_TOP 10
#define JSON_FORMAT 1

struct vc {
	uint64_t value, count, bytes; /* bytes: st_size summed over those files */
};

struct sumry {
	uint64_t files, bytes, blocks, extents, records, holes, unwritten, shared;
	uint64_t multi_files, multi_bytes, pred_blocks, breaks;
	uint64_t files_holes, files_unwritten, files_shared, table_bytes, table_nodes;
	/* btrfs (0 elsewhere): */
	uint64_t compressed, inline_extents, disk_extents, files_compressed, files_inline;
	struct vc *map; /* sorted by value */
	size_t nmap, cap;
};

struct top {
	char *path;
	uint64_t extents, size;
};

struct errent {
	int err;
	uint64_t count;
	char *example;
};

struct maptbl_stats_acc {
	uint32_t top_n;
	struct sumry cls[MAPTBL_STATS_CLASSES];
	uint64_t depths[MAPTBL_STATS_DEPTHS];
	struct top *top; /* min-heap of top_n */
	size_t ntop;
	struct errent *errs; /* sorted by err */
	size_t nerrs;
	bool no_map_bytes; /* read from a JSON whose value map has no bytes: the maps' bytes are 0 */
};

/* ---- options ---- */

unsigned mtfs_threads(uint32_t asked)
{
	long c = asked ? (long)asked : sysconf(_SC_NPROCESSORS_ONLN);

	return c <= 0 ? 1 : c > 256 ? 256 : (unsigned)c;
}

int mtfs_opts_copy(void *dst, size_t known, size_t min, const void *opts)
{
	size_t sz, i;

	if (!opts)
		return 0;
	memcpy(&sz, opts, sizeof(sz));
	if (sz < min) /* smaller than the first release's struct: a bad sz */
		return -EINVAL;
	for (i = known; i < sz; i++)
		if (((const uint8_t *)opts)[i])
			return -EINVAL;
	memcpy(dst, opts, sz < known ? sz : known);
	((size_t *)dst)[0] = known;
	return 0;
}

MAPTBL_API int maptbl_stats_opts_init(struct maptbl_stats_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(size_t))
		return -EINVAL;
	memset(opts, 0, sz);
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_stats_opts) == 16, "stats opts changed");
	return 0;
}

MAPTBL_API int maptbl_scan_opts_init(struct maptbl_scan_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(size_t))
		return -EINVAL;
	memset(opts, 0, sz);
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_scan_opts) == 56, "scan opts changed");
	return 0;
}

/* ---- classes, buckets ---- */

MAPTBL_API int maptbl_stats_size_class(uint64_t size)
{
	static const uint64_t lim[] = { 1, 4096, 65536, 1 << 20, 16 << 20, 256 << 20,
					UINT64_C(4) << 30 };
	int i;

	for (i = 0; i < 7; i++)
		if (size < lim[i])
			return i;
	return 7;
}

MAPTBL_API const char *maptbl_stats_size_class_name(int c)
{
	static const char *const n[] = { "0", "<4K", "<64K", "<1M", "<16M", "<256M", "<4G", ">=4G" };

	return c >= 0 && c < MAPTBL_STATS_CLASSES ? n[c] : NULL;
}

static unsigned bucket_of(uint64_t v)
{
	if (v <= 1)
		return (unsigned)v;
	return 1 + (64 - (unsigned)__builtin_clzll(v - 1)); /* 1 + ceil(log2 v) */
}

MAPTBL_API int maptbl_stats_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
	if (idx >= MAPTBL_STATS_BUCKETS || !lo || !hi)
		return -EINVAL;
	if (idx <= 1) {
		*lo = *hi = idx;
		return 0;
	}
	*lo = (UINT64_C(1) << (idx - 2)) + 1;
	*hi = idx - 1 >= 64 ? UINT64_MAX : UINT64_C(1) << (idx - 1);
	return 0;
}

/* ---- the value map ---- */

static int map_add(struct sumry *s, uint64_t value, uint64_t count, uint64_t bytes)
{
	size_t lo = 0, hi = s->nmap;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->map[mid].value < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nmap && s->map[lo].value == value) {
		s->map[lo].count += count;
		s->map[lo].bytes += bytes;
		return 0;
	}
	if (s->nmap == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct vc *m = realloc(s->map, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		s->map = m;
		s->cap = cap;
	}
	memmove(&s->map[lo + 1], &s->map[lo], (s->nmap - lo) * sizeof(*s->map));
	s->map[lo].value = value;
	s->map[lo].count = count;
	s->map[lo].bytes = bytes;
	s->nmap++;
	return 0;
}

/* Sums of @b into @a (not the map). */
static void sum_add(struct sumry *a, const struct sumry *b)
{
	a->files += b->files;
	a->bytes += b->bytes;
	a->blocks += b->blocks;
	a->extents += b->extents;
	a->records += b->records;
	a->holes += b->holes;
	a->unwritten += b->unwritten;
	a->shared += b->shared;
	a->multi_files += b->multi_files;
	a->multi_bytes += b->multi_bytes;
	a->pred_blocks += b->pred_blocks;
	a->breaks += b->breaks;
	a->files_holes += b->files_holes;
	a->files_unwritten += b->files_unwritten;
	a->files_shared += b->files_shared;
	a->table_bytes += b->table_bytes;
	a->table_nodes += b->table_nodes;
	a->compressed += b->compressed;
	a->inline_extents += b->inline_extents;
	a->disk_extents += b->disk_extents;
	a->files_compressed += b->files_compressed;
	a->files_inline += b->files_inline;
}

/* ---- top list: a min-heap, the root is the least fragmented kept ---- */

/*
 * A total order, so that the list comes out the same whatever order its entries were offered or
 * read in: at equal extents the earlier path ranks higher, at an equal path (merged inputs may
 * repeat one) the larger file. This used to stop at the path: two such entries compared equal,
 * and a merge's JSON did not read back to the same JSON (tests/fuzz/regress/stats).
 */
static int top_less(const struct top *a, const struct top *b)
{
	int c;

	if (a->extents != b->extents)
		return a->extents < b->extents;
	if ((c = strcmp(a->path, b->path)))
		return c > 0;
	return a->size < b->size;
}

static void heap_down(struct top *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct top t;

		if (l < n && top_less(&h[l], &h[m]))
			m = l;
		if (r < n && top_less(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_up(struct top *h, size_t i)
{
	while (i) {
		size_t p = (i - 1) / 2;
		struct top t;

		if (!top_less(&h[i], &h[p]))
			return;
		t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static int top_offer(struct maptbl_stats_acc *a, const char *path, uint64_t extents,
		     uint64_t size)
{
	struct top cand = { (char *)(path ? path : ""), extents, size };
	char *copy;

	if (!a->top_n)
		return 0;
	if (a->ntop == a->top_n && !top_less(&a->top[0], &cand))
		return 0;
	copy = strdup(cand.path);
	if (!copy)
		return -ENOMEM;
	cand.path = copy;
	if (a->ntop < a->top_n) {
		a->top[a->ntop] = cand;
		heap_up(a->top, a->ntop++);
	} else {
		free(a->top[0].path);
		a->top[0] = cand;
		heap_down(a->top, a->ntop, 0);
	}
	return 0;
}

/* ---- the accumulator ---- */

MAPTBL_API int maptbl_stats_acc_new(const struct maptbl_stats_opts *opts,
				    struct maptbl_stats_acc **out)
{
	struct maptbl_stats_opts o;
	struct maptbl_stats_acc *a;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	maptbl_stats_opts_init(&o, sizeof(o));
	err = mtfs_opts_copy(&o, sizeof(o), sizeof(o), opts);
	if (err || o.reserved)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->top_n = o.top_n ? o.top_n : DEFAULT_TOP;
	a->top = calloc(a->top_n, sizeof(*a->top));
	if (!a->top) {
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

MAPTBL_API void maptbl_stats_acc_free(struct maptbl_stats_acc *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < MAPTBL_STATS_CLASSES; i++)
		free(a->cls[i].map);
	for (i = 0; i < a->ntop; i++)
		free(a->top[i].path);
	for (i = 0; i < a->nerrs; i++)
		free(a->errs[i].example);
	free(a->top);
	free(a->errs);
	free(a);
}

int mtfs_stats_top_offer(struct maptbl_stats_acc *a, const char *path, uint64_t extents,
			 uint64_t size)
{
	return top_offer(a, path, extents, size);
}

static int acc_add(struct maptbl_stats_acc *a, const struct maptbl_file_stats *f, bool top)
{
	struct sumry *s;
	int err;

	if (!a || !f || f->table_depth >= MAPTBL_STATS_DEPTHS)
		return -EINVAL;
	s = &a->cls[maptbl_stats_size_class(f->size)];
	err = map_add(s, f->extents, 1, f->size);
	if (err)
		return err;
	if (top) {
		err = top_offer(a, f->path, f->extents, f->size);
		if (err)
			return err;
	}
	s->files++;
	s->bytes += f->size;
	s->blocks += f->blocks;
	s->extents += f->extents;
	s->records += f->records;
	s->holes += f->holes;
	s->unwritten += f->unwritten;
	s->shared += f->shared;
	if (f->extents > 1) {
		s->multi_files++;
		s->multi_bytes += f->size;
	}
	if (f->blocks) {
		s->pred_blocks += f->blocks - 1;
		s->breaks += f->extents ? f->extents - 1 : 0;
	}
	s->files_holes += !!f->holes;
	s->files_unwritten += !!f->unwritten;
	s->files_shared += !!f->shared;
	s->table_bytes += f->table_bytes;
	s->table_nodes += f->table_nodes;
	s->compressed += f->compressed;
	s->inline_extents += f->inline_extents;
	s->disk_extents += f->disk_extents;
	s->files_compressed += !!f->compressed;
	s->files_inline += !!f->inline_extents;
	a->depths[f->table_depth]++;
	return 0;
}

MAPTBL_API int maptbl_stats_acc_add(struct maptbl_stats_acc *a, const struct maptbl_file_stats *f)
{
	return acc_add(a, f, true);
}

int mtfs_stats_add_untopped(struct maptbl_stats_acc *a, const struct maptbl_file_stats *f)
{
	return acc_add(a, f, false);
}

static int err_add(struct maptbl_stats_acc *a, int e, uint64_t count, const char *path)
{
	size_t i;
	struct errent *n;

	for (i = 0; i < a->nerrs && a->errs[i].err < e; i++)
		;
	if (i < a->nerrs && a->errs[i].err == e) {
		a->errs[i].count += count;
		if (!a->errs[i].example && path)
			a->errs[i].example = strdup(path);
		return 0;
	}
	n = realloc(a->errs, (a->nerrs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->errs = n;
	memmove(&n[i + 1], &n[i], (a->nerrs - i) * sizeof(*n));
	n[i].err = e;
	n[i].count = count;
	n[i].example = path ? strdup(path) : NULL;
	a->nerrs++;
	return 0;
}

MAPTBL_API int maptbl_stats_acc_error(struct maptbl_stats_acc *a, const char *path, int e)
{
	if (!a || !e)
		return -EINVAL;
	return err_add(a, e < 0 ? -e : e, 1, path);
}

MAPTBL_API int maptbl_stats_acc_merge(struct maptbl_stats_acc *d, const struct maptbl_stats_acc *s)
{
	size_t c, i;
	int err;

	if (!d || !s || d == s)
		return -EINVAL;
	for (c = 0; c < MAPTBL_STATS_CLASSES; c++) {
		for (i = 0; i < s->cls[c].nmap; i++) {
			err = map_add(&d->cls[c], s->cls[c].map[i].value, s->cls[c].map[i].count,
				      s->cls[c].map[i].bytes);
			if (err)
				return err;
		}
		sum_add(&d->cls[c], &s->cls[c]);
	}
	d->no_map_bytes |= s->no_map_bytes;
	for (i = 0; i < MAPTBL_STATS_DEPTHS; i++)
		d->depths[i] += s->depths[i];
	for (i = 0; i < s->ntop; i++) {
		err = top_offer(d, s->top[i].path, s->top[i].extents, s->top[i].size);
		if (err)
			return err;
	}
	for (i = 0; i < s->nerrs; i++) {
		err = err_add(d, s->errs[i].err, s->errs[i].count, s->errs[i].example);
		if (err)
			return err;
	}
	return 0;
}

/* ---- getters ---- */

/* The class (or all classes' sum) with its map merged, into @t (which owns a new map). */
static int view(const struct maptbl_stats_acc *a, int c, struct sumry *t)
{
	int i;
	size_t j;

	memset(t, 0, sizeof(*t));
	if (!a || c < MAPTBL_STATS_ALL || c >= MAPTBL_STATS_CLASSES)
		return -EINVAL;
	for (i = 0; i < MAPTBL_STATS_CLASSES; i++) {
		if (c != MAPTBL_STATS_ALL && c != i)
			continue;
		sum_add(t, &a->cls[i]);
		for (j = 0; j < a->cls[i].nmap; j++)
			if (map_add(t, a->cls[i].map[j].value, a->cls[i].map[j].count,
				    a->cls[i].map[j].bytes)) {
				free(t->map);
				return -ENOMEM;
			}
	}
	return 0;
}

static uint64_t quantile(const struct sumry *t, uint64_t num, uint64_t den)
{
	uint64_t rank, seen = 0;
	size_t i;

	if (!t->files)
		return 0;
	/* ceil(files * num / den) without overflow for files < 2^53 or so; at least 1. */
	rank = (uint64_t)(((unsigned __int128)t->files * num + den - 1) / den);
	if (!rank)
		rank = 1;
	for (i = 0; i < t->nmap; i++) {
		seen += t->map[i].count;
		if (seen >= rank)
			return t->map[i].value;
	}
	return t->nmap ? t->map[t->nmap - 1].value : 0;
}

MAPTBL_API int maptbl_stats_acc_quantile(const struct maptbl_stats_acc *a, int c, uint64_t num,
					 uint64_t den, uint64_t *out)
{
	struct sumry t;
	int err;

	if (!out || !den || num > den)
		return -EINVAL;
	err = view(a, c, &t);
	if (err)
		return err;
	*out = quantile(&t, num, den);
	free(t.map);
	return 0;
}

MAPTBL_API int maptbl_stats_acc_summary(const struct maptbl_stats_acc *a, int c,
					struct maptbl_stats_summary *out, size_t sz)
{
	struct maptbl_stats_summary s;
	struct sumry t;
	int err;

	if (!out || sz < sizeof(uint64_t))
		return -EINVAL;
	err = view(a, c, &t);
	if (err)
		return err;
	memset(&s, 0, sizeof(s));
	s.files = t.files;
	s.bytes = t.bytes;
	s.blocks = t.blocks;
	s.extents = t.extents;
	s.records = t.records;
	s.holes = t.holes;
	s.unwritten = t.unwritten;
	s.shared = t.shared;
	s.multi_files = t.multi_files;
	s.multi_bytes = t.multi_bytes;
	s.pred_blocks = t.pred_blocks;
	s.breaks = t.breaks;
	s.files_holes = t.files_holes;
	s.files_unwritten = t.files_unwritten;
	s.files_shared = t.files_shared;
	s.p50 = quantile(&t, 50, 100);
	s.p90 = quantile(&t, 90, 100);
	s.p99 = quantile(&t, 99, 100);
	s.p999 = quantile(&t, 999, 1000);
	s.max = t.nmap ? t.map[t.nmap - 1].value : 0;
	s.table_bytes = t.table_bytes;
	s.table_nodes = t.table_nodes;
	s.compressed = t.compressed;
	s.inline_extents = t.inline_extents;
	s.disk_extents = t.disk_extents;
	s.files_compressed = t.files_compressed;
	s.files_inline = t.files_inline;
	s.layout_score = t.pred_blocks ? 1.0 - (double)t.breaks / (double)t.pred_blocks : 1.0;
	free(t.map);
	memset(out, 0, sz);
	memcpy(out, &s, sz < sizeof(s) ? sz : sizeof(s));
	return 0;
}

MAPTBL_API int maptbl_stats_acc_histogram(const struct maptbl_stats_acc *a, int c,
					  uint64_t counts[MAPTBL_STATS_BUCKETS])
{
	int i, n = 0;
	size_t j;

	if (!a || !counts || c < MAPTBL_STATS_ALL || c >= MAPTBL_STATS_CLASSES)
		return -EINVAL;
	memset(counts, 0, MAPTBL_STATS_BUCKETS * sizeof(*counts));
	for (i = 0; i < MAPTBL_STATS_CLASSES; i++) {
		if (c != MAPTBL_STATS_ALL && c != i)
			continue;
		for (j = 0; j < a->cls[i].nmap; j++) {
			unsigned b = bucket_of(a->cls[i].map[j].value);

			counts[b] += a->cls[i].map[j].count;
			if ((int)b + 1 > n)
				n = (int)b + 1;
		}
	}
	return n;
}

MAPTBL_API int maptbl_stats_acc_depths(const struct maptbl_stats_acc *a,
				       uint64_t counts[MAPTBL_STATS_DEPTHS])
{
	if (!a || !counts)
		return -EINVAL;
	memcpy(counts, a->depths, sizeof(a->depths));
	return 0;
}

/* Ascending by rank: a sorted ascending array is also a valid min-heap. */
static int cmp_top(const void *x, const void *y)
{
	const struct top *a = x, *b = y;

	return top_less(a, b) ? -1 : top_less(b, a) ? 1 : 0;
}

MAPTBL_API uint32_t maptbl_stats_acc_top_n(const struct maptbl_stats_acc *a)
{
	return a ? a->top_n : 0;
}

MAPTBL_API size_t maptbl_stats_acc_nr_top(const struct maptbl_stats_acc *a)
{
	return a ? a->ntop : 0;
}

MAPTBL_API int maptbl_stats_acc_top(const struct maptbl_stats_acc *a, size_t idx,
				    struct maptbl_stats_top *out)
{
	struct maptbl_stats_acc *m = (struct maptbl_stats_acc *)a;
	const struct top *t;

	if (!a || !out || idx >= a->ntop)
		return -EINVAL;
	/* Sorting keeps the heap valid (and the logical state unchanged). */
	qsort(m->top, m->ntop, sizeof(*m->top), cmp_top);
	t = &a->top[a->ntop - 1 - idx];
	out->path = t->path;
	out->extents = t->extents;
	out->size = t->size;
	return 0;
}

MAPTBL_API uint64_t maptbl_stats_acc_nr_errors(const struct maptbl_stats_acc *a)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; a && i < a->nerrs; i++)
		n += a->errs[i].count;
	return n;
}

MAPTBL_API size_t maptbl_stats_acc_nr_error_reasons(const struct maptbl_stats_acc *a)
{
	return a ? a->nerrs : 0;
}

MAPTBL_API int maptbl_stats_acc_error_reason(const struct maptbl_stats_acc *a, size_t idx,
					     struct maptbl_stats_error *out)
{
	if (!a || !out || idx >= a->nerrs)
		return -EINVAL;
	out->err = a->errs[idx].err;
	out->reserved = 0;
	out->count = a->errs[idx].count;
	out->example = a->errs[idx].example;
	return 0;
}

/* ---- JSON ---- */

#define SUM_FIELDS(X)                                                                              \
	X(files) X(bytes) X(blocks) X(extents) X(records) X(holes) X(unwritten) X(shared)          \
	X(multi_files) X(multi_bytes) X(pred_blocks) X(breaks) X(files_holes) X(files_unwritten)   \
	X(files_shared) X(table_bytes) X(table_nodes)

/* btrfs' counts: written only when non-zero (the output of other filesystems stays as it was),
 * read as 0 when missing (older outputs, other filesystems). */
#define BTRFS_FIELDS(X) X(compressed) X(inline_extents) X(disk_extents) X(files_compressed) X(files_inline)

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* A path as a JSON string: bytes that are not UTF-8 become '?' (paths are names, not data). */
static json_t *jpath(const char *p)
{
	json_t *j = json_string(p);
	char *c;
	size_t i;

	if (j)
		return j;
	c = strdup(p);
	if (!c)
		return NULL;
	for (i = 0; c[i]; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	j = json_string(c);
	free(c);
	return j;
}

/* Derived numbers, for readers; from_json ignores them. */
static int add_derived(const struct maptbl_stats_acc *a, int c, json_t *o)
{
	struct maptbl_stats_summary s;
	uint64_t h[MAPTBL_STATS_BUCKETS];
	json_t *arr;
	int n, i;

	if (maptbl_stats_acc_summary(a, c, &s, sizeof(s)))
		return -ENOMEM;
	n = maptbl_stats_acc_histogram(a, c, h);
	arr = json_array();
	for (i = 0; i < n; i++) {
		uint64_t lo, hi;

		maptbl_stats_bucket_range((unsigned)i, &lo, &hi);
		json_array_append_new(arr, json_pack("{s:o,s:o,s:o}", "min", jint(lo), "max",
						     jint(hi), "files", jint(h[i])));
	}
	json_object_set_new(o, "histogram", arr);
	json_object_set_new(o, "percentiles",
			    json_pack("{s:o,s:o,s:o,s:o,s:o}", "p50", jint(s.p50), "p90",
				      jint(s.p90), "p99", jint(s.p99), "p99.9", jint(s.p999), "max",
				      jint(s.max)));
	json_object_set_new(o, "layout_score", json_real(s.layout_score));
	return 0;
}

static json_t *class_json(const struct maptbl_stats_acc *a, int c)
{
	const struct sumry *s = &a->cls[c];
	json_t *o = json_object(), *m = json_array();
	size_t i;

	json_object_set_new(o, "class", json_string(maptbl_stats_size_class_name(c)));
#define X(f) json_object_set_new(o, #f, jint(s->f));
	SUM_FIELDS(X)
#undef X
#define X(f)                                                                                       \
	if (s->f)                                                                                  \
		json_object_set_new(o, #f, jint(s->f));
	BTRFS_FIELDS(X)
#undef X
	for (i = 0; i < s->nmap; i++)
		json_array_append_new(m, a->no_map_bytes
						 ? json_pack("[o,o]", jint(s->map[i].value),
							     jint(s->map[i].count))
						 : json_pack("[o,o,o]", jint(s->map[i].value),
							     jint(s->map[i].count),
							     jint(s->map[i].bytes)));
	json_object_set_new(o, "extents_per_file", m);
	add_derived(a, c, o);
	return o;
}

MAPTBL_API int maptbl_stats_acc_to_json(const struct maptbl_stats_acc *a, char **out)
{
	json_t *root, *cls, *tops, *errs, *depths, *all;
	size_t i;
	int c;

	if (!a || !out)
		return -EINVAL;
	*out = NULL;
	root = json_object();
	json_object_set_new(root, "maptbl_stats", json_integer(JSON_FORMAT));
	json_object_set_new(root, "top_n", jint(a->top_n));
	all = json_object();
	{
		struct maptbl_stats_summary s;

		maptbl_stats_acc_summary(a, MAPTBL_STATS_ALL, &s, sizeof(s));
#define X(f) json_object_set_new(all, #f, jint(s.f));
		SUM_FIELDS(X)
#undef X
#define X(f)                                                                                       \
	if (s.f)                                                                                   \
		json_object_set_new(all, #f, jint(s.f));
		BTRFS_FIELDS(X)
#undef X
		json_object_set_new(all, "errors", jint(maptbl_stats_acc_nr_errors(a)));
		add_derived(a, MAPTBL_STATS_ALL, all);
	}
	json_object_set_new(root, "summary", all);
	cls = json_array();
	for (c = 0; c < MAPTBL_STATS_CLASSES; c++)
		json_array_append_new(cls, class_json(a, c));
	json_object_set_new(root, "classes", cls);
	depths = json_array();
	for (i = 0; i < MAPTBL_STATS_DEPTHS; i++)
		json_array_append_new(depths, jint(a->depths[i]));
	json_object_set_new(root, "table_depths", depths);
	tops = json_array();
	for (i = 0; i < a->ntop; i++) {
		struct maptbl_stats_top t;

		maptbl_stats_acc_top(a, i, &t);
		json_array_append_new(tops, json_pack("{s:o,s:o,s:o}", "path", jpath(t.path), "extents",
						      jint(t.extents), "size", jint(t.size)));
	}
	json_object_set_new(root, "top", tops);
	errs = json_array();
	for (i = 0; i < a->nerrs; i++) {
		json_t *e = json_pack("{s:i,s:s,s:o}", "errno", a->errs[i].err, "reason",
				      strerror(a->errs[i].err), "count", jint(a->errs[i].count));

		if (a->errs[i].example)
			json_object_set_new(e, "example", jpath(a->errs[i].example));
		json_array_append_new(errs, e);
	}
	json_object_set_new(root, "errors", errs);
	*out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return *out ? 0 : -ENOMEM;
}

/* A non-negative integer member, or -EBADMSG. */
static int get_u64(json_t *o, const char *key, uint64_t *v)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: \"%s\" is missing or not a count", key);
		return -EBADMSG;
	}
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

/* A class; *no_bytes is set when a pair of its value map has no bytes (an older output). */
static int class_from_json(struct sumry *s, json_t *o, bool *no_bytes)
{
	json_t *m, *p;
	uint64_t files = 0, bytes = 0;
	bool all_bytes = true;
	size_t i;
	int err;

	if (!json_is_object(o)) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: a size class is not an object");
		return -EBADMSG;
	}
#define X(f)                                                                                       \
	if ((err = get_u64(o, #f, &s->f)))                                                          \
		return err;
	SUM_FIELDS(X)
#undef X
#define X(f)                                                                                       \
	if (json_object_get(o, #f) && (err = get_u64(o, #f, &s->f)))                                \
		return err;
	BTRFS_FIELDS(X)
#undef X
	m = json_object_get(o, "extents_per_file");
	if (!json_is_array(m)) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: \"extents_per_file\" is not an array");
		return -EBADMSG;
	}
	json_array_foreach(m, i, p) {
		json_t *v = json_array_get(p, 0), *c = json_array_get(p, 1), *b = json_array_get(p, 2);
		size_t n = json_array_size(p);

		if ((n != 2 && n != 3) || !json_is_integer(v) || !json_is_integer(c) ||
		    json_integer_value(v) < 0 || json_integer_value(c) <= 0 ||
		    (b && (!json_is_integer(b) || json_integer_value(b) < 0))) {
			mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: \"extents_per_file\" holds a bad "
						   "[extents, files, bytes] entry");
			return -EBADMSG;
		}
		err = map_add(s, (uint64_t)json_integer_value(v), (uint64_t)json_integer_value(c),
			      b ? (uint64_t)json_integer_value(b) : 0);
		if (err)
			return err;
		files += (uint64_t)json_integer_value(c);
		bytes += b ? (uint64_t)json_integer_value(b) : 0;
		all_bytes &= b != NULL;
	}
	if (!all_bytes)
		*no_bytes = true;
	if (all_bytes && bytes != s->bytes) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: extents_per_file counts %llu bytes, not %llu",
			 (unsigned long long)bytes, (unsigned long long)s->bytes);
		return -EBADMSG;
	}
	if (files != s->files) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: extents_per_file counts %llu files, not %llu",
			 (unsigned long long)files, (unsigned long long)s->files);
		return -EBADMSG;
	}
	return 0;
}

MAPTBL_API int maptbl_stats_acc_from_json(const char *text, size_t len,
					  struct maptbl_stats_acc **out)
{
	struct maptbl_stats_opts o;
	struct maptbl_stats_acc *a = NULL;
	json_t *root, *x, *e;
	json_error_t jerr;
	const char *why = NULL;
	uint64_t top_n, v;
	size_t i;
	int err = -EBADMSG;

	if (!text || !out)
		return -EINVAL;
	*out = NULL;
	root = json_loadb(text, len, 0, &jerr);
	if (!root) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: line %d: %s", jerr.line, jerr.text);
		return -EBADMSG;
	}
	x = json_is_object(root) ? json_object_get(root, "maptbl_stats") : NULL;
	if (!json_is_integer(x)) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: not the output of maptbl stats --json");
		goto out;
	}
	if (json_integer_value(x) != JSON_FORMAT) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: format %lld, this version reads format %d",
			 (long long)json_integer_value(x), JSON_FORMAT);
		goto out;
	}
	if (get_u64(root, "top_n", &top_n) || !top_n || top_n > UINT32_MAX) {
		why = "\"top_n\" is not from 1 to 2^32 - 1";
		goto out;
	}
	maptbl_stats_opts_init(&o, sizeof(o));
	o.top_n = (uint32_t)top_n;
	err = maptbl_stats_acc_new(&o, &a);
	if (err)
		goto out;
	err = -EBADMSG;
	x = json_object_get(root, "classes");
	if (!json_is_array(x) || json_array_size(x) != MAPTBL_STATS_CLASSES) {
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: \"classes\" must hold %d classes",
			 MAPTBL_STATS_CLASSES);
		goto out;
	}
	json_array_foreach(x, i, e) {
		err = class_from_json(&a->cls[i], e, &a->no_map_bytes);
		if (err)
			goto out;
	}
	err = -EBADMSG;
	why = "\"table_depths\" is not 17 counts";
	x = json_object_get(root, "table_depths");
	if (!json_is_array(x) || json_array_size(x) != MAPTBL_STATS_DEPTHS)
		goto out;
	json_array_foreach(x, i, e) {
		if (!json_is_integer(e) || json_integer_value(e) < 0)
			goto out;
		a->depths[i] = (uint64_t)json_integer_value(e);
	}
	why = "\"top\" is malformed or longer than top_n";
	x = json_object_get(root, "top");
	if (!json_is_array(x) || json_array_size(x) > top_n)
		goto out;
	json_array_foreach(x, i, e) {
		json_t *p = json_object_get(e, "path");
		uint64_t ext, size;

		if (!json_is_string(p) || get_u64(e, "extents", &ext) || get_u64(e, "size", &size))
			goto out;
		if (top_offer(a, json_string_value(p), ext, size)) {
			err = -ENOMEM;
			goto out;
		}
	}
	why = "\"errors\" is malformed";
	x = json_object_get(root, "errors");
	if (!json_is_array(x))
		goto out;
	json_array_foreach(x, i, e) {
		json_t *p = json_object_get(e, "example");

		if (get_u64(e, "errno", &v) || !v || v > INT_MAX || get_u64(e, "count", &top_n))
			goto out;
		if (p && !json_is_string(p))
			goto out;
		if (err_add(a, (int)v, top_n, p ? json_string_value(p) : NULL)) {
			err = -ENOMEM;
			goto out;
		}
	}
	err = 0;
	*out = a;
	a = NULL;
out:
	if (err == -EBADMSG && why)
		mtfs_log(MAPTBL_LOG_ERROR, "stats JSON: %s", why);
	maptbl_stats_acc_free(a);
	json_decref(root);
	return err;
}

/* ---- one file ---- */

/*
 * Records per FIEMAP call. One call with room for records, not a count-only call
 * (fm_extent_count = 0) first: the count alone gives filefrag's extent count only for 0 or 1
 * records, and even then the summary needs the record (its length for the blocks, its offset for
 * the holes, its flags); the kernel walks the same mapping either way and a copy-out of 64
 * records is noise next to the call (bench/stats: bare loop with and without records).
 */
#define FIEMAP_BATCH 64

int mtfs_stats_measure_fd(int fd, uint64_t size, uint32_t bs, struct maptbl_file_stats *f)
{
	union {
		struct fiemap fm;
		uint8_t b[sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent)];
	} u;
	struct mtfs_count c;
	uint64_t start = 0;
	bool done = false;

	mtfs_count_init(&c, bs);
	while (!done) {
		uint32_t i;

		memset(&u.fm, 0, sizeof(u.fm));
		u.fm.fm_start = start;
		u.fm.fm_length = FIEMAP_MAX_OFFSET - start;
		u.fm.fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0)
			return errno == ENOTTY ? -EOPNOTSUPP : -errno;
		if (!u.fm.fm_mapped_extents)
			break;
		for (i = 0; i < u.fm.fm_mapped_extents; i++) {
			const struct fiemap_extent *fe = &u.fm.fm_extents[i];
			uint32_t fl = 0;

			if (fe->fe_flags & FIEMAP_EXTENT_UNWRITTEN)
				fl |= MTFS_REC_UNWRITTEN;
			if (fe->fe_flags & FIEMAP_EXTENT_SHARED)
				fl |= MTFS_REC_SHARED;
			mtfs_count_record(&c, f, fe->fe_logical, fe->fe_physical, fe->fe_length, fl);
			if (fe->fe_flags & FIEMAP_EXTENT_LAST)
				done = true;
		}
		if (u.fm.fm_mapped_extents < FIEMAP_BATCH)
			break; /* the kernel had no more (a LAST flag lost to truncation) */
		if (c.end <= start)
			break; /* no progress (records behind fm_start): never loop */
		start = c.end;
	}
	return mtfs_count_finish(&c, f, size);
}

#define FILE_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)

/* Opens @name of @dirfd read-only, with O_NOATIME where allowed. The descriptor or -errno. */
static int open_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, FILE_OPEN_FLAGS | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, FILE_OPEN_FLAGS);
	return fd < 0 ? -errno : fd;
}

/*
 * Checks and measures the open file @fd (not closed here); *st receives the file's stat.
 * BTRFS: 1 or 0 when the caller knows whether the file is on btrfs (the walk asks once per
 * filesystem), -1 to ask here. -EINVAL: not a regular file.
 */
static int stats_fd(int fd, uint32_t bs, int btrfs, struct maptbl_file_stats *out,
		    struct stat *st)
{
	struct statfs sfs;
	int err;

	memset(out, 0, sizeof(*out));
	if (fstat(fd, st))
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL;
	if (!bs) {
		int b = 0;

		if (ioctl(fd, FIGETBSZ, &b) < 0 || b <= 0)
			b = st->st_blksize > 0 ? (int)st->st_blksize : 4096;
		bs = (uint32_t)b;
	}
	out->size = (uint64_t)st->st_size;
	out->block_size = bs;
	/* btrfs: the extent items (compressed, inline, prealloc, shared), not FIEMAP. */
	err = -EPERM;
	if (btrfs < 0)
		btrfs = fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == BTRFS_SUPER_MAGIC;
	if (btrfs)
		err = mtfs_btrfs_measure(fd, (uint64_t)st->st_ino, out->size, bs, out);
	if (!err && !out->records && out->size) {
		/* Dirty data not written back yet has no extent items (delalloc): the tree search
		 * sees none, FIEMAP sees its delalloc records, as filefrag does. */
		memset(out, 0, sizeof(*out));
		out->size = (uint64_t)st->st_size;
		out->block_size = bs;
		err = -EPERM;
	}
	if (err == -EPERM) /* not btrfs, or no CAP_SYS_ADMIN for the tree search */
		err = mtfs_stats_measure_fd(fd, out->size, bs, out);
	return err;
}

/* Opens, checks and measures, as stats_fd(). */
static int stats_at(int dirfd, const char *name, uint32_t bs, int btrfs,
		    struct maptbl_file_stats *out, struct stat *st)
{
	int fd = open_file(dirfd, name), err;

	if (fd < 0) {
		memset(out, 0, sizeof(*out));
		return fd;
	}
	err = stats_fd(fd, bs, btrfs, out, st);
	close(fd);
	return err;
}

MAPTBL_API int maptbl_stats_file(int dirfd, const char *name, uint32_t block_size,
				 struct maptbl_file_stats *out)
{
	struct stat st;

	if (!name || !out)
		return -EINVAL;
	return stats_at(dirfd, name, block_size, -1, out, &st);
}

/* ---- the walk ---- */

/*
 * A directory still to read: its path (for rows, errors and the top list) and, when there was a
 * descriptor to spare, the directory already opened with openat() relative to its parent.
 */
struct dirjob {
	char *path;
	int fd; /* -1: open by path */
};

/* Queued directories that hold a descriptor, at most: the rest wait as paths, so that the walk
 * never runs a process out of descriptors (RLIMIT_NOFILE is often 1024). */
#define MAX_QUEUED_FDS 128

struct scan {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dirjob *dirs; /* a stack of directories still to read */
	size_t ndirs, cap, nfds;
	unsigned busy; /* workers reading a directory */
	int err;       /* -ENOMEM stops the walk */
	dev_t dev;
	/* btrfs: every subvolume has its own st_dev; those whose fsid is the start's are the same
	 * filesystem. Judged once per st_dev (under lock). */
	bool btrfs;
	uint8_t fsid[BTRFS_FSID_SIZE];
	struct { dev_t dev; bool same; } *devs;
	size_t ndevs;
	const struct maptbl_scan_opts *o;
	pthread_mutex_t cb_lock;
	uint64_t files, bytes; /* for opts->progress, under cb_lock */
};

struct worker {
	struct scan *s;
	struct maptbl_stats_acc *acc;
	pthread_t tid;
	int err;
	char *buf; /* the path of the entry at hand */
	size_t cap;
	uint32_t bs; /* the block size of filesystem bs_dev (0: not known yet) */
	int btrfs;   /* filesystem bs_dev is btrfs */
	dev_t bs_dev;
	struct ubatch *ub; /* NULL: files opened and closed with plain calls */
};

/* Called with s->lock held. */
static int push_dir(struct scan *s, char *path, int fd)
{
	if (s->ndirs == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct dirjob *d = realloc(s->dirs, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		s->dirs = d;
		s->cap = cap;
	}
	s->dirs[s->ndirs].path = path;
	s->dirs[s->ndirs++].fd = fd;
	s->nfds += fd >= 0;
	return 0;
}

/* w->buf = dir "/" name (no allocation once the buffer is large enough); NULL on ENOMEM. */
static char *join(struct worker *w, const char *dir, size_t dlen, const char *name)
{
	size_t b = strlen(name);
	bool slash = dlen && dir[dlen - 1] != '/';

	if (dlen + slash + b + 1 > w->cap) {
		size_t cap = (dlen + slash + b + 1) * 2;
		char *p = realloc(w->buf, cap);

		if (!p)
			return NULL;
		w->buf = p;
		w->cap = cap;
	}
	if (w->buf != dir)
		memcpy(w->buf, dir, dlen);
	if (slash)
		w->buf[dlen] = '/';
	memcpy(w->buf + dlen + slash, name, b + 1);
	return w->buf;
}

static int file_done(struct worker *w, struct maptbl_file_stats *f)
{
	const struct maptbl_scan_opts *o = w->s->o;

	if (o->per_file) {
		pthread_mutex_lock(&w->s->cb_lock);
		o->per_file(o->ctx, f);
		pthread_mutex_unlock(&w->s->cb_lock);
	}
	return maptbl_stats_acc_add(w->acc, f);
}

static int open_dir(struct dirjob *j)
{
	int fd = j->fd;

	if (fd < 0) {
		fd = open(j->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
		if (fd < 0 && errno == EPERM)
			fd = open(j->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	}
	j->fd = -1;
	return fd;
}

/* Queues subdirectory @name of the directory @fd (path @path). */
static int queue_dir(struct worker *w, int fd, const char *path, const char *name)
{
	struct scan *s = w->s;
	char *child = strdup(path);
	int cfd = -1, err;
	bool spare;

	if (!child)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	spare = s->nfds < MAX_QUEUED_FDS;
	pthread_mutex_unlock(&s->lock);
	if (spare) {
		int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;

		cfd = openat(fd, name, fl | O_NOATIME);
		if (cfd < 0 && errno == EPERM)
			cfd = openat(fd, name, fl);
		if (cfd < 0 && errno != EMFILE && errno != ENFILE) {
			err = maptbl_stats_acc_error(w->acc, child, errno);
			free(child);
			return err;
		}
	}
	pthread_mutex_lock(&s->lock);
	err = push_dir(s, child, cfd);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (err) {
		if (cfd >= 0)
			close(cfd);
		free(child);
	}
	return err;
}

/* The fsid of the btrfs filesystem of @fd; -errno. */
static int btrfs_fsid(int fd, uint8_t fsid[BTRFS_FSID_SIZE])
{
	struct btrfs_ioctl_fs_info_args fi;

	memset(&fi, 0, sizeof(fi));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) < 0)
		return -errno;
	memcpy(fsid, fi.fsid, BTRFS_FSID_SIZE);
	return 0;
}

/* Whether the directory @fd (device @dev) is on the filesystem the walk started on: the same
 * st_dev, or on btrfs another subvolume of the same filesystem (one BTRFS_IOC_FS_INFO per
 * st_dev seen). */
static bool same_fs(struct scan *s, int fd, dev_t dev)
{
	uint8_t fsid[BTRFS_FSID_SIZE];
	bool same;
	size_t i;
	void *p;

	if (dev == s->dev)
		return true;
	if (!s->btrfs)
		return false;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->ndevs; i++)
		if (s->devs[i].dev == dev) {
			same = s->devs[i].same;
			pthread_mutex_unlock(&s->lock);
			return same;
		}
	pthread_mutex_unlock(&s->lock);
	/* ENOTTY (not btrfs) and every other failure: another filesystem. */
	same = !btrfs_fsid(fd, fsid) && !memcmp(fsid, s->fsid, sizeof(fsid));
	pthread_mutex_lock(&s->lock);
	p = realloc(s->devs, (s->ndevs + 1) * sizeof(*s->devs));
	if (p) { /* without memory, only the cache is lost */
		s->devs = p;
		s->devs[s->ndevs].dev = dev;
		s->devs[s->ndevs++].same = same;
	}
	pthread_mutex_unlock(&s->lock);
	return same;
}

/*
 * Batched opens and closes through io_uring. Per file the walk needs openat(), fstat(), FIEMAP and
 * close(); the bare loop that issue #4 measures against makes three of those four calls, and on
 * a virtual machine every system call pays its entry and exit to the hypervisor. io_uring opens a
 * directory's regular files URING_BATCH at a time (IORING_OP_OPENAT: done inline while the
 * dentries are cached) and closes them with the next batch's opens (IORING_OP_CLOSE), in one
 * io_uring_enter() per batch; fstat() and FIEMAP stay plain calls (io_uring has no ioctl, and its
 * statx always runs in a kernel worker thread). Where io_uring is missing or refused (old kernel,
 * io_uring_disabled, seccomp) or fails, the batch falls back to plain calls.
 */
#define URING_BATCH 32
#define CLOSE_TAG UINT64_MAX

struct ubatch {
	struct io_uring ring;
	bool broken;	/* io_uring failed once: plain calls from then on */
	unsigned n;	/* names queued */
	unsigned nclose; /* descriptors to close with the next submission */
	int close_fd[URING_BATCH];
	int res[URING_BATCH]; /* per name: the descriptor or -errno */
	char name[URING_BATCH][NAME_MAX + 1];
};

static struct ubatch *ubatch_new(void)
{
	struct ubatch *b = malloc(sizeof(*b));
	int err;

	if (!b)
		return NULL;
	memset(b, 0, offsetof(struct ubatch, close_fd));
	/* one submitting thread, completions run when it waits: the cheapest setup (6.1+) */
	if (io_uring_queue_init(2 * URING_BATCH, &b->ring,
				IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN) &&
	    (err = io_uring_queue_init(2 * URING_BATCH, &b->ring, 0))) {
		mtfs_log(MAPTBL_LOG_DEBUG, "stats: no io_uring (%s): plain calls", strerror(-err));
		free(b);
		return NULL;
	}
	return b;
}

/* Closes the queued descriptors and opens the queued names relative to @dirfd: b->res[]. */
static void ubatch_run(struct ubatch *b, int dirfd)
{
	unsigned i, want = b->nclose + b->n, sub = 0, got = 0;
	int ret = 0;

	if (!b->broken) {
		for (i = 0; i < want; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

			if (i < b->nclose) {
				io_uring_prep_close(sqe, b->close_fd[i]);
				io_uring_sqe_set_data64(sqe, CLOSE_TAG);
			} else {
				io_uring_prep_openat(sqe, dirfd, b->name[i - b->nclose],
						     FILE_OPEN_FLAGS | O_NOATIME, 0);
				io_uring_sqe_set_data64(sqe, i - b->nclose);
			}
		}
		for (i = 0; i < b->n; i++)
			b->res[i] = -ECANCELED;
		/* The kernel fails io_uring_enter() only when it consumed nothing; it may consume
		 * fewer than asked (memory), then the rest goes with the next call. */
		while (sub < want) {
			ret = io_uring_submit_and_wait(&b->ring, want - sub);
			if (ret <= 0)
				break;
			sub += (unsigned)ret;
		}
		while (got < sub) {
			struct io_uring_cqe *cqe;

			ret = io_uring_wait_cqe(&b->ring, &cqe);
			if (ret == -EINTR)
				continue;
			if (ret < 0)
				break;
			if (cqe->user_data < URING_BATCH)
				b->res[cqe->user_data] = cqe->res;
			io_uring_cqe_seen(&b->ring, cqe);
			got++;
		}
		if (sub < want || got < sub) {
			/* Never seen here. Whatever the kernel took is done or will be; what it did
			 * not take is done below with plain calls. The ring is not used again. */
			b->broken = true;
			mtfs_log(MAPTBL_LOG_DEBUG, "stats: io_uring failed (%s): plain calls",
				 strerror(ret < 0 ? -ret : EIO));
		}
	}
	for (i = 0; i < want; i++) {
		if (b->broken && i >= sub) { /* not taken by the kernel */
			if (i < b->nclose)
				close(b->close_fd[i]);
			else
				b->res[i - b->nclose] = open_file(dirfd, b->name[i - b->nclose]);
		} else if (i >= b->nclose && b->res[i - b->nclose] == -EPERM) {
			/* O_NOATIME refused: not the owner */
			b->res[i - b->nclose] = open_file(dirfd, b->name[i - b->nclose]);
		}
	}
	b->nclose = 0;
}

static void ubatch_free(struct ubatch *b)
{
	if (!b)
		return;
	b->n = 0;
	if (b->nclose)
		ubatch_run(b, AT_FDCWD);
	io_uring_queue_exit(&b->ring);
	free(b);
}

/* A directory being read. */
struct dirctx {
	const char *path;
	size_t plen;
	dev_t dev;
	uint64_t files, bytes;
};

/* Counts the file @name of @d measured with result @err. 0 or a fatal -errno. */
static int file_result(struct worker *w, struct dirctx *d, const char *name, int err,
		       struct maptbl_file_stats *f, const struct stat *st)
{
	char *child;

	if (err == -EINVAL)
		return 0; /* replaced by something that is not a regular file: skip */
	if (!err && st->st_dev != d->dev && !w->s->o->cross_mounts)
		return 0;
	child = join(w, d->path, d->plen, name);
	if (!child)
		return -ENOMEM;
	if (err) /* e.g. vanished since readdir() (ENOENT): counted with the reason */
		return maptbl_stats_acc_error(w->acc, child, err);
	f->path = child;
	d->files++;
	d->bytes += f->size;
	return file_done(w, f);
}

/* Measures the names queued in w->ub, files of the directory @dirfd. */
static int run_batch(struct worker *w, int dirfd, struct dirctx *d, uint32_t bs)
{
	struct ubatch *b = w->ub;
	unsigned i, n = b->n;
	int err = 0;

	ubatch_run(b, dirfd);
	b->n = 0;
	for (i = 0; i < n; i++) {
		struct maptbl_file_stats f;
		struct stat st;
		int fd = b->res[i], e = fd;

		if (fd >= 0) {
			if (!err)
				e = stats_fd(fd, bs, w->btrfs, &f, &st);
			b->close_fd[b->nclose++] = fd; /* closed with the next batch */
		}
		if (!err)
			err = file_result(w, d, b->name[i], e, &f, &st);
	}
	return err;
}

/* Reads one directory: files are measured, subdirectories queued. */
static int read_dir(struct worker *w, struct dirjob *j)
{
	struct scan *s = w->s;
	const char *path = j->path;
	size_t plen = strlen(path);
	struct dirctx dc = { .path = path, .plen = plen };
	struct statfs sfs;
	struct dirent *de;
	struct stat st;
	uint32_t bs;
	DIR *d;
	int fd, err = 0;

	fd = open_dir(j);
	if (fd < 0)
		return maptbl_stats_acc_error(w->acc, path, errno);
	if (fstat(fd, &st)) {
		err = errno;
		close(fd);
		return maptbl_stats_acc_error(w->acc, path, err);
	}
	if (!s->o->cross_mounts && !same_fs(s, fd, st.st_dev)) {
		close(fd);
		return 0;
	}
	dc.dev = st.st_dev;
	if (!w->bs || st.st_dev != w->bs_dev) { /* one statfs per filesystem, not per directory */
		int ok = !fstatfs(fd, &sfs);

		w->bs = ok && sfs.f_bsize > 0 ? (uint32_t)sfs.f_bsize : 0;
		w->btrfs = ok && (unsigned long)sfs.f_type == BTRFS_SUPER_MAGIC;
		w->bs_dev = st.st_dev;
	}
	bs = w->bs;
	d = fdopendir(fd);
	if (!d) {
		err = errno;
		close(fd);
		return maptbl_stats_acc_error(w->acc, path, err);
	}
	for (;;) {
		struct maptbl_file_stats f;
		unsigned char type;
		char *child;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				err = maptbl_stats_acc_error(w->acc, path, errno);
			break;
		}
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
				/* vanished since readdir(): ENOENT, counted with its path */
				int e = errno;

				child = join(w, path, plen, de->d_name);
				err = child ? maptbl_stats_acc_error(w->acc, child, e) : -ENOMEM;
				if (err)
					break;
				continue;
			}
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
		}
		if (type == DT_DIR) {
			child = join(w, path, plen, de->d_name);
			err = child ? queue_dir(w, fd, child, de->d_name) : -ENOMEM;
			if (err)
				break;
			continue;
		}
		if (type != DT_REG)
			continue;
		if (w->ub) {
			strcpy(w->ub->name[w->ub->n++], de->d_name); /* d_name: NAME_MAX + 1 at most */
			if (w->ub->n == URING_BATCH)
				err = run_batch(w, fd, &dc, bs);
		} else {
			err = stats_at(fd, de->d_name, bs, w->btrfs, &f, &st);
			err = file_result(w, &dc, de->d_name, err, &f, &st);
		}
		if (err)
			break;
	}
	if (w->ub && w->ub->n) {
		if (err)
			w->ub->n = 0;
		else
			err = run_batch(w, fd, &dc, bs);
	}
	closedir(d);
	if (s->o->progress) {
		pthread_mutex_lock(&s->cb_lock);
		s->files += dc.files;
		s->bytes += dc.bytes;
		s->o->progress(s->o->progress_ctx, s->files, s->bytes);
		pthread_mutex_unlock(&s->cb_lock);
	}
	return err;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct scan *s = w->s;

	if (!s->o->no_uring)
		w->ub = ubatch_new(); /* created by the thread that submits (SINGLE_ISSUER) */
	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct dirjob job;
		int err;

		while (!s->ndirs && s->busy && !s->err)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->err || (!s->ndirs && !s->busy))
			break;
		job = s->dirs[--s->ndirs];
		s->nfds -= job.fd >= 0;
		s->busy++;
		pthread_mutex_unlock(&s->lock);
		err = read_dir(w, &job);
		free(job.path);
		pthread_mutex_lock(&s->lock);
		s->busy--;
		if (err && !s->err)
			s->err = err;
		if (!s->busy || s->err)
			pthread_cond_broadcast(&s->cond);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	ubatch_free(w->ub);
	w->ub = NULL;
	return NULL;
}

MAPTBL_API int maptbl_stats_scan(struct maptbl_stats_acc *acc, const char *path,
				 const struct maptbl_scan_opts *opts)
{
	struct maptbl_scan_opts o;
	struct worker *w = NULL;
	struct scan s;
	struct stat st;
	unsigned n, i, started = 0;
	char *root;
	int err;

	if (!acc || !path)
		return -EINVAL;
	maptbl_scan_opts_init(&o, sizeof(o));
	err = mtfs_opts_copy(&o, sizeof(o), MTFS_SCAN_OPTS_SIZE_0_1, opts);
	if (err)
		return err;
	if (stat(path, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		struct maptbl_file_stats f;
		struct worker one = { .acc = acc };

		memset(&s, 0, sizeof(s));
		s.o = &o;
		pthread_mutex_init(&s.cb_lock, NULL);
		one.s = &s;
		err = stats_at(AT_FDCWD, path, 0, -1, &f, &st);
		if (!err) {
			f.path = path;
			err = file_done(&one, &f);
		}
		pthread_mutex_destroy(&s.cb_lock);
		return err;
	}
	if (!S_ISDIR(st.st_mode))
		return -EINVAL;
	/* The root must be readable: otherwise nothing can be scanned. */
	{
		DIR *d = opendir(path);

		if (!d)
			return -errno;
		closedir(d);
	}
	n = mtfs_threads(o.threads);
	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.dev = st.st_dev;
	{
		struct statfs sfs;
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		s.btrfs = fd >= 0 && !fstatfs(fd, &sfs) &&
			  (unsigned long)sfs.f_type == BTRFS_SUPER_MAGIC && !btrfs_fsid(fd, s.fsid);
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_mutex_init(&s.cb_lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	root = strdup(path);
	w = calloc(n, sizeof(*w));
	if (!root || !w || push_dir(&s, root, -1)) {
		free(root);
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct maptbl_stats_opts so;

		maptbl_stats_opts_init(&so, sizeof(so));
		so.top_n = acc->top_n;
		w[i].s = &s;
		err = maptbl_stats_acc_new(&so, &w[i].acc);
		if (err)
			break;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			err = -EAGAIN;
			break;
		}
		started++;
	}
	if (err && !started) {
		pthread_mutex_lock(&s.lock);
		s.err = err;
		pthread_mutex_unlock(&s.lock);
	}
	if (started && err)
		err = 0; /* fewer workers than asked: still a walk */
	for (i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (!err)
		err = s.err;
	for (i = 0; !err && i < started; i++)
		err = maptbl_stats_acc_merge(acc, w[i].acc);
out:
	for (i = 0; w && i < n; i++) {
		maptbl_stats_acc_free(w[i].acc);
		free(w[i].buf);
	}
	free(w);
	while (s.ndirs) {
		s.ndirs--;
		if (s.dirs[s.ndirs].fd >= 0)
			close(s.dirs[s.ndirs].fd);
		free(s.dirs[s.ndirs].path);
	}
	free(s.dirs);
	free(s.devs);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	pthread_mutex_destroy(&s.cb_lock);
	return err;
}
