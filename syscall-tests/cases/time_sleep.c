// Tests nanosleep/clock_nanosleep (relative and TIMER_ABSTIME) durations within bounds, and their errors.
#include "st.h"

static long long now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
    st_init();
    long long t0 = now_ns(CLOCK_MONOTONIC);
    struct timespec req = {0, 50000000};
    expect_err("nanosleep", nanosleep(&req, NULL), 0);
    long long el = now_ns(CLOCK_MONOTONIC) - t0;
    expect("nanosleep_50ms_bounds", el >= 50000000 && el < 500000000);

    t0 = now_ns(CLOCK_MONOTONIC);
    req.tv_nsec = 30000000;
    expect_eq("clock_nanosleep_rel", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL), 0);
    el = now_ns(CLOCK_MONOTONIC) - t0;
    expect("clock_nanosleep_rel_bounds", el >= 30000000 && el < 500000000);

    long long target = now_ns(CLOCK_MONOTONIC) + 40000000;
    struct timespec abs = {target / 1000000000, target % 1000000000};
    expect_eq("clock_nanosleep_abs", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL), 0);
    long long after = now_ns(CLOCK_MONOTONIC);
    expect("woke_after_abs_target", after >= target && after - target < 500000000);
    /* An absolute time in the past returns at once. */
    abs.tv_sec = 1;
    abs.tv_nsec = 0;
    t0 = now_ns(CLOCK_MONOTONIC);
    expect_eq("abs_in_past", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL), 0);
    expect("abs_in_past_fast", now_ns(CLOCK_MONOTONIC) - t0 < 50000000);
    /* REALTIME absolute */
    long long rtarget = now_ns(CLOCK_REALTIME) + 20000000;
    struct timespec rabs = {rtarget / 1000000000, rtarget % 1000000000};
    expect_eq("realtime_abs", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &rabs, NULL), 0);
    expect("realtime_abs_reached", now_ns(CLOCK_REALTIME) >= rtarget);
    /* Zero sleep returns promptly. */
    struct timespec zero = {0, 0};
    expect_err("nanosleep_zero", nanosleep(&zero, NULL), 0);
    struct timespec bad = {0, 1000000000};
    expect_err("nanosleep_bad_nsec", nanosleep(&bad, NULL), EINVAL);
    struct timespec neg = {-1, 0};
    expect_err("nanosleep_negative", nanosleep(&neg, NULL), EINVAL);
    expect_eq("clock_nanosleep_bad_clock", clock_nanosleep(12345, 0, &req, NULL), EINVAL);
    expect_eq("clock_nanosleep_thread_cputime", clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &req, NULL), EINVAL);
    expect_err("nanosleep_efault", syscall(SYS_nanosleep, (void *)8, NULL), EFAULT);
    /* usleep and sleep(0) */
    t0 = now_ns(CLOCK_MONOTONIC);
    usleep(10000);
    expect("usleep_10ms", now_ns(CLOCK_MONOTONIC) - t0 >= 10000000);
    expect_eq("sleep0", sleep(0), 0);
    return st_done();
}
