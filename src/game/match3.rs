//! Match three's rules: one player swaps two adjacent gems on an 8×8 board
//! to make lines of three or more equal gems; lines clear and score, the
//! gems above fall, new gems fill from the top, and lines formed by the fall
//! clear too, each cascade step scoring double the one before.
//!
//! Every random gem comes from one ChaCha8 generator seeded by the game's
//! seed, drawn in a fixed order, so a game replays exactly from its seed and
//! moves:
//!
//! - a new board is dealt row by row from the top, each row left to right;
//!   a gem that would complete a line with the two to its left or the two
//!   above it is redrawn, and a whole board without a valid move is dealt
//!   again;
//! - a refill goes column by column from the left, and within a column from
//!   the bottom-most empty cell up.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{
    game::{Ending, MoveError, Rules},
    protocol::{GameKind, GameResult},
};

/// Rows and columns of the board.
pub const SIZE: usize = 8;
/// Gem kinds, numbered `0..KINDS`.
pub const KINDS: u8 = 6;
/// Accepted moves a game lasts at most.
pub const MAX_MOVES: u32 = 30;
/// The shortest run of equal gems that makes a line.
pub const MIN_LINE: usize = 3;
/// Points for a line of [`MIN_LINE`] gems.
pub const LINE_POINTS: u32 = 10;
/// Points for each gem of a line beyond [`MIN_LINE`].
pub const EXTRA_GEM_POINTS: u32 = 10;

/// The only seat, as an index into [`Match3::SEATS`].
const SOLO: usize = 0;
/// Marks a cleared cell until the refill; no board a client sees holds it,
/// because every step refills all it cleared.
const EMPTY: u8 = u8::MAX;

/// The board: rows of gem kinds `0..KINDS`, row 0 at the top; gems fall
/// toward row `SIZE - 1`.
pub type Board = [[u8; SIZE]; SIZE];

/// A move: swap the gems of two orthogonally adjacent cells.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Match3Move {
    /// One cell, as `[row, column]`.
    pub from: [u8; 2],
    /// The cell it swaps with, as `[row, column]`.
    pub to: [u8; 2],
}

/// What an accepted move caused.
#[derive(Serialize, Debug)]
pub struct Match3Outcome {
    /// The cascade, one entry per step; the swap's own clear is the first.
    pub steps: Vec<Step>,
    /// The game's total score so far.
    pub score: u32,
    /// Moves left before the game ends by the move limit.
    pub moves_left: u32,
}

/// One cascade step: clear every line, let the gems fall, refill.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Step {
    /// The cleared cells as `[row, column]`, sorted, each once.
    pub cleared: Vec<[u8; 2]>,
    /// The board after this step's fall and refill.
    pub board: Board,
}

/// A game of match three.
#[derive(Debug, Clone)]
pub struct Match3 {
    /// The gems now; never holds a line between moves.
    board: Board,
    /// The only source of new gems, so the game replays from its seed.
    rng: ChaCha8Rng,
    /// Points scored so far.
    score: u32,
    /// Moves accepted so far.
    moves: u32,
    /// Set once the move limit is reached or no move can make a line.
    over: bool,
}

impl Match3 {
    /// A game on a hand-built board (tests, replays of a stored board); new
    /// gems come from `seed`. The board should hold only kinds `0..KINDS`
    /// and no ready-made line.
    pub fn from_board(board: Board, seed: u64) -> Match3 {
        Match3::start(board, ChaCha8Rng::seed_from_u64(seed))
    }

    /// Points scored so far.
    pub fn score(&self) -> u32 {
        self.score
    }

    /// Moves left before the game ends by the move limit.
    pub fn moves_left(&self) -> u32 {
        MAX_MOVES.saturating_sub(self.moves)
    }

    fn start(board: Board, rng: ChaCha8Rng) -> Match3 {
        Match3 {
            over: !has_valid_move(&board),
            board,
            rng,
            score: 0,
            moves: 0,
        }
    }

    /// Checks `mv` without touching the game, returning its two cells.
    fn check(&self, seat: usize, mv: &Match3Move) -> Result<(Pos, Pos), MoveError> {
        if self.over {
            return Err(MoveError::GameOver);
        }
        if seat != SOLO {
            return Err(MoveError::NotYourTurn);
        }
        let from = Pos::parse("from", mv.from)?;
        let to = Pos::parse("to", mv.to)?;
        if !from.is_adjacent(to) {
            return Err(MoveError::Illegal(
                "`from` and `to` must be orthogonally adjacent".into(),
            ));
        }
        if !makes_line(&self.board, from, to) {
            return Err(MoveError::Illegal(format!(
                "the swap makes no line of {MIN_LINE}"
            )));
        }
        Ok((from, to))
    }

    /// Clears lines until none is left, scoring each step.
    fn cascade(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut multiplier: u32 = 1;
        loop {
            let found = lines(&self.board);
            if found.is_empty() {
                return steps;
            }
            let points: u32 = found.iter().map(|line| line_points(line.len())).sum();
            self.score = self.score.saturating_add(points.saturating_mul(multiplier));
            let cleared = clear(&mut self.board, &found);
            fall(&mut self.board);
            self.refill();
            steps.push(Step {
                cleared,
                board: self.board,
            });
            multiplier = multiplier.saturating_mul(2);
        }
    }

    /// Fills every empty cell in the documented order.
    fn refill(&mut self) {
        for col in 0..SIZE {
            for row in (0..SIZE).rev() {
                if self.board[row][col] == EMPTY {
                    self.board[row][col] = self.rng.gen_range(0..KINDS);
                }
            }
        }
    }
}

impl Rules for Match3 {
    type Move = Match3Move;
    type Outcome = Match3Outcome;
    type Board = Board;
    type Cell = [u8; 2];

    const KIND: GameKind = GameKind::Match3;
    const SEATS: &'static [&'static str] = &["solo"];

    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let board = deal(&mut rng);
        Match3::start(board, rng)
    }

    fn board(&self) -> &Board {
        &self.board
    }

    fn turn(&self) -> Option<usize> {
        (!self.over).then_some(SOLO)
    }

    fn play(&mut self, seat: usize, mv: &Match3Move) -> Result<Match3Outcome, MoveError> {
        let (from, to) = self.check(seat, mv)?;
        self.board = swapped(&self.board, from, to);
        self.moves += 1;
        let steps = self.cascade();
        self.over = self.moves >= MAX_MOVES || !has_valid_move(&self.board);
        Ok(Match3Outcome {
            steps,
            score: self.score,
            moves_left: self.moves_left(),
        })
    }

    fn ending(&self) -> Option<Ending<[u8; 2]>> {
        self.over.then(|| Ending {
            result: GameResult::Finished,
            winner: None,
            line: Vec::new(),
            score: Some(self.score),
        })
    }

    fn score(&self) -> Option<u32> {
        Some(self.score)
    }
}

/// Whether some swap of two adjacent gems would make a line.
pub fn has_valid_move(board: &Board) -> bool {
    find_valid_move(board).is_some()
}

/// The first swap, scanning rows from the top and each row from the left,
/// that would make a line; `None` when the game is stuck.
pub fn find_valid_move(board: &Board) -> Option<Match3Move> {
    let cells = (0..SIZE).flat_map(|row| (0..SIZE).map(move |col| Pos { row, col }));
    cells
        .flat_map(|from| from.forward_neighbours().map(move |to| (from, to)))
        .find(|&(from, to)| makes_line(board, from, to))
        .map(|(from, to)| Match3Move {
            from: from.cell(),
            to: to.cell(),
        })
}

/// A cell known to be on the board, so indexing with it cannot panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    /// Row, 0 at the top.
    row: usize,
    /// Column, 0 at the left.
    col: usize,
}

impl Pos {
    /// Validates a client's `[row, column]`; `field` names it in the error.
    fn parse(field: &str, cell: [u8; 2]) -> Result<Pos, MoveError> {
        let [row, col] = cell.map(usize::from);
        if row < SIZE && col < SIZE {
            return Ok(Pos { row, col });
        }
        let last = SIZE - 1;
        Err(MoveError::OutOfRange(format!(
            "`{field}` row and column must be 0 to {last}, not {cell:?}"
        )))
    }

    /// The cell as the protocol writes it.
    fn cell(self) -> [u8; 2] {
        // Both fit: they are below SIZE.
        [self.row as u8, self.col as u8]
    }

    fn is_adjacent(self, other: Pos) -> bool {
        self.row.abs_diff(other.row) + self.col.abs_diff(other.col) == 1
    }

    /// The neighbours to the right and below: every adjacent pair once.
    fn forward_neighbours(self) -> impl Iterator<Item = Pos> {
        let right = (self.col + 1 < SIZE).then_some(Pos {
            row: self.row,
            col: self.col + 1,
        });
        let below = (self.row + 1 < SIZE).then_some(Pos {
            row: self.row + 1,
            col: self.col,
        });
        right.into_iter().chain(below)
    }
}

fn gem(board: &Board, pos: Pos) -> u8 {
    board[pos.row][pos.col]
}

fn swapped(board: &Board, a: Pos, b: Pos) -> Board {
    let mut next = *board;
    next[a.row][a.col] = gem(board, b);
    next[b.row][b.col] = gem(board, a);
    next
}

/// Whether swapping `a` and `b` puts one of them in a line; swapping equal
/// gems changes nothing, so it never counts.
fn makes_line(board: &Board, a: Pos, b: Pos) -> bool {
    if gem(board, a) == gem(board, b) {
        return false;
    }
    let next = swapped(board, a, b);
    lines(&next)
        .iter()
        .any(|line| line.contains(&a) || line.contains(&b))
}

/// Every maximal horizontal and vertical run of at least [`MIN_LINE`]
/// equal gems; an L or T shape is two lines sharing a cell.
fn lines(board: &Board) -> Vec<Vec<Pos>> {
    let mut found = Vec::new();
    for lane in 0..SIZE {
        found.extend(runs(board, |i| Pos { row: lane, col: i }));
        found.extend(runs(board, |i| Pos { row: i, col: lane }));
    }
    found
}

/// The lines along one row or column, whose `i`-th cell is `at(i)`.
fn runs(board: &Board, at: impl Fn(usize) -> Pos) -> Vec<Vec<Pos>> {
    let mut found = Vec::new();
    let mut start = 0;
    for end in 1..=SIZE {
        if end == SIZE || gem(board, at(end)) != gem(board, at(start)) {
            if end - start >= MIN_LINE {
                found.push((start..end).map(&at).collect());
            }
            start = end;
        }
    }
    found
}

fn line_points(len: usize) -> u32 {
    let extra = u32::try_from(len.saturating_sub(MIN_LINE)).unwrap_or(u32::MAX);
    LINE_POINTS.saturating_add(EXTRA_GEM_POINTS.saturating_mul(extra))
}

/// Empties every cell of `found`, returning them sorted and each once
/// (a cell where two lines cross is cleared once).
fn clear(board: &mut Board, found: &[Vec<Pos>]) -> Vec<[u8; 2]> {
    let mut cells: Vec<Pos> = found.iter().flatten().copied().collect();
    cells.sort();
    cells.dedup();
    for pos in &cells {
        board[pos.row][pos.col] = EMPTY;
    }
    cells.into_iter().map(Pos::cell).collect()
}

/// Drops every gem down its column over the empty cells below it.
fn fall(board: &mut Board) {
    for col in 0..SIZE {
        let gems: Vec<u8> = board
            .iter()
            .map(|cells| cells[col])
            .filter(|&kind| kind != EMPTY)
            .collect();
        let column = std::iter::repeat_n(EMPTY, SIZE - gems.len()).chain(gems);
        for (cells, kind) in board.iter_mut().zip(column) {
            cells[col] = kind;
        }
    }
}

/// A new board with no line and at least one valid move.
fn deal(rng: &mut ChaCha8Rng) -> Board {
    loop {
        let board = deal_without_lines(rng);
        if has_valid_move(&board) {
            return board;
        }
    }
}

fn deal_without_lines(rng: &mut ChaCha8Rng) -> Board {
    let mut board = [[EMPTY; SIZE]; SIZE];
    for row in 0..SIZE {
        for col in 0..SIZE {
            board[row][col] = loop {
                let kind = rng.gen_range(0..KINDS);
                if !completes_line(&board, row, col, kind) {
                    break kind;
                }
            };
        }
    }
    board
}

/// Whether `kind` at `(row, col)` would complete a line with the gems dealt
/// before it: the ones to its left and above.
fn completes_line(board: &Board, row: usize, col: usize, kind: u8) -> bool {
    let left = col + 1 >= MIN_LINE && (1..MIN_LINE).all(|d| board[row][col - d] == kind);
    let above = row + 1 >= MIN_LINE && (1..MIN_LINE).all(|d| board[row - d][col] == kind);
    left || above
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds the hand-built boards refill from; chosen so that no refill
    /// happens to form an extra line, keeping each expected score exact.
    const SEED: u64 = 1;

    /// A board of kinds 0..=3 in 2×2 tiles, with no line and no valid move,
    /// leaving kinds 4 and 5 free to plant lines without accidental matches.
    fn tiles() -> Board {
        let mut board = [[0; SIZE]; SIZE];
        for (row, gems) in board.iter_mut().enumerate() {
            for (col, gem) in gems.iter_mut().enumerate() {
                *gem = ((row % 2) * 2 + col % 2) as u8;
            }
        }
        board
    }

    /// [`tiles`] with `kind` planted at `cells`.
    fn planted(cells: &[[usize; 2]], kind: u8) -> Board {
        let mut board = tiles();
        for &[row, col] in cells {
            board[row][col] = kind;
        }
        board
    }

    /// A board where no swap makes a line: in any five consecutive cells of
    /// a row all kinds differ, and in a column only cells three apart match.
    fn stuck() -> Board {
        let mut board = [[0; SIZE]; SIZE];
        for (row, gems) in board.iter_mut().enumerate() {
            for (col, gem) in gems.iter_mut().enumerate() {
                *gem = ((2 * row + col) % usize::from(KINDS)) as u8;
            }
        }
        board
    }

    fn swap(from: [u8; 2], to: [u8; 2]) -> Match3Move {
        Match3Move { from, to }
    }

    /// Plays `mv` on a hand-built line-free `board`, which must accept it.
    fn play_on(board: Board, mv: Match3Move) -> (Match3, Match3Outcome) {
        assert!(lines(&board).is_empty(), "hand-built board has a line");
        let mut game = Match3::from_board(board, SEED);
        let outcome = game.play(SOLO, &mv).expect("move accepted");
        (game, outcome)
    }

    fn cells(list: &[[u8; 2]]) -> Vec<[u8; 2]> {
        let mut list = list.to_vec();
        list.sort();
        list
    }

    /// Plays `count` valid moves found on the board, returning them.
    fn play_valid(game: &mut Match3, count: usize) -> Vec<Match3Move> {
        (0..count)
            .map(|_| {
                let mv = find_valid_move(game.board()).expect("a valid move");
                game.play(SOLO, &mv).expect("valid move accepted");
                mv
            })
            .collect()
    }

    #[test]
    fn new_boards_have_no_line_and_a_valid_move() {
        for seed in 0..300 {
            let game = Match3::new(seed);
            assert!(lines(game.board()).is_empty(), "seed {seed}");
            assert!(has_valid_move(game.board()), "seed {seed}");
            assert!(game.board().iter().flatten().all(|&gem| gem < KINDS));
            assert_eq!(game.turn(), Some(SOLO));
            assert_eq!(game.ending(), None);
            assert_eq!(game.moves_left(), MAX_MOVES);
        }
    }

    #[test]
    fn same_seed_deals_same_board() {
        assert_eq!(Match3::new(42).board(), Match3::new(42).board());
        assert_ne!(Match3::new(42).board(), Match3::new(43).board());
    }

    #[test]
    fn swap_without_line_is_illegal_and_changes_nothing() {
        let board = planted(&[[4, 0], [4, 1], [5, 2]], 4);
        let mut game = Match3::from_board(board, SEED);
        let err = game.play(SOLO, &swap([0, 0], [0, 1])).unwrap_err();
        assert!(matches!(err, MoveError::Illegal(_)), "{err:?}");
        assert_eq!(*game.board(), board);
        assert_eq!(game.moves_left(), MAX_MOVES);
        assert_eq!(game.score(), 0);
    }

    #[test]
    fn swap_of_equal_gems_is_illegal() {
        let board = planted(&[[4, 0], [4, 1], [5, 1], [5, 2]], 4);
        let mut game = Match3::from_board(board, SEED);
        let err = game.play(SOLO, &swap([4, 1], [5, 1])).unwrap_err();
        assert!(matches!(err, MoveError::Illegal(_)), "{err:?}");
    }

    #[test]
    fn non_adjacent_cells_are_illegal() {
        let mut game = Match3::new(SEED);
        for (from, to) in [([3, 3], [3, 3]), ([3, 3], [4, 4]), ([3, 3], [3, 5])] {
            let err = game.play(SOLO, &swap(from, to)).unwrap_err();
            assert!(matches!(err, MoveError::Illegal(_)), "{from:?} {to:?}");
        }
    }

    #[test]
    fn out_of_range_cells_name_the_field() {
        let mut game = Match3::new(SEED);
        let before = *game.board();
        for (mv, field) in [
            (swap([8, 0], [7, 0]), "from"),
            (swap([0, 255], [0, 0]), "from"),
            (swap([7, 7], [7, 8]), "to"),
            (swap([0, 0], [255, 0]), "to"),
        ] {
            match game.play(SOLO, &mv) {
                Err(MoveError::OutOfRange(text)) => {
                    assert!(text.contains(&format!("`{field}`")), "{text}")
                }
                other => panic!("{mv:?}: {other:?}"),
            }
        }
        assert_eq!(*game.board(), before);
    }

    #[test]
    fn out_of_range_cells_from_json_are_refused() {
        let mv: Match3Move = serde_json::from_str(r#"{"from":[9,0],"to":[8,0]}"#).unwrap();
        let err = Match3::new(SEED).play(SOLO, &mv).unwrap_err();
        assert!(matches!(err, MoveError::OutOfRange(_)), "{err:?}");
    }

    #[test]
    fn another_seat_is_not_your_turn() {
        let mut game = Match3::from_board(planted(&[[4, 0], [4, 1], [5, 2]], 4), SEED);
        let err = game.play(1, &swap([5, 2], [4, 2])).unwrap_err();
        assert_eq!(err, MoveError::NotYourTurn);
    }

    #[test]
    fn line_of_three_scores_ten_and_gems_above_fall() {
        let board = planted(&[[4, 0], [4, 1], [5, 2]], 4);
        let (game, outcome) = play_on(board, swap([5, 2], [4, 2]));
        assert_eq!(outcome.steps.len(), 1);
        let step = &outcome.steps[0];
        assert_eq!(step.cleared, vec![[4, 0], [4, 1], [4, 2]]);
        for row in 1..=4 {
            assert_eq!(step.board[row][..3], board[row - 1][..3], "row {row}");
        }
        let mut below = board;
        below[5][2] = tiles()[4][2];
        assert_eq!(step.board[5..], below[5..]);
        assert_eq!(*game.board(), step.board);
        assert_eq!((outcome.score, outcome.moves_left), (10, MAX_MOVES - 1));
        assert_eq!(game.turn(), Some(SOLO));
    }

    #[test]
    fn line_of_four_scores_twenty() {
        let board = planted(&[[4, 0], [4, 1], [4, 3], [5, 2]], 4);
        let (_, outcome) = play_on(board, swap([5, 2], [4, 2]));
        assert_eq!(outcome.steps.len(), 1);
        assert_eq!(outcome.steps[0].cleared.len(), 4);
        assert_eq!(outcome.score, 20);
    }

    #[test]
    fn line_of_five_scores_thirty() {
        let board = planted(&[[4, 0], [4, 1], [4, 3], [4, 4], [5, 2]], 4);
        let (_, outcome) = play_on(board, swap([5, 2], [4, 2]));
        assert_eq!(outcome.steps.len(), 1);
        assert_eq!(outcome.steps[0].cleared.len(), 5);
        assert_eq!(outcome.score, 30);
    }

    #[test]
    fn l_shape_is_two_lines_sharing_a_cell() {
        let board = planted(&[[4, 0], [4, 1], [2, 2], [3, 2], [5, 2]], 4);
        let (_, outcome) = play_on(board, swap([5, 2], [4, 2]));
        assert_eq!(outcome.steps.len(), 1);
        let expected = cells(&[[2, 2], [3, 2], [4, 0], [4, 1], [4, 2]]);
        assert_eq!(outcome.steps[0].cleared, expected);
        assert_eq!(outcome.score, 20);
    }

    #[test]
    fn cascade_second_step_scores_double() {
        // Clearing row 7's 4s drops the 5s at (5,1) and (5,2) beside (6,3).
        let mut board = planted(&[[7, 0], [7, 1], [6, 2]], 4);
        for [row, col] in [[5, 1], [5, 2], [6, 3]] {
            board[row][col] = 5;
        }
        let (_, outcome) = play_on(board, swap([6, 2], [7, 2]));
        assert_eq!(outcome.steps.len(), 2);
        assert_eq!(outcome.steps[0].cleared, vec![[7, 0], [7, 1], [7, 2]]);
        assert_eq!(outcome.steps[1].cleared, vec![[6, 1], [6, 2], [6, 3]]);
        assert_eq!(outcome.score, 10 + 10 * 2);
    }

    #[test]
    fn game_ends_after_thirty_moves() {
        let mut game = Match3::new(SEED);
        let mut score = 0;
        for played in 1..=MAX_MOVES {
            assert_eq!(game.turn(), Some(SOLO));
            let mv = find_valid_move(game.board()).expect("a valid move");
            let outcome = game.play(SOLO, &mv).expect("valid move accepted");
            assert!(!outcome.steps.is_empty());
            assert!(outcome.score > score);
            score = outcome.score;
            assert_eq!(outcome.moves_left, MAX_MOVES - played);
        }
        assert_eq!(game.turn(), None);
        let ending = Ending {
            result: GameResult::Finished,
            winner: None,
            line: vec![],
            score: Some(score),
        };
        assert_eq!(game.ending(), Some(ending));
        let mv = find_valid_move(game.board()).expect("a valid move");
        assert_eq!(game.play(SOLO, &mv).unwrap_err(), MoveError::GameOver);
    }

    #[test]
    fn replay_from_seed_and_moves_is_identical() {
        let mut game = Match3::new(99);
        let moves = play_valid(&mut game, 12);
        let mut replay = Match3::new(99);
        for mv in &moves {
            replay.play(SOLO, mv).expect("replayed move accepted");
        }
        assert_eq!(replay.board(), game.board());
        assert_eq!(replay.score(), game.score());
    }

    #[test]
    fn cascades_leave_gems_only_and_no_line() {
        let mut game = Match3::new(5);
        for _ in 0..MAX_MOVES {
            let mv = find_valid_move(game.board()).expect("a valid move");
            for step in game.play(SOLO, &mv).expect("valid move accepted").steps {
                assert!(step.board.iter().flatten().all(|&gem| gem < KINDS));
                assert!(step.cleared.windows(2).all(|pair| pair[0] < pair[1]));
            }
            assert!(lines(game.board()).is_empty());
        }
    }

    #[test]
    fn stuck_board_ends_the_game() {
        assert!(lines(&stuck()).is_empty());
        assert!(!has_valid_move(&stuck()));
        assert!(!has_valid_move(&tiles()));
        let mut game = Match3::from_board(stuck(), SEED);
        assert_eq!(game.turn(), None);
        assert_eq!(game.ending().and_then(|ending| ending.score), Some(0));
        let err = game.play(SOLO, &swap([0, 0], [0, 1])).unwrap_err();
        assert_eq!(err, MoveError::GameOver);
    }

    #[test]
    fn outcome_serializes_as_the_protocol_says() {
        let board = planted(&[[4, 0], [4, 1], [5, 2]], 4);
        let (_, outcome) = play_on(board, swap([5, 2], [4, 2]));
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["steps"][0]["cleared"][2], serde_json::json!([4, 2]));
        assert_eq!(
            json["steps"][0]["board"].as_array().map(Vec::len),
            Some(SIZE)
        );
        assert_eq!(json["score"], 10);
        assert_eq!(json["moves_left"], MAX_MOVES - 1);
    }
}
