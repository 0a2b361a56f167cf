/* SPDX-License-Identifier: MIT */
/*
 * bench_update.c - what a table update costs against the anchor, a full rebuild of the same
 * table with maptbl_table_build() (issue #7 §5: "bytes written to the table per update against a
 * full rebuild").
 *
 * A table of E extents (lengths 1..64 blocks, a gap of 16 blocks after each, pblk jumping) is built
 * with 100% or 90% fill and spare slots (5% of its nodes + 16). Then U updates, each published at once
 * and reclaimed at once (a quiescent device), in one of two patterns:
 *   random: one block into a random gap, at a random pblk (a new extent: the leaf grows, splits
 *           when full);
 *   append: one block right after a random extent, continuing it on the disk (merged: the
 *           extent grows in place, the common case of sequential writes into a sparse file).
 * When the room runs out, the table is compacted (spare again) and the compaction's bytes are
 * charged to the updates ("amortized"). Reported: bytes written per update (median, mean,
 * amortized) and update latency (median, p99), against the bytes and the time of a rebuild of the
 * final extent count, measured in the same run (median of 5).
 *
 * Usage: maptbl-bench-update [EXTENTS [NODE_SIZE [UPDATES]]] (defaults: a sweep).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <maptbl/maptbl.h>

#include "bench_util.h" /* rnd(), now(): the thread's CPU time */

#define GAP 16u

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)(p * (double)(n - 1))];
}

struct result {
	double bytes_med, bytes_mean, bytes_amort, nodes_mean, lat_med, lat_p99;
	double rebuild_bytes, rebuild_s;
	unsigned compactions;
};

static struct maptbl_extent *gen(size_t n)
{
	struct maptbl_extent *e = malloc(n * sizeof(*e));
	uint64_t l = 0, p = 1000;
	size_t i;

	if (!e)
		return NULL;
	for (i = 0; i < n; i++) {
		e[i].lblk = l;
		e[i].len = 1 + rnd() % 64;
		e[i].pblk = p;
		e[i].flags = 0;
		e[i].reserved = 0;
		l += e[i].len + GAP;
		p += e[i].len + 1 + rnd() % 1000;
	}
	return e;
}

static int run(size_t n, uint32_t ns, size_t u, int append, uint32_t fill, struct result *res)
{
	struct maptbl_extent *e = gen(n), *fin = NULL;
	struct maptbl_build_opts o;
	struct maptbl_table *t = NULL, *t2;
	struct maptbl_space a, b;
	uint8_t *used = calloc(n, 1); /* blocks used in the gap after extent i */
	double *bytes = malloc(u * sizeof(double)), *lat = malloc(u * sizeof(double));
	double total = 0, compact_bytes = 0, nodes = 0, reb[5];
	size_t i, k, nfin;
	int err = -ENOMEM;

	if (!e || !used || !bytes || !lat)
		goto out;
	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = ns;
	o.fill_pct = fill;
	o.virtual_blocks = e[n - 1].lblk + e[n - 1].len + GAP;
	if ((err = maptbl_table_build(e, n, &o, &t)))
		goto out;
	o.spare_nodes = maptbl_table_len(t) / ns / 20 + 16;
	maptbl_table_free(t);
	if ((err = maptbl_table_build(e, n, &o, &t)))
		goto out;
	res->compactions = 0;
	for (i = 0; i < u; i++) {
		size_t x = rnd() % n;
		struct maptbl_extent in = { 0 };
		double t0;

		while (used[x] >= GAP - 1) /* keep one hole block: no extent fills a gap */
			x = rnd() % n;
		in.len = 1;
		if (append) {
			in.lblk = e[x].lblk + e[x].len + used[x];
			in.pblk = e[x].pblk + e[x].len + used[x];
		} else {
			in.lblk = e[x].lblk + e[x].len + 1 + used[x];
			in.pblk = (uint64_t)1 << 40 | rnd() % ((uint64_t)1 << 30);
		}
		maptbl_table_space(t, &a, sizeof(a));
		t0 = now();
		err = maptbl_table_insert(t, &in, 0);
		lat[i] = now() - t0;
		if (err == -ENOSPC) {
			o.virtual_blocks = 0;
			if ((err = maptbl_table_compact(t, &o, &t2)))
				goto out;
			compact_bytes += (double)maptbl_table_len(t2);
			maptbl_table_free(t);
			t = t2;
			res->compactions++;
			maptbl_table_space(t, &a, sizeof(a));
			t0 = now();
			err = maptbl_table_insert(t, &in, 0);
			lat[i] = now() - t0;
		}
		if (err)
			goto out;
		maptbl_table_reclaim(t, maptbl_table_generation(t));
		maptbl_table_space(t, &b, sizeof(b));
		bytes[i] = (double)(b.bytes_written - a.bytes_written);
		nodes += (double)(b.nodes_written - a.nodes_written);
		total += bytes[i];
		used[x]++;
	}
	res->bytes_mean = total / (double)u;
	res->bytes_amort = (total + compact_bytes) / (double)u;
	res->nodes_mean = nodes / (double)u;
	res->bytes_med = pct(bytes, u, 0.5);
	res->lat_med = pct(lat, u, 0.5);
	res->lat_p99 = pct(lat, u, 0.99);

	/* The anchor: rebuild the final table from its extent list. */
	nfin = maptbl_table_nr_extents(t);
	fin = malloc(nfin * sizeof(*fin));
	if (!fin) {
		err = -ENOMEM;
		goto out;
	}
	k = 0;
	{
		/* Collect the extents by lookups over the virtual disk (no callback state needed). */
		uint64_t l = 0, vb = maptbl_table_virtual_blocks(t);

		while (l < vb && k < nfin) {
			struct maptbl_mapping m;

			maptbl_table_lookup(t, l, &m);
			if (m.state == MAPTBL_MAP_MAPPED || m.state == MAPTBL_MAP_UNWRITTEN) {
				fin[k].lblk = l;
				fin[k].pblk = m.pblk;
				fin[k].len = m.len;
				fin[k].flags = m.state == MAPTBL_MAP_UNWRITTEN ? MAPTBL_EXTENT_UNWRITTEN : 0;
				fin[k].reserved = 0;
				k++;
			}
			l += m.len;
		}
	}
	o.spare_nodes = 0;
	o.fill_pct = 100;
	o.virtual_blocks = maptbl_table_virtual_blocks(t);
	for (i = 0; i < 5; i++) {
		double t0 = now();

		if ((err = maptbl_table_build(fin, k, &o, &t2)))
			goto out;
		reb[i] = now() - t0;
		res->rebuild_bytes = (double)maptbl_table_len(t2);
		maptbl_table_free(t2);
	}
	res->rebuild_s = pct(reb, 5, 0.5);
	err = 0;
out:
	maptbl_table_free(t);
	free(e);
	free(fin);
	free(used);
	free(bytes);
	free(lat);
	return err;
}

int main(int argc, char **argv)
{
	static const size_t sweep_n[] = { 10000, 100000, 1000000 };
	static const uint32_t sweep_ns[] = { 256, 4096 };
	size_t ni, si, u = 20000;
	int pat;

	bench_xs = 0x9E3779B97F4A7C15ull; /* the sequence this bench always used */
	if (argc > 4) {
		fprintf(stderr, "usage: %s [EXTENTS [NODE_SIZE [UPDATES]]]\n", argv[0]);
		return 2;
	}
	if (argc > 3)
		u = strtoull(argv[3], NULL, 0);
	printf("# maptbl-bench-update (libmaptbl %s): %zu single-block inserts per row, each published "
	       "and reclaimed; anchor: maptbl_table_build() of the final extents (median of 5)\n",
	       maptbl_version(), u);
	printf("# %9s %5s %4s %7s %9s %9s %9s %7s %10s %9s %9s %10s %10s %6s\n", "extents", "node",
	       "fill", "pattern", "B/upd p50", "B/upd avg", "B/amort", "nodes", "rebuild B", "ratio",
	       "upd p50us", "upd p99us", "rebuild ms", "compact");
	for (ni = 0; ni < 3; ni++) {
		for (si = 0; si < 2; si++) {
			for (pat = 0; pat < 4; pat++) {
				size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : sweep_n[ni];
				uint32_t ns = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : sweep_ns[si];
				uint32_t fill = pat < 2 ? 100 : 90;
				struct result r = { 0 };
				int err = run(n, ns, u, pat & 1, fill, &r);

				if (err) {
					fprintf(stderr, "%zu extents, node %u: %s\n", n, ns, strerror(-err));
					return 1;
				}
				printf("  %9zu %5u %4u %7s %9.0f %9.0f %9.0f %7.2f %10.0f %9.5f %9.2f %10.2f %10.2f %6u\n",
				       n, ns, fill, pat & 1 ? "append" : "random", r.bytes_med, r.bytes_mean,
				       r.bytes_amort, r.nodes_mean, r.rebuild_bytes,
				       r.bytes_amort / r.rebuild_bytes, r.lat_med * 1e6, r.lat_p99 * 1e6,
				       r.rebuild_s * 1e3, r.compactions);
				fflush(stdout);
			}
			if (argc > 2)
				break;
		}
		if (argc > 1)
			break;
	}
	return 0;
}
