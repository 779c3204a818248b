//! Games: the registry of game kinds. Each kind is one rules file
//! ([`tictactoe`], [`connect4`], [`match3`]) implementing [`Rules`]
//! ([`rules`]), run by the generic Game actor ([`table`]).
//!
//! Adding a game means one new rules file, one variant of
//! [`GameKind`] and one line in `registered`.

pub mod bot;
pub mod connect4;
pub mod match3;
#[cfg(test)]
mod properties;
pub mod rules;
pub mod table;
pub mod tictactoe;

pub use self::{
    rules::{Ending, MoveError, Rules},
    table::{Asked, Created, GameSettings, NewGame, Published, Restoring},
};
use crate::{links::GameLink, protocol::GameKind, workers::Workers};

/// What the server knows of one kind of game.
struct Registered {
    /// Its seats in turn order, as named on the wire.
    seats: &'static [&'static str],
    /// Starts a game of it.
    start: fn(&Workers, NewGame) -> GameLink,
    /// Brings back a game of it that was in play when the server stopped.
    restore: fn(&Workers, NewGame, Restoring) -> Result<GameLink, String>,
}

impl Registered {
    /// The entry of the game `R` implements.
    fn of<R: Rules>() -> Registered {
        Registered {
            seats: R::SEATS,
            start: table::Game::<R>::launch,
            restore: table::Game::<R>::restore,
        }
    }
}

/// The registry of games: one line per kind.
fn registered(kind: GameKind) -> Registered {
    match kind {
        GameKind::TicTacToe => Registered::of::<tictactoe::TicTacToe>(),
        GameKind::Connect4 => Registered::of::<connect4::Connect4>(),
        GameKind::Match3 => Registered::of::<match3::Match3>(),
    }
}

/// Starts a game of `kind`.
pub fn start_game(workers: &Workers, kind: GameKind, new: NewGame) -> GameLink {
    (registered(kind).start)(workers, new)
}

/// Brings back a game of `kind` that was in play when the server stopped:
/// its moves are played again from its seed.
pub fn restore_game(
    workers: &Workers,
    kind: GameKind,
    new: NewGame,
    restoring: Restoring,
) -> Result<GameLink, String> {
    (registered(kind).restore)(workers, new, restoring)
}

/// The seats of `kind` in turn order, as named on the wire.
pub fn seats(kind: GameKind) -> &'static [&'static str] {
    registered(kind).seats
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use actix::prelude::*;
    use serde_json::{json, Value};

    use super::{rules::Ending, table::Game, *};
    use crate::{
        identity,
        links::{
            testing::{self, Nobody},
            Action, GameLink, Outgoing, Player, PlayerRequest, StoreLink,
        },
        metrics::Metrics,
    };

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

    /// The frames sent to both players of a game, as JSON.
    type Frames = Arc<Mutex<Vec<Value>>>;

    fn game_with_inbox<R: Rules>(store: &StoreLink) -> (GameLink, Frames) {
        let frames: Frames = Arc::new(Mutex::new(Vec::new()));
        let (handle, mut outbox) = testing::handle();
        let kept = frames.clone();
        actix_rt::spawn(async move {
            while let Some(frame) = outbox.recv().await {
                if let Outgoing::Text(text) | Outgoing::Answer(text) = frame {
                    let frame = serde_json::from_str(&text).expect("frames are JSON");
                    kept.lock().expect("inbox lock").push(frame);
                }
            }
        });
        let player = |session: &str| Player {
            session: session.to_string(),
            name: session.to_string(),
            color: "#000000".to_string(),
            handle: handle.clone(),
            bot: None,
        };
        let settings = GameSettings {
            reconnect_grace: Duration::from_secs(5),
            linger: Duration::from_secs(5),
            keep_in_play: true,
            bot_delay: Duration::ZERO,
        };
        let lobby = Nobody.start();
        let link = Game::<R>::launch(
            &Workers::new(),
            NewGame {
                id: identity::new_id(identity::GAME_PREFIX),
                watch_key: "watch".to_string(),
                watch_hash: identity::secret_hash("watch"),
                listed: true,
                players: vec![player("s_x"), player("s_o")],
                seed: 1,
                settings,
                finished: lobby.clone().recipient(),
                closed: lobby.recipient(),
                metrics: Arc::new(Metrics::new()),
                store: store.clone(),
                created: None,
                answers: None,
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
        let store = StoreLink::new(&Nobody.start());
        let (broken, broken_frames) = game_with_inbox::<Broken>(&store);
        let (sound, sound_frames) = game_with_inbox::<tictactoe::TicTacToe>(&store);
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
