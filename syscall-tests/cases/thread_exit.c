// Tests thread group exit: exit() in a thread ends all threads with its code; main pthread_exit lets others finish.
#include "st.h"
#include <pthread.h>

static void *exit_in_thread(void *arg) {
    (void)arg;
    usleep(10000);
    exit(17);
}
static void *spin(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}
static void *late_writer(void *arg) {
    usleep(30000);
    write((int)(long)arg, "late", 4);
    return NULL;
}
static void *raw_exit(void *arg) {
    (void)arg;
    syscall(SYS_exit, 5);
    return NULL;
}
static void *exec_from_thread(void *arg) {
    char **argv = arg;
    char *args[] = {argv[0], "exec-child", NULL};
    execv(argv[0], args);
    return NULL;
}

int main(int argc, char **argv) {
    st_init();
    if (argc == 2 && strcmp(argv[1], "exec-child") == 0) {
        int fd = open("/proc/self/status", O_RDONLY);
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        char *th = strstr(buf, "Threads:");
        /* The exec'ing thread becomes the leader with the old pid. */
        return th && atoi(th + 8) == 1 ? 33 : 34;
    }
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_t a, b;
        pthread_create(&b, NULL, spin, NULL);
        pthread_create(&a, NULL, exit_in_thread, NULL);
        for (;;) pause();
    }
    int st;
    waitpid(c, &st, 0);
    say("exit_from_thread: %s", st_status(st));

    int p[2];
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        close(p[0]);
        pthread_t a;
        pthread_create(&a, NULL, late_writer, (void *)(long)p[1]);
        pthread_exit(NULL); /* main thread leaves; process lives on until the writer returns */
    }
    close(p[1]);
    char buf[8] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    waitpid(c, &st, 0);
    say("main_pthread_exit: got=%.*s %s", (int)(n > 0 ? n : 0), buf, st_status(st));

    /* SYS_exit in a thread ends only that thread; CLONE_CHILD_CLEARTID lets join return. */
    c = fork();
    if (c == 0) {
        pthread_t a;
        pthread_create(&a, NULL, raw_exit, NULL);
        pthread_join(a, NULL);
        _exit(21);
    }
    waitpid(c, &st, 0);
    say("raw_exit_in_thread: %s", st_status(st));

    /* execve from a non-leader thread: other threads die, pid kept. */
    c = fork();
    if (c == 0) {
        st_no_core();
        pthread_t a, b;
        pthread_create(&b, NULL, spin, NULL);
        pthread_create(&a, NULL, exec_from_thread, argv);
        for (;;) pause();
    }
    waitpid(c, &st, 0);
    say("exec_from_thread: %s", st_status(st));
    /* Kill a multithreaded process with a signal: all threads go. */
    c = fork();
    if (c == 0) {
        pthread_t a;
        pthread_create(&a, NULL, spin, NULL);
        pthread_create(&a, NULL, spin, NULL);
        for (;;) pause();
    }
    usleep(10000);
    kill(c, SIGTERM);
    waitpid(c, &st, 0);
    say("sigterm_multithreaded: %s", st_status(st));
    return st_done();
}
