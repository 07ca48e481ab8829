/* Shared helpers for the Moat microbenchmarks: each case takes an iteration count (argv[1])
 * and prints one line "NAME ns_per_op" on success, or a message on stderr and exit 1. */
#ifndef MOAT_BENCH_H
#define MOAT_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline long iterations(int argc, char **argv, long dflt)
{
	if (argc < 2)
		return dflt;
	char *end;
	long n = strtol(argv[1], &end, 10);
	if (*end != '\0' || n <= 0) {
		fprintf(stderr, "usage: %s [iterations > 0]\n", argv[0]);
		exit(2);
	}
	return n;
}

#define DIE(what)                                                                  \
	do {                                                                       \
		fprintf(stderr, "%s: %s: %s\n", __FILE__, what, strerror(errno)); \
		exit(1);                                                           \
	} while (0)

static inline void report(const char *name, long long start, long long end, long ops)
{
	printf("%s %.1f\n", name, (double)(end - start) / (double)ops);
}

#endif
