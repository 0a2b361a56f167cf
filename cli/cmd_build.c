/* SPDX-License-Identifier: MIT */
/*
 * cmd_build.c - maptbl build: a table from an extent list.
 *
 * The list is text, one extent a line: "logical physical length [unwritten]", numbers in blocks
 * (decimal or 0x hex), '#' starts a comment, blank lines are ignored. Building from real files
 * comes with the filesystem adapters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <maptbl/fs.h>

#include "cli.h"

static const char *const build_usage[] = {
	"maptbl build FILE [-o TABLE] [--read-only] [--image IMG] [OPTIONS]\n"
	"       maptbl build --extents LIST -o TABLE [OPTIONS]",
	"build a table from a file or an extent list",
	"",
	"FILE is a file on ext4, XFS, btrfs or any filesystem with FIEMAP, on a disk, a",
	"partition, a loop device or a linear device-mapper target; its extents are made",
	"absolute on the disk a device sees (on btrfs through the chunk tree, on the device the",
	"file is on). With --image IMG, FILE is a path inside the unmounted ext4 image IMG.",
	"The file is synced first; delalloc, inline, encoded, encrypted, shared, unaligned and",
	"other-device extents are refused, each with its byte range and rule; on btrfs also",
	"copy-on-write or checksummed files and DUP/RAID data (cow, checksummed, profile). The",
	"default TABLE is the file's name with .mtb in the current directory.",
	"",
	"LIST is a text file, or - for standard input: one extent a line,",
	"  LOGICAL PHYSICAL LENGTH [unwritten]",
	"in blocks (decimal or 0x hex); '#' starts a comment. Extents must be sorted and",
	"must not overlap. TABLE is written atomically (- writes to standard output).",
	"",
	"Options:",
	"  -e, --extents LIST        the extent list",
	"  -o, --output TABLE        the table file to write",
	"  -b, --block-size BYTES    block size, a power of two 512..65536 (default: 4096, or",
	"                            the filesystem's block size for a FILE)",
	"  -s, --virtual-size SIZE   virtual disk size in bytes, K/M/G/T/P/E suffixes allowed,",
	"                            a multiple of the block size (default: end of the last extent)",
	"  -d, --disk-size SIZE      physical disk size to record; extents must fit it",
	"  -n, --node-size BYTES     node size, a power of two 256..65536 (default 4096)",
	"  -f, --fill PERCENT        fill nodes to this percentage of capacity, 1..100 (default 100)",
	"  -g, --generation N        initial generation number (default 0)",
	"  -r, --read-only           a table for a read-only VF: shared extents are allowed, and",
	"                            on btrfs cow and checksummed files, DUP/RAID1/RAID10 data",
	"                            (read from the first copy)",
	"  -i, --image IMG           FILE is a path inside this ext4 image or unmounted device",
	"  -S, --source SRC          fiemap, xfs, btrfs or ext4-image (default: from the",
	"                            filesystem)",
	"  -q, --quiet               do not print the summary",
	"  -h, --help                this text",
	NULL,
};

struct list {
	struct maptbl_extent *ext;
	size_t *line;	/* line number of each extent, for messages */
	size_t nr, cap;
};

/* Parses the list; prints "LIST:LINE: problem" and returns an exit status on error. */
static int parse_list(struct cli *cli, const char *name, char *text, size_t len, struct list *l)
{
	size_t lineno = 0;
	char *p = text, *end = text + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *hash, *tok[5], *save = NULL;
		uint64_t v[3];
		int ntok = 0, i, err;

		lineno++;
		if (nl)
			*nl = 0;
		else
			*end = 0; /* the buffer has room for it: cli_read_file allocates one more */
		if (strlen(p) != (size_t)((nl ? nl : end) - p)) {
			cli_error(cli, "%s:%zu: NUL byte in the extent list", name, lineno);
			return EXIT_FAILED;
		}
		hash = strchr(p, '#');
		if (hash)
			*hash = 0;
		for (char *t = strtok_r(p, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
			if (ntok == 5)
				break;
			tok[ntok++] = t;
		}
		p = nl ? nl + 1 : end;
		if (!ntok)
			continue;
		if (ntok < 3) {
			cli_error(cli, "%s:%zu: expected 'LOGICAL PHYSICAL LENGTH [unwritten]', got %d field%s",
				  name, lineno, ntok, ntok == 1 ? "" : "s");
			return EXIT_FAILED;
		}
		if (ntok > 4) {
			cli_error(cli, "%s:%zu: too many fields (expected 'LOGICAL PHYSICAL LENGTH [unwritten]')",
				  name, lineno);
			return EXIT_FAILED;
		}
		for (i = 0; i < 3; i++) {
			static const char *const what[] = { "logical block", "physical block", "length" };

			err = cli_parse_u64(tok[i], &v[i]);
			if (err) {
				cli_error(cli, "%s:%zu: %s '%s' is %s", name, lineno, what[i], tok[i],
					  err == -ERANGE ? "too large" : "not a number");
				return EXIT_FAILED;
			}
		}
		if (ntok == 4 && strcmp(tok[3], "unwritten")) {
			cli_error(cli, "%s:%zu: unknown flag '%s' (the only flag is 'unwritten')", name,
				  lineno, tok[3]);
			return EXIT_FAILED;
		}
		if (l->nr == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 1024;
			struct maptbl_extent *ne = realloc(l->ext, ncap * sizeof(*ne));
			size_t *nlines = ne ? realloc(l->line, ncap * sizeof(*nlines)) : NULL;

			if (ne)
				l->ext = ne;
			if (!ne || !nlines) {
				cli_error(cli, "%s: out of memory", name);
				return EXIT_FAILED;
			}
			l->line = nlines;
			l->cap = ncap;
		}
		l->ext[l->nr] = (struct maptbl_extent){
			.lblk = v[0], .pblk = v[1], .len = v[2],
			.flags = ntok == 4 ? MAPTBL_EXTENT_UNWRITTEN : 0,
		};
		l->line[l->nr++] = lineno;
	}
	return EXIT_OK;
}

static int size_in_blocks(struct cli *cli, const char *opt, const char *arg, uint32_t bs,
			  uint64_t *blocks)
{
	uint64_t bytes;
	int err = cli_parse_size(arg, &bytes);

	if (err)
		return cli_usage_error(cli, "%s '%s' is %s", opt, arg,
				       err == -ERANGE ? "too large" : "not a size");
	if (bytes % bs)
		return cli_usage_error(cli, "%s %s is not a multiple of the block size %u", opt, arg,
				       bs);
	*blocks = bytes / bs;
	return EXIT_OK;
}

/* Maps FILE through the adapters; prints each refusing finding. Returns an exit status.
 * Also used by maptbl vf create and vf apply (cli.h). */
int cli_map_file(struct cli *cli, const char *file, const char *image, uint32_t source,
		    uint32_t bs, bool read_only, struct maptbl_fs_map **out)
{
	struct maptbl_fs_opts fo;
	bool other_dev = false;
	size_t i;
	int err;

	maptbl_fs_opts_init(&fo, sizeof(fo));
	fo.source = source;
	fo.block_size = bs;
	fo.image = image;
	err = maptbl_fs_map_file(file, &fo, out);
	if (err) {
		/* The library's message names the layer, the image or the rule. */
		if (cli_last_log())
			cli_error(cli, "%s", cli_last_log());
		else
			cli_error(cli, "%s: %s", file, strerror(-err));
		return err == -EOPNOTSUPP || err == -EINVAL || err == -EISDIR || err == -EBUSY
			       ? EXIT_FAILED : EXIT_NOCHECK;
	}
	for (i = 0; i < maptbl_fs_map_nr_findings(*out); i++) {
		const struct maptbl_fs_finding *f = maptbl_fs_map_finding(*out, i);

		if (!(f->refuses & (read_only ? MAPTBL_FS_REFUSES_READONLY : MAPTBL_FS_REFUSES_WRITABLE)))
			continue;
		cli_error(cli, "%s: bytes %llu..%llu: %s: refused for a %s table%s", file,
			  (unsigned long long)f->offset, (unsigned long long)(f->offset + f->length - 1),
			  maptbl_fs_rule_name(f->rule), read_only ? "read-only" : "writable",
			  !read_only && !(f->refuses & MAPTBL_FS_REFUSES_READONLY)
				  ? " (--read-only allows it)" : "");
		other_dev |= f->rule == MAPTBL_FS_RULE_OTHER_DEVICE;
		err = -EINVAL;
	}
	if (other_dev) /* which devices: the layers name them (btrfs) */
		cli_error(cli, "%s: %s", file, maptbl_fs_map_layers(*out));
	if (err) {
		maptbl_fs_map_free(*out);
		*out = NULL;
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int parse_source(const char *s, uint32_t *out)
{
	if (!strcmp(s, "fiemap"))
		*out = MAPTBL_FS_SOURCE_FIEMAP;
	else if (!strcmp(s, "xfs"))
		*out = MAPTBL_FS_SOURCE_XFS;
	else if (!strcmp(s, "ext4-image"))
		*out = MAPTBL_FS_SOURCE_EXT4_IMAGE;
	else if (!strcmp(s, "btrfs"))
		*out = MAPTBL_FS_SOURCE_BTRFS;
	else
		return -EINVAL;
	return 0;
}

static int do_build(struct cli *cli, const struct maptbl_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "extents", required_argument, NULL, 'e' },
		{ "output", required_argument, NULL, 'o' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "virtual-size", required_argument, NULL, 's' },
		{ "disk-size", required_argument, NULL, 'd' },
		{ "node-size", required_argument, NULL, 'n' },
		{ "fill", required_argument, NULL, 'f' },
		{ "generation", required_argument, NULL, 'g' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "image", required_argument, NULL, 'i' },
		{ "source", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *list_path = NULL, *out_path = NULL, *vsize = NULL, *dsize = NULL;
	const char *file = NULL, *image = NULL;
	uint64_t bs = 0, ns = 0, fill = 0, gen = 0;
	struct maptbl_fs_map *fm = NULL;
	struct maptbl_build_opts bo;
	struct maptbl_table *t = NULL;
	const struct maptbl_extent *ext = NULL;
	struct maptbl_diag diag;
	struct list l = { 0 };
	bool quiet = false, fill_set = false, read_only = false;
	uint32_t source = 0;
	char *default_out = NULL;
	uint8_t *text = NULL;
	size_t len, nr = 0;
	int c, err, status;

	(void)cmd;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":e:o:b:s:d:n:f:g:qri:S:", opts, NULL)) != -1) {
		uint64_t *num = NULL;
		const char *what = NULL;

		switch (c) {
		case 'e':
			list_path = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 's':
			vsize = optarg;
			break;
		case 'd':
			dsize = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'r':
			read_only = true;
			break;
		case 'i':
			image = optarg;
			break;
		case 'S':
			if (parse_source(optarg, &source))
				return cli_usage_error(cli, "--source '%s' is not fiemap, xfs, btrfs or ext4-image",
						       optarg);
			break;
		case 'b':
			num = &bs, what = "--block-size";
			break;
		case 'n':
			num = &ns, what = "--node-size";
			break;
		case 'f':
			num = &fill, what = "--fill";
			fill_set = true;
			break;
		case 'g':
			num = &gen, what = "--generation";
			break;
		default:
			return cli_bad_option(cli, c, argv);
		}
		if (num && (cli_parse_size(optarg, num) || *num > UINT32_MAX))
			return cli_usage_error(cli, "%s '%s' is not a valid number", what, optarg);
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if (!list_path && !file)
		return cli_usage_error(cli, "need a FILE or --extents LIST");
	if (list_path && file)
		return cli_usage_error(cli, "give a FILE or --extents LIST, not both");
	if (list_path && (image || source || read_only))
		return cli_usage_error(cli, "--image, --source and --read-only need a FILE");
	if (image && source && source != MAPTBL_FS_SOURCE_EXT4_IMAGE)
		return cli_usage_error(cli, "--image reads through libext2fs: --source must be ext4-image");
	if (source == MAPTBL_FS_SOURCE_EXT4_IMAGE && !image)
		return cli_usage_error(cli, "--source ext4-image needs --image IMG");
	if (list_path && !out_path)
		return cli_usage_error(cli, "-o TABLE is required");
	if (bs && (bs < MAPTBL_MIN_BLOCK_SIZE || bs > MAPTBL_MAX_BLOCK_SIZE || (bs & (bs - 1))))
		return cli_usage_error(cli, "--block-size %llu is not a power of two from 512 to 65536",
				       (unsigned long long)bs);
	if (ns && (ns < MAPTBL_MIN_NODE_SIZE || ns > MAPTBL_MAX_NODE_SIZE || (ns & (ns - 1))))
		return cli_usage_error(cli, "--node-size %llu is not a power of two from 256 to 65536",
				       (unsigned long long)ns);
	if (fill_set && (fill < 1 || fill > 100))
		return cli_usage_error(cli, "--fill %llu is not from 1 to 100", (unsigned long long)fill);

	if (file) {
		status = cli_map_file(cli, file, image, source, (uint32_t)bs, read_only, &fm);
		if (status)
			return status;
		bs = maptbl_fs_map_block_size(fm);
		ext = maptbl_fs_map_extents(fm, &nr);
		if (maptbl_fs_map_source(fm) == MAPTBL_FS_SOURCE_BTRFS)
			fprintf(stderr,
				"maptbl build: note: %s is on btrfs: a balance, a device remove, replace or resize,\n"
				"  a defragmentation, or a write after a snapshot moves its data; the table is then\n"
				"  stale (check with 'maptbl verify TABLE --against %s')\n",
				file, file);
		if (!out_path) {
			const char *base = strrchr(file, '/');

			if (asprintf(&default_out, "%s.mtb", base ? base + 1 : file) < 0) {
				status = EXIT_FAILED;
				goto out;
			}
			out_path = default_out;
		}
	}
	if (!bs)
		bs = 4096;

	maptbl_build_opts_init(&bo, sizeof(bo));
	bo.block_size = (uint32_t)bs;
	bo.node_size = (uint32_t)ns;
	bo.fill_pct = (uint32_t)fill;
	bo.generation = (uint32_t)gen;
	bo.diag = &diag;
	if (vsize && (status = size_in_blocks(cli, "--virtual-size", vsize, (uint32_t)bs,
					      &bo.virtual_blocks)))
		goto out;
	if (dsize && (status = size_in_blocks(cli, "--disk-size", dsize, (uint32_t)bs,
					      &bo.disk_blocks)))
		goto out;
	if (vsize && !bo.virtual_blocks) {
		status = cli_usage_error(cli, "--virtual-size must not be 0");
		goto out;
	}
	if (fm) {
		/* The virtual disk is at least the file, and the disk is the one the map found. */
		uint64_t fblocks = (maptbl_fs_map_file_size(fm) + bs - 1) / bs;

		if (!vsize)
			bo.virtual_blocks = fblocks ? fblocks : 1;
		else if (bo.virtual_blocks < fblocks) {
			status = cli_usage_error(cli, "--virtual-size %s is smaller than %s (%llu bytes)",
						 vsize, file,
						 (unsigned long long)maptbl_fs_map_file_size(fm));
			goto out;
		}
		if (!dsize)
			bo.disk_blocks = maptbl_fs_map_disk_size(fm) / bs;
		bo.disk_path = maptbl_fs_map_disk(fm);
		bo.disk_id = maptbl_fs_map_disk_id(fm);
	} else {
		err = cli_read_file(list_path, &text, &len);
		if (err) {
			cli_error(cli, "%s: %s", list_path, strerror(-err));
			status = EXIT_NOCHECK;
			goto out;
		}
		/* One more byte: parse_list terminates the last line there. */
		{
			uint8_t *nt = realloc(text, len + 1);

			if (!nt) {
				cli_error(cli, "%s: out of memory", list_path);
				status = EXIT_FAILED;
				goto out;
			}
			text = nt;
		}
		status = parse_list(cli, strcmp(list_path, "-") ? list_path : "<stdin>",
				    (char *)text, len, &l);
		if (status)
			goto out;
		ext = l.ext;
		nr = l.nr;
	}

	err = maptbl_table_build(ext, nr, &bo, &t);
	if (err) {
		const char *src = file ? file : list_path;

		if (!file && diag.index >= 0 && (size_t)diag.index < l.nr)
			cli_error(cli, "%s:%zu: %s", src, l.line[diag.index], diag.reason);
		else if (err == -EBADMSG || err == -EINVAL || err == -E2BIG)
			cli_error(cli, "%s: %s", src, diag.reason);
		else
			cli_error(cli, "%s: %s", src, strerror(-err));
		status = EXIT_FAILED;
		goto out;
	}
	err = cli_write_atomic(out_path, maptbl_table_data(t), maptbl_table_len(t));
	if (err) {
		cli_error(cli, "%s: %s", out_path, strerror(-err));
		status = EXIT_FAILED;
		goto out;
	}
	if (!quiet && strcmp(out_path, "-")) {
		struct maptbl_stats st;

		maptbl_table_stats(t, &st, sizeof(st));
		printf("%s: %llu extent%s, %llu node%s, depth %u, %zu bytes\n", out_path,
		       (unsigned long long)st.nr_extents, st.nr_extents == 1 ? "" : "s",
		       (unsigned long long)st.nr_nodes, st.nr_nodes == 1 ? "" : "s", st.depth,
		       maptbl_table_len(t));
		if (fm) {
			uint64_t holes = 0, prev = 0;
			size_t i;

			for (i = 0; i < nr; i++) {
				holes += ext[i].lblk > prev;
				prev = ext[i].lblk + ext[i].len;
			}
			holes += prev < bo.virtual_blocks;
			printf("%s: %llu bytes, %llu hole%s, %llu unwritten extent%s, block size %llu%s\n",
			       file, (unsigned long long)maptbl_fs_map_file_size(fm),
			       (unsigned long long)holes, holes == 1 ? "" : "s",
			       (unsigned long long)st.nr_unwritten, st.nr_unwritten == 1 ? "" : "s",
			       (unsigned long long)bs, read_only ? ", read-only" : "");
			printf("disk: %s (+%llu bytes): %s\n", maptbl_fs_map_disk(fm),
			       (unsigned long long)maptbl_fs_map_disk_offset(fm), maptbl_fs_map_layers(fm));
		}
	}
	status = EXIT_OK;
out:
	maptbl_table_free(t);
	maptbl_fs_map_free(fm);
	free(default_out);
	free(text);
	free(l.ext);
	free(l.line);
	return status;
}

const struct maptbl_cmd cmd_build = {
	.name = "build",
	.fn = do_build,
	.usage = build_usage,
	.flags = CMD_WRITES,
};
