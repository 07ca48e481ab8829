// Tests POSIX timers (timer_create/settime/gettime/getoverrun with SIGEV_SIGNAL) and timerfd with read and overruns.
#include "st.h"
#include <poll.h>
#include <sys/timerfd.h>

static volatile int fired, val;
static void h(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    fired++;
    val = si->si_value.sival_int;
    if (si->si_code != SI_TIMER) val = -1;
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO};
    sigaction(SIGRTMIN, &sa, NULL);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    sev.sigev_value.sival_int = 31337;
    timer_t t;
    expect_err("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t), 0);
    struct itimerspec its = {.it_value = {0, 30000000}};
    expect_err("timer_settime", timer_settime(t, 0, &its, NULL), 0);
    struct itimerspec cur;
    timer_gettime(t, &cur);
    expect("gettime_remaining", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 30000000);
    while (!fired) pause();
    say("timer_fired: %d value=%d", fired, val);
    timer_gettime(t, &cur);
    expect("disarmed_after_oneshot", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    /* Overrun: block the signal while a fast periodic timer expires several times. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, NULL);
    struct itimerspec per = {.it_interval = {0, 5000000}, .it_value = {0, 5000000}};
    timer_settime(t, 0, &per, NULL);
    usleep(60000);
    siginfo_t si;
    sigwaitinfo(&s, &si);
    int ov = timer_getoverrun(t);
    expect("overrun_counted", ov >= 3 || si.si_overrun >= 3);
    timer_settime(t, 0, &(struct itimerspec){0}, NULL);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    expect_err("timer_delete", timer_delete(t), 0);
    expect_err("timer_settime_deleted", timer_settime(t, 0, &its, NULL), EINVAL);
    expect_err("timer_create_bad_clock", timer_create(12345, &sev, &t), EINVAL);

    /* timerfd */
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    expect_err("timerfd_create", fd, 0);
    struct itimerspec tv = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
    expect_err("timerfd_settime", timerfd_settime(fd, 0, &tv, NULL), 0);
    uint64_t n = 0;
    expect_eq("timerfd_read_len", read(fd, &n, 8), 8);
    expect("timerfd_expirations_ge1", n >= 1);
    usleep(35000);
    read(fd, &n, 8);
    expect("timerfd_accumulated_ge2", n >= 2);
    char small[4];
    expect_err("timerfd_short_read", read(fd, small, 4), EINVAL);
    timerfd_settime(fd, 0, &(struct itimerspec){0}, NULL);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    expect_err("timerfd_disarmed_eagain", read(fd, &n, 8), EAGAIN);
    /* poll sees it readable when it fires */
    timerfd_settime(fd, 0, &(struct itimerspec){.it_value = {0, 20000000}}, NULL);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, 1000);
    say("timerfd_poll: ret=%d pollin=%d", pr, (p.revents & POLLIN) != 0);
    read(fd, &n, 8);
    say("timerfd_oneshot_count: %llu", (unsigned long long)n);
    /* Absolute time in the past fires immediately. */
    struct itimerspec past = {.it_value = {1, 0}};
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &past, NULL);
    pr = poll(&p, 1, 1000);
    say("abs_past_fires_immediately: %d", pr == 1);
    read(fd, &n, 8);
    expect_err("timerfd_bad_clock", timerfd_create(12345, 0), EINVAL);
    expect_err("timerfd_bad_flags", timerfd_create(CLOCK_MONOTONIC, 0x1234), EINVAL);
    close(fd);
    return st_done();
}
