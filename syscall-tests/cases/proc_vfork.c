// Tests vfork: parent suspended until the child _exits or execs, memory shared meanwhile, exit status.
#include "st.h"
#include <sched.h>

static volatile int shared_var;

static int clone_child(void *arg) {
    (void)arg;
    shared_var = 11;
    return 3;
}

int main(int argc, char **argv) {
    st_init();
    if (argc == 2) return atoi(argv[1]);
    shared_var = 1;
    fflush(stdout);
    pid_t c = vfork();
    if (c == 0) {
        shared_var = 2; /* vfork child shares memory (POSIX-undefined, Linux-defined) */
        _exit(7);
    }
    say("parent_resumed_after_child: var=%d", shared_var);
    int st;
    waitpid(c, &st, 0);
    say("vfork_child: %s", st_status(st));

    /* vfork + execve: the parent resumes once exec has happened. */
    c = vfork();
    if (c == 0) {
        char *args[] = {argv[0], "23", NULL};
        execv(argv[0], args);
        _exit(127);
    }
    waitpid(c, &st, 0);
    say("vfork_exec_child: %s", st_status(st));

    /* vfork + failed exec: child reports with _exit. */
    c = vfork();
    if (c == 0) {
        execl("/nonexistent/binary", "x", (char *)NULL);
        _exit(errno == ENOENT ? 66 : 67);
    }
    waitpid(c, &st, 0);
    say("vfork_failed_exec: %s", st_status(st));

    /* clone(CLONE_VM|CLONE_VFORK) on its own stack behaves the same. */
    shared_var = 10;
    static char stack[64 * 1024];
    c = clone(clone_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    say("clone_vfork_parent_resumed: var=%d", shared_var);
    waitpid(c, &st, 0);
    say("clone_vfork_child: %s", st_status(st));
    return st_done();
}
