/* SPDX-License-Identifier: MIT */
/*
 * fuzz_update.c - libFuzzer target: a sequence of table updates (update.c, FORMAT.md §12) decoded
 * from the input, on a small table built from the input too. After every update, refused or not:
 *  - a refused update (any error) left the buffer byte for byte as it was, bar the slots it may
 *    have written before giving up with -ENOSPC or -E2BIG (free slots the tree does not reach),
 *    and the live word and the statistics are unchanged;
 *  - maptbl_table_open() accepts the buffer with the same statistics;
 *  - the library and the reference walker (with checksums) answer the same for the update's
 *    edges and a few blocks around them.
 * -ENOSPC is answered by a compaction (which must succeed) and the update is tried again.
 *
 * Input layout (missing bytes read as zero):
 *   0     node size 256 << (b % 4)
 *   1     spare slots b % 64; bit 7 of byte 2: table built with one long extent (WIDE_LEAF)
 *   2     bits 0..6: extents of the initial table (b % 100)
 *   then 12-byte records, one update each:
 *   +0    operation b % 7: insert, convert, punch, mark absent, unmark absent (with no extents
 *         or one), grow, staged insert + publish
 *   +1    flags: bit 0 unwritten; bit 1 staged (publish after the next record)
 *   +2    lblk (16 bits, times 4); +4 length (16 bits, 0 is invalid); +6 pblk (32 bits);
 *   +10   reclaim: bit 0 reclaim everything after this record
 */
#include "fuzz_util.h"

#define MAX_UPDATES 256u

static void check_same(struct maptbl_table *t, struct maptbl_walker *w, struct fz_mem *m,
		       uint64_t l, uint64_t n)
{
	uint64_t vb = maptbl_table_virtual_blocks(t), pts[6], i;

	pts[0] = l;
	pts[1] = l + n - 1;
	pts[2] = l ? l - 1 : 0;
	pts[3] = l + n;
	pts[4] = 0;
	pts[5] = vb - 1;
	m->p = maptbl_table_data(t);
	m->n = maptbl_table_len(t);
	m->limit = 0;
	FZ_CHECK(maptbl_walk_init(w, fz_read, m, fz_scratch(), 65536, MAPTBL_WALK_CHECK_CRC) ==
			 MAPTBL_WALK_OK,
		 "walker setup on an updated table");
	m->limit = w->table_len;
	for (i = 0; i < 6; i++)
		if (vb && pts[i] < vb)
			fz_compare(t, w, pts[i]);
}

static void check_open(struct maptbl_table *t)
{
	struct maptbl_table *t2 = NULL;
	struct maptbl_stats a, b;
	struct maptbl_diag d;
	struct maptbl_open_opts oo;
	int err;

	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.diag = &d;
	err = maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), &oo, &t2);
	FZ_CHECK(!err, "open after an update: %d: %s", err, d.reason);
	maptbl_table_stats(t, &a, sizeof(a));
	maptbl_table_stats(t2, &b, sizeof(b));
	FZ_CHECK(!memcmp(&a, &b, sizeof(a)), "statistics differ from a fresh open");
	maptbl_table_free(t2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maptbl_extent e[100];
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL, *t2;
	struct maptbl_walker w;
	struct fz_mem m = { 0 };
	uint8_t *before = NULL;
	size_t n = fz_get(data, size, 2, 1) % 100, i, off;
	uint64_t l = 0;
	bool wide = fz_get(data, size, 2, 1) & 0x80;

	for (i = 0; i < n; i++) {
		e[i].lblk = l;
		e[i].len = wide && i == n / 2 ? 40000 : 1 + (i * 7) % 20;
		e[i].pblk = 1000 + 100 * i;
		e[i].flags = i % 4 == 3 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		e[i].reserved = 0;
		l += e[i].len + i % 5;
	}
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 256u << (fz_get(data, size, 0, 1) % 4);
	o.spare_nodes = fz_get(data, size, 1, 1) % 64;
	o.virtual_blocks = 1u << 18;
	FZ_CHECK(!maptbl_table_build(e, n, &o, &t), "build of the initial table");

	for (off = 3; off < size && off < 3 + 12 * MAX_UPDATES; off += 12) {
		unsigned op = (unsigned)fz_get(data, size, off, 1) % 7;
		unsigned fl = (unsigned)fz_get(data, size, off + 1, 1);
		uint64_t lb = fz_get(data, size, off + 2, 2) * 4, ln = fz_get(data, size, off + 4, 2);
		uint64_t pb = fz_get(data, size, off + 6, 4);
		uint32_t uf = fl & 2 ? MAPTBL_UPDATE_STAGE : 0, gen = maptbl_table_generation(t);
		struct maptbl_extent x = { .lblk = lb, .pblk = pb, .len = ln,
					   .flags = fl & 1 ? MAPTBL_EXTENT_UNWRITTEN : 0 };
		struct maptbl_stats s0, s1;
		int err = 0, tries;

		free(before);
		before = malloc(maptbl_table_len(t));
		FZ_CHECK(before, "out of memory");
		memcpy(before, maptbl_table_data(t), maptbl_table_len(t));
		maptbl_table_stats(t, &s0, sizeof(s0));
		for (tries = 0; tries < 2; tries++) {
			switch (op) {
			case 0:
			case 6:
				err = maptbl_table_insert(t, &x, op == 6 ? MAPTBL_UPDATE_STAGE : uf);
				break;
			case 1:
				err = maptbl_table_convert(t, lb, ln, uf);
				break;
			case 2:
				err = maptbl_table_punch(t, lb, ln, uf);
				break;
			case 3:
				err = maptbl_table_mark_absent(t, lb, ln, uf);
				break;
			case 4:
				x.lblk = lb + 1;
				x.len = ln > 2 ? ln - 2 : 1;
				err = maptbl_table_unmark_absent(t, lb, ln, &x, fl & 4 ? 1 : 0, uf);
				break;
			default:
				err = maptbl_table_grow(t, maptbl_table_virtual_blocks(t) + ln, uf);
				break;
			}
			if (err != -ENOSPC)
				break;
			o.virtual_blocks = 0;
			o.spare_nodes = 64;
			FZ_CHECK(!maptbl_table_compact(t, &o, &t2), "compaction");
			maptbl_table_free(t);
			t = t2;
			free(before);
			before = malloc(maptbl_table_len(t));
			FZ_CHECK(before, "out of memory");
			memcpy(before, maptbl_table_data(t), maptbl_table_len(t));
			maptbl_table_stats(t, &s0, sizeof(s0));
			gen = maptbl_table_generation(t);
		}
		if (op == 6 || (uf && (fl & 8)))
			maptbl_table_publish(t);
		if (err) {
			FZ_CHECK(err == -EINVAL || err == -ERANGE || err == -EEXIST || err == -ENOENT ||
					 err == -ENXIO || err == -E2BIG || err == -ENOSPC,
				 "unexpected error %d", err);
			FZ_CHECK(maptbl_table_generation(t) == gen || op == 6 || (fl & 8),
				 "a refused update published");
			maptbl_table_stats(t, &s1, sizeof(s1));
			if (op != 6 && !(uf && (fl & 8))) {
				FZ_CHECK(!memcmp(&s0, &s1, sizeof(s0)), "a refused update changed the stats");
				if (err != -E2BIG && err != -ENOSPC)
					FZ_CHECK(!memcmp(before, maptbl_table_data(t), maptbl_table_len(t)),
						 "a refused update (%d) wrote into the buffer", err);
			}
		}
		if (fz_get(data, size, off + 10, 1) & 1)
			maptbl_table_reclaim(t, maptbl_table_generation(t));
		check_open(t);
		check_same(t, &w, &m, lb < maptbl_table_virtual_blocks(t) ? lb : 0, ln ? ln : 1);
	}
	free(before);
	maptbl_table_free(t);
	return 0;
}
