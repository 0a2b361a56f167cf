/* SPDX-License-Identifier: MIT */
/*
 * cmd_cat.c - maptbl cat: the virtual disk read through a table, as the device's read path does:
 * mapped blocks from the disk at the translated offsets, holes and unwritten ranges as zeros, up
 * to the virtual size. An absent (pruned) range cannot be read: the device would fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <maptbl/fs.h>

#include "cli.h"

static const char *const cat_usage[] = {
	"maptbl cat TABLE [--device DEV] [-o OUT]",
	"read the virtual disk through a table",
	"",
	"Writes the virtual disk of TABLE: mapped blocks read from DEV at their physical",
	"addresses, holes and unwritten blocks as zeros, up to the virtual disk size. This is",
	"the device's read path in software: 'maptbl cat T --device D | cmp - FILE' checks a",
	"table against the file it was built from. DEV defaults to the disk recorded in TABLE.",
	"OUT is written atomically (and sparse); the default is standard output.",
	"",
	"Options:",
	"  -D, --device DEV    the disk (block device or image file) the table maps",
	"  -o, --output OUT    write here instead of standard output",
	"  -h, --help          this text",
	NULL,
};

#define CHUNK (1u << 20)

struct cat {
	struct cli *cli;
	int dev, out;
	bool sparse;		/* out is a regular file: skip zeros */
	bool own_out;		/* out is a device or FIFO we opened */
	const char *dev_path;
	uint64_t bs, pos;	/* next logical block to emit */
	uint64_t dev_size;
	uint8_t *buf, *zero;
	int status;
};

static int put(struct cat *c, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = c->sparse ? pwrite(c->out, p, n, (off_t)off) : write(c->out, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		off += (uint64_t)w;
		n -= (size_t)w;
	}
	return 0;
}

static int zeros(struct cat *c, uint64_t blocks)
{
	uint64_t bytes = blocks * c->bs, off = c->pos * c->bs;
	int err = 0;

	c->pos += blocks;
	if (c->sparse)
		return 0; /* ftruncate at the end leaves the hole */
	while (bytes && !err) {
		size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK;

		err = put(c, c->zero, n, off);
		bytes -= n;
		off += n;
	}
	return err;
}

static int emit(void *ctx, const struct maptbl_extent *e)
{
	struct cat *c = ctx;
	uint64_t bytes = e->len * c->bs, src = e->pblk * c->bs, off = e->lblk * c->bs;
	int err;

	if ((err = zeros(c, e->lblk - c->pos)))
		return err;
	if (e->flags & MAPTBL_EXTENT_ABSENT) {
		cli_error(c->cli, "blocks %llu..%llu are absent (a pruned subtree): the device would fault",
			  (unsigned long long)e->lblk, (unsigned long long)(e->lblk + e->len - 1));
		c->status = EXIT_FAILED;
		return -ENODATA;
	}
	if (e->flags & MAPTBL_EXTENT_UNWRITTEN)
		return zeros(c, e->len);
	if (src + bytes > c->dev_size) {
		cli_error(c->cli, "%s: blocks %llu..%llu of the table lie past its end (%llu bytes)",
			  c->dev_path, (unsigned long long)e->pblk,
			  (unsigned long long)(e->pblk + e->len - 1), (unsigned long long)c->dev_size);
		c->status = EXIT_FAILED;
		return -ERANGE;
	}
	while (bytes) {
		size_t n = bytes < CHUNK ? (size_t)bytes : CHUNK;
		ssize_t r = pread(c->dev, c->buf, n, (off_t)src);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			cli_error(c->cli, "%s: read at byte %llu: %s", c->dev_path,
				  (unsigned long long)src, r < 0 ? strerror(errno) : "unexpected end");
			c->status = EXIT_NOCHECK;
			return -EIO;
		}
		if ((err = put(c, c->buf, (size_t)r, off)))
			return err;
		src += (uint64_t)r;
		off += (uint64_t)r;
		bytes -= (uint64_t)r;
	}
	c->pos = e->lblk + e->len;
	return 0;
}

static int do_cat(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'D' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev_path = NULL, *out_path = NULL, *path;
	struct cat c = { .cli = cli, .dev = -1, .out = STDOUT_FILENO };
	struct maptbl_table *t = NULL;
	char *tmp = NULL;
	struct stat st;
	int ch, err, status;

	(void)cmd;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":D:o:", opts, NULL)) != -1) {
		if (ch == 'D')
			dev_path = optarg;
		else if (ch == 'o')
			out_path = optarg;
		else
			return cli_bad_option(cli, ch, argv);
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "need exactly one TABLE");
	path = argv[optind];
	status = cli_open_table(cli, path, &t);
	if (status)
		return status;
	if (!dev_path)
		dev_path = maptbl_table_disk_path(t);
	if (!dev_path || !*dev_path) {
		cli_error(cli, "%s: records no disk: give --device DEV", path);
		status = EXIT_USAGE;
		goto out;
	}
	c.dev_path = dev_path;
	if (maptbl_table_disk_id(t)) {
		uint64_t id = 0;

		/* Read the disk the table maps, not another one at the same path. */
		if (maptbl_fs_disk_id(dev_path, &id) == 0 && id != maptbl_table_disk_id(t)) {
			cli_error(cli, "%s: not the disk %s maps (recorded: %s)", dev_path, path,
				  maptbl_table_disk_path(t) ? maptbl_table_disk_path(t) : "-");
			status = EXIT_FAILED;
			goto out;
		}
	}
	c.bs = maptbl_table_block_size(t);
	c.dev = open(dev_path, O_RDONLY | O_CLOEXEC);
	if (c.dev < 0 || fstat(c.dev, &st) < 0) {
		cli_error(cli, "%s: %s", dev_path, strerror(errno));
		status = EXIT_NOCHECK;
		goto out;
	}
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(c.dev, 0, SEEK_END);

		c.dev_size = end < 0 ? 0 : (uint64_t)end;
	} else {
		c.dev_size = (uint64_t)st.st_size;
	}
	c.buf = malloc(CHUNK);
	c.zero = calloc(1, CHUNK);
	if (!c.buf || !c.zero) {
		cli_error(cli, "out of memory");
		status = EXIT_FAILED;
		goto out;
	}
	if (out_path && strcmp(out_path, "-") && stat(out_path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A device or FIFO is written in place, never replaced by a rename. */
		c.out = open(out_path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (c.out < 0) {
			cli_error(cli, "%s: %s", out_path, strerror(errno));
			status = EXIT_FAILED;
			goto out;
		}
		c.own_out = true;
	} else if (out_path && strcmp(out_path, "-")) {
		if (asprintf(&tmp, "%s.tmp.XXXXXX", out_path) < 0 ||
		    (c.out = mkostemp(tmp, O_CLOEXEC)) < 0) {
			cli_error(cli, "%s: %s", out_path, strerror(errno));
			free(tmp);
			tmp = NULL;
			c.out = -1;
			status = EXIT_FAILED;
			goto out;
		}
		c.sparse = true;
	}
	fflush(stdout);
	err = maptbl_table_iterate(t, emit, &c);
	if (!err)
		err = zeros(&c, maptbl_table_virtual_blocks(t) - c.pos);
	if (!err && c.sparse) {
		mode_t um = umask(022);

		umask(um);
		if (ftruncate(c.out, (off_t)(maptbl_table_virtual_blocks(t) * c.bs)) < 0 ||
		    fchmod(c.out, 0666 & ~um) < 0 || fsync(c.out) < 0 || rename(tmp, out_path) < 0)
			err = -errno;
	}
	if (err) {
		if (!c.status) {
			cli_error(cli, "%s: %s", out_path ? out_path : "standard output", strerror(-err));
			c.status = EXIT_FAILED;
		}
		status = c.status;
		goto out;
	}
	status = EXIT_OK;
out:
	if (tmp) {
		if (status)
			unlink(tmp);
		free(tmp);
	}
	if ((c.sparse || c.own_out) && c.out >= 0)
		close(c.out);
	if (c.dev >= 0)
		close(c.dev);
	free(c.buf);
	free(c.zero);
	maptbl_table_free(t);
	return status;
}

const struct maptbl_cmd cmd_cat = {
	.name = "cat",
	.fn = do_cat,
	.usage = cat_usage,
	.flags = CMD_WRITES,
};
