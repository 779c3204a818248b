//! Games: the [`Rules`] every game implements as plain code, the [`Game`]
//! actor that runs any of them, and the registry of game kinds
//! ([`start_game`]).
//!
//! Rules know nothing of actix, JSON or sockets: a board, whose turn it is,
//! `play(seat, move)`, and how the game ended. Adding a game means one new
//! rules file, one variant of [`GameKind`] and one line in [`start_game`].

pub mod connect4;
pub mod match3;
pub mod tictactoe;

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, SystemTime},
};

use actix::prelude::*;
use bytestring::ByteString;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::{
    lobby::{GameClosed, GameFinished, Lobby},
    metrics::Metrics,
    protocol::{self, ErrorCode, GameStatus, PlayerInfo, RequestId, ServerMsg},
    session::SessionHandle,
    store::{self, GameRecord, HistoryEntry, SaveGame, Store, StoredPlayer},
    workers::Workers,
};

/// The games Parlor hosts, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GameKind {
    /// Tic-tac-toe: two players, X moves first.
    #[serde(rename = "tictactoe")]
    TicTacToe,
    /// Connect four: two players, red moves first.
    #[serde(rename = "connect4")]
    Connect4,
    /// Match three: one player.
    #[serde(rename = "match3")]
    Match3,
}

impl GameKind {
    /// Every kind, for metrics and listings.
    pub const ALL: [GameKind; 3] = [GameKind::TicTacToe, GameKind::Connect4, GameKind::Match3];

    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GameKind::TicTacToe => "tictactoe",
            GameKind::Connect4 => "connect4",
            GameKind::Match3 => "match3",
        }
    }

    /// The kind's seats in turn order.
    pub fn seats(self) -> &'static [&'static str] {
        match self {
            GameKind::TicTacToe => tictactoe::TicTacToe::SEATS,
            GameKind::Connect4 => connect4::Connect4::SEATS,
            GameKind::Match3 => match3::Match3::SEATS,
        }
    }
}

/// How a game ended, as `game_over.result` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameResult {
    /// A player made a winning line.
    Win,
    /// The board filled with no winner.
    Draw,
    /// A player resigned.
    Forfeit,
    /// A player did not come back within the reconnect grace.
    Abandoned,
    /// Match three ran out of moves.
    Finished,
}

impl GameResult {
    /// Every result, for metrics that list each one from the start.
    pub const ALL: [GameResult; 5] = [
        GameResult::Win,
        GameResult::Draw,
        GameResult::Forfeit,
        GameResult::Abandoned,
        GameResult::Finished,
    ];

    /// The result as named on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GameResult::Win => "win",
            GameResult::Draw => "draw",
            GameResult::Forfeit => "forfeit",
            GameResult::Abandoned => "abandoned",
            GameResult::Finished => "finished",
        }
    }
}

/// The end of a game as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending<Cell> {
    /// Win, draw or finished (resign and abandon are the Game actor's).
    pub result: GameResult,
    /// The winning seat's index in [`Rules::SEATS`], if any.
    pub winner: Option<usize>,
    /// The winning cells; empty when there is none.
    pub line: Vec<Cell>,
    /// The final score (match three only).
    pub score: Option<u32>,
}

/// Why the rules refused a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    /// The game has ended.
    GameOver,
    /// It is another seat's turn.
    NotYourTurn,
    /// A field is out of range (`bad_request`); the text names it.
    OutOfRange(String),
    /// The rules forbid the move (`illegal_move`); the text says why.
    Illegal(String),
}

/// A game's rules: a pure state machine, deterministic given its seed.
pub trait Rules: Unpin + Send + 'static {
    /// A move as the client sends it: the fields of a `move` request other
    /// than `type`, `game_id` and `id`.
    type Move: DeserializeOwned + Serialize + Clone + Send + 'static;
    /// What the server adds to an accepted move (connect four's `row`,
    /// match three's cascade `steps`, `score` and `moves_left`).
    type Outcome: Serialize + Send + 'static;
    /// The board as the protocol shows it.
    type Board: Serialize;
    /// A cell of a winning line.
    type Cell: Serialize + Clone + Send + 'static;

    /// The kind these rules implement.
    const KIND: GameKind;
    /// The seats in turn order, as named on the wire.
    const SEATS: &'static [&'static str];

    /// A new game; games that use chance draw it from `seed` only.
    fn new(seed: u64) -> Self;
    /// The board now.
    fn board(&self) -> &Self::Board;
    /// The seat to move, as an index into [`Rules::SEATS`]; `None` once over.
    fn turn(&self) -> Option<usize>;
    /// Plays `mv` for `seat`, or says why not (leaving the game unchanged).
    fn play(&mut self, seat: usize, mv: &Self::Move) -> Result<Self::Outcome, MoveError>;
    /// How the game ended, once it has.
    fn ending(&self) -> Option<Ending<Self::Cell>>;
    /// The score so far, for games that keep one (shown when a game ends
    /// by resignation or abandonment too).
    fn score(&self) -> Option<u32> {
        None
    }
}

/// How long games hold seats and linger; from `[games]` in the config.
#[derive(Debug, Clone, Copy)]
pub struct GameSettings {
    /// How long a dropped player's seat is held (`games.reconnect_grace_ms`).
    pub reconnect_grace: Duration,
    /// How long a finished game stays addressable (`games.linger_ms`).
    pub linger: Duration,
}

/// A player taking a seat.
#[derive(Clone)]
pub struct Player {
    /// The player's session id.
    pub session: String,
    /// The display name.
    pub name: String,
    /// The color.
    pub color: String,
    /// The session actor.
    pub addr: SessionHandle,
}

/// What a session asks of a game it plays or watches.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlayerRequest {
    /// The asking session.
    pub session: String,
    /// A move or a resignation.
    pub action: Action,
    /// The request's `id`, echoed on the answer.
    pub id: Option<RequestId>,
}

/// What a player can do in a game.
pub enum Action {
    /// `move`, with the request's fields for the rules to read.
    Move(Value),
    /// `resign`.
    Resign,
}

/// The Lobby seats a player in a waiting private game (`join_game`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSeat {
    /// Who joins.
    pub player: Player,
    /// The `join_game` request's `id`.
    pub id: Option<RequestId>,
}

/// A session starts watching (`watch_game`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    /// The watching session.
    pub session: String,
    /// Its actor.
    pub addr: SessionHandle,
    /// The `watch_game` request's `id`.
    pub id: Option<RequestId>,
}

/// A session's connection dropped (`addr` is `None`) or came back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Presence {
    /// The session.
    pub session: String,
    /// The connection that dropped or came back: a drop of a connection
    /// that was already taken over changes nothing.
    pub connection: u64,
    /// Its new actor, or `None` when it dropped.
    pub addr: Option<SessionHandle>,
}

/// How sessions and the Lobby reach one game, whatever its rules.
#[derive(Clone)]
pub struct GameLink {
    /// The game id.
    pub id: String,
    /// Its kind.
    pub kind: GameKind,
    /// Moves and resignations.
    requests: Recipient<PlayerRequest>,
    /// Joins of private games.
    seats: Recipient<TakeSeat>,
    /// New spectators.
    watches: Recipient<Watch>,
    /// Drops and returns.
    presence: Recipient<Presence>,
}

impl GameLink {
    fn new<R: Rules>(id: String, addr: Addr<Game<R>>) -> GameLink {
        GameLink {
            id,
            kind: R::KIND,
            requests: addr.clone().recipient(),
            seats: addr.clone().recipient(),
            watches: addr.clone().recipient(),
            presence: addr.recipient(),
        }
    }

    /// Whether the game is still there (it stops when its linger ends).
    pub fn alive(&self) -> bool {
        self.requests.connected()
    }

    /// Sends a move or resignation.
    pub fn request(&self, msg: PlayerRequest) {
        self.requests.do_send(msg);
    }

    /// Seats a player in a waiting game.
    pub fn take_seat(&self, msg: TakeSeat) {
        self.seats.do_send(msg);
    }

    /// Adds a spectator.
    pub fn watch(&self, msg: Watch) {
        self.watches.do_send(msg);
    }

    /// Tells the game a session dropped or came back.
    pub fn presence(&self, msg: Presence) {
        self.presence.do_send(msg);
    }
}

/// Everything a new game needs besides its rules.
pub struct NewGame {
    /// The game id.
    pub id: String,
    /// The key that lets anyone watch.
    pub watch_key: String,
    /// The players, in seat order; fewer than the seats for a private game
    /// that waits for its opponent.
    pub players: Vec<Player>,
    /// The seed of the game's chance.
    pub seed: u64,
    /// Grace and linger.
    pub settings: GameSettings,
    /// Where finished and closed games are reported.
    pub lobby: Addr<Lobby>,
    /// Game counters.
    pub metrics: Arc<Metrics>,
    /// Where the finished game is recorded.
    pub store: Addr<Store>,
    /// For a private game, the creator's `game_created` answer: the game
    /// sends it once the creator knows the game's link.
    pub created: Option<ByteString>,
}

/// Starts a game of `kind`: the registry of games, one line per kind.
pub fn start_game(workers: &Workers, kind: GameKind, new: NewGame) -> GameLink {
    match kind {
        GameKind::TicTacToe => Game::<tictactoe::TicTacToe>::launch(workers, new),
        GameKind::Connect4 => Game::<connect4::Connect4>::launch(workers, new),
        GameKind::Match3 => Game::<match3::Match3>::launch(workers, new),
    }
}

/// A seat's occupant.
struct Occupant {
    /// The player's session id.
    session: String,
    /// The display name.
    name: String,
    /// The color.
    color: String,
    /// The session actor; `None` while the player is away.
    addr: Option<SessionHandle>,
    /// The timer that abandons the game if the player stays away.
    grace: Option<SpawnHandle>,
}

/// How a game ended, once it has.
struct Over {
    /// Win, draw, forfeit, abandoned or finished.
    result: GameResult,
    /// The winning seat, if any.
    winner: Option<usize>,
}

/// The Game actor: one per match, generic over its rules.
///
/// It owns the rules, the seats, the spectators and the move list; takes
/// [`PlayerRequest`], [`TakeSeat`], [`Watch`] and [`Presence`]; sends
/// [`Outbound`](crate::session::Outbound) frames and [`Linked`](crate::session::Linked) to sessions, and [`GameFinished`] and
/// [`GameClosed`] to the Lobby. A panic in the rules ends this game only.
pub struct Game<R: Rules> {
    /// The game id.
    id: String,
    /// The rules and board.
    rules: R,
    /// One entry per seat of [`Rules::SEATS`]; `None` while free.
    seats: Vec<Option<Occupant>>,
    /// Spectators by session id.
    spectators: HashMap<String, SessionHandle>,
    /// Every accepted move as `moved.move` showed it.
    moves: Vec<Value>,
    /// Set once the game has ended.
    over: Option<Over>,
    /// The key that lets anyone watch.
    watch_key: String,
    /// Grace and linger.
    settings: GameSettings,
    /// Where finished and closed games are reported.
    lobby: Addr<Lobby>,
    /// Game counters.
    metrics: Arc<Metrics>,
    /// Where the finished game is recorded.
    store: Addr<Store>,
    /// The seed the rules were made with.
    seed: u64,
    /// When all seats were first filled.
    started_at: Option<SystemTime>,
    /// A private game's `game_created` answer, until its creator is linked.
    created: Option<ByteString>,
}

impl<R: Rules> Actor for Game<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.game_started(R::KIND);
        let link = GameLink::new(self.id.clone(), ctx.address());
        for addr in self
            .seats
            .iter()
            .flatten()
            .filter_map(|seat| seat.addr.as_ref())
        {
            addr.link(link.clone());
        }
        // After the link, so that a move sent on `game_created` finds the
        // game; before `game_start` (a match three game starts at once).
        if let Some(created) = self.created.take() {
            let creator = self.seats.first().and_then(Option::as_ref);
            if let Some(addr) = creator.and_then(|occupant| occupant.addr.as_ref()) {
                addr.send(created);
            }
        }
        if self.is_full() {
            self.begin(None);
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.metrics.game_stopped(R::KIND);
        self.lobby.do_send(GameClosed {
            game_id: self.id.clone(),
        });
    }
}

impl<R: Rules> Game<R> {
    fn launch(workers: &Workers, new: NewGame) -> GameLink {
        let mut seats: Vec<Option<Occupant>> =
            new.players.into_iter().map(occupant).map(Some).collect();
        seats.resize_with(R::SEATS.len(), || None);
        let game = Game {
            id: new.id.clone(),
            rules: R::new(new.seed),
            seats,
            spectators: HashMap::new(),
            moves: Vec::new(),
            over: None,
            watch_key: new.watch_key,
            settings: new.settings,
            lobby: new.lobby,
            metrics: new.metrics,
            store: new.store,
            seed: new.seed,
            started_at: None,
            created: new.created,
        };
        GameLink::new(new.id, workers.start(|_| game))
    }

    fn is_full(&self) -> bool {
        self.seats.iter().all(Option::is_some)
    }

    fn seat_of(&self, session: &str) -> Option<usize> {
        self.seats
            .iter()
            .position(|seat| seat.as_ref().is_some_and(|seat| seat.session == session))
    }

    fn seat_name(seat: usize) -> &'static str {
        R::SEATS.get(seat).copied().unwrap_or("?")
    }

    fn players(&self) -> Vec<PlayerInfo> {
        let seated = self.seats.iter().enumerate();
        seated
            .filter_map(|(seat, occupant)| {
                let occupant = occupant.as_ref()?;
                let (name, color) = (occupant.name.clone(), occupant.color.clone());
                Some(PlayerInfo {
                    seat: Self::seat_name(seat),
                    name,
                    color,
                })
            })
            .collect()
    }

    fn status(&self) -> GameStatus {
        match (&self.over, self.is_full()) {
            (Some(_), _) => GameStatus::Over,
            (None, false) => GameStatus::Waiting,
            (None, true) => GameStatus::Playing,
        }
    }

    fn turn(&self) -> Option<&'static str> {
        let playing = self.status() == GameStatus::Playing;
        self.rules.turn().filter(|_| playing).map(Self::seat_name)
    }

    fn board(&self) -> Value {
        serde_json::to_value(self.rules.board()).unwrap_or(Value::Null)
    }

    fn state_for(&self, you: Option<usize>) -> ServerMsg {
        ServerMsg::GameState {
            game_id: self.id.clone(),
            game: R::KIND,
            you: you.map(Self::seat_name),
            players: self.players(),
            turn: self.turn(),
            board: self.board(),
            moves: self.moves.clone(),
            status: self.status(),
            result: self.over.as_ref().map(|over| over.result),
            winner: self
                .over
                .as_ref()
                .and_then(|over| over.winner)
                .map(Self::seat_name),
        }
    }

    fn addr_of(&self, session: &str) -> Option<&SessionHandle> {
        let seat = self
            .seat_of(session)
            .and_then(|seat| self.seats.get(seat)?.as_ref()?.addr.as_ref());
        seat.or_else(|| self.spectators.get(session))
    }

    /// Every connected player and spectator, with the session id.
    fn audience(&self) -> impl Iterator<Item = (&str, &SessionHandle)> {
        let players = self.seats.iter().flatten();
        let players = players.filter_map(|seat| Some((seat.session.as_str(), seat.addr.as_ref()?)));
        players.chain(
            self.spectators
                .iter()
                .map(|(session, addr)| (session.as_str(), addr)),
        )
    }

    /// Sends `msg` to everyone in the game, serialised once; the session
    /// that caused it (if any) gets its own copy with its request's `id`.
    fn broadcast(&self, msg: &ServerMsg, cause: Option<(&str, Option<&RequestId>)>) {
        let shared = msg.encode();
        for (session, addr) in self.audience() {
            match cause {
                Some((asker, id @ Some(_))) if asker == session => addr.send(msg.encode_reply(id)),
                _ => addr.send(shared.clone()),
            }
        }
    }

    fn reply(&self, session: &str, msg: &ServerMsg, id: Option<&RequestId>) {
        if let Some(addr) = self.addr_of(session) {
            addr.send(msg.encode_reply(id));
        }
    }

    fn refuse(
        &self,
        session: &str,
        code: ErrorCode,
        message: String,
        request: &str,
        id: Option<&RequestId>,
    ) {
        self.metrics.error_sent(code);
        let error = ServerMsg::error(code, message, request);
        self.reply(session, &error, id);
    }

    /// Sends `game_start` to every player (with `you`) and spectator.
    fn begin(&mut self, cause: Option<(&str, Option<&RequestId>)>) {
        self.started_at = Some(SystemTime::now());
        let start_for = |you: Option<usize>| ServerMsg::GameStart {
            game_id: self.id.clone(),
            game: R::KIND,
            you: you.map(Self::seat_name),
            players: self.players(),
            turn: self.turn(),
            board: self.board(),
            watch_key: self.watch_key.clone(),
        };
        for (seat, occupant) in self.seats.iter().enumerate() {
            let Some(occupant) = occupant else { continue };
            let id = cause
                .filter(|(asker, _)| *asker == occupant.session)
                .and_then(|(_, id)| id);
            if let Some(addr) = &occupant.addr {
                addr.send(start_for(Some(seat)).encode_reply(id));
            }
        }
        let for_spectators = start_for(None).encode();
        for addr in self.spectators.values() {
            addr.send(for_spectators.clone());
        }
    }

    /// The first of not_a_player, game_over, not_your_turn that applies to
    /// `session` acting now, with its message.
    fn check_turn(&self, session: &str, moving: bool) -> Result<usize, (ErrorCode, String)> {
        let seat = self
            .seat_of(session)
            .ok_or((ErrorCode::NotAPlayer, "spectators cannot play".to_string()))?;
        if self.over.is_some() {
            return Err((ErrorCode::GameOver, format!("game {} is over", self.id)));
        }
        if moving && self.turn() != Some(Self::seat_name(seat)) {
            let message = match self.status() {
                GameStatus::Waiting => "the game waits for its second player".to_string(),
                _ => format!("it is {}'s turn", self.turn().unwrap_or("nobody")),
            };
            return Err((ErrorCode::NotYourTurn, message));
        }
        Ok(seat)
    }

    fn on_move(
        &mut self,
        session: &str,
        fields: &Value,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let seat = match self.check_turn(session, true) {
            Ok(seat) => seat,
            Err((code, message)) => return self.refuse(session, code, message, "move", id),
        };
        let mv: R::Move = match protocol::move_fields(fields) {
            Ok(mv) => mv,
            Err(message) => {
                return self.refuse(session, ErrorCode::BadRequest, message, "move", id)
            }
        };
        let rules = &mut self.rules;
        let played = std::panic::catch_unwind(AssertUnwindSafe(|| rules.play(seat, &mv)));
        match played {
            Ok(Ok(outcome)) => self.accept(seat, &mv, &outcome, session, id, ctx),
            Ok(Err(err)) => {
                let (code, message) = move_error(err);
                self.refuse(session, code, message, "move", id);
            }
            Err(_) => self.crash(session, id, ctx),
        }
    }

    fn accept(
        &mut self,
        seat: usize,
        mv: &R::Move,
        outcome: &R::Outcome,
        session: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let played = merge(mv, outcome);
        self.moves.push(played.clone());
        let moved = ServerMsg::Moved {
            game_id: self.id.clone(),
            seat: Self::seat_name(seat),
            played,
            board: self.board(),
            turn: self.turn(),
        };
        self.broadcast(&moved, Some((session, id)));
        if let Some(ending) = self.rules.ending() {
            let line = serde_json::to_value(&ending.line).unwrap_or(Value::Array(Vec::new()));
            self.finish(ending.result, ending.winner, line, ending.score, ctx);
        }
    }

    /// The rules panicked: their state can no longer be trusted, so this
    /// game ends, abandoned with no winner; every other game goes on.
    fn crash(&mut self, session: &str, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        log::error!(
            "game {} ({}): the rules panicked; the game is abandoned",
            self.id,
            R::KIND.as_str()
        );
        let message = "the game failed on the server and has ended".to_string();
        self.refuse(session, ErrorCode::Internal, message, "move", id);
        self.finish(
            GameResult::Abandoned,
            None,
            Value::Array(Vec::new()),
            None,
            ctx,
        );
    }

    fn on_resign(&mut self, session: &str, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        let seat = match self.check_turn(session, false) {
            Ok(seat) => seat,
            Err((code, message)) => return self.refuse(session, code, message, "resign", id),
        };
        let winner = self.opponent(seat).filter(|_| self.is_full());
        self.finish_with(GameResult::Forfeit, winner, Some((session, id)), ctx);
    }

    /// The other seat of a two-player game.
    fn opponent(&self, seat: usize) -> Option<usize> {
        (R::SEATS.len() == 2).then_some(1 - seat)
    }

    fn finish(
        &mut self,
        result: GameResult,
        winner: Option<usize>,
        line: Value,
        score: Option<u32>,
        ctx: &mut Context<Self>,
    ) {
        self.end(result, winner, line, score, None, ctx);
    }

    fn finish_with(
        &mut self,
        result: GameResult,
        winner: Option<usize>,
        cause: Option<(&str, Option<&RequestId>)>,
        ctx: &mut Context<Self>,
    ) {
        let score = self.rules.score();
        self.end(result, winner, Value::Array(Vec::new()), score, cause, ctx);
    }

    fn end(
        &mut self,
        result: GameResult,
        winner: Option<usize>,
        line: Value,
        score: Option<u32>,
        cause: Option<(&str, Option<&RequestId>)>,
        ctx: &mut Context<Self>,
    ) {
        self.over = Some(Over { result, winner });
        for occupant in self.seats.iter_mut().flatten() {
            if let Some(timer) = occupant.grace.take() {
                ctx.cancel_future(timer);
            }
        }
        let over = ServerMsg::GameOver {
            game_id: self.id.clone(),
            result,
            winner: winner.map(Self::seat_name),
            line,
            score,
        };
        self.broadcast(&over, cause);
        self.metrics.game_finished(result);
        self.record(result, winner);
        self.lobby.do_send(GameFinished {
            game_id: self.id.clone(),
        });
        ctx.run_later(self.settings.linger, |_, ctx| ctx.stop());
    }

    /// Hands a started game's record to the store.
    fn record(&self, result: GameResult, winner: Option<usize>) {
        let Some(started_at) = self.started_at else {
            return;
        };
        let players = self.players().iter().map(StoredPlayer::from).collect();
        self.store.do_send(SaveGame(GameRecord {
            entry: HistoryEntry {
                game_id: self.id.clone(),
                game: R::KIND,
                players,
                result,
                winner: winner.map(|seat| Self::seat_name(seat).to_string()),
                started_at: store::rfc3339(started_at),
                ended_at: store::now_rfc3339(),
            },
            seed: self.seed,
            moves: self.moves.clone(),
        }));
    }

    fn on_take_seat(&mut self, msg: TakeSeat, ctx: &mut Context<Self>) {
        let free = self
            .seats
            .iter()
            .position(Option::is_none)
            .filter(|_| self.over.is_none());
        let Some(seat) = free else {
            let error = ServerMsg::error(
                ErrorCode::NotFound,
                "that game has no free seat",
                "join_game",
            );
            self.metrics.error_sent(ErrorCode::NotFound);
            msg.player.addr.send(error.encode_reply(msg.id.as_ref()));
            return;
        };
        msg.player
            .addr
            .link(GameLink::new(self.id.clone(), ctx.address()));
        let session = msg.player.session.clone();
        // A guest who watched the waiting game now plays it: one copy of
        // each event, the player's.
        self.spectators.remove(&session);
        if let Some(slot) = self.seats.get_mut(seat) {
            *slot = Some(occupant(msg.player));
        }
        if self.is_full() {
            self.begin(Some((&session, msg.id.as_ref())));
        }
    }

    fn on_watch(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        msg.addr.link(GameLink::new(self.id.clone(), ctx.address()));
        let seat = self.seat_of(&msg.session);
        msg.addr
            .send(self.state_for(seat).encode_reply(msg.id.as_ref()));
        if seat.is_none() {
            self.spectators.insert(msg.session, msg.addr);
        }
    }

    fn on_presence(&mut self, msg: Presence, ctx: &mut Context<Self>) {
        let current = |handle: Option<&SessionHandle>| {
            handle.is_some_and(|h| h.connection() == msg.connection)
        };
        let Some(seat) = self.seat_of(&msg.session) else {
            if msg.addr.is_none() && current(self.spectators.get(&msg.session)) {
                self.spectators.remove(&msg.session);
            }
            return;
        };
        match msg.addr {
            None if current(self.addr_of(&msg.session)) => self.player_away(seat, ctx),
            None => {}
            // A connection older than the seat's own came back late (two
            // resumes close together): the newer one keeps the seat.
            Some(addr)
                if self
                    .addr_of(&msg.session)
                    .is_some_and(|seated| seated.connection() > addr.connection()) => {}
            Some(addr) => self.player_back(seat, addr, ctx),
        }
    }

    fn player_away(&mut self, seat: usize, ctx: &mut Context<Self>) {
        let grace = self.settings.reconnect_grace;
        let playing = self.over.is_none();
        let timer = playing.then(|| ctx.run_later(grace, move |game, ctx| game.abandon(seat, ctx)));
        if let Some(Some(occupant)) = self.seats.get_mut(seat) {
            occupant.addr = None;
            occupant.grace = timer;
        }
        if playing {
            let away = ServerMsg::OpponentAway {
                game_id: self.id.clone(),
                seat: Self::seat_name(seat),
                grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
            };
            self.broadcast(&away, None);
        }
    }

    fn player_back(&mut self, seat: usize, addr: SessionHandle, ctx: &mut Context<Self>) {
        // The state first: a resuming session waits for the link before it
        // rejoins its rooms, and `game_state` must come before `room_joined`.
        addr.send(self.state_for(Some(seat)).encode());
        addr.link(GameLink::new(self.id.clone(), ctx.address()));
        let mut was_away = false;
        if let Some(Some(occupant)) = self.seats.get_mut(seat) {
            if let Some(timer) = occupant.grace.take() {
                ctx.cancel_future(timer);
            }
            was_away = occupant.addr.replace(addr).is_none();
        }
        // A takeover of a live connection is no return: nobody saw it go.
        if was_away && self.over.is_none() {
            let back = ServerMsg::OpponentBack {
                game_id: self.id.clone(),
                seat: Self::seat_name(seat),
            };
            let session = self
                .seats
                .get(seat)
                .and_then(Option::as_ref)
                .map(|o| o.session.clone());
            let shared = back.encode();
            for (other, addr) in self.audience() {
                if Some(other) != session.as_deref() {
                    addr.send(shared.clone());
                }
            }
        }
    }

    /// The grace of the player at `seat` ran out.
    fn abandon(&mut self, seat: usize, ctx: &mut Context<Self>) {
        let away = self
            .seats
            .get(seat)
            .and_then(Option::as_ref)
            .is_some_and(|o| o.addr.is_none());
        if self.over.is_none() && away {
            // The opponent wins only by being there: if both stayed away,
            // nobody does.
            let present = |seat: &usize| {
                self.seats
                    .get(*seat)
                    .and_then(Option::as_ref)
                    .is_some_and(|o| o.addr.is_some())
            };
            let winner = self.opponent(seat).filter(present);
            self.finish_with(GameResult::Abandoned, winner, None, ctx);
        }
    }
}

fn occupant(player: Player) -> Occupant {
    Occupant {
        session: player.session,
        name: player.name,
        color: player.color,
        addr: Some(player.addr),
        grace: None,
    }
}

/// The move as the client sent it, with the server's additions inside.
fn merge(mv: &impl Serialize, outcome: &impl Serialize) -> Value {
    let mut played = serde_json::to_value(mv).unwrap_or(Value::Null);
    if let (Value::Object(fields), Ok(Value::Object(extra))) =
        (&mut played, serde_json::to_value(outcome))
    {
        fields.extend(extra);
    }
    played
}

fn move_error(err: MoveError) -> (ErrorCode, String) {
    match err {
        MoveError::GameOver => (ErrorCode::GameOver, "the game is over".to_string()),
        MoveError::NotYourTurn => (ErrorCode::NotYourTurn, "it is not your turn".to_string()),
        MoveError::OutOfRange(message) => (ErrorCode::BadRequest, message),
        MoveError::Illegal(message) => (ErrorCode::IllegalMove, message),
    }
}

impl<R: Rules> Handler<PlayerRequest> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: PlayerRequest, ctx: &mut Context<Self>) {
        match &msg.action {
            Action::Move(fields) => self.on_move(&msg.session, fields, msg.id.as_ref(), ctx),
            Action::Resign => self.on_resign(&msg.session, msg.id.as_ref(), ctx),
        }
    }
}

impl<R: Rules> Handler<TakeSeat> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: TakeSeat, ctx: &mut Context<Self>) {
        self.on_take_seat(msg, ctx);
    }
}

impl<R: Rules> Handler<Watch> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        self.on_watch(msg, ctx);
    }
}

impl<R: Rules> Handler<Presence> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: Presence, ctx: &mut Context<Self>) {
        self.on_presence(msg, ctx);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::session::{Linked, Outbound};

    /// Tic-tac-toe whose every move panics, as a bug in the rules would.
    struct Broken(tictactoe::TicTacToe);

    impl Rules for Broken {
        type Move = tictactoe::TicTacToeMove;
        type Outcome = tictactoe::NoOutcome;
        type Board = <tictactoe::TicTacToe as Rules>::Board;
        type Cell = u8;

        const KIND: GameKind = GameKind::TicTacToe;
        const SEATS: &'static [&'static str] = tictactoe::TicTacToe::SEATS;

        fn new(seed: u64) -> Self {
            Broken(tictactoe::TicTacToe::new(seed))
        }
        fn board(&self) -> &Self::Board {
            self.0.board()
        }
        fn turn(&self) -> Option<usize> {
            self.0.turn()
        }
        fn play(&mut self, _: usize, _: &Self::Move) -> Result<Self::Outcome, MoveError> {
            panic!("a deliberately broken rule");
        }
        fn ending(&self) -> Option<Ending<u8>> {
            self.0.ending()
        }
    }

    /// Stands in for the sessions of a game: keeps every frame sent to them.
    struct Inbox(Arc<Mutex<Vec<Value>>>);

    impl Actor for Inbox {
        type Context = Context<Self>;
    }

    impl Handler<Outbound> for Inbox {
        type Result = ();
        fn handle(&mut self, msg: Outbound, _: &mut Context<Self>) {
            let frame = serde_json::from_str(&msg.0).expect("frames are JSON");
            self.0.lock().expect("inbox lock").push(frame);
        }
    }

    impl Handler<Linked> for Inbox {
        type Result = ();
        fn handle(&mut self, _: Linked, _: &mut Context<Self>) {}
    }

    fn game_with_inbox<R: Rules>(
        lobby: &Addr<Lobby>,
        store: &Addr<Store>,
    ) -> (GameLink, Arc<Mutex<Vec<Value>>>) {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let inbox = Inbox(frames.clone()).start();
        let handle =
            SessionHandle::from_recipients(inbox.clone().recipient(), inbox.recipient(), 1);
        let player = |session: &str| Player {
            session: session.to_string(),
            name: session.to_string(),
            color: "#000000".to_string(),
            addr: handle.clone(),
        };
        let settings = GameSettings {
            reconnect_grace: Duration::from_secs(5),
            linger: Duration::from_secs(5),
        };
        let link = Game::<R>::launch(
            &Workers::new(),
            NewGame {
                id: crate::identity::new_id(crate::identity::GAME_PREFIX),
                watch_key: "watch".to_string(),
                players: vec![player("s_x"), player("s_o")],
                seed: 1,
                settings,
                lobby: lobby.clone(),
                metrics: Arc::new(Metrics::new()),
                store: store.clone(),
                created: None,
            },
        );
        (link, frames)
    }

    fn frame_types(frames: &Mutex<Vec<Value>>) -> Vec<String> {
        let frames = frames.lock().expect("inbox lock");
        frames
            .iter()
            .map(|frame| frame["type"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until `frames` holds `count` frames of type `kind`.
    async fn wait_for(frames: &Mutex<Vec<Value>>, kind: &str, count: usize) -> bool {
        for _ in 0..250 {
            if frame_types(frames)
                .iter()
                .filter(|seen| *seen == kind)
                .count()
                >= count
            {
                return true;
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[actix_rt::test]
    async fn a_panic_in_the_rules_ends_only_that_game() {
        let settings = GameSettings {
            reconnect_grace: Duration::from_secs(5),
            linger: Duration::from_secs(5),
        };
        let room_limits = crate::lobby::RoomLimits {
            max_members: 2,
            max_per_session: 1,
            settings: crate::room::RoomSettings {
                state_request_timeout: Duration::from_secs(1),
                canvas_tick_hz: 1,
                ignore_actions: Arc::new(Vec::new()),
                save_debounce: Duration::from_secs(1),
                store_retry: Duration::from_secs(1),
            },
        };
        let metrics = Arc::new(Metrics::new());
        let conn = store::open(store::IN_MEMORY).expect("an in-memory database opens");
        let store = Store::start(store::IN_MEMORY.to_string(), conn, metrics.clone());
        let workers = Arc::new(Workers::new());
        let lobby = Lobby::new(settings, room_limits, metrics, store.clone(), workers).start();
        let (broken, broken_frames) = game_with_inbox::<Broken>(&lobby, &store);
        let (sound, sound_frames) = game_with_inbox::<tictactoe::TicTacToe>(&lobby, &store);
        let first_move = || PlayerRequest {
            session: "s_x".to_string(),
            action: Action::Move(json!({"type":"move","cell":4})),
            id: None,
        };
        broken.request(first_move());
        sound.request(first_move());
        assert!(
            wait_for(&broken_frames, "game_over", 2).await,
            "both players of the broken game are told"
        );
        let frames = broken_frames.lock().unwrap().clone();
        let error = frames
            .iter()
            .find(|f| f["type"] == "error")
            .expect("the mover gets an error");
        assert_eq!(error["code"], "internal");
        let over = frames
            .iter()
            .find(|f| f["type"] == "game_over")
            .expect("the game ends");
        assert_eq!(
            (&over["result"], &over["winner"]),
            (&json!("abandoned"), &Value::Null)
        );
        // The sound game keeps going after the other one crashed.
        assert!(wait_for(&sound_frames, "moved", 2).await);
        sound.request(PlayerRequest {
            session: "s_o".to_string(),
            action: Action::Move(json!({"cell":0})),
            id: None,
        });
        assert!(
            wait_for(&sound_frames, "moved", 4).await,
            "both players saw both moves"
        );
    }
}
