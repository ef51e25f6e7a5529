/**
 * Event store benchmark: `deno task bench:store [--seconds S] [--backend all|postgres|pglite]`.
 *
 * On the local PostgreSQL (`DATABASE_URL_TEST`, default the `test` database, in a fresh
 * schema) and on PGlite (files in a temporary folder), in one run, measures:
 * - the physical limit: raw single-row INSERTs (one per transaction) into a plain table of
 *   the same shape as `events`, on 1 connection and (Postgres) 8, and raw 100-row INSERTs;
 * - our `append()` at 1 event per transaction (1 caller and, on Postgres, 8 concurrent
 *   callers, with and without NOTIFY), and batched (100 events per call);
 * - `readAll()` throughput against a raw keyset read of the plain table;
 * - `scanAll()` (bulk read) and a full replay into the read models (`replayLog`), against
 *   the same raw read;
 * - single append latency (p50, p99) against a raw single INSERT's;
 * - `verifyLog()` throughput and the duration of one `seal()`.
 *
 * The machine is shared and its load moves, so each of our figures is measured in rounds
 * interleaved with its raw counterpart (raw, ours, raw, ours…; `--rounds`, default 3, of
 * `--seconds`, default 1, each) and both are the medians of their rounds. Prints each
 * figure with its ratio to the raw one and writes `bench/results/store-<date>.json`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  createPgliteClient,
  createPostgresClient,
  createSqlEventStore,
  migrateEventsSchema,
  type SqlClient,
  type SqlEventStore,
} from "../events/mod.ts";
import { verifyLog } from "../audit/mod.ts";
import { replayLog } from "../engine/mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    backend: { type: "string", default: "all" },
  },
});
const SECONDS = Number(args.values.seconds);
const ROUNDS = Number(args.values.rounds);
const DATABASE_URL = Deno.env.get("DATABASE_URL_TEST") ??
  "postgres://postgres@127.0.0.1:5432/test";
const CALLERS = 8;
const BATCH = 100;

/** The shape of `events`, without the store around it. */
const RAW_TABLE = [
  `create table raw_events (
    global_position bigserial primary key,
    stream_id text not null,
    stream_version bigint not null check (stream_version > 0),
    event_id uuid not null unique,
    type text not null,
    data jsonb not null,
    metadata jsonb not null default '{}',
    recorded_at timestamptz not null default now(),
    transaction_id xid8 not null default pg_current_xact_id(),
    hash bytea not null check (octet_length(hash) = 32),
    unique (stream_id, stream_version)
  )`,
  "create index on raw_events (transaction_id, global_position)",
];

/** A typical event payload (`job.queued`-like), about 150 bytes of JSON. */
function payload(i: number): Record<string, unknown> {
  return {
    job_id: `0b6f1c2e-${String(i).padStart(4, "0")}-4a51-9d8e-3f2a1b0c9d8e`,
    priority: i % 4,
    queued_at: "2026-11-29T10:58:44.123Z",
    reason: "submitted",
  };
}
const PAYLOAD_JSON = JSON.stringify(payload(0));
const METADATA = { by: "bench" };
const HASH = "ab".repeat(32);

interface Figure {
  name: string;
  value: number;
  unit: "events/s" | "ms";
  raw?: number;
}

/** Runs `callers` loops of `op` for SECONDS; returns events per second. */
async function throughput(
  callers: number,
  op: (caller: number, i: number) => Promise<number>,
): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000;
  let events = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: callers }, async (_, caller) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const done = await op(caller, i); // not `events += await …`: that reads events first
      events += done;
    }
  }));
  return events / ((performance.now() - started) / 1000);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

/**
 * Runs the measurements in ROUNDS interleaved rounds (a, b, c, a, b, c…) so that a change of
 * the machine's load hits all of them alike; returns the median of each.
 */
async function interleaved(...measures: (() => Promise<number>)[]): Promise<number[]> {
  const samples: number[][] = measures.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, measure] of measures.entries()) samples[i].push(await measure());
  }
  return samples.map(median);
}

/** Runs `op` sequentially `count` times; returns the latencies in ms. */
async function latencies(count: number, op: (i: number) => Promise<unknown>) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await op(i);
    samples.push(performance.now() - start);
  }
  return samples;
}

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

let unique = 0;
const rawInsert = (sql: SqlClient, rows: number) => {
  const params: unknown[] = [];
  const values: string[] = [];
  const stream = `raw-${unique++}`;
  for (let v = 1; v <= rows; v++) {
    const b = params.length;
    params.push(stream, v, crypto.randomUUID(), "job.queued", PAYLOAD_JSON, '{"by":"bench"}', HASH);
    values.push(
      `($${b + 1}, $${b + 2}::int8, $${b + 3}::uuid, $${b + 4}, $${b + 5}::text::jsonb, ` +
        `$${b + 6}::text::jsonb, decode($${b + 7}, 'hex'))`,
    );
  }
  return sql.query(
    `insert into raw_events (stream_id, stream_version, event_id, type, data, metadata, hash)
     values ${values.join(", ")}`,
    params,
  ).then(() => rows);
};

async function run(name: "postgres" | "pglite") {
  let client: SqlClient;
  let cleanup: () => Promise<void>;
  if (name === "postgres") {
    const schema = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    client = await createPostgresClient({ url: DATABASE_URL, schema, max: CALLERS + 2 });
    cleanup = async () => {
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.close();
    };
  } else {
    const dir = await Deno.makeTempDir({ prefix: "bench-store-" });
    client = await createPgliteClient({ dataDir: dir });
    cleanup = async () => {
      await client.close();
      await Deno.remove(dir, { recursive: true });
    };
  }
  const figures: Figure[] = [];
  const add = (figure: Figure) => {
    figures.push(figure);
    const ratio = figure.raw === undefined ? "" : `${(figure.value / figure.raw).toFixed(2)}× raw`;
    console.log(
      `${name.padEnd(8)} ${figure.name.padEnd(40)} ${
        figure.value.toFixed(figure.unit === "ms" ? 3 : 0).padStart(10)
      } ${figure.unit.padEnd(8)} ${ratio}`,
    );
  };
  try {
    await migrateEventsSchema(client);
    for (const statement of RAW_TABLE) await client.query(statement);
    const stores: SqlEventStore[] = [
      createSqlEventStore(client),
      createSqlEventStore(client, { notify: false }),
    ];
    const [store, silent] = stores;
    const versions = new Map<string, number>();
    const appendOne = (s: SqlEventStore, streamId: string, i: number) => {
      const expectedVersion = versions.get(streamId) ?? 0;
      versions.set(streamId, expectedVersion + 1);
      return s.append([{
        streamId,
        expectedVersion,
        events: [{ type: "job.queued", data: payload(i), metadata: METADATA }],
      }]).then(() => 1);
    };

    // Each figure of ours interleaved with its physical limit; every call in fresh streams.
    const [raw1, single] = await interleaved(
      () => throughput(1, () => rawInsert(client, 1)),
      () => throughput(1, (_, i) => appendOne(store, `single-${name}`, i)),
    );
    add({ name: "raw INSERT, 1 row/tx, 1 connection", value: raw1, unit: "events/s" });
    add({ name: "append, 1 event/tx, 1 caller", value: single, unit: "events/s", raw: raw1 });
    if (name === "postgres") {
      const [raw8, many, quiet] = await interleaved(
        () => throughput(CALLERS, () => rawInsert(client, 1)),
        () => throughput(CALLERS, (c, i) => appendOne(store, `many-${c}`, i)),
        () => throughput(CALLERS, (c, i) => appendOne(silent, `quiet-${c}`, i)),
      );
      const rawName = `raw INSERT, 1 row/tx, ${CALLERS} connections`;
      add({ name: rawName, value: raw8, unit: "events/s" });
      const manyName = `append, 1 event/tx, ${CALLERS} callers`;
      add({ name: manyName, value: many, unit: "events/s", raw: raw8 });
      add({ name: `${manyName}, no NOTIFY`, value: quiet, unit: "events/s", raw: raw8 });
    }
    let batchNo = 0;
    const [rawBatch, batched] = await interleaved(
      () => throughput(1, () => rawInsert(client, BATCH)),
      () =>
        throughput(1, () =>
          store.append([{
            streamId: `batch-${name}-${batchNo++}`,
            expectedVersion: 0,
            events: Array.from({ length: BATCH }, (_, i) => ({
              type: "job.logged",
              data: payload(i),
              metadata: METADATA,
            })),
          }]).then(() => BATCH)),
    );
    add({ name: `raw INSERT, ${BATCH} rows/statement`, value: rawBatch, unit: "events/s" });
    add({ name: `append, ${BATCH} events/call`, value: batched, unit: "events/s", raw: rawBatch });

    const timedRead = async (page: (after: number) => Promise<number[]>) => {
      const start = performance.now();
      let read = 0;
      for (let after = 0;;) {
        const positions = await page(after);
        if (positions.length === 0) break;
        read += positions.length;
        after = positions.at(-1)!;
      }
      return read / ((performance.now() - start) / 1000);
    };
    const [rawRead, readAll] = await interleaved(
      () =>
        timedRead(async (after) =>
          (await client.query<{ global_position: number }>(
            `select global_position, stream_id, stream_version, event_id, type, data, metadata,
               recorded_at from raw_events where global_position > $1::int8
             order by global_position limit 1000`,
            [after],
          )).map((row) => row.global_position)
        ),
      () =>
        timedRead(async (after) =>
          (await store.readAll({ after, limit: 1000 })).map((e) => e.globalPosition)
        ),
    );
    const [{ count: total }] = await client.query<{ count: number }>(
      "select count(*)::int8 as count from events",
    );
    add({ name: "raw SELECT, pages of 1000", value: rawRead, unit: "events/s" });
    add({
      name: `readAll, pages of 1000 (${total} events)`,
      value: readAll,
      unit: "events/s",
      raw: rawRead,
    });

    // Replay: the bulk read (`scanAll`) and a full fold into fresh read models
    // (`replayLog`, what start-up and `deno task replay` do), against the same raw read.
    const [rawRead2, scanned, replayed] = await interleaved(
      () =>
        timedRead(async (after) =>
          (await client.query<{ global_position: number }>(
            `select global_position, stream_id, stream_version, event_id, type, data, metadata,
               recorded_at from raw_events where global_position > $1::int8
             order by global_position limit 1000`,
            [after],
          )).map((row) => row.global_position)
        ),
      async () => {
        const start = performance.now();
        let read = 0;
        for await (const page of store.scanAll()) read += page.length;
        return read / ((performance.now() - start) / 1000);
      },
      async () => {
        const { events, elapsedMs } = await replayLog(store);
        return events / (elapsedMs / 1000);
      },
    );
    add({
      name: `scanAll, pages of 1000 (${total} events)`,
      value: scanned,
      unit: "events/s",
      raw: rawRead2,
    });
    add({ name: "replay into the read models", value: replayed, unit: "events/s", raw: rawRead2 });
    console.log(
      `${name.padEnd(8)} replay / target (200,000 events/s): ${(replayed / 200_000).toFixed(2)}`,
    );

    const rawSamples: number[] = [];
    const ourSamples: number[] = [];
    const perRound = name === "postgres" ? 300 : 150;
    await interleaved(
      async () => rawSamples.push(...await latencies(perRound, () => rawInsert(client, 1))),
      async () =>
        ourSamples.push(
          ...await latencies(perRound, (i) => appendOne(store, `latency-${name}`, i)),
        ),
    );
    const rawP50 = percentile(rawSamples, 0.5);
    add({ name: "raw INSERT latency p50", value: rawP50, unit: "ms" });
    add({
      name: "append latency p50",
      value: percentile(ourSamples, 0.5),
      unit: "ms",
      raw: rawP50,
    });
    add({
      name: "append latency p99",
      value: percentile(ourSamples, 0.99),
      unit: "ms",
      raw: percentile(rawSamples, 0.99),
    });

    let start: number;
    start = performance.now();
    const seal = await store.seal();
    add({
      name: `seal (${seal.events} events, ${seal.streams} streams)`,
      value: performance.now() - start,
      unit: "ms",
    });
    start = performance.now();
    const verified = await verifyLog(store);
    if (!verified.ok) throw new Error(`bench log does not verify: ${verified.firstProblem}`);
    add({
      name: `verifyLog (${verified.events} events)`,
      value: verified.events / ((performance.now() - start) / 1000),
      unit: "events/s",
    });
    return { backend: name, seconds_per_round: SECONDS, rounds: ROUNDS, figures };
  } finally {
    await cleanup();
  }
}

const backends = args.values.backend === "all"
  ? ["postgres", "pglite"] as const
  : [args.values.backend as "postgres" | "pglite"];
const results = [];
for (const backend of backends) results.push(await run(backend));

await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(
  `./results/store-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.json`,
  import.meta.url,
);
await Deno.writeTextFile(
  file,
  JSON.stringify({ at: new Date().toISOString(), deno: Deno.version.deno, results }, null, 2) +
    "\n",
);
console.log(`written to ${file.pathname}`);
