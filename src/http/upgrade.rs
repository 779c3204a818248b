//! `GET /ws`: the WebSocket handshake, taken through actix-http's upgrade
//! hook rather than an actix-web route, so that an open session keeps the
//! raw TCP stream and nothing of the HTTP connection (its read and write
//! buffers, its dispatcher).
//!
//! Every request that asks for a WebSocket upgrade reaches the hook,
//! whatever its path, so the hook answers for itself: 404 off `/ws`, the
//! handshake's own errors (400, 405, 426), 400 for a query that does not
//! parse, 403 for an origin not allowed, 503 when the server is full. An
//! accepted handshake is answered `101` by the session as its first bytes.

use std::{net::SocketAddr, sync::Arc};

use actix_codec::{Encoder, Framed};
use actix_http::{
    body::BodySize,
    h1,
    header::{self, HeaderValue},
    ws, ConnectionType, HttpMessage, Request, Response, StatusCode,
};
use actix_rt::net::TcpStream;
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::{log_handshake, origin_allowed, WsQuery};
use crate::{
    links::{Admission, Away, Reconnect, SessionHandle},
    lobby::Admit,
    metrics::Rejection,
    protocol::{self, LeaveReason},
    session::{Session, Upgraded},
    AppState, SessionSlot,
};

/// Takes one upgrade request: a session, or an HTTP answer and the
/// connection closed. Never fails: every refusal is answered.
pub(super) async fn take(
    state: Arc<AppState>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_http::Error> {
    let peer = peer(req.peer_addr());
    let (slot, query) = match accept(&state, &req, &peer) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            answer(framed, refusal).await;
            return Ok(());
        }
    };
    // Made before the Lobby admits anyone, so that a failure leaves no
    // session behind (never expected: the request is already checked).
    let Ok(switching) = ws::handshake_response(req.head()).message_body(()) else {
        log::error!("ws handshake from {peer}: the 101 answer could not be made");
        let refusal = plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
        answer(framed, refusal).await;
        return Ok(());
    };
    let admit = Admit {
        resume: query.resume,
        name: query.name.as_deref().and_then(protocol::valid_name),
        received: query.received,
    };
    let admission = match state.lobby.send(admit).await {
        Ok(Some(admission)) => admission,
        Ok(None) => {
            // The token may be another node's, and the cluster did not
            // answer in time: the client tries again with it.
            log::warn!("ws handshake from {peer}: the cluster did not answer in time");
            let refusal = plain(StatusCode::SERVICE_UNAVAILABLE, "unavailable; try again\n");
            answer(framed, refusal).await;
            return Ok(());
        }
        Err(_) => {
            // The Lobby has stopped: the server is shutting down.
            let refusal = plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            answer(framed, refusal).await;
            return Ok(());
        }
    };
    log_handshake(&peer, &admission);
    let upgraded = upgraded(framed, switching, slot);
    match admission.running.clone() {
        Some(session) => reconnect(&state, &session, upgraded, admission, query.received),
        None => {
            Session::start(state.sessions.clone(), admission, upgraded);
        }
    }
    Ok(())
}

/// Hands a resumed session its new connection, detached from this thread:
/// the session may run on another one.
fn reconnect(
    state: &AppState,
    session: &SessionHandle,
    upgraded: Upgraded,
    admission: Admission,
    received: Option<u64>,
) {
    let Upgraded {
        io,
        read_ahead,
        response,
        slot,
    } = upgraded;
    match io.into_std() {
        Ok(io) => session.reconnect(Reconnect {
            io,
            read_ahead,
            response,
            slot,
            admission,
            received,
        }),
        Err(err) => {
            // The client sees its connection close and tries again; the
            // Lobby, which counted it back, holds it as away again.
            log::error!("session {}: the resume failed: {err}", admission.id);
            state.lobby.do_send(Away {
                id: admission.id,
                connection: admission.connection,
                reason: LeaveReason::Disconnected,
            });
        }
    }
}

/// A refused handshake: the answer's head and body.
struct Refusal(Response<()>, &'static str);

/// A plain-text answer.
fn plain(status: StatusCode, body: &'static str) -> Refusal {
    let mut response = Response::with_body(status, ());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Refusal(response, body)
}

/// Checks the request, in the order a route would: path, handshake,
/// query, origin, then a place among the sessions.
fn accept(state: &AppState, req: &Request, peer: &str) -> Result<(SessionSlot, WsQuery), Refusal> {
    if req.path() != "/ws" {
        if req.path().starts_with("/api/") {
            let mut refusal = plain(StatusCode::NOT_FOUND, "{\"error\":\"not_found\"}");
            refusal.0.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Err(refusal);
        }
        return Err(plain(StatusCode::NOT_FOUND, "not found\n"));
    }
    if let Err(err) = ws::verify_handshake(req.head()) {
        log::info!("ws handshake from {peer}: refused, {err}");
        let (response, _) = Response::from(err).into_parts();
        return Err(Refusal(response, ""));
    }
    let Ok(pairs) = serde_urlencoded::from_str(req.uri().query().unwrap_or("")) else {
        log::info!("ws handshake from {peer}: refused, the query does not parse");
        return Err(plain(StatusCode::BAD_REQUEST, "the query does not parse\n"));
    };
    let query = WsQuery::from_pairs(pairs);
    let origin = req.headers().get(header::ORIGIN);
    if !origin_allowed(origin, &state.config.server.allowed_origins) {
        state.metrics.rejected(Rejection::Origin);
        // Anyone can send these: debug, or they would flood the log (the
        // metric counts them).
        log::debug!("ws handshake from {peer}: refused, origin not allowed (403)");
        return Err(plain(StatusCode::FORBIDDEN, "origin not allowed\n"));
    }
    let Some(slot) = state.slots.try_take() else {
        state.metrics.rejected(Rejection::Capacity);
        log::debug!("ws handshake from {peer}: refused, server full (503)");
        if state.slots.note_refusal() {
            log::warn!(
                "server full: {} sessions open, the most this server takes; handshakes get 503 \
                 (counted in parlor_handshake_rejections_total) until one closes",
                state.slots.cap()
            );
        }
        return Err(plain(StatusCode::SERVICE_UNAVAILABLE, "server full\n"));
    };
    Ok((slot, query))
}

/// Keeps what the session needs of an accepted handshake's connection: the
/// TCP stream, any bytes read past the handshake, and what to write first
/// (anything the connection had not yet written, then the `101`).
/// Everything else of the HTTP connection is dropped here.
fn upgraded(
    framed: Framed<TcpStream, h1::Codec>,
    switching: Response<()>,
    slot: SessionSlot,
) -> Upgraded {
    let mut parts = framed.into_parts();
    let mut response = std::mem::take(&mut parts.write_buf);
    // Encoding into memory cannot fail; should it, the client sees the
    // connection close before any answer.
    let _ = parts.codec.encode(
        h1::Message::Item((switching, BodySize::None)),
        &mut response,
    );
    // A copy, so that the connection's read buffer is freed with the rest.
    let read_ahead = BytesMut::from(&parts.read_buf[..]);
    Upgraded {
        io: parts.io,
        read_ahead,
        response,
        slot: Box::new(slot),
    }
}

/// Answers a refused handshake and closes the connection.
async fn answer(framed: Framed<TcpStream, h1::Codec>, Refusal(mut response, body): Refusal) {
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let mut parts = framed.into_parts();
    let mut bytes = BytesMut::new();
    let size = BodySize::Sized(body.len() as u64);
    if parts
        .codec
        .encode(h1::Message::Item((response, size)), &mut bytes)
        .is_err()
    {
        return;
    }
    bytes.extend_from_slice(body.as_bytes());
    let _ = parts.io.write_all(&bytes).await;
    let _ = parts.io.shutdown().await;
}

/// The client's IP address, for the log.
fn peer(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(
        || "an unknown address".to_string(),
        |addr| addr.ip().to_string(),
    )
}
