//! The Room actor: one per live room. It owns the members, ordered by last
//! activity (the first that is not away is the room's source of truth), the room's snapshot,
//! the newcomers waiting for state, and a canvas room's board.
//!
//! Takes [`Enter`], [`Exit`], [`MemberAway`], [`MemberBack`], [`Renamed`],
//! [`CloseRoom`], [`Flush`] and [`Revive`] from the Lobby, which alone decides who is in which room, and
//! [`RoomRequest`] (broadcast, direct, state, pos) straight from members'
//! sessions. Sends frames to members through their [`SessionHandle`]s,
//! snapshots to the store, and [`RoomClosed`] (with the snapshot) up
//! through the recipient it was given when it stops. Every event for many
//! members is serialised once; the bytes are shared.

pub mod canvas;

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::prelude::*;
use bytestring::ByteString;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use self::canvas::Canvas;
use crate::{
    links::{
        LoadSnapshot, ResyncPart, RoomAction, RoomClosed, RoomLink, RoomRequest, SaveSnapshot,
        SessionHandle, StoreLink,
    },
    metrics::Metrics,
    protocol::{
        CanvasPlayer, ErrorCode, LeaveReason, MemberInfo, Refusal, RequestId, Role, RoomKind,
        ServerMsg,
    },
    workers::Workers,
};

/// Timings and rules every room shares; from `[rooms]` and `[store]`.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Wait for a source-of-truth reply before asking the next member.
    pub state_request_timeout: Duration,
    /// Canvas frames per second.
    pub canvas_tick_hz: u32,
    /// `state` actions that never become the snapshot.
    pub ignore_actions: Arc<Vec<String>>,
    /// At most one snapshot write per this period (`store.save_debounce_ms`).
    pub save_debounce: Duration,
    /// The pause before a failed snapshot load is tried again.
    pub store_retry: Duration,
}

/// A member joins (or, already in, joins again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enter {
    /// Who.
    pub member: MemberInfo,
    /// How to reach them.
    pub handle: SessionHandle,
    /// The `join_room` request's `id`.
    pub id: Option<RequestId>,
    /// A resumed member's resync: the room answers a member already in it
    /// with [`Resynced`](crate::links::Resynced).
    pub resync: bool,
}

/// A member leaves.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Exit {
    /// Who.
    pub session: String,
    /// Left, disconnected or timeout.
    pub reason: LeaveReason,
    /// The `leave_room` request's `id`.
    pub id: Option<RequestId>,
}

/// A member's connection dropped: it stays, away, skipped when a
/// newcomer's state is asked for.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MemberAway {
    /// Who.
    pub session: String,
    /// Disconnected or timeout.
    pub reason: LeaveReason,
}

/// An away member came back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MemberBack {
    /// Who.
    pub session: String,
}

/// A member changed name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Renamed {
    /// The session.
    pub session: String,
    /// The new name.
    pub name: String,
}

/// The room is empty: hand back the snapshot and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseRoom;

/// The room is another node's now: stop without writing the snapshot
/// (the other node's is newer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Discard;

/// Shutdown: write the snapshot now if it changed since the last write.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Flush;

/// Members on another node lost frames: send them `room_joined` and
/// `room_state` again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resend {
    /// The members' session ids.
    pub sessions: Vec<String>,
}

/// The snapshot of this room's previous life, which closed after this one
/// opened: taken only if this one has none yet.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revive(pub Value);

/// One member.
struct Member {
    /// As others see it.
    info: MemberInfo,
    /// How to reach it.
    handle: SessionHandle,
    /// Whether it has sent anything to this room.
    active: bool,
}

/// A newcomer waiting for the room's state.
struct Newcomer {
    /// The newcomer's session id.
    session: String,
    /// Members still to ask, in activity order.
    candidates: VecDeque<String>,
    /// The member asked now, if any.
    asked: Option<String>,
    /// The timer that moves on to the next member.
    timer: Option<SpawnHandle>,
}

/// A live room.
pub struct Room {
    /// The room's name.
    name: String,
    /// Chat, stage or canvas.
    kind: RoomKind,
    /// Members, most recently active first; those who never sent anything
    /// come last, earliest joiner first.
    members: Vec<Member>,
    /// The data of the latest `state` not marked transient.
    snapshot: Value,
    /// Newcomers waiting for state.
    waiting: Vec<Newcomer>,
    /// A canvas room's board.
    canvas: Option<Canvas>,
    /// Shared timings and rules.
    settings: RoomSettings,
    /// Where the room reports closing.
    closed: Recipient<RoomClosed>,
    /// Room counters.
    metrics: Arc<Metrics>,
    /// Where the snapshot is kept.
    store: StoreLink,
    /// The snapshot as last written (or loaded).
    persisted: Value,
    /// When the snapshot was last written.
    written_at: Option<Instant>,
    /// The trailing write waiting for the debounce period to pass.
    write_timer: Option<SpawnHandle>,
    /// Whether anyone has published state since the room opened.
    published: bool,
    /// Stopped because another node runs the room now: nothing is written.
    discarded: bool,
}

/// Everything a new room needs.
pub struct NewRoom {
    /// The room's name.
    pub name: String,
    /// Its kind.
    pub kind: RoomKind,
    /// Zombies, for a canvas room.
    pub zombies: u32,
    /// Shared timings and rules.
    pub settings: RoomSettings,
    /// Where the room reports closing.
    pub closed: Recipient<RoomClosed>,
    /// Room counters.
    pub metrics: Arc<Metrics>,
    /// Where the snapshot is kept.
    pub store: StoreLink,
    /// The seed of the room's chance (where a canvas's zombies start).
    pub seed: u64,
}

impl Room {
    /// Starts a room; returns its address and the link sessions use.
    pub fn launch(workers: &Workers, new: NewRoom) -> (Addr<Room>, RoomLink) {
        let canvas = (new.kind == RoomKind::Canvas).then(|| {
            Canvas::new(
                new.zombies,
                new.settings.canvas_tick_hz,
                &mut ChaCha8Rng::seed_from_u64(new.seed),
            )
        });
        let room = Room {
            name: new.name.clone(),
            kind: new.kind,
            members: Vec::new(),
            snapshot: Value::Null,
            waiting: Vec::new(),
            canvas,
            settings: new.settings,
            closed: new.closed,
            metrics: new.metrics,
            store: new.store,
            persisted: Value::Null,
            written_at: None,
            write_timer: None,
            published: false,
            discarded: false,
        };
        let addr = workers.start(|_| room);
        let link = RoomLink::new(new.name, &addr);
        (addr, link)
    }

    fn member(&self, session: &str) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.info.session == session)
    }

    /// The `room_joined` that member `session` gets.
    fn joined(&self, session: &str) -> ServerMsg {
        ServerMsg::RoomJoined {
            room: self.name.clone(),
            kind: self.kind,
            you: session.to_string(),
            members: self.infos(),
            tick_hz: self.canvas.as_ref().map(|_| self.settings.canvas_tick_hz),
        }
    }

    fn infos(&self) -> Vec<MemberInfo> {
        self.members
            .iter()
            .map(|member| member.info.clone())
            .collect()
    }

    /// Sends one serialised event to every member `to` picks.
    fn fan_out(&self, event: &ServerMsg, to: impl Fn(&Member) -> bool) {
        let bytes: ByteString = event.encode();
        let mut delivered = 0;
        for member in self.members.iter().filter(|member| to(member)) {
            member.handle.send(bytes.clone());
            delivered += 1;
        }
        self.metrics.relayed(delivered);
    }

    /// Moves `session` to the front: it is now the most recently active.
    fn touch(&mut self, session: &str) {
        if let Some(index) = self
            .members
            .iter()
            .position(|member| member.info.session == session)
        {
            let mut member = self.members.remove(index);
            member.active = true;
            self.members.insert(0, member);
        }
    }

    fn on_enter(&mut self, msg: Enter, ctx: &mut Context<Self>) {
        let session = msg.member.session.clone();
        let again = self.member(&session).is_some();
        if !again {
            self.members.push(Member {
                info: msg.member.clone(),
                handle: msg.handle.clone(),
                active: false,
            });
            self.metrics.member_joined();
        }
        let joined = self.joined(&session);
        let candidates: VecDeque<String> = self
            .members
            .iter()
            .map(|member| member.info.session.clone())
            .filter(|member| *member != session)
            .collect();
        if again {
            // Exactly one room_state per room_joined: a rejoin while this
            // member's own state request is out gets that answer instead.
            let waiting = self
                .waiting
                .iter()
                .any(|waiting| waiting.session == session);
            if msg.resync {
                let mut frames = vec![joined.encode()];
                if !waiting {
                    frames.push(self.snapshot_state().encode());
                    frames.extend(self.frame().map(|frame| frame.encode()));
                }
                let part = ResyncPart::Room(self.name.clone());
                return msg.handle.resynced(part, frames);
            }
            msg.handle.answer(joined.encode_reply(msg.id.as_ref()));
            if !waiting {
                self.send_snapshot(&msg.handle);
            }
            return;
        }
        msg.handle.answer(joined.encode_reply(msg.id.as_ref()));
        if candidates.is_empty() {
            return self.send_snapshot(&msg.handle);
        }
        let event = ServerMsg::MemberJoined {
            room: self.name.clone(),
            member: msg.member,
        };
        self.fan_out(&event, |member| member.info.session != session);
        self.waiting.push(Newcomer {
            session: session.clone(),
            candidates,
            asked: None,
            timer: None,
        });
        self.ask_next(&session, ctx);
    }

    fn send_snapshot(&self, handle: &SessionHandle) {
        self.send_state(handle, &self.snapshot_state());
    }

    /// The snapshot as a newcomer gets it.
    fn snapshot_state(&self) -> ServerMsg {
        ServerMsg::RoomState {
            room: self.name.clone(),
            data: self.snapshot.clone(),
            from: None,
        }
    }

    /// Sends a newcomer its `room_state` and, on a canvas, one `frame`
    /// right after it, so that it sees the board at once.
    fn send_state(&self, handle: &SessionHandle, state: &ServerMsg) {
        handle.send(state.encode());
        if let Some(frame) = self.frame() {
            handle.send(frame.encode());
        }
    }

    /// Asks the newcomer's next candidate for the room's state, or serves
    /// the snapshot when none is left.
    fn ask_next(&mut self, newcomer: &str, ctx: &mut Context<Self>) {
        let Some(index) = self
            .waiting
            .iter()
            .position(|waiting| waiting.session == newcomer)
        else {
            return;
        };
        let next = loop {
            match self.waiting[index].candidates.pop_front() {
                Some(candidate)
                    if self
                        .member(&candidate)
                        .is_some_and(|member| !member.info.away) =>
                {
                    break Some(candidate)
                }
                Some(_) => continue,
                None => break None,
            }
        };
        let Some(candidate) = next else {
            let waiting = self.waiting.remove(index);
            if let Some(member) = self.member(&waiting.session) {
                self.send_snapshot(&member.handle);
            }
            return;
        };
        let request = ServerMsg::StateRequest {
            room: self.name.clone(),
            newcomer: newcomer.to_string(),
        };
        if let Some(member) = self.member(&candidate) {
            member.handle.send(request.encode());
        }
        let newcomer_id = newcomer.to_string();
        let timer = ctx.run_later(self.settings.state_request_timeout, move |room, ctx| {
            room.metrics.state_request(false);
            room.ask_next(&newcomer_id, ctx);
        });
        let waiting = &mut self.waiting[index];
        waiting.asked = Some(candidate);
        waiting.timer = Some(timer);
    }

    fn on_exit(&mut self, msg: Exit, ctx: &mut Context<Self>) {
        let Some(index) = self
            .members
            .iter()
            .position(|member| member.info.session == msg.session)
        else {
            return;
        };
        let member = self.members.remove(index);
        self.metrics.member_left();
        if msg.reason == LeaveReason::Left {
            let left = ServerMsg::RoomLeft {
                room: self.name.clone(),
                reason: None,
            };
            member.handle.answer(left.encode_reply(msg.id.as_ref()));
        }
        let event = ServerMsg::MemberLeft {
            room: self.name.clone(),
            session: msg.session.clone(),
            reason: msg.reason,
        };
        self.fan_out(&event, |_| true);
        if let Some(canvas) = &mut self.canvas {
            canvas.remove(&msg.session);
        }
        self.forget_newcomer(&msg.session, ctx);
        self.ask_past(&msg.session, ctx);
    }

    /// Every newcomer waiting on `session`'s answer asks the next member.
    fn ask_past(&mut self, session: &str, ctx: &mut Context<Self>) {
        let waiting_on: Vec<String> = self
            .waiting
            .iter()
            .filter(|waiting| waiting.asked.as_deref() == Some(session))
            .map(|waiting| waiting.session.clone())
            .collect();
        for newcomer in waiting_on {
            self.cancel_timer(&newcomer, ctx);
            self.ask_next(&newcomer, ctx);
        }
    }

    fn forget_newcomer(&mut self, session: &str, ctx: &mut Context<Self>) {
        self.cancel_timer(session, ctx);
        self.waiting.retain(|waiting| waiting.session != session);
    }

    fn cancel_timer(&mut self, newcomer: &str, ctx: &mut Context<Self>) {
        let waiting = self
            .waiting
            .iter_mut()
            .find(|waiting| waiting.session == newcomer);
        if let Some(timer) = waiting.and_then(|waiting| waiting.timer.take()) {
            ctx.cancel_future(timer);
        }
    }

    fn on_request(&mut self, msg: RoomRequest, ctx: &mut Context<Self>) {
        let request = msg.action.kind();
        if self.member(&msg.session).is_none() {
            let message = format!("you are not in room {}", self.name);
            let refusal = Refusal::new(ErrorCode::NotInRoom, request, message);
            return msg.reply.refuse(&refusal.with_id(msg.id.as_ref()));
        }
        match msg.action {
            RoomAction::Broadcast(data) => self.broadcast(&msg.session, data),
            RoomAction::Direct { to, data } => {
                self.direct(&msg.session, &msg.reply, to, data, msg.id.as_ref())
            }
            RoomAction::State {
                data,
                action,
                newcomer,
            } => self.state(&msg.session, data, action, newcomer, ctx),
            RoomAction::Pos { x, y } => self.pos(&msg.session, &msg.reply, x, y, msg.id.as_ref()),
        }
    }

    fn broadcast(&mut self, sender: &str, data: Value) {
        self.touch(sender);
        let from_host = self
            .member(sender)
            .is_some_and(|member| member.info.role == Role::Host);
        let to_hosts_only = self.kind == RoomKind::Stage && !from_host;
        let event = ServerMsg::Message {
            room: self.name.clone(),
            from: sender.to_string(),
            data,
            direct: false,
        };
        self.fan_out(&event, |member| {
            member.info.session != sender && (!to_hosts_only || member.info.role == Role::Host)
        });
    }

    fn direct(
        &mut self,
        sender: &str,
        reply: &SessionHandle,
        to: String,
        data: Value,
        id: Option<&RequestId>,
    ) {
        let Some(target) = self.member(&to) else {
            let message = format!("{to} is not in room {}", self.name);
            let refusal = Refusal::new(ErrorCode::NotFound, "direct", message);
            return reply.refuse(&refusal.with_id(id));
        };
        let target = target.handle.clone();
        // A direct that reached nobody is no activity.
        self.touch(sender);
        let event = ServerMsg::Message {
            room: self.name.clone(),
            from: sender.to_string(),
            data,
            direct: true,
        };
        target.send(event.encode());
        self.metrics.relayed(1);
    }

    fn state(
        &mut self,
        sender: &str,
        data: Value,
        action: Option<String>,
        newcomer: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        self.touch(sender);
        let transient = action
            .as_ref()
            .is_some_and(|action| self.settings.ignore_actions.contains(action));
        let served = newcomer.and_then(|newcomer| self.serve(&newcomer, sender, &data, ctx));
        if !transient {
            self.snapshot = data;
            self.published = true;
            self.save_soon(ctx);
        }
        if served.is_some() {
            self.metrics.state_request(true);
        }
    }

    /// Sends a waiting newcomer the state `sender` gave; `None` if that
    /// newcomer was no longer waiting.
    fn serve(
        &mut self,
        newcomer: &str,
        sender: &str,
        data: &Value,
        ctx: &mut Context<Self>,
    ) -> Option<()> {
        let index = self
            .waiting
            .iter()
            .position(|waiting| waiting.session == newcomer)?;
        self.cancel_timer(newcomer, ctx);
        self.waiting.remove(index);
        let member = self.member(newcomer)?;
        let state = ServerMsg::RoomState {
            room: self.name.clone(),
            data: data.clone(),
            from: Some(sender.to_string()),
        };
        self.send_state(&member.handle, &state);
        Some(())
    }

    fn pos(&mut self, sender: &str, reply: &SessionHandle, x: f64, y: f64, id: Option<&RequestId>) {
        let Some(canvas) = &mut self.canvas else {
            let message = format!(
                "pos is for canvas rooms; {} is a {} room",
                self.name,
                self.kind.as_str()
            );
            let refusal = Refusal::new(ErrorCode::BadRequest, "pos", message);
            return reply.refuse(&refusal.with_id(id));
        };
        canvas.place(sender, x, y);
        self.touch(sender);
    }

    /// One canvas tick: a frame to everyone if anything moved.
    fn tick(&mut self) {
        let moved = self.canvas.as_mut().is_some_and(Canvas::tick);
        if let Some(frame) = self.frame().filter(|_| moved) {
            self.fan_out(&frame, |_| true);
        }
    }

    /// A canvas room's board as a `frame`; `None` for other kinds.
    fn frame(&self) -> Option<ServerMsg> {
        let canvas = self.canvas.as_ref()?;
        let color = |session: &str| {
            self.member(session)
                .map(|member| member.info.color.clone())
                .unwrap_or_default()
        };
        let players = canvas
            .players()
            .iter()
            .map(|(session, at)| CanvasPlayer {
                session: session.clone(),
                x: at.x,
                y: at.y,
                color: color(session),
            })
            .collect();
        Some(ServerMsg::Frame {
            room: self.name.clone(),
            players,
            zombies: canvas.zombies().to_vec(),
        })
    }

    /// Writes the snapshot now if the last write is a debounce period old,
    /// else once it is; never a snapshot identical to the last written.
    fn save_soon(&mut self, ctx: &mut Context<Self>) {
        if self.snapshot == self.persisted || self.write_timer.is_some() {
            return;
        }
        let debounce = self.settings.save_debounce;
        let wait = self
            .written_at
            .map_or(Duration::ZERO, |at| debounce.saturating_sub(at.elapsed()));
        if wait.is_zero() {
            self.save_now();
        } else {
            self.write_timer = Some(ctx.run_later(wait, |room, _| {
                room.write_timer = None;
                room.save_now();
            }));
        }
    }

    /// Hands the snapshot to the store if it differs from the last written.
    fn save_now(&mut self) {
        if self.snapshot == self.persisted {
            return;
        }
        self.persisted = self.snapshot.clone();
        self.written_at = Some(Instant::now());
        let save = SaveSnapshot {
            room: self.name.clone(),
            kind: self.kind,
            data: self.snapshot.clone(),
        };
        self.store.save_snapshot(save);
    }

    /// Loads the stored snapshot before anyone enters: `wait` holds every
    /// other message until it is here. If it cannot be read, the room tries
    /// again rather than start empty and overwrite it.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let load = self.store.load_snapshot(LoadSnapshot {
            room: self.name.clone(),
        });
        ctx.wait(load.into_actor(self).map(|loaded, room, ctx| match loaded {
            Ok(Ok(stored)) => {
                if let Some(snapshot) = stored {
                    room.persisted = snapshot.clone();
                    room.snapshot = snapshot;
                }
            }
            _ => {
                log::error!(
                    "room {}: its snapshot cannot be read yet; trying again",
                    room.name
                );
                let pause = actix::clock::sleep(room.settings.store_retry);
                ctx.wait(pause.into_actor(room).map(|(), room, ctx| room.load(ctx)));
            }
        }));
    }

    fn on_away(&mut self, msg: MemberAway, ctx: &mut Context<Self>) {
        let Some(member) = self.member_mut(&msg.session) else {
            return;
        };
        member.info.away = true;
        let event = ServerMsg::MemberAway {
            room: self.name.clone(),
            session: msg.session.clone(),
            reason: msg.reason,
        };
        self.fan_out(&event, |member| member.info.session != msg.session);
        // A newcomer waiting on this member's answer asks the next one now.
        self.ask_past(&msg.session, ctx);
    }

    fn on_back(&mut self, msg: MemberBack) {
        let Some(member) = self.member_mut(&msg.session) else {
            return;
        };
        member.info.away = false;
        let event = ServerMsg::MemberBack {
            room: self.name.clone(),
            session: msg.session.clone(),
        };
        self.fan_out(&event, |member| member.info.session != msg.session);
    }

    fn member_mut(&mut self, session: &str) -> Option<&mut Member> {
        self.members
            .iter_mut()
            .find(|member| member.info.session == session)
    }

    fn on_renamed(&mut self, msg: Renamed) {
        let Some(member) = self
            .members
            .iter_mut()
            .find(|member| member.info.session == msg.session)
        else {
            return;
        };
        member.info.name = msg.name;
        let event = ServerMsg::MemberUpdated {
            room: self.name.clone(),
            member: member.info.clone(),
        };
        self.fan_out(&event, |_| true);
    }
}

impl Actor for Room {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.room_opened(self.kind);
        self.load(ctx);
        if self.canvas.is_some() {
            let period =
                Duration::from_secs_f64(1.0 / f64::from(self.settings.canvas_tick_hz.max(1)));
            ctx.run_interval(period, |room, _| room.tick());
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.metrics.room_closed(self.kind);
        if self.discarded {
            self.snapshot = Value::Null;
        } else {
            self.save_now();
        }
        let snapshot = std::mem::take(&mut self.snapshot);
        self.closed.do_send(RoomClosed {
            room: self.name.clone(),
            snapshot,
        });
    }
}

impl Handler<Enter> for Room {
    type Result = ();

    fn handle(&mut self, msg: Enter, ctx: &mut Context<Self>) {
        self.on_enter(msg, ctx);
    }
}

impl Handler<Exit> for Room {
    type Result = ();

    fn handle(&mut self, msg: Exit, ctx: &mut Context<Self>) {
        self.on_exit(msg, ctx);
    }
}

impl Handler<MemberAway> for Room {
    type Result = ();

    fn handle(&mut self, msg: MemberAway, ctx: &mut Context<Self>) {
        self.on_away(msg, ctx);
    }
}

impl Handler<MemberBack> for Room {
    type Result = ();

    fn handle(&mut self, msg: MemberBack, _: &mut Context<Self>) {
        self.on_back(msg);
    }
}

impl Handler<crate::links::Rehome> for Room {
    type Result = ();

    /// A member is reached anew (handed over to another node): its frames
    /// go through `handle` from now on.
    fn handle(&mut self, msg: crate::links::Rehome, _: &mut Context<Self>) {
        if let Some(member) = self.member_mut(&msg.session) {
            member.handle = msg.handle;
        }
    }
}

impl Handler<Renamed> for Room {
    type Result = ();

    fn handle(&mut self, msg: Renamed, _: &mut Context<Self>) {
        self.on_renamed(msg);
    }
}

impl Handler<Discard> for Room {
    type Result = ();

    fn handle(&mut self, _: Discard, ctx: &mut Context<Self>) {
        self.discarded = true;
        ctx.stop();
    }
}

impl Handler<CloseRoom> for Room {
    type Result = ();

    fn handle(&mut self, _: CloseRoom, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// An operator closes the room: every member gets `room_left{reason:
/// "closed"}` and is no longer routed to it; the snapshot is kept.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutRoom;

impl Handler<ShutRoom> for Room {
    type Result = ();

    fn handle(&mut self, _: ShutRoom, ctx: &mut Context<Self>) {
        let left = ServerMsg::RoomLeft {
            room: self.name.clone(),
            reason: Some(CLOSED_BY_OPERATOR),
        }
        .encode();
        for member in self.members.drain(..) {
            member.handle.send(left.clone());
            member.handle.room_closed(self.name.clone());
            self.metrics.member_left();
        }
        ctx.stop();
    }
}

/// `room_left.reason` of a room an operator closed.
const CLOSED_BY_OPERATOR: &str = "closed";

impl Handler<Revive> for Room {
    type Result = ();

    fn handle(&mut self, msg: Revive, _: &mut Context<Self>) {
        // The old room wrote this snapshot as it closed; this room may have
        // loaded an older one before that write landed.
        if !self.published {
            self.persisted = msg.0.clone();
            self.snapshot = msg.0;
        }
    }
}

impl Handler<Resend> for Room {
    type Result = ();

    fn handle(&mut self, msg: Resend, _: &mut Context<Self>) {
        for session in &msg.sessions {
            let Some(member) = self.member(session) else {
                continue;
            };
            member.handle.send(self.joined(session).encode());
            self.send_snapshot(&member.handle);
        }
    }
}

impl Handler<Flush> for Room {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        if let Some(timer) = self.write_timer.take() {
            ctx.cancel_future(timer);
        }
        self.save_now();
    }
}

impl Handler<RoomRequest> for Room {
    type Result = ();

    fn handle(&mut self, msg: RoomRequest, ctx: &mut Context<Self>) {
        self.on_request(msg, ctx);
    }
}
