// Tests eventfd: counter accumulation, read resets, semaphore mode decrements by one, EAGAIN, overflow, EINVAL sizes.
#include "st.h"
#include <sys/eventfd.h>

int main(void) {
    st_init();
    int fd = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    expect_err("eventfd", fd, 0);
    expect_eq("cloexec", fcntl(fd, F_GETFD), FD_CLOEXEC);
    uint64_t v = 4;
    expect_eq("write", write(fd, &v, 8), 8);
    v = 10;
    write(fd, &v, 8);
    uint64_t r = 0;
    expect_eq("read", read(fd, &r, 8), 8);
    say("counter: %llu", (unsigned long long)r);
    expect_err("read_empty_nonblock", read(fd, &r, 8), EAGAIN);
    char small[4];
    expect_err("read_short_buffer", read(fd, small, 4), EINVAL);
    expect_err("write_short_buffer", write(fd, small, 4), EINVAL);
    v = 0xffffffffffffffffULL;
    expect_err("write_max_value", write(fd, &v, 8), EINVAL);
    v = 0xfffffffffffffffeULL;
    expect_eq("write_max_minus_1", write(fd, &v, 8), 8);
    v = 1;
    expect_err("write_overflow_nonblock", write(fd, &v, 8), EAGAIN);
    read(fd, &r, 8);
    say("read_big: %llu", (unsigned long long)r);
    uint64_t big[2];
    v = 5;
    write(fd, &v, 8);
    expect_eq("read_larger_buffer", read(fd, big, 16), 8);
    close(fd);

    int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    int got = 0;
    for (int i = 0; i < 5; i++) {
        if (read(sem, &r, 8) != 8) break;
        if (r != 1) { got = -100; break; }
        got++;
    }
    say("semaphore_reads: %d then %s", got, st_errname(errno));
    close(sem);

    /* Blocking read woken by another process's write. */
    int b = eventfd(0, 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        usleep(20000);
        uint64_t one = 7;
        write(b, &one, 8);
        _exit(0);
    }
    r = 0;
    read(b, &r, 8);
    say("blocking_read_from_child: %llu", (unsigned long long)r);
    waitpid(c, NULL, 0);
    expect_err("bad_flags", eventfd(0, 0x1234), EINVAL);
    /* /proc/self/fdinfo shows the counter */
    v = 42;
    write(b, &v, 8);
    char path[64], info[256] = {0};
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", b);
    int fi = open(path, O_RDONLY);
    read(fi, info, sizeof info - 1);
    close(fi);
    char *cnt = strstr(info, "eventfd-count:");
    say("fdinfo_count: %s", cnt ? (strtoull(cnt + 14, NULL, 16) == 42 ? "42" : "wrong") : "missing");
    close(b);
    return st_done();
}
