/* tcp_lo_stream: N MiB over TCP on 127.0.0.1 from a parent to a forked child (64 KiB writes),
 * checked by the receiver's byte count; prints ns per MiB (1 GiB = 1024 iterations). */
#include <sys/wait.h>
#include "../net/tcpnet.h"

int main(int argc, char **argv)
{
	long mib = iterations(argc, argv, 1024);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	if (bind(ls, (void *)&a, sizeof a) || listen(ls, 8) || getsockname(ls, (void *)&a, &l))
		DIE("listen");
	pid_t pid = fork();
	if (pid < 0)
		DIE("fork");
	if (pid == 0) {
		int c = accept(ls, 0, 0);
		if (c < 0)
			_exit(1);
		receive_stream(c);
		_exit(0);
	}
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (void *)&a, sizeof a))
		DIE("connect");
	long long ns = send_stream(c, mib);
	int st;
	waitpid(pid, &st, 0);
	printf("tcp_lo_stream %.1f\n", (double)ns / (double)mib);
	return 0;
}
