/**
 * Cluster mode in one process: several orchestrators on one PostgreSQL schema, each with
 * its own event store and cluster pool, robots connected to different nodes over real
 * WebSockets. What the 3-process test (`tests/cluster_test.ts`) shows at scale, here one
 * mechanism at a time: dispatch across nodes, concurrent dispatch decided by stream
 * versions, leader failover and fencing, a dead node's robots moving or being requeued.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { checkJobInvariants } from "../audit/mod.ts";
import { type ClusterOptions, FencedError, LEADER_STREAM } from "../engine/mod.ts";
import { createPostgresClient, openEventStore, type SqlClient } from "../events/mod.ts";
import { RobotClient } from "../robot/mod.ts";
import { executeWorkflow, type WorkflowExecutor } from "../robot/workflow_engine.ts";
import {
  pgliteBackend,
  startOrchestrator,
  TEST_DATABASE_URL,
  type TestOrchestrator,
} from "./_harness.ts";
import { findPgbouncer, startPgbouncer } from "./_pgbouncer.ts";

const NOOP = { metadata: { name: "cluster-noop" }, nodes: {}, connections: [] };
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

interface Site {
  nodes: TestOrchestrator[];
  /** Starts one more node on the schema. */
  node(
    name: string,
    config?: Record<string, unknown>,
    cluster?: Partial<ClusterOptions>,
  ): Promise<TestOrchestrator>;
  robot(name: string, urls: string[], extra?: Record<string, unknown>): Promise<RobotClient>;
  close(): Promise<void>;
}

function openSite(db: { url: string; pooler?: "transaction" } = { url: TEST_DATABASE_URL }): Site {
  const schema = `c_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const clients: SqlClient[] = [];
  const robots: RobotClient[] = [];
  const site: Site = {
    nodes: [],
    async node(name, config = {}, cluster = {}) {
      const store = await openEventStore({
        databaseUrl: db.url,
        dataDir: "unused",
        schema,
        maxConnections: 4,
        pooler: db.pooler,
      });
      const client = await createPostgresClient({
        url: db.url,
        schema,
        max: 2,
        pooler: db.pooler,
      });
      clients.push(client);
      const node = await startOrchestrator(store, { heartbeatInterval: 1, ...config }, undefined, {
        cluster: {
          client,
          nodeId: name,
          leaseMs: 1500,
          renewMs: 300,
          nodeIntervalMs: 300,
          ...cluster,
        },
      });
      site.nodes.push(node);
      return node;
    },
    async robot(name, urls, extra = {}) {
      const robot = new RobotClient({
        url: urls[0],
        urls,
        token: "test-robot-token",
        name,
        maxConcurrentJobs: 2,
        reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
        logger: quiet,
        ...extra,
      });
      robots.push(robot);
      await robot.start();
      return robot;
    },
    async close() {
      await Promise.all(robots.map((r) => r.close()));
      for (const node of site.nodes) await node.stop().catch(() => {});
      for (const client of clients) await client.close();
      const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
      } finally {
        await sql.end();
      }
    },
  };
  return site;
}

/** An executor that holds every run until `open()` (or its cancellation). */
function gatedExecutor(): { executor: WorkflowExecutor; open: () => void } {
  const gate = Promise.withResolvers<void>();
  return {
    executor: async (content, options) => {
      await Promise.race([
        gate.promise,
        new Promise((resolve) => options.signal?.addEventListener("abort", resolve)),
      ]);
      return executeWorkflow(content, options);
    },
    open: () => gate.resolve(),
  };
}

/** Resolves with the node's term once it becomes the leader. */
function leaderOf(node: TestOrchestrator) {
  return new Promise<{ token: number }>((resolve) => {
    const off = node.orchestrator.cluster!.onLeader((leadership) => {
      queueMicrotask(() => off());
      resolve(leadership);
    });
  });
}

Deno.test("cluster: a job submitted on node A runs on node B's robot; both nodes see it end; one leader", async () => {
  const site = openSite();
  try {
    const a = await site.node("node-a");
    const aLeads = await leaderOf(a);
    const b = await site.node("node-b");
    await site.robot("robot-b", [b.wsUrl]);
    const submitted = await a.api("POST", "/api/v1/jobs", { workflow: NOOP });
    assert.equal(submitted.status, 201);
    const jobId = submitted.body.job_id;
    const onA = await a.waitForJob(jobId, ["completed"]);
    const onB = await b.waitForJob(jobId, ["completed"]);
    assert.equal(onA.robot_id, "robot-b");
    assert.equal(onB.robot_id, "robot-b");
    // The log records which node holds the robot; only node A leads.
    assert.equal(a.orchestrator.core.robots.get("robot-b")?.snapshot.context.node_id, "node-b");
    assert.equal(aLeads.token, 1);
    assert.equal(a.orchestrator.cluster!.isLeader, true);
    assert.equal(b.orchestrator.cluster!.isLeader, false);
    const health = await b.api("GET", "/healthz");
    assert.deepEqual(health.body.cluster, {
      node_id: "node-b",
      leader: false,
      leader_token: null,
    });
    const elected = await a.store.readStream(LEADER_STREAM);
    assert.deepEqual(elected.map((e) => [e.type, e.data.node_id, e.data.token]), [
      ["leader.elected", "node-a", 1],
    ]);
  } finally {
    await site.close();
  }
});

Deno.test("cluster: two nodes racing for the same queued jobs never assign one twice", async () => {
  const site = openSite();
  try {
    const a = await site.node("node-a");
    const b = await site.node("node-b");
    // Each node plans only for its own robots here, as if neither saw the other's: both
    // go for the head of the queue, and only the job's stream version decides.
    a.orchestrator.dispatcher.remoteRobots = () => [];
    b.orchestrator.dispatcher.remoteRobots = () => [];
    for (const [name, node] of [["ra1", a], ["ra2", a], ["rb1", b], ["rb2", b]] as const) {
      await site.robot(name, [node.wsUrl]);
    }
    const accepted: string[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 15; i++) {
        const node = (i + w) % 2 ? a : b;
        const res = await node.api("POST", "/api/v1/jobs", { workflow: NOOP });
        assert.equal(res.status, 201);
        accepted.push(res.body.job_id);
      }
    }));
    // 120 jobs take 5-8 s here; the bound is for a machine shared with other work. When it
    // is reached, the jobs still open and their events say where they stood.
    const open = () => accepted.filter((id) => !a.orchestrator.core.isTerminal(id));
    await a.waitUntil(() => open().length === 0, AbortSignal.timeout(60_000)).catch(async (e) => {
      for (const id of open().slice(0, 3)) {
        const events = await a.store.readStream(`job-${id}`);
        console.error(`job ${id} still open:`, events.map((x) => x.type).join(", "));
      }
      throw new Error(`${open().length} jobs did not end: ${e}`);
    });
    const report = await checkJobInvariants(a.store, { accepted });
    assert.deepEqual(report.violations, []);
    assert.deepEqual(report.outcomes, { "job.completed": accepted.length });
    let dispatched = 0;
    for (const id of accepted) {
      const events = await a.store.readStream(`job-${id}`);
      const count = events.filter((e) => e.type === "job.dispatched").length;
      assert.equal(count, 1, `job ${id} dispatched ${count} times`);
      dispatched += count;
    }
    assert.equal(dispatched, accepted.length);
  } finally {
    await site.close();
  }
});

Deno.test("cluster: the leader's node stops; another takes over with a larger token and the old term's writes are refused", async () => {
  const site = openSite();
  try {
    const a = await site.node("node-a");
    await leaderOf(a);
    const b = await site.node("node-b");
    const bLeads = leaderOf(b);
    const runs: string[] = [];
    for (const [name, node] of [["a", a], ["b", b]] as const) {
      node.orchestrator.onLeader((term) => {
        runs.push(`${name} starts ${term.token}`);
        return () => runs.push(`${name} stops`);
      });
    }
    const aCluster = a.orchestrator.cluster!;
    // Node A dies as far as the others can tell: no more lease renewals or heartbeats.
    await aCluster.elector.stop();
    await aCluster.registry.stop();
    const term = await bLeads;
    assert.equal(term.token, 2);
    assert.equal(aCluster.isLeader, false);
    assert.deepEqual(runs, ["a starts 1", "a stops", "b starts 2"]);
    // A write A would make as leader is refused by the fencing check in its transaction.
    await a.api("POST", "/api/v1/jobs", { workflow: NOOP });
    const jobId = [...a.orchestrator.core.jobs.keys()][0];
    const before = await a.store.readStream(`job-${jobId}`);
    await assert.rejects(
      a.orchestrator.core.commit(
        [{
          streamId: `job-${jobId}`,
          events: [{
            type: "job.cancelled",
            data: { cancelled_at: new Date().toISOString(), reason: "x" },
          }],
        }],
        {},
        { asLeader: true },
      ),
      FencedError,
    );
    assert.equal((await a.store.readStream(`job-${jobId}`)).length, before.length);
    const elected = await b.store.readStream(LEADER_STREAM);
    assert.deepEqual(elected.map((e) => [e.data.node_id, e.data.token]), [
      ["node-a", 1],
      ["node-b", 2],
    ]);
  } finally {
    await site.close();
  }
});

Deno.test("cluster: a robot whose node dies moves to another node with its running job, which is not run again", async () => {
  const site = openSite();
  try {
    const a = await site.node("node-a");
    const b = await site.node("node-b");
    const gate = gatedExecutor();
    const robot = await site.robot("mover", [a.wsUrl, b.wsUrl], { executor: gate.executor });
    const res = await b.api("POST", "/api/v1/jobs", { workflow: NOOP });
    const jobId = res.body.job_id;
    await b.waitForJob(jobId, ["running"]);
    const moved = new Promise<void>((resolve) =>
      robot.on("registered", () => robot.url === b.wsUrl && resolve())
    );
    await a.stop({ keepStore: false }); // closes the robot's socket; a writes nothing more
    await moved;
    gate.open();
    const view = await b.waitForJob(jobId, ["completed"]);
    assert.equal(view.robot_id, "mover");
    const events = await b.store.readStream(`job-${jobId}`);
    assert.deepEqual(events.map((e) => e.type).filter((t) => t !== "job.progressed"), [
      "job.submitted",
      "job.queued",
      "job.dispatched",
      "job.started",
      "job.completed",
    ]);
    assert.equal(b.orchestrator.core.robots.get("mover")?.snapshot.context.node_id, "node-b");
  } finally {
    await site.close();
  }
});

Deno.test("cluster: the leader requeues the jobs of a robot whose node died and that never came back", async () => {
  const site = openSite();
  try {
    const config = { heartbeatInterval: 0.2, heartbeatTimeout: 1, reconnectGrace: 0.5 };
    const a = await site.node("node-a", config);
    await leaderOf(a);
    const b = await site.node("node-b", config);
    const gate = gatedExecutor();
    // Robot "lost" knows only node B: when B dies it never comes back.
    await site.robot("lost", [b.wsUrl], { executor: gate.executor });
    const res = await a.api("POST", "/api/v1/jobs", { workflow: NOOP, robot_id: "lost" });
    const jobId = res.body.job_id;
    await a.waitForJob(jobId, ["running"]);
    // Node B dies: its heartbeat stops and its sockets close, and it writes nothing more.
    await b.stop();
    const view = await a.waitForJob(jobId, ["queued"]);
    assert.equal(view.robot_id, null);
    const events = await a.store.readStream(`job-${jobId}`);
    const requeue = events.find((e) => e.type === "job.queued" && e.streamVersion > 2)!;
    assert.match(String(requeue.data.reason), /robot_lost: node_lost: node-b/);
    assert.equal(requeue.metadata.leader_node, "node-a");
    assert.equal(requeue.metadata.leader_token, 1);
    await a.waitUntil(() => a.orchestrator.core.robotStatus("lost") === "offline");
    const robotEvents = await a.store.readStream("robot-lost");
    assert.deepEqual(robotEvents.at(-1)?.data.node_id, "node-b");
    assert.equal(robotEvents.at(-1)?.metadata.leader_token, 1);
    gate.open();
  } finally {
    await site.close();
  }
});

Deno.test("cluster: what one node decides for another node's robot reaches it: deadline, cancel, pause", async () => {
  const site = openSite();
  try {
    const a = await site.node("node-a");
    await leaderOf(a);
    const b = await site.node("node-b");
    const gate = gatedExecutor();
    const robot = await site.robot("far", [b.wsUrl], { executor: gate.executor });
    const cancelSent = (jobId: string) =>
      new Promise<string>((resolve) =>
        robot.on("message", (env) => {
          if (env.type === "cancel_job" && env.payload.job_id === jobId) {
            resolve(String(env.payload.reason));
          }
        })
      );
    // The leader (node A) keeps the deadline; node B holds the socket and sends cancel_job.
    const late = await a.api("POST", "/api/v1/jobs", {
      workflow: NOOP,
      timeout: 1,
      retry: { max_retries: 0 },
    });
    const lateCancel = cancelSent(late.body.job_id);
    const timedOut = await a.waitForJob(late.body.job_id, ["timeout"]);
    assert.equal(timedOut.robot_id, "far");
    assert.equal(await lateCancel, "timeout");
    // A cancel asked on node A.
    const job = await a.api("POST", "/api/v1/jobs", { workflow: NOOP });
    await a.waitForJob(job.body.job_id, ["running"]);
    const jobCancel = cancelSent(job.body.job_id);
    assert.equal((await a.api("POST", `/api/v1/jobs/${job.body.job_id}/cancel`)).status, 202);
    await jobCancel;
    // A pause asked on node A.
    const paused = new Promise<void>((resolve) => robot.on("paused", () => resolve()));
    assert.equal((await a.api("POST", "/api/v1/robots/far/pause")).status, 200);
    await paused;
    gate.open();
  } finally {
    await site.close();
  }
});

const pgbouncer = findPgbouncer();

Deno.test({
  name:
    "[pgbouncer transaction mode] cluster: two nodes elect a leader; a job on A runs on B's robot",
  ignore: !pgbouncer,
  async fn() {
    const pooler = await startPgbouncer(pgbouncer!);
    const site = openSite({ url: pooler.url, pooler: "transaction" });
    try {
      const a = await site.node("node-a");
      assert.equal((await leaderOf(a)).token, 1);
      const b = await site.node("node-b");
      await site.robot("pooled-b", [b.wsUrl]);
      const res = await a.api("POST", "/api/v1/jobs", { workflow: NOOP });
      const view = await a.waitForJob(res.body.job_id, ["completed"]);
      assert.equal(view.robot_id, "pooled-b");
      assert.equal(b.orchestrator.cluster!.isLeader, false);
    } finally {
      await site.close();
      await pooler.stop();
    }
  },
});

Deno.test("onLeader: a single node runs leader-only work at once and stops it with the node", async () => {
  const { store, drop } = await pgliteBackend.open();
  const t = await startOrchestrator(store);
  const seen: string[] = [];
  try {
    t.orchestrator.onLeader((leadership) => {
      seen.push(`start ${leadership.token}`);
      return () => seen.push("stop");
    });
    assert.deepEqual(seen, ["start 0"]);
  } finally {
    await t.stop();
    await drop();
  }
  assert.deepEqual(seen, ["start 0", "stop"]);
});
