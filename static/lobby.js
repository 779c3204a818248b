// The landing page: who you are (name and colour from `welcome`, changed
// with `set_name`), quick matches with a waiting state (`find_game`,
// `queued`, `cancel_find`), games against the computer (`play_bot`, also
// offered after BOT_OFFER_MS alone in a queue), private games with shareable links
// (`create_game` → `game_created`), live games to watch (`/api/games`), and
// rooms to join or open (`/api/rooms`). A started game (`game_start`) opens
// the game page, which resumes this session with the token in sessionStorage.

import {
  connect, storeName, clearError, showError, el, safeColor, initialOf, WATCH_PREFIX, CREATED_KEY, CREATED_KEEP,
} from "./client.js";

const $ = (id) => document.getElementById(id);
const nameEl = $("my-name");
const colorEl = $("my-color");
const form = $("name-form");
const input = $("name-input");
const statusEl = $("name-status");
const errorEl = $("error");

/** How often the live games and rooms lists are fetched again. */
const REFRESH_MS = 3000;
/** How long a quick match waits before the page offers the computer instead. */
const BOT_OFFER_MS = 10000;
/** sessionStorage key of the private game this tab created and waits on. */
const PRIVATE_KEY = "parlor.private";

const GAME_NAMES = { tictactoe: "Tic-tac-toe", connect4: "Connect four", match3: "Match three" };
const KIND_NAMES = { chat: "Chat", stage: "Stage", canvas: "Canvas", board: "Poetry board" };
const KIND_HINTS = {
  chat: "Talk with everyone in the room; newcomers see the recent messages.",
  stage: "One big screen (the host) and phones as controllers.",
  canvas: "Move your square with the mouse or a finger. Watch out for zombies.",
  board: "Drag word tiles on a shared board and write a poem together.",
};

let statusTimer = null;
/** Shows "Play the computer instead" once a quick match has waited a while. */
let botOfferTimer = null;
/** The game kind this tab is queued for, or null. */
let queuedFor = null;
/** The private game this tab waits on: `{game_id, game, join_key, watch_key}`. */
let privateGame = readPrivate();

/** Buttons waiting for the answer to their request, by request id: busy until it comes. */
const pending = new Map();

const client = connect({
  "*"(msg) {
    if (msg.id !== undefined) release(msg.id);
  },
  welcome(msg) {
    // A new connection answers nothing the old one asked.
    for (const id of [...pending.keys()]) release(id);
    showProfile(msg.name, msg.color);
    // A new connection is in no queue: a dropped session left it.
    setQueued(null);
    $("return-game").hidden = true;
  },
  ready(info) {
    if (privateGame && !info.games.includes(privateGame.game_id)) forgetPrivate();
  },
  profile(msg) {
    showProfile(msg.name, msg.color);
    storeName(msg.name);
    clearError(errorEl);
    input.value = "";
    flashStatus("Name saved.");
  },
  queued(msg) {
    if (msg.game !== "match3") setQueued(msg.game);
  },
  find_cancelled() {
    setQueued(null);
  },
  game_created(msg) {
    privateGame = {
      game_id: msg.game_id, game: msg.game, join_key: msg.join_key, watch_key: msg.watch_key,
    };
    savePrivate();
    keepCreated(msg);
    showPrivate();
  },
  game_start(msg) {
    openGame(msg.game_id, msg.watch_key);
  },
  game_state(msg) {
    resumedGame(msg);
  },
  game_over(msg) {
    if (privateGame && msg.game_id === privateGame.game_id) forgetPrivate();
  },
  room_joined(msg) {
    // A resumed session comes back into its rooms; this page shows none.
    client.send({ type: "leave_room", room: msg.room });
  },
  error(msg) {
    if (msg.code === "name_invalid") input.focus();
    // A game button's error goes on that game's card, next to the button.
    const card = pending.get(msg.id)?.closest(".game-card");
    if (!card) return false;
    showCardError(card, msg);
    return true;
  },
  state(state) {
    document.body.dataset.connection = state;
    if (state === "open") refreshLists();
  },
});

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  request({ type: "set_name", name: input.value });
});

document.addEventListener("click", (ev) => {
  const target = ev.target.closest("button");
  if (!target) return;
  if (target.dataset.busy) return;
  for (const line of document.querySelectorAll(".card-error")) line.hidden = true;
  const { find, create, cancel, copy, bot, botInstead } = target.dataset;
  if (find) busyUntilAnswered(target, request({ type: "find_game", game: find }));
  if (create) busyUntilAnswered(target, request({ type: "create_game", game: create }));
  if (cancel) busyUntilAnswered(target, request({ type: "cancel_find", game: cancel }));
  if (bot) busyUntilAnswered(target, playBot(bot));
  if (botInstead) {
    // Out of the queue first: a queued match counts toward the games a
    // session may wait in.
    if (request({ type: "cancel_find", game: botInstead })) busyUntilAnswered(target, playBot(botInstead));
  }
  if (copy) copyField($(copy), target);
});

$("private-cancel").addEventListener("click", () => {
  // Resigning a game nobody joined yet ends it; nothing is recorded.
  if (privateGame) request({ type: "resign", game_id: privateGame.game_id });
  forgetPrivate();
});

/** Sends a request and returns its id, or says in the page that we are offline (null). */
function request(msg) {
  const id = client.send(msg);
  if (id === null) showError(errorEl, "Not connected to Parlor right now. Try again in a moment.");
  return id;
}

/** Shows an error frame, in friendly words, on a game's card. */
function showCardError(card, msg) {
  let line = card.querySelector(".card-error");
  if (!line) {
    line = el("p", { class: "card-error", role: "alert" });
    card.append(line);
  }
  showError(line, msg);
}

/** Keeps `button` busy (disabled) until request `id` is answered, so a second click asks nothing. */
function busyUntilAnswered(button, id) {
  if (id === null) return;
  button.dataset.busy = "true";
  button.disabled = true;
  pending.set(id, button);
}

/** Request `id` was answered: its button is free again, unless the page has locked it meanwhile. */
function release(id) {
  const button = pending.get(id);
  if (!button) return;
  pending.delete(id);
  delete button.dataset.busy;
  button.disabled = button.matches("[data-find], [data-create], [data-bot]") && (queuedFor !== null || privateGame !== null);
}

/** Shows a name and colour; the name is user text, so textContent only. */
function showProfile(name, color) {
  if (typeof name === "string") {
    nameEl.textContent = name;
    colorEl.dataset.initial = initialOf(name);
    input.placeholder = name;
  }
  if (typeof color === "string") {
    colorEl.style.backgroundColor = safeColor(color);
    document.documentElement.style.setProperty("--me", safeColor(color));
  }
}

function flashStatus(text) {
  statusEl.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (statusEl.textContent = ""), 2500);
}

// Quick match

/** Starts a game against the computer at the level chosen on `game`'s card. */
function playBot(game) {
  const select = document.querySelector(`select[data-level="${game}"]`);
  const level = select ? select.value : "medium";
  return request({ type: "play_bot", game, level });
}

/** Shows the waiting state on `game`'s card (or none), and locks the rest. */
function setQueued(game) {
  queuedFor = game;
  for (const card of document.querySelectorAll(".game-card")) {
    const waiting = card.dataset.game === game;
    card.classList.toggle("is-waiting", waiting);
    const box = card.querySelector(".queue-box");
    if (box) box.hidden = !waiting;
    for (const button of card.querySelectorAll("[data-find], [data-create], [data-bot]")) {
      button.disabled = game !== null;
    }
  }
  $("queue-status").textContent = game ? `Looking for a ${GAME_NAMES[game].toLowerCase()} opponent…` : "";
  for (const offer of document.querySelectorAll("[data-bot-instead]")) offer.hidden = true;
  clearTimeout(botOfferTimer);
  if (game) {
    botOfferTimer = setTimeout(() => {
      const offer = document.querySelector(`[data-bot-instead="${game}"]`);
      if (offer && queuedFor === game) offer.hidden = false;
    }, BOT_OFFER_MS);
  }
}

/** Opens the game page for a started game; the new page resumes this session. */
function openGame(gameId, watchKey) {
  if (typeof watchKey === "string") {
    try {
      sessionStorage.setItem(WATCH_PREFIX + gameId, watchKey);
    } catch {
      // The game page then just offers no watch link.
    }
  }
  if (privateGame && privateGame.game_id === gameId) forgetPrivate();
  location.assign(`play.html?game=${encodeURIComponent(gameId)}`);
}

/** A resumed session still sits in a game: offer the way back to it. */
function resumedGame(msg) {
  if (msg.status === "over") return;
  if (privateGame && privateGame.game_id === msg.game_id && msg.status === "waiting") {
    showPrivate();
    return;
  }
  const link = $("return-game");
  link.href = `play.html?game=${encodeURIComponent(msg.game_id)}`;
  link.querySelector("span").textContent =
    `You have a ${GAME_NAMES[msg.game].toLowerCase()} game in progress.`;
  link.hidden = false;
}

// Private games

function showPrivate() {
  if (!privateGame) return;
  const base = new URL("play.html", location.href);
  $("private-title").textContent = `Private ${GAME_NAMES[privateGame.game].toLowerCase()} game`;
  $("private-join-link").value = `${base.href}?join=${encodeURIComponent(privateGame.join_key)}`;
  $("private-watch-link").value = `${base.href}?watch=${encodeURIComponent(privateGame.watch_key)}`;
  $("private").hidden = false;
  for (const button of document.querySelectorAll("[data-find], [data-create], [data-bot]")) button.disabled = true;
}

function forgetPrivate() {
  privateGame = null;
  try {
    sessionStorage.removeItem(PRIVATE_KEY);
  } catch {
    // Nothing kept.
  }
  $("private").hidden = true;
  setQueued(queuedFor);
}

/**
 * Remembers, for every tab of this browser, that this game's invite link
 * is ours: its id only (the link opens with it), never the key itself.
 */
function keepCreated(msg) {
  if (typeof msg.join_key !== "string") return;
  try {
    const created = JSON.parse(localStorage.getItem(CREATED_KEY) || "[]");
    const kept = Array.isArray(created) ? created : [];
    kept.push({ game_id: msg.game_id, at: Date.now() });
    localStorage.setItem(CREATED_KEY, JSON.stringify(kept.slice(-CREATED_KEEP)));
  } catch {
    // Then another tab cannot tell the link is ours; the server still refuses this tab's own join.
  }
}

function savePrivate() {
  try {
    sessionStorage.setItem(PRIVATE_KEY, JSON.stringify(privateGame));
  } catch {
    // Only a reload would need it.
  }
}

function readPrivate() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(PRIVATE_KEY) || "null");
    return saved && typeof saved.game_id === "string" ? saved : null;
  } catch {
    return null;
  }
}

async function copyField(field, button) {
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Selected";
  }
  setTimeout(() => (button.textContent = "Copy"), 1500);
}

// Live games and rooms

let refreshTimer = null;

async function refreshLists() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshLists, REFRESH_MS);
  if (client.state !== "open" || document.hidden) return;
  const [games, rooms] = await Promise.all([fetchJson("/api/games"), fetchJson("/api/rooms")]);
  if (games) renderGames(games);
  if (rooms) renderRooms(rooms);
}

async function fetchJson(path) {
  try {
    const response = await fetch(path, { cache: "no-store" });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

function renderGames(games) {
  const list = $("live-games");
  const items = games.filter((game) => GAME_NAMES[game.game]).map((game) => {
    const players = (game.players || []).map((player, i) => [
      i > 0 ? el("span", { class: "vs" }, "vs") : null,
      el("span", { class: "who" },
        el("span", { class: "dot", dataset: { color: safeColor(player.color) } }),
        el("span", { class: "who-name" }, player.name)),
    ]);
    const item = el("li", { class: "item", dataset: { game: game.game, gameId: game.game_id } },
      el("span", { class: `item-icon icon-${game.game}`, "aria-hidden": "true" }),
      el("span", { class: "item-main" },
        el("span", { class: "item-title" }, GAME_NAMES[game.game]),
        el("span", { class: "item-sub" }, players, el("span", { class: "ago" }, ` · ${ago(game.started_at)}`))),
      el("a", { class: "btn small", href: `play.html?watch=${encodeURIComponent(game.watch_key)}` }, "Watch"));
    return item;
  });
  paintDots(items);
  list.replaceChildren(...items);
  $("live-empty").hidden = items.length > 0;
}

function renderRooms(rooms) {
  const list = $("rooms-list");
  const sorted = [...rooms].sort((a, b) => b.members - a.members || a.room.localeCompare(b.room));
  const items = sorted.filter((room) => KIND_NAMES[room.kind]).map((room) => {
    const links = room.kind === "stage"
      ? [roomLink(room, "host", "Screen"), roomLink(room, "controller", "Controller")]
      : [roomLink(room, "member", "Join")];
    const count = `${room.members} ${room.members === 1 ? "person" : "people"}`;
    return el("li", { class: "item", dataset: { room: room.room, kind: room.kind } },
      el("span", { class: `item-icon icon-${room.kind}`, "aria-hidden": "true" }),
      el("span", { class: "item-main" },
        el("span", { class: "item-title" }, room.room),
        el("span", { class: "item-sub" }, `${KIND_NAMES[room.kind]} · ${count}`)),
      el("span", { class: "item-links" }, links));
  });
  list.replaceChildren(...items);
  $("rooms-empty").hidden = items.length > 0;
}

function roomLink(room, role, label) {
  return el("a", { class: "btn small", href: roomHref(room.room, room.kind, role) }, label);
}

function roomHref(name, kind, role, zombies) {
  const query = new URLSearchParams({ room: name, kind, role });
  if (kind === "canvas" && zombies !== undefined) query.set("zombies", String(zombies));
  return `room.html?${query}`;
}

/** Colours chosen by the server, vetted, set through CSSOM (the CSP forbids inline styles). */
function paintDots(nodes) {
  for (const node of nodes) {
    for (const dot of node.querySelectorAll(".dot[data-color]")) dot.style.backgroundColor = dot.dataset.color;
  }
}

function ago(rfc3339) {
  const secs = Math.max(0, Math.round((Date.now() - Date.parse(rfc3339)) / 1000));
  if (!Number.isFinite(secs) || secs < 60) return "just started";
  const mins = Math.round(secs / 60);
  return mins < 60 ? `${mins} min` : `${Math.round(mins / 60)} h`;
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshLists();
});

// Open a room

const roomForm = $("room-form");
const kindSelect = $("room-kind");

function showKindFields() {
  const kind = kindSelect.value;
  $("room-role-field").hidden = kind !== "stage";
  $("room-zombies-field").hidden = kind !== "canvas";
  $("room-kind-hint").textContent = KIND_HINTS[kind] || "";
}

kindSelect.addEventListener("change", showKindFields);
showKindFields();
$("room-name").placeholder = `lounge-${Math.floor(100 + Math.random() * 900)}`;

roomForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const nameInput = $("room-name");
  const name = nameInput.value.trim() || nameInput.placeholder;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    showError(errorEl, "Room names use letters, digits, -, _ and . only (up to 64).");
    return;
  }
  const kind = kindSelect.value;
  const role = kind === "stage" ? $("room-role").value : "member";
  const zombies = Math.min(20, Math.max(0, Number($("room-zombies").value) || 0));
  location.assign(roomHref(name, kind, role, zombies));
});
