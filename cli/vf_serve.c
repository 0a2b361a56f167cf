/* SPDX-License-Identifier: MIT */
/*
 * vf_serve.c - maptbl vf serve (and vf create --serve): the fault service of libmaptbl-hw
 * (maptbl_hw_serve_*) with libmaptbl-fs as its mapper, in the foreground, one line per fault.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/vfs.h>

#include <maptbl/fs.h>
#include <maptbl/hw.h>

#include "cli.h"

/* The mapper: the file's extents through the filesystem adapters, checked for a writable table. */
static int fs_mapper(void *ctx, const struct maptbl_hw_map_req *req,
		     int (*add)(void *sink, const struct maptbl_extent *e), void *sink)
{
	struct maptbl_fs_map *fm = NULL;
	struct maptbl_fs_opts fo;
	struct statfs sfs;
	const struct maptbl_extent *ext;
	uint64_t a = req->lblk * req->block_size, b = (req->lblk + req->nblocks) * req->block_size;
	size_t nr;
	int err;

	(void)ctx;
	maptbl_fs_opts_init(&fo, sizeof(fo));
	fo.block_size = req->block_size;
	/* The service synced the file: no second sync (each flushes the disk). Not on btrfs, whose
	 * backref walk reads the committed extent tree: its sync is a transaction commit, which
	 * the service's fdatasync is not. */
	if ((req->flags & MAPTBL_HW_MAP_SYNCED) && !statfs(req->path, &sfs) &&
	    (unsigned long)sfs.f_type != BTRFS_SUPER_MAGIC)
		fo.flags |= MAPTBL_FS_NO_SYNC;
	if ((err = maptbl_fs_map_file(req->path, &fo, &fm)))
		return err;
	if (req->disk_id && maptbl_fs_map_disk_id(fm) != req->disk_id) {
		maptbl_log(MAPTBL_LOG_ERROR, "%s: no longer on the disk its table maps (now %s)",
			   req->path, maptbl_fs_map_disk(fm));
		err = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < maptbl_fs_map_nr_findings(fm); i++) {
		const struct maptbl_fs_finding *f = maptbl_fs_map_finding(fm, i);

		if ((f->refuses & MAPTBL_FS_REFUSES_WRITABLE) && f->offset < b && f->offset + f->length > a) {
			maptbl_log(MAPTBL_LOG_ERROR, "%s: offset %" PRIu64 ": %s: refused for a writable VF",
				   req->path, f->offset, maptbl_fs_rule_name(f->rule));
			err = -EINVAL;
			goto out;
		}
	}
	ext = maptbl_fs_map_extents(fm, &nr);
	for (size_t i = 0; i < nr && !err; i++)
		if (ext[i].lblk < req->lblk + req->nblocks && ext[i].lblk + ext[i].len > req->lblk)
			err = add(sink, &ext[i]);
out:
	maptbl_fs_map_free(fm);
	return err;
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

struct serve_ctx {
	struct cli *cli;
	unsigned long served, failed;
};

static const char *reason_str(uint32_t r)
{
	return r == MAPTBL_FAULT_HOLE ? "hole" : r == MAPTBL_FAULT_UNWRITTEN ? "unwritten"
		: r == MAPTBL_FAULT_ABSENT ? "absent" : r == MAPTBL_FAULT_COMMIT ? "commit" : "unknown";
}

static void report(void *ctx, const struct maptbl_hw_serve_event *ev)
{
	struct serve_ctx *sc = ctx;
	const char *result = (ev->flags & MAPTBL_HW_SERVE_SKIPPED) ? "skipped"
			     : (ev->flags & MAPTBL_HW_SERVE_FAILED) ? "failed" : "served";
	const char *why = ev->error ? (cli_last_log() ? cli_last_log() : strerror(-ev->error)) : NULL;

	if (ev->flags & MAPTBL_HW_SERVE_FAILED)
		sc->failed++;
	else if (!(ev->flags & MAPTBL_HW_SERVE_SKIPPED))
		sc->served++;
	if (sc->cli->json) {
		printf("{\"vf\": %u, \"result\": \"%s\", \"write\": %s, \"reason\": \"%s\", \"lba\": %" PRIu64
		       ", \"count\": %u, \"alloc_lba\": %" PRIu64 ", \"alloc_blocks\": %" PRIu64
		       ", \"file_size\": %" PRIu64 ", \"grew\": %s, \"compacted\": %s, \"restored\": %s"
		       ", \"waited\": %s, \"committed\": %s"
		       ", \"table_bytes\": %" PRIu64 ", \"generation\": %u, \"service_us\": %.1f",
		       ev->vf, result, ev->write ? "true" : "false", reason_str(ev->reason), ev->lba,
		       ev->count, ev->alloc_lba, ev->alloc_blocks, ev->file_size,
		       (ev->flags & MAPTBL_HW_SERVE_GREW) ? "true" : "false",
		       (ev->flags & MAPTBL_HW_SERVE_COMPACTED) ? "true" : "false",
		       (ev->flags & MAPTBL_HW_SERVE_RESTORED) ? "true" : "false",
		       (ev->flags & MAPTBL_HW_SERVE_WAITED) ? "true" : "false",
		       (ev->flags & MAPTBL_HW_SERVE_COMMITTED) ? "true" : "false", ev->table_bytes,
		       ev->generation, (double)ev->service_ns / 1e3);
		if (why) {
			printf(", \"errno\": \"%s\", \"error\": ", strerrorname_np(-ev->error)
								   ? strerrorname_np(-ev->error) : "?");
			json_str(stdout, why);
		}
		printf("}\n");
	} else if (ev->reason == MAPTBL_FAULT_COMMIT) {
		printf("VF %u: %s: ", ev->vf, ev->write ? "FUA write" : "flush");
		if (ev->flags & MAPTBL_HW_SERVE_SKIPPED)
			printf("not served (not in --vf): it stays stalled\n");
		else if (ev->flags & MAPTBL_HW_SERVE_FAILED)
			printf("FAILED, the request completes with an I/O error: %s\n", why);
		else
			printf("allocations committed, %.0f us\n", (double)ev->service_ns / 1e3);
	} else {
		printf("VF %u: %s fault at block %" PRIu64 " (%u blocks, %s): ", ev->vf,
		       ev->write ? "write" : "read", ev->lba, ev->count, reason_str(ev->reason));
		if (ev->flags & MAPTBL_HW_SERVE_SKIPPED)
			printf("not served (not in --vf): it stays stalled\n");
		else if (ev->flags & MAPTBL_HW_SERVE_FAILED)
			printf("FAILED, the request completes with no-space: %s\n", why);
		else
			printf("served: %s %" PRIu64 " blocks at %" PRIu64 ", file %" PRIu64 " bytes%s%s, "
			       "table +%" PRIu64 " bytes, generation %u, %.0f us\n",
			       (ev->flags & MAPTBL_HW_SERVE_RESTORED) ? "restored, allocated" : "allocated",
			       ev->alloc_blocks, ev->alloc_lba, ev->file_size,
			       (ev->flags & MAPTBL_HW_SERVE_GREW) ? " (grew)" : "",
			       (ev->flags & MAPTBL_HW_SERVE_COMPACTED) ? ", table compacted" : "",
			       ev->table_bytes, ev->generation, (double)ev->service_ns / 1e3);
	}
	fflush(stdout);
	cli_clear_last_log();
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_serve(struct cli *cli, struct maptbl_hw *hw, const struct cli_serve_args *a)
{
	struct serve_ctx sc = { .cli = cli };
	struct maptbl_hw_serve_opts so;
	struct maptbl_hw_serve *s = NULL;
	struct sigaction sa = { .sa_handler = on_signal }, old_term, old_int;
	int64_t end = a->timeout_ms ? now_ms() + (int64_t)a->timeout_ms : 0;
	int status = EXIT_OK, err;
	FILE *pf;

	maptbl_hw_serve_opts_init(&so, sizeof(so));
	so.map = fs_mapper;
	so.report = report;
	so.report_ctx = &sc;
	so.alloc_unit = a->alloc_unit;
	so.vfs = a->vfs;
	so.nr_vfs = a->nr_vfs;
	so.files = a->files;
	if ((err = maptbl_hw_serve_open(hw, &so, &s))) {
		if (err != -EBUSY)
			return cli_hw_error(cli, err, "fault service");
		if (a->busy_ok) {
			fprintf(stderr, "maptbl vf: the fault service that owns this device's fault queue "
				"serves the new VF (unless it was started with --vf)\n");
			return EXIT_OK;
		}
		cli_error(cli, "the fault queue is taken: a fault service already runs on this device");
		return EXIT_FAILED;
	}
	if (a->pidfile) {
		if (!(pf = fopen(a->pidfile, "w")) || fprintf(pf, "%ld\n", (long)getpid()) < 0 ||
		    fclose(pf)) {
			cli_error(cli, "%s: %s", a->pidfile, strerror(errno));
			maptbl_hw_serve_close(s);
			return EXIT_NOCHECK;
		}
	}
	stop_signal = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	while (!stop_signal) {
		int left = 200;

		if (end) {
			int64_t l = end - now_ms();

			if (l <= 0)
				break;
			left = l < left ? (int)l : left;
		}
		err = maptbl_hw_serve_run(s, left);
		if (err < 0) {
			status = cli_hw_error(cli, err, "fault service");
			break;
		}
		if (a->once && sc.served + sc.failed)
			break;
	}
	if (a->once && !(sc.served + sc.failed) && !stop_signal && status == EXIT_OK) {
		cli_error(cli, "no fault within %" PRIu64 " ms", a->timeout_ms);
		status = EXIT_FAILED;
	}
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	maptbl_hw_serve_close(s);
	if (a->pidfile)
		unlink(a->pidfile);
	return status;
}
