//! What /proc says of the server (with `--server-pid`) and of this process:
//! resident memory and CPU. Also raises this process's open-file limit.

use serde::{Deserialize, Serialize};

use crate::Common;

/// What /proc says of the server while measuring.
#[derive(Serialize, Deserialize, Clone, Copy, Default)]
pub(crate) struct ServerUsage {
    /// Resident memory before the sessions connected, KiB.
    pub(crate) rss_kib_before: u64,
    /// Resident memory at the end of measuring, KiB.
    pub(crate) rss_kib_after: u64,
    /// (after − before) ÷ sessions connected, bytes.
    pub(crate) bytes_per_session: u64,
    /// CPU used while measuring, percent of one core.
    pub(crate) cpu_percent: f64,
}

/// Raises the soft open-file limit to the hard one, and says what it got.
pub(crate) fn raise_file_limit() {
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            eprintln!("parlor-load: cannot read the open-file limit: {err}");
            return;
        }
    };
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(raised) => eprintln!(
            "parlor-load: open-file limit was soft {soft}, hard {hard}; soft now {raised}"
        ),
        Err(err) => eprintln!(
            "parlor-load: open-file limit soft {soft}, hard {hard}; cannot raise it: {err}"
        ),
    }
}

/// One reading of the server's /proc, with `--server-pid`.
pub(crate) fn server_sample(common: &Common) -> Option<(u64, u64)> {
    sample(&format!("/proc/{}", common.server_pid?))
}

/// One reading of a process's /proc folder (`/proc/PID` or `/proc/self`):
/// (RSS KiB, CPU ticks).
pub(crate) fn sample(proc_dir: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let rss: u64 = rss.trim().trim_end_matches("kB").trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks))
}

/// Clock ticks a second, as /proc counts CPU time: USER_HZ, which Linux
/// fixes at 100 for user space (sysconf(_SC_CLK_TCK) would need libc,
/// which is not a dependency of this binary).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU `ticks` over `seconds`, as percent of one core.
pub(crate) fn cpu_percent(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / TICKS_PER_SEC / seconds.max(f64::EPSILON) * 100.0
}

/// The server's usage from samples before the ramp, when measuring began
/// and when it ended; memory is shared among the sessions `connected`.
pub(crate) fn usage(
    before: (u64, u64),
    measuring: (u64, u64),
    after: (u64, u64),
    connected: u64,
    seconds: f64,
) -> ServerUsage {
    let grown = after.0.saturating_sub(before.0) * 1024;
    ServerUsage {
        rss_kib_before: before.0,
        rss_kib_after: after.0,
        bytes_per_session: grown / connected.max(1),
        cpu_percent: cpu_percent(after.1.saturating_sub(measuring.1), seconds),
    }
}
