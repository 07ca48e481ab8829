// Tests SIGPIPE: writing to a pipe with no reader kills the writer (WTERMSIG==SIGPIPE); ignored or blocked → EPIPE.
#include "st.h"

int main(void) {
    st_init();
    int p[2];
    MUST(pipe(p));
    close(p[0]);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(p[1], "x", 1);
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    say("default_writer: %s", st_status(st));
    signal(SIGPIPE, SIG_IGN);
    expect_err("ignored_write", write(p[1], "x", 1), EPIPE);
    signal(SIGPIPE, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);
    expect_err("blocked_write", write(p[1], "x", 1), EPIPE);
    sigset_t pend;
    sigpending(&pend);
    say("blocked_sigpipe_pending: %d", sigismember(&pend, SIGPIPE));
    int sig;
    sigwait(&s, &sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    close(p[1]);
    /* A reader closing while a writer is blocked on a full pipe wakes it with EPIPE. */
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        signal(SIGPIPE, SIG_IGN);
        close(p[0]);
        static char buf[1 << 20];
        ssize_t total = 0, n;
        while ((n = write(p[1], buf, sizeof buf)) > 0) total += n;
        _exit(n < 0 && errno == EPIPE ? 0 : 1);
    }
    close(p[1]);
    usleep(30000);
    close(p[0]);
    waitpid(c, &st, 0);
    say("blocked_writer_reader_closed: %s", st_status(st));
    /* A writer that has written some bytes when the reader disappears gets the partial count or EPIPE;
     * a writev to a closed pipe with handler set: the handler runs and write fails with EPIPE. */
    MUST(pipe(p));
    close(p[0]);
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &sa, NULL);
    expect_err("write_after_close_again", write(p[1], "y", 1), EPIPE);
    close(p[1]);
    return st_done();
}
