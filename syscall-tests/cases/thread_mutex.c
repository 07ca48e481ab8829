// Tests pthread mutexes: contended counter over 4 threads, trylock EBUSY, errorcheck and recursive types.
#include "st.h"
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *inc(void *arg) {
    (void)arg;
    for (int i = 0; i < 50000; i++) {
        pthread_mutex_lock(&m);
        counter++;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *try_other(void *arg) {
    return (void *)(long)pthread_mutex_trylock(arg);
}

int main(void) {
    st_init();
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, inc, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    expect_eq("counter", counter, 200000);

    pthread_mutex_lock(&m);
    pthread_t x;
    void *r;
    pthread_create(&x, NULL, try_other, &m);
    pthread_join(x, &r);
    say("trylock_held_elsewhere: %s", st_errname((int)(long)r));
    pthread_mutex_unlock(&m);

    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t ec;
    pthread_mutex_init(&ec, &a);
    say("errorcheck_unlock_unlocked: %s", st_errname(pthread_mutex_unlock(&ec)));
    pthread_mutex_lock(&ec);
    say("errorcheck_relock: %s", st_errname(pthread_mutex_lock(&ec)));
    pthread_create(&x, NULL, try_other, &ec);
    pthread_join(x, &r);
    say("errorcheck_trylock_other: %s", st_errname((int)(long)r));
    pthread_mutex_unlock(&ec);

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t rm;
    pthread_mutex_init(&rm, &a);
    int e1 = pthread_mutex_lock(&rm), e2 = pthread_mutex_lock(&rm), e3 = pthread_mutex_trylock(&rm);
    say("recursive_locks: %s %s %s", st_errname(e1), st_errname(e2), st_errname(e3));
    pthread_mutex_unlock(&rm);
    pthread_mutex_unlock(&rm);
    pthread_create(&x, NULL, try_other, &rm);
    pthread_join(x, &r);
    say("recursive_still_held_by_main: %s", st_errname((int)(long)r));
    pthread_mutex_unlock(&rm);
    pthread_create(&x, NULL, try_other, &rm);
    pthread_join(x, &r);
    say("recursive_released: %s", st_errname((int)(long)r));
    /* Timed lock times out. */
    pthread_mutex_lock(&m);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    say("timedlock_self_normal: %s", st_errname(pthread_mutex_timedlock(&m, &ts)));
    pthread_mutex_unlock(&m);
    return st_done();
}
