//! CRI container logs: [`LogWriter`] turns a container's stdout and stderr pipes into the file at
//! its LogPath in the format kubelet reads, and [`parse_log`] reads such a file back.
//!
//! A record is `<time> <stream> <tag> <content>\n`: the time in UTC as Go's `time.RFC3339Nano`
//! prints it (`2026-11-23T16:25:01.1234Z`: the fraction loses its trailing zeros, and its dot too
//! when it is zero), `stdout` or `stderr`, `F` for a record that ends a line or `P` for a part of
//! one, then the line's bytes as they came, without the `\n` or `\r\n` that ended it. As
//! containerd's CRI logger writes it (`internal/cri/io/logger.go`), which is what kubelet's reader
//! (`pkg/kubelet/kuberuntime/logs`) expects:
//! - a line is held until its `\n` comes; one longer than the limit (containerd's
//!   `max_container_log_line_size`, 16 KiB by default) goes out as `P` records of exactly the
//!   limit and then an `F` record with the rest, so a line of exactly the limit is one `F`;
//! - bytes still without their `\n` when the pipe ends are written as `P` records;
//! - an empty line is an `F` record with empty content; other bytes (`\0`, lone `\r`, invalid
//!   UTF-8) are written as they are.
//!
//! Where Moat differs from containerd, on purpose: times are UTC (`Z`) where containerd prints the
//! host's local offset; one writer's times never go backwards (after the clock is stepped back,
//! records repeat the last time until the clock catches up); a line still open at
//! [`LogWriter::reopen`] stays whole and lands in the new file, where containerd cuts it into a
//! `P` record at the end of the old file; and there is always a limit (containerd's `-1`, no
//! limit, would let one endless line fill the memory).
//!
//! May touch: the log file at the path it is given, and creates that path's missing parents.
//! Never: follows a symlink at the log path, or lets one stream's record interleave with another.
//!
//! Locks: a writer has one mutex, `Shared::state` (the file, the last time, the open streams). A
//! stream thread holds it to stamp and write one record, [`LogWriter::reopen`] to swap the file;
//! nothing else is locked while it is held.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// containerd's default `max_container_log_line_size`: the most content one record carries.
pub const DEFAULT_MAX_LINE_SIZE: usize = 16 * 1024;

/// How much of a pipe one read takes.
const READ_SIZE: usize = 64 * 1024;

/// Permissions of a new log file, as containerd creates it (kubelet only reads it, as root).
const FILE_MODE: u32 = 0o640;

/// Permissions of log directories created here, as kubelet and containerd create them.
const DIR_MODE: u32 = 0o755;

/// Which of a container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The stream's name in a record: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        match b {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub time: SystemTime,
    pub stream: Stream,
    /// Tag `P`: the line goes on in the stream's next record (or never ended).
    pub partial: bool,
    /// The record's bytes, without the record's own `\n`.
    pub content: Vec<u8>,
}

/// Why a log writer could not start, reopen or finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create log directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open log file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the {stream} log thread")]
    Spawn {
        stream: Stream,
        #[source]
        source: io::Error,
    },
    #[error("records were lost writing log file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("log {path} is finished: its streams have ended")]
    Finished { path: PathBuf },
}

/// Why one record (a line of a log file, without its `\n`) was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record has no {0} field")]
    Missing(&'static str),
    #[error("bad timestamp {0:?}")]
    Time(String),
    #[error("bad stream {0:?}")]
    Stream(String),
    #[error("bad tag {0:?}")]
    Tag(String),
}

/// Why a log file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogParseError {
    #[error("line {line} of the log")]
    Record {
        line: usize,
        #[source]
        source: RecordError,
    },
    #[error("line {line} of the log has no end of line")]
    Unterminated { line: usize },
}

/// A time as seconds and nanoseconds since the Unix epoch (`nanos < 1e9`), ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    const MIN: Timestamp = Timestamp {
        secs: i64::MIN,
        nanos: 0,
    };

    fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(before) => {
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s);
                match d.subsec_nanos() {
                    0 => Timestamp { secs, nanos: 0 },
                    n => Timestamp {
                        secs: secs.saturating_sub(1),
                        nanos: 1_000_000_000 - n,
                    },
                }
            }
        }
    }

    fn to_system(self) -> Option<SystemTime> {
        let whole = Duration::from_secs(self.secs.unsigned_abs());
        let base = if self.secs >= 0 {
            UNIX_EPOCH.checked_add(whole)?
        } else {
            UNIX_EPOCH.checked_sub(whole)?
        };
        base.checked_add(Duration::from_nanos(u64::from(self.nanos)))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`m` in 1..=12).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12; // March is 0
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `t` in UTC as Go's `t.UTC().Format(time.RFC3339Nano)` prints it:
/// `2026-11-23T16:25:01.123456789Z`, the fraction without trailing zeros, and without its dot
/// when it is zero (`2026-11-23T16:25:01Z`).
pub fn format_timestamp(t: SystemTime) -> String {
    format_ts(Timestamp::from_system(t))
}

fn format_ts(t: Timestamp) -> String {
    let (y, mo, d) = civil_from_days(t.secs.div_euclid(86_400));
    let sod = t.secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if t.nanos != 0 {
        let frac = format!("{:09}", t.nanos);
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 time as kubelet does (Go's `time.RFC3339Nano` layout): `T` between date
/// and time, an optional `.` and fraction (digits past the ninth ignored), then `Z` or a `±hh:mm`
/// offset.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    parse_ts(s.as_bytes())?.to_system()
}

fn parse_ts(b: &[u8]) -> Option<Timestamp> {
    fn num(b: &[u8]) -> Option<i64> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(b.iter().fold(0, |n, &c| n * 10 + i64::from(c - b'0')))
    }
    let (date, rest) = (b.get(..19)?, b.get(19..)?);
    if [date[4], date[7], date[10], date[13], date[16]] != *b"--T::" {
        return None;
    }
    let (y, mo, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..10])?);
    let (h, mi, s) = (
        num(&date[11..13])?,
        num(&date[14..16])?,
        num(&date[17..19])?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let (nanos, zone) = match rest.split_first() {
        Some((b'.', frac)) => {
            // Go since 1.20 takes any number of digits and keeps the first nine.
            let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            let (frac, zone) = frac.split_at(digits);
            let kept = frac.get(..9).unwrap_or(frac);
            let scale = (kept.len()..9).fold(1, |m, _| m * 10);
            (num(kept)? * scale, zone)
        }
        _ => (0, rest),
    };
    let offset = match zone {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let (oh, om) = (num(hh)?, num(&[*m1, *m2])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    Some(Timestamp {
        secs,
        nanos: u32::try_from(nanos).ok()?,
    })
}

/// Appends one record, `<time> <stream> <P|F> <content>\n`, to `out`.
fn encode_record(
    out: &mut Vec<u8>,
    time: Timestamp,
    stream: Stream,
    partial: bool,
    content: &[u8],
) {
    out.extend_from_slice(format_ts(time).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Parses one record: a line of a log file without its `\n`. As kubelet does, fields are split
/// at single spaces and only the first `:`-separated tag counts, so later tags are ignored;
/// unlike kubelet, which takes any tag but `P` for `F`, the first tag must be `P` or `F`.
pub fn parse_record(line: &[u8]) -> Result<LogRecord, RecordError> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let fields: Vec<&[u8]> = line.splitn(4, |&c| c == b' ').collect();
    let [time, stream, tags, content] = fields[..] else {
        return Err(RecordError::Missing(match fields.len() {
            0 | 1 => "stream",
            2 => "tag",
            _ => "content",
        }));
    };
    let time = parse_ts(time)
        .and_then(Timestamp::to_system)
        .ok_or_else(|| RecordError::Time(lossy(time)))?;
    let stream = Stream::from_bytes(stream).ok_or_else(|| RecordError::Stream(lossy(stream)))?;
    let partial = match tags.split(|&c| c == b':').next().unwrap_or_default() {
        b"P" => true,
        b"F" => false,
        _ => return Err(RecordError::Tag(lossy(tags))),
    };
    Ok(LogRecord {
        time,
        stream,
        partial,
        content: content.to_vec(),
    })
}

/// Parses a whole log file. Every record must end with `\n` (the writer writes whole records).
pub fn parse_log(data: &[u8]) -> Result<Vec<LogRecord>, LogParseError> {
    let mut records = Vec::new();
    for (i, line) in data.split_inclusive(|&c| c == b'\n').enumerate() {
        let Some(line) = line.strip_suffix(b"\n") else {
            return Err(LogParseError::Unterminated { line: i + 1 });
        };
        let record = parse_record(line).map_err(|source| LogParseError::Record {
            line: i + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// What `kubectl logs` shows of `stream`: the contents of its records in order, each `F` record
/// followed by the `\n` that ended its line.
pub fn stream_output(records: &[LogRecord], stream: Stream) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.stream == stream) {
        out.extend_from_slice(&r.content);
        if !r.partial {
            out.push(b'\n');
        }
    }
    out
}

/// Cuts one stream's bytes into record contents, as containerd does: at each `\n` (dropping it
/// and a `\r` just before it), and every `max` bytes of a line longer than `max`. Holds at most
/// `max + 1` bytes between calls.
#[derive(Debug)]
struct LineSplitter {
    max: usize,
    pending: Vec<u8>,
}

impl LineSplitter {
    fn new(max: NonZeroUsize) -> Self {
        LineSplitter {
            max: max.get(),
            pending: Vec::new(),
        }
    }

    /// Takes the next bytes of the stream; `emit(partial, content)` gets each record they end.
    fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(bool, &[u8])) {
        while let Some(i) = data.iter().position(|&c| c == b'\n') {
            self.pending.extend_from_slice(&data[..i]);
            if self.pending.last() == Some(&b'\r') {
                self.pending.pop();
            }
            self.emit_parts(0, emit);
            emit(false, &self.pending);
            self.pending.clear();
            data = &data[i + 1..];
        }
        self.pending.extend_from_slice(data);
        // A `\r` at the end may be the first half of a `\r\n`: it is not content yet.
        let held = usize::from(self.pending.last() == Some(&b'\r'));
        self.emit_parts(held, emit);
    }

    /// The stream ended: what is left was never ended by a `\n` and goes out as `P` records.
    fn finish(&mut self, emit: &mut dyn FnMut(bool, &[u8])) {
        self.emit_parts(0, emit);
        if !self.pending.is_empty() {
            emit(true, &self.pending);
            self.pending.clear();
        }
    }

    /// Emits `P` records of `max` bytes while more than `max` bytes (besides the last `held`)
    /// wait, as a line that long needs another record anyway.
    fn emit_parts(&mut self, held: usize, emit: &mut dyn FnMut(bool, &[u8])) {
        let mut start = 0;
        while self.pending.len() - held - start > self.max {
            emit(true, &self.pending[start..start + self.max]);
            start += self.max;
        }
        self.pending.drain(..start);
    }
}

/// What a writer's stream threads and its handle share.
#[derive(Debug)]
struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// Signalled when the last stream ends.
    ended: Condvar,
}

#[derive(Debug)]
struct State {
    /// `None` once every stream has ended.
    file: Option<File>,
    /// The time of the last record, which the next one may not precede.
    last: Timestamp,
    open_streams: usize,
    /// The first failed write; later records are still tried.
    write_error: Option<io::Error>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while it was held cannot leave `State` half-changed: each field is set whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stamps and writes one record with one write on the O_APPEND file, under the lock, so
    /// records of the two streams never interleave and times follow file order.
    fn write_record(&self, stream: Stream, partial: bool, content: &[u8], buf: &mut Vec<u8>) {
        let mut st = self.lock();
        let now = Timestamp::from_system(SystemTime::now()).max(st.last);
        st.last = now;
        buf.clear();
        encode_record(buf, now, stream, partial, content);
        let State {
            file, write_error, ..
        } = &mut *st;
        let Some(file) = file else {
            return; // no stream writes after its own end, and the file lives until the last end
        };
        // Containerd goes on after a failed write, so that the container's output keeps
        // draining and a full disk does not block the app.
        if let Err(e) = file.write_all(buf) {
            if write_error.is_none() {
                tracing::warn!(path = %self.path.display(), %stream, error = %e, "cannot write container log; dropping records");
                *write_error = Some(e);
            }
        }
    }

    fn stream_ended(&self, stream: Stream) {
        let mut st = self.lock();
        st.open_streams = st.open_streams.saturating_sub(1);
        tracing::debug!(path = %self.path.display(), %stream, "container log stream ended");
        if st.open_streams == 0 {
            st.file = None;
            self.ended.notify_all();
        }
    }
}

/// Ends a stream in its writer when its thread stops, also by a panic, so `wait` cannot hang.
struct EndGuard<'a> {
    shared: &'a Shared,
    stream: Stream,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.shared.stream_ended(self.stream);
    }
}

/// Reads `src` to its end, writing its lines as records.
fn pump(shared: &Shared, stream: Stream, mut src: File, max: NonZeroUsize) {
    let _end = EndGuard { shared, stream };
    let mut splitter = LineSplitter::new(max);
    let mut record = Vec::new();
    let mut emit = |partial: bool, content: &[u8]| {
        shared.write_record(stream, partial, content, &mut record);
    };
    let mut buf = vec![0; READ_SIZE];
    loop {
        match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => splitter.feed(&buf[..n], &mut emit),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(path = %shared.path.display(), %stream, error = %e, "cannot read container output; ending its log");
                break;
            }
        }
    }
    splitter.finish(&mut emit);
}

/// Creates `path`'s missing parents and opens it to append (O_APPEND | O_CREAT | O_NOFOLLOW,
/// mode 0640), as containerd opens a container log.
fn open_log_file(path: &Path) -> Result<File, LogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|source| LogError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| LogError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Writes a container's stdout and stderr to its CRI log file, each stream read to its end by a
/// thread of its own. The file is closed when every stream has ended.
///
/// Dropping the writer does not stop it: its threads go on until their pipes end, then close
/// the file. [`LogWriter::close`] waits for that.
#[derive(Debug)]
pub struct LogWriter {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl LogWriter {
    /// Opens (creating it and its parents if missing) the log file at `path` and starts copying
    /// the read ends `stdout` and `stderr` into it. A container with a terminal has no
    /// `stderr`; a writer with neither stream has ended at once. Lines longer than
    /// `max_line_size` bytes are split (see the module doc).
    pub fn start(
        path: impl Into<PathBuf>,
        max_line_size: NonZeroUsize,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Result<Self, LogError> {
        let path = path.into();
        let file = open_log_file(&path)?;
        let sources: Vec<(Stream, OwnedFd)> = [(Stream::Stdout, stdout), (Stream::Stderr, stderr)]
            .into_iter()
            .filter_map(|(stream, fd)| Some((stream, fd?)))
            .collect();
        tracing::debug!(path = %path.display(), streams = sources.len(), "container log started");
        let shared = Arc::new(Shared {
            path,
            state: Mutex::new(State {
                file: (!sources.is_empty()).then_some(file),
                last: Timestamp::MIN,
                open_streams: sources.len(),
                write_error: None,
            }),
            ended: Condvar::new(),
        });
        let mut threads = Vec::with_capacity(sources.len());
        for (stream, fd) in sources {
            let thread_shared = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("log-{stream}"))
                .spawn(move || pump(&thread_shared, stream, File::from(fd), max_line_size));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(source) => {
                    // A stream already started goes on to its end, and then closes the file.
                    shared.stream_ended(stream);
                    return Err(LogError::Spawn { stream, source });
                }
            }
        }
        Ok(LogWriter { shared, threads })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// CRI ReopenContainerLog: after kubelet has renamed the file away, creates a new one at the
    /// same path and writes every later record there. Each record lands whole in one file or the
    /// other, in order; a line not yet ended is written to the new file. If the new file cannot be
    /// opened, writing goes on to the old one. Refused once every stream has ended.
    pub fn reopen(&self) -> Result<(), LogError> {
        let mut st = self.shared.lock();
        if st.file.is_none() {
            return Err(LogError::Finished {
                path: self.shared.path.clone(),
            });
        }
        st.file = Some(open_log_file(&self.shared.path)?);
        tracing::debug!(path = %self.shared.path.display(), "container log reopened");
        Ok(())
    }

    /// Whether every stream has ended and its last record is written.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().open_streams == 0
    }

    /// Waits until every stream has ended and its last record is written (the container and
    /// every process that held its pipes have exited).
    pub fn wait(&self) {
        let mut st = self.shared.lock();
        while st.open_streams > 0 {
            st = self
                .shared
                .ended
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// [`LogWriter::wait`] for at most `timeout`; whether the streams ended in time.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait();
            return true;
        };
        let mut st = self.shared.lock();
        while st.open_streams > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .ended
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Waits for every stream to end and reports the first record that could not be written.
    pub fn close(mut self) -> Result<(), LogError> {
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "a container log thread panicked");
            }
        }
        self.wait();
        match self.shared.lock().write_error.take() {
            Some(source) => Err(LogError::Write {
                path: self.shared.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64, nanos: u32) -> Timestamp {
        Timestamp { secs, nanos }
    }

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    /// The records `LineSplitter` makes of `chunks` fed in turn and then ended.
    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(nz(max));
        let mut emit = |p: bool, c: &[u8]| out.push((p, c.to_vec()));
        for c in chunks {
            s.feed(c, &mut emit);
            assert!(s.pending.len() <= max + 1, "holds at most max + 1 bytes");
        }
        s.finish(&mut emit);
        out
    }

    fn f(c: &[u8]) -> (bool, Vec<u8>) {
        (false, c.to_vec())
    }

    fn p(c: &[u8]) -> (bool, Vec<u8>) {
        (true, c.to_vec())
    }

    /// containerd's rule on a whole input: lines at `\n` minus one `\r` before it, each cut
    /// into `max`-byte parts, the last part `F` (`P` for unterminated trailing bytes).
    fn reference(max: usize, input: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = input.split(|&c| c == b'\n').collect();
        let tail = lines.pop().unwrap_or_default();
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut rest = line;
            while rest.len() > max {
                out.push(p(&rest[..max]));
                rest = &rest[max..];
            }
            out.push(f(rest));
        }
        for part in tail.chunks(max) {
            out.push(p(part));
        }
        out
    }

    #[test]
    fn timestamps_print_as_go_rfc3339nano_in_utc() {
        assert_eq!(format_ts(ts(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(format_ts(ts(1_700_000_000, 0)), "2023-11-14T22:13:20Z");
        assert_eq!(
            format_ts(ts(1_700_000_000, 123_456_789)),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            format_ts(ts(1_700_000_000, 120_000_000)),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            format_ts(ts(1_700_000_000, 1)),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(
            format_ts(ts(1_700_000_000, 500_000_000)),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(format_ts(ts(951_782_400, 0)), "2000-02-29T00:00:00Z");
        assert_eq!(format_ts(ts(951_868_800, 0)), "2000-03-01T00:00:00Z");
        assert_eq!(format_ts(ts(4_102_444_800, 0)), "2100-01-01T00:00:00Z");
        assert_eq!(format_ts(ts(253_402_300_799, 0)), "9999-12-31T23:59:59Z");
        assert_eq!(format_ts(ts(-1, 500_000_000)), "1969-12-31T23:59:59.5Z");
        let when = UNIX_EPOCH + Duration::new(1_795_451_101, 123_456_789);
        assert_eq!(format_timestamp(when), "2026-11-23T16:25:01.123456789Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_timestamp(before), "1969-12-31T23:59:59.5Z");
    }

    #[test]
    fn timestamps_parse_back_to_the_same_instant() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let secs = i64::try_from(x >> 30).unwrap() % 253_402_300_800;
            let nanos = u32::try_from(x % 1_000_000_000).unwrap();
            let nanos = if x & 1 == 0 {
                nanos / 1000 * 1000
            } else {
                nanos
            };
            let t = ts(secs, nanos);
            assert_eq!(
                parse_ts(format_ts(t).as_bytes()),
                Some(t),
                "{}",
                format_ts(t)
            );
        }
    }

    #[test]
    fn timestamps_parse_offsets_and_fractions_as_go_does() {
        let base = ts(1_700_000_000, 0);
        assert_eq!(parse_ts(b"2023-11-14T22:13:20Z"), Some(base));
        assert_eq!(parse_ts(b"2023-11-15T00:13:20+02:00"), Some(base));
        assert_eq!(parse_ts(b"2023-11-14T21:43:20-00:30"), Some(base));
        assert_eq!(
            parse_ts(b"2023-11-14T22:13:20.1Z"),
            Some(ts(1_700_000_000, 100_000_000))
        );
        assert_eq!(
            parse_ts(b"2023-11-14T22:13:20.1234567899Z"),
            Some(ts(1_700_000_000, 123_456_789))
        );
        assert_eq!(
            parse_ts(b"2023-11-14T22:13:20.000000001+00:00"),
            Some(ts(1_700_000_000, 1))
        );
        for bad in [
            &b""[..],
            b"2023-11-14T22:13:20",
            b"2023-11-14 22:13:20Z",
            b"2023-11-14T22:13:20.Z",
            b"2023-11-14T22:13:20z",
            b"2023-13-14T22:13:20Z",
            b"2023-02-29T22:13:20Z",
            b"2023-11-14T24:13:20Z",
            b"2023-11-14T22:13:60Z",
            b"2023-11-14T22:13:20+2:00",
            b"2023-11-14T22:13:20+02:00x",
            b"+023-11-14T22:13:20Z",
        ] {
            assert_eq!(parse_ts(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_ts(b"2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn lines_become_full_records_without_their_newline() {
        assert_eq!(
            split(16, &[b"one\ntwo\r\n\nthree\n"]),
            [f(b"one"), f(b"two"), f(b""), f(b"three")]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_one_full_record() {
        assert_eq!(split(4, &[b"abcd\n"]), [f(b"abcd")]);
        assert_eq!(split(4, &[b"abcd\r\n"]), [f(b"abcd")]);
        assert_eq!(split(4, &[b"abcd", b"\r", b"\n"]), [f(b"abcd")]);
    }

    #[test]
    fn long_lines_split_into_partials_of_the_limit() {
        assert_eq!(split(4, &[b"abcde\n"]), [p(b"abcd"), f(b"e")]);
        assert_eq!(split(4, &[b"abcdefgh\n"]), [p(b"abcd"), f(b"efgh")]);
        assert_eq!(
            split(4, &[b"ab", b"cdefghi", b"jk\n"]),
            [p(b"abcd"), p(b"efgh"), f(b"ijk")]
        );
    }

    #[test]
    fn unterminated_output_ends_as_partials() {
        assert_eq!(
            split(4, &[b"out\npartial"]),
            [f(b"out"), p(b"part"), p(b"ial")]
        );
        assert_eq!(split(8, &[b"x\r"]), [p(b"x\r")]);
        assert_eq!(split(8, &[]), []);
    }

    #[test]
    fn only_a_carriage_return_before_the_newline_is_dropped() {
        assert_eq!(
            split(8, &[b"a\rb\n\r\r\n\r", b"\n"]),
            [f(b"a\rb"), f(b"\r"), f(b"")]
        );
        assert_eq!(split(4, &[b"abcd\rx\n"]), [p(b"abcd"), f(b"\rx")]);
    }

    #[test]
    fn any_chunking_splits_like_containerd() {
        let mut x: u64 = 42;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for _ in 0..3000 {
            let max = usize::try_from(next(6) + 1).unwrap();
            let len = next(40);
            let input: Vec<u8> = (0..len)
                .map(|_| [b'a', b'b', b'\r', b'\n', 0, 0xff][usize::try_from(next(6)).unwrap()])
                .collect();
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = usize::try_from(next(5)).unwrap().min(rest.len());
                let (c, r) = rest.split_at(n);
                chunks.push(c);
                rest = r;
            }
            assert_eq!(
                split(max, &chunks),
                reference(max, &input),
                "max {max} {input:?} {chunks:?}"
            );
        }
    }

    #[test]
    fn records_encode_and_parse_back() {
        let mut out = Vec::new();
        encode_record(
            &mut out,
            ts(1_700_000_000, 5),
            Stream::Stderr,
            true,
            b"a b\0\xff",
        );
        assert_eq!(out, b"2023-11-14T22:13:20.000000005Z stderr P a b\0\xff\n");
        let r = parse_log(&out).unwrap();
        assert_eq!(
            r,
            [LogRecord {
                time: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
                stream: Stream::Stderr,
                partial: true,
                content: b"a b\0\xff".to_vec(),
            }]
        );
        let empty = parse_record(b"2016-10-06T00:17:09.669794203Z stdout F ").unwrap();
        assert_eq!((empty.partial, empty.content), (false, Vec::new()));
        let tagged = parse_record(b"2016-10-06T00:17:09.669794202Z stdout P:x y").unwrap();
        assert_eq!((tagged.partial, tagged.content), (true, b"y".to_vec()));
    }

    #[test]
    fn malformed_records_are_refused() {
        assert_eq!(
            parse_record(b"nospace"),
            Err(RecordError::Missing("stream"))
        );
        assert_eq!(
            parse_record(b"2016-10-06T00:17:09Z stdout F"),
            Err(RecordError::Missing("content"))
        );
        assert_eq!(
            parse_record(b"yesterday stdout F x"),
            Err(RecordError::Time("yesterday".into()))
        );
        assert_eq!(
            parse_record(b"2016-10-06T00:17:09Z stdin F x"),
            Err(RecordError::Stream("stdin".into()))
        );
        assert_eq!(
            parse_record(b"2016-10-06T00:17:09Z stdout X x"),
            Err(RecordError::Tag("X".into()))
        );
        assert_eq!(
            parse_log(b"2016-10-06T00:17:09Z stdout F x\n2016"),
            Err(LogParseError::Unterminated { line: 2 })
        );
        assert!(matches!(
            parse_log(b"2016-10-06T00:17:09Z stdout F x\nbad\n"),
            Err(LogParseError::Record { line: 2, .. })
        ));
    }

    #[test]
    fn stream_output_rejoins_split_lines() {
        let t = UNIX_EPOCH;
        let rec = |stream, partial, c: &[u8]| LogRecord {
            time: t,
            stream,
            partial,
            content: c.to_vec(),
        };
        let records = [
            rec(Stream::Stdout, true, b"ab"),
            rec(Stream::Stderr, false, b"err"),
            rec(Stream::Stdout, false, b"c"),
            rec(Stream::Stdout, true, b"tail"),
        ];
        assert_eq!(stream_output(&records, Stream::Stdout), b"abc\ntail");
        assert_eq!(stream_output(&records, Stream::Stderr), b"err\n");
    }
}
