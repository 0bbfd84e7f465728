//! Results, goals and their presentation: a terminal table, the generated part of
//! `BENCHMARKS.md`, and an SVG chart of the ratios (plotters).

use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Which direction of a metric is the good one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    /// Throughput and the like.
    Higher,
    /// Latency, memory, size, losses.
    Lower,
}

/// One measured quantity of one scenario, with every contender's samples (one per round).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metric {
    /// The scenario it belongs to.
    pub scenario: Scenario,
    /// What is measured, e.g. `round trip p50`.
    pub name: String,
    /// The unit of the samples, e.g. `µs`.
    pub unit: String,
    /// Which direction is better.
    pub better: Better,
    /// The contender the ratios are taken against (raw tokio-tungstenite, plain JS).
    pub anchor: String,
    /// Whether the chart shows this metric.
    pub chart: bool,
    /// Contenders in display order, each with its samples.
    pub samples: Vec<(String, Vec<f64>)>,
    /// Why a contender has no samples (it failed or cannot run the scenario).
    pub missing: BTreeMap<String, String>,
}

/// Median, minimum and maximum of a contender's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// The summary of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// The value at quantile `q` (0..=1) of `sorted` (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Metric {
    /// A metric with no samples yet.
    pub fn new(scenario: Scenario, name: &str, unit: &str, better: Better, anchor: &str) -> Metric {
        Metric {
            scenario,
            name: name.into(),
            unit: unit.into(),
            better,
            anchor: anchor.into(),
            chart: true,
            samples: Vec::new(),
            missing: BTreeMap::new(),
        }
    }

    /// Leaves this metric out of the chart.
    pub fn no_chart(mut self) -> Metric {
        self.chart = false;
        self
    }

    /// The key goals refer to: `"N1 round trip p50"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.scenario, self.name)
    }

    /// Adds one sample for `contender`.
    pub fn push(&mut self, contender: &str, value: f64) {
        match self.samples.iter_mut().find(|(c, _)| c == contender) {
            Some((_, v)) => v.push(value),
            None => self.samples.push((contender.into(), vec![value])),
        }
    }

    /// Records why `contender` has no (more) samples; the first reason is kept.
    pub fn fail(&mut self, contender: &str, why: &str) {
        self.missing
            .entry(contender.into())
            .or_insert_with(|| why.into());
    }

    /// `contender`'s summary, if it has samples.
    pub fn summary(&self, contender: &str) -> Option<Summary> {
        self.samples
            .iter()
            .find(|(c, _)| c == contender)
            .and_then(|(_, v)| Summary::of(v))
    }

    /// The ratio of `contender`'s median to the anchor's (plain, not direction-adjusted).
    pub fn ratio(&self, contender: &str) -> Option<f64> {
        let anchor = self.summary(&self.anchor)?.median;
        let value = self.summary(contender)?.median;
        (anchor != 0.0).then_some(value / anchor)
    }

    /// How much better than the anchor `contender` is: > 1 is better, whichever the direction.
    pub fn goodness(&self, contender: &str) -> Option<f64> {
        let r = self.ratio(contender)?;
        match self.better {
            Better::Higher => Some(r),
            Better::Lower => (r != 0.0).then(|| 1.0 / r),
        }
    }

    fn better_of(&self, a: f64, b: f64) -> bool {
        match self.better {
            Better::Higher => a > b,
            Better::Lower => a < b,
        }
    }

    fn contenders(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.samples.iter().map(|(c, _)| c.as_str()).collect();
        for c in self.missing.keys() {
            if !all.contains(&c.as_str()) {
                all.push(c);
            }
        }
        all
    }
}

/// A target the report checks (the goals of the benchmark issue).
#[derive(Clone, Debug)]
pub enum Goal {
    /// `contender`'s median relative to the anchor: at most `bound` for lower-is-better
    /// metrics, at least `bound` for higher-is-better ones.
    Ratio {
        /// The metric's key.
        metric: String,
        /// Who must meet it.
        contender: String,
        /// The bound on the ratio.
        bound: f64,
    },
    /// `contender`'s median is better than each of `others` (or equal, when `or_equal`).
    Beats {
        /// The metric's key.
        metric: String,
        /// Who must meet it.
        contender: String,
        /// Whom it is compared with.
        others: Vec<String>,
        /// Whether a tie counts.
        or_equal: bool,
    },
    /// `contender`'s largest sample is at most `value`.
    AtMost {
        /// The metric's key.
        metric: String,
        /// Who must meet it.
        contender: String,
        /// The bound.
        value: f64,
    },
}

/// A goal checked against the results.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The goal, in words.
    pub goal: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measurable (a contender failed).
    pub met: Option<bool>,
    /// The numbers behind the verdict.
    pub detail: String,
}

impl Goal {
    /// The key of the metric the goal is about: `"N1 round trip p50"`.
    pub fn metric(&self) -> &str {
        match self {
            Goal::Ratio { metric, .. }
            | Goal::Beats { metric, .. }
            | Goal::AtMost { metric, .. } => metric,
        }
    }

    /// Checks the goal against `metrics`.
    pub fn check(&self, metrics: &[Metric]) -> Verdict {
        let (Goal::Ratio {
            metric, contender, ..
        }
        | Goal::Beats {
            metric, contender, ..
        }
        | Goal::AtMost {
            metric, contender, ..
        }) = self;
        let Some(m) = metrics.iter().find(|m| m.key() == *metric) else {
            return Verdict {
                goal: format!("{metric}: not measured"),
                met: None,
                detail: "not measured".into(),
            };
        };
        let (goal, result) = match self {
            Goal::Ratio { bound, .. } => {
                let lower = m.better == Better::Lower;
                let op = if lower { "≤" } else { "≥" };
                let met = |r: f64| if lower { r <= *bound } else { r >= *bound };
                (
                    format!("{metric}: {contender} {op} {bound:.2}x {}", m.anchor),
                    m.ratio(contender).map(|r| (met(r), format!("{r:.3}x"))),
                )
            }
            Goal::Beats {
                others, or_equal, ..
            } => {
                let word = if *or_equal {
                    "no worse than"
                } else {
                    "ahead of"
                };
                let result = m.summary(contender).map(|own| {
                    let mut met = true;
                    let mut detail = Vec::new();
                    for other in others {
                        match m.summary(other) {
                            Some(s) => {
                                let ok = m.better_of(own.median, s.median)
                                    || (*or_equal && own.median == s.median);
                                met &= ok;
                                detail.push(format!(
                                    "{} {other} ({})",
                                    if ok { "beats" } else { "behind" },
                                    number(s.median)
                                ));
                            }
                            // A peer that cannot run the scenario is beaten by one that can.
                            None => detail.push(format!("{other}: no result")),
                        }
                    }
                    let detail =
                        format!("{} {}: {}", number(own.median), m.unit, detail.join(", "));
                    (met, detail)
                });
                (
                    format!("{metric}: {contender} {word} {}", others.join(", ")),
                    result,
                )
            }
            Goal::AtMost { value, .. } => (
                format!("{metric}: {contender} ≤ {} {}", number(*value), m.unit),
                m.summary(contender)
                    .map(|s| (s.max <= *value, format!("max {} {}", number(s.max), m.unit))),
            ),
        };
        match result {
            Some((met, detail)) => Verdict {
                goal,
                met: Some(met),
                detail,
            },
            None => Verdict {
                goal,
                met: None,
                detail: "no result".into(),
            },
        }
    }
}

/// A number with a sensible number of digits.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if a >= 100_000.0 {
        format!("{:.0}", v)
    } else if a >= 100.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

/// The two forms of the report, rendered from the same [`rows`] and verdicts: aligned text
/// for the terminal, Markdown for `BENCHMARKS.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns.
    Terminal,
    /// Markdown tables and lists.
    Markdown,
}

/// One contender's row of a metric's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<'a> {
    /// The contender.
    pub contender: &'a str,
    /// Whether it is the metric's anchor.
    pub anchor: bool,
    /// Median, min, max and the ratio to the anchor (if there is one), formatted; or why the
    /// contender has no samples.
    pub cells: Result<([String; 3], Option<String>), &'a str>,
}

/// A metric's rows, one a contender in display order.
pub fn rows(m: &Metric) -> Vec<Row<'_>> {
    let row = |c| Row {
        contender: c,
        anchor: c == m.anchor,
        cells: match m.summary(c) {
            Some(s) => Ok((
                [number(s.median), number(s.min), number(s.max)],
                m.ratio(c).map(|r| format!("{r:.3}x")),
            )),
            None => Err(m.missing.get(c).map_or("no result", String::as_str)),
        },
    };
    m.contenders().into_iter().map(row).collect()
}

impl Style {
    /// Each metric's table: its heading, then its [`rows`].
    pub fn metrics(self, metrics: &[Metric]) -> String {
        let mut out = String::new();
        for m in metrics {
            let dir = match m.better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            let (scenario, name, unit, anchor) = (m.scenario, &m.name, &m.unit, &m.anchor);
            let _ = match self {
                Style::Terminal => write!(
                    out,
                    "\n{scenario} {name} ({unit}, {dir})\n  {:<28} {:>12} {:>12} {:>12} {:>8}\n",
                    "", "median", "min", "max", "ratio"
                ),
                Style::Markdown => write!(
                    out,
                    "**{scenario} {name}** ({unit}, {dir})\n\n\
                     | contender | median | min | max | ratio to {anchor} |\n|---|---:|---:|---:|---:|\n"
                ),
            };
            for Row {
                contender: c,
                anchor,
                cells,
            } in rows(m)
            {
                let _ = match (self, cells) {
                    (Style::Terminal, cells) => {
                        let label = if anchor {
                            format!("{c} (anchor)")
                        } else {
                            c.to_owned()
                        };
                        match cells {
                            Ok(([median, min, max], ratio)) => writeln!(
                                out,
                                "  {label:<28} {median:>12} {min:>12} {max:>12} {:>8}",
                                ratio.as_deref().unwrap_or("-")
                            ),
                            Err(why) => writeln!(out, "  {label:<28} {why}"),
                        }
                    }
                    (Style::Markdown, Ok(([median, min, max], ratio))) => writeln!(
                        out,
                        "| {c} | {median} | {min} | {max} | {} |",
                        ratio.as_deref().unwrap_or("–")
                    ),
                    (Style::Markdown, Err(why)) => {
                        writeln!(out, "| {c} | {} | | | |", why.replace('|', "/"))
                    }
                };
            }
            if self == Style::Markdown {
                out.push('\n');
            }
        }
        out
    }

    /// One line a verdict: the mark (`met`, `MISSED`, `n/a`; ✅, ❌, ➖), the goal and the
    /// numbers behind it.
    pub fn verdicts(self, verdicts: &[Verdict]) -> String {
        let marks = match self {
            Style::Terminal => ["met   ", "MISSED", "n/a   "],
            Style::Markdown => ["✅", "❌", "➖"],
        };
        let line = |v: &Verdict| {
            let mark = marks[match v.met {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            }];
            match self {
                Style::Terminal => format!("  {mark} {}  [{}]\n", v.goal, v.detail),
                Style::Markdown => format!("- {mark} {} — {}\n", v.goal, v.detail),
            }
        };
        verdicts.iter().map(line).collect()
    }
}

/// The terminal table: per metric, each contender's median, min, max and ratio to the anchor.
pub fn table(metrics: &[Metric]) -> String {
    Style::Terminal.metrics(metrics)
}

/// The verdicts as terminal lines (`met`, `MISSED`, `n/a`).
pub fn verdict_lines(verdicts: &[Verdict]) -> String {
    Style::Terminal.verdicts(verdicts)
}

/// The generated part of `BENCHMARKS.md`: machine, command, the chart (`chart`: its path
/// relative to the document), the goals, one table per metric.
pub fn markdown(
    metrics: &[Metric],
    verdicts: &[Verdict],
    machine: &str,
    command: &str,
    chart: &str,
) -> String {
    format!(
        "Command: `{command}`\n\nMachine: {machine}\n\n![Ratios to the anchors]({chart})\n\n\
         ### Goals\n\n{}\n### Results\n\n{}",
        Style::Markdown.verdicts(verdicts),
        Style::Markdown.metrics(metrics)
    )
}

/// The performance summary of the README: the ratios of the latest run, one table for each
/// group of metrics with the same contenders and anchor (the anchor's column has its median,
/// the others their ratio to it), then how many goals were met and which were missed. It
/// shows the charted metrics and those a goal is about (`goals`: their metric keys); the
/// rest, and the min and max, are in `BENCHMARKS.md`.
pub fn summary(metrics: &[Metric], verdicts: &[Verdict], goals: &[&str], command: &str) -> String {
    let shown: Vec<&Metric> = metrics
        .iter()
        .filter(|m| m.chart || goals.contains(&m.key().as_str()))
        .collect();
    let mut out = format!(
        "Generated from the latest full run (`{command}`; the machine, every metric with its \
         minimum and maximum, and how each is measured are in [BENCHMARKS.md](BENCHMARKS.md)): \
         ratios of medians to the anchor (its column has its median); a dash where a \
         contender has no result.\n"
    );
    let mut i = 0;
    while i < shown.len() {
        let first = shown[i];
        let contenders = first.contenders();
        let group = shown[i..]
            .iter()
            .take_while(|m| m.anchor == first.anchor && m.contenders() == contenders)
            .count();
        // The anchor first, then the others in the order the run measured them.
        let columns: Vec<&str> = std::iter::once(first.anchor.as_str())
            .chain(contenders.iter().copied().filter(|c| *c != first.anchor))
            .collect();
        let header: Vec<String> = columns
            .iter()
            .map(|c| {
                if *c == first.anchor {
                    format!("{c} (anchor)")
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = write!(
            out,
            "\n| | {} |\n|---|{}\n",
            header.join(" | "),
            "---:|".repeat(columns.len())
        );
        for m in &shown[i..i + group] {
            let dir = match m.better {
                Better::Higher => "higher is better",
                Better::Lower => "lower is better",
            };
            let cells: Vec<String> = columns
                .iter()
                .map(|c| match (m.summary(c), m.ratio(c)) {
                    (Some(s), _) if *c == m.anchor => format!("{} {}", number(s.median), m.unit),
                    (Some(_), Some(r)) => format!("{r:.3}x"),
                    (Some(s), None) => format!("{} {}", number(s.median), m.unit),
                    (None, _) => "–".into(),
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} {} ({dir}) | {} |",
                m.scenario,
                m.name,
                cells.join(" | ")
            );
        }
        i += group;
    }
    let met = verdicts.iter().filter(|v| v.met == Some(true)).count();
    let _ = writeln!(
        out,
        "\nGoals (those of the benchmark issue, checked by the run): {met} of {} met.",
        verdicts.len()
    );
    let missed: Vec<&Verdict> = verdicts.iter().filter(|v| v.met != Some(true)).collect();
    if !missed.is_empty() {
        let _ = writeln!(out, "Missed or not measured:\n");
        for v in missed {
            let _ = writeln!(out, "- {} — {}", v.goal, v.detail);
        }
    }
    out
}

/// Replaces the text between `<!-- bench:start -->` and `<!-- bench:end -->` in `document`
/// with `generated`, leaving the hand-written rest alone (appending the markers if missing).
pub fn splice(document: &str, generated: &str) -> String {
    splice_between(document, generated, "bench")
}

/// [`splice`] between `<!-- NAME:start -->` and `<!-- NAME:end -->`.
pub fn splice_between(document: &str, generated: &str, name: &str) -> String {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    match (document.find(&start), document.find(&end)) {
        (Some(s), Some(e)) if s < e => format!(
            "{}{start}\n{generated}{end}{}",
            &document[..s],
            &document[e + end.len()..]
        ),
        _ => format!("{document}\n{start}\n{generated}{end}\n"),
    }
}

/// Draws the chart: for each charted metric, each contender's result relative to the anchor,
/// oriented so that above 1 is better.
pub fn chart(metrics: &[Metric], path: &Path) -> Result<(), String> {
    use plotters::prelude::*;

    let shown: Vec<&Metric> = metrics
        .iter()
        .filter(|m| m.chart && m.summary(&m.anchor).is_some())
        .collect();
    let mut contenders: Vec<String> = Vec::new();
    for m in &shown {
        for (c, _) in &m.samples {
            if *c != m.anchor && !contenders.contains(c) {
                contenders.push(c.clone());
            }
        }
    }
    let top = shown
        .iter()
        .flat_map(|m| contenders.iter().filter_map(|c| m.goodness(c)))
        .fold(1.2f64, f64::max)
        .min(4.0)
        * 1.1;
    let groups = shown.len().max(1);
    let width = 160 + 130 * groups as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let labels: Vec<String> = shown
        .iter()
        .map(|m| format!("{} {}", m.scenario, m.name))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Relative to raw tokio-tungstenite (N), plain JS (W1), gloo-net (W2); above 1 is better",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups as f64, 0f64..top)
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("ratio (higher is better)")
        .draw()
        .map_err(|e| draw(&e))?;
    let palette = [
        RGBColor(0xd6, 0x3b, 0x2f),
        RGBColor(0x3b, 0x6e, 0xa8),
        RGBColor(0x6a, 0xa8, 0x4f),
        RGBColor(0xe0, 0x9b, 0x2d),
        RGBColor(0x8e, 0x5e, 0xa2),
        RGBColor(0x55, 0x55, 0x55),
        // Enough for every contender the chart shows (N1-N5's six, N7's servers, gloo-net)
        // to have a colour of its own.
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0x1f, 0x2f, 0x5f),
        RGBColor(0xff, 0x9d, 0xa7),
    ];
    let slot = 0.8 / contenders.len().max(1) as f64;
    for (k, c) in contenders.iter().enumerate() {
        let color = palette[k % palette.len()];
        let bars: Vec<_> = shown
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let g = m.goodness(c)?.min(top);
                let x0 = i as f64 + 0.1 + slot * k as f64;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + slot * 0.9, g)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| draw(&e))?
            .label(c.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(0.0, 1.0), (groups as f64, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| draw(&e))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(better: Better) -> Metric {
        let mut m = Metric::new(Scenario::N1, "round trip p50", "µs", better, "raw");
        for v in [10.0, 12.0, 11.0] {
            m.push("raw", v);
        }
        for v in [10.5, 10.4, 30.0] {
            m.push("anyws", v);
        }
        m.push("peer", 20.0);
        m.fail("broken", "connect failed");
        m
    }

    #[test]
    fn summary_and_percentiles() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert_eq!(Summary::of(&[]), None);
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&sorted, 1.0), 100.0);
    }

    #[test]
    fn ratios_follow_the_direction() {
        let lower = metric(Better::Lower);
        assert!((lower.ratio("anyws").unwrap() - 10.5 / 11.0).abs() < 1e-9);
        assert!(lower.goodness("peer").unwrap() < 1.0);
        let higher = metric(Better::Higher);
        assert!(higher.goodness("peer").unwrap() > 1.0);
        assert_eq!(higher.ratio("broken"), None);
    }

    #[test]
    fn goals() {
        let metrics = [metric(Better::Lower)];
        let key = "N1 round trip p50".to_string();
        let ratio = |bound| Goal::Ratio {
            metric: key.clone(),
            contender: "anyws".into(),
            bound,
        };
        assert_eq!(ratio(1.05).check(&metrics).met, Some(true));
        assert_eq!(ratio(0.9).check(&metrics).met, Some(false));
        let beats = Goal::Beats {
            metric: key.clone(),
            contender: "anyws".into(),
            others: vec!["peer".into(), "broken".into()],
            or_equal: false,
        };
        assert_eq!(beats.check(&metrics).met, Some(true));
        let at_most = |value| Goal::AtMost {
            metric: key.clone(),
            contender: "anyws".into(),
            value,
        };
        assert_eq!(at_most(30.0).check(&metrics).met, Some(true));
        assert_eq!(at_most(29.0).check(&metrics).met, Some(false));
        let missing = Goal::AtMost {
            metric: "N9 nothing".into(),
            contender: "anyws".into(),
            value: 1.0,
        };
        assert_eq!(missing.check(&metrics).met, None);
    }

    #[test]
    fn table_markdown_and_splice() {
        let metrics = [metric(Better::Lower)];
        let t = table(&metrics);
        assert!(t.contains("raw (anchor)"), "{t}");
        assert!(t.contains("connect failed"), "{t}");
        let md = markdown(&metrics, &[], "test machine", "cargo xtask bench", "c.svg");
        assert!(md.contains("](c.svg)"), "{md}");
        assert!(
            md.contains("| anyws | 10.50 | 10.40 | 30.00 | 0.955x |"),
            "{md}"
        );
        let doc = "# Title\nintro\n<!-- bench:start -->\nold\n<!-- bench:end -->\nanalysis\n";
        let spliced = splice(doc, "new\n");
        assert_eq!(
            spliced,
            "# Title\nintro\n<!-- bench:start -->\nnew\n<!-- bench:end -->\nanalysis\n"
        );
        assert!(
            splice("# Bare\n", "x\n").ends_with("<!-- bench:start -->\nx\n<!-- bench:end -->\n")
        );
    }

    #[test]
    fn the_readme_summary_is_generated_from_the_metrics() {
        let n1 = metric(Better::Lower);
        let mut p99 = Metric::new(Scenario::N1, "round trip p99", "µs", Better::Lower, "raw");
        for (c, v) in [("raw", 20.0), ("anyws", 30.0), ("peer", 10.0)] {
            p99.push(c, v);
        }
        p99.fail("broken", "connect failed");
        let mut lost = Metric::new(
            Scenario::N5,
            "messages lost",
            "messages",
            Better::Lower,
            "raw",
        )
        .no_chart();
        lost.push("raw", 0.0);
        lost.push("anyws", 0.0);
        let hidden = Metric::new(
            Scenario::N5,
            "failed connections",
            "x",
            Better::Lower,
            "raw",
        )
        .no_chart();
        let mut w2 = Metric::new(
            Scenario::W2,
            "wasm size (gzip)",
            "bytes",
            Better::Lower,
            "gloo",
        );
        w2.push("anyws", 300.0);
        w2.push("gloo", 200.0);
        let metrics = [n1, p99, lost, hidden, w2];
        let goal = Goal::Ratio {
            metric: "N1 round trip p50".into(),
            contender: "anyws".into(),
            bound: 1.0,
        };
        let verdicts = [goal.check(&metrics)];
        let text = summary(
            &metrics,
            &verdicts,
            &["N5 messages lost"],
            "cargo xtask bench",
        );
        // One table for N1 (same contenders, same anchor), the anchor's median first.
        assert!(
            text.contains(
                "| | raw (anchor) | anyws | peer | broken |\n|---|---:|---:|---:|---:|\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| N1 round trip p50 (lower is better) | 11.00 µs | 0.955x | 1.818x | – |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| N1 round trip p99 (lower is better) | 20.00 µs | 1.500x | 0.500x | – |"
            ),
            "{text}"
        );
        // Not charted, but a goal is about it: shown, as values (no ratio to 0).
        assert!(
            text.contains("| | raw (anchor) | anyws |\n|---|---:|---:|\n| N5 messages lost (lower is better) | 0 messages | 0 messages |"),
            "{text}"
        );
        // Neither charted nor a goal's: left to BENCHMARKS.md.
        assert!(!text.contains("failed connections"), "{text}");
        assert!(text.contains("| W2 wasm size (gzip) (lower is better) | 200.0 bytes | 1.500x |"));
        assert!(text.contains("`cargo xtask bench`"), "{text}");
        assert!(text.contains("1 of 1 met."), "{text}");
        assert!(!text.contains("Missed"), "{text}");
        let missed = [Goal::Ratio {
            metric: "N1 round trip p50".into(),
            contender: "anyws".into(),
            bound: 0.9,
        }
        .check(&metrics)];
        let text = summary(&metrics, &missed, &[], "c");
        assert!(text.contains("0 of 1 met."), "{text}");
        assert!(
            text.contains("- N1 round trip p50: anyws ≤ 0.90x raw — 0.955x\n"),
            "{text}"
        );
        let readme = "# R\n<!-- bench-summary:start -->\nold\n<!-- bench-summary:end -->\nrest\n";
        assert_eq!(
            splice_between(readme, "new\n", "bench-summary"),
            "# R\n<!-- bench-summary:start -->\nnew\n<!-- bench-summary:end -->\nrest\n"
        );
        // The other markers are left alone.
        assert_eq!(splice(readme, "x\n").matches("old").count(), 1);
    }

    /// Both forms from the same rows: every number, ratio and reason of [`rows`] in each,
    /// in the exact layout of each.
    #[test]
    fn terminal_and_markdown_render_the_same_rows() {
        let mut m = metric(Better::Lower);
        m.fail("piped", "a | b");
        let mut no_anchor = Metric::new(
            Scenario::W2,
            "wasm size (gzip)",
            "bytes",
            Better::Lower,
            "gone",
        );
        no_anchor.push("anyws", 123_456.0);
        let metrics = [m, no_anchor];
        let terminal = Style::Terminal.metrics(&metrics);
        let markdown = Style::Markdown.metrics(&metrics);
        assert_eq!(terminal, table(&metrics));
        assert_eq!(
            terminal,
            "\nN1 round trip p50 (µs, lower is better)\n\
             \x20                                    median          min          max    ratio\n\
             \x20 raw (anchor)                        11.00        10.00        12.00   1.000x\n\
             \x20 anyws                               10.50        10.40        30.00   0.955x\n\
             \x20 peer                                20.00        20.00        20.00   1.818x\n\
             \x20 broken                       connect failed\n\
             \x20 piped                        a | b\n\
             \nW2 wasm size (gzip) (bytes, lower is better)\n\
             \x20                                    median          min          max    ratio\n\
             \x20 anyws                              123456       123456       123456        -\n"
        );
        assert_eq!(
            markdown,
            "**N1 round trip p50** (µs, lower is better)\n\n\
             | contender | median | min | max | ratio to raw |\n\
             |---|---:|---:|---:|---:|\n\
             | raw | 11.00 | 10.00 | 12.00 | 1.000x |\n\
             | anyws | 10.50 | 10.40 | 30.00 | 0.955x |\n\
             | peer | 20.00 | 20.00 | 20.00 | 1.818x |\n\
             | broken | connect failed | | | |\n\
             | piped | a / b | | | |\n\n\
             **W2 wasm size (gzip)** (bytes, lower is better)\n\n\
             | contender | median | min | max | ratio to gone |\n\
             |---|---:|---:|---:|---:|\n\
             | anyws | 123456 | 123456 | 123456 | – |\n\n"
        );
        for m in &metrics {
            for row in rows(m) {
                match &row.cells {
                    Ok((cells, ratio)) => {
                        for cell in cells.iter().chain(ratio) {
                            let md = format!(" {cell} |");
                            let term = format!(" {cell}");
                            assert!(markdown.contains(&md) && terminal.contains(&term), "{cell}");
                        }
                    }
                    Err(why) => assert!(terminal.contains(why), "{why}"),
                }
            }
        }
    }

    #[test]
    fn verdicts_in_both_forms() {
        let verdicts = [
            Verdict {
                goal: "g1".into(),
                met: Some(true),
                detail: "d1".into(),
            },
            Verdict {
                goal: "g2".into(),
                met: Some(false),
                detail: "d2".into(),
            },
            Verdict {
                goal: "g3".into(),
                met: None,
                detail: "d3".into(),
            },
        ];
        assert_eq!(
            verdict_lines(&verdicts),
            "  met    g1  [d1]\n  MISSED g2  [d2]\n  n/a    g3  [d3]\n"
        );
        let md = markdown(&[], &verdicts, "m", "c", "x.svg");
        assert_eq!(
            md,
            "Command: `c`\n\nMachine: m\n\n![Ratios to the anchors](x.svg)\n\n### Goals\n\n\
             - ✅ g1 — d1\n- ❌ g2 — d2\n- ➖ g3 — d3\n\n### Results\n\n"
        );
    }

    #[test]
    fn chart_is_an_svg() {
        let path = std::env::temp_dir().join(format!("anyws-bench-{}.svg", std::process::id()));
        chart(&[metric(Better::Higher)], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"), "{:.80}", svg);
        assert!(svg.contains("anyws") && svg.contains("peer"));
    }

    /// N1-N5's six contenders, N7's three servers and gloo-net: a colour each.
    #[test]
    fn every_charted_contender_has_a_colour_of_its_own() {
        let mut m = Metric::new(
            Scenario::N2,
            "receive throughput",
            "msg/s",
            Better::Higher,
            "raw",
        );
        m.push("raw", 100.0);
        let others: Vec<String> = (0..10).map(|i| format!("contender{i}")).collect();
        for (i, c) in others.iter().enumerate() {
            m.push(c, 50.0 + i as f64);
        }
        let path =
            std::env::temp_dir().join(format!("anyws-bench-colours-{}.svg", std::process::id()));
        chart(&[m], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let colours: std::collections::BTreeSet<&str> = svg
            .match_indices("fill=\"#")
            .map(|(i, _)| &svg[i + 7..i + 13])
            .filter(|c| !matches!(*c, "FFFFFF" | "000000"))
            .collect();
        assert_eq!(colours.len(), others.len(), "{colours:?}");
    }
}
