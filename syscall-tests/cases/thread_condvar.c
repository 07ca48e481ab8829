// Tests pthread condition variables: 1000-round ping-pong, broadcast wakes all, timedwait ETIMEDOUT.
#include "st.h"
#include <pthread.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn, rounds;

static void *pong(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&m);
        while (turn != 1) pthread_cond_wait(&cv, &m);
        turn = 0;
        rounds++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static int gate, woken;
static void *waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    while (!gate) pthread_cond_wait(&cv, &m);
    woken++;
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void) {
    st_init();
    pthread_t t;
    pthread_create(&t, NULL, pong, NULL);
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&m);
        turn = 1;
        pthread_cond_signal(&cv);
        while (turn != 0) pthread_cond_wait(&cv, &m);
        pthread_mutex_unlock(&m);
    }
    pthread_join(t, NULL);
    expect_eq("ping_pong_rounds", rounds, 1000);

    pthread_t w[5];
    for (int i = 0; i < 5; i++) pthread_create(&w[i], NULL, waiter, NULL);
    usleep(20000);
    pthread_mutex_lock(&m);
    gate = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
    for (int i = 0; i < 5; i++) pthread_join(w[i], NULL);
    expect_eq("broadcast_woke", woken, 5);

    struct timespec ts, t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 30000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&m);
    int e = pthread_cond_timedwait(&cv, &m, &ts);
    pthread_mutex_unlock(&m);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    say("timedwait: %s", st_errname(e));
    expect("timedwait_duration_ok", ms >= 25 && ms < 1000);
    /* A monotonic-clock condvar */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mc;
    pthread_cond_init(&mc, &ca);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 10000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_mutex_lock(&m);
    e = pthread_cond_timedwait(&mc, &m, &ts);
    pthread_mutex_unlock(&m);
    say("monotonic_timedwait: %s", st_errname(e));
    return st_done();
}
