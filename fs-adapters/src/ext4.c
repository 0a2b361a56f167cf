/* SPDX-License-Identifier: MIT */
/*
 * ext4.c - the offline backend: an ext4 (or ext2/3) image file or unmounted block device, read
 * through libext2fs (EXTENTS.md §6.1). Path -> inode with ext2fs_namei(); extent-mapped files
 * through the extent handle (uninitialized extents become unwritten records); block-mapped files
 * through ext2fs_block_iterate3(), merged into extents; inline-data files are refused.
 * libext2fs errcode_t values become -errno here, and error_message() goes to the log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include "internal.h"

int mtfs_e2errno(long rc)
{
	switch (rc) {
	case EXT2_ET_FILE_NOT_FOUND:
		return -ENOENT;
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_BAD_MAGIC:
	case EXT2_ET_SB_CSUM_INVALID:
	case EXT2_ET_CORRUPT_SUPERBLOCK:
	case EXT2_ET_SHORT_READ:
		return -EINVAL;
	default:
		return rc > 0 && rc < 4096 ? -(int)rc : -EIO;
	}
}

static int e2err(struct maptbl_fs_map *m, const char *what, errcode_t rc)
{
	mtfs_log(MAPTBL_LOG_ERROR, "%s: %s: %s", m->path, what, error_message(rc));
	return mtfs_e2errno(rc);
}

struct iter {
	struct maptbl_fs_map *m;
	uint64_t bs;
	int err;
};

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt, blk64_t ref_blk,
		    int ref_offset, void *priv)
{
	struct iter *it = priv;

	(void)fs;
	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt < 0)
		return 0; /* indirect blocks: metadata, not file data */
	it->err = mtfs_add_record(it->m, (uint64_t)blockcnt * it->bs, *blocknr * it->bs, it->bs, 0);
	return it->err ? BLOCK_ABORT : 0;
}

int mtfs_ext4_image(struct maptbl_fs_map *m, const char *image, const char *path)
{
	struct ext2_inode_large inode;
	ext2_filsys fs = NULL;
	struct stat st;
	ext2_ino_t ino;
	errcode_t rc;
	int mflags = 0, err = 0;
	uint64_t bs;

	initialize_ext2_error_table();
	if (stat(image, &st) < 0) {
		err = -errno;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: %s", image, strerror(errno));
		return err;
	}
	rc = ext2fs_check_if_mounted(image, &mflags);
	if (!rc && (mflags & EXT2_MF_MOUNTED)) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: is mounted: map the file through the mounted filesystem instead",
			 image);
		return -EBUSY;
	}
	rc = ext2fs_open2(image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
	if (rc)
		return e2err(m, image, rc);
	bs = fs->blocksize;
	m->fs_block_size = fs->blocksize;
	rc = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino);
	if (rc) {
		err = e2err(m, "path lookup", rc);
		goto out;
	}
	rc = ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&inode, sizeof(inode));
	if (rc) {
		err = e2err(m, "read inode", rc);
		goto out;
	}
	if (!LINUX_S_ISREG(inode.i_mode)) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: not a regular file", m->path);
		err = LINUX_S_ISDIR(inode.i_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	m->file_size = EXT2_I_SIZE(&inode);
	/* Refused files still name their disk (below), as a live file does. */
	if (inode.i_flags & EXT4_ENCRYPT_FL) {
		err = mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_ENCRYPTED,
				       MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
		goto disk;
	}
	if (inode.i_flags & EXT4_INLINE_DATA_FL) {
		err = mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_INLINE,
				       MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
		goto disk;
	}
	if (inode.i_flags & EXT4_EXTENTS_FL) {
		ext2_extent_handle_t h;
		struct ext2fs_extent e;

		rc = ext2fs_extent_open2(fs, ino, (struct ext2_inode *)&inode, &h);
		if (rc) {
			err = e2err(m, "extent tree", rc);
			goto out;
		}
		rc = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
		while (!rc) {
			if ((e.e_flags & EXT2_EXTENT_FLAGS_LEAF) && e.e_len) {
				err = mtfs_add_record(m, e.e_lblk * bs, e.e_pblk * bs,
						      (uint64_t)e.e_len * bs,
						      e.e_flags & EXT2_EXTENT_FLAGS_UNINIT
							      ? MTFS_REC_UNWRITTEN : 0);
				if (err)
					break;
			}
			rc = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &e);
		}
		ext2fs_extent_free(h);
		if (!err && rc != EXT2_ET_EXTENT_NO_NEXT)
			err = e2err(m, "extent tree", rc);
	} else {
		struct iter it = { m, bs, 0 };

		rc = ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, NULL,
					   block_cb, &it);
		err = it.err;
		if (!err && rc)
			err = e2err(m, "block map", rc);
	}
disk:
	if (err)
		goto out;
	snprintf(m->layers, sizeof(m->layers), "ext4 image");
	if (S_ISBLK(st.st_mode)) {
		err = mtfs_resolve_blkdev(m, st.st_rdev);
	} else {
		char real[PATH_MAX];

		m->disk = strdup(realpath(image, real) ? real : image);
		m->disk_size = (uint64_t)st.st_size;
		if (!m->disk)
			err = -ENOMEM;
		else
			snprintf(m->layers, sizeof(m->layers), "ext4 image %s", m->disk);
	}
out:
	ext2fs_close_free(&fs);
	return err;
}
