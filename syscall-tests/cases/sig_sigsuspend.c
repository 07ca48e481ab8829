// Tests sigsuspend: atomically unblocks and waits, returns EINTR after the handler, restores the mask; sigtimedwait.
#include "st.h"

static volatile int got;
static void h(int sig) { got = sig; }

int main(void) {
    st_init();
    struct sigaction sa = {.sa_handler = h};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t block, old, waitmask, now;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        usleep(20000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    sigemptyset(&waitmask);
    sigaddset(&waitmask, SIGUSR2); /* keep USR2 blocked during the wait */
    int r = sigsuspend(&waitmask);
    say("sigsuspend: ret=%d errno=%s got=%s", r, st_errname(errno), sigabbrev_np(got));
    sigprocmask(SIG_BLOCK, NULL, &now);
    say("mask_restored: usr1_blocked=%d usr2_blocked=%d", sigismember(&now, SIGUSR1), sigismember(&now, SIGUSR2));
    waitpid(c, NULL, 0);

    /* A signal already pending when sigsuspend is called is delivered immediately. */
    got = 0;
    raise(SIGUSR2);
    sigemptyset(&waitmask);
    r = sigsuspend(&waitmask);
    say("pending_before_suspend: ret=%d got=%s", r, sigabbrev_np(got));

    /* sigtimedwait: consumes a pending signal without running the handler, or times out. */
    got = 0;
    raise(SIGUSR1);
    siginfo_t si;
    struct timespec ts = {0, 0};
    /* raw syscall: glibc's wrapper rewrites SI_TKILL to SI_USER */
    int s = syscall(SYS_rt_sigtimedwait, &block, &si, &ts, 8);
    say("sigtimedwait_pending: sig=%s code_tkill=%d handler_ran=%d", sigabbrev_np(s), si.si_code == SI_TKILL, got != 0);
    ts.tv_nsec = 20000000;
    s = sigtimedwait(&block, &si, &ts);
    say("sigtimedwait_timeout: ret=%d %s", s, st_errname(errno));
    /* sigwaitinfo from a child's kill */
    c = fork();
    if (c == 0) { kill(getppid(), SIGUSR2); _exit(0); }
    s = sigwaitinfo(&block, &si);
    say("sigwaitinfo: sig=%s pid_is_child=%d", sigabbrev_np(s), si.si_pid == c);
    waitpid(c, NULL, 0);
    struct timespec badts = {0, -1};
    expect_err("sigtimedwait_bad_ts", sigtimedwait(&block, &si, &badts), EINVAL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return st_done();
}
