/* SPDX-License-Identifier: MIT */
/*
 * internal.h - state of the device model, shared by its files (never installed):
 *   mtdev.c  creation, reset, the register pages (mmio), interrupts, logging
 *   walk.c   the table walker (a second reader of FORMAT.md), node cache, extent cache (BTLB)
 *   queue.c  request/completion rings, request execution, faults and the fault queue
 * Everything here is `mtdev_` and hidden (the library is static and built with hidden
 * visibility).
 */
#ifndef MTDEV_INTERNAL_H
#define MTDEV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maptbl/format.h"
#include "maptbl/hw_regs.h"
#include "mtdev.h"

#define MTDEV_BOUNCE_SIZE (64u * 1024u)	/* data move granularity, REGISTERS.md §7 */
#define MTDEV_DEF_VFS	64u
#define MTDEV_DEF_PF_BS	4096u
#define MTDEV_DEF_XFER	2048u
#define MTDEV_DEF_XC	8u
#define MTDEV_DEF_NC	64u

#if defined(__GNUC__)
#define MTDEV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MTDEV_PRINTF(a, b)
#endif

/* Translation states (same numbers as enum maptbl_map_state of libmaptbl's walk.h). */
enum mtdev_state {
	MTDEV_HOLE = 0,
	MTDEV_MAPPED = 1,
	MTDEV_UNWRITTEN = 2,
	MTDEV_ABSENT = 3,
};

/* One translated run: [lba, lba + len) in state, mapped to pblk .. (MAPPED, UNWRITTEN). */
struct mtdev_xlat {
	uint64_t lba, len, pblk;
	unsigned state;
};

/* The table a VF latched (REGISTERS.md §5.1). */
struct mtdev_table {
	bool valid;
	bool check_crc;
	uint64_t base, len;		/* TABLE_BASE, TABLE_LEN */
	uint64_t virt_blocks;		/* VIRT_BLOCKS: what the VF shows */
	uint64_t tbl_blocks;		/* header virtual_blocks: beyond it all is hole */
	uint64_t disk_blocks;		/* header disk_blocks, 0 = not recorded */
	uint64_t incompat;
	uint64_t nslots;		/* table_len / node_size */
	uint32_t block_size, node_size;
};

/* A request being executed (parsed, checked, with its progress). */
struct mtdev_req {
	uint8_t opcode, flags;
	uint32_t tag;
	uint64_t lba;
	uint32_t nblocks;
	uint32_t nseg;
	uint32_t done;			/* blocks finished */
	struct { uint64_t addr; uint32_t len; } seg[MAPTBL_HW_MAX_SEGS];
};

/* A fault waiting to be written into the fault queue. */
struct mtdev_fault {
	uint64_t lba;
	uint32_t count, tag, seq;
	uint16_t info;
};

/* Registers of a VF configuration block that are plain storage. */
struct mtdev_vfcfg {
	uint64_t table_base, table_len, virt_blocks;
	uint32_t block_size, ctrl, status;
	uint64_t fault_lba;
	uint32_t fault_count, fault_info, generation, root;
};

/* One function: PF (num 0) or VF (num 1 .. nr_vfs). */
struct mtdev_fn {
	unsigned num;
	uint32_t int_status, int_mask;
	uint32_t q_ctrl, q_status;
	uint64_t rq_base, cq_base;
	uint32_t rq_size, cq_size, rq_tail, rq_head, cq_tail, cq_head;
	uint16_t cq_phase;
	uint64_t stats[MAPTBL_STAT_COUNT];
	bool busy;			/* cur holds a request consumed from the ring */
	bool stalled;			/* cur waits for WALK_AGAIN */
	bool fault_unposted;		/* fault not yet written into the fault queue */
	struct mtdev_fault fault;
	struct mtdev_req cur;
	/* VFs only */
	struct mtdev_vfcfg cfg;
	struct mtdev_table tbl;
};

struct mtdev_xc_entry {
	bool valid;
	unsigned fn;
	struct mtdev_xlat x;
};

/*
 * Node cache entry. Entries sit on one LRU list (most recent first; free entries at the tail)
 * and, when valid, in a hash chain by (function, node number). Links are index + 1, 0 = none.
 */
struct mtdev_nc_entry {
	bool valid;
	unsigned fn;
	uint32_t node;
	uint32_t size;			/* node_size of the cached node */
	uint8_t *buf;			/* allocated at the largest size seen */
	uint32_t cap;
	uint32_t hnext;			/* hash chain */
	uint32_t prev, next;		/* LRU list */
};

struct mtdev {
	struct mtdev_ops ops;
	void *ctx;
	unsigned max_vfs;
	uint64_t disk_bytes;
	uint32_t pf_block_size, max_xfer;
	unsigned xc_n, nc_n;

	/* PF-only registers */
	uint32_t num_vfs;
	uint64_t fq_base;
	uint32_t fq_size, fq_ctrl, fq_tail, fq_head, fq_status;
	uint16_t fq_phase;
	uint32_t stats_sel, last_error;
	uint32_t fault_seq;
	uint64_t completions;		/* completions posted, for mtdev_process() */

	struct mtdev_fn *fn;		/* [0] PF, [1 .. max_vfs] VFs */
	struct mtdev_xc_entry *xc;	/* FIFO: xc_next is the oldest */
	unsigned xc_next;
	struct mtdev_nc_entry *nc;
	uint32_t *nc_hash;		/* bucket heads (index + 1), nc_hmask + 1 of them */
	uint32_t nc_hmask;
	uint32_t lru_head, lru_tail;	/* index + 1 */
	uint8_t *bounce;		/* MTDEV_BOUNCE_SIZE */
	uint8_t *scratch;		/* node-sized scratch when there is no node cache */
	uint32_t scratch_cap;
	uint32_t crc_tab[256];		/* CRC32C, reflected 0x82F63B78 */
};

/* mtdev.c */
void mtdev_log(struct mtdev *d, enum mtdev_log_cat cat, const char *fmt, ...) MTDEV_PRINTF(3, 4);
void mtdev_raise(struct mtdev *d, struct mtdev_fn *f, unsigned vector);
void mtdev_error(struct mtdev *d, unsigned fn, unsigned src, unsigned code);
bool mtdev_range_ok(uint64_t addr, uint64_t len);

/* walk.c */
unsigned mtdev_table_latch(struct mtdev *d, struct mtdev_fn *f);
unsigned mtdev_translate(struct mtdev *d, struct mtdev_fn *f, uint64_t lba,
			 struct mtdev_xlat *out);
void mtdev_cache_flush(struct mtdev *d, unsigned fn);	/* fn 0 = every function */
void mtdev_cache_init(struct mtdev *d);		/* empty caches, after allocation */
uint32_t mtdev_crc32c(const struct mtdev *d, uint32_t crc, const void *buf, size_t len);

/* queue.c */
void mtdev_q_ctrl(struct mtdev *d, struct mtdev_fn *f, uint32_t val);
void mtdev_q_stop(struct mtdev *d, struct mtdev_fn *f, unsigned qerr);
void mtdev_q_drop(struct mtdev *d, struct mtdev_fn *f);
void mtdev_walk_again(struct mtdev *d, struct mtdev_fn *f, uint32_t val);
void mtdev_fq_ctrl(struct mtdev *d, uint32_t val);
void mtdev_fq_post(struct mtdev *d);
bool mtdev_fn_has_work(const struct mtdev *d, const struct mtdev_fn *f);

#endif /* MTDEV_INTERNAL_H */
