/**
 * Real processes for the fault-injection suite: the orchestrator (`main.ts`) on the test
 * PostgreSQL in a fresh schema, on a fixed port so that it can be killed and started again
 * where robots expect it, and a process of real robots (`_robot_fleet.ts`).
 *
 * @module
 */
import postgres from "postgres";
import { openEventStore, type SqlEventStore } from "../../events/mod.ts";
import { TEST_DATABASE_URL } from "../_harness.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const FLEET = new URL("./_robot_fleet.ts", import.meta.url).pathname;

/** Tokens of the suite's orchestrators (given in the environment, so no tokens file). */
export const API_TOKEN = "faults-api-token";
/** Robot token of the suite's orchestrators. */
export const ROBOT_TOKEN = "faults-robot-token";

/** A child process whose output is kept (the last 64 KiB) for error messages. */
export interface Child {
  child: Deno.ChildProcess;
  /** The last 64 KiB of stdout and stderr. */
  output(): string;
  /** Resolves when a line of output matches `pattern` (after the call or already seen). */
  waitFor(pattern: RegExp, signal?: AbortSignal): Promise<RegExpMatchArray>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
}

/** Spawns `deno <args>` with `env`, keeping its output (see {@linkcode Child}). */
export function spawn(args: string[], env: Record<string, string>): Child {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text = (text + decoder.decode(chunk)).slice(-65_536);
      for (const w of [...waiters]) w();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let dead = false;
  const exited = child.status.then(async (s) => {
    await pumped;
    dead = true;
    for (const w of [...waiters]) w();
    return s;
  });
  return {
    child,
    output: () => text,
    waitFor(pattern, signal = AbortSignal.timeout(60_000)) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern);
          if (m) {
            waiters.delete(check);
            resolve(m);
          } else if (dead || signal.aborted) {
            waiters.delete(check);
            reject(new Error(`no ${pattern} in the output:\n${text.slice(-4000)}`));
          }
        };
        waiters.add(check);
        signal.addEventListener("abort", check, { once: true });
        check();
      });
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await exited;
    },
  };
}

/** A TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** One schema of the test PostgreSQL and the environment of orchestrators on it. */
export interface FaultSite {
  schema: string;
  /** `application_name` of the orchestrator's connections (to find them in pg_stat_activity). */
  applicationName: string;
  port: number;
  url: string;
  wsUrl: string;
  env: Record<string, string>;
  /** An event store of the test process on the same schema (for the invariant checker). */
  store: SqlEventStore;
  /** Drops the schema and closes the store. */
  drop(): Promise<void>;
}

/** Options of {@linkcode openFaultSite}. */
export interface FaultSiteOptions {
  /** Extra environment of the orchestrator (HEARTBEAT_TIMEOUT…). @default {} */
  config?: Record<string, string>;
  /** Port of the orchestrators. @default a free one */
  port?: number;
  /**
   * Connect the orchestrator as its own login role (created here, owner of the schema,
   * dropped by `drop()`), so that a test can refuse its connections (`nologin`) without
   * touching anyone else's. @default false (the test database's user)
   */
  ownRole?: boolean;
  /**
   * PostgreSQL of the site, a superuser's URL (e.g. a private cluster the test started).
   * @default TEST_DATABASE_URL
   */
  databaseUrl?: string;
  /**
   * Let the orchestrator's commits return before their WAL is written
   * (`synchronous_commit=off`); safe while the server process survives (a crash of the
   * server, e.g. `pg_ctl stop -m immediate`, may then lose acknowledged commits).
   * @default true
   */
  asyncCommit?: boolean;
}

/** Creates a fresh schema and the environment of orchestrators on it. */
export async function openFaultSite(options: FaultSiteOptions = {}): Promise<FaultSite> {
  const { config = {}, port = freePort(), databaseUrl = TEST_DATABASE_URL } = options;
  const schema = `f_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const applicationName = `orchestrator-${schema}`;
  const role = options.ownRole ? `${schema}_role` : null;
  const url = new URL(databaseUrl);
  if (role) {
    await admin(async (sql) => {
      await sql.unsafe(`create role ${role} login`);
      await sql.unsafe(`create schema ${schema} authorization ${role}`);
      // `create schema if not exists` at start-up asks for it even when the schema exists.
      await sql.unsafe(`grant create on database ${url.pathname.slice(1)} to ${role}`);
    }, databaseUrl);
    url.username = role;
    url.password = "";
  }
  url.searchParams.set("application_name", applicationName);
  // Commits do not wait for the WAL flush (synchronous_commit=off as a startup parameter
  // of the orchestrator's connections): the faults here kill the orchestrator or its
  // connections, never the database server's disk, and on a shared 2-core machine the
  // fsync of each commit would otherwise set the pace of the whole suite.
  if (options.asyncCommit !== false) url.searchParams.set("synchronous_commit", "off");
  const dataDir = await Deno.makeTempDir({ prefix: "orch-faults-" });
  const store = await openEventStore({
    databaseUrl,
    dataDir: "unused",
    schema,
    maxConnections: 2,
    applicationName: `faults-checker-${schema}`,
    // With its own role, the orchestrator creates (and owns) the table at its first start.
    migrate: role === null,
  });
  return {
    schema,
    applicationName,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws/robot`,
    store,
    env: {
      DATABASE_URL: url.href,
      DATABASE_SCHEMA: schema,
      DATA_DIR: dataDir,
      ORCHESTRATOR_HOST: "127.0.0.1",
      ORCHESTRATOR_PORT: String(port),
      ORCHESTRATOR_API_TOKEN: API_TOKEN,
      ORCHESTRATOR_ROBOT_TOKEN: ROBOT_TOKEN,
      SEAL_INTERVAL: "0",
      ...config,
    },
    async drop() {
      await store.close();
      await admin(async (sql) => {
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
        if (role) {
          await sql.unsafe(
            `select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`,
            [role],
          );
          await sql.unsafe(`drop owned by ${role}`);
          await sql.unsafe(`drop role if exists ${role}`);
        }
      }, databaseUrl);
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Runs `fn` on a connection of the test database's (super)user, or of `databaseUrl`. */
export async function admin<T>(
  fn: (sql: postgres.Sql) => Promise<T>,
  databaseUrl: string = TEST_DATABASE_URL,
): Promise<T> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** Starts `main.ts` on the site and resolves once it has replayed the log (`; ready`). */
export async function startOrchestratorProcess(site: FaultSite): Promise<Child> {
  const proc = spawn(["run", "-A", MAIN], site.env);
  try {
    await proc.waitFor(/; ready/);
  } catch (error) {
    await proc.kill();
    throw error;
  }
  return proc;
}

/**
 * Starts `count` real robots in one process; resolves once each has registered.
 * @param options Robot count, slots per robot and name prefix.
 */
export async function startRobotFleet(
  site: FaultSite,
  options: { count: number; maxJobs: number; prefix: string },
): Promise<Child> {
  const proc = spawn([
    "run",
    "-A",
    FLEET,
    "--url",
    site.wsUrl,
    "--count",
    String(options.count),
    "--max-jobs",
    String(options.maxJobs),
    "--prefix",
    options.prefix,
  ], { ROBOT_TOKEN });
  for (let i = 1; i <= options.count; i++) {
    await proc.waitFor(new RegExp(`registered ${options.prefix}-${i}\\b`));
  }
  return proc;
}

/** A JSON request to the site's API with the API token. */
export async function api(
  site: FaultSite,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(site.url + path, {
    method,
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed };
}
