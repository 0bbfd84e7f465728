//! Traces, their golden files, and how two traces are compared.
//!
//! A trace is what one client did and saw in one scenario, one line per happening:
//!
//! - `open@1`, `message@1 text 5 1a2b3c4d`, `error@3`, `close@3 1000 "bye" true`: an event,
//!   with the `readyState` read inside the handler; a message as its kind, byte length and
//!   FNV-1a hash; a close event as its code, reason and `wasClean`;
//! - `open: send text 5 -> ok @1`, `message#2: close(4000, "bye") -> ok @2`,
//!   `open: close(1001) -> InvalidAccessError @1`: a client action where it ran, what it
//!   threw (the DOMException name) and the `readyState` after it;
//! - `timeout`: no close event within the runner's limit;
//!
//! and, separately, the peer's log: what the scripted peer received (`text 5 1a2b3c4d`,
//! `binary 0 811c9dc5`, `close 1000 "bye"`, `close (no code)`, `ping ...`, then `pongs: ...`
//! and `timeout waiting for ...` when a wait ran out).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one run recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub events: Vec<String>,
    /// What the peer received; `None` when the scenario's peer log is not compared.
    pub peer: Option<Vec<String>>,
}

impl Trace {
    /// The lines as compared and shown: the events, then the peer's lines prefixed `peer: `.
    pub fn lines(&self) -> Vec<String> {
        let mut out = self.events.clone();
        if let Some(peer) = &self.peer {
            out.extend(peer.iter().map(|l| format!("peer: {l}")));
        }
        out
    }
}

/// One trace of one seed on one runtime, as a line of a `.jsonl` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seed: u64,
    /// `chromium`, `firefox` (plain JavaScript), `chromium-anyws`, `firefox-anyws` (anyws
    /// compiled to wasm32), or `native` (anyws native).
    pub runtime: String,
    /// [`crate::Scenario::fingerprint`] of the scenario the trace is of.
    pub fingerprint: String,
    #[serde(flatten)]
    pub trace: Trace,
}

impl Record {
    /// The line printed by the runners (`conformance-trace {json}`) and read by the xtask.
    pub fn to_line(&self) -> String {
        format!(
            "{TRACE_PREFIX}{}",
            serde_json::to_string(self).expect("serializable")
        )
    }

    /// Reads the records among the lines of a test run's output.
    pub fn from_output(output: &str) -> Vec<Record> {
        output
            .lines()
            .filter_map(|l| l.split_once(TRACE_PREFIX).map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str(json.trim()).ok())
            .collect()
    }
}

/// Marks trace lines in a test run's output.
pub const TRACE_PREFIX: &str = "conformance-trace ";

/// A golden file: the traces one browser recorded with plain JavaScript.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Golden {
    /// The browser's `navigator.userAgent` when recorded.
    pub agent: String,
    pub generator: u32,
    pub traces: BTreeMap<u64, Record>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    golden: String,
    agent: String,
    generator: u32,
}

impl Golden {
    /// The `.jsonl` text: a header line, then one record per seed, in seed order.
    pub fn to_jsonl(&self, browser: &str) -> String {
        let header = Header {
            golden: browser.to_owned(),
            agent: self.agent.clone(),
            generator: self.generator,
        };
        let mut out = serde_json::to_string(&header).expect("serializable");
        out.push('\n');
        for r in self.traces.values() {
            out.push_str(&serde_json::to_string(r).expect("serializable"));
            out.push('\n');
        }
        out
    }

    pub fn parse(text: &str) -> Result<Golden, String> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(first) = lines.next() else {
            return Ok(Golden::default());
        };
        let header: Header =
            serde_json::from_str(first).map_err(|e| format!("golden header: {e}"))?;
        let mut traces = BTreeMap::new();
        for (i, line) in lines.enumerate() {
            let r: Record =
                serde_json::from_str(line).map_err(|e| format!("golden line {}: {e}", i + 2))?;
            traces.insert(r.seed, r);
        }
        Ok(Golden {
            agent: header.agent,
            generator: header.generator,
            traces,
        })
    }
}

/// One line of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiffLine {
    Same(String),
    /// Only in the expected trace.
    Expected(String),
    /// Only in the actual trace.
    Actual(String),
}

/// A line diff (longest common subsequence; traces are short).
pub fn diff(expected: &[String], actual: &[String]) -> Vec<DiffLine> {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            out.push(DiffLine::Same(expected[i].clone()));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(DiffLine::Actual(actual[j].clone()));
            j += 1;
        } else {
            out.push(DiffLine::Expected(expected[i].clone()));
            i += 1;
        }
    }
    out
}

/// The diff as text: `  same`, `- expected only`, `+ actual only`.
pub fn render_diff(lines: &[DiffLine]) -> String {
    lines
        .iter()
        .map(|l| match l {
            DiffLine::Same(s) => format!("    {s}\n"),
            DiffLine::Expected(s) => format!("  - {s}\n"),
            DiffLine::Actual(s) => format!("  + {s}\n"),
        })
        .collect()
}

/// Compares `actual` to `expected`: `None` if equal, else the diff as text.
pub fn compare(expected: &Trace, actual: &Trace) -> Option<String> {
    let (e, a) = (expected.lines(), actual.lines());
    if e == a {
        return None;
    }
    Some(render_diff(&diff(&e, &a)))
}

/// What kind of disagreement a diff shows, for grouping many seeds: the first differing
/// lines, with what varies from seed to seed (lengths, hashes, application close codes,
/// reasons) abstracted away.
pub fn signature(expected: &Trace, actual: &Trace) -> String {
    let d = diff(&expected.lines(), &actual.lines());
    let mut exp = Vec::new();
    let mut act = Vec::new();
    let mut started = false;
    for l in &d {
        match l {
            DiffLine::Same(_) if started => break,
            DiffLine::Same(_) => {}
            DiffLine::Expected(s) => {
                started = true;
                exp.push(abstract_line(s));
            }
            DiffLine::Actual(s) => {
                started = true;
                act.push(abstract_line(s));
            }
        }
    }
    let show = |v: &[String]| {
        if v.is_empty() {
            "(nothing)".to_owned()
        } else {
            v.join(" | ")
        }
    };
    format!("expected {} ; got {}", show(&exp), show(&act))
}

fn abstract_line(line: &str) -> String {
    if let Some(pongs) = line.strip_prefix("peer: pongs:") {
        return format!("peer: pongs ×{}", pongs.split_whitespace().count());
    }
    // Quoted strings (reasons) first.
    let mut unquoted = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            unquoted.push(c);
            continue;
        }
        let mut empty = true;
        while let Some(q) = chars.next() {
            match q {
                '\\' => {
                    chars.next();
                    empty = false;
                }
                '"' => break,
                _ => empty = false,
            }
        }
        unquoted.push_str(if empty { "\"\"" } else { "\"…\"" });
    }
    // Then hashes and numbers: kept are readyStates (after `@`) and close codes 1000-1015.
    let words: Vec<String> = unquoted
        .split(' ')
        .map(|w| {
            if w.len() == 8 && w.chars().all(|c| c.is_ascii_hexdigit()) {
                return "#".to_owned();
            }
            let mut out = String::new();
            let mut digits = String::new();
            let mut prev = ' ';
            let flush = |digits: &mut String, out: &mut String, before: char| {
                if digits.is_empty() {
                    return;
                }
                let keep = before == '@'
                    || (digits.len() == 4
                        && (1000..=1015).contains(&digits.parse::<u32>().unwrap_or(0)));
                out.push_str(if keep { digits } else { "N" });
                digits.clear();
            };
            let mut before = ' ';
            for c in w.chars() {
                if c.is_ascii_digit() {
                    if digits.is_empty() {
                        before = prev;
                    }
                    digits.push(c);
                } else {
                    flush(&mut digits, &mut out, before);
                    out.push(c);
                }
                prev = c;
            }
            flush(&mut digits, &mut out, before);
            out
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(events: &[&str]) -> Trace {
        Trace {
            events: events.iter().map(|s| s.to_string()).collect(),
            peer: Some(vec![]),
        }
    }

    #[test]
    fn diffs_show_what_differs() {
        let e = t(&[
            "open@1",
            "message@1 text 3 00000001",
            "close@3 1000 \"\" true",
        ]);
        let a = t(&["open@1", "close@3 1006 \"\" false"]);
        let d = compare(&e, &a).unwrap();
        assert!(d.contains("  - message@1 text 3 00000001"), "{d}");
        assert!(d.contains("  + close@3 1006 \"\" false"), "{d}");
        assert!(compare(&e, &e).is_none());
        assert_eq!(
            signature(&e, &a),
            "expected message@1 text N # | close@3 1000 \"\" true ; got close@3 1006 \"\" false"
        );
    }

    #[test]
    fn signatures_abstract_what_varies() {
        let e = t(&["message#12: close(4321, \"bye now\") -> ok @2"]);
        let a = t(&["message#12: close(4321, \"bye now\") -> InvalidAccessError @1"]);
        assert_eq!(
            signature(&e, &a),
            "expected message#N: close(N, \"…\") -> ok @2 ; got message#N: close(N, \"…\") -> InvalidAccessError @1"
        );
    }

    #[test]
    fn pong_lines_are_counted() {
        let e = Trace {
            events: vec![],
            peer: Some(vec!["pongs: 3/8c02e73f 0/811c9dc5".into()]),
        };
        let a = Trace {
            events: vec![],
            peer: Some(vec!["pongs: 3/8c02e73f".into()]),
        };
        assert_eq!(
            signature(&e, &a),
            "expected peer: pongs ×2 ; got peer: pongs ×1"
        );
    }

    #[test]
    fn golden_files_round_trip() {
        let mut g = Golden {
            agent: "X".into(),
            generator: 1,
            traces: BTreeMap::new(),
        };
        g.traces.insert(
            3,
            Record {
                seed: 3,
                runtime: "chromium".into(),
                fingerprint: "f".into(),
                trace: t(&["open@1"]),
            },
        );
        assert_eq!(Golden::parse(&g.to_jsonl("chromium")).unwrap(), g);
        let line = g.traces[&3].to_line();
        assert_eq!(
            Record::from_output(&format!("noise\n{line}\nmore")),
            vec![g.traces[&3].clone()]
        );
    }
}
