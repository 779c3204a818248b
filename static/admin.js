// The operators' page (`/admin`, PROTOCOL.md, *Operators*): asks for the
// token once (kept in this tab's sessionStorage), then every REFRESH_MS
// shows the last ten minutes of figures as small SVG charts
// (`/api/admin/stats`), and the sessions, rooms and games with their
// actions, each confirmed first: kick, close, end.

import { el, safeColor } from "./client.js";

const $ = (id) => document.getElementById(id);
/** sessionStorage key of the token. */
const TOKEN_KEY = "parlor.admin";
/** How often everything is fetched again. */
const REFRESH_MS = 2000;
/** The chart's drawing box (its viewBox). */
const CHART_W = 300;
const CHART_H = 60;

let timer = null;

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function keepToken(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // The page then asks again after a reload.
  }
}

/** Fetches an operators' path; `null` if the token was refused (the page asks again). */
async function api(path, method = "GET") {
  const response = await fetch(path, {
    method,
    cache: "no-store",
    headers: { Authorization: `Bearer ${token()}` },
  });
  if (response.status === 401) {
    signOut("That token was not accepted.");
    return null;
  }
  if (!response.ok && response.status !== 404) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function signOut(why) {
  keepToken(null);
  clearTimeout(timer);
  $("panel").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.textContent = why || "";
  error.hidden = !why;
  setUpdated("idle", "Not signed in");
}

function setUpdated(state, text) {
  const pill = $("updated");
  pill.dataset.state = state;
  pill.textContent = text;
}

async function refresh() {
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
  try {
    const [stats, sessions, rooms, games] = await Promise.all([
      api("/api/admin/stats"),
      api("/api/admin/sessions?limit=200"),
      fetch("/api/rooms", { cache: "no-store" }).then((r) => (r.ok ? r.json() : [])),
      fetch("/api/games", { cache: "no-store" }).then((r) => (r.ok ? r.json() : [])),
    ]);
    if (!stats || !sessions) return;
    $("login").hidden = true;
    $("panel").hidden = false;
    $("admin-error").hidden = true;
    renderFigures(stats.samples || []);
    renderSessions(sessions);
    renderRooms(rooms);
    renderGames(games);
    setUpdated("live", `Updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    const error = $("admin-error");
    error.textContent = `Could not reach Parlor: ${err.message}`;
    error.hidden = false;
    setUpdated("stale", "Reconnecting…");
  }
}

// Figures

function renderFigures(samples) {
  for (const card of document.querySelectorAll("[data-figure]")) {
    const key = card.dataset.figure;
    const values = samples.map((s) => Number(s[key]) || 0);
    const now = values.length ? values[values.length - 1] : 0;
    card.querySelector(".figure-now").textContent = Number.isInteger(now) ? String(now) : now.toFixed(1);
    card.querySelector("polyline").setAttribute("points", points(values));
  }
}

/** The polyline of `values`, scaled into the chart's box (the newest at the right). */
function points(values) {
  if (values.length === 0) return "";
  const top = Math.max(1, ...values);
  const step = values.length > 1 ? CHART_W / (values.length - 1) : 0;
  return values
    .map((v, i) => `${(i * step).toFixed(1)},${(CHART_H - (v / top) * (CHART_H - 4) - 2).toFixed(1)}`)
    .join(" ");
}

// Lists and their actions

function renderSessions(sessions) {
  $("sessions-count").textContent = String(sessions.length);
  const items = sessions.map((s) => {
    const dot = el("span", { class: "dot" });
    dot.style.backgroundColor = safeColor(s.color);
    const where = [
      s.connected ? "connected" : "away",
      s.rooms.length ? `rooms: ${s.rooms.join(", ")}` : null,
      s.games.length ? `${s.games.length} game${s.games.length === 1 ? "" : "s"}` : null,
      s.node ? `node ${s.node}` : null,
    ].filter(Boolean).join(" · ");
    return el("li", { class: "item", dataset: { session: s.session } },
      el("span", { class: "item-main" },
        el("span", { class: "item-title" }, dot, " ", s.name),
        el("span", { class: "item-sub" }, where)),
      action("Kick", `Kick ${s.name}? Their connection closes and their games are forfeited.`,
        `/api/admin/sessions/${encodeURIComponent(s.session)}/kick`));
  });
  $("sessions").replaceChildren(...items);
}

function renderRooms(rooms) {
  const items = rooms.map((r) => el("li", { class: "item", dataset: { room: r.room } },
    el("span", { class: "item-main" },
      el("span", { class: "item-title" }, r.room),
      el("span", { class: "item-sub" }, `${r.kind} · ${r.members} ${r.members === 1 ? "member" : "members"}`)),
    action("Close", `Close room ${r.room}? Everyone in it is taken out; its state is kept.`,
      `/api/admin/rooms/${encodeURIComponent(r.room)}/close`)));
  $("rooms").replaceChildren(...items);
}

function renderGames(games) {
  const items = games.map((g) => el("li", { class: "item", dataset: { game: g.game_id } },
    el("span", { class: "item-main" },
      el("span", { class: "item-title" }, g.game),
      el("span", { class: "item-sub" }, (g.players || []).map((p) => p.name).join(" vs "))),
    action("End", `End this ${g.game} game? It is recorded as abandoned, with no winner.`,
      `/api/admin/games/${encodeURIComponent(g.game_id)}/end`)));
  $("games").replaceChildren(...items);
}

/** A button that asks `question` first, then POSTs to `path`. */
function action(label, question, path) {
  return el("button", {
    class: "btn small danger",
    type: "button",
    onclick: async (ev) => {
      if (!window.confirm(question)) return;
      ev.currentTarget.disabled = true;
      try {
        await api(path, "POST");
      } finally {
        refresh();
      }
    },
  }, label);
}

// Signing in

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  keepToken($("token").value.trim());
  $("token").value = "";
  refresh();
});

$("sign-out").addEventListener("click", () => signOut(null));

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && token()) refresh();
});

if (token()) refresh();
else signOut(null);
