// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * The realtime channel (`GET /api/v1/stream`, Server-Sent Events) and the dashboard's read
 * endpoints, over real HTTP on both backends: live delivery, resumption with
 * `Last-Event-ID` without gaps or repeats, token in the header or the query, bad input.
 */
import assert from "node:assert/strict";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, postgresBackend, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { SseClient, type SseMessage } from "./_sse_client.ts";

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };
const EMPTY_WORKFLOW = { workflow: { nodes: {} } };

function stream(t: TestOrchestrator, query = `token=${t.apiToken}`, headers = {}) {
  return SseClient.open(`${t.url}/api/v1/stream?${query}`, headers);
}

async function submit(t: TestOrchestrator, body: unknown = EMPTY_WORKFLOW): Promise<string> {
  const res = await t.api("POST", "/api/v1/jobs", body);
  assert.equal(res.status, 201);
  return res.body.job_id;
}

/** Every event of the log, as the events API lists it. */
async function allEvents(t: TestOrchestrator): Promise<any[]> {
  return (await t.api("GET", "/api/v1/events?after=0&limit=1000")).body.events;
}

const ids = (messages: SseMessage[]) =>
  messages.filter((m) => m.event === "message").map((m) => Number(m.id));

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] the stream delivers new events live and resumes after Last-Event-ID without gaps`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    try {
      const before = await submit(t); // history before the connection: not sent
      const sse = await stream(t);
      assert.equal(sse.status, 200);
      assert.match(sse.contentType ?? "", /^text\/event-stream/);
      const ready = await sse.next();
      assert.equal(ready.event, "ready");
      const checkpoint = JSON.parse(ready.data).checkpoint;
      assert.equal(checkpoint, t.orchestrator.core.position);
      assert.equal(ready.id, String(checkpoint));

      const first = await submit(t);
      const live = await sse.until((m) => JSON.parse(m.data).type === "job.queued");
      assert.deepEqual(
        live.map((m) => [JSON.parse(m.data).stream_id, JSON.parse(m.data).type]),
        [[`job-${first}`, "job.submitted"], [`job-${first}`, "job.queued"]],
      );
      for (const m of live) assert.equal(m.id, String(JSON.parse(m.data).global_position));
      const lastSeen = live[live.length - 1].id;
      await sse.close();

      // While disconnected, the log goes on.
      const missed = [await submit(t), await submit(t)];
      const cancelled = await t.api("POST", `/api/v1/jobs/${missed[0]}/cancel`);
      assert.equal(cancelled.status, 200);

      const resumed = await stream(t, "", {
        authorization: `Bearer ${t.apiToken}`,
        "last-event-id": lastSeen,
      });
      const hello = await resumed.next();
      assert.equal(hello.event, "ready");
      assert.deepEqual(JSON.parse(hello.data), {
        checkpoint: Number(lastSeen),
        resumed: true,
        org_id: "default",
        channels: [],
      });
      const log = await allEvents(t);
      const expected = log.slice(log.findIndex((e) => String(e.global_position) === lastSeen) + 1);
      assert.equal(expected.length, 5); // 2 × (submitted, queued) + cancelled
      const got = await resumed.until((m) => m.id === String(expected.at(-1).global_position));
      assert.deepEqual(ids(got), expected.map((e) => e.global_position));
      assert.deepEqual(got.map((m) => JSON.parse(m.data)), expected);
      assert.ok(!got.some((m) => JSON.parse(m.data).stream_id === `job-${before}`));
      await resumed.close();
    } finally {
      await t.stop();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] the metrics history counts jobs per step and the activity lists the latest events`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const robot = new RobotClient({
      url: t.wsUrl,
      token: t.robotToken,
      name: "robot-h",
      logger: quietLogger,
    });
    try {
      const queued = await submit(t, { ...EMPTY_WORKFLOW, required_capabilities: ["none-has-it"] });
      await robot.start();
      const done = await submit(t);
      await t.waitForJob(done, ["completed"]);
      const from = new Date(Date.now() - 60_000).toISOString();
      const to = new Date(Date.now() + 10_000).toISOString();
      const res = await t.api("GET", `/api/v1/metrics/history?from=${from}&to=${to}&step=10`);
      assert.equal(res.status, 200);
      assert.equal(res.body.step, 10);
      const points = res.body.points as any[];
      assert.equal(points.length, 8); // 70 s in steps of 10 s (from rounded down)
      const sum = (k: string) => points.reduce((n, p) => n + p[k], 0);
      assert.equal(sum("submitted"), 2);
      assert.equal(sum("completed"), 1);
      assert.equal(sum("failed"), 0);
      const last = points.at(-1);
      assert.equal(last.queue_depth, 1);
      assert.equal(last.running, 0);
      assert.equal(last.capacity, 1);
      const completedAt = points.find((p) => p.completed === 1);
      const job = (await t.api("GET", `/api/v1/jobs/${done}`)).body;
      assert.equal(completedAt.avg_execution_time, job.result.execution_time);

      const activity = await t.api("GET", "/api/v1/activity?limit=3");
      assert.equal(activity.status, 200);
      const log = await allEvents(t);
      assert.deepEqual(activity.body.events, log.slice(-3));
      assert.ok(queued);

      for (
        const [query, field] of [
          ["from=yesterday", "from"],
          ["step=7", "step"],
          [`from=${to}&to=${from}`, "from"],
          ["from=2020-01-01T00:00:00Z&step=10", "step"],
        ]
      ) {
        const bad = await t.api("GET", `/api/v1/metrics/history?${query}`);
        assert.equal(bad.status, 400, query);
        assert.equal(bad.body.error.field, field, query);
      }
      assert.equal((await t.api("GET", "/api/v1/activity?limit=0")).body.error.field, "limit");
      const robotLog = await t.api("GET", "/api/v1/activity?robot_id=robot-h&limit=2");
      const robotStream = log.filter((e) => e.stream_id === "robot-robot-h");
      assert.deepEqual(robotLog.body.events, robotStream.slice(-2));
      assert.equal((await t.api("GET", "/api/v1/activity?robot_id=nobody")).status, 404);
    } finally {
      await robot.close();
      await t.stop();
      await drop();
    }
  });
}

Deno.test("the stream needs the API token (header or ?token=) and a valid Last-Event-ID", async () => {
  const { store, drop } = await postgresBackend.open();
  const t = await startOrchestrator(store);
  let stopped = false;
  try {
    for (
      const [query, headers] of [["", {}], ["token=wrong", {}], ["", {
        authorization: "Bearer wrong",
      }]] as const
    ) {
      const res = await fetch(`${t.url}/api/v1/stream?${query}`, { headers });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error.code, "unauthorized");
    }
    const history = await fetch(`${t.url}/api/v1/metrics/history?token=${t.apiToken}`);
    assert.equal(history.status, 401, "only the stream takes the token in the query");
    await history.body?.cancel();
    const bad = await fetch(`${t.url}/api/v1/stream?token=${t.apiToken}`, {
      headers: { "last-event-id": "abc" },
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.field, "Last-Event-ID");

    // A position that is not in this log: the client is told to reload, then live events.
    const sse = await stream(t, `token=${t.apiToken}&after=999999`);
    assert.equal((await sse.next()).event, "ready");
    const reset = await sse.next();
    assert.equal(reset.event, "reset");
    const jobId = await submit(t);
    const next = await sse.next();
    assert.equal(JSON.parse(next.data).stream_id, `job-${jobId}`);
    await sse.close();

    // The stream ends when the orchestrator stops, so that the server can shut down.
    const open = await stream(t);
    await open.next();
    const ended = open.ended();
    await t.stop();
    stopped = true;
    await ended;
  } finally {
    if (!stopped) await t.stop();
    await drop();
  }
});

Deno.test("the dashboard page and its files are served without a token; other paths are 404", async () => {
  const { store, drop } = await postgresBackend.open();
  const t = await startOrchestrator(store);
  try {
    const page = await fetch(`${t.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(await page.text(), /<script type="module" src="\/web\/app.js"><\/script>/);
    const lib = await fetch(`${t.url}/web/vendor/uplot/uPlot.esm.js`);
    assert.equal(lib.status, 200);
    assert.match(lib.headers.get("content-type")!, /^text\/javascript/);
    await lib.body?.cancel();
    for (
      const path of ["/web/../deno.json", "/web/%2e%2e/deno.json", "/web/nope.js", "/web/x.exe"]
    ) {
      const res = await fetch(`${t.url}${path}`);
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
  } finally {
    await t.stop();
    await drop();
  }
});
