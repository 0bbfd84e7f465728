//! The checks made from a set of recorded traces, and the Markdown report that groups their
//! disagreements by kind.

use crate::expect::{reference, Source};
use crate::scenario::{generate, Scenario};
use crate::trace::{compare, signature, Record, Trace};
use std::collections::BTreeMap;

/// Traces by runtime, then seed.
#[derive(Clone, Debug, Default)]
pub struct Traces(pub BTreeMap<String, BTreeMap<u64, Record>>);

impl Traces {
    /// Adds records, keeping the first of each runtime and seed (a failing browser test prints
    /// its output twice).
    pub fn add(&mut self, records: impl IntoIterator<Item = Record>) {
        for r in records {
            self.0
                .entry(r.runtime.clone())
                .or_default()
                .entry(r.seed)
                .or_insert(r);
        }
    }

    pub fn get(&self, runtime: &str, seed: u64) -> Option<&Record> {
        self.0.get(runtime)?.get(&seed)
    }

    pub fn seeds(&self, runtime: &str) -> Vec<u64> {
        self.0
            .get(runtime)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// One comparison that found a difference (or could not be made).
#[derive(Clone, Debug)]
pub struct Finding {
    /// Which check, e.g. `anyws native vs the browsers`.
    pub check: String,
    pub seed: u64,
    pub scenario: Scenario,
    /// What the expected trace is (`both browsers`, `Chromium, by rule ...`).
    pub expected_from: String,
    pub expected: Trace,
    pub actual: Trace,
    /// Set when no comparison could be made.
    pub problem: Option<String>,
}

impl Finding {
    pub fn signature(&self) -> String {
        match &self.problem {
            Some(p) => p.clone(),
            None => signature(&self.expected, &self.actual),
        }
    }
}

/// The outcome of one check over all its seeds.
#[derive(Clone, Debug, Default)]
pub struct Check {
    /// A short name for configuration: `chromium-drift`, `chromium-anyws`, `native`,
    /// `browsers`.
    pub key: String,
    pub name: String,
    pub compared: usize,
    pub findings: Vec<Finding>,
}

fn run_check(
    key: &str,
    name: &str,
    seeds: &[u64],
    mut pair: impl FnMut(u64, &Scenario) -> Result<Option<(String, Trace, Trace)>, String>,
) -> Check {
    let mut check = Check {
        key: key.to_owned(),
        name: name.to_owned(),
        ..Check::default()
    };
    for &seed in seeds {
        let sc = generate(seed);
        match pair(seed, &sc) {
            Ok(None) => {}
            Ok(Some((from, expected, actual))) => {
                check.compared += 1;
                if compare(&expected, &actual).is_some() {
                    check.findings.push(Finding {
                        check: name.to_owned(),
                        seed,
                        scenario: sc,
                        expected_from: from,
                        expected,
                        actual,
                        problem: None,
                    });
                }
            }
            Err(problem) => {
                check.compared += 1;
                check.findings.push(Finding {
                    check: name.to_owned(),
                    seed,
                    scenario: sc,
                    expected_from: String::new(),
                    expected: Trace::default(),
                    actual: Trace::default(),
                    problem: Some(problem),
                })
            }
        }
    }
    check
}

fn trace_of<'a>(
    traces: &'a Traces,
    runtime: &str,
    sc: &Scenario,
) -> Result<Option<&'a Trace>, String> {
    match traces.get(runtime, sc.seed) {
        None => Ok(None),
        Some(r) if r.fingerprint != sc.fingerprint() => Err(format!(
            "the {runtime} trace is of another scenario (the generator changed): record again"
        )),
        Some(r) => Ok(Some(&r.trace)),
    }
}

/// The checks: for each browser B, plain JavaScript vs `B-golden` (drift, where present) and
/// `B-anyws` vs plain JavaScript; `native` vs the reference made from `reference_runtimes`
/// (Chromium's and Firefox's traces: the golden ones or this run's); Chromium vs Firefox.
pub fn checks(traces: &Traces, browsers: &[&str], reference_runtimes: (&str, &str)) -> Vec<Check> {
    let mut out = Vec::new();
    for b in browsers {
        let golden = format!("{b}-golden");
        if traces.0.contains_key(&golden) {
            out.push(run_check(
                &format!("{b}-drift"),
                &format!("{b}: plain JavaScript vs its golden trace (drift)"),
                &traces.seeds(b),
                |_, sc| match (trace_of(traces, &golden, sc)?, trace_of(traces, b, sc)?) {
                    (Some(g), Some(js)) => Ok(Some((format!("{b} golden"), g.clone(), js.clone()))),
                    _ => Ok(None),
                },
            ));
        }
        let wasm = format!("{b}-anyws");
        let again = format!("{b}-again");
        if traces.0.contains_key(&again) {
            out.push(run_check(
                &again,
                &format!("{b}: plain JavaScript run twice (determinism)"),
                &traces.seeds(&again),
                |_, sc| match (trace_of(traces, b, sc)?, trace_of(traces, &again, sc)?) {
                    (Some(first), Some(second)) => Ok(Some((
                        format!("{b}, first run"),
                        first.clone(),
                        second.clone(),
                    ))),
                    _ => Ok(None),
                },
            ));
        }
        out.push(run_check(
            &wasm,
            &format!("{b}: anyws-wasm vs plain JavaScript"),
            &traces.seeds(&wasm),
            |_, sc| match (trace_of(traces, b, sc)?, trace_of(traces, &wasm, sc)?) {
                (Some(js), Some(w)) => Ok(Some((
                    format!("{b} plain JavaScript"),
                    js.clone(),
                    w.clone(),
                ))),
                (None, Some(_)) => Err(format!("no plain JavaScript trace from {b}")),
                _ => Ok(None),
            },
        ));
    }
    let (c, f) = reference_runtimes;
    if traces.0.contains_key("native") {
        out.push(run_check(
            "native",
            "anyws native vs the browsers",
            &traces.seeds("native"),
            |_, sc| {
                let native = trace_of(traces, "native", sc)?.expect("listed");
                let (Some(ct), Some(ft)) = (trace_of(traces, c, sc)?, trace_of(traces, f, sc)?)
                else {
                    return Err("no trace of both browsers to compare with (record them)".into());
                };
                let reference = reference(sc, ct, ft);
                // A difference that a row of the README's Target differences table names
                // counts as agreement (`expect::native`); where the browsers disagree with no
                // rule, against either of them.
                let candidates: Vec<&Trace> = match &reference {
                    Ok((expected, _)) => vec![expected],
                    Err(_) => vec![ct, ft],
                };
                for expected in candidates {
                    if let Some(known) =
                        crate::expect::native::known_difference(sc, ft, expected, native)
                    {
                        let from = format!("a Target differences row ({})", known.name);
                        return Ok(Some((from, native.clone(), native.clone())));
                    }
                }
                let (expected, source) = reference?;
                let from = match source {
                    Source::Both => "both browsers".to_owned(),
                    Source::Rule { browser, rule } => {
                        format!("{browser} (the browsers disagree; {rule})")
                    }
                };
                Ok(Some((from, expected, native.clone())))
            },
        ));
    }
    if traces.0.contains_key(c) && traces.0.contains_key(f) {
        out.push(run_check(
            "browsers",
            "Chromium vs Firefox (plain JavaScript)",
            &traces.seeds(c),
            |_, sc| match (trace_of(traces, c, sc)?, trace_of(traces, f, sc)?) {
                (Some(ct), Some(ft)) => Ok(Some(("Chromium".into(), ct.clone(), ft.clone()))),
                _ => Ok(None),
            },
        ));
    }
    out
}

/// The Markdown report: a summary, then each check's findings grouped by signature, each
/// seed with its scenario and the diff of the two traces.
pub fn markdown(title: &str, preamble: &str, checks: &[Check]) -> String {
    let mut s = format!(
        "# {title}\n\n{preamble}\n\n| check | seeds compared | disagreements |\n|---|---|---|\n"
    );
    for c in checks {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            c.name,
            c.compared,
            c.findings.len()
        ));
    }
    for c in checks {
        s.push_str(&format!(
            "\n## {}: {} of {}\n",
            c.name,
            c.findings.len(),
            c.compared
        ));
        if c.findings.is_empty() {
            s.push_str("\nNo disagreement.\n");
            continue;
        }
        let mut groups: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
        for f in &c.findings {
            groups.entry(f.signature()).or_default().push(f);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        s.push_str("\nGroups (first differing lines, with lengths, hashes, application codes and reasons abstracted):\n\n");
        for (i, (sig, fs)) in groups.iter().enumerate() {
            let seeds: Vec<String> = fs.iter().map(|f| f.seed.to_string()).collect();
            s.push_str(&format!(
                "{}. {} seeds: `{sig}`: {}\n",
                i + 1,
                fs.len(),
                seeds.join(", ")
            ));
        }
        for (i, (sig, fs)) in groups.iter().enumerate() {
            s.push_str(&format!(
                "\n### {}.{} `{sig}` ({} seeds)\n",
                c.name.split(':').next().unwrap_or(""),
                i + 1,
                fs.len()
            ));
            for f in fs {
                s.push_str(&format!("\n**seed {}**: {}\n\n", f.seed, f.scenario.kind));
                s.push_str("```text\n");
                s.push_str(&f.scenario.describe());
                match &f.problem {
                    Some(p) => s.push_str(&format!("problem: {p}\n")),
                    None => {
                        s.push_str(&format!("expected ({}):\n", f.expected_from));
                        for l in f.expected.lines() {
                            s.push_str(&format!("    {l}\n"));
                        }
                        s.push_str("actual:\n");
                        for l in f.actual.lines() {
                            s.push_str(&format!("    {l}\n"));
                        }
                        s.push_str("diff (- expected, + actual):\n");
                        s.push_str(&compare(&f.expected, &f.actual).unwrap_or_default());
                    }
                }
                s.push_str("```\n");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(runtime: &str, seed: u64, events: &[&str]) -> Record {
        Record {
            seed,
            runtime: runtime.into(),
            fingerprint: generate(seed).fingerprint(),
            trace: Trace {
                events: events.iter().map(|e| e.to_string()).collect(),
                peer: Some(vec![]),
            },
        }
    }

    #[test]
    fn checks_find_and_group_disagreements() {
        let mut t = Traces::default();
        t.add([
            rec("chromium", 1, &["open@1", "close@3 1000 \"\" true"]),
            rec("firefox", 1, &["open@1", "close@3 1000 \"\" true"]),
            rec("chromium-anyws", 1, &["open@1", "close@3 1000 \"\" true"]),
            rec("native", 1, &["open@1", "close@3 1006 \"\" false"]),
            rec("native", 1, &["ignored: the first record of a seed wins"]),
        ]);
        let checks = checks(&t, &["chromium"], ("chromium", "firefox"));
        let names: Vec<(&str, usize, usize)> = checks
            .iter()
            .map(|c| (c.name.as_str(), c.compared, c.findings.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("chromium: anyws-wasm vs plain JavaScript", 1, 0),
                ("anyws native vs the browsers", 1, 1),
                ("Chromium vs Firefox (plain JavaScript)", 1, 0),
            ]
        );
        let md = markdown("T", "p", &checks);
        assert!(
            md.contains(
                "1 seeds: `expected close@3 1000 \"\" true ; got close@3 1006 \"\" false`: 1"
            ),
            "{md}"
        );
        assert!(md.contains("  + close@3 1006 \"\" false"), "{md}");
    }
}
