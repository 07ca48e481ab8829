// Tests mremap: grow in place or move with MREMAP_MAYMOVE preserving data, shrink, MREMAP_FIXED, errors.
#include "st.h"
#include <sys/mman.h>


int main(void) {
    st_init();
    st_catch_segv();
    long pg = sysconf(_SC_PAGESIZE);
    /* Reserve a region so the layout around p is known: p (2 pages), then a blocker page. */
    char *res = mmap(NULL, 16 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) DIE("mmap reserve");
    char *p = mmap(res, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    for (long i = 0; i < 2 * pg; i++) p[i] = (char)(i % 251);
    char *blocker = mmap(p + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    expect("blocker_placed", blocker == p + 2 * pg);
    munmap(res + 3 * pg, 13 * pg);
    void *r = mremap(p, 2 * pg, 4 * pg, 0);
    expect_err("grow_in_place_blocked", r == MAP_FAILED ? -1 : 0, ENOMEM);
    char *q = mremap(p, 2 * pg, 8 * pg, MREMAP_MAYMOVE);
    expect("grow_maymove", q != MAP_FAILED);
    int same = 1;
    for (long i = 0; i < 2 * pg; i++) same &= q[i] == (char)(i % 251);
    expect("data_preserved_after_move", same);
    expect("grown_tail_zero", q[8 * pg - 1] == 0 && q[2 * pg] == 0);
    expect("moved_away", q != p);
    expect_eq("old_range_unmapped", st_readable(p), 0);
    munmap(blocker, pg);
    /* Shrink in place. */
    char *s = mremap(q, 8 * pg, 3 * pg, 0);
    expect("shrink_same_addr", s == q);
    expect_eq("shrunk_tail_unmapped", st_readable(q + 3 * pg), 0);
    expect_eq("shrunk_head_mapped", st_readable(q + 3 * pg - 1), 1);
    /* Grow in place when the space after is free. */
    munmap(q + 3 * pg, 5 * pg);
    char *g = mremap(q, 3 * pg, 5 * pg, 0);
    expect("grow_in_place", g == q);
    /* MREMAP_FIXED moves to an exact address, replacing what was there. */
    char *dst = mmap(NULL, 5 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *f = mremap(q, 5 * pg, 5 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    expect("fixed_move", f == dst);
    expect("fixed_data", dst[1] == 1 && dst[pg + 5] == (char)((pg + 5) % 251));
    expect("fixed_writable", (dst[0] = 9) == 9);
    expect_eq("fixed_old_gone", st_readable(q), 0);
    r = mremap(dst, 5 * pg, 5 * pg, MREMAP_FIXED, dst + pg);
    expect_err("fixed_without_maymove", r == MAP_FAILED ? -1 : 0, EINVAL);
    r = mremap(dst + 1, pg, pg, 0);
    expect_err("unaligned_old", r == MAP_FAILED ? -1 : 0, EINVAL);
    r = mremap(dst, pg, 0, MREMAP_MAYMOVE);
    expect_err("new_size_zero", r == MAP_FAILED ? -1 : 0, EINVAL);
    r = mremap(dst, pg, pg, 0x80);
    expect_err("bad_flags", r == MAP_FAILED ? -1 : 0, EINVAL);
    munmap(dst, 5 * pg);
    r = mremap(dst, pg, 2 * pg, MREMAP_MAYMOVE);
    expect_err("remap_unmapped", r == MAP_FAILED ? -1 : 0, EFAULT);
    /* A shared anonymous mapping stays shared with a fork child after mremap; its backing object
     * keeps its size, so the grown part raises SIGBUS. */
    char *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *sh2 = mremap(sh, pg, 2 * pg, MREMAP_MAYMOVE);
    expect("shared_grow", sh2 != MAP_FAILED);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { sh2[1] = 'c'; _exit(0); }
    int st;
    waitpid(c, &st, 0);
    expect("shared_after_mremap", sh2[1] == 'c');
    c = fork();
    if (c == 0) {
        st_no_core();
        signal(SIGSEGV, SIG_DFL);
        sh2[pg + 1] = 'c';
        _exit(0);
    }
    waitpid(c, &st, 0);
    say("touch_grown_shared_anon: %s", st_status(st));
    return st_done();
}
