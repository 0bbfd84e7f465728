//! Autobahn|Testsuite, the industry's WebSocket protocol suite, against anyws's native client.
//!
//! Sets up the suite (Python 2.7 from pyenv, a virtualenv, `autobahntestsuite` from PyPI) in
//! `target/autobahn`, starts its fuzzing server on 127.0.0.1, runs
//! `crates/anyws/examples/autobahn_client.rs` (anyws's public API only: echo everything) over
//! every case, and reads the JSON report.

use crate::run::{capture, run_quiet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the committed summary lives.
pub const SUMMARY: &str = "tests/autobahn/summary.md";

/// The report, counted.
pub struct Report {
    /// Behaviour -> case ids.
    pub behavior: BTreeMap<String, Vec<String>>,
    /// Close behaviour -> case ids.
    pub close: BTreeMap<String, Vec<String>>,
}

impl Report {
    fn total(&self) -> usize {
        self.behavior.values().map(Vec::len).sum()
    }

    /// What `cargo xtask test` accepts (its problems, empty when none): no FAILED, no WRONG
    /// CODE, and UNIMPLEMENTED only for the permessage-deflate cases (12.*, 13.*).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for map in [&self.behavior, &self.close] {
            for bad in ["FAILED", "WRONG CODE"] {
                if let Some(cases) = map.get(bad) {
                    out.push(format!("{bad}: {}", cases.join(", ")));
                }
            }
        }
        let deflate = |c: &String| c.starts_with("12.") || c.starts_with("13.");
        let stray: Vec<&String> = self
            .behavior
            .get("UNIMPLEMENTED")
            .into_iter()
            .flatten()
            .filter(|c| !deflate(c))
            .collect();
        if !stray.is_empty() {
            out.push(format!(
                "UNIMPLEMENTED outside permessage-deflate: {stray:?}"
            ));
        }
        out
    }

    /// One line per behaviour.
    pub fn lines(&self) -> Vec<String> {
        const NAMED: [&str; 6] = [
            "OK",
            "NON-STRICT",
            "INFORMATIONAL",
            "UNIMPLEMENTED",
            "FAILED",
            "WRONG CODE",
        ];
        let none = Vec::new();
        let mut lines = vec![format!("autobahn: {} cases", self.total())];
        for (name, map) in [
            ("behaviour", &self.behavior),
            ("close behaviour", &self.close),
        ] {
            let others = map
                .keys()
                .map(String::as_str)
                .filter(|k| !NAMED.contains(k));
            let all: Vec<&str> = NAMED.into_iter().chain(others).collect();
            for b in all {
                let cases = map.get(b).unwrap_or(&none);
                let shown = if cases.is_empty() || b == "OK" || b == "UNIMPLEMENTED" {
                    String::new()
                } else {
                    format!(" ({})", cases.join(", "))
                };
                lines.push(format!("autobahn: {name} {b}: {}{shown}", cases.len()));
            }
        }
        lines
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Autobahn|Testsuite summary\n\n\
             Written by `cargo xtask autobahn`: the fuzzing server of autobahntestsuite (PyPI) \
             against `crates/anyws/examples/autobahn_client.rs`, a client using only anyws's \
             public API (native backend). `cargo xtask test` runs the suite again and fails on \
             any FAILED or WRONG CODE, or UNIMPLEMENTED outside 12.x/13.x (permessage-deflate, \
             which anyws does not offer).\n\n```text\n",
        );
        for l in self.lines() {
            s.push_str(&l);
            s.push('\n');
        }
        s.push_str("```\n");
        s
    }
}

fn pyenv_python27() -> Result<PathBuf, String> {
    let root = capture(Command::new("pyenv").arg("root"))
        .map(|r| PathBuf::from(r.trim()))
        .or_else(|_| {
            std::env::var("HOME")
                .map(|h| PathBuf::from(h).join(".pyenv"))
                .map_err(|e| e.to_string())
        })?;
    let versions = root.join("versions");
    let found = std::fs::read_dir(&versions)
        .map_err(|e| format!("{}: {e}", versions.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("2.7"))
        })
        .map(|p| p.join("bin/python"))
        .find(|p| p.is_file());
    found.ok_or_else(|| {
        format!(
            "Autobahn|Testsuite needs Python 2.7; pyenv has none under {}",
            versions.display()
        )
    })
}

/// Installs the suite once; later calls find it.
fn ensure_suite(dir: &Path) -> Result<PathBuf, String> {
    let wstest = dir.join("py2env/bin/wstest");
    if wstest.is_file() {
        return Ok(wstest);
    }
    println!("autobahn: installing autobahntestsuite (Python 2.7 virtualenv) ...");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let py27 = pyenv_python27()?;
    run_quiet(
        Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("py3")),
    )?;
    run_quiet(Command::new(dir.join("py3/bin/pip")).args(["install", "-q", "virtualenv<20.22"]))?;
    run_quiet(
        Command::new(dir.join("py3/bin/virtualenv"))
            .arg("-p")
            .arg(&py27)
            .arg(dir.join("py2env")),
    )?;
    run_quiet(Command::new(dir.join("py2env/bin/pip")).args([
        "install",
        "-q",
        "autobahntestsuite",
    ]))?;
    Ok(wstest)
}

/// Sets up and runs the suite; returns the report.
pub fn run(root: &Path, cargo: impl Fn() -> Command) -> Result<Report, String> {
    let dir = root.join("target/autobahn");
    let wstest = ensure_suite(&dir)?;
    // Build the client first, so the server is not kept waiting. In the dev profile: the
    // test steps before this one built every dependency so, and the run is bound by the
    // Python server, not by the client (a release build would cost CI about 100 s).
    run_quiet(cargo().args(["build", "-p", "anyws", "--example", "autobahn_client"]))?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let reports = dir.join("reports");
    let _ = std::fs::remove_dir_all(&reports);
    let spec = serde_json::json!({
        "url": format!("ws://127.0.0.1:{port}"),
        "outdir": reports.join("clients"),
        "cases": ["*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    let spec_path = dir.join("fuzzingserver.json");
    std::fs::write(&spec_path, spec.to_string()).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("fuzzingserver.log")).map_err(|e| e.to_string())?;
    // It prints nothing useful to wait for: its port answering is the sign it is up.
    let _server = anyws_child::Child::spawn(
        Command::new(&wstest)
            // No embedded web server: it would take port 8080, which may be in use.
            .args(["-m", "fuzzingserver", "--webport", "0", "-s"])
            .arg(&spec_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log),
    )?;
    // Wait for it to listen (it takes a second or two to start Python).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("the Autobahn fuzzing server did not start within 60 s (see target/autobahn/fuzzingserver.log)".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = root.join("target/debug/examples/autobahn_client");
    run_quiet(
        Command::new(client)
            .arg(format!("ws://127.0.0.1:{port}"))
            .arg("anyws"),
    )?;
    read_report(&reports.join("clients/index.json"))
}

fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let cases = json
        .get("anyws")
        .and_then(|a| a.as_object())
        .ok_or("the report has no results for the agent anyws")?;
    let mut report = Report {
        behavior: BTreeMap::new(),
        close: BTreeMap::new(),
    };
    let mut ids: Vec<&String> = cases.keys().collect();
    ids.sort_by_key(|id| {
        id.split('.')
            .map(|n| n.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    for id in ids {
        let r = &cases[id.as_str()];
        let get = |k: &str| {
            r.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("MISSING")
                .to_owned()
        };
        report
            .behavior
            .entry(get("behavior"))
            .or_default()
            .push(id.clone());
        report
            .close
            .entry(get("behaviorClose"))
            .or_default()
            .push(id.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pairs: &[(&str, &str)]) -> Report {
        let mut r = Report {
            behavior: BTreeMap::new(),
            close: BTreeMap::new(),
        };
        for (id, b) in pairs {
            r.behavior
                .entry(b.to_string())
                .or_default()
                .push(id.to_string());
            r.close.entry("OK".into()).or_default().push(id.to_string());
        }
        r
    }

    #[test]
    fn passing_means_no_failed_no_wrong_code_and_only_deflate_unimplemented() {
        assert!(report(&[
            ("1.1.1", "OK"),
            ("12.1.1", "UNIMPLEMENTED"),
            ("3.2", "NON-STRICT")
        ])
        .problems()
        .is_empty());
        assert_eq!(report(&[("5.1", "FAILED")]).problems().len(), 1);
        assert_eq!(report(&[("7.1.1", "WRONG CODE")]).problems().len(), 1);
        assert_eq!(report(&[("9.1.1", "UNIMPLEMENTED")]).problems().len(), 1);
    }
}
