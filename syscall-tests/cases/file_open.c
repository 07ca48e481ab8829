// Tests open/openat flags: O_CREAT|O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW, access modes, lowest free fd.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_open");
    const char *f = st_path("a");

    int fd = open(f, O_RDWR | O_CREAT | O_EXCL, 0644);
    expect_err("open_creat_excl_new", fd, 0);
    expect_eq("open_lowest_fd", fd, 3);
    expect_err("open_creat_excl_exists", open(f, O_RDWR | O_CREAT | O_EXCL, 0644), EEXIST);
    expect_err("open_creat_existing", fd = open(f, O_RDWR | O_CREAT, 0644), 0);
    close(fd);
    expect_err("open_missing", open(st_path("missing"), O_RDONLY), ENOENT);
    expect_err("open_missing_parent", open(st_path("nodir/x"), O_RDWR | O_CREAT, 0644), ENOENT);

    fd = MUST(open(f, O_WRONLY));
    MUST(write(fd, "hello world", 11));
    close(fd);

    fd = MUST(open(f, O_RDONLY));
    char buf[64];
    expect_err("write_on_rdonly", write(fd, "x", 1), EBADF);
    close(fd);
    fd = MUST(open(f, O_WRONLY));
    expect_err("read_on_wronly", read(fd, buf, 1), EBADF);
    close(fd);

    fd = MUST(open(f, O_WRONLY | O_APPEND));
    MUST(lseek(fd, 0, SEEK_SET));
    MUST(write(fd, "!", 1));
    expect_eq("append_offset_after_write", lseek(fd, 0, SEEK_CUR), 12);
    close(fd);
    fd = MUST(open(f, O_RDONLY));
    ssize_t n = read(fd, buf, sizeof buf);
    buf[n > 0 ? n : 0] = 0;
    say("append_content: %s", buf);
    close(fd);

    fd = MUST(open(f, O_RDWR | O_TRUNC));
    struct stat sb;
    MUST(fstat(fd, &sb));
    expect_eq("trunc_size", sb.st_size, 0);
    close(fd);

    expect_err("o_directory_on_file", open(f, O_RDONLY | O_DIRECTORY), ENOTDIR);
    fd = open(st_dir, O_RDONLY | O_DIRECTORY);
    expect_err("o_directory_on_dir", fd, 0);
    close(fd);
    expect_err("open_dir_for_write", open(st_dir, O_WRONLY), EISDIR);
    expect_err("open_dir_creat", open(st_dir, O_RDONLY | O_CREAT, 0644), EISDIR);

    MUST(symlink(f, st_path("lnk")));
    expect_err("o_nofollow_symlink", open(st_path("lnk"), O_RDONLY | O_NOFOLLOW), ELOOP);
    fd = open(st_path("lnk"), O_RDONLY);
    expect_err("open_via_symlink", fd, 0);
    close(fd);
    /* O_CREAT through a dangling symlink creates the target. */
    MUST(symlink(st_path("target"), st_path("dangling")));
    fd = open(st_path("dangling"), O_WRONLY | O_CREAT, 0600);
    expect_err("creat_through_dangling_symlink", fd, 0);
    close(fd);
    expect_err("target_created", access(st_path("target"), F_OK), 0);
    expect_err("creat_excl_on_symlink", open(st_path("lnk"), O_WRONLY | O_CREAT | O_EXCL, 0600),
               EEXIST);

    /* openat relative to a directory fd, and with a non-directory dirfd. */
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    fd = openat(dfd, "a", O_RDONLY);
    expect_err("openat_dirfd", fd, 0);
    int ffd = fd;
    expect_err("openat_file_dirfd", openat(ffd, "a", O_RDONLY), ENOTDIR);
    expect_err("openat_bad_dirfd", openat(999, "a", O_RDONLY), EBADF);
    fd = openat(999, f, O_RDONLY); /* absolute path ignores dirfd */
    expect_err("openat_abs_ignores_dirfd", fd, 0);
    close(fd);
    close(ffd);
    close(dfd);

    /* access mode and flags reported by F_GETFL */
    fd = MUST(open(f, O_RDWR | O_APPEND | O_NONBLOCK));
    int fl = fcntl(fd, F_GETFL);
    expect("getfl_accmode_rdwr", (fl & O_ACCMODE) == O_RDWR);
    expect("getfl_append", (fl & O_APPEND) != 0);
    expect("getfl_nonblock", (fl & O_NONBLOCK) != 0);
    close(fd);

    /* fds are allocated lowest first */
    int a = MUST(open(f, O_RDONLY)), b = MUST(open(f, O_RDONLY)), c = MUST(open(f, O_RDONLY));
    close(b);
    int d = MUST(open(f, O_RDONLY));
    expect("reuse_lowest_fd", d == b && a < b && b < c);
    close(a); close(c); close(d);

    expect_err("open_empty_path", open("", O_RDONLY), ENOENT);
    char longname[300];
    memset(longname, 'x', 299);
    longname[299] = 0;
    expect_err("open_name_too_long", open(st_path(longname), O_RDONLY), ENAMETOOLONG);
    return st_done();
}
