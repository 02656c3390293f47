/* write_file PATH: creates or truncates PATH and writes a line. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "PATH");
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, "data\n", 5) == 5);
	CHECK(close(fd) == 0);
	return 0;
}
