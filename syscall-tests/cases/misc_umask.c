// Tests umask: returns the previous mask, masks open/mkdir/mkfifo modes, only low 9 bits kept, inherited by children, shown in /proc/self/status.
#include "st.h"

static unsigned mode_of(const char *p) {
    struct stat sb;
    if (stat(p, &sb) < 0) return 0xffff;
    return sb.st_mode & 07777;
}

int main(void) {
    st_init();
    mode_t first = umask(022);
    (void)first;
    say("umask_returns_previous: %o", umask(027));
    say("umask_again: %o", umask(0777 | 07000));
    say("only_low_bits_kept: %o", umask(077));
    st_mkdir("misc_umask");
    close(MUST(open(st_path("f077"), O_CREAT | O_WRONLY, 0666)));
    say("file_umask_077: %o", mode_of(st_path("f077")));
    umask(002);
    close(MUST(open(st_path("f002"), O_CREAT | O_WRONLY, 0666)));
    MUST(mkdir(st_path("d002"), 0777));
    MUST(mkfifo(st_path("p002"), 0666));
    say("file_umask_002: %o", mode_of(st_path("f002")));
    say("dir_umask_002: %o", mode_of(st_path("d002")));
    say("fifo_umask_002: %o", mode_of(st_path("p002")));
    /* umask does not apply to chmod */
    MUST(chmod(st_path("f002"), 0777));
    say("chmod_ignores_umask: %o", mode_of(st_path("f002")));
    char buf[4096] = {0};
    int fd = MUST(open("/proc/self/status", O_RDONLY));
    read(fd, buf, sizeof buf - 1);
    close(fd);
    char *u = strstr(buf, "Umask:");
    say("status_umask: %s", u ? strtok(u + 6, "\t \n") : "(missing)");
    umask(037);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) _exit(umask(0) == 037 ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    say("child_inherits_umask: %s", st_status(st));
    /* Threads share the umask (CLONE_FS) — a forked child changing it does not affect us. */
    c = fork();
    if (c == 0) { umask(0); _exit(0); }
    waitpid(c, NULL, 0);
    say("parent_umask_after_child_change: %o", umask(022));
    return st_done();
}
