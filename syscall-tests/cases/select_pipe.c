// Tests select/pselect on pipes: readiness sets, timeout and remaining timeval, EBADF, nfds bound.
#include "st.h"
#include <sys/select.h>

int main(void) {
    st_init();
    int p[2];
    MUST(pipe(p));
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    int n = select(p[1] + 1, &r, &w, NULL, &tv);
    say("empty: ret=%d read_ready=%d write_ready=%d", n, FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
    write(p[1], "abc", 3);
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    n = select(p[1] + 1, &r, &w, NULL, NULL);
    say("with_data: ret=%d read_ready=%d write_ready=%d", n, FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
    char b[8];
    read(p[0], b, sizeof b);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 40000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    say("timeout: ret=%d read_ready=%d tv_left_zero=%d", n, FD_ISSET(p[0], &r), tv.tv_sec == 0 && tv.tv_usec == 0);
    expect("timeout_duration", ms >= 35 && ms < 1000);
    /* Remaining time is written back when woken early. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { usleep(20000); write(p[1], "q", 1); _exit(0); }
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 5;
    tv.tv_usec = 0;
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    say("woken: ret=%d remaining_between_4_and_5s=%d", n, tv.tv_sec == 4 || (tv.tv_sec == 5 && tv.tv_usec == 0));
    waitpid(c, NULL, 0);
    read(p[0], b, 1);
    close(p[1]);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    n = select(p[0] + 1, &r, NULL, NULL, NULL);
    say("eof_is_readable: ret=%d", n);
    FD_ZERO(&r);
    FD_SET(50, &r);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    n = select(51, &r, NULL, NULL, &tv);
    say("closed_fd: ret=%d %s", n, st_errname(n < 0 ? errno : 0));
    expect_err("negative_nfds", select(-1, NULL, NULL, NULL, &tv), EINVAL);
    struct timeval badtv = {0, -5};
    expect_err("bad_timeout", select(1, NULL, NULL, NULL, &badtv), EINVAL);
    /* pselect with sigmask and timespec is not updated */
    struct timespec ts = {0, 10000000};
    sigset_t m;
    sigemptyset(&m);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, &m);
    say("pselect_eof_ready: ret=%d", n);
    /* exceptfds on a pipe: never set */
    fd_set e;
    FD_ZERO(&e);
    FD_SET(p[0], &e);
    tv.tv_usec = 0;
    n = select(p[0] + 1, NULL, NULL, &e, &tv);
    say("exceptfds: ret=%d", n);
    close(p[0]);
    return st_done();
}
