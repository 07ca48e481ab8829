// Tests readiness of TCP sockets for poll, select and epoll: POLLIN on data and on a pending
// connection, POLLOUT, POLLRDHUP/EPOLLRDHUP after the peer's shutdown, POLLHUP after both,
// edge-triggered epoll firing once per arrival, EPOLLONESHOT, and a blocked reader woken
// by another process's write.
#include "st.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>

int main(void) {
    st_init();
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = {.sin_family = AF_INET};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(ls, (void *)&la, sizeof la);
    listen(ls, 4);
    socklen_t l = sizeof la;
    getsockname(ls, (void *)&la, &l);

    struct pollfd p = {.fd = ls, .events = POLLIN};
    expect_eq("listener_idle", poll(&p, 1, 0), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&la, sizeof la);
    expect_eq("listener_pending", poll(&p, 1, 5000), 1);
    expect_eq("listener_revents", p.revents, POLLIN);
    int a = accept(ls, 0, 0);

    struct pollfd q = {.fd = a, .events = POLLIN | POLLOUT | POLLRDHUP};
    expect_eq("fresh_conn", poll(&q, 1, 0), 1);
    expect_eq("fresh_conn_revents", q.revents, POLLOUT);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(a, &rs);
    struct timeval tv = {0, 0};
    expect_eq("select_idle", select(a + 1, &rs, 0, 0, &tv), 0);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.fd = a};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
    struct epoll_event out[4];
    expect_eq("epoll_idle", epoll_wait(ep, out, 4, 0), 0);
    write(c, "abc", 3);
    expect_eq("epoll_et_first", epoll_wait(ep, out, 4, 5000), 1);
    expect_eq("epoll_et_events", out[0].events, EPOLLIN);
    expect_eq("epoll_et_no_repeat", epoll_wait(ep, out, 4, 0), 0);
    FD_ZERO(&rs);
    FD_SET(a, &rs);
    tv.tv_sec = 5;
    expect_eq("select_readable", select(a + 1, &rs, 0, 0, &tv), 1);
    char buf[16];
    expect_eq("drain", read(a, buf, sizeof buf), 3);
    write(c, "d", 1);
    expect_eq("epoll_et_second_edge", epoll_wait(ep, out, 4, 5000), 1);
    read(a, buf, sizeof buf);

    /* Oneshot: reported once, then disarmed until EPOLL_CTL_MOD. */
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, a, &ev);
    write(c, "e", 1);
    expect_eq("oneshot_first", epoll_wait(ep, out, 4, 5000), 1);
    expect_eq("oneshot_disarmed", epoll_wait(ep, out, 4, 50), 0);
    read(a, buf, sizeof buf);

    /* The peer shuts its write side: POLLIN|POLLRDHUP, read gives EOF. */
    shutdown(c, SHUT_WR);
    q.events = POLLIN | POLLRDHUP;
    expect_eq("rdhup_poll", poll(&q, 1, 5000), 1);
    expect_eq("rdhup_revents", q.revents, POLLIN | POLLRDHUP);
    expect_eq("eof", read(a, buf, sizeof buf), 0);
    /* Both directions closed: POLLHUP. */
    shutdown(a, SHUT_WR);
    close(c);
    q.events = POLLIN | POLLOUT;
    poll(&q, 1, 5000);
    usleep(50000);
    poll(&q, 1, 5000);
    expect("hup_after_both", (q.revents & POLLHUP) != 0);
    close(a);

    /* A reader blocked in recv is woken by another process's write. */
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    connect(c2, (void *)&la, sizeof la);
    int a2 = accept(ls, 0, 0);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        write(c2, "wake", 4);
        _exit(0);
    }
    memset(buf, 0, sizeof buf);
    expect_eq("blocked_read", read(a2, buf, 4), 4);
    say("woken with: %s", buf);
    int st;
    waitpid(pid, &st, 0);
    return st_done();
}
