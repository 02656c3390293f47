/* chdir_fchdir A B: chdir(A), reads "f"; opens B, fchdir to it, reads "g". */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "A B");
	CHECK(chdir(argv[1]) == 0);
	CHECK(open("f", O_RDONLY) >= 0);
	int dfd = open(argv[2], O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	CHECK(fchdir(dfd) == 0);
	CHECK(open("g", O_RDONLY) >= 0);
	return 0;
}
