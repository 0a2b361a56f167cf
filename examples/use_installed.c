/* SPDX-License-Identifier: MIT */
/*
 * use_installed.c - build a table from a few extents, open the bytes again as an untrusted buffer,
 * and look blocks up. Uses only the installed API (<maptbl/maptbl.h>); examples/build-installed.sh
 * compiles it against an installed libmaptbl, shared and static.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <maptbl/maptbl.h>

static const char *state_name(uint32_t s)
{
	static const char *const names[] = { "hole", "mapped", "unwritten", "absent" };

	return s < 4 ? names[s] : "?";
}

int main(void)
{
	/* The worked example of docs/FORMAT.md §9: logical block, physical block, length, flags. */
	static const struct maptbl_extent ext[] = {
		{ .lblk = 0, .pblk = 1000, .len = 8 },
		{ .lblk = 16, .pblk = 2000, .len = 4, .flags = MAPTBL_EXTENT_UNWRITTEN },
		{ .lblk = 40, .pblk = 500, .len = 2 },
	};
	static const uint64_t blocks[] = { 3, 10, 17, 50, 64 };
	struct maptbl_table *built = NULL, *opened = NULL;
	struct maptbl_build_opts bo;
	struct maptbl_diag diag;
	size_t i;
	int err;

	printf("libmaptbl %s (compiled against %s)\n", maptbl_version(), MAPTBL_VERSION_STRING);
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.node_size = 256;
	bo.virtual_blocks = 64;
	bo.diag = &diag;
	err = maptbl_table_build(ext, sizeof(ext) / sizeof(ext[0]), &bo, &built);
	if (err) {
		fprintf(stderr, "build: %s: %s\n", strerror(-err), diag.reason);
		return 1;
	}
	/* What a device or a file would hold: open() validates it and takes a copy. */
	err = maptbl_table_open(maptbl_table_data(built), maptbl_table_len(built), NULL, &opened);
	maptbl_table_free(built);
	if (err) {
		fprintf(stderr, "open: %s\n", strerror(-err));
		return 1;
	}
	printf("%zu-byte table, %" PRIu64 " extents, depth %u\n", maptbl_table_len(opened),
	       maptbl_table_nr_extents(opened), maptbl_table_depth(opened));
	for (i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		struct maptbl_mapping m;

		err = maptbl_table_lookup(opened, blocks[i], &m);
		if (err == -ERANGE)
			printf("block %2" PRIu64 ": past the end of the virtual disk\n", blocks[i]);
		else if (err)
			printf("block %2" PRIu64 ": %s\n", blocks[i], strerror(-err));
		else
			printf("block %2" PRIu64 ": %-9s pblk %-5" PRIu64 " run %" PRIu64 "\n", blocks[i],
			       state_name(m.state), m.pblk, m.len);
	}
	maptbl_table_free(opened);
	return 0;
}
