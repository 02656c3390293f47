/* read_file PATH...: opens each PATH read-only and reads it. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char buf[4096];
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		CHECK(fd >= 0);
		while (read(fd, buf, sizeof buf) > 0)
			;
		close(fd);
	}
	return 0;
}
