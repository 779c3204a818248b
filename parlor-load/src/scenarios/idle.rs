//! The `idle` scenario: sessions that only answer Pings, held for
//! `--hold` seconds, to measure the server's memory and CPU per idle
//! session. Past one process's open-file limit the run is spread over
//! worker processes (this same binary), whose reports are added up.

use std::{path::PathBuf, time::Duration};

use futures_util::StreamExt;

use super::{drive, SETTLE};
use crate::{
    client::{event_of, open},
    report::{new_tally, report, Report, Shared},
    usage::{server_sample, usage},
    IdleArgs,
};

/// Open files a worker keeps free beyond its sessions (stdio, the runtime).
const FILE_MARGIN: u64 = 64;

pub(crate) async fn run_idle(args: IdleArgs) -> Report {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let per_process = args
        .per_process
        .unwrap_or_else(|| u32::try_from(limit.saturating_sub(FILE_MARGIN)).unwrap_or(u32::MAX))
        .max(1);
    if args.sessions > per_process && !args.worker {
        return run_idle_workers(&args, per_process).await;
    }
    let tally = new_tally();
    let mut common = args.common.clone();
    if args.worker {
        // The parent reads the server; a worker only holds sessions.
        common.server_pid = None;
    }
    let seconds = drive(&common, args.hold, args.sessions, &tally, |n, _| {
        let (url, tally) = (common.url(n), tally.clone());
        async move { idler(url, n, tally).await }
    })
    .await;
    report("idle", &common, u64::from(args.sessions), seconds, &tally)
}

/// Holds one session, answering Pings, until aborted; counts it evicted if
/// the server closes it while measuring.
async fn idler(url: String, n: u32, tally: Shared) {
    let Some(mut socket) = open(&url, n, &tally).await else {
        return;
    };
    // `event_of` counts the drop as a failure, with its reason.
    while event_of(socket.next().await, &tally).is_some() {}
    let mut tally = tally.borrow_mut();
    if tally.measuring_since.is_some() {
        tally.evicted += 1;
    }
}

/// Runs an idle load too big for one process as several worker processes
/// (this same binary), each holding its share, and adds up their reports.
async fn run_idle_workers(args: &IdleArgs, per_process: u32) -> Report {
    let workers = args.sessions.div_ceil(per_process);
    let ramp_each = (args.common.ramp / workers).max(1);
    let dir = std::env::temp_dir();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("parlor-load"));
    eprintln!(
        "parlor-load: {} sessions over {workers} worker processes",
        args.sessions
    );
    let mut merged = Report {
        scenario: "idle".to_string(),
        url: args.common.urls_shown(),
        ..Report::default()
    };
    let mut children = Vec::new();
    for worker in 0..workers {
        let share = per_process.min(args.sessions - worker * per_process);
        let json = dir.join(format!("parlor-load-{}-{worker}.json", std::process::id()));
        let child = tokio::process::Command::new(&exe)
            .args(["idle", "--worker"])
            .args(args.common.urls.iter().flat_map(|url| ["--url", url]))
            .args([
                "--sessions",
                &share.to_string(),
                "--hold",
                &args.hold.to_string(),
            ])
            .args([
                "--ramp",
                &ramp_each.to_string(),
                "--sources",
                &args.common.sources.to_string(),
            ])
            .arg("--json")
            .arg(&json)
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => children.push((child, json, share)),
            Err(err) => merged.lose(share, format!("worker process did not start: {err}")),
        }
    }
    // The parent reads the server over the workers' measuring window.
    let ramp = Duration::from_secs_f64(f64::from(per_process) / f64::from(ramp_each));
    let before = server_sample(&args.common);
    tokio::time::sleep(ramp + SETTLE).await;
    let measuring = server_sample(&args.common);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = server_sample(&args.common);
    for (mut child, json, share) in children {
        let _ = child.wait().await;
        let text = std::fs::read_to_string(&json).ok();
        let worker: Option<Report> = text.and_then(|text| serde_json::from_str(&text).ok());
        let _ = std::fs::remove_file(&json);
        match worker {
            Some(worker) => merged.absorb(worker),
            None => merged.lose(share, "worker process did not report".to_string()),
        }
    }
    merged.seconds = args.hold as f64;
    if let (Some(before), Some(measuring), Some(after)) = (before, measuring, after) {
        let seconds = args.hold as f64;
        merged.server = Some(usage(before, measuring, after, merged.connected, seconds));
    }
    merged
}
