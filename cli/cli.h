/* SPDX-License-Identifier: MIT */
/*
 * cli.h - shared by the maptbl command's source files.
 *
 * Each cmd_<name>.c defines a usage array and a handler. main.c dispatches on the exact name,
 * handles the global options and "help", and flushes stdout before exiting. Handlers return an
 * exit status (enum cli_exit), never -errno.
 */
#ifndef MAPTBL_CLI_H
#define MAPTBL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <maptbl/maptbl.h>

/** Exit statuses, documented in maptbl(8). */
enum cli_exit {
	EXIT_OK = 0,	  /* success */
	EXIT_FAILED = 1,  /* the operation failed, or verify found a problem */
	EXIT_USAGE = 2,	  /* usage error */
	EXIT_NOCHECK = 3, /* could not check: I/O error, unsupported feature */
};

/* Command flags, checked once by the dispatcher. */
#define CMD_JSON 0x1u	/* accepts --json */
#define CMD_WRITES 0x2u /* writes an output file */

/* Per-invocation state: no mutable globals. */
struct cli {
	const char *cmd; /* the subcommand name, for messages */
	bool json;	 /* --json: results and errors as JSON on stdout */
	int verbose;	 /* -v: library log messages on stderr */
	bool printed_error;
};

struct maptbl_cmd {
	const char *name;
	int (*fn)(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv);
	const char *const *usage; /* line 0 synopsis, line 1 summary, then details; NULL-terminated */
	unsigned flags;
};

extern const struct maptbl_cmd cmd_build, cmd_verify, cmd_dump, cmd_lookup, cmd_cat,
	cmd_stats;
extern const struct maptbl_cmd cmd_push, cmd_vf;

/* Messages: "maptbl CMD: message" on stderr, or {"error": ...} on stdout in JSON mode. */
void cli_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error: message, then "Try 'maptbl CMD --help'". Returns EXIT_USAGE. */
int cli_usage_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt_long returned '?' or ':' (opterr is 0): names the bad option. EXIT_USAGE. */
int cli_bad_option(struct cli *cli, int c, char **argv);
void cli_print_usage(FILE *f, const struct maptbl_cmd *cmd);
/* Common option handling: returns -1 if @opt is not a common one, else an exit status or 0. */
bool cli_want_help(int argc, char **argv);

/* Numbers: decimal or 0x hex, no sign, no overflow. Returns 0 or -EINVAL / -ERANGE. */
int cli_parse_u64(const char *s, uint64_t *out);
/* Sizes in bytes with an optional K, M, G, T, P, E suffix (powers of 1024, "KiB" also). */
int cli_parse_size(const char *s, uint64_t *out);

/* Reads a whole file ("-" is stdin). Returns 0 or -errno; *buf is malloc'd. */
int cli_read_file(const char *path, uint8_t **buf, size_t *len);
/*
 * Writes @len bytes to @path atomically: a temporary file in the same directory, fsync, rename,
 * fsync of the directory. "-" writes to stdout. Returns 0 or -errno; nothing is left behind on
 * failure.
 */
int cli_write_atomic(const char *path, const void *buf, size_t len);

/* Opens a table file for reading commands. Returns an exit status; on error it printed why. */
int cli_open_table(struct cli *cli, const char *path, struct maptbl_table **out);

/* The library's last error message (through the log callback), or NULL. */
const char *cli_last_log(void);

/* JSON output helpers. */
void json_str(FILE *f, const char *s);

const char *cli_state_name(uint32_t state);
/* Digits of @v in decimal or hex (without a 0x prefix). */
int cli_digits(uint64_t v, bool hex);

/* The device commands (cmd_push.c, cmd_vf.c). */
struct maptbl_fs_map;
struct maptbl_hw;
/* Maps FILE through the fs adapters (cmd_build.c); prints each refusal. Returns an exit status. */
int cli_map_file(struct cli *cli, const char *file, const char *image, uint32_t source,
		 uint32_t bs, bool read_only, struct maptbl_fs_map **out);
/* Opens DEV (or $MAPTBL_DEV when NULL). Returns an exit status; on error it printed why. */
int cli_open_hw(struct cli *cli, const char *dev, struct maptbl_hw **out);
/* Exit status for a libmaptbl-hw error, after printing "WHAT: reason". */
int cli_hw_error(struct cli *cli, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Forget the library's last error message (before an operation whose own message is wanted). */
void cli_clear_last_log(void);

/* The fault service (vf_serve.c): vf serve, vf create --serve. */
struct cli_serve_args {
	const unsigned *vfs;	   /* NULL: every VF */
	const char *const *files;  /* per VF of vfs: its file, or NULL */
	size_t nr_vfs;
	uint64_t alloc_unit;	   /* bytes; 0 = the library's default */
	uint64_t timeout_ms;	   /* 0: until SIGTERM/SIGINT */
	bool once;		   /* stop after the first fault answered */
	const char *pidfile;	   /* written once the service runs, removed at exit */
	bool busy_ok;		   /* another service has the fault queue: say so, exit 0 */
};
/* Runs the service on @hw until a signal, --once or --timeout. Returns an exit status. */
int cli_serve(struct cli *cli, struct maptbl_hw *hw, const struct cli_serve_args *a);

#endif
