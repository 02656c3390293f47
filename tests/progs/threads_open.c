/* threads_open DIR N: N threads each create DIR/tI. */
#include "helpers.h"
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
static const char *dir;
static void *worker(void *arg)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/t%ld", dir, (long)arg);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	close(fd);
	return NULL;
}
int main(int argc, char **argv)
{
	USAGE(2, "DIR N");
	dir = argv[1];
	long n = atol(argv[2]);
	pthread_t t[64];
	CHECK(n > 0 && n <= 64);
	for (long i = 0; i < n; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
	for (long i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}
