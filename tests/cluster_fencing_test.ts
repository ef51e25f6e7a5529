/**
 * Fencing of the leader's periodic writes (cluster mode, PostgreSQL): a former leader that
 * was paused and comes back, still believing it leads, cannot record a schedule tick, a
 * tick's job or a seal: each is refused by the fencing check in its own transaction. And
 * the store's `seal({guard})`, on both stores, writes nothing when its guard throws.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { ManualClock } from "../engine/clock.ts";
import { Scheduler } from "../schedules/mod.ts";
import { type Clock, FencedError, LEADER_STREAM } from "../engine/mod.ts";
import {
  createPostgresClient,
  openEventStore,
  type SqlClient,
  type StreamAppend,
} from "../events/mod.ts";
import {
  pgliteBackend,
  postgresBackend,
  startOrchestrator,
  TEST_DATABASE_URL,
  type TestOrchestrator,
} from "./_harness.ts";

const WORKFLOW = { metadata: { name: "fenced-tick" }, nodes: {}, connections: [] };

/** A client whose statements wait at a gate once `pause()` is called (a paused process). */
function pausable(client: SqlClient): { client: SqlClient; pause(): void; resume(): void } {
  let gate: PromiseWithResolvers<void> | null = null;
  const wrapped = new Proxy(client, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if ((key === "query" || key === "transaction") && typeof value === "function") {
        return async (...args: unknown[]) => {
          if (gate) await gate.promise;
          return value.apply(target, args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    client: wrapped,
    pause: () => (gate = Promise.withResolvers()),
    resume: () => {
      gate?.resolve();
      gate = null;
    },
  };
}

Deno.test("cluster: a paused former leader that comes back cannot record a schedule tick, its job or a seal (FencedError)", async () => {
  const schema = `cf_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const clients: SqlClient[] = [];
  const nodes: TestOrchestrator[] = [];
  const start = async (name: string, clock: Clock | undefined, sealInterval: number) => {
    const store = await openEventStore({
      databaseUrl: TEST_DATABASE_URL,
      dataDir: "unused",
      schema,
      maxConnections: 4,
    });
    const raw = await createPostgresClient({ url: TEST_DATABASE_URL, schema, max: 2 });
    clients.push(raw);
    const control = pausable(raw);
    const node = await startOrchestrator(
      store,
      { heartbeatInterval: 600, heartbeatTimeout: 3600, sealInterval },
      clock,
      {
        cluster: {
          client: control.client,
          nodeId: name,
          leaseMs: 1500,
          renewMs: 300,
          nodeIntervalMs: 300,
        },
      },
    );
    nodes.push(node);
    return { node, control };
  };
  const resumes: (() => void)[] = [];
  try {
    // A leads on a clock of its own that stands still: the process is paused from here.
    const clockA = new ManualClock(Date.now());
    const { node: a, control: aControl } = await start("node-a", clockA, 1);
    resumes.push(aControl.resume);
    assert.equal(a.orchestrator.cluster!.status().leader_token, 1);
    // A daily schedule whose tick is 6 h away: B, on the real clock, never reaches it in
    // this test, so only A can try to record it.
    const t0 = clockA.now();
    const tickAt = Math.ceil((t0 + 6 * 3600_000) / 60_000) * 60_000;
    const at = new Date(tickAt);
    const created = await a.api("POST", "/api/v1/schedules", {
      schedule_id: "daily",
      workflow: WORKFLOW,
      cron_expression: `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`,
    });
    assert.equal(created.status, 201);

    // B, on the real clock, takes over once A's lease has run out (A did not renew).
    const b = (await start("node-b", undefined, 0)).node;
    const bTerm = await new Promise<{ token: number }>((resolve) => {
      const off = b.orchestrator.onLeader((term) => {
        queueMicrotask(() => off());
        resolve(term);
      });
    });
    assert.equal(bTerm.token, 2);
    // A still believes it leads (its clock has not reached its lease's end).
    assert.equal(a.orchestrator.cluster!.isLeader, true);

    // A comes back: its election round cannot reach the database yet (paused network),
    // its timers fire: the seal (after 1 s), then the schedule's tick (6 h on), both
    // written as leader of term 1.
    const seals: Promise<unknown>[] = [];
    const tickWrites: Promise<unknown>[] = [];
    const firstTickWrite = Promise.withResolvers<void>();
    const store = a.store;
    const seal = store.seal.bind(store);
    const append = store.append.bind(store);
    store.seal = (options) => {
      const p = seal(options);
      seals.push(p);
      return p;
    };
    store.append = (writes: StreamAppend[], options) => {
      const p = append(writes, options);
      if (writes.some((w) => /^(schedule|job)-/.test(w.streamId))) {
        tickWrites.push(p);
        firstTickWrite.resolve();
      }
      return p;
    };
    aControl.pause();
    clockA.advance(1000);
    assert.equal(seals.length, 1);
    await assert.rejects(
      seals[0],
      (error) => error instanceof FencedError && error.token === 1 && error.currentToken === 2,
    );
    // The scheduler waits in chunks: move on in steps until the tick is due.
    while (clockA.now() < tickAt) {
      clockA.advance(Math.min(600_000, tickAt - clockA.now()));
      await a.orchestrator.scheduler.idle();
    }
    // The tick's job is refused (so its `schedule.fired` never comes).
    const timeout = AbortSignal.timeout(10_000);
    await Promise.race([
      firstTickWrite.promise,
      new Promise((_, reject) => timeout.addEventListener("abort", () => reject(timeout.reason))),
    ]);
    await a.orchestrator.scheduler.idle();
    for (const write of tickWrites) await assert.rejects(write, FencedError);

    // Nothing of A's term 1 was written: no seal, no tick, no job of A's as leader.
    // (SQL, not readAll: the log's gap-safe reads wait for every open transaction of the
    // database, e.g. another session's bulk load.)
    const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql.unsafe(
        `select count(*) filter (where type = 'audit.sealed')::int as seals,
           count(*) filter (where metadata->>'leader_node' = 'node-a')::int as by_a
         from ${schema}.events`,
      );
      assert.deepEqual({ ...row }, { seals: 0, by_a: 0 });
    } finally {
      await sql.end();
    }
    const elected = await b.store.readStream(LEADER_STREAM);
    assert.deepEqual(elected.map((e) => [e.data.node_id, e.data.token]), [
      ["node-a", 1],
      ["node-b", 2],
    ]);
    const schedule = await b.store.readStream("schedule-daily");
    assert.deepEqual(schedule.map((e) => e.type), ["schedule.added"]);
  } finally {
    for (const resume of resumes) resume();
    for (const node of nodes) await node.stop().catch(() => {});
    for (const client of clients) await client.close();
    const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
    } finally {
      await sql.end();
    }
  }
});

for (const backend of [pgliteBackend, postgresBackend]) {
  Deno.test(`[${backend.name}] seal({guard}): a guard that throws leaves the log as it was`, async () => {
    const { store, drop } = await backend.open();
    try {
      await store.append([{
        streamId: "s-1",
        expectedVersion: 0,
        events: [{ type: "t.x", data: {} }],
      }]);
      const refused = new FencedError(
        "orchestrator",
        1,
        { token: 2, holder: "b" },
        "another term has begun",
      );
      await assert.rejects(store.seal({ guard: () => Promise.reject(refused) }), FencedError);
      assert.deepEqual(await store.readStream("audit-seals"), []);
      const seal = await store.seal({ guard: () => Promise.resolve() });
      assert.equal(seal.written, true);
      assert.equal((await store.readStream("audit-seals")).length, 1);
    } finally {
      await store.close();
      await drop();
    }
  });
}

for (const backend of [pgliteBackend, postgresBackend]) {
  Deno.test(`[${backend.name}] Scheduler with a leader fence: a refused fence records no tick; the API commands are not fenced`, async () => {
    const { store, drop } = await backend.open();
    const clock = new ManualClock(Date.parse("2026-01-01T12:00:00Z"));
    let term: number | null = null; // null: this node's term is over
    const errors: unknown[] = [];
    const jobs: string[] = [];
    const scheduler = new Scheduler({
      store,
      clock,
      submitJob: (input) => (jobs.push(input.job_id), Promise.resolve(input)),
      onError: (error) => errors.push(error),
      leaderFence: () => ({
        check: () =>
          term === null
            ? Promise.reject(
              new FencedError("orchestrator", 1, { token: 2, holder: "b" }, "another term"),
            )
            : Promise.resolve(),
        metadata: () => ({ leader_node: "a", leader_token: term }),
      }),
    });
    try {
      await scheduler.start();
      await scheduler.add({ workflow: WORKFLOW, cron_expression: "* * * * * *", schedule_id: "s" });
      clock.advance(1000);
      await scheduler.idle();
      assert.ok(errors.length >= 1 && errors.every((e) => e instanceof FencedError));
      assert.deepEqual((await store.readStream("schedule-s")).map((e) => e.type), [
        "schedule.added",
      ]);
      term = 1;
      clock.advance(1000); // the retry of 12:00:01, then 12:00:02
      await scheduler.idle();
      clock.advance(1000);
      await scheduler.idle();
      const fired = (await store.readStream("schedule-s")).filter((e) =>
        e.type === "schedule.fired"
      );
      assert.ok(fired.length >= 1);
      for (const e of fired) assert.deepEqual(e.metadata.leader_token, 1);
    } finally {
      await scheduler.stop();
      await store.close();
      await drop();
    }
  });
}
