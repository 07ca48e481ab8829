// Tests poll/ppoll on pipes: POLLOUT on empty, POLLIN after write, POLLHUP after writer closes, POLLERR for reader gone, POLLNVAL, timeouts.
#include "st.h"
#include <poll.h>

static long long ms_since(struct timespec t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

static const char *ev(short r) {
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ & 3];
    b[0] = 0;
    if (r & POLLIN) strcat(b, "IN ");
    if (r & POLLOUT) strcat(b, "OUT ");
    if (r & POLLHUP) strcat(b, "HUP ");
    if (r & POLLERR) strcat(b, "ERR ");
    if (r & POLLNVAL) strcat(b, "NVAL ");
    if (!b[0]) strcpy(b, "none ");
    b[strlen(b) - 1] = 0;
    return b;
}

int main(void) {
    st_init();
    int p[2];
    MUST(pipe(p));
    struct pollfd f[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLOUT}};
    int r = poll(f, 2, 0);
    say("empty: ret=%d read_end=%s write_end=%s", r, ev(f[0].revents), ev(f[1].revents));
    write(p[1], "x", 1);
    r = poll(f, 2, 0);
    say("after_write: ret=%d read_end=%s write_end=%s", r, ev(f[0].revents), ev(f[1].revents));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char b;
    read(p[0], &b, 1);
    r = poll(f, 1, 50);
    long long el = ms_since(t0);
    say("timeout: ret=%d revents=%s", r, ev(f[0].revents));
    expect("timeout_duration", el >= 45 && el < 1000);
    /* Wake up when a child writes. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { usleep(30000); write(p[1], "y", 1); _exit(0); }
    r = poll(f, 1, 5000);
    say("woken_by_child: ret=%d revents=%s", r, ev(f[0].revents));
    waitpid(c, NULL, 0);
    read(p[0], &b, 1);
    close(p[1]);
    f[0].events = POLLIN;
    r = poll(f, 1, 0);
    say("writer_closed: ret=%d revents=%s", r, ev(f[0].revents));
    close(p[0]);
    MUST(pipe(p));
    close(p[0]);
    struct pollfd w = {.fd = p[1], .events = POLLOUT};
    r = poll(&w, 1, 0);
    say("reader_closed: ret=%d revents=%s", r, ev(w.revents));
    close(p[1]);
    struct pollfd bad[2] = {{.fd = 999, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    r = poll(bad, 2, 0);
    say("bad_fd: ret=%d revents=%s negative_fd_revents=%s", r, ev(bad[0].revents), ev(bad[1].revents));
    /* Events not requested are not reported, except HUP/ERR/NVAL. */
    MUST(pipe(p));
    write(p[1], "z", 1);
    struct pollfd none = {.fd = p[0], .events = 0};
    r = poll(&none, 1, 0);
    say("no_events_requested: ret=%d revents=%s", r, ev(none.revents));
    /* ppoll with a signal mask and a timespec */
    struct timespec ts = {0, 10000000};
    sigset_t m;
    sigemptyset(&m);
    struct pollfd rd = {.fd = p[0], .events = POLLIN};
    r = ppoll(&rd, 1, &ts, &m);
    say("ppoll: ret=%d revents=%s", r, ev(rd.revents));
    expect_err("poll_efault", syscall(SYS_poll, (void *)8, 1, 0), EFAULT);
    expect_err("poll_too_many", syscall(SYS_poll, f, 0x7fffffff, 0), EINVAL);
    /* poll with nfds=0 is a sleep */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = poll(NULL, 0, 20);
    el = ms_since(t0);
    say("poll_nfds0: ret=%d", r);
    expect("poll_nfds0_slept", el >= 15);
    close(p[0]);
    close(p[1]);
    /* /dev/null and regular files are always ready. */
    st_mkdir("poll_pipe");
    int rf = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    struct pollfd ff = {.fd = rf, .events = POLLIN | POLLOUT};
    r = poll(&ff, 1, 0);
    say("regular_file: ret=%d revents=%s", r, ev(ff.revents & (POLLIN | POLLOUT)));
    close(rf);
    return st_done();
}
