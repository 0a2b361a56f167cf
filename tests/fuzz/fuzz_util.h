/* SPDX-License-Identifier: MIT */
/*
 * fuzz_util.h - helpers shared by the fuzz targets (tests/fuzz/): a bounds-checked read callback
 * for the reference walker, checks of the walker's contract on any input, and a comparison of a
 * library lookup with a walker lookup.
 *
 * A failed check prints what disagreed and calls abort(), so libFuzzer (and the gcc replayer)
 * report it as a crash with the input that caused it.
 */
#ifndef MAPTBL_FUZZ_UTIL_H
#define MAPTBL_FUZZ_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maptbl/maptbl.h>
#include <maptbl/walk.h>

#define FZ_CHECK(cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/*
 * The walker's view of the table: the fuzz input. @limit is 0 while the header is read, then the
 * table_len the walker learned: the walker promises never to ask for a byte past it (walk.h).
 */
struct fz_mem {
	const uint8_t *p;
	size_t n;
	uint64_t limit;
	uint64_t reads;
};

static inline int fz_read(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	struct fz_mem *m = ctx;

	m->reads++;
	FZ_CHECK(len > 0, "zero-length read at %" PRIu64, off);
	if (m->limit)
		FZ_CHECK(off <= m->limit && len <= m->limit - off,
			 "walker read [%" PRIu64 ", +%u) past table_len %" PRIu64, off, len, m->limit);
	if (off > m->n || len > m->n - off)
		return -1; /* a short table: the walker must report READ_ERROR, not read on */
	memcpy(buf, m->p + off, len);
	return 0;
}

/*
 * Walker scratch: exactly 65536 bytes from malloc(), so AddressSanitizer sees any access past a
 * node-sized scratch; the bytes are poisoned with 0xA5 before each use to catch reads of stale
 * data from an earlier input.
 */
#define FZ_SCRATCH_LEN 65536u

static inline uint8_t *fz_scratch(void)
{
	static uint8_t *s;

	if (!s) {
		s = malloc(FZ_SCRATCH_LEN);
		FZ_CHECK(s != NULL, "out of memory");
	}
	memset(s, 0xA5, FZ_SCRATCH_LEN);
	return s;
}

/*
 * What any walker answer must satisfy, whatever the table: a run inside the virtual disk, a
 * physical range inside 2^48 (and the disk when recorded), at most 16 nodes.
 */
static inline void fz_check_walk_result(const struct maptbl_walker *w, uint64_t lblk,
					enum maptbl_walk_status st, const struct maptbl_walk_result *r)
{
	FZ_CHECK(st <= MAPTBL_WALK_OUT_OF_RANGE, "unknown walker status %d", (int)st);
	FZ_CHECK(maptbl_walk_strerror(st) != NULL, "no message for status %d", (int)st);
	if (lblk >= w->virtual_blocks)
		FZ_CHECK(st == MAPTBL_WALK_OUT_OF_RANGE, "block %" PRIu64 " past %" PRIu64 ": status %d",
			 lblk, w->virtual_blocks, (int)st);
	if (st != MAPTBL_WALK_OK)
		return;
	FZ_CHECK(r->state <= MAPTBL_MAP_ABSENT, "state %u", r->state);
	FZ_CHECK(r->len >= 1 && r->len <= w->virtual_blocks - lblk,
		 "block %" PRIu64 ": run %" PRIu64 " leaves the virtual disk (%" PRIu64 " blocks)", lblk,
		 r->len, w->virtual_blocks);
	FZ_CHECK(r->nodes <= MAPTBL_MAX_DEPTH, "%u nodes", r->nodes);
	if (r->state == MAPTBL_MAP_MAPPED || r->state == MAPTBL_MAP_UNWRITTEN) {
		FZ_CHECK(r->nodes >= 1, "a mapping found in no node");
		FZ_CHECK(r->pblk < MAPTBL_MAX_BLK && r->len <= MAPTBL_MAX_BLK - r->pblk,
			 "physical run %" PRIu64 "+%" PRIu64 " past 2^48", r->pblk, r->len);
		if (w->disk_blocks)
			FZ_CHECK(r->pblk + r->len <= w->disk_blocks,
				 "physical run %" PRIu64 "+%" PRIu64 " past the disk (%" PRIu64 ")",
				 r->pblk, r->len, w->disk_blocks);
	} else {
		FZ_CHECK(r->pblk == 0, "pblk %" PRIu64 " for state %u", r->pblk, r->state);
	}
}

/* The library and the walker (over the same bytes) must give the same answer for @lblk. */
static inline void fz_compare(const struct maptbl_table *t, struct maptbl_walker *w, uint64_t lblk)
{
	struct maptbl_walk_result r;
	struct maptbl_mapping m;
	enum maptbl_walk_status st;
	int err;

	memset(&m, 0xA5, sizeof(m));
	memset(&r, 0xA5, sizeof(r));
	err = maptbl_table_lookup(t, lblk, &m);
	st = maptbl_walk_lookup(w, lblk, &r);
	fz_check_walk_result(w, lblk, st, &r);
	if (lblk >= maptbl_table_virtual_blocks(t)) {
		FZ_CHECK(err == -ERANGE && st == MAPTBL_WALK_OUT_OF_RANGE,
			 "block %" PRIu64 " past the end: lookup %d, walker %d", lblk, err, (int)st);
		return;
	}
	FZ_CHECK(err == 0, "lookup of block %" PRIu64 " failed: %d", lblk, err);
	FZ_CHECK(st == MAPTBL_WALK_OK, "walker lookup of block %" PRIu64 " failed: %s", lblk,
		 maptbl_walk_strerror(st));
	FZ_CHECK(m.lblk == lblk, "lookup says lblk %" PRIu64 " for %" PRIu64, m.lblk, lblk);
	FZ_CHECK(m.state == r.state && m.pblk == r.pblk && m.len == r.len && m.nodes == r.nodes,
		 "block %" PRIu64 ": library state %u pblk %" PRIu64 " len %" PRIu64
		 " nodes %u, walker state %u pblk %" PRIu64 " len %" PRIu64 " nodes %u",
		 lblk, m.state, m.pblk, m.len, m.nodes, r.state, r.pblk, r.len, r.nodes);
}

/* Little-endian integers from fuzz input, reading past the end as zero. */
static inline uint64_t fz_get(const uint8_t *p, size_t n, size_t off, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes; i++)
		if (off + i < n)
			v |= (uint64_t)p[off + i] << (8 * i);
	return v;
}

#endif /* MAPTBL_FUZZ_UTIL_H */
