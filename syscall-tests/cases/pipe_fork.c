// Tests pipes between processes: parent-child request/response round trips, EOF when all writers close incl. inherited copies.
#include "st.h"

int main(void) {
    st_init();
    int up[2], down[2];
    MUST(pipe(up));
    MUST(pipe(down));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(up[0]);
        close(down[1]);
        int v;
        while (read(down[0], &v, sizeof v) == sizeof v) {
            v = v * 2 + 1;
            write(up[1], &v, sizeof v);
        }
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    long sum = 0;
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        int v = i;
        write(down[1], &v, sizeof v);
        if (read(up[0], &v, sizeof v) != sizeof v) { ok = 0; break; }
        if (v != i * 2 + 1) ok = 0;
        sum += v;
    }
    expect("round_trips", ok);
    expect_eq("round_trip_sum", sum, 1000000);
    close(down[1]);
    int st;
    waitpid(c, &st, 0);
    say("child_saw_eof: %s", st_status(st));
    char b;
    expect_eq("eof_from_child", read(up[0], &b, 1), 0);
    close(up[0]);

    /* EOF only after every copy of the write end is closed. */
    int p[2];
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        close(p[0]);
        usleep(50000);
        write(p[1], "late", 4);
        _exit(0); /* closes its copy */
    }
    close(p[1]);
    char buf[16] = {0};
    ssize_t n = read(p[0], buf, sizeof buf);
    say("read_waits_for_child_copy: %zd %s", n, buf);
    expect_eq("then_eof", read(p[0], buf, sizeof buf), 0);
    waitpid(c, NULL, 0);
    close(p[0]);
    /* Pipeline of three processes: echo → uppercase → parent. */
    int a[2], bpp[2];
    MUST(pipe(a));
    MUST(pipe(bpp));
    if (fork() == 0) {
        close(a[0]); close(bpp[0]); close(bpp[1]);
        write(a[1], "pipeline data", 13);
        _exit(0);
    }
    if (fork() == 0) {
        close(a[1]); close(bpp[0]);
        char t[64];
        ssize_t k;
        while ((k = read(a[0], t, sizeof t)) > 0) {
            for (ssize_t i = 0; i < k; i++) if (t[i] >= 'a' && t[i] <= 'z') t[i] -= 32;
            write(bpp[1], t, k);
        }
        _exit(0);
    }
    close(a[0]); close(a[1]); close(bpp[1]);
    char out[64] = {0};
    size_t got = 0;
    while ((n = read(bpp[0], out + got, sizeof out - 1 - got)) > 0) got += n;
    say("pipeline: %s", out);
    while (wait(NULL) > 0) {}
    return st_done();
}
