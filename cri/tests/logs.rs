//! The CRI log writer on real pipes: output of a shell and of writer threads (through `cat`)
//! becomes records in kubelet's format, split and tagged as containerd splits and tags them,
//! byte for byte, in order per stream, never interleaved, with times that never go back, and a
//! rename plus reopen in the middle of a stream loses and repeats nothing.

use std::fs;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use moat_cri::logs::{
    format_timestamp, parse_log, parse_timestamp, stream_output, LogError, LogRecord, LogWriter,
    Stream, DEFAULT_MAX_LINE_SIZE,
};

fn limit(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("a non-zero limit")
}

fn default_limit() -> NonZeroUsize {
    limit(DEFAULT_MAX_LINE_SIZE)
}

/// A real pipe fed by the test: bytes written to `stdin` come out of the returned fd, through
/// `cat`, which ends it when `stdin` is dropped.
fn cat() -> (ChildStdin, OwnedFd, Child) {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let stdin = child.stdin.take().expect("cat has a stdin pipe");
    let out = OwnedFd::from(child.stdout.take().expect("cat has a stdout pipe"));
    (stdin, out, child)
}

/// Runs `script` under `sh` with both outputs going to a new writer of `path`, and waits for
/// the shell and then for the writer, as container exit and ExecSync do.
fn run_sh(path: &Path, max: NonZeroUsize, script: &str) -> LogWriter {
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let out = child.stdout.take().map(OwnedFd::from);
    let err = child.stderr.take().map(OwnedFd::from);
    let writer = LogWriter::start(path, max, out, err).expect("start the log writer");
    assert!(child.wait().expect("wait for sh").success());
    writer.wait();
    writer
}

/// Checks every line of a log file byte for byte against the format kubelet parses, with
/// times that never go back (also from `after` on), and returns its records.
fn check_file(path: &Path, after: Option<SystemTime>) -> Vec<LogRecord> {
    let data = fs::read(path).expect("read the log file");
    let records = parse_log(&data).expect("parse the log file");
    let mut last = after;
    for (line, rec) in data.split_inclusive(|&c| c == b'\n').zip(&records) {
        let text = String::from_utf8_lossy(line);
        let time_end = line
            .iter()
            .position(|&c| c == b' ')
            .expect("a space after the time");
        let time = std::str::from_utf8(&line[..time_end]).expect("an ASCII time");
        assert_eq!(
            time,
            format_timestamp(rec.time),
            "time printed as Go does: {text}"
        );
        assert!(time.ends_with('Z'), "{text}");
        assert!(!time.contains('.') || !time.ends_with("0Z"), "{text}");
        assert_eq!(parse_timestamp(time), Some(rec.time));
        let mut expect = format!(
            "{time} {} {} ",
            rec.stream,
            if rec.partial { "P" } else { "F" }
        )
        .into_bytes();
        expect.extend_from_slice(&rec.content);
        expect.push(b'\n');
        assert_eq!(line, &expect[..]);
        if let Some(prev) = last {
            assert!(rec.time >= prev, "time went back at {text}");
        }
        last = Some(rec.time);
    }
    records
}

fn of(records: &[LogRecord], stream: Stream) -> Vec<(bool, Vec<u8>)> {
    records
        .iter()
        .filter(|r| r.stream == stream)
        .map(|r| (r.partial, r.content.clone()))
        .collect()
}

fn full(c: &[u8]) -> (bool, Vec<u8>) {
    (false, c.to_vec())
}

fn part(c: &[u8]) -> (bool, Vec<u8>) {
    (true, c.to_vec())
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("pods/ns_pod_uid/app/0.log")
}

#[test]
fn shell_output_becomes_full_and_partial_records_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let before = SystemTime::now();
    let w = run_sh(
        &path,
        default_limit(),
        "echo out; echo err >&2; echo out2; printf partial",
    );
    w.close().unwrap();
    let records = check_file(&path, Some(before));
    assert_eq!(
        of(&records, Stream::Stdout),
        [full(b"out"), full(b"out2"), part(b"partial")]
    );
    assert_eq!(of(&records, Stream::Stderr), [full(b"err")]);
    let last = records.iter().map(|r| r.time).max().unwrap();
    assert!(last <= SystemTime::now());
}

#[test]
fn long_lines_split_into_partials_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let script = "head -c 40000 /dev/zero | tr '\\0' a; echo; \
                  head -c 16384 /dev/zero | tr '\\0' b; echo; \
                  head -c 16385 /dev/zero | tr '\\0' c; echo; \
                  head -c 32768 /dev/zero | tr '\\0' d; echo; \
                  head -c 20000 /dev/zero | tr '\\0' e";
    run_sh(&path, default_limit(), script).close().unwrap();
    let records = check_file(&path, None);
    let rep = |c: u8, n: usize| vec![c; n];
    assert_eq!(
        of(&records, Stream::Stdout),
        [
            part(&rep(b'a', 16384)),
            part(&rep(b'a', 16384)),
            full(&rep(b'a', 40000 - 2 * 16384)),
            full(&rep(b'b', 16384)),
            part(&rep(b'c', 16384)),
            full(b"c"),
            part(&rep(b'd', 16384)),
            full(&rep(b'd', 16384)),
            part(&rep(b'e', 16384)),
            part(&rep(b'e', 20000 - 16384)),
        ]
    );
    assert!(of(&records, Stream::Stderr).is_empty());
}

#[test]
fn empty_lines_and_carriage_returns_are_kept_as_containerd_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    run_sh(
        &path,
        default_limit(),
        "printf 'a\\r\\n\\n\\r\\nb\\rc\\n\\r\\r\\n \\n'",
    )
    .close()
    .unwrap();
    assert_eq!(
        of(&check_file(&path, None), Stream::Stdout),
        [
            full(b"a"),
            full(b""),
            full(b""),
            full(b"b\rc"),
            full(b"\r"),
            full(b" ")
        ]
    );
}

#[test]
fn binary_bytes_pass_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let (mut stdin, out, mut cat) = cat();
    let w = LogWriter::start(&path, limit(100), Some(out), None).unwrap();
    let mut input: Vec<u8> = (0..=255u8).cycle().take(256 * 5).collect();
    input.extend_from_slice(b"\0\xff\xfe tail without newline");
    for chunk in input.chunks(77) {
        stdin.write_all(chunk).unwrap();
    }
    drop(stdin);
    cat.wait().unwrap();
    w.close().unwrap();
    let records = check_file(&path, None);
    // No `\r` comes right before a `\n` in 0..=255, so nothing is dropped but the newlines.
    assert_eq!(stream_output(&records, Stream::Stdout), input);
    assert!(records.iter().all(|r| r.content.len() <= 100));
    assert!(records.last().unwrap().partial);
}

#[test]
fn reopen_after_rename_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let (mut stdin, out, mut cat) = cat();
    let w = LogWriter::start(&path, limit(64), Some(out), None).unwrap();
    const LINES: usize = 30_000;
    let feeder = thread::spawn(move || {
        for i in 0..LINES {
            // Every 97th line is long enough to be split, so a rotation may fall between the
            // parts of one line.
            let pad = if i % 97 == 0 {
                "x".repeat(150)
            } else {
                String::new()
            };
            writeln!(stdin, "line {i} {pad}").unwrap();
            if i % 100 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut rotated = Vec::new();
    for n in 1..=6 {
        while fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 && !feeder.is_finished() {
            thread::sleep(Duration::from_micros(200));
        }
        let old = dir.path().join(format!("rotated.{n}"));
        fs::rename(&path, &old).unwrap();
        w.reopen().unwrap();
        rotated.push(old);
        thread::sleep(Duration::from_millis(5));
    }
    feeder.join().unwrap();
    cat.wait().unwrap();
    w.close().unwrap();
    rotated.push(path.clone());
    let mut all = Vec::new();
    let mut last = None;
    for file in &rotated {
        let records = check_file(file, last);
        last = records.last().map(|r| r.time).or(last);
        all.extend(records);
    }
    assert!(
        rotated[..6]
            .iter()
            .all(|f| fs::metadata(f).unwrap().len() > 0),
        "each rotation fell in the middle of the stream"
    );
    let mut expect = String::new();
    for i in 0..LINES {
        let pad = if i % 97 == 0 {
            "x".repeat(150)
        } else {
            String::new()
        };
        expect.push_str(&format!("line {i} {pad}\n"));
    }
    assert_eq!(
        String::from_utf8(stream_output(&all, Stream::Stdout)).unwrap(),
        expect
    );
}

#[test]
fn a_line_open_at_reopen_lands_whole_in_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let (mut stdin, out, mut cat) = cat();
    let w = LogWriter::start(&path, default_limit(), Some(out), None).unwrap();
    stdin.write_all(b"first\nhalf-").unwrap();
    while fs::metadata(&path).unwrap().len() == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    let old = dir.path().join("rotated");
    fs::rename(&path, &old).unwrap();
    w.reopen().unwrap();
    stdin.write_all(b"done\n").unwrap();
    drop(stdin);
    cat.wait().unwrap();
    w.close().unwrap();
    let old_records = check_file(&old, None);
    assert_eq!(of(&old_records, Stream::Stdout), [full(b"first")]);
    let new_records = check_file(&path, old_records.last().map(|r| r.time));
    assert_eq!(of(&new_records, Stream::Stdout), [full(b"half-done")]);
}

#[test]
fn concurrent_streams_never_interleave_within_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let (out_in, out, mut out_cat) = cat();
    let (err_in, err, mut err_cat) = cat();
    let w = LogWriter::start(&path, default_limit(), Some(out), Some(err)).unwrap();
    let line_len = |i: usize, salt: usize| (i * 7919 + salt) % 40_000;
    let expected = |c: u8, salt: usize| -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..600 {
            v.extend(std::iter::repeat_n(c, line_len(i, salt)));
            v.push(b'\n');
        }
        v
    };
    let (want_out, want_err) = (expected(b'o', 0), expected(b'e', 12_345));
    let feed = |mut pipe: ChildStdin, data: Vec<u8>| {
        thread::spawn(move || {
            for chunk in data.chunks(4093) {
                pipe.write_all(chunk).unwrap();
            }
        })
    };
    let a = feed(out_in, want_out.clone());
    let b = feed(err_in, want_err.clone());
    a.join().unwrap();
    b.join().unwrap();
    out_cat.wait().unwrap();
    err_cat.wait().unwrap();
    w.close().unwrap();
    let records = check_file(&path, None);
    for r in &records {
        let c = if r.stream == Stream::Stdout {
            b'o'
        } else {
            b'e'
        };
        assert!(r.content.iter().all(|&b| b == c), "a record mixes streams");
        assert!(r.content.len() <= DEFAULT_MAX_LINE_SIZE);
    }
    assert_eq!(stream_output(&records, Stream::Stdout), want_out);
    assert_eq!(stream_output(&records, Stream::Stderr), want_err);
    let streams: Vec<Stream> = records.iter().map(|r| r.stream).collect();
    assert!(
        streams.windows(2).any(|w| w[0] != w[1]),
        "the two streams were written concurrently"
    );
}

#[test]
fn wait_returns_once_every_pipe_has_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let (mut out_in, out, mut out_cat) = cat();
    let (err_in, err, mut err_cat) = cat();
    let w = LogWriter::start(&path, default_limit(), Some(out), Some(err)).unwrap();
    drop(err_in);
    err_cat.wait().unwrap();
    assert!(!w.wait_timeout(Duration::from_millis(100)));
    assert!(!w.is_finished());
    out_in.write_all(b"last words").unwrap();
    drop(out_in);
    out_cat.wait().unwrap();
    assert!(w.wait_timeout(Duration::from_secs(30)));
    assert!(w.is_finished());
    assert!(matches!(w.reopen(), Err(LogError::Finished { .. })));
    w.close().unwrap();
    assert_eq!(
        of(&check_file(&path, None), Stream::Stdout),
        [part(b"last words")]
    );
}

#[test]
fn the_log_file_is_created_with_its_parents_appended_to_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    run_sh(&path, default_limit(), "echo first")
        .close()
        .unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o} is within 0640");
    assert_eq!(mode & 0o600, 0o600);
    assert!(path.parent().unwrap().is_dir());
    run_sh(&path, default_limit(), "echo second >&2")
        .close()
        .unwrap();
    let records = check_file(&path, None);
    assert_eq!(of(&records, Stream::Stdout), [full(b"first")]);
    assert_eq!(of(&records, Stream::Stderr), [full(b"second")]);

    let target = dir.path().join("elsewhere");
    fs::write(&target, b"").unwrap();
    let link = dir.path().join("link.log");
    symlink(&target, &link).unwrap();
    let err = LogWriter::start(&link, default_limit(), None, None).unwrap_err();
    assert!(matches!(err, LogError::Open { .. }), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"");
}

#[test]
fn a_writer_without_streams_has_ended_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let w = LogWriter::start(&path, default_limit(), None, None).unwrap();
    assert!(w.is_finished());
    assert!(w.wait_timeout(Duration::ZERO));
    assert_eq!(w.path(), path);
    w.close().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"");
}
