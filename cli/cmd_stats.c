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
#include <sys/stat.h>
#include <unistd.h>

#include <maptbl/stats.h>

#include "cli.h"
#include "stats_out.h"

static const char *const stats_usage[] = {
	"maptbl stats [--json | --yaml] [--per-file [--csv]] [--plot FILE.svg] [--top N]\n"
	"             [--threads N] [--cross-mounts] [--bulkstat[=counts] | --no-bulkstat]\n"
	"             [--no-uring] [PATH...]\n"
	"       maptbl stats [--json | --yaml] [--per-file [--csv]] [--plot FILE.svg] [--top N]\n"
	"             [--threads N] --image IMG...\n"
	"       maptbl stats [--json | --yaml] [--plot FILE.svg] [--top N] --merge FILE...",
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
	"  --yaml           the same document as --json, in YAML (libyaml); merges the same way",
	"  --per-file       one row per file instead of the summary: path, size, extents, records,",
	"                   holes, unwritten, shared, table bytes, depth, table nodes (TSV with a",
	"                   header line; with --json or --yaml a document of rows and errors)",
	"  --csv            with --per-file: CSV instead of TSV",
	"  --plot FILE.svg  also draw the histogram and the CDF of extents per file as an SVG",
	"                   (written atomically; '-' writes it to stdout instead of the summary)",
	"  --top N          keep the N most fragmented files (default 10)",
	"  --threads N      walker threads, or the inode scan's with --image (default: the online",
	"                   cores)",
	"  --cross-mounts   descend into other filesystems",
	"  --bulkstat[=MODE] a PATH that is the root directory of an XFS filesystem is read with",
	"                   XFS_IOC_BULKSTAT instead of a walk (needs CAP_SYS_ADMIN; the default",
	"                   there, as root, without --per-file and --cross-mounts). MODE 'exact'",
	"                   (default): files with a block are opened by handle, every number is the",
	"                   walk's. 'counts': files with one extent record are not opened (extents",
	"                   exact, their unwritten and shared records not seen). Given, a PATH it",
	"                   cannot read is an error (exit 3); by default the walk is used ('-v' says why)",
	"  --no-bulkstat    always walk",
	"  --no-uring       open and close files with one system call each (default: a directory's",
	"                   files are opened and closed in batches through io_uring where the",
	"                   kernel allows it, with plain calls where it does not)",
	"  --image IMG      read the unmounted ext2/3/4 image or device IMG through libext2fs",
	"                   instead of walking PATHs (repeatable): an inode scan, every in-use",
	"                   regular inode once, counted as filefrag counts the mounted file; with",
	"                   --per-file, every name under the image's root ('/dir/file')",
	"  --merge          the arguments are outputs of 'maptbl stats --json' or '--yaml': print",
	"                   their merged summary (counts and histograms add up, no averages of",
	"                   averages); the top list keeps the longest input's length unless --top",
	"                   is given. *.json is read as JSON, *.yaml and *.yml as YAML, other",
	"                   names as JSON when they begin with '{', else as YAML",
	"  -h, --help       this text",
	"",
	"A progress line (files, bytes, rate) goes to stderr when it is a terminal.",
	"Files that vanish or fail during the walk are counted as errors with a reason and never",
	"stop it. Exit status: 0 the walk finished (even with counted errors), 1 nothing could be",
	"scanned, a --merge input is not valid stats JSON or YAML, or the --plot file could not be",
	"written, 2 usage error, 3 a PATH, FILE or IMG given could not be read (or IMG is not an",
	"unmounted ext2/3/4 filesystem).",
	NULL,
};

/* How the results are written. */
struct out {
	enum stats_fmt fmt;
	bool csv;
	const char *plot; /* --plot FILE.svg, or NULL */
	struct stats_rows *rows; /* --per-file with --json or --yaml */
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
	struct out *r = ctx;
	char sep = r->csv ? ',' : '\t';

	if (r->rows) {
		stats_rows_add(r->rows, f); /* a failure is reported by stats_rows_end() */
		return;
	}
	put_field(f->path ? f->path : "", r->csv);
	printf("%c%llu%c%llu%c%llu%c%llu%c%llu%c%llu%c%llu%c%u%c%llu\n", sep,
	       (unsigned long long)f->size, sep, (unsigned long long)f->extents, sep,
	       (unsigned long long)f->records, sep, (unsigned long long)f->holes, sep,
	       (unsigned long long)f->unwritten, sep, (unsigned long long)f->shared, sep,
	       (unsigned long long)f->table_bytes, sep, f->table_depth, sep,
	       (unsigned long long)f->table_nodes);
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
const char *stats_human(uint64_t v, char *buf, size_t n)
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

/* "0", "1", "2", "3-4", ... for histogram bucket @i. */
static const char *bucket_name(int i, char *buf, size_t n)
{
	uint64_t lo, hi;

	maptbl_stats_bucket_range((unsigned)i, &lo, &hi);
	if (lo == hi)
		snprintf(buf, n, "%llu", (unsigned long long)lo);
	else
		snprintf(buf, n, "%llu-%llu", (unsigned long long)lo, (unsigned long long)hi);
	return buf;
}

/* The histogram of extents per file, one column per size class that has files. */
static void print_class_histograms(const struct maptbl_stats_acc *acc)
{
	uint64_t h[MAPTBL_STATS_CLASSES][MAPTBL_STATS_BUCKETS];
	int n[MAPTBL_STATS_CLASSES], rows = 0, i, c, w = 6;

	for (c = 0; c < MAPTBL_STATS_CLASSES; c++) {
		n[c] = maptbl_stats_acc_histogram(acc, c, h[c]);
		rows = n[c] > rows ? n[c] : rows;
		for (i = 0; i < n[c]; i++)
			w = cli_digits(h[c][i], false) + 1 > w ? cli_digits(h[c][i], false) + 1 : w;
	}
	if (!rows)
		return;
	printf("\n%-21s", "extents per file");
	for (c = 0; c < MAPTBL_STATS_CLASSES; c++)
		if (n[c])
			printf(" %*s", w, maptbl_stats_size_class_name(c));
	printf("\n");
	for (i = 0; i < rows; i++) {
		char range[48];

		printf("%-21s", bucket_name(i, range, sizeof(range)));
		for (c = 0; c < MAPTBL_STATS_CLASSES; c++)
			if (n[c])
				printf(" %*llu", w, (unsigned long long)(i < n[c] ? h[c][i] : 0));
		printf("\n");
	}
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
	       stats_human(s.bytes, b1, sizeof(b1)));
	printf("extents:       %llu (%.2f per file)\n", (unsigned long long)s.extents,
	       s.files ? (double)s.extents / (double)s.files : 0.0);
	printf("records:       %llu, holes %llu (%llu files), unwritten %llu (%llu files), "
	       "shared %llu (%llu files)\n",
	       (unsigned long long)s.records, (unsigned long long)s.holes,
	       (unsigned long long)s.files_holes, (unsigned long long)s.unwritten,
	       (unsigned long long)s.files_unwritten, (unsigned long long)s.shared,
	       (unsigned long long)s.files_shared);
	if (s.compressed || s.inline_extents || s.disk_extents) /* btrfs only */
		printf("btrfs:         compressed %llu (%llu files), inline %llu (%llu files), "
		       "disk extents %llu\n",
		       (unsigned long long)s.compressed, (unsigned long long)s.files_compressed,
		       (unsigned long long)s.inline_extents, (unsigned long long)s.files_inline,
		       (unsigned long long)s.disk_extents);
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
		char range[48];

		cum += h[i];
		printf("%-21s %*llu %7.2f%% %7.2f%%\n", bucket_name(i, range, sizeof(range)), w,
		       (unsigned long long)h[i],
		       pct(h[i], s.files), pct(cum, s.files));
	}

	if (maptbl_stats_acc_nr_top(acc)) {
		printf("\nmost fragmented files\n%10s %10s  %s\n", "extents", "size", "path");
		for (k = 0; k < maptbl_stats_acc_nr_top(acc); k++) {
			struct maptbl_stats_top t;

			maptbl_stats_acc_top(acc, k, &t);
			printf("%10llu %10s  %s\n", (unsigned long long)t.extents,
			       stats_human(t.size, b1, sizeof(b1)), t.path);
		}
	}

	printf("\n%-6s %10s %8s %8s %8s %6s %6s %6s %6s %8s %9s %8s\n", "size", "files", "bytes",
	       "frag%", "bytes%", "p50", "p90", "p99", "p99.9", "max", "layout", "tables");
	for (i = 0; i < MAPTBL_STATS_CLASSES; i++) {
		maptbl_stats_acc_summary(acc, i, &c, sizeof(c));
		if (!c.files)
			continue;
		printf("%-6s %10llu %8s %7.2f%% %7.2f%% %6llu %6llu %6llu %6llu %8llu %9.6f %8s\n",
		       maptbl_stats_size_class_name(i), (unsigned long long)c.files,
		       stats_human(c.bytes, b1, sizeof(b1)), pct(c.multi_files, c.files),
		       pct(c.multi_bytes, c.bytes), (unsigned long long)c.p50,
		       (unsigned long long)c.p90, (unsigned long long)c.p99,
		       (unsigned long long)c.p999, (unsigned long long)c.max, c.layout_score,
		       stats_human(c.table_bytes, b2, sizeof(b2)));
	}
	print_class_histograms(acc);

	maptbl_stats_acc_depths(acc, depths);
	printf("\ntables:        %llu bytes (%s), %llu nodes, %s per file\n",
	       (unsigned long long)s.table_bytes, stats_human(s.table_bytes, b1, sizeof(b1)),
	       (unsigned long long)s.table_nodes,
	       stats_human(s.files ? s.table_bytes / s.files : 0, b2, sizeof(b2)));
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

/* The summary's JSON text and, when @doc is not NULL, its value. Returns an exit status. */
static int summary_json(struct cli *cli, const struct maptbl_stats_acc *acc, char **js,
			json_t **doc)
{
	json_error_t jerr;
	int err;

	err = maptbl_stats_acc_to_json(acc, js);
	if (err) {
		cli_error(cli, "JSON output: %s", strerror(-err));
		return EXIT_FAILED;
	}
	if (doc && !(*doc = json_loads(*js, 0, &jerr))) {
		cli_error(cli, "JSON output: %s", jerr.text);
		free(*js);
		*js = NULL;
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* The plot first: when it cannot be written, nothing else is printed (one error, status 1). */
static int print_result(struct cli *cli, const struct maptbl_stats_acc *acc, const struct out *o,
			bool summary)
{
	json_t *doc = NULL;
	char *js = NULL, *svg = NULL;
	size_t len;
	int err, status = EXIT_OK;

	if (o->fmt == STATS_TEXT && !o->plot && summary) {
		print_text(acc);
		return EXIT_OK;
	}
	status = summary_json(cli, acc, &js, o->fmt == STATS_YAML || o->plot ? &doc : NULL);
	if (status)
		return status;
	if (o->plot) {
		err = stats_plot_svg(doc, &svg, &len);
		if (!err)
			err = cli_write_atomic(o->plot, svg, len);
		free(svg);
		if (err) {
			cli_error(cli, "%s: %s", o->plot, strerror(-err));
			status = EXIT_FAILED;
			goto out;
		}
		if (!strcmp(o->plot, "-"))
			goto out;
	}
	if (!summary)
		goto out;
	if (o->fmt == STATS_TEXT)
		print_text(acc);
	else if (o->fmt == STATS_JSON)
		printf("%s\n", js);
	else if ((err = stats_yaml_print(stdout, doc)))
		status = EXIT_FAILED; /* a write error: main() reports it */
out:
	json_decref(doc);
	free(js);
	return status;
}

/* Checks that --plot FILE can be written before a walk that may take long. An exit status. */
static int plot_target(struct cli *cli, const char *path)
{
	struct stat st;
	char *dir, *slash;
	int err = 0;

	if (!strcmp(path, "-"))
		return EXIT_OK;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_error(cli, "%s: %s", path, strerror(EISDIR));
		return EXIT_FAILED;
	}
	dir = strdup(path);
	if (!dir) {
		cli_error(cli, "%s", strerror(ENOMEM));
		return EXIT_FAILED;
	}
	slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir] = 0; /* "/x" -> "/", "a/b" -> "a" */
	if (stat(slash ? dir : ".", &st))
		err = errno;
	else if (!S_ISDIR(st.st_mode))
		err = ENOTDIR;
	else if (access(slash ? dir : ".", W_OK | X_OK))
		err = errno;
	free(dir);
	if (err) {
		cli_error(cli, "%s: %s", path, strerror(err));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* Does @path end in @ext? */
static bool has_ext(const char *path, const char *ext)
{
	size_t n = strlen(path), e = strlen(ext);

	return n > e && !strcmp(path + n - e, ext);
}

/*
 * One --merge input: JSON when named *.json, YAML when named *.yaml or *.yml, otherwise JSON
 * when it begins with '{' and YAML when not. YAML becomes the same JSON value and is read by the
 * same maptbl_stats_acc_from_json(). An exit status.
 */
static int read_input(struct cli *cli, const char *path, struct maptbl_stats_acc **out)
{
	const char *kind = "JSON", *why;
	char *text = NULL, yerr[256];
	json_t *v = NULL;
	uint8_t *buf;
	size_t len, i;
	int err;

	err = cli_read_file(path, &buf, &len);
	if (err) {
		cli_error(cli, "%s: %s", path, strerror(-err));
		return EXIT_NOCHECK;
	}
	for (i = 0; i < len && buf[i] && strchr(" \t\r\n", buf[i]); i++)
		;
	if (has_ext(path, ".json") ||
	    (!has_ext(path, ".yaml") && !has_ext(path, ".yml") && i < len && buf[i] == '{')) {
		err = maptbl_stats_acc_from_json((const char *)buf, len, out);
	} else {
		kind = "YAML";
		err = stats_yaml_parse((const char *)buf, len, &v, yerr, sizeof(yerr));
		if (err == -EBADMSG) {
			cli_error(cli, "%s: not valid stats YAML: %s", path, yerr);
			free(buf);
			return EXIT_FAILED;
		}
		if (!err && !json_is_object(v)) {
			cli_error(cli, "%s: not valid stats YAML: not a mapping (not an output of "
				  "maptbl stats --yaml)", path);
			json_decref(v);
			free(buf);
			return EXIT_FAILED;
		}
		if (!err && !(text = json_dumps(v, JSON_COMPACT)))
			err = -ENOMEM;
		if (!err)
			err = maptbl_stats_acc_from_json(text, strlen(text), out);
		free(text);
		json_decref(v);
	}
	free(buf);
	if (err == -EBADMSG) {
		why = cli_last_log() ? cli_last_log() : "malformed";
		/* the reader's messages name JSON; for a YAML input only the reason counts */
		if (!strcmp(kind, "YAML") && !strncmp(why, "stats JSON: ", 12))
			why += 12;
		cli_error(cli, "%s: not valid stats %s: %s", path, kind, why);
		return EXIT_FAILED;
	}
	if (err) {
		cli_error(cli, "%s: %s", path, strerror(-err));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* Ends the --per-file document with the errors of the summary. An exit status. */
static int end_rows(struct cli *cli, const struct maptbl_stats_acc *acc, struct out *o)
{
	json_t *doc = NULL;
	char *js = NULL;
	int st, err;

	st = summary_json(cli, acc, &js, &doc);
	if (!st) {
		err = stats_rows_end(o->rows, json_object_get(doc, "errors"));
		o->rows = NULL;
		if (err == -ENOMEM) {
			cli_error(cli, "%s", strerror(ENOMEM));
			st = EXIT_FAILED;
		} else if (err) {
			st = EXIT_FAILED; /* a write error on stdout: main() reports it */
		}
	}
	json_decref(doc);
	free(js);
	return st;
}

/* Reads every FILE first: the merged top list is as long as the longest input's, or --top. */
static int do_merge(struct cli *cli, int argc, char **argv, uint32_t top, bool top_given,
		    const struct out *o)
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
		int st = read_input(cli, argv[i], &in[i]);

		if (st && !status)
			status = st;
		if (!st && !top_given && maptbl_stats_acc_top_n(in[i]) > top)
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
			status = print_result(cli, acc, o, true);
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

/*
 * PATH through XFS bulkstat where it applies (REQUIRED: or fail), else the walk. Says on stderr
 * which, with --verbose.
 */
static int scan_bulkstat(struct cli *cli, struct maptbl_stats_acc *acc, const char *path,
			 const struct maptbl_scan_opts *sc, int required, uint32_t flags,
			 bool *reported)
{
	int err = maptbl_stats_xfs(acc, path, sc, flags);

	if (err != -EOPNOTSUPP && err != -EPERM) {
		if (!err && cli->verbose)
			fprintf(stderr, "maptbl stats: %s: XFS bulkstat (%s)\n", path,
				flags & MAPTBL_STATS_XFS_COUNTS ? "counts" : "exact");
		return err;
	}
	if (required) {
		cli_error(cli, "%s: --bulkstat: %s", path,
			  err == -EPERM ? "XFS_IOC_BULKSTAT needs CAP_SYS_ADMIN"
					: "not the root directory of an XFS filesystem with "
					  "XFS_IOC_BULKSTAT");
		*reported = true;
		return err;
	}
	if (cli->verbose)
		fprintf(stderr, "maptbl stats: %s: walking the tree (no XFS bulkstat: %s)\n", path,
			err == -EPERM ? "it needs CAP_SYS_ADMIN"
				      : "not the root directory of an XFS filesystem");
	return maptbl_stats_scan(acc, path, sc);
}

/* The command proper; IMAGES has room for every argument (do_stats() owns it). */
static int stats_run(struct cli *cli, int argc, char **argv, char **images)
{
	enum { O_CSV = 256, O_PER_FILE, O_TOP, O_THREADS, O_CROSS, O_MERGE, O_IMAGE, O_YAML, O_PLOT,
	       O_BULKSTAT, O_NO_BULKSTAT, O_NO_URING };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "yaml", no_argument, NULL, O_YAML },
		{ "plot", required_argument, NULL, O_PLOT },
		{ "csv", no_argument, NULL, O_CSV },
		{ "per-file", no_argument, NULL, O_PER_FILE },
		{ "top", required_argument, NULL, O_TOP },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "cross-mounts", no_argument, NULL, O_CROSS },
		{ "merge", no_argument, NULL, O_MERGE },
		{ "image", required_argument, NULL, O_IMAGE },
		{ "bulkstat", optional_argument, NULL, O_BULKSTAT },
		{ "no-bulkstat", no_argument, NULL, O_NO_BULKSTAT },
		{ "no-uring", no_argument, NULL, O_NO_URING },
		{ NULL, 0, NULL, 0 },
	};
	static char *const dot[] = { ".", NULL };
	bool csv = false, per_file = false, merge = false, cross = false, top_given = false;
	uint32_t top = 10, threads = 0;
	struct maptbl_stats_opts so;
	struct maptbl_scan_opts sc;
	struct maptbl_stats_acc *acc = NULL;
	struct out o = { .fmt = STATS_TEXT };
	bool yaml = false;
	/* XFS bulkstat: -1 never, 0 where it applies (default), 1 required; its flags */
	int bulkstat = 0;
	uint32_t bs_flags = 0;
	bool reported = false, no_uring = false;
	struct progress prog = { 0 };
	int nimages = 0;
	char *const *paths;
	int c, i, np, status = EXIT_OK, scanned = 0, err = 0, first_err = 0, st;
	const char *first_path = NULL;

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
			images[nimages++] = optarg;
			break;
		case O_YAML:
			yaml = true;
			break;
		case O_PLOT:
			o.plot = optarg;
			break;
		case O_BULKSTAT:
			bulkstat = 1;
			if (optarg && !strcmp(optarg, "counts"))
				bs_flags = MAPTBL_STATS_XFS_COUNTS;
			else if (optarg && strcmp(optarg, "exact"))
				return cli_usage_error(cli, "--bulkstat: '%s' is not 'exact' or 'counts'",
						       optarg);
			break;
		case O_NO_BULKSTAT:
			bulkstat = -1;
			break;
		case O_NO_URING:
			no_uring = true;
			break;
		default:
			return cli_bad_option(cli, c, argv);
		}
	}
	if (yaml && cli->json)
		return cli_usage_error(cli, "--json and --yaml do not go together");
	o.fmt = cli->json ? STATS_JSON : yaml ? STATS_YAML : STATS_TEXT;
	o.csv = csv;
	if (csv && (!per_file || o.fmt != STATS_TEXT))
		return cli_usage_error(cli, "--csv needs --per-file, without --json or --yaml");
	if (o.plot && !*o.plot)
		return cli_usage_error(cli, "--plot needs a file name");
	if (o.plot && !strcmp(o.plot, "-") && (per_file || o.fmt != STATS_TEXT))
		return cli_usage_error(cli, "--plot - writes the SVG to stdout: not with --json, "
					    "--yaml or --per-file");
	if (nimages && (merge || cross || optind < argc))
		return cli_usage_error(cli, "--image IMG takes no PATH, --merge or --cross-mounts");
	if (bulkstat > 0 && (nimages || merge || per_file || cross))
		return cli_usage_error(cli, "--bulkstat reads PATHs without --image, --merge, "
				       "--per-file or --cross-mounts");
	if (merge) {
		if (per_file || cross || threads)
			return cli_usage_error(cli, "--merge takes only --json, --yaml, --plot and --top");
		if (optind >= argc)
			return cli_usage_error(cli, "--merge needs at least one FILE");
	}
	if (o.plot && (err = plot_target(cli, o.plot)))
		return err;
	if (merge)
		return do_merge(cli, argc - optind, argv + optind, top_given ? top : 0, top_given, &o);
	paths = nimages ? images : optind < argc ? argv + optind : dot;
	np = nimages ? nimages : optind < argc ? argc - optind : 1;

	maptbl_stats_opts_init(&so, sizeof(so));
	so.top_n = top;
	err = maptbl_stats_acc_new(&so, &acc);
	if (err) {
		cli_error(cli, "%s", strerror(-err));
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
	sc.no_uring = no_uring;
	if (per_file) {
		sc.per_file = per_file_row;
		sc.ctx = &o;
		if (o.fmt != STATS_TEXT)
			err = stats_rows_begin(o.fmt, stdout, &o.rows);
		if (err) {
			cli_error(cli, "%s", strerror(-err));
			maptbl_stats_acc_free(acc);
			return EXIT_FAILED;
		}
		if (o.fmt == STATS_TEXT && csv)
			printf("path,size,extents,records,holes,unwritten,shared,table_bytes,depth,"
			       "table_nodes\n");
		else if (o.fmt == STATS_TEXT)
			printf("path\tsize\textents\trecords\tholes\tunwritten\tshared\ttable_bytes\t"
			       "depth\ttable_nodes\n");
	}
	/*
	 * A PATH that cannot be read is also counted in the summary, so that a JSON output (one
	 * object, mergeable) carries it; in JSON mode it gets its own error object only when no
	 * PATH could be scanned.
	 */
	for (i = 0; i < np; i++) {
		reported = false;
		if (nimages)
			err = maptbl_stats_image(acc, paths[i], &sc);
		else if (bulkstat < 0 || per_file || cross)
			err = maptbl_stats_scan(acc, paths[i], &sc);
		else
			err = scan_bulkstat(cli, acc, paths[i], &sc, bulkstat, bs_flags,
					   &reported);
		progress_end(&prog);
		if (err) {
			/* the library's message names the image and the problem */
			if (!cli->json && nimages && err != -ENOMEM && cli_last_log())
				cli_error(cli, "%s", cli_last_log());
			else if (reported)
				; /* by scan_bulkstat() */
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
	if (!scanned && cli->json && nimages && first_err != -ENOMEM && cli_last_log())
		cli_error(cli, "%s", cli_last_log());
	else if (!scanned && cli->json && !reported)
		cli_error(cli, "%s: %s", first_path, strerror(-first_err));
	if (scanned) {
		struct maptbl_stats_summary s;
		uint64_t nerr = maptbl_stats_acc_nr_errors(acc);

		maptbl_stats_acc_summary(acc, MAPTBL_STATS_ALL, &s, sizeof(s));
		st = o.rows ? end_rows(cli, acc, &o) : EXIT_OK;
		if (!st && (!per_file || o.plot))
			st = print_result(cli, acc, &o, !per_file);
		if (st && !status)
			status = st;
		if (nerr && !cli->json)
			fprintf(stderr, "maptbl stats: %llu file%s or director%s could not be read\n",
				(unsigned long long)nerr, nerr == 1 ? "" : "s",
				nerr == 1 ? "y" : "ies");
		if (!s.files && nerr && !status)
			status = EXIT_FAILED; /* nothing could be scanned */
	}
	stats_rows_free(o.rows);
	maptbl_stats_acc_free(acc);
	return status;
}

static int do_stats(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	char **images = calloc((size_t)argc + 1, sizeof(*images));
	int rc;

	(void)cmd;
	if (!images) {
		cli_error(cli, "%s", strerror(ENOMEM));
		return EXIT_FAILED;
	}
	rc = stats_run(cli, argc, argv, images);
	free(images);
	return rc;
}

const struct maptbl_cmd cmd_stats = {
	.name = "stats",
	.fn = do_stats,
	.usage = stats_usage,
	.flags = CMD_JSON,
};
