/**
 * Leader election through the database: one leader among candidates, takeover within 10 s
 * of the leader stopping, and fencing of the old leader's writes. PostgreSQL (each elector
 * with its own connections, like separate nodes) and PGlite (one shared client). Time is a
 * ManualClock: nothing here waits for real time.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  FencedError,
  LeaderElector,
  type Leadership,
  ManualClock,
  runFenced,
} from "../engine/mod.ts";
import { createPgliteClient, createPostgresClient, type SqlClient } from "../events/mod.ts";
import { TEST_DATABASE_URL } from "./_harness.ts";

interface Nodes {
  /** One client per node (the same one on PGlite). */
  clients: [SqlClient, SqlClient];
  close(): Promise<void>;
}

const backends: { name: string; open(): Promise<Nodes> }[] = [
  {
    name: "pglite",
    async open() {
      const client = await createPgliteClient({ dataDir: "memory://" });
      return { clients: [client, client], close: () => client.close() };
    },
  },
  {
    name: "postgres",
    async open() {
      const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      const open = () => createPostgresClient({ url: TEST_DATABASE_URL, schema, max: 2 });
      const clients: [SqlClient, SqlClient] = [await open(), await open()];
      return {
        clients,
        async close() {
          await Promise.all(clients.map((c) => c.close()));
          const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
          try {
            await sql.unsafe(`drop schema if exists ${schema} cascade`);
          } finally {
            await sql.end();
          }
        },
      };
    },
  },
];

/** Moves the shared clock in steps of `stepMs`, letting every elector finish its round. */
async function advance(
  clock: ManualClock,
  electors: LeaderElector[],
  totalMs: number,
  stepMs = 500,
  until?: () => boolean,
): Promise<number> {
  let moved = 0;
  while (moved < totalMs && !until?.()) {
    clock.advance(stepMs);
    moved += stepMs;
    for (const e of electors) await e.idle();
  }
  return moved;
}

for (const backend of backends) {
  Deno.test(`[${backend.name}] two electors: one wins, the other follows; the leader renews its term`, async () => {
    const nodes = await backend.open();
    const clock = new ManualClock();
    const a = new LeaderElector({ client: nodes.clients[0], name: "dispatch", nodeId: "a", clock });
    const b = new LeaderElector({ client: nodes.clients[1], name: "dispatch", nodeId: "b", clock });
    try {
      await a.start();
      await b.start();
      assert.equal(a.leadership?.token, 1);
      assert.equal(b.leadership, null);
      await advance(clock, [a, b], 30_000);
      assert.equal(a.leadership?.token, 1, "renewed, same term");
      assert.equal(b.leadership, null);
      // Another election is independent.
      const other = new LeaderElector({
        client: nodes.clients[1],
        name: "schedules",
        nodeId: "b",
        clock,
      });
      assert.equal((await other.campaign())?.token, 1);
    } finally {
      await a.stop();
      await b.stop();
      await nodes.close();
    }
  });

  Deno.test(`[${backend.name}] a leader that stops renewing is replaced within 10 s; its fenced write is refused`, async () => {
    const nodes = await backend.open();
    const clock = new ManualClock();
    const changes: [string, Leadership | null][] = [];
    const elector = (nodeId: string, client: SqlClient) =>
      new LeaderElector({
        client,
        name: "dispatch",
        nodeId,
        clock,
        onChange: (l) => changes.push([nodeId, l]),
      });
    const a = elector("a", nodes.clients[0]);
    const b = elector("b", nodes.clients[1]);
    try {
      await nodes.clients[0].query("create table if not exists decisions (token int8, by text)");
      await a.start();
      await b.start();
      await advance(clock, [a, b], 4_700); // some renewals, then a dies between two of them
      const old = a.leadership!;
      assert.equal(old.token, 1);
      await runFenced(
        nodes.clients[0],
        { name: "dispatch", nodeId: "a", token: old.token, clock },
        (tx) => tx.query("insert into decisions values ($1::int8, 'a')", [old.token]),
      );

      await a.stop(); // SIGKILL, as far as the lease can tell: no more renewals, no release
      const diedAt = clock.now();
      await advance(clock, [b], 20_000, 500, () => b.leadership !== null);
      const took = clock.now() - diedAt;
      assert.ok(took <= 10_000, `took over after ${took} ms`);
      const next = b.leadership!;
      assert.equal(next.token, 2, "a new term has a larger token");
      assert.deepEqual(changes.map(([n, l]) => [n, l?.token ?? null]), [
        ["a", 1],
        ["a", null],
        ["b", 2],
      ]);

      // a comes back believing it still leads with token 1: its write is refused, unrun.
      let ran = false;
      await assert.rejects(
        runFenced(
          nodes.clients[0],
          { name: "dispatch", nodeId: "a", token: old.token, clock },
          async (tx) => {
            ran = true;
            await tx.query("insert into decisions values ($1::int8, 'a')", [old.token]);
          },
        ),
        (error: unknown) =>
          error instanceof FencedError && error.token === 1 && error.currentToken === 2 &&
          error.currentHolder === "b",
      );
      assert.equal(ran, false);
      await runFenced(
        nodes.clients[1],
        { name: "dispatch", nodeId: "b", token: next.token, clock },
        (tx) => tx.query("insert into decisions values ($1::int8, 'b')", [next.token]),
      );
      const rows = await nodes.clients[1].query<{ token: number; by: string }>(
        "select token, by from decisions order by token",
      );
      assert.deepEqual(rows.map((r) => [Number(r.token), r.by]), [[1, "a"], [2, "b"]]);

      // A lease that ran out fences its holder even before anyone takes over.
      await b.stop();
      clock.advance(6_000);
      await assert.rejects(
        runFenced(
          nodes.clients[1],
          { name: "dispatch", nodeId: "b", token: next.token, clock },
          () => Promise.resolve(),
        ),
        /the lease has run out/,
      );
    } finally {
      await a.stop();
      await b.stop();
      await nodes.close();
    }
  });

  Deno.test(`[${backend.name}] a leader that releases its lease is replaced at the next round`, async () => {
    const nodes = await backend.open();
    const clock = new ManualClock();
    const a = new LeaderElector({ client: nodes.clients[0], name: "dispatch", nodeId: "a", clock });
    const b = new LeaderElector({ client: nodes.clients[1], name: "dispatch", nodeId: "b", clock });
    try {
      await a.start();
      await b.start();
      await a.stop({ release: true });
      const took = await advance(clock, [b], 10_000, 100, () => b.leadership !== null);
      assert.ok(took <= 2_000, `took over after ${took} ms`);
      assert.equal(b.leadership?.token, 2);
    } finally {
      await b.stop();
      await nodes.close();
    }
  });
}

Deno.test("LeaderElector refuses a renewal interval that is not below the lease", () => {
  assert.throws(
    () =>
      new LeaderElector({
        client: {} as SqlClient,
        name: "x",
        nodeId: "a",
        leaseMs: 1000,
        renewMs: 1000,
      }),
    RangeError,
  );
});
