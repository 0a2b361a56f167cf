/* SPDX-License-Identifier: MIT */
/*
 * cmd_verify.c - maptbl verify: check tables completely (maptbl_table_open does every check of
 * docs/FORMAT.md), report the first problem and its byte offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const verify_usage[] = {
	"maptbl verify [--json] [-q] TABLE...",
	"check tables against every rule of the format",
	"",
	"Exit status 0 only when every TABLE is valid. Otherwise each bad table gets one line",
	"with the first problem found and its byte offset, and the status is that of the first",
	"failure: 1 invalid, 3 could not check (unreadable, unsupported feature).",
	"",
	"Options:",
	"  --json        one JSON object per table, in a JSON array",
	"  -q, --quiet   print only problems",
	"  -h, --help    this text",
	NULL,
};

static int verify_one(struct cli *cli, const char *path, bool quiet, bool first)
{
	struct maptbl_open_opts oo;
	struct maptbl_table *t = NULL;
	struct maptbl_diag diag;
	const char *verdict;
	struct maptbl_stats st;
	uint8_t *buf;
	size_t len;
	int err, status;

	memset(&diag, 0, sizeof(diag));
	err = cli_read_file(path, &buf, &len);
	if (!err) {
		maptbl_open_opts_init(&oo, sizeof(oo));
		oo.diag = &diag;
		err = maptbl_table_open(buf, len, &oo, &t);
		free(buf);
		status = !err ? EXIT_OK : err == -EBADMSG ? EXIT_FAILED : EXIT_NOCHECK;
		verdict = !err ? "ok" : err == -EBADMSG ? "invalid" : "unsupported";
	} else {
		snprintf(diag.reason, sizeof(diag.reason), "%s", strerror(-err));
		status = EXIT_NOCHECK;
		verdict = "unreadable";
	}
	if (!err)
		maptbl_table_stats(t, &st, sizeof(st));

	if (cli->json) {
		printf("%s{\"table\":", first ? "" : ",");
		json_str(stdout, path);
		printf(",\"status\":\"%s\"", verdict);
		if (err && status == EXIT_FAILED)
			printf(",\"offset\":%llu", (unsigned long long)diag.offset);
		if (err) {
			printf(",\"reason\":");
			json_str(stdout, diag.reason);
		} else {
			printf(",\"extents\":%llu,\"nodes\":%llu,\"depth\":%u,\"bytes\":%zu,\"readonly\":%s",
			       (unsigned long long)st.nr_extents, (unsigned long long)st.nr_nodes,
			       st.depth, maptbl_table_len(t),
			       maptbl_table_readonly(t) ? "true" : "false");
		}
		printf("}");
	} else if (err) {
		if (status == EXIT_FAILED)
			fprintf(stderr, "%s: invalid: %s (at byte offset %llu)\n", path, diag.reason,
				(unsigned long long)diag.offset);
		else
			fprintf(stderr, "%s: could not check: %s\n", path, diag.reason);
	} else if (!quiet) {
		printf("%s: ok: %llu extent%s, %llu node%s, depth %u, %zu bytes%s\n", path,
		       (unsigned long long)st.nr_extents, st.nr_extents == 1 ? "" : "s",
		       (unsigned long long)st.nr_nodes, st.nr_nodes == 1 ? "" : "s", st.depth,
		       maptbl_table_len(t),
		       maptbl_table_readonly(t) ? " (read-only: unknown ro_compat features)" : "");
	}
	maptbl_table_free(t);
	return status;
}

static int do_verify(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	bool quiet = false;
	int c, i, status = EXIT_OK;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":q", opts, NULL)) != -1) {
		if (c == 'j')
			cli->json = true;
		else if (c == 'q')
			quiet = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	if (optind >= argc)
		return cli_usage_error(cli, "no TABLE given");
	if (cli->json)
		printf("[");
	/* Keep going after a failure; the first one decides the status. */
	for (i = optind; i < argc; i++) {
		int st = verify_one(cli, argv[i], quiet, i == optind);

		if (st && !status)
			status = st;
	}
	if (cli->json)
		printf("]\n");
	return status;
}

const struct maptbl_cmd cmd_verify = {
	.name = "verify",
	.fn = do_verify,
	.usage = verify_usage,
	.flags = CMD_JSON,
};
