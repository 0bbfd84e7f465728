//! Scenarios and their seeded generator.
//!
//! A [`Scenario`] is a peer [`Script`] and a [`ClientPlan`] made to fit each other so that the
//! trace cannot depend on timing: whenever the client reacts to something (on open, or after
//! its k-th message), that is the last thing the peer sent, and the peer's next step waits
//! for the reaction (the client's messages, or its close frame) before it sends anything else.
//! Client actions that put nothing on the wire (a close that throws, a busy handler) need no
//! wait. Endings that could lose bytes in flight (an RST) come only when the client owes the
//! peer nothing (no ping since the last wait).

use crate::rng::Rng;
use crate::script::{op, text_content, Frame, LenMode, Payload, Script, Step};
use serde_json::{json, Value};

/// Bumped whenever the generator's output for a seed changes, so golden traces recorded with
/// another generator are refused instead of compared.
pub const GENERATOR_VERSION: u32 = 3;

/// What the client does at one point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `send(data)`: the text or binary content `seed`, `len` bytes (see [`crate::script`]).
    Send { binary: bool, seed: u32, len: u32 },
    /// `close()`.
    Close,
    /// `close(code)` (`reason: None`) or `close(code, reason)`.
    CloseWith { code: u16, reason: Option<String> },
    /// The handler keeps the thread busy this long (a slow handler).
    Busy(u32),
}

impl Action {
    /// How the action appears in traces: `send text 5`, `close(4000, "bye")`, ...
    pub fn describe(&self) -> String {
        match self {
            Action::Send { binary, len, .. } => {
                format!("send {} {len}", if *binary { "binary" } else { "text" })
            }
            Action::Close => "close()".into(),
            Action::CloseWith { code, reason: None } => format!("close({code})"),
            Action::CloseWith {
                code,
                reason: Some(r),
            } if r.len() > 24 => {
                format!("close({code}, <{} B>)", r.len())
            }
            Action::CloseWith {
                code,
                reason: Some(r),
            } => format!("close({code}, {r:?})"),
            Action::Busy(ms) => format!("busy {ms} ms"),
        }
    }

    /// The payload of a send.
    pub fn send_data(&self) -> Option<(bool, Vec<u8>)> {
        match self {
            Action::Send {
                binary: false,
                seed,
                len,
            } => Some((false, text_content(*seed, *len).into_bytes())),
            Action::Send {
                binary: true,
                seed,
                len,
            } => Some((true, crate::script::binary_content(*seed, *len))),
            _ => None,
        }
    }

    /// Whether the browser accepts these close arguments (the spec: 1000 or 3000..=4999, and
    /// a reason of at most 123 bytes of UTF-8).
    fn is_valid_close(&self) -> bool {
        match self {
            Action::Close => true,
            Action::CloseWith { code, reason } => {
                (*code == 1000 || (3000..=4999).contains(code))
                    && reason.as_ref().is_none_or(|r| r.len() <= 123)
            }
            _ => false,
        }
    }
}

/// What the client does, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientPlan {
    /// `binaryType = "arraybuffer"` (else the default, `"blob"`).
    pub arraybuffer: bool,
    /// The client does not read: no `message` listener (and anyws's `Stream` is never
    /// polled). The peer then sends less than anyws's receive high-water mark in all, whose
    /// effect is a documented target difference (README: receive backpressure).
    pub not_reading: bool,
    /// Right after the constructor (readyState CONNECTING).
    pub on_create: Vec<Action>,
    /// In the `open` handler.
    pub on_open: Vec<Action>,
    /// In the `message` handler of the k-th message (1-based), in increasing k.
    pub on_message: Vec<(u32, Vec<Action>)>,
}

impl ClientPlan {
    /// The actions for the k-th message.
    pub fn on_message(&self, k: u32) -> &[Action] {
        self.on_message
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, a)| a.as_slice())
            .unwrap_or(&[])
    }

    /// The plan for the JavaScript client, as JSON: each action with its description (so the
    /// trace lines are the same bytes on every runtime) and its data.
    pub fn to_js(&self) -> String {
        let action = |a: &Action| -> Value {
            let d = a.describe();
            match a {
                Action::Send { binary: false, .. } => {
                    let (_, bytes) = a.send_data().expect("a send");
                    json!({"d": d, "k": "text", "v": String::from_utf8(bytes).expect("UTF-8")})
                }
                Action::Send { binary: true, .. } => {
                    let (_, bytes) = a.send_data().expect("a send");
                    json!({"d": d, "k": "binary", "v": crate::script::hex(&bytes)})
                }
                Action::Close => json!({"d": d, "k": "close"}),
                Action::CloseWith { code, reason: None } => {
                    json!({"d": d, "k": "close", "code": code})
                }
                Action::CloseWith {
                    code,
                    reason: Some(r),
                } => {
                    json!({"d": d, "k": "close", "code": code, "reason": r})
                }
                Action::Busy(ms) => json!({"d": d, "k": "busy", "ms": ms}),
            }
        };
        let list = |v: &[Action]| Value::Array(v.iter().map(action).collect());
        let mut on_message = serde_json::Map::new();
        for (k, actions) in &self.on_message {
            on_message.insert(k.to_string(), list(actions));
        }
        json!({
            "listen": !self.not_reading,
            "binaryType": if self.arraybuffer { "arraybuffer" } else { "blob" },
            "create": list(&self.on_create),
            "open": list(&self.on_open),
            "message": on_message,
        })
        .to_string()
    }

    pub fn describe(&self) -> Vec<String> {
        let list = |v: &[Action]| {
            v.iter()
                .map(Action::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut out = vec![format!(
            "binaryType {}",
            if self.arraybuffer {
                "arraybuffer"
            } else {
                "blob"
            }
        )];
        if self.not_reading {
            out.push("not reading: no message listener".into());
        }
        if !self.on_create.is_empty() {
            out.push(format!("right after new(): {}", list(&self.on_create)));
        }
        if !self.on_open.is_empty() {
            out.push(format!("on open: {}", list(&self.on_open)));
        }
        for (k, a) in &self.on_message {
            out.push(format!("on message #{k}: {}", list(a)));
        }
        out
    }
}

/// One generated scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    /// What the scenario is about, for grouping: e.g. `server close: code+reason, FIN at once`.
    pub kind: String,
    pub client: ClientPlan,
    pub peer: Script,
    /// `false` when what the peer receives depends on timing (a close while CONNECTING can
    /// come before or after the handshake reached the peer): its log is then not compared.
    pub peer_observable: bool,
    /// Features of the peer's behaviour that the browsers are known to treat differently,
    /// for [`crate::expect`]: see [`tags`].
    pub tags: Vec<&'static str>,
}

/// The tags of [`Scenario::tags`].
pub mod tags {
    /// The peer sends a frame the client must fail the connection on.
    pub const FAIL: &str = "fail";
    /// The peer sends frames (data or pings) after its close frame.
    pub const FRAMES_AFTER_CLOSE: &str = "frames-after-close";
    /// The peer pings after it has the client's close frame, before answering it.
    pub const PING_AFTER_CLIENT_CLOSE: &str = "ping-after-client-close";
    /// The peer resets the TCP connection after the closing handshake.
    pub const RST_AFTER_CLOSE: &str = "rst-after-close";
    /// The peer resets the TCP connection without having sent a close frame.
    pub const RST_WITHOUT_CLOSE: &str = "rst-without-close";
}

impl Scenario {
    /// A hash of everything that makes the scenario, stored beside golden traces.
    pub fn fingerprint(&self) -> String {
        let text = format!(
            "{GENERATOR_VERSION}|{}|{}|{}",
            self.peer.encode(),
            self.client.to_js(),
            self.peer_observable
        );
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The path and query of the peer on the test server, for one run named `id`.
    pub fn path(&self, id: &str) -> String {
        format!("/script?id={id}&s={}", self.peer.encode())
    }

    /// Everything about the scenario, for people.
    pub fn describe(&self) -> String {
        let mut s = format!("seed {} ({})\n  client:\n", self.seed, self.kind);
        for line in self.client.describe() {
            s.push_str(&format!("    {line}\n"));
        }
        s.push_str("  peer:\n");
        for line in self.peer.describe() {
            s.push_str(&format!("    {line}\n"));
        }
        if !self.peer_observable {
            s.push_str("  (the peer's log is not compared: it depends on timing)\n");
        }
        s
    }
}

/// The scenario of `seed`.
pub fn generate(seed: u64) -> Scenario {
    let mut g = Gen {
        rng: Rng::new(seed),
        steps: Vec::new(),
        messages: 0,
        client_sent: 0,
        closing: None,
        content: (seed as u32).wrapping_mul(1000),
        waited: 0,
        pinged: false,
        unsynced: false,
        synced_once: false,
        kind: Vec::new(),
        tags: Vec::new(),
        server_closed: false,
        plan: ClientPlan::default(),
    };
    g.plan.arraybuffer = g.rng.chance(50);
    let observable = g.body();
    Scenario {
        seed,
        kind: g.kind.join(", "),
        client: g.plan,
        peer: Script(g.steps),
        peer_observable: observable,
        tags: g.tags,
    }
}

/// The client's close, as the generator knows it: `None` for `close()`.
type Closing = Option<(u16, Option<String>)>;

struct Gen {
    rng: Rng,
    steps: Vec<Step>,
    /// Data messages the peer has sent so far.
    messages: u32,
    /// Data messages the client has put on the wire so far.
    client_sent: u32,
    /// Set once the client called a valid close.
    closing: Option<Closing>,
    /// The next content seed.
    content: u32,
    /// The client data messages the peer has waited for so far.
    waited: u32,
    /// A ping went out (its pong may be in flight at any time, so no RST).
    pinged: bool,
    /// The peer wrote frames since it last waited for the client.
    unsynced: bool,
    /// The peer has waited for the client at least once (so the client had its `open`).
    synced_once: bool,
    kind: Vec<String>,
    tags: Vec<&'static str>,
    /// The peer has sent its close frame.
    server_closed: bool,
    plan: ClientPlan,
}

const SERVER_CODES: [u16; 14] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
];
const BAD_CODES: [u16; 12] = [
    0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
];

impl Gen {
    fn next_content(&mut self) -> u32 {
        self.content = self.content.wrapping_add(1);
        self.content
    }

    fn frame(&mut self, b0: u8, payload: Payload) {
        self.frame_with(b0, false, LenMode::Minimal, payload);
    }

    fn frame_with(&mut self, b0: u8, masked: bool, len: LenMode, payload: Payload) {
        self.steps.push(Step::Frame(Frame {
            b0,
            masked,
            len,
            payload,
        }));
        self.unsynced = true;
    }

    fn wait(&mut self, step: Step) {
        self.steps.push(step);
        self.unsynced = false;
        self.synced_once = true;
    }

    /// Before the peer ends the connection (a close frame, an invalid frame, FIN or RST),
    /// the client must have processed everything before it:
    /// - Firefox fails a connection whose failure arrives with the handshake response
    ///   without firing `open` at all, or fires it, depending on how the bytes were read;
    /// - Chromium drops the frames it read in the same chunk as an invalid one, so whether
    ///   the messages before it are delivered (and pings answered) depends on the chunking.
    ///
    /// So the client acknowledges the last message (or the open) with a small send, and the
    /// peer waits for it: before an invalid frame (`failure`) whenever the peer wrote since
    /// it last waited, before the end of the TCP connection only if it never waited.
    fn settle(&mut self, failure: bool) {
        if self.synced_once && !(failure && self.unsynced) {
            return;
        }
        let ack = Action::Send {
            binary: false,
            seed: self.next_content(),
            len: 3,
        };
        if self.unsynced {
            let last = self.messages;
            assert!(last > 0, "rounds end with a data message");
            match self.plan.on_message.last_mut() {
                Some((k, actions)) if *k == last => actions.push(ack.clone()),
                _ => self.plan.on_message.push((last, vec![ack.clone()])),
            }
        } else {
            self.plan.on_open.push(ack.clone());
        }
        self.account(&[ack]);
        self.kind_once("ack before the end");
        self.sync();
    }

    fn literal(&mut self, b0: u8, bytes: &[u8]) {
        self.frame(b0, Payload::Literal(bytes.to_vec()));
    }

    /// The whole scenario; returns whether the peer's log is observable.
    fn body(&mut self) -> bool {
        if self.rng.chance(6) {
            // Actions while CONNECTING.
            let a = self.rng.weighted(&[
                (
                    3,
                    Action::Send {
                        binary: false,
                        seed: 1,
                        len: 3,
                    },
                ),
                (3, Action::Close),
                (
                    2,
                    Action::CloseWith {
                        code: 4000,
                        reason: Some("early".into()),
                    },
                ),
                (
                    2,
                    Action::CloseWith {
                        code: 1001,
                        reason: None,
                    },
                ),
            ]);
            let closes = a.is_valid_close();
            self.kind.push(format!("CONNECTING: {}", a.describe()));
            self.plan.on_create.push(a);
            if closes {
                self.wait(Step::WaitClose);
                return false;
            }
        }
        self.plan.not_reading = self.rng.chance(8);
        if self.plan.not_reading {
            self.kind.push("not reading".into());
        }
        let open = self.actions(true);
        self.account(&open);
        self.plan.on_open = open.clone();
        if !open.is_empty() {
            self.kind.push(format!("on open: {}", brief(&open)));
        }
        if self.sync() {
            self.client_closed_ending();
            return true;
        }
        if self.plan.not_reading && !self.synced_once {
            // No message can be acknowledged later: acknowledge the open now.
            self.settle(false);
        }
        let rounds = self.rng.range(0, 3);
        for _ in 0..rounds {
            if self.round(false) {
                self.client_closed_ending();
                return true;
            }
        }
        // Without a message listener the client cannot react to messages (no client close
        // after the k-th) nor acknowledge the last one before an invalid frame.
        let (client, invalid) = if self.plan.not_reading {
            (0, 0)
        } else {
            (17, 30)
        };
        match self
            .rng
            .weighted(&[(38, 0), (client, 1), (15, 2), (invalid, 3)])
        {
            0 => self.server_close_ending(),
            1 => {
                // One more round whose reaction closes.
                self.round(true);
                self.client_closed_ending();
            }
            2 => self.drop_ending(),
            _ => self.invalid_ending(),
        }
        true
    }

    /// After the client acted: wait for what it put on the wire. Returns `true` if it closed.
    fn sync(&mut self) -> bool {
        if self.closing.is_some() {
            self.wait(Step::WaitClose);
            true
        } else {
            if self.client_sent > self.waited {
                self.wait(Step::WaitMessages(self.client_sent));
                self.waited = self.client_sent;
            }
            false
        }
    }

    /// Client actions for one handler; with `allow_close` they may close.
    fn actions(&mut self, allow_close: bool) -> Vec<Action> {
        if self.rng.chance(45) {
            return Vec::new();
        }
        let n = self.rng.range(1, 3);
        let mut out = Vec::new();
        for _ in 0..n {
            let which = self.rng.weighted(&[
                (55, 0),
                (if allow_close { 18 } else { 0 }, 1),
                (8, 2),
                (7, 3),
            ]);
            out.push(match which {
                0 => self.send_action(),
                1 => self.close_action(),
                2 => self.invalid_close_action(),
                _ => Action::Busy(self.rng.range(1, 15)),
            });
        }
        out
    }

    /// Notes what the actions put on the wire, in order.
    fn account(&mut self, actions: &[Action]) {
        for a in actions {
            self.account_one(a);
        }
    }

    fn account_one(&mut self, a: &Action) {
        match a {
            Action::Send { .. } if self.closing.is_none() => self.client_sent += 1,
            Action::Close if self.closing.is_none() => self.closing = Some(None),
            Action::CloseWith { code, reason } if self.closing.is_none() && a.is_valid_close() => {
                self.closing = Some(Some((*code, reason.clone())))
            }
            _ => {}
        }
    }

    fn send_action(&mut self) -> Action {
        let (small, medium) = (self.rng.range(1, 20), self.rng.range(127, 3000));
        let len = self.rng.weighted(&[
            (10, 0),
            (40, small),
            (5, 125),
            (5, 126),
            (15, medium),
            (3, 65535),
            (3, 65536),
            (2, 100_000),
        ]);
        Action::Send {
            binary: self.rng.chance(40),
            seed: self.next_content(),
            len,
        }
    }

    fn close_action(&mut self) -> Action {
        let code = self.rng.pick(&[3000, 3999, 4000, 4321, 4999]);
        let long = "r".repeat(123);
        let reason = self.rng.pick(&["", "bye", "ciao ✓", &long]);
        self.rng.weighted(&[
            (25, Action::Close),
            (
                15,
                Action::CloseWith {
                    code: 1000,
                    reason: None,
                },
            ),
            (
                15,
                Action::CloseWith {
                    code: 1000,
                    reason: Some("done".into()),
                },
            ),
            (
                45,
                Action::CloseWith {
                    code,
                    reason: Some(reason.to_owned()),
                },
            ),
        ])
    }

    fn invalid_close_action(&mut self) -> Action {
        let code = self.rng.pick(&[0, 1001, 1005, 2999, 5000]);
        self.rng.weighted(&[
            (3, Action::CloseWith { code, reason: None }),
            (
                1,
                Action::CloseWith {
                    code: 1000,
                    reason: Some("x".repeat(124)),
                },
            ),
            (
                1,
                Action::CloseWith {
                    code: 4000,
                    reason: Some("é".repeat(62)),
                },
            ),
        ])
    }

    /// One round: some data messages (maybe fragmented, with pings between), and maybe a
    /// reaction of the client to the last of them. Returns `true` if the client closed.
    fn round(&mut self, must_close: bool) -> bool {
        let n = self.rng.range(1, 3);
        for _ in 0..n {
            if self.rng.chance(10) {
                let ms = self.rng.range(1, 10);
                self.steps.push(Step::Delay(ms));
            }
            if self.rng.chance(12) {
                self.ping();
            }
            if self.rng.chance(5) {
                let len = self.rng.pick(&[0, 4]);
                self.literal(op::FIN | op::PONG, &b"pong"[..len]);
                self.kind_once("unsolicited pong");
            }
            self.data_message();
        }
        let reaction = if self.plan.not_reading {
            Vec::new()
        } else if must_close {
            let mut a = if self.rng.chance(40) {
                self.actions(false)
            } else {
                Vec::new()
            };
            a.push(self.close_action());
            self.account(&a);
            a
        } else if self.rng.chance(45) {
            let a = self.actions(true);
            self.account(&a);
            a
        } else {
            Vec::new()
        };
        if !reaction.is_empty() {
            self.kind.push(format!(
                "on message #{}: {}",
                self.messages,
                brief(&reaction)
            ));
            self.plan.on_message.push((self.messages, reaction));
        }
        self.sync()
    }

    fn ping(&mut self) {
        let len = self.rng.pick(&[0u32, 3, 125]);
        let seed = self.next_content();
        self.frame(
            op::FIN | op::PING,
            Payload::Binary {
                seed,
                len,
                start: 0,
                end: len,
            },
        );
        self.pinged = true;
        self.kind_once("pings");
        if self.server_closed {
            self.tag(tags::FRAMES_AFTER_CLOSE);
        } else if self.closing.is_some() {
            self.tag(tags::PING_AFTER_CLIENT_CLOSE);
        }
    }

    fn tag(&mut self, t: &'static str) {
        if !self.tags.contains(&t) {
            self.tags.push(t);
        }
    }

    fn kind_once(&mut self, k: &str) {
        if !self.kind.iter().any(|x| x == k) {
            self.kind.push(k.into());
        }
    }

    /// A data message from the peer: text or binary, whole or in fragments with control
    /// frames between them.
    fn data_message(&mut self) {
        let binary = self.rng.chance(40);
        let (small, medium, large) = (
            self.rng.range(1, 24),
            self.rng.range(127, 3000),
            self.rng.range(70_000, 130_000),
        );
        let len = self.rng.weighted(&[
            (8, 0),
            (40, small),
            (5, 125),
            (5, 126),
            (20, medium),
            (2, 65535),
            (3, 65536),
            (2, large),
        ]);
        // Not reading: well under anyws's 1 MiB receive high-water mark in all.
        let len = if self.plan.not_reading {
            len.min(3000)
        } else {
            len
        };
        let seed = self.next_content();
        let frames = if len > 0 && self.rng.chance(35) {
            self.rng.range(2, 5)
        } else {
            1
        };
        let mut cuts: Vec<u32> = (1..frames).map(|_| self.rng.range(0, len)).collect();
        cuts.sort_unstable();
        let mut bounds = vec![0];
        bounds.extend(cuts);
        bounds.push(len);
        let opcode = if binary { op::BINARY } else { op::TEXT };
        if frames > 1 {
            self.kind_once(if binary {
                "fragmented binary"
            } else {
                "fragmented text"
            });
        }
        for (i, w) in bounds.windows(2).enumerate() {
            let fin = if i + 1 == frames as usize { op::FIN } else { 0 };
            let code = if i == 0 { opcode } else { op::CONTINUATION };
            let payload = if binary {
                Payload::Binary {
                    seed,
                    len,
                    start: w[0],
                    end: w[1],
                }
            } else {
                Payload::Text {
                    seed,
                    len,
                    start: w[0],
                    end: w[1],
                }
            };
            self.frame(fin | code, payload);
            if fin == 0 && self.rng.chance(25) {
                self.ping();
            }
        }
        self.messages += 1;
    }

    /// The peer closes first.
    fn server_close_ending(&mut self) {
        let code = self.rng.pick(&SERVER_CODES);
        let reason = self.rng.pick(&[
            "",
            "bye",
            "ciao ✓",
            "bye bye bye bye bye bye bye bye bye bye",
        ]);
        let max = "m".repeat(123);
        let (payload, what) = self.rng.weighted(&[
            (15, (Vec::new(), "no code".to_owned())),
            (25, (close_payload(code, ""), format!("{code}"))),
            (
                45,
                (close_payload(code, reason), format!("{code} with reason")),
            ),
            (
                5,
                (
                    close_payload(4000, &max),
                    "4000 with a 123-byte reason".to_owned(),
                ),
            ),
        ]);
        self.literal(op::FIN | op::CLOSE, &payload);
        self.server_closed = true;
        // No "FIN at once" (the close frame and the FIN read together): whether Firefox
        // answers the close first, and so `wasClean`, depends on how it reads them.
        let then = self
            .rng
            .weighted(&[(60, 0), (12, 2), (8, 3), (12, 4), (8, 5)]);
        let how = match then {
            0 => {
                self.wait(Step::WaitClose);
                if self.rng.chance(40) {
                    let ms = self.rng.pick(&[1, 5, 15]);
                    self.steps.push(Step::Delay(ms));
                }
                "FIN after the client's close"
            }
            2 => {
                self.data_message();
                self.messages -= 1;
                self.tag(tags::FRAMES_AFTER_CLOSE);
                self.wait(Step::WaitClose);
                "a message after the close frame, FIN after the client's close"
            }
            3 => {
                self.ping();
                self.wait(Step::WaitClose);
                "a ping after the close frame, FIN after the client's close"
            }
            4 => {
                self.wait(Step::WaitClose);
                self.steps.push(Step::Reset);
                self.tag(tags::RST_AFTER_CLOSE);
                "RST after the client's close"
            }
            _ => {
                self.wait(Step::WaitClose);
                self.steps.push(Step::Delay(2));
                self.literal(op::FIN | op::TEXT, b"late");
                self.tag(tags::FRAMES_AFTER_CLOSE);
                "a message after the closing handshake, then FIN"
            }
        };
        self.kind.push(format!("server close {what}, {how}"));
        self.end_with(Step::Shutdown);
    }

    fn end_with(&mut self, step: Step) {
        if !matches!(self.steps.last(), Some(Step::Reset)) {
            self.steps.push(step);
        }
    }

    /// The client closed and the peer has its close frame (the last step waited for it).
    fn client_closed_ending(&mut self) {
        let closing = self.closing.clone().expect("the client closed");
        // At most one extra: an invalid frame read in one chunk with a ping or a message
        // would make Chromium's handling of those depend on chunking.
        let extra = match self.rng.weighted(&[(72, 0), (15, 1), (8, 2), (5, 3)]) {
            1 => {
                self.data_message();
                self.messages -= 1;
                Some("a message")
            }
            2 => {
                self.ping();
                Some("a ping")
            }
            3 => {
                self.literal(op::FIN | 0x3, b"bad");
                self.tag(tags::FAIL);
                Some("a frame with opcode 3")
            }
            _ => None,
        };
        let echo = match &closing {
            None => Vec::new(),
            Some((code, reason)) => close_payload(*code, reason.as_deref().unwrap_or("")),
        };
        let reply = self
            .rng
            .weighted(&[(55, 0), (10, 1), (10, 2), (15, 3), (5, 4)]);
        let what = match reply {
            0 => {
                self.literal(op::FIN | op::CLOSE, &echo);
                "echoes the close"
            }
            1 => {
                self.literal(op::FIN | op::CLOSE, &[]);
                "answers a close without code"
            }
            2 => {
                let other = close_payload(self.rng.pick(&[1000, 1001, 4999]), "server");
                self.literal(op::FIN | op::CLOSE, &other);
                "answers with another code"
            }
            3 => "never answers the close",
            _ => {
                self.literal(op::FIN | op::CLOSE, &[0x03]);
                self.tag(tags::FAIL);
                "answers with a 1-byte close payload"
            }
        };
        if self.rng.chance(20) {
            let ms = self.rng.range(1, 15);
            self.steps.push(Step::Delay(ms));
        }
        // No RST behind a data message: the RST would discard what is not sent yet.
        let end = if !self.pinged && extra != Some("a message") && self.rng.chance(12) {
            self.tag(if reply == 3 {
                tags::RST_WITHOUT_CLOSE
            } else {
                tags::RST_AFTER_CLOSE
            });
            Step::Reset
        } else {
            Step::Shutdown
        };
        let extras = extra
            .map(|e| format!(" after sending {e}"))
            .unwrap_or_default();
        self.kind.push(format!(
            "peer {what}{extras}, {}",
            if end == Step::Reset { "RST" } else { "FIN" }
        ));
        self.steps.push(end);
    }

    /// The TCP connection ends without a close frame.
    fn drop_ending(&mut self) {
        self.settle(false);
        // An RST discards what the peer's kernel has not sent yet: only once the client has
        // acknowledged everything (it must be able to: a message listener).
        let rst_unsafe = self.pinged || (self.unsynced && self.plan.not_reading);
        if !rst_unsafe && self.rng.chance(30) {
            self.settle(true);
            self.kind.push("TCP RST without a close frame".into());
            self.tag(tags::RST_WITHOUT_CLOSE);
            self.steps.push(Step::Reset);
        } else if self.rng.chance(20) {
            self.kind.push("TCP FIN in the middle of a frame".into());
            let seed = self.next_content();
            self.frame_with(
                op::FIN | op::BINARY,
                false,
                LenMode::Declared(100),
                Payload::Binary {
                    seed,
                    len: 10,
                    start: 0,
                    end: 10,
                },
            );
            self.steps.push(Step::Shutdown);
        } else {
            self.kind.push("TCP FIN without a close frame".into());
            self.steps.push(Step::Shutdown);
        }
    }

    /// The peer breaks the protocol; the client must fail the connection.
    fn invalid_ending(&mut self) {
        self.settle(true);
        let what = self.rng.below(19);
        let seed = self.next_content();
        let label = match what {
            0 => {
                let opcode = self.rng.range(3, 7) as u8;
                self.literal(op::FIN | opcode, b"data");
                format!("reserved data opcode {opcode:#x}")
            }
            1 => {
                let opcode = self.rng.range(0xB, 0xF) as u8;
                self.literal(op::FIN | opcode, b"ctl");
                format!("reserved control opcode {opcode:#x}")
            }
            2 => {
                let bit = self.rng.pick(&[0x40u8, 0x20, 0x10]);
                self.literal(op::FIN | bit | op::TEXT, b"rsv");
                format!("RSV bit {bit:#x} on a text frame")
            }
            3 => {
                self.literal(op::FIN | 0x40 | op::PING, b"");
                "RSV1 on a ping".into()
            }
            4 => {
                let bad = self.rng.pick(&[
                    &[0xffu8][..],
                    &[0xc3, 0x28],
                    &[0xed, 0xa0, 0x80],
                    &[0xf4, 0x90, 0x80, 0x80],
                    &[0xc0, 0xaf],
                ]);
                let mut bytes = b"ok ".to_vec();
                bytes.extend_from_slice(bad);
                bytes.extend_from_slice(b" end");
                self.literal(op::FIN | op::TEXT, &bytes);
                format!(
                    "invalid UTF-8 ({}) in a text frame",
                    crate::script::hex(bad)
                )
            }
            5 => {
                self.literal(op::TEXT, b"abc \xe2\x9c");
                self.literal(op::FIN | op::CONTINUATION, b"");
                "text message ending in a truncated UTF-8 sequence (fragmented)".into()
            }
            6 => {
                self.literal(op::TEXT, b"abc \xe2");
                if self.rng.chance(50) {
                    self.ping();
                }
                self.literal(op::FIN | op::CONTINUATION, b"\x9c\x93 ok");
                // Valid: the character is split across fragments. Then a clean close.
                self.messages += 1;
                self.literal(op::FIN | op::CLOSE, &close_payload(1000, ""));
                self.wait(Step::WaitClose);
                "(valid) a UTF-8 character split across fragments, then close 1000".into()
            }
            7 => {
                self.frame(
                    op::FIN | op::PING,
                    Payload::Binary {
                        seed,
                        len: 126,
                        start: 0,
                        end: 126,
                    },
                );
                "ping with a 126-byte payload".into()
            }
            8 => {
                let mut p = close_payload(1000, "");
                p.extend(std::iter::repeat_n(b'x', 124));
                self.literal(op::FIN | op::CLOSE, &p);
                "close frame with a 126-byte payload".into()
            }
            9 => {
                self.literal(op::PING, b"frag");
                "ping without FIN (fragmented control frame)".into()
            }
            10 => {
                self.literal(op::FIN | op::CONTINUATION, b"orphan");
                "continuation frame with no message started".into()
            }
            11 => {
                self.literal(op::TEXT, b"first ");
                self.literal(op::FIN | op::TEXT, b"second");
                "new text frame while a fragmented message is open".into()
            }
            12 => {
                self.frame_with(
                    op::FIN | op::TEXT,
                    true,
                    LenMode::Minimal,
                    Payload::Literal(b"masked".to_vec()),
                );
                "masked frame from the server".into()
            }
            13 => {
                self.literal(op::FIN | op::CLOSE, &[0x03]);
                "close frame with a 1-byte payload".into()
            }
            14 => {
                let code = self.rng.pick(&BAD_CODES);
                self.literal(op::FIN | op::CLOSE, &close_payload(code, ""));
                format!("close frame with code {code}")
            }
            15 => {
                let mut p = close_payload(1000, "");
                p.extend_from_slice(&[0x62, 0xff, 0x65]);
                self.literal(op::FIN | op::CLOSE, &p);
                "close frame whose reason is not UTF-8".into()
            }
            16 => {
                self.frame_with(
                    op::FIN | op::BINARY,
                    false,
                    LenMode::Msb64,
                    Payload::Literal(b"big".to_vec()),
                );
                "64-bit length with the most significant bit set".into()
            }
            17 => {
                self.frame_with(
                    op::FIN | op::TEXT,
                    false,
                    LenMode::Force16,
                    Payload::Literal(b"short".to_vec()),
                );
                self.messages += 1;
                self.literal(op::FIN | op::CLOSE, &close_payload(1000, ""));
                "(questionable) 16-bit length for a 5-byte text, then close 1000".into()
            }
            _ => {
                self.literal(op::FIN | op::BINARY, b"\x01\x02");
                self.literal(op::FIN | op::CONTINUATION, b"\x03");
                "continuation frame after a finished binary message".into()
            }
        };
        if what != 6 {
            self.tag(tags::FAIL);
        }
        // A client that accepts the frame (Firefox takes a masked one) gets a close frame
        // next, so the peer need not wait for its timeout; one that failed ignores it.
        if !matches!(what, 6 | 8 | 13 | 14 | 15 | 17) {
            self.literal(op::FIN | op::CLOSE, &close_payload(1000, "after"));
        }
        self.kind.push(format!("invalid: {label}"));
        self.wait(Step::WaitClose);
        self.steps.push(Step::Shutdown);
    }
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

fn brief(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| match a {
            Action::Send { .. } => "send".to_owned(),
            Action::Busy(_) => "busy".to_owned(),
            other if other.is_valid_close() => other.describe(),
            other => format!("{} (invalid)", other.describe()),
        })
        .collect::<Vec<_>>()
        .join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let a: Vec<Scenario> = (0..200).map(generate).collect();
        let b: Vec<Scenario> = (0..200).map(generate).collect();
        assert_eq!(a, b);
        let kinds: std::collections::BTreeSet<&str> = a.iter().map(|s| s.kind.as_str()).collect();
        assert!(kinds.len() > 100, "{} kinds", kinds.len());
        for s in &a {
            let decoded = Script::decode(&s.peer.encode()).unwrap();
            assert_eq!(decoded, s.peer, "seed {}", s.seed);
        }
    }

    #[test]
    fn every_reaction_is_waited_for_before_the_peer_goes_on() {
        for seed in 0..2000 {
            let s = generate(seed);
            // Each reaction that sends or closes triggers on the last message before a wait.
            let mut sent = 0u32;
            let mut idx = 0usize;
            let steps = &s.peer.0;
            let mut seen = 0;
            for (k, actions) in &s.client.on_message {
                while seen < *k {
                    let Some(step) = steps.get(idx) else {
                        panic!("seed {seed}: no message {k}:\n{}", s.describe());
                    };
                    if let Step::Frame(f) = step {
                        let opcode = f.b0 & 0x0f;
                        if f.b0 & op::FIN != 0
                            && (opcode == op::TEXT
                                || opcode == op::BINARY
                                || opcode == op::CONTINUATION)
                        {
                            seen += 1;
                        }
                    }
                    idx += 1;
                }
                let puts_on_wire = actions
                    .iter()
                    .any(|a| matches!(a, Action::Send { .. }) || a.is_valid_close());
                if puts_on_wire {
                    sent += actions
                        .iter()
                        .filter(|a| matches!(a, Action::Send { .. }))
                        .count() as u32;
                    assert!(
                        matches!(
                            steps.get(idx),
                            Some(Step::WaitClose | Step::WaitMessages(_))
                        ),
                        "seed {seed}: reaction to message {k} is not waited for:\n{}",
                        s.describe()
                    );
                }
            }
            let _ = sent;
        }
    }
}
