//! The syscall table: x86-64 number → name, handler, `--strace` argument formats.
//! Numbers without a row, and rows whose handler is `missing`, return ENOSYS (logged once,
//! counted). Nothing is ever passed to the host.

use std::sync::OnceLock;

use super::Fmt::*;
use super::{file, fs, mm, poll, process, signal, socket, time, Args, Fmt};
use crate::abi::SysResult;
use crate::kernel::Task;

pub type Handler = fn(&mut Task, &Args) -> SysResult;

/// One syscall.
pub struct Row {
    pub nr: u64,
    pub name: &'static str,
    pub handler: Handler,
    pub args: &'static [Fmt],
    pub implemented: bool,
}

fn unimplemented_row(t: &mut Task, _a: &Args) -> SysResult {
    let nr = t.regs.orig_rax;
    super::missing(t, nr)
}

macro_rules! rows {
    ($($nr:literal $name:ident $h:path, [$($f:ident),*];)*) => {
        static ROWS: &[Row] = &[
            $(Row { nr: $nr, name: stringify!($name), handler: $h, args: &[$($f),*], implemented: true },)*
        ];
    };
}

macro_rules! missing_rows {
    ($($nr:literal $name:ident;)*) => {
        static MISSING: &[Row] = &[
            $(Row { nr: $nr, name: stringify!($name), handler: unimplemented_row, args: &[], implemented: false },)*
        ];
    };
}

rows! {
    0 read file::sys_read, [Fd, OutBuf, Int];
    1 write file::sys_write, [Fd, InBuf, Int];
    2 open file::sys_open, [Path, Hex, Oct];
    3 close file::sys_close, [Fd];
    4 stat fs::sys_stat, [Path, Ptr];
    5 fstat fs::sys_fstat, [Fd, Ptr];
    6 lstat fs::sys_lstat, [Path, Ptr];
    7 poll poll::sys_poll, [Ptr, Int, Int];
    8 lseek file::sys_lseek, [Fd, Int, Int];
    9 mmap mm::sys_mmap, [Hex, Int, Int, Hex, Fd, Hex];
    10 mprotect mm::sys_mprotect, [Hex, Int, Int];
    11 munmap mm::sys_munmap, [Hex, Int];
    12 brk mm::sys_brk, [Hex];
    13 rt_sigaction signal::sys_rt_sigaction, [Int, Ptr, Ptr, Int];
    14 rt_sigprocmask signal::sys_rt_sigprocmask, [Int, Ptr, Ptr, Int];
    15 rt_sigreturn signal::sys_rt_sigreturn, [];
    16 ioctl file::sys_ioctl, [Fd, Hex, Hex];
    17 pread64 file::sys_pread64, [Fd, OutBuf, Int, Int];
    18 pwrite64 file::sys_pwrite64, [Fd, InBuf, Int, Int];
    19 readv file::sys_readv, [Fd, Ptr, Int];
    20 writev file::sys_writev, [Fd, Ptr, Int];
    21 access fs::sys_access, [Path, Oct];
    22 pipe file::sys_pipe, [Ptr];
    23 select poll::sys_select, [Int, Ptr, Ptr, Ptr, Ptr];
    24 sched_yield time::sys_sched_yield, [];
    25 mremap mm::sys_mremap, [Hex, Int, Int, Hex, Hex];
    26 msync mm::sys_msync, [Hex, Int, Hex];
    28 madvise mm::sys_madvise, [Hex, Int, Int];
    32 dup file::sys_dup, [Fd];
    33 dup2 file::sys_dup2, [Fd, Fd];
    34 pause signal::sys_pause, [];
    35 nanosleep time::sys_nanosleep, [Ptr, Ptr];
    36 getitimer time::sys_getitimer, [Int, Ptr];
    37 alarm time::sys_alarm, [Int];
    38 setitimer time::sys_setitimer, [Int, Ptr, Ptr];
    39 getpid process::sys_getpid, [];
    40 sendfile file::sys_sendfile, [Fd, Fd, Ptr, Int];
    41 socket socket::sys_socket, [Int, Int, Int];
    42 connect socket::sys_connect, [Fd, Ptr, Int];
    43 accept socket::sys_accept, [Fd, Ptr, Ptr];
    44 sendto socket::sys_sendto, [Fd, InBuf, Int, Hex, Ptr, Int];
    45 recvfrom socket::sys_recvfrom, [Fd, OutBuf, Int, Hex, Ptr, Ptr];
    46 sendmsg socket::sys_sendmsg, [Fd, Ptr, Hex];
    47 recvmsg socket::sys_recvmsg, [Fd, Ptr, Hex];
    48 shutdown socket::sys_shutdown, [Fd, Int];
    49 bind socket::sys_bind, [Fd, Ptr, Int];
    50 listen socket::sys_listen, [Fd, Int];
    51 getsockname socket::sys_getsockname, [Fd, Ptr, Ptr];
    52 getpeername socket::sys_getpeername, [Fd, Ptr, Ptr];
    53 socketpair socket::sys_socketpair, [Int, Int, Int, Ptr];
    54 setsockopt socket::sys_setsockopt, [Fd, Int, Int, Ptr, Int];
    55 getsockopt socket::sys_getsockopt, [Fd, Int, Int, Ptr, Ptr];
    288 accept4 socket::sys_accept4, [Fd, Ptr, Ptr, Hex];
    299 recvmmsg socket::sys_recvmmsg, [Fd, Ptr, Int, Hex, Ptr];
    307 sendmmsg socket::sys_sendmmsg, [Fd, Ptr, Int, Hex];
    56 clone process::sys_clone, [Hex, Hex, Ptr, Ptr, Hex];
    57 fork process::sys_fork, [];
    58 vfork process::sys_vfork, [];
    59 execve process::sys_execve, [Path, Ptr, Ptr];
    322 execveat process::sys_execveat, [Fd, Path, Ptr, Ptr, Hex];
    434 pidfd_open process::sys_pidfd_open, [Int, Hex];
    60 exit process::sys_exit, [Int];
    61 wait4 process::sys_wait4, [Int, Ptr, Hex, Ptr];
    62 kill signal::sys_kill, [Int, Int];
    63 uname process::sys_uname, [Ptr];
    72 fcntl file::sys_fcntl, [Fd, Int, Hex];
    73 flock file::sys_flock, [Fd, Int];
    74 fsync file::sys_fsync, [Fd];
    75 fdatasync file::sys_fsync, [Fd];
    76 truncate fs::sys_truncate, [Path, Int];
    77 ftruncate file::sys_ftruncate, [Fd, Int];
    79 getcwd fs::sys_getcwd, [Ptr, Int];
    80 chdir fs::sys_chdir, [Path];
    81 fchdir fs::sys_fchdir, [Fd];
    82 rename fs::sys_rename, [Path, Path];
    83 mkdir fs::sys_mkdir, [Path, Oct];
    84 rmdir fs::sys_rmdir, [Path];
    85 creat fs::sys_creat, [Path, Oct];
    86 link fs::sys_link, [Path, Path];
    87 unlink fs::sys_unlink, [Path];
    88 symlink fs::sys_symlink, [Path, Path];
    89 readlink fs::sys_readlink, [Path, OutBuf, Int];
    90 chmod fs::sys_chmod, [Path, Oct];
    91 fchmod fs::sys_fchmod, [Fd, Oct];
    92 chown fs::sys_chown, [Path, Int, Int];
    93 fchown fs::sys_fchown, [Fd, Int, Int];
    94 lchown fs::sys_lchown, [Path, Int, Int];
    95 umask fs::sys_umask, [Oct];
    96 gettimeofday time::sys_gettimeofday, [Ptr, Ptr];
    97 getrlimit process::sys_getrlimit, [Int, Ptr];
    98 getrusage process::sys_getrusage, [Int, Ptr];
    99 sysinfo process::sys_sysinfo, [Ptr];
    100 times process::sys_times, [Ptr];
    102 getuid process::sys_getuid, [];
    104 getgid process::sys_getgid, [];
    105 setuid process::sys_setuid, [Int];
    106 setgid process::sys_setgid, [Int];
    107 geteuid process::sys_geteuid, [];
    108 getegid process::sys_getegid, [];
    109 setpgid process::sys_setpgid, [Int, Int];
    110 getppid process::sys_getppid, [];
    111 getpgrp process::sys_getpgrp, [];
    112 setsid process::sys_setsid, [];
    113 setreuid process::sys_setreuid, [Int, Int];
    114 setregid process::sys_setregid, [Int, Int];
    115 getgroups process::sys_getgroups, [Int, Ptr];
    116 setgroups process::sys_setgroups, [Int, Ptr];
    117 setresuid process::sys_setresuid, [Int, Int, Int];
    118 getresuid process::sys_getresuid, [Ptr, Ptr, Ptr];
    119 setresgid process::sys_setresgid, [Int, Int, Int];
    120 getresgid process::sys_getresgid, [Ptr, Ptr, Ptr];
    121 getpgid process::sys_getpgid, [Int];
    122 setfsuid process::sys_setfsuid, [Int];
    123 setfsgid process::sys_setfsgid, [Int];
    124 getsid process::sys_getsid, [Int];
    125 capget process::sys_capget, [Ptr, Ptr];
    126 capset process::sys_capset, [Ptr, Ptr];
    127 rt_sigpending signal::sys_rt_sigpending, [Ptr, Int];
    128 rt_sigtimedwait signal::sys_rt_sigtimedwait, [Ptr, Ptr, Ptr, Int];
    129 rt_sigqueueinfo signal::sys_rt_sigqueueinfo, [Int, Int, Ptr];
    297 rt_tgsigqueueinfo signal::sys_rt_tgsigqueueinfo, [Int, Int, Int, Ptr];
    130 rt_sigsuspend signal::sys_rt_sigsuspend, [Ptr, Int];
    131 sigaltstack signal::sys_sigaltstack, [Ptr, Ptr];
    133 mknod fs::sys_mknod, [Path, Oct, Hex];
    137 statfs fs::sys_statfs, [Path, Ptr];
    138 fstatfs fs::sys_fstatfs, [Fd, Ptr];
    140 getpriority time::sys_getpriority, [Int, Int];
    141 setpriority time::sys_setpriority, [Int, Int, Int];
    142 sched_setparam time::sys_sched_setparam, [Int, Ptr];
    143 sched_getparam time::sys_sched_getparam, [Int, Ptr];
    144 sched_setscheduler time::sys_sched_setscheduler, [Int, Int, Ptr];
    145 sched_getscheduler time::sys_sched_getscheduler, [Int];
    146 sched_get_priority_max time::sys_sched_get_priority_max, [Int];
    147 sched_get_priority_min time::sys_sched_get_priority_min, [Int];
    148 sched_rr_get_interval time::sys_sched_rr_get_interval, [Int, Ptr];
    157 prctl process::sys_prctl, [Int, Hex, Hex, Hex, Hex];
    158 arch_prctl process::sys_arch_prctl, [Hex, Hex];
    160 setrlimit process::sys_setrlimit, [Int, Ptr];
    162 sync file::sys_sync, [];
    170 sethostname process::sys_sethostname, [Ptr, Int];
    186 gettid process::sys_gettid, [];
    188 setxattr fs::sys_setxattr, [Path, Path, Ptr, Int, Hex];
    189 lsetxattr fs::sys_setxattr, [Path, Path, Ptr, Int, Hex];
    190 fsetxattr fs::sys_setxattr, [Fd, Path, Ptr, Int, Hex];
    191 getxattr fs::sys_getxattr, [Path, Path, Ptr, Int];
    192 lgetxattr fs::sys_lgetxattr, [Path, Path, Ptr, Int];
    193 fgetxattr fs::sys_fgetxattr, [Fd, Path, Ptr, Int];
    194 listxattr fs::sys_listxattr, [Path, Ptr, Int];
    195 llistxattr fs::sys_llistxattr, [Path, Ptr, Int];
    196 flistxattr fs::sys_flistxattr, [Fd, Ptr, Int];
    200 tkill signal::sys_tkill, [Int, Int];
    201 time time::sys_time, [Ptr];
    202 futex process::sys_futex, [Ptr, Int, Int, Ptr, Ptr, Int];
    203 sched_setaffinity time::sys_sched_setaffinity, [Int, Int, Ptr];
    204 sched_getaffinity time::sys_sched_getaffinity, [Int, Int, Ptr];
    213 epoll_create poll::sys_epoll_create, [Int];
    217 getdents64 file::sys_getdents64, [Fd, Ptr, Int];
    218 set_tid_address process::sys_set_tid_address, [Ptr];
    221 fadvise64 file::sys_fadvise64, [Fd, Int, Int, Int];
    222 timer_create time::sys_timer_create, [Int, Ptr, Ptr];
    223 timer_settime time::sys_timer_settime, [Int, Hex, Ptr, Ptr];
    224 timer_gettime time::sys_timer_gettime, [Int, Ptr];
    225 timer_getoverrun time::sys_timer_getoverrun, [Int];
    226 timer_delete time::sys_timer_delete, [Int];
    227 clock_settime time::sys_clock_settime, [Int, Ptr];
    228 clock_gettime time::sys_clock_gettime, [Int, Ptr];
    229 clock_getres time::sys_clock_getres, [Int, Ptr];
    230 clock_nanosleep time::sys_clock_nanosleep, [Int, Hex, Ptr, Ptr];
    231 exit_group process::sys_exit_group, [Int];
    232 epoll_wait poll::sys_epoll_wait, [Fd, Ptr, Int, Int];
    233 epoll_ctl poll::sys_epoll_ctl, [Fd, Int, Fd, Ptr];
    234 tgkill signal::sys_tgkill, [Int, Int, Int];
    235 utimes fs::sys_utimes, [Path, Ptr];
    247 waitid process::sys_waitid, [Int, Int, Ptr, Hex, Ptr];
    257 openat file::sys_openat, [Fd, Path, Hex, Oct];
    258 mkdirat fs::sys_mkdirat, [Fd, Path, Oct];
    259 mknodat fs::sys_mknodat, [Fd, Path, Oct, Hex];
    260 fchownat fs::sys_fchownat, [Fd, Path, Int, Int, Hex];
    262 newfstatat fs::sys_newfstatat, [Fd, Path, Ptr, Hex];
    263 unlinkat fs::sys_unlinkat, [Fd, Path, Hex];
    264 renameat fs::sys_renameat, [Fd, Path, Fd, Path];
    265 linkat fs::sys_linkat, [Fd, Path, Fd, Path, Hex];
    266 symlinkat fs::sys_symlinkat, [Path, Fd, Path];
    267 readlinkat fs::sys_readlinkat, [Fd, Path, OutBuf, Int];
    268 fchmodat fs::sys_fchmodat, [Fd, Path, Oct];
    269 faccessat fs::sys_faccessat, [Fd, Path, Oct];
    270 pselect6 poll::sys_pselect6, [Int, Ptr, Ptr, Ptr, Ptr, Ptr];
    271 ppoll poll::sys_ppoll, [Ptr, Int, Ptr, Ptr, Int];
    273 set_robust_list process::sys_set_robust_list, [Ptr, Int];
    274 get_robust_list process::sys_get_robust_list, [Int, Ptr, Ptr];
    280 utimensat fs::sys_utimensat, [Fd, Path, Ptr, Hex];
    281 epoll_pwait poll::sys_epoll_pwait, [Fd, Ptr, Int, Int, Ptr, Int];
    282 signalfd poll::sys_signalfd, [Fd, Ptr, Int];
    283 timerfd_create time::sys_timerfd_create, [Int, Hex];
    284 eventfd poll::sys_eventfd, [Int];
    286 timerfd_settime time::sys_timerfd_settime, [Fd, Hex, Ptr, Ptr];
    287 timerfd_gettime time::sys_timerfd_gettime, [Fd, Ptr];
    289 signalfd4 poll::sys_signalfd4, [Fd, Ptr, Int, Hex];
    290 eventfd2 poll::sys_eventfd2, [Int, Hex];
    291 epoll_create1 poll::sys_epoll_create1, [Hex];
    292 dup3 file::sys_dup3, [Fd, Fd, Hex];
    293 pipe2 file::sys_pipe2, [Ptr, Hex];
    295 preadv file::sys_preadv, [Fd, Ptr, Int, Int];
    296 pwritev file::sys_pwritev, [Fd, Ptr, Int, Int];
    302 prlimit64 process::sys_prlimit64, [Int, Int, Ptr, Ptr];
    309 getcpu process::sys_getcpu, [Ptr, Ptr, Ptr];
    316 renameat2 fs::sys_renameat2, [Fd, Path, Fd, Path, Hex];
    318 getrandom process::sys_getrandom, [OutBuf, Int, Hex];
    332 statx fs::sys_statx, [Fd, Path, Hex, Hex, Ptr];
    436 close_range file::sys_close_range, [Int, Int, Hex];
    439 faccessat2 fs::sys_faccessat2, [Fd, Path, Oct, Hex];
}

missing_rows! {
    27 mincore; 29 shmget; 30 shmat; 31 shmctl; 64 semget; 65 semop;
    66 semctl; 67 shmdt; 68 msgget; 69 msgsnd; 70 msgrcv; 71 msgctl; 78 getdents; 101 ptrace;
    103 syslog; 132 utime; 134 uselib; 135 personality; 136 ustat; 139 sysfs;
    149 mlock; 150 munlock; 151 mlockall;
    152 munlockall; 153 vhangup; 154 modify_ldt; 155 pivot_root; 159 adjtimex; 161 chroot;
    163 acct; 164 settimeofday; 165 mount; 166 umount2; 167 swapon; 168 swapoff; 169 reboot;
    171 setdomainname; 172 iopl; 173 ioperm; 175 init_module; 176 delete_module;
    179 quotactl; 187 readahead;
    197 removexattr; 198 lremovexattr; 199 fremovexattr; 206 io_setup; 207 io_destroy;
    208 io_getevents; 209 io_submit; 210 io_cancel; 216 remap_file_pages; 219 restart_syscall;
    220 semtimedop;
    237 mbind; 238 set_mempolicy;
    239 get_mempolicy; 240 mq_open; 241 mq_unlink; 242 mq_timedsend; 243 mq_timedreceive;
    244 mq_notify; 245 mq_getsetattr; 246 kexec_load; 248 add_key; 249 request_key; 250 keyctl;
    251 ioprio_set; 252 ioprio_get; 253 inotify_init; 254 inotify_add_watch;
    255 inotify_rm_watch; 256 migrate_pages; 261 futimesat; 272 unshare;
    275 splice; 276 tee; 277 sync_file_range; 278 vmsplice; 279 move_pages;
    285 fallocate; 294 inotify_init1; 298 perf_event_open;
    300 fanotify_init; 301 fanotify_mark; 303 name_to_handle_at;
    304 open_by_handle_at; 305 clock_adjtime; 306 syncfs; 308 setns;
    310 process_vm_readv; 311 process_vm_writev; 312 kcmp; 313 finit_module;
    314 sched_setattr; 315 sched_getattr; 317 seccomp; 319 memfd_create; 320 kexec_file_load;
    321 bpf; 323 userfaultfd; 324 membarrier; 325 mlock2; 326 copy_file_range;
    327 preadv2; 328 pwritev2; 329 pkey_mprotect; 330 pkey_alloc; 331 pkey_free; 333 io_pgetevents;
    334 rseq; 424 pidfd_send_signal; 425 io_uring_setup; 426 io_uring_enter;
    427 io_uring_register; 428 open_tree; 429 move_mount; 430 fsopen; 431 fsconfig; 432 fsmount;
    433 fspick; 435 clone3; 437 openat2; 438 pidfd_getfd; 440 process_madvise;
    441 epoll_pwait2; 442 mount_setattr; 447 memfd_secret; 448 process_mrelease;
    449 futex_waitv; 450 set_mempolicy_home_node; 451 cachestat; 452 fchmodat2;
}

/// The row of syscall `nr`, if it has a name.
pub fn get(nr: u64) -> Option<&'static Row> {
    static DENSE: OnceLock<Vec<Option<&'static Row>>> = OnceLock::new();
    let d = DENSE.get_or_init(|| {
        let mut v: Vec<Option<&'static Row>> = vec![None; 512];
        for r in ROWS.iter().chain(MISSING.iter()) {
            v[r.nr as usize] = Some(r);
        }
        v
    });
    d.get(usize::try_from(nr).ok()?).copied().flatten()
}

/// Every named syscall, by number (for `moat syscalls`).
pub fn all() -> Vec<&'static Row> {
    let mut v: Vec<&'static Row> = ROWS.iter().chain(MISSING.iter()).collect();
    v.sort_by_key(|r| r.nr);
    v
}
