/* SPDX-License-Identifier: MIT */
/*
 * nbdkit-handoff-plugin.c - nbdkit plugin "handoff": serves one file read-only, but hands every
 * pread to an executor outside nbdkit's request thread and blocks that thread until the executor
 * has done it. A bench program, not product code: it measures the CEILING of any design in which
 * a device (our VF: maptbl-emu behind hw-iface/nbd/maptbl-nbd.c) runs outside the request
 * thread, on the same cores, served through nbdkit's synchronous plugin API (issue #6 §8,
 * docs/PERFORMANCE.md "The ceiling of a device outside the request thread"). It does nothing
 * but the hand-off: no rings, no table walk, no DMA emulation, so whatever it loses against
 * nbdkit's file plugin is the price of the hand-off alone.
 *
 *   nbdkit -r nbdkit-handoff-plugin.so file=PATH [mode=inline|thread|process] [wake=each|batch]
 *
 *   inline   pread in the request thread (what the file plugin does: validates this plugin);
 *   thread   one worker thread (one VF's device thread) takes requests from an in-process
 *            queue and does the pread into the caller's buffer; the requester sleeps on a futex
 *            word of its own (FUTEX_WAIT_PRIVATE) and the worker wakes it (FUTEX_WAKE_PRIVATE),
 *            as maptbl-nbd.c's threads are woken; the worker sleeps on a futex when the queue is
 *            empty and is woken only then (no spinning anywhere);
 *   process  the executor is a forked child (the emulator's shape): the slots and both queues
 *            live in a MAP_SHARED anonymous mapping, the child preads into the slot's buffer and
 *            the requester copies it out (the "DMA" copy); the doorbell (parent to child) and
 *            the completion interrupt (child to the parent's interrupt thread, which wakes the
 *            requesters by futex) are one-byte socketpair messages, sent only when the other side
 *            announced that it sleeps (notification suppression): the ceiling of shared-memory
 *            rings with socket doorbells, and of the "shared-memory doorbell" step.
 *
 * The executor takes all queued requests at once and completes each as soon as it is read
 * (wake=each) or all after the batch (wake=batch: the woken threads preempt it less often).
 *
 * Written by hand because it is a measurement instrument: no library or nbdkit plugin hands a
 * request to another thread or process and waits for it, which is the one thing measured here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

#define NR_SLOTS 64			/* requests in flight at most (nbdkit -t 64) */
#define SLOT_BYTES (128u * 1024u)	/* larger requests go in pieces */

enum mode { M_INLINE, M_THREAD, M_PROCESS };
enum { S_WAIT, S_SLEEP, S_DONE };	/* a slot's state: its requester's futex word */

struct slot {
	uint64_t off;
	uint32_t count;
	int32_t result;		/* 0 or -errno, set by the executor */
	uint32_t state;		/* S_*: set by the requester and the thread that completes it */
	uint32_t next;		/* index + 1 of the next slot in a queue, 0: none */
	void *dst;		/* thread mode: the caller's buffer (the worker reads into it) */
	uint8_t data[SLOT_BYTES]; /* process mode: the child reads into it */
};

/*
 * A multi-producer queue with one consumer: producers push a slot (a lock-free stack of slot
 * indices, so it works across processes), the consumer takes all at once. `sleeping` is set
 * by the consumer before it sleeps, and a producer that clears it sends the wake-up.
 */
struct queue {
	uint32_t head;		/* index + 1 of the last pushed slot, 0: empty */
	uint32_t sleeping;	/* the consumer sleeps (futex word in thread mode) */
};

struct shared {			/* one MAP_SHARED anonymous mapping */
	struct queue sq;	/* requests, to the executor */
	struct queue cq;	/* completions, to the interrupt thread (process mode) */
	uint64_t free_mask;	/* bit i: slots[i] is free */
	uint32_t stop;
	struct slot slots[NR_SLOTS];
};

static char *path;
static enum mode mode = M_THREAD;
static bool wake_batch;			/* wake=batch: complete after the whole batch is read */
static int fd = -1;
static int64_t size;
static struct shared *sh;
static pthread_t worker, irq;
static bool worker_started, irq_started;
static int sock[2] = { -1, -1 };	/* process mode: [0] parent's end, [1] child's end */
static pid_t child;

static void futex_wait(uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void push(struct queue *q, uint32_t i)
{
	uint32_t h = __atomic_load_n(&q->head, __ATOMIC_RELAXED);

	do
		sh->slots[i].next = h;
	while (!__atomic_compare_exchange_n(&q->head, &h, i + 1, true, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED));
}

/* Takes everything queued, oldest first: the index + 1 of the first slot (0: empty). */
static uint32_t take(struct queue *q)
{
	uint32_t h = __atomic_exchange_n(&q->head, 0, __ATOMIC_SEQ_CST), prev = 0;

	while (h) {
		uint32_t n = sh->slots[h - 1].next;

		sh->slots[h - 1].next = prev;
		prev = h;
		h = n;
	}
	return prev;
}

/* After a push: wakes the consumer of @q if it sleeps, by futex (@wfd < 0) or one byte. */
static void kick(struct queue *q, int wfd)
{
	char b = 0;

	if (!__atomic_load_n(&q->sleeping, __ATOMIC_SEQ_CST) ||
	    !__atomic_exchange_n(&q->sleeping, 0, __ATOMIC_SEQ_CST))
		return;
	if (wfd < 0)
		futex_wake(&q->sleeping);
	else if (write(wfd, &b, 1) != 1)
		return; /* the other side is gone: nbdkit is exiting (a bench: nothing to save) */
}

/*
 * The consumer of @q found it empty: sleeps until a producer kicks (futex, or a byte on @rfd).
 * Returns -1 when @rfd's other end is closed.
 */
static int idle(struct queue *q, int rfd)
{
	char b;

	__atomic_store_n(&q->sleeping, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->head, __ATOMIC_SEQ_CST) || __atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
		/* A producer that cleared `sleeping` meanwhile sent a byte: the next read eats it. */
		__atomic_store_n(&q->sleeping, 0, __ATOMIC_SEQ_CST);
		return 0;
	}
	if (rfd < 0) {
		futex_wait(&q->sleeping, 1);
		return 0;
	}
	return read(rfd, &b, 1) == 1 ? 0 : -1;
}

/* Sets @s done and wakes its requester if it sleeps. */
static void complete(struct slot *s)
{
	if (__atomic_exchange_n(&s->state, S_DONE, __ATOMIC_ACQ_REL) == S_SLEEP)
		futex_wake(&s->state);
}

static int read_all(void *buf, uint32_t count, uint64_t off)
{
	while (count) {
		ssize_t n = pread(fd, buf, count, (off_t)off);

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf = (uint8_t *)buf + n;
		count -= (uint32_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* A request is served: thread mode wakes its requester, process mode queues the completion. */
static void done(struct slot *s)
{
	if (mode == M_PROCESS)
		push(&sh->cq, (uint32_t)(s - sh->slots));
	else
		complete(s);
}

/*
 * The executor (worker thread or child process): serves the request queue until stopped, a
 * batch (all that is queued) at a time; wake=each completes each request as soon as it is read,
 * wake=batch all of them after the batch (fewer preemptions of the executor by the woken).
 */
static void serve(int rfd, int wfd)
{
	for (;;) {
		uint32_t i = take(&sh->sq);

		if (!i) {
			if (__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST) || idle(&sh->sq, rfd) < 0)
				return;
			continue;
		}
		for (uint32_t j = i; j;) {
			struct slot *s = &sh->slots[j - 1];

			j = s->next; /* before done(): then the slot is no longer ours */
			s->result = read_all(mode == M_PROCESS ? s->data : s->dst, s->count, s->off);
			if (!wake_batch)
				done(s);
		}
		for (uint32_t j = wake_batch ? i : 0; j;) {
			struct slot *s = &sh->slots[j - 1];

			j = s->next;
			done(s);
		}
		if (mode == M_PROCESS)
			kick(&sh->cq, wfd);
	}
}

static void *worker_main(void *arg)
{
	(void)arg;
	serve(-1, -1);
	return NULL;
}

/* Process mode, in nbdkit: the interrupt thread. Wakes the requesters of completed slots. */
static void *irq_main(void *arg)
{
	(void)arg;
	for (;;) {
		uint32_t i = take(&sh->cq);

		if (!i) {
			if (__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST) || idle(&sh->cq, sock[0]) < 0)
				return NULL;
			continue;
		}
		while (i) {
			struct slot *s = &sh->slots[i - 1];

			i = s->next;
			complete(s);
		}
	}
}

static int handoff_config(const char *key, const char *value)
{
	if (!strcmp(key, "file")) {
		free(path);
		path = nbdkit_realpath(value);
		return path ? 0 : -1;
	}
	if (!strcmp(key, "mode")) {
		if (!strcmp(value, "inline"))
			mode = M_INLINE;
		else if (!strcmp(value, "thread"))
			mode = M_THREAD;
		else if (!strcmp(value, "process"))
			mode = M_PROCESS;
		else {
			nbdkit_error("mode=%s: not inline, thread or process", value);
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "wake")) {
		if (strcmp(value, "each") && strcmp(value, "batch")) {
			nbdkit_error("wake=%s: not each or batch", value);
			return -1;
		}
		wake_batch = !strcmp(value, "batch");
		return 0;
	}
	nbdkit_error("unknown parameter '%s' (file, mode, wake)", key);
	return -1;
}

static int handoff_get_ready(void)
{
	struct stat st;

	if (!path) {
		nbdkit_error("file=PATH is required");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		nbdkit_error("%s: %s", path, strerror(errno));
		return -1;
	}
	size = st.st_size;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		sh = NULL;
		nbdkit_error("%zu bytes of shared memory: %s", sizeof(*sh), strerror(errno));
		return -1;
	}
	sh->free_mask = ~0ull;
	return 0;
}

/* The executor starts after nbdkit forked into the background (nbdkit-plugin(3): threads). */
static int handoff_after_fork(void)
{
	int err;

	if (mode == M_PROCESS) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0) {
			nbdkit_error("socketpair: %s", strerror(errno));
			return -1;
		}
		child = fork();
		if (child < 0) {
			nbdkit_error("fork: %s", strerror(errno));
			return -1;
		}
		if (!child) { /* the "device": serves until nbdkit goes */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(sock[0]);
			serve(sock[1], sock[1]);
			_exit(0);
		}
		close(sock[1]);
		sock[1] = -1;
		err = pthread_create(&irq, NULL, irq_main, NULL);
		irq_started = !err;
	} else if (mode == M_THREAD) {
		err = pthread_create(&worker, NULL, worker_main, NULL);
		worker_started = !err;
	} else {
		return 0;
	}
	if (err) {
		nbdkit_error("pthread_create: %s", strerror(err));
		return -1;
	}
	return 0;
}

static void handoff_unload(void)
{
	if (sh) {
		__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		if (worker_started) {
			kick(&sh->sq, -1);
			pthread_join(worker, NULL);
		}
		if (child > 0) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
		}
		if (irq_started) {
			shutdown(sock[0], SHUT_RDWR); /* its read returns 0 */
			pthread_join(irq, NULL);
		}
		munmap(sh, sizeof(*sh));
	}
	if (sock[0] >= 0)
		close(sock[0]);
	if (fd >= 0)
		close(fd);
	free(path);
}

static void *handoff_open(int readonly)
{
	static int handle;

	(void)readonly;
	return &handle;
}

static int64_t handoff_get_size(void *handle)
{
	(void)handle;
	return size;
}

static int handoff_can_write(void *handle)
{
	(void)handle;
	return 0;
}

static struct slot *slot_get(void)
{
	for (;;) {
		uint64_t m = __atomic_load_n(&sh->free_mask, __ATOMIC_SEQ_CST);
		unsigned i;

		if (!m) { /* more requests in flight than NR_SLOTS (nbdkit -t > 64): rare here */
			sched_yield();
			continue;
		}
		i = (unsigned)__builtin_ctzll(m);
		if (__atomic_compare_exchange_n(&sh->free_mask, &m, m & ~(1ull << i), false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return &sh->slots[i];
	}
}

/* Hands one piece to the executor and sleeps until it is done. */
static int handoff_piece(void *buf, uint32_t count, uint64_t off)
{
	struct slot *s = slot_get();
	uint32_t st = S_WAIT;
	int r;

	s->off = off;
	s->count = count;
	s->dst = buf;
	__atomic_store_n(&s->state, S_WAIT, __ATOMIC_RELAXED);
	push(&sh->sq, (uint32_t)(s - sh->slots));
	kick(&sh->sq, mode == M_PROCESS ? sock[0] : -1);
	/* Announce the sleep (unless it is done already), then sleep until complete(). */
	if (__atomic_compare_exchange_n(&s->state, &st, S_SLEEP, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		st = S_SLEEP;
	while (st != S_DONE) {
		futex_wait(&s->state, S_SLEEP);
		st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	}
	r = s->result;
	if (!r && mode == M_PROCESS)
		memcpy(buf, s->data, count);
	__atomic_or_fetch(&sh->free_mask, 1ull << (s - sh->slots), __ATOMIC_SEQ_CST);
	return r;
}

static int handoff_pread(void *handle, void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	(void)handle;
	(void)flags;
	while (count) {
		uint32_t n = count < SLOT_BYTES ? count : SLOT_BYTES;
		int r = mode == M_INLINE ? read_all(buf, n, off) : handoff_piece(buf, n, off);

		if (r) {
			nbdkit_error("%s: read of %u bytes at %llu: %s", path, n,
				     (unsigned long long)off, strerror(-r));
			errno = -r;
			return -1;
		}
		buf = (uint8_t *)buf + n;
		count -= n;
		off += n;
	}
	return 0;
}

static struct nbdkit_plugin plugin = {
	.name = "handoff",
	.longname = "maptbl bench: the cost of handing reads to a device outside the request thread",
	.config = handoff_config,
	.config_help = "file=PATH   the file to serve (read-only)\n"
		       "mode=inline|thread|process   where the pread runs (default thread)\n"
		       "wake=each|batch   complete each read as it is done (default) or a batch at once",
	.get_ready = handoff_get_ready,
	.after_fork = handoff_after_fork,
	.unload = handoff_unload,
	.open = handoff_open,
	.get_size = handoff_get_size,
	.can_write = handoff_can_write,
	.pread = handoff_pread,
};

/* As in maptbl-nbd.c: the macro defines plugin_init() without a prototype (clang's
 * -Wmissing-prototypes). */
struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
