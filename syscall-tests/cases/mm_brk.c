// Tests brk/sbrk: program break queries, growth zero-filled and writable, shrink, refusal below start.
#include "st.h"


int main(void) {
    st_init();
    st_catch_segv();
    char *b0 = (char *)syscall(SYS_brk, 0);
    char *b0b = (char *)syscall(SYS_brk, 0);
    expect("brk_query_stable", b0 == b0b && b0 != NULL);
    char *b1 = (char *)syscall(SYS_brk, b0 + 100000);
    expect("brk_grow", b1 == b0 + 100000);
    int nz = 0;
    for (int i = 0; i < 100000; i++) nz += b0[i] != 0;
    expect_eq("brk_grown_zero", nz, 0);
    memset(b0, 'z', 100000);
    expect("brk_writable", b0[99999] == 'z');
    char *b2 = (char *)syscall(SYS_brk, b0 + 10000);
    expect("brk_shrink", b2 == b0 + 10000);
    expect_eq("brk_shrunk_page_gone", st_readable(b0 + 90000), 0);
    expect_eq("brk_kept_part", st_readable(b0 + 5000), 1);
    char *b3 = (char *)syscall(SYS_brk, b0 + 100000);
    expect("brk_regrow", b3 == b0 + 100000);
    /* Pages given back and taken again are zero; the kept page keeps data. */
    expect("brk_regrown_zero", b0[90000] == 0 && b0[5000] == 'z');
    char *b4 = (char *)syscall(SYS_brk, (char *)4096);
    expect("brk_too_low_returns_current", b4 == b3);
    char *b5 = (char *)syscall(SYS_brk, (char *)0x7ffffffff000ULL);
    expect("brk_too_high_returns_current", b5 == b3);
    syscall(SYS_brk, b0);
    /* sbrk (libc) on top of brk */
    void *s0 = sbrk(0);
    void *s1 = sbrk(8192);
    void *s2 = sbrk(0);
    expect("sbrk_returns_old_break", s1 == s0);
    expect("sbrk_advances", (char *)s2 == (char *)s0 + 8192);
    memset(s1, 1, 8192);
    expect("sbrk_negative", sbrk(-8192) != (void *)-1 && sbrk(0) == s0);
    /* /proc/self/maps shows [heap] while the heap is non-empty */
    sbrk(4096 * 4);
    int fd = MUST(open("/proc/self/maps", O_RDONLY));
    static char buf[65536];
    ssize_t n, got = 0;
    while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += n;
    buf[got] = 0;
    close(fd);
    expect("maps_has_heap", strstr(buf, "[heap]") != NULL);
    /* malloc still works after all this */
    char *m = malloc(1 << 20);
    expect("malloc_after_brk_games", m != NULL);
    memset(m, 3, 1 << 20);
    free(m);
    return st_done();
}
