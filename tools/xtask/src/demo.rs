//! `cargo xtask demo` and the demo's end-to-end browser test.

use crate::run::run_quiet;
use anyws_webdriver::Driver;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `anyws-chat-server`.
struct Server {
    child: anyws_child::Child,
    page: String,
    chat: String,
}

impl Server {
    /// Starts the server on `port` (0: any free port), serving `www/`.
    fn start(root: &Path, port: u16) -> Result<Server, String> {
        let child = anyws_child::Child::spawn_announcing(
            Command::new(root.join("target/debug/anyws-chat-server"))
                .args(["--port", &port.to_string(), "--www"])
                .arg(root.join("www"))
                .stdin(Stdio::null()),
            1,
            crate::SERVER_START,
        )?;
        // "chat server: http://127.0.0.1:8080/ (chat at ws://127.0.0.1:8080/chat)"
        let words: Vec<&str> = child.first_line().split_whitespace().collect();
        match words.as_slice() {
            ["chat", "server:", page, "(chat", "at", chat] => Ok(Server {
                page: page.to_string(),
                chat: chat.trim_end_matches(')').to_string(),
                child,
            }),
            _ => Err(format!("the chat server said {:?}", child.first_line())),
        }
    }
}

fn build_binaries(root: &Path) -> Result<(), String> {
    run_quiet(crate::cargo(root, None).args([
        "build",
        "--quiet",
        "-p",
        "anyws-chat-server",
        "-p",
        "anyws-chat-cli",
    ]))
    .map(drop)
}

/// `cargo xtask demo`: the bundle (if stale), the server, and a native client in the room.
pub fn demo(root: &Path, bundle_ready: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    bundle_ready()?;
    build_binaries(root)?;
    let server = Server::start(root, 8080)?;
    println!();
    println!("  Open {} in a browser.", server.page);
    println!("  A native client (the same anyws-chat module, compiled natively) joins as");
    println!("  \"native-bot\" and says hello. Type here to chat from the native side;");
    println!("  Ctrl-C stops everything.");
    println!();
    // Ctrl-C reaches the server and the client too (same process group): each closes its
    // sockets and exits; the xtask waits for them instead of dying first.
    let _ = ctrlc::set_handler(|| {});
    let mut client = Command::new(root.join("target/debug/anyws-chat-cli"))
        .args(["--url", &server.chat, "--name", "native-bot", "--say"])
        .arg("hello from native Rust 👋 (anyws over tokio-tungstenite)")
        .spawn()
        .map_err(|e| format!("cannot start the native client: {e}"))?;
    let _ = client.wait();
    let mut server = server;
    let _ = server.child.wait();
    println!("demo: stopped");
    Ok(())
}

/// The native client, driven through its stdin and read through its stdout.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Client {
    fn start(root: &Path, url: &str, name: &str) -> Result<Client, String> {
        let mut child = Command::new(root.join("target/debug/anyws-chat-cli"))
            .args(["--url", url, "--name", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the native client: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Bytes, not `lines()`: output that is not UTF-8 must not stop the drain.
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            while matches!(stdout.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                if tx
                    .send(text.trim_end_matches(['\n', '\r']).to_owned())
                    .is_err()
                {
                    break;
                }
                line.clear();
            }
        });
        let stdin = child.stdin.take();
        Ok(Client {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits for an output line satisfying `want`.
    fn wait_for(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "the native client did not print the expected line within {limit:?}; it printed:\n{}",
                        self.seen.join("\n")
                    ))
                }
            }
        }
    }

    fn say(&mut self, text: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{text}").map_err(|e| e.to_string())
    }

    /// Stops the client as a service manager would, with SIGTERM (the end of piped input
    /// does not make it leave: only a terminal's Ctrl-D does), and waits for it to exit.
    fn finish(mut self) -> Result<Vec<String>, String> {
        drop(self.stdin.take());
        let pid = self.child.id().to_string();
        let term = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        if !term.success() {
            return Err(format!("kill -TERM {pid} failed ({term})"));
        }
        // Bounded: a client that did not stop within the wait is killed, not waited for.
        if self
            .wait_for(Duration::from_secs(10), |l| l == "[stopped]")
            .is_err()
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        Ok(std::mem::take(&mut self.seen))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WAIT: Duration = Duration::from_secs(30);

/// The end-to-end test: headless Chromium opens the page, sees permessage-deflate agreed with
/// anyws's server, sends a message the native client receives, then shows the native
/// client's answer. Saves a screenshot to `artifacts/demo-page.png`. Then, with `geckodriver`,
/// headless Firefox opens the page too and must join the room with permessage-deflate agreed.
/// Returns a summary line.
pub fn end_to_end(
    root: &Path,
    chromedriver: &Path,
    geckodriver: Option<&Path>,
) -> Result<String, String> {
    let start = Instant::now();
    build_binaries(root)?;
    let server = Server::start(root, 0)?;
    let mut native = Client::start(root, &server.chat, "native-bot")?;
    native.wait_for(WAIT, |l| l.starts_with("[room]"))?;

    let driver = Driver::start(chromedriver)?;
    let browser = driver.chromium("/usr/bin/chromium", &[])?;
    let result = (|| {
        browser.goto(&format!("{}?name=e2e-browser", server.page))?;
        browser.wait_for_text("#ready-state", WAIT, |t| t == "OPEN (1)")?;
        // anyws_chat::PROTOCOL, negotiated by the browser's own WebSocket.
        browser.wait_for_text("#protocol", WAIT, |t| t == "anyws-chat.v1")?;
        // The browser's own permessage-deflate offer, accepted by anyws's server (axum).
        browser.wait_for_text("#extensions", WAIT, |t| t.starts_with("permessage-deflate"))?;
        browser.wait_for_text("#users", WAIT, |t| t.contains("native-bot (native)"))?;
        native.wait_for(WAIT, |l| l == "[joined] e2e-browser (browser)")?;

        browser.type_into("#say", "hello from the browser")?;
        browser.click("#send")?;
        native.wait_for(WAIT, |l| l == "<e2e-browser> hello from the browser")?;

        native.say("hello from native Rust")?;
        browser.wait_for_text("#log", WAIT, |t| {
            t.contains("native-bot hello from native Rust")
        })?;
        browser.wait_for_text("#buffered", WAIT, |t| t == "0 bytes")?;

        let png = browser.screenshot()?;
        let dir = root.join("artifacts");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("demo-page.png"), png).map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })();
    browser.close();
    drop(driver);
    result?;
    let firefox = match geckodriver {
        Some(geckodriver) => {
            firefox_joins(geckodriver, &server.page, &mut native)?;
            " and Firefox"
        }
        None => "",
    };
    let seen = native.finish()?;
    if !seen.iter().any(|l| l.starts_with("[closed] 1000")) {
        return Err(format!(
            "the native client did not close with 1000:\n{}",
            seen.join("\n")
        ));
    }
    drop(server);
    Ok(format!(
        "demo e2e: page and native client exchanged messages in headless Chromium; permessage-deflate agreed with Chromium{firefox}; screenshot in artifacts/demo-page.png ({:.0} s)",
        start.elapsed().as_secs_f32()
    ))
}

/// Headless Firefox opens the page: it must open, show permessage-deflate agreed (Firefox's
/// own offer, accepted by anyws's server) and join the room the native client is in.
fn firefox_joins(geckodriver: &Path, page: &str, native: &mut Client) -> Result<(), String> {
    let driver = Driver::start(geckodriver)?;
    let browser = driver.firefox("/usr/bin/firefox-esr")?;
    let result = (|| {
        browser.goto(&format!("{page}?name=e2e-firefox"))?;
        browser.wait_for_text("#ready-state", WAIT, |t| t == "OPEN (1)")?;
        browser.wait_for_text("#extensions", WAIT, |t| t.starts_with("permessage-deflate"))?;
        native.wait_for(WAIT, |l| l == "[joined] e2e-firefox (browser)")?;
        Ok::<(), String>(())
    })();
    browser.close();
    drop(driver);
    result.map_err(|e| format!("Firefox: {e}"))
}
