// Tests truncate/ftruncate: grow with zeros, shrink, errors.
#include "st.h"

static long long size_of(const char *p) {
    struct stat sb;
    if (stat(p, &sb) < 0) return -1;
    return sb.st_size;
}

int main(void) {
    st_init();
    st_mkdir("file_truncate");
    const char *f = st_path("f");
    int fd = MUST(open(f, O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "abcdefghij", 10));
    expect_err("ftruncate_shrink", ftruncate(fd, 4), 0);
    expect_eq("size_after_shrink", size_of(f), 4);
    expect_eq("offset_unchanged", lseek(fd, 0, SEEK_CUR), 10);
    expect_err("truncate_grow", truncate(f, 8192), 0);
    expect_eq("size_after_grow", size_of(f), 8192);
    char buf[8192];
    expect_eq("read_grown", pread(fd, buf, sizeof buf, 0), 8192);
    int nz = 0;
    for (int i = 4; i < 8192; i++) nz += buf[i] != 0;
    say("prefix: %.4s", buf);
    expect_eq("grown_nonzero", nz, 0);
    /* write at offset 10 after shrink leaves a zero gap 4..10 */
    MUST(ftruncate(fd, 4));
    MUST(write(fd, "Q", 1));
    expect_eq("size_after_write", size_of(f), 11);
    MUST(pread(fd, buf, 11, 0));
    nz = 0;
    for (int i = 4; i < 10; i++) nz += buf[i] != 0;
    expect_eq("gap_nonzero", nz, 0);
    expect_err("ftruncate_negative", ftruncate(fd, -1), EINVAL);
    expect_err("truncate_negative", truncate(f, -1), EINVAL);
    expect_err("truncate_dir", truncate(st_dir, 0), EISDIR);
    expect_err("truncate_missing", truncate(st_path("none"), 0), ENOENT);
    close(fd);
    fd = MUST(open(f, O_RDONLY));
    expect_err("ftruncate_rdonly", ftruncate(fd, 0), EINVAL);
    close(fd);
    expect_err("ftruncate_bad_fd", ftruncate(fd, 0), EBADF);
    int p[2];
    MUST(pipe(p));
    expect_err("ftruncate_pipe", ftruncate(p[1], 0), EINVAL);
    close(p[0]);
    close(p[1]);
    fd = MUST(open(f, O_RDWR));
    expect_err("ftruncate_zero", ftruncate(fd, 0), 0);
    expect_eq("size_zero", size_of(f), 0);
    close(fd);
    return st_done();
}
