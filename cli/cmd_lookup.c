/* SPDX-License-Identifier: MIT */
/*
 * cmd_lookup.c - maptbl lookup: translate logical blocks as the device would.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const lookup_usage[] = {
	"maptbl lookup [--json] [-X] TABLE LBA...",
	"translate logical blocks through a table",
	"",
	"One line per LBA (decimal or 0x hex): its state (mapped, unwritten, hole or absent),",
	"the physical block, the run of blocks left in that state, and the number of table",
	"nodes a device walk reads. An LBA past the virtual disk is an error (status 1);",
	"the other LBAs are still looked up.",
	"",
	"Options:",
	"  --json        a JSON object",
	"  -X, --hex     numbers in hex",
	"  -h, --help    this text",
	NULL,
};

/* Width of a number as printed: hex gets its 0x prefix. */
static int ndigits(uint64_t v, bool hex)
{
	return cli_digits(v, hex) + (hex ? 2 : 0);
}

static void put_num(uint64_t v, int w, bool hex)
{
	if (hex)
		printf("%*s0x%llx", w - ndigits(v, true), "", (unsigned long long)v);
	else
		printf("%*llu", w, (unsigned long long)v);
}

static int do_lookup(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "hex", no_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i, n, status, wl = 3, ws = 5, wp = 4, wr = 3;
	struct maptbl_mapping *m = NULL;
	struct maptbl_table *t = NULL;
	uint64_t *lba = NULL;
	int *rc = NULL;
	bool hex = false;
	const char *path;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":X", opts, NULL)) != -1) {
		if (c == 'j')
			cli->json = true;
		else if (c == 'X')
			hex = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	if (argc - optind < 2)
		return cli_usage_error(cli, "need a TABLE and at least one LBA");
	path = argv[optind++];
	n = argc - optind;
	lba = calloc((size_t)n, sizeof(*lba));
	m = calloc((size_t)n, sizeof(*m));
	rc = calloc((size_t)n, sizeof(*rc));
	if (!lba || !m || !rc) {
		cli_error(cli, "out of memory");
		status = EXIT_FAILED;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (cli_parse_u64(argv[optind + i], &lba[i])) {
			status = cli_usage_error(cli, "LBA '%s' is not a block number", argv[optind + i]);
			goto out;
		}
	}
	status = cli_open_table(cli, path, &t);
	if (status)
		goto out;
	for (i = 0; i < n; i++) {
		rc[i] = maptbl_table_lookup(t, lba[i], &m[i]);
		if (rc[i] && !status)
			status = EXIT_FAILED;
		if (ndigits(lba[i], hex) > wl)
			wl = ndigits(lba[i], hex);
		if (rc[i]) {
			if (ws < 12)
				ws = 12; /* "out-of-range" */
			continue;
		}
		if (ndigits(m[i].pblk, hex) > wp)
			wp = ndigits(m[i].pblk, hex);
		if (ndigits(m[i].len, hex) > wr)
			wr = ndigits(m[i].len, hex);
		if ((int)strlen(cli_state_name(m[i].state)) > ws)
			ws = (int)strlen(cli_state_name(m[i].state));
	}
	if (cli->json) {
		printf("{\"table\":");
		json_str(stdout, path);
		printf(",\"virtual_blocks\":%llu,\"lookups\":[",
		       (unsigned long long)maptbl_table_virtual_blocks(t));
		for (i = 0; i < n; i++) {
			printf("%s{\"lba\":%llu,", i ? "," : "", (unsigned long long)lba[i]);
			if (rc[i]) {
				printf("\"error\":\"past the end of the virtual disk\"}");
				continue;
			}
			printf("\"state\":\"%s\",", cli_state_name(m[i].state));
			if (m[i].state == MAPTBL_MAP_MAPPED || m[i].state == MAPTBL_MAP_UNWRITTEN)
				printf("\"pblk\":%llu,", (unsigned long long)m[i].pblk);
			else
				printf("\"pblk\":null,");
			printf("\"run\":%llu,\"nodes\":%u}", (unsigned long long)m[i].len, m[i].nodes);
		}
		printf("]}\n");
		goto out;
	}
	printf("%*s  %-*s  %*s  %*s  %s\n", wl, "LBA", ws, "STATE", wp, "PBLK", wr, "RUN", "NODES");
	for (i = 0; i < n; i++) {
		put_num(lba[i], wl, hex);
		if (rc[i]) {
			printf("  %-*s\n", ws, "out-of-range");
			continue;
		}
		printf("  %-*s  ", ws, cli_state_name(m[i].state));
		if (m[i].state == MAPTBL_MAP_MAPPED || m[i].state == MAPTBL_MAP_UNWRITTEN)
			put_num(m[i].pblk, wp, hex);
		else
			printf("%*s", wp, "-");
		printf("  ");
		put_num(m[i].len, wr, hex);
		printf("  %5u\n", m[i].nodes);
	}
	for (i = 0; i < n; i++)
		if (rc[i])
			cli_error(cli, "%s: LBA %llu is past the end of the virtual disk (%llu blocks)",
				  path, (unsigned long long)lba[i],
				  (unsigned long long)maptbl_table_virtual_blocks(t));
out:
	maptbl_table_free(t);
	free(lba);
	free(m);
	free(rc);
	return status;
}

const struct maptbl_cmd cmd_lookup = {
	.name = "lookup",
	.fn = do_lookup,
	.usage = lookup_usage,
	.flags = CMD_JSON,
};
