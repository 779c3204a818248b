//! `parlor-load soak --minutes 1` against the real `parlor` binary (the
//! short form; the README gives a 30-minute run's figures): everything at
//! once, nothing lost, memory and open files flat after the warm-up, every
//! game ended as the rules say, and no panic in the server's log.

mod common;

use serde_json::Value;

use common::{run_load, ServerProcess};

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
    let (url, pid) = (
        format!("ws://{}/ws", server.addr),
        server.child.id().to_string(),
    );
    let (passed, report) = run_load(&[
        "soak",
        "--url",
        &url,
        "--minutes",
        "1",
        "--load",
        "0.2",
        "--settle",
        "20",
        "--server-pid",
        &pid,
    ]);
    let stderr = server.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert!(passed, "{:#}", report["failures"]);
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
