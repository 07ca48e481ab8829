//! Socket syscalls: decoding sockaddrs, iovecs, msghdrs and control messages for `net`.

use std::sync::Arc;
use std::time::Duration;

use super::Args;
use crate::abi::{Errno, Iovec, SysResult, Timeval};
use crate::kernel::Task;
use crate::net::*;
use crate::vfs::File;

/// Largest sockaddr the kernel copies in (`sizeof(struct sockaddr_storage)`).
const MAX_ADDR: usize = 128;
/// Largest single message gathered from the app at once; stream sends loop over chunks.
const SEND_CHUNK: usize = 1 << 20;
/// Largest message of a non-stream socket gathered at all (every family's limit is lower).
const DGRAM_MAX: usize = 1 << 26;
/// Largest buffer a receive allocates (datagrams are smaller; streams return short).
const RECV_MAX: usize = 4 << 20;
/// Most fds in one SCM_RIGHTS message (Linux's SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;
const CMSG_HDR: usize = 16;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// The socket an fd names, with the file (for its flags).
fn sock_of(t: &Task, fd: i32) -> Result<(Arc<File>, Arc<dyn Socket>), Errno> {
    let f = t.file(fd)?;
    let s = SocketFile::of(&f)?.sock.clone();
    Ok((f, s))
}

fn sockfile(f: &File) -> &SocketFile {
    // Only called on files `sock_of` already checked.
    SocketFile::of(f).expect("checked socket file")
}

fn read_addr(t: &Task, ptr: u64, len: u32) -> Result<Vec<u8>, Errno> {
    let len = len as i32;
    if len < 0 || len as usize > MAX_ADDR {
        return Err(Errno::EINVAL);
    }
    let mut v = vec![0u8; len as usize];
    t.mm.copy_in(ptr, &mut v)?;
    Ok(v)
}

/// Writes a sockaddr the way the kernel does: at most `*lenp` bytes, then the full length.
fn write_addr(t: &Task, ptr: u64, lenp: u64, addr: &[u8]) -> Result<(), Errno> {
    if ptr == 0 || lenp == 0 {
        return Ok(());
    }
    let room: i32 = t.mm.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = addr.len().min(room as usize);
    t.mm.copy_out(ptr, &addr[..n])?;
    t.mm.write_obj(lenp, &(addr.len() as u32))
}

fn split_type(ty: i32) -> Result<(i32, i32), Errno> {
    let flags = ty & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    let kind = ty & !(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if !(0..=15).contains(&kind) {
        return Err(Errno::EINVAL);
    }
    Ok((kind, flags))
}

pub fn sys_socket(t: &mut Task, a: &Args) -> SysResult {
    let (kind, flags) = split_type(a.i32(1))?;
    let s = create(t, a.i32(0), kind, a.i32(2))?;
    let f = SocketFile::open(s, flags);
    t.install(f, flags & SOCK_CLOEXEC != 0).map(|fd| fd as u64)
}

pub fn sys_socketpair(t: &mut Task, a: &Args) -> SysResult {
    let (kind, flags) = split_type(a.i32(1))?;
    let (x, y) = match a.i32(0) {
        AF_UNIX => unix::pair(t, kind, a.i32(2))?,
        AF_INET | AF_INET6 => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let fx = t.install(SocketFile::open(x, flags), cloexec)?;
    let fy = match t.install(SocketFile::open(y, flags), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            t.fds().remove(fx);
            return Err(e);
        }
    };
    if let Err(e) = t.mm.write_obj(a.ptr(3), &[fx, fy]) {
        t.fds().remove(fx);
        t.fds().remove(fy);
        return Err(e);
    }
    Ok(0)
}

pub fn sys_bind(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = sock_of(t, a.fd(0))?;
    let addr = read_addr(t, a.ptr(1), a.u32(2))?;
    s.bind(t, &addr)?;
    Ok(0)
}

pub fn sys_listen(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = sock_of(t, a.fd(0))?;
    s.listen(t, a.i32(1))?;
    Ok(0)
}

fn accept(t: &mut Task, fd: i32, addr: u64, lenp: u64, flags: i32) -> SysResult {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (f, s) = sock_of(t, fd)?;
    let ctx = sockfile(&f).ctx(t, f.nonblock(), false);
    let (new, peer) = s.accept(&ctx)?;
    let nf = SocketFile::open(new, flags);
    if addr != 0 {
        // Linux checks the length word before it hands out the fd.
        let room: i32 = t.mm.read_obj(lenp)?;
        if room < 0 {
            return Err(Errno::EINVAL);
        }
    }
    let nfd = t.install(nf, flags & SOCK_CLOEXEC != 0)?;
    if let Err(e) = write_addr(t, addr, lenp, &peer) {
        t.fds().remove(nfd);
        return Err(e);
    }
    Ok(nfd as u64)
}

pub fn sys_accept(t: &mut Task, a: &Args) -> SysResult {
    accept(t, a.fd(0), a.ptr(1), a.ptr(2), 0)
}

pub fn sys_accept4(t: &mut Task, a: &Args) -> SysResult {
    accept(t, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3))
}

pub fn sys_connect(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = sock_of(t, a.fd(0))?;
    let addr = read_addr(t, a.ptr(1), a.u32(2))?;
    let ctx = sockfile(&f).ctx(t, f.nonblock(), true);
    s.connect(&ctx, &addr)?;
    Ok(0)
}

pub fn sys_shutdown(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = sock_of(t, a.fd(0))?;
    let how = a.i32(1);
    if !(SHUT_RD..=SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL);
    }
    s.shutdown(how)?;
    Ok(0)
}

pub fn sys_getsockname(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = sock_of(t, a.fd(0))?;
    let addr = s.sockname()?;
    write_addr_checked(t, a.ptr(1), a.ptr(2), &addr)
}

pub fn sys_getpeername(t: &mut Task, a: &Args) -> SysResult {
    let (_, s) = sock_of(t, a.fd(0))?;
    let addr = s.peername()?;
    write_addr_checked(t, a.ptr(1), a.ptr(2), &addr)
}

/// getsockname/getpeername: the length pointer is mandatory.
fn write_addr_checked(t: &Task, ptr: u64, lenp: u64, addr: &[u8]) -> SysResult {
    let room: i32 = t.mm.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = addr.len().min(room as usize);
    if n > 0 {
        t.mm.copy_out(ptr, &addr[..n])?;
    }
    t.mm.write_obj(lenp, &(addr.len() as u32))?;
    Ok(0)
}

/// Files named by an SCM_RIGHTS payload.
fn rights_of(t: &Task, data: &[u8]) -> Result<Vec<Arc<File>>, Errno> {
    let n = data.len() / 4;
    if n > SCM_MAX_FD {
        return Err(Errno::EINVAL);
    }
    (0..n)
        .map(|i| {
            let fd = i32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().unwrap_or([0xff; 4]));
            t.file(fd)
        })
        .collect()
}

/// The credentials an SCM_CREDENTIALS payload claims, checked as Linux's `scm_check_creds`:
/// the sender's own pid and any of its real, effective or saved ids, anything for root;
/// ids of -1 are EINVAL and a pid that names no process ESRCH.
fn check_creds(t: &Task, data: &[u8]) -> Result<Ucred, Errno> {
    if data.len() != 12 {
        return Err(Errno::EINVAL);
    }
    let c = Ucred::from_bytes(data).ok_or(Errno::EINVAL)?;
    if c.uid == u32::MAX || c.gid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    let cr = &t.creds;
    let root = cr.euid == 0;
    let pid_ok = root || c.pid == t.tgid();
    let uid_ok = root || [cr.uid, cr.euid, cr.suid].contains(&c.uid);
    let gid_ok = root || [cr.gid, cr.egid, cr.sgid].contains(&c.gid);
    if !(pid_ok && uid_ok && gid_ok) {
        return Err(Errno::EPERM);
    }
    if c.pid <= 0 || t.k.group(c.pid).is_none() {
        return Err(Errno::ESRCH);
    }
    Ok(c)
}

/// Parses a control buffer into SCM_RIGHTS files and SCM_CREDENTIALS.
fn parse_control(t: &Task, ptr: u64, len: usize, msg: &mut SendMsg<'_>) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    if len > 1 << 16 {
        return Err(Errno::ENOBUFS);
    }
    let mut buf = vec![0u8; len];
    t.mm.copy_in(ptr, &mut buf)?;
    let mut off = 0;
    while off + CMSG_HDR <= len {
        let clen = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap_or_default()) as usize;
        let level = i32::from_le_bytes(buf[off + 8..off + 12].try_into().unwrap_or_default());
        let ty = i32::from_le_bytes(buf[off + 12..off + 16].try_into().unwrap_or_default());
        if clen < CMSG_HDR || clen > len - off {
            return Err(Errno::EINVAL);
        }
        let data = &buf[off + CMSG_HDR..off + clen];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let mut files = rights_of(t, data)?;
                    msg.rights.append(&mut files);
                    if msg.rights.len() > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                }
                SCM_CREDENTIALS => msg.creds = Some(check_creds(t, data)?),
                _ => return Err(Errno::EINVAL),
            }
        }
        off += cmsg_align(clen);
    }
    Ok(())
}

/// Gathers the bytes of `iovs`, at most `max`.
fn gather(t: &Task, iovs: &[Iovec], skip: usize, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut skip = skip;
    for iov in iovs {
        let len = iov.len as usize;
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = (len - skip).min(max - out.len());
        let start = out.len();
        out.resize(start + take, 0);
        t.mm.copy_in(iov.base + skip as u64, &mut out[start..])?;
        skip = 0;
        if out.len() == max {
            break;
        }
    }
    Ok(out)
}

/// Scatters `data` into `iovs`; returns the bytes written.
fn scatter(t: &Task, iovs: &[Iovec], data: &[u8]) -> Result<usize, Errno> {
    let mut done = 0;
    for iov in iovs {
        if done == data.len() {
            break;
        }
        let n = (iov.len as usize).min(data.len() - done);
        t.mm.copy_out(iov.base, &data[done..done + n])?;
        done += n;
    }
    Ok(done)
}

fn iov_total(iovs: &[Iovec]) -> usize {
    iovs.iter().map(|v| v.len as usize).sum()
}

/// Sends what `iovs` hold. Stream sockets take it a chunk at a time; EPIPE on them raises
/// SIGPIPE unless MSG_NOSIGNAL.
fn send_iovs(t: &Task, f: &File, iovs: &[Iovec], msg: SendMsg<'_>) -> Result<usize, Errno> {
    let sf = sockfile(f);
    let nonblock = f.nonblock() || msg.flags & MSG_DONTWAIT != 0;
    let ctx = sf.ctx(t, nonblock, true);
    let total = iov_total(iovs);
    let stream = sf.sock.kind() == SOCK_STREAM;
    let flags = msg.flags;
    if !stream && total > DGRAM_MAX {
        // No family takes a message this large; refuse before gathering it.
        return Err(Errno::EMSGSIZE);
    }
    let res = if stream && total > SEND_CHUNK {
        let mut done = 0;
        let mut first = Some(msg);
        let mut out = Ok(0);
        while done < total {
            let data = gather(t, iovs, done, SEND_CHUNK)?;
            let m = match first.take() {
                Some(m) => SendMsg { data: &data, ..m },
                None => SendMsg {
                    data: &data,
                    flags,
                    ..SendMsg::default()
                },
            };
            match sf.sock.send(&ctx, m) {
                Ok(n) => {
                    done += n;
                    out = Ok(done);
                    if n < data.len() {
                        break;
                    }
                }
                Err(_) if done > 0 => break,
                Err(e) => {
                    out = Err(e);
                    break;
                }
            }
        }
        out
    } else {
        let data = gather(t, iovs, 0, total)?;
        sf.sock.send(&ctx, SendMsg { data: &data, ..msg })
    };
    // Only stream sockets signal (Linux's unix_stream_sendmsg and TCP; never datagrams).
    if res == Err(Errno::EPIPE) && flags & MSG_NOSIGNAL == 0 && stream {
        let info = crate::kernel::signal::SigInfo::kernel(crate::abi::signal::SIGPIPE);
        t.k.signal_task(&t.h, info);
    }
    res
}

fn check_send_flags(flags: u32) -> Result<(), Errno> {
    if flags & MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

pub fn sys_sendto(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    let flags = a.u32(3);
    check_send_flags(flags)?;
    let addr = if a.ptr(4) != 0 {
        Some(read_addr(t, a.ptr(4), a.u32(5))?)
    } else {
        None
    };
    let iov = [Iovec {
        base: a.ptr(1),
        len: a.u64(2).min(0x7fff_f000),
    }];
    let msg = SendMsg {
        addr: addr.as_deref(),
        flags,
        ..SendMsg::default()
    };
    send_iovs(t, &f, &iov, msg).map(|n| n as u64)
}

/// A decoded `struct msghdr`.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(t: &Task, p: u64) -> Result<MsgHdr, Errno> {
    let mut b = [0u8; 56];
    t.mm.copy_in(p, &mut b)?;
    let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    Ok(MsgHdr {
        name: u64at(0),
        namelen: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
        iov: u64at(16),
        iovlen: u64at(24),
        control: u64at(32),
        controllen: u64at(40),
    })
}

fn msg_iovs(t: &Task, h: &MsgHdr) -> Result<Vec<Iovec>, Errno> {
    if h.iovlen > 1024 {
        return Err(Errno::EMSGSIZE);
    }
    t.iovecs(h.iov, h.iovlen as i32)
}

fn sendmsg_one(t: &Task, f: &File, p: u64, flags: u32) -> Result<usize, Errno> {
    check_send_flags(flags)?;
    let h = read_msghdr(t, p)?;
    let iovs = msg_iovs(t, &h)?;
    let addr = if h.name != 0 && h.namelen != 0 {
        Some(read_addr(t, h.name, h.namelen)?)
    } else {
        None
    };
    let mut msg = SendMsg {
        addr: addr.as_deref(),
        flags,
        ..SendMsg::default()
    };
    if h.control != 0 {
        parse_control(t, h.control, h.controllen as usize, &mut msg)?;
    }
    send_iovs(t, f, &iovs, msg)
}

pub fn sys_sendmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    sendmsg_one(t, &f, a.ptr(1), a.u32(2)).map(|n| n as u64)
}

pub fn sys_sendmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    let (vec, vlen, flags) = (a.ptr(1), a.u32(2).min(1024), a.u32(3));
    let mut sent = 0u32;
    while sent < vlen {
        let p = vec + u64::from(sent) * 64;
        match sendmsg_one(t, &f, p, flags) {
            Ok(n) => t.mm.write_obj(p + 56, &(n as u32))?,
            Err(_) if sent > 0 => break,
            Err(e) => return Err(e),
        }
        sent += 1;
    }
    Ok(u64::from(sent))
}

/// Receives into `iovs`; returns (bytes for the syscall's result, the message).
fn recv_iovs(
    t: &Task,
    f: &File,
    iovs: &[Iovec],
    flags: u32,
    nonblock: bool,
) -> Result<(usize, RecvMsg), Errno> {
    let sf = sockfile(f);
    let ctx = sf.ctx(
        t,
        nonblock || f.nonblock() || flags & MSG_DONTWAIT != 0,
        false,
    );
    let want = iov_total(iovs).min(RECV_MAX);
    let mut bounce = crate::syscalls::file::Bounce::take(want);
    if let Some(r) = sf.sock.recv_into(&ctx, bounce.buf(), flags) {
        let n = r?;
        let n = scatter(t, iovs, &bounce.buf()[..n])?;
        return Ok((n, RecvMsg::default()));
    }
    drop(bounce);
    let m = sf.sock.recv(&ctx, want, flags)?;
    let n = scatter(t, iovs, &m.data)?;
    let ret = if flags & MSG_TRUNC != 0 && sf.sock.kind() != SOCK_STREAM {
        m.full_len.max(n)
    } else {
        n
    };
    Ok((ret, m))
}

/// readv(2) of a socket: one receive scattered over `iovs`, nothing when they are empty.
pub fn readv(t: &Task, f: &File, iovs: &[Iovec]) -> SysResult {
    if iov_total(iovs) == 0 {
        return Ok(0);
    }
    recv_iovs(t, f, iovs, 0, false).map(|(n, _)| n as u64)
}

pub fn sys_recvfrom(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    let flags = a.u32(3);
    let iov = [Iovec {
        base: a.ptr(1),
        len: a.u64(2).min(0x7fff_f000),
    }];
    let (n, m) = recv_iovs(t, &f, &iov, flags, false)?;
    if a.ptr(4) != 0 {
        let addr = m.addr.unwrap_or_default();
        write_addr(t, a.ptr(4), a.ptr(5), &addr)?;
    }
    Ok(n as u64)
}

/// Writes the control messages of `m` into the app's buffer; returns (bytes used, extra
/// msg_flags). Files that do not fit are dropped (closed), as Linux does.
fn put_control(
    t: &Task,
    ptr: u64,
    room: usize,
    m: &mut RecvMsg,
    cloexec: bool,
) -> Result<(usize, u32), Errno> {
    let mut out: Vec<u8> = Vec::new();
    let mut flags = 0;
    let push = |out: &mut Vec<u8>, ty: i32, data: &[u8]| {
        let len = CMSG_HDR + data.len();
        out.extend_from_slice(&(len as u64).to_le_bytes());
        out.extend_from_slice(&SOL_SOCKET.to_le_bytes());
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(data);
        out.resize(cmsg_align(out.len()), 0);
    };
    if let Some(c) = m.creds {
        if room >= out.len() + CMSG_HDR + 12 {
            push(&mut out, SCM_CREDENTIALS, &c.to_bytes());
        } else {
            flags |= MSG_CTRUNC;
        }
    }
    if !m.rights.is_empty() {
        let left = room.saturating_sub(out.len());
        let fit = if left > CMSG_HDR {
            (left - CMSG_HDR) / 4
        } else {
            0
        };
        let files = std::mem::take(&mut m.rights);
        if fit < files.len() {
            flags |= MSG_CTRUNC;
        }
        let mut fds = Vec::new();
        for f in files.into_iter().take(fit) {
            match t.install(f, cloexec) {
                Ok(fd) => fds.push(fd),
                Err(_) => {
                    flags |= MSG_CTRUNC;
                    break;
                }
            }
        }
        if !fds.is_empty() {
            let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_le_bytes()).collect();
            push(&mut out, SCM_RIGHTS, &data);
        }
    }
    // The last message's padding need not fit.
    let used = out.len().min(room);
    if used > 0 {
        t.mm.copy_out(ptr, &out[..used])?;
    }
    Ok((used, flags))
}

fn recvmsg_one(t: &Task, f: &File, p: u64, flags: u32, nonblock: bool) -> Result<usize, Errno> {
    let h = read_msghdr(t, p)?;
    if (h.namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let iovs = msg_iovs(t, &h)?;
    let (n, mut m) = recv_iovs(t, f, &iovs, flags, nonblock)?;
    let mut namelen = 0u32;
    if h.name != 0 {
        if let Some(addr) = &m.addr {
            let k = addr.len().min(h.namelen as usize);
            t.mm.copy_out(h.name, &addr[..k])?;
            namelen = addr.len() as u32;
        }
    }
    let (used, cflags) = if h.control != 0 {
        put_control(
            t,
            h.control,
            h.controllen as usize,
            &mut m,
            flags & MSG_CMSG_CLOEXEC != 0,
        )?
    } else {
        let lost = m.creds.is_some() || !m.rights.is_empty();
        (0, if lost { MSG_CTRUNC } else { 0 })
    };
    t.mm.write_obj(p + 8, &namelen)?;
    t.mm.write_obj(p + 40, &(used as u64))?;
    t.mm.write_obj(p + 48, &(m.flags | cflags))?;
    Ok(n)
}

pub fn sys_recvmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    recvmsg_one(t, &f, a.ptr(1), a.u32(2), false).map(|n| n as u64)
}

pub fn sys_recvmmsg(t: &mut Task, a: &Args) -> SysResult {
    let (f, _) = sock_of(t, a.fd(0))?;
    let (vec, vlen, flags, tp) = (a.ptr(1), a.u32(2).min(1024), a.u32(3), a.ptr(4));
    let deadline = if tp != 0 {
        let ts: crate::abi::Timespec = t.mm.read_obj(tp)?;
        if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Instant::now() + Duration::new(ts.sec as u64, ts.nsec as u32))
    } else {
        None
    };
    let mut got = 0u32;
    while got < vlen {
        let p = vec + u64::from(got) * 64;
        let nonblock = got > 0 && flags & MSG_WAITFORONE != 0;
        match recvmsg_one(t, &f, p, flags & !MSG_WAITFORONE, nonblock) {
            Ok(n) => t.mm.write_obj(p + 56, &(n as u32))?,
            Err(_) if got > 0 => break,
            Err(e) => return Err(e),
        }
        got += 1;
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
    }
    Ok(u64::from(got))
}

fn timeval_opt(v: &[u8]) -> Result<Option<Duration>, Errno> {
    if v.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_le_bytes(v[0..8].try_into().unwrap_or_default());
    let usec = i64::from_le_bytes(v[8..16].try_into().unwrap_or_default());
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 || (sec == 0 && usec == 0) {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

fn timeval_bytes(d: Option<Duration>) -> Vec<u8> {
    let tv = d.map_or(Timeval { sec: 0, usec: 0 }, |d| Timeval {
        sec: d.as_secs() as i64,
        usec: i64::from(d.subsec_micros()),
    });
    let mut v = tv.sec.to_le_bytes().to_vec();
    v.extend_from_slice(&tv.usec.to_le_bytes());
    v
}

pub fn sys_setsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = sock_of(t, a.fd(0))?;
    let (level, name, ptr, len) = (a.i32(1), a.i32(2), a.ptr(3), a.i32(4));
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let mut val = vec![0u8; (len as usize).min(4096)];
    t.mm.copy_in(ptr, &mut val)?;
    let sf = sockfile(&f);
    if level == SOL_SOCKET {
        let mut o = sf.opts.lock().unwrap_or_else(|e| e.into_inner());
        let flag = || opt_int(&val).map(|v| v != 0);
        match name {
            SO_RCVTIMEO => o.rcvtimeo = timeval_opt(&val)?,
            SO_SNDTIMEO => o.sndtimeo = timeval_opt(&val)?,
            SO_BROADCAST => o.broadcast = flag()?,
            SO_OOBINLINE => o.oobinline = flag()?,
            SO_TIMESTAMP => o.timestamp = flag()?,
            SO_DEBUG => o.debug = flag()?,
            SO_REUSEPORT => o.reuseport = flag()?,
            SO_DONTROUTE => o.dontroute = flag()?,
            SO_RCVLOWAT => o.rcvlowat = opt_int(&val)?.max(1),
            SO_PEEK_OFF => o.peek_off = opt_int(&val)?,
            SO_TYPE | SO_DOMAIN | SO_PROTOCOL | SO_ERROR | SO_ACCEPTCONN | SO_PEERCRED => {
                return Err(Errno::ENOPROTOOPT)
            }
            _ => {
                drop(o);
                s.setsockopt(t, level, name, &val)?;
            }
        }
        return Ok(0);
    }
    s.setsockopt(t, level, name, &val)?;
    Ok(0)
}

pub fn sys_getsockopt(t: &mut Task, a: &Args) -> SysResult {
    let (f, s) = sock_of(t, a.fd(0))?;
    let (level, name, ptr, lenp) = (a.i32(1), a.i32(2), a.ptr(3), a.ptr(4));
    let room: i32 = t.mm.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let sf = sockfile(&f);
    let o = sf.opts();
    let flag = |b: bool| int_opt(i32::from(b));
    let val = if level == SOL_SOCKET {
        match name {
            SO_TYPE => int_opt(s.kind()),
            SO_DOMAIN => int_opt(s.family()),
            SO_PROTOCOL => int_opt(s.protocol()),
            SO_RCVTIMEO => timeval_bytes(o.rcvtimeo),
            SO_SNDTIMEO => timeval_bytes(o.sndtimeo),
            SO_BROADCAST => flag(o.broadcast),
            SO_OOBINLINE => flag(o.oobinline),
            SO_TIMESTAMP => flag(o.timestamp),
            SO_DEBUG => flag(o.debug),
            SO_REUSEPORT => flag(o.reuseport),
            SO_DONTROUTE => flag(o.dontroute),
            SO_RCVLOWAT => int_opt(o.rcvlowat),
            SO_SNDLOWAT => int_opt(1),
            SO_PEEK_OFF => int_opt(o.peek_off),
            _ => s.getsockopt(t, level, name)?,
        }
    } else {
        s.getsockopt(t, level, name)?
    };
    let n = val.len().min(room as usize);
    t.mm.copy_out(ptr, &val[..n])?;
    t.mm.write_obj(lenp, &(n as u32))?;
    Ok(0)
}
