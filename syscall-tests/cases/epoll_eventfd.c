// Tests epoll on eventfd: readiness follows the counter, EPOLLOUT near overflow, ET wakeups per write, threads waking an epoll waiter.
#include "st.h"
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int efd;
static void *poker(void *arg) {
    (void)arg;
    usleep(20000);
    uint64_t one = 1;
    write(efd, &one, 8);
    return NULL;
}

int main(void) {
    st_init();
    efd = eventfd(0, EFD_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = 7}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    int n = epoll_wait(ep, out, 4, 0);
    say("zero_counter: n=%d in=%d out=%d", n, (out[0].events & EPOLLIN) != 0, (out[0].events & EPOLLOUT) != 0);
    uint64_t v = 2;
    write(efd, &v, 8);
    n = epoll_wait(ep, out, 4, 0);
    say("nonzero_counter: n=%d in=%d out=%d", n, (out[0].events & EPOLLIN) != 0, (out[0].events & EPOLLOUT) != 0);
    v = 0xfffffffffffffffcULL; /* counter now at the max, 0xfffffffffffffffe */
    write(efd, &v, 8);
    n = epoll_wait(ep, out, 4, 0);
    say("full_counter: n=%d in=%d out=%d", n, (out[0].events & EPOLLIN) != 0, (out[0].events & EPOLLOUT) != 0);
    read(efd, &v, 8);
    /* ET: each write is a new edge */
    ev.events = EPOLLIN | EPOLLET;
    epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev);
    v = 1;
    write(efd, &v, 8);
    say("et_first: %d", epoll_wait(ep, out, 4, 0));
    say("et_no_change: %d", epoll_wait(ep, out, 4, 0));
    write(efd, &v, 8);
    say("et_second_write: %d", epoll_wait(ep, out, 4, 0));
    read(efd, &v, 8);
    say("et_counter: %llu", (unsigned long long)v);
    /* A thread's write wakes a blocking epoll_wait. */
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev);
    pthread_t t;
    pthread_create(&t, NULL, poker, NULL);
    n = epoll_wait(ep, out, 4, 5000);
    say("woken_by_thread: n=%d data=%u", n, out[0].data.u32);
    pthread_join(t, NULL);
    read(efd, &v, 8);
    /* Nested epoll: an epoll fd inside another reports readiness of the inner set. */
    int outer = epoll_create1(0);
    struct epoll_event oe = {.events = EPOLLIN, .data.u32 = 99};
    expect_err("nest_epoll", epoll_ctl(outer, EPOLL_CTL_ADD, ep, &oe), 0);
    say("outer_idle: %d", epoll_wait(outer, out, 4, 0));
    v = 1;
    write(efd, &v, 8);
    n = epoll_wait(outer, out, 4, 0);
    say("outer_ready: n=%d data=%u", n, out[0].data.u32);
    expect_err("nest_cycle", epoll_ctl(ep, EPOLL_CTL_ADD, outer, &oe), ELOOP);
    /* epoll_pwait with a mask */
    sigset_t m;
    sigemptyset(&m);
    n = epoll_pwait(ep, out, 4, 0, &m);
    say("epoll_pwait: %d", n);
    close(outer);
    close(ep);
    close(efd);
    return st_done();
}
