/* SPDX-License-Identifier: MIT */
/*
 * btrfs.c - the btrfs backend (EXTENTS.md §1.3, §6.3; docs/FS.md "btrfs").
 *
 * FIEMAP on btrfs returns btrfs *logical* addresses and hides what the safety rules need (a
 * compressed extent is only "encoded", a prealloc extent partly written is merged, the extent's
 * own disk_bytenr/offset are lost). So the file's EXTENT_DATA items are read directly with
 * BTRFS_IOC_TREE_SEARCH_V2 on the file's subvolume tree, and each logical address is translated
 * through the chunk tree (tree 3, CHUNK_ITEM) into (device id, byte offset on that device); the
 * device is found with BTRFS_IOC_DEV_INFO and resolved like any block device (blkdev.c).
 *
 * The rules are those btrfs_swap_activate() applies: a writable table needs a NOCOW file
 * without data checksums (the inode item's flags), no compressed, encoded, encrypted or inline
 * extent, no extent shared with a snapshot or a reflink (BTRFS_IOC_LOGICAL_INO_V2 lists every
 * reference of an extent, through shared tree blocks too), the SINGLE data profile, and one
 * device. A read-only table may use shared extents, copy-on-write and checksummed files, and
 * read a DUP/RAID1/RAID10 extent from its first copy.
 *
 * The chunk map is written here rather than taken from a library: libbtrfsutil has no
 * logical-to-physical call, and btrfs-progs' own (cmds/inspect.c) is GPL program code. The
 * arithmetic follows the on-disk format (struct btrfs_chunk, linux/btrfs_tree.h) and is unit
 * tested with crafted chunk items (tests/unit/fs/test_btrfs.c). libbtrfsutil gives the
 * subvolume, its snapshots, the transaction commit and subvolume paths.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include <btrfsutil.h>

#include <maptbl/stats.h>

#include "internal.h"

/* Inode item flags (on-disk format; the kernel's fs/btrfs/btrfs_inode.h, not in the UAPI). */
#define BT_INODE_NODATASUM (1u << 0)
#define BT_INODE_NODATACOW (1u << 1)

#define SEARCH_BUF (128u * 1024)   /* more than the largest item (64 KiB nodes) */
#define LOGINO_BUF (64u * 1024)	   /* 2,730 references; more only counts as "shared" anyway */
#define MAX_DEVICES 64		   /* devices named in the log and in the layers */

/* ---- the chunk map: pure arithmetic, unit tested ------------------------------------------- */

struct bt_stripe {
	uint64_t devid, offset;
};

struct bt_chunk {
	uint64_t logical, length, type, stripe_len;
	uint16_t num_stripes, sub_stripes;
	struct bt_stripe *stripe;
};

struct bt_chunk_map {
	struct bt_chunk *c;
	size_t n, cap;
};

/* One contiguous piece of a logical range on one device. */
struct bt_piece {
	uint64_t devid, physical, length;
};

static void chunk_map_free(struct bt_chunk_map *cm)
{
	for (size_t i = 0; i < cm->n; i++)
		free(cm->c[i].stripe);
	free(cm->c);
	memset(cm, 0, sizeof(*cm));
}

/*
 * Parses one CHUNK_ITEM body (key.offset = @logical) into @out, checking what the arithmetic
 * relies on: a whole item, at least one stripe, a power-of-two stripe length, stripe counts that
 * suit the profile. -EUCLEAN for a malformed item, -ENOMEM.
 */
static int chunk_parse(uint64_t logical, const void *item, size_t len, struct bt_chunk *out)
{
	const struct btrfs_chunk *ci = item;
	uint16_t ns, ss;
	uint64_t prof;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(*ci))
		return -EUCLEAN;
	ns = le16toh(ci->num_stripes);
	ss = le16toh(ci->sub_stripes);
	if (!ns || len < sizeof(*ci) + (size_t)(ns - 1) * sizeof(struct btrfs_stripe))
		return -EUCLEAN;
	out->logical = logical;
	out->length = le64toh(ci->length);
	out->type = le64toh(ci->type);
	out->stripe_len = le64toh(ci->stripe_len);
	out->num_stripes = ns;
	out->sub_stripes = ss;
	prof = out->type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
	if (!out->length || out->logical + out->length < out->logical || !out->stripe_len ||
	    (out->stripe_len & (out->stripe_len - 1)))
		return -EUCLEAN;
	if (prof & (prof - 1))
		return -EUCLEAN; /* two profiles at once */
	if ((prof == BTRFS_BLOCK_GROUP_RAID10 && (ss < 2 || ns % ss)) ||
	    (prof == BTRFS_BLOCK_GROUP_DUP && ns != 2) || (prof == 0 && ns != 1))
		return -EUCLEAN;
	out->stripe = calloc(ns, sizeof(*out->stripe));
	if (!out->stripe)
		return -ENOMEM;
	for (uint16_t i = 0; i < ns; i++) {
		const struct btrfs_stripe *s = &(&ci->stripe)[i];

		out->stripe[i].devid = le64toh(s->devid);
		out->stripe[i].offset = le64toh(s->offset);
	}
	return 0;
}

/* Appends a parsed chunk; chunks must come in logical order without overlap (the tree's). */
static int chunk_map_add(struct bt_chunk_map *cm, struct bt_chunk *c)
{
	if (cm->n) {
		const struct bt_chunk *p = &cm->c[cm->n - 1];

		if (c->logical < p->logical + p->length)
			return -EUCLEAN;
	}
	if (cm->n == cm->cap) {
		size_t cap = cm->cap ? cm->cap * 2 : 64;
		struct bt_chunk *nc = realloc(cm->c, cap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		cm->c = nc;
		cm->cap = cap;
	}
	cm->c[cm->n++] = *c;
	return 0;
}

/* The chunk containing @logical, or NULL. */
static const struct bt_chunk *chunk_find(const struct bt_chunk_map *cm, uint64_t logical)
{
	size_t lo = 0, hi = cm->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bt_chunk *c = &cm->c[mid];

		if (logical < c->logical)
			hi = mid;
		else if (logical - c->logical >= c->length)
			lo = mid + 1;
		else
			return c;
	}
	return NULL;
}

/* Copies of the data a profile keeps: DUP and RAID1* several, RAID10 sub_stripes, else one. */
static unsigned chunk_copies(const struct bt_chunk *c)
{
	switch (c->type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case BTRFS_BLOCK_GROUP_DUP:
	case BTRFS_BLOCK_GROUP_RAID1:
	case BTRFS_BLOCK_GROUP_RAID1C3:
	case BTRFS_BLOCK_GROUP_RAID1C4:
		return c->num_stripes;
	case BTRFS_BLOCK_GROUP_RAID10:
		return c->sub_stripes;
	default:
		return 1;
	}
}

/*
 * The first piece of [@logical, +@len) in chunk @c, copy @mirror (0-based): as the kernel's
 * btrfs_map_block() places it. SINGLE, DUP and RAID1* are linear over the chunk; RAID0 and
 * RAID10 stripe it in stripe_len units over num_stripes (RAID10: num_stripes / sub_stripes
 * groups of sub_stripes mirrors). A piece ends at the end of a stripe unit or of the chunk.
 * -ERANGE: @logical is outside @c or @mirror does not exist; -EOPNOTSUPP: RAID5/6 (parity).
 */
static int chunk_map_piece(const struct bt_chunk *c, uint64_t logical, uint64_t len,
			   unsigned mirror, struct bt_piece *p)
{
	uint64_t off, left, stripe_nr, in_stripe, unit;
	unsigned idx;

	if (logical < c->logical || logical - c->logical >= c->length || !len ||
	    mirror >= chunk_copies(c))
		return -ERANGE;
	off = logical - c->logical;
	left = c->length - off;
	switch (c->type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case 0:
	case BTRFS_BLOCK_GROUP_DUP:
	case BTRFS_BLOCK_GROUP_RAID1:
	case BTRFS_BLOCK_GROUP_RAID1C3:
	case BTRFS_BLOCK_GROUP_RAID1C4:
		p->devid = c->stripe[mirror].devid;
		p->physical = c->stripe[mirror].offset + off;
		p->length = len < left ? len : left;
		return 0;
	case BTRFS_BLOCK_GROUP_RAID0:
	case BTRFS_BLOCK_GROUP_RAID10: {
		unsigned groups = c->type & BTRFS_BLOCK_GROUP_RAID10 ? c->num_stripes / c->sub_stripes
								      : c->num_stripes;

		stripe_nr = off / c->stripe_len;
		in_stripe = off % c->stripe_len;
		idx = (unsigned)(stripe_nr % groups);
		if (c->type & BTRFS_BLOCK_GROUP_RAID10)
			idx = idx * c->sub_stripes + mirror;
		stripe_nr /= groups;
		p->devid = c->stripe[idx].devid;
		p->physical = c->stripe[idx].offset + stripe_nr * c->stripe_len + in_stripe;
		unit = c->stripe_len - in_stripe;
		if (unit > left)
			unit = left;
		p->length = len < unit ? len : unit;
		return 0;
	}
	default:
		return -EOPNOTSUPP;
	}
}

/* ---- tree search -------------------------------------------------------------------------- */

typedef int (*bt_item_fn)(void *ctx, const struct btrfs_ioctl_search_header *sh, const void *item);

/*
 * Every item of @tree (0: the subvolume of @fd) with a key from (@oid, @min_type, 0) to
 * (@max_oid, @max_type, max) whose type is in [@min_type, @max_type], in key order, through @fn
 * (which stops the walk with a non-zero return). -errno of the ioctl (EPERM without
 * CAP_SYS_ADMIN).
 */
static int tree_search(int fd, uint64_t tree, uint64_t oid, uint64_t max_oid, uint32_t min_type,
		       uint32_t max_type, bt_item_fn fn, void *ctx)
{
	struct btrfs_ioctl_search_args_v2 *a = malloc(sizeof(*a) + SEARCH_BUF);
	uint64_t next_oid = oid, next_off = 0;
	uint32_t next_type = min_type;
	int err = 0;

	if (!a)
		return -ENOMEM;
	for (;;) {
		uint32_t i, n;
		size_t pos = 0;

		memset(a, 0, sizeof(*a));
		a->key.tree_id = tree;
		a->key.min_objectid = next_oid;
		a->key.max_objectid = max_oid;
		a->key.min_type = next_type;
		a->key.max_type = max_type;
		a->key.min_offset = next_off;
		a->key.max_offset = UINT64_MAX;
		a->key.min_transid = 0;
		a->key.max_transid = UINT64_MAX;
		a->key.nr_items = UINT32_MAX;
		a->buf_size = SEARCH_BUF;
		if (ioctl(fd, BTRFS_IOC_TREE_SEARCH_V2, a) < 0) {
			err = -errno;
			break;
		}
		n = a->key.nr_items;
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			struct btrfs_ioctl_search_header sh;

			if (pos + sizeof(sh) > SEARCH_BUF) {
				err = -EIO;
				goto out;
			}
			memcpy(&sh, a->buf + pos, sizeof(sh));
			pos += sizeof(sh);
			if (pos + sh.len > SEARCH_BUF) {
				err = -EIO;
				goto out;
			}
			if (sh.type >= min_type && sh.type <= max_type && (err = fn(ctx, &sh, a->buf + pos)))
				goto out;
			pos += sh.len;
			/* Continue after this key: (objectid, type, offset) + 1. */
			next_oid = sh.objectid;
			next_type = sh.type;
			next_off = sh.offset + 1;
			if (!next_off) {
				if (++next_type > 255) {
					next_type = 0;
					if (++next_oid == 0)
						goto out;
				}
			}
		}
		if (next_oid > max_oid || (next_oid == max_oid && next_type > max_type))
			break;
	}
out:
	free(a);
	return err > 0 ? 0 : err;
}

static int chunk_item(void *ctx, const struct btrfs_ioctl_search_header *sh, const void *item)
{
	struct bt_chunk c;
	int err;

	if (sh->type != BTRFS_CHUNK_ITEM_KEY)
		return 0;
	err = chunk_parse(sh->offset, item, sh->len, &c);
	if (!err && (err = chunk_map_add(ctx, &c)))
		free(c.stripe);
	return err;
}

/* ---- the file's items --------------------------------------------------------------------- */

struct bt_item {
	uint64_t file_off, disk_bytenr, disk_num_bytes, offset, num_bytes, ram_bytes;
	uint8_t type, compression, encryption;
	uint16_t other_encoding;
};

struct bt_file {
	uint64_t ino, inode_flags;
	bool have_inode;
	struct bt_item *it;
	size_t n, cap;
	int err;
};

static int file_item(void *ctx, const struct btrfs_ioctl_search_header *sh, const void *item)
{
	struct bt_file *f = ctx;
	const struct btrfs_file_extent_item *fi = item;
	struct bt_item *b;

	if (sh->objectid != f->ino)
		return 0;
	if (sh->type == BTRFS_INODE_ITEM_KEY) {
		const struct btrfs_inode_item *ii = item;

		if (sh->len < sizeof(*ii))
			return -EUCLEAN;
		f->inode_flags = le64toh(ii->flags);
		f->have_inode = true;
		return 0;
	}
	if (sh->type != BTRFS_EXTENT_DATA_KEY)
		return 0;
	/* The inline data starts at disk_bytenr: every item has the fields before it. */
	if (sh->len < offsetof(struct btrfs_file_extent_item, disk_bytenr))
		return -EUCLEAN;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;

		b = realloc(f->it, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		f->it = b;
		f->cap = cap;
	}
	b = &f->it[f->n];
	memset(b, 0, sizeof(*b));
	b->file_off = sh->offset;
	b->type = fi->type;
	b->compression = fi->compression;
	b->encryption = fi->encryption;
	b->other_encoding = le16toh(fi->other_encoding);
	b->ram_bytes = le64toh(fi->ram_bytes);
	if (fi->type != BTRFS_FILE_EXTENT_INLINE) {
		if (sh->len < sizeof(*fi))
			return -EUCLEAN;
		b->disk_bytenr = le64toh(fi->disk_bytenr);
		b->disk_num_bytes = le64toh(fi->disk_num_bytes);
		b->offset = le64toh(fi->offset);
		b->num_bytes = le64toh(fi->num_bytes);
	}
	f->n++;
	return 0;
}

/* Reads the inode item and every EXTENT_DATA item of inode @ino in @fd's subvolume. */
static int read_file_items(int fd, uint64_t ino, struct bt_file *f)
{
	memset(f, 0, sizeof(*f));
	f->ino = ino;
	return tree_search(fd, 0, ino, ino, BTRFS_INODE_ITEM_KEY, BTRFS_EXTENT_DATA_KEY, file_item, f);
}

/* ---- shared extents ----------------------------------------------------------------------- */

struct bt_ctx {
	struct maptbl_fs_map *m;
	int fd;
	uint64_t root, ino;
	uint8_t *loi;		/* LOGICAL_INO_V2 buffer */
	unsigned shared_logged;
	bool by_fiemap;		/* statistics: sharing from FIEMAP's flag (fiemap_shared()) */
};

/*
 * Whether another file, or another subvolume's copy of this one (a snapshot), references the
 * extent at @bytenr: BTRFS_IOC_LOGICAL_INO_V2 with IGNORE_OFFSET returns every (inode, offset,
 * root) reference, resolved through shared tree blocks. References by this inode in this
 * subvolume are judged by the caller from the file's own items. 1 shared, 0 not, -errno.
 */
static int extent_foreign_ref(struct bt_ctx *x, uint64_t bytenr, uint64_t *other_root,
			      uint64_t *other_ino)
{
	struct btrfs_ioctl_logical_ino_args a;
	const struct btrfs_data_container *dc = (const void *)x->loi;
	uint32_t i;

	memset(&a, 0, sizeof(a));
	a.logical = bytenr;
	a.size = LOGINO_BUF;
	a.flags = BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET;
	a.inodes = (uintptr_t)x->loi;
	if (ioctl(x->fd, BTRFS_IOC_LOGICAL_INO_V2, &a) < 0) {
		if (errno == ENOENT)
			return 1; /* not in the committed extent tree: cannot tell, assume shared */
		return -errno;
	}
	if (dc->elem_missed)
		return 1;
	for (i = 0; i + 2 < dc->elem_cnt; i += 3) {
		uint64_t ino = dc->val[i], root = dc->val[i + 2];

		if (ino != x->ino || root != x->root) {
			*other_root = root;
			*other_ino = ino;
			return 1;
		}
	}
	return 0;
}

static int cmp_by_disk(const void *a, const void *b)
{
	const struct bt_item *x = *(const struct bt_item *const *)a;
	const struct bt_item *y = *(const struct bt_item *const *)b;

	if (x->disk_bytenr != y->disk_bytenr)
		return x->disk_bytenr < y->disk_bytenr ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Whether someone else references the extent at @bytenr: exactly (LOGICAL_INO_V2) for a table;
 * 0 for statistics (x->by_fiemap: fiemap_shared() marks them). 1, 0 or -errno. */
static int extent_foreign(struct bt_ctx *x, uint64_t bytenr)
{
	uint64_t root = 0, ino = 0;
	int r;

	if (x->by_fiemap)
		return 0;
	r = extent_foreign_ref(x, bytenr, &root, &ino);
	if (r < 0) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: BTRFS_IOC_LOGICAL_INO_V2: %s", x->m->path,
			 strerror(-r));
	} else if (r && root && x->shared_logged++ < 4) {
		char *p = NULL;

		if (btrfs_util_subvolume_path_fd(x->fd, root, &p) != BTRFS_UTIL_OK)
			p = NULL;
		mtfs_log(MAPTBL_LOG_INFO,
			 "%s: the extent at btrfs logical %llu is shared with inode %llu of subvolume %llu (%s)",
			 x->m->path, (unsigned long long)bytenr, (unsigned long long)ino,
			 (unsigned long long)root, p ? (*p ? p : "the top level") : "?");
		free(p);
	}
	return r;
}

/*
 * Marks in @shared[] (indexed like f->it) every item whose bytes another reference can reach:
 * another file or subvolume (extent_foreign(), once per disk extent), or another range of this
 * file over the same bytes (a reflink inside the file: items of one disk extent whose
 * [offset, offset + num_bytes) overlap). Two ranges of one extent that do not overlap (what a
 * partial overwrite or a write into a prealloc extent leaves) are not shared, as btrfs' own
 * NOCOW check sees them. *@nr_disk receives the number of distinct disk extents.
 */
static int find_shared(struct bt_ctx *x, const struct bt_file *f, bool *shared, size_t *nr_disk)
{
	const struct bt_item **idx;
	size_t i, n = 0;
	int err = 0;

	*nr_disk = 0;
	idx = malloc((f->n ? f->n : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (i = 0; i < f->n; i++)
		if (f->it[i].type != BTRFS_FILE_EXTENT_INLINE && f->it[i].disk_bytenr)
			idx[n++] = &f->it[i];
	if (n)
		qsort(idx, n, sizeof(*idx), cmp_by_disk);
	for (i = 0; i < n;) {
		size_t j = i, k;
		uint64_t end = 0;
		int r;

		while (j < n && idx[j]->disk_bytenr == idx[i]->disk_bytenr)
			j++;
		(*nr_disk)++;
		r = extent_foreign(x, idx[i]->disk_bytenr);
		if (r < 0) {
			err = r;
			break;
		}
		for (k = i; k < j; k++) {
			const struct bt_item *b = idx[k];

			/* Sorted by offset: an overlap is with some earlier range's end. */
			if (r)
				shared[b - f->it] = true;
			if (k > i && b->offset < end) {
				shared[b - f->it] = true;
				for (size_t e = i; e < k; e++) /* the earlier overlapping item(s) too */
					if (idx[e]->offset + idx[e]->num_bytes > b->offset)
						shared[idx[e] - f->it] = true;
			}
			if (b->offset + b->num_bytes > end)
				end = b->offset + b->num_bytes;
		}
		i = j;
	}
	free(idx);
	return err;
}

/* ---- devices ------------------------------------------------------------------------------ */

static int dev_path(int fd, uint64_t devid, char *buf, size_t len)
{
	struct btrfs_ioctl_dev_info_args di;

	memset(&di, 0, sizeof(di));
	di.devid = devid;
	if (ioctl(fd, BTRFS_IOC_DEV_INFO, &di) < 0)
		return -errno;
	snprintf(buf, len, "%.*s", (int)sizeof(di.path), (const char *)di.path);
	return buf[0] ? 0 : -ENODEV;
}

/* The number of devices and, if *devid is 0, the lowest device id present (a file without data
 * still needs a disk). */
static int fs_devices(int fd, uint64_t *devid, uint64_t *ndev)
{
	struct btrfs_ioctl_fs_info_args fi;

	memset(&fi, 0, sizeof(fi));
	if (ioctl(fd, BTRFS_IOC_FS_INFO, &fi) < 0)
		return -errno;
	*ndev = fi.num_devices;
	for (uint64_t d = 1; !*devid && d <= fi.max_id; d++) {
		char path[BTRFS_DEVICE_PATH_NAME_MAX + 1];
		int err = dev_path(fd, d, path, sizeof(path));

		if (err == -ENODEV)
			continue;
		if (err)
			return err;
		*devid = d;
	}
	return *devid ? 0 : -ENODEV;
}

/* ---- subvolume and snapshots (libbtrfsutil) ------------------------------------------------ */

/* Appends "subvolume ID (PATH)" and the snapshots related to it to m->layers. */
static void describe_subvolume(struct bt_ctx *x)
{
	struct btrfs_util_subvolume_info me, si;
	struct btrfs_util_subvolume_iterator *it = NULL;
	static const uint8_t zero[16];
	char *path = NULL, names[160] = "";
	size_t n = strlen(x->m->layers), nsnap = 0, scanned = 0;

	if (btrfs_util_subvolume_info_fd(x->fd, x->root, &me) != BTRFS_UTIL_OK)
		return;
	if (btrfs_util_subvolume_path_fd(x->fd, x->root, &path) != BTRFS_UTIL_OK)
		path = NULL;
	snprintf(x->m->layers + n, sizeof(x->m->layers) - n, " subvolume %llu (%s)",
		 (unsigned long long)x->root, path && *path ? path : "top level");
	free(path);
	/* Snapshots of this subvolume, and the subvolume it is a snapshot of. */
	if (btrfs_util_create_subvolume_iterator_fd(x->fd, BTRFS_FS_TREE_OBJECTID, 0, &it) !=
	    BTRFS_UTIL_OK)
		return;
	while (scanned++ < 100000 &&
	       btrfs_util_subvolume_iterator_next_info(it, &path, &si) == BTRFS_UTIL_OK) {
		bool snap = !memcmp(si.parent_uuid, me.uuid, 16);
		bool origin = memcmp(me.parent_uuid, zero, 16) && !memcmp(si.uuid, me.parent_uuid, 16);

		if ((snap || origin) && si.id != x->root) {
			size_t l = strlen(names);

			if (nsnap < 3)
				snprintf(names + l, sizeof(names) - l, "%s%s%s", l ? ", " : "", path,
					 origin ? " (its origin)" : "");
			nsnap++;
		}
		free(path);
	}
	btrfs_util_destroy_subvolume_iterator(it);
	if (nsnap) {
		n = strlen(x->m->layers);
		snprintf(x->m->layers + n, sizeof(x->m->layers) - n, ", snapshots: %s%s", names,
			 nsnap > 3 ? ", ..." : "");
		mtfs_log(MAPTBL_LOG_INFO, "%s: subvolume %llu has %zu related snapshot%s: %s%s",
			 x->m->path, (unsigned long long)x->root, nsnap, nsnap == 1 ? "" : "s", names,
			 nsnap > 3 ? ", ..." : "");
	}
}

/* ---- delalloc without a sync -------------------------------------------------------------- */

/* Every FIEMAP record of @fd in order through @fn (a non-zero return stops the walk and is
 * returned); 256 records a call. -errno of the ioctl. */
static int fiemap_each(int fd, int (*fn)(void *ctx, const struct fiemap_extent *fe), void *ctx)
{
	enum { N = 256 };
	union {
		struct fiemap fm;
		uint8_t b[sizeof(struct fiemap) + N * sizeof(struct fiemap_extent)];
	} u;
	uint64_t start = 0;
	int err;

	for (;;) {
		memset(&u.fm, 0, sizeof(u.fm));
		u.fm.fm_start = start;
		u.fm.fm_length = FIEMAP_MAX_OFFSET - start;
		u.fm.fm_extent_count = N;
		if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0)
			return -errno;
		for (uint32_t i = 0; i < u.fm.fm_mapped_extents; i++) {
			const struct fiemap_extent *fe = &u.fm.fm_extents[i];

			if ((err = fn(ctx, fe)))
				return err;
			if ((fe->fe_flags & FIEMAP_EXTENT_LAST) ||
			    fe->fe_logical + fe->fe_length <= start)
				return 0; /* the last, or no progress: never loop */
			start = fe->fe_logical + fe->fe_length;
		}
		if (u.fm.fm_mapped_extents < N)
			return 0;
	}
}

static int delalloc_record(void *ctx, const struct fiemap_extent *fe)
{
	if (!(fe->fe_flags & FIEMAP_EXTENT_DELALLOC))
		return 0;
	return mtfs_add_finding(ctx, fe->fe_logical, fe->fe_length, MAPTBL_FS_RULE_DELALLOC,
				MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY);
}

/* MAPTBL_FS_NO_SYNC: dirty ranges have no items yet (they would look like holes): FIEMAP
 * reports them as delalloc. */
static int delalloc_findings(struct maptbl_fs_map *m, int fd)
{
	return fiemap_each(fd, delalloc_record, m);
}

/* ---- the backend -------------------------------------------------------------------------- */

static const char *profile_name(uint64_t type)
{
	switch (type & BTRFS_BLOCK_GROUP_PROFILE_MASK) {
	case 0:
		return "single";
	case BTRFS_BLOCK_GROUP_DUP:
		return "DUP";
	case BTRFS_BLOCK_GROUP_RAID0:
		return "RAID0";
	case BTRFS_BLOCK_GROUP_RAID1:
		return "RAID1";
	case BTRFS_BLOCK_GROUP_RAID1C3:
		return "RAID1C3";
	case BTRFS_BLOCK_GROUP_RAID1C4:
		return "RAID1C4";
	case BTRFS_BLOCK_GROUP_RAID10:
		return "RAID10";
	case BTRFS_BLOCK_GROUP_RAID5:
		return "RAID5";
	case BTRFS_BLOCK_GROUP_RAID6:
		return "RAID6";
	}
	return "unknown";
}

/*
 * The piece at @lo of chunk @c on device @dev when one of the chunk's copies lies there, else
 * copy 0. btrfs does not keep the stripe order of mirrored chunks fixed: copy 0 of one chunk may
 * be on device 1 and copy 0 of the next on device 2, while both hold a full copy.
 */
static int chunk_piece_on(const struct bt_chunk *c, uint64_t lo, uint64_t len, uint64_t dev,
			  struct bt_piece *p)
{
	int err = chunk_map_piece(c, lo, len, 0, p);

	for (unsigned k = 1; !err && p->devid != dev && k < chunk_copies(c); k++) {
		struct bt_piece q;

		if (!chunk_map_piece(c, lo, len, k, &q) && q.devid == dev)
			*p = q;
	}
	return err;
}

/* Whether an item's bytes can become records at all (else the item loop refuses it). */
static bool item_mappable(const struct bt_item *b)
{
	return (b->type == BTRFS_FILE_EXTENT_REG || b->type == BTRFS_FILE_EXTENT_PREALLOC) &&
	       !b->encryption && !b->compression && !b->other_encoding && b->disk_bytenr;
}

/* Whether every mappable piece of @f has a copy on device @dev (RAID5/6 and unmapped bytes are
 * refused anyway and do not count). */
static bool file_on_dev(const struct bt_chunk_map *cm, const struct bt_file *f, uint64_t dev)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct bt_item *b = &f->it[i];
		uint64_t lo = b->disk_bytenr + b->offset, left = b->num_bytes;

		while (item_mappable(b) && left) {
			const struct bt_chunk *c = chunk_find(cm, lo);
			struct bt_piece p;

			if (!c || chunk_piece_on(c, lo, left, dev, &p))
				break;
			if (p.devid != dev)
				return false;
			lo += p.length, left -= p.length;
		}
	}
	return true;
}

/* The table's device: of the devices holding a copy of the first mapped byte, the first that
 * holds a copy of every byte; without one, copy 0 of the first byte (0: nothing mapped). */
static uint64_t pick_table_dev(const struct bt_chunk_map *cm, const struct bt_file *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct bt_item *b = &f->it[i];
		const struct bt_chunk *c;
		struct bt_piece p;
		unsigned k;

		if (!item_mappable(b) || !b->num_bytes ||
		    !(c = chunk_find(cm, b->disk_bytenr + b->offset)))
			continue;
		for (k = 0; k < chunk_copies(c); k++)
			if (!chunk_map_piece(c, b->disk_bytenr + b->offset, b->num_bytes, k, &p) &&
			    file_on_dev(cm, f, p.devid))
				return p.devid;
		if (!chunk_map_piece(c, b->disk_bytenr + b->offset, b->num_bytes, 0, &p))
			return p.devid;
	}
	return 0;
}

/* One REG/PREALLOC item: its pieces become records on the table's device, or findings. For
 * mirrored profiles the copy on the table's device is used, whichever stripe it is. */
static int map_item(struct bt_ctx *x, const struct bt_chunk_map *cm, const struct bt_item *b,
		    bool shared, uint64_t *table_dev, uint64_t *other_dev)
{
	const uint32_t both = MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY;
	struct maptbl_fs_map *m = x->m;
	uint64_t fo = b->file_off, lo = b->disk_bytenr + b->offset, left = b->num_bytes;
	uint32_t rf = (b->type == BTRFS_FILE_EXTENT_PREALLOC ? MTFS_REC_UNWRITTEN : 0) |
		      (shared ? MTFS_REC_SHARED : 0);
	int err;

	while (left) {
		const struct bt_chunk *c = chunk_find(cm, lo);
		struct bt_piece p;
		uint64_t prof;

		if (!c) {
			mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs logical %llu is in no chunk", m->path,
				 (unsigned long long)lo);
			return mtfs_add_finding(m, fo, left, MAPTBL_FS_RULE_UNKNOWN, both);
		}
		prof = c->type & BTRFS_BLOCK_GROUP_PROFILE_MASK;
		err = chunk_piece_on(c, lo, left, *table_dev, &p);
		if (err == -EOPNOTSUPP) {
			/* RAID5/6: data and rotating parity; neither reads nor writes are
			 * plain. The whole rest of the chunk (or of the item) goes. */
			uint64_t n = c->logical + c->length - lo;

			n = n < left ? n : left;
			if ((err = mtfs_add_finding(m, fo, n, MAPTBL_FS_RULE_PROFILE, both)))
				return err;
			fo += n, lo += n, left -= n;
			continue;
		}
		if (err)
			return -EIO;
		if (prof && (err = mtfs_add_finding(m, fo, p.length, MAPTBL_FS_RULE_PROFILE,
						    MAPTBL_FS_REFUSES_WRITABLE)))
			return err;
		if (!*table_dev)
			*table_dev = p.devid;
		if (p.devid != *table_dev) {
			if (!*other_dev)
				*other_dev = p.devid;
			err = mtfs_add_finding(m, fo, p.length, MAPTBL_FS_RULE_OTHER_DEVICE, both);
			mtfs_log(MAPTBL_LOG_INFO, "%s: bytes %llu..%llu are on btrfs device %llu, not %llu (%s)",
				 m->path, (unsigned long long)fo,
				 (unsigned long long)(fo + p.length - 1), (unsigned long long)p.devid,
				 (unsigned long long)*table_dev, profile_name(c->type));
		} else {
			err = mtfs_add_record(m, fo, p.physical, p.length, rf);
		}
		if (err)
			return err;
		fo += p.length, lo += p.length, left -= p.length;
	}
	return 0;
}

int mtfs_btrfs(struct maptbl_fs_map *m, int fd, uint64_t ino, uint32_t flags)
{
	const uint32_t both = MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY;
	struct bt_ctx x = { .m = m, .fd = fd, .ino = ino };
	struct bt_chunk_map cm = { 0 };
	struct bt_file f = { 0 };
	bool *shared = NULL;
	uint64_t table_dev = 0, other_dev = 0, ndev = 1;
	char path[BTRFS_DEVICE_PATH_NAME_MAX + 1];
	enum btrfs_util_error be;
	struct stat st;
	size_t i, n;
	int err;

	/* Commit the transaction: the backref walk of LOGICAL_INO reads the committed extent tree,
	 * and fsync alone only writes the log tree. */
	if (!(flags & MAPTBL_FS_NO_SYNC) && (be = btrfs_util_sync_fd(fd)) != BTRFS_UTIL_OK) {
		err = errno ? -errno : -EIO;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs sync: %s", m->path, btrfs_util_strerror(be));
		return err;
	}
	if ((be = btrfs_util_subvolume_id_fd(fd, &x.root)) != BTRFS_UTIL_OK) {
		err = errno ? -errno : -EIO;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs subvolume: %s", m->path, btrfs_util_strerror(be));
		return err;
	}
	err = tree_search(fd, BTRFS_CHUNK_TREE_OBJECTID, BTRFS_FIRST_CHUNK_TREE_OBJECTID,
			  BTRFS_FIRST_CHUNK_TREE_OBJECTID, BTRFS_CHUNK_ITEM_KEY, BTRFS_CHUNK_ITEM_KEY,
			  chunk_item, &cm);
	if (!err)
		err = read_file_items(fd, ino, &f);
	if (err) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs tree search: %s%s", m->path, strerror(-err),
			 err == -EPERM ? " (reading btrfs trees needs CAP_SYS_ADMIN)" : "");
		if (err == -EUCLEAN)
			err = -EIO;
		goto out;
	}
	if (!f.have_inode) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: no inode item for inode %llu", m->path,
			 (unsigned long long)ino);
		err = -EIO;
		goto out;
	}
	/* The file's own rules: NOCOW and no data checksums (btrfs_swap_activate). Reads do not
	 * care: a read-only table may use a copy-on-write, checksummed file. */
	if (!(f.inode_flags & BT_INODE_NODATACOW) &&
	    (err = mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_COW, MAPTBL_FS_REFUSES_WRITABLE)))
		goto out;
	if (!(f.inode_flags & BT_INODE_NODATASUM) &&
	    (err = mtfs_add_finding(m, 0, m->file_size, MAPTBL_FS_RULE_CHECKSUMMED,
				    MAPTBL_FS_REFUSES_WRITABLE)))
		goto out;
	if ((flags & MAPTBL_FS_NO_SYNC) && (err = delalloc_findings(m, fd)))
		goto out;

	x.loi = malloc(LOGINO_BUF);
	shared = calloc(f.n ? f.n : 1, sizeof(*shared));
	if (!x.loi || !shared) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = find_shared(&x, &f, shared, &n)))
		goto out;
	table_dev = pick_table_dev(&cm, &f);

	for (i = 0; i < f.n; i++) {
		const struct bt_item *b = &f.it[i];
		uint64_t len = b->type == BTRFS_FILE_EXTENT_INLINE ? b->ram_bytes : b->num_bytes;
		uint32_t rule = 0;

		if (b->type == BTRFS_FILE_EXTENT_INLINE)
			rule = MAPTBL_FS_RULE_INLINE;
		else if (b->encryption)
			rule = MAPTBL_FS_RULE_ENCRYPTED;
		else if (b->compression || b->other_encoding)
			rule = MAPTBL_FS_RULE_ENCODED;
		else if (b->type != BTRFS_FILE_EXTENT_REG && b->type != BTRFS_FILE_EXTENT_PREALLOC)
			rule = MAPTBL_FS_RULE_UNKNOWN;
		if (rule) {
			if ((err = mtfs_add_finding(m, b->file_off, len ? len : 1, rule, both)))
				goto out;
			continue;
		}
		if (!b->disk_bytenr)
			continue; /* an explicit hole */
		if ((err = map_item(&x, &cm, b, shared[i], &table_dev, &other_dev)))
			goto out;
	}

	/* The table's disk: the device of the first mapped byte (or the first device). */
	if ((err = fs_devices(fd, &table_dev, &ndev))) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: BTRFS_IOC_FS_INFO: %s", m->path, strerror(-err));
		goto out;
	}
	if ((err = dev_path(fd, table_dev, path, sizeof(path)))) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs device %llu: %s", m->path,
			 (unsigned long long)table_dev, err == -ENODEV ? "missing" : strerror(-err));
		goto out;
	}
	if (stat(path, &st) < 0) {
		err = -errno;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs device %llu: %s: %s", m->path,
			 (unsigned long long)table_dev, path, strerror(errno));
		goto out;
	}
	if (!S_ISBLK(st.st_mode)) {
		err = -EOPNOTSUPP;
		mtfs_log(MAPTBL_LOG_ERROR, "%s: btrfs device %llu: %s is not a block device", m->path,
			 (unsigned long long)table_dev, path);
		goto out;
	}
	describe_subvolume(&x);
	n = strlen(m->layers);
	snprintf(m->layers + n, sizeof(m->layers) - n, ", device %llu of %llu",
		 (unsigned long long)table_dev, (unsigned long long)ndev);
	if (other_dev) {
		char op[BTRFS_DEVICE_PATH_NAME_MAX + 1];

		n = strlen(m->layers);
		snprintf(m->layers + n, sizeof(m->layers) - n, " (some extents on device %llu, %s)",
			 (unsigned long long)other_dev,
			 dev_path(fd, other_dev, op, sizeof(op)) ? "?" : op);
	}
	err = mtfs_resolve_blkdev(m, st.st_rdev);
out:
	free(shared);
	free(x.loi);
	free(f.it);
	chunk_map_free(&cm);
	return err;
}

/* ---- statistics: one file, from its items ------------------------------------------------- */

struct shared_ctx {
	const struct bt_file *f;
	bool *shared;
	size_t j; /* the first item that may overlap the next record */
};

static int shared_record(void *ctx, const struct fiemap_extent *fe)
{
	struct shared_ctx *c = ctx;
	const struct bt_file *f = c->f;
	uint64_t end = fe->fe_logical + fe->fe_length;

	/* Items and records both ascend by file offset. */
	while (c->j < f->n && f->it[c->j].file_off + f->it[c->j].num_bytes <= fe->fe_logical)
		c->j++;
	for (size_t k = c->j; (fe->fe_flags & FIEMAP_EXTENT_SHARED) && k < f->n &&
			   f->it[k].file_off < end;
	     k++)
		if (f->it[k].type != BTRFS_FILE_EXTENT_INLINE && f->it[k].disk_bytenr)
			c->shared[k] = true;
	return 0;
}

/*
 * Statistics: marks in @shared[] the items FIEMAP flags FIEMAP_EXTENT_SHARED. The kernel's check
 * (btrfs_is_data_extent_shared) walks the backrefs through shared tree blocks, so it sees a
 * snapshot whose leaves were not rewritten yet, where the extent item's reference count stays 1.
 * It is exact, and what filefrag shows. Cost: one FIEMAP call per 256 records of the file (the
 * kernel caches the sharedness of tree blocks during one call), against one LOGICAL_INO_V2
 * backref walk per disk extent, which also needs a committed transaction.
 */
static int fiemap_shared(int fd, const struct bt_file *f, bool *shared)
{
	struct shared_ctx c = { .f = f, .shared = shared };

	return fiemap_each(fd, shared_record, &c);
}

int mtfs_btrfs_measure(int fd, uint64_t ino, uint64_t size, uint32_t bs,
		       struct maptbl_file_stats *out)
{
	struct bt_ctx x = { .fd = fd, .ino = ino, .by_fiemap = true };
	struct bt_file f;
	struct mtfs_count c;
	bool *shared = NULL;
	size_t i, n = 0;
	int err = read_file_items(fd, ino, &f);

	if (err)
		goto out;
	if (!f.have_inode) {
		err = -ENOENT; /* unlinked between the open and the search */
		goto out;
	}
	/* Shared records, and each disk extent counted once. */
	shared = calloc(f.n ? f.n : 1, sizeof(*shared));
	if (!shared) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = find_shared(&x, &f, shared, &n)) || (err = fiemap_shared(fd, &f, shared)))
		goto out;
	out->disk_extents = n;

	/* The items as the records FIEMAP would give, counted as filefrag counts them. */
	mtfs_count_init(&c, bs);
	for (i = 0; i < f.n; i++) {
		const struct bt_item *b = &f.it[i];
		uint64_t len = b->type == BTRFS_FILE_EXTENT_INLINE ? b->ram_bytes : b->num_bytes;
		uint64_t phys = b->disk_bytenr + b->offset; /* btrfs logical, as filefrag sees it */
		uint32_t fl = (b->type == BTRFS_FILE_EXTENT_PREALLOC ? MTFS_REC_UNWRITTEN : 0) |
			      (shared[i] ? MTFS_REC_SHARED : 0);

		if (b->type != BTRFS_FILE_EXTENT_INLINE && !b->disk_bytenr)
			continue; /* explicit hole */
		if (b->type == BTRFS_FILE_EXTENT_INLINE) {
			out->inline_extents++;
			phys = 0;
		} else if (b->compression || b->other_encoding) {
			out->compressed++;
			phys = b->disk_bytenr; /* FIEMAP's address of an encoded extent */
		}
		mtfs_count_record(&c, out, b->file_off, phys, len, fl);
	}
	err = mtfs_count_finish(&c, out, size);
out:
	free(shared);
	free(f.it);
	return err;
}
