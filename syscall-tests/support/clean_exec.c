// clean_exec PROGRAM ARGS...: start PROGRAM in a known state, whoever launched the harness.
// Closes every fd above 2, unblocks all signals, resets every disposition to default and sets
// umask 022, then execs PROGRAM (same pid, argv[0] = PROGRAM). Exit 127 if the exec fails.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: clean_exec PROGRAM [ARGS...]\n");
        return 127;
    }
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        for (int fd = 3; fd < 65536; fd++) close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    umask(022);
    execv(argv[1], argv + 1);
    fprintf(stderr, "clean_exec: cannot exec %s: %s\n", argv[1], strerror(errno));
    return 127;
}
