/* floor: attaches bench/floor.bpf.c and waits until killed. */
#include <stdio.h>
#include <unistd.h>

#include "floor.skel.h"

int main(void)
{
	struct floor_bpf *skel = floor_bpf__open_and_load();
	if (!skel || floor_bpf__attach(skel) != 0) {
		fprintf(stderr, "floor: cannot load or attach the empty program\n");
		return 1;
	}
	pause();
	floor_bpf__destroy(skel);
	return 0;
}
