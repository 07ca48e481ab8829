//! Host syscall wrappers of the netstack: the packet socket under [`crate::PacketLink`] and the
//! NETLINK_ROUTE socket of [`crate::hostif`]. The crate's only unsafe code. Each wrapper works on
//! an fd the caller owns and on buffers it lends for the call; none keeps a pointer past it.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn check_len(r: isize) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new fd nothing else owns.
    let fd = check(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ETH_P_ALL` in network byte order, as packet sockets take it.
fn eth_p_all() -> u16 {
    u16::try_from(libc::ETH_P_ALL).unwrap_or(3).to_be()
}

/// The size of `T` as a socklen_t (socket structs are a few dozen bytes).
fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// A batch length as recvmmsg/sendmmsg take it (batches are a few dozen frames).
fn vlen(len: usize) -> libc::c_uint {
    libc::c_uint::try_from(len).unwrap_or(0)
}

/// A non-blocking AF_PACKET/SOCK_RAW socket for every protocol, not yet bound.
pub(crate) fn packet_socket() -> io::Result<OwnedFd> {
    socket(
        libc::AF_PACKET,
        libc::SOCK_RAW | libc::SOCK_NONBLOCK,
        libc::c_int::from(eth_p_all()),
    )
}

/// Binds a packet socket to the interface `ifindex`, for every protocol.
pub(crate) fn packet_bind(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is a valid value (integers and byte arrays only).
    let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
    addr.sll_family = u16::try_from(libc::AF_PACKET).unwrap_or(17);
    addr.sll_protocol = eth_p_all();
    addr.sll_ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    let len = socklen_of::<libc::sockaddr_ll>();
    let ptr = (&raw const addr).cast::<libc::sockaddr>();
    // SAFETY: `ptr` points to `addr`, a sockaddr_ll of `len` bytes that lives across the call.
    check(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) })?;
    Ok(())
}

/// setsockopt(2) with an int value.
pub(crate) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = socklen_of::<libc::c_int>();
    let ptr = (&raw const value).cast::<libc::c_void>();
    // SAFETY: `ptr` points to `value`, an int of `len` bytes that lives across the call.
    check(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, ptr, len) })?;
    Ok(())
}

/// Makes the packet socket receive frames sent to the multicast MAC `mac` on `ifindex` (the
/// interface's filter may otherwise drop them before any socket sees them).
pub(crate) fn packet_add_multicast(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    mac: [u8; 6],
) -> io::Result<()> {
    // SAFETY: an all-zero packet_mreq is a valid value (integers and a byte array).
    let mut mreq: libc::packet_mreq = unsafe { mem::zeroed() };
    mreq.mr_ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    mreq.mr_type = u16::try_from(libc::PACKET_MR_MULTICAST).unwrap_or(0);
    mreq.mr_alen = 6;
    mreq.mr_address[..6].copy_from_slice(&mac);
    let len = socklen_of::<libc::packet_mreq>();
    let ptr = (&raw const mreq).cast::<libc::c_void>();
    // SAFETY: `ptr` points to `mreq`, a packet_mreq of `len` bytes that lives across the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            ptr,
            len,
        )
    })?;
    Ok(())
}

/// Sets O_NONBLOCK on `fd` (a packet socket handed over by another process may lack it).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL takes an int argument, no pointer.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// Frames received in one recvmmsg(2) call.
pub(crate) const RECV_BATCH: usize = 32;
/// Frames sent in one sendmmsg(2) call, at most.
pub(crate) const SEND_BATCH: usize = 64;

/// One received frame's metadata: its length, the packet type (PACKET_HOST, ...) and whether it
/// was cut to the buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvMeta {
    pub(crate) len: usize,
    pub(crate) pkttype: u8,
    pub(crate) truncated: bool,
}

/// Buffers for receiving up to [`RECV_BATCH`] frames with one recvmmsg(2).
pub(crate) struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    meta: [RecvMeta; RECV_BATCH],
}

impl RecvBatch {
    /// Buffers of `frame_size` bytes each.
    pub(crate) fn new(frame_size: usize) -> Self {
        Self {
            bufs: (0..RECV_BATCH)
                .map(|_| vec![0u8; frame_size].into_boxed_slice())
                .collect(),
            meta: [RecvMeta::default(); RECV_BATCH],
        }
    }

    /// Receives the frames waiting on `fd`, up to the batch size, without blocking. Returns how
    /// many arrived (0 when none was waiting).
    pub(crate) fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        // SAFETY: all-zero iovec, sockaddr_ll and mmsghdr are valid values (integers and null
        // pointers); the pointers are filled in below before the call.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut addrs: [libc::sockaddr_ll; RECV_BATCH] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { mem::zeroed() };
        for (((buf, iov), addr), msg) in self
            .bufs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(addrs.iter_mut())
            .zip(msgs.iter_mut())
        {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = buf.len();
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
            msg.msg_hdr.msg_name = (&raw mut *addr).cast();
            msg.msg_hdr.msg_namelen = socklen_of::<libc::sockaddr_ll>();
        }
        // SAFETY:
        // 1. Each of the RECV_BATCH headers points to its own iovec and sockaddr_ll on this
        //    stack frame, and each iovec to a distinct buffer of `self.bufs` of `iov_len` bytes.
        // 2. All of them outlive the call, and nothing else reads or writes them meanwhile.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                vlen(RECV_BATCH),
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let n = usize::try_from(n).unwrap_or(0).min(RECV_BATCH);
        for ((meta, msg), addr) in self.meta.iter_mut().zip(&msgs).zip(&addrs).take(n) {
            *meta = RecvMeta {
                len: msg.msg_len as usize,
                pkttype: addr.sll_pkttype,
                truncated: msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(n)
    }

    /// Frame `i` of the last [`RecvBatch::recv`] and its metadata.
    pub(crate) fn frame(&self, i: usize) -> Option<(&[u8], RecvMeta)> {
        let meta = *self.meta.get(i)?;
        let buf = self.bufs.get(i)?;
        Some((buf.get(..meta.len.min(buf.len()))?, meta))
    }
}

/// Sends each frame, given as a header and a body, as one packet on the bound socket `fd`, with
/// one sendmmsg(2) per [`SEND_BATCH`] frames, without blocking. Returns how many leading frames
/// the kernel took; an error only when it took none.
pub(crate) fn send_batch(fd: BorrowedFd<'_>, frames: &[(&[u8], &[u8])]) -> io::Result<usize> {
    let frames = frames.get(..frames.len().min(SEND_BATCH)).unwrap_or(&[]);
    // SAFETY: all-zero iovec and mmsghdr are valid values (integers and null pointers); the
    // pointers are filled in below before the call.
    let mut iovs: [[libc::iovec; 2]; SEND_BATCH] = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { mem::zeroed() };
    for ((&(head, body), iov), msg) in frames.iter().zip(iovs.iter_mut()).zip(msgs.iter_mut()) {
        // The kernel only reads through these pointers (sendmsg), despite the `*mut` type.
        iov[0].iov_base = head.as_ptr().cast_mut().cast();
        iov[0].iov_len = head.len();
        iov[1].iov_base = body.as_ptr().cast_mut().cast();
        iov[1].iov_len = body.len();
        msg.msg_hdr.msg_iov = iov.as_mut_ptr();
        msg.msg_hdr.msg_iovlen = 2;
    }
    // SAFETY:
    // 1. The first `frames.len()` headers each point to two iovecs on this stack frame, which
    //    point to the caller's `head` and `body` slices of `iov_len` bytes each.
    // 2. sendmmsg only reads those buffers, and all of them outlive the call.
    let n = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            vlen(frames.len()),
            libc::MSG_DONTWAIT,
        )
    };
    check(n).map(|n| usize::try_from(n).unwrap_or(0))
}

/// A NETLINK_ROUTE socket, talking to the kernel of the caller's network namespace.
pub(crate) fn netlink_route_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)
}

/// SO_RCVTIMEO: a blocking receive on `fd` fails with EAGAIN after `timeout`.
pub(crate) fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    };
    let len = socklen_of::<libc::timeval>();
    let ptr = (&raw const tv).cast::<libc::c_void>();
    // SAFETY: `ptr` points to `tv`, a timeval of `len` bytes that lives across the call.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            ptr,
            len,
        )
    })?;
    Ok(())
}

/// send(2) of one whole buffer (a netlink request goes to the kernel, port 0, by default).
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a readable buffer of `buf.len()` bytes that lives across the call.
    check_len(unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) })
}

/// recv(2) into `buf`, blocking. Returns the datagram's full length (MSG_TRUNC), which exceeds
/// `buf.len()` when it did not fit.
pub(crate) fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes that lives across the call.
        let r = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        match check_len(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
