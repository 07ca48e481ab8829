//! Host syscalls of the ptrace platform: the stub page, forking stubs, ptrace requests.
#![allow(unsafe_code)]

use std::io;
use std::sync::OnceLock;

use crate::abi::Regs;

/// Size of a host page.
pub const PAGE: u64 = 4096;
/// The top of the user address space on x86-64 with 4-level paging.
pub const TASK_TOP: u64 = 0x7fff_ffff_f000;
/// Signal the sentry sends a stub thread to kick it out of app code.
pub const INTERRUPT_SIGNAL: i32 = libc::SIGSTKFLT;

/// Offsets of the code pieces inside the stub page.
pub const OFF_ENTRY: u64 = 0;
pub const OFF_SYSCALL: u64 = 64;
pub const OFF_CLONE: u64 = 80;

fn last_err(op: &'static str) -> super::super::PlatformError {
    super::super::PlatformError::Host {
        op,
        source: io::Error::last_os_error(),
    }
}

/// The stub page: mapped once in the sentry (so every forked stub inherits it), read+exec.
pub fn stub_base() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| match map_stub_page() {
        Ok(b) => b,
        Err(e) => panic!("cannot map the stub page: {e}"),
    })
}

fn stub_code(base: u64) -> Vec<u8> {
    let mut c = vec![0xcc_u8; PAGE as usize];
    let mut entry = Vec::new();
    // munmap(0, base)
    entry.extend_from_slice(&[0x48, 0xc7, 0xc0, 0x0b, 0, 0, 0]); // mov rax, 11
    entry.extend_from_slice(&[0x31, 0xff]); // xor edi, edi
    entry.extend_from_slice(&[0x48, 0xbe]); // mov rsi, imm64
    entry.extend_from_slice(&base.to_le_bytes());
    entry.extend_from_slice(&[0x0f, 0x05]); // syscall
                                            // munmap(base + PAGE, TASK_TOP - base - PAGE)
    entry.extend_from_slice(&[0x48, 0xc7, 0xc0, 0x0b, 0, 0, 0]);
    entry.extend_from_slice(&[0x48, 0xbf]); // mov rdi, imm64
    entry.extend_from_slice(&(base + PAGE).to_le_bytes());
    entry.extend_from_slice(&[0x48, 0xbe]);
    entry.extend_from_slice(&(TASK_TOP - base - PAGE).to_le_bytes());
    entry.extend_from_slice(&[0x0f, 0x05]);
    entry.extend_from_slice(&[0xcc, 0xeb, 0xfd]); // int3; jmp back to int3
    c[..entry.len()].copy_from_slice(&entry);
    // syscall; int3
    let s = OFF_SYSCALL as usize;
    c[s..s + 3].copy_from_slice(&[0x0f, 0x05, 0xcc]);
    // clone gadget: the parent traps, the child pauses until a sentry thread seizes it.
    let k = OFF_CLONE as usize;
    c[k..k + 17].copy_from_slice(&[
        0x0f, 0x05, // syscall
        0x48, 0x85, 0xc0, // test rax, rax
        0x75, 0x09, // jnz parent
        0xb8, 0x22, 0, 0, 0, // mov eax, SYS_pause
        0x0f, 0x05, // syscall
        0xeb, 0xf7, // jmp back to mov
        0xcc, // parent: int3
    ]);
    c
}

fn map_stub_page() -> io::Result<u64> {
    // SAFETY: an anonymous private mapping at a kernel-chosen address touches no existing
    // memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = p as u64;
    let code = stub_code(base);
    // SAFETY: `p` is a fresh writable mapping of PAGE bytes and `code` is PAGE bytes long.
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), p.cast::<u8>(), code.len()) };
    // SAFETY: `p` is the page mapped above; nothing in the sentry holds references into it.
    if unsafe { libc::mprotect(p, PAGE as usize, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(base)
}

/// A memfd holding a tiny static ELF whose only segment is the stub page at `stub_base()`:
/// new stubs exec it, so they start from an empty address space instead of a copy of the
/// sentry's. Made at boot, before the seccomp filter.
pub fn stub_image() -> Result<i32, super::super::PlatformError> {
    static IMAGE: OnceLock<Result<i32, i32>> = OnceLock::new();
    let r =
        IMAGE.get_or_init(|| make_stub_image().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)));
    r.map_err(|e| super::super::PlatformError::Host {
        op: "stub image",
        source: io::Error::from_raw_os_error(e),
    })
}

fn stub_elf(base: u64) -> Vec<u8> {
    let mut f = vec![0u8; 2 * PAGE as usize];
    f[0..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    f[20..24].copy_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    f[24..32].copy_from_slice(&(base + OFF_ENTRY).to_le_bytes()); // e_entry
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let ph = 64;
    f[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    f[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    f[ph + 8..ph + 16].copy_from_slice(&PAGE.to_le_bytes()); // p_offset
    f[ph + 16..ph + 24].copy_from_slice(&base.to_le_bytes()); // p_vaddr
    f[ph + 24..ph + 32].copy_from_slice(&base.to_le_bytes()); // p_paddr
    f[ph + 32..ph + 40].copy_from_slice(&PAGE.to_le_bytes()); // p_filesz
    f[ph + 40..ph + 48].copy_from_slice(&PAGE.to_le_bytes()); // p_memsz
    f[ph + 48..ph + 56].copy_from_slice(&PAGE.to_le_bytes()); // p_align
    f[PAGE as usize..].copy_from_slice(&stub_code(base));
    f
}

fn make_stub_image() -> io::Result<i32> {
    // SAFETY: the name is a NUL-terminated static string.
    let fd = unsafe { libc::memfd_create(c"moat-stub".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let elf = stub_elf(stub_base());
    let mut done = 0;
    while done < elf.len() {
        let rest = &elf[done..];
        // SAFETY: `rest` is a readable buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return Err(io::Error::last_os_error());
        }
        done += n as usize;
    }
    Ok(fd)
}

/// What the clone child needs; lives on the parent's stack, which the child shares until
/// it execs (CLONE_VM|CLONE_VFORK).
#[repr(C)]
struct ChildArgs {
    keep: i32,
    image: i32,
}

/// Starts a new stub process traced by the calling thread: a vfork-style child that keeps
/// only `keep_fd` (the memory file) and execs the stub image; the stub unmaps what exec made
/// (stack, vDSO) and stops at its int3.
pub fn fork_stub(keep_fd: i32) -> Result<i32, super::super::PlatformError> {
    let image = stub_image()?;
    let mut stack = vec![0u64; 2048];
    let top = stack
        .as_mut_ptr()
        .wrapping_add(stack.len())
        .cast::<libc::c_void>();
    let mut args = ChildArgs {
        keep: keep_fd,
        image,
    };
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: `stub_child` runs on `stack` (alive until the child execs, since CLONE_VFORK
    // suspends this thread until then) and only makes raw syscalls; `args` outlives it too.
    let pid = unsafe { libc::clone(stub_child, top, flags, (&mut args as *mut ChildArgs).cast()) };
    drop(stack);
    if pid < 0 {
        return Err(last_err("clone stub"));
    }
    // The exec stops the traced child with SIGTRAP before its first instruction; let it run
    // the stub's entry, which unmaps everything else and stops at int3.
    wait_stopped(pid)?;
    resume(pid, false)?;
    wait_stopped(pid)?;
    set_options(pid)?;
    Ok(pid)
}

extern "C" fn stub_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the parent's ChildArgs, alive while this child runs (vfork).
    let a = unsafe { &*arg.cast::<ChildArgs>() };
    // SAFETY: PTRACE_TRACEME takes no pointers.
    unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
    let (lo, hi) = if a.keep < a.image {
        (a.keep, a.image)
    } else {
        (a.image, a.keep)
    };
    let (lo, hi) = (lo.max(0) as libc::c_uint, hi.max(0) as libc::c_uint);
    if lo > 0 {
        // SAFETY: close_range takes no pointers; this child has its own fd table (no
        // CLONE_FILES).
        unsafe { libc::syscall(libc::SYS_close_range, 0, lo - 1, 0) };
    }
    if hi > lo + 1 {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_close_range, lo + 1, hi - 1, 0) };
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, hi + 1, libc::c_uint::MAX, 0) };
    // The memory file must survive exec; the image fd closes with it.
    // SAFETY: fcntl(F_SETFD) takes no pointers.
    unsafe { libc::fcntl(a.keep, libc::F_SETFD, 0) };
    let empty: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the path is an empty NUL-terminated string and argv/envp are NULL-terminated
    // arrays, all alive for the call; AT_EMPTY_PATH executes the image fd itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            a.image,
            c"".as_ptr(),
            empty.as_ptr(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    // SAFETY: exit takes no pointers; only reached if exec failed.
    unsafe { libc::syscall(libc::SYS_exit, 127) };
    127
}

/// Seizes a stub thread that is pausing in the clone gadget and stops it.
pub fn seize(pid: i32) -> Result<(), super::super::PlatformError> {
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    // SAFETY: PTRACE_SEIZE takes the options as its data argument, no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, opts) } != 0 {
        return Err(last_err("PTRACE_SEIZE"));
    }
    // SAFETY: PTRACE_INTERRUPT takes no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) } != 0 {
        return Err(last_err("PTRACE_INTERRUPT"));
    }
    wait_stopped(pid).map(|_| ())
}

fn set_options(pid: i32) -> Result<(), super::super::PlatformError> {
    let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    // SAFETY: PTRACE_SETOPTIONS takes the options as its data argument, no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts) } != 0 {
        return Err(last_err("PTRACE_SETOPTIONS"));
    }
    Ok(())
}

/// What waitpid saw.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// A syscall-entry stop (TRACESYSGOOD).
    Syscall,
    /// A signal-delivery stop or an event stop with this signal.
    Signal(i32),
    /// The thread exited or was killed.
    Gone,
}

/// Waits for the next stop of `pid`.
pub fn wait(pid: i32) -> Result<Stop, super::super::PlatformError> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable c_int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if e.raw_os_error() == Some(libc::ECHILD) {
                return Ok(Stop::Gone);
            }
            return Err(super::super::PlatformError::Host {
                op: "waitpid",
                source: e,
            });
        }
        break;
    }
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        return Ok(Stop::Gone);
    }
    let sig = libc::WSTOPSIG(status);
    if sig == (libc::SIGTRAP | 0x80) {
        return Ok(Stop::Syscall);
    }
    Ok(Stop::Signal(sig))
}

/// Waits until `pid` is in a signal or event stop (used right after creating a stub).
pub fn wait_stopped(pid: i32) -> Result<i32, super::super::PlatformError> {
    match wait(pid)? {
        Stop::Signal(s) => Ok(s),
        Stop::Syscall => Ok(libc::SIGTRAP),
        Stop::Gone => Err(super::super::PlatformError::StubGone { pid }),
    }
}

pub fn get_regs(pid: i32, regs: &mut Regs) -> Result<(), super::super::PlatformError> {
    // SAFETY: `regs` is a valid, writable user_regs_struct, as PTRACE_GETREGS requires.
    if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, regs as *mut Regs) } != 0 {
        return Err(last_err("PTRACE_GETREGS"));
    }
    Ok(())
}

pub fn set_regs(pid: i32, regs: &Regs) -> Result<(), super::super::PlatformError> {
    // SAFETY: `regs` is a valid user_regs_struct that the kernel only reads.
    if unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, regs as *const Regs) } != 0 {
        return Err(last_err("PTRACE_SETREGS"));
    }
    Ok(())
}

/// Resumes with PTRACE_SYSEMU (next syscall stops without running) or PTRACE_CONT.
pub fn resume(pid: i32, sysemu: bool) -> Result<(), super::super::PlatformError> {
    let req = if sysemu {
        libc::PTRACE_SYSEMU
    } else {
        libc::PTRACE_CONT
    };
    // SAFETY: resuming requests take no pointers; data 0 suppresses any pending signal.
    if unsafe { libc::ptrace(req, pid, 0, 0) } != 0 {
        return Err(last_err("ptrace resume"));
    }
    Ok(())
}

/// (si_signo, si_code, si_addr) of the signal `pid` is stopped with.
pub fn get_siginfo(pid: i32) -> Result<(i32, i32, u64), super::super::PlatformError> {
    // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is a valid, writable siginfo_t.
    if unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            pid,
            0,
            &mut si as *mut libc::siginfo_t,
        )
    } != 0
    {
        return Err(last_err("PTRACE_GETSIGINFO"));
    }
    // SAFETY: for fault signals the kernel fills si_addr; reading the union field is defined
    // for any bit pattern.
    let addr = unsafe { si.si_addr() } as u64;
    Ok((si.si_signo, si.si_code, addr))
}

const NT_X86_XSTATE: libc::c_int = 0x202;
/// Big enough for any XSAVE layout this machine's kernel reports.
pub const XSTATE_MAX: usize = 8192;

pub fn get_xstate(pid: i32) -> Result<Vec<u8>, super::super::PlatformError> {
    let mut buf = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, which is writable for its whole length.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r != 0 {
        return Err(last_err("PTRACE_GETREGSET xstate"));
    }
    buf.truncate(iov.iov_len);
    Ok(buf)
}

pub fn set_xstate(pid: i32, state: &[u8]) -> Result<(), super::super::PlatformError> {
    let mut iov = libc::iovec {
        iov_base: state.as_ptr() as *mut libc::c_void,
        iov_len: state.len(),
    };
    // SAFETY: `iov` describes `state`, which the kernel only reads.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            pid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    if r != 0 {
        return Err(last_err("PTRACE_SETREGSET xstate"));
    }
    Ok(())
}

/// Sends the interrupt signal to a stub thread (a process of its own).
pub fn interrupt(pid: i32) {
    // SAFETY: tgkill takes no pointers; a stale pid at worst fails with ESRCH.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, pid, INTERRUPT_SIGNAL) };
}

/// Kills a stub thread and reaps it.
pub fn kill_and_reap(pid: i32) {
    // SAFETY: kill takes no pointers.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: `status` is a valid, writable c_int.
    unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
}

static ZOMBIES: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Remembers a stub leader that may linger as a zombie once its threads are gone.
pub fn reap_later(pid: i32) {
    ZOMBIES.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// Reaps the remembered stub leaders that have ended.
pub fn reap_zombies() {
    let mut z = ZOMBIES.lock().unwrap_or_else(|e| e.into_inner());
    z.retain(|&pid| {
        let mut status = 0;
        // SAFETY: `status` is a valid, writable c_int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
        r == 0
    });
}
