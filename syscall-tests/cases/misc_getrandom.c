// Tests getrandom: 32 bytes not all zero, two calls differ, GRND_NONBLOCK/GRND_RANDOM/GRND_INSECURE accepted, bad flags, large requests.
#include "st.h"
#include <sys/random.h>

int main(void) {
    st_init();
    unsigned char a[32], b[32];
    memset(a, 0, sizeof a);
    expect_eq("getrandom_32", getrandom(a, sizeof a, 0), 32);
    int nz = 0;
    for (int i = 0; i < 32; i++) nz |= a[i];
    expect("not_all_zero", nz != 0);
    getrandom(b, sizeof b, 0);
    expect("two_calls_differ", memcmp(a, b, sizeof a) != 0);
    expect_eq("nonblock", getrandom(a, 16, GRND_NONBLOCK), 16);
    expect_eq("random_flag", getrandom(a, 16, GRND_RANDOM | GRND_NONBLOCK), 16);
    expect_eq("insecure", getrandom(a, 16, 0x4 /* GRND_INSECURE */), 16);
    expect_err("bad_flags", getrandom(a, 16, 0x100), EINVAL);
    expect_err("insecure_and_random", getrandom(a, 16, 0x4 | GRND_RANDOM), EINVAL);
    expect_err("efault", syscall(SYS_getrandom, (void *)8, 16, 0), EFAULT);
    expect_eq("zero_len", getrandom(a, 0, 0), 0);
    /* Large requests may be short (capped at 32 MiB - 1) but never fail. */
    size_t big = 1 << 20;
    unsigned char *p = malloc(big);
    ssize_t n = getrandom(p, big, 0);
    expect("large_request", n == (ssize_t)big);
    /* Byte distribution sanity: every bit position set somewhere. */
    unsigned char or = 0, and = 0xff;
    for (size_t i = 0; i < big; i++) { or |= p[i]; and &= p[i]; }
    expect("bits_vary", or == 0xff && and == 0);
    /* A child's randomness differs from the parent's (no shared state after fork). */
    int pp[2];
    MUST(pipe(pp));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        unsigned char x[16];
        getrandom(x, 16, 0);
        write(pp[1], x, 16);
        _exit(0);
    }
    unsigned char mine[16], theirs[16];
    getrandom(mine, 16, 0);
    read(pp[0], theirs, 16);
    waitpid(c, NULL, 0);
    expect("child_differs", memcmp(mine, theirs, 16) != 0);
    return st_done();
}
