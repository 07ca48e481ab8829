//! Finding the C cases and compiling them, skipping binaries newer than their sources.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::{parallel_map, HarnessError, WORKERS};

/// One compiled C program of `cases/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// File stem of the source, e.g. `file_open`.
    pub name: String,
    /// `cases/<name>.c`.
    pub source: PathBuf,
    /// Absolute path of the static binary.
    pub binary: PathBuf,
    /// Absolute path of `clean-exec` (from `support/clean_exec.c`), which starts the case (or
    /// moat) with only fds 0-2, no blocked or ignored signals and umask 022, whatever state
    /// the harness itself inherited.
    pub launcher: PathBuf,
}

/// Name of the launcher binary in the build directory; not a possible case name.
const LAUNCHER: &str = "clean-exec";

/// The `cases/` directory of this crate.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// Compiles every `cases/*.c` into `out_dir` (2 at a time) and returns the cases sorted by name.
pub fn build_all(out_dir: &Path) -> Result<Vec<Case>, HarnessError> {
    build_cases_in(&cases_dir(), out_dir)
}

/// Like [`build_all`] for any directory of cases. A binary newer than its source and than every
/// header of the directory is not rebuilt.
pub fn build_cases_in(cases: &Path, out_dir: &Path) -> Result<Vec<Case>, HarnessError> {
    let read_err = |source| HarnessError::ReadCases {
        path: cases.to_path_buf(),
        source,
    };
    let mut sources = Vec::new();
    let mut newest_header = SystemTime::UNIX_EPOCH;
    for entry in fs::read_dir(cases).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        match path.extension().and_then(OsStr::to_str) {
            Some("c") => sources.push(path),
            Some("h") => newest_header = newest_header.max(mtime(&path).map_err(read_err)?),
            _ => {}
        }
    }
    sources.sort();
    fs::create_dir_all(out_dir).map_err(|source| HarnessError::CreateBuildDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let out_dir = fs::canonicalize(out_dir).map_err(|source| HarnessError::CreateBuildDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let launcher = out_dir.join(LAUNCHER);
    let launcher_source = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/clean_exec.c");
    compile(
        LAUNCHER,
        &launcher_source,
        &launcher,
        SystemTime::UNIX_EPOCH,
    )?;
    let cases: Vec<Case> = sources
        .into_iter()
        .filter_map(|source| {
            let name = source.file_stem()?.to_str()?.to_owned();
            let binary = out_dir.join(&name);
            Some(Case {
                binary,
                name,
                source,
                launcher: launcher.clone(),
            })
        })
        .collect();
    let results = parallel_map(&cases, WORKERS, |case| {
        compile(&case.name, &case.source, &case.binary, newest_header)
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(cases)
}

fn mtime(path: &Path) -> std::io::Result<SystemTime> {
    fs::metadata(path)?.modified()
}

/// Compiles `source` into `binary` unless `binary` is newer than both it and `newest_header`.
fn compile(
    name: &str,
    source: &Path,
    binary: &Path,
    newest_header: SystemTime,
) -> Result<(), HarnessError> {
    let inputs_time = mtime(source)
        .map_err(|e| HarnessError::ReadCases {
            path: source.to_path_buf(),
            source: e,
        })?
        .max(newest_header);
    if let Ok(built) = mtime(binary) {
        if built > inputs_time {
            return Ok(());
        }
    }
    // Compile to a temporary name so an interrupted build never leaves a fresh, broken binary.
    let tmp = binary.with_extension("tmp");
    let out = Command::new("gcc")
        .args(["-static", "-O1", "-pthread", "-Wall", "-o"])
        .arg(&tmp)
        .arg(source)
        .output()
        .map_err(|e| HarnessError::SpawnCompiler {
            case: name.to_owned(),
            source: e,
        })?;
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(HarnessError::Compile {
            case: name.to_owned(),
            output,
        });
    }
    fs::rename(&tmp, binary).map_err(|e| HarnessError::InstallBinary {
        case: name.to_owned(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("st_harness_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn builds_sorted_cases_and_skips_up_to_date_binaries() {
        let dir = scratch("build");
        let cases = dir.join("cases");
        fs::create_dir(&cases).unwrap();
        fs::write(cases.join("b_two.c"), "int main(void) { return 0; }\n").unwrap();
        fs::write(
            cases.join("a_one.c"),
            "#include \"h.h\"\nint main(void) { return X; }\n",
        )
        .unwrap();
        fs::write(cases.join("h.h"), "#define X 0\n").unwrap();
        fs::write(cases.join("notes.txt"), "not a case\n").unwrap();
        let out = dir.join("out");
        let built = build_cases_in(&cases, &out).unwrap();
        let names: Vec<_> = built.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a_one", "b_two"]);
        assert!(built
            .iter()
            .all(|c| c.binary.is_absolute() && c.binary.exists()));
        assert!(built
            .iter()
            .all(|c| c.launcher == out.canonicalize().unwrap().join(LAUNCHER)));
        assert!(built[0].launcher.exists());
        let first = mtime(&built[0].binary).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        build_cases_in(&cases, &out).unwrap();
        assert_eq!(
            mtime(&built[0].binary).unwrap(),
            first,
            "up-to-date binary was rebuilt"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compile_error_names_the_case() {
        let dir = scratch("broken");
        fs::write(dir.join("bad.c"), "int main(void) { return nope; }\n").unwrap();
        let err = build_cases_in(&dir, &dir.join("out")).unwrap_err();
        match err {
            HarnessError::Compile { case, output } => {
                assert_eq!(case, "bad");
                assert!(output.contains("nope"));
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(!dir.join("out/bad").exists() && !dir.join("out/bad.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
