//! Parlor: a real-time room and game server on actix actors.
//!
//! Every session is a [`session::Session`] actor registered with one
//! [`lobby::Lobby`] actor; it outlives its WebSocket connections (a resume
//! hands it a new one). The wire protocol is `docs/PROTOCOL.md`,
//! typed in [`protocol`]. Modules form layers and import only downward
//! (`protocol`, `config`, `identity` at the bottom; then [`links`]; then
//! the actors, which know `links` and never each other; then the Lobby;
//! then HTTP and start-up).
//!
//! Modules:
//! - [`config`]: the configuration (built-in defaults, `--config`, `PARLOR_*`).
//! - [`protocol`]: every frame of the wire protocol as serde types.
//! - [`links`]: how actors reach each other, and the messages they share.
//! - [`session`]: the session actor: heartbeat, limits, outbox, routing,
//!   frame numbers and the replay ring.
//! - [`lobby`]: the session registry, away sessions and resumes, matchmaking,
//!   the directories, the games in play brought back at start.
//! - [`game`]: the registry of games, their rules, and the Game actor.
//! - [`room`]: the Room actor (chat, stage, canvas) and the canvas board.
//! - [`http`]: the routes: `/ws`, `/healthz`, `/metrics`, `/api/*`, static files.
//! - [`metrics`]: Prometheus counters.
//! - [`identity`]: ids, secrets, friendly names and colors.
//! - [`rate_limit`]: the per-session token bucket.
//! - [`restore`]: start-up: the games in play when the server last stopped,
//!   brought back with their seated sessions.
//! - [`shutdown`]: the signal that starts a graceful shutdown.
//! - [`store`]: SQLite on its own thread: room snapshots, finished games and
//!   games in play.
//! - [`workers`]: which thread each Room and Game runs on.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let config = parlor::config::Config::defaults();
//! let server = parlor::start(config)?;
//! println!("listening on {}", server.addr());
//! server.run_until(parlor::shutdown::shutdown_signal()).await
//! # }
//! ```

pub mod cluster;
pub mod config;
pub mod game;
pub mod http;
pub mod identity;
pub mod links;
pub mod lobby;
pub mod metrics;
pub mod protocol;
pub mod rate_limit;
pub mod restore;
pub mod room;
pub mod session;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod workers;

use std::{
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::{Actor, Addr, AsyncContext};
use actix_server::Server;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    cluster::Backplane,
    config::Config,
    links::{LobbyLink, StoreLink},
    lobby::Lobby,
    metrics::Metrics,
    session::SessionShared,
    store::redis::RedisSnapshots,
    store::Store,
    workers::Workers,
};

/// Open files kept free for listeners, logs, the store and plain HTTP
/// connections when the open-file limit caps the number of sessions.
pub(crate) const FD_HEADROOM: u64 = 256;

/// Plain HTTP connections (health checks, pages, handshakes in progress)
/// that may be open beyond every file sessions may take: half the open
/// files kept free (see [`capacity`]).
const HTTP_CONNECTIONS: usize = FD_HEADROOM as usize / 2;

/// How often shutdown checks whether every session has closed.
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

/// The longest pause between two tries of the store's failed writes at exit.
const STORE_RETRY_MAX_PAUSE: Duration = Duration::from_secs(1);

/// What every request handler and session shares.
pub struct AppState {
    /// The configuration the server was started with.
    pub config: Arc<Config>,
    /// The one Lobby.
    pub lobby: Addr<Lobby>,
    /// Prometheus metrics, shared with the Lobby and games.
    pub metrics: Arc<Metrics>,
    /// Places for open sessions.
    pub slots: SessionSlots,
    /// The embedded store.
    pub store: Addr<Store>,
    /// The HTTP workers' threads, where rooms and games run.
    pub workers: Arc<Workers>,
    /// What every session shares.
    pub sessions: Arc<SessionShared>,
    /// How this node reaches the others.
    pub backplane: Backplane,
    /// With a cluster, where room snapshots go (Redis).
    pub snapshots: Option<Addr<RedisSnapshots>>,
    /// The last ten minutes of figures, for the operators' page.
    pub stats: Arc<stats::Stats>,
}

/// Places for open sessions: a semaphore of `server.max_sessions` permits
/// (or fewer when the open-file limit is lower).
pub struct SessionSlots {
    /// One permit per session that may still open.
    permits: Arc<Semaphore>,
    /// Sessions allowed at once.
    cap: usize,
    /// Set by a handshake refused for want of a place, cleared by the next
    /// place taken: the first refusal of each full spell is logged.
    refusing: AtomicBool,
}

/// One taken place; gives it back when dropped.
pub type SessionSlot = OwnedSemaphorePermit;

impl SessionSlots {
    /// `cap` free places (at most [`Semaphore::MAX_PERMITS`]).
    pub fn new(cap: usize) -> SessionSlots {
        let cap = cap.min(Semaphore::MAX_PERMITS);
        SessionSlots {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            refusing: AtomicBool::new(false),
        }
    }

    /// Takes a place, or `None` when all are taken.
    pub fn try_take(&self) -> Option<SessionSlot> {
        // The semaphore is never closed: an error means no permit is free.
        let slot = self.permits.clone().try_acquire_owned().ok()?;
        self.refusing.store(false, Ordering::Relaxed);
        Some(slot)
    }

    /// Notes a handshake refused because every place is taken; `true` for
    /// the first refusal since a place was last taken.
    pub fn note_refusal(&self) -> bool {
        !self.refusing.swap(true, Ordering::Relaxed)
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.cap - self.permits.available_permits()
    }

    /// Sessions allowed at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Says how many sessions are open, from anywhere.
    pub fn counter(&self) -> impl Fn() -> usize + 'static {
        let (permits, cap) = (self.permits.clone(), self.cap);
        move || cap - permits.available_permits()
    }
}

/// A bound, not yet running, server.
pub struct Parlor {
    /// The address it listens on (the real port when bound to port 0).
    addr: SocketAddr,
    /// The actix-web server, started when polled.
    server: Server,
    /// The shared state, for shutdown.
    state: Arc<AppState>,
}

/// Binds the server described by `config`. Must be called inside an actix
/// system (`#[actix_web::main]`); serving starts with [`Parlor::run_until`].
pub fn start(config: Config) -> io::Result<Parlor> {
    let (cap, connections) = capacity(config.server.max_sessions.get());
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let path = config.store.path.clone();
    let conn = store::open(&path)
        .map_err(|err| io::Error::other(format!("store.path {path:?}: {err}")))?;
    log_store_path(&path);
    let live = store::load_live(&conn)
        .map_err(|err| io::Error::other(format!("store.path {path:?}: {err}")))?;
    let store = Store::start(path, conn, metrics.clone());
    retry_store_writes(store.clone(), config.store_retry());
    let workers = Arc::new(Workers::new());
    // The backplane delivers to the Lobby, which holds the backplane: its
    // address comes first.
    let lobby_context: actix::Context<Lobby> = actix::Context::new();
    let inbox = cluster::redis::LobbyInbox {
        forwarded: lobby_context.address().recipient(),
        answered: lobby_context.address().recipient(),
        changed: lobby_context.address().recipient(),
        ended: lobby_context.address().recipient(),
    };
    let backplane =
        Backplane::from_config(&config, metrics.clone(), inbox).map_err(io::Error::other)?;
    // With a cluster, room snapshots live in Redis, for whichever node
    // owns a room next.
    let snapshots = backplane.node().map(|node| {
        let snapshots = store::redis::RedisSnapshots::new(
            node.manager(),
            StoreLink::new(&store),
            node.request_timeout(),
            config.cluster.history_max.get(),
            metrics.clone(),
        );
        RedisSnapshots::start_in_arbiter(node.arbiter(), |_| snapshots)
    });
    let rooms_store = match &snapshots {
        Some(snapshots) => StoreLink::new(snapshots),
        None => StoreLink::new(&store),
    };
    let lobby = lobby_context.run(Lobby::new(
        &config,
        metrics.clone(),
        rooms_store,
        workers.clone(),
        backplane.clone(),
    ));
    let sessions = Arc::new(SessionShared {
        config: config.clone(),
        metrics: metrics.clone(),
        lobby: LobbyLink::new(&lobby),
    });
    restore::restore(&sessions, &lobby, &StoreLink::new(&store), &workers, live);
    let slots = SessionSlots::new(cap);
    let stats = Arc::new(stats::Stats::default());
    stats.start(metrics.clone(), slots.counter());
    let state = Arc::new(AppState {
        config,
        lobby,
        metrics,
        slots,
        store,
        workers,
        sessions,
        backplane,
        snapshots,
        stats,
    });
    let (server, addr) = http::bind(state.clone(), connections)?;
    Ok(Parlor {
        addr,
        server,
        state,
    })
}

/// Runs the server described by `config` until SIGINT or SIGTERM.
pub async fn run(config: Config) -> io::Result<()> {
    let server = start(config)?;
    println!("Parlor is listening on http://{}/", server.addr());
    server.run_until(shutdown::shutdown_signal()).await
}

impl Parlor {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` completes, then shuts down gracefully: every
    /// session is sent Close 1001 and given up to `server.shutdown_timeout_ms`
    /// to go, then the server stops.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let handle = self.server.handle();
        let mut serving = actix_rt::spawn(self.server);
        tokio::select! {
            result = &mut serving => return result.unwrap_or_else(|err| Err(io::Error::other(err))),
            () = stop => {}
        }
        let deadline = Instant::now() + self.state.config.shutdown_timeout();
        // No new connections from here on: they would miss the Close below.
        handle.pause().await;
        // Bounded: with Redis gone, the rooms close here as on one node.
        let handing = hand_over(&self.state);
        if tokio::time::timeout_at(deadline.into(), handing)
            .await
            .is_err()
        {
            log::warn!("cluster: rooms not handed over within server.shutdown_timeout_ms");
        }
        let told = self.state.lobby.send(lobby::CloseAll).await.unwrap_or(0);
        log::info!("shutting down: closing {told} sessions");
        while self.state.slots.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(SHUTDOWN_POLL).await;
        }
        if let Some(node) = self.state.backplane.node() {
            // Its sessions resume elsewhere at once, not after the node
            // timeout.
            node.leave().await;
        }
        // Rooms run on the workers' threads (see `workers`): they write
        // their snapshots before the server stops those threads. Rooms and
        // store share one more `server.shutdown_timeout_ms`.
        let store_deadline = Instant::now() + self.state.config.shutdown_timeout();
        flush_rooms(&self.state, store_deadline).await;
        // Stopping the server closes every connection: nothing changes after.
        handle.stop(true).await;
        let served = serving
            .await
            .unwrap_or_else(|err| Err(io::Error::other(err)));
        let unwritten = drain_store(&self.state, store_deadline).await;
        if !unwritten.is_empty() {
            let lost = format!("{} writes could not be made before exit", unwritten.len());
            return Err(io::Error::other(lost));
        }
        served
    }
}

/// With a cluster, gives every room this node owns to the nodes with
/// members in it: its snapshot is written first, so that the next owner
/// carries on from it (ARCHITECTURE.md, *Shutdown*).
async fn hand_over(state: &AppState) {
    let Some(snapshots) = &state.snapshots else {
        return;
    };
    let rooms = state
        .lobby
        .send(lobby::OwnedRooms)
        .await
        .unwrap_or_default();
    for room in &rooms {
        let _ = room.send(room::Flush).await;
    }
    let _ = snapshots.send(store::redis::Synced).await;
    let handed = state.lobby.send(lobby::HandOver).await.unwrap_or(0);
    log::info!("cluster: handed {handed} rooms over");
}

/// Has every live room write its pending snapshot (waiting, until
/// `deadline`, for closing rooms to finish).
async fn flush_rooms(state: &AppState, deadline: Instant) {
    let rooms = loop {
        let (rooms, closing) = state.lobby.send(lobby::LiveRooms).await.unwrap_or_default();
        if closing == 0 || Instant::now() >= deadline {
            break rooms;
        }
        tokio::time::sleep(SHUTDOWN_POLL).await;
    };
    for room in rooms {
        // A room that stopped meanwhile wrote its snapshot as it stopped.
        let _ = room.send(room::Flush).await;
    }
}

/// Waits (retrying, until `deadline`) until the store has written
/// everything it was given; returns what could not be written.
async fn drain_store(state: &AppState, deadline: Instant) -> Vec<String> {
    let mut pause = SHUTDOWN_POLL;
    loop {
        let unwritten = match state.store.send(store::Drain).await {
            Ok(unwritten) => unwritten,
            Err(err) => vec![format!("everything (the store is unreachable: {err})")],
        };
        if unwritten.is_empty() {
            log::info!("store: everything written");
            return unwritten;
        }
        if Instant::now() >= deadline {
            for item in &unwritten {
                log::error!("store: lost at exit: {item}");
            }
            return unwritten;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(STORE_RETRY_MAX_PAUSE);
    }
}

/// Logs the store's file as an absolute path: `store.path` is relative to
/// whatever folder the server started in.
fn log_store_path(path: &str) {
    if path == store::IN_MEMORY {
        return;
    }
    // The file exists once opened; `absolute` is the fallback if it cannot
    // be resolved (a folder on the way not readable).
    match std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)) {
        Ok(absolute) => log::info!("store: {}", absolute.display()),
        Err(_) => log::info!("store: {path}"),
    }
}

/// Has the store try its failed writes again every `period`.
fn retry_store_writes(store: Addr<Store>, period: Duration) {
    actix_rt::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            if store.try_send(store::Retry).is_err() && !store.connected() {
                return;
            }
        }
    });
}

/// Raises the soft open-file limit to the hard one and caps sessions below
/// it, so that a server full of sessions answers 503. Returns (sessions,
/// HTTP connections). Plain HTTP connections, handshakes in progress among
/// them, may take any file no session is using, and [`HTTP_CONNECTIONS`]
/// more: kept to the files sessions can never take, they would have only
/// [`HTTP_CONNECTIONS`] places whenever `server.max_sessions` is above the
/// open-file limit (the default is, on most machines), and that many slow
/// handshakes (slowloris) would keep every client out. The price: a server
/// full of sessions and of plain connections at once fails to accept for a
/// moment (actix-server pauses and tries again) instead of answering 503.
fn capacity(max_sessions: usize) -> (usize, usize) {
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) => {
            let raised = rlimit::increase_nofile_limit(hard).unwrap_or(soft);
            let by_files =
                usize::try_from(raised.saturating_sub(FD_HEADROOM)).unwrap_or(usize::MAX);
            let cap = max_sessions.min(by_files);
            let connections = by_files.saturating_add(HTTP_CONNECTIONS);
            log::info!(
                "open-file limit: soft {soft}, hard {hard}, raised to {raised}; at most {cap} \
                 sessions and {connections} other HTTP connections"
            );
            (cap, connections)
        }
        Err(err) => {
            log::warn!("cannot read the open-file limit ({err}); at most {max_sessions} sessions");
            (max_sessions, max_sessions.saturating_add(HTTP_CONNECTIONS))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_refuse_past_the_cap_and_come_back() {
        let slots = SessionSlots::new(2);
        let first = slots.try_take().unwrap();
        let _second = slots.try_take().unwrap();
        assert!(slots.try_take().is_none());
        assert_eq!(slots.open(), 2);
        drop(first);
        assert_eq!(slots.open(), 1);
        assert!(slots.try_take().is_some());
    }

    #[test]
    fn a_full_spell_is_noted_once_until_a_place_is_taken() {
        let slots = SessionSlots::new(1);
        let only = slots.try_take().unwrap();
        assert!(slots.note_refusal());
        assert!(!slots.note_refusal());
        drop(only);
        let _again = slots.try_take().unwrap();
        assert!(slots.note_refusal());
    }
}
