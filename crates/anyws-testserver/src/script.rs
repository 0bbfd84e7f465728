//! `/script?id=ID&s=SCRIPT`: a peer that runs an [`anyws_conformance::Script`] byte for byte,
//! and `/script-log?id=ID`, which hands out what that peer received once its script is over.
//!
//! After the handshake the connection is raw: a reader task parses the client's frames
//! (unmasking them, reassembling fragmented messages, noting every protocol slip) into the
//! log, while the script writes frames, waits and ends the TCP connection. Any script runs to
//! its end: writes that fail are skipped, every wait gives up after
//! [`WAIT_TIMEOUT_MS`](anyws_conformance::script::WAIT_TIMEOUT_MS) and says so in the log.

use anyws_conformance::script::{summary, Script, Step, WAIT_TIMEOUT_MS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// The logs of scripted peers, by run id.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<LogsInner>);

#[derive(Default)]
struct LogsInner {
    map: Mutex<HashMap<String, Log>>,
    changed: Notify,
}

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    done: bool,
}

impl Logs {
    fn start(&self, id: &str) {
        self.0
            .map
            .lock()
            .unwrap()
            .insert(id.to_owned(), Log::default());
    }

    fn finish(&self, id: &str, lines: Vec<String>) {
        self.0
            .map
            .lock()
            .unwrap()
            .insert(id.to_owned(), Log { lines, done: true });
        self.0.changed.notify_waiters();
    }

    /// The log of `id` once its script is over (and forgets it), waiting up to `limit`.
    pub(crate) async fn take(&self, id: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.0.changed.notified();
            {
                let mut map = self.0.map.lock().unwrap();
                match map.get(id) {
                    Some(log) if log.done => {
                        return map
                            .remove(id)
                            .map(|l| l.lines.join("\n"))
                            .unwrap_or_default();
                    }
                    _ => {}
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let running = self.0.map.lock().unwrap().contains_key(id);
                return if running {
                    format!("(the script of {id} was still running after {limit:?})")
                } else {
                    format!("(no script ran as {id})")
                };
            }
        }
    }
}

/// What the reader has seen so far.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    pongs: Vec<String>,
    data_messages: u32,
    closed: bool,
    ended: bool,
}

struct Reader {
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Reader {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap());
        self.changed.notify_waiters();
    }

    /// Waits until `done(seen)` or the connection ended; `false` on timeout.
    async fn wait(&self, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_TIMEOUT_MS);
        loop {
            let changed = self.changed.notified();
            {
                let seen = self.seen.lock().unwrap();
                if done(&seen) || seen.ended {
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }
}

/// Runs `script` on the raw connection `conn` and leaves what the client sent in `logs`.
/// `reset` is a second handle on the same TCP socket, for an RST (`None` over TLS).
pub(crate) async fn run<C>(
    conn: C,
    script: Script,
    id: String,
    logs: Logs,
    reset: Option<tokio::net::TcpStream>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    logs.start(&id);
    let (rd, mut wr) = tokio::io::split(conn);
    let reader = Arc::new(Reader {
        seen: Mutex::default(),
        changed: Notify::new(),
    });
    let reading = tokio::spawn(read_frames(rd, reader.clone()));
    let mut shut = false;
    let mut reset_done = false;
    let mut broken = false;
    let note = |line: String| reader.update(|s| s.lines.push(line));
    for step in script.0 {
        match step {
            Step::Frame(frame) => {
                if broken || shut {
                    continue;
                }
                let bytes = frame.encode();
                let wrote = tokio::time::timeout(Duration::from_millis(WAIT_TIMEOUT_MS), async {
                    wr.write_all(&bytes).await?;
                    wr.flush().await
                })
                .await;
                match wrote {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => broken = true,
                    Err(_) => {
                        note("timeout writing a frame".into());
                        broken = true;
                    }
                }
            }
            Step::WaitMessages(n) => {
                if !reader.wait(|s| s.data_messages >= n || s.closed).await {
                    note(format!("timeout waiting for message {n}"));
                }
            }
            Step::WaitClose => {
                if !reader.wait(|s| s.closed).await {
                    note("timeout waiting for the close frame".into());
                }
            }
            Step::Delay(ms) => tokio::time::sleep(Duration::from_millis(u64::from(ms))).await,
            Step::Shutdown => {
                if !shut {
                    let _ = wr.shutdown().await;
                    shut = true;
                }
            }
            Step::Reset => {
                match &reset {
                    Some(tcp) => {
                        let _ = tcp.set_zero_linger();
                    }
                    None => note("(RST is not possible over TLS: FIN instead)".into()),
                }
                reset_done = true;
                break;
            }
        }
    }
    if reset_done {
        // Closing the last handles with SO_LINGER 0 sends the RST.
        reading.abort();
        let _ = reading.await;
        drop(wr);
        drop(reset);
    } else {
        if !shut {
            let _ = wr.shutdown().await;
        }
        if !reader.wait(|_| false).await {
            note("timeout waiting for the client to close the connection".into());
        }
        reading.abort();
        drop(wr);
        drop(reset);
    }
    let seen = std::mem::take(&mut *reader.seen.lock().unwrap());
    let mut lines = seen.lines;
    if !seen.pongs.is_empty() {
        lines.push(format!("pongs: {}", seen.pongs.join(" ")));
    }
    logs.finish(&id, lines);
}

/// The largest client frame the reader accepts.
const MAX_FRAME: u64 = 64 << 20;

async fn read_frames<R: tokio::io::AsyncRead + Unpin>(mut rd: R, reader: Arc<Reader>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut message: Option<(bool, Vec<u8>)> = None;
    let mut garbled = false;
    loop {
        while !garbled {
            match parse(&buf) {
                Parsed::Need => break,
                Parsed::Bad(why) => {
                    reader.update(|s| s.lines.push(format!("unreadable frame: {why}")));
                    garbled = true;
                }
                Parsed::Frame {
                    b0,
                    masked,
                    payload,
                    used,
                } => {
                    buf.drain(..used);
                    frame(&reader, &mut message, b0, masked, payload);
                }
            }
        }
        if garbled {
            buf.clear();
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    reader.update(|s| s.ended = true);
}

enum Parsed {
    Need,
    Bad(String),
    Frame {
        b0: u8,
        masked: bool,
        payload: Vec<u8>,
        used: usize,
    },
}

fn parse(buf: &[u8]) -> Parsed {
    if buf.len() < 2 {
        return Parsed::Need;
    }
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10),
        126 | 127 => return Parsed::Need,
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME {
        return Parsed::Bad(format!("a frame of {len} bytes"));
    }
    let key = if masked {
        if buf.len() < at + 4 {
            return Parsed::Need;
        }
        let k = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(k)
    } else {
        None
    };
    let end = at + len as usize;
    if buf.len() < end {
        return Parsed::Need;
    }
    let mut payload = buf[at..end].to_vec();
    if let Some(k) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    Parsed::Frame {
        b0: buf[0],
        masked,
        payload,
        used: end,
    }
}

fn frame(
    reader: &Reader,
    message: &mut Option<(bool, Vec<u8>)>,
    b0: u8,
    masked: bool,
    payload: Vec<u8>,
) {
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let mut notes = Vec::new();
    if !masked {
        notes.push(format!("unmasked frame (opcode {opcode:#x})"));
    }
    if b0 & 0x70 != 0 {
        notes.push(format!("RSV bits {:#x} (opcode {opcode:#x})", b0 & 0x70));
    }
    let mut complete = None;
    let mut control = None;
    let pong = (opcode == 0xA).then(|| {
        format!(
            "{}/{:08x}",
            payload.len(),
            anyws_conformance::script::fnv1a(&payload)
        )
    });
    match opcode {
        0x0 => match message {
            Some((_, data)) => {
                data.extend_from_slice(&payload);
                if fin {
                    complete = message.take();
                }
            }
            None => notes.push("continuation frame with no message started".into()),
        },
        0x1 | 0x2 => {
            if message.is_some() {
                notes.push("new message while a fragmented one is open".into());
            }
            *message = Some((opcode == 0x2, payload));
            if fin {
                complete = message.take();
            }
        }
        0x8 => control = Some(format!("close {}", close_text(&payload))),
        0x9 => control = Some(format!("ping {}", summary(true, &payload))),
        0xA => control = None,
        other => notes.push(format!("frame with opcode {other:#x}")),
    }
    reader.update(|s| {
        s.lines.append(&mut notes);
        if let Some((binary, data)) = complete {
            let line = if !binary && std::str::from_utf8(&data).is_err() {
                format!("{} (not UTF-8)", summary(false, &data))
            } else {
                summary(binary, &data)
            };
            s.lines.push(line);
            s.data_messages += 1;
        }
        s.pongs.extend(pong);
        if let Some(line) = control {
            s.lines.push(line);
        }
        if opcode == 0x8 {
            s.closed = true;
        }
    });
}

/// `1000 "bye"`, `(no code)`, `(1 byte)`, `1000 (reason not UTF-8)`.
fn close_text(payload: &[u8]) -> String {
    match payload.len() {
        0 => "(no code)".into(),
        1 => "(1 byte)".into(),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            match std::str::from_utf8(&payload[2..]) {
                Ok(reason) => format!("{code} {reason:?}"),
                Err(_) => format!("{code} (reason not UTF-8)"),
            }
        }
    }
}
