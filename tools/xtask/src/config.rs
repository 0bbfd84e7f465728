//! `wasm-pack.toml`: the project's wasm32 settings, read by the xtask.

use serde::Deserialize;
use std::path::Path;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmConfig {
    pub test: TestConfig,
    pub check: CheckConfig,
    pub build: BuildConfig,
    #[serde(default)]
    pub conformance: ConformanceConfig,
}

/// `[conformance]`: the conformance runner's checks in `cargo xtask test`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConformanceConfig {
    /// Checks known to fail (`native`, `chromium-anyws`, `firefox-anyws`): reported, not
    /// failing the run; one of them that passes fails it, so the mark is removed.
    #[serde(default)]
    pub expected_to_fail: Vec<String>,
}

/// `[build]`: how the demo page's bundle is made.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildConfig {
    /// The crate directory wasm-pack builds, relative to the repository root.
    #[serde(rename = "crate")]
    pub krate: String,
    /// wasm-pack's `--target`.
    pub target: String,
    /// Where the bundle goes, relative to the repository root.
    pub out_dir: String,
    /// `release` or `dev`.
    pub profile: Profile,
    /// wasm-opt arguments the xtask runs on the bundle; empty to skip.
    pub wasm_opt: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Release,
    Dev,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestConfig {
    pub crates: Vec<String>,
    /// The framework hooks (Leptos, Yew) whose browser tests run in every browser of
    /// `browsers`, in the page.
    pub hooks: Vec<String>,
    /// Framework examples (Yew, Leptos) whose browser tests run in headless Chromium.
    pub examples: Vec<String>,
    pub browsers: Vec<Browser>,
    /// Where in each browser the suite runs: the page, a dedicated Web Worker, or both.
    pub scopes: Vec<Scope>,
    pub timeout_seconds: u64,
}

/// A global scope the browser suite runs in.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The page (a `Window`): the suite crates as they are.
    Page,
    /// A dedicated Web Worker: the suite crates with their `worker` feature, which switches
    /// wasm-bindgen-test to `run_in_dedicated_worker` (only those crates are rebuilt).
    DedicatedWorker,
}

impl Scope {
    /// The cargo feature each suite crate is built with for this scope.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Scope::Page => None,
            Scope::DedicatedWorker => Some("worker"),
        }
    }

    /// The test of `tests/src/browser_scope.rs` that exists only in this scope's build and
    /// checks the global scope it runs in. A run of this scope must report it `ok`: the suite's
    /// other test names are the same in every scope, so without it a run built for the wrong
    /// scope (the worker run built without the `worker` feature, say) would pass as this one.
    pub fn proof_test(self) -> &'static str {
        match self {
            Scope::Page => "browser_scope::runs_in_the_page",
            Scope::DedicatedWorker => "browser_scope::runs_in_a_dedicated_worker",
        }
    }

    /// The run's name: the browser's, plus the scope unless it is the page.
    pub fn run_name(self, browser: Browser) -> String {
        match self {
            Scope::Page => browser.name().to_owned(),
            Scope::DedicatedWorker => format!("{} (worker)", browser.name()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub crates: Vec<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Browser {
    Chromium,
    Firefox,
}

impl Browser {
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }
}

impl WasmConfig {
    pub fn load(root: &Path) -> Result<WasmConfig, String> {
        let path = root.join("wasm-pack.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<WasmConfig, String> {
        let config: WasmConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if config.test.browsers.is_empty() {
            return Err("[test] browsers must name at least one browser".into());
        }
        if config.test.scopes.is_empty() {
            return Err("[test] scopes must name at least one scope".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_file_parses_and_drives_the_browser_runs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let config = WasmConfig::load(&root).unwrap();
        assert_eq!(config.test.crates, ["anyws-tests"]);
        assert!(config
            .test
            .examples
            .contains(&"anyws-example-yew".to_string()));
        assert_eq!(config.test.hooks, ["anyws-leptos", "anyws-yew"]);
        assert_eq!(config.test.browsers, [Browser::Chromium, Browser::Firefox]);
        assert_eq!(config.test.scopes, [Scope::Page, Scope::DedicatedWorker]);
        let names: Vec<String> = config
            .test
            .scopes
            .iter()
            .flat_map(|s| config.test.browsers.iter().map(|b| s.run_name(*b)))
            .collect();
        assert_eq!(
            names,
            [
                "chromium",
                "firefox",
                "chromium (worker)",
                "firefox (worker)"
            ]
        );
        assert!(config.check.crates.contains(&"anyws".to_string()));
        assert_eq!(config.test.timeout_seconds, 60);
        assert_eq!(config.build.krate, "www");
        assert_eq!(config.build.target, "web");
        assert_eq!(config.build.out_dir, "www/pkg");
        assert_eq!(config.build.profile, Profile::Release);
        assert_eq!(config.build.wasm_opt, ["-Oz"]);
        for key in &config.conformance.expected_to_fail {
            assert!(
                ["native", "chromium-anyws", "firefox-anyws"].contains(&key.as_str()),
                "{key} is no check that may be expected to fail"
            );
        }
    }

    #[test]
    fn mistakes_are_reported() {
        let bad_browser = "[test]\ncrates=[]\nhooks=[]\nexamples=[]\nbrowsers=[\"safari\"]\nscopes=[\"page\"]\ntimeout-seconds=1\n[check]\ncrates=[]\n\
             [build]\ncrate=\"www\"\ntarget=\"web\"\nout-dir=\"www/pkg\"\nprofile=\"release\"\nwasm-opt=[]\n";
        assert!(WasmConfig::parse(bad_browser)
            .unwrap_err()
            .contains("safari"));
        let unknown_key = bad_browser
            .replace("\"safari\"", "\"firefox\"")
            .replace("[check]", "[check]\nextra=1");
        assert!(WasmConfig::parse(&unknown_key).is_err());
        let good = bad_browser.replace("\"safari\"", "\"firefox\"");
        assert!(WasmConfig::parse(&good).is_ok());
        let bad_scope = good.replace("\"page\"", "\"shared-worker\"");
        assert!(WasmConfig::parse(&bad_scope)
            .unwrap_err()
            .contains("shared-worker"));
        let no_scope = good.replace("\"page\"", "");
        assert!(WasmConfig::parse(&no_scope).unwrap_err().contains("scopes"));
    }
}
