/* SPDX-License-Identifier: MIT */
/*
 * devharness.h - a host around the device model for tests and the fuzzer: fake host memory (DMA),
 * a fake disk, interrupt and log recording, and an audit of disk accesses. It drives the model only
 * through mtdev_mmio_read/write and mtdev_process, with the hw_regs.h offsets, as a driver would.
 *
 * The audit: every disk access a VF's request causes must fall inside the written extents of the
 * table the test gave that VF (devh_allow()); anything else counts in h->audit_violations. Every
 * disk access must lie inside the disk (h->disk_oob otherwise). Memory: with vf_win set, VF n may
 * reach only its own window (an IOMMU view); the PF reaches all of memory.
 */
#ifndef MAPTBL_DEVHARNESS_H
#define MAPTBL_DEVHARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/maptbl.h>

#include "mtdev.h"

#define DEVH_MEM_BASE	UINT64_C(0x10000000)	/* host memory starts here; 0 is not memory */
#define DEVH_FNS	(MAPTBL_HW_MAX_VFS + 1)

struct devh_ring {
	uint64_t rq, cq;
	uint32_t rq_size, cq_size, rq_tail, cq_head;
	uint16_t phase;
};

struct devh_extent_set {
	uint64_t *start, *end;		/* sorted, disjoint physical ranges (blocks) */
	size_t n;
	uint32_t block_size;
};

struct devh {
	struct mtdev *d;
	uint8_t *mem;
	uint64_t mem_size, pf_next;	/* bump allocator for the PF area */
	uint64_t vf_win;		/* bytes per VF window at the end of memory; 0 = none */
	uint64_t vf_next[DEVH_FNS];
	uint8_t *disk;
	uint64_t disk_size;
	unsigned irqs[DEVH_FNS][MAPTBL_NR_VECTORS];
	unsigned fault_irq_early;	/* FAULT interrupts raised with no new entry in the queue */
	unsigned guest_errors, logs;
	bool verbose;
	bool audit;
	bool audit_off[DEVH_FNS];	/* no audit for this VF (a table libmaptbl rejects) */
	struct devh_extent_set allowed[DEVH_FNS];
	unsigned audit_violations, disk_oob, dma_oob;
	uint64_t disk_reads, disk_writes, disk_flushes;
	int fail_disk;			/* > 0: the next disk access fails */
	struct devh_ring ring[DEVH_FNS];
	uint64_t fq;			/* fault queue address */
	uint32_t fq_size, fq_head;
	uint16_t fq_phase;
};

struct devh_cfg {
	unsigned nr_vfs;
	uint64_t mem_size;
	uint64_t vf_win;
	uint64_t disk_size;
	unsigned xc, nc;		/* cache sizes (0 = defaults) */
	bool no_xc, no_nc;
	uint32_t pf_block_size;
	uint32_t max_xfer;
};

/* 0 or -errno. */
int devh_init(struct devh *h, const struct devh_cfg *cfg);
void devh_fini(struct devh *h);

uint32_t rd32(struct devh *h, unsigned fn, uint32_t off);
uint64_t rd64(struct devh *h, unsigned fn, uint32_t off);
void wr32(struct devh *h, unsigned fn, uint32_t off, uint32_t v);
void wr64(struct devh *h, unsigned fn, uint32_t off, uint64_t v);

/* Host memory: allocate @len bytes aligned to @align in function @fn's area (0 = PF). */
uint64_t devh_alloc(struct devh *h, unsigned fn, uint64_t len, uint64_t align);
/* Pointer to host memory at bus address @addr (NULL unless [addr, addr + len) is memory). */
void *devh_ptr(struct devh *h, uint64_t addr, uint64_t len);

/* Copy a table into PF memory; returns its bus address. */
uint64_t devh_push(struct devh *h, const void *tbl, size_t len);
/* Replace VF @vf's allowed physical ranges by @t's written extents (the audit). */
void devh_allow(struct devh *h, unsigned vf, const struct maptbl_table *t);
/* Program VF @vf (NUM_VFS raised if needed) with a table at @addr and enable it. Returns the
 * VF configuration STATUS. */
uint32_t devh_vf_enable(struct devh *h, unsigned vf, uint64_t addr, uint64_t len,
			uint64_t virt_blocks, uint32_t block_size, uint32_t ctrl);
/* devh_push + devh_allow + devh_vf_enable for a libmaptbl table, virtual size from the table. */
uint32_t devh_vf_table(struct devh *h, unsigned vf, const struct maptbl_table *t, uint32_t ctrl);
/* Set up and enable function @fn's rings (memory in its own area). Returns Q_STATUS. */
uint32_t devh_rings(struct devh *h, unsigned fn, uint32_t rq_size, uint32_t cq_size);
/* Set up and enable the fault queue. Returns FQ_STATUS. */
uint32_t devh_fq(struct devh *h, uint32_t size);

/* Write request @q at the ring tail and ring the doorbell. */
void devh_submit(struct devh *h, unsigned fn, const struct maptbl_hw_req *q);
/* Reap one completion (phase tag); false when none is there. */
bool devh_reap(struct devh *h, unsigned fn, struct maptbl_hw_cpl *c);
/* Reap one fault entry; false when none is there. */
bool devh_fault(struct devh *h, struct maptbl_hw_fault *f);

/* A read/write/write-zeroes of @nblocks at @lba with one buffer at @buf (0 for none): submit,
 * process, reap. Returns the status, or -1 when no completion came (stalled). */
int devh_io(struct devh *h, unsigned fn, unsigned op, uint64_t lba, uint32_t nblocks, uint64_t buf,
	    uint32_t *blocks);
/* Build a request entry with one inline segment (or none when len is 0). */
void devh_req(struct maptbl_hw_req *q, unsigned op, uint32_t tag, uint64_t lba, uint32_t nblocks,
	      uint64_t buf, uint32_t len);

#endif
