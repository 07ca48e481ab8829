//! Linux x86-64 ABI: numbers and `#[repr(C)]` structs the app sees. The only place that
//! names them (values come from the `libc` crate where it has them).

pub mod errno;

pub use errno::{Errno, SysResult};

/// The registers of an app thread, laid out as `struct user_regs_struct`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// `struct stat` for x86-64.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub pad0: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: i64,
    pub atime_nsec: i64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub reserved: [i64; 3],
}

/// Plain-old-data structs that may be copied to and from app memory as bytes.
///
/// Every implementor is `#[repr(C)]`, has no padding the app could not see anyway, and
/// accepts any bit pattern.
pub trait Pod: Copy + Default + 'static {}
impl Pod for Regs {}
impl Pod for Stat {}
impl Pod for u8 {}
impl Pod for u16 {}
impl Pod for u32 {}
impl Pod for u64 {}
impl Pod for i32 {}
impl Pod for i64 {}
impl Pod for i16 {}
impl<const N: usize> Pod for [u8; N] where [u8; N]: Default {}
impl<const N: usize> Pod for [u64; N] where [u64; N]: Default {}
impl<const N: usize> Pod for [i32; N] where [i32; N]: Default {}

/// `struct timespec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}
impl Pod for Timespec {}

/// `struct timeval`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}
impl Pod for Timeval {}

/// `struct iovec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}
impl Pod for Iovec {}

/// `struct rlimit`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}
impl Pod for Rlimit {}

/// `struct pollfd`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}
impl Pod for PollFd {}

/// `struct epoll_event` (packed on x86-64).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}
impl Pod for EpollEvent {}

/// `struct sigaction` as rt_sigaction(2) takes it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}
impl Pod for SigAction {}

/// `stack_t`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigStack {
    pub sp: u64,
    pub flags: i32,
    pub pad: i32,
    pub size: u64,
}
impl Pod for SigStack {}

/// `struct rusage`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Rusage {
    pub utime: Timeval,
    pub stime: Timeval,
    pub rest: [i64; 14],
}
impl Pod for Rusage {}

/// `struct utsname`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Utsname {
    pub fields: [[u8; 65]; 6],
}
impl Default for Utsname {
    fn default() -> Self {
        Utsname {
            fields: [[0; 65]; 6],
        }
    }
}
impl Pod for Utsname {}

/// `struct sysinfo`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub pad2: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub pad3: u32,
}
impl Pod for Sysinfo {}

/// `struct termios` (kernel layout, as TCGETS returns it).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}
impl Pod for Termios {}

/// `struct winsize`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Winsize {
    pub row: u16,
    pub col: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}
impl Pod for Winsize {}

/// Signal numbers and masks.
pub mod signal {
    pub const NSIG: usize = 64;
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGILL: i32 = 4;
    pub const SIGTRAP: i32 = 5;
    pub const SIGABRT: i32 = 6;
    pub const SIGBUS: i32 = 7;
    pub const SIGFPE: i32 = 8;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGSEGV: i32 = 11;
    pub const SIGUSR2: i32 = 12;
    pub const SIGPIPE: i32 = 13;
    pub const SIGALRM: i32 = 14;
    pub const SIGTERM: i32 = 15;
    pub const SIGSTKFLT: i32 = 16;
    pub const SIGCHLD: i32 = 17;
    pub const SIGCONT: i32 = 18;
    pub const SIGSTOP: i32 = 19;
    pub const SIGTSTP: i32 = 20;
    pub const SIGTTIN: i32 = 21;
    pub const SIGTTOU: i32 = 22;
    pub const SIGURG: i32 = 23;
    pub const SIGXCPU: i32 = 24;
    pub const SIGXFSZ: i32 = 25;
    pub const SIGVTALRM: i32 = 26;
    pub const SIGPROF: i32 = 27;
    pub const SIGWINCH: i32 = 28;
    pub const SIGIO: i32 = 29;
    pub const SIGPWR: i32 = 30;
    pub const SIGSYS: i32 = 31;

    pub const SIG_DFL: u64 = 0;
    pub const SIG_IGN: u64 = 1;

    pub const SA_NOCLDSTOP: u64 = 1;
    pub const SA_NOCLDWAIT: u64 = 2;
    pub const SA_SIGINFO: u64 = 4;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;

    pub const SS_ONSTACK: i32 = 1;
    pub const SS_DISABLE: i32 = 2;

    /// si_code values.
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_QUEUE: i32 = -1;
    pub const SI_TIMER: i32 = -2;
    pub const SI_TKILL: i32 = -6;
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
    pub const CLD_STOPPED: i32 = 5;
    pub const CLD_CONTINUED: i32 = 6;

    /// The bit of `sig` in a 64-bit mask.
    pub const fn bit(sig: i32) -> u64 {
        1u64 << (sig - 1)
    }
    /// Signals that can never be blocked, caught or ignored.
    pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);
}
