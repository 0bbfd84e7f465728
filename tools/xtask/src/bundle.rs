//! The demo page's wasm bundle: `wasm-pack build` with the `[build]` settings of
//! `wasm-pack.toml`, then wasm-opt, only when a source is newer than the bundle.

use crate::config::{BuildConfig, Profile};
use crate::run::run_quiet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

/// What the bundle is built from besides `[build] crate` itself (its `src/` and manifest): a
/// change to any of these makes it stale.
const SOURCES: &[&str] = &[
    "demo/chat",
    "crates/anyws/src",
    "crates/anyws/Cargo.toml",
    "Cargo.lock",
    "wasm-pack.toml",
];

/// Every path whose change makes the bundle stale, relative to the repository root.
fn sources(build: &BuildConfig) -> Vec<PathBuf> {
    let krate = Path::new(&build.krate);
    [krate.join("src"), krate.join("Cargo.toml")]
        .into_iter()
        .chain(SOURCES.iter().map(PathBuf::from))
        .collect()
}

fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// The bundle's JavaScript entry, e.g. `www/pkg/anyws_chat_web.js`.
fn entry(root: &Path, build: &BuildConfig) -> Result<PathBuf, String> {
    let manifest = root.join(&build.krate).join("Cargo.toml");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    let name = table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{} has no package name", manifest.display()))?;
    Ok(root
        .join(&build.out_dir)
        .join(format!("{}.js", name.replace('-', "_"))))
}

/// Builds the bundle if it is missing or older than its sources; returns its directory.
pub fn ensure(
    root: &Path,
    build: &BuildConfig,
    toolchain: Option<&str>,
    wasm_opt: &Path,
) -> Result<PathBuf, String> {
    let out = root.join(&build.out_dir);
    let js = entry(root, build)?;
    let wasm = js.with_file_name(format!(
        "{}_bg.wasm",
        js.file_stem().and_then(|s| s.to_str()).unwrap_or_default()
    ));
    let built = newest(&wasm).filter(|_| js.exists());
    let sources = sources(build)
        .iter()
        .filter_map(|s| newest(&root.join(s)))
        .max();
    if let (Some(built), Some(sources)) = (built, sources) {
        if built >= sources {
            println!("bundle: {} is up to date", out.display());
            return Ok(out);
        }
    }
    let start = Instant::now();
    let profile = match build.profile {
        Profile::Release => "--release",
        Profile::Dev => "--dev",
    };
    println!(
        "bundle: wasm-pack build {} --target {} {profile} --out-dir {} ...",
        build.krate, build.target, build.out_dir
    );
    let mut cmd = Command::new("wasm-pack");
    cmd.current_dir(root)
        .env("PATH", crate::tool_path())
        .args(["build", &build.krate, "--target", &build.target, profile])
        .arg("--out-dir")
        .arg(&out)
        // wasm-bindgen-cli is installed by the setup; wasm-opt runs below.
        .args(["--mode", "no-install", "--no-opt", "--no-pack"]);
    if let Some(t) = toolchain {
        cmd.env("RUSTUP_TOOLCHAIN", t);
    }
    run_quiet(&mut cmd)?;
    if !build.wasm_opt.is_empty() {
        run_quiet(
            Command::new(wasm_opt)
                .args(&build.wasm_opt)
                .arg(&wasm)
                .arg("-o")
                .arg(&wasm),
        )?;
    }
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!(
        "bundle: built {} ({} KiB of wasm, wasm-opt {:?}) in {:.0} s",
        out.display(),
        size / 1024,
        build.wasm_opt,
        start.elapsed().as_secs_f32()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{entry, sources};
    use crate::config::WasmConfig;
    use std::path::{Path, PathBuf};

    /// `[build] crate` and `out-dir` decide what the staleness check reads and where the
    /// bundle's entry is.
    #[test]
    fn the_build_settings_decide_sources_and_entry() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut build = WasmConfig::load(&root).unwrap().build;
        assert!(sources(&build).contains(&PathBuf::from("www/src")));
        assert_eq!(
            entry(&root, &build).unwrap(),
            root.join("www/pkg/anyws_chat_web.js")
        );
        build.krate = "demo/chat".into();
        build.out_dir = "target/elsewhere".into();
        let read = sources(&build);
        assert!(read.contains(&PathBuf::from("demo/chat/src")), "{read:?}");
        assert!(!read.iter().any(|p| p.starts_with("www")), "{read:?}");
        assert_eq!(
            entry(&root, &build).unwrap(),
            root.join("target/elsewhere/anyws_chat.js")
        );
    }
}
