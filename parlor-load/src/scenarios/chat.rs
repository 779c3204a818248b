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
    client::{event_of, open},
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
            let room = format!("load-{}", n % args.rooms);
            // The first member of each room publishes its state.
            let pace = Pace {
                gap: broadcast_gap,
                state_gap: state_gap.filter(|_| n < args.rooms),
                stop_at,
            };
            async move { chatter(url, room, n, pace, others, tally).await }
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
/// (`m` marks broadcasts sent while measuring).
async fn chatter(url: String, room: String, me: u32, pace: Pace, others: u64, tally: Shared) {
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
    loop {
        tokio::select! {
            () = sleep_until(next_state), if state_gap.is_some() && next_state < stop_at => {
                next_state += state_gap.unwrap_or_default();
                states += 1;
                let state = json!({"type":"state","room":room,"data":{"version":states}}).to_string();
                if socket.send(Message::text(state)).await.is_err() {
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
                }
                sequence += 1;
                let micros = origin.elapsed().as_micros() as u64;
                let data = json!({"t": micros, "n": sequence, "from": me, "m": measuring});
                let request = json!({"type":"broadcast","room":room,"data":data}).to_string();
                if socket.send(Message::text(request)).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                match event["type"].as_str() {
                    Some("message") => record_delivery(&event["data"], origin, &mut last_seen, &tally),
                    Some("state_request") => {
                        let reply = json!({"type":"state","room":room,"data":null,"for":event["for"]});
                        if socket.send(Message::text(reply.to_string())).await.is_err() {
                            return;
                        }
                    }
                    Some("error") => {
                        let code = event["code"].as_str().unwrap_or_default().to_string();
                        tally.borrow_mut().error(code);
                    }
                    _ => {}
                }
            }
        }
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
        let _ = tally.rtt.record(micros);
    }
}

thread_local! {
    /// The instant every timestamp in this process counts from.
    static ORIGIN: Instant = Instant::now();
}
