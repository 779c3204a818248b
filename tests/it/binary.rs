//! The `parlor` binary: command line, configuration layering, signals.

use std::{io::Write, time::Duration};

use crate::support::{binary, http_get, spawn_binary, Client, Ending};

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
