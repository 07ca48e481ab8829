// Tests signal interruption of blocking calls: read/wait4 → EINTR without SA_RESTART, restarted with it; nanosleep EINTR with remaining time.
#include "st.h"
#include <sys/time.h>

/* The handler tells the helper child that the signal has arrived; only then does the child
 * produce what the interrupted call waits for, so the order is fixed whatever the timing. */
static volatile int handled;
static int notify_fd = -1;
static void h(int sig) {
    (void)sig;
    handled++;
    if (notify_fd >= 0) write(notify_fd, "s", 1);
}

static void arm_timer(void) {
    setitimer(ITIMER_REAL, &(struct itimerval){.it_value = {0, 50000}}, NULL);
}

/* Block in read() on a pipe; SIGALRM arrives after 50ms; the child writes a byte after that. */
static void read_trial(const char *label, int flags) {
    struct sigaction sa = {.sa_handler = h, .sa_flags = flags};
    sigaction(SIGALRM, &sa, NULL);
    int data[2], note[2];
    MUST(pipe(data));
    MUST(pipe(note));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(data[0]);
        close(note[1]);
        read(note[0], &x, 1);
        write(data[1], "d", 1);
        _exit(0);
    }
    close(data[1]);
    close(note[0]);
    notify_fd = note[1];
    handled = 0;
    arm_timer();
    char b;
    ssize_t n = read(data[0], &b, 1);
    int e = n < 0 ? errno : 0;
    notify_fd = -1;
    say("%s: read=%zd errno=%s handled=%d", label, n, st_errname(e), handled);
    close(note[1]);
    waitpid(c, NULL, 0);
    close(data[0]);
}

/* Block in waitpid(); the child exits only after the signal has been handled. */
static void wait_trial(const char *label, int flags) {
    struct sigaction sa = {.sa_handler = h, .sa_flags = flags};
    sigaction(SIGALRM, &sa, NULL);
    int note[2];
    MUST(pipe(note));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(note[1]);
        read(note[0], &x, 1);
        _exit(4);
    }
    close(note[0]);
    notify_fd = note[1];
    handled = 0;
    arm_timer();
    int st = 0;
    pid_t w = waitpid(c, &st, 0);
    int e = w < 0 ? errno : 0;
    notify_fd = -1;
    if (w == c) say("%s: returned child handled=%d %s", label, handled, st_status(st));
    else say("%s: %s handled=%d", label, st_errname(e), handled);
    close(note[1]);
    waitpid(c, NULL, 0);
}

int main(void) {
    st_init();
    read_trial("read_no_sa_restart", 0);
    read_trial("read_sa_restart", SA_RESTART);
    wait_trial("waitpid_no_sa_restart", 0);
    wait_trial("waitpid_sa_restart", SA_RESTART);

    /* nanosleep is never restarted; it reports the remaining time. */
    struct sigaction sa = {.sa_handler = h, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &(struct itimerval){.it_value = {0, 20000}}, NULL);
    struct timespec req = {2, 0}, rem = {0, 0};
    int r = nanosleep(&req, &rem);
    say("nanosleep: ret=%d errno=%s", r, st_errname(r < 0 ? errno : 0));
    expect("nanosleep_remaining_sane", rem.tv_sec >= 1 && rem.tv_sec <= 2);

    /* pause() always returns EINTR after a handler, even with SA_RESTART. */
    setitimer(ITIMER_REAL, &(struct itimerval){.it_value = {0, 10000}}, NULL);
    r = pause();
    say("pause_sa_restart: ret=%d errno=%s", r, st_errname(errno));

    /* A signal with SIG_IGN does not interrupt. */
    signal(SIGALRM, SIG_IGN);
    setitimer(ITIMER_REAL, &(struct itimerval){.it_value = {0, 10000}}, NULL);
    req.tv_sec = 0;
    req.tv_nsec = 40000000;
    r = nanosleep(&req, NULL);
    say("ignored_signal_nanosleep: %d", r);
    return st_done();
}
