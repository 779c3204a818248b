//! What the load tester's tests share: a real Parlor server to drive, in
//! this process or as the `parlor` binary. Each test file uses part of it.
#![allow(dead_code)]

use std::{future::pending, net::SocketAddr, sync::mpsc, thread};

/// Starts a Parlor server on a free port, in memory, on a thread of its own.
pub fn start_server() -> SocketAddr {
    let (addr_tx, addr_rx) = mpsc::channel();
    thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let mut config = parlor::config::Config::defaults();
            config.server.bind = "127.0.0.1:0".to_string();
            config.store.path = parlor::store::IN_MEMORY.to_string();
            let server = parlor::start(config).expect("the server starts");
            addr_tx.send(server.addr()).expect("the test waits");
            let _ = server.run_until(pending()).await;
        });
    });
    addr_rx.recv().expect("the server's address")
}

/// The `parlor` binary of this build, built first if it is not there yet
/// (`cargo test --workspace` builds it for Parlor's own tests).
pub fn parlor_binary() -> std::path::PathBuf {
    let load = std::path::PathBuf::from(env!("CARGO_BIN_EXE_parlor-load"));
    let binary = load.with_file_name(format!("parlor{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "parlor", "--bin", "parlor"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p parlor failed");
    }
    binary
}

/// The `parlor` binary running as a child process, its stderr kept.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts `parlor` on a free port with an in-memory store and `env`
    /// added to its environment; waits for its "listening" line.
    pub fn start(env: &[(&str, &str)]) -> ServerProcess {
        use std::io::{BufRead, BufReader, Read};
        let mut child = std::process::Command::new(parlor_binary())
            .env("PARLOR_SERVER__BIND", "127.0.0.1:0")
            .env("PARLOR_STORE__PATH", ":memory:")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("parlor starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("parlor prints a line");
        let addr = line
            .trim()
            .strip_prefix("Parlor is listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .trim_end_matches('/')
            .parse()
            .expect("an address");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let kept = stderr.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(read) = pipe.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push_str(&String::from_utf8_lossy(&chunk[..read]));
                }
            }
        });
        ServerProcess {
            child,
            addr,
            stderr,
        }
    }

    /// All the server has written to its stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `parlor-load` with `args` and `--json` to a temporary file:
/// whether it succeeded, and its JSON report.
pub fn run_load(args: &[&str]) -> (bool, serde_json::Value) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let json = folder.path().join("report.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_parlor-load"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .status()
        .expect("parlor-load runs");
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let report = serde_json::from_str(&text).expect("a JSON report");
    (status.success(), report)
}
