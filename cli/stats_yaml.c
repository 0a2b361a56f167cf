/* SPDX-License-Identifier: MIT */
/*
 * stats_yaml.c - maptbl stats --yaml and YAML --merge inputs, through libyaml; and the streamed
 * --per-file document (JSON or YAML).
 *
 * YAML output is not a second serializer of the statistics: it walks the JSON value that --json
 * prints (jansson) and hands each node to libyaml's emitter as events, so both formats carry the
 * same keys, numbers and structure by construction. Numbers are written with jansson's own text,
 * so a float reads back as the same double. Strings that YAML 1.1 would resolve to something else
 * ("0", "yes", "<4K", paths with spaces) are double-quoted. Containers whose members are all
 * scalars are written in flow style ([0, 1], {min: 0, max: 0, files: 1}), the rest in block style.
 *
 * YAML input goes the other way: libyaml's parser events become a JSON value, which
 * maptbl_stats_acc_from_json() then checks exactly as it checks JSON.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "stats_out.h"

#define MAX_DEPTH 64

/* ---- emitting ---- */

/* Emits and reports failure as -EIO (libyaml keeps the reason in e->problem). */
static int emit(yaml_emitter_t *e, yaml_event_t *ev)
{
	return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Would YAML 1.1 read @s, unquoted, as this same string? Conservative: a small safe alphabet. */
static bool plain_ok(const char *s, size_t n)
{
	static const char *const words[] = { "y", "n", "yes", "no", "true", "false", "on", "off",
					     "null" };
	size_t i;

	if (!n || !(s[0] == '_' || s[0] == '/' || is_alpha(s[0])))
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!is_alpha(c) && !(c >= '0' && c <= '9') && (!c || !strchr("_./-", c)))
			return false;
	}
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i]) == n && !strncasecmp(s, words[i], n))
			return false;
	return true;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, size_t n, bool plain)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1,
					  plain ? YAML_PLAIN_SCALAR_STYLE
						: YAML_DOUBLE_QUOTED_SCALAR_STYLE))
		return -ENOMEM;
	return emit(e, &ev);
}

static int emit_string(yaml_emitter_t *e, const char *s, size_t n)
{
	return emit_scalar(e, s, n, plain_ok(s, n));
}

/* A number as jansson writes it; a float always with a '.', which YAML 1.1 needs. */
static int emit_number(yaml_emitter_t *e, json_t *v)
{
	char *t = json_dumps(v, JSON_ENCODE_ANY), *x;
	int err;

	if (!t)
		return -ENOMEM;
	if (json_is_real(v) && !strchr(t, '.')) {
		x = strpbrk(t, "eE");
		if (asprintf(&x, "%.*s.0%s", x ? (int)(x - t) : (int)strlen(t), t, x ? x : "") < 0) {
			free(t);
			return -ENOMEM;
		}
		free(t);
		t = x;
	}
	err = emit_scalar(e, t, strlen(t), true);
	free(t);
	return err;
}

static bool all_scalars(json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			if (json_is_array(m) || json_is_object(m))
				return false;
	} else {
		json_object_foreach(v, k, m)
			if (json_is_array(m) || json_is_object(m))
				return false;
	}
	return true;
}

static int emit_value(yaml_emitter_t *e, json_t *v, int depth);

/* A mapping or a sequence: flow style when all its members are scalars. */
static int emit_collection(yaml_emitter_t *e, json_t *v, int depth)
{
	bool map = json_is_object(v), flow = all_scalars(v);
	yaml_event_t ev;
	const char *k;
	json_t *m;
	size_t i;
	int err, ok;

	ok = map ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
						       flow ? YAML_FLOW_MAPPING_STYLE
							    : YAML_BLOCK_MAPPING_STYLE)
		 : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							flow ? YAML_FLOW_SEQUENCE_STYLE
							     : YAML_BLOCK_SEQUENCE_STYLE);
	if (!ok)
		return -ENOMEM;
	if ((err = emit(e, &ev)))
		return err;
	if (map) {
		json_object_foreach(v, k, m) {
			if ((err = emit_string(e, k, strlen(k))) || (err = emit_value(e, m, depth + 1)))
				return err;
		}
		yaml_mapping_end_event_initialize(&ev);
	} else {
		json_array_foreach(v, i, m) {
			if ((err = emit_value(e, m, depth + 1)))
				return err;
		}
		yaml_sequence_end_event_initialize(&ev);
	}
	return emit(e, &ev);
}

static int emit_value(yaml_emitter_t *e, json_t *v, int depth)
{
	if (depth > MAX_DEPTH)
		return -ELOOP;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		return emit_collection(e, v, depth);
	case JSON_STRING:
		return emit_string(e, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
	case JSON_REAL:
		return emit_number(e, v);
	case JSON_TRUE:
		return emit_scalar(e, "true", 4, true);
	case JSON_FALSE:
		return emit_scalar(e, "false", 5, true);
	case JSON_NULL:
		return emit_scalar(e, "null", 4, true);
	}
	return -EINVAL;
}

static int emitter_open(yaml_emitter_t *e, FILE *f)
{
	yaml_event_t ev;

	if (!yaml_emitter_initialize(e))
		return -ENOMEM;
	yaml_emitter_set_output_file(e, f);
	yaml_emitter_set_unicode(e, 1);
	yaml_emitter_set_width(e, -1); /* one flow collection (a per-file row) stays on one line */
	yaml_emitter_set_indent(e, 2);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (emit(e, &ev))
		return -EIO;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	return emit(e, &ev);
}

static int emitter_close(yaml_emitter_t *e)
{
	yaml_event_t ev;
	int err;

	yaml_document_end_event_initialize(&ev, 1);
	err = emit(e, &ev);
	if (!err) {
		yaml_stream_end_event_initialize(&ev);
		err = emit(e, &ev);
	}
	if (!err && !yaml_emitter_flush(e))
		err = -EIO;
	return err;
}

int stats_yaml_print(FILE *f, json_t *v)
{
	yaml_emitter_t e;
	int err;

	err = emitter_open(&e, f);
	if (!err)
		err = emit_value(&e, v, 0);
	if (!err)
		err = emitter_close(&e);
	yaml_emitter_delete(&e);
	return err;
}

/* ---- parsing ---- */

struct yp {
	yaml_parser_t p;
	char *why;
	size_t whylen;
};

static int yp_fail(struct yp *y, const yaml_mark_t *m, const char *what)
{
	snprintf(y->why, y->whylen, "line %zu, column %zu: %s", m->line + 1, m->column + 1, what);
	return -EBADMSG;
}

static int yp_next(struct yp *y, yaml_event_t *ev)
{
	if (yaml_parser_parse(&y->p, ev))
		return 0;
	if (y->p.error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	return yp_fail(y, &y->p.problem_mark, y->p.problem ? y->p.problem : "malformed YAML");
}

/* A plain scalar as YAML 1.1 resolves it (decimal integers, floats, booleans, null). */
static json_t *resolve_plain(const char *s, size_t n, bool *range)
{
	static const char *const yes[] = { "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On",
					   "ON" };
	static const char *const no[] = { "no", "No", "NO", "false", "False", "FALSE", "off", "Off",
					  "OFF" };
	size_t i, digits = 0;
	bool numeric = n > 0, dec = n > 0;
	char *end;

	*range = false;
	if (!n || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
		return json_null();
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(s, yes[i]))
			return json_true();
		if (!strcmp(s, no[i]))
			return json_false();
	}
	for (i = 0; i < n; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digits++;
		else if (!strchr("+-.eE", s[i]))
			numeric = false;
		if (!(s[i] >= '0' && s[i] <= '9') && !(i == 0 && (s[i] == '-' || s[i] == '+')))
			dec = false;
	}
	if (!digits || !numeric || strlen(s) != n)
		return json_stringn(s, n);
	errno = 0;
	if (dec) {
		long long v = strtoll(s, &end, 10);

		if (errno == ERANGE) {
			*range = true;
			return NULL;
		}
		return json_integer(v);
	} else {
		double d = strtod(s, &end);

		if (*end)
			return json_stringn(s, n);
		if (errno == ERANGE) {
			*range = true;
			return NULL;
		}
		return json_real(d);
	}
}

static int parse_node(struct yp *y, yaml_event_t *ev, int depth, json_t **out);

static int parse_children(struct yp *y, yaml_event_t *start, int depth, json_t *c)
{
	bool map = start->type == YAML_MAPPING_START_EVENT;
	yaml_event_t ev, kev;
	json_t *m;
	int err;

	for (;;) {
		if ((err = yp_next(y, &ev)))
			return err;
		if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (!map) {
			err = parse_node(y, &ev, depth + 1, &m);
			if (err)
				return err;
			json_array_append_new(c, m);
			continue;
		}
		kev = ev;
		if (kev.type != YAML_SCALAR_EVENT) {
			err = yp_fail(y, &kev.start_mark, "a key is not a scalar");
			yaml_event_delete(&kev);
			return err;
		}
		if (strlen((const char *)kev.data.scalar.value) != kev.data.scalar.length)
			err = yp_fail(y, &kev.start_mark, "a key holds a NUL byte");
		else if (json_object_get(c, (const char *)kev.data.scalar.value))
			err = yp_fail(y, &kev.start_mark, "duplicate key");
		if (!err && !(err = yp_next(y, &ev))) {
			err = parse_node(y, &ev, depth + 1, &m);
			if (!err && json_object_set_new(c, (const char *)kev.data.scalar.value, m))
				err = -ENOMEM;
		}
		yaml_event_delete(&kev);
		if (err)
			return err;
	}
}

/* Takes @ev (the node's first event) and deletes it. */
static int parse_node(struct yp *y, yaml_event_t *ev, int depth, json_t **out)
{
	const char *tag = NULL;
	json_t *v = NULL;
	bool range = false;
	int err = 0;

	*out = NULL;
	if (depth > MAX_DEPTH) {
		err = yp_fail(y, &ev->start_mark, "nested deeper than 64 levels");
		goto out;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		err = yp_fail(y, &ev->start_mark, "aliases are not allowed");
		goto out;
	case YAML_SCALAR_EVENT:
		tag = (const char *)ev->data.scalar.tag;
		if (tag && strcmp(tag, YAML_STR_TAG)) {
			err = yp_fail(y, &ev->start_mark, "tags other than !!str are not supported");
			goto out;
		}
		if (!tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			v = resolve_plain((const char *)ev->data.scalar.value, ev->data.scalar.length,
					  &range);
		else
			v = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (range)
			err = yp_fail(y, &ev->start_mark, "number out of range");
		else if (!v)
			err = -ENOMEM;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		tag = ev->type == YAML_MAPPING_START_EVENT ? (const char *)ev->data.mapping_start.tag
							   : (const char *)ev->data.sequence_start.tag;
		if (tag) {
			err = yp_fail(y, &ev->start_mark, "tags on collections are not supported");
			goto out;
		}
		v = ev->type == YAML_MAPPING_START_EVENT ? json_object() : json_array();
		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		err = parse_children(y, ev, depth, v);
		break;
	default:
		err = yp_fail(y, &ev->start_mark, "unexpected event");
		break;
	}
out:
	yaml_event_delete(ev);
	if (err) {
		json_decref(v);
		return err;
	}
	*out = v;
	return 0;
}

int stats_yaml_parse(const char *text, size_t len, json_t **out, char *why, size_t whylen)
{
	struct yp y = { .why = why, .whylen = whylen };
	yaml_event_t ev;
	json_t *v = NULL;
	int err, docs = 0;

	*out = NULL;
	snprintf(why, whylen, "malformed YAML");
	if (!yaml_parser_initialize(&y.p))
		return -ENOMEM;
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	for (;;) {
		if ((err = yp_next(&y, &ev)))
			break;
		if (ev.type == YAML_STREAM_END_EVENT) {
			if (!docs)
				err = yp_fail(&y, &ev.start_mark, "no document");
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT && docs++) {
			err = yp_fail(&y, &ev.start_mark, "more than one document");
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT ||
		    ev.type == YAML_DOCUMENT_END_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		err = parse_node(&y, &ev, 0, &v);
		if (err)
			break;
		if (*out) { /* cannot happen: the parser ends a document after its root node */
			json_decref(v);
			err = -EBADMSG;
			break;
		}
		*out = v;
	}
	yaml_parser_delete(&y.p);
	if (err) {
		json_decref(*out);
		*out = NULL;
	}
	return err;
}

/* ---- the --per-file document ---- */

struct stats_rows {
	enum stats_fmt fmt;
	FILE *f;
	yaml_emitter_t e;
	bool open; /* yaml: emitter initialised */
	bool started, failed;
	size_t rows;
	int err;
};

/* The length of the valid UTF-8 sequence at @s (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate, above U+10FFFF */
	return n;
}

/* Every byte that is not part of a valid UTF-8 sequence becomes '?'; the rest is kept. */
json_t *stats_json_path(const char *p)
{
	size_t n = strlen(p), i, k;
	char *c = malloc(n + 1);
	json_t *j;

	if (!c)
		return NULL;
	for (i = 0; i < n; i += k ? k : 1) {
		k = utf8_len((const unsigned char *)p + i);
		if (k)
			memcpy(c + i, p + i, k);
		else
			c[i] = '?';
	}
	c[n] = 0;
	j = json_string(c);
	free(c);
	return j;
}

/* The document's head, up to the open "files" array. */
static int rows_start(struct stats_rows *r)
{
	yaml_event_t ev;
	int err;

	r->started = true;
	if (r->fmt == STATS_JSON) {
		fputs("{\n \"maptbl_stats_files\": 1,\n \"files\": [", r->f);
		return 0;
	}
	err = emitter_open(&r->e, r->f);
	r->open = true;
	if (err)
		return err;
	if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
		return -ENOMEM;
	if ((err = emit(&r->e, &ev)) || (err = emit_string(&r->e, "maptbl_stats_files", 18)) ||
	    (err = emit_scalar(&r->e, "1", 1, true)) || (err = emit_string(&r->e, "files", 5)))
		return err;
	if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE))
		return -ENOMEM;
	return emit(&r->e, &ev);
}

int stats_rows_begin(enum stats_fmt fmt, FILE *f, struct stats_rows **out)
{
	struct stats_rows *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->fmt = fmt;
	r->f = f;
	*out = r;
	return 0;
}

/* A JSON array member a line: "\n  X" after "[" or ",". */
static int json_line(struct stats_rows *r, json_t *v, size_t idx)
{
	char *t = json_dumps(v, JSON_PRESERVE_ORDER);

	if (!t)
		return -ENOMEM;
	fprintf(r->f, "%s\n  %s", idx ? "," : "", t);
	free(t);
	return 0;
}

int stats_rows_add(struct stats_rows *r, const struct maptbl_file_stats *fs)
{
	json_t *row;
	int err = 0;

	if (r->failed)
		return r->err;
	row = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "path",
			stats_json_path(fs->path ? fs->path : ""), "size", (json_int_t)fs->size,
			"extents", (json_int_t)fs->extents, "records", (json_int_t)fs->records, "holes",
			(json_int_t)fs->holes, "unwritten", (json_int_t)fs->unwritten, "shared",
			(json_int_t)fs->shared, "table_bytes", (json_int_t)fs->table_bytes, "depth",
			(json_int_t)fs->table_depth, "table_nodes", (json_int_t)fs->table_nodes);
	if (!row)
		err = -ENOMEM;
	if (!err && !r->started)
		err = rows_start(r);
	if (!err)
		err = r->fmt == STATS_JSON ? json_line(r, row, r->rows) : emit_value(&r->e, row, 1);
	json_decref(row);
	r->rows++;
	if (err) {
		r->failed = true;
		r->err = err;
	}
	return err;
}

int stats_rows_end(struct stats_rows *r, json_t *errors)
{
	yaml_event_t ev;
	json_t *e;
	size_t i;
	int err = r->failed ? r->err : 0;

	if (!err && !r->started)
		err = rows_start(r);
	if (!err && r->fmt == STATS_JSON) {
		fputs(r->rows ? "\n ],\n \"errors\": [" : "],\n \"errors\": [", r->f);
		json_array_foreach(errors, i, e) {
			if ((err = json_line(r, e, i)))
				break;
		}
		fputs(json_array_size(errors) ? "\n ]\n}\n" : "]\n}\n", r->f);
	} else if (!err) {
		yaml_sequence_end_event_initialize(&ev);
		if (!(err = emit(&r->e, &ev)) && !(err = emit_string(&r->e, "errors", 6)) &&
		    !(err = emit_value(&r->e, errors, 1))) {
			yaml_mapping_end_event_initialize(&ev);
			if (!(err = emit(&r->e, &ev)))
				err = emitter_close(&r->e);
		}
	}
	stats_rows_free(r);
	return err;
}

void stats_rows_free(struct stats_rows *r)
{
	if (!r)
		return;
	if (r->open)
		yaml_emitter_delete(&r->e);
	free(r);
}
