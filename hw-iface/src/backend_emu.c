/* SPDX-License-Identifier: MIT */
/*
 * backend_emu.c - "emu:/path/to.sock": the standalone emulator maptbl-emu(8) over its UNIX
 * socket (docs/REGISTERS.md §11, emu_proto.h). Host memory for DMA is the emulator's shared
 * memory, mapped here from the memfd the HELLO reply carries; bus address = MTEMU_DMA_BASE +
 * offset in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "emu_proto.h"
#include "internal.h"

struct emu_be {
	int fd;
	char path[108];
	uint8_t *mem;
	uint64_t mem_size;
	uint32_t irq_pending[MAPTBL_HW_MAX_VFS + 1];
	bool irq_sub[MAPTBL_HW_MAX_VFS + 1];
	bool dead;
	unsigned posted;	/* posted WRITEs whose replies are still to be read */
};

#define POSTED_MAX 32	/* drain the replies of posted writes beyond this many */

static struct emu_be *be(struct maptbl_hw *hw)
{
	return hw->be;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Receives one message within @timeout_ms (< 0: for ever); *fd gets a passed descriptor.
 * Returns 0, -ETIMEDOUT, -ENOTCONN (the emulator closed), -EPROTO (bad packet).
 */
static int recv_msg(struct emu_be *b, struct mtemu_msg *m, int timeout_ms, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = b->fd, .events = POLLIN };
	ssize_t n;
	int rc;

	if (b->dead)
		return -ENOTCONN;
	do
		rc = poll(&p, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (!rc)
		return -ETIMEDOUT;
	do
		n = recvmsg(b->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		b->dead = true;
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: the emulator closed the connection", b->path);
		return -ENOTCONN;
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(cm), sizeof(int));
			if (fd && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	if (n != (ssize_t)sizeof(*m) || (mh.msg_flags & MSG_TRUNC)) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: message of %zd bytes", b->path, n);
		return -EPROTO;
	}
	return 0;
}

static void note_irq(struct emu_be *b, const struct mtemu_msg *m)
{
	uint32_t fn = maptbl_le32_to_cpu(m->fn), vec = maptbl_le32_to_cpu(m->arg);

	if (fn <= MAPTBL_HW_MAX_VFS && vec < 32)
		b->irq_pending[fn] |= 1u << vec;
}

/*
 * The reply to a posted write (replies come in order, so while posts are outstanding the next
 * WRITE reply is theirs): true if @m was one, consumed here (a failure is logged: the write was
 * posted, nobody waits for its status).
 */
static bool posted_reply(struct emu_be *b, const struct mtemu_msg *m)
{
	uint32_t st = maptbl_le32_to_cpu(m->status);

	if (!b->posted || maptbl_le32_to_cpu(m->type) != (MTEMU_WRITE | MTEMU_REPLY))
		return false;
	b->posted--;
	if (st)
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: posted write of fn %u offset 0x%" PRIx64 ": %s",
			   b->path, maptbl_le32_to_cpu(m->fn), maptbl_le64_to_cpu(m->off),
			   strerror((int)st));
	return true;
}

/* Sends one request: 0 or -ENOTCONN (the connection is then dead). */
static int send_req(struct emu_be *b, uint32_t type, uint32_t fn, uint32_t arg, uint64_t off,
		    uint64_t val)
{
	struct mtemu_msg m = {
		.type = maptbl_cpu_to_le32(type),
		.fn = maptbl_cpu_to_le32(fn),
		.arg = maptbl_cpu_to_le32(arg),
		.off = maptbl_cpu_to_le64(off),
		.val = maptbl_cpu_to_le64(val),
	};
	ssize_t n;

	if (b->dead)
		return -ENOTCONN;
	do
		n = send(b->fd, &m, sizeof(m), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m)) {
		b->dead = true;
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: send: %s", b->path,
			   n < 0 ? strerror(errno) : "short");
		return -ENOTCONN;
	}
	return 0;
}

/* One request, one reply. Interrupt notifications that arrive first are noted. */
static int rpc(struct maptbl_hw *hw, uint32_t type, uint32_t fn, uint32_t arg, uint64_t off,
	       uint64_t val, struct mtemu_msg *rep, int *fd)
{
	struct emu_be *b = be(hw);
	int64_t end = mono_ms() + hw->timeout_ms;
	int err = send_req(b, type, fn, arg, off, val);

	if (err)
		return err;
	for (;;) {
		int64_t left = end - mono_ms();
		uint32_t rtype;

		err = recv_msg(b, rep, left > 0 ? (int)left : 0, fd);
		if (err == -ETIMEDOUT)
			maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: no reply within %d ms", b->path,
				   hw->timeout_ms);
		if (err)
			return err;
		rtype = maptbl_le32_to_cpu(rep->type);
		if (rtype == MTEMU_IRQ) {
			note_irq(b, rep);
			continue;
		}
		if (posted_reply(b, rep))
			continue;
		if (rtype != (type | MTEMU_REPLY)) {
			maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: reply of type 0x%x to a request of type %u",
				   b->path, rtype, type);
			return -EPROTO;
		}
		return -(int)maptbl_le32_to_cpu(rep->status);
	}
}

static int emu_open(struct maptbl_hw *hw, const char *arg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mtemu_msg rep;
	struct emu_be *b;
	int err, memfd = -1;

	if (strlen(arg) >= sizeof(sa.sun_path)) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: socket path too long", arg);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	snprintf(b->path, sizeof(b->path), "%s", arg);
	memcpy(sa.sun_path, arg, strlen(arg));
	hw->be = b;
	b->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (b->fd < 0 || connect(b->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: %s", arg, strerror(errno));
		if (err == -ENOENT || err == -ECONNREFUSED || err == -ENOTSOCK)
			err = -ENODEV;
		goto fail;
	}
	err = rpc(hw, MTEMU_HELLO, 0, 0, MTEMU_MAGIC, MTEMU_PROTO_VERSION, &rep, &memfd);
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: HELLO refused: %s", arg, strerror(-err));
		err = err == -EPROTONOSUPPORT ? -EPROTO : err;
		goto fail;
	}
	b->mem_size = maptbl_le64_to_cpu(rep.off);
	if (memfd < 0 || !b->mem_size || b->mem_size > (1ull << 40)) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: HELLO without shared memory", arg);
		err = -EPROTO;
		goto fail;
	}
	b->mem = mmap(NULL, b->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	if (b->mem == MAP_FAILED) {
		b->mem = NULL;
		err = -errno;
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: mmap of %" PRIu64 " bytes of shared memory: %s",
			   arg, b->mem_size, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	hw->be = NULL;
	return err;
}

static void emu_close(struct maptbl_hw *hw)
{
	struct emu_be *b = be(hw);

	if (!b)
		return;
	if (b->mem)
		munmap(b->mem, b->mem_size);
	close(b->fd); /* the emulator frees our non-persistent memory and stops our rings */
	free(b);
	hw->be = NULL;
}

static int emu_read(struct maptbl_hw *hw, unsigned fn, uint32_t off, unsigned size, uint64_t *val)
{
	struct mtemu_msg rep;
	int err = rpc(hw, MTEMU_READ, fn, size, off, 0, &rep, NULL);

	if (!err)
		*val = maptbl_le64_to_cpu(rep.val);
	return err;
}

static int emu_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val)
{
	uint64_t v;
	int err = emu_read(hw, fn, off, 4, &v);

	if (!err)
		*val = (uint32_t)v;
	return err;
}

static int emu_read64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t *val)
{
	return emu_read(hw, fn, off, 8, val);
}

static int emu_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	struct mtemu_msg rep;

	return rpc(hw, MTEMU_WRITE, fn, 4, off, val, &rep, NULL);
}

static int emu_write64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t val)
{
	struct mtemu_msg rep;

	return rpc(hw, MTEMU_WRITE, fn, 8, off, val, &rep, NULL);
}

/*
 * A posted write: the WRITE message is sent and its reply read later, by whatever receives next
 * (the server answers in order and applies the write before it handles our next message, so the
 * ordering of a PCIe posted write holds). This saves a round trip per doorbell.
 */
static int emu_post32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val)
{
	struct emu_be *b = be(hw);
	int err;

	if (b->posted >= POSTED_MAX) {
		/* Read the replies before the socket buffers fill up in both directions. */
		uint32_t v;

		if ((err = emu_read32(hw, fn, MAPTBL_REG_ID, &v)))
			return err;
	}
	if ((err = send_req(b, MTEMU_WRITE, fn, 4, off, val)))
		return err;
	b->posted++;
	return 0;
}

static void *emu_map(struct maptbl_hw *hw, uint64_t addr, size_t len)
{
	struct emu_be *b = be(hw);

	if (addr < MTEMU_DMA_BASE || addr - MTEMU_DMA_BASE > b->mem_size ||
	    len > b->mem_size - (addr - MTEMU_DMA_BASE))
		return NULL;
	return b->mem + (addr - MTEMU_DMA_BASE);
}

static int emu_dma_alloc(struct maptbl_hw *hw, size_t len, unsigned flags, void **vaddr,
			 uint64_t *addr, void **priv)
{
	struct mtemu_msg rep;
	int err = rpc(hw, MTEMU_DMA_ALLOC, 0,
		      (flags & MAPTBL_HW_DMA_PERSIST) ? MTEMU_ALLOC_PERSIST : 0, 0, len, &rep, NULL);

	*priv = NULL;
	if (err) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: DMA allocation of %zu bytes: %s", be(hw)->path,
			   len, strerror(-err));
		return err;
	}
	*addr = maptbl_le64_to_cpu(rep.off);
	*vaddr = emu_map(hw, *addr, len);
	if (!*vaddr) {
		maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: DMA allocation at 0x%" PRIx64 " outside the region",
			   be(hw)->path, *addr);
		return -EPROTO;
	}
	return 0;
}

static int emu_dma_release(struct maptbl_hw *hw, uint64_t addr)
{
	struct mtemu_msg rep;

	return rpc(hw, MTEMU_DMA_FREE, 0, 0, addr, 0, &rep, NULL);
}

static void emu_dma_free(struct maptbl_hw *hw, void *vaddr, uint64_t addr, size_t len, void *priv,
			 bool keep)
{
	(void)vaddr, (void)len, (void)priv;
	if (!keep)
		emu_dma_release(hw, addr);
}

static int emu_wait_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors)
{
	struct emu_be *b = be(hw);
	int64_t end = mono_ms() + timeout_ms;
	struct mtemu_msg m;
	int err;

	if (!b->irq_sub[fn]) {
		err = rpc(hw, MTEMU_IRQ_SUBSCRIBE, fn, 1, 0, 0, &m, NULL);
		if (err)
			return err;
		b->irq_sub[fn] = true;
	}
	for (;;) {
		int64_t left = end - mono_ms();

		if (b->irq_pending[fn]) {
			*vectors = b->irq_pending[fn];
			b->irq_pending[fn] = 0;
			return 0;
		}
		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		err = recv_msg(b, &m, timeout_ms < 0 ? -1 : (int)left, NULL);
		if (err)
			return err;
		if (posted_reply(b, &m))
			continue;
		if (maptbl_le32_to_cpu(m.type) != MTEMU_IRQ) {
			maptbl_log(MAPTBL_LOG_ERROR, "emu:%s: unexpected message of type 0x%x", b->path,
				   maptbl_le32_to_cpu(m.type));
			return -EPROTO;
		}
		note_irq(b, &m);
	}
}

const struct maptbl_hw_ops hw_emu_ops = {
	.name = "emu",
	.open = emu_open,
	.close = emu_close,
	.read32 = emu_read32,
	.read64 = emu_read64,
	.write32 = emu_write32,
	.write64 = emu_write64,
	.dma_alloc = emu_dma_alloc,
	.dma_free = emu_dma_free,
	.dma_release = emu_dma_release,
	.dma_map = emu_map,
	.wait_irq = emu_wait_irq,
	.post32 = emu_post32,
};
