// The landing page against the real server: connecting, the profile card,
// changing your name, and a page that stays free of console errors.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { hexToRgb, startServer, useServer, visit, waitForFrame, withPages } from "./helpers.mjs";

describe("lobby page", { timeout: 60000 }, () => {
  const parlor = useServer();

  async function setName(page, name) {
    await page.fill("#name-input", name);
    await page.click('#name-form button[type="submit"]');
  }

  test("connects and shows the welcome name and colour", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      const welcome = await waitForFrame(page, (m) => m.type === "welcome");

      assert.equal(await page.textContent("#my-name"), welcome.name);
      assert.notEqual(welcome.name.trim(), "");
      const bg = await page.$eval("#my-color", (el) => getComputedStyle(el).backgroundColor);
      assert.equal(bg, hexToRgb(welcome.color));
      assert.equal(await page.isVisible("#error"), false);
    });
  });

  test("a new name is shown and survives a reload", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      await setName(page, "Ada Lovelace");
      const profile = await waitForFrame(page, (m) => m.type === "profile");
      assert.equal(profile.name, "Ada Lovelace");
      await page.waitForFunction(() => document.querySelector("#my-name").textContent === "Ada Lovelace");

      const before = page.wsFrames.length;
      await page.reload();
      await page.waitForSelector('#connection[data-state="open"]');
      const welcome = await waitForFrame(page, (m) => m.type === "welcome", { after: before });

      assert.match(page.sockets.at(-1), /[?&]name=Ada%20Lovelace(&|$)/);
      assert.equal(welcome.name, "Ada Lovelace");
      assert.equal(await page.textContent("#my-name"), "Ada Lovelace");
      assert.equal(await page.isVisible("#error"), false, "a resume answer is handled quietly");

      // A new tab has no resume token (sessionStorage), only the stored name.
      const tab = await page.context().newPage();
      const urls = [];
      tab.on("websocket", (ws) => urls.push(ws.url()));
      await visit(tab, parlor.url);
      assert.doesNotMatch(urls.at(-1), /resume=/);
      assert.equal(await tab.textContent("#my-name"), "Ada Lovelace");
    });
  });

  test("an unknown resume token gets a fresh session quietly", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      await page.evaluate(() => sessionStorage.setItem("parlor.resume", "no-such-token"));
      const before = page.wsFrames.length;
      await page.reload();
      await page.waitForSelector('#connection[data-state="open"]');

      const err = await waitForFrame(page, (m) => m.type === "error", { after: before });
      assert.deepEqual([err.code, err.ref], ["not_found", "resume"]);
      const welcome = await waitForFrame(page, (m) => m.type === "welcome", { after: before });
      assert.notEqual(await page.evaluate(() => sessionStorage.getItem("parlor.resume")), "no-such-token");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("parlor.resume")), welcome.resume);
      assert.equal(await page.isVisible("#error"), false);
      assert.deepEqual(page.errors, []);
    });
  });

  test("a name with HTML in it is shown as literal text", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      await setName(page, "<b>x</b>");
      await waitForFrame(page, (m) => m.type === "profile");

      await page.waitForFunction(() => document.querySelector("#my-name").textContent === "<b>x</b>");
      assert.equal(await page.locator("#my-name b").count(), 0);
      assert.equal(await page.innerHTML("#my-name"), "&lt;b&gt;x&lt;/b&gt;");
    });
  });

  test("a 40-character name shows the name_invalid error", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      const shown = await page.textContent("#my-name");
      await setName(page, "x".repeat(40));

      const err = await waitForFrame(page, (m) => m.type === "error");
      assert.equal(err.code, "name_invalid");
      assert.equal(err.ref, "set_name");
      await page.waitForSelector('#error[data-code="name_invalid"]', { state: "visible" });
      assert.notEqual((await page.textContent("#error")).trim(), "");
      assert.equal(await page.textContent("#my-name"), shown);
    });
  });

  test("requests carry increasing ids that replies echo", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      await setName(page, "First");
      const first = await waitForFrame(page, (m) => m.type === "profile" && m.name === "First");
      await setName(page, "Second");
      const second = await waitForFrame(page, (m) => m.type === "profile" && m.name === "Second");

      const sent = page.wsFrames.filter((f) => f.dir === "out" && f.msg.type === "set_name").map((f) => f.msg.id);
      assert.deepEqual([first.id, second.id], sent);
      assert.ok(sent[1] > sent[0]);
    });
  });

  test("the page logs no console errors", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await visit(page, parlor.url);
      await setName(page, "Grace");
      await page.waitForFunction(() => document.querySelector("#my-name").textContent === "Grace");
      await setName(page, "");
      await page.waitForSelector('#error[data-code="name_invalid"]', { state: "visible" });
      await page.reload();
      await page.waitForSelector('#connection[data-state="open"]');
      await page.waitForFunction(() => document.querySelector("#my-name").textContent === "Grace");

      assert.deepEqual(page.errors, []);
    });
  });

  test("the indicator shows reconnecting when the server goes away", async (t) => {
    const own = await startServer();
    try {
      await withPages(parlor.browser, t, [{}], async (page) => {
        await visit(page, own.url);
        await own.stop();
        await page.waitForSelector('#connection[data-state="reconnecting"]');
        assert.match(await page.textContent("#connection"), /Reconnecting/);
        // Retries against the stopped server are logged by the browser; nothing else may be.
        page.errors = page.errors.filter((err) => !/WebSocket connection to .* failed/.test(err));
      });
    } finally {
      await own.stop();
    }
  });

  for (const [width, height] of [[390, 844], [1280, 800]]) {
    test(`fits a ${width}px wide screen`, async (t) => {
      await withPages(parlor.browser, t, [{ viewport: { width, height } }], async (page) => {
        await visit(page, parlor.url);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
        for (const id of ["connection", "my-name", "my-color", "name-input"]) {
          assert.ok(await page.isVisible(`#${id}`), `#${id} is visible`);
        }
      });
    });
  }
});
