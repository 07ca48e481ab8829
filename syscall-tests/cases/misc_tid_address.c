// Tests set_tid_address (returns tid, clear_child_tid zeroed and futex-woken at thread exit) and arch_prctl ARCH_GET_FS/ARCH_SET_FS.
#include "st.h"
#include <asm/prctl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>

static volatile pid_t ctid = 12345;

static int thread_fn(void *arg) {
    (void)arg;
    return 0; /* clone's wrapper calls SYS_exit: kernel clears ctid and wakes the futex */
}

int main(void) {
    st_init();
    pid_t tid = syscall(SYS_gettid);
    long r = syscall(SYS_set_tid_address, &ctid);
    expect("set_tid_address_returns_tid", r == tid);
    /* A raw clone thread with CLONE_CHILD_CLEARTID: wait on the futex until the kernel clears it. */
    size_t stsz = 64 * 1024;
    char *stack = mmap(NULL, stsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile pid_t child_tid = 0;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_PARENT_SETTID;
    pid_t ptid = 0;
    int t = clone(thread_fn, stack + stsz, flags, NULL, &ptid, NULL, &child_tid);
    expect("clone_thread", t > 0);
    for (;;) {
        pid_t v = child_tid;
        if (v == 0) break;
        syscall(SYS_futex, &child_tid, FUTEX_WAIT, v, NULL, NULL, 0);
    }
    expect("cleartid_zeroed", child_tid == 0);
    expect("parent_settid", ptid == t);

    /* arch_prctl: FS base is the TLS block; GS starts at 0. */
    unsigned long fs = 0, gs = 1;
    expect_err("arch_get_fs", syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), 0);
    void *self;
    __asm__("mov %%fs:0, %0" : "=r"(self));
    expect("fs_base_is_tcb", fs == (unsigned long)self);
    expect_err("arch_get_gs", syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), 0);
    expect("gs_base_zero", gs == 0);
    /* Set GS to a buffer and read through it. */
    static unsigned long gsbuf[4] = {0xabcdef, 0x123456, 0, 0};
    expect_err("arch_set_gs", syscall(SYS_arch_prctl, ARCH_SET_GS, gsbuf), 0);
    unsigned long v;
    __asm__ volatile("mov %%gs:8, %0" : "=r"(v));
    expect("gs_relative_load", v == 0x123456);
    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
    expect("gs_readback", gs == (unsigned long)gsbuf);
    /* GS survives a signal and a syscall. */
    raise(SIGWINCH);
    sched_yield();
    __asm__ volatile("mov %%gs:0, %0" : "=r"(v));
    expect("gs_survives", v == 0xabcdef);
    syscall(SYS_arch_prctl, ARCH_SET_GS, 0UL);
    /* Set FS to itself (no-op) and read it back. */
    expect_err("arch_set_fs_same", syscall(SYS_arch_prctl, ARCH_SET_FS, fs), 0);
    unsigned long fs2 = 0;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs2);
    expect("fs_unchanged", fs2 == fs);
    expect_err("arch_bad_code", syscall(SYS_arch_prctl, 0x9999, &fs), EINVAL);
    expect_err("arch_set_fs_noncanonical", syscall(SYS_arch_prctl, ARCH_SET_FS, 0x8000000000000000UL), EPERM);
    /* A forked child inherits the FS base. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        unsigned long f = 0;
        syscall(SYS_arch_prctl, ARCH_GET_FS, &f);
        _exit(f == fs ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("child_fs_inherited: %s", st_status(st));
    return st_done();
}
