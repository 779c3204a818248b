//! The Lobby actor: one per server. It owns the session registry: the id,
//! name, color, resume secret and address of every session, live or held for
//! reconnection.
//!
//! Takes [`Admit`] from the `/ws` handler (before a session actor exists),
//! [`Register`], [`Unregister`] and [`Rename`] from sessions, and [`CloseAll`]
//! at shutdown. Sends [`CloseSession`] to sessions: 4001 to one whose resume
//! token was presented by a newer connection, 1001 to all at shutdown.
//!
//! A session that drops is held for `games.reconnect_grace_ms`: its token
//! brings back the same id, name and color within that time.

use std::{collections::HashMap, time::Duration};

use actix::prelude::*;
use actix_ws::CloseCode;

use crate::{
    identity,
    protocol::CLOSE_TAKEN_OVER,
    session::{CloseSession, Session},
};

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
    /// Bumped at every drop, so that an expiry timer set for an earlier
    /// drop does nothing after the session came back.
    drops: u64,
}

/// The session registry.
pub struct Lobby {
    /// Sessions by id, live or held.
    sessions: HashMap<String, Entry>,
    /// How long a dropped session is held (`games.reconnect_grace_ms`).
    reconnect_grace: Duration,
}

impl Lobby {
    /// An empty registry holding dropped sessions for `reconnect_grace`.
    pub fn new(reconnect_grace: Duration) -> Lobby {
        Lobby {
            sessions: HashMap::new(),
            reconnect_grace,
        }
    }

    fn resume(&mut self, token: &str) -> Option<Admission> {
        let (id, secret) = identity::split_resume_token(token)?;
        let entry = self.sessions.get_mut(&id)?;
        if !identity::secrets_match(secret, &entry.resume_secret) {
            return None;
        }
        if let Some(older) = entry.addr.take() {
            older.do_send(CloseSession(CloseCode::Other(CLOSE_TAKEN_OVER)));
        }
        entry.resume_secret = identity::new_secret();
        Some(Admission {
            resume: identity::resume_token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            id,
            outcome: AdmitOutcome::Resumed,
        })
    }

    fn admit_new(&mut self, name: Option<String>, outcome: AdmitOutcome) -> Admission {
        let id = identity::new_session_id();
        let entry = Entry {
            name: name.unwrap_or_else(identity::random_name),
            color: identity::random_color(),
            resume_secret: identity::new_secret(),
            addr: None,
            drops: 0,
        };
        let admission = Admission {
            resume: identity::resume_token(&id, &entry.resume_secret),
            name: entry.name.clone(),
            color: entry.color.clone(),
            id: id.clone(),
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
}

/// A session actor has started for an admitted id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    /// The session id.
    pub id: String,
    /// The session actor.
    pub addr: Addr<Session>,
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
            Some(entry) => entry.addr = Some(msg.addr),
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
        ctx.run_later(self.reconnect_grace, move |lobby, _| lobby.expire(expire));
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
        if let Some(entry) = self.sessions.get_mut(&msg.id) {
            entry.name = msg.name;
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
