// deno-lint-ignore-file no-explicit-any -- JSON bodies and messages in tests
/**
 * Two orgs side by side on one orchestrator, on both stores: each with its own real robots
 * (WebSocket `RobotClient`s registered with the org's `robot` token) and jobs. Jobs run only
 * on their org's robots, and neither org sees the other's robots, jobs, events or realtime
 * messages, over WebSocket (`/ws/realtime`) or Server-Sent Events (`/api/v1/stream`).
 */
import assert from "node:assert/strict";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { SseClient } from "./_sse_client.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };
const JOBS_PER_ORG = 3;

/** A realtime WebSocket client that queues every message. */
class RealtimeClient {
  readonly messages: any[] = [];
  #ws: WebSocket;
  #waiters: { match: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;

  constructor(url: string) {
    this.#ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.#ws.onopen = () => resolve();
      this.#ws.onerror = () => reject(new Error("websocket error"));
    });
    this.closed = new Promise((resolve) => (this.#ws.onclose = () => resolve()));
    this.#ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      this.messages.push(msg);
      for (const w of [...this.#waiters]) {
        if (w.match(msg)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    };
  }

  send(msg: unknown): void {
    this.#ws.send(JSON.stringify(msg));
  }

  /** The first message (already received or to come) that matches. */
  wait(match: (m: any) => boolean, signal = AbortSignal.timeout(20_000)): Promise<any> {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      this.#waiters.push(waiter);
      signal.addEventListener("abort", () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no message matched; got ${JSON.stringify(this.messages)}`));
      });
    });
  }

  close(): Promise<void> {
    this.#ws.close();
    return this.closed;
  }
}

interface Org {
  id: string;
  admin: string;
  operator: string;
  robots: RobotClient[];
  ws: RealtimeClient;
  sse: SseClient;
  jobs: string[];
}

async function issue(t: TestOrchestrator, org: string, role: string): Promise<string> {
  const res = await t.api("POST", "/api/v1/tokens", { org_id: org, role });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.token;
}

async function as(
  t: TestOrchestrator,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(t.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function openOrg(t: TestOrchestrator, id: string): Promise<Org> {
  const admin = await issue(t, id, "admin");
  const operator = await issue(t, id, "operator");
  const robotToken = await issue(t, id, "robot");
  const viewer = await issue(t, id, "viewer");
  const robots = [1, 2].map((n) =>
    new RobotClient({ url: t.wsUrl, token: robotToken, name: `${id}-r${n}`, logger: quietLogger })
  );
  for (const r of robots) await r.start();
  // A viewer follows the org's channels over WebSocket (token in the first message)…
  const ws = new RealtimeClient(t.wsUrl.replace("/ws/robot", "/ws/realtime"));
  await ws.opened;
  ws.send({ type: "auth", token: viewer });
  const ready = await ws.wait((m) => m.type === "ready");
  assert.equal(ready.org_id, id);
  ws.send({ type: "subscribe", channels: [`jobs:${id}`, `robots:${id}`] });
  await ws.wait((m) => m.type === "subscribed");
  // …and over Server-Sent Events (token in the query, as EventSource does).
  const sse = await SseClient.open(
    `${t.url}/api/v1/stream?channels=jobs:${id},robots:${id}&token=${viewer}`,
  );
  assert.equal(sse.status, 200);
  assert.equal((await sse.next()).event, "ready");
  return { id, admin, operator, robots, ws, sse, jobs: [] };
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] two orgs run side by side and never see each other's robots, jobs, events or realtime messages`, async () => {
    const { store, drop } = await backend.open();
    const t = await startOrchestrator(store);
    const orgs: Org[] = [];
    try {
      orgs.push(await openOrg(t, "north"), await openOrg(t, "south"));
      const workflow = JSON.parse(
        await Deno.readTextFile(new URL("stress_task_6.json", WORKFLOWS_DIR)),
      );
      for (let i = 0; i < JOBS_PER_ORG; i++) {
        for (const org of orgs) {
          const res = await as(t, org.operator, "POST", "/api/v1/jobs", { workflow });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          org.jobs.push(res.body.job_id);
        }
      }
      for (const org of orgs) {
        for (const jobId of org.jobs) {
          const job = await t.waitForJob(jobId, ["completed", "failed", "timeout", "cancelled"]);
          assert.equal(job.status, "completed");
          assert.ok(job.robot_id.startsWith(`${org.id}-`), `${jobId} ran on ${job.robot_id}`);
        }
      }
      for (const [org, other] of [[orgs[0], orgs[1]], [orgs[1], orgs[0]]]) {
        const foreign = [...other.jobs, ...other.robots.map((r) => r.robotId), other.id];
        const hasForeign = (value: unknown) => {
          const text = JSON.stringify(value);
          return foreign.filter((id) => text.includes(id));
        };
        // REST: lists and the log.
        const jobs = (await as(t, org.admin, "GET", "/api/v1/jobs")).body.jobs;
        assert.deepEqual(jobs.map((j: any) => j.job_id).sort(), [...org.jobs].sort());
        const robots = (await as(t, org.admin, "GET", "/api/v1/robots")).body.robots;
        assert.deepEqual(
          robots.map((r: any) => r.robot_id),
          org.robots.map((r) => r.robotId).sort(),
        );
        const events = (await as(t, org.admin, "GET", "/api/v1/events?limit=1000")).body.events;
        assert.ok(events.length >= JOBS_PER_ORG * 4, `${events.length} events`);
        assert.deepEqual(hasForeign(events), []);
        const dashboard = (await as(t, org.admin, "GET", "/api/v1/metrics/dashboard")).body;
        assert.equal(dashboard.total_robots, 2);
        assert.equal(dashboard.completed_jobs_today, JOBS_PER_ORG);
        for (const jobId of other.jobs) {
          assert.equal((await as(t, org.admin, "GET", `/api/v1/jobs/${jobId}`)).status, 404);
        }
        // WebSocket: every completion of its own jobs, once, in order, nothing else.
        for (const jobId of org.jobs) {
          await org.ws.wait((m) =>
            m.type === "event" && m.event.stream_id === `job-${jobId}` &&
            m.event.type === "job.completed"
          );
        }
        const delivered = org.ws.messages.filter((m) => m.type === "event");
        const positions = delivered.map((m) => m.position);
        assert.deepEqual(positions, [...new Set(positions)].sort((x, y) => x - y));
        assert.deepEqual(hasForeign(org.ws.messages), []);
        for (const m of delivered) {
          assert.ok(m.channels.every((c: string) => c.endsWith(`:${org.id}`)), m.channels);
        }
        // The same over SSE.
        const seen = new Set<string>();
        const sse: any[] = [];
        while (seen.size < org.jobs.length) {
          const m = await org.sse.next();
          if (m.event !== "message") continue;
          const e = JSON.parse(m.data);
          sse.push(e);
          if (e.type === "job.completed") seen.add(e.stream_id);
        }
        assert.deepEqual(hasForeign(sse), []);
        const ssePositions = sse.map((e) => e.global_position);
        assert.deepEqual(ssePositions, [...new Set(ssePositions)].sort((x, y) => x - y));
        // Another org's channels are refused, with a message saying why.
        org.ws.send({ type: "subscribe", channels: [`jobs:${other.id}`] });
        const refused = await org.ws.wait((m) => m.type === "error" && m.channel);
        assert.equal(refused.code, "forbidden");
        assert.match(refused.message, new RegExp(`not of your org \\(${org.id}\\)`));
        org.ws.send({ type: "subscribe", channels: [`progress:${other.jobs[0]}`] });
        const unknown = await org.ws.wait((m) =>
          m.type === "error" && m.channel === `progress:${other.jobs[0]}`
        );
        assert.equal(unknown.code, "not_found");
        const sseRefused = await fetch(
          `${t.url}/api/v1/stream?channels=robots:${other.id}&token=${org.admin}`,
        );
        assert.equal(sseRefused.status, 403);
        assert.equal((await sseRefused.json()).error.field, "channels");
        // Resume after a reconnect: from position 0, the same events, once, in order.
        const again = new RealtimeClient(
          `${t.wsUrl.replace("/ws/robot", "/ws/realtime")}?token=${org.admin}`,
        );
        await again.wait((m) => m.type === "ready");
        again.send({
          type: "subscribe",
          channels: [`jobs:${org.id}`, `robots:${org.id}`],
          after: 0,
        });
        const last = delivered[delivered.length - 1].position;
        await again.wait((m) => m.type === "event" && m.position === last);
        const replayed = again.messages.filter((m) => m.type === "event");
        const fromFirst = replayed.filter((m) => m.position >= delivered[0].position);
        assert.deepEqual(
          fromFirst.map((m) => m.position).slice(0, delivered.length),
          positions,
        );
        assert.deepEqual(hasForeign(again.messages), []);
        // progress:{job_id}: one job's whole history, its log lines included.
        again.send({ type: "unsubscribe", channels: [`jobs:${org.id}`, `robots:${org.id}`] });
        await again.wait((m) => m.type === "unsubscribed");
        const mark = again.messages.length;
        again.send({ type: "subscribe", channels: [`progress:${org.jobs[0]}`], after: 0 });
        await again.wait((m, i = again.messages.indexOf(m)) =>
          i >= mark && m.type === "event" && m.event.type === "job.completed"
        );
        const progress = again.messages.slice(mark).filter((m) => m.type === "event");
        assert.ok(progress.every((m) => m.event.stream_id === `job-${org.jobs[0]}`));
        assert.ok(progress.some((m) => m.event.type === "job.logged"));
        assert.deepEqual(
          progress.map((m) => m.event.stream_version),
          progress.map((_, i) => i + 1),
        );
        // An admin's broadcast reaches its org's subscribers (once), never the other org's.
        again.send({
          type: "broadcast",
          channel: `jobs:${org.id}`,
          event: "maintenance",
          data: { at: "tonight" },
        });
        const sent = await again.wait((m) => m.type === "broadcasted");
        const heard = await org.ws.wait((m) =>
          m.type === "event" && m.event.type === "realtime.broadcast"
        );
        assert.equal(heard.position, sent.position);
        assert.deepEqual(heard.channels, [`jobs:${org.id}`]);
        assert.deepEqual(heard.event.data.data, { at: "tonight" });
        const viewerBroadcast = org.ws.messages.length;
        org.ws.send({ type: "broadcast", channel: `jobs:${org.id}`, event: "x" });
        const denied = await org.ws.wait((m, i = org.ws.messages.indexOf(m)) =>
          i >= viewerBroadcast && m.type === "error"
        );
        assert.equal(denied.code, "forbidden");
        await again.close();
      }
      for (const org of orgs) {
        const broadcasts = org.ws.messages.filter((m) =>
          m.type === "event" && m.event.type === "realtime.broadcast"
        );
        assert.equal(broadcasts.length, 1, `${org.id} heard ${broadcasts.length} broadcasts`);
      }
    } finally {
      for (const org of orgs) {
        await org.ws.close();
        await org.sse.close();
        for (const r of org.robots) await r.close();
      }
      await t.stop();
      await drop();
    }
  });
}
