/* SPDX-License-Identifier: MIT */
/*
 * bench_memlat.c - maptbl-bench-memlat: the memory the lookup benchmarks run on. For a buffer of
 * MB mebibytes (about a table's size): the time of one random cache-line load that depends on the
 * one before (pointer chasing: what a lookup that misses waits per miss), and of groups of 1 to 4
 * adjacent lines at random places loaded independently (what interleaved lookups pay per miss
 * when their misses overlap). Usage: maptbl-bench-memlat MB [LOADS]. Thread CPU time, one core.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
	size_t mb = argc > 1 ? strtoull(argv[1], NULL, 0) : 0, lines, i, steps;
	size_t *perm;
	uint64_t o, sum = 0;
	uint8_t *p;
	double t0;
	int g;

	if (argc < 2 || argc > 3 || !mb || mb > 65536) {
		fprintf(stderr, "usage: %s MB [LOADS]\n", argv[0]);
		return 2;
	}
	steps = argc == 3 ? strtoull(argv[2], NULL, 0) : 4000000;
	lines = (mb << 20) / 64;
	p = aligned_alloc(64, mb << 20);
	perm = malloc(lines * sizeof(*perm));
	if (!p || !perm || !steps)
		return 1;
	memset(p, 1, mb << 20);
	/* A random cycle through all lines: each line holds the offset of the next. */
	for (i = 0; i < lines; i++)
		perm[i] = i;
	for (i = lines - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1), x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	for (i = 0; i < lines; i++)
		*(uint64_t *)(p + perm[i] * 64) = perm[(i + 1) % lines] * 64;
	o = perm[0] * 64;
	t0 = now();
	for (i = 0; i < steps; i++)
		o = *(const uint64_t *)(p + o);
	printf("%6zu MiB  dependent loads: %7.1f ns each\n", mb, (now() - t0) / (double)steps * 1e9);
	sum += o;
	for (g = 1; g <= 4; g++) {
		size_t groups = lines / (size_t)g;
		int k;

		t0 = now();
		for (i = 0; i < steps; i++) {
			const uint8_t *q = p + (rnd() % groups) * 64 * (size_t)g;

			for (k = 0; k < g; k++)
				sum += q[k * 64];
		}
		printf("%6zu MiB  independent groups of %d adjacent lines: %7.1f ns per group\n", mb, g,
		       (now() - t0) / (double)steps * 1e9);
	}
	free(perm);
	free(p);
	return sum == 42; /* keeps the loads */
}
