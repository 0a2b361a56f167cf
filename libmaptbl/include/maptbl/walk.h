/* SPDX-License-Identifier: MIT */
/*
 * maptbl/walk.h - the reference table walker: a lookup that reads the table only through a
 * caller's read(offset, length) callback, the way a device reads it with DMA.
 *
 * Freestanding: this header and walk.c use no libc function, no allocation and no errno, so they
 * build with -ffreestanding -nostdlib for a kernel, a firmware or an HLS flow. The caller provides
 * a scratch buffer of at least node_size bytes.
 *
 * Threading: a struct maptbl_walker is not shared between threads; one walker per thread. The
 * table may be republished (its live word rewritten) between two lookups: each lookup reads the
 * live word again.
 *
 * Errors: functions return enum maptbl_walk_status; MAPTBL_WALK_OK is 0. A malformed table, a read
 * error or an out-of-range block gives a status, never a crash and never a read outside
 * [0, table_len). Hosted code maps statuses to -errno with maptbl_walk_errno() (maptbl.h).
 */
#ifndef MAPTBL_WALK_H
#define MAPTBL_WALK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(MAPTBL_API)
#define MAPTBL_API __attribute__((visibility("default")))
#elif !defined(MAPTBL_API)
#define MAPTBL_API
#endif

/** What a logical block maps to. */
enum maptbl_map_state {
	MAPTBL_MAP_HOLE = 0,	  /**< no extent: reads give zeros, writes fault */
	MAPTBL_MAP_MAPPED = 1,	  /**< written extent */
	MAPTBL_MAP_UNWRITTEN = 2, /**< allocated, unwritten: reads give zeros, writes fault */
	MAPTBL_MAP_ABSENT = 3,	  /**< inside a pruned subtree: every access faults */
};

/** Status of a walker call. */
enum maptbl_walk_status {
	MAPTBL_WALK_OK = 0,
	MAPTBL_WALK_BAD_ARG = 1,	 /**< NULL pointer, scratch smaller than a node */
	MAPTBL_WALK_READ_ERROR = 2,	 /**< the read callback failed */
	MAPTBL_WALK_BAD_HEADER = 3,	 /**< header malformed or its checksum wrong */
	MAPTBL_WALK_UNSUPPORTED = 4,	 /**< unknown incompat feature or version */
	MAPTBL_WALK_BAD_NODE = 5,	 /**< a node on the path is malformed */
	MAPTBL_WALK_BAD_CRC = 6,	 /**< a node's checksum is wrong */
	MAPTBL_WALK_OUT_OF_RANGE = 7,	 /**< block >= virtual_blocks */
};

/**
 * @brief Read callback: copy @p len bytes at table offset @p off into @p buf.
 * @return 0 on success, non-zero on failure (the walk stops with MAPTBL_WALK_READ_ERROR).
 * The walker never asks for bytes outside [0, table_len) once the header is read.
 */
typedef int (*maptbl_walk_read_fn)(void *ctx, uint64_t off, void *buf, uint32_t len);

/** @name Walker flags. @{ */
#define MAPTBL_WALK_CHECK_CRC 0x1u /**< verify the header and every fetched node's CRC32C */
/** @} */

/** Result of one walk (POD). */
struct maptbl_walk_result {
	uint64_t pblk;	/**< physical block of the looked-up block (MAPPED, UNWRITTEN) */
	uint64_t len;	/**< blocks from the looked-up one to the end of this state's run */
	uint32_t state; /**< enum maptbl_map_state */
	uint32_t nodes; /**< tree nodes fetched (node-sized reads, not counting the live word) */
};

/**
 * A walker. Set up by maptbl_walk_init(); the fields after @c flags are read from the table
 * header and may be read by the caller.
 */
struct maptbl_walker {
	maptbl_walk_read_fn read; /**< the DMA */
	void *ctx;		  /**< passed to @c read */
	uint8_t *scratch;	  /**< node buffer, scratch_len bytes */
	uint32_t scratch_len;
	uint32_t flags;		  /**< MAPTBL_WALK_* flags */
	uint32_t block_size;
	uint32_t node_size;
	uint64_t virtual_blocks;
	uint64_t disk_blocks;
	uint64_t table_len;
	uint64_t incompat;
	uint32_t root;		  /**< from the live word, refreshed by each lookup */
	uint32_t generation;	  /**< from the live word, refreshed by each lookup */
	uint64_t reserved[4];
};

/**
 * @brief Read and check the table header through @p read and prepare @p w for lookups.
 * @param w walker to set up (caller-owned storage)
 * @param read read callback; @param ctx its context
 * @param scratch buffer of @p scratch_len bytes, at least the table's node size (65536 always
 *        suffices); owned by the caller, used by every lookup
 * @param flags MAPTBL_WALK_CHECK_CRC or 0
 * @return MAPTBL_WALK_OK, or BAD_ARG, READ_ERROR, BAD_HEADER, UNSUPPORTED.
 */
MAPTBL_API enum maptbl_walk_status maptbl_walk_init(struct maptbl_walker *w,
						    maptbl_walk_read_fn read, void *ctx,
						    void *scratch, uint32_t scratch_len,
						    uint32_t flags);

/**
 * @brief Look up logical block @p lblk (FORMAT.md §8), reading the live word and then one node
 * per level.
 * @param r result; filled on MAPTBL_WALK_OK only
 * @return MAPTBL_WALK_OK, or OUT_OF_RANGE, READ_ERROR, BAD_NODE, BAD_CRC, BAD_HEADER (the live
 *         word names a node outside the table).
 */
MAPTBL_API enum maptbl_walk_status maptbl_walk_lookup(struct maptbl_walker *w, uint64_t lblk,
						      struct maptbl_walk_result *r);

/**
 * @brief CRC32C (Castagnoli) of @p len bytes, continuing from @p crc (start with 0).
 * maptbl_crc32c(0, "123456789", 9) == 0xE3069283. Freestanding table-driven code.
 */
MAPTBL_API uint32_t maptbl_crc32c(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_WALK_H */
