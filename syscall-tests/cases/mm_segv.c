// Tests SIGSEGV on access to unmapped memory: handler gets SEGV_MAPERR and exact si_addr, siglongjmp recovers.
#include "st.h"
#include <setjmp.h>
#include <sys/mman.h>

static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code, fault_signo, faults;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_signo = sig;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    faults++;
    siglongjmp(jb, 1);
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, NULL);
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) DIE("mmap");
    p[0] = 1;
    MUST(munmap(p, 2 * pg));
    volatile char *target = p + pg + 123;
    if (sigsetjmp(jb, 1) == 0) {
        (void)*target;
        say("read_unmapped: no fault");
        st_failures++;
    } else {
        say("read_unmapped: %s", sigabbrev_np(fault_signo));
        expect("si_code_maperr", fault_code == SEGV_MAPERR);
        expect("si_addr_exact", fault_addr == (void *)target);
    }
    if (sigsetjmp(jb, 1) == 0) {
        *target = 5;
        say("write_unmapped: no fault");
        st_failures++;
    } else {
        say("write_unmapped: %s", sigabbrev_np(fault_signo));
        expect("write_si_addr_exact", fault_addr == (void *)target);
    }
    /* NULL page */
    if (sigsetjmp(jb, 1) == 0) {
        (void)*(volatile int *)16;
        st_failures++;
    } else {
        expect("null_page_fault_addr", fault_addr == (void *)16 && fault_code == SEGV_MAPERR);
    }
    /* Signal mask restored by siglongjmp(…, 1): SIGSEGV is not blocked now. */
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    expect("segv_unblocked_after_longjmp", !sigismember(&cur, SIGSEGV));
    /* Jumping to unmapped code faults with si_addr = the target pc. */
    if (sigsetjmp(jb, 1) == 0) {
        void (*fn)(void) = (void (*)(void))(p + 64);
        fn();
        st_failures++;
    } else {
        expect("exec_unmapped_addr", fault_addr == (void *)(p + 64));
    }
    /* Non-canonical address: SIGSEGV with si_code SI_KERNEL and si_addr 0. */
    if (sigsetjmp(jb, 1) == 0) {
        (void)*(volatile char *)0x8000000000000000ULL;
        st_failures++;
    } else {
        say("noncanonical: %s code_si_kernel=%d addr0=%d", sigabbrev_np(fault_signo),
            fault_code == SI_KERNEL, fault_addr == NULL);
    }
    expect_eq("faults_handled", faults, 5);
    return st_done();
}
