//! What anyws native is held to: the browsers' common behaviour, or, where Chromium and
//! Firefox disagree, the behaviour the standards ask for, chosen by a documented rule.

use crate::scenario::Scenario;
use crate::trace::Trace;

/// Where the reference comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Both browsers recorded this trace.
    Both,
    /// The browsers disagree; this rule picked one of them.
    Rule { browser: &'static str, rule: &'static str },
}

/// The reference trace for `scenario` from the two browsers' traces, or why there is none
/// (the browsers disagree and no rule says which follows the standard).
pub fn reference(
    _scenario: &Scenario,
    chromium: &Trace,
    firefox: &Trace,
) -> Result<(Trace, Source), String> {
    if chromium == firefox {
        return Ok((chromium.clone(), Source::Both));
    }
    Err("Chromium and Firefox disagree and no rule says which one follows the standard".into())
}
