//! `parlor-load soak --minutes 1` against the real `parlor` binary (the
//! short form; the README gives a 30-minute run's figures): everything at
//! once, nothing lost, memory and open files flat after the warm-up, every
//! game ended as the rules say, and no panic in the server's log.

mod common;

use std::process::Command;

use serde_json::Value;

use common::ServerProcess;

#[test]
fn a_minute_of_everything_at_once_loses_nothing_and_grows_nothing() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let store = folder.path().join("parlor.db");
    // The short form shortens what fills up before memory can be flat:
    // the frames kept for resume (256 a session by default, which games at
    // two moves a second fill in two minutes), how long finished games stay
    // addressable, and how long a dropped session is held (which also
    // bounds how long the games left at the end take to be forfeited).
    let server = ServerProcess::start(&[
        ("PARLOR_STORE__PATH", store.to_str().expect("a UTF-8 path")),
        ("PARLOR_LIMITS__REPLAY_FRAMES", "32"),
        ("PARLOR_GAMES__LINGER_MS", "5000"),
        ("PARLOR_GAMES__RECONNECT_GRACE_MS", "5000"),
    ]);
    let json = folder.path().join("soak.json");
    let status = Command::new(env!("CARGO_BIN_EXE_parlor-load"))
        .args(["soak", "--url", &format!("ws://{}/ws", server.addr)])
        .args(["--minutes", "1", "--load", "0.2", "--settle", "20"])
        .args(["--server-pid", &server.child.id().to_string()])
        .arg("--json")
        .arg(&json)
        .status()
        .expect("parlor-load runs");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("a JSON report");
    let stderr = server.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert!(status.success(), "{:#}", report["failures"]);
    // Every part ran, and the checks had something to check.
    let churn = &report["churn"];
    assert!(churn["drops"].as_u64() > Some(10), "{churn:#}");
    assert_eq!(
        (&churn["lost"], &churn["duplicated"]),
        (&Value::from(0), &Value::from(0))
    );
    let parts = &report["parts"];
    for counted in [
        "canvas_frames",
        "bot_games",
        "slow_received",
        "bad_connections",
    ] {
        assert!(parts[counted].as_u64() > Some(0), "{counted}: {parts:#}");
    }
    assert_eq!(parts["slow_lost"], 0, "{parts:#}");
    assert!(
        report["games"]["games_finished"].as_u64() > Some(0),
        "{report:#}"
    );
    assert_eq!(report["games_left"], 0, "{report:#}");
    let growth = report["rss_growth"].as_f64().expect("the memory was read");
    assert!(growth < 0.05, "memory grew {growth}");
    assert!(
        report["readings"].as_array().map(Vec::len) > Some(20),
        "{report:#}"
    );
}
