/* SPDX-License-Identifier: MIT */
/*
 * test_btrfs.c - the btrfs chunk map without a filesystem: CHUNK_ITEM bodies crafted with the
 * UAPI structs (linux/btrfs_tree.h) are parsed (and malformed ones refused), looked up, and
 * logical addresses translated for SINGLE, DUP, RAID1, RAID1C3, RAID0 and RAID10, including
 * the stripe-unit boundaries; every byte of a striped chunk lands on exactly one place of the
 * stripes' device extents. map_item() turns file extent items into records and findings (other
 * device, profile, RAID5/6, no chunk). btrfs.c is included for its static functions; fs.c and
 * the other backends are linked from their sources.
 */
#include "../../../fs-adapters/src/btrfs.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fsutil.h"

#define KiB UINT64_C(1024)
#define MiB (UINT64_C(1024) * 1024)
#define GiB (UINT64_C(1024) * MiB)
#define SL (64 * KiB) /* BTRFS_STRIPE_LEN */
#define BOTH (MAPTBL_FS_REFUSES_WRITABLE | MAPTBL_FS_REFUSES_READONLY)

/* A CHUNK_ITEM body: struct btrfs_chunk (with its first stripe) and ns - 1 more stripes. */
struct item {
	union {
		struct btrfs_chunk c;
		uint8_t b[sizeof(struct btrfs_chunk) + 15 * sizeof(struct btrfs_stripe)];
	};
	size_t len;
};

static struct item make_item(uint64_t length, uint64_t type, uint16_t ns, uint16_t ss,
			     const uint64_t *devid, const uint64_t *offset)
{
	struct item it;
	struct btrfs_chunk *c = &it.c;

	memset(&it, 0, sizeof(it));
	c->length = htole64(length);
	c->owner = htole64(2);
	c->stripe_len = htole64(SL);
	c->type = htole64(type | BTRFS_BLOCK_GROUP_DATA);
	c->io_align = c->io_width = htole32(SL);
	c->sector_size = htole32(4096);
	c->num_stripes = htole16(ns);
	c->sub_stripes = htole16(ss);
	for (uint16_t i = 0; i < ns; i++) {
		struct btrfs_stripe *s = &(&c->stripe)[i];

		s->devid = htole64(devid[i]);
		s->offset = htole64(offset[i]);
	}
	it.len = sizeof(*c) + (size_t)(ns ? ns - 1 : 0) * sizeof(struct btrfs_stripe);
	return it;
}

static void parse_ok(uint64_t logical, const struct item *it, struct bt_chunk *c)
{
	int err = chunk_parse(logical, it->b, it->len, c);

	if (err)
		fail_msg("chunk_parse(%llu, %zu bytes) failed: %d", (unsigned long long)logical,
			 it->len, err);
}

static void piece(const struct bt_chunk *c, uint64_t logical, uint64_t len, unsigned mirror,
		  uint64_t devid, uint64_t phys, uint64_t plen)
{
	struct bt_piece p;
	int err = chunk_map_piece(c, logical, len, mirror, &p);

	if (err)
		fail_msg("chunk_map_piece(%llu, %llu, mirror %u) failed: %d",
			 (unsigned long long)logical, (unsigned long long)len, mirror, err);
	if (p.devid != devid || p.physical != phys || p.length != plen)
		fail_msg("logical %llu (+%llu) mirror %u -> dev %llu at %llu (+%llu), want dev %llu at %llu (+%llu)",
			 (unsigned long long)logical, (unsigned long long)len, mirror,
			 (unsigned long long)p.devid, (unsigned long long)p.physical,
			 (unsigned long long)p.length, (unsigned long long)devid,
			 (unsigned long long)phys, (unsigned long long)plen);
}

static void test_parse_bad(void **state)
{
	static const uint64_t dev[4] = { 1, 2, 3, 4 }, off[4] = { 0, 0, 0, 0 };
	struct bt_chunk c;
	struct item it;

	(void)state;
	it = make_item(GiB, 0, 1, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len - 1, &c), -EUCLEAN);	/* short */
	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID0, 3, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len - 16, &c), -EUCLEAN);	/* stripes cut */
	it = make_item(GiB, 0, 0, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, sizeof(struct btrfs_chunk), &c), -EUCLEAN); /* none */
	it = make_item(0, 0, 1, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* empty */
	it = make_item(GiB, 0, 1, 1, dev, off);
	assert_int_equal(chunk_parse(UINT64_MAX - MiB, it.b, it.len, &c), -EUCLEAN); /* wraps */
	it.c.stripe_len = htole64(3 * 4096);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* stripe_len 12 KiB */
	it.c.stripe_len = 0;
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);
	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID0 | BTRFS_BLOCK_GROUP_RAID1, 2, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* two profiles */
	it = make_item(GiB, BTRFS_BLOCK_GROUP_DUP, 3, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* DUP of 3 */
	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID10, 3, 2, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* 3 % 2 */
	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID10, 4, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* no mirror */
	it = make_item(GiB, 0, 2, 1, dev, off);
	assert_int_equal(chunk_parse(0, it.b, it.len, &c), -EUCLEAN);	/* single of 2 */
}

/* Several chunks: sorted lookups on the edges and in the gaps; an overlapping chunk refused. */
static void test_map_lookup(void **state)
{
	static const uint64_t d1[1] = { 1 }, d2[1] = { 2 };
	struct bt_chunk_map cm = { 0 };
	struct bt_chunk c;
	struct item it;
	uint64_t o[1];

	(void)state;
	for (int i = 0; i < 200; i++) {
		/* chunk i: logical 1 GiB * (i + 1), 256 MiB long, a 512 MiB gap after */
		o[0] = 16 * MiB + (uint64_t)i * 256 * MiB;
		it = make_item(256 * MiB, 0, 1, 1, i % 2 ? d2 : d1, o);
		parse_ok(GiB * (uint64_t)(i + 1), &it, &c);
		assert_int_equal(chunk_map_add(&cm, &c), 0);
	}
	assert_int_equal(cm.n, 200);
	assert_null(chunk_find(&cm, 0));
	assert_null(chunk_find(&cm, GiB - 1));
	assert_ptr_equal(chunk_find(&cm, GiB), &cm.c[0]);
	assert_ptr_equal(chunk_find(&cm, GiB + 256 * MiB - 1), &cm.c[0]);
	assert_null(chunk_find(&cm, GiB + 256 * MiB));
	assert_ptr_equal(chunk_find(&cm, 137 * GiB + 5), &cm.c[136]);
	assert_ptr_equal(chunk_find(&cm, 200 * GiB + 256 * MiB - 1), &cm.c[199]);
	assert_null(chunk_find(&cm, 200 * GiB + 256 * MiB));
	/* The right chunk, not the first: chunk 136 is on device 1 at its own offset. */
	piece(&cm.c[136], 137 * GiB + 5 * MiB, MiB, 0, 1, 16 * MiB + 136 * 256 * MiB + 5 * MiB, MiB);
	piece(&cm.c[137], 138 * GiB, 300 * MiB, 0, 2, 16 * MiB + 137 * 256 * MiB, 256 * MiB);
	/* Overlapping the last chunk, or before it: refused. */
	it = make_item(256 * MiB, 0, 1, 1, d1, o);
	parse_ok(200 * GiB + 128 * MiB, &it, &c);
	assert_int_equal(chunk_map_add(&cm, &c), -EUCLEAN);
	free(c.stripe);
	chunk_map_free(&cm);
}

static void test_single_dup_raid1(void **state)
{
	static const uint64_t dev[3] = { 1, 1, 1 }, dup_off[2] = { 100 * MiB, 612 * MiB };
	static const uint64_t r1_dev[3] = { 3, 1, 2 }, r1_off[3] = { 7 * MiB, 9 * MiB, 11 * MiB };
	struct bt_chunk c;
	struct bt_piece p;
	struct item it;
	uint64_t off[1] = { 40 * MiB };

	(void)state;
	it = make_item(512 * MiB, 0, 1, 1, dev, off);
	parse_ok(2 * GiB, &it, &c);
	assert_int_equal(chunk_copies(&c), 1);
	piece(&c, 2 * GiB, 4096, 0, 1, 40 * MiB, 4096);
	piece(&c, 2 * GiB + 300 * MiB, 100 * MiB, 0, 1, 340 * MiB, 100 * MiB);
	piece(&c, 2 * GiB + 500 * MiB, 100 * MiB, 0, 1, 540 * MiB, 12 * MiB); /* to the end */
	assert_int_equal(chunk_map_piece(&c, 2 * GiB - 1, 1, 0, &p), -ERANGE);
	assert_int_equal(chunk_map_piece(&c, 2 * GiB + 512 * MiB, 1, 0, &p), -ERANGE);
	assert_int_equal(chunk_map_piece(&c, 2 * GiB, 1, 1, &p), -ERANGE); /* no mirror 1 */
	free(c.stripe);

	it = make_item(512 * MiB, BTRFS_BLOCK_GROUP_DUP, 2, 1, dev, dup_off);
	parse_ok(3 * GiB, &it, &c);
	assert_int_equal(chunk_copies(&c), 2);
	piece(&c, 3 * GiB + 5 * MiB, 64 * MiB, 0, 1, 105 * MiB, 64 * MiB);
	piece(&c, 3 * GiB + 5 * MiB, 64 * MiB, 1, 1, 617 * MiB, 64 * MiB);
	assert_int_equal(chunk_map_piece(&c, 3 * GiB, 1, 2, &p), -ERANGE);
	free(c.stripe);

	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID1C3, 3, 1, r1_dev, r1_off);
	parse_ok(8 * GiB, &it, &c);
	assert_int_equal(chunk_copies(&c), 3);
	/* Linear on every copy, the first stripe's device first. */
	piece(&c, 8 * GiB + 123 * 4096, GiB, 0, 3, 7 * MiB + 123 * 4096, GiB - 123 * 4096);
	piece(&c, 8 * GiB + 123 * 4096, 4096, 2, 2, 11 * MiB + 123 * 4096, 4096);
	free(c.stripe);
}

static void test_raid0(void **state)
{
	static const uint64_t dev[3] = { 1, 2, 3 }, off[3] = { 10 * MiB, 20 * MiB, 30 * MiB };
	struct bt_chunk c;
	struct item it;
	const uint64_t L = 5 * GiB;

	(void)state;
	it = make_item(3 * 64 * MiB, BTRFS_BLOCK_GROUP_RAID0, 3, 1, dev, off);
	parse_ok(L, &it, &c);
	assert_int_equal(chunk_copies(&c), 1);
	/* Stripe units go round the three devices; a piece ends at its unit's end. */
	piece(&c, L, 4 * MiB, 0, 1, 10 * MiB, SL);
	piece(&c, L + SL, 4 * MiB, 0, 2, 20 * MiB, SL);
	piece(&c, L + 2 * SL + 4096, 4 * MiB, 0, 3, 30 * MiB + 4096, SL - 4096);
	/* Unit 3 is row 1 on device 1; unit 7 is row 2 on device 2. */
	piece(&c, L + 3 * SL + 5 * 4096, 4 * MiB, 0, 1, 10 * MiB + SL + 5 * 4096, SL - 5 * 4096);
	piece(&c, L + 7 * SL + 8192, 4096, 0, 2, 20 * MiB + 2 * SL + 8192, 4096);
	/* The last unit of the chunk: device 3, row (192 MiB / 64 KiB / 3) - 1. */
	piece(&c, L + 3 * 64 * MiB - 4096, MiB, 0, 3, 30 * MiB + 64 * MiB - 4096, 4096);
	free(c.stripe);
}

static void test_raid10(void **state)
{
	/* Two groups of two mirrors: stripes 0,1 mirror each other, 2,3 too. */
	static const uint64_t dev[4] = { 1, 2, 3, 4 };
	static const uint64_t off[4] = { 1 * MiB, 2 * MiB, 3 * MiB, 4 * MiB };
	struct bt_chunk c;
	struct bt_piece p;
	struct item it;
	const uint64_t L = 9 * GiB;

	(void)state;
	it = make_item(256 * MiB, BTRFS_BLOCK_GROUP_RAID10, 4, 2, dev, off);
	parse_ok(L, &it, &c);
	assert_int_equal(chunk_copies(&c), 2);
	piece(&c, L, MiB, 0, 1, 1 * MiB, SL);
	piece(&c, L, MiB, 1, 2, 2 * MiB, SL);
	piece(&c, L + SL, MiB, 0, 3, 3 * MiB, SL);
	piece(&c, L + SL, MiB, 1, 4, 4 * MiB, SL);
	/* Unit 3: group 1, row 1. */
	piece(&c, L + 3 * SL + 4096, 4096, 0, 3, 3 * MiB + SL + 4096, 4096);
	piece(&c, L + 3 * SL + 4096, 4096, 1, 4, 4 * MiB + SL + 4096, 4096);
	assert_int_equal(chunk_map_piece(&c, L, 1, 2, &p), -ERANGE);
	free(c.stripe);
}

/*
 * Every 4 KiB of a striped chunk goes to one place inside its stripe's device extent
 * (stripe.offset .. + length / groups), and no two go to the same place: the translation is a
 * bijection onto the device extents, as btrfs allocates them.
 */
static void check_bijection(uint64_t type, uint16_t ns, uint16_t ss, unsigned copies)
{
	static const uint64_t dev[6] = { 1, 2, 3, 4, 5, 6 };
	static const uint64_t off[6] = { 0, 64 * MiB, 128 * MiB, 192 * MiB, 256 * MiB, 320 * MiB };
	const uint64_t len = 6 * MiB, L = GiB, step = 4096;
	unsigned groups = type & BTRFS_BLOCK_GROUP_RAID10 ? ns / ss : ns;
	const uint64_t dext = len / groups; /* bytes of each device extent */
	uint8_t *used = calloc(ns, dext / step);
	struct bt_chunk c;
	struct item it;

	assert_non_null(used);
	it = make_item(len, type, ns, ss, dev, off);
	parse_ok(L, &it, &c);
	for (unsigned m = 0; m < copies; m++) {
		memset(used, 0, ns * (dext / step));
		for (uint64_t o = 0; o < len; o += step) {
			struct bt_piece p;
			uint64_t idx, rel;

			assert_int_equal(chunk_map_piece(&c, L + o, step, m, &p), 0);
			assert_int_equal(p.length, step);
			idx = p.devid - 1;
			assert_true(idx < ns);
			assert_true(p.physical >= off[idx]);
			rel = p.physical - off[idx];
			assert_true(rel < dext);
			assert_int_equal(used[idx * (dext / step) + rel / step], 0);
			used[idx * (dext / step) + rel / step] = 1;
		}
	}
	free(used);
	free(c.stripe);
}

static void test_bijection(void **state)
{
	(void)state;
	check_bijection(BTRFS_BLOCK_GROUP_RAID0, 2, 1, 1);
	check_bijection(BTRFS_BLOCK_GROUP_RAID0, 3, 1, 1);
	check_bijection(BTRFS_BLOCK_GROUP_RAID10, 4, 2, 2);
	check_bijection(BTRFS_BLOCK_GROUP_RAID10, 6, 2, 2);
	check_bijection(BTRFS_BLOCK_GROUP_RAID10, 2, 2, 2);
}

static void test_raid56_refused(void **state)
{
	static const uint64_t dev[3] = { 1, 2, 3 }, off[3] = { 0, 0, 0 };
	struct bt_chunk c;
	struct bt_piece p;
	struct item it;

	(void)state;
	it = make_item(GiB, BTRFS_BLOCK_GROUP_RAID5, 3, 1, dev, off);
	parse_ok(GiB, &it, &c);
	assert_int_equal(chunk_map_piece(&c, GiB, 4096, 0, &p), -EOPNOTSUPP);
	free(c.stripe);
}

/* A chunk map: [1 GiB, +64 MiB) single on device 1 at 100 MiB, [1 GiB + 64 MiB, +64 MiB)
 * single on device 2 at 200 MiB, [2 GiB, +64 MiB) DUP on device 1, [3 GiB, +64 MiB) RAID5. */
static void build_map(struct bt_chunk_map *cm)
{
	static const uint64_t d1[2] = { 1, 1 }, d2[1] = { 2 }, d3[3] = { 1, 2, 3 };
	static const uint64_t o1[1] = { 100 * MiB }, o2[1] = { 200 * MiB };
	static const uint64_t od[2] = { 300 * MiB, 400 * MiB }, o5[3] = { 0, 0, 0 };
	struct { uint64_t l, type; uint16_t ns; const uint64_t *d, *o; } spec[] = {
		{ GiB, 0, 1, d1, o1 },
		{ GiB + 64 * MiB, 0, 1, d2, o2 },
		{ 2 * GiB, BTRFS_BLOCK_GROUP_DUP, 2, d1, od },
		{ 3 * GiB, BTRFS_BLOCK_GROUP_RAID5, 3, d3, o5 },
	};

	memset(cm, 0, sizeof(*cm));
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		struct bt_chunk c;
		struct item it = make_item(64 * MiB, spec[i].type, spec[i].ns, 1, spec[i].d, spec[i].o);

		parse_ok(spec[i].l, &it, &c);
		assert_int_equal(chunk_map_add(cm, &c), 0);
	}
}

static void check_find(const struct maptbl_fs_map *m, size_t i, uint64_t off, uint64_t len,
		       uint32_t rule, uint32_t refuses)
{
	assert_true(i < m->nr_find);
	if (m->find[i].offset != off || m->find[i].length != len || m->find[i].rule != rule ||
	    m->find[i].refuses != refuses)
		fail_msg("finding %zu is (%llu, %llu, %s, %u), want (%llu, %llu, %s, %u)", i,
			 (unsigned long long)m->find[i].offset, (unsigned long long)m->find[i].length,
			 maptbl_fs_rule_name(m->find[i].rule), m->find[i].refuses,
			 (unsigned long long)off, (unsigned long long)len, maptbl_fs_rule_name(rule),
			 refuses);
}

static void check_rec(const struct maptbl_fs_map *m, size_t i, uint64_t lo, uint64_t ph,
		      uint64_t len, uint32_t flags)
{
	assert_true(i < m->nr_rec);
	if (m->rec[i].logical != lo || m->rec[i].physical != ph || m->rec[i].length != len ||
	    m->rec[i].flags != flags)
		fail_msg("record %zu is (%llu, %llu, %llu, %u), want (%llu, %llu, %llu, %u)", i,
			 (unsigned long long)m->rec[i].logical, (unsigned long long)m->rec[i].physical,
			 (unsigned long long)m->rec[i].length, m->rec[i].flags, (unsigned long long)lo,
			 (unsigned long long)ph, (unsigned long long)len, flags);
}

/* File extent items through map_item(): records on the first device, findings for the rest. */
static void test_map_item(void **state)
{
	struct bt_chunk_map cm;
	struct maptbl_fs_map *m = new_map(4096, 0);
	struct bt_ctx x = { .m = m };
	uint64_t tdev = 0, odev = 0;
	struct logcap lc;
	/* 8 MiB at file offset 0, from 4 MiB before the end of chunk 0: it runs on into chunk 1,
	 * on device 2. The extent's own offset (1 MiB) is added to disk_bytenr. */
	struct bt_item a = { .file_off = 0, .disk_bytenr = GiB + 59 * MiB, .offset = MiB,
			     .num_bytes = 8 * MiB, .type = BTRFS_FILE_EXTENT_REG };
	/* 1 MiB prealloc in chunk 0, shared. */
	struct bt_item b = { .file_off = 8 * MiB, .disk_bytenr = GiB, .num_bytes = MiB,
			     .type = BTRFS_FILE_EXTENT_PREALLOC };
	/* DUP: a record from the first copy, a profile finding for writable tables only. */
	struct bt_item d = { .file_off = 9 * MiB, .disk_bytenr = 2 * GiB + 4096, .num_bytes = MiB,
			     .type = BTRFS_FILE_EXTENT_REG };
	/* RAID5 and no chunk at all: refused for both. */
	struct bt_item r = { .file_off = 10 * MiB, .disk_bytenr = 3 * GiB, .num_bytes = MiB,
			     .type = BTRFS_FILE_EXTENT_REG };
	struct bt_item z = { .file_off = 11 * MiB, .disk_bytenr = 5 * GiB, .num_bytes = MiB,
			     .type = BTRFS_FILE_EXTENT_REG };

	(void)state;
	assert_non_null(m);
	build_map(&cm);
	logcap_start(&lc);
	assert_int_equal(map_item(&x, &cm, &a, false, &tdev, &odev), 0);
	assert_int_equal(tdev, 1);
	assert_int_equal(odev, 2);
	check_rec(m, 0, 0, 100 * MiB + 60 * MiB, 4 * MiB, 0);
	check_find(m, 0, 4 * MiB, 4 * MiB, MAPTBL_FS_RULE_OTHER_DEVICE, BOTH);
	assert_int_equal(map_item(&x, &cm, &b, true, &tdev, &odev), 0);
	check_rec(m, 1, 8 * MiB, 100 * MiB, MiB, MTFS_REC_UNWRITTEN | MTFS_REC_SHARED);
	assert_int_equal(map_item(&x, &cm, &d, false, &tdev, &odev), 0);
	check_rec(m, 2, 9 * MiB, 300 * MiB + 4096, MiB, 0);
	check_find(m, 1, 9 * MiB, MiB, MAPTBL_FS_RULE_PROFILE, MAPTBL_FS_REFUSES_WRITABLE);
	assert_int_equal(map_item(&x, &cm, &r, false, &tdev, &odev), 0);
	check_find(m, 2, 10 * MiB, MiB, MAPTBL_FS_RULE_PROFILE, BOTH);
	assert_int_equal(map_item(&x, &cm, &z, false, &tdev, &odev), 0);
	check_find(m, 3, 11 * MiB, MiB, MAPTBL_FS_RULE_UNKNOWN, BOTH);
	assert_true(lc.n[MAPTBL_LOG_ERROR] >= 1); /* "in no chunk" */
	logcap_stop();
	assert_int_equal(m->nr_rec, 3);
	assert_int_equal(m->nr_find, 4);
	chunk_map_free(&cm);
	maptbl_fs_map_free(m);
}

/* Mirrored chunks whose stripes btrfs rotated: [1 GiB, +64 MiB) RAID1 on devices {1, 2},
 * [1 GiB + 64 MiB, +64 MiB) RAID1 on {2, 1}, [1 GiB + 128 MiB, +64 MiB) RAID1 on {3, 2},
 * [4 GiB, +64 MiB) RAID10 (2 groups of 2 mirrors) on {2, 1, 1, 2}. */
static void build_rotated(struct bt_chunk_map *cm)
{
	static const uint64_t d12[2] = { 1, 2 }, d21[2] = { 2, 1 }, d32[2] = { 3, 2 };
	static const uint64_t d10[4] = { 2, 1, 1, 2 };
	static const uint64_t o1[2] = { 100 * MiB, 500 * MiB }, o2[2] = { 200 * MiB, 600 * MiB };
	static const uint64_t o3[2] = { 300 * MiB, 700 * MiB };
	static const uint64_t o10[4] = { 800 * MiB, 900 * MiB, 1000 * MiB, 1100 * MiB };
	struct { uint64_t l, type; uint16_t ns, ss; const uint64_t *d, *o; } spec[] = {
		{ GiB, BTRFS_BLOCK_GROUP_RAID1, 2, 1, d12, o1 },
		{ GiB + 64 * MiB, BTRFS_BLOCK_GROUP_RAID1, 2, 1, d21, o2 },
		{ GiB + 128 * MiB, BTRFS_BLOCK_GROUP_RAID1, 2, 1, d32, o3 },
		{ 4 * GiB, BTRFS_BLOCK_GROUP_RAID10, 4, 2, d10, o10 },
	};

	memset(cm, 0, sizeof(*cm));
	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		struct bt_chunk c;
		struct item it = make_item(64 * MiB, spec[i].type, spec[i].ns, spec[i].ss, spec[i].d,
					   spec[i].o);

		parse_ok(spec[i].l, &it, &c);
		assert_int_equal(chunk_map_add(cm, &c), 0);
	}
}

/*
 * This used to refuse read-only tables of RAID1/RAID10 files "other-device": map_item() always
 * read copy 0, and btrfs rotates the stripe order between chunks, so a file across two chunks
 * had its copy 0 on two devices although each device held a full copy.
 */
static void test_rotated_mirrors(void **state)
{
	struct bt_chunk_map cm;
	struct maptbl_fs_map *m = new_map(4096, 0);
	struct bt_ctx x = { .m = m };
	uint64_t tdev = 0, odev = 0;
	/* 8 MiB across chunks 0 ({1, 2}) and 1 ({2, 1}): both copies are whole on device 1. */
	struct bt_item a = { .file_off = 0, .disk_bytenr = GiB + 60 * MiB, .num_bytes = 8 * MiB,
			     .type = BTRFS_FILE_EXTENT_REG };
	/* 128 KiB of RAID10 at its start: stripe unit 0 on {2, 1}, unit 1 on {1, 2}. */
	struct bt_item r = { .file_off = 8 * MiB, .disk_bytenr = 4 * GiB, .num_bytes = 2 * SL,
			     .type = BTRFS_FILE_EXTENT_REG };
	/* 8 MiB across chunks 1 ({2, 1}) and 2 ({3, 2}): only device 2 holds all of it, and
	 * copy 0 of its first byte is on device 2 too; starting in chunk 0 ({1, 2}) instead,
	 * copy 0 would be device 1, which lacks chunk 2. */
	struct bt_item b = { .file_off = 0, .disk_bytenr = GiB + 124 * MiB, .num_bytes = 8 * MiB,
			     .type = BTRFS_FILE_EXTENT_REG };
	struct bt_item c = { .file_off = 0, .disk_bytenr = GiB + 60 * MiB, .num_bytes = 72 * MiB,
			     .type = BTRFS_FILE_EXTENT_REG };
	struct bt_file f = { .it = &c, .n = 1 };
	struct logcap lc;

	(void)state;
	assert_non_null(m);
	build_rotated(&cm);
	logcap_start(&lc);
	assert_int_equal(map_item(&x, &cm, &a, false, &tdev, &odev), 0);
	assert_int_equal(tdev, 1);
	check_rec(m, 0, 0, 100 * MiB + 60 * MiB, 4 * MiB, 0);
	check_rec(m, 1, 4 * MiB, 600 * MiB, 4 * MiB, 0); /* copy 1 of chunk 1 */
	assert_int_equal(map_item(&x, &cm, &r, false, &tdev, &odev), 0);
	check_rec(m, 2, 8 * MiB, 900 * MiB, SL, 0);	  /* unit 0: mirror 1 */
	check_rec(m, 3, 8 * MiB + SL, 1000 * MiB, SL, 0); /* unit 1: mirror 0 */
	assert_int_equal(odev, 0);
	for (size_t i = 0; i < m->nr_find; i++)
		assert_int_not_equal(m->find[i].rule, MAPTBL_FS_RULE_OTHER_DEVICE);
	logcap_stop();

	/* The table's device is the one that holds everything, not copy 0 of the first byte. */
	f.it = &b;
	assert_int_equal(pick_table_dev(&cm, &f), 2);
	f.it = &c;
	assert_int_equal(pick_table_dev(&cm, &f), 2);
	f.it = &a;
	assert_int_equal(pick_table_dev(&cm, &f), 1);
	chunk_map_free(&cm);
	maptbl_fs_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_map_lookup),
		cmocka_unit_test(test_single_dup_raid1),
		cmocka_unit_test(test_raid0),
		cmocka_unit_test(test_raid10),
		cmocka_unit_test(test_bijection),
		cmocka_unit_test(test_raid56_refused),
		cmocka_unit_test(test_map_item),
		cmocka_unit_test(test_rotated_mirrors),
	};

	return cmocka_run_group_tests_name("btrfs chunk map", tests, NULL, NULL);
}
