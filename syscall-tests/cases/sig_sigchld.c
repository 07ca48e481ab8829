// Tests SIGCHLD: delivered on child exit with CLD_EXITED/si_status, on kill with CLD_KILLED, SA_NOCLDSTOP, SIG_IGN auto-reap.
#include "st.h"

static volatile int n, code, status;
static volatile pid_t from;
static void h(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    n++;
    code = si->si_code;
    status = si->si_status;
    from = si->si_pid;
}

static const char *cld(int c) {
    switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    default: return "?";
    }
}

static void wait_for_n(int want) {
    for (int i = 0; i < 2000 && n < want; i++) usleep(500);
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO};
    sigaction(SIGCHLD, &sa, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(6);
    wait_for_n(1);
    say("exit: n=%d code=%s status=%d pid_ok=%d", n, cld(code), status, from == c);
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) { for (;;) pause(); }
    kill(c, SIGKILL);
    wait_for_n(2);
    say("killed: n=%d code=%s status=%s", n, cld(code), sigabbrev_np(status));
    waitpid(c, NULL, 0);
    /* Stop/continue generate SIGCHLD unless SA_NOCLDSTOP. */
    c = fork();
    if (c == 0) { for (;;) pause(); }
    kill(c, SIGSTOP);
    wait_for_n(3);
    say("stopped: n=%d code=%s status=%s", n, cld(code), sigabbrev_np(status));
    kill(c, SIGCONT);
    wait_for_n(4);
    say("continued: n=%d code=%s status=%s", n, cld(code), sigabbrev_np(status));
    sa.sa_flags |= SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    kill(c, SIGSTOP);
    int st;
    waitpid(c, &st, WUNTRACED);
    usleep(20000);
    say("nocldstop: n=%d child=%s", n, st_status(st));
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    wait_for_n(5);
    /* SIG_IGN for SIGCHLD: children are reaped automatically, wait gives ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c == 0) _exit(0);
    errno = 0;
    pid_t r = waitpid(c, &st, 0);
    say("ignored_sigchld_wait: %s", r < 0 ? st_errname(errno) : "reaped");
    /* SA_NOCLDWAIT behaves the same while a handler still runs. */
    signal(SIGCHLD, SIG_DFL);
    n = 0;
    struct sigaction nw = {.sa_sigaction = h, .sa_flags = SA_SIGINFO | SA_NOCLDWAIT};
    sigaction(SIGCHLD, &nw, NULL);
    c = fork();
    if (c == 0) _exit(0);
    r = waitpid(c, &st, 0);
    say("nocldwait_wait: %s", r < 0 ? st_errname(errno) : "reaped");
    wait_for_n(1);
    say("nocldwait_handler_ran: %d", n);
    return st_done();
}
