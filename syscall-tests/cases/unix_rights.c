// Tests SCM_RIGHTS over AF_UNIX: passing pipe and socket fds (also to another process), several fds in one message, where a stream read stops around messages with fds, MSG_PEEK duplicating fds, MSG_CTRUNC when the control buffer is missing or short, MSG_CMSG_CLOEXEC, bad fds and control messages, unread fds closed with the socket, a socket sent over itself freed when closed.
#include "st.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Sends `data` with `n` fds (n may be 0). */
static ssize_t send_fds(int s, const char *data, size_t len, const int *fds, int n) {
    struct iovec io = {(void *)data, len};
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    if (n > 0) {
        m.msg_control = ctl;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * n);
    }
    return sendmsg(s, &m, 0);
}

/* Receives into buf (NUL-terminated); stores up to 8 fds; returns the byte count. */
struct got {
    int n, nfds, fds[8], flags;
    size_t controllen;
    char data[128];
};
static struct got recv_fds(int s, size_t len, int flags, size_t ctl_room) {
    struct got g = {0};
    struct iovec io = {g.data, len};
    char ctl[256];
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl_room ? ctl : NULL,
                       .msg_controllen = ctl_room};
    g.n = recvmsg(s, &m, flags);
    if (g.n >= 0) g.data[g.n] = 0;
    g.flags = m.msg_flags;
    g.controllen = m.msg_controllen;
    if (g.n < 0 || !ctl_room) return g;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
            int k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < k && g.nfds < 8; i++) memcpy(&g.fds[g.nfds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
        }
    }
    return g;
}

static void close_all(struct got *g) {
    for (int i = 0; i < g->nfds; i++) close(g->fds[i]);
}

/* Whether reading `fd` gives EOF within two seconds. */
static int eof_soon(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1) return 0;
    char c;
    return read(fd, &c, 1) == 0;
}

int main(void) {
    st_init();
    char b[64];
    int sv[2], p[2];
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    MUST(pipe(p));

    /* A pipe's read end crosses; the received fd reads what the write end wrote. */
    expect_eq("send_fd", send_fds(sv[0], "fd", 2, &p[0], 1), 2);
    struct got g = recv_fds(sv[1], sizeof b, 0, 256);
    say("recv: n=%d data=%s nfds=%d flags=%#x", g.n, g.data, g.nfds, g.flags);
    expect_eq("controllen", g.controllen, CMSG_SPACE(sizeof(int)));
    expect("new_fd_differs", g.nfds == 1 && g.fds[0] != p[0]);
    write(p[1], "via", 3);
    memset(b, 0, sizeof b);
    expect_eq("read_through_passed_fd", read(g.fds[0], b, sizeof b), 3);
    expect_eq("not_cloexec", fcntl(g.fds[0], F_GETFD), 0);
    close_all(&g);

    /* Several fds in one message; MSG_CMSG_CLOEXEC. */
    int three[3] = {p[0], p[1], sv[0]};
    send_fds(sv[0], "3", 1, three, 3);
    g = recv_fds(sv[1], sizeof b, MSG_CMSG_CLOEXEC, 256);
    say("three: n=%d nfds=%d", g.n, g.nfds);
    expect_eq("cmsg_cloexec", fcntl(g.fds[0], F_GETFD), FD_CLOEXEC);
    close_all(&g);

    /* Stream reads: bytes before a message with fds join it; the read stops after it. */
    send_fds(sv[0], "AB", 2, NULL, 0);
    send_fds(sv[0], "CD", 2, &p[0], 1);
    send_fds(sv[0], "EF", 2, NULL, 0);
    send_fds(sv[0], "GH", 2, &p[0], 1);
    send_fds(sv[0], "IJ", 2, &p[0], 1);
    for (int i = 0; i < 4; i++) {
        g = recv_fds(sv[1], i == 2 ? 1 : sizeof b, 0, 256);
        say("stream_read_%d: data=%s nfds=%d", i, g.data, g.nfds);
        close_all(&g);
    }
    /* MSG_PEEK hands out duplicates each time; the real read gets them once more. */
    send_fds(sv[0], "KL", 2, &p[0], 1);
    send_fds(sv[0], "MN", 2, NULL, 0);
    for (int i = 0; i < 2; i++) {
        g = recv_fds(sv[1], sizeof b, MSG_PEEK, 256);
        say("peek_%d: data=%s nfds=%d", i, g.data, g.nfds);
        close_all(&g);
    }
    g = recv_fds(sv[1], sizeof b, 0, 256);
    say("read_after_peek: data=%s nfds=%d", g.data, g.nfds);
    close_all(&g);
    g = recv_fds(sv[1], sizeof b, 0, 256);
    say("read_next: data=%s nfds=%d", g.data, g.nfds);

    /* No room for the fds: MSG_CTRUNC and they are closed. */
    send_fds(sv[0], "T1", 2, &p[0], 1);
    g = recv_fds(sv[1], sizeof b, 0, 0);
    say("no_control: n=%d ctrunc=%d", g.n, (g.flags & MSG_CTRUNC) != 0);
    send_fds(sv[0], "T2", 2, three, 3);
    g = recv_fds(sv[1], sizeof b, 0, CMSG_LEN(sizeof(int) * 2));
    say("room_for_two: n=%d nfds=%d ctrunc=%d", g.n, g.nfds, (g.flags & MSG_CTRUNC) != 0);
    close_all(&g);
    send_fds(sv[0], "T3", 2, &p[0], 1);
    g = recv_fds(sv[1], sizeof b, 0, CMSG_LEN(0));
    say("header_only: n=%d nfds=%d ctrunc=%d", g.n, g.nfds, (g.flags & MSG_CTRUNC) != 0);
    send_fds(sv[0], "T4", 2, &p[0], 1);
    expect_eq("plain_read_drops_fds", read(sv[1], b, sizeof b), 2);

    /* Bad fds and control messages. */
    int bad = 999;
    expect_err("bad_fd", send_fds(sv[0], "x", 1, &bad, 1), EBADF);
    {
        struct iovec io = {"x", 1};
        char ctl[CMSG_SPACE(sizeof(int))];
        memset(ctl, 0, sizeof ctl);
        struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = 99;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        expect_err("unknown_type", sendmsg(sv[0], &m, 0), EINVAL);
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = 8;
        expect_err("cmsg_len_short", sendmsg(sv[0], &m, 0), EINVAL);
        h->cmsg_len = sizeof ctl + 8;
        expect_err("cmsg_len_long", sendmsg(sv[0], &m, 0), EINVAL);
        h->cmsg_level = 1234;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        expect_eq("other_level_ignored", sendmsg(sv[0], &m, 0), 1);
        expect_eq("read_it", recv(sv[1], b, sizeof b, 0), 1);
    }

    /* Unread fds are closed with the socket: the pipe's last writer goes away. */
    int q[2];
    MUST(pipe(q));
    int s2[2];
    MUST(socketpair(AF_UNIX, SOCK_DGRAM, 0, s2));
    send_fds(s2[0], "w", 1, &q[1], 1);
    close(q[1]);
    close(s2[0]);
    close(s2[1]);
    expect("unread_fd_closed_with_socket", eof_soon(q[0]));
    close(q[0]);

    /* A socket sent over itself (queued in its own queue) is freed when closed. */
    MUST(pipe(q));
    MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, s2));
    send_fds(s2[0], "s", 1, &s2[1], 1);
    send_fds(s2[0], "w", 1, &q[1], 1);
    close(q[1]);
    close(s2[1]);
    close(s2[0]);
    expect("cycle_collected", eof_soon(q[0]));
    close(q[0]);

    /* Another process gets a socket end and talks through it. */
    int conv[2];
    MUST(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, conv));
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        close(sv[0]);
        close(conv[0]);
        struct got c = recv_fds(sv[1], sizeof b, 0, 256);
        if (c.nfds != 1) _exit(1);
        if (send(c.fds[0], "hello parent", 12, 0) != 12) _exit(2);
        _exit(0);
    }
    send_fds(sv[0], "take", 4, &conv[1], 1);
    close(conv[1]);
    memset(b, 0, sizeof b);
    expect_eq("child_wrote", recv(conv[0], b, sizeof b, 0), 12);
    say("child_said: %s", b);
    int st;
    waitpid(k, &st, 0);
    say("child: %s", st_status(st));
    expect_eq("eof_when_child_exits", recv(conv[0], b, sizeof b, 0), 0);
    close(conv[0]);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    return st_done();
}
