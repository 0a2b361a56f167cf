/* SPDX-License-Identifier: MIT */
/*
 * fuzz_extents.c - libFuzzer target: the input is an extent list plus build options. The builder
 * either refuses it (with the same error maptbl_extents_check() gives) or builds a table that
 *  - maptbl_table_open() accepts, with the same statistics;
 *  - iterates back to exactly the input extents;
 *  - answers every lookup (extent boundaries, blocks from the input) as a flat binary search over
 *    the input extents does, and as the reference walker does over its bytes (with and without
 *    MAPTBL_WALK_CHECK_CRC);
 *  - is built the same way twice (byte for byte).
 *
 * Input layout (little-endian; missing bytes read as zero):
 *   0     node size 256 << (b % 9)
 *   1     block size 512 << (b % 8), or the default when bit 7 is set
 *   2     fill percent: b % 101 when b <= 200 (0 = default), else b itself (invalid)
 *   3     bit 0: virtual_blocks = end + slack; bit 1: virtual_blocks = slack (may be too small);
 *         bit 2: disk_blocks = highest physical end + slack; bit 3: disk_blocks = slack;
 *         bits 4..7: the record list is repeated 2^k times (continuing upwards)
 *   4..5  slack; 6..7 generation
 *   then 8-byte records, one extent each:
 *   +0    bits 0..5 gap shift, bit 6 unwritten, bit 7 "raw" (step back: overlap / unsorted)
 *   +1    bits 0..5 length shift, bits 6..7 physical mode (0 after the previous extent, 1 and 3
 *         from the mantissa, 2 near 2^48)
 *   +2    gap mantissa (16 bits): gap = mantissa << shift (shifts above 48 count as 48)
 *   +4    length mantissa: len = mantissa << shift (0 is an invalid extent)
 *   +6    physical mantissa
 * tests/fuzz/make_corpus.c writes seeds in this layout.
 */
#include "fuzz_util.h"

#define MAX_EXTENTS 16384u
#define MAX_TABLE_BYTES (4u << 20)
#define FULL_PROBE 2048u	/* up to this many extents every boundary is probed */

struct input {
	struct maptbl_extent *e;
	size_t n;
	struct maptbl_build_opts o;
};

static uint32_t shift_of(uint8_t b)
{
	b &= 0x3f;
	return b > 48 ? 48 : b;
}

static void decode(const uint8_t *d, size_t size, struct input *in)
{
	size_t nrec = size > 8 ? (size - 8) / 8 : 0, reps, i, r;
	uint8_t flags = (uint8_t)fz_get(d, size, 3, 1);
	uint64_t lblk = 0, pend = 0, end = 0, pmax = 0, slack = fz_get(d, size, 4, 2);
	uint32_t cap_w, per_leaf;

	FZ_CHECK(maptbl_build_opts_init(&in->o, sizeof(in->o)) == 0, "opts init");
	in->o.node_size = 256u << (fz_get(d, size, 0, 1) % 9);
	in->o.block_size = fz_get(d, size, 1, 1) & 0x80 ? 0 : 512u << (fz_get(d, size, 1, 1) % 8);
	in->o.fill_pct = (uint32_t)fz_get(d, size, 2, 1);
	if (in->o.fill_pct <= 200)
		in->o.fill_pct %= 101;
	in->o.generation = (uint32_t)fz_get(d, size, 6, 2);

	/* Keep one run small: at most MAX_EXTENTS extents and about MAX_TABLE_BYTES of table. */
	reps = (size_t)1 << (flags >> 4);
	cap_w = maptbl_node_capacity(in->o.node_size, MAPTBL_NODE_LEAF_WIDE);
	per_leaf = in->o.fill_pct && in->o.fill_pct <= 100 ? cap_w * in->o.fill_pct / 100 : cap_w;
	per_leaf = per_leaf ? per_leaf : 1;
	in->n = nrec * reps;
	if (in->n > MAX_EXTENTS)
		in->n = MAX_EXTENTS;
	if ((uint64_t)(in->n / per_leaf + 2) * in->o.node_size > MAX_TABLE_BYTES)
		in->n = (size_t)(MAX_TABLE_BYTES / in->o.node_size - 2) * per_leaf;
	in->e = calloc(in->n ? in->n : 1, sizeof(*in->e));
	FZ_CHECK(in->e != NULL, "out of memory");

	for (i = 0, r = 0; i < in->n; i++, r = (r + 1) % nrec) {
		const uint8_t *p = d + 8 + r * 8;
		struct maptbl_extent *e = &in->e[i];
		uint64_t gap = (uint64_t)(p[2] | p[3] << 8) << shift_of(p[0]);
		uint64_t pm = (uint64_t)(p[6] | p[7] << 8);

		e->len = (uint64_t)(p[4] | p[5] << 8) << shift_of(p[1]);
		e->lblk = p[0] & 0x80 ? lblk - gap : lblk + gap;
		e->flags = p[0] & 0x40 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		switch (p[1] >> 6) {
		case 0:
			e->pblk = pend + pm;
			break;
		case 1:
			e->pblk = pm << 16 | pm;
			break;
		case 2:
			e->pblk = MAPTBL_MAX_BLK - e->len - pm;
			break;
		default:
			e->pblk = pm << 32;
			break;
		}
		lblk = e->lblk + e->len;
		pend = e->pblk + e->len;
		if (lblk > end)
			end = lblk;
		if (pend > pmax && pend <= MAPTBL_MAX_BLK)
			pmax = pend;
	}
	if (flags & 1)
		in->o.virtual_blocks = end + slack;
	else if (flags & 2)
		in->o.virtual_blocks = slack;
	if (flags & 4)
		in->o.disk_blocks = pmax + slack;
	else if (flags & 8)
		in->o.disk_blocks = slack;
}

/* The flat oracle: the input extents are sorted and disjoint when the build succeeded. */
static void oracle(const struct input *in, uint64_t vb, uint64_t lblk, struct maptbl_mapping *m)
{
	size_t lo = 0, hi = in->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (in->e[mid].lblk + in->e[mid].len <= lblk)
			lo = mid + 1;
		else
			hi = mid;
	}
	m->pblk = 0;
	if (lo == in->n || in->e[lo].lblk > lblk) {
		m->state = MAPTBL_MAP_HOLE;
		m->len = (lo == in->n ? vb : in->e[lo].lblk) - lblk;
	} else {
		const struct maptbl_extent *e = &in->e[lo];

		m->state = e->flags & MAPTBL_EXTENT_UNWRITTEN ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED;
		m->pblk = e->pblk + (lblk - e->lblk);
		m->len = e->lblk + e->len - lblk;
	}
}

struct ctx {
	const struct input *in;
	const struct maptbl_table *t, *reopened;
	struct maptbl_walker *w, *wc; /* walkers without and with CRC checks */
	uint32_t depth;
	uint64_t probes;
	size_t next; /* iteration: index of the next expected extent */
};

static void probe(struct ctx *c, uint64_t lblk)
{
	uint64_t vb = maptbl_table_virtual_blocks(c->t);
	struct maptbl_mapping m, o, r;

	fz_compare(c->t, c->w, lblk);
	/* The CRC walker recomputes a node checksum per level: every 16th probe is enough. */
	if (c->probes++ % 16 == 0)
		fz_compare(c->t, c->wc, lblk);
	if (lblk >= vb)
		return;
	FZ_CHECK(maptbl_table_lookup(c->t, lblk, &m) == 0, "lookup %" PRIu64, lblk);
	oracle(c->in, vb, lblk, &o);
	FZ_CHECK(m.state == o.state && m.pblk == o.pblk && m.len == o.len,
		 "block %" PRIu64 ": table says state %u pblk %" PRIu64 " len %" PRIu64
		 ", the extents say state %u pblk %" PRIu64 " len %" PRIu64,
		 lblk, m.state, m.pblk, m.len, o.state, o.pblk, o.len);
	/* The builder writes uniform depth: a mapping is found at the bottom. */
	FZ_CHECK(m.nodes <= c->depth && (m.state == MAPTBL_MAP_HOLE || m.nodes == c->depth),
		 "block %" PRIu64 ": %u nodes in a tree of depth %u", lblk, m.nodes, c->depth);
	FZ_CHECK(maptbl_table_lookup(c->reopened, lblk, &r) == 0 && r.state == m.state &&
			 r.pblk == m.pblk && r.len == m.len && r.nodes == m.nodes,
		 "block %" PRIu64 ": the reopened table answers differently", lblk);
}

static int expect_next(void *vc, const struct maptbl_extent *e)
{
	struct ctx *c = vc;
	const struct maptbl_extent *x;

	FZ_CHECK(c->next < c->in->n, "iteration gives more than %zu extents", c->in->n);
	x = &c->in->e[c->next++];
	FZ_CHECK(e->lblk == x->lblk && e->pblk == x->pblk && e->len == x->len &&
			 e->flags == x->flags && e->reserved == 0,
		 "extent %zu iterates as [%" PRIu64 " %" PRIu64 " %" PRIu64 " 0x%x]", c->next - 1,
		 e->lblk, e->pblk, e->len, e->flags);
	return 0;
}

static void check_built(struct input *in, const uint8_t *d, size_t size, struct maptbl_table *t)
{
	struct maptbl_stats st, st2;
	struct maptbl_table *re = NULL, *again = NULL;
	struct maptbl_walker w, wc;
	struct fz_mem mem, mem_c;
	static uint8_t *scratch_c;
	struct ctx c;
	uint64_t vb = maptbl_table_virtual_blocks(t);
	size_t i, stride;
	int err;

	err = maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), NULL, &re);
	FZ_CHECK(err == 0, "a built table does not open: %d", err);
	FZ_CHECK(maptbl_table_stats(t, &st, sizeof(st)) == 0 &&
			 maptbl_table_stats(re, &st2, sizeof(st2)) == 0 && !memcmp(&st, &st2, sizeof(st)),
		 "statistics of the built and the reopened table differ");
	FZ_CHECK(st.nr_extents == in->n && st.nr_absent == 0 &&
			 st.table_bytes == maptbl_table_len(t),
		 "stats: %" PRIu64 " extents of %zu", st.nr_extents, in->n);
	FZ_CHECK(maptbl_table_node_size(t) == in->o.node_size &&
			 maptbl_table_generation(t) == in->o.generation &&
			 maptbl_table_disk_blocks(t) == in->o.disk_blocks &&
			 (!in->o.virtual_blocks || vb == in->o.virtual_blocks),
		 "the table does not carry the options");
	FZ_CHECK(!maptbl_table_readonly(t) && !maptbl_table_readonly(re), "read-only");
	FZ_CHECK(maptbl_table_features(t, 0) == (st.nr_wide_leaves ? MAPTBL_INCOMPAT_WIDE_LEAF : 0),
		 "incompat 0x%" PRIx64 " with %" PRIu64 " wide leaves", maptbl_table_features(t, 0),
		 st.nr_wide_leaves);

	memset(&mem, 0, sizeof(mem));
	mem.p = maptbl_table_data(t);
	mem.n = maptbl_table_len(t);
	mem_c = mem;
	if (!scratch_c) {
		scratch_c = malloc(FZ_SCRATCH_LEN);
		FZ_CHECK(scratch_c != NULL, "out of memory");
	}
	FZ_CHECK(maptbl_walk_init(&w, fz_read, &mem, fz_scratch(), FZ_SCRATCH_LEN, 0) ==
			 MAPTBL_WALK_OK,
		 "the walker refuses a built table");
	FZ_CHECK(maptbl_walk_init(&wc, fz_read, &mem_c, scratch_c, FZ_SCRATCH_LEN,
				  MAPTBL_WALK_CHECK_CRC) == MAPTBL_WALK_OK,
		 "the CRC-checking walker refuses a built table");
	mem.limit = w.table_len;
	mem_c.limit = wc.table_len;

	c.in = in;
	c.t = t;
	c.reopened = re;
	c.w = &w;
	c.wc = &wc;
	c.probes = 0;
	c.depth = st.depth;
	c.next = 0;
	FZ_CHECK(maptbl_table_iterate(t, expect_next, &c) == 0 && c.next == in->n,
		 "iteration gave %zu of %zu extents", c.next, in->n);

	stride = in->n <= FULL_PROBE ? 1 : in->n / FULL_PROBE;
	for (i = 0; i < in->n; i += stride) {
		const struct maptbl_extent *e = &in->e[i];

		probe(&c, e->lblk);
		probe(&c, e->lblk + e->len - 1);
		probe(&c, e->lblk + e->len);
		if (e->lblk)
			probe(&c, e->lblk - 1);
		if (e->len > 2)
			probe(&c, e->lblk + e->len / 2);
	}
	for (i = 0; i + 8 <= size && i < 2048; i += 8) {
		uint64_t x = fz_get(d, size, i, 8);

		probe(&c, vb ? x % vb : x);
	}
	probe(&c, 0);
	if (vb)
		probe(&c, vb - 1);
	probe(&c, vb);

	if (in->n <= FULL_PROBE) {
		FZ_CHECK(maptbl_table_build(in->e, in->n, &in->o, &again) == 0 &&
				 maptbl_table_len(again) == maptbl_table_len(t) &&
				 !memcmp(maptbl_table_data(again), maptbl_table_data(t),
					 maptbl_table_len(t)),
			 "building twice gives different tables");
		maptbl_table_free(again);
	}
	maptbl_table_free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maptbl_table *t = NULL;
	struct maptbl_diag diag;
	struct input in;
	int err, cerr;

	if (size < 8)
		return 0;
	decode(data, size, &in);
	in.o.diag = &diag;
	err = maptbl_table_build(in.e, in.n, &in.o, &t);
	cerr = maptbl_extents_check(in.e, in.n, &in.o);
	FZ_CHECK(err == 0 || err == -EBADMSG || err == -EINVAL || err == -E2BIG,
		 "build failed with %d", err);
	if (err == -EBADMSG || err == -EINVAL || err == 0)
		FZ_CHECK(cerr == err, "build gives %d, maptbl_extents_check %d", err, cerr);
	if (err) {
		FZ_CHECK(t == NULL, "a failed build returned a table");
		FZ_CHECK(diag.reason[0], "build failed (%d) without a reason", err);
		if (err == -EBADMSG)
			FZ_CHECK(diag.index >= 0 && (size_t)diag.index < in.n,
				 "bad extent index %" PRId64 " of %zu", diag.index, in.n);
	} else {
		check_built(&in, data, size, t);
		maptbl_table_free(t);
	}
	free(in.e);
	return 0;
}
