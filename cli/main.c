/* SPDX-License-Identifier: MIT */
/*
 * main.c - the maptbl command: global options, the subcommand table, help, exit statuses, and the
 * final check that stdout was really written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct maptbl_cmd *const cmds[] = {
	&cmd_build,
	&cmd_verify,
	&cmd_dump,
	&cmd_lookup,
	&cmd_cat,
	&cmd_stats,
	&cmd_push,
	&cmd_vf,
	NULL,
};

static const char *const main_usage[] = {
	"maptbl [--verbose] [--json] COMMAND [ARGS...]",
	"Build, check and inspect maptbl mapping tables (docs/FORMAT.md).",
	"",
	"Global options:",
	"  -v, --verbose   print the library's log messages on stderr (twice: debug)",
	"  --json          results and errors as JSON (commands that support it)",
	"  -h, --help      this text; 'maptbl help COMMAND' for a command",
	"  -V, --version   print the version",
	"",
	"Exit status:",
	"  0  success",
	"  1  the operation failed, or verify found a problem",
	"  2  usage error",
	"  3  could not check (I/O error, unsupported table feature)",
	NULL,
};

static void print_main_help(FILE *f)
{
	int i;

	fprintf(f, "Usage: %s\n%s\n\nCommands:\n", main_usage[0], main_usage[1]);
	for (i = 0; cmds[i]; i++)
		fprintf(f, "  %-8s %s\n", cmds[i]->name, cmds[i]->usage[1]);
	fprintf(f, "  %-8s %s\n", "help", "show the help of a command");
	for (i = 2; main_usage[i]; i++)
		fprintf(f, "%s\n", main_usage[i]);
}

static const struct maptbl_cmd *find_cmd(const char *name)
{
	int i;

	for (i = 0; cmds[i]; i++)
		if (!strcmp(cmds[i]->name, name)) /* exact names only, no prefixes */
			return cmds[i];
	return NULL;
}

/* The library's last error message, for commands to show in place of a bare errno string. */
static char last_error[512];

const char *cli_last_log(void)
{
	return last_error[0] ? last_error : NULL;
}

void cli_clear_last_log(void)
{
	last_error[0] = 0;
}

static void log_cb(void *ctx, enum maptbl_log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	const struct cli *cli = ctx;

	if (level == MAPTBL_LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	if (cli->verbose)
		fprintf(stderr, "maptbl: libmaptbl %s: %s\n", names[level & 3], msg);
}

/* git's run_builtin() check: a full disk or a closed pipe on stdout is a failure. */
static int finish_stdout(int status)
{
	int err = 0;

	if (fflush(stdout) || ferror(stdout))
		err = errno ? errno : EIO;
	if (fclose(stdout) && !err)
		err = errno ? errno : EIO;
	if (err && err != EPIPE) {
		fprintf(stderr, "maptbl: write error on standard output: %s\n", strerror(err));
		return status ? status : EXIT_FAILED;
	}
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .cmd = NULL };
	const struct maptbl_cmd *cmd;
	int c;

	opterr = 0; /* our own one-line messages */
	/* '+': stop at the first non-option, the subcommand. */
	while ((c = getopt_long(argc, argv, "+:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			cli.verbose++;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'h':
			print_main_help(stdout);
			return finish_stdout(EXIT_OK);
		case 'V':
			printf("maptbl %s (libmaptbl %s)\n", MAPTBL_VERSION_STRING, maptbl_version());
			return finish_stdout(EXIT_OK);
		default:
			fprintf(stderr, "maptbl: unknown option '%s' (try 'maptbl --help')\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "maptbl: no command given (try 'maptbl --help')\n");
		return EXIT_USAGE;
	}
	maptbl_set_log_fn(log_cb, &cli,
			  cli.verbose > 1 ? MAPTBL_LOG_DEBUG : cli.verbose ? MAPTBL_LOG_INFO
									   : MAPTBL_LOG_ERROR);
	argc -= optind;
	argv += optind;

	if (!strcmp(argv[0], "help")) {
		if (argc < 2) {
			print_main_help(stdout);
			return finish_stdout(EXIT_OK);
		}
		cmd = find_cmd(argv[1]);
		if (!cmd) {
			fprintf(stderr, "maptbl help: unknown command '%s'\n", argv[1]);
			return EXIT_USAGE;
		}
		cli_print_usage(stdout, cmd);
		return finish_stdout(EXIT_OK);
	}
	cmd = find_cmd(argv[0]);
	if (!cmd) {
		fprintf(stderr, "maptbl: unknown command '%s' (try 'maptbl --help')\n", argv[0]);
		return EXIT_USAGE;
	}
	cli.cmd = cmd->name;
	if (cli_want_help(argc, argv)) {
		cli_print_usage(stdout, cmd);
		return finish_stdout(EXIT_OK);
	}
	if (cli.json && !(cmd->flags & CMD_JSON)) {
		fprintf(stderr, "maptbl %s: --json is not supported by this command\n", cmd->name);
		return EXIT_USAGE;
	}
	return finish_stdout(cmd->fn(&cli, cmd, argc, argv));
}
