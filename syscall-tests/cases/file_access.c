// Tests access/faccessat/faccessat2: F_OK, R_OK/X_OK on files, ENOENT, ENOTDIR, invalid mode.
#include "st.h"

int main(void) {
    st_init();
    st_mkdir("file_access");
    const char *f = st_path("f");
    close(MUST(open(f, O_CREAT | O_WRONLY, 0644)));
    expect_err("access_f_ok", access(f, F_OK), 0);
    expect_err("access_r_ok", access(f, R_OK), 0);
    expect_err("access_rw_ok", access(f, R_OK | W_OK), 0);
    /* No execute bit anywhere: X_OK is refused even for root. */
    expect_err("access_x_ok_no_x_bits", access(f, X_OK), EACCES);
    MUST(chmod(f, 0744));
    expect_err("access_x_ok_owner_x", access(f, X_OK), 0);
    expect_err("access_missing", access(st_path("none"), F_OK), ENOENT);
    expect_err("access_through_file", access(st_path("f/x"), F_OK), ENOTDIR);
    expect_err("access_bad_mode", access(f, 0x80), EINVAL);
    expect_err("access_dir_x", access(st_dir, X_OK), 0);
    expect_err("access_bin_sh", access("/bin/sh", X_OK), 0);
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_err("faccessat", faccessat(dfd, "f", R_OK, 0), 0);
    expect_err("faccessat_missing", faccessat(dfd, "g", R_OK, 0), ENOENT);
    MUST(symlink("dangling", st_path("l")));
    expect_err("faccessat_dangling_follow", faccessat(dfd, "l", F_OK, 0), ENOENT);
    expect_err("faccessat2_nofollow", syscall(SYS_faccessat2, dfd, "l", F_OK, AT_SYMLINK_NOFOLLOW), 0);
    expect_err("faccessat2_bad_flag", syscall(SYS_faccessat2, dfd, "f", F_OK, 0x1), EINVAL);
    expect_err("faccessat2_eaccess", syscall(SYS_faccessat2, dfd, "f", R_OK, AT_EACCESS), 0);
    expect_err("faccessat_bad_dirfd", faccessat(99, "f", F_OK, 0), EBADF);
    expect_err("access_proc_self", access("/proc/self/status", R_OK), 0);
    close(dfd);
    return st_done();
}
