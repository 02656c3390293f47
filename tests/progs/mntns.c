/* mntns DIR NAME: from cwd DIR, clones a child into a new mount namespace
 * (clone(CLONE_NEWNS)); the child reads NAME, relative to the cwd it
 * inherited. */
#include "helpers.h"
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR NAME");
	CHECK(chdir(argv[1]) == 0);
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(open(argv[2], O_RDONLY) >= 0 ? 0 : 1);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
