// Tests exit statuses 0..255 through exit/_exit/exit_group and return from main, truncation to 8 bits.
#include "st.h"

static int mode;
static int code;
static int from_child(void *arg) {
    (void)arg;
    if (mode == 1) exit(code);
    if (mode == 2) syscall(SYS_exit_group, code);
    if (mode == 3) syscall(SYS_exit, code);
    return code;
}

int main(int argc, char **argv) {
    st_init();
    if (argc == 2) return atoi(argv[1]); /* return from main after exec */
    int codes[] = {0, 1, 2, 42, 127, 128, 200, 255, 256, 257, -1, 1000};
    for (mode = 0; mode < 4; mode++) {
        char line[256];
        snprintf(line, sizeof line, "mode_%d:", mode);
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
            code = codes[i];
            int st = st_run_child(from_child, NULL);
            snprintf(line + strlen(line), sizeof line - strlen(line), " %d->%d", code,
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1000 - WTERMSIG(st));
        }
        say("%s", line);
    }
    int all = 1;
    for (int c = 0; c < 256; c++) {
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) _exit(c);
        int st;
        waitpid(p, &st, 0);
        all &= WIFEXITED(st) && WEXITSTATUS(st) == c;
    }
    expect("all_256_codes", all);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        char *args[] = {argv[0], "300", NULL};
        execv(argv[0], args);
        _exit(1);
    }
    int st;
    waitpid(p, &st, 0);
    say("exec_return_300: %s", st_status(st));
    /* atexit handlers and stdio flushing run on exit() but not _exit(). */
    int pp[2];
    MUST(pipe(pp));
    p = fork();
    if (p == 0) {
        dup2(pp[1], 1);
        setvbuf(stdout, NULL, _IOFBF, 4096);
        printf("buffered");
        exit(0);
    }
    waitpid(p, NULL, 0);
    p = fork();
    if (p == 0) {
        dup2(pp[1], 1);
        setvbuf(stdout, NULL, _IOFBF, 4096);
        printf("lost");
        _exit(0);
    }
    waitpid(p, NULL, 0);
    close(pp[1]);
    char buf[32] = {0};
    read(pp[0], buf, sizeof buf - 1);
    say("flushed_output: %s", buf);
    return st_done();
}
