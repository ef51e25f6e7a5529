/**
 * `deno task verify [--anchor <version>:<hash>] [--seal] [--json]`: checks every hash chain
 * and the latest seal of the event log, and exits non-zero naming the first bad stream and
 * version.
 *
 * Reads `DATABASE_URL`, `DATABASE_SCHEMA` and `DATA_DIR` as `deno task start` does
 * (PostgreSQL when `DATABASE_URL` is set, else PGlite in `DATA_DIR/pglite`, which only one
 * process may open: stop the orchestrator first, or use `GET /api/v1/audit/verify`).
 * Changes nothing unless `--seal` is given, which seals the log before checking it.
 *
 * Exit status: 0 when the log checks out, 1 when a problem was found, 2 when the check
 * could not run (bad arguments, database unreachable).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "../config/mod.ts";
import { openEventStore, type SqlEventStore } from "../events/mod.ts";
import { verifyArchive, verifyLog, type VerifyLogResult } from "./mod.ts";

/** How many problems are printed besides the first. */
const LISTED = 10;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      anchor: { type: "string" },
      seal: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const anchor = values.anchor === undefined ? undefined : parseAnchor(values.anchor);
  const config = loadConfig((name) => Deno.env.get(name));
  const store: SqlEventStore = await openEventStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    schema: config.databaseSchema ?? undefined,
    pooler: config.databasePooler,
    maxConnections: 2,
    applicationName: "orchestrator-verify",
    migrate: values.seal,
  });
  try {
    if (values.seal) {
      const seal = await store.seal();
      console.error(
        `verify: ${seal.written ? "sealed" : "already sealed"}: ${seal.events} events in ` +
          `${seal.streams} streams; anchor ${seal.version}:${seal.hash}`,
      );
    }
    const interactive = Deno.stderr.isTerminal();
    const started = performance.now();
    const result = await verifyLog(store, {
      anchor,
      onProgress: ({ streams, events }) => {
        if (interactive) {
          const rate = Math.round(events / ((performance.now() - started) / 1000));
          Deno.stderr.writeSync(
            new TextEncoder().encode(`\rverify: ${events} events, ${streams} streams, ${rate}/s`),
          );
        }
      },
    });
    if (interactive) console.error();
    const archive = result.archived
      ? await checkArchive(store, result.archived.tables, config)
      : undefined;
    if (values.json) console.log(JSON.stringify({ ...result, archive }, null, 2));
    else {
      printSummary(result, (performance.now() - started) / 1000);
      if (archive) printArchive(archive, result.archived!.tables[0]);
    }
    return result.ok && (archive?.ok ?? true) ? 0 : 1;
  } finally {
    await store.close();
  }
}

function printSummary(result: VerifyLogResult, seconds: number): void {
  console.log(
    `verify: ${result.events} events in ${result.streams} streams checked in ` +
      `${seconds.toFixed(1)} s`,
  );
  const { seal } = result;
  console.log(
    seal
      ? `verify: latest seal: audit-seals version ${seal.version}, horizon ${seal.horizon}, ` +
        `${seal.streams} streams; anchor ${seal.version}:${seal.hash}`
      : "verify: the log has no seal yet: deleted tails cannot be detected",
  );
  const [first, ...more] = result.problems;
  if (!first) {
    console.log(
      seal
        ? "verify: OK: every hash chain and the latest seal check out"
        : "verify: OK: every hash chain checks out (no seal to check yet)",
    );
    return;
  }
  console.log(
    `verify: FAILED: stream ${first.streamId} version ${first.version}: ${first.kind}\n` +
      `  ${first.message}`,
  );
  for (const problem of more.slice(0, LISTED)) {
    console.log(`  also stream ${problem.streamId} version ${problem.version}: ${problem.kind}`);
  }
  if (more.length > LISTED) console.log(`  and ${more.length - LISTED} more bad streams`);
}

/** Verifies the archive table the live log's `audit.archived` events name. */
async function checkArchive(
  live: SqlEventStore,
  tables: string[],
  config: ReturnType<typeof loadConfig>,
): Promise<VerifyLogResult> {
  if (tables.length !== 1 || !/^[a-z_][a-z0-9_]*\.events$/.test(tables[0])) {
    throw new Error(`the log names archive tables ${tables.join(", ")}: expected one`);
  }
  const archive = await openEventStore({
    databaseUrl: config.databaseUrl ?? undefined,
    dataDir: config.dataDir,
    schema: tables[0].slice(0, -".events".length),
    pooler: config.databasePooler,
    maxConnections: 2,
    applicationName: "orchestrator-verify",
    migrate: false,
  });
  try {
    return await verifyArchive(live, archive);
  } finally {
    await archive.close();
  }
}

function printArchive(result: VerifyLogResult, table: string): void {
  console.log(`verify: archive ${table}: ${result.events} events in ${result.streams} streams`);
  const first = result.firstProblem;
  console.log(
    first
      ? `verify: FAILED: archive stream ${first.streamId} version ${first.version}: ` +
        `${first.kind}\n  ${first.message}`
      : "verify: OK: the archive ends at the heads the live log recorded",
  );
}

function parseAnchor(text: string): { version: number; hash: string } {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text);
  if (!match) {
    throw new TypeError(
      `--anchor must be <version>:<64 hex digits>, as a seal prints it, got ${text}`,
    );
  }
  return { version: Number(match[1]), hash: match[2] };
}

if (import.meta.main) {
  main().then(
    (code) => Deno.exit(code),
    (error) => {
      console.error(`verify: could not check the log: ${error?.message ?? error}`);
      Deno.exit(2);
    },
  );
}
