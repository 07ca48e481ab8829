// Tests sigaltstack: handler runs on the alternate stack with SS_ONSTACK, stack overflow caught there, errors.
#include "st.h"
#include <sys/mman.h>

static char *alt_base;
static size_t alt_size;
static volatile int on_alt, ss_flags_in_handler;

static void h(int sig) {
    (void)sig;
    char local;
    on_alt = &local >= alt_base && &local < alt_base + alt_size;
    stack_t cur;
    sigaltstack(NULL, &cur);
    ss_flags_in_handler = cur.ss_flags;
}

static int depth;
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int recurse(int n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    depth++;
    return recurse(n + 1) + pad[0];
}

static void overflow_handler(int sig) {
    (void)sig;
    _exit(42);
}

int main(void) {
    st_init();
    alt_size = 64 * 1024;
    alt_base = malloc(alt_size);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size}, old;
    expect_err("sigaltstack", sigaltstack(&ss, &old), 0);
    say("old_disabled: %d", old.ss_flags == SS_DISABLE);
    struct sigaction sa = {.sa_handler = h, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    say("handler_on_alt_stack: %d flags_onstack=%d", on_alt, ss_flags_in_handler == SS_ONSTACK);
    stack_t cur;
    sigaltstack(NULL, &cur);
    say("after_handler_flags: %d", cur.ss_flags);
    /* Without SA_ONSTACK the handler runs on the normal stack. */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    say("no_sa_onstack_on_alt: %d", on_alt);
    stack_t small = {.ss_sp = alt_base, .ss_size = 512};
    expect_err("too_small", sigaltstack(&small, NULL), ENOMEM);
    stack_t badf = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0x1234};
    expect_err("bad_flags", sigaltstack(&badf, NULL), EINVAL);
    stack_t dis = {.ss_flags = SS_DISABLE};
    expect_err("disable", sigaltstack(&dis, NULL), 0);
    sigaltstack(NULL, &cur);
    say("disabled_flags: %d", cur.ss_flags);

    /* Stack overflow in a child: SIGSEGV handled on the alternate stack. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_STACK, &rl);
        stack_t s2 = {.ss_sp = alt_base, .ss_size = alt_size};
        sigaltstack(&s2, NULL);
        struct sigaction o = {.sa_handler = overflow_handler, .sa_flags = SA_ONSTACK};
        sigaction(SIGSEGV, &o, NULL);
        recurse(0);
        _exit(1);
    }
    int st;
    waitpid(c, &st, 0);
    say("overflow_with_altstack: %s", st_status(st));
    /* Without an alternate stack the overflow kills the child with SIGSEGV. */
    c = fork();
    if (c == 0) {
        st_no_core();
        struct rlimit rl = {1 << 20, 1 << 20};
        setrlimit(RLIMIT_STACK, &rl);
        struct sigaction o = {.sa_handler = overflow_handler};
        sigaction(SIGSEGV, &o, NULL);
        recurse(0);
        _exit(1);
    }
    waitpid(c, &st, 0);
    say("overflow_without_altstack: %s", st_status(st));
    /* The alternate stack setting is inherited by fork. */
    sigaltstack(&ss, NULL);
    c = fork();
    if (c == 0) {
        stack_t k;
        sigaltstack(NULL, &k);
        _exit(k.ss_sp == alt_base && k.ss_size == alt_size && k.ss_flags == 0 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    say("fork_inherits_altstack: %s", st_status(st));
    return st_done();
}
