/**
 * `deno task archive --before <position|RFC 3339 instant> [--batch <streams>]`: seals the
 * log, then moves every finished job stream (last event `job.completed`, `job.failed`,
 * `job.cancelled` or `job.timed_out`) whose last event is at or before the cut and below the
 * seal's horizon from `events` to `<DATABASE_SCHEMA or public>_archive.events`, recording
 * each batch in an `audit.archived` event (README, "Growth: archiving old jobs").
 *
 * PostgreSQL only (`DATABASE_URL`): the embedded PGlite store keeps one table. Reads the
 * same environment as `deno task start`; safe while orchestrators run. Exit status 0 when
 * done, 2 on bad arguments or when the database cannot be reached.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "../config/mod.ts";
import {
  type ArchiveCut,
  archiveStreams,
  createPostgresClient,
  createSqlEventStore,
} from "../events/mod.ts";

/** Last event types of a finished job (the job machine's terminal states). */
export const FINISHED_JOB_TYPES: readonly string[] = [
  "job.completed",
  "job.failed",
  "job.cancelled",
  "job.timed_out",
];

/**
 * Parses `--before`: a global position (digits) or an RFC 3339 instant with a zone.
 * @throws {TypeError} When it is neither.
 */
export function parseCut(text: string): ArchiveCut {
  if (/^\d+$/.test(text)) return { position: Number(text) };
  const instant = new Date(text);
  if (!/^\d{4}-\d\d-\d\dT.*(Z|[+-]\d\d:\d\d)$/i.test(text) || Number.isNaN(instant.getTime())) {
    throw new TypeError(
      `--before must be a global position or an RFC 3339 instant with a zone, got ${text}`,
    );
  }
  return { instant };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { before: { type: "string" }, batch: { type: "string", default: "1000" } },
  });
  if (!values.before) {
    console.error("usage: deno task archive --before <position|RFC 3339 instant>");
    return 2;
  }
  const before = parseCut(values.before);
  const config = loadConfig((name) => Deno.env.get(name));
  if (!config.databaseUrl) {
    console.error(
      "archive: needs PostgreSQL (DATABASE_URL); the embedded PGlite store keeps one table",
    );
    return 2;
  }
  const schema = config.databaseSchema ?? "public";
  const client = await createPostgresClient({
    url: config.databaseUrl,
    schema: config.databaseSchema ?? undefined,
    pooler: config.databasePooler,
    max: 2,
    applicationName: "orchestrator-archive",
  });
  const store = createSqlEventStore(client);
  try {
    const seal = await store.seal();
    console.log(
      `archive: sealed: ${seal.events} events in ${seal.streams} streams; ` +
        `anchor ${seal.version}:${seal.hash}`,
    );
    const started = performance.now();
    const moved = await archiveStreams(client, {
      archiveSchema: `${schema}_archive`,
      before,
      streamPrefix: "job-",
      closedTypes: FINISHED_JOB_TYPES,
      batchStreams: Number(values.batch),
    });
    console.log(
      `archive: moved ${moved.events} events of ${moved.streams} finished jobs to ` +
        `${schema}_archive.events in ${moved.records} batches, ` +
        `${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

if (import.meta.main) {
  main().then(
    (code) => Deno.exit(code),
    (error) => {
      console.error(`archive: ${error?.message ?? error}`);
      Deno.exit(2);
    },
  );
}
