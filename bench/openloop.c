/* openloop MODE N [PATH]: times N iterations of one operation and prints
 * nanoseconds per iteration.
 *   open    open(PATH) + close
 *   stat    stat(PATH) of a name that is not there (a lookup)
 *   getppid getppid(), a syscall bsandbox does not trace (every syscall passes
 *           its sys_exit program)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: openloop open|stat|getppid N [PATH]\n");
		return 2;
	}
	long n = atol(argv[2]);
	const char *path = argc > 3 ? argv[3] : "/etc/hostname";
	int open_mode = strcmp(argv[1], "open") == 0;
	int stat_mode = strcmp(argv[1], "stat") == 0;
	if (stat_mode && argc <= 3)
		path = "/nonexistent/openloop";
	struct stat st;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (open_mode) {
			int fd = open(path, O_RDONLY);
			if (fd < 0) {
				perror(path);
				return 1;
			}
			close(fd);
		} else if (stat_mode) {
			if (stat(path, &st) == 0) {
				fprintf(stderr, "%s exists\n", path);
				return 1;
			}
		} else {
			syscall(SYS_getppid);
		}
	}
	printf("%.1f\n", (now() - t0) / n);
	return 0;
}
