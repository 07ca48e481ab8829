// Tests fork + wait4/waitpid/wait: exit statuses, WIFSIGNALED/WTERMSIG, rusage, ECHILD, waiting for any child.
#include "st.h"
#include <sys/resource.h>

int main(void) {
    st_init();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(42);
    expect("fork_returns_pid", c > 0);
    int st = 0;
    struct rusage ru;
    pid_t w = wait4(c, &st, 0, &ru);
    expect("wait4_returns_child", w == c);
    say("status: exited=%d code=%d signaled=%d", WIFEXITED(st), WEXITSTATUS(st), WIFSIGNALED(st));
    expect_err("wait_again_echild", waitpid(c, &st, 0), ECHILD);
    expect_err("wait_no_children", wait(&st), ECHILD);

    c = fork();
    if (c == 0) {
        st_no_core();
        kill(getpid(), SIGTERM);
        pause();
        _exit(0);
    }
    waitpid(c, &st, 0);
    say("killed: signaled=%d termsig=%s exited=%d", WIFSIGNALED(st), sigabbrev_np(WTERMSIG(st)),
        WIFEXITED(st));

    c = fork();
    if (c == 0) { pause(); _exit(0); }
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    say("sigkill: %s", st_status(st));

    /* Several children, reaped in any order with wait(); the set of codes is what matters. */
    pid_t kids[5];
    for (int i = 0; i < 5; i++) {
        kids[i] = fork();
        if (kids[i] == 0) _exit(10 + i);
    }
    int seen = 0;
    for (int i = 0; i < 5; i++) {
        pid_t r = wait(&st);
        for (int j = 0; j < 5; j++)
            if (r == kids[j] && WEXITSTATUS(st) == 10 + j) seen |= 1 << j;
    }
    expect_eq("all_children_reaped_with_codes", seen, 31);

    /* waitpid(-1) and waitpid(0) (same process group) */
    c = fork();
    if (c == 0) _exit(3);
    w = waitpid(0, &st, 0);
    expect("waitpid_0_same_pgrp", w == c && WEXITSTATUS(st) == 3);
    c = fork();
    if (c == 0) _exit(4);
    w = waitpid(-1, &st, 0);
    expect("waitpid_minus1", w == c && WEXITSTATUS(st) == 4);
    /* waitpid(-pgid) for a child in its own group */
    c = fork();
    if (c == 0) { setpgid(0, 0); _exit(5); }
    setpgid(c, c); /* race-free: either of us sets it */
    w = waitpid(-c, &st, 0);
    expect("waitpid_neg_pgid", w == c && WEXITSTATUS(st) == 5);
    expect_err("waitpid_bad_options", waitpid(-1, &st, 0x10000000), EINVAL);
    expect_err("waitpid_not_child", waitpid(1, &st, 0), ECHILD);

    /* Child's CPU usage shows in RUSAGE_CHILDREN after reaping. */
    c = fork();
    if (c == 0) {
        volatile unsigned long x = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        do {
            for (int i = 0; i < 100000; i++) x += i;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        } while ((t1.tv_sec - t0.tv_sec) * 1000000000L + t1.tv_nsec - t0.tv_nsec < 30000000L);
        _exit(0);
    }
    wait4(c, &st, 0, &ru);
    long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000L +
              ru.ru_stime.tv_usec;
    expect("wait4_rusage_cpu", us >= 10000);
    struct rusage rc;
    getrusage(RUSAGE_CHILDREN, &rc);
    expect("rusage_children_cpu", rc.ru_utime.tv_sec * 1000000L + rc.ru_utime.tv_usec +
                                       rc.ru_stime.tv_sec * 1000000L + rc.ru_stime.tv_usec >= 10000);
    expect("maxrss_positive", rc.ru_maxrss > 0);
    return st_done();
}
