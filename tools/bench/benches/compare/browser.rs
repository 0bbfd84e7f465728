//! The browser scenarios (W1-W3) in headless Chromium over WebDriver, and the W2 sizes.

use anyws_bench::report::Metric;
use anyws_bench::scenario::{Scenario, GLOO, PLAIN_JS};
use anyws_webdriver::{Driver, Session};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

/// The browser contenders, the anchor first.
pub const CONTENDERS: [&str; 3] = [PLAIN_JS, "anyws", GLOO];

/// What the browser part needs.
pub struct Setup<'a> {
    /// The bench server's HTTP address for that directory, `http://127.0.0.1:port`.
    pub http: &'a str,
    /// The bench server's WebSocket address.
    pub ws: &'a str,
    pub chromedriver: &'a Path,
    pub chromium: &'a str,
    pub rounds: usize,
    pub echo_count: usize,
    pub cycles: usize,
}

/// W2: the optimized wasm of each minimal echo client, raw and gzipped (level 9).
pub fn sizes(web: &Path, metrics: &mut Vec<Metric>) {
    let mut gz = Scenario::W2.metric("gzip");
    let mut raw = Scenario::W2.metric("raw");
    for (contender, file) in [("anyws", "size_anyws_bg.wasm"), (GLOO, "size_gloo_bg.wasm")] {
        match std::fs::read(web.join("size").join(file)) {
            Ok(bytes) => {
                raw.push(contender, bytes.len() as f64);
                gz.push(contender, gzip(&bytes) as f64);
            }
            Err(e) => {
                gz.fail(contender, &format!("size/{file}: {e}"));
                raw.fail(contender, &format!("size/{file}: {e}"));
            }
        }
    }
    metrics.push(gz);
    metrics.push(raw);
}

fn gzip(bytes: &[u8]) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory").len()
}

/// W1 and W3: every contender, `rounds` rounds, in one browser session.
pub fn run(setup: &Setup, metrics: &mut Vec<Metric>) -> Result<(), String> {
    let mut w1 = Scenario::W1.metric("rate");
    let mut heap = Scenario::W3.metric("heap");
    let mut wasm = Scenario::W3.metric("wasm");
    let driver = Driver::start(setup.chromedriver)?;
    let browser = driver.chromium(
        setup.chromium,
        &["--js-flags=--expose-gc", "--enable-precise-memory-info"],
    )?;
    let result = (|| {
        browser.goto(&format!("{}/index.html", setup.http))?;
        let ready = browser.execute_async(
            "const done = arguments[0];
             (function wait() { window.benchReady ? done(window.benchReady) : setTimeout(wait, 10); })();",
            &[],
            Duration::from_secs(60),
        )?;
        if ready != Value::Bool(true) {
            return Err(format!("the bench page did not load: {ready}"));
        }
        let url = format!("{}/echo", setup.ws);
        for round in 0..setup.rounds {
            for contender in CONTENDERS {
                let progress = |scenario| {
                    if std::io::stderr().is_terminal() {
                        eprint!(
                            "\r  {scenario} round {}/{} {contender:<12}",
                            round + 1,
                            setup.rounds
                        );
                    }
                };
                progress(Scenario::W1);
                match call(&browser, "echo", contender, &url, setup.echo_count) {
                    Ok(v) => w1.push(contender, v["rate"].as_f64().unwrap_or(f64::NAN)),
                    Err(e) => w1.fail(contender, &e),
                }
                progress(Scenario::W3);
                match call(&browser, "cycles", contender, &url, setup.cycles) {
                    Ok(v) => {
                        heap.push(contender, v["heap"].as_f64().unwrap_or(f64::NAN));
                        if contender != PLAIN_JS {
                            wasm.push(contender, v["wasm"].as_f64().unwrap_or(f64::NAN));
                        }
                    }
                    Err(e) => {
                        heap.fail(contender, &e);
                        wasm.fail(contender, &e);
                    }
                }
            }
        }
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        Ok(())
    })();
    browser.close();
    metrics.extend([w1, heap, wasm]);
    result
}

fn call(
    browser: &Session,
    what: &str,
    contender: &str,
    url: &str,
    n: usize,
) -> Result<Value, String> {
    let v = browser.execute_async(
        "const [what, contender, url, n, done] = arguments;
         window.bench[what](contender, url, n).then(done, (e) => done({ error: String(e) }));",
        &[json!(what), json!(contender), json!(url), json!(n)],
        Duration::from_secs(600),
    )?;
    match v.get("error") {
        Some(e) => Err(e.as_str().unwrap_or("error").to_owned()),
        None => Ok(v),
    }
}
