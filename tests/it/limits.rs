//! Frame size, message rate, outgoing backlog, session cap and origins.

use std::{num::NonZero, time::Duration};

use serde_json::json;

use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, Ending, TestServer};

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let server =
        TestServer::with(|config| config.limits.max_frame_bytes = NonZero::new(1024).unwrap());
    let (mut client, _) = server.connect().await;
    let fits = json!({"type":"echo","data":"x".repeat(900)});
    assert_eq!(client.ask(fits).await["type"], "echo");
    client
        .send(json!({"type":"echo","data":"x".repeat(1100)}))
        .await;
    assert_eq!(client.ending().await, Ending::Closed(1009));
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let server =
        TestServer::with(|config| config.limits.max_frame_bytes = NonZero::new(1024).unwrap());
    let (mut client, _) = server.connect().await;
    // Three frames of about 520 bytes each: every frame fits, the message does not.
    let text = json!({"type":"echo","data":"x".repeat(1500)}).to_string();
    client.send_fragmented(&text, 3).await;
    assert_eq!(client.ending().await, Ending::Closed(1009));
}

#[tokio::test]
async fn a_fragmented_message_within_the_limit_is_one_request() {
    let server =
        TestServer::with(|config| config.limits.max_frame_bytes = NonZero::new(1024).unwrap());
    let (mut client, _) = server.connect().await;
    let text = json!({"type":"echo","data":"y".repeat(800)}).to_string();
    client.send_fragmented(&text, 2).await;
    assert_eq!(client.recv_type("echo").await["data"], "y".repeat(800));
}

#[tokio::test]
async fn over_the_rate_frames_are_dropped_with_one_error() {
    let server = TestServer::with(|config| {
        config.limits.msgs_per_sec = NonZero::new(2).unwrap();
        config.limits.burst = NonZero::new(5).unwrap();
    });
    let (mut client, _) = server.connect().await;
    for n in 0..20 {
        client.send(json!({"type":"echo","data":n})).await;
    }
    let mut echoed = Vec::new();
    for _ in 0..5 {
        echoed.push(client.recv_type("echo").await["data"].clone());
    }
    assert_eq!(echoed, [0, 1, 2, 3, 4]);
    let error = client.recv_type("error").await;
    assert_eq!(error["code"], "rate_limited");
    // The other fourteen drops that second get no error of their own.
    client.idle(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn ping_and_pong_frames_never_count() {
    let server = TestServer::with(|config| {
        config.limits.msgs_per_sec = NonZero::new(1).unwrap();
        config.limits.burst = NonZero::new(1).unwrap();
    });
    let (mut client, _) = server.connect().await;
    for _ in 0..20 {
        client.send_frame(Message::Ping(vec![1])).await;
    }
    assert_eq!(
        client.ask(json!({"type":"echo","data":"ok"})).await["data"],
        "ok"
    );
}

#[tokio::test]
async fn sustained_abuse_closes_with_1008() {
    let server = TestServer::with(|config| {
        config.limits.msgs_per_sec = NonZero::new(1).unwrap();
        config.limits.burst = NonZero::new(1).unwrap();
    });
    let (client, _) = server.connect().await;
    let (mut sink, mut stream) = futures_util::StreamExt::split(client.ws);
    let flood = tokio::spawn(async move {
        use futures_util::SinkExt;
        let frame = Message::text(r#"{"type":"echo"}"#);
        while sink.send(frame.clone()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut client_ending = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while let Ok(Some(frame)) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut stream)).await
    {
        if let Ok(Message::Close(close)) = frame {
            client_ending = close.map(|close| u16::from(close.code));
            break;
        }
    }
    flood.abort();
    assert_eq!(client_ending, Some(1008));
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_with_1008() {
    let server = TestServer::with(|config| {
        config.limits.max_outbox = NonZero::new(16).unwrap();
        config.limits.msgs_per_sec = NonZero::new(100_000).unwrap();
        config.limits.burst = NonZero::new(100_000).unwrap();
    });
    let (mut client, _) = server.connect().await;
    let big = json!({"type":"echo","data":"z".repeat(60_000)}).to_string();
    // Far more than the socket buffers hold: the outbox must fill.
    for _ in 0..600 {
        if tokio::time::timeout(Duration::from_secs(5), client.send_text(&big))
            .await
            .is_err()
        {
            break;
        }
        if server.metric("parlor_slow_client_drops_total").await >= 1.0 {
            break;
        }
    }
    assert_eq!(server.metric("parlor_slow_client_drops_total").await, 1.0);
    server.wait_for_sessions(0).await;
    // Once it reads again it gets what was already on its way, then the
    // Close: a Close is never lost behind a full socket.
    assert_eq!(client.ending().await, Ending::Closed(1008));
}

#[tokio::test]
async fn a_room_member_that_does_not_read_is_dropped_and_the_room_goes_on() {
    let server = TestServer::with(|config| {
        config.limits.max_outbox = NonZero::new(16).unwrap();
        config.limits.msgs_per_sec = NonZero::new(100_000).unwrap();
        config.limits.burst = NonZero::new(100_000).unwrap();
    });
    let (mut lazy, lazy_welcome) = server.connect().await;
    let (mut talker, _) = server.connect().await;
    assert_eq!(
        lazy.ask(json!({"type":"join_room","room":"hall"})).await["type"],
        "room_joined"
    );
    assert_eq!(
        talker.ask(json!({"type":"join_room","room":"hall"})).await["type"],
        "room_joined"
    );
    // The room's fan-out fills the lazy member's outbox, not the talker's.
    let big = json!({"type":"broadcast","room":"hall","data":"z".repeat(60_000)}).to_string();
    for _ in 0..600 {
        talker.send_text(&big).await;
        if server.metric("parlor_slow_client_drops_total").await >= 1.0 {
            break;
        }
    }
    assert_eq!(server.metric("parlor_slow_client_drops_total").await, 1.0);
    let away = talker.recv_type("member_away").await;
    assert_eq!(
        (&away["session"], away["reason"].as_str()),
        (&lazy_welcome["session"], Some("disconnected"))
    );
    server.wait_for_sessions(1).await;
}

#[tokio::test]
async fn past_max_sessions_the_handshake_gets_503() {
    let server = TestServer::with(|config| config.server.max_sessions = NonZero::new(2).unwrap());
    let (first, _) = server.connect().await;
    let (_second, _) = server.connect().await;
    assert_eq!(
        Client::try_open(&server.ws_url(""), &[]).await.err(),
        Some(503)
    );
    assert_eq!(
        server
            .metric("parlor_handshake_rejections_total{reason=\"capacity\"}")
            .await,
        1.0
    );
    drop(first);
    server.wait_for_sessions(1).await;
    assert!(Client::try_open(&server.ws_url(""), &[]).await.is_ok());
}

#[tokio::test]
async fn only_allowed_origins_may_connect() {
    let server = TestServer::with(|config| {
        config.server.allowed_origins = vec!["http://good.test".to_string()]
    });
    let url = server.ws_url("");
    assert_eq!(
        Client::try_open(&url, &[("Origin", "http://evil.test")])
            .await
            .err(),
        Some(403)
    );
    assert!(Client::try_open(&url, &[("Origin", "http://good.test")])
        .await
        .is_ok());
    assert!(
        Client::try_open(&url, &[]).await.is_ok(),
        "no Origin: a non-browser client"
    );
    assert_eq!(
        server
            .metric("parlor_handshake_rejections_total{reason=\"origin\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn any_origin_is_allowed_when_the_list_is_empty() {
    let server = TestServer::start();
    assert!(
        Client::try_open(&server.ws_url(""), &[("Origin", "http://anywhere.test")])
            .await
            .is_ok()
    );
}
