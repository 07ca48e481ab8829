//! Lets gRPC clients that name a unix socket by its path reach the server. Kubernetes' own
//! clients send `:authority: localhost` over a unix socket, but kubelet before 1.26, crictl of
//! that age, grpc-java and grpcurl send the socket's path (`/run/moat/moat-cri.sock`), which is
//! not an authority, and the HTTP/2 layer under tonic refuses the request (RST_STREAM
//! PROTOCOL_ERROR). [`AuthorityFix`] sits on the client's byte stream: it decodes every request
//! header block (HPACK, keeping the client's dynamic table), puts `localhost` where the
//! authority is not one, and encodes the block again with a table of its own towards the server.
//! Every other frame passes through untouched; so does the server's direction.
//! May touch: nothing but the bytes of the connection it wraps.
//! Never: lets a malformed stream through as if it were fine: on anything it cannot parse it
//! stops rewriting and passes the rest through as it came, for the HTTP/2 layer to refuse.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame payload the server accepts by default (SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;
/// A header block larger than this is passed through rather than buffered.
const MAX_BLOCK: usize = 1 << 20;
/// What an authority that is not one becomes.
const LOCALHOST: &[u8] = b"localhost";

/// A header block being gathered from a HEADERS frame and its CONTINUATIONs.
struct Block {
    stream: [u8; 4],
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// A server-side connection whose request headers get a valid `:authority`.
pub struct AuthorityFix<S> {
    io: S,
    /// Received from the client, not yet looked at.
    raw: Vec<u8>,
    /// Ready for the server.
    out: Vec<u8>,
    out_pos: usize,
    preface_seen: bool,
    /// Stopped rewriting (malformed input): everything passes as it comes.
    passthrough: bool,
    /// A header block was re-encoded: from then on the server's HPACK table is ours, and raw
    /// blocks cannot be passed through any more.
    rewrote: bool,
    /// Malformed input after a rewrite: the connection is ended.
    broken: bool,
    eof: bool,
    block: Option<Block>,
    decoder: fluke_hpack::Decoder<'static>,
    encoder: fluke_hpack::Encoder<'static>,
}

impl<S> AuthorityFix<S> {
    pub fn new(io: S) -> Self {
        Self {
            io,
            raw: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            preface_seen: false,
            passthrough: false,
            rewrote: false,
            broken: false,
            eof: false,
            block: None,
            decoder: fluke_hpack::Decoder::new(),
            encoder: fluke_hpack::Encoder::new(),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Gives up rewriting: what is buffered goes out as it came, or, once a block was
    /// re-encoded (the server's header table is ours), the connection ends.
    fn give_up(&mut self, why: &str) {
        if self.rewrote {
            tracing::debug!(
                why,
                "ending an HTTP/2 connection that went wrong after a rewrite"
            );
            self.broken = true;
            self.passthrough = true;
            self.block = None;
            self.raw.clear();
            return;
        }
        tracing::debug!(
            why,
            "passing the rest of an HTTP/2 connection through unchanged"
        );
        self.passthrough = true;
        if let Some(b) = self.block.take() {
            // The frames of the half-gathered block were consumed; the server gets them as one
            // HEADERS frame of the raw fragment (it will refuse what is wrong with it).
            self.emit_block_raw(b);
        }
        self.out.append(&mut self.raw);
    }

    fn emit_block_raw(&mut self, b: Block) {
        self.emit_headers(&b.stream, b.end_stream, b.priority, &b.fragment);
    }

    /// Writes a header block as a HEADERS frame and as many CONTINUATIONs as it needs.
    fn emit_headers(
        &mut self,
        stream: &[u8; 4],
        end_stream: bool,
        prio: Option<[u8; 5]>,
        block: &[u8],
    ) {
        let first_room = MAX_FRAME - if prio.is_some() { 5 } else { 0 };
        let (first, mut rest) = block.split_at(block.len().min(first_room));
        let mut flags = if end_stream { END_STREAM } else { 0 };
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        let mut payload = Vec::with_capacity(first.len() + 5);
        if let Some(p) = prio {
            flags |= PRIORITY;
            payload.extend_from_slice(&p);
        }
        payload.extend_from_slice(first);
        push_frame(&mut self.out, HEADERS, flags, stream, &payload);
        while !rest.is_empty() {
            let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
            let flags = if more.is_empty() { END_HEADERS } else { 0 };
            push_frame(&mut self.out, CONTINUATION, flags, stream, chunk);
            rest = more;
        }
    }

    /// Decodes a whole header block, fixes the authority and encodes it again.
    fn finish_block(&mut self, b: Block) {
        let headers = match self.decoder.decode(&b.fragment) {
            Ok(h) => h,
            Err(e) => {
                // The server's decoder would fail on it too; from here on, nothing is rewritten.
                self.block = Some(b);
                self.give_up(&format!("undecodable header block: {e:?}"));
                return;
            }
        };
        let fixed: Vec<(Vec<u8>, Vec<u8>)> = headers
            .into_iter()
            .map(|(name, value)| {
                if name == b":authority" && !is_authority(&value) {
                    (name, LOCALHOST.to_vec())
                } else {
                    (name, value)
                }
            })
            .collect();
        let block = self
            .encoder
            .encode(fixed.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
        self.rewrote = true;
        self.emit_headers(&b.stream, b.end_stream, b.priority, &block);
    }

    /// Moves every complete frame of `raw` to `out`, rewriting header blocks.
    fn process(&mut self) {
        if self.broken {
            self.raw.clear();
            return;
        }
        if self.passthrough {
            self.out.append(&mut self.raw);
            return;
        }
        if !self.preface_seen {
            let n = self.raw.len().min(PREFACE.len());
            if self.raw[..n] != PREFACE[..n] {
                self.give_up("not an HTTP/2 client preface");
                return;
            }
            if n < PREFACE.len() {
                return;
            }
            self.out.extend(self.raw.drain(..PREFACE.len()));
            self.preface_seen = true;
        }
        while self.raw.len() >= 9 {
            let len = usize::from(self.raw[0]) << 16
                | usize::from(self.raw[1]) << 8
                | usize::from(self.raw[2]);
            let (kind, flags) = (self.raw[3], self.raw[4]);
            if len > MAX_BLOCK {
                self.give_up("oversized frame");
                return;
            }
            if self.raw.len() < 9 + len {
                return;
            }
            if self.block.is_none() && kind != HEADERS {
                // Most frames (DATA, SETTINGS, WINDOW_UPDATE, ...) go on as they are.
                self.out.extend(self.raw.drain(..9 + len));
                continue;
            }
            let mut stream = [0u8; 4];
            stream.copy_from_slice(&self.raw[5..9]);
            let frame: Vec<u8> = self.raw.drain(..9 + len).collect();
            let payload = &frame[9..];
            match (kind, self.block.is_some()) {
                (HEADERS, false) => {
                    let Some((priority, fragment)) = headers_fragment(flags, payload) else {
                        self.out.extend_from_slice(&frame);
                        self.give_up("malformed HEADERS frame");
                        return;
                    };
                    let b = Block {
                        stream,
                        end_stream: flags & END_STREAM != 0,
                        priority,
                        fragment: fragment.to_vec(),
                    };
                    if flags & END_HEADERS != 0 {
                        self.finish_block(b);
                    } else {
                        self.block = Some(b);
                    }
                }
                (CONTINUATION, true) => {
                    let Some(mut b) = self.block.take() else {
                        return;
                    };
                    if b.stream != stream || b.fragment.len() + payload.len() > MAX_BLOCK {
                        self.block = Some(b);
                        self.out.extend_from_slice(&frame);
                        self.give_up("CONTINUATION of another stream or too large a block");
                        return;
                    }
                    b.fragment.extend_from_slice(payload);
                    if flags & END_HEADERS != 0 {
                        self.finish_block(b);
                    } else {
                        self.block = Some(b);
                    }
                }
                // Only CONTINUATIONs may follow an unfinished HEADERS (a connection error).
                _ => {
                    self.out.extend_from_slice(&frame);
                    self.give_up("frame inside a header block");
                    return;
                }
            }
            if self.passthrough {
                return;
            }
        }
    }
}

/// The priority fields and the header block fragment of a HEADERS payload.
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let (pad, mut rest) = if flags & PADDED != 0 {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let (p, r) = rest.split_at_checked(5)?;
        let mut arr = [0u8; 5];
        arr.copy_from_slice(p);
        priority = Some(arr);
        rest = r;
    }
    let end = rest.len().checked_sub(pad)?;
    Some((priority, &rest[..end]))
}

fn push_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: &[u8; 4], payload: &[u8]) {
    // Payloads here are at most MAX_BLOCK (2^20) bytes: the length fits the 24-bit field.
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(stream);
    out.extend_from_slice(payload);
}

/// Whether `value` is an authority HTTP/2 accepts (`host[:port]`).
fn is_authority(value: &[u8]) -> bool {
    !value.is_empty() && tonic::codegen::http::uri::Authority::try_from(value).is_ok()
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.broken {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed HTTP/2 header blocks",
                )));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16_384];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    if got.is_empty() {
                        // The client is done: what is left goes as it is.
                        this.eof = true;
                        if !this.rewrote {
                            this.passthrough = true;
                            if let Some(b) = this.block.take() {
                                this.emit_block_raw(b);
                            }
                            this.out.append(&mut this.raw);
                        }
                        continue;
                    }
                    this.raw.extend_from_slice(got);
                    this.process();
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<S>
{
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(enc: &mut fluke_hpack::Encoder<'_>, authority: &[u8]) -> Vec<u8> {
        enc.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", b"/runtime.v1.RuntimeService/Version"),
            (b":authority", authority),
        ])
    }

    /// Runs `input` through a fix and returns what the server would read.
    fn through(input: &[u8]) -> Vec<u8> {
        let mut f = AuthorityFix::new(());
        f.raw.extend_from_slice(input);
        f.process();
        f.out
    }

    fn frames(mut b: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
        let mut v = Vec::new();
        while b.len() >= 9 {
            let len = usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
            v.push((b[3], b[4], b[9..9 + len].to_vec()));
            b = &b[9 + len..];
        }
        v
    }

    #[test]
    fn socket_paths_become_localhost_and_good_authorities_stay() {
        let mut enc = fluke_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        push_frame(&mut input, 0x4, 0, &[0; 4], &[]); // SETTINGS
        for (stream, auth) in [
            (1u8, &b"/run/moat/moat-cri.sock"[..]),
            (3, b"/run/moat/moat-cri.sock"),
            (5, b"example:80"),
        ] {
            let block = request(&mut enc, auth);
            // Split over a HEADERS and a CONTINUATION, padded.
            let (a, b) = block.split_at(block.len() / 2);
            let mut p = vec![2u8];
            p.extend_from_slice(a);
            p.extend_from_slice(&[0, 0]);
            push_frame(&mut input, HEADERS, PADDED, &[0, 0, 0, stream], &p);
            push_frame(&mut input, CONTINUATION, END_HEADERS, &[0, 0, 0, stream], b);
            push_frame(
                &mut input,
                0x0,
                END_STREAM,
                &[0, 0, 0, stream],
                b"\0\0\0\0\0",
            );
        }
        let out = through(&input);
        assert!(out.starts_with(PREFACE));
        let fs = frames(&out[PREFACE.len()..]);
        let mut dec = fluke_hpack::Decoder::new();
        let auths: Vec<Vec<u8>> = fs
            .iter()
            .filter(|(k, _, _)| *k == HEADERS)
            .map(|(_, flags, p)| {
                assert_eq!(flags & END_HEADERS, END_HEADERS);
                dec.decode(p)
                    .unwrap()
                    .into_iter()
                    .find(|(n, _)| n == b":authority")
                    .unwrap()
                    .1
            })
            .collect();
        assert_eq!(
            auths,
            vec![
                b"localhost".to_vec(),
                b"localhost".to_vec(),
                b"example:80".to_vec()
            ]
        );
        assert_eq!(
            fs.iter().filter(|(k, _, _)| *k == 0x0).count(),
            3,
            "DATA frames pass"
        );
    }

    #[test]
    fn garbage_after_a_rewrite_ends_the_connection() {
        let mut enc = fluke_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        push_frame(
            &mut input,
            HEADERS,
            END_HEADERS,
            &[0, 0, 0, 1],
            &request(&mut enc, b"/s"),
        );
        push_frame(
            &mut input,
            HEADERS,
            END_HEADERS,
            &[0, 0, 0, 3],
            &[0xff, 0xff, 0xff],
        );
        let mut f = AuthorityFix::new(());
        f.raw.extend_from_slice(&input);
        f.process();
        assert!(f.broken, "a raw block cannot follow re-encoded ones");
        assert_eq!(frames(&f.out[PREFACE.len()..]).len(), 1);
    }

    #[test]
    fn garbage_passes_through_unchanged() {
        for input in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            [
                PREFACE,
                &[0, 0, 3, HEADERS, END_HEADERS, 0, 0, 0, 1, 0xff, 0xff, 0xff],
            ]
            .concat(),
            [
                PREFACE,
                &[0, 0, 1, HEADERS, PADDED | END_HEADERS, 0, 0, 0, 1, 9],
            ]
            .concat(),
        ] {
            assert_eq!(through(&input), input);
        }
    }
}
