/* patchcost: what it costs a new process to patch some pages of libc's
 * text, the in-process runtime's start-up (issue 21), each way of doing it.
 *
 *   patchcost [PAGES [SAMPLES]]    (default 8 pages, 20 samples)
 *
 * Each sample forks a child, which maps libc.so.6's text privately (its
 * pages faulted in first, as a started program's are), changes one byte in
 * each of PAGES pages spread over it, and reports the microseconds that
 * took. Prints the median and range per way:
 *
 *   in-place      mprotect the whole range writable, write, mprotect back
 *                 (what the runtime does)
 *   dontneed      MADV_DONTNEED each page first, then as in-place
 *   per-page      mprotect only each page, write, mprotect it back
 *   proc-mem      write through /proc/self/mem (no mprotect)
 *   anon-mremap   build each page in anonymous memory, mremap it over
 *   shared-copy   pages patched once into a memfd (by the parent), mapped
 *                 over libc's private to each child (no copy, no write)
 *   read-only     reading the same bytes (the floor of the loop itself)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096L
#define SPAN_PAGES 340L /* about libc's text */

static const char *const WAYS[] = {"in-place", "dontneed", "per-page", "proc-mem", "anon-mremap", "shared-copy",
				   "read-only"};
enum { NWAYS = sizeof WAYS / sizeof WAYS[0] };

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static long stride(int pages)
{
	return SPAN_PAGES / pages;
}

/* One sample of way w in a fresh child; returns its microseconds. */
static double sample(int w, int fd, int mfd, int pages)
{
	int p[2];
	if (pipe(p) != 0)
		exit(1);
	pid_t c = fork();
	if (c == 0) {
		long len = SPAN_PAGES * PAGE, st = stride(pages) * PAGE;
		char *m = mmap(0, len, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			_exit(1);
		volatile char s = 0;
		for (long i = 0; i < len; i += PAGE)
			s += m[i];
		double t = now_us();
		switch (w) {
		case 0:
			mprotect(m, len, PROT_READ | PROT_WRITE | PROT_EXEC);
			for (int i = 0; i < pages; ++i)
				m[i * st + 100] ^= 1;
			mprotect(m, len, PROT_READ | PROT_EXEC);
			break;
		case 1:
			for (int i = 0; i < pages; ++i)
				madvise(m + i * st, PAGE, MADV_DONTNEED);
			mprotect(m, len, PROT_READ | PROT_WRITE | PROT_EXEC);
			for (int i = 0; i < pages; ++i)
				m[i * st + 100] ^= 1;
			mprotect(m, len, PROT_READ | PROT_EXEC);
			break;
		case 2:
			for (int i = 0; i < pages; ++i) {
				mprotect(m + i * st, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
				m[i * st + 100] ^= 1;
				mprotect(m + i * st, PAGE, PROT_READ | PROT_EXEC);
			}
			break;
		case 3: {
			int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
			for (int i = 0; i < pages; ++i) {
				char b = (char)(m[i * st + 100] ^ 1);
				if (pwrite(mem, &b, 1, (off_t)(uintptr_t)(m + i * st + 100)) != 1)
					_exit(2);
			}
			close(mem);
			break;
		}
		case 4: {
			char *a = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			for (int i = 0; i < pages; ++i) {
				memcpy(a + i * PAGE, m + i * st, PAGE);
				a[i * PAGE + 100] ^= 1;
			}
			mprotect(a, pages * PAGE, PROT_READ | PROT_EXEC);
			for (int i = 0; i < pages; ++i)
				mremap(a + i * PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, m + i * st);
			break;
		}
		case 5:
			for (int i = 0; i < pages; ++i)
				mmap(m + i * st, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, mfd, i * PAGE);
			for (int i = 0; i < pages; ++i)
				s += m[i * st + 100];
			break;
		default:
			for (int i = 0; i < pages; ++i)
				s += m[i * st + 100];
		}
		double us = now_us() - t;
		if (write(p[1], &us, sizeof us) != sizeof us)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	double us = -1;
	if (read(p[0], &us, sizeof us) != sizeof us)
		us = -1;
	close(p[0]);
	int status;
	waitpid(c, &status, 0);
	return us;
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: patchcost [PAGES [SAMPLES]]: the cost of patching PAGES pages of libc's text in a new "
		     "process, each way (see the source's head)");
		return 0;
	}
	int pages = argc > 1 ? atoi(argv[1]) : 8, samples = argc > 2 ? atoi(argv[2]) : 20;
	if (pages < 1 || pages > 64 || samples < 1 || samples > 1000) {
		fprintf(stderr, "patchcost: PAGES must be 1-64 and SAMPLES 1-1000\n");
		return 2;
	}
	const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	int fd = open(libc, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "patchcost: %s: cannot open\n", libc);
		return 1;
	}
	/* The shared copies: each page as the children patch it. */
	int mfd = memfd_create("patchcost", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, pages * PAGE) != 0)
		return 1;
	char *src = mmap(0, SPAN_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	char *dst = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED)
		return 1;
	for (int i = 0; i < pages; ++i) {
		memcpy(dst + i * PAGE, src + i * stride(pages) * PAGE, PAGE);
		dst[i * PAGE + 100] ^= 1;
	}
	double *t = calloc((size_t)samples * NWAYS, sizeof *t);
	/* Rounds rotate through the ways, so that machine noise falls on all. */
	for (int r = 0; r < samples; ++r)
		for (int w = 0; w < NWAYS; ++w)
			t[w * samples + r] = sample(w, fd, mfd, pages);
	printf("%d pages of %s's text, %d samples each (us, median [min-max])\n", pages, libc, samples);
	for (int w = 0; w < NWAYS; ++w) {
		double *v = t + w * samples;
		qsort(v, (size_t)samples, sizeof *v, cmp);
		printf("  %-12s %8.0f  [%.0f-%.0f]\n", WAYS[w], v[samples / 2], v[0], v[samples - 1]);
	}
	return 0;
}
