//! `parlor-load … --report FILE.html` through a real Parlor server (started
//! in this process): one self-contained page with the summary and the
//! charts; and a run where nothing connects stops early, saying so.

mod common;

use std::process::Command;

use common::start_server;

#[test]
fn a_chat_run_writes_one_self_contained_page_with_its_charts() {
    let addr = start_server();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let page = folder.path().join("out.html");
    let url = format!("ws://{addr}/ws");
    let pid = std::process::id().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_parlor-load"))
        .args(["chat", "--url", &url, "--rooms", "4", "--members", "3"])
        .args(["--rate", "5", "--duration", "3", "--server-pid", &pid])
        .arg("--report")
        .arg(&page)
        .output()
        .expect("parlor-load runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("the page is written");
    for wanted in [
        "<h1>parlor-load: chat</h1>",
        "Round trip over time (ms)",
        "Round-trip distribution",
        "Offered and delivered a second",
        "Server CPU (% of a core)",
        "Server memory (MiB resident)",
        "0 missing",
    ] {
        assert!(html.contains(wanted), "{wanted} in the page");
    }
    assert!(
        html.matches("<polyline").count() >= 6,
        "three percentiles, two rates, CPU, memory"
    );
    assert!(html.contains("<rect"), "the distribution's bars");
    // Self-contained: nothing is fetched from another host.
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));
}

#[test]
fn a_run_where_nothing_connects_stops_early_and_says_so() {
    // A port nothing listens on: bound, then dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_parlor-load"))
        .args(["echo", "--url", &format!("ws://127.0.0.1:{port}/ws")])
        .args(["--sessions", "3", "--duration", "30"])
        .output()
        .expect("parlor-load runs");
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no session connected"), "{said}");
    // Stopped before measuring: no report at all.
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
