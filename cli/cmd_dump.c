/* SPDX-License-Identifier: MIT */
/*
 * cmd_dump.c - maptbl dump: header, tree shape per level, and the extents in filefrag's layout
 * (column widths from the largest value, flags as names).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const dump_usage[] = {
	"maptbl dump [--json] [-X] TABLE",
	"print a table's header, tree shape and extents",
	"",
	"The table is checked completely first; an invalid table is not dumped (status 1).",
	"",
	"Options:",
	"  --json        a JSON object",
	"  -X, --hex     numbers in hex",
	"  -h, --help    this text",
	NULL,
};

struct widths {
	uint64_t max_l, max_p, max_len, n;
	int wi, wl, wp, wn;
	bool hex;
	bool json;
	uint64_t i, total;
};

static void num(uint64_t v, int w, bool hex)
{
	printf(hex ? "%*llx" : "%*llu", w, (unsigned long long)v);
}

static int measure(void *ctx, const struct maptbl_extent *e)
{
	struct widths *w = ctx;
	uint64_t lend = e->lblk + e->len - 1, pend = e->pblk + e->len - 1;

	if (lend > w->max_l)
		w->max_l = lend;
	if (!(e->flags & MAPTBL_EXTENT_ABSENT) && pend > w->max_p)
		w->max_p = pend;
	if (e->len > w->max_len)
		w->max_len = e->len;
	w->n++;
	return 0;
}

static void flag_names(const struct maptbl_extent *e, bool last, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", e->flags & MAPTBL_EXTENT_UNWRITTEN ? "unwritten" : "",
		 e->flags & MAPTBL_EXTENT_ABSENT ? "absent" : "",
		 last ? (e->flags ? ",last" : "last") : "");
}

static int print_extent(void *ctx, const struct maptbl_extent *e)
{
	struct widths *w = ctx;
	bool last = ++w->i == w->total;
	char flags[64];

	flag_names(e, last, flags, sizeof(flags));
	if (w->json) {
		printf("%s{\"lblk\":%llu,\"pblk\":", w->i > 1 ? "," : "", (unsigned long long)e->lblk);
		if (e->flags & MAPTBL_EXTENT_ABSENT)
			printf("null");
		else
			printf("%llu", (unsigned long long)e->pblk);
		printf(",\"len\":%llu,\"flags\":[", (unsigned long long)e->len);
		if (e->flags & MAPTBL_EXTENT_UNWRITTEN)
			printf("\"unwritten\"");
		if (e->flags & MAPTBL_EXTENT_ABSENT)
			printf("\"absent\"");
		printf("]}");
		return 0;
	}
	num(w->i - 1, w->wi, false);
	printf(": ");
	num(e->lblk, w->wl, w->hex);
	printf("..");
	num(e->lblk + e->len - 1, w->wl, w->hex);
	printf(": ");
	if (e->flags & MAPTBL_EXTENT_ABSENT) {
		printf("%*s  %*s", w->wp, "-", w->wp, "");
	} else {
		num(e->pblk, w->wp, w->hex);
		printf("..");
		num(e->pblk + e->len - 1, w->wp, w->hex);
	}
	printf(": ");
	num(e->len, w->wn, w->hex);
	printf(":%s%s\n", *flags ? " " : "", flags);
	return 0;
}

static const char *kind_of_level(const struct maptbl_stats *st, unsigned l)
{
	if (l)
		return "index";
	if (st->nr_wide_leaves && st->nr_compact_leaves)
		return "leaf (compact+wide)";
	return st->nr_wide_leaves ? "leaf (wide)" : "leaf (compact)";
}

static int do_dump(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "hex", no_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	const struct maptbl_header *h;
	struct maptbl_table *t = NULL;
	struct widths w = { 0 };
	struct maptbl_stats st;
	const char *path;
	int c, status;
	unsigned l;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":X", opts, NULL)) != -1) {
		if (c == 'j')
			cli->json = true;
		else if (c == 'X')
			w.hex = true;
		else
			return cli_bad_option(cli, c, argv);
	}
	if (argc - optind != 1)
		return cli_usage_error(cli, "need exactly one TABLE");
	path = argv[optind];
	status = cli_open_table(cli, path, &t);
	if (status)
		return status;
	h = maptbl_table_data(t);
	maptbl_table_stats(t, &st, sizeof(st));
	maptbl_table_iterate(t, measure, &w);
	w.total = w.n;
	w.json = cli->json;

	if (cli->json) {
		printf("{\"table\":");
		json_str(stdout, path);
		printf(",\"version\":%u,\"header_len\":%u,\"header_crc\":%u,\"generation\":%u,"
		       "\"block_size\":%u,\"node_size\":%u,\"table_len\":%zu,\"virtual_blocks\":%llu,"
		       "\"disk_blocks\":%llu,\"incompat\":%llu,\"ro_compat\":%llu,\"compat\":%llu,"
		       "\"readonly\":%s,\"root\":%u,\"depth\":%u,\"nodes\":%llu,\"extents\":%llu,"
		       "\"unwritten\":%llu,\"absent\":%llu,\"mapped_blocks\":%llu,",
		       maptbl_le16_to_cpu(h->version), maptbl_le16_to_cpu(h->header_len),
		       maptbl_le32_to_cpu(h->header_crc), maptbl_table_generation(t),
		       maptbl_table_block_size(t), maptbl_table_node_size(t), maptbl_table_len(t),
		       (unsigned long long)maptbl_table_virtual_blocks(t),
		       (unsigned long long)maptbl_table_disk_blocks(t),
		       (unsigned long long)maptbl_table_features(t, 0),
		       (unsigned long long)maptbl_table_features(t, 1),
		       (unsigned long long)maptbl_table_features(t, 2),
		       maptbl_table_readonly(t) ? "true" : "false", maptbl_le32_to_cpu(h->root),
		       st.depth, (unsigned long long)st.nr_nodes, (unsigned long long)st.nr_extents,
		       (unsigned long long)st.nr_unwritten, (unsigned long long)st.nr_absent,
		       (unsigned long long)st.mapped_blocks);
		printf("\"disk_path\":");
		if (maptbl_table_disk_path(t))
			json_str(stdout, maptbl_table_disk_path(t));
		else
			printf("null");
		printf(",\"disk_id\":%llu,\"levels\":[", (unsigned long long)maptbl_table_disk_id(t));
		for (l = st.depth; l-- > 0;)
			printf("{\"level\":%u,\"kind\":\"%s\",\"nodes\":%llu,\"entries\":%llu,\"capacity\":%llu}%s",
			       l, l ? "index" : "leaf", (unsigned long long)st.nodes_per_level[l],
			       (unsigned long long)st.entries_per_level[l],
			       (unsigned long long)st.capacity_per_level[l], l ? "," : "");
		printf("],\"extent_list\":[");
		maptbl_table_iterate(t, print_extent, &w);
		printf("]}\n");
		goto out;
	}

	printf("Table: %s\n", path);
	printf("Format version %u, header %u bytes, header crc 0x%08x, generation %u%s\n",
	       maptbl_le16_to_cpu(h->version), maptbl_le16_to_cpu(h->header_len),
	       maptbl_le32_to_cpu(h->header_crc), maptbl_table_generation(t),
	       maptbl_table_readonly(t) ? ", read-only" : "");
	printf("Block size %u, node size %u, table %zu bytes (%zu node slots)\n",
	       maptbl_table_block_size(t), maptbl_table_node_size(t), maptbl_table_len(t),
	       maptbl_table_len(t) / maptbl_table_node_size(t));
	printf("Virtual disk %llu blocks", (unsigned long long)maptbl_table_virtual_blocks(t));
	if (maptbl_table_disk_blocks(t))
		printf(", physical disk %llu blocks\n", (unsigned long long)maptbl_table_disk_blocks(t));
	else
		printf(", physical disk size not recorded\n");
	if (maptbl_table_disk_path(t) || maptbl_table_disk_id(t))
		printf("Disk: %s (id 0x%016llx)\n",
		       maptbl_table_disk_path(t) ? maptbl_table_disk_path(t) : "(path not recorded)",
		       (unsigned long long)maptbl_table_disk_id(t));
	printf("Features: incompat 0x%llx%s, ro_compat 0x%llx, compat 0x%llx%s\n",
	       (unsigned long long)maptbl_table_features(t, 0),
	       maptbl_table_features(t, 0) & MAPTBL_INCOMPAT_WIDE_LEAF ? " (wide_leaf)" : "",
	       (unsigned long long)maptbl_table_features(t, 1),
	       (unsigned long long)maptbl_table_features(t, 2),
	       maptbl_table_features(t, 2) & MAPTBL_COMPAT_DISK_INFO ? " (disk_info)" : "");
	printf("Tree: depth %u, %llu node%s, %llu extent%s (%llu unwritten), %llu absent subtree%s, %llu blocks mapped\n",
	       st.depth, (unsigned long long)st.nr_nodes, st.nr_nodes == 1 ? "" : "s",
	       (unsigned long long)st.nr_extents, st.nr_extents == 1 ? "" : "s",
	       (unsigned long long)st.nr_unwritten, (unsigned long long)st.nr_absent,
	       st.nr_absent == 1 ? "" : "s", (unsigned long long)st.mapped_blocks);
	if (st.depth) {
		printf("\nlevel  %10s  %-20s  %12s  %6s\n", "nodes", "kind", "entries", "fill");
		for (l = st.depth; l-- > 0;)
			printf("%5u  %10llu  %-20s  %12llu  %5.1f%%\n", l,
			       (unsigned long long)st.nodes_per_level[l], kind_of_level(&st, l),
			       (unsigned long long)st.entries_per_level[l],
			       st.capacity_per_level[l] ? 100.0 * (double)st.entries_per_level[l] /
								 (double)st.capacity_per_level[l]
							: 0.0);
	}
	if (!w.n)
		goto out;
	w.wi = cli_digits(w.n - 1, false) > 4 ? cli_digits(w.n - 1, false) : 4;
	w.wl = cli_digits(w.max_l, w.hex) > 6 ? cli_digits(w.max_l, w.hex) : 6;
	w.wp = cli_digits(w.max_p, w.hex) > 7 ? cli_digits(w.max_p, w.hex) : 7;
	w.wn = cli_digits(w.max_len, w.hex) > 6 ? cli_digits(w.max_len, w.hex) : 6;
	printf("\n%*s: %*s: %*s: %*s: flags:\n", w.wi, "ext", 2 * w.wl + 2, "logical_offset",
	       2 * w.wp + 2, "physical_offset", w.wn, "length");
	maptbl_table_iterate(t, print_extent, &w);
out:
	maptbl_table_free(t);
	return EXIT_OK;
}

const struct maptbl_cmd cmd_dump = {
	.name = "dump",
	.fn = do_dump,
	.usage = dump_usage,
	.flags = CMD_JSON,
};
