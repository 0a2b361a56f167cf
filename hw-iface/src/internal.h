/* SPDX-License-Identifier: MIT */
/*
 * internal.h - libmaptbl-hw internals: the backend interface (STYLE.md §12) and the handle.
 */
#ifndef MAPTBL_HW_INTERNAL_H
#define MAPTBL_HW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maptbl/hw.h"

#define HW_MAGIC 0x4d544857u /* "MTHW" */

/*
 * A backend. Register accessors return 0 or -errno (a transport failure: the device itself never
 * fails an access, a bad one reads all ones). dma_alloc fills *vaddr and *addr (bus address) and
 * may keep private data in *priv for dma_free. dma_map gives this process's view of bus range
 * [addr, addr + len) if it can reach it (NULL otherwise). wait_irq waits for an interrupt of fn.
 */
struct maptbl_hw_ops {
	const char *name;
	int (*open)(struct maptbl_hw *hw, const char *arg);
	void (*close)(struct maptbl_hw *hw);
	int (*read32)(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t *val);
	int (*read64)(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t *val);
	int (*write32)(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val);
	int (*write64)(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint64_t val);
	int (*dma_alloc)(struct maptbl_hw *hw, size_t len, unsigned flags, void **vaddr,
			 uint64_t *addr, void **priv);
	void (*dma_free)(struct maptbl_hw *hw, void *vaddr, uint64_t addr, size_t len, void *priv,
			 bool keep);
	/* Frees an allocation by bus address (persistent ones too); -ENOENT if none starts there. */
	int (*dma_release)(struct maptbl_hw *hw, uint64_t addr);
	void *(*dma_map)(struct maptbl_hw *hw, uint64_t addr, size_t len);
	int (*wait_irq)(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors);
	/*
	 * A posted 32-bit write (doorbells, INT_STATUS): sent without waiting for its completion,
	 * as a PCIe memory write is; a later access of the same handle is ordered after it. NULL:
	 * write32 is used. A failure may only be reported by a later access.
	 */
	int (*post32)(struct maptbl_hw *hw, unsigned fn, uint32_t off, uint32_t val);
};

extern const struct maptbl_hw_ops hw_emu_ops, hw_pci_ops, hw_vfio_ops;

struct maptbl_hw_dma {
	struct maptbl_hw *hw;
	void *vaddr;
	uint64_t addr;
	size_t len;
	unsigned flags;
	void *priv;
	struct maptbl_hw_dma *next; /* the handle's list */
};

struct maptbl_hw {
	uint32_t magic;
	const struct maptbl_hw_ops *ops;
	void *be;		/* backend state */
	int timeout_ms;
	uint32_t max_vfs;
	struct maptbl_hw_dma *dmas;	/* live DMA buffers of this handle */
	struct maptbl_hw_dma *fq;	/* the fault queue, when this handle started it */
	uint32_t fq_size, fq_head, fq_phase;
};

/* Polls INT_STATUS of fn (backends without interrupt delivery). */
int hw_poll_irq(struct maptbl_hw *hw, unsigned fn, int timeout_ms, uint32_t *vectors);

/* A table's DMA allocation: the table, then the note at the next 4096-byte boundary (hw.c). */
size_t hw_table_alloc_len(uint64_t table_len);
/* Writes the note (REGISTERS.md §11.4) after the table at @table: who pushed it, for vf_info. */
void hw_note_put(void *table, uint64_t table_len, const char *label);

#endif
