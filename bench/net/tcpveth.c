/* tcpveth: the two ends of the across-a-veth benchmarks.
 *   tcpveth serve PORT            accept forever on 0.0.0.0:PORT: a connection that sends
 *                                 data is a stream (answered with its byte count), one that
 *                                 closes at once is a connect probe
 *   tcpveth stream IP PORT MIB    send MIB MiB, print "tcp_veth_stream NS_PER_MIB"
 *   tcpveth connect IP PORT N     N connect+close, print "tcp_veth_connect NS_PER_CONN" */
#include <signal.h>
#include "tcpnet.h"

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve")) {
		signal(SIGCHLD, SIG_IGN);
		int ls = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
		if (bind(ls, (void *)&a, sizeof a) || listen(ls, 1024))
			DIE("listen");
		for (;;) {
			int c = accept(ls, 0, 0);
			if (c < 0)
				continue;
			/* A stream's first bytes are already there or on their way; a probe closes. */
			if (fork() == 0) {
				receive_stream(c);
				_exit(0);
			}
			close(c);
		}
	}
	if (argc != 5)
		DIE("usage: tcpveth serve PORT | stream IP PORT MIB | connect IP PORT N");
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
		DIE("address");
	long n = atol(argv[4]);
	if (!strcmp(argv[1], "stream")) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (void *)&a, sizeof a))
			DIE("connect");
		printf("tcp_veth_stream %.1f\n", (double)send_stream(c, n) / (double)n);
	} else {
		printf("tcp_veth_connect %lld\n", connect_loop((void *)&a, sizeof a, n));
	}
	return 0;
}
