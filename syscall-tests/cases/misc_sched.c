// Tests scheduler calls: sched_yield, getcpu, sched_getaffinity non-empty and settable, policies and priorities, nice values.
#include "st.h"
#include <sched.h>
#include <sys/resource.h>

int main(void) {
    st_init();
    expect_err("sched_yield", sched_yield(), 0);
    unsigned cpu = 999999, node = 999999;
    expect_err("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL), 0);
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    expect("cpu_in_range", cpu < (unsigned)(ncpu > 0 ? ncpu : 1024) || cpu < 1024);
    expect("sched_getcpu_agrees", sched_getcpu() >= 0);
    cpu_set_t set;
    CPU_ZERO(&set);
    expect_err("getaffinity", sched_getaffinity(0, sizeof set, &set), 0);
    int count = CPU_COUNT(&set);
    expect("affinity_nonempty", count > 0);
    long raw = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    expect("raw_getaffinity_returns_size", raw > 0 && raw % 8 == 0);
    expect_err("getaffinity_small_buf", syscall(SYS_sched_getaffinity, 0, 1, &set), EINVAL);
    /* Pin to the first allowed CPU and check we run there. */
    int first = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) { first = i; break; }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    expect_err("setaffinity_one", sched_setaffinity(0, sizeof one, &one), 0);
    sched_yield();
    expect("running_on_pinned_cpu", sched_getcpu() == first);
    cpu_set_t back;
    sched_getaffinity(0, sizeof back, &back);
    expect_eq("affinity_count_after_pin", CPU_COUNT(&back), 1);
    sched_setaffinity(0, sizeof set, &set);
    cpu_set_t empty;
    CPU_ZERO(&empty);
    expect_err("setaffinity_empty", sched_setaffinity(0, sizeof empty, &empty), EINVAL);
    say("policy: %s", sched_getscheduler(0) == SCHED_OTHER ? "SCHED_OTHER" : "other");
    say("fifo_prio_range: %d..%d", sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_FIFO));
    say("other_prio_range: %d..%d", sched_get_priority_min(SCHED_OTHER), sched_get_priority_max(SCHED_OTHER));
    struct sched_param sp;
    expect_err("getparam", sched_getparam(0, &sp), 0);
    say("priority: %d", sp.sched_priority);
    expect_err("bad_policy", sched_get_priority_max(12345), EINVAL);
    struct timespec rr;
    expect_err("rr_get_interval", sched_rr_get_interval(0, &rr), 0);
    /* nice: raising is always allowed. */
    errno = 0;
    int before = getpriority(PRIO_PROCESS, 0);
    expect("getpriority_ok", errno == 0);
    int n = nice(1);
    expect("nice_incremented", n == before + 1 || (before == 19 && n == 19));
    expect("getpriority_after_nice", getpriority(PRIO_PROCESS, 0) == n);
    expect_err("setpriority_self", setpriority(PRIO_PROCESS, 0, n), 0);
    expect_err("getpriority_missing", getpriority(PRIO_PROCESS, 999999999), ESRCH);
    /* sched_setscheduler to SCHED_BATCH and back. */
    struct sched_param zero = {0};
    expect_err("set_batch", sched_setscheduler(0, SCHED_BATCH, &zero), 0);
    say("policy_after: %s", sched_getscheduler(0) == SCHED_BATCH ? "SCHED_BATCH" : "other");
    expect_err("set_other", sched_setscheduler(0, SCHED_OTHER, &zero), 0);
    return st_done();
}
