/* SPDX-License-Identifier: MIT */
/*
 * maptbl-nbd.c - nbdkit plugin "maptbl": one VF of a maptbl device as an NBD export, so
 * nbdcopy, nbdinfo, nbdfuse, fio's nbd engine and QEMU's NBD client can use a VF.
 *
 *   nbdkit maptbl dev=emu:/run/maptbl.sock vf=1 [timeout=MS] [poll=US]
 *
 * The plugin is the VF's driver (the VM side): it sets up the VF's own request and completion
 * rings through libmaptbl-hw and moves data through them; of the PF it only reads the
 * identification registers (ID, VERSION, MAX_VFS) when it opens the device.
 * Requests run in parallel (NBDKIT_THREAD_MODEL_PARALLEL): every nbdkit thread that has a
 * request takes a slot (a DMA buffer of SLOT_BYTES), copies write data into it and queues it.
 * One of the waiting threads at a time is the *leader*: it posts everything queued into the VF's
 * request ring with one doorbell (maptbl_hw_queue_submit()), reaps completions
 * (maptbl_hw_queue_reap()), hands them to their threads and, once its own request completed,
 * passes the lead to a thread that still waits. So an NBD client with 32 requests in flight has
 * up to 32 in the VF's rings, and a lone request costs no thread hand-off in the plugin (on a
 * loaded machine a wake-up costs more than the request). A waiting thread sleeps on a futex word
 * of its own and is woken once, outside any lock, by the leader that reaped its completion
 * (optionally it spins poll=US first); slots are taken and returned without a lock, so the
 * queue lock is the only lock a request takes (docs/PERFORMANCE.md, "The device through NBD"). Byte ranges that are not block-aligned are read-modify-written here. A
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
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

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
 * A request slot. Owned by an nbdkit thread from slot_get() to slot_put(). While its request is
 * queued or in the ring, the leader fills in cpl and moves `state` to S_DONE, or hands the lead
 * to the slot's thread with S_LEAD. `state` is also the futex word its thread sleeps on: the
 * thread spins on it for up to poll_us, then announces S_SLEEP and sleeps, and a waker calls
 * FUTEX_WAKE only when it found S_SLEEP, so a thread that is still spinning costs no system
 * call and every completion costs at most one wake-up, outside any lock (a pthread condition
 * signalled under the queue lock woke the thread into that lock: two switches per request).
 * A thread that gave up (timeout) sets abandoned under `lock`; the leader frees its slot on
 * completion.
 */
enum { S_IDLE, S_WAIT, S_SLEEP, S_DONE, S_LEAD };

struct slot {
	struct maptbl_hw_aio aio;
	struct maptbl_hw_aio_cpl cpl;
	void *buf;			/* SLOT_BYTES of DMA memory */
	uint32_t state;			/* S_*: atomics only; the futex word */
	bool abandoned;			/* under lock */
	bool chosen;			/* under lock: handed the lead, S_LEAD on its way */
	struct slot *next;		/* queue, or the leader's wake list */
	struct slot *chain;		/* the next completed slot whose thread this one wakes */
};

static struct maptbl_hw_dma *slot_mem;
static struct slot slots[NR_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t free_cv = PTHREAD_COND_INITIALIZER;	/* a slot was freed */
static uint64_t free_mask;	/* bit i: slots[i] is free. Atomics; waits for a bit under lock */
static unsigned free_waiters;	/* threads waiting for a free slot: under lock */
static struct slot *queued, **queued_tail = &queued;
static bool leading;		/* a thread leads (or the lead is being handed over) */
static unsigned waiting;	/* slots queued or in the ring, not abandoned: under lock */
static unsigned abandoned_n;	/* slots queued or in the ring, abandoned: under lock */
static int broken;		/* the rings failed: -errno for every request from now on */
static unsigned poll_us;		/* a waiting thread spins this long before it sleeps */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void futex_wake1(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sets the state of @s to @to and wakes its thread if it sleeps. Any thread, no lock needed. */
static void slot_notify(struct slot *s, uint32_t to)
{
	if (__atomic_exchange_n(&s->state, to, __ATOMIC_ACQ_REL) == S_SLEEP)
		futex_wake1(&s->state);
}

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Waits until the state of @s leaves S_WAIT/S_SLEEP or @deadline_us (CLOCK_MONOTONIC, 0: none)
 * passes. Returns the state (S_WAIT/S_SLEEP on a timeout).
 */
static uint32_t slot_wait(struct slot *s, int64_t deadline_us)
{
	int64_t spin_end = mono_us() + poll_us;
	uint32_t st;

	for (;;) {
		st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
		if (st != S_WAIT && st != S_SLEEP)
			return st;
		if (mono_us() >= spin_end)
			break;
		cpu_relax();
	}
	for (;;) {
		struct timespec rel, *tp = NULL;
		uint32_t exp = S_WAIT;

		if (!__atomic_compare_exchange_n(&s->state, &exp, S_SLEEP, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE) && exp != S_SLEEP)
			return exp;
		if (deadline_us) {
			int64_t left = deadline_us - mono_us();

			if (left <= 0)
				return S_SLEEP;
			rel.tv_sec = left / 1000000;
			rel.tv_nsec = (left % 1000000) * 1000;
			tp = &rel;
		}
		syscall(SYS_futex, &s->state, FUTEX_WAIT_PRIVATE, S_SLEEP, tp, NULL, 0);
	}
}

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
	if (!strcmp(key, "poll")) {
		if (nbdkit_parse_unsigned("poll", value, &poll_us) == -1)
			return -1;
		if (poll_us > 1000000) {
			nbdkit_error("poll=%s: more than 1000000 microseconds", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "timeout")) {
		return nbdkit_parse_int("timeout", value, &timeout_ms) == -1 || timeout_ms < 0 ? -1 : 0;
	}
	nbdkit_error("unknown parameter '%s' (dev, vf, timeout, poll)", key);
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
		free_mask |= 1ull << i;
	}
	if (!maptbl_hw_read32(hw, vf, MAPTBL_REG_STATUS, &st))
		read_only = st & MAPTBL_FN_STATUS_READ_ONLY;
	nbdkit_debug("VF %u: %" PRIu64 " blocks of %u%s", vf, maptbl_hw_queue_blocks(q), bs,
		     read_only ? ", read-only" : "");
	return 0;
}

static uint32_t lead(struct slot *self, int64_t deadline_us);

/*
 * The free slots are a bit mask taken and returned with atomic operations: a request takes no
 * lock for its slot (the queue lock is the one lock a request takes). Only a thread that finds
 * no free slot waits, under the lock, for slot_put() to signal; free_waiters and free_mask are
 * both sequentially consistent, so a putter that reads no waiter left a bit the waiter sees.
 * Waits until @deadline_us (CLOCK_MONOTONIC; 0: for ever), then returns NULL.
 */
static struct slot *slot_get(int64_t deadline_us)
{
	uint64_t m = __atomic_load_n(&free_mask, __ATOMIC_SEQ_CST);

	for (;;) {
		unsigned i;

		if (!m) {
			pthread_mutex_lock(&lock);
			__atomic_add_fetch(&free_waiters, 1, __ATOMIC_SEQ_CST);
			while (!(m = __atomic_load_n(&free_mask, __ATOMIC_SEQ_CST))) {
				/*
				 * Every slot is taken. If abandoned requests hold some and nobody
				 * leads, nobody would reap them and free their slots: reap here.
				 * (This used to wait for ever: after 64 time-outs the plugin hung.)
				 */
				if (!leading && abandoned_n) {
					leading = true;
					pthread_mutex_unlock(&lock);
					lead(NULL, 0);
					pthread_mutex_lock(&lock);
					continue;
				}
				if (deadline_us) {
					/* Time-outs count from the NBD request: a thread that waits
					 * for a slot gives up too (this used to wait for ever while
					 * the slots' requests were stalled). */
					struct timespec ts;

					if (mono_us() >= deadline_us) {
						__atomic_sub_fetch(&free_waiters, 1, __ATOMIC_SEQ_CST);
						pthread_mutex_unlock(&lock);
						return NULL;
					}
					clock_gettime(CLOCK_REALTIME, &ts);
					ts.tv_nsec += 10000000; /* look at the deadline every 10 ms */
					if (ts.tv_nsec >= 1000000000)
						ts.tv_sec++, ts.tv_nsec -= 1000000000;
					pthread_cond_timedwait(&free_cv, &lock, &ts);
				} else {
					pthread_cond_wait(&free_cv, &lock);
				}
			}
			__atomic_sub_fetch(&free_waiters, 1, __ATOMIC_SEQ_CST);
			pthread_mutex_unlock(&lock);
		}
		i = (unsigned)__builtin_ctzll(m);
		if (__atomic_compare_exchange_n(&free_mask, &m, m & ~(1ull << i), false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return &slots[i];
	}
}

/* Returns slot @s; @locked: the caller holds the lock. */
static void slot_return(struct slot *s, bool locked)
{
	__atomic_or_fetch(&free_mask, 1ull << (s - slots), __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&free_waiters, __ATOMIC_SEQ_CST))
		return;
	if (!locked)
		pthread_mutex_lock(&lock);
	pthread_cond_signal(&free_cv);
	if (!locked)
		pthread_mutex_unlock(&lock);
}

static void slot_free(struct slot *s)
{
	slot_return(s, true);
}

static void slot_put(struct slot *s)
{
	slot_return(s, false);
}

/*
 * A completion (or a failure) for slot @s. Under lock. Returns the slot if its thread is to be
 * told (the caller does that after unlocking: slot_notify(S_DONE)), NULL if it was freed here.
 */
static struct slot *finish(struct slot *s, const struct maptbl_hw_aio_cpl *c)
{
	s->cpl = *c;
	s->aio.user_data = 0;
	if (s->abandoned) { /* its thread gave up: the slot is ours to free */
		s->abandoned = false;
		abandoned_n--;
		slot_free(s);
		return NULL;
	}
	waiting--;
	return s;
}

/* Fails every queued and posted request with @err (the rings are gone). Under lock. */
static struct slot *fail_all(int err, struct slot *wake)
{
	struct maptbl_hw_aio_cpl c = { .err = err, .status = MAPTBL_ST_IO_ERROR };

	broken = err;
	for (unsigned i = 0; i < NR_SLOTS; i++) {
		struct slot *s;

		if (slots[i].aio.user_data && (s = finish(&slots[i], &c))) { /* queued or posted */
			s->next = wake;
			wake = s;
		}
	}
	queued = NULL;
	queued_tail = &queued;
	return wake;
}

/*
 * A slot whose request is queued or in the ring and whose thread waits (not @self, not
 * abandoned), to take the lead; NULL if none (then nobody leads). Under lock.
 */
static struct slot *next_leader(const struct slot *self)
{
	if (!waiting)
		return NULL;
	for (unsigned i = 0; i < NR_SLOTS; i++)
		if (&slots[i] != self && slots[i].aio.user_data && !slots[i].abandoned)
			return &slots[i];
	return NULL;
}

/*
 * The leader's turn, for slot @self (called without lock, returns without it): post everything
 * queued with one doorbell (maptbl_hw_queue_submit()), reap what completes within 10 ms, tell
 * the threads of the completed requests, and go on until @self completed or @deadline_us
 * passed; then hand the lead to a thread that still waits. Only the leader touches hw and q.
 * Returns the final state of @self: S_DONE, or S_WAIT on a timeout (then @self is abandoned).
 * With @self NULL (a thread waiting for a slot that only abandoned requests hold): one round.
 */
static uint32_t lead(struct slot *self, int64_t deadline_us)
{
	struct maptbl_hw_aio_cpl cpl[NR_SLOTS];
	uint32_t mine = S_WAIT;

	for (;;) {
		struct slot *batch, *wake = NULL, *next = NULL;
		unsigned posted = 0;
		bool stop;
		int n = 0;

		pthread_mutex_lock(&lock);
		if (self)
			self->chosen = false;
		batch = broken ? NULL : queued;
		if (batch) {
			queued = NULL;
			queued_tail = &queued;
		}
		pthread_mutex_unlock(&lock);
		while (batch) {
			struct slot *s = batch;

			n = maptbl_hw_queue_post(q, &s->aio, 1);
			if (n == -EAGAIN) { /* the ring is full: the rest goes first next time */
				struct slot **t = &batch;

				pthread_mutex_lock(&lock);
				while (*t)
					t = &(*t)->next;
				*t = queued;
				if (!queued)
					queued_tail = t;
				queued = batch;
				pthread_mutex_unlock(&lock);
				break;
			}
			batch = s->next;
			if (n < 0) {
				struct maptbl_hw_aio_cpl c = { .err = n, .status = MAPTBL_ST_BAD_REQUEST };

				pthread_mutex_lock(&lock);
				if ((s = finish(s, &c))) {
					s->next = wake;
					wake = s;
				}
				pthread_mutex_unlock(&lock);
				continue;
			}
			posted++;
		}
		n = posted ? maptbl_hw_queue_submit(q, NULL, 0) : 0;
		if (n >= 0)
			n = maptbl_hw_queue_reap(q, cpl, NR_SLOTS, 10);
		pthread_mutex_lock(&lock);
		if (n < 0) {
			nbdkit_error("VF %u: the rings failed: %s", vf, strerror(-n));
			wake = fail_all(n, wake);
		}
		for (int i = 0; i < n; i++) {
			struct slot *s = finish(&slots[cpl[i].user_data - 1], &cpl[i]);

			if (s == self) {
				mine = S_DONE;
			} else if (s) {
				s->next = wake;
				wake = s;
			}
		}
		if (self && !self->aio.user_data) /* finished by a failure above */
			mine = S_DONE;
		if (self && mine != S_DONE && deadline_us && mono_us() >= deadline_us) {
			self->abandoned = true; /* the next leader frees it when it completes */
			waiting--;
			abandoned_n++;
		}
		stop = !self || mine == S_DONE || self->abandoned;
		if (stop) {
			next = next_leader(self);
			leading = next != NULL;
			if (next)
				next->chosen = true;
			else if (abandoned_n && __atomic_load_n(&free_waiters, __ATOMIC_SEQ_CST))
				pthread_cond_signal(&free_cv); /* one of them reaps next (slot_get()) */
		}
		pthread_mutex_unlock(&lock);
		/*
		 * Outside the lock, and one thread only: the woken thread wakes the next one
		 * (slot_io()), and so on down the chain. Woken all at once by the leader, the
		 * threads preempted it one after the other and then queued up together on
		 * nbdkit's own connection locks to send their replies.
		 */
		{
			struct slot *head = NULL;

			while (wake) {
				struct slot *s = wake;

				wake = s->next;
				if (s != self) {
					s->chain = head;
					head = s;
				}
			}
			if (head)
				slot_notify(head, S_DONE);
		}
		if (stop) {
			if (next)
				slot_notify(next, S_LEAD);
			return mine;
		}
	}
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

/*
 * One device request of at most slot_blocks blocks through slot @s: queue it and wait for its
 * completion, leading when no other thread does. 0 or -errno; *status gets the device's status.
 */
static int slot_io(struct slot *s, uint32_t op, uint64_t lba, uint32_t n, uint32_t flags,
		   uint32_t *status)
{
	int64_t deadline = timeout_ms > 0 ? mono_us() + (int64_t)timeout_ms * 1000 : 0;
	uint32_t st;
	bool lead_now;

	s->aio = (struct maptbl_hw_aio){ .opcode = op, .flags = flags, .lba = lba, .nblocks = n,
					 .buf = op == MAPTBL_OP_READ || op == MAPTBL_OP_WRITE ? s->buf : NULL,
					 .user_data = (uint64_t)(s - slots) + 1 };
	__atomic_store_n(&s->state, S_WAIT, __ATOMIC_RELAXED);
	s->chain = NULL;
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
	waiting++;
	lead_now = !leading;
	leading = true;
	pthread_mutex_unlock(&lock);
	st = lead_now ? S_LEAD : slot_wait(s, deadline);
	for (;;) {
		if (st == S_LEAD) { /* handed the lead (the hand-over keeps `leading` set) */
			st = lead(s, deadline);
			break;
		}
		if (st == S_DONE)
			break;
		/* Timed out. Unless the leader already finished it or chose it to lead (it is
		 * telling us right now), the request is left to the leader. */
		pthread_mutex_lock(&lock);
		if (s->aio.user_data && !s->chosen) {
			s->abandoned = true;
			waiting--;
			abandoned_n++;
			pthread_mutex_unlock(&lock);
			break;
		}
		pthread_mutex_unlock(&lock);
		st = slot_wait(s, 0);
	}
	if (st == S_DONE && s->chain) { /* pass the wake-up on (lead()) */
		slot_notify(s->chain, S_DONE);
		s->chain = NULL;
	}
	if (st != S_DONE) { /* the request stays queued or in the ring; the leader frees it */
		*status = MAPTBL_ST_OK;
		return -ETIMEDOUT;
	}
	*status = s->cpl.status;
	return s->cpl.err;
}

/* @n blocks at @lba, split into slot-sized device requests; @buf NULL for WRITE_ZEROES, FLUSH. */
static int io(uint32_t op, uint64_t lba, uint64_t n, void *buf, uint32_t flags)
{
	struct slot *s = slot_get(timeout_ms > 0 ? mono_us() + (int64_t)timeout_ms * 1000 : 0);
	uint8_t *p = buf;
	uint32_t st = 0;
	int err = 0;

	if (!s) {
		nbdkit_error("VF %u: no request slot free within %d ms (the VF's requests are stalled)",
			     vf, timeout_ms);
		nbdkit_set_error(EIO);
		return -1;
	}

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
		       "timeout=MS  give up on a request after MS ms (default 0: wait for ever)\n"
		       "poll=US   a waiting request spins US microseconds before it sleeps (default 0)",
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
