// Tests sigaction with SA_SIGINFO: si_signo/si_code/si_pid/si_uid for kill, tgkill/raise, sigqueue; oldact round trip.
#include "st.h"

static volatile int got_sig, got_code, got_errno_field;
static volatile pid_t got_pid;
static volatile uid_t got_uid;
static volatile int got_value;

static void h(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_pid = si->si_pid;
    got_uid = si->si_uid;
    got_errno_field = si->si_errno;
    got_value = si->si_value.sival_int;
}

static const char *code_name(int c) {
    switch (c) {
    case SI_USER: return "SI_USER";
    case SI_TKILL: return "SI_TKILL";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_TIMER: return "SI_TIMER";
    default: return "other";
    }
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO}, old;
    sigemptyset(&sa.sa_mask);
    expect_err("sigaction", sigaction(SIGUSR1, &sa, &old), 0);
    expect("old_was_default", old.sa_handler == SIG_DFL);
    kill(getpid(), SIGUSR1);
    say("kill: sig=%s code=%s pid_ok=%d uid_ok=%d errno=%d", sigabbrev_np(got_sig), code_name(got_code),
        got_pid == getpid(), got_uid == getuid(), got_errno_field);
    got_sig = 0;
    raise(SIGUSR1);
    say("raise: sig=%s code=%s pid_ok=%d", sigabbrev_np(got_sig), code_name(got_code), got_pid == getpid());
    got_sig = 0;
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 1234});
    say("sigqueue: sig=%s code=%s value=%d", sigabbrev_np(got_sig), code_name(got_code), got_value);
    /* From a child: si_pid is the child's pid. */
    fflush(stdout);
    got_sig = 0;
    pid_t c = fork();
    if (c == 0) { kill(getppid(), SIGUSR1); _exit(0); }
    for (int i = 0; i < 2000 && !got_sig; i++) usleep(1000);
    waitpid(c, NULL, 0);
    say("from_child: sig=%s code=%s pid_is_child=%d", sigabbrev_np(got_sig), code_name(got_code), got_pid == c);
    /* oldact reports what we installed */
    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    expect("query_returns_handler", cur.sa_sigaction == h && (cur.sa_flags & SA_SIGINFO));
    expect_err("sigaction_sigkill", sigaction(SIGKILL, &sa, NULL), EINVAL);
    expect_err("sigaction_sigstop", sigaction(SIGSTOP, &sa, NULL), EINVAL);
    expect_err("sigaction_sig0", sigaction(0, &sa, NULL), EINVAL);
    expect_err("sigaction_sig65", syscall(SYS_rt_sigaction, 65, NULL, &cur, 8), EINVAL);
    expect_err("rt_sigaction_bad_size", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &cur, 4), EINVAL);
    expect_err("query_sigkill_ok", sigaction(SIGKILL, NULL, &cur), 0);
    /* SA_RESETHAND: handler runs once, then default. SA_NODEFER: signal not blocked inside. */
    struct sigaction rh = {.sa_sigaction = h, .sa_flags = SA_SIGINFO | SA_RESETHAND};
    sigaction(SIGUSR2, &rh, NULL);
    raise(SIGUSR2);
    sigaction(SIGUSR2, NULL, &cur);
    say("resethand_after: default=%d", cur.sa_handler == SIG_DFL);
    return st_done();
}
