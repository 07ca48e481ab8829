// Tests pthread_create/join of 10 threads: arguments, return values, detached threads, pthread_exit.
#include "st.h"
#include <pthread.h>

static void *worker(void *arg) {
    long i = (long)arg;
    long sum = 0;
    for (long k = 0; k <= i * 1000; k++) sum += k;
    return (void *)sum;
}

static void *exiter(void *arg) {
    pthread_exit((void *)((long)arg * 3));
    return NULL;
}

static volatile int detached_ran;
static void *detached(void *arg) {
    (void)arg;
    __atomic_store_n(&detached_ran, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    st_init();
    pthread_t t[10];
    for (long i = 0; i < 10; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) DIE("pthread_create");
    for (long i = 0; i < 10; i++) {
        void *r;
        int e = pthread_join(t[i], &r);
        long n = i * 1000;
        say("thread %ld: join=%s result_ok=%d", i, st_errname(e), (long)r == n * (n + 1) / 2);
    }
    pthread_t x;
    pthread_create(&x, NULL, exiter, (void *)14);
    void *r;
    pthread_join(x, &r);
    say("pthread_exit_value: %ld", (long)r);
    say("join_self: %s", st_errname(pthread_join(pthread_self(), &r)));
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_create(&x, &a, detached, NULL);
    for (int i = 0; i < 2000 && !__atomic_load_n(&detached_ran, __ATOMIC_SEQ_CST); i++) usleep(500);
    say("detached_ran: %d", detached_ran);
    /* Small custom stack size */
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_JOINABLE);
    pthread_attr_setstacksize(&a, 64 * 1024);
    pthread_create(&x, &a, worker, (void *)2);
    pthread_join(x, &r);
    say("small_stack_result: %ld", (long)r);
    /* 100 short-lived threads in a row */
    int ok = 1;
    for (long i = 0; i < 100; i++) {
        if (pthread_create(&x, NULL, worker, (void *)0)) { ok = 0; break; }
        pthread_join(x, &r);
    }
    expect("hundred_threads", ok);
    return st_done();
}
