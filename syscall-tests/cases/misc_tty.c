// Tests terminal-ish ioctls on non-terminals: isatty on pipe/file/devnull is 0 with ENOTTY, TCGETS ENOTTY, FIONREAD/FIONBIO on pipes.
#include "st.h"
#include <sys/ioctl.h>
#include <termios.h>

int main(void) {
    st_init();
    int p[2];
    MUST(pipe(p));
    errno = 0;
    int t = isatty(p[0]);
    say("isatty_pipe: %d %s", t, st_errname(errno));
    int dn = MUST(open("/dev/null", O_RDWR));
    errno = 0;
    t = isatty(dn);
    say("isatty_dev_null: %d %s", t, st_errname(errno));
    struct termios tio;
    expect_err("tcgets_dev_null", ioctl(dn, TCGETS, &tio), ENOTTY);
    expect_err("tcgets_pipe", ioctl(p[0], TCGETS, &tio), ENOTTY);
    struct winsize ws;
    expect_err("tiocgwinsz_pipe", ioctl(p[1], TIOCGWINSZ, &ws), ENOTTY);
    expect_err("ioctl_bad_fd", ioctl(999, TCGETS, &tio), EBADF);
    st_mkdir("misc_tty");
    int f = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    errno = 0;
    t = isatty(f);
    say("isatty_file: %d %s", t, st_errname(errno));
    MUST(write(f, "12345", 5));
    int avail = -1;
    expect_err("fionread_file", ioctl(f, FIONREAD, &avail), 0);
    MUST(lseek(f, 1, SEEK_SET));
    ioctl(f, FIONREAD, &avail);
    say("fionread_file_after_seek: %d", avail);
    write(p[1], "abc", 3);
    ioctl(p[0], FIONREAD, &avail);
    say("fionread_pipe: %d", avail);
    int on = 1;
    expect_err("fionbio", ioctl(p[0], FIONBIO, &on), 0);
    say("fionbio_sets_nonblock: %d", (fcntl(p[0], F_GETFL) & O_NONBLOCK) != 0);
    char b[8];
    read(p[0], b, sizeof b);
    expect_err("nonblock_read_after_fionbio", read(p[0], b, 1), EAGAIN);
    expect_err("fioclex", ioctl(p[0], FIOCLEX), 0);
    say("fioclex_sets_cloexec: %d", fcntl(p[0], F_GETFD));
    expect_err("fionclex", ioctl(p[0], FIONCLEX), 0);
    say("fionclex_clears: %d", fcntl(p[0], F_GETFD));
    expect_err("unknown_ioctl_pipe", ioctl(p[0], 0x12345678, 0), ENOTTY);
    char name[64];
    expect_eq("ttyname_r_pipe", ttyname_r(p[0], name, sizeof name), ENOTTY);
    expect_err("tcgetpgrp_pipe", tcgetpgrp(p[0]), ENOTTY);
    close(f);
    close(dn);
    return st_done();
}
