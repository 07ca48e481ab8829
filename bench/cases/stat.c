/* stat: stat(2) of /etc/passwd (path walk plus attribute fetch, cached or not). */
#include <sys/stat.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	struct stat st;
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (stat("/etc/passwd", &st) != 0)
			DIE("stat /etc/passwd");
	}
	long long t1 = now_ns();
	if (st.st_size <= 0)
		DIE("stat /etc/passwd: empty");
	report("stat", t0, t1, n);
	return 0;
}
