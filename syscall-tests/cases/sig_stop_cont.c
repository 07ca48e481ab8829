// Tests job control signals: SIGSTOP/SIGTSTP stop a child (WUNTRACED), SIGCONT resumes (WCONTINUED), handlers for SIGCONT/SIGTSTP.
#include "st.h"

static int wfd;
static void h(int s) {
    char m = s == SIGTSTP ? 'T' : 'C';
    write(wfd, &m, 1);
}

int main(void) {
    st_init();
    int p[2];
    MUST(pipe(p));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        for (int i = 0;; i++) {
            char b = 'x';
            write(p[1], &b, 1);
            usleep(5000);
        }
    }
    close(p[1]);
    char b;
    read(p[0], &b, 1);
    kill(c, SIGSTOP);
    int st;
    expect("waitpid_untraced", waitpid(c, &st, WUNTRACED) == c);
    say("after_sigstop: %s", st_status(st));
    /* No progress while stopped: drain, wait, expect nothing new. */
    int fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    while (read(p[0], &b, 1) > 0) {}
    usleep(50000);
    ssize_t n = read(p[0], &b, 1);
    say("progress_while_stopped: %s", n > 0 ? "yes" : st_errname(errno));
    expect_eq("wnohang_nothing_more", waitpid(c, &st, WNOHANG | WUNTRACED), 0);
    kill(c, SIGCONT);
    expect("waitpid_continued", waitpid(c, &st, WCONTINUED) == c);
    say("after_sigcont: %s", st_status(st));
    fcntl(p[0], F_SETFL, fl);
    n = read(p[0], &b, 1);
    say("progress_after_cont: %zd", n);
    kill(c, SIGTSTP);
    waitpid(c, &st, WUNTRACED);
    say("after_sigtstp: %s", st_status(st));
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    say("final: %s", st_status(st));
    /* SIGTSTP with a handler does not stop; SIGCONT handler runs on continue. */
    int q[2];
    MUST(pipe(q));
    c = fork();
    if (c == 0) {
        close(q[0]);
        wfd = q[1];
        struct sigaction sa = {.sa_handler = h};
        sigaction(SIGTSTP, &sa, NULL);
        sigaction(SIGCONT, &sa, NULL);
        write(wfd, "R", 1);
        for (;;) pause();
    }
    close(q[1]);
    read(q[0], &b, 1);
    kill(c, SIGTSTP);
    read(q[0], &b, 1);
    say("tstp_handled: %c", b);
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    read(q[0], &b, 1);
    say("cont_handler: %c", b);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    /* SIGTERM sent to a stopped child stays pending until SIGCONT. */
    c = fork();
    if (c == 0) { raise(SIGSTOP); _exit(9); }
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGTERM);
    usleep(20000);
    expect_eq("term_pending_while_stopped", waitpid(c, &st, WNOHANG), 0);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    say("term_after_cont: %s", st_status(st));
    return st_done();
}
