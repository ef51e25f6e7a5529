// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/// <reference lib="dom" />
/**
 * The operator's dashboard in a real browser (Debian's chromium, headless, driven by
 * playwright-core) against a real orchestrator on PostgreSQL with real robots: what a person
 * sees on each panel, live, and the lost-connection banner when the orchestrator restarts.
 * Saves a screenshot of each panel under `test-output/screenshots/`.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { RobotClient } from "../../robot/robot_client.ts";
import { postgresBackend } from "../_harness.ts";
import { workflowExpectations, WORKFLOWS_DIR } from "../workflow_expectations.ts";
import {
  launchBrowser,
  SCREENSHOTS,
  type ServedOrchestrator,
  serveOrchestrator,
} from "./_browser.ts";

const API_TOKEN = "browser-api-token";
const ROBOT_TOKEN = "browser-robot-token";
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };
/** A job that runs until it is cancelled (10 minutes of WaitNode). */
const LONG_WORKFLOW = {
  metadata: { name: "Long wait" },
  nodes: { wait: { node_id: "wait", node_type: "WaitNode", config: { duration_ms: 600_000 } } },
  connections: [],
};

async function workflow(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(new URL(file, WORKFLOWS_DIR)));
}

async function api(o: ServedOrchestrator, method: string, path: string, body?: unknown) {
  const res = await fetch(o.url + path, {
    method,
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Resolves with the job once the orchestrator's read model shows one of `statuses`. */
function jobReaches(o: ServedOrchestrator, jobId: string, statuses: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(30_000);
    const check = () => {
      const view = o.orchestrator.jobs.view(jobId);
      if (view && statuses.includes(view.status)) {
        off();
        resolve(view);
      }
    };
    const off = o.orchestrator.core.onEvents(check);
    signal.addEventListener("abort", () => {
      off();
      reject(
        new Error(`job ${jobId} is ${o.orchestrator.jobs.view(jobId)?.status}, not ${statuses}`),
      );
    });
    check();
  });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, SCREENSHOTS).pathname, fullPage: true });
}

function robot(o: ServedOrchestrator, name: string, slots = 2): RobotClient {
  return new RobotClient({
    url: `ws://127.0.0.1:${o.port}/ws/robot`,
    token: ROBOT_TOKEN,
    name,
    maxConcurrentJobs: slots,
    logger: quietLogger,
  });
}

Deno.test({
  name: "dashboard: every panel shows the orchestrator's state live in a real browser",
  // playwright keeps its pipe to the browser process open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const { store, reopen, drop } = await postgresBackend.open();
    let o = await serveOrchestrator(store, {
      port: 0,
      apiToken: API_TOKEN,
      robotToken: ROBOT_TOKEN,
    });
    let currentStore = store;
    const robots = [robot(o, "robot-1"), robot(o, "robot-2")];
    const browser = await launchBrowser();
    try {
      await Promise.all(robots.map((r) => r.start()));
      // Work done before the page opens: two completed jobs, one that no robot can take.
      const sample = await workflow("stress_task_6.json");
      const done: string[] = [];
      for (let i = 0; i < 2; i++) {
        done.push((await api(o, "POST", "/api/v1/jobs", { workflow: sample })).body.job_id);
      }
      await Promise.all(done.map((id) => jobReaches(o, id, ["completed"])));
      const waiting = await api(o, "POST", "/api/v1/jobs", {
        workflow: sample,
        required_capabilities: ["gpu"],
      });
      assert.equal(waiting.status, 201);

      const page = await browser.context.newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (e) => pageErrors.push(String(e)));

      await t.step("sign in with the API token (a wrong one is refused)", async () => {
        await page.goto(o.url + "/");
        await page.fill("#token", "wrong");
        await page.click("#signin-form button[type=submit]");
        await page.waitForSelector("#signin-error:has-text('not accepted')");
        await page.fill("#token", API_TOKEN);
        await page.click("#signin-form button[type=submit]");
        await page.waitForSelector("#live[data-state=live]");
        assert.equal(await page.evaluate(() => sessionStorage.length), 1);
        // Marks this page load: a reload would lose it.
        await page.evaluate(() => ((globalThis as any).__sameLoad = true));
      });

      await t.step("dashboard: the KPI cards show the API's numbers", async () => {
        const expected = (await api(o, "GET", "/api/v1/metrics/dashboard")).body;
        assert.equal(expected.online_robots, 2);
        assert.equal(expected.completed_jobs_today, 2);
        assert.equal(expected.pending_jobs, 1);
        await page.waitForFunction(
          (want) => {
            const cards = [...document.querySelectorAll("[data-kpi]")] as HTMLElement[];
            return cards.length === 10 &&
              cards.every((c) => Number(c.dataset.value) === want[c.dataset.kpi!]);
          },
          expected,
          { timeout: 15_000 },
        );
        const text = async (k: string) => (await page.textContent(`[data-kpi=${k}]`))!.trim();
        assert.equal(await text("online_robots"), "2");
        assert.equal(await text("completed_jobs_today"), "2");
        assert.equal(await text("pending_jobs"), "1");
        assert.equal(await text("success_rate"), "100.0 %");
        const activity = await page.textContent(".activity");
        assert.match(activity!, /Job [0-9a-f]{8} completed in/);
        assert.match(activity!, /Robot robot-\d released job [0-9a-f]{8}/);
        await screenshot(page, "dashboard");
      });

      await t.step(
        "jobs: a job submitted from the UI runs and its row turns completed without a reload",
        async () => {
          await page.click("a[data-panel=jobs]");
          await page.waitForSelector("table[aria-label=Jobs] tbody tr[data-job-id]");
          await page.click("#submit-job-open");
          await page.fill("#submit-workflow", JSON.stringify(sample));
          await page.fill("#submit-variables", '{"who": "browser"}');
          await page.selectOption("#submit-priority", "high");
          await page.click("#submit-send");
          await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
          const jobId = page.url().split("/").at(-1)!;
          const row = `tr[data-job-id="${jobId}"]`;
          await page.waitForSelector(`${row}[data-status=completed]`, { timeout: 20_000 });
          assert.equal(await page.evaluate(() => (globalThis as any).__sameLoad), true);
          const job = (await api(o, "GET", `/api/v1/jobs/${jobId}`)).body;
          assert.equal(job.status, "completed");
          assert.equal(job.priority, "high");
          assert.deepEqual(job.variables, { who: "browser" });
          // The details follow too: logs, variables and the event timeline from the log.
          await page.waitForSelector(`section.details[data-status=completed]`);
          const details = (await page.textContent("section.details"))!;
          const expectation = workflowExpectations.find((w) => w.file === "stress_task_6.json")!;
          for (const line of expectation.logIncludes) {
            assert.ok(details.includes(line), `details show log line ${line}`);
          }
          assert.match(details, /Found number greater than 20: 25/);
          assert.match(details, /"who": "browser"/);
          const timeline = await page.$$eval(
            ".timeline li",
            (li) => li.map((x) => (x as HTMLElement).dataset.type),
          );
          const events = (await api(o, "GET", `/api/v1/jobs/${jobId}/events`)).body.events;
          assert.deepEqual(timeline, events.map((e: any) => e.type));
          await screenshot(page, "jobs");
        },
      );

      await t.step("jobs: cancel from the UI cancels a running job", async () => {
        const res = await api(o, "POST", "/api/v1/jobs", { workflow: LONG_WORKFLOW });
        const jobId = res.body.job_id;
        await jobReaches(o, jobId, ["running"]);
        await page.goto(`${o.url}/#/jobs/${jobId}`);
        await page.waitForSelector(`section.details[data-status=running] #job-cancel`);
        await page.click("#job-cancel");
        await page.waitForSelector(`section.details[data-status=cancelled]`, { timeout: 20_000 });
        await page.waitForSelector(`tr[data-job-id="${jobId}"][data-status=cancelled]`);
        assert.equal((await api(o, "GET", `/api/v1/jobs/${jobId}`)).body.status, "cancelled");
        assert.equal(await page.isVisible("#job-retry"), true);
        // Retry runs it again as a new job, shown at once.
        await page.click("#job-retry");
        await page.waitForURL((url) =>
          !url.hash.endsWith(jobId) && /#\/jobs\/[0-9a-f-]{36}$/.test(url.hash)
        );
        const retried = page.url().split("/").at(-1)!;
        await page.waitForSelector(
          `section.details[data-job-id="${retried}"][data-status=running]`,
          { timeout: 20_000 },
        );
        assert.equal(
          (await api(o, "GET", `/api/v1/jobs/${retried}`)).body.workflow_name,
          "Long wait",
        );
        await page.click("#job-cancel");
        await page.waitForSelector(
          `section.details[data-job-id="${retried}"][data-status=cancelled]`,
          { timeout: 20_000 },
        );
        await page.evaluate(() => ((globalThis as any).__sameLoad = true));
      });

      await t.step("jobs: the status filter and the search narrow the table", async () => {
        await page.selectOption("#job-status", "completed");
        await page.waitForFunction(() =>
          [...document.querySelectorAll("tbody tr[data-job-id]")].every((r) =>
            (r as HTMLElement).dataset.status === "completed"
          ) && document.querySelectorAll("tbody tr[data-job-id]").length === 3
        );
        await page.fill("#job-search", done[0].slice(0, 8));
        await page.waitForFunction(() =>
          document.querySelectorAll("tbody tr[data-job-id]").length === 1
        );
        assert.equal(await page.getAttribute("tbody tr[data-job-id]", "data-job-id"), done[0]);
        // The filter and the search stay while jobs are opened; cleared here for what follows.
        await page.click(`tbody tr[data-job-id="${done[0]}"] a`);
        await page.waitForSelector(`section.details[data-job-id="${done[0]}"]`);
        assert.equal(await page.inputValue("#job-status"), "completed");
        await page.fill("#job-search", "");
        await page.selectOption("#job-status", "");
        // The robot filter asks the API for that robot's jobs.
        await page.selectOption("#job-robot", robots[1].robotId);
        const ofRobot =
          (await api(o, "GET", `/api/v1/jobs?robot_id=${robots[1].robotId}`)).body.jobs;
        await page.waitForFunction(
          (ids) =>
            [...document.querySelectorAll("tbody tr[data-job-id]")].map((r) =>
              (r as HTMLElement).dataset.jobId
            ).join() === ids.join(),
          ofRobot.map((j: any) => j.job_id),
        );
        await page.selectOption("#job-robot", "");
      });

      await t.step("metrics: the charts have data points for the chosen range", async () => {
        await page.click("a[data-panel=metrics]");
        await page.waitForSelector(".charts[data-loaded=true]");
        const points = await page.$$eval(
          "figure.chart",
          (f) => f.map((x) => Number((x as HTMLElement).dataset.points)),
        );
        assert.equal(points.length, 4);
        assert.ok(points.every((n) => n > 0), `every chart has points: ${points}`);
        assert.equal(await page.locator("figure.chart canvas").count(), 4);
        const summary = (await page.textContent(".toolbar .muted"))!;
        assert.match(summary, /6 submitted, 3 completed, 0 failed, 2 cancelled/);
        await screenshot(page, "metrics");
        await page.selectOption("#metrics-range", "24h");
        await page.waitForFunction(() =>
          /one point per 360 s/.test(document.querySelector(".toolbar .muted")!.textContent!)
        );
      });

      await t.step(
        "robots: status, load and heartbeat age; pause and resume from the UI",
        async () => {
          await page.click("a[data-panel=robots]");
          await page.waitForSelector("tr[data-robot-id] td.hb");
          const ids = robots.map((r) => r.robotId);
          assert.equal(await page.locator("tr[data-robot-id]").count(), 2);
          const row = `tr[data-robot-id="${ids[1]}"]`;
          assert.match((await page.textContent(`${row} td.hb`))!, /^\d+ s ago$/);
          await page.click(`${row} button:has-text("Pause")`);
          await page.waitForSelector(`${row} [data-status=paused]`);
          assert.equal((await api(o, "GET", `/api/v1/robots/${ids[1]}`)).body.status, "paused");
          await page.click(`${row} button:has-text("Resume")`);
          await page.waitForSelector(`${row} button:has-text("Pause")`);
          assert.notEqual((await api(o, "GET", `/api/v1/robots/${ids[1]}`)).body.status, "paused");
          await page.click(`${row} th button`);
          await page.waitForSelector("section.details:has-text('Robot log')");
          await screenshot(page, "robots");
        },
      );

      await t.step(
        "schedules: next runs in the viewer's and the schedule's zone; pause",
        async () => {
          const created = await api(o, "POST", "/api/v1/schedules", {
            schedule_id: "nightly",
            name: "Nightly report",
            workflow: sample,
            frequency: "cron",
            cron_expression: "0 2 * * *",
            timezone: "Asia/Tokyo",
          });
          assert.equal(created.status, 201);
          await page.click("a[data-panel=schedules]");
          const row = 'tr[data-schedule-id="nightly"]';
          await page.waitForSelector(row);
          const cells = await page.$$eval(
            `${row} td`,
            (td) => td.map((x) => x.textContent!.trim()),
          );
          assert.equal(cells[0], "cron 0 2 * * *");
          assert.match(cells[3], /02:00:00/); // 02:00 in the schedule's zone
          assert.match(cells[3], /GMT\+9|JST/);
          await page.click(`${row} button:has-text("Pause")`);
          await page.waitForSelector(`${row} [data-status=paused]`);
          assert.equal((await api(o, "GET", "/api/v1/schedules/nightly")).body.enabled, false);
          await page.click(`${row} button:has-text("Next runs")`);
          await page.waitForSelector("section.details:has-text('Next runs of Nightly report')");
          await screenshot(page, "schedules");
        },
      );

      await t.step(
        'workflows: folder tree, details and a run from the panel (or "not available")',
        async () => {
          const probe = await api(o, "GET", "/api/v1/workflows");
          await page.click("a[data-panel=workflows]");
          if (probe.status === 404) {
            await page.waitForSelector("main [data-state=unavailable]:has-text('Not available')");
            await screenshot(page, "workflows");
            return;
          }
          const created = await api(o, "POST", "/api/v1/workflows", {
            workflow_id: "numbers-report",
            name: "Numbers report",
            folder: "/finance/reports",
            content: sample,
          });
          assert.equal(created.status, 201);
          const published = await api(o, "PUT", "/api/v1/workflows/numbers-report", {
            status: "published",
          });
          assert.equal(published.status, 200);
          await page.waitForSelector(
            'details[data-folder="/finance/reports"] li[data-workflow-id="numbers-report"]',
          );
          await page.click('li[data-workflow-id="numbers-report"] a');
          await page.waitForSelector('section.details[data-workflow-id="numbers-report"]');
          const versions = await page.locator("table[aria-label=Versions] tbody tr").count();
          assert.equal(
            versions,
            (await api(o, "GET", "/api/v1/workflows/numbers-report/versions")).body.versions.length,
          );
          // Deploy it on a robot from the detail panel.
          await page.selectOption("#workflow-deploy-robot", robots[0].robotId);
          await page.click("button:has-text('Deploy')");
          await page.waitForSelector(
            `section.details li:has-text("${robots[0].robotId}: version")`,
          );
          const deployment =
            (await api(o, "GET", "/api/v1/workflows/numbers-report/deployment")).body;
          assert.deepEqual(deployment.robots.map((r: any) => r.robot_id), [robots[0].robotId]);
          await screenshot(page, "workflows");
          await page.fill("#workflow-run-variables", '{"from": "tree"}');
          await page.click("#workflow-run");
          await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
          const jobId = page.url().split("/").at(-1)!;
          await page.waitForSelector(`tr[data-job-id="${jobId}"][data-status=completed]`, {
            timeout: 20_000,
          });
          const job = (await api(o, "GET", `/api/v1/jobs/${jobId}`)).body;
          assert.equal(job.workflow_id, "numbers-report");
          assert.deepEqual(job.variables, { from: "tree" });
        },
      );

      await t.step(
        "keyboard: panels, a job's details and the submit dialog work without a mouse",
        async () => {
          await page.focus("a[data-panel=jobs]");
          await page.keyboard.press("Enter");
          await page.waitForSelector("main[data-panel=jobs] tbody tr[data-job-id]");
          // Focus moved to the panel; the first Tab stops on the toolbar.
          await page.keyboard.press("Tab");
          assert.equal(await page.evaluate(() => document.activeElement?.id), "job-status");
          await page.focus("tbody tr[data-job-id] a");
          await page.keyboard.press("Enter");
          await page.waitForSelector("section.details[data-job-id]");
          await page.focus("#submit-job-open");
          await page.keyboard.press("Enter");
          await page.waitForSelector("#submit-dialog[open]");
          assert.equal(await page.evaluate(() => document.activeElement?.id), "submit-workflow");
          await page.keyboard.press("Escape");
          await page.waitForSelector("#submit-dialog", { state: "hidden" });
        },
      );

      await t.step("phone width: panels fit without horizontal scrolling of the page", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        for (const panel of ["dashboard", "jobs", "robots"]) {
          await page.click(`a[data-panel=${panel}]`);
          await page.waitForSelector(`main[data-panel=${panel}] h1`);
          const overflow = await page.evaluate(() =>
            document.documentElement.scrollWidth - innerWidth
          );
          assert.ok(overflow <= 0, `${panel} overflows by ${overflow}px at 390px`);
        }
        await page.click("a[data-panel=dashboard]");
        await page.waitForSelector("[data-kpi][data-value]");
        await screenshot(page, "dashboard-phone");
        await page.setViewportSize({ width: 1280, height: 800 });
      });

      await t.step(
        "a viewer's token: the header shows its org and role, no button changes anything",
        async () => {
          assert.equal(await page.textContent("#whoami"), "default · admin");
          assert.equal(await page.isVisible("#submit-job-open"), true);
          const viewer = (await api(o, "POST", "/api/v1/tokens", { role: "viewer" })).body.token;
          const other = await browser.context.newPage(); // a new tab: its own sessionStorage
          try {
            await other.goto(o.url + "/");
            await other.fill("#token", viewer);
            await other.click("#signin-form button[type=submit]");
            await other.waitForSelector("#whoami:has-text('default · viewer')");
            assert.equal(await other.isVisible("#submit-job-open"), false);
            await other.click("a[data-panel=robots]");
            await other.waitForSelector("main[data-panel=robots] td.actions");
            const visible = await other.locator("main button.write").evaluateAll((buttons) =>
              buttons.filter((b) => (b as HTMLElement).offsetParent !== null).length
            );
            assert.equal(visible, 0);
          } finally {
            await other.close();
          }
        },
      );

      await t.step(
        "a lost connection shows a banner that clears when the orchestrator is back",
        async () => {
          await page.click("a[data-panel=jobs]");
          await page.waitForSelector("#live[data-state=live]");
          assert.equal(await page.isVisible("#banner"), false);
          await Promise.all(robots.map((r) => r.close()));
          const port = o.port;
          await o.stop();
          await page.waitForSelector("#banner:has-text('Connection to the orchestrator lost')");
          assert.equal(await page.getAttribute("#live", "data-state"), "offline");
          await screenshot(page, "connection-lost");
          currentStore = await reopen();
          o = await serveOrchestrator(currentStore, {
            port,
            apiToken: API_TOKEN,
            robotToken: ROBOT_TOKEN,
          });
          // Written after the restart: the page shows it without a reload.
          const after = await api(o, "POST", "/api/v1/jobs", { workflow: sample });
          await page.waitForSelector("#banner", { state: "hidden", timeout: 20_000 });
          await page.waitForSelector(`tr[data-job-id="${after.body.job_id}"]`, { timeout: 20_000 });
          assert.equal(await page.evaluate(() => (globalThis as any).__sameLoad), true);
        },
      );

      assert.deepEqual(pageErrors, []);
    } finally {
      await browser.close();
      await Promise.all(robots.map((r) => r.close().catch(() => {})));
      await o.stop().catch(() => {});
      await currentStore.close();
      if (currentStore !== store) await store.close().catch(() => {});
      await drop();
    }
  },
});
