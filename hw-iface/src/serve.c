/* SPDX-License-Identifier: MIT */
/*
 * serve.c - the fault service (docs/REGISTERS.md §12): answer the write faults of VFs backed by
 * files. For a write into a hole or an unwritten range: allocate through the filesystem
 * (fallocate, rounded to the allocation unit), write zeros through it where it still has no data
 * (so it records the blocks as written before the device writes them), re-map the range
 * with the caller's mapper (the filesystem adapters), update the VF's table in place in its DMA
 * buffer (insert/convert, one 8-byte publish), flush the VF's cache and write WALK_AGAIN. What
 * cannot be allocated or mapped is failed (WALK_AGAIN = FAIL): a stalled request is answered,
 * never dropped. The filesystem commits those allocations when the VM flushes (CTRL.COMMIT, a
 * COMMIT fault: fdatasync), not at every fault (REGISTERS.md §12.6).
 *
 * State: none outside the device. A VF's file is the label of its table's note, its table is where
 * TABLE_BASE/TABLE_LEN point, its size VIRT_BLOCKS; so the process that created a VF and the one
 * that serves it need not be the same, and a restarted service carries on. Faults come from the
 * fault queue and, on start and every second, from the VFs' STALLED bits: a fault that was posted
 * to a service that died (its queue went with it) is still found.
 *
 * Only libmaptbl-hw calls reach the device (no backend shortcut): the service runs the same on
 * emu:, pci: and vfio:. Where this process cannot reach a VF's table memory (pci:/vfio: tables
 * belong to the process that pushed them), it builds a table from the file into DMA memory of its
 * own and points the VF at it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef FALLOC_FL_WRITE_ZEROES
/*
 * Linux 6.17 (include/uapi/linux/falloc.h): allocate the range as written extents the device
 * zeroed (its unmap write-zeroes). Debian 12's linux-libc-dev predates it; a kernel or a device
 * without it answers EOPNOTSUPP.
 */
#define FALLOC_FL_WRITE_ZEROES 0x80
#endif

#define DEFAULT_ALLOC_UNIT (1u << 20)
#define DEFAULT_FQ_ENTRIES 64
#define SCAN_INTERVAL_MS 1000
/* Bytes per zeroing write: large, so that direct I/O reaches the disk in few requests. */
#define ZERO_CHUNK (4u << 20)
/* Sequential writes: allocation units at most per fault (32 MiB with the default unit). */
#define MAX_AHEAD_UNITS 32u
#define MIN_SPARE_NODES 64

struct sv_vf {
	struct maptbl_table *t;	/* in place on the VF's table memory, NULL until needed */
	uint64_t base, len;	/* TABLE_BASE/TABLE_LEN when t was opened */
	char path[256];		/* the backing file fd is open on */
	int fd;
	int dfd;		/* the same file opened O_DIRECT for the zeros; -1: buffered zeros */
	atomic_bool no_wz;	/* FALLOC_FL_WRITE_ZEROES refused on the file (EOPNOTSUPP) */
	uint64_t skipped_lba;	/* last fault reported as skipped (+1; 0 none) */
	uint64_t seq_next;	/* block after the last allocation (0 none): a write going on */
	uint64_t seq_units;	/* units the last allocation had (sequential ramp) */
	/* Zeroing ahead (zero_ahead_main()), under maptbl_hw_serve.mu: the ranges of the next two
	 * faults of a sequential writer. */
	struct ahead_job {
		int state;	/* AHEAD_NONE, AHEAD_QUEUED, AHEAD_BUSY */
		uint32_t bs;
		uint64_t lo, hi;
	} ahead[2];
	uint64_t ahead_end;	/* end of the last range queued (service thread only; 0 none) */
	uint64_t ready_lo, ready_hi; /* what the thread allocated and zeroed last (mu) */
	bool commit;		/* this service set the VF's CTRL.COMMIT since it last committed */
	bool sync_each;		/* the device did not keep CTRL.COMMIT: every fault syncs */
};

enum { AHEAD_NONE, AHEAD_QUEUED, AHEAD_BUSY };

struct maptbl_hw_serve {
	struct maptbl_hw *hw;
	struct maptbl_hw_serve_opts o;
	bool want[MAPTBL_HW_MAX_VFS + 1];
	char *file[MAPTBL_HW_MAX_VFS + 1];	/* hints: files of VFs whose note is unreachable */
	struct sv_vf vf[MAPTBL_HW_MAX_VFS + 1];
	uint64_t pf_bytes;	/* size of the disk the device serves */
	int64_t last_scan;	/* ms; 0 = never */
	int fatal;		/* a register access failed: the device is gone */
	bool started;		/* this service started the fault queue */
	void *zero;		/* ZERO_CHUNK zeros, aligned for O_DIRECT; read by both threads */
	/* The thread that zeroes ahead of sequential writers (zero_ahead_main()). */
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* a range queued, or one finished */
	pthread_t ahead_thread;
	bool ahead_running;	/* the thread exists */
	bool ahead_off;		/* MAPTBL_SERVE_ZERO_AHEAD=0, or the thread could not start */
	atomic_bool stop;	/* the service closes: the thread ends */
	unsigned ahead_delay_ms; /* MAPTBL_SERVE_AHEAD_DELAY_MS (tests): a sleep before the zeros */
	bool sync_each;		/* MAPTBL_SERVE_SYNC=fault: sync at every fault, never COMMIT */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

MAPTBL_API int maptbl_hw_serve_opts_init(struct maptbl_hw_serve_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(*opts))
		return -EINVAL;
	memset(opts, 0, sz);
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_hw_serve_opts) == 80, "update the init");
	return 0;
}

static void vf_drop(struct sv_vf *v)
{
	maptbl_table_free(v->t);
	v->t = NULL;
	v->base = v->len = 0;
}

static void vf_close_file(struct sv_vf *v)
{
	if (v->fd >= 0)
		close(v->fd);
	if (v->dfd >= 0)
		close(v->dfd);
	v->fd = v->dfd = -1;
}

static int reg_r32(struct maptbl_hw_serve *s, uint32_t off, uint32_t *val);
static int reg_w32(struct maptbl_hw_serve *s, uint32_t off, uint32_t val);
static uint32_t vfcfg(unsigned vf, uint32_t reg);

/* Clear VF @vf's CTRL.COMMIT (read, then written without it if it was set). */
static int commit_clear(struct maptbl_hw_serve *s, unsigned vf)
{
	uint32_t ctrl;
	int err = reg_r32(s, vfcfg(vf, MAPTBL_VFCFG_CTRL), &ctrl);

	if (!err && (ctrl & MAPTBL_VFCFG_CTRL_COMMIT))
		err = reg_w32(s, vfcfg(vf, MAPTBL_VFCFG_CTRL), ctrl & ~MAPTBL_VFCFG_CTRL_COMMIT);
	return err;
}

/*
 * The service ends: nobody will answer COMMIT faults. What it mapped and its filesystem has not
 * committed is committed now, then CTRL.COMMIT cleared, then a flush that stalled on it
 * meanwhile is let go (this sync covered it). Synced before the bit is cleared: a flush between
 * the two stalls (a service started later answers it) rather than completing uncommitted.
 */
static void commit_close(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v)
{
	uint32_t st, fi;

	if (!v->commit || v->fd < 0)
		return;
	if (fdatasync(v->fd)) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: the commit (fdatasync) failed: %s; the "
			   "VF's next flush asks again", vf, v->path, strerror(errno));
		return;
	}
	if (s->fatal || commit_clear(s, vf) || reg_r32(s, vfcfg(vf, MAPTBL_VFCFG_STATUS), &st) ||
	    reg_r32(s, vfcfg(vf, MAPTBL_VFCFG_FAULT_INFO), &fi))
		return;
	v->commit = false;
	if ((st & MAPTBL_VFCFG_STATUS_STALLED) &&
	    maptbl_hw_fault_reason(fi) == MAPTBL_FAULT_COMMIT)
		maptbl_hw_vf_walk_again(s->hw, vf, false);
}

MAPTBL_API void maptbl_hw_serve_close(struct maptbl_hw_serve *s)
{
	if (!s)
		return;
	if (s->ahead_running) { /* the range being zeroed is finished (or abandoned), nothing more */
		pthread_mutex_lock(&s->mu);
		atomic_store(&s->stop, true);
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->ahead_thread, NULL);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	for (unsigned i = 1; i <= MAPTBL_HW_MAX_VFS; i++)
		commit_close(s, i, &s->vf[i]);
	for (unsigned i = 0; i <= MAPTBL_HW_MAX_VFS; i++) {
		vf_drop(&s->vf[i]);
		vf_close_file(&s->vf[i]);
		free(s->file[i]);
	}
	if (s->started)
		maptbl_hw_fault_stop(s->hw);
	free(s->zero);
	free(s);
}

MAPTBL_API int maptbl_hw_serve_open(struct maptbl_hw *hw, const struct maptbl_hw_serve_opts *opts,
				    struct maptbl_hw_serve **out)
{
	struct maptbl_hw_dev_info di;
	struct maptbl_hw_serve *s;
	const uint8_t *p = (const uint8_t *)opts;
	const char *env;
	int err;

	if (!hw || hw->magic != HW_MAGIC || !opts || !out)
		return -EINVAL;
	*out = NULL;
	if (opts->sz < sizeof(*opts)) {
		maptbl_log(MAPTBL_LOG_ERROR, "maptbl_hw_serve_opts: sz %zu is too small", opts->sz);
		return -EINVAL;
	}
	for (size_t i = sizeof(*opts); i < opts->sz; i++)
		if (p[i]) {
			maptbl_log(MAPTBL_LOG_ERROR, "maptbl_hw_serve_opts has non-zero bytes past the fields it knows");
			return -EINVAL;
		}
	if (!opts->map || opts->reserved || (opts->nr_vfs && !opts->vfs) ||
	    (opts->fq_entries && (opts->fq_entries < MAPTBL_HW_RING_MIN ||
				  opts->fq_entries > MAPTBL_HW_RING_MAX ||
				  (opts->fq_entries & (opts->fq_entries - 1))))) {
		maptbl_log(MAPTBL_LOG_ERROR, "fault service: %s", !opts->map ? "no mapper" : "bad options");
		return -EINVAL;
	}
	for (size_t i = 0; i < opts->nr_vfs; i++)
		if (opts->vfs[i] < 1 || opts->vfs[i] > hw->max_vfs) {
			maptbl_log(MAPTBL_LOG_ERROR, "VF %u: the device has VFs 1 .. %u", opts->vfs[i],
				   hw->max_vfs);
			return -ENODEV;
		}
	if ((err = maptbl_hw_dev_info(hw, &di)))
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	env = getenv("MAPTBL_SERVE_ZERO_AHEAD");
	s->ahead_off = env && !strcmp(env, "0");
	env = getenv("MAPTBL_SERVE_AHEAD_DELAY_MS");
	s->ahead_delay_ms = env ? (unsigned)strtoul(env, NULL, 10) : 0;
	env = getenv("MAPTBL_SERVE_SYNC");
	s->sync_each = env && !strcmp(env, "fault");
	s->hw = hw;
	memcpy(&s->o, opts, sizeof(s->o));
	s->o.vfs = NULL;
	if (!s->o.alloc_unit)
		s->o.alloc_unit = DEFAULT_ALLOC_UNIT;
	if (!s->o.fq_entries)
		s->o.fq_entries = DEFAULT_FQ_ENTRIES;
	for (unsigned i = 0; i <= MAPTBL_HW_MAX_VFS; i++) {
		s->want[i] = !opts->nr_vfs;
		s->vf[i].fd = s->vf[i].dfd = -1;
	}
	for (size_t i = 0; i < opts->nr_vfs; i++) {
		s->want[opts->vfs[i]] = true;
		if (opts->files && opts->files[i] && !(s->file[opts->vfs[i]] = strdup(opts->files[i]))) {
			maptbl_hw_serve_close(s);
			return -ENOMEM;
		}
	}
	s->o.files = NULL;
	s->pf_bytes = di.disk_blocks * di.block_size;
	if (posix_memalign(&s->zero, 4096, ZERO_CHUNK)) {
		maptbl_hw_serve_close(s);
		return -ENOMEM;
	}
	memset(s->zero, 0, ZERO_CHUNK);
	if ((err = maptbl_hw_fault_start(hw, s->o.fq_entries))) {
		maptbl_hw_serve_close(s);
		return err;
	}
	s->started = true;
	*out = s;
	return 0;
}

/* ---- register helpers: a failure is fatal (the device is gone) ---- */

static int reg_w32(struct maptbl_hw_serve *s, uint32_t off, uint32_t val)
{
	int err = s->hw->ops->write32(s->hw, 0, off, val);

	if (err)
		s->fatal = err;
	return err;
}

static int reg_w64(struct maptbl_hw_serve *s, uint32_t off, uint64_t val)
{
	int err = s->hw->ops->write64(s->hw, 0, off, val);

	if (err)
		s->fatal = err;
	return err;
}

static int reg_r32(struct maptbl_hw_serve *s, uint32_t off, uint32_t *val)
{
	int err = s->hw->ops->read32(s->hw, 0, off, val);

	if (err)
		s->fatal = err;
	return err;
}

static uint32_t vfcfg(unsigned vf, uint32_t reg)
{
	return (uint32_t)MAPTBL_REG_PF_VFCFG(vf) + reg;
}

/* ---- committing allocations at the VM's flushes (REGISTERS.md §12.6) ---- */

/*
 * What the service is about to map of VF @vf's file is allocated and written in the filesystem's
 * memory, not committed: set CTRL.COMMIT before the table maps it, so that the VF's next flush
 * (or FUA write) stalls until commit() ran. A device that does not keep the bit (it predates
 * it): the file is synced now, and at every fault from then on.
 */
static int commit_mark(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v)
{
	uint32_t ctrl;
	int err;

	if (s->sync_each || v->sync_each)
		return 0;
	if ((err = reg_r32(s, vfcfg(vf, MAPTBL_VFCFG_CTRL), &ctrl)))
		return err;
	if (!(ctrl & MAPTBL_VFCFG_CTRL_COMMIT) &&
	    ((err = reg_w32(s, vfcfg(vf, MAPTBL_VFCFG_CTRL), ctrl | MAPTBL_VFCFG_CTRL_COMMIT)) ||
	     (err = reg_r32(s, vfcfg(vf, MAPTBL_VFCFG_CTRL), &ctrl))))
		return err;
	if (ctrl & MAPTBL_VFCFG_CTRL_COMMIT) {
		v->commit = true;
		return 0;
	}
	maptbl_log(MAPTBL_LOG_WARN, "VF %u: the device has no CTRL.COMMIT: every fault syncs %s",
		   vf, v->path);
	v->sync_each = true;
	return fdatasync(v->fd) ? -errno : 0;
}

/*
 * The VF flushes (a COMMIT fault): the filesystem commits what the service allocated and zeroed
 * in @v's file (fdatasync: its journal or log, and a flush of the disk). CTRL.COMMIT is cleared
 * first, so that what is mapped while the sync runs sets it again for the next flush.
 */
static int commit(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v)
{
	int err;

	if ((err = commit_clear(s, vf)))
		return err;
	v->commit = false;
	if (fdatasync(v->fd)) {
		err = -errno;
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: the commit (fdatasync) failed: %s", vf,
			   v->path, strerror(errno));
		return err;
	}
	return 0;
}

/* ---- the mapper's answer ---- */

struct xvec {
	struct maptbl_extent *v;
	size_t n, cap;
};

static int xvec_add(void *sink, const struct maptbl_extent *e)
{
	struct xvec *x = sink;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		struct maptbl_extent *v = realloc(x->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->v = v;
		x->cap = cap;
	}
	x->v[x->n++] = *e;
	return 0;
}

/* The file's extents overlapping [lblk, lblk + n), sorted; checked to be in order. */
static int map_range_flags(struct maptbl_hw_serve *s, const char *path,
			   const struct maptbl_table *t, uint64_t lblk, uint64_t n, uint32_t flags,
			   struct xvec *x)
{
	uint32_t bs = maptbl_table_block_size(t);
	struct maptbl_hw_map_req req = {
		.path = path,
		.block_size = bs,
		.flags = flags,
		.lblk = lblk,
		.nblocks = n,
		.disk_id = maptbl_table_disk_id(t),
		.disk_blocks = s->pf_bytes / bs,
	};
	int err;

	x->n = 0;
	err = s->o.map(s->o.map_ctx, &req, xvec_add, x);
	if (err)
		return err;
	for (size_t i = 0; i < x->n; i++) {
		const struct maptbl_extent *e = &x->v[i];

		if (!e->len || (i && e->lblk < x->v[i - 1].lblk + x->v[i - 1].len) ||
		    (req.disk_blocks && (e->pblk > req.disk_blocks || e->len > req.disk_blocks - e->pblk))) {
			maptbl_log(MAPTBL_LOG_ERROR, "%s: the mapper gave a bad extent at block %" PRIu64,
				   path, e->lblk);
			return -EINVAL;
		}
	}
	return 0;
}

static int map_range(struct maptbl_hw_serve *s, const char *path, const struct maptbl_table *t,
		     uint64_t lblk, uint64_t n, struct xvec *x)
{
	return map_range_flags(s, path, t, lblk, n, 0, x);
}

/* ---- the VF's table ---- */

/*
 * Put table @nt (own buffer) into new persistent DMA memory with the VF's note and open it there
 * in place; point TABLE_BASE/TABLE_LEN at it. The device takes it at the next WALK_AGAIN (the
 * VF is stalled, so nothing walks meanwhile). *old_base gets the buffer to release after that.
 */
static int install(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v,
		   const struct maptbl_table *nt, uint64_t *old_base)
{
	struct maptbl_open_opts oo;
	struct maptbl_hw_dma *dma;
	struct maptbl_table *t;
	size_t len = maptbl_table_len(nt);
	int err;

	err = maptbl_hw_dma_alloc(s->hw, hw_table_alloc_len(len), MAPTBL_HW_DMA_PERSIST, &dma);
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: no DMA memory for a table of %zu bytes", vf, len);
		return err;
	}
	memcpy(dma->vaddr, maptbl_table_data(nt), len);
	hw_note_put(dma->vaddr, len, v->path);
	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.flags = MAPTBL_OPEN_INPLACE;
	err = maptbl_table_open(dma->vaddr, len, &oo, &t);
	if (!err && ((err = reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_BASE), dma->addr)) ||
		     (err = reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_LEN), len))))
		maptbl_table_free(t);
	if (err) {
		dma->flags &= ~MAPTBL_HW_DMA_PERSIST;
		maptbl_hw_dma_free(dma);
		return err;
	}
	if (!*old_base)
		*old_base = v->base;
	maptbl_table_free(v->t);
	v->t = t;
	v->base = dma->addr;
	v->len = len;
	/* The handle stays with this process (closing it keeps persistent memory): the table is
	 * mapped through it, and maptbl_hw_dma_release() frees it when it is replaced. */
	return 0;
}

/* Room for updates after a compaction: at least MIN_SPARE_NODES, or as many as the tree has. */
static uint64_t spare_for(struct maptbl_table *t)
{
	struct maptbl_space sp;

	if (maptbl_table_space(t, &sp, sizeof(sp)))
		return MIN_SPARE_NODES;
	return sp.tree_nodes > MIN_SPARE_NODES ? sp.tree_nodes : MIN_SPARE_NODES;
}

static int compact(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v, uint64_t *old_base)
{
	struct maptbl_build_opts bo;
	struct maptbl_table *nt;
	int err;

	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.spare_nodes = spare_for(v->t);
	bo.fill_pct = 90;
	if ((err = maptbl_table_compact(v->t, &bo, &nt)))
		return err;
	err = install(s, vf, v, nt, old_base);
	maptbl_table_free(nt);
	return err;
}

/* This process cannot reach the VF's table memory: a table from the file, in memory of its own. */
static int adopt(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v,
		 const struct maptbl_hw_vf_info *info, uint64_t *old_base)
{
	struct maptbl_build_opts bo;
	struct maptbl_table *nt, *probe;
	struct xvec x = { 0 };
	int err;

	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.block_size = info->block_size;
	bo.virtual_blocks = info->virt_blocks;
	bo.disk_blocks = s->pf_bytes / info->block_size;
	/* map_range() wants a table for the block size and disk: an empty one. */
	if ((err = maptbl_table_build(NULL, 0, &bo, &probe)))
		return err;
	err = map_range(s, v->path, probe, 0, info->virt_blocks, &x);
	maptbl_table_free(probe);
	for (size_t i = 0; !err && i < x.n; i++) /* only what lies inside the virtual disk */
		if (x.v[i].lblk >= info->virt_blocks)
			x.n = i;
		else if (x.v[i].len > info->virt_blocks - x.v[i].lblk)
			x.v[i].len = info->virt_blocks - x.v[i].lblk;
	bo.spare_nodes = MIN_SPARE_NODES;
	bo.fill_pct = 90;
	if (!err)
		err = maptbl_table_build(x.v, x.n, &bo, &nt);
	free(x.v);
	if (err)
		return err;
	err = install(s, vf, v, nt, old_base);
	maptbl_table_free(nt);
	if (!err)
		maptbl_log(MAPTBL_LOG_INFO, "VF %u: its table is out of this process's reach: rebuilt "
			   "from %s", vf, v->path);
	return err;
}

struct backing_check {
	const struct xvec *x;
	size_t i;
	uint64_t bad;	/* first table block the file maps elsewhere, + 1 */
};

static int backing_cmp(void *ctx, const struct maptbl_extent *e)
{
	struct backing_check *c = ctx;

	if (e->flags & MAPTBL_EXTENT_ABSENT)
		return 0;
	while (c->i < c->x->n && c->x->v[c->i].lblk + c->x->v[c->i].len <= e->lblk)
		c->i++;
	if (c->i == c->x->n || c->x->v[c->i].lblk > e->lblk ||
	    c->x->v[c->i].pblk + (e->lblk - c->x->v[c->i].lblk) != e->pblk) {
		c->bad = e->lblk + 1;
		return 1;
	}
	return 0;
}

/*
 * Is @v->path the file @v->t was made from? The label of a table pushed from a table file names
 * that table file (maptbl push): allocating in it would write zeros into a table. Refused: a file
 * that starts with a table's magic, and a file whose extents differ from the table's (each
 * extent's first block must lie where the file has it now).
 */
static int check_backing(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v)
{
	struct backing_check c = { 0 };
	struct xvec x = { 0 };
	char magic[MAPTBL_MAGIC_LEN];
	int err;

	if (pread(v->fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
	    !memcmp(magic, MAPTBL_MAGIC_STR, MAPTBL_MAGIC_LEN)) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s is a table file, not the file the VF stands for "
			   "(pushed with maptbl push): its faults are not served", vf, v->path);
		return -EINVAL;
	}
	if (!maptbl_table_nr_extents(v->t))
		return 0;
	err = map_range(s, v->path, v->t, 0, maptbl_table_virtual_blocks(v->t), &x);
	c.x = &x;
	if (!err && maptbl_table_iterate(v->t, backing_cmp, &c)) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: its table maps block %" PRIu64 " elsewhere than %s "
			   "does: not the table of that file (or the file moved): its faults are not served",
			   vf, c.bad - 1, v->path);
		err = -EINVAL;
	}
	free(x.v);
	return err;
}

static bool ahead_wait(struct maptbl_hw_serve *s, struct sv_vf *v, uint64_t lo, uint64_t hi,
		       bool *ready);

/* Open the VF's table in place and its file; redone when another process gave it a new table. */
/* Another file or table: no sequential write goes on, and nothing prepared for it counts. */
static void forget_writer(struct maptbl_hw_serve *s, struct sv_vf *v)
{
	pthread_mutex_lock(&s->mu);
	v->ready_lo = v->ready_hi = 0;
	pthread_mutex_unlock(&s->mu);
	v->seq_next = 0;
}

static int vf_get(struct maptbl_hw_serve *s, unsigned vf, const struct maptbl_hw_vf_info *info,
		  uint64_t *old_base)
{
	struct sv_vf *v = &s->vf[vf];
	const char *path = info->label[0] ? info->label : s->file[vf];
	struct maptbl_open_opts oo;
	void *mem;
	int err;

	if (!path || path[0] != '/') {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: no backing file known (a table pushed without a "
			   "file): cannot allocate", vf);
		return -ENOENT;
	}
	if (strcmp(path, v->path) || v->fd < 0) {
		ahead_wait(s, v, 0, UINT64_MAX, NULL); /* the thread's ranges were of the old file */
		forget_writer(s, v);
		vf_close_file(v);
		snprintf(v->path, sizeof(v->path), "%s", path);
		v->ahead_end = 0;
		atomic_store(&v->no_wz, false);
		v->fd = open(v->path, O_RDWR | O_CLOEXEC);
		if (v->fd < 0) {
			err = -errno;
			maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: %s", vf, v->path, strerror(errno));
			v->path[0] = 0;
			return err;
		}
		/* The zeros go around the page cache where the filesystem allows it (zero_range()). */
		v->dfd = open(v->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	}
	if (v->t && v->base == info->table_base && v->len == info->table_len)
		return 0;
	vf_drop(v);
	forget_writer(s, v); /* a pushed table's size or block size may differ from the ranges' */
	v->base = info->table_base;
	v->len = info->table_len;
	mem = info->table_len < ((uint64_t)1 << 40)
		      ? s->hw->ops->dma_map(s->hw, info->table_base, (size_t)info->table_len) : NULL;
	if (!mem)
		return adopt(s, vf, v, info, old_base);
	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.flags = MAPTBL_OPEN_INPLACE;
	err = maptbl_table_open(mem, (size_t)info->table_len, &oo, &v->t);
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "VF %u: its table does not open: %s", vf, strerror(-err));
		v->base = v->len = 0;
		return err;
	}
	if ((err = check_backing(s, vf, v)))
		vf_drop(v);
	return err;
}

/* ---- allocation through the filesystem ---- */

/*
 * Zeros through the filesystem on [a, b), which has no written data (a hole or unwritten
 * blocks), so that it records the blocks as written. First FALLOC_FL_WRITE_ZEROES (the device
 * zeroes, nothing crosses memory; refused once, never asked again for the file), then direct
 * writes from an aligned buffer on @v->dfd (one copy, no page cache to write back: the zeros
 * cached for the file are not there to go stale when the device writes the blocks), then
 * buffered writes (a filesystem without O_DIRECT, or a range it refuses): then *@buffered is
 * set, and the caller syncs and drops those pages before the device may write the blocks (else
 * their writeback would put the zeros back over the VM's data).
 */
static int zero_range(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t a,
		      uint64_t b, bool *buffered)
{
	if (!atomic_load(&v->no_wz)) {
		if (!fallocate(v->fd, FALLOC_FL_WRITE_ZEROES, (off_t)(a * bs), (off_t)((b - a) * bs)))
			return 0;
		if (errno == EOPNOTSUPP)
			atomic_store(&v->no_wz, true);
		/* anything else (EINVAL, ENOSPC...): the writes below tell */
	}
	while (a < b) {
		uint64_t n = b - a < ZERO_CHUNK / bs ? b - a : ZERO_CHUNK / bs;
		ssize_t w = -1;

		if (v->dfd >= 0)
			w = pwrite(v->dfd, s->zero, (size_t)(n * bs), (off_t)(a * bs));
		if (w < 0 && (v->dfd < 0 || errno == EINVAL)) { /* no direct I/O here: buffered */
			w = pwrite(v->fd, s->zero, (size_t)(n * bs), (off_t)(a * bs));
			*buffered = true;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if ((uint64_t)w != n * bs)
			return -EIO;
		a += n;
	}
	return 0;
}

/* Zeros through the filesystem wherever [lo, hi) has no written data: unwritten extents, holes. */
static int write_zeros(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t lo,
		       uint64_t hi, const struct xvec *x, bool *buffered)
{
	uint64_t at = lo;
	int err;

	for (size_t i = 0; i < x->n && at < hi; i++) {
		uint64_t es = x->v[i].lblk, ee = es + x->v[i].len;

		if (ee <= at)
			continue;
		if (es > at && (err = zero_range(s, v, bs, at, es < hi ? es : hi, buffered)))
			return err;
		if ((x->v[i].flags & MAPTBL_EXTENT_UNWRITTEN) &&
		    (err = zero_range(s, v, bs, es > at ? es : at, ee < hi ? ee : hi, buffered)))
			return err;
		at = ee;
	}
	return at < hi ? zero_range(s, v, bs, at, hi, buffered) : 0;
}

/* ---- zeroing ahead of a sequential writer ---- */

/*
 * Zeros on the whole blocks of [lo, hi) that hold no data, as lseek(SEEK_DATA/SEEK_HOLE) finds
 * them: it reports holes and unwritten blocks as holes on ext4, XFS and btrfs (and dirty cached
 * pages as data), and never data as a hole; a filesystem without it reports all data, and
 * nothing is zeroed (the caller's mapping then finds the unwritten blocks). Ends early with
 * -ECANCELED when the service stops (@thread: the zeroing thread's call).
 */
static int zero_holes(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t lo,
		      uint64_t hi, bool thread, bool *buffered)
{
	off_t pos = (off_t)(lo * bs), end = (off_t)(hi * bs);
	int err;

	while (pos < end) {
		off_t d, h;

		if (thread && atomic_load(&s->stop))
			return -ECANCELED; /* what is zeroed stays: the table maps none of it */
		if ((d = lseek(v->fd, pos, SEEK_DATA)) < 0 && errno != ENXIO)
			return -errno;
		if (d < 0 || d > end)
			d = end;
		/* [pos, d) has no data (the tests' delay goes between the look and the zeros: a fault
		 * that did not wait for the thread would lose its data) */
		if (thread && s->ahead_delay_ms && pos == (off_t)(lo * bs))
			usleep(s->ahead_delay_ms * 1000u);
		if ((uint64_t)(pos + bs - 1) / bs < (uint64_t)d / bs &&
		    (err = zero_range(s, v, bs, (uint64_t)(pos + bs - 1) / bs, (uint64_t)d / bs,
				      buffered)))
			return err;
		if (d >= end || (h = lseek(v->fd, d, SEEK_HOLE)) < 0)
			break;
		pos = h;
	}
	return 0;
}

/*
 * The filesystem has the service's changes to [lo, hi) of @v's file (allocation, zeros) in
 * memory: what the device may rely on before it writes there. Direct zeros are on the disk and
 * recorded as written; the commit of that record waits for the VF's next flush (CTRL.COMMIT,
 * §12.6), unless zeros went through the page cache (@buffered: they must reach the disk before
 * the device writes over them) or the service syncs at every fault: then fdatasync now. The
 * file's cached pages of the range go either way (the host reads what the device writes).
 */
static int settle(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t lo,
		  uint64_t hi, bool buffered)
{
	if ((buffered || s->sync_each || v->sync_each) && fdatasync(v->fd))
		return -errno;
	posix_fadvise(v->fd, (off_t)(lo * bs), (off_t)((hi - lo) * bs), POSIX_FADV_DONTNEED);
	return 0;
}

/*
 * Prepare [lo, *hi) of @v's file for the fault that will come there: allocate, write zeros where
 * the file has no data (settle()). Only what the file's size covers (the size follows the writes:
 * never grown here; *hi is cut to it). The fault on the range still maps and checks it
 * (allocate()): this only takes the writing off its path.
 */
static int prepare_range(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t lo,
			 uint64_t *hi)
{
	off_t pos = (off_t)(lo * bs), end = (off_t)(*hi * bs);
	bool buffered = false;
	struct stat st;
	int err;

	if (fstat(v->fd, &st))
		return -errno;
	if (end > st.st_size)
		end = st.st_size - st.st_size % bs;
	*hi = (uint64_t)end / bs;
	if (pos >= end)
		return 0;
	if (fallocate(v->fd, 0, pos, end - pos) && errno != EOPNOTSUPP)
		return -errno; /* ENOSPC...: the fault allocates what it needs, or fails */
	if ((err = zero_holes(s, v, bs, lo, *hi, true, &buffered)))
		return err;
	return settle(s, v, bs, lo, *hi, buffered);
}

/* The zeroing thread: one queued range at a time, the lowest of the first VF that has one. */
static void *zero_ahead_main(void *arg)
{
	struct maptbl_hw_serve *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!atomic_load(&s->stop)) {
		struct sv_vf *v = NULL;
		struct ahead_job *j = NULL, job;
		int err;

		for (unsigned i = 1; i <= MAPTBL_HW_MAX_VFS && !j; i++)
			for (unsigned k = 0; k < 2; k++)
				if (s->vf[i].ahead[k].state == AHEAD_QUEUED &&
				    (!j || s->vf[i].ahead[k].lo < j->lo)) {
					v = &s->vf[i];
					j = &v->ahead[k];
				}
		if (!j) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		j->state = AHEAD_BUSY;
		job = *j;
		pthread_mutex_unlock(&s->mu);
		/* A failure is no one's: the fault on the range allocates it itself, and reports. */
		err = atomic_load(&s->stop) ? -ECANCELED : prepare_range(s, v, job.bs, job.lo, &job.hi);
		pthread_mutex_lock(&s->mu);
		if (!err && job.lo == v->ready_hi) {
			v->ready_hi = job.hi;
		} else if (!err) {
			v->ready_lo = job.lo;
			v->ready_hi = job.hi;
		}
		j->state = AHEAD_NONE;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * Wait until the zeroing thread works on nothing of @v's in [lo, hi): a fault never maps, zeroes
 * or publishes a range while the thread still writes zeros there. A range queued but not begun
 * is taken back (the fault allocates it itself). true if the fault had to wait; *ready (if not
 * NULL): the thread prepared all of [lo, hi).
 */
static bool ahead_wait(struct maptbl_hw_serve *s, struct sv_vf *v, uint64_t lo, uint64_t hi,
		       bool *ready)
{
	bool waited = false;

	if (ready)
		*ready = false;
	if (!s->ahead_running)
		return false;
	pthread_mutex_lock(&s->mu);
	for (unsigned k = 0; k < 2; k++) {
		struct ahead_job *j = &v->ahead[k];

		if (j->state == AHEAD_NONE || j->hi <= lo || hi <= j->lo)
			continue;
		if (j->state == AHEAD_QUEUED) {
			j->state = AHEAD_NONE;
			v->ahead_end = 0;
			continue;
		}
		waited = true;
		while (j->state == AHEAD_BUSY)
			pthread_cond_wait(&s->cv, &s->mu);
	}
	if (ready)
		*ready = v->ready_lo <= lo && hi <= v->ready_hi;
	pthread_mutex_unlock(&s->mu);
	return waited;
}

/*
 * The end of what the zeroing thread prepared, without a gap, from @hi on (@hi: nothing beyond
 * it). A fault on a prepared range maps that too: the blocks are allocated and zeroed already
 * (the space is spent either way), and a sequential writer then faults once per two ranges, not
 * at each (PERFORMANCE.md run G: a fault cost the VM's write ~4 ms there, where its service took
 * 1 ms). Finished ranges only: a fault never waits for the thread to map more than it needs.
 * Never past @top (the file's end or the VF's, whichever comes first, now: the thread clipped the
 * range to them when it was queued).
 */
static uint64_t ready_end(struct maptbl_hw_serve *s, struct sv_vf *v, uint64_t hi, uint64_t top)
{
	uint64_t end = hi;

	if (!s->ahead_running)
		return hi;
	pthread_mutex_lock(&s->mu);
	if (v->ready_lo <= hi && v->ready_hi > hi && top > hi) /* the file or VF may have shrunk */
		end = v->ready_hi < top ? v->ready_hi : top;
	for (unsigned k = 0; k < 2; k++) /* never over a range the thread still works on */
		if (v->ahead[k].state != AHEAD_NONE && v->ahead[k].lo < end && v->ahead[k].hi > hi)
			end = v->ahead[k].lo > hi ? v->ahead[k].lo : hi;
	pthread_mutex_unlock(&s->mu);
	return end;
}

/*
 * Queue [lo, hi) of @v's file for the zeroing thread (started on first use, with every signal
 * blocked: they are the service thread's), less what was queued before.
 */
static void ahead_queue(struct maptbl_hw_serve *s, struct sv_vf *v, uint32_t bs, uint64_t lo,
			uint64_t hi)
{
	if (lo < v->ahead_end)
		lo = v->ahead_end;
	if (lo >= hi || s->ahead_off)
		return;
	if (!s->ahead_running) {
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		s->ahead_running = !pthread_create(&s->ahead_thread, NULL, zero_ahead_main, s);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!s->ahead_running) {
			maptbl_log(MAPTBL_LOG_WARN, "fault service: no thread to zero ahead: faults zero "
				   "their ranges themselves");
			s->ahead_off = true;
			return;
		}
	}
	pthread_mutex_lock(&s->mu);
	for (unsigned k = 0; k < 2; k++)
		if (v->ahead[k].state == AHEAD_NONE) {
			v->ahead[k] = (struct ahead_job){ .state = AHEAD_QUEUED, .bs = bs, .lo = lo,
							 .hi = hi };
			v->ahead_end = hi;
			pthread_cond_broadcast(&s->cv);
			break;
		}
	pthread_mutex_unlock(&s->mu);
}

/* The first block of [lo, hi) that extents @x do not give as written data (@hi: none). */
static uint64_t written_until(const struct xvec *x, uint64_t lo, uint64_t hi)
{
	uint64_t at = lo;

	for (size_t i = 0; i < x->n && at < hi; i++) {
		if (x->v[i].lblk + x->v[i].len <= at)
			continue;
		if (x->v[i].lblk > at || (x->v[i].flags & MAPTBL_EXTENT_UNWRITTEN))
			break;
		at = x->v[i].lblk + x->v[i].len;
	}
	return at < hi ? at : hi;
}

/*
 * Allocate [*lo, *hi) as written blocks of the file (shrunk to the fault's own run when the
 * whole unit does not fit), then return its extents in @x.
 */
static int allocate(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v, uint64_t fstart,
		    uint64_t fend, bool ready, uint64_t *lo, uint64_t *hi, struct xvec *x)
{
	uint32_t bs = maptbl_table_block_size(v->t);
	bool buffered = false;
	uint64_t at;
	int err = 0;

	/*
	 * The zeroing thread allocated and zeroed the range (prepare_range()): nothing to write;
	 * the mapping is the check. Anything else there: the full way.
	 */
	if (ready && !map_range_flags(s, v->path, v->t, *lo, *hi - *lo, MAPTBL_HW_MAP_SYNCED, x) &&
	    written_until(x, *lo, *hi) == *hi) {
		/* Zeros a reader cached since then go too: the host reads what the device writes.
		 * This used to be missing: a host read between the thread's zeros and the fault kept
		 * zeros in the page cache over the VM's data (tests/hw/045). */
		posix_fadvise(v->fd, (off_t)(*lo * bs), (off_t)((*hi - *lo) * bs), POSIX_FADV_DONTNEED);
		return 0;
	}

	if (fallocate(v->fd, 0, (off_t)(*lo * bs), (off_t)((*hi - *lo) * bs))) {
		err = -errno;
		if ((err == -ENOSPC || err == -EDQUOT) && (*lo != fstart || *hi != fend)) {
			*lo = fstart;
			*hi = fend;
			err = fallocate(v->fd, 0, (off_t)(*lo * bs), (off_t)((*hi - *lo) * bs)) ? -errno : 0;
		}
		if (err == -EOPNOTSUPP) /* no fallocate: the zeros below allocate */
			err = 0;
		if (err) {
			maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: cannot allocate blocks %" PRIu64 "..%" PRIu64
				   ": %s", vf, v->path, *lo, *hi - 1, strerror(-err));
			return err;
		}
	}
	/*
	 * Zeros where lseek() finds no data, settle() (no sync: the VF's next flush commits), and
	 * one mapping (the mapper does not sync either) to check that all of the range is written
	 * data now. Where it is not (a filesystem whose lseek() does not tell unwritten blocks from
	 * data), the mapper's view: zeros into its holes and unwritten extents, map again. This
	 * used to map (and so sync: a journal commit and a disk flush) before the zeros too, 20-67
	 * ms per fault on a loop device, and then to fdatasync after them (PERFORMANCE.md).
	 */
	for (int pass = 0;; pass++) {
		if (pass && (err = map_range(s, v->path, v->t, *lo, *hi - *lo, x)))
			goto fail;
		err = pass ? write_zeros(s, v, bs, *lo, *hi, x, &buffered)
			   : zero_holes(s, v, bs, *lo, *hi, false, &buffered);
		/* The filesystem records the allocation and the written state before the device
		 * writes; the zeros it cached for the file go, so the host reads what the device
		 * will write. */
		if (!err)
			err = settle(s, v, bs, *lo, *hi, buffered);
		if (err)
			goto fail;
		if ((err = map_range_flags(s, v->path, v->t, *lo, *hi - *lo, MAPTBL_HW_MAP_SYNCED, x)))
			goto fail;
		if ((at = written_until(x, *lo, *hi)) == *hi)
			return 0;
		if (pass) { /* the filesystem did something else */
			maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: block %" PRIu64 " is not written data "
				   "after the allocation", vf, v->path, at);
			return -EIO;
		}
	}
fail:
	maptbl_log(MAPTBL_LOG_ERROR, "VF %u: %s: blocks %" PRIu64 "..%" PRIu64 ": %s", vf, v->path,
		   *lo, *hi - 1, strerror(-err));
	return err;
}

/*
 * The blocks to allocate for a write fault on [fstart, fend) of a file of @eof blocks on a VF of
 * @vb blocks: the allocation units (@au blocks) around the fault, so that sequential writes fault
 * once per unit; clipped to the VF and, past the end of the file, to the end of the stalled
 * write, so that the file's size follows the highest block written, never a unit beyond it.
 */
static void alloc_range(uint64_t fstart, uint64_t fend, uint64_t eof, uint64_t au, uint64_t vb,
			uint64_t *lo, uint64_t *hi)
{
	uint64_t top = fend > eof ? fend : eof;

	*lo = fstart - fstart % au;
	*hi = fend % au ? fend + (au - fend % au) : fend;
	if (*hi > top)
		*hi = top;
	if (*hi > vb)
		*hi = vb;
}

/*
 * Allocating ahead of a sequential writer (readahead's idea, for allocation): a write fault that
 * starts exactly where this VF's previous allocation ended doubles the range the previous one
 * had, up to MAX_AHEAD_UNITS units, so a VM filling a sparse VF front to back faults about
 * log2(32) + n / 32 times per n units instead of n times. Any other fault starts over at one
 * unit. Never past the end of the file (its size follows the highest block written) nor the VF:
 * growth is not anticipated. [*lo, *hi) is alloc_range()'s answer and only ever grows.
 */
static void alloc_ahead(uint64_t *seq_next, uint64_t *seq_units, uint64_t fstart, uint64_t eof,
			uint64_t au, uint64_t vb, uint64_t lo, uint64_t *hi)
{
	uint64_t top = eof < vb ? eof : vb, want;

	if (!*seq_next || fstart != *seq_next) {
		*seq_units = 1;
		return;
	}
	*seq_units = *seq_units * 2 < MAX_AHEAD_UNITS ? *seq_units * 2 : MAX_AHEAD_UNITS;
	want = lo + *seq_units * au;
	if (want > top)
		want = top;
	if (want > *hi)
		*hi = want;
}

/* ---- table updates ---- */

/* One update on the VF's table; compacts into a new buffer once when the room runs out. */
enum { OP_INSERT, OP_CONVERT, OP_PUNCH };

static int table_op(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v, int op,
		    const struct maptbl_extent *e, uint64_t *old_base, bool *compacted)
{
	for (int tries = 0;; tries++) {
		int err;

		if (op == OP_INSERT)
			err = maptbl_table_insert(v->t, e, MAPTBL_UPDATE_STAGE);
		else if (op == OP_CONVERT)
			err = maptbl_table_convert(v->t, e->lblk, e->len, MAPTBL_UPDATE_STAGE);
		else
			err = maptbl_table_punch(v->t, e->lblk, e->len, MAPTBL_UPDATE_STAGE);
		if (err != -ENOSPC || tries)
			return err;
		/* Everything retired is free (the VF is stalled: nothing walks), else a new buffer. */
		if (maptbl_table_reclaim(v->t, maptbl_table_generation(v->t)) > 0)
			continue;
		if ((err = compact(s, vf, v, old_base)))
			return err;
		*compacted = true;
	}
}

/* Make the table say what the filesystem says for [lo, hi): written extents @x. */
static int table_apply(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v, uint64_t lo,
		       uint64_t hi, const struct xvec *x, uint64_t *old_base, bool *compacted)
{
	for (size_t i = 0; i < x->n; i++) {
		uint64_t a = x->v[i].lblk > lo ? x->v[i].lblk : lo;
		uint64_t b = x->v[i].lblk + x->v[i].len < hi ? x->v[i].lblk + x->v[i].len : hi;

		while (a < b) {
			struct maptbl_extent e = { .lblk = a, .pblk = x->v[i].pblk + (a - x->v[i].lblk) };
			struct maptbl_mapping m;
			int err = maptbl_table_lookup(v->t, a, &m);

			if (err == -ERANGE) { /* past the table's size: a hole */
				m.state = MAPTBL_MAP_HOLE;
				m.len = b - a;
			} else if (err) {
				return err;
			}
			e.len = m.len < b - a ? m.len : b - a;
			switch (m.state) {
			case MAPTBL_MAP_HOLE:
				err = table_op(s, vf, v, OP_INSERT, &e, old_base, compacted);
				break;
			case MAPTBL_MAP_UNWRITTEN:
			case MAPTBL_MAP_MAPPED:
				if (m.pblk == e.pblk) {
					if (m.state == MAPTBL_MAP_UNWRITTEN)
						err = table_op(s, vf, v, OP_CONVERT, &e, old_base, compacted);
					break;
				}
				maptbl_log(MAPTBL_LOG_WARN, "VF %u: blocks %" PRIu64 "..%" PRIu64 " moved on "
					   "the disk: mapped again", vf, e.lblk, e.lblk + e.len - 1);
				err = table_op(s, vf, v, OP_PUNCH, &e, old_base, compacted);
				if (!err)
					err = table_op(s, vf, v, OP_INSERT, &e, old_base, compacted);
				break;
			default: /* absent: restored when a fault reaches it */
				break;
			}
			if (err) {
				maptbl_log(MAPTBL_LOG_ERROR, "VF %u: table update at block %" PRIu64
					   " failed: %s", vf, a, strerror(-err));
				return err;
			}
			a += e.len;
		}
	}
	return 0;
}

struct absent_find {
	uint64_t lba, start, len;
};

static int find_absent(void *ctx, const struct maptbl_extent *e)
{
	struct absent_find *f = ctx;

	if ((e->flags & MAPTBL_EXTENT_ABSENT) && f->lba >= e->lblk && f->lba - e->lblk < e->len) {
		f->start = e->lblk;
		f->len = e->len;
		return 1;
	}
	return e->lblk > f->lba;
}

/* A pruned range the fault reached: its extents from the filesystem, as they are now. */
static int restore_absent(struct maptbl_hw_serve *s, unsigned vf, struct sv_vf *v, uint64_t lba,
			  uint64_t *old_base, bool *compacted)
{
	struct absent_find f = { .lba = lba };
	struct xvec x = { 0 };
	int err;

	if (maptbl_table_iterate(v->t, find_absent, &f) != 1 || !f.len)
		return 0; /* not absent any more */
	err = map_range(s, v->path, v->t, f.start, f.len, &x);
	for (size_t i = 0; !err && i < x.n; i++) { /* clip to the range */
		struct maptbl_extent *e = &x.v[i];
		uint64_t end = e->lblk + e->len, fend = f.start + f.len;

		if (e->lblk < f.start) {
			e->pblk += f.start - e->lblk;
			e->lblk = f.start;
		}
		e->len = (end < fend ? end : fend) - e->lblk;
	}
	for (int tries = 0; !err; tries++) {
		err = maptbl_table_unmark_absent(v->t, f.start, f.len, x.v, x.n, MAPTBL_UPDATE_STAGE);
		if (err != -ENOSPC || tries)
			break;
		if (maptbl_table_reclaim(v->t, maptbl_table_generation(v->t)) <= 0) {
			if ((err = compact(s, vf, v, old_base)))
				break;
			*compacted = true;
		}
		err = 0;
	}
	free(x.v);
	return err;
}

/* ---- one fault ---- */

static int serve_fault(struct maptbl_hw_serve *s, unsigned vf, const struct maptbl_hw_vf_info *info,
		       struct maptbl_hw_serve_event *ev, uint64_t *old_base)
{
	struct sv_vf *v = &s->vf[vf];
	struct maptbl_space sp0, sp1;
	struct xvec x = { 0 };
	bool compacted = false, ready;
	uint64_t fstart, fend, lo, hi, au, eof, vb;
	uint32_t bs;
	struct stat st;
	int err;

	if ((err = vf_get(s, vf, info, old_base)))
		return err;
	if (*old_base)
		compacted = true;
	maptbl_table_space(v->t, &sp0, sizeof(sp0));
	/* The VF is stalled: the device walks none of its table, every retired node is free. */
	maptbl_table_reclaim(v->t, maptbl_table_generation(v->t));
	bs = maptbl_table_block_size(v->t);
	vb = info->virt_blocks;
	if (ev->reason == MAPTBL_FAULT_COMMIT) {
		err = commit(s, vf, v);
		ev->flags |= MAPTBL_HW_SERVE_COMMITTED;
		goto out; /* nothing to publish */
	}
	if (ev->reason == MAPTBL_FAULT_ABSENT) {
		ahead_wait(s, v, 0, UINT64_MAX, NULL); /* the file as it is, not mid-zeroing */
		err = restore_absent(s, vf, v, ev->lba, old_base, &compacted);
		ev->flags |= MAPTBL_HW_SERVE_RESTORED;
		goto publish;
	}
	if (!ev->write) /* reads of holes give zeros: nothing to map, walk again */
		goto publish;
	fstart = ev->lba;
	fend = ev->count && ev->lba < vb ? ev->lba + ev->count : ev->lba + 1;
	if (fend > vb)
		fend = vb;
	if (fstart >= fend) {
		err = -ERANGE;
		goto out;
	}
	if (fstat(v->fd, &st)) {
		err = -errno;
		goto out;
	}
	eof = ((uint64_t)st.st_size + bs - 1) / bs;
	au = s->o.alloc_unit / bs ? s->o.alloc_unit / bs : 1;
	alloc_range(fstart, fend, eof, au, vb, &lo, &hi);
	alloc_ahead(&v->seq_next, &v->seq_units, fstart, eof, au, vb, lo, &hi);
	if (ahead_wait(s, v, lo, hi, &ready))
		ev->flags |= MAPTBL_HW_SERVE_WAITED;
	if (ready)
		hi = ready_end(s, v, hi, eof < vb ? eof : vb);
	if ((err = allocate(s, vf, v, fstart, fend, ready, &lo, &hi, &x))) {
		v->seq_next = 0;
		goto out;
	}
	v->seq_next = hi;
	if (v->seq_units > 1) {
		/* A sequential writer: the ranges of its next two faults, zeroed meanwhile. */
		uint64_t top = eof < vb ? eof : vb, u1, u2, e1, e2;

		u1 = v->seq_units * 2 < MAX_AHEAD_UNITS ? v->seq_units * 2 : MAX_AHEAD_UNITS;
		u2 = u1 * 2 < MAX_AHEAD_UNITS ? u1 * 2 : MAX_AHEAD_UNITS;
		e1 = hi + u1 * au < top ? hi + u1 * au : top;
		e2 = e1 + u2 * au < top ? e1 + u2 * au : top;
		ahead_queue(s, v, bs, hi, e1);
		ahead_queue(s, v, bs, e1, e2);
	} else {
		v->ahead_end = 0;
	}
	ev->alloc_lba = lo;
	ev->alloc_blocks = hi - lo;
	if ((err = commit_mark(s, vf, v)))
		goto out;
	if (fend > eof)
		ev->flags |= MAPTBL_HW_SERVE_GREW;
	if (hi > maptbl_table_virtual_blocks(v->t) &&
	    (err = maptbl_table_grow(v->t, vb, MAPTBL_UPDATE_STAGE)))
		goto out;
	err = table_apply(s, vf, v, lo, hi, &x, old_base, &compacted);
publish:
	if (!err)
		err = maptbl_table_publish(v->t);
	if (!err && !fstat(v->fd, &st))
		ev->file_size = (uint64_t)st.st_size;
out:
	if (compacted)
		ev->flags |= MAPTBL_HW_SERVE_COMPACTED;
	if (v->t && !maptbl_table_space(v->t, &sp1, sizeof(sp1)))
		ev->table_bytes = compacted ? maptbl_table_len(v->t)
					    : sp1.bytes_written - sp0.bytes_written;
	if (v->t)
		ev->generation = maptbl_table_generation(v->t);
	free(x.v);
	return err;
}

/* Answer VF @vf's stall, if it is stalled: 1 answered, 0 nothing to do, < 0 fatal. */
static int serve_vf(struct maptbl_hw_serve *s, unsigned vf, bool from_queue)
{
	struct maptbl_hw_serve_event ev = { .vf = vf };
	struct maptbl_hw_vf_info info;
	struct sv_vf *v = &s->vf[vf];
	int64_t t0 = now_ns();
	uint64_t old_base = 0;
	int err;

	if ((err = maptbl_hw_vf_info(s->hw, vf, &info)))
		return err;
	if (!info.enabled || !info.stalled)
		return 0; /* answered already (an entry of a stall the scan found), or destroyed */
	ev.reason = maptbl_hw_fault_reason(info.fault_info);
	ev.write = info.fault_info & MAPTBL_FAULT_INFO_WRITE;
	ev.lba = info.fault_lba;
	ev.count = info.fault_count;
	if (!s->want[vf]) {
		if (v->skipped_lba != info.fault_lba + 1 || from_queue) {
			v->skipped_lba = info.fault_lba + 1;
			ev.flags = MAPTBL_HW_SERVE_SKIPPED;
			if (s->o.report)
				s->o.report(s->o.report_ctx, &ev);
		}
		return 0;
	}
	err = serve_fault(s, vf, &info, &ev, &old_base);
	if (s->fatal)
		return s->fatal;
	if (!err) {
		/* The new tree is published; the VF's cached translations of the old one go, and the
		 * stalled request walks again (re-latching the table registers). */
		if ((err = reg_w32(s, MAPTBL_REG_PF_CACHE_FLUSH, vf)))
			return err;
		err = maptbl_hw_vf_walk_again(s->hw, vf, false);
		if (err == -EBADMSG && old_base) {
			/* The device refused the new buffer: back to the old one, and fail. */
			reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_BASE), old_base);
			reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_LEN), info.table_len);
			vf_drop(v);
			old_base = 0;
		} else if (err) {
			return s->fatal = err;
		}
	}
	if (err) {
		ev.flags |= MAPTBL_HW_SERVE_FAILED;
		ev.error = err;
		if (old_base) { /* a compaction was installed but nothing published: go back */
			reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_BASE), old_base);
			reg_w64(s, vfcfg(vf, MAPTBL_VFCFG_TABLE_LEN), info.table_len);
			maptbl_hw_dma_release(s->hw, v->base);
			vf_drop(v);
			old_base = 0;
		}
		/* A commit that failed is an I/O error the VM sees; a write that could not be
		 * allocated, no space. */
		err = ev.reason == MAPTBL_FAULT_COMMIT
			      ? reg_w32(s, vfcfg(vf, MAPTBL_VFCFG_WALK_AGAIN), MAPTBL_WALK_AGAIN_FAIL_IO)
			      : maptbl_hw_vf_walk_again(s->hw, vf, true);
		if (err)
			return s->fatal = err;
	}
	if (old_base && maptbl_hw_dma_release(s->hw, old_base))
		maptbl_log(MAPTBL_LOG_DEBUG, "VF %u: old table at 0x%" PRIx64 " not freed (not ours)", vf,
			   old_base);
	ev.service_ns = (uint64_t)(now_ns() - t0);
	if (s->o.report)
		s->o.report(s->o.report_ctx, &ev);
	return 1;
}

static int scan(struct maptbl_hw_serve *s)
{
	uint32_t num;
	int n = 0, err;

	s->last_scan = now_ns() / 1000000;
	if ((err = s->hw->ops->read32(s->hw, 0, MAPTBL_REG_PF_NUM_VFS, &num)))
		return s->fatal = err;
	for (unsigned vf = 1; vf <= num && vf <= s->hw->max_vfs; vf++) {
		uint32_t st;

		if ((err = s->hw->ops->read32(s->hw, 0, vfcfg(vf, MAPTBL_VFCFG_STATUS), &st)))
			return s->fatal = err;
		if (!(st & MAPTBL_VFCFG_STATUS_STALLED))
			continue;
		if ((err = serve_vf(s, vf, false)) < 0)
			return err;
		n += err;
	}
	return n;
}

MAPTBL_API int maptbl_hw_serve_run(struct maptbl_hw_serve *s, int timeout_ms)
{
	struct maptbl_hw_fault_entry f[64];
	size_t max = s ? (s->o.fq_entries - 1 < 64 ? s->o.fq_entries - 1 : 64) : 0;
	int n, served = 0, err;

	if (!s)
		return -EINVAL;
	if (s->fatal)
		return s->fatal;
	if (!s->last_scan || now_ns() / 1000000 - s->last_scan >= SCAN_INTERVAL_MS) {
		if ((served = scan(s)) < 0)
			return served;
		if (served)
			timeout_ms = 0;
	}
	if (timeout_ms > SCAN_INTERVAL_MS || timeout_ms < 0)
		timeout_ms = SCAN_INTERVAL_MS; /* come back for the scan; the caller loops */
	/*
	 * The PF's FAULT interrupt is raised when its INT_STATUS bit goes from 0 to 1 (§1, W1C):
	 * clear it before looking at the queue, so that a fault posted after the look interrupts the
	 * wait. This used to be missing: every fault after the first waited for the 100 ms poll of
	 * maptbl_hw_fault_read() (bench/serve/run.sh: 130 ms per fault instead of 14).
	 */
	if ((err = reg_w32(s, MAPTBL_REG_INT_STATUS, MAPTBL_INT_FAULT)))
		return err;
	/*
	 * Sleep until the FAULT interrupt (or the 100 ms poll of maptbl_hw_fault_read()). While
	 * faults came, this used to look at the queue every millisecond instead, because the
	 * interrupt did not wake the service: the device raised it before it wrote the entry, and
	 * a service that looked in between slept on with the bit set. The polls cost each VM
	 * request on the emulator ~0.1 ms (PERFORMANCE.md run G).
	 */
	n = maptbl_hw_fault_read(s->hw, f, max, timeout_ms);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if ((err = serve_vf(s, f[i].vf, true)) < 0)
			return err;
		served += err;
	}
	if (n && (err = maptbl_hw_fault_ack(s->hw, (unsigned)n)))
		return err;
	return served;
}
