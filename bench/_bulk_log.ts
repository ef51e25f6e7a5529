/**
 * Writes large synthetic logs for the scale runs straight into a PostgreSQL schema's
 * `events` table, 10,000 rows per INSERT, with the real hash chain (so `deno task verify`
 * accepts them) — much faster than `append()`, which checks versions per write.
 *
 * @module
 */
import postgres from "postgres";
import { canonicalJson, eventHash, GENESIS_HASH, openEventStore } from "../events/mod.ts";

/** Rows per INSERT. */
const CHUNK = 10_000;

/** A bulk writer of events into one schema. */
export class BulkLog {
  #sql: postgres.Sql;
  #versions = new Map<string, number>();
  #hashes = new Map<string, string>();
  #rows: string[][] = [[], [], [], [], [], [], []];
  #pending: Promise<unknown> = Promise.resolve();
  /** Events written so far. */
  written = 0;

  private constructor(sql: postgres.Sql) {
    this.#sql = sql;
  }

  /** Creates the schema and its `events` table (the store's own migration), then opens. */
  static async open(databaseUrl: string, schema: string): Promise<BulkLog> {
    const store = await openEventStore({ databaseUrl, dataDir: "unused", schema });
    await store.close();
    const sql = postgres(databaseUrl, {
      max: 1,
      onnotice: () => {},
      connection: { search_path: schema },
    });
    return new BulkLog(sql);
  }

  /** Adds an event to `streamId` (its next version); flushes every 10,000 events. */
  async add(streamId: string, type: string, data: Record<string, unknown>): Promise<void> {
    const version = (this.#versions.get(streamId) ?? 0) + 1;
    const eventId = crypto.randomUUID();
    const dataJson = canonicalJson(data);
    const hash = eventHash(
      this.#hashes.get(streamId) ?? GENESIS_HASH,
      { streamId, streamVersion: version, eventId, type, data, metadata: {} },
      { data: dataJson, metadata: "{}" },
    );
    this.#versions.set(streamId, version);
    this.#hashes.set(streamId, hash);
    const values = [streamId, String(version), eventId, type, dataJson, "{}", hash];
    values.forEach((v, i) => this.#rows[i].push(v));
    if (this.#rows[0].length >= CHUNK) await this.flush();
  }

  /**
   * Sends the buffered events in one statement. The statement runs while the caller builds
   * the next chunk (one connection: the server runs them in order, so transaction ids grow
   * with stream versions); the previous one is awaited first.
   */
  async flush(): Promise<void> {
    const n = this.#rows[0].length;
    if (n === 0) return;
    const rows = this.#rows;
    this.#rows = [[], [], [], [], [], [], []];
    await this.#pending;
    this.#pending = this.#sql.unsafe(
      `insert into events (stream_id, stream_version, event_id, type, data, metadata, hash)
       select s, v, e, t, d::jsonb, m::jsonb, decode(h, 'hex')
       from unnest($1::text[], $2::int8[], $3::uuid[], $4::text[], $5::text[], $6::text[],
         $7::text[]) as u(s, v, e, t, d, m, h)`,
      rows,
    ).execute();
    this.written += n;
  }

  /** Flushes, waits for the last statement and closes the connection. */
  async close(): Promise<void> {
    await this.flush();
    await this.#pending;
    await this.#sql.end();
  }
}

const T = "2026-06-01T12:00:00.000Z";

/** `job.submitted` data of a no-op job as `POST /api/v1/jobs` records it. */
export function submittedData(jobId: string): Record<string, unknown> {
  return {
    job_id: jobId,
    workflow: {
      workflow_id: "bench",
      name: "bench",
      version: "1.0.0",
      content: { metadata: { name: "bench" }, nodes: {}, connections: [] },
    },
    variables: {},
    priority: 1,
    timeout: 3600,
    robot_id: null,
    required_capabilities: [],
    retry: { max_retries: 3, initial_delay: 1, max_delay: 60, backoff_factor: 2 },
    created_at: T,
    idempotency_key: null,
    request_sha256: null,
  };
}

/** Adds `count` queued jobs (2 events each) with ids `<prefix>-<i>`. */
export async function addQueuedJobs(log: BulkLog, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${i}`;
    await log.add(`job-${id}`, "job.submitted", submittedData(id));
    await log.add(`job-${id}`, "job.queued", { queued_at: T, reason: "submitted" });
  }
}

/**
 * Adds a history of completed jobs, about `events` events: `robots` robots registered and
 * connected, then jobs each submitted, queued, dispatched, started and completed, with the
 * robot's assignment and release (7 events per job).
 */
export async function addCompletedHistory(
  log: BulkLog,
  events: number,
  robots = 20,
): Promise<number> {
  for (let r = 0; r < robots; r++) {
    await log.add(`robot-r${r}`, "robot.registered", {
      robot_id: `r${r}`,
      name: `r${r}`,
      capabilities: [],
      tags: [],
      max_concurrent_jobs: 4,
      environment: null,
      version: null,
      registered_at: T,
    });
    await log.add(`robot-r${r}`, "robot.connected", { connected_at: T });
  }
  const jobs = Math.ceil((events - 2 * robots) / 7);
  const result = {
    status: "completed",
    outputs: {},
    logs: [],
    execution_time: 0,
    node_results: {},
    error: null,
  };
  for (let i = 0; i < jobs; i++) {
    const id = `done-${i}`;
    const robot = `r${i % robots}`;
    const lease = crypto.randomUUID();
    await log.add(`job-${id}`, "job.submitted", submittedData(id));
    await log.add(`job-${id}`, "job.queued", { queued_at: T, reason: "submitted" });
    await log.add(`job-${id}`, "job.dispatched", {
      robot_id: robot,
      lease_id: lease,
      attempt: 1,
      dispatched_at: T,
      deadline: "2026-06-01T13:00:00.000Z",
    });
    await log.add(`robot-${robot}`, "robot.job_assigned", { job_id: id, lease_id: lease });
    await log.add(`job-${id}`, "job.started", { lease_id: lease, started_at: T });
    await log.add(`job-${id}`, "job.completed", { lease_id: lease, completed_at: T, result });
    await log.add(`robot-${robot}`, "robot.job_released", { job_id: id, reason: "completed" });
  }
  return jobs;
}
