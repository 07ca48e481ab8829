/* tcp_lo_connect: connect+close to a listener on 127.0.0.1 whose forked child accepts and
 * closes; ns per connection. */
#include <sys/wait.h>
#include "../net/tcpnet.h"

int main(int argc, char **argv)
{
	long n = iterations(argc, argv, 2000);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	if (bind(ls, (void *)&a, sizeof a) || listen(ls, 128) || getsockname(ls, (void *)&a, &l))
		DIE("listen");
	pid_t pid = fork();
	if (pid < 0)
		DIE("fork");
	if (pid == 0) {
		for (long i = 0; i < n; i++) {
			int c = accept(ls, 0, 0);
			if (c < 0)
				_exit(1);
			close(c);
		}
		_exit(0);
	}
	long long per = connect_loop((void *)&a, sizeof a, n);
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		DIE("acceptor failed");
	printf("tcp_lo_connect %lld\n", per);
	return 0;
}
