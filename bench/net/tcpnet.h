/* Shared TCP helpers of the network benchmarks: a sender that streams N MiB and waits for the
 * receiver's byte count, a receiver, and a connect+close loop against an accept+close loop. */
#ifndef MOAT_TCPNET_H
#define MOAT_TCPNET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../cases/bench.h"

#define CHUNK (1 << 16)

/* Reads a stream to EOF and answers with the byte count (8 bytes); closes the socket. */
static inline void receive_stream(int c)
{
	static char buf[1 << 18];
	long long got = 0;
	ssize_t n;
	while ((n = read(c, buf, sizeof buf)) > 0)
		got += n;
	if (write(c, &got, sizeof got) != sizeof got)
		DIE("write count");
	close(c);
}

/* Sends `mib` MiB on a connected socket, half-closes, checks the peer's count. Returns the
 * nanoseconds it took. */
static inline long long send_stream(int c, long mib)
{
	static char buf[CHUNK];
	memset(buf, 'm', sizeof buf);
	long long total = (long long)mib << 20, sent = 0, got = -1;
	long long t0 = now_ns();
	while (sent < total) {
		ssize_t n = write(c, buf, sizeof buf);
		if (n <= 0)
			DIE("write");
		sent += n;
	}
	shutdown(c, SHUT_WR);
	if (read(c, &got, sizeof got) != sizeof got || got != total)
		DIE("count from the receiver");
	long long t1 = now_ns();
	close(c);
	return t1 - t0;
}

/* Connects `n` times to `a` and closes at once; returns nanoseconds per connection. */
static inline long long connect_loop(struct sockaddr *a, socklen_t len, long n)
{
	long long t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int d = socket(a->sa_family, SOCK_STREAM, 0);
		if (d < 0 || connect(d, a, len) != 0)
			DIE("connect");
		close(d);
	}
	return (now_ns() - t0) / n;
}
#endif
