// Tests AF_UNIX SOCK_STREAM: socket() type/protocol checks, listen/accept/connect and their errors, backlog (EAGAIN when full, blocking connect until accept), data both ways across fork, blocking sends that send everything, MSG_PEEK/MSG_WAITALL/MSG_DONTWAIT, shutdown, EPIPE+SIGPIPE, ECONNRESET after a peer closed with unread data, listener closed with pending connections.
#include "st.h"
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static int sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

/* Child: connect to path, write `n` bytes of a pattern, read the reply, exit. */
static const char *g_path;
static int writer_child(void *arg) {
    long n = (long)arg;
    struct sockaddr_un a;
    socklen_t l = mkaddr(&a, g_path);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (void *)&a, l) < 0) return 10;
    char *buf = malloc(n);
    for (long i = 0; i < n; i++) buf[i] = (char)(i * 7);
    ssize_t w = write(c, buf, n);
    if (w != n) return 11;
    shutdown(c, SHUT_WR);
    char r[16] = {0};
    if (read(c, r, sizeof r) != 3 || memcmp(r, "ack", 3)) return 12;
    if (read(c, r, sizeof r) != 0) return 13;
    return 0;
}

int main(void) {
    st_init();
    signal(SIGPIPE, on_pipe);
    st_mkdir("unix_stream");
    char b[256];

    expect_err("socket_proto_2", socket(AF_UNIX, SOCK_STREAM, 2), EPROTONOSUPPORT);
    int t = socket(AF_UNIX, SOCK_STREAM, PF_UNIX);
    expect_err("socket_proto_pf_unix", t, 0);
    close(t);
    expect_err("socket_rdm", socket(AF_UNIX, SOCK_RDM, 0), ESOCKTNOSUPPORT);
    expect_err("socket_type_0", socket(AF_UNIX, 0, 0), ESOCKTNOSUPPORT);
    expect_err("socket_type_11", socket(AF_UNIX, 11, 0), EINVAL);
    expect_err("socket_bad_flags", socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    t = socket(AF_UNIX, SOCK_RAW, 0);
    int ty = -1;
    socklen_t tl = sizeof ty;
    getsockopt(t, SOL_SOCKET, SO_TYPE, &ty, &tl);
    say("raw_is_dgram: %d", ty == SOCK_DGRAM);
    close(t);

    /* An unconnected socket. */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    expect_eq("cloexec", fcntl(s, F_GETFD), FD_CLOEXEC);
    expect_err("recv_unconnected", recv(s, b, 1, MSG_DONTWAIT), EINVAL);
    expect_err("send_unconnected", send(s, "x", 1, 0), ENOTCONN);
    expect_err("listen_unbound", listen(s, 1), EINVAL);
    expect_err("accept_not_listening", accept(s, NULL, NULL), EINVAL);
    expect_err("shutdown_unconnected", shutdown(s, SHUT_RDWR), 0);
    expect_err("shutdown_bad_how", shutdown(s, 7), EINVAL);
    close(s);

    /* A listener with backlog 0 takes one connection. */
    struct sockaddr_un a;
    const char *path = st_path("srv");
    g_path = path;
    socklen_t al = mkaddr(&a, path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    int c0 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    expect_err("bind", bind(l, (void *)&a, al), 0);
    expect_err("connect_before_listen", connect(c0, (void *)&a, al), ECONNREFUSED);
    expect_err("listen_0", listen(l, 0), 0);
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    expect_eq("acceptconn", v, 1);
    fcntl(l, F_SETFL, O_NONBLOCK);
    expect_err("accept_nonblock_empty", accept(l, NULL, NULL), EAGAIN);
    fcntl(l, F_SETFL, 0);
    expect_err("accept4_bad_flags", accept4(l, NULL, NULL, 0x1234), EINVAL);
    int avail;
    expect_err("fionread_listener", ioctl(l, FIONREAD, &avail), EINVAL);
    expect_err("connect_c0", connect(c0, (void *)&a, al), 0);
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    expect_err("connect_backlog_full", connect(c1, (void *)&a, al), EAGAIN);
    expect_err("connect_again_full", connect(c0, (void *)&a, al), EAGAIN);
    expect_err("relisten_5", listen(l, 5), 0);
    expect_err("connect_again_room", connect(c0, (void *)&a, al), EISCONN);
    expect_err("connect_listener_itself", connect(l, (void *)&a, al), EINVAL);
    expect_err("listen_connected", listen(c0, 1), EINVAL);
    expect_err("sendto_connected", sendto(c0, "x", 1, 0, (void *)&a, al), EISCONN);
    /* Data written before accept waits for the accepted socket. */
    expect_eq("send_before_accept", send(c0, "early", 5, 0), 5);
    struct sockaddr_un pa;
    memset(&pa, 0x55, sizeof pa);
    socklen_t pl = sizeof pa;
    int s0 = accept4(l, (void *)&pa, &pl, SOCK_CLOEXEC);
    expect("accept", s0 >= 0);
    expect_eq("accept_addrlen_unbound_peer", pl, 2);
    expect_eq("accept_family", pa.sun_family, AF_UNIX);
    expect_eq("accept4_cloexec", fcntl(s0, F_GETFD), FD_CLOEXEC);
    expect_eq("accepted_blocking", fcntl(s0, F_GETFL) & O_NONBLOCK, 0);
    ioctl(s0, FIONREAD, &avail);
    expect_eq("fionread", avail, 5);
    expect_eq("recv_early", recv(s0, b, sizeof b, 0), 5);
    expect_err("recv_empty_nonblock", recv(s0, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_err("read_nonblock_socket", read(c0, b, sizeof b), EAGAIN);

    /* MSG_PEEK, partial reads, messages gathered into one read. */
    send(c0, "abc", 3, 0);
    send(c0, "def", 3, 0);
    expect_eq("peek", recv(s0, b, sizeof b, MSG_PEEK), 6);
    expect_eq("peek_again", recv(s0, b, 2, MSG_PEEK), 2);
    expect_eq("read_2", recv(s0, b, 2, 0), 2);
    memset(b, 0, sizeof b);
    expect_eq("read_rest_across_writes", recv(s0, b, sizeof b, 0), 4);
    say("rest: %s", b);
    expect_eq("recv_zero_len_nothing_queued", recv(s0, b, 0, MSG_DONTWAIT), -1);
    send(c0, "g", 1, 0);
    expect_eq("recv_zero_len_data_queued", recv(s0, b, 0, MSG_DONTWAIT), 0);
    expect_eq("read_g", read(s0, b, sizeof b), 1);
    /* MSG_WAITALL waits for a child's second write. */
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        send(c0, "12", 2, 0);
        usleep(30000);
        send(c0, "3456", 4, 0);
        _exit(0);
    }
    memset(b, 0, sizeof b);
    expect_eq("waitall", recv(s0, b, 6, MSG_WAITALL), 6);
    say("waitall_data: %s", b);
    waitpid(k, NULL, 0);

    /* shutdown(SHUT_WR): the peer reads EOF, our writes fail with EPIPE and SIGPIPE. */
    expect_err("shut_wr", shutdown(c0, SHUT_WR), 0);
    expect_eq("eof_after_peer_shut_wr", recv(s0, b, sizeof b, 0), 0);
    expect_err("send_after_shut_wr", send(c0, "x", 1, 0), EPIPE);
    say("sigpipes: %d", sigpipes);
    expect_err("send_nosignal", send(c0, "x", 1, MSG_NOSIGNAL), EPIPE);
    say("sigpipes_after_nosignal: %d", sigpipes);
    expect_err("write_nothing_after_shut_wr", write(c0, "", 0), EPIPE);
    say("sigpipes_after_empty_write: %d", sigpipes);
    expect_eq("reverse_still_open", send(s0, "back", 4, 0), 4);
    expect_eq("read_reverse", recv(c0, b, sizeof b, 0), 4);
    expect_err("shut_rd", shutdown(c0, SHUT_RD), 0);
    expect_err("peer_send_after_shut_rd", send(s0, "x", 1, 0), EPIPE);
    expect_eq("read_after_shut_rd", recv(c0, b, sizeof b, 0), 0);
    close(c0);
    close(s0);

    /* Default SIGPIPE kills a writer whose peer is gone. */
    int sv[2];
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    close(sv[1]);
    fflush(stdout);
    k = fork();
    if (k == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(sv[0], "x", 1);
        _exit(0);
    }
    int st;
    waitpid(k, &st, 0);
    say("write_to_closed_peer: %s", st_status(st));
    expect_eq("read_closed_peer_eof", read(sv[0], b, sizeof b), 0);
    close(sv[0]);

    /* A peer closing with unread data: ECONNRESET once, then EOF; writes EPIPE. */
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    send(sv[0], "unread", 6, 0);
    send(sv[1], "for0", 4, 0);
    close(sv[1]);
    v = -1;
    expect_eq("read_queued_first", recv(sv[0], b, sizeof b, 0), 4);
    expect_err("then_econnreset", recv(sv[0], b, sizeof b, 0), ECONNRESET);
    expect_eq("then_eof", recv(sv[0], b, sizeof b, 0), 0);
    expect_err("write_closed", send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    close(sv[0]);
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    send(sv[0], "unread", 6, 0);
    close(sv[1]);
    vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &vl);
    say("so_error: %s", st_errname(v));
    getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &v, &vl);
    say("so_error_cleared: %s", st_errname(v));
    close(sv[0]);

    /* Pending connections of a closed listener are reset. */
    int p1 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_pending", connect(p1, (void *)&a, al), 0);
    send(p1, "lost", 4, 0);
    close(l);
    expect_err("pending_reset", recv(p1, b, sizeof b, 0), ECONNRESET);
    expect_eq("pending_eof", recv(p1, b, sizeof b, 0), 0);
    close(p1);
    int p2 = socket(AF_UNIX, SOCK_STREAM, 0);
    expect_err("connect_closed_listener", connect(p2, (void *)&a, al), ECONNREFUSED);
    close(p2);
    unlink(path);

    /* A blocking connect waits for backlog room; blocking sends send everything. */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(bind(l, (void *)&a, al));
    MUST(listen(l, 0));
    int f1 = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(connect(f1, (void *)&a, al));
    fflush(stdout);
    long big = 3 << 20;
    k = fork();
    if (k == 0) _exit(writer_child((void *)big));
    usleep(50000);
    int a1 = accept(l, NULL, NULL); /* f1's; frees room for the child */
    int a2 = accept(l, NULL, NULL); /* the child's */
    expect("accept_both", a1 >= 0 && a2 >= 0);
    char *buf = malloc(big);
    long got = 0;
    ssize_t n;
    while ((n = read(a2, buf + got, big - got)) > 0) got += n;
    int intact = got == big;
    for (long i = 0; intact && i < big; i++) intact = buf[i] == (char)(i * 7);
    expect_eq("big_transfer_bytes", got, big);
    expect("big_transfer_intact", intact);
    write(a2, "ack", 3);
    close(a2);
    waitpid(k, &st, 0);
    say("writer: %s", st_status(st));

    /* A non-blocking send fills the buffer and then fails; SIOCOUTQ counts what waits. */
    fcntl(f1, F_SETFL, O_NONBLOCK);
    long total = 0;
    while ((n = send(f1, buf, 65536, 0)) > 0) total += n;
    say("fill_stops_with: %s", st_errname(errno));
    int outq = 0;
    ioctl(f1, SIOCOUTQ, &outq);
    expect("outq_counts", outq > 0);
    ioctl(a1, FIONREAD, &avail);
    expect_eq("inq_equals_sent", avail, total);
    expect("buffer_bounded", total > 65536 && total < (4 << 20));
    while (recv(a1, buf, big, MSG_DONTWAIT) > 0) {}
    ioctl(f1, SIOCOUTQ, &outq);
    expect_eq("outq_drained", outq, 0);
    close(f1);
    close(a1);
    close(l);
    return st_done();
}
