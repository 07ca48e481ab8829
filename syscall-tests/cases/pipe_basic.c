// Tests pipe/pipe2: data order, EOF after writer closes, O_NONBLOCK EAGAIN, O_CLOEXEC, F_GETPIPE_SZ/F_SETPIPE_SZ, FIONREAD, atomic small writes.
#include "st.h"
#include <sys/ioctl.h>

int main(void) {
    st_init();
    int p[2];
    expect_err("pipe", pipe(p), 0);
    expect_eq("fds_consecutive_lowest", p[0] == 3 && p[1] == 4, 1);
    expect("read_end_rdonly", (fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY);
    expect("write_end_wronly", (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY);
    expect_eq("write", write(p[1], "hello", 5), 5);
    expect_eq("write2", write(p[1], " world", 6), 6);
    int avail = -1;
    ioctl(p[0], FIONREAD, &avail);
    expect_eq("fionread", avail, 11);
    char buf[64] = {0};
    expect_eq("read_partial", read(p[0], buf, 3), 3);
    expect_eq("read_rest", read(p[0], buf + 3, sizeof buf - 4), 8);
    say("data: %s", buf);
    expect_err("write_to_read_end", write(p[0], "x", 1), EBADF);
    expect_err("read_from_write_end", read(p[1], buf, 1), EBADF);
    close(p[1]);
    expect_eq("eof_after_writer_closed", read(p[0], buf, sizeof buf), 0);
    close(p[0]);

    expect_err("pipe2_flags", pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    expect_eq("pipe2_cloexec", fcntl(p[0], F_GETFD) & FD_CLOEXEC, 1);
    expect("pipe2_nonblock", (fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0);
    expect_err("nonblock_empty_read", read(p[0], buf, 1), EAGAIN);
    int sz = fcntl(p[0], F_GETPIPE_SZ);
    expect("pipe_sz_at_least_4096", sz >= 4096);
    /* Fill to capacity: the last write is partial or EAGAIN. */
    static char big[1 << 20];
    long total = 0;
    for (;;) {
        ssize_t n = write(p[1], big, 4096);
        if (n < 0) {
            say("full_write: %s", st_errname(errno));
            break;
        }
        total += n;
    }
    expect("filled_equals_capacity", total == sz);
    /* Resize the pipe and check it is at least what we asked for. */
    int nsz = fcntl(p[1], F_SETPIPE_SZ, 1 << 17);
    expect("setpipe_sz", nsz >= (1 << 17));
    expect_err("setpipe_sz_too_small_for_data", fcntl(p[1], F_SETPIPE_SZ, 4096), EBUSY);
    close(p[0]);
    close(p[1]);
    expect_err("pipe2_bad_flags", pipe2(p, O_APPEND), EINVAL);
    /* A writer larger than PIPE_BUF may be split; a small one (<= PIPE_BUF) is atomic: interleave from 4 children. */
    MUST(pipe(p));
    fflush(stdout);
    for (int c = 0; c < 4; c++) {
        if (fork() == 0) {
            char rec[512];
            memset(rec, 'A' + c, sizeof rec);
            for (int i = 0; i < 50; i++) write(p[1], rec, sizeof rec);
            _exit(0);
        }
    }
    close(p[1]);
    int intact = 1, records = 0;
    char rec[512];
    for (;;) {
        size_t got = 0;
        while (got < sizeof rec) {
            ssize_t n = read(p[0], rec + got, sizeof rec - got);
            if (n <= 0) break;
            got += n;
        }
        if (got == 0) break;
        if (got != sizeof rec) { intact = 0; break; }
        for (size_t i = 1; i < sizeof rec; i++)
            if (rec[i] != rec[0]) intact = 0;
        records++;
    }
    while (wait(NULL) > 0) {}
    expect_eq("atomic_records", records, 200);
    expect("records_not_interleaved", intact);
    close(p[0]);
    return st_done();
}
