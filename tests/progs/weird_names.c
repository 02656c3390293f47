/* weird_names DIR: creates files whose names hold a newline, bytes that are
 * not UTF-8, and valid non-ASCII UTF-8. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "DIR");
	const char *names[] = {"new\nline", "\xff\xfe.bin", "caf\xc3\xa9", "q\"b\\s"};
	for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		close(fd);
	}
	return 0;
}
