// Playing the computer from the browser: the lobby's "Play the computer"
// with a level, a person beating the easy bot, the hard bot never losing
// at tic-tac-toe, and a lonely quick match offered the computer.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { useServer, visit, withPages } from "./helpers.mjs";

const LINES = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];

/** The marks on the page's tic-tac-toe board, `null` for empty cells. */
async function marks(page) {
  return page.$$eval("[data-cell]", (cells) => cells.map((cell) => cell.dataset.mark || null));
}

function hasLine(board, mark) {
  return LINES.some((line) => line.every((c) => board[c] === mark));
}

/** The value of `board` for `mark`, to move, with perfect play by both. */
function value(board, mark) {
  const other = mark === "X" ? "O" : "X";
  let best = null;
  for (let c = 0; c < 9; c += 1) {
    if (board[c]) continue;
    board[c] = mark;
    const v = hasLine(board, mark) ? 10 : -0.9 * value(board, other);
    board[c] = null;
    best = best === null ? v : Math.max(best, v);
  }
  return best ?? 0;
}

/** A perfect player's cell for `mark`. */
function perfectCell(board, mark) {
  const other = mark === "X" ? "O" : "X";
  let pick = null;
  let bestValue = -Infinity;
  for (let c = 0; c < 9; c += 1) {
    if (board[c]) continue;
    board[c] = mark;
    const v = hasLine(board, mark) ? 100 : -value(board, other);
    board[c] = null;
    if (v > bestValue) [pick, bestValue] = [c, v];
  }
  return pick;
}

/** Starts a tic-tac-toe game against the computer at `level` from the lobby. */
async function playComputer(page, url, level) {
  await visit(page, url);
  await page.selectOption('select[data-level="tictactoe"]', level);
  await page.click('[data-bot="tictactoe"]');
  await page.waitForURL(/\/play\.html\?game=/);
  await page.waitForSelector('#board[data-status="playing"]');
  await page.waitForSelector('#connection[data-state="open"]');
}

/** Plays the page's side with `choose(board)` until the game is over; the status text. */
async function playOut(page, choose) {
  for (;;) {
    const state = await page.waitForSelector('#status[data-state="mine"], #status[data-state="over"]')
      .then((el) => el.getAttribute("data-state"));
    if (state === "over") return page.textContent("#status");
    const cell = choose(await marks(page));
    const moves = Number(await page.getAttribute("#board", "data-moves"));
    await page.click(`[data-cell="${cell}"]:not([disabled])`);
    await page.waitForSelector(`#board[data-moves="${moves + 1}"]`);
  }
}

describe("playing the computer", { timeout: 120000 }, () => {
  const parlor = useServer({ PARLOR_GAMES__BOT_DELAY_MS: "150" });

  test("a person beats the easy computer, shown as the computer", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }], async (page) => {
      for (let attempt = 0; attempt < 15; attempt += 1) {
        await playComputer(page, parlor.url, "easy");
        const bot = page.locator(".player", { hasText: "Parlor bot (easy)" });
        await bot.locator(".bot-tag").waitFor();
        const status = await playOut(page, (board) => perfectCell(board, "X"));
        assert.notEqual(status, "O wins", "a perfect player never loses");
        if (status === "X wins") return;
      }
      assert.fail("a perfect player never beat the easy computer in 15 games");
    });
  });

  test("the hard computer never loses at tic-tac-toe", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Grace" }], async (page) => {
      for (let game = 0; game < 3; game += 1) {
        await playComputer(page, parlor.url, "hard");
        let n = game;
        const status = await playOut(page, (board) => {
          const free = board.flatMap((mark, c) => (mark ? [] : [c]));
          n += 3;
          return free[n % free.length];
        });
        assert.notEqual(status, "X wins", "the hard computer lost");
      }
    });
  });

  test("a quick match alone for ten seconds is offered the computer", { timeout: 40000 }, async (t) => {
    await withPages(parlor.browser, t, [{ name: "Night owl" }], async (page) => {
      await visit(page, parlor.url);
      await page.click('[data-find="connect4"]');
      const offer = page.locator('[data-bot-instead="connect4"]');
      await page.waitForSelector('.game-card[data-game="connect4"] .queue-box', { state: "visible" });
      assert.equal(await offer.isVisible(), false, "not offered at once");
      await offer.waitFor({ state: "visible", timeout: 15000 });
      await offer.click();
      await page.waitForURL(/\/play\.html\?game=/);
      await page.waitForSelector('#board[data-status="playing"]');
      await page.locator(".player .bot-tag").waitFor();
    });
  });
});

describe("playing the computer again", { timeout: 60000 }, () => {
  const parlor = useServer({ PARLOR_GAMES__BOT_DELAY_MS: "0" });

  test("play again after a game against the computer plays it again, at the same level", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Ada" }], async (page) => {
      await playComputer(page, parlor.url, "hard");
      const first = new URL(page.url()).searchParams.get("game");
      await page.click("#resign");
      await page.click("#resign");
      await page.waitForSelector('#status[data-state="over"]');
      await page.click("#again");
      await page.waitForFunction((old) => new URL(location.href).searchParams.get("game") !== old, first);
      await page.waitForSelector('#board[data-status="playing"]');
      await page.locator(".player", { hasText: "Parlor bot (hard)" }).waitFor();
      const sent = page.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "play_bot");
      assert.equal(sent.at(-1).msg.level, "hard");
    });
  });
});
