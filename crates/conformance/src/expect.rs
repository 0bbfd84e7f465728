//! What anyws native is held to: the browsers' common behaviour, or, where Chromium and
//! Firefox disagree, the behaviour the standards ask for, chosen by a documented rule.
//!
//! A rule applies to the scenarios with one of the [`tags`] (features of the peer's
//! behaviour that the browsers are known to treat differently) whose traces differ in the
//! way it settles ([`Shape`]), and picks one browser's whole trace. When the browsers
//! disagree on a scenario that no rule covers, or that rules picking different browsers
//! cover, there is no reference: the native check reports that, so a new kind of
//! disagreement is looked at rather than guessed.
//!
//! | tag | where the traces differ so | reference | why |
//! |---|---|---|---|
//! | `fail` | Chromium fired `error` | Chromium | RFC 6455 5.1, 5.5.1, 7.1.7: a client fails the connection on an invalid frame (a masked frame, a 1-byte close payload, a bad close code, ...) and SHOULD send a Close frame (1002 or 1007) first. Chromium does both; Firefox accepts some of these frames and closes the TCP connection without a Close frame |
//! | `frames-after-close` | Chromium fired `error`, Firefox did not | Firefox | RFC 6455 1.4: after receiving a Close frame a peer discards any further data. Firefox does; Chromium fails the connection on a data frame or a ping after the close frame |
//! | `ping-after-client-close` | only in the peer's pongs | Firefox | RFC 6455 5.5.2: a Ping is answered with a Pong unless a Close frame was received. Firefox answers while CLOSING; Chromium does not |
//! | `rst-after-close` | Firefox's close is clean, Chromium's is not | Firefox | RFC 6455 7.1.4: a connection reset after a complete closing handshake is still clean. Chromium reports it as unclean (an `error`, or `wasClean` false) |
//! | `rst-without-close` | Firefox fired `error`, Chromium did not | Chromium | Both browsers end a connection that the peer closes with a FIN and no close frame with `close` 1006 and no `error` (HTML fires `error` only when the user agent fails the connection); Chromium does the same for an RST, Firefox adds an `error` |

use crate::scenario::{tags, Scenario};
use crate::trace::{diff, DiffLine, Trace};

/// Where the reference comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Both browsers recorded this trace.
    Both,
    /// The browsers disagree; this rule picked one of them.
    Rule {
        browser: &'static str,
        rule: &'static str,
    },
}

/// One rule of the table above.
pub struct Rule {
    pub tag: &'static str,
    pub browser: &'static str,
    pub why: &'static str,
    /// The disagreement the rule settles; it applies to no other.
    pub shape: Shape,
}

/// What the two traces must look like for a rule to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Chromium failed the connection (`error`).
    ChromiumFails,
    /// Chromium failed the connection (`error`) and Firefox did not.
    OnlyChromiumFails,
    /// Firefox fired `error` and Chromium did not.
    OnlyFirefoxErrs,
    /// Firefox's close was clean and Chromium's was not.
    OnlyFirefoxClean,
    /// Only the peer's pongs differ.
    OnlyPongs,
}

pub const RULES: &[Rule] = &[
    Rule {
        tag: tags::FAIL,
        browser: "chromium",
        why: "RFC 6455 7.1.7: fail the connection on an invalid frame, with a Close frame",
        shape: Shape::ChromiumFails,
    },
    Rule {
        tag: tags::FRAMES_AFTER_CLOSE,
        browser: "firefox",
        why: "RFC 6455 1.4: data after a Close frame is discarded",
        shape: Shape::OnlyChromiumFails,
    },
    Rule {
        tag: tags::PING_AFTER_CLIENT_CLOSE,
        browser: "firefox",
        why: "RFC 6455 5.5.2: pings are answered until a Close frame is received",
        shape: Shape::OnlyPongs,
    },
    Rule {
        tag: tags::RST_AFTER_CLOSE,
        browser: "firefox",
        why: "RFC 6455 7.1.4: a reset after the closing handshake is clean",
        shape: Shape::OnlyFirefoxClean,
    },
    Rule {
        tag: tags::RST_WITHOUT_CLOSE,
        browser: "chromium",
        why: "an RST without a close frame ends like a FIN: close 1006, no error",
        shape: Shape::OnlyFirefoxErrs,
    },
];

fn errs(t: &Trace) -> bool {
    t.events.iter().any(|e| e == "error@3")
}

fn clean(t: &Trace) -> bool {
    t.events
        .iter()
        .any(|e| e.starts_with("close@") && e.ends_with(" true"))
}

impl Shape {
    fn fits(self, chromium: &Trace, firefox: &Trace) -> bool {
        match self {
            Shape::ChromiumFails => errs(chromium),
            Shape::OnlyChromiumFails => errs(chromium) && !errs(firefox),
            Shape::OnlyFirefoxErrs => errs(firefox) && !errs(chromium),
            Shape::OnlyFirefoxClean => clean(firefox) && !clean(chromium),
            Shape::OnlyPongs => diff(&chromium.lines(), &firefox.lines())
                .iter()
                .all(|l| match l {
                    DiffLine::Same(_) => true,
                    DiffLine::Expected(s) | DiffLine::Actual(s) => s.starts_with("peer: pongs:"),
                }),
        }
    }
}

/// The reference trace for `scenario` from the two browsers' traces, or why there is none.
pub fn reference(
    scenario: &Scenario,
    chromium: &Trace,
    firefox: &Trace,
) -> Result<(Trace, Source), String> {
    if chromium == firefox {
        return Ok((chromium.clone(), Source::Both));
    }
    let applying: Vec<&Rule> = RULES
        .iter()
        .filter(|r| scenario.tags.contains(&r.tag) && r.shape.fits(chromium, firefox))
        .collect();
    let Some(first) = applying.first() else {
        return Err(format!(
            "Chromium and Firefox disagree and no rule of anyws_conformance::expect covers this scenario (tags {:?})",
            scenario.tags
        ));
    };
    if applying.iter().any(|r| r.browser != first.browser) {
        let names: Vec<String> = applying
            .iter()
            .map(|r| format!("{} ({})", r.tag, r.browser))
            .collect();
        return Err(format!(
            "Chromium and Firefox disagree and the rules conflict: {}",
            names.join(", ")
        ));
    }
    let trace = if first.browser == "chromium" {
        chromium
    } else {
        firefox
    };
    Ok((
        trace.clone(),
        Source::Rule {
            browser: first.browser,
            rule: first.why,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(events: &[&str], peer: &[&str]) -> Trace {
        Trace {
            events: events.iter().map(|s| s.to_string()).collect(),
            peer: Some(peer.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn tagged(tags: Vec<&'static str>) -> Scenario {
        Scenario {
            tags,
            ..crate::generate(0)
        }
    }

    #[test]
    fn rules_settle_only_the_disagreement_they_are_for() {
        let chromium = t(
            &["open@1", "error@3", "close@3 1006 \"\" false"],
            &["close 1002 \"x\""],
        );
        let firefox = t(&["open@1", "error@3", "close@3 1006 \"\" false"], &[]);
        let (r, source) = reference(&tagged(vec![tags::FAIL]), &chromium, &firefox).unwrap();
        assert_eq!(r, chromium);
        assert!(matches!(
            source,
            Source::Rule {
                browser: "chromium",
                ..
            }
        ));
        // Not covered by a tag: no reference.
        assert!(reference(&tagged(vec![]), &chromium, &firefox).is_err());
        // The tag is there but the traces differ otherwise (nobody failed).
        let a = t(&["open@1", "close@3 0 \"\" true"], &["close 0 \"\""]);
        let b = t(&["open@1", "close@3 0 \"\" true"], &["close (no code)"]);
        assert!(reference(&tagged(vec![tags::FAIL]), &a, &b).is_err());
        // Pongs only.
        let a = t(&["open@1"], &["close 1000 \"\""]);
        let b = t(&["open@1"], &["close 1000 \"\"", "pongs: 3/00000000"]);
        let (r, _) = reference(&tagged(vec![tags::PING_AFTER_CLIENT_CLOSE]), &a, &b).unwrap();
        assert_eq!(r, b);
        // Rules that pick different browsers: no reference.
        let c = t(&["open@1", "error@3", "close@3 1006 \"\" false"], &[]);
        let f = t(&["open@1", "close@3 1000 \"\" true"], &[]);
        let both = tagged(vec![tags::FAIL, tags::RST_AFTER_CLOSE]);
        assert!(reference(&both, &c, &f).unwrap_err().contains("conflict"));
    }
}
