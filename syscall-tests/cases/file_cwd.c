// Tests getcwd/chdir/fchdir: relative paths, ERANGE, ENOTDIR, ENOENT, symlinked directories.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_cwd");
    char cwd[PATH_MAX];
    MUST(mkdir(st_path("a"), 0755));
    MUST(mkdir(st_path("a/b"), 0755));
    expect_err("chdir", chdir(st_dir), 0);
    expect_err("getcwd", getcwd(cwd, sizeof cwd) ? 0 : -1, 0);
    expect("getcwd_is_dir", strcmp(cwd, st_dir) == 0);
    expect_err("chdir_relative", chdir("a/b"), 0);
    getcwd(cwd, sizeof cwd);
    expect("getcwd_relative", strcmp(cwd, st_path("a/b")) == 0);
    expect_err("chdir_dotdot", chdir(".."), 0);
    getcwd(cwd, sizeof cwd);
    expect("getcwd_dotdot", strcmp(cwd, st_path("a")) == 0);
    int fd = MUST(open("relfile", O_CREAT | O_WRONLY, 0644));
    close(fd);
    expect_err("relative_create_landed", access(st_path("a/relfile"), F_OK), 0);
    long r = syscall(SYS_getcwd, cwd, 3);
    expect_err("getcwd_erange", r, ERANGE);
    r = syscall(SYS_getcwd, cwd, sizeof cwd);
    expect("getcwd_syscall_len_includes_nul", r == (long)strlen(st_path("a")) + 1);
    expect_err("chdir_file", chdir("relfile"), ENOTDIR);
    expect_err("chdir_missing", chdir("nope"), ENOENT);
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_err("fchdir", fchdir(dfd), 0);
    getcwd(cwd, sizeof cwd);
    expect("getcwd_after_fchdir", strcmp(cwd, st_dir) == 0);
    int ffd = MUST(open(st_path("a/relfile"), O_RDONLY));
    expect_err("fchdir_file", fchdir(ffd), ENOTDIR);
    expect_err("fchdir_bad_fd", fchdir(99), EBADF);
    close(ffd);
    MUST(symlink("a/b", st_path("lnk")));
    expect_err("chdir_symlink", chdir("lnk"), 0);
    getcwd(cwd, sizeof cwd);
    expect("getcwd_resolves_symlink", strcmp(cwd, st_path("a/b")) == 0);
    int pfd = MUST(open(st_dir, O_PATH | O_DIRECTORY));
    expect_err("fchdir_o_path", fchdir(pfd), 0);
    close(pfd);
    expect_err("chdir_root", chdir("/"), 0);
    getcwd(cwd, sizeof cwd);
    say("getcwd_root: %s", cwd);
    expect_err("chdir_root_dotdot", chdir(".."), 0);
    getcwd(cwd, sizeof cwd);
    say("root_dotdot: %s", cwd);
    /* cwd is per process: a child's chdir does not move the parent. */
    MUST(fchdir(dfd));
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) _exit(chdir("/") == 0 ? 0 : 1);
    int st;
    waitpid(p, &st, 0);
    getcwd(cwd, sizeof cwd);
    expect("child_chdir_isolated", strcmp(cwd, st_dir) == 0);
    close(dfd);
    MUST(chdir("/"));
    return st_done();
}
