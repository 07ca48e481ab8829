// Random syscalls with garbage arguments, in disposable children: the sandbox must survive
// (a sentry panic or hang fails the test that runs this).
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <unistd.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void){ s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static long arg(void){
  switch (rnd() % 8) {
    case 0: return 0; case 1: return -1; case 2: return rnd() % 64;
    case 3: return (long)(rnd() % 4096); case 4: return (long)0x7fffffffe000ull;
    case 5: return (long)(rnd()); case 6: return 1L << (rnd() % 63);
    default: return (long)(rnd() % 0x100000000ull);
  }
}
static const int skip[] = {SYS_exit, SYS_exit_group, SYS_kill, SYS_tkill, SYS_tgkill, SYS_clone, SYS_clone3,
  SYS_fork, SYS_vfork, SYS_execve, SYS_execveat, SYS_rt_sigreturn, SYS_pause, SYS_rt_sigsuspend,
  SYS_nanosleep, SYS_clock_nanosleep, SYS_select, SYS_pselect6, SYS_poll, SYS_ppoll, SYS_epoll_wait,
  SYS_epoll_pwait, SYS_epoll_pwait2, SYS_wait4, SYS_waitid, SYS_futex, SYS_read, SYS_readv, SYS_pread64,
  SYS_rt_sigtimedwait, SYS_accept, SYS_accept4, SYS_recvfrom, SYS_recvmsg, SYS_msgrcv, SYS_semop,
  SYS_flock, SYS_fcntl, SYS_io_uring_enter, SYS_restart_syscall, SYS_splice, SYS_sendfile};
static int skipped(long nr){ for (unsigned i=0;i<sizeof skip/sizeof *skip;i++) if (skip[i]==nr) return 1; return 0; }
int main(int argc, char **argv){
  int batches = argc > 1 ? atoi(argv[1]) : 50, calls = 400, crashes = 0;
  for (int b = 0; b < batches; b++) {
    pid_t p = fork();
    if (p == 0) {
      alarm(5);
      for (int i = 0; i < calls; i++) { long nr = rnd() % 335; if (skipped(nr)) continue;
        syscall(nr, arg(), arg(), arg(), arg(), arg(), arg()); }
      _exit(0);
    }
    int st; waitpid(p, &st, 0); if (!WIFEXITED(st)) crashes++;
    rnd();
  }
  printf("batches %d, children killed by signals %d\n", batches, crashes);
  return 0;
}
