/* tmpfile_linkat DIR NAME: writes an O_TMPFILE in DIR, then gives it the
 * name DIR/NAME with linkat. */
#include "helpers.h"
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(2, "DIR NAME");
	char path[4096], proc[64];
	int fd = open(argv[1], O_TMPFILE | O_WRONLY, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, "data\n", 5) == 5);
	snprintf(path, sizeof path, "%s/%s", argv[1], argv[2]);
	if (geteuid() == 0) {
		CHECK(linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0);
	} else {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		CHECK(linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0);
	}
	return 0;
}
