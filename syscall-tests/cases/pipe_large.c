// Tests a 1 MiB transfer through a pipe in odd-sized chunks between processes, verified with a checksum.
#include "st.h"

static uint32_t fnv(const unsigned char *p, size_t n, uint32_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

int main(void) {
    st_init();
    size_t total = 1 << 20;
    unsigned char *data = malloc(total);
    uint32_t x = 12345;
    for (size_t i = 0; i < total; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (unsigned char)(x >> 16);
    }
    uint32_t want = fnv(data, total, 2166136261u);
    say("expected_checksum: %08x", want);
    int p[2];
    MUST(pipe(p));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        size_t off = 0, chunk = 1;
        while (off < total) {
            size_t n = chunk < total - off ? chunk : total - off;
            ssize_t w = write(p[1], data + off, n);
            if (w <= 0) _exit(1);
            off += w;
            chunk = chunk * 3 + 7;
            if (chunk > 200000) chunk = 13;
        }
        _exit(0);
    }
    close(p[1]);
    unsigned char *got = malloc(total + 1);
    size_t off = 0;
    size_t rchunk = 4093;
    ssize_t n;
    while ((n = read(p[0], got + off, rchunk < total + 1 - off ? rchunk : total + 1 - off)) > 0) {
        off += n;
        rchunk = rchunk == 4093 ? 65536 : 4093;
    }
    int st;
    waitpid(c, &st, 0);
    expect_eq("bytes_received", off, total);
    say("received_checksum: %08x", fnv(got, off, 2166136261u));
    expect("checksum_matches", fnv(got, off, 2166136261u) == want);
    say("writer: %s", st_status(st));
    /* Same transfer with a single huge write and single huge reads (blocking partial transfers). */
    MUST(pipe(p));
    c = fork();
    if (c == 0) {
        close(p[0]);
        ssize_t w = write(p[1], data, total);
        _exit(w == (ssize_t)total ? 0 : 1);
    }
    close(p[1]);
    off = 0;
    while ((n = read(p[0], got + off, total + 1 - off)) > 0) off += n;
    waitpid(c, &st, 0);
    expect("single_write_complete", off == total && fnv(got, off, 2166136261u) == want);
    say("single_writer: %s", st_status(st));
    return st_done();
}
