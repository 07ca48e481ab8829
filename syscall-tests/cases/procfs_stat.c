// Tests /proc/self/stat (pid, comm, state, ppid fields) and /proc/self/status (Name, Pid, PPid, Tgid, Threads).
#include "st.h"

static char *slurp(const char *p, char *buf, size_t n) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) DIE("open %s", p);
    size_t got = 0;
    ssize_t r;
    while (got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0) got += r;
    buf[got] = 0;
    close(fd);
    return buf;
}

static long status_field(const char *s, const char *key) {
    const char *p = strstr(s, key);
    if (!p) return -1;
    return strtol(p + strlen(key), NULL, 10);
}

int main(void) {
    st_init();
    char buf[8192];
    slurp("/proc/self/stat", buf, sizeof buf);
    int pid = -1, ppid = -1;
    char comm[64] = "", state = '?';
    int n = sscanf(buf, "%d (%63[^)]) %c %d", &pid, comm, &state, &ppid);
    expect_eq("stat_fields_parsed", n, 4);
    expect("stat_pid_is_getpid", pid == getpid());
    expect("stat_ppid_is_getppid", ppid == getppid());
    say("stat_comm: %s", comm);
    say("stat_state: %c", state);
    /* field count: 52 on current kernels; at least 44 everywhere we care about */
    char *close_paren = strrchr(buf, ')');
    int fields = 2;
    for (char *p = close_paren + 1; *p; p++)
        if (*p == ' ') fields++;
    expect("stat_field_count_ge_44", fields >= 44);
    /* /proc/<pid>/stat is the same process */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", getpid());
    char buf2[8192];
    slurp(path, buf2, sizeof buf2);
    int pid2 = -1;
    sscanf(buf2, "%d", &pid2);
    expect("proc_pid_stat_matches", pid2 == getpid());

    slurp("/proc/self/status", buf, sizeof buf);
    char name[64] = "";
    const char *np = strstr(buf, "Name:\t");
    if (np) sscanf(np + 6, "%63s", name);
    say("status_name: %s", name);
    expect("status_name_is_comm", strcmp(name, comm) == 0);
    expect("status_pid", status_field(buf, "\nPid:\t") == getpid());
    expect("status_tgid", status_field(buf, "\nTgid:\t") == getpid());
    expect("status_ppid", status_field(buf, "\nPPid:\t") == getppid());
    expect_eq("status_threads", status_field(buf, "\nThreads:\t"), 1);
    expect("status_uid_line", strstr(buf, "\nUid:\t") != NULL);
    expect("status_sigblk_line", strstr(buf, "\nSigBlk:\t") != NULL);
    slurp("/proc/self/comm", buf, sizeof buf);
    say("comm_file: %s", strtok(buf, "\n"));

    /* A child sees its own pid and the parent as ppid. */
    int parent = getpid();
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char b[8192];
        slurp("/proc/self/stat", b, sizeof b);
        int p1, p2;
        char cm[64], s;
        sscanf(b, "%d (%63[^)]) %c %d", &p1, cm, &s, &p2);
        _exit(p1 == getpid() && p2 == parent ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    say("child_stat: %s", st_status(st));
    expect_err("proc_missing_pid", open("/proc/999999999/stat", O_RDONLY), ENOENT);
    return st_done();
}
