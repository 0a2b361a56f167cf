/* SPDX-License-Identifier: MIT */
/*
 * maptbl/hw.h - libmaptbl-hw, the host driver of the maptbl device (docs/REGISTERS.md).
 *
 * Open a device by name: "emu:/path/to.sock" (the standalone emulator maptbl-emu(8)),
 * "pci:DDDD:BB:DD.F" (a PCI function through sysfs: resource0 and DMA memory from hugepages,
 * needs root) or "vfio:DDDD:BB:DD.F[,vf_token=UUID]" (a function bound to vfio-pci, behind an
 * IOMMU; its VFs are opened with the VF token given, or with one the library sets on the PF:
 * REGISTERS.md §11.6). Then: enable VFs, allocate
 * DMA memory, push a table to a VF, read a VF's state and counters, destroy a VF, service the
 * fault queue (read entries, acknowledge, walk again), and do block I/O through a function's own
 * rings (what a VM's driver does; the nbdkit plugin uses it).
 *
 * Table lifetime. A pushed table lives in DMA memory. With the emulator, push allocates it
 * *persistent*: it stays in the emulator's shared memory after the pushing process exits, until
 * the VF is destroyed or given another table (REGISTERS.md §11.4), so short-lived commands work.
 * With "pci:" and "vfio:" DMA memory belongs to the process: a pushed table lives as long as the
 * struct maptbl_hw that pushed it (maptbl push --hold).
 *
 * Threading: a struct maptbl_hw and everything opened from it (DMA buffers, queues) may be used
 * by one thread at a time; use one handle per thread, or lock around calls. Different handles
 * are independent. maptbl_hw_dma_ptr() memory may be touched from any thread.
 *
 * Errors: functions that can fail return 0 (or a count) on success and a negative errno value on
 * failure; nothing sets errno; details go to the libmaptbl log callback (maptbl_set_log_fn()).
 * -ENODEV: no such device, function or VF. -EPROTO: the device or emulator answered something
 * unexpected (wrong ID or version, protocol error). -EBADMSG: the device refused the table
 * (its table error is logged). -EBUSY: another process owns the resource (fault queue).
 * -ETIMEDOUT: a wait ran out. -ENOMEM: no DMA memory. -EINVAL: bad argument or option.
 * -ENOTCONN: the emulator went away.
 */
#ifndef MAPTBL_HW_H
#define MAPTBL_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/hw_regs.h>
#include <maptbl/maptbl.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open device (opaque). */
struct maptbl_hw;
/** A DMA buffer: host memory the device can reach (opaque). */
struct maptbl_hw_dma;
/** A function's request and completion rings, driven synchronously (opaque). */
struct maptbl_hw_queue;

/** Device identification and parameters (POD), from maptbl_hw_dev_info(). */
struct maptbl_hw_dev_info {
	uint32_t version;	/**< VERSION register: major << 16 | minor */
	uint32_t max_vfs;	/**< MAX_VFS */
	uint32_t num_vfs;	/**< NUM_VFS */
	uint32_t block_size;	/**< PF block size, bytes */
	uint64_t disk_blocks;	/**< PF DISK_BLOCKS */
	uint32_t max_xfer;	/**< MAX_XFER, blocks per request */
	uint32_t xcache_entries; /**< extent cache (BTLB) entries */
	uint32_t ncache_entries; /**< node cache entries */
	uint32_t reserved;
	const char *backend;	/**< "emu", "pci" or "vfio" (static string) */
};

/** One VF's state (POD), from maptbl_hw_vf_info(). */
struct maptbl_hw_vf_info {
	uint32_t vf;		/**< VF number, 1 .. 64 */
	bool exists;		/**< vf <= NUM_VFS */
	bool enabled;		/**< a table is latched */
	bool read_only;		/**< CTRL.READ_ONLY */
	bool stalled;		/**< a request waits for the host (fault_* describe it) */
	bool table_error;	/**< the last latch or walk found a bad table */
	uint32_t terr;		/**< enum maptbl_hw_terr */
	uint64_t table_base;	/**< TABLE_BASE */
	uint64_t table_len;	/**< TABLE_LEN */
	uint64_t virt_blocks;	/**< VIRT_BLOCKS */
	uint32_t block_size;	/**< BLOCK_SIZE */
	uint32_t generation;	/**< live-word generation of the last walk */
	uint64_t fault_lba;	/**< last fault: first block */
	uint32_t fault_count;	/**< last fault: blocks */
	uint32_t fault_info;	/**< last fault: MAPTBL_FAULT_INFO_* */
	char label[256];	/**< what the pusher named the table (its file), "" if unknown */
};

/** A function's counters (POD): c[MAPTBL_STAT_*] (REGISTERS.md §8). */
struct maptbl_hw_counters {
	uint64_t c[MAPTBL_STAT_COUNT];
};

/** One fault queue entry, decoded (POD). */
struct maptbl_hw_fault_entry {
	uint64_t lba;		/**< first faulting virtual block */
	uint32_t count;		/**< blocks */
	uint32_t tag;		/**< tag of the stalled request */
	uint32_t vf;		/**< VF 1 .. 64 */
	uint32_t reason;	/**< enum maptbl_hw_fault_reason */
	bool write;		/**< the request was a write */
	uint32_t seq;		/**< device-wide fault number */
};

/** One block request for maptbl_hw_queue_io() (in and out fields). */
struct maptbl_hw_io {
	uint32_t opcode;	/**< in: enum maptbl_hw_opcode */
	uint32_t flags;		/**< in: MAPTBL_REQ_F_FUA or 0 */
	uint64_t lba;		/**< in: first block of the function */
	uint64_t nblocks;	/**< in: blocks (0 for FLUSH); split as MAX_XFER needs */
	void *buf;		/**< in: nblocks * block size bytes (READ, WRITE); NULL otherwise */
	int timeout_ms;		/**< in: per device request; 0 waits for ever (a stalled write) */
	uint32_t status;	/**< out: enum maptbl_hw_status of the first failed piece, or 0 */
	uint64_t blocks;	/**< out: blocks done before the failure (all when 0 returned) */
};

/**
 * One asynchronous request for maptbl_hw_queue_post() / maptbl_hw_queue_submit() (in only: the
 * library copies it into the request ring).
 */
struct maptbl_hw_aio {
	uint32_t opcode;	/**< enum maptbl_hw_opcode */
	uint32_t flags;		/**< MAPTBL_REQ_F_FUA or 0 */
	uint64_t lba;		/**< first block of the function */
	uint32_t nblocks;	/**< 1 .. maptbl_hw_queue_max_blocks() (0 for FLUSH) */
	uint32_t reserved;	/**< must be 0 */
	void *buf;		/**< READ, WRITE: nblocks * block size bytes inside one DMA buffer of
				     the queue's handle (maptbl_hw_dma_ptr() + offset); else NULL */
	uint64_t user_data;	/**< handed back with the completion */
};

/** One completion, from maptbl_hw_queue_reap() (POD). */
struct maptbl_hw_aio_cpl {
	uint64_t user_data;	/**< the request's user_data */
	uint32_t status;	/**< enum maptbl_hw_status (0 OK) */
	uint32_t blocks;	/**< blocks done (all of them when OK) */
	int err;		/**< status as 0 or -errno, as maptbl_hw_queue_io() maps it */
	uint32_t reserved;
};

/** Options of maptbl_hw_open(). */
struct maptbl_hw_open_opts {
	size_t sz;		/**< sizeof(struct maptbl_hw_open_opts) */
	int timeout_ms;		/**< emulator replies; 0 = 30000 */
};
#define maptbl_hw_open_opts__last_field timeout_ms

/** Options of maptbl_hw_vf_push(). */
struct maptbl_hw_push_opts {
	size_t sz;		/**< sizeof(struct maptbl_hw_push_opts) */
	uint64_t virt_blocks;	/**< virtual disk size in blocks; 0 = the table's virtual_blocks */
	bool read_only;		/**< the VF refuses writes */
	bool check_crc;		/**< the device checks CRC32C of header and nodes */
	const char *label;	/**< kept with the table for maptbl_hw_vf_info() (a file name) */
};
#define maptbl_hw_push_opts__last_field label

/** @name maptbl_hw_dma_alloc() flags. @{ */
#define MAPTBL_HW_DMA_PERSIST 0x1u /**< emulator: outlive this process (until freed) */
/** @} */

/** @brief Set @p opts to the defaults. @return 0, or -EINVAL if @p sz is too small. */
MAPTBL_API int maptbl_hw_open_opts_init(struct maptbl_hw_open_opts *opts, size_t sz);
/** @brief Set @p opts to the defaults. @return 0, or -EINVAL if @p sz is too small. */
MAPTBL_API int maptbl_hw_push_opts_init(struct maptbl_hw_push_opts *opts, size_t sz);

/**
 * @brief Open the device @p dev ("emu:PATH", "pci:BDF", "vfio:BDF[,vf_token=UUID]") and check
 * its ID and major version.
 * @return 0 and *out; -ENODEV (no such device or socket), -EPROTO (not a maptbl device, another
 * major version), -EACCES (vfio: the PF's VFs are in use and no or another VF token was given),
 * -EBUSY (vfio: the IOMMU group is held or not viable), -EINVAL (malformed name or opts),
 * -ENOMEM.
 */
MAPTBL_API int maptbl_hw_open(const char *dev, const struct maptbl_hw_open_opts *opts,
			      struct maptbl_hw **out);

/** @brief Close @p hw: free its non-persistent DMA memory and queues. NULL is fine. */
MAPTBL_API void maptbl_hw_close(struct maptbl_hw *hw);

/** @brief Identification and parameters. @return 0 or -errno (register access failed). */
MAPTBL_API int maptbl_hw_dev_info(struct maptbl_hw *hw, struct maptbl_hw_dev_info *info);

/** @brief Read a 32-bit register of function @p fn (0 = PF). @return 0 or -errno. */
MAPTBL_API int maptbl_hw_read32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val);
/** @brief Read a 64-bit register. @return 0 or -errno. */
MAPTBL_API int maptbl_hw_read64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t *val);
/** @brief Write a 32-bit register. @return 0 or -errno. */
MAPTBL_API int maptbl_hw_write32(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val);
/** @brief Write a 64-bit register. @return 0 or -errno. */
MAPTBL_API int maptbl_hw_write64(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t val);

/**
 * @brief Wait up to @p timeout_ms (< 0: for ever) for an interrupt of function @p fn.
 * Interrupts are hints that may be coalesced: check the device state after any return.
 * @return 0 with the vectors seen in *vectors (bit n = MAPTBL_VEC_n), -ETIMEDOUT, -errno.
 */
MAPTBL_API int maptbl_hw_wait_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms,
				  uint32_t *vectors);

/**
 * @brief Make VFs 1 .. @p n exist (NUM_VFS). Lowering it disables the VFs above.
 * @return 0, -ENODEV (@p n > MAX_VFS), -errno.
 */
MAPTBL_API int maptbl_hw_set_num_vfs(struct maptbl_hw *hw, unsigned n);

/**
 * @brief Allocate @p len bytes of zeroed DMA memory, 4096-aligned.
 * @param flags MAPTBL_HW_DMA_PERSIST or 0.
 * @return 0 and *out (free it with maptbl_hw_dma_free()); -ENOMEM, -EINVAL, -errno.
 */
MAPTBL_API int maptbl_hw_dma_alloc(struct maptbl_hw *hw, size_t len, unsigned flags,
				   struct maptbl_hw_dma **out);
/**
 * @brief Release @p dma's handle. A persistent buffer stays allocated in the device's memory
 * (free it with maptbl_hw_dma_release()); others are freed. NULL is fine.
 */
MAPTBL_API void maptbl_hw_dma_free(struct maptbl_hw_dma *dma);
/** @brief Free the DMA memory at bus address @p addr, persistent or not. @return 0 or -errno. */
MAPTBL_API int maptbl_hw_dma_release(struct maptbl_hw *hw, uint64_t addr);
/** @brief The buffer's address in this process. */
MAPTBL_API void *maptbl_hw_dma_ptr(const struct maptbl_hw_dma *dma);
/** @brief The buffer's bus address, as the device sees it. */
MAPTBL_API uint64_t maptbl_hw_dma_addr(const struct maptbl_hw_dma *dma);
/** @brief The buffer's length in bytes. */
MAPTBL_API size_t maptbl_hw_dma_len(const struct maptbl_hw_dma *dma);

/**
 * @brief Push table @p t to VF @p vf: copy it into DMA memory (persistent where the backend
 * allows), program TABLE_BASE, TABLE_LEN, VIRT_BLOCKS, BLOCK_SIZE and CTRL, and check that the
 * device latched it. NUM_VFS is raised to @p vf if needed. A VF that already has a table gets
 * the new one with WALK_AGAIN (its rings keep running); its old table memory is freed.
 * @return 0; -ENODEV (no such VF), -EBADMSG (the device refused the table: logged why),
 * -EINVAL (bad opts, virt_blocks smaller than the table's or over 2^48), -ENOMEM, -errno.
 */
MAPTBL_API int maptbl_hw_vf_push(struct maptbl_hw *hw, unsigned vf, const struct maptbl_table *t,
				 const struct maptbl_hw_push_opts *opts);

/**
 * @brief Destroy VF @p vf's mapping: disable it (its rings stop, a stalled request is dropped)
 * and free its table memory.
 * @return 0, -ENODEV (no such VF), -ENOENT (it had no table), -errno.
 */
MAPTBL_API int maptbl_hw_vf_destroy(struct maptbl_hw *hw, unsigned vf);

/** @brief State of VF @p vf. @return 0, -ENODEV (@p vf not 1 .. MAX_VFS), -errno. */
MAPTBL_API int maptbl_hw_vf_info(struct maptbl_hw *hw, unsigned vf, struct maptbl_hw_vf_info *info);

/** @brief The lowest VF without a table. @return 0 and *vf, -ENOSPC (all in use), -errno. */
MAPTBL_API int maptbl_hw_vf_find_free(struct maptbl_hw *hw, unsigned *vf);

/**
 * @brief Write WALK_AGAIN of VF @p vf: retry the stalled request (@p fail false; the VF's table
 * registers are re-latched first), or fail it with NO_SPACE (@p fail true).
 * @return 0, -ENODEV, -EBADMSG (retry: the device refused the re-latched table), -errno.
 */
MAPTBL_API int maptbl_hw_vf_walk_again(struct maptbl_hw *hw, unsigned vf, bool fail);

/** @brief Counters of function @p fn (0 = PF). @return 0, -ENODEV, -errno. */
MAPTBL_API int maptbl_hw_counters(struct maptbl_hw *hw, unsigned fn, struct maptbl_hw_counters *c);
/** @brief Zero the counters of function @p fn. @return 0, -ENODEV, -errno. */
MAPTBL_API int maptbl_hw_counters_clear(struct maptbl_hw *hw, unsigned fn);
/** @brief Name of counter @p idx (MAPTBL_STAT_*), e.g. "requests"; NULL for a reserved slot. */
MAPTBL_API const char *maptbl_hw_stat_name(unsigned idx);
/** @brief Name of a completion status ("ok", "no-space", ...); "unknown" otherwise. */
MAPTBL_API const char *maptbl_hw_status_name(uint32_t status);
/** @brief Name of a table error (enum maptbl_hw_terr); "unknown" otherwise. */
MAPTBL_API const char *maptbl_hw_terr_name(uint32_t terr);

/**
 * @brief Start the PF fault queue with @p entries entries (a power of two 2 .. 4096) in this
 * handle's DMA memory; this handle then owns it until maptbl_hw_fault_stop() or close.
 * @return 0, -EBUSY (another owner has it running), -EINVAL, -ENOMEM, -errno.
 */
MAPTBL_API int maptbl_hw_fault_start(struct maptbl_hw *hw, unsigned entries);
/** @brief Stop the fault queue this handle started. @return 0 or -errno. */
MAPTBL_API int maptbl_hw_fault_stop(struct maptbl_hw *hw);
/**
 * @brief Copy up to @p max new fault entries, waiting up to @p timeout_ms (< 0 for ever, 0 not
 * at all) for the first. The entries stay in the queue until maptbl_hw_fault_ack().
 * The wait sleeps on the PF's FAULT interrupt (an edge on INT_STATUS.FAULT: clear that bit before
 * the call so that an entry posted after it interrupts the sleep; a wake-up that finds nothing
 * clears it itself before sleeping again), and looks at the queue at least every 100 ms.
 * @return the number copied (0 on timeout), -EINVAL (queue not started), -EIO (queue stopped
 * with an error), -errno.
 */
MAPTBL_API int maptbl_hw_fault_read(struct maptbl_hw *hw, struct maptbl_hw_fault_entry *out,
				    size_t max, int timeout_ms);
/** @brief Acknowledge the @p n oldest entries (FQ_HEAD). @return 0, -EINVAL, -errno. */
MAPTBL_API int maptbl_hw_fault_ack(struct maptbl_hw *hw, unsigned n);

/**
 * @brief Set up function @p fn's rings (@p entries, a power of two 2 .. 4096) and a bounce
 * buffer in this handle's DMA memory: the driver side of a VF (or the PF). @p fn must have a
 * block size (a VF needs a table).
 * @return 0 and *out, -ENODEV (no such function, or a VF without a table), -EBUSY (its rings
 * already run), -EIO (the device refused the rings), -ENOMEM, -errno.
 */
MAPTBL_API int maptbl_hw_queue_open(struct maptbl_hw *hw, unsigned fn, unsigned entries,
				    struct maptbl_hw_queue **out);
/** @brief Stop the rings and free the queue. NULL is fine. */
MAPTBL_API void maptbl_hw_queue_close(struct maptbl_hw_queue *q);
/** @brief Block size of the queue's function, bytes. */
MAPTBL_API uint32_t maptbl_hw_queue_block_size(const struct maptbl_hw_queue *q);
/** @brief Size of the queue's function (DISK_BLOCKS), blocks. */
MAPTBL_API uint64_t maptbl_hw_queue_blocks(const struct maptbl_hw_queue *q);

/**
 * @brief Do @p io synchronously: requests of at most MAX_XFER blocks (and the bounce buffer),
 * one after the other, each waited for (interrupt, then the completion entry in memory).
 * @return 0; -EROFS (READ_ONLY), -ENOSPC (NO_SPACE), -ERANGE (OUT_OF_RANGE), -ENODEV
 * (NOT_READY), -EIO (other statuses, or the rings stopped), -ETIMEDOUT, -EINVAL; io->status and
 * io->blocks say what the device answered.
 */
MAPTBL_API int maptbl_hw_queue_io(struct maptbl_hw_queue *q, struct maptbl_hw_io *io);


/* ---- the fault service (0.2): docs/REGISTERS.md §12 ---- */

/** A running fault service (opaque): maptbl_hw_serve_open(). */
struct maptbl_hw_serve;

/** What the mapper of maptbl_hw_serve_opts is asked for (POD). */
struct maptbl_hw_map_req {
	const char *path;	/**< the VF's backing file (its label, an absolute path) */
	uint32_t block_size;	/**< table block size, bytes */
	uint32_t flags;		/**< MAPTBL_HW_MAP_* */
	uint64_t lblk;		/**< first file block wanted */
	uint64_t nblocks;	/**< blocks wanted */
	uint64_t disk_id;	/**< the disk identity the table records, 0 = none */
	uint64_t disk_blocks;	/**< blocks of the disk the device serves (PF), 0 = unknown */
};

/**
 * maptbl_hw_map_req.flags: the service left no dirty page of its own in the file (its zeros were
 * direct writes, or it synced them): the mapper need not sync it (a sync commits the journal and
 * flushes the disk's cache; the service commits at the VF's flushes, REGISTERS.md §12.6). The
 * filesystem's view in memory is what counts. A mapper that syncs anyway is still right, only
 * slower.
 */
#define MAPTBL_HW_MAP_SYNCED 0x1u

/**
 * Mapper: hand every extent of @p req->path that overlaps [lblk, lblk + nblocks) to
 * @p add(@p sink, extent) in logical order, in table blocks, physical blocks absolute on the disk
 * the device serves, with MAPTBL_EXTENT_UNWRITTEN where the filesystem has not recorded data. It
 * checks the safety rules for a writable table in that range and that the file is on the disk
 * @p req->disk_id names. Return 0, -EINVAL when the range is refused (log why), or -errno. The
 * maptbl command's mapper is libmaptbl-fs's maptbl_fs_map_file(); libmaptbl-hw itself does not
 * depend on the filesystem adapters.
 */
typedef int (*maptbl_hw_map_fn)(void *ctx, const struct maptbl_hw_map_req *req,
				int (*add)(void *sink, const struct maptbl_extent *e), void *sink);

/** @name maptbl_hw_serve_event.flags @{ */
#define MAPTBL_HW_SERVE_FAILED 0x1u	/**< the request was failed (WALK_AGAIN = FAIL, NO_SPACE) */
#define MAPTBL_HW_SERVE_GREW 0x2u	/**< the file grew (its size follows the write) */
#define MAPTBL_HW_SERVE_COMPACTED 0x4u	/**< the table moved to a new, packed DMA buffer */
#define MAPTBL_HW_SERVE_SKIPPED 0x8u	/**< not served: VF not in the list (it stays stalled) */
#define MAPTBL_HW_SERVE_RESTORED 0x10u	/**< an absent (pruned) range was mapped again */
/** the fault waited for the service's thread to finish zeroing its range ahead of it */
#define MAPTBL_HW_SERVE_WAITED 0x20u
/** a COMMIT fault (the VF flushed): the file's allocations were committed (fdatasync) */
#define MAPTBL_HW_SERVE_COMMITTED 0x40u
/** @} */

/** One fault served, failed or skipped (POD), for maptbl_hw_serve_opts.report. */
struct maptbl_hw_serve_event {
	uint32_t vf;		/**< VF 1 .. 64 */
	uint32_t reason;	/**< enum maptbl_hw_fault_reason */
	bool write;		/**< a write fault */
	uint32_t flags;		/**< MAPTBL_HW_SERVE_* */
	int error;		/**< with MAPTBL_HW_SERVE_FAILED: -errno (-ENOSPC, -EDQUOT, -EINVAL...) */
	uint64_t lba;		/**< the fault: first block */
	uint32_t count;		/**< the fault: blocks */
	uint32_t generation;	/**< the table's generation after the service */
	uint64_t alloc_lba;	/**< blocks allocated through the filesystem: first */
	uint64_t alloc_blocks;	/**< ... and how many (0: none) */
	uint64_t file_size;	/**< the file's size after the service, bytes */
	uint64_t table_bytes;	/**< bytes the update stored into the table (nodes, live word) */
	uint64_t service_ns;	/**< from reading the fault to WALK_AGAIN */
};

/** Options of maptbl_hw_serve_open(). */
struct maptbl_hw_serve_opts {
	size_t sz;		/**< sizeof(struct maptbl_hw_serve_opts) */
	maptbl_hw_map_fn map;	/**< required: the filesystem's mapping (see maptbl_hw_map_fn) */
	void *map_ctx;		/**< passed to @c map */
	/** Called once per fault after it was answered (may be NULL). */
	void (*report)(void *ctx, const struct maptbl_hw_serve_event *ev);
	void *report_ctx;	/**< passed to @c report */
	uint64_t alloc_unit;	/**< bytes allocated per write fault (rounded to blocks); 0 = 1 MiB */
	const unsigned *vfs;	/**< VFs to serve (copied); NULL = every VF */
	size_t nr_vfs;		/**< entries of @c vfs */
	/**
	 * NULL, or per entry of @c vfs its backing file (copied; NULL entries allowed): used when
	 * this process cannot read the VF's note (pci:, vfio: tables of another handle).
	 */
	const char *const *files;
	unsigned fq_entries;	/**< fault queue entries (power of two 2 .. 4096); 0 = 64 */
	uint32_t reserved;	/**< zero */
};
#define maptbl_hw_serve_opts__last_field reserved

/** @brief Set @p opts to the defaults. @return 0, or -EINVAL if @p sz is too small. */
MAPTBL_API int maptbl_hw_serve_opts_init(struct maptbl_hw_serve_opts *opts, size_t sz);

/**
 * @brief Start the fault service on @p hw: take the PF fault queue (maptbl_hw_fault_start()).
 * The service keeps no state outside the device: a VF's backing file is its label, its table is
 * where TABLE_BASE and TABLE_LEN point (REGISTERS.md §12), so a service started in another
 * process than the one that created the VF, or restarted, finds everything it needs. For a
 * sequential writer the service starts a thread of its own that zeroes the writer's next ranges
 * in the backing file (REGISTERS.md §12.5); the mapper and the report callback are called from the
 * caller's thread only; maptbl_hw_serve_close() joins the thread.
 * @return 0 and *out; -EBUSY (another process services faults), -EINVAL (bad opts, no mapper),
 * -ENOMEM, -errno.
 */
MAPTBL_API int maptbl_hw_serve_open(struct maptbl_hw *hw, const struct maptbl_hw_serve_opts *opts,
				    struct maptbl_hw_serve **out);

/**
 * @brief Serve faults, waiting up to @p timeout_ms for one (0: only what is there; at most 1000,
 * and < 0 means 1000: the caller loops, and may stop between calls): every VF
 * stalled on a fault (from the fault queue, and on the first call and every second also from the
 * VFs' STALLED bits, so that a fault posted to a service that died is not lost) is answered:
 * a write into a hole or an unwritten range is allocated through the filesystem (fallocate
 * rounded to the allocation unit, doubled per fault while a write goes on front to back, up to
 * 32 units, clipped to the VF's size; unwritten blocks written with zeros through the
 * filesystem), re-mapped, the table updated in place and published, the VF's cache flushed and
 * WALK_AGAIN written; past the end of the file the file grows to the end of the stalled write.
 * ENOSPC, EDQUOT, a refused range or any other failure to map fails the request (WALK_AGAIN =
 * FAIL: the VF completes it with NO_SPACE). The filesystem commits the allocations at the VF's
 * next flush: a COMMIT fault (CTRL.COMMIT, REGISTERS.md §12.6) is answered with an fdatasync of
 * the file (a failure: WALK_AGAIN = FAIL_IO). Returns after the first batch of faults served,
 * so a caller can stop between faults.
 * @return the number of faults answered (0 on timeout); -EIO (the fault queue stopped with an
 * error), -ENOTCONN and other transport errors (the device is gone; nothing was answered).
 */
MAPTBL_API int maptbl_hw_serve_run(struct maptbl_hw_serve *s, int timeout_ms);

/**
 * @brief Stop the service: commit what it allocated and did not commit yet (fdatasync, then
 * CTRL.COMMIT cleared), release the fault queue and the tables it opened. NULL is fine.
 */
MAPTBL_API void maptbl_hw_serve_close(struct maptbl_hw_serve *s);

/**
 * @name Asynchronous I/O: several requests in flight on one queue.
 * Requests go into the request ring with maptbl_hw_queue_post() (memory only) and reach the
 * device with one doorbell write per maptbl_hw_queue_submit(); their completions come back with
 * maptbl_hw_queue_reap(), identified by user_data. Data buffers live in DMA memory of the queue's
 * handle (the device reads and writes them in place: no copy). Up to maptbl_hw_queue_depth()
 * requests may be outstanding (posted and not reaped). The device executes one function's
 * requests in ring order and completes them in that order (REGISTERS.md §6.2): a request stalled
 * on a fault (a write to a hole) holds back the requests posted after it until the host services
 * the fault (maptbl_hw_vf_walk_again()); requests before it complete. maptbl_hw_queue_io() refuses
 * to run (-EBUSY) while asynchronous requests are outstanding. Same threading rule as the handle.
 * @{
 */

/**
 * @brief Write @p n requests into the request ring without ringing the doorbell (a later
 * maptbl_hw_queue_submit() does). Each request is checked first (opcode, flags, block count,
 * range, buffer in DMA memory); a bad one is not posted.
 * @return the number posted (< @p n when the ring filled up or request [return value] is bad);
 * -EAGAIN if the ring is full (nothing posted), -EINVAL if the first request is bad (logged).
 */
MAPTBL_API int maptbl_hw_queue_post(struct maptbl_hw_queue *q, const struct maptbl_hw_aio *reqs,
				    unsigned n);

/**
 * @brief maptbl_hw_queue_post() of @p n requests (@p n may be 0), then one doorbell write (RQ_TAIL)
 * for everything posted so far.
 * @return the number of @p reqs posted, as maptbl_hw_queue_post(); -errno if the doorbell write
 * failed (-ENOTCONN: the emulator went away).
 */
MAPTBL_API int maptbl_hw_queue_submit(struct maptbl_hw_queue *q, const struct maptbl_hw_aio *reqs,
				      unsigned n);

/**
 * @brief Copy up to @p max completions into @p out, oldest first, waiting up to @p timeout_ms
 * (< 0 for ever, 0 not at all) for the first one when none is there. Waiting uses the
 * function's completion interrupt (acknowledged in INT_STATUS before sleeping).
 * @return the number copied (0: timeout, or nothing outstanding and @p timeout_ms 0);
 * -EIO (the rings stopped: the device found a bad ring entry or was reset), -EPROTO (a completion
 * names no outstanding request), -ENOTCONN, -errno.
 */
MAPTBL_API int maptbl_hw_queue_reap(struct maptbl_hw_queue *q, struct maptbl_hw_aio_cpl *out,
				    unsigned max, int timeout_ms);

/** @brief Requests posted and not yet reaped. */
MAPTBL_API unsigned maptbl_hw_queue_inflight(const struct maptbl_hw_queue *q);
/** @brief Most requests that may be outstanding at once (ring entries - 1). */
MAPTBL_API unsigned maptbl_hw_queue_depth(const struct maptbl_hw_queue *q);
/** @brief Most blocks one asynchronous request may carry (the device's MAX_XFER). */
MAPTBL_API uint32_t maptbl_hw_queue_max_blocks(const struct maptbl_hw_queue *q);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_HW_H */
