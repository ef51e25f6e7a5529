/// <reference lib="dom" />
/**
 * `/api/docs` in a real browser (Debian's chromium, headless): after the API token is given,
 * Swagger UI lists every documented operation, loads nothing from outside the orchestrator
 * (requests to any other host are blocked and counted) and "Try it out" calls the API with
 * the token. Saves `test-output/screenshots/api-docs.png`.
 */
import assert from "node:assert/strict";
import { OPERATIONS } from "../../http/openapi_document.ts";
import { postgresBackend } from "../_harness.ts";
import { launchBrowser, SCREENSHOTS, serveOrchestrator } from "./_browser.ts";

const API_TOKEN = "docs-api-token";

Deno.test({
  name: "api docs: Swagger UI shows every operation offline and calls the API with the token",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { store, drop } = await postgresBackend.open();
    const o = await serveOrchestrator(store, {
      port: 0,
      apiToken: API_TOKEN,
      robotToken: "docs-robot-token",
    });
    const browser = await launchBrowser();
    try {
      const outside: string[] = [];
      await browser.context.route("**/*", (route) => {
        const url = route.request().url();
        if (url.startsWith(o.url + "/")) return route.continue();
        outside.push(url);
        return route.abort();
      });
      const page = await browser.context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      await page.goto(`${o.url}/api/docs`);
      await page.fill("#token", "wrong");
      await page.click("#signin-form button[type=submit]");
      await page.waitForFunction(() =>
        document.getElementById("signin-error")?.textContent?.includes("refused")
      );
      await page.fill("#token", API_TOKEN);
      await page.click("#signin-form button[type=submit]");
      await page.waitForSelector(".opblock");
      const documented = OPERATIONS.length;
      await page.waitForFunction(
        (n) => document.querySelectorAll(".opblock").length === n,
        documented,
      );
      const summaries = await page.$$eval(
        ".opblock-summary-path",
        (els) => els.map((e) => e.getAttribute("data-path")),
      );
      assert.ok(summaries.includes("/api/v1/jobs/{id}"), summaries.join(", "));
      await Deno.mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: new URL("api-docs.png", SCREENSHOTS).pathname });

      // Try it out: GET /api/v1/robots answered 200 with the token sent by the page.
      const robots = page.locator("#operations-robots-getApiV1Robots");
      await robots.locator(".opblock-summary").click();
      await robots.locator("button.try-out__btn").click();
      const answer = page.waitForResponse((r) => r.url() === `${o.url}/api/v1/robots`);
      await robots.locator("button.execute").click();
      const res = await answer;
      assert.equal(res.status(), 200);
      assert.equal(res.request().headers()["authorization"], `Bearer ${API_TOKEN}`);
      await robots.locator(".live-responses-table .response-col_status").first().waitFor();

      assert.deepEqual(outside, [], "nothing is loaded from outside the orchestrator");
      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      await o.stop();
      await store.close();
      await drop();
    }
  },
});
