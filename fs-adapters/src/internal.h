/* SPDX-License-Identifier: MIT */
/*
 * internal.h - shared by the fs-adapters sources; nothing here is exported.
 *
 * A backend fills a struct maptbl_fs_map through mtfs_add_record() (byte units, addresses on the
 * filesystem's own device) and mtfs_add_finding(); fs.c then makes the records absolute, checks
 * their alignment and turns them into table extents.
 */
#ifndef MAPTBL_FS_INTERNAL_H
#define MAPTBL_FS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "maptbl/fs.h"

#if defined(__GNUC__)
#define MTFS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MTFS_PRINTF(a, b)
#endif


/* Record flags. */
#define MTFS_REC_UNWRITTEN 0x1u
#define MTFS_REC_SHARED 0x2u

struct mtfs_record {
	uint64_t logical, physical, length; /* bytes; physical on the filesystem's device */
	uint32_t flags;
};

struct maptbl_fs_map {
	char *path;			/* the file, for messages */
	struct mtfs_record *rec;
	size_t nr_rec, cap_rec;
	struct maptbl_extent *ext;
	size_t nr_ext;
	struct maptbl_fs_finding *find;
	size_t nr_find, cap_find;
	uint64_t file_size;
	uint32_t block_size;		/* table block size */
	uint32_t fs_block_size;
	uint32_t source;
	char *disk;
	uint64_t disk_size, disk_offset, disk_id;
	char layers[512];
};

/* Doubles the records' array (at least 256). 0 or -ENOMEM. */
int mtfs_grow_records(struct maptbl_fs_map *m);

/* Appends a record, or extends the last one when this one continues it (ext4 splits at 32768
 * blocks; block-mapped files come a block at a time). Inline, as it runs once a record: as a call
 * it was a tenth of mapping a 100,000-extent file in an image (docs/PERFORMANCE.md). 0 or
 * -ENOMEM. */
static inline int mtfs_add_record(struct maptbl_fs_map *m, uint64_t logical, uint64_t physical,
				  uint64_t length, uint32_t flags)
{
	if (!length)
		return 0;
	if (m->nr_rec) {
		struct mtfs_record *p = &m->rec[m->nr_rec - 1];

		if (p->flags == flags && p->logical + p->length == logical &&
		    p->physical + p->length == physical) {
			p->length += length;
			return 0;
		}
	}
	if (m->nr_rec == m->cap_rec) {
		int err = mtfs_grow_records(m);

		if (err)
			return err;
	}
	m->rec[m->nr_rec++] = (struct mtfs_record){ logical, physical, length, flags };
	return 0;
}
int mtfs_add_finding(struct maptbl_fs_map *m, uint64_t offset, uint64_t length, uint32_t rule,
		     uint32_t refuses);
/* Logs through libmaptbl's callback (maptbl_log() formats it once). */
#define mtfs_log(level, ...) maptbl_log((enum maptbl_log_level)(level), __VA_ARGS__)

/* Backends: fill m->rec and m->find for the open file @fd. */
int mtfs_fiemap(struct maptbl_fs_map *m, int fd, uint32_t flags);
int mtfs_xfs(struct maptbl_fs_map *m, int fd, uint32_t flags);
/* btrfs (inode @ino of the open file @fd): also resolves the disk (m->disk, disk_offset, layers)
 * from the btrfs device the extents are on. */
int mtfs_btrfs(struct maptbl_fs_map *m, int fd, uint64_t ino, uint32_t flags);
/* maptbl stats on btrfs: one file (inode @ino, open as @fd) measured from its extent items:
 * extents as filefrag counts them (in btrfs logical addresses), records, holes, prealloc
 * (unwritten), compressed, inline and shared records, distinct disk extents, the table estimate.
 * Adds to *out (zeroed by the caller). */
struct maptbl_file_stats;
int mtfs_btrfs_measure(int fd, uint64_t ino, uint64_t size, uint32_t bs,
		       struct maptbl_file_stats *out);
/* ext4 image: opens @image itself; fills disk, disk_size, file_size, fs_block_size too. */
int mtfs_ext4_image(struct maptbl_fs_map *m, const char *image, const char *path);
/* A libext2fs errcode_t as -errno (-EINVAL: not a valid ext2/3/4 superblock; -EIO otherwise). */
int mtfs_e2errno(long rc);

/* ---- stats (stats.c, stats_image.c) ---- */
struct maptbl_file_stats;
struct maptbl_stats_acc;

/* filefrag's extent count and the rest of a file's stats, fed one record at a time. */
struct mtfs_count {
	uint64_t end, bytes, last_log, last_phys, last_len, t_lend, t_pend, t_len;
	uint32_t t_unw, bs;
	int any;
};
void mtfs_count_init(struct mtfs_count *c, uint32_t bs);
/* One record (bytes; MTFS_REC_* flags), in logical order. */
void mtfs_count_record(struct mtfs_count *c, struct maptbl_file_stats *f, uint64_t logical,
		       uint64_t physical, uint64_t length, uint32_t flags);
/* Holes after the end, blocks, the table's size. 0 or -errno of maptbl_table_estimate(). */
int mtfs_count_finish(struct mtfs_count *c, struct maptbl_file_stats *f, uint64_t size);
/* Measures the open regular file @fd with FIEMAP (the walk's measurement): adds to *f (zeroed by
 * the caller). 0 or -errno (-EOPNOTSUPP: no FIEMAP). */
int mtfs_stats_measure_fd(int fd, uint64_t size, uint32_t bs, struct maptbl_file_stats *f);
/* A bounded min-heap (the top lists by inode): @cand (@sz <= 64 bytes) is added while fewer than
 * @cap, else replaces the least element when that is less than it. */
void mtfs_heap_offer(void *base, size_t *n, size_t cap, size_t sz, const void *cand,
		     bool (*less)(const void *a, const void *b));
/* Copies caller's opts of size opts->sz into dst (known bytes; dst holds the defaults for the
 * fields past a smaller caller's sz); -EINVAL for an sz below @min (the struct of the first
 * release) or non-zero bytes past the known fields. */
int mtfs_opts_copy(void *dst, size_t known, size_t min, const void *opts);
/* The threads of a scan: @asked, or the online cores when 0; 1 to 256. */
unsigned mtfs_threads(uint32_t asked);
/* sizeof(struct maptbl_scan_opts) in 0.1, before no_uring */
#define MTFS_SCAN_OPTS_SIZE_0_1 offsetof(struct maptbl_scan_opts, no_uring)
/* maptbl_stats_acc_add() without offering the file to the top list. */
int mtfs_stats_add_untopped(struct maptbl_stats_acc *acc, const struct maptbl_file_stats *f);
/* Offers a file to the top list only. 0 or -ENOMEM. */
int mtfs_stats_top_offer(struct maptbl_stats_acc *acc, const char *path, uint64_t extents,
			 uint64_t size);

/*
 * Resolves the block device @dev through partitions, loop devices and a single linear dm target
 * to the disk a device sees: sets m->disk, m->disk_size, adds to m->disk_offset, appends to
 * m->layers. -EOPNOTSUPP (logged, naming the layer) for anything else.
 */
int mtfs_resolve_blkdev(struct maptbl_fs_map *m, dev_t dev);

#endif
