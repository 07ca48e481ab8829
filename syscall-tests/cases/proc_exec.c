// Tests execve of itself: argv/envp passing, pid kept, signal dispositions/mask across exec, auxv AT_EXECFN.
#include "st.h"
#include <sys/auxv.h>

extern char **environ;

int main(int argc, char **argv) {
    st_init();
    if (argc >= 2 && strcmp(argv[1], "child") == 0) {
        say("child argc: %d", argc);
        for (int i = 3; i < argc; i++) say("child argv[%d]: %s", i, argv[i]); /* argv[2] is the pid */
        int n = 0;
        for (char **e = environ; *e; e++) say("child env[%d]: %s", n++, *e);
        say("child same_pid: %d", atoi(argv[2]) == getpid());
        struct sigaction sa;
        sigaction(SIGUSR1, NULL, &sa);
        say("child SIGUSR1 handler reset to default: %d", sa.sa_handler == SIG_DFL);
        sigaction(SIGUSR2, NULL, &sa);
        say("child SIGUSR2 ignored kept: %d", sa.sa_handler == SIG_IGN);
        sigset_t m;
        sigprocmask(SIG_BLOCK, NULL, &m);
        say("child mask keeps SIGINT: %d", sigismember(&m, SIGINT));
        const char *fn = (const char *)getauxval(AT_EXECFN);
        say("child AT_EXECFN matches path: %d", fn && strcmp(fn, argv[0]) == 0);
        say("child AT_PAGESZ: %lu", getauxval(AT_PAGESZ));
        say("child AT_SECURE: %lu", getauxval(AT_SECURE));
        unsigned char *rnd = (unsigned char *)getauxval(AT_RANDOM);
        int nz = 0;
        for (int i = 0; rnd && i < 16; i++) nz |= rnd[i];
        say("child AT_RANDOM present: %d", nz != 0);
        say("child AT_ENTRY set: %d", getauxval(AT_ENTRY) != 0);
        say("child AT_PHDR set: %d", getauxval(AT_PHDR) != 0);
        return 9;
    }
    struct sigaction sa = {.sa_handler = (void (*)(int))exit};
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGUSR2, SIG_IGN);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGINT);
    sigprocmask(SIG_BLOCK, &m, NULL);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char pid[16];
        snprintf(pid, sizeof pid, "%d", getpid());
        char *args[] = {argv[0], "child", pid, "a b", "", "last", NULL};
        char *env[] = {"A=1", "EMPTY=", "PATH=/nowhere", NULL};
        execve(argv[0], args, env);
        _exit(100 + errno);
    }
    int st;
    waitpid(c, &st, 0);
    say("exec_child: %s", st_status(st));
    /* Exec with empty argv: Linux supplies argv[0] = "" (since 5.18) — only check it runs. */
    c = fork();
    if (c == 0) {
        char *args[] = {argv[0], "child", "0", NULL};
        char *env[] = {NULL};
        close(1);
        open("/dev/null", O_WRONLY);
        execve(argv[0], args, env);
        _exit(100);
    }
    waitpid(c, &st, 0);
    say("exec_empty_env: %s", st_status(st));
    /* execveat with AT_EMPTY_PATH on an fd of the binary. */
    c = fork();
    if (c == 0) {
        int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
        char *args[] = {argv[0], "child", "0", NULL};
        char *env[] = {NULL};
        close(1);
        open("/dev/null", O_WRONLY);
        syscall(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
        _exit(100 + errno);
    }
    waitpid(c, &st, 0);
    say("execveat_empty_path: %s", st_status(st));
    expect("exec_ok", WIFEXITED(st) && WEXITSTATUS(st) == 9);
    return st_done();
}
