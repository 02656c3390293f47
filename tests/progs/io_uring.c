/* io_uring: tries io_uring_setup and prints "ok" or the errno's name.
 * Exits 0 either way; the caller reads stdout. */
#include "helpers.h"
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	long fd = syscall(SYS_io_uring_setup, 4, &p);
	if (fd >= 0)
		puts("ok");
	else
		puts(errno == ENOSYS ? "ENOSYS" : strerrorname_np(errno));
	return 0;
}
