// Tests pthread_barrier: 8 threads through 100 phases, exactly one PTHREAD_BARRIER_SERIAL_THREAD per phase.
#include "st.h"
#include <pthread.h>

#define N 8
#define PHASES 100
static pthread_barrier_t b;
static int serial_count;
static int phase_data[PHASES];
static int bad;

static void *run(void *arg) {
    long id = (long)arg;
    for (int p = 0; p < PHASES; p++) {
        __atomic_fetch_add(&phase_data[p], 1, __ATOMIC_SEQ_CST);
        int r = pthread_barrier_wait(&b);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD) __atomic_fetch_add(&serial_count, 1, __ATOMIC_SEQ_CST);
        else if (r != 0) __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
        /* After the barrier every thread has arrived in this phase. */
        if (__atomic_load_n(&phase_data[p], __ATOMIC_SEQ_CST) != N) __atomic_store_n(&bad, 1, __ATOMIC_SEQ_CST);
        (void)id;
    }
    return NULL;
}

int main(void) {
    st_init();
    expect_eq("init_count_zero", pthread_barrier_init(&b, NULL, 0), EINVAL);
    pthread_barrier_init(&b, NULL, N);
    pthread_t t[N];
    for (long i = 0; i < N; i++) pthread_create(&t[i], NULL, run, (void *)i);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    expect_eq("serial_threads", serial_count, PHASES);
    expect("all_arrived_each_phase", !bad);
    expect_eq("destroy", pthread_barrier_destroy(&b), 0);
    return st_done();
}
