/* vfork_exec PROG ARG...: vfork, exec PROG in the child, wait for it. */
#include "helpers.h"
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pid_t pid = vfork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execv(argv[1], argv + 1);
		_exit(127);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
