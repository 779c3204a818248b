// Keeping the seat: a game page loaded after the match (and reloaded
// mid-game) resumes the session with the token in sessionStorage, and a
// socket the server drops (a dead network, noticed by the heartbeat) comes
// back through client.js's reconnect with the resume token. A socket the
// server closes for a breach (a frame too big) is named on the page.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  joinRoom, movesShown, playCell, quickMatch, startProxy, startServer, useServer, waitForFrame,
  withPages,
} from "./helpers.mjs";

/** A fast heartbeat, so a silent (stalled) socket is dropped within two seconds; not so fast that a page busy loading on a loaded machine is taken for silent (800 ms was, once in a few runs). */
const QUICK_HEARTBEAT = { PARLOR_HEARTBEAT__INTERVAL_MS: "300", PARLOR_HEARTBEAT__TIMEOUT_MS: "1500" };

describe("reconnecting", { timeout: 60000 }, () => {
  const parlor = useServer(QUICK_HEARTBEAT);

  const welcomes = (page) => page.wsFrames.filter((f) => f.dir === "in" && f.msg.type === "welcome").map((f) => f.msg);

  test("the game page resumes the lobby's session, and a reload keeps the seat", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (a, b) => {
      const [x, o] = await quickMatch(a, b, parlor.url, "tictactoe");
      for (const page of [x, o]) {
        // Lobby socket first, the game page's last, which offered the lobby's token.
        const all = welcomes(page);
        assert.ok(all.length >= 2, "a welcome on the lobby and on the game page");
        assert.equal(all.at(-1).session, all[0].session);
        assert.match(page.sockets.at(-1), /[?&]resume=/);
        const state = await waitForFrame(page, (m) => m.type === "game_state");
        assert.ok(state.you, "the resumed game_state names the seat");
      }

      await playCell(x, 4);
      await movesShown([x, o], 1);
      const before = o.wsFrames.length;
      const xBefore = x.wsFrames.length;
      await o.reload();
      await o.waitForSelector('#connection[data-state="open"]');
      const resumed = await waitForFrame(o, (m) => m.type === "resumed", { after: before });
      assert.ok(resumed.games.includes(new URL(o.url()).searchParams.get("game")));
      await o.waitForSelector('#board[data-moves="1"]');
      assert.equal(await o.textContent('[data-cell="4"]'), "X");
      assert.equal(await o.textContent("#status"), "Your turn");
      await waitForFrame(x, (m) => m.type === "opponent_back", { after: xBefore });

      await playCell(o, 0);
      await movesShown([x, o], 2);
      assert.equal(await x.textContent('[data-cell="0"]'), "O");
    });
  });

  test("a socket dropped by the server comes back with the resume token and keeps the seat", async (t) => {
    const proxy = await startProxy(parlor.url);
    try {
      await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (a, b) => {
        // Only b reaches the server through the proxy, so only b's network can be cut.
        const [x, o] = await quickMatch(a, b, parlor.url, "tictactoe", proxy.url);
        const cut = b;
        const other = b === x ? o : x;
        await playCell(x, 4);
        await movesShown([x, o], 1);
        const session = welcomes(cut).at(-1).session;
        const sockets = cut.sockets.length;
        const mark = other.wsFrames.length;
        const cutMark = cut.wsFrames.length;

        proxy.stall();
        proxy.refuse(true);
        await cut.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 5000 });
        const away = await waitForFrame(other, (m) => m.type === "opponent_away", { after: mark });
        assert.equal(away.seat, await cut.$eval(".player.me", (el) => el.dataset.seat));
        await other.waitForSelector('#away[data-state="away"]', { state: "visible" });
        assert.match(await other.textContent("#away"), /lost the connection\. Their seat is held for \d+ s\./);

        proxy.refuse(false);
        await cut.waitForSelector('#connection[data-state="open"]', { timeout: 15000 });
        const resumed = await waitForFrame(cut, (m) => m.type === "resumed", { after: cutMark });
        assert.equal(resumed.session, session, "the same session came back");
        assert.ok(cut.sockets.length > sockets);
        assert.match(cut.sockets.at(-1), /[?&]resume=/);
        await waitForFrame(other, (m) => m.type === "opponent_back", { after: mark });
        await other.waitForSelector('#away[data-state="back"]', { state: "visible" });

        // The seat was kept: the game goes on from where it was.
        assert.equal(await cut.textContent('[data-cell="4"]'), "X");
        await playCell(o, 0);
        await movesShown([x, o], 2);
        await playCell(x, 8);
        await movesShown([x, o], 3);

        // Refused handshakes while the network was down are logged by the browser; nothing else may be.
        cut.errors = cut.errors.filter((err) => !/WebSocket connection to .* failed/.test(err));
      });
    } finally {
      await proxy.close();
    }
  });

  test("a frame too big for the server is named on the page, and the page comes back", async (t) => {
    const strict = await startServer({ PARLOR_LIMITS__MAX_FRAME_BYTES: "1024" });
    try {
      await withPages(parlor.browser, t, [{ name: "Ada" }], async (page) => {
        await joinRoom(page, strict.url, "e2e-small-frames", "chat");
        // 500 CJK characters are about 1.5 KB of UTF-8: over this server's limit.
        await page.fill("#chat-input", "漢".repeat(500));
        await page.press("#chat-input", "Enter");

        await page.waitForSelector('#error[data-code="closed_1009"]', { state: "visible" });
        assert.match(await page.textContent("#error"), /too big/);
        await page.waitForSelector('#connection[data-state="open"]', { timeout: 15000 });
        assert.ok(page.sockets.length >= 2, "the page connected again");
        assert.match(page.sockets.at(-1), /[?&]resume=/);
      });
    } finally {
      await strict.stop();
    }
  });
});

describe("nothing lost", { timeout: 90000 }, () => {
  const parlor = useServer(QUICK_HEARTBEAT);

  test("a page whose socket is cut mid-chat gets every message on its return, none twice", async (t) => {
    const proxy = await startProxy(parlor.url);
    try {
      await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (talker, cut) => {
        await joinRoom(talker, parlor.url, "e2e-nothing-lost", "chat");
        // Only the listener goes through the proxy, so only its network can be cut.
        await joinRoom(cut, proxy.url, "e2e-nothing-lost", "chat");
        const say = async (text) => {
          await talker.fill("#chat-input", text);
          await talker.press("#chat-input", "Enter");
        };
        for (let n = 1; n <= 3; n += 1) await say(`before ${n}`);
        await cut.waitForSelector("#messages .msg:nth-child(3)", { state: "attached" }).catch(() => {});
        await waitForFrame(cut, (m) => m.type === "message" && m.data?.text === "before 3");
        const mark = cut.wsFrames.length;

        // The network dies: what the server writes now is lost on the way, and
        // once the heartbeat drops the socket the listener is away.
        proxy.stall();
        proxy.refuse(true);
        for (let n = 1; n <= 3; n += 1) await say(`lost ${n}`);
        await cut.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 5000 });
        await waitForFrame(talker, (m) => m.type === "member_away");
        await talker.waitForSelector("#members .member.is-away", { state: "attached" });
        assert.equal(await talker.textContent("#members .member.is-away .away-tag"), "away");
        for (let n = 1; n <= 3; n += 1) await say(`away ${n}`);

        proxy.refuse(false);
        await cut.waitForSelector('#connection[data-state="open"]', { timeout: 15000 });
        const resumed = await waitForFrame(cut, (m) => m.type === "resumed", { after: mark });
        assert.equal(resumed.recovered, true, JSON.stringify(resumed));
        assert.match(cut.sockets.at(-1), /[?&]received=\d+/);
        await waitForFrame(cut, (m) => m.type === "message" && m.data?.text === "away 3", { after: mark });
        await waitForFrame(talker, (m) => m.type === "member_back");
        await talker.waitForSelector("#members .member.is-away", { state: "detached" });

        const texts = cut.wsFrames
          .filter((f) => f.dir === "in" && f.msg.type === "message")
          .map((f) => f.msg.data.text);
        const expected = [1, 2, 3].map((n) => `before ${n}`)
          .concat([1, 2, 3].map((n) => `lost ${n}`), [1, 2, 3].map((n) => `away ${n}`));
        assert.deepEqual(texts, expected, "every message once, in order");
        // Nothing else was resent: no second room_joined.
        assert.equal(cut.wsFrames.filter((f) => f.dir === "in" && f.msg.type === "room_joined").length, 1);
        const shown = await cut.$$eval("#messages .msg .msg-text", (nodes) => nodes.map((n) => n.textContent));
        assert.deepEqual(shown, expected);

        cut.errors = cut.errors.filter((err) => !/WebSocket connection to .* failed/.test(err));
      });
    } finally {
      await proxy.close();
    }
  });

  test("an away player's square on the canvas is dimmed until they are back", async (t) => {
    const proxy = await startProxy(parlor.url);
    try {
      await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (ada, grace) => {
        await joinRoom(ada, parlor.url, "e2e-canvas-away", "canvas");
        const graceId = await joinRoom(grace, proxy.url, "e2e-canvas-away", "canvas");
        const box = await grace.locator("#canvas").boundingBox();
        await grace.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
        const dot = ada.locator(`#canvas [data-player="${graceId}"]`);
        await dot.waitFor();
        assert.equal(await dot.evaluate((node) => node.classList.contains("is-away")), false);

        proxy.stall();
        proxy.refuse(true);
        await ada.locator(`#canvas [data-player="${graceId}"].is-away`).waitFor();
        assert.match(await dot.getAttribute("title"), /\(away\)/);

        proxy.refuse(false);
        await ada.locator(`#canvas [data-player="${graceId}"]:not(.is-away)`).waitFor({ timeout: 15000 });
        grace.errors = grace.errors.filter((err) => !/WebSocket connection to .* failed/.test(err));
      });
    } finally {
      await proxy.close();
    }
  });

  test("a game goes on after the server restarts, with no dialog", async (t) => {
    const folder = await mkdtemp(path.join(tmpdir(), "parlor-e2e-"));
    const env = { ...QUICK_HEARTBEAT, PARLOR_STORE__PATH: path.join(folder, "parlor.db") };
    let server = await startServer(env);
    try {
      await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (a, b) => {
        const [x, o] = await quickMatch(a, b, server.url, "tictactoe");
        await playCell(x, 4);
        await movesShown([x, o], 1);
        const marks = [x.wsFrames.length, o.wsFrames.length];

        await server.stop();
        for (const page of [x, o]) {
          await page.waitForSelector('#connection:not([data-state="open"])', { timeout: 5000 });
        }
        // The same address, the same store.
        server = await startServer({ ...env, PARLOR_SERVER__BIND: new URL(server.url).host });

        for (const [i, page] of [x, o].entries()) {
          await page.waitForSelector('#connection[data-state="open"]', { timeout: 20000 });
          const resumed = await waitForFrame(page, (m) => m.type === "resumed", { after: marks[i], timeout: 20000 });
          assert.equal(resumed.games.length, 1, JSON.stringify(resumed));
          await waitForFrame(page, (m) => m.type === "game_state", { after: marks[i] });
        }
        await movesShown([x, o], 1);
        for (const page of [x, o]) {
          assert.notEqual(await page.getAttribute("#status", "data-state"), "gone");
          assert.doesNotMatch(await page.textContent("body"), /is over|no longer available/);
        }
        await playCell(o, 0);
        await movesShown([x, o], 2);
        await playCell(x, 8);
        await movesShown([x, o], 3);

        for (const page of [x, o]) {
          page.errors = page.errors.filter((err) => !/WebSocket connection to .* failed/.test(err));
        }
      });
    } finally {
      await server.stop();
      await rm(folder, { recursive: true, force: true });
    }
  });
});
