// Helpers for Parlor's browser tests: start the real server on a free port,
// drive headless Chromium through playwright-core, watch the page's
// WebSocket frames, and keep a screenshot of every failed test.
//
// Run from the repo root with: node --test tests/e2e/*.test.mjs

import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";
import { after, before } from "node:test";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, whatever the current directory is. */
export const REPO = path.resolve(HERE, "..", "..");
/** Where screenshots of failed tests go (gitignored). */
export const ARTIFACTS = path.join(HERE, "artifacts");

/** A display name that would be markup if a page used innerHTML. */
export const HTML_NAME = "<i>Eve</i><img src=x>";
/** A phone's screen, as a page spec for `withPages` (add a `name`). */
export const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

const LISTENING = /^Parlor is listening on (http:\/\/127\.0\.0\.1:\d+\/)\s*$/;
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Spawns the server binary (`PARLOR_BIN`, default `target/debug/parlor`,
 * relative to the repo root) on a free port with an in-memory store, and
 * resolves with `{url, stop(), logs()}` once it prints its listening line.
 */
export async function startServer(extraEnv = {}) {
  const bin = path.resolve(REPO, process.env.PARLOR_BIN || "target/debug/parlor");
  const env = {
    ...serverlessEnv(),
    PARLOR_SERVER__BIND: "127.0.0.1:0",
    PARLOR_STORE__PATH: ":memory:",
    PARLOR_SERVER__STATIC_DIR: path.join(REPO, "static"),
    ...extraEnv,
  };
  const child = spawn(bin, [], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
  const output = [];
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => output.push(chunk));
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const url = await new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(`no listening line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    const lines = readline.createInterface({ input: child.stdout });
    // Keep reading stdout after the listening line so the pipe never fills.
    lines.on("line", (line) => {
      output.push(line + "\n");
      const m = LISTENING.exec(line);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("error", (err) => fail(`cannot start ${bin}: ${err.message}`));
    exited.then(({ code, signal }) => fail(`server exited (code ${code}, signal ${signal}) before listening`));
    function fail(why) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${why}\n--- server output ---\n${output.join("")}`));
    }
  });

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill("SIGTERM");
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS, "timeout")));
    const outcome = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      child.kill("SIGKILL");
      throw new Error(`server ignored SIGTERM for ${STOP_TIMEOUT_MS} ms`);
    }
    return exited;
  }

  return { url, stop, logs: () => output.join("") };
}

/** This process's environment without any PARLOR_* variable, so a developer's own settings cannot change the tests. */
function serverlessEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PARLOR_")));
}

/**
 * Starts a server (with `extraEnv`) and a browser before the tests of the
 * enclosing `describe`, stops both after them, and returns getters for them:
 * `const parlor = useServer(); … parlor.browser, parlor.url`.
 */
export function useServer(extraEnv = {}) {
  let server;
  let browser;
  before(async () => {
    server = await startServer(extraEnv);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  return {
    get browser() {
      return browser;
    },
    get url() {
      return server.url;
    },
  };
}

/** Headless Chromium from Debian's package (`CHROMIUM_PATH` overrides). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** Saves a full-page screenshot as `tests/e2e/artifacts/<name>.png`. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9_-]+/g, "_")}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Waits until a received frame (a sent one with `dir: "out"`) matches `pred`
 * and returns it; `after` skips the first `after` frames of `page.wsFrames`.
 */
export async function waitForFrame(page, pred, { after = 0, dir = "in", timeout = 10000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const hit = page.wsFrames.slice(after).find((f) => f.dir === dir && pred(f.msg));
    if (hit) return hit.msg;
    if (Date.now() > deadline) {
      const seen = page.wsFrames.map((f) => `${f.dir} ${JSON.stringify(f.msg)}`).join("\n");
      throw new Error(`no matching frame within ${timeout} ms; frames:\n${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** `#3a7bd5` as the `rgb(58, 123, 213)` that getComputedStyle reports. */
export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

/** One entry of `page.wsFrames`; `bytes` is the frame's size on the wire. */
function record(dir, payload) {
  return { dir, msg: parse(payload), bytes: Buffer.byteLength(payload) };
}

function parse(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    return { unparsed: String(payload) };
  }
}

// Several people at once: pages, games and rooms.

/**
 * Opens a fresh context (own storage) and page, instrumented (see
 * `instrument`). `name` is stored as the display name before the page loads,
 * so the first connection already carries it.
 */
export async function openPage(browser, { name, ...contextOptions } = {}) {
  const context = await browser.newContext(contextOptions);
  if (name) {
    await context.addInitScript((stored) => {
      if (!localStorage.getItem("parlor.name")) localStorage.setItem("parlor.name", stored);
    }, name);
  }
  const page = await context.newPage();
  instrument(page);
  return page;
}

/**
 * Records on the page its console errors and uncaught exceptions
 * (`page.errors`), its WebSocket URLs (`page.sockets`) and frames
 * (`page.wsFrames`: `{dir: "in"|"out", msg, bytes}`).
 */
export function instrument(page) {
  page.setDefaultTimeout(10000);
  page.errors = [];
  page.wsFrames = [];
  page.sockets = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") page.errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on("websocket", (ws) => {
    page.sockets.push(ws.url());
    ws.on("framereceived", ({ payload }) => page.wsFrames.push(record("in", payload)));
    ws.on("framesent", ({ payload }) => page.wsFrames.push(record("out", payload)));
  });
  return page;
}

/**
 * Runs `fn(...pages)` with one fresh page per spec (`{name, viewport, …}`,
 * see `openPage`); on failure saves a screenshot of each page in
 * `tests/e2e/artifacts/`; afterwards asserts that no page logged a console
 * error or threw.
 */
export async function withPages(browser, t, specs, fn) {
  const pages = [];
  try {
    for (const spec of specs) pages.push(await openPage(browser, spec));
    await fn(...pages);
    const errors = pages.flatMap((page, i) => page.errors.map((err) => `page ${i}: ${err}`));
    if (errors.length) throw new Error(`console errors:\n${errors.join("\n")}`);
  } catch (err) {
    for (const [i, page] of pages.entries()) await screenshot(page, `${t.name}-${i}`).catch(() => {});
    throw err;
  } finally {
    for (const page of pages) await page.context().close().catch(() => {});
  }
}

/** Loads `path` under the server's URL and waits until the socket is open. */
export async function visit(page, url, path = "") {
  await page.goto(new URL(path, url).href);
  await page.waitForSelector('#connection[data-state="open"]');
}

/**
 * Two pages quick-match a game from the lobby; resolves with the pages in
 * seat order (`[X, O]` or `[red, yellow]`) once both game pages show it.
 * `urlB` lets the second page reach the server another way (a proxy).
 */
export async function quickMatch(a, b, url, game, urlB = url) {
  await visit(a, url);
  await visit(b, urlB);
  await a.click(`[data-find="${game}"]`);
  await a.waitForSelector(`.game-card[data-game="${game}"] .queue-box`, { state: "visible" });
  await b.click(`[data-find="${game}"]`);
  for (const page of [a, b]) {
    await page.waitForURL(/\/play\.html\?game=/);
    await page.waitForSelector('#board[data-status="playing"]');
    await page.waitForSelector('#connection[data-state="open"]');
  }
  return (await seatOf(a)) === seatsOf(game)[0] ? [a, b] : [b, a];
}

/** The seats of a game kind in turn order. */
export function seatsOf(game) {
  return { tictactoe: ["X", "O"], connect4: ["red", "yellow"], match3: ["solo"] }[game];
}

/** The seat the page's player sits in, from the player chip marked as theirs. */
export async function seatOf(page) {
  return page.$eval(".player.me", (el) => el.dataset.seat);
}

/** Waits for the page to say it is its turn, then plays a tic-tac-toe cell. */
export async function playCell(page, cell) {
  await page.waitForSelector('#status[data-state="mine"]');
  await page.click(`[data-cell="${cell}"]:not([disabled])`);
}

/** Waits for the page to say it is its turn, then drops a disc in a column. */
export async function dropDisc(page, column) {
  await page.waitForSelector('#status[data-state="mine"]');
  await page.click(`[data-column="${column}"]:not([disabled])`);
}

/** Waits until every page shows `moves` moves. */
export async function movesShown(pages, moves) {
  for (const page of pages) await page.waitForSelector(`#board[data-moves="${moves}"]:not([data-busy])`);
}

/** The match-three board as the page shows it, from the gems' data attributes. */
export async function readGems(page) {
  return page.$$eval("[data-r][data-c]", (gems) => {
    const board = Array.from({ length: 8 }, () => Array(8).fill(null));
    for (const gem of gems) board[Number(gem.dataset.r)][Number(gem.dataset.c)] = Number(gem.dataset.kind);
    return board;
  });
}

/** A swap of two adjacent gems that makes a line of three, or null. */
export function findSwap(board) {
  const size = board.length;
  const lineAt = (b, r, c) => {
    const kind = b[r][c];
    let run = 1;
    for (let x = c - 1; x >= 0 && b[r][x] === kind; x -= 1) run += 1;
    for (let x = c + 1; x < size && b[r][x] === kind; x += 1) run += 1;
    if (run >= 3) return true;
    run = 1;
    for (let y = r - 1; y >= 0 && b[y][c] === kind; y -= 1) run += 1;
    for (let y = r + 1; y < size && b[y][c] === kind; y += 1) run += 1;
    return run >= 3;
  };
  for (let r = 0; r < size; r += 1) {
    for (let c = 0; c < size; c += 1) {
      for (const [dr, dc] of [[0, 1], [1, 0]]) {
        const r2 = r + dr;
        const c2 = c + dc;
        if (r2 >= size || c2 >= size) continue;
        const b = board.map((row) => [...row]);
        [b[r][c], b[r2][c2]] = [b[r2][c2], b[r][c]];
        if (lineAt(b, r, c) || lineAt(b, r2, c2)) return { from: [r, c], to: [r2, c2] };
      }
    }
  }
  return null;
}

/** Opens a room page for `room` of `kind` and waits until the page has joined it. */
export async function joinRoom(page, url, room, kind, { role, zombies } = {}) {
  const query = new URLSearchParams({ room, kind });
  if (role) query.set("role", role);
  if (zombies !== undefined) query.set("zombies", String(zombies));
  await visit(page, url, `room.html?${query}`);
  const joined = await waitForFrame(page, (m) => m.type === "room_joined" && m.room === room);
  await page.waitForSelector(`#members [data-session="${joined.you}"]`, { state: "attached" });
  return joined.you;
}

/**
 * A TCP proxy in front of the server, so a test can cut a page's network:
 * `{url, stall(), refuse(on), close()}`. `stall()` stops forwarding on every
 * open connection, as a dead network would, so the server's heartbeat
 * notices the silence and drops the socket, and the drop reaches the page;
 * `refuse(true)` closes new connections at once until `refuse(false)`.
 */
export async function startProxy(target) {
  const { createServer, connect } = await import("node:net");
  const { port: targetPort, hostname } = new URL(target);
  const pairs = new Set();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(targetPort), hostname);
    const pair = { client, upstream, stalled: false };
    pairs.add(pair);
    client.on("data", (chunk) => pair.stalled || upstream.write(chunk));
    upstream.on("data", (chunk) => pair.stalled || client.write(chunk));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    stall() {
      for (const pair of pairs) pair.stalled = true;
    },
    refuse(on) {
      refusing = on;
    },
    close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
