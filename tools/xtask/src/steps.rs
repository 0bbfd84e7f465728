//! The checks of `cargo xtask test` (and `cargo xtask deps`) as data: each step is a name and
//! a cargo command for a target, a test run, or a function; [`run`] runs them in order, times
//! each, prints one line per step and stops at the first that fails. (The suite's runs
//! against the test server, which share that server and are compared with each other, follow
//! in `main.rs`.)

use crate::config::WasmConfig;
use crate::run::{run_quiet, run_tests};
use crate::{cargo, downstream, publish, report_failure, WASM};
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Which toolchain a step's cargo runs with.
#[derive(Clone, Copy)]
pub enum Target {
    Native,
    /// The wasm32 target's toolchain (`setup::Tools::wasm_toolchain`).
    Wasm,
}

impl Target {
    /// The toolchain its cargo runs with, given the wasm32 one.
    fn toolchain(self, wasm: Option<&str>) -> Option<&str> {
        match self {
            Target::Native => None,
            Target::Wasm => wasm,
        }
    }
}

pub struct Step<'a> {
    name: &'static str,
    kind: Kind<'a>,
    /// Environment for its cargo (`None` removes the variable).
    env: Vec<(&'static str, Option<OsString>)>,
    args: Vec<String>,
}

enum Kind<'a> {
    /// `cargo ARGS`: passes when it exits 0; prints `check: NAME ok (T s)`.
    Cargo(Target),
    /// `cargo ARGS` as a test run (native): passes when tests ran and none failed; prints
    /// `check: NAME: N passed, M failed (T s)`. `counted`: its tests count in the total.
    Tests { counted: bool },
    /// Anything else; it prints its own line.
    Run(Box<dyn FnOnce() -> Result<(), String> + 'a>),
}

impl<'a> Step<'a> {
    fn cargo(name: &'static str, target: Target, args: &[&str]) -> Step<'a> {
        Step::new(name, Kind::Cargo(target)).arg(args)
    }

    fn tests(name: &'static str, counted: bool, args: &[&str]) -> Step<'a> {
        Step::new(name, Kind::Tests { counted }).arg(args)
    }

    fn run(name: &'static str, f: impl FnOnce() -> Result<(), String> + 'a) -> Step<'a> {
        Step::new(name, Kind::Run(Box::new(f)))
    }

    fn new(name: &'static str, kind: Kind<'a>) -> Step<'a> {
        Step {
            name,
            kind,
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    fn arg<S: AsRef<str>>(mut self, args: &[S]) -> Step<'a> {
        self.args.extend(args.iter().map(|a| a.as_ref().to_owned()));
        self
    }

    fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Step<'a> {
        self.env.push((key, Some(value.into())));
        self
    }
}

/// A step's cargo command, with `toolchain` (`cargo +toolchain`) if given.
fn command(
    root: &Path,
    toolchain: Option<&str>,
    env: &[(&str, Option<OsString>)],
    args: &[String],
) -> Command {
    let mut cmd = cargo(root, toolchain);
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.args(args);
    cmd
}

/// `-p CRATE` for each crate.
pub fn packages(crates: &[String]) -> Vec<String> {
    crates
        .iter()
        .flat_map(|c| ["-p".to_owned(), c.clone()])
        .collect()
}

const DENY_WARNINGS: [&str; 3] = ["--", "-D", "warnings"];

/// How a step that runs a binary of the workspace (the Autobahn examples, the test server)
/// builds it.
#[derive(Clone, Copy)]
pub enum Build {
    /// With the unit tests' packages and features ([`UNIT_TESTS`], `--all-features`, tests
    /// selected so that the dev-dependencies' features count): in `cargo xtask test`, whose
    /// unit tests' step built all of it, only the binary itself is compiled.
    AsUnitTests,
    /// Only what the binary needs (`cargo xtask autobahn`, `cargo xtask conformance`):
    /// fewer crates, but with their own features, so built again.
    Alone,
}

/// The packages of the unit and doc tests, which run with every feature on (native-tls,
/// platform-roots, both crypto providers); the suite uses the defaults.
pub const UNIT_TESTS: [&str; 26] = [
    "-p",
    "anyws",
    "-p",
    "anyws-testserver",
    "-p",
    "xtask",
    "-p",
    "anyws-child",
    "-p",
    "anyws-chat",
    "-p",
    "anyws-chat-server",
    // The demo's bot with stdin closed (it starts the binary: a second of linking).
    "-p",
    "anyws-chat-cli",
    "-p",
    "anyws-bench",
    "-p",
    "anyws-conformance",
    // The framework hooks natively: their server-side render tests and doc examples.
    "-p",
    "anyws-leptos",
    "-p",
    "anyws-yew",
    // wss:// in processes whose rustls has both crypto providers compiled in (as next to
    // reqwest 0.13): built here, with anyws's features as above (so anyws picks aws-lc-rs),
    // it costs only its test binaries; `cargo xtask deps` runs it with anyws's default
    // features (ring), as an application next to reqwest has them.
    "-p",
    "anyws-both-providers",
    // Only in the interop step (`--test interop`), but selected here too so that both steps
    // resolve the same features and the interop step builds nothing but its test binary.
    "-p",
    "anyws-interop",
];

/// permessage-deflate interop with Python websockets and Node ws (tests/interop), whose peers
/// `setup` installed (`interop::ensure`). The unit tests' packages and features, so that it
/// reuses their build.
pub fn interop(root: &Path) -> Step<'_> {
    Step::tests("interop (Python websockets, Node ws)", false, &["test"])
        .arg(&UNIT_TESTS)
        .arg(&["--all-features", "--test", "interop"])
        .env("ANYWS_INTEROP_PYTHON", root.join(crate::interop::PYTHON))
        .env(
            "ANYWS_INTEROP_NODE_PATH",
            root.join(crate::interop::NODE_MODULES),
        )
}

/// The checks of `cargo xtask test`, in order, before the suite: `tc` is the wasm32
/// toolchain.
pub fn checks<'a>(root: &'a Path, config: &WasmConfig, tc: Option<&'a str>) -> Vec<Step<'a>> {
    use Target::{Native, Wasm};
    let wasm_crates = packages(&config.check.crates);
    vec![
        Step::cargo("cargo fmt --check", Native, &["fmt", "--all", "--check"]),
        Step::cargo(
            "clippy (native)",
            Native,
            &["clippy", "--workspace", "--all-targets", "--all-features"],
        )
        .arg(&DENY_WARNINGS),
        Step::cargo(
            "clippy (wasm32)",
            Wasm,
            &["clippy", "--target", WASM, "--all-targets"],
        )
        .arg(&wasm_crates)
        .arg(&DENY_WARNINGS),
        // Every library, binary and example: selecting examples makes cargo resolve the
        // features with the dev-dependencies, as clippy's `--all-targets` did, so that the
        // dependencies clippy checked are reused (a plain `cargo doc` resolves without them:
        // about 75 dependencies, web-sys and the Leptos stack among them, were checked again).
        Step::cargo(
            "rustdoc (native)",
            Native,
            &[
                "doc",
                "--no-deps",
                "--workspace",
                "--all-features",
                "--lib",
                "--examples",
            ],
        )
        .arg(&documented_bins(root))
        .env("RUSTDOCFLAGS", "-D warnings"),
        // The bench crate's wasm32 examples, with the crates above selected too (their
        // examples were checked just before): cargo then resolves the features as above, plus
        // the contenders', and checks only those again (gloo-net), where the bench crate
        // alone resolved web-sys, js-sys and wasm-bindgen with other features and checked
        // them again.
        Step::cargo(
            "clippy (bench contenders, wasm32)",
            Wasm,
            &[
                "clippy",
                "--target",
                WASM,
                "--examples",
                "-p",
                "anyws-bench",
            ],
        )
        .arg(&wasm_crates)
        .arg(&DENY_WARNINGS),
        Step::cargo(
            "anyws without default features",
            Native,
            &["check", "-p", "anyws", "--no-default-features"],
        ),
        Step::cargo(
            "rustdoc (wasm32)",
            Wasm,
            &["doc", "--no-deps", "--target", WASM],
        )
        .arg(&wasm_crates)
        .env("RUSTDOCFLAGS", "-D warnings"),
        Step::run("package", move || publish::check(root)),
        downstream(root, tc),
        // Every feature (native-tls, platform-roots, both crypto providers) on; the suite
        // uses the defaults.
        Step::tests("unit and doc tests", true, &["test"])
            .arg(&UNIT_TESTS)
            .arg(&["--all-features"]),
        interop(root),
        loom(),
    ]
}

/// `--bin NAME` for each binary of the workspace that a plain `cargo doc` documents: all but
/// those named as their package's library (`--bins` would document them over the library's
/// pages). Empty if `cargo metadata` fails (then the step runs and reports what is wrong).
fn documented_bins(root: &Path) -> Vec<String> {
    let Ok(json) = crate::run::capture(crate::cargo(root, None).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ])) else {
        return Vec::new();
    };
    let Ok(meta) = serde_json::from_str::<serde_json::Value>(&json) else {
        return Vec::new();
    };
    let crate_name = |t: &serde_json::Value| t["name"].as_str().unwrap_or("").replace('-', "_");
    let has_kind = |t: &serde_json::Value, kind: &str| {
        t["kind"].as_array().is_some_and(|k| {
            k.iter()
                .any(|k| k.as_str().is_some_and(|k| k.ends_with(kind)))
        })
    };
    let mut args = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let targets = package["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for bin in targets.iter().filter(|t| has_kind(t, "bin")) {
            let named_as_lib = targets
                .iter()
                .any(|l| has_kind(l, "lib") && crate_name(l) == crate_name(bin));
            let documented = bin["doc"].as_bool().unwrap_or(true);
            if documented && !named_as_lib {
                args.push("--bin".to_owned());
                args.push(bin["name"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    args
}

/// The model checks of the core's locking and wake-ups (loom; see crates/anyws/src/sync.rs).
/// The cfg is set on the workspace's crates only, by this binary as cargo's
/// `RUSTC_WORKSPACE_WRAPPER` (`RUSTFLAGS` would build every dependency again, in a target
/// directory of its own). The unit tests' packages and features, so that cargo resolves the
/// same features and every dependency is theirs, already built; only the workspace's crates
/// are compiled again (their libraries' unit tests; the filter leaves only anyws's models).
/// Without the cfg the filter matches no test, which fails the step.
fn loom<'a>() -> Step<'a> {
    Step::tests("model checks (loom)", false, &["test"])
        .arg(&UNIT_TESTS)
        .arg(&["--all-features", "--lib", "model"])
        // An empty wrapper (no path to this binary) is no wrapper: no cfg, no test, a failure.
        .env(
            "RUSTC_WORKSPACE_WRAPPER",
            std::env::current_exe().unwrap_or_default(),
        )
        .env(crate::WRAPPER_CFG, "anyws_loom")
}

/// `cargo xtask deps`: the two checks that anyws does not break its users' builds.
pub fn deps<'a>(root: &'a Path, tc: Option<&'a str>) -> Vec<Step<'a>> {
    vec![
        downstream(root, tc),
        // tests/both-providers (`wss://` with both rustls providers compiled in) with anyws's
        // default features (`checks` runs it with the unit tests, every feature on).
        Step::tests(
            "wss:// with both rustls providers compiled in",
            false,
            &["test", "-p", "anyws-both-providers"],
        ),
    ]
}

/// An application that pins another wasm-bindgen than Cargo.lock's still builds with anyws.
fn downstream<'a>(root: &'a Path, tc: Option<&'a str>) -> Step<'a> {
    Step::run("downstream wasm-bindgen", move || {
        println!("{}", downstream::wasm_bindgen(root, || cargo(root, tc))?);
        Ok(())
    })
}

/// Runs `steps` in order, timing each; stops at the first that fails. Returns the passed and
/// failed counts of the counted test steps.
pub fn run(root: &Path, tc: Option<&str>, steps: Vec<Step>) -> Result<(usize, usize), String> {
    let (mut passed, mut failed) = (0, 0);
    for Step {
        name,
        kind,
        env,
        args,
    } in steps
    {
        let start = Instant::now();
        match kind {
            Kind::Cargo(target) => {
                check(name, &mut command(root, target.toolchain(tc), &env, &args))?
            }
            Kind::Tests { counted } => {
                let run = run_tests(&mut command(root, None, &env, &args))?;
                report_failure(name, &run)?;
                println!(
                    "check: {name}: {} passed, {} failed ({:.1} s)",
                    run.passed,
                    run.failed,
                    start.elapsed().as_secs_f32()
                );
                if counted {
                    passed += run.passed;
                    failed += run.failed;
                }
            }
            Kind::Run(f) => f()?,
        }
    }
    Ok((passed, failed))
}

/// Runs one check, printing its name, verdict and time.
pub fn check(name: &str, cmd: &mut Command) -> Result<(), String> {
    let start = Instant::now();
    let result = run_quiet(cmd);
    let took = start.elapsed().as_secs_f32();
    match result {
        Ok(_) => {
            println!("check: {name} ok ({took:.1} s)");
            Ok(())
        }
        Err(e) => Err(format!("check `{name}` failed:\n{e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{checks, command, Kind, Target};
    use crate::config::WasmConfig;
    use crate::WASM;
    use std::path::Path;

    /// CI logs are read by people: the steps keep their names and order; every cargo step
    /// that builds for wasm32 runs with the wasm32 toolchain, and no other does.
    #[test]
    fn the_checks_keep_their_names_and_wasm32_steps_their_toolchain() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let config = WasmConfig::load(&root).unwrap();
        let steps = checks(&root, &config, Some("wasm-tc"));
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "cargo fmt --check",
                "clippy (native)",
                "clippy (wasm32)",
                "rustdoc (native)",
                "clippy (bench contenders, wasm32)",
                "anyws without default features",
                "rustdoc (wasm32)",
                "package",
                "downstream wasm-bindgen",
                "unit and doc tests",
                "interop (Python websockets, Node ws)",
                "model checks (loom)",
            ]
        );
        for step in &steps {
            if let Kind::Cargo(target) = step.kind {
                let wasm = step.args.iter().any(|a| a == WASM);
                assert_eq!(matches!(target, Target::Wasm), wasm, "{}", step.name);
                let cmd = command(
                    &root,
                    target.toolchain(Some("wasm-tc")),
                    &step.env,
                    &step.args,
                );
                let first = cmd
                    .get_args()
                    .next()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                assert_eq!(first == "+wasm-tc", wasm, "{}: {first}", step.name);
            }
        }
        // The crates wasm-pack.toml lists are checked for wasm32.
        let clippy = &steps[2].args;
        for krate in &config.check.crates {
            assert!(clippy.contains(krate), "{krate} in {clippy:?}");
        }
    }
}
