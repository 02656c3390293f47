/* truncate_file PATH: truncate(PATH), then ftruncate through an fd. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "PATH");
	CHECK(truncate(argv[1], 0) == 0);
	int fd = open(argv[1], O_WRONLY);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 1) == 0);
	return 0;
}
