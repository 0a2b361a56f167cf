/* SPDX-License-Identifier: MIT */
/*
 * maptbl/hw_regs.h - the maptbl device's register map and in-memory ring formats
 * (docs/REGISTERS.md).
 *
 * This header is the C transcription of docs/REGISTERS.md; the two change together. The device
 * model (hw-iface/device), the emulator, the QEMU glue and the host driver (libmaptbl-hw) all
 * include it. It is freestanding: it needs only <stddef.h>, <stdint.h> and maptbl/format.h
 * (for the little-endian storage types), calls no function and allocates nothing.
 *
 * Two kinds of layout live here:
 *  - register pages (one BAR per function: the PF page and one page per VF). Registers are read
 *    and written with 4- or 8-byte MMIO accesses and their values are CPU integers; the structs
 *    struct maptbl_hw_fn_regs, struct maptbl_hw_pf_regs and struct maptbl_hw_vfcfg only document
 *    and check the offsets (_Static_assert), they are never memcpy'd.
 *  - rings in host memory (request, completion and fault entries). These are little-endian
 *    on-wire structs built from maptbl_le*_t byte arrays, like format.h.
 *
 * Field helpers (maptbl_hw_get()/maptbl_hw_set()) are pure functions and thread-safe.
 */
#ifndef MAPTBL_HW_REGS_H
#define MAPTBL_HW_REGS_H

#include <stddef.h>
#include <stdint.h>

#include "maptbl/format.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Identification (REGISTERS.md §2). @{ */
#define MAPTBL_HW_ID		0x4C42544Du	/**< REG_ID: bytes "MTBL" */
#define MAPTBL_HW_VERSION_MAJOR	1u
#define MAPTBL_HW_VERSION_MINOR	1u	/**< 1: CTRL.COMMIT, FAULT_COMMIT, WALK_AGAIN FAIL_IO */
#define MAPTBL_HW_VERSION	(MAPTBL_HW_VERSION_MAJOR << 16 | MAPTBL_HW_VERSION_MINOR)
#define MAPTBL_HW_MAX_VFS	64u		/**< VF numbers are 1 .. 64, function 0 is the PF */
#define MAPTBL_HW_PF_BAR_SIZE	0x2000u		/**< bytes of the PF register page (BAR0) */
#define MAPTBL_HW_VF_BAR_SIZE	0x1000u		/**< bytes of a VF register page (BAR0) */
#define MAPTBL_HW_RING_MIN	2u		/**< smallest ring, entries */
#define MAPTBL_HW_RING_MAX	4096u		/**< largest ring, entries */
#define MAPTBL_HW_MAX_SEGS	256u		/**< data segments per request */
#define MAPTBL_HW_RING_ALIGN	64u		/**< ring base addresses are multiples of this */
/** @} */

/**
 * @name Function page: registers every function has (PF and VF), offsets 0x000 .. 0x0FF.
 * (REGISTERS.md §3). 64-bit registers may be accessed as one 8-byte access or as two 4-byte
 * halves; 32-bit registers only with 4-byte accesses. @{
 */
#define MAPTBL_REG_ID		0x000	/**< RO 32: MAPTBL_HW_ID */
#define MAPTBL_REG_VERSION	0x004	/**< RO 32: major << 16 | minor */
#define MAPTBL_REG_FUNC		0x008	/**< RO 32: function number (0 = PF, 1..64 = VF) */
#define MAPTBL_REG_STATUS	0x00C	/**< RO 32: MAPTBL_FN_STATUS_* */
#define MAPTBL_REG_DISK_BLOCKS	0x010	/**< RO 64: disk size in blocks (VF: virtual size) */
#define MAPTBL_REG_BLOCK_SIZE	0x018	/**< RO 32: bytes per block */
#define MAPTBL_REG_MAX_XFER	0x01C	/**< RO 32: most blocks in one request */
#define MAPTBL_REG_INT_STATUS	0x020	/**< W1C 32: MAPTBL_INT_* pending */
#define MAPTBL_REG_INT_MASK	0x024	/**< RW 32: 1 = vector masked */
#define MAPTBL_REG_Q_CTRL	0x028	/**< RW 32: MAPTBL_Q_CTRL_* */
#define MAPTBL_REG_Q_STATUS	0x02C	/**< RO 32: MAPTBL_Q_STATUS_* */
#define MAPTBL_REG_RQ_BASE	0x030	/**< RW 64: request ring address */
#define MAPTBL_REG_CQ_BASE	0x038	/**< RW 64: completion ring address */
#define MAPTBL_REG_RQ_SIZE	0x040	/**< RW 32: request ring entries */
#define MAPTBL_REG_CQ_SIZE	0x044	/**< RW 32: completion ring entries */
#define MAPTBL_REG_RQ_TAIL	0x048	/**< RW 32: doorbell, host's producer index */
#define MAPTBL_REG_RQ_HEAD	0x04C	/**< RO 32: device's consumer index */
#define MAPTBL_REG_CQ_TAIL	0x050	/**< RO 32: device's producer index */
#define MAPTBL_REG_CQ_HEAD	0x054	/**< RW 32: doorbell, host's consumer index */
#define MAPTBL_REG_STATS	0x080	/**< RO 64 x 16: this function's counters */
/** @} */

/**
 * @name Counters: MAPTBL_REG_STATS + 8 * MAPTBL_STAT_* (own function), or, in the PF page,
 * MAPTBL_REG_PF_STATS_WIN + 8 * MAPTBL_STAT_* for the function selected in STATS_SEL. @{
 */
#define MAPTBL_STAT_REQUESTS	  0	/**< requests completed (any status) */
#define MAPTBL_STAT_READ_BLOCKS	  1	/**< blocks read and returned (including zeros) */
#define MAPTBL_STAT_WRITE_BLOCKS  2	/**< blocks written to the disk */
#define MAPTBL_STAT_ERRORS	  3	/**< requests completed with a status other than OK */
#define MAPTBL_STAT_WALKS	  4	/**< table walks (extent-cache misses that walked) */
#define MAPTBL_STAT_NODES	  5	/**< tree nodes used by walks (from DMA or node cache) */
#define MAPTBL_STAT_XC_HITS	  6	/**< extent cache (BTLB) hits */
#define MAPTBL_STAT_XC_MISSES	  7	/**< extent cache misses */
#define MAPTBL_STAT_NC_HITS	  8	/**< node cache hits */
#define MAPTBL_STAT_NC_MISSES	  9	/**< node cache misses = nodes fetched by DMA */
#define MAPTBL_STAT_FAULTS	 10	/**< faults raised (each stall, and each re-fault) */
#define MAPTBL_STAT_ZERO_BLOCKS	 11	/**< blocks read as zeros (hole, unwritten) */
#define MAPTBL_STAT_FLUSHES	 12	/**< flush requests */
#define MAPTBL_STAT_DMA_BYTES	 13	/**< data bytes moved by DMA (buffers, not rings) */
#define MAPTBL_STAT_COUNT	 16	/**< slots (13 .. 15 reserved, read 0) */
/** @} */

/** @name FUNC fields. @{ */
#define MAPTBL_FUNC_NUM_SHIFT	0
#define MAPTBL_FUNC_NUM_MASK	0xFFu
/** @} */

/** @name STATUS (function page) bits. @{ */
#define MAPTBL_FN_STATUS_ENABLED	0x1u	/**< PF: always; VF: the PF enabled its table */
#define MAPTBL_FN_STATUS_READ_ONLY	0x2u	/**< VF: writes complete with READ_ONLY */
#define MAPTBL_FN_STATUS_STALLED	0x4u	/**< VF: a request waits for the host (fault) */
#define MAPTBL_FN_STATUS_TABLE_ERROR	0x8u	/**< VF: the last walk found a bad table */
/** @} */

/** @name Interrupt vectors = INT_STATUS / INT_MASK bit numbers. @{ */
#define MAPTBL_VEC_CQ		0	/**< PF and VF: a completion was posted */
#define MAPTBL_VEC_FAULT	1	/**< PF only: a fault was raised */
#define MAPTBL_VEC_ERROR	2	/**< PF and VF: an error (see LAST_ERROR / Q_STATUS) */
#define MAPTBL_INT_CQ		(1u << MAPTBL_VEC_CQ)
#define MAPTBL_INT_FAULT	(1u << MAPTBL_VEC_FAULT)
#define MAPTBL_INT_ERROR	(1u << MAPTBL_VEC_ERROR)
#define MAPTBL_INT_ALL		(MAPTBL_INT_CQ | MAPTBL_INT_FAULT | MAPTBL_INT_ERROR)
#define MAPTBL_NR_VECTORS	3
/** @} */

/** @name Q_CTRL and Q_STATUS. @{ */
#define MAPTBL_Q_CTRL_ENABLE	0x1u	/**< 0 -> 1 checks and starts both rings; 1 -> 0 resets them */
#define MAPTBL_Q_STATUS_RUNNING	0x1u
#define MAPTBL_Q_STATUS_ERROR	0x2u	/**< the rings stopped: see the ERR field */
#define MAPTBL_Q_STATUS_ERR_SHIFT 8
#define MAPTBL_Q_STATUS_ERR_MASK  0xFFu	/**< MAPTBL_QERR_* */
/** @} */

/** Why the rings of a function stopped (Q_STATUS.ERR). */
enum maptbl_hw_qerr {
	MAPTBL_QERR_NONE = 0,
	MAPTBL_QERR_BAD_CONFIG = 1,	/**< size not a power of two in range, base misaligned */
	MAPTBL_QERR_BAD_DOORBELL = 2,	/**< a doorbell value >= ring size, or CQ_HEAD past CQ_TAIL */
	MAPTBL_QERR_DMA = 3,		/**< a ring entry could not be read or written */
};

/**
 * @name PF page: PF-only registers at 0x100 .. 0x1FF and the per-VF configuration blocks at
 * MAPTBL_REG_PF_VFCFG(n) (REGISTERS.md §4, §5). In a VF page these offsets are invalid. @{
 */
#define MAPTBL_REG_PF_MAX_VFS	0x100	/**< RO 32: VFs this device has (<= 64) */
#define MAPTBL_REG_PF_NUM_VFS	0x104	/**< RW 32: VFs 1 .. NUM_VFS exist */
#define MAPTBL_REG_PF_CACHE_FLUSH 0x108	/**< WO 32: MAPTBL_FLUSH_* */
#define MAPTBL_REG_PF_CACHE_INFO 0x10C	/**< RO 32: cache sizes, MAPTBL_CACHE_INFO_* */
#define MAPTBL_REG_PF_FQ_BASE	0x110	/**< RW 64: fault queue address */
#define MAPTBL_REG_PF_FQ_SIZE	0x118	/**< RW 32: fault queue entries */
#define MAPTBL_REG_PF_FQ_CTRL	0x11C	/**< RW 32: MAPTBL_FQ_CTRL_ENABLE */
#define MAPTBL_REG_PF_FQ_TAIL	0x120	/**< RO 32: device's producer index */
#define MAPTBL_REG_PF_FQ_HEAD	0x124	/**< RW 32: doorbell, host's consumer index */
#define MAPTBL_REG_PF_FQ_STATUS	0x128	/**< RO 32: MAPTBL_FQ_STATUS_* */
#define MAPTBL_REG_PF_STATS_SEL	0x12C	/**< RW 32: function shown in the stats window */
#define MAPTBL_REG_PF_STATS_CTRL 0x130	/**< WO 32: MAPTBL_STATS_CTRL_CLEAR */
#define MAPTBL_REG_PF_DEV_CTRL	0x134	/**< WO 32: MAPTBL_DEV_CTRL_RESET */
#define MAPTBL_REG_PF_LAST_ERROR 0x138	/**< RO 32: MAPTBL_LAST_ERROR_* */
#define MAPTBL_REG_PF_STATS_WIN	0x180	/**< RO 64 x 16: counters of function STATS_SEL */
#define MAPTBL_REG_PF_VFCFG_BASE 0x1000	/**< VF 1's configuration block */
#define MAPTBL_REG_PF_VFCFG_STRIDE 0x40	/**< bytes per VF configuration block */
/** Offset in the PF page of VF @p n's (1 .. 64) configuration block. */
#define MAPTBL_REG_PF_VFCFG(n)	(MAPTBL_REG_PF_VFCFG_BASE + ((n) - 1) * MAPTBL_REG_PF_VFCFG_STRIDE)
/** @} */

/** @name Registers of a VF configuration block (offsets inside the block). @{ */
#define MAPTBL_VFCFG_TABLE_BASE	 0x00	/**< RW 64: DMA address of table byte 0, 8-aligned */
#define MAPTBL_VFCFG_TABLE_LEN	 0x08	/**< RW 64: table bytes (= header table_len) */
#define MAPTBL_VFCFG_VIRT_BLOCKS 0x10	/**< RW 64: virtual disk size the VF shows, blocks */
#define MAPTBL_VFCFG_BLOCK_SIZE	 0x18	/**< RW 32: bytes per block (= header block_size) */
#define MAPTBL_VFCFG_CTRL	 0x1C	/**< RW 32: MAPTBL_VFCFG_CTRL_* */
#define MAPTBL_VFCFG_STATUS	 0x20	/**< RO 32: MAPTBL_VFCFG_STATUS_* */
#define MAPTBL_VFCFG_WALK_AGAIN	 0x24	/**< WO 32: MAPTBL_WALK_AGAIN_* */
#define MAPTBL_VFCFG_FAULT_LBA	 0x28	/**< RO 64: first block of the pending fault */
#define MAPTBL_VFCFG_FAULT_COUNT 0x30	/**< RO 32: blocks of the pending fault */
#define MAPTBL_VFCFG_FAULT_INFO	 0x34	/**< RO 32: MAPTBL_FAULT_INFO_* of the pending fault */
#define MAPTBL_VFCFG_GENERATION	 0x38	/**< RO 32: live-word generation seen by the last walk */
#define MAPTBL_VFCFG_ROOT	 0x3C	/**< RO 32: live-word root seen by the last walk */
/** @} */

/** @name VF configuration CTRL bits. @{ */
#define MAPTBL_VFCFG_CTRL_ENABLE    0x1u	/**< 0 -> 1: latch and check the table */
#define MAPTBL_VFCFG_CTRL_READ_ONLY 0x2u	/**< writes complete with MAPTBL_ST_READ_ONLY */
#define MAPTBL_VFCFG_CTRL_CHECK_CRC 0x4u	/**< check header and node CRC32C */
/**
 * The host has allocations of this VF's file that its filesystem has not committed: a FLUSH, and
 * a FUA write before its flush, stall with a MAPTBL_FAULT_COMMIT fault while it is set
 * (REGISTERS.md §5, §12.6). Only the host sets and clears it; ENABLE 1 -> 0 clears it.
 */
#define MAPTBL_VFCFG_CTRL_COMMIT    0x8u
#define MAPTBL_VFCFG_CTRL_MASK	    0xFu
/** @} */

/** @name VF configuration STATUS fields. @{ */
#define MAPTBL_VFCFG_STATUS_ENABLED	0x1u
#define MAPTBL_VFCFG_STATUS_STALLED	0x2u	/**< a request waits: FAULT_* are valid */
#define MAPTBL_VFCFG_STATUS_TABLE_ERROR	0x4u	/**< see the TERR field */
#define MAPTBL_VFCFG_STATUS_TERR_SHIFT	8
#define MAPTBL_VFCFG_STATUS_TERR_MASK	0xFFu	/**< enum maptbl_hw_terr */
/** @} */

/** Table errors (VF configuration STATUS.TERR, LAST_ERROR.CODE for MAPTBL_ERRSRC_TABLE). */
enum maptbl_hw_terr {
	MAPTBL_TERR_NONE = 0,
	MAPTBL_TERR_DMA = 1,		/**< a table read failed (bad TABLE_BASE/TABLE_LEN) */
	MAPTBL_TERR_BAD_HEADER = 2,	/**< header malformed or its CRC wrong */
	MAPTBL_TERR_UNSUPPORTED = 3,	/**< table version or incompat feature unknown */
	MAPTBL_TERR_BAD_NODE = 4,	/**< a node on the walk path is malformed */
	MAPTBL_TERR_BAD_CRC = 5,	/**< a node's CRC32C is wrong (CHECK_CRC) */
	MAPTBL_TERR_MISMATCH = 6,	/**< header disagrees with TABLE_LEN or BLOCK_SIZE */
	MAPTBL_TERR_BAD_CONFIG = 7,	/**< TABLE_BASE misaligned, base + len wraps, len 0 */
	MAPTBL_TERR_PAST_DISK = 8,	/**< an extent maps past the end of the disk */
};

/** @name WALK_AGAIN values. @{ */
#define MAPTBL_WALK_AGAIN_RETRY	1u	/**< re-latch the table, flush the VF's cache, retry */
#define MAPTBL_WALK_AGAIN_FAIL	2u	/**< complete the stalled request with MAPTBL_ST_NO_SPACE */
#define MAPTBL_WALK_AGAIN_FAIL_IO 3u	/**< complete the stalled request with MAPTBL_ST_IO_ERROR */
/** @} */

/** @name CACHE_FLUSH value. @{ */
#define MAPTBL_FLUSH_ALL	0x80000000u	/**< flush every function's entries */
#define MAPTBL_FLUSH_VF_SHIFT	0
#define MAPTBL_FLUSH_VF_MASK	0x7Fu		/**< else: flush VF n (1 .. 64) only */
/** @} */

/** @name CACHE_INFO fields. @{ */
#define MAPTBL_CACHE_INFO_XC_SHIFT 0
#define MAPTBL_CACHE_INFO_XC_MASK  0xFFFFu	/**< extent cache (BTLB) entries */
#define MAPTBL_CACHE_INFO_NC_SHIFT 16
#define MAPTBL_CACHE_INFO_NC_MASK  0xFFFFu	/**< node cache entries */
/** @} */

/** @name Fault queue control and status. @{ */
#define MAPTBL_FQ_CTRL_ENABLE	 0x1u	/**< 0 -> 1 checks and starts; 1 -> 0 resets indices */
#define MAPTBL_FQ_STATUS_RUNNING 0x1u
#define MAPTBL_FQ_STATUS_FULL	 0x2u	/**< a fault waits for room in the queue */
#define MAPTBL_FQ_STATUS_ERROR	 0x4u	/**< stopped: bad config, doorbell or DMA (ERR field) */
#define MAPTBL_FQ_STATUS_ERR_SHIFT 8
#define MAPTBL_FQ_STATUS_ERR_MASK  0xFFu	/**< enum maptbl_hw_qerr */
/** @} */

/** @name STATS_CTRL, DEV_CTRL. @{ */
#define MAPTBL_STATS_CTRL_CLEAR	0x1u	/**< zero the counters of function STATS_SEL */
#define MAPTBL_DEV_CTRL_RESET	0x1u	/**< reset the whole device (REGISTERS.md §7) */
/** @} */

/** @name LAST_ERROR fields. @{ */
#define MAPTBL_LAST_ERROR_FN_SHIFT   0
#define MAPTBL_LAST_ERROR_FN_MASK    0xFFu	/**< function the error belongs to */
#define MAPTBL_LAST_ERROR_CODE_SHIFT 8
#define MAPTBL_LAST_ERROR_CODE_MASK  0xFFu	/**< maptbl_hw_terr or maptbl_hw_qerr */
#define MAPTBL_LAST_ERROR_SRC_SHIFT  16
#define MAPTBL_LAST_ERROR_SRC_MASK   0xFu	/**< enum maptbl_hw_errsrc */
/** @} */

/** What LAST_ERROR.CODE refers to. */
enum maptbl_hw_errsrc {
	MAPTBL_ERRSRC_NONE = 0,
	MAPTBL_ERRSRC_TABLE = 1,	/**< CODE is a maptbl_hw_terr */
	MAPTBL_ERRSRC_RING = 2,		/**< CODE is a maptbl_hw_qerr of FN's rings */
	MAPTBL_ERRSRC_FQ = 3,		/**< CODE is a maptbl_hw_qerr of the fault queue */
};

/** @brief Field (@p shift, @p mask) of register value @p v. */
static inline uint32_t maptbl_hw_get(uint32_t v, unsigned shift, uint32_t mask)
{
	return (v >> shift) & mask;
}

/** @brief @p v with field (@p shift, @p mask) replaced by @p x (excess bits of @p x dropped). */
static inline uint32_t maptbl_hw_set(uint32_t v, unsigned shift, uint32_t mask, uint32_t x)
{
	return (v & ~(mask << shift)) | ((x & mask) << shift);
}

/** Register page layout common to every function (documentation and offset checks). */
struct maptbl_hw_fn_regs {
	uint32_t id, version, func, status;
	uint64_t disk_blocks;
	uint32_t block_size, max_xfer;
	uint32_t int_status, int_mask, q_ctrl, q_status;
	uint64_t rq_base, cq_base;
	uint32_t rq_size, cq_size, rq_tail, rq_head, cq_tail, cq_head;
	uint32_t reserved0[10];
	uint64_t stats[MAPTBL_STAT_COUNT];
};

/** One VF configuration block in the PF page. */
struct maptbl_hw_vfcfg {
	uint64_t table_base, table_len, virt_blocks;
	uint32_t block_size, ctrl, status, walk_again;
	uint64_t fault_lba;
	uint32_t fault_count, fault_info, generation, root;
};

/** The PF page. */
struct maptbl_hw_pf_regs {
	struct maptbl_hw_fn_regs fn;
	uint32_t max_vfs, num_vfs, cache_flush, cache_info;
	uint64_t fq_base;
	uint32_t fq_size, fq_ctrl, fq_tail, fq_head, fq_status, stats_sel, stats_ctrl, dev_ctrl;
	uint32_t last_error, reserved1[17];
	uint64_t stats_win[MAPTBL_STAT_COUNT];
	uint8_t reserved2[MAPTBL_REG_PF_VFCFG_BASE - 0x200];
	struct maptbl_hw_vfcfg vf[MAPTBL_HW_MAX_VFS];
};

_Static_assert(sizeof(struct maptbl_hw_fn_regs) == 0x100, "function page common part");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, status) == MAPTBL_REG_STATUS, "STATUS");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, disk_blocks) == MAPTBL_REG_DISK_BLOCKS, "DISK");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, max_xfer) == MAPTBL_REG_MAX_XFER, "MAX_XFER");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, int_status) == MAPTBL_REG_INT_STATUS, "INT");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, q_status) == MAPTBL_REG_Q_STATUS, "Q_STATUS");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, rq_base) == MAPTBL_REG_RQ_BASE, "RQ_BASE");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, cq_base) == MAPTBL_REG_CQ_BASE, "CQ_BASE");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, rq_size) == MAPTBL_REG_RQ_SIZE, "RQ_SIZE");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, cq_head) == MAPTBL_REG_CQ_HEAD, "CQ_HEAD");
_Static_assert(offsetof(struct maptbl_hw_fn_regs, stats) == MAPTBL_REG_STATS, "STATS");
_Static_assert(sizeof(struct maptbl_hw_vfcfg) == MAPTBL_REG_PF_VFCFG_STRIDE, "VF config block");
_Static_assert(offsetof(struct maptbl_hw_vfcfg, block_size) == MAPTBL_VFCFG_BLOCK_SIZE, "BS");
_Static_assert(offsetof(struct maptbl_hw_vfcfg, walk_again) == MAPTBL_VFCFG_WALK_AGAIN, "WALK");
_Static_assert(offsetof(struct maptbl_hw_vfcfg, fault_lba) == MAPTBL_VFCFG_FAULT_LBA, "F_LBA");
_Static_assert(offsetof(struct maptbl_hw_vfcfg, fault_info) == MAPTBL_VFCFG_FAULT_INFO, "F_INFO");
_Static_assert(offsetof(struct maptbl_hw_vfcfg, root) == MAPTBL_VFCFG_ROOT, "ROOT");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, max_vfs) == MAPTBL_REG_PF_MAX_VFS, "MAX_VFS");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, fq_base) == MAPTBL_REG_PF_FQ_BASE, "FQ_BASE");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, fq_head) == MAPTBL_REG_PF_FQ_HEAD, "FQ_HEAD");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, dev_ctrl) == MAPTBL_REG_PF_DEV_CTRL, "DEV_CTRL");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, last_error) == MAPTBL_REG_PF_LAST_ERROR, "LE");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, stats_win) == MAPTBL_REG_PF_STATS_WIN, "WIN");
_Static_assert(offsetof(struct maptbl_hw_pf_regs, vf) == MAPTBL_REG_PF_VFCFG_BASE, "VFCFG");
_Static_assert(sizeof(struct maptbl_hw_pf_regs) == MAPTBL_HW_PF_BAR_SIZE, "PF page size");

/* ---- Rings in host memory (REGISTERS.md §6). All fields little-endian. ---- */

/** Request opcodes. */
enum maptbl_hw_opcode {
	MAPTBL_OP_READ = 1,		/**< disk -> buffers */
	MAPTBL_OP_WRITE = 2,		/**< buffers -> disk */
	MAPTBL_OP_FLUSH = 3,		/**< make completed writes durable; lba, nblocks, nseg 0 */
	MAPTBL_OP_WRITE_ZEROES = 4,	/**< zero blocks; no buffers (nseg 0) */
};

/** @name Request flags. @{ */
#define MAPTBL_REQ_F_INDIRECT	0x01u	/**< segments are at @c sgl, not inline */
#define MAPTBL_REQ_F_FUA	0x02u	/**< write: flush the disk before completing */
#define MAPTBL_REQ_F_KNOWN	0x03u
#define MAPTBL_REQ_INLINE_SEGS	2u	/**< segments that fit in the entry */
/** @} */

/** One data buffer: @c len bytes of host memory at @c addr (16 bytes). */
struct maptbl_hw_seg {
	maptbl_le64_t addr;
	maptbl_le32_t len;		/**< bytes, >= 1 */
	maptbl_le32_t reserved;		/**< must be zero */
};

/** Request ring entry (64 bytes). */
struct maptbl_hw_req {
	uint8_t opcode;			/**< enum maptbl_hw_opcode */
	uint8_t flags;			/**< MAPTBL_REQ_F_* */
	maptbl_le16_t nseg;		/**< segments, 0 .. MAPTBL_HW_MAX_SEGS */
	maptbl_le32_t tag;		/**< copied to the completion */
	maptbl_le64_t lba;		/**< first block (VF: virtual, PF: physical) */
	maptbl_le32_t nblocks;		/**< blocks, 1 .. MAX_XFER (0 for FLUSH) */
	maptbl_le32_t reserved0;	/**< must be zero */
	maptbl_le64_t sgl;		/**< INDIRECT: address of nseg struct maptbl_hw_seg */
	struct maptbl_hw_seg seg[MAPTBL_REQ_INLINE_SEGS]; /**< inline segments (no INDIRECT) */
};

/** Completion statuses. */
enum maptbl_hw_status {
	MAPTBL_ST_OK = 0,
	MAPTBL_ST_BAD_OPCODE = 1,	/**< unknown opcode */
	MAPTBL_ST_BAD_REQUEST = 2,	/**< reserved bits, nseg, lengths or nblocks wrong */
	MAPTBL_ST_OUT_OF_RANGE = 3,	/**< lba + nblocks past DISK_BLOCKS */
	MAPTBL_ST_DMA_ERROR = 4,	/**< a data buffer or the segment list is not reachable */
	MAPTBL_ST_TABLE_ERROR = 5,	/**< the VF's table is bad (VF config STATUS.TERR) */
	MAPTBL_ST_READ_ONLY = 6,	/**< write or write-zeroes on a read-only VF */
	MAPTBL_ST_IO_ERROR = 7,		/**< the disk failed, or a mapping points past the disk */
	MAPTBL_ST_ABORTED = 8,		/**< the VF or its rings were disabled while it waited */
	MAPTBL_ST_NO_SPACE = 9,		/**< the host failed the fault (WALK_AGAIN = FAIL) */
	MAPTBL_ST_NOT_READY = 10,	/**< the VF has no enabled table */
};

/** @name Completion flags. @{ */
#define MAPTBL_CPL_F_PHASE	0x0001u	/**< 1 on the first pass over the ring, then flips */
/** @} */

/** Completion ring entry (16 bytes). */
struct maptbl_hw_cpl {
	maptbl_le32_t tag;		/**< the request's tag */
	maptbl_le16_t status;		/**< enum maptbl_hw_status */
	maptbl_le16_t flags;		/**< MAPTBL_CPL_F_PHASE */
	maptbl_le32_t blocks;		/**< blocks transferred before the status (all when OK) */
	maptbl_le16_t rq_head;		/**< RQ_HEAD after this request was consumed */
	maptbl_le16_t reserved;		/**< zero */
};

/** Fault reasons. */
enum maptbl_hw_fault_reason {
	MAPTBL_FAULT_HOLE = 1,		/**< write to a hole (or past the table's virtual size) */
	MAPTBL_FAULT_UNWRITTEN = 2,	/**< write to an unwritten extent */
	MAPTBL_FAULT_ABSENT = 3,	/**< read or write inside a pruned subtree */
	MAPTBL_FAULT_COMMIT = 4,	/**< flush (or FUA write) while CTRL.COMMIT is set; lba, count 0 */
};

/** @name Fault info (fault entry @c info, VF config FAULT_INFO). @{ */
#define MAPTBL_FAULT_INFO_WRITE	0x0001u	/**< the request was a write (else a read) */
#define MAPTBL_FAULT_INFO_REASON_SHIFT 4
#define MAPTBL_FAULT_INFO_REASON_MASK  0xFu	/**< enum maptbl_hw_fault_reason */
/** @} */

/** @name Fault entry flags. @{ */
#define MAPTBL_FAULT_F_PHASE	0x0001u	/**< as MAPTBL_CPL_F_PHASE */
/** @} */

/** Fault queue entry (32 bytes), written by the device into the PF's fault queue. */
struct maptbl_hw_fault {
	maptbl_le64_t lba;		/**< first faulting virtual block */
	maptbl_le32_t count;		/**< blocks of the faulting run inside the request */
	maptbl_le32_t tag;		/**< tag of the stalled request */
	maptbl_le16_t vf;		/**< VF number, 1 .. 64 */
	maptbl_le16_t info;		/**< MAPTBL_FAULT_INFO_* */
	maptbl_le32_t seq;		/**< device-wide fault sequence number, from 1 */
	maptbl_le16_t flags;		/**< MAPTBL_FAULT_F_PHASE */
	uint8_t reserved[6];		/**< zero */
};

_Static_assert(sizeof(struct maptbl_hw_seg) == 16, "segment size");
_Static_assert(sizeof(struct maptbl_hw_req) == 64, "request entry size");
_Static_assert(offsetof(struct maptbl_hw_req, tag) == 4, "req tag");
_Static_assert(offsetof(struct maptbl_hw_req, lba) == 8, "req lba");
_Static_assert(offsetof(struct maptbl_hw_req, nblocks) == 16, "req nblocks");
_Static_assert(offsetof(struct maptbl_hw_req, sgl) == 24, "req sgl");
_Static_assert(offsetof(struct maptbl_hw_req, seg) == 32, "req seg");
_Static_assert(sizeof(struct maptbl_hw_cpl) == 16, "completion entry size");
_Static_assert(offsetof(struct maptbl_hw_cpl, blocks) == 8, "cpl blocks");
_Static_assert(offsetof(struct maptbl_hw_cpl, rq_head) == 12, "cpl rq_head");
_Static_assert(sizeof(struct maptbl_hw_fault) == 32, "fault entry size");
_Static_assert(offsetof(struct maptbl_hw_fault, vf) == 16, "fault vf");
_Static_assert(offsetof(struct maptbl_hw_fault, seq) == 20, "fault seq");
_Static_assert(offsetof(struct maptbl_hw_fault, flags) == 24, "fault flags");

/** @brief Reason (enum maptbl_hw_fault_reason) of a fault info value. */
static inline unsigned maptbl_hw_fault_reason(uint32_t info)
{
	return maptbl_hw_get(info, MAPTBL_FAULT_INFO_REASON_SHIFT, MAPTBL_FAULT_INFO_REASON_MASK);
}

/** @brief Fault info value for @p reason and a write (@p write != 0) or a read. */
static inline uint16_t maptbl_hw_fault_info(unsigned reason, int write)
{
	return (uint16_t)maptbl_hw_set(write ? MAPTBL_FAULT_INFO_WRITE : 0,
				       MAPTBL_FAULT_INFO_REASON_SHIFT,
				       MAPTBL_FAULT_INFO_REASON_MASK, reason);
}

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_HW_REGS_H */
