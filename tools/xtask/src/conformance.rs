//! The conformance runner (`tests/tests/conformance.rs`, `crates/conformance`): the browsers
//! as the oracle for anyws.
//!
//! - `cargo xtask test` runs [`anyws_conformance::CI_SEEDS`] in each browser (plain
//!   JavaScript against its golden file, anyws-wasm against plain JavaScript) and natively
//!   (anyws against the golden files), against the suite's test server.
//! - `cargo xtask conformance [--seeds SPEC] [--twice] [--record] [--report PATH]` runs any
//!   seeds: the browsers first, whose fresh traces go to `target/conformance/<browser>.jsonl`
//!   and are the reference of the native run. With `--twice` each JavaScript run is repeated
//!   and must give the same trace (the generator's scenarios must be deterministic); with
//!   `--record` too, and then the traces go into the golden files
//!   `tests/conformance/<browser>.jsonl` (replacing those seeds, keeping the others whose
//!   scenario is unchanged). It exits non-zero on any disagreement.
//!
//! Both print one line per check; the Markdown report groups every disagreement by kind.
//!
//! Firefox runs with `network.websocket.delay-failed-reconnects` off (a `webdriver.json`
//! passed to wasm-bindgen-test-runner): Firefox otherwise holds every new connection to a
//! host:port back 200 ms or more after one that ended abnormally, which is most scenarios
//! here. It changes when a connection starts, nothing of what happens on it.

use crate::config::{Browser, WasmConfig};
use crate::run::{run_tests, TestRun};
use crate::setup::Tools;
use crate::{cargo, TestServer};
use anyws_conformance::report::{checks, markdown, Check, Traces};
use anyws_conformance::{Golden, Record, GENERATOR_VERSION};
use std::path::{Path, PathBuf};
use std::time::Instant;

const GOLDEN_DIR: &str = "tests/conformance";
const FRESH_DIR: &str = "target/conformance";
/// The browser test runs every scenario in one test: far longer than one suite test.
const BROWSER_TIMEOUT_SECONDS: u64 = 3600;

/// What one runtime's run printed, and how long it took.
pub struct Ran {
    pub runtime: String,
    pub run: TestRun,
    pub seconds: f32,
    pub records: Vec<Record>,
}

impl Ran {
    fn agent(&self) -> String {
        self.run
            .output
            .lines()
            .find_map(|l| l.trim().strip_prefix("conformance-agent "))
            .and_then(|l| l.split_once(' '))
            .map(|(_, agent)| agent.to_owned())
            .unwrap_or_default()
    }

    /// The runner's own summary line, or the end of its output when it printed none.
    fn summary(&self) -> String {
        let line = self.run.output.lines().find(|l| {
            l.trim()
                .starts_with(&format!("conformance {}:", self.runtime))
        });
        let mut flaky: Vec<&str> = self
            .run
            .output
            .lines()
            .filter_map(|l| l.trim().strip_prefix("conformance-flaky seed "))
            .filter_map(|l| l.split_once(':').map(|(seed, _)| seed))
            .collect();
        flaky.sort();
        flaky.dedup();
        let flaky = if flaky.is_empty() {
            String::new()
        } else {
            format!(
                "; differed from the golden trace once and matched on a second run: seed {}",
                flaky.join(", ")
            )
        };
        match line {
            Some(l) => format!("{} (run: {:.0} s{flaky})", l.trim(), self.seconds),
            None => format!(
                "conformance {}: the runner printed no summary; its output ends with:\n{}",
                self.runtime,
                crate::run::tail(&self.run.output, 30)
            ),
        }
    }
}

/// The capabilities file for Firefox (see the module docs).
fn firefox_capabilities(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(FRESH_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("webdriver-firefox.json");
    let json = r#"{"moz:firefoxOptions": {"prefs": {"network.websocket.delay-failed-reconnects": false}}}"#;
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn env_seeds(cmd: &mut std::process::Command, seeds: Option<&str>) {
    match seeds {
        Some(s) => cmd.env("ANYWS_CONFORMANCE_SEEDS", s),
        None => cmd.env_remove("ANYWS_CONFORMANCE_SEEDS"),
    };
}

/// Runs the browser runner in `browser`.
pub fn run_browser(
    root: &Path,
    tools: &Tools,
    server: &str,
    browser: Browser,
    seeds: Option<&str>,
    record: bool,
) -> Result<Ran, String> {
    let started = Instant::now();
    let mut cmd = crate::browser_test(root, tools, server, browser, BROWSER_TIMEOUT_SECONDS);
    cmd.env("ANYWS_CONFORMANCE_RECORD", if record { "1" } else { "" })
        .args(["-p", "anyws-tests", "--test", "conformance"])
        .args(["--", "--nocapture"]);
    env_seeds(&mut cmd, seeds);
    if browser == Browser::Firefox {
        cmd.env(
            "WASM_BINDGEN_TEST_WEBDRIVER_JSON",
            firefox_capabilities(root)?,
        );
    }
    let run = crate::run_browser_tests(root, &mut cmd)?;
    let records = Record::from_output(&run.output);
    Ok(Ran {
        runtime: browser.name().to_owned(),
        run,
        seconds: started.elapsed().as_secs_f32(),
        records,
    })
}

/// Runs the native runner, comparing with the golden files in `reference` (default: the
/// committed ones).
pub fn run_native(
    root: &Path,
    server: &str,
    seeds: Option<&str>,
    reference: Option<&Path>,
) -> Result<Ran, String> {
    let started = Instant::now();
    let mut cmd = cargo(root, None);
    cmd.env("ANYWS_TEST_SERVER", server).args([
        "test",
        "-p",
        "anyws-tests",
        "--test",
        "conformance",
        "--",
        "--nocapture",
    ]);
    env_seeds(&mut cmd, seeds);
    match reference {
        Some(dir) => cmd.env("ANYWS_CONFORMANCE_REFERENCE", dir),
        None => cmd.env_remove("ANYWS_CONFORMANCE_REFERENCE"),
    };
    let run = run_tests(&mut cmd)?;
    let records = Record::from_output(&run.output);
    Ok(Ran {
        runtime: "native".into(),
        run,
        seconds: started.elapsed().as_secs_f32(),
        records,
    })
}

fn load_golden(root: &Path, dir: &str, browser: &str) -> Result<Golden, String> {
    let path = root.join(dir).join(format!("{browser}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Golden::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Adds the golden traces of each browser as runtime `<browser>-golden`.
fn add_golden(root: &Path, traces: &mut Traces, browsers: &[&str]) -> Result<(), String> {
    for b in browsers {
        let golden = load_golden(root, GOLDEN_DIR, b)?;
        traces.add(golden.traces.into_values().map(|mut r| {
            r.runtime = format!("{b}-golden");
            r
        }));
    }
    Ok(())
}

/// Writes the plain JavaScript traces of `ran` as `dir/<browser>.jsonl`, after those of
/// `keep` (the seeds not run) whose scenario is still the generator's.
fn write_golden(dir: &Path, ran: &Ran, keep: Option<Golden>) -> Result<PathBuf, String> {
    let mut golden = Golden {
        agent: ran.agent(),
        generator: GENERATOR_VERSION,
        ..Golden::default()
    };
    if let Some(old) = keep {
        golden.traces = old
            .traces
            .into_iter()
            .filter(|(seed, r)| anyws_conformance::generate(*seed).fingerprint() == r.fingerprint)
            .collect();
    }
    let mut fresh = std::collections::BTreeMap::new();
    for r in ran.records.iter().filter(|r| r.runtime == ran.runtime) {
        fresh.entry(r.seed).or_insert_with(|| r.clone());
    }
    golden.traces.extend(fresh);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.jsonl", ran.runtime));
    std::fs::write(&path, golden.to_jsonl(&ran.runtime))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// One line per check.
fn check_line(c: &Check) -> String {
    let mut groups: Vec<String> = c.findings.iter().map(|f| f.signature()).collect();
    groups.sort();
    groups.dedup();
    if c.findings.is_empty() {
        format!(
            "conformance check {}: {} seeds, all equal",
            c.name, c.compared
        )
    } else {
        format!(
            "conformance check {}: {} of {} seeds disagree ({} kinds)",
            c.name,
            c.findings.len(),
            c.compared,
            groups.len()
        )
    }
}

/// The conformance part of `cargo xtask test`: CI seeds, golden files as the reference.
/// Returns the lines to print and the problems (a failing check not marked as expected to
/// fail in `wasm-pack.toml`, or a marked one that passes).
pub fn ci(
    root: &Path,
    config: &WasmConfig,
    tools: &Tools,
    server: &str,
) -> Result<(Vec<String>, Vec<String>), String> {
    let browsers: Vec<&str> = config.test.browsers.iter().map(|b| b.name()).collect();
    let mut lines = Vec::new();
    let mut traces = Traces::default();
    let mut problems = Vec::new();
    for browser in &config.test.browsers {
        let ran = run_browser(root, tools, server, *browser, None, false)?;
        lines.push(ran.summary());
        traces.add(ran.records);
    }
    let ran = run_native(root, server, None, None)?;
    lines.push(ran.summary());
    traces.add(ran.records);
    add_golden(root, &mut traces, &browsers)?;
    let expected_to_fail = &config.conformance.expected_to_fail;
    for c in checks(&traces, &browsers, ("chromium-golden", "firefox-golden")) {
        let mut line = check_line(&c);
        let informational = c.key == "browsers";
        let marked = expected_to_fail.contains(&c.key);
        if c.compared == 0 && !informational {
            problems.push(format!("conformance check {} compared nothing", c.name));
        } else if !c.findings.is_empty() && marked {
            line.push_str(" (expected to fail: wasm-pack.toml [conformance])");
        } else if !c.findings.is_empty() && !informational {
            let seeds: Vec<String> = c.findings.iter().map(|f| f.seed.to_string()).collect();
            problems.push(format!(
                "conformance check {} failed for seeds {} (details: cargo xtask conformance --report PATH)",
                c.name,
                seeds.join(", ")
            ));
        } else if c.findings.is_empty() && marked {
            problems.push(format!(
                "conformance check {} passes now: remove {:?} from [conformance] expected-to-fail in wasm-pack.toml",
                c.name, c.key
            ));
        }
        lines.push(line);
    }
    Ok((lines, problems))
}

/// `--ci`: what `cargo xtask test` runs, alone.
fn ci_command(root: &Path) -> Result<(), String> {
    let config = WasmConfig::load(root)?;
    let tools = crate::setup::ensure(root, &config, crate::setup::Need::Browsers)?;
    let server = TestServer::start(root, crate::steps::Build::Alone)?;
    let (lines, problems) = ci(root, &config, &tools, &server.url)?;
    drop(server);
    lines.iter().for_each(|l| println!("{l}"));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

pub fn command(root: &Path, args: &[String]) -> Result<(), String> {
    let mut seeds: Option<String> = None;
    let mut record = false;
    let mut twice = false;
    let mut ci_only = false;
    let mut report: Option<PathBuf> = None; // default: target/conformance/report.md
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => seeds = Some(it.next().ok_or("--seeds wants N, A..B or a,b,c")?.clone()),
            "--record" => record = true,
            "--twice" => twice = true,
            "--ci" => ci_only = true,
            "--report" => report = Some(PathBuf::from(it.next().ok_or("--report wants a path")?)),
            other => return Err(format!("unknown argument {other:?}; usage: cargo xtask conformance [--ci | [--seeds N|A..B|a,b,c] [--twice] [--record] [--report PATH]]")),
        }
    }
    if ci_only {
        return ci_command(root);
    }
    let twice = twice || record;
    let started = Instant::now();
    let config = WasmConfig::load(root)?;
    let tools = crate::setup::ensure(root, &config, crate::setup::Need::Browsers)?;
    let browsers: Vec<&str> = config.test.browsers.iter().map(|b| b.name()).collect();
    let server = TestServer::start(root, crate::steps::Build::Alone)?;
    println!(
        "conformance: test server at {}; seeds {}",
        server.url,
        seeds.as_deref().unwrap_or("0..300 (the CI set)")
    );
    let mut traces = Traces::default();
    let mut ran_browsers = Vec::new();
    for browser in &config.test.browsers {
        let ran = run_browser(root, &tools, &server.url, *browser, seeds.as_deref(), twice)?;
        println!("{}", ran.summary());
        write_golden(&root.join(FRESH_DIR), &ran, None)?;
        traces.add(ran.records.clone());
        ran_browsers.push(ran);
    }
    let native = run_native(
        root,
        &server.url,
        seeds.as_deref(),
        Some(&root.join(FRESH_DIR)),
    )?;
    println!("{}", native.summary());
    traces.add(native.records);
    drop(server);
    if !record {
        add_golden(root, &mut traces, &browsers)?;
    }
    let checks = checks(&traces, &browsers, ("chromium", "firefox"));
    let mut failed = Vec::new();
    for c in &checks {
        println!("{}", check_line(c));
        if !c.findings.is_empty() && c.key != "browsers" {
            failed.push(c.name.clone());
        }
    }
    if record {
        let flaky = checks
            .iter()
            .any(|c| c.key.ends_with("-again") && !c.findings.is_empty());
        if flaky {
            println!("conformance: not recording golden files: some scenarios are not deterministic in a browser");
        } else {
            for ran in &ran_browsers {
                let old = load_golden(root, GOLDEN_DIR, &ran.runtime)?;
                let path = write_golden(&root.join(GOLDEN_DIR), ran, Some(old))?;
                println!("conformance: wrote {}", path.display());
            }
        }
    }
    {
        // Without --report, the report still goes to target/conformance/report.md.
        let path = report.unwrap_or_else(|| root.join(FRESH_DIR).join("report.md"));
        let preamble = format!(
            "Generated by `cargo xtask conformance{}{}` in {:.0} s. Browsers: {} (Firefox with `network.websocket.delay-failed-reconnects` off, which only removes its wait before reconnecting). \
             Reference for anyws native: this run's plain JavaScript traces, both browsers' when they agree, else the one the rule named beside it picks (`anyws_conformance::expect`). \
             Trace lines (`anyws_conformance::trace`): `EVENT@readyState` in the handler, a message as `text|binary LENGTH FNV-1a`, a close as `CODE \"REASON\" wasClean`, \
             an action as `WHERE: ACTION -> ok|DOMException name @readyState after`, `peer: ...` for what the scripted peer received (its pongs last, counted in signatures). \
             Groups are keyed by the first differing lines, with lengths, hashes, application close codes and reasons abstracted.",
            seeds.as_deref().map(|s| format!(" --seeds {s}")).unwrap_or_default(),
            if record { " --record" } else if twice { " --twice" } else { "" },
            started.elapsed().as_secs_f32(),
            ran_browsers.iter().map(|r| format!("{} ({})", r.runtime, r.agent())).collect::<Vec<_>>().join(", ")
        );
        std::fs::write(
            &path,
            markdown(
                "anyws conformance: the browsers as the oracle",
                &preamble,
                &checks,
            ),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("conformance: report in {}", path.display());
    }
    println!(
        "(conformance took {:.0} s)",
        started.elapsed().as_secs_f32()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "conformance checks with disagreements: {}",
            failed.join("; ")
        ))
    }
}
