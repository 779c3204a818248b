//! The HTTP side: binding the server and its routes.
//!
//! - `GET /ws`: the WebSocket handshake (origin and capacity checks, then a
//!   [`Session`] actor).
//! - `GET /healthz`, `GET /metrics`, `GET /api/rooms`, `GET /api/games`.
//! - everything else: the browser client from `server.static_dir`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use actix_web::{
    dev::{Server, ServiceRequest},
    http::header,
    middleware::Logger,
    web, App, HttpRequest, HttpResponse, HttpServer,
};
use serde::{Deserialize, Serialize};
use socket2::SockRef;

use crate::{lobby::Admit, metrics::Rejection, protocol, session::Session, AppState};

/// Connections beyond the session cap that may still be open for plain HTTP
/// (health checks, pages, refused handshakes).
const HTTP_CONNECTION_HEADROOM: usize = 1024;

/// Query parameters of `GET /ws`.
#[derive(Deserialize)]
struct WsQuery {
    /// Display name; replaced by a random one when invalid.
    name: Option<String>,
    /// Resume token of a dropped session.
    resume: Option<String>,
}

/// The body of `GET /healthz`.
#[derive(Serialize)]
struct Health {
    /// Always `"ok"` when the server answers.
    status: &'static str,
    /// Open WebSocket connections.
    sessions: usize,
}

/// Binds the server to `server.bind`; returns it (not yet running) and the
/// address it got.
pub fn bind(state: Arc<AppState>) -> std::io::Result<(Server, SocketAddr)> {
    let config = &state.config;
    let user_timeout = config.heartbeat_timeout();
    let data = web::Data::from(state.clone());
    let static_dir = config.server.static_dir.clone();
    if !std::path::Path::new(&static_dir).is_dir() {
        log::warn!("server.static_dir {static_dir:?} is not a folder: the browser client will not be served");
    }
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(request_logger())
            .configure(routes)
            .service(actix_files::Files::new("/", &static_dir).index_file("index.html"))
    })
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout().as_secs().max(1))
    .max_connections(state.slots.cap().saturating_add(HTTP_CONNECTION_HEADROOM))
    .on_connect(move |connection, _| tune_socket(connection, user_timeout));
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let server = server.bind(&config.server.bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    log::info!("listening on {addr}");
    Ok((server.run(), addr))
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(websocket))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/rooms", web::get().to(empty_list))
        .route("/api/games", web::get().to(empty_list));
}

/// Logs requests without their query strings: `/ws?resume=` carries a secret.
fn request_logger() -> Logger {
    Logger::new("%a \"%{PATH}xi\" %s %b %Dms")
        .custom_request_replace("PATH", |req: &ServiceRequest| {
            format!("{} {}", req.method(), req.path())
        })
}

/// `TCP_NODELAY` (Nagle adds tens of ms to small frames) and
/// `TCP_USER_TIMEOUT` (the kernel reaps a peer that stopped reading).
fn tune_socket(connection: &dyn std::any::Any, user_timeout: Duration) {
    let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    if let Err(err) = stream.set_nodelay(true) {
        log::warn!("cannot set TCP_NODELAY: {err}");
    }
    if let Err(err) = SockRef::from(stream).set_tcp_user_timeout(Some(user_timeout)) {
        log::warn!("cannot set TCP_USER_TIMEOUT: {err}");
    }
}

async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    if !origin_allowed(&req, &state.config.server.allowed_origins) {
        state.metrics.rejected(Rejection::Origin);
        return Ok(HttpResponse::Forbidden().body("origin not allowed\n"));
    }
    let Some(slot) = state.slots.try_take() else {
        state.metrics.rejected(Rejection::Capacity);
        log::warn!(
            "handshake refused: {} sessions open, the most this server takes",
            state.slots.cap()
        );
        return Ok(HttpResponse::ServiceUnavailable().body("server full\n"));
    };
    let (response, socket, stream) = actix_ws::handle(&req, body)?;
    let max_frame = state.config.limits.max_frame_bytes;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    let WsQuery { name, resume } = query.into_inner();
    let admit = Admit {
        resume,
        name: name.as_deref().and_then(protocol::valid_name),
    };
    let admission = state
        .lobby
        .send(admit)
        .await
        .map_err(actix_web::error::ErrorServiceUnavailable)?;
    Session::start(state.into_inner(), admission, socket, stream, slot);
    Ok(response)
}

/// A handshake without `Origin` comes from a non-browser client: allowed.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match req.headers().get(header::ORIGIN) {
        None => true,
        Some(origin) => allowed.iter().any(|ok| ok.as_bytes() == origin.as_bytes()),
    }
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        sessions: state.slots.open(),
    })
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state
        .metrics
        .sessions
        .set(i64::try_from(state.slots.open()).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// `/api/rooms` and `/api/games` until rooms and games exist.
async fn empty_list() -> HttpResponse {
    HttpResponse::Ok().json(Vec::<()>::new())
}
