// Tests rename/renameat2: plain, over existing file, RENAME_NOREPLACE, RENAME_EXCHANGE, directory rules.
#include "st.h"

static int rn2(const char *a, const char *b, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void put(const char *p, const char *s) {
    int fd = MUST(open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    MUST(write(fd, s, strlen(s)));
    close(fd);
}

static const char *get(const char *p) {
    static char bufs[4][64];
    static int next;
    char *buf = bufs[next++ & 3];
    int fd = open(p, O_RDONLY);
    if (fd < 0) return st_errname(errno);
    ssize_t n = read(fd, buf, 63);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    return buf;
}

int main(void) {
    st_init();
    st_mkdir("file_rename");
    put(st_path("a"), "A");
    put(st_path("b"), "B");
    expect_err("rename_plain", rename(st_path("a"), st_path("c")), 0);
    say("old_gone: %s", get(st_path("a")));
    say("new_content: %s", get(st_path("c")));
    expect_err("rename_over_existing", rename(st_path("c"), st_path("b")), 0);
    say("replaced_content: %s", get(st_path("b")));
    say("source_gone: %s", get(st_path("c")));
    expect_err("rename_missing", rename(st_path("nope"), st_path("x")), ENOENT);

    put(st_path("c"), "C");
    expect_err("noreplace_exists", rn2(st_path("c"), st_path("b"), 1 /*RENAME_NOREPLACE*/), EEXIST);
    say("noreplace_kept: %s %s", get(st_path("b")), get(st_path("c")));
    expect_err("noreplace_new", rn2(st_path("c"), st_path("d"), 1), 0);
    say("noreplace_moved: %s", get(st_path("d")));
    expect_err("exchange", rn2(st_path("b"), st_path("d"), 2 /*RENAME_EXCHANGE*/), 0);
    say("exchanged: %s %s", get(st_path("b")), get(st_path("d")));
    expect_err("exchange_missing", rn2(st_path("b"), st_path("zz"), 2), ENOENT);
    expect_err("exchange_and_noreplace", rn2(st_path("b"), st_path("d"), 3), EINVAL);
    expect_err("renameat2_bad_flags", rn2(st_path("b"), st_path("d"), 0x100), EINVAL);

    /* hard links to the same inode: rename is a successful no-op */
    MUST(link(st_path("b"), st_path("b2")));
    expect_err("rename_same_inode", rename(st_path("b"), st_path("b2")), 0);
    say("both_still_there: %s %s", get(st_path("b")), get(st_path("b2")));

    MUST(mkdir(st_path("d1"), 0755));
    MUST(mkdir(st_path("d2"), 0755));
    MUST(mkdir(st_path("full"), 0755));
    put(st_path("full/x"), "X");
    expect_err("rename_dir_over_empty_dir", rename(st_path("d1"), st_path("d2")), 0);
    struct stat sb;
    expect_err("old_dir_gone", stat(st_path("d1"), &sb), ENOENT);
    expect_err("rename_dir_over_nonempty", rename(st_path("d2"), st_path("full")), ENOTEMPTY);
    expect_err("rename_file_over_dir", rename(st_path("b"), st_path("d2")), EISDIR);
    expect_err("rename_dir_over_file", rename(st_path("d2"), st_path("b")), ENOTDIR);
    expect_err("rename_dir_into_itself", rename(st_path("full"), st_path("full/sub")), EINVAL);
    expect_err("rename_dir_with_content", rename(st_path("full"), st_path("moved")), 0);
    say("moved_child: %s", get(st_path("moved/x")));
    expect_err("rename_dot", rename(st_path("moved/."), st_path("x")), EBUSY);
    expect_err("rename_trailing_slash_file", rename(st_path("b/"), st_path("q")), ENOTDIR);

    /* An open fd keeps working across rename. */
    int fd = MUST(open(st_path("b"), O_RDONLY));
    MUST(rename(st_path("b"), st_path("renamed")));
    char c;
    expect_eq("read_after_rename", read(fd, &c, 1), 1);
    close(fd);
    return st_done();
}
