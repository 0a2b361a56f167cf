/* SPDX-License-Identifier: MIT */
/*
 * stats_xfs.c - maptbl_stats_xfs(): extents-per-file statistics of a whole mounted XFS
 * filesystem from XFS_IOC_BULKSTAT (v5, xfslibs-dev's <xfs/xfs_fs.h>; EXTENTS.md §6), without a
 * directory walk.
 *
 * Bulkstat returns, per allocated inode and in inode order, its mode, links, size, allocated
 * blocks and the number of records of its data fork (bs_extents64). That number is not filefrag's
 * count when it is 2 or more: filefrag merges records that continue each other physically
 * (written next to unwritten, records split at the maximum record length, records across a hole
 * of the same size, EXTENTS.md §2.2), which only the map shows. With 0 or 1 record it is exact.
 * So:
 *   - a file with no record and no allocated block (empty, or all hole) is measured from its
 *     inode alone, exactly: 0 extents, a hole when its size is not 0;
 *   - every other file is opened by handle (libhandle's jdm_open(), XFS_IOC_OPEN_BY_HANDLE: no
 *     path lookup) and measured with the same FIEMAP code as the walk, so that every number equals
 *     the walk's;
 *   - MAPTBL_STATS_XFS_COUNTS leaves files with one record unopened too: extents and records
 *     are 1, blocks the inode's allocated blocks (data fork and, rarely, attribute fork blocks),
 *     a hole after them when the size is larger; unwritten and shared records are not seen.
 * A file with several names counts once per name, as in the walk. The allocation groups are
 * shared out to the threads (XFS_BULK_IREQ_AGNO). Only the top list needs names: its inodes are
 * kept in a bounded heap per thread and named at the end by one walk of the directory tree
 * (readdir only) that stops when every name is found. Memory: the accumulators, the heaps, one
 * bulkstat buffer per thread and that walk's stack of directories.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <xfs/xfs.h>
#include <xfs/handle.h>
#include <xfs/jdm.h>

#include <maptbl/stats.h>

#include "internal.h"

#define BATCH 1024 /* inodes per XFS_IOC_BULKSTAT call (192 KiB) */

struct xtop {
	uint64_t extents, size, ino;
	uint32_t nlink, found;
	char **names;
};

struct xscan {
	pthread_mutex_t lock;
	int fd; /* the filesystem's root directory */
	jdm_fshandle_t *fsh;
	uint32_t bs, flags, agcount, next_ag, nrext64;
	const struct maptbl_scan_opts *o;
	uint64_t files, bytes; /* for o->progress, under lock */
};

struct xworker {
	struct xscan *s;
	struct maptbl_stats_acc *acc;
	struct xtop *top; /* min-heap of top_n: the least fragmented (then the highest inode) first */
	size_t ntop, top_n;
	pthread_t tid;
	int err;
};

_Static_assert(sizeof(struct xtop) <= 64, "mtfs_heap_offer() elements are at most 64 bytes");

static bool xtop_less(const void *x, const void *y)
{
	const struct xtop *a = x, *b = y;

	return a->extents != b->extents ? a->extents < b->extents : a->ino > b->ino;
}

/* One inode of the bulkstat buffer. Adds it (once per name) and offers it to the top list. */
static int one_inode(struct xworker *w, const struct xfs_bulkstat *b)
{
	struct xscan *s = w->s;
	uint64_t nrec = s->nrext64 ? b->bs_extents64 : b->bs_extents;
	struct maptbl_file_stats f;
	struct xtop cand;
	uint32_t k;
	int err;

	memset(&f, 0, sizeof(f));
	if ((!nrec && !b->bs_blocks) || (nrec == 1 && (s->flags & MAPTBL_STATS_XFS_COUNTS))) {
		struct mtfs_count c;

		mtfs_count_init(&c, s->bs);
		if (nrec)
			mtfs_count_record(&c, &f, 0, 0, b->bs_blocks * s->bs, 0);
		err = mtfs_count_finish(&c, &f, b->bs_size);
	} else {
		struct xfs_bstat b1;
		int fd;

		/* jdm_open() reads the inode number and generation of the v1 structure */
		memset(&b1, 0, sizeof(b1));
		b1.bs_ino = b->bs_ino;
		b1.bs_gen = b->bs_gen;
		fd = jdm_open(s->fsh, &b1, O_RDONLY | O_NOATIME | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0 && errno == EPERM)
			fd = jdm_open(s->fsh, &b1, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0) {
			char name[48];

			/* deleted since bulkstat (ESTALE, ENOENT): counted with the reason */
			snprintf(name, sizeof(name), "<inode %llu>", (unsigned long long)b->bs_ino);
			return maptbl_stats_acc_error(w->acc, name, errno);
		}
		err = mtfs_stats_measure_fd(fd, b->bs_size, s->bs, &f);
		close(fd);
		if (err) {
			char name[48];

			snprintf(name, sizeof(name), "<inode %llu>", (unsigned long long)b->bs_ino);
			return maptbl_stats_acc_error(w->acc, name, err);
		}
	}
	if (err)
		return err;
	for (k = 0; k < b->bs_nlink; k++) {
		err = mtfs_stats_add_untopped(w->acc, &f);
		if (err)
			return err;
	}
	cand = (struct xtop){ f.extents, f.size, b->bs_ino, b->bs_nlink, 0, NULL };
	mtfs_heap_offer(w->top, &w->ntop, w->top_n, sizeof(cand), &cand, xtop_less);
	return 0;
}

/* Bulkstats allocation group @ag. */
static int scan_ag(struct xworker *w, struct xfs_bulkstat_req *req, uint32_t ag)
{
	struct xscan *s = w->s;
	int err = 0;

	memset(&req->hdr, 0, sizeof(req->hdr));
	req->hdr.flags = XFS_BULK_IREQ_AGNO | (s->nrext64 ? XFS_BULK_IREQ_NREXT64 : 0);
	req->hdr.agno = ag;
	for (;;) {
		uint64_t files = 0, bytes = 0;
		uint32_t i;

		req->hdr.icount = BATCH;
		if (ioctl(s->fd, XFS_IOC_BULKSTAT, req) < 0) {
			char name[48];

			snprintf(name, sizeof(name), "<allocation group %u>", ag);
			return maptbl_stats_acc_error(w->acc, name, errno);
		}
		if (!req->hdr.ocount)
			break;
		for (i = 0; i < req->hdr.ocount && !err; i++) {
			const struct xfs_bulkstat *b = &req->bulkstat[i];

			if (!S_ISREG(b->bs_mode) || !b->bs_nlink)
				continue; /* not a file, or unlinked and still open */
			err = one_inode(w, b);
			files += b->bs_nlink;
			bytes += b->bs_nlink * b->bs_size;
		}
		if (err)
			return err;
		if (s->o->progress) {
			pthread_mutex_lock(&s->lock);
			s->files += files;
			s->bytes += bytes;
			s->o->progress(s->o->progress_ctx, s->files, s->bytes);
			pthread_mutex_unlock(&s->lock);
		}
	}
	return 0;
}

static void *xworker_main(void *arg)
{
	struct xworker *w = arg;
	struct xscan *s = w->s;
	struct xfs_bulkstat_req *req = calloc(1, XFS_BULKSTAT_REQ_SIZE(BATCH));

	if (!req) {
		w->err = -ENOMEM;
		return NULL;
	}
	while (!w->err) {
		uint32_t ag;

		pthread_mutex_lock(&s->lock);
		ag = s->next_ag < s->agcount ? s->next_ag++ : UINT32_MAX;
		pthread_mutex_unlock(&s->lock);
		if (ag == UINT32_MAX)
			break;
		w->err = scan_ag(w, req, ag);
	}
	free(req);
	return NULL;
}

/* ---- naming the top list ---- */

static int cmp_ino(const void *x, const void *y)
{
	const struct xtop *a = x, *b = y;

	return a->ino < b->ino ? -1 : a->ino > b->ino;
}

static int cmp_rank(const void *x, const void *y)
{
	const struct xtop *a = x, *b = y;

	return xtop_less(a, b) ? 1 : xtop_less(b, a) ? -1 : 0;
}

/*
 * Finds the names of the candidates (sorted by inode): a walk of the directory tree from @root
 * on device @dev, readdir only, that stops when every name is found. Directories that cannot be
 * read are skipped (their files keep "<inode N>"). 0 or -ENOMEM.
 */
static int name_top(const char *root, dev_t dev, struct xtop *c, size_t n)
{
	char **stack = NULL, *dir;
	size_t ns = 0, cap = 0, want = 0, found = 0, i;
	int err = 0;

	for (i = 0; i < n; i++)
		want += c[i].nlink;
	dir = strdup(root);
	if (!dir)
		return -ENOMEM;
	for (;;) {
		struct dirent *de;
		struct stat st;
		size_t dl = strlen(dir);
		DIR *d;
		int fd;

		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
		if (fd >= 0 && (fstat(fd, &st) || st.st_dev != dev)) {
			close(fd); /* another filesystem mounted here */
			fd = -1;
		}
		d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d && fd >= 0)
			close(fd);
		while (d && !err && found < want && (de = readdir(d))) {
			struct xtop key = { .ino = de->d_ino };
			unsigned char type = de->d_type;
			struct xtop *hit;
			char *p;

			if (de->d_name[0] == '.' &&
			    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
				continue;
			if (type == DT_UNKNOWN && !fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
				type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : 0;
			hit = type == DT_REG ? bsearch(&key, c, n, sizeof(*c), cmp_ino) : NULL;
			if (type != DT_DIR && (!hit || hit->found == hit->nlink))
				continue;
			if (asprintf(&p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
				     de->d_name) < 0) {
				err = -ENOMEM;
				break;
			}
			if (hit) {
				hit->names[hit->found++] = p;
				found++;
				continue;
			}
			if (ns == cap) {
				char **t = realloc(stack, (cap ? cap * 2 : 64) * sizeof(*t));

				if (!t) {
					free(p);
					err = -ENOMEM;
					break;
				}
				stack = t;
				cap = cap ? cap * 2 : 64;
			}
			stack[ns++] = p;
		}
		if (d)
			closedir(d);
		free(dir);
		if (err || found == want || !ns)
			break;
		dir = stack[--ns];
	}
	while (ns)
		free(stack[--ns]);
	free(stack);
	return err;
}

/* Merges the workers' heaps, keeps the first top_n names, names and offers them. */
static int offer_top(struct maptbl_stats_acc *acc, const char *root, dev_t dev,
		     struct xworker *w, unsigned nw)
{
	size_t n = 0, keep = 0, names = 0, top_n = maptbl_stats_acc_top_n(acc), i;
	struct xtop *c;
	unsigned k;
	int err = 0;

	for (k = 0; k < nw; k++)
		n += w[k].ntop;
	if (!n)
		return 0;
	c = calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (k = 0, n = 0; k < nw; k++) {
		memcpy(c + n, w[k].top, w[k].ntop * sizeof(*c));
		n += w[k].ntop;
	}
	qsort(c, n, sizeof(*c), cmp_rank);
	while (keep < n && names < top_n)
		names += c[keep++].nlink;
	for (i = 0; i < keep && !err; i++) {
		c[i].names = calloc(c[i].nlink, sizeof(char *));
		if (!c[i].names)
			err = -ENOMEM;
	}
	qsort(c, keep, sizeof(*c), cmp_ino);
	if (!err)
		err = name_top(root, dev, c, keep);
	for (i = 0; i < keep; i++) {
		uint32_t j;

		for (j = 0; j < c[i].nlink && !err; j++) {
			char name[48];

			snprintf(name, sizeof(name), "<inode %llu>", (unsigned long long)c[i].ino);
			err = mtfs_stats_top_offer(acc, j < c[i].found ? c[i].names[j] : name,
						   c[i].extents, c[i].size);
		}
		for (j = 0; c[i].names && j < c[i].found; j++)
			free(c[i].names[j]);
		free(c[i].names);
	}
	free(c);
	return err;
}

/* ---- the scan ---- */

/* The root inode of the filesystem of @fd through bulkstat; -errno (-EPERM without
 * CAP_SYS_ADMIN, -ENOTTY without bulkstat v5). Tells whether the kernel knows NREXT64. */
static int xfs_root_ino(int fd, uint64_t *ino, uint32_t *nrext64)
{
	struct xfs_bulkstat_req *req = calloc(1, XFS_BULKSTAT_REQ_SIZE(1));
	int err = 0;

	if (!req)
		return -ENOMEM;
	*nrext64 = 1;
	for (;;) {
		memset(req, 0, XFS_BULKSTAT_REQ_SIZE(1));
		req->hdr.flags = XFS_BULK_IREQ_SPECIAL | (*nrext64 ? XFS_BULK_IREQ_NREXT64 : 0);
		req->hdr.ino = XFS_BULK_IREQ_SPECIAL_ROOT;
		req->hdr.icount = 1;
		if (!ioctl(fd, XFS_IOC_BULKSTAT, req))
			break;
		err = -errno;
		if (err != -EINVAL || !*nrext64)
			break;
		*nrext64 = 0; /* before Linux 5.19 */
		err = 0;
	}
	if (!err && req->hdr.ocount != 1)
		err = -EIO;
	if (!err)
		*ino = req->bulkstat[0].bs_ino;
	free(req);
	return err;
}

MAPTBL_API int maptbl_stats_xfs(struct maptbl_stats_acc *acc, const char *path,
				const struct maptbl_scan_opts *opts, uint32_t flags)
{
	struct maptbl_scan_opts o;
	struct xfs_fsop_geom geo;
	struct xworker *w = NULL;
	struct xscan s;
	struct statfs sfs;
	struct stat st;
	uint64_t root;
	unsigned n, i, started = 0;
	char *mnt;
	int err;

	if (!acc || !path || (flags & ~MAPTBL_STATS_XFS_COUNTS))
		return -EINVAL;
	maptbl_scan_opts_init(&o, sizeof(o));
	err = mtfs_opts_copy(&o, sizeof(o), MTFS_SCAN_OPTS_SIZE_0_1, opts);
	if (err)
		return err;
	if (o.per_file || o.cross_mounts)
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.o = &o;
	s.flags = flags;
	s.fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s.fd < 0)
		return errno == ENOTDIR ? -EOPNOTSUPP : -errno;
	err = -EOPNOTSUPP;
	if (fstat(s.fd, &st) || fstatfs(s.fd, &sfs) || (unsigned long)sfs.f_type != XFS_SUPER_MAGIC) {
		mtfs_log(MAPTBL_LOG_INFO, "%s: not XFS", path);
		goto out_fd;
	}
	err = xfs_root_ino(s.fd, &root, &s.nrext64);
	if (err == -ENOTTY || err == -EOPNOTSUPP || err == -EINVAL)
		err = -EOPNOTSUPP;
	if (err) {
		mtfs_log(MAPTBL_LOG_INFO, "%s: XFS_IOC_BULKSTAT: %s", path, strerror(-err));
		goto out_fd;
	}
	if (root != (uint64_t)st.st_ino) {
		err = -EOPNOTSUPP;
		mtfs_log(MAPTBL_LOG_INFO, "%s: not the root directory of its XFS filesystem", path);
		goto out_fd;
	}
	if (ioctl(s.fd, XFS_IOC_FSGEOMETRY, &geo) < 0) {
		err = -errno;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: XFS_IOC_FSGEOMETRY: %s", path, strerror(errno));
		goto out_fd;
	}
	s.bs = geo.blocksize;
	s.agcount = geo.agcount;
	mnt = strdup(path);
	if (!mnt) {
		err = -ENOMEM;
		goto out_fd;
	}
	/* libhandle keeps the handle (and a descriptor of the mount) for the life of the process */
	s.fsh = jdm_getfshandle(mnt);
	free(mnt);
	if (!s.fsh) {
		err = errno ? -errno : -EIO;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: no filesystem handle: %s", path, strerror(-err));
		goto out_fd;
	}
	n = mtfs_threads(o.threads);
	if (n > s.agcount)
		n = s.agcount ? s.agcount : 1;
	pthread_mutex_init(&s.lock, NULL);
	w = calloc(n, sizeof(*w));
	err = w ? 0 : -ENOMEM;
	for (i = 0; !err && i < n; i++) {
		struct maptbl_stats_opts so;

		maptbl_stats_opts_init(&so, sizeof(so));
		so.top_n = maptbl_stats_acc_top_n(acc);
		w[i].s = &s;
		w[i].top_n = so.top_n;
		w[i].top = calloc(so.top_n ? so.top_n : 1, sizeof(*w[i].top));
		err = w[i].top ? maptbl_stats_acc_new(&so, &w[i].acc) : -ENOMEM;
		if (err)
			break;
		if (pthread_create(&w[i].tid, NULL, xworker_main, &w[i])) {
			err = started ? 0 : -EAGAIN; /* fewer threads than asked: still a scan */
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	for (i = 0; !err && i < started; i++)
		err = w[i].err;
	for (i = 0; !err && i < started; i++)
		err = maptbl_stats_acc_merge(acc, w[i].acc);
	if (!err)
		err = offer_top(acc, path, st.st_dev, w, started);
	for (i = 0; w && i < n; i++) {
		maptbl_stats_acc_free(w[i].acc);
		free(w[i].top);
	}
	free(w);
	pthread_mutex_destroy(&s.lock);
	free_handle(s.fsh, sizeof(xfs_fsid_t));
out_fd:
	close(s.fd);
	return err;
}
