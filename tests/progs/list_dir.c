/* list_dir DIR: lists DIR with readdir and prints the number of entries. */
#include "helpers.h"
#include <dirent.h>
int main(int argc, char **argv)
{
	USAGE(1, "DIR");
	DIR *d = opendir(argv[1]);
	CHECK(d != NULL);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	printf("%d\n", n);
	return 0;
}
