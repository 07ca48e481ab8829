// Tests alarm (remaining seconds, cancel), setitimer ITIMER_REAL + pause, SIGALRM default kills a child.
#include "st.h"
#include <sys/time.h>

static volatile int alarms;
static void h(int sig) { (void)sig; alarms++; }

int main(void) {
    st_init();
    struct sigaction sa = {.sa_handler = h};
    sigaction(SIGALRM, &sa, NULL);
    say("alarm_first: %u", alarm(10));
    unsigned left = alarm(5);
    say("alarm_remaining_ok: %d", left == 10 || left == 9);
    say("alarm_cancel_remaining_ok: %d", alarm(0) >= 4);
    say("alarm_after_cancel: %u", alarm(0));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct itimerval it = {.it_value = {0, 50000}};
    expect_err("setitimer", setitimer(ITIMER_REAL, &it, NULL), 0);
    int r = pause();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    say("pause_returned: %d %s alarms=%d", r, st_errname(errno), alarms);
    expect("timer_delay_ok", ms >= 45 && ms < 1000);
    struct itimerval cur;
    getitimer(ITIMER_REAL, &cur);
    expect("oneshot_disarmed", cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);

    /* Periodic timer: three expirations. */
    alarms = 0;
    struct itimerval per = {.it_interval = {0, 10000}, .it_value = {0, 10000}};
    setitimer(ITIMER_REAL, &per, NULL);
    while (alarms < 3) pause();
    struct itimerval stop = {0};
    setitimer(ITIMER_REAL, &stop, &cur);
    say("periodic_alarms: %d interval_kept=%d", alarms, cur.it_interval.tv_usec == 10000);
    expect_err("setitimer_bad_which", setitimer(99, &it, NULL), EINVAL);
    struct itimerval bad = {.it_value = {0, 2000000}};
    expect_err("setitimer_bad_usec", setitimer(ITIMER_REAL, &bad, NULL), EINVAL);

    /* A real alarm(1) in a child, default action: killed by SIGALRM. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        signal(SIGALRM, SIG_DFL);
        struct itimerval o = {.it_value = {0, 20000}};
        setitimer(ITIMER_REAL, &o, NULL);
        for (;;) pause();
    }
    int st;
    waitpid(c, &st, 0);
    say("child_default_alarm: %s", st_status(st));
    /* Timers are not inherited across fork. */
    setitimer(ITIMER_REAL, &(struct itimerval){.it_value = {5, 0}}, NULL);
    c = fork();
    if (c == 0) {
        struct itimerval g;
        getitimer(ITIMER_REAL, &g);
        _exit(g.it_value.tv_sec == 0 && g.it_value.tv_usec == 0 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    say("fork_clears_itimer: %s", st_status(st));
    alarm(0);
    /* ITIMER_VIRTUAL fires after CPU time. */
    alarms = 0;
    sigaction(SIGVTALRM, &sa, NULL);
    setitimer(ITIMER_VIRTUAL, &(struct itimerval){.it_value = {0, 20000}}, NULL);
    volatile unsigned long x = 0;
    while (!alarms) x++;
    say("virtual_timer_fired: %d", alarms);
    return st_done();
}
