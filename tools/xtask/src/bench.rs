//! `cargo xtask bench [--quick]`: builds the browser contenders for wasm32 (release, then
//! wasm-bindgen and the `wasm-opt` passes of `wasm-pack.toml` `[build]`) and the servers N7
//! measures (`anyws-testserver`, `anyws-chat-server`, anyws's `echo_server` example, release), then runs the bench crate's
//! harness (`tools/bench/benches/compare`), which measures every contender against
//! one server and prints the table. The full run also rewrites the generated part of
//! `BENCHMARKS.md`, its chart (`tools/bench/ratios.svg`) and the README's performance
//! summary.

use crate::config::WasmConfig;
use crate::run::run_quiet;
use crate::setup::Tools;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The wasm32 examples of the bench crate: W1/W3 (`web_echo`) and the W2 size pair.
const EXAMPLES: [&str; 3] = ["web_echo", "size_anyws", "size_gloo"];

pub fn run(root: &Path, config: &WasmConfig, tools: &Tools, quick: bool) -> Result<(), String> {
    let start = Instant::now();
    let mut build = crate::cargo(root, tools.wasm_toolchain.as_deref());
    build.args([
        "build",
        "-p",
        "anyws-bench",
        "--release",
        "--target",
        crate::WASM,
    ]);
    for example in EXAMPLES {
        build.args(["--example", example]);
    }
    println!("bench: building the browser contenders (wasm32, release)");
    run_quiet(&mut build)?;

    let web = root.join("target/bench/web");
    let _ = std::fs::remove_dir_all(&web);
    std::fs::create_dir_all(&web).map_err(|e| e.to_string())?;
    std::fs::copy(
        root.join("tools/bench/web/index.html"),
        web.join("index.html"),
    )
    .map_err(|e| format!("tools/bench/web/index.html: {e}"))?;
    let built = root
        .join("target")
        .join(crate::WASM)
        .join("release/examples");
    for example in EXAMPLES {
        let out = web.join(if example == "web_echo" { "pkg" } else { "size" });
        run_quiet(
            Command::new("wasm-bindgen")
                .env("PATH", crate::tool_path())
                .args(["--target", "web", "--out-dir"])
                .arg(&out)
                .arg(built.join(format!("{example}.wasm"))),
        )?;
        let wasm = out.join(format!("{example}_bg.wasm"));
        if !config.build.wasm_opt.is_empty() {
            run_quiet(
                Command::new(&tools.wasm_opt)
                    .args(&config.build.wasm_opt)
                    .arg(&wasm)
                    .arg("-o")
                    .arg(&wasm),
            )?;
        }
    }
    println!(
        "bench: browser contenders ready in {} (wasm-opt {:?}, {:.0} s)",
        web.display(),
        config.build.wasm_opt,
        start.elapsed().as_secs_f32()
    );

    // N7's servers, where the harness looks for them (the release directory `cargo bench`
    // builds into).
    println!("bench: building the N7 servers (release)");
    run_quiet(crate::cargo(root, None).args([
        "build",
        "--release",
        "-p",
        "anyws-testserver",
        "-p",
        "anyws-chat-server",
    ]))?;
    run_quiet(crate::cargo(root, None).args([
        "build",
        "--release",
        "-p",
        "anyws",
        "--example",
        "echo_server",
    ]))?;

    let command = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let mut bench = crate::cargo(root, None);
    bench
        .args(["bench", "-p", "anyws-bench", "--bench", "compare", "--"])
        .arg("--web")
        .arg(&web)
        .arg("--chromedriver")
        .arg(&tools.chromedriver)
        .arg("--out")
        .arg(root.join("target/bench"))
        .args(["--command", command]);
    if quick {
        bench.arg("--quick");
    } else {
        bench
            .arg("--markdown")
            .arg(root.join("BENCHMARKS.md"))
            .arg("--readme")
            .arg(root.join("README.md"))
            .arg("--svg")
            .arg(root.join("tools/bench/ratios.svg"));
    }
    // The harness prints its progress and the table itself.
    let status = bench.status().map_err(|e| format!("cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("the benchmark harness failed ({status})"));
    }
    Ok(())
}
