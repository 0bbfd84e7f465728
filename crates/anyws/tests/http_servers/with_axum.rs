//! Feature `axum`: an axum 0.8 server upgrading requests into anyws sockets
//! with the `anyws::native::axum::WebSocketUpgrade` extractor, and an anyws client on
//! 127.0.0.1.
use crate::upgrade::{self, Handoff, Server};
use anyws::native::axum::WebSocketUpgrade;
use anyws::native::{Accept, Origins, Refusal};
use anyws::Options;
use axum::extract::State;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use tokio::net::TcpListener;

fn options() -> Options {
    Options::new().protocols(["chat.v1", "chat.v2"])
}

async fn chat(State(handoff): State<Handoff>, ws: WebSocketUpgrade) -> Result<Response, Refusal> {
    Origins::new(["http://good.example"])
        .unwrap()
        .check(ws.request())?;
    Ok(answer(handoff, ws.options(options())))
}

async fn v1(State(handoff): State<Handoff>, ws: WebSocketUpgrade) -> Response {
    answer(
        handoff,
        ws.options(options())
            .answer(Accept::new().protocol("chat.v1")),
    )
}

async fn bad_answer(State(handoff): State<Handoff>, ws: WebSocketUpgrade) -> Response {
    answer(handoff, ws.answer(Accept::new().protocol("nope")))
}

async fn bad_options(State(handoff): State<Handoff>, ws: WebSocketUpgrade) -> Response {
    answer(handoff, ws.options(upgrade::unworkable_options()))
}

fn answer(handoff: Handoff, ws: WebSocketUpgrade) -> Response {
    let on_failed = handoff.clone();
    ws.on_failed_upgrade(move |e| on_failed.made(Err(e)))
        .on_upgrade(move |ws| async move { handoff.made(Ok(ws)) })
}

/// The routes of tests/upgrade/mod.rs, also under `/nested` (a nested router: the socket's
/// URL is still the target as sent). `any`: the extractor answers other methods itself.
async fn axum_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (handoff, server) = Handoff::new(listener.local_addr().unwrap());
    let routes = Router::new()
        .route("/chat", any(chat))
        .route("/v1", any(v1))
        .route("/bad-answer", any(bad_answer))
        .route("/bad-options", any(bad_options));
    let app = routes.clone().nest("/nested", routes).with_state(handoff);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    server
}

#[tokio::test]
async fn an_axum_server_upgrades_into_an_anyws_socket_that_closes_with_1001() {
    let mut server = axum_server().await;
    upgrade::exchange_and_close_with_1001(&mut server, "/chat").await;
}

#[tokio::test]
async fn under_a_nested_router_the_url_is_the_target_as_sent() {
    let mut server = axum_server().await;
    upgrade::exchange_and_close_with_1001(&mut server, "/nested/chat").await;
}

#[tokio::test]
async fn the_answer_picks_the_subprotocol() {
    let mut server = axum_server().await;
    upgrade::answer_picks_the_protocol(&mut server).await;
}

#[tokio::test]
async fn an_answer_that_cannot_be_sent_is_a_500_and_an_error() {
    let mut server = axum_server().await;
    upgrade::unsendable_answer_is_500(&mut server).await;
}

#[tokio::test]
async fn options_that_cannot_work_are_a_500_and_an_error() {
    let mut server = axum_server().await;
    upgrade::unworkable_options_are_500(&mut server).await;
}

#[tokio::test]
async fn a_foreign_origin_gets_403_and_no_socket() {
    let mut server = axum_server().await;
    upgrade::foreign_origin_gets_403_and_no_socket(&mut server).await;
}

#[tokio::test]
async fn requests_that_are_not_upgrades_get_400_405_426() {
    let mut server = axum_server().await;
    upgrade::non_upgrades_get_400_405_426(&mut server).await;
}
