// Tests process groups and sessions: setpgid/getpgid/getpgrp, setsid/getsid, EPERM rules, kill to a group.
#include "st.h"

static int child_session(void *arg) {
    (void)arg;
    pid_t me = getpid();
    int ok = 1;
    pid_t s = setsid();
    ok &= s == me;
    ok &= getsid(0) == me;
    ok &= getpgid(0) == me;
    ok &= getpgrp() == me;
    /* A session leader cannot setsid again, nor change its group. */
    ok &= setsid() < 0 && errno == EPERM;
    ok &= setpgid(0, 0) < 0 && errno == EPERM;
    /* In a new session there is no controlling terminal. */
    ok &= open("/dev/tty", O_RDWR) < 0 && errno == ENXIO;
    return ok ? 0 : 1;
}

static int child_group(void *arg) {
    (void)arg;
    pid_t me = getpid();
    pid_t oldpg = getpgrp();
    int ok = oldpg != me;
    ok &= setpgid(0, 0) == 0;
    ok &= getpgrp() == me && getpgid(0) == me && getpgid(me) == me;
    /* Back to the old group (same session). */
    ok &= setpgid(0, oldpg) == 0;
    ok &= getpgrp() == oldpg;
    /* A group that does not exist in our session: EPERM. */
    ok &= setpgid(0, 999999) < 0 && errno == EPERM;
    ok &= setpgid(0, -1) < 0 && errno == EINVAL;
    ok &= setsid() == me;        /* not a group leader now: allowed */
    return ok ? 0 : 1;
}

int main(void) {
    st_init();
    pid_t me = getpid();
    expect("getpgid0_is_getpgrp", getpgid(0) == getpgrp());
    expect("getpgid_self", getpgid(me) == getpgrp());
    expect("getsid0_is_getsid_self", getsid(0) == getsid(me));
    expect_err("getpgid_missing", getpgid(999999999), ESRCH);
    expect_err("getsid_missing", getsid(999999999), ESRCH);
    say("child_setsid: %s", st_status(st_run_child(child_session, NULL)));
    say("child_setpgid: %s", st_status(st_run_child(child_group, NULL)));

    /* Parent moves a child into a new group; kill(-pgid) reaches both members. */
    int p[2];
    MUST(pipe(p));
    fflush(stdout);
    pid_t a = fork();
    if (a == 0) { setpgid(0, 0); close(p[0]); write(p[1], "a", 1); pause(); _exit(0); }
    setpgid(a, a);
    pid_t b = fork();
    if (b == 0) { setpgid(0, a); close(p[0]); write(p[1], "b", 1); pause(); _exit(0); }
    setpgid(b, a);
    char x[2];
    read(p[0], x, 1);
    read(p[0], x + 1, 1);
    expect("child_b_in_group_a", getpgid(b) == a);
    expect_err("kill_group", kill(-a, SIGTERM), 0);
    int sa, sb;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    say("group_members: %s / %s", st_status(sa), st_status(sb));
    expect("both_terminated", WIFSIGNALED(sa) && WIFSIGNALED(sb) && WTERMSIG(sa) == SIGTERM &&
                                  WTERMSIG(sb) == SIGTERM);
    expect_err("kill_group_gone", kill(-a, SIGTERM), ESRCH);
    expect_err("setpgid_missing", setpgid(999999999, 0), ESRCH);
    /* A child's session is inherited. */
    pid_t c = fork();
    if (c == 0) _exit(getsid(0) == getsid(getppid()) ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    say("session_inherited: %s", st_status(st));
    return st_done();
}
