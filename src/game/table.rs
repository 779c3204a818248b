//! The Game actor: one per match, generic over its [`Rules`]. It owns the
//! rules, the seats (and each player's grace while away), the spectators
//! and the move list.
//!
//! Takes [`PlayerRequest`] (moves, resignations) from sessions,
//! [`TakeSeat`] and [`Watch`] from the Lobby, and [`Presence`] from
//! sessions as their connections come and go. Sends frames to players and
//! spectators through their [`SessionHandle`]s, [`GameFinished`] and
//! [`GameClosed`] to whoever started it, and to the store the game as it
//! starts ([`SaveLiveGame`]), each accepted move ([`SaveMove`], awaited
//! before the move is announced, so a restart loses none) and the record
//! when it ends. A game kept in the store is brought back after a restart
//! (`Game::restore`). A panic in the rules ends this game only.
//!
//! A seat may be a bot's: the game has it think on a blocking thread (never
//! its own) when its turn comes, and plays its move after
//! `games.bot_delay_ms`, as if it came from a session.

use std::{
    collections::HashMap,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use actix::prelude::*;
use bytestring::ByteString;
use serde::Serialize;
use serde_json::Value;

use super::rules::{MoveError, Rules};
use crate::{
    config::Config,
    links::{
        Action, GameClosed, GameFinished, GameLink, LiveGame, LivePlayer, Player, PlayerRequest,
        Presence, PresenceChange, Rehome, ResyncPart, Retire, SaveGame, SaveLiveGame, SaveMove,
        SessionHandle, StoreLink, StoredMove, TakeSeat, Watch,
    },
    metrics::Metrics,
    protocol::{
        self, BotLevel, ErrorCode, GameRecord, GameResult, GameStatus, HistoryEntry, PlayerInfo,
        Refusal, RequestId, ServerMsg, StoredPlayer,
    },
    workers::Workers,
};

/// How long games hold seats and linger; from `[games]` in the config.
#[derive(Debug, Clone, Copy)]
pub struct GameSettings {
    /// How long a dropped player's seat is held (`games.reconnect_grace_ms`).
    pub reconnect_grace: Duration,
    /// How long a finished game stays addressable (`games.linger_ms`).
    pub linger: Duration,
    /// Whether games in play are kept in the store for a restart: not
    /// with `store.path = ":memory:"`, which keeps nothing past the process,
    /// unless Redis is the store (a cluster), where another node takes
    /// them over.
    pub keep_in_play: bool,
    /// How long after the move it answers a bot's move comes
    /// (`games.bot_delay_ms`).
    pub bot_delay: Duration,
}

impl GameSettings {
    /// The `[games]` timings of `config`.
    pub fn new(config: &Config) -> GameSettings {
        GameSettings {
            reconnect_grace: Duration::from_millis(config.games.reconnect_grace_ms.get()),
            linger: Duration::from_millis(config.games.linger_ms),
            keep_in_play: !config.store_in_memory() || config.clustered(),
            bot_delay: Duration::from_millis(config.games.bot_delay_ms),
        }
    }
}

/// Everything a new game needs besides its rules.
pub struct NewGame {
    /// The game id.
    pub id: String,
    /// The key that lets anyone watch.
    pub watch_key: String,
    /// The hash of the watch key's secret, as the store keeps it.
    pub watch_hash: String,
    /// Whether `/api/games` lists it (quick matches).
    pub listed: bool,
    /// The players, in seat order; fewer than the seats for a private game
    /// that waits for its opponent.
    pub players: Vec<Player>,
    /// The seed of the game's chance.
    pub seed: u64,
    /// Grace and linger.
    pub settings: GameSettings,
    /// Where the game reports that it has ended.
    pub finished: Recipient<GameFinished>,
    /// Where the game reports that it has stopped.
    pub closed: Recipient<GameClosed>,
    /// Game counters.
    pub metrics: Arc<Metrics>,
    /// Where the finished game is recorded.
    pub store: StoreLink,
    /// For a private game, the creator's `game_created` answer.
    pub created: Option<Created>,
    /// The request `game_start` answers (`play_bot`).
    pub answers: Option<Asked>,
}

/// A private game's `game_created` answer: the game sends it once the
/// creator knows the game's link, and once `published` (if any) says other
/// nodes can find the game, so that its keys work on any node at once.
pub struct Created {
    pub answer: ByteString,
    pub published: Option<Published>,
}

/// Resolves once other nodes can find a new game.
pub type Published = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A session's request, answered by the game.
pub struct Asked {
    /// The asking session.
    pub session: String,
    /// The request's `id`.
    pub id: Option<RequestId>,
}

/// A game in play when the server last stopped, brought back: its moves
/// are played again from its seed, and its players are away until they
/// resume.
pub struct Restoring {
    /// Every accepted move, in order.
    pub moves: Vec<StoredMove>,
    /// When it started.
    pub started_at: SystemTime,
}

/// A seat's occupant.
struct Occupant {
    /// The player's session id.
    session: String,
    /// The display name.
    name: String,
    /// The color.
    color: String,
    /// How to reach the player's session (while away too: it keeps the
    /// frames for its resume).
    addr: SessionHandle,
    /// Set while the player's connection is gone.
    away: bool,
    /// The timer that abandons the game if the player stays away.
    grace: Option<SpawnHandle>,
    /// Set for a bot's seat, at that level: never away, played by the game.
    bot: Option<BotLevel>,
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
/// frames and game links to sessions through their [`SessionHandle`]s,
/// [`GameFinished`] and [`GameClosed`] up through the recipients it was
/// given, and [`SaveGame`] to the store. A panic in the rules ends this game only.
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
    /// The hash of its secret, for the store.
    watch_hash: String,
    /// Whether `/api/games` lists it.
    listed: bool,
    /// Brought back after a restart: the players start away.
    restored: bool,
    /// Grace and linger.
    settings: GameSettings,
    /// Where the game reports that it has ended.
    finished: Recipient<GameFinished>,
    /// Where the game reports that it has stopped.
    closed: Recipient<GameClosed>,
    /// Game counters.
    metrics: Arc<Metrics>,
    /// Where the finished game is recorded.
    store: StoreLink,
    /// The seed the rules were made with.
    seed: u64,
    /// When all seats were first filled.
    started_at: Option<SystemTime>,
    /// A private game's `game_created` answer, until it is sent.
    created: Option<Created>,
    /// The request `game_start` answers, until it is sent.
    answers: Option<Asked>,
}

impl<R: Rules> Actor for Game<R> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.metrics.game_started(R::KIND);
        let link = self.link(ctx);
        for seat in self.seats.iter().flatten() {
            seat.addr.link_game(link.clone());
        }
        if self.restored {
            self.await_players(ctx);
            return self.bot_turn(ctx);
        }
        let published = self
            .created
            .as_mut()
            .and_then(|created| created.published.take());
        match published {
            // Nothing else is handled until the game can be found.
            Some(published) => ctx.wait(
                published
                    .into_actor(self)
                    .map(|(), game, ctx| game.open(ctx)),
            ),
            None => self.open(ctx),
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.metrics.game_stopped(R::KIND);
        self.closed.do_send(GameClosed {
            game_id: self.id.clone(),
        });
    }
}

impl<R: Rules> Game<R> {
    /// Answers a private game's creator, after the link (so that a move
    /// sent on `game_created` finds the game) and before `game_start` (a
    /// match three game starts at once); starts the game once it is full.
    fn open(&mut self, ctx: &mut Context<Self>) {
        if let Some(created) = self.created.take() {
            let creator = self.seats.first().and_then(Option::as_ref);
            if let Some(creator) = creator {
                creator.addr.answer(created.answer);
            }
        }
        if self.is_full() {
            let answers = self.answers.take();
            let cause = answers
                .as_ref()
                .map(|asked| (asked.session.as_str(), asked.id.as_ref()));
            self.begin(cause, ctx);
        }
    }

    pub(super) fn launch(workers: &Workers, new: NewGame) -> GameLink {
        let game = Game::new(new, R::new);
        let id = game.id.clone();
        let addr = workers.start(|_| game);
        GameLink::new(id, R::KIND, &addr)
    }

    /// Brings back a game in play: its moves are played again; its
    /// players are away until they resume. Fails if the moves no longer
    /// replay (a store from other rules).
    pub(super) fn restore(
        workers: &Workers,
        new: NewGame,
        restoring: Restoring,
    ) -> Result<GameLink, String> {
        let mut rules = R::new(new.seed);
        let moves = replay(&mut rules, &restoring.moves)?;
        if rules.ending().is_some() {
            return Err("its moves end the game".to_string());
        }
        let mut game = Game::new(new, |_| rules);
        game.moves = moves;
        game.restored = true;
        game.started_at = Some(restoring.started_at);
        for occupant in game.seats.iter_mut().flatten() {
            occupant.away = occupant.bot.is_none();
        }
        let id = game.id.clone();
        let addr = workers.start(|_| game);
        Ok(GameLink::new(id, R::KIND, &addr))
    }

    fn new(new: NewGame, rules: impl FnOnce(u64) -> R) -> Game<R> {
        let mut seats: Vec<Option<Occupant>> =
            new.players.into_iter().map(occupant).map(Some).collect();
        seats.resize_with(R::SEATS.len(), || None);
        Game {
            id: new.id,
            rules: rules(new.seed),
            seats,
            spectators: HashMap::new(),
            moves: Vec::new(),
            over: None,
            watch_key: new.watch_key,
            watch_hash: new.watch_hash,
            listed: new.listed,
            restored: false,
            settings: new.settings,
            finished: new.finished,
            closed: new.closed,
            metrics: new.metrics,
            store: new.store,
            seed: new.seed,
            started_at: None,
            created: new.created,
            answers: new.answers,
        }
    }

    /// A restored game's players are away: each has the reconnect grace,
    /// from now, to resume.
    fn await_players(&mut self, ctx: &mut Context<Self>) {
        let grace = self.settings.reconnect_grace;
        for (seat, occupant) in self.seats.iter_mut().enumerate() {
            if let Some(occupant) = occupant.as_mut().filter(|occupant| occupant.away) {
                let abandon =
                    move |game: &mut Self, ctx: &mut Context<Self>| game.abandon(seat, ctx);
                occupant.grace = Some(ctx.run_later(grace, abandon));
            }
        }
    }

    /// Keeps the game, now started, in the store: a restart loses none.
    fn keep(&self) {
        if !self.settings.keep_in_play {
            return;
        }
        let players = self.seats.iter().flatten().map(|occupant| LivePlayer {
            session: occupant.session.clone(),
            name: occupant.name.clone(),
            color: occupant.color.clone(),
            bot: occupant.bot,
        });
        self.store.save_live_game(SaveLiveGame(LiveGame {
            game_id: self.id.clone(),
            game: R::KIND,
            seed: self.seed,
            players: players.collect(),
            listed: self.listed,
            watch_hash: self.watch_hash.clone(),
            watch_key: self.listed.then(|| self.watch_key.clone()),
            started_at: protocol::rfc3339(self.started_at.unwrap_or_else(SystemTime::now)),
        }));
    }

    /// The link sessions use to reach this game.
    fn link(&self, ctx: &Context<Self>) -> GameLink {
        GameLink::new(self.id.clone(), R::KIND, &ctx.address())
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
                    bot: occupant.bot.is_some(),
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
            .and_then(|seat| Some(&self.seats.get(seat)?.as_ref()?.addr));
        seat.or_else(|| self.spectators.get(session))
    }

    /// Every player and spectator (away or not), with the session id.
    fn audience(&self) -> impl Iterator<Item = (&str, &SessionHandle)> {
        let players = self.seats.iter().flatten();
        let players = players.map(|seat| (seat.session.as_str(), &seat.addr));
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
                // The asker's own copy answers its request: at once.
                Some((asker, id)) if asker == session => match id {
                    Some(_) => addr.answer(msg.encode_reply(id)),
                    None => addr.answer(shared.clone()),
                },
                _ => addr.send(shared.clone()),
            }
        }
    }

    fn refuse(&self, session: &str, refusal: &Refusal) {
        if let Some(handle) = self.addr_of(session) {
            handle.refuse(refusal);
        }
    }

    /// Sends `game_start` to every player (with `you`) and spectator.
    fn begin(&mut self, cause: Option<(&str, Option<&RequestId>)>, ctx: &mut Context<Self>) {
        self.started_at = Some(SystemTime::now());
        self.keep();
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
            let addr = &occupant.addr;
            let start = start_for(Some(seat));
            match cause.filter(|(asker, _)| *asker == occupant.session) {
                Some((_, id)) => addr.answer(start.encode_reply(id)),
                None => addr.send(start.encode()),
            }
        }
        let for_spectators = start_for(None).encode();
        for addr in self.spectators.values() {
            addr.send(for_spectators.clone());
        }
        self.bot_turn(ctx);
    }

    /// If the seat to move is a bot's, has it think on a blocking thread
    /// and plays its move once `games.bot_delay_ms` have passed since
    /// now, the moment of the move it answers (never before). A game that
    /// moved on meanwhile (a resignation, an abandon) ignores the answer.
    fn bot_turn(&mut self, ctx: &mut Context<Self>) {
        if self.status() != GameStatus::Playing {
            return;
        }
        let Some(seat) = self.rules.turn() else {
            return;
        };
        let Some(occupant) = self.seats.get(seat).and_then(Option::as_ref) else {
            return;
        };
        let Some(level) = occupant.bot else { return };
        let Some(think) = self.rules.thinker(level, rand::random()) else {
            return;
        };
        let session = occupant.session.clone();
        let number = self.moves.len();
        let delay = actix_rt::time::sleep(self.settings.bot_delay);
        let answer = async move { tokio::join!(delay, super::bot::think(think)).1 };
        ctx.spawn(answer.into_actor(self).map(move |thought, game, ctx| {
            if game.moves.len() != number || game.over.is_some() {
                return;
            }
            let Some(Ok(fields)) = thought.map(|mv| serde_json::to_value(&mv)) else {
                return game.bot_failed("found no move", ctx);
            };
            game.on_move(&session, &fields, None, ctx);
            // A refused move went to the bot's seat, which reads nothing.
            if game.moves.len() == number && game.over.is_none() {
                game.bot_failed("chose a move the rules refuse", ctx);
            }
        }));
    }

    /// Ends a game that can no longer be played (its rules or its bot
    /// failed): abandoned, with no winner.
    fn end_broken(&mut self, ctx: &mut Context<Self>) {
        self.finish(
            GameResult::Abandoned,
            None,
            Value::Array(Vec::new()),
            None,
            ctx,
        );
    }

    /// The bot failed to move (a bug): nobody would move again, so the
    /// game ends, abandoned with no winner.
    fn bot_failed(&mut self, why: &str, ctx: &mut Context<Self>) {
        log::error!(
            "game {} ({}): the bot {why}; the game is abandoned",
            self.id,
            R::KIND.as_str()
        );
        self.end_broken(ctx);
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
            Err((code, message)) => {
                return self.refuse(session, &Refusal::new(code, "move", message).with_id(id))
            }
        };
        let mv: R::Move = match protocol::move_fields(fields) {
            Ok(mv) => mv,
            Err(message) => {
                return self.refuse(
                    session,
                    &Refusal::new(ErrorCode::BadRequest, "move", message).with_id(id),
                )
            }
        };
        let rules = &mut self.rules;
        let played = std::panic::catch_unwind(AssertUnwindSafe(|| rules.play(seat, &mv)));
        match played {
            Ok(Ok(outcome)) => self.accept(seat, &mv, &outcome, session, id, ctx),
            Ok(Err(err)) => {
                let (code, message) = move_error(err);
                self.refuse(session, &Refusal::new(code, "move", message).with_id(id));
            }
            Err(_) => self.crash(session, id, ctx),
        }
    }

    /// Keeps an accepted move in the store and, once it is written (a
    /// `kill -9` cannot lose it then), announces it; the game takes no
    /// other message meanwhile, so moves keep their order. A store that
    /// keeps nothing (`:memory:`) is not asked.
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
        if !self.settings.keep_in_play {
            return self.announce(seat, played, session, id, ctx);
        }
        let save = self.store.save_move(SaveMove {
            game_id: self.id.clone(),
            number: self.moves.len(),
            stored: StoredMove {
                seat,
                mv: serde_json::to_value(mv).unwrap_or(Value::Null),
            },
        });
        let (session, id) = (session.to_string(), id.cloned());
        let announce = save.into_actor(self).map(move |written, game, ctx| {
            if let Ok(Err(err)) = written {
                // Kept by the store to be tried again; the game goes on.
                log::warn!("game {}: {err}", game.id);
            }
            game.announce(seat, played, &session, id.as_ref(), ctx);
        });
        ctx.wait(announce);
    }

    fn announce(
        &mut self,
        seat: usize,
        played: Value,
        session: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let moved = ServerMsg::Moved {
            game_id: self.id.clone(),
            seat: Self::seat_name(seat),
            played,
            board: self.board(),
            turn: self.turn(),
        };
        self.broadcast(&moved, Some((session, id)));
        match self.rules.ending() {
            Some(ending) => {
                let line = serde_json::to_value(&ending.line).unwrap_or(Value::Array(Vec::new()));
                self.finish(ending.result, ending.winner, line, ending.score, ctx);
            }
            None => self.bot_turn(ctx),
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
        self.refuse(
            session,
            &Refusal::new(ErrorCode::Internal, "move", message).with_id(id),
        );
        self.end_broken(ctx);
    }

    fn on_resign(&mut self, session: &str, id: Option<&RequestId>, ctx: &mut Context<Self>) {
        let seat = match self.check_turn(session, false) {
            Ok(seat) => seat,
            Err((code, message)) => {
                return self.refuse(session, &Refusal::new(code, "resign", message).with_id(id))
            }
        };
        let winner = self.opponent(seat).filter(|_| self.is_full());
        self.finish_with(GameResult::Forfeit, winner, Some((session, id)), ctx);
    }

    /// An operator ends the game: abandoned, with no winner (recorded if
    /// it had started).
    fn on_end(&mut self, ctx: &mut Context<Self>) {
        if self.over.is_none() {
            self.finish_with(GameResult::Abandoned, None, None, ctx);
        }
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
        // Reported before anyone hears of it: a player's next request to
        // the Lobby (say, a new game) finds this one no longer counting.
        self.finished.do_send(GameFinished {
            game_id: self.id.clone(),
        });
        self.metrics.game_finished(result);
        self.record(result, winner);
        self.broadcast(&over, cause);
        ctx.run_later(self.settings.linger, |_, ctx| ctx.stop());
    }

    /// Hands a started game's record to the store.
    fn record(&self, result: GameResult, winner: Option<usize>) {
        let Some(started_at) = self.started_at else {
            return;
        };
        let players = self.players().iter().map(StoredPlayer::from).collect();
        self.store.save_game(SaveGame(GameRecord {
            entry: HistoryEntry {
                game_id: self.id.clone(),
                game: R::KIND,
                players,
                result,
                winner: winner.map(|seat| Self::seat_name(seat).to_string()),
                started_at: protocol::rfc3339(started_at),
                ended_at: protocol::rfc3339(SystemTime::now()),
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
            let message = "that game has no free seat";
            let refusal = Refusal::new(ErrorCode::NotFound, "join_game", message);
            msg.player.handle.refuse(&refusal.with_id(msg.id.as_ref()));
            return;
        };
        msg.player.handle.link_game(self.link(ctx));
        let session = msg.player.session.clone();
        // A guest who watched the waiting game now plays it: one copy of
        // each event, the player's.
        self.spectators.remove(&session);
        if let Some(slot) = self.seats.get_mut(seat) {
            *slot = Some(occupant(msg.player));
        }
        if self.is_full() {
            self.begin(Some((&session, msg.id.as_ref())), ctx);
        }
    }

    fn on_watch(&mut self, msg: Watch, ctx: &mut Context<Self>) {
        msg.handle.link_game(self.link(ctx));
        let seat = self.seat_of(&msg.session);
        msg.handle
            .answer(self.state_for(seat).encode_reply(msg.id.as_ref()));
        if seat.is_none() {
            self.spectators.insert(msg.session, msg.handle);
        }
    }

    fn on_presence(&mut self, msg: Presence, ctx: &mut Context<Self>) {
        let Some(seat) = self.seat_of(&msg.session) else {
            return self.spectator_presence(&msg.session, msg.change);
        };
        match msg.change {
            PresenceChange::Away => self.player_away(seat, ctx),
            PresenceChange::Back { resync } => self.player_back(seat, resync, ctx),
            // The session's grace ran out; the seat's own timer ends the
            // game with it, unless the seat was never seen away.
            PresenceChange::Gone => {
                let never_away = self
                    .seats
                    .get(seat)
                    .and_then(Option::as_ref)
                    .is_some_and(|occupant| !occupant.away);
                if never_away {
                    self.player_away(seat, ctx);
                    self.abandon(seat, ctx);
                }
            }
        }
    }

    fn spectator_presence(&mut self, session: &str, change: PresenceChange) {
        match change {
            PresenceChange::Gone => {
                self.spectators.remove(session);
            }
            PresenceChange::Back { resync: true } => {
                if let Some(addr) = self.spectators.get(session) {
                    let part = ResyncPart::Game(self.id.clone());
                    addr.resynced(part, vec![self.state_for(None).encode()]);
                }
            }
            PresenceChange::Away | PresenceChange::Back { resync: false } => {}
        }
    }

    fn player_away(&mut self, seat: usize, ctx: &mut Context<Self>) {
        let grace = self.settings.reconnect_grace;
        let playing = self.over.is_none();
        let Some(Some(occupant)) = self.seats.get_mut(seat) else {
            return;
        };
        if occupant.away || occupant.bot.is_some() {
            return;
        }
        occupant.away = true;
        if !playing {
            return;
        }
        occupant.grace = Some(ctx.run_later(grace, move |game, ctx| game.abandon(seat, ctx)));
        let away = ServerMsg::OpponentAway {
            game_id: self.id.clone(),
            seat: Self::seat_name(seat),
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        };
        self.tell_others(seat, &away);
    }

    /// The player at `seat` has a connection again; with `resync`, it gets
    /// the game's state as its session's resync (every `game_state` before
    /// any `room_joined`, then live frames).
    fn player_back(&mut self, seat: usize, resync: bool, ctx: &mut Context<Self>) {
        let Some(Some(occupant)) = self.seats.get_mut(seat) else {
            return;
        };
        if let Some(timer) = occupant.grace.take() {
            ctx.cancel_future(timer);
        }
        let was_away = std::mem::replace(&mut occupant.away, false);
        if resync {
            let addr = occupant.addr.clone();
            let part = ResyncPart::Game(self.id.clone());
            addr.resynced(part, vec![self.state_for(Some(seat)).encode()]);
        }
        if was_away && self.over.is_none() {
            let back = ServerMsg::OpponentBack {
                game_id: self.id.clone(),
                seat: Self::seat_name(seat),
            };
            self.tell_others(seat, &back);
        }
    }

    /// Sends `msg` to everyone in the game but the player at `seat`.
    fn tell_others(&self, seat: usize, msg: &ServerMsg) {
        let session = self.seats.get(seat).and_then(Option::as_ref);
        let session = session.map(|occupant| occupant.session.as_str());
        let shared = msg.encode();
        for (other, addr) in self.audience() {
            if Some(other) != session {
                addr.send(shared.clone());
            }
        }
    }

    /// The grace of the player at `seat` ran out.
    fn abandon(&mut self, seat: usize, ctx: &mut Context<Self>) {
        let away = self
            .seats
            .get(seat)
            .and_then(Option::as_ref)
            .is_some_and(|o| o.away);
        if self.over.is_none() && away {
            // The opponent wins only by being there: if both stayed away,
            // nobody does.
            let present = |seat: &usize| {
                self.seats
                    .get(*seat)
                    .and_then(Option::as_ref)
                    .is_some_and(|o| !o.away)
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
        addr: player.handle,
        away: false,
        grace: None,
        bot: player.bot,
    }
}

/// Plays `stored` again on `rules`; returns each move as `moved.move`
/// showed it.
fn replay<R: Rules>(rules: &mut R, stored: &[StoredMove]) -> Result<Vec<Value>, String> {
    let mut moves = Vec::with_capacity(stored.len());
    for (number, stored) in stored.iter().enumerate() {
        let failed = |why: String| format!("move {}: {why}", number + 1);
        let mv: R::Move = protocol::move_fields(&stored.mv).map_err(failed)?;
        let played = std::panic::catch_unwind(AssertUnwindSafe(|| rules.play(stored.seat, &mv)));
        let outcome = match played {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(err)) => return Err(failed(format!("{err:?}"))),
            Err(_) => return Err(failed("the rules panicked".to_string())),
        };
        moves.push(merge(&mv, &outcome));
    }
    Ok(moves)
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
            Action::End => self.on_end(ctx),
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

impl<R: Rules> Handler<Retire> for Game<R> {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl<R: Rules> Handler<Rehome> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: Rehome, ctx: &mut Context<Self>) {
        let link = self.link(ctx);
        if !msg.resync {
            // Handed over whole: only the way to it changes.
            match self.seat_of(&msg.session) {
                Some(seat) => {
                    if let Some(Some(occupant)) = self.seats.get_mut(seat) {
                        occupant.addr = msg.handle;
                    }
                }
                None => {
                    if let Some(spectator) = self.spectators.get_mut(&msg.session) {
                        *spectator = msg.handle;
                    }
                }
            }
            return;
        }
        match self.seat_of(&msg.session) {
            Some(seat) => {
                if let Some(Some(occupant)) = self.seats.get_mut(seat) {
                    occupant.addr = msg.handle.clone();
                }
                msg.handle.link_game(link);
                self.player_back(seat, true, ctx);
            }
            None if self.spectators.contains_key(&msg.session) => {
                msg.handle.link_game(link);
                self.spectators.insert(msg.session.clone(), msg.handle);
                let back = PresenceChange::Back { resync: true };
                self.spectator_presence(&msg.session, back);
            }
            None => {}
        }
    }
}

impl<R: Rules> Handler<Presence> for Game<R> {
    type Result = ();

    fn handle(&mut self, msg: Presence, ctx: &mut Context<Self>) {
        self.on_presence(msg, ctx);
    }
}
