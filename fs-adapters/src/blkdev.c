/* SPDX-License-Identifier: MIT */
/*
 * blkdev.c - from a filesystem's block device to the disk a controller sees (issue #3 §2).
 *
 * Walks sysfs (/sys/dev/block/MAJ:MIN): a partition adds its start and goes to its parent disk;
 * a loop device adds loop/offset and ends at loop/backing_file; a device-mapper device with exactly
 * one "linear" target covering it from sector 0 adds the target's offset and goes to the device
 * below (the table is read with libdevmapper). Anything else that stacks (md, dm-crypt, dm-thin,
 * multi-target dm, ...) is refused with a message that names the layer.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define MAX_LAYERS 8

static int read_sysfs(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static int read_sysfs_u64(const char *dir, const char *name, uint64_t *v)
{
	char buf[64], *end;
	int err = read_sysfs(dir, name, buf, sizeof(buf));

	if (err)
		return err;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return (*end || errno) ? -EIO : 0;
}

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void layer(struct maptbl_fs_map *m, const char *fmt, const char *arg, uint64_t off)
{
	size_t n = strlen(m->layers);
	char tmp[PATH_MAX + 32];

	snprintf(tmp, sizeof(tmp), fmt, arg);
	if (off)
		snprintf(m->layers + n, sizeof(m->layers) - n, " %s (+%llu)", tmp,
			 (unsigned long long)off);
	else
		snprintf(m->layers + n, sizeof(m->layers) - n, " %s", tmp);
}

/* The only dm target we see through: one linear target from sector 0 over the whole device. */
static int dm_linear(struct maptbl_fs_map *m, const char *name, dev_t dev, dev_t *below,
		     uint64_t *offset)
{
	uint64_t start, length, dev_sectors = 0;
	char *type = NULL, *params = NULL;
	struct dm_task *dmt;
	unsigned maj, mnr;
	unsigned long long off;
	int err = -EOPNOTSUPP, ntargets = 0;
	void *next = NULL;
	char what[64] = "";

	dmt = dm_task_create(DM_DEVICE_TABLE);
	if (!dmt)
		return -ENOMEM;
	if (!dm_task_set_major_minor(dmt, (int)major(dev), (int)minor(dev), 0) || !dm_task_run(dmt)) {
		mtfs_log(MAPTBL_LOG_ERROR, "%s: cannot read the device-mapper table of %s", m->path,
			 name);
		dm_task_destroy(dmt);
		return -EIO;
	}
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
		if (!type)
			break;
		ntargets++;
		if (ntargets == 1) {
			snprintf(what, sizeof(what), "%s", type);
			dev_sectors = length;
			if (!strcmp(type, "linear") && start == 0 &&
			    sscanf(params, "%u:%u %llu", &maj, &mnr, &off) == 3) {
				*below = makedev(maj, mnr);
				*offset = (uint64_t)off * 512;
				err = 0;
			}
		}
	} while (next);
	dm_task_destroy(dmt);
	(void)dev_sectors;
	if (ntargets != 1) {
		mtfs_log(MAPTBL_LOG_ERROR,
			 "%s: on device-mapper device %s with %d targets: refused (only a single linear target can be seen through)",
			 m->path, name, ntargets);
		return -EOPNOTSUPP;
	}
	if (err) {
		const char *kind = !strcmp(what, "crypt") ? "dm-crypt" :
				   !strncmp(what, "thin", 4) ? "dm-thin" : what;

		mtfs_log(MAPTBL_LOG_ERROR,
			 "%s: on device-mapper device %s, a %s target: refused (only linear can be seen through)",
			 m->path, name, kind);
	}
	return err;
}

int mtfs_resolve_blkdev(struct maptbl_fs_map *m, dev_t dev)
{
	char link[PATH_MAX + 16], dir[PATH_MAX], name[NAME_MAX + 1], buf[PATH_MAX];
	int depth, err;

	for (depth = 0; depth < MAX_LAYERS; depth++) {
		char *base;
		uint64_t v;

		snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
		if (!realpath(link, dir)) {
			err = -errno;
			mtfs_log(MAPTBL_LOG_ERROR, "%s: block device %u:%u not found in sysfs", m->path,
				 major(dev), minor(dev));
			return err;
		}
		base = strrchr(dir, '/');
		snprintf(name, sizeof(name), "%s", base + 1);

		if (exists(dir, "partition")) {
			/* A partition: add its start, continue with the whole disk. */
			if ((err = read_sysfs_u64(dir, "start", &v)))
				return err;
			m->disk_offset += v * 512;
			layer(m, "on /dev/%s", name, v * 512);
			*base = 0;
			if ((err = read_sysfs(dir, "dev", buf, sizeof(buf))))
				return err;
			{
				unsigned maj, mnr;

				if (sscanf(buf, "%u:%u", &maj, &mnr) != 2)
					return -EIO;
				dev = makedev(maj, mnr);
			}
			continue;
		}
		if (exists(dir, "loop")) {
			/* A loop device: its backing file is the disk. */
			if (read_sysfs(dir, "loop/backing_file", buf, sizeof(buf))) {
				mtfs_log(MAPTBL_LOG_ERROR, "%s: loop device %s has no backing file",
					 m->path, name);
				return -EOPNOTSUPP;
			}
			if ((err = read_sysfs_u64(dir, "loop/offset", &v)))
				return err;
			m->disk_offset += v;
			layer(m, "on /dev/%s", name, v);
			{
				struct stat st;

				if (stat(buf, &st) < 0) {
					err = -errno;
					mtfs_log(MAPTBL_LOG_ERROR, "%s: loop backing file %s: %s", m->path,
						 buf, strerror(errno));
					return err;
				}
				m->disk_size = (uint64_t)st.st_size;
			}
			m->disk = strdup(buf);
			layer(m, "-> %s", buf, 0);
			return m->disk ? 0 : -ENOMEM;
		}
		if (exists(dir, "md")) {
			mtfs_log(MAPTBL_LOG_ERROR, "%s: on md RAID device %s: refused (a device write would bypass the RAID layer)",
				 m->path, name);
			return -EOPNOTSUPP;
		}
		if (exists(dir, "dm")) {
			dev_t below;

			err = dm_linear(m, name, dev, &below, &v);
			if (err)
				return err;
			m->disk_offset += v;
			layer(m, "on /dev/%s (dm linear)", name, v);
			dev = below;
			continue;
		}
		/* A whole disk. Anything else that stacks on other devices is refused. */
		snprintf(link, sizeof(link), "%s/slaves", dir);
		{
			DIR *d = opendir(link);
			struct dirent *de;
			int n = 0;

			while (d && (de = readdir(d)))
				n += de->d_name[0] != '.';
			if (d)
				closedir(d);
			if (n) {
				mtfs_log(MAPTBL_LOG_ERROR, "%s: on %s, which is stacked on other devices: refused",
					 m->path, name);
				return -EOPNOTSUPP;
			}
		}
		if ((err = read_sysfs_u64(dir, "size", &v)))
			return err;
		m->disk_size = v * 512;
		snprintf(buf, sizeof(buf), "/dev/%s", name);
		m->disk = strdup(buf);
		layer(m, "on %s", buf, 0);
		return m->disk ? 0 : -ENOMEM;
	}
	mtfs_log(MAPTBL_LOG_ERROR, "%s: more than %d storage layers", m->path, MAX_LAYERS);
	return -EOPNOTSUPP;
}
