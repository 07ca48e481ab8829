// Tests credentials: getuid/geteuid/getgid/getegid agree with getresuid/getresgid and /proc/self/status; getgroups; setuid to self.
#include "st.h"
#include <grp.h>

int main(void) {
    st_init();
    uid_t r, e, s;
    gid_t gr, ge, gs;
    expect_err("getresuid", getresuid(&r, &e, &s), 0);
    expect_err("getresgid", getresgid(&gr, &ge, &gs), 0);
    expect("uid_matches", r == getuid() && e == geteuid());
    expect("gid_matches", gr == getgid() && ge == getegid());
    expect("saved_uid_is_euid", s == e);
    expect("saved_gid_is_egid", gs == ge);
    char buf[4096] = {0};
    int fd = MUST(open("/proc/self/status", O_RDONLY));
    read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned u1, u2, u3, u4, g1, g2, g3, g4;
    char *up = strstr(buf, "\nUid:");
    char *gp = strstr(buf, "\nGid:");
    expect("status_uid_line", up && sscanf(up + 5, "%u %u %u %u", &u1, &u2, &u3, &u4) == 4 && u1 == r && u2 == e &&
                                  u3 == s && u4 == e);
    expect("status_gid_line", gp && sscanf(gp + 5, "%u %u %u %u", &g1, &g2, &g3, &g4) == 4 && g1 == gr &&
                                  g2 == ge && g3 == gs && g4 == ge);
    int n = getgroups(0, NULL);
    expect("getgroups_count_nonneg", n >= 0);
    gid_t groups[256];
    expect("getgroups_same_count", getgroups(256, groups) == n);
    expect("getgroups_too_small_einval", n < 2 || (getgroups(n - 1, groups) < 0 && errno == EINVAL));
    /* Setting ids to their current values is always allowed. */
    expect_err("setuid_self", setuid(geteuid()), 0);
    expect_err("setgid_self", setgid(getegid()), 0);
    expect_err("setreuid_noop", setreuid(-1, -1), 0);
    expect_err("setresuid_noop", setresuid(-1, -1, -1), 0);
    expect_err("seteuid_self", seteuid(geteuid()), 0);
    /* A child inherits credentials. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(getuid() == r && getgid() == gr ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    say("child_inherits: %s", st_status(st));
    /* A child dropping to uid 65534 (if it can) can no longer go back. */
    c = fork();
    if (c == 0) {
        if (setresuid(65534, 65534, 65534) != 0) _exit(errno == EPERM ? 3 : 4);
        _exit(setuid(0) < 0 && errno == EPERM && getuid() == 65534 ? 3 : 5);
    }
    waitpid(c, &st, 0);
    say("drop_privs_irreversible: %s", st_status(st));
    return st_done();
}
