//! The conformance runner: generated scenarios ([`anyws_conformance`]) run against the test
//! server's scripted peer, by plain JavaScript `WebSocket` and by anyws in the browser, and
//! by anyws natively; their traces must be equal.
//!
//! - In the browser (`cargo test --target wasm32-unknown-unknown --test conformance`): for
//!   each seed, the plain JavaScript client's trace is compared with the golden trace of this
//!   browser (`tests/conformance/<browser>.jsonl`, browser drift), and anyws-wasm's trace with
//!   the live JavaScript one.
//! - Natively (`cargo test -p anyws-tests --test conformance`): anyws native's trace is
//!   compared with the reference made from both golden files
//!   ([`anyws_conformance::expect::reference`]).
//!
//! Every trace is also printed as a `conformance-trace {json}` line, from which `cargo xtask
//! conformance` records golden files and writes its report. Settings (read at run time
//! natively, at compile time in the browser, which has no environment):
//! `ANYWS_CONFORMANCE_SEEDS` (`A..B`, `N` for `0..N`, or `a,b,c`; default
//! [`anyws_conformance::CI_SEEDS`]), `ANYWS_CONFORMANCE_RECORD=1` (browser: no golden
//! comparison, and each JavaScript run is repeated to prove it deterministic), and natively
//! `ANYWS_CONFORMANCE_REFERENCE`, the directory of the golden files to compare with.

use anyws::{
    BinaryType, CloseEvent, ErrorEvent, ErrorKind, Event, Message, MessageEvent, WebSocket,
};
use anyws_conformance::{generate, Action, Record, Scenario, Trace};
use anyws_tests::harness;
use std::sync::{Arc, Mutex};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// How long one client may take before its trace ends with `timeout`.
const CLIENT_TIMEOUT_MS: u32 = 10_000;

/// A setting: natively from the environment at run time, in the browser from the
/// environment at compile time.
fn setting(name: &str) -> Option<String> {
    #[cfg(not(target_arch = "wasm32"))]
    return std::env::var(name).ok().filter(|v| !v.is_empty());
    #[cfg(target_arch = "wasm32")]
    {
        let value = match name {
            "ANYWS_CONFORMANCE_SEEDS" => option_env!("ANYWS_CONFORMANCE_SEEDS"),
            "ANYWS_CONFORMANCE_RECORD" => option_env!("ANYWS_CONFORMANCE_RECORD"),
            "ANYWS_CONFORMANCE_SLOW_MS" => option_env!("ANYWS_CONFORMANCE_SLOW_MS"),
            _ => None,
        };
        value.filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

fn seeds() -> Vec<u64> {
    let Some(spec) = setting("ANYWS_CONFORMANCE_SEEDS") else {
        return anyws_conformance::CI_SEEDS.collect();
    };
    let bad = || panic!("ANYWS_CONFORMANCE_SEEDS={spec:?}: want A..B, N or a,b,c");
    if let Some((a, b)) = spec.split_once("..") {
        let (a, b): (u64, u64) = (
            a.parse().unwrap_or_else(|_| bad()),
            b.parse().unwrap_or_else(|_| bad()),
        );
        (a..b).collect()
    } else if spec.contains(',') {
        spec.split(',')
            .map(|s| s.trim().parse().unwrap_or_else(|_| bad()))
            .collect()
    } else {
        (0..spec.parse().unwrap_or_else(|_| bad())).collect()
    }
}

fn say(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{}", line);
}

/// Notes a run slower than a scenario should be (they are made to take tens of
/// milliseconds), for finding what waits.
fn timed(sc: &Scenario, runtime: &str, started: f64) {
    let ms = now_ms() - started;
    let slow: f64 = setting("ANYWS_CONFORMANCE_SLOW_MS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(500.0);
    if ms > slow {
        say(&format!(
            "conformance-slow seed {} {runtime}: {ms:.0} ms",
            sc.seed
        ));
    }
}

fn record(sc: &Scenario, runtime: &str, trace: &Trace) -> Record {
    let r = Record {
        seed: sc.seed,
        runtime: runtime.to_owned(),
        fingerprint: sc.fingerprint(),
        trace: trace.clone(),
    };
    say(&r.to_line());
    r
}

/// A disagreement, printed at once and counted.
struct Failures {
    lines: Vec<String>,
}

impl Failures {
    fn add(&mut self, sc: &Scenario, what: &str, expected: &Trace, actual: &Trace) {
        let Some(diff) = anyws_conformance::compare(expected, actual) else {
            return;
        };
        let text = format!(
            "conformance-mismatch seed {}: {what}: {}\n{}  diff (- expected, + actual):\n{diff}",
            sc.seed,
            anyws_conformance::signature(expected, actual),
            sc.describe()
        );
        say(&text);
        self.lines.push(format!("seed {}: {what}", sc.seed));
    }

    fn note(&mut self, line: String) {
        say(&format!("conformance-problem {line}"));
        self.lines.push(line);
    }

    fn finish(self, runtime: &str, count: usize, started: f64) {
        let took = (now_ms() - started) / 1000.0;
        say(&format!(
            "conformance {runtime}: {count} scenarios, {} disagreements ({took:.1} s)",
            self.lines.len()
        ));
        assert!(
            self.lines.is_empty(),
            "{} of the conformance checks on {runtime} failed:\n{}",
            self.lines.len(),
            self.lines.join("\n")
        );
    }
}

fn now_ms() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1000.0
    }
    #[cfg(target_arch = "wasm32")]
    js_sys::Date::now()
}

// ----- the anyws client (the same code on both targets) ------------------------------------

fn error_name(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::Syntax => "SyntaxError".into(),
        ErrorKind::InvalidState => "InvalidStateError".into(),
        ErrorKind::InvalidAccess => "InvalidAccessError".into(),
        ErrorKind::Security => "SecurityError".into(),
        other => format!("{other:?}"),
    }
}

/// Keeps the thread busy, as a slow handler does.
fn busy(ms: u32) {
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
    #[cfg(target_arch = "wasm32")]
    {
        let end = js_sys::Date::now() + f64::from(ms);
        while js_sys::Date::now() < end {}
    }
}

fn perform(ws: &WebSocket, log: &Mutex<Vec<String>>, place: &str, actions: &[Action]) {
    for a in actions {
        let result = match a {
            Action::Send { .. } => {
                let (binary, bytes) = a.send_data().expect("a send");
                let msg = if binary {
                    Message::Binary(bytes.into())
                } else {
                    Message::Text(String::from_utf8(bytes).expect("UTF-8").into())
                };
                ws.send(msg)
            }
            Action::Close => {
                ws.close();
                Ok(())
            }
            Action::CloseWith { code, reason } => {
                ws.close_with(*code, reason.as_deref().unwrap_or(""))
            }
            Action::Busy(ms) => {
                busy(*ms);
                Ok(())
            }
        };
        let result = match result {
            Ok(()) => "ok".to_owned(),
            Err(e) => error_name(e.kind()),
        };
        let state = ws.ready_state() as u16;
        log.lock()
            .unwrap()
            .push(format!("{place}: {} -> {result} @{state}", a.describe()));
    }
}

fn summary(data: &Message) -> String {
    match data {
        Message::Text(t) => anyws_conformance::script::summary(false, t.as_bytes()),
        Message::Binary(b) => anyws_conformance::script::summary(true, b),
    }
}

async fn run_anyws(sc: &Scenario) -> Trace {
    let id = harness::unique(&format!("anyws-{}", sc.seed));
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let ws = match WebSocket::new(&harness::url(&sc.path(&id))) {
        Ok(ws) => ws,
        Err(e) => {
            return Trace {
                events: vec![format!("new -> {}", error_name(e.kind()))],
                peer: None,
            }
        }
    };
    if sc.client.arraybuffer {
        ws.set_binary_type(BinaryType::ArrayBuffer);
    }
    let plan = Arc::new(sc.client.clone());
    let weak = ws.downgrade();
    let state = move || weak.upgrade().map(|w| w.ready_state() as u16).unwrap_or(9);
    {
        let (l, s, p, weak) = (log.clone(), state.clone(), plan.clone(), ws.downgrade());
        ws.set_onopen(Some(move |_: &Event| {
            l.lock().unwrap().push(format!("open@{}", s()));
            if let Some(ws) = weak.upgrade() {
                perform(&ws, &l, "open", &p.on_open);
            }
        }));
    }
    if !plan.not_reading {
        let (l, s, p, weak) = (log.clone(), state.clone(), plan.clone(), ws.downgrade());
        let mut count = 0u32;
        ws.set_onmessage(Some(move |e: &MessageEvent| {
            count += 1;
            l.lock()
                .unwrap()
                .push(format!("message@{} {}", s(), summary(&e.data)));
            if let Some(ws) = weak.upgrade() {
                perform(&ws, &l, &format!("message#{count}"), p.on_message(count));
            }
        }));
    }
    {
        let (l, s) = (log.clone(), state.clone());
        ws.set_onerror(Some(move |_: &ErrorEvent| {
            l.lock().unwrap().push(format!("error@{}", s()))
        }));
    }
    {
        let (l, s) = (log.clone(), state);
        ws.set_onclose(Some(move |e: &CloseEvent| {
            l.lock().unwrap().push(format!(
                "close@{} {} {:?} {}",
                s(),
                e.code,
                e.reason,
                e.was_clean
            ))
        }));
    }
    perform(&ws, &log, "create", &plan.on_create);
    let closed = ws.closed();
    if !within(CLIENT_TIMEOUT_MS, closed).await {
        log.lock().unwrap().push("timeout".into());
    }
    drop(ws);
    let t = now_ms();
    let peer = if sc.peer_observable {
        Some(fetch_log(&id).await)
    } else {
        None
    };
    timed(sc, "(log fetch)", t);
    let events = log.lock().unwrap().clone();
    Trace { events, peer }
}

/// Whether `f` finished within `ms`.
async fn within<F: std::future::Future>(ms: u32, f: F) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    return tokio::time::timeout(std::time::Duration::from_millis(u64::from(ms)), f)
        .await
        .is_ok();
    #[cfg(target_arch = "wasm32")]
    {
        use futures::future::{select, Either};
        let sleep = wasm_bindgen_futures::JsFuture::from(js::sleep(ms));
        let f = std::pin::pin!(f);
        matches!(select(f, sleep).await, Either::Left(_))
    }
}

fn log_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The peer's log, fetched with a client that is not under test (tokio-tungstenite natively,
/// plain JavaScript in the browser).
#[cfg(not(target_arch = "wasm32"))]
async fn fetch_log(id: &str) -> Vec<String> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message as M;
    let url = harness::url(&format!("/script-log?id={id}"));
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the test server");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .expect("the log handshake");
    while let Some(Ok(msg)) = ws.next().await {
        if let M::Text(t) = msg {
            return log_lines(&t);
        }
    }
    vec!["(no log)".into()]
}

#[cfg(target_arch = "wasm32")]
async fn fetch_log(id: &str) -> Vec<String> {
    let url = harness::url(&format!("/script-log?id={id}"));
    let text = wasm_bindgen_futures::JsFuture::from(js::fetch_log(&url)).await;
    log_lines(&text.ok().and_then(|t| t.as_string()).unwrap_or_default())
}

// ----- native ---------------------------------------------------------------------------

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use anyws_conformance::expect::{reference, Source};
    use anyws_conformance::Golden;
    use futures::StreamExt;

    fn golden(dir: &std::path::Path, browser: &str) -> Golden {
        let path = dir.join(format!("{browser}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Golden::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anyws_native_matches_the_browsers() {
        let started = now_ms();
        let dir = setting("ANYWS_CONFORMANCE_REFERENCE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
            });
        let (chromium, firefox) = (golden(&dir, "chromium"), golden(&dir, "firefox"));
        let seeds = seeds();
        let count = seeds.len();
        let traces: Vec<(Scenario, Trace)> = futures::stream::iter(seeds)
            .map(|seed| async move {
                let sc = generate(seed);
                let t = now_ms();
                let trace = run_anyws(&sc).await;
                timed(&sc, "native", t);
                (sc, trace)
            })
            .buffered(4)
            .collect()
            .await;
        let mut failures = Failures { lines: Vec::new() };
        let mut known_counts = std::collections::BTreeMap::new();
        for (sc, trace) in traces {
            record(&sc, "native", &trace);
            let fp = sc.fingerprint();
            let (Some(c), Some(f)) = (chromium.traces.get(&sc.seed), firefox.traces.get(&sc.seed))
            else {
                failures.note(format!(
                    "seed {}: no golden trace of both browsers in {} (cargo xtask conformance --record)",
                    sc.seed,
                    dir.display()
                ));
                continue;
            };
            if c.fingerprint != fp || f.fingerprint != fp {
                failures.note(format!(
                    "seed {}: the golden traces are of another scenario (generator changed): record them again",
                    sc.seed
                ));
                continue;
            }
            let reference = reference(&sc, &c.trace, &f.trace);
            // A difference the README's Target differences table names is counted, not failed;
            // where the browsers disagree with no rule, against either of them.
            let candidates: Vec<&Trace> = match &reference {
                Ok((expected, _)) => vec![expected],
                Err(_) => vec![&c.trace, &f.trace],
            };
            let known = candidates.into_iter().find_map(|expected| {
                (expected.lines() != trace.lines())
                    .then(|| {
                        anyws_conformance::expect::native::known_difference(
                            &sc, &f.trace, expected, &trace,
                        )
                    })
                    .flatten()
            });
            if let Some(known) = known {
                *known_counts.entry(known.name).or_insert(0usize) += 1;
                continue;
            }
            match reference {
                Ok((expected, Source::Both)) => {
                    failures.add(&sc, "anyws native vs both browsers", &expected, &trace)
                }
                Ok((expected, Source::Rule { browser, rule })) => failures.add(
                    &sc,
                    &format!("anyws native vs {browser} (browsers disagree; {rule})"),
                    &expected,
                    &trace,
                ),
                Err(why) => failures.note(format!("seed {}: {why}", sc.seed)),
            }
        }
        for (name, n) in &known_counts {
            say(&format!(
                "conformance-known native: {n} seed(s) differ only by a Target differences row: {name}"
            ));
        }
        failures.finish("native", count, started);
    }
}

// ----- the browser ------------------------------------------------------------------------

#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
function fnv(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}
function summary(binary, bytes) {
  return (binary ? 'binary ' : 'text ') + bytes.length + ' ' + fnv(bytes).toString(16).padStart(8, '0');
}
function unhex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
  return out;
}
function busy(ms) { const end = performance.now() + ms; while (performance.now() < end) {} }

export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

export function fetch_log(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    let got = null;
    ws.onmessage = (e) => { got = e.data; };
    ws.onclose = () => resolve(got === null ? '(no log)' : got);
  });
}

// Runs the plain JavaScript client on one scenario; resolves with its trace (an array of lines).
export function run_js(url, planText, timeoutMs) {
  const plan = JSON.parse(planText);
  return new Promise((resolve) => {
    const trace = [];
    const blobs = [];
    let count = 0;
    let finished = false;
    let timer = null;
    let ws = null;
    const finish = async (extra) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (extra) trace.push(extra);
      for (const [i, blob] of blobs) {
        const bytes = new Uint8Array(await blob.arrayBuffer());
        trace[i] = trace[i].replace('\u0000', summary(true, bytes));
      }
      resolve(trace);
    };
    const act = (where, actions) => {
      for (const a of actions || []) {
        let result = 'ok';
        try {
          if (a.k === 'text') ws.send(a.v);
          else if (a.k === 'binary') ws.send(unhex(a.v));
          else if (a.k === 'close') {
            if (a.code === undefined) ws.close();
            else if (a.reason === undefined) ws.close(a.code);
            else ws.close(a.code, a.reason);
          } else if (a.k === 'busy') busy(a.ms);
        } catch (e) {
          result = e.name;
        }
        trace.push(where + ': ' + a.d + ' -> ' + result + ' @' + ws.readyState);
      }
    };
    try {
      ws = new WebSocket(url);
    } catch (e) {
      trace.push('new -> ' + e.name);
      finish();
      return;
    }
    ws.binaryType = plan.binaryType;
    ws.onopen = () => { trace.push('open@' + ws.readyState); act('open', plan.open); };
    if (plan.listen) ws.onmessage = (e) => {
      count += 1;
      const rs = ws.readyState;
      if (typeof e.data === 'string') {
        trace.push('message@' + rs + ' ' + summary(false, new TextEncoder().encode(e.data)));
      } else if (e.data instanceof ArrayBuffer) {
        trace.push('message@' + rs + ' ' + summary(true, new Uint8Array(e.data)));
      } else {
        blobs.push([trace.length, e.data]);
        trace.push('message@' + rs + ' \u0000');
      }
      act('message#' + count, plan.message[String(count)]);
    };
    ws.onerror = () => { trace.push('error@' + ws.readyState); };
    ws.onclose = (e) => {
      trace.push('close@' + ws.readyState + ' ' + e.code + ' ' + JSON.stringify(e.reason) + ' ' + e.wasClean);
      finish();
    };
    act('create', plan.create);
    timer = setTimeout(() => finish('timeout'), timeoutMs);
  });
}
"#)]
    extern "C" {
        pub fn sleep(ms: u32) -> js_sys::Promise;
        pub fn fetch_log(url: &str) -> js_sys::Promise;
        pub fn run_js(url: &str, plan: &str, timeout_ms: u32) -> js_sys::Promise;
    }
}

#[cfg(target_arch = "wasm32")]
async fn run_plain_js(sc: &Scenario) -> Trace {
    let id = harness::unique(&format!("js-{}", sc.seed));
    let url = harness::url(&sc.path(&id));
    let result = wasm_bindgen_futures::JsFuture::from(js::run_js(
        &url,
        &sc.client.to_js(),
        CLIENT_TIMEOUT_MS,
    ))
    .await
    .expect("the JavaScript client resolves");
    let events = js_sys::Array::from(&result)
        .iter()
        .map(|v| v.as_string().unwrap_or_default())
        .collect();
    let t = now_ms();
    let peer = if sc.peer_observable {
        Some(fetch_log(&id).await)
    } else {
        None
    };
    timed(sc, "(log fetch)", t);
    Trace { events, peer }
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn anyws_wasm_and_plain_javascript_match() {
    use anyws_conformance::Golden;
    let started = now_ms();
    let browser = harness::runtime();
    let recording = setting("ANYWS_CONFORMANCE_RECORD").is_some_and(|v| v == "1");
    let golden_text = match browser {
        "chromium" => include_str!("../conformance/chromium.jsonl"),
        "firefox" => include_str!("../conformance/firefox.jsonl"),
        _ => "",
    };
    let golden = Golden::parse(golden_text).expect("the golden file parses");
    let agent = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"userAgent".into()))
        .ok()
        .and_then(|a| a.as_string())
        .unwrap_or_default();
    say(&format!("conformance-agent {browser} {agent}"));
    let seeds = seeds();
    let count = seeds.len();
    let mut failures = Failures { lines: Vec::new() };
    let mut without_golden = 0;
    for seed in seeds {
        let sc = generate(seed);
        let t = now_ms();
        let mut js = run_plain_js(&sc).await;
        timed(&sc, browser, t);
        // A scenario is deterministic by construction and proven so when recorded; should a
        // run still differ from the golden trace once (a race the generator does not know
        // yet), a second run decides: drift is a difference that repeats.
        let golden_trace = golden
            .traces
            .get(&seed)
            .filter(|g| !recording && g.fingerprint == sc.fingerprint());
        if let Some(g) = golden_trace.filter(|g| g.trace != js) {
            let again = run_plain_js(&sc).await;
            if again == g.trace {
                let diff = anyws_conformance::compare(&g.trace, &js).unwrap_or_default();
                say(&format!(
                    "conformance-flaky seed {seed} {browser}: differed from its golden trace once, matched on a second run: {}\n{}  diff (- golden, + first run):\n{diff}",
                    anyws_conformance::signature(&g.trace, &js),
                    sc.describe()
                ));
                js = again;
            }
        }
        record(&sc, browser, &js);
        if recording {
            let again = run_plain_js(&sc).await;
            record(&sc, &format!("{browser}-again"), &again);
            if again != js {
                failures.add(
                    &sc,
                    &format!("{browser} is not deterministic here (second run)"),
                    &js,
                    &again,
                );
            }
        } else {
            match golden.traces.get(&seed) {
                None => without_golden += 1,
                Some(g) if g.fingerprint != sc.fingerprint() => failures.note(format!(
                    "seed {seed}: the golden trace is of another scenario (generator changed): record again"
                )),
                Some(g) => failures.add(&sc, &format!("{browser} vs its golden trace (browser drift)"), &g.trace, &js),
            }
        }
        let t = now_ms();
        let wasm = run_anyws(&sc).await;
        timed(&sc, &format!("{browser}-anyws"), t);
        record(&sc, &format!("{browser}-anyws"), &wasm);
        failures.add(
            &sc,
            &format!("anyws-wasm vs plain JavaScript in {browser}"),
            &js,
            &wasm,
        );
    }
    if without_golden > 0 {
        say(&format!(
            "conformance {browser}: {without_golden} seeds have no golden trace"
        ));
    }
    failures.finish(browser, count, started);
}
