// Tests waitpid WNOHANG and waitid: P_PID/P_ALL/P_PGID, WEXITED/WNOWAIT/WNOHANG, siginfo si_code/si_status/si_pid.
#include "st.h"

static const char *cld(int code) {
    switch (code) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    default: return "?";
    }
}

int main(void) {
    st_init();
    int go[2];
    MUST(pipe(go));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(go[1]);
        read(go[0], &x, 1);
        _exit(12);
    }
    close(go[0]);
    int st = -1;
    expect_eq("wnohang_running", waitpid(c, &st, WNOHANG), 0);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    expect_eq("waitid_wnohang_running", waitid(P_PID, c, &si, WEXITED | WNOHANG), 0);
    expect("waitid_wnohang_zeroes_pid", si.si_pid == 0);
    close(go[1]); /* let it exit */
    memset(&si, 0, sizeof si);
    expect_err("waitid_wnowait", waitid(P_PID, c, &si, WEXITED | WNOWAIT), 0);
    say("wnowait: signo=%s code=%s status=%d pid_ok=%d", sigabbrev_np(si.si_signo), cld(si.si_code),
        si.si_status, si.si_pid == c);
    expect("wnowait_uid", si.si_uid == getuid());
    memset(&si, 0, sizeof si);
    expect_err("waitid_reap", waitid(P_PID, c, &si, WEXITED), 0);
    say("reaped: code=%s status=%d pid_ok=%d", cld(si.si_code), si.si_status, si.si_pid == c);
    expect_err("waitid_gone", waitid(P_PID, c, &si, WEXITED), ECHILD);
    expect_err("waitid_no_options", waitid(P_ALL, 0, &si, 0), EINVAL);
    expect_err("waitid_bad_idtype", waitid(42, 0, &si, WEXITED), EINVAL);
    expect_err("wnohang_no_children", waitpid(-1, &st, WNOHANG), ECHILD);

    /* Killed child */
    c = fork();
    if (c == 0) { pause(); _exit(0); }
    kill(c, SIGUSR1);
    memset(&si, 0, sizeof si);
    waitid(P_PID, c, &si, WEXITED);
    say("killed: code=%s status=%s", cld(si.si_code), sigabbrev_np(si.si_status));

    /* P_PGID */
    c = fork();
    if (c == 0) { setpgid(0, 0); _exit(1); }
    setpgid(c, c);
    memset(&si, 0, sizeof si);
    expect_err("waitid_p_pgid", waitid(P_PGID, c, &si, WEXITED), 0);
    expect("p_pgid_pid", si.si_pid == c && si.si_status == 1);

    /* P_ALL picks up whichever exits; poll with WNOHANG until it does. */
    c = fork();
    if (c == 0) _exit(77);
    for (int polls = 0; polls < 5000; polls++) {
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) DIE("waitid");
        if (si.si_pid) break;
        usleep(1000);
    }
    say("p_all_wnohang: status=%d pid_ok=%d", si.si_status, si.si_pid == c);

    /* WNOHANG with waitpid eventually returns the pid */
    c = fork();
    if (c == 0) _exit(0);
    pid_t r;
    for (int polls = 0; polls < 5000 && (r = waitpid(c, &st, WNOHANG)) == 0; polls++) usleep(1000);
    expect("waitpid_wnohang_eventually", r == c && WIFEXITED(st));
    /* P_PIDFD */
    c = fork();
    if (c == 0) _exit(31);
    int pfd = syscall(SYS_pidfd_open, c, 0);
    expect_err("pidfd_open", pfd, 0);
    memset(&si, 0, sizeof si);
    expect_err("waitid_p_pidfd", waitid(3 /*P_PIDFD*/, pfd, &si, WEXITED), 0);
    say("pidfd_wait: status=%d pid_ok=%d", si.si_status, si.si_pid == c);
    close(pfd);
    return st_done();
}
