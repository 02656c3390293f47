/* stat_path PATH: stat(PATH); exits 0 whether or not it exists. */
#include "helpers.h"
#include <sys/stat.h>
int main(int argc, char **argv)
{
	USAGE(1, "PATH");
	struct stat st;
	if (stat(argv[1], &st) != 0)
		CHECK(errno == ENOENT || errno == ENOTDIR);
	return 0;
}
