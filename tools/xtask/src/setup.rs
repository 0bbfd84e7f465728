//! Installs what the test command needs on a fresh machine, and skips what is there.
//!
//! - the wasm32-unknown-unknown target: rustup first; where rustup cannot download it,
//!   Debian's Rust with its std source builds a wasm32 sysroot, linked as a rustup toolchain;
//! - wasm-bindgen-cli at exactly the `wasm-bindgen` version in Cargo.lock;
//! - the browsers and drivers that `wasm-pack.toml` asks for (Debian's chromium +
//!   chromium-driver, firefox-esr + geckodriver from crates.io);
//! - wasm-pack, and wasm-opt from the npm registry's `binaryen` (Debian's binaryen 108 cannot
//!   read what current Rust emits for wasm32), for the browser bundle;
//! - the interop tests' peers, Python `websockets` in a venv and Node `ws`, pinned, under
//!   `target/interop` (see [`crate::interop`]).

use crate::config::{Browser, WasmConfig};
use crate::run::{capture, cargo_bin_dir, run_quiet, which};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::WASM;
/// The rustup toolchain name of the Debian fallback.
const DEBIAN_TOOLCHAIN: &str = "anyws-debian-wasm";

/// What later steps need to know about the installed tools.
pub struct Tools {
    /// `Some(name)` when wasm32 builds must use another toolchain (`cargo +name`).
    pub wasm_toolchain: Option<String>,
    pub chromedriver: PathBuf,
    pub geckodriver: PathBuf,
    /// binaryen's wasm-opt (the npm package, run by Node.js).
    pub wasm_opt: PathBuf,
}

/// The binaryen release whose wasm-opt optimises the bundle.
const BINARYEN: &str = "132.0.0";

/// Installs binaryen from the npm registry into `target/xtask/binaryen` unless it is there.
fn ensure_binaryen(root: &Path, installed: &mut Vec<String>) -> Result<PathBuf, String> {
    let prefix = root.join("target/xtask/binaryen");
    let bin = prefix.join("node_modules/.bin/wasm-opt");
    let package = prefix.join("node_modules/binaryen/package.json");
    let have = std::fs::read_to_string(&package).unwrap_or_default();
    if bin.exists() && have.contains(&format!("\"version\": \"{BINARYEN}\"")) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    println!("setup: npm install binaryen@{BINARYEN} (wasm-opt) ...");
    run_quiet(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-audit", "--no-fund", "--no-save"])
            .arg(format!("binaryen@{BINARYEN}")),
    )?;
    installed.push(format!("binaryen {BINARYEN} (npm)"));
    Ok(bin)
}

/// What a command needs installed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Building the demo bundle: the wasm target, wasm-bindgen-cli, wasm-pack, wasm-opt.
    Bundle,
    /// Everything `cargo xtask test` runs: the above, the browsers and their drivers.
    Everything,
    /// Browser test runs only (`cargo xtask conformance`): the wasm target, wasm-bindgen-cli,
    /// the browsers and their drivers; no wasm-pack or wasm-opt.
    Browsers,
}

pub fn ensure(root: &Path, config: &WasmConfig, need: Need) -> Result<Tools, String> {
    let start = Instant::now();
    let mut installed = Vec::new();
    let wasm_toolchain = ensure_wasm_target(root, &mut installed)?;
    ensure_debian_packages(config, need, &mut installed)?;
    ensure_wasm_bindgen(root, &mut installed)?;
    let want_firefox = need != Need::Bundle && config.test.browsers.contains(&Browser::Firefox);
    if want_firefox {
        ensure_cargo_tool("geckodriver", "geckodriver", None, &mut installed)?;
    }
    let wasm_opt = if need == Need::Browsers {
        root.join("target/xtask/binaryen/node_modules/.bin/wasm-opt")
    } else {
        ensure_cargo_tool("wasm-pack", "wasm-pack", None, &mut installed)?;
        ensure_binaryen(root, &mut installed)?
    };
    if need == Need::Everything {
        crate::interop::ensure(root, &mut installed)?;
    }
    let tools = Tools {
        wasm_opt,
        wasm_toolchain,
        chromedriver: PathBuf::from("/usr/bin/chromedriver"),
        geckodriver: which("geckodriver").unwrap_or_else(|| cargo_bin_dir().join("geckodriver")),
    };
    let took = start.elapsed().as_secs_f32();
    if installed.is_empty() {
        println!("setup: everything present ({took:.1} s)");
    } else {
        println!("setup: installed {} ({took:.1} s)", installed.join(", "));
    }
    Ok(tools)
}

/// The wasm32 target, installed if missing: `Some(toolchain)` when only a linked toolchain
/// has it (see the fallback below), `None` for the default one.
pub fn ensure_wasm_target(
    root: &Path,
    installed: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let listed =
        capture(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if listed.lines().any(|l| l.trim() == WASM) {
        return Ok(None);
    }
    if run_quiet(Command::new("rustup").args(["target", "add", WASM])).is_ok() {
        installed.push("the wasm32 target (rustup)".into());
        return Ok(None);
    }
    // The fallback: does the linked toolchain already work?
    let probe = capture(Command::new("rustup").args([
        "run",
        DEBIAN_TOOLCHAIN,
        "rustc",
        "--print",
        "target-libdir",
        "--target",
        WASM,
    ]));
    if let Ok(dir) = probe {
        if std::fs::read_dir(dir.trim())
            .map(|d| d.count() > 3)
            .unwrap_or(false)
        {
            return Ok(Some(DEBIAN_TOOLCHAIN.into()));
        }
    }
    println!("setup: rustup cannot add {WASM}; building a wasm32 sysroot from Debian's Rust");
    apt_install(&["rustc-web", "cargo-web", "rust-web-src", "lld-22"])?;
    let scratch = root.join("target/xtask/wasm-sysroot");
    std::fs::create_dir_all(scratch.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(scratch.join("Cargo.toml"), "[package]\nname = \"sysroot-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n").map_err(|e| e.to_string())?;
    std::fs::write(scratch.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("/usr/bin/cargo")
            .current_dir(&scratch)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTC", "/usr/bin/rustc")
            .args([
                "build",
                "-Z",
                "build-std=std,panic_abort,test",
                "--target",
                WASM,
                "--release",
            ]),
    )?;
    let sysroot = capture(Command::new("/usr/bin/rustc").args(["--print", "sysroot"]))?;
    let dest = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(WASM)
        .join("lib");
    std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let deps = scratch.join("target").join(WASM).join("release/deps");
    for entry in std::fs::read_dir(&deps)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("lib")
            && name.ends_with(".rlib")
            && !name.starts_with("libsysroot_probe")
        {
            std::fs::copy(entry.path(), dest.join(&name)).map_err(|e| e.to_string())?;
        }
    }
    run_quiet(Command::new("rustup").args(["toolchain", "link", DEBIAN_TOOLCHAIN, "/usr"]))?;
    installed.push(format!(
        "a wasm32 sysroot for Debian's Rust (toolchain {DEBIAN_TOOLCHAIN})"
    ));
    Ok(Some(DEBIAN_TOOLCHAIN.into()))
}

fn is_root() -> bool {
    capture(Command::new("id").arg("-u"))
        .map(|u| u.trim() == "0")
        .unwrap_or(false)
}

fn apt_install(packages: &[&str]) -> Result<(), String> {
    if !is_root() {
        return Err(format!(
            "missing Debian packages {}: install them with `sudo apt-get install -y {}`",
            packages.join(", "),
            packages.join(" ")
        ));
    }
    run_quiet(Command::new("apt-get").arg("update"))?;
    run_quiet(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(packages),
    )
    .map(drop)
    .map_err(|e| format!("apt-get could not install {}: {e}", packages.join(", ")))
}

fn ensure_debian_packages(
    config: &WasmConfig,
    need: Need,
    installed: &mut Vec<String>,
) -> Result<(), String> {
    let mut wanted: Vec<(&str, &str)> = vec![
        ("nodejs", "/usr/bin/node"),
        ("npm", "/usr/bin/npm"),
        // For anyws's `native-tls` feature (OpenSSL), built by the unit tests.
        ("libssl-dev", "/usr/include/openssl/ssl.h"),
        ("pkg-config", "/usr/bin/pkg-config"),
    ];
    let browsers = match need {
        Need::Bundle => &[][..],
        // Chromium is needed for the end-to-end test of the demo page in any case.
        Need::Everything | Need::Browsers => &config.test.browsers[..],
    };
    if need == Need::Everything {
        wanted.push(("chromium", "/usr/bin/chromium"));
        wanted.push(("chromium-driver", "/usr/bin/chromedriver"));
    }
    for b in browsers {
        match b {
            Browser::Chromium => {
                wanted.push(("chromium", "/usr/bin/chromium"));
                wanted.push(("chromium-driver", "/usr/bin/chromedriver"));
            }
            Browser::Firefox => wanted.push(("firefox-esr", "/usr/bin/firefox-esr")),
        }
    }
    wanted.sort();
    wanted.dedup();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, bin)| !Path::new(bin).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)?;
    installed.extend(missing.iter().map(|p| p.to_string()));
    Ok(())
}

/// The `wasm-bindgen` version Cargo.lock resolved, which the CLI must equal. The library asks
/// for a range (applications pick their own wasm-bindgen); the lockfile is what is exact.
pub fn locked_wasm_bindgen(root: &Path) -> Result<String, String> {
    match locked_versions(&root.join("Cargo.lock"), "wasm-bindgen")?.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("Cargo.lock has no wasm-bindgen package".into()),
        many => Err(format!(
            "Cargo.lock has more than one wasm-bindgen ({}); one wasm-bindgen-cli cannot match them all",
            many.join(", ")
        )),
    }
}

/// Every version of the package `name` in the lockfile `lock`, in the lockfile's order.
pub fn locked_versions(lock: &Path, name: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(lock).map_err(|e| format!("{}: {e}", lock.display()))?;
    versions_in_lock(&text, name).map_err(|e| format!("{}: {e}", lock.display()))
}

fn versions_in_lock(lock: &str, name: &str) -> Result<Vec<String>, String> {
    let lock: toml::Table = lock.parse().map_err(|e| format!("{e}"))?;
    Ok(lock
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .filter_map(|p| p.get("version")?.as_str().map(str::to_owned))
        .collect())
}

fn ensure_wasm_bindgen(root: &Path, installed: &mut Vec<String>) -> Result<(), String> {
    let version = locked_wasm_bindgen(root)?;
    ensure_cargo_tool(
        "wasm-bindgen-cli",
        "wasm-bindgen",
        Some(&version),
        installed,
    )?;
    if which("wasm-bindgen-test-runner").is_none() {
        return Err(
            "wasm-bindgen-test-runner is not on PATH after installing wasm-bindgen-cli".into(),
        );
    }
    Ok(())
}

/// Installs `krate` with `cargo install` unless `bin` is on PATH (at `version`, if given).
pub fn ensure_cargo_tool(
    krate: &str,
    bin: &str,
    version: Option<&str>,
    installed: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(path) = which(bin) {
        match version {
            None => return Ok(()),
            Some(v) => {
                let out = capture(Command::new(&path).arg("--version")).unwrap_or_default();
                if out.split_whitespace().any(|w| w == v) {
                    return Ok(());
                }
            }
        }
    }
    let mut cmd = Command::new("cargo");
    cmd.args(["install", krate, "--force"]);
    if let Some(v) = version {
        cmd.args(["--version", &format!("={v}")]);
    }
    println!(
        "setup: cargo install {krate}{} ...",
        version.map(|v| format!(" {v}")).unwrap_or_default()
    );
    run_quiet(&mut cmd).map_err(|e| format!("could not install {krate}: {e}"))?;
    installed.push(match version {
        Some(v) => format!("{krate} {v}"),
        None => krate.to_owned(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_in_lock_lists_every_version_of_one_package() {
        let lock = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.100"

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.100"

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
"#;
        assert_eq!(
            super::versions_in_lock(lock, "wasm-bindgen").unwrap(),
            ["0.2.100", "0.2.130"]
        );
        assert!(super::versions_in_lock(lock, "web-sys").unwrap().is_empty());
        assert!(super::versions_in_lock("[[package]", "x").is_err());
    }
}
