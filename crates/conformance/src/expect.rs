//! What anyws native is held to: the browsers' common behaviour, or, where Chromium and
//! Firefox disagree, the behaviour the standards ask for, chosen by a documented rule.
//!
//! A rule applies to the scenarios with one of the [`tags`] (features
//! of the peer's behaviour that the browsers are known to treat differently) and picks one
//! browser's whole trace. When the browsers disagree on a scenario that no rule covers, or
//! that rules picking different browsers cover, there is no reference: the native check
//! reports that, so a new kind of disagreement is looked at rather than guessed.
//!
//! | tag | reference | why |
//! |---|---|---|
//! | `fail` | Chromium | RFC 6455 5.1, 5.5.1, 7.1.7: a client fails the connection on an invalid frame (a masked frame, a 1-byte close payload, a bad close code, ...) and SHOULD send a Close frame (1002 or 1007) first. Chromium does both; Firefox accepts some of these frames and closes the TCP connection without a Close frame |
//! | `frames-after-close` | Firefox | RFC 6455 1.4: after receiving a Close frame a peer discards any further data. Firefox does; Chromium fails the connection on a data frame or a ping after the close frame |
//! | `ping-after-client-close` | Firefox | RFC 6455 5.5.2: a Ping is answered with a Pong unless a Close frame was received. Firefox answers while CLOSING; Chromium does not (only the peer's pongs may differ for this rule to apply) |
//! | `rst-after-close` | Firefox | RFC 6455 7.1.4: a connection reset after a complete closing handshake is still clean. Chromium reports it as unclean (an `error`, or `wasClean` false) |
//! | `rst-without-close` | Chromium | Both browsers end a connection that the peer closes with a FIN and no close frame with `close` 1006 and no `error` (HTML fires `error` only when the user agent fails the connection); Chromium does the same for an RST, Firefox adds an `error` |

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
    /// The rule applies only if the traces differ in the peer's pongs alone.
    pub only_pongs: bool,
}

pub const RULES: &[Rule] = &[
    Rule {
        tag: tags::FAIL,
        browser: "chromium",
        why: "RFC 6455 7.1.7: fail the connection on an invalid frame, with a Close frame",
        only_pongs: false,
    },
    Rule {
        tag: tags::FRAMES_AFTER_CLOSE,
        browser: "firefox",
        why: "RFC 6455 1.4: data after a Close frame is discarded",
        only_pongs: false,
    },
    Rule {
        tag: tags::PING_AFTER_CLIENT_CLOSE,
        browser: "firefox",
        why: "RFC 6455 5.5.2: pings are answered until a Close frame is received",
        only_pongs: true,
    },
    Rule {
        tag: tags::RST_AFTER_CLOSE,
        browser: "firefox",
        why: "RFC 6455 7.1.4: a reset after the closing handshake is clean",
        only_pongs: false,
    },
    Rule {
        tag: tags::RST_WITHOUT_CLOSE,
        browser: "chromium",
        why: "an RST without a close frame ends like a FIN: close 1006, no error",
        only_pongs: false,
    },
];

fn only_pongs_differ(chromium: &Trace, firefox: &Trace) -> bool {
    diff(&chromium.lines(), &firefox.lines())
        .iter()
        .all(|l| match l {
            DiffLine::Same(_) => true,
            DiffLine::Expected(s) | DiffLine::Actual(s) => s.starts_with("peer: pongs:"),
        })
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
    let pongs = only_pongs_differ(chromium, firefox);
    let applying: Vec<&Rule> = RULES
        .iter()
        .filter(|r| scenario.tags.contains(&r.tag) && (!r.only_pongs || pongs))
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
