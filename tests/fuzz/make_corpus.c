/* SPDX-License-Identifier: MIT */
/*
 * make_corpus.c - writes the fuzz seed corpus (tests/fuzz/corpus/) with libmaptbl.
 *
 * Usage: make_corpus DIR
 * writes DIR/open/NAME.mtb (tables for fuzz_open) and DIR/extents/NAME.bin (inputs in
 * fuzz_extents' layout; see fuzz_extents.c).
 *
 * The open seeds are real tables: the FORMAT.md §9 worked example, empty tables, tables at node
 * sizes 256 to 8192, deep (small nodes), partly filled, with wide and mixed leaves, unwritten
 * extents, a recorded disk size, blocks near 2^48, and a few hand-edited variants the builder
 * does not write (an absent subtree, non-uniform depth, free slots, read-only markers), each with
 * correct checksums. The output is deterministic; the committed files are its output:
 *     cmake --build build --target make_corpus && build/tests/fuzz/make_corpus tests/fuzz/corpus
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <maptbl/maptbl.h>

static const char *outdir;

static void die(const char *what, int err)
{
	fprintf(stderr, "make_corpus: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void write_file(const char *sub, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		die(path, errno);
}

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Du;
}

/*
 * Filesystem-like extents: gaps mostly 0 and sometimes large, lengths mostly short. @wide_every:
 * every n-th extent gets a length above 32768 (0 = never); @unwritten_every likewise.
 */
static struct maptbl_extent *fs_extents(size_t n, uint64_t start, unsigned wide_every,
					unsigned unwritten_every)
{
	struct maptbl_extent *e = calloc(n ? n : 1, sizeof(*e));
	uint64_t l = start, p = 1000;
	size_t i;

	if (!e)
		die("calloc", ENOMEM);
	for (i = 0; i < n; i++) {
		uint64_t r = rnd();

		l += (r & 3) ? 0 : (r >> 8) % ((r & 4) ? 16 : 100000);
		e[i].lblk = l;
		e[i].len = 1 + (rnd() % ((r & 0x30) ? 8 : 4096));
		if (wide_every && i % wide_every == 0)
			e[i].len = 32769 + rnd() % 1000000;
		p += (r & 0x40) ? 0 : rnd() % 50000;
		e[i].pblk = p;
		if (unwritten_every && i % unwritten_every == 0)
			e[i].flags = MAPTBL_EXTENT_UNWRITTEN;
		l += e[i].len;
		p += e[i].len;
	}
	return e;
}

static struct maptbl_table *build(const struct maptbl_extent *e, size_t n, uint32_t node_size,
				  uint32_t block_size, uint64_t vb, uint64_t db, uint32_t fill,
				  uint32_t gen)
{
	struct maptbl_build_opts o;
	struct maptbl_table *t;
	int err;

	maptbl_build_opts_init(&o, sizeof(o));
	o.node_size = node_size;
	o.block_size = block_size;
	o.virtual_blocks = vb;
	o.disk_blocks = db;
	o.fill_pct = fill;
	o.generation = gen;
	err = maptbl_table_build(e, n, &o, &t);
	if (err)
		die("maptbl_table_build", err);
	return t;
}

static void put_table(const char *name, struct maptbl_table *t)
{
	write_file("open", name, maptbl_table_data(t), maptbl_table_len(t));
	maptbl_table_free(t);
}

/* A writable copy of a built table with @extra_nodes zeroed free slots appended. */
static uint8_t *copy_table(struct maptbl_table *t, size_t extra_nodes, size_t *len)
{
	size_t n = maptbl_table_len(t), add = extra_nodes * maptbl_table_node_size(t);
	uint8_t *b = calloc(1, n + add);

	if (!b)
		die("calloc", ENOMEM);
	memcpy(b, maptbl_table_data(t), n);
	*len = n + add;
	return b;
}

static void fix_header(uint8_t *b, uint64_t table_len)
{
	struct maptbl_header *h = (struct maptbl_header *)b;
	uint32_t hlen = maptbl_le16_to_cpu(h->header_len), crc;
	uint8_t tmp[65536];

	h->table_len = maptbl_cpu_to_le64(table_len);
	memcpy(tmp, b, hlen);
	memset(tmp + 12, 0, 12); /* header_crc and the live word are not covered */
	crc = maptbl_crc32c(0, tmp, hlen);
	h->header_crc = maptbl_cpu_to_le32(crc);
}

static void fix_node(uint8_t *b, uint32_t node_size, uint32_t n)
{
	uint8_t *node = b + (size_t)n * node_size;
	struct maptbl_node_hdr *h = (struct maptbl_node_hdr *)node;
	uint32_t used = MAPTBL_NODE_HDR_SIZE +
			maptbl_le16_to_cpu(h->nr_entries) * maptbl_entry_size(h->kind);

	h->crc = maptbl_cpu_to_le32(0);
	h->crc = maptbl_cpu_to_le32(maptbl_crc32c(0, node, used));
}

static void set_index(uint8_t *node, uint32_t i, uint64_t first, uint64_t nblocks, uint32_t child)
{
	struct maptbl_index_entry *x =
		(struct maptbl_index_entry *)(node + MAPTBL_NODE_HDR_SIZE) + i;

	x->first_lo = maptbl_cpu_to_le32((uint32_t)first);
	x->first_hi = maptbl_cpu_to_le16((uint16_t)(first >> 32));
	x->nblocks_lo = maptbl_cpu_to_le32((uint32_t)nblocks);
	x->nblocks_hi = maptbl_cpu_to_le16((uint16_t)(nblocks >> 32));
	x->child = maptbl_cpu_to_le32(child);
}

static void set_node_hdr(uint8_t *node, unsigned kind, unsigned level, uint32_t nr, uint32_t self,
			 uint64_t base)
{
	struct maptbl_node_hdr *h = (struct maptbl_node_hdr *)node;

	h->magic = maptbl_cpu_to_le16(MAPTBL_NODE_MAGIC);
	h->kind = (uint8_t)kind;
	h->level = (uint8_t)level;
	h->nr_entries = maptbl_cpu_to_le16((uint16_t)nr);
	h->self = maptbl_cpu_to_le32(self);
	h->base_lblk = maptbl_cpu_to_le64(base);
}

static void set_compact(uint8_t *node, uint32_t i, uint32_t off, uint32_t len, uint64_t pblk)
{
	struct maptbl_compact_entry *c =
		(struct maptbl_compact_entry *)(node + MAPTBL_NODE_HDR_SIZE) + i;

	c->lblk_off = maptbl_cpu_to_le32(off);
	c->len_flags = maptbl_cpu_to_le16((uint16_t)(len - 1));
	c->pblk_hi = maptbl_cpu_to_le16((uint16_t)(pblk >> 32));
	c->pblk_lo = maptbl_cpu_to_le32((uint32_t)pblk);
}

static void open_seeds(void)
{
	static const struct maptbl_extent worked[] = {
		{ 0, 1000, 8, 0, 0 },
		{ 16, 2000, 4, MAPTBL_EXTENT_UNWRITTEN, 0 },
		{ 40, 500, 2, 0, 0 },
	};
	static const struct maptbl_extent top[] = {
		{ 0, 0, 1, 0, 0 },
		{ (UINT64_C(1) << 32) + 5, 7, 40000, 0, 0 },
		{ MAPTBL_MAX_BLK - 10, MAPTBL_MAX_BLK - 10, 10, MAPTBL_EXTENT_UNWRITTEN, 0 },
	};
	struct maptbl_extent *e;
	struct maptbl_table *t;
	uint8_t *b;
	size_t len;

	put_table("worked-example-n256.mtb", build(worked, 3, 256, 4096, 64, 0, 0, 0));
	put_table("empty-n256.mtb", build(NULL, 0, 256, 0, 0, 0, 0, 0));
	put_table("empty-vb1000-n4096.mtb", build(NULL, 0, 4096, 512, 1000, 0, 0, 3));
	put_table("single-n512.mtb", build(worked, 1, 512, 65536, 0, 0, 0, 0));
	put_table("near-2p48-wide-n256.mtb", build(top, 3, 256, 4096, 0, MAPTBL_MAX_BLK, 0, 1));

	e = fs_extents(1000, 0, 0, 0);
	put_table("fs1000-n256-depth3.mtb", build(e, 1000, 256, 4096, 0, 0, 0, 0));
	put_table("fs1000-n4096-2level.mtb", build(e, 1000, 4096, 4096, 0, 0, 0, 0));
	free(e);

	e = fs_extents(200, 12345, 0, 5);
	put_table("fs200-n256-fill50-unwritten.mtb", build(e, 200, 256, 4096, 0, 0, 50, 9));
	free(e);

	e = fs_extents(150, 0, 0, 0);
	put_table("fs150-n512-2level.mtb", build(e, 150, 512, 4096, 0, 0, 0, 0));
	free(e);

	e = fs_extents(60, 0, 1, 0);
	put_table("wide60-n1024.mtb", build(e, 60, 1024, 4096, 0, 0, 0, 0));
	free(e);

	e = fs_extents(200, 0, 90, 7);
	put_table("mixed200-n1024.mtb", build(e, 200, 1024, 4096, 0, 0, 0, 0));
	free(e);

	e = fs_extents(300, 100, 0, 3);
	put_table("fs300-n2048-disk-unwritten.mtb",
		  build(e, 300, 2048, 512, e[299].lblk + e[299].len + 777,
			e[299].pblk + e[299].len + 5, 0, 7));
	free(e);

	e = fs_extents(50, 0, 10, 0);
	put_table("fs50-n8192.mtb", build(e, 50, 8192, 4096, 0, 0, 0, 0));
	free(e);

	/* Hand-edited: an absent subtree (entry 1 of the root pruned), plus two free slots. */
	e = fs_extents(150, 0, 0, 0);
	t = build(e, 150, 512, 4096, 0, 0, 0, 0);
	b = copy_table(t, 2, &len);
	((struct maptbl_index_entry *)(b + 512 + MAPTBL_NODE_HDR_SIZE))[1].child =
		maptbl_cpu_to_le32(0);
	fix_node(b, 512, 1);
	fix_header(b, len);
	write_file("open", "absent-freeslots-n512.mtb", b, len);
	free(b);
	maptbl_table_free(t);
	free(e);

	/* Read-only markers: an unknown ro_compat bit; a non-zero header byte past 128. */
	t = build(worked, 3, 256, 4096, 64, 0, 0, 0);
	b = copy_table(t, 0, &len);
	((struct maptbl_header *)b)->ro_compat = maptbl_cpu_to_le64(UINT64_C(1) << 5);
	fix_header(b, len);
	write_file("open", "rocompat-n256.mtb", b, len);
	memset(((struct maptbl_header *)b)->ro_compat.b, 0, 8);
	((struct maptbl_header *)b)->header_len = maptbl_cpu_to_le16(144);
	b[130] = 0x42;
	fix_header(b, len);
	write_file("open", "headertail-n256.mtb", b, len);
	free(b);
	maptbl_table_free(t);

	/*
	 * Non-uniform depth (node size 256): root (level 2) -> [leaf 2: blocks 0..9],
	 * [index 3 (level 1) -> leaf 4: blocks 100..129]; node 5 is a free slot.
	 */
	len = 6 * 256;
	b = calloc(1, len);
	if (!b)
		die("calloc", ENOMEM);
	memcpy(b, MAPTBL_MAGIC_STR, MAPTBL_MAGIC_LEN);
	((struct maptbl_header *)b)->version = maptbl_cpu_to_le16(MAPTBL_VERSION);
	((struct maptbl_header *)b)->header_len = maptbl_cpu_to_le16(MAPTBL_HEADER_SIZE);
	((struct maptbl_header *)b)->root = maptbl_cpu_to_le32(1);
	((struct maptbl_header *)b)->block_size = maptbl_cpu_to_le32(4096);
	((struct maptbl_header *)b)->node_size = maptbl_cpu_to_le32(256);
	((struct maptbl_header *)b)->virtual_blocks = maptbl_cpu_to_le64(200);
	set_node_hdr(b + 256, MAPTBL_NODE_INDEX, 2, 2, 1, 0);
	set_index(b + 256, 0, 0, 10, 2);
	set_index(b + 256, 1, 100, 30, 3);
	set_node_hdr(b + 512, MAPTBL_NODE_LEAF_COMPACT, 0, 2, 2, 0);
	set_compact(b + 512, 0, 0, 4, 5000);
	set_compact(b + 512, 1, 6, 4, 6000);
	set_node_hdr(b + 768, MAPTBL_NODE_INDEX, 1, 1, 3, 100);
	set_index(b + 768, 0, 100, 30, 4);
	set_node_hdr(b + 1024, MAPTBL_NODE_LEAF_COMPACT, 0, 3, 4, 100);
	set_compact(b + 1024, 0, 0, 10, 7000);
	set_compact(b + 1024, 1, 10, 10, 8000);
	set_compact(b + 1024, 2, 20, 10, 9000);
	fix_node(b, 256, 1);
	fix_node(b, 256, 2);
	fix_node(b, 256, 3);
	fix_node(b, 256, 4);
	fix_header(b, len);
	write_file("open", "nonuniform-depth-n256.mtb", b, len);
	free(b);
}

/* fuzz_extents inputs: an 8-byte option header, then 8-byte records (fuzz_extents.c). */
struct rec {
	uint8_t c0, c1;
	uint16_t gap, len, pm;
};

static void put_extents(const char *name, const uint8_t hdr[8], const struct rec *r, size_t n)
{
	uint8_t buf[8 + 64 * 8];
	size_t i;

	memcpy(buf, hdr, 8);
	for (i = 0; i < n; i++) {
		uint8_t *p = buf + 8 + i * 8;

		p[0] = r[i].c0;
		p[1] = r[i].c1;
		p[2] = (uint8_t)r[i].gap;
		p[3] = (uint8_t)(r[i].gap >> 8);
		p[4] = (uint8_t)r[i].len;
		p[5] = (uint8_t)(r[i].len >> 8);
		p[6] = (uint8_t)r[i].pm;
		p[7] = (uint8_t)(r[i].pm >> 8);
	}
	write_file("extents", name, buf, 8 + n * 8);
}

static void extent_seeds(void)
{
	struct rec r[64];
	size_t i;

	/* Small gaps and lengths, physically contiguous runs: one compact leaf at 256 bytes. */
	for (i = 0; i < 10; i++)
		r[i] = (struct rec){ 0, 0, (uint16_t)(i % 3 ? 0 : i * 7), (uint16_t)(1 + i * 13),
				     (uint16_t)(i % 2 ? 0 : 100) };
	put_extents("small-n256.bin", (const uint8_t[8]){ 0, 0x80, 0, 0, 0, 0, 0, 0 }, r, 10);

	/* 16 records repeated 64 times at 4096 bytes: 1024 extents, two levels. */
	for (i = 0; i < 16; i++)
		r[i] = (struct rec){ (uint8_t)(i & 1 ? 0 : 4), 0, (uint16_t)(i * 31),
				     (uint16_t)(1 + (i * 97) % 400), (uint16_t)(i * 3) };
	put_extents("rep64-n4096.bin", (const uint8_t[8]){ 4, 3, 0, 0x60, 0, 0, 1, 0 }, r, 16);

	/* 8 records repeated 256 times at 256 bytes: 2048 extents, depth 4. */
	put_extents("rep256-n256-depth4.bin", (const uint8_t[8]){ 0, 3, 0, 0x80, 0, 0, 0, 0 }, r, 8);

	/* Lengths past 32768 and gaps past 2^32: wide leaves, mixed with compact ones. */
	for (i = 0; i < 24; i++)
		r[i] = (struct rec){ (uint8_t)(i % 5 == 0 ? 20 : 0), (uint8_t)(i % 3 == 0 ? 0x48 : 0),
				     (uint16_t)(1000 + i), (uint16_t)(500 + i * 11),
				     (uint16_t)(i * 5) };
	put_extents("wide-mixed-n1024.bin", (const uint8_t[8]){ 2, 2, 0, 0x20, 0, 0, 0, 0 }, r,
		    24);

	/* Unwritten extents, a virtual and a disk size with slack, fill 30%. */
	for (i = 0; i < 20; i++)
		r[i] = (struct rec){ (uint8_t)(i % 4 == 0 ? 0x40 : 0), 0, (uint16_t)(i * 2),
				     (uint16_t)(1 + i), (uint16_t)i };
	put_extents("unwritten-sizes-fill30-n512.bin",
		    (const uint8_t[8]){ 1, 4, 30, 0x35, 0x10, 0, 5, 0 }, r, 20);

	/* Physical modes 1..3: scattered and near-2^48 physical blocks. */
	for (i = 0; i < 12; i++)
		r[i] = (struct rec){ 1, (uint8_t)(0x40 * (1 + i % 3)), 3, (uint16_t)(7 + i),
				     (uint16_t)(i * 1001) };
	put_extents("pblk-modes-n2048.bin", (const uint8_t[8]){ 3, 1, 0, 0, 0, 0, 0, 0 }, r, 12);

	/* Invalid: an overlapping extent (raw step back), and a zero length. */
	r[0] = (struct rec){ 0, 0, 0, 10, 0 };
	r[1] = (struct rec){ 0x80, 0, 5, 10, 0 };
	put_extents("overlap.bin", (const uint8_t[8]){ 0, 0, 0, 0, 0, 0, 0, 0 }, r, 2);
	r[1] = (struct rec){ 0, 0, 5, 0, 0 };
	put_extents("zero-length.bin", (const uint8_t[8]){ 0, 0, 0, 0, 0, 0, 0, 0 }, r, 2);

	/* Invalid options: fill above 100%, virtual size too small. */
	r[1] = (struct rec){ 0, 0, 5, 3, 0 };
	put_extents("bad-fill.bin", (const uint8_t[8]){ 0, 0, 250, 0, 0, 0, 0, 0 }, r, 2);
	put_extents("vb-too-small.bin", (const uint8_t[8]){ 0, 0, 0, 2, 5, 0, 0, 0 }, r, 2);
}

/*
 * Seeds of fuzz_device (layout in fuzz_device.c): each flag combination, with command streams of
 * well-formed requests (opcode 3), processing (5), reaping (6) and fault service (7), and streams
 * of raw bytes.
 */
static void device_seeds(void)
{
	uint8_t b[2048];
	unsigned k;

	for (k = 0; k < 16; k++) {
		size_t n = 0;
		char name[64];

		b[n++] = (uint8_t)(k % 4 | (k & 4) | (k == 9 ? 0x20 : 0) | (k == 11 ? 0x18 : 0));
		b[n++] = (uint8_t)rnd();
		while (n + 8 < sizeof(b) && n < 200 + 100 * (size_t)k) {
			unsigned fn = (unsigned)(rnd() % 4) << 4;

			if (k >= 12) {	/* raw bytes */
				b[n++] = (uint8_t)rnd();
				continue;
			}
			b[n++] = (uint8_t)(3 | fn);
			b[n++] = (uint8_t)(rnd() % 3);	/* read, write, write-zeroes */
			b[n++] = (uint8_t)(rnd() % 64);	/* lba */
			b[n++] = (uint8_t)rnd();	/* blocks */
			b[n++] = 5;
			b[n++] = 0;
			b[n++] = (uint8_t)(6 | fn);
			b[n++] = 7;
			b[n++] = (uint8_t)(rnd() % 2);
		}
		snprintf(name, sizeof(name), "seed-%02u.bin", k);
		write_file("device", name, b, n);
	}
}

static void mkdir_p(const char *sub)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(outdir, 0755) && errno != EEXIST)
		die(outdir, errno);
	if (mkdir(path, 0755) && errno != EEXIST)
		die(path, errno);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir_p("open");
	mkdir_p("extents");
	mkdir_p("device");
	open_seeds();
	extent_seeds();
	device_seeds();
	return 0;
}
