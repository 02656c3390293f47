/* exec_fail MISSING PATH: execve(MISSING) fails; then reads PATH. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "MISSING PATH");
	char *args[] = {argv[1], NULL};
	execv(argv[1], args);
	CHECK(errno == ENOENT);
	CHECK(open(argv[2], O_RDONLY) >= 0);
	return 0;
}
