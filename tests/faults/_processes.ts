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

function spawn(args: string[], env: Record<string, string>): Child {
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
  const exited = child.status.then(async (s) => {
    await pumped;
    for (const w of [...waiters]) w();
    return s;
  });
  let dead = false;
  exited.then(() => (dead = true));
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

/**
 * Creates a fresh schema and the environment of orchestrators on it.
 * @param config Extra environment of the orchestrator (HEARTBEAT_TIMEOUT…).
 * @param port Port of the orchestrators. @default a free one
 */
export async function openFaultSite(
  config: Record<string, string> = {},
  port: number = freePort(),
  fast = true,
): Promise<FaultSite> {
  const schema = `f_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const applicationName = `orchestrator-${schema}`;
  const dataDir = await Deno.makeTempDir({ prefix: "orch-faults-" });
  const store = await openEventStore({
    databaseUrl: TEST_DATABASE_URL,
    dataDir: "unused",
    schema,
    maxConnections: 2,
    applicationName: `faults-checker-${schema}`,
  });
  const sep = TEST_DATABASE_URL.includes("?") ? "&" : "?";
  // Commits do not wait for the WAL flush (synchronous_commit=off as a startup parameter
  // of the orchestrator's connections): the faults here kill the orchestrator or its
  // connections, never the database server's disk, and on a shared 2-core machine the
  // fsync of each commit would otherwise set the pace of the whole suite.
  const urlParams = fast ? "&synchronous_commit=off" : "";
  return {
    schema,
    applicationName,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws/robot`,
    store,
    env: {
      DATABASE_URL: `${TEST_DATABASE_URL}${sep}application_name=${applicationName}${urlParams}`,
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
      const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
      } finally {
        await sql.end();
      }
      await Deno.remove(dataDir, { recursive: true });
    },
  };
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
