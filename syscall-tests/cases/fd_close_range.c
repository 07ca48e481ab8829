// Tests close_range: closing a range, CLOSE_RANGE_CLOEXEC, invalid arguments, close of a bad fd.
#include "st.h"

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

int main(void) {
    st_init();
    for (int i = 0; i < 10; i++) MUST(dup2(1, 10 + i));
    expect_err("close_range_12_15", syscall(SYS_close_range, 12, 15, 0), 0);
    char line[64] = "open:";
    for (int i = 10; i < 20; i++)
        if (is_open(i)) snprintf(line + strlen(line), sizeof line - strlen(line), " %d", i);
    say("%s", line);
    expect_err("close_range_cloexec", syscall(SYS_close_range, 16, 17, 4 /*CLOSE_RANGE_CLOEXEC*/), 0);
    say("cloexec_16_17: %d %d other: %d", fcntl(16, F_GETFD), fcntl(17, F_GETFD), fcntl(18, F_GETFD));
    expect_err("close_range_first_gt_last", syscall(SYS_close_range, 20, 10, 0), EINVAL);
    expect_err("close_range_bad_flags", syscall(SYS_close_range, 10, 11, 0x80), EINVAL);
    expect_err("close_range_unopened", syscall(SYS_close_range, 100, 200, 0), 0);
    expect_err("close_range_to_max", syscall(SYS_close_range, 18, ~0U, 0), 0);
    strcpy(line, "open_after_max:");
    for (int i = 10; i < 20; i++)
        if (is_open(i)) snprintf(line + strlen(line), sizeof line - strlen(line), " %d", i);
    say("%s", line);
    expect_err("close_bad_fd", close(1234), EBADF);
    expect_err("close_negative", close(-1), EBADF);
    close(10); close(11); close(16); close(17);
    /* stdout still works */
    expect("stdout_open", is_open(1));
    return st_done();
}
