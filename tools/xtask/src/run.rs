//! Running commands: quietly with their output kept for the error, or as a test run whose
//! libtest-style report is parsed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The last lines of a command's output, for an error message.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// What a finished command printed.
struct Ran {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The error for a failed command, ending with the last lines of `text`.
    fn failure(&self, cmd: &Command, text: &str, lines: usize) -> String {
        format!(
            "`{}` failed ({}):\n{}",
            describe(cmd),
            self.status,
            tail(text, lines)
        )
    }
}

/// Runs `cmd` with no standard input and its output captured.
fn execute(cmd: &mut Command) -> Result<Ran, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}` could not start: {e}", describe(cmd)))?;
    Ok(Ran {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `cmd` to the end: whether it succeeded, and its stdout and stderr together.
pub fn output(cmd: &mut Command) -> Result<(bool, String), String> {
    let ran = execute(cmd)?;
    Ok((ran.status.success(), ran.combined()))
}

/// Runs `cmd`, returning its stdout; stderr goes into the error.
pub fn capture(cmd: &mut Command) -> Result<String, String> {
    let ran = execute(cmd)?;
    if ran.status.success() {
        Ok(ran.stdout)
    } else {
        Err(ran.failure(cmd, &ran.stderr, 40))
    }
}

/// Runs `cmd` with its output captured; on failure the error holds the last lines.
pub fn run_quiet(cmd: &mut Command) -> Result<String, String> {
    let ran = execute(cmd)?;
    let text = ran.combined();
    if ran.status.success() {
        Ok(text)
    } else {
        Err(ran.failure(cmd, &text, 60))
    }
}

pub fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin")
}

/// Finds `bin` on PATH or in cargo's bin directory.
pub fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::iter::once(cargo_bin_dir()))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// A parsed test run.
pub struct TestRun {
    pub passed: usize,
    pub failed: usize,
    pub names: BTreeSet<String>,
    pub output: String,
    pub success: bool,
}

/// Runs a test command and reads its libtest-style report (native libtest and
/// wasm-bindgen-test-runner print the same lines).
pub fn run_tests(cmd: &mut Command) -> Result<TestRun, String> {
    let ran = execute(cmd)?;
    let output = ran.combined();
    let (passed, failed, names) = parse_report(&output);
    Ok(TestRun {
        passed,
        failed,
        names,
        output,
        success: ran.status.success(),
    })
}

/// The passed and failed counts of every `test result:` line, and the names of the tests
/// reported `ok`.
fn parse_report(output: &str) -> (usize, usize, BTreeSet<String>) {
    let (mut passed, mut failed) = (0, 0);
    let mut names = BTreeSet::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += number_before(rest, " passed");
            failed += number_before(rest, " failed");
        } else if let Some((head, verdict)) = line.rsplit_once(" ... ") {
            // `test NAME ... ok`, possibly glued to a runner message before it (in a worker,
            // the runner appends "Worker error: ..." with no newline); a test path never
            // holds "test ".
            let name = head.rfind("test ").map(|at| &head[at + "test ".len()..]);
            if let (Some(name), "ok") = (name, verdict.trim()) {
                names.insert(name.trim().to_owned());
            }
        }
    }
    (passed, failed, names)
}

/// What a failed run's output shows in the report: each panic with the lines after it (its
/// message, which a browser's stack trace would push out of a plain tail), then the last 80
/// lines, without the runner's "Invoking test" lines and the browsers' stack frames.
pub fn failure_excerpt(output: &str) -> String {
    let noise = |l: &str| {
        let l = l.trim_start();
        l.starts_with("Invoking test")
            || l.contains("wasm-function[")
            || (l.contains("@http://") && !l.contains(' '))
    };
    let lines: Vec<&str> = output.lines().filter(|l| !noise(l)).collect();
    let mut excerpt = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("panicked at") {
            excerpt.extend(lines[i..(i + 6).min(lines.len())].iter().copied());
            excerpt.push("");
        }
    }
    excerpt.extend(lines[lines.len().saturating_sub(80)..].iter().copied());
    excerpt.join("\n")
}

fn number_before(text: &str, label: &str) -> usize {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{failure_excerpt, number_before, parse_report};

    #[test]
    fn a_failure_excerpt_keeps_the_panic_message_and_drops_browser_stack_frames() {
        let mut output = String::from("running 2 tests\n");
        output.push_str("panicked at tests/src/suite.rs:58:5:\nassertion `left == right` failed\n");
        output.push_str("  left: (1005, true)\n right: (1006, false)\n\nStack:\n");
        for i in 0..200 {
            output.push_str(&format!(
                "        f{i}@http://127.0.0.1:1/wasm-bindgen-test_bg.wasm:wasm-function[{i}]:0x1\n"
            ));
        }
        output.push_str("failures:\n    suite::x\ntest result: FAILED. 1 passed; 1 failed\n");
        let excerpt = failure_excerpt(&output);
        assert!(excerpt.contains("right: (1006, false)"), "{excerpt}");
        assert!(excerpt.contains("test result: FAILED"), "{excerpt}");
        assert!(!excerpt.contains("wasm-function["), "{excerpt}");
    }

    #[test]
    fn a_test_line_glued_to_a_worker_error_still_counts() {
        // wasm-bindgen-test-runner 0.2.130, dedicated worker: an error the worker reports
        // (a panicking listener, `reportError`) reaches the page's `Worker` object, and the
        // runner appends "\nWorker error: <message>" to its output with no newline after it.
        let output = "running 3 tests\n\
            test suite::a ... ok\n\
            \n\
            Worker error: Uncaught RuntimeError: unreachable\n\
            Worker error: Uncaught RuntimeError: unreachabletest suite::b ... ok\n\
            test suite::c ... FAILED\n\
            \n\
            test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 filtered out; finished in 1s\n";
        let (passed, failed, names) = parse_report(output);
        assert_eq!((passed, failed), (2, 1));
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["suite::a", "suite::b"]
        );
    }

    #[test]
    fn reads_libtest_and_wasm_bindgen_test_summaries() {
        let native =
            "ok. 28 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.64s";
        assert_eq!(
            (
                number_before(native, " passed"),
                number_before(native, " failed")
            ),
            (28, 0)
        );
        let wasm = "FAILED. 27 passed; 1 failed; 0 ignored; 0 filtered out; finished in 3.29s";
        assert_eq!(
            (
                number_before(wasm, " passed"),
                number_before(wasm, " failed")
            ),
            (27, 1)
        );
    }
}
