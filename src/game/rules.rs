//! The [`Rules`] every game implements: a pure state machine that knows
//! nothing of actix, JSON or sockets.

use serde::{de::DeserializeOwned, Serialize};

use crate::protocol::{BotLevel, GameKind, GameResult};

/// A bot thinking about its move: run on a blocking thread, it answers
/// the move (or `None` if the game is over).
pub type Thinker<Move> = Box<dyn FnOnce() -> Option<Move> + Send>;

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
    /// How a bot at `level` chooses the move of the seat to move, on a
    /// copy of the game, drawing its chance from `seed`; `None` for games
    /// bots do not play (match three).
    fn thinker(&self, _level: BotLevel, _seed: u64) -> Option<Thinker<Self::Move>> {
        None
    }
}
