// What a new user tripped over, each fixed with a test that failed before
// the fix: the lobby on a phone, unknown paths, emoji names, a tic-tac-toe
// board whose rows kept their size, buttons pressed twice.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { PHONE, useServer, visit, waitForFrame, withPages } from "./helpers.mjs";

describe("a newcomer's first steps", { timeout: 90000 }, () => {
  const parlor = useServer({ PARLOR_GAMES__BOT_DELAY_MS: "0" });

  test("on a phone the lobby's first screen has the play buttons", async (t) => {
    const phone = { ...PHONE, viewport: { width: 390, height: 844 } };
    await withPages(parlor.browser, t, [phone], async (page) => {
      await visit(page, parlor.url);
      for (const button of ['[data-find="tictactoe"]', '[data-bot="tictactoe"]']) {
        const box = await page.locator(button).boundingBox();
        assert.ok(box && box.y + box.height <= 844, `${button} ends at ${box && box.y + box.height}px`);
      }
    });
  });

  test("an unknown path gets a small page with a way home", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      const response = await page.goto(new URL("no/such/page", parlor.url).href);
      assert.equal(response.status(), 404);
      // Chromium logs the document's own 404; nothing else may fail.
      page.errors = page.errors.filter((err) => !/status of 404/.test(err));
      assert.equal(await page.locator('link[rel="stylesheet"]').count(), 1);
      const styled = await page.$eval("#home", (el) => getComputedStyle(el).borderRadius);
      assert.notEqual(styled, "0px", "the page has its style sheet");
      assert.match(await page.textContent("h1"), /no page here/);
      await page.click("#home");
      await page.waitForSelector('#connection[data-state="open"]');
      assert.equal(new URL(page.url()).pathname, "/");
    });
  });

  test("names fall back to emoji fonts", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada 👩‍👩‍👧" }], async (page) => {
      await visit(page, parlor.url);
      await page.waitForFunction(() => document.querySelector("#my-name").textContent.includes("👩"));
      const fonts = await page.$eval("#my-name", (el) => getComputedStyle(el).fontFamily);
      assert.match(fonts, /Noto Color Emoji/);
      assert.match(fonts, /Apple Color Emoji/);
    });
  });

  test("tic-tac-toe rows keep their height as marks arrive", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }], async (page) => {
      await visit(page, parlor.url);
      await page.click('[data-bot="tictactoe"]');
      await page.waitForSelector('#board[data-status="playing"]');
      const rows = () => page.$$eval('[data-cell="0"], [data-cell="3"], [data-cell="6"]',
        (cells) => cells.map((cell) => Math.round(cell.getBoundingClientRect().height)));
      const empty = await rows();
      await page.click('[data-cell="0"]:not([disabled])');
      await page.waitForSelector('#board[data-moves="2"]');
      const marked = await rows();
      assert.deepEqual(marked, empty, "row heights before and after the first marks");
      assert.equal(new Set(marked).size, 1, `rows differ: ${marked}`);
    });
  });

  for (const [button, type] of [
    ['[data-find="match3"]', "find_game"],
    ['[data-create="tictactoe"]', "create_game"],
    ['[data-find="connect4"]', "find_game"],
    ['[data-bot="connect4"]', "play_bot"],
  ]) {
    test(`a double click on ${button} sends one ${type}`, async (t) => {
      await withPages(parlor.browser, t, [{}], async (page) => {
        await visit(page, parlor.url);
        await page.dblclick(button);
        await waitForFrame(page, (m) => m.type !== "error" && m.id !== undefined && m.type !== "welcome");
        await page.waitForTimeout(300);
        const sent = page.wsFrames.filter((f) => f.dir === "out" && f.msg.type === type);
        assert.equal(sent.length, 1, `${type} sent ${sent.length} times`);
        const errors = page.wsFrames.filter((f) => f.dir === "in" && f.msg.type === "error");
        assert.deepEqual(errors, []);
      });
    });
  }
});
