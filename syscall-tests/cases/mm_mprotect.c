// Tests mprotect: write to PROT_READ page faults with SEGV_ACCERR at si_addr; PROT_NONE; restoring access.
#include "st.h"
#include <setjmp.h>
#include <sys/mman.h>

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(jb, 1);
}

static int try_write(volatile char *p) {
    if (sigsetjmp(jb, 1)) return 0;
    *p = 7;
    return 1;
}
static int try_read(volatile char *p) {
    if (sigsetjmp(jb, 1)) return 0;
    (void)*p;
    return 1;
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, NULL);
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) DIE("mmap");
    memset(p, 'x', 3 * pg);
    expect_err("mprotect_read", mprotect(p + pg, pg, PROT_READ), 0);
    expect_eq("write_ro_page", try_write(p + pg + 10), 0);
    expect("write_ro_accerr", fault_code == SEGV_ACCERR);
    expect("write_ro_si_addr", fault_addr == p + pg + 10);
    expect_eq("read_ro_page", try_read(p + pg + 10), 1);
    expect("ro_content_kept", p[pg + 10] == 'x');
    expect_eq("write_neighbour_before", try_write(p + pg - 1), 1);
    expect_eq("write_neighbour_after", try_write(p + 2 * pg), 1);
    expect_err("mprotect_none", mprotect(p, pg, PROT_NONE), 0);
    expect_eq("read_none_page", try_read(p + 5), 0);
    expect("read_none_accerr", fault_code == SEGV_ACCERR && fault_addr == p + 5);
    expect_err("mprotect_rw_again", mprotect(p, 3 * pg, PROT_READ | PROT_WRITE), 0);
    expect_eq("write_after_restore", try_write(p + pg + 10), 1);
    expect("content_after_restore", p[5] == 'x' && p[pg + 10] == 7);
    expect_err("mprotect_unaligned", mprotect(p + 1, pg, PROT_READ), EINVAL);
    expect_err("mprotect_bad_prot", mprotect(p, pg, 0x100), EINVAL);
    MUST(munmap(p + 2 * pg, pg));
    expect_err("mprotect_partly_unmapped", mprotect(p + pg, 2 * pg, PROT_READ), ENOMEM);
    /* A read-only private file mapping cannot be made writable if the file was opened O_RDONLY and
     * the mapping is shared. */
    st_mkdir("mm_mprotect");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(ftruncate(fd, pg));
    close(fd);
    fd = MUST(open(st_path("f"), O_RDONLY));
    char *m = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) DIE("mmap file");
    expect_err("mprotect_write_shared_rdonly_file", mprotect(m, pg, PROT_READ | PROT_WRITE), EACCES);
    munmap(m, pg);
    m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
    expect_err("mprotect_write_private_rdonly_file", mprotect(m, pg, PROT_READ | PROT_WRITE), 0);
    expect_eq("write_private_cow", try_write(m), 1);
    munmap(m, pg);
    close(fd);
    /* Executable code in an anonymous page. */
    unsigned char *code = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax,42; ret */
    memcpy(code, ret42, sizeof ret42);
    MUST(mprotect(code, pg, PROT_READ | PROT_EXEC));
    int (*fn)(void) = (int (*)(void))code;
    expect_eq("run_generated_code", fn(), 42);
    return st_done();
}
