// The lobby as a directory: the quick-match waiting state and cancel, live
// games to watch, rooms to join and the form that opens one; other
// people's names in those lists are text, never markup.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  HTML_NAME, PHONE, joinRoom, movesShown, playCell, quickMatch, useServer, visit, waitForFrame,
  withPages,
} from "./helpers.mjs";

describe("lobby directory", { timeout: 60000 }, () => {
  const parlor = useServer();

  test("a quick match waits visibly and can be cancelled", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }], async (page) => {
      await visit(page, parlor.url);
      await page.click('[data-find="connect4"]');
      const queued = await waitForFrame(page, (m) => m.type === "queued");
      assert.equal(queued.game, "connect4");
      await page.waitForSelector('.game-card[data-game="connect4"] .queue-box', { state: "visible" });
      assert.match(await page.textContent("#queue-status"), /connect four/);
      assert.equal(await page.locator('[data-find="tictactoe"]').isDisabled(), true);

      await page.click('[data-cancel="connect4"]');
      await waitForFrame(page, (m) => m.type === "find_cancelled");
      await page.waitForSelector('.game-card[data-game="connect4"] .queue-box', { state: "hidden" });
      assert.equal(await page.locator('[data-find="tictactoe"]').isDisabled(), false);
      assert.equal(await page.textContent("#queue-status"), "");
    });
  });

  test("a live game is listed with its players and can be watched from the list", async (t) => {
    const people = [{ name: "Ada" }, { name: HTML_NAME }, { name: "Watcher" }];
    await withPages(parlor.browser, t, people, async (a, b, watcher) => {
      const [x, o] = await quickMatch(a, b, parlor.url, "tictactoe");
      const gameId = new URL(x.url()).searchParams.get("game");

      await visit(watcher, parlor.url);
      const item = watcher.locator(`#live-games li[data-game-id="${gameId}"]`);
      await item.waitFor();
      assert.deepEqual(await item.locator(".who-name").allTextContents(), ["Ada", HTML_NAME]);
      assert.equal(await watcher.locator("#live-games img, #live-games i").count(), 0);
      assert.equal(await watcher.isVisible("#live-empty"), false);

      await item.locator("a").click();
      await watcher.waitForURL(/play\.html\?watch=/);
      await watcher.waitForSelector('#board[data-status="playing"]');
      assert.equal(await watcher.textContent("#status"), "X to move");
      assert.equal(await watcher.isVisible("#watching"), true);

      await playCell(x, 4);
      await movesShown([x, o, watcher], 1);
      assert.equal(await watcher.textContent('[data-cell="4"]'), "X");
      assert.equal(await watcher.textContent("#status"), "O to move");
    });
  });

  test("the form opens a room, which the lobby then lists for others to join", async (t) => {
    await withPages(parlor.browser, t, [{ name: HTML_NAME }, { name: "Ada" }], async (opener, other) => {
      await visit(opener, parlor.url);
      await opener.fill("#room-name", "e2e-garden");
      await opener.selectOption("#room-kind", "canvas");
      assert.equal(await opener.isVisible("#room-zombies"), true);
      assert.equal(await opener.isVisible("#room-role"), false);
      await opener.fill("#room-zombies", "2");
      await opener.click('#room-form button[type="submit"]');
      await opener.waitForURL(/room\.html\?/);
      const query = new URL(opener.url()).searchParams;
      assert.deepEqual(
        [query.get("room"), query.get("kind"), query.get("zombies")],
        ["e2e-garden", "canvas", "2"],
      );
      const joined = await waitForFrame(opener, (m) => m.type === "room_joined");
      assert.equal(joined.kind, "canvas");

      await visit(other, parlor.url);
      const item = other.locator('#rooms-list li[data-room="e2e-garden"]');
      await item.waitFor();
      assert.match(await item.textContent(), /Canvas · 1 person/);
      await item.locator("a").click();
      await other.waitForURL(/room\.html\?room=e2e-garden&kind=canvas/);
      await other.waitForSelector(`#members [data-session="${joined.you}"]`);
      assert.equal(await other.textContent(`#members [data-session="${joined.you}"] .member-name`), HTML_NAME);
      assert.equal(await other.locator("#members img, #members i").count(), 0);
    });
  });

  test("the lobby opens a poetry board and lists it for others to join", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Poet" }, { name: "Reader" }], async (opener, other) => {
      await visit(opener, parlor.url);
      await opener.fill("#room-name", "e2e-verses");
      await opener.selectOption("#room-kind", "board");
      assert.match(await opener.textContent("#room-kind-hint"), /word tiles/);
      await opener.click('#room-form button[type="submit"]');
      await opener.waitForURL(/room\.html\?room=e2e-verses&kind=board/);
      await opener.waitForSelector('#poetry:not([data-words="0"])');

      await visit(other, parlor.url);
      const item = other.locator('#rooms-list li[data-room="e2e-verses"]');
      await item.waitFor();
      assert.match(await item.textContent(), /Poetry board · 1 person/);
      await item.locator("a").click();
      await other.waitForURL(/room\.html\?room=e2e-verses&kind=board/);
      await other.waitForSelector('#poetry:not([data-words="0"])');
      assert.equal(await other.textContent("#room-kind"), "Poetry board");
    });
  });

  test("a stage room offers a screen and a controller link, both on a phone's screen", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Screen" }, { name: "Ada", ...PHONE }], async (screen, other) => {
      await joinRoom(screen, parlor.url, "e2e-party-with-a-long-name", "stage", { role: "host" });
      assert.match(
        await screen.textContent("#controller-link"),
        /room\.html\?room=e2e-party-with-a-long-name&kind=stage&role=controller$/,
      );

      await visit(other, parlor.url);
      const item = other.locator('#rooms-list li[data-room="e2e-party-with-a-long-name"]');
      await item.waitFor();
      assert.deepEqual(await item.locator("a").allTextContents(), ["Screen", "Controller"]);
      for (const link of await item.locator("a").all()) {
        const box = await link.boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= PHONE.viewport.width, `${await link.textContent()} is on screen`);
      }
      await item.locator("a", { hasText: "Controller" }).click();
      await other.waitForSelector(".pad");
      const joined = await waitForFrame(other, (m) => m.type === "room_joined");
      assert.equal(joined.members.find((m) => m.session === joined.you).role, "controller");
    });
  });
});
