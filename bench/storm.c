/* storm P N DIR [distinct]: P processes each open+close N files as fast as
 * they can; prints total opens per second. With "distinct", every open
 * creates a new name (DIR/pI-J), so the supervisor sees P*N distinct paths;
 * otherwise all open DIR/f. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: storm P N DIR [distinct]\n");
		return 2;
	}
	int procs = atoi(argv[1]);
	long n = atol(argv[2]);
	const char *dir = argv[3];
	int distinct = argc > 4 && strcmp(argv[4], "distinct") == 0;
	char shared[4096];
	snprintf(shared, sizeof shared, "%s/f", dir);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			char path[4096];
			for (long i = 0; i < n; i++) {
				const char *name = shared;
				int flags = O_RDONLY;
				if (distinct) {
					snprintf(path, sizeof path, "%s/p%d-%ld", dir, p, i);
					name = path;
					flags = O_WRONLY | O_CREAT;
				}
				int fd = open(name, flags, 0644);
				if (fd < 0)
					_exit(1);
				close(fd);
			}
			_exit(0);
		}
	}
	int status, bad = 0;
	while (wait(&status) > 0)
		bad += !WIFEXITED(status) || WEXITSTATUS(status);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%.0f\n", procs * n / secs);
	return bad ? 1 : 0;
}
