// Tests getdents64: all entries incl. . and .., d_type values, small buffer EINVAL, ENOTDIR, rewind.
#include "st.h"
#include <dirent.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static char names[64][300];
static int nnames;

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static const char *dtype(unsigned char t) {
    switch (t) {
    case DT_REG: return "reg";
    case DT_DIR: return "dir";
    case DT_LNK: return "lnk";
    case DT_FIFO: return "fifo";
    case DT_UNKNOWN: return "unknown";
    default: return "other";
    }
}

static void list(int fd, size_t bufsz) {
    char buf[8192];
    nnames = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, bufsz);
        if (n < 0) DIE("getdents64");
        if (n == 0) break;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (void *)(buf + off);
            snprintf(names[nnames++], sizeof names[0], "%s %s", d->d_name, dtype(d->d_type));
            off += d->d_reclen;
        }
    }
    qsort(names, nnames, sizeof names[0], cmp);
}

int main(void) {
    st_init();
    st_mkdir("file_getdents");
    close(MUST(open(st_path("b_file"), O_CREAT | O_WRONLY, 0644)));
    MUST(mkdir(st_path("a_dir"), 0755));
    MUST(symlink("b_file", st_path("c_link")));
    MUST(mkfifo(st_path("d_fifo"), 0644));
    for (int i = 0; i < 20; i++) {
        char n[32];
        snprintf(n, sizeof n, "many_%02d_with_a_longer_name", i);
        close(MUST(open(st_path(n), O_CREAT | O_WRONLY, 0644)));
    }
    int fd = MUST(open(st_dir, O_RDONLY | O_DIRECTORY));
    list(fd, 8192);
    say("entries: %d", nnames);
    for (int i = 0; i < nnames; i++) say("  %s", names[i]);
    /* A small buffer returns entries in several calls; the set is the same. */
    MUST(lseek(fd, 0, SEEK_SET));
    list(fd, 100);
    say("entries_small_buffer: %d", nnames);
    char buf[16];
    MUST(lseek(fd, 0, SEEK_SET));
    expect_err("buffer_too_small", syscall(SYS_getdents64, fd, buf, sizeof buf), EINVAL);
    close(fd);
    int ffd = MUST(open(st_path("b_file"), O_RDONLY));
    expect_err("getdents_on_file", syscall(SYS_getdents64, ffd, buf, sizeof buf), ENOTDIR);
    close(ffd);
    expect_err("getdents_bad_fd", syscall(SYS_getdents64, 99, buf, sizeof buf), EBADF);

    /* readdir(3) agrees; deleted entries disappear after rewind. */
    MUST(unlink(st_path("b_file")));
    DIR *d = opendir(st_dir);
    if (!d) DIE("opendir");
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) count++;
    closedir(d);
    expect_eq("readdir_count_after_unlink", count, 2 + 3 + 20);
    /* An empty directory has exactly . and .. */
    fd = MUST(open(st_path("a_dir"), O_RDONLY | O_DIRECTORY));
    list(fd, 8192);
    say("empty_dir_entries: %d", nnames);
    for (int i = 0; i < nnames; i++) say("  %s", names[i]);
    close(fd);
    return st_done();
}
