/* SPDX-License-Identifier: MIT */
/*
 * fuzz_stats.c - maptbl stats --merge inputs come from many machines: the input is read as stats
 * JSON (maptbl_stats_acc_from_json()) and as YAML (cli/stats_yaml.c's libyaml parser), and
 * whatever is accepted goes through every output.
 *
 * Checks, on any input:
 *   - YAML that parses into a value V is emitted again as YAML (libyaml's emitter) and parses
 *     back to a value equal to V (the emitter quotes what YAML would read otherwise, and numbers
 *     keep their exact text);
 *   - an accumulator read from the JSON (or from the YAML's value) writes JSON that reads back to
 *     the same JSON, and its SVG plot is made without error.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <maptbl/stats.h>

#include "../../cli/stats_out.h"

#define FZ_CHECK(cond, what)                                                                       \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__, #cond,  \
				what);                                                             \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* stats_plot.c uses the command's stats_human(); the fuzz target has no cmd_stats.c. */
const char *stats_human(uint64_t v, char *buf, size_t n)
{
	snprintf(buf, n, "%llu", (unsigned long long)v);
	return buf;
}

static void no_log(void *ctx, enum maptbl_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
}

/* An accepted accumulator: JSON round trip, and the plot. */
static void outputs(struct maptbl_stats_acc *a)
{
	struct maptbl_stats_acc *b = NULL;
	char *j1 = NULL, *j2 = NULL, *svg = NULL;
	json_t *doc;
	size_t len;

	FZ_CHECK(maptbl_stats_acc_to_json(a, &j1) == 0, "to_json");
	FZ_CHECK(maptbl_stats_acc_from_json(j1, strlen(j1), &b) == 0, "own JSON does not read");
	FZ_CHECK(maptbl_stats_acc_to_json(b, &j2) == 0, "to_json");
	FZ_CHECK(!strcmp(j1, j2), "JSON round trip differs");
	doc = json_loads(j1, 0, NULL);
	FZ_CHECK(doc, "own JSON does not load");
	FZ_CHECK(stats_plot_svg(doc, &svg, &len) == 0 && svg && len, "plot");
	free(svg);
	json_decref(doc);
	free(j1);
	free(j2);
	maptbl_stats_acc_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct maptbl_stats_acc *a = NULL;
	json_t *v = NULL, *w = NULL;
	char why[256], *text, *yaml = NULL;
	size_t ylen = 0;
	FILE *f;

	maptbl_set_log_fn(no_log, NULL, MAPTBL_LOG_DEBUG);
	if (maptbl_stats_acc_from_json((const char *)data, size, &a) == 0) {
		outputs(a);
		maptbl_stats_acc_free(a);
		a = NULL;
	}
	if (stats_yaml_parse((const char *)data, size, &v, why, sizeof(why)))
		return 0;
	f = open_memstream(&yaml, &ylen);
	FZ_CHECK(f, "open_memstream");
	FZ_CHECK(stats_yaml_print(f, v) == 0, "a parsed value does not emit");
	FZ_CHECK(fclose(f) == 0, "fclose");
	FZ_CHECK(stats_yaml_parse(yaml, ylen, &w, why, sizeof(why)) == 0, why);
	if (!json_equal(v, w)) {
		fprintf(stderr, "emitted YAML:\n%s\n", yaml);
		FZ_CHECK(0, "the emitted YAML reads back as another value");
	}
	text = json_dumps(v, JSON_ENCODE_ANY);
	if (text && maptbl_stats_acc_from_json(text, strlen(text), &a) == 0) {
		outputs(a);
		maptbl_stats_acc_free(a);
	}
	free(text);
	free(yaml);
	json_decref(v);
	json_decref(w);
	return 0;
}
