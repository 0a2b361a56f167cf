/* SPDX-License-Identifier: MIT */
/*
 * cmd_stats.c - maptbl stats: extents per file over directory trees, what their tables would cost,
 * and the exact merge of runs (libmaptbl-fs, maptbl/stats.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <maptbl/stats.h>

#include "cli.h"

static const char *const stats_usage[] = {
	"maptbl stats [--json | --per-file [--csv]] [--top N] [--threads N] [--cross-mounts]\n"
	"             [PATH...]\n"
	"       maptbl stats [--json | --per-file [--csv]] [--top N] --image IMG...\n"
	"       maptbl stats [--json] --merge FILE.json...",
	"extents-per-file statistics of directory trees, and the cost of their tables",
	"",
	"Walks every PATH (default '.'), one filesystem each unless --cross-mounts, and measures",
	"every regular file with FIEMAP (read-only, no sync): extents as filefrag counts them,",
	"records, holes, unwritten and shared records, and the size of its table (default build",
	"options, table block = filesystem block). Prints files and bytes, a histogram of extents per",
	"file, exact percentiles, the share of files and bytes with more than one extent, the layout",
	"score (fraction of blocks contiguous with their predecessor), the most fragmented files,",
	"the same by file-size class, and table totals with the distribution of depths.",
	"",
	"Options:",
	"  --json           the summary as JSON; such outputs merge exactly with --merge",
	"  --per-file       one row per file instead of the summary: path, size, extents, records,",
	"                   holes, unwritten, shared, table bytes, depth (TSV with a header line)",
	"  --csv            with --per-file: CSV instead of TSV",
	"  --top N          keep the N most fragmented files (default 10)",
	"  --threads N      walker threads (default: the online cores)",
	"  --cross-mounts   descend into other filesystems",
	"  --image IMG      read the unmounted ext2/3/4 image or device IMG through libext2fs",
	"                   instead of walking PATHs (repeatable): an inode scan, every in-use",
	"                   regular inode once, counted as filefrag counts the mounted file; with",
	"                   --per-file, every name under the image's root ('/dir/file')",
	"  --merge          the arguments are JSON outputs of 'maptbl stats --json': print their",
	"                   merged summary (counts and histograms add up, no averages of averages);",
	"                   the top list keeps the longest input's length unless --top is given",
	"  -h, --help       this text",
	"",
	"A progress line (files, bytes, rate) goes to stderr when it is a terminal.",
	"Files that vanish or fail during the walk are counted as errors with a reason and never",
	"stop it. Exit status: 0 the walk finished (even with counted errors), 1 nothing could be",
	"scanned or a --merge input is not valid stats JSON, 2 usage error, 3 a PATH, FILE or IMG",
	"given could not be read (or IMG is not an unmounted ext2/3/4 filesystem).",
	NULL,
};

struct rows {
	bool csv;
};

static void put_field(const char *s, bool csv)
{
	if (csv) {
		if (strpbrk(s, ",\"\n\r")) {
			putchar('"');
			for (; *s; s++) {
				if (*s == '"')
					putchar('"');
				putchar(*s);
			}
			putchar('"');
		} else {
			fputs(s, stdout);
		}
		return;
	}
	for (; *s; s++) {
		if (*s == '\t')
			fputs("\\t", stdout);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\\')
			fputs("\\\\", stdout);
		else
			putchar(*s);
	}
}

static void per_file_row(void *ctx, const struct maptbl_file_stats *f)
{
	const struct rows *r = ctx;
	char sep = r->csv ? ',' : '\t';

	put_field(f->path ? f->path : "", r->csv);
	printf("%c%llu%c%llu%c%llu%c%llu%c%llu%c%llu%c%llu%c%u\n", sep,
	       (unsigned long long)f->size, sep, (unsigned long long)f->extents, sep,
	       (unsigned long long)f->records, sep, (unsigned long long)f->holes, sep,
	       (unsigned long long)f->unwritten, sep, (unsigned long long)f->shared, sep,
	       (unsigned long long)f->table_bytes, sep, f->table_depth);
}

/* The progress line: at most 5 updates a second, on stderr, only when it is a terminal. */
struct progress {
	struct timespec start, last;
	bool shown;
};

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_line(void *ctx, uint64_t files, uint64_t bytes)
{
	struct progress *p = ctx;
	struct timespec now;
	double t;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (since(&p->last, &now) < 0.2)
		return;
	p->last = now;
	t = since(&p->start, &now);
	fprintf(stderr, "\r\033[K%llu files, %.1f MiB, %.0f files/s", (unsigned long long)files,
		(double)bytes / 1048576.0, t > 0 ? (double)files / t : 0.0);
	p->shown = true;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = false;
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* 1536 -> "1.5K"; exact below 1024. */
static const char *human(uint64_t v, char *buf, size_t n)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, n, "%llu", (unsigned long long)v);
		return buf;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, n, "%.1f%c", d, units[u]);
	return buf;
}

static void print_text(const struct maptbl_stats_acc *acc)
{
	struct maptbl_stats_summary s, c;
	uint64_t h[MAPTBL_STATS_BUCKETS], depths[MAPTBL_STATS_DEPTHS], cum = 0;
	char b1[32], b2[32];
	int n, i, w = 5;
	size_t k;

	maptbl_stats_acc_summary(acc, MAPTBL_STATS_ALL, &s, sizeof(s));
	printf("files:         %llu (%llu errors)\n", (unsigned long long)s.files,
	       (unsigned long long)maptbl_stats_acc_nr_errors(acc));
	printf("bytes:         %llu (%s)\n", (unsigned long long)s.bytes,
	       human(s.bytes, b1, sizeof(b1)));
	printf("extents:       %llu (%.2f per file)\n", (unsigned long long)s.extents,
	       s.files ? (double)s.extents / (double)s.files : 0.0);
	printf("records:       %llu, holes %llu (%llu files), unwritten %llu (%llu files), "
	       "shared %llu (%llu files)\n",
	       (unsigned long long)s.records, (unsigned long long)s.holes,
	       (unsigned long long)s.files_holes, (unsigned long long)s.unwritten,
	       (unsigned long long)s.files_unwritten, (unsigned long long)s.shared,
	       (unsigned long long)s.files_shared);
	printf("fragmented:    %.2f%% of files, %.2f%% of bytes (more than one extent)\n",
	       pct(s.multi_files, s.files), pct(s.multi_bytes, s.bytes));
	printf("layout score:  %.6f\n", s.layout_score);
	printf("extents/file:  p50 %llu, p90 %llu, p99 %llu, p99.9 %llu, max %llu\n",
	       (unsigned long long)s.p50, (unsigned long long)s.p90, (unsigned long long)s.p99,
	       (unsigned long long)s.p999, (unsigned long long)s.max);

	n = maptbl_stats_acc_histogram(acc, MAPTBL_STATS_ALL, h);
	for (i = 0; i < n; i++)
		w = cli_digits(h[i], false) > w ? cli_digits(h[i], false) : w;
	printf("\n%-21s %*s %8s %8s\n", "extents per file", w, "files", "share", "cumul");
	for (i = 0; i < n; i++) {
		uint64_t lo, hi;
		char range[48];

		maptbl_stats_bucket_range((unsigned)i, &lo, &hi);
		if (lo == hi)
			snprintf(range, sizeof(range), "%llu", (unsigned long long)lo);
		else
			snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)lo,
				 (unsigned long long)hi);
		cum += h[i];
		printf("%-21s %*llu %7.2f%% %7.2f%%\n", range, w, (unsigned long long)h[i],
		       pct(h[i], s.files), pct(cum, s.files));
	}

	if (maptbl_stats_acc_nr_top(acc)) {
		printf("\nmost fragmented files\n%10s %10s  %s\n", "extents", "size", "path");
		for (k = 0; k < maptbl_stats_acc_nr_top(acc); k++) {
			struct maptbl_stats_top t;

			maptbl_stats_acc_top(acc, k, &t);
			printf("%10llu %10s  %s\n", (unsigned long long)t.extents,
			       human(t.size, b1, sizeof(b1)), t.path);
		}
	}

	printf("\n%-6s %10s %8s %8s %8s %6s %6s %6s %6s %8s %9s\n", "size", "files", "bytes",
	       "frag%", "bytes%", "p50", "p90", "p99", "p99.9", "max", "layout");
	for (i = 0; i < MAPTBL_STATS_CLASSES; i++) {
		maptbl_stats_acc_summary(acc, i, &c, sizeof(c));
		if (!c.files)
			continue;
		printf("%-6s %10llu %8s %7.2f%% %7.2f%% %6llu %6llu %6llu %6llu %8llu %9.6f\n",
		       maptbl_stats_size_class_name(i), (unsigned long long)c.files,
		       human(c.bytes, b1, sizeof(b1)), pct(c.multi_files, c.files),
		       pct(c.multi_bytes, c.bytes), (unsigned long long)c.p50,
		       (unsigned long long)c.p90, (unsigned long long)c.p99,
		       (unsigned long long)c.p999, (unsigned long long)c.max, c.layout_score);
	}

	maptbl_stats_acc_depths(acc, depths);
	printf("\ntables:        %llu bytes (%s), %llu nodes, %s per file\n",
	       (unsigned long long)s.table_bytes, human(s.table_bytes, b1, sizeof(b1)),
	       (unsigned long long)s.table_nodes,
	       human(s.files ? s.table_bytes / s.files : 0, b2, sizeof(b2)));
	printf("%-6s %10s %8s\n", "depth", "tables", "share");
	for (i = 0; i < MAPTBL_STATS_DEPTHS; i++)
		if (depths[i])
			printf("%-6d %10llu %7.2f%%\n", i, (unsigned long long)depths[i],
			       pct(depths[i], s.files));
	if (maptbl_stats_acc_nr_error_reasons(acc)) {
		printf("\nerrors\n");
		for (k = 0; k < maptbl_stats_acc_nr_error_reasons(acc); k++) {
			struct maptbl_stats_error e;

			maptbl_stats_acc_error_reason(acc, k, &e);
			printf("%10llu  %s (e.g. %s)\n", (unsigned long long)e.count, strerror(e.err),
			       e.example ? e.example : "?");
		}
	}
}

static int print_result(struct cli *cli, const struct maptbl_stats_acc *acc)
{
	char *js;
	int err;

	if (!cli->json) {
		print_text(acc);
		return EXIT_OK;
	}
	err = maptbl_stats_acc_to_json(acc, &js);
	if (err) {
		cli_error(cli, "JSON output: %s", strerror(-err));
		return EXIT_FAILED;
	}
	printf("%s\n", js);
	free(js);
	return EXIT_OK;
}

/* Reads every FILE first: the merged top list is as long as the longest input's, or --top. */
static int do_merge(struct cli *cli, int argc, char **argv, uint32_t top, bool top_given)
{
	struct maptbl_stats_acc **in, *acc = NULL;
	struct maptbl_stats_opts so;
	int i, status = EXIT_OK, err;

	in = calloc((size_t)argc, sizeof(*in));
	if (!in) {
		cli_error(cli, "%s", strerror(ENOMEM));
		return EXIT_FAILED;
	}
	for (i = 0; i < argc; i++) {
		uint8_t *buf;
		size_t len;

		err = cli_read_file(argv[i], &buf, &len);
		if (err) {
			cli_error(cli, "%s: %s", argv[i], strerror(-err));
			if (!status)
				status = EXIT_NOCHECK;
			continue;
		}
		err = maptbl_stats_acc_from_json((const char *)buf, len, &in[i]);
		free(buf);
		if (err == -EBADMSG)
			cli_error(cli, "%s: not valid stats JSON: %s", argv[i],
				  cli_last_log() ? cli_last_log() : "malformed");
		else if (err)
			cli_error(cli, "%s: %s", argv[i], strerror(-err));
		if (err && !status)
			status = EXIT_FAILED;
		if (!err && !top_given && maptbl_stats_acc_top_n(in[i]) > top)
			top = maptbl_stats_acc_top_n(in[i]);
	}
	if (!status) {
		if (!top_given && !top)
			top = 10;
		maptbl_stats_opts_init(&so, sizeof(so));
		so.top_n = top;
		err = maptbl_stats_acc_new(&so, &acc);
		for (i = 0; !err && i < argc; i++)
			err = maptbl_stats_acc_merge(acc, in[i]);
		if (err) {
			cli_error(cli, "%s", strerror(-err));
			status = EXIT_FAILED;
		} else {
			status = print_result(cli, acc);
		}
	}
	for (i = 0; i < argc; i++)
		maptbl_stats_acc_free(in[i]);
	free(in);
	maptbl_stats_acc_free(acc);
	return status;
}

static int parse_count(struct cli *cli, const char *opt, const char *arg, uint64_t max,
		       uint32_t *out)
{
	uint64_t v;

	if (cli_parse_u64(arg, &v) || !v || v > max)
		return cli_usage_error(cli, "%s: '%s' is not a number from 1 to %llu", opt, arg,
				       (unsigned long long)max);
	*out = (uint32_t)v;
	return 0;
}

static int do_stats(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	enum { O_CSV = 256, O_PER_FILE, O_TOP, O_THREADS, O_CROSS, O_MERGE, O_IMAGE };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, O_CSV },
		{ "per-file", no_argument, NULL, O_PER_FILE },
		{ "top", required_argument, NULL, O_TOP },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "cross-mounts", no_argument, NULL, O_CROSS },
		{ "merge", no_argument, NULL, O_MERGE },
		{ "image", required_argument, NULL, O_IMAGE },
		{ NULL, 0, NULL, 0 },
	};
	static char *const dot[] = { ".", NULL };
	bool csv = false, per_file = false, merge = false, cross = false, top_given = false;
	uint32_t top = 10, threads = 0;
	struct maptbl_stats_opts so;
	struct maptbl_scan_opts sc;
	struct maptbl_stats_acc *acc = NULL;
	struct rows rows;
	struct progress prog = { 0 };
	char **images = NULL;
	int nimages = 0;
	char *const *paths;
	int c, i, np, status = EXIT_OK, scanned = 0, err, first_err = 0;
	const char *first_path = NULL;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			cli->json = true;
			break;
		case O_CSV:
			csv = true;
			break;
		case O_PER_FILE:
			per_file = true;
			break;
		case O_TOP:
			if ((err = parse_count(cli, "--top", optarg, 100000, &top)))
				return err;
			top_given = true;
			break;
		case O_THREADS:
			if ((err = parse_count(cli, "--threads", optarg, 256, &threads)))
				return err;
			break;
		case O_CROSS:
			cross = true;
			break;
		case O_MERGE:
			merge = true;
			break;
		case O_IMAGE:
			/* argv outlives the command: keep pointers to the arguments */
			if (!images)
				images = calloc((size_t)argc, sizeof(*images));
			if (!images) {
				cli_error(cli, "%s", strerror(ENOMEM));
				return EXIT_FAILED;
			}
			images[nimages++] = optarg;
			break;
		default:
			return cli_bad_option(cli, c, argv);
		}
	}
	if (csv && !per_file)
		return cli_usage_error(cli, "--csv needs --per-file");
	if (per_file && cli->json)
		return cli_usage_error(cli, "--per-file and --json do not go together");
	if (images && (merge || cross || threads || optind < argc)) {
		free(images);
		return cli_usage_error(cli, "--image IMG takes no PATH, --merge, --threads or "
				       "--cross-mounts");
	}
	if (merge) {
		if (per_file || cross || threads)
			return cli_usage_error(cli, "--merge takes only --json and --top");
		if (optind >= argc)
			return cli_usage_error(cli, "--merge needs at least one FILE.json");
		return do_merge(cli, argc - optind, argv + optind, top_given ? top : 0, top_given);
	}
	paths = images ? images : optind < argc ? argv + optind : dot;
	np = images ? nimages : optind < argc ? argc - optind : 1;

	maptbl_stats_opts_init(&so, sizeof(so));
	so.top_n = top;
	err = maptbl_stats_acc_new(&so, &acc);
	if (err) {
		cli_error(cli, "%s", strerror(-err));
		free(images);
		return EXIT_FAILED;
	}
	maptbl_scan_opts_init(&sc, sizeof(sc));
	if (isatty(STDERR_FILENO)) {
		clock_gettime(CLOCK_MONOTONIC, &prog.start);
		sc.progress = progress_line;
		sc.progress_ctx = &prog;
	}
	sc.threads = threads;
	sc.cross_mounts = cross;
	rows.csv = csv;
	if (per_file) {
		sc.per_file = per_file_row;
		sc.ctx = &rows;
		if (csv)
			printf("path,size,extents,records,holes,unwritten,shared,table_bytes,depth\n");
		else
			printf("path\tsize\textents\trecords\tholes\tunwritten\tshared\ttable_bytes\t"
			       "depth\n");
	}
	/*
	 * A PATH that cannot be read is also counted in the summary, so that a JSON output (one
	 * object, mergeable) carries it; in JSON mode it gets its own error object only when no
	 * PATH could be scanned.
	 */
	for (i = 0; i < np; i++) {
		err = images ? maptbl_stats_image(acc, paths[i], &sc)
			     : maptbl_stats_scan(acc, paths[i], &sc);
		progress_end(&prog);
		if (err) {
			/* the library's message names the image and the problem */
			if (!cli->json && images && err != -ENOMEM && cli_last_log())
				cli_error(cli, "%s", cli_last_log());
			else if (!cli->json)
				cli_error(cli, "%s: %s", paths[i], strerror(-err));
			if (!status) {
				status = err == -ENOMEM ? EXIT_FAILED : EXIT_NOCHECK;
				first_err = err;
				first_path = paths[i];
			}
			maptbl_stats_acc_error(acc, paths[i], err);
			continue;
		}
		scanned++;
	}
	if (!scanned && cli->json && images && first_err != -ENOMEM && cli_last_log())
		cli_error(cli, "%s", cli_last_log());
	else if (!scanned && cli->json)
		cli_error(cli, "%s: %s", first_path, strerror(-first_err));
	if (scanned) {
		struct maptbl_stats_summary s;
		uint64_t nerr = maptbl_stats_acc_nr_errors(acc);

		maptbl_stats_acc_summary(acc, MAPTBL_STATS_ALL, &s, sizeof(s));
		if (!per_file) {
			int st = print_result(cli, acc);

			if (st && !status)
				status = st;
		}
		if (nerr && !cli->json)
			fprintf(stderr, "maptbl stats: %llu file%s or director%s could not be read\n",
				(unsigned long long)nerr, nerr == 1 ? "" : "s",
				nerr == 1 ? "y" : "ies");
		if (!s.files && nerr && !status)
			status = EXIT_FAILED; /* nothing could be scanned */
	}
	maptbl_stats_acc_free(acc);
	free(images);
	return status;
}

const struct maptbl_cmd cmd_stats = {
	.name = "stats",
	.fn = do_stats,
	.usage = stats_usage,
	.flags = CMD_JSON,
};
