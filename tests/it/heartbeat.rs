//! Pings, eviction of silent clients, survival of clients that answer.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Ending, TestServer};

fn quick_heartbeat() -> TestServer {
    TestServer::with(|config| {
        config.heartbeat.interval_ms = 100;
        config.heartbeat.timeout_ms = 400;
    })
}

#[tokio::test]
async fn the_server_pings_at_the_interval() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    let mut pings = 0;
    let started = tokio::time::Instant::now();
    while pings < 3 {
        if let Some(Ok(Message::Ping(_))) = futures_util::StreamExt::next(&mut client.ws).await {
            pings += 1;
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "three pings came too fast"
    );
}

#[tokio::test]
async fn a_client_that_answers_pings_is_never_evicted() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    client.idle(Duration::from_millis(1500)).await;
    let reply = client.ask(json!({"type":"echo","data":1})).await;
    assert_eq!(reply["data"], 1);
    assert_eq!(server.metric("parlor_evictions_total").await, 0.0);
}

#[tokio::test]
async fn a_silent_client_is_dropped_without_close_frame() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    // Not reading means not answering Pings: the session goes silent.
    tokio::time::sleep(Duration::from_millis(900)).await;
    server.wait_for_sessions(0).await;
    assert_eq!(server.metric("parlor_evictions_total").await, 1.0);
    assert_eq!(client.ending().await, Ending::Dropped);
}

#[tokio::test]
async fn messages_count_as_life_too() {
    let server = quick_heartbeat();
    let (mut client, _) = server.connect().await;
    // Send without reading: the Pings go unanswered, the echoes keep it alive.
    for _ in 0..12 {
        client.send(json!({"type":"echo"})).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.metric("parlor_evictions_total").await, 0.0);
    assert_eq!(
        client.recv_type("echo").await["data"],
        serde_json::Value::Null
    );
}
