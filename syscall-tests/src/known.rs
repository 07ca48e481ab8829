//! The known-failures list: cases expected to fail inside the sandbox, each with a reason.
//!
//! Format, one entry per line: `case_name  # reason`. Lines that are blank or start with `#` are
//! comments. A case name is lower-case ASCII letters, digits and `_`; a name may appear once, and
//! every entry needs a reason.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::{Case, HarnessError};

/// Parsed `known-failures.txt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownFailures {
    /// Case name → reason.
    entries: BTreeMap<String, String>,
}

impl KnownFailures {
    /// Reads and parses the list at `path`.
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let text = fs::read_to_string(path).map_err(|source| HarnessError::ReadKnownFailures {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the list from its text.
    pub fn parse(text: &str) -> Result<Self, HarnessError> {
        let mut entries = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let (name, reason) = match raw.split_once('#') {
                Some((name, reason)) => (name.trim(), reason.trim()),
                None => (raw.trim(), ""),
            };
            if name.is_empty() {
                continue;
            }
            let valid = name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(HarnessError::ParseKnownFailures {
                    line,
                    message: format!("`{name}` is not a case name"),
                });
            }
            if reason.is_empty() {
                return Err(HarnessError::ParseKnownFailures {
                    line,
                    message: format!("`{name}` needs a `# reason`"),
                });
            }
            if entries.insert(name.to_owned(), reason.to_owned()).is_some() {
                return Err(HarnessError::ParseKnownFailures {
                    line,
                    message: format!("`{name}` is listed twice"),
                });
            }
        }
        Ok(Self { entries })
    }

    /// Whether `case` is expected to fail in the sandbox.
    pub fn contains(&self, case: &str) -> bool {
        self.entries.contains_key(case)
    }

    /// The reason given for `case`, if it is listed.
    pub fn reason(&self, case: &str) -> Option<&str> {
        self.entries.get(case).map(String::as_str)
    }

    /// Number of listed cases.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Listed names that are not among `cases`: stale entries, which the list must not keep.
    pub fn unknown_names(&self, cases: &[Case]) -> Vec<String> {
        self.entries
            .keys()
            .filter(|name| !cases.iter().any(|c| &c.name == *name))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const SAMPLE: &str = "\
# Cases expected to fail under `moat do`.

sig_regs_restore   # sentry does not save AVX state yet
  epoll_basic#no epoll
mm_mremap # MREMAP_FIXED # not yet
";

    #[test]
    fn parses_names_reasons_and_skips_comments() {
        let k = KnownFailures::parse(SAMPLE).unwrap();
        assert_eq!(k.len(), 3);
        assert!(
            k.contains("sig_regs_restore") && k.contains("epoll_basic") && k.contains("mm_mremap")
        );
        assert!(!k.contains("Cases"));
        assert_eq!(
            k.reason("sig_regs_restore"),
            Some("sentry does not save AVX state yet")
        );
        assert_eq!(k.reason("epoll_basic"), Some("no epoll"));
        assert_eq!(k.reason("mm_mremap"), Some("MREMAP_FIXED # not yet"));
        assert_eq!(k.reason("file_open"), None);
    }

    #[test]
    fn empty_and_comment_only_lists_are_empty() {
        assert!(KnownFailures::parse("").unwrap().is_empty());
        assert!(KnownFailures::parse("# nothing\n\n   \n#x y z\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rejects_duplicates_with_line_number() {
        let err = KnownFailures::parse("a # x\nb # y\na # again\n").unwrap_err();
        match err {
            HarnessError::ParseKnownFailures { line, message } => {
                assert_eq!(line, 3);
                assert!(message.contains("twice"));
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn rejects_names_that_cannot_be_cases() {
        for bad in [
            "file_open.c # r",
            "Two Words # r",
            "../etc # r",
            "sig-kill # r",
        ] {
            assert!(
                matches!(
                    KnownFailures::parse(bad),
                    Err(HarnessError::ParseKnownFailures { line: 1, .. })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn every_entry_needs_a_reason() {
        for bad in ["file_open", "file_open #", "file_open #   "] {
            match KnownFailures::parse(&format!("# header\n{bad}\n")) {
                Err(HarnessError::ParseKnownFailures { line: 2, message }) => {
                    assert!(message.contains("reason"), "{message}")
                }
                other => panic!("{bad}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn reports_stale_entries() {
        let k = KnownFailures::parse("file_open # a\ngone_case # removed\n").unwrap();
        let cases = [Case {
            name: "file_open".into(),
            source: PathBuf::from("cases/file_open.c"),
            binary: PathBuf::from("/b/file_open"),
            launcher: PathBuf::from("/b/clean-exec"),
        }];
        assert_eq!(k.unknown_names(&cases), ["gone_case"]);
    }

    #[test]
    fn load_reads_the_shipped_list() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("known-failures.txt");
        KnownFailures::load(&path).unwrap();
        assert!(matches!(
            KnownFailures::load(Path::new("/nonexistent/known")),
            Err(HarnessError::ReadKnownFailures { .. })
        ));
    }
}
