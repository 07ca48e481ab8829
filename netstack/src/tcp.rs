//! TCP sockets with Linux semantics over smoltcp.
//!
//! smoltcp's TCP socket is one connection: a listening socket becomes the connection when a SYN
//! arrives. A Linux listener has a backlog, so a [`Listener`] keeps a few smoltcp sockets in LISTEN
//! on its port, moves each one that completes its handshake to an accept queue, and puts a fresh
//! listening socket in its place before the next packet is taken in (see `Stack::poll`). Resets are
//! not reported by smoltcp either: [`Stack::observe_states`] compares each connection's state with
//! the one seen at the previous poll and turns an unasked-for CLOSED into ECONNREFUSED or
//! ECONNRESET for SO_ERROR.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::error::NetError;
use crate::stack::{Family, Orphan, Proto, Readiness, Shutdown, Sock, SockOpts, SocketId, Stack};

/// Linux's default `somaxconn`: the largest backlog `listen` keeps.
pub const MAX_BACKLOG: usize = 4096;

/// How many smoltcp sockets a listener keeps in LISTEN at once. Refilled after every incoming
/// packet, so a burst of SYNs larger than this is still all answered.
const LISTEN_SPARES: usize = 4;

/// How long a connect waits for an answer before ETIMEDOUT (Linux's 6 SYN retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);

/// Keep-alive interval when SO_KEEPALIVE is on (Linux's `tcp_keepalive_intvl`).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(75);

pub(crate) struct TcpSock {
    pub(crate) family: Family,
    pub(crate) opts: SockOpts,
    /// The local address the port table knows this socket by: set by bind, or implicitly by
    /// connect or listen, or inherited from the listener by accept.
    pub(crate) bound: Option<SocketAddr>,
    pub(crate) mode: Mode,
    /// SO_ERROR.
    pub(crate) error: Option<NetError>,
}

pub(crate) enum Mode {
    /// Fresh, bound or not.
    Idle,
    Listening(Listener),
    /// Connecting, connected, or finished; the smoltcp socket says which.
    Connected(Conn),
}

pub(crate) struct Conn {
    handle: SocketHandle,
    /// The smoltcp state at the previous observation.
    last: State,
    shut_rd: bool,
    shut_wr: bool,
    /// Set when the connection was refused or reset (the error itself goes to SO_ERROR).
    failed: bool,
    /// When connect was called, for telling a timeout from a refusal.
    started: Instant,
    /// Received bytes moved out of smoltcp's fixed ring when the app lags behind a bulk
    /// sender: the receive buffer grows (up to [`RX_GROW_MAX`]) and the window stays open,
    /// as Linux's receive autotuning lets it. Read before what smoltcp still holds.
    spill: std::collections::VecDeque<u8>,
}

/// How large a connection's receive buffer may grow (Linux's default `tcp_rmem` maximum),
/// unless the app fixed it with SO_RCVBUF.
pub const RX_GROW_MAX: usize = 6 * 1024 * 1024;

impl Conn {
    fn new(handle: SocketHandle, state: State, started: Instant) -> Self {
        Self {
            handle,
            last: state,
            shut_rd: false,
            shut_wr: false,
            failed: false,
            started,
            spill: std::collections::VecDeque::new(),
        }
    }

    /// Moves what smoltcp holds into the spill when its ring is at least half full, within
    /// `limit` bytes of spill.
    fn grow_receive(&mut self, socket: &mut tcp::Socket<'_>, limit: usize) {
        let queued = socket.recv_queue();
        if self.spill.len() >= limit || queued == 0 || queued * 2 < socket.recv_capacity() {
            return;
        }
        let mut take = queued.min(limit - self.spill.len());
        while take > 0 {
            let spill = &mut self.spill;
            let moved = socket.recv(|buf| {
                let n = buf.len().min(take);
                spill.extend(&buf[..n]);
                (n, n)
            });
            match moved {
                Ok(n) if n > 0 => take -= n,
                _ => break,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Copies (and unless `peek`, removes) the front of the spill into `buf`.
    fn read_spill(&mut self, buf: &mut [u8], peek: bool) -> usize {
        let n = buf.len().min(self.spill.len());
        let (a, b) = self.spill.as_slices();
        let from_a = n.min(a.len());
        buf[..from_a].copy_from_slice(&a[..from_a]);
        buf[from_a..n].copy_from_slice(&b[..n - from_a]);
        if !peek {
            self.spill.drain(..n);
        }
        n
    }
}

pub(crate) struct Listener {
    backlog: usize,
    endpoint: IpListenEndpoint,
    /// smoltcp sockets in LISTEN or SYN-RECEIVED.
    pool: Vec<PoolEntry>,
    /// Established connections waiting for accept.
    ready: VecDeque<SocketHandle>,
}

#[derive(Clone, Copy)]
struct PoolEntry {
    handle: SocketHandle,
    /// In LISTEN at the previous service: a SYN it took since may be a retransmission that an
    /// older entry already answered.
    was_listening: bool,
}

impl TcpSock {
    pub(crate) fn is_listening(&self) -> bool {
        matches!(self.mode, Mode::Listening(_))
    }
}

fn new_socket(opts: &SockOpts) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(vec![0u8; opts.rcvbuf]);
    let tx = tcp::SocketBuffer::new(vec![0u8; opts.sndbuf]);
    let mut socket = tcp::Socket::new(rx, tx);
    socket.set_nagle_enabled(!opts.nodelay);
    socket.set_keep_alive(opts.keepalive.then_some(KEEPALIVE_INTERVAL));
    socket
}

fn listen_endpoint(addr: SocketAddr) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!addr.ip().is_unspecified()).then(|| addr.ip().into()),
        port: addr.port(),
    }
}

/// Where a connect or send to `addr` goes: the unspecified address means the loopback, as in
/// Linux, and a v4-mapped IPv6 address means its IPv4 address.
pub(crate) fn remote_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// POLLOUT as Linux's `sk_stream_is_writeable`: free space of at least half what is queued, so a
/// bulk writer wakes for large writes, not for every acknowledged segment.
fn send_space_ok(socket: &tcp::Socket<'_>) -> bool {
    let queued = socket.send_queue();
    let free = socket.send_capacity().saturating_sub(queued);
    socket.can_send() && free >= queued / 2
}

/// Whether the peer has sent its FIN in this state.
fn peer_closed(state: State) -> bool {
    matches!(
        state,
        State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed
    )
}

impl Listener {
    fn new_listening(
        sockets: &mut SocketSet<'static>,
        opts: &SockOpts,
        endpoint: IpListenEndpoint,
    ) -> Option<SocketHandle> {
        let mut socket = new_socket(opts);
        // Fails only for port 0, which `listen` never passes.
        socket.listen(endpoint).ok()?;
        Some(sockets.add(socket))
    }

    /// Whether the half-open entry `index` duplicates another connection from the same peer.
    fn is_duplicate(&self, sockets: &SocketSet<'static>, index: usize) -> bool {
        let Some(entry) = self.pool.get(index) else {
            return false;
        };
        let remote = sockets.get::<tcp::Socket>(entry.handle).remote_endpoint();
        if remote.is_none() {
            return false;
        }
        let same = |handle: SocketHandle| {
            handle != entry.handle && sockets.get::<tcp::Socket>(handle).remote_endpoint() == remote
        };
        self.pool
            .iter()
            .any(|other| !other.was_listening && same(other.handle))
            || self.ready.iter().any(|&handle| same(handle))
    }

    /// Moves finished handshakes to the accept queue, drops duplicate and overflowing SYNs,
    /// refills LISTEN sockets. Runs after every incoming packet, before any SYN-ACK goes out, so
    /// a socket removed here never answered: its SYN is dropped as if lost.
    fn service(&mut self, sockets: &mut SocketSet<'static>, opts: &SockOpts) {
        let mut pending = self.ready.len() + self.pool.iter().filter(|e| !e.was_listening).count();
        let mut i = 0;
        while let Some(entry) = self.pool.get(i).copied() {
            let state = sockets.get::<tcp::Socket>(entry.handle).state();
            if state == State::Listen {
                i += 1;
                continue;
            }
            if state == State::Closed {
                sockets.remove(entry.handle);
                self.pool.swap_remove(i);
                if !entry.was_listening {
                    pending = pending.saturating_sub(1);
                }
                continue;
            }
            if entry.was_listening {
                // It took a SYN since the last service. A retransmitted SYN that an older entry
                // already holds, or a SYN beyond the backlog (Linux drops those too, and the
                // client retries), is dropped unanswered.
                if pending >= self.backlog || self.is_duplicate(sockets, i) {
                    sockets.remove(entry.handle);
                    self.pool.swap_remove(i);
                    continue;
                }
                pending += 1;
                if let Some(admitted) = self.pool.get_mut(i) {
                    admitted.was_listening = false;
                }
            }
            if state == State::SynReceived {
                i += 1;
            } else {
                self.pool.swap_remove(i);
                self.ready.push_back(entry.handle);
            }
        }
        let mut listening = 0;
        for entry in &mut self.pool {
            entry.was_listening = sockets.get::<tcp::Socket>(entry.handle).state() == State::Listen;
            listening += usize::from(entry.was_listening);
        }
        // At least one listener always, so a SYN beyond the backlog is dropped, not reset.
        let target = self.backlog.saturating_sub(pending).clamp(1, LISTEN_SPARES);
        while listening < target {
            let Some(handle) = Self::new_listening(sockets, opts, self.endpoint) else {
                break;
            };
            self.pool.push(PoolEntry {
                handle,
                was_listening: true,
            });
            listening += 1;
        }
        while listening > target {
            let Some(pos) = self.pool.iter().position(|e| e.was_listening) else {
                break;
            };
            let entry = self.pool.swap_remove(pos);
            sockets.remove(entry.handle);
            listening -= 1;
        }
    }

    fn release(
        self,
        sockets: &mut SocketSet<'static>,
        orphans: &mut Vec<Orphan>,
        local: SocketAddr,
    ) {
        for entry in self.pool {
            let socket = sockets.get_mut::<tcp::Socket>(entry.handle);
            if socket.state() == State::Listen {
                sockets.remove(entry.handle);
            } else {
                socket.abort();
                orphans.push(Orphan {
                    handle: entry.handle,
                    local: Some(local),
                });
            }
        }
        for handle in self.ready {
            sockets.get_mut::<tcp::Socket>(handle).abort();
            orphans.push(Orphan {
                handle,
                local: Some(local),
            });
        }
    }
}

impl Stack {
    /// socket(AF_INET or AF_INET6, SOCK_STREAM, 0).
    pub fn tcp_socket(&mut self, family: Family) -> SocketId {
        self.insert(Sock::Tcp(TcpSock {
            family,
            opts: SockOpts::default(),
            bound: None,
            mode: Mode::Idle,
            error: None,
        }))
    }

    fn tcp_parts(
        &mut self,
        id: SocketId,
    ) -> Result<(&mut TcpSock, &mut SocketSet<'static>), NetError> {
        match self.socks.get_mut(&id) {
            Some(Sock::Tcp(s)) => Ok((s, &mut self.sockets)),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    fn tcp_ref(&self, id: SocketId) -> Result<&TcpSock, NetError> {
        match self.socks.get(&id) {
            Some(Sock::Tcp(s)) => Ok(s),
            Some(_) => Err(NetError::NotSupported),
            None => Err(NetError::BadSocket),
        }
    }

    /// TCP_NODELAY; applies to a live connection too.
    pub fn set_nodelay(&mut self, id: SocketId, on: bool) -> Result<(), NetError> {
        let (s, sockets) = self.tcp_parts(id)?;
        s.opts.nodelay = on;
        if let Mode::Connected(conn) = &s.mode {
            sockets
                .get_mut::<tcp::Socket>(conn.handle)
                .set_nagle_enabled(!on);
        }
        Ok(())
    }

    /// SO_KEEPALIVE; applies to a live connection too.
    pub fn set_keepalive(&mut self, id: SocketId, on: bool) -> Result<(), NetError> {
        let (s, sockets) = self.tcp_parts(id)?;
        s.opts.keepalive = on;
        if let Mode::Connected(conn) = &s.mode {
            sockets
                .get_mut::<tcp::Socket>(conn.handle)
                .set_keep_alive(on.then_some(KEEPALIVE_INTERVAL));
        }
        Ok(())
    }

    /// SO_LINGER with a zero timeout: close sends RST at once instead of FIN.
    pub fn set_linger_abort(&mut self, id: SocketId, on: bool) -> Result<(), NetError> {
        self.tcp_parts(id)?.0.opts.linger_abort = on;
        Ok(())
    }

    pub(crate) fn tcp_bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let s = self.tcp_ref(id)?;
        s.family.check(&addr)?;
        if s.bound.is_some() || !matches!(s.mode, Mode::Idle) {
            return Err(NetError::InvalidArgument);
        }
        let reuse = s.opts.reuse_addr;
        self.check_local(addr.ip())?;
        let port = match addr.port() {
            0 => self.ephemeral_port(Proto::Tcp, addr.ip())?,
            port if self.port_free(Proto::Tcp, addr.ip(), port, reuse) => port,
            _ => return Err(NetError::AddrInUse),
        };
        self.tcp_parts(id)?.0.bound = Some(SocketAddr::new(addr.ip(), port));
        Ok(())
    }

    /// listen(2). A backlog of 0 still accepts one connection, as Linux; above
    /// [`MAX_BACKLOG`] is clamped. A second listen only changes the backlog.
    pub fn listen(&mut self, id: SocketId, backlog: usize) -> Result<(), NetError> {
        self.ready_cache.remove(&id);
        let backlog = backlog.clamp(1, MAX_BACKLOG);
        let s = self.tcp_ref(id)?;
        match &s.mode {
            Mode::Connected(_) => return Err(NetError::InvalidArgument),
            Mode::Listening(_) => {
                let (s, sockets) = self.tcp_parts(id)?;
                let opts = s.opts;
                if let Mode::Listening(l) = &mut s.mode {
                    l.backlog = backlog;
                    l.service(sockets, &opts);
                }
                return Ok(());
            }
            Mode::Idle => {}
        }
        let family = s.family;
        let local = match s.bound {
            Some(local) => {
                let conflict = self.socks.iter().any(|(other_id, other)| {
                    *other_id != id
                        && matches!(other, Sock::Tcp(o) if o.is_listening() && o.bound.is_some_and(|b| {
                            b.port() == local.port()
                                && (b.ip().is_unspecified()
                                    || local.ip().is_unspecified()
                                    || b.ip() == local.ip())
                        }))
                });
                if conflict {
                    return Err(NetError::AddrInUse);
                }
                local
            }
            None => {
                let port = self.ephemeral_port(Proto::Tcp, family.unspecified())?;
                SocketAddr::new(family.unspecified(), port)
            }
        };
        let (s, sockets) = self.tcp_parts(id)?;
        s.bound = Some(local);
        let mut listener = Listener {
            backlog,
            endpoint: listen_endpoint(local),
            pool: Vec::new(),
            ready: VecDeque::new(),
        };
        listener.service(sockets, &s.opts);
        s.mode = Mode::Listening(listener);
        self.listeners.push(id);
        Ok(())
    }

    /// accept(2), non-blocking: a new socket and the peer's address, or WouldBlock.
    pub fn accept(&mut self, id: SocketId) -> Result<(SocketId, SocketAddr), NetError> {
        self.ready_cache.remove(&id);
        let Stack {
            socks,
            sockets,
            orphans,
            now,
            ..
        } = self;
        let now = *now;
        let s = match socks.get_mut(&id) {
            Some(Sock::Tcp(s)) => s,
            Some(_) => return Err(NetError::NotSupported),
            None => return Err(NetError::BadSocket),
        };
        let opts = s.opts;
        let family = s.family;
        let Mode::Listening(listener) = &mut s.mode else {
            return Err(NetError::InvalidArgument);
        };
        loop {
            let handle = listener.ready.pop_front().ok_or(NetError::WouldBlock)?;
            let socket = sockets.get::<tcp::Socket>(handle);
            let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint())
            else {
                // Reset before it was accepted; Linux drops those from the queue as well.
                sockets.remove(handle);
                continue;
            };
            let remote = SocketAddr::from(remote);
            if family == Family::V4 && remote.is_ipv6() {
                // An unspecified listen address takes both families in smoltcp; an AF_INET
                // listener must not.
                sockets.get_mut::<tcp::Socket>(handle).abort();
                orphans.push(Orphan {
                    handle,
                    local: Some(local.into()),
                });
                continue;
            }
            let state = socket.state();
            listener.service(sockets, &opts);
            let accepted = TcpSock {
                family,
                opts,
                bound: Some(local.into()),
                mode: Mode::Connected(Conn::new(handle, state, now)),
                error: None,
            };
            let new_id = self.insert(Sock::Tcp(accepted));
            return Ok((new_id, family.present(remote)));
        }
    }

    pub(crate) fn tcp_connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let (s, sockets) = self.tcp_parts(id)?;
        match &s.mode {
            Mode::Listening(_) => return Err(NetError::InvalidArgument),
            Mode::Connected(conn) => {
                let state = sockets.get::<tcp::Socket>(conn.handle).state();
                match state {
                    State::SynSent | State::SynReceived => return Err(NetError::Already),
                    State::Closed if conn.failed => {
                        if let Some(error) = s.error.take() {
                            return Err(error);
                        }
                        // A failed connect may be retried on the same socket.
                        sockets.remove(conn.handle);
                        s.mode = Mode::Idle;
                    }
                    _ => return Err(NetError::IsConnected),
                }
            }
            Mode::Idle => {}
        }
        s.family.check(&addr)?;
        let remote = remote_addr(addr);
        if remote.port() == 0 {
            return Err(NetError::ConnRefused);
        }
        let (family, bound) = (s.family, s.bound);
        if !self.routable(remote.ip()) {
            return Err(NetError::NetUnreachable);
        }
        let local = match bound {
            Some(local) => local,
            None => {
                let port = self.ephemeral_port(Proto::Tcp, family.unspecified())?;
                SocketAddr::new(family.unspecified(), port)
            }
        };
        let (s, _) = self.tcp_parts(id)?;
        s.bound = Some(local);
        let mut socket = new_socket(&s.opts);
        socket.set_timeout(Some(CONNECT_TIMEOUT));
        let mut local_endpoint = listen_endpoint(local);
        if local_endpoint.addr.is_none() {
            local_endpoint.addr = self.source_for(remote.ip()).map(Into::into);
        }
        socket
            .connect(
                self.iface.context(),
                IpEndpoint::from(remote),
                local_endpoint,
            )
            .map_err(|_| NetError::NetUnreachable)?;
        let handle = self.sockets.add(socket);
        let now = self.now;
        self.tcp_parts(id)?.0.mode = Mode::Connected(Conn::new(handle, State::SynSent, now));
        Err(NetError::InProgress)
    }

    pub(crate) fn tcp_recv_queue(&self, s: &TcpSock) -> usize {
        match &s.mode {
            Mode::Connected(conn) => {
                self.sockets.get::<tcp::Socket>(conn.handle).recv_queue() + conn.spill.len()
            }
            _ => 0,
        }
    }

    pub(crate) fn tcp_send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let (s, sockets) = self.tcp_parts(id)?;
        let conn = match &s.mode {
            Mode::Connected(conn) => conn,
            Mode::Listening(_) => return Err(NetError::NotConnected),
            Mode::Idle => return Err(NetError::BrokenPipe),
        };
        if let Some(error) = s.error.take() {
            return Err(error);
        }
        if conn.shut_wr {
            return Err(NetError::BrokenPipe);
        }
        let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
        match socket.state() {
            State::SynSent | State::SynReceived => Err(NetError::WouldBlock),
            State::Established | State::CloseWait => {
                if data.is_empty() {
                    return Ok(0);
                }
                match socket.send_slice(data) {
                    Ok(0) => Err(NetError::WouldBlock),
                    Ok(n) => Ok(n),
                    Err(tcp::SendError::InvalidState) => Err(NetError::BrokenPipe),
                }
            }
            _ => Err(NetError::BrokenPipe),
        }
    }

    pub(crate) fn tcp_recv(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<usize, NetError> {
        let (s, sockets) = self.tcp_parts(id)?;
        let Mode::Connected(conn) = &mut s.mode else {
            return Err(NetError::NotConnected);
        };
        if !conn.spill.is_empty() {
            return Ok(conn.read_spill(buf, peek));
        }
        let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
        if socket.recv_queue() > 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            let got = if peek {
                socket.peek_slice(buf)
            } else {
                socket.recv_slice(buf)
            };
            // Data is queued, so neither can fail; an empty read would only look like EOF.
            return got.map_err(|_| NetError::WouldBlock);
        }
        if let Some(error) = s.error.take() {
            return Err(error);
        }
        match socket.state() {
            State::SynSent | State::SynReceived => Err(NetError::WouldBlock),
            State::Established | State::FinWait1 | State::FinWait2 if !conn.shut_rd => {
                Err(NetError::WouldBlock)
            }
            _ => Ok(0),
        }
    }

    pub(crate) fn tcp_shutdown(&mut self, id: SocketId, how: Shutdown) -> Result<(), NetError> {
        let Stack {
            socks,
            sockets,
            orphans,
            listeners,
            ..
        } = self;
        let s = match socks.get_mut(&id) {
            Some(Sock::Tcp(s)) => s,
            Some(_) => return Err(NetError::NotSupported),
            None => return Err(NetError::BadSocket),
        };
        match &mut s.mode {
            Mode::Idle => Err(NetError::NotConnected),
            Mode::Listening(_) => {
                if how.read() {
                    // Linux stops listening; pending connections are reset.
                    let Mode::Listening(listener) = std::mem::replace(&mut s.mode, Mode::Idle)
                    else {
                        return Ok(());
                    };
                    let local = s
                        .bound
                        .unwrap_or_else(|| SocketAddr::new(s.family.unspecified(), 0));
                    listener.release(sockets, orphans, local);
                    listeners.retain(|l| *l != id);
                }
                Ok(())
            }
            Mode::Connected(conn) => {
                let socket = sockets.get_mut::<tcp::Socket>(conn.handle);
                if matches!(socket.state(), State::Closed) {
                    return Err(NetError::NotConnected);
                }
                if how.read() {
                    conn.shut_rd = true;
                }
                if how.write() && !conn.shut_wr {
                    conn.shut_wr = true;
                    socket.close();
                }
                Ok(())
            }
        }
    }

    pub(crate) fn tcp_local_addr(&self, s: &TcpSock) -> SocketAddr {
        if let Mode::Connected(conn) = &s.mode {
            if let Some(local) = self
                .sockets
                .get::<tcp::Socket>(conn.handle)
                .local_endpoint()
            {
                return s.family.present(local.into());
            }
        }
        s.bound
            .unwrap_or_else(|| SocketAddr::new(s.family.unspecified(), 0))
    }

    pub(crate) fn tcp_peer_addr(&self, s: &TcpSock) -> Result<SocketAddr, NetError> {
        let Mode::Connected(conn) = &s.mode else {
            return Err(NetError::NotConnected);
        };
        let socket = self.sockets.get::<tcp::Socket>(conn.handle);
        match socket.state() {
            State::SynSent | State::Closed => Err(NetError::NotConnected),
            _ => socket
                .remote_endpoint()
                .map(|remote| s.family.present(remote.into()))
                .ok_or(NetError::NotConnected),
        }
    }

    pub(crate) fn tcp_readiness(&self, s: &TcpSock) -> Readiness {
        let error = s.error.is_some();
        match &s.mode {
            // Linux reports a never-connected socket as writable and hung up.
            Mode::Idle => Readiness {
                writable: true,
                hup: true,
                error,
                ..Readiness::default()
            },
            Mode::Listening(listener) => Readiness {
                readable: !listener.ready.is_empty(),
                error,
                ..Readiness::default()
            },
            Mode::Connected(conn) => {
                let socket = self.sockets.get::<tcp::Socket>(conn.handle);
                let state = socket.state();
                match state {
                    State::SynSent | State::SynReceived => Readiness {
                        error,
                        ..Readiness::default()
                    },
                    State::Closed => Readiness {
                        readable: true,
                        writable: true,
                        hup: true,
                        rdhup: true,
                        error,
                    },
                    _ => {
                        let rdhup = peer_closed(state);
                        Readiness {
                            readable: socket.recv_queue() > 0
                                || !conn.spill.is_empty()
                                || rdhup
                                || conn.shut_rd
                                || error,
                            writable: conn.shut_wr || send_space_ok(socket),
                            hup: conn.shut_wr && (rdhup || conn.shut_rd),
                            rdhup,
                            error,
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn tcp_release(&mut self, s: TcpSock) {
        match s.mode {
            Mode::Idle => {}
            Mode::Listening(listener) => {
                let local = s
                    .bound
                    .unwrap_or_else(|| SocketAddr::new(s.family.unspecified(), 0));
                listener.release(&mut self.sockets, &mut self.orphans, local);
                let listeners = &mut self.listeners;
                listeners.retain(|l| self.socks.contains_key(l));
            }
            Mode::Connected(conn) => {
                let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
                if socket.recv_queue() > 0 || !conn.spill.is_empty() || s.opts.linger_abort {
                    // Linux resets a connection closed with unread data (RFC 2525 2.17).
                    socket.abort();
                } else {
                    socket.close();
                }
                self.orphans.push(Orphan {
                    handle: conn.handle,
                    local: s.bound,
                });
            }
        }
    }

    /// Runs each listener's service (see [`Listener::service`]).
    pub(crate) fn service_listeners(&mut self) {
        for id in &self.listeners {
            if let Some(Sock::Tcp(s)) = self.socks.get_mut(id) {
                let opts = s.opts;
                if let Mode::Listening(listener) = &mut s.mode {
                    listener.service(&mut self.sockets, &opts);
                }
            }
        }
    }

    /// Turns connections that smoltcp closed without being asked into SO_ERROR, and lifts the
    /// connect timeout once a connection is up.
    pub(crate) fn observe_states(&mut self) {
        let now = self.now;
        for sock in self.socks.values_mut() {
            let Sock::Tcp(s) = sock else { continue };
            let Mode::Connected(conn) = &mut s.mode else {
                continue;
            };
            let socket = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            if !s.opts.rcvbuf_set {
                conn.grow_receive(socket, RX_GROW_MAX.saturating_sub(s.opts.rcvbuf));
            }
            let state = socket.state();
            if conn.last == State::SynSent && !matches!(state, State::SynSent | State::Closed) {
                socket.set_timeout(None);
            }
            if state == State::Closed && conn.last != State::Closed && !conn.failed {
                let error = match conn.last {
                    State::SynSent if now - conn.started >= CONNECT_TIMEOUT => {
                        Some(NetError::TimedOut)
                    }
                    State::SynSent => Some(NetError::ConnRefused),
                    State::SynReceived
                    | State::Established
                    | State::CloseWait
                    | State::FinWait1
                    | State::FinWait2 => Some(NetError::ConnReset),
                    _ => None,
                };
                if let Some(error) = error {
                    conn.failed = true;
                    s.error = Some(error);
                }
            }
            conn.last = state;
        }
    }
}
