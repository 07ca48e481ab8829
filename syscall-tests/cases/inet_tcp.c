// Tests AF_INET TCP on 127.0.0.1: listen/accept/connect, echo, getsockname/getpeername, MSG_PEEK,
// MSG_DONTWAIT, MSG_WAITALL, shutdown EOF, EPIPE/SIGPIPE, MSG_NOSIGNAL, ECONNREFUSED,
// EADDRINUSE, SO_REUSEADDR, non-blocking connect with SO_ERROR, socket options.
#include "st.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static struct sockaddr_in lo(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int listener(struct sockaddr_in *out) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo(0);
    if (bind(s, (void *)&a, sizeof a) < 0) return -1;
    if (listen(s, 16) < 0) return -1;
    socklen_t l = sizeof *out;
    getsockname(s, (void *)out, &l);
    return s;
}

static volatile int got_pipe;
static void on_pipe(int s) { (void)s; got_pipe++; }

int main(void) {
    st_init();
    struct sockaddr_in la;
    int ls = listener(&la);
    expect("listen", ls >= 0);
    expect("ephemeral_port_nonzero", la.sin_port != 0);
    expect_eq("bound_to_loopback", ntohl(la.sin_addr.s_addr), INADDR_LOOPBACK);
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(ls, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    expect_eq("so_acceptconn", v, 1);
    getsockopt(ls, SOL_SOCKET, SO_TYPE, &v, &vl);
    expect_eq("so_type", v, SOCK_STREAM);
    getsockopt(ls, SOL_SOCKET, SO_DOMAIN, &v, &vl);
    expect_eq("so_domain", v, AF_INET);
    getsockopt(ls, SOL_SOCKET, SO_PROTOCOL, &v, &vl);
    expect_eq("so_protocol", v, IPPROTO_TCP);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    expect_err("connect", connect(c, (void *)&la, sizeof la), 0);
    struct sockaddr_in pa;
    socklen_t pl = sizeof pa;
    int a = accept(ls, (void *)&pa, &pl);
    expect("accept", a >= 0);
    expect_eq("accept_addrlen", pl, sizeof pa);
    struct sockaddr_in cn, cp;
    socklen_t l1 = sizeof cn, l2 = sizeof cp;
    getsockname(c, (void *)&cn, &l1);
    getpeername(c, (void *)&cp, &l2);
    expect("peer_is_listener", cp.sin_port == la.sin_port);
    expect("accepted_peer_is_client", pa.sin_port == cn.sin_port);
    expect("client_port_ephemeral", ntohs(cn.sin_port) >= 1024);

    expect_eq("send", send(c, "hello world", 11, 0), 11);
    char buf[64] = {0};
    /* Data may arrive in pieces; WAITALL collects it. */
    expect_eq("recv_peek_waitall", recv(a, buf, 5, MSG_PEEK | MSG_WAITALL), 5);
    expect_eq("recv_waitall", recv(a, buf, 11, MSG_WAITALL), 11);
    say("data: %s", buf);
    expect_err("recv_dontwait_empty", recv(a, buf, 1, MSG_DONTWAIT), EAGAIN);
    int n = -1;
    ioctl(a, FIONREAD, &n);
    expect_eq("fionread_empty", n, 0);
    expect_eq("write", write(a, "pong", 4), 4);
    memset(buf, 0, sizeof buf);
    expect_eq("read", read(c, buf, 4), 4);
    say("reply: %s", buf);

    /* Shutdown of the write side: the peer reads EOF, the other direction still works. */
    expect_err("shutdown_wr", shutdown(c, SHUT_WR), 0);
    expect_eq("eof_after_shutdown", read(a, buf, sizeof buf), 0);
    expect_eq("other_direction", write(a, "x", 1), 1);
    expect_eq("other_direction_read", read(c, buf, 1), 1);
    expect_err("send_after_shut_wr", send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
    signal(SIGPIPE, on_pipe);
    expect_err("send_after_shut_wr_sigpipe", send(c, "x", 1, 0), EPIPE);
    expect_eq("sigpipe_raised", got_pipe, 1);
    close(a);
    close(c);

    /* Nobody listening: refused. */
    int r = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in dead = la;
    int tmp = listener(&dead);
    close(tmp);
    expect_err("connect_refused", connect(r, (void *)&dead, sizeof dead), ECONNREFUSED);
    close(r);

    /* Address in use, unless SO_REUSEADDR on a non-listening port. */
    int b = socket(AF_INET, SOCK_STREAM, 0);
    expect_err("bind_in_use", bind(b, (void *)&la, sizeof la), EADDRINUSE);
    close(b);
    expect_err("bind_bad_len", bind(socket(AF_INET, SOCK_STREAM, 0), (void *)&la, 8), EINVAL);
    struct sockaddr_in6 wrong = {.sin6_family = AF_INET6};
    expect_err("bind_wrong_family",
               bind(socket(AF_INET, SOCK_STREAM, 0), (void *)&wrong, sizeof wrong), EAFNOSUPPORT);
    expect_err("accept_not_listening", accept(socket(AF_INET, SOCK_STREAM, 0), 0, 0), EINVAL);
    expect_err("getpeername_unconnected",
               getpeername(socket(AF_INET, SOCK_STREAM, 0), (void *)&cp, &l2), ENOTCONN);
    expect_err("not_a_socket", send(open("/dev/null", O_RDONLY), "x", 1, 0), ENOTSOCK);
    expect_err("bad_family", socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
    expect_err("bad_proto", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
    expect_err("socketpair_inet", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0, 0}), EOPNOTSUPP);

    /* Non-blocking connect: EINPROGRESS, then writable and SO_ERROR 0. */
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = connect(nb, (void *)&la, sizeof la);
    expect("nb_connect_inprogress_or_done", rc == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = nb, .events = POLLOUT};
    expect_eq("nb_connect_poll", poll(&p, 1, 5000), 1);
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(nb, SOL_SOCKET, SO_ERROR, &err, &el);
    expect_eq("nb_connect_so_error", err, 0);
    int a2 = accept4(ls, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
    expect("accept4", a2 >= 0);
    expect_eq("accept4_cloexec", fcntl(a2, F_GETFD) & FD_CLOEXEC, 1);
    expect("accept4_nonblock", (fcntl(a2, F_GETFL) & O_NONBLOCK) != 0);
    fcntl(ls, F_SETFL, O_NONBLOCK);
    expect_err("accept_empty_nonblock", accept(ls, 0, 0), EAGAIN);

    /* Non-blocking connect to a closed port: SO_ERROR says refused. */
    int nb2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    rc = connect(nb2, (void *)&dead, sizeof dead);
    if (rc < 0 && errno == EINPROGRESS) {
        p.fd = nb2;
        p.events = POLLOUT;
        poll(&p, 1, 5000);
        getsockopt(nb2, SOL_SOCKET, SO_ERROR, &err, &el);
        expect_eq("nb_refused_so_error", err, ECONNREFUSED);
    } else {
        expect_err("nb_refused_direct", rc, ECONNREFUSED);
    }

    /* Options. */
    int one = 1;
    expect_err("tcp_nodelay", setsockopt(nb, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    v = 0;
    getsockopt(nb, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
    expect("tcp_nodelay_get", v != 0);
    expect_err("so_keepalive", setsockopt(nb, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
    getsockopt(nb, SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
    expect("so_keepalive_get", v != 0);
    expect_err("so_reuseaddr", setsockopt(nb, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    expect_err("bad_level", setsockopt(nb, 9999, 1, &one, sizeof one), ENOPROTOOPT);
    int sz = 1 << 16;
    setsockopt(nb, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    getsockopt(nb, SOL_SOCKET, SO_RCVBUF, &v, &vl);
    expect("so_rcvbuf_at_least_asked", v >= sz);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    expect_err("so_rcvtimeo", setsockopt(a2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    fcntl(a2, F_SETFL, 0);
    expect_err("rcvtimeo_expires", recv(a2, buf, 1, 0), EAGAIN);
    close(nb);
    close(nb2);
    close(a2);
    close(ls);
    return st_done();
}
