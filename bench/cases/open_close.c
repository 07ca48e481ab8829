/* open_close: open(2) + close(2) of /etc/hostname, a small always-present file (path walk,
 * file lookup through the dentry cache or gofer, fd install and release). */
#include <fcntl.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 100000);
	const char *path = "/etc/hostname";
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			DIE("open /etc/hostname");
		if (close(fd) != 0)
			DIE("close");
	}
	long long t1 = now_ns();
	report("open_close", t0, t1, n);
	return 0;
}
