//! The project's task runner.
//!
//! - `cargo xtask demo`: builds the demo page's wasm bundle when stale (`wasm-pack.toml`
//!   `[build]`), starts the chat server (127.0.0.1:8080, or a free port) and a native chat
//!   client in the same room, and prints the URL to open.
//! - `cargo xtask test`: installs what is missing, runs the checks (fmt, clippy and rustdoc
//!   for native and wasm32, `cargo publish --dry-run` and the packaged crate's tests, an
//!   application pinning another wasm-bindgen, unit and doc tests with `wss://` in processes
//!   with both rustls providers, permessage-deflate interop with Python websockets and Node
//!   ws, the loom model checks of the core), then the cross-target
//!   suite natively and in each browser that `wasm-pack.toml` names, in each scope it names
//!   (the page, a dedicated Web Worker), against one test server, and prints one summary line
//!   per runtime and a total; the demo's end-to-end test in headless Chromium; then
//!   Autobahn|Testsuite against the native client and a short fuzzing run.
//! - `cargo xtask deps`: the two checks that anyws does not break its users' builds (both are
//!   part of `cargo xtask test`): an application pinning a wasm-bindgen other than Cargo.lock's
//!   builds with anyws for wasm32, and `wss://` works in processes whose rustls has both crypto
//!   providers compiled in.
//! - `cargo xtask autobahn`: runs Autobahn|Testsuite on the native client and server and
//!   writes its summary to `tests/autobahn/summary.md`.
//! - `cargo xtask bench [--quick]`: the benchmarks (see `BENCHMARKS.md`).
//! - `cargo xtask fuzz [--seconds N]`: runs each cargo-fuzz target of `crates/anyws/fuzz`
//!   for N seconds (default 60); `cargo xtask test` runs each for 10.
//! - `cargo xtask conformance [--seeds N|A..B|a,b,c] [--twice] [--record] [--report PATH]`
//!   (or `--ci`: what `cargo xtask test` runs of it, alone): the conformance runner (the
//!   browsers as the oracle, see [`conformance`]); `cargo xtask test` runs its CI seeds.
//! - `cargo xtask interop`: permessage-deflate interop with Python `websockets` and Node `ws`,
//!   each as a server and as a client of anyws (`tests/interop`; installs the pinned peers
//!   under `target/interop`); `cargo xtask test` runs it after the unit tests.
//! - `cargo xtask package`: `cargo publish --dry-run` of the published crates and a check
//!   that the packaged `anyws`'s tests compile (see [`publish`]; also part of `test`).

mod autobahn;
mod bench;
mod bundle;
mod config;
mod conformance;
mod demo;
mod downstream;
mod fuzz;
mod interop;
mod publish;
mod run;
mod setup;
mod steps;

use config::{Browser, Scope, WasmConfig};
use run::{run_quiet, run_tests, TestRun};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// The wasm32 target triple, for every cargo command that builds for the browser.
const WASM: &str = "wasm32-unknown-unknown";

/// When set, this binary is a `RUSTC_WORKSPACE_WRAPPER` (see [`rustc_wrapper`]) that adds
/// `--cfg VALUE` to each compilation of a workspace crate.
pub const WRAPPER_CFG: &str = "ANYWS_XTASK_RUSTC_CFG";

fn main() -> ExitCode {
    if let Some(cfg) = std::env::var_os(WRAPPER_CFG) {
        return rustc_wrapper(cfg);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root");
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&root),
        Some("demo") => demo_command(&root),
        Some("autobahn") => autobahn_summary(&root),
        Some("fuzz") => fuzz_for(&root, &args[1..]),
        Some("e2e") => e2e_command(&root),
        Some("deps") => deps_command(&root),
        Some("bench") => bench_command(&root, &args[1..]),
        Some("conformance") => conformance::command(&root, &args[1..]),
        Some("package") => publish::check(&root),
        Some("interop") => interop_command(&root),
        _ => {
            eprintln!("usage: cargo xtask <demo|test|bench|autobahn|fuzz|e2e|deps|conformance|package|interop>\n  demo      start the chat demo: page, server and a native client\n  test      install what is missing, then run every check and test\n  autobahn  run Autobahn|Testsuite on the native client and server, all cases, and write {}\n  fuzz [--seconds N]  run each fuzz target for N seconds (default 60)\n  e2e       the demo's end-to-end test in headless Chromium (also part of test)\n  deps      an application pinning another wasm-bindgen, and wss:// with both rustls providers (also part of test)\n  bench [--quick]  anyws beside raw tokio-tungstenite, the Rust peers, plain JS and gloo-net; the full run updates BENCHMARKS.md\n  conformance [--seeds N|A..B|a,b,c] [--twice] [--record] [--report PATH] | --ci  generated scenarios: plain JS in Chromium and Firefox vs anyws-wasm and anyws native (--twice: each JavaScript run twice, must agree; --record rewrites tests/conformance/*.jsonl; --ci: the CI seeds, as in test)\n  package   cargo publish --dry-run of the published crates, and the packaged anyws's tests compiled (also part of test)\n  interop   permessage-deflate with Python websockets and Node ws as servers and clients of anyws (installs them under target/interop; also part of test)", autobahn::SUMMARY);
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// As cargo's `RUSTC_WORKSPACE_WRAPPER` (`wrapper RUSTC ARGS...`, for the workspace's crates
/// only): runs `RUSTC ARGS... --cfg CFG` when it compiles a crate (`--crate-name`), and any
/// other query of rustc unchanged. The loom step sets the model checks' cfg so, on anyws
/// alone of what it builds, where `RUSTFLAGS` would build every dependency again.
fn rustc_wrapper(cfg: std::ffi::OsString) -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(rustc) = args.next() else {
        eprintln!(
            "xtask: {WRAPPER_CFG} is set, so this is a rustc wrapper, but no rustc was given"
        );
        return ExitCode::FAILURE;
    };
    let args: Vec<std::ffi::OsString> = args.collect();
    let mut cmd = Command::new(&rustc);
    cmd.args(&args);
    if args.iter().any(|a| a == "--crate-name") {
        cmd.arg("--cfg").arg(&cfg);
    }
    match cmd.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("xtask: could not run {}: {e}", rustc.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

/// How long `cargo xtask test` runs each fuzz target.
const CI_FUZZ_SECONDS: u64 = 10;

fn fuzz_for(root: &Path, args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [] => 60,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| format!("--seconds wants a whole number, not {n:?}"))?,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
    };
    for line in fuzz::run(root, seconds, None)? {
        println!("{line}");
    }
    Ok(())
}

fn cargo(root: &Path, toolchain: Option<&str>) -> Command {
    let mut cmd = Command::new("cargo");
    if let Some(t) = toolchain {
        cmd.arg(format!("+{t}"));
    }
    cmd.current_dir(root).env("CARGO_TERM_COLOR", "never");
    // Tools installed by `cargo install` must be found by cargo's runner setting.
    cmd.env("PATH", tool_path());
    cmd
}

/// PATH with cargo's bin directory (where `cargo install` puts tools) at the end.
fn tool_path() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(run::cargo_bin_dir());
    std::env::join_paths(dirs).expect("a valid PATH")
}

/// How long a server the xtask starts may take to print its address.
const SERVER_START: std::time::Duration = std::time::Duration::from_secs(60);

/// The test server, running as a child process for as long as this value lives.
struct TestServer {
    _child: anyws_child::Child,
    url: String,
}

impl TestServer {
    fn start(root: &Path, build: steps::Build) -> Result<TestServer, String> {
        let mut cmd = cargo(root, None);
        cmd.args(["build", "--quiet"]);
        match build {
            // The test server alone resolved its dependencies' features differently and
            // built about 20 of them (tokio, rustls, syn, ...) again.
            steps::Build::AsUnitTests => cmd.args(steps::UNIT_TESTS).args([
                "--all-features",
                "--tests",
                "--bin",
                "anyws-testserver",
            ]),
            steps::Build::Alone => cmd.args(["-p", "anyws-testserver"]),
        };
        run_quiet(&mut cmd)?;
        let child = anyws_child::Child::spawn_announcing(
            Command::new(root.join("target/debug/anyws-testserver"))
                .arg("--until-stdin-closes")
                .stdin(Stdio::piped()),
            1,
            SERVER_START,
        )?;
        let first = child.first_line();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("the test server said {first:?} instead of its address"))?
            .to_owned();
        Ok(TestServer { _child: child, url })
    }
}

/// `cargo xtask interop`: installs the interop peers if missing, then runs only that step.
fn interop_command(root: &Path) -> Result<(), String> {
    let mut installed = Vec::new();
    interop::ensure(root, &mut installed)?;
    steps::run(root, None, vec![steps::interop(root)]).map(drop)
}

/// `cargo xtask deps`: the two checks that anyws does not break its users' builds.
fn deps_command(root: &Path) -> Result<(), String> {
    let tc = setup::ensure_wasm_target(root, &mut Vec::new())?;
    steps::run(root, tc.as_deref(), steps::deps(root, tc.as_deref())).map(drop)
}

fn e2e_command(root: &Path) -> Result<(), String> {
    let config = WasmConfig::load(root)?;
    let tools = setup::ensure(root, &config, setup::Need::Everything)?;
    bundle::ensure(
        root,
        &config.build,
        tools.wasm_toolchain.as_deref(),
        &tools.wasm_opt,
    )?;
    println!(
        "{}",
        demo::end_to_end(root, &tools.chromedriver, e2e_firefox(&config, &tools))?
    );
    Ok(())
}

/// The geckodriver for the end-to-end test's Firefox check, when `wasm-pack.toml` tests in
/// Firefox (setup installed it then).
fn e2e_firefox<'a>(config: &WasmConfig, tools: &'a setup::Tools) -> Option<&'a Path> {
    config
        .test
        .browsers
        .contains(&Browser::Firefox)
        .then_some(tools.geckodriver.as_path())
}

fn bench_command(root: &Path, args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err("usage: cargo xtask bench [--quick]".into()),
    };
    let config = WasmConfig::load(root)?;
    let tools = setup::ensure(root, &config, setup::Need::Everything)?;
    bench::run(root, &config, &tools, quick)
}

fn demo_command(root: &Path) -> Result<(), String> {
    let config = WasmConfig::load(root)?;
    let tools = setup::ensure(root, &config, setup::Need::Bundle)?;
    demo::demo(root, || {
        bundle::ensure(
            root,
            &config.build,
            tools.wasm_toolchain.as_deref(),
            &tools.wasm_opt,
        )
        .map(drop)
    })
}

/// `cargo test --target wasm32-unknown-unknown` in `browser` against the test server at
/// `server`, with the per-test timeout: that browser's driver is set and the other's removed.
/// Every browser run (the suite, the examples, the conformance runner) starts here.
fn browser_test(
    root: &Path,
    tools: &setup::Tools,
    server: &str,
    browser: Browser,
    timeout_seconds: u64,
) -> Command {
    let mut cmd = cargo(root, tools.wasm_toolchain.as_deref());
    cmd.env("ANYWS_TEST_SERVER", server)
        .env("WASM_BINDGEN_TEST_TIMEOUT", timeout_seconds.to_string())
        .env_remove("CHROMEDRIVER")
        .env_remove("GECKODRIVER")
        .args(["test", "--target", WASM]);
    match browser {
        Browser::Chromium => cmd
            .env("CHROMEDRIVER", &tools.chromedriver)
            .env("XDG_CONFIG_HOME", chromium_config(root)),
        Browser::Firefox => cmd.env("GECKODRIVER", &tools.geckodriver),
    };
    cmd
}

/// Chromium's configuration directory in the browser runs (`XDG_CONFIG_HOME`), where it writes
/// a minidump for each renderer that crashes (in `chromium/Crash Reports`).
fn chromium_config(root: &Path) -> PathBuf {
    root.join("target/chromium-config")
}

/// The minidumps Chromium has written in `chromium_config`.
fn chromium_crashes(root: &Path) -> Vec<PathBuf> {
    let dir = chromium_config(root).join("chromium/Crash Reports");
    let mut dumps = Vec::new();
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "dmp") {
                dumps.push(path);
            }
        }
    }
    dumps
}

/// Runs a `browser_test` command. When Chromium's renderer crashed during a run that failed, the
/// run's output says so: the runner itself reports only "missing field `chunk`" (it reads the
/// page's output through WebDriver, which answers "tab crashed").
fn run_browser_tests(root: &Path, cmd: &mut Command) -> Result<TestRun, String> {
    let before = chromium_crashes(root);
    let mut run = run_tests(cmd)?;
    let new: Vec<_> = chromium_crashes(root)
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    if !run.success && !new.is_empty() {
        run.output.push_str(&format!(
            "\nxtask: Chromium's renderer crashed in this run (a browser crash, not a failed \
             assertion; README, \"Known browser bugs\"); its minidump: {}\n",
            new.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(run)
}

fn test(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    let config = WasmConfig::load(root)?;
    let browsers: Vec<&str> = config.test.browsers.iter().map(|b| b.name()).collect();
    let scopes: Vec<&str> = config
        .test
        .scopes
        .iter()
        .map(|s| match s {
            Scope::Page => "the page",
            Scope::DedicatedWorker => "a dedicated worker",
        })
        .collect();
    println!(
        "wasm-pack.toml: suite crates {:?} in {}, in {}; wasm32 checks for {:?}; browser timeout {} s",
        config.test.crates,
        browsers.join(" and "),
        scopes.join(" and "),
        config.check.crates,
        config.test.timeout_seconds
    );
    let tools = setup::ensure(root, &config, setup::Need::Everything)?;
    // Autobahn's Python suite installs while the checks build (it waits on the network); the
    // fuzz targets build at the lowest CPU priority from now on, in what CPU the steps leave.
    autobahn::prepare(root);
    let fuzz_build = fuzz::build_in_background(root);
    let tc = tools.wasm_toolchain.as_deref();
    let (mut passed, mut failed) = steps::run(root, tc, steps::checks(root, &config, tc))?;

    let started_server = Instant::now();
    let server = TestServer::start(root, steps::Build::AsUnitTests)?;
    println!(
        "suite: test server at {} (built and started in {:.1} s)",
        server.url,
        started_server.elapsed().as_secs_f32()
    );
    // Each run with its name and how long it took (its build included).
    let mut runs: Vec<(String, TestRun, f32)> = Vec::new();
    // Each browser run with the scope test it must report (see `Scope::proof_test`).
    let mut proofs: Vec<(String, &'static str)> = Vec::new();
    // The framework crates' runs, one per browser, with how long each took.
    let mut examples: Vec<(Browser, Vec<String>, TestRun, f32)> = Vec::new();

    // `--lib`: the suite; the conformance runner (a test target of its own) runs below.
    let started_native = Instant::now();
    let native = run_tests(
        cargo(root, None)
            .env("ANYWS_TEST_SERVER", &server.url)
            .args(["test", "--lib"])
            .args(steps::packages(&config.test.crates)),
    )?;
    runs.push((
        "native".to_owned(),
        native,
        started_native.elapsed().as_secs_f32(),
    ));

    for scope in &config.test.scopes {
        for browser in &config.test.browsers {
            let started_run = Instant::now();
            let mut cmd = browser_test(
                root,
                &tools,
                &server.url,
                *browser,
                config.test.timeout_seconds,
            );
            cmd.arg("--lib").args(steps::packages(&config.test.crates));
            if let Some(feature) = scope.feature() {
                // `crate/feature` for each suite crate: only they are rebuilt.
                let features: Vec<String> = config
                    .test
                    .crates
                    .iter()
                    .map(|c| format!("{c}/{feature}"))
                    .collect();
                cmd.args(["--features", &features.join(",")]);
            }
            let run = run_browser_tests(root, &mut cmd)?;
            if config.test.crates.iter().any(|c| c == SUITE_CRATE) {
                proofs.push((scope.run_name(*browser), scope.proof_test()));
            }
            runs.push((
                scope.run_name(*browser),
                run,
                started_run.elapsed().as_secs_f32(),
            ));
        }
    }
    // The opt-in `WebSocketStream` path, which only Chromium has: the page's suite once more,
    // with every socket on it (see `STREAM_RUN`).
    if config.test.browsers.contains(&Browser::Chromium)
        && config.test.crates.iter().any(|c| c == SUITE_CRATE)
    {
        let started_run = Instant::now();
        let mut cmd = browser_test(
            root,
            &tools,
            &server.url,
            Browser::Chromium,
            config.test.timeout_seconds,
        );
        cmd.arg("--lib")
            .args(steps::packages(&config.test.crates))
            .args(["--features", &format!("{SUITE_CRATE}/{STREAM_FEATURE}")]);
        let run = run_browser_tests(root, &mut cmd)?;
        proofs.push((STREAM_RUN.to_owned(), STREAM_PROOF));
        runs.push((
            STREAM_RUN.to_owned(),
            run,
            started_run.elapsed().as_secs_f32(),
        ));
    }
    // The hooks in every browser; the examples in Chromium, in the same run.
    for browser in &config.test.browsers {
        let mut crates = config.test.hooks.clone();
        if *browser == Browser::Chromium {
            crates.extend(config.test.examples.iter().cloned());
        }
        if !crates.is_empty() {
            let started_run = Instant::now();
            let mut cmd = browser_test(
                root,
                &tools,
                &server.url,
                *browser,
                config.test.timeout_seconds,
            );
            cmd.args(steps::packages(&crates));
            let run = run_browser_tests(root, &mut cmd)?;
            examples.push((*browser, crates, run, started_run.elapsed().as_secs_f32()));
        }
    }
    let (conformance_lines, conformance_problems) =
        conformance::ci(root, &config, &tools, &server.url)?;
    drop(server);

    println!();
    let mut problems = Vec::new();
    for (name, run, took) in &runs {
        println!(
            "{name}: {} passed, {} failed ({took:.0} s)",
            run.passed, run.failed
        );
        passed += run.passed;
        failed += run.failed;
        if let Err(e) = report_failure(name, run) {
            problems.push(e);
        }
    }
    for line in &conformance_lines {
        println!("{line}");
    }
    problems.extend(conformance_problems);
    for (browser, crates, run, took) in &examples {
        let name = format!("hooks and examples ({})", browser.name());
        println!(
            "{name}: {} passed, {} failed ({took:.0} s; {})",
            run.passed,
            run.failed,
            crates.join(", ")
        );
        passed += run.passed;
        failed += run.failed;
        if let Err(e) = report_failure(&name, run) {
            problems.push(e);
        }
    }
    problems.extend(same_tests_everywhere(&runs));
    for (name, run, _) in &runs {
        if let Some((_, test)) = proofs.iter().find(|(n, _)| n == name) {
            if let Err(e) = check_scope(name, test, run) {
                problems.push(e);
            }
        }
    }
    problems.extend(after_suite(root, &config, &tools, fuzz_build));
    println!("{passed} passed, {failed} failed");
    println!("(took {:.0} s)", started.elapsed().as_secs_f32());
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// After the suite: the demo's end-to-end test, Autobahn|Testsuite and fuzzing. Each prints its
/// lines; each failure is a problem, and the others still run.
fn after_suite(
    root: &Path,
    config: &WasmConfig,
    tools: &setup::Tools,
    fuzz_build: Option<fuzz::Background>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match bundle::ensure(
        root,
        &config.build,
        tools.wasm_toolchain.as_deref(),
        &tools.wasm_opt,
    )
    .and_then(|_| demo::end_to_end(root, &tools.chromedriver, e2e_firefox(config, tools)))
    {
        Ok(line) => println!("{line}"),
        Err(e) => problems.push(format!("demo end-to-end test: {e}")),
    }
    let started_autobahn = Instant::now();
    match autobahn::run(root, autobahn::Cases::Ci, steps::Build::AsUnitTests, || {
        cargo(root, None)
    }) {
        Ok(report) => {
            for line in report.lines() {
                println!("{line}");
            }
            println!(
                "(autobahn took {:.0} s)",
                started_autobahn.elapsed().as_secs_f32()
            );
            problems.extend(
                report
                    .problems()
                    .into_iter()
                    .map(|p| format!("autobahn: {p}")),
            );
        }
        Err(e) => problems.push(format!("autobahn could not run: {e}")),
    }
    let started_fuzz = Instant::now();
    match fuzz::run(root, CI_FUZZ_SECONDS, fuzz_build) {
        Ok(lines) => {
            lines.iter().for_each(|l| println!("{l}"));
            println!(
                "(fuzzing took {:.0} s)",
                started_fuzz.elapsed().as_secs_f32()
            );
        }
        Err(e) => problems.push(e),
    }
    problems
}

/// Every runtime passes the same tests, by name, as the first (native), except the
/// browser-only ones, which live in the suite's `browser_faults` module (faults only a browser
/// can have, e.g. a Blob that cannot be read), `browser_scope` (the page or a worker, as
/// built) and `browser_network` (the global scope's `online`/`offline` events). One problem
/// per run that differs.
fn same_tests_everywhere(runs: &[(String, TestRun, f32)]) -> Vec<String> {
    let shared = |names: &std::collections::BTreeSet<String>| {
        names
            .iter()
            .filter(|n| !BROWSER_ONLY.iter().any(|m| n.starts_with(m)))
            .cloned()
            .collect::<std::collections::BTreeSet<String>>()
    };
    let Some(((_, first, _), rest)) = runs.split_first() else {
        return Vec::new();
    };
    let reference = shared(&first.names);
    let mut problems = Vec::new();
    for (name, run, _) in rest {
        let names = shared(&run.names);
        if run.success && names != reference {
            let only_native: Vec<_> = reference.difference(&names).collect();
            let only_here: Vec<_> = names.difference(&reference).collect();
            problems.push(format!(
                "{name} did not pass the same tests as native: missing {only_native:?}, extra {only_here:?}"
            ));
        }
    }
    problems
}

/// The modules of the cross-target suite whose tests run only in browsers.
const BROWSER_ONLY: [&str; 3] = ["browser_faults::", "browser_scope::", "browser_network::"];

/// The crate holding `browser_scope`, whose scope tests prove where a browser run ran.
const SUITE_CRATE: &str = "anyws-tests";

/// The run of the suite on anyws's opt-in `WebSocketStream` path (`anyws::web`): Chromium's
/// page, the suite crate built with `STREAM_FEATURE`, which sets every socket on that path.
/// Only the page: the worker runs the same backend code, and the run costs about 30 s.
const STREAM_RUN: &str = "chromium (WebSocketStream)";
const STREAM_FEATURE: &str = "websocket-stream";
/// The test only a `STREAM_FEATURE` build has, which checks that the sockets took the path.
const STREAM_PROOF: &str = "browser_scope::sockets_use_websocket_stream_where_the_browser_has_it";

/// A browser run that passed must have reported its scope's test (`Scope::proof_test`) `ok`:
/// every other test has the same name in each scope, so it alone tells a worker run from the
/// page build run again. (A failed run is reported by `report_failure`.)
fn check_scope(name: &str, proof_test: &str, run: &TestRun) -> Result<(), String> {
    if !run.success || run.names.contains(proof_test) {
        return Ok(());
    }
    let ran: Vec<_> = run
        .names
        .iter()
        .filter(|n| n.starts_with("browser_scope::"))
        .collect();
    Err(format!(
        "{name} did not report {proof_test} ok (scope tests it ran: {ran:?}): it did not run in the scope it was meant to"
    ))
}

/// A run that failed, or that ran nothing, is an error carrying the end of its output.
fn report_failure(name: &str, run: &TestRun) -> Result<(), String> {
    if run.success && run.failed == 0 && run.passed > 0 {
        return Ok(());
    }
    let why = if run.passed == 0 && run.failed == 0 {
        "ran no test"
    } else {
        "failed"
    };
    Err(format!(
        "{name} {why}:\n{}",
        run::failure_excerpt(&run.output)
    ))
}

fn autobahn_summary(root: &Path) -> Result<(), String> {
    let report = autobahn::run(root, autobahn::Cases::All, steps::Build::Alone, || {
        cargo(root, None)
    })?;
    for line in report.lines() {
        println!("{line}");
    }
    let path = root.join(autobahn::SUMMARY);
    std::fs::create_dir_all(path.parent().expect("a parent")).map_err(|e| e.to_string())?;
    std::fs::write(&path, report.markdown()).map_err(|e| e.to_string())?;
    println!("wrote {}", path.display());
    let problems = report.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::{
        browser_test, check_scope, chromium_config, run_browser_tests, Browser, Scope, TestRun,
    };
    use std::process::Command;

    fn run(success: bool, names: &[&str]) -> TestRun {
        TestRun {
            passed: names.len(),
            failed: 0,
            names: names.iter().map(|n| n.to_string()).collect(),
            output: String::new(),
            success,
        }
    }

    /// The worker run built without the `worker` feature: the same suite names as a worker
    /// run, but the page's scope test. It must not pass as a worker run.
    #[test]
    fn a_page_build_does_not_pass_as_a_worker_run() {
        let worker = Scope::DedicatedWorker.proof_test();
        let page = Scope::Page.proof_test();
        let page_build = run(true, &["suite::echo", page]);
        let err = check_scope("chromium (worker)", worker, &page_build).unwrap_err();
        assert!(err.contains(worker) && err.contains(page), "{err}");
        assert!(check_scope("chromium", page, &page_build).is_ok());
        let worker_build = run(true, &["suite::echo", worker]);
        assert!(check_scope("chromium (worker)", worker, &worker_build).is_ok());
        assert!(check_scope("chromium", page, &worker_build).is_err());
        // A run that ran no scope test at all fails too; a failed run is reported elsewhere.
        assert!(check_scope("firefox", page, &run(true, &["suite::echo"])).is_err());
        assert!(check_scope("firefox", page, &run(false, &[])).is_ok());
    }

    /// Each scope's test exists in tests/src/browser_scope.rs, in that scope's build only.
    #[test]
    fn the_scope_tests_exist_in_their_builds_only() {
        let source = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/src/browser_scope.rs"
        ))
        .unwrap();
        for (scope, cfg) in [
            (Scope::Page, "#[cfg(not(feature = \"worker\"))]"),
            (Scope::DedicatedWorker, "#[cfg(feature = \"worker\")]"),
        ] {
            let test = scope.proof_test().strip_prefix("browser_scope::").unwrap();
            let declared = format!("{cfg}\n#[wasm_bindgen_test]\nfn {test}() {{");
            assert_eq!(source.matches(&declared).count(), 1, "{declared}");
            assert_eq!(source.matches(&format!("fn {test}(")).count(), 1, "{test}");
        }
    }

    /// A failed browser run names the minidumps Chromium wrote during it, and only those.
    #[test]
    fn a_failed_browser_run_names_the_renderer_crashes_of_that_run() {
        let root = std::env::temp_dir().join(format!("anyws-xtask-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let reports = chromium_config(&root).join("chromium/Crash Reports");
        let pending = reports.join("pending");
        std::fs::create_dir_all(&pending).unwrap();
        std::fs::write(reports.join("old.dmp"), b"").unwrap();
        let crash = |exit: u8| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!(
                "touch \"{}/$$.dmp\" \"{}/$$.meta\"; echo 'test result: FAILED. 1 passed; 1 failed'; exit {exit}",
                pending.display(),
                pending.display()
            ));
            run_browser_tests(&root, &mut cmd).unwrap()
        };
        let failed = crash(1);
        assert!(!failed.success);
        let note = failed.output.lines().last().unwrap();
        assert!(
            note.contains("Chromium's renderer crashed") && note.contains(".dmp"),
            "{note}"
        );
        assert!(
            !note.contains("old.dmp") && !note.contains(".meta"),
            "{note}"
        );
        // A run that passed is not annotated (nor failed) by a dump.
        assert!(!crash(0).output.contains("renderer crashed"));
        // A failed run without a new dump is not blamed on the browser.
        let mut plain = Command::new("sh");
        plain.arg("-c").arg("exit 1");
        assert!(!run_browser_tests(&root, &mut plain)
            .unwrap()
            .output
            .contains("crashed"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Chromium's runs write their minidumps where `run_browser_tests` looks (and only
    /// Chromium's: Firefox's runs keep the user's configuration directory).
    #[test]
    fn chromium_runs_keep_their_configuration_where_crashes_are_looked_for() {
        let root = std::path::Path::new("/somewhere");
        let tools = crate::setup::Tools {
            wasm_toolchain: None,
            chromedriver: "chromedriver".into(),
            geckodriver: "geckodriver".into(),
            wasm_opt: "wasm-opt".into(),
        };
        let config = |browser| {
            browser_test(root, &tools, "ws://127.0.0.1:1", browser, 60)
                .get_envs()
                .find(|(k, _)| *k == "XDG_CONFIG_HOME")
                .and_then(|(_, v)| v.map(std::path::PathBuf::from))
        };
        assert_eq!(config(Browser::Chromium), Some(chromium_config(root)));
        assert_eq!(config(Browser::Firefox), None);
    }
}
