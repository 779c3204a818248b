//! `/healthz`, `/metrics`, `/api/*` and the static client.

use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn healthz_counts_open_sessions() {
    let server = TestServer::start();
    assert_eq!(
        server.get_json("/healthz").await,
        json!({"status":"ok","sessions":0})
    );
    let (first, _) = server.connect().await;
    let (_second, _) = server.connect().await;
    server.wait_for_sessions(2).await;
    drop(first);
    server.wait_for_sessions(1).await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_named_parlor() {
    let server = TestServer::start();
    let (_client, _) = server.connect().await;
    let (status, text) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "parlor_sessions",
        "parlor_frames_in_total",
        "parlor_frames_out_total",
        "parlor_evictions_total",
        "parlor_slow_client_drops_total",
        "parlor_errors_total",
        "parlor_handshake_rejections_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing from:\n{text}"
        );
    }
    assert!(text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .all(|line| line.starts_with("parlor_")));
    assert_eq!(server.metric("parlor_sessions").await, 1.0);
    assert!(
        text.contains("parlor_errors_total{code=\"not_your_turn\"} 0"),
        "every code is listed from the start"
    );
}

#[tokio::test]
async fn rooms_and_games_lists_start_empty() {
    let server = TestServer::start();
    assert_eq!(server.get_json("/api/rooms").await, json!([]));
    assert_eq!(server.get_json("/api/games").await, json!([]));
}

#[tokio::test]
async fn the_browser_client_is_served_at_the_root() {
    let server = TestServer::start();
    let (status, page) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<title>") && page.contains("Parlor"),
        "{page}"
    );
    let (status, module) = server.get("/client.js").await;
    assert_eq!(status, 200);
    assert!(module.contains("/ws"));
    assert_eq!(server.get("/no-such-file").await.0, 404);
}
