//! A small, blocking W3C WebDriver client: the few commands the demo's end-to-end test
//! (`cargo xtask e2e`) and the browser benchmarks (`cargo xtask bench`) need, sent as JSON
//! over HTTP (with [`ureq`]) to a chromedriver (or geckodriver, for the end-to-end test's
//! Firefox check) this crate starts on a free 127.0.0.1 port.
//!
//! Why not `fantoccini` or `thirtyfour`, measured with clean builds on the project's 2-core
//! machine: xtask, the first thing `cargo xtask test` builds, is 35 crates and about 35 s of
//! CPU with this client, and 116 crates and 90 to 120 s of CPU with either of them (tokio,
//! hyper, hyper-util; fantoccini adds Mozilla's `webdriver` crate with http 0.2 and icu 1.5,
//! thirtyfour reqwest and regex). The workspace's test build then compiles 25 (fantoccini) or
//! 21 (thirtyfour) crates it does not otherwise need, about 20 or 30 s of CPU more. That is
//! about a minute on 2 cores, in a CI run that must stay under 20 minutes, for eleven
//! commands. Both are async, so the synchronous xtask would need a runtime too; neither starts
//! chromedriver, so [`Driver`] would stay ours anyway; thirtyfour 0.38 needs Rust 1.88 (the
//! workspace's is 1.85). `ureq` (blocking, plain HTTP) adds 8 small crates to xtask (about
//! 5 s of CPU) and 3 to the test build, and spares us an HTTP/1.1 parser of our own.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process on a free 127.0.0.1 port, killed on drop.
pub struct Driver {
    child: Child,
    http: Http,
}

/// A browser session; [`close`](Session::close) ends it.
pub struct Session {
    http: Http,
    path: String,
}

/// Where chromedriver listens, and the HTTP client that talks to it.
#[derive(Clone)]
struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    fn new(port: u16) -> Http {
        let agent = ureq::Agent::config_builder()
            // WebDriver errors are 4xx/5xx answers whose JSON body says what went wrong.
            .http_status_as_error(false)
            // chromedriver is on loopback: never through a proxy from the environment.
            .proxy(None)
            // The longest command, an async script, is allowed 600 s by its callers.
            .timeout_global(Some(Duration::from_secs(900)))
            .build()
            .into();
        Http {
            agent,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        let answer = self.agent.get(format!("{}{path}", self.base)).call();
        Self::value("GET", path, answer)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let answer = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body);
        Self::value("POST", path, answer)
    }

    fn delete(&self, path: &str) -> Result<Value, String> {
        let answer = self.agent.delete(format!("{}{path}", self.base)).call();
        Self::value("DELETE", path, answer)
    }

    /// The `value` of a command's answer, or the WebDriver error as text.
    fn value(
        method: &str,
        path: &str,
        answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, String> {
        let error = |e: &dyn std::fmt::Display| format!("WebDriver {method} {path}: {e}");
        let body: Value = answer
            .and_then(|mut a| {
                a.body_mut()
                    .with_config()
                    .limit(64 << 20) // a screenshot is base64 in JSON
                    .read_json()
            })
            .map_err(|e| error(&e))?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if let Some(code) = value.get("error").and_then(Value::as_str) {
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(error(&format_args!("{code}: {message:.300}")));
        }
        Ok(value)
    }
}

impl Driver {
    /// Starts `chromedriver` (or geckodriver, for [`Driver::firefox`]) and waits until its
    /// `/status` says it is ready.
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
        let driver = Driver {
            child,
            http: Http::new(port),
        };
        let limit = Duration::from_secs(30);
        let start = Instant::now();
        // WebDriver has no readiness event: poll the status endpoint, with a deadline.
        while driver
            .http
            .get("/status")
            .ok()
            .and_then(|v| v["ready"].as_bool())
            != Some(true)
        {
            if start.elapsed() > limit {
                return Err(format!(
                    "chromedriver on port {port} was not ready within {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(driver)
    }

    /// A headless Chromium session (`binary` is the browser) with `extra_args` added to the
    /// command line.
    pub fn chromium(&self, binary: &str, extra_args: &[&str]) -> Result<Session, String> {
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
        let v = self.http.post("/session", &caps)?;
        let id = v["sessionId"]
            .as_str()
            .ok_or("chromedriver returned no session id")?;
        Ok(Session {
            http: self.http.clone(),
            path: format!("/session/{id}"),
        })
    }
}

impl Driver {
    /// A headless Firefox session (`binary` is the browser). The driver must be geckodriver
    /// ([`Driver::start`] starts either: both take `--port=N` and answer `/status`).
    pub fn firefox(&self, binary: &str) -> Result<Session, String> {
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": binary,
                    "args": ["-headless", "--width=1200", "--height=860"]
                }
            }}
        });
        let v = self.http.post("/session", &caps)?;
        let id = v["sessionId"]
            .as_str()
            .ok_or("geckodriver returned no session id")?;
        Ok(Session {
            http: self.http.clone(),
            path: format!("/session/{id}"),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session {
    fn get(&self, path: &str) -> Result<Value, String> {
        self.http.get(&format!("{}{path}", self.path))
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.http.post(&format!("{}{path}", self.path), body)
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", &json!({ "url": url })).map(drop)
    }

    /// The element reference of the first element matching the CSS selector `css`.
    fn element(&self, css: &str) -> Result<String, String> {
        let by_css = json!({ "using": "css selector", "value": css });
        let v = self.post("/element", &by_css)?;
        v[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    /// The rendered text of the element `css`.
    pub fn text(&self, css: &str) -> Result<String, String> {
        let id = self.element(css)?;
        let v = self.get(&format!("/element/{id}/text"))?;
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
            // WebDriver has no change event: poll, with a deadline.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the element `css`.
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.element(css)?;
        let keys = json!({ "text": text });
        self.post(&format!("/element/{id}/value"), &keys).map(drop)
    }

    /// Clicks the element `css`.
    pub fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.post(&format!("/element/{id}/click"), &json!({}))
            .map(drop)
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let v = self.get("/screenshot")?;
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
        let timeouts = json!({ "script": limit.as_millis() as u64 });
        self.post("/timeouts", &timeouts)?;
        let command = json!({ "script": script, "args": args });
        self.post("/execute/async", &command)
    }

    /// Ends the session (the browser exits).
    pub fn close(self) {
        let _ = self.http.delete(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A fake chromedriver on 127.0.0.1 that gives `answers` (status, JSON body) in turn, one
    /// a connection, and returns each request's line and JSON body.
    fn fake_driver(
        answers: Vec<(u16, Value)>,
    ) -> (u16, std::thread::JoinHandle<Vec<(String, Value)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (tcp, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(tcp);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap();
                        }
                    }
                }
                let mut request = vec![0; length];
                reader.read_exact(&mut request).unwrap();
                seen.push((
                    line.trim_end().to_owned(),
                    serde_json::from_slice(&request).unwrap(),
                ));
                let body = body.to_string();
                write!(
                    reader.get_mut(),
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            seen
        });
        (port, server)
    }

    #[test]
    fn commands_are_w3c_json_and_errors_keep_the_drivers_message() {
        let (port, server) = fake_driver(vec![
            (200, json!({ "value": { ELEMENT: "e1" } })),
            (
                404,
                json!({ "value": { "error": "stale element reference", "message": "gone" } }),
            ),
        ]);
        let session = Session {
            http: Http::new(port),
            path: "/session/s1".into(),
        };
        let error = session.click("#send").unwrap_err();
        assert_eq!(
            error,
            "WebDriver POST /session/s1/element/e1/click: stale element reference: gone"
        );
        let seen = server.join().unwrap();
        assert_eq!(
            seen,
            [
                (
                    "POST /session/s1/element HTTP/1.1".to_owned(),
                    json!({ "using": "css selector", "value": "#send" })
                ),
                (
                    "POST /session/s1/element/e1/click HTTP/1.1".to_owned(),
                    json!({})
                ),
            ]
        );
    }
}
