// Tests signalfd: blocked signals readable as signalfd_siginfo (signo, code, pid, value), poll readiness, EAGAIN, mask update.
#include "st.h"
#include <poll.h>
#include <sys/signalfd.h>

int main(void) {
    st_init();
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int fd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
    expect_err("signalfd", fd, 0);
    struct signalfd_siginfo si;
    expect_err("empty_read", read(fd, &si, sizeof si), EAGAIN);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    say("poll_empty: %d", poll(&p, 1, 0));
    kill(getpid(), SIGUSR1);
    say("poll_pending: %d", poll(&p, 1, 0));
    expect_eq("read_size", read(fd, &si, sizeof si), (long)sizeof si);
    say("info: signo=%s code_user=%d pid_ok=%d uid_ok=%d", sigabbrev_np(si.ssi_signo), si.ssi_code == SI_USER,
        si.ssi_pid == (uint32_t)getpid(), si.ssi_uid == getuid());
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 55});
    sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 66});
    struct signalfd_siginfo two[2];
    ssize_t n = read(fd, two, sizeof two);
    say("two_queued: bytes_is_2x=%d values=%d,%d code_queue=%d", n == (ssize_t)sizeof two, two[0].ssi_int,
        two[1].ssi_int, two[0].ssi_code == SI_QUEUE);
    char small[16];
    kill(getpid(), SIGUSR1);
    expect_err("short_buffer", read(fd, small, sizeof small), EINVAL);
    read(fd, &si, sizeof si);
    /* Update the mask of an existing signalfd. */
    sigset_t m2;
    sigemptyset(&m2);
    sigaddset(&m2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m2, NULL);
    expect("update_mask_same_fd", signalfd(fd, &m2, 0) == fd);
    kill(getpid(), SIGUSR2);
    read(fd, &si, sizeof si);
    say("after_update: %s", sigabbrev_np(si.ssi_signo));
    /* Child exit via SIGCHLD */
    sigset_t c;
    sigemptyset(&c);
    sigaddset(&c, SIGCHLD);
    sigprocmask(SIG_BLOCK, &c, NULL);
    int cfd = signalfd(-1, &c, 0);
    fflush(stdout);
    pid_t k = fork();
    if (k == 0) _exit(5);
    read(cfd, &si, sizeof si);
    say("sigchld: signo=%s status=%d pid_ok=%d code_exited=%d", sigabbrev_np(si.ssi_signo), si.ssi_status,
        si.ssi_pid == (uint32_t)k, si.ssi_code == CLD_EXITED);
    waitpid(k, NULL, 0);
    expect_err("bad_flags", signalfd(-1, &m, 0x1234), EINVAL);
    expect_err("not_a_signalfd", signalfd(0, &m, 0), EINVAL);
    close(cfd);
    close(fd);
    return st_done();
}
