// Tests /proc/self/cmdline and /proc/self/environ against argv/envp, including after re-exec with arguments.
#include "st.h"

extern char **environ;

static ssize_t slurp(const char *p, char *buf, size_t n) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    size_t got = 0;
    ssize_t r;
    while (got < n && (r = read(fd, buf + got, n - got)) > 0) got += r;
    close(fd);
    return got;
}

int main(int argc, char **argv) {
    st_init();
    char buf[65536];
    ssize_t n = slurp("/proc/self/cmdline", buf, sizeof buf);
    char want[65536];
    size_t wn = 0;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        memcpy(want + wn, argv[i], l);
        wn += l;
    }
    expect("cmdline_matches_argv", n == (ssize_t)wn && memcmp(buf, want, wn) == 0);
    if (argc > 1) {
        say("argc: %d", argc);
        for (int i = 1; i < argc; i++) say("argv[%d]: '%s'", i, argv[i]);
        n = slurp("/proc/self/environ", buf, sizeof buf);
        wn = 0;
        for (char **e = environ; *e; e++) {
            size_t l = strlen(*e) + 1;
            memcpy(want + wn, *e, l);
            wn += l;
        }
        expect("environ_matches_envp", n == (ssize_t)wn && memcmp(buf, want, wn) == 0);
        say("env_ST_VAR: %s", getenv("ST_VAR") ? getenv("ST_VAR") : "(unset)");
        return st_done();
    }
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char *args[] = {argv[0], "one", "", "three with spaces", NULL};
        char *env[] = {"ST_VAR=hello", "OTHER=x", NULL};
        execve(argv[0], args, env);
        _exit(99);
    }
    int st;
    waitpid(p, &st, 0);
    say("child: %s", st_status(st));
    expect("child_ok", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return st_done();
}
