//! The Lobby actor: one per server. It owns the session registry (the id,
//! name, color, resume secret and address of every session, live or held for
//! reconnection), the quick-match queues, the private games' join and watch
//! keys, the directory of games, and the directory of rooms (who is in
//! which room: the Lobby alone decides joins and leaves).
//!
//! Takes [`Admit`] from the `/ws` handler (before a session actor exists),
//! [`Register`], [`Unregister`], [`Rename`], [`LobbyRequest`],
//! [`JoinRoomRequest`] and [`LeaveRoomRequest`] from sessions,
//! [`GameFinished`] and [`GameClosed`] from games, [`RoomClosed`] from rooms,
//! [`ListGames`] and [`ListRooms`] from the HTTP API, and [`CloseAll`] and
//! [`LiveRooms`] at shutdown. Starts Game and Room actors; sends rooms
//! `Enter`, `Exit`, `Renamed` and `CloseRoom`; sends sessions [`Outbound`]
//! answers, `RoomLinked`/`RoomRefused`, and [`CloseSession`]: 4001 to one
//! whose resume token was presented by a newer connection, 1001 to all at
//! shutdown. Once a game has started or a room joined, sessions talk to it
//! directly.
//!
//! A session that drops is held for `games.reconnect_grace_ms`: its token
//! brings back the same id, name and color, and its seats, within that time.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::SystemTime,
};

use actix::prelude::*;
use actix_ws::CloseCode;

use serde_json::Value;

use crate::{
    game::{self, GameKind, GameLink, GameSettings, NewGame, Player, TakeSeat, Watch},
    identity,
    metrics::Metrics,
    protocol::{
        ErrorCode, GameListing, LeaveReason, MemberInfo, PlayerInfo, RequestId, Role, RoomKind,
        RoomListing, ServerMsg, CLOSE_TAKEN_OVER, MAX_SUGGESTIONS,
    },
    room::{CloseRoom, Enter, Exit, NewRoom, Renamed, Room, RoomLink, RoomSettings},
    session::{CloseSession, Outbound, RoomLinked, RoomRefused, Session, SessionHandle},
    store::Store,
    workers::Workers,
};

/// Drops a random u64 to 53 bits, the integers a JSON number holds exactly.
const SEED_SHIFT: u32 = 11;

/// What the Lobby knows of one session.
struct Entry {
    /// The display name.
    name: String,
    /// The session's `#rrggbb` color.
    color: String,
    /// The secret part of the session's current resume token.
    resume_secret: String,
    /// The live session actor; `None` while held for reconnection.
    addr: Option<Addr<Session>>,
    /// The live actor's connection number.
    connection: u64,
    /// Bumped at every drop, so that an expiry timer set for an earlier
    /// drop does nothing after the session came back.
    drops: u64,
    /// The game the session is queued for, if any.
    queued: Option<GameKind>,
    /// Games the session sits in, by id.
    games: Vec<String>,
    /// Rooms the live session is in.
    rooms: Vec<RoomSeat>,
    /// Rooms a dropped session was in, to rejoin on resume.
    away_rooms: Vec<RoomSeat>,
}

/// What the Lobby knows of one game.
struct GameEntry {
    /// How to reach the game.
    link: GameLink,
    /// The secret of the join key until a second player spends it.
    join_secret: Option<String>,
    /// The secret of the watch key.
    watch_secret: String,
    /// The whole watch key, as `/api/games` lists it.
    watch_key: String,
    /// The session that created a private game.
    creator: Option<String>,
    /// Quick matches are listed by `/api/games`; private games never.
    listed: bool,
    /// The seated players, in seat order, as they were when seated.
    players: Vec<PlayerInfo>,
    /// Their session ids, in seat order.
    seated: Vec<String>,
    /// When the game was started.
    started_at: SystemTime,
    /// Set once the game has ended (it lingers a while after).
    finished: bool,
}

/// The session registry, the queues and the game directory.
pub struct Lobby {
    /// Sessions by id, live or held.
    sessions: HashMap<String, Entry>,
    /// Quick-match queues: session ids, first come first paired.
    queues: HashMap<GameKind, VecDeque<String>>,
    /// Games by id, until they stop.
    games: HashMap<String, GameEntry>,
    /// Live rooms by name.
    rooms: HashMap<String, RoomEntry>,
    /// Rooms told to close that have not yet reported closing.
    closing: std::collections::HashSet<String>,
    /// Reconnect grace and linger, for the Lobby and its games.
    settings: GameSettings,
    /// Room sizes and the rooms' shared settings.
    room_limits: RoomLimits,
    /// Queue, game and room counters.
    metrics: Arc<Metrics>,
    /// Where games and rooms keep what outlives them.
    store: Addr<Store>,
    /// The threads games and rooms run on.
    workers: Arc<Workers>,
}

/// Room sizes and what every room shares; from `[rooms]` and `[store]`.
#[derive(Debug, Clone)]
pub struct RoomLimits {
    /// Members per room (`rooms.max_members`).
    pub max_members: usize,
    /// Rooms one session may be in (`rooms.max_per_session`).
    pub max_per_session: usize,
    /// Timings and transient actions every room uses.
    pub settings: RoomSettings,
}

/// What the Lobby knows of one live room.
struct RoomEntry {
    /// The room actor.
    addr: Addr<Room>,
    /// How sessions reach it.
    link: RoomLink,
    /// Its kind.
    kind: RoomKind,
    /// How many members it has.
    members: usize,
}

/// A session's place in a room, kept across a drop so a resume can rejoin.
#[derive(Debug, Clone)]
pub struct RoomSeat {
    /// The room's name.
    pub room: String,
    /// Its kind.
    pub kind: RoomKind,
    /// The session's role there.
    pub role: Role,
    /// The zombies it asked for, should the room need opening again.
    pub zombies: u32,
}

impl Lobby {
    /// An empty lobby; dropped sessions are held for `settings.reconnect_grace`.
    pub fn new(
        settings: GameSettings,
        room_limits: RoomLimits,
        metrics: Arc<Metrics>,
        store: Addr<Store>,
        workers: Arc<Workers>,
    ) -> Lobby {
        Lobby {
            sessions: HashMap::new(),
            queues: HashMap::new(),
            games: HashMap::new(),
            rooms: HashMap::new(),
            closing: std::collections::HashSet::new(),
            settings,
            room_limits,
            metrics,
            store,
            workers,
        }
    }

    fn resume(&mut self, token: &str) -> Option<Admission> {
        let (id, secret) = identity::split_token(token, identity::SESSION_PREFIX)?;
        let entry = self.sessions.get_mut(&id)?;
        if !identity::secrets_match(secret, &entry.resume_secret) {
            return None;
        }
        if let Some(older) = entry.addr.take() {
            older.do_send(CloseSession(CloseCode::Other(CLOSE_TAKEN_OVER)));
        }
        // The older connection will not unregister (it is no longer the
        // entry's), so its place in a queue and its rooms go with it here;
        // the new connection rejoins those rooms.
        let queued = entry.queued.take();
        let left_rooms = std::mem::take(&mut entry.rooms);
        let mut rooms = std::mem::take(&mut entry.away_rooms);
        rooms.extend(left_rooms.iter().cloned());
        entry.resume_secret = identity::new_secret();
        let games = entry
            .games
            .iter()
            .filter_map(|game| self.games.get(game))
            .map(|game| game.link.clone());
        let admission = Admission {
            resume: identity::token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            games: games.collect(),
            rooms,
            id,
            outcome: AdmitOutcome::Resumed,
        };
        self.step_out(&admission.id, left_rooms, LeaveReason::Disconnected);
        if let Some(kind) = queued {
            self.leave_queue(kind, &admission.id);
        }
        Some(admission)
    }

    fn admit_new(&mut self, name: Option<String>, outcome: AdmitOutcome) -> Admission {
        let id = identity::new_id(identity::SESSION_PREFIX);
        let entry = Entry {
            name: name.unwrap_or_else(identity::random_name),
            color: identity::random_color(),
            resume_secret: identity::new_secret(),
            addr: None,
            connection: 0,
            drops: 0,
            queued: None,
            games: Vec::new(),
            rooms: Vec::new(),
            away_rooms: Vec::new(),
        };
        let admission = Admission {
            resume: identity::token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            id: id.clone(),
            games: Vec::new(),
            rooms: Vec::new(),
            outcome,
        };
        self.sessions.insert(id, entry);
        admission
    }
}

impl Actor for Lobby {
    type Context = Context<Self>;
}

/// A connection is being opened: decide who it is.
#[derive(Message)]
#[rtype(result = "Admission")]
pub struct Admit {
    /// The `?resume=` token, if any.
    pub resume: Option<String>,
    /// The `?name=` name, already validated; `None` picks a random one.
    pub name: Option<String>,
}

/// How an [`Admit`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitOutcome {
    /// A new session, no token given.
    New,
    /// A new session because the given token was unknown or expired.
    ResumeRefused,
    /// The token's session, back again.
    Resumed,
}

/// Who a new connection is.
pub struct Admission {
    /// The session id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// The resume token to hand out in `welcome`.
    pub resume: String,
    /// New, refused resume, or resumed.
    pub outcome: AdmitOutcome,
    /// The games a resumed session sits in.
    pub games: Vec<GameLink>,
    /// The rooms a resumed session was in, to rejoin.
    pub rooms: Vec<RoomSeat>,
}

/// A session actor has started for an admitted id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session id.
    pub id: String,
    /// The session actor.
    pub addr: Addr<Session>,
    /// Its connection number.
    pub connection: u64,
}

/// A session actor has stopped; its session is held for reconnection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    /// The session id.
    pub id: String,
    /// The actor that stopped, so that a connection already taken over does
    /// not unregister its successor.
    pub addr: Addr<Session>,
    /// Why: disconnected, or evicted for silence (timeout).
    pub reason: LeaveReason,
}

/// A session changed its display name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rename {
    /// The session id.
    pub id: String,
    /// The new, already validated, name.
    pub name: String,
}

/// The server is shutting down: tell every live session to close with 1001.
/// Answers how many sessions were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CloseAll;

/// A held session's grace may have run out.
struct Expire {
    /// The session id.
    id: String,
    /// The entry's `drops` when the timer was set.
    drops: u64,
}

impl Handler<Admit> for Lobby {
    type Result = MessageResult<Admit>;

    fn handle(&mut self, msg: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let admission = match msg.resume {
            None => self.admit_new(msg.name, AdmitOutcome::New),
            Some(token) => match self.resume(&token) {
                Some(admission) => admission,
                None => self.admit_new(msg.name, AdmitOutcome::ResumeRefused),
            },
        };
        // Until its actor registers, the session is held like a dropped one,
        // so a handshake that never completes leaves nothing behind.
        self.hold(admission.id.clone(), ctx);
        MessageResult(admission)
    }
}

impl Handler<Register> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Register, _: &mut Context<Self>) {
        match self.sessions.get_mut(&msg.id) {
            Some(entry) => {
                entry.addr = Some(msg.addr);
                entry.connection = msg.connection;
            }
            None => msg.addr.do_send(CloseSession(CloseCode::Error)),
        }
    }
}

impl Handler<Unregister> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Unregister, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        if entry.addr.as_ref() != Some(&msg.addr) {
            return;
        }
        entry.addr = None;
        let queued = entry.queued.take();
        let rooms = std::mem::take(&mut entry.rooms);
        entry.away_rooms = rooms.clone();
        if let Some(kind) = queued {
            self.leave_queue(kind, &msg.id);
        }
        self.step_out(&msg.id, rooms, msg.reason);
        self.hold(msg.id, ctx);
    }
}

impl Lobby {
    /// Holds session `id` for the reconnect grace; it is forgotten then
    /// unless a session actor has registered for it again.
    fn hold(&mut self, id: String, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        entry.drops += 1;
        let expire = Expire {
            id,
            drops: entry.drops,
        };
        ctx.run_later(self.settings.reconnect_grace, move |lobby, _| {
            lobby.expire(expire)
        });
    }

    fn expire(&mut self, expire: Expire) {
        let still_held = self
            .sessions
            .get(&expire.id)
            .is_some_and(|entry| entry.addr.is_none() && entry.drops == expire.drops);
        if still_held {
            self.sessions.remove(&expire.id);
        }
    }
}

impl Handler<Rename> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: Rename, _: &mut Context<Self>) {
        let Some(entry) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        entry.name = msg.name.clone();
        for seat in &entry.rooms {
            if let Some(room) = self.rooms.get(&seat.room) {
                room.addr.do_send(Renamed {
                    session: msg.id.clone(),
                    name: msg.name.clone(),
                });
            }
        }
    }
}

impl Handler<CloseAll> for Lobby {
    type Result = usize;

    fn handle(&mut self, _: CloseAll, _: &mut Context<Self>) -> usize {
        let live: Vec<_> = self
            .sessions
            .values()
            .filter_map(|entry| entry.addr.as_ref())
            .collect();
        for addr in &live {
            addr.do_send(CloseSession(CloseCode::Away));
        }
        live.len()
    }
}

/// A session asks the Lobby for a game: queue, cancel, create, join, watch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LobbyRequest {
    /// The asking session.
    pub session: String,
    /// The asking connection, as in [`JoinRoomRequest`].
    pub connection: u64,
    /// What it asks.
    pub action: LobbyAction,
    /// The request's `id`, echoed on the answer.
    pub id: Option<RequestId>,
}

/// The requests the Lobby answers.
pub enum LobbyAction {
    /// `find_game`
    Find(GameKind),
    /// `cancel_find`
    Cancel(GameKind),
    /// `create_game`
    Create(GameKind),
    /// `join_game`, with the join key.
    Join(String),
    /// `watch_game`, with the watch key.
    Watch(String),
}

/// A game has ended; it lingers, but is no longer listed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GameFinished {
    /// The game.
    pub game_id: String,
}

/// A game actor has stopped; forget it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GameClosed {
    /// The game.
    pub game_id: String,
}

/// Lists the quick matches in progress, for `/api/games`.
#[derive(Message)]
#[rtype(result = "Vec<GameListing>")]
pub struct ListGames;

impl Handler<LobbyRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: LobbyRequest, ctx: &mut Context<Self>) {
        let LobbyRequest {
            session,
            connection,
            action,
            id,
        } = msg;
        if self.connection_of(&session) != connection {
            return;
        }
        let id = id.as_ref();
        let Some(addr) = self
            .sessions
            .get(&session)
            .and_then(|entry| entry.addr.clone())
        else {
            return;
        };
        let answer = match action {
            LobbyAction::Find(kind) => self.find(&session, kind, id, ctx),
            LobbyAction::Cancel(kind) => Ok(self.cancel(&session, kind)),
            LobbyAction::Create(kind) => {
                self.launch(
                    kind,
                    vec![session.clone()],
                    false,
                    Some((&session, id)),
                    ctx,
                );
                Ok(None)
            }
            LobbyAction::Join(key) => self.join(&session, &key, id).map(|()| None),
            LobbyAction::Watch(key) => {
                let handle = SessionHandle::new(addr.clone(), self.connection_of(&session));
                self.watch(&session, handle, &key, id).map(|()| None)
            }
        };
        match answer {
            Ok(Some(reply)) => addr.do_send(Outbound(reply.encode_reply(id))),
            Ok(None) => {}
            Err(refusal) => {
                self.metrics.error_sent(refusal.code);
                let error = ServerMsg::error(refusal.code, refusal.message, refusal.request);
                addr.do_send(Outbound(error.encode_reply(id)));
            }
        }
    }
}

/// A Lobby request that cannot be honoured.
struct Refusal {
    /// The error code.
    code: ErrorCode,
    /// What went wrong, for people.
    message: String,
    /// The request's `type`.
    request: &'static str,
}

fn refusal(code: ErrorCode, request: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
        request,
    }
}

impl Lobby {
    /// `find_game`: answer `queued`, then pair with the longest-waiting
    /// player, start at once (one-player games), or wait in the queue.
    fn find(
        &mut self,
        session: &str,
        kind: GameKind,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<Option<ServerMsg>, Refusal> {
        let entry = self
            .sessions
            .get(session)
            .ok_or_else(|| refusal(ErrorCode::Internal, "find_game", "no session"))?;
        if let Some(queued) = entry.queued {
            let message = format!("already queued for {}", queued.as_str());
            return Err(refusal(ErrorCode::AlreadyQueued, "find_game", message));
        }
        if let Some(addr) = &entry.addr {
            addr.do_send(Outbound(ServerMsg::Queued { game: kind }.encode_reply(id)));
        }
        if kind.seats().len() == 1 {
            self.launch(kind, vec![session.to_string()], true, None, ctx);
            return Ok(None);
        }
        match self.pop_live(kind) {
            Some(opponent) => {
                self.launch(kind, vec![opponent, session.to_string()], true, None, ctx);
            }
            None => {
                self.queues
                    .entry(kind)
                    .or_default()
                    .push_back(session.to_string());
                if let Some(entry) = self.sessions.get_mut(session) {
                    entry.queued = Some(kind);
                }
            }
        }
        self.count_queue(kind);
        Ok(None)
    }

    /// The longest-waiting session in `kind`'s queue that is still connected.
    fn pop_live(&mut self, kind: GameKind) -> Option<String> {
        while let Some(session) = self.queues.get_mut(&kind)?.pop_front() {
            let Some(entry) = self.sessions.get_mut(&session) else {
                continue;
            };
            entry.queued = None;
            if entry.addr.is_some() {
                return Some(session);
            }
        }
        None
    }

    /// `cancel_find`: leave the queue if in it; answered either way.
    fn cancel(&mut self, session: &str, kind: GameKind) -> Option<ServerMsg> {
        let entry = self.sessions.get_mut(session);
        if let Some(entry) = entry.filter(|entry| entry.queued == Some(kind)) {
            entry.queued = None;
            self.leave_queue(kind, session);
        }
        Some(ServerMsg::FindCancelled { game: kind })
    }

    fn leave_queue(&mut self, kind: GameKind, session: &str) {
        if let Some(queue) = self.queues.get_mut(&kind) {
            queue.retain(|queued| queued != session);
        }
        self.count_queue(kind);
    }

    fn count_queue(&self, kind: GameKind) {
        let length = self.queues.get(&kind).map_or(0, VecDeque::len);
        self.metrics.queue_length(kind, length);
    }

    /// `join_game`: spend the join key and take the free seat.
    fn join(&mut self, session: &str, key: &str, id: Option<&RequestId>) -> Result<(), Refusal> {
        let not_found = || {
            refusal(
                ErrorCode::NotFound,
                "join_game",
                "no game waits for that join key",
            )
        };
        let (game_id, secret) =
            identity::split_token(key, identity::GAME_PREFIX).ok_or_else(not_found)?;
        let game = self.games.get_mut(&game_id).ok_or_else(not_found)?;
        let valid = game
            .join_secret
            .as_deref()
            .is_some_and(|expected| identity::secrets_match(secret, expected));
        let seat_free = game.players.len() < game.link.kind.seats().len();
        if !valid || !seat_free || game.finished || !game.link.alive() {
            return Err(not_found());
        }
        if game.creator.as_deref() == Some(session) {
            return Err(refusal(
                ErrorCode::BadRequest,
                "join_game",
                "you cannot join your own game",
            ));
        }
        let link = game.link.clone();
        let player = self.player(session).ok_or_else(not_found)?;
        if let Some(game) = self.games.get_mut(&game_id) {
            game.join_secret = None;
            let seat = link
                .kind
                .seats()
                .get(game.players.len())
                .copied()
                .unwrap_or_default();
            game.players.push(PlayerInfo {
                seat,
                name: player.name.clone(),
                color: player.color.clone(),
            });
            game.seated.push(session.to_string());
        }
        if let Some(entry) = self.sessions.get_mut(session) {
            entry.games.push(game_id);
        }
        link.take_seat(TakeSeat {
            player,
            id: id.cloned(),
        });
        Ok(())
    }

    /// `watch_game`: hand the watcher to the game, which answers `game_state`.
    fn watch(
        &mut self,
        session: &str,
        addr: SessionHandle,
        key: &str,
        id: Option<&RequestId>,
    ) -> Result<(), Refusal> {
        let not_found = || {
            refusal(
                ErrorCode::NotFound,
                "watch_game",
                "no game with that watch key",
            )
        };
        let (game_id, secret) =
            identity::split_token(key, identity::GAME_PREFIX).ok_or_else(not_found)?;
        let game = self.games.get(&game_id).ok_or_else(not_found)?;
        if !identity::secrets_match(secret, &game.watch_secret) || !game.link.alive() {
            return Err(not_found());
        }
        game.link.watch(Watch {
            session: session.to_string(),
            addr,
            id: id.cloned(),
        });
        Ok(())
    }

    fn connection_of(&self, session: &str) -> u64 {
        self.sessions
            .get(session)
            .map_or(0, |entry| entry.connection)
    }

    fn player(&self, session: &str) -> Option<Player> {
        let entry = self.sessions.get(session)?;
        Some(Player {
            session: session.to_string(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            addr: SessionHandle::new(entry.addr.clone()?, entry.connection),
        })
    }

    /// Starts a game of `kind` with `players` seated in order. A private
    /// game (`create_game`) names its creator and the request to answer
    /// with `game_created`.
    fn launch(
        &mut self,
        kind: GameKind,
        players: Vec<String>,
        listed: bool,
        creator: Option<(&str, Option<&RequestId>)>,
        ctx: &mut Context<Self>,
    ) {
        let players: Vec<Player> = players
            .iter()
            .filter_map(|session| self.player(session))
            .collect();
        let game_id = identity::new_id(identity::GAME_PREFIX);
        let watch_secret = identity::new_secret();
        let watch_key = identity::token(&game_id, &watch_secret);
        let infos = players
            .iter()
            .zip(kind.seats())
            .map(|(player, seat)| PlayerInfo {
                seat,
                name: player.name.clone(),
                color: player.color.clone(),
            });
        let infos: Vec<PlayerInfo> = infos.collect();
        let seated = players
            .iter()
            .map(|player| player.session.clone())
            .collect();
        for player in &players {
            if let Some(entry) = self.sessions.get_mut(&player.session) {
                entry.games.push(game_id.clone());
            }
        }
        let join_secret = identity::new_secret();
        // The game itself answers its creator: after the link, before
        // `game_start` (it runs on another thread than the Lobby).
        let created = creator.map(|(_, id)| {
            let created = ServerMsg::GameCreated {
                game_id: game_id.clone(),
                game: kind,
                join_key: identity::token(&game_id, &join_secret),
                watch_key: watch_key.clone(),
            };
            created.encode_reply(id)
        });
        let link = game::start_game(
            &self.workers,
            kind,
            NewGame {
                id: game_id.clone(),
                watch_key: watch_key.clone(),
                players,
                // 53 bits: a seed any JSON reader (JavaScript too) reads exactly.
                seed: rand::random::<u64>() >> SEED_SHIFT,
                settings: self.settings,
                lobby: ctx.address(),
                metrics: self.metrics.clone(),
                store: self.store.clone(),
                created,
            },
        );
        let entry = GameEntry {
            link,
            join_secret: Some(join_secret),
            watch_secret,
            watch_key,
            creator: creator.map(|(session, _)| session.to_string()),
            listed,
            players: infos,
            seated,
            started_at: SystemTime::now(),
            finished: false,
        };
        self.games.insert(game_id, entry);
    }
}

impl Handler<GameFinished> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: GameFinished, _: &mut Context<Self>) {
        if let Some(game) = self.games.get_mut(&msg.game_id) {
            game.finished = true;
            game.join_secret = None;
        }
    }
}

impl Handler<GameClosed> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: GameClosed, _: &mut Context<Self>) {
        let Some(game) = self.games.remove(&msg.game_id) else {
            return;
        };
        for session in &game.seated {
            if let Some(entry) = self.sessions.get_mut(session) {
                entry.games.retain(|game| *game != msg.game_id);
            }
        }
    }
}

impl Handler<ListGames> for Lobby {
    type Result = MessageResult<ListGames>;

    fn handle(&mut self, _: ListGames, _: &mut Context<Self>) -> Self::Result {
        let listed = self
            .games
            .iter()
            .filter(|(_, game)| game.listed && !game.finished);
        let mut listings: Vec<GameListing> = listed
            .map(|(game_id, game)| GameListing {
                game_id: game_id.clone(),
                game: game.link.kind,
                players: game.players.clone(),
                watch_key: game.watch_key.clone(),
                started_at: humantime::format_rfc3339_seconds(game.started_at).to_string(),
            })
            .collect();
        listings.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.game_id.cmp(&b.game_id))
        });
        MessageResult(listings)
    }
}

/// A session asks to join (or create) a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinRoomRequest {
    /// The asking session.
    pub session: String,
    /// The room's name, already validated.
    pub room: String,
    /// The kind asked for.
    pub kind: RoomKind,
    /// The role, already checked against the kind.
    pub role: Role,
    /// Zombies for a new canvas room, already checked.
    pub zombies: u32,
    /// The request's `id`.
    pub id: Option<RequestId>,
    /// The asking connection: a request from a connection already taken
    /// over is ignored.
    pub connection: u64,
    /// Numbers this join among the session's joins, echoed in the answer.
    pub serial: u64,
}

/// A session asks to leave a room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRoomRequest {
    /// The asking session.
    pub session: String,
    /// The room.
    pub room: String,
    /// The request's `id`.
    pub id: Option<RequestId>,
    /// The asking connection, as in [`JoinRoomRequest`].
    pub connection: u64,
}

/// A room has stopped; keep its snapshot for its next life.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RoomClosed {
    /// The room.
    pub room: String,
    /// Its last snapshot (`null` if none).
    pub snapshot: Value,
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

/// Lists the live rooms, for `/api/rooms`.
#[derive(Message)]
#[rtype(result = "Vec<RoomListing>")]
pub struct ListRooms;

impl Handler<JoinRoomRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: JoinRoomRequest, ctx: &mut Context<Self>) {
        let Some(entry) = self.sessions.get(&msg.session) else {
            return;
        };
        let Some(addr) = entry
            .addr
            .clone()
            .filter(|_| entry.connection == msg.connection)
        else {
            return;
        };
        let already_in = entry.rooms.iter().any(|seat| seat.room == msg.room);
        match self.admit_to_room(&msg, already_in, ctx) {
            Ok(link) => {
                // The room hears of the member before the member's messages
                // can reach it.
                self.enter(&msg, already_in);
                if !already_in {
                    addr.do_send(RoomLinked {
                        link,
                        serial: msg.serial,
                    });
                }
            }
            Err(refusal) => {
                self.metrics.error_sent(ErrorCode::from(refusal.as_ref()));
                addr.do_send(Outbound(refusal.encode_reply(msg.id.as_ref())));
                if !already_in {
                    addr.do_send(RoomRefused {
                        room: msg.room.clone(),
                        serial: msg.serial,
                    });
                }
            }
        }
    }
}

impl From<&ServerMsg> for ErrorCode {
    fn from(msg: &ServerMsg) -> ErrorCode {
        match msg {
            ServerMsg::RoomFull { .. } => ErrorCode::RoomFull,
            ServerMsg::Error { code, .. } => *code,
            _ => ErrorCode::Internal,
        }
    }
}

impl Lobby {
    /// Checks a join against the room's kind, the session's room count and
    /// the room's size, creating the room if it does not exist; the answer
    /// on refusal is the error frame.
    fn admit_to_room(
        &mut self,
        msg: &JoinRoomRequest,
        already_in: bool,
        ctx: &mut Context<Self>,
    ) -> Result<RoomLink, Box<ServerMsg>> {
        let error = |code, message: String| -> Box<ServerMsg> {
            Box::new(ServerMsg::error(code, message, "join_room"))
        };
        if let Some(room) = self.rooms.get(&msg.room) {
            if room.kind != msg.kind {
                let message = format!("room {} is a {} room", msg.room, room.kind.as_str());
                return Err(error(ErrorCode::BadRequest, message));
            }
        }
        if already_in {
            return self
                .rooms
                .get(&msg.room)
                .map(|room| room.link.clone())
                .ok_or_else(|| error(ErrorCode::Internal, "the room went away".to_string()));
        }
        let in_rooms = self
            .sessions
            .get(&msg.session)
            .map_or(0, |entry| entry.rooms.len());
        if in_rooms >= self.room_limits.max_per_session {
            let message = format!("already in {in_rooms} rooms, the most a session may be in");
            return Err(error(ErrorCode::TooManyRooms, message));
        }
        let full = self
            .rooms
            .get(&msg.room)
            .is_some_and(|room| room.members >= self.room_limits.max_members);
        if full {
            return Err(Box::new(ServerMsg::RoomFull {
                code: ErrorCode::RoomFull,
                message: format!("room {} is full", msg.room),
                request: "join_room",
                suggestions: self.suggestions(msg.kind, &msg.room),
            }));
        }
        if !self.rooms.contains_key(&msg.room) {
            self.open_room(msg, ctx);
        }
        self.rooms
            .get(&msg.room)
            .map(|room| room.link.clone())
            .ok_or_else(|| {
                error(
                    ErrorCode::Internal,
                    "the room could not be opened".to_string(),
                )
            })
    }

    /// Up to three rooms of `kind` with space, by name.
    fn suggestions(&self, kind: RoomKind, full: &str) -> Vec<String> {
        let mut open: Vec<&String> = self
            .rooms
            .iter()
            .filter(|(name, room)| {
                room.kind == kind && room.members < self.room_limits.max_members && *name != full
            })
            .map(|(name, _)| name)
            .collect();
        open.sort();
        open.into_iter().take(MAX_SUGGESTIONS).cloned().collect()
    }

    fn open_room(&mut self, msg: &JoinRoomRequest, ctx: &mut Context<Self>) {
        let (addr, link) = Room::launch(
            &self.workers,
            NewRoom {
                name: msg.room.clone(),
                kind: msg.kind,
                zombies: msg.zombies,
                settings: self.room_limits.settings.clone(),
                lobby: ctx.address(),
                metrics: self.metrics.clone(),
                store: self.store.clone(),
                seed: rand::random(),
            },
        );
        self.rooms.insert(
            msg.room.clone(),
            RoomEntry {
                addr,
                link,
                kind: msg.kind,
                members: 0,
            },
        );
    }

    /// Seats the session in the room (or greets it again) and tells the room.
    fn enter(&mut self, msg: &JoinRoomRequest, already_in: bool) {
        let Some(entry) = self.sessions.get_mut(&msg.session) else {
            return;
        };
        let Some(addr) = entry.addr.clone() else {
            return;
        };
        let role = match entry.rooms.iter().find(|seat| seat.room == msg.room) {
            Some(seat) => seat.role,
            None => msg.role,
        };
        if !already_in {
            entry.rooms.push(RoomSeat {
                room: msg.room.clone(),
                kind: msg.kind,
                role,
                zombies: msg.zombies,
            });
        }
        let member = MemberInfo {
            session: msg.session.clone(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            role,
        };
        let handle = SessionHandle::new(addr, entry.connection);
        let Some(room) = self.rooms.get_mut(&msg.room) else {
            return;
        };
        if !already_in {
            room.members += 1;
        }
        room.addr.do_send(Enter {
            member,
            handle,
            id: msg.id.clone(),
        });
    }

    /// Takes `session` out of `rooms`, telling each room why; a room left
    /// empty is closed.
    fn step_out(&mut self, session: &str, rooms: Vec<RoomSeat>, reason: LeaveReason) {
        for seat in rooms {
            self.exit(&seat.room, session, reason, None);
        }
    }

    fn exit(&mut self, name: &str, session: &str, reason: LeaveReason, id: Option<RequestId>) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        room.addr.do_send(Exit {
            session: session.to_string(),
            reason,
            id,
        });
        room.members = room.members.saturating_sub(1);
        if room.members == 0 {
            room.addr.do_send(CloseRoom);
            self.rooms.remove(name);
            self.closing.insert(name.to_string());
        }
    }
}

impl Handler<LeaveRoomRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: LeaveRoomRequest, _: &mut Context<Self>) {
        let Some(entry) = self
            .sessions
            .get_mut(&msg.session)
            .filter(|entry| entry.connection == msg.connection)
        else {
            return;
        };
        let Some(index) = entry.rooms.iter().position(|seat| seat.room == msg.room) else {
            if let Some(addr) = &entry.addr {
                self.metrics.error_sent(ErrorCode::NotInRoom);
                let message = format!("you are not in room {}", msg.room);
                let error = ServerMsg::error(ErrorCode::NotInRoom, message, "leave_room");
                addr.do_send(Outbound(error.encode_reply(msg.id.as_ref())));
            }
            return;
        };
        entry.rooms.remove(index);
        self.exit(&msg.room, &msg.session, LeaveReason::Left, msg.id);
    }
}

impl Handler<RoomClosed> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: RoomClosed, _: &mut Context<Self>) {
        self.closing.remove(&msg.room);
        // The room came back to life before its old self closed: hand the
        // newer snapshot over (the store has it too).
        if let (Some(room), false) = (self.rooms.get(&msg.room), msg.snapshot.is_null()) {
            room.addr.do_send(crate::room::Revive(msg.snapshot));
        }
    }
}

impl Handler<ListRooms> for Lobby {
    type Result = MessageResult<ListRooms>;

    fn handle(&mut self, _: ListRooms, _: &mut Context<Self>) -> Self::Result {
        let mut listings: Vec<RoomListing> = self
            .rooms
            .iter()
            .map(|(name, room)| RoomListing {
                room: name.clone(),
                kind: room.kind,
                members: room.members,
            })
            .collect();
        listings.sort_by(|a, b| a.room.cmp(&b.room));
        MessageResult(listings)
    }
}
