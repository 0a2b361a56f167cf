/* SPDX-License-Identifier: MIT */
/*
 * maptbl/maptbl.h - build, open (validate), look up and iterate mapping tables.
 *
 * The table format is docs/FORMAT.md (maptbl/format.h). A struct maptbl_table is an in-memory,
 * validated table: built from extents with maptbl_table_build() or checked from an untrusted
 * buffer with maptbl_table_open().
 *
 * Threading: any number of threads may call the const functions on one struct maptbl_table at
 * the same time. The update functions (maptbl_table_insert() ... maptbl_table_compact(),
 * maptbl_table_space()) change the table: the caller serialises them with every other call on
 * the same table. What runs concurrently with updates is a walker (a device, maptbl_walk_lookup())
 * reading the table's buffer, under the contract of docs/FORMAT.md §12: it loads the live word
 * once (acquire) and then reads only nodes of that tree, which no update writes until the caller
 * reclaims them (maptbl_table_reclaim()). maptbl_set_log_fn() changes process-wide state: call it
 * before other threads use the library.
 *
 * Errors: every function that can fail returns 0 (or a count) on success and a negative errno
 * value on failure; nothing sets errno. -EBADMSG: malformed table or extent list. -EOPNOTSUPP:
 * unknown incompat feature. -EINVAL: bad argument or option. -ENOMEM: out of memory. -E2BIG:
 * the table would exceed a format or implementation limit. -ERANGE: block past the virtual disk.
 * Updates add -EEXIST, -ENOENT, -ENXIO, -ENOSPC and -EROFS (see maptbl_table_insert()).
 * The library never prints: details go to the log callback and to the caller's struct
 * maptbl_diag when one is passed in the opts.
 */
#ifndef MAPTBL_MAPTBL_H
#define MAPTBL_MAPTBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <maptbl/format.h>
#include <maptbl/version.h>
#include <maptbl/walk.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An in-memory, validated table (opaque). */
struct maptbl_table;

/** @name Extent flags (struct maptbl_extent.flags). @{ */
#define MAPTBL_EXTENT_UNWRITTEN 0x1u /**< allocated, not written: reads give zeros */
#define MAPTBL_EXTENT_ABSENT 0x2u    /**< iteration only: a pruned subtree's range, pblk 0 */
/** @} */

/** One extent, decoded (POD). Input of the builder, output of iteration. */
struct maptbl_extent {
	uint64_t lblk;	   /**< first logical block */
	uint64_t pblk;	   /**< first physical block */
	uint64_t len;	   /**< blocks, >= 1 */
	uint32_t flags;	   /**< MAPTBL_EXTENT_* */
	uint32_t reserved; /**< must be zero */
};

/** Result of maptbl_table_lookup() (POD). */
struct maptbl_mapping {
	uint64_t lblk;	/**< the block looked up */
	uint64_t pblk;	/**< its physical block (MAPPED, UNWRITTEN), else 0 */
	uint64_t len;	/**< blocks from lblk to the end of this state's run */
	uint32_t state; /**< enum maptbl_map_state (maptbl/walk.h) */
	uint32_t nodes; /**< tree nodes a device walk reads for this block */
};

/** Where a check failed (POD): filled by build and open when the opts point to one. */
struct maptbl_diag {
	uint64_t offset;  /**< byte offset in the table of the bad field (open) */
	int64_t index;	  /**< index of the bad extent (build), -1 if none */
	char reason[200]; /**< one line, no trailing newline */
};

/** Statistics of a table (POD). Pass sizeof() of your copy; fields are only appended. */
struct maptbl_stats {
	uint64_t nr_extents;	    /**< written + unwritten extents */
	uint64_t nr_unwritten;	    /**< unwritten extents */
	uint64_t nr_absent;	    /**< absent subtrees (index entries with child 0) */
	uint64_t mapped_blocks;	    /**< blocks covered by extents */
	uint64_t nr_nodes;	    /**< tree nodes reachable from the root */
	uint64_t nr_index_nodes;
	uint64_t nr_compact_leaves;
	uint64_t nr_wide_leaves;
	uint64_t table_bytes;	    /**< table_len */
	uint64_t entry_bytes;	    /**< bytes of node headers and entries in use */
	uint64_t entries_used;	    /**< entries in all nodes */
	uint64_t entries_capacity;  /**< entries all nodes could hold */
	uint32_t depth;		    /**< levels: root level + 1 (0 for an empty table) */
	uint32_t max_nodes_touched; /**< longest root-to-leaf path in nodes */
	uint64_t nodes_per_level[MAPTBL_MAX_DEPTH]; /**< by level, 0 = leaves */
	uint64_t entries_per_level[MAPTBL_MAX_DEPTH];  /**< entries in use, by level */
	uint64_t capacity_per_level[MAPTBL_MAX_DEPTH]; /**< entries the level's nodes could hold */
};

/** The size model of a table (maptbl_table_estimate()). */
struct maptbl_estimate {
	uint64_t bytes;	   /**< table_len: header node + tree nodes + spare slots, times node_size */
	uint64_t nodes;	   /**< tree nodes (index + leaves), the header node excluded */
	uint32_t depth;	   /**< levels (0 for no extents) */
	uint32_t reserved; /**< zero */
};

/** Room for updates in a table's buffer (maptbl_table_space()). Fields are only appended. */
struct maptbl_space {
	uint64_t slots;		 /**< node slots in the buffer (table_len / node_size), header included */
	uint64_t tree_nodes;	 /**< nodes of the published tree */
	uint64_t free_nodes;	 /**< slots updates may write now */
	uint64_t retired_nodes;	 /**< replaced by a publish; free after maptbl_table_reclaim() */
	uint64_t pending_nodes;	 /**< written by staged updates, not yet published */
	uint64_t bytes_written;	 /**< bytes updates stored into the buffer: nodes, live words, header */
	uint64_t nodes_written;	 /**< nodes updates wrote */
	uint64_t publishes;	 /**< live-word stores */
	uint32_t oldest_retired; /**< generation that retired the oldest waiting node (retired_nodes > 0) */
	uint32_t reserved;	 /**< zero */
};

/** @name Update flags. @{ */
/**
 * Stage the change without publishing it: later updates build on it, and maptbl_table_publish()
 * makes all staged changes visible with one live-word store (fewer nodes written than one publish
 * per change when they share a path).
 */
#define MAPTBL_UPDATE_STAGE 0x1u
/** @} */

/** Log levels. */
enum maptbl_log_level {
	MAPTBL_LOG_ERROR = 0,
	MAPTBL_LOG_WARN = 1,
	MAPTBL_LOG_INFO = 2,
	MAPTBL_LOG_DEBUG = 3,
};

/** Log callback: one message, without a trailing newline. */
typedef void (*maptbl_log_fn)(void *ctx, enum maptbl_log_level level, const char *msg);

/** Options of maptbl_table_build(). Initialise with maptbl_build_opts_init(). */
struct maptbl_build_opts {
	size_t sz;		 /**< sizeof(struct maptbl_build_opts) of the caller */
	uint32_t block_size;	 /**< bytes per block; 0 = 4096 */
	uint32_t node_size;	 /**< bytes per node, power of two 256..65536; 0 = 4096 */
	uint64_t virtual_blocks; /**< virtual disk size; 0 = end of the last extent */
	uint64_t disk_blocks;	 /**< physical disk size to record and check; 0 = none */
	uint32_t fill_pct;	 /**< entries per node in percent of capacity, 1..100; 0 = 100 */
	uint32_t generation;	 /**< initial generation in the live word */
	struct maptbl_diag *diag; /**< optional: receives the first problem */
	const char *disk_path;	 /**< the disk the extents lie on, recorded in the table; NULL = none */
	uint64_t disk_id;	 /**< its identity (maptbl_fs_disk_id()), recorded; 0 = none */
	/**
	 * Free node slots appended after the tree (0.2): room for updates (maptbl_table_insert()
	 * and the other update functions) without a rebuild. With fill_pct below 100 the nodes
	 * themselves keep room too. 0 = none.
	 */
	uint64_t spare_nodes;
};
#define maptbl_build_opts__last_field spare_nodes

/** @name maptbl_open_opts.flags @{ */
/**
 * Open the table on the caller's buffer instead of a copy (0.2): the buffer must be writable,
 * table_len bytes, 8-byte aligned, and stay valid until maptbl_table_free(), which does not free
 * it. Updates then write that buffer in place, and their live-word store is the publish a device
 * walking it sees (the fault service updates a VF's table in DMA memory this way). Nothing else
 * may write the buffer while the table is open.
 */
#define MAPTBL_OPEN_INPLACE 0x1u
/** @} */

/** Options of maptbl_table_open(). Initialise with maptbl_open_opts_init(). */
struct maptbl_open_opts {
	size_t sz;		  /**< sizeof(struct maptbl_open_opts) of the caller */
	uint32_t flags;		  /**< 0 or MAPTBL_OPEN_INPLACE */
	uint32_t reserved;	  /**< must be zero */
	struct maptbl_diag *diag; /**< optional: receives the first problem and its offset */
};
#define maptbl_open_opts__last_field diag

/**
 * @brief The version of the library loaded at run time, "MAJOR.MINOR.PATCH".
 * Compare with MAPTBL_VERSION_STRING (maptbl/version.h) for the one compiled against.
 */
MAPTBL_API const char *maptbl_version(void);

/**
 * @brief Set the process-wide log callback.
 * @param fn callback, or NULL to discard messages (the default)
 * @param ctx passed to @p fn
 * @param max_level messages above this level are not passed
 */
MAPTBL_API void maptbl_set_log_fn(maptbl_log_fn fn, void *ctx, enum maptbl_log_level max_level);

/**
 * @brief Pass one message to the callback set with maptbl_set_log_fn() (if its level is not above
 * the maximum). For the kit's other libraries (libmaptbl-fs, libmaptbl-hw), which log through the
 * same callback; printf-style, no trailing newline.
 */
MAPTBL_API void maptbl_log(enum maptbl_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/**
 * @brief Fill @p opts with the defaults.
 * @param sz sizeof(*opts) as the caller compiled it
 * @return 0, or -EINVAL when @p opts is NULL or @p sz is smaller than the first field.
 */
MAPTBL_API int maptbl_build_opts_init(struct maptbl_build_opts *opts, size_t sz);

/** @brief Fill @p opts with the defaults; as maptbl_build_opts_init(). */
MAPTBL_API int maptbl_open_opts_init(struct maptbl_open_opts *opts, size_t sz);

/**
 * @brief Check an extent list as the builder does, without building.
 * @param ext extents sorted by lblk; @param nr how many
 * @param opts NULL for defaults; virtual_blocks and disk_blocks bound the extents
 * @return 0 when valid, -EBADMSG naming the first bad extent in opts->diag and the log,
 *         -EINVAL for bad options.
 */
MAPTBL_API int maptbl_extents_check(const struct maptbl_extent *ext, size_t nr,
				    const struct maptbl_build_opts *opts);

/**
 * @brief Build a table from an array of extents (bulk load, breadth-first layout).
 * @param ext extents sorted by lblk, not overlapping, len >= 1, each within 2^48 blocks, within
 *        opts->virtual_blocks and opts->disk_blocks when given; flags 0 or UNWRITTEN
 * @param nr number of extents (0 gives an empty table)
 * @param opts NULL for defaults
 * @param out receives the table; free it with maptbl_table_free()
 * @return 0; -EBADMSG for a bad extent list; -EINVAL for bad options; -E2BIG when the table
 *         would need more than 2^32 - 1 nodes or 16 levels; -ENOMEM.
 */
MAPTBL_API int maptbl_table_build(const struct maptbl_extent *ext, size_t nr,
				  const struct maptbl_build_opts *opts,
				  struct maptbl_table **out);

/**
 * @brief The size, depth and node count maptbl_table_build() would give, without the extents.
 *
 * The model is the builder's own: leaf, wide-leaf and index capacities from @p opts (node size,
 * fill), leaves filled in order, then index levels until one root. With @p nr_long = 0 the result
 * is exact for any extent list whose extents are at most 32768 blocks long and lie within 2^32
 * blocks of the start of their leaf (always true for files smaller than 2^32 blocks). Extents
 * longer than 32768 blocks force wide leaves; their placement decides how many, so with
 * @p nr_long > 0 the result is the worst case over all placements: each long extent is assumed to
 * cut the compact leaf before it short and to start a wide leaf, and no leaf holds fewer
 * extents than a wide leaf (but the last). It is an upper bound on the real table, reached by
 * some placement.
 *
 * @param nr_extents extents of the table
 * @param nr_long how many of them are longer than MAPTBL_COMPACT_MAX_LEN blocks (<= nr_extents)
 * @param opts NULL for defaults; node_size and fill_pct matter (the rest is validated only)
 * @param est receives bytes, nodes and depth
 * @return 0; -EINVAL for bad options or nr_long > nr_extents; -E2BIG when the table would need
 *         more than 2^32 - 1 nodes or 16 levels (as maptbl_table_build()).
 */
MAPTBL_API int maptbl_table_estimate(uint64_t nr_extents, uint64_t nr_long,
				     const struct maptbl_build_opts *opts,
				     struct maptbl_estimate *est);

/**
 * @brief Validate an untrusted table buffer and open it.
 *
 * Checks, in this order: size, magic, version, header_len, every size and offset, alignment,
 * every node reachable from the root (bounds, kind, level, entry count, ordering, exact index
 * ranges, cycles and sharing, extents inside the virtual and physical disk), then the checksums.
 * The buffer is copied (unless opts->flags has MAPTBL_OPEN_INPLACE); the caller keeps ownership
 * of @p buf.
 *
 * @param buf table bytes; @param len must equal the header's table_len
 * @param opts NULL for defaults
 * @param out receives the table; free it with maptbl_table_free()
 * @return 0; -EBADMSG (reason and offset in opts->diag and the log); -EOPNOTSUPP for an unknown
 *         incompat feature; -EINVAL for bad arguments; -ENOMEM.
 */
MAPTBL_API int maptbl_table_open(const void *buf, size_t len, const struct maptbl_open_opts *opts,
				 struct maptbl_table **out);

/** @brief Free a table. Accepts NULL. */
MAPTBL_API void maptbl_table_free(struct maptbl_table *t);

/** @brief The serialized table (table_len bytes), owned by @p t. */
MAPTBL_API const void *maptbl_table_data(const struct maptbl_table *t);
/** @brief Bytes of the serialized table (the header's table_len). */
MAPTBL_API size_t maptbl_table_len(const struct maptbl_table *t);
/** @brief Bytes per block. */
MAPTBL_API uint32_t maptbl_table_block_size(const struct maptbl_table *t);
/** @brief Bytes per node. */
MAPTBL_API uint32_t maptbl_table_node_size(const struct maptbl_table *t);
/** @brief Virtual disk size in blocks. */
MAPTBL_API uint64_t maptbl_table_virtual_blocks(const struct maptbl_table *t);
/** @brief Physical disk size in blocks recorded in the table, 0 if none. */
MAPTBL_API uint64_t maptbl_table_disk_blocks(const struct maptbl_table *t);
/**
 * @brief The disk the table maps, as recorded at build time (FORMAT.md §3.1), or NULL when none is
 * recorded. Owned by @p t.
 */
MAPTBL_API const char *maptbl_table_disk_path(const struct maptbl_table *t);
/** @brief The recorded identity of that disk, 0 if none. */
MAPTBL_API uint64_t maptbl_table_disk_id(const struct maptbl_table *t);
/** @brief Generation from the live word. */
MAPTBL_API uint32_t maptbl_table_generation(const struct maptbl_table *t);
/** @brief Number of extents (written and unwritten). */
MAPTBL_API uint64_t maptbl_table_nr_extents(const struct maptbl_table *t);
/** @brief Depth in levels (0 for an empty table). */
MAPTBL_API uint32_t maptbl_table_depth(const struct maptbl_table *t);
/** @brief Feature masks: @p which is 0 incompat, 1 ro_compat, 2 compat. */
MAPTBL_API uint64_t maptbl_table_features(const struct maptbl_table *t, int which);
/**
 * @brief Whether the table may only be read: an unknown ro_compat bit or unknown non-zero header
 * bytes past 128. Such a table may be dumped, verified and looked up, not modified or pushed.
 */
MAPTBL_API bool maptbl_table_readonly(const struct maptbl_table *t);

/**
 * @brief Look up logical block @p lblk (FORMAT.md §8). A table of 64 KiB to 64 MiB carries a lookup
 * index in host memory (about 1.3 bytes per extent, 2.7 with wide leaves) that narrows the search
 * in each node; it changes neither the answers nor the nodes touched.
 * @param m result: state, physical block, run length, nodes touched
 * @return 0; -ERANGE when @p lblk >= the virtual disk size; -EINVAL for NULL arguments.
 */
MAPTBL_API int maptbl_table_lookup(const struct maptbl_table *t, uint64_t lblk,
				   struct maptbl_mapping *m);

/**
 * @brief Look up @p nr logical blocks at once: the same answers as maptbl_table_lookup() for each,
 * faster on large tables because up to 32 independent walks are interleaved and their cache misses
 * overlap.
 * @param lblk the blocks; @param m receives one result per block (array of @p nr)
 * @return 0; -ERANGE when any block is past the virtual disk (then nothing is written to @p m);
 *         -EINVAL for NULL arguments.
 */
MAPTBL_API int maptbl_table_lookup_many(const struct maptbl_table *t, const uint64_t *lblk,
					size_t nr, struct maptbl_mapping *m);

/**
 * @brief Callback of maptbl_table_iterate(): return 0 to go on, anything else to stop (that
 * value is returned by maptbl_table_iterate()).
 */
typedef int (*maptbl_extent_fn)(void *ctx, const struct maptbl_extent *e);

/**
 * @brief Call @p fn for every extent in logical order, and for every absent subtree (flags
 * MAPTBL_EXTENT_ABSENT, pblk 0) in its place.
 * @return 0 after the last extent, or the first non-zero value @p fn returned.
 */
MAPTBL_API int maptbl_table_iterate(const struct maptbl_table *t, maptbl_extent_fn fn, void *ctx);

/**
 * @brief Statistics of the table (counted when it was built or opened).
 * @param st filled up to @p sz bytes; @param sz sizeof(*st) as the caller compiled it
 * @return 0, or -EINVAL.
 */
MAPTBL_API int maptbl_table_stats(const struct maptbl_table *t, struct maptbl_stats *st,
				  size_t sz);

/**
 * @brief Map a hole to physical blocks: insert the extent @p e (the fault service's "the host
 * allocated blocks for a write into a hole").
 *
 * The change is copy-on-write in the table's own buffer (docs/FORMAT.md §12): the leaf that gets
 * the extent and the path above it are written into free slots, then published with one 8-byte
 * release store of the live word (unless @p flags has MAPTBL_UPDATE_STAGE). The extent is merged
 * with a neighbour that continues it on the disk with the same flags. In a table without the
 * WIDE_LEAF feature, extents longer than 32768 blocks are stored as several adjacent ones.
 *
 * @param t table from maptbl_table_build() (with spare_nodes or fill_pct below 100 for room) or
 *        maptbl_table_open(); its buffer (maptbl_table_data()) is what a device walks
 * @param e the extent: lblk, pblk, len >= 1, flags 0 or MAPTBL_EXTENT_UNWRITTEN, reserved 0
 * @param flags 0 or MAPTBL_UPDATE_STAGE
 * @return 0, the table unchanged on any error: -EINVAL (NULL, length 0, unknown flags);
 *         -ERANGE (past the virtual disk, or the physical range past the disk or 2^48);
 *         -EEXIST (a block of the range is mapped or unwritten); -ENXIO (a block is absent:
 *         maptbl_table_unmark_absent() first); -ENOSPC (no free slot: maptbl_table_reclaim() or
 *         maptbl_table_compact()); -E2BIG (the tree would exceed 16 levels); -EROFS (read-only
 *         table); -ENOMEM.
 */
MAPTBL_API int maptbl_table_insert(struct maptbl_table *t, const struct maptbl_extent *e,
				   uint32_t flags);

/**
 * @brief Mark [@p lblk, @p lblk + @p len) written: unwritten extents in it become written
 * (split at the range's edges, merged with written neighbours that continue them on the disk).
 * Blocks already written stay as they are; when none is unwritten nothing is written or published.
 * @return 0; -ENOENT when a block of the range is a hole; -ENXIO when one is absent; otherwise
 *         as maptbl_table_insert(). The table is unchanged on any error.
 */
MAPTBL_API int maptbl_table_convert(struct maptbl_table *t, uint64_t lblk, uint64_t len,
				    uint32_t flags);

/**
 * @brief Make [@p lblk, @p lblk + @p len) a hole again (extents cut at its edges). A range that
 * holds no extent changes nothing.
 * @return 0; -ENXIO when a block of the range is absent; otherwise as maptbl_table_insert().
 */
MAPTBL_API int maptbl_table_punch(struct maptbl_table *t, uint64_t lblk, uint64_t len,
				  uint32_t flags);

/**
 * @brief Grow the virtual disk to @p virtual_blocks (the new tail is a hole). Changes the header's
 * virtual_blocks and header_crc (outside the live word), then publishes: see FORMAT.md §12 for
 * what a walker must do about it.
 * @return 0 (also when the size is unchanged); -EINVAL when smaller than now; -ERANGE above
 *         2^48; -EROFS.
 */
MAPTBL_API int maptbl_table_grow(struct maptbl_table *t, uint64_t virtual_blocks, uint32_t flags);

/**
 * @brief Prune [@p lblk, @p lblk + @p len): drop its extents and mark the range absent (an index
 * entry with child 0), so that any access to it faults (the paper's pruning under memory
 * pressure). The nodes that held only this range are retired and, once reclaimed, free.
 * @return 0; otherwise as maptbl_table_insert().
 */
MAPTBL_API int maptbl_table_mark_absent(struct maptbl_table *t, uint64_t lblk, uint64_t len,
					uint32_t flags);

/**
 * @brief Restore a pruned range: every block of [@p lblk, @p lblk + @p len) must be absent; it
 * becomes the extents @p ext (from the filesystem, as the builder takes them: sorted, not
 * overlapping, inside the range) and holes between them.
 * @return 0; -ENOENT when a block of the range is not absent; -EINVAL for a bad extent list;
 *         otherwise as maptbl_table_insert().
 */
MAPTBL_API int maptbl_table_unmark_absent(struct maptbl_table *t, uint64_t lblk, uint64_t len,
					  const struct maptbl_extent *ext, size_t nr,
					  uint32_t flags);

/**
 * @brief Publish the changes staged with MAPTBL_UPDATE_STAGE: one release store of the live word
 * (root | generation + 1 << 32). Nothing staged: nothing happens.
 * @return 0; -EINVAL for a bad handle.
 */
MAPTBL_API int maptbl_table_publish(struct maptbl_table *t);

/**
 * @brief Free the nodes that publishes replaced, once no walker can read them.
 *
 * A walker that loaded generation g from the live word reads only nodes of tree g; the publish of
 * generation g + 1 and later retire nodes of it. Call this with @p oldest = the oldest generation
 * a walk still in progress may have loaded (the current generation when no walk is in progress,
 * e.g. after the device acknowledged "walk again" and holds no walk): every node retired by a
 * publish of generation <= @p oldest becomes free for later updates. Generations compare as
 * 32-bit serial numbers.
 * @return the number of nodes freed (>= 0); -EINVAL for a bad handle.
 */
MAPTBL_API int maptbl_table_reclaim(struct maptbl_table *t, uint32_t oldest);

/**
 * @brief Room for updates: slots, free, retired and pending nodes, and what updates wrote.
 * @param sp filled up to @p sz bytes; @param sz sizeof(*sp) as the caller compiled it
 * @return 0; -EINVAL; -ENOMEM (the first call sets up the writer state).
 */
MAPTBL_API int maptbl_table_space(struct maptbl_table *t, struct maptbl_space *sp, size_t sz);

/**
 * @brief When the room runs out: a new, packed table with the current tree (staged changes
 * included) and room for more, in a new buffer.
 *
 * The extents and absent ranges are laid out again as maptbl_table_build() does (breadth-first,
 * @p opts->fill_pct per node, @p opts->spare_nodes free slots after the tree), with the disk
 * record and features of @p t, and generation @p opts->generation or, when 0, that of @p t plus
 * one. @p t is not changed. To switch: point the device at maptbl_table_data(*out) (the VF's
 * table base and size registers: that store is the publish for a new buffer), then keep @p t until
 * no walker reads it any more and free it.
 *
 * @param opts NULL for defaults; block_size, node_size and disk_blocks must be 0 or those of
 *        @p t, virtual_blocks 0 or not smaller, disk_path and disk_id unset
 * @param out receives the new table; free it with maptbl_table_free()
 * @return 0; -EINVAL for bad options; -E2BIG; -EROFS; -ENOMEM.
 */
MAPTBL_API int maptbl_table_compact(struct maptbl_table *t, const struct maptbl_build_opts *opts,
				    struct maptbl_table **out);

/**
 * @brief Map a walker status to a negative errno (0 for MAPTBL_WALK_OK): BAD_HEADER, BAD_NODE and
 * BAD_CRC give -EBADMSG, UNSUPPORTED -EOPNOTSUPP, OUT_OF_RANGE -ERANGE, READ_ERROR -EIO,
 * BAD_ARG -EINVAL.
 */
MAPTBL_API int maptbl_walk_errno(enum maptbl_walk_status st);

/** @brief A short English description of a walker status (static string). */
MAPTBL_API const char *maptbl_walk_strerror(enum maptbl_walk_status st);

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_MAPTBL_H */
