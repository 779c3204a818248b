//! `ChatServer` actor: owns the sessions and the rooms, fans broadcasts out to members.

use std::collections::HashMap;

use actix::prelude::*;
use serde_json::{json, Value};

/// A text frame for a session to send as is.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Message(pub String);

#[derive(Clone)]
pub struct MemberInfo {
    pub session: String,
    pub name: String,
    pub color: String,
}

impl MemberInfo {
    fn json(&self) -> Value {
        json!({"session": self.session, "name": self.name, "color": self.color, "role": "member"})
    }
}

/// New session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub info: MemberInfo,
    pub addr: Recipient<Message>,
}

/// Session is gone; `reason` goes into `member_left`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub id: String,
    pub reason: &'static str,
}

/// Join a room; answers the `room_joined` frame to send, or an error code.
#[derive(Message)]
#[rtype(result = "Result<String, (&'static str, &'static str)>")]
pub struct Join {
    pub id: String,
    pub room: String,
    pub kind: String,
}

#[derive(Message)]
#[rtype(result = "bool")]
pub struct Leave {
    pub id: String,
    pub room: String,
}

/// Relay `data` to every other member of `room`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Broadcast {
    pub id: String,
    pub room: String,
    pub data: Value,
}

#[derive(Message)]
#[rtype(result = "usize")]
pub struct Count;

const MAX_LISTED_MEMBERS: usize = 100; // room_joined.members is capped for the bench

struct Room {
    kind: String,
    members: Vec<String>, // session ids in join order
}

#[derive(Default)]
pub struct ChatServer {
    sessions: HashMap<String, (MemberInfo, Recipient<Message>)>,
    rooms: HashMap<String, Room>,
}

impl ChatServer {
    fn send_to(&self, id: &str, text: &str) {
        if let Some((_, addr)) = self.sessions.get(id) {
            addr.do_send(Message(text.to_owned()));
        }
    }

    fn leave(&mut self, id: &str, room_name: &str, reason: &str) -> bool {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return false;
        };
        let Some(pos) = room.members.iter().position(|m| m == id) else {
            return false;
        };
        room.members.remove(pos);
        let out =
            json!({"type": "member_left", "room": room_name, "session": id, "reason": reason})
                .to_string();
        let members = room.members.clone();
        if members.is_empty() {
            self.rooms.remove(room_name);
        }
        for m in &members {
            self.send_to(m, &out);
        }
        true
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl Handler<Connect> for ChatServer {
    type Result = ();
    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        self.sessions
            .insert(msg.info.session.clone(), (msg.info, msg.addr));
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        if self.sessions.remove(&msg.id).is_some() {
            let joined: Vec<String> = self
                .rooms
                .iter()
                .filter(|(_, r)| r.members.iter().any(|m| *m == msg.id))
                .map(|(n, _)| n.clone())
                .collect();
            for name in joined {
                self.leave(&msg.id, &name, msg.reason);
            }
        }
    }
}

impl Handler<Join> for ChatServer {
    type Result = Result<String, (&'static str, &'static str)>;
    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Self::Result {
        let Some((me, _)) = self.sessions.get(&msg.id) else {
            return Err(("internal", "no session"));
        };
        let me = me.clone();
        let room = self.rooms.entry(msg.room.clone()).or_insert_with(|| Room {
            kind: msg.kind.clone(),
            members: Vec::new(),
        });
        if room.kind != msg.kind {
            return Err(("bad_request", "kind"));
        }
        let fresh = !room.members.contains(&msg.id);
        if fresh {
            room.members.push(msg.id.clone());
        }
        let members: Vec<Value> = room
            .members
            .iter()
            .take(MAX_LISTED_MEMBERS)
            .filter_map(|m| self.sessions.get(m).map(|(i, _)| i.json()))
            .collect();
        let others: Vec<String> = room
            .members
            .iter()
            .filter(|m| **m != msg.id)
            .cloned()
            .collect();
        if fresh {
            let out =
                json!({"type": "member_joined", "room": msg.room, "member": me.json()}).to_string();
            for m in &others {
                self.send_to(m, &out);
            }
        }
        Ok(json!({"type": "room_joined", "room": msg.room, "kind": msg.kind, "you": msg.id, "members": members}).to_string())
    }
}

impl Handler<Leave> for ChatServer {
    type Result = bool;
    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) -> bool {
        self.leave(&msg.id, &msg.room, "left")
    }
}

impl Handler<Broadcast> for ChatServer {
    type Result = ();
    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) {
        let member = self
            .rooms
            .get(&msg.room)
            .filter(|r| r.members.contains(&msg.id));
        let Some(room) = member else {
            let e = json!({"type": "error", "code": "not_in_room", "message": msg.room, "ref": "broadcast"});
            self.send_to(&msg.id, &e.to_string());
            return;
        };
        let out = json!({"type": "message", "room": msg.room, "from": msg.id, "data": msg.data})
            .to_string();
        for m in &room.members {
            if *m != msg.id {
                self.send_to(m, &out);
            }
        }
    }
}

impl Handler<Count> for ChatServer {
    type Result = usize;
    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> usize {
        self.sessions.len()
    }
}
