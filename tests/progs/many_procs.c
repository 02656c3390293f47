/* many_procs DIR N: forks N short-lived children; child I creates DIR/pI. */
#include "helpers.h"
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR N");
	int n = atoi(argv[2]);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/p%d", argv[1], i);
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			_exit(fd >= 0 ? 0 : 1);
		}
	}
	int status, failed = 0;
	while (wait(&status) > 0)
		failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return failed ? 1 : 0;
}
