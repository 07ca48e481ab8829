// Tests getpid/getppid/gettid relations across fork, and /proc/self pointing at the caller.
#include "st.h"

int main(void) {
    st_init();
    pid_t me = getpid();
    expect("pid_positive", me > 0);
    expect("tid_equals_pid_main_thread", syscall(SYS_gettid) == me);
    expect("getpid_stable", getpid() == me);
    expect("ppid_differs", getppid() != me);
    int p[2];
    MUST(pipe(p));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pid_t info[3] = {getpid(), getppid(), (pid_t)syscall(SYS_gettid)};
        write(p[1], info, sizeof info);
        _exit(0);
    }
    pid_t info[3];
    read(p[0], info, sizeof info);
    waitpid(c, NULL, 0);
    expect("child_pid_is_fork_return", info[0] == c);
    expect("child_ppid_is_parent", info[1] == me);
    expect("child_tid_is_pid", info[2] == c);
    expect("child_pid_differs", c != me);
    /* Grandchild's parent is the child. */
    c = fork();
    if (c == 0) {
        pid_t mid = getpid();
        pid_t g = fork();
        if (g == 0) _exit(getppid() == mid ? 0 : 1);
        int st;
        waitpid(g, &st, 0);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("grandchild_ppid: %s", st_status(st));
    /* pids of successive children are distinct. */
    pid_t a = fork();
    if (a == 0) _exit(0);
    pid_t b = fork();
    if (b == 0) _exit(0);
    waitpid(a, NULL, 0);
    waitpid(b, NULL, 0);
    expect("successive_children_distinct", a != b && a > 0 && b > 0);
    /* kill(pid, 0) probes existence. */
    expect_err("kill0_self", kill(me, 0), 0);
    expect_err("kill0_reaped_child", kill(a, 0), ESRCH);
    return st_done();
}
