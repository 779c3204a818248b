//! `parlor-load churn` through a real Parlor server (started in this
//! process): sessions drop at random and resume with their frame count,
//! and nothing is lost or seen twice.

mod common;

use serde_json::Value;

use common::{run_load, start_server};

#[test]
fn churn_loses_and_doubles_nothing() {
    let addr = start_server();
    let url = format!("ws://{addr}/ws");
    let (passed, report) = run_load(&[
        "churn",
        "--url",
        &url,
        "--duration",
        "4",
        "--away-ms",
        "300",
        "--rooms",
        "5",
        "--members",
        "4",
        "--rate",
        "20",
        "--drops",
        "5",
        "--games",
        "4",
        "--game",
        "tictactoe",
        "--move-rate",
        "5",
    ]);
    assert!(passed, "{report:#}");
    assert_eq!(
        (&report["lost"], &report["duplicated"]),
        (&Value::from(0), &Value::from(0))
    );
    let drops = report["drops"].as_u64().expect("drops");
    assert!(drops >= 10, "{report:#}");
    assert_eq!(report["recovered"].as_u64(), Some(drops), "{report:#}");
    assert!(report["answered"].as_u64() > Some(1000), "{report:#}");
}
