// Tests memory across fork: MAP_SHARED anonymous is shared both ways, MAP_PRIVATE and the heap are copy-on-write.
#include "st.h"
#include <sys/mman.h>

int main(void) {
    st_init();
    long pg = sysconf(_SC_PAGESIZE);
    volatile int *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile int *pr = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int *heap = malloc(sizeof(int));
    static int global = 1;
    sh[0] = 1;
    pr[0] = 1;
    *heap = 1;
    int p2c[2], c2p[2];
    MUST(pipe(p2c));
    MUST(pipe(c2p));
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        char x;
        int ok = sh[0] == 1 && pr[0] == 1 && *heap == 1 && global == 1;
        sh[0] = 2;
        pr[0] = 2;
        *heap = 2;
        global = 2;
        write(c2p[1], "w", 1);
        read(p2c[0], &x, 1); /* wait for the parent's store */
        ok = ok && sh[1] == 77 && pr[1] == 0;
        _exit(ok ? 0 : 1);
    }
    char x;
    read(c2p[0], &x, 1);
    say("parent_sees_shared: %d", sh[0]);
    say("parent_sees_private: %d", pr[0]);
    say("parent_sees_heap: %d", *heap);
    say("parent_sees_global: %d", global);
    sh[1] = 77;
    pr[1] = 77;
    write(p2c[1], "g", 1);
    int st;
    waitpid(c, &st, 0);
    say("child_saw_parent_shared_store: %s", st_status(st));
    /* Counter incremented by 4 children through shared memory with atomics. */
    volatile int *cnt = sh + 10;
    *cnt = 0;
    for (int i = 0; i < 4; i++) {
        if (fork() == 0) {
            for (int j = 0; j < 10000; j++) __atomic_fetch_add(cnt, 1, __ATOMIC_SEQ_CST);
            _exit(0);
        }
    }
    for (int i = 0; i < 4; i++) wait(NULL);
    expect_eq("shared_atomic_counter", *cnt, 40000);
    /* A fresh child of a child still shares. */
    if (fork() == 0) {
        if (fork() == 0) { sh[20] = 5; _exit(0); }
        wait(NULL);
        _exit(0);
    }
    wait(NULL);
    expect_eq("grandchild_store_visible", sh[20], 5);
    return st_done();
}
