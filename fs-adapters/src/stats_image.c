/* SPDX-License-Identifier: MIT */
/*
 * stats_image.c - maptbl_stats_image(): extents-per-file statistics of an unmounted ext2/3/4
 * image or device through libext2fs, without mounting and without opening a file.
 *
 * Summary mode: one ext2fs inode scan (the inode tables in disk order); each in-use regular
 * inode's extent tree (or block map) is fed, leaf by leaf, to the same filefrag counter as the
 * live FIEMAP records (mtfs_count_record), so the count equals filefrag's on the mounted
 * filesystem: ext4 reports each leaf extent as a FIEMAP record (or merges physically contiguous
 * ones through its extent-status cache), and filefrag's rule counts only physical
 * discontinuities, so both give the same number. Only the top list needs names: its inodes are
 * kept in a bounded heap and named at the end (name_top(): the directories just below each
 * inode number, then the directories in inode order until all are found). The inode scan runs
 * in threads over chunks of block groups (scan_parallel()). Memory: the accumulators, the heaps
 * and a bitmap of directories per thread.
 *
 * Per-file mode: the directory tree is walked and every name of a regular file is measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>
#include <et/com_err.h>

#include <maptbl/stats.h>

#include "internal.h"

#define PROGRESS_EVERY 4096
/* name_top()'s first pass: directories read per file, and how far below its inode number */
#define NEAR_DIRS 64
#define NEAR_SPAN 65536

struct itop {
	uint64_t extents, size;
	ext2_ino_t ino;
	uint16_t links; /* i_links_count: a file with one name may be named by any directory */
	char *path;
};

struct img {
	ext2_filsys fs;
	struct maptbl_stats_acc *acc;
	const struct maptbl_scan_opts *o;
	uint32_t bs;
	uint64_t files, bytes;
	/* summary mode: the top list by inode, a min-heap (root: the least fragmented kept), and
	 * the directories met by the inode scan (to name the top list) */
	struct itop *top;
	size_t ntop, top_n, nnamed;
	ext2fs_inode_bitmap dirs;
	/* the directory walk */
	char *dir_path;
	int err;
	bool near; /* name_top()'s first pass: name only files with one link */
	/* a part of a parallel inode scan: the totals the progress callback gets (else NULL), and
	 * what of files and bytes this part has added to them */
	struct shared *sh;
	uint64_t sh_files, sh_bytes;
};

/* What the threads of a parallel inode scan share: the progress callback's totals. */
struct shared {
	pthread_mutex_t lock;
	uint64_t files, bytes;
};

static int e2fail(const char *what, const char *image, errcode_t rc)
{
	mtfs_log(MAPTBL_LOG_ERROR, "%s: %s: %s", image, what, error_message(rc));
	return mtfs_e2errno(rc);
}

/* ---- one inode ---- */

/* Block-mapped (ext2/3) files: runs of physically contiguous blocks become one record. */
struct blkrun {
	struct mtfs_count *c;
	struct maptbl_file_stats *f;
	uint64_t lblk, pblk, len;
	uint32_t bs;
};

static void run_flush(struct blkrun *r)
{
	if (r->len)
		mtfs_count_record(r->c, r->f, r->lblk * r->bs, r->pblk * r->bs, r->len * r->bs, 0);
	r->len = 0;
}

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt, blk64_t ref_blk,
		    int ref_offset, void *priv)
{
	struct blkrun *r = priv;

	(void)fs;
	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt < 0)
		return 0; /* indirect blocks: metadata */
	if (r->len && (uint64_t)blockcnt == r->lblk + r->len && *blocknr == r->pblk + r->len) {
		r->len++;
		return 0;
	}
	run_flush(r);
	r->lblk = (uint64_t)blockcnt;
	r->pblk = *blocknr;
	r->len = 1;
	return 0;
}

/* Measures inode @ino (already read into @inode). 0, or -errno for an inode that cannot be read. */
static int measure_inode(struct img *g, ext2_ino_t ino, struct ext2_inode_large *inode,
			 struct maptbl_file_stats *f)
{
	struct mtfs_count c;
	uint64_t size = EXT2_I_SIZE(inode), bs = g->bs;
	errcode_t rc;

	memset(f, 0, sizeof(*f));
	mtfs_count_init(&c, g->bs);
	if (inode->i_flags & EXT4_INLINE_DATA_FL) {
		/* ext4 reports inline data as one record (FIEMAP_EXTENT_DATA_INLINE) when not empty */
		if (size)
			mtfs_count_record(&c, f, 0, 0, size, 0);
	} else if (inode->i_flags & EXT4_EXTENTS_FL) {
		ext2_extent_handle_t h;
		struct ext2fs_extent e;

		rc = ext2fs_extent_open2(g->fs, ino, (struct ext2_inode *)inode, &h);
		if (rc)
			return mtfs_e2errno(rc) == -EIO ? -EUCLEAN : mtfs_e2errno(rc);
		rc = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
		while (!rc) {
			if ((e.e_flags & EXT2_EXTENT_FLAGS_LEAF) && e.e_len)
				mtfs_count_record(&c, f, e.e_lblk * bs, e.e_pblk * bs,
						  (uint64_t)e.e_len * bs,
						  e.e_flags & EXT2_EXTENT_FLAGS_UNINIT
							  ? MTFS_REC_UNWRITTEN : 0);
			rc = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_LEAF, &e);
		}
		ext2fs_extent_free(h);
		if (rc != EXT2_ET_EXTENT_NO_NEXT && rc != EXT2_ET_EXTENT_NO_DOWN)
			return rc == EXT2_ET_NO_MEMORY ? -ENOMEM : -EUCLEAN;
	} else {
		struct blkrun r = { &c, f, 0, 0, 0, g->bs };

		rc = ext2fs_block_iterate3(g->fs, ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
					   NULL, block_cb, &r);
		if (rc)
			return rc == EXT2_ET_NO_MEMORY ? -ENOMEM : -EUCLEAN;
		run_flush(&r);
	}
	return mtfs_count_finish(&c, f, size);
}

/* A regular file's inode that is in use and visible (not reserved, not an EA inode). */
/*
 * The filesystem's own regular inodes past the reserved range — the quota files (ext4's quota
 * feature puts them at 3 and 4, but older tune2fs placed them anywhere), the project quota file,
 * the orphan file, an external journal's inode number — belong to no directory, so filefrag never
 * sees them: they are not files of the tree.
 */
static bool metadata_inode(const struct ext2_super_block *sb, ext2_ino_t ino)
{
	return ino == sb->s_journal_inum || ino == sb->s_usr_quota_inum ||
	       ino == sb->s_grp_quota_inum || ino == sb->s_prj_quota_inum ||
	       ino == sb->s_orphan_file_inum;
}

static bool counted_inode(const struct img *g, ext2_ino_t ino, const struct ext2_inode_large *in)
{
	return ino >= EXT2_FIRST_INODE(g->fs->super) && in->i_links_count &&
	       LINUX_S_ISREG(in->i_mode) && !(in->i_flags & EXT4_EA_INODE_FL) &&
	       !metadata_inode(g->fs->super, ino);
}

static void progress(struct img *g, struct maptbl_file_stats *f)
{
	g->files++;
	g->bytes += f->size;
	if (!g->o->progress || g->files % PROGRESS_EVERY)
		return;
	if (!g->sh) {
		g->o->progress(g->o->progress_ctx, g->files, g->bytes);
		return;
	}
	/* a part of a parallel scan: its files since its last report, then the totals */
	pthread_mutex_lock(&g->sh->lock);
	g->sh->files += g->files - g->sh_files;
	g->sh->bytes += g->bytes - g->sh_bytes;
	g->sh_files = g->files;
	g->sh_bytes = g->bytes;
	g->o->progress(g->o->progress_ctx, g->sh->files, g->sh->bytes);
	pthread_mutex_unlock(&g->sh->lock);
}

static int count_error(struct img *g, const char *path, ext2_ino_t ino, int err)
{
	char name[40];

	if (err == -ENOMEM)
		return err;
	if (!path) {
		snprintf(name, sizeof(name), "inode %u", ino);
		path = name;
	}
	return maptbl_stats_acc_error(g->acc, path, err);
}

/* ---- the top list by inode (summary mode) ---- */

/* Fewer extents first; at equal extents the higher inode number is the lesser. */
_Static_assert(sizeof(struct itop) <= 64, "mtfs_heap_offer() elements are at most 64 bytes");

static bool itop_less(const void *x, const void *y)
{
	const struct itop *a = x, *b = y;

	if (a->extents != b->extents)
		return a->extents < b->extents;
	return a->ino > b->ino;
}

static void itop_offer(struct img *g, ext2_ino_t ino, uint16_t links,
		       const struct maptbl_file_stats *f)
{
	struct itop cand = { f->extents, f->size, ino, links, NULL };

	mtfs_heap_offer(g->top, &g->ntop, g->top_n, sizeof(cand), &cand, itop_less);
}

/* ---- the directory walk ---- */

struct dstack {
	struct dent {
		ext2_ino_t ino;
		char *path;
	} *d;
	size_t n, cap;
};

static int dpush(struct dstack *s, ext2_ino_t ino, char *path)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct dent *d = realloc(s->d, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		s->d = d;
		s->cap = cap;
	}
	s->d[s->n].ino = ino;
	s->d[s->n++].path = path;
	return 0;
}

struct walk {
	struct img *g;
	struct dstack st;
	ext2fs_inode_bitmap seen; /* directories queued: a corrupt image may loop */
	int err;
};

static char *child_path(const char *dir, const char *name, int len)
{
	size_t a = strlen(dir);
	char *p = malloc(a + 1 + (size_t)len + 1);

	if (p) {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, name, (size_t)len);
		p[a + 1 + len] = '\0';
	}
	return p;
}

/* Per-file mode: measure one name of a regular file. */
static int walk_file(struct walk *w, ext2_ino_t ino, char *path)
{
	struct img *g = w->g;
	struct ext2_inode_large in;
	struct maptbl_file_stats f;
	errcode_t rc;
	int err;

	rc = ext2fs_read_inode_full(g->fs, ino, (struct ext2_inode *)&in, sizeof(in));
	if (rc)
		return count_error(g, path, ino,
				   rc == EXT2_ET_NO_MEMORY		    ? -ENOMEM
				   : rc == EXT2_ET_INODE_CSUM_INVALID ? -EBADMSG
								      : -EUCLEAN);
	if (!counted_inode(g, ino, &in))
		return 0;
	err = measure_inode(g, ino, &in, &f);
	if (err)
		return count_error(g, path, ino, err);
	f.path = path;
	g->o->per_file(g->o->ctx, &f);
	progress(g, &f);
	return maptbl_stats_acc_add(g->acc, &f);
}

static int dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset,
		  int blocksize, char *buf, void *priv)
{
	struct walk *w = priv;
	struct img *g = w->g;
	int len = ext2fs_dirent_name_len(de), type = ext2fs_dirent_file_type(de);
	char *path;

	(void)dir;
	(void)offset;
	(void)blocksize;
	(void)buf;
	if (entry != DIRENT_OTHER_FILE || !de->inode || de->inode > g->fs->super->s_inodes_count)
		return 0;
	/* libext2fs reports the ".." of an inline-data directory as an ordinary entry */
	if (de->name[0] == '.' && (len == 1 || (len == 2 && de->name[1] == '.')))
		return 0;
	if (!ext2fs_has_feature_filetype(g->fs->super) || type == EXT2_FT_UNKNOWN)
		type = ext2fs_check_directory(g->fs, de->inode) ? EXT2_FT_REG_FILE : EXT2_FT_DIR;
	if (type != EXT2_FT_DIR && type != EXT2_FT_REG_FILE)
		return 0;
	if (type == EXT2_FT_DIR) {
		if (ext2fs_test_inode_bitmap2(w->seen, de->inode))
			return 0; /* a second name of a directory: a corrupt image */
		ext2fs_mark_inode_bitmap2(w->seen, de->inode);
	}
	path = child_path(g->dir_path, de->name, len);
	if (!path) {
		w->err = -ENOMEM;
		return DIRENT_ABORT;
	}
	if (type == EXT2_FT_DIR) {
		w->err = dpush(&w->st, de->inode, path);
		if (w->err)
			free(path);
	} else {
		w->err = walk_file(w, de->inode, path);
		free(path);
	}
	return w->err ? DIRENT_ABORT : 0;
}

/* Per-file mode: walks the tree from the root, depth first, measuring every regular file. */
static int walk_tree(struct img *g)
{
	struct walk w = { .g = g };
	char *root = strdup("");
	errcode_t rc;
	int err = 0;

	rc = ext2fs_allocate_inode_bitmap(g->fs, "directories seen", &w.seen);
	if (rc || !root || dpush(&w.st, EXT2_ROOT_INO, root)) {
		if (!rc)
			ext2fs_free_inode_bitmap(w.seen);
		free(root);
		return -ENOMEM;
	}
	ext2fs_mark_inode_bitmap2(w.seen, EXT2_ROOT_INO);
	while (w.st.n && !err) {
		struct dent d = w.st.d[--w.st.n];

		g->dir_path = d.path;
		/* inline-data directories are iterated too (no flag: that one is libext2fs's own) */
		rc = ext2fs_dir_iterate2(g->fs, d.ino, 0, NULL, dir_cb, &w);
		if (w.err)
			err = w.err;
		else if (rc) {
			mtfs_log(MAPTBL_LOG_DEBUG, "%s: directory %u: %s", d.path[0] ? d.path : "/",
				 d.ino, error_message(rc));
			err = count_error(g, d.path[0] ? d.path : "/", d.ino,
					  rc == EXT2_ET_NO_MEMORY ? -ENOMEM : -EUCLEAN);
		}
		free(d.path);
		g->dir_path = NULL;
		if (!err && g->o->progress)
			g->o->progress(g->o->progress_ctx, g->files, g->bytes);
	}
	while (w.st.n)
		free(w.st.d[--w.st.n].path);
	free(w.st.d);
	ext2fs_free_inode_bitmap(w.seen);
	return err;
}

/* ---- the inode scan ---- */

/*
 * Scans the inodes of block groups [first, end) in chunks of @chunk groups, every @stride-th
 * chunk (a part of a parallel scan: chunk i of those that start at first + i * stride * chunk).
 */
static int scan_inodes(struct img *g, const char *image, dgrp_t first, dgrp_t end, dgrp_t chunk,
		       dgrp_t stride)
{
	ext2_ino_t ipg = g->fs->super->s_inodes_per_group, last;
	struct ext2_inode_large in;
	ext2_inode_scan scan;
	ext2_ino_t ino;
	errcode_t rc;
	dgrp_t grp = first;
	int err = 0;

	/* 1 MiB reads of the inode tables instead of the default 8 blocks */
	rc = ext2fs_open_inode_scan(g->fs, (int)((1u << 20) / g->bs), &scan);
	if (rc)
		return e2fail("inode scan", image, rc);
	if (grp && (rc = ext2fs_inode_scan_goto_blockgroup(scan, (int)grp))) {
		ext2fs_close_inode_scan(scan);
		return e2fail("inode scan", image, rc);
	}
	last = (ext2_ino_t)((uint64_t)(grp + chunk < end ? grp + chunk : end) * ipg);
	for (;;) {
		struct maptbl_file_stats f;

		rc = ext2fs_get_next_inode_full(scan, &ino, (struct ext2_inode *)&in, sizeof(in));
		if (!rc && ino > last) { /* past this chunk: the next one of ours, or done */
			grp += chunk * stride;
			if (grp >= end)
				break;
			rc = ext2fs_inode_scan_goto_blockgroup(scan, (int)grp);
			if (rc) {
				err = e2fail("inode scan", image, rc);
				break;
			}
			last = (ext2_ino_t)((uint64_t)(grp + chunk < end ? grp + chunk : end) * ipg);
			continue;
		}
		if (rc == EXT2_ET_INODE_CSUM_INVALID || rc == EXT2_ET_INODE_IS_GARBAGE) {
			/* in use? then it is a file we cannot trust: count it */
			if (ino >= EXT2_FIRST_INODE(g->fs->super) && in.i_links_count &&
			    LINUX_S_ISREG(in.i_mode))
				err = count_error(g, NULL, ino, -EBADMSG);
			if (err)
				break;
			continue;
		}
		if (rc) {
			err = e2fail("inode scan", image, rc);
			break;
		}
		if (!ino)
			break;
		if (LINUX_S_ISDIR(in.i_mode) && in.i_links_count)
			ext2fs_mark_inode_bitmap2(g->dirs, ino);
		if (!counted_inode(g, ino, &in))
			continue;
		err = measure_inode(g, ino, &in, &f);
		if (err) {
			err = count_error(g, NULL, ino, err);
			if (err)
				break;
			continue;
		}
		err = mtfs_stats_add_untopped(g->acc, &f);
		if (err)
			break;
		itop_offer(g, ino, in.i_links_count, &f);
		progress(g, &f);
	}
	ext2fs_close_inode_scan(scan);
	return err;
}

static int find_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *de, int offset,
		   int blocksize, char *buf, void *priv)
{
	struct img *g = priv;
	size_t i;

	(void)offset;
	(void)blocksize;
	(void)buf;
	if (entry != DIRENT_OTHER_FILE || !de->inode)
		return 0;
	for (i = 0; i < g->ntop; i++) {
		char *p = NULL;

		if (g->top[i].ino != de->inode || g->top[i].path)
			continue;
		if (g->near && g->top[i].links != 1)
			break; /* several names: the first directory in inode order names it */
		/* the directory's path through its ".." entries, then the name */
		if (ext2fs_get_pathname(g->fs, dir, de->inode, &p))
			return 0; /* stays "<inode N>" */
		g->top[i].path = strdup(p);
		ext2fs_free_mem(&p);
		if (!g->top[i].path) {
			g->err = -ENOMEM;
			return DIRENT_ABORT;
		}
		g->nnamed++;
		break;
	}
	return g->nnamed == g->ntop ? DIRENT_ABORT : 0;
}

/*
 * Names the top list and offers it to acc. The directories are read in inode order until every
 * file is named: ties go to low inode numbers, which the allocator puts near their directories,
 * so this usually stops early. A file that no directory names keeps "<inode N>".
 */
static int name_top(struct img *g)
{
	ext2_ino_t ino = 1, end = g->fs->super->s_inodes_count, dir;
	size_t i;
	int err = 0;

	/*
	 * First the directories just below each file's inode number, at most NEAR_DIRS of them:
	 * the allocator gives a file an inode near its directory's, after it when the directory
	 * was made first (mkfs -d, cp -a, tar), so the one directory that names a file with a
	 * single link is mostly the first one met going down. This pass reads a few directories
	 * per file instead of the directories of a whole prefix of the inode table; the ordered
	 * pass below names what it missed, and the files with several names.
	 */
	g->near = true;
	for (i = 0; i < g->ntop && !g->err && g->nnamed < g->ntop; i++) {
		ext2_ino_t d = g->top[i].ino, stop;
		unsigned tries = 0;

		stop = d > NEAR_SPAN ? d - NEAR_SPAN : 0;
		while (!g->top[i].path && g->top[i].links == 1 && tries < NEAR_DIRS && !g->err) {
			while (--d > stop && !ext2fs_fast_test_inode_bitmap2(g->dirs, d))
				;
			if (d <= stop)
				break;
			ext2fs_dir_iterate2(g->fs, d, 0, NULL, find_cb, g);
			tries++;
		}
	}
	g->near = false;
	while (g->nnamed < g->ntop && ino <= end && !g->err &&
	       !ext2fs_find_first_set_inode_bitmap2(g->dirs, ino, end, &dir)) {
		/* a directory that cannot be read leaves its files unnamed */
		ext2fs_dir_iterate2(g->fs, dir, 0, NULL, find_cb, g);
		ino = dir + 1;
		if (!ino)
			break;
	}
	err = g->err;
	for (i = 0; !err && i < g->ntop; i++) {
		char name[40];

		if (!g->top[i].path)
			snprintf(name, sizeof(name), "<inode %u>", g->top[i].ino);
		err = mtfs_stats_top_offer(g->acc, g->top[i].path ? g->top[i].path : name,
					   g->top[i].extents, g->top[i].size);
	}
	return err;
}

/* One thread's share of a parallel inode scan. */
struct part {
	struct img g; /* its own libext2fs handle, accumulator, top heap, directory bitmap */
	const char *image;
	dgrp_t first, end, chunk, stride;
	pthread_t tid;
	int err;
};

static void *part_main(void *arg)
{
	struct part *p = arg;

	p->err = scan_inodes(&p->g, p->image, p->first, p->end, p->chunk, p->stride);
	return NULL;
}

static void part_free(struct part *p)
{
	if (p->g.dirs)
		ext2fs_free_inode_bitmap(p->g.dirs);
	if (p->g.fs)
		ext2fs_close_free(&p->g.fs);
	maptbl_stats_acc_free(p->g.acc);
	free(p->g.top);
}

/*
 * The inode scan of @g's image by @n threads. libext2fs handles are not shared between threads:
 * each part opens the image itself and scans chunks of block groups in turn (chunk i goes to
 * part i mod n, so that the inodes, which mkfs and the allocator pack into the first groups,
 * spread over all parts), into its own accumulator, top heap and directory bitmap; the results
 * are merged exactly (sums and value maps; the top heaps offered again; the bitmaps OR'ed), in
 * part order, so the outcome does not depend on the threads' timing.
 */
static int scan_parallel(struct img *g, const char *image, unsigned n)
{
	dgrp_t groups = g->fs->group_desc_count, chunk;
	struct shared sh = { .files = 0 };
	struct part *parts;
	unsigned i, started = 0;
	int err = 0;

	if (n > groups)
		n = groups;
	if (n <= 1)
		return scan_inodes(g, image, 0, groups, groups, 1);
	chunk = groups / (n * 4) ? groups / (n * 4) : 1;
	parts = calloc(n, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	pthread_mutex_init(&sh.lock, NULL);
	for (i = 0; i < n && !err; i++) {
		struct part *p = &parts[i];
		struct maptbl_stats_opts so;
		errcode_t rc;

		p->g = *g;
		p->g.fs = NULL;
		p->g.acc = NULL;
		p->g.dirs = NULL;
		p->g.ntop = 0;
		p->g.files = p->g.bytes = p->g.sh_files = p->g.sh_bytes = 0;
		p->g.sh = &sh;
		p->g.top = calloc(g->top_n ? g->top_n : 1, sizeof(*p->g.top));
		p->image = image;
		p->first = (dgrp_t)i * chunk;
		p->end = groups;
		p->chunk = chunk;
		p->stride = n;
		maptbl_stats_opts_init(&so, sizeof(so));
		so.top_n = (uint32_t)g->top_n;
		if (!p->g.top || maptbl_stats_acc_new(&so, &p->g.acc)) {
			err = -ENOMEM;
			break;
		}
		rc = ext2fs_open2(image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &p->g.fs);
		if (rc) {
			err = e2fail("not a readable ext2/ext3/ext4 filesystem", image, rc);
			break;
		}
		if (ext2fs_allocate_inode_bitmap(p->g.fs, "directories", &p->g.dirs)) {
			p->g.dirs = NULL;
			err = -ENOMEM;
			break;
		}
		if (p->first >= groups)
			continue; /* more parts than chunks: nothing to scan */
		if (pthread_create(&p->tid, NULL, part_main, p)) {
			err = -EAGAIN;
			break;
		}
		started = i + 1;
	}
	for (i = 0; i < started; i++)
		if (parts[i].first < groups)
			pthread_join(parts[i].tid, NULL);
	for (i = 0; !err && i < started; i++) {
		struct part *p = &parts[i];
		ext2_ino_t ino = 1, end = g->fs->super->s_inodes_count, d;
		size_t k;

		err = p->err;
		if (!err)
			err = maptbl_stats_acc_merge(g->acc, p->g.acc);
		for (k = 0; !err && k < p->g.ntop; k++)
			mtfs_heap_offer(g->top, &g->ntop, g->top_n, sizeof(*g->top), &p->g.top[k],
					itop_less);
		while (!err && ino <= end &&
		       !ext2fs_find_first_set_inode_bitmap2(p->g.dirs, ino, end, &d)) {
			ext2fs_mark_inode_bitmap2(g->dirs, d);
			ino = d + 1;
			if (!ino)
				break;
		}
		g->files += p->g.files;
		g->bytes += p->g.bytes;
	}
	for (i = 0; i < n; i++)
		part_free(&parts[i]);
	free(parts);
	pthread_mutex_destroy(&sh.lock);
	return err;
}

MAPTBL_API int maptbl_stats_image(struct maptbl_stats_acc *acc, const char *image,
				  const struct maptbl_scan_opts *opts)
{
	struct maptbl_scan_opts o;
	struct img g;
	struct stat st;
	errcode_t rc;
	int mflags = 0, err;
	size_t i;

	if (!acc || !image)
		return -EINVAL;
	maptbl_scan_opts_init(&o, sizeof(o));
	err = mtfs_opts_copy(&o, sizeof(o), MTFS_SCAN_OPTS_SIZE_0_1, opts);
	if (err)
		return err;
	initialize_ext2_error_table();
	if (stat(image, &st) < 0) {
		err = -errno;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: %s", image, strerror(errno));
		return err;
	}
	if (S_ISDIR(st.st_mode)) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: a directory, not an image or device", image);
		return -EISDIR;
	}
	rc = ext2fs_check_if_mounted(image, &mflags);
	if (!rc && (mflags & EXT2_MF_MOUNTED)) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: is mounted: run maptbl stats on its mount point instead",
			 image);
		return -EBUSY;
	}
	memset(&g, 0, sizeof(g));
	rc = ext2fs_open2(image, NULL, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &g.fs);
	if (rc)
		return e2fail("not a readable ext2/ext3/ext4 filesystem", image, rc);
	if (ext2fs_has_feature_journal_needs_recovery(g.fs->super))
		mtfs_log(MAPTBL_LOG_WARN, "%s: the journal needs recovery: the counts are those of "
			 "the last checkpoint", image);
	g.acc = acc;
	g.o = &o;
	g.bs = g.fs->blocksize;
	if (o.per_file) {
		err = walk_tree(&g);
	} else {
		g.top_n = maptbl_stats_acc_top_n(acc);
		g.top = calloc(g.top_n ? g.top_n : 1, sizeof(*g.top));
		rc = ext2fs_allocate_inode_bitmap(g.fs, "directories", &g.dirs);
		err = g.top && !rc ? scan_parallel(&g, image, mtfs_threads(o.threads)) : -ENOMEM;
		if (!err)
			err = name_top(&g);
		for (i = 0; i < g.ntop; i++)
			free(g.top[i].path);
		free(g.top);
		if (!rc)
			ext2fs_free_inode_bitmap(g.dirs);
	}
	if (!err && o.progress)
		o.progress(o.progress_ctx, g.files, g.bytes);
	ext2fs_close_free(&g.fs);
	return err;
}
