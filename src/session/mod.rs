//! The Session actor: one per session, outliving its connections.
//!
//! It owns the session's identity (id, name, color), its routes to its
//! games and rooms, its frame numbers and replay ring (`replay`), and,
//! while connected, the connection: its socket (`socket`: the WebSocket
//! frames read and written on actix-http's codec), its rate limiter, its
//! outbox (`outbox`: when queued frames are written) and its place in its
//! thread's heartbeat sweep (`heartbeat`), which tells it to Ping its
//! client or evict it. When the connection ends the session is *away*: it
//! keeps numbering and keeping the frames meant for it until a resume
//! hands it a new connection ([`Reconnect`]) or the Lobby ends it
//! ([`EndSession`]) once its grace has run out. Incoming messages arrive
//! as a stream (`ctx.add_stream`); each text message is parsed into a
//! request and answered or routed (`routes`): lobby requests to the Lobby,
//! moves straight to their Game, room messages straight to their Room.
//!
//! Takes [`Deliver`] (a frame for its client), [`Keep`] (one its full
//! outbox had no room for), [`Resynced`] (a game's or room's part of a
//! resync: `resync`), [`Overflowed`] (its outbox is full), [`Linked`] (a
//! game to route moves to), [`RoomLinked`] and [`RoomRefused`] (the answer
//! to a room join), [`CloseSession`], [`EndSession`] and [`Reconnect`]; from its thread's sweeps, `Beat`
//! (Ping or evict) and `Gathered` (write what `server.write_delay_ms` held
//! back). Sends [`Register`], [`Away`], [`Rename`], `LobbyRequest`,
//! `JoinRoomRequest` and `LeaveRoomRequest` to the Lobby through its
//! [`LobbyLink`], `PlayerRequest` and [`Presence`] to its games, and
//! `RoomRequest` to its rooms. Others queue frames for its client through
//! its [`SessionHandle`].
//!
//! [`Linked`]: crate::links::Linked
//! [`Resynced`]: crate::links::Resynced
//! [`RoomLinked`]: crate::links::RoomLinked
//! [`RoomRefused`]: crate::links::RoomRefused

mod gather;
mod heartbeat;
mod outbox;
mod replay;
mod resync;
mod routes;
mod socket;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use actix_http::ws::CloseCode;
use actix_rt::net::TcpStream;
use bytestring::ByteString;

pub use self::socket::Upgraded;
use self::{
    heartbeat::{Beat, Enrolment},
    outbox::{Flusher, Outbox},
    replay::Replay,
    resync::Resync,
    routes::RoomRoute,
    socket::Incoming,
};
use crate::{
    config::Config,
    links::{
        Admission, AdmitOutcome, Adopted, Away, CloseSession, Deliver, EndSession, GameLink, Keep,
        LobbyLink, MoveOut, MovedOut, Outgoing, Overflowed, Presence, PresenceChange, Reconnect,
        Register, Rename, SessionHandle,
    },
    metrics::Metrics,
    protocol::{
        self, ClientMsg, Echo, ErrorCode, LeaveReason, Refusal, Request, RequestId, ServerMsg,
        SetName, CLOSE_TAKEN_OVER,
    },
    rate_limit::{RateLimiter, Verdict},
};

/// What every session shares: made once at start.
pub struct SessionShared {
    /// The configuration.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The Lobby.
    pub lobby: LobbyLink,
}

/// One session, connected or away.
pub struct Session {
    /// The session id, stable across reconnections.
    id: String,
    /// The number of its connection (while away, of the last one): the
    /// Lobby ignores the end of a connection already taken over.
    connection: u64,
    /// Games this session plays or watches, by id: moves go straight there.
    games: HashMap<String, GameLink>,
    /// Rooms this session is in or joining, by name: messages go straight there.
    rooms: HashMap<String, RoomRoute>,
    /// Numbers this session's room joins (see [`RoomRoute`]).
    join_serial: u64,
    /// The display name.
    name: String,
    /// The `#rrggbb` color.
    color: String,
    /// Config, Lobby and metrics shared by every session.
    shared: Arc<SessionShared>,
    /// Frames for the client, and when they are written; no writer while away.
    outbox: Outbox,
    /// Frame numbers and the frames kept for a resume.
    replay: Replay,
    /// The connection's reader, while connected.
    reader: Option<SpawnHandle>,
    /// The item that makes due writes, polled after the reader (see
    /// [`Flusher`]).
    flusher: Option<SpawnHandle>,
    /// When the client last sent anything, Pongs included.
    last_seen: Instant,
    /// The session's place in its thread's heartbeat, while connected.
    heartbeat: Option<Enrolment>,
    /// The message rate limit.
    rate: RateLimiter,
    /// The welcome (and anything before `started`) still to send; boxed,
    /// as it is used once and the actor's size is every session's cost.
    admission: Option<Box<Admission>>,
    /// A resync under way (boxed: seldom set).
    resync: Option<Box<Resync>>,
    /// How the Lobby, rooms and games reach this session (made once, shared).
    handle: SessionHandle,
}

impl Session {
    /// Starts the actor for an accepted handshake of a new session, on the
    /// calling thread. The connection's place among the open sessions
    /// (`upgraded.slot`) is given back once its socket is closed.
    pub fn start(
        shared: Arc<SessionShared>,
        admission: Admission,
        upgraded: Upgraded,
    ) -> Addr<Session> {
        let max_frame = shared.config.limits.max_frame_bytes.get();
        let (reader, writer) = socket::open(upgraded, max_frame);
        Session::create(move |ctx| {
            let handle = Session::handle_for(&ctx.address(), &shared);
            let reader = ctx.add_stream(reader);
            let mut session = Session::new(shared, admission, Some(writer), handle);
            session.reader = Some(reader);
            // After the reader, so that it writes what the reader queued.
            session.flusher = Some(ctx.spawn(Flusher));
            session
        })
    }

    /// Starts, on the calling thread, an away session with no connection
    /// yet: one seated in a game when the server last stopped, waiting
    /// for its player to resume. Its games link themselves to it as they
    /// start; its first resume resyncs (its numbers before the restart are
    /// gone).
    pub fn restore(shared: Arc<SessionShared>, admission: Admission) -> SessionHandle {
        let mut ctx = Context::new();
        let handle = Session::handle_for(&ctx.address(), &shared);
        let mut session = Session::new(shared, admission, None, handle.clone());
        session.admission = None;
        session.replay = Replay::forgotten(session.shared.config.limits.replay_frames);
        session.flusher = Some(ctx.spawn(Flusher));
        ctx.run(session);
        handle
    }

    /// The handle through which others reach the session at `addr`.
    fn handle_for(addr: &Addr<Session>, shared: &SessionShared) -> SessionHandle {
        let max_outbox = shared.config.limits.max_outbox.get();
        SessionHandle::new(addr, max_outbox, shared.metrics.clone())
    }

    fn new(
        shared: Arc<SessionShared>,
        mut admission: Admission,
        writer: Option<socket::Writer>,
        handle: SessionHandle,
    ) -> Session {
        let limits = &shared.config.limits;
        let write_delay = Duration::from_millis(shared.config.server.write_delay_ms);
        let outbox = Outbox::new(writer, write_delay, limits.max_outbox.get());
        let now = Instant::now();
        let rate = RateLimiter::new(limits.msgs_per_sec.get(), limits.burst.get(), now);
        // Handed over from another node: its requests reach its games and
        // rooms from its first frame.
        let adopted = admission.adopted.take().map(|adopted| *adopted);
        let Adopted { games, rooms } = adopted.unwrap_or_default();
        Session {
            games: games
                .into_iter()
                .map(|link| (link.id.clone(), link))
                .collect(),
            rooms: rooms
                .into_iter()
                .map(|link| (link.name.clone(), RoomRoute::Joined(link)))
                .collect(),
            join_serial: 0,
            connection: admission.connection,
            id: admission.id.clone(),
            name: admission.name.clone(),
            color: admission.color.clone(),
            rate,
            replay: Replay::new(limits.replay_frames),
            shared,
            outbox,
            reader: None,
            flusher: None,
            last_seen: now,
            heartbeat: None,
            admission: Some(Box::new(admission)),
            resync: None,
            handle,
        }
    }

    /// Queues a frame for the connection; drops the client if its outbox
    /// is full. Says whether the frame was queued (never while away).
    fn push(&mut self, frame: Outgoing, ctx: &mut Context<Self>) -> bool {
        if !self.outbox.is_open() {
            return false;
        }
        if !self.handle.reserve() {
            self.drop_slow_client(ctx);
            return false;
        }
        self.outbox.push(frame);
        true
    }

    /// Sends a frame the session itself makes: an answer to its client's
    /// request, which is numbered and goes out at once.
    fn send(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        self.shared.metrics.frames_out.inc();
        self.replay.number(&frame);
        self.push(Outgoing::Answer(frame), ctx);
    }

    /// Sends `welcome` or `resumed`, which open a connection and are not
    /// numbered.
    fn send_opening(&mut self, msg: &ServerMsg, ctx: &mut Context<Self>) {
        self.shared.metrics.frames_out.inc();
        self.push(Outgoing::Answer(msg.encode()), ctx);
    }

    /// Sends `msg` as the reply to request `id`.
    fn reply(&mut self, msg: &ServerMsg, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        self.send(msg.encode_reply(id), ctx);
    }

    /// Sends the `error` frame of a refused request.
    fn refuse(&mut self, refusal: &Refusal, ctx: &mut Context<Self>) {
        self.shared.metrics.error_sent(refusal.code);
        self.send(refusal.encode(), ctx);
    }

    /// Closes the connection with a Close frame (even when the outbox is
    /// full), after what was queued before it; the session is then away.
    fn close(&mut self, code: CloseCode, ctx: &mut Context<Self>) {
        if self.detach(Some(code), ctx) {
            self.went_away(LeaveReason::Disconnected);
        }
    }

    /// The connection is gone (or silent): drop it without a Close frame;
    /// the session is then away.
    fn lost_connection(&mut self, reason: LeaveReason, ctx: &mut Context<Self>) {
        if self.detach(None, ctx) {
            self.went_away(reason);
        }
    }

    /// Lets the connection go, with a Close frame if `code` is given:
    /// its reader stops, its heartbeat too, and its queued frames no
    /// longer count against the outbox (they are numbered and kept).
    /// `false` if there was no connection.
    fn detach(&mut self, code: Option<CloseCode>, ctx: &mut Context<Self>) -> bool {
        if !self.outbox.is_open() {
            return false;
        }
        // What a resync held goes out (or is kept) before the connection goes.
        self.end_resync();
        let queued = match code {
            // What is queued, the Close last, gets the heartbeat's timeout.
            Some(code) => self
                .outbox
                .finish(code, self.shared.config.heartbeat_timeout()),
            None => self.outbox.abort(),
        };
        self.handle.written(queued);
        if let Some(reader) = self.reader.take() {
            ctx.cancel_future(reader);
        }
        self.heartbeat = None;
        true
    }

    /// The connection has ended: the Lobby and the games hear the session
    /// is away.
    fn went_away(&mut self, reason: LeaveReason) {
        self.shared.lobby.away(Away {
            id: self.id.clone(),
            connection: self.connection,
            reason,
        });
        self.tell_games(PresenceChange::Away);
    }

    /// The client does not read: drop what is queued for it, try one last
    /// Close (1008) for no longer than the heartbeat's timeout; the
    /// session is then away (the dropped frames are kept for a resume).
    fn drop_slow_client(&mut self, ctx: &mut Context<Self>) {
        if !self.outbox.is_open() {
            return;
        }
        log::info!("session {} dropped: it does not read its frames", self.id);
        self.shared.metrics.slow_client_drops.inc();
        let dropped = self.outbox.discard();
        self.handle.written(dropped);
        self.close(CloseCode::Policy, ctx);
    }

    /// Takes a new connection: its reader, its writer, its heartbeat.
    fn attach(&mut self, upgraded: Upgraded, connection: u64, ctx: &mut Context<Self>) {
        let limits = &self.shared.config.limits;
        let (reader, writer) = socket::open(upgraded, limits.max_frame_bytes.get());
        let now = Instant::now();
        self.rate = RateLimiter::new(limits.msgs_per_sec.get(), limits.burst.get(), now);
        self.last_seen = now;
        self.connection = connection;
        self.outbox.attach(writer);
        self.handle.rearm();
        self.reader = Some(ctx.add_stream(reader));
        // The flusher goes after the new reader (see `Flusher`).
        if let Some(flusher) = self.flusher.take() {
            ctx.cancel_future(flusher);
        }
        self.flusher = Some(ctx.spawn(Flusher));
        self.enrol(ctx);
    }

    /// Joins the thread's heartbeat sweep for the current connection.
    fn enrol(&mut self, ctx: &mut Context<Self>) {
        self.heartbeat = Some(heartbeat::enrol(
            self.shared.config.heartbeat_interval(),
            self.connection,
            ctx.address(),
        ));
    }

    /// Sends a new session's `welcome` (and the resume error, for a token
    /// that was not known). A session that resumes here after leaving
    /// another node of the cluster gets `resumed` and the resync instead.
    fn welcome(&mut self, ctx: &mut Context<Self>) {
        let Some(admission) = self.admission.take() else {
            return;
        };
        if admission.outcome == AdmitOutcome::Resumed {
            let mut admission = *admission;
            // Handed over from another node with the frames its client
            // missed: it numbers on from there.
            let received = admission.carried.take().map(|carried| {
                let most = self.shared.config.limits.replay_frames;
                self.replay = Replay::carried(carried.frames, carried.last, most);
                carried.received
            });
            return self.resume(admission, received, false, ctx);
        }
        self.send_welcome(admission.resume, ctx);
        if admission.outcome == AdmitOutcome::ResumeRefused {
            let message = "no session to resume with that token; this is a new session";
            self.refuse(&Refusal::new(ErrorCode::NotFound, "resume", message), ctx);
        }
    }

    fn send_welcome(&mut self, resume: String, ctx: &mut Context<Self>) {
        let heartbeat = &self.shared.config.heartbeat;
        let welcome = ServerMsg::Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            session: self.id.clone(),
            name: self.name.clone(),
            color: self.color.clone(),
            resume,
            heartbeat_ms: heartbeat.interval_ms.get(),
            timeout_ms: heartbeat.timeout_ms.get(),
        };
        self.send_opening(&welcome, ctx);
    }

    /// A resume on the connection just attached: `welcome`, `resumed`, then
    /// exactly the frames the client missed when they are all kept and the
    /// session lost no room, else the resync (PROTOCOL.md, *Reconnecting
    /// and recovery*).
    fn resume(
        &mut self,
        admission: Admission,
        received: Option<u64>,
        was_away: bool,
        ctx: &mut Context<Self>,
    ) {
        self.send_welcome(admission.resume, ctx);
        // `welcome`, `resumed` and the missed frames go out together: more
        // than the outbox holds is a resync, not a slow client.
        let room = self.shared.config.limits.max_outbox.get().saturating_sub(2);
        let missed: Option<Vec<ByteString>> = received
            .filter(|_| admission.lost_rooms.is_empty())
            .and_then(|received| Some(self.replay.since(received)?.cloned().collect()))
            .filter(|missed: &Vec<ByteString>| missed.len() <= room);
        let rooms = admission.rooms.iter().chain(&admission.lost_rooms);
        // A game handed over with its link is among the live ones already.
        let unlinked = admission
            .games
            .iter()
            .filter(|game| !self.games.contains_key(*game));
        let resumed = ServerMsg::Resumed {
            session: self.id.clone(),
            games: self.live_games().chain(unlinked.cloned()).collect(),
            rooms: rooms.map(|seat| seat.room.clone()).collect(),
            recovered: missed.is_some(),
            last: self.replay.last(),
        };
        self.send_opening(&resumed, ctx);
        match missed {
            Some(frames) => {
                for frame in frames {
                    if !self.push(Outgoing::Answer(frame), ctx) {
                        break;
                    }
                }
                if was_away && self.outbox.is_open() {
                    self.tell_games(PresenceChange::Back { resync: false });
                }
            }
            None => {
                self.replay.resynced();
                // A room whose away grace ran out is joined anew.
                for seat in &admission.lost_rooms {
                    self.rooms.remove(&seat.room);
                }
                let stay = admission.rooms.clone();
                let mut seats = admission.rooms;
                seats.extend(admission.lost_rooms);
                self.start_resync(seats, &stay, ctx);
            }
        }
    }

    /// Numbers a frame from another actor (already counted by the handle)
    /// and queues it, or, while away, only keeps it.
    fn deliver(&mut self, frame: Outgoing) {
        if let Outgoing::Text(bytes) | Outgoing::Answer(bytes) = &frame {
            self.replay.number(bytes);
        }
        if self.outbox.is_open() {
            self.outbox.push(frame);
        } else {
            // Kept for a resume; it no longer waits to be written.
            self.handle.written(1);
        }
    }

    /// The ids of the games still running that this session plays or watches.
    fn live_games(&self) -> impl Iterator<Item = String> + '_ {
        let live = self.games.iter().filter(|(_, link)| link.alive());
        live.map(|(id, _)| id.clone())
    }

    /// The client has been silent for `heartbeat.timeout_ms`: evict it.
    fn evict(&mut self, ctx: &mut Context<Self>) {
        let silent = self.last_seen.elapsed();
        log::info!("session {} evicted: silent for {silent:?}", self.id);
        self.shared.metrics.evictions.inc();
        // An evicted peer is simply dropped: no Close frame.
        self.lost_connection(LeaveReason::Timeout, ctx);
    }

    /// Applies the rate limit to one text or binary frame; `true` if it may
    /// be handled.
    fn admit_frame(&mut self, ctx: &mut Context<Self>) -> bool {
        self.shared.metrics.frames_in.inc();
        match self.rate.check(self.last_seen) {
            Verdict::Allow => true,
            Verdict::Drop { notify } => {
                if notify {
                    let message = format!(
                        "over {} messages a second; frames are being dropped",
                        self.shared.config.limits.msgs_per_sec
                    );
                    let refusal = Refusal::unreferenced(ErrorCode::RateLimited, message);
                    self.refuse(&refusal, ctx);
                }
                false
            }
            Verdict::Close => {
                log::info!(
                    "session {} closed: over the message rate for too long",
                    self.id
                );
                self.close(CloseCode::Policy, ctx);
                false
            }
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        match protocol::parse_request(text) {
            Ok(request) => self.on_request(request, ctx),
            Err(refusal) => self.refuse(&refusal, ctx),
        }
    }

    fn on_request(&mut self, request: Request, ctx: &mut Context<Self>) {
        let Request { id, kind, msg } = request;
        match msg {
            ClientMsg::SetName(SetName { name }) => self.set_name(&name, &kind, id.as_ref(), ctx),
            ClientMsg::Echo(Echo { data }) => {
                self.reply(&ServerMsg::Echo { data }, id.as_ref(), ctx)
            }
            ClientMsg::Unknown => {
                let message = format!("unknown request type `{kind}`");
                let refusal = Refusal::new(ErrorCode::UnknownType, &kind, message);
                self.refuse(&refusal.with_id(id.as_ref()), ctx);
            }
            msg => self.route(msg, &kind, id, ctx),
        }
    }

    fn set_name(
        &mut self,
        name: &str,
        kind: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(name) = protocol::valid_name(name) else {
            let message = format!(
                "a name is 1 to {} characters after trimming, with no control or \
                 text-direction characters",
                protocol::NAME_MAX_CHARS
            );
            let refusal = Refusal::new(ErrorCode::NameInvalid, kind, message).with_id(id);
            return self.refuse(&refusal, ctx);
        };
        self.name = name.clone();
        self.shared.lobby.rename(Rename {
            id: self.id.clone(),
            name: name.clone(),
        });
        let profile = ServerMsg::Profile {
            session: self.id.clone(),
            name,
            color: self.color.clone(),
        };
        self.reply(&profile, id, ctx);
    }

    /// Tells every game this session sits in or watches what changed.
    fn tell_games(&self, change: PresenceChange) {
        for link in self.games.values() {
            link.presence(Presence {
                session: self.id.clone(),
                change,
            });
        }
    }
}

impl Actor for Session {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.shared.metrics.sessions_opened.inc();
        // A restored session has no admission: the Lobby knows it already.
        if self.admission.is_some() {
            // Registered before the resync's joins reach the Lobby; the
            // Lobby's frames are messages, handled after this, so `welcome`
            // still goes first.
            self.shared.lobby.register(Register {
                id: self.id.clone(),
                handle: self.handle.clone(),
            });
            self.welcome(ctx);
        }
        self.outbox.gather(ctx.address());
        if self.outbox.is_open() {
            self.enrol(ctx);
        }
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.detach(None, ctx);
        self.tell_games(PresenceChange::Gone);
    }
}

impl StreamHandler<Incoming> for Session {
    fn handle(&mut self, item: Incoming, ctx: &mut Context<Self>) {
        if !self.outbox.is_open() {
            return;
        }
        self.last_seen = Instant::now();
        match item {
            Incoming::Text(text) => {
                if self.admit_frame(ctx) {
                    self.on_text(&text, ctx);
                }
            }
            Incoming::Binary => {
                if self.admit_frame(ctx) {
                    let message = "binary frames are not supported; send JSON text";
                    let refusal = Refusal::unreferenced(ErrorCode::Unsupported, message);
                    self.refuse(&refusal, ctx);
                }
            }
            Incoming::Ping(payload) => {
                self.push(Outgoing::Pong(payload), ctx);
            }
            Incoming::Pong => {}
            Incoming::Close => self.close(CloseCode::Normal, ctx),
            Incoming::Broken(code, why) => {
                log::info!("session {} closed ({}): {why}", self.id, u16::from(code));
                self.close(code, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The connection ended without a Close frame; the session stays.
        self.lost_connection(LeaveReason::Disconnected, ctx);
    }
}

impl Handler<Deliver> for Session {
    type Result = ();

    fn handle(&mut self, Deliver(frame): Deliver, _: &mut Context<Self>) {
        if let Some(frame) = self.hold_live(frame) {
            self.deliver(frame);
        }
    }
}

impl Handler<Keep> for Session {
    type Result = ();

    fn handle(&mut self, Keep(frame): Keep, _: &mut Context<Self>) {
        self.replay.number(&frame);
    }
}

impl Handler<Overflowed> for Session {
    type Result = ();

    fn handle(&mut self, _: Overflowed, ctx: &mut Context<Self>) {
        self.drop_slow_client(ctx);
    }
}

impl Handler<Reconnect> for Session {
    type Result = ();

    fn handle(&mut self, msg: Reconnect, ctx: &mut Context<Self>) {
        let Reconnect {
            io,
            read_ahead,
            response,
            slot,
            admission,
            received,
        } = msg;
        let was_away = !self.outbox.is_open();
        if !was_away {
            // A takeover: the older connection closes; nobody saw it go.
            self.detach(Some(CloseCode::Other(CLOSE_TAKEN_OVER)), ctx);
        }
        let io = match TcpStream::from_std(io) {
            Ok(io) => io,
            Err(err) => {
                log::error!("session {}: its new connection failed: {err}", self.id);
                self.connection = admission.connection;
                return self.went_away(LeaveReason::Disconnected);
            }
        };
        let upgraded = Upgraded {
            io,
            read_ahead,
            response,
            slot,
        };
        self.attach(upgraded, admission.connection, ctx);
        self.resume(admission, received, was_away, ctx);
    }
}

impl Handler<MoveOut> for Session {
    type Result = ();

    fn handle(&mut self, msg: MoveOut, ctx: &mut Context<Self>) {
        let frames = self
            .replay
            .since(msg.received)
            .map(|frames| frames.cloned().collect());
        let last = self.replay.last();
        let games = self
            .games
            .values()
            .map(|link| (link.id.clone(), link.kind))
            .collect();
        let _ = msg.reply.send(MovedOut {
            frames,
            last,
            games,
        });
        // Its rooms and games reach it on its new node now.
        self.games.clear();
        self.rooms.clear();
        self.detach(Some(CloseCode::Other(CLOSE_TAKEN_OVER)), ctx);
        ctx.stop();
    }
}

impl Handler<EndSession> for Session {
    type Result = ();

    fn handle(&mut self, msg: EndSession, ctx: &mut Context<Self>) {
        if msg.0 == CloseCode::Other(CLOSE_TAKEN_OVER) {
            // Resumed on another node: its games hold its seats until they
            // reach it there.
            self.tell_games(PresenceChange::Away);
            self.games.clear();
        }
        self.detach(Some(msg.0), ctx);
        ctx.stop();
    }
}

impl Handler<Beat> for Session {
    type Result = ();

    fn handle(&mut self, _: Beat, ctx: &mut Context<Self>) {
        if !self.outbox.is_open() {
            return;
        }
        let silent = self.last_seen.elapsed() >= self.shared.config.heartbeat_timeout();
        // Frames waiting to be read are life too: then the server, not the
        // client, was late.
        if silent && !self.outbox.unread() {
            self.evict(ctx);
        } else {
            // Once a beat, the frame queue gives its room back.
            self.outbox.shrink();
            self.push(Outgoing::Ping, ctx);
        }
    }
}

impl Handler<CloseSession> for Session {
    type Result = ();

    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(msg.0, ctx);
    }
}
