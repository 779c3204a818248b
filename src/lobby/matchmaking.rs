//! Games from the Lobby's side: quick-match queues, private games with
//! their join and watch keys, the directory of games (`/api/games`), and
//! `games.max_per_session`.

use std::{collections::VecDeque, time::SystemTime};

use actix::prelude::*;

use super::{Lobby, RestoredGame};
use crate::{
    game::{self, Asked, Created, NewGame, Published},
    identity,
    links::{
        GameClosed, GameFinished, GameLink, LobbyAction, LobbyRequest, Player, SessionHandle,
        TakeSeat, Watch,
    },
    protocol::{
        self, BotLevel, ErrorCode, First, GameKind, GameListing, PlayBot, PlayerInfo, Refusal,
        RequestId, ServerMsg,
    },
};

/// Drops a random u64 to 53 bits, the integers a JSON number holds exactly.
const SEED_SHIFT: u32 = 11;

/// What the Lobby knows of one game.
pub(super) struct GameEntry {
    /// How to reach the game.
    pub(super) link: GameLink,
    /// The secret of the join key until a second player spends it.
    join_secret: Option<String>,
    /// The hash of the watch key's secret.
    watch_hash: String,
    /// The whole watch key, as `/api/games` lists it.
    watch_key: String,
    /// The session that created a private game.
    creator: Option<String>,
    /// Quick matches are listed by `/api/games`; private games never.
    listed: bool,
    /// The seated players, in seat order, as they were when seated.
    players: Vec<PlayerInfo>,
    /// Their session ids, in seat order.
    seated: Vec<String>,
    /// When the game was started.
    started_at: SystemTime,
    /// Set once the game has ended (it lingers a while after).
    pub(super) finished: bool,
}

impl GameEntry {
    /// Game `game_id` as `/api/games` lists it, if it is listed and in play.
    pub(super) fn listing(&self, game_id: &str) -> Option<GameListing> {
        (self.listed && !self.finished).then(|| GameListing {
            game_id: game_id.to_string(),
            game: self.link.kind,
            players: self.players.clone(),
            watch_key: self.watch_key.clone(),
            started_at: protocol::rfc3339(self.started_at),
        })
    }

    /// The entry of a game in play brought back after a restart.
    pub(super) fn restored(game: RestoredGame) -> GameEntry {
        GameEntry {
            link: game.link,
            join_secret: None,
            watch_hash: game.watch_hash,
            listed: game.watch_key.is_some(),
            watch_key: game.watch_key.unwrap_or_default(),
            creator: None,
            players: game.players,
            seated: game.seated,
            started_at: game.started_at,
            finished: false,
        }
    }
}

/// Whose request a new game answers, and how.
#[derive(Clone, Copy)]
pub(super) enum Asker<'a> {
    /// A quick match: nobody's request (each player was answered `queued`).
    Nobody,
    /// `create_game`: the creator gets `game_created`.
    Creator(&'a str, Option<&'a RequestId>),
    /// `play_bot`: the player's `game_start` answers it.
    Player(&'a str, Option<&'a RequestId>),
}

impl Asker<'_> {
    /// A private game's creator and the request `game_created` answers.
    fn creator(self) -> Option<(String, Option<RequestId>)> {
        match self {
            Asker::Creator(session, id) => Some((session.to_string(), id.cloned())),
            _ => None,
        }
    }

    /// The player whose request `game_start` answers.
    fn player(self) -> Option<Asked> {
        match self {
            Asker::Player(session, id) => Some(Asked {
                session: session.to_string(),
                id: id.cloned(),
            }),
            _ => None,
        }
    }
}

/// Lists the quick matches in progress, for `/api/games`.
#[derive(Message)]
#[rtype(result = "Vec<GameListing>")]
pub struct ListGames;

impl Handler<LobbyRequest> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: LobbyRequest, ctx: &mut Context<Self>) {
        let LobbyRequest {
            session,
            action,
            id,
        } = msg;
        let Some(handle) = self
            .sessions
            .get(&session)
            .and_then(|entry| entry.handle.clone())
        else {
            return;
        };
        let id = id.as_ref();
        let answer = match action {
            LobbyAction::Find(kind) => self.find(&session, kind, &handle, id, ctx),
            LobbyAction::Cancel(kind) => Ok(Some(self.cancel(&session, kind))),
            LobbyAction::Create(kind) => self.create(&session, kind, id, ctx).map(|()| None),
            LobbyAction::Join(key) => self.join(&session, &key, id, ctx).map(|()| None),
            LobbyAction::Watch(key) => self.watch(&session, &handle, &key, id, ctx).map(|()| None),
            LobbyAction::PlayBot(play) => self.play_bot(&session, &play, id, ctx).map(|()| None),
        };
        match answer {
            Ok(Some(reply)) => handle.reply(&reply, id),
            Ok(None) => {}
            Err(refusal) => handle.refuse(&refusal.with_id(id)),
        }
    }
}

impl Lobby {
    /// `find_game`: answer `queued`, then pair with the longest-waiting
    /// player, start at once (one-player games), or wait in the queue.
    fn find(
        &mut self,
        session: &str,
        kind: GameKind,
        handle: &SessionHandle,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<Option<ServerMsg>, Refusal> {
        if let Some(queued) = self.sessions.get(session).and_then(|entry| entry.queued) {
            let message = format!("already queued for {}", queued.as_str());
            return Err(Refusal::new(ErrorCode::AlreadyQueued, "find_game", message));
        }
        self.check_game_count(session, "find_game")?;
        self.offer_bot_later(session, kind, ctx);
        if game::seats(kind).len() > 1 && !self.backplane.is_local() {
            // The queue is the cluster's: `queued` once in it.
            self.find_elsewhere(session, kind, Some(id.cloned()), ctx);
            return Ok(None);
        }
        handle.reply(&ServerMsg::Queued { game: kind }, id);
        if game::seats(kind).len() == 1 {
            self.launch(kind, vec![session.to_string()], true, Asker::Nobody, ctx);
            return Ok(None);
        }
        match self.pop_live(kind) {
            Some(opponent) => {
                self.launch(
                    kind,
                    vec![opponent, session.to_string()],
                    true,
                    Asker::Nobody,
                    ctx,
                );
            }
            None => {
                self.queues
                    .entry(kind)
                    .or_default()
                    .push_back(session.to_string());
                if let Some(entry) = self.sessions.get_mut(session) {
                    entry.queued = Some(kind);
                }
            }
        }
        self.count_queue(kind);
        Ok(None)
    }

    /// `create_game`: a private game, its creator seated.
    fn create(
        &mut self,
        session: &str,
        kind: GameKind,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), Refusal> {
        self.check_game_count(session, "create_game")?;
        self.launch(
            kind,
            vec![session.to_string()],
            false,
            Asker::Creator(session, id),
            ctx,
        );
        Ok(())
    }

    /// Has `session`, now looking for a game of `kind`, play a medium bot
    /// if it is still alone in the queue after `games.bot_after_ms`.
    fn offer_bot_later(&mut self, session: &str, kind: GameKind, ctx: &mut Context<Self>) {
        if self.bot_after.is_zero() || game::seats(kind).len() != 2 {
            return;
        }
        if !self.sessions.contains_key(session) {
            return;
        }
        let id = session.to_string();
        let offer = ctx.run_later(self.bot_after, move |lobby, ctx| {
            lobby.bot_instead(&id, kind, ctx);
        });
        let earlier = self
            .sessions
            .get_mut(session)
            .and_then(|entry| entry.bot_offer.replace(offer));
        if let Some(earlier) = earlier {
            ctx.cancel_future(earlier);
        }
    }

    /// `session` waited alone too long for a game of `kind`: it leaves the
    /// queue and plays a medium bot, with the same `game_start` a match
    /// would bring.
    fn bot_instead(&mut self, session: &str, kind: GameKind, ctx: &mut Context<Self>) {
        if let Some(entry) = self.sessions.get_mut(session) {
            entry.bot_offer = None;
        }
        if !self.still_queued(session, kind) {
            return;
        }
        self.answer_queued(session, kind);
        self.cancel(session, kind);
        let Some(person) = self.player(session) else {
            return;
        };
        let bot = Player::bot(BotLevel::Medium, self.metrics.clone());
        let game_id = identity::new_id(identity::GAME_PREFIX);
        self.start(kind, vec![person, bot], game_id, true, Asker::Nobody, ctx);
    }

    /// `play_bot`: a game against a bot at once, on this node, listed like
    /// a quick match; its `game_start` answers the request.
    fn play_bot(
        &mut self,
        session: &str,
        play: &PlayBot,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), Refusal> {
        if game::seats(play.game).len() != 2 {
            let message = format!("{} is played alone: it has no bot", play.game.as_str());
            return Err(Refusal::new(ErrorCode::BadRequest, "play_bot", message));
        }
        self.check_game_count(session, "play_bot")?;
        let Some(person) = self.player(session) else {
            return Ok(());
        };
        let bot = Player::bot(play.level, self.metrics.clone());
        let bot_first = match play.first {
            First::You => false,
            First::Bot => true,
            First::Random => rand::random(),
        };
        let players = if bot_first {
            vec![bot, person]
        } else {
            vec![person, bot]
        };
        let game_id = identity::new_id(identity::GAME_PREFIX);
        let asker = Asker::Player(session, id);
        self.start(play.game, players, game_id, true, asker, ctx);
        Ok(())
    }

    /// Refuses `too_many_games` when `session` already waits in or plays
    /// `games.max_per_session` games (watching does not count).
    fn check_game_count(&self, session: &str, request: &str) -> Result<(), Refusal> {
        let Some(entry) = self.sessions.get(session) else {
            return Ok(());
        };
        // A game another node runs counts until it ends.
        let playing = entry
            .games
            .iter()
            .filter(|game| self.games.get(*game).is_none_or(|game| !game.finished))
            .count();
        let count = playing + usize::from(entry.queued.is_some());
        if count < self.max_games {
            return Ok(());
        }
        let message =
            format!("already in {count} games, the most a session may wait in or play at once");
        Err(Refusal::new(ErrorCode::TooManyGames, request, message))
    }

    /// The longest-waiting session in `kind`'s queue that is still connected.
    fn pop_live(&mut self, kind: GameKind) -> Option<String> {
        while let Some(session) = self.queues.get_mut(&kind)?.pop_front() {
            let Some(entry) = self.sessions.get_mut(&session) else {
                continue;
            };
            entry.queued = None;
            if entry.connected().is_some() {
                return Some(session);
            }
        }
        None
    }

    /// `cancel_find`: leave the queue if in it; answered either way.
    fn cancel(&mut self, session: &str, kind: GameKind) -> ServerMsg {
        let entry = self.sessions.get_mut(session);
        if let Some(entry) = entry.filter(|entry| entry.queued == Some(kind)) {
            entry.queued = None;
            self.leave_queue(kind, session);
        }
        ServerMsg::FindCancelled { game: kind }
    }

    /// Takes `session` out of `kind`'s queue.
    pub(super) fn leave_queue(&mut self, kind: GameKind, session: &str) {
        if let Some(node) = self.backplane.node() {
            node.leave_queue(kind, session);
        }
        if let Some(queue) = self.queues.get_mut(&kind) {
            queue.retain(|queued| queued != session);
        }
        self.count_queue(kind);
    }

    fn count_queue(&self, kind: GameKind) {
        let length = self.queues.get(&kind).map_or(0, VecDeque::len);
        self.metrics.queue_length(kind, length);
    }

    /// `join_game`: spend the join key and take the free seat, here or on
    /// the node that runs the game.
    fn join(
        &mut self,
        session: &str,
        key: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), Refusal> {
        let (game_id, secret) =
            identity::split_token(key, identity::GAME_PREFIX).ok_or_else(no_join)?;
        self.check_game_count(session, "join_game")?;
        let player = self.player(session).ok_or_else(no_join)?;
        if !self.games.contains_key(&game_id) && !self.backplane.is_local() {
            self.join_elsewhere_game(player, game_id, secret.to_string(), id, ctx);
            return Ok(());
        }
        self.seat(&game_id, secret, player, id)
    }

    /// Seats `player` in game `game_id`, which this node runs, if `secret`
    /// is its join key's and its seat is free: the key is spent.
    pub(super) fn seat(
        &mut self,
        game_id: &str,
        secret: &str,
        player: Player,
        id: Option<&RequestId>,
    ) -> Result<(), Refusal> {
        let game = self.games.get(game_id).ok_or_else(no_join)?;
        let valid = game
            .join_secret
            .as_deref()
            .is_some_and(|expected| identity::secrets_match(secret, expected));
        let seats = game::seats(game.link.kind);
        let seat_free = game.players.len() < seats.len();
        if !valid || !seat_free || game.finished || !game.link.alive() {
            return Err(no_join());
        }
        if game.creator.as_deref() == Some(player.session.as_str()) {
            let message = "you cannot join your own game";
            return Err(Refusal::new(ErrorCode::BadRequest, "join_game", message));
        }
        let link = game.link.clone();
        let session = player.session.clone();
        if let Some(game) = self.games.get_mut(game_id) {
            game.join_secret = None;
            let seat = seats.get(game.players.len()).copied().unwrap_or_default();
            game.players.push(PlayerInfo {
                seat,
                name: player.name.clone(),
                color: player.color.clone(),
                bot: player.bot.is_some(),
            });
            game.seated.push(session.clone());
        }
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.games.push(game_id.to_string());
        }
        self.keep_seated(&session);
        self.list_game(game_id);
        link.take_seat(TakeSeat {
            player,
            id: id.cloned(),
        });
        Ok(())
    }

    /// `watch_game`: hand the watcher to the game, which answers
    /// `game_state`, here or on the node that runs it.
    fn watch(
        &mut self,
        session: &str,
        handle: &SessionHandle,
        key: &str,
        id: Option<&RequestId>,
        ctx: &mut Context<Self>,
    ) -> Result<(), Refusal> {
        let (game_id, secret) =
            identity::split_token(key, identity::GAME_PREFIX).ok_or_else(no_watch)?;
        if !self.games.contains_key(&game_id) && !self.backplane.is_local() {
            let secret = secret.to_string();
            self.watch_elsewhere(session, game_id, secret, id, ctx);
            return Ok(());
        }
        self.watch_here(&game_id, secret, session, handle.clone(), id)
    }

    /// Adds spectator `session` to game `game_id`, which this node runs,
    /// if `secret` is its watch key's.
    pub(super) fn watch_here(
        &self,
        game_id: &str,
        secret: &str,
        session: &str,
        handle: SessionHandle,
        id: Option<&RequestId>,
    ) -> Result<(), Refusal> {
        let game = self.games.get(game_id).ok_or_else(no_watch)?;
        if !identity::matches_hash(secret, &game.watch_hash) || !game.link.alive() {
            return Err(no_watch());
        }
        game.link.watch(Watch {
            session: session.to_string(),
            handle,
            id: id.cloned(),
        });
        Ok(())
    }

    pub(super) fn player(&self, session: &str) -> Option<Player> {
        let entry = self.sessions.get(session)?;
        Some(Player {
            session: session.to_string(),
            name: entry.name.clone(),
            color: entry.color.clone(),
            handle: entry.handle.clone()?,
            bot: None,
        })
    }

    /// Starts a game of `kind` with `players` seated in order. `asker`
    /// names the request the game answers, if any.
    fn launch(
        &mut self,
        kind: GameKind,
        players: Vec<String>,
        listed: bool,
        asker: Asker<'_>,
        ctx: &mut Context<Self>,
    ) {
        let players: Vec<Player> = players
            .iter()
            .filter_map(|session| self.player(session))
            .collect();
        let game_id = identity::new_id(identity::GAME_PREFIX);
        self.start(kind, players, game_id, listed, asker, ctx);
    }

    /// Starts game `game_id` of `kind` with `players` (here or on other
    /// nodes) seated in order.
    pub(super) fn start(
        &mut self,
        kind: GameKind,
        players: Vec<Player>,
        game_id: String,
        listed: bool,
        asker: Asker<'_>,
        ctx: &mut Context<Self>,
    ) {
        let watch_secret = identity::new_secret();
        let watch_key = identity::token(&game_id, &watch_secret);
        let infos = players
            .iter()
            .zip(game::seats(kind))
            .map(|(player, seat)| PlayerInfo {
                seat,
                name: player.name.clone(),
                color: player.color.clone(),
                bot: player.bot.is_some(),
            });
        let infos: Vec<PlayerInfo> = infos.collect();
        let seated = players
            .iter()
            .map(|player| player.session.clone())
            .collect();
        for player in &players {
            if let Some(entry) = self.sessions.get_mut(&player.session) {
                entry.games.push(game_id.clone());
            }
            self.keep_seated(&player.session);
            self.record_session(&player.session);
        }
        // A game with one seat has none to offer.
        let join_secret = (game::seats(kind).len() > players.len()).then(identity::new_secret);
        let node = self.backplane.node();
        if let Some(node) = &node {
            node.own_game(&game_id, kind);
        }
        // The game itself answers its creator: after the link, before
        // `game_start` (it runs on another thread than the Lobby), and
        // once other nodes can find it by the keys it hands out.
        let created = asker.creator().map(|(_, id)| {
            let published = node.map(|node| Box::pin(node.written()) as Published);
            let created = ServerMsg::GameCreated {
                game_id: game_id.clone(),
                game: kind,
                join_key: join_secret
                    .as_ref()
                    .map(|secret| identity::token(&game_id, secret)),
                watch_key: watch_key.clone(),
            };
            Created {
                answer: created.encode_reply(id.as_ref()),
                published,
            }
        });
        let lobby = ctx.address();
        let link = game::start_game(
            &self.workers,
            kind,
            NewGame {
                id: game_id.clone(),
                watch_key: watch_key.clone(),
                watch_hash: identity::secret_hash(&watch_secret),
                listed,
                players,
                // 53 bits: a seed any JSON reader (JavaScript too) reads exactly.
                seed: rand::random::<u64>() >> SEED_SHIFT,
                settings: self.settings,
                finished: lobby.clone().recipient(),
                closed: lobby.recipient(),
                metrics: self.metrics.clone(),
                store: self.store.clone(),
                created,
                answers: asker.player(),
            },
        );
        let entry = GameEntry {
            link,
            join_secret,
            watch_hash: identity::secret_hash(&watch_secret),
            watch_key,
            creator: asker.creator().map(|(session, _)| session.to_string()),
            listed,
            players: infos,
            seated,
            started_at: SystemTime::now(),
            finished: false,
        };
        self.games.insert(game_id.clone(), entry);
        if self.backplane.node().is_some() {
            self.list_game(&game_id);
        }
    }
}

pub(super) fn no_join() -> Refusal {
    let message = "no game waits for that join key";
    Refusal::new(ErrorCode::NotFound, "join_game", message)
}

pub(super) fn no_watch() -> Refusal {
    let message = "no game with that watch key";
    Refusal::new(ErrorCode::NotFound, "watch_game", message)
}

impl Handler<GameFinished> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: GameFinished, _: &mut Context<Self>) {
        if let Some(game) = self.games.get_mut(&msg.game_id) {
            game.finished = true;
            game.join_secret = None;
        }
        if let Some(node) = self.backplane.node() {
            node.game_ended(&msg.game_id, false);
            node.unlist_game(&msg.game_id);
        }
    }
}

impl Handler<GameClosed> for Lobby {
    type Result = ();

    fn handle(&mut self, msg: GameClosed, _: &mut Context<Self>) {
        let Some(game) = self.games.remove(&msg.game_id) else {
            return;
        };
        if let Some(node) = self.backplane.node() {
            node.game_ended(&msg.game_id, true);
        }
        self.remote_players.remove(&msg.game_id);
        for session in &game.seated {
            if let Some(entry) = self.sessions.get_mut(session) {
                entry.games.retain(|game| *game != msg.game_id);
                self.record_session(session);
            }
        }
    }
}

impl Handler<ListGames> for Lobby {
    type Result = MessageResult<ListGames>;

    fn handle(&mut self, _: ListGames, _: &mut Context<Self>) -> Self::Result {
        let mut listings: Vec<GameListing> = self
            .games
            .iter()
            .filter_map(|(game_id, game)| game.listing(game_id))
            .collect();
        listings.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.game_id.cmp(&b.game_id))
        });
        MessageResult(listings)
    }
}
