/* openat2 DIR NAME: opens NAME beneath DIR with openat2(RESOLVE_BENEATH). */
#include "helpers.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR NAME");
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
	CHECK(syscall(SYS_openat2, dfd, argv[2], &how, sizeof how) >= 0);
	return 0;
}
