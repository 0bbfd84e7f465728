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

/// Where anyws native differs from its reference on purpose or by a documented limit: each
/// is a row of the README's "Target differences" table. The runner accepts a native trace
/// that differs from the reference only in one of these ways, and counts it by name.
pub mod native {
    use super::*;

    /// A known difference: its name (as in the README) and why.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Known {
        pub name: &'static str,
        pub why: &'static str,
    }

    /// The close frame a client sends when it fails the connection carries the
    /// implementation's own reason text (RFC 6455 7.1.7 leaves it free): only the code is
    /// compared.
    pub const FAIL_REASON: Known = Known {
        name: "reason of the close frame sent when failing",
        why: "the reason text is the implementation's own; the code is compared",
    };
    /// tungstenite does not answer pings that arrive after its close frame went out (as
    /// Chromium); Firefox, the reference there, does.
    pub const PINGS_AFTER_CLOSE: Known = Known {
        name: "pings after our close frame",
        why: "tungstenite 0.30 answers no ping once its close frame is out (as Chromium)",
    };
    /// tungstenite refuses close codes 0..=999, 1004, 1014, 1016..=2999 and 5000 and up from
    /// the peer: it answers 1002 and reports the close as 1002 "Protocol violation"; browsers
    /// accept the peer's code.
    pub const CLOSE_CODES: Known = Known {
        name: "close codes tungstenite refuses",
        why: "tungstenite 0.30 replaces a peer's close code it calls bad or reserved with 1002",
    };
    /// A frame length in a longer encoding than needed (RFC 6455 5.2: a protocol error): both
    /// browsers fail the connection; tungstenite accepts the frame.
    pub const NON_MINIMAL_LENGTH: Known = Known {
        name: "non-minimal frame lengths",
        why: "tungstenite 0.30 accepts a length in a longer encoding than needed",
    };
    /// Invalid UTF-8 in a text message: anyws fails the connection with 1007, as RFC 6455
    /// 7.4.1 says (and Autobahn checks); Chromium, the reference there, sends 1002.
    pub const INVALID_UTF8_CODE: Known = Known {
        name: "close code for invalid UTF-8",
        why: "1007 (RFC 6455 7.4.1) where Chromium sends 1002",
    };

    /// All of them, for reports.
    pub const ALL: &[Known] = &[
        FAIL_REASON,
        PINGS_AFTER_CLOSE,
        CLOSE_CODES,
        NON_MINIMAL_LENGTH,
        INVALID_UTF8_CODE,
    ];

    fn failed(t: &Trace) -> bool {
        t.events.iter().any(|e| e.starts_with("error@"))
    }

    /// `peer: close C "R"` → `close C`, in the peer's lines.
    fn without_fail_reason(t: &Trace) -> Trace {
        let mut t = t.clone();
        if let Some(peer) = &mut t.peer {
            for line in peer.iter_mut() {
                if let Some(rest) = line.strip_prefix("close ") {
                    let code = rest.split(' ').next().unwrap_or("").to_owned();
                    *line = format!("close {code}");
                }
            }
        }
        t
    }

    fn without_pongs(t: &Trace) -> Trace {
        let mut t = t.clone();
        if let Some(peer) = &mut t.peer {
            peer.retain(|l| !l.starts_with("pongs"));
        }
        t
    }

    /// The codes tungstenite calls `Bad` or `Reserved` (which browsers accept).
    fn refused_by_tungstenite(code: u16) -> bool {
        matches!(code, 0..=999 | 1004 | 1014 | 1016..=2999) || code >= 5000
    }

    /// The reference as tungstenite reports a refused close code.
    fn with_refused_codes(t: &Trace) -> Option<Trace> {
        let mut t = t.clone();
        let mut changed = false;
        let rewrite = |line: &mut String, prefix: &str, changed: &mut bool| {
            let Some(rest) = line.strip_prefix(prefix) else {
                return;
            };
            let code: Option<u16> = rest.split(' ').next().and_then(|c| c.parse().ok());
            if code.is_some_and(refused_by_tungstenite) {
                let clean = if prefix.starts_with("close@") {
                    " true"
                } else {
                    ""
                };
                *line = format!("{prefix}1002 \"Protocol violation\"{clean}");
                *changed = true;
            }
        };
        for e in t.events.iter_mut() {
            rewrite(e, "close@3 ", &mut changed);
        }
        if let Some(peer) = &mut t.peer {
            for l in peer.iter_mut() {
                rewrite(l, "close ", &mut changed);
            }
        }
        changed.then_some(t)
    }

    /// Whether `actual` differs from `expected` only in a known way; which one.
    pub fn known_difference(
        scenario: &Scenario,
        firefox: &Trace,
        expected: &Trace,
        actual: &Trace,
    ) -> Option<Known> {
        let same = |e: &Trace, a: &Trace| e.lines() == a.lines();
        if failed(expected) && same(&without_fail_reason(expected), &without_fail_reason(actual)) {
            return Some(FAIL_REASON);
        }
        if scenario.tags.contains(&tags::PING_AFTER_CLIENT_CLOSE)
            && same(&without_pongs(expected), &without_pongs(actual))
        {
            return Some(PINGS_AFTER_CLOSE);
        }
        if with_refused_codes(expected).is_some_and(|e| same(&e, actual)) {
            return Some(CLOSE_CODES);
        }
        let _ = firefox;
        if scenario.kind.contains("16-bit length for a 5-byte text") && !failed(actual) {
            return Some(NON_MINIMAL_LENGTH);
        }
        let utf8 = ["invalid UTF-8", "not UTF-8", "truncated UTF-8"]
            .iter()
            .any(|k| scenario.kind.contains(k));
        if utf8 && failed(expected) {
            let as_1007 = |t: &Trace| {
                let mut t = without_fail_reason(t);
                if let Some(peer) = &mut t.peer {
                    for l in peer.iter_mut() {
                        if l == "close 1002" {
                            *l = "close 1007".into();
                        }
                    }
                }
                t
            };
            if same(&as_1007(expected), &without_fail_reason(actual)) {
                return Some(INVALID_UTF8_CODE);
            }
        }
        None
    }
}
