//! Feature `hyper`: a hyper 1 server upgrading requests into anyws sockets
//! (`anyws::native::hyper`), with an anyws client on 127.0.0.1.
use crate::upgrade::{self, Handoff, Server};
use anyws::native::hyper::{refuse, Upgrade};
use anyws::native::{Accept, Origins};
use anyws::Options;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

/// The routes of tests/upgrade/mod.rs, as a hyper service function.
fn handle(handoff: &Handoff, mut request: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut options = Options::new().protocols(["chat.v1", "chat.v2"]);
    let answer = match request.uri().path() {
        "/chat" => {
            let origins = Origins::new(["http://good.example"]).unwrap();
            if let Err(refusal) = origins.check(&request) {
                return refuse(refusal);
            }
            Accept::new()
        }
        "/v1" => Accept::new().protocol("chat.v1"),
        "/bad-answer" => Accept::new().protocol("nope"),
        "/bad-options" => {
            options = upgrade::unworkable_options();
            Accept::new()
        }
        _ => return refuse(anyws::native::Refusal::new(hyper::StatusCode::NOT_FOUND)),
    };
    let upgrade = match Upgrade::new(&mut request, options) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return refuse(refusal),
    };
    let (response, socket) = upgrade.accept_with(answer);
    let handoff = handoff.clone();
    tokio::spawn(async move { handoff.made(socket.await) });
    response
}

async fn hyper_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handoff, server) = Handoff::new(listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let handoff = handoff.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handle(&handoff, request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    server
}

#[tokio::test]
async fn a_hyper_server_upgrades_into_an_anyws_socket_that_closes_with_1001() {
    let mut server = hyper_server().await;
    upgrade::exchange_and_close_with_1001(&mut server, "/chat").await;
}

#[tokio::test]
async fn the_answer_picks_the_subprotocol() {
    let mut server = hyper_server().await;
    upgrade::answer_picks_the_protocol(&mut server).await;
}

#[tokio::test]
async fn an_answer_that_cannot_be_sent_is_a_500_and_an_error() {
    let mut server = hyper_server().await;
    upgrade::unsendable_answer_is_500(&mut server).await;
}

#[tokio::test]
async fn options_that_cannot_work_are_a_500_and_an_error() {
    let mut server = hyper_server().await;
    upgrade::unworkable_options_are_500(&mut server).await;
}

#[tokio::test]
async fn a_foreign_origin_gets_403_and_no_socket() {
    let mut server = hyper_server().await;
    upgrade::foreign_origin_gets_403_and_no_socket(&mut server).await;
}

#[tokio::test]
async fn requests_that_are_not_upgrades_get_400_405_426() {
    let mut server = hyper_server().await;
    upgrade::non_upgrades_get_400_405_426(&mut server).await;
}

/// A server that serves without `with_upgrades` never hands the connection over: the
/// socket's future fails with a `Network` error that says so, instead of hanging.
#[tokio::test]
async fn a_server_without_upgrades_fails_the_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handoff, mut server) = Handoff::new(listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |request| {
            let response = handle(&handoff, request);
            async move { Ok::<_, Infallible>(response) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), service)
            .await;
    });
    let ws = anyws::WebSocket::with_protocols(&format!("ws://{}/v1", server.addr), &["chat.v1"])
        .unwrap();
    let error = server.errors.recv().await.unwrap();
    assert_eq!(error.kind(), anyws::ErrorKind::Network, "{error}");
    assert!(
        error.to_string().contains("hand the connection over"),
        "{error}"
    );
    drop(ws);
}
