/* SPDX-License-Identifier: MIT */
/* testutil.c - see testutil.h. Independent of libmaptbl's sources on purpose. */
#include "testutil.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	uint64_t lim, x;

	if (n <= 1)
		return 0;
	lim = UINT64_MAX - UINT64_MAX % n;
	do
		x = rng_next(r);
	while (x >= lim);
	return x % n;
}

uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	if (hi - lo == UINT64_MAX)
		return rng_next(r);
	return lo + rng_below(r, hi - lo + 1);
}

uint64_t test_seed(uint64_t dflt)
{
	const char *s = getenv("MAPTBL_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return dflt;
}

void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void put_le32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static uint32_t table[256];
	static int ready;
	const uint8_t *p = buf;
	size_t i;

	if (!ready) {
		uint32_t b, k, c;

		for (b = 0; b < 256; b++) {
			c = b;
			for (k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[b] = c;
		}
		ready = 1;
	}
	crc = ~crc;
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint8_t *tw_alloc(uint32_t node_size, uint32_t nslots)
{
	return calloc(nslots, node_size);
}

uint32_t tw_header_crc(const uint8_t *buf, uint32_t header_len)
{
	static const uint8_t zero[12];
	uint32_t crc = ref_crc32c(0, buf, 12);

	crc = ref_crc32c(crc, zero, 12);
	return ref_crc32c(crc, buf + 24, header_len - 24);
}

uint32_t tw_node_crc(const uint8_t *node, uint32_t used)
{
	static const uint8_t zero[4];
	uint32_t crc = ref_crc32c(0, node, 8);

	crc = ref_crc32c(crc, zero, 4);
	return ref_crc32c(crc, node + 12, used - 12);
}

void tw_seal_header(uint8_t *buf, size_t len)
{
	uint32_t hlen = get_le16(buf + 10);

	if (hlen < 24)
		hlen = 24;
	if (hlen > len)
		hlen = (uint32_t)len;
	put_le32(buf + TW_HDR_CRC, tw_header_crc(buf, hlen));
}

void tw_header(uint8_t *buf, size_t len, uint32_t node_size, uint32_t root,
	       uint64_t virtual_blocks, uint64_t disk_blocks, uint64_t incompat)
{
	memset(buf, 0, 128);
	memcpy(buf, "\x89MAPTBL\n", 8);
	put_le16(buf + 8, 1);
	put_le16(buf + 10, 128);
	put_le32(buf + TW_ROOT, root);
	put_le64(buf + TW_INCOMPAT, incompat);
	put_le32(buf + TW_BLOCK_SIZE, 4096);
	put_le32(buf + TW_NODE_SIZE, node_size);
	put_le64(buf + TW_VIRTUAL, virtual_blocks);
	put_le64(buf + TW_DISK, disk_blocks);
	put_le64(buf + TW_TABLE_LEN, len);
	tw_seal_header(buf, len);
}

static uint32_t esize(unsigned kind)
{
	return kind == 1 ? 16 : kind == 2 ? 12 : kind == 3 ? 24 : 0;
}

void tw_node(uint8_t *buf, uint32_t node_size, uint32_t n, unsigned kind, unsigned level,
	     uint64_t base_lblk)
{
	uint8_t *p = buf + (size_t)n * node_size;

	memset(p, 0, node_size);
	put_le16(p, 0x544E);
	p[2] = (uint8_t)kind;
	p[3] = (uint8_t)level;
	put_le32(p + 12, n);
	put_le64(p + 16, base_lblk);
}

uint64_t tw_entry_off(uint32_t node_size, uint32_t n, unsigned kind, uint32_t i)
{
	return (uint64_t)n * node_size + 32 + (uint64_t)i * esize(kind);
}

/* Pointer to the next free entry of node n, incrementing nr_entries. */
static uint8_t *next_entry(uint8_t *buf, uint32_t node_size, uint32_t n)
{
	uint8_t *p = buf + (size_t)n * node_size;
	uint16_t nr = get_le16(p + 4);

	put_le16(p + 4, (uint16_t)(nr + 1));
	return p + 32 + (size_t)nr * esize(p[2]);
}

void tw_index(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t first, uint64_t nblocks,
	      uint32_t child)
{
	uint8_t *e = next_entry(buf, node_size, n);

	put_le32(e, (uint32_t)first);
	put_le16(e + 4, (uint16_t)(first >> 32));
	put_le16(e + 6, (uint16_t)(nblocks >> 32));
	put_le32(e + 8, (uint32_t)nblocks);
	put_le32(e + 12, child);
}

void tw_compact(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t lblk, uint32_t len,
		uint64_t pblk, bool unwritten)
{
	uint64_t base = get_le64(buf + (size_t)n * node_size + 16);
	uint8_t *e = next_entry(buf, node_size, n);

	put_le32(e, (uint32_t)(lblk - base));
	put_le16(e + 4, (uint16_t)((len - 1) | (unwritten ? 0x8000u : 0)));
	put_le16(e + 6, (uint16_t)(pblk >> 32));
	put_le32(e + 8, (uint32_t)pblk);
}

void tw_wide(uint8_t *buf, uint32_t node_size, uint32_t n, uint64_t lblk, uint64_t len,
	     uint64_t pblk, bool unwritten)
{
	uint8_t *e = next_entry(buf, node_size, n);

	put_le64(e, lblk);
	put_le64(e + 8, pblk);
	put_le32(e + 16, (uint32_t)len);
	put_le16(e + 20, (uint16_t)(len >> 32));
	put_le16(e + 22, unwritten ? 1 : 0);
}

void tw_seal_node(uint8_t *buf, uint32_t node_size, uint32_t n)
{
	uint8_t *p = buf + (size_t)n * node_size;
	uint64_t used = 32 + (uint64_t)get_le16(p + 4) * esize(p[2]);

	if (used > node_size)
		return;
	put_le32(p + 8, tw_node_crc(p, (uint32_t)used));
}

void membuf_init(struct membuf *m, const void *buf, uint64_t len)
{
	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->len = len;
	m->fail_at = -1;
}

int membuf_read(void *ctx, uint64_t off, void *dst, uint32_t len)
{
	struct membuf *m = ctx;
	unsigned call = m->reads++;

	if (m->fail_at >= 0 && call == (unsigned)m->fail_at)
		return -1;
	if (off > m->len || len > m->len - off) {
		m->oob++;
		return -1;
	}
	if (off >= 128 && len > 8)
		m->node_reads++;
	memcpy(dst, m->buf + off, len);
	return 0;
}

bool contains_word(const char *haystack, const char *needle)
{
	size_t n = strlen(needle), i, j;

	for (i = 0; haystack[i]; i++) {
		for (j = 0; j < n && haystack[i + j]; j++)
			if (tolower((unsigned char)haystack[i + j]) != tolower((unsigned char)needle[j]))
				break;
		if (j == n)
			return true;
	}
	return n == 0;
}

void tu_gen_ext(struct maptbl_extent *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		e[i].lblk = i * 10;
		e[i].len = 1 + i % 7;
		e[i].pblk = 100000 + i * 8;
		e[i].flags = i % 5 == 3 ? MAPTBL_EXTENT_UNWRITTEN : 0;
		e[i].reserved = 0;
	}
}
