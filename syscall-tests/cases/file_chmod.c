// Tests chmod/fchmod/fchmodat and umask on file creation.
#include "st.h"

static unsigned mode_of(const char *p) {
    struct stat sb;
    if (stat(p, &sb) < 0) return 0xffff;
    return sb.st_mode & 07777;
}

int main(void) {
    st_init();
    st_mkdir("file_chmod");
    mode_t old = umask(027);
    (void)old;
    const char *f = st_path("f");
    int fd = MUST(open(f, O_RDWR | O_CREAT, 0666));
    say("created_umask_027: %o", mode_of(f));
    expect_err("chmod", chmod(f, 0600), 0);
    say("after_chmod: %o", mode_of(f));
    expect_err("fchmod", fchmod(fd, 0755), 0);
    say("after_fchmod: %o", mode_of(f));
    expect_err("chmod_suid_sticky", chmod(f, 04751), 0);
    say("after_chmod_special: %o", mode_of(f));
    expect_err("chmod_type_bits_ignored", chmod(f, S_IFDIR | 0644), 0);
    struct stat sb;
    MUST(stat(f, &sb));
    say("still_regular: %d mode: %o", S_ISREG(sb.st_mode), sb.st_mode & 07777);
    MUST(symlink("f", st_path("l")));
    expect_err("chmod_through_symlink", chmod(st_path("l"), 0640), 0);
    say("target_mode: %o", mode_of(f));
    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_err("fchmodat", fchmodat(dfd, "f", 0604, 0), 0);
    say("after_fchmodat: %o", mode_of(f));
    expect_err("chmod_missing", chmod(st_path("none"), 0644), ENOENT);
    expect_err("fchmod_bad_fd", fchmod(99, 0644), EBADF);
    /* The mode of an open file descriptor's inode changes for all openers. */
    MUST(fchmod(fd, 0444));
    int fd2 = open(f, O_RDONLY);
    expect_err("open_rdonly_after_0444", fd2, 0);
    close(fd2);
    expect_eq("write_on_old_rdwr_fd", write(fd, "x", 1), 1);
    close(fd);
    close(dfd);
    umask(0);
    close(MUST(open(st_path("g"), O_CREAT | O_WRONLY, 0777)));
    say("created_umask_0: %o", mode_of(st_path("g")));
    return st_done();
}
