/* rename_twice A B C: renames A to B (B absent), creates C, renames B onto C. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(3, "A B C");
	CHECK(rename(argv[1], argv[2]) == 0);
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK(rename(argv[2], argv[3]) == 0);
	return 0;
}
