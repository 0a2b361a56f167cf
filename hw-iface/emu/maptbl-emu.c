/* SPDX-License-Identifier: MIT */
/*
 * maptbl-emu.c - the standalone maptbl device: the model (hw-iface/device) on a disk image or a
 * block device, with host memory shared with its clients and registers and interrupts carried
 * over a UNIX socket (docs/REGISTERS.md §11, hw-iface/src/emu_proto.h).
 *
 * Threads: the main thread accepts clients and waits for signals (signalfd); one thread per
 * client reads its messages; one processing thread runs mtdev_process() whenever the model has
 * work. The model is not thread-safe (mtdev.h): every mtdev_* call is made under `lock`, and the
 * callbacks (DMA, disk, interrupts, log) run under it too. The processing thread serves the
 * functions round-robin a few requests at a time and drops the lock in between, so register
 * accesses of every client get in between requests and all VFs make progress together.
 *
 * Lock order: lock (the model) -> alock (the DMA allocator) -> slock (the client list) -> a
 * client's send_lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "emu_proto.h"
#include "mtdev.h"

enum { LV_ERROR, LV_WARN, LV_INFO, LV_DEBUG, LV_TRACE };
static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

struct alloc {
	uint64_t off, len;	/* in the region */
	unsigned flags;		/* MTEMU_ALLOC_* */
	uint64_t owner;		/* client id; 0 once persistent */
};

struct client {
	struct emu *emu;
	int fd;
	uint64_t id;
	pthread_t thread;
	bool thread_started, done;
	pthread_mutex_t send_lock;
	bool hello;
	bool irq_sub[MAPTBL_HW_MAX_VFS + 1];	/* under slock */
	bool q_started[MAPTBL_HW_MAX_VFS + 1];	/* functions whose rings this client started */
	bool fq_started;
	struct client *next;
};

struct emu {
	/* options */
	const char *disk_path, *socket_path, *log_path, *pid_path, *audit_path;
	unsigned nr_vfs, xcache, ncache, max_xfer, pf_block_size;
	unsigned inline_budget;	/* requests a session serves itself after its doorbell */
	bool xcache_off, ncache_off, foreground, read_only;
	uint64_t dma_size;
	int level;

	FILE *log_file;		/* NULL: stderr (foreground) or syslog */
	FILE *audit;
	int disk_fd;
	uint64_t disk_bytes;
	int mem_fd;
	uint8_t *mem;
	struct mtdev *dev;

	pthread_mutex_t lock;	/* the model */
	pthread_cond_t work;	/* signalled after writes: the model may have work */
	bool stopping, worker_done;
	pthread_t worker;

	pthread_mutex_t slock;	/* clients */
	struct client *clients;
	uint64_t next_id;

	pthread_mutex_t alock;	/* allocations */
	struct alloc *allocs;
	size_t nr_allocs, cap_allocs;
};

static void elog(struct emu *e, int lv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void elog(struct emu *e, int lv, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lv > e->level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!e->foreground && !e->log_file) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };

		syslog(prio[lv], "%s", msg);
		return;
	}
	FILE *f = e->log_file ? e->log_file : stderr;
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	flockfile(f);
	fprintf(f, "%s.%03ld maptbl-emu %s: %s\n", when, ts.tv_nsec / 1000000, level_names[lv], msg);
	fflush(f);
	funlockfile(f);
}

/* ---- model callbacks (called under e->lock) ---- */

static bool dma_range(const struct emu *e, uint64_t addr, size_t len, uint64_t *off)
{
	if (addr < MTEMU_DMA_BASE)
		return false;
	addr -= MTEMU_DMA_BASE;
	if (addr > e->dma_size || len > e->dma_size - addr)
		return false;
	*off = addr;
	return true;
}

static int cb_dma_read(void *ctx, unsigned fn, uint64_t addr, void *buf, size_t len)
{
	struct emu *e = ctx;
	uint64_t off;

	if (!dma_range(e, addr, len, &off)) {
		elog(e, LV_DEBUG, "fn %u: DMA read of %zu bytes at 0x%" PRIx64 " outside host memory",
		     fn, len, addr);
		return -1;
	}
	memcpy(buf, e->mem + off, len);
	return 0;
}

static int cb_dma_write(void *ctx, unsigned fn, uint64_t addr, const void *buf, size_t len)
{
	struct emu *e = ctx;
	uint64_t off;

	if (!dma_range(e, addr, len, &off)) {
		elog(e, LV_DEBUG, "fn %u: DMA write of %zu bytes at 0x%" PRIx64 " outside host memory",
		     fn, len, addr);
		return -1;
	}
	memcpy(e->mem + off, buf, len);
	return 0;
}

static void audit(struct emu *e, char op, unsigned fn, uint64_t off, size_t len)
{
	if (e->audit)
		fprintf(e->audit, "%c %u %" PRIu64 " %zu\n", op, fn, off, len);
}

/* The whole of [off, off + len) read into or written from @buf; -1 (logged) on an error or EOF. */
static int disk_io(struct emu *e, bool write, uint64_t off, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write ? pwrite(e->disk_fd, p, len, (off_t)off)
				  : pread(e->disk_fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			elog(e, LV_ERROR, "%s: %s of %zu bytes at %" PRIu64 ": %s", e->disk_path,
			     write ? "write" : "read", len, off,
			     n < 0 ? strerror(errno) : "end of disk");
			return -1;
		}
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static int cb_disk_read(void *ctx, unsigned fn, uint64_t off, void *buf, size_t len)
{
	struct emu *e = ctx;

	audit(e, 'R', fn, off, len);
	return disk_io(e, false, off, buf, len);
}

static int cb_disk_write(void *ctx, unsigned fn, uint64_t off, const void *buf, size_t len)
{
	struct emu *e = ctx;

	audit(e, 'W', fn, off, len);
	if (e->read_only) {
		elog(e, LV_DEBUG, "fn %u: write at %" PRIu64 " refused: --read-only", fn, off);
		return -1;
	}
	return disk_io(e, true, off, (uint8_t *)(uintptr_t)buf, len);
}

static int cb_disk_flush(void *ctx, unsigned fn)
{
	struct emu *e = ctx;

	(void)fn;
	if (e->audit)
		fflush(e->audit);
	if (fdatasync(e->disk_fd)) {
		elog(e, LV_ERROR, "%s: fdatasync: %s", e->disk_path, strerror(errno));
		return -1;
	}
	return 0;
}

static int send_msg(struct client *c, const struct mtemu_msg *m, int fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	pthread_mutex_lock(&c->send_lock);
	do
		n = sendmsg(c->fd, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	pthread_mutex_unlock(&c->send_lock);
	return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

static void cb_irq(void *ctx, unsigned fn, unsigned vector)
{
	struct emu *e = ctx;
	struct mtemu_msg m = {
		.type = maptbl_cpu_to_le32(MTEMU_IRQ),
		.fn = maptbl_cpu_to_le32(fn),
		.arg = maptbl_cpu_to_le32(vector),
	};

	elog(e, LV_TRACE, "fn %u: interrupt, vector %u", fn, vector);
	if (fn > MAPTBL_HW_MAX_VFS)
		return;
	pthread_mutex_lock(&e->slock);
	for (struct client *c = e->clients; c; c = c->next) {
		/* Never block under the model lock: a client that does not read its socket loses
		 * notifications; interrupts are edge hints, the state is in the registers. */
		if (c->irq_sub[fn] && !c->done && send_msg(c, &m, -1, MSG_DONTWAIT))
			elog(e, LV_DEBUG, "client %" PRIu64 ": interrupt of fn %u not delivered: %s",
			     c->id, fn, strerror(errno));
	}
	pthread_mutex_unlock(&e->slock);
}

static void cb_log(void *ctx, enum mtdev_log_cat cat, const char *msg)
{
	struct emu *e = ctx;

	switch (cat) {
	case MTDEV_LOG_GUEST_ERROR:
		elog(e, LV_WARN, "guest error: %s", msg);
		break;
	case MTDEV_LOG_UNIMP:
		elog(e, LV_WARN, "unimplemented: %s", msg);
		break;
	case MTDEV_LOG_INFO:
		elog(e, LV_INFO, "%s", msg);
		break;
	default:
		elog(e, LV_TRACE, "%s", msg);
		break;
	}
}

static const struct mtdev_ops emu_ops = {
	.dma_read = cb_dma_read,
	.dma_write = cb_dma_write,
	.disk_read = cb_disk_read,
	.disk_write = cb_disk_write,
	.disk_flush = cb_disk_flush,
	.irq = cb_irq,
	.log = cb_log,
};

/* ---- the processing thread ---- */

static void *worker_main(void *arg)
{
	struct emu *e = arg;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		if (!mtdev_has_work(e->dev)) {
			if (e->stopping)
				break;
			pthread_cond_wait(&e->work, &e->lock);
			continue;
		}
		mtdev_process(e->dev, 4);
		/* Let the clients' register accesses in between. */
		pthread_mutex_unlock(&e->lock);
		sched_yield();
		pthread_mutex_lock(&e->lock);
	}
	e->worker_done = true;
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- DMA allocations ---- */

static int alloc_dma(struct emu *e, uint64_t len, unsigned flags, uint64_t owner, uint64_t *addr)
{
	uint64_t at = 0;
	size_t i;
	int err = 0;

	if (!len || len > e->dma_size)
		return ENOMEM;
	len = (len + MTEMU_DMA_ALIGN - 1) & ~(uint64_t)(MTEMU_DMA_ALIGN - 1);
	pthread_mutex_lock(&e->alock);
	/* First fit over the sorted list. */
	for (i = 0; i < e->nr_allocs; i++) {
		if (e->allocs[i].off - at >= len)
			break;
		at = e->allocs[i].off + e->allocs[i].len;
	}
	if (e->dma_size - at < len) {
		err = ENOMEM;
		goto out;
	}
	if (e->nr_allocs == e->cap_allocs) {
		size_t ncap = e->cap_allocs ? e->cap_allocs * 2 : 64;
		struct alloc *na = realloc(e->allocs, ncap * sizeof(*na));

		if (!na) {
			err = ENOMEM;
			goto out;
		}
		e->allocs = na;
		e->cap_allocs = ncap;
	}
	memmove(&e->allocs[i + 1], &e->allocs[i], (e->nr_allocs - i) * sizeof(*e->allocs));
	e->allocs[i] = (struct alloc){ .off = at, .len = len, .flags = flags,
				       .owner = (flags & MTEMU_ALLOC_PERSIST) ? 0 : owner };
	e->nr_allocs++;
	/* Fresh memory reads as zeros, whoever had it before. */
	memset(e->mem + at, 0, len);
	*addr = MTEMU_DMA_BASE + at;
out:
	pthread_mutex_unlock(&e->alock);
	return err;
}

/* The allocation holding bus address @addr, or -1. Under alock. */
static ssize_t find_alloc(const struct emu *e, uint64_t addr)
{
	uint64_t off;

	if (addr < MTEMU_DMA_BASE)
		return -1;
	off = addr - MTEMU_DMA_BASE;
	for (size_t i = 0; i < e->nr_allocs; i++)
		if (off >= e->allocs[i].off && off - e->allocs[i].off < e->allocs[i].len)
			return (ssize_t)i;
	return -1;
}

/* True if an enabled VF's table lies in [off, off + len) of the region. Under e->lock. */
static bool table_in(struct emu *e, uint64_t off, uint64_t len, unsigned *vf)
{
	for (unsigned n = 1; n <= e->nr_vfs; n++) {
		uint64_t cfg = MAPTBL_REG_PF_VFCFG(n), base;

		if (!(mtdev_mmio_read(e->dev, 0, cfg + MAPTBL_VFCFG_CTRL, 4) & MAPTBL_VFCFG_CTRL_ENABLE))
			continue;
		base = mtdev_mmio_read(e->dev, 0, cfg + MAPTBL_VFCFG_TABLE_BASE, 8);
		if (base >= MTEMU_DMA_BASE + off && base - (MTEMU_DMA_BASE + off) < len) {
			*vf = n;
			return true;
		}
	}
	return false;
}

static int free_dma(struct emu *e, uint64_t addr, uint64_t owner)
{
	ssize_t i;
	unsigned vf;
	int err = 0;

	pthread_mutex_lock(&e->lock); /* the VF tables must not change under the check */
	pthread_mutex_lock(&e->alock);
	i = find_alloc(e, addr);
	if (i < 0 || MTEMU_DMA_BASE + e->allocs[i].off != addr)
		err = ENOENT;
	else if (e->allocs[i].owner && e->allocs[i].owner != owner)
		err = EPERM;
	else if (table_in(e, e->allocs[i].off, e->allocs[i].len, &vf)) {
		elog(e, LV_WARN, "DMA_FREE of 0x%" PRIx64 " refused: VF %u's table is there", addr, vf);
		err = EBUSY;
	} else {
		e->nr_allocs--;
		memmove(&e->allocs[i], &e->allocs[i + 1],
			(e->nr_allocs - (size_t)i) * sizeof(*e->allocs));
	}
	pthread_mutex_unlock(&e->alock);
	pthread_mutex_unlock(&e->lock);
	return err;
}

static void free_client_dma(struct emu *e, uint64_t owner)
{
	size_t i = 0;

	pthread_mutex_lock(&e->alock);
	while (i < e->nr_allocs) {
		if (e->allocs[i].owner == owner) {
			e->nr_allocs--;
			memmove(&e->allocs[i], &e->allocs[i + 1],
				(e->nr_allocs - i) * sizeof(*e->allocs));
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&e->alock);
}

/* ---- clients ---- */

static void reply(struct client *c, const struct mtemu_msg *req, uint32_t type, int status,
		  uint64_t off, uint64_t val, uint32_t arg, int fd)
{
	struct mtemu_msg m = {
		.type = maptbl_cpu_to_le32(type | MTEMU_REPLY),
		.status = maptbl_cpu_to_le32((uint32_t)status),
		.fn = req ? req->fn : maptbl_cpu_to_le32(0),
		.arg = maptbl_cpu_to_le32(arg),
		.off = maptbl_cpu_to_le64(off),
		.val = maptbl_cpu_to_le64(val),
	};

	if (send_msg(c, &m, fd, 0))
		elog(c->emu, LV_DEBUG, "client %" PRIu64 ": reply not sent: %s", c->id,
		     strerror(errno));
}

/* Stops what the client started and frees its memory, so no ring points at freed memory. */
static void client_cleanup(struct client *c)
{
	struct emu *e = c->emu;

	pthread_mutex_lock(&e->lock);
	for (unsigned fn = 0; fn <= e->nr_vfs; fn++) {
		if (!c->q_started[fn])
			continue;
		if (mtdev_mmio_read(e->dev, fn, MAPTBL_REG_Q_CTRL, 4) & MAPTBL_Q_CTRL_ENABLE) {
			elog(e, LV_INFO, "client %" PRIu64 " left: stopping the rings of fn %u", c->id, fn);
			mtdev_mmio_write(e->dev, fn, MAPTBL_REG_Q_CTRL, 4, 0);
		}
	}
	if (c->fq_started &&
	    (mtdev_mmio_read(e->dev, 0, MAPTBL_REG_PF_FQ_CTRL, 4) & MAPTBL_FQ_CTRL_ENABLE)) {
		elog(e, LV_INFO, "client %" PRIu64 " left: stopping the fault queue", c->id);
		mtdev_mmio_write(e->dev, 0, MAPTBL_REG_PF_FQ_CTRL, 4, 0);
	}
	pthread_mutex_lock(&e->slock);
	c->done = true;
	memset(c->irq_sub, 0, sizeof(c->irq_sub));
	pthread_mutex_unlock(&e->slock);
	pthread_mutex_unlock(&e->lock);
	free_client_dma(e, c->id);
}

static const char *type_name(uint32_t t)
{
	static const char *const names[] = { "?", "HELLO", "READ", "WRITE", "DMA_ALLOC", "DMA_FREE",
					     "IRQ_SUBSCRIBE", "IRQ", "DMA_INFO", "PROCESS" };

	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

/* One request. Returns false when the client must be dropped. */
static bool handle(struct client *c, const struct mtemu_msg *m)
{
	struct emu *e = c->emu;
	uint32_t type = maptbl_le32_to_cpu(m->type), fn = maptbl_le32_to_cpu(m->fn);
	uint32_t arg = maptbl_le32_to_cpu(m->arg);
	uint64_t off = maptbl_le64_to_cpu(m->off), val = maptbl_le64_to_cpu(m->val);
	uint64_t addr;
	int err;

	if (!c->hello && type != MTEMU_HELLO) {
		elog(e, LV_WARN, "client %" PRIu64 ": %s before HELLO", c->id, type_name(type));
		reply(c, m, type, EPROTO, 0, 0, 0, -1);
		return true;
	}
	if (maptbl_le32_to_cpu(m->status)) {
		elog(e, LV_WARN, "client %" PRIu64 ": %s with a non-zero status field", c->id,
		     type_name(type));
		reply(c, m, type, EINVAL, 0, 0, 0, -1);
		return true;
	}
	switch (type) {
	case MTEMU_HELLO:
		if (off != MTEMU_MAGIC || val != MTEMU_PROTO_VERSION) {
			elog(e, LV_WARN, "client %" PRIu64 ": HELLO with magic 0x%" PRIx64
			     " version %" PRIu64 " (want 0x%x, %u)", c->id, off, val, MTEMU_MAGIC,
			     MTEMU_PROTO_VERSION);
			reply(c, m, type, EPROTONOSUPPORT, 0, MTEMU_PROTO_VERSION, 0, -1);
			return true;
		}
		c->hello = true;
		{
			struct mtemu_msg r = *m;

			r.fn = maptbl_cpu_to_le32(e->nr_vfs);
			reply(c, &r, type, 0, e->dma_size, MTEMU_PROTO_VERSION, e->pf_block_size,
			      e->mem_fd);
		}
		return true;
	case MTEMU_READ:
	case MTEMU_WRITE:
		if ((arg != 4 && arg != 8) || fn > e->nr_vfs) {
			elog(e, LV_WARN, "client %" PRIu64 ": %s of size %u at fn %u offset 0x%" PRIx64
			     ": %s", c->id, type_name(type), arg, fn, off,
			     fn > e->nr_vfs ? "no such function" : "size is not 4 or 8");
			reply(c, m, type, fn > e->nr_vfs ? ENODEV : EINVAL, 0, 0, 0, -1);
			return true;
		}
		pthread_mutex_lock(&e->lock);
		if (type == MTEMU_READ) {
			val = mtdev_mmio_read(e->dev, fn, off, arg);
		} else {
			if (off == MAPTBL_REG_Q_CTRL && arg == 4 && (val & MAPTBL_Q_CTRL_ENABLE))
				c->q_started[fn] = true;
			if (fn == 0 && off == MAPTBL_REG_PF_FQ_CTRL && arg == 4 &&
			    (val & MAPTBL_FQ_CTRL_ENABLE))
				c->fq_started = true;
			mtdev_mmio_write(e->dev, fn, off, arg, val);
			/*
			 * A request doorbell: serve a few of this function's requests right here,
			 * before the next message of the session, as a device starts on the doorbell
			 * store. Handing them to the processing thread costs a thread wake-up each
			 * way, which on a loaded machine is most of a small request's latency; the
			 * processing thread takes what is left (docs/REGISTERS.md §11.5).
			 */
			if (off == MAPTBL_REG_RQ_TAIL && e->inline_budget)
				mtdev_process_fn(e->dev, fn, e->inline_budget);
			if (mtdev_has_work(e->dev))
				pthread_cond_signal(&e->work);
			val = 0;
		}
		pthread_mutex_unlock(&e->lock);
		reply(c, m, type, 0, off, val, arg, -1);
		return true;
	case MTEMU_DMA_ALLOC:
		if (arg & ~MTEMU_ALLOC_PERSIST) {
			reply(c, m, type, EINVAL, 0, 0, 0, -1);
			return true;
		}
		err = alloc_dma(e, val, arg, c->id, &addr);
		if (err)
			elog(e, LV_WARN, "client %" PRIu64 ": DMA_ALLOC of %" PRIu64 " bytes: %s", c->id,
			     val, strerror(err));
		reply(c, m, type, err, err ? 0 : addr, val, arg, -1);
		return true;
	case MTEMU_DMA_FREE:
		err = free_dma(e, off, c->id);
		if (err)
			elog(e, LV_WARN, "client %" PRIu64 ": DMA_FREE of 0x%" PRIx64 ": %s", c->id, off,
			     strerror(err));
		reply(c, m, type, err, off, 0, 0, -1);
		return true;
	case MTEMU_DMA_INFO: {
		ssize_t i;
		uint64_t start = 0, len = 0;
		unsigned flags = 0;

		pthread_mutex_lock(&e->alock);
		i = find_alloc(e, off);
		if (i >= 0) {
			start = MTEMU_DMA_BASE + e->allocs[i].off;
			len = e->allocs[i].len;
			flags = e->allocs[i].flags;
		}
		pthread_mutex_unlock(&e->alock);
		reply(c, m, type, i < 0 ? ENOENT : 0, start, len, flags, -1);
		return true;
	}
	case MTEMU_IRQ_SUBSCRIBE:
		if (fn > e->nr_vfs || arg > 1) {
			reply(c, m, type, fn > e->nr_vfs ? ENODEV : EINVAL, 0, 0, 0, -1);
			return true;
		}
		pthread_mutex_lock(&e->slock);
		c->irq_sub[fn] = arg;
		pthread_mutex_unlock(&e->slock);
		reply(c, m, type, 0, 0, 0, arg, -1);
		return true;
	case MTEMU_PROCESS:
		pthread_mutex_lock(&e->lock);
		while (mtdev_has_work(e->dev) && mtdev_process(e->dev, 64))
			;
		pthread_mutex_unlock(&e->lock);
		reply(c, m, type, 0, 0, 0, 0, -1);
		return true;
	default:
		elog(e, LV_WARN, "client %" PRIu64 ": unknown message type %" PRIu32, c->id, type);
		reply(c, m, type & ~MTEMU_REPLY, EPROTO, 0, 0, 0, -1);
		return true;
	}
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct emu *e = c->emu;

	elog(e, LV_INFO, "client %" PRIu64 " connected", c->id);
	for (;;) {
		union {
			struct mtemu_msg m;
			uint8_t raw[256];
		} u;
		ssize_t n = recv(c->fd, u.raw, sizeof(u.raw), MSG_TRUNC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (n != (ssize_t)sizeof(u.m)) {
			elog(e, LV_WARN, "client %" PRIu64 ": message of %zd bytes, not %zu", c->id, n,
			     sizeof(u.m));
			reply(c, NULL, 0, EPROTO, 0, 0, 0, -1);
			continue;
		}
		if (!handle(c, &u.m))
			break;
	}
	client_cleanup(c);
	elog(e, LV_INFO, "client %" PRIu64 " disconnected", c->id);
	return NULL;
}

/* Joins and frees the clients that left (the main thread only). */
static void reap_clients(struct emu *e)
{
	struct client **pp = &e->clients, *gone = NULL;

	pthread_mutex_lock(&e->slock);
	while (*pp) {
		struct client *c = *pp;

		if (c->done) {
			*pp = c->next;
			c->next = gone;
			gone = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&e->slock);
	while (gone) {
		struct client *c = gone;

		gone = c->next;
		if (c->thread_started)
			pthread_join(c->thread, NULL);
		close(c->fd);
		pthread_mutex_destroy(&c->send_lock);
		free(c);
	}
}

/* ---- set-up ---- */

static const char *const usage_text =
	"Usage: maptbl-emu --disk PATH --socket PATH [OPTIONS]\n"
	"Run the maptbl device (docs/REGISTERS.md) on a disk image or a block device.\n"
	"\n"
	"  -d, --disk PATH        the backing disk: an image file or a block device\n"
	"  -s, --socket PATH      the UNIX socket clients connect to (maptbl --dev emu:PATH)\n"
	"  -n, --vfs N            VFs the device has, 1..64 (default 64)\n"
	"  -m, --dma-size SIZE    shared host memory for DMA, K/M/G suffixes (default 256M)\n"
	"      --xcache N         extent cache (BTLB) entries, 0 disables (default 8)\n"
	"      --ncache N         node cache entries, 0 disables (default 64)\n"
	"      --block-size N     PF block size, a power of two 512..65536 (default 4096)\n"
	"      --max-xfer N       most blocks per request (default 2048)\n"
	"      --inline N         requests a client's doorbell serves at once, in that client's\n"
	"                         thread (default 32; 0: all in the processing thread)\n"
	"  -r, --read-only        open the disk read-only: every disk write fails (IO_ERROR)\n"
	"  -f, --foreground       stay in the foreground and log to standard error\n"
	"  -l, --log-level LEVEL  error, warn, info (default), debug or trace\n"
	"      --log-file FILE    log to FILE (default: stderr in the foreground, else syslog)\n"
	"      --pidfile FILE     write the daemon's process id to FILE\n"
	"      --audit FILE       write one line per disk access: R|W FUNCTION OFFSET LENGTH\n"
	"  -h, --help             this text\n"
	"\n"
	"SIGTERM or SIGINT: serve the requests already queued, then exit (status 0).\n"
	"Exit status: 0 clean exit, 1 failed to start, 2 usage error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("maptbl-emu: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try 'maptbl-emu --help')\n", stderr);
	return 2;
}

static int parse_u64(const char *s, uint64_t *out, bool size)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (size && *end) {
		const char *u = "KMGT";
		const char *p = strchr(u, *end);

		if (!p)
			return -1;
		shift = 10 * (unsigned)(p - u + 1);
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_options(struct emu *e, int argc, char **argv)
{
	enum { O_XC = 256, O_NC, O_BS, O_MX, O_LOGF, O_PID, O_AUDIT, O_INLINE };
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "vfs", required_argument, NULL, 'n' },
		{ "dma-size", required_argument, NULL, 'm' },
		{ "xcache", required_argument, NULL, O_XC },
		{ "ncache", required_argument, NULL, O_NC },
		{ "block-size", required_argument, NULL, O_BS },
		{ "max-xfer", required_argument, NULL, O_MX },
		{ "inline", required_argument, NULL, O_INLINE },
		{ "read-only", no_argument, NULL, 'r' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-file", required_argument, NULL, O_LOGF },
		{ "pidfile", required_argument, NULL, O_PID },
		{ "audit", required_argument, NULL, O_AUDIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:s:n:m:rfl:h", opts, NULL)) != -1) {
		uint64_t v = 0;

		switch (c) {
		case 'd':
			e->disk_path = optarg;
			break;
		case 's':
			e->socket_path = optarg;
			break;
		case 'r':
			e->read_only = true;
			break;
		case 'f':
			e->foreground = true;
			break;
		case O_LOGF:
			e->log_path = optarg;
			break;
		case O_PID:
			e->pid_path = optarg;
			break;
		case O_AUDIT:
			e->audit_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) ? 1 : -1;
		case 'l':
			for (v = 0; v < 5 && strcmp(optarg, level_names[v]); v++)
				;
			if (v == 5)
				return usage_error("--log-level '%s' is not error, warn, info, debug or trace",
						   optarg);
			e->level = (int)v;
			break;
		case 'n':
			if (parse_u64(optarg, &v, false) || v < 1 || v > MAPTBL_HW_MAX_VFS)
				return usage_error("--vfs '%s' is not a number from 1 to 64", optarg);
			e->nr_vfs = (unsigned)v;
			break;
		case 'm':
			if (parse_u64(optarg, &v, true) || v < MTEMU_DMA_ALIGN || v > (1ull << 40))
				return usage_error("--dma-size '%s' is not a size from 4K to 1T", optarg);
			e->dma_size = (v + MTEMU_DMA_ALIGN - 1) & ~(uint64_t)(MTEMU_DMA_ALIGN - 1);
			break;
		case O_XC:
		case O_NC:
			if (parse_u64(optarg, &v, false) || v > 65535)
				return usage_error("--%s '%s' is not a number from 0 to 65535",
						   c == O_XC ? "xcache" : "ncache", optarg);
			if (c == O_XC)
				e->xcache = (unsigned)v, e->xcache_off = !v;
			else
				e->ncache = (unsigned)v, e->ncache_off = !v;
			break;
		case O_BS:
			if (parse_u64(optarg, &v, false) || v < 512 || v > 65536 || (v & (v - 1)))
				return usage_error("--block-size '%s' is not a power of two from 512 to 65536",
						   optarg);
			e->pf_block_size = (unsigned)v;
			break;
		case O_MX:
			if (parse_u64(optarg, &v, false) || v < 1 || v > UINT32_MAX)
				return usage_error("--max-xfer '%s' is not a positive number", optarg);
			e->max_xfer = (unsigned)v;
			break;
		case O_INLINE:
			if (parse_u64(optarg, &v, false) || v > 4096)
				return usage_error("--inline '%s' is not a number from 0 to 4096", optarg);
			e->inline_budget = (unsigned)v;
			break;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!e->disk_path)
		return usage_error("--disk PATH is required");
	if (!e->socket_path)
		return usage_error("--socket PATH is required");
	if (strlen(e->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return usage_error("--socket '%s' is longer than %zu bytes", e->socket_path,
				   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

static int open_disk(struct emu *e)
{
	struct stat st;

	e->disk_fd = open(e->disk_path, (e->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (e->disk_fd < 0 || fstat(e->disk_fd, &st)) {
		fprintf(stderr, "maptbl-emu: %s: %s\n", e->disk_path, strerror(errno));
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(e->disk_fd, BLKGETSIZE64, &e->disk_bytes)) {
			fprintf(stderr, "maptbl-emu: %s: BLKGETSIZE64: %s\n", e->disk_path,
				strerror(errno));
			return -1;
		}
	} else if (S_ISREG(st.st_mode)) {
		e->disk_bytes = (uint64_t)st.st_size;
	} else {
		fprintf(stderr, "maptbl-emu: %s: not a regular file or a block device\n", e->disk_path);
		return -1;
	}
	if (e->disk_bytes < e->pf_block_size) {
		fprintf(stderr, "maptbl-emu: %s: %" PRIu64 " bytes, smaller than one block (%u)\n",
			e->disk_path, e->disk_bytes, e->pf_block_size);
		return -1;
	}
	return 0;
}

static int open_memory(struct emu *e)
{
	e->mem_fd = memfd_create("maptbl-emu-dma", MFD_CLOEXEC);
	if (e->mem_fd < 0 || ftruncate(e->mem_fd, (off_t)e->dma_size)) {
		fprintf(stderr, "maptbl-emu: shared memory of %" PRIu64 " bytes: %s\n", e->dma_size,
			strerror(errno));
		return -1;
	}
	e->mem = mmap(NULL, e->dma_size, PROT_READ | PROT_WRITE, MAP_SHARED, e->mem_fd, 0);
	if (e->mem == MAP_FAILED) {
		e->mem = NULL;
		fprintf(stderr, "maptbl-emu: mmap of the shared memory: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int open_socket(struct emu *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->socket_path);
	if (fd < 0) {
		fprintf(stderr, "maptbl-emu: socket: %s\n", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno == EADDRINUSE) {
		/* A socket file left by a daemon that died: take it over if nobody answers. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		bool alive = probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		struct stat st;

		if (probe >= 0)
			close(probe);
		if (alive || lstat(e->socket_path, &st) || !S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "maptbl-emu: %s: %s\n", e->socket_path,
				alive ? "another emulator is listening there" : "exists and is not a socket");
			close(fd);
			return -1;
		}
		unlink(e->socket_path);
		errno = 0;
		if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
			goto listen;
	}
	if (errno) {
		fprintf(stderr, "maptbl-emu: bind %s: %s\n", e->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
listen:
	chmod(e->socket_path, 0600);
	if (listen(fd, 16)) {
		fprintf(stderr, "maptbl-emu: listen %s: %s\n", e->socket_path, strerror(errno));
		close(fd);
		unlink(e->socket_path);
		return -1;
	}
	return fd;
}

static int daemonize(struct emu *e)
{
	pid_t pid = fork();
	int null;

	if (pid < 0) {
		fprintf(stderr, "maptbl-emu: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0); /* the socket is ready: clients may connect once we return */
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (!e->log_file)
			dup2(null, 2);
		close(null);
	}
	openlog("maptbl-emu", LOG_PID, LOG_DAEMON);
	return 0;
}

static int write_pidfile(struct emu *e)
{
	FILE *f;

	if (!e->pid_path)
		return 0;
	f = fopen(e->pid_path, "we");
	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f)) {
		elog(e, LV_ERROR, "%s: %s", e->pid_path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct emu e = { .nr_vfs = MAPTBL_HW_MAX_VFS, .dma_size = 256ull << 20, .level = LV_INFO,
			 .pf_block_size = 4096, .disk_fd = -1, .mem_fd = -1, .inline_budget = 32 };
	struct mtdev_params p;
	sigset_t sigs;
	int lfd, sfd, rc, status = 0;
	bool fg;

	rc = parse_options(&e, argc, argv);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (e.log_path) {
		e.log_file = fopen(e.log_path, "ae");
		if (!e.log_file) {
			fprintf(stderr, "maptbl-emu: %s: %s\n", e.log_path, strerror(errno));
			goto fail;
		}
	}
	if (e.audit_path) {
		e.audit = fopen(e.audit_path, "we");
		if (!e.audit) {
			fprintf(stderr, "maptbl-emu: %s: %s\n", e.audit_path, strerror(errno));
			goto fail;
		}
	}
	if (open_disk(&e) || open_memory(&e))
		goto fail;

	mtdev_params_init(&p);
	p.ops = &emu_ops;
	p.ctx = &e;
	p.nr_vfs = e.nr_vfs;
	p.disk_bytes = e.disk_bytes;
	p.pf_block_size = e.pf_block_size;
	if (e.max_xfer)
		p.max_xfer_blocks = e.max_xfer;
	if (e.xcache)
		p.xcache_entries = e.xcache;
	if (e.ncache)
		p.ncache_entries = e.ncache;
	p.xcache_disable = e.xcache_off;
	p.ncache_disable = e.ncache_off;
	fg = e.foreground;
	e.foreground = true; /* until the socket is ready, errors go to stderr */
	rc = mtdev_create(&p, &e.dev);
	if (rc) {
		fprintf(stderr, "maptbl-emu: cannot create the device: %s\n", strerror(-rc));
		goto fail;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	lfd = open_socket(&e);
	if (lfd < 0)
		goto fail;
	e.foreground = fg;
	if (!e.foreground && daemonize(&e)) {
		unlink(e.socket_path);
		goto fail;
	}
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0 || write_pidfile(&e)) {
		elog(&e, LV_ERROR, "signalfd: %s", strerror(errno));
		unlink(e.socket_path);
		goto fail;
	}
	pthread_mutex_init(&e.lock, NULL);
	pthread_cond_init(&e.work, NULL);
	pthread_mutex_init(&e.slock, NULL);
	pthread_mutex_init(&e.alock, NULL);
	if (pthread_create(&e.worker, NULL, worker_main, &e)) {
		elog(&e, LV_ERROR, "cannot start the processing thread");
		unlink(e.socket_path);
		goto fail;
	}
	elog(&e, LV_INFO, "serving %s (%" PRIu64 " bytes) on %s: %u VFs, %" PRIu64
	     " bytes of DMA memory%s", e.disk_path, e.disk_bytes, e.socket_path, e.nr_vfs, e.dma_size,
	     e.read_only ? ", read-only" : "");

	for (;;) {
		struct pollfd pfd[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			elog(&e, LV_ERROR, "poll: %s", strerror(errno));
			status = 1;
			break;
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				elog(&e, LV_INFO, "signal %u: finishing queued requests, then exiting",
				     si.ssi_signo);
			break;
		}
		if (pfd[0].revents) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			struct client *c;

			if (cfd < 0) {
				elog(&e, LV_WARN, "accept: %s", strerror(errno));
				continue;
			}
			reap_clients(&e);
			c = calloc(1, sizeof(*c));
			if (!c) {
				close(cfd);
				continue;
			}
			c->emu = &e;
			c->fd = cfd;
			pthread_mutex_init(&c->send_lock, NULL);
			pthread_mutex_lock(&e.slock);
			c->id = ++e.next_id;
			c->next = e.clients;
			e.clients = c;
			pthread_mutex_unlock(&e.slock);
			if (pthread_create(&c->thread, NULL, client_main, c)) {
				elog(&e, LV_WARN, "cannot start a thread for client %" PRIu64, c->id);
				shutdown(cfd, SHUT_RDWR);
				c->done = true;
			} else {
				c->thread_started = true;
			}
		}
	}

	/* Shut down: no new clients; serve what is queued; then drop the clients. */
	close(lfd);
	unlink(e.socket_path);
	pthread_mutex_lock(&e.lock);
	e.stopping = true;
	pthread_cond_signal(&e.work);
	pthread_mutex_unlock(&e.lock);
	pthread_join(e.worker, NULL);
	for (struct client *c = e.clients; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (e.clients) {
		struct client *c = e.clients;

		if (c->thread_started)
			pthread_join(c->thread, NULL);
		e.clients = c->next;
		close(c->fd);
		pthread_mutex_destroy(&c->send_lock);
		free(c);
	}
	mtdev_destroy(e.dev);
	if (!e.read_only && fdatasync(e.disk_fd) && errno != EINVAL) {
		elog(&e, LV_ERROR, "%s: fdatasync: %s", e.disk_path, strerror(errno));
		status = 1;
	}
	close(e.disk_fd);
	if (e.audit && fclose(e.audit))
		status = 1;
	munmap(e.mem, e.dma_size);
	close(e.mem_fd);
	free(e.allocs);
	if (e.pid_path)
		unlink(e.pid_path);
	elog(&e, LV_INFO, "exiting");
	if (e.log_file)
		fclose(e.log_file);
	return status;

fail: /* could not start: undo what was set up (no thread runs yet) */
	mtdev_destroy(e.dev);
	if (e.mem)
		munmap(e.mem, e.dma_size);
	if (e.mem_fd >= 0)
		close(e.mem_fd);
	if (e.disk_fd >= 0)
		close(e.disk_fd);
	if (e.audit)
		fclose(e.audit);
	if (e.log_file)
		fclose(e.log_file);
	return 1;
}
