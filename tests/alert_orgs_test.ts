// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers and webhooks in tests
/**
 * Alerts per organisation, through the real HTTP server and real robot WebSockets, on both
 * stores: a robot's disconnection is an alert of the robot's org, a queue backlog is counted
 * and raised per org; each org's admin, operator and viewer see their own org's alerts only
 * (another org's alert id is 404 exactly as an unknown id; acknowledging one too), auditors
 * read them in the log and not through `/alerts`; the system admin sees and acknowledges
 * every org's; `alert.raised` records the org, and the webhook body carries it.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../engine/mod.ts";
import { BACKENDS, call, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { RawRobot } from "./_raw_robot.ts";

const T0 = Date.UTC(2026, 5, 1, 12);
/** Engine settings that keep the manual clock's jumps from expiring anything else. */
const QUIET = { heartbeatInterval: 3600, heartbeatTimeout: 7200, sealInterval: 0 };
const WORKFLOW = {
  metadata: { name: "Org flow", version: "1.0.0" },
  nodes: { a: { node_id: "a", node_type: "LogNode", config: { message: "a" } } },
  connections: [],
};

async function issue(t: TestOrchestrator, org_id: string, role: string): Promise<string> {
  const res = await call(t, t.apiToken, "POST", "/api/v1/tokens", { org_id, role });
  assert.equal(res.status, 201, res.text);
  return res.body.token;
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] alerts belong to the org of what they are about and are shown to that org only`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(T0);
    const hooks: any[] = [];
    const receiver = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        hooks.push(await req.json());
        return new Response(null, { status: 204 });
      },
    );
    const t = await startOrchestrator(store, QUIET, clock, {
      alerts: {
        robotOfflineAfter: 60,
        queueDepth: 0,
        queueDuration: 10,
        webhookUrls: [`http://127.0.0.1:${receiver.addr.port}/hook`],
      },
    });
    const alerts = t.orchestrator.alerts;
    const robots: RawRobot[] = [];
    try {
      const acme: Record<string, string> = {};
      const globex: Record<string, string> = {};
      for (const role of ["admin", "operator", "viewer", "auditor", "robot"]) {
        acme[role] = await issue(t, "acme", role);
        globex[role] = await issue(t, "globex", role);
      }
      const defaultViewer = await issue(t, "default", "viewer");
      const defaultOperator = await issue(t, "default", "operator");

      // One robot per org vanishes; one acme job waits in the queue (no robot has "gpu").
      for (const [token, id] of [[acme.robot, "acme-r"], [globex.robot, "globex-r"]]) {
        const robot = new RawRobot(t.wsUrl, token, id);
        robots.push(robot);
        assert.equal((await robot.register()).payload.success, true);
        robot.kill();
      }
      const job = await call(t, acme.operator, "POST", "/api/v1/jobs", {
        workflow: WORKFLOW,
        required_capabilities: ["gpu"],
      });
      assert.equal(job.status, 201, job.text);
      await t.waitUntil(() => alerts.pending().length === 3);
      clock.advance(60_000);
      await t.waitUntil(() => alerts.list().length === 3);
      const byKind = (org: string, kind: string) =>
        alerts.list().find((a) => a.org_id === org && a.kind === kind)!;
      const acmeRobot = byKind("acme", "robot_disconnected");
      const acmeQueue = byKind("acme", "queue_backlog");
      const globexRobot = byKind("globex", "robot_disconnected");
      assert.deepEqual(acmeRobot.subject, { robot_id: "acme-r" });
      assert.deepEqual(globexRobot.subject, { robot_id: "globex-r" });
      assert.equal(acmeQueue.evidence.depth_at_raise, 1);
      assert.equal(
        alerts.list().filter((a) => a.kind === "queue_backlog").length,
        1,
        "globex's queue is empty: no backlog there",
      );

      // In the log: alert.raised names the org, so the stream is that org's.
      const [raised] = await store.readStream(`alert-${globexRobot.alert_id}`);
      assert.equal(raised.type, "alert.raised");
      assert.equal(raised.data.org_id, "globex");

      // Each org's readers see their own org's alerts, and only those.
      const ids = (r: { body: any }) => r.body.alerts.map((a: any) => a.alert_id).sort();
      for (const role of ["admin", "operator", "viewer"]) {
        const mine = await call(t, acme[role], "GET", "/api/v1/alerts");
        assert.equal(mine.status, 200, mine.text);
        assert.deepEqual(ids(mine), [acmeQueue.alert_id, acmeRobot.alert_id].sort(), role);
        assert.ok(!mine.text.includes("globex"), `acme ${role} sees nothing of globex`);
        const theirs = await call(t, globex[role], "GET", "/api/v1/alerts");
        assert.deepEqual(ids(theirs), [globexRobot.alert_id], role);
        const one = await call(t, acme[role], "GET", `/api/v1/alerts/${acmeRobot.alert_id}`);
        assert.equal(one.status, 200);
        assert.equal(one.body.org_id, "acme");
      }
      // Org default's operator and viewer are an org like another: none of theirs.
      for (const token of [defaultViewer, defaultOperator]) {
        assert.deepEqual((await call(t, token, "GET", "/api/v1/alerts")).body, { alerts: [] });
      }
      assert.equal((await call(t, acme.auditor, "GET", "/api/v1/alerts")).status, 403);
      assert.equal((await call(t, acme.robot, "GET", "/api/v1/alerts")).status, 403);

      // Another org's alert id: 404, exactly as an id that never existed; nothing is written.
      const unknownGet = await call(t, globex.viewer, "GET", "/api/v1/alerts/no-such-alert");
      const unknownAck = await call(
        t,
        globex.operator,
        "POST",
        "/api/v1/alerts/no-such-alert/acknowledge",
      );
      for (
        const [token, method, suffix, unknown] of [
          [globex.viewer, "GET", "", unknownGet],
          [globex.operator, "POST", "/acknowledge", unknownAck],
          [defaultOperator, "POST", "/acknowledge", unknownAck],
        ] as const
      ) {
        const res = await call(t, token, method, `/api/v1/alerts/${acmeRobot.alert_id}${suffix}`);
        assert.equal(res.status, 404, `${method} ${suffix}: ${res.text}`);
        assert.equal(
          res.text.replaceAll(acmeRobot.alert_id, "?"),
          unknown.text.replaceAll("no-such-alert", "?"),
        );
      }
      assert.equal(alerts.get(acmeRobot.alert_id)!.acknowledged_at, null);
      // Acknowledging: operator and admin of the alert's org; a viewer is refused (403).
      const byViewer = await call(
        t,
        acme.viewer,
        "POST",
        `/api/v1/alerts/${acmeRobot.alert_id}/acknowledge`,
      );
      assert.equal(byViewer.status, 403);
      const ack = await call(
        t,
        acme.operator,
        "POST",
        `/api/v1/alerts/${acmeRobot.alert_id}/acknowledge`,
        {
          note: "acme on it",
        },
      );
      assert.equal(ack.status, 200, ack.text);
      assert.equal(ack.body.status, "acknowledged");

      // The system admin (admin of org default) has the fleet-wide view, and acknowledges any.
      const all = await call(t, t.apiToken, "GET", "/api/v1/alerts");
      assert.deepEqual(
        all.body.alerts.map((a: any) => [a.org_id, a.kind]).sort(),
        [["acme", "queue_backlog"], ["acme", "robot_disconnected"], [
          "globex",
          "robot_disconnected",
        ]],
      );
      const sysAck = await call(
        t,
        t.apiToken,
        "POST",
        `/api/v1/alerts/${globexRobot.alert_id}/acknowledge`,
      );
      assert.equal(sysAck.status, 200, sysAck.text);
      assert.equal(sysAck.body.org_id, "globex");

      // The log: each org's auditor reads its own org's alert streams only.
      const alertStreams = async (token: string) =>
        new Set(
          (await call(t, token, "GET", "/api/v1/events?limit=1000")).body.events
            .map((e: any) => e.stream_id as string)
            .filter((s: string) => s.startsWith("alert-")),
        );
      assert.deepEqual(
        await alertStreams(acme.auditor),
        new Set([`alert-${acmeRobot.alert_id}`, `alert-${acmeQueue.alert_id}`]),
      );
      assert.deepEqual(
        await alertStreams(globex.auditor),
        new Set([`alert-${globexRobot.alert_id}`]),
      );

      // Webhooks are configured for the whole deployment; the body says whose alert it is.
      await t.waitUntil(() =>
        alerts.list().every((a) => a.deliveries.some((d) => d.outcome === "delivered"))
      );
      assert.deepEqual(
        hooks.map((h) => [h.alert.org_id, h.alert.kind]).sort(),
        [["acme", "queue_backlog"], ["acme", "robot_disconnected"], [
          "globex",
          "robot_disconnected",
        ]],
      );
    } finally {
      for (const robot of robots) robot.kill();
      await t.stop();
      await receiver.shutdown();
      await drop();
    }
  });
}
