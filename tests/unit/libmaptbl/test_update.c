/* SPDX-License-Identifier: MIT */
/*
 * test_update.c - table updates (update.c, FORMAT.md §12).
 *
 *  - model: thousands of random updates of every kind (insert with merges, convert, punch, grow,
 *    mark and unmark absent, staged batches, bad requests) on tables of several node sizes, with
 *    and without wide leaves. After each one, every boundary block of an oracle interval map
 *    and random blocks must agree among the oracle, maptbl_table_lookup(),
 *    maptbl_table_lookup_many(), the reference walker reading the buffer through its
 *    callback and (when built with it) the device model's walker and caches; failed updates must leave the table unchanged; every few updates the buffer must
 *    pass maptbl_table_open() with the same statistics. Compaction runs whenever the room runs
 *    out and now and then on purpose.
 *  - stress: a walker thread looks blocks up continuously through the reference walker while the
 *    main thread updates and publishes; each answer must be exactly the state of the generation
 *    the walker loaded (versioned oracles), never a torn mix. About 5 s.
 *  - bad input: precise -errno and an unchanged table.
 *
 * $MAPTBL_SEED picks the seed.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"

/*
 * The device model (hw-iface/device) as the fourth reader: when the build has it, check_points()
 * also looks every point up through the model's own walker over the same buffer, programmed
 * through its registers as a driver would (tests/unit/device/update_device.c), and holds it to the
 * reference walker's answer. Returns 0 on success.
 */
typedef int (*device_lookup_fn)(const uint8_t *buf, size_t len, uint64_t lblk,
				struct maptbl_walk_result *r);
#ifdef MAPTBL_TEST_DEVICE
#include "update_device.h"
static device_lookup_fn device_lookup_hook = update_device_lookup;
#define device_last_error update_device_last_error
#else
#define device_last_error() ""

static device_lookup_fn device_lookup_hook = NULL;
#endif

static uint8_t scratch[65536];

/* ---------------- the oracle: an interval map covering [0, vb) ---------------- */

struct seg {
	uint64_t start, len, pblk;
	uint32_t state; /* enum maptbl_map_state */
};

struct oracle {
	struct seg *v;
	size_t n, cap;
	uint64_t vb;
};

static void or_push(struct oracle *o, const struct seg *s)
{
	if (o->n && o->v[o->n - 1].state == s->state &&
	    o->v[o->n - 1].start + o->v[o->n - 1].len == s->start &&
	    (s->state == MAPTBL_MAP_HOLE || s->state == MAPTBL_MAP_ABSENT ||
	     o->v[o->n - 1].pblk + o->v[o->n - 1].len == s->pblk)) {
		o->v[o->n - 1].len += s->len;
		return;
	}
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->v = realloc(o->v, o->cap * sizeof(*o->v));
		assert_non_null(o->v);
	}
	o->v[o->n++] = *s;
}

static void or_init(struct oracle *o, uint64_t vb)
{
	struct seg s = { 0, vb, 0, MAPTBL_MAP_HOLE };

	memset(o, 0, sizeof(*o));
	o->vb = vb;
	or_push(o, &s);
}

static void or_copy(struct oracle *dst, const struct oracle *src)
{
	free(dst->v);
	*dst = *src;
	dst->cap = src->n;
	dst->v = malloc(src->n * sizeof(*dst->v));
	assert_non_null(dst->v);
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
}

static size_t or_find(const struct oracle *o, uint64_t l)
{
	size_t lo = 0, hi = o->n;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (o->v[mid].start <= l)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Blocks [a, b) become @state (pblk for the first block). */
static void or_set(struct oracle *o, uint64_t a, uint64_t b, uint32_t state, uint64_t pblk)
{
	struct oracle n;
	size_t i;

	memset(&n, 0, sizeof(n));
	n.vb = o->vb;
	for (i = 0; i < o->n; i++) {
		struct seg s = o->v[i], p;
		uint64_t e = s.start + s.len;

		if (e <= a || s.start >= b) {
			if (s.start >= b && (!n.n || n.v[n.n - 1].start + n.v[n.n - 1].len < b)) {
				struct seg x = { a, b - a, pblk, state };

				or_push(&n, &x);
			}
			or_push(&n, &s);
			continue;
		}
		if (s.start < a) {
			p = s;
			p.len = a - s.start;
			or_push(&n, &p);
		}
		if (!n.n || n.v[n.n - 1].start + n.v[n.n - 1].len < b) {
			struct seg x = { a, b - a, pblk, state };

			or_push(&n, &x);
		}
		if (e > b) {
			p = s;
			p.start = b;
			p.len = e - b;
			if (s.state == MAPTBL_MAP_MAPPED || s.state == MAPTBL_MAP_UNWRITTEN)
				p.pblk = s.pblk + (b - s.start);
			or_push(&n, &p);
		}
	}
	free(o->v);
	*o = n;
}

/* Unwritten blocks of [a, b) become mapped. */
static void or_convert(struct oracle *o, uint64_t a, uint64_t b)
{
	uint64_t l = a;

	while (l < b) {
		struct seg s = o->v[or_find(o, l)];
		uint64_t e = s.start + s.len < b ? s.start + s.len : b;

		if (s.state == MAPTBL_MAP_UNWRITTEN)
			or_set(o, l, e, MAPTBL_MAP_MAPPED, s.pblk + (l - s.start));
		l = e;
	}
}

static void or_grow(struct oracle *o, uint64_t vb)
{
	struct seg s = { o->vb, vb - o->vb, 0, MAPTBL_MAP_HOLE };

	or_push(o, &s);
	o->vb = vb;
}

/* First block of [a, b) whose state is not in @mask (bit per state), or b. */
static uint64_t or_first_not(const struct oracle *o, uint64_t a, uint64_t b, unsigned mask,
			     uint32_t *state)
{
	uint64_t l = a;

	while (l < b) {
		const struct seg *s = &o->v[or_find(o, l)];

		if (!(mask & (1u << s->state))) {
			*state = s->state;
			return l;
		}
		l = s->start + s->len;
	}
	return b;
}

/* ---------------- checks ---------------- */

struct ctx {
	struct maptbl_table *t;
	struct oracle o;
	struct rng r;
	uint32_t ns;
	uint64_t spare;
	bool no_grow; /* the stress walker keeps the size it read at setup (FORMAT.md §12) */
	unsigned ops, compactions, enospc, checks;
};

static void fail_at(const char *what, uint64_t l, const struct maptbl_mapping *m,
		    const struct seg *s)
{
	print_error("%s at block %llu: table state %u pblk %llu len %llu; oracle state %u "
		    "[%llu, +%llu) pblk %llu\n",
		    what, (unsigned long long)l, m->state, (unsigned long long)m->pblk,
		    (unsigned long long)m->len, s->state, (unsigned long long)s->start,
		    (unsigned long long)s->len, (unsigned long long)s->pblk);
	fail();
}

static void check_points(struct ctx *c, const struct oracle *o)
{
	const uint8_t *buf = maptbl_table_data(c->t);
	size_t len = maptbl_table_len(c->t), n = 0, i;
	uint64_t *pts = malloc((o->n * 3 + 32) * sizeof(*pts));
	struct maptbl_mapping *many;
	struct maptbl_walker w;
	struct membuf mb;

	assert_non_null(pts);
	assert_int_equal(maptbl_table_virtual_blocks(c->t), o->vb);
	for (i = 0; i < o->n; i++) {
		pts[n++] = o->v[i].start;
		pts[n++] = o->v[i].start + o->v[i].len - 1;
		if (o->v[i].start)
			pts[n++] = o->v[i].start - 1;
	}
	for (i = 0; i < 32; i++)
		pts[n++] = rng_below(&c->r, o->vb);
	many = malloc(n * sizeof(*many));
	assert_non_null(many);
	assert_int_equal(maptbl_table_lookup_many(c->t, pts, n, many), 0);
	membuf_init(&mb, buf, len);
	assert_int_equal(maptbl_walk_init(&w, membuf_read, &mb, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC),
			 MAPTBL_WALK_OK);
	for (i = 0; i < n; i++) {
		uint64_t l = pts[i];
		const struct seg *s = &o->v[or_find(o, l)];
		struct maptbl_mapping m;
		struct maptbl_walk_result r;
		uint64_t run = s->start + s->len - l;

		assert_int_equal(maptbl_table_lookup(c->t, l, &m), 0);
		assert_memory_equal(&m, &many[i], sizeof(m));
		assert_int_equal(maptbl_walk_lookup(&w, l, &r), MAPTBL_WALK_OK);
		if (r.state != m.state || r.pblk != m.pblk || r.len != m.len || r.nodes != m.nodes)
			fail_at("walker and lookup differ", l, &m, s);
		if (device_lookup_hook) {
			struct maptbl_walk_result d;

			int e = device_lookup_hook(buf, len, l, &d);

			if (e)
				fail_msg("device model: lookup of block %llu failed (%d): %s",
					 (unsigned long long)l, e, device_last_error());
			assert_int_equal(d.state, r.state);
			assert_int_equal(d.pblk, r.pblk);
			assert_int_equal(d.len, r.len);
		}
		if (m.state != s->state)
			fail_at("state differs from the oracle", l, &m, s);
		if ((s->state == MAPTBL_MAP_MAPPED || s->state == MAPTBL_MAP_UNWRITTEN) &&
		    m.pblk != s->pblk + (l - s->start))
			fail_at("pblk differs from the oracle", l, &m, s);
		/* Holes are maximal in the table; extents and absent ranges may be split. */
		if (s->state == MAPTBL_MAP_HOLE ? m.len != run : (m.len < 1 || m.len > run))
			fail_at("run length differs from the oracle", l, &m, s);
	}
	assert_int_equal(mb.oob, 0);
	c->checks += (unsigned)n;
	free(many);
	free(pts);
}

/* Stats kept by the updates equal those of a fresh open; the slot accounting adds up. */
static void check_reopen(struct ctx *c)
{
	struct maptbl_stats a, b;
	struct maptbl_table *t2 = NULL;
	struct maptbl_open_opts oo;
	struct maptbl_diag d;
	struct maptbl_space sp;
	int err;

	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.diag = &d;
	err = maptbl_table_open(maptbl_table_data(c->t), maptbl_table_len(c->t), &oo, &t2);
	if (err)
		print_error("reopen after %u updates: %s (offset %llu)\n", c->ops, d.reason,
			    (unsigned long long)d.offset);
	assert_int_equal(err, 0);
	assert_int_equal(maptbl_table_stats(c->t, &a, sizeof(a)), 0);
	assert_int_equal(maptbl_table_stats(t2, &b, sizeof(b)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(maptbl_table_generation(t2), maptbl_table_generation(c->t));
	maptbl_table_free(t2);
	assert_int_equal(maptbl_table_space(c->t, &sp, sizeof(sp)), 0);
	assert_int_equal(sp.tree_nodes, a.nr_nodes);
	assert_int_equal(sp.tree_nodes + sp.free_nodes + sp.retired_nodes + sp.pending_nodes,
			 sp.slots - 1);
}

/* ---------------- the model test ---------------- */

static void compact(struct ctx *c, uint64_t extra)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t2 = NULL;
	uint32_t gen = maptbl_table_generation(c->t);

	maptbl_build_opts_init(&o, sizeof(o));
	o.fill_pct = (uint32_t)rng_range(&c->r, 60, 100);
	o.spare_nodes = c->spare + extra;
	assert_int_equal(maptbl_table_compact(c->t, &o, &t2), 0);
	assert_int_equal(maptbl_table_generation(t2), gen + 1);
	maptbl_table_free(c->t);
	c->t = t2;
	c->compactions++;
}

/* A random sub-range of [a, b), mostly short. */
static void sub_range(struct rng *r, uint64_t a, uint64_t b, uint64_t *l, uint64_t *n)
{
	uint64_t max = b - a;

	*n = rng_below(r, 20) ? rng_range(r, 1, max < 64 ? max : 64) : rng_range(r, 1, max);
	*l = a + rng_below(r, max - *n + 1);
}

/* A random range of the virtual disk, mostly short. */
static void any_range(struct ctx *c, uint64_t *l, uint64_t *n)
{
	sub_range(&c->r, 0, c->o.vb, l, n);
}

/*
 * Runs one update through @fn, retrying after a compaction when the room ran out (the table
 * must be unchanged after -ENOSPC). Returns what the update returned.
 */
enum op { OP_INSERT, OP_CONVERT, OP_PUNCH, OP_MARK, OP_UNMARK, OP_GROW };

struct req {
	enum op op;
	uint64_t l, n, p, vb;
	uint32_t flags;
	const struct maptbl_extent *ext;
	size_t next;
};

static int do_req(struct ctx *c, const struct req *q, uint32_t uflags)
{
	struct maptbl_extent e = { .lblk = q->l, .pblk = q->p, .len = q->n, .flags = q->flags };
	int err;

	switch (q->op) {
	case OP_INSERT:
		err = maptbl_table_insert(c->t, &e, uflags);
		break;
	case OP_CONVERT:
		err = maptbl_table_convert(c->t, q->l, q->n, uflags);
		break;
	case OP_PUNCH:
		err = maptbl_table_punch(c->t, q->l, q->n, uflags);
		break;
	case OP_MARK:
		err = maptbl_table_mark_absent(c->t, q->l, q->n, uflags);
		break;
	case OP_UNMARK:
		err = maptbl_table_unmark_absent(c->t, q->l, q->n, q->ext, q->next, uflags);
		break;
	default:
		err = maptbl_table_grow(c->t, q->vb, uflags);
		break;
	}
	return err;
}

static int run_req(struct ctx *c, const struct req *q, uint32_t uflags)
{
	int err = do_req(c, q, uflags);

	if (err == -ENOSPC) {
		c->enospc++;
		if (!(uflags & MAPTBL_UPDATE_STAGE))
			check_points(c, &c->o); /* unchanged */
		compact(c, 32); /* room for any one update of this test */
		err = do_req(c, q, uflags);
		assert_int_not_equal(err, -ENOSPC);
	}
	return err;
}

/* One random update on the oracle @o and the table; returns the update's result. */
static void random_update(struct ctx *c, struct oracle *o, uint32_t uflags)
{
	struct maptbl_extent ext[6];
	struct req q = { 0 };
	uint32_t st = 0, gen = maptbl_table_generation(c->t);
	uint64_t bad;
	int want = 0, err, k = (int)rng_below(&c->r, 100);
	size_t i;

	if (k < 40) { /* insert into a hole, often continuing a neighbour on the disk */
		const struct seg *s = &o->v[rng_below(&c->r, o->n)];

		q.op = OP_INSERT;
		q.flags = rng_below(&c->r, 3) ? 0 : MAPTBL_EXTENT_UNWRITTEN;
		q.p = rng_range(&c->r, 1, (uint64_t)1 << 40);
		if (s->state != MAPTBL_MAP_HOLE || rng_below(&c->r, 10) == 0) {
			any_range(c, &q.l, &q.n); /* anywhere: may overlap */
		} else {
			sub_range(&c->r, s->start, s->start + s->len, &q.l, &q.n);
			if (rng_below(&c->r, 2) && s->start) { /* continue the left neighbour */
				const struct seg *lf = &o->v[or_find(o, s->start - 1)];

				q.l = s->start;
				if (lf->state == MAPTBL_MAP_MAPPED || lf->state == MAPTBL_MAP_UNWRITTEN) {
					q.p = lf->pblk + lf->len;
					q.flags = lf->state == MAPTBL_MAP_UNWRITTEN
							  ? MAPTBL_EXTENT_UNWRITTEN : 0;
				}
			}
		}
		bad = or_first_not(o, q.l, q.l + q.n, 1u << MAPTBL_MAP_HOLE, &st);
		if (bad < q.l + q.n)
			want = st == MAPTBL_MAP_ABSENT ? -ENXIO : -EEXIST;
	} else if (k < 55) { /* convert */
		const struct seg *s = &o->v[rng_below(&c->r, o->n)];

		q.op = OP_CONVERT;
		if (rng_below(&c->r, 8))
			sub_range(&c->r, s->start, s->start + s->len, &q.l, &q.n);
		else
			any_range(c, &q.l, &q.n);
		bad = or_first_not(o, q.l, q.l + q.n,
				   1u << MAPTBL_MAP_MAPPED | 1u << MAPTBL_MAP_UNWRITTEN, &st);
		if (bad < q.l + q.n)
			want = st == MAPTBL_MAP_ABSENT ? -ENXIO : -ENOENT;
	} else if (k < 70) { /* punch */
		q.op = OP_PUNCH;
		any_range(c, &q.l, &q.n);
		bad = or_first_not(o, q.l, q.l + q.n, 0xF & ~(1u << MAPTBL_MAP_ABSENT), &st);
		if (bad < q.l + q.n)
			want = -ENXIO;
	} else if (k < 78) { /* mark absent */
		q.op = OP_MARK;
		any_range(c, &q.l, &q.n);
	} else if (k < 88) { /* unmark absent, with some extents */
		const struct seg *s = &o->v[rng_below(&c->r, o->n)];
		uint64_t at;

		q.op = OP_UNMARK;
		if (s->state == MAPTBL_MAP_ABSENT && rng_below(&c->r, 6)) {
			q.l = s->start;
			q.n = s->len;
			if (rng_below(&c->r, 3) == 0)
				sub_range(&c->r, s->start, s->start + s->len, &q.l, &q.n);
		} else {
			any_range(c, &q.l, &q.n);
		}
		at = q.l;
		for (i = 0; i < 6 && at < q.l + q.n && rng_below(&c->r, 4); i++) {
			uint64_t gap = rng_below(&c->r, 3), len;

			if (at + gap >= q.l + q.n)
				break;
			at += gap;
			len = rng_range(&c->r, 1, q.l + q.n - at < 40 ? q.l + q.n - at : 40);
			ext[i].lblk = at;
			ext[i].len = len;
			ext[i].pblk = rng_range(&c->r, 1, (uint64_t)1 << 40);
			ext[i].flags = rng_below(&c->r, 4) ? 0 : MAPTBL_EXTENT_UNWRITTEN;
			ext[i].reserved = 0;
			at += len;
		}
		q.ext = ext;
		q.next = i;
		bad = or_first_not(o, q.l, q.l + q.n, 1u << MAPTBL_MAP_ABSENT, &st);
		if (bad < q.l + q.n)
			want = -ENOENT;
	} else if (k < 90 && c->no_grow) {
		q.op = OP_PUNCH;
		any_range(c, &q.l, &q.n);
		bad = or_first_not(o, q.l, q.l + q.n, 0xF & ~(1u << MAPTBL_MAP_ABSENT), &st);
		if (bad < q.l + q.n)
			want = -ENXIO;
	} else if (k < 90) { /* grow */
		q.op = OP_GROW;
		q.vb = o->vb + rng_below(&c->r, 5000);
		if (q.vb > MAX_BLK)
			q.vb = o->vb;
	} else if (k < 95) { /* a long insert into a big hole (split or wide) */
		uint64_t hs = 0, hl = 0;

		for (i = 0; i < o->n; i++)
			if (o->v[i].state == MAPTBL_MAP_HOLE && o->v[i].len > hl) {
				hs = o->v[i].start;
				hl = o->v[i].len;
			}
		q.op = OP_INSERT;
		q.l = hs;
		q.n = hl > 70000 ? 70000 : hl;
		q.p = rng_range(&c->r, 1, (uint64_t)1 << 40);
		if (!hl)
			want = -EINVAL;
	} else { /* bad requests: length 0, past the end */
		q.op = (enum op)rng_below(&c->r, 4);
		q.l = rng_below(&c->r, o->vb);
		q.n = 0;
		want = -EINVAL;
		if (rng_below(&c->r, 2)) {
			q.l = o->vb - rng_below(&c->r, 3) - 1;
			q.n = 5;
			want = -ERANGE;
		}
	}

	err = run_req(c, &q, uflags);
	c->ops++;
	if (err != want) {
		print_error("update %u (op %d, [%llu, +%llu) pblk %llu flags %u, %zu extents): got %d, want %d\n",
			    c->ops, (int)q.op, (unsigned long long)q.l, (unsigned long long)q.n,
			    (unsigned long long)q.p, q.flags, q.next, err, want);
		fail();
	}
	if (err) {
		assert_int_equal(maptbl_table_generation(c->t), gen);
		return;
	}
	switch (q.op) {
	case OP_INSERT:
		or_set(o, q.l, q.l + q.n,
		       q.flags ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED, q.p);
		break;
	case OP_CONVERT:
		or_convert(o, q.l, q.l + q.n);
		break;
	case OP_PUNCH:
		or_set(o, q.l, q.l + q.n, MAPTBL_MAP_HOLE, 0);
		break;
	case OP_MARK:
		or_set(o, q.l, q.l + q.n, MAPTBL_MAP_ABSENT, 0);
		break;
	case OP_UNMARK:
		or_set(o, q.l, q.l + q.n, MAPTBL_MAP_HOLE, 0);
		for (i = 0; i < q.next; i++)
			or_set(o, ext[i].lblk, ext[i].lblk + ext[i].len,
			       ext[i].flags ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED, ext[i].pblk);
		break;
	default:
		or_grow(o, q.vb);
		break;
	}
}

static void model_run(uint32_t ns, bool wide, unsigned nops, uint64_t seed)
{
	struct maptbl_build_opts bo;
	struct maptbl_extent *e = malloc(300 * sizeof(*e));
	struct ctx c;
	uint64_t l = 0;
	size_t i, n = 0;

	assert_non_null(e);
	memset(&c, 0, sizeof(c));
	rng_seed(&c.r, seed);
	c.ns = ns;
	c.spare = ns >= 4096 ? 2 : 6;
	for (i = 0; i < 300; i++) {
		l += rng_below(&c.r, 3) ? rng_range(&c.r, 0, 200) : 0;
		e[n].lblk = l;
		e[n].len = wide && i == 150 ? 40000 : rng_range(&c.r, 1, 60);
		e[n].pblk = rng_range(&c.r, 1, (uint64_t)1 << 40);
		e[n].flags = rng_below(&c.r, 5) ? 0 : MAPTBL_EXTENT_UNWRITTEN;
		e[n].reserved = 0;
		l += e[n].len;
		n++;
	}
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.node_size = ns;
	bo.fill_pct = (uint32_t)rng_range(&c.r, 70, 100);
	bo.spare_nodes = c.spare;
	bo.virtual_blocks = l + 100000;
	assert_int_equal(maptbl_table_build(e, n, &bo, &c.t), 0);
	assert_int_equal(!!(maptbl_table_features(c.t, 0) & MAPTBL_INCOMPAT_WIDE_LEAF), wide);
	or_init(&c.o, bo.virtual_blocks);
	for (i = 0; i < n; i++)
		or_set(&c.o, e[i].lblk, e[i].lblk + e[i].len,
		       e[i].flags ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED, e[i].pblk);
	free(e);
	check_points(&c, &c.o);

	while (c.ops < nops) {
		if (rng_below(&c.r, 10) == 0) {
			/* A staged batch: invisible until published, then all at once. */
			struct oracle pend;
			uint32_t gen = maptbl_table_generation(c.t);
			unsigned k, nb = (unsigned)rng_range(&c.r, 2, 8);

			bool compacted = false;

			memset(&pend, 0, sizeof(pend));
			or_copy(&pend, &c.o);
			for (k = 0; k < nb; k++) {
				struct maptbl_table *before = c.t;

				random_update(&c, &pend, MAPTBL_UPDATE_STAGE);
				if (c.t == before) { /* the published tree is unchanged */
					assert_int_equal(maptbl_table_generation(c.t), gen);
				} else { /* a compaction published what was staged */
					compacted = true;
					gen = maptbl_table_generation(c.t);
				}
			}
			if (!compacted)
				check_points(&c, &c.o);
			assert_int_equal(maptbl_table_publish(c.t), 0);
			or_copy(&c.o, &pend);
			free(pend.v);
		} else {
			random_update(&c, &c.o, 0);
		}
		/* No concurrent walker here: everything retired may be reused at once. */
		assert_true(maptbl_table_reclaim(c.t, maptbl_table_generation(c.t)) >= 0);
		check_points(&c, &c.o);
		if (c.ops % 16 == 0)
			check_reopen(&c);
		if (rng_below(&c.r, 500) == 0)
			compact(&c, 0);
	}
	check_reopen(&c);
	print_message("node size %u%s: %u updates, %u compactions (%u on ENOSPC), %u points, "
		      "%zu oracle segments, %llu extents\n",
		      ns, wide ? " wide" : "", c.ops, c.compactions, c.enospc, c.checks, c.o.n,
		      (unsigned long long)maptbl_table_nr_extents(c.t));
	assert_true(c.enospc > 0 || ns >= 4096);
	maptbl_table_free(c.t);
	free(c.o.v);
}

static void test_model(void **state)
{
	static const uint32_t sizes[] = { 256, 512, 4096 };
	uint64_t seed = test_seed(0x5eed7);
	size_t i;

	(void)state;
	print_message("seed %llu (MAPTBL_SEED)\n", (unsigned long long)seed);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		model_run(sizes[i], false, 1200, seed + i);
		model_run(sizes[i], true, 500, seed + 100 + i);
	}
#ifdef MAPTBL_TEST_DEVICE
	/* The device took part, and through its caches as well as by walking. */
	print_message("device: %llu walks, %llu extent cache hits, %llu nodes fetched\n",
		      (unsigned long long)update_device_counter(MAPTBL_STAT_WALKS),
		      (unsigned long long)update_device_counter(MAPTBL_STAT_XC_HITS),
		      (unsigned long long)update_device_counter(MAPTBL_STAT_NODES));
	assert_true(update_device_counter(MAPTBL_STAT_WALKS) > 1000);
	assert_true(update_device_counter(MAPTBL_STAT_XC_HITS) > 0);
	update_device_fini();
#endif
}

/* ---------------- concurrency stress ---------------- */

#define S_VB 4096u     /* virtual blocks */
#define S_NV 64u       /* versions of the oracle kept, by generation modulo S_NV */
#define S_NONE UINT64_MAX

struct sblock {
	uint64_t pblk;
	uint32_t state, pad;
};

struct stress {
	uint8_t *buf; /* the shared table buffer */
	size_t len;
	struct sblock (*ver)[S_VB]; /* ver[gen % S_NV][lblk] */
	_Atomic uint64_t ann;	    /* walker: a lower bound of the generation it reads, or NONE */
	_Atomic int stop;
	/* results of the walker thread */
	unsigned long long lookups, bad, max_lag;
	char first_bad[256];
};

/* The walker's DMA: the live word with one 8-byte acquire load, the rest with memcpy. */
static int shared_read(void *ctx, uint64_t off, void *dst, uint32_t len)
{
	struct stress *s = ctx;
	uint8_t *d = dst;

	if (off > s->len || len > s->len - off)
		return -1;
	if (off < 24 && off + len > 16) {
		unsigned long long v = atomic_load_explicit(
			(_Atomic unsigned long long *)(void *)(s->buf + 16), memory_order_acquire);
		uint8_t live[8];
		uint64_t i;

		memcpy(live, &v, 8);
		for (i = off; i < off + len; i++)
			d[i - off] = i >= 16 && i < 24 ? live[i - 16] : s->buf[i];
		return 0;
	}
	memcpy(dst, s->buf + off, len);
	return 0;
}

static uint32_t live_gen(struct stress *s)
{
	unsigned long long v = atomic_load_explicit(
		(_Atomic unsigned long long *)(void *)(s->buf + 16), memory_order_seq_cst);
	uint8_t b[8];

	memcpy(b, &v, 8);
	return get_le32(b + 4);
}

static void *walker_thread(void *arg)
{
	struct stress *s = arg;
	struct maptbl_walker w;
	uint8_t *scr = malloc(65536);
	struct rng r;

	rng_seed(&r, 77);
	if (!scr || maptbl_walk_init(&w, shared_read, s, scr, 65536, MAPTBL_WALK_CHECK_CRC)) {
		s->bad++;
		snprintf(s->first_bad, sizeof(s->first_bad), "walker setup failed");
		free(scr);
		return NULL;
	}
	while (!atomic_load(&s->stop)) {
		uint32_t g = live_gen(s), used;
		uint64_t l = rng_below(&r, S_VB), run = 0, k;
		struct maptbl_walk_result res;
		enum maptbl_walk_status st;
		const struct sblock *v;

		/* Announce, then walk: the updater frees nothing this walk may read (§12). */
		atomic_store(&s->ann, g);
		atomic_thread_fence(memory_order_seq_cst);
		st = maptbl_walk_lookup(&w, l, &res);
		used = w.generation;
		if (st == MAPTBL_WALK_OK) {
			v = s->ver[used % S_NV];
			for (k = l; k < S_VB && v[k].state == v[l].state &&
				    (v[l].state == MAPTBL_MAP_HOLE || v[l].state == MAPTBL_MAP_ABSENT ||
				     v[k].pblk == v[l].pblk + (k - l));
			     k++)
				run++;
			if (res.state != v[l].state ||
			    ((res.state == MAPTBL_MAP_MAPPED || res.state == MAPTBL_MAP_UNWRITTEN) &&
			     res.pblk != v[l].pblk) ||
			    (res.state == MAPTBL_MAP_HOLE ? res.len != run : res.len > run || !res.len))
				st = (enum maptbl_walk_status)100;
		}
		if ((uint32_t)(used - g) > s->max_lag)
			s->max_lag = (uint32_t)(used - g);
		atomic_store(&s->ann, S_NONE);
		s->lookups++;
		if (st != MAPTBL_WALK_OK) {
			if (!s->bad++)
				snprintf(s->first_bad, sizeof(s->first_bad),
					 "block %llu, generation %u: status %d, state %u pblk %llu len %llu",
					 (unsigned long long)l, used, (int)st, res.state,
					 (unsigned long long)res.pblk, (unsigned long long)res.len);
		}
	}
	free(scr);
	return NULL;
}

static void snapshot(struct stress *s, const struct oracle *o, uint32_t gen)
{
	struct sblock *v = s->ver[gen % S_NV];
	size_t i;

	for (i = 0; i < o->n; i++) {
		const struct seg *g = &o->v[i];
		uint64_t k;

		for (k = g->start; k < g->start + g->len && k < S_VB; k++) {
			v[k].state = g->state;
			v[k].pblk = g->pblk + (k - g->start);
		}
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_stress(void **state)
{
	struct maptbl_extent e[100];
	struct maptbl_build_opts bo;
	struct stress *s = calloc(1, sizeof(*s));
	struct ctx c;
	pthread_t th;
	double t0;
	unsigned publishes = 0;
	uint64_t l = 0;
	size_t i;

	(void)state;
	assert_non_null(s);
	memset(&c, 0, sizeof(c));
	c.no_grow = true;
	rng_seed(&c.r, test_seed(0x57e55));
	for (i = 0; i < 100; i++) {
		l += rng_range(&c.r, 0, 10);
		e[i].lblk = l;
		e[i].len = rng_range(&c.r, 1, 20);
		e[i].pblk = rng_range(&c.r, 1, (uint64_t)1 << 40);
		e[i].flags = rng_below(&c.r, 4) ? 0 : MAPTBL_EXTENT_UNWRITTEN;
		e[i].reserved = 0;
		l += e[i].len;
	}
	assert_true(l < S_VB);
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.node_size = 256;
	bo.fill_pct = 80;
	bo.virtual_blocks = S_VB;
	bo.spare_nodes = 4000;
	assert_int_equal(maptbl_table_build(e, 100, &bo, &c.t), 0);
	or_init(&c.o, S_VB);
	for (i = 0; i < 100; i++)
		or_set(&c.o, e[i].lblk, e[i].lblk + e[i].len,
		       e[i].flags ? MAPTBL_MAP_UNWRITTEN : MAPTBL_MAP_MAPPED, e[i].pblk);
	s->buf = (uint8_t *)maptbl_table_data(c.t);
	s->len = maptbl_table_len(c.t);
	s->ver = calloc(S_NV, sizeof(*s->ver));
	assert_non_null(s->ver);
	snapshot(s, &c.o, maptbl_table_generation(c.t));
	atomic_store(&s->ann, S_NONE);
	assert_int_equal(pthread_create(&th, NULL, walker_thread, s), 0);

	t0 = now_s();
	while (now_s() - t0 < 5.0) {
		struct maptbl_table *before = c.t;
		uint32_t gen = maptbl_table_generation(c.t);
		uint64_t a;
		int freed;

		/* Never overwrite the version a walker may still check. */
		while ((a = atomic_load(&s->ann)) != S_NONE && (uint32_t)(gen + 1 - (uint32_t)a) >= S_NV - 1)
			sched_yield();
		random_update(&c, &c.o, MAPTBL_UPDATE_STAGE);
		assert_ptr_equal(c.t, before); /* enough room: no compaction, one buffer */
		snapshot(s, &c.o, gen + 1);
		assert_int_equal(maptbl_table_publish(c.t), 0);
		if (maptbl_table_generation(c.t) == gen)
			continue; /* nothing changed (a refused request): version gen stays right */
		publishes++;
		/* Reclaim what no walker can read: see FORMAT.md §12. */
		atomic_thread_fence(memory_order_seq_cst);
		a = atomic_load(&s->ann);
		freed = maptbl_table_reclaim(c.t, a == S_NONE ? gen + 1 : (uint32_t)a);
		assert_true(freed >= 0);
	}
	atomic_store(&s->stop, 1);
	pthread_join(th, NULL);
	print_message("stress: %u publishes, %u updates, %llu concurrent walks (max generations "
		      "behind at the end of a walk: %llu), %llu bad\n",
		      publishes, c.ops, s->lookups, s->max_lag, s->bad);
	if (s->bad)
		print_error("first bad walk: %s\n", s->first_bad);
	assert_int_equal(s->bad, 0);
	assert_true(publishes > 100);
	assert_true(s->lookups > 1000);
	maptbl_table_free(c.t);
	free(c.o.v);
	free(s->ver);
	free(s);
}

/* ---------------- bad input, room, reclamation, compaction ---------------- */

struct fixture {
	struct maptbl_table *t;
	uint8_t *copy;
	size_t len;
	struct maptbl_space sp;
};

/*
 * 30 extents at 10 i, length 4 (i % 3 == 1 unwritten), pblk 1000 + 10 i; [500, 600) absent;
 * virtual disk 1000 blocks, disk 100000 blocks, 256-byte nodes.
 */
static void fx_make(struct fixture *f, uint64_t spare)
{
	struct maptbl_extent e[30];
	struct maptbl_build_opts o;
	size_t i;

	for (i = 0; i < 30; i++) {
		e[i].lblk = 10 * i;
		e[i].len = 4;
		e[i].pblk = 1000 + 10 * i;
		e[i].flags = i % 3 == 1 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		e[i].reserved = 0;
	}
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 256;
	o.virtual_blocks = 1000;
	o.disk_blocks = 100000;
	o.spare_nodes = spare;
	assert_int_equal(maptbl_table_build(e, 30, &o, &f->t), 0);
	if (spare)
		assert_int_equal(maptbl_table_mark_absent(f->t, 500, 100, 0), 0);
	f->len = maptbl_table_len(f->t);
	f->copy = malloc(f->len);
	assert_non_null(f->copy);
	memcpy(f->copy, maptbl_table_data(f->t), f->len);
	assert_int_equal(maptbl_table_space(f->t, &f->sp, sizeof(f->sp)), 0);
}

/* The buffer, byte for byte, and the slot accounting are as they were. */
static void fx_unchanged(struct fixture *f)
{
	struct maptbl_space sp;

	assert_memory_equal(maptbl_table_data(f->t), f->copy, f->len);
	assert_int_equal(maptbl_table_space(f->t, &sp, sizeof(sp)), 0);
	assert_memory_equal(&sp, &f->sp, sizeof(sp));
}

static void fx_free(struct fixture *f)
{
	maptbl_table_free(f->t);
	free(f->copy);
}

static void test_bad_input(void **state)
{
	struct maptbl_extent e = { .lblk = 5, .pblk = 50000, .len = 2 }, bad[2];
	struct maptbl_build_opts o;
	struct maptbl_table *t2 = (void *)1;
	struct fixture f;

	(void)state;
	fx_make(&f, 20);
	/* Arguments. */
	assert_int_equal(maptbl_table_insert(NULL, &e, 0), -EINVAL);
	assert_int_equal(maptbl_table_insert(f.t, NULL, 0), -EINVAL);
	assert_int_equal(maptbl_table_insert(f.t, &e, 0x80), -EINVAL);
	e.flags = 0x4;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -EINVAL);
	e.flags = 0;
	e.reserved = 1;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -EINVAL);
	e.reserved = 0;
	/* Zero length, for every operation. */
	e.len = 0;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -EINVAL);
	assert_int_equal(maptbl_table_convert(f.t, 10, 0, 0), -EINVAL);
	assert_int_equal(maptbl_table_punch(f.t, 10, 0, 0), -EINVAL);
	assert_int_equal(maptbl_table_mark_absent(f.t, 10, 0, 0), -EINVAL);
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 0, NULL, 0, 0), -EINVAL);
	/* Past the virtual disk, and wrapping around. */
	e.len = 2;
	e.lblk = 999;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ERANGE);
	e.lblk = 1000;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ERANGE);
	assert_int_equal(maptbl_table_convert(f.t, 998, 3, 0), -ERANGE);
	assert_int_equal(maptbl_table_punch(f.t, 5, UINT64_MAX, 0), -ERANGE);
	assert_int_equal(maptbl_table_mark_absent(f.t, UINT64_MAX, 2, 0), -ERANGE);
	/* Physical range past the disk's 100000 blocks or 2^48. */
	e.lblk = 5;
	e.pblk = 99999;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ERANGE);
	e.pblk = MAX_BLK - 1;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ERANGE);
	e.pblk = 50000;
	/* Overlaps: a written extent, an unwritten one, an absent range. */
	e.lblk = 3;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -EEXIST);
	e.lblk = 13;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -EEXIST);
	e.lblk = 599;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ENXIO);
	/* Convert over a hole and over an absent range; punch and mark cannot reach into it. */
	assert_int_equal(maptbl_table_convert(f.t, 10, 5, 0), -ENOENT);
	assert_int_equal(maptbl_table_convert(f.t, 4, 1, 0), -ENOENT);
	assert_int_equal(maptbl_table_convert(f.t, 590, 2, 0), -ENXIO);
	assert_int_equal(maptbl_table_punch(f.t, 450, 51, 0), -ENXIO);
	/* Unmark: not absent; a bad extent list (unsorted, outside, length 0, flags). */
	assert_int_equal(maptbl_table_unmark_absent(f.t, 499, 2, NULL, 0, 0), -ENOENT);
	bad[0] = (struct maptbl_extent){ .lblk = 520, .pblk = 1, .len = 5 };
	bad[1] = (struct maptbl_extent){ .lblk = 510, .pblk = 9, .len = 5 };
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 2, 0), -EINVAL);
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, NULL, 2, 0), -EINVAL);
	bad[1].lblk = 598;
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 2, 0), -EINVAL);
	bad[1].lblk = 530;
	bad[1].len = 0;
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 2, 0), -EINVAL);
	bad[1].len = 1;
	bad[1].flags = 8;
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 2, 0), -EINVAL);
	bad[1].flags = 0;
	bad[1].pblk = 100000;
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 2, 0), -ERANGE);
	/* Grow: smaller, beyond 2^48. */
	assert_int_equal(maptbl_table_grow(f.t, 999, 0), -EINVAL);
	assert_int_equal(maptbl_table_grow(f.t, MAX_BLK + 1, 0), -ERANGE);
	/* Compaction options that would change what the table is. */
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 512;
	assert_int_equal(maptbl_table_compact(f.t, &o, &t2), -EINVAL);
	assert_null(t2);
	o.node_size = 0;
	o.virtual_blocks = 10;
	assert_int_equal(maptbl_table_compact(f.t, &o, &t2), -EINVAL);
	o.virtual_blocks = 0;
	o.disk_path = "/dev/other";
	assert_int_equal(maptbl_table_compact(f.t, &o, &t2), -EINVAL);
	assert_int_equal(maptbl_table_compact(f.t, NULL, NULL), -EINVAL);
	/* None of it changed a byte; the same requests done right work. */
	fx_unchanged(&f);
	e.lblk = 5;
	e.len = 2;
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), 0);
	assert_int_equal(maptbl_table_convert(f.t, 10, 4, 0), 0);
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, bad, 1, 0), 0);
	assert_int_equal(maptbl_table_grow(f.t, 2000, 0), 0);
	assert_int_equal(maptbl_table_virtual_blocks(f.t), 2000);
	fx_free(&f);
}

/* A table with an unknown ro_compat bit may be read, never updated. */
static void test_readonly(void **state)
{
	struct maptbl_extent e = { .lblk = 5, .pblk = 50000, .len = 2 };
	struct maptbl_table *t = NULL, *t2 = NULL;
	struct fixture f;
	uint8_t *b;

	(void)state;
	fx_make(&f, 4);
	b = malloc(f.len);
	assert_non_null(b);
	memcpy(b, maptbl_table_data(f.t), f.len);
	put_le64(b + TW_RO_COMPAT, UINT64_C(1) << 40);
	tw_seal_header(b, f.len);
	assert_int_equal(maptbl_table_open(b, f.len, NULL, &t), 0);
	assert_true(maptbl_table_readonly(t));
	assert_int_equal(maptbl_table_insert(t, &e, 0), -EROFS);
	assert_int_equal(maptbl_table_punch(t, 0, 4, 0), -EROFS);
	assert_int_equal(maptbl_table_grow(t, 5000, 0), -EROFS);
	assert_int_equal(maptbl_table_compact(t, NULL, &t2), -EROFS);
	assert_memory_equal(maptbl_table_data(t), b, f.len);
	maptbl_table_free(t);
	free(b);
	fx_free(&f);
}

/* Walker reads through this: the live word it returns is frozen at one value. */
struct frozen {
	const uint8_t *buf;
	uint64_t len;
	uint8_t live[8];
};

static int frozen_read(void *ctx, uint64_t off, void *dst, uint32_t len)
{
	struct frozen *z = ctx;
	uint64_t i;

	if (off > z->len || len > z->len - off)
		return -1;
	for (i = off; i < off + len; i++)
		((uint8_t *)dst)[i - off] = i >= 16 && i < 24 ? z->live[i - 16] : z->buf[i];
	return 0;
}

/*
 * What a publish writes, and the reclamation rule: a walker that loaded the old live word keeps
 * reading a whole, valid old tree until the caller reclaims; the retired nodes wait for exactly
 * the generation that retired them.
 */
static void test_publish_and_reclaim(void **state)
{
	struct maptbl_extent e = { .lblk = 255, .pblk = 50000, .len = 2 };
	struct maptbl_walk_result r;
	struct maptbl_space a, b;
	struct maptbl_walker w;
	struct maptbl_stats st;
	struct frozen z;
	struct fixture f;
	uint32_t gen;

	(void)state;
	fx_make(&f, 20);
	assert_int_equal(maptbl_table_reclaim(f.t, maptbl_table_generation(f.t)), (int)f.sp.retired_nodes);
	assert_int_equal(maptbl_table_stats(f.t, &st, sizeof(st)), 0);
	assert_int_equal(maptbl_table_space(f.t, &a, sizeof(a)), 0);
	gen = maptbl_table_generation(f.t);
	z.buf = maptbl_table_data(f.t);
	z.len = maptbl_table_len(f.t);
	memcpy(z.live, z.buf + 16, 8);

	assert_int_equal(maptbl_table_insert(f.t, &e, 0), 0);
	assert_int_equal(maptbl_table_generation(f.t), gen + 1);
	assert_int_equal(maptbl_table_space(f.t, &b, sizeof(b)), 0);
	/* One path copied (leaf 2 has room): the nodes a walk to block 255 touches, the live word. */
	assert_int_equal(b.nodes_written - a.nodes_written, st.max_nodes_touched);
	assert_int_equal(b.bytes_written - a.bytes_written, st.max_nodes_touched * 256 + 8);
	assert_int_equal(b.publishes, a.publishes + 1);
	assert_int_equal(b.retired_nodes, st.max_nodes_touched);
	assert_int_equal(b.oldest_retired, gen + 1);

	/* A walk that began before the publish still sees the old tree, checksums and all. */
	assert_int_equal(maptbl_walk_init(&w, frozen_read, &z, scratch, sizeof(scratch),
					  MAPTBL_WALK_CHECK_CRC), MAPTBL_WALK_OK);
	assert_int_equal(maptbl_walk_lookup(&w, 255, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_HOLE);
	assert_int_equal(w.generation, gen);
	/* The live word says the new tree. */
	memcpy(z.live, z.buf + 16, 8);
	assert_int_equal(maptbl_walk_lookup(&w, 255, &r), MAPTBL_WALK_OK);
	assert_int_equal(r.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(r.pblk, 50000);

	/* Retired at gen + 1: a walker may still hold gen, so reclaim(gen) frees nothing. */
	assert_int_equal(maptbl_table_reclaim(f.t, gen), 0);
	assert_int_equal(maptbl_table_reclaim(f.t, gen + 1), (int)st.max_nodes_touched);
	assert_int_equal(maptbl_table_space(f.t, &b, sizeof(b)), 0);
	assert_int_equal(b.retired_nodes, 0);
	assert_int_equal(b.free_nodes, a.free_nodes);

	/* Staged changes: invisible, then one publish. */
	e.lblk = 257;
	e.pblk = 50002; /* continues [255, +2): merged */
	assert_int_equal(maptbl_table_insert(f.t, &e, MAPTBL_UPDATE_STAGE), 0);
	assert_int_equal(maptbl_table_punch(f.t, 20, 2, MAPTBL_UPDATE_STAGE), 0);
	assert_int_equal(maptbl_table_generation(f.t), gen + 1);
	assert_int_equal(maptbl_table_space(f.t, &b, sizeof(b)), 0);
	assert_true(b.pending_nodes > 0);
	{
		struct maptbl_mapping m;

		assert_int_equal(maptbl_table_lookup(f.t, 257, &m), 0);
		assert_int_equal(m.state, MAPTBL_MAP_HOLE);
		assert_int_equal(maptbl_table_publish(f.t), 0);
		assert_int_equal(maptbl_table_generation(f.t), gen + 2);
		assert_int_equal(maptbl_table_lookup(f.t, 255, &m), 0);
		assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
		assert_int_equal(m.len, 4); /* one merged extent */
		assert_int_equal(maptbl_table_lookup(f.t, 20, &m), 0);
		assert_int_equal(m.state, MAPTBL_MAP_HOLE);
		assert_int_equal(m.pblk, 0);
	}
	assert_int_equal(maptbl_table_publish(f.t), 0); /* nothing staged: nothing */
	assert_int_equal(maptbl_table_generation(f.t), gen + 2);
	fx_free(&f);
}

/* Out of room: -ENOSPC with nothing changed; compaction gives a table that takes the update. */
static void test_enospc_and_compact(void **state)
{
	struct maptbl_extent e = { .lblk = 5, .pblk = 50000, .len = 2 };
	struct maptbl_build_opts o;
	struct maptbl_table *t2 = NULL, *t3 = NULL;
	struct maptbl_mapping m;
	struct maptbl_stats s1, s2;
	struct fixture f;

	(void)state;
	fx_make(&f, 0);
	assert_int_equal(f.sp.free_nodes, 0);
	assert_int_equal(maptbl_table_insert(f.t, &e, 0), -ENOSPC);
	fx_unchanged(&f);
	maptbl_build_opts_init(&o, sizeof(o));
	o.spare_nodes = 10;
	o.fill_pct = 50;
	assert_int_equal(maptbl_table_compact(f.t, &o, &t2), 0);
	assert_int_equal(maptbl_table_generation(t2), maptbl_table_generation(f.t) + 1);
	assert_int_equal(maptbl_table_nr_extents(t2), maptbl_table_nr_extents(f.t));
	assert_int_equal(maptbl_table_disk_blocks(t2), 100000);
	assert_int_equal(maptbl_table_insert(t2, &e, 0), 0);
	assert_int_equal(maptbl_table_lookup(t2, 6, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(m.pblk, 50001);
	/* Absent ranges survive a compaction; the result passes open with the same stats. */
	assert_int_equal(maptbl_table_mark_absent(t2, 100, 150, 0), 0);
	assert_int_equal(maptbl_table_compact(t2, NULL, &t3), 0);
	assert_int_equal(maptbl_table_lookup(t3, 120, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_ABSENT);
	assert_int_equal(m.len, 130);
	assert_int_equal(maptbl_table_stats(t3, &s1, sizeof(s1)), 0);
	maptbl_table_free(t2);
	t2 = NULL;
	assert_int_equal(maptbl_table_open(maptbl_table_data(t3), maptbl_table_len(t3), NULL, &t2),
			 0);
	assert_int_equal(maptbl_table_stats(t2, &s2, sizeof(s2)), 0);
	assert_memory_equal(&s1, &s2, sizeof(s1));
	assert_int_equal(s1.nr_absent, 1);
	/* An opened table is updatable too: its free slots are what the tree does not reach. */
	assert_int_equal(maptbl_table_insert(t2, &e, 0), -EEXIST);
	assert_int_equal(maptbl_table_punch(t2, 0, 100, 0), -ENOSPC); /* no spare after compact(NULL) */
	maptbl_table_free(t2);
	maptbl_table_free(t3);
	fx_free(&f);
}

/*
 * Pruning everything frees the nodes; an empty table takes inserts from nothing. This used to
 * pass qsort() a NULL array when a rewritten index node was left with no entry (UBSan: "null
 * pointer passed as argument 1").
 */
static void test_prune_all_and_empty(void **state)
{
	struct maptbl_extent e = { .lblk = 0, .pblk = 7, .len = 1 };
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct maptbl_mapping m;
	struct maptbl_space sp;
	struct fixture f;

	(void)state;
	fx_make(&f, 20);
	assert_int_equal(maptbl_table_unmark_absent(f.t, 500, 100, NULL, 0, 0), 0);
	assert_int_equal(maptbl_table_mark_absent(f.t, 0, 1000, 0), 0);
	assert_int_equal(maptbl_table_nr_extents(f.t), 0);
	assert_int_equal(maptbl_table_lookup(f.t, 999, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_ABSENT);
	assert_int_equal(m.len, 1);
	maptbl_table_reclaim(f.t, maptbl_table_generation(f.t));
	assert_int_equal(maptbl_table_space(f.t, &sp, sizeof(sp)), 0);
	assert_int_equal(sp.tree_nodes, 1); /* one index node holding one absent entry */
	assert_int_equal(maptbl_table_unmark_absent(f.t, 0, 1000, NULL, 0, 0), 0);
	assert_int_equal(maptbl_table_depth(f.t), 0);
	fx_free(&f);

	maptbl_build_opts_init(&o, sizeof(o));
	o.virtual_blocks = 100;
	o.spare_nodes = 3;
	assert_int_equal(maptbl_table_build(NULL, 0, &o, &t), 0);
	assert_int_equal(maptbl_table_insert(t, &e, 0), 0);
	assert_int_equal(maptbl_table_lookup(t, 0, &m), 0);
	assert_int_equal(m.state, MAPTBL_MAP_MAPPED);
	assert_int_equal(maptbl_table_depth(t), 1);
	{
		struct maptbl_table *t2 = NULL;

		assert_int_equal(maptbl_table_open(maptbl_table_data(t), maptbl_table_len(t), NULL,
						   &t2), 0);
		maptbl_table_free(t2);
	}
	maptbl_table_free(t);
}

/*
 * A table from elsewhere may have levels that are not heights (a level-5 root over leaves): the
 * statistics after an update still match a fresh open (the longest path is walked, not assumed).
 */
static void test_foreign_levels(void **state)
{
	struct maptbl_extent e = { .lblk = 30, .pblk = 9000, .len = 3 };
	struct maptbl_table *t = NULL, *t2 = NULL;
	struct maptbl_stats a, b;
	uint8_t *buf = tw_alloc(256, 12);
	size_t len = 12 * 256;

	(void)state;
	tw_node(buf, 256, 1, MAPTBL_NODE_INDEX, 5, 0);
	tw_index(buf, 256, 1, 0, 14, 2);
	tw_index(buf, 256, 1, 20, 4, 3);
	tw_node(buf, 256, 2, MAPTBL_NODE_LEAF_COMPACT, 0, 0);
	tw_compact(buf, 256, 2, 0, 4, 100, false);
	tw_compact(buf, 256, 2, 10, 4, 200, true);
	tw_node(buf, 256, 3, MAPTBL_NODE_LEAF_COMPACT, 0, 20);
	tw_compact(buf, 256, 3, 20, 4, 300, false);
	tw_seal_node(buf, 256, 1);
	tw_seal_node(buf, 256, 2);
	tw_seal_node(buf, 256, 3);
	tw_header(buf, len, 256, 1, 100, 0, 0);
	assert_int_equal(maptbl_table_open(buf, len, NULL, &t), 0);
	assert_int_equal(maptbl_table_depth(t), 6);
	assert_int_equal(maptbl_table_insert(t, &e, 0), 0);
	assert_int_equal(maptbl_table_stats(t, &a, sizeof(a)), 0);
	assert_int_equal(maptbl_table_open(maptbl_table_data(t), len, NULL, &t2), 0);
	assert_int_equal(maptbl_table_stats(t2, &b, sizeof(b)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(a.max_nodes_touched, 2);
	maptbl_table_free(t2);
	maptbl_table_free(t);
	free(buf);
}

/* Generations wrap at 2^32; reclamation compares them as serial numbers. */
static void test_generation_wrap(void **state)
{
	struct maptbl_extent e = { .lblk = 0, .pblk = 7, .len = 1 };
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL;
	struct maptbl_space sp;
	uint32_t g0 = UINT32_MAX - 1;
	int i;

	(void)state;
	maptbl_build_opts_init(&o, sizeof(o));
	o.virtual_blocks = 100;
	o.spare_nodes = 8;
	o.generation = g0;
	assert_int_equal(maptbl_table_build(&e, 1, &o, &t), 0);
	for (i = 1; i <= 4; i++) {
		e.lblk = (uint64_t)i * 10;
		assert_int_equal(maptbl_table_insert(t, &e, 0), 0);
		assert_int_equal(maptbl_table_generation(t), g0 + (uint32_t)i);
	}
	/* Retired at g0 + 1 ... g0 + 4 (the last two after the wrap to 0 and 1). */
	assert_int_equal(maptbl_table_space(t, &sp, sizeof(sp)), 0);
	assert_int_equal(sp.retired_nodes, 4);
	assert_int_equal(maptbl_table_reclaim(t, g0), 0);
	assert_int_equal(maptbl_table_reclaim(t, UINT32_MAX), 1);
	assert_int_equal(maptbl_table_reclaim(t, 0), 1);
	assert_int_equal(maptbl_table_reclaim(t, 2), 2);
	maptbl_table_free(t);
}

/* spare_nodes: free zero slots after the tree, counted by maptbl_table_estimate() too. */
static void test_spare_nodes(void **state)
{
	struct maptbl_extent e[40];
	struct maptbl_build_opts o;
	struct maptbl_estimate est;
	struct maptbl_table *t = NULL;
	struct maptbl_space sp;
	struct maptbl_stats st;
	const uint8_t *buf;
	size_t i;

	(void)state;
	tu_gen_ext(e, 40);
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = 256;
	o.spare_nodes = 7;
	assert_int_equal(maptbl_table_build(e, 40, &o, &t), 0);
	assert_int_equal(maptbl_table_estimate(40, 0, &o, &est), 0);
	assert_int_equal(maptbl_table_len(t), est.bytes);
	assert_int_equal(maptbl_table_stats(t, &st, sizeof(st)), 0);
	assert_int_equal(maptbl_table_len(t), (st.nr_nodes + 1 + 7) * 256);
	buf = maptbl_table_data(t);
	for (i = (size_t)(st.nr_nodes + 1) * 256; i < maptbl_table_len(t); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(maptbl_table_space(t, &sp, sizeof(sp)), 0);
	assert_int_equal(sp.free_nodes, 7);
	assert_int_equal(sp.tree_nodes, st.nr_nodes);
	maptbl_table_free(t);
	o.spare_nodes = UINT32_MAX;
	assert_int_equal(maptbl_table_build(e, 40, &o, &t), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_publish_and_reclaim),
		cmocka_unit_test(test_enospc_and_compact),
		cmocka_unit_test(test_prune_all_and_empty),
		cmocka_unit_test(test_foreign_levels),
		cmocka_unit_test(test_generation_wrap),
		cmocka_unit_test(test_spare_nodes),
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_stress),
	};

	/* MAPTBL_TEST_FILTER=test_stress runs one test (e.g. under ThreadSanitizer). */
	if (getenv("MAPTBL_TEST_FILTER"))
		cmocka_set_test_filter(getenv("MAPTBL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
