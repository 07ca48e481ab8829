// Tests kill(): to self, signal 0 probes, to a process group (0 and -pgid), ESRCH, EINVAL, kill(-1) reaching children.
#include "st.h"

static volatile int got;
static void h(int sig) { (void)sig; got++; }

int main(void) {
    st_init();
    signal(SIGUSR1, h);
    expect_err("kill_self", kill(getpid(), SIGUSR1), 0);
    expect_eq("delivered_before_return", got, 1);
    expect_err("kill_sig0_self", kill(getpid(), 0), 0);
    expect_err("kill_bad_signal", kill(getpid(), 65), EINVAL);
    expect_err("kill_negative_signal", kill(getpid(), -1), EINVAL);
    expect_err("kill_missing", kill(999999999, SIGUSR1), ESRCH);
    expect_err("kill_missing_group", kill(-999999999, SIGUSR1), ESRCH);
    /* A zombie can still be signalled (sig 0 succeeds) until reaped. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(0);
    siginfo_t si;
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    expect_err("kill_zombie_sig0", kill(c, 0), 0);
    waitpid(c, NULL, 0);
    expect_err("kill_reaped", kill(c, 0), ESRCH);
    /* kill(0, sig) reaches our whole process group: run it in a fresh group of a child + grandchild. */
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        int p[2];
        pipe(p);
        pid_t g = fork();
        if (g == 0) {
            signal(SIGUSR2, SIG_DFL);
            close(p[0]);
            write(p[1], "r", 1);
            for (;;) pause();
        }
        char x;
        close(p[1]);
        read(p[0], &x, 1);
        signal(SIGUSR2, SIG_IGN);
        kill(0, SIGUSR2);
        int st;
        waitpid(g, &st, 0);
        _exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("kill_0_group: %s", st_status(st));
    /* An ignored SIGTERM does nothing; SIGKILL cannot be ignored. */
    c = fork();
    if (c == 0) {
        signal(SIGTERM, SIG_IGN);
        raise(SIGTERM);
        raise(SIGKILL);
        _exit(0);
    }
    waitpid(c, &st, 0);
    say("ignored_term_then_kill: %s", st_status(st));
    /* Signalling a stopped process with SIGKILL works. */
    c = fork();
    if (c == 0) { raise(SIGSTOP); _exit(0); }
    waitpid(c, &st, WUNTRACED);
    say("stopped: %s", st_status(st));
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    say("killed_while_stopped: %s", st_status(st));
    return st_done();
}
