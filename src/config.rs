//! Configuration: `config/default.toml` (built in), then an optional file given
//! by `--config`, then `PARLOR_<SECTION>__<KEY>` environment variables.
//!
//! Every section denies unknown fields, so a misspelt key stops start-up with a
//! message that names it. Sizes, rates and periods that cannot be zero are
//! `NonZero*` types, so a zero fails as it is read, naming its key;
//! [`Config::validate`] then checks relations (`heartbeat.interval_ms` below
//! `heartbeat.timeout_ms`) and addresses.

use std::{
    collections::HashMap,
    fmt,
    num::{NonZeroU32, NonZeroU64, NonZeroUsize},
    path::Path,
    time::Duration,
};

use serde::Deserialize;

/// The built-in defaults: every key, with a one-line comment each.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Prefix of the environment variables that override keys.
const ENV_PREFIX: &str = "PARLOR";

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 2] = ["server.allowed_origins", "store.ignore_actions"];

/// The longest `cluster.node_id`: it names Redis keys and channels.
pub const NODE_ID_MAX_CHARS: usize = 64;

/// `url` as it may be logged: without a user and password, and without its
/// query (which may carry a password too).
pub fn redacted_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or_default();
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

/// The `store.path` that keeps nothing: an in-memory database.
pub const IN_MEMORY: &str = ":memory:";

/// The whole configuration, one field per section of `default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening, workers, session cap, origins, static files, shutdown.
    pub server: ServerConfig,
    /// WebSocket Ping period and eviction timeout.
    pub heartbeat: HeartbeatConfig,
    /// Per-session frame size, rate and outgoing backlog limits.
    pub limits: LimitsConfig,
    /// Room sizes and timings.
    pub rooms: RoomsConfig,
    /// Game reconnection and lingering.
    pub games: GamesConfig,
    /// The embedded store.
    pub store: StoreConfig,
    /// Many nodes on one Redis.
    pub cluster: ClusterConfig,
    /// The operators' API.
    pub admin: AdminConfig,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/api/admin/*`; empty turns the operators' API off.
    pub token: String,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port.
    pub bind: String,
    /// actix-web workers; 0 means one per core.
    pub workers: usize,
    /// Open WebSocket sessions at most.
    pub max_sessions: NonZeroUsize,
    /// Handshake `Origin` allow-list; empty allows any.
    pub allowed_origins: Vec<String>,
    /// Folder of the browser client; empty serves the pages built in.
    pub static_dir: String,
    /// Gather a session's outgoing frames this long and write them at once;
    /// 0 writes at once.
    pub write_delay_ms: u64,
    /// Grace for closing sessions on SIGTERM/SIGINT.
    pub shutdown_timeout_ms: NonZeroU64,
}

/// `[heartbeat]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Server Ping period.
    pub interval_ms: NonZeroU64,
    /// Silence after which a session is evicted.
    pub timeout_ms: NonZeroU64,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted frame, in bytes.
    pub max_frame_bytes: NonZeroUsize,
    /// Token-bucket refill, messages per second.
    pub msgs_per_sec: NonZeroU32,
    /// Token-bucket size.
    pub burst: NonZeroU32,
    /// Queued outgoing frames before a non-reading client is dropped.
    pub max_outbox: NonZeroUsize,
    /// Numbered frames kept per session for a lossless resume (0 keeps
    /// none: a resume recovers only when nothing was missed).
    pub replay_frames: usize,
}

/// `[rooms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    /// Members per room.
    pub max_members: NonZeroUsize,
    /// Rooms one session may be in.
    pub max_per_session: NonZeroUsize,
    /// Wait for a source-of-truth reply before asking the next member.
    pub state_request_timeout_ms: NonZeroU64,
    /// Canvas frames per second.
    pub canvas_tick_hz: NonZeroU32,
    /// How long a dropped member stays in its rooms, away (0 = it leaves
    /// at once); capped at `games.reconnect_grace_ms`, see
    /// [`Config::away_grace`].
    pub away_grace_ms: u64,
}

/// `[games]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GamesConfig {
    /// How long a dropped player's seat is held.
    pub reconnect_grace_ms: NonZeroU64,
    /// How long a finished game stays addressable.
    pub linger_ms: u64,
    /// Games one session may wait in or play at once.
    pub max_per_session: NonZeroUsize,
    /// A bot's move arrives this long after the move it answers.
    pub bot_delay_ms: u64,
    /// Pair a quick-match player with a bot after this long alone (0 = never).
    pub bot_after_ms: u64,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// SQLite file, or `":memory:"`.
    pub path: String,
    /// At most one snapshot write per room per period.
    pub save_debounce_ms: u64,
    /// `state` actions never written.
    pub ignore_actions: Vec<String>,
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Redis shared by all nodes; empty runs one process.
    pub redis_url: String,
    /// This node's name; empty picks a random one at start.
    pub node_id: String,
    /// How often a node says it is alive.
    pub heartbeat_ms: NonZeroU64,
    /// Silence after which a node is taken for dead.
    pub node_timeout_ms: NonZeroU64,
    /// Wait for Redis or another node before answering `unavailable`.
    pub request_timeout_ms: NonZeroU64,
    /// Finished games kept in Redis.
    pub history_max: NonZeroUsize,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// A source could not be read or parsed, or a key is unknown or ill-typed.
    Load(config::ConfigError),
    /// A key has a value the server cannot run with.
    Invalid {
        /// The key, as `section.key`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Load(err) => write!(f, "configuration: {err}"),
            ConfigError::Invalid { key, reason } => write!(f, "configuration: `{key}` {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<config::ConfigError> for ConfigError {
    fn from(err: config::ConfigError) -> Self {
        ConfigError::Load(err)
    }
}

impl Config {
    /// The built-in defaults alone.
    pub fn defaults() -> Config {
        Config::load(None, Some(HashMap::new())).expect("the built-in default.toml is valid")
    }

    /// Loads defaults, then `file`, then the environment (`env`, or the
    /// process environment when `None`), and validates the result. Only
    /// variables of the form `PARLOR_<SECTION>__<KEY>` are read; any other
    /// `PARLOR_*` variable is left alone.
    pub fn load(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Config, ConfigError> {
        let env = match env {
            Some(env) => env,
            None => process_overrides()?,
        };
        let env = env
            .into_iter()
            .filter(|(name, _)| is_override(name))
            .collect();
        let mut env_source = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(Some(env));
        for key in LIST_KEYS {
            env_source = env_source.with_list_parse_key(key);
        }
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let mut config: Config = builder.add_source(env_source).build()?.try_deserialize()?;
        // `PARLOR_SERVER__ALLOWED_ORIGINS=` means an empty list, not one empty origin.
        config
            .server
            .allowed_origins
            .retain(|origin| !origin.is_empty());
        config
            .store
            .ignore_actions
            .retain(|action| !action.is_empty());
        config.validate()?;
        Ok(config)
    }

    /// Checks values that deserialise but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat.interval_ms >= self.heartbeat.timeout_ms {
            return Err(invalid(
                "heartbeat.interval_ms",
                format!(
                    "({}) must be below heartbeat.timeout_ms ({})",
                    self.heartbeat.interval_ms, self.heartbeat.timeout_ms
                ),
            ));
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                format!(
                    "({:?}) is not an address like \"127.0.0.1:8080\"",
                    self.server.bind
                ),
            ));
        }
        if self.server.write_delay_ms >= self.heartbeat.interval_ms.get() {
            return Err(invalid(
                "server.write_delay_ms",
                format!(
                    "({}) must be below heartbeat.interval_ms ({})",
                    self.server.write_delay_ms, self.heartbeat.interval_ms
                ),
            ));
        }
        let static_dir = &self.server.static_dir;
        if !static_dir.is_empty() && !Path::new(static_dir).is_dir() {
            return Err(invalid(
                "server.static_dir",
                format!(
                    "({static_dir:?}) is not a folder (it is relative to the working directory; \
                     leave it empty for the built-in pages)"
                ),
            ));
        }
        if self.store.path.is_empty() {
            return Err(invalid("store.path", "must not be empty".to_string()));
        }
        self.validate_cluster()
    }

    /// Checks the `[cluster]` keys (only read when `cluster.redis_url` is set).
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let cluster = &self.cluster;
        if cluster.heartbeat_ms >= cluster.node_timeout_ms {
            return Err(invalid(
                "cluster.heartbeat_ms",
                format!(
                    "({}) must be below cluster.node_timeout_ms ({})",
                    cluster.heartbeat_ms, cluster.node_timeout_ms
                ),
            ));
        }
        let url = &cluster.redis_url;
        if !url.is_empty() {
            if let Err(err) = redis::Client::open(url.as_str()) {
                let shown = redacted_url(url);
                return Err(invalid(
                    "cluster.redis_url",
                    format!(
                        "({shown:?}) is not a Redis URL like \"redis://127.0.0.1:6379\": {err}"
                    ),
                ));
            }
        }
        let id = &cluster.node_id;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if id.len() > NODE_ID_MAX_CHARS || !id.chars().all(allowed) {
            return Err(invalid(
                "cluster.node_id",
                format!(
                    "({id:?}) must be at most {NODE_ID_MAX_CHARS} letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        Ok(())
    }

    /// Whether the store keeps nothing past the process (`store.path =
    /// ":memory:"`).
    pub fn store_in_memory(&self) -> bool {
        self.store.path == IN_MEMORY
    }

    /// How long a dropped member stays in its rooms: `rooms.away_grace_ms`,
    /// capped at `games.reconnect_grace_ms` (a session is forgotten then).
    pub fn away_grace(&self) -> Duration {
        let grace = self
            .rooms
            .away_grace_ms
            .min(self.games.reconnect_grace_ms.get());
        Duration::from_millis(grace)
    }

    /// Whether this process is a node of a cluster (`cluster.redis_url` set).
    pub fn clustered(&self) -> bool {
        !self.cluster.redis_url.is_empty()
    }

    /// `heartbeat.interval_ms` as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat.interval_ms.get())
    }

    /// `heartbeat.timeout_ms` as a duration.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat.timeout_ms.get())
    }

    /// `server.shutdown_timeout_ms` as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.server.shutdown_timeout_ms.get())
    }

    /// How often a failed store read or write is tried again:
    /// `store.save_debounce_ms`, but never more often than every 100 ms.
    pub fn store_retry(&self) -> Duration {
        Duration::from_millis(self.store.save_debounce_ms).max(STORE_RETRY_FLOOR)
    }
}

/// `PARLOR_<SECTION>__<KEY>`: the prefix, then a section and a key.
fn is_override(name: &str) -> bool {
    name.strip_prefix(ENV_PREFIX)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.contains("__"))
}

/// The shortest pause between tries of a failed store read or write, so
/// that `store.save_debounce_ms = 0` (write every change at once) does not
/// make the retries spin.
const STORE_RETRY_FLOOR: Duration = Duration::from_millis(100);

/// The `PARLOR_<SECTION>__<KEY>` variables of the process environment. Other
/// variables are never looked at, even when they are not Unicode.
fn process_overrides() -> Result<HashMap<String, String>, ConfigError> {
    let mut overrides = HashMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|name| is_override(name)) else {
            continue;
        };
        let value = value.into_string().map_err(|_| {
            ConfigError::Load(config::ConfigError::Message(format!(
                "environment variable {name} is not valid UTF-8"
            )))
        })?;
        overrides.insert(name.to_string(), value);
    }
    Ok(overrides)
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn temp_toml(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn load_file(text: &str) -> Result<Config, ConfigError> {
        Config::load(Some(temp_toml(text).path()), env(&[]))
    }

    #[test]
    fn defaults_match_the_protocol_table() {
        let config = Config::defaults();
        assert_eq!(config.server.bind, "127.0.0.1:8080");
        assert_eq!(config.server.workers, 0);
        assert_eq!(config.server.max_sessions.get(), 100_000);
        assert!(config.server.allowed_origins.is_empty());
        assert_eq!(config.server.static_dir, "");
        assert_eq!(config.server.write_delay_ms, 0);
        assert_eq!(config.server.shutdown_timeout_ms.get(), 5000);
        assert_eq!(config.heartbeat.interval_ms.get(), 5000);
        assert_eq!(config.heartbeat.timeout_ms.get(), 15000);
        assert_eq!(config.limits.max_frame_bytes.get(), 65536);
        assert_eq!(config.limits.msgs_per_sec.get(), 50);
        assert_eq!(config.limits.burst.get(), 100);
        assert_eq!(config.limits.max_outbox.get(), 1024);
        assert_eq!(config.rooms.max_members.get(), 64);
        assert_eq!(config.rooms.max_per_session.get(), 4);
        assert_eq!(config.rooms.state_request_timeout_ms.get(), 2000);
        assert_eq!(config.rooms.canvas_tick_hz.get(), 20);
        assert_eq!(config.games.reconnect_grace_ms.get(), 30000);
        assert_eq!(config.games.linger_ms, 60000);
        assert_eq!(config.games.max_per_session.get(), 8);
        assert_eq!(config.store.path, "data/parlor.db");
        assert_eq!(config.store.save_debounce_ms, 1000);
        assert_eq!(config.store.ignore_actions, ["moving", "freeze", "cursor"]);
    }

    #[test]
    fn environment_overrides_numbers_and_lists() {
        let config = Config::load(
            None,
            env(&[
                ("PARLOR_HEARTBEAT__INTERVAL_MS", "1234"),
                (
                    "PARLOR_SERVER__ALLOWED_ORIGINS",
                    "http://a.test,http://b.test",
                ),
                ("PARLOR_STORE__PATH", ":memory:"),
            ]),
        )
        .unwrap();
        assert_eq!(config.heartbeat.interval_ms.get(), 1234);
        assert_eq!(
            config.server.allowed_origins,
            ["http://a.test", "http://b.test"]
        );
        assert_eq!(config.store.path, ":memory:");
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        let file = temp_toml("[limits]\nburst = 7\nmsgs_per_sec = 3\n");
        let config =
            Config::load(Some(file.path()), env(&[("PARLOR_LIMITS__BURST", "9")])).unwrap();
        assert_eq!(config.limits.msgs_per_sec.get(), 3);
        assert_eq!(config.limits.burst.get(), 9);
        assert_eq!(config.limits.max_outbox.get(), 1024);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_file("[limits]\nburts = 7\n").unwrap_err().to_string();
        assert!(err.contains("burts"), "{err}");
    }

    #[test]
    fn unknown_section_is_named() {
        let err = load_file("[sever]\nbind = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sever"), "{err}");
    }

    #[test]
    fn unknown_environment_key_is_named() {
        let err = Config::load(None, env(&[("PARLOR_LIMITS__BURTS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("burts"), "{err}");
    }

    #[test]
    fn an_empty_list_from_the_environment_is_empty() {
        let config = Config::load(None, env(&[("PARLOR_SERVER__ALLOWED_ORIGINS", "")])).unwrap();
        assert!(config.server.allowed_origins.is_empty());
    }

    #[test]
    fn other_parlor_variables_are_not_read() {
        let config = Config::load(None, env(&[("PARLOR_BIN", "x"), ("PARLORX__Y", "1")])).unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:8080");
    }

    #[test]
    fn bad_type_is_named() {
        let err = load_file("[heartbeat]\ninterval_ms = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("interval_ms"), "{err}");
    }

    #[test]
    fn interval_must_be_below_timeout() {
        let err = load_file("[heartbeat]\ninterval_ms = 20000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat.interval_ms"), "{err}");
    }

    #[test]
    fn zero_limit_is_refused() {
        let err = load_file("[limits]\nmax_outbox = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_outbox"), "{err}");
    }

    #[test]
    fn a_write_delay_must_be_below_the_heartbeat() {
        let err = load_file("[server]\nwrite_delay_ms = 5000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.write_delay_ms"), "{err}");
    }

    #[test]
    fn bad_bind_is_refused() {
        let err = load_file("[server]\nbind = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/parlor.toml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("parlor.toml"), "{err}");
    }
}
