// Tests signals to threads: pthread_kill runs the handler on the target thread, per-thread masks, process signals.
#include "st.h"
#include <pthread.h>

static volatile pid_t handled_on;
static volatile int handled_count;
static pthread_barrier_t b;
static volatile pid_t worker_tid;

static void on_usr1(int sig) {
    (void)sig;
    handled_on = syscall(SYS_gettid);
    __atomic_fetch_add(&handled_count, 1, __ATOMIC_SEQ_CST);
}

static volatile int stop;
static void *worker(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    pthread_barrier_wait(&b);
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) usleep(1000);
    return NULL;
}

static void *blocker(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_barrier_wait(&b);
    int sig = 0;
    sigwait(&s, &sig); /* consumes the pending SIGUSR2 */
    return (void *)(long)sig;
}

int main(void) {
    st_init();
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_barrier_init(&b, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_barrier_wait(&b);
    expect_eq("pthread_kill", pthread_kill(t, SIGUSR1), 0);
    for (int i = 0; i < 2000 && !handled_count; i++) usleep(500);
    expect("handler_ran_on_target_thread", handled_on == worker_tid);
    /* Process-directed signal with main blocking it goes to the worker. */
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    handled_count = 0;
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 2000 && !handled_count; i++) usleep(500);
    expect("process_signal_to_unblocked_thread", handled_on == worker_tid);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Signal to main thread via tgkill */
    handled_count = 0;
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    expect("tgkill_main_handled_synchronously", handled_count == 1 && handled_on == syscall(SYS_gettid));
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
    expect_eq("pthread_kill_sig0", pthread_kill(pthread_self(), 0), 0);
    expect_eq("pthread_kill_bad_sig", pthread_kill(pthread_self(), 999), EINVAL);

    /* sigwait in a thread picks up a thread-directed signal. */
    pthread_barrier_init(&b, NULL, 2);
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &u2, NULL);
    pthread_create(&t, NULL, blocker, NULL);
    pthread_barrier_wait(&b);
    pthread_kill(t, SIGUSR2);
    void *r;
    pthread_join(t, &r);
    say("sigwait_in_thread: %s", sigabbrev_np((int)(long)r));
    /* The thread's masks are its own: main still has SIGUSR2 blocked, not pending. */
    sigset_t pend;
    sigpending(&pend);
    expect("no_leftover_pending", !sigismember(&pend, SIGUSR2));
    return st_done();
}
