/* pidns PATH: enters a new pid namespace; its init (pid 1 inside) writes PATH. */
#include "helpers.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "PATH");
	CHECK(unshare(CLONE_NEWPID) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (getpid() != 1)
			_exit(3);
		int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		_exit(fd >= 0 ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
