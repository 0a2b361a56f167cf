/* SPDX-License-Identifier: MIT */
/*
 * maptbl/stats.h - extents-per-file statistics of directory trees, and what their tables would
 * cost (issue #4, docs/man/man8/maptbl-stats.8).
 *
 * maptbl_stats_file() measures one file with FIEMAP (read-only, no sync). A struct
 * maptbl_stats_acc accumulates measured files into exact counts: a value->count map of extents
 * per file (so percentiles are exact and memory grows with the number of distinct extent
 * counts, not files), the same per file-size class, table totals, the N most fragmented files and
 * the errors by reason. Accumulators merge exactly, also through their JSON form, so that runs on
 * many machines add up to the run over all of them.
 *
 * Definitions (per file, f):
 *   extents_f  physical discontinuities, counted as filefrag counts them (EXTENTS.md §2.2);
 *   blocks_f   filesystem blocks covered by FIEMAP records (rounded up);
 *   layout score = 1 - sum(extents_f - 1) / sum(blocks_f - 1), both sums over the files with at
 *              least one block: the fraction of blocks, the first block of each file excepted,
 *              that are physically contiguous with their logical predecessor. 1 when no file has
 *              two blocks.
 *   percentile q (nearest rank): the smallest v such that at least ceil(q * files) files have at
 *              most v extents.
 *
 * Threading: an accumulator is not locked; use one per thread and merge. maptbl_stats_scan() does
 * that itself. Errors: 0 or a negative errno. The library never prints.
 */
#ifndef MAPTBL_STATS_H
#define MAPTBL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/maptbl.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An accumulator (opaque). */
struct maptbl_stats_acc;

/** Histogram buckets: 0, 1, 2, 3-4, 5-8, ..., (2^63, 2^64). */
#define MAPTBL_STATS_BUCKETS 66
/** File-size classes: 0, <4K, <64K, <1M, <16M, <256M, <4G, >=4G. */
#define MAPTBL_STATS_CLASSES 8
/** All classes together, for the getters' @p size_class. */
#define MAPTBL_STATS_ALL (-1)
/** Table depths 0..16. */
#define MAPTBL_STATS_DEPTHS (MAPTBL_MAX_DEPTH + 1)

/** One measured file (POD). */
struct maptbl_file_stats {
	const char *path;      /**< for the top list (copied); may be NULL */
	uint64_t size;	       /**< st_size */
	uint64_t blocks;       /**< filesystem blocks covered by records */
	uint64_t extents;      /**< physical discontinuities, as filefrag counts them */
	uint64_t records;      /**< FIEMAP records */
	uint64_t holes;	       /**< unmapped ranges: before, between, after the records */
	uint64_t unwritten;    /**< records flagged UNWRITTEN */
	uint64_t shared;       /**< records flagged SHARED */
	uint64_t table_extents; /**< extents of the file's table (records merged as libmaptbl-fs does) */
	uint64_t table_long;   /**< of them, longer than 32768 blocks */
	uint64_t table_bytes;  /**< maptbl_table_estimate() of the table */
	uint64_t table_nodes;
	uint32_t table_depth;
	uint32_t block_size;   /**< filesystem block size used */
	/* btrfs (from the file's extent items, not FIEMAP): */
	uint64_t compressed;     /**< records of compressed (or otherwise encoded) extents */
	uint64_t inline_extents; /**< inline records (data in the metadata) */
	uint64_t disk_extents;   /**< distinct disk extents (each counted once) */
};

/** The summary of one size class or of all files (POD, grows at the end). */
struct maptbl_stats_summary {
	uint64_t files, bytes, blocks;
	uint64_t extents, records, holes, unwritten, shared;
	uint64_t multi_files;	   /**< files with more than one extent */
	uint64_t multi_bytes;	   /**< their bytes */
	uint64_t pred_blocks;	   /**< sum of blocks_f - 1 (layout score denominator) */
	uint64_t breaks;	   /**< sum of extents_f - 1 */
	uint64_t files_holes, files_unwritten, files_shared; /**< files with at least one */
	uint64_t p50, p90, p99, p999, max; /**< extents per file */
	uint64_t table_bytes, table_nodes;
	double layout_score;	   /**< see the file comment */
	/* btrfs (0 elsewhere), from maptbl_file_stats: */
	uint64_t compressed;	   /**< compressed (encoded) records */
	uint64_t inline_extents;   /**< inline records */
	uint64_t disk_extents;	   /**< distinct disk extents, summed over the files */
	uint64_t files_compressed; /**< files with at least one compressed record */
	uint64_t files_inline;	   /**< files with an inline record */
};

/** A file of the top list (POD; path owned by the accumulator). */
struct maptbl_stats_top {
	const char *path;
	uint64_t extents, size;
};

/** Errors of one reason (POD; example owned by the accumulator). */
struct maptbl_stats_error {
	int err;	     /**< positive errno */
	uint32_t reserved;
	uint64_t count;
	const char *example; /**< the first path that failed so */
};

/** Options of maptbl_stats_acc_new(). Initialise with maptbl_stats_opts_init(). */
struct maptbl_stats_opts {
	size_t sz;	/**< sizeof(struct maptbl_stats_opts) of the caller */
	uint32_t top_n; /**< how many most fragmented files to keep; 0 = 10 */
	uint32_t reserved; /**< must be zero */
};
#define maptbl_stats_opts__last_field reserved

/** Options of maptbl_stats_scan(). Initialise with maptbl_scan_opts_init(). */
struct maptbl_scan_opts {
	size_t sz;	      /**< sizeof(struct maptbl_scan_opts) of the caller */
	uint32_t threads;     /**< workers; 0 = the online cores */
	bool cross_mounts;    /**< descend into other filesystems */
	/** Called for every measured file, one call at a time (serialised), from worker threads. */
	void (*per_file)(void *ctx, const struct maptbl_file_stats *fs);
	void *ctx;
	/**
	 * Called now and then (after each directory; every 4096 inodes of an image) with the
	 * files and bytes measured so far by this scan, serialised with per_file; may be NULL.
	 */
	void (*progress)(void *progress_ctx, uint64_t files, uint64_t bytes);
	void *progress_ctx;
	/**
	 * Open and close files with plain system calls, one at a time. By default the walk opens
	 * and closes each directory's regular files in batches through io_uring where the kernel
	 * allows it (one io_uring_enter() per batch instead of an openat() and a close() per file),
	 * and falls back to plain calls where it does not.
	 */
	bool no_uring;
};
#define maptbl_scan_opts__last_field no_uring

/** @brief Defaults into @p opts (@p sz = sizeof(*opts)). @return 0 or -EINVAL. */
MAPTBL_API int maptbl_stats_opts_init(struct maptbl_stats_opts *opts, size_t sz);
/** @brief Defaults into @p opts (@p sz = sizeof(*opts)). @return 0 or -EINVAL. */
MAPTBL_API int maptbl_scan_opts_init(struct maptbl_scan_opts *opts, size_t sz);

/**
 * @brief A new, empty accumulator.
 * @param opts NULL for defaults
 * @param out receives it; free with maptbl_stats_acc_free()
 * @return 0, -EINVAL (bad options), -ENOMEM.
 */
MAPTBL_API int maptbl_stats_acc_new(const struct maptbl_stats_opts *opts,
				    struct maptbl_stats_acc **out);
/** @brief Free an accumulator. Accepts NULL. */
MAPTBL_API void maptbl_stats_acc_free(struct maptbl_stats_acc *acc);

/** @brief Count one measured file. @return 0, -EINVAL, -ENOMEM. */
MAPTBL_API int maptbl_stats_acc_add(struct maptbl_stats_acc *acc,
				    const struct maptbl_file_stats *fs);
/**
 * @brief Count a file that could not be measured.
 * @param path the file (the first one of each reason is kept); may be NULL
 * @param err its errno, positive or negative
 * @return 0, -EINVAL, -ENOMEM.
 */
MAPTBL_API int maptbl_stats_acc_error(struct maptbl_stats_acc *acc, const char *path, int err);
/**
 * @brief Add everything of @p src to @p dst, exactly. The top list keeps dst's length.
 * @return 0, -EINVAL, -ENOMEM (dst may then be partly merged).
 */
MAPTBL_API int maptbl_stats_acc_merge(struct maptbl_stats_acc *dst,
				      const struct maptbl_stats_acc *src);

/**
 * @brief The summary of one size class, or of all files with MAPTBL_STATS_ALL.
 * @param sz sizeof(*out) of the caller
 * @return 0, -EINVAL.
 */
MAPTBL_API int maptbl_stats_acc_summary(const struct maptbl_stats_acc *acc, int size_class,
					struct maptbl_stats_summary *out, size_t sz);
/**
 * @brief Files per histogram bucket.
 * @param counts receives MAPTBL_STATS_BUCKETS counts
 * @return the number of buckets up to the last non-empty one (0 with no files), -EINVAL.
 */
MAPTBL_API int maptbl_stats_acc_histogram(const struct maptbl_stats_acc *acc, int size_class,
					  uint64_t counts[MAPTBL_STATS_BUCKETS]);
/** @brief The extent counts bucket @p idx holds, [*lo, *hi]. @return 0, -EINVAL. */
MAPTBL_API int maptbl_stats_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi);
/** @brief "0", "<4K", ... ">=4G" (static), NULL out of range. */
MAPTBL_API const char *maptbl_stats_size_class_name(int size_class);
/** @brief The size class of a file of @p size bytes. */
MAPTBL_API int maptbl_stats_size_class(uint64_t size);
/**
 * @brief The exact quantile num/den of extents per file (nearest rank; see the file comment).
 * @return 0 (with no files *out is 0), -EINVAL (den 0 or num > den).
 */
MAPTBL_API int maptbl_stats_acc_quantile(const struct maptbl_stats_acc *acc, int size_class,
					 uint64_t num, uint64_t den, uint64_t *out);
/** @brief Tables per depth. @param counts receives MAPTBL_STATS_DEPTHS counts. @return 0, -EINVAL. */
MAPTBL_API int maptbl_stats_acc_depths(const struct maptbl_stats_acc *acc,
				       uint64_t counts[MAPTBL_STATS_DEPTHS]);
/** @brief The length the top list is kept at (opts->top_n, or the JSON's). */
MAPTBL_API uint32_t maptbl_stats_acc_top_n(const struct maptbl_stats_acc *acc);
/** @brief Entries of the top list (at most top_n). */
MAPTBL_API size_t maptbl_stats_acc_nr_top(const struct maptbl_stats_acc *acc);
/** @brief Top-list entry @p idx, most extents first (ties: path order). @return 0, -EINVAL. */
MAPTBL_API int maptbl_stats_acc_top(const struct maptbl_stats_acc *acc, size_t idx,
				    struct maptbl_stats_top *out);
/** @brief Files counted as errors. */
MAPTBL_API uint64_t maptbl_stats_acc_nr_errors(const struct maptbl_stats_acc *acc);
/** @brief Distinct error reasons. */
MAPTBL_API size_t maptbl_stats_acc_nr_error_reasons(const struct maptbl_stats_acc *acc);
/** @brief Error reason @p idx, in errno order. @return 0, -EINVAL. */
MAPTBL_API int maptbl_stats_acc_error_reason(const struct maptbl_stats_acc *acc, size_t idx,
					     struct maptbl_stats_error *out);

/**
 * @brief The accumulator as JSON (one object, the exact state plus derived numbers).
 * @param out receives a NUL-terminated string; the caller frees it with free()
 * @return 0, -EINVAL, -ENOMEM.
 */
MAPTBL_API int maptbl_stats_acc_to_json(const struct maptbl_stats_acc *acc, char **out);
/**
 * @brief An accumulator from the JSON of maptbl_stats_acc_to_json(); derived numbers are
 * recomputed, not read.
 * @param out receives it; free with maptbl_stats_acc_free()
 * @return 0; -EBADMSG for malformed or inconsistent JSON (reason in the log); -ENOMEM.
 */
MAPTBL_API int maptbl_stats_acc_from_json(const char *text, size_t len,
					  struct maptbl_stats_acc **out);

/**
 * @brief Measure one regular file with FIEMAP: extents, records, holes, unwritten and shared
 * records, and its table's size (default build options, table block = filesystem block).
 *
 * Opens @p name relative to @p dirfd read-only with O_NOATIME (without it when not allowed);
 * FIEMAP without FIEMAP_FLAG_SYNC, so nothing is written.
 * @param block_size the filesystem block size; 0 asks the filesystem (FIGETBSZ)
 * @param out receives the counts; out->path is set to NULL
 * @return 0; -EINVAL when not a regular file; -errno of open, fstat or FIEMAP (-EOPNOTSUPP when
 *         the filesystem has no FIEMAP).
 */
MAPTBL_API int maptbl_stats_file(int dirfd, const char *name, uint32_t block_size,
				 struct maptbl_file_stats *out);

/**
 * @brief Walk @p path and add every regular file under it to @p acc: a parallel walk with a work
 * queue of directories, relative to directory descriptors, one filesystem unless
 * opts->cross_mounts. Files and directories that fail are counted as errors and the walk goes on.
 * @p path itself may be a regular file.
 * @return 0 when the walk finished; -errno when @p path itself cannot be opened or read
 *         (nothing is added), -EINVAL, -ENOMEM.
 */
MAPTBL_API int maptbl_stats_scan(struct maptbl_stats_acc *acc, const char *path,
				 const struct maptbl_scan_opts *opts);

/**
 * @brief Add every regular file of an unmounted ext2/3/4 image or device to @p acc, read
 * through libext2fs without mounting: an inode scan, each file's extent tree (or block map)
 * counted as filefrag counts the mounted file's FIEMAP records.
 *
 * Without opts->per_file, every in-use regular inode counts once (a file with several names
 * once); only the top list's files get names, found in the few directories just below each
 * one's inode number, then in the directories in inode order until all are found (ties of the
 * top list go by inode number, then by path). With
 * opts->per_file, the directory tree is walked instead and every name of a regular file is
 * measured and passed to it, with its path from the image's root ("/dir/file"). Inodes that
 * cannot be read (bad checksum, corrupt extent tree) are counted as errors ("inode N") and the
 * scan goes on. Without opts->per_file the inode scan runs in opts->threads threads (0: the
 * online cores; at most one per block group), each with its own libext2fs handle on chunks of
 * block groups, merged exactly (the result does not depend on the thread count, except which
 * file names an error reason). opts->cross_mounts is ignored. The image is opened read-only; a
 * mounted device or image is refused.
 * @return 0 when the scan finished; -ENOENT and other -errno of opening @p image; -EINVAL when
 *         it is not an ext2/3/4 filesystem (the reason in the log); -EBUSY when it is mounted;
 *         -EIO when its inode tables cannot be read; -ENOMEM.
 */
MAPTBL_API int maptbl_stats_image(struct maptbl_stats_acc *acc, const char *image,
				  const struct maptbl_scan_opts *opts);

/** maptbl_stats_xfs(): files with one extent record are not opened either (see there). */
#define MAPTBL_STATS_XFS_COUNTS 0x1u

/**
 * @brief Add every regular file of the mounted XFS filesystem whose root directory is @p path to
 * @p acc, from XFS_IOC_BULKSTAT instead of a directory walk (needs CAP_SYS_ADMIN).
 *
 * The allocation groups are bulkstatted by opts->threads threads. A file with no extent record
 * and no allocated block is measured from its inode; every other file is opened by handle and
 * measured with FIEMAP as maptbl_stats_scan() measures it, so every count equals the walk's
 * (and filefrag's). With MAPTBL_STATS_XFS_COUNTS, files with one record are not opened: their
 * extents and records are 1 (exact), their blocks the inode's allocated blocks, a hole after them
 * when the size is larger; their unwritten and shared records are not seen (counted 0).
 * A file with several names counts once per name, as in the walk; files the walk cannot reach
 * (under a directory another filesystem is mounted on) count too, unlinked open files do not.
 * Only the top list's files get names (ties go by inode number, then by path), found by one walk
 * of the directory tree that stops when all are found; a name not found is "<inode N>".
 * Files that vanish or fail are counted as errors ("<inode N>") and the scan goes on.
 * opts->per_file and opts->cross_mounts are not supported (-EINVAL): use maptbl_stats_scan().
 * @param flags 0 or MAPTBL_STATS_XFS_COUNTS
 * @return 0 when the scan finished; -EOPNOTSUPP when @p path is not the root directory of an XFS
 *         filesystem or the kernel has no XFS_IOC_BULKSTAT (the reason in the log, at INFO);
 *         -EPERM without CAP_SYS_ADMIN; -EINVAL; -ENOMEM; other -errno of opening @p path.
 *         Nothing is added on an error, except files counted before -ENOMEM.
 */
MAPTBL_API int maptbl_stats_xfs(struct maptbl_stats_acc *acc, const char *path,
				const struct maptbl_scan_opts *opts, uint32_t flags);

#ifdef __cplusplus
}
#endif

#endif
