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
 * Requests are served one at a time (NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS: one ring pair,
 * one synchronous request in flight). Byte ranges that are not block-aligned are read-modify-
 * written here. A write to a hole waits until the host services the fault (or times out with
 * timeout=MS; default: wait for ever, as a disk would).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <maptbl/hw.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static char *dev;
static unsigned vf;
static int timeout_ms;
static struct maptbl_hw *hw;
static struct maptbl_hw_queue *q;
static uint32_t bs;
static bool read_only;

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
	err = maptbl_hw_queue_open(hw, vf, 64, &q);
	if (err) {
		nbdkit_error("%s: VF %u: %s", dev, vf, strerror(-err));
		return -1;
	}
	bs = maptbl_hw_queue_block_size(q);
	if (!maptbl_hw_read32(hw, vf, MAPTBL_REG_STATUS, &st))
		read_only = st & MAPTBL_FN_STATUS_READ_ONLY;
	nbdkit_debug("VF %u: %" PRIu64 " blocks of %u%s", vf, maptbl_hw_queue_blocks(q), bs,
		     read_only ? ", read-only" : "");
	return 0;
}

static void maptbl_unload(void)
{
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
	return 1; /* one device, requests serialized: a flush covers every connection */
}

static int io(uint32_t op, uint64_t lba, uint64_t n, void *buf, uint32_t flags)
{
	struct maptbl_hw_io r = { .opcode = op, .flags = flags, .lba = lba, .nblocks = n,
				  .buf = buf, .timeout_ms = timeout_ms };
	int err = maptbl_hw_queue_io(q, &r);

	if (err) {
		nbdkit_error("VF %u: %s of %" PRIu64 " blocks at %" PRIu64 ": %s (status %s)", vf,
			     op == MAPTBL_OP_READ ? "read" : op == MAPTBL_OP_WRITE ? "write" : "zero", n,
			     lba, strerror(-err), maptbl_hw_status_name(r.status));
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
