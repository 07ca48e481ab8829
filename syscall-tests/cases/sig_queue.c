// Tests rt_sigqueueinfo/sigqueue: si_value delivered, RT signals queue in order, EAGAIN-free small queues, EPERM for forged si_code.
#include "st.h"

static volatile int vals[16], nvals;
static volatile int codes[16];
static void h(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    if (nvals < 16) {
        codes[nvals] = si->si_code;
        vals[nvals++] = si->si_value.sival_int;
    }
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO};
    sigfillset(&sa.sa_mask);
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    for (int i = 1; i <= 5; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i * 11});
    for (int i = 1; i <= 3; i++) sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = i * 100});
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    char line[256] = "delivered_values:";
    for (int i = 0; i < nvals; i++) snprintf(line + strlen(line), sizeof line - strlen(line), " %d", vals[i]);
    say("%s", line);
    say("all_si_queue: %d", codes[0] == SI_QUEUE && codes[nvals - 1] == SI_QUEUE);

    /* Raw rt_sigqueueinfo with a negative si_code (allowed for self) */
    nvals = 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGRTMIN;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 777;
    expect_err("rt_sigqueueinfo", syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN, &si), 0);
    say("raw_value: %d code_queue=%d", vals[0], codes[0] == SI_QUEUE);
    /* Forging a kernel si_code (>= 0) to another process is refused. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { pause(); _exit(0); }
    si.si_code = SI_USER;
    expect_err("forged_si_user_to_other", syscall(SYS_rt_sigqueueinfo, c, SIGRTMIN, &si), EPERM);
    si.si_code = SI_KERNEL;
    expect_err("forged_si_kernel_to_other", syscall(SYS_rt_sigqueueinfo, c, SIGRTMIN, &si), EPERM);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    expect_err("sigqueue_missing_pid", sigqueue(999999999, SIGRTMIN, (union sigval){0}), ESRCH);
    expect_err("sigqueue_bad_sig", sigqueue(getpid(), 999, (union sigval){0}), EINVAL);
    /* rt_tgsigqueueinfo to our own thread */
    nvals = 0;
    si.si_code = SI_QUEUE;
    si.si_value.sival_int = 4242;
    expect_err("rt_tgsigqueueinfo", syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGRTMIN, &si), 0);
    say("tg_value: %d", vals[0]);
    /* Value passed to a child through sigqueue and read with sigwaitinfo. */
    int p[2];
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        sigset_t w;
        sigemptyset(&w);
        sigaddset(&w, SIGRTMIN + 2);
        sigprocmask(SIG_BLOCK, &w, NULL);
        write(p[1], "r", 1);
        siginfo_t got;
        sigwaitinfo(&w, &got);
        _exit(got.si_value.sival_int == 99 && got.si_pid == getppid() ? 0 : 1);
    }
    char x;
    read(p[0], &x, 1);
    sigqueue(c, SIGRTMIN + 2, (union sigval){.sival_int = 99});
    int st;
    waitpid(c, &st, 0);
    say("child_sigwaitinfo_value: %s", st_status(st));
    return st_done();
}
