// Tests AF_UNIX SOCK_DGRAM: message boundaries, MSG_TRUNC and MSG_PEEK, sendto path and abstract names, the sender's address at recvfrom, connect as default destination and filter (EPERM), AF_UNSPEC disconnect, ECONNREFUSED/ENOTCONN after the peer closed, EMSGSIZE, the receive queue limit (EAGAIN, blocking until read), shutdown.
#include "st.h"
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strcpy(a->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static socklen_t mkabs(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, strlen(name));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

int main(void) {
    st_init();
    signal(SIGPIPE, SIG_IGN);
    st_mkdir("unix_dgram");
    char b[256];
    int sv[2];

    /* Boundaries, truncation, peek. */
    MUST(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    send(sv[0], "first", 5, 0);
    send(sv[0], "second!", 7, 0);
    send(sv[0], "", 0, 0);
    int avail = -1;
    ioctl(sv[1], FIONREAD, &avail);
    expect_eq("fionread_first_datagram", avail, 5);
    expect_eq("peek", recv(sv[1], b, sizeof b, MSG_PEEK), 5);
    expect_eq("recv_first", recv(sv[1], b, sizeof b, 0), 5);
    expect_eq("recv_trunc_returns_full", recv(sv[1], b, 3, MSG_PEEK | MSG_TRUNC), 7);
    struct iovec io = {b, 3};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    expect_eq("recvmsg_truncated", recvmsg(sv[1], &m, 0), 3);
    expect_eq("msg_flags_trunc", m.msg_flags & MSG_TRUNC, MSG_TRUNC);
    expect_eq("empty_datagram", recv(sv[1], b, sizeof b, 0), 0);
    expect_err("then_nothing", recv(sv[1], b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_err("listen_dgram", listen(sv[0], 1), EOPNOTSUPP);
    expect_err("accept_dgram", accept(sv[0], NULL, NULL), EOPNOTSUPP);
    expect_err("send_oob", send(sv[0], "x", 1, MSG_OOB), EOPNOTSUPP);
    expect_err("recv_oob", recv(sv[1], b, 1, MSG_OOB), EOPNOTSUPP);
    static char huge[300000];
    int sndbuf = 0;
    socklen_t sl = sizeof sndbuf;
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
    expect_eq("largest_datagram", send(sv[0], huge, sndbuf - 32, 0), sndbuf - 32);
    expect_err("too_large", send(sv[0], huge, sndbuf - 31, 0), EMSGSIZE);
    expect_eq("recv_large", recv(sv[1], huge, sizeof huge, 0), sndbuf - 32);

    /* A peer that closes: queued data stays readable, then sends are refused. */
    send(sv[1], "last", 4, 0);
    close(sv[1]);
    expect_eq("read_after_peer_close", recv(sv[0], b, sizeof b, MSG_DONTWAIT), 4);
    expect_err("nothing_more", recv(sv[0], b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_err("send_peer_closed", send(sv[0], "x", 1, 0), ECONNREFUSED);
    expect_err("then_not_connected", send(sv[0], "x", 1, 0), ENOTCONN);
    struct sockaddr_un pa;
    socklen_t pl = sizeof pa;
    expect_err("getpeername_disconnected", getpeername(sv[0], (void *)&pa, &pl), ENOTCONN);
    close(sv[0]);

    /* A server on a path; clients send by name. */
    struct sockaddr_un sa, ca, xa;
    socklen_t sal = mkaddr(&sa, st_path("srv"));
    socklen_t cal = mkaddr(&ca, st_path("cli"));
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    MUST(bind(srv, (void *)&sa, sal));
    int cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_err("send_unconnected", send(cli, "x", 1, 0), ENOTCONN);
    expect_eq("sendto_path", sendto(cli, "anon", 4, 0, (void *)&sa, sal), 4);
    struct sockaddr_un from;
    memset(&from, 0x55, sizeof from);
    socklen_t fl = sizeof from;
    expect_eq("recvfrom_anon", recvfrom(srv, b, sizeof b, 0, (void *)&from, &fl), 4);
    expect_eq("anon_sender_addrlen", fl, 0);
    MUST(bind(cli, (void *)&ca, cal));
    sendto(cli, "named", 5, 0, (void *)&sa, sal);
    fl = sizeof from;
    expect_eq("recvfrom_named", recvfrom(srv, b, sizeof b, 0, (void *)&from, &fl), 5);
    expect("named_sender_addrlen", fl == cal);
    expect("named_sender_path", strcmp(from.sun_path, ca.sun_path) == 0);
    /* recvmsg's msg_name too. */
    sendto(cli, "again", 5, 0, (void *)&sa, sal);
    memset(&from, 0, sizeof from);
    io.iov_len = sizeof b;
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &io, .msg_iovlen = 1};
    expect_eq("recvmsg_named", recvmsg(srv, &mh, 0), 5);
    expect("recvmsg_namelen", mh.msg_namelen == cal);
    socklen_t xal = mkaddr(&xa, st_path("nobody"));
    expect_err("sendto_missing", sendto(cli, "x", 1, 0, (void *)&xa, xal), ENOENT);
    int reg = open(st_path("file"), O_CREAT | O_WRONLY, 0644);
    close(reg);
    xal = mkaddr(&xa, st_path("file"));
    expect_err("sendto_regular_file", sendto(cli, "x", 1, 0, (void *)&xa, xal), ECONNREFUSED);
    expect_err("sendto_bad_family", sendto(cli, "x", 1, 0, (void *)&xa, 1), EINVAL);

    /* connect: the default destination; the server, connected elsewhere, refuses others. */
    expect_err("connect", connect(cli, (void *)&sa, sal), 0);
    expect_eq("send_connected", send(cli, "conn", 4, 0), 4);
    expect_eq("recv_conn", recv(srv, b, sizeof b, 0), 4);
    pl = sizeof pa;
    MUST(getpeername(cli, (void *)&pa, &pl));
    expect("peername_len", pl == sal);
    expect_err("server_connects_to_client", connect(srv, (void *)&ca, cal), 0);
    int other = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_err("third_party_refused", sendto(other, "x", 1, 0, (void *)&sa, sal), EPERM);
    expect_err("third_party_connect_refused", connect(other, (void *)&sa, sal), EPERM);
    expect_eq("client_still_may_send", send(cli, "ok", 2, 0), 2);
    expect_eq("server_reads_it", recv(srv, b, sizeof b, 0), 2);
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    expect_err("disconnect_unspec", connect(srv, &unspec, sizeof unspec), 0);
    expect_eq("third_party_after_disconnect", sendto(other, "y", 1, 0, (void *)&sa, sal), 1);
    expect_eq("read_third_party", recv(srv, b, sizeof b, 0), 1);
    expect_err("connect_short_addr", connect(srv, &unspec, 1), EINVAL);
    close(other);

    /* The server's queue holds max_dgram_qlen+1 datagrams from a sender it is not
     * connected to; then EAGAIN, or a blocking send until the server reads. */
    int nb = 0;
    while (send(cli, "q", 1, MSG_DONTWAIT) == 1) nb++;
    expect_eq("queue_limit", nb, 11);
    say("full_queue: %s", st_errname(errno));
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        usleep(30000);
        char c;
        recv(srv, &c, 1, 0);
        _exit(0);
    }
    expect_eq("blocking_send_waits_for_room", send(cli, "w", 1, 0), 1);
    waitpid(k, NULL, 0);
    while (recv(srv, b, sizeof b, MSG_DONTWAIT) > 0) {}

    /* Closing the server: a connected client is refused and disconnected. */
    close(srv);
    expect_err("send_to_closed_server", send(cli, "x", 1, 0), ECONNREFUSED);
    expect_err("sendto_closed_server_path", sendto(cli, "x", 1, 0, (void *)&sa, sal), ECONNREFUSED);
    close(cli);

    /* Abstract names. */
    struct sockaddr_un aa;
    socklen_t aal = mkabs(&aa, "st-unix-dgram");
    int as = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_err("bind_abstract", bind(as, (void *)&aa, aal), 0);
    int ac = socket(AF_UNIX, SOCK_DGRAM, 0);
    expect_eq("sendto_abstract", sendto(ac, "abs", 3, 0, (void *)&aa, aal), 3);
    expect_eq("recv_abstract", recv(as, b, sizeof b, 0), 3);
    expect_err("sendto_abstract_prefix", sendto(ac, "x", 1, 0, (void *)&aa, aal - 1), ECONNREFUSED);

    /* shutdown(SHUT_RD): blocking reads see EOF, non-blocking ones EAGAIN; senders EPIPE. */
    expect_err("shut_rd", shutdown(as, SHUT_RD), 0);
    expect_err("send_to_shut_rd", sendto(ac, "x", 1, 0, (void *)&aa, aal), EPIPE);
    expect_err("nonblocking_read_shut", recv(as, b, sizeof b, MSG_DONTWAIT), EAGAIN);
    expect_eq("blocking_read_shut", recv(as, b, sizeof b, 0), 0);
    expect_err("shut_wr", shutdown(ac, SHUT_WR), 0);
    expect_err("send_after_shut_wr", sendto(ac, "x", 1, 0, (void *)&aa, aal), EPIPE);
    close(as);
    close(ac);

    /* A socket connected to itself. */
    int self = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un me;
    socklen_t mel = mkabs(&me, "st-unix-dgram-self");
    MUST(bind(self, (void *)&me, mel));
    expect_err("connect_self", connect(self, (void *)&me, mel), 0);
    expect_eq("send_self", send(self, "loop", 4, 0), 4);
    expect_eq("recv_self", recv(self, b, sizeof b, 0), 4);
    close(self);
    return st_done();
}
