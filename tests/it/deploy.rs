//! The deployment recipes in `deploy/` that can be checked here: the
//! systemd unit passes `systemd-analyze verify` with no complaint.

use std::process::Command;

/// `deploy/parlor.service`, pointed at this build's binary.
fn unit_for_this_build() -> String {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/parlor.service"
    ))
    .expect("deploy/parlor.service");
    unit.replace("/usr/local/bin/parlor", env!("CARGO_BIN_EXE_parlor"))
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed here: the unit is not verified");
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("parlor.service");
    std::fs::write(&path, unit_for_this_build()).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success(), "{said}");
    // It exits 0 on unknown keys and values, but names them.
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");
    let unit = unit_for_this_build();
    for wanted in [
        "User=parlor",
        "LimitNOFILE=",
        "Restart=on-failure",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(wanted), "{wanted}");
    }
}
