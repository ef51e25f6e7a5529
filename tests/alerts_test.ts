// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers and webhooks in tests
/**
 * Alerts end to end: a real robot that vanishes raises `robot_disconnected` once it has been
 * gone for the configured time, a real HTTP webhook receiver gets it (a failing one is
 * retried with backoff on the manual clock and delivered once; one that never recovers is
 * given up), the alert is in the log and the API, can be acknowledged, and is resolved when
 * the robot is back. Two orchestrators on one PostgreSQL raise it once. The monitor alone
 * raises and resolves the error-rate and backlog alerts on event time, and a bad threshold
 * stops `main.ts` with a message naming the variable.
 */
import assert from "node:assert/strict";
import { AlertMonitor, webhookLabel } from "../alerts/mod.ts";
import { ManualClock } from "../engine/mod.ts";
import { openEventStore } from "../events/mod.ts";
import { BACKENDS, postgresBackend, startOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const T0 = Date.UTC(2026, 5, 1, 12);
/** Engine settings that keep the manual clock's jumps from expiring anything else. */
const QUIET = { heartbeatInterval: 3600, heartbeatTimeout: 7200, sealInterval: 0 };

/** A webhook receiver on a free port: answers `statuses` in turn (the last one from then on). */
function receiver(statuses: number[]) {
  const requests: { headers: Headers; body: any }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    requests.push({ headers: req.headers, body: await req.json() });
    return new Response(null, { status: statuses[Math.min(requests.length, statuses.length) - 1] });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a vanished robot raises robot_disconnected: in the log, the API and a retried webhook, once`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(T0);
    const flaky = receiver([500, 500, 200]);
    const broken = receiver([503]);
    const flakyUrl = `${flaky.url}/hook?secret=s3cr3t`;
    const o = await startOrchestrator(store, QUIET, clock, {
      alerts: {
        robotOfflineAfter: 60,
        webhookUrls: [flakyUrl, broken.url],
        webhookMaxAttempts: 3,
        webhookBackoff: 1,
        webhookMaxBackoff: 4,
      },
    });
    const alerts = o.orchestrator.alerts;
    try {
      const robot = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
      await robot.register();
      robot.kill();
      await o.waitUntil(() => alerts.pending().length === 1);
      const [condition] = alerts.pending();
      assert.equal(condition.kind, "robot_disconnected");
      assert.equal(condition.raise_at, T0 + 60_000);
      clock.advance(59_999);
      assert.deepEqual(alerts.list(), [], "not gone long enough yet");
      clock.advance(1);
      await o.waitUntil(() => alerts.list().length === 1);
      const [raised] = alerts.list();
      const id = raised.alert_id;
      assert.equal(id, condition.alert_id);
      assert.match(id, /^robot_disconnected-[0-9a-f-]{36}$/);
      assert.deepEqual(raised.subject, { robot_id: "robot-a" });
      assert.equal(raised.status, "raised");
      assert.equal(raised.evidence.reason, "connection_closed");
      assert.equal(raised.raised_at, new Date(T0 + 60_000).toISOString());

      // Attempt 1 failed at both webhooks; each retry waits at most 4 s on the manual clock.
      const delivery = (url: string) =>
        alerts.get(id)?.deliveries.find((d) =>
          d.webhook === webhookLabel(url) && d.notification === "alert.raised"
        );
      for (const attempt of [1, 2]) {
        await o.waitUntil(() =>
          delivery(flakyUrl)?.attempts === attempt && delivery(broken.url)?.attempts === attempt
        );
        assert.equal(delivery(flakyUrl)!.outcome, "failed");
        assert.equal(delivery(flakyUrl)!.last_status, 500);
        assert.ok(
          delivery(flakyUrl)!.next_attempt_at! <= new Date(clock.now() + 4000).toISOString(),
        );
        clock.advance(4000);
      }
      await o.waitUntil(() =>
        delivery(flakyUrl)?.outcome === "delivered" && delivery(broken.url)?.outcome === "gave_up"
      );
      assert.equal(delivery(flakyUrl)!.attempts, 3);
      assert.equal(delivery(broken.url)!.attempts, 3);
      assert.equal(delivery(broken.url)!.last_status, 503);
      clock.advance(3_600_000); // no timer is left: nothing is sent again
      assert.equal(flaky.requests.length, 3, "delivered once, after two failures");
      assert.equal(broken.requests.length, 3, "given up after ALERT_WEBHOOK_MAX_ATTEMPTS");
      for (const r of flaky.requests) {
        assert.equal(r.headers.get("content-type"), "application/json");
        assert.equal(r.headers.get("x-alert-delivery"), `${id}:alert.raised`);
        assert.equal(r.body.notification, "alert.raised");
        assert.equal(r.body.alert.alert_id, id);
        assert.equal(r.body.alert.kind, "robot_disconnected");
        assert.deepEqual(r.body.alert.subject, { robot_id: "robot-a" });
      }

      // The log: raised once, then every attempt with its outcome; no secret of the URL.
      const stream = await store.readStream(`alert-${id}`);
      assert.equal(stream[0].type, "alert.raised");
      assert.equal(stream.filter((e) => e.type === "alert.raised").length, 1);
      const attempts = stream.filter((e) => e.type === "alert.delivery_attempted");
      assert.deepEqual(
        attempts.filter((e) => e.data.webhook === webhookLabel(flakyUrl)).map((e) => [
          e.data.attempt,
          e.data.outcome,
          e.data.status,
        ]),
        [[1, "failed", 500], [2, "failed", 500], [3, "delivered", 200]],
      );
      assert.deepEqual(
        attempts.filter((e) => e.data.webhook === broken.url + "/").map((e) => e.data.outcome),
        ["failed", "failed", "gave_up"],
      );
      assert.doesNotMatch(JSON.stringify(stream.map((e) => e.data)), /s3cr3t/);

      // The API.
      const listed = await o.api("GET", "/api/v1/alerts?status=raised&kind=robot_disconnected");
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body.alerts.map((a: any) => a.alert_id), [id]);
      assert.deepEqual((await o.api("GET", "/api/v1/alerts?kind=queue_backlog")).body, {
        alerts: [],
      });
      for (
        const [query, field] of [["status=open", "status"], ["kind=disk", "kind"], [
          "limit=0",
          "limit",
        ]]
      ) {
        const bad = await o.api("GET", `/api/v1/alerts?${query}`);
        assert.equal(bad.status, 400, query);
        assert.equal(bad.body.error.field, field);
      }
      const one = await o.api("GET", `/api/v1/alerts/${id}`);
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, JSON.parse(JSON.stringify(alerts.get(id))));
      assert.equal((await o.api("GET", "/api/v1/alerts/nope")).status, 404);
      assert.equal((await o.api("POST", "/api/v1/alerts/nope/acknowledge")).status, 404);
      const badNote = await o.api("POST", `/api/v1/alerts/${id}/acknowledge`, { note: 5 });
      assert.equal(badNote.status, 400);
      assert.equal(badNote.body.error.field, "note");
      const ack = await o.api("POST", `/api/v1/alerts/${id}/acknowledge`, { note: "on it" });
      assert.equal(ack.status, 200);
      assert.equal(ack.body.status, "acknowledged");
      assert.equal(ack.body.acknowledgement_note, "on it");
      assert.equal(alerts.get(id)!.status, "acknowledged", "read your writes");
      const again = await o.api("POST", `/api/v1/alerts/${id}/acknowledge`);
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, "already_acknowledged");

      // The robot is back: the alert is resolved and the receivers told.
      const back = new RawRobot(o.wsUrl, o.robotToken, "robot-a");
      await back.register();
      await o.waitUntil(() => alerts.get(id)?.status === "resolved");
      assert.equal(alerts.get(id)!.resolution!.reason, "robot reconnected");
      await o.waitUntil(() =>
        alerts.get(id)!.deliveries.some((d) =>
          d.notification === "alert.resolved" && d.outcome === "delivered"
        )
      );
      assert.equal(flaky.requests.length, 4);
      assert.equal(flaky.requests[3].body.notification, "alert.resolved");
      assert.equal(flaky.requests[3].body.alert.status, "resolved");
      back.kill();
    } finally {
      await o.stop();
      await flaky.close();
      await broken.close();
      await drop();
    }
  });
}

Deno.test("[postgres] two orchestrators on one log raise and deliver an alert once", async () => {
  const { store, reopen, drop } = await postgresBackend.open();
  const hook = receiver([200]);
  const alerts = { robotOfflineAfter: 30, webhookUrls: [hook.url] };
  const clockA = new ManualClock(T0);
  const clockB = new ManualClock(T0);
  const a = await startOrchestrator(store, QUIET, clockA, { alerts });
  const b = await startOrchestrator(await reopen(), QUIET, clockB, { alerts });
  try {
    const robot = new RawRobot(a.wsUrl, a.robotToken, "robot-x");
    await robot.register();
    robot.kill();
    await a.waitUntil(() => a.orchestrator.alerts.pending().length === 1);
    await b.waitUntil(() => b.orchestrator.alerts.pending().length === 1);
    assert.equal(
      a.orchestrator.alerts.pending()[0].alert_id,
      b.orchestrator.alerts.pending()[0].alert_id,
      "both derive the same id",
    );
    const id = a.orchestrator.alerts.pending()[0].alert_id;
    // Both come due in the same turn: both try to append alert.raised.
    clockA.advance(30_000);
    clockB.advance(30_000);
    for (const o of [a, b]) {
      await o.waitUntil(() =>
        o.orchestrator.alerts.get(id)?.deliveries.some((d) => d.outcome === "delivered") ?? false
      );
    }
    const events = await store.readAll({ limit: 1000 });
    const alertEvents = events.filter((e) => e.streamId.startsWith("alert-"));
    assert.deepEqual(new Set(alertEvents.map((e) => e.streamId)), new Set([`alert-${id}`]));
    assert.deepEqual(alertEvents.map((e) => e.type), ["alert.raised", "alert.delivery_attempted"]);
    assert.equal(hook.requests.length, 1, "one delivery");
  } finally {
    await a.stop();
    await b.stop();
    await hook.close();
    await drop();
  }
});

Deno.test("the monitor raises high_error_rate and queue_backlog on event time and resolves them when they end", async () => {
  const store = await openEventStore({ dataDir: "memory://" });
  const clock = new ManualClock(T0);
  const monitor = new AlertMonitor({
    store,
    clock,
    config: {
      kinds: ["high_error_rate", "queue_backlog", "job_timeout"],
      errorRateThreshold: 0.5,
      errorRateWindow: 60,
      errorRateMinJobs: 2,
      queueDepth: 1,
      queueDuration: 10,
    },
  });
  // The exclusive store hands over every append in order, as the engine's fold does; after
  // each, the waiters check their condition (the monitor's own appends included).
  const waiters = new Set<() => void>();
  const off = store.onAppended((_position, events) => {
    monitor.apply(events);
    for (const check of [...waiters]) check();
  });
  const until = (predicate: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const signal = AbortSignal.timeout(10_000);
      const check = () => {
        if (!predicate()) return;
        waiters.delete(check);
        resolve();
      };
      signal.addEventListener("abort", () => {
        waiters.delete(check);
        reject(new Error(`not reached: ${what}`));
      });
      waiters.add(check);
      check();
    });
  const append = async (stream: string, type: string, data: Record<string, unknown>) => {
    await store.append([{ streamId: stream, expectedVersion: "any", events: [{ type, data }] }]);
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  try {
    // A job timeout from two hours ago, in the log before the monitor starts: history.
    await append("job-old", "job.timed_out", { timed_out_at: iso(T0 - 7_200_000) });
    monitor.start();
    assert.deepEqual(monitor.pending(), [], "too old to raise");

    await append("job-1", "job.failed", { completed_at: iso(T0) });
    await append("job-2", "job.completed", { completed_at: iso(T0) });
    const rate = () => monitor.list({ kind: "high_error_rate" })[0];
    await until(() => rate() !== undefined, "high_error_rate raised");
    assert.equal(rate().status, "raised");
    assert.equal(rate().severity, "critical");
    assert.deepEqual([rate().evidence.failed, rate().evidence.jobs_ended], [1, 2]);
    // No job ends for a while: when the failure leaves the 60 s window, it is resolved.
    clock.advance(60_500);
    await until(() => rate().status === "resolved", "high_error_rate resolved");
    assert.equal(rate().resolution!.reason, "error rate below the threshold as the window slid");

    clock.advance(1_000_000);
    await append("job-3", "job.queued", { queued_at: iso(clock.now()) });
    await append("job-4", "job.queued", { queued_at: iso(clock.now()) });
    assert.equal(monitor.pending().length, 1);
    const backlog = monitor.pending()[0];
    assert.equal(backlog.kind, "queue_backlog");
    assert.equal(backlog.raise_at, clock.now() + 10_000);
    clock.advance(10_000);
    await until(() => monitor.get(backlog.alert_id) !== undefined, "queue_backlog raised");
    assert.equal(monitor.get(backlog.alert_id)!.evidence.depth_at_raise, 2);
    await append("job-3", "job.dispatched", { dispatched_at: iso(clock.now()) });
    await until(() => monitor.get(backlog.alert_id)!.status === "resolved", "backlog resolved");
  } finally {
    off();
    await monitor.stop();
    await store.close();
  }
});

Deno.test("main.ts refuses to start with a bad alert threshold and names the variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
    env: {
      ALERT_ERROR_RATE_THRESHOLD: "150%",
      DATA_DIR: "/nonexistent/never-created",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.equal(
    new TextDecoder().decode(out.stderr).trim(),
    'ALERT_ERROR_RATE_THRESHOLD must be a number greater than 0 and at most 1, got "150%"',
  );
});
