//! `cargo xtask bench [--quick]`: anyws side by side with raw tokio-tungstenite, the Rust
//! peers, and (in headless Chromium) plain JavaScript and gloo-net; and (N7) anyws's servers,
//! the test server and the demo's chat server, beside a raw tokio-tungstenite server.
//!
//! One process tree: this runner starts the bench server (itself, `server`), then runs every
//! (scenario, contender, round) in a child process (itself, `child ...`) so that each gets a
//! fresh heap and its own peak RSS, interleaving the contenders round by round so that machine
//! noise spreads over all of them. It prints a table (median, min, max, ratio to the anchor),
//! checks the goals, draws the SVG chart and, with `--markdown`, updates `BENCHMARKS.md`.

mod browser;
mod native;
mod servers;

use anyws_bench::report::{self, Goal, Metric};
use anyws_bench::scenario::{self, Job, Reply, Scenario};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How much work each scenario does.
struct Scale {
    rounds: usize,
    n1: usize,
    n2: usize,
    n3: usize,
    n4: usize,
    n5: usize,
    n5_seconds: u64,
    n5_rounds: usize,
    n6: usize,
    n6_connections: usize,
    n7: usize,
    n7_rounds: usize,
    w1: usize,
    w3: usize,
    child_limit: Duration,
}

const FULL: Scale = Scale {
    rounds: 5,
    n1: 100_000,
    n2: 1_000_000,
    n3: 1_000_000,
    n4: 64,
    n5: 10_000,
    n5_seconds: 30,
    n5_rounds: 3,
    n6: 100_000,
    n6_connections: 1_000,
    n7: 10_000,
    n7_rounds: 3,
    w1: 100_000,
    w3: 1_000,
    child_limit: Duration::from_secs(600),
};

const QUICK: Scale = Scale {
    rounds: 3,
    n1: 10_000,
    n2: 300_000,
    n3: 300_000,
    n4: 4,
    n5: 1_000,
    n5_seconds: 3,
    n5_rounds: 1,
    n6: 20_000,
    n6_connections: 200,
    n7: 1_000,
    n7_rounds: 1,
    w1: 10_000,
    w3: 100,
    child_limit: Duration::from_secs(120),
};

const USAGE: &str = "\
usage: cargo bench -p anyws-bench --bench compare -- [OPTIONS]
(cargo xtask bench builds the browser contenders and the N7 servers, then runs this)

  --quick             smaller counts (a few minutes); default: the full run (~25 min)
  --rounds N          rounds of each scenario (default 5, --quick 3; N5 and N7 at most 3, --quick 1)
  --only N1,N2,...    only these scenarios (N1-N8, W1-W3)
  --out DIR           where results.json and the chart go (default target/bench)
  --from FILE         no measuring: the report of a results.json again
  --markdown FILE     rewrite the generated part of FILE (BENCHMARKS.md)
  --readme FILE       rewrite the performance summary of FILE (README.md)
  --svg FILE          the chart (default OUT/ratios.svg)
  --command TEXT      the command the report names (default: cargo xtask bench)
  --web DIR           the built browser contenders (W1-W3; with --chromedriver)
  --chromedriver PATH, --chromium PATH   the browser for W1-W3
  --servers DIR       where N7's server binaries are (default: this build's directory)
";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let code = match args.first().map(String::as_str) {
        Some("server") => serve(&args[1..]),
        Some("n7-server") => servers::anchor_server(),
        Some("n6-server") => native::n6::server(),
        Some("child") => child(&args[1..]),
        _ if args.iter().any(|a| a == "--help" || a == "-h") => {
            print!("{USAGE}");
            0
        }
        _ => runner(&args),
    };
    std::process::exit(code);
}

fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `server [--web DIR]`: prints `ws URL` and `http URL`, serves until stdin closes.
fn serve(args: &[String]) -> i32 {
    anyws_bench::memory::raise_fd_limit();
    let web = value_of(args, "--web").map(PathBuf::from);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let ws = anyws_bench::server::listen().expect("a WebSocket listener");
        let http = anyws_bench::server::listen().expect("an HTTP listener");
        println!("ws ws://{}", ws.local_addr().expect("bound"));
        println!("http http://{}", http.local_addr().expect("bound"));
        tokio::spawn(anyws_bench::server::serve_websockets(ws));
        tokio::spawn(anyws_bench::server::serve_http(http, web));
        // The runner holds our stdin: when it ends (even by a crash), so do we.
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    });
    0
}

/// `child JOB`: runs one measurement ([`Job`], as JSON), prints its [`Reply`] as JSON.
fn child(args: &[String]) -> i32 {
    let [job] = args else {
        eprintln!("usage: child JOB (JSON)");
        return 2;
    };
    let reply: Reply = serde_json::from_str::<Job>(job)
        .map_err(|e| format!("not a job: {e}"))
        .and_then(|job| match job.scenario {
            Scenario::N7 => servers::run(&job.contender, Path::new(&job.target), job.count),
            _ => native::run(&job),
        });
    println!("{}", serde_json::to_string(&reply).unwrap_or_default());
    i32::from(reply.is_err())
}

/// The bench server (`compare server`), killed when dropped.
struct Server {
    _child: anyws_child::Child,
    ws: String,
    http: String,
}

impl Server {
    fn start(web: Option<&Path>) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(exe);
        command.arg("server").stdin(Stdio::piped());
        if let Some(web) = web {
            command.arg("--web").arg(web);
        }
        // It prints "ws ADDR" then "http ADDR".
        let child = anyws_child::Child::spawn_announcing(&mut command, 2, Duration::from_secs(60))
            .map_err(|e| format!("the bench server: {e}"))?;
        let line = |i: usize, prefix: &str| -> Result<String, String> {
            let line = &child.lines()[i];
            line.strip_prefix(prefix)
                .map(str::to_owned)
                .ok_or_else(|| format!("unexpected line from the bench server: {line}"))
        };
        let ws = line(0, "ws ")?;
        let http = line(1, "http ")?;
        Ok(Server {
            _child: child,
            ws,
            http,
        })
    }
}

impl Server {
    /// Waits (up to a minute) until the server has no WebSocket connection left, so that
    /// one measurement's teardown does not run into the next.
    fn wait_idle(&self) {
        let addr = self.http.trim_start_matches("http://").to_owned();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if live(&addr) == Some(0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET /live` from the bench server.
fn live(addr: &str) -> Option<usize> {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(addr).ok()?;
    tcp.write_all(b"GET /live HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).ok()?;
    response.split("\r\n\r\n").nth(1)?.trim().parse().ok()
}

/// Runs one child measurement; kills it after `limit`.
fn measure(job: &Job, limit: Duration) -> Reply {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let job = serde_json::to_string(job).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("child")
        .arg(job)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // One reader per pipe: a child that fills one of them while the other is being read
    // to its end would block until the limit.
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.to_string());
            }
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    serde_json::from_str::<Reply>(out.trim()).map_err(|_| {
        let err = err.trim();
        format!(
            "exited with {status}: {}",
            err.lines().last().unwrap_or("no output")
        )
    })?
}

fn goals() -> Vec<Goal> {
    let ratio = |metric: &str, bound| Goal::Ratio {
        metric: metric.into(),
        contender: "anyws".into(),
        bound,
    };
    let beats = |metric: &str, others: &[&str], or_equal| Goal::Beats {
        metric: metric.into(),
        contender: "anyws".into(),
        others: others.iter().map(|s| s.to_string()).collect(),
        or_equal,
    };
    let at_most = |metric: &str, value| Goal::AtMost {
        metric: metric.into(),
        contender: "anyws".into(),
        value,
    };
    // The goals of the benchmark issue (#12): N1-N4 at least raw tokio-tungstenite's and
    // ahead of the peers that, like anyws, run on tungstenite (`native::PEERS`); the peers
    // with codecs of their own (tokio-websockets, yawc) are reported beside them, not goals.
    let mut goals = vec![
        ratio("N1 round trip p50", 1.0),
        ratio("N2 receive throughput", 1.0),
        ratio("N3 send throughput", 1.0),
        ratio("N4 16 MiB echo", 1.0),
    ];
    // Also kept from the earlier issues: ahead of the same peers on the tail, on memory and on
    // opening.
    for metric in [
        "N1 round trip p50",
        "N1 round trip p99",
        "N2 receive throughput",
        "N3 send throughput",
        "N4 16 MiB echo",
        "N4 peak RSS / payload",
        "N5 RSS per connection",
        "N5 time to open all",
    ] {
        goals.push(beats(metric, &native::PEERS, false));
    }
    // N5: lean idle connections by default, opened about as fast as raw, nothing lost.
    goals.extend([
        at_most("N5 RSS per connection", 32.0),
        ratio("N5 time to open all", 1.05),
        at_most("N5 messages lost", 0.0),
    ]);
    // N6: compressing costs no more wire than zlib itself at the same settings, and
    // anyws's throughput with compression is yawc's or better.
    goals.push(at_most("N6 wire bytes / zlib's", 1.05));
    goals.push(beats("N6 1 KiB JSON echo", &["yawc"], true));
    for server in &servers::SERVERS[1..] {
        goals.push(Goal::AtMost {
            metric: "N7 messages lost".into(),
            contender: server.to_string(),
            value: 0.0,
        });
        goals.push(Goal::AtMost {
            metric: "N7 failed connections".into(),
            contender: server.to_string(),
            value: 0.0,
        });
    }
    goals.extend([
        ratio("W1 echo throughput", 1.0),
        beats("W1 echo throughput", &["gloo-net"], true),
        beats("W2 wasm size (gzip)", &["gloo-net"], true),
        // Flat: no more than one 64 KiB wasm page.
        at_most("W3 wasm memory growth", 64.0),
    ]);
    goals
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let mem_gib = mem
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .map(|k| format!("{:.0} GiB", k / 1024.0 / 1024.0))
        .unwrap_or(mem);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let output = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{cpu}, {cores} cores, {mem_gib}, Linux {kernel}; {}; {}",
        output("rustc", "-V"),
        output("chromium", "--version")
    )
}

/// Runs every wanted scenario against a fresh bench server; returns the metrics and notes.
fn measure_all(
    args: &[String],
    scale: &Scale,
    rounds: usize,
    wanted: &dyn Fn(Scenario) -> bool,
) -> Result<(Vec<Metric>, Vec<String>), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let web = value_of(args, "--web").map(PathBuf::from);
    let server = Server::start(web.as_deref())?;
    eprintln!(
        "bench: {} run, server at {} (one process for every contender)",
        if quick { "quick" } else { "full" },
        server.ws
    );
    let mut metrics: Vec<Metric> = Scenario::NATIVE
        .into_iter()
        .flat_map(Scenario::metrics)
        .collect();
    for scenario in Scenario::NATIVE.into_iter().filter(|&s| wanted(s)) {
        // N7's contenders are servers of their own, found in the build directory.
        // N6 talks to a server of its own (anyws's, with permessage-deflate), for the
        // whole scenario.
        let n6_server = match scenario {
            Scenario::N6 => Some(n6_server()?),
            _ => None,
        };
        let (contenders, kind, target): (&[&str], _, _) = match (scenario, &n6_server) {
            (Scenario::N7, _) => (
                &servers::SERVERS,
                "servers",
                servers_dir(args)?.display().to_string(),
            ),
            (Scenario::N6, Some((_, target))) => {
                (&native::N6_CONTENDERS, "contenders", target.clone())
            }
            _ => (&native::CONTENDERS, "contenders", server.ws.clone()),
        };
        let (count, seconds, scenario_rounds) = match scenario {
            Scenario::N1 => (scale.n1, 0, rounds),
            Scenario::N2 => (scale.n2, 0, rounds),
            Scenario::N3 => (scale.n3, 0, rounds),
            Scenario::N4 => (scale.n4, 0, rounds),
            Scenario::N5 => (scale.n5, scale.n5_seconds, scale.n5_rounds.min(rounds)),
            Scenario::N6 => (scale.n6, 0, rounds),
            // Each part takes its own count (below).
            Scenario::N8 => (0, 0, rounds),
            _ => (scale.n7, 0, scale.n7_rounds.min(rounds)),
        };
        let scenario_start = Instant::now();
        for round in 0..scenario_rounds {
            for &contender in contenders {
                if std::io::stderr().is_terminal() {
                    eprint!(
                        "\r  {scenario} round {}/{scenario_rounds} {contender:<24}",
                        round + 1
                    );
                }
                let job = Job {
                    scenario,
                    contender: contender.to_owned(),
                    target: target.clone(),
                    count,
                    seconds,
                    part: 0,
                };
                // N6 and N8 measure in parts, each in a child of its own: N6's three (see
                // native/n6.rs), N8's N1, N2 and N3 again on the multi-thread runtime (see
                // native.rs).
                let parts: &[(u8, usize, &[&str])] = match scenario {
                    Scenario::N6 => &[
                        (0, scale.n6, &["rate", "cpu", "server_cpu", "wire", "zlib"]),
                        (1, scale.n6_connections, &["rss_idle"]),
                        (2, scale.n6_connections, &["rss_takeover"]),
                    ],
                    Scenario::N8 => &[
                        (native::N8_ROUND_TRIP, scale.n1, &["p50"]),
                        (native::N8_RECEIVE, scale.n2, &["recv"]),
                        (native::N8_SEND, scale.n3, &["send"]),
                    ],
                    _ => &[],
                };
                if !parts.is_empty() {
                    for &(part, count, keys) in parts {
                        let job = Job {
                            part,
                            count,
                            ..job.clone()
                        };
                        let reply = measure(&job, scale.child_limit);
                        // N6's server is its own.
                        if scenario == Scenario::N8 {
                            server.wait_idle();
                        }
                        scenario::record_keys(&mut metrics, scenario, contender, &reply, keys);
                    }
                    continue;
                }
                let reply = measure(&job, scale.child_limit);
                if scenario != Scenario::N7 {
                    server.wait_idle();
                }
                scenario::record(&mut metrics, scenario, contender, &reply);
            }
        }
        eprintln!(
            "\r  {scenario}: {scenario_rounds} rounds of {} {kind} in {:.0} s{:30}",
            contenders.len(),
            scenario_start.elapsed().as_secs_f64(),
            ""
        );
    }
    metrics.retain(|m| wanted(m.scenario));

    let mut notes = Vec::new();
    match (&web, value_of(args, "--chromedriver")) {
        (Some(web), Some(chromedriver)) if Scenario::BROWSER.into_iter().any(wanted) => {
            let mut browser_metrics = Vec::new();
            browser::sizes(web, &mut browser_metrics);
            let setup = browser::Setup {
                http: &server.http,
                ws: &server.ws,
                chromedriver: Path::new(chromedriver),
                chromium: value_of(args, "--chromium").unwrap_or("/usr/bin/chromium"),
                rounds,
                echo_count: scale.w1,
                cycles: scale.w3,
            };
            let start = Instant::now();
            if let Err(e) = browser::run(&setup, &mut browser_metrics) {
                notes.push(format!("browser scenarios: {e}"));
            }
            eprintln!("  W1-W3 in {:.0} s", start.elapsed().as_secs_f64());
            browser_metrics.retain(|m| wanted(m.scenario));
            metrics.extend(browser_metrics);
        }
        (None, _) | (_, None) => notes.push(
            "browser scenarios skipped: pass --web DIR and --chromedriver PATH (cargo xtask bench does)".into(),
        ),
        _ => {}
    }
    drop(server);
    Ok((metrics, notes))
}

/// Starts N6's server (`compare n6-server`); returns it (killed when dropped) and the
/// jobs' target: "DEFAULT_URL TAKEOVER_URL STATS_ADDR".
fn n6_server() -> Result<(anyws_child::Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.arg("n6-server").stdin(Stdio::piped());
    let child = anyws_child::Child::spawn_announcing(&mut command, 3, Duration::from_secs(60))
        .map_err(|e| format!("the N6 server: {e}"))?;
    let mut target = Vec::new();
    for (line, prefix) in child
        .lines()
        .iter()
        .zip(["default ", "takeover ", "stats "])
    {
        target.push(
            line.strip_prefix(prefix)
                .ok_or_else(|| format!("unexpected line from the N6 server: {line}"))?
                .to_owned(),
        );
    }
    Ok((child, target.join(" ")))
}

/// Where N7 finds its servers (`anyws-testserver`, `anyws-chat-server`,
/// `examples/echo_server`): `--servers DIR`, or the directory `cargo bench` builds into (this
/// executable is in its `deps/`), where `cargo xtask bench` builds them (`cargo build
/// --release`).
fn servers_dir(args: &[String]) -> Result<PathBuf, String> {
    if let Some(dir) = value_of(args, "--servers") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no build directory above {}", exe.display()))
}

fn runner(args: &[String]) -> i32 {
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { QUICK } else { FULL };
    let rounds = value_of(args, "--rounds")
        .and_then(|r| r.parse().ok())
        .unwrap_or(scale.rounds);
    let only = value_of(args, "--only")
        .map(|s| {
            s.split(',')
                .map(str::parse)
                .collect::<Result<Vec<Scenario>, _>>()
        })
        .transpose();
    let only = match only {
        Ok(only) => only,
        Err(e) => {
            eprintln!("bench: --only: {e}");
            return 1;
        }
    };
    let wanted = |s: Scenario| only.as_ref().is_none_or(|o| o.contains(&s));
    let out = value_of(args, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    let command = value_of(args, "--command").unwrap_or("cargo xtask bench");
    anyws_bench::memory::raise_fd_limit();

    let started = Instant::now();
    // --from results.json: draw the table, chart and BENCHMARKS.md again without measuring.
    let measured = match value_of(args, "--from") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("{path}: {e}")))
            .map(|metrics| (metrics, Vec::new())),
        None => measure_all(args, &scale, rounds, &wanted),
    };
    let (metrics, notes) = match measured {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench: {e}");
            return 1;
        }
    };

    let verdicts: Vec<_> = goals()
        .iter()
        .map(|g| g.check(&metrics))
        .filter(|v| v.detail != "not measured")
        .collect();
    print!("{}", report::table(&metrics));
    println!("\nGoals (anyws):");
    print!("{}", report::verdict_lines(&verdicts));
    for note in &notes {
        println!("note: {note}");
    }

    let _ = std::fs::create_dir_all(&out);
    let json = serde_json::to_string_pretty(&metrics).unwrap_or_default();
    let _ = std::fs::write(out.join("results.json"), json);
    let svg = value_of(args, "--svg")
        .map(PathBuf::from)
        .unwrap_or_else(|| out.join("ratios.svg"));
    if let Err(e) = report::chart(&metrics, &svg) {
        eprintln!("bench: chart: {e}");
    }
    if let Some(md) = value_of(args, "--markdown") {
        let machine = machine();
        let link = Path::new(md)
            .parent()
            .and_then(|dir| svg.strip_prefix(dir).ok())
            .unwrap_or(&svg)
            .display()
            .to_string();
        let mut generated = report::markdown(&metrics, &verdicts, &machine, command, &link);
        let _ = std::fs::write(out.join("machine.txt"), &machine);
        for note in &notes {
            generated.push_str(&format!("Note: {note}\n\n"));
        }
        let document = std::fs::read_to_string(md).unwrap_or_else(|_| "# Benchmarks\n".into());
        if let Err(e) = std::fs::write(md, report::splice(&document, &generated)) {
            eprintln!("bench: {md}: {e}");
            return 1;
        }
    }
    if let Some(readme) = value_of(args, "--readme") {
        let goals = goals();
        let keys: Vec<&str> = goals.iter().map(Goal::metric).collect();
        let summary = report::summary(&metrics, &verdicts, &keys, command);
        let written = std::fs::read_to_string(readme).and_then(|document| {
            std::fs::write(
                readme,
                report::splice_between(&document, &summary, "bench-summary"),
            )
        });
        if let Err(e) = written {
            eprintln!("bench: {readme}: {e}");
            return 1;
        }
    }
    eprintln!(
        "bench: done in {:.0} s; results in {}, chart in {}",
        started.elapsed().as_secs_f64(),
        out.join("results.json").display(),
        svg.display()
    );
    0
}
