//! Host syscall wrappers the safe modules of this crate build on (the only unsafe code here).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

/// Takes ownership of a fd number the kernel just returned.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful syscall that created it, so it is open
    // and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A connected, close-on-exec SOCK_SEQPACKET unix socket pair.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid, writable array of two c_ints, as socketpair(2) requires.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((own(fds[0]), own(fds[1])))
}

/// An anonymous memory file (close-on-exec).
pub fn memfd(name: &str) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })?;
    Ok(own(fd))
}

const fn cmsg_space(fds: usize) -> usize {
    // CMSG_SPACE(fds * 4) for x86-64: 16-byte header, payload rounded up to 8.
    16 + (fds * 4).div_ceil(8) * 8
}

/// sendmsg(2) of one packet with `fds` as SCM_RIGHTS.
pub fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = vec![0u64; cmsg_space(fds.len()) / 8];
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_space(fds.len());
        // SAFETY: msg_control points at `cbuf`, which is large enough for one cmsghdr.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let payload = std::mem::size_of_val(raw.as_slice());
        // SAFETY: `cmsg` is the first header inside `cbuf` (non-null since controllen > 0).
        let hdr = unsafe { &mut *cmsg };
        hdr.cmsg_level = libc::SOL_SOCKET;
        hdr.cmsg_type = libc::SCM_RIGHTS;
        hdr.cmsg_len = 16 + payload;
        // SAFETY: CMSG_DATA of a header inside `cbuf` has room for `payload` bytes, since
        // `cbuf` was sized with cmsg_space(fds.len()).
        let dst = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: `raw` holds `payload` bytes; `dst` has room for them; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), dst, payload) };
    }
    loop {
        // SAFETY: `msg` points at `iov` and `cbuf`, both alive for the call.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        match cvt_size(r) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// recvmsg(2) of one packet; returns its length, the fds that came with it, and whether
/// the data or the fds were truncated.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>, bool)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = vec![0u64; cmsg_space(max_fds) / 8];
    // SAFETY: an all-zero msghdr is a valid empty message header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = cmsg_space(max_fds);
    let n = loop {
        // SAFETY: `msg` points at `iov` (over `buf`) and `cbuf`, both alive and writable.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match cvt_size(r) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR reads only its control fields.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers returned by CMSG_FIRSTHDR/NXTHDR lie inside `cbuf`.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            let count = (hdr.cmsg_len.saturating_sub(16)) / 4;
            // SAFETY: the header lies inside `cbuf`; its data follows it.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            for i in 0..count {
                let mut raw: RawFd = 0;
                // SAFETY: the kernel wrote `count` fds after the header, inside `cbuf`; the
                // read may be unaligned, so it goes through a byte copy.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        data.add(i * 4),
                        (&mut raw as *mut RawFd).cast::<u8>(),
                        4,
                    )
                };
                fds.push(own(raw));
            }
        }
        // SAFETY: `cmsg` is a valid header inside `msg`'s control buffer.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let truncated = msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0;
    Ok((n, fds, truncated))
}
