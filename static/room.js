// The room page: `room.html?room=NAME&kind=chat|stage|canvas|board&role=…&zombies=N`.
//
// Joins the room (`join_room`; a resumed session is rejoined by the server),
// keeps the member list (`room_joined`, `member_joined`, `member_left`,
// `member_updated`), answers `state_request` with this page's view of the
// room, and shows one of four views:
//
// - chat: messages (`broadcast` → `message`), join and leave notices; the
//   recent messages are the room's state, so newcomers get them as history
//   (`room_state`), and each sender publishes them (`state`) as the snapshot;
// - stage host (`role=host`): a big screen showing the controllers and the
//   buttons they press;
// - stage controller (`role=controller`): large touch buttons that
//   `broadcast {button}` (the server delivers them to the hosts only);
// - canvas: players as coloured squares following the mouse or a finger
//   (`pos`, at most once per canvas tick), zombies, from `frame` events;
// - board: a poetry board of word tiles to drag (`board.js`).

import { createBoard } from "./board.js";
import { connect, el, friendlyError, safeColor, initialOf, param, showError } from "./client.js";

const $ = (id) => document.getElementById(id);
const errorEl = $("error");

const KINDS = ["chat", "stage", "canvas", "board"];
const KIND_TITLES = { chat: "Chat room", stage: "Stage", canvas: "Canvas", board: "Poetry board" };
/** Room names, as the protocol allows them. */
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Zombies a canvas room may hold, fixed by the protocol. */
const MAX_ZOMBIES = 20;
/** The canvas is 1000 × 1000 on the wire, fixed by the protocol. */
const CANVAS_SIZE = 1000;
/** Messages kept on the page, and handed to newcomers as history. */
const KEEP_MESSAGES = 200;
const HISTORY_MESSAGES = 50;
/** Longest chat message this page sends. */
const MAX_TEXT = 500;
/**
 * Largest `state` frame this page sends, in UTF-8 bytes: well under the
 * server's default `limits.max_frame_bytes` (64 KiB), which closes the
 * connection (1009) on a bigger frame. Fifty messages of CJK text can pass it,
 * so the oldest are left out until the frame fits.
 */
const STATE_BUDGET_BYTES = 32 * 1024;
/** The stage's buttons, as controllers send them. */
const BUTTONS = ["A", "B", "up", "down", "left", "right"];
const BUTTON_GLYPHS = { A: "A", B: "B", up: "▲", down: "▼", left: "◀", right: "▶" };
/** Presses the host keeps in its log. */
const PRESS_LOG = 12;
/** `pos` is sent at most once per canvas tick; the tick until `room_joined` says it (`tick_hz`). */
const DEFAULT_TICK_MS = 50;
/** A zombie this close (in canvas units) to a player has caught it. */
const CATCH_DISTANCE = 12;
/** A leave waits this long for `room_left` before the page goes anyway. */
const LEAVE_WAIT_MS = 800;

const roomName = param("room") || "";
const kind = KINDS.includes(param("kind")) ? param("kind") : "chat";
const role = kind === "stage" ? (param("role") === "host" ? "host" : "controller") : "member";
const zombies = Math.min(MAX_ZOMBIES, Math.max(0, Math.trunc(Number(param("zombies")) || 0)));
const view = kind === "stage" ? (role === "host" ? "host" : "pad") : kind;

/** Members by session id: `{session, name, color, role}`. */
const members = new Map();
/** This session's id in the room, once joined. */
let me = null;
let joined = false;
let leaving = false;

const client = connect({
  ready,
  room_joined: onJoined,
  room_state(msg) {
    if (msg.room === roomName) views[view].state(msg.data, msg.from);
  },
  member_joined(msg) {
    if (msg.room !== roomName || !msg.member) return;
    members.set(msg.member.session, msg.member);
    renderMembers();
    views[view].joined?.(msg.member);
  },
  member_left(msg) {
    if (msg.room !== roomName) return;
    const gone = members.get(msg.session);
    members.delete(msg.session);
    renderMembers();
    if (gone) views[view].left?.(gone, msg.reason);
  },
  member_away(msg) {
    const member = msg.room === roomName && members.get(msg.session);
    if (!member) return;
    member.away = true;
    renderMembers();
    views[view].away?.(member);
  },
  member_back(msg) {
    const member = msg.room === roomName && members.get(msg.session);
    if (!member) return;
    delete member.away;
    renderMembers();
    views[view].back?.(member);
  },
  member_updated(msg) {
    if (msg.room !== roomName || !msg.member) return;
    const before = members.get(msg.member.session);
    members.set(msg.member.session, msg.member);
    renderMembers();
    views[view].renamed?.(before, msg.member);
  },
  message(msg) {
    if (msg.room === roomName) views[view].message(msg);
  },
  state_request(msg) {
    if (msg.room === roomName) sendState({ for: msg.for });
  },
  frame(msg) {
    if (msg.room === roomName && view === "canvas") canvas.frame(msg);
  },
  room_left(msg) {
    if (msg.room !== roomName) return;
    if (view === "canvas") canvas.clear();
    if (leaving) location.assign("./");
  },
  error: onError,
});

// Joining

function ready(info) {
  if (!ROOM_NAME.test(roomName)) {
    roomGone("This link names no valid room. Room names use letters, digits, -, _ and . only.");
    return;
  }
  if (!info.rooms.includes(roomName)) join();
}

function join() {
  const msg = { type: "join_room", room: roomName, kind, role };
  if (kind === "canvas") msg.zombies = zombies;
  client.send(msg);
}

function onJoined(msg) {
  if (msg.room !== roomName) {
    // This tab shows one room; a resumed session leaves the others.
    client.send({ type: "leave_room", room: msg.room });
    return;
  }
  me = msg.you;
  if (msg.tick_hz > 0) canvas.tickMs = 1000 / msg.tick_hz;
  members.clear();
  for (const member of msg.members || []) members.set(member.session, member);
  renderMembers();
  $("suggestions").hidden = true;
  if (!joined) views[view].welcome?.();
  joined = true;
}

function onError(msg) {
  if (msg.ref !== "join_room") return false;
  if (msg.code === "room_full") {
    showSuggestions(msg.message, msg.suggestions || []);
    return true;
  }
  if (msg.code === "bad_request" && !joined) {
    // The server names the room's kind when the link asked for another.
    const kindNamed = KINDS.find((k) => (msg.message || "").endsWith(` is a ${k} room`));
    roomGone(kindNamed && kindNamed !== kind
      ? `“${roomName}” is a ${KIND_TITLES[kindNamed].toLowerCase()}, not a ${KIND_TITLES[kind].toLowerCase()}.`
      : friendlyError(msg));
    return true;
  }
  return false;
}

/** The room cannot be shown: say why, with the way back, and nothing else. */
function roomGone(text) {
  document.body.dataset.gone = "true";
  for (const part of document.querySelectorAll(".room-body, .room-tools, #suggestions, #error")) part.hidden = true;
  $("room-gone-text").textContent = text;
  $("room-gone").hidden = false;
}

function showSuggestions(message, names) {
  const box = $("suggestions");
  const links = names.filter((name) => ROOM_NAME.test(name)).map((name) =>
    el("a", { class: "btn small", href: roomHref(name, role) }, name));
  box.replaceChildren(
    el("span", {}, `${message}. `),
    links.length ? el("span", {}, "Rooms of the same kind with space: ", links) : "Try another room from the lobby.");
  box.hidden = false;
}

function roomHref(name, asRole) {
  const query = new URLSearchParams({ room: name, kind, role: asRole });
  if (kind === "canvas") query.set("zombies", String(zombies));
  return `room.html?${query}`;
}

// Leaving: say so first, so the others see "left" rather than a dropped connection.

function leave(ev) {
  ev.preventDefault();
  if (!joined || leaving || client.send({ type: "leave_room", room: roomName }) === null) {
    location.assign("./");
    return;
  }
  leaving = true;
  setTimeout(() => location.assign("./"), LEAVE_WAIT_MS);
}

for (const link of document.querySelectorAll('a[href="./"]')) link.addEventListener("click", leave);

// Closing or reloading the tab: leave now, rather than be brought back by a resume.
window.addEventListener("pagehide", () => {
  if (joined && !leaving) client.send({ type: "leave_room", room: roomName });
});

// Members

function renderMembers() {
  const sorted = [...members.values()].sort((a, b) => (a.session === me ? -1 : b.session === me ? 1 : 0));
  const items = sorted.map((member) => {
    const dot = el("span", { class: "avatar tiny", dataset: { initial: initialOf(member.name) } });
    dot.style.backgroundColor = safeColor(member.color);
    const classes = `member${member.session === me ? " me" : ""}${member.away ? " is-away" : ""}`;
    return el("li", { class: classes, dataset: { session: member.session, role: member.role } },
      dot,
      el("span", { class: "member-name" }, member.name),
      member.session === me ? el("span", { class: "you-tag" }, "you") : null,
      member.away ? el("span", { class: "away-tag", title: "Lost the connection; may come back" }, "away") : null,
      kind === "stage" ? el("span", { class: "role-tag" }, member.role === "host" ? "screen" : "controller") : null);
  });
  $("members").replaceChildren(...items);
  $("member-count").textContent = members.size ? String(members.size) : "";
  views[view].members?.();
}

// The room's state

const encoder = new TextEncoder();

/** Sends this page's view of the room as `state` (plus `fields`), within STATE_BUDGET_BYTES. */
function sendState(fields = {}) {
  const frame = { type: "state", room: roomName, ...fields };
  const fits = (data) => encoder.encode(JSON.stringify({ ...frame, data })).length <= STATE_BUDGET_BYTES;
  client.send({ ...frame, data: views[view].snapshot(fits) });
}

function nameOf(session) {
  return members.get(session)?.name ?? "Someone";
}

// Chat

const chat = {
  /** `{id, from, name, color, text, at}`, oldest first. */
  messages: [],
  seen: new Set(),

  welcome() {
    notice("You joined the room.");
  },
  joined(member) {
    notice(`${member.name} joined.`);
  },
  left(member, reason) {
    notice(reason === "left" ? `${member.name} left.` : `${member.name} did not come back.`);
  },
  away(member) {
    notice(`${member.name} lost the connection.`);
  },
  back(member) {
    notice(`${member.name} is back.`);
  },
  renamed(before, member) {
    if (before && before.name !== member.name) notice(`${before.name} is now ${member.name}.`);
  },
  message(msg) {
    const data = msg.data || {};
    if (typeof data.text !== "string") return;
    const member = members.get(msg.from);
    chat.add({
      id: typeof data.id === "string" ? data.id : `${msg.from}-${Date.now()}`,
      from: msg.from,
      name: member ? member.name : "Someone",
      color: member ? member.color : null,
      text: data.text.slice(0, MAX_TEXT),
      at: typeof data.at === "number" ? data.at : Date.now(),
    });
  },
  state(data) {
    const history = data && Array.isArray(data.messages) ? data.messages : [];
    const valid = history.filter((m) => m && typeof m.id === "string" && typeof m.text === "string");
    const fresh = valid.filter((m) => !chat.seen.has(m.id));
    if (!fresh.length) return;
    for (const m of fresh) {
      chat.seen.add(m.id);
      chat.messages.push({
        id: m.id,
        from: typeof m.from === "string" ? m.from : "",
        name: typeof m.name === "string" ? m.name : "Someone",
        color: m.color,
        text: m.text.slice(0, MAX_TEXT),
        at: typeof m.at === "number" ? m.at : 0,
        history: true,
      });
    }
    chat.messages.sort((a, b) => a.at - b.at);
    for (const m of fresh) chat.place(messageItem(chat.messages.find((x) => x.id === m.id)));
    scrollChat();
  },
  /** Puts an older message (history) before the first shown message newer than it. */
  place(item) {
    const at = Number(chat.messages.find((m) => m.id === item.dataset.id)?.at ?? 0);
    const list = $("messages");
    const later = [...list.children].find((node) => Number(node.dataset.at) > at);
    list.insertBefore(item, later || null);
  },
  /** The recent messages, the oldest left out until `fits` the frame they go in. */
  snapshot(fits) {
    const recent = chat.messages.slice(-HISTORY_MESSAGES);
    const messages = recent.map(({ id, from, name, color, text, at }) => ({ id, from, name, color, text, at }));
    while (messages.length && !fits({ messages })) messages.shift();
    return { messages };
  },
  add(message) {
    if (chat.seen.has(message.id)) return;
    chat.seen.add(message.id);
    chat.messages.push(message);
    if (chat.messages.length > KEEP_MESSAGES) chat.messages.splice(0, chat.messages.length - KEEP_MESSAGES);
    $("messages").append(messageItem(message));
    scrollChat();
  },
  send(text) {
    const message = {
      id: `${me}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      text: text.slice(0, MAX_TEXT),
      at: Date.now(),
    };
    if (client.send({ type: "broadcast", room: roomName, data: message }) === null) {
      showError(errorEl, "Not connected right now; your message was not sent.");
      return false;
    }
    const mine = members.get(me);
    chat.add({ ...message, from: me, name: mine ? mine.name : "You", color: mine ? mine.color : null });
    // The sender keeps the room's snapshot current, for whoever comes next.
    sendState();
    return true;
  },
};

function messageItem(m) {
  const dot = el("span", { class: "avatar tiny", dataset: { initial: initialOf(m.name) } });
  dot.style.backgroundColor = safeColor(m.color);
  const time = new Date(m.at);
  const when = Number.isFinite(time.getTime())
    ? time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : "";
  return el("li", { class: `msg${m.from === me ? " mine" : ""}${m.history ? " history" : ""}`, dataset: { id: m.id, from: m.from, at: m.at } },
    dot,
    el("div", { class: "msg-body" },
      el("div", { class: "msg-meta" },
        el("span", { class: "msg-name" }, m.name),
        el("time", { class: "msg-time" }, when)),
      el("p", { class: "msg-text" }, m.text)));
}

function notice(text) {
  $("messages").append(el("li", { class: "notice", dataset: { at: Date.now() } }, text));
  scrollChat();
}

function scrollChat() {
  const list = $("messages");
  list.scrollTop = list.scrollHeight;
}

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (text && chat.send(text)) input.value = "";
});

// Stage: the host's screen

const host = {
  /** Recent presses, newest first: `{name, color, button, at}`. */
  log: [],

  members() {
    const controllers = [...members.values()].filter((m) => m.role === "controller");
    const grid = $("controllers");
    const tiles = controllers.map((m) => grid.querySelector(`[data-session="${CSS.escape(m.session)}"]`) || host.tile(m));
    for (const tile of tiles) {
      const member = members.get(tile.dataset.session);
      tile.querySelector(".controller-name").textContent = member.name;
      tile.querySelector(".avatar").dataset.initial = initialOf(member.name);
    }
    grid.replaceChildren(...tiles);
    $("controllers-empty").hidden = controllers.length > 0;
  },
  tile(member) {
    const avatar = el("span", { class: "avatar", dataset: { initial: initialOf(member.name) } });
    const tile = el("div", { class: "controller", dataset: { session: member.session } },
      avatar,
      el("span", { class: "controller-name" }, member.name),
      el("span", { class: "last-button", "aria-live": "polite" }, "·"),
      el("span", { class: "press-count" }, "0 presses"));
    avatar.style.backgroundColor = safeColor(member.color);
    tile.style.setProperty("--player", safeColor(member.color));
    return tile;
  },
  message(msg) {
    const button = msg.data && msg.data.button;
    if (!BUTTONS.includes(button)) return;
    const tile = $("controllers").querySelector(`[data-session="${CSS.escape(msg.from)}"]`);
    if (tile) {
      const count = Number(tile.dataset.presses || 0) + 1;
      tile.dataset.presses = String(count);
      tile.dataset.button = button;
      tile.querySelector(".last-button").textContent = BUTTON_GLYPHS[button];
      tile.querySelector(".press-count").textContent = `${count} ${count === 1 ? "press" : "presses"}`;
      tile.classList.remove("pressed");
      void tile.offsetWidth;
      tile.classList.add("pressed");
    }
    const member = members.get(msg.from);
    host.log.unshift({ name: nameOf(msg.from), color: member?.color, button, at: Date.now() });
    host.log.length = Math.min(host.log.length, PRESS_LOG);
    host.renderLog();
  },
  renderLog() {
    const items = host.log.map((press) => {
      const dot = el("span", { class: "dot" });
      dot.style.backgroundColor = safeColor(press.color);
      return el("li", {}, dot, el("span", { class: "press-name" }, press.name),
        el("span", { class: "press-button" }, BUTTON_GLYPHS[press.button] || "?"));
    });
    $("press-log").replaceChildren(...items);
  },
  state(data) {
    if (!data || !Array.isArray(data.presses) || host.log.length) return;
    host.log = data.presses.filter((p) => p && typeof p.name === "string" && BUTTONS.includes(p.button)).slice(0, PRESS_LOG);
    host.renderLog();
  },
  snapshot() {
    return { presses: host.log };
  },
  welcome() {
    $("controller-link").textContent = new URL(roomHref(roomName, "controller"), location.href).href;
  },
};

// Stage: a phone's controller

const pad = {
  /** The room's state as it reached this page; handed on if asked. */
  data: null,

  members() {
    const screens = [...members.values()].filter((m) => m.role === "host").length;
    const status = $("pad-status");
    status.dataset.screen = screens ? "on" : "none";
    status.textContent = screens ? `Connected to ${roomName}. Press away!` : "Waiting for the screen to open this room…";
  },
  message() {
    // Hosts may talk to controllers; this pad shows nothing of it yet.
  },
  state(data) {
    pad.data = data ?? null;
  },
  /** The state as received, unless too big to hand on: then none, rather than a closed connection. */
  snapshot(fits) {
    return fits(pad.data) ? pad.data : null;
  },
  press(button, node) {
    node.classList.add("held");
    if (client.send({ type: "broadcast", room: roomName, data: { button } }) === null) {
      showError(errorEl, "Not connected right now.");
    }
  },
};

for (const button of document.querySelectorAll(".pad-btn")) {
  const name = button.dataset.button;
  button.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    pad.press(name, button);
  });
  // Keyboard presses arrive as clicks without a pointer (detail 0).
  button.addEventListener("click", (ev) => {
    if (ev.detail === 0) pad.press(name, button);
  });
  for (const type of ["pointerup", "pointercancel", "pointerleave", "blur"]) {
    button.addEventListener(type, () => button.classList.remove("held"));
  }
  button.addEventListener("keyup", () => button.classList.remove("held"));
}

// Canvas

const canvas = {
  board: $("canvas"),
  // The room's tick, from `room_joined.tick_hz` (guessing it from frame
  // spacing misleads under load, when frames arrive bunched).
  tickMs: DEFAULT_TICK_MS,
  lastSentAt: 0,
  pendingPos: null,
  sendTimer: null,
  /** Zombies (by index) on this page's player now, and how often one has caught it. */
  touching: new Set(),
  catches: 0,

  frame(msg) {
    canvas.draw(msg.players || [], msg.zombies || []);
  },
  /** A member who left takes their dot along, even if no frame follows (say, one missed while reconnecting); an away member's dot is dimmed. */
  members() {
    for (const dot of canvas.board.querySelectorAll("[data-player]")) {
      if (!members.has(dot.dataset.player)) dot.remove();
      else canvas.dim(dot);
    }
  },
  dim(dot) {
    const away = Boolean(members.get(dot.dataset.player)?.away);
    dot.classList.toggle("is-away", away);
    dot.title = away ? `${nameOf(dot.dataset.player)} (away)` : "";
  },
  /** Out of the room: nobody is shown any more. */
  clear() {
    canvas.draw([], []);
  },
  draw(players, zombieList) {
    const seen = new Set();
    for (const p of players) {
      if (typeof p.session !== "string") continue;
      seen.add(p.session);
      let dot = canvas.board.querySelector(`[data-player="${CSS.escape(p.session)}"]`);
      if (!dot) {
        dot = el("div", { class: `player-dot${p.session === me ? " me" : ""}`, dataset: { player: p.session } },
          el("span", { class: "dot-label" }));
        canvas.board.append(dot);
      }
      dot.querySelector(".dot-label").textContent = p.session === me ? "you" : nameOf(p.session);
      dot.style.backgroundColor = safeColor(p.color);
      canvas.dim(dot);
      place(dot, p.x, p.y);
    }
    for (const dot of canvas.board.querySelectorAll("[data-player]")) {
      if (!seen.has(dot.dataset.player)) dot.remove();
    }
    const have = canvas.board.querySelectorAll("[data-zombie]");
    for (let i = have.length; i < zombieList.length; i += 1) {
      canvas.board.append(el("div", { class: "zombie", dataset: { zombie: i }, "aria-hidden": "true" }, el("span", { class: "zombie-eyes" })));
    }
    for (const z of canvas.board.querySelectorAll("[data-zombie]")) {
      const at = zombieList[Number(z.dataset.zombie)];
      if (at) place(z, at.x, at.y);
      else z.remove();
    }
    const count = $("zombie-count");
    count.hidden = zombieList.length === 0;
    count.textContent = `${zombieList.length} ${zombieList.length === 1 ? "zombie" : "zombies"} shambling about.`;
    canvas.caught(players.find((p) => p.session === me), zombieList);
  },
  /** A zombie that reaches this page's player catches it: a flash, and one more catch counted. */
  caught(mine, zombieList) {
    const touching = new Set();
    if (mine) {
      zombieList.forEach((z, i) => {
        if (Math.hypot(Number(z.x) - Number(mine.x), Number(z.y) - Number(mine.y)) <= CATCH_DISTANCE) touching.add(i);
      });
    }
    const fresh = [...touching].filter((i) => !canvas.touching.has(i)).length;
    canvas.touching = touching;
    if (fresh === 0) return;
    canvas.catches += fresh;
    canvas.board.dataset.catches = String(canvas.catches);
    const line = $("caught");
    line.textContent = `Caught ${canvas.catches} ${canvas.catches === 1 ? "time" : "times"}! Keep moving.`;
    line.hidden = false;
    const dot = canvas.board.querySelector(".player-dot.me");
    for (const node of [canvas.board, dot]) {
      if (!node) continue;
      node.classList.remove("caught");
      void node.offsetWidth;
      node.classList.add("caught");
    }
  },
  point(ev) {
    const rect = canvas.board.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) / rect.width) * CANVAS_SIZE;
    const y = ((ev.clientY - rect.top) / rect.height) * CANVAS_SIZE;
    canvas.queue(clamp(x), clamp(y));
  },
  /** Sends the latest position at most once per tick; the last one always goes. */
  queue(x, y) {
    canvas.pendingPos = { x: Math.round(x), y: Math.round(y) };
    $("canvas-hint").hidden = true;
    if (canvas.sendTimer !== null) return;
    const wait = Math.max(0, canvas.lastSentAt + canvas.tickMs - performance.now());
    canvas.sendTimer = setTimeout(canvas.flush, wait);
  },
  flush() {
    canvas.sendTimer = null;
    const pos = canvas.pendingPos;
    if (!pos || !joined) return;
    canvas.pendingPos = null;
    canvas.lastSentAt = performance.now();
    client.send({ type: "pos", room: roomName, x: pos.x, y: pos.y });
  },
  message() {},
  state() {},
  snapshot() {
    return null;
  },
};

function place(node, x, y) {
  node.style.left = `${(clamp(Number(x)) / CANVAS_SIZE) * 100}%`;
  node.style.top = `${(clamp(Number(y)) / CANVAS_SIZE) * 100}%`;
}

function clamp(v) {
  return Number.isFinite(v) ? Math.min(CANVAS_SIZE, Math.max(0, v)) : 0;
}

canvas.board.addEventListener("pointermove", canvas.point);
canvas.board.addEventListener("pointerdown", (ev) => {
  canvas.board.setPointerCapture?.(ev.pointerId);
  canvas.point(ev);
});

// Board

const board = createBoard({
  element: $("poetry"),
  send: (frame) => joined && client.send({ ...frame, room: roomName }),
  colorOf: (session) => members.get(session)?.color,
});

const views = { chat, host, pad, canvas, board };

// The page

document.body.dataset.kind = kind;
document.body.dataset.view = view;
$(`${view}-view`).hidden = false;
$("room-title").textContent = roomName || "No room";
$("room-kind").textContent = kind === "stage" ? (role === "host" ? "Stage · screen" : "Stage · controller") : KIND_TITLES[kind];
document.title = `${roomName || "Room"} · Parlor`;
if (view === "host") host.welcome();

$("invite").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  const link = new URL(roomHref(roomName, kind === "stage" ? "controller" : role), location.href).href;
  try {
    await navigator.clipboard.writeText(link);
    button.textContent = "Link copied";
  } catch {
    showError(errorEl, `Invite link: ${link}`);
  }
  setTimeout(() => (button.textContent = "Copy invite link"), 1800);
});
