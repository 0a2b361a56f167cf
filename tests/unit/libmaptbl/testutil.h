/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by the libmaptbl unit tests: a seeded PRNG, a reference CRC32C, a
 * hand-written table writer that does not use build.c (so tests can make any tree, including
 * malformed and non-uniform ones), and an in-memory read callback for the walker.
 */
#ifndef MAPTBL_TESTUTIL_H
#define MAPTBL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/maptbl.h>

#define MAX_BLK MAPTBL_MAX_BLK

/* ---- PRNG (xoshiro256**, seeded with splitmix64) ---- */
struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi);
/* The seed to use: $MAPTBL_SEED (decimal or 0x hex) when set, else @dflt. */
uint64_t test_seed(uint64_t dflt);

/* The fixture extents of the open, walk and disk-record tests: extent i at lblk 10 i, length
 * 1 + i % 7 (gaps of 2..8 blocks), pblk 100000 + 8 i, every fifth (i % 5 == 3) unwritten. */
struct maptbl_extent;
void tu_gen_ext(struct maptbl_extent *e, size_t n);

/* ---- Little-endian raw access ---- */
void put_le16(uint8_t *p, uint16_t v);
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint16_t get_le16(const uint8_t *p);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);

/* ---- Reference CRC32C: byte-wise, table computed here from the polynomial ---- */
uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- Hand-written tables ---- */
#define TW_HDR_CRC	12u
#define TW_ROOT		16u
#define TW_GEN		20u
#define TW_INCOMPAT	24u
#define TW_RO_COMPAT	32u
#define TW_COMPAT	40u
#define TW_BLOCK_SIZE	48u
#define TW_NODE_SIZE	52u
#define TW_VIRTUAL	56u
#define TW_DISK		64u
#define TW_TABLE_LEN	72u
#define TW_RESERVED	80u

/* A zeroed buffer of @nslots nodes of @node_size bytes (free()). */
uint8_t *tw_alloc(uint32_t node_size, uint32_t nslots);
/* Writes a version-1 header (block size 4096, header_len 128, table_len @len) and seals it. */
void tw_header(uint8_t *buf, size_t len, uint32_t node_size, uint32_t root,
	       uint64_t virtual_blocks, uint64_t disk_blocks, uint64_t incompat);
/* Starts node @n: header with no entries (add them with tw_index/tw_compact/tw_wide). */
void tw_node(uint8_t *buf, uint32_t node_size, uint32_t n, unsigned kind, unsigned level,
	     uint64_t base_lblk);
/* Appends an entry to node @n and increments its nr_entries. */
void tw_index(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t first, uint64_t nblocks,
	      uint32_t child);
void tw_compact(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t lblk, uint32_t len,
		uint64_t pblk, bool unwritten);
void tw_wide(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t lblk, uint64_t len,
	     uint64_t pblk, bool unwritten);
/* Recomputes node @n's CRC (FORMAT.md §7); does nothing when the entries would not fit. */
void tw_seal_node(uint8_t *buf, uint32_t node_size, uint32_t n);
/* Recomputes the header CRC over header_len bytes (clamped to @len). */
void tw_seal_header(uint8_t *buf, size_t len);
uint32_t tw_header_crc(const uint8_t *buf, uint32_t header_len);
uint32_t tw_node_crc(const uint8_t *node, uint32_t used);
/* Byte offset of entry @i of node @n. */
uint64_t tw_entry_off(uint32_t node_size, uint32_t n, unsigned kind, uint32_t i);

/* ---- Walker read callback over a memory buffer ---- */
struct membuf {
	const uint8_t *buf;
	uint64_t len;
	unsigned reads;	   /* calls so far */
	int fail_at;	   /* fail the read with this 0-based call number; -1: never */
	unsigned oob;	   /* reads that asked for bytes outside [0, len) */
	unsigned node_reads; /* reads of more than 8 bytes at offset >= 128 */
};

void membuf_init(struct membuf *m, const void *buf, uint64_t len);
int membuf_read(void *ctx, uint64_t off, void *dst, uint32_t len);

/* ---- Misc ---- */
/* Case-insensitive substring test. */
bool contains_word(const char *haystack, const char *needle);

#endif
