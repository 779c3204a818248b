//! Tic-tac-toe: a 3 × 3 board of cells 0..8 (row-major), X moves first,
//! three in a row wins, a full board with no line is a draw.

use serde::{Deserialize, Serialize};

use super::{bot, rules::Thinker, Ending, MoveError, Rules};
use crate::protocol::{BotLevel, GameKind, GameResult};

/// Cells on the board.
const CELLS: usize = 9;

/// Every line of three, as cell indices.
pub(super) const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

/// A mark on the board: `"X"` or `"O"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mark {
    /// The first player.
    X,
    /// The second player.
    O,
}

/// `{"cell": 0..8}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicTacToeMove {
    /// The cell to mark, row-major.
    pub cell: u8,
}

/// Tic-tac-toe adds nothing to an accepted move.
#[derive(Debug, PartialEq, Serialize)]
pub struct NoOutcome {}

/// A game of tic-tac-toe.
#[derive(Debug, Clone)]
pub struct TicTacToe {
    /// The nine cells.
    board: [Option<Mark>; CELLS],
    /// The seat to move; `None` once over.
    turn: Option<usize>,
    /// Set when the game ends.
    ending: Option<Ending<u8>>,
}

impl Rules for TicTacToe {
    type Move = TicTacToeMove;
    type Outcome = NoOutcome;
    type Board = [Option<Mark>; CELLS];
    type Cell = u8;

    const KIND: GameKind = GameKind::TicTacToe;
    const SEATS: &'static [&'static str] = &["X", "O"];

    fn new(_seed: u64) -> Self {
        TicTacToe {
            board: [None; CELLS],
            turn: Some(0),
            ending: None,
        }
    }

    fn board(&self) -> &Self::Board {
        &self.board
    }

    fn turn(&self) -> Option<usize> {
        self.turn
    }

    fn play(&mut self, seat: usize, mv: &TicTacToeMove) -> Result<NoOutcome, MoveError> {
        let turn = self.turn.ok_or(MoveError::GameOver)?;
        if seat != turn {
            return Err(MoveError::NotYourTurn);
        }
        let cell = usize::from(mv.cell);
        let slot = self
            .board
            .get_mut(cell)
            .ok_or_else(|| MoveError::OutOfRange(format!("`cell` must be 0 to 8, not {cell}")))?;
        if slot.is_some() {
            return Err(MoveError::Illegal(format!("cell {cell} is taken")));
        }
        *slot = Some(if seat == 0 { Mark::X } else { Mark::O });
        self.turn = Some(1 - seat);
        self.settle(seat);
        Ok(NoOutcome {})
    }

    fn ending(&self) -> Option<Ending<u8>> {
        self.ending.clone()
    }

    fn thinker(&self, level: BotLevel, seed: u64) -> Option<Thinker<TicTacToeMove>> {
        Some(bot::thinker(self, level, seed))
    }
}

impl TicTacToe {
    /// A game at `cells` (no line on it), with the seat to move that the
    /// marks imply.
    #[cfg(test)]
    pub(crate) fn from_cells(cells: [Option<Mark>; CELLS]) -> TicTacToe {
        let marks = cells.iter().filter(|cell| cell.is_some()).count();
        let full = marks == CELLS;
        TicTacToe {
            board: cells,
            turn: (!full).then_some(marks % 2),
            ending: None,
        }
    }

    /// Ends the game if `seat`'s last move won or filled the board.
    fn settle(&mut self, seat: usize) {
        let mark = if seat == 0 { Mark::X } else { Mark::O };
        let won = LINES
            .iter()
            .find(|line| line.iter().all(|&cell| self.board[cell] == Some(mark)));
        let ending = match won {
            Some(line) => Ending {
                result: GameResult::Win,
                winner: Some(seat),
                line: line.iter().map(|&cell| cell as u8).collect(),
                score: None,
            },
            None if self.board.iter().all(Option::is_some) => Ending {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play_all(cells: &[u8]) -> TicTacToe {
        let mut game = TicTacToe::new(0);
        for (n, &cell) in cells.iter().enumerate() {
            game.play(n % 2, &TicTacToeMove { cell }).unwrap();
        }
        game
    }

    #[test]
    fn x_moves_first_and_turns_alternate() {
        let mut game = TicTacToe::new(0);
        assert_eq!(game.turn(), Some(0));
        assert_eq!(
            game.play(1, &TicTacToeMove { cell: 0 }),
            Err(MoveError::NotYourTurn)
        );
        game.play(0, &TicTacToeMove { cell: 4 }).unwrap();
        assert_eq!(game.board()[4], Some(Mark::X));
        assert_eq!(game.turn(), Some(1));
    }

    #[test]
    fn every_line_wins_for_x() {
        for line in LINES {
            // O plays the first two cells outside the line that do not complete a line of O's.
            let others: Vec<u8> = (0..9u8)
                .filter(|c| !line.contains(&usize::from(*c)))
                .collect();
            let moves = [
                line[0] as u8,
                others[0],
                line[1] as u8,
                others[1],
                line[2] as u8,
            ];
            let game = play_all(&moves);
            let ending = game.ending().expect("the game is over");
            assert_eq!(ending.result, GameResult::Win, "{line:?}");
            assert_eq!(ending.winner, Some(0));
            assert_eq!(ending.line, line.map(|c| c as u8).to_vec());
            assert_eq!(game.turn(), None);
        }
    }

    #[test]
    fn o_can_win() {
        let game = play_all(&[0, 3, 1, 4, 8, 5]);
        let ending = game.ending().unwrap();
        assert_eq!((ending.winner, ending.line), (Some(1), vec![3, 4, 5]));
    }

    #[test]
    fn a_full_board_without_a_line_is_a_draw() {
        let game = play_all(&[0, 1, 2, 4, 3, 5, 7, 6, 8]);
        let ending = game.ending().unwrap();
        assert_eq!(
            (ending.result, ending.winner, ending.line.len()),
            (GameResult::Draw, None, 0)
        );
    }

    #[test]
    fn a_taken_cell_is_illegal_and_changes_nothing() {
        let mut game = play_all(&[4]);
        assert!(matches!(
            game.play(1, &TicTacToeMove { cell: 4 }),
            Err(MoveError::Illegal(_))
        ));
        assert_eq!(game.turn(), Some(1));
    }

    #[test]
    fn an_out_of_range_cell_is_refused() {
        let mut game = TicTacToe::new(0);
        assert!(matches!(
            game.play(0, &TicTacToeMove { cell: 9 }),
            Err(MoveError::OutOfRange(_))
        ));
    }

    #[test]
    fn no_move_after_the_end() {
        let mut game = play_all(&[0, 3, 1, 4, 2]);
        assert_eq!(
            game.play(1, &TicTacToeMove { cell: 8 }),
            Err(MoveError::GameOver)
        );
    }
}
