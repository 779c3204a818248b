//! `WsChatSession` actor: one per WebSocket connection.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws;
use rand::{distributions::Alphanumeric, Rng};
use serde_json::{json, Value};

use crate::server;

/// How often heartbeat pings are sent
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long before lack of client response causes a timeout
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

const ADJ: [&str; 10] = [
    "Quiet", "Brave", "Swift", "Calm", "Lucky", "Witty", "Bold", "Merry", "Gentle", "Clever",
];
const ANIMALS: [&str; 10] = [
    "Otter", "Falcon", "Badger", "Heron", "Lynx", "Panda", "Fox", "Koala", "Moose", "Wren",
];

fn token(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn is_room_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn error(code: &str, message: &str, reference: Option<&str>) -> String {
    let mut e = json!({"type": "error", "code": code, "message": message});
    if let Some(r) = reference {
        e["ref"] = json!(r);
    }
    e.to_string()
}

pub struct WsChatSession {
    /// unique session id
    pub id: String,
    pub name: String,
    pub color: String,
    /// Client must send something (ping, pong or message) at least once per CLIENT_TIMEOUT,
    /// otherwise we drop the connection.
    pub hb: Instant,
    pub evicted: bool,
    /// Chat server
    pub addr: Addr<server::ChatServer>,
}

impl WsChatSession {
    pub fn new(addr: Addr<server::ChatServer>) -> Self {
        let mut rng = rand::thread_rng();
        WsChatSession {
            id: format!("s_{}", token(16)),
            name: format!(
                "{} {}",
                ADJ[rng.gen_range(0..ADJ.len())],
                ANIMALS[rng.gen_range(0..ANIMALS.len())]
            ),
            color: format!("#{:06x}", rng.gen_range(0..0x100_0000u32)),
            hb: Instant::now(),
            evicted: false,
            addr,
        }
    }

    /// helper method that sends ping to client every 5 seconds (HEARTBEAT_INTERVAL).
    /// also this method checks heartbeats from client
    fn hb(&self, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            // check client heartbeats
            if Instant::now().duration_since(act.hb) > CLIENT_TIMEOUT {
                act.evicted = true;
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let msg: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return ctx.text(error("bad_json", "frame is not a JSON object", None)),
        };
        let Some(ty) = msg.get("type").and_then(Value::as_str) else {
            return ctx.text(error("bad_request", "type", None));
        };
        match ty {
            "echo" => {
                let data = msg.get("data").cloned().unwrap_or(Value::Null);
                ctx.text(json!({"type": "echo", "data": data}).to_string());
            }
            "broadcast" => {
                let Some(room) = msg.get("room").and_then(Value::as_str) else {
                    return ctx.text(error("bad_request", "room", Some("broadcast")));
                };
                self.addr.do_send(server::Broadcast {
                    id: self.id.clone(),
                    room: room.to_owned(),
                    data: msg.get("data").cloned().unwrap_or(Value::Null),
                });
            }
            "join_room" => {
                let room = match msg.get("room").and_then(Value::as_str) {
                    Some(r) if is_room_name(r) => r.to_owned(),
                    _ => return ctx.text(error("bad_request", "room", Some("join_room"))),
                };
                let kind = msg
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("chat")
                    .to_owned();
                if kind != "chat" {
                    return ctx.text(error(
                        "unsupported",
                        "only chat rooms in this peer",
                        Some("join_room"),
                    ));
                }
                self.addr
                    .send(server::Join {
                        id: self.id.clone(),
                        room,
                        kind,
                    })
                    .into_actor(self)
                    .then(|res, _act, ctx| {
                        match res {
                            Ok(Ok(frame)) => ctx.text(frame),
                            Ok(Err((code, m))) => ctx.text(error(code, m, Some("join_room"))),
                            // something is wrong with chat server
                            Err(_) => ctx.stop(),
                        }
                        fut::ready(())
                    })
                    .wait(ctx);
            }
            "leave_room" => {
                let Some(room) = msg.get("room").and_then(Value::as_str).map(str::to_owned) else {
                    return ctx.text(error("bad_request", "room", Some("leave_room")));
                };
                self.addr
                    .send(server::Leave {
                        id: self.id.clone(),
                        room: room.clone(),
                    })
                    .into_actor(self)
                    .then(move |res, _act, ctx| {
                        match res {
                            Ok(true) => {
                                ctx.text(json!({"type": "room_left", "room": room}).to_string())
                            }
                            Ok(false) => ctx.text(error("not_in_room", &room, Some("leave_room"))),
                            Err(_) => ctx.stop(),
                        }
                        fut::ready(())
                    })
                    .wait(ctx);
            }
            other => ctx.text(error("unknown_type", other, Some(other))),
        }
    }
}

impl Actor for WsChatSession {
    type Context = ws::WebsocketContext<Self>;

    /// Method is called on actor start: start the heartbeat, register with the chat server
    /// and greet the client.
    fn started(&mut self, ctx: &mut Self::Context) {
        self.hb(ctx);
        ctx.text(
            json!({
                "type": "welcome", "protocol": 1, "session": self.id, "name": self.name, "color": self.color,
                "resume": token(32), "heartbeat_ms": HEARTBEAT_INTERVAL.as_millis() as u64,
                "timeout_ms": CLIENT_TIMEOUT.as_millis() as u64,
            })
            .to_string(),
        );
        let info = server::MemberInfo {
            session: self.id.clone(),
            name: self.name.clone(),
            color: self.color.clone(),
        };
        self.addr.do_send(server::Connect {
            info,
            addr: ctx.address().recipient(),
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        // notify chat server
        let reason = if self.evicted {
            "timeout"
        } else {
            "disconnected"
        };
        self.addr.do_send(server::Disconnect {
            id: self.id.clone(),
            reason,
        });
        Running::Stop
    }
}

/// Handle messages from chat server, we simply send them to the peer websocket
impl Handler<server::Message> for WsChatSession {
    type Result = ();

    fn handle(&mut self, msg: server::Message, ctx: &mut Self::Context) {
        ctx.text(msg.0);
    }
}

/// WebSocket message handler
impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsChatSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Err(_) => {
                ctx.stop();
                return;
            }
            Ok(msg) => msg,
        };
        // any frame from the client marks it alive
        self.hb = Instant::now();
        match msg {
            ws::Message::Ping(msg) => ctx.pong(&msg),
            ws::Message::Pong(_) => {}
            ws::Message::Text(text) => self.on_text(&text, ctx),
            ws::Message::Binary(_) => ctx.text(error(
                "unsupported",
                "binary frames are not supported",
                None,
            )),
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Continuation(_) => ctx.stop(),
            ws::Message::Nop => {}
        }
    }
}
