// Tests O_CLOEXEC/FD_CLOEXEC across execve: flagged fds close, others survive with offsets.
#include "st.h"

int main(int argc, char **argv) {
    st_init();
    if (argc == 2 && strcmp(argv[1], "child") == 0) {
        /* After exec: fd 10 (plain) open, 11 (O_CLOEXEC) and 12 (FD_CLOEXEC) closed, 13 dup'd plain. */
        say("child: fd10_open=%d fd11_open=%d fd12_open=%d fd13_open=%d", fcntl(10, F_GETFD) >= 0,
            fcntl(11, F_GETFD) >= 0, fcntl(12, F_GETFD) >= 0, fcntl(13, F_GETFD) >= 0);
        say("child: fd10_flags=%d offset=%lld", fcntl(10, F_GETFD), (long long)lseek(10, 0, SEEK_CUR));
        char buf[8] = {0};
        read(10, buf, 3);
        say("child: read=%s", buf);
        int p = fcntl(14, F_GETFD);
        say("child: pipe_open=%d", p >= 0);
        if (p >= 0) write(14, "hi", 2);
        return 0;
    }
    st_mkdir("fd_cloexec_exec");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "0123456789", 10));
    MUST(lseek(fd, 4, SEEK_SET));
    MUST(dup2(fd, 10));
    MUST(dup3(fd, 11, O_CLOEXEC));
    int c = MUST(open(st_path("f"), O_RDONLY | O_CLOEXEC));
    MUST(dup2(c, 11)); /* dup2 clears the flag... */
    MUST(fcntl(11, F_SETFD, FD_CLOEXEC)); /* ...so set it again */
    MUST(dup2(fd, 12));
    MUST(fcntl(12, F_SETFD, FD_CLOEXEC));
    MUST(fcntl(fd, F_DUPFD_CLOEXEC, 13));
    MUST(fcntl(13, F_SETFD, 0));
    close(c);
    close(fd);
    int p[2];
    MUST(pipe2(p, O_CLOEXEC));
    MUST(dup2(p[1], 14));
    close(p[1]);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "child", NULL};
        execv("/proc/self/exe", args);
        _exit(99);
    }
    int st;
    waitpid(pid, &st, 0);
    say("child_status: %s", st_status(st));
    close(14);
    char buf[8] = {0};
    expect_eq("pipe_data_len", read(p[0], buf, sizeof buf), 2);
    say("pipe_data: %s", buf);
    /* The exec'd child read 3 bytes through the shared description: our offset moved. */
    expect_eq("shared_offset_after_child", lseek(10, 0, SEEK_CUR), 7);
    expect("child_ok", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return st_done();
}
