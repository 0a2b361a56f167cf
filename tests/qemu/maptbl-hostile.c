/* SPDX-License-Identifier: MIT */
/*
 * maptbl-hostile - hostile input for the device in the QEMU guest test (issue #8 §4,
 * tests/qemu/guest.sh), seeded so that a failure can be replayed:
 *
 *   maptbl-hostile DEV bar  SEED COUNT FN...   COUNT random register writes (and some reads) to
 *                                              BAR0 of the functions FN (0 = PF, n = VF n)
 *   maptbl-hostile DEV bar-iommu SEED ...      as bar, but DMA address registers get any value:
 *                                              for vfio:, where the IOMMU confines the device
 *   maptbl-hostile DEV ring SEED COUNT FN...   on each FN, a ring of its own (raw registers, not
 *                                              libmaptbl-hw's queue) fed with fixed bad requests
 *                                              and COUNT random ones; every one must complete
 *                                              with an error status
 *   maptbl-hostile VF-BDF vf-token UUID|-      a VF user on its own: open the VF (bound to
 *                                              vfio-pci) through its IOMMU group with that VF
 *                                              token (- none); exit 0 opened, 1 refused
 *
 * What the guest must survive is any value, with one rule that keeps the *guest* (not QEMU)
 * alive: a DMA address this tool writes (ring bases, the fault queue, a table base, data
 * segments) lies at or above 1 TiB, outside guest memory. Without an IOMMU a VF owner that
 * points DMA at guest RAM overwrites the guest's own kernel; that is the platform's rule, not the
 * device's, and a corrupted guest kernel would tell nothing about QEMU. Data segments of random
 * requests are outside guest memory too, and random requests never carry WRITE_ZEROES, so no
 * request here can change a disk block: run.sh checks the disk image afterwards.
 *
 * Output: one line of counts. Exit: 0 done (and every ring request completed with an error),
 * 1 a request completed OK or not at all, or a register access failed, 2 usage, 3 open failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/vfio.h>

#include <maptbl/format.h>
#include <maptbl/hw.h>
#include <maptbl/hw_regs.h>

#define FAR_AWAY (1ull << 40)	/* 1 TiB: no guest RAM, no MMIO */
#define RING 16u

static uint64_t rng;

/* splitmix64: small, seedable, the same sequence on every machine */
static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Is @off (in the BAR of function @fn) the low or high half of a DMA address register? */
static int addr_half(unsigned fn, uint32_t off)
{
	uint32_t o = off & ~7u;

	if (o == MAPTBL_REG_RQ_BASE || o == MAPTBL_REG_CQ_BASE ||
	    (!fn && o == MAPTBL_REG_PF_FQ_BASE) ||
	    (!fn && off >= MAPTBL_REG_PF_VFCFG_BASE && off < MAPTBL_HW_PF_BAR_SIZE &&
	     (off - MAPTBL_REG_PF_VFCFG_BASE) % MAPTBL_REG_PF_VFCFG_STRIDE / 8 ==
		     MAPTBL_VFCFG_TABLE_BASE / 8))
		return off & 4 ? 2 : 1;
	return 0;
}

static uint32_t rnd_value(void)
{
	switch (rnd() % 6) {
	case 0: return 0;
	case 1: return ~0u;
	case 2: return 1u << (rnd() % 32);
	case 3: return (uint32_t)(rnd() % 4097);
	default: return (uint32_t)rnd();
	}
}

static int do_bar(struct maptbl_hw *hw, unsigned long count, const unsigned *fns, unsigned nfn,
		  bool any_address)
{
	unsigned long writes = 0, reads = 0, refused = 0;

	for (unsigned long i = 0; i < count; i++) {
		unsigned fn = fns[rnd() % nfn];
		uint32_t size = fn ? MAPTBL_HW_VF_BAR_SIZE : MAPTBL_HW_PF_BAR_SIZE, v = rnd_value(), got;
		/* half of the accesses go to the first 0x200 bytes, where most registers are */
		uint32_t off = (uint32_t)(rnd() % (rnd() % 2 ? 0x200 : size)) & ~3u;
		int half = any_address ? 0 : addr_half(fn, off), err;

		if (rnd() % 5 == 0) {
			err = maptbl_hw_read32(hw, fn, off, &got);
			reads++;
		} else {
			if (half == 1) /* the high half first: the address is never in guest memory */
				err = maptbl_hw_write32(hw, fn, off + 4, (uint32_t)(FAR_AWAY >> 32) | v);
			else if (half == 2)
				v |= (uint32_t)(FAR_AWAY >> 32);
			err = maptbl_hw_write32(hw, fn, off, v);
			writes++;
		}
		if (err == -EINVAL || err == -ENODEV) {
			refused++;	/* the library's own checks, not the device */
			continue;
		}
		if (err) {
			fprintf(stderr, "maptbl-hostile: fn %u offset 0x%x: %s\n", fn, off, strerror(-err));
			return 1;
		}
	}
	printf("%lu writes, %lu reads, %lu refused by the library, functions", writes, reads, refused);
	for (unsigned i = 0; i < nfn; i++)
		printf(" %u", fns[i]);
	printf("\n");
	return 0;
}

struct ring {
	struct maptbl_hw *hw;
	unsigned fn;
	struct maptbl_hw_dma *mem;
	struct maptbl_hw_req *rq;
	struct maptbl_hw_cpl *cq;
	uint32_t tail, head, phase;
};

static int ring_open(struct maptbl_hw *hw, unsigned fn, struct ring *r)
{
	uint64_t base;
	int err;

	memset(r, 0, sizeof(*r));
	r->hw = hw;
	r->fn = fn;
	r->phase = 1;
	if ((err = maptbl_hw_dma_alloc(hw, 8192, 0, &r->mem)))
		return err;
	r->rq = maptbl_hw_dma_ptr(r->mem);
	r->cq = (struct maptbl_hw_cpl *)((uint8_t *)r->rq + 4096);
	base = maptbl_hw_dma_addr(r->mem);
	if ((err = maptbl_hw_write32(hw, fn, MAPTBL_REG_Q_CTRL, 0)) ||
	    (err = maptbl_hw_write64(hw, fn, MAPTBL_REG_RQ_BASE, base)) ||
	    (err = maptbl_hw_write64(hw, fn, MAPTBL_REG_CQ_BASE, base + 4096)) ||
	    (err = maptbl_hw_write32(hw, fn, MAPTBL_REG_RQ_SIZE, RING)) ||
	    (err = maptbl_hw_write32(hw, fn, MAPTBL_REG_CQ_SIZE, RING)) ||
	    (err = maptbl_hw_write32(hw, fn, MAPTBL_REG_Q_CTRL, MAPTBL_Q_CTRL_ENABLE)))
		return err;
	return 0;
}

static unsigned long stalls_failed;

/*
 * Submit one request, wait up to 5 s for its completion; *status = its status. A VF request that
 * stalls (a write into a hole of its table: a fault for the host, REGISTERS.md §7) is failed by
 * the host's side, WALK_AGAIN = FAIL: no fault service runs here. It then completes NO_SPACE.
 */
static int ring_io(struct ring *r, const struct maptbl_hw_req *req, uint32_t *status)
{
	struct timespec t0, t;
	bool failed = false;
	uint32_t fst;
	int err;

	r->rq[r->tail] = *req;
	r->rq[r->tail].tag = maptbl_cpu_to_le32(r->tail + 1);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->tail = (r->tail + 1) % RING;
	if ((err = maptbl_hw_write32(r->hw, r->fn, MAPTBL_REG_RQ_TAIL, r->tail)))
		return err;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		volatile struct maptbl_hw_cpl *c = &r->cq[r->head];

		if ((maptbl_le16_to_cpu(c->flags) & MAPTBL_CPL_F_PHASE) == r->phase) {
			*status = maptbl_le16_to_cpu(c->status);
			if (++r->head == RING)
				r->head = 0, r->phase ^= 1;
			return maptbl_hw_write32(r->hw, r->fn, MAPTBL_REG_CQ_HEAD, r->head);
		}
		if (r->fn && !failed && !maptbl_hw_read32(r->hw, r->fn, MAPTBL_REG_STATUS, &fst) &&
		    (fst & MAPTBL_FN_STATUS_STALLED)) {
			if ((err = maptbl_hw_write32(r->hw, 0, MAPTBL_REG_PF_VFCFG(r->fn) +
						     MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL)))
				return err;
			failed = true;
			stalls_failed++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 5000)
			return -ETIMEDOUT;
	}
}

static void req_set(struct maptbl_hw_req *q, uint8_t op, uint8_t flags, uint16_t nseg, uint64_t lba,
		    uint32_t nblocks, uint64_t addr, uint32_t len)
{
	memset(q, 0, sizeof(*q));
	q->opcode = op;
	q->flags = flags;
	q->nseg = maptbl_cpu_to_le16(nseg);
	q->lba = maptbl_cpu_to_le64(lba);
	q->nblocks = maptbl_cpu_to_le32(nblocks);
	q->seg[0].addr = maptbl_cpu_to_le64(addr);
	q->seg[0].len = maptbl_cpu_to_le32(len);
	if (flags & MAPTBL_REQ_F_INDIRECT)
		q->sgl = maptbl_cpu_to_le64(addr);
}

static int do_ring(struct maptbl_hw *hw, unsigned long count, const unsigned *fns, unsigned nfn)
{
	unsigned long done = 0, by_status[16] = { 0 };
	unsigned maxfn = 0;
	uint32_t num = 0;
	int err;

	for (unsigned i = 0; i < nfn; i++)
		maxfn = fns[i] > maxfn ? fns[i] : maxfn;
	if ((err = maptbl_hw_read32(hw, 0, MAPTBL_REG_PF_NUM_VFS, &num)) ||
	    (num < maxfn && (err = maptbl_hw_set_num_vfs(hw, maxfn)))) { /* as a driver would, first */
		fprintf(stderr, "maptbl-hostile: NUM_VFS = %u: %s\n", maxfn, strerror(-err));
		return 1;
	}
	for (unsigned i = 0; i < nfn; i++) {
		unsigned fn = fns[i];
		uint32_t bs = 0, st;
		struct maptbl_hw_req fixed[12], q;
		struct ring r;

		if ((err = maptbl_hw_read32(hw, fn, MAPTBL_REG_BLOCK_SIZE, &bs)) ||
		    (err = ring_open(hw, fn, &r))) {
			fprintf(stderr, "maptbl-hostile: fn %u: ring: %s\n", fn, strerror(-err));
			return 1;
		}
		bs = bs ? bs : 4096;
		/* reads and writes of real blocks whose buffers are outside guest memory */
		req_set(&fixed[0], MAPTBL_OP_READ, 0, 1, 0, 1, FAR_AWAY, bs);
		req_set(&fixed[1], MAPTBL_OP_READ, 0, 1, 0, 1, ~0ull & ~4095ull, bs);
		req_set(&fixed[2], MAPTBL_OP_WRITE, 0, 1, 1, 1, FAR_AWAY, bs);
		req_set(&fixed[3], MAPTBL_OP_WRITE, MAPTBL_REQ_F_INDIRECT, 3, 2, 3, FAR_AWAY, 0);
		req_set(&fixed[4], MAPTBL_OP_WRITE, 0, 1, 3, 1, FAR_AWAY - bs / 2, bs);
		/* malformed: opcode, segment count, block count, reserved bits, ranges */
		req_set(&fixed[5], 0x77, 0, 1, 0, 1, FAR_AWAY, bs);
		req_set(&fixed[6], MAPTBL_OP_READ, 0, 0, 0, 1, FAR_AWAY, bs);
		req_set(&fixed[7], MAPTBL_OP_READ, MAPTBL_REQ_F_INDIRECT, 300, 0, 1, FAR_AWAY, bs);
		req_set(&fixed[8], MAPTBL_OP_WRITE, 0, 1, 0, 0, FAR_AWAY, bs);
		req_set(&fixed[9], MAPTBL_OP_WRITE, 0xf0, 1, 0, 1, FAR_AWAY, bs);
		req_set(&fixed[10], MAPTBL_OP_READ, 0, 1, ~0ull - 1, 4, FAR_AWAY, 4 * bs);
		req_set(&fixed[11], MAPTBL_OP_WRITE, 0, 1, 0, 1, FAR_AWAY, 0);
		for (unsigned long k = 0; k < 12 + count; k++) {
			if (k < 12) {
				q = fixed[k];
			} else {
				static const uint8_t ops[] = { MAPTBL_OP_READ, MAPTBL_OP_WRITE,
							       MAPTBL_OP_FLUSH, 0, 5, 0xff };
				uint8_t raw[sizeof(q)];

				for (size_t b = 0; b < sizeof(raw); b++)
					raw[b] = (uint8_t)rnd();
				memcpy(&q, raw, sizeof(q));
				q.opcode = ops[rnd() % sizeof(ops)];
				if (rnd() % 2)
					q.nblocks = maptbl_cpu_to_le32((uint32_t)(rnd() % 8));
				if (rnd() % 2)
					q.nseg = maptbl_cpu_to_le16((uint16_t)(rnd() % 4));
				if (rnd() % 2)
					q.lba = maptbl_cpu_to_le64(rnd() % 2048);
				q.sgl = maptbl_cpu_to_le64(FAR_AWAY | (rnd() & 0xffffffffull));
				for (unsigned s = 0; s < MAPTBL_REQ_INLINE_SEGS; s++)
					q.seg[s].addr = maptbl_cpu_to_le64(FAR_AWAY | (rnd() & 0xffffffffull));
				if (rnd() % 4) { /* mostly well-formed reads and writes: DMA is tried */
					uint32_t n = maptbl_le32_to_cpu(q.nblocks) % 8 + 1;

					q.opcode = rnd() % 2 ? MAPTBL_OP_READ : MAPTBL_OP_WRITE;
					q.flags &= MAPTBL_REQ_F_INDIRECT;
					q.reserved0 = maptbl_cpu_to_le32(0);
					q.nblocks = maptbl_cpu_to_le32(n);
					q.lba = maptbl_cpu_to_le64(rnd() % 1024);
					memset(&q.seg[1], 0, sizeof(q.seg[1]));
					if (q.flags) { /* the list itself is out of reach */
						memset(&q.seg[0], 0, sizeof(q.seg[0]));
						q.nseg = maptbl_cpu_to_le16((uint16_t)(rnd() % 4 + 1));
						q.sgl = maptbl_cpu_to_le64(FAR_AWAY | (rnd() & 0xfffffff8ull));
					} else {
						q.nseg = maptbl_cpu_to_le16(1);
						q.sgl = maptbl_cpu_to_le64(0);
						q.seg[0].len = maptbl_cpu_to_le32(n * bs);
						q.seg[0].reserved = maptbl_cpu_to_le32(0);
					}
				}
			}
			if ((err = ring_io(&r, &q, &st))) {
				fprintf(stderr, "maptbl-hostile: fn %u request %lu (opcode %u): %s\n", fn, k,
					q.opcode, strerror(-err));
				return 1;
			}
			/* FLUSH has no data and may succeed: every other request here must fail */
			if (st == MAPTBL_ST_OK && q.opcode != MAPTBL_OP_FLUSH) {
				fprintf(stderr, "maptbl-hostile: fn %u request %lu (opcode %u, lba %" PRIu64
					", %u blocks, nseg %u) completed OK\n", fn, k, q.opcode,
					maptbl_le64_to_cpu(q.lba), maptbl_le32_to_cpu(q.nblocks),
					maptbl_le16_to_cpu(q.nseg));
				return 1;
			}
			by_status[st < 16 ? st : 15]++;
			done++;
		}
		maptbl_hw_write32(hw, fn, MAPTBL_REG_Q_CTRL, 0);
		maptbl_hw_dma_free(r.mem);
	}
	printf("%lu requests completed:", done);
	for (unsigned s = 0; s < 16; s++)
		if (by_status[s])
			printf(" %s %lu", maptbl_hw_status_name(s), by_status[s]);
	printf(" (%lu stalled on a hole, failed by the host)\n", stalls_failed);
	return 0;
}

/* The kernel's side of VF tokens, without libmaptbl-hw (which always opens the PF too). */
static int do_vf_token(const char *vf, const char *token)
{
	char link[PATH_MAX], target[PATH_MAX], path[64], req[128];
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	const char *g;
	int container, group, fd;

	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/iommu_group", vf);
	if (!realpath(link, target) || !(g = strrchr(target, '/'))) {
		fprintf(stderr, "maptbl-hostile: %s: no IOMMU group\n", vf);
		return 3;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", g + 1);
	container = open("/dev/vfio/vfio", O_RDWR);
	group = open(path, O_RDWR);
	if (container < 0 || group < 0 || ioctl(group, VFIO_GROUP_GET_STATUS, &gs) ||
	    ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) ||
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		fprintf(stderr, "maptbl-hostile: %s: %s: %s\n", vf, path, strerror(errno));
		return 3;
	}
	if (strcmp(token, "-"))
		snprintf(req, sizeof(req), "%s vf_token=%s", vf, token);
	else
		snprintf(req, sizeof(req), "%s", vf);
	fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, req);
	if (fd < 0)
		printf("refused: %s\n", strerror(errno));
	else
		printf("opened\n"), close(fd);
	close(group);
	close(container);
	return fd < 0;
}

int main(int argc, char **argv)
{
	struct maptbl_hw *hw = NULL;
	unsigned fns[MAPTBL_HW_MAX_VFS + 1], nfn = 0;
	unsigned long count;
	char *end;
	int rc;

	if (argc == 4 && !strcmp(argv[2], "vf-token"))
		return do_vf_token(argv[1], argv[3]);
	if (argc < 6 || (strcmp(argv[2], "bar") && strcmp(argv[2], "bar-iommu") &&
			 strcmp(argv[2], "ring"))) {
		fprintf(stderr, "usage: maptbl-hostile DEV bar|bar-iommu|ring SEED COUNT FN...\n"
				"       maptbl-hostile VF-BDF vf-token UUID|-\n");
		return 2;
	}
	rng = strtoull(argv[3], &end, 0);
	count = strtoul(argv[4], &end, 0);
	if (*end) {
		fprintf(stderr, "maptbl-hostile: '%s' is not a count\n", argv[4]);
		return 2;
	}
	for (int i = 5; i < argc && nfn <= MAPTBL_HW_MAX_VFS; i++) {
		unsigned long fn = strtoul(argv[i], &end, 10);

		if (*end || fn > MAPTBL_HW_MAX_VFS) {
			fprintf(stderr, "maptbl-hostile: '%s' is not a function (0 .. 64)\n", argv[i]);
			return 2;
		}
		fns[nfn++] = (unsigned)fn;
	}
	if ((rc = maptbl_hw_open(argv[1], NULL, &hw))) {
		fprintf(stderr, "maptbl-hostile: %s: %s\n", argv[1], strerror(-rc));
		return 3;
	}
	if (!strcmp(argv[2], "ring"))
		rc = do_ring(hw, count, fns, nfn);
	else
		rc = do_bar(hw, count, fns, nfn, !strcmp(argv[2], "bar-iommu"));
	maptbl_hw_close(hw);
	return rc;
}
