//! The Lobby actor: one per server. It owns the session registry
//! (`sessions`: the id, name, color, resume secret and handle of every
//! session, live or held for reconnection), the quick-match queues and the
//! directory of games (`matchmaking`), and the directory of rooms
//! (`rooms`: who is in which room; the Lobby alone decides joins and
//! leaves). It is the only actor that knows where a game or room lives;
//! once a game has started or a room is joined, sessions talk to it
//! directly.
//!
//! Takes `Admit` from the `/ws` handler (before the connection reaches a
//! session actor); `Register`, `Away`, `Rename`, `LobbyRequest`, `JoinRoomRequest` and
//! `LeaveRoomRequest` from sessions; `GameFinished` and `GameClosed` from
//! games and `RoomClosed` from rooms, through the recipients it gives them;
//! `ListGames` and `ListRooms` from the HTTP API; [`Restore`] once at start
//! (the games in play when the server last stopped); [`CloseAll`] and
//! [`LiveRooms`] at shutdown. Starts Game and Room actors; sends rooms
//! `Enter`, `Exit`, `MemberAway`, `MemberBack`, `Renamed`, `CloseRoom` and
//! `Revive`; reaches sessions through their `SessionHandle`s: answers, room
//! links and refusals, closes (1001 to all at shutdown), and the end of a
//! session whose grace ran out.

mod admin;
mod cluster;
mod games_elsewhere;
mod handover;
mod matchmaking;
mod restore;
mod rooms;
mod sessions;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime},
};

use actix::prelude::*;
use actix_http::ws::CloseCode;

pub use self::{
    admin::{AdminSession, EndGame, Kick, ListSessions, ShutRoomNow},
    cluster::{HandOver, OwnedRooms},
    matchmaking::ListGames,
    restore::{Restore, RestoredGame, RestoredSession},
    rooms::{ListRooms, RoomLimits},
    sessions::Admit,
};
use self::{
    cluster::{HeldJoin, RemoteRoom},
    games_elsewhere::GameElsewhere,
    matchmaking::GameEntry,
    rooms::RoomEntry,
    sessions::Held,
};
use crate::{
    cluster::{wire::Carried, Backplane},
    config::Config,
    game::GameSettings,
    links::{RoomSeat, SessionHandle, StoreLink},
    metrics::Metrics,
    protocol::{GameKind, LeaveReason, RequestId},
    room::{Room, RoomSettings},
    workers::Workers,
};

/// What the Lobby knows of one session.
struct Entry {
    /// The display name.
    name: String,
    /// The session's `#rrggbb` color.
    color: String,
    /// The hash of the secret part of the session's current resume token.
    resume_hash: String,
    /// The session actor; `None` until it has registered.
    handle: Option<SessionHandle>,
    /// The number of the newest connection admitted for it.
    connection: u64,
    /// Why its connection ended, while it is away.
    away: Option<LeaveReason>,
    /// Bumped at every drop, so that an expiry set for an earlier drop
    /// does nothing after the session came back.
    drops: u64,
    /// The game the session is queued for, if any.
    queued: Option<GameKind>,
    /// The timer that pairs it with a bot if it waits alone too long
    /// (`games.bot_after_ms`); a new `find_game` replaces it.
    bot_offer: Option<SpawnHandle>,
    /// Games the session sits in, by id (until they stop).
    games: Vec<String>,
    /// When the session was first admitted here.
    since: SystemTime,
    /// Rooms the session is in (away or not).
    rooms: Vec<RoomSeat>,
    /// Rooms it left because its away grace ran out, to join again on
    /// resume.
    lost_rooms: Vec<RoomSeat>,
}

impl Entry {
    /// A session admitted on `connection`, not yet registered, in no game
    /// or room.
    fn new(name: String, color: String, resume_hash: String, connection: u64) -> Entry {
        Entry {
            name,
            color,
            resume_hash,
            handle: None,
            connection,
            away: None,
            drops: 0,
            queued: None,
            bot_offer: None,
            games: Vec::new(),
            since: SystemTime::now(),
            rooms: Vec::new(),
            lost_rooms: Vec::new(),
        }
    }

    /// The session's actor, if it is connected.
    fn connected(&self) -> Option<&SessionHandle> {
        self.handle.as_ref().filter(|_| self.away.is_none())
    }
}

/// The session registry, the queues and the directories.
pub struct Lobby {
    /// Sessions by id, live or held.
    sessions: HashMap<String, Entry>,
    /// Held sessions in order of their deadline (the grace is the same for
    /// all, so the order they were held in).
    held: VecDeque<Held>,
    /// The one timer that expires the first held session, while any is held.
    sweep: Option<SpawnHandle>,
    /// Quick-match queues: session ids, first come first paired.
    queues: HashMap<GameKind, VecDeque<String>>,
    /// Games by id, until they stop.
    games: HashMap<String, GameEntry>,
    /// Live rooms by name.
    rooms: HashMap<String, RoomEntry>,
    /// Rooms told to close that have not yet reported closing.
    closing: HashSet<String>,
    /// Reconnect grace and linger, for the Lobby and its games.
    settings: GameSettings,
    /// How long a dropped session stays in its rooms, away.
    away_grace: Duration,
    /// The number of the last connection admitted.
    connections: u64,
    /// Games one session may wait in or play at once (`games.max_per_session`).
    max_games: usize,
    /// A quick-match player alone this long plays a bot (`games.bot_after_ms`;
    /// zero: never).
    bot_after: Duration,
    /// Room sizes and the rooms' shared settings.
    room_limits: RoomLimits,
    /// Queue, game and room counters.
    metrics: Arc<Metrics>,
    /// Where games and rooms keep what outlives them.
    store: StoreLink,
    /// The threads games and rooms run on.
    workers: Arc<Workers>,
    /// How this node reaches the others.
    backplane: Backplane,
    /// Rooms other nodes own, with members here, by name.
    remote_rooms: HashMap<String, RemoteRoom>,
    /// Joins held while their room is claimed, by room.
    claiming: HashMap<String, Vec<HeldJoin>>,
    /// Joins forwarded to another node, awaiting its answer: the join's
    /// serial and the node asked, by (session, room).
    answering: HashMap<(String, String), (u64, String)>,
    /// Members on other nodes of the rooms this node runs: their node, by
    /// session, by room.
    remote_members: HashMap<String, HashMap<String, String>>,
    /// Sessions resuming here that another node is ending first, by the
    /// number of the request: who to tell whether it did.
    evicting: HashMap<u64, tokio::sync::oneshot::Sender<(bool, Option<Carried>)>>,
    /// Sessions handed over here whole, until they register: what to link
    /// them to.
    adopting: HashMap<String, handover::Adopting>,
    /// Requests to end a session on another node, so far.
    evictions: u64,
    /// `cluster.request_timeout_ms`.
    request_timeout: Duration,
    /// Games other nodes run, with players here: the players, by game.
    games_elsewhere: HashMap<String, GameElsewhere>,
    /// The players on other nodes of this node's games: their node, by
    /// session, by game.
    remote_players: HashMap<String, HashMap<String, String>>,
    /// Games this node is playing again from Redis: the sessions that came
    /// back for them, by game.
    rebuilding: HashMap<String, Vec<String>>,
    /// Sessions moved here whose games are recovered once they register:
    /// the games, by session.
    recovering: HashMap<String, Vec<String>>,
    /// `find_game` requests not yet answered `queued` (the cluster's queue
    /// has not answered yet), by session.
    unqueued: HashMap<String, Option<RequestId>>,
    /// Quick matches this node's finders were paired into on other nodes,
    /// until the game ends: the finder and the kind, by game.
    matching: HashMap<String, (String, GameKind)>,
}

impl Lobby {
    /// An empty lobby with the limits and timings of `config`.
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        store: StoreLink,
        workers: Arc<Workers>,
        backplane: Backplane,
    ) -> Lobby {
        let settings = GameSettings::new(config);
        let room_limits = RoomLimits {
            max_members: config.rooms.max_members.get(),
            max_per_session: config.rooms.max_per_session.get(),
            settings: RoomSettings {
                state_request_timeout: Duration::from_millis(
                    config.rooms.state_request_timeout_ms.get(),
                ),
                canvas_tick_hz: config.rooms.canvas_tick_hz.get(),
                ignore_actions: Arc::new(config.store.ignore_actions.clone()),
                save_debounce: Duration::from_millis(config.store.save_debounce_ms),
                store_retry: config.store_retry(),
            },
        };
        Lobby {
            sessions: HashMap::new(),
            held: VecDeque::new(),
            sweep: None,
            queues: HashMap::new(),
            games: HashMap::new(),
            rooms: HashMap::new(),
            closing: HashSet::new(),
            settings,
            away_grace: config.away_grace(),
            connections: 0,
            max_games: config.games.max_per_session.get(),
            bot_after: Duration::from_millis(config.games.bot_after_ms),
            room_limits,
            metrics,
            store,
            workers,
            backplane,
            remote_rooms: HashMap::new(),
            claiming: HashMap::new(),
            answering: HashMap::new(),
            remote_members: HashMap::new(),
            evicting: HashMap::new(),
            adopting: HashMap::new(),
            evictions: 0,
            request_timeout: Duration::from_millis(config.cluster.request_timeout_ms.get()),
            games_elsewhere: HashMap::new(),
            remote_players: HashMap::new(),
            rebuilding: HashMap::new(),
            recovering: HashMap::new(),
            unqueued: HashMap::new(),
            matching: HashMap::new(),
        }
    }
}

impl Actor for Lobby {
    type Context = Context<Self>;
}

/// The server is shutting down: tell every live session to close with 1001.
/// Answers how many sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

impl Handler<CloseAll> for Lobby {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) -> usize {
        let live: Vec<&SessionHandle> = self
            .sessions
            .values()
            .filter_map(Entry::connected)
            .collect();
        for handle in &live {
            handle.close(CloseCode::Away);
        }
        live.len()
    }
}

/// The live rooms' actors, and how many rooms are still closing, for the
/// shutdown flush.
#[derive(Message)]
#[rtype(result = "(Vec<Addr<Room>>, usize)")]
pub struct LiveRooms;

impl Handler<LiveRooms> for Lobby {
    type Result = MessageResult<LiveRooms>;

    fn handle(&mut self, _: LiveRooms, _: &mut Context<Self>) -> Self::Result {
        let live = self.rooms.values().map(|room| room.addr.clone()).collect();
        MessageResult((live, self.closing.len()))
    }
}
