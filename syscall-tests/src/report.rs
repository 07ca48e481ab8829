//! Judging one case (stdout and status compared between two runs) and the suite report.

use std::fmt;

use crate::run::tail_lines;
use crate::{RunOutput, Status};

/// Longest stdout line quoted in a mismatch.
const QUOTE_MAX: usize = 160;

/// The first stdout line where two runs differ. Lines are 1-based; `None` text means that run's
/// output had already ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiff {
    pub line: usize,
    pub left: Option<String>,
    pub right: Option<String>,
}

/// How two runs of a case differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Names of the two runs, e.g. ("native", "moat").
    pub labels: (&'static str, &'static str),
    /// First differing stdout line, if stdout differs.
    pub first_diff: Option<LineDiff>,
    pub left_status: Status,
    pub right_status: Status,
    /// Last lines of the second run's stderr (what moat or the case complained about).
    pub right_stderr: String,
}

/// Compares stdout byte for byte and the exit statuses; `None` when they agree.
pub fn compare(
    left: &RunOutput,
    right: &RunOutput,
    labels: (&'static str, &'static str),
) -> Option<Mismatch> {
    if left.stdout == right.stdout && left.status == right.status {
        return None;
    }
    let first_diff =
        (left.stdout != right.stdout).then(|| first_line_diff(&left.stdout, &right.stdout));
    Some(Mismatch {
        labels,
        first_diff,
        left_status: left.status.clone(),
        right_status: right.status.clone(),
        right_stderr: tail_lines(&right.stderr, 3),
    })
}

fn first_line_diff(a: &[u8], b: &[u8]) -> LineDiff {
    // split_inclusive keeps the '\n', so a missing final newline counts as a difference.
    let mut la = a.split_inclusive(|&c| c == b'\n');
    let mut lb = b.split_inclusive(|&c| c == b'\n');
    let mut line = 1;
    loop {
        let (x, y) = (la.next(), lb.next());
        if x != y || x.is_none() {
            return LineDiff {
                line,
                left: x.map(quote),
                right: y.map(quote),
            };
        }
        line += 1;
    }
}

fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut q: String = text.chars().take(QUOTE_MAX).collect();
    if text.chars().count() > QUOTE_MAX {
        q.push('…');
    }
    format!("{q:?}")
}

/// The outcome for one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Same stdout and status in both runs.
    Pass,
    /// Different stdout or status, and not a known failure.
    Fail(Mismatch),
    /// Listed in known-failures.txt and still failing.
    Known,
    /// Listed in known-failures.txt but passing: the entry must be removed.
    UnexpectedPass,
    /// Fails natively (or left files in /tmp), so it says nothing about the sandbox.
    Broken(String),
}

/// Verdict for a case whose reference run (`left`) passed natively.
pub fn judge(
    left: &RunOutput,
    right: &RunOutput,
    known_failure: bool,
    labels: (&'static str, &'static str),
) -> Verdict {
    match (compare(left, right, labels), known_failure) {
        (None, false) => Verdict::Pass,
        (None, true) => Verdict::UnexpectedPass,
        (Some(m), false) => Verdict::Fail(m),
        (Some(_), true) => Verdict::Known,
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    pub verdict: Verdict,
}

impl CaseResult {
    pub fn new(name: &str, verdict: Verdict) -> Self {
        Self {
            name: name.to_owned(),
            verdict,
        }
    }
}

/// Cases passing in the sandbox out of cases passing natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub passed: usize,
    pub total: usize,
}

impl Score {
    /// `passed / total` as a fraction (0 when nothing counts).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        // Counts are far below 2^52, so the conversions are exact.
        self.passed as f64 / self.total as f64
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.passed, self.total)
    }
}

/// Per-case results of a suite run, in case order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub results: Vec<CaseResult>,
}

impl Report {
    pub fn new(results: Vec<CaseResult>) -> Self {
        Self { results }
    }

    fn count(&self, f: impl Fn(&Verdict) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.verdict)).count()
    }

    /// Cases that pass in the sandbox (including unexpected passes) over cases that pass
    /// natively (everything but BROKEN).
    pub fn score(&self) -> Score {
        Score {
            passed: self.count(|v| matches!(v, Verdict::Pass | Verdict::UnexpectedPass)),
            total: self.count(|v| !matches!(v, Verdict::Broken(_))),
        }
    }

    /// PASS results.
    pub fn passed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Pass))
    }

    /// FAIL + UNEXPECTED-PASS + BROKEN results.
    pub fn failed(&self) -> usize {
        self.count(|v| {
            matches!(
                v,
                Verdict::Fail(_) | Verdict::UnexpectedPass | Verdict::Broken(_)
            )
        })
    }

    /// Whether the run should exit non-zero.
    pub fn any_failed(&self) -> bool {
        self.failed() > 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.results {
            match &r.verdict {
                Verdict::Pass => writeln!(f, "PASS {}", r.name)?,
                Verdict::Known => writeln!(f, "KNOWN {}", r.name)?,
                Verdict::UnexpectedPass => writeln!(
                    f,
                    "UNEXPECTED-PASS {}: passes but is in known-failures.txt; remove it",
                    r.name
                )?,
                Verdict::Broken(why) => writeln!(f, "BROKEN {}: {why}", r.name)?,
                Verdict::Fail(m) => {
                    writeln!(f, "FAIL {}", r.name)?;
                    write!(f, "{m}")?;
                }
            }
        }
        writeln!(f, "score: {}", self.score())?;
        writeln!(f, "{} passed, {} failed", self.passed(), self.failed())
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, r) = self.labels;
        let width = l.len().max(r.len());
        if let Some(d) = &self.first_diff {
            let show = |t: &Option<String>| t.clone().unwrap_or_else(|| "(end of output)".into());
            writeln!(f, "    stdout line {}:", d.line)?;
            writeln!(f, "      {l:>width$}: {}", show(&d.left))?;
            writeln!(f, "      {r:>width$}: {}", show(&d.right))?;
        }
        writeln!(
            f,
            "    status: {l} {}, {r} {}",
            self.left_status, self.right_status
        )?;
        if !self.right_stderr.is_empty() {
            writeln!(f, "    {r} stderr: {}", self.right_stderr)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: (&str, &str) = ("native", "moat");

    fn out(stdout: &str, status: Status) -> RunOutput {
        RunOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            status,
        }
    }

    #[test]
    fn identical_runs_compare_equal() {
        let a = out("x: ok\ny: EEXIST\n", Status::Exited(0));
        assert_eq!(compare(&a, &a.clone(), LABELS), None);
    }

    #[test]
    fn stderr_differences_are_ignored() {
        let a = out("x\n", Status::Exited(0));
        let mut b = a.clone();
        b.stderr = b"moat: warning\n".to_vec();
        assert_eq!(compare(&a, &b, LABELS), None);
    }

    #[test]
    fn finds_first_differing_line() {
        let a = out("a: OK\nb: OK\nc: OK\n", Status::Exited(0));
        let b = out("a: OK\nb: ENOSYS\nc: OK\n", Status::Exited(0));
        let m = compare(&a, &b, LABELS).unwrap();
        assert_eq!(
            m.first_diff,
            Some(LineDiff {
                line: 2,
                left: Some("\"b: OK\\n\"".into()),
                right: Some("\"b: ENOSYS\\n\"".into())
            })
        );
    }

    #[test]
    fn shorter_output_reports_end_of_output() {
        let a = out("a\nb\n", Status::Exited(0));
        let b = out("a\n", Status::Signaled(11));
        let m = compare(&a, &b, LABELS).unwrap();
        let d = m.first_diff.clone().unwrap();
        assert_eq!((d.line, d.right), (2, None));
        let text = m.to_string();
        assert!(text.contains("moat: (end of output)"), "{text}");
        assert!(
            text.contains("status: native exit 0, moat signal SIGSEGV"),
            "{text}"
        );
    }

    #[test]
    fn missing_final_newline_is_a_difference() {
        let a = out("a\nb\n", Status::Exited(0));
        let b = out("a\nb", Status::Exited(0));
        assert_eq!(compare(&a, &b, LABELS).unwrap().first_diff.unwrap().line, 2);
    }

    #[test]
    fn status_only_difference_has_no_line_diff() {
        let a = out("same\n", Status::Exited(0));
        let b = out("same\n", Status::Exited(1));
        let m = compare(&a, &b, LABELS).unwrap();
        assert_eq!(m.first_diff, None);
        assert!(!m.to_string().contains("stdout line"));
    }

    #[test]
    fn judge_applies_known_failures() {
        let good = out("a\n", Status::Exited(0));
        let bad = out("b\n", Status::Exited(0));
        assert_eq!(judge(&good, &good, false, LABELS), Verdict::Pass);
        assert!(matches!(
            judge(&good, &bad, false, LABELS),
            Verdict::Fail(_)
        ));
        assert_eq!(judge(&good, &bad, true, LABELS), Verdict::Known);
        assert_eq!(judge(&good, &good, true, LABELS), Verdict::UnexpectedPass);
        let timeout = out("", Status::TimedOut);
        assert_eq!(judge(&good, &timeout, true, LABELS), Verdict::Known);
    }

    #[test]
    fn report_counts_score_and_final_lines() {
        let good = out("a\n", Status::Exited(0));
        let bad = out("b\n", Status::Exited(2));
        let report = Report::new(vec![
            CaseResult::new("p1", Verdict::Pass),
            CaseResult::new("p2", Verdict::Pass),
            CaseResult::new("f1", judge(&good, &bad, false, LABELS)),
            CaseResult::new("k1", Verdict::Known),
            CaseResult::new("u1", Verdict::UnexpectedPass),
            CaseResult::new("b1", Verdict::Broken("native exit 1".into())),
        ]);
        assert_eq!(
            report.score(),
            Score {
                passed: 3,
                total: 5
            }
        );
        assert!((report.score().ratio() - 0.6).abs() < 1e-9);
        assert_eq!(report.passed(), 2);
        assert_eq!(report.failed(), 3);
        assert!(report.any_failed());
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PASS p1");
        assert_eq!(lines[2], "FAIL f1");
        assert!(text.contains("\nKNOWN k1\n"));
        assert!(text.contains("\nUNEXPECTED-PASS u1"));
        assert!(text.contains("\nBROKEN b1: native exit 1\n"));
        assert_eq!(lines[lines.len() - 2], "score: 3/5");
        assert_eq!(lines[lines.len() - 1], "2 passed, 3 failed");
    }

    #[test]
    fn all_passing_report_does_not_fail() {
        let report = Report::new(vec![
            CaseResult::new("a", Verdict::Pass),
            CaseResult::new("k", Verdict::Known),
        ]);
        assert!(!report.any_failed());
        assert!(report
            .to_string()
            .ends_with("score: 1/2\n1 passed, 0 failed\n"));
        assert_eq!(Report::new(Vec::new()).score().ratio(), 0.0);
    }
}
