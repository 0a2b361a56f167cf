/* SPDX-License-Identifier: MIT */
/*
 * bench_lookup_many.c - maptbl_table_lookup() one block at a time against
 * maptbl_table_lookup_many() on the same blocks (uniformly random, and every seventh near an
 * extent boundary), with a check that both answer the same. Extents: lengths 1..200 blocks (one
 * in 50 of 40,000+ blocks, so some leaves are wide), a gap before one in four, one in 20
 * unwritten. Usage: maptbl-bench-lookup-many EXTENTS NODE_SIZE [REPS]. Prints the median
 * lookups per second of each over REPS passes (default 5), one core, warm, in CPU time of the
 * thread (on a shared machine wall time also counts other jobs), and the same for single lookups
 * with the table's lookup index switched off (the plain binary search; the passes alternate). Also
 * the index's memory and the time to build it (mt_table_changed()) against the table's build.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maptbl/maptbl.h>

#include "bench_util.h"

#include "../libmaptbl/src/internal.h" /* t->acc, mt_table_changed(): not public, bench only */

#define QUERIES 2000000u

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct maptbl_mapping *one, *many;
	struct maptbl_build_opts o;
	struct maptbl_extent *e;
	struct maptbl_table *t;
	double t_one[32], t_many[32], t_plain[32], t_build[32], t_index[32];
	struct mt_accel *acc;
	uint64_t l = 0, p = 0, *b;
	size_t n, i, bad = 0;
	int reps, r;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s EXTENTS NODE_SIZE [REPS]\n", argv[0]);
		return 2;
	}
	n = strtoull(argv[1], NULL, 0);
	reps = argc == 4 ? atoi(argv[3]) : 5;
	if (!n || reps < 1 || reps > 32)
		return 2;
	e = malloc(n * sizeof(*e));
	b = malloc(QUERIES * sizeof(*b));
	one = malloc(QUERIES * sizeof(*one));
	many = malloc(QUERIES * sizeof(*many));
	if (!e || !b || !one || !many)
		return 1;
	for (i = 0; i < n; i++) {
		uint64_t len = rnd() % 50 == 0 ? 40000 + rnd() % 100 : 1 + rnd() % 200;

		if (rnd() % 4 == 0)
			l += 1 + rnd() % 64;
		e[i] = (struct maptbl_extent){ .lblk = l, .pblk = p, .len = len,
					       .flags = rnd() % 20 == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0 };
		l += len;
		p += len + (rnd() % 3 ? 0 : rnd() % 1000);
	}
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = (uint32_t)strtoul(argv[2], NULL, 0);
	o.virtual_blocks = l + 100;
	for (r = 0; r < reps; r++) {
		double t0 = now();

		if (maptbl_table_build(e, n, &o, &t)) {
			fprintf(stderr, "build failed\n");
			return 1;
		}
		t_build[r] = now() - t0;
		t0 = now();
		mt_table_changed(t);
		t_index[r] = now() - t0;
		if (r + 1 < reps)
			maptbl_table_free(t);
	}
	acc = t->acc;
	for (i = 0; i < QUERIES; i++) {
		b[i] = i % 7 == 0 ? e[rnd() % n].lblk + rnd() % 3 : rnd() % (l + 100);
		if (b[i] >= l + 100)
			b[i] = 0;
	}
	for (r = 0; r < reps; r++) {
		double t0 = now(), t1, t2, t3;

		for (i = 0; i < QUERIES; i++)
			maptbl_table_lookup(t, b[i], &one[i]);
		t1 = now();
		if (maptbl_table_lookup_many(t, b, QUERIES, many))
			return 1;
		t2 = now();
		t->acc = NULL; /* the plain binary search */
		for (i = 0; i < QUERIES; i++)
			maptbl_table_lookup(t, b[i], &one[i]);
		t3 = now();
		t->acc = acc;
		t_one[r] = t1 - t0;
		t_many[r] = t2 - t1;
		t_plain[r] = t3 - t2;
	}
	for (i = 0; i < QUERIES; i++) /* one[]: the plain search's answers */
		bad += memcmp(&one[i], &many[i], sizeof(one[i])) != 0;
	qsort(t_one, (size_t)reps, sizeof(double), cmp_double);
	qsort(t_many, (size_t)reps, sizeof(double), cmp_double);
	qsort(t_plain, (size_t)reps, sizeof(double), cmp_double);
	qsort(t_build, (size_t)reps, sizeof(double), cmp_double);
	qsort(t_index, (size_t)reps, sizeof(double), cmp_double);
	printf("%10zu extents  node %5u  table %10zu B  depth %u  lookup %6.2f M/s  lookup_many %6.2f M/s  x%.2f  mismatches %zu\n",
	       n, o.node_size, maptbl_table_len(t), maptbl_table_depth(t),
	       QUERIES / t_one[reps / 2] / 1e6, QUERIES / t_many[reps / 2] / 1e6,
	       t_one[reps / 2] / t_many[reps / 2], bad);
	printf("%10s plain search %6.2f M/s (index x%.2f)  index %zu B = %.3f B/extent, built in %.2f ms"
	       " (table build %.2f ms: x%.3f)\n", "",
	       QUERIES / t_plain[reps / 2] / 1e6, t_plain[reps / 2] / t_one[reps / 2],
	       mt_table_accel_bytes(t), (double)mt_table_accel_bytes(t) / (double)n,
	       t_index[reps / 2] * 1e3, t_build[reps / 2] * 1e3, t_index[reps / 2] / t_build[reps / 2]);
	maptbl_table_free(t);
	free(e);
	free(b);
	free(one);
	free(many);
	return bad != 0;
}
