/* Signal handlers: SA_SIGINFO fields, FP state preserved across a handler, SIGCHLD. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int got;
static volatile double clobber;

static void h(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got = sig * 100 + (si->si_code == SI_USER);
    clobber = 3.25 * sig; /* uses SSE registers */
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    double x = 1.5;
    kill(getpid(), SIGUSR1);
    x = x * 2;
    printf("got %d x %.2f clobber %.2f\n", got, x, clobber);
    sigaction(SIGCHLD, &sa, NULL);
    pid_t p = fork();
    if (p == 0) _exit(9);
    int st;
    waitpid(p, &st, 0);
    printf("child exit %d sigchld %d\n", WEXITSTATUS(st), got / 100);
    return 0;
}
