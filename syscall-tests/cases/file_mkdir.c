// Tests mkdir/mkdirat: EEXIST, ENOENT parent, ENOTDIR, permission bits with umask, trailing slash.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_mkdir");
    umask(022);
    struct stat sb;
    expect_err("mkdir", mkdir(st_path("d"), 0777), 0);
    MUST(stat(st_path("d"), &sb));
    say("mode_after_umask_022: %o", sb.st_mode & 07777);
    expect_err("mkdir_exists", mkdir(st_path("d"), 0755), EEXIST);
    close(MUST(open(st_path("f"), O_CREAT | O_WRONLY, 0644)));
    expect_err("mkdir_over_file", mkdir(st_path("f"), 0755), EEXIST);
    expect_err("mkdir_missing_parent", mkdir(st_path("no/d"), 0755), ENOENT);
    expect_err("mkdir_under_file", mkdir(st_path("f/d"), 0755), ENOTDIR);
    expect_err("mkdir_trailing_slash", mkdir(st_path("t/"), 0755), 0);
    MUST(stat(st_path("t"), &sb));
    expect("trailing_slash_made_dir", S_ISDIR(sb.st_mode));
    MUST(symlink("d", st_path("ln")));
    expect_err("mkdir_over_symlink", mkdir(st_path("ln"), 0755), EEXIST);
    umask(077);
    MUST(mkdir(st_path("p"), 0777));
    MUST(stat(st_path("p"), &sb));
    say("mode_after_umask_077: %o", sb.st_mode & 07777);
    umask(0);
    MUST(mkdir(st_path("q"), 01777));
    MUST(stat(st_path("q"), &sb));
    say("mode_sticky: %o", sb.st_mode & 07777);
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_err("mkdirat", mkdirat(dfd, "r", 0700), 0);
    expect_err("mkdirat_exists", mkdirat(dfd, "r", 0700), EEXIST);
    MUST(fstatat(dfd, "r", &sb, 0));
    say("mkdirat_mode: %o", sb.st_mode & 07777);
    close(dfd);
    /* Nested creation and listing via stat of "..". */
    MUST(mkdir(st_path("d/e"), 0755));
    MUST(mkdir(st_path("d/e/f"), 0755));
    struct stat up, d;
    MUST(stat(st_path("d/e/f/../.."), &up));
    MUST(stat(st_path("d"), &d));
    expect("dotdot_resolves", up.st_ino == d.st_ino);
    expect_err("mknod_fifo", mknod(st_path("fifo"), S_IFIFO | 0600, 0), 0);
    MUST(stat(st_path("fifo"), &sb));
    expect("mknod_is_fifo", S_ISFIFO(sb.st_mode));
    expect_err("mknod_regular", mknod(st_path("reg"), S_IFREG | 0600, 0), 0);
    MUST(stat(st_path("reg"), &sb));
    expect("mknod_is_reg", S_ISREG(sb.st_mode));
    return st_done();
}
