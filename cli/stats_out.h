/* SPDX-License-Identifier: MIT */
/*
 * stats_out.h - the output side of maptbl stats, shared by cmd_stats.c, stats_yaml.c and
 * stats_plot.c.
 *
 * One source of truth: every structured output is made from the JSON value of
 * maptbl_stats_acc_to_json() (or, for --per-file, from rows built here as JSON values). --json
 * prints it as jansson does, --yaml walks the same value into libyaml emitter events, --plot reads
 * its numbers. Functions return 0 or -errno unless said otherwise.
 */
#ifndef MAPTBL_CLI_STATS_OUT_H
#define MAPTBL_CLI_STATS_OUT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include <maptbl/stats.h>

enum stats_fmt {
	STATS_TEXT, /* the readable summary; TSV or CSV rows with --per-file */
	STATS_JSON,
	STATS_YAML,
};

/* ---- stats_yaml.c ---- */

/* Prints @v as one YAML document on @f (libyaml's emitter). */
int stats_yaml_print(FILE *f, json_t *v);

/*
 * Parses one YAML document into the JSON value it spells (plain scalars that are YAML 1.1
 * integers, floats, booleans or null become those; everything else a string). Aliases, more than
 * one document, duplicate keys and nesting deeper than 64 are refused. On -EBADMSG @why (of
 * @whylen bytes) says where and why.
 */
int stats_yaml_parse(const char *text, size_t len, json_t **out, char *why, size_t whylen);

/*
 * The --per-file document, streamed: {"maptbl_stats_files": 1, "files": [row...],
 * "errors": [...]}, one row per measured file as it comes. The same value as JSON (one row a
 * line) or YAML. Rows may come from any thread, one at a time (the walk serialises them).
 */
struct stats_rows;
int stats_rows_begin(enum stats_fmt fmt, FILE *f, struct stats_rows **out);
int stats_rows_add(struct stats_rows *r, const struct maptbl_file_stats *fs);
/* Ends the document with @errors (the "errors" array of the summary JSON) and frees @r. */
int stats_rows_end(struct stats_rows *r, json_t *errors);
/* Frees @r without ending the document (after an error). Accepts NULL. */
void stats_rows_free(struct stats_rows *r);

/* A path as a JSON string: each byte that is not part of valid UTF-8 becomes '?'. */
json_t *stats_json_path(const char *p);

/* ---- cmd_stats.c ---- */

/* 1536 -> "1.5K"; exact below 1024. Returns @buf. */
const char *stats_human(uint64_t v, char *buf, size_t n);

/* ---- stats_plot.c ---- */

/*
 * The SVG of a summary document (maptbl_stats_acc_to_json()'s value): the histogram of extents
 * per file and the CDF of files (and of bytes, when the document has bytes per extent count).
 * @out receives a malloc'd buffer of @len bytes. -EBADMSG when @doc is not a summary.
 */
int stats_plot_svg(json_t *doc, char **out, size_t *len);

#endif
