/* hardlink A B: makes B a hard link to A, then reads B. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "A B");
	CHECK(link(argv[1], argv[2]) == 0);
	CHECK(open(argv[2], O_RDONLY) >= 0);
	return 0;
}
