/* getpid: one raw syscall(SYS_getpid) round trip (the platform's trap cost plus the
 * cheapest possible handler; libc's getpid is bypassed so nothing is cached). */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	long pid = syscall(SYS_getpid);
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (syscall(SYS_getpid) != pid)
			DIE("getpid changed");
	}
	long long t1 = now_ns();
	report("getpid", t0, t1, n);
	return 0;
}
