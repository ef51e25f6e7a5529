/**
 * Tamper evidence, end to end on both backends: an untouched log verifies clean, and each
 * way of editing history with SQL is caught and named by stream and version. Each test
 * opens a fresh store plus a raw SQL connection to the same database (the tampering).
 */

import assert from "node:assert/strict";
import {
  createPgliteClient,
  createPostgresClient,
  createSqlEventStore,
  eventHash,
  GENESIS_HASH,
  migrateEventsSchema,
  openEventStore,
  SEAL_HEADS_EVENT_TYPE,
  SEAL_STREAM,
  type SqlEventStore,
  type SqlTx,
  type StreamAppend,
} from "../events/mod.ts";
import { sealLog, verifyLog, type VerifyLogOptions, type VerifyProblem } from "../audit/mod.ts";

const DATABASE_URL = Deno.env.get("DATABASE_URL_TEST") ??
  "postgres://postgres@127.0.0.1:5432/test";

interface Fixture {
  store: SqlEventStore;
  /** SQL on the same database, outside the store: the tamperer. */
  sql: SqlTx;
  /** Postgres only: the schema of the store. */
  schema?: string;
}

interface Backend {
  name: string;
  open(): Promise<{ fixture: Fixture; dispose(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    name: "pglite",
    async open() {
      // The store's own client doubles as the tamperer: PGlite has one connection.
      const client = await createPgliteClient({ dataDir: "memory://" });
      await migrateEventsSchema(client);
      const store = createSqlEventStore(client);
      return { fixture: { store, sql: client }, dispose: () => store.close() };
    },
  },
  {
    name: "postgres",
    async open() {
      const schema = `audit_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
      const store = await openEventStore({
        databaseUrl: DATABASE_URL,
        dataDir: "unused",
        schema,
        maxConnections: 4,
      });
      const sql = await createPostgresClient({ url: DATABASE_URL, schema, max: 2 });
      return {
        fixture: { store, sql, schema },
        async dispose() {
          try {
            await store.close();
            await sql.query(`drop schema if exists "${schema}" cascade`);
          } finally {
            await sql.close();
          }
        },
      };
    },
  },
];

function append(streamId: string, expectedVersion: number, count: number): StreamAppend {
  return {
    streamId,
    expectedVersion,
    events: Array.from({ length: count }, (_, i) => ({
      type: "job.logged",
      data: { n: expectedVersion + i + 1, message: `line ${expectedVersion + i + 1}` },
      metadata: { by: "test" },
    })),
  };
}

/** job-a: 3 events, job-b: 4 events, robot-1: 2 events, in several appends. */
async function seed(store: SqlEventStore): Promise<void> {
  await store.append([append("job-a", 0, 2), append("job-b", 0, 1)]);
  await store.append([append("job-b", 1, 3)]);
  await store.append([append("robot-1", 0, 2), append("job-a", 2, 1)]);
}

/** Small pages, so that streams straddle page boundaries. */
const PAGED: VerifyLogOptions = { pageSize: 3 };

function assertProblem(
  problem: VerifyProblem | undefined,
  expected: Pick<VerifyProblem, "streamId" | "version" | "kind">,
): void {
  assert.ok(problem, `expected a problem ${JSON.stringify(expected)}`);
  assert.deepEqual(
    { streamId: problem.streamId, version: problem.version, kind: problem.kind },
    expected,
    problem.message,
  );
  assert.ok(problem.message.includes(expected.streamId), problem.message);
}

type Case = [name: string, run: (f: Fixture) => Promise<void>];

const cases: Case[] = [
  ["an untouched log verifies clean, sealed or not, with tricky JSON", async ({ store }) => {
    assert.deepEqual(await verifyLog(store), { ok: true, streams: 0, events: 0, problems: [] });
    await seed(store);
    await store.append([{
      streamId: "job-\u{1f600}",
      expectedVersion: 0,
      events: [{
        type: "job.submitted",
        data: {
          z: 1,
          a: [1e21, -0, 0.1 + 0.2, 5e-324, 2 ** 60, -1.5e-7, true, null, { y: [], x: {} }],
          "\u20ac": 'tab\t quote" back\\ line\u2028 emoji \u{1f600} é',
          "": "",
          nested: { b: { d: 1, c: 2 }, a: "x" },
        },
        metadata: { "10": 1, "9": 2, "a b": "c" },
      }],
    }]);
    const unsealed = await verifyLog(store, PAGED);
    assert.deepEqual(unsealed, { ok: true, streams: 4, events: 10, problems: [] });
    const seal = await sealLog(store);
    assert.deepEqual([seal.written, seal.streams, seal.events], [true, 4, 10]);
    const progress: number[] = [];
    const sealed = await verifyLog(store, { ...PAGED, onProgress: (p) => progress.push(p.events) });
    assert.equal(sealed.ok, true, JSON.stringify(sealed.problems));
    assert.deepEqual([sealed.streams, sealed.events], [5, 11]);
    assert.deepEqual(sealed.seal?.version, seal.version);
    assert.deepEqual(sealed.seal?.hash, seal.hash);
    assert.deepEqual(progress, [3, 6, 9, 11]);
  }],
  ["each stored hash chains from its predecessor's", async ({ store }) => {
    await seed(store);
    const chain = await store.readChain({ streamId: "job-b" });
    assert.deepEqual(chain.map((e) => e.streamVersion), [1, 2, 3, 4]);
    let previous = GENESIS_HASH;
    for (const event of chain) {
      assert.match(event.hash!, /^[0-9a-f]{64}$/);
      assert.equal(event.hash, eventHash(previous, event));
      previous = event.hash!;
    }
    const { events } = await store.append([append("job-b", 4, 1)]);
    const [fifth] = await store.readChain({ after: { streamId: "job-b", streamVersion: 4 } });
    assert.equal(fifth.eventId, events[0].eventId);
    assert.equal(fifth.hash, eventHash(previous, fifth));
  }],
  ["changing one event's data with SQL is reported as altered", async ({ store, sql }) => {
    await seed(store);
    await sealLog(store);
    await sql.query(
      `update events set data = jsonb_set(data, '{n}', '99')
       where stream_id = 'job-b' and stream_version = 2`,
    );
    const result = await verifyLog(store, PAGED);
    assert.equal(result.ok, false);
    assertProblem(result.firstProblem, { streamId: "job-b", version: 2, kind: "altered" });
    assert.equal(result.problems.length, 1, "the next events chain from the stored hash");
  }],
  ["changing type, metadata or event id is reported as altered", async ({ store, sql }) => {
    await seed(store);
    await sql.query(
      "update events set type = 'job.failed' where stream_id = 'job-a' and stream_version = 3",
    );
    await sql.query(
      `update events set metadata = '{"by":"mallory"}'
       where stream_id = 'job-b' and stream_version = 1`,
    );
    await sql.query(
      `update events set event_id = gen_random_uuid()
       where stream_id = 'robot-1' and stream_version = 2`,
    );
    const { problems } = await verifyLog(store, PAGED);
    assert.equal(problems.length, 3);
    assertProblem(problems[0], { streamId: "job-a", version: 3, kind: "altered" });
    assertProblem(problems[1], { streamId: "job-b", version: 1, kind: "altered" });
    assertProblem(problems[2], { streamId: "robot-1", version: 2, kind: "altered" });
  }],
  ["deleting an event in the middle of a stream is reported as removed", async (f) => {
    await seed(f.store);
    await f.sql.query("delete from events where stream_id = 'job-b' and stream_version = 2");
    const result = await verifyLog(f.store, PAGED);
    assertProblem(result.firstProblem, { streamId: "job-b", version: 2, kind: "removed" });
    await f.sql.query("delete from events where stream_id = 'job-a' and stream_version = 1");
    assertProblem((await verifyLog(f.store)).firstProblem, {
      streamId: "job-a",
      version: 1,
      kind: "removed",
    });
  }],
  ["deleting the last events of a stream after a seal is reported as tail_removed", async (f) => {
    await seed(f.store);
    await sealLog(f.store);
    await f.sql.query("delete from events where stream_id = 'job-b' and stream_version >= 3");
    const result = await verifyLog(f.store, PAGED);
    assert.equal(result.ok, false);
    assertProblem(result.firstProblem, { streamId: "job-b", version: 3, kind: "tail_removed" });
    assert.equal(result.problems.length, 1);
  }],
  ["deleting a whole sealed stream is reported as tail_removed at version 1", async (f) => {
    await seed(f.store);
    await sealLog(f.store);
    await f.store.append([append("job-z", 0, 1)]); // a stream after it, in id order
    await f.sql.query("delete from events where stream_id = 'robot-1'");
    const { problems } = await verifyLog(f.store, PAGED);
    assert.equal(problems.length, 1);
    assertProblem(problems[0], { streamId: "robot-1", version: 1, kind: "tail_removed" });
  }],
  ["swapping two events' versions is reported as reordered", async ({ store, sql }) => {
    await seed(store);
    for (const [from, to] of [[2, 1000], [3, 2], [1000, 3]]) {
      await sql.query(
        `update events set stream_version = $2::int8
         where stream_id = 'job-b' and stream_version = $1::int8`,
        [from, to],
      );
    }
    const result = await verifyLog(store, PAGED);
    assertProblem(result.firstProblem, { streamId: "job-b", version: 2, kind: "reordered" });
  }],
  [
    "a stream rewritten with recomputed hashes disagrees with the seal",
    async ({ store, sql }) => {
      await seed(store);
      await sealLog(store);
      // The tamperer knows the algorithm: edit version 2, then recompute 2…4.
      const chain = await store.readChain({ streamId: "job-b" });
      let previous = chain[0].hash!;
      for (const event of chain.slice(1)) {
        if (event.streamVersion === 2) event.data = { ...event.data, n: 99 };
        previous = eventHash(previous, event);
        await sql.query(
          `update events set data = $1::text::jsonb, hash = decode($2, 'hex')
           where stream_id = 'job-b' and stream_version = $3::int8`,
          [JSON.stringify(event.data), previous, event.streamVersion],
        );
      }
      const result = await verifyLog(store, PAGED);
      assertProblem(result.firstProblem, { streamId: "job-b", version: 4, kind: "altered" });
      assert.match(result.firstProblem!.message, /seal/);
    },
  ],
  [
    "an event moved below the seal's horizon is reported as added after sealing",
    async ({ store, sql }) => {
      await seed(store);
      await sealLog(store);
      await store.append([append("job-a", 3, 1), append("job-new", 0, 1)]);
      assert.equal((await verifyLog(store)).ok, true);
      await sql.query("update events set transaction_id = '3'::xid8 where stream_id like 'job-%'");
      const { problems } = await verifyLog(store, PAGED);
      assertProblem(problems[0], { streamId: "job-a", version: 4, kind: "altered" });
      assertProblem(problems[1], { streamId: "job-new", version: 1, kind: "altered" });
    },
  ],
  [
    "an anchor catches the deletion of the latest seal with the tail it covered",
    async ({ store, sql }) => {
      await seed(store);
      await sealLog(store);
      await store.append([append("job-b", 4, 2)]);
      const anchor = await sealLog(store);
      await sql.query("delete from events where stream_id = 'job-b' and stream_version > 4");
      await sql.query(
        "delete from events where stream_id = $1 and stream_version >= $2::int8",
        [SEAL_STREAM, anchor.version],
      );
      assert.equal((await verifyLog(store)).ok, true, "without an anchor this is invisible");
      const result = await verifyLog(store, { ...PAGED, anchor: anchor });
      assertProblem(result.firstProblem, {
        streamId: SEAL_STREAM,
        version: anchor.version,
        kind: "tail_removed",
      });
    },
  ],
  [
    "seal() writes nothing when nothing changed, and splits many heads over events",
    async ({ store, sql }) => {
      const first = await sealLog(store);
      assert.deepEqual([first.written, first.streams, first.events], [true, 0, 0]);
      assert.deepEqual(await store.seal(), { ...first, written: false });
      const streams = Array.from(
        { length: 3000 },
        (_, i) => append(`job-${String(i).padStart(6, "0")}-${"x".repeat(24)}`, 0, 1),
      );
      await store.append(streams);
      const seal = await store.seal();
      assert.deepEqual([seal.written, seal.streams, seal.events], [true, 3001, 3001]);
      assert.equal(seal.changedHeads, 3001);
      const sealEvents = await store.readStream(SEAL_STREAM);
      assert.ok(sealEvents.some((e) => e.type === SEAL_HEADS_EVENT_TYPE), "heads were split");
      assert.equal((await verifyLog(store)).ok, true);
      await sql.query("delete from events where stream_id = $1", [streams[1234].streamId]);
      assertProblem((await verifyLog(store)).firstProblem, {
        streamId: streams[1234].streamId,
        version: 1,
        kind: "tail_removed",
      });
    },
  ],
  ["a seal's heads that do not hash to its heads_hash are reported", async ({ store, sql }) => {
    await seed(store);
    const seal = await sealLog(store);
    await sql.query(
      `update events set data = jsonb_set(data, '{heads,0,1}', '1')
       where stream_id = $1 and stream_version = $2::int8`,
      [SEAL_STREAM, seal.version],
    );
    const { problems } = await verifyLog(store);
    assertProblem(problems[0], { streamId: SEAL_STREAM, version: seal.version, kind: "altered" });
    assert.match(problems[0].message, /heads_hash/);
  }],
];

for (const backend of BACKENDS) {
  for (const [name, run] of cases) {
    Deno.test(`${backend.name}: ${name}`, async () => {
      const { fixture, dispose } = await backend.open();
      try {
        await run(fixture);
      } finally {
        await dispose();
      }
    });
  }
}

Deno.test("deno task verify exits 0 on a clean log and 1 naming the first bad event", async () => {
  const { fixture, dispose } = await BACKENDS[1].open();
  const verify = async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../audit/verify_main.ts", import.meta.url).pathname],
      env: { DATABASE_URL, DATABASE_SCHEMA: fixture.schema! },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) +
      new TextDecoder().decode(output.stderr);
    return { code: output.code, text };
  };
  try {
    await seed(fixture.store);
    await sealLog(fixture.store);
    const clean = await verify();
    assert.equal(clean.code, 0, clean.text);
    assert.match(clean.text, /10 events in 4 streams/);
    assert.match(clean.text, /OK/);
    await fixture.sql.query(
      "update events set data = '{}' where stream_id = 'robot-1' and stream_version = 2",
    );
    const bad = await verify();
    assert.equal(bad.code, 1, bad.text);
    assert.match(bad.text, /FAILED: stream robot-1 version 2: altered/);
  } finally {
    await dispose();
  }
});
