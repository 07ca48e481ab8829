// Tests epoll on pipes: level-triggered repeats, edge-triggered reports once per new data, EPOLLONESHOT + MOD re-arm, ctl errors, data.u64.
#include "st.h"
#include <sys/epoll.h>

static int wait1(int ep, struct epoll_event *e, int timeout) {
    return epoll_wait(ep, e, 1, timeout);
}

int main(void) {
    st_init();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    expect_err("epoll_create1", ep, 0);
    expect_eq("epoll_cloexec", fcntl(ep, F_GETFD), FD_CLOEXEC);
    int p[2];
    MUST(pipe(p));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL}, out;
    expect_err("ctl_add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), 0);
    expect_err("ctl_add_twice", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    expect_eq("nothing_ready", wait1(ep, &out, 0), 0);
    write(p[1], "ab", 2);
    int n = wait1(ep, &out, 0);
    say("level: n=%d in=%d data_ok=%d", n, (out.events & EPOLLIN) != 0, out.data.u64 == 0x1122334455667788ULL);
    n = wait1(ep, &out, 0);
    say("level_again_without_read: n=%d", n);
    char b[8];
    read(p[0], b, 2);
    expect_eq("level_after_drain", wait1(ep, &out, 0), 0);

    /* Edge-triggered */
    ev.events = EPOLLIN | EPOLLET;
    expect_err("ctl_mod_et", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), 0);
    write(p[1], "cd", 2);
    say("edge_first: n=%d", wait1(ep, &out, 0));
    say("edge_second_no_new_data: n=%d", wait1(ep, &out, 0));
    read(p[0], b, 1);
    say("edge_after_partial_read: n=%d", wait1(ep, &out, 0));
    write(p[1], "e", 1);
    say("edge_new_data: n=%d", wait1(ep, &out, 0));
    read(p[0], b, sizeof b);

    /* One-shot */
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    write(p[1], "f", 1);
    say("oneshot_first: n=%d", wait1(ep, &out, 0));
    say("oneshot_disabled: n=%d", wait1(ep, &out, 0));
    write(p[1], "g", 1);
    say("oneshot_still_disabled: n=%d", wait1(ep, &out, 0));
    expect_err("oneshot_rearm", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), 0);
    say("oneshot_rearmed: n=%d", wait1(ep, &out, 0));
    read(p[0], b, sizeof b);

    /* Hang-up is always reported. */
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    close(p[1]);
    n = wait1(ep, &out, 0);
    say("hup: n=%d hup=%d in=%d", n, (out.events & EPOLLHUP) != 0, (out.events & EPOLLIN) != 0);
    expect_err("ctl_del", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL), 0);
    expect_err("ctl_del_missing", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL), ENOENT);
    expect_err("ctl_mod_missing", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev), ENOENT);
    expect_err("ctl_add_self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    expect_err("ctl_bad_fd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    expect_err("ctl_bad_op", epoll_ctl(ep, 99, p[0], &ev), EINVAL);
    st_mkdir("epoll_basic");
    int rf = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    expect_err("ctl_add_regular_file", epoll_ctl(ep, EPOLL_CTL_ADD, rf, &ev), EPERM);
    close(rf);
    expect_err("wait_bad_maxevents", epoll_wait(ep, &out, 0, 0), EINVAL);
    expect_err("wait_not_epoll", epoll_wait(p[0], &out, 1, 0), EINVAL);
    expect_err("create_bad_size", epoll_create(0), EINVAL);
    expect_err("create1_bad_flags", epoll_create1(0x1234), EINVAL);
    close(p[0]);

    /* Many fds, maxevents smaller than ready count: round-robin over calls. */
    int fds[8][2];
    for (int i = 0; i < 8; i++) {
        MUST(pipe(fds[i]));
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i][0], &e);
        write(fds[i][1], "x", 1);
    }
    struct epoll_event evs[3];
    unsigned seen = 0;
    for (int k = 0; k < 3; k++) {
        int m = epoll_wait(ep, evs, 3, 0);
        for (int j = 0; j < m; j++) seen |= 1u << evs[j].data.u32;
    }
    say("maxevents_3_three_calls_cover_all: %d", seen == 0xff);
    struct epoll_event all[16];
    say("all_ready: n=%d", epoll_wait(ep, all, 16, 0));
    /* Closing an fd removes it from the set. */
    for (int i = 0; i < 8; i++) { close(fds[i][0]); close(fds[i][1]); }
    say("after_close: n=%d", epoll_wait(ep, all, 16, 0));
    /* Timeout */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    n = epoll_wait(ep, all, 16, 30);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    say("timeout: n=%d", n);
    expect("timeout_duration", ms >= 25 && ms < 1000);
    /* Blocking wait woken by a child's write */
    MUST(pipe(p));
    struct epoll_event e2 = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e2);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { usleep(20000); write(p[1], "w", 1); _exit(0); }
    n = epoll_wait(ep, all, 16, 5000);
    say("woken_by_child: n=%d fd_ok=%d", n, all[0].data.fd == p[0]);
    waitpid(c, NULL, 0);
    /* EPOLLOUT on write end */
    struct epoll_event e3 = {.events = EPOLLOUT, .data.fd = p[1]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &e3);
    n = epoll_wait(ep, all, 16, 0);
    int outs = 0;
    for (int i = 0; i < n; i++) outs += (all[i].events & EPOLLOUT) && all[i].data.fd == p[1];
    say("epollout_write_end: %d", outs);
    close(ep);
    return st_done();
}
