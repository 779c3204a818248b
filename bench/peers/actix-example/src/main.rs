//! Benchmark peer: the subset of Parlor's protocol that `tests/bench.sh` drives with
//! `parlor-load`, written the way the actix examples' websocket chat is (actix 0.13 actors +
//! actix-web-actors 4.3, which is deprecated but still widely used): one `WsChatSession`
//! actor per connection, one `ChatServer` actor holding every room, heartbeat with
//! `run_interval`.
//!
//! Run with: `cargo run --release` (from `bench/peers/actix-example`; `PORT`, default 9300,
//! on 127.0.0.1; `TCP_NODELAY=1` turns Nagle's algorithm off).

use actix::{Actor, Addr};
use actix_web::{web, App, Error, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;

mod server;
mod session;

/// Entry point for the WebSocket route: one session actor per connection.
async fn chat_route(
    req: HttpRequest,
    stream: web::Payload,
    srv: web::Data<Addr<server::ChatServer>>,
) -> Result<HttpResponse, Error> {
    ws::start(
        session::WsChatSession::new(srv.get_ref().clone()),
        &req,
        stream,
    )
}

async fn healthz(srv: web::Data<Addr<server::ChatServer>>) -> HttpResponse {
    match srv.send(server::Count).await {
        Ok(n) => HttpResponse::Ok().json(serde_json::json!({"status": "ok", "sessions": n})),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::init();
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9300);
    if !(host.starts_with("127.") || host == "::1" || host == "localhost") {
        eprintln!("refusing to listen on non-loopback {host}");
        std::process::exit(2);
    }
    // the chat server actor runs on the main system arbiter, as in the example
    let server = server::ChatServer::default().start();
    eprintln!(
        "actix-example listening on ws://{host}:{port}/ws (pid {})",
        std::process::id()
    );
    let mut http = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(server.clone()))
            .route("/ws", web::get().to(chat_route))
            .route("/healthz", web::get().to(healthz))
    });
    // actix-web keeps the OS default (Nagle's algorithm on) unless asked, and the example
    // does not ask; tests/bench.sh sets TCP_NODELAY=1 so that Nagle does not delay the
    // small frames it measures.
    if std::env::var("TCP_NODELAY").as_deref() == Ok("1") {
        http = http.tcp_nodelay(true);
    }
    http.bind((host.as_str(), port))?.run().await
}
