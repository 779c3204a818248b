//! The HTTP side: binding the server and its routes.
//!
//! - `GET /ws`: the WebSocket handshake (origin and capacity checks, then a
//!   [`Session`](crate::session::Session) actor), taken through
//!   actix-http's upgrade hook (`upgrade`) around the actix-web App.
//! - `GET /healthz`, `GET /metrics`, `GET /api/rooms`, `GET /api/games`,
//!   `GET /api/history`; any other `/api/…` path is a JSON 404.
//! - everything else: the browser client, built into the binary from
//!   `static/`, or read from `server.static_dir` when that names a folder.

mod admin;
mod upgrade;

use std::{
    net::{SocketAddr, TcpListener, ToSocketAddrs},
    num::NonZeroUsize,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use actix_http::{error::DispatchError, HttpService};
use actix_server::Server;
use actix_service::{
    fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_web::{
    dev::{AppConfig, ServiceRequest, ServiceResponse},
    http::{
        header::{self, CacheDirective, EntityTag, HeaderValue},
        StatusCode,
    },
    middleware::Logger,
    web, App, HttpMessage, HttpRequest, HttpResponse, Responder,
};
use serde::{Deserialize, Serialize};
use socket2::{Domain, SockRef, Socket, Type};

use crate::{
    links::{Admission, AdmitOutcome},
    lobby::{ListGames, ListRooms},
    protocol::GameKind,
    store::{GetGame, ListHistory},
    AppState,
};

/// Connections waiting in the kernel to be accepted, per listening socket
/// (actix-server's own default).
const LISTEN_BACKLOG: i32 = 2048;

/// How long a client may take to send its request head once connected,
/// and how long an idle HTTP connection is kept (actix-web's defaults).
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a closing HTTP connection may take to finish (actix-web's
/// default).
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// After every session has closed (or `server.shutdown_timeout_ms` ran
/// out), how long actix-web lets connections finish writing before it drops
/// them; its smallest step is a second.
const CONNECTION_FLUSH_SECS: u64 = 1;

/// The browser client, built into the binary (debug builds too, with
/// rust-embed's `debug-embed`), so that it is served whatever folder the
/// server starts in.
#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct BuiltInPages;

/// Where the browser client is served from.
#[derive(Clone)]
enum Pages {
    /// The pages built into the binary.
    BuiltIn,
    /// A folder (`server.static_dir`), for working on the pages.
    Folder(PathBuf),
}

impl Pages {
    /// The built-in pages when `static_dir` is empty, else that folder
    /// (`Config::validate` has checked that it is one).
    fn from_config(static_dir: &str) -> Pages {
        if static_dir.is_empty() {
            log::info!("pages: built in");
            return Pages::BuiltIn;
        }
        let dir = Path::new(static_dir);
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        log::info!("pages: {}", dir.display());
        Pages::Folder(dir)
    }
}

/// Query parameters of `GET /ws`: `name` (replaced by a random one when
/// invalid), `resume` and `received`. Taken as pairs so that a repeated or
/// unexpected key never fails the handshake; the first of each counts.
struct WsQuery {
    /// Display name, if given.
    name: Option<String>,
    /// Resume token of a dropped session, if given.
    resume: Option<String>,
    /// The frames the client counted, if given as a whole number (anything
    /// else counts as not given: the resume resyncs).
    received: Option<u64>,
}

impl WsQuery {
    fn from_pairs(pairs: Vec<(String, String)>) -> WsQuery {
        let (mut name, mut resume, mut received) = (None, None, None);
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "name" => &mut name,
                "resume" => &mut resume,
                "received" => &mut received,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        WsQuery {
            name,
            resume,
            received: received.and_then(|count| count.parse().ok()),
        }
    }
}

/// The body of `GET /healthz`.
#[derive(Serialize)]
struct Health {
    /// `"ok"`, or `"degraded"` while the cluster's Redis is down.
    status: &'static str,
    /// Open WebSocket connections.
    sessions: usize,
    /// This node's id, with a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    /// Live nodes and Redis, with a cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<crate::cluster::ClusterHealth>,
}

/// Binds the server to `server.bind`; returns it (not yet running) and the
/// address it got. At most `connections` plain HTTP connections are open
/// at once (WebSocket sessions count apart, once upgraded).
pub fn bind(state: Arc<AppState>, connections: usize) -> std::io::Result<(Server, SocketAddr)> {
    let config = &state.config;
    let pages = Pages::from_config(&config.server.static_dir);
    let workers = worker_count(config.server.workers);
    let mut server = Server::build()
        .disable_signals()
        .shutdown_timeout(CONNECTION_FLUSH_SECS)
        .workers(workers)
        // actix-server's cap is per worker; all workers together stay under it.
        .max_concurrent_connections(connections.div_ceil(workers));
    let listeners = listen(&config.server.bind)?;
    let addr = listeners[0].local_addr()?;
    for listener in listeners {
        let local = listener.local_addr()?;
        let (state, pages) = (state.clone(), pages.clone());
        // Runs once on each worker's thread, as the worker starts.
        server = server.listen("parlor", listener, move || worker(&state, &pages, local))?;
    }
    log::info!("listening on {addr}");
    Ok((server.run(), addr))
}

/// One worker's HTTP service on the listener at `local`: the actix-web App
/// for plain HTTP, and the `/ws` handshake through actix-http's upgrade hook.
fn worker(
    state: &Arc<AppState>,
    pages: &Pages,
    local: SocketAddr,
) -> impl ServiceFactory<
    actix_rt::net::TcpStream,
    Config = (),
    Response = (),
    Error = DispatchError,
    InitError = (),
> {
    state.workers.register_current();
    let user_timeout = state.config.heartbeat_timeout();
    let data = web::Data::from(state.clone());
    let pages = pages.clone();
    let app = App::new()
        .app_data(data)
        .wrap(request_logger())
        .configure(routes)
        .configure(|cfg| admin::routes(cfg, &state.config.admin.token, &pages))
        .configure(|cfg| static_files(cfg, &pages))
        .into_factory()
        .map_err(|err: actix_web::Error| err.error_response());
    let hook = state.clone();
    HttpService::build()
        .keep_alive(CLIENT_REQUEST_TIMEOUT)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .local_addr(local)
        .on_connect_ext(move |io: &actix_rt::net::TcpStream, _| tune_socket(io, user_timeout))
        .upgrade(fn_service(move |(req, framed)| {
            upgrade::take(hook.clone(), req, framed)
        }))
        .finish(map_config(app, |()| AppConfig::default()))
        .tcp()
}

/// Listening sockets for every address `bind` resolves to (as actix-web
/// binds them); an error only if none could be bound.
fn listen(bind: &str) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut failure = None;
    for addr in bind.to_socket_addrs()? {
        match listener(addr) {
            Ok(listener) => listeners.push(listener),
            Err(err) => failure = Some(err),
        }
    }
    if listeners.is_empty() {
        return Err(failure
            .unwrap_or_else(|| std::io::Error::other(format!("{bind} resolves to no address"))));
    }
    Ok(listeners)
}

fn listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// How many workers actix-web starts for `server.workers` (0: one per core
/// this process may run on, as actix-web counts them).
fn worker_count(workers: usize) -> usize {
    match workers {
        0 => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        n => n,
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::to(not_a_handshake))
        .route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/rooms", web::get().to(rooms))
        .route("/api/games", web::get().to(games))
        .route("/api/history", web::get().to(history))
        .route("/api/history/{game_id}", web::get().to(history_game));
}

/// The browser client at every path the routes above did not take; an
/// unknown `/api/…` path is a JSON 404, not a page.
fn static_files(cfg: &mut web::ServiceConfig, pages: &Pages) {
    cfg.service(web::scope("/api").default_service(web::to(api_not_found)));
    match pages {
        Pages::BuiltIn => {
            cfg.service(
                web::resource("/{path:.*}")
                    .route(web::get().to(built_in_page))
                    .route(web::head().to(built_in_page)),
            );
        }
        Pages::Folder(dir) => {
            let missing = dir.join(NOT_FOUND_PAGE);
            let not_found = actix_web::dev::fn_service(move |req: ServiceRequest| {
                folder_not_found(req, missing.clone())
            });
            cfg.service(
                actix_files::Files::new("/", dir)
                    .index_file("index.html")
                    .default_handler(not_found),
            );
        }
    }
}

/// One built-in page, by its path under `static/` (`index.html` for a
/// folder); its ETag is its SHA-256, and a browser revalidates it each time
/// (a new binary may bring new pages) for a 304 when unchanged.
async fn built_in_page(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let mut name = path.into_inner();
    if name.is_empty() || name.ends_with('/') {
        name.push_str("index.html");
    }
    built_in(&req, &name)
}

/// Page `name`, wherever the pages are served from.
async fn page(req: HttpRequest, pages: Pages, name: &'static str) -> HttpResponse {
    match pages {
        Pages::BuiltIn => built_in(&req, name),
        Pages::Folder(dir) => match actix_files::NamedFile::open_async(dir.join(name)).await {
            Ok(file) => file.respond_to(&req).map_into_boxed_body(),
            Err(_) => not_found_text(),
        },
    }
}

/// The built-in 404 page, as a handler.
async fn not_found_page(_: HttpRequest) -> HttpResponse {
    built_in_not_found()
}

/// The built-in 404 page.
fn built_in_not_found() -> HttpResponse {
    match BuiltInPages::get(NOT_FOUND_PAGE) {
        Some(page) => HttpResponse::NotFound()
            .content_type(with_charset("text/html"))
            .body(page.data.into_owned()),
        None => not_found_text(),
    }
}

/// Built-in page `name`, or the 404 page.
fn built_in(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some(file) = BuiltInPages::get(name) else {
        return built_in_not_found();
    };
    let hash: String = file
        .metadata
        .sha256_hash()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let etag = EntityTag::new_strong(hash);
    let fresh = unchanged(req, &etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(etag))
        .insert_header(header::CacheControl(vec![CacheDirective::NoCache]));
    if fresh {
        return response.finish();
    }
    response
        .content_type(with_charset(file.metadata.mimetype()))
        .body(file.data.into_owned())
}

/// The page of a path that names none: a link home.
const NOT_FOUND_PAGE: &str = "404.html";

/// A path the folder of pages (`server.static_dir`) does not hold: its
/// `404.html` (whole: no ETag or range, which could turn it into a 304 or
/// a 206), or a plain 404 when it has none.
async fn folder_not_found(
    req: ServiceRequest,
    page: PathBuf,
) -> Result<ServiceResponse, actix_web::Error> {
    let (req, _) = req.into_parts();
    let response = match actix_files::NamedFile::open_async(&page).await {
        Ok(page) => page
            .use_etag(false)
            .use_last_modified(false)
            .prefer_utf8(true)
            .customize()
            .with_status(StatusCode::NOT_FOUND)
            .respond_to(&req)
            .map_into_boxed_body(),
        Err(_) => not_found_text(),
    };
    Ok(ServiceResponse::new(req, response))
}

/// A 404 without the page (a folder of pages that lacks it).
fn not_found_text() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(with_charset("text/plain"))
        .body("not found\n")
}

/// Whether the browser's copy (`If-None-Match`) is `etag`.
fn unchanged(req: &HttpRequest, etag: &EntityTag) -> bool {
    match req.get_header::<header::IfNoneMatch>() {
        Some(header::IfNoneMatch::Any) => true,
        Some(header::IfNoneMatch::Items(items)) => items.iter().any(|item| item.weak_eq(etag)),
        None => false,
    }
}

/// `mime` with `charset=utf-8` when it is text: the pages are UTF-8.
fn with_charset(mime: &str) -> String {
    if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// An `/api/…` path that no route took.
async fn api_not_found() -> HttpResponse {
    http_error(StatusCode::NOT_FOUND, "not_found")
}

/// Logs requests without their query strings. `/ws` is left to its handler,
/// which says how each handshake went (without its `?resume=` secret).
fn request_logger() -> Logger {
    Logger::new("%a \"%{PATH}xi\" %s %b %Dms")
        .custom_request_replace("PATH", |req: &ServiceRequest| {
            format!("{} {}", req.method(), req.path())
        })
        .exclude("/ws")
}

/// How a handshake went, for its log line: the session id is public, the
/// resume token and the rest of the query never appear.
fn log_handshake(peer: &str, admission: &Admission) {
    let outcome = match admission.outcome {
        AdmitOutcome::New => "new",
        AdmitOutcome::Resumed => "resumed",
        AdmitOutcome::ResumeRefused => "resume refused",
    };
    log::info!(
        "ws handshake from {peer}: session {} ({outcome})",
        admission.id
    );
}

/// `TCP_USER_TIMEOUT`: the kernel reaps a peer that stopped reading
/// (`TCP_NODELAY` is set by actix-http: Nagle adds tens of ms to small
/// frames).
fn tune_socket(stream: &actix_rt::net::TcpStream, user_timeout: Duration) {
    if let Err(err) = SockRef::from(stream).set_tcp_user_timeout(Some(user_timeout)) {
        log::warn!("cannot set TCP_USER_TIMEOUT: {err}");
    }
}

/// `/ws` without a WebSocket handshake (a browser opening it as a page).
async fn not_a_handshake() -> HttpResponse {
    HttpResponse::build(StatusCode::UPGRADE_REQUIRED)
        .insert_header((header::UPGRADE, "websocket"))
        .content_type("text/plain; charset=utf-8")
        .body("this is Parlor's WebSocket endpoint: connect with a WebSocket client\n")
}

/// A handshake without `Origin` comes from a non-browser client: allowed.
fn origin_allowed(origin: Option<&HeaderValue>, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match origin {
        None => true,
        Some(origin) => allowed.iter().any(|ok| ok.as_bytes() == origin.as_bytes()),
    }
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let (node, cluster) = state.backplane.health().unzip();
    let degraded = cluster
        .as_ref()
        .is_some_and(|cluster| cluster.redis != "ok");
    HttpResponse::Ok().json(Health {
        status: if degraded { "degraded" } else { "ok" },
        sessions: state.slots.open(),
        node,
        cluster,
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

/// Quick matches in progress; private games are never listed.
async fn games(state: web::Data<AppState>) -> HttpResponse {
    if let Some(node) = state.backplane.node() {
        // Every live node's.
        return match node.list_games().await {
            Ok(listings) => HttpResponse::Ok().json(listings),
            Err(_) => http_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
    }
    match state.lobby.send(ListGames).await {
        Ok(listings) => HttpResponse::Ok().json(listings),
        Err(_) => lobby_gone(),
    }
}

/// The Lobby did not answer: the server is shutting down.
fn lobby_gone() -> HttpResponse {
    http_error(StatusCode::SERVICE_UNAVAILABLE, "internal")
}

/// `limit` when `/api/history` names none.
const HISTORY_DEFAULT_LIMIT: usize = 20;

/// The most games `/api/history` lists at once.
const HISTORY_MAX_LIMIT: usize = 100;

/// Query of `GET /api/history`.
#[derive(Deserialize)]
struct HistoryQuery {
    /// Only games of this kind.
    game: Option<GameKind>,
    /// At most this many (default 20, at most 100).
    limit: Option<usize>,
}

/// The body of an HTTP error: `{"error": "not_found"}`.
#[derive(Serialize)]
struct HttpError {
    /// What went wrong, as a code.
    error: &'static str,
}

fn http_error(status: StatusCode, error: &'static str) -> HttpResponse {
    HttpResponse::build(status).json(HttpError { error })
}

/// Finished games, newest first.
async fn history(
    state: web::Data<AppState>,
    query: Result<web::Query<HistoryQuery>, actix_web::Error>,
) -> HttpResponse {
    let Ok(query) = query else {
        return http_error(StatusCode::BAD_REQUEST, "bad_request");
    };
    let limit = query
        .limit
        .unwrap_or(HISTORY_DEFAULT_LIMIT)
        .min(HISTORY_MAX_LIMIT);
    if let Some(node) = state.backplane.node() {
        // The cluster's, newest first.
        let Ok(records) = node.history().await else {
            return http_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        };
        let kind = query.game.map(GameKind::as_str);
        let entries: Vec<serde_json::Value> = records
            .into_iter()
            .filter(|record| kind.is_none_or(|kind| record["game"] == kind))
            .take(limit)
            .map(|mut record| {
                if let Some(fields) = record.as_object_mut() {
                    fields.remove("seed");
                    fields.remove("moves");
                }
                record
            })
            .collect();
        return HttpResponse::Ok().json(entries);
    }
    match state
        .store
        .send(ListHistory {
            game: query.game,
            limit,
        })
        .await
    {
        Ok(Ok(entries)) => HttpResponse::Ok().json(entries),
        Ok(Err(err)) => store_trouble(&state, &err.to_string()),
        Err(err) => store_trouble(&state, &err.to_string()),
    }
}

/// One finished game whole, with its seed and moves.
async fn history_game(state: web::Data<AppState>, game_id: web::Path<String>) -> HttpResponse {
    let game_id = game_id.into_inner();
    if let Some(node) = state.backplane.node() {
        let Ok(records) = node.history().await else {
            return http_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        };
        return match records
            .into_iter()
            .find(|record| record["game_id"] == game_id)
        {
            Some(record) => HttpResponse::Ok().json(record),
            None => http_error(StatusCode::NOT_FOUND, "not_found"),
        };
    }
    match state.store.send(GetGame { game_id }).await {
        Ok(Ok(Some(record))) => HttpResponse::Ok().json(record),
        Ok(Ok(None)) => http_error(StatusCode::NOT_FOUND, "not_found"),
        Ok(Err(err)) => store_trouble(&state, &err.to_string()),
        Err(err) => store_trouble(&state, &err.to_string()),
    }
}

fn store_trouble(state: &AppState, err: &str) -> HttpResponse {
    log::error!("store: reading history failed: {err}");
    state.metrics.store_failed();
    http_error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
}

/// Live rooms with their kind and member count.
async fn rooms(state: web::Data<AppState>) -> HttpResponse {
    match state.lobby.send(ListRooms).await {
        Ok(listings) => HttpResponse::Ok().json(listings),
        Err(_) => lobby_gone(),
    }
}
