// Tests robust mutexes: owner thread/process death gives EOWNERDEAD, pthread_mutex_consistent, ENOTRECOVERABLE.
#include "st.h"
#include <pthread.h>
#include <sys/mman.h>

static pthread_mutex_t *m;

static void *lock_and_die(void *arg) {
    (void)arg;
    pthread_mutex_lock(m);
    return NULL; /* exits holding the lock */
}

int main(void) {
    st_init();
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(m, &a);

    pthread_t t;
    pthread_create(&t, NULL, lock_and_die, NULL);
    pthread_join(t, NULL);
    int e = pthread_mutex_lock(m);
    say("lock_after_thread_death: %s", st_errname(e));
    say("consistent: %s", st_errname(pthread_mutex_consistent(m)));
    say("unlock: %s", st_errname(pthread_mutex_unlock(m)));
    say("relock_clean: %s", st_errname(pthread_mutex_lock(m)));
    pthread_mutex_unlock(m);

    /* Not made consistent: the mutex becomes unrecoverable. */
    pthread_create(&t, NULL, lock_and_die, NULL);
    pthread_join(t, NULL);
    e = pthread_mutex_trylock(m);
    say("trylock_after_death: %s", st_errname(e));
    pthread_mutex_unlock(m);
    say("lock_not_recoverable: %s", st_errname(pthread_mutex_lock(m)));

    /* Owner process death (kernel walks the robust list at exit). */
    pthread_mutex_destroy(m);
    pthread_mutex_init(m, &a);
    int p[2];
    MUST(pipe(p));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        write(p[1], "L", 1);
        pause(); /* killed while holding */
        _exit(0);
    }
    char x;
    read(p[0], &x, 1);
    kill(c, SIGKILL);
    int st;
    waitpid(c, &st, 0);
    e = pthread_mutex_lock(m);
    say("lock_after_process_death: %s", st_errname(e));
    if (e == EOWNERDEAD) pthread_mutex_consistent(m);
    pthread_mutex_unlock(m);
    /* A waiter blocked in the kernel is woken by the owner's death. */
    c = fork();
    if (c == 0) {
        pthread_mutex_lock(m);
        write(p[1], "L", 1);
        usleep(50000);
        _exit(0);
    }
    read(p[0], &x, 1);
    e = pthread_mutex_lock(m);
    say("blocked_waiter_after_exit: %s", st_errname(e));
    waitpid(c, &st, 0);
    expect_err("get_robust_list", syscall(SYS_get_robust_list, 0, &(void *){0}, &(size_t){0}), 0);
    expect_err("set_robust_list_bad_len", syscall(SYS_set_robust_list, NULL, 1), EINVAL);
    return st_done();
}
