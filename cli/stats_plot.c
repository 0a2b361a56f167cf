/* SPDX-License-Identifier: MIT */
/*
 * stats_plot.c - maptbl stats --plot FILE.svg: the histogram of extents per file and the CDF of
 * files (and of bytes, when the data has bytes per extent count), as one standalone SVG.
 *
 * Written by hand, on purpose: Debian 12 has no small C library that draws charts. The plotting
 * libraries there (libplplot, gnuplot through a pipe, cairo with pango or librsvg's writer) would
 * pull a graphics stack into a command-line tool for two bar and line charts, and SVG is plain
 * text. The numbers come from the same JSON value that --json prints, so the plot cannot disagree
 * with it. Each bar carries its bucket and count (data-min, data-max, data-files) and a <title>,
 * so tools (and the tests) can read the numbers back from the picture.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats_out.h"

#define W 960.0
#define LEFT 90.0
#define RIGHT (W - 40.0)
#define H1_TOP 130.0 /* histogram panel */
#define H1_BOT 400.0
#define H2_TOP 490.0 /* CDF panel */
#define H2_BOT 730.0
#define H 810.0

struct pt {
	uint64_t value, files, bytes;
};

struct plot {
	FILE *f;
	uint64_t files, bytes, extents, errors;
	uint64_t p50, p90, p99, p999, max, multi_files, multi_bytes;
	double layout;
	json_t *hist;
	struct pt *pts; /* extents per file -> files (and bytes), ascending, merged over classes */
	size_t npts;
	bool have_bytes;
};

static uint64_t u64(json_t *o, const char *k, bool *ok)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*ok = false;
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static int cmp_pt(const void *a, const void *b)
{
	const struct pt *x = a, *y = b;

	return x->value < y->value ? -1 : x->value > y->value;
}

/* Every class's [extents, files(, bytes)] pairs into one ascending list. */
static int load_points(struct plot *p, json_t *classes)
{
	json_t *c, *m, *pair;
	size_t i, j, n = 0, k;

	json_array_foreach(classes, i, c) {
		m = json_object_get(c, "extents_per_file");
		if (!json_is_array(m))
			return -EBADMSG;
		n += json_array_size(m);
	}
	p->pts = calloc(n ? n : 1, sizeof(*p->pts));
	if (!p->pts)
		return -ENOMEM;
	p->have_bytes = n > 0;
	json_array_foreach(classes, i, c) {
		m = json_object_get(c, "extents_per_file");
		json_array_foreach(m, j, pair) {
			json_t *v = json_array_get(pair, 0), *f = json_array_get(pair, 1),
			       *b = json_array_get(pair, 2);

			if (!json_is_integer(v) || !json_is_integer(f) || json_integer_value(v) < 0 ||
			    json_integer_value(f) < 0)
				return -EBADMSG;
			p->pts[p->npts].value = (uint64_t)json_integer_value(v);
			p->pts[p->npts].files = (uint64_t)json_integer_value(f);
			if (json_is_integer(b) && json_integer_value(b) >= 0)
				p->pts[p->npts].bytes = (uint64_t)json_integer_value(b);
			else
				p->have_bytes = false;
			p->npts++;
		}
	}
	qsort(p->pts, p->npts, sizeof(*p->pts), cmp_pt);
	for (i = 0, k = 0; i < p->npts; i++) {
		if (k && p->pts[k - 1].value == p->pts[i].value) {
			p->pts[k - 1].files += p->pts[i].files;
			p->pts[k - 1].bytes += p->pts[i].bytes;
		} else {
			p->pts[k++] = p->pts[i];
		}
	}
	p->npts = k;
	if (!p->bytes)
		p->have_bytes = false;
	return 0;
}

static int load(struct plot *p, json_t *doc)
{
	json_t *s = json_object_get(doc, "summary"), *pc;
	bool ok = true;

	if (!json_is_object(s))
		return -EBADMSG;
	pc = json_object_get(s, "percentiles");
	p->files = u64(s, "files", &ok);
	p->bytes = u64(s, "bytes", &ok);
	p->extents = u64(s, "extents", &ok);
	p->errors = u64(s, "errors", &ok);
	p->multi_files = u64(s, "multi_files", &ok);
	p->multi_bytes = u64(s, "multi_bytes", &ok);
	p->p50 = u64(pc, "p50", &ok);
	p->p90 = u64(pc, "p90", &ok);
	p->p99 = u64(pc, "p99", &ok);
	p->p999 = u64(pc, "p99.9", &ok);
	p->max = u64(pc, "max", &ok);
	p->layout = json_number_value(json_object_get(s, "layout_score"));
	p->hist = json_object_get(s, "histogram");
	if (!ok || !json_is_array(p->hist) || !json_is_array(json_object_get(doc, "classes")))
		return -EBADMSG;
	return load_points(p, json_object_get(doc, "classes"));
}

/* A count with thousands separators: 135443 -> "135,443". */
static const char *grouped(uint64_t v, char *buf, size_t n)
{
	char t[32];
	size_t len, i, o = 0;

	len = (size_t)snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
	for (i = 0; i < len && o + 2 < n; i++) {
		if (i && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = t[i];
	}
	buf[o] = 0;
	return buf;
}

/* A tick step of 1, 2 or 5 times a power of ten, for at most about @ticks ticks up to @max. */
static uint64_t nice_step(uint64_t max, unsigned ticks)
{
	uint64_t pow = 1, c = max / ticks + (max % ticks != 0); /* ceil(max / ticks) */

	for (;;) {
		if (c <= pow)
			return pow;
		if (c <= 2 * pow)
			return 2 * pow;
		if (c <= 5 * pow || pow > UINT64_MAX / 100)
			return 5 * pow;
		pow *= 10;
	}
}

static double pctf(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

static void line(FILE *f, const char *cls, double x1, double y1, double x2, double y2)
{
	fprintf(f, "<line class=\"%s\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", cls, x1,
		y1, x2, y2);
}

static void text(FILE *f, double x, double y, const char *anchor, const char *attrs,
		 const char *s)
{
	fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\"%s%s>%s</text>\n", x, y, anchor,
		attrs ? " " : "", attrs ? attrs : "", s);
}

/* A panel's axes and their titles. */
static void frame(FILE *f, double top, double bot, const char *ylabel, const char *xlabel)
{
	line(f, "axis", LEFT, bot, RIGHT, bot);
	line(f, "axis", LEFT, top, LEFT, bot);
	text(f, (LEFT + RIGHT) / 2, bot + 40, "middle", NULL, xlabel);
	fprintf(f,
		"<text x=\"24\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 24 "
		"%.2f)\">%s</text>\n",
		(top + bot) / 2, (top + bot) / 2, ylabel);
}

/* An axis number: exact below 1024, then powers of two as 1K, 2K, ... 1M, ... (K = 1024). */
static void axis_num(uint64_t v, bool top, char *buf, size_t n)
{
	static const char units[] = "KMGTPE";
	int u = -1;

	if (top) { /* the last bucket ends at 2^64 - 1: 16E */
		snprintf(buf, n, "16E");
		return;
	}
	if (v < 1024 || (v & (v - 1))) {
		snprintf(buf, n, "%llu", (unsigned long long)v);
		return;
	}
	while (v >= 1024 && u < 5) {
		v >>= 10;
		u++;
	}
	snprintf(buf, n, "%llu%c", (unsigned long long)v, units[u]);
}

/* The full range for tooltips: "0", "3–4", "1025–2048". */
static void bucket_range(uint64_t lo, uint64_t hi, char *buf, size_t n)
{
	if (lo == hi)
		snprintf(buf, n, "%llu", (unsigned long long)lo);
	else
		snprintf(buf, n, "%llu–%llu", (unsigned long long)lo, (unsigned long long)hi);
}

/* The axis label: the range up to 1024, then "≤2K", "≤4K", ... */
static void bucket_label(uint64_t lo, uint64_t hi, char *buf, size_t n)
{
	char h[16];

	if (hi <= 1024) {
		bucket_range(lo, hi, buf, n);
		return;
	}
	axis_num(hi, hi == UINT64_MAX, h, sizeof(h));
	snprintf(buf, n, "≤%s", h);
}

static void histogram(struct plot *p)
{
	FILE *f = p->f;
	size_t n = json_array_size(p->hist), i;
	uint64_t top = 0, step, t, hmax = 0;
	double colw, scale;
	size_t every = 1;
	char buf[96], lbl[64];
	json_t *b;

	text(f, LEFT, H1_TOP - 16, "start", "class=\"panel\" font-size=\"15\" font-weight=\"bold\"",
	     "Files by extents per file");
	json_array_foreach(p->hist, i, b) {
		bool ok = true;
		uint64_t c = u64(b, "files", &ok);

		if (c > hmax)
			hmax = c;
	}
	/* room above the highest bar for its label (counts read from JSON are below 2^63) */
	step = nice_step(hmax ? hmax : 1, 5);
	top = (hmax + hmax / 12 + step) / step * step;
	if (top < hmax)
		top = hmax;
	scale = (H1_BOT - H1_TOP) / (double)top;
	/* y axis: ticks, grid, label */
	for (t = 0; t <= top; t += step) {
		double y = H1_BOT - (double)t * scale;

		line(f, "grid", LEFT, y, RIGHT, y);
		line(f, "axis", LEFT - 5, y, LEFT, y);
		text(f, LEFT - 8, y + 4, "end", NULL, grouped(t, buf, sizeof(buf)));
		if (t > UINT64_MAX - step)
			break;
	}
	if (!n) {
		text(f, (LEFT + RIGHT) / 2, (H1_TOP + H1_BOT) / 2, "middle", NULL, "no files");
		n = 1;
	}
	colw = (RIGHT - LEFT) / (double)n;
	/* label every bucket when the widest label fits its column, else every second, third... */
	json_array_foreach(p->hist, i, b) {
		bool ok = true;
		uint64_t lo = u64(b, "min", &ok), hi = u64(b, "max", &ok);
		size_t len;

		bucket_label(lo, hi, lbl, sizeof(lbl));
		len = strlen(lbl) - (strstr(lbl, "–") || strstr(lbl, "≤") ? 2 : 0); /* UTF-8 */
		if (len * (colw < 60 ? 6.5 : 7.5) + 10 > colw * every)
			every = (size_t)ceil((len * (colw < 60 ? 6.5 : 7.5) + 10) / colw);
	}
	json_array_foreach(p->hist, i, b) {
		bool ok = true;
		uint64_t lo = u64(b, "min", &ok), hi = u64(b, "max", &ok), c = u64(b, "files", &ok);
		double h = (double)c * scale, x = LEFT + colw * (double)i + colw * 0.1;

		bucket_range(lo, hi, lbl, sizeof(lbl));
		fprintf(f,
			"<rect class=\"bar\" data-min=\"%llu\" data-max=\"%llu\" data-files=\"%llu\" "
			"x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"><title>%s extents: %s "
			"files (%.2f%%)</title></rect>\n",
			(unsigned long long)lo, (unsigned long long)hi, (unsigned long long)c, x,
			H1_BOT - h, colw * 0.8, h, lbl, grouped(c, buf, sizeof(buf)),
			pctf(c, p->files));
		if (c && colw >= 30)
			text(f, x + colw * 0.4, H1_BOT - h - 5, "middle",
			     "class=\"count\" font-size=\"11\"", grouped(c, buf, sizeof(buf)));
		if (i % every == 0) {
			bucket_label(lo, hi, lbl, sizeof(lbl));
			line(f, "axis", x + colw * 0.4, H1_BOT, x + colw * 0.4, H1_BOT + 5);
			text(f, x + colw * 0.4, H1_BOT + 18, "middle",
			     colw < 60 ? "font-size=\"10\"" : NULL, lbl);
		}
	}
	frame(f, H1_TOP, H1_BOT, "files",
	      "extents per file (physical discontinuities, as filefrag counts them; K = 1024)");
}

/* The CDF's x position of an extent count: 0 at 0, then log2 (1 -> 1, 2 -> 2, 4 -> 3, ...). */
static double cdf_pos(uint64_t v)
{
	return v ? 1.0 + log2((double)v) : 0.0;
}

static void cdf_line(struct plot *p, bool bytes, double xmax)
{
	FILE *f = p->f;
	uint64_t total = bytes ? p->bytes : p->files, cum = 0;
	double sx = (RIGHT - LEFT) / xmax, sy = (H2_BOT - H2_TOP), y = H2_BOT;
	size_t i;

	/* data-y0 and data-y100: where 0 % and 100 % are, for readers of the numbers */
	fprintf(f, "<polyline class=\"%s\" data-y0=\"%.2f\" data-y100=\"%.2f\" points=\"",
		bytes ? "cdf-bytes bytes" : "cdf-files files", H2_BOT, H2_TOP);
	for (i = 0; i < p->npts; i++) {
		double x = LEFT + cdf_pos(p->pts[i].value) * sx;

		cum += bytes ? p->pts[i].bytes : p->pts[i].files;
		fprintf(f, "%.2f,%.2f ", x, y);
		y = H2_BOT - sy * (total ? (double)cum / (double)total : 0.0);
		fprintf(f, "%.2f,%.2f ", x, y);
	}
	fprintf(f, "%.2f,%.2f\"/>\n", RIGHT, y);
}

static void cdf(struct plot *p)
{
	FILE *f = p->f;
	double xmax = floor(cdf_pos(p->max)) + 1, sx, lx = 0;
	char buf[64];
	int k, pc;

	if (xmax < 2)
		xmax = 2;
	sx = (RIGHT - LEFT) / xmax;
	text(f, LEFT, H2_TOP - 16, "start", "class=\"panel\" font-size=\"15\" font-weight=\"bold\"",
	     p->have_bytes ? "Cumulative share of files and of bytes"
			   : "Cumulative share of files");
	for (pc = 0; pc <= 100; pc += 20) {
		double y = H2_BOT - (H2_BOT - H2_TOP) * pc / 100.0;

		line(f, "grid", LEFT, y, RIGHT, y);
		line(f, "axis", LEFT - 5, y, LEFT, y);
		snprintf(buf, sizeof(buf), "%d%%", pc);
		text(f, LEFT - 8, y + 4, "end", NULL, buf);
	}
	for (pc = 90; pc <= 99; pc += 9) {
		double y = H2_BOT - (H2_BOT - H2_TOP) * pc / 100.0;

		line(f, "guide", LEFT, y, RIGHT, y);
		snprintf(buf, sizeof(buf), "%d%%", pc);
		text(f, RIGHT + 4, y + 4, "start", "font-size=\"10\" fill=\"#777\"", buf);
	}
	/* x ticks at 0, 1, 2, 4, 8, ...; labels thinned to 40 px apart */
	for (k = 0; k <= (int)xmax; k++) {
		double x = LEFT + k * sx;

		line(f, "axis", x, H2_BOT, x, H2_BOT + 5);
		if (k && x - lx < 40)
			continue; /* labels at least 40 px apart */
		axis_num(k && k <= 64 ? UINT64_C(1) << (k - 1) : 0, k > 64, buf, sizeof(buf));
		text(f, x, H2_BOT + 18, "middle", NULL, buf);
		lx = x;
	}
	frame(f, H2_TOP, H2_BOT, "share with at most x extents",
	      "extents per file (logarithmic above 1; K = 1024)");
	if (!p->files) {
		text(f, (LEFT + RIGHT) / 2, (H2_TOP + H2_BOT) / 2, "middle", NULL, "no files");
		return;
	}
	if (p->have_bytes)
		cdf_line(p, true, xmax);
	cdf_line(p, false, xmax);
	/* legend, bottom right: the curves rise to the top on the left */
	fprintf(f, "<rect class=\"legend\" x=\"%.2f\" y=\"%.2f\" width=\"170\" height=\"%d\"/>\n",
		RIGHT - 180, H2_BOT - (p->have_bytes ? 62 : 40), p->have_bytes ? 52 : 30);
	line(f, "files", RIGHT - 170, H2_BOT - 25.0 - (p->have_bytes ? 22 : 0), RIGHT - 145,
		H2_BOT - 25.0 - (p->have_bytes ? 22 : 0));
	text(f, RIGHT - 138, H2_BOT - 21.0 - (p->have_bytes ? 22 : 0), "start", NULL, "files");
	if (p->have_bytes) {
		line(f, "bytes", RIGHT - 170, H2_BOT - 25.0, RIGHT - 145, H2_BOT - 25.0);
		text(f, RIGHT - 138, H2_BOT - 21.0, "start", NULL, "bytes (in those files)");
	}
}

int stats_plot_svg(json_t *doc, char **out, size_t *len)
{
	struct plot p;
	char b1[64], b2[64], b3[64], t[512];
	int err;

	memset(&p, 0, sizeof(p));
	*out = NULL;
	err = load(&p, doc);
	if (err) {
		free(p.pts);
		return err;
	}
	p.f = open_memstream(out, len);
	if (!p.f) {
		free(p.pts);
		return -ENOMEM;
	}
	fprintf(p.f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
		"height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, "
		"Arial, sans-serif\" font-size=\"12\">\n"
		"<style>.grid{stroke:#e3e3e3;stroke-width:1}.axis{stroke:#333;stroke-width:1}"
		".guide{stroke:#aaa;stroke-width:1;stroke-dasharray:4 3}.bar{fill:#1b6ca8}"
		".legend{fill:#fff;stroke:#ccc}.files{stroke:#1b6ca8;stroke-width:2;fill:none}"
		".bytes{stroke:#d95f02;stroke-width:2;fill:none}</style>\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
		W, H, W, H);
	snprintf(t, sizeof(t), "maptbl stats: %s files, %s bytes, %s extents (%.2f per file)",
		 grouped(p.files, b1, sizeof(b1)), stats_human(p.bytes, b2, sizeof(b2)),
		 grouped(p.extents, b3, sizeof(b3)),
		 p.files ? (double)p.extents / (double)p.files : 0.0);
	fprintf(p.f, "<title>%s</title>\n", t);
	text(p.f, W / 2, 30, "middle", "class=\"title\" font-size=\"19\" font-weight=\"bold\"", t);
	snprintf(t, sizeof(t),
		 "extents per file: p50 %llu · p90 %llu · p99 %llu · p99.9 %llu · max %llu · "
		 "layout score %.4f",
		 (unsigned long long)p.p50, (unsigned long long)p.p90, (unsigned long long)p.p99,
		 (unsigned long long)p.p999, (unsigned long long)p.max, p.layout);
	text(p.f, W / 2, 54, "middle", "class=\"subtitle\" font-size=\"13\"", t);
	snprintf(t, sizeof(t),
		 "more than one extent: %.2f%% of files, %.2f%% of bytes · %s files could not be "
		 "read",
		 pctf(p.multi_files, p.files), pctf(p.multi_bytes, p.bytes),
		 grouped(p.errors, b1, sizeof(b1)));
	text(p.f, W / 2, 74, "middle", "class=\"subtitle\" font-size=\"13\"", t);
	histogram(&p);
	cdf(&p);
	fputs("</svg>\n", p.f);
	free(p.pts);
	if (fclose(p.f)) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}
