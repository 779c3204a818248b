//! The `chat` scenario: members of many chat rooms broadcast timestamped,
//! numbered messages; every member times what it receives and spots
//! missing and duplicated deliveries. The first member of each room can
//! also send `state` messages, to load the store with snapshots.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::{sleep_until, Instant as TokioInstant};
use tokio_tungstenite::tungstenite::Message;

use super::{drive, gap};
use crate::{
    client::{dial, event_of, open},
    report::{new_tally, report, Report, Shared},
    ChatArgs,
};

pub(crate) async fn run_chat(args: ChatArgs) -> Report {
    let tally = new_tally();
    let sessions = args.rooms * args.members;
    let broadcast_gap = gap(args.rate);
    let others = u64::from(args.members - 1);
    let state_gap = (args.states > 0.0).then(|| gap(args.states));
    let seconds = drive(
        &args.common,
        args.duration,
        sessions,
        &tally,
        |n, stop_at| {
            // A room's members go to the nodes in turn, each room starting
            // at another node (its first member's node owns it).
            let member = n / args.rooms + n % args.rooms;
            let (url, tally) = (args.common.url(member), tally.clone());
            let nodes: Vec<String> = if args.failover {
                // The next nodes in turn, for a resume.
                (1..args.common.urls.len() as u32)
                    .map(|k| args.common.url(member + k))
                    .collect()
            } else {
                Vec::new()
            };
            let room = format!("load-{}", n % args.rooms);
            // The first member of each room publishes its state.
            let pace = Pace {
                gap: broadcast_gap,
                state_gap: state_gap.filter(|_| n < args.rooms),
                stop_at,
            };
            async move { chatter(url, nodes, room, n, pace, others, tally).await }
        },
    )
    .await;
    report("chat", &args.common, u64::from(sessions), seconds, &tally)
}

/// How often a chat member sends, and until when.
struct Pace {
    /// Between broadcasts.
    gap: Duration,
    /// Between `state` messages, for members that send them.
    state_gap: Option<Duration>,
    /// When sending stops.
    stop_at: TokioInstant,
}

/// One chat member: joins `room`, answers state requests, broadcasts
/// `{t, n, from, m}` every `gap` and times every broadcast it receives
/// (`m` marks broadcasts sent while measuring). With `elsewhere` (other
/// nodes' URLs), a dropped connection resumes there.
async fn chatter(
    url: String,
    elsewhere: Vec<String>,
    room: String,
    me: u32,
    pace: Pace,
    others: u64,
    tally: Shared,
) {
    let Pace {
        gap,
        state_gap,
        stop_at,
    } = pace;
    let mut next_state = TokioInstant::now() + state_gap.unwrap_or_default();
    let mut states = 0u64;
    let Some(mut socket) = open(&url, me, &tally).await else {
        return;
    };
    let join = json!({"type":"join_room","room":room,"kind":"chat"}).to_string();
    if socket.send(Message::text(join)).await.is_err() {
        return;
    }
    let origin = ORIGIN.with(|origin| *origin);
    let jitter = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..gap.as_secs_f64()));
    let mut next = TokioInstant::now() + jitter;
    let mut sequence = 0u64;
    let mut last_seen: HashMap<u64, u64> = HashMap::new();
    let mut token = String::new();
    let mut on = url;
    let mut moved = false;
    let mut last_delivery: Option<Instant> = None;
    loop {
        tokio::select! {
            () = sleep_until(next_state), if state_gap.is_some() && next_state < stop_at => {
                next_state += state_gap.unwrap_or_default();
                states += 1;
                let state = json!({"type":"state","room":room,"data":{"version":states}}).to_string();
                // A dropped connection fails over when its read ends.
                if socket.send(Message::text(state)).await.is_err() && elsewhere.is_empty() {
                    return;
                }
            }
            () = sleep_until(next), if next < stop_at => {
                next += gap;
                let measuring = tally.borrow().measuring_since.is_some();
                if measuring {
                    let mut tally = tally.borrow_mut();
                    tally.sent += 1;
                    tally.expected += others;
                    tally.offered(others);
                }
                sequence += 1;
                let micros = origin.elapsed().as_micros() as u64;
                let data = json!({"t": micros, "n": sequence, "from": me, "m": measuring});
                let request = json!({"type":"broadcast","room":room,"data":data}).to_string();
                if socket.send(Message::text(request)).await.is_err() && elsewhere.is_empty() {
                    return;
                }
            }
            frame = socket.next() => {
                if elsewhere.is_empty() || !ended(&frame) {
                    let Some(event) = event_of(frame, &tally) else { return };
                    let Some(event) = event else { continue };
                    match event["type"].as_str() {
                        Some("welcome") => {
                            token = event["resume"].as_str().unwrap_or_default().to_string();
                            continue;
                        }
                        Some("message") => {
                            record_silence(&mut last_delivery, moved, &tally);
                        }
                        _ => {}
                    }
                    socket_event(&event, &room, &mut socket, origin, &mut last_seen, &tally).await;
                    continue;
                }
                // Dropped: resume on another node.
                *tally.borrow_mut().dropped_at.entry(on.clone()).or_default() += 1;
                moved = true;
                let Some((resumed, node, new_token)) = fail_over(&elsewhere, &token, &room, me, &tally).await else {
                    return;
                };
                socket = resumed;
                on = node;
                token = new_token;
            }
        }
    }
}

/// Whether a read ended the connection.
fn ended(frame: &Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> bool {
    !matches!(
        frame,
        Some(Ok(Message::Text(_)
            | Message::Ping(_)
            | Message::Pong(_)
            | Message::Binary(_)
            | Message::Frame(_)))
    )
}

/// Counts the time since the member's last delivery, while measuring.
fn record_silence(last: &mut Option<Instant>, moved: bool, tally: &Shared) {
    let now = Instant::now();
    let mut tally = tally.borrow_mut();
    if let (Some(since), Some(last)) = (tally.measuring_since, *last) {
        let silence = now.duration_since(last.max(since)).as_micros() as u64;
        let longest = if moved {
            &mut tally.silence_moved
        } else {
            &mut tally.silence_stayed
        };
        *longest = (*longest).max(silence);
    }
    *last = Some(now);
}

/// How long a member tries to resume elsewhere.
const FAIL_OVER_FOR: Duration = Duration::from_secs(30);

/// Resumes session `token` on the other nodes in turn (a node that cannot
/// take it yet answers 503), until one does or `FAIL_OVER_FOR` has passed;
/// counts whether it got `room` back. Answers the socket, its node and the
/// new token.
async fn fail_over(
    nodes: &[String],
    token: &str,
    room: &str,
    me: u32,
    tally: &Shared,
) -> Option<(crate::client::Socket, String, String)> {
    let started = Instant::now();
    for attempt in 0.. {
        let node = &nodes[attempt % nodes.len()];
        match dial(&format!("{node}?resume={token}"), me).await {
            Ok(mut socket) => {
                let mut new_token = String::new();
                while let Some(event) = event_of(socket.next().await, tally) {
                    let Some(event) = event else { continue };
                    match event["type"].as_str() {
                        Some("welcome") => {
                            new_token = event["resume"].as_str().unwrap_or_default().to_string();
                        }
                        Some("resumed") => {
                            let mut tally = tally.borrow_mut();
                            let micros = started.elapsed().as_micros() as u64;
                            let _ = tally.resume_rtt.record(micros.max(1));
                            if event["rooms"]
                                .as_array()
                                .is_some_and(|rooms| rooms.iter().any(|r| r == room))
                            {
                                tally.failed_over += 1;
                            } else {
                                tally.room_lost += 1;
                            }
                            return Some((socket, node.clone(), new_token));
                        }
                        _ => {}
                    }
                }
                return None;
            }
            Err(err) => {
                if started.elapsed() > FAIL_OVER_FOR {
                    tally.borrow_mut().fail(format!("fail over: {err}"));
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    None
}

/// Handles one event of a member's connection.
async fn socket_event(
    event: &Value,
    room: &str,
    socket: &mut crate::client::Socket,
    origin: Instant,
    last_seen: &mut HashMap<u64, u64>,
    tally: &Shared,
) {
    match event["type"].as_str() {
        Some("message") => record_delivery(&event["data"], origin, last_seen, tally),
        Some("state_request") => {
            let reply = json!({"type":"state","room":room,"data":null,"for":event["for"]});
            let _ = socket.send(Message::text(reply.to_string())).await;
        }
        Some("error") => {
            let code = event["code"].as_str().unwrap_or_default().to_string();
            tally.borrow_mut().error(code);
        }
        _ => {}
    }
}

/// Counts one delivered broadcast: a duplicate if its sequence number is
/// not past the last one seen from its sender, else a delivery (with its
/// latency) if it was sent while measuring.
fn record_delivery(
    data: &Value,
    origin: Instant,
    last_seen: &mut HashMap<u64, u64>,
    tally: &Shared,
) {
    let (Some(sent), Some(sequence), Some(from)) = (
        data["t"].as_u64(),
        data["n"].as_u64(),
        data["from"].as_u64(),
    ) else {
        return;
    };
    let mut tally = tally.borrow_mut();
    let last = last_seen.entry(from).or_default();
    if sequence <= *last {
        tally.duplicated += 1;
        return;
    }
    *last = sequence;
    if data["m"] == true {
        tally.answered += 1;
        let micros = (origin.elapsed().as_micros() as u64)
            .saturating_sub(sent)
            .max(1);
        tally.record_rtt(micros);
    }
}

thread_local! {
    /// The instant every timestamp in this process counts from.
    static ORIGIN: Instant = Instant::now();
}
