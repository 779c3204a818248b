//! The Store actor: SQLite through rusqlite, on a thread of its own (a
//! `SyncArbiter` with one thread), so no async worker ever waits on disk.
//!
//! It keeps room snapshots, finished games, and games in play with their
//! moves and seated sessions, so that a restart loses none ([`load_live`]
//! reads them back at start). Takes [`SaveSnapshot`], [`SaveGame`],
//! [`SaveLiveGame`] and [`SaveSession`] (fire and forget), [`SaveMove`]
//! (answered once written), [`LoadSnapshot`], [`ListHistory`] and
//! [`GetGame`] (answered), [`Retry`] (from a timer) and [`Drain`] (answered,
//! after one more try, with what is still unwritten). A write that fails is
//! logged, counted in `/metrics` and kept, newest per room, to be tried again
//! at the next [`Retry`]; the server goes on serving meanwhile.

pub mod redis;

use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use actix::prelude::*;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::{
    links::{
        LiveGame, LivePlayer, LiveSession, LoadSnapshot, SaveGame, SaveLiveGame, SaveMove,
        SaveSession, SaveSnapshot, StoredMove,
    },
    metrics::Metrics,
    protocol::{self, GameKind, GameRecord, HistoryEntry, RoomKind},
};

pub use crate::config::IN_MEMORY;

/// How long a write waits for another connection's lock before it fails
/// (and is tried again later).
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Schema migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE snapshots (
        room       TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        data       TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE games (
        game_id    TEXT PRIMARY KEY,
        game       TEXT NOT NULL,
        seed       INTEGER NOT NULL,
        players    TEXT NOT NULL,
        moves      TEXT NOT NULL,
        result     TEXT NOT NULL,
        winner     TEXT,
        started_at TEXT NOT NULL,
        ended_at   TEXT NOT NULL
    );
    CREATE INDEX games_by_end ON games (ended_at DESC);
        CREATE INDEX games_by_kind ON games (game, ended_at DESC);
",
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
",
    "
    CREATE TABLE live_games (
        game_id    TEXT PRIMARY KEY,
        game       TEXT NOT NULL,
        seed       INTEGER NOT NULL,
        players    TEXT NOT NULL,
        listed     INTEGER NOT NULL,
        watch_hash TEXT NOT NULL,
        watch_key  TEXT,
        started_at TEXT NOT NULL
    );
    CREATE TABLE live_moves (
        game_id TEXT NOT NULL,
        number  INTEGER NOT NULL,
        seat    INTEGER NOT NULL,
        move    TEXT NOT NULL,
        PRIMARY KEY (game_id, number)
    );
    CREATE TABLE live_sessions (
        session     TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        color       TEXT NOT NULL,
        resume_hash TEXT NOT NULL
    );
",
];

/// Why the store could not do something.
#[derive(Debug)]
pub enum StoreError {
    /// The folder for the database file could not be created.
    Folder {
        /// The folder.
        path: String,
        /// What the system said.
        err: std::io::Error,
    },
    /// SQLite refused.
    Sqlite(rusqlite::Error),
    /// A stored value could not be read back.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Folder { path, err } => write!(f, "cannot create the folder {path}: {err}"),
            StoreError::Sqlite(err) => write!(f, "{err}"),
            StoreError::Corrupt(what) => write!(f, "unreadable stored value: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Sqlite(err)
    }
}

/// The time now, as stored: RFC 3339 UTC to the second.
fn now_rfc3339() -> String {
    protocol::rfc3339(SystemTime::now())
}

/// Opens (creating if needed) the database at `path` and brings its schema
/// up to date.
pub fn open(path: &str) -> Result<Connection, StoreError> {
    let conn = if path == IN_MEMORY {
        Connection::open_in_memory()?
    } else {
        if let Some(folder) = Path::new(path)
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::create_dir_all(folder).map_err(|err| StoreError::Folder {
                path: folder.display().to_string(),
                err,
            })?;
        }
        Connection::open(path)?
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if path != IN_MEMORY {
        // WAL: readers never block the writer, and a crash loses at most the
        // transactions not yet committed.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    migrate(&conn)?;
    // A read-only file or a full disk opens and migrates (nothing to do)
    // without writing: one small write proves the store can keep data.
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('opened_at', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
        [now_rfc3339()],
    )?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The store: one SQLite connection, and the writes still to be retried.
pub struct Store {
    /// Where the database is.
    path: String,
    /// The connection; `None` while it cannot be opened.
    conn: Option<Connection>,
    /// Snapshot writes that failed, by room (only the newest counts).
    failed_snapshots: HashMap<String, (RoomKind, Value)>,
    /// Game records that failed to be written.
    failed_games: Vec<GameRecord>,
    /// Writes about games in play that failed, in order.
    failed_live: Vec<LiveWrite>,
    /// Write and error counters.
    metrics: Arc<Metrics>,
}

impl Store {
    /// Starts the store on its own thread with the connection already opened
    /// (and so checked) by [`open`].
    pub fn start(path: String, conn: Connection, metrics: Arc<Metrics>) -> Addr<Store> {
        let first = std::sync::Mutex::new(Some(conn));
        SyncArbiter::start(1, move || {
            // The factory runs again if the thread restarts: then it reopens.
            let conn = first.lock().ok().and_then(|mut first| first.take());
            let conn = conn.or_else(|| open(&path).map_err(|err| log::error!("store: {err}")).ok());
            Store {
                path: path.clone(),
                conn,
                failed_snapshots: HashMap::new(),
                failed_games: Vec::new(),
                failed_live: Vec::new(),
                metrics: metrics.clone(),
            }
        })
    }

    fn conn(&mut self) -> Result<&Connection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.path)?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("no connection".to_string()))
    }

    fn write_snapshot(
        &mut self,
        room: &str,
        kind: RoomKind,
        data: &Value,
    ) -> Result<(), StoreError> {
        let json = data.to_string();
        self.conn()?.execute(
            "INSERT INTO snapshots (room, kind, data, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (room) DO UPDATE SET kind = ?2, data = ?3, updated_at = ?4",
            params![room, kind.as_str(), json, now_rfc3339()],
        )?;
        Ok(())
    }

    fn write_game(&mut self, record: &GameRecord) -> Result<(), StoreError> {
        let entry = &record.entry;
        let players = serde_json::to_string(&entry.players).unwrap_or_default();
        let moves = serde_json::to_string(&record.moves).unwrap_or_default();
        let tx = self.conn()?.unchecked_transaction()?;
        // No longer in play: a restart must not bring it back.
        tx.execute(
            "DELETE FROM live_moves WHERE game_id = ?1",
            [&entry.game_id],
        )?;
        tx.execute(
            "DELETE FROM live_games WHERE game_id = ?1",
            [&entry.game_id],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO games
             (game_id, game, seed, players, moves, result, winner, started_at, ended_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.game_id,
                entry.game.as_str(),
                seed_to_sql(record.seed),
                players,
                moves,
                entry.result.as_str(),
                entry.winner,
                entry.started_at,
                entry.ended_at,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn write_live(&mut self, write: &LiveWrite) -> Result<(), StoreError> {
        let conn = self.conn()?;
        match write {
            LiveWrite::Game(game) => {
                let players = serde_json::to_string(&game.players).unwrap_or_default();
                conn.execute(
                    "INSERT OR REPLACE INTO live_games
                     (game_id, game, seed, players, listed, watch_hash, watch_key, started_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        game.game_id,
                        game.game.as_str(),
                        seed_to_sql(game.seed),
                        players,
                        game.listed,
                        game.watch_hash,
                        game.watch_key,
                        game.started_at,
                    ],
                )?;
            }
            LiveWrite::Move(save) => {
                conn.execute(
                    "INSERT OR REPLACE INTO live_moves (game_id, number, seat, move)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        save.game_id,
                        i64::try_from(save.number).unwrap_or(i64::MAX),
                        i64::try_from(save.stored.seat).unwrap_or(i64::MAX),
                        save.stored.mv.to_string(),
                    ],
                )?;
            }
            LiveWrite::Session(session) => {
                conn.execute(
                    "INSERT OR REPLACE INTO live_sessions (session, name, color, resume_hash)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        session.session,
                        session.name,
                        session.color,
                        session.resume_hash
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Writes about a game in play, after any that failed before (order
    /// matters: a game before its moves); `false` if it failed (it is then
    /// kept to be tried again).
    fn save_live(&mut self, write: LiveWrite) -> bool {
        if !self.failed_live.is_empty() {
            self.failed_live.push(write);
            return false;
        }
        match self.write_live(&write) {
            Ok(()) => {
                self.metrics.store_written(write.kind());
                true
            }
            Err(err) => {
                self.failed(&format!("writing {}", write.name()), &err);
                self.failed_live.push(write);
                false
            }
        }
    }

    fn save_snapshot(&mut self, room: String, kind: RoomKind, data: Value) {
        match self.write_snapshot(&room, kind, &data) {
            Ok(()) => {
                self.metrics.store_written("snapshot");
                self.failed_snapshots.remove(&room);
            }
            Err(err) => {
                self.failed(&format!("writing the snapshot of room {room}"), &err);
                self.failed_snapshots.insert(room, (kind, data));
            }
        }
    }

    fn save_game(&mut self, record: GameRecord) {
        // Writes about it still to be retried would bring it back to play.
        let game_id = record.entry.game_id.as_str();
        self.failed_live
            .retain(|write| write.game_id() != Some(game_id));
        match self.write_game(&record) {
            Ok(()) => self.metrics.store_written("game"),
            Err(err) => {
                self.failed(&format!("writing game {}", record.entry.game_id), &err);
                self.failed_games.push(record);
            }
        }
    }

    fn failed(&self, what: &str, err: &StoreError) {
        log::error!("store: {what} failed: {err}");
        self.metrics.store_failed();
    }

    /// Tries the writes that failed before, once each.
    fn retry(&mut self) {
        for (room, (kind, data)) in std::mem::take(&mut self.failed_snapshots) {
            self.save_snapshot(room, kind, data);
        }
        for write in std::mem::take(&mut self.failed_live) {
            self.save_live(write);
        }
        for record in std::mem::take(&mut self.failed_games) {
            self.save_game(record);
        }
    }

    /// What is still unwritten, named for the log.
    fn unwritten(&self) -> Vec<String> {
        let rooms = self
            .failed_snapshots
            .keys()
            .map(|room| format!("snapshot of room {room}"));
        let games = self
            .failed_games
            .iter()
            .map(|game| format!("game {}", game.entry.game_id));
        let live = self.failed_live.iter().map(LiveWrite::name);
        rooms.chain(games).chain(live).collect()
    }

    fn load_snapshot(&mut self, room: &str) -> Result<Option<Value>, StoreError> {
        if let Some((_, data)) = self.failed_snapshots.get(room) {
            return Ok(Some(data.clone()));
        }
        let data: Option<String> = self
            .conn()?
            .query_row(
                "SELECT data FROM snapshots WHERE room = ?1",
                [room],
                |row| row.get(0),
            )
            .optional()?;
        data.map(|data| {
            serde_json::from_str(&data).map_err(|err| StoreError::Corrupt(err.to_string()))
        })
        .transpose()
    }

    fn history(
        &mut self,
        game: Option<GameKind>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut entries = self.stored_history(game, limit)?;
        // Games whose write is still being retried are history too.
        let pending = self
            .failed_games
            .iter()
            .filter(|record| game.is_none_or(|kind| record.entry.game == kind));
        entries.extend(pending.map(|record| record.entry.clone()));
        entries.sort_by(|a, b| b.ended_at.cmp(&a.ended_at));
        entries.truncate(limit);
        Ok(entries)
    }

    fn stored_history(
        &mut self,
        game: Option<GameKind>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn()?;
        let mut statement = conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM games WHERE (?1 IS NULL OR game = ?1)
             ORDER BY ended_at DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![game.map(GameKind::as_str), limit], |row| {
            Ok(row_to_entry(row))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            entries.push(row??);
        }
        Ok(entries)
    }

    fn game(&mut self, game_id: &str) -> Result<Option<GameRecord>, StoreError> {
        if let Some(pending) = self
            .failed_games
            .iter()
            .find(|record| record.entry.game_id == game_id)
        {
            return Ok(Some(pending.clone()));
        }
        let record = self
            .conn()?
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS}, seed, moves FROM games WHERE game_id = ?1"),
                [game_id],
                row_to_record,
            )
            .optional()?;
        record.transpose()
    }
}

/// A write about a game in play.
enum LiveWrite {
    /// The game, as it started.
    Game(LiveGame),
    /// One accepted move.
    Move(SaveMove),
    /// A seated session's identity.
    Session(LiveSession),
}

impl LiveWrite {
    /// The game it is about, if any.
    fn game_id(&self) -> Option<&str> {
        match self {
            LiveWrite::Game(game) => Some(&game.game_id),
            LiveWrite::Move(save) => Some(&save.game_id),
            LiveWrite::Session(_) => None,
        }
    }

    /// Its label in `/metrics`.
    fn kind(&self) -> &'static str {
        match self {
            LiveWrite::Game(_) => "live_game",
            LiveWrite::Move(_) => "move",
            LiveWrite::Session(_) => "session",
        }
    }

    /// What it is, for the log.
    fn name(&self) -> String {
        match self {
            LiveWrite::Game(game) => format!("game in play {}", game.game_id),
            LiveWrite::Move(save) => format!("move {} of game {}", save.number, save.game_id),
            LiveWrite::Session(session) => format!("seated session {}", session.session),
        }
    }
}

/// The games in play when the server last stopped, each with its moves in
/// order, and the sessions seated in them.
#[derive(Debug, Default)]
pub struct Live {
    /// The games and their moves.
    pub games: Vec<(LiveGame, Vec<StoredMove>)>,
    /// Their seated sessions.
    pub sessions: Vec<LiveSession>,
}

/// Reads the games in play back at start (before the store's thread runs),
/// and forgets the seated sessions no game in play names any more.
pub fn load_live(conn: &Connection) -> Result<Live, StoreError> {
    let mut games = Vec::new();
    let mut statement = conn.prepare(
        "SELECT game_id, game, seed, players, listed, watch_hash, watch_key, started_at
         FROM live_games ORDER BY started_at, game_id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, bool>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, Option<String>>(6)?,
            row.get::<_, String>(7)?,
        ))
    })?;
    for row in rows {
        let (game_id, kind, seed, players, listed, watch_hash, watch_key, started_at) = row?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of game {game_id}"));
        let game = LiveGame {
            game: serde_json::from_value(Value::String(kind)).map_err(|_| corrupt("kind"))?,
            seed: u64::try_from(seed).map_err(|_| corrupt("seed"))?,
            players: serde_json::from_str::<Vec<LivePlayer>>(&players)
                .map_err(|_| corrupt("players"))?,
            listed,
            watch_hash,
            watch_key,
            started_at,
            game_id: game_id.clone(),
        };
        let moves = live_moves(conn, &game_id)?;
        games.push((game, moves));
    }
    let seated: HashSet<&str> = games
        .iter()
        .flat_map(|(game, _)| game.players.iter().map(|player| player.session.as_str()))
        .collect();
    let mut sessions = Vec::new();
    let mut statement =
        conn.prepare("SELECT session, name, color, resume_hash FROM live_sessions")?;
    let rows = statement.query_map([], |row| {
        Ok(LiveSession {
            session: row.get(0)?,
            name: row.get(1)?,
            color: row.get(2)?,
            resume_hash: row.get(3)?,
        })
    })?;
    for row in rows {
        let session = row?;
        if seated.contains(session.session.as_str()) {
            sessions.push(session);
        } else {
            conn.execute(
                "DELETE FROM live_sessions WHERE session = ?1",
                [&session.session],
            )?;
        }
    }
    Ok(Live { games, sessions })
}

fn live_moves(conn: &Connection, game_id: &str) -> Result<Vec<StoredMove>, StoreError> {
    let mut statement =
        conn.prepare("SELECT seat, move FROM live_moves WHERE game_id = ?1 ORDER BY number")?;
    let rows = statement.query_map([game_id], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut moves = Vec::new();
    for row in rows {
        let (seat, mv) = row?;
        let corrupt = || StoreError::Corrupt(format!("a move of game {game_id}"));
        moves.push(StoredMove {
            seat: usize::try_from(seat).map_err(|_| corrupt())?,
            mv: serde_json::from_str(&mv).map_err(|_| corrupt())?,
        });
    }
    Ok(moves)
}

fn seed_to_sql(seed: u64) -> i64 {
    i64::try_from(seed).unwrap_or(i64::MAX)
}

/// The `games` columns of a [`HistoryEntry`], in the order [`row_to_entry`]
/// reads them.
const ENTRY_COLUMNS: &str = "game_id, game, players, result, winner, started_at, ended_at";

/// Reads a listing's columns of a `games` row; the inner result is about
/// its JSON columns.
fn row_to_entry(row: &rusqlite::Row<'_>) -> Result<HistoryEntry, StoreError> {
    let text = |index: usize| row.get::<_, String>(index);
    let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
    Ok(HistoryEntry {
        game_id: text(0)?,
        game: serde_json::from_value(Value::String(text(1)?)).map_err(|_| corrupt("game kind"))?,
        players: serde_json::from_str(&text(2)?).map_err(|_| corrupt("players"))?,
        result: serde_json::from_value(Value::String(text(3)?)).map_err(|_| corrupt("result"))?,
        winner: row.get(4)?,
        started_at: text(5)?,
        ended_at: text(6)?,
    })
}

/// Reads a whole `games` row (`ENTRY_COLUMNS`, then seed and moves).
fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<GameRecord, StoreError>> {
    let seed: i64 = row.get(7)?;
    let moves: String = row.get(8)?;
    let parsed = (|| {
        let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
        Ok(GameRecord {
            entry: row_to_entry(row)?,
            seed: u64::try_from(seed).map_err(|_| corrupt("seed"))?,
            moves: serde_json::from_str(&moves).map_err(|_| corrupt("moves"))?,
        })
    })();
    Ok(parsed)
}

impl Actor for Store {
    type Context = SyncContext<Self>;
}

/// List finished games, newest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<HistoryEntry>, StoreError>")]
pub struct ListHistory {
    /// Only this kind, or every kind.
    pub game: Option<GameKind>,
    /// At most this many.
    pub limit: usize,
}

/// Read one finished game whole.
#[derive(Message)]
#[rtype(result = "Result<Option<GameRecord>, StoreError>")]
pub struct GetGame {
    /// The game.
    pub game_id: String,
}

/// Try the failed writes again (sent by a timer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retry;

/// Answered once every message sent before it has been handled, after one
/// more try of any failed write, with what is still unwritten: how shutdown
/// knows everything is written.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct Drain;

impl Handler<SaveSnapshot> for Store {
    type Result = ();

    fn handle(&mut self, msg: SaveSnapshot, _: &mut SyncContext<Self>) {
        // Still failing: keep the newest, write it at the next retry.
        if let Some(pending) = self.failed_snapshots.get_mut(&msg.room) {
            *pending = (msg.kind, msg.data);
            return;
        }
        self.save_snapshot(msg.room, msg.kind, msg.data);
    }
}

impl Handler<LoadSnapshot> for Store {
    type Result = Result<Option<Value>, String>;

    fn handle(&mut self, msg: LoadSnapshot, _: &mut SyncContext<Self>) -> Self::Result {
        self.load_snapshot(&msg.room).map_err(|err| {
            self.failed(&format!("reading the snapshot of room {}", msg.room), &err);
            err.to_string()
        })
    }
}

impl Handler<SaveGame> for Store {
    type Result = ();

    fn handle(&mut self, msg: SaveGame, _: &mut SyncContext<Self>) {
        self.save_game(msg.0);
    }
}

impl Handler<SaveLiveGame> for Store {
    type Result = ();

    fn handle(&mut self, msg: SaveLiveGame, _: &mut SyncContext<Self>) {
        self.save_live(LiveWrite::Game(msg.0));
    }
}

impl Handler<SaveMove> for Store {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: SaveMove, _: &mut SyncContext<Self>) -> Self::Result {
        let name = format!("move {} of game {}", msg.number, msg.game_id);
        if self.save_live(LiveWrite::Move(msg)) {
            Ok(())
        } else {
            Err(format!("{name} is not written yet"))
        }
    }
}

impl Handler<SaveSession> for Store {
    type Result = ();

    fn handle(&mut self, msg: SaveSession, _: &mut SyncContext<Self>) {
        self.save_live(LiveWrite::Session(msg.0));
    }
}

impl Handler<ListHistory> for Store {
    type Result = Result<Vec<HistoryEntry>, StoreError>;

    fn handle(&mut self, msg: ListHistory, _: &mut SyncContext<Self>) -> Self::Result {
        self.history(msg.game, msg.limit)
    }
}

impl Handler<GetGame> for Store {
    type Result = Result<Option<GameRecord>, StoreError>;

    fn handle(&mut self, msg: GetGame, _: &mut SyncContext<Self>) -> Self::Result {
        self.game(&msg.game_id)
    }
}

impl Handler<Retry> for Store {
    type Result = ();

    fn handle(&mut self, _: Retry, _: &mut SyncContext<Self>) {
        self.retry();
    }
}

impl Handler<Drain> for Store {
    type Result = Vec<String>;

    fn handle(&mut self, _: Drain, _: &mut SyncContext<Self>) -> Vec<String> {
        self.retry();
        self.unwritten()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::{GameResult, StoredPlayer};

    fn store() -> Store {
        Store {
            path: IN_MEMORY.to_string(),
            conn: Some(open(IN_MEMORY).unwrap()),
            failed_snapshots: HashMap::new(),
            failed_games: Vec::new(),
            failed_live: Vec::new(),
            metrics: Arc::new(Metrics::new()),
        }
    }

    fn record(game_id: &str, game: GameKind, ended_at: &str) -> GameRecord {
        GameRecord {
            entry: HistoryEntry {
                game_id: game_id.to_string(),
                game,
                players: vec![StoredPlayer {
                    seat: "X".into(),
                    name: "Ada".into(),
                    color: "#112233".into(),
                    bot: false,
                }],
                result: GameResult::Win,
                winner: Some("X".into()),
                started_at: "2026-11-22T00:00:00Z".into(),
                ended_at: ended_at.into(),
            },
            seed: (1 << 53) - 1,
            moves: vec![json!({"cell":4})],
        }
    }

    #[test]
    fn migrations_set_the_user_version() {
        let conn = open(IN_MEMORY).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        migrate(&conn).unwrap();
    }

    #[test]
    fn snapshots_round_trip_and_overwrite() {
        let mut store = store();
        assert_eq!(store.load_snapshot("poetry").unwrap(), None);
        store.save_snapshot("poetry".into(), RoomKind::Chat, json!({"words":["a"]}));
        store.save_snapshot("poetry".into(), RoomKind::Chat, json!({"words":["b"]}));
        assert_eq!(
            store.load_snapshot("poetry").unwrap(),
            Some(json!({"words":["b"]}))
        );
    }

    #[test]
    fn games_list_newest_first_by_kind_and_read_whole() {
        let mut store = store();
        store.save_game(record("g_1", GameKind::TicTacToe, "2026-11-22T00:01:00Z"));
        store.save_game(record("g_2", GameKind::Connect4, "2026-11-22T00:02:00Z"));
        store.save_game(record("g_3", GameKind::TicTacToe, "2026-11-22T00:03:00Z"));
        let all: Vec<String> = store
            .history(None, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.game_id)
            .collect();
        assert_eq!(all, ["g_3", "g_2", "g_1"]);
        let ttt: Vec<String> = store
            .history(Some(GameKind::TicTacToe), 1)
            .unwrap()
            .into_iter()
            .map(|e| e.game_id)
            .collect();
        assert_eq!(ttt, ["g_3"]);
        assert_eq!(
            store.game("g_2").unwrap(),
            Some(record("g_2", GameKind::Connect4, "2026-11-22T00:02:00Z"))
        );
        assert_eq!(store.game("g_404").unwrap(), None);
    }

    fn live_game(game_id: &str) -> LiveGame {
        LiveGame {
            game_id: game_id.to_string(),
            game: GameKind::TicTacToe,
            seed: 7,
            players: vec![LivePlayer {
                session: "s_ada".into(),
                name: "Ada".into(),
                color: "#112233".into(),
                bot: None,
            }],
            listed: true,
            watch_hash: "hash".into(),
            watch_key: Some("key".into()),
            started_at: "2026-11-30T00:00:00Z".into(),
        }
    }

    fn save_move(game_id: &str, number: usize, cell: u32) -> LiveWrite {
        LiveWrite::Move(SaveMove {
            game_id: game_id.to_string(),
            number,
            stored: StoredMove {
                seat: number - 1,
                mv: json!({ "cell": cell }),
            },
        })
    }

    #[test]
    fn games_in_play_come_back_with_their_moves_until_they_finish() {
        let mut store = store();
        assert!(store.save_live(LiveWrite::Game(live_game("g_1"))));
        assert!(store.save_live(save_move("g_1", 1, 4)));
        assert!(store.save_live(save_move("g_1", 2, 0)));
        let ada = LiveSession {
            session: "s_ada".into(),
            name: "Ada".into(),
            color: "#112233".into(),
            resume_hash: "h".into(),
        };
        let stranger = LiveSession {
            session: "s_gone".into(),
            ..ada.clone()
        };
        assert!(store.save_live(LiveWrite::Session(ada.clone())));
        assert!(store.save_live(LiveWrite::Session(stranger)));
        let live = load_live(store.conn.as_ref().unwrap()).unwrap();
        let moves: Vec<Value> = live.games[0].1.iter().map(|m| m.mv.clone()).collect();
        assert_eq!(live.games[0].0, live_game("g_1"));
        assert_eq!(moves, [json!({"cell":4}), json!({"cell":0})]);
        assert_eq!(live.sessions, [ada], "a session no game names is forgotten");
        store.save_game(record("g_1", GameKind::TicTacToe, "2026-11-30T00:05:00Z"));
        let live = load_live(store.conn.as_ref().unwrap()).unwrap();
        assert!(
            live.games.is_empty(),
            "a finished game is no longer in play"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "this is not a database, just text that is long enough to matter".repeat(100),
        )
        .unwrap();
        let err = open(file.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not a database"), "{err}");
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_named() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().join("inside-a-file").join("parlor.db");
        let err = open(path.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, StoreError::Folder { .. }), "{err}");
    }
}
