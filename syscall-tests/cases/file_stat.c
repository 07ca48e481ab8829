// Tests stat/fstat/lstat/fstatat/statx on deterministic fields: size, type bits, permission bits, nlink.
#include "st.h"

static const char *type_of(mode_t m) {
    if (S_ISREG(m)) return "reg";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "lnk";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISCHR(m)) return "chr";
    if (S_ISBLK(m)) return "blk";
    if (S_ISSOCK(m)) return "sock";
    return "?";
}

int main(void) {
    st_init();
    umask(022);
    st_mkdir("file_stat");
    const char *f = st_path("f");
    int fd = MUST(open(f, O_RDWR | O_CREAT, 0640));
    MUST(write(fd, "12345", 5));
    struct stat a, b, c;
    expect_err("stat", stat(f, &a), 0);
    say("stat_type: %s mode: %o size: %lld nlink: %ld", type_of(a.st_mode), a.st_mode & 07777,
        (long long)a.st_size, (long)a.st_nlink);
    expect_err("fstat", fstat(fd, &b), 0);
    expect("fstat_matches_stat", a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
                                     a.st_size == b.st_size && a.st_mode == b.st_mode);
    expect("uid_is_euid", a.st_uid == geteuid());

    MUST(symlink("f", st_path("l")));
    expect_err("lstat", lstat(st_path("l"), &c), 0);
    say("lstat_type: %s size: %lld", type_of(c.st_mode), (long long)c.st_size);
    expect_err("stat_follows", stat(st_path("l"), &c), 0);
    expect("stat_follows_same_ino", c.st_ino == a.st_ino);

    int dfd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    expect_err("fstatat", fstatat(dfd, "l", &c, AT_SYMLINK_NOFOLLOW), 0);
    say("fstatat_nofollow_type: %s", type_of(c.st_mode));
    expect_err("fstatat_follow", fstatat(dfd, "l", &c, 0), 0);
    say("fstatat_follow_type: %s", type_of(c.st_mode));
    expect_err("fstatat_empty_path", fstatat(fd, "", &c, AT_EMPTY_PATH), 0);
    expect("fstatat_empty_path_same", c.st_ino == a.st_ino);
    expect_err("fstatat_empty_no_flag", fstatat(fd, "", &c, 0), ENOENT);
    expect_err("fstatat_bad_flags", fstatat(dfd, "f", &c, 0x40000000), EINVAL);

    MUST(mkdir(st_path("d"), 0755));
    MUST(mkdir(st_path("d/sub1"), 0755));
    MUST(mkdir(st_path("d/sub2"), 0755));
    expect_err("stat_dir", stat(st_path("d"), &c), 0);
    say("dir_type: %s mode: %o", type_of(c.st_mode), c.st_mode & 07777);
    /* nlink of a dir is not portable across filesystems (btrfs says 1); only check >= 1. */
    expect("dir_nlink_positive", c.st_nlink >= 1);

    MUST(mkfifo(st_path("fifo"), 0600));
    expect_err("stat_fifo", stat(st_path("fifo"), &c), 0);
    say("fifo_type: %s mode: %o", type_of(c.st_mode), c.st_mode & 07777);
    expect_err("stat_dev_null", stat("/dev/null", &c), 0);
    say("dev_null_type: %s major: %u minor: %u", type_of(c.st_mode), major(c.st_rdev),
        minor(c.st_rdev));

    struct statx sx;
    expect_err("statx", statx(AT_FDCWD, f, 0, STATX_BASIC_STATS, &sx), 0);
    expect("statx_mask_basic", (sx.stx_mask & (STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_NLINK)) ==
                                   (STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_NLINK));
    say("statx_type: %s mode: %o size: %llu nlink: %u", type_of(sx.stx_mode), sx.stx_mode & 07777,
        (unsigned long long)sx.stx_size, sx.stx_nlink);
    expect("statx_ino_matches", sx.stx_ino == a.st_ino);
    expect_err("statx_nofollow", statx(AT_FDCWD, st_path("l"), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx), 0);
    say("statx_nofollow_type: %s", type_of(sx.stx_mode));
    expect_err("statx_empty_path", statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx), 0);
    expect_eq("statx_empty_path_size", sx.stx_size, 5);
    expect_err("statx_missing", statx(AT_FDCWD, st_path("nope"), 0, STATX_BASIC_STATS, &sx), ENOENT);
    expect_err("statx_reserved_mask", statx(AT_FDCWD, f, 0, 0x80000000U, &sx), EINVAL);

    MUST(link(f, st_path("hard")));
    MUST(fstat(fd, &b));
    expect_eq("nlink_after_link", b.st_nlink, 2);
    MUST(unlink(st_path("hard")));
    MUST(unlink(f));
    MUST(fstat(fd, &b));
    expect_eq("nlink_after_unlink_all", b.st_nlink, 0);
    expect_eq("size_of_unlinked_open_file", b.st_size, 5);
    expect_err("stat_unlinked", stat(f, &c), ENOENT);
    close(fd);
    close(dfd);
    expect_err("fstat_bad_fd", fstat(fd, &c), EBADF);
    expect_err("stat_through_file", stat(st_path("fifo/x"), &c), ENOTDIR);
    return st_done();
}
