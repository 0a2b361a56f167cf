/* SPDX-License-Identifier: MIT */
/*
 * cmd_vf.c - maptbl vf create|list|destroy|stats|apply: VFs of a device from files.
 *
 * A second-level table of subcommands (bpftool's way, exact names). create and apply go
 * file -> fs adapter -> table -> push (libmaptbl-fs, libmaptbl, libmaptbl-hw); apply reads a YAML
 * file with libyaml and checks all of it, and builds every table, before it changes anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <maptbl/fs.h>
#include <maptbl/hw.h>

#include "cli.h"

static const char *const vf_usage[] = {
	"maptbl vf create|list|destroy|stats|apply|faults|serve [--dev DEV] ...",
	"create, list, destroy and provision VFs of a device",
	"",
	"  maptbl vf create --dev DEV FILE [--size SIZE] [--read-only] [--vf N] [--serve ...]",
	"      map FILE (ext4, XFS, any FIEMAP filesystem) into a table and push it to a free VF",
	"      (or VF N); prints the VF number. The virtual disk is the file's size rounded up",
	"      to blocks, or SIZE (K/M/G/T suffixes), which may exceed the file: the tail is a",
	"      hole that grows the file when written (through the fault queue). --serve: then",
	"      serve this VF's faults in the foreground, as 'vf serve --vf N' (serve options",
	"      apply); if another service owns the fault queue, it says so and exits with 0.",
	"  maptbl [--json] vf list --dev DEV [--all]",
	"      the VFs that have a table (--all: every VF): state, size, block size, file",
	"  maptbl vf destroy --dev DEV N...",
	"      disable VF N (its rings stop, a stalled request is dropped) and free its table",
	"  maptbl [--json] vf stats --dev DEV [N...]",
	"      the counters of VFs N (default: every VF with a table); 0 is the PF",
	"  maptbl [--json] vf faults --dev DEV [--wait MS]",
	"      run the PF fault queue for a moment: print the faults the device posts (VF, first",
	"      block, blocks, read/write, reason) within MS milliseconds (default 1000) and",
	"      acknowledge them. Service a fault by mapping the blocks (write them through the",
	"      filesystem) and pushing the new table ('vf create --vf N' or 'push'): the stalled",
	"      request is retried.",
	"  maptbl [--json] vf serve --dev DEV [--vf N]... [--alloc-unit SIZE] [--once]",
	"                  [--timeout MS] [--pidfile FILE]",
	"      the fault service, in the foreground: a write into a hole or unwritten range of",
	"      a VF's file is allocated through the filesystem (SIZE at a time, default 1M;",
	"      past the end of the file up to the end of the write: the file grows), the table",
	"      updated in place and the write retried; what cannot be allocated (ENOSPC,",
	"      EDQUOT, refused) fails with no-space. One line per fault (--json: one object).",
	"      Serves every VF, or the VFs --vf names. --once: stop after one fault;",
	"      --timeout: stop after MS milliseconds; SIGTERM/SIGINT stop it after the fault",
	"      in hand. --pidfile: written once the service runs, removed at exit.",
	"  maptbl vf apply [--dev DEV] [--dry-run] CONFIG.yaml",
	"      provision the VFs a YAML file lists:",
	"          device: emu:/run/maptbl.sock     # unless --dev or $MAPTBL_DEV",
	"          vfs:",
	"            - file: /srv/vm1.img           # required",
	"              vf: 1                        # default: the VF that has this file, or a free one",
	"              size: 20G                    # default: the file's size",
	"              read-only: false",
	"      The whole file is checked and every table built before any VF changes; errors",
	"      name CONFIG:LINE. VFs the file does not list are left alone.",
	"",
	"DEV is emu:SOCKET (maptbl-emu(8)), pci:BDF or vfio:BDF; default $MAPTBL_DEV.",
	"Exit status: 0 done, 1 failed or refused, 2 usage error, 3 device unreachable.",
	NULL,
};

struct vf_args {
	const char *dev;
	const char *size;
	bool read_only, all, dry_run, wait_set;
	uint64_t vf, wait_ms;
	/* serve */
	bool serve, serve_opt;	/* --serve; a serve option was given */
	unsigned vfs[MAPTBL_HW_MAX_VFS];
	size_t nr_vfs;
	struct cli_serve_args sv;
};

/* Common options of the subcommands. Returns an exit status; argv[optind..] are the operands. */
static int vf_options(struct cli *cli, int argc, char **argv, struct vf_args *a)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'D' },
		{ "size", required_argument, NULL, 's' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "vf", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ "dry-run", no_argument, NULL, 'N' },
		{ "wait", required_argument, NULL, 'w' },
		{ "serve", no_argument, NULL, 'S' },
		{ "alloc-unit", required_argument, NULL, 'u' },
		{ "once", no_argument, NULL, '1' },
		{ "timeout", required_argument, NULL, 't' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":D:s:rn:aNw:", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			a->dev = optarg;
			break;
		case 's':
			a->size = optarg;
			break;
		case 'r':
			a->read_only = true;
			break;
		case 'a':
			a->all = true;
			break;
		case 'N':
			a->dry_run = true;
			break;
		case 'w':
			if (cli_parse_u64(optarg, &a->wait_ms) || a->wait_ms > 3600000)
				return cli_usage_error(cli, "--wait '%s' is not a number of milliseconds up to 3600000",
						       optarg);
			a->wait_set = true;
			break;
		case 'n':
			if (cli_parse_u64(optarg, &a->vf) || a->vf < 1 || a->vf > MAPTBL_HW_MAX_VFS)
				return cli_usage_error(cli, "--vf '%s' is not a VF number from 1 to 64", optarg);
			if (a->nr_vfs < MAPTBL_HW_MAX_VFS)
				a->vfs[a->nr_vfs++] = (unsigned)a->vf;
			break;
		case 'S':
			a->serve = true;
			break;
		case 'u':
			if (cli_parse_size(optarg, &a->sv.alloc_unit) || !a->sv.alloc_unit ||
			    a->sv.alloc_unit > (1ull << 30))
				return cli_usage_error(cli, "--alloc-unit '%s' is not a size from 1 byte to 1G",
						       optarg);
			a->serve_opt = true;
			break;
		case '1':
			a->sv.once = a->serve_opt = true;
			break;
		case 't':
			if (cli_parse_u64(optarg, &a->sv.timeout_ms) || !a->sv.timeout_ms ||
			    a->sv.timeout_ms > 86400000)
				return cli_usage_error(cli, "--timeout '%s' is not a number of milliseconds from 1 to 86400000",
						       optarg);
			a->serve_opt = true;
			break;
		case 'P':
			a->sv.pidfile = optarg;
			a->serve_opt = true;
			break;
		default:
			return cli_bad_option(cli, c, argv);
		}
	}
	if ((a->serve || a->serve_opt) && strcmp(argv[0], "create") && strcmp(argv[0], "serve"))
		return cli_usage_error(cli, "--serve, --alloc-unit, --once, --timeout and --pidfile are for create and serve");
	return EXIT_OK;
}

/* One VF to provision: a file and how to show it. */
struct vf_plan {
	const char *file;
	char *size;		/* NULL: the file's size */
	bool read_only;
	unsigned vf;		/* 0: to be chosen */
	size_t line;		/* apply: line in the YAML file */
	struct maptbl_table *t;
	char label[PATH_MAX];
};

/* Builds p->t from p->file. @where prefixes messages ("FILE" or "CONFIG:LINE"). */
static int plan_build(struct cli *cli, struct vf_plan *p, const char *where)
{
	struct maptbl_fs_map *fm = NULL;
	struct maptbl_build_opts bo;
	const struct maptbl_extent *ext;
	uint64_t fblocks, bytes;
	uint32_t bs;
	size_t nr;
	int status, err;

	status = cli_map_file(cli, p->file, NULL, 0, 0, p->read_only, &fm);
	if (status)
		return status;
	bs = maptbl_fs_map_block_size(fm);
	ext = maptbl_fs_map_extents(fm, &nr);
	fblocks = (maptbl_fs_map_file_size(fm) + bs - 1) / bs;
	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.block_size = bs;
	bo.virtual_blocks = fblocks ? fblocks : 1;
	if (p->size) {
		if (cli_parse_size(p->size, &bytes) || !bytes) {
			cli_error(cli, "%s: size '%s' is not a size", where, p->size);
			status = EXIT_FAILED;
			goto out;
		}
		if (bytes % bs || bytes / bs < fblocks) {
			cli_error(cli, "%s: size %s is %s (%llu bytes, blocks of %u)", where, p->size,
				  bytes % bs ? "not a multiple of the file's block size"
					     : "smaller than the file",
				  (unsigned long long)maptbl_fs_map_file_size(fm), bs);
			status = EXIT_FAILED;
			goto out;
		}
		bo.virtual_blocks = bytes / bs;
	}
	/* A writable VF's table gets room for the fault service's updates, as its compaction would
	 * give it (REGISTERS.md §12.2): without, the first fault of every VF compacted the table. */
	if (!p->read_only) {
		bo.spare_nodes = 64;
		bo.fill_pct = 90;
	}
	bo.disk_blocks = maptbl_fs_map_disk_size(fm) / bs;
	bo.disk_path = maptbl_fs_map_disk(fm);
	bo.disk_id = maptbl_fs_map_disk_id(fm);
	err = maptbl_table_build(ext, nr, &bo, &p->t);
	if (err) {
		cli_error(cli, "%s: cannot build its table: %s", where,
			  cli_last_log() ? cli_last_log() : strerror(-err));
		status = EXIT_FAILED;
		goto out;
	}
	if (!realpath(p->file, p->label))
		snprintf(p->label, sizeof(p->label), "%s", p->file);
out:
	maptbl_fs_map_free(fm);
	return status;
}

/* The device must hold the disk the table maps: refuse a table that maps past its end. */
static int check_disk(struct cli *cli, struct maptbl_hw *hw, const struct vf_plan *p,
		      const char *where)
{
	struct maptbl_hw_dev_info di;
	uint64_t need = maptbl_table_disk_blocks(p->t) * maptbl_table_block_size(p->t);
	int err = maptbl_hw_dev_info(hw, &di);

	if (err)
		return cli_hw_error(cli, err, "device");
	if (need > di.disk_blocks * di.block_size) {
		cli_error(cli, "%s: is on %s (%llu bytes), larger than the device's disk (%llu bytes): "
			  "the device must serve the disk the file is on", where,
			  maptbl_table_disk_path(p->t) ? maptbl_table_disk_path(p->t) : "a disk",
			  (unsigned long long)need,
			  (unsigned long long)(di.disk_blocks * di.block_size));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int push_plan(struct cli *cli, struct maptbl_hw *hw, struct vf_plan *p, const char *where)
{
	struct maptbl_hw_push_opts po;
	int err;

	maptbl_hw_push_opts_init(&po, sizeof(po));
	po.read_only = p->read_only;
	po.label = p->label;
	err = maptbl_hw_vf_push(hw, p->vf, p->t, &po);
	if (err)
		return cli_hw_error(cli, err, "%s: push to VF %u", where, p->vf);
	return EXIT_OK;
}

static int vf_create(struct cli *cli, int argc, char **argv)
{
	struct vf_args a = { 0 };
	struct vf_plan p = { 0 };
	struct maptbl_hw *hw = NULL;
	int status = vf_options(cli, argc, argv, &a), err;

	if (status)
		return status;
	if (a.all || a.dry_run)
		return cli_usage_error(cli, "--all and --dry-run are for list and apply");
	if (a.serve_opt && !a.serve)
		return cli_usage_error(cli, "--alloc-unit, --once, --timeout and --pidfile need --serve");
	if (a.serve && a.read_only)
		return cli_usage_error(cli, "a read-only VF has no write faults to serve");
	if (a.nr_vfs > 1)
		return cli_usage_error(cli, "one --vf for create");
	if (optind >= argc)
		return cli_usage_error(cli, "need a FILE");
	p.file = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	p.size = (char *)a.size;
	p.read_only = a.read_only;
	p.vf = (unsigned)a.vf;
	status = plan_build(cli, &p, p.file);
	if (status)
		goto out;
	status = cli_open_hw(cli, a.dev, &hw);
	if (status || (status = check_disk(cli, hw, &p, p.file)))
		goto out;
	if (!p.vf && (err = maptbl_hw_vf_find_free(hw, &p.vf))) {
		status = cli_hw_error(cli, err, "%s: no free VF", p.file);
		goto out;
	}
	status = push_plan(cli, hw, &p, p.file);
	if (!status)
		printf("%u\n", p.vf);
	if (!status && a.serve) {
		const char *files[1] = { p.label };

		fflush(stdout);
		a.sv.vfs = &p.vf;
		a.sv.files = files;
		a.sv.nr_vfs = 1;
		a.sv.busy_ok = true;
		status = cli_serve(cli, hw, &a.sv);
	}
out:
	maptbl_hw_close(hw);
	maptbl_table_free(p.t);
	return status;
}

static const char *vf_state(const struct maptbl_hw_vf_info *v)
{
	if (!v->exists)
		return "absent";
	if (!v->enabled)
		return "off";
	if (v->stalled)
		return "stalled";
	if (v->table_error)
		return "table-error";
	return "ready";
}

static int vf_list(struct cli *cli, int argc, char **argv)
{
	struct maptbl_hw_dev_info di;
	struct maptbl_hw *hw = NULL;
	struct vf_args a = { 0 };
	bool first = true;
	int status = vf_options(cli, argc, argv, &a), err;

	if (status)
		return status;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((status = cli_open_hw(cli, a.dev, &hw)))
		return status;
	if ((err = maptbl_hw_dev_info(hw, &di))) {
		status = cli_hw_error(cli, err, "device");
		goto out;
	}
	if (cli->json)
		printf("{\"max_vfs\": %u, \"num_vfs\": %u, \"vfs\": [", di.max_vfs, di.num_vfs);
	else
		printf("%-3s %-11s %14s %6s %3s %10s  %s\n", "VF", "STATE", "SIZE", "BSIZE", "RO",
		       "TABLE", "FILE");
	for (unsigned vf = 1; vf <= di.max_vfs; vf++) {
		struct maptbl_hw_vf_info v;

		if ((err = maptbl_hw_vf_info(hw, vf, &v))) {
			status = cli_hw_error(cli, err, "VF %u", vf);
			goto out;
		}
		if (!v.enabled && !a.all)
			continue;
		if (cli->json) {
			printf("%s\n  {\"vf\": %u, \"state\": \"%s\", \"blocks\": %" PRIu64
			       ", \"block_size\": %u, \"bytes\": %" PRIu64 ", \"read_only\": %s"
			       ", \"table_base\": %" PRIu64 ", \"table_len\": %" PRIu64
			       ", \"stalled\": %s, \"table_error\": \"%s\", \"file\": ",
			       first ? "" : ",", vf, vf_state(&v), v.virt_blocks, v.block_size,
			       v.virt_blocks * v.block_size, v.read_only ? "true" : "false",
			       v.table_base, v.table_len, v.stalled ? "true" : "false",
			       v.table_error ? maptbl_hw_terr_name(v.terr) : "none");
			json_str(stdout, v.label);
			if (v.stalled)
				printf(", \"fault\": {\"lba\": %" PRIu64 ", \"count\": %u, \"write\": %s"
				       ", \"reason\": %u}", v.fault_lba, v.fault_count,
				       (v.fault_info & MAPTBL_FAULT_INFO_WRITE) ? "true" : "false",
				       maptbl_hw_fault_reason(v.fault_info));
			printf("}");
			first = false;
		} else {
			printf("%-3u %-11s %14" PRIu64 " %6u %3s %10" PRIu64 "  %s\n", vf, vf_state(&v),
			       v.virt_blocks * v.block_size, v.block_size, v.read_only ? "yes" : "no",
			       v.table_len, v.label[0] ? v.label : "-");
			if (v.stalled)
				printf("    stalled on a %s fault at block %" PRIu64 ", %u blocks\n",
				       (v.fault_info & MAPTBL_FAULT_INFO_WRITE) ? "write" : "read",
				       v.fault_lba, v.fault_count);
		}
	}
	if (cli->json)
		printf("\n]}\n");
out:
	maptbl_hw_close(hw);
	return status;
}

/* VF numbers from argv[optind..] (or --vf). Returns an exit status. */
static int vf_numbers(struct cli *cli, int argc, char **argv, const struct vf_args *a,
		      unsigned *vfs, size_t *n, bool allow_pf)
{
	*n = 0;
	if (a->vf)
		vfs[(*n)++] = (unsigned)a->vf;
	for (int i = optind; i < argc; i++) {
		uint64_t v;

		if (cli_parse_u64(argv[i], &v) || v > MAPTBL_HW_MAX_VFS || (!v && !allow_pf))
			return cli_usage_error(cli, "'%s' is not a VF number from %d to 64", argv[i],
					       allow_pf ? 0 : 1);
		if (*n == MAPTBL_HW_MAX_VFS + 1)
			return cli_usage_error(cli, "too many VF numbers");
		vfs[(*n)++] = (unsigned)v;
	}
	return EXIT_OK;
}

static int vf_destroy(struct cli *cli, int argc, char **argv)
{
	unsigned vfs[MAPTBL_HW_MAX_VFS + 1];
	struct maptbl_hw *hw = NULL;
	struct vf_args a = { 0 };
	size_t n;
	int status = vf_options(cli, argc, argv, &a);

	if (status || (status = vf_numbers(cli, argc, argv, &a, vfs, &n, false)))
		return status;
	if (!n)
		return cli_usage_error(cli, "need a VF number");
	if ((status = cli_open_hw(cli, a.dev, &hw)))
		return status;
	for (size_t i = 0; i < n; i++) {
		int err = maptbl_hw_vf_destroy(hw, vfs[i]);

		if (err) { /* keep going, report the first failure (STYLE.md §11) */
			int s = cli_hw_error(cli, err, "VF %u", vfs[i]);

			if (!status)
				status = s;
		}
	}
	maptbl_hw_close(hw);
	return status;
}

static int vf_stats(struct cli *cli, int argc, char **argv)
{
	unsigned vfs[MAPTBL_HW_MAX_VFS + 1];
	struct maptbl_hw_dev_info di;
	struct maptbl_hw *hw = NULL;
	struct vf_args a = { 0 };
	size_t n;
	int status = vf_options(cli, argc, argv, &a), err;

	if (status || (status = vf_numbers(cli, argc, argv, &a, vfs, &n, true)))
		return status;
	if ((status = cli_open_hw(cli, a.dev, &hw)))
		return status;
	if ((err = maptbl_hw_dev_info(hw, &di))) {
		status = cli_hw_error(cli, err, "device");
		goto out;
	}
	if (!n) {
		for (unsigned vf = 1; vf <= di.max_vfs; vf++) {
			struct maptbl_hw_vf_info v;

			if ((err = maptbl_hw_vf_info(hw, vf, &v))) {
				status = cli_hw_error(cli, err, "VF %u", vf);
				goto out;
			}
			if (v.enabled)
				vfs[n++] = vf;
		}
	}
	if (cli->json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		struct maptbl_hw_counters c;
		uint64_t xl, nl;

		if ((err = maptbl_hw_counters(hw, vfs[i], &c))) {
			status = cli_hw_error(cli, err, "VF %u", vfs[i]);
			goto out;
		}
		xl = c.c[MAPTBL_STAT_XC_HITS] + c.c[MAPTBL_STAT_XC_MISSES];
		nl = c.c[MAPTBL_STAT_NC_HITS] + c.c[MAPTBL_STAT_NC_MISSES];
		if (cli->json) {
			printf("%s\n  {\"fn\": %u", i ? "," : "", vfs[i]);
			for (unsigned k = 0; k < MAPTBL_STAT_COUNT; k++)
				if (maptbl_hw_stat_name(k))
					printf(", \"%s\": %" PRIu64, maptbl_hw_stat_name(k), c.c[k]);
			printf("}");
			continue;
		}
		printf("%s %u:\n", vfs[i] ? "VF" : "PF", vfs[i]);
		for (unsigned k = 0; k < MAPTBL_STAT_COUNT; k++)
			if (maptbl_hw_stat_name(k))
				printf("  %-13s %" PRIu64 "\n", maptbl_hw_stat_name(k), c.c[k]);
		printf("  %-13s %.1f%%\n  %-13s %.1f%%\n  %-13s %.2f\n", "xc_hit_rate",
		       xl ? 100.0 * (double)c.c[MAPTBL_STAT_XC_HITS] / (double)xl : 0.0, "nc_hit_rate",
		       nl ? 100.0 * (double)c.c[MAPTBL_STAT_NC_HITS] / (double)nl : 0.0,
		       "nodes_per_walk",
		       c.c[MAPTBL_STAT_WALKS] ? (double)c.c[MAPTBL_STAT_NODES] /
							(double)c.c[MAPTBL_STAT_WALKS] : 0.0);
	}
	if (cli->json)
		printf("\n]\n");
out:
	maptbl_hw_close(hw);
	return status;
}

static const char *reason_name(uint32_t r)
{
	return r == MAPTBL_FAULT_HOLE ? "hole" : r == MAPTBL_FAULT_UNWRITTEN ? "unwritten"
		: r == MAPTBL_FAULT_ABSENT ? "absent" : "unknown";
}

/* The fault queue through maptbl_hw_fault_start/read/ack/stop. */
static int vf_faults(struct cli *cli, int argc, char **argv)
{
	struct maptbl_hw_fault_entry f[64];
	struct maptbl_hw *hw = NULL;
	struct vf_args a = { 0 };
	int status = vf_options(cli, argc, argv, &a), n, err, total = 0;
	int timeout;

	if (status)
		return status;
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	timeout = a.wait_set ? (int)a.wait_ms : 1000;
	if ((status = cli_open_hw(cli, a.dev, &hw)))
		return status;
	if ((err = maptbl_hw_fault_start(hw, 64))) {
		status = cli_hw_error(cli, err, "fault queue");
		goto out;
	}
	if (cli->json)
		printf("[");
	/* The first read waits up to the timeout; then take what else is there at once. */
	while ((n = maptbl_hw_fault_read(hw, f, 64, total ? 0 : timeout)) > 0) {
		for (int i = 0; i < n; i++, total++) {
			if (cli->json)
				printf("%s\n  {\"vf\": %u, \"lba\": %" PRIu64 ", \"count\": %u, \"write\": %s"
				       ", \"reason\": \"%s\", \"tag\": %u, \"seq\": %u}", total ? "," : "",
				       f[i].vf, f[i].lba, f[i].count, f[i].write ? "true" : "false",
				       reason_name(f[i].reason), f[i].tag, f[i].seq);
			else
				printf("VF %u: %s fault at block %" PRIu64 ", %u blocks (%s), seq %u\n", f[i].vf,
				       f[i].write ? "write" : "read", f[i].lba, f[i].count,
				       reason_name(f[i].reason), f[i].seq);
		}
		if ((err = maptbl_hw_fault_ack(hw, (unsigned)n))) {
			status = cli_hw_error(cli, err, "fault queue: acknowledge");
			break;
		}
	}
	if (n < 0 && !status)
		status = cli_hw_error(cli, n, "fault queue");
	if (cli->json)
		printf("%s]\n", total ? "\n" : "");
	maptbl_hw_fault_stop(hw);
out:
	maptbl_hw_close(hw);
	return status;
}

/* The fault service (vf_serve.c). */
static int vf_serve(struct cli *cli, int argc, char **argv)
{
	struct maptbl_hw *hw = NULL;
	struct vf_args a = { 0 };
	int status = vf_options(cli, argc, argv, &a);

	if (status)
		return status;
	if (a.size || a.read_only || a.all || a.dry_run || a.wait_set || a.serve)
		return cli_usage_error(cli, "serve takes --dev, --vf, --alloc-unit, --once, --timeout and --pidfile");
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((status = cli_open_hw(cli, a.dev, &hw)))
		return status;
	a.sv.vfs = a.nr_vfs ? a.vfs : NULL;
	a.sv.nr_vfs = a.nr_vfs;
	status = cli_serve(cli, hw, &a.sv);
	maptbl_hw_close(hw);
	return status;
}

/* ---- apply ---- */

struct config {
	const char *path;
	char *device;
	struct vf_plan *plans;
	size_t nr;
};

static size_t line_of(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Reads and checks CONFIG (syntax and values, not the files yet). Returns an exit status. */
static int config_parse(struct cli *cli, struct config *cf)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *vfs = NULL;
	FILE *f = fopen(cf->path, "r");
	int status = EXIT_OK;

	if (!f) {
		cli_error(cli, "%s: %s", cf->path, strerror(errno));
		return EXIT_NOCHECK;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		cli_error(cli, "%s:%zu: %s%s%s", cf->path, parser.problem_mark.line + 1,
			  parser.problem ? parser.problem : "malformed YAML",
			  parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		fclose(f);
		return EXIT_FAILED;
	}
	root = yaml_document_get_root_node(&doc);
#define FAIL(node, ...) do { \
		char m_[512]; \
		snprintf(m_, sizeof(m_), __VA_ARGS__); \
		cli_error(cli, "%s:%zu: %s", cf->path, (node) ? line_of(node) : (size_t)1, m_); \
		status = EXIT_FAILED; \
		goto out; \
	} while (0)
	if (!root || root->type != YAML_MAPPING_NODE)
		FAIL(root, "expected a mapping with 'vfs:' (and optionally 'device:')");
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
		const char *key = scalar(k);

		if (key && !strcmp(key, "device")) {
			if (!scalar(v) || !*scalar(v))
				FAIL(v, "device: expected a device name (emu:SOCKET, pci:BDF, vfio:BDF)");
			free(cf->device);
			cf->device = strdup(scalar(v));
		} else if (key && !strcmp(key, "vfs")) {
			if (v->type != YAML_SEQUENCE_NODE)
				FAIL(v, "vfs: expected a list of VFs ('- file: PATH')");
			vfs = v;
		} else {
			FAIL(k, "unknown key '%s' (known: device, vfs)", key ? key : "(not a scalar)");
		}
	}
	if (!vfs)
		FAIL(root, "no 'vfs:' list");
	cf->nr = (size_t)(vfs->data.sequence.items.top - vfs->data.sequence.items.start);
	cf->plans = calloc(cf->nr ? cf->nr : 1, sizeof(*cf->plans));
	if (!cf->plans)
		FAIL(vfs, "out of memory");
	for (size_t i = 0; i < cf->nr; i++) {
		yaml_node_t *item = yaml_document_get_node(&doc, vfs->data.sequence.items.start[i]);
		struct vf_plan *p = &cf->plans[i];

		p->line = line_of(item);
		if (item->type != YAML_MAPPING_NODE)
			FAIL(item, "expected a mapping ('file: PATH', 'vf: N', 'size: SIZE', 'read-only: BOOL')");
		for (yaml_node_pair_t *pr = item->data.mapping.pairs.start;
		     pr < item->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
			yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
			const char *key = scalar(k), *val = scalar(v);
			uint64_t n;

			if (!key)
				FAIL(k, "expected a key");
			if (!val)
				FAIL(v, "%s: expected a single value", key);
			if (!strcmp(key, "file")) {
				if (!*val)
					FAIL(v, "file: empty path");
				p->file = strdup(val);
			} else if (!strcmp(key, "vf")) {
				if (cli_parse_u64(val, &n) || n < 1 || n > MAPTBL_HW_MAX_VFS)
					FAIL(v, "vf: '%s' is not a VF number from 1 to 64", val);
				p->vf = (unsigned)n;
			} else if (!strcmp(key, "size")) {
				if (cli_parse_size(val, &n) || !n)
					FAIL(v, "size: '%s' is not a size (bytes, K/M/G/T suffixes)", val);
				p->size = strdup(val);
			} else if (!strcmp(key, "read-only")) {
				if (!strcmp(val, "true") || !strcmp(val, "yes"))
					p->read_only = true;
				else if (!strcmp(val, "false") || !strcmp(val, "no"))
					p->read_only = false;
				else
					FAIL(v, "read-only: '%s' is not true or false", val);
			} else {
				FAIL(k, "unknown key '%s' (known: file, vf, size, read-only)", key);
			}
		}
		if (!p->file)
			FAIL(item, "this VF has no 'file:'");
		for (size_t j = 0; j < i; j++)
			if (p->vf && cf->plans[j].vf == p->vf)
				FAIL(item, "VF %u is also given on line %zu", p->vf, cf->plans[j].line);
	}
#undef FAIL
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return status;
}

static int vf_apply(struct cli *cli, int argc, char **argv)
{
	struct config cf = { 0 };
	struct vf_args a = { 0 };
	struct maptbl_hw *hw = NULL;
	bool taken[MAPTBL_HW_MAX_VFS + 1] = { false };
	char where[PATH_MAX + 32];
	int status = vf_options(cli, argc, argv, &a), err;

	if (status)
		return status;
	if (a.size || a.read_only || a.vf || a.all)
		return cli_usage_error(cli, "apply takes its VFs from CONFIG.yaml");
	if (optind >= argc)
		return cli_usage_error(cli, "need a CONFIG.yaml");
	cf.path = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((status = config_parse(cli, &cf)))
		goto out;
	/* Every file mapped and every table built before anything changes. */
	for (size_t i = 0; i < cf.nr; i++) {
		snprintf(where, sizeof(where), "%s:%zu: %s", cf.path, cf.plans[i].line, cf.plans[i].file);
		int s = plan_build(cli, &cf.plans[i], where);

		if (s && !status)
			status = s;
	}
	if (status)
		goto out;
	if ((status = cli_open_hw(cli, a.dev ? a.dev : cf.device, &hw)))
		goto out;
	for (size_t i = 0; i < cf.nr; i++) {
		snprintf(where, sizeof(where), "%s:%zu: %s", cf.path, cf.plans[i].line, cf.plans[i].file);
		if ((status = check_disk(cli, hw, &cf.plans[i], where)))
			goto out;
		if (cf.plans[i].vf)
			taken[cf.plans[i].vf] = true;
	}
	/* VFs for the entries without a number: the one that has the file already, else free. */
	for (size_t i = 0; i < cf.nr; i++) {
		struct vf_plan *p = &cf.plans[i];
		struct maptbl_hw_dev_info di;

		if (p->vf)
			continue;
		if ((err = maptbl_hw_dev_info(hw, &di))) {
			status = cli_hw_error(cli, err, "device");
			goto out;
		}
		for (unsigned pass = 0; pass < 2 && !p->vf; pass++)
			for (unsigned vf = 1; vf <= di.max_vfs && !p->vf; vf++) {
				struct maptbl_hw_vf_info v;

				if (taken[vf])
					continue;
				if ((err = maptbl_hw_vf_info(hw, vf, &v))) {
					status = cli_hw_error(cli, err, "VF %u", vf);
					goto out;
				}
				if (pass == 0 ? (v.enabled && !strcmp(v.label, p->label)) : !v.enabled)
					p->vf = vf;
			}
		if (!p->vf) {
			cli_error(cli, "%s:%zu: %s: no free VF left", cf.path, p->line, p->file);
			status = EXIT_FAILED;
			goto out;
		}
		taken[p->vf] = true;
	}
	for (size_t i = 0; i < cf.nr; i++) {
		struct vf_plan *p = &cf.plans[i];

		snprintf(where, sizeof(where), "%s:%zu: %s", cf.path, p->line, p->file);
		if (a.dry_run) {
			printf("VF %u: %s (%llu bytes%s) [dry run]\n", p->vf, p->file,
			       (unsigned long long)(maptbl_table_virtual_blocks(p->t) *
						    maptbl_table_block_size(p->t)),
			       p->read_only ? ", read-only" : "");
			continue;
		}
		if ((status = push_plan(cli, hw, p, where)))
			goto out;
		printf("VF %u: %s (%llu bytes%s)\n", p->vf, p->file,
		       (unsigned long long)(maptbl_table_virtual_blocks(p->t) *
					    maptbl_table_block_size(p->t)),
		       p->read_only ? ", read-only" : "");
	}
out:
	maptbl_hw_close(hw);
	for (size_t i = 0; i < cf.nr; i++) {
		maptbl_table_free(cf.plans[i].t);
		free((char *)cf.plans[i].file);
		free(cf.plans[i].size);
	}
	free(cf.plans);
	free(cf.device);
	return status;
}

static int do_vf(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *cli, int argc, char **argv);
		bool json;
	} subs[] = {
		{ "create", vf_create, false },
		{ "list", vf_list, true },
		{ "destroy", vf_destroy, false },
		{ "stats", vf_stats, true },
		{ "apply", vf_apply, false },
		{ "faults", vf_faults, true },
		{ "serve", vf_serve, true },
	};

	(void)cmd;
	if (argc < 2)
		return cli_usage_error(cli, "need a subcommand: create, list, destroy, stats, apply, faults or serve");
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		if (cli->json && !subs[i].json)
			return cli_usage_error(cli, "--json is not supported by 'vf %s'", subs[i].name);
		return subs[i].fn(cli, argc - 1, argv + 1);
	}
	return cli_usage_error(cli, "unknown subcommand '%s' (create, list, destroy, stats, apply, faults, serve)",
			       argv[1]);
}

const struct maptbl_cmd cmd_vf = {
	.name = "vf",
	.fn = do_vf,
	.usage = vf_usage,
	.flags = CMD_JSON,
};
