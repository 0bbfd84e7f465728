//! `cargo xtask fuzz`: the cargo-fuzz targets of `crates/anyws/fuzz`, each for a while.

use crate::run::{capture, output, run_quiet, tail};
use crate::setup;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The targets, in the order they run.
pub const TARGETS: &[&str] = &["url", "protocols", "close_args", "receive", "inflate"];

/// Makes sure a nightly toolchain and cargo-fuzz are there (cargo-fuzz needs nightly for
/// the sanitizer and coverage flags; the rest of the project builds on stable).
fn ensure_tools(installed: &mut Vec<String>) -> Result<(), String> {
    let toolchains = capture(Command::new("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("setup: rustup toolchain install nightly --profile minimal ...");
        run_quiet(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
        installed.push("the nightly toolchain (for cargo-fuzz)".into());
    }
    setup::ensure_cargo_tool("cargo-fuzz", "cargo-fuzz", None, installed)
}

/// `cargo +nightly fuzz ARGS --fuzz-dir crates/anyws/fuzz` in `target/fuzz/build`.
fn cargo_fuzz(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cargo_fuzz_args(root, &mut cmd, args);
    cmd
}

fn cargo_fuzz_args(root: &Path, cmd: &mut Command, args: &[&str]) {
    cmd.current_dir(root.join("crates/anyws"))
        .env("CARGO_TARGET_DIR", root.join("target/fuzz/build"))
        .env("CARGO_TERM_COLOR", "never")
        .args(["+nightly", "fuzz"])
        .args(args)
        .arg("--fuzz-dir")
        .arg(root.join("crates/anyws/fuzz"));
}

/// The targets' build (`cargo fuzz build`, nightly, sanitizer), started early by
/// `cargo xtask test` at the lowest CPU priority (`nice -n 19`): it gets only the CPU the
/// steps running meanwhile leave idle (the browsers' and Autobahn's waits, a build's serial
/// stretches), and takes none from them. [`run`] waits for it, then builds as always, which
/// finds the targets built (or builds what is left, or reports the error). Dropped before
/// then (a check failed), it is killed.
pub struct Background {
    child: anyws_child::Child,
    started: Instant,
}

/// Starts [`Background`]: installs the tools first if missing (which prints), then the build,
/// its output in `target/fuzz/background-build.log`. `None` if it could not start (then [`run`]
/// builds in the foreground and reports what is wrong).
pub fn build_in_background(root: &Path) -> Option<Background> {
    let mut installed = Vec::new();
    ensure_tools(&mut installed).ok()?;
    if !installed.is_empty() {
        println!("setup: installed {}", installed.join(", "));
    }
    let work = root.join("target/fuzz");
    std::fs::create_dir_all(&work).ok()?;
    let log = std::fs::File::create(work.join("background-build.log")).ok()?;
    let mut cmd = match crate::run::which("nice") {
        Some(nice) => {
            let mut cmd = Command::new(nice);
            cmd.args(["-n", "19", "cargo"]);
            cmd
        }
        None => Command::new("cargo"),
    };
    cargo_fuzz_args(root, &mut cmd, &["build"]);
    cmd.stdin(std::process::Stdio::null())
        .stdout(log.try_clone().ok()?)
        .stderr(log);
    let child = anyws_child::Child::spawn(&mut cmd).ok()?;
    Some(Background {
        child,
        started: Instant::now(),
    })
}

/// Builds every target, then runs each for `seconds`, starting from the committed seeds.
/// Returns one summary line per target; a crash, a leak or a timeout is an error naming the
/// saved input. `background`: the build [`build_in_background`] started, waited for first.
pub fn run(
    root: &Path,
    seconds: u64,
    background: Option<Background>,
) -> Result<Vec<String>, String> {
    let mut installed = Vec::new();
    ensure_tools(&mut installed)?;
    if !installed.is_empty() {
        println!("setup: installed {}", installed.join(", "));
    }
    if let Some(mut background) = background {
        let waited = Instant::now();
        // Nothing else runs now: what the build starts from here on runs at normal priority
        // (its compilers inherit cargo's). Lowering a priority may need root; if it fails,
        // it only makes a difference on a machine other work shares.
        if let Some(renice) = crate::run::which("renice") {
            let _ = Command::new(renice)
                .args(["-n", "0", "-p", &background.child.id().to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let status = background.child.wait();
        println!(
            "fuzz: the background build ({}) ended {:.0} s after it started; waited {:.0} s for it",
            match &status {
                Ok(s) if s.success() => "ok".to_owned(),
                Ok(s) => format!("{s}; building again to report it"),
                Err(e) => format!("{e}"),
            },
            background.started.elapsed().as_secs_f32(),
            waited.elapsed().as_secs_f32()
        );
    }
    let fuzz_dir = root.join("crates/anyws/fuzz");
    let work = root.join("target/fuzz");
    let cargo_fuzz = |args: &[&str]| cargo_fuzz(root, args);
    let start = Instant::now();
    run_quiet(&mut cargo_fuzz(&["build"]))?;
    println!(
        "fuzz: built {} targets ({:.0} s)",
        TARGETS.len(),
        start.elapsed().as_secs_f32()
    );

    // Each run is one process on one core, so two run at a time (the machine CI runs on has
    // two cores): each still fuzzes for `seconds` of its own.
    let mut lines = Vec::new();
    for pair in TARGETS.chunks(AT_ONCE) {
        let results: Vec<Result<String, String>> = std::thread::scope(|scope| {
            let runs: Vec<_> = pair
                .iter()
                .map(|target| {
                    scope.spawn(|| run_target(target, seconds, &work, &fuzz_dir, &cargo_fuzz))
                })
                .collect();
            runs.into_iter()
                .map(|run| {
                    run.join()
                        .unwrap_or_else(|_| Err("a fuzz run's thread panicked".into()))
                })
                .collect()
        });
        // In order; the first failure is the error (its pair's other run finished too).
        for result in results {
            lines.push(result?);
        }
    }
    Ok(lines)
}

/// How many fuzz targets run at the same time.
const AT_ONCE: usize = 2;

/// Runs `target` for `seconds` from its corpus and the committed seeds: its summary line, or
/// an error naming the saved input.
fn run_target(
    target: &str,
    seconds: u64,
    work: &Path,
    fuzz_dir: &Path,
    cargo_fuzz: &(dyn Fn(&[&str]) -> Command + Sync),
) -> Result<String, String> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let seeds = fuzz_dir.join("seeds").join(target);
    let mut cmd = cargo_fuzz(&["run", target]);
    cmd.arg(&corpus).arg(&seeds).args([
        "--".to_owned(),
        format!("-max_total_time={seconds}"),
        format!("-artifact_prefix={}/", artifacts.display()),
        "-timeout=20".to_owned(),
        "-rss_limit_mb=4096".to_owned(),
        "-print_final_stats=1".to_owned(),
    ]);
    let (success, text) = output(&mut cmd)?;
    let runs = text
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let corpus_size = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    if !success {
        let crash = std::fs::read_dir(&artifacts)
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path()).next())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(no input saved)".into());
        return Err(format!(
            "fuzz target {target} failed after {runs} runs; input: {crash}\n{}",
            tail(&text, 40)
        ));
    }
    Ok(format!(
        "fuzz: {target}: {runs} runs in {seconds} s, corpus {corpus_size} inputs, no crash"
    ))
}
