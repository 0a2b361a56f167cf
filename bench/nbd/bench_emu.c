/* SPDX-License-Identifier: MIT */
/*
 * bench_emu.c - maptbl-bench-emu: the pieces of a VF request's latency through maptbl-emu,
 * without NBD (docs/PERFORMANCE.md, "The device through NBD"). Run by bench/nbd/run.sh against a
 * running emulator whose VF has a table:
 *
 *   maptbl-bench-emu DEV VF [REQUESTS]
 *
 * Prints medians (wall clock, microseconds) of:
 *   rtt       one register read: a message to the emulator and its reply (the socket round trip
 *             that stands in for a PCIe read; a doorbell is a posted write, one message);
 *   qd1       one 4 KiB random read through the VF's rings with maptbl_hw_queue_io(): posted
 *             doorbell, the emulator serves it, INT_STATUS acknowledgement (a round trip), the
 *             completion in shared memory, the copy out of the bounce buffer;
 *   qd32/rq   wall time per request with 32 asynchronous 4 KiB random reads in flight
 *             (maptbl_hw_queue_submit / _reap), i.e. the emulator's throughput for one VF.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <maptbl/hw.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n ? v[n / 2] : 0;
}

int main(int argc, char **argv)
{
	struct maptbl_hw *hw;
	struct maptbl_hw_queue *q;
	struct maptbl_hw_dma *dma;
	unsigned vf, n = 5000, seed = 1;
	uint64_t blocks;
	double *t, t0;
	uint8_t *buf;
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: maptbl-bench-emu DEV VF [REQUESTS]\n");
		return 2;
	}
	vf = (unsigned)atoi(argv[2]);
	if (argc > 3)
		n = (unsigned)atoi(argv[3]);
	if (!n || !(t = calloc(n, sizeof(*t))) || (err = maptbl_hw_open(argv[1], NULL, &hw)) ||
	    (err = maptbl_hw_queue_open(hw, vf, 64, &q)) ||
	    (err = maptbl_hw_dma_alloc(hw, 32 * 4096, 0, &dma))) {
		fprintf(stderr, "maptbl-bench-emu: cannot set up VF %u of %s\n", vf, argv[1]);
		return 1;
	}
	buf = maptbl_hw_dma_ptr(dma);
	blocks = maptbl_hw_queue_blocks(q);
	if (maptbl_hw_queue_block_size(q) != 4096 || blocks < 64) {
		fprintf(stderr, "maptbl-bench-emu: VF %u needs 4 KiB blocks\n", vf);
		return 1;
	}

	for (unsigned i = 0; i < n; i++) {
		uint32_t v;

		t0 = now_us();
		if (maptbl_hw_read32(hw, vf, MAPTBL_REG_ID, &v))
			return 1;
		t[i] = now_us() - t0;
	}
	printf("rtt       %8.1f us  register read round trip\n", median(t, n));

	for (unsigned i = 0; i < n; i++) {
		struct maptbl_hw_io io = { .opcode = MAPTBL_OP_READ, .nblocks = 1, .buf = buf };

		io.lba = (uint64_t)rand_r(&seed) % blocks;
		t0 = now_us();
		if ((err = maptbl_hw_queue_io(q, &io))) {
			fprintf(stderr, "maptbl-bench-emu: read of block %llu: %s\n",
				(unsigned long long)io.lba, strerror(-err));
			return 1;
		}
		t[i] = now_us() - t0;
	}
	printf("qd1       %8.1f us  4 KiB random read through the rings (maptbl_hw_queue_io)\n",
	       median(t, n));

	for (unsigned r = 0; r < 5; r++) {
		unsigned posted = 0, done = 0;

		t0 = now_us();
		while (done < n) {
			struct maptbl_hw_aio a[32];
			struct maptbl_hw_aio_cpl c[32];
			unsigned k = 0;
			int got;

			/* user_data is the buffer slot; refill the slots that completed */
			while (posted < n && maptbl_hw_queue_inflight(q) + k < 32) {
				unsigned slot = posted % 32;

				a[k] = (struct maptbl_hw_aio){ .opcode = MAPTBL_OP_READ, .nblocks = 1,
							       .lba = (uint64_t)rand_r(&seed) % blocks,
							       .buf = buf + slot * 4096, .user_data = slot };
				k++, posted++;
			}
			if ((err = maptbl_hw_queue_submit(q, a, k)) != (int)k ||
			    (err = got = maptbl_hw_queue_reap(q, c, 32, 5000)) <= 0) {
				fprintf(stderr, "maptbl-bench-emu: submit or reap: %s\n",
					err ? strerror(-err) : "timeout");
				return 1;
			}
			for (int i = 0; i < got; i++)
				if (c[i].err)
					return 1;
			done += (unsigned)got;
		}
		t[r] = (now_us() - t0) / n;
	}
	printf("qd32/rq   %8.1f us  per 4 KiB random read with 32 in flight (submit/reap)\n",
	       median(t, 5));
	maptbl_hw_dma_free(dma);
	maptbl_hw_queue_close(q);
	maptbl_hw_close(hw);
	free(t);
	return 0;
}
