// Tests madvise: MADV_DONTNEED zeroes private anonymous pages, keeps shared and file contents, errors.
#include "st.h"
#include <sys/mman.h>

int main(void) {
    st_init();
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'a', 4 * pg);
    expect_err("dontneed_private", madvise(p + pg, 2 * pg, MADV_DONTNEED), 0);
    expect("dontneed_zeroed", p[pg] == 0 && p[3 * pg - 1] == 0);
    expect("dontneed_neighbours_kept", p[pg - 1] == 'a' && p[3 * pg] == 'a');
    p[pg] = 'b';
    expect("writable_after_dontneed", p[pg] == 'b');

    char *s = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(s, 's', pg);
    expect_err("dontneed_shared", madvise(s, pg, MADV_DONTNEED), 0);
    expect("shared_kept", s[0] == 's' && s[pg - 1] == 's');

    st_mkdir("mm_madvise");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    char fill[8192];
    memset(fill, 'F', sizeof fill);
    MUST(write(fd, fill, 2 * pg));
    char *fp = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    fp[0] = 'X';
    expect_err("dontneed_file_private", madvise(fp, 2 * pg, MADV_DONTNEED), 0);
    expect("file_private_reverts_to_file", fp[0] == 'F');
    close(fd);

    expect_err("madvise_unaligned", madvise(p + 1, pg, MADV_DONTNEED), EINVAL);
    expect_err("madvise_bad_advice", madvise(p, pg, 12345), EINVAL);
    expect_err("madvise_normal", madvise(p, 4 * pg, MADV_NORMAL), 0);
    expect_err("madvise_willneed", madvise(p, 4 * pg, MADV_WILLNEED), 0);
    expect_err("madvise_sequential", madvise(p, 4 * pg, MADV_SEQUENTIAL), 0);
    expect_err("madvise_len0", madvise(p, 0, MADV_DONTNEED), 0);
    munmap(p + 2 * pg, pg);
    expect_err("madvise_hole", madvise(p, 4 * pg, MADV_DONTNEED), ENOMEM);
    /* MADV_DONTFORK: a child does not inherit the range. */
    char *df = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    df[0] = 1;
    expect_err("madv_dontfork", madvise(df, pg, MADV_DONTFORK), 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        st_no_core();
        signal(SIGSEGV, SIG_DFL);
        volatile char x = df[0];
        (void)x;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    say("child_touching_dontfork: %s", st_status(st));
    return st_done();
}
