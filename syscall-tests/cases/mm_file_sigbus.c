// Tests access past EOF in a file mapping: SIGBUS (BUS_ADRERR) beyond the last page, zeros in the tail of the last page.
#include "st.h"
#include <setjmp.h>
#include <sys/mman.h>

static sigjmp_buf jb;
static volatile int sig_seen, code_seen;
static volatile void *addr_seen;

static void on_sig(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    sig_seen = sig;
    code_seen = si->si_code;
    addr_seen = si->si_addr;
    siglongjmp(jb, 1);
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    st_mkdir("mm_file_sigbus");
    long pg = sysconf(_SC_PAGESIZE);
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "0123456789", 10));
    char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) DIE("mmap");
    say("first_bytes: %.10s", m);
    expect("tail_of_last_page_zero", m[10] == 0 && m[pg - 1] == 0);
    volatile char *beyond = m + pg + 3;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*beyond;
        say("beyond_eof: no signal");
        st_failures++;
    } else {
        say("beyond_eof: %s", sigabbrev_np(sig_seen));
        expect("beyond_eof_adrerr", code_seen == BUS_ADRERR);
        expect("beyond_eof_addr", addr_seen == beyond);
    }
    /* Extending the file makes the page accessible. */
    MUST(ftruncate(fd, 2 * pg));
    sig_seen = 0;
    if (sigsetjmp(jb, 1) == 0) {
        *beyond = 'x';
        say("after_extend: ok");
    } else {
        say("after_extend: %s", sigabbrev_np(sig_seen));
        st_failures++;
    }
    char c = 0;
    MUST(pread(fd, &c, 1, pg + 3));
    say("extended_store_in_file: %c", c);
    /* Truncating again makes it fault again. */
    MUST(ftruncate(fd, 10));
    sig_seen = 0;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*beyond;
        st_failures++;
        say("after_shrink: no signal");
    } else {
        say("after_shrink: %s", sigabbrev_np(sig_seen));
    }
    /* Private mappings also SIGBUS past EOF. */
    char *pm = mmap(NULL, 2 * pg, PROT_READ, MAP_PRIVATE, fd, 0);
    sig_seen = 0;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*(volatile char *)(pm + pg);
        st_failures++;
        say("private_beyond_eof: no signal");
    } else {
        say("private_beyond_eof: %s", sigabbrev_np(sig_seen));
    }
    close(fd);
    return st_done();
}
