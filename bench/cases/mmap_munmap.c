/* mmap_munmap: mmap(2) + munmap(2) of 1 MiB anonymous private memory, never touched
 * (pure address-space bookkeeping, no page faults). */
#include <sys/mman.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	const size_t len = 1 << 20;
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			DIE("mmap");
		if (munmap(p, len) != 0)
			DIE("munmap");
	}
	long long t1 = now_ns();
	report("mmap_munmap", t0, t1, n);
	return 0;
}
