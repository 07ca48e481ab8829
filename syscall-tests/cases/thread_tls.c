// Tests thread-local storage: __thread initial values per thread, independence, pthread keys with destructors.
#include "st.h"
#include <pthread.h>

static __thread int tls_int = 42;
static __thread char tls_buf[64] = "initial";
static __thread long tls_zero;
static pthread_key_t key;
static int destructor_runs;

static void dtor(void *p) {
    __atomic_fetch_add(&destructor_runs, 1, __ATOMIC_SEQ_CST);
    free(p);
}

static void *run(void *arg) {
    long id = (long)arg;
    int ok = tls_int == 42 && strcmp(tls_buf, "initial") == 0 && tls_zero == 0;
    tls_int = (int)id;
    snprintf(tls_buf, sizeof tls_buf, "thread-%ld", id);
    tls_zero = id * 10;
    pthread_setspecific(key, malloc(8));
    usleep(10000);
    char want[64];
    snprintf(want, sizeof want, "thread-%ld", id);
    ok = ok && tls_int == id && strcmp(tls_buf, want) == 0 && tls_zero == id * 10;
    return (void *)(long)ok;
}

static void *addr_of(void *arg) {
    (void)arg;
    return &tls_int;
}

int main(void) {
    st_init();
    pthread_key_create(&key, dtor);
    tls_int = 7;
    strcpy(tls_buf, "main");
    pthread_t t[6];
    for (long i = 0; i < 6; i++) pthread_create(&t[i], NULL, run, (void *)(i + 1));
    int all = 1;
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(t[i], &r);
        all &= (long)r == 1;
    }
    expect("threads_see_own_tls", all);
    expect("main_tls_untouched", tls_int == 7 && strcmp(tls_buf, "main") == 0);
    expect_eq("key_destructors_ran", destructor_runs, 6);
    void *a;
    pthread_create(&t[0], NULL, addr_of, NULL);
    pthread_join(t[0], &a);
    expect("tls_addresses_differ", a != (void *)&tls_int);
    /* fs base points at the thread control block; %fs:0 is its self pointer. */
    void *self;
    __asm__("mov %%fs:0, %0" : "=r"(self));
    expect("fs0_is_pthread_self", self == (void *)pthread_self());
    return st_done();
}
