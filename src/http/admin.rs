//! The operators' API (PROTOCOL.md, *Operators*): `/api/admin/*` and the
//! `/admin` page, served only when `admin.token` is set (else each is a
//! 404), each API request carrying `Authorization: Bearer <token>`,
//! compared in constant time and never logged.

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use serde::Deserialize;

use super::{http_error, lobby_gone, not_found_page, page, Pages};
use crate::{
    identity,
    lobby::{EndGame, Kick, ListSessions, ShutRoomNow},
    stats, AppState,
};

/// `limit` when `/api/admin/sessions` names none.
const SESSIONS_DEFAULT_LIMIT: usize = 100;

/// The most sessions listed at once.
const SESSIONS_MAX_LIMIT: usize = 1000;

/// The operators' page, among the pages.
const ADMIN_PAGE: &str = "admin.html";

/// The operators' routes and page, when `token` is set; else the page is
/// not found either.
pub(super) fn routes(cfg: &mut web::ServiceConfig, token: &str, pages: &Pages) {
    if token.is_empty() {
        let hidden = || web::to(|req: HttpRequest| not_found_page(req));
        cfg.route("/admin", hidden()).route("/admin.html", hidden());
        return;
    }
    let pages = pages.clone();
    cfg.route(
        "/admin",
        web::get().to(move |req: HttpRequest| page(req, pages.clone(), ADMIN_PAGE)),
    );
    cfg.service(
        web::scope("/api/admin")
            .route("/stats", web::get().to(stats))
            .route("/sessions", web::get().to(sessions))
            .route("/sessions/{session}/kick", web::post().to(kick))
            .route("/rooms/{room}/close", web::post().to(close_room))
            .route("/games/{game_id}/end", web::post().to(end_game)),
    );
}

/// Whether `req` carries the operators' token.
fn authorized(req: &HttpRequest, state: &AppState) -> bool {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // Hashes of equal length, compared in constant time.
    let expected = identity::secret_hash(&state.config.admin.token);
    given.is_some_and(|given| identity::matches_hash(given, &expected))
}

fn unauthorized() -> HttpResponse {
    http_error(StatusCode::UNAUTHORIZED, "unauthorized")
}

/// 200 `{"ok":true}` when the Lobby did it, 404 when there was nothing to do it to.
fn done(found: bool) -> HttpResponse {
    if found {
        HttpResponse::Ok().json(serde_json::json!({"ok": true}))
    } else {
        http_error(StatusCode::NOT_FOUND, "not_found")
    }
}

/// The last ten minutes of figures, sampled every two seconds.
async fn stats(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    HttpResponse::Ok().json(serde_json::json!({
        "interval_ms": stats::INTERVAL.as_millis() as u64,
        "samples": state.stats.samples(),
    }))
}

/// Query of `GET /api/admin/sessions`.
#[derive(Deserialize)]
struct SessionsQuery {
    limit: Option<usize>,
}

async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Result<web::Query<SessionsQuery>, actix_web::Error>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    let Ok(query) = query else {
        return http_error(StatusCode::BAD_REQUEST, "bad_request");
    };
    let limit = query
        .limit
        .unwrap_or(SESSIONS_DEFAULT_LIMIT)
        .min(SESSIONS_MAX_LIMIT);
    match state.lobby.send(ListSessions { limit }).await {
        Ok(sessions) => HttpResponse::Ok().json(sessions),
        Err(_) => lobby_gone(),
    }
}

async fn kick(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: web::Path<String>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    let session = session.into_inner();
    match state.lobby.send(Kick { session }).await {
        Ok(found) => done(found),
        Err(_) => lobby_gone(),
    }
}

async fn close_room(
    req: HttpRequest,
    state: web::Data<AppState>,
    room: web::Path<String>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    let room = room.into_inner();
    match state.lobby.send(ShutRoomNow { room }).await {
        Ok(found) => done(found),
        Err(_) => lobby_gone(),
    }
}

async fn end_game(
    req: HttpRequest,
    state: web::Data<AppState>,
    game_id: web::Path<String>,
) -> HttpResponse {
    if !authorized(&req, &state) {
        return unauthorized();
    }
    let game_id = game_id.into_inner();
    match state.lobby.send(EndGame { game_id }).await {
        Ok(found) => done(found),
        Err(_) => lobby_gone(),
    }
}
