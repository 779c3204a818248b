//! `parlor-load churn` through a real Parlor server (started in this
//! process): sessions drop at random and resume with their frame count,
//! and nothing is lost or seen twice.

mod common;

use std::process::Command;

use serde_json::Value;

use common::start_server;

#[test]
fn churn_loses_and_doubles_nothing() {
    let addr = start_server();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let json = folder.path().join("churn.json");
    let url = format!("ws://{addr}/ws");
    let status = Command::new(env!("CARGO_BIN_EXE_parlor-load"))
        .args([
            "churn",
            "--url",
            &url,
            "--duration",
            "4",
            "--away-ms",
            "300",
        ])
        .args([
            "--rooms",
            "5",
            "--members",
            "4",
            "--rate",
            "20",
            "--drops",
            "5",
        ])
        .args(["--games", "4", "--game", "tictactoe", "--move-rate", "5"])
        .arg("--json")
        .arg(&json)
        .status()
        .expect("parlor-load runs");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("a JSON report");
    assert!(status.success(), "{report:#}");
    assert_eq!(
        (&report["lost"], &report["duplicated"]),
        (&Value::from(0), &Value::from(0))
    );
    let drops = report["drops"].as_u64().expect("drops");
    assert!(drops >= 10, "{report:#}");
    assert_eq!(report["recovered"].as_u64(), Some(drops), "{report:#}");
    assert!(report["answered"].as_u64() > Some(1000), "{report:#}");
}
