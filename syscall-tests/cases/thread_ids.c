// Tests thread identity: gettid distinct per thread, getpid shared, /proc/self/task lists all threads, tgkill.
#include "st.h"
#include <dirent.h>
#include <pthread.h>

#define N 5
static pthread_barrier_t b;
static pid_t tids[N];
static pid_t pids[N];

static void *run(void *arg) {
    long i = (long)arg;
    tids[i] = syscall(SYS_gettid);
    pids[i] = getpid();
    pthread_barrier_wait(&b); /* all alive */
    pthread_barrier_wait(&b); /* main has looked */
    return NULL;
}

int main(void) {
    st_init();
    pthread_barrier_init(&b, NULL, N + 1);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, run, (void *)i);
    pthread_barrier_wait(&b);
    pid_t me = getpid(), main_tid = syscall(SYS_gettid);
    int distinct = 1, same_pid = 1;
    for (int i = 0; i < N; i++) {
        same_pid &= pids[i] == me;
        distinct &= tids[i] != main_tid && tids[i] > 0;
        for (int j = 0; j < i; j++) distinct &= tids[i] != tids[j];
    }
    expect("tids_distinct", distinct);
    expect("getpid_shared", same_pid);
    DIR *d = opendir("/proc/self/task");
    int count = 0, found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        count++;
        pid_t tid = atoi(e->d_name);
        for (int i = 0; i < N; i++) found += tid == tids[i];
        found += tid == main_tid;
    }
    closedir(d);
    expect_eq("task_entries", count, N + 1);
    expect_eq("task_entries_match_tids", found, N + 1);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tids[0]);
    int fd = open(path, O_RDONLY);
    expect_err("task_stat_open", fd, 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    expect("task_stat_pid_is_tid", atoi(buf) == tids[0]);
    fd = MUST(open("/proc/self/status", O_RDONLY));
    n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
    char *th = strstr(buf, "Threads:");
    say("status_threads: %d", th ? atoi(th + 8) : -1);
    expect_err("tgkill_sig0_thread", syscall(SYS_tgkill, me, tids[0], 0), 0);
    expect_err("tgkill_wrong_tgid", syscall(SYS_tgkill, me + 100000, tids[0], 0), ESRCH);
    expect_err("tkill_sig0", syscall(SYS_tkill, tids[1], 0), 0);
    pthread_barrier_wait(&b);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    usleep(1000);
    /* Once joined, the thread ids are gone. */
    expect_err("tgkill_after_join", syscall(SYS_tgkill, me, tids[0], 0), ESRCH);
    d = opendir("/proc/self/task");
    count = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') count++;
    closedir(d);
    expect_eq("task_entries_after_join", count, 1);
    return st_done();
}
