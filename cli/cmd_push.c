/* SPDX-License-Identifier: MIT */
/*
 * cmd_push.c - maptbl push: give a VF of a device a table (docs/REGISTERS.md §5, §11.4), and the
 * device helpers the vf commands share (cli_open_hw, cli_hw_error).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <maptbl/hw.h>

#include "cli.h"

int cli_hw_error(struct cli *cli, int err, const char *fmt, ...)
{
	char what[600];
	const char *why = cli_last_log();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* The library's message says more than errno, when it is about this failure. */
	cli_error(cli, "%s: %s", what, why ? why : strerror(-err));
	switch (err) {
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -EIO:
	case -EPROTO:
	case -EACCES:
	case -EPERM:
		return EXIT_NOCHECK;
	default:
		return EXIT_FAILED;
	}
}

int cli_open_hw(struct cli *cli, const char *dev, struct maptbl_hw **out)
{
	int err;

	if (!dev)
		dev = getenv("MAPTBL_DEV");
	if (!dev || !*dev)
		return cli_usage_error(cli, "no device: give --dev DEV (emu:SOCKET, pci:BDF, vfio:BDF) or set MAPTBL_DEV");
	err = maptbl_hw_open(dev, NULL, out);
	if (err)
		return cli_hw_error(cli, err, "%s", dev);
	return EXIT_OK;
}

static const char *const push_usage[] = {
	"maptbl push --dev DEV --vf N TABLE [--size SIZE] [--read-only] [--check-crc] [--hold]",
	"give VF N of a device the table TABLE",
	"",
	"TABLE (a file written by 'maptbl build') is copied into the device's DMA memory and",
	"VF N is pointed at it: table base, length, virtual size and block size, then enable.",
	"The device checks the table header and refuses a bad one. A VF that has a table already",
	"gets the new one without stopping (WALK_AGAIN): this is also how a stalled write is",
	"released after the host mapped the blocks. With the emulator the table stays in its",
	"shared memory after this command exits, until 'maptbl vf destroy' or the next push.",
	"",
	"Options:",
	"  -D, --dev DEV        the device: emu:SOCKET, pci:BDF or vfio:BDF (default $MAPTBL_DEV)",
	"  -n, --vf N           the VF, 1..64",
	"  -s, --size SIZE      virtual disk size in bytes (K/M/G/T suffixes), a multiple of the",
	"                       block size, at least the table's (default: the table's)",
	"  -r, --read-only      the VF refuses writes",
	"  -c, --check-crc      the device checks the table's CRC32C checksums",
	"  -H, --hold           stay until SIGINT or SIGTERM, then destroy the VF (needed where",
	"                       DMA memory dies with the process: pci:, vfio:)",
	"  -h, --help           this text",
	"",
	"Exit status: 0 pushed, 1 refused or failed, 2 usage error, 3 device unreachable.",
	NULL,
};

/* Virtual size option in blocks of @bs. Returns an exit status. */
static int parse_vsize(struct cli *cli, const char *arg, uint32_t bs, uint64_t *blocks)
{
	uint64_t bytes;

	if (cli_parse_size(arg, &bytes) || !bytes)
		return cli_usage_error(cli, "--size '%s' is not a size", arg);
	if (bytes % bs)
		return cli_usage_error(cli, "--size %s is not a multiple of the block size %u", arg, bs);
	*blocks = bytes / bs;
	return EXIT_OK;
}

static int do_push(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'D' },
		{ "vf", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "check-crc", no_argument, NULL, 'c' },
		{ "hold", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev = NULL, *size = NULL, *path;
	struct maptbl_hw_push_opts po;
	struct maptbl_table *t = NULL;
	struct maptbl_hw *hw = NULL;
	uint64_t vf = 0;
	bool hold = false;
	char label[PATH_MAX];
	int c, err, status;

	(void)cmd;
	maptbl_hw_push_opts_init(&po, sizeof(po));
	optind = 0;
	while ((c = getopt_long(argc, argv, ":D:n:s:rcH", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dev = optarg;
			break;
		case 'n':
			if (cli_parse_u64(optarg, &vf) || vf < 1 || vf > MAPTBL_HW_MAX_VFS)
				return cli_usage_error(cli, "--vf '%s' is not a VF number from 1 to 64", optarg);
			break;
		case 's':
			size = optarg;
			break;
		case 'r':
			po.read_only = true;
			break;
		case 'c':
			po.check_crc = true;
			break;
		case 'H':
			hold = true;
			break;
		default:
			return cli_bad_option(cli, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error(cli, "need a TABLE");
	path = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!vf)
		return cli_usage_error(cli, "--vf N is required");

	status = cli_open_table(cli, path, &t);
	if (status)
		return status;
	if (size && (status = parse_vsize(cli, size, maptbl_table_block_size(t), &po.virt_blocks)))
		goto out;
	if (po.virt_blocks && po.virt_blocks < maptbl_table_virtual_blocks(t)) {
		status = cli_usage_error(cli, "--size %s is smaller than the table's virtual disk (%llu blocks of %u)",
					 size, (unsigned long long)maptbl_table_virtual_blocks(t),
					 maptbl_table_block_size(t));
		goto out;
	}
	status = cli_open_hw(cli, dev, &hw);
	if (status)
		goto out;
	po.label = realpath(path, label) ? label : path;
	err = maptbl_hw_vf_push(hw, (unsigned)vf, t, &po);
	if (err) {
		status = cli_hw_error(cli, err, "%s: push to VF %llu", path, (unsigned long long)vf);
		goto out;
	}
	if (hold) {
		sigset_t s;
		int sig;

		sigemptyset(&s);
		sigaddset(&s, SIGINT);
		sigaddset(&s, SIGTERM);
		sigprocmask(SIG_BLOCK, &s, NULL);
		fprintf(stderr, "maptbl push: VF %llu holds %s; SIGINT or SIGTERM ends it\n",
			(unsigned long long)vf, path);
		sigwait(&s, &sig);
		err = maptbl_hw_vf_destroy(hw, (unsigned)vf);
		if (err)
			status = cli_hw_error(cli, err, "VF %llu: destroy", (unsigned long long)vf);
	}
out:
	maptbl_hw_close(hw);
	maptbl_table_free(t);
	return status;
}

const struct maptbl_cmd cmd_push = {
	.name = "push",
	.fn = do_push,
	.usage = push_usage,
};
