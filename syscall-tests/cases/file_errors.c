// Tests common error returns: ENOENT, ENOTDIR, EISDIR, EBADF, EFAULT for bad pointers, ENAMETOOLONG, EINVAL.
#include "st.h"
#include <sys/mman.h>
#include <sys/uio.h>

/* volatile so the compiler cannot see the bad pointer and warn about it */
static void *volatile bad_ptr = (void *)1;
#define BAD bad_ptr

int main(void) {
    st_init();
    st_mkdir("file_errors");
    int fd = MUST(open(st_path("f"), O_RDWR | O_CREAT, 0644));
    MUST(write(fd, "abc", 3));
    MUST(lseek(fd, 0, SEEK_SET));
    struct stat sb;
    char buf[16];

    expect_err("read_efault", read(fd, BAD, 3), EFAULT);
    expect_eq("offset_after_efault", lseek(fd, 0, SEEK_CUR), 0);
    expect_err("write_efault", write(fd, BAD, 3), EFAULT);
    expect_err("stat_path_efault", stat(BAD, &sb), EFAULT);
    expect_err("stat_buf_efault", stat(st_path("f"), BAD), EFAULT);
    expect_err("fstat_buf_efault", fstat(fd, BAD), EFAULT);
    expect_err("open_path_efault", open(BAD, O_RDONLY), EFAULT);
    expect_err("pipe_efault", pipe(BAD), EFAULT);
    struct iovec iov = {BAD, 3};
    expect_err("readv_iov_base_efault", readv(fd, &iov, 1), EFAULT);
    expect_err("readv_iov_efault", readv(fd, BAD, 1), EFAULT);
    expect_err("getcwd_efault", syscall(SYS_getcwd, BAD, 100), EFAULT);
    expect_err("uname_efault", syscall(SYS_uname, BAD), EFAULT);
    expect_err("read_kernel_addr", read(fd, (void *)0xffff800000000000ULL, 3), EFAULT);
    expect_err("clock_gettime_efault", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD), EFAULT);

    expect_err("enoent", open(st_path("nope"), O_RDONLY), ENOENT);
    expect_err("enoent_dir_component", open(st_path("nope/f"), O_RDONLY), ENOENT);
    expect_err("enotdir_component", open(st_path("f/x"), O_RDONLY), ENOTDIR);
    expect_err("enotdir_trailing_slash", open(st_path("f/"), O_RDONLY), ENOTDIR);
    expect_err("eisdir_write", open(st_dir, O_RDWR), EISDIR);
    int dfd = MUST(open(st_dir, O_RDONLY));
    expect_err("eisdir_read_dir", read(dfd, buf, sizeof buf), EISDIR);
    close(dfd);
    expect_err("ebadf_read", read(-1, buf, 1), EBADF);
    expect_err("ebadf_write", write(1000, buf, 1), EBADF);
    expect_err("ebadf_fstat", fstat(-5, &sb), EBADF);
    char longpath[PATH_MAX + 10];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = 0;
    expect_err("enametoolong_path", open(longpath, O_RDONLY), ENAMETOOLONG);
    expect_err("einval_open_flags_tmpfile_rdonly", open("/tmp", O_TMPFILE | O_RDONLY, 0600), EINVAL);
    void *m = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect_err("mmap_len0", m == MAP_FAILED ? -1 : 0, EINVAL);
    close(fd);
    return st_done();
}
