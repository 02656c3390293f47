/* orphan PATH: double-forks a daemon (setsid) that writes PATH after its
 * parent and grandparent have exited. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "PATH");
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid > 0)
		return 0;
	setsid();
	pid = fork();
	CHECK(pid >= 0);
	if (pid > 0)
		_exit(0);
	usleep(300 * 1000);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, "late\n", 5) == 5);
	return 0;
}
