//! Builds that stand in for other people's projects depending on anyws.
//!
//! `tests/downstream-wasm-bindgen` is an application that pins its own wasm-bindgen (as Yew
//! and Leptos apps do, to match their wasm-bindgen-cli), at a version other than the one
//! this workspace's Cargo.lock runs the tests with. It is not a workspace member: it
//! resolves its dependencies afresh on every run (its lockfile is deleted first and is not
//! committed), as a new application adding anyws would, and is checked for wasm32 in a
//! target directory of its own under `target/`. The run fails if resolution or the check
//! fails, and also if the lockfile it produced does not hold exactly the pinned wasm-bindgen
//! (so it cannot pass while testing something else).

use crate::setup::{locked_versions, locked_wasm_bindgen};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The downstream application's directory, under the workspace root.
const APP: &str = "tests/downstream-wasm-bindgen";

/// Checks the downstream application for wasm32; `cargo` makes a cargo command (with the
/// wasm toolchain). Returns the line to print.
pub fn wasm_bindgen(root: &Path, cargo: impl Fn() -> Command) -> Result<String, String> {
    let started = Instant::now();
    let app = root.join(APP);
    let manifest = app.join("Cargo.toml");
    let pinned = pinned_wasm_bindgen(&manifest)?;
    let ours = locked_wasm_bindgen(root)?;
    if pinned == ours {
        return Err(format!(
            "{APP} pins wasm-bindgen {pinned}, the version Cargo.lock has: it must pin another \
             one to show that anyws does not force its own"
        ));
    }
    let lock = app.join("Cargo.lock");
    match std::fs::remove_file(&lock) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", lock.display())),
    }
    crate::run::run_quiet(
        cargo()
            .env("CARGO_TARGET_DIR", root.join("target/downstream"))
            .arg("check")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--target", crate::WASM]),
    )
    .map_err(|e| {
        format!("an application pinning wasm-bindgen {pinned} cannot build with anyws:\n{e}")
    })?;
    let resolved = locked_versions(&lock, "wasm-bindgen")?;
    if resolved != [pinned.as_str()] {
        return Err(format!(
            "{APP} resolved wasm-bindgen {resolved:?}, not only the pinned {pinned}"
        ));
    }
    if locked_versions(&lock, "anyws")?.is_empty() {
        return Err(format!("{APP}'s build did not include anyws"));
    }
    Ok(format!(
        "check: an application pinning wasm-bindgen {pinned} (Cargo.lock: {ours}) builds with anyws for wasm32 ({:.1} s)",
        started.elapsed().as_secs_f32()
    ))
}

/// The exact version `manifest` gives its `wasm-bindgen` dependency (`"=X"`).
fn pinned_wasm_bindgen(manifest: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let toml: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    let requirement = toml
        .get("dependencies")
        .and_then(|d| d.get("wasm-bindgen"))
        .and_then(|w| w.as_str().or_else(|| w.get("version")?.as_str()));
    requirement
        .and_then(|r| r.strip_prefix('='))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| {
            format!(
                "{}: wants an exact wasm-bindgen requirement (\"=0.2.x\"), found {requirement:?}",
                manifest.display()
            )
        })
}
