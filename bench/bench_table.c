/* SPDX-License-Identifier: MIT */
/*
 * bench_table.c - maptbl-bench: build time, size, depth and lookup speed of libmaptbl tables for
 * several extent counts and node sizes (docs/PERFORMANCE.md has the numbers and the method).
 *
 * For every extent count E (one random extent list per E, shared by all node sizes) and node size:
 *   build     median wall time of maptbl_table_build() over --reps runs (default options, fill
 *             100%, block size 4096), and extents per second;
 *   size      table bytes, bytes per extent, and that divided by 12 (ext4's 12-byte extent entry);
 *   depth     levels of the tree;
 *   nodes     mean and max nodes touched per lookup of a uniformly random block of the virtual
 *             disk (holes included; "hole%" is the share of lookups that landed in a hole);
 *   lookups/s maptbl_table_lookup() on one core over pre-drawn random blocks, median of 3 passes;
 *             maptbl_table_lookup_many() on the same blocks in one call, median of 3 passes;
 *             the same blocks through the reference walker (maptbl_walk_lookup()) with a memcpy()
 *             read callback, without and with MAPTBL_WALK_CHECK_CRC. Before timing the walker,
 *             the library's answers for those blocks are checked against it (exit 1 if one
 *             differs).
 *   index     bytes per extent of the table's lookup index (host memory, lookup.c).
 * Times are the CPU time of the thread (CLOCK_THREAD_CPUTIME_ID): on a shared machine, wall time
 * also counts the time other jobs ran.
 * Then, per node size, the largest extent count that stays at depth 2, found by building.
 *
 * Single-threaded: run it on an otherwise idle machine. Output: an aligned table, or --csv.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <maptbl/maptbl.h>

#include "../libmaptbl/src/internal.h" /* mt_table_accel_bytes(): not public, bench only */

#define MAX_LIST 32

enum dist { DIST_FS, DIST_WIDE };

struct cfg {
	uint64_t extents[MAX_LIST];
	size_t n_extents;
	uint32_t nodes[MAX_LIST];
	size_t n_nodes;
	int reps;		/* 0: chosen per E */
	uint64_t lookups;	/* random lookups per pass (library); the walker does a quarter */
	uint64_t seed;
	enum dist dist;
	int csv, quick, depth2;
};

/* ---- random numbers: xoshiro256** seeded with splitmix64 ---- */

static uint64_t rs[4];

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15u);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static void rng_seed(uint64_t s)
{
	int i;

	for (i = 0; i < 4; i++)
		rs[i] = splitmix(&s);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
	uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;

	rs[2] ^= rs[0];
	rs[3] ^= rs[1];
	rs[1] ^= rs[2];
	rs[0] ^= rs[3];
	rs[2] ^= t;
	rs[3] = rotl(rs[3], 45);
	return r;
}

static double unif(void) /* [0, 1) */
{
	return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t below(uint64_t n) /* [0, n), n >= 1 */
{
	return (uint64_t)(unif() * (double)n);
}

/* ---- the extent generator ---- */

static int wide_exponent(uint64_t n)
{
	int k = 32;

	/* Keep the expected end (E times the mean length) below 2^46 blocks. */
	while (k > 16 && (double)n * ldexp(1.0, k) / (k * 0.6931471805599453) > ldexp(1.0, 46))
		k--;
	return k;
}

static const char *dist_text(enum dist d)
{
	return d == DIST_FS
		       ? "fs: gap 0 (75%), 1..16 uniform (20%), 16..65536 log-uniform (5%); "
			 "len = ceil(2^(15u^2)), u uniform in [0,1): 1..32768, median 14, mean ~1660; "
			 "physical: contiguous (30%) or a jump of 1..65536; 5% unwritten"
		       : "wide: gaps as fs; len log-uniform in [1, 2^k], k = 32 (reduced for large E "
			 "so the disk fits 2^48 blocks); physical as fs; 5% unwritten";
}

static struct maptbl_extent *gen_extents(uint64_t n, enum dist d, uint64_t *end)
{
	struct maptbl_extent *e = malloc((n ? n : 1) * sizeof(*e));
	uint64_t l = 0, p = 0, i;
	int k = wide_exponent(n);

	if (!e) {
		fprintf(stderr, "maptbl-bench: out of memory for %" PRIu64 " extents\n", n);
		exit(1);
	}
	for (i = 0; i < n; i++) {
		double g = unif(), u = unif();

		if (i) {
			if (g >= 0.95)
				l += (uint64_t)ceil(16.0 * pow(4096.0, unif()));
			else if (g >= 0.75)
				l += 1 + below(16);
		}
		if (d == DIST_FS) {
			double len = ceil(pow(2.0, 15.0 * u * u));

			e[i].len = len > 32768 ? 32768 : (uint64_t)len;
		} else {
			e[i].len = (uint64_t)ceil(pow(2.0, k * u));
		}
		if (!e[i].len)
			e[i].len = 1;
		if (unif() >= 0.30)
			p += 1 + below(65536);
		e[i].lblk = l;
		e[i].pblk = p;
		e[i].flags = unif() < 0.05 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		e[i].reserved = 0;
		l += e[i].len;
		p += e[i].len;
	}
	if (l > MAPTBL_MAX_BLK || p > MAPTBL_MAX_BLK) {
		fprintf(stderr, "maptbl-bench: generated extents end past 2^48\n");
		exit(1);
	}
	*end = l;
	return e;
}

/* ---- timing ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- one configuration ---- */

struct result {
	uint64_t extents;
	uint32_t node_size;
	double build_s;		/* median seconds per build */
	int reps;
	uint64_t bytes;
	uint32_t depth;
	double nodes_mean;
	uint32_t nodes_max;
	double hole_pct;
	double lookups_s, walk_s, walk_crc_s; /* per second */
	double many_s;			      /* per second */
	double index_bpe;		      /* lookup index bytes per extent */
};

static struct maptbl_table *build_or_die(const struct maptbl_extent *e, uint64_t n,
					 uint32_t node_size)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t;
	int err;

	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = node_size;
	err = maptbl_table_build(e, n, &o, &t);
	if (err) {
		fprintf(stderr, "maptbl-bench: build of %" PRIu64 " extents, node size %u: %s\n", n,
			node_size, strerror(-err));
		exit(1);
	}
	return t;
}

struct memtbl {
	const uint8_t *p;
	uint64_t n;
};

static int mem_read(void *ctx, uint64_t off, void *buf, uint32_t len)
{
	const struct memtbl *m = ctx;

	if (off > m->n || len > m->n - off)
		return -1;
	memcpy(buf, m->p + off, len);
	return 0;
}

static volatile uint64_t sink;

static double time_lookups(const struct maptbl_table *t, const uint64_t *keys, uint64_t n)
{
	struct maptbl_mapping m;
	uint64_t i, acc = 0;
	double t0 = now();

	for (i = 0; i < n; i++) {
		maptbl_table_lookup(t, keys[i], &m);
		acc += m.pblk + m.len;
	}
	t0 = now() - t0;
	sink += acc;
	return t0;
}

static double time_many(const struct maptbl_table *t, const uint64_t *keys, uint64_t n,
			struct maptbl_mapping *out)
{
	uint64_t i, acc = 0;
	double t0 = now();

	if (maptbl_table_lookup_many(t, keys, n, out)) {
		fprintf(stderr, "maptbl-bench: lookup_many failed\n");
		exit(1);
	}
	t0 = now() - t0;
	for (i = 0; i < n; i++)
		acc += out[i].pblk + out[i].len;
	sink += acc;
	return t0;
}

static double time_walk(struct maptbl_walker *w, const uint64_t *keys, uint64_t n)
{
	struct maptbl_walk_result r;
	uint64_t i, acc = 0;
	double t0 = now();

	for (i = 0; i < n; i++) {
		if (maptbl_walk_lookup(w, keys[i], &r)) {
			fprintf(stderr, "maptbl-bench: walker lookup failed\n");
			exit(1);
		}
		acc += r.pblk + r.len;
	}
	t0 = now() - t0;
	sink += acc;
	return t0;
}

static int default_reps(uint64_t e, int quick)
{
	int r = e <= 10000 ? 15 : e <= 100000 ? 9 : e <= 1000000 ? 7 : 5;

	return quick ? (r + 2) / 3 : r;
}

static void run_one(const struct cfg *c, const struct maptbl_extent *e, uint64_t n, uint64_t vb,
		    uint32_t node_size, struct result *res)
{
	static double samples[64];
	struct maptbl_table *t;
	struct maptbl_stats st;
	struct maptbl_mapping m;
	struct maptbl_walker w;
	struct memtbl mem;
	uint64_t *keys, nk = c->lookups, nw, i, holes = 0, nodes_sum = 0;
	uint64_t inner = n >= 1000000 ? 1 : 1000000 / (n ? n : 1);
	double pass[3];
	void *scratch;
	int r, reps = c->reps ? c->reps : default_reps(n, c->quick);

	if (reps > 64)
		reps = 64;
	memset(res, 0, sizeof(*res));
	res->extents = n;
	res->node_size = node_size;
	res->reps = reps;

	/* Build: each sample builds `inner` times so that small tables are timed over >= ~1e6
	 * extents; the first build (page faults of a fresh heap) is a warm-up. */
	maptbl_table_free(build_or_die(e, n, node_size));
	for (r = 0; r < reps; r++) {
		double t0 = now();
		uint64_t k;

		for (k = 0; k < inner; k++)
			maptbl_table_free(build_or_die(e, n, node_size));
		samples[r] = (now() - t0) / (double)inner;
	}
	res->build_s = median(samples, reps);

	t = build_or_die(e, n, node_size);
	maptbl_table_stats(t, &st, sizeof(st));
	res->bytes = maptbl_table_len(t);
	res->depth = st.depth;

	keys = malloc(nk * sizeof(*keys));
	if (!keys) {
		fprintf(stderr, "maptbl-bench: out of memory\n");
		exit(1);
	}
	for (i = 0; i < nk; i++)
		keys[i] = below(vb);
	for (i = 0; i < nk; i++) {
		maptbl_table_lookup(t, keys[i], &m);
		nodes_sum += m.nodes;
		if (m.nodes > res->nodes_max)
			res->nodes_max = m.nodes;
		holes += m.state == MAPTBL_MAP_HOLE;
	}
	res->nodes_mean = (double)nodes_sum / (double)nk;
	res->hole_pct = 100.0 * (double)holes / (double)nk;
	for (r = 0; r < 3; r++)
		pass[r] = time_lookups(t, keys, nk);
	res->lookups_s = (double)nk / median(pass, 3);
	res->index_bpe = n ? (double)mt_table_accel_bytes(t) / (double)n : 0;
	{
		struct maptbl_mapping *out = malloc(nk * sizeof(*out));

		if (!out) {
			fprintf(stderr, "maptbl-bench: out of memory\n");
			exit(1);
		}
		for (r = 0; r < 3; r++)
			pass[r] = time_many(t, keys, nk, out);
		res->many_s = (double)nk / median(pass, 3);
		/* Not timed: the batch answers as single lookups do. */
		for (i = 0; i < nk; i++) {
			maptbl_table_lookup(t, keys[i], &m);
			if (memcmp(&m, &out[i], sizeof(m))) {
				fprintf(stderr, "maptbl-bench: lookup_many of block %" PRIu64
					" differs from lookup\n", keys[i]);
				exit(1);
			}
		}
		free(out);
	}

	nw = nk / 4 ? nk / 4 : 1;
	mem.p = maptbl_table_data(t);
	mem.n = maptbl_table_len(t);
	scratch = malloc(65536);
	if (!scratch || maptbl_walk_init(&w, mem_read, &mem, scratch, 65536, 0)) {
		fprintf(stderr, "maptbl-bench: walker init failed\n");
		exit(1);
	}
	/* Not timed: the library must answer as the reference walker does. */
	for (i = 0; i < nw; i++) {
		struct maptbl_walk_result wr;

		maptbl_table_lookup(t, keys[i], &m);
		if (maptbl_walk_lookup(&w, keys[i], &wr) || wr.state != m.state ||
		    wr.pblk != m.pblk || wr.len != m.len || wr.nodes != m.nodes) {
			fprintf(stderr, "maptbl-bench: lookup of block %" PRIu64
				" differs from the reference walker\n", keys[i]);
			exit(1);
		}
	}
	for (r = 0; r < 3; r++)
		pass[r] = time_walk(&w, keys, nw);
	res->walk_s = (double)nw / median(pass, 3);
	if (maptbl_walk_init(&w, mem_read, &mem, scratch, 65536, MAPTBL_WALK_CHECK_CRC)) {
		fprintf(stderr, "maptbl-bench: walker init failed\n");
		exit(1);
	}
	for (r = 0; r < 3; r++)
		pass[r] = time_walk(&w, keys, nw);
	res->walk_crc_s = (double)nw / median(pass, 3);

	free(scratch);
	free(keys);
	maptbl_table_free(t);
}

/* ---- output ---- */

static void print_header(const struct cfg *c)
{
	if (c->csv) {
		printf("dist,extents,node_size,reps,build_ms,extents_per_s,table_bytes,"
		       "bytes_per_extent,ratio_to_12,depth,nodes_mean,nodes_max,hole_pct,"
		       "lookups_per_s,walk_per_s,walk_crc_per_s,many_per_s,index_bytes_per_extent\n");
		return;
	}
	printf("# maptbl-bench (libmaptbl %s, compiled with %s)\n", maptbl_version(),
#ifdef __VERSION__
	       __VERSION__
#else
	       "an unknown compiler"
#endif
	);
	printf("# extents: %s\n", dist_text(c->dist));
	printf("# build: block size 4096, fill 100%%, median of reps; lookups: %" PRIu64
	       " uniformly random blocks of the virtual disk, median of 3 passes "
	       "(walker: a quarter of them, memcpy read callback; Mmany/s: one "
	       "maptbl_table_lookup_many() call over them); times: thread CPU time; idxB/e: lookup "
	       "index bytes per extent\n#\n",
	       c->lookups);
	printf("%9s %6s %4s %10s %9s %12s %7s %6s %5s %6s %4s %6s %9s %8s %8s %8s %6s\n", "extents",
	       "node", "reps", "build_ms", "Mext/s", "bytes", "B/ext", "/12", "depth", "nodes", "max",
	       "hole%", "Mlook/s", "Mwalk/s", "Mwcrc/s", "Mmany/s", "idxB/e");
}

static void print_row(const struct cfg *c, const struct result *r)
{
	double bpe = r->extents ? (double)r->bytes / (double)r->extents : 0;
	double eps = r->build_s > 0 ? (double)r->extents / r->build_s : 0;

	if (c->csv) {
		printf("%s,%" PRIu64 ",%u,%d,%.4f,%.0f,%" PRIu64 ",%.3f,%.4f,%u,%.3f,%u,%.1f,%.0f,%.0f,"
		       "%.0f,%.0f,%.3f\n",
		       c->dist == DIST_FS ? "fs" : "wide", r->extents, r->node_size, r->reps,
		       r->build_s * 1e3, eps, r->bytes, bpe, bpe / 12, r->depth, r->nodes_mean,
		       r->nodes_max, r->hole_pct, r->lookups_s, r->walk_s, r->walk_crc_s, r->many_s,
		       r->index_bpe);
	} else {
		printf("%9" PRIu64 " %6u %4d %10.3f %9.1f %12" PRIu64 " %7.3f %6.3f %5u %6.3f %4u "
		       "%6.1f %9.2f %8.2f %8.2f %8.2f %6.3f\n",
		       r->extents, r->node_size, r->reps, r->build_s * 1e3, eps / 1e6, r->bytes, bpe,
		       bpe / 12, r->depth, r->nodes_mean, r->nodes_max, r->hole_pct,
		       r->lookups_s / 1e6, r->walk_s / 1e6, r->walk_crc_s / 1e6, r->many_s / 1e6,
		       r->index_bpe);
	}
	fflush(stdout);
}

/* ---- depth-2 limit ---- */

static uint32_t depth_of(const struct maptbl_extent *e, uint64_t n, uint32_t node_size)
{
	struct maptbl_table *t = build_or_die(e, n, node_size);
	uint32_t d = maptbl_table_depth(t);

	maptbl_table_free(t);
	return d;
}

/*
 * Largest n with depth(n) <= 2, by building prefixes of one extent list. Index fanout times the
 * compact leaf capacity is an upper bound (all leaves compact and full), fanout times the wide
 * leaf capacity a lower one; builds check the bounds and a binary search by building finds the
 * limit in between (for fs-like extents every leaf is compact and the upper bound is the answer).
 */
static uint64_t depth2_limit(enum dist d, uint32_t node_size, uint64_t *guess_out)
{
	uint64_t fan = maptbl_node_capacity(node_size, MAPTBL_NODE_INDEX);
	uint64_t hi = fan * maptbl_node_capacity(node_size, MAPTBL_NODE_LEAF_COMPACT) + 1;
	uint64_t lo = fan * maptbl_node_capacity(node_size, MAPTBL_NODE_LEAF_WIDE), end;
	struct maptbl_extent *e;

	*guess_out = hi - 1;
	rng_seed(0xD2D2D2D2u ^ node_size);
	e = gen_extents(hi, d, &end);
	if (depth_of(e, hi, node_size) <= 2 || depth_of(e, lo, node_size) > 2) {
		free(e); /* outside the bounds: the builder changed */
		return 0;
	}
	if (depth_of(e, hi - 1, node_size) <= 2) {
		free(e);
		return hi - 1;
	}
	while (hi - lo > 1) { /* depth(lo) <= 2 < depth(hi) */
		uint64_t mid = lo + (hi - lo) / 2;

		if (depth_of(e, mid, node_size) <= 2)
			lo = mid;
		else
			hi = mid;
	}
	free(e);
	return lo;
}

/* ---- arguments ---- */

static int parse_u64_list(const char *s, uint64_t *out, size_t *n)
{
	char *dup = strdup(s), *tok, *save = NULL;

	*n = 0;
	if (!dup)
		return -1;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *endp;
		double v = strtod(tok, &endp);

		if (*endp || v < 1 || v > 1e9 || *n == MAX_LIST) {
			free(dup);
			return -1;
		}
		out[(*n)++] = (uint64_t)(v + 0.5);
	}
	free(dup);
	return *n ? 0 : -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: maptbl-bench [--quick] [--extents LIST] [--node-sizes LIST] [--reps N]\n"
		"                    [--lookups N] [--dist fs|wide] [--seed N] [--no-depth2] [--csv]\n"
		"  --extents LIST     comma-separated extent counts (1e6 notation allowed);\n"
		"                     default 1e3,1e4,1e5,1e6,1e7\n"
		"  --node-sizes LIST  comma-separated node sizes; default 256,512,...,65536\n"
		"  --reps N           builds per median (default: 15, 9, 7, 5 by size; --quick: a third)\n"
		"  --lookups N        random lookups per pass (default 1e6; --quick 2e5)\n"
		"  --quick            extents 1e3..1e6, node sizes 256,1024,4096,16384,65536,\n"
		"                     fewer reps and lookups\n"
		"  --dist wide        extent lengths up to 2^32 (wide leaves) instead of fs-like\n"
		"  --no-depth2        skip the search for the largest depth-2 table\n"
		"  --csv              comma-separated output\n");
}

int main(int argc, char **argv)
{
	struct cfg c;
	uint64_t nodes64[MAX_LIST];
	int i, have_e = 0, have_n = 0, have_l = 0;
	size_t k;

	memset(&c, 0, sizeof(c));
	c.seed = 1;
	c.depth2 = 1;
	c.lookups = 1000000;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			c.quick = 1;
		} else if (!strcmp(a, "--csv")) {
			c.csv = 1;
		} else if (!strcmp(a, "--no-depth2")) {
			c.depth2 = 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (v && !strcmp(a, "--extents")) {
			if (parse_u64_list(v, c.extents, &c.n_extents))
				goto bad;
			have_e = 1;
			i++;
		} else if (v && !strcmp(a, "--node-sizes")) {
			if (parse_u64_list(v, nodes64, &c.n_nodes))
				goto bad;
			for (k = 0; k < c.n_nodes; k++) {
				if (nodes64[k] < 256 || nodes64[k] > 65536 ||
				    (nodes64[k] & (nodes64[k] - 1)))
					goto bad;
				c.nodes[k] = (uint32_t)nodes64[k];
			}
			have_n = 1;
			i++;
		} else if (v && !strcmp(a, "--reps")) {
			c.reps = atoi(v);
			if (c.reps < 1 || c.reps > 64)
				goto bad;
			i++;
		} else if (v && !strcmp(a, "--lookups")) {
			uint64_t l[1];
			size_t nl;

			if (parse_u64_list(v, l, &nl) || nl != 1)
				goto bad;
			c.lookups = l[0];
			have_l = 1;
			i++;
		} else if (v && !strcmp(a, "--seed")) {
			c.seed = strtoull(v, NULL, 0);
			i++;
		} else if (v && !strcmp(a, "--dist")) {
			if (!strcmp(v, "fs"))
				c.dist = DIST_FS;
			else if (!strcmp(v, "wide"))
				c.dist = DIST_WIDE;
			else
				goto bad;
			i++;
		} else {
			goto bad;
		}
	}
	if (!have_e) {
		static const uint64_t def[] = { 1000, 10000, 100000, 1000000, 10000000 };

		c.n_extents = c.quick ? 4 : 5;
		memcpy(c.extents, def, c.n_extents * sizeof(def[0]));
	}
	if (!have_n) {
		static const uint32_t quick[] = { 256, 1024, 4096, 16384, 65536 };

		if (c.quick) {
			c.n_nodes = 5;
			memcpy(c.nodes, quick, sizeof(quick));
		} else {
			for (c.n_nodes = 0; c.n_nodes < 9; c.n_nodes++)
				c.nodes[c.n_nodes] = 256u << c.n_nodes;
		}
	}
	if (c.quick && !have_l)
		c.lookups = 200000;

	print_header(&c);
	for (k = 0; k < c.n_extents; k++) {
		uint64_t vb;
		struct maptbl_extent *e;
		size_t j;

		rng_seed(c.seed * 1000003u + c.extents[k]);
		e = gen_extents(c.extents[k], c.dist, &vb);
		for (j = 0; j < c.n_nodes; j++) {
			struct result r;

			rng_seed(c.seed ^ (c.extents[k] << 20) ^ c.nodes[j]);
			run_one(&c, e, c.extents[k], vb, c.nodes[j], &r);
			print_row(&c, &r);
		}
		free(e);
	}

	if (c.depth2) {
		if (!c.csv)
			printf("#\n# largest extent count at depth <= 2 (by building prefixes of one %s "
			       "list)\n# %6s %12s %12s\n",
			       c.dist == DIST_FS ? "fs" : "wide", "node", "capacity", "built");
		else
			printf("\nnode_size,depth2_capacity,depth2_built\n");
		for (k = 0; k < c.n_nodes; k++) {
			uint64_t guess, lim = depth2_limit(c.dist, c.nodes[k], &guess);

			if (c.csv)
				printf("%u,%" PRIu64 ",%" PRIu64 "\n", c.nodes[k], guess, lim);
			else
				printf("# %6u %12" PRIu64 " %12" PRIu64 "\n", c.nodes[k], guess, lim);
			fflush(stdout);
		}
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}
