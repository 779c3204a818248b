//! `/healthz`, `/metrics`, `/api/*` and the browser client's pages.

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
async fn the_built_in_pages_are_served_with_their_content_types() {
    let server = TestServer::with(|config| config.server.static_dir = String::new());
    for (path, file, content_type) in [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/play.html", "play.html", "text/html; charset=utf-8"),
        ("/room.html", "room.html", "text/html; charset=utf-8"),
        ("/client.js", "client.js", "text/javascript; charset=utf-8"),
        ("/style.css", "style.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "favicon.svg", "image/svg+xml"),
    ] {
        let reply = server.fetch(path, &[]).await;
        assert_eq!(
            (reply.status, reply.content_type.as_str()),
            (200, content_type),
            "GET {path}"
        );
        assert_eq!(reply.body, static_file(file), "GET {path}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_as_a_page_and_as_json_under_api() {
    let server = TestServer::start();
    let page = server.fetch("/no/such-page.html", &[]).await;
    assert_eq!(page.status, 404);
    assert!(page.content_type.starts_with("text/html"), "{page:?}");
    assert!(
        page.body.contains(r#"href="/""#),
        "a link home: {}",
        page.body
    );
    assert_eq!(page.body, static_file("404.html"));
    let api = server.fetch("/api/no-such-thing", &[]).await;
    assert_eq!(
        (api.status, api.body.as_str()),
        (404, r#"{"error":"not_found"}"#)
    );
}

#[tokio::test]
async fn an_unchanged_built_in_page_is_answered_304() {
    let server = TestServer::start();
    let first = server.fetch("/play.js", &[]).await;
    let etag = first.etag.expect("an ETag");
    let again = server.fetch("/play.js", &[("If-None-Match", &etag)]).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    let other = server
        .fetch("/play.js", &[("If-None-Match", "\"old\"")])
        .await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn a_folder_in_static_dir_is_served_instead_of_the_built_in_pages() {
    let folder = tempfile::tempdir().unwrap();
    let index = "<!doctype html><title>Pages in the making</title>";
    std::fs::write(folder.path().join("index.html"), index).unwrap();
    std::fs::write(folder.path().join("new.js"), "export {};\n").unwrap();
    let dir = folder.path().to_str().unwrap().to_string();
    let server = TestServer::with(|config| config.server.static_dir = dir);
    let root = server.fetch("/", &[]).await;
    assert_eq!((root.status, root.body.as_str()), (200, index));
    let module = server.fetch("/new.js", &[]).await;
    assert_eq!(module.status, 200);
    assert!(
        module.content_type.starts_with("text/javascript"),
        "{module:?}"
    );
    // The folder replaces the built-in pages; it is not laid over them.
    assert_eq!(server.get("/play.html").await.0, 404);
    // Its own 404 page, when it has one, answers unknown paths.
    let missing = "<!doctype html><title>Lost</title>";
    std::fs::write(folder.path().join("404.html"), missing).unwrap();
    let lost = server.fetch("/no/such/page", &[]).await;
    assert_eq!((lost.status, lost.body.as_str()), (404, missing));
    assert!(lost.content_type.starts_with("text/html"), "{lost:?}");
}

/// A page of the repository's `static/` folder.
fn static_file(name: &str) -> String {
    let path = format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}
