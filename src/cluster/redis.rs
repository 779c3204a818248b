//! The `Redis` backplane: this node's link to the others through one Redis
//! (the `redis` crate: tokio, a connection manager that reconnects, RESP3
//! pushes for pub/sub, resubscribed automatically).
//!
//! It runs on a thread of its own (an actix arbiter), in three parts:
//! - the *node loop* owns everything this node knows of the others: its
//!   sessions (for delivery), which rooms it listens to for whom, the
//!   sequence of every room channel it listens to (gaps are repaired from
//!   the room's capped stream, or its members resynced), and the numbering
//!   of the rooms it owns. It takes [`Command`]s from the Lobby, rooms and
//!   sessions (an unbounded queue: while Redis is down it holds what waits
//!   to be published), and the pushes Redis sends, through a bounded queue
//!   that never blocks the driver (a full queue drops, counted);
//! - the *writer* publishes, in order, what the loop hands it, pipelining
//!   whatever has piled up into one round trip, and subscribes and
//!   unsubscribes in the same order;
//! - claims, releases, repairs and heartbeats run as tasks of their own,
//!   each bounded by `cluster.request_timeout_ms` (a release at shutdown
//!   goes through the writer instead, in order with the room's last
//!   frames).
//!
//! Keys and channels (ARCHITECTURE.md, *Many nodes on Redis*):
//! `parlor:nodes` (heartbeats), `parlor:{node:ID}` (a node's channel),
//! `parlor:{room:NAME}` (a room's channel), `…:owner` (its owner, epoch and
//! kind), `…:log` (its last frames for gap repair).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix::prelude::*;
use bytestring::ByteString;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    IntoConnectionInfo, ProtocolVersion, PushKind, Script,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::{
    wire::{self, Item, NodeMsg, RoomMsg, SessionData},
    Claim, Forwarded, GameEnded, JoinAnswered, NodesChanged, Unavailable, GAME_KEY,
};
use crate::{
    config::Config,
    links::{
        GameLink, LiveGame, PlayerRequest, Presence, RemoteGames, RemoteOutlet, RemoteRooms,
        ResyncPart, Resynced, RoomLink, RoomRequest, SessionHandle, StoredMove,
    },
    metrics::Metrics,
    protocol::{ErrorCode, GameKind, Refusal, Role, RoomKind, RoomListing},
};

/// Pushes from Redis waiting for the node loop; more are dropped (and
/// counted), never waited for: the driver must not block.
const PUSH_QUEUE: usize = 65_536;

/// Frames a room's log keeps for gap repair (approximately: Redis trims
/// whole nodes of the stream).
const ROOM_LOG_FRAMES: usize = 1024;

/// How long a closed room's epoch count is kept, so that a room opened
/// again soon numbers its frames after the old ones.
const EPOCH_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// Writes the writer pipelines into one round trip at most.
const WRITE_BATCH: usize = 512;

/// The key of the nodes' heartbeats.
const NODES_KEY: &str = "parlor:nodes";

/// The key of the room directory: room name → [`Listed`].
const ROOMS_KEY: &str = "parlor:rooms";

/// The key of the games directory: game id → [`ListedGame`].
const GAMES_KEY: &str = "parlor:games";

/// A kind's quick-match queue: session ids scored by when they queued.
fn queue_key(kind: GameKind) -> String {
    format!("parlor:queue:{}", kind.as_str())
}

/// The nodes of the sessions in a kind's queue, by session id.
fn queue_nodes_key(kind: GameKind) -> String {
    format!("parlor:queue:{}:nodes", kind.as_str())
}

/// A listed game in the directory, as its owner lists it.
#[derive(Serialize, Deserialize)]
struct ListedGame {
    owner: String,
    /// Its `/api/games` entry.
    listing: serde_json::Value,
}

/// A room in the directory, as its owner lists it.
#[derive(Debug, Serialize, Deserialize)]
struct Listed {
    kind: RoomKind,
    members: usize,
    owner: String,
}

/// A node's channel: requests forwarded to it.
fn node_channel(node: &str) -> String {
    format!("parlor:{{node:{node}}}")
}

/// The channel of a room (its key is its name) or a game (`game:ID`):
/// its owner's frames for members on other nodes.
fn room_channel(key: &str) -> String {
    match key.strip_prefix(GAME_KEY) {
        Some(game) => format!("parlor:{{game:{game}}}"),
        None => format!("parlor:{{room:{key}}}"),
    }
}

/// The key of the room or game a channel belongs to.
fn channel_room(channel: &str) -> Option<&str> {
    let inner = channel.strip_prefix("parlor:{")?.strip_suffix('}')?;
    match inner.strip_prefix("room:") {
        Some(room) => Some(room),
        None => inner.starts_with(GAME_KEY).then_some(inner),
    }
}

/// The ids of the sessions a node keeps records for.
fn node_sessions_key(node: &str) -> String {
    format!("parlor:{{node:{node}}}:sessions")
}

/// A session's record (a [`SessionRecord`]).
fn session_key(id: &str) -> String {
    format!("parlor:{{session:{id}}}")
}

/// A room's or game's owner, epoch and kind.
fn owner_key(key: &str) -> String {
    format!("{}:owner", room_channel(key))
}

/// A game in play, as its owner keeps it (a [`LiveGame`]).
pub(crate) fn live_game_key(id: &str) -> String {
    format!("parlor:{{game:{id}}}:live")
}

/// A game's accepted moves, by number (each a [`StoredMove`]).
pub(crate) fn moves_key(id: &str) -> String {
    format!("parlor:{{game:{id}}}:moves")
}

/// The newest finished games, newest first (each a `GameRecord`).
pub(crate) const HISTORY_KEY: &str = "parlor:history";

/// A room's or game's last frames, for gap repair.
fn log_key(key: &str) -> String {
    format!("{}:log", room_channel(key))
}

/// What the node loop is asked to do.
enum Command {
    /// A frame (or a join's answer) for a session on another node, from
    /// a room this node owns.
    Out {
        room: Arc<str>,
        to: Arc<str>,
        item: OutItem,
    },
    /// Forward a request to a room's owner.
    Forward { node: String, msg: NodeMsg },
    /// Forward a member's request to whichever node owns `room` now.
    ForwardRoom { room: String, msg: NodeMsg },
    /// Room `room` is owned by `owner` (another node).
    Route { room: String, owner: String },
    /// Hand a write to the writer, in order with the rest.
    Write(Write),
    /// This node owns `room` under `epoch`: number its frames.
    Owned { room: String, epoch: u64 },
    /// Room `room`, which this node owns, is reached through `link`: its
    /// members' messages from other nodes go straight to it.
    Serve { room: String, link: RoomLink },
    /// This node closed `room`: give it up.
    Release { room: String },
    /// This node is stopping: give `room` up and tell its members' nodes.
    HandOver { room: String },
    /// `room` is another node's now: stop numbering it, and tell the nodes
    /// listening (unnumbered: its count is the new owner's).
    Disown { room: String },
    /// A session connected to this node: deliver its frames.
    Attach {
        session: Arc<str>,
        handle: SessionHandle,
    },
    /// A session of this node ended.
    Detach { session: Arc<str> },
    /// Session `session` is being handed over to this node from a live
    /// one: listen to `keys` (its rooms and games) for it and hold its
    /// frames until it attaches.
    Arrive {
        session: Arc<str>,
        keys: Vec<String>,
    },
    /// Where the old node was in each channel (key, epoch, next seq):
    /// held frames from before are not delivered.
    Arrived {
        session: Arc<str>,
        cutoffs: Vec<(String, u64, u64)>,
    },
    /// The hand-over fell through: stop holding its frames.
    Depart { session: Arc<str> },
    /// Session `session` of this node is handed over to another: deliver
    /// nothing more to it here, and answer where each channel it was
    /// delivered from stands.
    MoveOut {
        session: Arc<str>,
        done: oneshot::Sender<Vec<(String, u64, u64)>>,
    },
    /// A session of this node is in (or joining) a room another node owns.
    Listen { room: String, session: Arc<str> },
    /// It left.
    Unlisten { room: String, session: Arc<str> },
    /// Game `game` (a key, `game:ID`), which this node runs, ended
    /// (`closed`: and stopped): tell the nodes listening, and with
    /// `closed`, give it up.
    GameEnded { game: String, closed: bool },
    /// The node is stopping, its sessions closed: stop beating, leave the
    /// live nodes and let its sessions' records resume elsewhere at once;
    /// answer when done.
    Leave { done: oneshot::Sender<()> },
    /// Unsubscribe from a room nobody here listens to any more, if that is
    /// still so.
    Linger { room: String },
    /// What a gap repair found: the logged messages from the gap, or
    /// `None` when the log could not be read.
    Repaired {
        room: String,
        epoch: u64,
        found: Option<Vec<RoomMsg>>,
    },
}

/// What an [`Command::Out`] carries.
enum OutItem {
    Frame {
        text: ByteString,
        answer: bool,
    },
    Resynced(Resynced),
    Linked {
        serial: u64,
        kind: RoomKind,
        role: Role,
    },
    Refused {
        serial: u64,
    },
    GameLinked {
        kind: GameKind,
    },
    /// An item for every node listening.
    Item(Item),
}

/// What the writer does, in order.
enum Write {
    Publish {
        channel: String,
        payload: Vec<u8>,
        /// The room log and entry id to keep it under, if numbered.
        log: Option<(String, String)>,
    },
    Subscribe(String),
    Unsubscribe(String),
    /// Any other command whose answer does not matter.
    Command(redis::Cmd),
    /// Told once every write before it has been answered (or has failed).
    Flushed(oneshot::Sender<()>),
}

/// What taking a session found.
#[derive(Debug)]
pub enum Taken {
    /// No such session, or another secret.
    None,
    /// Its node is alive: that node must end it first (or hand it over).
    Live(String, SessionData),
    /// It is this node's now.
    Taken(SessionData),
}

/// What the node knows of Redis and the others, as of its last heartbeat.
#[derive(Default)]
pub struct Status {
    /// Whether the last heartbeat reached Redis.
    pub redis_up: AtomicBool,
    /// Live nodes, this one included.
    pub nodes: AtomicUsize,
    /// The live nodes' ids.
    live: Mutex<Arc<HashSet<String>>>,
    /// Every live node's rooms, by name.
    directory: Mutex<Arc<Vec<RoomListing>>>,
    /// When Redis last answered again after it could not be reached: for
    /// one node timeout after, the others' heartbeats may be stale, so no
    /// node is taken for dead.
    back_at: Mutex<Option<std::time::Instant>>,
    /// Whether a heartbeat has reached Redis yet.
    joined: AtomicBool,
}

impl Status {
    /// The live nodes' ids at the last heartbeat.
    pub fn live(&self) -> Arc<HashSet<String>> {
        self.live
            .lock()
            .map(|live| live.clone())
            .unwrap_or_default()
    }

    /// Every live node's rooms at the last heartbeat, by name.
    pub fn directory(&self) -> Arc<Vec<RoomListing>> {
        self.directory
            .lock()
            .map(|directory| directory.clone())
            .unwrap_or_default()
    }
}

/// This node's handle on the Redis backplane; cheap to share.
pub struct RedisNode {
    /// This node's id.
    id: Arc<str>,
    /// The node loop.
    commands: mpsc::UnboundedSender<Command>,
    /// Redis reachable, live nodes.
    status: Arc<Status>,
    /// The node's connection to Redis, for claims.
    manager: ConnectionManager,
    /// `cluster.request_timeout_ms`.
    request_timeout: Duration,
    /// `cluster.node_timeout_ms`.
    node_timeout: Duration,
    /// The arbiter it all runs on.
    arbiter: ArbiterHandle,
    /// Counters.
    metrics: Arc<Metrics>,
}

/// Where the Lobby hears from other nodes.
pub struct LobbyInbox {
    /// Requests forwarded to this node.
    pub forwarded: Recipient<Forwarded>,
    /// Answers to the joins this node forwarded.
    pub answered: Recipient<JoinAnswered>,
    /// Nodes that died, and Redis coming back.
    pub changed: Recipient<NodesChanged>,
    /// Games other nodes run that ended.
    pub ended: Recipient<GameEnded>,
}

impl RedisNode {
    /// Joins the cluster at `cluster.redis_url` as `id`: starts the node's
    /// thread, its loop and writer, and its heartbeat. Redis need not be
    /// up yet: the node connects (and reconnects) on its own.
    pub fn start(
        config: &Config,
        id: String,
        metrics: Arc<Metrics>,
        lobby: LobbyInbox,
    ) -> Result<Arc<RedisNode>, String> {
        let cluster = &config.cluster;
        let request_timeout = Duration::from_millis(cluster.request_timeout_ms.get());
        let node_timeout = Duration::from_millis(cluster.node_timeout_ms.get());
        let heartbeat = Duration::from_millis(cluster.heartbeat_ms.get());
        let mut info = cluster
            .redis_url
            .as_str()
            .into_connection_info()
            .map_err(|err| format!("cluster.redis_url: {err}"))?;
        let settings = info.redis_settings().clone();
        info = info.set_redis_settings(settings.set_protocol(ProtocolVersion::RESP3));
        let client =
            redis::Client::open(info).map_err(|err| format!("cluster.redis_url: {err}"))?;
        let (push_in, pushes) = mpsc::channel(PUSH_QUEUE);
        let drops = metrics.clone();
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(request_timeout))
            .set_connection_timeout(Some(request_timeout))
            .set_max_delay(heartbeat)
            .set_automatic_resubscription()
            .set_push_sender(move |push| {
                push_in.try_send(push).map_err(|_| {
                    drops.cluster_push_dropped.inc();
                })
            });
        let (commands, inbox) = mpsc::unbounded_channel();
        let loop_commands = commands.clone();
        let (writes, written) = mpsc::unbounded_channel();
        let status = Arc::new(Status::default());
        let arbiter = Arbiter::new().handle();
        let (made, manager) = std::sync::mpsc::channel();
        let id: Arc<str> = id.into();
        let loop_id = id.clone();
        let grace = Duration::from_millis(config.games.reconnect_grace_ms.get());
        let loop_status = status.clone();
        let loop_metrics = metrics.clone();
        let games: Arc<dyn RemoteGames> = Arc::new(Router {
            commands: commands.clone(),
        });
        let node_loop = move |manager| NodeLoop {
            id: loop_id,
            games,
            lobby,
            metrics: loop_metrics,
            writes,
            commands: loop_commands,
            request_timeout,
            node_timeout,
            grace,
            status: loop_status,
            sessions: HashMap::new(),
            listeners: HashMap::new(),
            tracks: HashMap::new(),
            owned: HashMap::new(),
            served: HashMap::new(),
            routes: HashMap::new(),
            arriving: HashMap::new(),
            out: Vec::new(),
            manager,
            leaving: false,
        };
        let writer_metrics = metrics.clone();
        arbiter.spawn(async move {
            // The manager must be made on the runtime that drives it.
            let manager = match ConnectionManager::new_lazy_with_config(client, manager_config) {
                Ok(manager) => manager,
                Err(err) => {
                    let _ = made.send(Err(err.to_string()));
                    return;
                }
            };
            let _ = made.send(Ok(manager.clone()));
            tokio::spawn(writer(manager.clone(), written, writer_metrics));
            let mut node_loop = node_loop(manager);
            node_loop.write(Write::Subscribe(node_channel(&node_loop.id)));
            node_loop.run(inbox, pushes, heartbeat).await;
        });
        let manager = manager
            .recv()
            .map_err(|_| "the cluster thread did not start".to_string())?
            .map_err(|err| format!("cluster.redis_url: {err}"))?;
        let node = Arc::new(RedisNode {
            id: id.clone(),
            commands,
            status,
            manager,
            request_timeout,
            node_timeout,
            arbiter,
            metrics,
        });
        Ok(node)
    }

    /// The node's connection to Redis.
    pub fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The thread the node runs on.
    pub fn arbiter(&self) -> &ArbiterHandle {
        &self.arbiter
    }

    /// `cluster.request_timeout_ms`.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Redis reachable, live nodes.
    pub fn status(&self) -> &Status {
        &self.status
    }

    fn send(&self, command: Command) {
        // The loop runs as long as the process.
        let _ = self.commands.send(command);
    }

    /// Claims `room` for this node unless a live node owns it; `kind` is
    /// the kind of a room that does not exist yet.
    pub fn claim_room(
        &self,
        room: &str,
        kind: RoomKind,
    ) -> impl Future<Output = Result<Claim, Unavailable>> + 'static {
        let claimed = self.script::<(String, u64, String)>(
            include_str!("scripts/claim_room.lua"),
            vec![owner_key(room), NODES_KEY.to_string()],
            vec![
                self.id.to_string(),
                self.node_timeout.as_millis().to_string(),
                kind.as_str().to_string(),
            ],
        );
        async move {
            let (owner, epoch, kind) = claimed.await?;
            let kind =
                serde_json::from_value(serde_json::Value::String(kind)).map_err(|_| Unavailable)?;
            Ok(Claim { owner, epoch, kind })
        }
    }

    /// Runs a Lua script on the node's thread, within
    /// `cluster.request_timeout_ms`.
    fn script<T: redis::FromRedisValue + Send + 'static>(
        &self,
        source: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> impl Future<Output = Result<T, Unavailable>> + 'static {
        let mut manager = self.manager.clone();
        let timeout = self.request_timeout;
        let arbiter = self.arbiter.clone();
        async move {
            let (done, answer) = oneshot::channel();
            arbiter.spawn(async move {
                let script = Script::new(source);
                let mut invocation = script.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                for arg in &args {
                    invocation.arg(arg);
                }
                let ran =
                    tokio::time::timeout(timeout, invocation.invoke_async::<T>(&mut manager)).await;
                let _ = done.send(ran);
            });
            match answer.await {
                Ok(Ok(Ok(answer))) => Ok(answer),
                Ok(Ok(Err(err))) => {
                    log::warn!("cluster: a script failed: {err}");
                    Err(Unavailable)
                }
                _ => Err(Unavailable),
            }
        }
    }

    /// Runs a command on the node's thread, within
    /// `cluster.request_timeout_ms`.
    fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        command: redis::Cmd,
    ) -> impl Future<Output = Result<T, Unavailable>> + 'static {
        let mut manager = self.manager.clone();
        let timeout = self.request_timeout;
        let arbiter = self.arbiter.clone();
        async move {
            let (done, answer) = oneshot::channel();
            arbiter.spawn(async move {
                let ran = tokio::time::timeout(timeout, command.query_async::<T>(&mut manager));
                let _ = done.send(ran.await);
            });
            match answer.await {
                Ok(Ok(Ok(answer))) => Ok(answer),
                _ => Err(Unavailable),
            }
        }
    }

    /// Quick match: pairs `session` with the longest-waiting session of a
    /// live node in `kind`'s queue, which leaves it (`Some((session,
    /// node))`), or puts it in the queue (`None`); atomically, so nobody
    /// is paired twice.
    pub fn find_match(
        &self,
        kind: GameKind,
        session: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>, Unavailable>> + 'static {
        let found = self.script::<Vec<String>>(
            include_str!("scripts/find_match.lua"),
            vec![
                queue_key(kind),
                queue_nodes_key(kind),
                NODES_KEY.to_string(),
            ],
            vec![
                session.to_string(),
                self.id.to_string(),
                self.node_timeout.as_millis().to_string(),
            ],
        );
        async move {
            Ok(match found.await?.as_slice() {
                [waiting, node] => Some((waiting.clone(), node.clone())),
                _ => None,
            })
        }
    }

    /// Takes `session` out of `kind`'s queue.
    pub fn leave_queue(&self, kind: GameKind, session: &str) {
        let mut queue = redis::cmd("ZREM");
        queue.arg(queue_key(kind)).arg(session);
        self.send(Command::Write(Write::Command(queue)));
        let mut nodes = redis::cmd("HDEL");
        nodes.arg(queue_nodes_key(kind)).arg(session);
        self.send(Command::Write(Write::Command(nodes)));
    }

    /// Claims game `id` for this node unless a live node runs it:
    /// answers its owner and epoch.
    pub fn claim_game(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(String, u64), Unavailable>> + 'static {
        let claimed = self.script::<(String, u64, Option<String>)>(
            include_str!("scripts/claim_room.lua"),
            vec![owner_key(&super::game_key(id)), NODES_KEY.to_string()],
            vec![
                self.id.to_string(),
                self.node_timeout.as_millis().to_string(),
                String::new(),
            ],
        );
        async move {
            let (owner, epoch, _) = claimed.await?;
            Ok((owner, epoch))
        }
    }

    /// Game `id` as its owner kept it in play, with its accepted moves in
    /// order; `None` once it has ended (or was never kept).
    pub fn load_game(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(LiveGame, Vec<StoredMove>)>, Unavailable>> + 'static
    {
        let mut live = redis::cmd("GET");
        live.arg(live_game_key(id));
        let live = self.query::<Option<String>>(live);
        let mut moves = redis::cmd("HGETALL");
        moves.arg(moves_key(id));
        let moves = self.query::<HashMap<u64, String>>(moves);
        async move {
            let Some(live) = live.await? else {
                return Ok(None);
            };
            let Ok(live) = serde_json::from_str::<LiveGame>(&live) else {
                return Ok(None);
            };
            let moves: BTreeMap<u64, String> = moves.await?.into_iter().collect();
            let moves = moves
                .values()
                .map(|stored| serde_json::from_str::<StoredMove>(stored).map_err(|_| Unavailable))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((live, moves)))
        }
    }

    /// The newest finished games of every node, newest first (each a
    /// `GameRecord`, as JSON).
    pub fn history(
        &self,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, Unavailable>> + 'static {
        let mut command = redis::cmd("LRANGE");
        command.arg(HISTORY_KEY).arg(0).arg(-1);
        let records = self.query::<Vec<String>>(command);
        async move {
            Ok(records
                .await?
                .iter()
                .filter_map(|record| serde_json::from_str(record).ok())
                .collect())
        }
    }

    /// The live node that runs game `id`, if any.
    pub fn game_owner(
        self: &Arc<Self>,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, Unavailable>> + 'static {
        let mut command = redis::cmd("HGET");
        command.arg(owner_key(&super::game_key(id))).arg("owner");
        let owner = self.query::<Option<String>>(command);
        let node = self.clone();
        async move {
            let owner = owner.await?;
            Ok(owner.filter(|owner| node.status.live().contains(owner)))
        }
    }

    /// Lists game `id` in the cluster's directory of games (`/api/games`).
    pub fn list_game(&self, id: &str, listing: serde_json::Value) {
        let listed = ListedGame {
            owner: self.id.to_string(),
            listing,
        };
        self.set_field(GAMES_KEY, id, &listed);
    }

    /// Takes game `id` out of the directory.
    pub fn unlist_game(&self, id: &str) {
        self.delete_field(GAMES_KEY, id);
    }

    /// Sets `field` of hash `key` to `value` as JSON, in order with this
    /// node's other writes.
    fn set_field(&self, key: &str, field: &str, value: &impl Serialize) {
        let Ok(value) = serde_json::to_string(value) else {
            return;
        };
        let mut command = redis::cmd("HSET");
        command.arg(key).arg(field).arg(value);
        self.send(Command::Write(Write::Command(command)));
    }

    /// Deletes `field` of hash `key`, in order with this node's other writes.
    fn delete_field(&self, key: &str, field: &str) {
        let mut command = redis::cmd("HDEL");
        command.arg(key).arg(field);
        self.send(Command::Write(Write::Command(command)));
    }

    /// The listed games of every live node, as `/api/games` shows them.
    pub fn list_games(
        self: &Arc<Self>,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, Unavailable>> + 'static {
        let mut command = redis::cmd("HGETALL");
        command.arg(GAMES_KEY);
        let listed = self.query::<HashMap<String, String>>(command);
        let node = self.clone();
        async move {
            let live = node.status.live();
            let mut games: Vec<serde_json::Value> = listed
                .await?
                .into_values()
                .filter_map(|listed| serde_json::from_str::<ListedGame>(&listed).ok())
                .filter(|listed| live.contains(&listed.owner))
                .map(|listed| listed.listing)
                .collect();
            let order = |game: &serde_json::Value| {
                (
                    game["started_at"].as_str().unwrap_or_default().to_string(),
                    game["game_id"].as_str().unwrap_or_default().to_string(),
                )
            };
            games.sort_by_key(order);
            Ok(games)
        }
    }

    /// This node owns `room` under `epoch`.
    pub fn owned(&self, room: &str, epoch: u64) {
        self.send(Command::Owned {
            room: room.to_string(),
            epoch,
        });
    }

    /// This node runs game `id` (new, so no other node can have claimed
    /// it): its frames for players elsewhere are numbered from now.
    pub fn own_game(&self, id: &str, kind: GameKind) {
        let key = super::game_key(id);
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |now| now.as_millis() as u64);
        let mut claim = redis::cmd("HSET");
        claim
            .arg(owner_key(&key))
            .arg("owner")
            .arg(self.id.to_string())
            .arg("epoch")
            .arg(epoch)
            .arg("kind")
            .arg(kind.as_str());
        self.send(Command::Write(Write::Command(claim)));
        self.send(Command::Owned { room: key, epoch });
    }

    /// Resolves once every write asked for before has reached Redis (so
    /// other nodes see it), or failed, or after the request timeout.
    pub fn written(&self) -> impl Future<Output = ()> + Send + 'static {
        let (done, written) = oneshot::channel();
        self.send(Command::Write(Write::Flushed(done)));
        let timeout = self.request_timeout;
        async move {
            let _ = tokio::time::timeout(timeout, written).await;
        }
    }

    /// Game `id`, which this node runs, has ended (`closed`: and
    /// stopped): the nodes of its players and spectators are told.
    pub fn game_ended(&self, id: &str, closed: bool) {
        self.send(Command::GameEnded {
            game: super::game_key(id),
            closed,
        });
    }

    /// Room `room`, which this node owns, is reached through `link`.
    pub fn serve(&self, room: &str, link: RoomLink) {
        self.send(Command::Serve {
            room: room.to_string(),
            link,
        });
    }

    /// This node is stopping: gives `room` up, and has the nodes with
    /// members in it claim it at once.
    pub fn hand_over(&self, room: &str) {
        self.send(Command::HandOver {
            room: room.to_string(),
        });
    }

    /// Tells the nodes listening to `room` that this node no longer runs
    /// it (without touching its claim, which is another node's): they
    /// look for its owner again.
    pub fn release_to_claim(&self, room: &str) {
        self.send(Command::Disown {
            room: room.to_string(),
        });
    }

    /// This node closed `room`: others may claim it.
    pub fn release_room(&self, room: &str) {
        self.send(Command::Release {
            room: room.to_string(),
        });
    }

    /// Keeps session `id`'s record (this node, its secret's hash, its
    /// data), for a resume on any node, unless another node has taken the
    /// session since.
    pub fn keep_session(&self, id: &str, hash: &str, data: &SessionData) {
        let Ok(data) = serde_json::to_string(data) else {
            return;
        };
        let mut keep = redis::cmd("EVAL");
        keep.arg(include_str!("scripts/keep_session.lua"))
            .arg(2)
            .arg(session_key(id))
            .arg(node_sessions_key(&self.id))
            .arg(self.id.to_string())
            .arg(hash)
            .arg(data)
            .arg(id);
        self.send(Command::Write(Write::Command(keep)));
    }

    /// Session `id` has ended here: it leaves this node's index, and with
    /// `record`, its record goes too (not when it moved to another node).
    pub fn forget_session(&self, id: &str, record: bool) {
        if record {
            let mut command = redis::cmd("DEL");
            command.arg(session_key(id));
            self.send(Command::Write(Write::Command(command)));
        }
        let mut index = redis::cmd("SREM");
        index.arg(node_sessions_key(&self.id)).arg(id);
        self.send(Command::Write(Write::Command(index)));
    }

    /// Takes session `id` for this node, if `given` is the hash of its
    /// secret: atomically, so that one node at most wins it. Its node, if
    /// alive (and not `ended_by`, which just ended it for this one), must
    /// end it first. `new` is the hash of its new secret; `grace` how long
    /// a dead node's sessions may be resumed.
    pub fn take_session(
        &self,
        id: &str,
        given: &str,
        new: &str,
        ended_by: &str,
        grace: Duration,
    ) -> impl Future<Output = Result<Taken, Unavailable>> + 'static {
        let taken = self.script::<Vec<String>>(
            include_str!("scripts/take_session.lua"),
            vec![session_key(id), NODES_KEY.to_string()],
            vec![
                given.to_string(),
                self.id.to_string(),
                new.to_string(),
                self.node_timeout.as_millis().to_string(),
                grace.as_millis().to_string(),
                ended_by.to_string(),
            ],
        );
        async move {
            Ok(match taken.await?.as_slice() {
                [state, node, data] if state == "live" => match serde_json::from_str(data) {
                    Ok(data) => Taken::Live(node.clone(), data),
                    Err(_) => Taken::None,
                },
                [state, data] if state == "taken" => match serde_json::from_str(data) {
                    Ok(data) => Taken::Taken(data),
                    Err(_) => Taken::None,
                },
                _ => Taken::None,
            })
        }
    }

    /// Lists `room` in the cluster's directory with `members` members.
    pub fn list_room(&self, room: &str, kind: RoomKind, members: usize) {
        let listed = Listed {
            kind,
            members,
            owner: self.id.to_string(),
        };
        self.set_field(ROOMS_KEY, room, &listed);
    }

    /// Takes `room` out of the directory.
    pub fn unlist_room(&self, room: &str) {
        self.delete_field(ROOMS_KEY, room);
    }

    /// Where frames for `room`'s members on other nodes go.
    pub fn outlet(self: &Arc<Self>, room: &str) -> Arc<dyn RemoteOutlet> {
        Arc::new(RoomOutlet {
            room: room.into(),
            commands: self.commands.clone(),
        })
    }

    /// A session on another node, as a room this node owns reaches it.
    pub fn remote_session(self: &Arc<Self>, room: &str, session: &str) -> SessionHandle {
        SessionHandle::remote(session.into(), self.outlet(room), self.metrics.clone())
    }

    /// How this node's sessions reach rooms other nodes own: through
    /// whichever node owns each now (see [`RedisNode::route`]).
    pub fn remote_rooms(self: &Arc<Self>) -> Arc<dyn RemoteRooms> {
        Arc::new(Router {
            commands: self.commands.clone(),
        })
    }

    /// Room `room` is owned by node `owner` (another node), from now on.
    pub fn route(&self, room: &str, owner: &str) {
        self.send(Command::Route {
            room: room.to_string(),
            owner: owner.to_string(),
        });
    }

    /// Forwards `msg` to node `node`.
    pub fn forward(&self, node: &str, msg: NodeMsg) {
        self.send(Command::Forward {
            node: node.to_string(),
            msg,
        });
    }

    /// Tells `session` on node of the outlet that its join went through.
    pub fn answer_join(
        &self,
        room: &str,
        session: &str,
        serial: u64,
        outcome: Option<(RoomKind, Role)>,
    ) {
        let item = match outcome {
            Some((kind, role)) => OutItem::Linked { serial, kind, role },
            None => OutItem::Refused { serial },
        };
        self.send(Command::Out {
            room: room.into(),
            to: session.into(),
            item,
        });
    }

    /// The node is stopping and its sessions are closed: it leaves the
    /// live nodes, its sessions free to resume anywhere at once.
    pub fn leave(&self) -> impl Future<Output = ()> + 'static {
        let (done, left) = oneshot::channel();
        self.send(Command::Leave { done });
        let timeout = self.request_timeout;
        async move {
            let _ = tokio::time::timeout(timeout, left).await;
        }
    }

    /// Session `id` is being handed over to this node from a live one:
    /// its frames on `keys` (its rooms' and games' channels) are held for
    /// it from now until it attaches.
    pub fn arrive(&self, id: &str, keys: Vec<String>) {
        self.send(Command::Arrive {
            session: id.into(),
            keys,
        });
    }

    /// Where its old node stood in each channel: what was held from before
    /// is dropped when it attaches.
    pub fn arrived(&self, id: &str, cutoffs: Vec<(String, u64, u64)>) {
        self.send(Command::Arrived {
            session: id.into(),
            cutoffs,
        });
    }

    /// The hand-over of session `id` fell through.
    pub fn depart(&self, id: &str) {
        self.send(Command::Depart { session: id.into() });
    }

    /// Session `id` of this node is handed over to another: nothing more
    /// is delivered to it here. Answers where each channel it was
    /// delivered from stands (key, epoch, next seq).
    pub fn move_out(&self, id: &str) -> impl Future<Output = Vec<(String, u64, u64)>> + 'static {
        let (done, cutoffs) = oneshot::channel();
        self.send(Command::MoveOut {
            session: id.into(),
            done,
        });
        async move { cutoffs.await.unwrap_or_default() }
    }

    /// How this node's sessions reach games other nodes own.
    pub fn remote_games(&self) -> Arc<dyn RemoteGames> {
        Arc::new(Router {
            commands: self.commands.clone(),
        })
    }

    /// A session connected to this node.
    pub fn attach(&self, session: &str, handle: SessionHandle) {
        self.send(Command::Attach {
            session: session.into(),
            handle,
        });
    }

    /// A session of this node ended.
    pub fn detach(&self, session: &str) {
        self.send(Command::Detach {
            session: session.into(),
        });
    }

    /// A session of this node is in, or joining, `room` owned elsewhere:
    /// its frames must reach this node.
    pub fn listen(&self, room: &str, session: &str) {
        self.send(Command::Listen {
            room: room.to_string(),
            session: session.into(),
        });
    }

    /// It is no longer.
    pub fn unlisten(&self, room: &str, session: &str) {
        self.send(Command::Unlisten {
            room: room.to_string(),
            session: session.into(),
        });
    }
}

/// Frames for a room's members on other nodes.
struct RoomOutlet {
    room: Arc<str>,
    /// The node loop.
    commands: mpsc::UnboundedSender<Command>,
}

impl RoomOutlet {
    fn send(&self, command: Command) {
        // The loop runs as long as the process.
        let _ = self.commands.send(command);
    }
}

impl RemoteOutlet for RoomOutlet {
    fn frame(&self, session: &Arc<str>, frame: ByteString, answer: bool) {
        self.send(Command::Out {
            room: self.room.clone(),
            to: session.clone(),
            item: OutItem::Frame {
                text: frame,
                answer,
            },
        });
    }

    fn resynced(&self, session: &Arc<str>, resynced: Resynced) {
        self.send(Command::Out {
            room: self.room.clone(),
            to: session.clone(),
            item: OutItem::Resynced(resynced),
        });
    }

    fn linked(&self, session: &Arc<str>, game: &GameLink) {
        self.send(Command::Out {
            room: self.room.clone(),
            to: session.clone(),
            item: OutItem::GameLinked { kind: game.kind },
        });
    }
}

/// The rooms and games other nodes own, as this node's sessions reach
/// them: the request goes to the owner as the node loop knows it when it
/// forwards, so a room that changes owner keeps its members' links.
struct Router {
    commands: mpsc::UnboundedSender<Command>,
}

impl Router {
    fn send(&self, command: Command) {
        // The loop runs as long as the process.
        let _ = self.commands.send(command);
    }
}

impl RemoteGames for Router {
    fn request(&self, game: &str, msg: PlayerRequest) {
        self.send(Command::ForwardRoom {
            room: super::game_key(game),
            msg: NodeMsg::Game {
                game: game.to_string(),
                session: msg.session,
                action: msg.action,
                id: msg.id,
            },
        });
    }

    fn presence(&self, game: &str, msg: Presence) {
        self.send(Command::ForwardRoom {
            room: super::game_key(game),
            msg: NodeMsg::Presence {
                game: game.to_string(),
                session: msg.session,
                change: msg.change,
            },
        });
    }
}

impl RemoteRooms for Router {
    fn request(&self, room: &str, msg: RoomRequest) {
        self.send(Command::ForwardRoom {
            room: room.to_string(),
            msg: NodeMsg::Room {
                room: room.to_string(),
                session: msg.session,
                action: msg.action,
                id: msg.id,
            },
        });
    }
}

/// A session being handed over to this node, until it attaches.
#[derive(Default)]
struct Arriving {
    /// The channels listened to for it.
    keys: Vec<String>,
    /// Its frames so far: the channel, the message's epoch and number.
    held: Vec<(String, u64, u64, Held)>,
    /// Where its old node stood in each channel: (epoch, next seq).
    cutoffs: HashMap<String, (u64, u64)>,
}

/// A frame held for an arriving session.
enum Held {
    Frame {
        text: ByteString,
        answer: bool,
    },
    Resynced {
        part: ResyncPart,
        frames: Vec<ByteString>,
    },
}

impl Arriving {
    /// Hands the session what came after its old node's cutoffs, in order.
    fn hand_to(self, handle: &SessionHandle) {
        for (key, epoch, seq, held) in self.held {
            let before = self.cutoffs.get(&key).is_some_and(|&(cut_epoch, next)| {
                epoch < cut_epoch || (epoch == cut_epoch && seq < next)
            });
            if before && epoch != 0 {
                continue;
            }
            match held {
                Held::Frame { text, answer: true } => handle.answer(text),
                Held::Frame { text, .. } => handle.send(text),
                Held::Resynced { part, frames } => handle.resynced(part, frames),
            }
        }
    }
}

/// Where this node is in one room channel's numbering.
struct Track {
    /// The room's owner.
    owner: String,
    /// The owner's claim the numbers belong to.
    epoch: u64,
    /// The next number expected.
    next: u64,
    /// Messages past a gap, waiting for it to be repaired.
    pending: BTreeMap<u64, RoomMsg>,
    /// Whether a repair is under way.
    repairing: bool,
}

/// The numbering of a room this node owns.
struct Sequence {
    epoch: u64,
    /// The last number given.
    last: u64,
}

/// Frames gathered for one room channel during one turn of the loop.
struct Batch {
    room: Arc<str>,
    items: Vec<Pending>,
}

/// An item of a [`Batch`]; consecutive copies of one frame for several
/// sessions become one item with several recipients.
enum Pending {
    Frame {
        to: Vec<String>,
        text: ByteString,
        answer: bool,
    },
    Other(Item),
}

/// The node loop's state.
struct NodeLoop {
    id: Arc<str>,
    /// How this node's sessions reach games elsewhere.
    games: Arc<dyn RemoteGames>,
    lobby: LobbyInbox,
    metrics: Arc<Metrics>,
    writes: mpsc::UnboundedSender<Write>,
    /// The loop's own queue, for results of its tasks.
    commands: mpsc::UnboundedSender<Command>,
    request_timeout: Duration,
    /// `cluster.node_timeout_ms`.
    node_timeout: Duration,
    /// `games.reconnect_grace_ms`: how long a dead node's sessions may
    /// resume elsewhere.
    grace: Duration,
    /// Redis reachable, live nodes (as of the last heartbeat).
    status: Arc<Status>,
    /// This node's sessions that may get frames from other nodes.
    sessions: HashMap<Arc<str>, SessionHandle>,
    /// Rooms owned elsewhere, and which of this node's sessions are in
    /// them.
    listeners: HashMap<String, HashSet<Arc<str>>>,
    /// Numbering of the room channels listened to.
    tracks: HashMap<String, Track>,
    /// Numbering of the rooms this node owns.
    owned: HashMap<String, Sequence>,
    /// The rooms this node owns, for their members' messages from other
    /// nodes (which need not pass through the Lobby).
    served: HashMap<String, RoomLink>,
    /// The owners of the rooms this node's sessions are in elsewhere.
    routes: HashMap<String, String>,
    /// Sessions being handed over to this node, with their frames so far.
    arriving: HashMap<Arc<str>, Arriving>,
    /// Frames gathered this turn, by room, in order.
    out: Vec<Batch>,
    /// The node's connection to Redis.
    manager: ConnectionManager,
    /// Set once the node has left the cluster (it is stopping).
    leaving: bool,
}

impl NodeLoop {
    async fn run(
        &mut self,
        mut inbox: mpsc::UnboundedReceiver<Command>,
        mut pushes: mpsc::Receiver<redis::PushInfo>,
        heartbeat: Duration,
    ) {
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => {
                    let Some(command) = command else { return };
                    self.command(command);
                    while let Ok(command) = inbox.try_recv() {
                        self.command(command);
                    }
                    self.flush_out();
                }
                Some(push) = pushes.recv() => {
                    // Whatever else has come goes out in the same turn: the
                    // sessions' threads wake once for all of it.
                    self.push(push);
                    while let Ok(push) = pushes.try_recv() {
                        self.push(push);
                    }
                }
                _ = beat.tick() => self.beat(),
            }
        }
    }

    fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Says this node is alive, and counts the live ones.
    fn beat(&self) {
        if self.leaving {
            return;
        }
        let mut manager = self.manager();
        let id = self.id.to_string();
        let timeout = self.request_timeout;
        let status = self.status.clone();
        let ttl = self.node_timeout.as_millis() as u64;
        let node_timeout = self.node_timeout;
        let grace = self.grace;
        let changed = self.lobby.changed.clone();
        tokio::spawn(async move {
            let script = Script::new(include_str!("scripts/heartbeat.lua"));
            let beat = async {
                let answer: Vec<String> = script
                    .key(NODES_KEY)
                    .arg(id)
                    .arg(ttl)
                    .invoke_async(&mut manager)
                    .await?;
                let stale = answer.first().is_some_and(|state| state == "stale");
                let count: usize = answer.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                let nodes = answer.get(2..).unwrap_or_default();
                let live = nodes[..count.min(nodes.len())].to_vec();
                let dead = nodes[count.min(nodes.len())..].to_vec();
                let rooms: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(ROOMS_KEY)
                    .query_async(&mut manager)
                    .await?;
                Ok::<_, redis::RedisError>((stale, live, dead, rooms))
            };
            match tokio::time::timeout(timeout, beat).await {
                Ok(Ok((stale, live, dead, rooms))) => {
                    // Nodes taken for dead are reaped (by whichever node
                    // gets there first), whether or not this node saw them.
                    for dead in &dead {
                        reap(manager.clone(), dead, timeout, ttl, grace);
                    }
                    let nodes = live.len();
                    let reached = !status.redis_up.swap(true, Ordering::Relaxed);
                    if reached {
                        log::info!("cluster: Redis reached; {nodes} nodes live");
                    }
                    // Taken for dead meanwhile (paused, or Redis lost its
                    // data): what this node owns may be another's now.
                    let was_joined = status.joined.swap(true, Ordering::Relaxed);
                    let fenced = stale && was_joined;
                    if fenced {
                        log::warn!(
                            "cluster: this node was taken for dead; claiming its rooms again"
                        );
                    }
                    let back = (reached && was_joined) || fenced;
                    let now = std::time::Instant::now();
                    let settling = match status.back_at.lock() {
                        Ok(mut back_at) => {
                            if back {
                                *back_at = Some(now);
                            }
                            back_at.is_some_and(|at| now.duration_since(at) < node_timeout)
                        }
                        Err(_) => false,
                    };
                    let before = status.live();
                    let lost: Vec<String> = before
                        .iter()
                        .filter(|node| !settling && !live.contains(node))
                        .cloned()
                        .collect();
                    if !lost.is_empty() || back {
                        if !lost.is_empty() {
                            log::warn!("cluster: nodes lost: {}", lost.join(", "));
                        }
                        changed.do_send(NodesChanged {
                            lost,
                            back,
                            released: Vec::new(),
                            fenced,
                        });
                    }
                    status.nodes.store(nodes, Ordering::Relaxed);
                    let mut live: HashSet<String> = live.into_iter().collect();
                    let mut directory: Vec<RoomListing> = rooms
                        .into_iter()
                        .filter_map(|(room, listed)| {
                            let listed: Listed = serde_json::from_str(&listed).ok()?;
                            live.contains(&listed.owner).then_some(RoomListing {
                                room,
                                kind: listed.kind,
                                members: listed.members,
                            })
                        })
                        .collect();
                    directory.sort_by(|a, b| a.room.cmp(&b.room));
                    if let Ok(mut shared) = status.directory.lock() {
                        *shared = Arc::new(directory);
                    }
                    if settling {
                        // Still taken for live: judged once settled.
                        live.extend(before.iter().cloned());
                    }
                    if let Ok(mut shared) = status.live.lock() {
                        *shared = Arc::new(live);
                    }
                }
                Ok(Err(err)) => {
                    if status.redis_up.swap(false, Ordering::Relaxed) {
                        log::warn!("cluster: Redis is down: {err}");
                    }
                }
                Err(_) => {
                    if status.redis_up.swap(false, Ordering::Relaxed) {
                        log::warn!("cluster: Redis is down: no answer in time");
                    }
                }
            }
        });
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Out { room, to, item } => self.gather(room, to, item),
            Command::Forward { node, msg } => self.forward(&node, &msg),
            Command::Write(write) => self.write(write),
            Command::ForwardRoom { room, msg } => self.forward_room(&room, msg),
            Command::Route { room, owner } => {
                self.routes.insert(room, owner);
            }
            Command::Owned { room, epoch } => self.own(room, epoch),
            Command::Serve { room, link } => {
                self.served.insert(room, link);
            }
            Command::Release { room } => {
                self.release(&room);
                self.owned.remove(&room);
                self.served.remove(&room);
            }
            Command::HandOver { room } => {
                // Frames first, then the release, then the word: a node
                // that hears it finds the room free to claim.
                self.release(&room);
                self.served.remove(&room);
                let numbered = self.owned.remove(&room);
                let (epoch, seq) = numbered.map_or((0, 0), |owned| (owned.epoch, owned.last + 1));
                self.announce_released(&room, epoch, seq);
            }
            Command::Disown { room } => {
                // The room's count is the new owner's: the word goes
                // unnumbered.
                self.flush_out();
                self.owned.remove(&room);
                self.served.remove(&room);
                self.announce_released(&room, 0, 0);
            }
            Command::Attach { session, handle } => {
                if let Some(arriving) = self.arriving.remove(&session) {
                    arriving.hand_to(&handle);
                }
                self.sessions.insert(session, handle);
            }
            Command::Arrive { session, keys } => {
                for key in &keys {
                    self.listen(key.clone(), session.clone());
                }
                let arriving = Arriving {
                    keys,
                    ..Arriving::default()
                };
                self.arriving.insert(session, arriving);
            }
            Command::Arrived { session, cutoffs } => {
                if let Some(arriving) = self.arriving.get_mut(&session) {
                    arriving.cutoffs = cutoffs
                        .into_iter()
                        .map(|(key, epoch, next)| (key, (epoch, next)))
                        .collect();
                }
            }
            Command::Depart { session } => {
                if let Some(arriving) = self.arriving.remove(&session) {
                    for key in arriving.keys {
                        self.unlisten(key, &session);
                    }
                }
            }
            Command::MoveOut { session, done } => {
                self.sessions.remove(&session);
                let keys: Vec<String> = self
                    .listeners
                    .iter()
                    .filter(|(_, listeners)| listeners.contains(&session))
                    .map(|(key, _)| key.clone())
                    .collect();
                let mut cutoffs = Vec::new();
                for key in keys {
                    if let Some(track) = self.tracks.get(&key) {
                        cutoffs.push((key.clone(), track.epoch, track.next));
                    }
                    self.unlisten(key, &session);
                }
                let _ = done.send(cutoffs);
            }
            Command::Detach { session } => {
                self.sessions.remove(&session);
            }
            Command::Listen { room, session } => self.listen(room, session),
            Command::Unlisten { room, session } => self.unlisten(room, &session),
            Command::Linger { room } => self.linger(&room),
            Command::Repaired { room, epoch, found } => self.repaired(&room, epoch, found),
            Command::Leave { done } => {
                self.leaving = true;
                let manager = self.manager();
                let (id, grace) = (self.id.to_string(), self.grace);
                let timeout = self.request_timeout;
                tokio::spawn(async move {
                    leave(manager, &id, timeout, grace).await;
                    let _ = done.send(());
                });
            }
            Command::GameEnded { game, closed } => {
                let ended = Item::Ended { closed };
                self.gather(game.as_str().into(), "".into(), OutItem::Item(ended));
                if closed {
                    self.release(&game);
                    self.owned.remove(&game);
                }
            }
        }
    }

    /// Publishes a request on node `node`'s channel.
    fn forward(&self, node: &str, msg: &NodeMsg) {
        match wire::encode(msg) {
            Ok(payload) => self.write(Write::Publish {
                channel: node_channel(node),
                payload,
                log: None,
            }),
            Err(err) => log::error!("cluster: cannot encode a forwarded request: {err}"),
        }
    }

    /// Forwards a member's request to whichever node owns `room` now, or
    /// answers it when it cannot go.
    fn forward_room(&self, room: &str, msg: NodeMsg) {
        let up = self.status.redis_up.load(Ordering::Relaxed);
        match self.routes.get(room) {
            Some(owner) if up => self.forward(owner, &msg),
            // Redis is down: the room's node cannot be reached.
            Some(_) => self.refuse_forward(msg, || {
                let message = format!("room {room}'s node cannot be reached; try again");
                (ErrorCode::Unavailable, message)
            }),
            // Not a room of this node's sessions (any more).
            None => self.refuse_forward(msg, || match room.strip_prefix(GAME_KEY) {
                Some(game) => (
                    ErrorCode::NotFound,
                    format!("no game {game} that you play or watch"),
                ),
                None => (ErrorCode::NotInRoom, format!("you are not in room {room}")),
            }),
        }
    }

    /// This node owns `room` under `epoch`; a claim made again under the
    /// same epoch numbers on.
    fn own(&mut self, room: String, epoch: u64) {
        let sequence = self
            .owned
            .entry(room)
            .or_insert(Sequence { epoch, last: 0 });
        if sequence.epoch != epoch {
            *sequence = Sequence { epoch, last: 0 };
        }
    }

    /// Gives `room` up in Redis, if this node still owns it, after the
    /// frames already gathered for it.
    fn release(&mut self, room: &str) {
        self.flush_out();
        let mut release = redis::cmd("EVAL");
        release
            .arg(include_str!("scripts/release_room.lua"))
            .arg(2)
            .arg(owner_key(room))
            .arg(log_key(room))
            .arg(self.id.to_string())
            .arg(EPOCH_KEPT.as_millis() as u64);
        self.write(Write::Command(release));
    }

    /// Tells the nodes listening to `room` that this node runs it no more.
    fn announce_released(&self, room: &str, epoch: u64, seq: u64) {
        let msg = RoomMsg {
            owner: self.id.to_string(),
            epoch,
            seq,
            items: vec![Item::Released],
        };
        if let Ok(payload) = wire::encode(&msg) {
            self.write(Write::Publish {
                channel: room_channel(room),
                payload,
                log: None,
            });
        }
    }

    /// Session `session` of this node is in `room`, owned elsewhere: the
    /// node subscribes to the room's channel with its first listener.
    fn listen(&mut self, room: String, session: Arc<str>) {
        let listeners = self.listeners.entry(room.clone()).or_default();
        let first = listeners.is_empty();
        listeners.insert(session);
        if first {
            self.write(Write::Subscribe(room_channel(&room)));
        }
    }

    /// It left. Answers to the last member's leave are still on their way:
    /// the node unsubscribes a little later, if still nobody listens.
    fn unlisten(&mut self, room: String, session: &str) {
        let Some(listeners) = self.listeners.get_mut(&room) else {
            return;
        };
        listeners.remove(session);
        if listeners.is_empty() {
            let commands = self.commands.clone();
            let linger = self.request_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(linger).await;
                let _ = commands.send(Command::Linger { room });
            });
        }
    }

    /// Unsubscribes from `room` if nobody here listens to it any more.
    fn linger(&mut self, room: &str) {
        if self.listeners.get(room).is_some_and(HashSet::is_empty) {
            self.listeners.remove(room);
            self.tracks.remove(room);
            self.routes.remove(room);
            self.write(Write::Unsubscribe(room_channel(room)));
        }
    }

    /// Answers a member's room request that cannot be forwarded.
    fn refuse_forward(&self, msg: NodeMsg, why: impl FnOnce() -> (ErrorCode, String)) {
        let (session, kind, id) = match msg {
            NodeMsg::Room {
                session,
                action,
                id,
                ..
            } => (session, action.kind(), id),
            NodeMsg::Game {
                session,
                action,
                id,
                ..
            } => (session, action.kind(), id),
            _ => return,
        };
        if let Some(handle) = self.sessions.get(session.as_str()) {
            let (code, message) = why();
            let refusal = Refusal::new(code, kind, message);
            handle.refuse(&refusal.with_id(id.as_ref()));
        }
    }

    /// Hands a write to the writer. While Redis is known to be down,
    /// publishes and commands are dropped (and counted) rather than piled
    /// up without bound: the nodes listening see a gap and resync when it
    /// is back, and this node writes its rooms and sessions again then.
    fn write(&self, write: Write) {
        let down = self.status.joined.load(Ordering::Relaxed)
            && !self.status.redis_up.load(Ordering::Relaxed);
        if down && matches!(write, Write::Publish { .. } | Write::Command(_)) {
            self.metrics.cluster_publish_failed.inc();
            return;
        }
        // The writer runs as long as the loop.
        let _ = self.writes.send(write);
    }

    /// Adds a frame for a remote session to this turn's batch of its room.
    fn gather(&mut self, room: Arc<str>, to: Arc<str>, item: OutItem) {
        let index = match self.out.iter().position(|batch| batch.room == room) {
            Some(index) => index,
            None => {
                self.out.push(Batch {
                    room,
                    items: Vec::new(),
                });
                self.out.len() - 1
            }
        };
        let items = &mut self.out[index].items;
        match item {
            OutItem::Frame { text, answer } => {
                if let Some(Pending::Frame {
                    to: recipients,
                    text: last,
                    answer: last_answer,
                }) = items.last_mut()
                {
                    let same = last.as_bytes().as_ptr() == text.as_bytes().as_ptr()
                        && last.len() == text.len();
                    if same && *last_answer == answer {
                        recipients.push(to.to_string());
                        return;
                    }
                }
                items.push(Pending::Frame {
                    to: vec![to.to_string()],
                    text,
                    answer,
                });
            }
            OutItem::Resynced(resynced) => items.push(Pending::Other(Item::Resynced {
                to: to.to_string(),
                part: resynced.part,
                frames: resynced.frames.into_iter().map(String::from).collect(),
            })),
            OutItem::Linked { serial, kind, role } => items.push(Pending::Other(Item::Linked {
                to: to.to_string(),
                serial,
                kind,
                role,
            })),
            OutItem::Refused { serial } => items.push(Pending::Other(Item::Refused {
                to: to.to_string(),
                serial,
            })),
            OutItem::GameLinked { kind } => items.push(Pending::Other(Item::GameLinked {
                to: to.to_string(),
                kind,
            })),
            OutItem::Item(item) => items.push(Pending::Other(item)),
        }
    }

    /// Publishes this turn's batches, one numbered message per room.
    fn flush_out(&mut self) {
        for batch in std::mem::take(&mut self.out) {
            let room: &str = &batch.room;
            let (epoch, seq) = match self.owned.get_mut(room) {
                Some(sequence) => {
                    sequence.last += 1;
                    (sequence.epoch, sequence.last)
                }
                None => (0, 0),
            };
            let items = batch
                .items
                .into_iter()
                .map(|pending| match pending {
                    Pending::Frame { to, text, answer } => Item::Frame {
                        to,
                        text: String::from(text),
                        answer,
                    },
                    Pending::Other(item) => item,
                })
                .collect();
            let msg = RoomMsg {
                owner: self.id.to_string(),
                epoch,
                seq,
                items,
            };
            let payload = match wire::encode(&msg) {
                Ok(payload) => payload,
                Err(err) => {
                    log::error!("cluster: cannot encode frames for room {room}: {err}");
                    continue;
                }
            };
            let log = (epoch > 0).then(|| (log_key(room), format!("{epoch}-{seq}")));
            self.metrics.cluster_published.inc();
            self.write(Write::Publish {
                channel: room_channel(room),
                payload,
                log,
            });
        }
    }

    /// A push from Redis: a message on a channel this node listens to.
    fn push(&mut self, push: redis::PushInfo) {
        log::trace!(
            "cluster: {} push {:?} {:?}",
            self.id,
            push.kind,
            push.data.first()
        );
        if push.kind != PushKind::Message {
            return;
        }
        let mut data = push.data.into_iter();
        let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
            return;
        };
        let (Ok(channel), Ok(payload)) = (
            redis::from_redis_value::<String>(channel),
            redis::from_redis_value::<Vec<u8>>(payload),
        ) else {
            return;
        };
        if let Some(room) = channel_room(&channel) {
            match wire::decode::<RoomMsg>(&payload) {
                Ok(msg) => self.room_msg(room.to_string(), msg),
                Err(err) => log::warn!("cluster: a bad message on {channel}: {err}"),
            }
        } else {
            match wire::decode::<NodeMsg>(&payload) {
                Ok(msg) => self.forwarded(msg),
                Err(err) => log::warn!("cluster: a bad message on {channel}: {err}"),
            }
        }
    }

    /// A request forwarded to this node: a member's message to a room this
    /// node runs goes straight to the room; the rest to the Lobby.
    fn forwarded(&self, msg: NodeMsg) {
        let NodeMsg::Room {
            room,
            session,
            action,
            id,
        } = msg
        else {
            return self.lobby.forwarded.do_send(Forwarded(msg));
        };
        let Some(link) = self.served.get(&room) else {
            let msg = NodeMsg::Room {
                room,
                session,
                action,
                id,
            };
            return self.lobby.forwarded.do_send(Forwarded(msg));
        };
        let outlet = Arc::new(RoomOutlet {
            room: room.as_str().into(),
            commands: self.commands.clone(),
        });
        let reply = SessionHandle::remote(session.as_str().into(), outlet, self.metrics.clone());
        link.request(RoomRequest {
            session,
            reply,
            action,
            id,
        });
    }

    /// A numbered message on a room channel: delivered in order; a gap is
    /// repaired first.
    fn room_msg(&mut self, room: String, msg: RoomMsg) {
        log::trace!(
            "cluster: {} room {room} message {}-{}",
            self.id,
            msg.epoch,
            msg.seq
        );
        if msg.epoch == 0 {
            return self.deliver(&room, msg);
        }
        if !self.listeners.contains_key(&room) {
            return;
        }
        let track = self.tracks.entry(room.clone()).or_insert(Track {
            owner: msg.owner.clone(),
            epoch: msg.epoch,
            next: msg.seq,
            pending: BTreeMap::new(),
            repairing: false,
        });
        if msg.epoch != track.epoch {
            // A new owner, or the room opened again: its count starts anew.
            if msg.epoch < track.epoch {
                return;
            }
            // The same owner claimed it again: Redis lost its data, and
            // with it, maybe, frames published meanwhile. (A new owner
            // resyncs the members itself.)
            let reclaimed = msg.owner == track.owner;
            *track = Track {
                owner: msg.owner.clone(),
                epoch: msg.epoch,
                next: msg.seq,
                pending: BTreeMap::new(),
                repairing: false,
            };
            if reclaimed {
                self.metrics.cluster_resyncs.inc();
                self.resend(&room, &msg.owner);
                return self.room_msg(room, msg);
            }
        }
        if msg.seq < track.next {
            return;
        }
        let (gap_from, gap_to) = (track.next, msg.seq);
        track.pending.insert(msg.seq, msg);
        if gap_to > gap_from && !track.repairing {
            log::debug!("cluster: room {room} lost messages {gap_from}..{gap_to}; repairing");
            track.repairing = true;
            let epoch = track.epoch;
            self.repair(room.clone(), epoch, gap_from, gap_to - 1);
        }
        self.drain(&room);
    }

    /// Has `owner` send this node's members of `room` `room_joined` and
    /// `room_state` again: frames were lost.
    fn resend(&self, room: &str, owner: &str) {
        let sessions: Vec<String> = self
            .listeners
            .get(room)
            .map(|listeners| listeners.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        if sessions.is_empty() {
            return;
        }
        let msg = NodeMsg::Resend {
            room: room.to_string(),
            sessions,
        };
        if let Ok(payload) = wire::encode(&msg) {
            self.write(Write::Publish {
                channel: node_channel(owner),
                payload,
                log: None,
            });
        }
    }

    /// Delivers a room's pending messages that are next in order.
    fn drain(&mut self, room: &str) {
        loop {
            let Some(track) = self.tracks.get_mut(room) else {
                return;
            };
            let next = track.next;
            let Some(msg) = track.pending.remove(&next) else {
                return;
            };
            track.next += 1;
            self.deliver(room, msg);
        }
    }

    /// Reads the messages `from..=to` of `room`'s log.
    fn repair(&self, room: String, epoch: u64, from: u64, to: u64) {
        let mut manager = self.manager();
        let commands = self.commands.clone();
        let timeout = self.request_timeout;
        tokio::spawn(async move {
            let read = tokio::time::timeout(
                timeout,
                redis::cmd("XRANGE")
                    .arg(log_key(&room))
                    .arg(format!("{epoch}-{from}"))
                    .arg(format!("{epoch}-{to}"))
                    .query_async::<Vec<(String, Vec<Vec<u8>>)>>(&mut manager),
            )
            .await;
            let found = match read {
                Ok(Ok(entries)) => Some(
                    entries
                        .into_iter()
                        .filter_map(|(_, fields)| {
                            let payload = fields.get(1)?;
                            wire::decode::<RoomMsg>(payload).ok()
                        })
                        .collect(),
                ),
                _ => None,
            };
            let _ = commands.send(Command::Repaired { room, epoch, found });
        });
    }

    /// A gap's repair came back: deliver what it found; if it could not
    /// close the gap, resync this node's members of the room.
    fn repaired(&mut self, room: &str, epoch: u64, found: Option<Vec<RoomMsg>>) {
        let Some(track) = self.tracks.get_mut(room) else {
            return;
        };
        if track.epoch != epoch {
            return;
        }
        track.repairing = false;
        let from = track.next;
        log::debug!(
            "cluster: room {room} repair from {from} found {:?}",
            found
                .as_ref()
                .map(|found| found.iter().map(|msg| msg.seq).collect::<Vec<_>>())
        );
        for msg in found.into_iter().flatten() {
            if msg.epoch == epoch && msg.seq >= from {
                track.pending.entry(msg.seq).or_insert(msg);
            }
        }
        let first = track.pending.keys().next().copied();
        if first == Some(from) {
            self.metrics.cluster_gap_repairs.inc();
        } else if let Some(first) = first {
            // The log no longer holds the gap (or could not be read): skip
            // it, and have the owner send this node's members the room again.
            track.next = first;
            self.metrics.cluster_resyncs.inc();
            let owner = track.owner.clone();
            self.resend(room, &owner);
        }
        self.drain(room);
        // A later gap may have opened while this one was being repaired.
        if let Some(track) = self.tracks.get_mut(room) {
            if let Some(&last) = track.pending.keys().next_back() {
                if !track.repairing && last > track.next {
                    track.repairing = true;
                    let (next, epoch) = (track.next, track.epoch);
                    let upto = track
                        .pending
                        .keys()
                        .next()
                        .copied()
                        .unwrap_or(last)
                        .saturating_sub(1);
                    self.repair(room.to_string(), epoch, next, upto);
                }
            }
        }
    }

    /// Hands a message's items to this node's sessions (every node that
    /// listens to the room gets them all, and takes its own).
    fn deliver(&mut self, room: &str, msg: RoomMsg) {
        let (epoch, seq) = (msg.epoch, msg.seq);
        for item in msg.items {
            match item {
                Item::Linked { ref to, .. } | Item::Refused { ref to, .. }
                    if !self.sessions.contains_key(to.as_str()) => {}
                Item::Frame { to, text, answer } => {
                    let text = ByteString::from(text);
                    for session in to {
                        if let Some(handle) = self.sessions.get(session.as_str()) {
                            if answer {
                                handle.answer(text.clone());
                            } else {
                                handle.send(text.clone());
                            }
                        } else if let Some(arriving) = self.arriving.get_mut(session.as_str()) {
                            let held = Held::Frame {
                                text: text.clone(),
                                answer,
                            };
                            arriving.held.push((room.to_string(), epoch, seq, held));
                        }
                    }
                }
                Item::Resynced { to, part, frames } => {
                    let frames = frames.into_iter().map(ByteString::from).collect();
                    if let Some(handle) = self.sessions.get(to.as_str()) {
                        handle.resynced(part, frames);
                    } else if let Some(arriving) = self.arriving.get_mut(to.as_str()) {
                        let held = Held::Resynced { part, frames };
                        arriving.held.push((room.to_string(), epoch, seq, held));
                    }
                }
                Item::Linked {
                    to,
                    serial,
                    kind,
                    role,
                } => self.lobby.answered.do_send(JoinAnswered {
                    room: room.to_string(),
                    owner: msg.owner.clone(),
                    session: to,
                    serial,
                    outcome: Some((kind, role)),
                }),
                // Its own word does not concern the node that gave the room up.
                Item::Released if msg.owner == *self.id => {}
                Item::Released => self.lobby.changed.do_send(NodesChanged {
                    lost: Vec::new(),
                    back: false,
                    released: vec![room.to_string()],
                    fenced: false,
                }),
                Item::Refused { to, serial } => self.lobby.answered.do_send(JoinAnswered {
                    room: room.to_string(),
                    owner: msg.owner.clone(),
                    session: to,
                    serial,
                    outcome: None,
                }),
                Item::GameLinked { to, kind } => {
                    let (Some(handle), Some(game)) =
                        (self.sessions.get(to.as_str()), room.strip_prefix(GAME_KEY))
                    else {
                        continue;
                    };
                    self.routes.insert(room.to_string(), msg.owner.clone());
                    handle.link_game(GameLink::remote(game.to_string(), kind, self.games.clone()));
                }
                Item::Ended { closed } => {
                    let Some(game) = room.strip_prefix(GAME_KEY) else {
                        continue;
                    };
                    self.lobby.ended.do_send(GameEnded {
                        game: game.to_string(),
                        closed,
                    });
                    if closed {
                        // Nothing more comes from it.
                        self.listeners.insert(room.to_string(), HashSet::new());
                        self.linger(room);
                    }
                }
            }
        }
    }
}

/// This node leaves the cluster as it stops: out of the live nodes, its
/// sessions' records free to resume anywhere for `grace` (`reap.lua`, run
/// on itself).
async fn leave(mut manager: ConnectionManager, id: &str, timeout: Duration, grace: Duration) {
    let script = Script::new(include_str!("scripts/reap.lua"));
    let left = async {
        redis::cmd("ZREM")
            .arg(NODES_KEY)
            .arg(id)
            .query_async::<()>(&mut manager)
            .await?;
        script
            .key(NODES_KEY)
            .key(node_sessions_key(id))
            .arg(id)
            .arg(0)
            .arg(grace.as_millis() as u64)
            .invoke_async::<i64>(&mut manager)
            .await
    };
    match tokio::time::timeout(timeout, left).await {
        Ok(Ok(sessions)) => log::info!("cluster: left; {sessions} sessions may resume elsewhere"),
        _ => log::warn!("cluster: could not leave; the others will take this node for dead"),
    }
}

/// Reaps node `dead`, taken for dead: its sessions may resume anywhere
/// for `grace`, and are forgotten after (`reap.lua`).
fn reap(
    mut manager: ConnectionManager,
    dead: &str,
    timeout: Duration,
    node_timeout: u64,
    grace: Duration,
) {
    let dead = dead.to_string();
    tokio::spawn(async move {
        let script = Script::new(include_str!("scripts/reap.lua"));
        let reaped = tokio::time::timeout(
            timeout,
            script
                .key(NODES_KEY)
                .key(node_sessions_key(&dead))
                .arg(&dead)
                .arg(node_timeout)
                .arg(grace.as_millis() as u64)
                .invoke_async::<i64>(&mut manager),
        )
        .await;
        match reaped {
            Ok(Ok(sessions)) if sessions >= 0 => {
                log::info!("cluster: reaped node {dead}: {sessions} sessions may resume elsewhere")
            }
            Ok(Ok(_)) => {}
            _ => log::warn!("cluster: node {dead} could not be reaped"),
        }
    });
}

/// Publishes, subscribes and unsubscribes in the order asked, pipelining
/// what has piled up.
async fn writer(
    mut manager: ConnectionManager,
    mut writes: mpsc::UnboundedReceiver<Write>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut pipe = redis::pipe();
    while writes.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut queued = 0;
        for write in batch.drain(..) {
            match write {
                Write::Publish {
                    channel,
                    payload,
                    log,
                } => {
                    if let Some((key, id)) = log {
                        pipe.cmd("XADD")
                            .arg(key)
                            .arg("MAXLEN")
                            .arg("~")
                            .arg(ROOM_LOG_FRAMES)
                            .arg(id)
                            .arg("m")
                            .arg(&payload)
                            .ignore();
                    }
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                    queued += 1;
                }
                Write::Command(command) => {
                    pipe.add_command(command).ignore();
                    queued += 1;
                }
                Write::Subscribe(channel) => {
                    send(&mut pipe, &mut queued, &mut manager, &metrics).await;
                    if let Err(err) = manager.subscribe(&channel).await {
                        log::warn!("cluster: cannot subscribe to {channel}: {err}");
                    }
                }
                Write::Unsubscribe(channel) => {
                    send(&mut pipe, &mut queued, &mut manager, &metrics).await;
                    if let Err(err) = manager.unsubscribe(&channel).await {
                        log::warn!("cluster: cannot unsubscribe from {channel}: {err}");
                    }
                }
                Write::Flushed(done) => {
                    send(&mut pipe, &mut queued, &mut manager, &metrics).await;
                    let _ = done.send(());
                }
            }
        }
        send(&mut pipe, &mut queued, &mut manager, &metrics).await;
    }
}

/// Sends the pipelined publishes, if any.
async fn send(
    pipe: &mut redis::Pipeline,
    queued: &mut usize,
    manager: &mut ConnectionManager,
    metrics: &Metrics,
) {
    if *queued == 0 {
        return;
    }
    if let Err(err) = pipe.query_async::<()>(manager).await {
        metrics.cluster_publish_failed.inc_by(*queued as u64);
        log::warn!("cluster: {} publishes failed: {err}", *queued);
    }
    pipe.clear();
    *queued = 0;
}
