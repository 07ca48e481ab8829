/* pipe_rtt: round trip of 1 byte between two processes over two pipes (parent writes,
 * forked child reads and echoes back): two reads, two writes and two wakeups per op. */
#include <sys/wait.h>
#include <unistd.h>
#include "bench.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 20000);
	int to_child[2], to_parent[2];
	if (pipe(to_child) != 0 || pipe(to_parent) != 0)
		DIE("pipe");
	pid_t pid = fork();
	if (pid < 0)
		DIE("fork");
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		char c;
		for (;;) {
			ssize_t r = read(to_child[0], &c, 1);
			if (r == 0)
				_exit(0);
			if (r != 1 || write(to_parent[1], &c, 1) != 1)
				_exit(1);
		}
	}
	close(to_child[0]);
	close(to_parent[1]);
	char c = 'p';
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (write(to_child[1], &c, 1) != 1)
			DIE("write to child");
		if (read(to_parent[0], &c, 1) != 1)
			DIE("read from child");
	}
	long long t1 = now_ns();
	close(to_child[1]);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		DIE("child failed");
	report("pipe_rtt", t0, t1, n);
	return 0;
}
