//! Memory readings from `/proc/self/status` and `/proc/PID/status` (Linux).

/// Resident set size now, in bytes (`VmRSS`); 0 where `/proc` is unavailable.
pub fn rss() -> u64 {
    status_kib("/proc/self/status", "VmRSS:") * 1024
}

/// Peak resident set size of this process so far, in bytes (`VmHWM`); 0 where unavailable.
pub fn peak_rss() -> u64 {
    status_kib("/proc/self/status", "VmHWM:") * 1024
}

/// Resident set size of process `pid` now, in bytes (`VmRSS`); 0 where unavailable (no such
/// process, or no `/proc`).
pub fn rss_of(pid: u32) -> u64 {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:") * 1024
}

fn status_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open files wanted: 10,000 connections need more than the usual 1,024, and a server and
/// its clients on one machine, with a test server that keeps a second descriptor for each of
/// its connections, need more than 20,000.
const WANTED_FILES: u64 = 65_536;

/// Raises the limit on open files: to `WANTED_FILES` (65,536) where the process may raise
/// its hard limit (root), otherwise the soft limit to the hard one. Child processes inherit
/// it. Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut limit = Rlimit { cur: 0, max: 0 };
    // SAFETY: plain libc calls with a valid, properly laid-out struct (Linux x86-64/aarch64).
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.max < WANTED_FILES {
            let wanted = Rlimit {
                cur: WANTED_FILES,
                max: WANTED_FILES,
            };
            if setrlimit(RLIMIT_NOFILE, &wanted) == 0 {
                return WANTED_FILES;
            }
        }
        let raised = Rlimit {
            cur: limit.max,
            max: limit.max,
        };
        if setrlimit(RLIMIT_NOFILE, &raised) == 0 {
            return limit.max;
        }
    }
    limit.cur
}

/// CPU time (user + system) this process has used so far (`getrusage(RUSAGE_SELF)`);
/// zero where it fails.
pub fn cpu_time() -> std::time::Duration {
    #[repr(C)]
    struct Timeval {
        sec: i64,
        usec: i64,
    }
    #[repr(C)]
    struct Rusage {
        utime: Timeval,
        stime: Timeval,
        rest: [i64; 14],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    const RUSAGE_SELF: i32 = 0;
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        rest: [0; 14],
    };
    // SAFETY: a plain libc call with a valid, properly laid-out struct (Linux x86-64/aarch64).
    if unsafe { getrusage(RUSAGE_SELF, &mut usage) } != 0 {
        return std::time::Duration::ZERO;
    }
    let micros = |t: &Timeval| (t.sec.max(0) as u64) * 1_000_000 + t.usec.max(0) as u64;
    std::time::Duration::from_micros(micros(&usage.utime) + micros(&usage.stime))
}

#[cfg(test)]
mod tests {
    #[test]
    fn readings_are_plausible() {
        if cfg!(target_os = "linux") {
            let rss = super::rss();
            assert!(rss > 100_000, "{rss}");
            assert!(super::peak_rss() >= rss);
            let of_self = super::rss_of(std::process::id());
            assert!(of_self > 100_000, "{of_self}");
            assert_eq!(super::rss_of(u32::MAX), 0);
        }
    }
}
