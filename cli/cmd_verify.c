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

#include <maptbl/fs.h>

#include "cli.h"

static const char *const verify_usage[] = {
	"maptbl verify [--json] [-q] TABLE...\n"
	"       maptbl verify TABLE --against FILE [--image IMG]",
	"check tables against every rule of the format, or against a file",
	"",
	"With --against, the table must also still match FILE's current layout: the same",
	"extents on the same disk. Defragmentation, truncation, hole punching, reflinks or a",
	"btrfs balance after the build move data; the first difference is reported (status 1).",
	"",
	"Exit status 0 only when every TABLE is valid. Otherwise each bad table gets one line",
	"with the first problem found and its byte offset, and the status is that of the first",
	"failure: 1 invalid, 3 could not check (unreadable, unsupported feature).",
	"",
	"Options:",
	"  --json        one JSON object per table, in a JSON array",
	"  -q, --quiet   print only problems",
	"  -a, --against FILE   compare with FILE's current extents",
	"  -i, --image IMG      with --against: FILE is a path inside this ext4 image",
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

struct collect {
	struct maptbl_extent *e;
	size_t n, cap;
};

static int collect(void *ctx, const struct maptbl_extent *e)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024;
		struct maptbl_extent *ne = realloc(c->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		c->e = ne;
		c->cap = cap;
	}
	c->e[c->n++] = *e;
	return 0;
}

static void describe(char *buf, size_t len, const struct maptbl_extent *e)
{
	if (!e)
		snprintf(buf, len, "nothing");
	else
		snprintf(buf, len, "blocks %llu..%llu at %llu%s", (unsigned long long)e->lblk,
			 (unsigned long long)(e->lblk + e->len - 1), (unsigned long long)e->pblk,
			 e->flags & MAPTBL_EXTENT_UNWRITTEN ? " (unwritten)" :
			 e->flags & MAPTBL_EXTENT_ABSENT ? " (absent)" : "");
}

/* verify TABLE --against FILE: the table still describes FILE's layout. */
static int verify_against(struct cli *cli, const char *path, const char *file, const char *image)
{
	struct maptbl_fs_map *fm = NULL;
	struct maptbl_table *t = NULL;
	struct maptbl_fs_opts fo;
	struct collect c = { 0 };
	const struct maptbl_extent *fe;
	const char *disk;
	size_t nf, i;
	int err, status;

	status = cli_open_table(cli, path, &t);
	if (status)
		return status;
	maptbl_fs_opts_init(&fo, sizeof(fo));
	fo.block_size = maptbl_table_block_size(t);
	fo.image = image;
	err = maptbl_fs_map_file(file, &fo, &fm);
	if (err) {
		if (cli_last_log())
			cli_error(cli, "%s", cli_last_log());
		else
			cli_error(cli, "%s: %s", file, strerror(-err));
		status = EXIT_NOCHECK;
		goto out;
	}
	disk = maptbl_table_disk_path(t);
	if (disk && *disk && strcmp(disk, maptbl_fs_map_disk(fm))) {
		cli_error(cli, "%s: stale: it maps disk %s, but %s is now on %s", path, disk, file,
			  maptbl_fs_map_disk(fm));
		status = EXIT_FAILED;
		goto out;
	}
	if (maptbl_fs_map_file_size(fm) > maptbl_table_virtual_blocks(t) * maptbl_table_block_size(t)) {
		cli_error(cli, "%s: stale: %s has grown to %llu bytes, past the virtual disk", path,
			  file, (unsigned long long)maptbl_fs_map_file_size(fm));
		status = EXIT_FAILED;
		goto out;
	}
	/* What the rules now refuse first: it explains a missing extent better than a diff. */
	for (i = 0; i < maptbl_fs_map_nr_findings(fm); i++) {
		const struct maptbl_fs_finding *f = maptbl_fs_map_finding(fm, i);

		if (f->refuses & (maptbl_table_readonly(t) ? MAPTBL_FS_REFUSES_READONLY
							    : MAPTBL_FS_REFUSES_WRITABLE)) {
			cli_error(cli, "%s: %s: bytes %llu..%llu are now %s", path, file,
				  (unsigned long long)f->offset,
				  (unsigned long long)(f->offset + f->length - 1),
				  maptbl_fs_rule_name(f->rule));
			status = EXIT_FAILED;
			goto out;
		}
	}
	err = maptbl_table_iterate(t, collect, &c);
	if (err) {
		cli_error(cli, "out of memory");
		status = EXIT_FAILED;
		goto out;
	}
	fe = maptbl_fs_map_extents(fm, &nf);
	for (i = 0; i < c.n || i < nf; i++) {
		const struct maptbl_extent *a = i < c.n ? &c.e[i] : NULL, *b = i < nf ? &fe[i] : NULL;
		char da[128], db[128];

		if (a && b && a->lblk == b->lblk && a->pblk == b->pblk && a->len == b->len &&
		    a->flags == b->flags)
			continue;
		describe(da, sizeof(da), a);
		describe(db, sizeof(db), b);
		cli_error(cli, "%s: stale: extent %zu: the table maps %s, %s now maps %s", path, i, da,
			  file, db);
		status = EXIT_FAILED;
		goto out;
	}
	if (!cli->json)
		printf("%s: ok: matches %s (%zu extents on %s)\n", path, file, nf,
		       maptbl_fs_map_disk(fm));
	else {
		printf("[{\"table\":");
		json_str(stdout, path);
		printf(",\"status\":\"ok\",\"against\":");
		json_str(stdout, file);
		printf("}]\n");
	}
	status = EXIT_OK;
out:
	free(c.e);
	maptbl_fs_map_free(fm);
	maptbl_table_free(t);
	return status;
}

static int do_verify(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "against", required_argument, NULL, 'a' },
		{ "image", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *against = NULL, *image = NULL;
	bool quiet = false;
	int c, i, status = EXIT_OK;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":qa:i:", opts, NULL)) != -1) {
		if (c == 'j')
			cli->json = true;
		else if (c == 'q')
			quiet = true;
		else if (c == 'a')
			against = optarg;
		else if (c == 'i')
			image = optarg;
		else
			return cli_bad_option(cli, c, argv);
	}
	if (optind >= argc)
		return cli_usage_error(cli, "no TABLE given");
	if (image && !against)
		return cli_usage_error(cli, "--image needs --against FILE");
	if (against) {
		if (argc - optind != 1)
			return cli_usage_error(cli, "--against checks exactly one TABLE");
		return verify_against(cli, argv[optind], against, image);
	}
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
