/* SPDX-License-Identifier: MIT */
/*
 * internal.h - shared between libmaptbl's source files; never installed, nothing here is
 * exported.
 */
#ifndef MAPTBL_INTERNAL_H
#define MAPTBL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maptbl/maptbl.h"

#define MT_TABLE_MAGIC 0x6D74626Cu /* "mtbl": checked on every handle */

#if defined(__GNUC__)
#define MT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MT_PRINTF(a, b)
#define MT_LIKELY(x) (x)
#define MT_UNLIKELY(x) (x)
#endif

struct mt_wstate;

struct maptbl_table {
	uint32_t magic;
	uint32_t block_size;
	uint32_t node_size;
	uint32_t node_shift;	/* log2(node_size) */
	uint32_t root;
	uint32_t generation;
	uint64_t virtual_blocks;
	uint64_t disk_blocks;
	uint64_t incompat, ro_compat, compat;
	bool readonly;
	char *disk_path;	/* recorded disk, NUL-terminated copy, or NULL */
	uint64_t disk_id;
	uint8_t *buf;		/* table_len bytes, owned */
	bool borrowed;		/* buf is the caller's (MAPTBL_OPEN_INPLACE): not freed */
	size_t len;
	struct maptbl_stats st;
	struct mt_wstate *ws;	/* writer state (update.c), made by the first update; NULL before */
	struct mt_accel *acc;	/* derived lookup index (lookup.c), NULL = none: see mt_table_changed() */
};

/*
 * The lookup index (lookup.c): host-only state derived from t->buf and t->root (a summary of every
 * tree node's keys) that lets maptbl_table_lookup() and maptbl_table_lookup_many() search a node
 * by touching 2-4 cache lines instead of about log2(entries) dependent probes. It is never written
 * to the buffer; the format does not know it. mt_table_new() builds it.
 *
 * EVERY FUNCTION THAT CHANGES A TABLE (its nodes in t->buf, t->buf itself, t->len or t->root) MUST
 * CALL mt_table_changed(t) AFTER PUBLISHING THE CHANGE, before the next lookup: a stale index gives
 * wrong answers. It rebuilds the index from the buffer (one pass over the tree's nodes); if memory
 * runs out the table keeps working without one (lookups take the plain binary search). Like any
 * change of a table, it must not run while another thread looks up in it.
 */
struct mt_accel;
void mt_table_changed(struct maptbl_table *t);
/* Bytes of memory the lookup index holds (0: none); for bench/ and tests. */
size_t mt_table_accel_bytes(const struct maptbl_table *t);
/*
 * Tables smaller than this many bytes get no index: they stay in the caches, where the plain
 * binary search is as fast or faster (measured: docs/PERFORMANCE.md). Tests set it to 0 so that
 * the index is exercised on tables of every size; nothing else writes it.
 */
extern size_t mt_index_min_table;
/*
 * Tables larger than this get no index either (lookup.c says why); lookup_many() then interleaves
 * plain binary searches. Tests set it to 0 to exercise that path.
 */
extern size_t mt_index_max_table;

/* Logging (serialize.c). mt_log() formats and passes one line to the callback, if any. */
void mt_log(enum maptbl_log_level level, const char *fmt, ...) MT_PRINTF(2, 3);
/* Records the first problem in @d (may be NULL) and logs it as an error. */
void mt_diag(struct maptbl_diag *d, uint64_t off, int64_t index, const char *fmt, ...)
	MT_PRINTF(4, 5);

/*
 * Opts handling (serialize.c): copies an opts struct the caller compiled with size user_sz (its
 * sz field) into @dst, the known_sz bytes the library knows. Fields past user_sz read as 0 (the
 * caller's struct ends there); bytes past known_sz must be zero. @opts NULL gives all zeros.
 * Returns 0 or -EINVAL.
 */
int mt_opts_copy(void *dst, const void *opts, size_t known_sz, const char *name);

/* Checksums (serialize.c). */
uint32_t mt_header_crc(const uint8_t *hdr, uint32_t header_len);
uint32_t mt_node_crc(const uint8_t *node, uint32_t used);

/* Power-of-two helpers. */
static inline bool mt_is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static inline uint32_t mt_log2(uint64_t x)
{
	uint32_t r = 0;

	while (x > 1) {
		x >>= 1;
		r++;
	}
	return r;
}

/* Statistics accounting, shared by the builder and the validator (lookup.c). */
void mt_stats_node(struct maptbl_stats *st, unsigned kind, unsigned level, uint32_t nr_entries,
		   uint32_t node_size);
void mt_stats_extent(struct maptbl_stats *st, uint64_t len, uint32_t flags);

/* Writes a node header after its entries: zero tail, CRC (build.c; also used by update.c). */
void mt_write_node_hdr(uint8_t *node, unsigned kind, unsigned level, uint32_t nr, uint32_t self,
		       uint64_t base, uint32_t node_size);

/* Frees the writer state of a table (update.c); accepts NULL. */
void mt_wstate_free(struct mt_wstate *ws);

/* Allocates a table handle around @buf (taken over) and fills the header fields. */
struct maptbl_table *mt_table_new(uint8_t *buf, size_t len);

/* Decoded view of one entry, whatever its kind (slow path: verify, iterate). */
struct mt_entry {
	uint64_t start, len, pblk;
	uint32_t child;
	uint32_t flags; /* MAPTBL_EXTENT_* */
};

static inline void mt_decode_entry(const uint8_t *node, unsigned kind, uint32_t i,
				   struct mt_entry *e)
{
	const uint8_t *p = node + MAPTBL_NODE_HDR_SIZE + (size_t)i * maptbl_entry_size(kind);

	e->child = 0;
	e->flags = 0;
	e->pblk = 0;
	if (kind == MAPTBL_NODE_INDEX) {
		const struct maptbl_index_entry *x = (const void *)p;

		e->start = maptbl_index_first(x);
		e->len = maptbl_index_nblocks(x);
		e->child = maptbl_le32_to_cpu(x->child);
		if (!e->child)
			e->flags = MAPTBL_EXTENT_ABSENT;
	} else if (kind == MAPTBL_NODE_LEAF_COMPACT) {
		const struct maptbl_compact_entry *x = (const void *)p;
		const struct maptbl_node_hdr *h = (const void *)node;

		e->start = maptbl_le64_to_cpu(h->base_lblk) + maptbl_le32_to_cpu(x->lblk_off);
		e->len = maptbl_compact_len(x);
		e->pblk = maptbl_compact_pblk(x);
		if (maptbl_le16_to_cpu(x->len_flags) & MAPTBL_COMPACT_UNWRITTEN)
			e->flags = MAPTBL_EXTENT_UNWRITTEN;
	} else {
		const struct maptbl_wide_entry *x = (const void *)p;

		e->start = maptbl_le64_to_cpu(x->lblk);
		e->len = maptbl_wide_len(x);
		e->pblk = maptbl_le64_to_cpu(x->pblk);
		if (maptbl_le16_to_cpu(x->flags) & MAPTBL_WIDE_UNWRITTEN)
			e->flags = MAPTBL_EXTENT_UNWRITTEN;
	}
}

#endif
