//! Ready to publish: `cargo publish --dry-run` of every published crate, then the packaged
//! `anyws`'s tests, examples and benches checked from the unpacked package, as someone who
//! downloads the `.crate` would build them.
//!
//! The packaged `anyws` keeps its dev-dependency on `anyws-testserver` (which needs
//! `anyws-conformance`) only because both are published too. Before they are on crates.io,
//! cargo's multi-package dry run resolves them through a local registry of the packages it
//! just made (`target/package/tmp-registry`); the test check does the same with `[patch]`
//! entries pointing at the packages, unpacked from the `.crate` files. The dry run does not
//! build (`--no-verify`): the check, in the main target directory, type-checks the packaged
//! crates instead, so only they are checked again.

use crate::cargo;
use crate::steps::check as step;
use std::path::Path;

/// The crates that go to crates.io, in publishing order (each needs only earlier ones). Every
/// other workspace member says `publish = false` (a unit test holds the two together).
pub const PUBLISHED: [&str; 5] = [
    "anyws-conformance",
    "anyws-testserver",
    "anyws",
    "anyws-leptos",
    "anyws-yew",
];

/// The version of every published crate (the workspace's, which xtask shares).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs both checks as steps of `cargo xtask test`.
pub fn check(root: &Path) -> Result<(), String> {
    // `--allow-dirty`: the check is about what would be packaged, not whether it is committed.
    // `--no-verify`: cargo's verification builds each package (codegen, every dependency
    // again); the check below type-checks the packaged `anyws` with its tests, examples and
    // benches and every feature, which is the stronger test, so the build is not repeated.
    step(
        &format!("cargo publish --dry-run ({})", PUBLISHED.join(", ")),
        cargo(root, None).args([
            "publish",
            "--dry-run",
            "--workspace",
            "--allow-dirty",
            "--no-verify",
        ]),
    )?;
    let packages = root.join("target/package");
    for name in PUBLISHED {
        unpack(&packages, name)?;
    }
    let mut cmd = cargo(root, None);
    cmd.env("CARGO_TARGET_DIR", root.join("target"))
        .args([
            "check",
            "--all-targets",
            "--all-features",
            "--manifest-path",
        ])
        .arg(packages.join(format!("anyws-{VERSION}/Cargo.toml")));
    for name in PUBLISHED.iter().filter(|&&n| n != "anyws") {
        let dir = packages.join(format!("{name}-{VERSION}"));
        let dir = dir
            .to_str()
            .ok_or("the target directory's path is not UTF-8")?;
        cmd.arg("--config")
            .arg(format!("patch.crates-io.{name}.path={dir:?}"));
    }
    step(
        "packaged anyws: tests, examples and benches compile",
        &mut cmd,
    )
}

/// Unpacks `name`'s `.crate` (where the dry run left it) into `packages/NAME-VERSION`, as
/// cargo's verification would have, replacing what an earlier run left there.
fn unpack(packages: &Path, name: &str) -> Result<(), String> {
    let file = format!("{name}-{VERSION}.crate");
    let archive = [packages.join("tmp-crate").join(&file), packages.join(&file)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("the dry run left no {file} in {}", packages.display()))?;
    let dir = packages.join(format!("{name}-{VERSION}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(packages)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !status.success() || !dir.join("Cargo.toml").is_file() {
        return Err(format!("could not unpack {}", archive.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::PUBLISHED;
    use std::path::Path;

    fn root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
    }

    fn read(path: &str) -> String {
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every workspace member is either in `PUBLISHED` or says `publish = false`.
    #[test]
    fn published_is_every_member_without_publish_false() {
        let workspace: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
        let members = workspace["workspace"]["members"].as_array().unwrap();
        let mut published: Vec<String> = Vec::new();
        for member in members {
            let member = member.as_str().unwrap();
            let manifest: toml::Table =
                toml::from_str(&read(&format!("{member}/Cargo.toml"))).unwrap();
            let package = manifest["package"].as_table().unwrap();
            if package.get("publish").and_then(|p| p.as_bool()) != Some(false) {
                published.push(package["name"].as_str().unwrap().to_owned());
            }
        }
        published.sort();
        let mut expected: Vec<String> = PUBLISHED.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(published, expected);
    }

    /// The hooks' framework-neutral files (the driver and the error type) are one text in
    /// two crates (each crate is packaged alone, so they cannot share a module): they must not
    /// drift apart.
    #[test]
    fn the_hook_crates_share_their_driver_and_error_verbatim() {
        for file in ["driver.rs", "error.rs"] {
            assert_eq!(
                read(&format!("crates/anyws-leptos/src/{file}")),
                read(&format!("crates/anyws-yew/src/{file}")),
                "crates/anyws-leptos/src/{file} and crates/anyws-yew/src/{file} differ"
            );
        }
    }

    /// The Yew quick start of anyws's crate README cannot be a doctest (no Yew natively), so
    /// examples/yew compiles it for wasm32, verbatim, in `src/quick_start.rs`.
    #[test]
    fn readme_yew_example_is_compiled() {
        let readme = read("crates/anyws/README.md");
        let start = readme
            .find("```rust,ignore\n")
            .expect("the README's Yew example (```rust,ignore)")
            + "```rust,ignore\n".len();
        let end = start
            + readme[start..]
                .find("```")
                .expect("the end of the code block");
        let snippet = &readme[start..end];
        assert!(snippet.contains("use yew::prelude::*;"), "{snippet}");
        assert_eq!(
            readme.matches("```rust,ignore").count(),
            1,
            "only the Yew example may skip the doctests"
        );
        let compiled = read("examples/yew/src/quick_start.rs");
        assert!(
            compiled.ends_with(snippet),
            "examples/yew/src/quick_start.rs must end with the README's Yew example, verbatim"
        );
    }
}
