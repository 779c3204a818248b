//! Room snapshots in Redis, for a node of a cluster (ARCHITECTURE.md, *Many
//! nodes on Redis*): whichever node owns a room next reads the snapshot its
//! last owner wrote, so a room carries on from it when its node dies.
//!
//! A small actor on the cluster's thread: it writes each snapshot before
//! taking the next message, so writes for one room land in order (a read
//! waits behind the writes queued before it), and gives each read or write
//! `cluster.request_timeout_ms` (an error then: a failed read leaves the
//! room with what it has and tries again; a failed write is logged and
//! counted, not tried again). Games go to the store it is given (SQLite)
//! meanwhile.

use std::time::Duration;

use actix::prelude::*;
use redis::aio::ConnectionManager;
use serde_json::Value;

use crate::{
    links::{LoadSnapshot, SaveGame, SaveLiveGame, SaveMove, SaveSession, SaveSnapshot, StoreLink},
    metrics::Metrics,
};

/// The key of a room's snapshot.
fn snapshot_key(room: &str) -> String {
    format!("parlor:{{room:{room}}}:snapshot")
}

/// Room snapshots in Redis; the rest in `games`.
pub struct RedisSnapshots {
    /// The node's connection to Redis.
    manager: ConnectionManager,
    /// Where games go.
    games: StoreLink,
    /// `cluster.request_timeout_ms`.
    timeout: Duration,
    /// Store errors.
    metrics: std::sync::Arc<Metrics>,
}

impl RedisSnapshots {
    /// Snapshots through `manager`, games to `games`.
    pub fn new(
        manager: ConnectionManager,
        games: StoreLink,
        timeout: Duration,
        metrics: std::sync::Arc<Metrics>,
    ) -> RedisSnapshots {
        RedisSnapshots {
            manager,
            games,
            timeout,
            metrics,
        }
    }
}

impl Actor for RedisSnapshots {
    type Context = Context<Self>;
}

impl Handler<SaveSnapshot> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveSnapshot, ctx: &mut Context<Self>) {
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        let metrics = self.metrics.clone();
        let data = msg.data.to_string();
        // The next message waits for this write: one room's writes land in order.
        ctx.wait(
            async move {
                let mut set = redis::cmd("SET");
                set.arg(snapshot_key(&msg.room)).arg(data);
                let set = set.query_async::<()>(&mut manager);
                match tokio::time::timeout(timeout, set).await {
                    Ok(Ok(())) => metrics.store_written("snapshot"),
                    Ok(Err(err)) => {
                        metrics.store_failed();
                        log::warn!("store: snapshot of room {} not written: {err}", msg.room);
                    }
                    Err(_) => {
                        metrics.store_failed();
                        log::warn!("store: snapshot of room {} not written in time", msg.room);
                    }
                }
            }
            .into_actor(self),
        );
    }
}

/// Answers once every snapshot given before it is written (or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Synced;

impl Handler<Synced> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, _: Synced, _: &mut Context<Self>) {}
}

impl Handler<LoadSnapshot> for RedisSnapshots {
    type Result = ResponseFuture<Result<Option<Value>, String>>;

    fn handle(&mut self, msg: LoadSnapshot, _: &mut Context<Self>) -> Self::Result {
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let mut get = redis::cmd("GET");
            get.arg(snapshot_key(&msg.room));
            let get = get.query_async::<Option<String>>(&mut manager);
            match tokio::time::timeout(timeout, get).await {
                Ok(Ok(Some(text))) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|err| format!("snapshot of room {}: {err}", msg.room)),
                Ok(Ok(None)) => Ok(None),
                Ok(Err(err)) => Err(format!("snapshot of room {}: {err}", msg.room)),
                Err(_) => Err(format!("snapshot of room {}: no answer in time", msg.room)),
            }
        })
    }
}

impl Handler<SaveGame> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveGame, _: &mut Context<Self>) {
        self.games.save_game(msg);
    }
}

impl Handler<SaveLiveGame> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveLiveGame, _: &mut Context<Self>) {
        self.games.save_live_game(msg);
    }
}

impl Handler<SaveMove> for RedisSnapshots {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: SaveMove, _: &mut Context<Self>) -> Self::Result {
        let written = self.games.save_move(msg);
        Box::pin(async move {
            written
                .await
                .unwrap_or_else(|err| Err(format!("the store is unreachable: {err}")))
        })
    }
}

impl Handler<SaveSession> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveSession, _: &mut Context<Self>) {
        self.games.save_session(msg);
    }
}
