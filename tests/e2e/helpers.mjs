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

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, whatever the current directory is. */
export const REPO = path.resolve(HERE, "..", "..");
/** Where screenshots of failed tests go (gitignored). */
export const ARTIFACTS = path.join(HERE, "artifacts");

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

/** Headless Chromium from Debian's package (`CHROMIUM_PATH` overrides). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/**
 * Opens a fresh context and page (own localStorage), records the page's
 * console errors and uncaught exceptions in `page.errors` and its WebSocket
 * frames in `page.frames`, runs `fn(page)`, and on failure saves a
 * screenshot named after the test in `tests/e2e/artifacts/`.
 */
export async function withPage(browser, t, fn, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.errors = [];
  page.frames = [];
  page.sockets = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") page.errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on("websocket", (ws) => {
    page.sockets.push(ws.url());
    ws.on("framereceived", ({ payload }) => page.frames.push({ dir: "in", msg: parse(payload) }));
    ws.on("framesent", ({ payload }) => page.frames.push({ dir: "out", msg: parse(payload) }));
  });
  try {
    await fn(page);
  } catch (err) {
    await screenshot(page, t.name).catch(() => {});
    throw err;
  } finally {
    await context.close();
  }
}

/** Saves a full-page screenshot as `tests/e2e/artifacts/<name>.png`. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9_-]+/g, "_")}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Waits until a received frame matches `pred` and returns it; `after` skips earlier frames. */
export async function waitForFrame(page, pred, { after = 0, timeout = 10000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const hit = page.frames.slice(after).find((f) => f.dir === "in" && pred(f.msg));
    if (hit) return hit.msg;
    if (Date.now() > deadline) {
      const seen = page.frames.map((f) => `${f.dir} ${JSON.stringify(f.msg)}`).join("\n");
      throw new Error(`no matching frame within ${timeout} ms; frames:\n${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Loads the page and waits for `#connection[data-state=open]`. */
export async function openLobby(page, url) {
  await page.goto(url);
  await page.waitForSelector('#connection[data-state="open"]');
}

/** `#3a7bd5` as the `rgb(58, 123, 213)` that getComputedStyle reports. */
export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

function parse(payload) {
  try {
    return JSON.parse(payload);
  } catch {
    return { unparsed: String(payload) };
  }
}
