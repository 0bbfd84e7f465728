//! The tooling's one child-process helper (`cargo xtask` and the benchmarks).
//!
//! A [`Child`] is a process that lives exactly as long as the value: it is spawned from a
//! [`Command`] the caller prepared (arguments, stdin, `pre_exec` hooks such as
//! `PR_SET_PDEATHSIG`), optionally announces itself with its first stdout lines (a server's
//! address), which are read within a deadline so that nothing waits forever, and is killed and
//! reaped on drop. Whatever it prints after those lines is drained by a thread (so it never
//! blocks on a full pipe, nor dies of a closed one), and kept for [`Child::next_line`] if it
//! was spawned with [`Child::spawn_reporting`].

use std::io::{BufRead, BufReader};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped (its stdin, if piped, is closed first).
/// Only that process is killed, not processes it started: start servers directly (the
/// built binary, not `cargo run` or a shell).
#[derive(Debug)]
pub struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Vec<String>,
    /// Its later stdout lines ([`Child::spawn_reporting`] only).
    later: Option<mpsc::Receiver<String>>,
}

impl Child {
    /// Spawns `cmd` as it is set up (its stdout and stderr as the caller chose); the process
    /// is killed when the value is dropped.
    pub fn spawn(cmd: &mut Command) -> Result<Child, String> {
        let mut process = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program(cmd)))?;
        let stdin = process.stdin.take();
        Ok(Child {
            process,
            stdin,
            lines: Vec::new(),
            later: None,
        })
    }

    /// Spawns `cmd` with its stdout piped and waits, up to `deadline`, for its first `count`
    /// lines (see [`Child::lines`]); the rest of its stdout is drained. If it exits or falls
    /// silent first, it is killed and the error says what it printed.
    pub fn spawn_announcing(
        cmd: &mut Command,
        count: usize,
        deadline: Duration,
    ) -> Result<Child, String> {
        Child::spawn_lines(cmd, count, deadline, false)
    }

    /// As [`Child::spawn_announcing`], and the lines it prints later are kept, in order, for
    /// [`Child::next_line`] (so they cost memory until read: for children that report a few
    /// lines, such as a test peer, not for chatty servers).
    pub fn spawn_reporting(
        cmd: &mut Command,
        count: usize,
        deadline: Duration,
    ) -> Result<Child, String> {
        Child::spawn_lines(cmd, count, deadline, true)
    }

    /// The next line it printed after its announcement, waiting up to `limit` for it; an
    /// error if it printed none within `limit`, closed its stdout, or was not spawned with
    /// [`Child::spawn_reporting`].
    pub fn next_line(&mut self, limit: Duration) -> Result<String, String> {
        let later = self
            .later
            .as_ref()
            .ok_or("next_line: the child was not spawned with spawn_reporting")?;
        match later.recv_timeout(limit) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the child printed no further line within {limit:?}"
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the child closed its stdout without printing a further line".into())
            }
        }
    }

    fn spawn_lines(
        cmd: &mut Command,
        count: usize,
        deadline: Duration,
        keep: bool,
    ) -> Result<Child, String> {
        let mut child = Child::spawn(cmd.stdout(Stdio::piped()))?;
        let stdout = child.process.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Bytes, not `lines()`: output that is not UTF-8 must not stop the drain (the
            // child would then block on a full pipe, or die of a closed one).
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            while matches!(stdout.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']).to_owned();
                // Once the announcement is read nobody listens unless the lines are kept:
                // the rest is drained.
                drop(tx.send(text));
                line.clear();
            }
        });
        let until = Instant::now() + deadline;
        while child.lines.len() < count {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => child.lines.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{} printed {:?} and nothing more within {deadline:?}",
                        program(cmd),
                        child.lines
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{} exited ({}) after printing {:?}",
                        program(cmd),
                        child.wait_status(),
                        child.lines
                    ))
                }
            }
        }
        if keep {
            child.later = Some(rx);
        }
        Ok(child)
    }

    /// The lines it announced itself with ([`Child::spawn_announcing`]).
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The first announced line ("" if none was asked for).
    pub fn first_line(&self) -> &str {
        self.lines.first().map_or("", String::as_str)
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Waits for it to exit by itself (e.g. after Ctrl-C reached it too).
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.process.wait()
    }

    /// How the process ended, for an error: it closed its stdout, so it has exited or is
    /// about to; one that lives on without its stdout is killed rather than waited for.
    fn wait_status(&mut self) -> String {
        let exited = |status: ExitStatus| status.to_string();
        match self.process.try_wait() {
            Ok(Some(status)) => exited(status),
            _ => {
                let _ = self.process.kill();
                match self.process.wait() {
                    Ok(status) => format!("{}, killed: it closed its stdout", exited(status)),
                    Err(e) => e.to_string(),
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // A `--until-stdin-closes` server sees its stdin close; then it is killed regardless.
        drop(self.stdin.take());
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn program(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::Child;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).stdin(Stdio::null());
        cmd
    }

    #[test]
    fn output_that_is_not_utf8_is_drained_too() {
        // Invalid UTF-8 after the announcement, then more than a pipe holds: the child must
        // still finish (a drain that stopped at the bad byte would leave it blocked).
        let mut cmd = sh("echo 'ws x'; printf '\\377\\n'; head -c 1000000 /dev/zero; echo done");
        let mut child = Child::spawn_announcing(&mut cmd, 1, Duration::from_secs(30)).unwrap();
        assert_eq!(child.first_line(), "ws x");
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn a_child_that_closes_its_stdout_and_lives_on_is_not_waited_for() {
        let mut cmd = sh("exec 1>&-; exec sleep 30");
        let start = Instant::now();
        let err = Child::spawn_announcing(&mut cmd, 1, Duration::from_secs(20)).unwrap_err();
        assert!(err.contains("closed its stdout"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn reads_the_announcement_and_drains_the_rest() {
        // Far more than a pipe holds after the two lines: the drain keeps it from blocking.
        let mut cmd = sh("echo 'ws x'; echo 'http y'; head -c 1000000 /dev/zero; echo done");
        let mut child = Child::spawn_announcing(&mut cmd, 2, Duration::from_secs(30)).unwrap();
        assert_eq!(child.lines(), ["ws x", "http y"]);
        assert_eq!(child.first_line(), "ws x");
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn a_reporting_child_keeps_its_later_lines() {
        let mut cmd = sh("echo 'ws x'; echo one; echo two; cat");
        cmd.stdin(Stdio::piped());
        let mut child = Child::spawn_reporting(&mut cmd, 1, Duration::from_secs(30)).unwrap();
        assert_eq!(child.first_line(), "ws x");
        assert_eq!(child.next_line(Duration::from_secs(30)).unwrap(), "one");
        assert_eq!(child.next_line(Duration::from_secs(30)).unwrap(), "two");
        // Nothing more while `cat` waits; after its stdin closes it exits and says so.
        let err = child.next_line(Duration::from_millis(50)).unwrap_err();
        assert!(err.contains("no further line"), "{err}");
        drop(child.stdin.take());
        let err = child.next_line(Duration::from_secs(30)).unwrap_err();
        assert!(err.contains("closed its stdout"), "{err}");
        // An announcing child keeps nothing.
        let mut quiet =
            Child::spawn_announcing(&mut sh("echo 'ws x'; echo one"), 1, Duration::from_secs(30))
                .unwrap();
        assert!(quiet.next_line(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_silent_child_is_an_error_within_the_deadline_and_is_killed() {
        let mut cmd = sh("echo one; exec sleep 30");
        let start = Instant::now();
        let err = Child::spawn_announcing(&mut cmd, 2, Duration::from_millis(300)).unwrap_err();
        assert!(
            err.contains("[\"one\"]") && err.contains("nothing more"),
            "{err}"
        );
        // Killed and reaped on the way out: not 30 s.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_child_that_exits_before_announcing_is_an_error() {
        let err =
            Child::spawn_announcing(&mut sh("exit 3"), 1, Duration::from_secs(30)).unwrap_err();
        assert!(err.contains("exited") && err.contains('3'), "{err}");
    }

    #[test]
    fn dropping_kills_and_closes_stdin() {
        // `cat` exits when its stdin closes; `sleep` needs the kill. Both are gone on drop.
        let mut cmd = sh("cat; exec sleep 30");
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let child = Child::spawn(&mut cmd).unwrap();
        let pid = child.id();
        let start = Instant::now();
        drop(child);
        assert!(start.elapsed() < Duration::from_secs(20));
        // Reaped: no such process any more.
        #[cfg(target_os = "linux")]
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        #[cfg(target_os = "linux")]
        assert!(!alive, "process {pid} still exists");
    }

    #[test]
    fn an_unknown_program_names_itself() {
        let err = Child::spawn(&mut Command::new("/nonexistent/server")).unwrap_err();
        assert!(err.contains("/nonexistent/server"), "{err}");
    }
}
