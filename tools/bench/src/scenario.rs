//! The scenarios, what each measures, and what the runner and its child processes exchange.
//!
//! The runner (`benches/compare`) runs every native measurement in a child process of its
//! own: it passes a [`Job`] as JSON on the command line and reads a [`Reply`] as JSON from
//! the child's stdout. Both carry the [`Scenario`] as a typed value; in JSON (and in
//! `results.json`) it is its name, `"N1"`.

use crate::report::{Better, Metric};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A benchmark scenario (see `BENCHMARKS.md` for what each one does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scenario {
    /// 64-byte text round trips: p50 and p99.
    N1,
    /// Receive throughput: the server pushes 64-byte messages.
    N2,
    /// Send throughput with backpressure.
    N3,
    /// 16 MiB binary echo: throughput and peak memory.
    N4,
    /// Many connections at once: memory per connection, time to open, losses.
    N5,
    /// permessage-deflate: 1 KiB JSON-like echo, compressed both ways: throughput, CPU,
    /// wire bytes against zlib's; RSS per idle connection with compression agreed.
    N6,
    /// Servers holding many connections: the server's memory per connection.
    N7,
    /// N1-N3 on tokio's multi-thread runtime (what `#[tokio::main]` gives), where a
    /// connection's own task runs on a worker thread beside the caller's.
    N8,
    /// Browser echo throughput.
    W1,
    /// Browser bundle size of a minimal echo client.
    W2,
    /// Browser memory over connect/close cycles.
    W3,
}

/// One measured quantity of a scenario: how a reply names it, and how the report shows it.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The key in a [`Reply`]'s values, e.g. `p50`.
    pub key: &'static str,
    /// The metric's name in the report, e.g. `round trip p50`.
    pub name: &'static str,
    /// The unit, e.g. `µs`.
    pub unit: &'static str,
    /// Which direction is better.
    pub better: Better,
    /// The contender the ratios are taken against.
    pub anchor: &'static str,
    /// Whether the chart shows it.
    pub chart: bool,
}

/// The anchor of the native scenarios.
pub const RAW: &str = "tokio-tungstenite";
/// The anchor of N6: anyws with compression off.
pub const PLAIN: &str = "anyws-plain";
/// The anchor of W1 and of W3's JS heap.
pub const PLAIN_JS: &str = "plain JS";
/// The anchor of W2 and of W3's wasm memory.
pub const GLOO: &str = "gloo-net";

impl Scenario {
    /// The scenarios measured in child processes (N7 with servers as contenders).
    pub const NATIVE: [Scenario; 8] = [
        Scenario::N1,
        Scenario::N2,
        Scenario::N3,
        Scenario::N4,
        Scenario::N5,
        Scenario::N6,
        Scenario::N7,
        Scenario::N8,
    ];

    /// The scenarios measured in the browser.
    pub const BROWSER: [Scenario; 3] = [Scenario::W1, Scenario::W2, Scenario::W3];

    /// What it measures, in report order: one line a quantity (key, name, unit, direction,
    /// anchor, charted).
    #[rustfmt::skip]
    pub fn specs(self) -> &'static [Spec] {
        use Better::{Higher, Lower};
        const fn spec(key: &'static str, name: &'static str, unit: &'static str,
                      better: Better, anchor: &'static str, chart: bool) -> Spec {
            Spec { key, name, unit, better, anchor, chart }
        }
        /// N5 and N7: many connections; `rss` names whose memory is measured.
        const fn connections(rss: &'static str) -> [Spec; 4] {
            [
                spec("rss_per_conn", rss, "KiB", Lower, RAW, true),
                spec("open_all", "time to open all", "ms", Lower, RAW, true),
                spec("lost", "messages lost", "messages", Lower, RAW, false),
                spec("failed_connections", "failed connections", "connections", Lower, RAW, false),
            ]
        }
        match self {
            Scenario::N1 => const { &[
                spec("p50", "round trip p50", "µs", Lower, RAW, true),
                spec("p99", "round trip p99", "µs", Lower, RAW, true),
            ] },
            Scenario::N2 => const { &[spec("rate", "receive throughput", "msg/s", Higher, RAW, true)] },
            Scenario::N3 => const { &[spec("rate", "send throughput", "msg/s", Higher, RAW, true)] },
            Scenario::N4 => const { &[
                spec("rate", "16 MiB echo", "MiB/s", Higher, RAW, true),
                spec("peak", "peak RSS / payload", "x", Lower, RAW, true),
            ] },
            Scenario::N5 => const { &connections("RSS per connection") },
            Scenario::N6 => const { &[
                spec("rate", "1 KiB JSON echo", "msg/s", Higher, PLAIN, false),
                spec("cpu", "client CPU per message", "µs", Lower, PLAIN, false),
                spec("server_cpu", "server CPU per message", "µs", Lower, PLAIN, false),
                spec("wire", "wire bytes per message", "bytes", Lower, PLAIN, false),
                spec("zlib", "wire bytes / zlib's", "x", Lower, PLAIN, false),
                spec("rss_idle", "RSS per idle connection", "KiB", Lower, PLAIN, false),
                spec("rss_takeover", "RSS per idle connection, context takeover both ways", "KiB", Lower, PLAIN, false),
            ] },
            Scenario::N7 => const { &connections("server RSS per connection") },
            Scenario::N8 => const { &[
                spec("p50", "multi-thread round trip p50", "µs", Lower, RAW, true),
                spec("recv", "multi-thread receive throughput", "msg/s", Higher, RAW, true),
                spec("send", "multi-thread send throughput", "msg/s", Higher, RAW, true),
            ] },
            Scenario::W1 => const { &[spec("rate", "echo throughput", "msg/s", Higher, PLAIN_JS, true)] },
            Scenario::W2 => const { &[
                spec("gzip", "wasm size (gzip)", "bytes", Lower, GLOO, true),
                spec("raw", "wasm size (-Oz)", "bytes", Lower, GLOO, false),
            ] },
            Scenario::W3 => const { &[
                spec("heap", "JS heap growth", "KiB", Lower, PLAIN_JS, false),
                spec("wasm", "wasm memory growth", "KiB", Lower, GLOO, false),
            ] },
        }
    }

    /// An empty metric for each of its [`specs`](Scenario::specs), in the same order.
    pub fn metrics(self) -> Vec<Metric> {
        self.specs().iter().map(|s| self.metric_of(s)).collect()
    }

    /// An empty metric for the spec with `key`.
    ///
    /// # Panics
    /// If the scenario has no such key (a mistake in the harness, caught by its tests).
    pub fn metric(self, key: &str) -> Metric {
        let spec = self
            .specs()
            .iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("{self} measures no {key}"));
        self.metric_of(spec)
    }

    fn metric_of(self, s: &Spec) -> Metric {
        let m = Metric::new(self, s.name, s.unit, s.better, s.anchor);
        if s.chart {
            m
        } else {
            m.no_chart()
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The variant's name, as in JSON: `N1`.
        fmt::Debug::fmt(self, f)
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Scenario, String> {
        Scenario::NATIVE
            .into_iter()
            .chain(Scenario::BROWSER)
            .find(|c| c.to_string() == s)
            .ok_or_else(|| format!("unknown scenario {s}"))
    }
}

/// What the runner asks a child process to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The scenario.
    pub scenario: Scenario,
    /// The contender (a client library, or for N7 a server).
    pub contender: String,
    /// The bench server's URL; for N7, the directory of the server binaries.
    pub target: String,
    /// Messages, round trips, connections: what the scenario counts.
    pub count: usize,
    /// N5: seconds of echoing.
    pub seconds: u64,
    /// N6 and N8: which part a child measures (see `benches/compare/native/n6.rs` and
    /// `benches/compare/native.rs`).
    #[serde(default)]
    pub part: u8,
}

/// A measurement's values by [`Spec::key`].
pub type Values = BTreeMap<String, f64>;

/// What a child process prints: its values, or why it has none.
pub type Reply = Result<Values, String>;

/// Builds [`Values`] from `(key, value)` pairs.
pub fn values<const N: usize>(pairs: [(&str, f64); N]) -> Values {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Records `contender`'s reply in every metric of `scenario` (its specs in order, as
/// [`Scenario::metrics`] made them): the value, `no value`, or the reply's error.
pub fn record(metrics: &mut [Metric], scenario: Scenario, contender: &str, reply: &Reply) {
    let keys: Vec<&str> = scenario.specs().iter().map(|s| s.key).collect();
    record_keys(metrics, scenario, contender, reply, &keys);
}

/// [`record`] for a reply that measures only the specs with these `keys`: the other metrics
/// of the scenario are left alone.
pub fn record_keys(
    metrics: &mut [Metric],
    scenario: Scenario,
    contender: &str,
    reply: &Reply,
    keys: &[&str],
) {
    let names: Vec<&str> = scenario
        .specs()
        .iter()
        .filter(|s| keys.contains(&s.key))
        .map(|s| s.name)
        .collect();
    let specs = scenario.specs();
    for metric in metrics
        .iter_mut()
        .filter(|m| m.scenario == scenario && names.contains(&m.name.as_str()))
    {
        let Some(spec) = specs.iter().find(|s| s.name == metric.name) else {
            continue;
        };
        match reply {
            Ok(values) => match values.get(spec.key) {
                Some(&x) => metric.push(contender, x),
                None => metric.fail(contender, "no value"),
            },
            Err(e) => metric.fail(contender, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::NATIVE.into_iter().chain(Scenario::BROWSER) {
            assert_eq!(s.to_string().parse::<Scenario>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
            assert!(!s.specs().is_empty());
            for spec in s.specs() {
                assert_eq!(s.metric(spec.key).name, spec.name);
            }
        }
        assert!("N9".parse::<Scenario>().is_err());
    }

    #[test]
    fn job_and_reply_round_trip_through_json() {
        for scenario in Scenario::NATIVE {
            let job = Job {
                scenario,
                contender: "anyws".into(),
                target: "ws://127.0.0.1:1".into(),
                count: 10,
                seconds: 3,
                part: 1,
            };
            let text = serde_json::to_string(&job).unwrap();
            assert!(
                text.contains(&format!("\"scenario\":\"{scenario}\"")),
                "{text}"
            );
            assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
        }
        let bad = r#"{"scenario":"N9","contender":"a","target":"b","count":1,"seconds":0}"#;
        assert!(serde_json::from_str::<Job>(bad).is_err());
        for reply in [Ok(values([("p50", 1.5), ("p99", 2.0)])), Err("boom".into())] {
            let text = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
        }
    }

    #[test]
    fn replies_are_recorded_by_key() {
        let mut metrics = Scenario::N1.metrics();
        metrics.extend(Scenario::N2.metrics());
        record(&mut metrics, Scenario::N1, "a", &Ok(values([("p50", 1.0)])));
        record(&mut metrics, Scenario::N1, "b", &Err("failed".into()));
        assert_eq!(metrics[0].samples, vec![("a".to_string(), vec![1.0])]);
        assert_eq!(metrics[1].missing["a"], "no value");
        assert_eq!(metrics[1].missing["b"], "failed");
        assert!(metrics[2].samples.is_empty() && metrics[2].missing.is_empty());
    }
}
