// Tests getrlimit/setrlimit/prlimit: RLIMIT_NOFILE soft<=hard, lowering soft limit gives EMFILE, raising above hard EPERM-or-ok rules, RLIMIT_FSIZE SIGXFSZ.
#include "st.h"
#include <sys/resource.h>

int main(void) {
    st_init();
    struct rlimit rl, rl2;
    expect_err("getrlimit_nofile", getrlimit(RLIMIT_NOFILE, &rl), 0);
    expect("soft_le_hard", rl.rlim_cur <= rl.rlim_max);
    expect_err("prlimit_get", prlimit(0, RLIMIT_NOFILE, NULL, &rl2), 0);
    expect("prlimit_matches", rl.rlim_cur == rl2.rlim_cur && rl.rlim_max == rl2.rlim_max);
    struct rlimit low = {16, rl.rlim_max}, old;
    expect_err("prlimit_set", prlimit(0, RLIMIT_NOFILE, &low, &old), 0);
    expect("prlimit_old_value", old.rlim_cur == rl.rlim_cur);
    int last = -1, err = 0;
    for (int i = 0; i < 32; i++) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) { err = errno; break; }
        last = fd;
    }
    say("last_fd_under_limit_16: %d then %s", last, st_errname(err));
    expect_err("dup_at_limit", dup(0), EMFILE);
    expect_err("fcntl_dupfd_at_limit", fcntl(0, F_DUPFD, 0), EMFILE);
    for (int fd = 3; fd <= last; fd++) close(fd);
    struct rlimit bad = {100, 50};
    expect_err("soft_above_hard", setrlimit(RLIMIT_NOFILE, &bad), EINVAL);
    expect_err("bad_resource", getrlimit(99, &rl2), EINVAL);
    expect_err("prlimit_missing_pid", prlimit(999999999, RLIMIT_NOFILE, NULL, &rl2), ESRCH);
    setrlimit(RLIMIT_NOFILE, &rl);
    /* Limits are inherited across fork. */
    struct rlimit st_lim = {1 << 20, RLIM_INFINITY};
    getrlimit(RLIMIT_STACK, &rl2);
    st_lim.rlim_max = rl2.rlim_max;
    setrlimit(RLIMIT_STACK, &st_lim);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        struct rlimit x;
        getrlimit(RLIMIT_STACK, &x);
        _exit(x.rlim_cur == (1 << 20) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("inherited_stack_limit: %s", st_status(st));
    /* RLIMIT_FSIZE: writing past it raises SIGXFSZ (default kills) or EFBIG when ignored. */
    st_mkdir("misc_rlimit");
    c = fork();
    if (c == 0) {
        st_no_core();
        struct rlimit f = {10, 10};
        setrlimit(RLIMIT_FSIZE, &f);
        int fd = open(st_path("f"), O_WRONLY | O_CREAT, 0644);
        write(fd, "0123456789abc", 13); /* partial: 10 bytes, no signal yet */
        write(fd, "x", 1);              /* at the limit: SIGXFSZ */
        _exit(0);
    }
    waitpid(c, &st, 0);
    say("fsize_default: %s", st_status(st));
    c = fork();
    if (c == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit f = {10, 10};
        setrlimit(RLIMIT_FSIZE, &f);
        int fd = open(st_path("g"), O_WRONLY | O_CREAT, 0644);
        ssize_t n1 = write(fd, "0123456789abc", 13);
        ssize_t n2 = write(fd, "x", 1);
        _exit(n1 == 10 && n2 < 0 && errno == EFBIG ? 0 : 1);
    }
    waitpid(c, &st, 0);
    say("fsize_ignored_partial_then_efbig: %s", st_status(st));
    /* RLIMIT_AS: a big mmap fails with ENOMEM */
    c = fork();
    if (c == 0) {
        struct rlimit a = {256 << 20, 256 << 20};
        setrlimit(RLIMIT_AS, &a);
        void *m = malloc(512 << 20);
        _exit(m == NULL ? 0 : 1);
    }
    waitpid(c, &st, 0);
    say("as_limit_malloc_fails: %s", st_status(st));
    return st_done();
}
