/* SPDX-License-Identifier: MIT */
/*
 * fs.c - maptbl_fs_map_file(): pick the backend, sync, resolve the disk, and turn the backend's
 * byte records into table extents, applying the safety rules (EXTENTS.md §3.5).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <unistd.h>

#include "internal.h"

#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif

MAPTBL_API int maptbl_fs_opts_init(struct maptbl_fs_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(size_t))
		return -EINVAL;
	memset(opts, 0, sz); /* all of the caller's struct: fields we do not know must be 0 */
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_fs_opts) == 32, "fs opts changed");
	return 0;
}

int mtfs_grow_records(struct maptbl_fs_map *m)
{
	size_t cap = m->cap_rec ? m->cap_rec * 2 : 256;
	struct mtfs_record *r = realloc(m->rec, cap * sizeof(*r));

	if (!r)
		return -ENOMEM;
	m->rec = r;
	m->cap_rec = cap;
	return 0;
}

int mtfs_add_finding(struct maptbl_fs_map *m, uint64_t offset, uint64_t length, uint32_t rule,
		     uint32_t refuses)
{
	struct maptbl_fs_finding *f;

	if (!length)
		return 0; /* an empty range (an empty file) breaks no rule */
	/* One finding for a run of the same rule. */
	if (m->nr_find) {
		f = &m->find[m->nr_find - 1];
		if (f->rule == rule && f->refuses == refuses && f->offset + f->length == offset) {
			f->length += length;
			return 0;
		}
	}
	if (m->nr_find == m->cap_find) {
		size_t cap = m->cap_find ? m->cap_find * 2 : 16;

		f = realloc(m->find, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		m->find = f;
		m->cap_find = cap;
	}
	m->find[m->nr_find++] = (struct maptbl_fs_finding){ offset, length, rule, refuses };
	return 0;
}

MAPTBL_API const char *maptbl_fs_rule_name(uint32_t rule)
{
	switch (rule) {
	case MAPTBL_FS_RULE_DELALLOC:
		return "delalloc";
	case MAPTBL_FS_RULE_INLINE:
		return "inline";
	case MAPTBL_FS_RULE_NOT_ALIGNED:
		return "not-aligned";
	case MAPTBL_FS_RULE_ENCODED:
		return "encoded";
	case MAPTBL_FS_RULE_ENCRYPTED:
		return "encrypted";
	case MAPTBL_FS_RULE_SHARED:
		return "shared";
	case MAPTBL_FS_RULE_OTHER_DEVICE:
		return "other-device";
	case MAPTBL_FS_RULE_UNKNOWN:
		return "unknown-location";
	case MAPTBL_FS_RULE_COW:
		return "cow";
	case MAPTBL_FS_RULE_CHECKSUMMED:
		return "checksummed";
	case MAPTBL_FS_RULE_PROFILE:
		return "profile";
	}
	return "?";
}

/* Filesystems (or layers) without a block device of their own, named for the message. */
static const char *fs_type_name(long type)
{
	switch ((unsigned long)type) {
	case TMPFS_MAGIC:
		return "tmpfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	case NFS_SUPER_MAGIC:
		return "NFS";
	case 0xFF534D42: /* CIFS_SUPER_MAGIC */
	case 0xFE534D42: /* SMB2_SUPER_MAGIC */
		return "SMB/CIFS";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case 0x65735546: /* FUSE_SUPER_MAGIC */
		return "FUSE";
	case RAMFS_MAGIC:
		return "ramfs";
	case 0x6a656a63: /* V9FS */
		return "9p";
	case EXT4_SUPER_MAGIC:
		return "ext4";
	case XFS_SUPER_MAGIC:
		return "xfs";
	}
	return NULL;
}

/*
 * Bytes to table blocks. The block size is a power of two whenever it comes from the options
 * (checked) or from a Linux filesystem: then shift and mask, as six 64-bit divisions a record were
 * most of make_extents()'s time on a 100,000-extent file (docs/PERFORMANCE.md). Anything else
 * (an st_blksize that is not a power of two) divides, with the same results.
 */
struct blkmath {
	uint64_t bs, mask;
	int shift; /* -1: not a power of two */
};

static inline uint64_t to_blocks(const struct blkmath *b, uint64_t bytes)
{
	return b->shift >= 0 ? bytes >> b->shift : bytes / b->bs;
}

static inline bool misaligned(const struct blkmath *b, uint64_t x, uint64_t y, uint64_t z)
{
	return b->shift >= 0 ? ((x | y | z) & b->mask) != 0 : (x % b->bs || y % b->bs || z % b->bs);
}

/*
 * Records (bytes, fs device) -> extents (table blocks, absolute on the disk), merged.
 *
 * In place: an extent is as large as a record and each record gives at most one extent, so
 * extent n (n <= i) is stored only once record i has been copied out, and the records' array
 * becomes the extents' one. On a 100,000-extent file a second array cost more than the
 * conversion itself (docs/PERFORMANCE.md). Records are read with memcpy(), which may alias the
 * extents stored before them.
 */
static int make_extents(struct maptbl_fs_map *m)
{
	uint64_t bs = m->block_size;
	struct blkmath b = { bs, bs - 1, (bs & (bs - 1)) ? -1 : __builtin_ctzll(bs) };
	struct maptbl_extent *ext;
	size_t i, n = 0;
	int err;

	_Static_assert(sizeof(struct maptbl_extent) == sizeof(struct mtfs_record),
		       "make_extents() converts records into extents in place");
	if (!m->rec && !(m->rec = malloc(sizeof(*m->rec))))
		return -ENOMEM;
	ext = (struct maptbl_extent *)(void *)m->rec;
	for (i = 0; i < m->nr_rec; i++) {
		struct maptbl_extent *prev = n ? &ext[n - 1] : NULL;
		struct mtfs_record r;
		uint64_t phys;
		uint32_t fl;

		/* Field by field: straight into registers, not through a copy on the stack. */
		memcpy(&r.logical, &m->rec[i].logical, sizeof(r.logical));
		memcpy(&r.physical, &m->rec[i].physical, sizeof(r.physical));
		memcpy(&r.length, &m->rec[i].length, sizeof(r.length));
		memcpy(&r.flags, &m->rec[i].flags, sizeof(r.flags));
		phys = r.physical + m->disk_offset;
		fl = r.flags & MTFS_REC_UNWRITTEN ? MAPTBL_EXTENT_UNWRITTEN : 0;
		if (misaligned(&b, r.logical, phys, r.length)) {
			err = mtfs_add_finding(m, r.logical, r.length, MAPTBL_FS_RULE_NOT_ALIGNED,
					       MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
			if (err)
				return err;
			continue;
		}
		if (r.flags & MTFS_REC_SHARED) {
			err = mtfs_add_finding(m, r.logical, r.length, MAPTBL_FS_RULE_SHARED,
					       MAPTBL_FS_REFUSES_WRITABLE);
			if (err)
				return err;
		}
		if (prev && prev->lblk * bs + prev->len * bs > r.logical) {
			/* A record that overlaps the previous one (the file changed between two
			 * FIEMAP calls): trust neither. */
			mtfs_log(MAPTBL_LOG_ERROR, "%s: overlapping extent records at byte %llu",
				 m->path, (unsigned long long)r.logical);
			return -EIO;
		}
		/* Merge logically and physically contiguous records of the same kind. */
		if (prev && prev->flags == fl && (prev->lblk + prev->len) * bs == r.logical &&
		    (prev->pblk + prev->len) * bs == phys) {
			prev->len += to_blocks(&b, r.length);
			continue;
		}
		ext[n].lblk = to_blocks(&b, r.logical);
		ext[n].pblk = to_blocks(&b, phys);
		ext[n].len = to_blocks(&b, r.length);
		ext[n].flags = fl;
		ext[n].reserved = 0;
		n++;
	}
	/* The array now holds extents: it moves from rec to ext. */
	m->ext = ext;
	m->rec = NULL;
	m->nr_rec = m->cap_rec = 0;
	m->nr_ext = n;
	return 0;
}

static int cmp_finding(const void *a, const void *b)
{
	const struct maptbl_fs_finding *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

MAPTBL_API int maptbl_fs_map_file(const char *path, const struct maptbl_fs_opts *opts,
				  struct maptbl_fs_map **out)
{
	struct maptbl_fs_opts o;
	struct maptbl_fs_map *m;
	struct statfs sfs;
	struct stat st;
	bool is_btrfs;
	int fd = -1, err;

	if (!path || !out)
		return -EINVAL;
	*out = NULL;
	maptbl_fs_opts_init(&o, sizeof(o));
	if (opts) {
		if (opts->sz < offsetof(struct maptbl_fs_opts, image) + sizeof(opts->image))
			return -EINVAL;
		memcpy(&o, opts, sizeof(o));
		/* A newer caller's bigger struct: what this version does not know must be 0. */
		for (size_t i = sizeof(o); i < opts->sz; i++)
			if (((const uint8_t *)opts)[i])
				return -EINVAL;
		if (o.reserved || o.source > MAPTBL_FS_SOURCE_BTRFS || (o.flags & ~MAPTBL_FS_NO_SYNC))
			return -EINVAL;
	}
	if (o.block_size && (o.block_size < MAPTBL_MIN_BLOCK_SIZE ||
			     o.block_size > MAPTBL_MAX_BLOCK_SIZE || (o.block_size & (o.block_size - 1))))
		return -EINVAL;
	if (o.image && !o.source)
		o.source = MAPTBL_FS_SOURCE_EXT4_IMAGE;
	if ((o.source == MAPTBL_FS_SOURCE_EXT4_IMAGE) != !!o.image)
		return -EINVAL;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->path = strdup(path);
	if (!m->path) {
		err = -ENOMEM;
		goto fail;
	}

	if (o.image) {
		m->source = MAPTBL_FS_SOURCE_EXT4_IMAGE;
		err = mtfs_ext4_image(m, o.image, path);
		if (err)
			goto fail;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == EPERM)
			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOATIME);
		if (fd < 0) {
			err = -errno;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
			err = -errno;
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: not a regular file", path);
			goto fail;
		}
		m->file_size = (uint64_t)st.st_size;
		m->fs_block_size = (uint32_t)st.st_blksize;
		is_btrfs = (unsigned long)sfs.f_type == BTRFS_SUPER_MAGIC;
		if (major(st.st_dev) == 0 && !is_btrfs) {
			const char *name = fs_type_name(sfs.f_type);

			mtfs_log(MAPTBL_LOG_ERROR,
				 "%s: on %s, which has no block device a controller could read: refused",
				 path, name ? name : "a filesystem");
			err = -EOPNOTSUPP;
			goto fail;
		}
		snprintf(m->layers, sizeof(m->layers), "%s",
			 fs_type_name(sfs.f_type) ? fs_type_name(sfs.f_type) : "filesystem");
		/* btrfs: the device comes from the chunk map (st_dev is an anonymous device). */
		if (!is_btrfs && (err = mtfs_resolve_blkdev(m, st.st_dev)))
			goto fail;
		if (!o.source)
			o.source = is_btrfs ? MAPTBL_FS_SOURCE_BTRFS
			: (unsigned long)sfs.f_type == XFS_SUPER_MAGIC ? MAPTBL_FS_SOURCE_XFS
								       : MAPTBL_FS_SOURCE_FIEMAP;
		m->source = o.source;
		if (o.source == MAPTBL_FS_SOURCE_XFS && (unsigned long)sfs.f_type != XFS_SUPER_MAGIC) {
			mtfs_log(MAPTBL_LOG_ERROR, "%s: --source xfs on a file that is not on XFS", path);
			err = -EINVAL;
			goto fail;
		}
		if ((o.source == MAPTBL_FS_SOURCE_BTRFS) != is_btrfs) {
			mtfs_log(MAPTBL_LOG_ERROR, is_btrfs
				 ? "%s: on btrfs, FIEMAP gives btrfs logical addresses, not device offsets: use the btrfs source"
				 : "%s: --source btrfs on a file that is not on btrfs", path);
			err = -EINVAL;
			goto fail;
		}
		/* Sync first: no delalloc, and the mapping metadata is durable (swapon does the
		 * same, fs/iomap/swapfile.c). */
		if (!(o.flags & MAPTBL_FS_NO_SYNC) && fsync(fd) < 0 && errno != EINVAL) {
			err = -errno;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: fsync: %s", path, strerror(errno));
			goto fail;
		}
		{
			/* FIEMAP does not report fscrypt on ext4 (EXTENTS.md §2.2): ask statx. */
			struct statx stx;

			if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0 &&
			    (stx.stx_attributes_mask & STATX_ATTR_ENCRYPTED) &&
			    (stx.stx_attributes & STATX_ATTR_ENCRYPTED)) {
				err = mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_ENCRYPTED,
						       MAPTBL_FS_REFUSES_WRITABLE |
							       MAPTBL_FS_REFUSES_READONLY);
				if (err)
					goto fail;
			}
		}
		err = o.source == MAPTBL_FS_SOURCE_XFS	  ? mtfs_xfs(m, fd, o.flags)
		      : o.source == MAPTBL_FS_SOURCE_BTRFS ? mtfs_btrfs(m, fd, st.st_ino, o.flags)
							   : mtfs_fiemap(m, fd, o.flags);
		if (err)
			goto fail;
		close(fd);
		fd = -1;
	}
	m->block_size = o.block_size ? o.block_size : m->fs_block_size;
	if (m->block_size < MAPTBL_MIN_BLOCK_SIZE || m->block_size > MAPTBL_MAX_BLOCK_SIZE)
		m->block_size = 4096;
	err = make_extents(m);
	if (err)
		goto fail;
	if (m->disk && (err = maptbl_fs_disk_id(m->disk, &m->disk_id))) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: %s", m->disk, strerror(-err));
		goto fail;
	}
	if (m->nr_find) /* qsort(NULL, 0, ...) is undefined: UBSan in CI catches it */
		qsort(m->find, m->nr_find, sizeof(*m->find), cmp_finding);
	*out = m;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	maptbl_fs_map_free(m);
	return err;
}

MAPTBL_API void maptbl_fs_map_free(struct maptbl_fs_map *m)
{
	if (!m)
		return;
	free(m->path);
	free(m->rec);
	free(m->ext);
	free(m->find);
	free(m->disk);
	free(m);
}

MAPTBL_API int maptbl_fs_map_check(const struct maptbl_fs_map *m, bool read_only)
{
	uint32_t bit = read_only ? MAPTBL_FS_REFUSES_READONLY : MAPTBL_FS_REFUSES_WRITABLE;
	int err = 0;
	size_t i;

	if (!m)
		return -EINVAL;
	for (i = 0; i < m->nr_find; i++) {
		const struct maptbl_fs_finding *f = &m->find[i];

		if (!(f->refuses & bit))
			continue;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: bytes %llu..%llu: %s: refused for a %s table", m->path,
			 (unsigned long long)f->offset,
			 (unsigned long long)(f->offset + f->length - 1), maptbl_fs_rule_name(f->rule),
			 read_only ? "read-only" : "writable");
		err = -EINVAL;
	}
	return err;
}

MAPTBL_API const struct maptbl_extent *maptbl_fs_map_extents(const struct maptbl_fs_map *m,
							      size_t *nr)
{
	if (!m) {
		if (nr)
			*nr = 0;
		return NULL;
	}
	if (nr)
		*nr = m->nr_ext;
	return m->ext;
}

MAPTBL_API size_t maptbl_fs_map_nr_findings(const struct maptbl_fs_map *m)
{
	return m ? m->nr_find : 0;
}

MAPTBL_API const struct maptbl_fs_finding *maptbl_fs_map_finding(const struct maptbl_fs_map *m,
								 size_t i)
{
	return m && i < m->nr_find ? &m->find[i] : NULL;
}

MAPTBL_API uint64_t maptbl_fs_map_file_size(const struct maptbl_fs_map *m)
{
	return m ? m->file_size : 0;
}

MAPTBL_API uint32_t maptbl_fs_map_block_size(const struct maptbl_fs_map *m)
{
	return m ? m->block_size : 0;
}

MAPTBL_API const char *maptbl_fs_map_disk(const struct maptbl_fs_map *m)
{
	return m ? m->disk : NULL;
}

MAPTBL_API int maptbl_fs_disk_id(const char *path, uint64_t *id)
{
	uint64_t v[3], h = UINT64_C(14695981039346656037);
	struct stat st;
	size_t i;

	if (!path || !id)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	/* FNV-1a over what names the disk: a block device by its number, a file by its inode. */
	v[0] = S_ISBLK(st.st_mode) ? 1 : 2;
	v[1] = S_ISBLK(st.st_mode) ? (uint64_t)st.st_rdev : (uint64_t)st.st_dev;
	v[2] = S_ISBLK(st.st_mode) ? 0 : (uint64_t)st.st_ino;
	for (i = 0; i < sizeof(v); i++) {
		h ^= ((const uint8_t *)v)[i];
		h *= UINT64_C(1099511628211);
	}
	*id = h ? h : 1;
	return 0;
}

MAPTBL_API uint64_t maptbl_fs_map_disk_id(const struct maptbl_fs_map *m)
{
	return m ? m->disk_id : 0;
}

MAPTBL_API uint64_t maptbl_fs_map_disk_size(const struct maptbl_fs_map *m)
{
	return m ? m->disk_size : 0;
}

MAPTBL_API uint64_t maptbl_fs_map_disk_offset(const struct maptbl_fs_map *m)
{
	return m ? m->disk_offset : 0;
}

MAPTBL_API const char *maptbl_fs_map_layers(const struct maptbl_fs_map *m)
{
	return m ? m->layers : NULL;
}

MAPTBL_API uint32_t maptbl_fs_map_source(const struct maptbl_fs_map *m)
{
	return m ? m->source : 0;
}
