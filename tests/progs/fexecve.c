/* fexecve PROG ARG...: opens PROG and executes it through the fd
 * (execveat with AT_EMPTY_PATH), so no path reaches execve. */
#include "helpers.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	syscall(SYS_execveat, fd, "", argv + 1, environ, AT_EMPTY_PATH);
	CHECK(0);
}
