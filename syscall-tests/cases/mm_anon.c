// Tests anonymous mmap: private/shared zero-filled, MAP_FIXED replacement, partial munmap, argument errors.
#include "st.h"
#include <sys/mman.h>


int main(void) {
    st_init();
    st_catch_segv();
    long pg = sysconf(_SC_PAGESIZE);
    say("page_size: %ld", pg);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect("mmap_private", p != MAP_FAILED);
    expect("page_aligned", ((uintptr_t)p & (pg - 1)) == 0);
    int nz = 0;
    for (long i = 0; i < 4 * pg; i++) nz += p[i] != 0;
    expect_eq("private_zeroed_nonzero", nz, 0);
    memset(p, 0xab, 4 * pg);
    expect("private_writable", (unsigned char)p[4 * pg - 1] == 0xab);

    char *s = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    expect("mmap_shared", s != MAP_FAILED);
    expect("shared_zeroed", s[0] == 0 && s[pg - 1] == 0);

    /* MAP_FIXED replaces the middle two pages with fresh zero pages. */
    char *f = mmap(p + pg, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    expect("map_fixed_same_addr", f == p + pg);
    expect("map_fixed_zeroed", p[pg] == 0 && p[3 * pg - 1] == 0);
    expect("map_fixed_neighbours_kept", (unsigned char)p[0] == 0xab && (unsigned char)p[3 * pg] == 0xab);
    /* MAP_FIXED_NOREPLACE over an existing mapping fails with EEXIST. */
    void *nr = mmap(p, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    expect_err("fixed_noreplace_busy", nr == MAP_FAILED ? -1 : 0, EEXIST);

    /* Partial munmap makes a hole; the rest stays mapped. */
    expect_err("munmap_middle", munmap(p + pg, pg), 0);
    expect_eq("hole_unmapped", st_readable(p + pg), 0);
    expect_eq("before_hole_mapped", st_readable(p), 1);
    expect_eq("after_hole_mapped", st_readable(p + 2 * pg), 1);
    expect_err("munmap_unaligned", munmap(p + 1, pg), EINVAL);
    expect_err("munmap_len0", munmap(p, 0), EINVAL);
    expect_err("munmap_unmapped_ok", munmap(p + pg, pg), 0);
    munmap(p, 4 * pg);

    void *e = mmap(NULL, pg, PROT_READ, MAP_ANONYMOUS, -1, 0);
    expect_err("no_private_or_shared", e == MAP_FAILED ? -1 : 0, EINVAL);
    e = mmap((void *)(uintptr_t)(pg + 1), pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    expect_err("fixed_unaligned", e == MAP_FAILED ? -1 : 0, EINVAL);
    e = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 99, 0);
    expect_err("file_map_bad_fd", e == MAP_FAILED ? -1 : 0, EBADF);
    e = mmap(NULL, (size_t)1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    expect_err("too_big", e == MAP_FAILED ? -1 : 0, ENOMEM);
    e = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1);
    expect_err("unaligned_offset", e == MAP_FAILED ? -1 : 0, EINVAL);
    /* A hint that is free is used as-is. */
    char *big = mmap(NULL, 16 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(big, 16 * pg);
    char *h = mmap(big + 4 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect("hint_honoured", h == big + 4 * pg);
    munmap(h, pg);
    /* Many small mappings and unmappings. */
    int ok = 1;
    for (int i = 0; i < 200; i++) {
        char *q = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED) { ok = 0; break; }
        q[i % (3 * pg)] = 1;
        if (munmap(q, 3 * pg)) ok = 0;
    }
    expect("map_unmap_loop", ok);
    /* MAP_POPULATE and MAP_NORESERVE are accepted. */
    char *pp = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    expect("map_populate", pp != MAP_FAILED && pp[7 * pg] == 0);
    /* A large sparse mapping only costs what is touched. */
    char *sp = mmap(NULL, (size_t)1 << 32, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    expect("map_4g_noreserve", sp != MAP_FAILED);
    if (sp != MAP_FAILED) {
        sp[0] = 1;
        sp[((size_t)1 << 32) - 1] = 2;
        expect("map_4g_ends", sp[0] == 1 && sp[((size_t)1 << 32) - 1] == 2);
        munmap(sp, (size_t)1 << 32);
    }
    return st_done();
}
