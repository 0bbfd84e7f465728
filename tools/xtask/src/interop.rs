//! The peers of the interop tests (`tests/interop`): Python `websockets` and Node `ws`, pinned,
//! installed under `target/interop` (a venv and an npm prefix) without root.

use crate::run::run_quiet;
use std::path::Path;
use std::process::Command;

/// The pinned Python `websockets` (PyPI).
pub const WEBSOCKETS: &str = "17.4";
/// The pinned Node `ws` (npm).
pub const WS: &str = "8.23.0";

/// Where they are installed, under the workspace root.
const DIR: &str = "target/interop";
/// The venv's python (for `ANYWS_INTEROP_PYTHON`).
pub const PYTHON: &str = "target/interop/venv/bin/python";
/// The `node_modules` holding `ws` (for `ANYWS_INTEROP_NODE_PATH`).
pub const NODE_MODULES: &str = "target/interop/node/node_modules";

/// Installs both peers unless the pinned versions are there (a stamp written after a
/// complete install says so); says what it installed in `installed`.
pub fn ensure(root: &Path, installed: &mut Vec<String>) -> Result<(), String> {
    let dir = root.join(DIR);
    let stamp = dir.join("installed");
    let want = format!("websockets=={WEBSOCKETS} ws@{WS}\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want)
        && root.join(PYTHON).exists()
        && root.join(NODE_MODULES).join("ws").exists()
    {
        return Ok(());
    }
    println!("setup: interop peers: pip install websockets=={WEBSOCKETS}, npm install ws@{WS} ...");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&stamp);
    run_quiet(
        Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir.join("venv")),
    )?;
    run_quiet(Command::new(root.join(PYTHON)).args([
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        &format!("websockets=={WEBSOCKETS}"),
    ]))?;
    let prefix = dir.join("node");
    std::fs::create_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
    run_quiet(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-audit", "--no-fund", "--no-save"])
            .arg(format!("ws@{WS}")),
    )?;
    std::fs::write(&stamp, want).map_err(|e| format!("{}: {e}", stamp.display()))?;
    installed.push(format!("interop peers (websockets {WEBSOCKETS}, ws {WS})"));
    Ok(())
}
