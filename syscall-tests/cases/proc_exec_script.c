// Tests #! script execution: interpreter argv rewriting (optional arg, script path), /bin/sh scripts, nested limits.
#include "st.h"

static void put(const char *p, const char *text) {
    int fd = MUST(open(p, O_WRONLY | O_CREAT | O_TRUNC, 0755));
    MUST(write(fd, text, strlen(text)));
    close(fd);
}

static int run(char *const args[]) {
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char *env[] = {"PATH=/usr/bin:/bin", NULL};
        execve(args[0], args, env);
        _exit(100 + errno);
    }
    int st;
    waitpid(c, &st, 0);
    return st;
}

int main(int argc, char **argv) {
    st_init();
    if (argc >= 2 && strncmp(argv[1], "--interp", 8) == 0) {
        /* Invoked as an interpreter: argv = [self, "--interp", optarg?, script, args...] */
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strncmp(a, "/tmp/st_proc_exec_script_", 25) == 0) a = strrchr(a, '/');
            say("  interp argv[%d]: %s", i, a);
        }
        return 5;
    }
    st_mkdir("proc_exec_script");
    char exe[PATH_MAX];
    if (!realpath(argv[0], exe)) DIE("realpath");
    char text[PATH_MAX + 64];

    snprintf(text, sizeof text, "#!%s --interp\nbody\n", exe);
    put(st_path("s1"), text);
    char *a1[] = {(char *)st_path("s1"), "x", "y z", NULL};
    say("script_with_arg:");
    say("status: %s", st_status(run(a1)));

    /* Whitespace around interpreter and the whole rest of the line is one argument. */
    snprintf(text, sizeof text, "#!  %s   --interp  two words  \n", exe);
    put(st_path("s2"), text);
    char *a2[] = {(char *)st_path("s2"), NULL};
    say("script_spaces:");
    say("status: %s", st_status(run(a2)));

    put(st_path("sh1"), "#!/bin/sh\necho \"sh says ${1##*/} $#\"\nexit 3\n");
    char *a3[] = {(char *)st_path("sh1"), "hello", NULL};
    say("bin_sh_script:");
    say("status: %s", st_status(run(a3)));

    /* A script whose interpreter is another script works (up to a nesting limit). */
    snprintf(text, sizeof text, "#!%s\n", st_path("sh1"));
    put(st_path("nested"), text);
    char *a4[] = {(char *)st_path("nested"), "arg", NULL};
    say("nested_script:");
    say("status: %s", st_status(run(a4)));

    /* Self-referencing script hits ELOOP. */
    snprintf(text, sizeof text, "#!%s\n", st_path("loop"));
    put(st_path("loop"), text);
    char *a5[] = {(char *)st_path("loop"), NULL};
    say("self_loop: %s", st_status(run(a5)));
    expect("self_loop_eloop", WEXITSTATUS(run(a5)) == 100 + ELOOP);

    /* #! with no interpreter is ENOEXEC. */
    put(st_path("noint"), "#!\n");
    char *a6[] = {(char *)st_path("noint"), NULL};
    say("empty_interp: %s", st_status(run(a6)));

    /* CRLF line ending makes the interpreter name end in \r: ENOENT. */
    put(st_path("crlf"), "#!/bin/sh\r\necho hi\r\n");
    char *a7[] = {(char *)st_path("crlf"), NULL};
    say("crlf_interp: %s", st_status(run(a7)));
    return st_done();
}
