/**
 * The HTTP API's answers to bad input and missing credentials: 4xx with a JSON body naming
 * the field, and nothing written.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { startOrchestrator } from "./_harness.ts";

const cases: [string, unknown, string][] = [
  ["invalid JSON", "{not json", "body"],
  ["a body that is not an object", "[1,2]", "body"],
  ["a workflow that is not an object", { workflow: "stress_task_6.json" }, "workflow"],
  ["a workflow without nodes", { workflow: { connections: [] } }, "workflow.nodes"],
  ["an unknown priority name", { workflow: { nodes: {} }, priority: "urgent" }, "priority"],
  ["a priority out of range", { workflow: { nodes: {} }, priority: 7 }, "priority"],
  ["a negative timeout", { workflow: { nodes: {} }, timeout: -1 }, "timeout"],
  ["variables that are not an object", { workflow: { nodes: {} }, variables: [1] }, "variables"],
  [
    "an inline workflow with a connection to a node that does not exist",
    {
      workflow: {
        nodes: { a: { node_id: "a", node_type: "StartNode", config: {} } },
        connections: [{
          source_node: "a",
          source_port: "exec_out",
          target_node: "ghost",
          target_port: "exec_in",
        }],
      },
    },
    "workflow.connections[0].target_node",
  ],
  [
    "variables nested deeper than the store's 64 levels",
    { workflow: { nodes: {} }, variables: { a: deep(70) } },
    // data is level 1, variables 2, a 3: the first array past level 64 is a + 62 × [0].
    "variables.a" + "[0]".repeat(62),
  ],
  [
    "a NUL character in a variable",
    { workflow: { nodes: {} }, variables: { a: "x\u0000y" } },
    "variables.a",
  ],
];

/** `levels` arrays nested in each other around the number 1. */
function deep(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

Deno.test("POST /api/v1/jobs answers 400 naming the field, and writes nothing", async (t) => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    for (const [name, body, field] of cases) {
      await t.step(name, async () => {
        const res = await o.api(
          "POST",
          "/api/v1/jobs",
          typeof body === "string" ? body : JSON.stringify(body),
        );
        assert.equal(res.status, 400);
        assert.equal(res.body.error.code, "invalid_request");
        assert.equal(res.body.error.field, field);
        assert.equal(typeof res.body.error.message, "string");
      });
    }
    assert.deepEqual(await o.store.readAll({}), []);
    const ok = await o.api("POST", "/api/v1/jobs", { workflow: { nodes: {} }, priority: 3 });
    assert.equal(ok.status, 201);
    assert.equal((await o.api("GET", `/api/v1/jobs/${ok.body.job_id}`)).body.priority, "critical");
  } finally {
    await o.stop();
  }
});

Deno.test("the API needs the bearer token, /healthz does not", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const health = await fetch(`${o.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");
    for (const auth of [undefined, "Bearer wrong", o.apiToken]) {
      const res = await fetch(`${o.url}/api/v1/jobs`, {
        headers: auth ? { authorization: auth } : {},
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).error.code, "unauthorized");
    }
  } finally {
    await o.stop();
  }
});

Deno.test("unknown jobs and robots are 404; bad query parameters are 400", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    assert.equal((await o.api("GET", "/api/v1/jobs/nope")).status, 404);
    assert.equal((await o.api("POST", "/api/v1/jobs/nope/cancel")).status, 404);
    assert.equal((await o.api("GET", "/api/v1/robots/nope")).status, 404);
    const bad = await o.api("GET", "/api/v1/jobs?status=sleeping");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "status");
    const badAfter = await o.api("GET", "/api/v1/events?after=-3");
    assert.equal(badAfter.status, 400);
    assert.equal(badAfter.body.error.field, "after");
  } finally {
    await o.stop();
  }
});

Deno.test("a queued job is cancelled at once; a second cancel is 409 with the final state", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: { nodes: {} } })).body;
    const first = await o.api("POST", `/api/v1/jobs/${job_id}/cancel`);
    assert.equal(first.status, 200);
    assert.equal(first.body.status, "cancelled");
    const second = await o.api("POST", `/api/v1/jobs/${job_id}/cancel`);
    assert.equal(second.status, 409);
    assert.equal(second.body.job.status, "cancelled");
    const types = (await o.store.readStream(`job-${job_id}`)).map((e) => e.type);
    assert.deepEqual(types, ["job.submitted", "job.queued", "job.cancelled"]);
  } finally {
    await o.stop();
  }
});

Deno.test("the audit API verifies the log and seals it on demand", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    await o.api("POST", "/api/v1/jobs", { workflow: { nodes: {} } });
    const sealed = await o.api("POST", "/api/v1/audit/seal");
    assert.equal(sealed.status, 201);
    assert.equal(typeof sealed.body.hash, "string");
    const verified = await o.api("GET", "/api/v1/audit/verify");
    assert.equal(verified.status, 200);
    assert.equal(verified.body.ok, true);
  } finally {
    await o.stop();
  }
});

Deno.test("oversized bodies are 413, store refusals name the field, bad cursors are 400", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const huge = await o.api("POST", "/api/v1/jobs", {
      workflow: { nodes: {} },
      variables: { blob: "x".repeat(2 * 1024 * 1024) },
    });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.error.field, "body");
    const nul = await o.api("POST", "/api/v1/jobs", {
      workflow: { nodes: {} },
      variables: { a: "x\u0000y" },
    });
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error.field, "variables.a");
    const proto = await o.api("POST", "/api/v1/jobs", {
      workflow: { nodes: {} },
      priority: "__proto__",
    });
    assert.equal(proto.status, 400);
    assert.equal(proto.body.error.field, "priority");
    const hugeTimeout = await o.api("POST", "/api/v1/jobs", {
      workflow: { nodes: {}, settings: { timeout: 1e300 } },
    });
    assert.equal(hugeTimeout.status, 400);
    assert.equal(hugeTimeout.body.error.field, "workflow.settings.timeout");
    const beyond = await o.api("GET", "/api/v1/events?after=999999");
    assert.equal(beyond.status, 400);
    assert.equal(beyond.body.error.field, "after");
    const badStream = await o.api("GET", "/api/v1/events?stream=%00");
    assert.equal(badStream.status, 400);
    assert.equal(badStream.body.error.field, "stream");
    const badCursor = await o.api("GET", "/api/v1/jobs?cursor=garbage");
    assert.equal(badCursor.status, 400);
    assert.equal(badCursor.body.error.field, "cursor");
    // The scheme name of Authorization is case-insensitive (RFC 7235).
    const lower = await fetch(`${o.url}/api/v1/jobs`, {
      headers: { authorization: `bearer ${o.apiToken}` },
    });
    assert.equal(lower.status, 200);
    await lower.body?.cancel();
    assert.deepEqual(await o.store.readAll({}), []);
  } finally {
    await o.stop();
  }
});

Deno.test("an unknown job event type stops the read models with a clear error instead of being skipped", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const o = await startOrchestrator(store);
  try {
    const { job_id } = (await o.api("POST", "/api/v1/jobs", { workflow: { nodes: {} } })).body;
    const [event] = (await store.append([{
      streamId: `job-${job_id}`,
      expectedVersion: "any",
      events: [{ type: "job.teleported", data: { to: "mars" } }],
    }])).events;
    await o.orchestrator.subscription!.done.catch(() => {}); // the fold stopped
    const health = await fetch(`${o.url}/healthz`);
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.status, "failed");
    assert.match(body.error, /job\.teleported/);
    assert.match(body.error, new RegExp(`Event ${event.globalPosition} `));
  } finally {
    await o.stop();
  }
});

Deno.test("the jobs list filters by status, workflow and time, sorts, and pages with a cursor", async () => {
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {}, clock);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const workflow = { metadata: { name: i % 2 ? "odd" : "even" }, nodes: {} };
      ids.push((await o.api("POST", "/api/v1/jobs", { workflow })).body.job_id);
      clock.advance(1000);
    }
    await o.api("POST", `/api/v1/jobs/${ids[0]}/cancel`);
    const page1 = (await o.api("GET", "/api/v1/jobs?limit=2")).body;
    assert.deepEqual(page1.jobs.map((j: { job_id: string }) => j.job_id), [ids[4], ids[3]]);
    const page2 =
      (await o.api("GET", `/api/v1/jobs?limit=2&cursor=${encodeURIComponent(page1.next_cursor)}`))
        .body;
    assert.deepEqual(page2.jobs.map((j: { job_id: string }) => j.job_id), [ids[2], ids[1]]);
    const page3 =
      (await o.api("GET", `/api/v1/jobs?limit=2&cursor=${encodeURIComponent(page2.next_cursor)}`))
        .body;
    assert.deepEqual(page3.jobs.map((j: { job_id: string }) => j.job_id), [ids[0]]);
    assert.equal(page3.next_cursor, null);
    const asc = (await o.api("GET", "/api/v1/jobs?order=asc&workflow_id=even")).body;
    assert.deepEqual(asc.jobs.map((j: { job_id: string }) => j.job_id), [ids[0], ids[2], ids[4]]);
    const cancelled = (await o.api("GET", "/api/v1/jobs?status=cancelled")).body;
    assert.deepEqual(cancelled.jobs.map((j: { job_id: string }) => j.job_id), [ids[0]]);
    const window = (await o.api(
      "GET",
      "/api/v1/jobs?created_after=2026-06-01T12:00:00.500Z&created_before=2026-06-01T12:00:03Z",
    )).body;
    assert.deepEqual(window.jobs.map((j: { job_id: string }) => j.job_id), [ids[2], ids[1]]);
    const bad = await o.api("GET", "/api/v1/jobs?created_after=soon");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, "created_after");
    const history = (await o.api("GET", `/api/v1/jobs/${ids[0]}/events`)).body;
    assert.deepEqual(history.events.map((e: { type: string }) => e.type), [
      "job.submitted",
      "job.queued",
      "job.cancelled",
    ]);
    assert.equal((await o.api("GET", "/api/v1/jobs/nope/events")).status, 404);
  } finally {
    await o.stop();
  }
});
