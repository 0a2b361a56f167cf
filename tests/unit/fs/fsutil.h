/* SPDX-License-Identifier: MIT */
/*
 * fsutil.h - helpers of the libmaptbl-fs unit tests (test_fs.c, test_ext4_image.c). Included
 * after fs-adapters/src/fs.c, so struct maptbl_fs_map and the internal functions are visible.
 */
#ifndef MAPTBL_TEST_FSUTIL_H
#define MAPTBL_TEST_FSUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The log, captured: how many messages per level and the last one. */
struct logcap {
	unsigned n[4];
	char last[512];
};

static inline void logcap_fn(void *ctx, enum maptbl_log_level level, const char *msg)
{
	struct logcap *lc = ctx;

	if ((unsigned)level < 4)
		lc->n[level]++;
	snprintf(lc->last, sizeof(lc->last), "%s", msg);
}

static inline void logcap_start(struct logcap *lc)
{
	memset(lc, 0, sizeof(*lc));
	maptbl_set_log_fn(logcap_fn, lc, MAPTBL_LOG_DEBUG);
}

static inline void logcap_stop(void)
{
	maptbl_set_log_fn(NULL, NULL, MAPTBL_LOG_WARN);
}

/* An empty map as a backend would start it: table block size @bs, disk offset @off. */
static inline struct maptbl_fs_map *new_map(uint32_t bs, uint64_t off)
{
	struct maptbl_fs_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->path = strdup("test-file");
	if (!m->path) {
		free(m);
		return NULL;
	}
	m->block_size = bs;
	m->fs_block_size = 4096;
	m->disk_offset = off;
	return m;
}

#endif
