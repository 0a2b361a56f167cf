/* SPDX-License-Identifier: MIT */
/*
 * maptbl/format.h - the on-device table format, version 1 (docs/FORMAT.md).
 *
 * This header is the C transcription of docs/FORMAT.md; the two change together. It is
 * freestanding: it needs only <stdint.h> and <stddef.h>, calls no function and allocates nothing,
 * so a kernel driver, a device model or an HLS flow can include it.
 *
 * Every on-wire structure is declared with explicit little-endian storage types (maptbl_le16_t,
 * ...) that are plain byte arrays, so no compiler can lay them out differently and no code can
 * read them without the conversion helpers below. The helpers are pure functions and thread-safe.
 */
#ifndef MAPTBL_FORMAT_H
#define MAPTBL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Little-endian storage types (byte arrays: alignment 1, no padding). @{ */
typedef struct { uint8_t b[2]; } maptbl_le16_t;
typedef struct { uint8_t b[4]; } maptbl_le32_t;
typedef struct { uint8_t b[8]; } maptbl_le64_t;
/** @} */

/** @brief Read a little-endian 16-bit field. */
static inline uint16_t maptbl_le16_to_cpu(maptbl_le16_t v)
{
	return (uint16_t)(v.b[0] | (uint16_t)v.b[1] << 8);
}

/** @brief Read a little-endian 32-bit field. */
static inline uint32_t maptbl_le32_to_cpu(maptbl_le32_t v)
{
	return (uint32_t)v.b[0] | (uint32_t)v.b[1] << 8 | (uint32_t)v.b[2] << 16 |
	       (uint32_t)v.b[3] << 24;
}

/** @brief Read a little-endian 64-bit field. */
static inline uint64_t maptbl_le64_to_cpu(maptbl_le64_t v)
{
	return (uint64_t)v.b[0] | (uint64_t)v.b[1] << 8 | (uint64_t)v.b[2] << 16 |
	       (uint64_t)v.b[3] << 24 | (uint64_t)v.b[4] << 32 | (uint64_t)v.b[5] << 40 |
	       (uint64_t)v.b[6] << 48 | (uint64_t)v.b[7] << 56;
}

/** @brief Make a little-endian 16-bit field. */
static inline maptbl_le16_t maptbl_cpu_to_le16(uint16_t x)
{
	maptbl_le16_t v;

	v.b[0] = (uint8_t)x;
	v.b[1] = (uint8_t)(x >> 8);
	return v;
}

/** @brief Make a little-endian 32-bit field. */
static inline maptbl_le32_t maptbl_cpu_to_le32(uint32_t x)
{
	maptbl_le32_t v;
	int i;

	for (i = 0; i < 4; i++)
		v.b[i] = (uint8_t)(x >> (8 * i));
	return v;
}

/** @brief Make a little-endian 64-bit field. */
static inline maptbl_le64_t maptbl_cpu_to_le64(uint64_t x)
{
	maptbl_le64_t v;
	int i;

	for (i = 0; i < 8; i++)
		v.b[i] = (uint8_t)(x >> (8 * i));
	return v;
}

/** @name Format constants (FORMAT.md §1-§5). @{ */
#define MAPTBL_MAGIC_STR	"\x89MAPTBL\n"	/**< header magic, 8 bytes without the NUL */
#define MAPTBL_MAGIC_LEN	8
#define MAPTBL_VERSION		1
#define MAPTBL_HEADER_SIZE	128		/**< fixed part of the header this version knows */
#define MAPTBL_NODE_MAGIC	0x544Eu		/**< "NT" */
#define MAPTBL_NODE_HDR_SIZE	32
#define MAPTBL_MAX_BLK		(UINT64_C(1) << 48)	/**< every address and end is <= this */
#define MAPTBL_MAX_LEVEL	15		/**< highest node level; depth <= 16 */
#define MAPTBL_MAX_DEPTH	(MAPTBL_MAX_LEVEL + 1)
#define MAPTBL_MIN_BLOCK_SIZE	512u
#define MAPTBL_MAX_BLOCK_SIZE	65536u
#define MAPTBL_MIN_NODE_SIZE	256u
#define MAPTBL_MAX_NODE_SIZE	65536u
#define MAPTBL_DEFAULT_NODE_SIZE 4096u		/**< from the cost model, FORMAT.md §10 */
#define MAPTBL_MAX_ENTRIES	65535u		/**< nr_entries is 16 bits */
#define MAPTBL_COMPACT_MAX_LEN	32768u		/**< longest extent a compact entry holds */
#define MAPTBL_COMPACT_MAX_OFF	UINT64_C(0xFFFFFFFF)	/**< largest lblk_off */
/** @} */

/** @name Feature bits (FORMAT.md §4). @{ */
#define MAPTBL_INCOMPAT_WIDE_LEAF	(UINT64_C(1) << 0)
#define MAPTBL_INCOMPAT_KNOWN		(MAPTBL_INCOMPAT_WIDE_LEAF)
#define MAPTBL_RO_COMPAT_KNOWN		UINT64_C(0)
#define MAPTBL_COMPAT_DISK_INFO		(UINT64_C(1) << 0)	/**< header bytes 128.. name the disk */
#define MAPTBL_COMPAT_KNOWN		(MAPTBL_COMPAT_DISK_INFO)
/** @} */

/** Node kinds (struct maptbl_node_hdr.kind). */
enum maptbl_node_kind {
	MAPTBL_NODE_INDEX = 1,		/**< entries are struct maptbl_index_entry */
	MAPTBL_NODE_LEAF_COMPACT = 2,	/**< entries are struct maptbl_compact_entry */
	MAPTBL_NODE_LEAF_WIDE = 3,	/**< entries are struct maptbl_wide_entry */
};

/** @name Entry flag bits. @{ */
#define MAPTBL_COMPACT_UNWRITTEN	0x8000u	/**< in len_flags */
#define MAPTBL_COMPACT_LEN_MASK		0x7FFFu	/**< len - 1 */
#define MAPTBL_WIDE_UNWRITTEN		0x0001u	/**< in flags */
/** @} */

/** The table header, node 0 bytes 0..127 (FORMAT.md §3). */
struct maptbl_header {
	uint8_t magic[8];		/**< MAPTBL_MAGIC_STR */
	maptbl_le16_t version;		/**< MAPTBL_VERSION */
	maptbl_le16_t header_len;	/**< >= 128, multiple of 8, <= node_size */
	maptbl_le32_t header_crc;	/**< CRC32C, bytes 12..23 as zero */
	maptbl_le32_t root;		/**< live word, low half: root node, 0 = empty */
	maptbl_le32_t generation;	/**< live word, high half */
	maptbl_le64_t incompat;
	maptbl_le64_t ro_compat;
	maptbl_le64_t compat;
	maptbl_le32_t block_size;	/**< bytes, power of two, 512..65536 */
	maptbl_le32_t node_size;	/**< bytes, power of two, 256..65536 */
	maptbl_le64_t virtual_blocks;	/**< virtual disk size in blocks */
	maptbl_le64_t disk_blocks;	/**< physical disk size in blocks, 0 = unknown */
	maptbl_le64_t table_len;	/**< bytes, multiple of node_size */
	uint8_t reserved[48];		/**< must be zero */
};

/**
 * The disk record (FORMAT.md §3.1): header bytes 128..143 when MAPTBL_COMPAT_DISK_INFO is set,
 * followed by path_len bytes of path and zero padding up to header_len.
 */
struct maptbl_disk_info {
	maptbl_le64_t disk_id;		/**< identity of the disk, 0 = not recorded */
	maptbl_le16_t path_len;		/**< bytes of path after this record, 0 = none */
	uint8_t reserved[6];		/**< must be zero */
};
#define MAPTBL_DISK_INFO_OFFSET	128
#define MAPTBL_DISK_PATH_OFFSET	144

/** Header of every tree node (FORMAT.md §5). */
struct maptbl_node_hdr {
	maptbl_le16_t magic;		/**< MAPTBL_NODE_MAGIC */
	uint8_t kind;			/**< enum maptbl_node_kind */
	uint8_t level;			/**< 0 = leaf, index 1..15 */
	maptbl_le16_t nr_entries;	/**< 1..capacity */
	maptbl_le16_t flags;		/**< must be zero */
	maptbl_le32_t crc;		/**< CRC32C of [0, 32 + nr * esz), crc as zero */
	maptbl_le32_t self;		/**< this node's number */
	maptbl_le64_t base_lblk;	/**< first logical block of entry 0 */
	maptbl_le64_t reserved;		/**< must be zero */
};

/** Index entry (FORMAT.md §6.1). */
struct maptbl_index_entry {
	maptbl_le32_t first_lo;
	maptbl_le16_t first_hi;
	maptbl_le16_t nblocks_hi;
	maptbl_le32_t nblocks_lo;
	maptbl_le32_t child;		/**< node number, 0 = absent subtree */
};

/** Compact leaf entry (FORMAT.md §6.2). */
struct maptbl_compact_entry {
	maptbl_le32_t lblk_off;		/**< from the node's base_lblk */
	maptbl_le16_t len_flags;	/**< len - 1 | MAPTBL_COMPACT_UNWRITTEN */
	maptbl_le16_t pblk_hi;
	maptbl_le32_t pblk_lo;
};

/** Wide leaf entry (FORMAT.md §6.3). */
struct maptbl_wide_entry {
	maptbl_le64_t lblk;
	maptbl_le64_t pblk;
	maptbl_le32_t len_lo;
	maptbl_le16_t len_hi;
	maptbl_le16_t flags;		/**< MAPTBL_WIDE_UNWRITTEN */
};

_Static_assert(sizeof(struct maptbl_header) == MAPTBL_HEADER_SIZE, "header size");
_Static_assert(offsetof(struct maptbl_header, header_crc) == 12, "header_crc");
_Static_assert(offsetof(struct maptbl_header, root) == 16, "live word");
_Static_assert(offsetof(struct maptbl_header, incompat) == 24, "incompat");
_Static_assert(offsetof(struct maptbl_header, block_size) == 48, "block_size");
_Static_assert(offsetof(struct maptbl_header, virtual_blocks) == 56, "virtual_blocks");
_Static_assert(offsetof(struct maptbl_header, disk_blocks) == 64, "disk_blocks");
_Static_assert(offsetof(struct maptbl_header, table_len) == 72, "table_len");
_Static_assert(offsetof(struct maptbl_header, reserved) == 80, "reserved");
_Static_assert(sizeof(struct maptbl_disk_info) == MAPTBL_DISK_PATH_OFFSET - MAPTBL_DISK_INFO_OFFSET,
	       "disk info size");
_Static_assert(sizeof(struct maptbl_node_hdr) == MAPTBL_NODE_HDR_SIZE, "node header size");
_Static_assert(offsetof(struct maptbl_node_hdr, crc) == 8, "node crc");
_Static_assert(offsetof(struct maptbl_node_hdr, self) == 12, "node self");
_Static_assert(offsetof(struct maptbl_node_hdr, base_lblk) == 16, "node base_lblk");
_Static_assert(sizeof(struct maptbl_index_entry) == 16, "index entry size");
_Static_assert(offsetof(struct maptbl_index_entry, nblocks_lo) == 8, "index nblocks_lo");
_Static_assert(offsetof(struct maptbl_index_entry, child) == 12, "index child");
_Static_assert(sizeof(struct maptbl_compact_entry) == 12, "compact entry size");
_Static_assert(offsetof(struct maptbl_compact_entry, pblk_lo) == 8, "compact pblk_lo");
_Static_assert(sizeof(struct maptbl_wide_entry) == 24, "wide entry size");
_Static_assert(offsetof(struct maptbl_wide_entry, flags) == 22, "wide flags");

/** @brief Size in bytes of one entry of a node of @p kind, or 0 for an unknown kind. */
static inline uint32_t maptbl_entry_size(unsigned kind)
{
	switch (kind) {
	case MAPTBL_NODE_INDEX:
		return (uint32_t)sizeof(struct maptbl_index_entry);
	case MAPTBL_NODE_LEAF_COMPACT:
		return (uint32_t)sizeof(struct maptbl_compact_entry);
	case MAPTBL_NODE_LEAF_WIDE:
		return (uint32_t)sizeof(struct maptbl_wide_entry);
	default:
		return 0;
	}
}

/** @brief Entries a node of @p node_size bytes and @p kind holds (0 for an unknown kind). */
static inline uint32_t maptbl_node_capacity(uint32_t node_size, unsigned kind)
{
	uint32_t esz = maptbl_entry_size(kind);
	uint32_t cap;

	if (!esz || node_size < MAPTBL_NODE_HDR_SIZE)
		return 0;
	cap = (node_size - MAPTBL_NODE_HDR_SIZE) / esz;
	return cap > MAPTBL_MAX_ENTRIES ? MAPTBL_MAX_ENTRIES : cap;
}

/** @brief first logical block of an index entry. */
static inline uint64_t maptbl_index_first(const struct maptbl_index_entry *e)
{
	return (uint64_t)maptbl_le16_to_cpu(e->first_hi) << 32 | maptbl_le32_to_cpu(e->first_lo);
}

/** @brief number of logical blocks an index entry covers. */
static inline uint64_t maptbl_index_nblocks(const struct maptbl_index_entry *e)
{
	return (uint64_t)maptbl_le16_to_cpu(e->nblocks_hi) << 32 |
	       maptbl_le32_to_cpu(e->nblocks_lo);
}

/** @brief physical block of a compact entry. */
static inline uint64_t maptbl_compact_pblk(const struct maptbl_compact_entry *e)
{
	return (uint64_t)maptbl_le16_to_cpu(e->pblk_hi) << 32 | maptbl_le32_to_cpu(e->pblk_lo);
}

/** @brief length in blocks of a compact entry (1..32768). */
static inline uint32_t maptbl_compact_len(const struct maptbl_compact_entry *e)
{
	return (maptbl_le16_to_cpu(e->len_flags) & MAPTBL_COMPACT_LEN_MASK) + 1u;
}

/** @brief length in blocks of a wide entry. */
static inline uint64_t maptbl_wide_len(const struct maptbl_wide_entry *e)
{
	return (uint64_t)maptbl_le16_to_cpu(e->len_hi) << 32 | maptbl_le32_to_cpu(e->len_lo);
}

#ifdef __cplusplus
}
#endif

#endif /* MAPTBL_FORMAT_H */
