/* SPDX-License-Identifier: MIT */
/*
 * fiemap.c - the generic backend: FS_IOC_FIEMAP on any Linux filesystem (EXTENTS.md §2).
 *
 * FIEMAP_FLAG_SYNC on the first call, batches of 8192 records, continuation until
 * FIEMAP_EXTENT_LAST. Every flag maps to a record flag or to a finding; a record with a flag this
 * code does not know becomes an "unknown-location" finding that refuses every table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include "internal.h"

#define BATCH 8192

#define KNOWN_FLAGS                                                                                \
	(FIEMAP_EXTENT_LAST | FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |                     \
	 FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED |         \
	 FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_UNWRITTEN |            \
	 FIEMAP_EXTENT_MERGED | FIEMAP_EXTENT_SHARED)

/* One record: either a usable mapping or a finding. */
static int take(struct maptbl_fs_map *m, const struct fiemap_extent *fe)
{
	const uint32_t all = MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY;
	uint32_t f = fe->fe_flags, rf = 0;

	if (f & ~KNOWN_FLAGS)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_UNKNOWN, all);
	if (f & FIEMAP_EXTENT_DELALLOC)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_DELALLOC, all);
	if (f & FIEMAP_EXTENT_UNKNOWN)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_UNKNOWN, all);
	if (f & FIEMAP_EXTENT_DATA_ENCRYPTED)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_ENCRYPTED, all);
	if (f & FIEMAP_EXTENT_ENCODED)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_ENCODED, all);
	if (f & (FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL))
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_INLINE, all);
	if (f & FIEMAP_EXTENT_NOT_ALIGNED)
		return mtfs_add_finding(m, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_NOT_ALIGNED,
					all);
	if (f & FIEMAP_EXTENT_UNWRITTEN)
		rf |= MTFS_REC_UNWRITTEN;
	if (f & FIEMAP_EXTENT_SHARED)
		rf |= MTFS_REC_SHARED;
	/* MERGED (block-mapped files) needs nothing: the records are real mappings. */
	return mtfs_add_record(m, fe->fe_logical, fe->fe_physical, fe->fe_length, rf);
}

int mtfs_fiemap(struct maptbl_fs_map *m, int fd, uint32_t flags)
{
	size_t sz = sizeof(struct fiemap) + BATCH * sizeof(struct fiemap_extent);
	struct fiemap *fm = malloc(sz);
	uint64_t start = 0;
	bool first = true, last = false;
	int err = 0;

	if (!fm)
		return -ENOMEM;
	while (!last) {
		uint32_t i;

		memset(fm, 0, sizeof(*fm));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_flags = first && !(flags & MAPTBL_FS_NO_SYNC) ? FIEMAP_FLAG_SYNC : 0;
		fm->fm_extent_count = BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
			err = -errno;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: FIEMAP: %s", m->path, strerror(errno));
			if (err == -ENOTTY)
				err = -EOPNOTSUPP;
			break;
		}
		first = false;
		if (!fm->fm_mapped_extents)
			break; /* nothing (more) mapped: the rest is a hole */
		for (i = 0; i < fm->fm_mapped_extents; i++) {
			struct fiemap_extent fe = fm->fm_extents[i];

			/* Records may start before fm_start; keep only what is new. */
			if (fe.fe_logical + fe.fe_length <= start)
				continue;
			if (fe.fe_logical < start) {
				uint64_t cut = start - fe.fe_logical;

				fe.fe_logical += cut;
				fe.fe_physical += cut;
				fe.fe_length -= cut;
			}
			err = take(m, &fe);
			if (err)
				goto out;
			start = fe.fe_logical + fe.fe_length;
			if (fe.fe_flags & FIEMAP_EXTENT_LAST)
				last = true;
		}
	}
out:
	free(fm);
	return err;
}
