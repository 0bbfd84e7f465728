//! Native only: 1,000 sockets opened and closed in a loop leave no tasks, file descriptors or
//! connections behind. Its own test binary, so no other test opens descriptors meanwhile.
#![cfg(target_os = "linux")]

mod common;

use anyws::{diagnostics::live_connections, WebSocket};
use std::time::Duration;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

async fn churn(url: &str, n: usize) {
    for i in 0..n {
        let ws = WebSocket::new(url).unwrap();
        ws.opened().await.unwrap();
        ws.send(format!("{i}")).unwrap();
        ws.close_with(1000, "").unwrap();
        let ev = ws.closed().await;
        assert!(ev.was_clean, "socket {i}: {ev:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sockets_leave_no_tasks_or_descriptors_behind() {
    let url = format!("{}/echo", common::server().await);
    churn(&url, 10).await; // warm up: lazily created runtime parts, the server's first accept
    let settled = |fds: usize, tasks: usize| {
        move || open_fds() <= fds && alive_tasks() <= tasks && live_connections() == 0
    };
    // The server's side of the warm-up sockets ends a moment after the client's close event.
    common::eventually(Duration::from_secs(5), || live_connections() == 0).await;
    let (fds, tasks) = (open_fds(), alive_tasks());

    churn(&url, 1000).await;
    let ok = common::eventually(Duration::from_secs(10), settled(fds, tasks)).await;
    assert!(
        ok,
        "after 1,000 sockets: {} fds (was {fds}), {} tasks (was {tasks}), {} live connections",
        open_fds(),
        alive_tasks(),
        live_connections()
    );
}
