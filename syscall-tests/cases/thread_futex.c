// Tests raw futex: WAIT with a stale value EAGAIN, timeout ETIMEDOUT, WAKE counts, private vs shared, bitset, requeue.
#include "st.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sys/mman.h>

static long futex(volatile int *uaddr, int op, int val, const struct timespec *ts, volatile int *u2, int v3) {
    return syscall(SYS_futex, uaddr, op, val, ts, u2, v3);
}

static volatile int word, word2;
static volatile int woken;

static void note_tid(void);
static void *waiter(void *arg) {
    (void)arg;
    note_tid();
    while (__atomic_load_n(&word, __ATOMIC_SEQ_CST) == 0) {
        futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    }
    __atomic_fetch_add(&woken, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static volatile int qword;
static volatile int qwoken;
static void *qwaiter(void *arg) {
    (void)arg;
    note_tid();
    long r = futex(&qword, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    if (r == 0) __atomic_fetch_add(&qwoken, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Tids of the helper threads, so we can watch their state in /proc/self/task. */
static pid_t helper_tids[8];
static int nhelpers;
static pthread_mutex_t tid_lock = PTHREAD_MUTEX_INITIALIZER;
static void note_tid(void) {
    pthread_mutex_lock(&tid_lock);
    helper_tids[nhelpers++] = syscall(SYS_gettid);
    pthread_mutex_unlock(&tid_lock);
}

/* Wait until `n` helpers are blocked ('S' in their stat), or give up after ~0.5 s. */
static void wait_sleepers(int n) {
    for (int tries = 0; tries < 500; tries++) {
        usleep(1000);
        int sleeping = 0;
        pthread_mutex_lock(&tid_lock);
        for (int i = 0; i < nhelpers; i++) {
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/self/task/%d/stat", helper_tids[i]);
            int fd = open(path, O_RDONLY);
            if (fd < 0) continue;
            ssize_t k = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (k <= 0) continue;
            buf[k] = 0;
            char *p = strrchr(buf, ')');
            if (p && p[1] && p[2] == 'S') sleeping++;
        }
        pthread_mutex_unlock(&tid_lock);
        if (sleeping >= n) break;
    }
    usleep(5000);
    pthread_mutex_lock(&tid_lock);
    nhelpers = 0;
    pthread_mutex_unlock(&tid_lock);
}

int main(void) {
    st_init();
    word = 1;
    expect_err("wait_value_mismatch", futex(&word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EAGAIN);
    struct timespec ts = {0, 20000000}, t0, t1;
    word = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_err("wait_timeout", futex(&word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0), ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    expect("timeout_duration", ms >= 15 && ms < 1000);
    expect_eq("wake_nobody", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 0);
    struct timespec bad = {0, 2000000000};
    expect_err("wait_bad_timeout", futex(&word, FUTEX_WAIT_PRIVATE, 0, &bad, NULL, 0), EINVAL);
    expect_err("wait_unaligned", futex((volatile int *)((char *)&word + 1), FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    expect_err("wait_efault", futex((volatile int *)8, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0), EFAULT);
    expect_err("bad_op", futex(&word, 99, 0, NULL, NULL, 0), ENOSYS);

    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, waiter, NULL);
    wait_sleepers(4);
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
    long total = 0;
    long r = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    total += r;
    say("wake_one_returned: %ld", r);
    r = futex(&word, FUTEX_WAKE_PRIVATE, 100, NULL, NULL, 0);
    total += r;
    say("wake_rest_returned: %ld", r);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    expect_eq("all_woken", woken, 4);

    /* Bitset: WAKE_BITSET only wakes waiters whose mask intersects. */
    expect_err("wait_bitset_zero_mask", futex(&word2, FUTEX_WAIT_BITSET_PRIVATE, 0, NULL, NULL, 0), EINVAL);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10000000;
    if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    expect_err("wait_bitset_abs_timeout", futex(&word2, FUTEX_WAIT_BITSET_PRIVATE, 0, &abs, NULL, 0xffffffff), ETIMEDOUT);

    /* Requeue: 3 waiters on qword, wake 1 and move 2 to word2, then wake word2. */
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, qwaiter, NULL);
    wait_sleepers(3);
    r = futex(&qword, FUTEX_CMP_REQUEUE_PRIVATE, 1, (struct timespec *)2L, &word2, 0);
    say("cmp_requeue_returned: %ld", r);
    r = futex(&word2, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0);
    say("wake_requeued: %ld", r);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    expect_eq("requeue_woken", qwoken, 3);
    expect_err("cmp_requeue_mismatch", futex(&qword, FUTEX_CMP_REQUEUE_PRIVATE, 1, (struct timespec *)1L, &word2, 5), EAGAIN);

    /* Shared futex across fork in MAP_SHARED memory. */
    volatile int *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *sh = 0;
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        while (*sh == 0) futex(sh, FUTEX_WAIT, 0, NULL, NULL, 0);
        _exit(*sh);
    }
    usleep(20000);
    *sh = 9;
    futex(sh, FUTEX_WAKE, 1, NULL, NULL, 0);
    int st;
    waitpid(c, &st, 0);
    say("shared_futex_child: %s", st_status(st));
    return st_done();
}
