// Screenshots of Parlor's pages for the README: the lobby, each game
// mid-play (one against the computer), each room kind and the page for an
// unknown path, at 1280×800 and at 390×844 (and the stage controller held
// sideways, 844×390) and the operators' page, saved under
// tests/e2e/screenshots/. Not part of the
// test run.
//
// Run from the repo root with: node tests/e2e/screenshots.mjs

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  dropDisc, findSwap, joinRoom, launchBrowser, movesShown, openPage, playCell, quickMatch,
  readGems, startProxy, startServer, visit, waitForFrame,
} from "./helpers.mjs";

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), "screenshots");
const SIZES = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 },
};
const HELPER = { viewport: { width: 1000, height: 800 } };
const LANDSCAPE = { viewport: { width: 844, height: 390 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };

const ADMIN_TOKEN = "screenshots-only";
const server = await startServer({ PARLOR_GAMES__BOT_DELAY_MS: "300", PARLOR_ADMIN__TOKEN: ADMIN_TOKEN });
const browser = await launchBrowser();
await mkdir(OUT, { recursive: true });
const opened = [];

async function person(name, options = HELPER) {
  const page = await openPage(browser, { name, ...options });
  opened.push(page);
  return page;
}

async function shoot(page, name, { fullPage = false } = {}) {
  // Let animations settle so the picture shows the resting state.
  await page.waitForTimeout(700);
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage });
  console.log(`saved ${name}.png`);
  if (page.errors.length) throw new Error(`${name}: console errors:\n${page.errors.join("\n")}`);
}

async function closeAll() {
  for (const page of opened.splice(0)) await page.context().close();
}

async function lobby(size) {
  // Something to see: a game in progress, some rooms with people in them.
  const [x] = await quickMatch(await person("Grace"), await person("Linus"), server.url, "tictactoe");
  await playCell(x, 4);
  await joinRoom(await person("Margaret"), server.url, `poetry-${size}`, "chat");
  await joinRoom(await person("Alan"), server.url, `poetry-${size}`, "chat");
  await joinRoom(await person("Barbara"), server.url, `party-${size}`, "stage", { role: "host" });
  await joinRoom(await person("Ken"), server.url, `garden-${size}`, "canvas", { zombies: 3 });
  const page = await person("Ada", SIZES[size]);
  await visit(page, server.url);
  await page.waitForSelector("#live-games li");
  await page.waitForSelector("#rooms-list li");
  await page.click('[data-find="connect4"]');
  await page.waitForSelector('.game-card[data-game="connect4"] .queue-box', { state: "visible" });
  await page.evaluate(() => window.scrollTo(0, 0));
  // The whole page: the lists under the fold are half of the lobby.
  await shoot(page, `lobby-${size}`, { fullPage: true });
  await page.click('[data-cancel="connect4"]');
  await closeAll();
}

async function tictactoe(size) {
  const [x, o] = await quickMatch(await person("Ada", SIZES[size]), await person("Grace"), server.url, "tictactoe");
  const me = x.viewportSize().width === SIZES[size].viewport.width ? x : o;
  const moves = [[x, 4], [o, 0], [x, 2], [o, 6]];
  for (const [i, [page, cell]] of moves.entries()) {
    await playCell(page, cell);
    await movesShown([x, o], i + 1);
  }
  await shoot(me, `tictactoe-${size}`);
  await closeAll();
}

async function connect4(size) {
  const [red, yellow] = await quickMatch(await person("Ada", SIZES[size]), await person("Linus"), server.url, "connect4");
  const me = red.viewportSize().width === SIZES[size].viewport.width ? red : yellow;
  const columns = [3, 3, 4, 2, 2, 5, 4, 1];
  for (const [i, column] of columns.entries()) {
    await dropDisc(i % 2 === 0 ? red : yellow, column);
    await movesShown([red, yellow], i + 1);
  }
  await shoot(me, `connect4-${size}`);
  await closeAll();
}

async function match3(size) {
  const page = await person("Ada", SIZES[size]);
  await visit(page, server.url);
  await page.click('[data-find="match3"]');
  await page.waitForURL(/play\.html\?game=/);
  for (let i = 1; i <= 3; i += 1) {
    await page.waitForSelector('#status[data-state="mine"]');
    const swap = findSwap(await readGems(page));
    await page.click(`[data-r="${swap.from[0]}"][data-c="${swap.from[1]}"]`);
    await page.click(`[data-r="${swap.to[0]}"][data-c="${swap.to[1]}"]`);
    await movesShown([page], i);
  }
  const swap = findSwap(await readGems(page));
  await page.click(`[data-r="${swap.from[0]}"][data-c="${swap.from[1]}"]`);
  await shoot(page, `match3-${size}`);
  await closeAll();
}

async function chat(size) {
  const room = `book-club-${size}`;
  const grace = await person("Grace");
  const linus = await person("Linus");
  // Linus goes through a proxy, so his network can be cut below.
  const proxy = await startProxy(server.url);
  await joinRoom(grace, server.url, room, "chat");
  await joinRoom(linus, proxy.url, room, "chat");
  await say(grace, "Has anyone finished chapter three yet?");
  await say(linus, "Halfway. The twist with the lighthouse keeper!");
  const me = await person("Ada", SIZES[size]);
  await joinRoom(me, server.url, room, "chat");
  await me.waitForSelector(".msg.history");
  await say(grace, "No spoilers please!");
  await say(me, "Just got here — which book is it?");
  await me.waitForSelector(".msg.mine");
  // Linus's network drops: he stays in the room, dimmed, marked away.
  await proxy.close();
  await me.waitForSelector("#members .member.is-away");
  await shoot(me, `chat-${size}`);
  await closeAll();
}

async function say(page, text) {
  await page.fill("#chat-input", text);
  await page.press("#chat-input", "Enter");
  await page.waitForSelector(`.msg.mine >> text=${text}`);
}

/** A screen with three phones pressing buttons; both views at this size. */
async function stage(size) {
  const room = `party-${size}`;
  const screen = await person("Living room TV", SIZES[size]);
  await joinRoom(screen, server.url, room, "stage", { role: "host" });
  const pads = [];
  for (const name of ["Ada", "Grace", "Linus"]) {
    const pad = await person(name, SIZES[size]);
    await joinRoom(pad, server.url, room, "stage", { role: "controller" });
    pads.push(pad);
  }
  for (const [pad, button] of [[pads[1], "left"], [pads[2], "B"], [pads[0], "up"], [pads[0], "A"]]) {
    await pad.click(`[data-button="${button}"]`);
    await waitForFrame(screen, (m) => m.type === "message" && m.data.button === button && m.from);
  }
  await shoot(screen, `stage-host-${size}`);
  await shoot(pads[0], `stage-controller-${size}`);
  if (size === "phone") {
    const sideways = await person("Ada", LANDSCAPE);
    await joinRoom(sideways, server.url, room, "stage", { role: "controller" });
    await shoot(sideways, "stage-controller-landscape");
  }
  await closeAll();
}

/** Connect four against the hard computer, a few moves in. */
async function bot(size) {
  const page = await person("Ada", SIZES[size]);
  await visit(page, server.url);
  await page.selectOption('select[data-level="connect4"]', "hard");
  await page.click('[data-bot="connect4"]');
  await page.waitForURL(/play\.html\?game=/);
  for (const [i, column] of [2, 4, 2].entries()) {
    await dropDisc(page, column);
    await movesShown([page], 2 * i + 2);
  }
  await shoot(page, `bot-${size}`);
  await closeAll();
}

/** Two people writing on a poetry board. */
async function board(size) {
  const room = `verses-${size}`;
  const grace = await person("Grace");
  await joinRoom(grace, server.url, room, "board");
  await grace.waitForSelector('#poetry:not([data-words="0"])');
  const me = await person("Ada", SIZES[size]);
  await joinRoom(me, server.url, room, "board");
  await me.waitForSelector('#poetry:not([data-words="0"])');
  // "the moon is gold" along the bottom, by both.
  for (const [page, id, fx] of [[grace, 0, 0.1], [me, 2, 0.22], [grace, 30, 0.4], [me, 19, 0.5]]) {
    const area = await page.locator("#poetry").boundingBox();
    const tile = await page.locator(`#poetry [data-word="${id}"]`).boundingBox();
    await page.mouse.move(tile.x + 5, tile.y + 5);
    await page.mouse.down();
    await page.mouse.move(area.x + area.width * fx + 5, area.y + area.height * 0.9, { steps: 6 });
    await page.mouse.up();
    await waitForFrame(page, (m) => m.type === "state" && m.action === "move_word", { dir: "out" });
  }
  await me.waitForTimeout(300);
  await shoot(me, `board-${size}`);
  await closeAll();
}

/** The operators' page with some life on the server. */
async function admin(size) {
  const [x] = await quickMatch(await person("Grace"), await person("Linus"), server.url, "connect4");
  await dropDisc(x, 3);
  await joinRoom(await person("Margaret"), server.url, `poetry-${size}`, "chat");
  await joinRoom(await person("Ken"), server.url, `garden-${size}`, "canvas", { zombies: 2 });
  const page = await person("Operator", SIZES[size]);
  await page.goto(new URL("admin", server.url).href);
  await page.fill("#token", ADMIN_TOKEN);
  await page.click('#login button[type="submit"]');
  await page.waitForSelector("#sessions li");
  // A few samples for the charts.
  await page.waitForTimeout(4500);
  await shoot(page, `admin-${size}`, { fullPage: size === "desktop" });
  await closeAll();
}

async function notFound(size) {
  const page = await person("Ada", SIZES[size]);
  await page.goto(new URL("no/such/page", server.url).href);
  page.errors = page.errors.filter((err) => !/status of 404/.test(err));
  await shoot(page, `not-found-${size}`);
  await closeAll();
}

async function canvas(size) {
  const room = `garden-${size}`;
  const me = await person("Ada", SIZES[size]);
  await joinRoom(me, server.url, room, "canvas", { zombies: 4 });
  const others = [];
  for (const name of ["Grace", "Linus"]) {
    const page = await person(name);
    await joinRoom(page, server.url, room, "canvas");
    others.push(page);
  }
  await moveOn(me, 0.35, 0.4);
  await moveOn(others[0], 0.7, 0.3);
  await moveOn(others[1], 0.6, 0.75);
  await me.waitForFunction(() => document.querySelectorAll("[data-player]").length === 3);
  // The zombies close in; everyone steps away, so the picture shows the chase.
  await me.waitForTimeout(1500);
  await moveOn(me, 0.22, 0.62);
  await moveOn(others[0], 0.82, 0.16);
  await moveOn(others[1], 0.45, 0.88);
  await shoot(me, `canvas-${size}`);
  await closeAll();
}

async function moveOn(page, fx, fy) {
  const box = await page.locator("#canvas").boundingBox();
  await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy, { steps: 4 });
}

try {
  for (const size of Object.keys(SIZES)) {
    await lobby(size);
    await tictactoe(size);
    await connect4(size);
    await match3(size);
    await chat(size);
    await stage(size);
    await canvas(size);
    await bot(size);
    await board(size);
    await notFound(size);
    await admin(size);
  }
} finally {
  await closeAll();
  await browser.close();
  await server.stop();
}
