/* SPDX-License-Identifier: MIT */
/*
 * util.c - what the maptbl subcommands share: messages, usage, number parsing, whole-file reads,
 * atomic output files, opening a table, JSON strings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void verror(struct cli *cli, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	cli->printed_error = true;
	if (cli->json) {
		printf("{\"error\":");
		json_str(stdout, msg);
		printf("}\n");
		return;
	}
	fflush(stdout);
	fprintf(stderr, "maptbl %s: %s\n", cli->cmd ? cli->cmd : "", msg);
}

void cli_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cli, fmt, ap);
	va_end(ap);
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	char msg[900];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json)
		cli_error(cli, "%s", msg);
	else
		cli_error(cli, "%s (try 'maptbl %s --help')", msg, cli->cmd);
	return EXIT_USAGE;
}

int cli_bad_option(struct cli *cli, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return cli_usage_error(cli, "option '%s' needs an argument", arg);
	if (optopt && arg[0] == '-' && arg[1] != '-')
		return cli_usage_error(cli, "unknown option '-%c'", optopt);
	return cli_usage_error(cli, "unknown option '%s'", arg);
}

void cli_print_usage(FILE *f, const struct maptbl_cmd *cmd)
{
	int i;

	fprintf(f, "Usage: %s\n", cmd->usage[0]);
	for (i = 1; cmd->usage[i]; i++)
		fprintf(f, "%s\n", cmd->usage[i]);
}

bool cli_want_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ' || *s == '\t')
		return -EINVAL;
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!s[2])
			return -EINVAL;
		v = strtoull(s + 2, &end, 16);
	} else {
		v = strtoull(s, &end, 10);
	}
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	const char *u;
	char num[32];
	size_t n;
	unsigned shift = 0;
	uint64_t v;
	int err;

	if (!s)
		return -EINVAL;
	/* Hex numbers take no suffix (E would be ambiguous). */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return cli_parse_u64(s, out);
	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		;
	if (!n || n >= sizeof(num))
		return n ? -ERANGE : -EINVAL;
	memcpy(num, s, n);
	num[n] = 0;
	err = cli_parse_u64(num, &v);
	if (err)
		return err;
	u = s + n;
	if (*u) {
		const char *p = strchr(units, *u & ~0x20);

		if (!p)
			return -EINVAL;
		shift = 10 * (unsigned)(p - units + 1);
		if (u[1] && strcmp(u + 1, "iB") && strcmp(u + 1, "B"))
			return -EINVAL;
		if (v > (UINT64_MAX >> shift))
			return -ERANGE;
	}
	*out = v << shift;
	return 0;
}

int cli_read_file(const char *path, uint8_t **bufp, size_t *lenp)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf, *nb;
	struct stat st;
	int fd, err;

	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : dup(STDIN_FILENO);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(fd);
			return -EISDIR;
		}
		if (S_ISREG(st.st_mode) && st.st_size > 0)
			cap = (size_t)st.st_size + 1;
	}
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap > SIZE_MAX / 2) {
				err = -EFBIG;
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		if (!r)
			break;
		len += (size_t)r;
	}
	close(fd);
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	close(fd);
	free(buf);
	return err;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static mode_t current_umask(void)
{
	mode_t m = umask(022);

	umask(m);
	return m;
}

int cli_write_atomic(const char *path, const void *buf, size_t len)
{
	char *tmp = NULL, *dcopy = NULL;
	int fd, dfd, err;

	if (!strcmp(path, "-")) {
		if (fflush(stdout))
			return -errno;
		return write_all(STDOUT_FILENO, buf, len);
	}
	{
		/* An existing device, FIFO or socket (/dev/null, a pipe) is written in place: renaming
		 * a temporary file over it would replace the device node. */
		struct stat st;

		if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
			if (S_ISDIR(st.st_mode))
				return -EISDIR;
			fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
			if (fd < 0)
				return -errno;
			err = write_all(fd, buf, len);
			if (close(fd) < 0 && !err)
				err = -errno;
			return err;
		}
	}
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return err;
	}
	err = write_all(fd, buf, len);
	if (!err && fchmod(fd, 0666 & ~current_umask()) < 0)
		err = -errno;
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		free(tmp);
		return err;
	}
	free(tmp);
	/* Make the rename itself durable. */
	dcopy = strdup(path);
	if (dcopy) {
		dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	return 0;
}

int cli_open_table(struct cli *cli, const char *path, struct maptbl_table **out)
{
	struct maptbl_open_opts oo;
	struct maptbl_diag diag;
	uint8_t *buf;
	size_t len;
	int err;

	err = cli_read_file(path, &buf, &len);
	if (err) {
		cli_error(cli, "%s: %s", path, strerror(-err));
		return EXIT_NOCHECK;
	}
	maptbl_open_opts_init(&oo, sizeof(oo));
	oo.diag = &diag;
	err = maptbl_table_open(buf, len, &oo, out);
	free(buf);
	if (err == -EOPNOTSUPP) {
		cli_error(cli, "%s: unsupported: %s", path, diag.reason);
		return EXIT_NOCHECK;
	}
	if (err == -EBADMSG) {
		cli_error(cli, "%s: invalid table: %s (at byte offset %llu)", path, diag.reason,
			  (unsigned long long)diag.offset);
		return EXIT_FAILED;
	}
	if (err) {
		cli_error(cli, "%s: %s", path, strerror(-err));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int cli_digits(uint64_t v, bool hex)
{
	int n = 1;

	while (v >= (hex ? 16u : 10u)) {
		v /= hex ? 16 : 10;
		n++;
	}
	return n;
}

const char *cli_state_name(uint32_t state)
{
	switch (state) {
	case MAPTBL_MAP_HOLE:
		return "hole";
	case MAPTBL_MAP_MAPPED:
		return "mapped";
	case MAPTBL_MAP_UNWRITTEN:
		return "unwritten";
	case MAPTBL_MAP_ABSENT:
		return "absent";
	}
	return "unknown";
}
