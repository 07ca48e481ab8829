// Tests readiness of AF_UNIX sockets: poll masks of fresh, listening, connected, shut down and orphaned stream/datagram/seqpacket sockets, a full send buffer and a full datagram queue, epoll level- and edge-triggered (one edge per write, EPOLLOUT edge when the peer reads), blocking poll/epoll woken by another process.
#include "st.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *ev(int r) {
    static char bufs[8][96];
    static int next;
    char *b = bufs[next++ & 7];
    b[0] = 0;
    if (r & POLLIN) strcat(b, "IN ");
    if (r & POLLPRI) strcat(b, "PRI ");
    if (r & POLLOUT) strcat(b, "OUT ");
    if (r & POLLERR) strcat(b, "ERR ");
    if (r & POLLHUP) strcat(b, "HUP ");
    if (r & POLLRDHUP) strcat(b, "RDHUP ");
    if (r & POLLRDNORM) strcat(b, "RDNORM ");
    if (r & POLLWRNORM) strcat(b, "WRNORM ");
    if (r & POLLWRBAND) strcat(b, "WRBAND ");
    if (!b[0]) strcpy(b, "none ");
    b[strlen(b) - 1] = 0;
    return b;
}

static const char *pollof(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLPRI | POLLOUT | POLLRDHUP | POLLRDNORM | POLLWRNORM | POLLWRBAND};
    poll(&p, 1, 0);
    return ev(p.revents);
}

static int ewait(int ep) {
    struct epoll_event e;
    return epoll_wait(ep, &e, 1, 0);
}

int main(void) {
    st_init();
    signal(SIGPIPE, SIG_IGN);
    st_mkdir("unix_poll");
    char b[256];
    int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};
    const char *names[3] = {"stream", "dgram", "seqpacket"};
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_UNIX, types[i], 0);
        say("%s_fresh: %s", names[i], pollof(s));
        shutdown(s, SHUT_RD);
        say("%s_fresh_shut_rd: %s", names[i], pollof(s));
        shutdown(s, SHUT_WR);
        say("%s_fresh_shut_rdwr: %s", names[i], pollof(s));
        close(s);
        int sv[2];
        MUST(socketpair(AF_UNIX, types[i], 0, sv));
        say("%s_pair: %s", names[i], pollof(sv[0]));
        send(sv[1], "x", 1, 0);
        say("%s_data: %s", names[i], pollof(sv[0]));
        recv(sv[0], b, sizeof b, 0);
        shutdown(sv[1], SHUT_WR);
        say("%s_peer_shut_wr: %s / peer %s", names[i], pollof(sv[0]), pollof(sv[1]));
        close(sv[1]);
        say("%s_peer_closed: %s", names[i], pollof(sv[0]));
        close(sv[0]);
        MUST(socketpair(AF_UNIX, types[i], 0, sv));
        send(sv[0], "unread", 6, 0);
        close(sv[1]);
        say("%s_peer_closed_unread: %s", names[i], pollof(sv[0]));
        close(sv[0]);
    }

    /* Listeners */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", st_path("l"));
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(bind(l, (void *)&a, sizeof a));
    MUST(listen(l, 4));
    say("listener: %s", pollof(l));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(connect(c, (void *)&a, sizeof a));
    say("listener_pending: %s", pollof(l));
    say("client_before_accept: %s", pollof(c));
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN | EPOLLET};
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, l, &e));
    say("listener_et_armed: %d", ewait(ep));
    say("listener_et_again: %d", ewait(ep));
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    MUST(connect(c2, (void *)&a, sizeof a));
    say("listener_et_new_connection: %d", ewait(ep));
    close(ep);
    int s = accept(l, NULL, NULL);
    close(accept(l, NULL, NULL));
    say("listener_drained: %s", pollof(l));

    /* Edge-triggered: one edge per write; EPOLLOUT edge when the peer reads. */
    ep = epoll_create1(0);
    e.events = EPOLLIN | EPOLLOUT | EPOLLET;
    e.data.fd = s;
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e));
    say("et_initial: %d", ewait(ep));
    say("et_nothing_new: %d", ewait(ep));
    send(c, "1", 1, 0);
    say("et_after_write: %d", ewait(ep));
    say("et_again: %d", ewait(ep));
    send(c, "2", 1, 0);
    say("et_second_write: %d", ewait(ep));
    recv(s, b, sizeof b, 0);
    say("et_after_own_read: %d", ewait(ep));
    close(ep);
    /* Fill c's send buffer, then watch it become writable again. */
    fcntl(c, F_SETFL, O_NONBLOCK);
    static char big[65536];
    while (send(c, big, sizeof big, 0) > 0) {}
    say("full_sender: %s", pollof(c));
    ep = epoll_create1(0);
    e.events = EPOLLOUT | EPOLLET;
    e.data.fd = c;
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, c, &e));
    say("full_et_out: %d", ewait(ep));
    while (recv(s, big, sizeof big, MSG_DONTWAIT) > 0) {}
    say("drained_et_out: %d", ewait(ep));
    say("drained_sender: %s", pollof(c));
    close(ep);
    /* Level-triggered repeats. */
    ep = epoll_create1(0);
    e.events = EPOLLIN;
    MUST(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e));
    send(c, "lt", 2, 0);
    say("lt_1: %d", ewait(ep));
    say("lt_2: %d", ewait(ep));
    recv(s, b, sizeof b, 0);
    say("lt_after_read: %d", ewait(ep));
    /* Blocking epoll_wait and poll woken by another process. */
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) {
        usleep(30000);
        send(c, "w", 1, 0);
        usleep(30000);
        shutdown(c, SHUT_WR);
        _exit(0);
    }
    struct epoll_event out;
    say("epoll_woken: %d", epoll_wait(ep, &out, 1, 5000));
    recv(s, b, sizeof b, 0);
    struct pollfd p = {.fd = s, .events = POLLIN};
    int r = poll(&p, 1, 5000);
    say("poll_woken_by_shutdown: %d %s", r, ev(p.revents));
    waitpid(k, NULL, 0);
    close(ep);
    close(s);
    close(c);
    close(c2);
    close(l);

    /* A datagram socket connected to a full receiver that is not connected back. */
    struct sockaddr_un da = {.sun_family = AF_UNIX};
    snprintf(da.sun_path, sizeof da.sun_path, "%s", st_path("d"));
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    MUST(bind(d, (void *)&da, sizeof da));
    int ds = socket(AF_UNIX, SOCK_DGRAM, 0);
    MUST(connect(ds, (void *)&da, sizeof da));
    while (send(ds, "q", 1, MSG_DONTWAIT) == 1) {}
    say("dgram_receiver_full: %s", pollof(ds));
    fflush(stdout);
    k = fork();
    if (k == 0) {
        usleep(30000);
        recv(d, b, sizeof b, 0);
        _exit(0);
    }
    p.fd = ds;
    p.events = POLLOUT;
    r = poll(&p, 1, 5000);
    say("dgram_woken_when_read: %d %s", r, ev(p.revents));
    waitpid(k, NULL, 0);
    close(d);
    say("dgram_receiver_closed: %s", pollof(ds));
    close(ds);
    return st_done();
}
