//! The Backplane seam: how this node reaches the others (ARCHITECTURE.md,
//! *Many nodes on Redis*).
//!
//! - [`Backplane::Local`] is one process alone, the default: every room and
//!   game is here, and nothing goes anywhere else. The Lobby's paths for it
//!   are today's paths; the backplane is not even asked.
//! - [`Backplane::Redis`] joins the nodes given the same `cluster.redis_url`
//!   ([`redis::RedisNode`]): each room has one owner node, claimed
//!   atomically; the other nodes forward their members' requests to it and
//!   deliver its frames, published once per room channel, to their own
//!   members.
//!
//! The Lobby drives it: it claims and releases rooms, forwards requests,
//! and says which of its sessions listen to which rooms. What other nodes
//! send comes back to the Lobby as [`Forwarded`] and [`JoinAnswered`], and
//! to sessions straight through their [`SessionHandle`](crate::links::SessionHandle)s.

pub mod redis;
pub mod wire;

use std::sync::{atomic::Ordering, Arc};

use actix::prelude::*;
use serde::Serialize;

use self::redis::{LobbyInbox, RedisNode};
use crate::{
    config::{self, Config},
    metrics::Metrics,
    protocol::{Role, RoomKind},
};

/// How this node reaches the others.
#[derive(Clone)]
pub enum Backplane {
    /// One process alone.
    Local,
    /// A node of a cluster on Redis.
    Redis(Arc<RedisNode>),
}

/// Who owns a room, as a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The owner node (this one, if the claim took).
    pub owner: String,
    /// The owner's claim: its frames are numbered within it.
    pub epoch: u64,
    /// The room's kind.
    pub kind: RoomKind,
}

/// Redis or the other node did not answer within
/// `cluster.request_timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The prefix of a game's key among the channels a node listens to (room
/// names hold no ':').
pub const GAME_KEY: &str = "game:";

/// The key of game `id` among the channels a node listens to; a room's is
/// its name.
pub fn game_key(id: &str) -> String {
    format!("{GAME_KEY}{id}")
}

/// A game another node runs has ended (`closed`: and stopped); its
/// players and spectators here forget it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GameEnded {
    pub game: String,
    pub closed: bool,
}

/// A request another node forwarded to this one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forwarded(pub wire::NodeMsg);

/// A room's owner answered a join this node forwarded.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinAnswered {
    pub room: String,
    /// The node that answered (the room's owner).
    pub owner: String,
    /// Who joined.
    pub session: String,
    /// The join's serial.
    pub serial: u64,
    /// The room's kind and the member's role, or `None` when refused (the
    /// error frame has reached the session already).
    pub outcome: Option<(RoomKind, Role)>,
}

/// Nodes stopped heartbeating (`lost`: taken for dead), Redis answers
/// again after it could not be reached (`back`: it may have lost
/// everything, so what this node owns is claimed again), or owners that
/// are stopping gave rooms up (`released`).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct NodesChanged {
    pub lost: Vec<String>,
    pub back: bool,
    /// Rooms their owner gave up as it stopped.
    pub released: Vec<String>,
    /// This node itself was taken for dead (and reaped, maybe): the other
    /// nodes' rooms dropped its members.
    pub fenced: bool,
}

/// The cluster part of `/healthz`.
#[derive(Debug, Serialize)]
pub struct ClusterHealth {
    /// Live nodes, this one included.
    pub nodes: usize,
    /// `"ok"` or `"down"`.
    pub redis: &'static str,
}

impl Backplane {
    /// The backplane `config` asks for: `Local` without
    /// `cluster.redis_url`, else this node joined to the others (named
    /// `cluster.node_id`, or a random name).
    pub fn from_config(
        config: &Config,
        metrics: Arc<Metrics>,
        lobby: LobbyInbox,
    ) -> Result<Backplane, String> {
        if !config.clustered() {
            return Ok(Backplane::Local);
        }
        let id = match config.cluster.node_id.as_str() {
            "" => format!("node-{:08x}", rand::random::<u32>()),
            id => id.to_string(),
        };
        log::info!(
            "cluster: node {id} on {}",
            config::redacted_url(&config.cluster.redis_url)
        );
        RedisNode::start(config, id, metrics, lobby).map(Backplane::Redis)
    }

    /// Whether this process is alone (no cluster).
    pub fn is_local(&self) -> bool {
        matches!(self, Backplane::Local)
    }

    /// The Redis node, if this is one.
    pub fn node(&self) -> Option<&Arc<RedisNode>> {
        match self {
            Backplane::Local => None,
            Backplane::Redis(node) => Some(node),
        }
    }

    /// This node's id and the cluster's health, with a cluster.
    pub fn health(&self) -> Option<(String, ClusterHealth)> {
        let node = self.node()?;
        let status = node.status();
        let up = status.redis_up.load(Ordering::Relaxed);
        Some((
            node.id().to_string(),
            ClusterHealth {
                nodes: status.nodes.load(Ordering::Relaxed),
                redis: if up { "ok" } else { "down" },
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::redacted_url;

    #[test]
    fn a_password_in_the_url_is_not_logged() {
        assert_eq!(
            redacted_url("redis://:secret@host:6379"),
            "redis://…@host:6379"
        );
        assert_eq!(
            redacted_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redacted_url("redis+unix:///run/redis.sock?pass=secret"),
            "redis+unix:///run/redis.sock"
        );
    }
}
