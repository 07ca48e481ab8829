// Tests link/linkat/symlink/readlink/readlinkat: nlink, dangling and looping symlinks, errors.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_link");
    const char *f = st_path("f");
    int fd = MUST(open(f, O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "data", 4));
    close(fd);
    struct stat sb;

    expect_err("link", link(f, st_path("h")), 0);
    MUST(stat(f, &sb));
    expect_eq("nlink_2", sb.st_nlink, 2);
    struct stat sh;
    MUST(stat(st_path("h"), &sh));
    expect("link_same_inode", sh.st_ino == sb.st_ino);
    expect_err("link_exists", link(f, st_path("h")), EEXIST);
    expect_err("link_missing_src", link(st_path("none"), st_path("h2")), ENOENT);
    expect_err("link_dir", link(st_dir, st_path("dirlink")), EPERM);

    expect_err("symlink", symlink("f", st_path("s")), 0);
    char buf[256];
    ssize_t n = readlink(st_path("s"), buf, sizeof buf);
    expect_eq("readlink_len", n, 1);
    say("readlink: %.*s", (int)(n > 0 ? n : 0), buf);
    memset(buf, '#', sizeof buf);
    MUST(symlink("a/long/target/path", st_path("s2")));
    n = readlink(st_path("s2"), buf, 6);
    expect_eq("readlink_truncated_len", n, 6);
    say("readlink_truncated: %.6s next_byte_untouched: %d", buf, buf[6] == '#');
    expect_err("readlink_not_symlink", readlink(f, buf, sizeof buf), EINVAL);
    expect_err("readlink_missing", readlink(st_path("none"), buf, sizeof buf), ENOENT);
    expect_err("readlink_zero_buf", readlink(st_path("s"), buf, 0), EINVAL);
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    n = readlinkat(dfd, "s2", buf, sizeof buf);
    say("readlinkat: %.*s", (int)(n > 0 ? n : 0), buf);
    expect_err("symlink_exists", symlink("x", st_path("s")), EEXIST);
    expect_err("symlink_empty_target", symlink("", st_path("e")), ENOENT);

    MUST(symlink("dangling_target", st_path("dang")));
    expect_err("open_dangling", open(st_path("dang"), O_RDONLY), ENOENT);
    expect_err("lstat_dangling", lstat(st_path("dang"), &sb), 0);
    MUST(symlink("loop2", st_path("loop1")));
    MUST(symlink("loop1", st_path("loop2")));
    expect_err("open_loop", open(st_path("loop1"), O_RDONLY), ELOOP);
    expect_err("stat_loop", stat(st_path("loop1"), &sb), ELOOP);

    /* Relative symlink resolved against the link's directory, not cwd. */
    MUST(mkdir(st_path("sub"), 0755));
    MUST(symlink("../f", st_path("sub/up")));
    fd = open(st_path("sub/up"), O_RDONLY);
    expect_err("open_relative_symlink", fd, 0);
    n = read(fd, buf, sizeof buf);
    say("via_relative: %.*s", (int)(n > 0 ? n : 0), buf);
    close(fd);
    /* Symlink to a directory in the middle of a path. */
    MUST(symlink("sub", st_path("subl")));
    expect_err("symlink_dir_mid_path", stat(st_path("subl/up"), &sb), 0);

    /* linkat with AT_SYMLINK_FOLLOW links the target; without, the link itself. */
    expect_err("linkat_nofollow", linkat(dfd, "s", dfd, "s_hard", 0), 0);
    MUST(lstat(st_path("s_hard"), &sb));
    say("linkat_nofollow_is_symlink: %d", S_ISLNK(sb.st_mode));
    expect_err("linkat_follow", linkat(dfd, "s", dfd, "f_hard", AT_SYMLINK_FOLLOW), 0);
    MUST(lstat(st_path("f_hard"), &sb));
    say("linkat_follow_is_reg: %d", S_ISREG(sb.st_mode));
    MUST(stat(f, &sb));
    expect_eq("nlink_3", sb.st_nlink, 3);
    expect_err("symlinkat", symlinkat("f", dfd, "s3"), 0);
    close(dfd);
    expect_err("unlink_link_keeps_file", unlink(st_path("h")), 0);
    MUST(stat(f, &sb));
    expect_eq("nlink_back_to_2", sb.st_nlink, 2);
    return st_done();
}
