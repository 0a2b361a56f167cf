/* SPDX-License-Identifier: MIT */
/*
 * test_serve.c - the pure parts of the fault service (hw-iface/src/serve.c, included for its
 * static functions) and the in-place table it updates (MAPTBL_OPEN_INPLACE):
 *  - alloc_range(): units around the fault, clipped to the VF and, past the end of the file, to
 *    the end of the write (the file's size follows the highest block written);
 *  - ready_end(): a fault on a range the zeroing thread prepared maps what it finished after it;
 *  - write_zeros(): zeros go exactly to the holes and unwritten extents of a range, never over
 *    written data (checked on a real file: written blocks keep their bytes), buffered, direct
 *    and with FALLOC_FL_WRITE_ZEROES first;
 *  - zero_holes(): the same where lseek(SEEK_DATA/SEEK_HOLE) finds no data (a real file with
 *    data, a hole and an unwritten range): the range ends up all written data;
 *  - a table opened in place: updates write the caller's buffer (the live word a device reads
 *    changes there), a second open of the buffer sees them, free leaves the buffer alone; bad
 *    flags and a misaligned buffer are refused;
 *  - maptbl_hw_serve_opts_init() and the option checks of maptbl_hw_serve_open();
 *  - commit_mark() and commit() (CTRL.COMMIT, REGISTERS.md §12.6) on a fake register file, as a
 *    1.1 device and as a 1.0 one that drops the bit;
 *  - maptbl_hw_fault_read() on a fake device whose FAULT interrupt is an edge: a wake-up with
 *    nothing in the queue clears the bit before the next sleep.
 * The service end to end (emulator, filesystems, nbdkit) is tests/hw/040 ... 070.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../../../hw-iface/src/serve.c"

static void test_alloc_range(void **state)
{
	uint64_t lo, hi;

	(void)state;
	/* A hole in the middle of the file: the whole unit around it. */
	alloc_range(272, 288, 4096, 256, 6144, &lo, &hi);
	assert_int_equal(lo, 256);
	assert_int_equal(hi, 512);
	/* A write across a unit boundary: both units. */
	alloc_range(250, 260, 4096, 256, 6144, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 512);
	/* Near the end of the file: the unit stops at the end of the file. */
	alloc_range(4000, 4010, 4050, 256, 6144, &lo, &hi);
	assert_int_equal(lo, 3840);
	assert_int_equal(hi, 4050);
	/* Past the end: up to the end of the write only (the file grows to there). */
	alloc_range(5000, 5016, 4096, 256, 6144, &lo, &hi);
	assert_int_equal(lo, 4864);
	assert_int_equal(hi, 5016);
	/* Clipped to the VF's size. */
	alloc_range(6140, 6144, 8192, 256, 6144, &lo, &hi);
	assert_int_equal(lo, 5888);
	assert_int_equal(hi, 6144);
	/* A unit of one block: exactly the fault. */
	alloc_range(77, 79, 4096, 1, 6144, &lo, &hi);
	assert_int_equal(lo, 77);
	assert_int_equal(hi, 79);
}

/* Allocating ahead: a fault where the last allocation ended doubles the range, up to 32 units;
 * any other fault, a first fault, and the end of the file or the VF stop it. */
static void test_alloc_ahead(void **state)
{
	uint64_t next = 0, units = 0, lo, hi, faults = 0, at = 0;

	(void)state;
	/* A VM writing 4 GiB front to back in 1 MiB units (4 KiB blocks): 1, 2, 4, ..., 32, 32, ... */
	while (at < 1048576) {
		alloc_range(at, at + 16, 1048576, 256, 1048576, &lo, &hi);
		alloc_ahead(&next, &units, at, 1048576, 256, 1048576, lo, &hi);
		assert_int_equal(lo, at);
		assert_true(hi - lo <= 32 * 256);
		if (faults < 6)
			assert_int_equal(hi - lo, (uint64_t)256 << faults);
		next = hi;
		at = hi;
		faults++;
	}
	/* 4096 units: 6 faults ramp up to 63 units, then 4033 / 32 -> 127 more (the last one short). */
	assert_int_equal(faults, 6 + 127);
	/* Not where the last allocation ended: one unit again. */
	alloc_range(5000, 5001, 1048576, 256, 1048576, &lo, &hi);
	alloc_ahead(&next, &units, 5000, 1048576, 256, 1048576, lo, &hi);
	assert_int_equal(units, 1);
	assert_int_equal(hi - lo, 256);
	/* Sequential, but the file ends first: up to its end, never past it (growth is not
	 * anticipated) ... */
	next = 4096;
	units = 8;
	alloc_range(4096, 4100, 5000, 256, 1048576, &lo, &hi);
	alloc_ahead(&next, &units, 4096, 5000, 256, 1048576, lo, &hi);
	assert_int_equal(hi, 5000);
	/* ... nor past the VF. */
	next = 4096;
	units = 8;
	alloc_range(4096, 4100, 1048576, 256, 4500, &lo, &hi);
	alloc_ahead(&next, &units, 4096, 1048576, 256, 4500, lo, &hi);
	assert_int_equal(hi, 4500);
	/* Past the end of the file, sequential or not: the end of the write only. */
	next = 6000;
	units = 8;
	alloc_range(6000, 6010, 5000, 256, 1048576, &lo, &hi);
	alloc_ahead(&next, &units, 6000, 5000, 256, 1048576, lo, &hi);
	assert_int_equal(hi, 6010);
}

/*
 * Zeros for [1, 12) of a file whose 16 blocks all hold 0xab, through @v (buffered or direct).
 * Returns whether write_zeros() said it wrote through the page cache.
 */
static bool check_write_zeros(struct maptbl_hw_serve *s, struct sv_vf *v, struct xvec *x)
{
	uint8_t blk[512], got[512];
	bool buffered = false;

	memset(blk, 0xab, sizeof(blk));
	for (unsigned b = 0; b < 16; b++) /* every block holds 0xab: zeros show what was zeroed */
		assert_int_equal(pwrite(v->fd, blk, sizeof(blk), b * 512), sizeof(blk));
	/* Holes 1, 4, 7, 10..11 and unwritten 5..6 get zeros; written 2..3, 8..9 are kept. */
	assert_int_equal(write_zeros(s, v, 512, 1, 12, x, &buffered), 0);
	for (unsigned b = 0; b < 16; b++) {
		bool zeroed = b == 1 || b == 4 || b == 5 || b == 6 || b == 7 || b == 10 || b == 11;

		assert_int_equal(pread(v->fd, got, sizeof(got), b * 512), sizeof(got));
		assert_int_equal(got[0], zeroed ? 0 : 0xab);
		assert_int_equal(got[511], zeroed ? 0 : 0xab);
	}
	return buffered;
}

static void test_write_zeros(void **state)
{
	struct maptbl_hw_serve s = { 0 };
	char path[] = "/var/tmp/maptbl-test-serve.XXXXXX";
	/* Blocks 0..15 of 512 bytes: written 2..3 and 8..9, unwritten 5..6, holes elsewhere. */
	struct maptbl_extent ev[] = {
		{ .lblk = 2, .pblk = 100, .len = 2 },
		{ .lblk = 5, .pblk = 200, .len = 2, .flags = MAPTBL_EXTENT_UNWRITTEN },
		{ .lblk = 8, .pblk = 300, .len = 2 },
	};
	struct xvec x = { .v = ev, .n = 3, .cap = 3 };
	struct sv_vf v = { .fd = mkstemp(path), .dfd = -1 };

	(void)state;
	assert_true(v.fd >= 0);
	assert_int_equal(posix_memalign(&s.zero, 4096, ZERO_CHUNK), 0);
	memset(s.zero, 0, ZERO_CHUNK);
	/* Buffered writes (FALLOC_FL_WRITE_ZEROES refused): said, so that the caller syncs them
	 * before the device writes over them (settle()). */
	atomic_store(&v.no_wz, true);
	assert_true(check_write_zeros(&s, &v, &x));
	/* Direct writes where the filesystem takes them (else the buffered fallback). */
	v.dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	check_write_zeros(&s, &v, &x);
	/* FALLOC_FL_WRITE_ZEROES first (Linux 6.17+ on a device that zeroes; else the fallback). */
	atomic_store(&v.no_wz, false);
	check_write_zeros(&s, &v, &x);
	unlink(path);
	vf_close_file(&v);
	free(s.zero);
}

/*
 * zero_holes() on a real file (/var/tmp: a filesystem with SEEK_HOLE): 4 KiB blocks 0..15, data
 * in 2..3 and 8..9, fallocated (unwritten) 5..6, holes elsewhere. Zeros for [1, 12): afterwards
 * lseek() finds no hole there (all of it is written data), the data blocks kept their bytes, the
 * rest reads zeros, and blocks 12.. stay holes.
 */
static void test_zero_holes(void **state)
{
	struct maptbl_hw_serve s = { 0 };
	char path[] = "/var/tmp/maptbl-test-serve.XXXXXX";
	struct sv_vf v = { .fd = mkstemp(path), .dfd = -1 };
	uint8_t blk[4096], got[4096];

	(void)state;
	assert_true(v.fd >= 0);
	v.dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	assert_int_equal(posix_memalign(&s.zero, 4096, ZERO_CHUNK), 0);
	memset(s.zero, 0, ZERO_CHUNK);
	memset(blk, 0xab, sizeof(blk));
	assert_int_equal(ftruncate(v.fd, 16 * 4096), 0);
	for (unsigned b = 2; b < 10; b++)
		if (b < 4 || b > 7)
			assert_int_equal(pwrite(v.fd, blk, sizeof(blk), b * 4096), sizeof(blk));
	assert_int_equal(fsync(v.fd), 0);
	if (fallocate(v.fd, FALLOC_FL_KEEP_SIZE, 5 * 4096, 2 * 4096) ||
	    lseek(v.fd, 0, SEEK_HOLE) != 0) { /* no fallocate or no SEEK_HOLE: nothing to show */
		unlink(path);
		vf_close_file(&v);
		free(s.zero);
		skip();
	}
	bool buffered = false;

	assert_int_equal(zero_holes(&s, &v, 4096, 1, 12, false, &buffered), 0);
	assert_int_equal(fdatasync(v.fd), 0);
	assert_int_equal(lseek(v.fd, 4096, SEEK_HOLE), 12 * 4096);
	assert_int_equal(lseek(v.fd, 12 * 4096, SEEK_DATA), -1);
	for (unsigned b = 0; b < 16; b++) {
		bool data = b == 2 || b == 3 || b == 8 || b == 9;

		assert_int_equal(pread(v.fd, got, sizeof(got), b * 4096), sizeof(got));
		assert_int_equal(got[0], data ? 0xab : 0);
		assert_int_equal(got[4095], data ? 0xab : 0);
	}
	unlink(path);
	vf_close_file(&v);
	free(s.zero);
}

static void test_open_inplace(void **state)
{
	struct maptbl_extent ext[] = { { .lblk = 0, .pblk = 1000, .len = 16 } };
	struct maptbl_extent add = { .lblk = 64, .pblk = 5000, .len = 8 };
	struct maptbl_build_opts bo;
	struct maptbl_open_opts oo;
	struct maptbl_table *built, *t, *again;
	struct maptbl_mapping m;
	uint8_t *buf;
	size_t len;
	uint64_t live0;

	(void)state;
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.virtual_blocks = 256;
	bo.spare_nodes = 8;
	assert_int_equal(maptbl_table_build(ext, 1, &bo, &built), 0);
	len = maptbl_table_len(built);
	assert_int_equal(posix_memalign((void **)&buf, 4096, len + 8), 0);
	memcpy(buf, maptbl_table_data(built), len);
	maptbl_table_free(built);
	live0 = *(uint64_t *)(buf + 16);

	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.flags = MAPTBL_OPEN_INPLACE;
	assert_int_equal(maptbl_table_open(buf, len, &oo, &t), 0);
	assert_ptr_equal(maptbl_table_data(t), buf);
	assert_int_equal(maptbl_table_insert(t, &add, 0), 0);
	/* The publish is the 8-byte live word of the caller's buffer. */
	assert_true(*(uint64_t *)(buf + 16) != live0);
	maptbl_table_free(t); /* must not free buf (ASan would catch a double free below) */

	assert_int_equal(maptbl_table_open(buf, len, NULL, &again), 0);
	assert_int_equal(maptbl_table_lookup(again, 66, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(m.pblk, 5002);
	maptbl_table_free(again);

	/* Bad input: unknown flags, a misaligned buffer in place. */
	oo.flags = 0x2;
	assert_int_equal(maptbl_table_open(buf, len, &oo, &t), -EINVAL);
	oo.flags = MAPTBL_OPEN_INPLACE;
	memmove(buf + 4, buf, len);
	assert_int_equal(maptbl_table_open(buf + 4, len, &oo, &t), -EINVAL);
	free(buf);
}

/*
 * ready_end(): a fault maps on to the end of what the zeroing thread finished without a gap, and
 * never over a range the thread still has (queued or being zeroed).
 */
static void test_ready_end(void **state)
{
	struct maptbl_hw_serve s = { .ahead_running = true };
	struct sv_vf v = { .ready_lo = 100, .ready_hi = 300 };

	(void)state;
	pthread_mutex_init(&s.mu, NULL);
	assert_int_equal(ready_end(&s, &v, 200, 1000), 300);
	assert_int_equal(ready_end(&s, &v, 300, 1000), 300);	/* nothing beyond */
	assert_int_equal(ready_end(&s, &v, 50, 1000), 50);	/* a gap before what is ready */
	assert_int_equal(ready_end(&s, &v, 200, 250), 250);	/* the file (or VF) shrank since */
	assert_int_equal(ready_end(&s, &v, 200, 150), 200);	/* never less than the fault's own */
	v.ahead[1] = (struct ahead_job){ .state = AHEAD_QUEUED, .lo = 300, .hi = 400 };
	assert_int_equal(ready_end(&s, &v, 200, 1000), 300);	/* a queued range after it: not touched */
	v.ahead[1].lo = 260;					/* queued over part of it: up to it */
	assert_int_equal(ready_end(&s, &v, 200, 1000), 260);
	v.ahead[0] = (struct ahead_job){ .state = AHEAD_BUSY, .lo = 220, .hi = 240 };
	assert_int_equal(ready_end(&s, &v, 200, 1000), 220);	/* the lowest of the two */
	v.ahead[1].state = AHEAD_NONE;
	assert_int_equal(ready_end(&s, &v, 200, 1000), 220);	/* being zeroed: up to it only */
	s.ahead_running = false;				/* no thread: the fault's own range */
	v.ahead[0].state = AHEAD_NONE;
	assert_int_equal(ready_end(&s, &v, 200, 1000), 200);
	pthread_mutex_destroy(&s.mu);
}

static int no_map(void *ctx, const struct maptbl_hw_map_req *req,
		  int (*add)(void *sink, const struct maptbl_extent *e), void *sink)
{
	(void)ctx, (void)req, (void)add, (void)sink;
	return -EIO;
}

/*
 * commit_mark() and commit() against a register file of VF 1's CTRL (a fake backend): a device
 * that keeps CTRL.COMMIT (1.1) gets the bit set once, commit() clears it and syncs; a device that
 * drops the unknown bit (1.0) makes the service sync at once and at every fault after, with the
 * bit never relied on. A failing register access is fatal to the service.
 */
static uint32_t fake_ctrl, fake_writes;
static bool fake_v10, fake_fail;

static int fake_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val)
{
	(void)hw;
	(void)fn;
	if (fake_fail)
		return -ENOTCONN;
	assert_int_equal(off, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_CTRL);
	*val = fake_ctrl;
	return 0;
}

static int fake_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	(void)hw;
	(void)fn;
	assert_int_equal(off, MAPTBL_REG_PF_VFCFG(1) + MAPTBL_VFCFG_CTRL);
	fake_writes++;
	fake_ctrl = fake_v10 ? val & 0x7u : val;
	return 0;
}

static void test_commit_mark(void **state)
{
	static const struct maptbl_hw_ops ops = { .read32 = fake_read32, .write32 = fake_write32 };
	struct maptbl_hw hw = { .ops = &ops };
	struct maptbl_hw_serve s = { .hw = &hw };
	char path[] = "/var/tmp/maptbl-test-serve.XXXXXX";
	struct sv_vf v = { .fd = mkstemp(path), .dfd = -1 };
	const uint32_t on = MAPTBL_VFCFG_CTRL_ENABLE | MAPTBL_VFCFG_CTRL_READ_ONLY;

	(void)state;
	assert_true(v.fd >= 0);
	/* 1.1: the bit is set with the other bits kept, once; the service remembers it. */
	fake_ctrl = on;
	assert_int_equal(commit_mark(&s, 1, &v), 0);
	assert_int_equal(fake_ctrl, on | MAPTBL_VFCFG_CTRL_COMMIT);
	assert_true(v.commit);
	assert_false(v.sync_each);
	assert_int_equal(fake_writes, 1);
	assert_int_equal(commit_mark(&s, 1, &v), 0);
	assert_int_equal(fake_writes, 1);
	/* The VF flushed: the bit is cleared (the others kept) and the file synced. */
	assert_int_equal(commit(&s, 1, &v), 0);
	assert_int_equal(fake_ctrl, on);
	assert_false(v.commit);
	/* MAPTBL_SERVE_SYNC=fault: the bit is never touched. */
	s.sync_each = true;
	assert_int_equal(commit_mark(&s, 1, &v), 0);
	assert_int_equal(fake_writes, 2);
	assert_int_equal(fake_ctrl, on);
	s.sync_each = false;
	/* 1.0: the bit does not stick: synced now, every fault syncs, the bit is not asked again. */
	fake_v10 = true;
	assert_int_equal(commit_mark(&s, 1, &v), 0);
	assert_true(v.sync_each);
	assert_false(v.commit);
	assert_int_equal(fake_writes, 3);
	assert_int_equal(commit_mark(&s, 1, &v), 0);
	assert_int_equal(fake_writes, 3);
	/* The device is gone: an error, and the service is done. */
	v.sync_each = false;
	fake_fail = true;
	assert_int_equal(commit_mark(&s, 1, &v), -ENOTCONN);
	assert_int_equal(s.fatal, -ENOTCONN);
	fake_fail = false;
	unlink(path);
	vf_close_file(&v);
}

/*
 * maptbl_hw_fault_read() against a fake device whose FAULT interrupt is an edge (raised only when
 * INT_STATUS goes from 0 to 1): woken by an interrupt with nothing in the queue (a wake-up whose
 * entry the host already took, or one raised before its entry), it clears the bit and looks
 * again before it sleeps, so the next entry interrupts the sleep. This used to be missing: the
 * next entry raised nothing, and the service found it only at the 100 ms poll.
 */
static struct maptbl_hw_fault fq_mem[4];
static uint32_t fq_int_status;
static unsigned fq_waits, fq_timeouts, fq_post_at, fq_clears;
static bool fq_irq, fq_sleep;

static int fq_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val)
{
	(void)hw;
	assert_int_equal(fn, 0);
	assert_int_equal(off, MAPTBL_REG_PF_FQ_STATUS);
	*val = MAPTBL_FQ_STATUS_RUNNING;
	return 0;
}

static int fq_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	(void)hw;
	assert_int_equal(fn, 0);
	assert_int_equal(off, MAPTBL_REG_INT_STATUS);
	fq_int_status &= ~val;
	fq_clears++;
	return 0;
}

/* The device posts entry 0 while the host sleeps in its fq_post_at-th wait (1-based). */
static int fq_wait_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors)
{
	(void)hw, (void)fn;
	assert_in_range(timeout_ms, 0, 100);
	if (++fq_waits == fq_post_at) {
		fq_mem[0].lba = maptbl_cpu_to_le64(42);
		fq_mem[0].vf = maptbl_cpu_to_le16(1);
		fq_mem[0].flags = maptbl_cpu_to_le16(MAPTBL_FAULT_F_PHASE);
		if (!(fq_int_status & MAPTBL_INT_FAULT))
			fq_irq = true;
		fq_int_status |= MAPTBL_INT_FAULT;
	}
	if (fq_irq) {
		fq_irq = false;
		*vectors = MAPTBL_INT_FAULT;
		return 0;
	}
	fq_timeouts++; /* the real wait sleeps up to 100 ms here */
	if (fq_sleep)
		usleep((useconds_t)timeout_ms * 1000);
	return -ETIMEDOUT;
}

static void test_fault_read_edge(void **state)
{
	static const struct maptbl_hw_ops ops = { .read32 = fq_read32, .write32 = fq_write32,
						  .wait_irq = fq_wait_irq };
	struct maptbl_hw_dma dma = { .vaddr = fq_mem, .len = sizeof(fq_mem) };
	struct maptbl_hw hw = { .magic = HW_MAGIC, .ops = &ops, .fq = &dma, .fq_size = 4,
				.fq_phase = MAPTBL_FAULT_F_PHASE };
	struct maptbl_hw_fault_entry e;

	(void)state;
	/* The last fault's bit is still set, and a stale interrupt wakes the first sleep. */
	fq_int_status = MAPTBL_INT_FAULT;
	fq_irq = true;
	fq_post_at = 2;
	assert_int_equal(maptbl_hw_fault_read(&hw, &e, 1, 1000), 1);
	assert_int_equal(e.lba, 42);
	assert_int_equal(e.vf, 1);
	assert_int_equal(fq_waits, 2);
	assert_int_equal(fq_timeouts, 0); /* the entry's own interrupt woke the second sleep */
	/* Nothing comes after a stale interrupt: one clear, then the wait gives up at its
	 * time-out (sleeping, not spinning), with nothing read. */
	memset(fq_mem, 0, sizeof(fq_mem));
	hw.fq_head = 0;
	fq_waits = fq_timeouts = fq_clears = 0;
	fq_post_at = 0;
	fq_irq = fq_sleep = true;
	assert_int_equal(maptbl_hw_fault_read(&hw, &e, 1, 30), 0);
	assert_int_equal(fq_clears, 1);
	assert_in_range(fq_waits, 2, 4);
	/* A time-out of 0 never waits. */
	fq_waits = 0;
	assert_int_equal(maptbl_hw_fault_read(&hw, &e, 1, 0), 0);
	assert_int_equal(fq_waits, 0);
	fq_sleep = false;
}

static void test_opts(void **state)
{
	struct maptbl_hw_serve_opts o;
	struct maptbl_hw_serve *s = (void *)1;
	struct maptbl_hw fake = { .magic = HW_MAGIC, .max_vfs = 4 };
	unsigned bad_vf = 5;
	struct {
		struct maptbl_hw_serve_opts o;
		uint64_t extra;
	} big;

	(void)state;
	assert_int_equal(maptbl_hw_serve_opts_init(&o, sizeof(o) - 1), -EINVAL);
	assert_int_equal(maptbl_hw_serve_opts_init(&o, sizeof(o)), 0);
	assert_int_equal(o.sz, sizeof(o));
	assert_null(o.map);
	/* No mapper. */
	assert_int_equal(maptbl_hw_serve_open(&fake, &o, &s), -EINVAL);
	assert_null(s);
	o.map = no_map;
	/* A fault queue size that is not a power of two. */
	o.fq_entries = 48;
	assert_int_equal(maptbl_hw_serve_open(&fake, &o, &s), -EINVAL);
	o.fq_entries = 0;
	/* A VF the device does not have. */
	o.vfs = &bad_vf;
	o.nr_vfs = 1;
	assert_int_equal(maptbl_hw_serve_open(&fake, &o, &s), -ENODEV);
	/* A newer caller's opts with non-zero bytes past the known fields. */
	maptbl_hw_serve_opts_init(&big.o, sizeof(big));
	big.o.map = no_map;
	big.extra = 1;
	assert_int_equal(maptbl_hw_serve_open(&fake, &big.o, &s), -EINVAL);
	/* Not a handle. */
	fake.magic = 0;
	assert_int_equal(maptbl_hw_serve_open(&fake, &o, &s), -EINVAL);
	assert_int_equal(maptbl_hw_serve_run(NULL, 0), -EINVAL);
	maptbl_hw_serve_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_range),
		cmocka_unit_test(test_alloc_ahead),
		cmocka_unit_test(test_ready_end),
		cmocka_unit_test(test_write_zeros),
		cmocka_unit_test(test_zero_holes),
		cmocka_unit_test(test_open_inplace),
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_commit_mark),
		cmocka_unit_test(test_fault_read_edge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
