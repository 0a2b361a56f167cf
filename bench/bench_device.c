/* SPDX-License-Identifier: MIT */
/*
 * bench_device.c - maptbl-bench-device: the device model's translation cost and cache behaviour
 * (docs/PERFORMANCE.md, "The device model"). The model runs in-process with memcpy() DMA and a
 * memory disk, so what is measured is the model itself (rings, walks, caches), not a transport.
 *
 * A VF is backed by a table of --extents extents (default 100,000; lengths 1..16 blocks, gaps of
 * 0..3 blocks, 4 KiB blocks, --node-size nodes). Workloads, each --requests 1-block reads issued
 * --qd at a time (submit, one mtdev_process(), reap):
 *   rand   uniformly random blocks of the virtual disk;
 *   seq    consecutive blocks from 0;
 *   8vf    eight VFs with the same table, random blocks, requests round-robin over the VFs.
 * For every extent cache (BTLB) size x node cache size, per request: extent cache hit rate,
 * node cache hit rate, walks, nodes fetched by DMA, and the median time per request over --reps
 * runs as a ratio to the anchor: the same reads through the PF ring (no translation), measured in
 * the same run. Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID): the model is
 * single-threaded and never waits, so this is its cost even on a loaded machine.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <maptbl/maptbl.h>

#include "mtdev.h"

#define BS 4096u
#define MEM_BASE UINT64_C(0x100000000)
#define NVF 8

struct host {
	uint8_t *mem;
	uint64_t mem_size, next;
	uint8_t *disk;
	uint64_t disk_size;
	struct mtdev *d;
	uint64_t rq[NVF + 1], cq[NVF + 1], buf[NVF + 1];
	uint32_t tail[NVF + 1], head[NVF + 1];
	uint16_t phase[NVF + 1];
};

static int dma_read(void *ctx, unsigned fn, uint64_t a, void *b, size_t n)
{
	struct host *h = ctx;

	(void)fn;
	if (a < MEM_BASE || a - MEM_BASE > h->mem_size || n > h->mem_size - (a - MEM_BASE))
		return -1;
	memcpy(b, h->mem + (a - MEM_BASE), n);
	return 0;
}

static int dma_write(void *ctx, unsigned fn, uint64_t a, const void *b, size_t n)
{
	struct host *h = ctx;

	(void)fn;
	if (a < MEM_BASE || a - MEM_BASE > h->mem_size || n > h->mem_size - (a - MEM_BASE))
		return -1;
	memcpy(h->mem + (a - MEM_BASE), b, n);
	return 0;
}

/* The disk: a 64 MiB buffer seen as the whole (larger) disk, offsets taken modulo its size. */
static int disk_read(void *ctx, unsigned fn, uint64_t off, void *b, size_t n)
{
	struct host *h = ctx;

	(void)fn;
	memcpy(b, h->disk + off % (h->disk_size - n + 1), n);
	return 0;
}

static int disk_write(void *ctx, unsigned fn, uint64_t off, const void *b, size_t n)
{
	(void)ctx;
	(void)fn;
	(void)off;
	(void)b;
	(void)n;
	return 0;
}

static const struct mtdev_ops ops = { dma_read, dma_write, disk_read, disk_write, NULL, NULL, NULL };

static uint64_t alloc(struct host *h, uint64_t len)
{
	uint64_t a = (h->next + 4095) & ~UINT64_C(4095);

	h->next = a + len;
	memset(h->mem + a, 0, len);	/* rings of an earlier run must not look posted */
	return MEM_BASE + a;
}

static uint64_t rng = 0x2545F4914F6CDD1Du;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Du;
}

static double now(void)
{
	struct timespec ts;

	/* CPU time of this thread: the machine may be shared, and the model never sleeps. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void w32(struct host *h, unsigned fn, uint32_t off, uint32_t v)
{
	mtdev_mmio_write(h->d, fn, off, 4, v);
}

static void w64(struct host *h, unsigned fn, uint32_t off, uint64_t v)
{
	mtdev_mmio_write(h->d, fn, off, 8, v);
}

static int setup(struct host *h, const struct maptbl_table *t, unsigned xc, unsigned nc,
		 uint32_t qd)
{
	struct mtdev_params p;
	uint64_t tbl;
	unsigned fn;
	int err;

	mtdev_params_init(&p);
	p.ops = &ops;
	p.ctx = h;
	p.nr_vfs = NVF;
	p.disk_bytes = UINT64_C(1) << 40;
	p.xcache_entries = xc;
	p.xcache_disable = !xc;
	p.ncache_entries = nc;
	p.ncache_disable = !nc;
	err = mtdev_create(&p, &h->d);
	if (err)
		return err;
	h->next = 0;
	tbl = alloc(h, maptbl_table_len(t));
	memcpy(h->mem + (tbl - MEM_BASE), maptbl_table_data(t), maptbl_table_len(t));
	w32(h, 0, MAPTBL_REG_PF_NUM_VFS, NVF);
	for (fn = 0; fn <= NVF; fn++) {
		if (fn) {
			uint32_t c = MAPTBL_REG_PF_VFCFG(fn);

			w64(h, 0, c + MAPTBL_VFCFG_TABLE_BASE, tbl);
			w64(h, 0, c + MAPTBL_VFCFG_TABLE_LEN, maptbl_table_len(t));
			w64(h, 0, c + MAPTBL_VFCFG_VIRT_BLOCKS, maptbl_table_virtual_blocks(t));
			w32(h, 0, c + MAPTBL_VFCFG_BLOCK_SIZE, BS);
			w32(h, 0, c + MAPTBL_VFCFG_CTRL, MAPTBL_VFCFG_CTRL_ENABLE);
		}
		h->rq[fn] = alloc(h, 64 * 64);
		h->cq[fn] = alloc(h, 64 * 16);
		h->buf[fn] = alloc(h, (uint64_t)qd * BS);
		h->tail[fn] = h->head[fn] = 0;
		h->phase[fn] = 1;
		w64(h, fn, MAPTBL_REG_RQ_BASE, h->rq[fn]);
		w64(h, fn, MAPTBL_REG_CQ_BASE, h->cq[fn]);
		w32(h, fn, MAPTBL_REG_RQ_SIZE, 64);
		w32(h, fn, MAPTBL_REG_CQ_SIZE, 64);
		w32(h, fn, MAPTBL_REG_Q_CTRL, 1);
		w32(h, fn, MAPTBL_REG_INT_MASK, MAPTBL_INT_ALL);
	}
	return 0;
}

static void submit(struct host *h, unsigned fn, uint64_t lba, unsigned slot)
{
	struct maptbl_hw_req q;

	memset(&q, 0, sizeof(q));
	q.opcode = MAPTBL_OP_READ;
	q.nseg = maptbl_cpu_to_le16(1);
	q.tag = maptbl_cpu_to_le32(slot);
	q.lba = maptbl_cpu_to_le64(lba);
	q.nblocks = maptbl_cpu_to_le32(1);
	q.seg[0].addr = maptbl_cpu_to_le64(h->buf[fn] + (uint64_t)slot * BS);
	q.seg[0].len = maptbl_cpu_to_le32(BS);
	memcpy(h->mem + (h->rq[fn] - MEM_BASE) + (uint64_t)h->tail[fn] * 64, &q, 64);
	h->tail[fn] = (h->tail[fn] + 1) % 64;
	w32(h, fn, MAPTBL_REG_RQ_TAIL, h->tail[fn]);
}

/* Reap every completion of @fn; returns how many, or -1 on an error status. */
static int reap(struct host *h, unsigned fn)
{
	int n = 0;

	for (;;) {
		struct maptbl_hw_cpl c;

		memcpy(&c, h->mem + (h->cq[fn] - MEM_BASE) + (uint64_t)h->head[fn] * 16, 16);
		if ((maptbl_le16_to_cpu(c.flags) & 1) != h->phase[fn])
			break;
		if (maptbl_le16_to_cpu(c.status))
			return -1;
		h->head[fn] = (h->head[fn] + 1) % 64;
		if (!h->head[fn])
			h->phase[fn] ^= 1;
		n++;
	}
	if (n)
		w32(h, fn, MAPTBL_REG_CQ_HEAD, h->head[fn]);
	return n;
}

enum wl { WL_RAND, WL_SEQ, WL_8VF };

/* Run @reqs reads; @pf: through the PF at the same block numbers. Returns seconds or < 0. */
static double run(struct host *h, enum wl wl, uint64_t virt, uint64_t reqs, uint32_t qd, bool pf)
{
	uint64_t done = 0, seq = 0;
	double t0 = now();

	rng = 0x2545F4914F6CDD1Du;
	while (done < reqs) {
		unsigned i, fn;

		for (i = 0; i < qd && done + i < reqs; i++) {
			uint64_t lba = wl == WL_SEQ ? seq++ % virt : rnd() % virt;

			fn = pf ? 0 : wl == WL_8VF ? 1 + i % NVF : 1;
			submit(h, fn, lba, i / (wl == WL_8VF && !pf ? NVF : 1));
		}
		mtdev_process(h->d, 0);
		for (fn = 0; fn <= NVF; fn++) {
			int n = reap(h, fn);

			if (n < 0)
				return -1;
			done += (uint64_t)n;
		}
	}
	return now() - t0;
}

static uint64_t stat_sum(struct host *h, unsigned idx)
{
	uint64_t s = 0;
	unsigned fn;

	for (fn = 1; fn <= NVF; fn++)
		s += mtdev_mmio_read(h->d, fn, MAPTBL_REG_STATS + 8 * idx, 8);
	return s;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const unsigned xcs[] = { 0, 1, 8, 64, 512, 4096 };
	static const unsigned ncs[] = { 0, 64, 1024 };
	static const char *const wln[] = { "rand", "seq", "8vf" };
	uint64_t nextents = 100000, reqs = 100000, l = 0, p = 0;
	uint32_t qd = 32, ns = 4096;
	unsigned reps = 5, i, w;
	struct maptbl_extent *e;
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct host h;

	for (i = 1; i < (unsigned)argc; i++) {
		if (!strcmp(argv[i], "--extents") && i + 1 < (unsigned)argc)
			nextents = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--requests") && i + 1 < (unsigned)argc)
			reqs = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--reps") && i + 1 < (unsigned)argc)
			reps = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--qd") && i + 1 < (unsigned)argc)
			qd = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--node-size") && i + 1 < (unsigned)argc)
			ns = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [--extents N] [--requests N] [--reps N] [--qd 1..32] [--node-size N]\n",
				argv[0]);
			return 2;
		}
	}
	if (!nextents || !reqs || !reps || reps > 99 || !qd || qd > 32) {
		fprintf(stderr, "%s: --extents, --requests, --reps (<= 99) and --qd (1..32) must be positive\n",
			argv[0]);
		return 2;
	}
	e = calloc(nextents, sizeof(*e));
	if (!e)
		return 1;
	for (i = 0; i < nextents; i++) {
		uint64_t len = 1 + rnd() % 16;

		e[i].lblk = l;
		e[i].pblk = p;
		e[i].len = len;
		l += len + rnd() % 4;
		p += len + rnd() % 64;
	}
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = ns;
	if (maptbl_table_build(e, nextents, &o, &t)) {
		fprintf(stderr, "%s: cannot build the table\n", argv[0]);
		return 1;
	}
	memset(&h, 0, sizeof(h));
	h.mem_size = maptbl_table_len(t) + (UINT64_C(16) << 20);
	h.mem = calloc(1, h.mem_size);
	h.disk_size = UINT64_C(64) << 20;
	h.disk = calloc(1, h.disk_size);
	if (!h.mem || !h.disk)
		return 1;
	/* Fault every page in now, so that no timed run pays for first touches. */
	memset(h.mem, 0, h.mem_size);
	memset(h.disk, 0xA5, h.disk_size);
	printf("# %llu extents, node size %u, depth %u, table %zu bytes; %llu 1-block reads at QD %u, median of %u\n",
	       (unsigned long long)nextents, ns, maptbl_table_depth(t), maptbl_table_len(t),
	       (unsigned long long)reqs, qd, reps);
	printf("%-5s %6s %6s %8s %8s %9s %11s %9s %9s %7s\n", "load", "xcache", "ncache", "xc_hit%",
	       "nc_hit%", "walks/rq", "dmanodes/rq", "ns/rq", "pf ns/rq", "vf/pf");
	for (w = 0; w < 3; w++) {
		unsigned a, b;

		for (a = 0; a < sizeof(xcs) / sizeof(xcs[0]); a++) {
			for (b = 0; b < sizeof(ncs) / sizeof(ncs[0]); b++) {
				double tv[99], tp[99];
				uint64_t xh, xm, nh, nm, wk;
				unsigned r;

				for (r = 0; r < reps; r++) {
					if (setup(&h, t, xcs[a], ncs[b], qd))
						return 1;
					tp[r] = run(&h, w, maptbl_table_virtual_blocks(t), reqs, qd, true);
					tv[r] = run(&h, w, maptbl_table_virtual_blocks(t), reqs, qd, false);
					if (tv[r] < 0 || tp[r] < 0) {
						fprintf(stderr, "%s: a read failed\n", argv[0]);
						return 1;
					}
					if (r + 1 < reps)
						mtdev_destroy(h.d);
				}
				xh = stat_sum(&h, MAPTBL_STAT_XC_HITS);
				xm = stat_sum(&h, MAPTBL_STAT_XC_MISSES);
				nh = stat_sum(&h, MAPTBL_STAT_NC_HITS);
				nm = stat_sum(&h, MAPTBL_STAT_NC_MISSES);
				wk = stat_sum(&h, MAPTBL_STAT_WALKS);
				mtdev_destroy(h.d);
				qsort(tv, reps, sizeof(double), cmp_d);
				qsort(tp, reps, sizeof(double), cmp_d);
				printf("%-5s %6u %6u %8.2f %8.2f %9.3f %11.3f %9.0f %9.0f %7.2f\n", wln[w],
				       xcs[a], ncs[b], 100.0 * xh / (xh + xm ? xh + xm : 1),
				       100.0 * nh / (nh + nm ? nh + nm : 1), (double)wk / reqs,
				       (double)nm / reqs, tv[reps / 2] * 1e9 / reqs,
				       tp[reps / 2] * 1e9 / reqs, tv[reps / 2] / tp[reps / 2]);
				fflush(stdout);
			}
		}
	}
	maptbl_table_free(t);
	free(e);
	free(h.mem);
	free(h.disk);
	return 0;
}
