// Tests /proc/self/exe: readlink equals the realpath of argv[0], it is openable and is an ELF file.
#include "st.h"

int main(int argc, char **argv) {
    (void)argc;
    st_init();
    char exe[PATH_MAX], link[PATH_MAX];
    if (!realpath(argv[0], exe)) DIE("realpath");
    ssize_t n = readlink("/proc/self/exe", link, sizeof link - 1);
    expect("readlink_ok", n > 0);
    link[n > 0 ? n : 0] = 0;
    expect("exe_equals_realpath_argv0", strcmp(link, exe) == 0);
    char pidpath[64], link2[PATH_MAX];
    snprintf(pidpath, sizeof pidpath, "/proc/%d/exe", getpid());
    n = readlink(pidpath, link2, sizeof link2 - 1);
    link2[n > 0 ? n : 0] = 0;
    expect("proc_pid_exe_same", strcmp(link, link2) == 0);
    int fd = open("/proc/self/exe", O_RDONLY);
    expect_err("open_proc_self_exe", fd, 0);
    char hdr[4] = {0};
    read(fd, hdr, 4);
    expect("exe_is_elf", memcmp(hdr, "\177ELF", 4) == 0);
    struct stat a, b;
    fstat(fd, &a);
    stat(exe, &b);
    expect("exe_same_inode", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    close(fd);
    struct stat l;
    MUST(lstat("/proc/self/exe", &l));
    expect("exe_is_symlink", S_ISLNK(l.st_mode));
    n = readlink("/proc/self", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    expect("proc_self_is_pid", n > 0 && atoi(link) == getpid());
    n = readlink("/proc/self/cwd", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    char cwd[PATH_MAX];
    getcwd(cwd, sizeof cwd);
    expect("proc_self_cwd_is_getcwd", strcmp(link, cwd) == 0);
    n = readlink("/proc/self/root", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    say("proc_self_root: %s", link);
    return st_done();
}
