//! The computer as an opponent (PROTOCOL.md, *Playing the computer*): how
//! a bot chooses its move at tic-tac-toe and connect four, at three
//! levels. Plain code beside the rules, with no actix: the Game actor runs
//! it on a blocking thread, never on its own.
//!
//! - `easy` plays a random legal move, except that it takes a win in one;
//! - `medium` also blocks the opponent's win in one and prefers the centre;
//! - `hard` plays tic-tac-toe perfectly (a full minimax) and searches
//!   connect four with alpha-beta on bitboards: always [`MIN_DEPTH`]
//!   plies, then deeper while its [`BUDGET`] of thinking time lasts.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use tokio::sync::Semaphore;

use super::{
    connect4::{Connect4, Connect4Move, Disc},
    rules::Thinker,
    tictactoe::{Mark, TicTacToe, TicTacToeMove, LINES},
    Rules,
};
use crate::protocol::BotLevel;

/// Rules a bot can play: it chooses the move of the seat whose turn it
/// is, or `None` when the game is over.
pub trait BotPlay: Rules + Clone {
    /// The move `level` plays now; chance comes from `rng` only.
    fn bot_move(&self, level: BotLevel, rng: &mut impl Rng) -> Option<Self::Move>;
}

/// How the bot at `level` chooses its move in `game`, on a copy, with its
/// chance drawn from `seed` ([`Rules::thinker`] of the games bots play).
pub fn thinker<R: BotPlay>(game: &R, level: BotLevel, seed: u64) -> Thinker<R::Move> {
    let game = game.clone();
    Box::new(move || game.bot_move(level, &mut StdRng::seed_from_u64(seed)))
}

/// Bots thinking at once: one per core, so that they never take the
/// cores from the actors; others wait their turn.
static THINKING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Semaphore::new(cores)
});

/// Runs `thinker` on a blocking thread once a core is free for it: the
/// move, or `None` if it found none or failed.
pub async fn think<Move: Send + 'static>(thinker: Thinker<Move>) -> Option<Move> {
    let _turn = THINKING.acquire().await.ok()?;
    actix_rt::task::spawn_blocking(thinker).await.ok().flatten()
}

// ---------------------------------------------------------------- tic-tac-toe

/// A tic-tac-toe board as the bot sees it.
type Cells = [Option<Mark>; 9];

fn mark_of(seat: usize) -> Mark {
    if seat == 0 {
        Mark::X
    } else {
        Mark::O
    }
}

fn other(mark: Mark) -> Mark {
    match mark {
        Mark::X => Mark::O,
        Mark::O => Mark::X,
    }
}

fn has_line(cells: &Cells, mark: Mark) -> bool {
    LINES
        .iter()
        .any(|line| line.iter().all(|&cell| cells[cell] == Some(mark)))
}

fn free_cells(cells: &Cells) -> Vec<usize> {
    (0..9).filter(|&cell| cells[cell].is_none()).collect()
}

/// A free cell where `mark` completes a line, if any.
fn winning_cell(cells: &Cells, mark: Mark) -> Option<usize> {
    free_cells(cells).into_iter().find(|&cell| {
        let mut after = *cells;
        after[cell] = Some(mark);
        has_line(&after, mark)
    })
}

/// The value of `cells` for `mark`, to move: +1 a win, 0 a draw, -1 a
/// loss, with perfect play by both.
fn minimax(cells: &mut Cells, mark: Mark) -> i8 {
    let free = free_cells(cells);
    if free.is_empty() {
        return 0;
    }
    let mut best = -1;
    for cell in free {
        cells[cell] = Some(mark);
        let value = if has_line(cells, mark) {
            1
        } else {
            -minimax(cells, other(mark))
        };
        cells[cell] = None;
        if value > best {
            best = value;
            if best == 1 {
                break;
            }
        }
    }
    best
}

impl BotPlay for TicTacToe {
    fn bot_move(&self, level: BotLevel, rng: &mut impl Rng) -> Option<TicTacToeMove> {
        let mark = mark_of(self.turn()?);
        let cells = *self.board();
        let free = free_cells(&cells);
        let cell = match level {
            BotLevel::Easy => winning_cell(&cells, mark).or_else(|| free.choose(rng).copied()),
            BotLevel::Medium => winning_cell(&cells, mark)
                .or_else(|| winning_cell(&cells, other(mark)))
                .or_else(|| cells[4].is_none().then_some(4))
                .or_else(|| free.choose(rng).copied()),
            BotLevel::Hard => {
                // Every cell of the best value; chance picks among them, so
                // the bot is not the same every game.
                let valued: Vec<(usize, i8)> = free
                    .iter()
                    .map(|&cell| {
                        let mut after = cells;
                        after[cell] = Some(mark);
                        let value = if has_line(&after, mark) {
                            1
                        } else {
                            -minimax(&mut after, other(mark))
                        };
                        (cell, value)
                    })
                    .collect();
                let best = valued.iter().map(|&(_, value)| value).max()?;
                let best: Vec<usize> = valued
                    .into_iter()
                    .filter(|&(_, value)| value == best)
                    .map(|(cell, _)| cell)
                    .collect();
                best.choose(rng).copied()
            }
        }?;
        Some(TicTacToeMove { cell: cell as u8 })
    }
}

// ---------------------------------------------------------------- connect four

/// Columns and rows of connect four.
const COLUMNS: usize = 7;
const ROWS: usize = 6;
/// Bits per column in a bitboard: the rows and one guard bit on top.
const STRIDE: usize = ROWS + 1;
/// Plies the hard bot always searches ahead (its own move included).
const MIN_DEPTH: u32 = 8;
/// Thinking time after which the hard bot stops searching deeper: a
/// deeper search it cannot finish in time is dropped for the last one it
/// finished (PROTOCOL.md asks for an answer within 100 ms of thinking).
const BUDGET: Duration = Duration::from_millis(60);
/// Nodes searched between looks at the clock.
const CLOCK_EVERY: u64 = 4096;
/// Columns from the centre out: better moves first, for more cut-offs.
const ORDER: [usize; COLUMNS] = [3, 2, 4, 1, 5, 0, 6];
/// The value of a win: more for a sooner one.
const WIN: i32 = 10_000;

/// A connect four position as two bitboards, bit `column * STRIDE + row`.
#[derive(Clone, Copy)]
struct Position {
    /// The discs of the side to move.
    mine: u64,
    /// Every disc.
    all: u64,
    /// Discs played.
    moves: u32,
}

fn bottom(column: usize) -> u64 {
    1 << (column * STRIDE)
}

fn top(column: usize) -> u64 {
    1 << (column * STRIDE + ROWS - 1)
}

/// Every playable cell of the board (not the guard bits).
const BOARD: u64 = {
    let mut mask = 0;
    let mut column = 0;
    while column < COLUMNS {
        mask |= ((1 << ROWS) - 1) << (column * STRIDE);
        column += 1;
    }
    mask
};

/// Whether `discs` holds four in a row.
fn four(discs: u64) -> bool {
    [1, STRIDE, STRIDE - 1, STRIDE + 1].iter().any(|&shift| {
        let pairs = discs & (discs >> shift);
        pairs & (pairs >> (2 * shift)) != 0
    })
}

/// The empty cells where `discs` would make four in a row (the bitboard
/// method of Pascal Pons' connect four solver).
fn threats(discs: u64, all: u64) -> u64 {
    // Three above each other, and the cell on top.
    let mut cells = (discs << 1) & (discs << 2) & (discs << 3);
    // Across and both diagonals: the cell at either end of three, or in
    // the gap of two and one.
    for shift in [STRIDE, STRIDE - 1, STRIDE + 1] {
        let before = (discs << shift) & (discs << (2 * shift));
        cells |= before & (discs << (3 * shift));
        cells |= before & (discs >> shift);
        let after = (discs >> shift) & (discs >> (2 * shift));
        cells |= after & (discs << shift);
        cells |= after & (discs >> (3 * shift));
    }
    cells & BOARD & !all
}

impl Position {
    fn of(game: &Connect4, seat: usize) -> Position {
        let me = if seat == 0 { Disc::Red } else { Disc::Yellow };
        let mut position = Position {
            mine: 0,
            all: 0,
            moves: 0,
        };
        for (row, discs) in game.board().iter().enumerate() {
            for (column, disc) in discs.iter().enumerate() {
                let Some(disc) = disc else { continue };
                let bit = 1 << (column * STRIDE + row);
                position.all |= bit;
                position.moves += 1;
                if *disc == me {
                    position.mine |= bit;
                }
            }
        }
        position
    }

    fn can_play(&self, column: usize) -> bool {
        self.all & top(column) == 0
    }

    /// The cell a disc dropped into `column` lands on.
    fn landing(&self, column: usize) -> u64 {
        (self.all + bottom(column)) & (((1 << ROWS) - 1) << (column * STRIDE))
    }

    fn wins(&self, column: usize) -> bool {
        four(self.mine | self.landing(column))
    }

    /// Plays `column`; the other side is to move after.
    fn play(&mut self, column: usize) {
        self.mine ^= self.all;
        self.all |= self.all + bottom(column);
        self.moves += 1;
    }

    fn playable(&self) -> impl Iterator<Item = usize> + '_ {
        ORDER.into_iter().filter(|&column| self.can_play(column))
    }

    /// How good the position is for the side to move, short of a win:
    /// its cells that would make four (more if playable now, or sitting on
    /// a row that suits it) against the opponent's, and its discs in the
    /// centre column.
    fn heuristic(&self) -> i32 {
        let theirs = self.mine ^ self.all;
        let playable = (self.all + BOARD_BOTTOM) & BOARD;
        let mine = threats(self.mine, self.all);
        let against = threats(theirs, self.all);
        let centre = 0x3f_u64 << (3 * STRIDE);
        let score = |cells: u64, discs: u64| {
            4 * (cells.count_ones() as i32)
                + 6 * ((cells & playable).count_ones() as i32)
                + (discs & centre).count_ones() as i32
        };
        score(mine, self.mine) - score(against, theirs)
    }

    /// Negamax with alpha-beta: the value of the position for the side to
    /// move, searching `depth` more plies (meaningless once `search` has
    /// run out of time).
    fn negamax(&self, depth: u32, mut alpha: i32, beta: i32, search: &mut Search) -> i32 {
        if search.out_of_time() {
            return 0;
        }
        if self.moves as usize == ROWS * COLUMNS {
            return 0;
        }
        if self.playable().any(|column| self.wins(column)) {
            return WIN - self.moves as i32;
        }
        if depth == 0 {
            return self.heuristic();
        }
        let mut best = -WIN * 2;
        for column in self.playable() {
            let mut next = *self;
            next.play(column);
            let value = -next.negamax(depth - 1, -beta, -alpha, search);
            best = best.max(value);
            alpha = alpha.max(value);
            if alpha >= beta {
                break;
            }
        }
        best
    }
}

/// The clock of one search: none for the depth that must finish.
struct Search {
    /// When to give up; `None` searches to the end.
    deadline: Option<Instant>,
    /// Nodes searched so far.
    nodes: u64,
    /// Set once the deadline has passed: every value since is meaningless.
    timed_out: bool,
}

impl Search {
    fn out_of_time(&mut self) -> bool {
        self.nodes += 1;
        if self.nodes.is_multiple_of(CLOCK_EVERY) {
            if let Some(deadline) = self.deadline {
                self.timed_out |= Instant::now() >= deadline;
            }
        }
        self.timed_out
    }
}

/// The hard bot's column: the best of `playable` after a search of
/// [`MIN_DEPTH`] plies, then of each deeper search finished within
/// [`BUDGET`]; among equals, the most central.
fn deepening(position: Position, playable: &[usize]) -> Option<usize> {
    let started = Instant::now();
    let mut chosen = None;
    for depth in MIN_DEPTH..=(ROWS * COLUMNS) as u32 {
        let deadline = (depth > MIN_DEPTH).then_some(started + BUDGET);
        let mut search = Search {
            deadline,
            nodes: 0,
            timed_out: false,
        };
        let mut best: Option<(i32, usize)> = None;
        for &column in playable {
            let mut next = position;
            next.play(column);
            let value = -next.negamax(depth - 1, -WIN * 2, WIN * 2, &mut search);
            if best.is_none_or(|(top, _)| value > top) {
                best = Some((value, column));
            }
        }
        if search.timed_out {
            break;
        }
        chosen = best.map(|(_, column)| column);
        // A win or a loss found is final; a next depth that would take
        // about as long as this one again, times the branching, would not
        // fit in what is left.
        let decided = best.is_some_and(|(value, _)| value.abs() > WIN / 2);
        let spent = started.elapsed();
        if decided || spent * 4 > BUDGET.saturating_sub(spent) {
            break;
        }
    }
    chosen
}

/// The bottom cell of every column.
const BOARD_BOTTOM: u64 = {
    let mut mask = 0;
    let mut column = 0;
    while column < COLUMNS {
        mask |= 1 << (column * STRIDE);
        column += 1;
    }
    mask
};

/// How much a medium bot likes a column: the centre most.
const CENTRE_WEIGHT: [u32; COLUMNS] = [1, 2, 3, 4, 3, 2, 1];

impl BotPlay for Connect4 {
    fn bot_move(&self, level: BotLevel, rng: &mut impl Rng) -> Option<Connect4Move> {
        let position = Position::of(self, self.turn()?);
        let playable: Vec<usize> = position.playable().collect();
        let win = playable.iter().copied().find(|&c| position.wins(c));
        let theirs = {
            let mut swapped = position;
            swapped.mine ^= swapped.all;
            swapped
        };
        let block = playable.iter().copied().find(|&c| theirs.wins(c));
        let column = match level {
            BotLevel::Easy => win.or_else(|| playable.choose(rng).copied()),
            BotLevel::Medium => win.or(block).or_else(|| {
                playable
                    .choose_weighted(rng, |&c| CENTRE_WEIGHT[c])
                    .ok()
                    .copied()
            }),
            BotLevel::Hard => win.or_else(|| deepening(position, &playable)),
        }?;
        Some(Connect4Move {
            column: column as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rand::{rngs::StdRng, SeedableRng};

    use super::*;
    use crate::protocol::GameResult;

    /// Plays one game between two choosers; the winner's seat, if any.
    fn contest<R: Rules>(
        mut game: R,
        mut choose: impl FnMut(&R, usize) -> R::Move,
    ) -> (Option<usize>, R) {
        while let Some(seat) = game.turn() {
            let mv = choose(&game, seat);
            game.play(seat, &mv).expect("a bot plays legal moves only");
        }
        let ending = game.ending().expect("over");
        (
            (ending.result == GameResult::Win)
                .then_some(ending.winner)
                .flatten(),
            game,
        )
    }

    /// Every position reachable with the hard bot on `bot_seat` and any
    /// moves by the other seat: the bot never loses.
    fn hard_never_loses(game: TicTacToe, bot_seat: usize, rng: &mut StdRng, seen: &mut u32) {
        let Some(seat) = game.turn() else {
            let ending = game.ending().expect("over");
            assert_ne!(
                ending.winner,
                Some(1 - bot_seat),
                "the hard bot lost: {:?}",
                game.board()
            );
            *seen += 1;
            return;
        };
        if seat == bot_seat {
            let mut next = game.clone();
            let mv = game.bot_move(BotLevel::Hard, rng).expect("a move");
            next.play(seat, &mv).expect("legal");
            hard_never_loses(next, bot_seat, rng, seen);
        } else {
            for cell in 0..9u8 {
                let mut next = game.clone();
                if next.play(seat, &TicTacToeMove { cell }).is_ok() {
                    hard_never_loses(next, bot_seat, rng, seen);
                }
            }
        }
    }

    #[test]
    fn hard_tictactoe_never_loses_from_any_position() {
        let mut rng = StdRng::seed_from_u64(7);
        // Every position the other seat can bring about, on either seat,
        // with the bot choosing again at each (its ties are random).
        for bot_seat in [0, 1] {
            for _ in 0..4 {
                let mut games = 0;
                hard_never_loses(TicTacToe::new(0), bot_seat, &mut rng, &mut games);
                assert!(games > 10, "{games} games explored");
            }
        }
        // And from every position with no line yet where it is to move.
        let mut positions = 0;
        for code in 0..3u32.pow(9) {
            let mut cells: Cells = [None; 9];
            let mut n = code;
            for cell in &mut cells {
                *cell = [None, Some(Mark::X), Some(Mark::O)][(n % 3) as usize];
                n /= 3;
            }
            let xs = cells.iter().filter(|c| **c == Some(Mark::X)).count();
            let os = cells.iter().filter(|c| **c == Some(Mark::O)).count();
            let legal = xs == os || xs == os + 1;
            if !legal || has_line(&cells, Mark::X) || has_line(&cells, Mark::O) {
                continue;
            }
            let to_move = if xs == os { Mark::X } else { Mark::O };
            if cells.iter().all(Option::is_some) {
                continue;
            }
            // The value before the bot moves; after its move and best
            // play by both, it must not be worse.
            let value = minimax(&mut cells.clone(), to_move);
            let game = TicTacToe::from_cells(cells);
            let mv = game.bot_move(BotLevel::Hard, &mut rng).expect("a move");
            let mut after = cells;
            after[usize::from(mv.cell)] = Some(to_move);
            let kept = if has_line(&after, to_move) {
                1
            } else {
                -minimax(&mut after, other(to_move))
            };
            assert_eq!(kept, value, "{cells:?}: cell {}", mv.cell);
            positions += 1;
        }
        assert!(positions > 4000, "{positions} positions");
    }

    #[test]
    fn easy_takes_a_win_and_medium_blocks_one() {
        let mut rng = StdRng::seed_from_u64(1);
        // X: 0 1, O: 3 4; X to move wins at 2.
        let game = TicTacToe::from_cells([
            Some(Mark::X),
            Some(Mark::X),
            None,
            Some(Mark::O),
            Some(Mark::O),
            None,
            None,
            None,
            None,
        ]);
        for level in [BotLevel::Easy, BotLevel::Medium, BotLevel::Hard] {
            assert_eq!(game.bot_move(level, &mut rng).unwrap().cell, 2);
        }
        // X: 0 1, O: 4; O to move blocks at 2.
        let game = TicTacToe::from_cells([
            Some(Mark::X),
            Some(Mark::X),
            None,
            None,
            Some(Mark::O),
            None,
            None,
            None,
            None,
        ]);
        for _ in 0..20 {
            assert_eq!(game.bot_move(BotLevel::Medium, &mut rng).unwrap().cell, 2);
        }
        // Medium takes the centre when nothing is pressing.
        let game = TicTacToe::new(0);
        assert_eq!(game.bot_move(BotLevel::Medium, &mut rng).unwrap().cell, 4);
    }

    fn random_column(game: &Connect4, rng: &mut StdRng) -> Connect4Move {
        let free: Vec<u8> = (0..7u8)
            .filter(|&c| game.board()[5][usize::from(c)].is_none())
            .collect();
        Connect4Move {
            column: *free.choose(rng).expect("a free column"),
        }
    }

    #[test]
    fn connect4_bots_take_wins_and_medium_blocks() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut game = Connect4::new(0);
        // Red: 0 1 2 on the bottom row; yellow: 0 1 2 on the next.
        for column in [0, 0, 1, 1, 2, 2] {
            let seat = game.turn().unwrap();
            game.play(seat, &Connect4Move { column }).unwrap();
        }
        for level in [BotLevel::Easy, BotLevel::Medium, BotLevel::Hard] {
            assert_eq!(
                game.bot_move(level, &mut rng).unwrap().column,
                3,
                "{level:?}"
            );
        }
        // Yellow: 0 1 2 on the bottom row; red, to move, blocks at 3.
        let mut game = Connect4::new(0);
        for column in [6, 0, 6, 1, 5, 2] {
            let seat = game.turn().unwrap();
            game.play(seat, &Connect4Move { column }).unwrap();
        }
        for _ in 0..20 {
            assert_eq!(game.bot_move(BotLevel::Medium, &mut rng).unwrap().column, 3);
        }
        assert_eq!(game.bot_move(BotLevel::Hard, &mut rng).unwrap().column, 3);
    }

    /// Hard connect four against random play: 100 games, half as red.
    /// Prints the worst time one move took.
    #[test]
    fn hard_connect4_beats_random_play_every_game() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut worst = Duration::ZERO;
        for game_number in 0..100 {
            let bot_seat = game_number % 2;
            let (winner, game) = contest(Connect4::new(0), |game, seat| {
                if seat == bot_seat {
                    let started = Instant::now();
                    let mv = game.bot_move(BotLevel::Hard, &mut rng).unwrap();
                    worst = worst.max(started.elapsed());
                    mv
                } else {
                    random_column(game, &mut rng)
                }
            });
            assert_eq!(
                winner,
                Some(bot_seat),
                "game {game_number}: {:?}",
                game.board()
            );
        }
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        println!("hard connect four: worst move {worst:?} over 100 games ({build} build)");
    }

    #[test]
    fn hard_connect4_beats_medium_most_games() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut won = 0;
        let games = 40;
        for game_number in 0..games {
            let bot_seat = game_number % 2;
            let (winner, _) = contest(Connect4::new(0), |game, seat| {
                let level = if seat == bot_seat {
                    BotLevel::Hard
                } else {
                    BotLevel::Medium
                };
                game.bot_move(level, &mut rng).unwrap()
            });
            won += usize::from(winner == Some(bot_seat));
        }
        println!("hard connect four won {won} of {games} games against medium");
        assert!(
            won * 100 >= games * 60,
            "hard won {won} of {games} against medium"
        );
    }

    #[test]
    fn the_threat_cells_are_those_that_make_four() {
        // Every cell `threats` names makes four, and every cell that would
        // make four is named, on random boards.
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..300 {
            let mut position = Position::of(&Connect4::new(0), 0);
            for _ in 0..rng.gen_range(0..30) {
                let columns: Vec<usize> = position.playable().collect();
                let Some(&column) = columns.choose(&mut rng) else {
                    break;
                };
                if position.wins(column) {
                    break;
                }
                position.play(column);
            }
            let named = threats(position.mine, position.all);
            for bit in 0..64 {
                let cell = 1u64 << bit;
                if cell & BOARD == 0 || cell & position.all != 0 {
                    continue;
                }
                assert_eq!(
                    named & cell != 0,
                    four(position.mine | cell),
                    "bit {bit} of {:#x}",
                    position.mine
                );
            }
        }
    }
}
