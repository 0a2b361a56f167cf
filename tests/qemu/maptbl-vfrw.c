/* SPDX-License-Identifier: MIT */
/*
 * maptbl-vfrw - the VM's side of a VF in the QEMU guest test (tests/qemu/run.sh): read a whole
 * VF through its request/completion rings to standard output, or write a file into it at a
 * block, with libmaptbl-hw's queue API (the same path as the nbdkit plugin, on pci:/vfio:).
 *
 *   maptbl-vfrw [--push TABLE] DEV VF read          > OUT
 *   maptbl-vfrw [--push TABLE] DEV VF write LBA FILE
 *
 * --push pushes the table file TABLE to VF VF first, with maptbl_hw_vf_push() in this process:
 * on vfio: one process holds the PF's IOMMU group and its VF token, so pushing and reading the
 * VF happen in the same process (the table lives until the process ends). Every I/O waits at
 * most MAPTBL_VFRW_TIMEOUT_MS (default 30000) milliseconds.
 *
 * Exit: 0 done, 1 the device refused or failed (the status is printed), 2 usage, 3 the device
 * could not be opened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maptbl/format.h>
#include <maptbl/hw.h>
#include <maptbl/maptbl.h>

#define CHUNK_BLOCKS 256u

static int io_timeout(void)
{
	const char *e = getenv("MAPTBL_VFRW_TIMEOUT_MS");

	return e && atoi(e) > 0 ? atoi(e) : 30000;
}

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
					   .buf = buf, .timeout_ms = io_timeout() };
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
					   .buf = buf, .timeout_ms = io_timeout() };
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

/*
 * Push the table in file @p path to VF @p vf with maptbl_hw_vf_push() (the library's path, as
 * 'maptbl push'): its DMA memory lives until maptbl_hw_close(), *t until the caller frees it.
 */
static int push_table(struct maptbl_hw *hw, unsigned vf, const char *path, void **buf,
		      struct maptbl_table **t)
{
	struct maptbl_hw_push_opts po;
	FILE *f = fopen(path, "rb");
	long len = -1;
	int err;

	if (f && !fseek(f, 0, SEEK_END) && (len = ftell(f)) > 0 && !fseek(f, 0, SEEK_SET) &&
	    (*buf = malloc((size_t)len)) && fread(*buf, (size_t)len, 1, f) != 1)
		len = -1;
	if (f)
		fclose(f);
	if (len <= 0 || !*buf) {
		fprintf(stderr, "maptbl-vfrw: %s: cannot read the table\n", path);
		return 1;
	}
	if ((err = maptbl_table_open(*buf, (size_t)len, NULL, t))) {
		fprintf(stderr, "maptbl-vfrw: %s: not a table: %s\n", path, strerror(-err));
		return 1;
	}
	maptbl_hw_push_opts_init(&po, sizeof(po));
	po.label = path;
	if ((err = maptbl_hw_vf_push(hw, vf, *t, &po)))
		return fail("push", err, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	const char *table = NULL;
	struct maptbl_hw *hw = NULL;
	struct maptbl_table *t = NULL;
	void *tbuf = NULL;
	struct maptbl_hw_queue *q = NULL;
	char *end;
	unsigned long vf;
	int err, rc;

	if (argc > 2 && !strcmp(argv[1], "--push")) {
		table = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4 || ((strcmp(argv[3], "read") || argc != 4) &&
			 (strcmp(argv[3], "write") || argc != 6))) {
		fprintf(stderr, "usage: maptbl-vfrw [--push TABLE] DEV VF read > OUT\n"
				"       maptbl-vfrw [--push TABLE] DEV VF write LBA FILE\n");
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
	if (table && (rc = push_table(hw, (unsigned)vf, table, &tbuf, &t)))
		goto out;
	if ((err = maptbl_hw_queue_open(hw, (unsigned)vf, 64, &q))) {
		rc = fail("queue open", err, NULL);
		goto out;
	}
	if (!strcmp(argv[3], "read")) {
		rc = do_read(q);
	} else {
		uint64_t lba = strtoull(argv[4], &end, 0);

		rc = *end ? (fprintf(stderr, "maptbl-vfrw: '%s' is not a block\n", argv[4]), 2)
			  : do_write(q, lba, argv[5]);
	}
	maptbl_hw_queue_close(q);
out:
	maptbl_hw_close(hw);
	maptbl_table_free(t);
	free(tbuf);
	return rc;
}
