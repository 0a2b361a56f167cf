/* SPDX-License-Identifier: MIT */
/*
 * fuzz_replay.c - runs a fuzz target's LLVMFuzzerTestOneInput() over files, without libFuzzer, so
 * that a gcc build (and ctest) replays the seed corpus and the regression inputs.
 *
 * Usage: fuzz_replay PATH...   each PATH is a file or a directory (its regular files, in name
 * order; files whose name starts with '.' or ends in ".md" or ".txt" are skipped).
 *
 * Every input is copied into a buffer of exactly its size, so an AddressSanitizer build catches a
 * read one byte past it, as libFuzzer would. A failed check inside the target aborts. Exit status:
 * 0 when every input ran, 1 when a path could not be read or no input was found at all, 2 on
 * usage errors. An empty directory is not an error by itself (tests/fuzz/regress/ may be empty).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	uint8_t *buf = NULL, *exact;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");

	if (!f) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf) {
				fclose(f);
				fprintf(stderr, "fuzz_replay: out of memory\n");
				return -1;
			}
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "fuzz_replay: %s: read error\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	/* malloc(0) may return NULL: give the target a valid pointer and zero bytes then. */
	exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int skip_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] == '.' || (n >= 3 && !strcmp(name + n - 3, ".md")) ||
	       (n >= 4 && !strcmp(name + n - 4, ".txt"));
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of @dir in name order; returns inputs run, or -1. */
static long run_dir(const char *dir)
{
	char **names = NULL;
	size_t nr = 0, cap = 0, i;
	long count = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (skip_name(de->d_name))
			continue;
		if (nr == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names) {
				closedir(d);
				return -1;
			}
		}
		names[nr] = strdup(de->d_name);
		if (!names[nr]) {
			closedir(d);
			return -1;
		}
		nr++;
	}
	closedir(d);
	if (nr)
		qsort(names, nr, sizeof(*names), cmp_names);
	for (i = 0; i < nr; i++) {
		size_t plen = strlen(dir) + strlen(names[i]) + 2;
		char *path = malloc(plen);
		struct stat sb;

		if (!path)
			return -1;
		snprintf(path, plen, "%s/%s", dir, names[i]);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (run_file(path))
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	long total = 0;
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		struct stat sb;
		long n;

		if (stat(argv[i], &sb)) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			n = run_dir(argv[i]);
		} else {
			n = run_file(argv[i]) ? -1 : 1;
		}
		if (n < 0) {
			rc = 1;
			continue;
		}
		total += n;
	}
	printf("fuzz_replay: %ld inputs ran\n", total);
	if (!total) {
		fprintf(stderr, "fuzz_replay: no input found\n");
		rc = 1;
	}
	return rc;
}
