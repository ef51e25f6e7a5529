// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Real orchestrator and robot processes for tests: `main.ts` and `robot/main.ts` spawned
 * with `deno run`, their output captured, and the events API's long poll to await facts.
 *
 * @module
 */
import postgres from "postgres";
import { TEST_DATABASE_URL } from "./_harness.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const ROBOT_MAIN = new URL("../robot/main.ts", import.meta.url).pathname;

/** A spawned process with its output so far. */
export interface Proc {
  child: Deno.ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
}

/** A running orchestrator process. */
export interface OrchestratorProc extends Proc {
  url: string;
}

/** Pipes both streams into one text; resolves `ready` when `pattern` matches it. */
function capture(child: Deno.ChildProcess, pattern: RegExp): {
  output: () => string;
  ready: Promise<RegExpMatchArray>;
} {
  let text = "";
  const decoder = new TextDecoder();
  let resolve!: (m: RegExpMatchArray) => void;
  let reject!: (e: Error) => void;
  const ready = new Promise<RegExpMatchArray>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let open = 2;
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk);
      const m = text.match(pattern);
      if (m) resolve(m);
    }
    if (--open === 0) reject(new Error(`process exited before ${pattern}:\n${text}`));
  };
  read(child.stdout).catch(() => {});
  read(child.stderr).catch(() => {});
  return { output: () => text, ready };
}

/** Starts `main.ts` with `env` (plus 127.0.0.1); resolves once it is ready. */
export async function startOrchestratorProcess(
  env: Record<string, string>,
): Promise<OrchestratorProc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { ORCHESTRATOR_HOST: "127.0.0.1", ORCHESTRATOR_PORT: "0", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { output, ready } = capture(
    child,
    /listening on (http:\/\/[\d.]+:\d+)[\s\S]*; ready/,
  );
  const m = await ready;
  return { child, output, url: m[1] };
}

/** Starts a robot process (`robot/main.ts`); resolves once it is online. */
export async function startRobotProcess(
  wsUrl: string,
  token: string,
  name: string,
  extraArgs: string[] = [],
): Promise<Proc> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ROBOT_MAIN, "--url", wsUrl, "--name", name, ...extraArgs],
    env: { ROBOT_TOKEN: token, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { output, ready } = capture(child, /online at/);
  await ready;
  return { child, output };
}

/** A free TCP port on 127.0.0.1 (to restart a process on the same port). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** JSON request to a process's API. */
export async function api(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Follows a stream with the events API's long poll until an event of `types` appears after
 * global position `after`.
 */
export async function waitForEvent(
  url: string,
  token: string,
  stream: string,
  types: string[],
  after = 0,
): Promise<any> {
  for (let i = 0; i < 100; i++) {
    const path = `/api/v1/events?stream=${stream}&after=${after}&wait=10`;
    const page = (await api(url, token, "GET", path)).body;
    for (const e of page.events) if (types.includes(e.type)) return e;
    after = page.next_after;
  }
  throw new Error(`no ${types} in ${stream}`);
}

/** Stops a process (SIGKILL unless it already exited) and drains its pipes. */
export async function killProcess(p: Proc): Promise<void> {
  try {
    p.child.kill("SIGKILL");
  } catch {
    // already exited
  }
  await p.child.status;
}

/** Environments of both stores for process tests, with their cleanup. */
export const PROCESS_BACKENDS: [
  string,
  () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>,
][] = [
  ["pglite", async () => {
    const dir = await Deno.makeTempDir({ prefix: "orch-proc-" });
    return { env: { DATA_DIR: dir }, cleanup: () => Deno.remove(dir, { recursive: true }) };
  }],
  ["postgres", async () => {
    const dir = await Deno.makeTempDir({ prefix: "orch-proc-" });
    const schema = `p_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    return {
      env: { DATA_DIR: dir, DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
      cleanup: async () => {
        const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
        await sql.unsafe(`drop schema if exists ${schema} cascade`);
        await sql.end();
        await Deno.remove(dir, { recursive: true });
      },
    };
  }],
];
