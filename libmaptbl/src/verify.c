/* SPDX-License-Identifier: MIT */
/*
 * verify.c - maptbl_table_open(): validate an untrusted table before anything uses it.
 *
 * The order is that of STYLE.md §10: size, magic, header_len, offsets and sizes, alignment, every
 * record bounded (each reachable node, each entry), semantic rules (ordering, exact index ranges,
 * levels, sharing and cycles, extents inside the virtual and physical disk), checksums last. The
 * tree is walked depth-first in logical order with an explicit stack of at most 16 frames; every
 * node is marked in a bitmap so that a second reference to it is caught before it is read twice.
 * Entries are sorted within each node and every index range is exactly its child's range, so the
 * extents of the whole tree are sorted and disjoint without a global comparison.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct vctx {
	const uint8_t *buf;
	size_t len;
	uint32_t node_size, node_shift;
	uint64_t nslots, virtual_blocks, disk_blocks, incompat;
	uint8_t *seen;		/* bitmap of reachable nodes */
	struct maptbl_stats st;
	struct maptbl_diag *diag;
};

struct frame {
	uint32_t node;
	uint32_t next;		/* next entry to descend into (index nodes) */
	uint32_t nr;
	uint32_t level;
};

#define ULL(x) ((unsigned long long)(x))

static int bad(struct vctx *v, uint64_t off, const char *fmt, ...) MT_PRINTF(3, 4);

static int bad(struct vctx *v, uint64_t off, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mt_diag(v->diag, off, -1, "%s", msg);
	return -EBADMSG;
}

static uint64_t first_nonzero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return i;
	return n;
}

/*
 * Check one node completely (header, tail, every entry) before any of its children is visited.
 * @exp_first/@exp_end: the exact range the parent's entry claims; @has_exp false for the root.
 */
static int check_node(struct vctx *v, uint32_t n, uint32_t parent_level, bool has_exp,
		      uint64_t exp_first, uint64_t exp_end, uint64_t ref_off, struct frame *f)
{
	uint64_t off = (uint64_t)n << v->node_shift, z;
	const uint8_t *node = v->buf + off;
	const struct maptbl_node_hdr *h = (const void *)node;
	uint32_t nr, cap, esz, i, level;
	uint64_t prev = 0, base;
	unsigned kind;

	if (v->seen[n >> 3] & (1u << (n & 7)))
		return bad(v, ref_off, "node %u is referenced twice (a cycle or a shared subtree)", n);
	v->seen[n >> 3] |= (uint8_t)(1u << (n & 7));

	if (maptbl_le16_to_cpu(h->magic) != MAPTBL_NODE_MAGIC)
		return bad(v, off, "node %u: bad node magic 0x%04x", n, maptbl_le16_to_cpu(h->magic));
	if (maptbl_le32_to_cpu(h->self) != n)
		return bad(v, off + 12, "node %u: self field says node %u", n,
			   maptbl_le32_to_cpu(h->self));
	kind = h->kind;
	esz = maptbl_entry_size(kind);
	if (!esz)
		return bad(v, off + 2, "node %u: unknown node kind %u", n, kind);
	if (kind == MAPTBL_NODE_LEAF_WIDE && !(v->incompat & MAPTBL_INCOMPAT_WIDE_LEAF))
		return bad(v, off + 2, "node %u: wide leaf in a table without the WIDE_LEAF feature", n);
	level = h->level;
	if (kind == MAPTBL_NODE_INDEX ? (level < 1 || level > MAPTBL_MAX_LEVEL) : level != 0)
		return bad(v, off + 3, "node %u: level %u does not fit its kind %u", n, level, kind);
	if (level >= parent_level)
		return bad(v, off + 3, "node %u: level %u is not below its parent's level %u", n,
			   level, parent_level);
	nr = maptbl_le16_to_cpu(h->nr_entries);
	cap = maptbl_node_capacity(v->node_size, kind);
	if (nr < 1 || nr > cap)
		return bad(v, off + 4, "node %u: %u entries, must be 1 to %u", n, nr, cap);
	if (maptbl_le16_to_cpu(h->flags))
		return bad(v, off + 6, "node %u: flags 0x%x must be zero", n,
			   maptbl_le16_to_cpu(h->flags));
	if (maptbl_le64_to_cpu(h->reserved))
		return bad(v, off + 24, "node %u: reserved field must be zero", n);
	z = first_nonzero(node + MAPTBL_NODE_HDR_SIZE + (size_t)nr * esz,
			  v->node_size - MAPTBL_NODE_HDR_SIZE - (size_t)nr * esz);
	if (z != v->node_size - MAPTBL_NODE_HDR_SIZE - (uint64_t)nr * esz)
		return bad(v, off + MAPTBL_NODE_HDR_SIZE + (uint64_t)nr * esz + z,
			   "node %u: non-zero byte after the last entry", n);
	base = maptbl_le64_to_cpu(h->base_lblk);
	if (base >= MAPTBL_MAX_BLK)
		return bad(v, off + 16, "node %u: base_lblk %llu exceeds 2^48", n, ULL(base));

	for (i = 0; i < nr; i++) {
		uint64_t eoff = off + MAPTBL_NODE_HDR_SIZE + (uint64_t)i * esz;
		struct mt_entry e;

		mt_decode_entry(node, kind, i, &e);
		if (kind == MAPTBL_NODE_LEAF_WIDE &&
		    maptbl_le16_to_cpu(((const struct maptbl_wide_entry *)(node + eoff - off))->flags) &
			    ~MAPTBL_WIDE_UNWRITTEN)
			return bad(v, eoff + 22, "node %u entry %u: unknown extent flags", n, i);
		if (!e.len)
			return bad(v, eoff, "node %u entry %u: length is 0", n, i);
		if (e.start >= MAPTBL_MAX_BLK || e.len > MAPTBL_MAX_BLK - e.start)
			return bad(v, eoff, "node %u entry %u: logical range ends past 2^48", n, i);
		if (i && e.start < prev)
			return bad(v, eoff, "node %u entry %u: starts at block %llu, before the previous entry ends (%llu)",
				   n, i, ULL(e.start), ULL(prev));
		if (i == 0 && e.start != base)
			return bad(v, off + 16, "node %u: base_lblk %llu is not the first entry's block %llu",
				   n, ULL(base), ULL(e.start));
		prev = e.start + e.len;
		if (prev > v->virtual_blocks)
			return bad(v, eoff, "node %u entry %u: ends at block %llu, past the virtual disk's %llu blocks",
				   n, i, ULL(prev), ULL(v->virtual_blocks));
		if (kind == MAPTBL_NODE_INDEX) {
			if (e.child >= v->nslots)
				return bad(v, eoff + 12, "node %u entry %u: child %u is outside the table (%llu nodes)",
					   n, i, e.child, ULL(v->nslots));
			if (!e.child)
				v->st.nr_absent++;
			continue;
		}
		if (e.pblk >= MAPTBL_MAX_BLK || e.len > MAPTBL_MAX_BLK - e.pblk)
			return bad(v, eoff, "node %u entry %u: physical range ends past 2^48", n, i);
		if (v->disk_blocks && e.pblk + e.len > v->disk_blocks)
			return bad(v, eoff, "node %u entry %u: physical range ends at block %llu, past the disk's %llu blocks",
				   n, i, ULL(e.pblk + e.len), ULL(v->disk_blocks));
		mt_stats_extent(&v->st, e.len, e.flags);
	}
	if (has_exp && (base != exp_first || prev != exp_end))
		return bad(v, ref_off, "node %u covers blocks [%llu, %llu) but its parent's entry says [%llu, %llu)",
			   n, ULL(base), ULL(prev), ULL(exp_first), ULL(exp_end));
	mt_stats_node(&v->st, kind, level, nr, v->node_size);
	f->node = n;
	f->next = 0;
	f->nr = kind == MAPTBL_NODE_INDEX ? nr : 0;
	f->level = level;
	return 0;
}

static int check_tree(struct vctx *v, uint32_t root)
{
	struct frame stack[MAPTBL_MAX_DEPTH];
	int sp = 0, err;

	err = check_node(v, root, MAPTBL_MAX_LEVEL + 1, false, 0, 0, 16, &stack[0]);
	if (err)
		return err;
	v->st.depth = stack[0].level + 1;
	v->st.max_nodes_touched = 1;
	while (sp >= 0) {
		struct frame *f = &stack[sp];
		uint64_t off = (uint64_t)f->node << v->node_shift;
		struct mt_entry e;

		if (f->next >= f->nr) {
			sp--;
			continue;
		}
		mt_decode_entry(v->buf + off, MAPTBL_NODE_INDEX, f->next, &e);
		f->next++;
		if (!e.child)
			continue;
		/* Levels strictly decrease, so the stack never exceeds 16 frames. */
		err = check_node(v, e.child, f->level, true, e.start, e.start + e.len,
				 off + MAPTBL_NODE_HDR_SIZE + (uint64_t)(f->next - 1) * 16 + 12,
				 &stack[sp + 1]);
		if (err)
			return err;
		sp++;
		if ((uint32_t)sp + 1 > v->st.max_nodes_touched)
			v->st.max_nodes_touched = (uint32_t)sp + 1;
	}
	return 0;
}

static int check_crcs(struct vctx *v, uint32_t header_len)
{
	uint64_t n;
	uint32_t want = maptbl_le32_to_cpu(((const struct maptbl_header *)v->buf)->header_crc);
	uint32_t got = mt_header_crc(v->buf, header_len);

	if (want != got)
		return bad(v, 12, "header checksum mismatch: stored 0x%08x, computed 0x%08x", want, got);
	for (n = 1; n < v->nslots; n++) {
		const uint8_t *node;
		uint32_t used;

		if (!(v->seen[n >> 3] & (1u << (n & 7))))
			continue;
		node = v->buf + (n << v->node_shift);
		used = MAPTBL_NODE_HDR_SIZE +
		       maptbl_le16_to_cpu(((const struct maptbl_node_hdr *)node)->nr_entries) *
			       maptbl_entry_size(node[2]);
		want = maptbl_le32_to_cpu(((const struct maptbl_node_hdr *)node)->crc);
		got = mt_node_crc(node, used);
		if (want != got)
			return bad(v, (n << v->node_shift) + 8,
				   "node %llu: checksum mismatch: stored 0x%08x, computed 0x%08x",
				   ULL(n), want, got);
	}
	return 0;
}

MAPTBL_API int maptbl_table_open(const void *buf, size_t len, const struct maptbl_open_opts *opts,
				 struct maptbl_table **out)
{
	const struct maptbl_header *h = buf;
	struct maptbl_open_opts o;
	struct vctx v = { 0 };
	uint32_t header_len, bs, root;
	uint64_t table_len, ro, z;
	uint32_t known_end;
	struct maptbl_table *t;
	bool readonly = false;
	uint8_t *copy;
	int err;

	if (!out || (!buf && len))
		return -EINVAL;
	*out = NULL;
	err = mt_opts_copy(&o, opts, sizeof(o), "maptbl_open_opts");
	if (err)
		return err;
	if ((o.flags & ~MAPTBL_OPEN_INPLACE) || o.reserved)
		return -EINVAL;
	if ((o.flags & MAPTBL_OPEN_INPLACE) && ((uintptr_t)buf % 8))
		return -EINVAL;
	v.diag = o.diag;
	if (v.diag) {
		memset(v.diag, 0, sizeof(*v.diag));
		v.diag->index = -1;
	}
	v.buf = buf;
	v.len = len;

	/* 1-3: size, magic, version, header_len. */
	if (len < MAPTBL_HEADER_SIZE)
		return bad(&v, 0, "table is %zu bytes, shorter than the %d-byte header", len,
			   MAPTBL_HEADER_SIZE);
	if (memcmp(h->magic, MAPTBL_MAGIC_STR, MAPTBL_MAGIC_LEN))
		return bad(&v, 0, "bad magic: not a maptbl table");
	if (maptbl_le16_to_cpu(h->version) != MAPTBL_VERSION) {
		mt_diag(v.diag, 8, -1, "table version %u is not supported (this library reads version %d)",
			maptbl_le16_to_cpu(h->version), MAPTBL_VERSION);
		return -EOPNOTSUPP;
	}
	header_len = maptbl_le16_to_cpu(h->header_len);
	if (header_len < MAPTBL_HEADER_SIZE || header_len % 8 || header_len > len)
		return bad(&v, 10, "header_len %u is not a multiple of 8 from 128 to the table size",
			   header_len);
	if (maptbl_le64_to_cpu(h->incompat) & ~MAPTBL_INCOMPAT_KNOWN) {
		mt_diag(v.diag, 24, -1, "unknown incompatible features 0x%llx",
			ULL(maptbl_le64_to_cpu(h->incompat) & ~MAPTBL_INCOMPAT_KNOWN));
		return -EOPNOTSUPP;
	}

	/* 4-5: sizes and offsets, alignment. */
	bs = maptbl_le32_to_cpu(h->block_size);
	if (!mt_is_pow2(bs) || bs < MAPTBL_MIN_BLOCK_SIZE || bs > MAPTBL_MAX_BLOCK_SIZE)
		return bad(&v, 48, "block_size %u is not a power of two from 512 to 65536", bs);
	v.node_size = maptbl_le32_to_cpu(h->node_size);
	if (!mt_is_pow2(v.node_size) || v.node_size < MAPTBL_MIN_NODE_SIZE ||
	    v.node_size > MAPTBL_MAX_NODE_SIZE)
		return bad(&v, 52, "node_size %u is not a power of two from 256 to 65536", v.node_size);
	v.node_shift = mt_log2(v.node_size);
	if (header_len > v.node_size)
		return bad(&v, 10, "header_len %u exceeds node_size %u", header_len, v.node_size);
	table_len = maptbl_le64_to_cpu(h->table_len);
	if (table_len != len)
		return bad(&v, 72, "table_len says %llu bytes, but the table is %zu bytes",
			   ULL(table_len), len);
	if (table_len % v.node_size)
		return bad(&v, 72, "table_len %llu is not a multiple of node_size %u", ULL(table_len),
			   v.node_size);
	v.nslots = table_len >> v.node_shift;
	if (v.nslots > (UINT64_C(1) << 32))
		return bad(&v, 72, "table_len %llu holds more than 2^32 nodes", ULL(table_len));
	z = first_nonzero(h->reserved, sizeof(h->reserved));
	if (z != sizeof(h->reserved))
		return bad(&v, 80 + z, "reserved header byte %llu must be zero", ULL(80 + z));
	v.virtual_blocks = maptbl_le64_to_cpu(h->virtual_blocks);
	if (v.virtual_blocks > MAPTBL_MAX_BLK)
		return bad(&v, 56, "virtual_blocks %llu exceeds 2^48", ULL(v.virtual_blocks));
	v.disk_blocks = maptbl_le64_to_cpu(h->disk_blocks);
	if (v.disk_blocks > MAPTBL_MAX_BLK)
		return bad(&v, 64, "disk_blocks %llu exceeds 2^48", ULL(v.disk_blocks));
	root = maptbl_le32_to_cpu(h->root);
	if (root >= v.nslots)
		return bad(&v, 16, "root node %u is outside the table (%llu nodes)", root,
			   ULL(v.nslots));
	v.incompat = maptbl_le64_to_cpu(h->incompat);
	ro = maptbl_le64_to_cpu(h->ro_compat);
	if (ro & ~MAPTBL_RO_COMPAT_KNOWN) {
		mt_log(MAPTBL_LOG_WARN, "unknown read-only-compatible features 0x%llx: table is read-only",
		       ULL(ro & ~MAPTBL_RO_COMPAT_KNOWN));
		readonly = true;
	}
	known_end = MAPTBL_HEADER_SIZE;
	if (maptbl_le64_to_cpu(h->compat) & MAPTBL_COMPAT_DISK_INFO) {
		/* The disk record (FORMAT.md §3.1): bounded, reserved zero, a path without NUL. */
		const struct maptbl_disk_info *d =
			(const void *)((const uint8_t *)buf + MAPTBL_DISK_INFO_OFFSET);
		uint32_t plen;

		if (header_len < MAPTBL_DISK_PATH_OFFSET)
			return bad(&v, 10, "header_len %u is too short for the disk record", header_len);
		plen = maptbl_le16_to_cpu(d->path_len);
		if (plen > header_len - MAPTBL_DISK_PATH_OFFSET)
			return bad(&v, MAPTBL_DISK_INFO_OFFSET + 8,
				   "disk path of %u bytes runs past header_len %u", plen, header_len);
		z = first_nonzero(d->reserved, sizeof(d->reserved));
		if (z != sizeof(d->reserved))
			return bad(&v, MAPTBL_DISK_INFO_OFFSET + 10 + z,
				   "reserved disk record byte must be zero");
		if (memchr((const uint8_t *)buf + MAPTBL_DISK_PATH_OFFSET, 0, plen))
			return bad(&v, MAPTBL_DISK_PATH_OFFSET, "disk path contains a NUL byte");
		known_end = MAPTBL_DISK_PATH_OFFSET + plen;
	}
	if (first_nonzero((const uint8_t *)buf + known_end, header_len - known_end) !=
	    header_len - known_end) {
		mt_log(MAPTBL_LOG_WARN, "unknown header fields past byte %u: table is read-only",
		       known_end);
		readonly = true;
	}

	/* 6-7: every record, then the semantic rules, walking the tree. */
	v.seen = calloc((size_t)(v.nslots + 7) / 8, 1);
	if (!v.seen)
		return -ENOMEM;
	v.st.table_bytes = table_len;
	err = root ? check_tree(&v, root) : 0;
	/* 8: checksums. */
	if (!err)
		err = check_crcs(&v, header_len);
	free(v.seen);
	if (err)
		return err;

	if (o.flags & MAPTBL_OPEN_INPLACE) {
		copy = (uint8_t *)(uintptr_t)buf; /* the caller lends it writable (maptbl.h) */
	} else {
		if (posix_memalign((void **)&copy, 4096, len))
			return -ENOMEM;
		memcpy(copy, buf, len);
	}
	t = mt_table_new(copy, len);
	if (!t) {
		if (!(o.flags & MAPTBL_OPEN_INPLACE))
			free(copy);
		return -ENOMEM;
	}
	t->borrowed = o.flags & MAPTBL_OPEN_INPLACE;
	t->readonly = readonly;
	t->st = v.st;
	*out = t;
	return 0;
}
