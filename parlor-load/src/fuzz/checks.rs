//! The server as a whole after the fuzzing: `/healthz` answers, every
//! fuzzing connection is gone from its session count (none leaked), and a
//! well-behaved client is still served: a welcome, an echo, and a chat
//! message from one member to another.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

use crate::client::{dial, http_get, http_url, next_json, send_json, Socket};

/// How long the fuzzing connections have to leave the session count.
const LEAVE: Duration = Duration::from_secs(20);

/// How long each answer to the well-behaved client may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// What the checks found.
#[derive(Default, Serialize)]
pub(crate) struct ServerChecks {
    /// `/healthz`'s status and body, or why it did not answer.
    pub(crate) healthz: Option<Result<(u16, String), String>>,
    /// Sessions `/healthz` still counted once the fuzzing connections had
    /// had `LEAVE` to go.
    pub(crate) sessions_left: Option<u64>,
    /// The well-behaved client was served; else what went wrong.
    pub(crate) served: Option<Result<(), String>>,
}

impl ServerChecks {
    /// What went wrong, one line each.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        match &self.healthz {
            Some(Ok((200, _))) => {}
            Some(Ok((status, body))) => {
                failures.push(format!("/healthz answered {status}: {body}"))
            }
            Some(Err(err)) => failures.push(format!("/healthz did not answer: {err}")),
            None => failures.push("/healthz was not asked".to_string()),
        }
        if let Some(left) = self.sessions_left.filter(|left| *left > 0) {
            failures.push(format!(
                "{left} sessions still counted {} s after the fuzzing stopped: connections leaked",
                LEAVE.as_secs()
            ));
        }
        match &self.served {
            Some(Ok(())) => {}
            Some(Err(err)) => failures.push(format!("a well-behaved client was not served: {err}")),
            None => failures.push("no well-behaved client was tried".to_string()),
        }
        failures
    }

    /// One line for the report.
    pub(crate) fn summary(&self) -> String {
        let healthz = match &self.healthz {
            Some(Ok((status, body))) => format!("/healthz {status} {body}"),
            Some(Err(err)) => format!("/healthz failed: {err}"),
            None => "/healthz not asked".to_string(),
        };
        let served = match &self.served {
            Some(Ok(())) => "a well-behaved client was served".to_string(),
            Some(Err(err)) => format!("a well-behaved client was not served ({err})"),
            None => "no client tried".to_string(),
        };
        format!(
            "{healthz}; sessions left: {}; {served}",
            self.sessions_left
                .map_or("unknown".to_string(), |left| left.to_string())
        )
    }
}

/// Checks the server behind `url` (a `ws://` URL).
pub(crate) async fn check_server(url: &str) -> ServerChecks {
    let healthz_url = http_url(url, "/healthz");
    let mut checks = ServerChecks::default();
    let deadline = Instant::now() + LEAVE;
    loop {
        let healthz = http_get(&healthz_url).await;
        let sessions = healthz
            .as_ref()
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<Value>(body).ok())
            .and_then(|body| body["sessions"].as_u64());
        checks.healthz = Some(healthz);
        checks.sessions_left = sessions;
        if sessions.is_none_or(|left| left == 0) || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(200)).await;
    }
    checks.served = Some(well_behaved(url).await);
    checks
}

/// Two clients doing what the browser does: welcome, echo, join one chat
/// room, and a message from one reaching the other.
async fn well_behaved(url: &str) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    let mut ada = dial(url, 0).await?;
    let mut bob = dial(url, 1).await?;
    let welcome = next_of(&mut ada, "welcome", deadline).await?;
    next_of(&mut bob, "welcome", deadline).await?;
    send(&mut ada, json!({"type":"echo","data":"still here","id":1})).await?;
    let echo = next_of(&mut ada, "echo", deadline).await?;
    if echo["data"] != "still here" {
        return Err(format!("the echo came back as {echo}"));
    }
    let room = format!("fuzz-check-{}", welcome["session"].as_str().unwrap_or("x"));
    let room = room
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect::<String>();
    for client in [&mut ada, &mut bob] {
        send(
            client,
            json!({"type":"join_room","room":room,"kind":"chat"}),
        )
        .await?;
        next_of(client, "room_state", deadline).await?;
    }
    send(
        &mut ada,
        json!({"type":"broadcast","room":room,"data":"hello after the fuzz"}),
    )
    .await?;
    let message = next_of(&mut bob, "message", deadline).await?;
    if message["data"] != "hello after the fuzz" {
        return Err(format!("the message came as {message}"));
    }
    for client in [&mut ada, &mut bob] {
        let _ = client.close(None).await;
    }
    Ok(())
}

async fn send(socket: &mut Socket, request: Value) -> Result<(), String> {
    send_json(socket, &request).await
}

/// The next event of type `kind`; an `error` event or the end is an error.
async fn next_of(socket: &mut Socket, kind: &str, deadline: Instant) -> Result<Value, String> {
    loop {
        let event = next_json(socket, deadline)
            .await
            .map_err(|why| format!("{why} waiting for {kind}"))?;
        if event["type"] == kind {
            return Ok(event);
        }
        if event["type"] == "error" {
            return Err(format!("{event} waiting for {kind}"));
        }
    }
}
