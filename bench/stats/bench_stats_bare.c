/* SPDX-License-Identifier: MIT */
/*
 * bench_stats_bare.c - the anchor of issue #4 §5, kept here so that `maptbl stats` is measured
 * against it in the same run: a bare walk + openat + count-only FIEMAP + close loop, nothing else
 * (no stat, no paths, no accumulator). Also runs a command and reports its peak RSS.
 *
 *   maptbl-bench-stats-bare walk [--threads N] [--records] DIR
 *       the loop over DIR (one filesystem); --records asks FIEMAP for up to 64 records per call
 *       instead of the count only. Prints "files N records R seconds S".
 *   maptbl-bench-stats-bare rss CMD [ARG...]
 *       runs CMD (stdout to /dev/null) and prints "rss_kib N status S" from wait4()'s rusage.
 *   maptbl-bench-stats-bare mktree DIR N
 *       makes N small files (1 to 4096 bytes) in DIR, 1000 to a subdirectory.
 *
 * The walk: a shared stack of directory descriptors, each opened with openat() relative to its
 * parent when the parent is read; workers pop a directory, readdir() it, push subdirectories,
 * and openat() + FIEMAP + close() every regular file (d_type; fstatat() only for DT_UNKNOWN).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *fds;
	size_t n, cap;
	unsigned busy;
	dev_t dev;
	bool records;
};

struct worker {
	struct shared *s;
	pthread_t tid;
	uint64_t files, recs;
};

static void push(struct shared *s, int fd)
{
	pthread_mutex_lock(&s->lock);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		s->fds = realloc(s->fds, s->cap * sizeof(int));
		if (!s->fds) {
			perror("realloc");
			exit(1);
		}
	}
	s->fds[s->n++] = fd;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static uint64_t count_file(int fd, bool records)
{
	union {
		struct fiemap fm;
		uint8_t b[sizeof(struct fiemap) + BATCH * sizeof(struct fiemap_extent)];
	} u;
	uint64_t n = 0, start = 0;

	for (;;) {
		memset(&u.fm, 0, sizeof(u.fm));
		u.fm.fm_start = start;
		u.fm.fm_length = FIEMAP_MAX_OFFSET - start;
		u.fm.fm_extent_count = records ? BATCH : 0;
		if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) < 0)
			return n;
		n += u.fm.fm_mapped_extents;
		if (!records || u.fm.fm_mapped_extents < BATCH)
			return n;
		{
			const struct fiemap_extent *l = &u.fm.fm_extents[BATCH - 1];

			if (l->fe_flags & FIEMAP_EXTENT_LAST)
				return n;
			start = l->fe_logical + l->fe_length;
		}
	}
}

static void read_dir(struct worker *w, int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;

	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		unsigned char t = de->d_type;
		int f;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (t == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
				continue;
			t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
		}
		if (t == DT_DIR) {
			struct stat st;

			f = openat(fd, de->d_name,
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
			if (f < 0)
				continue;
			if (fstat(f, &st) || st.st_dev != w->s->dev) {
				close(f);
				continue;
			}
			push(w->s, f);
		} else if (t == DT_REG) {
			f = openat(fd, de->d_name,
				   O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME | O_NONBLOCK | O_NOCTTY);
			if (f < 0)
				continue;
			w->recs += count_file(f, w->s->records);
			w->files++;
			close(f);
		}
	}
	closedir(d);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *s = w->s;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		int fd;

		while (!s->n && s->busy)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->n && !s->busy)
			break;
		fd = s->fds[--s->n];
		s->busy++;
		pthread_mutex_unlock(&s->lock);
		read_dir(w, fd);
		pthread_mutex_lock(&s->lock);
		if (!--s->busy)
			pthread_cond_broadcast(&s->cond);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int walk(int argc, char **argv)
{
	struct shared s = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct worker *w;
	unsigned nt = 1, i;
	uint64_t files = 0, recs = 0;
	struct rlimit rl;
	struct stat st;
	const char *dir = NULL;
	double t0;
	int fd;

	for (i = 0; i < (unsigned)argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < (unsigned)argc)
			nt = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--records"))
			s.records = true;
		else
			dir = argv[i];
	}
	if (!dir || !nt || nt > 64) {
		fprintf(stderr, "usage: walk [--threads N] [--records] DIR\n");
		return 2;
	}
	/* queued directories hold a descriptor each */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now();
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		perror(dir);
		return 1;
	}
	s.dev = st.st_dev;
	push(&s, fd);
	w = calloc(nt, sizeof(*w));
	if (!w)
		return 1;
	for (i = 0; i < nt; i++) {
		w[i].s = &s;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	for (i = 0; i < nt; i++) {
		pthread_join(w[i].tid, NULL);
		files += w[i].files;
		recs += w[i].recs;
	}
	printf("files %llu records %llu seconds %.6f\n", (unsigned long long)files,
	       (unsigned long long)recs, now() - t0);
	free(w);
	free(s.fds);
	return 0;
}

static int rss(char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 1;
	}
	printf("rss_kib %ld status %d\n", ru.ru_maxrss,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

static int mktree(const char *dir, long n)
{
	static char data[4096];
	char path[4096];
	long i;

	memset(data, 'x', sizeof(data));
	for (i = 0; i < n; i++) {
		size_t len = (size_t)(i * 37 % 4096) + 1;
		int fd;

		if (!(i % 1000)) {
			snprintf(path, sizeof(path), "%s/d%06ld", dir, i / 1000);
			if (mkdir(path, 0755) && errno != EEXIST) {
				perror(path);
				return 1;
			}
		}
		snprintf(path, sizeof(path), "%s/d%06ld/f%04ld", dir, i / 1000, i % 1000);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "mktree"))
		return mktree(argv[2], atol(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "walk"))
		return walk(argc - 2, argv + 2);
	if (argc >= 3 && !strcmp(argv[1], "rss"))
		return rss(argv + 2);
	fprintf(stderr, "usage: %s walk [--threads N] [--records] DIR | rss CMD [ARG...] | mktree DIR N\n",
		argv[0]);
	return 2;
}
