//! Prometheus metrics, served at `/metrics`. Every name starts with
//! `parlor_`. Each server owns its own registry, so servers started side by
//! side (as the tests do) never mix their counts.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use strum::IntoEnumIterator;

use crate::protocol::{ErrorCode, GameKind, GameResult, RoomKind};

/// Why a WebSocket handshake was refused.
#[derive(Debug, Clone, Copy)]
pub enum Rejection {
    /// `server.max_sessions` or the open-file limit reached: 503.
    Capacity,
    /// `Origin` not in `server.allowed_origins`: 403.
    Origin,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::Capacity => "capacity",
            Rejection::Origin => "origin",
        }
    }
}

/// A counter with a valid name.
fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

/// The server's counters and gauges.
pub struct Metrics {
    /// Where every metric below is registered.
    registry: Registry,
    /// Open WebSocket sessions.
    pub sessions: IntGauge,
    /// Sessions opened since start.
    pub sessions_opened: IntCounter,
    /// Text and binary frames received from clients.
    pub frames_in: IntCounter,
    /// Frames queued to clients.
    pub frames_out: IntCounter,
    /// Error frames sent, by code.
    errors: IntCounterVec,
    /// Sessions evicted for silence.
    pub evictions: IntCounter,
    /// Sessions dropped because they did not read.
    pub slow_client_drops: IntCounter,
    /// Handshakes refused, by reason.
    rejections: IntCounterVec,
    /// Games running (lingering finished ones included), by kind.
    games: IntGaugeVec,
    /// Games finished, by result.
    games_finished: IntCounterVec,
    /// Sessions waiting in each quick-match queue.
    queues: IntGaugeVec,
    /// Live rooms, by kind.
    rooms: IntGaugeVec,
    /// Members of live rooms.
    members: IntGauge,
    /// Room messages delivered (one per recipient).
    relayed: IntCounter,
    /// State requests, by outcome (answered or timed out).
    state_requests: IntCounterVec,
    /// Store writes done, by what (snapshot or game).
    store_writes: IntCounterVec,
    /// Store operations that failed.
    store_errors: IntCounter,
    /// Messages published on room channels for other nodes.
    pub cluster_published: IntCounter,
    /// Publishes that Redis did not take.
    pub cluster_publish_failed: IntCounter,
    /// Pushes from Redis dropped because the node loop was behind.
    pub cluster_push_dropped: IntCounter,
    /// Gaps in a room channel repaired from the room's log.
    pub cluster_gap_repairs: IntCounter,
    /// Gaps the log no longer held: the node's members were resynced.
    pub cluster_resyncs: IntCounter,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let metrics = Metrics {
            sessions: IntGauge::new("parlor_sessions", "Open WebSocket sessions")
                .expect("valid metric"),
            sessions_opened: IntCounter::new("parlor_sessions_opened_total", "Sessions opened")
                .expect("valid metric"),
            frames_in: IntCounter::new("parlor_frames_in_total", "Frames received from clients")
                .expect("valid metric"),
            frames_out: IntCounter::new("parlor_frames_out_total", "Frames queued to clients")
                .expect("valid metric"),
            errors: IntCounterVec::new(
                Opts::new("parlor_errors_total", "Error frames sent, by code"),
                &["code"],
            )
            .expect("valid metric"),
            evictions: IntCounter::new("parlor_evictions_total", "Sessions evicted for silence")
                .expect("valid metric"),
            slow_client_drops: IntCounter::new(
                "parlor_slow_client_drops_total",
                "Sessions dropped for not reading their frames",
            )
            .expect("valid metric"),
            rejections: IntCounterVec::new(
                Opts::new(
                    "parlor_handshake_rejections_total",
                    "WebSocket handshakes refused, by reason",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            games: IntGaugeVec::new(
                Opts::new("parlor_games", "Game actors running, by kind"),
                &["game"],
            )
            .expect("valid metric"),
            games_finished: IntCounterVec::new(
                Opts::new("parlor_games_finished_total", "Games finished, by result"),
                &["result"],
            )
            .expect("valid metric"),
            queues: IntGaugeVec::new(
                Opts::new(
                    "parlor_queue_length",
                    "Sessions waiting for a quick match, by game",
                ),
                &["game"],
            )
            .expect("valid metric"),
            rooms: IntGaugeVec::new(Opts::new("parlor_rooms", "Live rooms, by kind"), &["kind"])
                .expect("valid metric"),
            members: IntGauge::new("parlor_room_members", "Members of live rooms")
                .expect("valid metric"),
            relayed: IntCounter::new(
                "parlor_room_messages_relayed_total",
                "Room messages delivered, one per recipient",
            )
            .expect("valid metric"),
            state_requests: IntCounterVec::new(
                Opts::new(
                    "parlor_state_requests_total",
                    "Source-of-truth state requests, by outcome",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            store_writes: IntCounterVec::new(
                Opts::new("parlor_store_writes_total", "Store writes done, by what"),
                &["what"],
            )
            .expect("valid metric"),
            store_errors: IntCounter::new(
                "parlor_store_errors_total",
                "Store operations that failed",
            )
            .expect("valid metric"),
            cluster_published: counter(
                "parlor_cluster_published_total",
                "Messages published on room channels for other nodes",
            ),
            cluster_publish_failed: counter(
                "parlor_cluster_publish_failures_total",
                "Publishes and writes Redis did not take, or dropped while it was down",
            ),
            cluster_push_dropped: counter(
                "parlor_cluster_push_drops_total",
                "Pushes from Redis dropped because the node was behind",
            ),
            cluster_gap_repairs: counter(
                "parlor_cluster_gap_repairs_total",
                "Gaps in a room channel repaired from the room's log",
            ),
            cluster_resyncs: counter(
                "parlor_cluster_resyncs_total",
                "Gaps the room's log no longer held: members resynced",
            ),
            registry,
        };
        metrics.register_all();
        for code in ErrorCode::iter() {
            metrics.errors.with_label_values(&[code.as_str()]);
        }
        for why in [Rejection::Capacity, Rejection::Origin] {
            metrics.rejections.with_label_values(&[why.label()]);
        }
        for kind in GameKind::iter() {
            metrics.games.with_label_values(&[kind.as_str()]);
            metrics.queues.with_label_values(&[kind.as_str()]);
        }
        for kind in RoomKind::iter() {
            metrics.rooms.with_label_values(&[kind.as_str()]);
        }
        for what in ["snapshot", "game"] {
            metrics.store_writes.with_label_values(&[what]);
        }
        for outcome in ["answered", "timed_out"] {
            metrics.state_requests.with_label_values(&[outcome]);
        }
        for result in GameResult::iter() {
            metrics.games_finished.with_label_values(&[result.as_str()]);
        }
        metrics
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 22] = [
            Box::new(self.sessions.clone()),
            Box::new(self.sessions_opened.clone()),
            Box::new(self.frames_in.clone()),
            Box::new(self.frames_out.clone()),
            Box::new(self.errors.clone()),
            Box::new(self.evictions.clone()),
            Box::new(self.slow_client_drops.clone()),
            Box::new(self.rejections.clone()),
            Box::new(self.games.clone()),
            Box::new(self.games_finished.clone()),
            Box::new(self.queues.clone()),
            Box::new(self.rooms.clone()),
            Box::new(self.members.clone()),
            Box::new(self.relayed.clone()),
            Box::new(self.state_requests.clone()),
            Box::new(self.store_writes.clone()),
            Box::new(self.store_errors.clone()),
            Box::new(self.cluster_published.clone()),
            Box::new(self.cluster_publish_failed.clone()),
            Box::new(self.cluster_push_dropped.clone()),
            Box::new(self.cluster_gap_repairs.clone()),
            Box::new(self.cluster_resyncs.clone()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("metric names are unique");
        }
    }

    /// Live rooms, of every kind.
    pub fn rooms_live(&self) -> i64 {
        RoomKind::iter()
            .map(|kind| self.rooms.with_label_values(&[kind.as_str()]).get())
            .sum()
    }

    /// Running games, of every kind.
    pub fn games_live(&self) -> i64 {
        GameKind::iter()
            .map(|kind| self.games.with_label_values(&[kind.as_str()]).get())
            .sum()
    }

    /// A game actor started.
    pub fn game_started(&self, kind: GameKind) {
        self.games.with_label_values(&[kind.as_str()]).inc();
    }

    /// A game actor stopped.
    pub fn game_stopped(&self, kind: GameKind) {
        self.games.with_label_values(&[kind.as_str()]).dec();
    }

    /// A game ended with `result`.
    pub fn game_finished(&self, result: GameResult) {
        self.games_finished
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// The quick-match queue for `kind` now holds `length` sessions.
    pub fn queue_length(&self, kind: GameKind, length: usize) {
        let length = i64::try_from(length).unwrap_or(i64::MAX);
        self.queues.with_label_values(&[kind.as_str()]).set(length);
    }

    /// A room started.
    pub fn room_opened(&self, kind: RoomKind) {
        self.rooms.with_label_values(&[kind.as_str()]).inc();
    }

    /// A room stopped.
    pub fn room_closed(&self, kind: RoomKind) {
        self.rooms.with_label_values(&[kind.as_str()]).dec();
    }

    /// A member entered a room.
    pub fn member_joined(&self) {
        self.members.inc();
    }

    /// A member left a room.
    pub fn member_left(&self) {
        self.members.dec();
    }

    /// `count` room messages delivered.
    pub fn relayed(&self, count: u64) {
        self.relayed.inc_by(count);
    }

    /// A state request was answered, or timed out.
    pub fn state_request(&self, answered: bool) {
        let outcome = if answered { "answered" } else { "timed_out" };
        self.state_requests.with_label_values(&[outcome]).inc();
    }

    /// The store wrote a `what` (snapshot or game).
    pub fn store_written(&self, what: &str) {
        self.store_writes.with_label_values(&[what]).inc();
    }

    /// A store operation failed.
    pub fn store_failed(&self) {
        self.store_errors.inc();
    }

    /// Counts one error frame sent with `code`.
    pub fn error_sent(&self, code: ErrorCode) {
        self.errors.with_label_values(&[code.as_str()]).inc();
    }

    /// Counts one refused handshake.
    pub fn rejected(&self, why: Rejection) {
        self.rejections.with_label_values(&[why.label()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            log::error!("encoding metrics failed: {err}");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
