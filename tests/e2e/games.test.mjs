// The game pages against the real server: quick matches played to a win,
// a private game joined by link and watched, match three, resign and play
// again. Every page must stay free of console errors.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  HTML_NAME, PHONE, dropDisc, findSwap, movesShown, playCell, quickMatch, readGems, useServer,
  visit, waitForFrame, withPages,
} from "./helpers.mjs";

describe("game pages", { timeout: 90000 }, () => {
  const parlor = useServer();

  const status = (page) => page.textContent("#status");
  const cells = (page, selector) => page.$$eval(selector, (els) => els.map((el) => Number(el.dataset.cell)));

  test("two players quick-match tic-tac-toe and X wins along a highlighted line", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (a, b) => {
      const [x, o] = await quickMatch(a, b, parlor.url, "tictactoe");
      assert.equal(await status(x), "Your turn");
      assert.equal(await status(o), "Waiting for X");

      const moves = [[x, 0], [o, 3], [x, 1], [o, 4], [x, 2]];
      for (const [i, [page, cell]] of moves.entries()) {
        await playCell(page, cell);
        await movesShown([x, o], i + 1);
      }

      for (const page of [x, o]) {
        await page.waitForSelector('#status[data-state="over"]');
        assert.equal(await status(page), "X wins");
        assert.deepEqual(await cells(page, ".cell.win"), [0, 1, 2]);
        assert.equal(await page.locator("[data-cell]:not([disabled])").count(), 0);
        assert.ok(await page.isVisible("#again"));
      }
      assert.match(await x.textContent("#detail"), /You win/);
      assert.match(await o.textContent("#detail"), /You lose/);
      assert.equal(await x.textContent('[data-cell="4"]'), "O");
    });
  });

  test("connect four: discs drop to the bottom and red wins with four in a column", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Linus" }], async (a, b) => {
      const [red, yellow] = await quickMatch(a, b, parlor.url, "connect4");
      assert.equal(await status(yellow), "Waiting for Red");

      await dropDisc(red, 0);
      await movesShown([red, yellow], 1);
      // Row 0 is the bottom: the disc lands there, with the drop animation.
      await yellow.waitForSelector('[data-column="0"] .slot[data-row="0"] .disc-red.drop');
      assert.equal(await yellow.locator(".disc").count(), 1);

      const rest = [[yellow, 1], [red, 0], [yellow, 1], [red, 0], [yellow, 1], [red, 0]];
      for (const [i, [page, column]] of rest.entries()) {
        await dropDisc(page, column);
        await movesShown([red, yellow], i + 2);
      }

      for (const page of [red, yellow]) {
        await page.waitForSelector('#status[data-state="over"]');
        assert.equal(await status(page), "Red wins");
        const line = await page.$$eval(".disc.win", (els) => els.map((el) => el.parentElement.dataset.col + el.parentElement.dataset.row));
        assert.deepEqual(line.sort(), ["00", "01", "02", "03"]);
        assert.equal(await page.locator("[data-column]:not([disabled])").count(), 0);
      }
      assert.equal(await yellow.locator('[data-column="1"] .disc-yellow').count(), 3);
    });
  });

  test("a private game is joined by its link and watched by a third person", async (t) => {
    const people = [{ name: "Ada" }, { name: HTML_NAME }, { name: "Watcher" }, {}];
    await withPages(parlor.browser, t, people, async (host, guest, watcher, late) => {
      await visit(host, parlor.url);
      await host.click('[data-create="tictactoe"]');
      await host.waitForSelector("#private", { state: "visible" });
      const joinLink = await host.inputValue("#private-join-link");
      const watchLink = await host.inputValue("#private-watch-link");
      assert.match(joinLink, /\/play\.html\?join=[A-Za-z0-9_.%-]+$/);
      assert.match(watchLink, /\/play\.html\?watch=[A-Za-z0-9_.%-]+$/);

      // Watched before anyone joined.
      await watcher.goto(watchLink);
      await watcher.waitForSelector('#status[data-state="waiting"]');
      assert.equal(await watcher.isVisible("#watching"), true);

      await guest.goto(joinLink);
      await guest.waitForURL(/play\.html\?game=/);
      await host.waitForURL(/play\.html\?game=/);
      await watcher.waitForFunction(() => document.querySelector("#status").textContent === "X to move");

      // The guest's name is text, never markup, wherever it is shown.
      const chip = watcher.locator('.player[data-seat="O"] .player-name');
      assert.equal(await chip.textContent(), HTML_NAME);
      assert.equal(await watcher.locator(".players img, .players i").count(), 0);

      const moves = [[host, 4], [guest, 0], [host, 2], [guest, 1], [host, 6]];
      for (const [i, [page, cell]] of moves.entries()) {
        await playCell(page, cell);
        await movesShown([host, guest, watcher], i + 1);
        assert.equal(await watcher.locator("[data-cell]:not([disabled])").count(), 0, "the spectator's board is read-only");
      }
      await watcher.waitForSelector('#status[data-state="over"]');
      assert.equal(await status(watcher), "X wins");
      assert.deepEqual(await cells(watcher, ".cell.win"), [2, 4, 6]);
      assert.equal(await watcher.isVisible("#resign"), false);

      // The join key was spent.
      await late.goto(joinLink);
      await late.waitForSelector('#status[data-state="gone"]');
      assert.match(await late.textContent("#detail"), /used|ended/);
    });
  });

  test("match three on a phone: a valid swap found on the board scores and cascades", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada", ...PHONE }], async (page) => {
      await visit(page, parlor.url);
      await page.click('[data-find="match3"]');
      await page.waitForURL(/play\.html\?game=/);
      await page.waitForSelector('#status[data-state="mine"]');
      assert.equal(await page.locator("[data-r][data-c]").count(), 64);
      const board = await page.locator("#board").boundingBox();
      assert.ok(board.x >= 0 && board.x + board.width <= PHONE.viewport.width, "the board fits the screen");
      assert.equal(await page.textContent("#moves-left"), "30");

      // A swap that makes no line is refused and explained, not shown as an error.
      const gems = await readGems(page);
      const dud = dudSwap(gems);
      await page.click(`[data-r="${dud.from[0]}"][data-c="${dud.from[1]}"]`);
      await page.click(`[data-r="${dud.to[0]}"][data-c="${dud.to[1]}"]`);
      const refused = await waitForFrame(page, (m) => m.type === "error");
      assert.equal(refused.code, "illegal_move");
      await page.waitForFunction(() => /no line/.test(document.querySelector("#detail").textContent));
      assert.equal(await page.isVisible("#error"), false);
      assert.deepEqual(await readGems(page), gems);

      const swap = findSwap(gems);
      await page.click(`[data-r="${swap.from[0]}"][data-c="${swap.from[1]}"]`);
      assert.equal(await page.locator(".gem-cell.selected").count(), 1);
      await page.click(`[data-r="${swap.to[0]}"][data-c="${swap.to[1]}"]`);
      const moved = await waitForFrame(page, (m) => m.type === "moved");
      assert.deepEqual([moved.move.from, moved.move.to], [swap.from, swap.to]);
      assert.ok(moved.move.steps.length >= 1);

      await movesShown([page], 1);
      assert.deepEqual(await readGems(page), moved.board);
      assert.equal(await page.textContent("#score"), String(moved.move.score));
      assert.ok(moved.move.score > 0);
      assert.equal(await page.textContent("#moves-left"), "29");
      assert.equal(await page.textContent("#status"), "Your turn");
    });
  });

  test("resigning ends the game for both, and both can play again", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }, { name: "Grace" }], async (a, b) => {
      const [x, o] = await quickMatch(a, b, parlor.url, "tictactoe");
      const firstGame = new URL(x.url()).searchParams.get("game");
      await playCell(x, 4);
      await x.click("#resign");
      assert.equal(await x.textContent("#resign"), "Really resign?");
      // The opponent's move does not take the question back.
      await playCell(o, 0);
      await movesShown([x, o], 2);
      assert.equal(await x.textContent("#resign"), "Really resign?");
      await x.click("#resign");
      for (const page of [x, o]) {
        await page.waitForSelector('#status[data-state="over"]');
        assert.equal(await status(page), "O wins — X resigned");
      }

      await o.click("#again");
      await o.waitForSelector("#again-wait", { state: "visible" });
      await x.click("#again");
      for (const page of [x, o]) {
        await page.waitForSelector('#board[data-status="playing"][data-moves="0"]');
        const game = new URL(page.url()).searchParams.get("game");
        assert.ok(game && game !== firstGame, "the page now shows the new game");
      }
      assert.equal(await o.isVisible("#again-wait"), false);
    });
  });
});

/** Two adjacent gems whose swap makes no line. */
function dudSwap(board) {
  for (let r = 0; r < 8; r += 1) {
    for (let c = 0; c < 7; c += 1) {
      const probe = { from: [r, c], to: [r, c + 1] };
      if (!makesLine(board, probe)) return probe;
    }
  }
  throw new Error("no dud swap on this board");
}

function makesLine(board, { from, to }) {
  const b = board.map((row) => [...row]);
  [b[from[0]][from[1]], b[to[0]][to[1]]] = [b[to[0]][to[1]], b[from[0]][from[1]]];
  const run = (r, c, dr, dc) => {
    let n = 0;
    for (let y = r + dr, x = c + dc; y >= 0 && y < 8 && x >= 0 && x < 8 && b[y][x] === b[r][c]; y += dr, x += dc) n += 1;
    return n;
  };
  return [from, to].some(([r, c]) => run(r, c, 0, 1) + run(r, c, 0, -1) >= 2 || run(r, c, 1, 0) + run(r, c, -1, 0) >= 2);
}
