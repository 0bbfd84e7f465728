//! Autobahn|Testsuite, the industry's WebSocket protocol suite, against anyws's native client
//! and server.
//!
//! Sets up the suite (Python 2.7 from pyenv, a virtualenv, `autobahntestsuite` from PyPI) in
//! `target/autobahn`, then runs both halves at once, all cases, on 127.0.0.1: its fuzzing
//! server against `crates/anyws/examples/autobahn_client.rs`, and its fuzzing client against
//! `crates/anyws/examples/autobahn_server.rs` (anyws's public API only: both echo
//! everything); it reads both JSON reports.

use crate::run::{capture, run_quiet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the committed summary lives.
pub const SUMMARY: &str = "tests/autobahn/summary.md";

/// The agent names in the suite's reports.
const CLIENT_AGENT: &str = "anyws";
const SERVER_AGENT: &str = "anyws-server";

/// The one place that says which cases may be UNIMPLEMENTED, on both sides: none (the
/// permessage-deflate cases, 12.* and 13.*, were while anyws had no compression).
const MAY_BE_UNIMPLEMENTED: &[&str] = &[];

/// Which cases a run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cases {
    /// All 517 (`cargo xtask autobahn`, which writes the summary).
    All,
    /// What `cargo xtask test` runs: all but the long permessage-deflate cases. Each of the
    /// 12 groups of 12.x/13.x (5 kinds of data, 7 sets of negotiated parameters) echoes 1,000
    /// messages of each of 18 sizes, about 0.9 GB a group through the suite's Python; CI keeps
    /// every group with messages up to 4 KiB (cases 1 to 5) and 8 KiB ones cut into 256-byte
    /// frames (case 11): 72 of the 216 cases, a minute rather than most of an hour.
    Ci,
}

impl Cases {
    /// The suite's `exclude-cases` patterns.
    fn excluded(self) -> Vec<String> {
        match self {
            Cases::All => Vec::new(),
            Cases::Ci => ["12", "13"]
                .iter()
                .flat_map(|group| {
                    (6..=10)
                        .chain(12..=18)
                        .map(move |size| format!("{group}.*.{size}"))
                })
                .collect(),
        }
    }
}

/// Both halves of the suite: anyws's client against its fuzzing server, anyws's server
/// against its fuzzing client.
pub struct Reports {
    /// `autobahn_client` under the fuzzing server.
    pub client: Report,
    /// `autobahn_server` under the fuzzing client.
    pub server: Report,
}

impl Reports {
    fn sides(&self) -> [(&'static str, &Report); 2] {
        [("client", &self.client), ("server", &self.server)]
    }

    /// What `cargo xtask test` accepts (its problems, empty when none): see
    /// [`Report::problems`], for each side.
    pub fn problems(&self) -> Vec<String> {
        self.sides()
            .into_iter()
            .flat_map(|(side, r)| {
                r.problems()
                    .into_iter()
                    .map(move |p| format!("{side}: {p}"))
            })
            .collect()
    }

    /// One line per behaviour and side.
    pub fn lines(&self) -> Vec<String> {
        self.sides()
            .into_iter()
            .flat_map(|(side, r)| r.lines(side))
            .collect()
    }

    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Autobahn|Testsuite summary\n\n\
             Written by `cargo xtask autobahn`, which runs both halves of autobahntestsuite \
             (PyPI) at once against examples that use only anyws's public API (native \
             backend): its fuzzing server against `crates/anyws/examples/autobahn_client.rs`, \
             and its fuzzing client against `crates/anyws/examples/autobahn_server.rs`, both \
             echoing every message, all 517 cases on each side. `cargo xtask test` runs them \
             again, all but the permessage-deflate cases with the largest messages (it keeps \
             72 of the 216 12.x/13.x cases: every group, messages up to 4 KiB and 8 KiB ones \
             in 256-byte frames), and fails on any FAILED, WRONG CODE or UNIMPLEMENTED on \
             either side.\n",
        );
        for (side, report) in self.sides() {
            let what = match side {
                "client" => "anyws's client (`autobahn_client`, fuzzingserver)",
                _ => "anyws's server (`autobahn_server`, fuzzingclient)",
            };
            s.push_str(&format!("\n## {what}\n\n```text\n"));
            for l in report.lines(side) {
                s.push_str(&l);
                s.push('\n');
            }
            s.push_str("```\n");
        }
        s
    }
}

/// One side's report, counted.
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
    /// CODE, and UNIMPLEMENTED only for the cases of [`MAY_BE_UNIMPLEMENTED`].
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for map in [&self.behavior, &self.close] {
            for bad in ["FAILED", "WRONG CODE"] {
                if let Some(cases) = map.get(bad) {
                    out.push(format!("{bad}: {}", cases.join(", ")));
                }
            }
        }
        let allowed = |c: &String| MAY_BE_UNIMPLEMENTED.iter().any(|p| c.starts_with(p));
        for (what, map) in [("", &self.behavior), ("close ", &self.close)] {
            let stray: Vec<&String> = map
                .get("UNIMPLEMENTED")
                .into_iter()
                .flatten()
                .filter(|c| !allowed(c))
                .collect();
            if !stray.is_empty() {
                out.push(format!(
                    "{what}UNIMPLEMENTED outside {MAY_BE_UNIMPLEMENTED:?}: {stray:?}"
                ));
            }
        }
        out
    }

    /// One line per behaviour, each starting with `autobahn <side>:`.
    pub fn lines(&self, side: &str) -> Vec<String> {
        const NAMED: [&str; 6] = [
            "OK",
            "NON-STRICT",
            "INFORMATIONAL",
            "UNIMPLEMENTED",
            "FAILED",
            "WRONG CODE",
        ];
        let none = Vec::new();
        let mut lines = vec![format!("autobahn {side}: {} cases", self.total())];
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
                lines.push(format!(
                    "autobahn {side}: {name} {b}: {}{shown}",
                    cases.len()
                ));
            }
        }
        lines
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

/// Starts installing the suite (if it is not there) on a thread of its own, for
/// `cargo xtask test`: the install mostly waits on the package index, so it runs while the
/// checks build. [`run`] waits for it (see [`ensure_suite`]); an install that failed here is
/// tried again there, which reports the error.
pub fn prepare(root: &Path) {
    let dir = root.join("target/autobahn");
    std::thread::spawn(move || {
        let _ = ensure_suite(&dir);
    });
}

/// Installs the suite once; later calls find it. One install at a time: a call made while
/// [`prepare`]'s is under way waits for it.
fn ensure_suite(dir: &Path) -> Result<PathBuf, String> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let wstest = dir.join("py2env/bin/wstest");
    if !wstest.is_file() {
        println!("autobahn: installing autobahntestsuite (Python 2.7 virtualenv) ...");
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let py27 = pyenv_python27()?;
        run_quiet(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join("py3")),
        )?;
        run_quiet(Command::new(dir.join("py3/bin/pip")).args([
            "install",
            "-q",
            "virtualenv<20.22",
        ]))?;
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
    }
    // wsaccel: the C masking and UTF-8 validation autobahn uses when it is installed. Without
    // it the suite's Python spends about 70 s of CPU per half, with it about 14 (9.x, the
    // large messages, is most of it). Also added to a suite installed before.
    if !dir
        .join("py2env/lib/python2.7/site-packages/wsaccel")
        .is_dir()
    {
        run_quiet(Command::new(dir.join("py2env/bin/pip")).args([
            "install",
            "-q",
            "wsaccel==0.6.6",
        ]))?;
    }
    Ok(wstest)
}

/// The executable of the example `name` (not a test harness of it) in cargo's JSON messages.
fn example(messages: &str, name: &str) -> Result<PathBuf, String> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == name
                && m["target"]["kind"][0] == "example"
                && m["profile"]["test"] == false
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo reported no executable for the example {name}"))
}

/// How long the example server may take to print its address.
const SERVER_START: Duration = Duration::from_secs(60);

/// Sets up the suite and runs both of its halves at once (each is a single-threaded Python
/// process, so on two cores together they take little longer than one): the fuzzing server
/// against `autobahn_client`, and the fuzzing client against `autobahn_server`.
pub fn run(
    root: &Path,
    cases: Cases,
    build: crate::steps::Build,
    cargo: impl Fn() -> Command,
) -> Result<Reports, String> {
    let dir = root.join("target/autobahn");
    let wstest = ensure_suite(&dir)?;
    // Build both examples first, so no suite is kept waiting. In the dev profile: the runs are
    // bound by the Python suite, not by the examples (about 6 s of CPU each over the whole
    // suite in the dev profile; a release build would cost CI about 100 s to save a few).
    let mut cmd = cargo();
    match build {
        // `cargo test --no-run` with the unit tests' packages and features: that step built
        // both examples (`cargo test` builds every example), so cargo finds them built and
        // names them; a build of their own would compile about 50 crates again for other
        // features. The examples use only the public API and plain ws://, which no feature
        // changes.
        crate::steps::Build::AsUnitTests => cmd
            .args(["test", "--no-run"])
            .args(crate::steps::UNIT_TESTS)
            .arg("--all-features"),
        crate::steps::Build::Alone => cmd.args([
            "build",
            "-p",
            "anyws",
            "--example",
            "autobahn_client",
            "--example",
            "autobahn_server",
        ]),
    };
    let built = capture(cmd.arg("--message-format=json-render-diagnostics"))?;
    let client_exe = example(&built, "autobahn_client")?;
    let server_exe = example(&built, "autobahn_server")?;
    let reports = dir.join("reports");
    let _ = std::fs::remove_dir_all(&reports);
    let log = |name: &str| std::fs::File::create(dir.join(name)).map_err(|e| e.to_string());

    // The server side: anyws's echo server, and the suite's fuzzing client against it.
    let server_log = log("autobahn_server.log")?;
    let server = anyws_child::Child::spawn_announcing(
        Command::new(&server_exe)
            .stdin(Stdio::piped())
            .stderr(server_log),
        1,
        SERVER_START,
    )?;
    let url = server
        .first_line()
        .strip_prefix("listening on ")
        .ok_or_else(|| {
            format!(
                "autobahn_server said {:?} instead of its address",
                server.first_line()
            )
        })?
        .to_owned();
    let spec = serde_json::json!({
        "outdir": reports.join("servers"),
        "servers": [{"agent": SERVER_AGENT, "url": url}],
        "cases": ["*"],
        "exclude-cases": cases.excluded(),
        "exclude-agent-cases": {},
    });
    let client_spec = dir.join("fuzzingclient.json");
    std::fs::write(&client_spec, spec.to_string()).map_err(|e| e.to_string())?;
    let fuzzing_log = log("fuzzingclient.log")?;
    let mut fuzzing_client = anyws_child::Child::spawn(
        Command::new(&wstest)
            .args(["-m", "fuzzingclient", "-s"])
            .arg(&client_spec)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(fuzzing_log.try_clone().map_err(|e| e.to_string())?)
            .stderr(fuzzing_log),
    )?;

    // The client side meanwhile: the suite's fuzzing server, and anyws's client against it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let spec = serde_json::json!({
        "url": format!("ws://127.0.0.1:{port}"),
        "outdir": reports.join("clients"),
        "cases": ["*"],
        "exclude-cases": cases.excluded(),
        "exclude-agent-cases": {},
    });
    let server_spec = dir.join("fuzzingserver.json");
    std::fs::write(&server_spec, spec.to_string()).map_err(|e| e.to_string())?;
    let fuzzing_log = log("fuzzingserver.log")?;
    // It prints nothing useful to wait for: its port answering is the sign it is up.
    let _fuzzing_server = anyws_child::Child::spawn(
        Command::new(&wstest)
            // No embedded web server: it would take port 8080, which may be in use.
            .args(["-m", "fuzzingserver", "--webport", "0", "-s"])
            .arg(&server_spec)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(fuzzing_log.try_clone().map_err(|e| e.to_string())?)
            .stderr(fuzzing_log),
    )?;
    // Wait for it to listen (it takes a second or two to start Python).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("the Autobahn fuzzing server did not start within 60 s (see target/autobahn/fuzzingserver.log)".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run_quiet(
        Command::new(&client_exe)
            .arg(format!("ws://127.0.0.1:{port}"))
            .arg(CLIENT_AGENT),
    )?;
    let client = read_report(&reports.join("clients/index.json"), CLIENT_AGENT)?;

    let status = fuzzing_client.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "the Autobahn fuzzing client failed ({status}; see target/autobahn/fuzzingclient.log)"
        ));
    }
    drop(server); // its stdin closes: it exits
    let server = read_report(&reports.join("servers/index.json"), SERVER_AGENT)?;
    Ok(Reports { client, server })
}

fn read_report(path: &Path, agent: &str) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let cases = json
        .get(agent)
        .and_then(|a| a.as_object())
        .ok_or_else(|| format!("{}: no results for the agent {agent}", path.display()))?;
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
    fn passing_means_no_failed_no_wrong_code_and_nothing_unimplemented() {
        assert!(
            report(&[("1.1.1", "OK"), ("12.1.1", "OK"), ("3.2", "NON-STRICT")])
                .problems()
                .is_empty()
        );
        assert_eq!(report(&[("5.1", "FAILED")]).problems().len(), 1);
        assert_eq!(report(&[("7.1.1", "WRONG CODE")]).problems().len(), 1);
        assert_eq!(report(&[("9.1.1", "UNIMPLEMENTED")]).problems().len(), 1);
        assert_eq!(report(&[("12.1.1", "UNIMPLEMENTED")]).problems().len(), 1);
    }

    #[test]
    fn ci_leaves_out_only_the_long_deflate_cases() {
        assert!(Cases::All.excluded().is_empty());
        let ci = Cases::Ci.excluded();
        assert_eq!(ci.len(), 24);
        assert!(ci.contains(&"12.*.6".to_owned()) && ci.contains(&"13.*.18".to_owned()));
        assert!(!ci.iter().any(|c| c.ends_with(".11") || c.ends_with(".5")));
    }

    #[test]
    fn both_sides_are_judged_and_named() {
        let reports = Reports {
            client: report(&[("1.1.1", "OK"), ("12.1.1", "OK")]),
            server: report(&[("1.1.1", "OK"), ("5.1", "FAILED")]),
        };
        assert_eq!(reports.problems(), ["server: FAILED: 5.1"]);
        let reports = Reports {
            client: report(&[("7.1.1", "WRONG CODE")]),
            server: report(&[("1.1.1", "OK")]),
        };
        assert_eq!(reports.problems(), ["client: WRONG CODE: 7.1.1"]);
        let lines = reports.lines();
        assert!(lines.contains(&"autobahn client: 1 cases".to_owned()));
        assert!(lines.contains(&"autobahn server: behaviour OK: 1".to_owned()));
        let markdown = reports.markdown();
        assert!(markdown.contains("## anyws's client") && markdown.contains("## anyws's server"));
    }
}
