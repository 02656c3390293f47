/* helpers.h: the few lines every test helper program shares. Each helper
 * does one thing to the files named on its command line and exits 0, or
 * prints what failed and exits 1. */
#ifndef BSANDBOX_TEST_HELPERS_H
#define BSANDBOX_TEST_HELPERS_H
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr)                                                              \
	do {                                                                     \
		if (!(expr)) {                                                   \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
				strerror(errno));                                \
			exit(1);                                                 \
		}                                                                \
	} while (0)

#define USAGE(n, text)                                          \
	do {                                                    \
		if (argc != (n) + 1) {                          \
			fprintf(stderr, "usage: %s %s\n", argv[0], text); \
			return 2;                               \
		}                                               \
	} while (0)

#endif
