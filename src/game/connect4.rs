//! Connect four: 6 rows × 7 columns, row 0 at the bottom; a disc dropped
//! into a column lands on the lowest free row. Red moves first; four in a
//! row (across, up, or either diagonal) wins; a full board is a draw.

use serde::{Deserialize, Serialize};

use super::{bot, rules::Thinker, Ending, MoveError, Rules};
use crate::protocol::{BotLevel, GameKind, GameResult};

/// Rows on the board.
const ROWS: usize = 6;
/// Columns on the board.
const COLUMNS: usize = 7;
/// Discs in a row that win.
const TO_WIN: usize = 4;

/// The four directions a line can run in: across, up, and both diagonals.
const DIRECTIONS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];

/// A disc: `"red"` or `"yellow"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disc {
    /// The first player.
    Red,
    /// The second player.
    Yellow,
}

/// The board: rows from the bottom (row 0) up.
pub type Board = [[Option<Disc>; COLUMNS]; ROWS];

/// `{"column": 0..6}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connect4Move {
    /// The column to drop a disc into.
    pub column: u8,
}

/// Where the disc landed.
#[derive(Debug, Serialize)]
pub struct Connect4Outcome {
    /// The row it came to rest on, 0 at the bottom.
    pub row: u8,
}

/// A game of connect four.
#[derive(Debug, Clone)]
pub struct Connect4 {
    /// The discs.
    board: Board,
    /// The seat to move; `None` once over.
    turn: Option<usize>,
    /// Set when the game ends.
    ending: Option<Ending<[u8; 2]>>,
}

impl Rules for Connect4 {
    type Move = Connect4Move;
    type Outcome = Connect4Outcome;
    type Board = Board;
    type Cell = [u8; 2];

    const KIND: GameKind = GameKind::Connect4;
    const SEATS: &'static [&'static str] = &["red", "yellow"];

    fn new(_seed: u64) -> Self {
        Connect4 {
            board: [[None; COLUMNS]; ROWS],
            turn: Some(0),
            ending: None,
        }
    }

    fn board(&self) -> &Board {
        &self.board
    }

    fn turn(&self) -> Option<usize> {
        self.turn
    }

    fn play(&mut self, seat: usize, mv: &Connect4Move) -> Result<Connect4Outcome, MoveError> {
        let turn = self.turn.ok_or(MoveError::GameOver)?;
        if seat != turn {
            return Err(MoveError::NotYourTurn);
        }
        let column = usize::from(mv.column);
        if column >= COLUMNS {
            return Err(MoveError::OutOfRange(format!(
                "`column` must be 0 to 6, not {column}"
            )));
        }
        let row = (0..ROWS)
            .find(|&row| self.board[row][column].is_none())
            .ok_or_else(|| MoveError::Illegal(format!("column {column} is full")))?;
        self.board[row][column] = Some(disc(seat));
        self.turn = Some(1 - seat);
        self.settle(seat, row, column);
        Ok(Connect4Outcome { row: row as u8 })
    }

    fn ending(&self) -> Option<Ending<[u8; 2]>> {
        self.ending.clone()
    }

    fn thinker(&self, level: BotLevel, seed: u64) -> Option<Thinker<Connect4Move>> {
        Some(bot::thinker(self, level, seed))
    }
}

fn disc(seat: usize) -> Disc {
    if seat == 0 {
        Disc::Red
    } else {
        Disc::Yellow
    }
}

impl Connect4 {
    /// Ends the game if the disc at (`row`, `column`) won or filled the board.
    fn settle(&mut self, seat: usize, row: usize, column: usize) {
        let won = DIRECTIONS
            .iter()
            .map(|&step| self.run(row, column, step))
            .find(|run| run.len() >= TO_WIN);
        let ending = match won {
            Some(line) => Ending {
                result: GameResult::Win,
                winner: Some(seat),
                line,
                score: None,
            },
            None if self.board[ROWS - 1].iter().all(Option::is_some) => Ending {
                result: GameResult::Draw,
                winner: None,
                line: Vec::new(),
                score: None,
            },
            None => return,
        };
        self.turn = None;
        self.ending = Some(ending);
    }

    /// The cells of the same disc as (`row`, `column`) in a straight run
    /// through it along `step` both ways, from one end to the other.
    fn run(&self, row: usize, column: usize, step: (isize, isize)) -> Vec<[u8; 2]> {
        let disc = self.board[row][column];
        let same = |r: isize, c: isize| {
            r >= 0
                && c >= 0
                && (r as usize) < ROWS
                && (c as usize) < COLUMNS
                && self.board[r as usize][c as usize] == disc
        };
        let (mut r, mut c) = (row as isize, column as isize);
        while same(r - step.0, c - step.1) {
            r -= step.0;
            c -= step.1;
        }
        let mut cells = Vec::new();
        while same(r, c) {
            cells.push([r as u8, c as u8]);
            r += step.0;
            c += step.1;
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play_columns(columns: &[u8]) -> Connect4 {
        let mut game = Connect4::new(0);
        for (n, &column) in columns.iter().enumerate() {
            game.play(n % 2, &Connect4Move { column }).unwrap();
        }
        game
    }

    fn winning_line(game: &Connect4) -> (Option<usize>, Vec<[u8; 2]>) {
        let ending = game.ending().expect("the game is over");
        assert_eq!(ending.result, GameResult::Win);
        (ending.winner, ending.line)
    }

    #[test]
    fn discs_fall_to_the_lowest_free_row() {
        let mut game = Connect4::new(0);
        assert_eq!(game.play(0, &Connect4Move { column: 3 }).unwrap().row, 0);
        assert_eq!(game.play(1, &Connect4Move { column: 3 }).unwrap().row, 1);
        assert_eq!(game.board()[0][3], Some(Disc::Red));
        assert_eq!(game.board()[1][3], Some(Disc::Yellow));
    }

    #[test]
    fn red_moves_first_and_turns_alternate() {
        let mut game = Connect4::new(0);
        assert!(matches!(
            game.play(1, &Connect4Move { column: 0 }),
            Err(MoveError::NotYourTurn)
        ));
        game.play(0, &Connect4Move { column: 0 }).unwrap();
        assert_eq!(game.turn(), Some(1));
    }

    #[test]
    fn every_horizontal_line_wins() {
        for row in 0..ROWS {
            for start in 0..=COLUMNS - TO_WIN {
                let mut game = Connect4::new(0);
                game.board = [[None; COLUMNS]; ROWS];
                // Fill rows below with a pattern that has no four of a kind.
                for r in 0..row {
                    for c in 0..COLUMNS {
                        game.board[r][c] = Some(if (c / 2 + r) % 2 == 0 {
                            Disc::Yellow
                        } else {
                            Disc::Red
                        });
                    }
                }
                for c in start..start + TO_WIN - 1 {
                    game.board[row][c] = Some(Disc::Red);
                }
                let last = (start + TO_WIN - 1) as u8;
                game.play(0, &Connect4Move { column: last }).unwrap();
                let (winner, line) = winning_line(&game);
                assert_eq!(winner, Some(0));
                let expected: Vec<[u8; 2]> = (start..start + TO_WIN)
                    .map(|c| [row as u8, c as u8])
                    .collect();
                assert_eq!(line, expected, "row {row} from column {start}");
            }
        }
    }

    #[test]
    fn every_vertical_line_wins() {
        for column in 0..COLUMNS as u8 {
            let other = (column + 1) % COLUMNS as u8;
            let game = play_columns(&[column, other, column, other, column, other, column]);
            let (winner, line) = winning_line(&game);
            assert_eq!(winner, Some(0));
            assert_eq!(line, (0..4).map(|r| [r, column]).collect::<Vec<_>>());
        }
    }

    #[test]
    fn diagonals_win_at_every_edge() {
        for (step, starts) in [
            ((1isize, 1isize), (0..=2, 0..=3)),
            ((1, -1), (0..=2, 3..=6)),
        ] {
            for row in starts.0.clone() {
                for column in starts.1.clone() {
                    let mut game = Connect4::new(0);
                    let cells: Vec<(usize, usize)> = (0..TO_WIN as isize)
                        .map(|k| ((row + k) as usize, (column as isize + k * step.1) as usize))
                        .collect();
                    // Support each diagonal cell with yellow discs below it; they
                    // never make four of their own in a column of at most five.
                    for &(r, c) in &cells {
                        for below in 0..r {
                            game.board[below][c] = Some(Disc::Yellow);
                        }
                    }
                    for &(r, c) in &cells[..TO_WIN - 1] {
                        game.board[r][c] = Some(Disc::Red);
                    }
                    let (_, last_column) = cells[TO_WIN - 1];
                    game.play(
                        0,
                        &Connect4Move {
                            column: last_column as u8,
                        },
                    )
                    .unwrap();
                    let (winner, mut line) = winning_line(&game);
                    assert_eq!(winner, Some(0));
                    let mut expected: Vec<[u8; 2]> =
                        cells.iter().map(|&(r, c)| [r as u8, c as u8]).collect();
                    line.sort();
                    expected.sort();
                    assert_eq!(line, expected, "diagonal {step:?} from ({row}, {column})");
                }
            }
        }
    }

    #[test]
    fn a_full_column_is_illegal() {
        let mut game = play_columns(&[2, 2, 2, 2, 2, 2]);
        let refused = game.play(0, &Connect4Move { column: 2 });
        assert!(matches!(refused, Err(MoveError::Illegal(message)) if message.contains("full")));
        assert_eq!(game.turn(), Some(0));
    }

    #[test]
    fn an_out_of_range_column_is_refused() {
        let mut game = Connect4::new(0);
        assert!(matches!(
            game.play(0, &Connect4Move { column: 7 }),
            Err(MoveError::OutOfRange(_))
        ));
    }

    #[test]
    fn a_full_board_without_four_is_a_draw() {
        // Red where row / 2 + column is even: no run longer than two in any
        // direction. Every cell but the top of column 0 is filled; red drops last.
        let mut game = Connect4::new(0);
        for row in 0..ROWS {
            for column in 0..COLUMNS {
                let red = (row / 2 + column) % 2 == 0;
                game.board[row][column] = Some(if red { Disc::Red } else { Disc::Yellow });
            }
        }
        game.board[ROWS - 1][0] = None;
        game.play(0, &Connect4Move { column: 0 }).unwrap();
        let ending = game.ending().unwrap();
        assert_eq!(
            (ending.result, ending.winner, ending.line.len()),
            (GameResult::Draw, None, 0)
        );
        assert_eq!(game.turn(), None);
    }

    #[test]
    fn no_move_after_the_end() {
        let mut game = play_columns(&[0, 1, 0, 1, 0, 1, 0]);
        assert_eq!(
            game.play(1, &Connect4Move { column: 5 }).map(|_| ()),
            Err(MoveError::GameOver)
        );
    }
}
