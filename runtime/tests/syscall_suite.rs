//! The syscall-test suite: every C case in `syscall-tests/cases` runs natively and inside
//! `moat do`; outputs and statuses must match, except for the cases listed (with reasons)
//! in `syscall-tests/known-failures.txt`. Prints the compatibility score.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn syscall_suite_matches_linux() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../syscall-tests");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("syscall-tests");
    let cases = syscall_tests::build_all(&out).expect("build the C cases");
    let known = syscall_tests::KnownFailures::load(&root.join("known-failures.txt"))
        .expect("known failures");
    assert!(
        known.unknown_names(&cases).is_empty(),
        "known-failures.txt names unknown cases"
    );
    let report = syscall_tests::run_suite(Path::new(env!("CARGO_BIN_EXE_moat")), &cases, &known);
    println!("{report}");
    assert!(!report.any_failed(), "syscall suite failed:\n{report}");
}
