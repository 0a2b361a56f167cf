/* SPDX-License-Identifier: MIT */
/*
 * xfs.c - the XFS backend: XFS_IOC_GETBMAPX (xfslibs-dev headers; EXTENTS.md §2.4).
 *
 * Units are 512-byte basic blocks on the data device. Holes (-1) are skipped, delalloc (-2 or
 * BMV_OF_DELALLOC) becomes a finding, preallocated extents become unwritten records, shared ones
 * shared records. Realtime files are refused: their extents are on another device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <xfs/xfs.h>

#include "internal.h"

int mtfs_xfs(struct maptbl_fs_map *m, int fd, uint32_t flags)
{
	struct fsxattr fsx;
	struct getbmapx *map = NULL;
	size_t count;
	int64_t next = 0;
	int err = 0;

	(void)flags;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) < 0) {
		err = -errno;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: FS_IOC_FSGETXATTR: %s", m->path, strerror(errno));
		return err;
	}
	if (fsx.fsx_xflags & FS_XFLAG_REALTIME)
		return mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_OTHER_DEVICE,
					MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
	/* As xfs_io does: room for every extent, holes between them, and the header. */
	count = 2 * (size_t)fsx.fsx_nextents + 2;
	if (count > 65536)
		count = 65536;
	if (count < 64)
		count = 64;
	map = calloc(count, sizeof(*map));
	if (!map)
		return -ENOMEM;
	for (;;) {
		int i, n;

		memset(map, 0, sizeof(*map));
		map[0].bmv_offset = next;
		map[0].bmv_length = -1;
		map[0].bmv_count = (int)count;
		map[0].bmv_iflags = BMV_IF_PREALLOC | BMV_IF_DELALLOC | BMV_IF_NO_HOLES;
		if (ioctl(fd, XFS_IOC_GETBMAPX, map) < 0) {
			err = -errno;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: XFS_IOC_GETBMAPX: %s", m->path, strerror(errno));
			break;
		}
		n = map[0].bmv_entries;
		if (n <= 0)
			break;
		for (i = 1; i <= n; i++) {
			const struct getbmapx *b = &map[i];
			uint64_t lo = (uint64_t)b->bmv_offset * 512, len = (uint64_t)b->bmv_length * 512;
			uint32_t rf = 0;

			next = b->bmv_offset + b->bmv_length;
			if (b->bmv_block == -1)
				continue; /* hole */
			if (b->bmv_block == -2 || (b->bmv_oflags & BMV_OF_DELALLOC)) {
				err = mtfs_add_finding(m, lo, len, MAPTBL_FS_RULE_DELALLOC,
						       MAPTBL_FS_REFUSES_WRITABLE |
							       MAPTBL_FS_REFUSES_READONLY);
			} else {
				if (b->bmv_oflags & BMV_OF_PREALLOC)
					rf |= MTFS_REC_UNWRITTEN;
				if (b->bmv_oflags & BMV_OF_SHARED)
					rf |= MTFS_REC_SHARED;
				err = mtfs_add_record(m, lo, (uint64_t)b->bmv_block * 512, len, rf);
			}
			if (err)
				goto out;
			if (b->bmv_oflags & BMV_OF_LAST)
				goto out;
		}
		/* A full buffer: ask again from where it ended. */
		if (n < (int)count - 1)
			break;
	}
out:
	free(map);
	return err;
}
