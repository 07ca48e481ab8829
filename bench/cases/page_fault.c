/* page_fault: first-touch faults. Each round maps 256 MiB anonymous, writes one byte per
 * 4 KiB page (65536 faults), unmaps; reports ns per page over all rounds (argv[1] = rounds).
 * The mmap/munmap are inside the timed region but amortized over 65536 pages. */
#include <sys/mman.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long rounds = iterations(argc, argv, 1);
	const size_t len = 256UL << 20, page = 4096;
	long long elapsed = 0;
	for (long r = 0; r < rounds; r++) {
		long long t0 = now_ns();
		volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			DIE("mmap 256 MiB");
		for (size_t off = 0; off < len; off += page)
			p[off] = 1;
		if (munmap((void *)p, len) != 0)
			DIE("munmap");
		elapsed += now_ns() - t0;
	}
	report("page_fault", 0, elapsed, rounds * (long)(len / page));
	return 0;
}
