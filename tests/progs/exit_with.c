/* exit_with N: exits with status N; exit_with -S kills itself with signal S. */
#include "helpers.h"
#include <signal.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	USAGE(1, "N|-SIGNAL");
	int n = atoi(argv[1]);
	if (n < 0) {
		signal(-n, SIG_DFL);
		kill(getpid(), -n);
		pause();
	}
	return n;
}
