// Tests read/write/pread/pwrite/readv/writev and file offsets.
#include "st.h"
#include <sys/uio.h>

int main(void) {
    st_init();
    st_mkdir("file_rw");
    const char *f = st_path("data");
    int fd = MUST(open(f, O_RDWR | O_CREAT, 0644));
    char buf[128];

    expect_eq("write_ret", write(fd, "0123456789", 10), 10);
    expect_eq("offset_after_write", lseek(fd, 0, SEEK_CUR), 10);
    expect_eq("read_at_eof", read(fd, buf, sizeof buf), 0);
    expect_eq("pread_ret", pread(fd, buf, 4, 3), 4);
    buf[4] = 0;
    say("pread_data: %s", buf);
    expect_eq("offset_unchanged_by_pread", lseek(fd, 0, SEEK_CUR), 10);
    expect_eq("pwrite_ret", pwrite(fd, "AB", 2, 1), 2);
    expect_eq("offset_unchanged_by_pwrite", lseek(fd, 0, SEEK_CUR), 10);
    expect_eq("pwrite_past_end", pwrite(fd, "Z", 1, 20), 1);
    struct stat sb;
    MUST(fstat(fd, &sb));
    expect_eq("size_after_pwrite_past_end", sb.st_size, 21);
    memset(buf, 'q', sizeof buf);
    expect_eq("pread_hole", pread(fd, buf, 21, 0), 21);
    int zeros = 0;
    for (int i = 10; i < 20; i++) zeros += buf[i] == 0;
    expect_eq("hole_zero_bytes", zeros, 10);
    buf[10] = 0;
    say("pread_head: %s", buf);
    expect_err("pread_negative_offset", pread(fd, buf, 1, -1), EINVAL);

    /* writev / readv */
    MUST(ftruncate(fd, 0));
    MUST(lseek(fd, 0, SEEK_SET));
    struct iovec wv[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    expect_eq("writev_ret", writev(fd, wv, 3), 8);
    MUST(lseek(fd, 0, SEEK_SET));
    char a[2], b[4], c[10];
    struct iovec rv[3] = {{a, 2}, {b, 4}, {c, 10}};
    expect_eq("readv_ret", readv(fd, rv, 3), 8);
    say("readv_parts: %.2s|%.4s|%.2s", a, b, c);
    expect_eq("preadv_ret", preadv(fd, rv, 2, 4), 4);
    say("preadv_parts: %.2s|%.2s", a, b);
    expect_eq("pwritev_ret", pwritev(fd, wv, 1, 8), 3);
    MUST(fstat(fd, &sb));
    expect_eq("size_after_pwritev", sb.st_size, 11);
    expect_err("writev_negative_iovcnt", syscall(SYS_writev, fd, wv, -1), EINVAL);
    expect_err("readv_iovcnt_too_big", syscall(SYS_readv, fd, rv, 1025), EINVAL);
    expect_eq("write_zero_len", write(fd, buf, 0), 0);
    expect_eq("read_zero_len", read(fd, buf, 0), 0);

    /* Two opens have independent offsets; dup shares. */
    int fd2 = MUST(open(f, O_RDONLY));
    MUST(lseek(fd, 5, SEEK_SET));
    expect_eq("independent_offset", lseek(fd2, 0, SEEK_CUR), 0);
    int fd3 = MUST(dup(fd));
    expect_eq("dup_shares_offset", lseek(fd3, 0, SEEK_CUR), 5);
    close(fd3);
    close(fd2);

    /* Large write and read back in chunks. */
    MUST(ftruncate(fd, 0));
    MUST(lseek(fd, 0, SEEK_SET));
    static char big[300000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + i / 251);
    expect_eq("big_write", write(fd, big, sizeof big), (long)sizeof big);
    MUST(lseek(fd, 0, SEEK_SET));
    static char back[300000];
    size_t got = 0;
    while (got < sizeof back) {
        ssize_t n = read(fd, back + got, 4096 * 3 + 17);
        if (n <= 0) break;
        got += n;
    }
    expect_eq("big_read_total", got, sizeof big);
    expect("big_roundtrip_equal", memcmp(big, back, sizeof big) == 0);
    close(fd);
    expect_err("read_closed_fd", read(fd, buf, 1), EBADF);
    expect_err("write_closed_fd", write(fd, buf, 1), EBADF);
    return st_done();
}
