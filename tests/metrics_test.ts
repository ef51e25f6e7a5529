/**
 * `GET /metrics` through the real HTTP server on both stores: the text exposition format
 * parses, and its values match what was done (on a manual clock, so durations are exact).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

interface Family {
  type: string;
  samples: Map<string, number>;
}

/**
 * Parses the Prometheus text format strictly enough to catch mistakes: every sample belongs
 * to a family declared by `# TYPE` before it, no series is repeated, values are numbers.
 * @returns families by name; samples keyed by `name{labels}` as written.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  assert.ok(text.endsWith("\n"), "ends with a line feed");
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const type = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/);
    if (type) {
      assert.ok(!families.has(type[1]), `family ${type[1]} declared twice`);
      families.set(type[1], { type: type[2], samples: new Map() });
      continue;
    }
    const m = line.match(
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/,
    );
    assert.ok(m, `not a sample line: ${line}`);
    const [, name, labels = "", raw] = m;
    const value = raw === "+Inf" ? Infinity : Number(raw);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    const family = families.get(name) ??
      families.get(name.replace(/_(bucket|sum|count)$/, ""));
    assert.ok(family, `sample ${name} has no # TYPE before it`);
    const key = name + labels;
    assert.ok(!family.samples.has(key), `series ${key} repeated`);
    family.samples.set(key, value);
  }
  return families;
}

function checkHistogram(families: Map<string, Family>, name: string): number[] {
  const h = families.get(name)!;
  assert.equal(h.type, "histogram");
  const buckets = [...h.samples].filter(([k]) => k.startsWith(`${name}_bucket`)).map(([, v]) => v);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1], "cumulative");
  assert.equal(buckets[buckets.length - 1], h.samples.get(`${name}_count`), "+Inf is the count");
  return buckets;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] /metrics: jobs, queue, robots, events and histograms in the text format`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
    const o = await startOrchestrator(
      store,
      { heartbeatInterval: 600, heartbeatTimeout: 3600 },
      clock,
    );
    const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-m");
    try {
      const unauthorized = await fetch(`${o.url}/metrics`);
      assert.equal(unauthorized.status, 401);
      await unauthorized.body?.cancel();

      await robot.register();
      const workflow = { nodes: {}, connections: [] };
      const done = (await o.api("POST", "/api/v1/jobs", { workflow })).body.job_id;
      const a = await robot.next("job_assignment");
      robot.send("job_accepted", { job_id: done, lease_id: a.payload.lease_id }, a.id);
      await o.waitForJob(done, ["running"]);
      clock.advance(2500);
      robot.send("job_result", {
        job_id: done,
        lease_id: a.payload.lease_id,
        status: "completed",
        outputs: {},
        logs: [],
        execution_time: 2.5,
        node_results: {},
      });
      await o.waitForJob(done, ["completed"]);
      // The robot now runs `busy`; the next two wait in the queue, one is cancelled.
      const busy = (await o.api("POST", "/api/v1/jobs", { workflow })).body.job_id;
      await robot.next("job_assignment");
      await o.waitForJob(busy, ["dispatched"]);
      await o.api("POST", "/api/v1/jobs", { workflow, priority: "critical" });
      await o.api("POST", "/api/v1/jobs", { workflow, priority: "critical" });
      const cancelled = (await o.api("POST", "/api/v1/jobs", { workflow, priority: "low" })).body;
      await o.api("POST", `/api/v1/jobs/${cancelled.job_id}/cancel`);
      await o.api("POST", "/api/v1/workflows", {
        content: workflow,
        name: "m",
        status: "published",
      });

      const res = await fetch(`${o.url}/metrics`, {
        headers: { authorization: `Bearer ${o.apiToken}` },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const families = parseExposition(await res.text());
      const value = (family: string, series: string) => families.get(family)?.samples.get(series);

      assert.equal(value("orchestrator_jobs", 'orchestrator_jobs{status="completed"}'), 1);
      assert.equal(value("orchestrator_jobs", 'orchestrator_jobs{status="dispatched"}'), 1);
      assert.equal(value("orchestrator_jobs", 'orchestrator_jobs{status="queued"}'), 2);
      assert.equal(value("orchestrator_jobs", 'orchestrator_jobs{status="cancelled"}'), 1);
      assert.equal(value("orchestrator_jobs", 'orchestrator_jobs{status="running"}'), 0);
      const depth = (p: string) =>
        value("orchestrator_queue_depth", `orchestrator_queue_depth{priority="${p}"}`);
      assert.deepEqual(["low", "normal", "high", "critical"].map(depth), [0, 0, 0, 2]);
      assert.equal(value("orchestrator_robots", 'orchestrator_robots{status="busy"}'), 1);
      assert.equal(value("orchestrator_robots", 'orchestrator_robots{status="online"}'), 0);
      assert.equal(value("orchestrator_robots_connected", "orchestrator_robots_connected"), 1);
      assert.equal(
        value("orchestrator_workflows", 'orchestrator_workflows{status="published"}'),
        1,
      );
      const events = await o.store.readAll({ limit: 10_000 });
      const byCategory = (c: string) => events.filter((e) => e.type.startsWith(`${c}.`)).length;
      for (const category of ["job", "robot", "workflow"]) {
        assert.equal(
          value("orchestrator_events_total", `orchestrator_events_total{category="${category}"}`),
          byCategory(category),
          category,
        );
      }
      assert.equal(families.get("orchestrator_events_total")!.type, "counter");
      assert.equal(
        value("orchestrator_log_position", "orchestrator_log_position"),
        o.orchestrator.core.position,
      );
      assert.equal(
        value("orchestrator_projection_lag_events", "orchestrator_projection_lag_events"),
        0,
      );
      assert.ok(
        value("orchestrator_projection_lag_seconds", "orchestrator_projection_lag_seconds")! >= 0,
      );
      assert.equal(
        value(
          "orchestrator_job_attempts_ended_total",
          'orchestrator_job_attempts_ended_total{outcome="completed"}',
        ),
        1,
      );
      const latency = checkHistogram(families, "orchestrator_dispatch_latency_seconds");
      assert.equal(latency[0], 2, "two dispatches, both at once on the manual clock");
      checkHistogram(families, "orchestrator_job_duration_seconds");
      const duration = families.get("orchestrator_job_duration_seconds")!.samples;
      assert.equal(duration.get('orchestrator_job_duration_seconds_bucket{le="1"}'), 0);
      assert.equal(duration.get('orchestrator_job_duration_seconds_bucket{le="5"}'), 1);
      assert.equal(duration.get("orchestrator_job_duration_seconds_sum"), 2.5);
      const appends = checkHistogram(families, "orchestrator_event_append_duration_seconds");
      const appendCount = appends[appends.length - 1];
      const byOutcome = (outcome: string) =>
        value(
          "orchestrator_event_appends_total",
          `orchestrator_event_appends_total{outcome="${outcome}"}`,
        )!;
      assert.equal(
        byOutcome("written") + byOutcome("replayed") + byOutcome("failed"),
        appendCount,
        "every append is timed once",
      );
      // Submissions, dispatches, starts, results, cancels, the workflow: each its own append
      // (group commit may merge some), never more appends than events.
      assert.ok(byOutcome("written") >= 5, `written appends: ${byOutcome("written")}`);
      assert.ok(byOutcome("written") <= events.length);
      assert.ok(
        families.get("orchestrator_event_append_duration_seconds")!.samples.get(
          "orchestrator_event_append_duration_seconds_sum",
        )! > 0,
      );
      assert.equal(families.get("orchestrator_alerts")!.type, "gauge");
      assert.equal(
        value(
          "orchestrator_alerts",
          'orchestrator_alerts{kind="robot_disconnected",status="raised"}',
        ),
        0,
      );
      assert.equal(families.get("orchestrator_alerts")!.samples.size, 12, "4 kinds × 3 statuses");
      assert.equal(value("orchestrator_ready", "orchestrator_ready"), 1);
    } finally {
      robot.kill();
      await o.stop();
      await drop();
    }
  });
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] observeAppends() times every append and names its outcome`, async () => {
    const { store, drop } = await backend.open();
    const seen: { events: number; outcome: string; durationMs: number }[] = [];
    const off = store.observeAppends((o) => seen.push(o));
    try {
      const eventId = crypto.randomUUID();
      const write = (expectedVersion: number) =>
        store.append([{
          streamId: "job-observed",
          expectedVersion,
          events: [{ type: "job.queued", data: {}, eventId }],
        }]);
      await write(0);
      await write(0); // the same event id again: an idempotent replay
      await assert.rejects(
        store.append([{
          streamId: "job-observed",
          expectedVersion: 0,
          events: [{ type: "job.queued", data: {} }, { type: "job.queued", data: {} }],
        }]),
      );
      assert.deepEqual(seen.map((o) => [o.outcome, o.events]), [
        ["written", 1],
        ["replayed", 1],
        ["failed", 2],
      ]);
      for (const o of seen) assert.ok(o.durationMs >= 0 && Number.isFinite(o.durationMs));
      off();
      await write(1).catch(() => {});
      assert.equal(seen.length, 3, "no call after removal");
    } finally {
      await store.close();
      await drop();
    }
  });
}
