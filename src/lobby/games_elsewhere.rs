//! Games across nodes, from the Lobby's side (ARCHITECTURE.md, *Many nodes
//! on Redis*). Every game has one owner node, which runs its Game actor
//! unchanged; players and spectators on other nodes reach it through a
//! remote [`GameLink`](crate::links::GameLink), and it reaches them
//! through remote [`SessionHandle`](crate::links::SessionHandle)s on the
//! game's channel.
//!
//! - Quick match: the queue of each kind is a sorted set in Redis, paired
//!   atomically (`find_match.lua`). The finder's node listens to the new
//!   game's channel first, then tells the waiting player's node, which
//!   starts the game ([`NodeMsg::Matched`]). A waiting player that has
//!   gone meanwhile sends the finder back to the queue
//!   ([`NodeMsg::Unmatched`]), and so does a finder that has gone: nobody
//!   is left waiting for a match that will not start.
//! - Join and watch keys name their game, whose owner is in Redis: the
//!   request is forwarded there, where the join key is spent (the owner's
//!   Lobby is the one place it can be).
//! - Listed games are in a directory in Redis, for `/api/games`.
//! - A session that comes back on another node, or whose game's node
//!   died, gets its game back ([`Lobby::recover_game`]): its node claims
//!   the game (atomically, so one node at most rebuilds it); the game's
//!   live owner, or the node that wins the claim and plays its moves again
//!   from its seed and the moves kept in Redis, reaches the player anew
//!   ([`Rehome`]) and sends it `game_state`.

use std::{collections::HashSet, sync::Arc, time::SystemTime};

use actix::prelude::*;

use super::{
    matchmaking::{Asker, GameEntry},
    Entry, Lobby, RestoredGame,
};
use crate::{
    cluster::{
        game_key,
        redis::RedisNode,
        wire::{NodeMsg, Seat},
        GameEnded, Unavailable,
    },
    game::{self, NewGame, Restoring},
    identity,
    links::{
        LiveGame, Player, PlayerRequest, Presence, PresenceChange, Rehome, SessionHandle,
        StoredMove,
    },
    protocol::{ErrorCode, GameKind, Refusal, RequestId, ServerMsg},
};

/// A game another node runs, with players or spectators here.
#[derive(Default)]
pub(super) struct GameElsewhere {
    /// The node that runs it.
    pub(super) owner: String,
    /// This node's sessions in it.
    pub(super) sessions: HashSet<String>,
}

impl Lobby {
    /// `find_game` of a two-player game with a cluster: the session waits
    /// in the cluster's queue, or is paired with whoever waited longest.
    /// `queued` is answered (on `handle`, to request `id`) once the
    /// session is in the queue or paired: the queue's order is Redis's.
    pub(super) fn find_elsewhere(
        &mut self,
        session: &str,
        kind: GameKind,
        queued: Option<Option<RequestId>>,
        ctx: &mut Context<Self>,
    ) {
        let (Some(node), Some(entry)) = (self.redis(), self.sessions.get_mut(session)) else {
            return;
        };
        entry.queued = Some(kind);
        if let Some(id) = queued {
            self.unqueued.insert(session.to_string(), id);
        }
        // The game this session would start as the finder: its node
        // listens first, so that none of the game's frames is missed.
        let game = identity::new_id(identity::GAME_PREFIX);
        node.listen(&game_key(&game), session);
        let session = session.to_string();
        let found = node.find_match(kind, &session);
        ctx.spawn(found.into_actor(self).map(move |found, lobby, ctx| {
            if found.is_ok() {
                lobby.answer_queued(&session, kind);
            }
            lobby.found(session, kind, game, found, ctx);
        }));
    }

    /// What the cluster's queue answered `session`'s `find_game`.
    fn found(
        &mut self,
        session: String,
        kind: GameKind,
        game: String,
        found: Result<Option<(String, String)>, Unavailable>,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let key = game_key(&game);
        let still = self.still_queued(&session, kind);
        let (waiting, owner) = match found {
            Err(Unavailable) => {
                node.unlisten(&key, &session);
                // The request's id, if it is still unanswered.
                let id = self.unqueued.remove(&session).flatten();
                if let Some(entry) = self.sessions.get_mut(&session) {
                    if entry.queued == Some(kind) {
                        entry.queued = None;
                    }
                    if let Some(handle) = entry.connected() {
                        let message = "the game queue cannot be reached; try again";
                        let refusal = Refusal::new(ErrorCode::Unavailable, "find_game", message);
                        handle.refuse(&refusal.with_id(id.as_ref()));
                    }
                }
                return;
            }
            Ok(None) => {
                node.unlisten(&key, &session);
                if !still {
                    // It cancelled or left while it was being queued.
                    node.leave_queue(kind, &session);
                }
                return;
            }
            Ok(Some(paired)) => paired,
        };
        if !still {
            // It cancelled or left while it was being paired: the waiting
            // player goes back to the queue.
            node.unlisten(&key, &session);
            return self.send_back(&waiting, kind, &game, &owner, ctx);
        }
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.queued = None;
        }
        if owner == node.id() {
            node.unlisten(&key, &session);
            if !self.still_queued(&waiting, kind) {
                return self.find_again(session, kind, ctx);
            }
            if let Some(entry) = self.sessions.get_mut(&waiting) {
                entry.queued = None;
            }
            self.answer_queued(&waiting, kind);
            let players = [&waiting, &session].map(|id| self.player(id));
            let players = players.into_iter().flatten().collect();
            return self.start(kind, players, game, true, Asker::Nobody, ctx);
        }
        let Some(finder) = self.seat_of(&session) else {
            return;
        };
        self.play_elsewhere(&session, &game, &owner);
        // Until the game ends: if its node dies before it has started,
        // the finder looks again.
        self.matching.insert(game.clone(), (session.clone(), kind));
        node.route(&key, &owner);
        let from = node.id().to_string();
        node.forward(
            &owner,
            NodeMsg::Matched {
                game,
                kind,
                waiting,
                finder,
                from,
            },
        );
    }

    /// Answers `session`'s `find_game` with `queued`, unless it has been:
    /// once the cluster's queue has it, or it is paired (a match may reach
    /// its node before the queue's answer).
    pub(super) fn answer_queued(&mut self, session: &str, kind: GameKind) {
        let Some(id) = self.unqueued.remove(session) else {
            return;
        };
        if let Some(handle) = self.sessions.get(session).and_then(Entry::connected) {
            handle.reply(&ServerMsg::Queued { game: kind }, id.as_ref());
        }
    }

    /// Whether `session` is connected and waits for a game of `kind`.
    pub(super) fn still_queued(&self, session: &str, kind: GameKind) -> bool {
        self.sessions
            .get(session)
            .is_some_and(|entry| entry.queued == Some(kind) && entry.connected().is_some())
    }

    /// `session`, paired with a player who had gone, looks for a game
    /// again (it was told `queued` already).
    fn find_again(&mut self, session: String, kind: GameKind, ctx: &mut Context<Self>) {
        let ready = self.sessions.get(&session).is_some_and(|entry| {
            entry.connected().is_some() && entry.queued.is_none_or(|queued| queued == kind)
        });
        if ready {
            self.find_elsewhere(&session, kind, None, ctx);
        }
    }

    /// Sends `session`, paired for game `game` with a player who had gone,
    /// back to the queue from its node `node`.
    fn send_back(
        &mut self,
        session: &str,
        kind: GameKind,
        game: &str,
        node_id: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        if node_id == node.id() {
            return self.find_again(session.to_string(), kind, ctx);
        }
        node.forward(
            node_id,
            NodeMsg::Unmatched {
                game: game.to_string(),
                kind,
                session: session.to_string(),
            },
        );
    }

    /// `session` of this node plays game `game`, which node `owner` runs.
    pub(super) fn play_elsewhere(&mut self, session: &str, game: &str, owner: &str) {
        self.plays(session, game);
        let elsewhere = self.games_elsewhere.entry(game.to_string()).or_default();
        elsewhere.owner = owner.to_string();
        elsewhere.sessions.insert(session.to_string());
    }

    /// `session` of this node plays game `game`: its record says so, for
    /// a resume on any node.
    fn plays(&mut self, session: &str, game: &str) {
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        if !entry.games.iter().any(|played| played == game) {
            entry.games.push(game.to_string());
            self.record_session(session);
        }
    }

    /// Session `session` as a player on another node sees it.
    fn seat_of(&self, session: &str) -> Option<Seat> {
        let entry = self.sessions.get(session)?;
        Some(Seat {
            session: session.to_string(),
            name: entry.name.clone(),
            color: entry.color.clone(),
        })
    }

    /// `join_game` of a game this node does not run: forwarded to its
    /// owner, which spends the key and seats the player.
    pub(super) fn join_elsewhere_game(
        &mut self,
        player: Player,
        game: String,
        secret: String,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let id = id.cloned();
        let owner = node.game_owner(&game);
        ctx.spawn(owner.into_actor(self).map(move |owner, lobby, _| {
            let Some(owner) = lobby.owner_or_refuse(owner, &player.handle, "join_game", &id) else {
                return;
            };
            let Some(seat) = lobby.seat_of(&player.session) else {
                return;
            };
            let key = game_key(&game);
            node.listen(&key, &player.session);
            node.route(&key, &owner);
            lobby.play_elsewhere(&player.session, &game, &owner);
            let from = node.id().to_string();
            node.forward(
                &owner,
                NodeMsg::JoinGame {
                    game,
                    secret,
                    player: seat,
                    from,
                    id,
                },
            );
        }));
    }

    /// `watch_game` of a game this node does not run: forwarded to its
    /// owner.
    pub(super) fn watch_elsewhere(
        &mut self,
        session: &str,
        game: String,
        secret: String,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) {
        let (Some(node), Some(handle)) = (
            self.redis(),
            self.sessions
                .get(session)
                .and_then(|entry| entry.handle.clone()),
        ) else {
            return;
        };
        let id = id.cloned();
        let session = session.to_string();
        let owner = node.game_owner(&game);
        ctx.spawn(owner.into_actor(self).map(move |owner, lobby, _| {
            let Some(owner) = lobby.owner_or_refuse(owner, &handle, "watch_game", &id) else {
                return;
            };
            let key = game_key(&game);
            node.listen(&key, &session);
            node.route(&key, &owner);
            let from = node.id().to_string();
            node.forward(
                &owner,
                NodeMsg::WatchGame {
                    game,
                    secret,
                    session,
                    from,
                    id,
                },
            );
        }));
    }

    /// The owner of a game, as Redis named it: another live node, or the
    /// request is answered here (`not_found`, or `unavailable`).
    fn owner_or_refuse(
        &self,
        owner: Result<Option<String>, Unavailable>,
        handle: &SessionHandle,
        request: &str,
        id: &Option<RequestId>,
    ) -> Option<String> {
        let node = self.redis()?;
        let refusal = match owner {
            Ok(Some(owner)) if owner != node.id() => return Some(owner),
            Ok(_) => match request {
                "join_game" => super::matchmaking::no_join(),
                _ => super::matchmaking::no_watch(),
            },
            Err(Unavailable) => {
                let message = "the game's node cannot be reached; try again";
                Refusal::new(ErrorCode::Unavailable, request, message)
            }
        };
        handle.refuse(&refusal.with_id(id.as_ref()));
        None
    }

    /// Lists game `game_id` in the cluster's directory, if it is listed.
    pub(super) fn list_game(&self, game_id: &str) {
        let (Some(node), Some(game)) = (self.redis(), self.games.get(game_id)) else {
            return;
        };
        let Some(listing) = game.listing(game_id) else {
            return;
        };
        if let Ok(listing) = serde_json::to_value(listing) {
            node.list_game(game_id, listing);
        }
    }

    /// A request from another node for one of this node's games.
    pub(super) fn game_forwarded(&mut self, msg: NodeMsg, ctx: &mut Context<Self>) {
        match msg {
            NodeMsg::Matched {
                game,
                kind,
                waiting,
                finder,
                from,
            } => self.matched(game, kind, &waiting, finder, from, ctx),
            NodeMsg::Unmatched {
                game,
                kind,
                session,
            } => {
                self.matching.remove(&game);
                self.not_linked(&game, &session);
                self.find_again(session, kind, ctx);
            }
            NodeMsg::NotLinked { game, session } => self.not_linked(&game, &session),
            NodeMsg::Game {
                game,
                session,
                action,
                id,
            } => self.game_request(&game, session, action, id),
            NodeMsg::Presence {
                game,
                session,
                change,
            } => {
                if let Some(entry) = self.games.get(&game) {
                    entry.link.presence(Presence { session, change });
                }
            }
            NodeMsg::JoinGame {
                game,
                secret,
                player,
                from,
                id,
            } => self.join_from_node(game, &secret, player, from, id),
            NodeMsg::WatchGame {
                game,
                secret,
                session,
                from,
                id,
            } => self.watch_from_node(game, &secret, session, from, id),
            NodeMsg::MemberMoved {
                room,
                session,
                node,
            } => {
                let members = self.remote_members.get_mut(&room);
                if let Some(at) = members.and_then(|members| members.get_mut(&session)) {
                    *at = node;
                }
            }
            NodeMsg::PlayerMoved {
                game,
                session,
                node,
            } => {
                if let Some(players) = self.remote_players.get_mut(&game) {
                    players.insert(session, node);
                }
            }
            NodeMsg::Rehome {
                game,
                session,
                from,
            } => self.rehome_from_node(game, session, from),
            _ => {}
        }
    }

    /// Quick match: `finder`, on node `from`, was paired with `waiting`,
    /// of this node: game `game` starts here, unless `waiting` has gone
    /// (then the finder looks again).
    fn matched(
        &mut self,
        game: String,
        kind: GameKind,
        waiting: &str,
        finder: Seat,
        from: String,
        ctx: &mut Context<Self>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        if !self.still_queued(waiting, kind) {
            let session = finder.session;
            return node.forward(
                &from,
                NodeMsg::Unmatched {
                    game,
                    kind,
                    session,
                },
            );
        }
        if let Some(entry) = self.sessions.get_mut(waiting) {
            entry.queued = None;
        }
        self.answer_queued(waiting, kind);
        let finder = player_elsewhere(&node, &game, finder);
        self.remote_players
            .entry(game.clone())
            .or_default()
            .insert(finder.session.clone(), from);
        let players = self.player(waiting).into_iter().chain([finder]).collect();
        self.start(kind, players, game, true, Asker::Nobody, ctx);
    }

    /// A move or resignation from another node for game `game`.
    fn game_request(
        &self,
        game: &str,
        session: String,
        action: crate::links::Action,
        id: Option<RequestId>,
    ) {
        match self.games.get(game) {
            Some(entry) => entry.link.request(PlayerRequest {
                session,
                action,
                id,
            }),
            None => {
                let message = format!("no game {game} that you play or watch");
                let refusal = Refusal::new(ErrorCode::NotFound, action.kind(), message);
                self.refuse_elsewhere(game, &session, &refusal.with_id(id.as_ref()));
            }
        }
    }

    /// `join_game` from a player on node `from`.
    fn join_from_node(
        &mut self,
        game: String,
        secret: &str,
        seat: Seat,
        from: String,
        id: Option<RequestId>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let session = seat.session.clone();
        let player = player_elsewhere(&node, &game, seat);
        match self.seat(&game, secret, player, id.as_ref()) {
            Ok(()) => {
                let players = self.remote_players.entry(game).or_default();
                players.insert(session, from);
            }
            Err(refusal) => self.not_seated(game, session, &from, &refusal.with_id(id.as_ref())),
        }
    }

    /// `watch_game` from a spectator on node `from`.
    fn watch_from_node(
        &mut self,
        game: String,
        secret: &str,
        session: String,
        from: String,
        id: Option<RequestId>,
    ) {
        let Some(node) = self.redis() else {
            return;
        };
        let handle = node.remote_session(&game_key(&game), &session);
        if let Err(refusal) = self.watch_here(&game, secret, &session, handle, id.as_ref()) {
            self.not_seated(game, session, &from, &refusal.with_id(id.as_ref()));
        }
    }

    /// Refuses a join or watch from node `from`: the session is told, and
    /// its node stops listening to the game for it.
    fn not_seated(&self, game: String, session: String, from: &str, refusal: &Refusal) {
        self.refuse_elsewhere(&game, &session, refusal);
        if let Some(node) = self.redis() {
            node.forward(from, NodeMsg::NotLinked { game, session });
        }
    }

    /// Answers `session`, on another node, through game `game`'s channel.
    fn refuse_elsewhere(&self, game: &str, session: &str, refusal: &Refusal) {
        if let Some(node) = self.redis() {
            node.remote_session(&game_key(game), session)
                .refuse(refusal);
        }
    }

    /// Session `session`, now on node `from`, plays or watches game `game`
    /// of this node: reach it there, and resync it.
    fn rehome_from_node(&mut self, game: String, session: String, from: String) {
        let Some(node) = self.redis() else {
            return;
        };
        match self.games.get(&game) {
            Some(entry) => {
                let handle = node.remote_session(&game_key(&game), &session);
                entry.link.rehome(Rehome {
                    session: session.clone(),
                    handle,
                    resync: true,
                });
                let players = self.remote_players.entry(game).or_default();
                players.insert(session, from);
            }
            None => node.forward(&from, NodeMsg::NotLinked { game, session }),
        }
    }

    /// Session `session`, now of this node, plays or watches game `game`
    /// (it resumed here, or the game's node died): wherever the game runs
    /// now, it reaches the session here and resyncs it; if no live node
    /// runs it, this node claims it and plays it again from Redis.
    pub(super) fn recover_game(&mut self, session: &str, game: String, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let key = game_key(&game);
        // First, so that none of the game's frames for it is missed.
        node.listen(&key, session);
        let session = session.to_string();
        let claim = node.claim_game(&game);
        ctx.spawn(claim.into_actor(self).map(move |claim, lobby, ctx| {
            let Some(node) = lobby.redis() else {
                return;
            };
            match claim {
                Err(Unavailable) => {
                    log::warn!("cluster: game {game} could not be claimed for session {session}");
                }
                Ok((owner, _)) if owner != node.id() => {
                    node.route(&key, &owner);
                    lobby.play_elsewhere(&session, &game, &owner);
                    let from = node.id().to_string();
                    node.forward(
                        &owner,
                        NodeMsg::Rehome {
                            game,
                            session,
                            from,
                        },
                    );
                }
                Ok((_, epoch)) => {
                    lobby.plays(&session, &game);
                    if let Some(entry) = lobby.games.get(&game) {
                        let handle = node.remote_session(&key, &session);
                        entry.link.rehome(Rehome {
                            session,
                            handle,
                            resync: true,
                        });
                    } else if let Some(waiting) = lobby.rebuilding.get_mut(&game) {
                        waiting.push(session);
                    } else {
                        lobby.rebuilding.insert(game.clone(), vec![session]);
                        lobby.rebuild(game, epoch, ctx);
                    }
                }
            }
        }));
    }

    /// Plays game `game`, claimed by this node under `epoch`, again from
    /// what Redis keeps of it, and reaches the sessions that came back for
    /// it. A game that has ended meanwhile (or was never kept) is given up.
    fn rebuild(&mut self, game: String, epoch: u64, ctx: &mut Context<Self>) {
        let Some(node) = self.redis() else {
            return;
        };
        let load = node.load_game(&game);
        ctx.spawn(load.into_actor(self).map(move |loaded, lobby, ctx| {
            let sessions = lobby.rebuilding.remove(&game).unwrap_or_default();
            let Some(node) = lobby.redis() else {
                return;
            };
            let key = game_key(&game);
            let rebuilt = match loaded {
                Ok(Some((live, moves))) => lobby.restore(live, moves, ctx),
                Ok(None) => Err("it has ended".to_string()),
                Err(Unavailable) => Err("Redis did not answer".to_string()),
            };
            match rebuilt {
                Ok(link) => {
                    lobby.matching.remove(&game);
                    log::info!("cluster: game {game} rebuilt here from its seed and moves");
                    node.owned(&key, epoch);
                    lobby.list_game(&game);
                    for session in sessions {
                        let handle = node.remote_session(&key, &session);
                        link.rehome(Rehome {
                            session,
                            handle,
                            resync: true,
                        });
                    }
                }
                Err(why) => {
                    log::warn!("cluster: game {game} cannot be rebuilt: {why}");
                    node.release_room(&key);
                    // A match whose node died before the game started: the
                    // finder looks again.
                    let finder = lobby.matching.remove(&game);
                    for session in sessions {
                        lobby.not_linked(&game, &session);
                        if let Some((_, kind)) = finder.as_ref().filter(|(s, _)| *s == session) {
                            lobby.find_again(session, *kind, ctx);
                        }
                    }
                }
            }
        }));
    }

    /// Starts game `live` again here, its `moves` played again; every
    /// player is reached through the game's channel (this node listens to
    /// it for its own), and is away until it comes back.
    fn restore(
        &mut self,
        live: LiveGame,
        moves: Vec<StoredMove>,
        ctx: &mut Context<Self>,
    ) -> Result<crate::links::GameLink, String> {
        let node = self.redis().ok_or("no cluster")?;
        let key = game_key(&live.game_id);
        let players: Vec<Player> = live
            .players
            .iter()
            .map(|player| match player.bot {
                Some(level) => Player::bot_seat(player, level, self.metrics.clone()),
                None => Player {
                    session: player.session.clone(),
                    name: player.name.clone(),
                    color: player.color.clone(),
                    handle: node.remote_session(&key, &player.session),
                    bot: None,
                },
            })
            .collect();
        let started_at = humantime::parse_rfc3339(&live.started_at).unwrap_or(SystemTime::now());
        let new = NewGame {
            id: live.game_id.clone(),
            watch_key: live.watch_key.clone().unwrap_or_default(),
            watch_hash: live.watch_hash.clone(),
            listed: live.listed,
            players,
            seed: live.seed,
            settings: self.settings,
            finished: ctx.address().recipient(),
            closed: ctx.address().recipient(),
            metrics: self.metrics.clone(),
            store: self.store.clone(),
            created: None,
            answers: None,
        };
        let restoring = Restoring { moves, started_at };
        let link = game::restore_game(&self.workers, live.game, new, restoring)?;
        let infos = live.players.iter().zip(game::seats(live.game));
        let restored = RestoredGame {
            link: link.clone(),
            watch_hash: live.watch_hash,
            watch_key: live.watch_key.filter(|_| live.listed),
            players: infos
                .map(|(player, seat)| crate::protocol::PlayerInfo {
                    seat,
                    name: player.name.clone(),
                    color: player.color.clone(),
                    bot: player.bot.is_some(),
                })
                .collect(),
            seated: live
                .players
                .into_iter()
                .map(|player| player.session)
                .collect(),
            started_at,
        };
        self.games
            .insert(live.game_id, GameEntry::restored(restored));
        Ok(link)
    }

    /// Nodes died (`lost`), or handed games over (`released`, by key):
    /// those games are recovered for this node's players in them, and
    /// this node's games count their players on lost nodes as away (each
    /// game's grace runs for them).
    pub(super) fn games_lost(
        &mut self,
        lost: &[String],
        released: &[String],
        ctx: &mut Context<Self>,
    ) {
        let orphaned: Vec<(String, GameElsewhere)> = self
            .games_elsewhere
            .extract_if(|game, elsewhere| {
                lost.contains(&elsewhere.owner) || released.contains(&game_key(game))
            })
            .collect();
        for (game, elsewhere) in orphaned {
            for session in elsewhere.sessions {
                self.recover_game(&session, game.clone(), ctx);
            }
        }
        for (game, players) in &mut self.remote_players {
            let gone: Vec<String> = players
                .extract_if(|_, node| lost.contains(node))
                .map(|(session, _)| session)
                .collect();
            let Some(entry) = self.games.get(game) else {
                continue;
            };
            for session in gone {
                entry.link.presence(Presence {
                    session,
                    change: PresenceChange::Away,
                });
            }
        }
    }

    /// `session`'s join or watch of game `game` on another node did not
    /// go through: this node stops listening to it for `session`.
    fn not_linked(&mut self, game: &str, session: &str) {
        let Some(node) = self.redis() else {
            return;
        };
        node.unlisten(&game_key(game), session);
        if let Some(entry) = self.sessions.get_mut(session) {
            entry.games.retain(|played| played != game);
        }
        if let Some(elsewhere) = self.games_elsewhere.get_mut(game) {
            elsewhere.sessions.remove(session);
        }
    }
}

/// A player on another node, as game `game` (of this node) reaches it.
fn player_elsewhere(node: &Arc<RedisNode>, game: &str, seat: Seat) -> Player {
    Player {
        handle: node.remote_session(&game_key(game), &seat.session),
        session: seat.session,
        name: seat.name,
        color: seat.color,
        bot: None,
    }
}

impl Handler<GameEnded> for Lobby {
    type Result = ();

    /// A game another node runs ended: its players here no longer count it.
    fn handle(&mut self, msg: GameEnded, _: &mut Context<Self>) {
        self.matching.remove(&msg.game);
        let Some(elsewhere) = self.games_elsewhere.remove(&msg.game) else {
            return;
        };
        for session in elsewhere.sessions {
            if let Some(entry) = self.sessions.get_mut(&session) {
                entry.games.retain(|game| *game != msg.game);
            }
            self.record_session(&session);
        }
    }
}
