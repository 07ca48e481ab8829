// Tests utimensat/futimens: explicit times, UTIME_OMIT, UTIME_NOW, AT_SYMLINK_NOFOLLOW.
#include "st.h"
#include <time.h>

int main(void) {
    st_init();
    st_mkdir("file_utimensat");
    const char *f = st_path("f");
    int fd = MUST(open(f, O_CREAT | O_RDWR, 0644));
    struct timespec ts[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
    expect_err("utimensat_explicit", utimensat(AT_FDCWD, f, ts, 0), 0);
    struct stat sb;
    MUST(stat(f, &sb));
    say("atime: %lld.%09ld mtime: %lld.%09ld", (long long)sb.st_atim.tv_sec, sb.st_atim.tv_nsec,
        (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1300000000, 0}};
    expect_err("futimens_omit_atime", futimens(fd, omit), 0);
    MUST(fstat(fd, &sb));
    say("atime: %lld mtime: %lld", (long long)sb.st_atim.tv_sec, (long long)sb.st_mtim.tv_sec);
    time_t before = time(NULL);
    struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
    expect_err("utimensat_now_atime", utimensat(AT_FDCWD, f, now, 0), 0);
    MUST(stat(f, &sb));
    expect("atime_now_recent", sb.st_atim.tv_sec >= before - 1 && sb.st_atim.tv_sec <= time(NULL) + 1);
    expect_eq("mtime_kept", sb.st_mtim.tv_sec, 1300000000);
    expect_err("utimensat_null_times", utimensat(AT_FDCWD, f, NULL, 0), 0);
    MUST(stat(f, &sb));
    expect("null_sets_mtime_now", sb.st_mtim.tv_sec >= before - 1);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    expect_err("utimensat_bad_nsec", utimensat(AT_FDCWD, f, bad, 0), EINVAL);
    MUST(symlink("f", st_path("l")));
    struct timespec lt[2] = {{500000000, 0}, {600000000, 0}};
    expect_err("utimensat_nofollow", utimensat(AT_FDCWD, st_path("l"), lt, AT_SYMLINK_NOFOLLOW), 0);
    MUST(lstat(st_path("l"), &sb));
    expect_eq("symlink_mtime", sb.st_mtim.tv_sec, 600000000);
    MUST(stat(f, &sb));
    expect("target_mtime_untouched", sb.st_mtim.tv_sec != 600000000);
    expect_err("utimensat_missing", utimensat(AT_FDCWD, st_path("none"), ts, 0), ENOENT);
    /* write updates mtime */
    MUST(futimens(fd, ts));
    MUST(write(fd, "x", 1));
    MUST(fstat(fd, &sb));
    expect("write_updates_mtime", sb.st_mtim.tv_sec >= before - 1);
    /* ctime moves on chmod */
    expect("ctime_recent", sb.st_ctim.tv_sec >= before - 1);
    close(fd);
    return st_done();
}
