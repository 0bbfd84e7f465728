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
    /// Framework examples (Yew, Leptos) whose browser tests run in headless Chromium.
    pub examples: Vec<String>,
    pub browsers: Vec<Browser>,
    pub timeout_seconds: u64,
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
        assert_eq!(config.test.browsers, [Browser::Chromium, Browser::Firefox]);
        assert!(config.check.crates.contains(&"anyws".to_string()));
        assert_eq!(config.build.krate, "www");
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
        let bad_browser = "[test]\ncrates=[]\nexamples=[]\nbrowsers=[\"safari\"]\ntimeout-seconds=1\n[check]\ncrates=[]\n\
             [build]\ncrate=\"www\"\ntarget=\"web\"\nout-dir=\"www/pkg\"\nprofile=\"release\"\nwasm-opt=[]\n";
        assert!(WasmConfig::parse(bad_browser)
            .unwrap_err()
            .contains("safari"));
        let unknown_key = bad_browser
            .replace("\"safari\"", "\"firefox\"")
            .replace("[check]", "[check]\nextra=1");
        assert!(WasmConfig::parse(&unknown_key).is_err());
    }
}
