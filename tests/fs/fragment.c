/* SPDX-License-Identifier: MIT */
/*
 * fragment.c - make two heavily fragmented files for the filesystem tests: allocate them one
 * block at a time, alternately (fallocate, so no data is written yet and nothing needs a sync),
 * then fill both with pseudo-random data. Usage: fragment A B BLOCKS BLOCK_SIZE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long long n, bs, i, x = 88172645463325252ull;
	int fd[2], k;
	char *buf;

	if (argc != 5) {
		fprintf(stderr, "usage: fragment A B BLOCKS BLOCK_SIZE\n");
		return 2;
	}
	n = strtoull(argv[3], NULL, 0);
	bs = strtoull(argv[4], NULL, 0);
	buf = malloc(bs);
	for (k = 0; k < 2; k++) {
		fd[k] = open(argv[1 + k], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd[k] < 0) {
			perror(argv[1 + k]);
			return 1;
		}
	}
	for (i = 0; i < n; i++)
		for (k = 0; k < 2; k++)
			if (fallocate(fd[k], 0, (off_t)(i * bs), (off_t)bs) < 0) {
				perror("fallocate");
				return 1;
			}
	for (i = 0; i < n; i++)
		for (k = 0; k < 2; k++) {
			unsigned long long j;

			for (j = 0; j + 8 <= bs; j += 8) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				memcpy(buf + j, &x, 8);
			}
			if (pwrite(fd[k], buf, bs, (off_t)(i * bs)) != (ssize_t)bs) {
				perror("pwrite");
				return 1;
			}
		}
	for (k = 0; k < 2; k++)
		if (fsync(fd[k]) < 0 || close(fd[k]) < 0) {
			perror("fsync");
			return 1;
		}
	free(buf);
	return 0;
}
