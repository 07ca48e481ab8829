// Tests file-backed MAP_PRIVATE: copy-on-write never reaches the file; reads see file data until written.
#include "st.h"
#include <sys/mman.h>

int main(void) {
    st_init();
    st_mkdir("mm_file_private");
    long pg = sysconf(_SC_PAGESIZE);
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    char *buf = malloc(2 * pg);
    for (long i = 0; i < 2 * pg; i++) buf[i] = 'A' + i % 26;
    MUST(write(fd, buf, 2 * pg));
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    expect("mmap_private_file", m != MAP_FAILED);
    expect("reads_file_data", memcmp(m, buf, 2 * pg) == 0);
    m[0] = '#';
    m[pg + 1] = '#';
    char c = 0;
    MUST(pread(fd, &c, 1, 0));
    say("file_byte0_after_private_write: %c", c);
    MUST(pread(fd, &c, 1, pg + 1));
    say("file_byte_pg1_after_private_write: %c", c);
    expect_err("msync_private", msync(m, 2 * pg, MS_SYNC), 0);
    MUST(pread(fd, &c, 1, 0));
    say("file_byte0_after_msync: %c", c);
    /* A second private mapping sees the file, not the first mapping's copy. */
    char *m2 = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
    say("second_mapping_byte0: %c", m2[0]);
    /* A write() to the file is visible in pages not yet copied. */
    MUST(pwrite(fd, "zz", 2, 10));
    say("uncopied_page_sees_write: %c", m2[10]);
    say("copied_page_keeps_private: %c", m[10]);
    /* Mapping with an offset. */
    char *m3 = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg);
    expect("offset_mapping", m3 != MAP_FAILED && m3[0] == buf[pg]);
    /* Private writable mapping of a read-only fd is allowed. */
    int ro = MUST(open(st_path("f"), O_RDONLY));
    char *m4 = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    expect("private_rw_of_rdonly_fd", m4 != MAP_FAILED);
    if (m4 != MAP_FAILED) m4[0] = '!';
    /* The mapping survives close() and unlink(). */
    close(ro);
    close(fd);
    MUST(unlink(st_path("f")));
    say("after_close_unlink: %c %c", m2[0], m3[1]);
    /* A child's private writes are invisible to the parent (fork COW). */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) { m[5] = '%'; _exit(m[5] == '%' ? 0 : 1); }
    int st;
    waitpid(p, &st, 0);
    say("child: %s parent_sees: %c", st_status(st), m[5]);
    return st_done();
}
