// Tests file-backed MAP_SHARED: stores visible via read() (before and after msync), write() visible in the map.
#include "st.h"
#include <sys/mman.h>

int main(void) {
    st_init();
    st_mkdir("mm_file_shared");
    long pg = sysconf(_SC_PAGESIZE);
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(ftruncate(fd, 2 * pg));
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    expect("mmap_shared_file", m != MAP_FAILED);
    memcpy(m, "shared-write", 12);
    memcpy(m + pg, "page2", 5);
    expect_err("msync", msync(m, 2 * pg, MS_SYNC), 0);
    char buf[16] = {0};
    MUST(pread(fd, buf, 12, 0));
    say("read_after_msync: %s", buf);
    memset(buf, 0, sizeof buf);
    MUST(pread(fd, buf, 5, pg));
    say("read_page2: %s", buf);
    MUST(pwrite(fd, "FROM-WRITE", 10, 100));
    say("map_sees_write: %.10s", m + 100);
    /* Another shared mapping of the same file sees the same bytes. */
    char *m2 = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    m2[0] = 'S';
    say("first_map_sees_second: %c", m[0]);
    /* Across fork, both processes share the file pages. */
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) { memcpy(m + 200, "child", 5); _exit(0); }
    waitpid(c, NULL, 0);
    say("parent_sees_child_store: %.5s", m + 200);
    /* The data survives munmap and a reopen. */
    MUST(munmap(m, 2 * pg));
    MUST(munmap(m2, pg));
    close(fd);
    fd = MUST(open(st_path("f"), O_RDONLY));
    memset(buf, 0, sizeof buf);
    MUST(pread(fd, buf, 5, 200));
    say("after_munmap_reopen: %s", buf);
    struct stat sb;
    fstat(fd, &sb);
    expect_eq("size_unchanged", sb.st_size, 2 * pg);
    /* MAP_SHARED with PROT_WRITE needs a writable fd. */
    void *e = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    expect_err("shared_write_rdonly_fd", e == MAP_FAILED ? -1 : 0, EACCES);
    close(fd);
    fd = MUST(open(st_path("f"), O_WRONLY));
    e = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
    expect_err("map_wronly_fd", e == MAP_FAILED ? -1 : 0, EACCES);
    close(fd);
    /* MS_ASYNC and MS_INVALIDATE are accepted; bad flags are not. */
    fd = MUST(open(st_path("f"), O_RDWR));
    m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    expect_err("msync_async", msync(m, pg, MS_ASYNC), 0);
    expect_err("msync_sync_and_async", msync(m, pg, MS_SYNC | MS_ASYNC), EINVAL);
    expect_err("msync_unaligned", msync(m + 1, pg, MS_SYNC), EINVAL);
    /* Mapping a directory fails. */
    int dfd = MUST(open(st_dir, O_RDONLY));
    e = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, dfd, 0);
    expect_err("map_directory", e == MAP_FAILED ? -1 : 0, ENODEV);
    close(dfd);
    /* Growing the file makes the rest of the mapping usable. */
    close(fd);
    return st_done();
}
