// Tests dup/dup2/dup3: lowest fd, shared offset and flags, dup2 same fd, dup3 EINVAL on equal fds, O_CLOEXEC.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("fd_dup");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "abcdef", 6));
    int d = dup(fd);
    expect_eq("dup_lowest", d, fd + 1);
    expect_eq("dup_shared_offset", lseek(d, 0, SEEK_CUR), 6);
    MUST(lseek(d, 2, SEEK_SET));
    expect_eq("offset_seen_by_original", lseek(fd, 0, SEEK_CUR), 2);
    MUST(fcntl(fd, F_SETFL, O_APPEND));
    expect("status_flags_shared", (fcntl(d, F_GETFL) & O_APPEND) != 0);
    MUST(fcntl(fd, F_SETFD, FD_CLOEXEC));
    expect_eq("fd_flags_not_shared", fcntl(d, F_GETFD), 0);
    expect_eq("dup_clears_cloexec", fcntl(dup(fd), F_GETFD), 0);

    expect_eq("dup2_to_10", dup2(fd, 10), 10);
    expect_eq("dup2_same_fd", dup2(fd, fd), fd);
    expect_eq("dup2_same_fd_keeps_cloexec", fcntl(fd, F_GETFD), FD_CLOEXEC);
    expect_err("dup2_same_bad_fd", dup2(77, 77), EBADF);
    expect_err("dup2_bad_old", dup2(77, 11), EBADF);
    expect_err("dup2_new_too_big", dup2(fd, 1 << 30), EBADF);
    /* dup2 over an open fd closes it silently. */
    int other = MUST(open(st_path("g"), O_RDWR | O_CREAT, 0644));
    expect_eq("dup2_over_open", dup2(fd, other), other);
    struct stat a, b;
    MUST(fstat(fd, &a));
    MUST(fstat(other, &b));
    expect("dup2_replaced_file", a.st_ino == b.st_ino);

    expect_err("dup3_equal_fds", dup3(fd, fd, 0), EINVAL);
    expect_err("dup3_bad_flags", dup3(fd, 20, O_NONBLOCK), EINVAL);
    expect_eq("dup3_cloexec", dup3(fd, 20, O_CLOEXEC), 20);
    expect_eq("dup3_cloexec_flag", fcntl(20, F_GETFD), FD_CLOEXEC);
    expect_eq("dup3_plain", dup3(fd, 21, 0), 21);
    expect_eq("dup3_plain_flag", fcntl(21, F_GETFD), 0);
    expect_err("dup_bad", dup(99), EBADF);

    /* Closing one duplicate leaves the file open through the other. */
    close(fd);
    char buf[8] = {0};
    expect_eq("read_via_dup_after_close", pread(d, buf, 3, 0), 3);
    say("data: %s", buf);
    expect_err("closed_original", fcntl(fd, F_GETFD), EBADF);
    expect_err("close_twice", close(fd), EBADF);

    /* RLIMIT_NOFILE bounds dup2's target. */
    struct rlimit rl;
    MUST(getrlimit(RLIMIT_NOFILE, &rl));
    expect_err("dup2_at_rlimit", dup2(d, (int)rl.rlim_cur), EBADF);
    expect("dup2_below_rlimit", dup2(d, (int)rl.rlim_cur - 1) == (int)rl.rlim_cur - 1);
    close((int)rl.rlim_cur - 1);
    return st_done();
}
