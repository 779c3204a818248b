// Parlor's shared browser client: one WebSocket to `/ws` on the page's own
// host, JSON frames dispatched by `type`, reconnection with exponential
// backoff and the session's resume token (and the count of frames this page
// received, so the server sends exactly the missed ones), a connection
// indicator and an error banner. Every page module builds on `connect()`.
//
//   import { connect } from "./client.js";
//   const client = connect({ welcome(msg) { ... }, profile(msg) { ... } });
//   client.send({ type: "set_name", name: "Ada" });
//
// Also shared by the pages: `el()` builds DOM (user text only ever as
// textContent), `safeColor()` vets a colour before it reaches a style,
// `param()` reads the page's query string.

/** localStorage key of the display name the user chose. */
export const NAME_KEY = "parlor.name";
/** sessionStorage key of the latest resume token (per tab, see PROTOCOL.md). */
export const RESUME_KEY = "parlor.resume";

/** sessionStorage prefix keeping a game's watch key for the game page. */
export const WATCH_PREFIX = "parlor.watch.";
/**
 * localStorage key of the private games this browser created, in any tab
 * (`[{game_id, at}]`): a game page recognises its own invite link, which
 * opens with the game id's random part (the key itself is not kept).
 */
export const CREATED_KEY = "parlor.created";
/** Created games kept in that list. */
export const CREATED_KEEP = 20;

/** Close code the server uses when another connection resumed this session. */
const CLOSE_TAKEN_OVER = 4001;
/**
 * Close codes by which the server refused this client (see PROTOCOL.md,
 * *Close codes*): worth telling the user, and worth backing off from, since
 * coming straight back may well meet the same fate.
 */
const CLOSE_REFUSALS = {
  1008: "The server closed the connection: too many messages, or messages not read fast enough.",
  1009: "The server closed the connection: a message was too big.",
  1011: "The server closed the connection after an error on its side.",
};

const DEFAULTS = {
  /** First reconnect delay; doubles per failed attempt. */
  backoffBaseMs: 500,
  /** Longest reconnect delay. */
  backoffMaxMs: 15000,
  /** Element showing the connection state (`data-state`). */
  indicator: "#connection",
  /** Element showing server errors. */
  errorElement: "#error",
  /** Button shown while closed, to reconnect by hand. */
  reconnectButton: "#reconnect",
};

const HEX_COLOR = /^#[0-9a-f]{6}$/i;

const STATE_TEXT = {
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};

/** Opens a client and starts connecting; see `ParlorClient`. */
export function connect(handlers = {}, opts = {}) {
  const client = new ParlorClient(handlers, opts);
  client.open();
  return client;
}

/** The display name stored by an earlier `set_name`, or null. */
export function storedName() {
  return safeGet(localStorage, NAME_KEY);
}

/** Remembers the display name so the next connection passes `?name=`. */
export function storeName(name) {
  safeSet(localStorage, NAME_KEY, name);
}

/** A `#rrggbb` colour from the server, or the fallback when it is not one. */
export function safeColor(color, fallback = "#8a8596") {
  return typeof color === "string" && HEX_COLOR.test(color) ? color : fallback;
}

/** The first letter of a name, upper-cased, for an avatar. */
export function initialOf(name) {
  const first = [...String(name || "").trim()][0];
  return first ? first.toUpperCase() : "?";
}

/** The page's query parameter `key`, or null. */
export function param(key) {
  return new URLSearchParams(location.search).get(key);
}

/**
 * Builds an element: `el("a", {href, class: "x", dataset: {cell: 3}}, "text", child)`.
 * Strings become text nodes, so text from other users is never parsed as HTML.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Friendly words for every error code a page can meet (PROTOCOL.md,
 * *Errors*), by `ref:code` where the request matters, else by code. The
 * server's own message is for developers: it is never shown raw.
 */
const FRIENDLY = {
  "set_name:name_invalid": "Names are 1 to 32 characters, with no control or text-direction characters.",
  "find_game:already_queued": "You are already looking for a game.",
  "join_game:not_found": "That join link no longer works: the game has started with someone else, or ended.",
  "join_game:bad_request": "This is your own game: send the link to a friend instead.",
  "watch_game:not_found": "There is no game to watch at that link any more.",
  "join_room:bad_request": "That room cannot be opened: check its name, or it is a room of another kind.",
  "join_room:not_found": "That room is gone.",
  "move:not_your_turn": "It is not your turn yet.",
  "move:not_found": "This game is no longer here.",
  "resign:not_found": "This game is no longer here.",
  bad_json: "The page sent something the server could not read. Reload the page.",
  unknown_type: "The page asked for something the server does not know. Reload the page.",
  bad_request: "Something in that request was not right. Reload the page and try again.",
  rate_limited: "That was a lot at once: wait a moment and try again.",
  unsupported: "The page sent something the server does not take. Reload the page.",
  not_found: "That is no longer there.",
  not_a_player: "You are watching this game: only its players can move.",
  game_over: "This game is over.",
  not_your_turn: "It is not your turn yet.",
  illegal_move: "That move is not allowed.",
  already_queued: "You are already looking for a game.",
  room_full: "This room is full.",
  too_many_rooms: "You are in as many rooms as you may be: leave one first.",
  not_in_room: "You are no longer in this room.",
  name_invalid: "Names are 1 to 32 characters, with no control or text-direction characters.",
  too_many_games: "You are already in as many games as you may be: finish one first.",
  unauthorized: "That needs the operators' token.",
  unavailable: "Parlor is busy right now: try again in a moment.",
  internal: "Something went wrong on the server. Try again.",
};

/** What to tell a person about an error frame, in plain words. */
export function friendlyError(err) {
  return FRIENDLY[`${err.ref}:${err.code}`] || FRIENDLY[err.code] || "Something went wrong. Try again.";
}

/**
 * Puts a plain message, or an error frame in friendly words, in an error
 * element; `{code, text}` is the page's own error with its own words.
 */
export function showError(el, err) {
  if (!el) return;
  const text = typeof err === "string" ? err : err.text || friendlyError(err);
  el.dataset.code = typeof err === "string" ? "" : err.code || "";
  el.textContent = text;
  el.hidden = false;
}

/** Empties and hides the page's error element. */
export function clearError(el) {
  if (!el) return;
  el.textContent = "";
  delete el.dataset.code;
  el.hidden = true;
}

/**
 * One logical connection to the server that survives socket drops.
 *
 * `handlers` maps a frame `type` to a function taking the frame; `"*"` sees
 * every frame. Also called: `state(state, text)` on connection changes,
 * `resume_failed(errorFrame)` when the server did not know the resume token,
 * and `ready({resumed, recovered, games, rooms})` once per connection when it is known
 * whether the session came back (after `resumed`, or the refused token, or
 * at once after a `welcome` for which no token was offered). `recovered`
 * means the frames missed while away were sent again (and already handled):
 * the page is up to date; otherwise the server resent the state of every
 * game and room (`game_state`, `room_joined`, `room_state`). An `error`
 * handler that returns `true` has shown the error itself; otherwise it goes
 * to the error element.
 */
export class ParlorClient {
  constructor(handlers = {}, opts = {}) {
    this.handlers = handlers;
    this.opts = { ...DEFAULTS, ...opts };
    this.ws = null;
    this.welcome = null;
    this.state = "closed";
    this.nextId = 1;
    this.attempt = 0;
    this.retryTimer = null;
    // Set when the page or the server says not to come back by ourselves.
    this.stopped = false;
    // Whether the socket being opened offered a resume token.
    this.offeredToken = false;
    // Set when the server refused the last socket: the next welcome keeps the backoff.
    this.refused = false;
    // Numbered frames this page has received (PROTOCOL.md, *Frame numbers*):
    // every frame but `welcome` and `resumed`, across reconnections.
    this.counted = 0;
    this.onOnline = () => this.retryNow();
    window.addEventListener("online", this.onOnline);
    const button = this.element("reconnectButton");
    if (button) button.addEventListener("click", () => this.open());
    const errorEl = this.element("errorElement");
    if (errorEl) errorEl.addEventListener("click", () => clearError(errorEl));
  }

  /** Starts (or restarts) connecting. */
  open() {
    this.stopped = false;
    this.clearRetry();
    if (this.ws) return;
    this.setState("reconnecting", this.welcome ? STATE_TEXT.reconnecting : "Connecting…");
    const url = this.url();
    this.offeredToken = /[?&]resume=/.test(url);
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => this.closed(ws, ev);
    // A failed socket also fires `close`, where the retry is scheduled.
    ws.onerror = () => {};
  }

  /** Closes for good; no reconnection until `open()` is called again. */
  close() {
    this.stopped = true;
    this.clearRetry();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.setState("closed", STATE_TEXT.closed);
  }

  /** Reconnects at once if a retry is pending. */
  retryNow() {
    if (this.retryTimer !== null) this.open();
  }

  /**
   * Sends a request with a fresh `id` and returns that id, so replies and
   * errors (which echo it) can be matched. Returns null when not connected.
   */
  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ ...obj, id }));
    return id;
  }

  /** The `/ws` URL on this page's host, with `name` and `resume` if known. */
  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = [];
    const name = storedName();
    const resume = safeGet(sessionStorage, RESUME_KEY);
    if (name) params.push(`name=${encodeURIComponent(name)}`);
    if (resume) params.push(`resume=${encodeURIComponent(resume)}`);
    // A page that has not heard from this session yet has nothing to
    // recover: it needs the whole state, which a resume without a count gets.
    if (resume && this.welcome) params.push(`received=${this.counted}`);
    const query = params.length ? `?${params.join("&")}` : "";
    return `${scheme}//${location.host}/ws${query}`;
  }

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.type !== "string") return;
    this.count(msg);
    if (msg.type === "error" && msg.code === "not_found" && msg.ref === "resume") {
      // The server already sent a fresh welcome; the old session is gone.
      this.call("resume_failed", msg);
      this.call("ready", { resumed: false, recovered: false, games: [], rooms: [] });
      return;
    }
    if (msg.type === "welcome") this.welcomed(msg);
    if (msg.type === "error" && this.call("error", msg) !== true) {
      showError(this.element("errorElement"), msg);
    }
    this.call("*", msg);
    if (msg.type !== "error") this.call(msg.type, msg);
    if (msg.type === "welcome" && !this.offeredToken) {
      this.call("ready", { resumed: false, recovered: false, games: [], rooms: [] });
    }
    if (msg.type === "resumed") {
      const info = { resumed: true, recovered: msg.recovered === true, games: msg.games || [], rooms: msg.rooms || [] };
      this.call("ready", info);
    }
  }

  /** Counts a numbered frame; a resume that recovered nothing restarts the count at its `last`. */
  count(msg) {
    if (msg.type === "welcome") {
      // Another session (a fresh one, the token being unknown) counts from 0.
      if (!this.welcome || this.welcome.session !== msg.session) this.counted = 0;
    } else if (msg.type === "resumed") {
      if (msg.recovered !== true) this.counted = Number(msg.last) || 0;
    } else {
      this.counted += 1;
    }
  }

  welcomed(msg) {
    this.welcome = msg;
    // Every page wears the session's colour as its accent (`--me`).
    document.documentElement.style.setProperty("--me", safeColor(msg.color));
    // A server that keeps refusing us is retried ever more slowly.
    if (!this.refused) this.attempt = 0;
    this.refused = false;
    if (typeof msg.resume === "string") safeSet(sessionStorage, RESUME_KEY, msg.resume);
    this.setState("open", STATE_TEXT.open);
  }

  closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.stopped) return;
    if (ev.code === CLOSE_TAKEN_OVER) {
      // Another tab resumed this session; its token replaced ours.
      safeRemove(sessionStorage, RESUME_KEY);
      this.stopped = true;
      this.setState("closed", "Opened in another tab");
      return;
    }
    const refusal = CLOSE_REFUSALS[ev.code];
    this.refused = Boolean(refusal);
    if (refusal) showError(this.element("errorElement"), { code: `closed_${ev.code}`, text: refusal });
    this.scheduleRetry();
  }

  scheduleRetry() {
    const cap = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** this.attempt);
    // Half fixed, half random, so a restarted server is not hit all at once.
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
    this.attempt += 1;
    const secs = Math.max(1, Math.round(delay / 1000));
    this.setState("reconnecting", `Reconnecting in ${secs} s…`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  clearRetry() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  setState(state, text) {
    this.state = state;
    const el = this.element("indicator");
    if (el) {
      el.dataset.state = state;
      const label = el.querySelector("[data-label]") || el;
      label.textContent = text;
      el.title = text;
    }
    const button = this.element("reconnectButton");
    if (button) button.hidden = state !== "closed";
    this.call("state", state, text);
  }

  element(key) {
    const sel = this.opts[key];
    return typeof sel === "string" ? document.querySelector(sel) : sel || null;
  }

  call(name, ...args) {
    const fn = this.handlers[name];
    return typeof fn === "function" ? fn(...args) : undefined;
  }
}

// Storage can throw (privacy modes, quota); the client works without it.
function safeGet(store, key) {
  try {
    return store.getItem(key);
  } catch {
    return null;
  }
}

function safeSet(store, key, value) {
  try {
    store.setItem(key, value);
  } catch {
    // Not remembered; the next connection just starts without it.
  }
}

function safeRemove(store, key) {
  try {
    store.removeItem(key);
  } catch {
    // Nothing stored, nothing to forget.
  }
}
