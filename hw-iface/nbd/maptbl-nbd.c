/* SPDX-License-Identifier: MIT */
/*
 * maptbl-nbd.c - nbdkit plugin "maptbl": one VF of a maptbl device as an NBD export, so
 * nbdcopy, nbdinfo, nbdfuse, fio's nbd engine and QEMU's NBD client can use a VF.
 *
 *   nbdkit maptbl dev=emu:/run/maptbl.sock vf=1 [timeout=MS]
 *
 * The plugin is the VF's driver (the VM side): it sets up the VF's own request and completion
 * rings through libmaptbl-hw and moves data through them; of the PF it only reads the
 * identification registers (ID, VERSION, MAX_VFS) when it opens the device.
 * Requests run in parallel (NBDKIT_THREAD_MODEL_PARALLEL): every nbdkit thread that has a
 * request takes a slot (a DMA buffer of SLOT_BYTES), copies write data into it and queues it.
 * One of the waiting threads at a time is the *leader*: it posts everything queued into the VF's
 * request ring with one doorbell (maptbl_hw_queue_submit()), reaps completions
 * (maptbl_hw_queue_reap()), hands them to their threads and passes the lead to a thread that
 * still waits. So an NBD client with 32 requests in flight has up to 32 in the VF's rings, and a
 * lone request costs no thread hand-off in the plugin (on a loaded machine a wake-up costs more
 * than the request). Byte ranges that are not block-aligned are read-modify-written here. A
 * write to a hole waits until the host services the fault (or times out with timeout=MS;
 * default: wait for ever, as a disk would); the device runs a VF's requests in ring order, so
 * requests queued after a stalled one wait with it (REGISTERS.md §6.2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <maptbl/hw.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define RING_ENTRIES 128		/* the VF's rings */
#define NR_SLOTS 64			/* requests in flight at most */
#define SLOT_BYTES (128u * 1024u)	/* DMA buffer per slot: larger requests are split */

static char *dev;
static unsigned vf;
static int timeout_ms;
static struct maptbl_hw *hw;	/* used by the leader only, once serving */
static struct maptbl_hw_queue *q;
static uint32_t bs, slot_blocks;
static bool read_only;

/*
 * A request slot. Owned by an nbdkit thread from slot_get() to slot_put(), except while queued
 * or in the ring, when the leader fills in cpl and sets done; a thread that gave up (timeout)
 * sets abandoned and the leader frees the slot on completion. Everything below is under `lock`.
 */
struct slot {
	struct maptbl_hw_aio aio;
	struct maptbl_hw_aio_cpl cpl;
	void *buf;			/* SLOT_BYTES of DMA memory */
	pthread_cond_t cv;		/* done, or: lead */
	bool done, abandoned;
	struct slot *next;		/* free list or queue */
};

static struct maptbl_hw_dma *slot_mem;
static struct slot slots[NR_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t free_cv = PTHREAD_COND_INITIALIZER;	/* a slot was freed */
static struct slot *free_slots, *queued, **queued_tail = &queued;
static bool leading;		/* a thread is the leader */
static int broken;		/* the rings failed: -errno for every request from now on */

static void log_cb(void *ctx, enum maptbl_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= MAPTBL_LOG_WARN)
		nbdkit_error("%s", msg);
	else
		nbdkit_debug("%s", msg);
}

static int maptbl_config(const char *key, const char *value)
{
	if (!strcmp(key, "dev")) {
		free(dev);
		dev = strdup(value);
		return dev ? 0 : -1;
	}
	if (!strcmp(key, "vf")) {
		if (nbdkit_parse_unsigned("vf", value, &vf) == -1)
			return -1;
		if (vf < 1 || vf > MAPTBL_HW_MAX_VFS) {
			nbdkit_error("vf=%s: not a VF number from 1 to 64", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "timeout")) {
		return nbdkit_parse_int("timeout", value, &timeout_ms) == -1 || timeout_ms < 0 ? -1 : 0;
	}
	nbdkit_error("unknown parameter '%s' (dev, vf, timeout)", key);
	return -1;
}

static int maptbl_config_complete(void)
{
	if (!dev || !vf) {
		nbdkit_error("dev=DEV and vf=N are required");
		return -1;
	}
	return 0;
}

static int maptbl_get_ready(void)
{
	uint32_t st;
	int err;

	maptbl_set_log_fn(log_cb, NULL, MAPTBL_LOG_DEBUG);
	err = maptbl_hw_open(dev, NULL, &hw);
	if (err) {
		nbdkit_error("%s: cannot open: %s", dev, strerror(-err));
		return -1;
	}
	err = maptbl_hw_queue_open(hw, vf, RING_ENTRIES, &q);
	if (err) {
		nbdkit_error("%s: VF %u: %s", dev, vf, strerror(-err));
		return -1;
	}
	bs = maptbl_hw_queue_block_size(q);
	slot_blocks = SLOT_BYTES / bs ? SLOT_BYTES / bs : 1;
	if (slot_blocks > maptbl_hw_queue_max_blocks(q))
		slot_blocks = maptbl_hw_queue_max_blocks(q);
	err = maptbl_hw_dma_alloc(hw, (size_t)NR_SLOTS * slot_blocks * bs, 0, &slot_mem);
	if (err) {
		nbdkit_error("%s: %u KiB of DMA memory for the request slots: %s", dev,
			     (unsigned)((size_t)NR_SLOTS * slot_blocks * bs / 1024), strerror(-err));
		return -1;
	}
	for (unsigned i = 0; i < NR_SLOTS; i++) {
		slots[i].buf = (uint8_t *)maptbl_hw_dma_ptr(slot_mem) + (size_t)i * slot_blocks * bs;
		pthread_cond_init(&slots[i].cv, NULL);
		slots[i].next = free_slots;
		free_slots = &slots[i];
	}
	if (!maptbl_hw_read32(hw, vf, MAPTBL_REG_STATUS, &st))
		read_only = st & MAPTBL_FN_STATUS_READ_ONLY;
	nbdkit_debug("VF %u: %" PRIu64 " blocks of %u%s", vf, maptbl_hw_queue_blocks(q), bs,
		     read_only ? ", read-only" : "");
	return 0;
}

/* A completion (or a failure) for slot @s. Under lock. */
static void finish(struct slot *s, const struct maptbl_hw_aio_cpl *c)
{
	s->cpl = *c;
	s->aio.user_data = 0;
	if (s->abandoned) { /* its thread gave up: the slot is ours to free */
		s->abandoned = false;
		s->next = free_slots;
		free_slots = s;
		pthread_cond_signal(&free_cv);
		return;
	}
	s->done = true;
	pthread_cond_signal(&s->cv);
}

/* Fails every queued and posted request with @err (the rings are gone). Under lock. */
static void fail_all(int err)
{
	struct maptbl_hw_aio_cpl c = { .err = err, .status = MAPTBL_ST_IO_ERROR };

	broken = err;
	for (unsigned i = 0; i < NR_SLOTS; i++)
		if (slots[i].aio.user_data) /* queued or posted */
			finish(&slots[i], &c);
	queued = NULL;
	queued_tail = &queued;
}

/* Wakes a thread whose request is queued or in the ring, to take the lead. Under lock. */
static void pass_lead(void)
{
	for (unsigned i = 0; i < NR_SLOTS; i++)
		if (slots[i].aio.user_data && !slots[i].abandoned && !slots[i].done) {
			pthread_cond_signal(&slots[i].cv);
			return;
		}
}

/*
 * The leader's turn (called and returning under lock): post what is queued with one doorbell,
 * reap what completes within 10 ms, hand the completions out, pass the lead on. Only the leader
 * touches hw and q.
 */
static void lead(void)
{
	struct maptbl_hw_aio_cpl cpl[NR_SLOTS];
	unsigned posted = 0;
	int n;

	leading = true;
	while (queued && !broken) {
		struct slot *s = queued;

		n = maptbl_hw_queue_post(q, &s->aio, 1);
		if (n == -EAGAIN)
			break;
		queued = s->next;
		if (!queued)
			queued_tail = &queued;
		if (n < 0) {
			struct maptbl_hw_aio_cpl c = { .err = n, .status = MAPTBL_ST_BAD_REQUEST };

			finish(s, &c);
			continue;
		}
		posted++;
	}
	pthread_mutex_unlock(&lock);
	n = posted ? maptbl_hw_queue_submit(q, NULL, 0) : 0;
	if (n >= 0)
		n = maptbl_hw_queue_reap(q, cpl, NR_SLOTS, 10);
	pthread_mutex_lock(&lock);
	if (n < 0) {
		nbdkit_error("VF %u: the rings failed: %s", vf, strerror(-n));
		fail_all(n);
	}
	for (int i = 0; i < n; i++)
		finish(&slots[cpl[i].user_data - 1], &cpl[i]);
	leading = false;
	pass_lead();
}

static void maptbl_unload(void)
{
	maptbl_hw_dma_free(slot_mem);
	maptbl_hw_queue_close(q);
	maptbl_hw_close(hw);
	free(dev);
}

static void *maptbl_open(int readonly)
{
	(void)readonly;
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static int64_t maptbl_get_size(void *h)
{
	(void)h;
	return (int64_t)(maptbl_hw_queue_blocks(q) * bs);
}

static int maptbl_block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	(void)h;
	*minimum = 1; /* unaligned ranges are read-modify-written here */
	*preferred = bs > 4096 ? bs : 4096;
	*maximum = 0xffffffff;
	return 0;
}

static int maptbl_can_write(void *h)
{
	(void)h;
	return !read_only;
}

static int maptbl_can_flush(void *h)
{
	(void)h;
	return 1;
}

static int maptbl_can_zero(void *h)
{
	(void)h;
	return 1;
}

static int maptbl_can_fua(void *h)
{
	(void)h;
	return NBDKIT_FUA_NATIVE;
}

static int maptbl_can_multi_conn(void *h)
{
	(void)h;
	return 1; /* one device and one ring pair, run in order: a flush covers every connection */
}

/* Takes a free slot (waits for one). */
static struct slot *slot_get(void)
{
	struct slot *s;

	pthread_mutex_lock(&lock);
	while (!free_slots)
		pthread_cond_wait(&free_cv, &lock);
	s = free_slots;
	free_slots = s->next;
	pthread_mutex_unlock(&lock);
	return s;
}

static void slot_put(struct slot *s)
{
	pthread_mutex_lock(&lock);
	s->next = free_slots;
	free_slots = s;
	pthread_cond_signal(&free_cv);
	pthread_mutex_unlock(&lock);
}

/*
 * One device request of at most slot_blocks blocks through slot @s: queue it and wait for its
 * completion, leading when no other thread does. 0 or -errno; *status gets the device's status.
 */
static int slot_io(struct slot *s, uint32_t op, uint64_t lba, uint32_t n, uint32_t flags,
		   uint32_t *status)
{
	struct timespec end;
	int err = 0;

	if (timeout_ms > 0) {
		clock_gettime(CLOCK_REALTIME, &end);
		end.tv_sec += timeout_ms / 1000;
		end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (end.tv_nsec >= 1000000000)
			end.tv_sec++, end.tv_nsec -= 1000000000;
	}
	s->aio = (struct maptbl_hw_aio){ .opcode = op, .flags = flags, .lba = lba, .nblocks = n,
					 .buf = op == MAPTBL_OP_READ || op == MAPTBL_OP_WRITE ? s->buf : NULL,
					 .user_data = (uint64_t)(s - slots) + 1 };
	s->done = false;
	*status = 0;
	pthread_mutex_lock(&lock);
	if (broken) {
		s->aio.user_data = 0;
		pthread_mutex_unlock(&lock);
		*status = MAPTBL_ST_IO_ERROR;
		return broken;
	}
	s->next = NULL;
	*queued_tail = s;
	queued_tail = &s->next;
	while (!s->done && !err) {
		if (!leading)
			lead();
		else if (timeout_ms > 0)
			err = pthread_cond_timedwait(&s->cv, &lock, &end);
		else
			pthread_cond_wait(&s->cv, &lock);
		if (!s->done && timeout_ms > 0 && !err) {
			struct timespec now;

			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
				err = ETIMEDOUT;
		}
	}
	if (!s->done) { /* timed out: the request stays queued or in the ring; the leader frees it */
		s->abandoned = true;
		pthread_mutex_unlock(&lock);
		*status = MAPTBL_ST_OK;
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&lock);
	*status = s->cpl.status;
	return s->cpl.err;
}

/* @n blocks at @lba, split into slot-sized device requests; @buf NULL for WRITE_ZEROES, FLUSH. */
static int io(uint32_t op, uint64_t lba, uint64_t n, void *buf, uint32_t flags)
{
	struct slot *s = slot_get();
	uint8_t *p = buf;
	uint32_t st = 0;
	int err = 0;

	do {
		uint32_t k = n < slot_blocks ? (uint32_t)n : slot_blocks;

		if (op == MAPTBL_OP_WRITE_ZEROES)
			k = n < maptbl_hw_queue_max_blocks(q) ? (uint32_t)n : maptbl_hw_queue_max_blocks(q);
		if (op == MAPTBL_OP_WRITE)
			memcpy(s->buf, p, (size_t)k * bs);
		err = slot_io(s, op, lba, k, flags, &st);
		if (err == -ETIMEDOUT)
			s = NULL; /* abandoned: a leader frees it */
		if (err)
			break;
		if (op == MAPTBL_OP_READ)
			memcpy(p, s->buf, (size_t)k * bs);
		if (p)
			p += (size_t)k * bs;
		lba += k;
		n -= k;
	} while (n);
	if (s)
		slot_put(s);
	if (err) {
		nbdkit_error("VF %u: %s of %" PRIu64 " blocks at %" PRIu64 ": %s (status %s)", vf,
			     op == MAPTBL_OP_READ ? "read" : op == MAPTBL_OP_WRITE ? "write"
			     : op == MAPTBL_OP_FLUSH ? "flush" : "zero", n, lba, strerror(-err),
			     maptbl_hw_status_name(st));
		nbdkit_set_error(err == -EROFS ? EROFS : err == -ENOSPC ? ENOSPC : EIO);
		return -1;
	}
	return 0;
}

/* Reads [off, off + count) of the VF into buf, through whole blocks. */
static int maptbl_pread(void *h, void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	uint64_t first = off / bs, last = (off + count + bs - 1) / bs;
	uint8_t *tmp;
	int rc;

	(void)h, (void)flags;
	if (off % bs == 0 && count % bs == 0)
		return io(MAPTBL_OP_READ, first, count / bs, buf, 0);
	tmp = malloc((last - first) * bs);
	if (!tmp) {
		nbdkit_set_error(ENOMEM);
		return -1;
	}
	rc = io(MAPTBL_OP_READ, first, last - first, tmp, 0);
	if (!rc)
		memcpy(buf, tmp + (off - first * bs), count);
	free(tmp);
	return rc;
}

static int maptbl_pwrite(void *h, const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	uint32_t fua = (flags & NBDKIT_FLAG_FUA) ? MAPTBL_REQ_F_FUA : 0;
	uint64_t first = off / bs, last = (off + count + bs - 1) / bs;
	uint8_t *tmp;
	int rc = 0;

	(void)h;
	if (off % bs == 0 && count % bs == 0)
		return io(MAPTBL_OP_WRITE, first, count / bs, (void *)buf, fua);
	/* Read-modify-write of the partial head and tail blocks. */
	tmp = malloc((last - first) * bs);
	if (!tmp) {
		nbdkit_set_error(ENOMEM);
		return -1;
	}
	if (off % bs)
		rc = io(MAPTBL_OP_READ, first, 1, tmp, 0);
	if (!rc && (off + count) % bs && (last - 1 != first || !(off % bs)))
		rc = io(MAPTBL_OP_READ, last - 1, 1, tmp + (last - 1 - first) * bs, 0);
	if (!rc) {
		memcpy(tmp + (off - first * bs), buf, count);
		rc = io(MAPTBL_OP_WRITE, first, last - first, tmp, fua);
	}
	free(tmp);
	return rc;
}

static int maptbl_zero(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	uint32_t fua = (flags & NBDKIT_FLAG_FUA) ? MAPTBL_REQ_F_FUA : 0;
	uint64_t first = (off + bs - 1) / bs, end = (off + count) / bs;
	int rc = 0;

	(void)h;
	/* Partial blocks at either end are written as zeros, the whole blocks zeroed. */
	if (first > end) { /* inside one block */
		void *z = calloc(1, count);

		rc = z ? maptbl_pwrite(h, z, count, off, flags) : (nbdkit_set_error(ENOMEM), -1);
		free(z);
		return rc;
	}
	if (off % bs) {
		uint32_t n = (uint32_t)(first * bs - off);
		void *z = calloc(1, n);

		rc = z ? maptbl_pwrite(h, z, n, off, 0) : (nbdkit_set_error(ENOMEM), -1);
		free(z);
	}
	if (!rc && (off + count) % bs) {
		uint32_t n = (uint32_t)((off + count) - end * bs);
		void *z = calloc(1, n);

		rc = z ? maptbl_pwrite(h, z, n, end * bs, 0) : (nbdkit_set_error(ENOMEM), -1);
		free(z);
	}
	if (!rc && end > first)
		rc = io(MAPTBL_OP_WRITE_ZEROES, first, end - first, NULL, fua);
	return rc;
}

static int maptbl_flush(void *h, uint32_t flags)
{
	(void)h, (void)flags;
	return io(MAPTBL_OP_FLUSH, 0, 0, NULL, 0);
}

static struct nbdkit_plugin plugin = {
	.name = "maptbl",
	.longname = "maptbl device VF",
	.version = "0.1",
	.description = "One VF of a maptbl device (emulator, PCI or VFIO) as an NBD export",
	.config = maptbl_config,
	.config_help = "dev=DEV   the device: emu:SOCKET, pci:BDF or vfio:BDF (required)\n"
		       "vf=N      the VF, 1..64 (required)\n"
		       "timeout=MS  give up on a request after MS ms (default 0: wait for ever)",
	.config_complete = maptbl_config_complete,
	.get_ready = maptbl_get_ready,
	.unload = maptbl_unload,
	.open = maptbl_open,
	.get_size = maptbl_get_size,
	.block_size = maptbl_block_size,
	.can_write = maptbl_can_write,
	.can_flush = maptbl_can_flush,
	.can_zero = maptbl_can_zero,
	.can_fua = maptbl_can_fua,
	.can_multi_conn = maptbl_can_multi_conn,
	.pread = maptbl_pread,
	.pwrite = maptbl_pwrite,
	.zero = maptbl_zero,
	.flush = maptbl_flush,
	.errno_is_preserved = 0,
};

/* NBDKIT_REGISTER_PLUGIN defines plugin_init() with no prototype before it: clang's
 * -Wmissing-prototypes (the fuzz build, -Werror) refused it. */
struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
