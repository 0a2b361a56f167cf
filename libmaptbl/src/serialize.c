/* SPDX-License-Identifier: MIT */
/*
 * serialize.c - what every part of libmaptbl shares: the log callback, opts handling, the
 * header and node checksums, the version.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static maptbl_log_fn log_fn;
static void *log_ctx;
static enum maptbl_log_level log_max = MAPTBL_LOG_WARN;

MAPTBL_API const char *maptbl_version(void)
{
	return MAPTBL_VERSION_STRING;
}

MAPTBL_API void maptbl_set_log_fn(maptbl_log_fn fn, void *ctx, enum maptbl_log_level max_level)
{
	log_fn = fn;
	log_ctx = ctx;
	log_max = max_level;
}

static void vlog(enum maptbl_log_level level, const char *fmt, va_list ap)
{
	char msg[256];

	if (!log_fn || level > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_fn(log_ctx, level, msg);
}

void mt_log(enum maptbl_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void mt_diag(struct maptbl_diag *d, uint64_t off, int64_t index, const char *fmt, ...)
{
	va_list ap;

	if (d) {
		d->offset = off;
		d->index = index;
		va_start(ap, fmt);
		vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	vlog(MAPTBL_LOG_ERROR, fmt, ap);
	va_end(ap);
}

int mt_opts_copy(void *dst, const void *opts, size_t known_sz, const char *name)
{
	const uint8_t *p = opts;
	size_t user_sz, i;

	memset(dst, 0, known_sz);
	if (!opts)
		return 0;
	memcpy(&user_sz, opts, sizeof(user_sz));
	if (user_sz < sizeof(size_t)) {
		mt_log(MAPTBL_LOG_ERROR, "%s: sz %zu is smaller than the sz field", name, user_sz);
		return -EINVAL;
	}
	/* A newer caller may pass a bigger struct: what we do not know must be zero. */
	for (i = known_sz; i < user_sz; i++) {
		if (p[i]) {
			mt_log(MAPTBL_LOG_ERROR, "%s has non-zero bytes past the fields this library knows",
			       name);
			return -EINVAL;
		}
	}
	/* An older caller's smaller struct: never read past it, the rest stays 0. */
	memcpy(dst, opts, user_sz < known_sz ? user_sz : known_sz);
	return 0;
}

MAPTBL_API int maptbl_build_opts_init(struct maptbl_build_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(size_t))
		return -EINVAL;
	memset(opts, 0, sz); /* all of the caller's struct: fields we do not know must be 0 */
	opts->sz = sz;
	/* Tripwire: a new field needs its default here. */
	_Static_assert(sizeof(struct maptbl_build_opts) == 72, "build opts changed");
	return 0;
}

MAPTBL_API int maptbl_open_opts_init(struct maptbl_open_opts *opts, size_t sz)
{
	if (!opts || sz < sizeof(size_t))
		return -EINVAL;
	memset(opts, 0, sz); /* all of the caller's struct: fields we do not know must be 0 */
	opts->sz = sz;
	_Static_assert(sizeof(struct maptbl_open_opts) == 24, "open opts changed");
	return 0;
}

uint32_t mt_header_crc(const uint8_t *hdr, uint32_t header_len)
{
	static const uint8_t zero[12];
	uint32_t crc;

	crc = maptbl_crc32c(0, hdr, 12);
	crc = maptbl_crc32c(crc, zero, 12);
	return maptbl_crc32c(crc, hdr + 24, header_len - 24);
}

uint32_t mt_node_crc(const uint8_t *node, uint32_t used)
{
	static const uint8_t zero[4];
	uint32_t crc;

	crc = maptbl_crc32c(0, node, 8);
	crc = maptbl_crc32c(crc, zero, 4);
	return maptbl_crc32c(crc, node + 12, used - 12);
}

MAPTBL_API int maptbl_walk_errno(enum maptbl_walk_status st)
{
	switch (st) {
	case MAPTBL_WALK_OK:
		return 0;
	case MAPTBL_WALK_BAD_ARG:
		return -EINVAL;
	case MAPTBL_WALK_READ_ERROR:
		return -EIO;
	case MAPTBL_WALK_UNSUPPORTED:
		return -EOPNOTSUPP;
	case MAPTBL_WALK_OUT_OF_RANGE:
		return -ERANGE;
	default:
		return -EBADMSG;
	}
}

MAPTBL_API const char *maptbl_walk_strerror(enum maptbl_walk_status st)
{
	switch (st) {
	case MAPTBL_WALK_OK:
		return "success";
	case MAPTBL_WALK_BAD_ARG:
		return "bad argument";
	case MAPTBL_WALK_READ_ERROR:
		return "table read failed";
	case MAPTBL_WALK_BAD_HEADER:
		return "bad table header";
	case MAPTBL_WALK_UNSUPPORTED:
		return "unsupported table version or feature";
	case MAPTBL_WALK_BAD_NODE:
		return "bad table node";
	case MAPTBL_WALK_BAD_CRC:
		return "table node checksum mismatch";
	case MAPTBL_WALK_OUT_OF_RANGE:
		return "block past the end of the virtual disk";
	}
	return "unknown walker status";
}

MAPTBL_API void maptbl_log(enum maptbl_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
