/* SPDX-License-Identifier: MIT */
/*
 * fuzz_device.c - libFuzzer target for the device model (hw-iface/device): what a hostile VM can
 * do (random register writes and reads on its VF page, random ring entries, random bytes in its
 * own memory) mixed with what the hypervisor does (walk again, fail, flush, stats, faults, resets),
 * on four VFs whose tables libmaptbl built from the input. Run through devharness.c, which gives
 * each VF an IOMMU window of its own memory and audits every disk access.
 *
 * The checks, each an abort() so libFuzzer and the corpus replayer report them:
 *  - no VF's request touches a disk block outside its table's written extents (the audit);
 *  - the model never calls a disk callback outside the disk, nor a DMA callback with a zero or
 *    wrapping length;
 *  - the model never crashes, leaks or trips ASan/UBSan (the sanitizers).
 *
 * Input layout: byte 0 = flags (bits 0-1 node size 256 << n, bit 2 CHECK_CRC, bit 3 no extent
 * cache, bit 4 no node cache, bit 5 corrupt one table byte), byte 1 = extent count seed; then
 * commands, one opcode byte each followed by its operands (see run()).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devharness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVF 4
#define FZ_DISK_BLOCKS 256u
#define FZ_BS 512u

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

static void check(struct devh *h)
{
	if (h->audit_violations || h->disk_oob || h->dma_oob)
		abort();
}

/* A table for VF @vf: extents from @seed, in the VF's own quarter of the disk. */
static struct maptbl_table *vf_table(unsigned vf, uint8_t seed, uint32_t ns)
{
	struct maptbl_extent e[64];
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	uint64_t l = 0, p = (uint64_t)(vf - 1) * (FZ_DISK_BLOCKS / NVF);
	uint32_t x = seed * 2654435761u + vf;
	size_t n = 0, want = 1 + seed % 60;

	memset(e, 0, sizeof(e));
	while (n < want) {
		uint64_t len = 1 + (x >> 7) % 3;

		x = x * 1103515245u + 12345u;
		if (p + len > (uint64_t)vf * (FZ_DISK_BLOCKS / NVF))
			break;
		e[n].lblk = l;
		e[n].pblk = p;
		e[n].len = len;
		e[n].flags = (x >> 11) % 5 == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		n++;
		l += len + (x >> 13) % 3;
		p += len;
	}
	maptbl_build_opts_init(&o, sizeof(o));
	o.block_size = FZ_BS;
	o.node_size = ns;
	o.virtual_blocks = l + 8;
	o.disk_blocks = FZ_DISK_BLOCKS;
	if (maptbl_table_build(e, n, &o, &t))
		return NULL;
	return t;
}

static void setup(struct devh *h, struct maptbl_table **t, uint8_t flags, uint8_t seed,
		  struct in *in)
{
	uint32_t ns = 256u << (flags & 3);
	unsigned vf;

	for (vf = 1; vf <= NVF; vf++) {
		uint64_t a;

		t[vf] = vf_table(vf, (uint8_t)(seed + vf), ns);
		if (!t[vf])
			continue;
		a = devh_push(h, maptbl_table_data(t[vf]), maptbl_table_len(t[vf]));
		devh_allow(h, vf, t[vf]);
		if ((flags & 0x20) && vf == 1) {
			/* One byte of VF 1's table changed: the audit follows libmaptbl's reading of
			 * it when libmaptbl still accepts it, else only the sanitizers watch. */
			size_t len = maptbl_table_len(t[vf]);
			uint8_t *b = devh_ptr(h, a, len);
			struct maptbl_table *c = NULL;

			b[take(in, 2) % len] ^= (uint8_t)take(in, 1);
			if (maptbl_table_open(b, len, NULL, &c) == 0)
				devh_allow(h, vf, c);
			else
				h->audit_off[vf] = true;
			maptbl_table_free(c);
		}
		devh_vf_enable(h, vf, a, maptbl_table_len(t[vf]), maptbl_table_virtual_blocks(t[vf]),
			       FZ_BS, flags & 4 ? MAPTBL_VFCFG_CTRL_CHECK_CRC : 0);
		devh_rings(h, vf, 8, 8);
	}
	devh_fq(h, 8);
	devh_rings(h, 0, 4, 4);
}

/* The hypervisor's side: drain faults (answering some), reap the PF's completions. */
static void pf_service(struct devh *h, unsigned how)
{
	struct maptbl_hw_fault f;
	struct maptbl_hw_cpl c;

	while (devh_fault(h, &f)) {
		unsigned vf = maptbl_le16_to_cpu(f.vf);

		if (vf >= 1 && vf <= NVF)
			wr32(h, 0, MAPTBL_REG_PF_VFCFG(vf) + MAPTBL_VFCFG_WALK_AGAIN,
			     how & 1 ? MAPTBL_WALK_AGAIN_FAIL : MAPTBL_WALK_AGAIN_RETRY);
	}
	while (devh_reap(h, 0, &c))
		;
}

static void run(struct devh *h, struct in *in)
{
	unsigned steps = 0;

	while (in->n && steps++ < 2000) {
		unsigned op = (unsigned)take(in, 1);
		unsigned fn = 1 + (op >> 4) % NVF;
		struct maptbl_hw_req q;
		struct maptbl_hw_cpl c;

		switch (op & 0xF) {
		case 0: {	/* VM: register write on its page (any offset, size, value) */
			uint64_t off = take(in, 2) % (MAPTBL_HW_VF_BAR_SIZE + 0x100);
			unsigned sz = (unsigned)take(in, 1);

			mtdev_mmio_write(h->d, fn, sz & 0x80 ? off : off & ~UINT64_C(3),
					 sz & 0x40 ? sz & 0xF : (sz & 1 ? 8 : 4), take(in, 8));
			break;
		}
		case 1: {	/* VM: register read */
			uint64_t off = take(in, 2) % (MAPTBL_HW_VF_BAR_SIZE + 0x100);

			(void)mtdev_mmio_read(h->d, fn, off & ~UINT64_C(3), 4);
			break;
		}
		case 2: {	/* VM: a raw ring entry from the input */
			uint8_t raw[sizeof(q)];
			unsigned i;

			for (i = 0; i < sizeof(raw); i++)
				raw[i] = (uint8_t)take(in, 1);
			memcpy(&q, raw, sizeof(q));
			devh_submit(h, fn, &q);
			break;
		}
		case 3: {	/* VM: a well-formed request into its own memory */
			static const uint8_t ops[4] = { MAPTBL_OP_READ, MAPTBL_OP_WRITE,
							MAPTBL_OP_WRITE_ZEROES, MAPTBL_OP_FLUSH };
			unsigned o = ops[take(in, 1) % 4];
			uint64_t lba = take(in, 1);
			uint32_t nb = 1 + (uint32_t)(take(in, 1) % 4);
			uint64_t buf = devh_alloc(h, fn, (uint64_t)nb * FZ_BS, 64);

			if (!buf) {
				h->vf_next[fn] = 0;	/* window used up: start again */
				break;
			}
			if (o == MAPTBL_OP_FLUSH)
				devh_req(&q, o, 9, 0, 0, 0, 0);
			else
				devh_req(&q, o, (uint32_t)lba, lba, nb, buf,
					 o == MAPTBL_OP_WRITE_ZEROES ? 0 : nb * FZ_BS);
			devh_submit(h, fn, &q);
			break;
		}
		case 4: {	/* VM: scribble on its own memory (rings, lists, buffers) */
			uint64_t win = h->vf_win;
			uint64_t base = DEVH_MEM_BASE + h->mem_size - (uint64_t)MAPTBL_HW_MAX_VFS * win +
					(uint64_t)(fn - 1) * win;
			uint64_t off = take(in, 2) % win;
			uint8_t *p = devh_ptr(h, base + off, 1);

			if (p)
				*p = (uint8_t)take(in, 1);
			break;
		}
		case 5:		/* the device works */
			mtdev_process(h->d, (unsigned)take(in, 1) % 8);
			break;
		case 6:		/* VM: reap a completion */
			(void)devh_reap(h, fn, &c);
			break;
		case 7:		/* hypervisor: service faults */
			pf_service(h, (unsigned)take(in, 1));
			break;
		case 8: {	/* hypervisor: cache flush, stats, walk again */
			unsigned v = (unsigned)take(in, 1);

			if (v & 1)
				wr32(h, 0, MAPTBL_REG_PF_CACHE_FLUSH, v & 2 ? MAPTBL_FLUSH_ALL : fn);
			if (v & 4) {
				wr32(h, 0, MAPTBL_REG_PF_STATS_SEL, fn);
				(void)rd64(h, 0, MAPTBL_REG_PF_STATS_WIN);
			}
			if (v & 8)
				wr32(h, 0, MAPTBL_REG_PF_VFCFG(fn) + MAPTBL_VFCFG_WALK_AGAIN, v >> 4);
			break;
		}
		case 9: {	/* hypervisor: PF register traffic outside the table registers */
			uint32_t off = (uint32_t)take(in, 2) % 0x200;

			if (off == MAPTBL_REG_PF_DEV_CTRL || off == MAPTBL_REG_PF_NUM_VFS)
				break;	/* resets and VF removal have their own command */
			mtdev_mmio_write(h->d, 0, off & ~3u, 4, take(in, 4));
			break;
		}
		case 10:	/* hypervisor: VF disable/enable, or a device reset */
			if (take(in, 1) & 1) {
				wr32(h, 0, MAPTBL_REG_PF_DEV_CTRL, MAPTBL_DEV_CTRL_RESET);
			} else {
				uint32_t cfg = MAPTBL_REG_PF_VFCFG(fn);

				wr32(h, 0, cfg + MAPTBL_VFCFG_CTRL, 0);
				wr32(h, 0, cfg + MAPTBL_VFCFG_CTRL, MAPTBL_VFCFG_CTRL_ENABLE);
			}
			break;
		default:	/* VM: ring doorbells with arbitrary values */
			wr32(h, fn, op & 1 ? MAPTBL_REG_RQ_TAIL : MAPTBL_REG_CQ_HEAD,
			     (uint32_t)take(in, 1) % 12);
			break;
		}
		check(h);
	}
	mtdev_process(h->d, 0);
	check(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maptbl_table *t[NVF + 1] = { 0 };
	struct devh_cfg cfg;
	struct devh h;
	struct in in = { data, size };
	uint8_t flags = (uint8_t)take(&in, 1), seed = (uint8_t)take(&in, 1);
	unsigned i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.nr_vfs = 8;
	cfg.mem_size = UINT64_C(1) << 20;
	cfg.vf_win = UINT64_C(8) << 10;
	cfg.disk_size = (uint64_t)FZ_DISK_BLOCKS * FZ_BS;
	cfg.no_xc = flags & 8;
	cfg.no_nc = flags & 16;
	cfg.xc = 1 + seed % 9;
	cfg.nc = 1 + seed % 5;
	cfg.max_xfer = 8;
	if (devh_init(&h, &cfg))
		abort();
	h.verbose = false;
	setup(&h, t, flags, seed, &in);
	run(&h, &in);
	for (i = 0; i <= NVF; i++)
		maptbl_table_free(t[i]);
	devh_fini(&h);
	return 0;
}
