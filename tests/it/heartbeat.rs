//! Pings, eviction of silent clients, survival of clients that answer.

use std::{num::NonZero, time::Duration};

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use futures_util::StreamExt;

use crate::support::{Ending, TestServer, PATIENCE};

fn quick_heartbeat() -> TestServer {
    TestServer::with(|config| {
        config.heartbeat.interval_ms = NonZero::new(200).unwrap();
        config.heartbeat.timeout_ms = NonZero::new(1500).unwrap();
    })
}

#[tokio::test]
async fn the_server_pings_at_the_interval() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    let mut pings = Vec::new();
    while pings.len() < 4 {
        let frame = tokio::time::timeout(PATIENCE, client.ws.next())
            .await
            .expect("a ping within the patience");
        if let Some(Ok(Message::Ping(_))) = frame {
            pings.push(tokio::time::Instant::now());
        }
    }
    // Three intervals of 200 ms between the first ping and the fourth.
    assert!(
        pings[3] - pings[0] >= Duration::from_millis(500),
        "pings came too fast"
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_is_never_evicted() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    client.idle(Duration::from_millis(3000)).await;
    let reply = client.ask(json!({"type":"echo","data":1})).await;
    assert_eq!(reply["data"], 1);
    assert_eq!(server.metric("parlor_evictions_total").await, 0.0);
}

#[tokio::test]
async fn a_silent_client_is_dropped_without_close_frame() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    // Not reading means not answering Pings: the session goes silent.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    server.wait_for_sessions(0).await;
    assert_eq!(server.metric("parlor_evictions_total").await, 1.0);
    assert_eq!(client.ending().await, Ending::Dropped);
}

#[tokio::test]
async fn messages_count_as_life_too() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    // Send without reading: the Pings go unanswered, the echoes keep it alive.
    // Three seconds is twice the timeout.
    for _ in 0..15 {
        client.send(json!({"type":"echo"})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.metric("parlor_evictions_total").await, 0.0);
    assert_eq!(
        client.recv_type("echo").await["data"],
        serde_json::Value::Null
    );
}
