/* dirfd_open DIR NAME: opens DIR, then NAME relative to it with openat. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR NAME");
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	int fd = openat(dfd, argv[2], O_RDONLY);
	CHECK(fd >= 0);
	return 0;
}
