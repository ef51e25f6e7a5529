/**
 * Issue 9, "Done when": 3 orchestrator processes in cluster mode on one PostgreSQL schema,
 * 30 real robots spread across them (each robot knows every node's URL), 2,000 zero-work
 * jobs submitted through all nodes, the leader SIGKILLed once half of them have ended.
 * Then: every accepted job ended exactly once and no job had two live leases
 * (`checkJobInvariants` over the whole log), a new leader recorded `leader.elected` within
 * 10 s of the kill, and the realtime stream (`/api/v1/stream`, SSE) of each surviving node
 * delivered every job's terminal event.
 *
 * `CLUSTER_JOBS` shrinks the run while developing.
 */
import assert from "node:assert/strict";
import { checkJobInvariants, TERMINAL_JOB_EVENTS } from "../audit/mod.ts";
import { LEADER_STREAM } from "../engine/mod.ts";
import {
  API_TOKEN,
  type Child,
  type FaultSite,
  freePort,
  openFaultSite,
  ROBOT_TOKEN,
  spawn,
  startOrchestratorProcess,
} from "./faults/_processes.ts";
import { watchLog } from "./faults/_log_watch.ts";
import { SseClient } from "./_sse_client.ts";

const JOBS = Number(Deno.env.get("CLUSTER_JOBS") ?? 2000);
const NODES = 3;
const ROBOTS = Number(Deno.env.get("CLUSTER_ROBOTS") ?? 30);
const SUBMITTERS = 24;
const WORKFLOW = { metadata: { name: "cluster-noop" }, nodes: {}, connections: [] };
const FLEET = new URL("./cluster/_cluster_fleet.ts", import.meta.url).pathname;

interface Node {
  name: string;
  url: string;
  wsUrl: string;
  site: FaultSite;
  proc: Child | null;
  /** Job ids whose terminal event this node's SSE stream delivered. */
  ended: Set<string>;
  sse: SseClient | null;
  reading: Promise<void>;
  /** Called after each message of the node's stream. */
  waiters: Set<() => void>;
}

/** Resolves once `predicate()` holds, checked after each message of the node's stream. */
function untilStream(n: Node, predicate: () => boolean, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate()) return;
      n.waiters.delete(check);
      resolve();
    };
    signal.addEventListener("abort", () => {
      n.waiters.delete(check);
      reject(new Error(`${n.name}'s stream: condition not reached`));
    }, { once: true });
    n.waiters.add(check);
    check();
  });
}

Deno.test({
  name: `cluster: 3 nodes, ${JOBS} jobs through all of them, the leader SIGKILLed half-way`,
  async fn() {
    const config = {
      ORCHESTRATOR_CLUSTER: "on",
      HEARTBEAT_INTERVAL: "2",
      HEARTBEAT_TIMEOUT: "10",
      RECONNECT_GRACE: "5",
    };
    const site = await openFaultSite({ config });
    const watch = watchLog(site.store);
    const nodes: Node[] = Array.from({ length: NODES }, (_, i) => {
      const port = i === 0 ? site.port : freePort();
      return {
        name: `node-${i + 1}`,
        url: `http://127.0.0.1:${port}`,
        wsUrl: `ws://127.0.0.1:${port}/ws/robot`,
        site: {
          ...site,
          port,
          env: { ...site.env, ORCHESTRATOR_PORT: String(port), NODE_ID: `node-${i + 1}` },
        },
        proc: null,
        ended: new Set(),
        sse: null,
        reading: Promise.resolve(),
        waiters: new Set(),
      };
    });
    let fleet: Child | null = null;
    const started = performance.now();
    try {
      // node-1 first, so that it is the first leader; the others in parallel.
      nodes[0].proc = await startOrchestratorProcess(nodes[0].site);
      await Promise.all(
        nodes.slice(1).map(async (n) => {
          n.proc = await startOrchestratorProcess(n.site);
        }),
      );
      await watch.until(() => watch.events > 0); // leader.elected of node-1
      const [first] = await site.store.readStream(LEADER_STREAM);
      assert.equal(first.data.node_id, "node-1");
      const leader = nodes[0];

      // Realtime subscribers on every node, from the start of the log.
      for (const n of nodes) {
        n.sse = await SseClient.open(`${n.url}/api/v1/stream?token=${API_TOKEN}`);
        assert.equal(n.sse.status, 200);
        const sse = n.sse;
        n.reading = (async () => {
          for (;;) {
            const m = await sse.next(AbortSignal.timeout(600_000)).catch(() => null);
            if (!m) return;
            if (m.event !== "message") continue;
            const e = JSON.parse(m.data);
            if (TERMINAL_JOB_EVENTS.has(e.type)) n.ended.add(String(e.stream_id).slice(4));
            for (const w of [...n.waiters]) w();
          }
        })();
      }

      fleet = spawn([
        "run",
        "-A",
        FLEET,
        "--urls",
        nodes.map((n) => n.wsUrl).join(","),
        "--count",
        String(ROBOTS),
        "--max-jobs",
        "2",
      ], { ROBOT_TOKEN });
      for (let i = 1; i <= ROBOTS; i++) {
        await fleet.waitFor(new RegExp(`registered cluster-robot-${i} `));
      }

      const readyMs = performance.now() - started;
      const alive = new Set(nodes);
      const submit = async (key: string, first: number): Promise<string> => {
        const failures: string[] = [];
        for (let tries = 0; tries < 60; tries++) {
          const candidates = nodes.filter((n) => alive.has(n));
          const node = candidates[(first + tries) % candidates.length];
          try {
            const res = await fetch(`${node.url}/api/v1/jobs`, {
              method: "POST",
              headers: {
                authorization: `Bearer ${API_TOKEN}`,
                "content-type": "application/json",
                "idempotency-key": key,
              },
              body: JSON.stringify({ workflow: WORKFLOW }),
            });
            const body = await res.json().catch(() => ({}));
            if ((res.status === 201 || res.status === 200) && typeof body.job_id === "string") {
              return body.job_id;
            }
            failures.push(`${node.name}: ${res.status} ${JSON.stringify(body)}`);
          } catch (error) {
            failures.push(`${node.name}: ${error}`); // the node died under the request
          }
        }
        throw new Error(`submission ${key} kept failing: ${failures.slice(-3).join("; ")}`);
      };

      const accepted = new Set<string>();
      let killedAt = 0;
      const killer = watch.until(
        () => watch.ended.size >= JOBS / 2,
        AbortSignal.timeout(300_000),
      ).then(async () => {
        killedAt = Date.now();
        alive.delete(leader);
        await leader.proc!.kill();
        leader.sse?.close();
      });
      let next = 0;
      await Promise.all(Array.from({ length: SUBMITTERS }, async (_, w) => {
        while (next < JOBS) {
          const i = next++;
          accepted.add(await submit(`cluster-${i}`, i + w));
        }
      }));
      assert.equal(accepted.size, JOBS, "a job id was answered for two keys");
      const submittedMs = performance.now() - started;
      await killer;
      await watch.until(
        () => [...accepted].every((id) => watch.ended.has(id)),
        AbortSignal.timeout(300_000),
      );
      const endedMs = performance.now() - started;

      // A new leader within 10 s of the kill, recorded by its fenced `leader.elected`. Every
      // node dispatches, so the jobs may all have ended before the old lease ran out: wait
      // for the term (bounded), then check when it began.
      const newer = (e: { data: Record<string, unknown> }) =>
        Number(e.data.token) > Number(first.data.token);
      await watch.until(() => watch.leaders.some(newer), AbortSignal.timeout(30_000))
        .catch(() => {});
      const terms = await site.store.readStream(LEADER_STREAM);
      const next_ = terms.find(newer)!;
      assert.ok(next_, "no new leader was elected within 30 s of the last job's end");
      assert.notEqual(next_.data.node_id, "node-1");
      const takeoverMs = next_.recordedAt.getTime() - killedAt;
      assert.ok(takeoverMs <= 10_000, `new leader after ${takeoverMs} ms`);

      // Every job ended exactly once, with never two live leases (the whole log).
      const report = await checkJobInvariants(site.store, { accepted });
      assert.deepEqual(report.violations, []);
      assert.equal(report.jobs, JOBS);
      assert.deepEqual(report.outcomes, { "job.completed": JOBS });

      // The surviving nodes' realtime subscribers saw every terminal event.
      for (const n of nodes.slice(1)) {
        const missing = () => [...accepted].filter((id) => !n.ended.has(id));
        await untilStream(n, () => missing().length === 0, AbortSignal.timeout(30_000))
          .catch(() => {});
        assert.deepEqual(missing(), [], `${n.name}'s stream missed terminal events`);
      }
      if (Deno.env.get("CLUSTER_STATS")) await printStats(site);
      const moved = (fleet.output().match(/registered /g) ?? []).length - ROBOTS;
      console.log(
        `${JOBS} jobs on ${NODES} nodes and ${ROBOTS} robots: nodes and robots ready at ${
          (readyMs / 1000).toFixed(1)
        } s, submitted at ${(submittedMs / 1000).toFixed(1)} s, all ended at ${
          (endedMs / 1000).toFixed(1)
        } s; new leader ${next_.data.node_id} ${takeoverMs} ms after the kill; ${moved} robot re-registrations; ${report.events} events`,
      );
    } catch (error) {
      for (const n of nodes) {
        console.error(`${n.name} output:\n${n.proc?.output().slice(-2000)}`);
      }
      throw error;
    } finally {
      for (const n of nodes) await n.sse?.close();
      await fleet?.kill();
      for (const n of nodes) await n.proc?.kill();
      await Promise.all(nodes.map((n) => n.reading));
      await watch.close();
      await site.drop();
    }
  },
});

/** Medians of each step of a job (ms, database clock), for `CLUSTER_STATS=1` runs. */
async function printStats(site: FaultSite): Promise<void> {
  const at = new Map<string, Map<string, number>>();
  const meta = new Map<string, number>();
  let after = 0;
  for (;;) {
    const page = await site.store.readAll({ after, limit: 5000 });
    if (!page.length) break;
    after = page.at(-1)!.globalPosition;
    for (const e of page) {
      if (!e.streamId.startsWith("job-")) continue;
      const m = at.get(e.streamId) ?? new Map();
      at.set(e.streamId, m);
      if (!m.has(e.type)) m.set(e.type, e.recordedAt.getTime());
      meta.set(e.type, (meta.get(e.type) ?? 0) + 1);
    }
  }
  const step = (a: string, b: string) => {
    const d = [...at.values()].filter((m) => m.has(a) && m.has(b)).map((m) => m.get(b)! - m.get(a)!)
      .sort((x, y) => x - y);
    return `${a}→${b} p50 ${d[d.length >> 1]} p90 ${d[Math.floor(d.length * 0.9)]} ms`;
  };
  console.log(
    [
      step("job.submitted", "job.dispatched"),
      step("job.dispatched", "job.started"),
      step("job.started", "job.completed"),
      JSON.stringify(Object.fromEntries(meta)),
    ].join("\n"),
  );
}
