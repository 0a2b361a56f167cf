/* SPDX-License-Identifier: MIT */
/*
 * maptbl/fs.h - extent lists from real files, made absolute on the disk a device sees, checked
 * against the rules that make in-place device I/O safe (docs/FS.md).
 *
 * A struct maptbl_fs_map is the result of mapping one file: its extents in table blocks (ready for
 * maptbl_table_build()), the disk the physical addresses refer to, and the safety findings.
 *
 * Threading: maptbl_fs_map_file() may run in several threads at once on different files. A map is
 * immutable once returned.
 *
 * Errors: 0 or a negative errno. -EINVAL: refused by a safety rule (maptbl_fs_map_check()) or a bad
 * argument. -EOPNOTSUPP: a storage layer or filesystem the adapters cannot see through (named in
 * the log and in the map's error text). -ENOENT, -EACCES, -EIO: as the system said. The library
 * never prints; it logs through maptbl_set_log_fn().
 */
#ifndef MAPTBL_FS_H
#define MAPTBL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/maptbl.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The result of mapping a file (opaque). */
struct maptbl_fs_map;

/** Where the extents come from. */
enum maptbl_fs_source {
	MAPTBL_FS_SOURCE_AUTO = 0,	 /**< follow statfs' f_type */
	MAPTBL_FS_SOURCE_FIEMAP = 1,	 /**< FS_IOC_FIEMAP, any Linux filesystem */
	MAPTBL_FS_SOURCE_XFS = 2,	 /**< XFS_IOC_GETBMAPX */
	MAPTBL_FS_SOURCE_EXT4_IMAGE = 3, /**< libext2fs on an unmounted image or device */
	MAPTBL_FS_SOURCE_BTRFS = 4,	 /**< btrfs tree search and chunk map (default there) */
};

/** Safety rules (EXTENTS.md §3.5). */
enum maptbl_fs_rule {
	MAPTBL_FS_RULE_DELALLOC = 1,	 /**< delayed allocation left after the sync */
	MAPTBL_FS_RULE_INLINE = 2,	 /**< data inline in metadata, or tail-packed */
	MAPTBL_FS_RULE_NOT_ALIGNED = 3,	 /**< not aligned to the table block size */
	MAPTBL_FS_RULE_ENCODED = 4,	 /**< compressed or otherwise encoded */
	MAPTBL_FS_RULE_ENCRYPTED = 5,	 /**< encrypted (FIEMAP or statx said so) */
	MAPTBL_FS_RULE_SHARED = 6,	 /**< shared with another file (reflink, dedupe, snapshot) */
	MAPTBL_FS_RULE_OTHER_DEVICE = 7, /**< on another device (XFS realtime) */
	MAPTBL_FS_RULE_UNKNOWN = 8,	 /**< location unknown, or a flag this version does not know */
	MAPTBL_FS_RULE_COW = 9,		 /**< btrfs: a copy-on-write file (not NOCOW) */
	MAPTBL_FS_RULE_CHECKSUMMED = 10, /**< btrfs: data checksums a device write would not update */
	MAPTBL_FS_RULE_PROFILE = 11,	 /**< btrfs: a DUP/RAID data profile (several copies, parity) */
};

/** One finding: a byte range of the file and the rule it breaks (POD). */
struct maptbl_fs_finding {
	uint64_t offset;   /**< file byte offset */
	uint64_t length;   /**< bytes */
	uint32_t rule;	   /**< enum maptbl_fs_rule */
	uint32_t refuses;  /**< MAPTBL_FS_REFUSES_* it blocks */
};

/** @name Which tables a finding blocks. @{ */
#define MAPTBL_FS_REFUSES_WRITABLE 0x1u /**< a table for a writable VF */
#define MAPTBL_FS_REFUSES_READONLY 0x2u /**< a table for a read-only VF too */
/** @} */

/** @name maptbl_fs_opts.flags @{ */
#define MAPTBL_FS_NO_SYNC 0x1u /**< do not sync the file first (reports delalloc as it is) */
/** @} */

/** Options of maptbl_fs_map_file(). Initialise with maptbl_fs_opts_init(). */
struct maptbl_fs_opts {
	size_t sz;	     /**< sizeof(struct maptbl_fs_opts) of the caller */
	uint32_t source;     /**< enum maptbl_fs_source */
	uint32_t flags;	     /**< MAPTBL_FS_* */
	uint32_t block_size; /**< table block size in bytes; 0 = the filesystem's block size */
	uint32_t reserved;   /**< must be zero */
	const char *image;   /**< EXT4_IMAGE: the image file or unmounted device */
};
#define maptbl_fs_opts__last_field image

/** @brief Fill @p opts with the defaults. @return 0 or -EINVAL. */
MAPTBL_API int maptbl_fs_opts_init(struct maptbl_fs_opts *opts, size_t sz);

/**
 * @brief Map a file: its extents, the disk they lie on, and the safety findings.
 *
 * A live file (the default) is synced, then mapped with FIEMAP or XFS_IOC_GETBMAPX, or on btrfs
 * with a tree search of its EXTENT_DATA items translated through the chunk tree; its disk is
 * resolved through partitions, loop devices and a single linear device-mapper target to the disk
 * a device sees, and the physical addresses are made absolute on it. With @c opts->image, @p path
 * is a path inside that ext4 image or unmounted device, read through libext2fs; the disk is the
 * image itself.
 *
 * @param path the file, or the path inside the image
 * @param opts NULL for defaults
 * @param out receives the map; free with maptbl_fs_map_free(). Findings do not make this fail:
 *        call maptbl_fs_map_check().
 * @return 0; -EOPNOTSUPP for a storage layer or filesystem that cannot be seen through (the
 *         reason is in the log); -EISDIR, -ENOENT, -EACCES, -EIO...; -ENOMEM.
 */
MAPTBL_API int maptbl_fs_map_file(const char *path, const struct maptbl_fs_opts *opts,
				  struct maptbl_fs_map **out);

/** @brief Free a map. Accepts NULL. */
MAPTBL_API void maptbl_fs_map_free(struct maptbl_fs_map *m);

/**
 * @brief Whether a table may be built for a writable (@p read_only false) or a read-only VF.
 * @return 0, or -EINVAL when a finding refuses it; each refusing finding is logged with the file,
 *         the byte range and the rule.
 */
MAPTBL_API int maptbl_fs_map_check(const struct maptbl_fs_map *m, bool read_only);

/**
 * @brief The extents, in table blocks, sorted, logically and physically contiguous records merged,
 * unwritten ones flagged, made absolute on maptbl_fs_map_disk(). Shared extents are included (a
 * read-only table may use them); ranges without a usable location (inline, delalloc, encoded,
 * unknown, not aligned) are left out and appear as findings. Owned by @p m.
 */
MAPTBL_API const struct maptbl_extent *maptbl_fs_map_extents(const struct maptbl_fs_map *m,
							      size_t *nr);
/** @brief Number of findings. */
MAPTBL_API size_t maptbl_fs_map_nr_findings(const struct maptbl_fs_map *m);
/** @brief Finding @p i (0-based), or NULL. Owned by @p m. */
MAPTBL_API const struct maptbl_fs_finding *maptbl_fs_map_finding(const struct maptbl_fs_map *m,
								 size_t i);
/** @brief The file's size in bytes. */
MAPTBL_API uint64_t maptbl_fs_map_file_size(const struct maptbl_fs_map *m);
/** @brief The table block size in bytes the extents are in. */
MAPTBL_API uint32_t maptbl_fs_map_block_size(const struct maptbl_fs_map *m);
/** @brief Path of the disk the extents lie on (a block device or an image file). */
MAPTBL_API const char *maptbl_fs_map_disk(const struct maptbl_fs_map *m);
/** @brief Size of that disk in bytes. */
MAPTBL_API uint64_t maptbl_fs_map_disk_size(const struct maptbl_fs_map *m);
/** @brief Bytes added to the filesystem's own addresses to make them absolute on the disk. */
MAPTBL_API uint64_t maptbl_fs_map_disk_offset(const struct maptbl_fs_map *m);
/** @brief How the disk was reached, e.g. "ext4 on /dev/loop3p1 (+1048576) on /dev/loop3 -> /tmp/a.img". */
MAPTBL_API const char *maptbl_fs_map_layers(const struct maptbl_fs_map *m);
/** @brief The source that produced the extents (enum maptbl_fs_source, never AUTO). */
MAPTBL_API uint32_t maptbl_fs_map_source(const struct maptbl_fs_map *m);
/**
 * @brief The identity of a disk (block device or image file) as recorded in tables: a 64-bit hash
 * of the file's device and inode, or of the block device's number. Non-zero.
 * @return 0, or -errno from stat().
 */
MAPTBL_API int maptbl_fs_disk_id(const char *path, uint64_t *id);
/** @brief maptbl_fs_disk_id() of maptbl_fs_map_disk(), computed when the map was made. */
MAPTBL_API uint64_t maptbl_fs_map_disk_id(const struct maptbl_fs_map *m);
/** @brief Short name of a rule ("shared", "inline", ...). */
MAPTBL_API const char *maptbl_fs_rule_name(uint32_t rule);

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_FS_H */
