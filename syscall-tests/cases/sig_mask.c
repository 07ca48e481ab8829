// Tests sigprocmask blocking, sigpending, delivery on unblock, standard signal coalescing vs RT queueing, SIGKILL unblockable.
#include "st.h"

static volatile int count_usr1, count_rt;
static volatile int order[8], norder;
static void h(int sig) {
    if (sig == SIGUSR1) count_usr1++;
    else count_rt++;
    if (norder < 8) order[norder++] = sig;
}

int main(void) {
    st_init();
    /* Handlers block everything, so they run one at a time in delivery order instead of nesting. */
    struct sigaction sa = {.sa_handler = h};
    sigfillset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigset_t s, old, pend;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    expect_err("block", sigprocmask(SIG_BLOCK, &s, &old), 0);
    expect("old_mask_empty_of_usr1", !sigismember(&old, SIGUSR1));
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGRTMIN + 1);
    kill(getpid(), SIGRTMIN);
    kill(getpid(), SIGRTMIN);
    kill(getpid(), SIGUSR2);
    expect_eq("nothing_delivered_while_blocked", count_usr1 + count_rt, 0);
    sigpending(&pend);
    say("pending: usr1=%d usr2=%d rtmin=%d rtmin1=%d term=%d", sigismember(&pend, SIGUSR1),
        sigismember(&pend, SIGUSR2), sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGRTMIN + 1),
        sigismember(&pend, SIGTERM));
    expect_err("unblock", sigprocmask(SIG_SETMASK, &old, NULL), 0);
    say("after_unblock: usr1=%d rt=%d", count_usr1, count_rt);
    /* Delivery order: lowest-numbered first (standard before RT). */
    char line[128] = "order:";
    for (int i = 0; i < norder; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " %s",
                 order[i] >= SIGRTMIN ? (order[i] == SIGRTMIN ? "RTMIN" : "RTMIN+1") : sigabbrev_np(order[i]));
    say("%s", line);
    sigpending(&pend);
    expect("nothing_pending", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGRTMIN));
    /* SIGKILL and SIGSTOP cannot be blocked. */
    sigset_t all, now;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    sigprocmask(SIG_BLOCK, NULL, &now);
    say("kill_blockable=%d stop_blockable=%d usr1_blocked=%d", sigismember(&now, SIGKILL),
        sigismember(&now, SIGSTOP), sigismember(&now, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    sigprocmask(SIG_BLOCK, NULL, &now);
    expect("all_unblocked", !sigismember(&now, SIGUSR1) && !sigismember(&now, SIGRTMAX));
    expect_err("bad_how", sigprocmask(99, &s, NULL), EINVAL);
    expect_err("rt_sigprocmask_bad_size", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, NULL, 4), EINVAL);
    /* A blocked ignored signal is discarded... but a blocked default-ignored one stays pending. */
    signal(SIGWINCH, SIG_DFL);
    sigemptyset(&s);
    sigaddset(&s, SIGWINCH);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise(SIGWINCH);
    raise(SIGPIPE);
    sigpending(&pend);
    say("blocked_default_ignored_pending: %d", sigismember(&pend, SIGWINCH));
    say("blocked_explicitly_ignored_pending: %d", sigismember(&pend, SIGPIPE));
    /* Setting a pending signal to SIG_IGN discards it. */
    signal(SIGWINCH, SIG_IGN);
    sigpending(&pend);
    say("pending_after_set_ignore: %d", sigismember(&pend, SIGWINCH));
    /* The mask is inherited across fork; pending signals are not. */
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    raise(SIGUSR1);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        sigset_t m, p;
        sigprocmask(SIG_BLOCK, NULL, &m);
        sigpending(&p);
        _exit(sigismember(&m, SIGUSR1) && !sigismember(&p, SIGUSR1) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("fork_inherits_mask_not_pending: %s", st_status(st));
    return st_done();
}
