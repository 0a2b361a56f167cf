/* SPDX-License-Identifier: MIT */
/*
 * mtdev.h - the maptbl device model: a QEMU-free software model of the controller (PF + up to 64
 * VFs, table walker, translation cache, request/completion rings, fault queue), driven only
 * through its register pages (docs/REGISTERS.md, maptbl/hw_regs.h) and talking to the outside
 * world only through callbacks: DMA into host memory, reads and writes of the backing disk,
 * interrupts and log messages.
 *
 * Internal to the repository (static library target `maptbl-device`, never installed, names
 * `mtdev_` never exported). Front ends: hw-iface/emu (the standalone emulator), hw-iface/qemu
 * (the QEMU PCIe device), tests/unit/device and tests/fuzz/fuzz_device.c.
 *
 * Threading: the model has no threads and no locks. All calls on one struct mtdev must be
 * serialized by the caller (one mutex around every mtdev_* call is enough). Callbacks are
 * invoked synchronously from inside mtdev_mmio_write() and mtdev_process() on the calling thread;
 * they must not call back into the same struct mtdev.
 *
 * Errors: mtdev_create() returns 0 or -errno (-EINVAL for bad parameters, -ENOMEM). Register
 * accesses never fail from the caller's point of view: a bad access (size, alignment, offset,
 * function, value) reads as all ones or is ignored, and is reported through the log callback with
 * category MTDEV_LOG_GUEST_ERROR. Request errors are completion statuses (enum maptbl_hw_status).
 * The model never asserts on input and never aborts.
 */
#ifndef MAPTBL_MTDEV_H
#define MAPTBL_MTDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maptbl/hw_regs.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mtdev;

/** Log categories (QEMU's LOG_GUEST_ERROR / LOG_UNIMP / trace, in that spirit). */
enum mtdev_log_cat {
	MTDEV_LOG_GUEST_ERROR = 1,	/**< the driver misused the device (bad access, bad entry) */
	MTDEV_LOG_UNIMP = 2,		/**< a feature the model does not implement was asked for */
	MTDEV_LOG_INFO = 3,		/**< state changes: VF enabled, table latched, reset */
	MTDEV_LOG_TRACE = 4,		/**< per request / per walk (verbose) */
};

/**
 * Callbacks. Every DMA callback names the function on whose behalf the device accesses host
 * memory (0 = PF, n = VF n), so a front end can apply a per-function IOMMU view. Table walks and
 * fault-queue writes are PF DMA (the tables belong to the hypervisor); a VF's rings and data
 * buffers are that VF's DMA. Disk callbacks name the function whose request caused them (the
 * test audit uses it). Return 0 on success, non-zero on failure (bad address, I/O error).
 * Lengths are never 0 and `addr + len` never wraps when the model calls.
 */
struct mtdev_ops {
	int (*dma_read)(void *ctx, unsigned fn, uint64_t addr, void *buf, size_t len);
	int (*dma_write)(void *ctx, unsigned fn, uint64_t addr, const void *buf, size_t len);
	int (*disk_read)(void *ctx, unsigned fn, uint64_t off, void *buf, size_t len);
	int (*disk_write)(void *ctx, unsigned fn, uint64_t off, const void *buf, size_t len);
	/** Make completed disk writes durable; NULL = nothing to do. */
	int (*disk_flush)(void *ctx, unsigned fn);
	/** Raise MSI vector @p vector (MAPTBL_VEC_*) of function @p fn; NULL = polled device. */
	void (*irq)(void *ctx, unsigned fn, unsigned vector);
	/** One log line, no trailing newline; NULL = silent. */
	void (*log)(void *ctx, enum mtdev_log_cat cat, const char *msg);
};

/** Creation parameters. Zero fields take the defaults named below. */
struct mtdev_params {
	const struct mtdev_ops *ops;	/**< required: dma_read, dma_write, disk_read, disk_write */
	void *ctx;			/**< passed to every callback */
	unsigned nr_vfs;		/**< VFs the device has, 1 .. 64 (default 64) */
	uint64_t disk_bytes;		/**< size of the backing disk in bytes (required, > 0) */
	uint32_t pf_block_size;		/**< PF block size, power of two 512 .. 65536 (default 4096) */
	uint32_t max_xfer_blocks;	/**< MAX_XFER: blocks per request (default 2048) */
	unsigned xcache_entries;	/**< extent cache (BTLB) entries, 0 .. 65535 (default 8) */
	unsigned ncache_entries;	/**< node cache entries, 0 .. 65535 (default 64) */
	bool xcache_disable;		/**< true: no extent cache (xcache_entries ignored) */
	bool ncache_disable;		/**< true: no node cache (ncache_entries ignored) */
};

/** @brief Fill @p p with the defaults (ops, ctx and disk_bytes still to be set). */
void mtdev_params_init(struct mtdev_params *p);

/**
 * @brief Create a device in its reset state.
 * @return 0, -EINVAL (bad parameters, logged through p->ops->log), -ENOMEM.
 */
int mtdev_create(const struct mtdev_params *p, struct mtdev **out);

/** @brief Destroy a device (NULL is fine). Stalled requests are dropped without completion. */
void mtdev_destroy(struct mtdev *d);

/**
 * @brief Device reset (as MAPTBL_DEV_CTRL_RESET or a PCI function-level reset of the PF): every
 * register to its reset value, rings, fault queue and caches emptied, counters zeroed, stalled
 * requests dropped without completion.
 */
void mtdev_reset(struct mtdev *d);

/** @brief Bytes of function @p fn's register page (0 for a function the device lacks). */
uint32_t mtdev_bar_size(const struct mtdev *d, unsigned fn);

/**
 * @brief MMIO read of @p size (4 or 8) bytes at @p off in function @p fn's page.
 * @return the value; all ones (of @p size bytes) for a bad access, which is logged.
 */
uint64_t mtdev_mmio_read(struct mtdev *d, unsigned fn, uint64_t off, unsigned size);

/**
 * @brief MMIO write. Register side effects happen at once, with the DMA they need (enabling a
 * VF or WALK_AGAIN = RETRY reads its table header; WALK_AGAIN = FAIL posts the stalled request's
 * completion); ring work (doorbells) waits for mtdev_process(). A bad access is ignored and
 * logged.
 */
void mtdev_mmio_write(struct mtdev *d, unsigned fn, uint64_t off, unsigned size, uint64_t val);

/**
 * @brief Do pending work: consume up to @p budget requests in total (0 = no limit), serving the
 * functions round-robin (the PF first), and post pending faults. Call it after doorbell writes,
 * after WALK_AGAIN, and whenever mtdev_has_work() says so.
 * @return requests completed by this call.
 */
unsigned mtdev_process(struct mtdev *d, unsigned budget);

/** @brief As mtdev_process(), but for function @p fn only (a front end with a thread per VF). */
unsigned mtdev_process_fn(struct mtdev *d, unsigned fn, unsigned budget);

/**
 * @brief True when mtdev_process() would make progress now (requests waiting with room in the
 * completion ring, a fault waiting to be posted). A stalled VF has no work until WALK_AGAIN.
 */
bool mtdev_has_work(const struct mtdev *d);

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_MTDEV_H */
