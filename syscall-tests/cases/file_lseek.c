// Tests lseek: SEEK_SET/CUR/END, seeking beyond EOF creating holes, EINVAL, ESPIPE on pipes.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_lseek");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "abcdefghij", 10));
    expect_eq("seek_set", lseek(fd, 3, SEEK_SET), 3);
    expect_eq("seek_cur", lseek(fd, 2, SEEK_CUR), 5);
    expect_eq("seek_cur_neg", lseek(fd, -4, SEEK_CUR), 1);
    expect_eq("seek_end", lseek(fd, 0, SEEK_END), 10);
    expect_eq("seek_end_neg", lseek(fd, -3, SEEK_END), 7);
    char c;
    MUST(read(fd, &c, 1));
    say("byte_at_7: %c", c);
    expect_err("seek_negative_result", lseek(fd, -100, SEEK_SET), EINVAL);
    expect_err("seek_bad_whence", lseek(fd, 0, 42), EINVAL);
    expect_eq("offset_kept_after_error", lseek(fd, 0, SEEK_CUR), 8);
    expect_eq("seek_beyond_eof", lseek(fd, 4096 * 3, SEEK_END), 10 + 4096 * 3);
    struct stat sb;
    MUST(fstat(fd, &sb));
    expect_eq("size_unchanged_by_seek", sb.st_size, 10);
    expect_eq("read_beyond_eof", read(fd, &c, 1), 0);
    MUST(write(fd, "Z", 1));
    MUST(fstat(fd, &sb));
    expect_eq("size_after_write_beyond", sb.st_size, 10 + 4096 * 3 + 1);
    MUST(lseek(fd, 10, SEEK_SET));
    static char buf[4096 * 3];
    expect_eq("read_hole_len", read(fd, buf, sizeof buf), (long)sizeof buf);
    int nz = 0;
    for (size_t i = 0; i < sizeof buf; i++) nz += buf[i] != 0;
    expect_eq("hole_nonzero_bytes", nz, 0);
    MUST(read(fd, &c, 1));
    say("byte_after_hole: %c", c);
    /* SEEK_DATA/SEEK_HOLE: only the always-true parts (data at 0, a hole at or before EOF). */
    expect_eq("seek_data_0", lseek(fd, 0, SEEK_DATA), 0);
    off_t h = lseek(fd, 0, SEEK_HOLE);
    expect("seek_hole_within_size", h > 0 && h <= sb.st_size);
    expect_err("seek_data_past_eof", lseek(fd, sb.st_size + 1, SEEK_DATA), ENXIO);
    close(fd);

    int p[2];
    MUST(pipe(p));
    expect_err("lseek_pipe", lseek(p[0], 0, SEEK_CUR), ESPIPE);
    expect_err("pread_pipe", pread(p[0], buf, 1, 0), ESPIPE);
    close(p[0]);
    close(p[1]);
    expect_err("lseek_bad_fd", lseek(99, 0, SEEK_SET), EBADF);

    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_eq("lseek_dir_rewind", lseek(dfd, 0, SEEK_SET), 0);
    close(dfd);
    return st_done();
}
