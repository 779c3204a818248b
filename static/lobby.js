// The landing page: shows who you are (name and colour from `welcome`) and
// lets you change your display name with `set_name`.

import { connect, storeName, clearError, showError } from "./client.js";

const $ = (id) => document.getElementById(id);
const nameEl = $("my-name");
const colorEl = $("my-color");
const form = $("name-form");
const input = $("name-input");
const statusEl = $("name-status");
const errorEl = $("error");
const reconnectBtn = $("reconnect");

const HEX_COLOR = /^#[0-9a-f]{6}$/i;
let statusTimer = null;

const client = connect({
  welcome(msg) {
    showProfile(msg.name, msg.color);
  },
  profile(msg) {
    showProfile(msg.name, msg.color);
    storeName(msg.name);
    clearError(errorEl);
    input.value = "";
    flashStatus("Name saved.");
  },
  error(msg) {
    if (msg.code === "name_invalid") input.focus();
  },
  state(state) {
    reconnectBtn.hidden = state !== "closed";
  },
});

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (client.send({ type: "set_name", name: input.value }) === null) {
    showError(errorEl, "Not connected to Parlor right now. Try again in a moment.");
  }
});

reconnectBtn.addEventListener("click", () => client.open());

errorEl.addEventListener("click", () => clearError(errorEl));

/** Shows a name and colour; the name is user text, so textContent only. */
function showProfile(name, color) {
  if (typeof name === "string") {
    nameEl.textContent = name;
    colorEl.dataset.initial = initialOf(name);
    input.placeholder = name;
  }
  if (typeof color === "string" && HEX_COLOR.test(color)) {
    colorEl.style.backgroundColor = color;
    document.documentElement.style.setProperty("--me", color);
  }
}

function initialOf(name) {
  const first = [...name.trim()][0];
  return first ? first.toUpperCase() : "";
}

function flashStatus(text) {
  statusEl.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (statusEl.textContent = ""), 2500);
}
