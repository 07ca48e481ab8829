// Tests clock_gettime/clock_getres for all common clocks: monotonicity, REALTIME vs time(), BOOTTIME >= MONOTONIC, errors.
#include "st.h"
#include <sys/time.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
    st_init();
    struct timespec a, b;
    int mono_ok = 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 10000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (ns(b) < ns(a)) mono_ok = 0;
        a = b;
    }
    expect("monotonic_never_decreases", mono_ok);
    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
                          CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID,
                          CLOCK_THREAD_CPUTIME_ID};
    const char *names[] = {"realtime", "monotonic", "monotonic_raw", "realtime_coarse",
                           "monotonic_coarse", "boottime", "process_cputime", "thread_cputime"};
    for (int i = 0; i < 8; i++) {
        struct timespec t, r;
        int g = clock_gettime(clocks[i], &t);
        int rr = clock_getres(clocks[i], &r);
        say("%s: gettime=%s getres=%s nsec_in_range=%d res_positive_le_10ms=%d", names[i],
            st_errname(g ? errno : 0), st_errname(rr ? errno : 0), t.tv_nsec >= 0 && t.tv_nsec < 1000000000,
            ns(r) > 0 && ns(r) <= 10000000);
    }
    struct timespec r;
    clock_getres(CLOCK_MONOTONIC, &r);
    expect("monotonic_res_le_1us", ns(r) <= 1000);
    struct timespec rt, mono, boot;
    clock_gettime(CLOCK_REALTIME, &rt);
    time_t t = time(NULL);
    expect("realtime_matches_time", llabs((long long)t - rt.tv_sec) <= 1);
    expect("realtime_after_2020", rt.tv_sec > 1577836800);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    expect("boottime_ge_monotonic", ns(boot) >= ns(mono));
    expect("monotonic_positive", ns(mono) > 0);
    /* CPU clock advances with work. */
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    volatile unsigned long x = 0;
    for (long i = 0; i < 20000000; i++) x += i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    expect("process_cpu_advances", ns(c1) > ns(c0));
    /* Clock of another process via clock_getcpuclockid */
    clockid_t cid;
    expect_eq("getcpuclockid_self", clock_getcpuclockid(0, &cid), 0);
    expect_err("gettime_cpuclock_of_self", clock_gettime(cid, &c0), 0);
    expect_err("bad_clock", clock_gettime(12345, &a), EINVAL);
    expect_err("bad_clock_res", clock_getres(12345, &a), EINVAL);
    expect_err("settime_bad_clock", clock_settime(CLOCK_MONOTONIC, &a), EINVAL);
    expect_err("gettime_efault", syscall(SYS_clock_gettime, CLOCK_REALTIME, (void *)8), EFAULT);
    /* time(NULL) through the syscall too */
    time_t t2 = syscall(SYS_time, NULL);
    expect("sys_time_matches", llabs((long long)t2 - t) <= 1);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    expect("gettimeofday_usec_range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    expect("gettimeofday_matches_realtime", llabs((long long)tv.tv_sec - rt.tv_sec) <= 1);
    return st_done();
}
