//! A real `redis-server` for the cluster tests: Debian's package, started
//! by the test on a Unix socket in a folder of its own, keeping nothing on
//! disk (`--save ""`). A missing `redis-server` fails the test with how to
//! install it; it never skips.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long Redis may take to start listening.
const START_PATIENCE: Duration = Duration::from_secs(10);

/// A `redis-server` of the test's own; killed when dropped.
pub struct Redis {
    child: Option<Child>,
    /// Keeps the socket's folder for as long as the server.
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a `redis-server` listening on a Unix socket only.
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut redis = Redis { child: None, dir };
        redis.spawn();
        redis
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn spawn(&mut self) {
        let socket = self.socket();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(&socket)
            .args(["--unixsocketperm", "700"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start redis-server ({err}): the cluster tests need Debian's \
                     redis-server (apt-get install redis-server; tests/run.sh installs it)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_PATIENCE;
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The URL nodes are given.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Sends one command and returns the first line of the answer, or
    /// `None` if Redis cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = UnixStream::connect(self.socket()).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// Sends one command and returns every line of a bulk-string answer.
    pub fn bulk(&self, args: &[&str]) -> String {
        let mut stream = UnixStream::connect(self.socket()).expect("Redis reachable");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout set");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("request sent");
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).expect("answer read");
        let size: usize = header
            .trim_end()
            .strip_prefix('$')
            .and_then(|size| size.parse().ok())
            .unwrap_or_else(|| panic!("a bulk answer, got {header}"));
        let mut body = vec![0; size + 2];
        std::io::Read::read_exact(&mut reader, &mut body).expect("answer read");
        String::from_utf8_lossy(&body[..size]).into_owned()
    }

    /// A connection of the test's own that stays open (so that it still
    /// counts when `maxclients` turns others away).
    pub fn admin(&self) -> Admin {
        let stream = UnixStream::connect(self.socket()).expect("Redis reachable");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout set");
        Admin(BufReader::new(stream))
    }

    /// Kills the server (its data goes with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts it again, empty, on the same socket.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An open connection to the test's Redis.
pub struct Admin(BufReader<UnixStream>);

impl Admin {
    /// Sends one command and returns the first line of the answer.
    pub fn command(&mut self, args: &[&str]) -> String {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.0
            .get_mut()
            .write_all(request.as_bytes())
            .expect("request sent");
        let mut line = String::new();
        self.0.read_line(&mut line).expect("answer read");
        line.trim_end().to_string()
    }
}
