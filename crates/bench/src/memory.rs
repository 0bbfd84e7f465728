//! Memory readings from `/proc/self/status` (Linux).

/// Resident set size now, in bytes (`VmRSS`); 0 where `/proc` is unavailable.
pub fn rss() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident set size of this process so far, in bytes (`VmHWM`); 0 where unavailable.
pub fn peak_rss() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Raises the soft limit on open files to the hard limit (10,000 connections need more than
/// the usual 1,024). Returns the new soft limit.
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

#[cfg(test)]
mod tests {
    #[test]
    fn readings_are_plausible() {
        if cfg!(target_os = "linux") {
            let rss = super::rss();
            assert!(rss > 100_000, "{rss}");
            assert!(super::peak_rss() >= rss);
        }
    }
}
