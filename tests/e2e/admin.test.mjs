// The operators' page (`/admin`) against the real server: it asks for the
// token, shows the live figures as charts, lists a session that appears,
// kicks it (after asking), and the session is gone; and it fits a phone.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { PHONE, useServer, visit, waitForFrame, withPages } from "./helpers.mjs";

const TOKEN = "e2e-operators-7d2a";

describe("operators' page", { timeout: 60000 }, () => {
  const parlor = useServer({ PARLOR_ADMIN__TOKEN: TOKEN });

  async function signIn(page, token = TOKEN) {
    await page.goto(new URL("admin", parlor.url).href);
    await page.waitForSelector("#login", { state: "visible" });
    await page.fill("#token", token);
    await page.click('#login button[type="submit"]');
  }

  test("a wrong token is refused and asked again", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      await signIn(page, "not-the-token");
      await page.waitForSelector("#login-error", { state: "visible" });
      assert.match(await page.textContent("#login-error"), /not accepted/);
      assert.equal(await page.isVisible("#panel"), false);
      // Chromium logs the refused request itself.
      page.errors = page.errors.filter((err) => !/status of 401/.test(err));
    });
  });

  test("an operator sees a session appear, kicks it, and it is gone", async (t) => {
    await withPages(parlor.browser, t, [{ viewport: { width: 1280, height: 800 } }, { name: "Mallory" }], async (admin, mallory) => {
      await signIn(admin);
      await admin.waitForSelector("#panel", { state: "visible" });
      await visit(mallory, parlor.url);
      const welcome = await waitForFrame(mallory, (m) => m.type === "welcome");
      const row = admin.locator(`#sessions [data-session="${welcome.session}"]`);
      await row.waitFor({ timeout: 5000 });
      assert.match(await row.textContent(), /Mallory/);
      // The figures are charts drawn by the page, updated as it goes.
      // (sampled every 2 s: Mallory counts from the next sample on).
      await admin.waitForFunction(() =>
        document.querySelector('[data-figure="sessions"] polyline').getAttribute("points").length > 0
        && Number(document.querySelector('[data-figure="sessions"] .figure-now').textContent) >= 1,
      null, { timeout: 6000 });

      admin.once("dialog", (dialog) => dialog.accept());
      await row.locator("button", { hasText: "Kick" }).click();
      await row.waitFor({ state: "detached", timeout: 5000 });
      // Mallory's page was closed with 4003 and came back as someone new.
      await waitForFrame(mallory, (m) => m.type === "welcome" && m.session !== welcome.session, { timeout: 15000 });
      mallory.errors = mallory.errors.filter((err) => !/WebSocket/.test(err));
    });
  });

  test("the page fits a 390 px phone", async (t) => {
    await withPages(parlor.browser, t, [{ ...PHONE, viewport: { width: 390, height: 844 } }], async (page) => {
      await signIn(page);
      await page.waitForSelector("#panel", { state: "visible" });
      const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
      assert.ok(width <= 390, `the page is ${width} px wide`);
    });
  });
});

describe("operators' page without a token", { timeout: 30000 }, () => {
  const parlor = useServer();

  test("is not there", async (t) => {
    await withPages(parlor.browser, t, [{}], async (page) => {
      const response = await page.goto(new URL("admin", parlor.url).href);
      assert.equal(response.status(), 404);
      page.errors = page.errors.filter((err) => !/status of 404/.test(err));
    });
  });
});
