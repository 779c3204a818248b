// The poetry board (`room.html?kind=board`): word tiles that members drag on
// a shared board, as in magnetic poetry (PROTOCOL.md, *Rooms*, `board`).
//
// The board is `{seed, words: [{id, text, x, y}]}`, `x` and `y` a tile's
// top-left corner as fractions of the board's width and height.
// - The first member's page lays out WORDS at random and publishes the board
//   (`state`, action "new_board"), and tells the others (`broadcast {board}`);
//   two pages that began at once both keep the board with the lower seed.
// - A drag is relayed live (`broadcast {drag}`), at most once per tick, and
//   marks this member the most recently active (`state`, action "moving",
//   once per drag: transient, never stored).
// - A drop relays the tile's place (`broadcast {drop}`) and publishes the
//   board (`state`, action "move_word"), which the server keeps.
// - A newcomer gets the board from the most recently active member, or the
//   stored snapshot (also after a restart).
// Everything that arrives is checked before it is shown, as text only.

import { el, safeColor } from "./client.js";

/** The tiles of a new board. */
export const WORDS = [
  "the", "a", "moon", "river", "slow", "bright", "whisper", "dance", "under", "over",
  "and", "we", "you", "I", "dream", "light", "shadow", "sing", "sea", "gold",
  "quiet", "wild", "heart", "rain", "morning", "night", "blue", "soft", "run", "stars",
  "is", "of", "in", "my", "your", "little", "song", "fire", "wind", "sleep",
];
/** A drag is relayed at most once per tick (the canvas tick's default). */
const TICK_MS = 50;
/** Words a board may hold, and the longest word, for what arrives. */
const MAX_WORDS = 200;
const MAX_WORD_CHARS = 24;
const MAX_ID_CHARS = 16;
/** A tile another member drags stays marked this long after their last move. */
const REMOTE_DRAG_MS = 1500;

/**
 * The board view for `room.js`: draws into `element`, sends with
 * `send(frame)` (`broadcast` and `state` frames, `room` added by the
 * caller), and colours a tile being dragged by someone with `colorOf(session)`.
 */
export function createBoard({ element, send, colorOf }) {
  /** The board as this page knows it: `{seed, words}`, or null before any. */
  let board = null;
  /** Set while the board is one this page laid out and nobody has moved a tile on. */
  let fresh = false;
  /** The tile being dragged here: `{id, dx, dy, moved}`. */
  let dragging = null;
  let pendingDrag = null;
  let dragTimer = null;
  let lastDragAt = 0;
  const remoteTimers = new Map();

  function tileOf(id) {
    return element.querySelector(`[data-word="${CSS.escape(String(id))}"]`);
  }

  function place(tile, word) {
    tile.style.left = `${word.x * 100}%`;
    tile.style.top = `${word.y * 100}%`;
  }

  function render() {
    const tiles = (board?.words || []).map((word) => {
      const tile = el("span", { class: "tile", dataset: { word: String(word.id) } }, word.text);
      place(tile, word);
      tile.addEventListener("pointerdown", (ev) => grab(ev, word.id));
      return tile;
    });
    element.replaceChildren(...tiles);
    element.dataset.words = String(tiles.length);
  }

  function wordOf(id) {
    return board?.words.find((word) => word.id === id);
  }

  /** A fresh board: the words scattered in loose rows. */
  function newBoard() {
    const perRow = 6;
    const rows = Math.ceil(WORDS.length / perRow);
    const words = WORDS.map((text, i) => ({
      id: String(i),
      text,
      x: round(0.02 + (i % perRow) * 0.16 + Math.random() * 0.03),
      y: round(0.03 + Math.floor(i / perRow) * (0.88 / rows) + Math.random() * 0.03),
    }));
    return { seed: Math.random(), words };
  }

  // Dragging here

  function grab(ev, id) {
    if (ev.button !== undefined && ev.button !== 0) return;
    const tile = tileOf(id);
    if (!tile || !wordOf(id)) return;
    ev.preventDefault();
    try {
      tile.setPointerCapture(ev.pointerId);
    } catch {
      // A pointer the browser no longer tracks: the drag goes on without capture.
    }
    const box = tile.getBoundingClientRect();
    dragging = { id, dx: ev.clientX - box.left, dy: ev.clientY - box.top, moved: false };
    tile.classList.add("dragging");
    tile.addEventListener("pointermove", drag);
    tile.addEventListener("pointerup", drop);
    tile.addEventListener("pointercancel", drop);
  }

  /** Where the dragged tile's corner is under the pointer, kept on the board. */
  function spot(ev, tile) {
    const area = element.getBoundingClientRect();
    const x = (ev.clientX - dragging.dx - area.left) / area.width;
    const y = (ev.clientY - dragging.dy - area.top) / area.height;
    const maxX = Math.max(0, 1 - tile.offsetWidth / area.width);
    const maxY = Math.max(0, 1 - tile.offsetHeight / area.height);
    return { x: round(Math.min(maxX, Math.max(0, x))), y: round(Math.min(maxY, Math.max(0, y))) };
  }

  function drag(ev) {
    const word = dragging && wordOf(dragging.id);
    if (!word) return;
    const tile = ev.currentTarget;
    Object.assign(word, spot(ev, tile));
    place(tile, word);
    if (!dragging.moved) {
      dragging.moved = true;
      send({ type: "state", action: "moving", data: board });
    }
    pendingDrag = { id: word.id, x: word.x, y: word.y };
    if (dragTimer !== null) return;
    dragTimer = setTimeout(flushDrag, Math.max(0, lastDragAt + TICK_MS - performance.now()));
  }

  function flushDrag() {
    dragTimer = null;
    if (!pendingDrag) return;
    lastDragAt = performance.now();
    send({ type: "broadcast", data: { drag: pendingDrag } });
    pendingDrag = null;
  }

  function drop(ev) {
    const tile = ev.currentTarget;
    tile.classList.remove("dragging");
    tile.removeEventListener("pointermove", drag);
    tile.removeEventListener("pointerup", drop);
    tile.removeEventListener("pointercancel", drop);
    const held = dragging;
    dragging = null;
    const word = held && wordOf(held.id);
    if (!word || !held.moved) return;
    fresh = false;
    clearTimeout(dragTimer);
    dragTimer = null;
    pendingDrag = null;
    send({ type: "broadcast", data: { drop: { id: word.id, x: word.x, y: word.y } } });
    send({ type: "state", action: "move_word", data: board });
  }

  // What others do

  function moveFrom(from, move, dropped) {
    const id = move && (typeof move.id === "number" || typeof move.id === "string") ? String(move.id) : null;
    const word = wordOf(id);
    if (!word || (dragging && dragging.id === id)) return;
    const x = fraction(move.x);
    const y = fraction(move.y);
    if (x === null || y === null) return;
    Object.assign(word, { x, y });
    const tile = tileOf(id);
    if (!tile) return;
    place(tile, word);
    clearTimeout(remoteTimers.get(id));
    if (dropped) {
      unmark(tile, id);
      return;
    }
    tile.classList.add("remote-drag");
    tile.style.outlineColor = safeColor(colorOf(from));
    remoteTimers.set(id, setTimeout(() => unmark(tile, id), REMOTE_DRAG_MS));
  }

  function unmark(tile, id) {
    tile.classList.remove("remote-drag");
    tile.style.outlineColor = "";
    remoteTimers.delete(id);
  }

  function adopt(data) {
    const checked = checkBoard(data);
    if (!checked) return false;
    // A tile held here is gone with the old board.
    dragging = null;
    clearTimeout(dragTimer);
    dragTimer = null;
    pendingDrag = null;
    board = checked;
    fresh = false;
    render();
    return true;
  }

  return {
    /** `room_state`: the board from a member or the store; none yet means this page starts it. */
    state(data) {
      if (adopt(data)) return;
      if (board) return;
      board = newBoard();
      fresh = true;
      render();
      send({ type: "state", action: "new_board", data: board });
      send({ type: "broadcast", data: { board } });
    },
    message(msg) {
      const data = msg.data || {};
      if (data.drag) moveFrom(msg.from, data.drag, false);
      if (data.drop) moveFrom(msg.from, data.drop, true);
      // Two pages that laid out a board at once keep the lower seed's,
      // before anyone moves a tile; a board is never replaced after that.
      if (data.board && fresh) {
        const theirs = checkBoard(data.board);
        if (theirs && theirs.seed < board.seed && adopt(theirs)) {
          send({ type: "state", action: "new_board", data: board });
        }
      }
    },
    snapshot() {
      return board;
    },
  };
}

/** A board that arrived, made safe: up to MAX_WORDS short words on the board; null if it is none. */
function checkBoard(data) {
  if (!data || !Array.isArray(data.words) || data.words.length === 0) return null;
  const words = [];
  const ids = new Set();
  for (const word of data.words.slice(0, MAX_WORDS)) {
    // Ids as short strings, so `1` and `"1"` are one tile.
    const raw = word && word.id;
    if (typeof raw !== "number" && typeof raw !== "string") continue;
    const id = String(raw).slice(0, MAX_ID_CHARS);
    if (ids.has(id) || typeof word.text !== "string" || word.text.length === 0) continue;
    const x = fraction(word.x);
    const y = fraction(word.y);
    if (x === null || y === null) continue;
    ids.add(id);
    // Cut by code points, never inside one.
    words.push({ id, text: Array.from(word.text).slice(0, MAX_WORD_CHARS).join(""), x, y });
  }
  if (words.length === 0) return null;
  const seed = Number.isFinite(data.seed) ? data.seed : 1;
  return { seed, words };
}

/** A number from 0 to 1, or null. */
function fraction(v) {
  return typeof v === "number" && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : null;
}

function round(v) {
  return Math.round(v * 10000) / 10000;
}
