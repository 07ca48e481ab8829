// Tests /proc/self/fd: listing matches open fds, readlink shows file paths and pipe:[N], fdinfo flags.
#include "st.h"
#include <dirent.h>

static int cmpint(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void list_fds(const char *label) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) DIE("opendir");
    int self = dirfd(d);
    int fds[256], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd >= 3 && fd != self) fds[n++] = fd;
    }
    closedir(d);
    qsort(fds, n, sizeof fds[0], cmpint);
    char line[512];
    snprintf(line, sizeof line, "%s:", label);
    for (int i = 0; i < n; i++) snprintf(line + strlen(line), sizeof line - strlen(line), " %d", fds[i]);
    say("%s", line);
}

int main(void) {
    st_init();
    st_mkdir("procfs_fd");
    list_fds("fds_at_start");
    expect("fds_0_1_2_present", fcntl(0, F_GETFD) >= 0 && fcntl(1, F_GETFD) >= 0 &&
                                    fcntl(2, F_GETFD) >= 0);
    int f = MUST(open(st_path("file"), O_RDWR | O_CREAT | O_APPEND, 0644));
    int p[2];
    MUST(pipe(p));
    MUST(dup2(f, 20));
    list_fds("fds_after_open");
    char path[64], link[PATH_MAX];
    snprintf(path, sizeof path, "/proc/self/fd/%d", f);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    expect("fd_link_is_file_path", strcmp(link, st_path("file")) == 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    expect("pipe_link_form", strncmp(link, "pipe:[", 6) == 0 && link[n - 1] == ']');
    char link2[PATH_MAX];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[1]);
    n = readlink(path, link2, sizeof link2 - 1);
    link2[n > 0 ? n : 0] = 0;
    expect("pipe_ends_same_inode", strcmp(link, link2) == 0);
    /* opening /proc/self/fd/N reopens the file */
    snprintf(path, sizeof path, "/proc/self/fd/%d", f);
    MUST(write(f, "xyz", 3));
    int r = open(path, O_RDONLY);
    expect_err("reopen_via_proc", r, 0);
    char buf[8] = {0};
    read(r, buf, 3);
    say("reopened_data: %s", buf);
    expect_eq("reopen_has_own_offset", lseek(f, 0, SEEK_CUR), 3);
    close(r);
    /* fdinfo shows flags in octal with O_APPEND (02000) set */
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", f);
    int fi = MUST(open(path, O_RDONLY));
    char info[512] = {0};
    read(fi, info, sizeof info - 1);
    close(fi);
    char *fl = strstr(info, "flags:");
    unsigned long flags = fl ? strtoul(fl + 6, NULL, 8) : 0;
    expect("fdinfo_has_pos", strstr(info, "pos:\t3") != NULL);
    expect("fdinfo_flags_append_rdwr", (flags & O_APPEND) && (flags & O_ACCMODE) == O_RDWR);
    close(p[0]);
    close(p[1]);
    close(20);
    close(f);
    list_fds("fds_after_close");
    expect_err("readlink_closed_fd", readlink("/proc/self/fd/20", link, sizeof link), ENOENT);
    return st_done();
}
