//! The `parlor` binary: command line, configuration layering, signals.

use std::{io::Write, path::Path, process::Stdio, time::Duration};

use crate::support::{attach, binary, http_get, spawn_binary, Client, Ending, ServerProcess};

/// The binary started in `folder` with `env`, its stderr piped for
/// [`ServerProcess::stop_and_read_stderr`].
fn spawn_in(folder: &Path, env: &[(&str, &str)]) -> ServerProcess {
    let child = binary(&[], env)
        .current_dir(folder)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("parlor starts");
    attach(child)
}

#[tokio::test]
async fn environment_overrides_the_config_file() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(file, "[heartbeat]\ninterval_ms = 1111\ntimeout_ms = 9999").unwrap();
    let path = file.path().to_str().unwrap();
    let server = spawn_binary(
        &["--config", path],
        &[
            ("PARLOR_HEARTBEAT__INTERVAL_MS", "2222"),
            ("PARLOR_UNRELATED", "ignored"),
        ],
    );
    let mut client = Client::open(&format!("ws://{}/ws", server.addr)).await;
    let welcome = client.recv_type("welcome").await;
    assert_eq!(
        (
            welcome["heartbeat_ms"].as_u64(),
            welcome["timeout_ms"].as_u64()
        ),
        (Some(2222), Some(9999))
    );
}

#[test]
fn a_bad_config_file_stops_start_up_naming_the_key() {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(file, "[limits]\nburts = 3").unwrap();
    let output = binary(&["--config", file.path().to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("burts") && stderr.contains("limits"),
        "{stderr}"
    );
}

#[test]
fn a_bad_environment_value_stops_start_up_naming_the_key() {
    let output = binary(&[], &[("PARLOR_LIMITS__MAX_OUTBOX", "lots")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.max_outbox"), "{stderr}");
}

#[tokio::test]
async fn environment_variables_that_are_not_unicode_are_ignored_unless_they_are_parlors() {
    use std::{ffi::OsStr, os::unix::ffi::OsStrExt, process::Stdio};
    let not_unicode = OsStr::from_bytes(b"caf\xe9");
    let child = binary(&[], &[])
        .env("SOMEONE_ELSES", not_unicode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let server = crate::support::attach(child);
    let mut client = Client::open(&format!("ws://{}/ws", server.addr)).await;
    client.recv_type("welcome").await;
    let output = binary(&[], &[])
        .env("PARLOR_SERVER__BIND", not_unicode)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PARLOR_SERVER__BIND"), "{stderr}");
}

#[tokio::test]
async fn a_full_server_logs_once_per_full_spell() {
    let folder = tempfile::tempdir().unwrap();
    let server = spawn_in(folder.path(), &[("PARLOR_SERVER__MAX_SESSIONS", "1")]);
    let url = format!("ws://{}/ws", server.addr);
    let first = Client::open(&url).await;
    for _ in 0..3 {
        assert_eq!(Client::try_open(&url, &[]).await.err(), Some(503));
    }
    drop(first);
    // Once a place is free again, the next full spell is logged again.
    let mut second = loop {
        if let Ok(client) = Client::try_open(&url, &[]).await {
            break client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    second.recv_type("welcome").await;
    assert_eq!(Client::try_open(&url, &[]).await.err(), Some(503));
    drop(second);
    let stderr = server.stop_and_read_stderr().await;
    assert_eq!(stderr.matches("server full").count(), 2, "{stderr}");
}

#[tokio::test]
async fn started_in_an_empty_folder_it_serves_the_built_in_pages() {
    let folder = tempfile::tempdir().unwrap();
    let server = spawn_in(folder.path(), &[]);
    for (path, marker) in [("/", "<title>Parlor"), ("/play.html", "play.js")] {
        let (status, page) = http_get(server.addr, path).await;
        assert_eq!(status, 200, "GET {path}");
        assert!(page.contains(marker), "GET {path}: {page}");
    }
    let stderr = server.stop_and_read_stderr().await;
    assert!(!stderr.contains("not a folder"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(folder.path()).unwrap().collect();
    assert!(left.is_empty(), "wrote {left:?}");
}

#[test]
fn a_static_dir_that_is_not_a_folder_stops_start_up_naming_the_key() {
    let folder = tempfile::tempdir().unwrap();
    let output = binary(&[], &[("PARLOR_SERVER__STATIC_DIR", "no-such-folder")])
        .current_dir(folder.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server.static_dir") && stderr.contains("no-such-folder"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_store_file_is_logged_as_an_absolute_path() {
    let folder = tempfile::tempdir().unwrap();
    let server = spawn_in(
        folder.path(),
        &[
            ("PARLOR_STORE__PATH", "data/parlor.db"),
            ("RUST_LOG", "info"),
        ],
    );
    let stderr = server.stop_and_read_stderr().await;
    let file = folder.path().canonicalize().unwrap().join("data/parlor.db");
    assert!(
        stderr.contains(&format!("store: {}\n", file.display())),
        "{stderr}"
    );
}

/// `?resume=` carries a secret: the handshake is logged by its outcome, and
/// no query string reaches the log.
#[tokio::test]
async fn the_handshake_is_logged_without_its_query() {
    let folder = tempfile::tempdir().unwrap();
    let server = spawn_in(folder.path(), &[("RUST_LOG", "info")]);
    let ws = |query: &str| format!("ws://{}/ws?{query}", server.addr);
    let mut first = Client::open(&ws("name=Ada&resume=stale-token-4242")).await;
    let welcome = first.recv_type("welcome").await;
    let session = welcome["session"].as_str().unwrap().to_string();
    let token = welcome["resume"].as_str().unwrap().to_string();
    drop(first);
    let mut again = Client::open(&ws(&format!("resume={token}&received=1&name=Ada"))).await;
    again.recv_type("welcome").await;
    drop(again);
    assert_eq!(
        http_get(server.addr, "/healthz?probe=query-text").await.0,
        200
    );
    let stderr = server.stop_and_read_stderr().await;
    for outcome in ["resume refused", "resumed"] {
        let line = format!("ws handshake from 127.0.0.1: session {session} ({outcome})");
        assert!(stderr.contains(&line), "no {line:?} in:\n{stderr}");
    }
    assert!(stderr.contains("\"GET /healthz\" 200"), "{stderr}");
    for secret in [
        &token,
        "stale-token-4242",
        "resume=",
        "name=Ada",
        "/ws?",
        "probe",
    ] {
        assert!(!stderr.contains(secret), "{secret:?} logged:\n{stderr}");
    }
}

#[test]
fn a_bad_relation_stops_start_up() {
    let output = binary(&[], &[("PARLOR_HEARTBEAT__INTERVAL_MS", "20000")])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("heartbeat.interval_ms"));
}

#[test]
fn help_and_version_work() {
    let help = binary(&["--help"], &[]).output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
    let version = binary(&["--version"], &[]).output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn sigterm_closes_every_session_with_1001_and_exits_0() {
    let mut server = spawn_binary(&[], &[]);
    let url = format!("ws://{}/ws", server.addr);
    let mut first = Client::open(&url).await;
    let mut second = Client::open(&url).await;
    first.recv_type("welcome").await;
    second.recv_type("welcome").await;
    assert_eq!(http_get(server.addr, "/healthz").await.0, 200);
    server.terminate();
    assert_eq!(first.ending().await, Ending::Closed(1001));
    assert_eq!(second.ending().await, Ending::Closed(1001));
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "parlor did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_operators_token_is_never_logged() {
    let token = "never-in-the-log-5b7e91";
    let wrong = "nor-this-one-0c3d44";
    let folder = tempfile::tempdir().unwrap();
    let server = spawn_in(
        folder.path(),
        &[("PARLOR_ADMIN__TOKEN", token), ("RUST_LOG", "debug")],
    );
    for given in [token, wrong] {
        let bearer = format!("Bearer {given}");
        let reply = crate::support::http_fetch(
            server.addr,
            "/api/admin/sessions",
            &[("Authorization", &bearer)],
        )
        .await;
        assert!(reply.status == 200 || reply.status == 401, "{reply:?}");
    }
    let stderr = server.stop_and_read_stderr().await;
    assert!(
        stderr.contains("/api/admin/sessions"),
        "requests are logged: {stderr}"
    );
    assert!(!stderr.contains(token), "the token was logged");
    assert!(!stderr.contains(wrong), "a wrong token was logged");
}
