// Tests fcntl: F_GETFD/F_SETFD, F_GETFL/F_SETFL, F_DUPFD, F_DUPFD_CLOEXEC, record locks across processes.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("fd_fcntl");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    expect_eq("getfd_default", fcntl(fd, F_GETFD), 0);
    expect_err("setfd_cloexec", fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
    expect_eq("getfd_cloexec", fcntl(fd, F_GETFD), FD_CLOEXEC);
    MUST(fcntl(fd, F_SETFD, 0));
    int fl = fcntl(fd, F_GETFL);
    expect("getfl_rdwr", (fl & O_ACCMODE) == O_RDWR);
    expect_err("setfl_append_nonblock", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK), 0);
    fl = fcntl(fd, F_GETFL);
    expect("getfl_has_append_nonblock", (fl & (O_APPEND | O_NONBLOCK)) == (O_APPEND | O_NONBLOCK));
    /* F_SETFL ignores access mode and creation flags */
    MUST(fcntl(fd, F_SETFL, O_RDONLY | O_TRUNC | O_CREAT));
    fl = fcntl(fd, F_GETFL);
    expect("setfl_ignores_accmode", (fl & O_ACCMODE) == O_RDWR);
    expect("setfl_cleared_append", (fl & O_APPEND) == 0);

    expect_eq("dupfd_min_10", fcntl(fd, F_DUPFD, 10), 10);
    expect_eq("dupfd_min_10_again", fcntl(fd, F_DUPFD, 10), 11);
    expect_eq("dupfd_no_cloexec", fcntl(11, F_GETFD), 0);
    expect_eq("dupfd_cloexec", fcntl(fd, F_DUPFD_CLOEXEC, 10), 12);
    expect_eq("dupfd_cloexec_flag", fcntl(12, F_GETFD), FD_CLOEXEC);
    expect_eq("dupfd_lowest_from_0", fcntl(fd, F_DUPFD, 0), fd + 1);
    expect_err("dupfd_negative", fcntl(fd, F_DUPFD, -1), EINVAL);
    expect_err("dupfd_too_big", fcntl(fd, F_DUPFD, 1 << 30), EINVAL);
    expect_err("fcntl_bad_fd", fcntl(99, F_GETFD), EBADF);
    expect_err("fcntl_bad_cmd", fcntl(fd, 9999), EINVAL);

    /* O_PATH fds allow F_GETFD/F_GETFL but not I/O. */
    int pfd = MUST(open(st_path("f"), O_PATH));
    expect("o_path_getfl", (fcntl(pfd, F_GETFL) & O_PATH) != 0);
    char c;
    expect_err("o_path_read", read(pfd, &c, 1), EBADF);
    close(pfd);

    /* POSIX record locks: a child sees the parent's lock, F_GETLK reports it. */
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    expect_err("setlk_write", fcntl(fd, F_SETLK, &lk), 0);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        struct flock t = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1};
        int busy = fcntl(fd, F_SETLK, &t) < 0 && (errno == EAGAIN || errno == EACCES);
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        fcntl(fd, F_GETLK, &q);
        int reported = q.l_type == F_WRLCK && q.l_pid == getppid() && q.l_start == 0 && q.l_len == 10;
        struct flock free_ = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5};
        int other_range = fcntl(fd, F_SETLK, &free_) == 0;
        _exit(busy | reported << 1 | other_range << 2);
    }
    int st;
    waitpid(p, &st, 0);
    say("child_lock_results: busy=%d getlk_reports=%d other_range=%d", WEXITSTATUS(st) & 1,
        WEXITSTATUS(st) >> 1 & 1, WEXITSTATUS(st) >> 2 & 1);
    expect("child_lock_results_ok", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    lk.l_type = F_UNLCK;
    expect_err("unlock", fcntl(fd, F_SETLK, &lk), 0);
    struct flock bad = {.l_type = 42, .l_whence = SEEK_SET};
    expect_err("setlk_bad_type", fcntl(fd, F_SETLK, &bad), EINVAL);
    close(fd);
    return st_done();
}
