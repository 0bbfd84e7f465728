//! A small W3C WebDriver client (the few commands the demo's end-to-end test and the browser
//! benchmarks need), over plain HTTP/1.1 to a chromedriver this crate starts on a free port.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; [`close`](Session::close) ends it.
pub struct Session {
    port: u16,
    id: String,
}

/// A chromedriver process on a free 127.0.0.1 port, killed on drop.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts `chromedriver` and waits until it is ready.
    pub fn start(chromedriver: &Path) -> Result<Driver, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let driver = Driver { child, port };
        wait_ready(port, Duration::from_secs(30))?;
        Ok(driver)
    }

    /// A headless Chromium session (`binary` is the browser) with `extra_args` added to the
    /// command line.
    pub fn chromium(&self, binary: &str, extra_args: &[&str]) -> Result<Session, String> {
        Session::chromium(self.port, binary, extra_args)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("chromedriver on port {port}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(900))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes())
        .and_then(|_| tcp.write_all(body.as_bytes()))
        .map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
    let (head, body) =
        read_response(&mut tcp).map_err(|e| format!("WebDriver {method} {path}: {e}"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    let value: Value = serde_json::from_str(&body)
        .map_err(|e| format!("WebDriver {method} {path}: {e}: {body:.200}"))?;
    let value = value.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("");
        return Err(format!(
            "WebDriver {method} {path}: {error}: {message:.300}"
        ));
    }
    Ok(value)
}

/// Reads one response: the head, then a body of Content-Length bytes (chromedriver keeps the
/// connection open), or up to the end of the stream without one.
fn read_response(tcp: &mut TcpStream) -> std::io::Result<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = buf[head_end..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                let n = tcp.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            tcp.read_to_end(&mut body)?;
        }
    }
    Ok((head, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until chromedriver answers `/status` as ready.
fn wait_ready(port: u16, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(v) = request(port, "GET", "/status", None) {
            if v.get("ready").and_then(|r| r.as_bool()) == Some(true) {
                return Ok(());
            }
        }
        if start.elapsed() > limit {
            return Err(format!(
                "chromedriver on port {port} was not ready within {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Session {
    fn chromium(port: u16, binary: &str, extra_args: &[&str]) -> Result<Session, String> {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--window-size=1200,860",
            "--hide-scrollbars",
        ];
        args.extend_from_slice(extra_args);
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": binary, "args": args }
            }}
        });
        let v = request(port, "POST", "/session", Some(&caps))?;
        let id = v
            .get("sessionId")
            .and_then(|s| s.as_str())
            .ok_or("chromedriver returned no session id")?
            .to_owned();
        Ok(Session { port, id })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        request(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.call("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    fn element(&self, css: &str) -> Result<String, String> {
        let v = self.call(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": css })),
        )?;
        v.get(ELEMENT)
            .and_then(|e| e.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    /// The rendered text of the element `css`.
    pub fn text(&self, css: &str) -> Result<String, String> {
        let id = self.element(css)?;
        let v = self.call("GET", &format!("/element/{id}/text"), None)?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until the text of `css` satisfies `want`; the error shows the last text.
    pub fn wait_for_text(
        &self,
        css: &str,
        limit: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let text = self.text(css).unwrap_or_default();
            if want(&text) {
                return Ok(text);
            }
            if start.elapsed() > limit {
                return Err(format!("{css} still shows {text:?} after {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the element `css`.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(&json!({ "text": text })),
        )
        .map(drop)
    }

    /// Clicks the element `css`.
    pub fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.call("POST", &format!("/element/{id}/click"), Some(&json!({})))
            .map(drop)
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let v = self.call("GET", "/screenshot", None)?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot: {e}"))
    }

    /// Runs `script` as an async function body (its last argument is the callback that
    /// returns a value) with `args`, allowing it up to `limit`; returns what it passed back.
    pub fn execute_async(
        &self,
        script: &str,
        args: &[Value],
        limit: Duration,
    ) -> Result<Value, String> {
        self.call(
            "POST",
            "/timeouts",
            Some(&json!({ "script": limit.as_millis() as u64 })),
        )?;
        self.call(
            "POST",
            "/execute/async",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Ends the session (the browser exits).
    pub fn close(self) {
        let _ = self.call("DELETE", "", None);
    }
}
