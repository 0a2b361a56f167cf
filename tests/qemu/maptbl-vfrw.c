/* SPDX-License-Identifier: MIT */
/*
 * maptbl-vfrw - the VM's side of a VF in the QEMU guest test (tests/qemu/run.sh): read a whole
 * VF through its request/completion rings to standard output, or write a file into it at a
 * block, with libmaptbl-hw's queue API (the same path as the nbdkit plugin, on pci:/vfio:).
 *
 *   maptbl-vfrw [--table TABLE] DEV VF read          > OUT
 *   maptbl-vfrw [--table TABLE] DEV VF write LBA FILE
 *
 * --table gives VF VF the table file TABLE first, from this process's DMA memory, register by
 * register (REGISTERS.md §9.1: NUM_VFS, TABLE_BASE, TABLE_LEN, VIRT_BLOCKS, BLOCK_SIZE, CTRL).
 * This is a workaround, not a second driver: libmaptbl-hw's pci: backend unmaps a "persistent"
 * DMA buffer in pci_dma_free(), so after maptbl_hw_vf_push() (and 'maptbl push --hold') the
 * table's hugepage is back in the kernel's pool and the next allocation zeroes and reuses it.
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

/* Give VF @p vf the table in file @p path, from DMA memory that lives until maptbl_hw_close(). */
static int give_table(struct maptbl_hw *hw, unsigned vf, const char *path)
{
	struct maptbl_header h;
	struct maptbl_hw_dma *dma = NULL;
	uint32_t cfg = MAPTBL_REG_PF_VFCFG(vf), st = 0;
	FILE *f = fopen(path, "rb");
	long len;
	int err;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < (long)sizeof(h) || fseek(f, 0, SEEK_SET) ||
	    fread(&h, sizeof(h), 1, f) != 1 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "maptbl-vfrw: %s: cannot read a table header\n", path);
		if (f)
			fclose(f);
		return 1;
	}
	if ((err = maptbl_hw_dma_alloc(hw, (size_t)len, 0, &dma)) ||
	    fread(maptbl_hw_dma_ptr(dma), (size_t)len, 1, f) != 1) {
		fclose(f);
		return fail("table DMA memory", err ? err : -EIO, NULL);
	}
	fclose(f);
	if ((err = maptbl_hw_set_num_vfs(hw, vf)) ||
	    (err = maptbl_hw_write32(hw, 0, cfg + MAPTBL_VFCFG_CTRL, 0)) ||
	    (err = maptbl_hw_write64(hw, 0, cfg + MAPTBL_VFCFG_TABLE_BASE, maptbl_hw_dma_addr(dma))) ||
	    (err = maptbl_hw_write64(hw, 0, cfg + MAPTBL_VFCFG_TABLE_LEN, (uint64_t)len)) ||
	    (err = maptbl_hw_write64(hw, 0, cfg + MAPTBL_VFCFG_VIRT_BLOCKS,
				     maptbl_le64_to_cpu(h.virtual_blocks))) ||
	    (err = maptbl_hw_write32(hw, 0, cfg + MAPTBL_VFCFG_BLOCK_SIZE,
				     maptbl_le32_to_cpu(h.block_size))) ||
	    (err = maptbl_hw_write32(hw, 0, cfg + MAPTBL_VFCFG_CTRL, MAPTBL_VFCFG_CTRL_ENABLE)) ||
	    (err = maptbl_hw_read32(hw, 0, cfg + MAPTBL_VFCFG_STATUS, &st)))
		return fail("table registers", err, NULL);
	if (!(st & MAPTBL_VFCFG_STATUS_ENABLED)) {
		fprintf(stderr, "maptbl-vfrw: VF %u refused %s: %s\n", vf, path,
			maptbl_hw_terr_name(st >> MAPTBL_VFCFG_STATUS_TERR_SHIFT &
					    MAPTBL_VFCFG_STATUS_TERR_MASK));
		return 1;
	}
	return 0;	/* dma is freed by maptbl_hw_close() */
}

int main(int argc, char **argv)
{
	const char *table = NULL;
	struct maptbl_hw *hw = NULL;
	struct maptbl_hw_queue *q = NULL;
	char *end;
	unsigned long vf;
	int err, rc;

	if (argc > 2 && !strcmp(argv[1], "--table")) {
		table = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4 || ((strcmp(argv[3], "read") || argc != 4) &&
			 (strcmp(argv[3], "write") || argc != 6))) {
		fprintf(stderr, "usage: maptbl-vfrw [--table TABLE] DEV VF read > OUT\n"
				"       maptbl-vfrw [--table TABLE] DEV VF write LBA FILE\n");
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
	if (table && (rc = give_table(hw, (unsigned)vf, table))) {
		maptbl_hw_close(hw);
		return rc;
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
