// Tests /dev/null, /dev/zero, /dev/full (ENOSPC), /dev/urandom and /dev/random behaviour.
#include "st.h"
#include <sys/mman.h>

int main(void) {
    st_init();
    char buf[4096];
    int fd = MUST(open("/dev/null", O_RDWR));
    expect_eq("null_write", write(fd, "abc", 3), 3);
    expect_eq("null_read_eof", read(fd, buf, sizeof buf), 0);
    expect_eq("null_lseek", lseek(fd, 100, SEEK_SET), 0);
    close(fd);

    fd = MUST(open("/dev/zero", O_RDWR));
    memset(buf, 0x55, sizeof buf);
    expect_eq("zero_read", read(fd, buf, sizeof buf), (long)sizeof buf);
    int nz = 0;
    for (size_t i = 0; i < sizeof buf; i++) nz += buf[i] != 0;
    expect_eq("zero_nonzero_bytes", nz, 0);
    expect_eq("zero_write", write(fd, "abc", 3), 3);
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    expect("zero_mmap", m != MAP_FAILED);
    if (m != MAP_FAILED) {
        expect("zero_mmap_zeroed", m[0] == 0 && m[8191] == 0);
        m[5] = 1;
        munmap(m, 8192);
    }
    close(fd);

    fd = MUST(open("/dev/full", O_RDWR));
    expect_err("full_write", write(fd, "abc", 3), ENOSPC);
    memset(buf, 0x55, 16);
    expect_eq("full_read", read(fd, buf, 16), 16);
    expect("full_reads_zero", buf[0] == 0 && buf[15] == 0);
    close(fd);

    fd = MUST(open("/dev/urandom", O_RDONLY));
    char a[64], b[64];
    expect_eq("urandom_read", read(fd, a, sizeof a), 64);
    expect_eq("urandom_read2", read(fd, b, sizeof b), 64);
    expect("urandom_differs", memcmp(a, b, sizeof a) != 0);
    static char big[1 << 20];
    expect_eq("urandom_big_read", read(fd, big, sizeof big), (long)sizeof big);
    close(fd);
    fd = MUST(open("/dev/random", O_RDONLY | O_NONBLOCK));
    expect_eq("random_read", read(fd, a, 16), 16);
    close(fd);

    struct stat sb;
    const char *devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};
    for (int i = 0; i < 5; i++) {
        if (stat(devs[i], &sb) < 0) DIE("stat %s", devs[i]);
        say("%s: chr=%d %u:%u", devs[i], S_ISCHR(sb.st_mode), major(sb.st_rdev), minor(sb.st_rdev));
    }
    /* Writes to /dev/null from stdout's dup are fine too, and O_TRUNC is accepted. */
    fd = open("/dev/null", O_WRONLY | O_TRUNC);
    expect_err("null_o_trunc", fd, 0);
    close(fd);
    return st_done();
}
