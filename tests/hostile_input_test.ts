/**
 * Hostile input over real WebSockets and HTTP: each frame or body gets a clear error, the
 * process keeps serving, and nothing is half-written (the job's history is unchanged).
 */
import assert from "node:assert/strict";
import { verifyLog } from "../audit/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const WORKFLOW = { nodes: {}, connections: [] };

/** A frame as text; `\uD800` written as an escape stays a lone surrogate after parsing. */
function frame(type: string, payload: Record<string, unknown>, id = crypto.randomUUID()): string {
  return JSON.stringify({ type, id, timestamp: new Date().toISOString(), payload });
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] hostile robot frames get clear errors and write nothing`, async (t) => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    const a = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
    const b = new RawRobot(o.wsUrl, o.robotToken, "robot-b");
    const extra: RawRobot[] = [];
    try {
      await a.register();
      await b.register();
      const jobId = (await o.api("POST", "/api/v1/jobs", { workflow: WORKFLOW })).body.job_id;
      const assigned = await (async () => {
        // least_loaded gives the job to one of the two robots; the other is the intruder.
        const got = await Promise.race([a.next("job_assignment"), b.next("job_assignment")]);
        return got;
      })();
      const owner = assigned.payload.job_id === jobId &&
          o.orchestrator.jobs.view(jobId)?.robot_id === "robot-a"
        ? a
        : b;
      const intruder = owner === a ? b : a;
      const lease = assigned.payload.lease_id;
      owner.send("job_accepted", { job_id: jobId, lease_id: lease }, assigned.id);
      await o.waitForJob(jobId, ["running"]);
      const before = (await store.readStream(`job-${jobId}`)).length;
      const ref = { job_id: jobId, lease_id: lease };
      const entry = { timestamp: "2026-01-01T00:00:00Z", level: "info", message: "ok" };
      const cases: [string, RawRobot, string, string, RegExp][] = [
        ["not JSON", owner, "{nope", "invalid_json", /not JSON/],
        ["a JSON string", owner, '"hello"', "invalid_message", /JSON object/],
        ["type is a number", owner, '{"type":7,"payload":{}}', "invalid_message", /type/],
        [
          "payload is an array",
          owner,
          '{"type":"job_log","payload":[]}',
          "invalid_message",
          /payload/,
        ],
        ["an unknown type", owner, frame("job_teleported", ref), "unknown_type", /job_teleported/],
        [
          "job_id is a number",
          owner,
          frame("job_progress", { job_id: 42, lease_id: lease, progress: 1 }),
          "invalid_message",
          /job_id/,
        ],
        [
          "progress is a string",
          owner,
          frame("job_progress", { ...ref, progress: "50" }),
          "invalid_message",
          /progress/,
        ],
        [
          "progress is huge",
          owner,
          frame("job_progress", { ...ref, progress: 1e400 }),
          "invalid_message",
          /progress/,
        ],
        [
          "entries is a string",
          owner,
          frame("job_log", { ...ref, entries: "x" }),
          "invalid_message",
          /entries/,
        ],
        [
          "an entry is null",
          owner,
          frame("job_log", { ...ref, entries: [entry, null] }),
          "invalid_message",
          /entries\[1\]/,
        ],
        [
          "an entry has a numeric message",
          owner,
          frame("job_log", { ...ref, entries: [{ ...entry, message: 5 }] }),
          "invalid_message",
          /entries\[0\]\.message/,
        ],
        [
          "a NUL in a log line",
          owner,
          frame("job_log", { ...ref, entries: [{ ...entry, message: "a\u0000b" }] }),
          "invalid_message",
          /NUL/,
        ],
        [
          "a lone surrogate in a log line",
          owner,
          frame("job_log", { ...ref, entries: [{ ...entry, message: "MARK" }] }).replace(
            "MARK",
            "a\\ud800b",
          ),
          "invalid_message",
          /surrogate/,
        ],
        [
          "a NUL in a result output",
          owner,
          frame("job_result", { ...ref, status: "completed", outputs: { x: "\u0000" } }),
          "invalid_message",
          /u0000/,
        ],
        [
          "a result with a bad status",
          owner,
          frame("job_result", { ...ref, status: "done" }),
          "invalid_message",
          /status/,
        ],
        [
          "a result whose logs are numbers",
          owner,
          frame("job_result", { ...ref, status: "completed", logs: [1] }),
          "invalid_message",
          /logs\[0\]/,
        ],
        [
          "a result with an error that is a string",
          owner,
          frame("job_result", { ...ref, status: "failed", error: "boom" }),
          "invalid_message",
          /error/,
        ],
        [
          "100 levels of nesting",
          owner,
          frame("job_result", {
            ...ref,
            status: "completed",
            outputs: { deep: JSON.parse("[".repeat(100) + "]".repeat(100)) },
          }),
          "invalid_message",
          /deeper/,
        ],
        [
          "a 10 MiB frame",
          owner,
          frame("job_log", {
            ...ref,
            entries: [{ ...entry, message: "x".repeat(10 * 1024 * 1024) }],
          }),
          "frame_too_large",
          /1048576/,
        ],
        [
          "a job that does not exist",
          owner,
          frame("job_progress", { job_id: crypto.randomUUID(), lease_id: lease, progress: 5 }),
          "unknown_job",
          /does not exist/,
        ],
        [
          "another robot's job, with its lease",
          intruder,
          frame("job_result", { ...ref, status: "completed" }),
          "stale_lease",
          /not current/,
        ],
        [
          "another robot's job, its progress",
          intruder,
          frame("job_progress", { ...ref, progress: 99 }),
          "stale_lease",
          /not current/,
        ],
        [
          "re-registering as the other robot",
          intruder,
          frame("register", { robot_id: owner.robotId, auth_token: o.robotToken }),
          "already_registered",
          /open a new connection/,
        ],
        [
          "a status that is an object",
          owner,
          frame("status_update", { status: { paused: true } }),
          "invalid_message",
          /status/,
        ],
      ];
      for (const [name, robot, text, code, message] of cases) {
        await t.step(`${name} → ${code}`, async () => {
          await robot.sendRaw(text);
          const err = await robot.next("error");
          assert.equal(err.payload.code, code, err.payload.message);
          assert.match(err.payload.message, message);
        });
      }
      await t.step("registrations with bad strings or another token are refused", async () => {
        const nul = new RawRobot(o.wsUrl, o.robotToken, "robot-nul");
        extra.push(nul);
        nul.send("register", { robot_id: "robot-nul", name: "a\u0000b", auth_token: o.robotToken });
        const err = await nul.next("error");
        assert.equal(err.payload.code, "invalid_message");
        assert.match(err.payload.message, /payload\.name/);
        assert.equal(o.orchestrator.robot("robot-nul"), undefined);
        const huge = new RawRobot(o.wsUrl, o.robotToken, "robot-huge");
        extra.push(huge);
        await huge.sendRaw(frame("register", {
          robot_id: "robot-huge",
          max_concurrent_jobs: 1e308,
          auth_token: o.robotToken,
        }));
        assert.match((await huge.next("error")).payload.message, /max_concurrent_jobs/);
        // The shared robot token is the only credential: a wrong one is refused (4001) and
        // the robot it names keeps its connection and its job.
        const impostor = new RawRobot(o.wsUrl, "someone-elses-token", owner.robotId);
        extra.push(impostor);
        assert.equal((await impostor.register()).payload.success, false);
        assert.equal((await impostor.closed).code, 4001);
        assert.equal(o.orchestrator.robot(owner.robotId)?.status, "busy");
      });
      // Nothing of the above reached the job's history.
      assert.equal((await store.readStream(`job-${jobId}`)).length, before);
      assert.equal(o.orchestrator.jobs.view(jobId)?.status, "running");
      // The owner still completes its job normally.
      owner.send("job_log", { ...ref, entries: [entry] });
      owner.send("job_result", { ...ref, status: "completed", execution_time: 0.5 });
      const ack = await owner.next("job_result_ack");
      assert.equal(ack.payload.status, "completed");
      const types = (await store.readStream(`job-${jobId}`)).map((e) => e.type);
      assert.deepEqual(types.slice(before), ["job.logged", "job.completed"]);
      assert.equal((await verifyLog(store)).ok, true);
      assert.equal((await fetch(`${o.url}/healthz`).then((r) => r.json())).status, "ok");
    } finally {
      for (const r of [a, b, ...extra]) r.kill();
      await o.stop();
      await drop();
    }
  });
}

Deno.test("a flood of messages is rate limited with a clear error, then the connection closed", async () => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }), {
    robotMessageRate: 50,
  });
  const flood = new RawRobot(o.wsUrl, o.robotToken, "robot-flood");
  const calm = new RawRobot(o.wsUrl, o.robotToken, "robot-calm");
  try {
    await flood.register();
    // A burst of 100 is allowed (twice the rate); the rest is refused with one notice.
    const hb = frame("heartbeat", { robot_id: "robot-flood", status: "online" });
    for (let i = 0; i < 150; i++) await flood.sendRaw(hb);
    const err = await flood.next("error");
    assert.equal(err.payload.code, "rate_limited");
    assert.match(err.payload.message, /more than 50 messages per second/);
    // Going on well past the burst within the second closes the connection.
    for (let i = 0; i < 400; i++) await flood.sendRaw(hb);
    // The server closes with 1008 "rate limit exceeded"; with the robot's frames still
    // arriving, the client usually sees a TCP reset rather than the close frame.
    const closed = await flood.closed;
    assert.ok([1008, 1006, 0].includes(closed.code), `close code ${closed.code}`);
    // Other robots are served as usual.
    assert.equal((await calm.register()).payload.success, true);
    await o.waitUntil(() => o.orchestrator.robot("robot-flood")?.status === "offline");
  } finally {
    flood.kill();
    calm.kill();
    await o.stop();
  }
});

Deno.test("hostile REST bodies: 400 naming the problem, 413 with JSON, nothing written", async (t) => {
  const o = await startOrchestrator(await openEventStore({ dataDir: "memory://" }));
  try {
    const raw = async (body: string | Uint8Array<ArrayBuffer>, path = "/api/v1/jobs") => {
      const res = await fetch(o.url + path, {
        method: "POST",
        headers: { authorization: `Bearer ${o.apiToken}`, "content-type": "application/json" },
        body,
      });
      return { status: res.status, type: res.headers.get("content-type"), body: await res.json() };
    };
    const cases: [string, string | Uint8Array<ArrayBuffer>, number, string, RegExp][] = [
      ["truncated JSON", '{"workflow": {"nodes": {}', 400, "body", /not valid JSON: /],
      ["not JSON at all", "workflow=1", 400, "body", /not valid JSON: /],
      ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 400, "body", /JSON/],
      ["an array", "[1,2]", 400, "body", /JSON object/],
      [
        "a lone surrogate",
        '{"workflow":{"nodes":{}},"variables":{"a":"\\ud800"}}',
        400,
        "variables.a",
        /surrogate/,
      ],
      [
        "a NUL in a key",
        '{"workflow":{"nodes":{}},"variables":{"a\\u0000":1}}',
        400,
        "variables.a",
        /u0000/,
      ],
      [
        "priority of the wrong type",
        '{"workflow":{"nodes":{}},"priority":[3]}',
        400,
        "priority",
        /priority/,
      ],
      ["a huge timeout", '{"workflow":{"nodes":{}},"timeout":1e999}', 400, "timeout", /timeout/],
      [
        "a 10 MiB body",
        JSON.stringify({ workflow: { nodes: {} }, blob: "x".repeat(10 * 1024 * 1024) }),
        413,
        "body",
        /limited to 1048576 bytes/,
      ],
      ["a malformed schedule", "{", 400, "body", /not valid JSON: /],
    ];
    for (const [name, body, status, field, message] of cases) {
      await t.step(`${name} → ${status}`, async () => {
        const path = name.includes("schedule") ? "/api/v1/schedules" : "/api/v1/jobs";
        const res = await raw(body, path);
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.match(res.type ?? "", /application\/json/);
        assert.equal(res.body.error.field, field);
        assert.match(res.body.error.message, message);
      });
    }
    await t.step("deep nesting is refused, not a crash", async () => {
      const deep = "[".repeat(100_000) + "]".repeat(100_000);
      const res = await raw(`{"workflow":{"nodes":{}},"variables":{"d":${deep}}}`);
      assert.equal(res.status, 400);
      assert.equal(res.body.error.code, "invalid_request");
    });
    assert.deepEqual(await o.store.readAll({}), []);
    assert.equal((await fetch(`${o.url}/healthz`).then((r) => r.json())).status, "ok");
  } finally {
    await o.stop();
  }
});

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] NUL and lone surrogates anywhere in a request are 400 naming their path`, async (t) => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store);
    try {
      const content = (config: unknown) => ({
        nodes: { a: { node_id: "a", node_type: "StartNode", config } },
      });
      const wf = await o.api("POST", "/api/v1/workflows", {
        workflow_id: "wf-a",
        name: "a",
        content: content({}),
      });
      assert.equal(wf.status, 201, JSON.stringify(wf.body));
      const sched = await o.api("POST", "/api/v1/schedules", {
        schedule_id: "s1",
        name: "s",
        workflow_id: "wf-a",
        frequency: "daily",
      });
      assert.equal(sched.status, 201, JSON.stringify(sched.body));
      const written = (await store.readAll({})).length;
      const cases: [string, string, unknown, string, RegExp][] = [
        ["POST", "/api/v1/workflows", { name: "a\u0000b", content: content({}) }, "name", /NUL/],
        [
          "POST",
          "/api/v1/workflows",
          { name: "x", description: "\ud800" },
          "description",
          /surrogate/,
        ],
        ["POST", "/api/v1/workflows", { name: "x", folder: "/a\u0000" }, "folder", /NUL/],
        [
          "POST",
          "/api/v1/workflows",
          { name: "x", content: content({ url: ["ok", "\udc00x"] }) },
          "content.nodes.a.config.url[1]",
          /surrogate/,
        ],
        ["PUT", "/api/v1/workflows/wf-a", { name: "\ud800" }, "name", /surrogate/],
        ["PUT", "/api/v1/workflows/wf-a", { description: "\u0000" }, "description", /NUL/],
        ["POST", "/api/v1/schedules", { schedule_id: "s\u0000", name: "n" }, "schedule_id", /NUL/],
        ["POST", "/api/v1/schedules", { name: "\ud800" }, "name", /surrogate/],
        ["PATCH", "/api/v1/schedules/s1", { name: "n\u0000" }, "name", /NUL/],
        ["PATCH", "/api/v1/schedules/s1", { variables: { "k\u0000": 1 } }, "variables.k", /key/],
        ["POST", "/api/v1/tokens", { role: "viewer", name: "\u0000" }, "name", /NUL/],
        ["POST", "/api/v1/robots", { name: "\u0000" }, "name", /NUL/],
        ["POST", "/api/v1/robots", { robot_id: "r\ud800" }, "robot_id", /surrogate/],
        ["GET", "/api/v1/jobs?workflow_id=%00", undefined, "workflow_id", /NUL/],
      ];
      for (const [method, path, body, field, message] of cases) {
        await t.step(`${method} ${path} ${JSON.stringify(body)} → 400 ${field}`, async () => {
          const res = await o.api(method, path, body);
          assert.equal(res.status, 400, JSON.stringify(res.body));
          assert.equal(res.body.error.code, "invalid_request");
          assert.equal(res.body.error.field, field);
          assert.match(res.body.error.message, message);
        });
      }
      // A malformed robot id in a path is an unknown robot (it was a 500 on token rotation).
      const rotate = await o.api("POST", "/api/v1/robots/%00/token", {});
      assert.equal(rotate.status, 404, JSON.stringify(rotate.body));
      assert.equal((await o.api("POST", "/api/v1/robots/a%20b/token", {})).status, 404);
      // A valid surrogate pair (an emoji) is fine.
      const emoji = await o.api("PATCH", "/api/v1/schedules/s1", { name: "night 🌙" });
      assert.equal(emoji.status, 200, JSON.stringify(emoji.body));
      assert.equal(emoji.body.name, "night 🌙");
      assert.equal((await store.readAll({})).length, written + 1);
    } finally {
      await o.stop();
      await drop();
    }
  });
}
