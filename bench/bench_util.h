/* SPDX-License-Identifier: MIT */
/*
 * bench_util.h - shared by the lookup benchmarks: a xorshift64 generator and the thread's CPU
 * time (on a shared machine wall time also counts the time other jobs ran).
 */
#ifndef MAPTBL_BENCH_UTIL_H
#define MAPTBL_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

static uint64_t bench_xs = 88172645463325252ull;

static inline uint64_t rnd(void)
{
	bench_xs ^= bench_xs << 13;
	bench_xs ^= bench_xs >> 7;
	bench_xs ^= bench_xs << 17;
	return bench_xs;
}

/* Seconds of CPU time of the calling thread. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
