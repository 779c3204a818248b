//! `parlor-load fuzz` against the real `parlor` binary: bad input of every
//! kind over many connections for 30 s (`PARLOR_FUZZ_SECONDS` for longer),
//! every answer as PROTOCOL.md says, and then the server never panicked,
//! answers `/healthz`, leaked no connection, still serves a well-behaved
//! client, and grew its memory by at most 64 MiB.

mod common;

use common::{run_load, ServerProcess};

#[test]
fn the_server_holds_under_the_socket_fuzzer() {
    let seconds = std::env::var("PARLOR_FUZZ_SECONDS").unwrap_or_else(|_| "30".to_string());
    // A dropped session is held for the reconnect grace on purpose (about
    // 3 KiB each, measured by `parlor-load idle`): thousands of drops a
    // second would hold that much for 30 s. A short grace lets them go
    // within the run, so the memory check sees what bad input leaves behind.
    let server = ServerProcess::start(&[("PARLOR_GAMES__RECONNECT_GRACE_MS", "100")]);
    let (url, pid) = (
        format!("ws://{}/ws", server.addr),
        server.child.id().to_string(),
    );
    let (passed, report) = run_load(&[
        "fuzz",
        "--url",
        &url,
        "--duration",
        &seconds,
        "--connections",
        "64",
        "--server-pid",
        &pid,
        "--max-rss-growth-mib",
        "64",
    ]);
    let stderr = server.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the server panicked:\n{stderr}"
    );
    assert!(passed, "{:#}", report["failures"]);
    let cases = report["cases"].as_object().expect("cases");
    assert_eq!(cases.len(), 14, "{report:#}");
    for (case, tally) in cases {
        assert!(
            tally["sent"].as_u64() > Some(10),
            "{case} was hardly sent: {tally}"
        );
        assert_eq!(tally["unexpected"], 0, "{case}: {tally}");
    }
    assert_eq!(report["server"]["sessions_left"], 0, "{report:#}");
    assert!(report["rss_kib_after"].as_u64().is_some(), "{report:#}");
}
