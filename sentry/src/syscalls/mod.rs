//! The syscall layer: decoding arguments, the table, dispatch, restart codes and `--strace`.

pub mod file;
pub mod fs;
pub mod mm;
pub mod poll;
pub mod process;
pub mod signal;
pub mod socket;
pub mod table;
pub mod time;

use crate::abi::{Errno, SysResult};
use crate::kernel::Task;

/// A handler's internal result: registers were set by the handler (rt_sigreturn, execve).
pub const EJUSTRETURN: Errno = Errno(-2);

/// The six syscall argument registers. The only place raw registers become typed values.
#[derive(Debug, Clone, Copy)]
pub struct Args(pub [u64; 6]);

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
impl Args {
    pub fn fd(&self, i: usize) -> i32 {
        self.0[i] as i32
    }
    pub fn i32(&self, i: usize) -> i32 {
        self.0[i] as i32
    }
    pub fn u32(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    pub fn i64(&self, i: usize) -> i64 {
        self.0[i] as i64
    }
    pub fn u64(&self, i: usize) -> u64 {
        self.0[i]
    }
    pub fn usize(&self, i: usize) -> usize {
        self.0[i] as usize
    }
    pub fn ptr(&self, i: usize) -> u64 {
        self.0[i]
    }
}

/// How `--strace` shows an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Int,
    Hex,
    Oct,
    Fd,
    /// A NUL-terminated path.
    Path,
    /// A buffer the app passes in; its length is the next argument.
    InBuf,
    /// A buffer the kernel fills; shown after the call, length = result.
    OutBuf,
    Ptr,
}

/// Handles the syscall the task stopped at and sets its return value.
pub fn dispatch(t: &mut Task) {
    let nr = t.regs.orig_rax;
    let r = &t.regs;
    let a = Args([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]);
    let row = table::get(nr);
    let before = if t.k.strace {
        Some(strace_args(t, row, &a))
    } else {
        None
    };
    let res = match row {
        Some(row) => (row.handler)(t, &a),
        None => missing(t, nr),
    };
    if let Some(before) = before {
        strace_log(t, nr, row, &a, before, &res);
    }
    match res {
        Ok(v) => t.regs.rax = v,
        Err(e) if e == EJUSTRETURN => {}
        Err(e)
            if e == Errno::ERESTARTSYS
                || e == Errno::ERESTARTNOHAND
                || e == Errno::ERESTART_RESTARTBLOCK =>
        {
            t.regs.rax = e.as_ret();
            t.restart = Some((e, nr));
        }
        Err(e) => t.regs.rax = e.as_ret(),
    }
}

/// An unimplemented syscall: ENOSYS, logged once, counted.
pub fn missing(t: &mut Task, nr: u64) -> SysResult {
    let mut m = t.k.enosys.lock().unwrap_or_else(|e| e.into_inner());
    let c = m.entry(nr).or_insert(0);
    if *c == 0 {
        let name = table::get(nr).map(|r| r.name).unwrap_or("?");
        tracing::info!(nr, name, "unimplemented syscall: ENOSYS");
    }
    *c += 1;
    Err(Errno::ENOSYS)
}

fn quote(b: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(max) {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    if b.len() > max {
        s.push_str("...");
    }
    s
}

fn strace_args(t: &Task, row: Option<&table::Row>, a: &Args) -> Vec<String> {
    let Some(row) = row else {
        return a.0.iter().map(|v| format!("{v:#x}")).collect();
    };
    row.args
        .iter()
        .enumerate()
        .map(|(i, f)| match f {
            Fmt::Int => format!("{}", a.i64(i)),
            Fmt::Hex | Fmt::Ptr => format!("{:#x}", a.u64(i)),
            Fmt::Oct => format!("{:#o}", a.u64(i)),
            Fmt::Fd if a.i32(i) == -100 => "AT_FDCWD".to_string(),
            Fmt::Fd => format!("{}", a.i32(i)),
            Fmt::Path => match t.mm.read_cstr(a.ptr(i), 4096) {
                Ok(p) => quote(&p, 256),
                Err(_) => format!("{:#x}", a.u64(i)),
            },
            Fmt::InBuf => {
                let n = a.usize(i + 1).min(64);
                let mut b = vec![0u8; n];
                match t.mm.copy_in(a.ptr(i), &mut b) {
                    Ok(()) => quote(&b, 64),
                    Err(_) => format!("{:#x}", a.u64(i)),
                }
            }
            Fmt::OutBuf => format!("{:#x}", a.u64(i)),
        })
        .collect()
}

fn strace_log(
    t: &Task,
    nr: u64,
    row: Option<&table::Row>,
    a: &Args,
    mut args: Vec<String>,
    res: &SysResult,
) {
    if let (Some(row), Ok(n)) = (row, res) {
        for (i, f) in row.args.iter().enumerate() {
            if *f == Fmt::OutBuf {
                let len = (*n as usize).min(64);
                let mut b = vec![0u8; len];
                if t.mm.copy_in(a.ptr(i), &mut b).is_ok() {
                    args[i] = quote(&b, 64);
                }
            }
        }
    }
    let name = row
        .map(|r| r.name.to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"));
    let ret = match res {
        Ok(v) if *v > 0xffff_ffff => format!("{v:#x}"),
        Ok(v) => format!("{v}"),
        Err(e) if *e == EJUSTRETURN => "?".to_string(),
        Err(e) => format!("-1 {} ({})", e.name(), e.0),
    };
    eprintln!("[{:>4}] {}({}) = {}", t.tid(), name, args.join(", "), ret);
}
