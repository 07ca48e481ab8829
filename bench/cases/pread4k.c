/* pread4k: pread(2) of 4 KiB at offset 0 from a 64 KiB file the case creates in /tmp
 * (page-cache data path: under Moat the in-memory writable layer). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	char path[64];
	snprintf(path, sizeof path, "/tmp/moat-bench-pread.%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		DIE("create file in /tmp");
	static char buf[65536];
	memset(buf, 'x', sizeof buf);
	if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
		DIE("write");
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (pread(fd, buf, 4096, 0) != 4096)
			DIE("pread");
	}
	long long t1 = now_ns();
	close(fd);
	unlink(path);
	if (buf[4095] != 'x')
		DIE("pread returned wrong data");
	report("pread4k", t0, t1, n);
	return 0;
}
