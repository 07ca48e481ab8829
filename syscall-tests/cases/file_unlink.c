// Tests unlink/unlinkat/rmdir: ENOTEMPTY, EISDIR, ENOTDIR, EINVAL on ".", open-after-unlink.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_unlink");
    MUST(mkdir(st_path("d"), 0755));
    int fd = MUST(open(st_path("d/f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "keep", 4));
    expect_err("rmdir_nonempty", rmdir(st_path("d")), ENOTEMPTY);
    expect_err("unlink_dir", unlink(st_path("d")), EISDIR);
    expect_err("rmdir_file", rmdir(st_path("d/f")), ENOTDIR);
    expect_err("rmdir_dot", rmdir(st_path("d/.")), EINVAL);
    expect_err("rmdir_dotdot", rmdir(st_path("d/..")), ENOTEMPTY);
    expect_err("unlink_missing", unlink(st_path("d/none")), ENOENT);
    expect_err("unlink_through_file", unlink(st_path("d/f/x")), ENOTDIR);
    expect_err("unlink_file", unlink(st_path("d/f")), 0);
    char buf[8] = {0};
    expect_eq("read_after_unlink", pread(fd, buf, 4, 0), 4);
    say("data_after_unlink: %s", buf);
    expect_eq("write_after_unlink", write(fd, "more", 4), 4);
    close(fd);
    expect_err("rmdir_now_empty", rmdir(st_path("d")), 0);
    expect_err("rmdir_again", rmdir(st_path("d")), ENOENT);

    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    MUST(mkdirat(dfd, "e", 0755));
    close(MUST(openat(dfd, "g", O_CREAT | O_WRONLY, 0644)));
    expect_err("unlinkat_dir_without_flag", unlinkat(dfd, "e", 0), EISDIR);
    expect_err("unlinkat_file_with_removedir", unlinkat(dfd, "g", AT_REMOVEDIR), ENOTDIR);
    expect_err("unlinkat_removedir", unlinkat(dfd, "e", AT_REMOVEDIR), 0);
    expect_err("unlinkat_file", unlinkat(dfd, "g", 0), 0);
    expect_err("unlinkat_bad_flag", unlinkat(dfd, "g", 0x1), EINVAL);

    /* A removed cwd: getcwd reports ENOENT, creating files in it fails with ENOENT. */
    MUST(mkdir(st_path("cwd"), 0755));
    int here = MUST(open(".", O_RDONLY | O_DIRECTORY));
    MUST(chdir(st_path("cwd")));
    MUST(rmdir(st_path("cwd")));
    char cwd[PATH_MAX];
    expect_err("getcwd_removed", getcwd(cwd, sizeof cwd) ? 0 : -1, ENOENT);
    expect_err("create_in_removed_dir", open("x", O_CREAT | O_WRONLY, 0644), ENOENT);
    MUST(fchdir(here));
    close(here);
    close(dfd);

    /* Unlinking a symlink removes the link only. */
    close(MUST(open(st_path("t"), O_CREAT | O_WRONLY, 0644)));
    MUST(symlink("t", st_path("sl")));
    expect_err("unlink_symlink", unlink(st_path("sl")), 0);
    expect_err("target_survives", access(st_path("t"), F_OK), 0);
    return st_done();
}
