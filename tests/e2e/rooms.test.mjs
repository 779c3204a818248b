// The room pages against the real server: a chat between two people with
// history for a newcomer, a chat of long messages that stays connected, a
// stage screen receiving a phone's buttons, and a canvas showing another
// player and the zombies. No console errors.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { HTML_NAME, PHONE, hexToRgb, joinRoom, useServer, waitForFrame, withPages } from "./helpers.mjs";

/** The room page's budget for a `state` frame (STATE_BUDGET_BYTES in room.js). */
const STATE_BUDGET_BYTES = 32 * 1024;

describe("room pages", { timeout: 60000 }, () => {
  const parlor = useServer();

  async function say(page, text) {
    await page.fill("#chat-input", text);
    await page.press("#chat-input", "Enter");
  }

  /** Leaves the room with the Leave link and waits until the page is back in the lobby. */
  async function leave(page) {
    await page.click("#leave");
    // A context closed mid-navigation can hang Playwright's close.
    await page.waitForURL(parlor.url);
  }

  /** Waits until the chat shows a notice reading exactly `text`. */
  async function noticeShown(page, text) {
    await page.waitForFunction(
      (want) => [...document.querySelectorAll("#messages .notice")].some((n) => n.textContent === want),
      text,
    );
  }

  test("two people chat, a newcomer gets the history, and a leaver is announced", async (t) => {
    const people = [{ name: "Ada" }, { name: HTML_NAME }, { name: "Linus" }];
    await withPages(parlor.browser, t, people, async (ada, eve, linus) => {
      const adaId = await joinRoom(ada, parlor.url, "e2e-chat", "chat");
      const eveId = await joinRoom(eve, parlor.url, "e2e-chat", "chat");
      await ada.waitForSelector(`#members [data-session="${eveId}"]`);
      await noticeShown(ada, `${HTML_NAME} joined.`);

      await say(ada, "Hello <b>there</b>");
      const heard = eve.locator(`.msg[data-from="${adaId}"]`);
      await heard.waitFor();
      assert.equal(await heard.locator(".msg-text").textContent(), "Hello <b>there</b>");
      assert.equal(await heard.locator(".msg-name").textContent(), "Ada");
      assert.equal(await ada.inputValue("#chat-input"), "");

      await say(eve, "Hi Ada");
      const reply = ada.locator(`.msg[data-from="${eveId}"]`);
      await reply.waitFor();
      assert.equal(await reply.locator(".msg-name").textContent(), HTML_NAME);
      assert.equal(await ada.locator("#messages img, #messages i, #members img, #members i").count(), 0);

      // Members are listed with their colours.
      const eveJoined = await waitForFrame(ada, (m) => m.type === "member_joined" && m.member.session === eveId);
      const member = ada.locator(`#members [data-session="${eveId}"]`);
      assert.equal(await member.locator(".member-name").textContent(), HTML_NAME);
      const bg = await member.locator(".avatar").evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(bg, hexToRgb(eveJoined.member.color));

      // A newcomer sees the earlier messages, in order, from a member's reply.
      await joinRoom(linus, parlor.url, "e2e-chat", "chat");
      const state = await waitForFrame(linus, (m) => m.type === "room_state");
      assert.ok(state.from === adaId || state.from === eveId, "a member answered the state request");
      await linus.waitForSelector(".msg.history >> nth=1");
      const history = await linus.$$eval(".msg .msg-text", (els) => els.map((el) => el.textContent));
      assert.deepEqual(history, ["Hello <b>there</b>", "Hi Ada"]);

      await leave(eve);
      await noticeShown(ada, `${HTML_NAME} left.`);
      assert.equal(await ada.locator(`#members [data-session="${eveId}"]`).count(), 0);
      const left = await waitForFrame(ada, (m) => m.type === "member_left" && m.session === eveId);
      assert.equal(left.reason, "left");
    });
  });

  test("fifty long CJK messages keep the connection: state frames stay within the budget", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Linus" }], async (ada, linus) => {
      await joinRoom(ada, parlor.url, "e2e-cjk", "chat");
      // 500 characters, about 1.5 KB of UTF-8 each: fifty of them would be
      // over the server's 64 KiB frame limit.
      const texts = Array.from({ length: 50 }, (_, i) => String(i).padStart(2, "0") + "漢".repeat(498));
      for (const text of texts) await say(ada, text);
      await waitForFrame(ada, (m) => m.type === "state" && m.data.messages.at(-1)?.text === texts.at(-1), { dir: "out" });

      await joinRoom(linus, parlor.url, "e2e-cjk", "chat");
      const state = await waitForFrame(linus, (m) => m.type === "room_state");
      assert.equal(state.data.messages.at(-1).text, texts.at(-1), "the newest message is kept");
      assert.ok(state.data.messages.length < texts.length, "the oldest messages are left out");

      const sent = ada.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "state");
      assert.ok(sent.some((f) => f.msg.for), "the state request was answered");
      for (const frame of sent) assert.ok(frame.bytes <= STATE_BUDGET_BYTES, `a state frame of ${frame.bytes} bytes`);
      assert.equal(ada.sockets.length, 1, "the connection was never closed");
      assert.equal(await ada.isVisible("#error"), false);
    });
  });

  test("a stage screen shows a phone's button presses; other phones do not get them", async (t) => {
    const people = [{ name: "Screen" }, { name: "Ada", ...PHONE }, { name: "Grace", ...PHONE }];
    await withPages(parlor.browser, t, people, async (screen, ada, grace) => {
      await joinRoom(screen, parlor.url, "e2e-stage", "stage", { role: "host" });
      const adaId = await joinRoom(ada, parlor.url, "e2e-stage", "stage", { role: "controller" });
      await joinRoom(grace, parlor.url, "e2e-stage", "stage", { role: "controller" });
      await ada.waitForSelector('#pad-status[data-screen="on"]');

      await ada.tap('[data-button="A"]');
      const tile = screen.locator(`.controller[data-session="${adaId}"]`);
      await screen.waitForSelector(`.controller[data-session="${adaId}"][data-button="A"]`);
      assert.equal(await tile.locator(".last-button").textContent(), "A");
      assert.equal(await tile.locator(".press-count").textContent(), "1 press");
      assert.equal(await tile.locator(".controller-name").textContent(), "Ada");

      await ada.tap('[data-button="left"]');
      await screen.waitForSelector(`.controller[data-session="${adaId}"][data-button="left"]`);
      assert.equal(await tile.locator(".press-count").textContent(), "2 presses");
      assert.equal(await screen.locator("#press-log li").count(), 2);

      const sent = ada.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "broadcast").map((f) => f.msg.data);
      assert.deepEqual(sent, [{ button: "A" }, { button: "left" }]);
      // Members see a room's events in one order: Ada's leaving reaches Grace
      // after anything her presses could have sent Grace.
      await leave(ada);
      await waitForFrame(grace, (m) => m.type === "member_left" && m.session === adaId);
      assert.equal(grace.wsFrames.filter((f) => f.dir === "in" && f.msg.type === "message").length, 0);
    });
  });

  test("the controller fits a phone's screen with large buttons", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada", ...PHONE }], async (page) => {
      await joinRoom(page, parlor.url, "e2e-pad", "stage", { role: "controller" });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
      for (const button of ["up", "down", "left", "right", "A", "B"]) {
        const box = await page.locator(`[data-button="${button}"]`).boundingBox();
        assert.ok(box.width >= 64 && box.height >= 64, `${button} is ${box.width}×${box.height}`);
        assert.ok(box.x >= 0 && box.x + box.width <= PHONE.viewport.width, `${button} is on screen`);
      }
      assert.match(await page.textContent("#pad-status"), /Waiting for the screen/);
    });
  });

  test("the canvas shows another player's square where they point, and the zombies", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (ada, grace) => {
      const adaId = await joinRoom(ada, parlor.url, "e2e-canvas", "canvas", { zombies: 3 });
      await joinRoom(grace, parlor.url, "e2e-canvas", "canvas");

      const box = await ada.locator("#canvas").boundingBox();
      const started = Date.now();
      for (let i = 0; i <= 20; i += 1) {
        await ada.mouse.move(box.x + box.width * (0.1 + 0.01 * i), box.y + box.height * (0.5 + 0.0125 * i));
      }
      const elapsed = Date.now() - started;

      const dot = grace.locator(`[data-player="${adaId}"]`);
      await dot.waitFor();
      await grace.waitForFunction((id) => {
        const el = document.querySelector(`[data-player="${id}"]`);
        return el && Math.abs(parseFloat(el.style.left) - 30) < 1 && Math.abs(parseFloat(el.style.top) - 75) < 1;
      }, adaId);
      assert.equal(await dot.locator(".dot-label").textContent(), "Ada");
      const frame = await waitForFrame(grace, (m) => m.type === "frame" && m.players.some((p) => p.session === adaId));
      const color = frame.players.find((p) => p.session === adaId).color;
      assert.equal(await dot.evaluate((el) => getComputedStyle(el).backgroundColor), hexToRgb(color));

      // Zombies are drawn, and drawn differently from players.
      await grace.waitForFunction(() => document.querySelectorAll("#canvas .zombie").length === 3);
      assert.equal(await grace.locator("#canvas .zombie[data-player]").count(), 0);
      assert.equal(await ada.locator(`[data-player="${adaId}"].me`).count(), 1);

      // Positions go out at most once per tick (20 Hz here), the last one always.
      await waitForFrame(ada, (m) => m.type === "pos" && m.x === 300 && m.y === 750, { dir: "out" });
      const sent = ada.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "pos");
      assert.ok(sent.length <= Math.ceil(elapsed / 50) + 2, `${sent.length} pos in ${elapsed} ms`);
      assert.deepEqual([sent.at(-1).msg.x, sent.at(-1).msg.y], [300, 750]);
    });
  });

  test("a canvas player who leaves takes their square along", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (ada, grace) => {
      // The server's next frame would redraw the board without Grace; hold
      // frames back, so that only member_left can take her square away.
      let holdFrames = false;
      await ada.routeWebSocket(/\/ws/, (ws) => {
        const server = ws.connectToServer();
        server.onMessage((message) => {
          if (!(holdFrames && JSON.parse(message).type === "frame")) ws.send(message);
        });
      });
      await joinRoom(ada, parlor.url, "e2e-canvas-leave", "canvas");
      const graceId = await joinRoom(grace, parlor.url, "e2e-canvas-leave", "canvas");
      const box = await grace.locator("#canvas").boundingBox();
      await grace.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const dot = ada.locator(`[data-player="${graceId}"]`);
      await dot.waitFor();

      holdFrames = true;
      await leave(grace);
      await waitForFrame(ada, (m) => m.type === "member_left" && m.session === graceId);
      await dot.waitFor({ state: "detached" });
    });
  });
});
