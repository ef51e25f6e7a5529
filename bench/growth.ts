/**
 * Growth of the live `events` table (issue 9, item 5): how the operations that must stay
 * fast behave at 1 M, 10 M and 100 M rows on PostgreSQL.
 *
 *   nice -n 19 ionice -c3 deno task bench:growth [--sizes 1000000,10000000,100000000]
 *     [--schema growth_bench] [--keep] [--seal-max 10000000] [--bulk-indexes-above 10000000]
 *
 * Fill: rows are written by SQL (`insert … select … from generate_series(…)`, 10,000 rows
 * per transaction) as the history of completed jobs: 7 events per job, 5 in the job's
 * stream (`job.submitted` with the workflow as `POST /api/v1/jobs` records it, `queued`,
 * `dispatched`, `started`, `completed`) and 2 in one of 100 robot streams
 * (`robot.job_assigned`, `robot.job_released`), the JSON of the real events. **Their
 * hashes are synthetic** (`sha256` of the row number, not the chain of the stream): the fill
 * is the old past whose size is measured, not verified. The fill's database session is
 * reniced (`renice 19`, `ionice -c3`) so it yields to everything else on the machine. For a
 * step above `--bulk-indexes-above` rows the secondary indexes (event id, stream and version,
 * transaction order) are dropped before the fill and built again after it (faster than
 * keeping them up to date row by row; the indexes measured are then freshly built, without
 * the bloat of row-by-row inserts).
 *
 * Measured at each size, through the real store (`openEventStore`, hashes chained) unless
 * said otherwise:
 * - append: 300 single-event appends in sequence (60 new jobs' 5 events, each with its
 *   expected version), p50/p99 ms;
 * - readStream: 200 reads of a random filled job stream, p50/p99 ms;
 * - readAll from the recent past (what a subscription does): the last 10,000 events from
 *   `position - 10,000`, pages of 1,000, ms;
 * - seal: `store.seal()`, ms: the first seal of the filled log (no previous seal: it
 *   aggregates every event below its horizon and fills the `sealed_heads` cache); above
 *   `--seal-max` rows only that aggregate query is timed on the server
 *   (`select count(*) from (…)`: the same scan, without sending every stream's head to the
 *   process);
 * - seal after 10,000 new events (2,000 new job streams of 5 events, up to `--seal-max`):
 *   `store.seal()`, ms (it reads the events since the previous seal's horizon and the
 *   cached heads), and, for comparison, the same seal by the full aggregate that every seal
 *   ran before the cache (`sealInTx` with `fullScan`, rolled back), ms; the incremental
 *   seal's heads hash and streams must equal those of the full aggregate;
 * - archive of a batch: `archiveStreams` of the 1,000 oldest job streams (7,000 rows,
 *   5,000 in job streams), ms;
 * - table, toast and each index size (`pg_relation_size`), bytes.
 *
 * Writes `bench/results/growth-<date>.json` after every size (a run cut short keeps what it
 * measured) and prints a table. Drops the schema (and its archive schema) at the end unless
 * `--keep`; a run that fails or is killed keeps it, and the next run on it resumes the fill
 * after the last committed batch.
 *
 * @module
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "../tests/_harness.ts";
import {
  canonicalJson,
  createSqlEventStore,
  DEFAULT_MAX_EVENT_BYTES,
  fullScanHeads,
  headsHash,
  openEventStore,
} from "../events/mod.ts";
import { createPostgresClient } from "../events/postgres_client.ts";
import { archiveStreams } from "../events/archive_streams.ts";
// The seal's transaction itself, to time the full-aggregate seal and roll it back.
import { sealInTx } from "../events/_seal_in_tx.ts";
import { submittedData } from "./_bulk_log.ts";
import { percentile, resultPath } from "./fleet.ts";

/**
 * Rows per fill transaction: short transactions, because an open one holds back the
 * gap-safe reads (`readAll`) of every event log on the server, other schemas' included
 * (the horizon is the server's oldest running transaction).
 */
const FILL_BATCH = 10_000;
/** Robot streams the fill spreads jobs over. */
const FILL_ROBOTS = 100;
const T = "2026-06-01T12:00:00.000Z";

/** Data of the 7 events of a filled job; `__ID__` is the job id, `__R__` the robot id. */
function fillTemplates(): { types: string[]; data: string[] } {
  const lease = "00000000-0000-4000-8000-000000000000";
  const result = {
    status: "completed",
    outputs: {},
    logs: [],
    execution_time: 0,
    node_results: {},
    error: null,
  };
  const events: [string, Record<string, unknown>][] = [
    ["job.submitted", submittedData("__ID__")],
    ["job.queued", { queued_at: T, reason: "submitted" }],
    ["job.dispatched", {
      robot_id: "__R__",
      lease_id: lease,
      attempt: 1,
      dispatched_at: T,
      deadline: "2026-06-01T13:00:00.000Z",
    }],
    ["robot.job_assigned", { job_id: "__ID__", lease_id: lease }],
    ["job.started", { lease_id: lease, started_at: T }],
    ["job.completed", { lease_id: lease, completed_at: T, result }],
    ["robot.job_released", { job_id: "__ID__", reason: "completed" }],
  ];
  return { types: events.map(([t]) => t), data: events.map(([, d]) => canonicalJson(d)) };
}

/** Secondary indexes of `events`: name and how to build it again. */
const SECONDARY = [
  [
    "events_event_id_key",
    "alter table events add constraint events_event_id_key unique (event_id)",
  ],
  [
    "events_stream_version_key",
    "alter table events add constraint events_stream_version_key unique (stream_id, stream_version)",
  ],
  [
    "events_transaction_order_idx",
    "create index events_transaction_order_idx on events (transaction_id, global_position)",
  ],
] as const;

/**
 * Row `n` (0-based) of the fill: job `n / 7`, event `n % 7` of the job. The next row number
 * is kept in `growth_fill` in the same statement, so a run cut short resumes where its last
 * committed batch ended.
 */
const FILL_SQL = `
  with batch as (insert into events (stream_id, stream_version, event_id, type, data, metadata, hash)
  select
    case when k in (3, 6) then 'robot-f' || (j % ${FILL_ROBOTS}) else 'job-f' || j end,
    case k when 3 then (j / ${FILL_ROBOTS}) * 2 + 1 when 6 then (j / ${FILL_ROBOTS}) * 2 + 2
      when 4 then 4 when 5 then 5 else k + 1 end,
    gen_random_uuid(),
    ($3::text[])[k + 1],
    replace(replace(($4::text[])[k + 1], '__ID__', 'f' || j), '__R__',
      'f' || (j % ${FILL_ROBOTS}))::jsonb,
    '{}'::jsonb,
    sha256(int8send(n))
  from (select n, n / 7 as j, (n % 7)::int as k from generate_series($1::int8, $2::int8) n) s
  order by n)
  update growth_fill set next_row = $2::int8 + 1`;

interface SizeResult {
  rows: number;
  fill_seconds: number;
  fill_rows_per_second: number;
  index_build_seconds: number | null;
  append_p50_ms: number;
  append_p99_ms: number;
  read_stream_p50_ms: number;
  read_stream_p99_ms: number;
  read_all_recent_10000_ms: number;
  seal_ms: number | null;
  seal_scan_only_ms: number | null;
  seal_after_10000_new_events_ms: number | null;
  seal_after_10000_new_events_changed_heads: number | null;
  full_scan_seal_heads_ms: number | null;
  archive_batch_ms: number;
  archived_events: number;
  table_bytes: number;
  toast_bytes: number;
  index_bytes: Record<string, number>;
  total_bytes: number;
  load_average: number[];
}

async function loadAverage(): Promise<number[]> {
  const text = await Deno.readTextFile("/proc/loadavg");
  return text.split(" ").slice(0, 3).map(Number);
}

/** Renices the server process of a connection (the bench runs as the database's host user). */
async function reniceBackend(sql: postgres.Sql): Promise<void> {
  const [{ pid }] = await sql`select pg_backend_pid() as pid`;
  for (
    const [cmd, args] of [["renice", ["-n", "19", "-p", String(pid)]], ["ionice", [
      "-c3",
      "-p",
      String(pid),
    ]]] as const
  ) {
    try {
      await new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" }).output();
    } catch {
      // not on this host: the fill runs at normal priority
    }
  }
}

const ms = (n: number) => Number(n.toFixed(2));

async function main(): Promise<void> {
  const args = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "1000000,10000000,100000000" },
      schema: { type: "string", default: "growth_bench" },
      keep: { type: "boolean", default: false },
      "seal-max": { type: "string", default: "10000000" },
      "bulk-indexes-above": { type: "string", default: "10000000" },
      "min-free-gib": { type: "string", default: "12" },
      until: { type: "string" },
    },
  });
  const sizes = args.values.sizes.split(",").map(Number);
  const schema = args.values.schema;
  const sealMax = Number(args.values["seal-max"]);
  const bulkAbove = Number(args.values["bulk-indexes-above"]);
  const minFree = Number(args.values["min-free-gib"]) * 2 ** 30;
  // A time limit (RFC 3339): the fill stops then, the size reached is measured, and no
  // larger size is tried.
  const until = args.values.until ? Date.parse(args.values.until) : Infinity;
  const databaseUrl = Deno.env.get("DATABASE_URL") ?? TEST_DATABASE_URL;
  const out = resultPath("growth") + ".json";
  const { types, data } = fillTemplates();

  const store0 = await openEventStore({ databaseUrl, schema, dataDir: "unused" });
  await store0.close();
  const sql = postgres(databaseUrl, {
    max: 1,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  await reniceBackend(sql);
  await sql`set maintenance_work_mem = '1GB'`;
  const results: SizeResult[] = [];
  // A kept schema resumes at the row after the last committed batch.
  await sql`create table if not exists growth_fill (next_row int8 not null)`;
  await sql`insert into growth_fill select 0 where not exists (select 1 from growth_fill)`;
  const start = Number((await sql`select next_row from growth_fill`)[0].next_row);
  let filled = start;
  try {
    for (const target of sizes) {
      if (Date.now() >= until) break;
      let size = target;
      // ---- fill
      const t0 = performance.now();
      const bulk = size > bulkAbove && filled < size;
      if (bulk) {
        for (const [name] of SECONDARY) {
          await sql.unsafe(
            name.endsWith("_key")
              ? `alter table events drop constraint if exists ${name}`
              : `drop index if exists ${name}`,
          );
        }
      }
      let lastReport = performance.now();
      while (filled < size) {
        if (Date.now() >= until) {
          console.error(`time limit: measuring at ${filled} rows instead of ${target}`);
          size = filled;
          break;
        }
        const free = await freeBytes();
        if (free < minFree) {
          throw new Error(`only ${(free / 2 ** 30).toFixed(1)} GiB free on /: stopping the fill`);
        }
        const hi = Math.min(size, filled + FILL_BATCH);
        await sql.unsafe(FILL_SQL, [filled, hi - 1, types, data]);
        filled = hi;
        if (performance.now() - lastReport > 30_000) {
          lastReport = performance.now();
          const rate = (filled - start) / ((lastReport - t0) / 1000);
          console.error(`fill: ${filled} rows, ${Math.round(rate)} rows/s`);
        }
      }
      const fillSeconds = (performance.now() - t0) / 1000;
      let indexSeconds: number | null = null;
      if (bulk) {
        const t1 = performance.now();
        for (const [, build] of SECONDARY) await sql.unsafe(build);
        indexSeconds = (performance.now() - t1) / 1000;
      }
      await sql`analyze events`; // (autovacuum sets the visibility map later, as in use)
      console.error(`filled ${size} rows in ${fillSeconds.toFixed(0)} s; measuring`);
      results.push(
        await measure(databaseUrl, schema, sql, size, sealMax, {
          fillSeconds,
          indexSeconds,
          filledSinceStart: filled - start,
        }),
      );
      await Deno.writeTextFile(
        out,
        JSON.stringify(
          { schema, fill: "synthetic hashes (sha256 of the row number)", results },
          null,
          2,
        ),
      );
      printTable(results);
    }
    if (!args.values.keep) {
      await sql.unsafe(`drop schema if exists ${schema} cascade`);
      await sql.unsafe(`drop schema if exists ${schema}_archive cascade`);
    }
  } catch (error) {
    console.error(
      `stopped; schema ${schema} kept: run again to resume the fill, or ` +
        `drop schema ${schema} cascade; drop schema ${schema}_archive cascade`,
    );
    throw error;
  } finally {
    await sql.end();
    console.error(`results: ${out}`);
  }
}

async function freeBytes(): Promise<number> {
  const { stdout } = await new Deno.Command("df", { args: ["-B1", "--output=avail", "/"] })
    .output();
  return Number(new TextDecoder().decode(stdout).trim().split("\n")[1]);
}

/** Thrown to roll back the timed full-aggregate seal. */
class RolledBack extends Error {}

/** Runs the measurements of one size. */
async function measure(
  databaseUrl: string,
  schema: string,
  sql: postgres.Sql,
  size: number,
  sealMax: number,
  fill: { fillSeconds: number; indexSeconds: number | null; filledSinceStart: number },
): Promise<SizeResult> {
  const client = await createPostgresClient({ url: databaseUrl, schema, max: 2 });
  const store = createSqlEventStore(client);
  try {
    // append: 60 new jobs, 5 single-event appends each, expected versions
    const appendMs: number[] = [];
    const stamp = `${size}-${Date.now()}`;
    for (let job = 0; job < 60; job++) {
      const streamId = `job-g${stamp}-${job}`;
      const steps: [string, Record<string, unknown>][] = [
        ["job.submitted", submittedData(`g${stamp}-${job}`)],
        ["job.queued", { queued_at: T, reason: "submitted" }],
        ["job.dispatched", { robot_id: "g", lease_id: crypto.randomUUID(), attempt: 1 }],
        ["job.started", { started_at: T }],
        ["job.completed", { completed_at: T, result: { status: "completed" } }],
      ];
      for (const [i, [type, eventData]] of steps.entries()) {
        const t = performance.now();
        await store.append([{
          streamId,
          expectedVersion: i,
          events: [{ type, data: eventData }],
        }]);
        appendMs.push(performance.now() - t);
      }
    }
    appendMs.sort((a, b) => a - b);

    // readStream of random filled job streams
    const jobs = Math.floor(size / 7);
    const readMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const id = `job-f${Math.floor(Math.random() * jobs)}`;
      const t = performance.now();
      const events = await store.readStream(id);
      readMs.push(performance.now() - t);
      if (events.length !== 5 && !(await isArchived(sql, id))) {
        throw new Error(`${id} has ${events.length} events, expected 5`);
      }
    }
    readMs.sort((a, b) => a - b);

    // readAll of the last 10,000 events, pages of 1,000 (a subscription catching up)
    const [{ pos }] = await sql`select max(global_position)::int8 as pos from events`;
    const [{ from }] = await sql`
      select global_position::int8 as from from events
      where global_position <= ${Number(pos) - 10_000} order by global_position desc limit 1`;
    // A transaction open anywhere on the server holds gap-safe reads back (an empty page):
    // such a try is not counted, and is made again a moment later.
    let readAllMs = NaN;
    for (let attempt = 0; attempt < 20 && Number.isNaN(readAllMs); attempt++) {
      const tAll = performance.now();
      let after = Number(from);
      let read = 0;
      while (read < 10_000) {
        const page = await store.readAll({ after, limit: 1000 });
        if (page.length === 0) break;
        read += page.length;
        after = page.at(-1)!.globalPosition;
      }
      if (read >= 10_000) readAllMs = performance.now() - tAll;
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }

    // seal
    let sealMs: number | null = null;
    let sealScanMs: number | null = null;
    if (size <= sealMax) {
      const t = performance.now();
      await store.seal();
      sealMs = performance.now() - t;
    } else {
      const t = performance.now();
      await sql`
        select count(*) from (
          select h.stream_id, h.version, h.events, e.hash
          from (
            select stream_id, max(stream_version) as version, count(*) as events
            from events where transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            group by stream_id
          ) as h
          join events e on e.stream_id = h.stream_id and e.stream_version = h.version
        ) as heads`;
      sealScanMs = performance.now() - t;
      // Then the seal itself: the first one fills `sealed_heads` on the server and hashes
      // it through a cursor, so its memory does not grow with the streams.
      const tSeal = performance.now();
      await store.seal();
      sealMs = performance.now() - tSeal;
    }

    // incremental seal: 10,000 new events (2,000 new jobs of 5 events) after the seal above,
    // then the same seal's heads by the full aggregate (what every seal cost before the
    // `sealed_heads` cache)
    let sealAfterNewMs: number | null = null;
    let sealAfterNewChanged: number | null = null;
    let fullScanSealMs: number | null = null;
    {
      for (let batch = 0; batch < 50; batch++) {
        await store.append(Array.from({ length: 40 }, (_, i) => ({
          streamId: `job-s${stamp}-${batch * 40 + i}`,
          expectedVersion: 0,
          events: ["job.submitted", "job.queued", "job.dispatched", "job.started", "job.completed"]
            .map((type) => ({ type, data: { job_id: `s${stamp}-${batch * 40 + i}` } })),
        })));
      }
      await settled(sql);
      // the seal by the full aggregate first, rolled back (it would leave nothing to seal);
      // above `--seal-max` it is not run (it sends every stream's head to the process)
      const tFull = performance.now();
      if (size <= sealMax) {
        await client.transaction(async (tx) => {
          await sealInTx(tx, {
            newId: () => crypto.randomUUID(),
            maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
            notify: false,
            lock: true,
            fullScan: true,
          });
          fullScanSealMs = performance.now() - tFull;
          throw new RolledBack();
        }).catch((error) => {
          if (!(error instanceof RolledBack)) throw error;
        });
      }
      const t = performance.now();
      const seal = await store.seal();
      sealAfterNewMs = performance.now() - t;
      sealAfterNewChanged = seal.changedHeads;
      // The check needs every head in the process: only up to --seal-max.
      if (size <= sealMax) {
        const [{ previous }] = await sql`
        select data->>'previous_horizon' as previous from events
        where stream_id = 'audit-seals' and type = 'audit.sealed'
        order by stream_version desc limit 1`;
        const heads = await fullScanHeads(client, seal.horizon, previous);
        const hash = headsHash(
          heads.map((h) => ({ streamId: h.stream_id, version: h.version, hash: h.hash })),
        );
        if (hash !== seal.headsHash || heads.length !== seal.streams) {
          throw new Error(`the incremental seal differs from the full aggregate at ${size} rows`);
        }
      }
    }

    // archive a batch: the 1,000 oldest job streams still live
    const [{ first }] = await sql`
      select min(global_position)::int8 as first from events where starts_with(stream_id, 'job-f')`;
    const [{ cut }] = await sql`
      select max(global_position)::int8 as cut from (
        select global_position from events where global_position >= ${Number(first)}
        order by global_position limit 7000) as s`;
    if (size > sealMax) {
      // the archive needs a seal covering its rows: the previous size's seal does
      const [{ n }] = await sql`
        select count(*)::int8 as n from events where stream_id = 'audit-seals'
          and type = 'audit.sealed'`;
      if (Number(n) === 0) await store.seal();
    }
    const tArchive = performance.now();
    const archived = await archiveStreams(client, {
      archiveSchema: `${schema}_archive`,
      before: { position: Number(cut) },
      streamPrefix: "job-f",
      closedTypes: ["job.completed"],
      batchStreams: 1000,
    });
    const archiveMs = performance.now() - tArchive;

    // sizes
    const [rel] = await sql`
      select pg_relation_size('events')::int8 as table_bytes,
        coalesce(pg_total_relation_size(reltoastrelid), 0)::int8 as toast_bytes,
        pg_total_relation_size('events')::int8 as total_bytes
      from pg_class where oid = 'events'::regclass`;
    const indexes = await sql`
      select indexrelid::regclass::text as name, pg_relation_size(indexrelid)::int8 as bytes
      from pg_index where indrelid = 'events'::regclass`;
    return {
      rows: size,
      fill_seconds: Math.round(fill.fillSeconds),
      fill_rows_per_second: Math.round(fill.filledSinceStart / fill.fillSeconds),
      index_build_seconds: fill.indexSeconds === null ? null : Math.round(fill.indexSeconds),
      append_p50_ms: ms(percentile(appendMs, 50)),
      append_p99_ms: ms(percentile(appendMs, 99)),
      read_stream_p50_ms: ms(percentile(readMs, 50)),
      read_stream_p99_ms: ms(percentile(readMs, 99)),
      read_all_recent_10000_ms: ms(readAllMs),
      seal_ms: sealMs === null ? null : ms(sealMs),
      seal_scan_only_ms: sealScanMs === null ? null : ms(sealScanMs),
      seal_after_10000_new_events_ms: sealAfterNewMs === null ? null : ms(sealAfterNewMs),
      seal_after_10000_new_events_changed_heads: sealAfterNewChanged,
      full_scan_seal_heads_ms: fullScanSealMs === null ? null : ms(fullScanSealMs),
      archive_batch_ms: ms(archiveMs),
      archived_events: archived.events,
      table_bytes: Number(rel.table_bytes),
      toast_bytes: Number(rel.toast_bytes),
      index_bytes: Object.fromEntries(indexes.map((i) => [i.name, Number(i.bytes)])),
      total_bytes: Number(rel.total_bytes),
      load_average: await loadAverage(),
    };
  } finally {
    await store.close();
  }
}

/**
 * Resolves once no committed event of this schema is above the gap-safe horizon (another
 * session's open transaction holds it back on a shared server), so a seal covers them all.
 * Checks every 50 ms, 60 s at most.
 */
async function settled(sql: postgres.Sql): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [{ held }] = await sql`
      select exists (select 1 from events
        where transaction_id >= pg_snapshot_xmin(pg_current_snapshot())) as held`;
    if (!held) return;
    if (Date.now() > deadline) throw new Error("events stayed held back for 60 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function isArchived(sql: postgres.Sql, streamId: string): Promise<boolean> {
  const [row] = await sql`
    select 1 from events where stream_id = 'audit-seals' and type = 'audit.archived'
      and data->'heads' @> ${sql.json([[streamId]])} limit 1`;
  return row !== undefined;
}

function printTable(results: SizeResult[]): void {
  const gib = (n: number) => (n / 2 ** 30).toFixed(2);
  console.log(
    "rows\tappend p50/p99 ms\treadStream p50/p99 ms\treadAll 10k ms\tseal ms\tseal +10k ms (full)\tarchive 1k streams ms\ttable+toast GiB\tindexes GiB",
  );
  for (const r of results) {
    const idx = Object.values(r.index_bytes).reduce((a, b) => a + b, 0);
    const seal = r.seal_ms !== null ? `${r.seal_ms}` : `scan ${r.seal_scan_only_ms}`;
    console.log(
      `${r.rows}\t${r.append_p50_ms}/${r.append_p99_ms}\t${r.read_stream_p50_ms}/${r.read_stream_p99_ms}\t${r.read_all_recent_10000_ms}\t${seal}\t${r.seal_after_10000_new_events_ms} (${r.full_scan_seal_heads_ms})\t${r.archive_batch_ms}\t${
        gib(r.table_bytes + r.toast_bytes)
      }\t${gib(idx)}`,
    );
  }
}

if (import.meta.main) await main();
