//! Room snapshots in Redis, for a node of a cluster (ARCHITECTURE.md, *Many
//! nodes on Redis*): whichever node owns a room next reads the snapshot its
//! last owner wrote, so a room carries on from it when its node dies.
//!
//! A small actor on the cluster's thread: it writes each snapshot before
//! taking the next message, so writes for one room land in order (a read
//! waits behind the writes queued before it), and gives each read or write
//! `cluster.request_timeout_ms` (an error then: a failed read leaves the
//! room with what it has and tries again; a failed write is logged and
//! counted, not tried again).
//!
//! Games too: a game in play as it starts, each accepted move (answered
//! once written, so a game announces only moves its next owner will
//! find), and, once it ends, its record at the head of the cluster's
//! history (the newest `cluster.history_max`). A node that takes a dead
//! node's game over plays its moves again from its seed. Seated sessions
//! go to the store it is given (SQLite): the cluster keeps sessions'
//! records itself.

use std::time::Duration;

use actix::prelude::*;
use redis::aio::ConnectionManager;
use serde_json::Value;

use crate::{
    cluster::redis::{live_game_key, moves_key, HISTORY_KEY},
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
    /// `cluster.history_max`.
    history_max: usize,
    /// Store errors.
    metrics: std::sync::Arc<Metrics>,
}

impl RedisSnapshots {
    /// Snapshots through `manager`, games to `games`.
    pub fn new(
        manager: ConnectionManager,
        games: StoreLink,
        timeout: Duration,
        history_max: usize,
        metrics: std::sync::Arc<Metrics>,
    ) -> RedisSnapshots {
        RedisSnapshots {
            manager,
            games,
            timeout,
            history_max,
            metrics,
        }
    }

    /// Runs `pipe` within the timeout; `what` names it in the log.
    fn write(&self, pipe: redis::Pipeline, what: String, ctx: &mut Context<Self>) {
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        let metrics = self.metrics.clone();
        ctx.wait(
            async move {
                match tokio::time::timeout(timeout, pipe.query_async::<()>(&mut manager)).await {
                    Ok(Ok(())) => metrics.store_written("game"),
                    Ok(Err(err)) => {
                        metrics.store_failed();
                        log::warn!("store: {what} not written: {err}");
                    }
                    Err(_) => {
                        metrics.store_failed();
                        log::warn!("store: {what} not written in time");
                    }
                }
            }
            .into_actor(self),
        );
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

    fn handle(&mut self, msg: SaveGame, ctx: &mut Context<Self>) {
        let record = msg.0;
        let id = record.entry.game_id.clone();
        let Ok(text) = serde_json::to_string(&record) else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("LPUSH")
            .arg(HISTORY_KEY)
            .arg(text)
            .ignore()
            .cmd("LTRIM")
            .arg(HISTORY_KEY)
            .arg(0)
            .arg(self.history_max.saturating_sub(1))
            .ignore()
            .cmd("DEL")
            .arg(live_game_key(&id))
            .arg(moves_key(&id))
            .ignore();
        self.write(pipe, format!("the record of game {id}"), ctx);
    }
}

impl Handler<SaveLiveGame> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveLiveGame, ctx: &mut Context<Self>) {
        let id = msg.0.game_id.clone();
        let Ok(text) = serde_json::to_string(&msg.0) else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(live_game_key(&id)).arg(text).ignore();
        self.write(pipe, format!("game {id}"), ctx);
    }
}

impl Handler<SaveMove> for RedisSnapshots {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, msg: SaveMove, _: &mut Context<Self>) -> Self::Result {
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let name = format!("move {} of game {}", msg.number, msg.game_id);
            let text =
                serde_json::to_string(&msg.stored).map_err(|err| format!("{name}: {err}"))?;
            // By number: moves written out of order still read back in order.
            let mut set = redis::cmd("HSET");
            set.arg(moves_key(&msg.game_id)).arg(msg.number).arg(text);
            let set = set.query_async::<()>(&mut manager);
            match tokio::time::timeout(timeout, set).await {
                Ok(Ok(())) => {
                    metrics.store_written("move");
                    Ok(())
                }
                Ok(Err(err)) => {
                    metrics.store_failed();
                    Err(format!("{name} not written: {err}"))
                }
                Err(_) => {
                    metrics.store_failed();
                    Err(format!("{name} not written in time"))
                }
            }
        })
    }
}

impl Handler<SaveSession> for RedisSnapshots {
    type Result = ();

    fn handle(&mut self, msg: SaveSession, _: &mut Context<Self>) {
        self.games.save_session(msg);
    }
}
