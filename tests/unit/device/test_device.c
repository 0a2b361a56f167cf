/* SPDX-License-Identifier: MIT */
/*
 * test_device.c - the device model (hw-iface/device) driven only through its registers
 * (maptbl/hw_regs.h offsets) and fake host memory and disk (devharness.c), as a driver would.
 * Tables are built with libmaptbl; reads are compared with an oracle (libmaptbl's lookup over the
 * same table, and the fake disk's bytes); every disk access a VF causes is audited against the
 * written extents of its table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <maptbl/walk.h>

#include "devharness.h"
#include "testutil.h"

#define BS 4096u

/* ---- Fixtures ---- */

static void fill_disk(struct devh *h, uint64_t seed)
{
	uint64_t i;

	for (i = 0; i + 8 <= h->disk_size; i += 8) {
		uint64_t v = (i + seed) * UINT64_C(0x9E3779B97F4A7C15);

		memcpy(h->disk + i, &v, 8);
	}
}

static void h_init(struct devh *h, unsigned nr_vfs)
{
	struct devh_cfg c;

	memset(&c, 0, sizeof(c));
	c.nr_vfs = nr_vfs;
	c.mem_size = UINT64_C(16) << 20;
	c.disk_size = UINT64_C(32) << 20;
	assert_int_equal(devh_init(h, &c), 0);
	fill_disk(h, 1);
}

static struct maptbl_table *build(const struct maptbl_extent *e, size_t n, uint32_t bs, uint32_t ns,
				  uint64_t virt, uint64_t disk)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;

	maptbl_build_opts_init(&o, sizeof(o));
	o.block_size = bs;
	o.node_size = ns;
	o.virtual_blocks = virt;
	o.disk_blocks = disk;
	assert_int_equal(maptbl_table_build(e, n, &o, &t), 0);
	return t;
}

/*
 * Random extents: sorted, gaps 0..3 blocks, lengths 1..maxlen, physically increasing with gaps,
 * all inside @disk_blocks; about one in six unwritten. Returns the count; *virt gets a virtual
 * size a little past the last extent.
 */
static size_t gen_ext(struct rng *r, struct maptbl_extent *e, size_t max, uint64_t maxlen,
		      uint64_t disk_blocks, uint64_t *virt)
{
	uint64_t l = rng_below(r, 4), p = rng_below(r, 16);
	size_t i;

	for (i = 0; i < max; i++) {
		uint64_t len = 1 + rng_below(r, maxlen);

		if (p + len > disk_blocks)
			break;
		e[i].lblk = l;
		e[i].pblk = p;
		e[i].len = len;
		e[i].flags = rng_below(r, 6) == 0 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		l += len + rng_below(r, 4);
		p += len + rng_below(r, 5);
	}
	*virt = l + rng_below(r, 40) + 1;
	return i;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static uint64_t vstat(struct devh *h, unsigned fn, unsigned idx)
{
	return rd64(h, fn, MAPTBL_REG_STATS + 8 * idx);
}

/* Check one block read through VF @vf (its data in @buf) against the table @t and the disk. */
static void check_block(struct devh *h, const struct maptbl_table *t, uint64_t lblk,
			const uint8_t *buf)
{
	uint32_t bs = maptbl_table_block_size(t);
	struct maptbl_mapping m;

	if (lblk >= maptbl_table_virtual_blocks(t)) {
		assert_true(all_zero(buf, bs));
		return;
	}
	assert_int_equal(maptbl_table_lookup(t, lblk, &m), 0);
	if (m.state == MAPTBL_MAP_MAPPED)
		assert_memory_equal(buf, h->disk + m.pblk * bs, bs);
	else
		assert_true(all_zero(buf, bs));
}

/*
 * VF 1 (of @nr_vfs VFs) enabled with a table of @e (4 KiB blocks and nodes, @virt blocks), its
 * rings of 8 entries running, and a buffer of @bufblocks blocks in its memory at *buf.
 */
static struct maptbl_table *setup_vf1(struct devh *h, unsigned nr_vfs,
				      const struct maptbl_extent *e, size_t n, uint64_t virt,
				      uint32_t bufblocks, uint64_t *buf)
{
	struct maptbl_table *t;

	h_init(h, nr_vfs);
	t = build(e, n, BS, 4096, virt, 0);
	assert_int_equal(devh_vf_table(h, 1, t, 0), MAPTBL_VFCFG_STATUS_ENABLED);
	assert_int_equal(devh_rings(h, 1, 8, 8), MAPTBL_Q_STATUS_RUNNING);
	*buf = devh_alloc(h, 1, (uint64_t)bufblocks * BS, 64);
	assert_true(*buf != 0);
	return t;
}

/* Submit @q, process, reap: the status, or -1 when no completion came. */
static int io_req(struct devh *h, unsigned fn, const struct maptbl_hw_req *q)
{
	struct maptbl_hw_cpl c;

	devh_submit(h, fn, q);
	mtdev_process(h->d, 0);
	if (!devh_reap(h, fn, &c))
		return -1;
	return maptbl_le16_to_cpu(c.status);
}

/* ---- Identification and hostile register accesses ---- */

static void test_identity(void **state)
{
	struct devh h;

	(void)state;
	h_init(&h, 8);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_ID), MAPTBL_HW_ID);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_VERSION), MAPTBL_HW_VERSION);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_FUNC), 0);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_MAX_VFS), 8);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_NUM_VFS), 0);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_BLOCK_SIZE), 4096);
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_DISK_BLOCKS), (32u << 20) / 4096);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_CACHE_INFO), 8u | 64u << 16);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_STATUS), MAPTBL_FN_STATUS_ENABLED);
	/* 64-bit register read as halves. */
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_DISK_BLOCKS), (32u << 20) / 4096);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_DISK_BLOCKS + 4), 0);
	/* VF 1 does not exist before NUM_VFS says so. */
	assert_int_equal(h.guest_errors, 0);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_ID), UINT32_MAX);
	assert_int_equal(h.guest_errors, 1);
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 2);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_ID), MAPTBL_HW_ID);
	assert_int_equal(rd32(&h, 2, MAPTBL_REG_FUNC), 2);
	assert_int_equal(rd32(&h, 2, MAPTBL_REG_STATUS), 0);
	assert_int_equal(rd64(&h, 2, MAPTBL_REG_DISK_BLOCKS), 0);
	/* More than MAX_VFS is refused. */
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 9);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_NUM_VFS), 2);
	assert_int_equal(h.guest_errors, 2);
	devh_fini(&h);
}

static void test_bad_access(void **state)
{
	struct devh h;
	unsigned ge;

	(void)state;
	h_init(&h, 4);
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 4);
	ge = h.guest_errors;
	/* Sizes other than 4 and 8, misaligned, 8 bytes on a 32-bit register. */
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_ID, 2), 0xFFFF);
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_ID, 1), 0xFF);
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_ID, 16), UINT64_MAX);
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_ID + 2, 4), UINT32_MAX);
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_RQ_BASE + 4, 8), UINT64_MAX);
	assert_int_equal(mtdev_mmio_read(h.d, 0, MAPTBL_REG_ID, 8), UINT64_MAX);
	/* Reserved offsets, past the page, unknown function. */
	assert_int_equal(rd32(&h, 0, 0x058), UINT32_MAX);
	assert_int_equal(rd32(&h, 0, 0x13C), UINT32_MAX);
	assert_int_equal(rd32(&h, 0, 0x800), UINT32_MAX);
	assert_int_equal(rd32(&h, 0, MAPTBL_HW_PF_BAR_SIZE), UINT32_MAX);
	assert_int_equal(mtdev_mmio_read(h.d, 0, UINT64_MAX - 3, 4), UINT32_MAX);
	assert_int_equal(rd32(&h, 5, MAPTBL_REG_ID), UINT32_MAX);
	assert_int_equal(rd32(&h, 1000, MAPTBL_REG_ID), UINT32_MAX);
	/* VF configuration blocks past MAX_VFS are not there. */
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_VFCFG(5) + MAPTBL_VFCFG_CTRL), UINT32_MAX);
	/* A VF page has no PF register: a VM cannot reach any table register. */
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_PF_NUM_VFS), UINT32_MAX);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_PF_VFCFG(1)), UINT32_MAX);
	wr64(&h, 1, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_TABLE_BASE, 0x1234);
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_TABLE_BASE), 0);
	wr32(&h, 1, MAPTBL_HW_VF_BAR_SIZE, 1);
	/* Writes to read-only registers are ignored. */
	wr32(&h, 0, MAPTBL_REG_ID, 0);
	wr32(&h, 0, MAPTBL_REG_PF_MAX_VFS, 64);
	wr64(&h, 1, MAPTBL_REG_DISK_BLOCKS, 1000);
	wr32(&h, 1, MAPTBL_REG_RQ_HEAD, 3);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_ID), MAPTBL_HW_ID);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_MAX_VFS), 4);
	assert_int_equal(rd64(&h, 1, MAPTBL_REG_DISK_BLOCKS), 0);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_RQ_HEAD), 0);
	/* Write-only registers read 0. */
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_CACHE_FLUSH), 0);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_WALK_AGAIN), 0);
	/* Every misuse above was logged as a guest error (the two WO reads are not misuse). */
	assert_int_equal(h.guest_errors - ge, 22);
	/* A 64-bit register written in halves. */
	wr32(&h, 0, MAPTBL_REG_PF_VFCFG(2) + MAPTBL_VFCFG_TABLE_BASE, 0x89ABCDEFu);
	wr32(&h, 0, MAPTBL_REG_PF_VFCFG(2) + MAPTBL_VFCFG_TABLE_BASE + 4, 0x01234567u);
	assert_true(rd64(&h, 0, MAPTBL_REG_PF_VFCFG(2) + MAPTBL_VFCFG_TABLE_BASE) ==
		    UINT64_C(0x0123456789ABCDEF));
	devh_fini(&h);
}

/* Random register traffic on every function: no crash, no access outside memory or disk. */
static void test_random_registers(void **state)
{
	struct devh h;
	struct rng r;
	unsigned i;

	(void)state;
	rng_seed(&r, test_seed(42));
	h_init(&h, 64);
	for (i = 0; i < 200000; i++) {
		unsigned fn = (unsigned)rng_below(&r, 67);
		uint64_t off = rng_below(&r, 4) ? rng_below(&r, 0x2100) & ~UINT64_C(3)
						: rng_next(&r);
		unsigned size = rng_below(&r, 8) ? (rng_below(&r, 2) ? 4 : 8)
						 : (unsigned)rng_below(&r, 16);
		uint64_t v = rng_below(&r, 2) ? rng_below(&r, 8) : rng_next(&r);

		if (off % 0x1000 == MAPTBL_REG_PF_DEV_CTRL && rng_below(&r, 64))
			continue;	/* keep resets rare */
		if (rng_below(&r, 2))
			mtdev_mmio_write(h.d, fn, off, size, v);
		else
			(void)mtdev_mmio_read(h.d, fn, off, size);
		if (i % 64 == 0)
			mtdev_process(h.d, 16);
	}
	assert_int_equal(h.disk_oob, 0);
	assert_int_equal(h.dma_oob, 0);
	mtdev_reset(h.d);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_NUM_VFS), 0);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_ID), MAPTBL_HW_ID);
	devh_fini(&h);
}

/* ---- Reads against an oracle ---- */

/* Read every block of VF 1 in random pieces and check each against the table and the disk. */
static void read_all_check(struct devh *h, const struct maptbl_table *t, struct rng *r)
{
	uint32_t bs = maptbl_table_block_size(t);
	uint64_t virt = rd64(h, 1, MAPTBL_REG_DISK_BLOCKS), lba = 0;
	uint64_t buf = devh_alloc(h, 1, 64 * (uint64_t)bs, 64);

	assert_true(buf != 0);
	while (lba < virt) {
		uint32_t n = (uint32_t)rng_range(r, 1, 64), got = 0, i;

		if (n > virt - lba)
			n = (uint32_t)(virt - lba);
		memset(devh_ptr(h, buf, (uint64_t)n * bs), 0xEE, (size_t)n * bs);
		assert_int_equal(devh_io(h, 1, MAPTBL_OP_READ, lba, n, buf, &got), MAPTBL_ST_OK);
		assert_int_equal(got, n);
		for (i = 0; i < n; i++)
			check_block(h, t, lba + i, devh_ptr(h, buf + (uint64_t)i * bs, bs));
		lba += n;
	}
}

static void test_read_oracle(void **state)
{
	static const uint32_t node_sizes[] = { 256, 512, 1024, 4096, 65536 };
	static struct maptbl_extent e[6000];
	struct rng r;
	unsigned k;

	(void)state;
	rng_seed(&r, test_seed(7));
	for (k = 0; k < sizeof(node_sizes) / sizeof(node_sizes[0]); k++) {
		uint32_t bs = k % 2 ? 512 : 4096;
		struct maptbl_table *t;
		struct devh h;
		uint64_t virt;
		size_t n;

		h_init(&h, 2);
		n = gen_ext(&r, e, 3000, 12, (32u << 20) / bs, &virt);
		t = build(e, n, bs, node_sizes[k], virt, 0);
		assert_int_equal(devh_vf_table(&h, 1, t, k % 2 ? MAPTBL_VFCFG_CTRL_CHECK_CRC : 0),
				 MAPTBL_VFCFG_STATUS_ENABLED);
		assert_int_equal(rd32(&h, 1, MAPTBL_REG_BLOCK_SIZE), bs);
		assert_int_equal(devh_rings(&h, 1, 64, 64), MAPTBL_Q_STATUS_RUNNING);
		read_all_check(&h, t, &r);
		assert_int_equal(h.audit_violations, 0);
		assert_int_equal(h.disk_oob, 0);
		assert_int_equal(h.guest_errors, 0);
		assert_true(vstat(&h, 1, MAPTBL_STAT_WALKS) > 0);
		assert_int_equal(vstat(&h, 1, MAPTBL_STAT_ERRORS), 0);
		maptbl_table_free(t);
		devh_fini(&h);
	}
}

/* Scatter-gather: inline pairs and indirect lists of odd-sized segments. */
static void test_segments(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 16, 0 }, { 20, 300, 8, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_req q;
	struct maptbl_hw_seg *list;
	uint64_t bufs[5], sgl;
	static const uint32_t lens[4] = { 1, 4095, 8192, 3000 };	/* and the rest */
	uint8_t out[6 * BS];
	unsigned i;
	uint32_t off;
	struct devh h;

	(void)state;
	h_init(&h, 1);
	t = build(e, 2, BS, 4096, 64, 0);
	assert_int_equal(devh_vf_table(&h, 1, t, 0), MAPTBL_VFCFG_STATUS_ENABLED);
	devh_rings(&h, 1, 16, 16);

	/* Two inline segments: 1 block + 1 block. */
	bufs[0] = devh_alloc(&h, 1, BS, 1);
	bufs[1] = devh_alloc(&h, 1, BS, 1);
	devh_req(&q, MAPTBL_OP_READ, 1, 3, 2, bufs[0], BS);
	q.nseg = maptbl_cpu_to_le16(2);
	q.seg[1].addr = maptbl_cpu_to_le64(bufs[1]);
	q.seg[1].len = maptbl_cpu_to_le32(BS);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, bufs[0], BS), h.disk + 103 * BS, BS);
	assert_memory_equal(devh_ptr(&h, bufs[1], BS), h.disk + 104 * BS, BS);

	/* Indirect: 6 blocks from block 14 (14, 15 mapped; 16..19 hole) in 5 odd segments. */
	list = NULL;
	sgl = devh_alloc(&h, 1, 5 * sizeof(*list), 8);
	list = devh_ptr(&h, sgl, 5 * sizeof(*list));
	for (i = 0; i < 5; i++) {
		uint32_t len = i < 4 ? lens[i] : 6 * BS - (1 + 4095 + 8192 + 3000);

		bufs[i] = devh_alloc(&h, 1, len, 1);
		list[i].addr = maptbl_cpu_to_le64(bufs[i]);
		list[i].len = maptbl_cpu_to_le32(len);
		list[i].reserved = maptbl_cpu_to_le32(0);
		memset(devh_ptr(&h, bufs[i], len), 0xEE, len);
	}
	devh_req(&q, MAPTBL_OP_READ, 2, 14, 6, 0, 0);
	q.flags = MAPTBL_REQ_F_INDIRECT;
	q.nseg = maptbl_cpu_to_le16(5);
	q.sgl = maptbl_cpu_to_le64(sgl);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_OK);
	for (i = 0, off = 0; i < 5; i++) {
		uint32_t len = maptbl_le32_to_cpu(list[i].len);

		memcpy(out + off, devh_ptr(&h, bufs[i], len), len);
		off += len;
	}
	assert_int_equal(off, 6 * BS);
	assert_memory_equal(out, h.disk + 114 * BS, 2 * BS);
	assert_true(all_zero(out + 2 * BS, 4 * BS));

	/* Segment lengths that do not add up, and a zero-length segment. */
	list[4].len = maptbl_cpu_to_le32(maptbl_le32_to_cpu(list[4].len) - 1);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	list[4].len = maptbl_cpu_to_le32(0);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	/* A misaligned list, and a list outside memory. */
	q.sgl = maptbl_cpu_to_le64(sgl + 4);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	q.sgl = maptbl_cpu_to_le64(8);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_DMA_ERROR);
	assert_int_equal(h.audit_violations, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* ---- Writes, holes, unwritten extents, faults ---- */

static void test_write_mapped(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 }, { 10, 200, 4, 0 } };
	struct maptbl_table *t;
	struct devh h;
	uint64_t buf;
	uint32_t got;

	(void)state;
	t = setup_vf1(&h, 1, e, 2, 32, 4, &buf);
	memset(devh_ptr(&h, buf, 4 * BS), 0xA5, 4 * BS);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 6, 2, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(got, 2);
	assert_int_equal(h.disk[106 * BS], 0xA5);
	assert_int_equal(h.disk[108 * BS - 1], 0xA5);
	assert_int_not_equal(h.disk[108 * BS], 0xA5);
	assert_int_not_equal(h.disk[106 * BS - 1], 0xA5);
	/* Write-zeroes over mapped blocks and a hole: mapped ones zeroed, the hole stays a hole. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE_ZEROES, 7, 4, 0, &got), MAPTBL_ST_OK);
	assert_int_equal(got, 4);
	assert_true(all_zero(h.disk + 107 * BS, BS));
	assert_int_equal(h.disk[106 * BS], 0xA5);
	assert_true(all_zero(h.disk + 200 * BS, BS));
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WRITE_BLOCKS), 4);	/* 6, 7; then 7 and 10 */
	/* Flush: OK, one flush of the disk. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_FLUSH, 0, 0, 0, NULL), MAPTBL_ST_OK);
	assert_int_equal(h.disk_flushes, 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_FLUSHES), 1);
	assert_int_equal(h.audit_violations, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/*
 * CTRL.COMMIT (REGISTERS.md §5, §12.6): while the host has allocations its filesystem has not
 * committed, a FLUSH and the end of a FUA write stall with a COMMIT fault, and the disk is
 * flushed only after the host cleared the bit and walked again; FAIL_IO fails the request with an
 * I/O error; ENABLE 1 -> 0 clears the bit; the PF and other VFs are not held.
 */
static void test_commit_fault(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 } };
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(1), on = MAPTBL_VFCFG_CTRL_ENABLE;
	struct maptbl_table *t;
	struct maptbl_hw_fault f;
	struct maptbl_hw_req q;
	struct maptbl_hw_cpl c;
	struct devh h;
	uint64_t buf;

	(void)state;
	t = setup_vf1(&h, 2, e, 1, 32, 2, &buf);
	assert_int_equal(devh_fq(&h, 16), MAPTBL_FQ_STATUS_RUNNING);
	devh_vf_table(&h, 2, t, 0);
	devh_rings(&h, 2, 8, 8);
	devh_rings(&h, 0, 8, 8);
	/* Without COMMIT a flush flushes the disk at once. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_FLUSH, 0, 0, 0, NULL), MAPTBL_ST_OK);
	assert_int_equal(h.disk_flushes, 1);

	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, on | MAPTBL_VFCFG_CTRL_COMMIT);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_CTRL), on | MAPTBL_VFCFG_CTRL_COMMIT);
	assert_int_equal(h.guest_errors, 0);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_FLUSH, 0, 0, 0, NULL), -1);
	assert_int_equal(h.disk_flushes, 1);
	assert_true(rd32(&h, 0, cfg + MAPTBL_VFCFG_STATUS) & MAPTBL_VFCFG_STATUS_STALLED);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le16_to_cpu(f.vf), 1);
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_COMMIT);
	assert_false(maptbl_le16_to_cpu(f.info) & MAPTBL_FAULT_INFO_WRITE);
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 0);
	assert_int_equal(maptbl_le32_to_cpu(f.count), 0);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_FAULT_INFO),
			 maptbl_hw_fault_info(MAPTBL_FAULT_COMMIT, 0));
	/* VF 2 and the PF flush meanwhile: their COMMIT is clear. */
	assert_int_equal(devh_io(&h, 2, MAPTBL_OP_FLUSH, 0, 0, 0, NULL), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 0, MAPTBL_OP_FLUSH, 0, 0, 0, NULL), MAPTBL_ST_OK);
	assert_int_equal(h.disk_flushes, 3);
	/* Walking again with the bit still set faults again: nothing was committed. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	mtdev_process(h.d, 0);
	assert_false(devh_reap(&h, 1, &c));
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_COMMIT);
	assert_int_equal(h.disk_flushes, 3);
	/* The host committed: clears the bit, walks again; the flush flushes and completes. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, on);
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	mtdev_process(h.d, 0);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
	assert_int_equal(h.disk_flushes, 4);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_FLUSHES), 2);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_FAULTS), 2);

	/* A FUA write: its data goes to the disk, then it stalls before its flush (WRITE set). */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, on | MAPTBL_VFCFG_CTRL_COMMIT);
	memset(devh_ptr(&h, buf, BS), 0x3C, BS);
	devh_req(&q, MAPTBL_OP_WRITE, 9, 3, 1, buf, BS);
	q.flags |= MAPTBL_REQ_F_FUA;
	assert_int_equal(io_req(&h, 1, &q), -1);
	assert_int_equal(h.disk[103 * BS], 0x3C);
	assert_int_equal(h.disk_flushes, 4);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_COMMIT);
	assert_true(maptbl_le16_to_cpu(f.info) & MAPTBL_FAULT_INFO_WRITE);
	assert_int_equal(maptbl_le32_to_cpu(f.tag), 9);
	/* The commit failed: FAIL_IO completes it with IO_ERROR, its block counted as written. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL_IO);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le32_to_cpu(c.tag), 9);
	assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_IO_ERROR);
	assert_int_equal(maptbl_le32_to_cpu(c.blocks), 1);
	assert_int_equal(h.disk_flushes, 4);
	/* FAIL_IO with nothing stalled: a guest error, nothing completes. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL_IO);
	assert_int_equal(h.guest_errors, 1);
	assert_false(devh_reap(&h, 1, &c));
	/* A FUA write that commits: flushed once, after the commit. */
	devh_req(&q, MAPTBL_OP_WRITE, 10, 4, 1, buf, BS);
	q.flags |= MAPTBL_REQ_F_FUA;
	assert_int_equal(io_req(&h, 1, &q), -1);
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, on);
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	mtdev_process(h.d, 0);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
	assert_int_equal(maptbl_le32_to_cpu(c.blocks), 1);
	assert_int_equal(h.disk_flushes, 5);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WRITE_BLOCKS), 2);

	/* Disabling the VF clears COMMIT. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, on | MAPTBL_VFCFG_CTRL_COMMIT);
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, 0);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_CTRL), 0);
	assert_int_equal(h.audit_violations, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* Write to a hole: fault, stall, the host fills it, walk again, completion. */
static void test_write_fault_fill(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 }, { 16, 300, 4, 0 } };
	struct maptbl_extent e2[] = { { 0, 100, 8, 0 }, { 8, 500, 4, 0 }, { 16, 300, 4, 0 } };
	struct maptbl_table *t, *t2;
	struct maptbl_hw_req q;
	struct maptbl_hw_cpl c;
	struct maptbl_hw_fault f;
	struct devh h;
	uint64_t buf, rbuf, a2;
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(1), got;

	(void)state;
	h_init(&h, 2);
	assert_int_equal(devh_fq(&h, 16), MAPTBL_FQ_STATUS_RUNNING);
	t = build(e, 2, BS, 4096, 64, 0);
	devh_vf_table(&h, 1, t, 0);
	devh_vf_table(&h, 2, t, MAPTBL_VFCFG_CTRL_READ_ONLY);
	devh_rings(&h, 1, 8, 8);
	devh_rings(&h, 2, 8, 8);
	devh_rings(&h, 0, 8, 8);
	buf = devh_alloc(&h, 1, 3 * BS, 64);
	rbuf = devh_alloc(&h, 1, 3 * BS, 64);
	memset(devh_ptr(&h, buf, 3 * BS), 0x5C, 3 * BS);

	/* Blocks 7, 8, 9: 7 is mapped, 8 and 9 a hole (up to 16). */
	devh_req(&q, MAPTBL_OP_WRITE, 77, 7, 3, buf, 3 * BS);
	devh_submit(&h, 1, &q);
	mtdev_process(h.d, 0);
	assert_false(devh_reap(&h, 1, &c));
	assert_int_equal(h.disk[107 * BS], 0x5C);	/* the mapped part is done */
	assert_true(rd32(&h, 1, MAPTBL_REG_STATUS) & MAPTBL_FN_STATUS_STALLED);
	assert_true(rd32(&h, 0, cfg + MAPTBL_VFCFG_STATUS) & MAPTBL_VFCFG_STATUS_STALLED);
	assert_int_equal(rd64(&h, 0, cfg + MAPTBL_VFCFG_FAULT_LBA), 8);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_FAULT_COUNT), 2);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_FAULT_INFO),
			 maptbl_hw_fault_info(MAPTBL_FAULT_HOLE, 1));
	assert_int_equal(h.irqs[0][MAPTBL_VEC_FAULT], 1);
	assert_int_equal(h.fault_irq_early, 0);	/* the entry came before the interrupt */
	assert_true(rd32(&h, 0, MAPTBL_REG_INT_STATUS) & MAPTBL_INT_FAULT);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 8);
	assert_int_equal(maptbl_le32_to_cpu(f.count), 2);
	assert_int_equal(maptbl_le16_to_cpu(f.vf), 1);
	assert_int_equal(maptbl_le32_to_cpu(f.tag), 77);
	assert_int_equal(maptbl_le32_to_cpu(f.seq), 1);
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_HOLE);
	assert_true(maptbl_le16_to_cpu(f.info) & MAPTBL_FAULT_INFO_WRITE);
	assert_false(devh_fault(&h, &f));
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_FAULTS), 1);

	/* While VF 1 waits, VF 2 and the PF go on. */
	assert_int_equal(devh_io(&h, 2, MAPTBL_OP_READ, 0, 1, devh_alloc(&h, 2, BS, 64), &got),
			 MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 2, MAPTBL_OP_WRITE, 0, 1, devh_alloc(&h, 2, BS, 64), &got),
			 MAPTBL_ST_READ_ONLY);
	assert_int_equal(devh_io(&h, 0, MAPTBL_OP_READ, 100, 1, devh_alloc(&h, 0, BS, 64), &got),
			 MAPTBL_ST_OK);

	/* Walk again without fixing anything: faults again, with the next sequence number. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	mtdev_process(h.d, 0);
	assert_false(devh_reap(&h, 1, &c));
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le32_to_cpu(f.seq), 2);
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 8);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_FAULTS), 2);

	/* The host fills the hole: a new table with 8..11 at 500, pushed and latched. */
	t2 = build(e2, 3, BS, 4096, 64, 0);
	a2 = devh_push(&h, maptbl_table_data(t2), maptbl_table_len(t2));
	devh_allow(&h, 1, t2);
	wr64(&h, 0, cfg + MAPTBL_VFCFG_TABLE_BASE, a2);
	wr64(&h, 0, cfg + MAPTBL_VFCFG_TABLE_LEN, maptbl_table_len(t2));
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	assert_false(rd32(&h, 1, MAPTBL_REG_STATUS) & MAPTBL_FN_STATUS_STALLED);
	mtdev_process(h.d, 0);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le32_to_cpu(c.tag), 77);
	assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
	assert_int_equal(maptbl_le32_to_cpu(c.blocks), 3);
	assert_memory_equal(h.disk + 500 * BS, devh_ptr(&h, buf + BS, 2 * BS), 2 * BS);
	/* And reads see it. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 7, 3, rbuf, &got), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, rbuf, 3 * BS), devh_ptr(&h, buf, 3 * BS), 3 * BS);

	/* A write the host cannot serve: WALK_AGAIN = FAIL completes it with NO_SPACE. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 30, 1, buf, &got), -1);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 30);
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_NO_SPACE);
	assert_int_equal(maptbl_le32_to_cpu(c.blocks), 0);
	/* FAIL with nothing stalled, and a bad value, are guest errors and change nothing. */
	{
		unsigned ge = h.guest_errors;

		wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL);
		wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, 7);
		assert_int_equal(h.guest_errors - ge, 2);
	}
	assert_int_equal(h.audit_violations, 0);
	maptbl_table_free(t);
	maptbl_table_free(t2);
	devh_fini(&h);
}

/* Unwritten extents: reads are zeros without touching the disk, writes fault UNWRITTEN. */
static void test_unwritten(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, MAPTBL_EXTENT_UNWRITTEN } };
	struct maptbl_table *t;
	struct maptbl_hw_fault f;
	struct devh h;
	uint64_t buf, reads;
	uint32_t got;

	(void)state;
	t = setup_vf1(&h, 1, e, 1, 100, 8, &buf);
	devh_fq(&h, 4);
	memset(devh_ptr(&h, buf, 8 * BS), 0xEE, 8 * BS);
	reads = h.disk_reads;
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 8, buf, &got), MAPTBL_ST_OK);
	assert_true(all_zero(devh_ptr(&h, buf, 8 * BS), 8 * BS));
	assert_int_equal(h.disk_reads, reads);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_ZERO_BLOCKS), 8);
	/* Past the table's extents, up to the virtual size: a hole, zeros. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 92, 8, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 2, 1, buf, &got), -1);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_UNWRITTEN);
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 2);
	assert_int_equal(maptbl_le32_to_cpu(f.count), 1);
	assert_int_equal(h.disk_writes, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* A VF larger than its table: blocks past the table's virtual size are holes. */
static void test_virt_past_table(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_fault f;
	struct devh h;
	uint64_t a, buf;
	uint32_t got;

	(void)state;
	h_init(&h, 1);
	devh_fq(&h, 4);
	t = build(e, 1, BS, 4096, 8, 0);
	a = devh_push(&h, maptbl_table_data(t), maptbl_table_len(t));
	devh_allow(&h, 1, t);
	assert_int_equal(devh_vf_enable(&h, 1, a, maptbl_table_len(t), 1000, BS, 0),
			 MAPTBL_VFCFG_STATUS_ENABLED);
	assert_int_equal(rd64(&h, 1, MAPTBL_REG_DISK_BLOCKS), 1000);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, 4 * BS, 64);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 996, 4, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 997, 4, buf, &got), MAPTBL_ST_OUT_OF_RANGE);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 500, 1, buf, &got), -1);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 500);
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_HOLE);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* An absent (pruned) subtree, written by hand: reads fault too, with reason ABSENT. */
static void test_absent(void **state)
{
	uint8_t *tb = tw_alloc(256, 3);
	struct maptbl_hw_fault f;
	struct maptbl_table *t = NULL;
	struct devh h;
	uint64_t a, buf;
	uint32_t got;

	(void)state;
	tw_header(tb, 3 * 256, 256, 1, 100, 0, 0);
	tw_node(tb, 256, 1, MAPTBL_NODE_INDEX, 1, 0);
	tw_index(tb, 256, 1, 0, 10, 2);
	tw_index(tb, 256, 1, 50, 20, 0);	/* blocks 50..69 pruned */
	tw_seal_node(tb, 256, 1);
	tw_node(tb, 256, 2, MAPTBL_NODE_LEAF_COMPACT, 0, 0);
	tw_compact(tb, 256, 2, 0, 10, 100, false);
	tw_seal_node(tb, 256, 2);
	tw_seal_header(tb, 3 * 256);
	assert_int_equal(maptbl_table_open(tb, 3 * 256, NULL, &t), 0);

	h_init(&h, 1);
	devh_fq(&h, 4);
	a = devh_push(&h, tb, 3 * 256);
	devh_allow(&h, 1, t);
	assert_int_equal(devh_vf_enable(&h, 1, a, 3 * 256, 100, 4096, MAPTBL_VFCFG_CTRL_CHECK_CRC),
			 MAPTBL_VFCFG_STATUS_ENABLED);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, 4 * BS, 64);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 8, 4, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 48, 4, buf, &got), -1);
	assert_true(devh_fault(&h, &f));
	assert_int_equal(maptbl_le64_to_cpu(f.lba), 50);
	assert_int_equal(maptbl_le32_to_cpu(f.count), 2);
	assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)), MAPTBL_FAULT_ABSENT);
	assert_false(maptbl_le16_to_cpu(f.info) & MAPTBL_FAULT_INFO_WRITE);
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_FAULT_LBA), 50);
	maptbl_table_free(t);
	free(tb);
	devh_fini(&h);
}

/* ---- Isolation and bad requests ---- */

static void test_bad_requests(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 }, { 8, 7000, 4, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_req q;
	struct devh h;
	uint64_t buf;
	uint32_t got;

	(void)state;
	t = setup_vf1(&h, 3, e, 2, 16, 4, &buf);

	devh_req(&q, 9, 1, 0, 1, buf, BS);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_OPCODE);
	devh_req(&q, 0, 1, 0, 1, buf, BS);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_OPCODE);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	q.flags = 0x80;
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	q.reserved0 = maptbl_cpu_to_le32(1);
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	q.nseg = maptbl_cpu_to_le16(3);	/* > 2 inline */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	q.seg[1].addr = maptbl_cpu_to_le64(buf);	/* unused inline segment not zero */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 0, buf, BS);	/* nblocks 0 */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 2049, buf, BS);	/* > MAX_XFER */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_FLUSH, 1, 3, 0, 0, 0);	/* flush with an lba */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	q.flags = MAPTBL_REQ_F_FUA;	/* FUA on a read */
	assert_int_equal(io_req(&h, 1, &q), MAPTBL_ST_BAD_REQUEST);

	/* Out of range, including a block number that would wrap. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 15, 2, buf, &got), MAPTBL_ST_OUT_OF_RANGE);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 16, 1, buf, &got), MAPTBL_ST_OUT_OF_RANGE);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, UINT64_MAX, 2, buf, &got),
			 MAPTBL_ST_OUT_OF_RANGE);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE_ZEROES, UINT64_MAX - 1, 4, 0, &got),
			 MAPTBL_ST_OUT_OF_RANGE);
	/* Bad buffer addresses: outside memory, and wrapping past 2^64. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, 0x1000, &got), MAPTBL_ST_DMA_ERROR);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, UINT64_MAX - 100, &got),
			 MAPTBL_ST_DMA_ERROR);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 0, 1, UINT64_MAX - 100, &got),
			 MAPTBL_ST_DMA_ERROR);
	/* A buffer that ends past memory: the first block arrives, then DMA_ERROR with blocks 1. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 2,
				 DEVH_MEM_BASE + h.mem_size - BS, &got), MAPTBL_ST_DMA_ERROR);
	/* A disk error. */
	h.fail_disk = 1;
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_IO_ERROR);
	/* VF 2 has no table: NOT_READY. */
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 3);
	devh_rings(&h, 2, 4, 4);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, devh_alloc(&h, 2, BS, 64), BS);
	assert_int_equal(io_req(&h, 2, &q), MAPTBL_ST_NOT_READY);
	/* A flush there too (fuzz_device found a division by its block size 0 in CI). */
	devh_req(&q, MAPTBL_OP_FLUSH, 2, 0, 0, 0, 0);
	assert_int_equal(io_req(&h, 2, &q), MAPTBL_ST_NOT_READY);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_ERRORS), vstat(&h, 1, MAPTBL_STAT_REQUESTS));
	assert_int_equal(h.audit_violations, 0);
	assert_int_equal(h.disk_oob, 0);
	assert_int_equal(h.dma_oob, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* A table whose extent lies past the end of the disk (header disk_blocks not recorded). */
static void test_past_disk(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 }, { 8, 8190, 4, 0 } };	/* disk: 8192 */
	struct maptbl_table *t;
	struct devh h;
	uint64_t buf;
	uint32_t got, st;

	(void)state;
	t = setup_vf1(&h, 1, e, 2, 16, 8, &buf);
	h.audit = false;	/* the table itself names blocks past the disk */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 8, 4, buf, &got), MAPTBL_ST_IO_ERROR);
	assert_int_equal(got, 0);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 8, 2, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 6, 6, buf, &got), MAPTBL_ST_IO_ERROR);
	assert_int_equal(got, 2);
	st = rd32(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_STATUS);
	assert_true(st & MAPTBL_VFCFG_STATUS_TABLE_ERROR);
	assert_int_equal(maptbl_hw_get(st, MAPTBL_VFCFG_STATUS_TERR_SHIFT, MAPTBL_VFCFG_STATUS_TERR_MASK),
			 MAPTBL_TERR_PAST_DISK);
	assert_int_equal(h.disk_oob, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* Enabling a VF checks the header; a bad table never enables. */
static void test_enable_checks(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 } };
	struct maptbl_table *t;
	struct devh h;
	uint64_t a, len;
	uint8_t *p;
	uint32_t st, cfg = MAPTBL_REG_PF_VFCFG(1);

	(void)state;
	h_init(&h, 2);
	t = build(e, 1, BS, 4096, 64, 0);
	len = maptbl_table_len(t);
	a = devh_push(&h, maptbl_table_data(t), len);
	p = devh_ptr(&h, a, len);
#define TERR(s) maptbl_hw_get(s, MAPTBL_VFCFG_STATUS_TERR_SHIFT, MAPTBL_VFCFG_STATUS_TERR_MASK)
	st = devh_vf_enable(&h, 1, a + 4, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_CONFIG);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_CTRL) & MAPTBL_VFCFG_CTRL_ENABLE, 0);
	assert_true(rd32(&h, 0, MAPTBL_REG_INT_STATUS) & MAPTBL_INT_ERROR);
	st = devh_vf_enable(&h, 1, 0x1000, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_DMA);
	st = devh_vf_enable(&h, 1, UINT64_MAX - 7, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_CONFIG);
	st = devh_vf_enable(&h, 1, a, len + 4096, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_MISMATCH);
	st = devh_vf_enable(&h, 1, a, len, 64, 512, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_MISMATCH);
	st = devh_vf_enable(&h, 1, a, len, 0, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_CONFIG);
	assert_int_equal(maptbl_hw_get(rd32(&h, 0, MAPTBL_REG_PF_LAST_ERROR),
				       MAPTBL_LAST_ERROR_SRC_SHIFT, MAPTBL_LAST_ERROR_SRC_MASK),
			 MAPTBL_ERRSRC_TABLE);
	p[0] ^= 1;
	st = devh_vf_enable(&h, 1, a, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_HEADER);
	p[0] ^= 1;
	p[8] = 2;	/* version 2 */
	st = devh_vf_enable(&h, 1, a, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_UNSUPPORTED);
	p[8] = 1;
	p[100] = 1;	/* reserved header byte: the CRC check is off, the reserved check is not */
	st = devh_vf_enable(&h, 1, a, len, 64, BS, 0);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_HEADER);
	p[100] = 0;
	p[63] ^= 0;	/* no-op */
	p[12] ^= 0xFF;	/* header CRC wrong: only with CHECK_CRC */
	st = devh_vf_enable(&h, 1, a, len, 64, BS, MAPTBL_VFCFG_CTRL_CHECK_CRC);
	assert_int_equal(TERR(st), MAPTBL_TERR_BAD_HEADER);
	st = devh_vf_enable(&h, 1, a, len, 64, BS, 0);
	assert_int_equal(st, MAPTBL_VFCFG_STATUS_ENABLED);
	/* VF 2 cannot be enabled while NUM_VFS is 1. */
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_NUM_VFS), 1);
	wr32(&h, 0, MAPTBL_REG_PF_VFCFG(2) + MAPTBL_VFCFG_CTRL, MAPTBL_VFCFG_CTRL_ENABLE);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_VFCFG(2) + MAPTBL_VFCFG_STATUS), 0);
	/* Lowering NUM_VFS disables VF 1. */
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 0);
	assert_int_equal(rd32(&h, 0, cfg + MAPTBL_VFCFG_STATUS) & MAPTBL_VFCFG_STATUS_ENABLED, 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* ---- The model's walker against libmaptbl's reference walker ---- */

static uint8_t scratch[65536];

/*
 * Compare, block by block, what VF 1 reads with what maptbl_walk_lookup() says over the same bytes
 * (@buf, @len). With @exact (libmaptbl accepts the table) the two must agree on every block;
 * otherwise (a corrupt table) every block the reference walker rejects must complete with
 * TABLE_ERROR, and every block both answer must agree. Returns how many blocks the device refused
 * while the reference walker answered (allowed only for corrupt tables: the device checks whole
 * nodes).
 */
static unsigned compare_walkers(uint8_t *buf, size_t len, bool crc, bool exact, bool caches,
				uint64_t disk_bytes)
{
	struct maptbl_walker w;
	struct membuf mb;
	struct devh h;
	struct devh_cfg c;
	enum maptbl_walk_status ws;
	uint64_t a, rbuf, lblk, virt;
	uint32_t bs, got, cfg = MAPTBL_REG_PF_VFCFG(1), st;
	unsigned stricter = 0;

	memset(&c, 0, sizeof(c));
	c.nr_vfs = 1;
	c.mem_size = UINT64_C(8) << 20;
	c.disk_size = disk_bytes;
	c.no_xc = !caches;
	c.no_nc = !caches;
	assert_int_equal(devh_init(&h, &c), 0);
	fill_disk(&h, 3);
	h.audit = false;	/* checked here against the reference walker instead */
	membuf_init(&mb, buf, len);
	ws = maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
			      crc ? MAPTBL_WALK_CHECK_CRC : 0);
	a = devh_push(&h, buf, len);
	assert_true(a != 0);
	if (ws != MAPTBL_WALK_OK) {
		/* A header the reference refuses is refused by the device too. */
		st = devh_vf_enable(&h, 1, a, len, 1, 4096, crc ? MAPTBL_VFCFG_CTRL_CHECK_CRC : 0);
		assert_false(st & MAPTBL_VFCFG_STATUS_ENABLED);
		devh_fini(&h);
		return 0;
	}
	bs = w.block_size;
	virt = w.virtual_blocks < 20000 ? w.virtual_blocks : 20000;
	if (!virt) {
		devh_fini(&h);
		return 0;
	}
	/* The registers say what the header says (a corrupt table_len is the table's problem). */
	st = devh_vf_enable(&h, 1, a, w.table_len, virt, bs, crc ? MAPTBL_VFCFG_CTRL_CHECK_CRC : 0);
	assert_int_equal(st, MAPTBL_VFCFG_STATUS_ENABLED);
	devh_rings(&h, 1, 4, 4);
	devh_fq(&h, 4);
	rbuf = devh_alloc(&h, 1, bs, 64);
	for (lblk = 0; lblk < virt; lblk++) {
		struct maptbl_walk_result r;
		struct maptbl_hw_fault f;
		struct maptbl_hw_cpl cpl;
		uint8_t *out = devh_ptr(&h, rbuf, bs);
		int s;

		memset(out, 0xEE, bs);
		ws = maptbl_walk_lookup(&w, lblk, &r);
		s = devh_io(&h, 1, MAPTBL_OP_READ, lblk, 1, rbuf, &got);
		if (ws != MAPTBL_WALK_OK) {
			assert_false(exact);
			assert_int_equal(s, MAPTBL_ST_TABLE_ERROR);
			continue;
		}
		if (s == MAPTBL_ST_TABLE_ERROR) {
			assert_false(exact);
			stricter++;
			continue;
		}
		if (r.state == MAPTBL_MAP_ABSENT) {
			assert_int_equal(s, -1);
			assert_true(devh_fault(&h, &f));
			assert_int_equal(maptbl_le64_to_cpu(f.lba), lblk);
			assert_int_equal(maptbl_hw_fault_reason(maptbl_le16_to_cpu(f.info)),
					 MAPTBL_FAULT_ABSENT);
			wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL);
			assert_true(devh_reap(&h, 1, &cpl));
			assert_int_equal(maptbl_le16_to_cpu(cpl.status), MAPTBL_ST_NO_SPACE);
			continue;
		}
		if (r.state == MAPTBL_MAP_MAPPED && (r.pblk + 1) * bs > h.disk_size) {
			assert_int_equal(s, MAPTBL_ST_IO_ERROR);
			continue;
		}
		assert_int_equal(s, MAPTBL_ST_OK);
		if (r.state == MAPTBL_MAP_MAPPED)
			assert_memory_equal(out, h.disk + r.pblk * bs, bs);
		else
			assert_true(all_zero(out, bs));
	}
	assert_int_equal(h.disk_oob, 0);
	assert_int_equal(h.dma_oob, 0);
	devh_fini(&h);
	return stricter;
}

static void test_walker_agrees(void **state)
{
	static struct maptbl_extent e[3000];
	struct rng r;
	uint32_t ns;

	(void)state;
	rng_seed(&r, test_seed(11));
	for (ns = 256; ns <= 65536; ns *= 2) {
		unsigned rep;

		for (rep = 0; rep < 3; rep++) {
			struct maptbl_table *t;
			uint64_t virt;
			/* Small tables, deep ones, and long extents (wide leaves, mostly past the disk). */
			size_t n = rep == 2 ? gen_ext(&r, e, 40, 40000, 1u << 30, &virt)
					    : gen_ext(&r, e, rep ? 2500 : 40, 9, rep ? 4096 : 1024, &virt);
			uint8_t *copy;

			t = build(e, n, 4096, ns, virt, 0);
			copy = malloc(maptbl_table_len(t));
			memcpy(copy, maptbl_table_data(t), maptbl_table_len(t));
			/* The disk pattern: mapped blocks read non-zero bytes. */
			compare_walkers(copy, maptbl_table_len(t), rep == 1, true, rep != 2,
					(uint64_t)(rep == 1 ? 4096 : 1024) * 4096);
			free(copy);
			maptbl_table_free(t);
		}
	}
}

/* Corrupt tables: random byte flips in built tables. Never a crash, never a wrong answer. */
static void test_walker_corrupt(void **state)
{
	static struct maptbl_extent e[400];
	struct rng r;
	unsigned iter, stricter = 0;

	(void)state;
	rng_seed(&r, test_seed(13));
	for (iter = 0; iter < 80; iter++) {
		uint32_t ns = 256u << rng_below(&r, 3);
		struct maptbl_table *t;
		uint64_t virt;
		size_t n = gen_ext(&r, e, 50 + rng_below(&r, 300), 9, 1024, &virt), len, i;
		unsigned flips = 1 + (unsigned)rng_below(&r, 4);
		uint8_t *copy;

		t = build(e, n, 4096, ns, virt, 0);
		len = maptbl_table_len(t);
		copy = malloc(len);
		memcpy(copy, maptbl_table_data(t), len);
		for (i = 0; i < flips; i++) {
			/* Mostly in tree nodes; sometimes the header's live word or sizes. */
			size_t off = rng_below(&r, 8) ? ns + rng_below(&r, len - ns) : rng_below(&r, 80);

			copy[off] ^= (uint8_t)(1u << rng_below(&r, 8));
		}
		stricter += compare_walkers(copy, len, iter % 2, false, iter % 3 != 0, 4u << 20);
		free(copy);
		maptbl_table_free(t);
	}
	print_message("device refused %u blocks the reference walker answered in corrupt tables\n",
		      stricter);
}

/* ---- Caches and counters ---- */

static void test_cache_counters(void **state)
{
	static struct maptbl_extent e[2000];
	struct maptbl_table *t;
	struct devh h;
	struct devh_cfg c;
	uint64_t buf, walks, nodes;
	uint32_t got, depth;
	size_t i;

	(void)state;
	for (i = 0; i < 2000; i++)
		e[i] = (struct maptbl_extent){ 10 * i, 1000 + 4 * i, 4, 0 };
	memset(&c, 0, sizeof(c));
	c.nr_vfs = 1;
	c.mem_size = UINT64_C(64) << 20;
	c.disk_size = UINT64_C(64) << 20;
	assert_int_equal(devh_init(&h, &c), 0);
	t = build(e, 2000, BS, 256, 20000, 0);
	depth = maptbl_table_depth(t);
	assert_true(depth >= 3);
	devh_vf_table(&h, 1, t, 0);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, 4 * BS, 64);

	/* First read: an extent-cache miss and one walk of depth nodes, all fetched by DMA. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_XC_MISSES), 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NODES), depth);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), depth);
	/* Same extent again: a hit, no walk. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 1, 3, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_XC_HITS), 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), 1);
	/* A neighbouring extent: a miss, but its upper nodes come from the node cache. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 10, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), 2);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_HITS), depth);
	/* FIFO of 8: touch 8 more extents, then extent 0 misses again. */
	for (i = 2; i < 10; i++)
		assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 10 * i, 1, buf, &got), MAPTBL_ST_OK);
	walks = vstat(&h, 1, MAPTBL_STAT_WALKS);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), walks + 1);
	/* The hole after an extent is cached too: a read of 4..9 (hole) then 5 hits. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 4, 1, buf, &got), MAPTBL_ST_OK);
	walks = vstat(&h, 1, MAPTBL_STAT_WALKS);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 5, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), walks);
	/* CACHE_FLUSH of VF 1: the next read walks and fetches every node again. */
	nodes = vstat(&h, 1, MAPTBL_STAT_NC_MISSES);
	wr32(&h, 0, MAPTBL_REG_PF_CACHE_FLUSH, 1);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 5, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), walks + 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), nodes + depth);
	/* The PF's window shows the same counters; CLEAR zeroes them. */
	wr32(&h, 0, MAPTBL_REG_PF_STATS_SEL, 1);
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_PF_STATS_WIN + 8 * MAPTBL_STAT_WALKS),
			 vstat(&h, 1, MAPTBL_STAT_WALKS));
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_PF_STATS_WIN + 8 * MAPTBL_STAT_REQUESTS), 15);
	wr32(&h, 0, MAPTBL_REG_PF_STATS_CTRL, MAPTBL_STATS_CTRL_CLEAR);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_REQUESTS), 0);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), 0);
	maptbl_table_free(t);
	devh_fini(&h);

	/* No caches at all: every block walks, every node is fetched. */
	c.no_xc = c.no_nc = true;
	assert_int_equal(devh_init(&h, &c), 0);
	t = build(e, 2000, BS, 256, 20000, 0);
	devh_vf_table(&h, 1, t, 0);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, 4 * BS, 64);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_CACHE_INFO), 0);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 4, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 4, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_WALKS), 2);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), 2 * depth);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_XC_HITS), 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* ---- The PF, rings, interrupts, reset ---- */

static void test_pf_untranslated(void **state)
{
	struct devh h;
	uint64_t buf;
	uint32_t got, blocks;

	(void)state;
	h_init(&h, 1);
	devh_rings(&h, 0, 8, 8);
	blocks = (uint32_t)rd64(&h, 0, MAPTBL_REG_DISK_BLOCKS);
	buf = devh_alloc(&h, 0, 8 * BS, 64);
	assert_int_equal(devh_io(&h, 0, MAPTBL_OP_READ, blocks - 8, 8, buf, &got), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, buf, 8 * BS), h.disk + (uint64_t)(blocks - 8) * BS, 8 * BS);
	memset(devh_ptr(&h, buf, BS), 0x42, BS);
	assert_int_equal(devh_io(&h, 0, MAPTBL_OP_WRITE, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(h.disk[BS - 1], 0x42);
	assert_int_equal(devh_io(&h, 0, MAPTBL_OP_READ, blocks - 7, 8, buf, &got),
			 MAPTBL_ST_OUT_OF_RANGE);
	assert_int_equal(vstat(&h, 0, MAPTBL_STAT_WALKS), 0);
	assert_int_equal(h.irqs[0][MAPTBL_VEC_CQ], 1);	/* not cleared: one interrupt */
	devh_fini(&h);
}

static void test_rings(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 64, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_req q;
	struct maptbl_hw_cpl c;
	struct devh h;
	uint64_t buf;
	unsigned i;
	uint32_t qs;

	(void)state;
	h_init(&h, 1);
	t = build(e, 1, BS, 4096, 64, 0);
	devh_vf_table(&h, 1, t, 0);
	buf = devh_alloc(&h, 1, BS, 64);
	/* Bad configurations. */
	wr32(&h, 1, MAPTBL_REG_RQ_SIZE, 3);
	wr32(&h, 1, MAPTBL_REG_Q_CTRL, 1);
	qs = rd32(&h, 1, MAPTBL_REG_Q_STATUS);
	assert_true(qs & MAPTBL_Q_STATUS_ERROR);
	assert_int_equal(maptbl_hw_get(qs, MAPTBL_Q_STATUS_ERR_SHIFT, MAPTBL_Q_STATUS_ERR_MASK),
			 MAPTBL_QERR_BAD_CONFIG);
	assert_int_equal(h.irqs[1][MAPTBL_VEC_ERROR], 1);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_Q_CTRL), 0);
	/* A completion ring of 2 holds one completion: the second request waits for CQ_HEAD. */
	assert_int_equal(devh_rings(&h, 1, 4, 2), MAPTBL_Q_STATUS_RUNNING);
	/* Ring registers are locked while running. */
	wr32(&h, 1, MAPTBL_REG_RQ_SIZE, 8);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_RQ_SIZE), 4);
	devh_req(&q, MAPTBL_OP_READ, 1, 0, 1, buf, BS);
	devh_submit(&h, 1, &q);
	q.tag = maptbl_cpu_to_le32(2);
	devh_submit(&h, 1, &q);
	assert_int_equal(mtdev_process(h.d, 0), 1);
	assert_false(mtdev_has_work(h.d));
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_RQ_HEAD), 1);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le32_to_cpu(c.tag), 1);
	assert_int_equal(maptbl_le16_to_cpu(c.rq_head), 1);
	assert_true(mtdev_has_work(h.d));
	assert_int_equal(mtdev_process(h.d, 0), 1);
	assert_true(devh_reap(&h, 1, &c));
	assert_int_equal(maptbl_le32_to_cpu(c.tag), 2);
	/* Many passes over the ring: the phase tag flips each time. */
	for (i = 0; i < 20; i++) {
		q.tag = maptbl_cpu_to_le32(100 + i);
		devh_submit(&h, 1, &q);
		mtdev_process(h.d, 0);
		assert_true(devh_reap(&h, 1, &c));
		assert_int_equal(maptbl_le32_to_cpu(c.tag), 100 + i);
		assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
	}
	/* A doorbell past the ring stops it. */
	wr32(&h, 1, MAPTBL_REG_RQ_TAIL, 4);
	qs = rd32(&h, 1, MAPTBL_REG_Q_STATUS);
	assert_int_equal(maptbl_hw_get(qs, MAPTBL_Q_STATUS_ERR_SHIFT, MAPTBL_Q_STATUS_ERR_MASK),
			 MAPTBL_QERR_BAD_DOORBELL);
	assert_false(qs & MAPTBL_Q_STATUS_RUNNING);
	/* So does a CQ_HEAD past what was posted. */
	assert_int_equal(devh_rings(&h, 1, 4, 4), MAPTBL_Q_STATUS_RUNNING);
	wr32(&h, 1, MAPTBL_REG_CQ_HEAD, 2);
	assert_false(rd32(&h, 1, MAPTBL_REG_Q_STATUS) & MAPTBL_Q_STATUS_RUNNING);
	/* A request ring outside memory: the first doorbell stops the rings with DMA. */
	wr64(&h, 1, MAPTBL_REG_RQ_BASE, 0x4000);
	wr32(&h, 1, MAPTBL_REG_Q_CTRL, 1);
	wr32(&h, 1, MAPTBL_REG_RQ_TAIL, 1);
	mtdev_process(h.d, 0);
	qs = rd32(&h, 1, MAPTBL_REG_Q_STATUS);
	assert_int_equal(maptbl_hw_get(qs, MAPTBL_Q_STATUS_ERR_SHIFT, MAPTBL_Q_STATUS_ERR_MASK),
			 MAPTBL_QERR_DMA);
	maptbl_table_free(t);
	devh_fini(&h);
}

static void test_irq_mask_reset(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 64, 0 } };
	struct maptbl_table *t;
	struct devh h;
	uint64_t buf;
	uint32_t got;

	(void)state;
	t = setup_vf1(&h, 1, e, 1, 64, 1, &buf);
	wr32(&h, 1, MAPTBL_REG_INT_MASK, MAPTBL_INT_CQ);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(h.irqs[1][MAPTBL_VEC_CQ], 0);
	assert_true(rd32(&h, 1, MAPTBL_REG_INT_STATUS) & MAPTBL_INT_CQ);
	wr32(&h, 1, MAPTBL_REG_INT_MASK, 0);	/* unmasking a pending cause interrupts */
	assert_int_equal(h.irqs[1][MAPTBL_VEC_CQ], 1);
	wr32(&h, 1, MAPTBL_REG_INT_STATUS, MAPTBL_INT_CQ);	/* W1C */
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_INT_STATUS), 0);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(h.irqs[1][MAPTBL_VEC_CQ], 2);
	/* Device reset: everything back to reset values. */
	wr32(&h, 0, MAPTBL_REG_PF_DEV_CTRL, MAPTBL_DEV_CTRL_RESET);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_NUM_VFS), 0);
	assert_int_equal(rd64(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_TABLE_BASE), 0);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_STATUS), 0);
	wr32(&h, 0, MAPTBL_REG_PF_NUM_VFS, 1);
	assert_int_equal(rd32(&h, 1, MAPTBL_REG_Q_STATUS), 0);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_REQUESTS), 0);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* Eight VFs with different tables, requests interleaved, every access audited. */
static void test_eight_vfs(void **state)
{
	static struct maptbl_extent e[8][300];
	struct maptbl_table *t[8];
	struct maptbl_hw_req q;
	struct maptbl_hw_cpl c;
	struct devh h;
	struct rng r;
	uint64_t buf[9], virt[8];
	unsigned vf, i, round;

	(void)state;
	rng_seed(&r, test_seed(17));
	h_init(&h, 8);
	for (vf = 1; vf <= 8; vf++) {
		size_t n = gen_ext(&r, e[vf - 1], 300, 3, 8192, &virt[vf - 1]);

		/* Each VF gets its own physical region, 1000 blocks apart. */
		for (i = 0; i < n; i++)
			e[vf - 1][i].pblk = (vf - 1) * 1000 + i * 3;
		t[vf - 1] = build(e[vf - 1], n, BS, 512, virt[vf - 1], 0);
		assert_int_equal(devh_vf_table(&h, vf, t[vf - 1], 0), MAPTBL_VFCFG_STATUS_ENABLED);
		devh_rings(&h, vf, 16, 16);
		buf[vf] = devh_alloc(&h, vf, 4 * BS, 64);
	}
	for (round = 0; round < 300; round++) {
		for (vf = 1; vf <= 8; vf++) {
			uint64_t v = maptbl_table_virtual_blocks(t[vf - 1]);
			uint64_t lba = rng_below(&r, v - 4);

			devh_req(&q, MAPTBL_OP_READ, (uint32_t)lba, lba, 4, buf[vf], 4 * BS);
			devh_submit(&h, vf, &q);
		}
		mtdev_process(h.d, 0);
		for (vf = 1; vf <= 8; vf++) {
			uint64_t lba;

			assert_true(devh_reap(&h, vf, &c));
			assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
			lba = maptbl_le32_to_cpu(c.tag);
			for (i = 0; i < 4; i++)
				check_block(&h, t[vf - 1], lba + i,
					    devh_ptr(&h, buf[vf] + (uint64_t)i * BS, BS));
		}
	}
	assert_int_equal(h.audit_violations, 0);
	for (vf = 0; vf < 8; vf++)
		maptbl_table_free(t[vf]);
	devh_fini(&h);
}

/* The audit itself: a VF reading blocks its (audited) table does not map is caught. */
static void test_audit_catches(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 8, 0 } }, other[] = { { 0, 300, 8, 0 } };
	struct maptbl_table *t, *t2;
	struct devh h;
	uint64_t buf;
	uint32_t got;

	(void)state;
	t = setup_vf1(&h, 1, e, 1, 8, 1, &buf);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(h.audit_violations, 0);
	t2 = build(other, 1, BS, 4096, 8, 0);
	devh_allow(&h, 1, t2);	/* the audit now expects blocks 300.., the device has 100.. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 1, 1, buf, &got), MAPTBL_ST_OK);
	assert_int_equal(h.audit_violations, 1);
	maptbl_table_free(t);
	maptbl_table_free(t2);
	devh_fini(&h);
}

/* A full fault queue: the fault waits (FULL), and lands when the host makes room. */
static void test_fault_queue_full(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 4, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_fault f;
	struct devh h;
	uint64_t buf[4];
	unsigned vf;

	(void)state;
	h_init(&h, 3);
	assert_int_equal(devh_fq(&h, 2), MAPTBL_FQ_STATUS_RUNNING);	/* holds one entry */
	t = build(e, 1, BS, 4096, 64, 0);
	for (vf = 1; vf <= 3; vf++) {
		devh_vf_table(&h, vf, t, 0);
		devh_rings(&h, vf, 4, 4);
		buf[vf] = devh_alloc(&h, vf, BS, 64);
		assert_int_equal(devh_io(&h, vf, MAPTBL_OP_WRITE, 10 + vf, 1, buf[vf], NULL), -1);
	}
	assert_true(rd32(&h, 0, MAPTBL_REG_PF_FQ_STATUS) & MAPTBL_FQ_STATUS_FULL);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_FQ_TAIL), 1);
	/* Oldest first: VF 1, then (after FQ_HEAD moves and the device works) VF 2, VF 3. */
	for (vf = 1; vf <= 3; vf++) {
		assert_true(devh_fault(&h, &f));
		assert_int_equal(maptbl_le16_to_cpu(f.vf), vf);
		assert_int_equal(maptbl_le64_to_cpu(f.lba), 10 + vf);
		assert_int_equal(maptbl_le32_to_cpu(f.seq), vf);
		assert_false(devh_fault(&h, &f));
		assert_true(mtdev_has_work(h.d) == (vf < 3));
		mtdev_process(h.d, 0);
	}
	assert_false(rd32(&h, 0, MAPTBL_REG_PF_FQ_STATUS) & MAPTBL_FQ_STATUS_FULL);
	/* A consumer doorbell past the posted entries stops the queue. */
	wr32(&h, 0, MAPTBL_REG_PF_FQ_HEAD, (h.fq_head + 1) % 2);
	assert_true(rd32(&h, 0, MAPTBL_REG_PF_FQ_STATUS) & MAPTBL_FQ_STATUS_ERROR);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* The VM stops its rings while a request is stalled: the request is aborted, counted, not posted. */
static void test_abort_stalled(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 4, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_cpl c;
	struct devh h;
	uint64_t buf;

	(void)state;
	t = setup_vf1(&h, 1, e, 1, 64, 1, &buf);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 20, 1, buf, NULL), -1);
	assert_true(rd32(&h, 1, MAPTBL_REG_STATUS) & MAPTBL_FN_STATUS_STALLED);
	wr32(&h, 1, MAPTBL_REG_Q_CTRL, 0);
	assert_false(rd32(&h, 1, MAPTBL_REG_STATUS) & MAPTBL_FN_STATUS_STALLED);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_REQUESTS), 1);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_ERRORS), 1);
	assert_false(devh_reap(&h, 1, &c));
	/* A late WALK_AGAIN finds nothing to resume; the VF works again after re-enabling. */
	wr32(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	assert_int_equal(devh_rings(&h, 1, 8, 8), MAPTBL_Q_STATUS_RUNNING);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* WALK_AGAIN with a broken new table: the old table stays, TABLE_ERROR says why, it faults again. */
static void test_walk_again_bad_table(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 4, 0 } };
	struct maptbl_table *t;
	struct maptbl_hw_fault f;
	struct devh h;
	uint64_t buf;
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(1), st;

	(void)state;
	t = setup_vf1(&h, 1, e, 1, 64, 1, &buf);
	devh_fq(&h, 4);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_WRITE, 20, 1, buf, NULL), -1);
	assert_true(devh_fault(&h, &f));
	wr64(&h, 0, cfg + MAPTBL_VFCFG_TABLE_BASE, 0x2000);	/* not memory */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_RETRY);
	st = rd32(&h, 0, cfg + MAPTBL_VFCFG_STATUS);
	assert_true(st & MAPTBL_VFCFG_STATUS_ENABLED);
	assert_true(st & MAPTBL_VFCFG_STATUS_TABLE_ERROR);
	assert_int_equal(maptbl_hw_get(st, MAPTBL_VFCFG_STATUS_TERR_SHIFT,
				       MAPTBL_VFCFG_STATUS_TERR_MASK), MAPTBL_TERR_DMA);
	mtdev_process(h.d, 0);
	assert_true(devh_fault(&h, &f));	/* the old table: still a hole */
	assert_int_equal(maptbl_le32_to_cpu(f.seq), 2);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), -1);	/* behind it */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_WALK_AGAIN, MAPTBL_WALK_AGAIN_FAIL);
	mtdev_process(h.d, 0);
	{
		struct maptbl_hw_cpl c;

		assert_true(devh_reap(&h, 1, &c));
		assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_NO_SPACE);
		assert_true(devh_reap(&h, 1, &c));
		assert_int_equal(maptbl_le16_to_cpu(c.status), MAPTBL_ST_OK);
	}
	maptbl_table_free(t);
	devh_fini(&h);
}

/* CHECK_CRC: a node whose checksum is wrong gives TABLE_ERROR / BAD_CRC; without it, data. */
static void test_node_crc(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 4, 0 } };
	struct maptbl_table *t;
	struct devh h;
	uint64_t buf, a;
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(1), st;
	uint8_t *p;

	(void)state;
	h_init(&h, 1);
	t = build(e, 1, BS, 4096, 64, 0);
	a = devh_push(&h, maptbl_table_data(t), maptbl_table_len(t));
	devh_allow(&h, 1, t);
	p = devh_ptr(&h, a, maptbl_table_len(t));
	p[4096 + 8] ^= 1;	/* node 1's crc field */
	assert_int_equal(devh_vf_enable(&h, 1, a, maptbl_table_len(t), 64, BS,
					MAPTBL_VFCFG_CTRL_CHECK_CRC), MAPTBL_VFCFG_STATUS_ENABLED);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, BS, 64);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_TABLE_ERROR);
	st = rd32(&h, 0, cfg + MAPTBL_VFCFG_STATUS);
	assert_int_equal(maptbl_hw_get(st, MAPTBL_VFCFG_STATUS_TERR_SHIFT,
				       MAPTBL_VFCFG_STATUS_TERR_MASK), MAPTBL_TERR_BAD_CRC);
	assert_true(rd32(&h, 1, MAPTBL_REG_STATUS) & MAPTBL_FN_STATUS_TABLE_ERROR);
	assert_true(rd32(&h, 0, MAPTBL_REG_INT_STATUS) & MAPTBL_INT_ERROR);
	/* Checks off (the change flushes the caches): the node is used. */
	wr32(&h, 0, cfg + MAPTBL_VFCFG_CTRL, MAPTBL_VFCFG_CTRL_ENABLE);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, buf, BS), h.disk + 100 * BS, BS);
	maptbl_table_free(t);
	devh_fini(&h);
}

/* A table republished in place (live word) is seen after CACHE_FLUSH, not before. */
static void test_republish(void **state)
{
	struct maptbl_extent e[] = { { 0, 100, 4, 0 } }, e2[] = { { 0, 200, 4, 0 } };
	struct maptbl_table *t, *t2;
	struct devh h;
	uint64_t buf, a;
	uint8_t *p;
	size_t len;

	(void)state;
	h_init(&h, 1);
	/* One buffer with both trees: t2's root copied into a free slot (node 2) of t's buffer. */
	t = build(e, 1, BS, 4096, 64, 0);
	t2 = build(e2, 1, BS, 4096, 64, 0);
	len = maptbl_table_len(t) + 4096;
	a = devh_alloc(&h, 0, len, 4096);
	p = devh_ptr(&h, a, len);
	memcpy(p, maptbl_table_data(t), maptbl_table_len(t));
	memcpy(p + 8192, (const uint8_t *)maptbl_table_data(t2) + 4096, 4096);
	p[8192 + 12] = 2;	/* self = 2 */
	/* fix node 2's crc: not checked (CHECK_CRC off); table_len grows by one node */
	p[72] = (uint8_t)len;
	p[73] = (uint8_t)(len >> 8);
	devh_allow(&h, 1, t);
	assert_int_equal(devh_vf_enable(&h, 1, a, len, 64, BS, 0), MAPTBL_VFCFG_STATUS_ENABLED);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, BS, 64);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, buf, BS), h.disk + 100 * BS, BS);
	p[16] = 2;	/* the live word: root 2 */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 1, 1, buf, NULL), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, buf, BS), h.disk + 101 * BS, BS);	/* cached run */
	wr32(&h, 0, MAPTBL_REG_PF_CACHE_FLUSH, MAPTBL_FLUSH_ALL);
	devh_allow(&h, 1, t2);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 1, 1, buf, NULL), MAPTBL_ST_OK);
	assert_memory_equal(devh_ptr(&h, buf, BS), h.disk + 201 * BS, BS);
	assert_int_equal(rd32(&h, 0, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_ROOT), 2);
	assert_int_equal(h.audit_violations, 0);
	maptbl_table_free(t);
	maptbl_table_free(t2);
	devh_fini(&h);
}

/* The node cache is LRU: with room for one path, a neighbouring leaf costs one fetch. */
static void test_node_cache_lru(void **state)
{
	static struct maptbl_extent e[2000];
	struct maptbl_table *t;
	struct devh h;
	struct devh_cfg c;
	uint64_t buf;
	size_t i;

	(void)state;
	for (i = 0; i < 2000; i++)
		e[i] = (struct maptbl_extent){ 10 * i, 1000 + 4 * i, 4, 0 };
	memset(&c, 0, sizeof(c));
	c.nr_vfs = 1;
	c.disk_size = UINT64_C(64) << 20;
	c.no_xc = true;
	c.nc = 3;
	assert_int_equal(devh_init(&h, &c), 0);
	t = build(e, 2000, BS, 256, 20000, 0);
	assert_int_equal(maptbl_table_depth(t), 3);
	devh_vf_table(&h, 1, t, 0);
	devh_rings(&h, 1, 8, 8);
	buf = devh_alloc(&h, 1, BS, 64);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), 3);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), 3);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_HITS), 3);
	/* Block 180 is in the second leaf (18 compact entries per 256-byte leaf), same parents:
	 * the first leaf is the least recently used node and makes room. */
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 180, 1, buf, NULL), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), 4);
	assert_int_equal(devh_io(&h, 1, MAPTBL_OP_READ, 0, 1, buf, NULL), MAPTBL_ST_OK);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_MISSES), 5);
	assert_int_equal(vstat(&h, 1, MAPTBL_STAT_NC_HITS), 7);
	maptbl_table_free(t);
	devh_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_bad_access),
		cmocka_unit_test(test_random_registers),
		cmocka_unit_test(test_read_oracle),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_write_mapped),
		cmocka_unit_test(test_write_fault_fill),
		cmocka_unit_test(test_commit_fault),
		cmocka_unit_test(test_unwritten),
		cmocka_unit_test(test_virt_past_table),
		cmocka_unit_test(test_absent),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_past_disk),
		cmocka_unit_test(test_enable_checks),
		cmocka_unit_test(test_walker_agrees),
		cmocka_unit_test(test_walker_corrupt),
		cmocka_unit_test(test_cache_counters),
		cmocka_unit_test(test_pf_untranslated),
		cmocka_unit_test(test_rings),
		cmocka_unit_test(test_irq_mask_reset),
		cmocka_unit_test(test_eight_vfs),
		cmocka_unit_test(test_audit_catches),
		cmocka_unit_test(test_fault_queue_full),
		cmocka_unit_test(test_abort_stalled),
		cmocka_unit_test(test_walk_again_bad_table),
		cmocka_unit_test(test_node_crc),
		cmocka_unit_test(test_republish),
		cmocka_unit_test(test_node_cache_lru),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
