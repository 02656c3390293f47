/* long_path DIR DEPTH: descends DEPTH directories of 200-byte names below
 * DIR with relative mkdir + chdir, then creates "leaf" there, so the file's
 * absolute path is far longer than PATH_MAX. Prints that path's length. */
#include "helpers.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR DEPTH");
	char name[201];
	memset(name, 'd', 200);
	name[200] = 0;
	int depth = atoi(argv[2]);
	CHECK(chdir(argv[1]) == 0);
	for (int i = 0; i < depth; i++) {
		CHECK(mkdir(name, 0755) == 0);
		CHECK(chdir(name) == 0);
	}
	int fd = open("leaf", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	printf("%zu\n", strlen(argv[1]) + (size_t)depth * 201 + 5);
	return 0;
}
