//! Start-up: bringing back the games that were in play when the server last
//! stopped (PROTOCOL.md, *Persistence*). Each kept game is played again
//! from its seed and moves; each session seated in one starts as an away
//! session actor; both are handed to the Lobby before it admits anyone,
//! so a player who resumes within `games.reconnect_grace_ms` plays on.

use std::{
    collections::{hash_map::Entry, HashMap},
    sync::Arc,
    time::SystemTime,
};

use actix::Addr;

use crate::{
    game::{self, GameSettings, NewGame, Restoring},
    identity,
    links::{
        Admission, AdmitOutcome, LiveGame, LivePlayer, LiveSession, Player, SessionHandle,
        StoreLink, StoredMove,
    },
    lobby::{Lobby, Restore, RestoredGame, RestoredSession},
    protocol::PlayerInfo,
    session::{Session, SessionShared},
    store::Live,
    workers::Workers,
};

/// Brings back what `live` holds and hands it to `lobby`.
pub fn restore(
    shared: &Arc<SessionShared>,
    lobby: &Addr<Lobby>,
    store: &StoreLink,
    workers: &Workers,
    live: Live,
) {
    if live.games.is_empty() {
        return;
    }
    let mut restorer = Restorer {
        shared,
        lobby,
        store,
        workers,
        seated: HashMap::new(),
    };
    for session in live.sessions {
        restorer.session(session);
    }
    let games: Vec<RestoredGame> = live
        .games
        .into_iter()
        .filter_map(|(game, moves)| restorer.game(game, moves))
        .collect();
    log::info!(
        "brought back {} games in play; their players have {} ms to resume",
        games.len(),
        shared.config.games.reconnect_grace_ms
    );
    let sessions = restorer.seated.into_values().map(|seated| RestoredSession {
        id: seated.identity.session,
        name: seated.identity.name,
        color: seated.identity.color,
        resume_hash: seated.identity.resume_hash,
        handle: seated.handle,
        games: seated.games,
    });
    lobby.do_send(Restore {
        sessions: sessions.collect(),
        games,
    });
}

/// What start-up needs while it brings games back.
struct Restorer<'a> {
    shared: &'a Arc<SessionShared>,
    lobby: &'a Addr<Lobby>,
    store: &'a StoreLink,
    workers: &'a Workers,
    /// The sessions brought back so far, by id.
    seated: HashMap<String, Seated>,
}

/// A session brought back: who it is, its actor, its games.
struct Seated {
    identity: LiveSession,
    handle: SessionHandle,
    games: Vec<String>,
}

impl Seated {
    /// Starts the away session actor of `identity`.
    fn start(shared: &Arc<SessionShared>, identity: LiveSession) -> Seated {
        let admission = Admission {
            id: identity.session.clone(),
            name: identity.name.clone(),
            color: identity.color.clone(),
            resume: String::new(),
            outcome: AdmitOutcome::Resumed,
            connection: 0,
            running: None,
            rooms: Vec::new(),
            lost_rooms: Vec::new(),
            games: Vec::new(),
            carried: None,
            adopted: None,
        };
        Seated {
            handle: Session::restore(shared.clone(), admission),
            identity,
            games: Vec::new(),
        }
    }
}

impl Restorer<'_> {
    /// Brings back a seated session.
    fn session(&mut self, identity: LiveSession) {
        let id = identity.session.clone();
        self.seated.insert(id, Seated::start(self.shared, identity));
    }

    /// The player of a kept seat, its session brought back. A seat whose
    /// session was never written cannot be resumed: its game waits out the
    /// grace and ends as the rules say.
    fn player(&mut self, game_id: &str, seat: &LivePlayer) -> Player {
        if let Some(level) = seat.bot {
            return Player::bot_seat(seat, level, self.shared.metrics.clone());
        }
        let seated = match self.seated.entry(seat.session.clone()) {
            Entry::Occupied(seated) => seated.into_mut(),
            Entry::Vacant(vacant) => vacant.insert(Seated::start(
                self.shared,
                LiveSession {
                    session: seat.session.clone(),
                    name: seat.name.clone(),
                    color: seat.color.clone(),
                    resume_hash: identity::secret_hash(&identity::new_secret()),
                },
            )),
        };
        seated.games.push(game_id.to_string());
        Player {
            session: seat.session.clone(),
            name: seat.name.clone(),
            color: seat.color.clone(),
            handle: seated.handle.clone(),
            bot: None,
        }
    }

    /// Plays a kept game again and starts its actor; `None` (logged) if its
    /// moves no longer replay.
    fn game(&mut self, game: LiveGame, moves: Vec<StoredMove>) -> Option<RestoredGame> {
        let players = game
            .players
            .iter()
            .map(|seat| self.player(&game.game_id, seat))
            .collect();
        let started_at = humantime::parse_rfc3339(&game.started_at).unwrap_or(SystemTime::now());
        let new = NewGame {
            id: game.game_id.clone(),
            watch_key: game.watch_key.clone().unwrap_or_default(),
            watch_hash: game.watch_hash.clone(),
            listed: game.listed,
            players,
            seed: game.seed,
            settings: GameSettings::new(&self.shared.config),
            finished: self.lobby.clone().recipient(),
            closed: self.lobby.clone().recipient(),
            metrics: self.shared.metrics.clone(),
            store: self.store.clone(),
            created: None,
            answers: None,
        };
        let restoring = Restoring { moves, started_at };
        let link = match game::restore_game(self.workers, game.game, new, restoring) {
            Ok(link) => link,
            Err(why) => {
                log::error!("game {} could not be brought back: {why}", game.game_id);
                return None;
            }
        };
        let seats = game.players.iter().zip(game::seats(game.game));
        let players = seats.map(|(player, seat)| PlayerInfo {
            seat,
            name: player.name.clone(),
            color: player.color.clone(),
            bot: player.bot.is_some(),
        });
        Some(RestoredGame {
            link,
            watch_hash: game.watch_hash,
            watch_key: game.watch_key.filter(|_| game.listed),
            players: players.collect(),
            seated: game
                .players
                .into_iter()
                .map(|player| player.session)
                .collect(),
            started_at,
        })
    }
}
