// The game page: one game of tic-tac-toe, connect four or match three, for a
// player or a spectator.
//
//   play.html?game=ID    a game this tab's session sits in; the session is
//                        resumed (token in sessionStorage) and the server
//                        sends `resumed` + `game_state` with `you`.
//   play.html?join=KEY   takes a private game's free seat (`join_game`).
//   play.html?watch=KEY  spectates (`watch_game`), read-only.
//
// Events (`moved`, `game_over`, …) go through one queue so that animations
// (a disc dropping, a match-three cascade step by step) finish in order.
// Test hooks: `[data-cell]`, `[data-column]`, `[data-r][data-c]`, `#status`;
// `#board[data-busy]` while animating, `#board[data-moves]` moves shown.

import {
  connect, el, safeColor, initialOf, param, showError, clearError, WATCH_PREFIX, CREATED_KEY,
} from "./client.js";

const $ = (id) => document.getElementById(id);
const boardEl = $("board");
const statusEl = $("status");
const detailEl = $("detail");
const errorEl = $("error");

const GAMES = {
  tictactoe: { title: "Tic-tac-toe", seats: ["X", "O"], labels: { X: "X", O: "O" } },
  connect4: { title: "Connect four", seats: ["red", "yellow"], labels: { red: "Red", yellow: "Yellow" } },
  match3: { title: "Match three", seats: ["solo"], labels: { solo: "Solo" } },
};
/** Connect four's board, fixed by the protocol. */
const C4_ROWS = 6;
const C4_COLS = 7;
/** Match three's board and move limit, fixed by the protocol. */
const M3_SIZE = 8;
const M3_MOVES = 30;
/** A page change drops and resumes a player within this; no banner for that. */
const AWAY_NOTICE_DELAY_MS = 1200;
/** How long "… is back" stays up. */
const BACK_NOTICE_MS = 2500;
/** Match three animation timings. */
const SWAP_MS = 170;
const CLEAR_MS = 240;
const FALL_MS = 300;
/** Resign asks for a second click within this. */
const CONFIRM_MS = 3000;

/** What the URL asked for: `game` (a seat), `join` or `watch`. */
let mode = param("join") ? "join" : param("watch") ? "watch" : "game";
const wanted = { gameId: param("game"), joinKey: param("join"), watchKey: param("watch") };

/**
 * The game shown: `{id, kind, you, players, turn, board, status, result,
 * winner, line, moves, score, movesLeft, last, watchKey}`; null until known.
 */
let game = null;
/** Serialises game events so animations play in order. */
let queue = Promise.resolve();
/** Bumped by a full snapshot: animations of an older one stop. */
let generation = 0;
/** A move sent and not yet answered: the board waits. */
let pending = false;
/** "Play again" was asked for: the next `game_start` is ours. */
let searching = false;
/** A match-three cascade is being animated: no picking meanwhile. */
let busy = false;
/** The first match-three gem picked, `[r, c]`. */
let picked = null;
const away = { timer: null, ticker: null, seat: null };

const client = connect({
  welcome() {
    setSearching(false);
    pending = false;
  },
  ready,
  game_start: onStart,
  game_state: onState,
  moved(msg) {
    if (!isCurrent(msg)) return;
    pending = false;
    enqueue((gen) => applyMove(msg, gen));
  },
  game_over(msg) {
    if (!isCurrent(msg)) return;
    enqueue(() => applyOver(msg));
  },
  opponent_away: onAway,
  opponent_back: onBack,
  queued(msg) {
    if (searching && msg.game !== "match3") $("again-wait").hidden = false;
  },
  find_cancelled() {
    setSearching(false);
  },
  room_joined(msg) {
    // A resumed session comes back into its rooms; this page shows none.
    client.send({ type: "leave_room", room: msg.room });
  },
  error: onError,
});

// Arriving

/** Once the session is settled: resume, join or watch. */
function ready(info) {
  if (mode === "watch") {
    // A session that already watches this game gets its state back from
    // the resume itself (or missed nothing); a new page asks.
    const watching = game && info.games.includes(game.id);
    if (!watching) client.send({ type: "watch_game", watch_key: wanted.watchKey });
  } else if (mode === "join") {
    if (!wanted.joinKey) return unavailable("This invite link is incomplete.");
    // Another tab of this browser created the game: joining would take the
    // seat meant for the friend the link was sent to.
    if (createdHere(wanted.joinKey)) {
      return unavailable("This is the invite link of your own game, open in another tab. Send it to a friend: the game starts when they open it.");
    }
    client.send({ type: "join_game", join_key: wanted.joinKey });
  } else if (!wanted.gameId) {
    unavailable("No game was named in the link.");
  } else if (!info.games.includes(wanted.gameId)) {
    explainGame(wanted.gameId);
  }
}

/** Whether this browser created the private game of `joinKey` (the lobby keeps their ids in localStorage). */
function createdHere(joinKey) {
  try {
    const created = JSON.parse(localStorage.getItem(CREATED_KEY) || "[]");
    return Array.isArray(created) && created.some((entry) => {
      const id = entry && typeof entry.game_id === "string" ? entry.game_id : "";
      const random = id.slice(id.indexOf("_") + 1);
      return random.length > 0 && joinKey.startsWith(random);
    });
  } catch {
    return false;
  }
}

/**
 * A game this session does not sit in: offers to watch it while it is
 * public and live, says it ended only when it has (its record is kept),
 * and otherwise that it cannot be shown.
 */
async function explainGame(gameId) {
  // Lists, not `/api/history/{id}`: an unknown id there is a 404, which
  // the browser logs as an error.
  const [live, ended] = await Promise.all([fetchJson("/api/games"), fetchJson("/api/history?limit=100")]);
  const listed = Array.isArray(live) ? live.find((g) => g && g.game_id === gameId) : null;
  const record = Array.isArray(ended) ? ended.find((g) => g && g.game_id === gameId) : null;
  if (game) return;
  if (listed && typeof listed.watch_key === "string") {
    unavailable("You are not playing in this game, but you can watch it.");
    const watch = $("watch-instead");
    watch.href = `play.html?watch=${encodeURIComponent(listed.watch_key)}`;
    watch.hidden = false;
    return;
  }
  if (record) {
    unavailable("This game has ended.");
    statusEl.textContent = "Game over";
    return;
  }
  unavailable("This game is not available: it may be private, or it never existed.");
}

async function fetchJson(path) {
  try {
    const response = await fetch(path, { cache: "no-store" });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

function onStart(msg) {
  const ours = game && msg.game_id === game.id;
  const expected = mode === "join" || searching || (mode === "game" && msg.game_id === wanted.gameId);
  if (!ours && !expected) return;
  setSearching(false);
  const watchKey = msg.watch_key || (game && game.watchKey);
  show({ ...msg, status: "playing", moves: [], result: null, winner: null }, watchKey);
  if (msg.you) {
    mode = "game";
    wanted.gameId = msg.game_id;
    remember(msg.game_id, watchKey);
    history.replaceState(null, "", `play.html?game=${encodeURIComponent(msg.game_id)}`);
  }
}

function onState(msg) {
  const ours = game ? msg.game_id === game.id : mode === "watch" || msg.game_id === wanted.gameId;
  if (!ours) return;
  show(msg, (game && game.watchKey) || recall(msg.game_id) || wanted.watchKey);
}

/** Replaces whatever is shown with a full snapshot. */
function show(msg, watchKey) {
  generation += 1;
  queue = Promise.resolve();
  pending = false;
  busy = false;
  delete boardEl.dataset.busy;
  picked = null;
  const moves = Array.isArray(msg.moves) ? msg.moves : [];
  const last = moves.length ? moves[moves.length - 1] : null;
  game = {
    id: msg.game_id,
    kind: msg.game,
    you: msg.you || null,
    players: Array.isArray(msg.players) ? msg.players : [],
    turn: msg.turn || null,
    board: msg.board,
    status: msg.status || "playing",
    result: msg.result || null,
    winner: msg.winner || null,
    line: [],
    moves: moves.length,
    score: last && typeof last.score === "number" ? last.score : 0,
    movesLeft: last && typeof last.moves_left === "number" ? last.moves_left : M3_MOVES,
    last: null,
    fresh: false,
    watchKey: watchKey || null,
  };
  renderAll();
}

/** The game asked for cannot be shown or played (any more). */
function unavailable(why) {
  if (game && game.status === "over") return;
  if (game) {
    // Shown before, gone now (say, the server restarted): keep the board, stop play.
    game.status = "gone";
    game.goneWhy = why;
    renderAll();
    return;
  }
  statusEl.textContent = "Game unavailable";
  statusEl.dataset.state = "gone";
  detailEl.textContent = why;
  $("game-title").textContent = "No game here";
}

function isCurrent(msg) {
  return game !== null && msg.game_id === game.id;
}

// Events in order

function enqueue(step) {
  const gen = generation;
  queue = queue.then(() => (gen === generation ? step(gen) : undefined)).catch((err) => {
    showError(errorEl, `Could not show that move: ${err.message}`);
  });
}

async function applyMove(msg, gen) {
  if (game.kind === "match3") await animateCascade(msg, gen);
  if (gen !== generation) return;
  const before = game.score;
  game.board = msg.board;
  game.turn = msg.turn || null;
  game.moves += 1;
  game.last = msg.move;
  // The newest piece animates once, not again on the next render.
  game.fresh = true;
  if (game.kind === "match3") {
    game.score = msg.move.score;
    game.movesLeft = msg.move.moves_left;
  }
  renderAll();
  game.fresh = false;
  if (game.kind === "match3") showGain(game.score - before);
}

function applyOver(msg) {
  game.status = "over";
  game.turn = null;
  game.result = msg.result;
  game.winner = msg.winner || null;
  game.line = Array.isArray(msg.line) ? msg.line : [];
  if (typeof msg.score === "number") game.score = msg.score;
  hideAway();
  renderAll();
}

// Rendering

function renderAll() {
  const info = GAMES[game.kind];
  document.title = `${info.title} · Parlor`;
  document.body.dataset.game = game.kind;
  $("game-title").textContent = info.title;
  const over = game.status === "over" || game.status === "gone";
  $("game-mode").textContent = over ? "Game over" : game.you ? (game.status === "waiting" ? "Private game" : "Playing") : "Watching";
  $("watching").hidden = Boolean(game.you);
  renderPlayers();
  renderStatus();
  renderBoard();
  renderStats();
  renderActions();
  boardEl.dataset.moves = String(game.moves);
  boardEl.dataset.status = game.status;
}

function renderPlayers() {
  const info = GAMES[game.kind];
  const chips = info.seats.map((seat) => {
    const player = game.players.find((p) => p.seat === seat);
    if (!player) {
      return el("div", { class: "player empty", dataset: { seat } },
        el("span", { class: "avatar small" }),
        el("span", { class: "player-text" },
          el("span", { class: "player-name" }, "Waiting for a player…"),
          el("span", { class: "player-seat" }, info.labels[seat])));
    }
    const avatar = el("span", { class: "avatar small", dataset: { initial: initialOf(player.name) } });
    avatar.style.backgroundColor = safeColor(player.color);
    const classes = ["player"];
    if (game.turn === seat && game.status === "playing") classes.push("turn");
    if (game.winner === seat) classes.push("winner");
    if (game.you === seat) classes.push("me");
    return el("div", { class: classes.join(" "), dataset: { seat } },
      avatar,
      el("span", { class: "player-text" },
        el("span", { class: "player-name" }, player.name),
        el("span", { class: "player-seat" },
          el("span", { class: `seat-mark seat-${seat}`, "aria-hidden": "true" }),
          seat === "solo" ? "" : info.labels[seat],
          game.you === seat ? el("span", { class: "you-tag" }, "you") : null,
          player.bot === true ? el("span", { class: "you-tag bot-tag" }, "computer") : null)));
  });
  $("players").replaceChildren(...chips);
}

function label(seat) {
  return GAMES[game.kind].labels[seat] || seat;
}

function nameOf(seat) {
  const player = game.players.find((p) => p.seat === seat);
  return player ? player.name : label(seat);
}

function renderStatus() {
  const [text, state, detail] = statusOf();
  statusEl.textContent = text;
  statusEl.dataset.state = state;
  if (detail !== undefined) detailEl.textContent = detail;
}

/** `[status text, state, detail]` for the game as it stands. */
function statusOf() {
  const g = game;
  if (g.status === "waiting") {
    return ["Waiting for an opponent to join", "waiting", g.you ? "Send your friend the join link from the lobby." : ""];
  }
  if (g.status === "over") return overText();
  if (g.status === "gone") return ["Game unavailable", "gone", g.goneWhy];
  if (g.kind === "match3") {
    return g.you
      ? ["Your turn", "mine", "Swap two neighbouring gems to make a line of three."]
      : [`${nameOf("solo")} is playing`, "theirs", ""];
  }
  if (g.you && g.turn === g.you) return ["Your turn", "mine", `You play ${label(g.you)}.`];
  if (g.you) return [`Waiting for ${label(g.turn)}`, "theirs", `${nameOf(g.turn)} is thinking…`];
  return [`${label(g.turn)} to move`, "theirs", `${nameOf(g.turn)} is thinking…`];
}

function overText() {
  const g = game;
  if (g.kind === "match3") {
    const how = g.result === "forfeit" ? "resigned" : g.result === "abandoned" ? "abandoned" : "no moves left";
    return [`Game over — ${g.score} points`, "over", `Final score (${how}).`];
  }
  if (g.result === "draw") return ["Draw", "over", "Nobody made a line this time."];
  if (!g.winner) {
    const why = g.result === "forfeit" ? "The game was called off." : "Both players left.";
    return ["Game abandoned", "over", why];
  }
  const loser = GAMES[g.kind].seats.find((seat) => seat !== g.winner);
  let text = `${label(g.winner)} wins`;
  if (g.result === "forfeit") text += ` — ${label(loser)} resigned`;
  if (g.result === "abandoned") text += ` — ${label(loser)} left`;
  let detail = `${nameOf(g.winner)} takes it.`;
  if (g.you) detail = g.you === g.winner ? "You win! Well played." : "You lose this one.";
  return [text, "over", detail];
}

function canMove() {
  return game.status === "playing" && game.you !== null && game.turn === game.you && !pending && !busy;
}

function renderBoard() {
  boardEl.className = `board board-${game.kind}`;
  boardEl.classList.toggle("my-turn", canMove());
  boardEl.classList.toggle("read-only", !game.you);
  if (game.you) boardEl.dataset.you = game.you;
  if (game.kind === "tictactoe") renderTicTacToe();
  if (game.kind === "connect4") renderConnect4();
  if (game.kind === "match3") renderMatch3(game.board);
}

function renderTicTacToe() {
  const board = Array.isArray(game.board) ? game.board : [];
  const line = new Set(game.line);
  const cells = [];
  for (let i = 0; i < 9; i += 1) {
    const mark = board[i] === "X" || board[i] === "O" ? board[i] : null;
    const classes = ["cell"];
    if (line.has(i)) classes.push("win");
    if (game.fresh && game.last.cell === i) classes.push("placed");
    cells.push(el("button", {
      type: "button",
      class: classes.join(" "),
      dataset: { cell: i, mark: mark || "" },
      disabled: Boolean(mark) || !canMove(),
      "aria-label": `Row ${Math.floor(i / 3) + 1}, column ${(i % 3) + 1}${mark ? `: ${mark}` : ""}`,
      onclick: () => play({ cell: i }),
    }, mark ? el("span", { class: `mark mark-${mark}` }, mark) : null));
  }
  boardEl.replaceChildren(...cells);
}

function renderConnect4() {
  const rows = Array.isArray(game.board) ? game.board : [];
  const at = (r, c) => (rows[r] && (rows[r][c] === "red" || rows[r][c] === "yellow") ? rows[r][c] : null);
  const line = new Set(game.line.map((cell) => `${cell[0]},${cell[1]}`));
  const columns = [];
  for (let c = 0; c < C4_COLS; c += 1) {
    const slots = [];
    let next = -1;
    for (let r = 0; r < C4_ROWS; r += 1) if (next < 0 && !at(r, c)) next = r;
    // Row 0 is the bottom: build from the top row down.
    for (let r = C4_ROWS - 1; r >= 0; r -= 1) {
      const disc = at(r, c);
      const slot = el("span", { class: `slot${r === next ? " next" : ""}`, dataset: { row: r, col: c } });
      if (disc) {
        const node = el("span", { class: `disc disc-${disc}${line.has(`${r},${c}`) ? " win" : ""}` });
        if (game.fresh && game.last.column === c && game.last.row === r) {
          node.classList.add("drop");
          node.style.setProperty("--fall", String(C4_ROWS - r));
        }
        slot.append(node);
      }
      slots.push(slot);
    }
    columns.push(el("button", {
      type: "button",
      class: "column",
      dataset: { column: c },
      disabled: next < 0 || !canMove(),
      "aria-label": `Column ${c + 1}`,
      onclick: () => play({ column: c }),
    }, slots));
  }
  boardEl.replaceChildren(...columns);
}

function renderMatch3(board, fall = null) {
  const rows = Array.isArray(board) ? board : [];
  const cells = [];
  for (let r = 0; r < M3_SIZE; r += 1) {
    for (let c = 0; c < M3_SIZE; c += 1) {
      const kind = rows[r] ? Number(rows[r][c]) : 0;
      const gem = el("span", { class: `gem gem-${kind}` });
      const cell = el("button", {
        type: "button",
        class: "gem-cell",
        dataset: { r, c, kind },
        disabled: !canMove(),
        "aria-label": `Gem ${kind + 1} at row ${r + 1}, column ${c + 1}`,
        onclick: () => pick(r, c),
      }, gem);
      if (picked && picked[0] === r && picked[1] === c) cell.classList.add("selected");
      const drop = fall && fall[c] && r <= fall[c].lowest ? fall[c].count : 0;
      if (drop) {
        gem.classList.add("fall");
        gem.style.setProperty("--fall", String(drop));
      }
      cells.push(cell);
    }
  }
  boardEl.replaceChildren(...cells);
}

function renderStats() {
  const solo = game.kind === "match3";
  $("stats").hidden = !solo;
  if (!solo) return;
  $("score").textContent = String(game.score);
  $("moves-left").textContent = String(game.movesLeft);
}

function renderActions() {
  const player = Boolean(game.you);
  const playing = game.status === "playing" || game.status === "waiting";
  const resign = $("resign");
  resign.hidden = !player || !playing;
  // A confirmation survives the opponent's moves, not a change of status.
  if (resign.dataset.confirm !== game.status) delete resign.dataset.confirm;
  const confirming = resign.dataset.confirm !== undefined;
  resign.textContent = game.status === "waiting"
    ? (confirming ? "Really call off?" : "Call off")
    : (confirming ? "Really resign?" : "Resign");
  $("again").hidden = !player || playing || searching;
  // A finished game has nothing left to watch live.
  $("share").hidden = !shareLink() || !playing;
}

// Playing

function play(fields) {
  if (!canMove()) return;
  if (client.send({ type: "move", game_id: game.id, ...fields }) === null) {
    showError(errorEl, "Not connected");
    return;
  }
  pending = true;
  clearError(errorEl);
  boardEl.classList.remove("my-turn");
  for (const button of boardEl.querySelectorAll("button")) button.disabled = true;
}

function pick(r, c) {
  if (!canMove()) return;
  if (!picked) {
    picked = [r, c];
  } else if (picked[0] === r && picked[1] === c) {
    picked = null;
  } else if (Math.abs(picked[0] - r) + Math.abs(picked[1] - c) === 1) {
    const from = picked;
    picked = null;
    play({ from, to: [r, c] });
    return;
  } else {
    picked = [r, c];
  }
  for (const cell of boardEl.querySelectorAll(".gem-cell.selected")) cell.classList.remove("selected");
  if (picked) cellAt(picked[0], picked[1]).classList.add("selected");
}

function cellAt(r, c) {
  return boardEl.querySelector(`[data-r="${r}"][data-c="${c}"]`);
}

/** Swap, then each cascade step: the cleared gems pop, the rest fall, new ones drop in. */
async function animateCascade(msg, gen) {
  const { from, to, steps } = msg.move;
  busy = true;
  boardEl.dataset.busy = "1";
  try {
    await animateSwap(from, to);
    for (const step of Array.isArray(steps) ? steps : []) {
      if (gen !== generation) return;
      for (const [r, c] of step.cleared) cellAt(r, c)?.classList.add("clearing");
      await sleep(CLEAR_MS);
      if (gen !== generation) return;
      renderMatch3(step.board, fallOf(step.cleared));
      await sleep(FALL_MS);
    }
  } finally {
    if (gen === generation) {
      busy = false;
      delete boardEl.dataset.busy;
    }
  }
}

async function animateSwap(from, to) {
  const a = cellAt(from[0], from[1]);
  const b = cellAt(to[0], to[1]);
  if (!a || !b) return;
  const dx = to[1] - from[1];
  const dy = to[0] - from[0];
  a.firstChild.style.setProperty("--dx", String(dx));
  a.firstChild.style.setProperty("--dy", String(dy));
  b.firstChild.style.setProperty("--dx", String(-dx));
  b.firstChild.style.setProperty("--dy", String(-dy));
  a.firstChild.classList.add("swapping");
  b.firstChild.classList.add("swapping");
  await sleep(SWAP_MS);
}

/** Per column: how many gems cleared, and the lowest cleared row. */
function fallOf(cleared) {
  const fall = {};
  for (const [r, c] of cleared) {
    const col = fall[c] || (fall[c] = { count: 0, lowest: -1 });
    col.count += 1;
    col.lowest = Math.max(col.lowest, r);
  }
  return fall;
}

function showGain(points) {
  const gain = $("gain");
  if (!(points > 0)) return;
  gain.textContent = `+${points}`;
  gain.classList.remove("show");
  void gain.offsetWidth;
  gain.classList.add("show");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Away and back

function onAway(msg) {
  if (!isCurrent(msg) || msg.seat === game.you) return;
  hideAway();
  away.seat = msg.seat;
  const deadline = Date.now() + (Number(msg.grace_ms) || 0);
  away.timer = setTimeout(() => {
    const tick = () => {
      const secs = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      showAway(`${nameOf(msg.seat)} (${label(msg.seat)}) lost the connection. Their seat is held for ${secs} s.`, "away");
    };
    tick();
    away.ticker = setInterval(tick, 1000);
  }, AWAY_NOTICE_DELAY_MS);
}

function onBack(msg) {
  if (!isCurrent(msg) || msg.seat !== away.seat) return;
  const shown = !$("away").hidden;
  hideAway();
  if (shown) {
    showAway(`${nameOf(msg.seat)} is back.`, "back");
    away.timer = setTimeout(hideAway, BACK_NOTICE_MS);
  }
}

function showAway(text, state) {
  const box = $("away");
  box.textContent = text;
  box.dataset.state = state;
  box.hidden = false;
}

function hideAway() {
  clearTimeout(away.timer);
  clearInterval(away.ticker);
  away.timer = null;
  away.ticker = null;
  away.seat = null;
  $("away").hidden = true;
}

// Errors

function onError(msg) {
  if (msg.ref === "move") {
    pending = false;
    if (game) renderBoard();
    if (msg.code === "illegal_move" && game && game.kind === "match3") {
      detailEl.textContent = "That swap makes no line. Try another.";
      boardEl.classList.remove("shake");
      void boardEl.offsetWidth;
      boardEl.classList.add("shake");
      return true;
    }
  }
  if (msg.ref === "join_game") {
    const why = msg.code === "bad_request"
      ? "This is your own game: send the link to a friend."
      : "This invite link has been used or the game has ended.";
    unavailable(why);
    return true;
  }
  if (msg.ref === "watch_game") {
    unavailable("There is no game to watch at this link any more.");
    return true;
  }
  return false;
}

// Actions

/** Ends an unanswered resign confirmation. */
let confirmTimer = null;

$("resign").addEventListener("click", (ev) => {
  const button = ev.currentTarget;
  if (!game || !game.you) return;
  clearTimeout(confirmTimer);
  if (button.dataset.confirm !== game.status) {
    // Armed for this status only: a game that starts meanwhile asks again.
    button.dataset.confirm = game.status;
    confirmTimer = setTimeout(() => {
      delete button.dataset.confirm;
      renderActions();
    }, CONFIRM_MS);
    renderActions();
    return;
  }
  delete button.dataset.confirm;
  if (client.send({ type: "resign", game_id: game.id }) === null) showError(errorEl, "Not connected");
  renderActions();
});

$("again").addEventListener("click", () => {
  if (!game) return;
  // Against the computer, again at the same level (its name says it).
  const bot = game.players.find((p) => p.bot === true);
  const level = bot && /\((easy|medium|hard)\)$/.exec(bot.name)?.[1];
  const request = bot ? { type: "play_bot", game: game.kind, level: level || "medium" } : { type: "find_game", game: game.kind };
  if (client.send(request) !== null) setSearching(true);
});

$("again-cancel").addEventListener("click", () => {
  if (game) client.send({ type: "cancel_find", game: game.kind });
});

$("share").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  try {
    await navigator.clipboard.writeText(shareLink());
    button.textContent = "Link copied";
  } catch {
    detailEl.textContent = shareLink();
    button.textContent = "Link shown above";
  }
  setTimeout(() => (button.textContent = "Copy watch link"), 1800);
});

function setSearching(on) {
  searching = on;
  if (!on) $("again-wait").hidden = true;
  if (game) renderActions();
}

function shareLink() {
  const key = game && (game.watchKey || (mode === "watch" ? wanted.watchKey : null));
  return key ? new URL(`play.html?watch=${encodeURIComponent(key)}`, location.href).href : null;
}

function remember(gameId, watchKey) {
  if (!watchKey) return;
  try {
    sessionStorage.setItem(WATCH_PREFIX + gameId, watchKey);
  } catch {
    // The share button then needs the game_start of this page.
  }
}

function recall(gameId) {
  try {
    return sessionStorage.getItem(WATCH_PREFIX + gameId);
  } catch {
    return null;
  }
}
