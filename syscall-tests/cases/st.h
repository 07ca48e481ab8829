/* st.h: helpers shared by the syscall-tests cases (printing, checks, a private /tmp dir). */
#ifndef ST_H
#define ST_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Number of failed checks so far; main returns st_done(). */
static int st_failures;
/* Private scratch directory under /tmp, removed at exit by the process that made it. */
static char st_dir[256];
static pid_t st_owner;

/* errno name ("ENOENT"), or "OK" for 0. */
static inline const char *st_errname(int e) {
    if (e == 0) return "OK";
    const char *n = strerrorname_np(e);
    return n ? n : "E???";
}

/* Print "label: ok" or "label: FAIL" and count failures. */
static inline void expect(const char *label, int cond) {
    printf("%s: %s\n", label, cond ? "ok" : "FAIL");
    if (!cond) st_failures++;
}

/* For a call returning -1/errno: print "label: <ERRNAME or OK>", fail unless errno == want
 * (want 0 means success expected). */
static inline void expect_err(const char *label, long ret, int want) {
    int got = ret < 0 ? errno : 0;
    printf("%s: %s\n", label, st_errname(got));
    if (got != want) {
        st_failures++;
        fprintf(stderr, "%s: expected %s, got %s (ret %ld)\n", label, st_errname(want),
                st_errname(got), ret);
    }
}

/* Print "label: <value>" and fail unless value == want. */
static inline void expect_eq(const char *label, long long got, long long want) {
    printf("%s: %lld\n", label, got);
    if (got != want) {
        st_failures++;
        fprintf(stderr, "%s: expected %lld, got %lld\n", label, want, got);
    }
}

/* Print a line; only for deterministic text. */
static inline void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Abort the test: a setup step that must not fail did. */
#define DIE(...)                                                                                 \
    do {                                                                                         \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fprintf(stderr, " (errno %s)\n", st_errname(errno));                                     \
        fflush(stdout);                                                                          \
        exit(2);                                                                                 \
    } while (0)

#define MUST(x)                                                                                  \
    ({                                                                                           \
        long _r = (long)(x);                                                                     \
        if (_r < 0) DIE("%s", #x);                                                               \
        _r;                                                                                      \
    })

static int st_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static void st_cleanup(void) {
    if (st_dir[0] && getpid() == st_owner) nftw(st_dir, st_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Make /tmp/st_<name>_<pid> (never printed) and remove it at exit. */
static inline const char *st_mkdir(const char *name) {
    snprintf(st_dir, sizeof st_dir, "/tmp/st_%s_%d", name, (int)getpid());
    if (mkdir(st_dir, 0755) < 0) DIE("mkdir %s", st_dir);
    st_owner = getpid();
    atexit(st_cleanup);
    return st_dir;
}

/* Path inside the scratch directory (a fresh heap string, never freed: tests are short). */
static inline const char *st_path(const char *leaf) {
    char *b = malloc(strlen(st_dir) + strlen(leaf) + 2);
    if (!b) DIE("malloc");
    sprintf(b, "%s/%s", st_dir, leaf);
    return b;
}

/* Unbuffered-enough stdout: line buffering so fork() never duplicates pending output. */
static inline void st_init(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline int st_done(void) {
    fflush(stdout);
    if (st_failures) fprintf(stderr, "%d check(s) failed\n", st_failures);
    return st_failures ? 1 : 0;
}

/* Describe a wait status deterministically: "exit N", "signal NAME", "stopped NAME". */
static inline const char *st_status(int st) {
    static char bufs[4][64];
    static int next;
    char *buf = bufs[next++ & 3];
    if (WIFEXITED(st)) snprintf(buf, sizeof bufs[0], "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, sizeof bufs[0], "signal %s", sigabbrev_np(WTERMSIG(st)));
    else if (WIFSTOPPED(st)) snprintf(buf, sizeof bufs[0], "stopped %s", sigabbrev_np(WSTOPSIG(st)));
    else if (WIFCONTINUED(st)) snprintf(buf, sizeof bufs[0], "continued");
    else snprintf(buf, sizeof bufs[0], "raw %#x", st);
    return buf;
}

/* Fork, run fn in the child (its return value is the exit code), wait, return the status. */
static inline int st_run_child(int (*fn)(void *), void *arg) {
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) DIE("fork");
    if (p == 0) _exit(fn(arg));
    int st;
    if (waitpid(p, &st, 0) != p) DIE("waitpid");
    return st;
}

/* In a child that is about to die of a signal: no core file. */
static inline void st_no_core(void) {
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

/* Fault probing: after st_catch_segv(), st_readable(p) is 1 if *p can be read, 0 if the
 * read faults (SIGSEGV), without killing the program. */
#include <setjmp.h>
static sigjmp_buf st_probe_jb;
static void st_on_segv(int sig) { siglongjmp(st_probe_jb, sig); }
static inline void st_catch_segv(void) {
    struct sigaction sa = {.sa_handler = st_on_segv};
    sigaction(SIGSEGV, &sa, NULL);
}
static inline int st_readable(volatile char *p) {
    if (sigsetjmp(st_probe_jb, 1)) return 0;
    (void)*p;
    return 1;
}

#endif
