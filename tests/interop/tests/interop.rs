//! anyws against Python `websockets` and Node `ws`, each as a server (anyws's client connects)
//! and as a client (of anyws's server), with permessage-deflate: see the crate's docs.

use anyws::native::Compression;
use anyws_interop::{as_client, as_server, Peer, PeerSettings};

const PY: Peer = Peer::Python;
const NODE: Peer = Peer::Node;

// anyws's client (its default offer: `permessage-deflate; client_max_window_bits`) against
// each server.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_server_with_its_defaults() {
    // websockets answers with 12-bit windows both ways, unasked: anyws must compress with a
    // 4 KiB window.
    as_client(
        PY,
        PeerSettings::default(),
        Compression::new(),
        &["server_max_window_bits=12", "client_max_window_bits=12"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_server_with_10_bit_windows_and_no_context_takeover() {
    as_client(
        PY,
        PeerSettings::window(10).no_context_takeover(),
        Compression::new(),
        &[
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=10",
            "client_max_window_bits=10",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_server_asked_for_9_bits_and_no_client_context_takeover() {
    as_client(
        PY,
        PeerSettings::window(10),
        Compression::new()
            .server_max_window_bits(Some(9))
            .client_no_context_takeover(true),
        &[
            "client_no_context_takeover",
            "server_max_window_bits=9",
            "client_max_window_bits=10",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_with_its_defaults() {
    as_client(NODE, PeerSettings::default(), Compression::new(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_with_10_bit_windows_and_no_context_takeover() {
    as_client(
        NODE,
        PeerSettings::window(10).no_context_takeover(),
        Compression::new(),
        &[
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=10",
            "client_max_window_bits=10",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_asked_for_9_bits_and_no_client_context_takeover() {
    // ws with a serverMaxWindowBits of its own refuses (400) an offer asking for less, so
    // here it has its defaults and takes the offer's values.
    as_client(
        NODE,
        PeerSettings::default(),
        Compression::new()
            .server_max_window_bits(Some(9))
            .client_no_context_takeover(true),
        &["client_no_context_takeover", "server_max_window_bits=9"],
    )
    .await;
}

// Each client against anyws's server (by default `Compression::server()`:
// server_no_context_takeover).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_its_defaults() {
    as_server(
        PY,
        PeerSettings::default(),
        Compression::server(),
        &["server_no_context_takeover"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_10_bit_windows_and_no_context_takeover() {
    as_server(
        PY,
        PeerSettings::window(10).no_context_takeover(),
        Compression::server(),
        &[
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=10",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_and_a_server_keeping_context_asking_for_11_bits() {
    as_server(
        PY,
        PeerSettings::default(),
        Compression::new().client_max_window_bits(Some(11)),
        &["client_max_window_bits=11"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_with_its_defaults() {
    as_server(
        NODE,
        PeerSettings::default(),
        Compression::server(),
        &["server_no_context_takeover"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_with_10_bit_windows_and_no_context_takeover() {
    as_server(
        NODE,
        PeerSettings::window(10).no_context_takeover(),
        Compression::server(),
        &[
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits=10",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_and_a_server_keeping_context_asking_for_11_bits() {
    as_server(
        NODE,
        PeerSettings::default(),
        Compression::new().client_max_window_bits(Some(11)),
        &["client_max_window_bits=11"],
    )
    .await;
}
