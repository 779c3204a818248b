// The poetry board (`room.html?kind=board`) against the real server: two
// people drag tiles and see each other's drags live and their drops; a
// third who joins sees the board as it is; a phone drags with a finger; the
// board survives a restart through the stored snapshot.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import {
  PHONE, joinRoom, launchBrowser, openPage, startServer, useServer, visit, waitForFrame, withPages,
} from "./helpers.mjs";

/** Every tile's place as the page shows it: `{id: "left top"}`. */
async function places(page) {
  return page.$$eval("#poetry [data-word]", (tiles) =>
    Object.fromEntries(tiles.map((t) => [t.dataset.word, `${t.style.left} ${t.style.top}`])));
}

/** The place of one tile. */
async function placeOf(page, id) {
  return (await places(page))[id];
}

/** Opens the board room and waits for its tiles. */
async function openBoard(page, url, room) {
  await joinRoom(page, url, room, "board");
  await page.waitForSelector('#poetry:not([data-words="0"])');
}

/**
 * Drags tile `id` by (dx, dy) pixels with the mouse; `during` runs while
 * the tile is held, before it is let go.
 */
async function dragTile(page, id, dx, dy, during = async () => {}) {
  const box = await page.locator(`#poetry [data-word="${id}"]`).boundingBox();
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx, y + dy, { steps: 12 });
  await during();
  await page.mouse.up();
}

describe("poetry board", { timeout: 90000 }, () => {
  const parlor = useServer();

  test("two people see each other's drags, and a newcomer sees the board", async (t) => {
    const people = [{ name: "Ada" }, { name: "Grace" }, { name: "Late" }];
    await withPages(parlor.browser, t, people, async (a, b, c) => {
      await openBoard(a, parlor.url, "poems-1");
      await openBoard(b, parlor.url, "poems-1");
      // The second page got the first one's board, word for word.
      assert.deepEqual(await places(b), await places(a));
      const words = await a.$$eval("#poetry [data-word]", (tiles) => tiles.map((t) => t.textContent));
      assert.deepEqual(await b.$$eval("#poetry [data-word]", (tiles) => tiles.map((t) => t.textContent)), words);

      const before = await placeOf(b, "2");
      await dragTile(a, "2", 140, 90, async () => {
        // Live: the other page moves the tile before it is dropped, marked as someone else's.
        await b.waitForSelector('#poetry [data-word="2"].remote-drag');
        assert.notEqual(await placeOf(b, "2"), before);
      });
      await waitForFrame(a, (m) => m.type === "state" && m.action === "move_word", { dir: "out" });
      await b.waitForFunction(
        (want) => {
          const tile = document.querySelector('#poetry [data-word="2"]');
          return `${tile.style.left} ${tile.style.top}` === want && !tile.classList.contains("remote-drag");
        },
        await placeOf(a, "2"),
      );

      await dragTile(b, "7", -60, 120);
      await a.waitForFunction(
        (want) => {
          const tile = document.querySelector('#poetry [data-word="7"]');
          return `${tile.style.left} ${tile.style.top}` === want;
        },
        await placeOf(b, "7"),
      );
      // No `moving` state was relayed as a message; drags went as broadcasts.
      const sent = b.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "state").map((f) => f.msg.action);
      assert.deepEqual(sent.slice(-2), ["moving", "move_word"]);

      await openBoard(c, parlor.url, "poems-1");
      assert.deepEqual(await places(c), await places(b), "the newcomer sees the board as it is");
    });
  });

  test("on a 360 px phone a finger drags a tile", async (t) => {
    await withPages(parlor.browser, t, [{ ...PHONE, name: "Phone" }, { name: "Desk" }], async (phone, desk) => {
      await openBoard(phone, parlor.url, "poems-2");
      await openBoard(desk, parlor.url, "poems-2");
      const width = await phone.$eval("#poetry", (board) => board.getBoundingClientRect().width);
      assert.ok(width <= 360, `the board fits the phone (${width}px)`);
      // A real touch, through the browser's input pipeline (as a finger would).
      const box = await phone.locator('#poetry [data-word="0"]').boundingBox();
      const x = box.x + box.width / 2;
      const y = box.y + box.height / 2;
      const cdp = await phone.context().newCDPSession(phone);
      const touch = (type, dx, dy) =>
        cdp.send("Input.dispatchTouchEvent", { type, touchPoints: type === "touchEnd" ? [] : [{ x: x + dx, y: y + dy }] });
      await touch("touchStart", 0, 0);
      for (const step of [10, 30, 60, 90]) await touch("touchMove", step, step);
      await touch("touchEnd", 0, 0);
      await waitForFrame(phone, (m) => m.type === "state" && m.action === "move_word", { dir: "out" });
      const moved = await placeOf(phone, "0");
      await desk.waitForFunction(
        (want) => {
          const t = document.querySelector('#poetry [data-word="0"]');
          return `${t.style.left} ${t.style.top}` === want;
        },
        moved,
      );
    });
  });

  test("the board survives a restart", async () => {
    const folder = await mkdtemp(path.join(os.tmpdir(), "parlor-board-"));
    const env = { PARLOR_STORE__PATH: path.join(folder, "parlor.db") };
    const browser = await launchBrowser();
    let server = await startServer(env);
    try {
      const page = await openPage(browser, { name: "Keeper" });
      await openBoard(page, server.url, "poems-3");
      await dragTile(page, "4", 100, 100);
      await waitForFrame(page, (m) => m.type === "state" && m.action === "move_word", { dir: "out" });
      const kept = await places(page);
      await page.context().close();
      // A clean stop writes every snapshot not yet written.
      const stopped = await server.stop();
      assert.equal(stopped.code, 0);
      server = await startServer(env);
      const again = await openPage(browser, { name: "Returner" });
      await visit(again, server.url, "room.html?room=poems-3&kind=board");
      await again.waitForSelector('#poetry:not([data-words="0"])');
      assert.deepEqual(await places(again), kept);
      assert.deepEqual(again.errors, []);
      await again.context().close();
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
