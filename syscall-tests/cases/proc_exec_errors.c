// Tests execve failures: ENOENT, ENOEXEC for a non-ELF non-script file, EACCES, ENOTDIR, EFAULT; the caller survives.
#include "st.h"

static void put(const char *p, const char *data, size_t n, mode_t mode) {
    int fd = MUST(open(p, O_WRONLY | O_CREAT | O_TRUNC, mode));
    MUST(write(fd, data, n));
    close(fd);
    MUST(chmod(p, mode));
}

static int try_exec(const char *path) {
    char *args[] = {(char *)path, NULL};
    char *env[] = {NULL};
    return execve(path, args, env);
}

int main(void) {
    st_init();
    st_mkdir("proc_exec_errors");
    expect_err("exec_missing", try_exec(st_path("missing")), ENOENT);
    put(st_path("garbage"), "this is not an ELF file\n", 24, 0755);
    expect_err("exec_garbage", try_exec(st_path("garbage")), ENOEXEC);
    put(st_path("empty"), "", 0, 0755);
    expect_err("exec_empty_file", try_exec(st_path("empty")), ENOEXEC);
    put(st_path("noexec"), "#!/bin/sh\nexit 0\n", 17, 0644);
    expect_err("exec_no_x_bit", try_exec(st_path("noexec")), EACCES);
    expect_err("exec_directory", try_exec(st_dir), EACCES);
    expect_err("exec_through_file", try_exec(st_path("garbage/x")), ENOTDIR);
    put(st_path("badinterp"), "#!/nonexistent/interp\n", 22, 0755);
    expect_err("exec_script_missing_interp", try_exec(st_path("badinterp")), ENOENT);
    /* An ELF header with a wrong machine type */
    unsigned char elf[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
    elf[16] = 2;        /* ET_EXEC */
    elf[18] = 0x28;     /* EM_ARM */
    elf[20] = 1;        /* EV_CURRENT */
    put(st_path("armelf"), (char *)elf, sizeof elf, 0755);
    expect_err("exec_wrong_arch_elf", try_exec(st_path("armelf")), ENOEXEC);
    /* Truncated ELF header */
    put(st_path("short"), "\177ELF\2\1\1", 7, 0755);
    expect_err("exec_truncated_elf", try_exec(st_path("short")), ENOEXEC);
    char *noargs[] = {NULL};
    expect_err("exec_efault_path", syscall(SYS_execve, (char *)1, noargs, noargs), EFAULT);
    char *badargs[] = {"x", (char *)1, NULL};
    expect_err("exec_efault_argv", execve("/bin/true", badargs, NULL), EFAULT);
    expect_err("exec_empty_path", try_exec(""), ENOENT);
    /* A file being written cannot be executed: ETXTBSY. */
    int wfd = MUST(open(st_path("garbage"), O_WRONLY));
    expect_err("exec_open_for_write", try_exec(st_path("garbage")), ETXTBSY);
    close(wfd);
    /* Still alive and well. */
    say("survived: yes");
    return st_done();
}
