// What a new user tripped over, each fixed with a test that failed before
// the fix: the lobby on a phone, unknown paths, emoji names, a tic-tac-toe
// board whose rows kept their size, buttons pressed twice.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { PHONE, instrument, joinRoom, useServer, visit, waitForFrame, withPages } from "./helpers.mjs";

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

  test("your own join link in another tab says so and takes no seat", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Host" }], async (host) => {
      await visit(host, parlor.url);
      await host.click('[data-create="tictactoe"]');
      await host.waitForSelector("#private", { state: "visible" });
      const link = await host.inputValue("#private-join-link");
      const other = instrument(await host.context().newPage());
      try {
        await other.goto(link);
        await other.waitForSelector('#status[data-state="gone"]');
        assert.match(await other.textContent("#detail"), /your own game/);
        assert.equal(other.wsFrames.some((f) => f.dir === "out" && f.msg.type === "join_game"), false);
        assert.deepEqual(other.errors, []);
      } finally {
        await other.close();
      }
      // The seat is still free for the friend.
      assert.ok(await host.isVisible("#private"));
      assert.equal(host.wsFrames.some((f) => f.msg.type === "game_start"), false);
    });
  });

  test("a live game you do not sit in is offered to watch; an ended one says so; a finished game stops saying playing", async (t) => {
    const people = [{ name: "Player" }, { name: "Passer-by" }, { name: "Late" }];
    await withPages(parlor.browser, t, people, async (player, passer, late) => {
      await visit(player, parlor.url);
      await player.click('[data-bot="tictactoe"]');
      await player.waitForSelector('#board[data-status="playing"]');
      const id = new URL(player.url()).searchParams.get("game");
      assert.equal(await player.textContent("#game-mode"), "Playing");
      assert.ok(await player.isVisible("#share"));

      await visit(passer, parlor.url, `play.html?game=${id}`);
      await passer.waitForSelector("#watch-instead", { state: "visible" });
      assert.doesNotMatch(await passer.textContent("#detail"), /over|ended/);
      await passer.click("#watch-instead");
      await passer.waitForSelector('#board[data-status="playing"]');
      assert.equal(await passer.textContent("#game-mode"), "Watching");

      // The player resigns: both pages stop saying the game is on.
      await player.click("#resign");
      await player.click("#resign");
      for (const page of [player, passer]) {
        await page.waitForSelector('#status[data-state="over"]');
        assert.equal(await page.textContent("#game-mode"), "Game over");
        assert.equal(await page.isVisible("#share"), false, "no watch link for a finished game");
      }
      await visit(late, parlor.url, `play.html?game=${id}`);
      await late.waitForFunction(() => /has ended/.test(document.querySelector("#detail").textContent));
      assert.equal(await late.isVisible("#watch-instead"), false);
    });
  });

  test("a room page for a bad name or the wrong kind shows only the error and the way back", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Owner" }, { name: "Lost" }], async (owner, lost) => {
      await visit(lost, parlor.url, "room.html?room=no%20spaces!&kind=chat");
      await lost.waitForSelector("#room-gone", { state: "visible" });
      assert.match(await lost.textContent("#room-gone-text"), /names no valid room/);
      assert.equal(await lost.isVisible(".room-body"), false);
      assert.equal(await lost.isVisible("#invite"), false);

      await joinRoom(owner, parlor.url, "kinds-1", "chat");
      await visit(lost, parlor.url, "room.html?room=kinds-1&kind=canvas");
      await lost.waitForSelector("#room-gone", { state: "visible" });
      assert.match(await lost.textContent("#room-gone-text"), /is a chat room, not a canvas/);
      assert.equal(await lost.isVisible(".room-body"), false);
      await lost.click("#back-home");
      await lost.waitForSelector('#connection[data-state="open"]');
      assert.equal(new URL(lost.url()).pathname, "/");
    });
  });

  for (const [width, height] of [[844, 390], [390, 844]]) {
    test(`the stage controller fits a ${width}×${height} phone without scrolling`, async (t) => {
      const phone = { ...PHONE, viewport: { width, height } };
      await withPages(parlor.browser, t, [phone], async (page) => {
        await visit(page, parlor.url, "room.html?room=tv-fit&kind=stage&role=controller");
        await page.waitForSelector("#pad-view", { state: "visible" });
        const [scrollHeight, scrollWidth] = await page.evaluate(
          () => [document.scrollingElement.scrollHeight, document.scrollingElement.scrollWidth]);
        assert.ok(scrollHeight <= height && scrollWidth <= width, `page is ${scrollWidth}×${scrollHeight}`);
        for (const button of await page.locator(".pad-btn").all()) {
          const box = await button.boundingBox();
          assert.ok(box.y >= 0 && box.y + box.height <= height && box.x + box.width <= width,
            `${await button.getAttribute("data-button")} at ${JSON.stringify(box)}`);
        }
      });
    });
  }

  test("a zombie that reaches you catches you: a flash and a count", async (t) => {
    await withPages(parlor.browser, t, [{ name: "Prey" }], async (page) => {
      await joinRoom(page, parlor.url, "zombie-catch", "canvas", { zombies: 20 });
      assert.equal(await page.isVisible("#caught"), false);
      const box = await page.locator("#canvas").boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      // Twenty zombies drift at 120 units a second; the nearest arrives soon.
      await page.waitForSelector("#caught", { state: "visible", timeout: 20000 });
      assert.match(await page.textContent("#caught"), /^Caught \d+ times?!/);
      assert.ok(Number(await page.getAttribute("#canvas", "data-catches")) >= 1);
      const flashed = await page.$eval(".player-dot.me", (dot) => dot.classList.contains("caught"));
      assert.ok(flashed, "your square flashes");
    });
  });

  test("a name is up to 32 characters as a person counts them: a family emoji is one", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      const family = "👨‍👩‍👧‍👦";
      const longest = family + "x".repeat(31);
      assert.equal(await page.getAttribute("#name-input", "maxlength"), null, "no UTF-16 limit on the input");
      await page.fill("#name-input", longest);
      await page.click('#name-form button[type="submit"]');
      const profile = await waitForFrame(page, (m) => m.type === "profile");
      assert.equal(profile.name, longest);
      await page.waitForFunction((want) => document.querySelector("#my-name").textContent === want, longest);
      for (const bad of [longest + "y", "Eve\u202Eevil"]) {
        const before = page.wsFrames.length;
        await page.fill("#name-input", bad);
        await page.click('#name-form button[type="submit"]');
        const err = await waitForFrame(page, (m) => m.type === "error", { after: before });
        assert.equal(err.code, "name_invalid", bad);
        await page.waitForSelector('#error[data-code="name_invalid"]', { state: "visible" });
      }
      assert.equal(await page.textContent("#my-name"), longest);
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

describe("errors in plain words", { timeout: 60000 }, () => {
  const parlor = useServer({ PARLOR_GAMES__MAX_PER_SESSION: "1" });

  test("every error code has friendly words, and no raw server text is shown", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      const codes = ["bad_json", "unknown_type", "bad_request", "rate_limited", "unsupported", "not_found",
        "not_a_player", "game_over", "not_your_turn", "illegal_move", "already_queued", "room_full",
        "too_many_rooms", "not_in_room", "name_invalid", "too_many_games", "unauthorized", "unavailable", "internal"];
      const [words, fallback] = await page.evaluate(async (all) => {
        const { friendlyError } = await import("/client.js");
        return [
          all.map((code) => friendlyError({ code, ref: "x", message: "raw server text" })),
          friendlyError({ code: "no_such_code", ref: "x", message: "raw server text" }),
        ];
      }, codes);
      for (const [i, text] of words.entries()) {
        assert.ok(text.length > 10 && !text.includes("raw server text") && !text.includes("_"), `${codes[i]}: ${text}`);
        assert.notEqual(text, fallback, `${codes[i]} has words of its own`);
      }
      // A name that breaks the rule, shown by the name field in words.
      await page.fill("#name-input", "x".repeat(40));
      await page.click('#name-form button[type="submit"]');
      await page.waitForSelector('#error[data-code="name_invalid"]', { state: "visible" });
      assert.match(await page.textContent("#error"), /^Names are 1 to 32 characters/);
    });
  });

  test("a game button's error shows on its own card", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      // One game at most: a private game waits; a second request is refused.
      await page.click('[data-create="tictactoe"]');
      await page.waitForSelector("#private", { state: "visible" });
      await page.evaluate(() => {
        // The lobby locks its buttons while the game waits; a second tab's
        // stale page would not be locked.
        for (const button of document.querySelectorAll("[data-bot]")) button.disabled = false;
      });
      await page.click('[data-bot="connect4"]');
      const card = page.locator('.game-card[data-game="connect4"] .card-error');
      await card.waitFor({ state: "visible" });
      assert.match(await card.textContent(), /as many games as you may be/);
      assert.equal(await page.isVisible("#error"), false, "not in the name card");
    });
  });
});
