//! Property tests of the rules (issue: hardening): random legal and
//! illegal move sequences keep every invariant: turns alternate, boards
//! only fill, a finished game accepts nothing, and match three always has a
//! move or has ended.

use proptest::prelude::*;

use super::{
    connect4::{Connect4, Connect4Move},
    match3::{find_valid_move, Match3, Match3Move},
    tictactoe::{TicTacToe, TicTacToeMove},
    MoveError, Rules,
};

/// Plays `moves` (seat, move) on `game`, checking after each that a refused
/// move changed nothing, that an accepted one passed the turn or ended the
/// game, and that nothing is accepted once it has ended.
fn check<R: Rules>(game: &mut R, moves: Vec<(usize, R::Move)>, filled: impl Fn(&R) -> usize)
where
    R::Board: PartialEq + Clone,
{
    for (seat, mv) in moves {
        let (turn, board, count) = (game.turn(), game.board().clone(), filled(game));
        let was_over = game.ending().is_some();
        match game.play(seat, &mv) {
            Ok(_) => {
                assert!(!was_over, "a finished game accepted a move");
                assert_eq!(turn, Some(seat), "only the seat to move moves");
                assert_eq!(filled(game), count + 1, "a move fills exactly one cell");
                match game.ending() {
                    Some(_) => assert_eq!(game.turn(), None),
                    None => assert_ne!(game.turn(), Some(seat), "turns alternate"),
                }
            }
            Err(err) => {
                assert!(game.board() == &board, "a refused move changed the board");
                assert_eq!(game.turn(), turn);
                if was_over {
                    assert_eq!(err, MoveError::GameOver);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn tictactoe_keeps_its_invariants(moves in prop::collection::vec((0usize..3, 0u8..12), 0..30)) {
        let moves = moves.into_iter().map(|(seat, cell)| (seat, TicTacToeMove { cell })).collect();
        check(&mut TicTacToe::new(0), moves, |game| game.board().iter().filter(|c| c.is_some()).count());
    }

    #[test]
    fn connect4_keeps_its_invariants(moves in prop::collection::vec((0usize..3, 0u8..9), 0..60)) {
        let moves = moves.into_iter().map(|(seat, column)| (seat, Connect4Move { column })).collect();
        check(&mut Connect4::new(0), moves, |game| {
            game.board().iter().flatten().filter(|c| c.is_some()).count()
        });
    }

    #[test]
    fn match3_always_has_a_move_or_has_ended(seed in any::<u64>(), picks in prop::collection::vec((0u8..8, 0u8..8, 0u8..4), 0..40)) {
        let mut game = Match3::new(seed);
        for (r, c, direction) in picks {
            let (dr, dc) = [(0i8, 1i8), (1, 0), (0, -1), (-1, 0)][usize::from(direction)];
            let to = [(r as i8 + dr).clamp(0, 7) as u8, (c as i8 + dc).clamp(0, 7) as u8];
            let _ = game.play(0, &Match3Move { from: [r, c], to });
            prop_assert!(game.ending().is_some() || find_valid_move(game.board()).is_some(),
                "a match three game in play with no valid move");
        }
    }
}
