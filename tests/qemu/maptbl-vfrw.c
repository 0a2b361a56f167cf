/* SPDX-License-Identifier: MIT */
/*
 * maptbl-vfrw - the VM's side of a VF in the QEMU guest test (tests/qemu/run.sh): read a whole
 * VF through its request/completion rings to standard output, or write a file into it at a
 * block, with libmaptbl-hw's queue API (the same path as the nbdkit plugin, on pci:/vfio:).
 *
 *   maptbl-vfrw DEV VF read          > OUT
 *   maptbl-vfrw DEV VF write LBA FILE
 *
 * Exit: 0 done, 1 the device refused or failed (the status is printed), 2 usage, 3 the device
 * could not be opened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maptbl/hw.h>

#define CHUNK_BLOCKS 256u

static int fail(const char *what, int err, const struct maptbl_hw_io *io)
{
	fprintf(stderr, "maptbl-vfrw: %s: %s (status %s, %" PRIu64 " blocks done)\n", what,
		strerror(-err), io ? maptbl_hw_status_name(io->status) : "-",
		io ? io->blocks : 0);
	return 1;
}

static int do_read(struct maptbl_hw_queue *q)
{
	uint32_t bs = maptbl_hw_queue_block_size(q);
	uint64_t n = maptbl_hw_queue_blocks(q);
	uint8_t *buf = malloc((size_t)CHUNK_BLOCKS * bs);

	if (!buf)
		return fail("read", -ENOMEM, NULL);
	for (uint64_t lba = 0; lba < n; lba += CHUNK_BLOCKS) {
		uint64_t k = n - lba < CHUNK_BLOCKS ? n - lba : CHUNK_BLOCKS;
		struct maptbl_hw_io io = { .opcode = MAPTBL_OP_READ, .lba = lba, .nblocks = k,
					   .buf = buf, .timeout_ms = 30000 };
		int err = maptbl_hw_queue_io(q, &io);

		if (err) {
			free(buf);
			return fail("read", err, &io);
		}
		if (fwrite(buf, bs, (size_t)k, stdout) != k) {
			free(buf);
			return fail("standard output", -EIO, NULL);
		}
	}
	free(buf);
	return fflush(stdout) ? fail("standard output", -EIO, NULL) : 0;
}

static int do_write(struct maptbl_hw_queue *q, uint64_t lba, const char *path)
{
	uint32_t bs = maptbl_hw_queue_block_size(q);
	FILE *f = fopen(path, "rb");
	uint8_t *buf = calloc(CHUNK_BLOCKS, bs);
	size_t got;
	int rc = 0;

	if (!f || !buf) {
		free(buf);
		if (f)
			fclose(f);
		fprintf(stderr, "maptbl-vfrw: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((got = fread(buf, 1, (size_t)CHUNK_BLOCKS * bs, f)) > 0) {
		uint64_t k = (got + bs - 1) / bs;
		struct maptbl_hw_io io = { .opcode = MAPTBL_OP_WRITE, .lba = lba, .nblocks = k,
					   .buf = buf, .timeout_ms = 30000 };
		int err;

		memset(buf + got, 0, (size_t)(k * bs - got));
		if ((err = maptbl_hw_queue_io(q, &io))) {
			rc = fail("write", err, &io);
			break;
		}
		lba += k;
	}
	free(buf);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	struct maptbl_hw *hw = NULL;
	struct maptbl_hw_queue *q = NULL;
	char *end;
	unsigned long vf;
	int err, rc;

	if (argc < 4 || ((strcmp(argv[3], "read") || argc != 4) &&
			 (strcmp(argv[3], "write") || argc != 6))) {
		fprintf(stderr, "usage: maptbl-vfrw DEV VF read > OUT\n"
				"       maptbl-vfrw DEV VF write LBA FILE\n");
		return 2;
	}
	vf = strtoul(argv[2], &end, 10);
	if (*end || vf < 1 || vf > 64) {
		fprintf(stderr, "maptbl-vfrw: '%s' is not a VF number from 1 to 64\n", argv[2]);
		return 2;
	}
	if ((err = maptbl_hw_open(argv[1], NULL, &hw))) {
		fprintf(stderr, "maptbl-vfrw: %s: %s\n", argv[1], strerror(-err));
		return 3;
	}
	if ((err = maptbl_hw_queue_open(hw, (unsigned)vf, 64, &q))) {
		maptbl_hw_close(hw);
		return fail("queue open", err, NULL);
	}
	if (!strcmp(argv[3], "read")) {
		rc = do_read(q);
	} else {
		uint64_t lba = strtoull(argv[4], &end, 0);

		rc = *end ? (fprintf(stderr, "maptbl-vfrw: '%s' is not a block\n", argv[4]), 2)
			  : do_write(q, lba, argv[5]);
	}
	maptbl_hw_queue_close(q);
	maptbl_hw_close(hw);
	return rc;
}
