/* mkdir_rmdir_unlink DIR: mkdir DIR/d, rmdir it; create DIR/f, unlink it. */
#include "helpers.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "DIR");
	char d[4096], f[4096];
	snprintf(d, sizeof d, "%s/d", argv[1]);
	snprintf(f, sizeof f, "%s/f", argv[1]);
	CHECK(mkdir(d, 0755) == 0);
	CHECK(rmdir(d) == 0);
	int fd = creat(f, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK(unlink(f) == 0);
	return 0;
}
