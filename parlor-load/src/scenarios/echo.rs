//! The `echo` scenario: sessions send `echo` at a steady rate, carrying
//! their send time, and time the answers.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::json;
use tokio::time::{sleep_until, Instant as TokioInstant};
use tokio_tungstenite::tungstenite::Message;

use super::{drive, gap};
use crate::{
    client::{event_of, open},
    report::{count_answer, count_sent, new_tally, report, Report, Shared},
    EchoArgs,
};

pub(crate) async fn run_echo(args: EchoArgs) -> Report {
    let tally = new_tally();
    let gap = gap(args.rate);
    let seconds = drive(
        &args.common,
        args.duration,
        args.sessions,
        &tally,
        |n, stop_at| {
            let (url, tally) = (args.common.url(n), tally.clone());
            async move { echoer(url, n, gap, stop_at, tally).await }
        },
    )
    .await;
    report(
        "echo",
        &args.common,
        u64::from(args.sessions),
        seconds,
        &tally,
    )
}

/// One echo session: sends `echo` every `gap` with its send time, until `stop_at`.
async fn echoer(url: String, n: u32, gap: Duration, stop_at: TokioInstant, tally: Shared) {
    let Some(mut socket) = open(&url, n, &tally).await else {
        return;
    };
    let origin = Instant::now();
    let jitter = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..gap.as_secs_f64()));
    let mut next = TokioInstant::now() + jitter;
    loop {
        tokio::select! {
            () = sleep_until(next), if next < stop_at => {
                next += gap;
                count_sent(&tally);
                let micros = origin.elapsed().as_micros() as u64;
                let request = json!({"type":"echo","data":micros}).to_string();
                if socket.send(Message::text(request)).await.is_err() {
                    return;
                }
            }
            frame = socket.next() => {
                let Some(event) = event_of(frame, &tally) else { return };
                let Some(event) = event else { continue };
                if event["type"] == "echo" {
                    if let Some(micros) = event["data"].as_u64() {
                        count_answer(&tally, origin + Duration::from_micros(micros));
                    }
                }
            }
        }
    }
}
