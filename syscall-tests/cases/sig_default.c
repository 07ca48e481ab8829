// Tests default signal actions on children: SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGTRAP/SIGABRT kill, SIGCHLD/SIGURG/SIGWINCH ignored.
#include "st.h"

static int mode;
static int child(void *arg) {
    (void)arg;
    st_no_core();
    switch (mode) {
    case 0: *(volatile int *)0 = 1; break;
    case 1: { volatile int z = 0; volatile int r = 7 / z; (void)r; break; }
    case 2: __asm__ volatile("ud2"); break;
    case 3: __asm__ volatile("int3"); break;
    case 4: abort();
    case 5: raise(SIGCHLD); raise(SIGURG); raise(SIGWINCH); return 3;
    case 6: raise(SIGTERM); break;
    case 7: raise(SIGQUIT); break;
    case 8: raise(SIGUSR1); break;
    case 9: raise(SIGHUP); break;
    case 10: raise(SIGSYS); break;
    case 11: raise(SIGXCPU); break;
    case 12: raise(SIGRTMIN); break;
    case 13: { /* handler for SIGSEGV that returns: re-faults forever unless reset; use SA_RESETHAND */
        struct sigaction sa = {.sa_handler = (void (*)(int))SIG_DFL, .sa_flags = SA_RESETHAND};
        sigaction(SIGSEGV, &sa, NULL);
        *(volatile int *)8 = 1;
        break;
    }
    case 14: { /* blocked SIGSEGV from a fault still kills */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSEGV);
        sigprocmask(SIG_BLOCK, &s, NULL);
        *(volatile int *)0 = 1;
        break;
    }
    case 15: { /* ignored SIGFPE from a real fault still kills */
        signal(SIGFPE, SIG_IGN);
        volatile int z = 0;
        volatile int r = 5 / z;
        (void)r;
        break;
    }
    }
    return 0;
}

int main(void) {
    st_init();
    const char *names[] = {"null_deref",   "int_div_zero",  "ud2",         "int3",
                           "abort",        "ignored_group", "sigterm",     "sigquit",
                           "sigusr1",      "sighup",        "sigsys",      "sigxcpu",
                           "sigrtmin",     "segv_resethand","segv_blocked","fpe_ignored"};
    for (mode = 0; mode < 16; mode++) {
        int st = st_run_child(child, NULL);
        const char *desc = st_status(st);
        if (mode == 12 && WIFSIGNALED(st)) desc = WTERMSIG(st) == SIGRTMIN ? "signal RTMIN" : desc;
        say("%s: %s", names[mode], desc);
    }
    return st_done();
}
