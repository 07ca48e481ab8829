// Tests prctl: PR_SET_NAME/PR_GET_NAME with /proc comm, PDEATHSIG, DUMPABLE, NO_NEW_PRIVS, child subreaper.
#include "st.h"
#include <sys/prctl.h>

int main(void) {
    st_init();
    char name[32] = {0};
    expect_err("set_name", prctl(PR_SET_NAME, "st-renamed"), 0);
    expect_err("get_name", prctl(PR_GET_NAME, name), 0);
    say("name: %s", name);
    char comm[64] = {0};
    int fd = MUST(open("/proc/self/comm", O_RDONLY));
    read(fd, comm, sizeof comm - 1);
    close(fd);
    say("proc_comm: %s", strtok(comm, "\n"));
    prctl(PR_SET_NAME, "a-very-long-thread-name-indeed");
    prctl(PR_GET_NAME, name);
    say("truncated_name: %s (%zu)", name, strlen(name));
    int sig = -1;
    expect_err("get_pdeathsig", prctl(PR_GET_PDEATHSIG, &sig), 0);
    say("pdeathsig_default: %d", sig);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    prctl(PR_GET_PDEATHSIG, &sig);
    say("pdeathsig_set: %s", sigabbrev_np(sig));
    expect_err("bad_pdeathsig", prctl(PR_SET_PDEATHSIG, 1000), EINVAL);
    say("dumpable: %d", prctl(PR_GET_DUMPABLE));
    expect_err("set_no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    say("no_new_privs_after: %d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    expect_err("unset_no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0), EINVAL);
    expect_err("bad_option", prctl(0x7fffffff, 0, 0, 0, 0), EINVAL);
    /* pdeathsig is cleared in a forked child; the name is inherited. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int s = -1;
        char n[32] = {0};
        prctl(PR_GET_PDEATHSIG, &s);
        prctl(PR_GET_NAME, n);
        _exit(s == 0 && strcmp(n, "a-very-long-thr") == 0 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("child_pdeathsig_cleared_name_inherited: %s", st_status(st));
    /* Child subreaper: an orphaned grandchild is reparented to us. */
    expect_err("set_subreaper", prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int p[2];
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            char x;
            close(p[1]);
            read(p[0], &x, 1); /* wait until the middle process is gone */
            _exit(getppid() == getpgrp() ? 50 : 51);
        }
        _exit(0);
    }
    waitpid(c, NULL, 0);
    close(p[0]);
    close(p[1]); /* releases the grandchild */
    pid_t me = getpid();
    (void)me;
    int gst;
    pid_t g = wait(&gst);
    expect("orphan_reaped_by_subreaper", g > 0 && WIFEXITED(gst));
    return st_done();
}
