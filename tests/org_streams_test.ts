/**
 * Another org's ids are not revealed through the log's reads: through the real HTTP server,
 * on both stores, org `acme`'s admin filtering `GET /api/v1/events` on a stream of the
 * default org (a job, schedule, workflow, robot, API token) gets exactly what a stream that
 * never existed answers (no events, `next_after` not moved), with and without `after` and
 * `wait`; following another org's job's `progress:` channel over SSE (`/api/v1/stream`) and
 * `/ws/realtime` answers as an unknown job does, the id aside. Also: `limit=0` on the events
 * read is refused naming `limit`.
 */
import assert from "node:assert/strict";
import { BACKENDS, call, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = {
  metadata: { name: "Streams", version: "1.0.0" },
  nodes: { a: { node_id: "a", node_type: "LogNode", config: { message: "a" } } },
  connections: [],
};

async function ok(
  t: TestOrchestrator,
  token: string,
  method: string,
  path: string,
  body?: unknown,
) {
  const res = await call(t, token, method, path, body);
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text);
}

/** The first message a `/ws/realtime` socket sends after subscribing to `channel`. */
async function wsAnswer(t: TestOrchestrator, token: string, channel: string): Promise<unknown> {
  const ws = new WebSocket(`${t.url.replace("http", "ws")}/ws/realtime?token=${token}`);
  const messages: Record<string, unknown>[] = [];
  let wake = () => {};
  ws.onmessage = (m) => {
    messages.push(JSON.parse(m.data));
    wake();
  };
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return messages.shift()!;
  };
  const closed = new Promise((resolve) => (ws.onclose = resolve));
  try {
    assert.equal((await next()).type, "ready");
    ws.send(JSON.stringify({ type: "subscribe", channels: [channel] }));
    return await next();
  } finally {
    ws.close();
    await closed;
  }
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] another org's streams and channels answer as unknown ones`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    let robot: RawRobot | undefined;
    try {
      const acme = (await ok(t, t.apiToken, "POST", "/api/v1/tokens", {
        org_id: "acme",
        role: "admin",
      })).token;
      // The default org's entities, each with a stream.
      await ok(t, t.apiToken, "POST", "/api/v1/workflows", {
        workflow_id: "wf-a",
        content: WORKFLOW,
      });
      await ok(t, t.apiToken, "POST", "/api/v1/schedules", {
        schedule_id: "s1",
        workflow_id: "wf-a",
        frequency: "cron",
        cron_expression: "0 3 * * *",
      });
      await ok(t, t.apiToken, "POST", "/api/v1/robots", { robot_id: "robot-1" });
      robot = new RawRobot(t.wsUrl, t.robotToken, "robot-2");
      assert.equal((await robot.register()).payload.success, true);
      const job = await ok(t, t.apiToken, "POST", "/api/v1/jobs", {
        workflow: WORKFLOW,
        required_capabilities: ["nothing-has-this"],
      });
      const token = await ok(t, t.apiToken, "POST", "/api/v1/tokens", { role: "viewer" });
      const theirs = [
        `job-${job.job_id}`,
        "schedule-s1",
        "workflow-wf-a",
        "robot_token-robot-1",
        "robot-robot-2",
        `api_token-${token.token_id}`,
      ];
      const end = t.orchestrator.core.position;
      assert.ok(end > 5);
      for (const stream of theirs) {
        // The default org sees its stream...
        const own = await ok(t, t.apiToken, "GET", `/api/v1/events?stream=${stream}`);
        assert.ok(own.events.length > 0, stream);
        assert.ok(own.next_after > 0, stream);
        // ...acme gets what a stream that never existed answers.
        for (const query of ["", "&after=0", "&after=2", "&limit=1", "&wait=1"]) {
          const other = await call(t, acme, "GET", `/api/v1/events?stream=${stream}${query}`);
          const unknown = await call(t, acme, "GET", `/api/v1/events?stream=job-nope${query}`);
          assert.equal(other.status, 200, `${stream}${query}: ${other.text}`);
          assert.equal(other.text, unknown.text, `${stream}${query}`);
          const after = Number(/after=(\d+)/.exec(query)?.[1] ?? 0);
          assert.deepEqual(JSON.parse(other.text), { events: [], next_after: after });
        }
      }
      // Unfiltered, acme's read moves past the default org's events without showing them.
      const all = await ok(t, acme, "GET", "/api/v1/events");
      assert.ok(all.events.every((e: { stream_id: string }) => !theirs.includes(e.stream_id)));

      // The progress channel of the default org's job: as an unknown job, id aside.
      const masked = (text: string, id: string) => text.replaceAll(id, "<id>");
      const sse = (id: string) => call(t, acme, "GET", `/api/v1/stream?channels=progress:${id}`);
      const [sseOther, sseUnknown] = [await sse(job.job_id), await sse("nope")];
      assert.equal(sseOther.status, 404, sseOther.text);
      assert.equal(sseUnknown.status, 404, sseUnknown.text);
      assert.equal(masked(sseOther.text, job.job_id), masked(sseUnknown.text, "nope"));
      const wsOther = await wsAnswer(t, acme, `progress:${job.job_id}`);
      const wsUnknown = await wsAnswer(t, acme, "progress:nope");
      assert.equal((wsOther as { code: string }).code, "not_found");
      assert.equal(
        masked(JSON.stringify(wsOther), job.job_id),
        masked(JSON.stringify(wsUnknown), "nope"),
      );
      // The default org itself may follow it.
      const wsOwn = await wsAnswer(t, t.apiToken, `progress:${job.job_id}`);
      assert.equal((wsOwn as { type: string }).type, "subscribed");

      // limit=0 is refused naming limit (the document says 1-1000).
      const zero = await call(t, acme, "GET", "/api/v1/events?limit=0");
      assert.equal(zero.status, 400, zero.text);
      assert.equal(JSON.parse(zero.text).error.field, "limit");
    } finally {
      robot?.kill();
      await t.stop();
      await drop();
    }
  });
}
