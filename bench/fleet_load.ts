/**
 * Load generator of the fleet benchmark: N robots as real WebSocket clients
 * ({@linkcode RobotClient}) with a no-op executor (optionally sleeping `workMs`), and the
 * API client that submits J jobs with C requests in flight.
 *
 * `bench/fleet.ts` runs this file as a separate process (so that the orchestrator's
 * process holds only the orchestrator), or imports its functions (`--in-process`).
 * As a process it speaks JSON lines: it prints `{"type":"ready"}` once every robot is
 * registered, starts submitting when `go` arrives on stdin, prints
 * `{"type":"submitted",...}` when all J are accepted, and on `stop` prints the report
 * (`{"type":"report", sent, assigned}`: wall-clock ms per job id) and exits.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RobotClient } from "../robot/robot_client.ts";

/** Wall-clock time in ms with sub-ms precision (comparable across processes). */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/** Options of {@linkcode startRobots}. */
export interface RobotFleetOptions {
  /** Robot WebSocket endpoint, e.g. `ws://127.0.0.1:8765/ws/robot`. */
  url: string;
  /** Robot token. */
  token: string;
  /** Number of robots. */
  robots: number;
  /** `max_concurrent_jobs` of each robot. */
  slots: number;
  /** Simulated work per job, in ms (0: completes at once). */
  workMs: number;
  /** Called with the job id and the wall-clock ms when a robot receives its assignment. */
  onAssigned(jobId: string, at: number): void;
  /** Robots connecting at once; the next wave starts when they are registered. @default all */
  connectBatch?: number;
  /** Robot names are `<namePrefix>-<i>`. @default "bench" */
  namePrefix?: string;
}

/** Starts the robots and waits until each is registered; returns a closer. */
export async function startRobots(
  o: RobotFleetOptions,
): Promise<{ close(): Promise<void> }> {
  const executor = async () => {
    if (o.workMs > 0) await new Promise((resolve) => setTimeout(resolve, o.workMs));
    return {
      status: "completed" as const,
      outputs: {},
      logs: [],
      execution_time: o.workMs / 1000,
      node_results: {},
    };
  };
  const robots = Array.from({ length: o.robots }, (_, i) =>
    new RobotClient({
      url: o.url,
      token: o.token,
      name: `${o.namePrefix ?? "bench"}-${i}`,
      maxConcurrentJobs: o.slots,
      executor: executor as never,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    }));
  for (const r of robots) {
    r.on("message", (m) => {
      if (m.type === "job_assignment") {
        o.onAssigned(String((m.payload as { job_id: string }).job_id), wallNow());
      }
    });
  }
  const wave = o.connectBatch ?? robots.length;
  for (let i = 0; i < robots.length; i += wave) {
    await Promise.all(robots.slice(i, i + wave).map((r) => r.start()));
  }
  return { close: async () => void await Promise.all(robots.map((r) => r.close())) };
}

/** Options of {@linkcode submitJobs}. */
export interface SubmitOptions {
  /** Orchestrator base URL, e.g. `http://127.0.0.1:8765`. */
  url: string;
  /** API token. */
  apiToken: string;
  /** Jobs to submit. */
  jobs: number;
  /** Requests in flight. */
  concurrency: number;
}

/**
 * Submits `jobs` no-op jobs through `POST /api/v1/jobs`, `concurrency` at a time.
 *
 * @returns Wall-clock ms at which each job's request was sent, by job id.
 * @throws {Error} When a submission is not answered 201.
 */
export async function submitJobs(o: SubmitOptions): Promise<Map<string, number>> {
  const workflow = { metadata: { name: "bench" }, nodes: {}, connections: [] };
  const body = JSON.stringify({ workflow });
  const sentAt = new Map<string, number>();
  let next = 0;
  await Promise.all(Array.from({ length: o.concurrency }, async () => {
    while (next < o.jobs) {
      next++;
      const sent = wallNow();
      const res = await fetch(`${o.url}/api/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${o.apiToken}`, "content-type": "application/json" },
        body,
      });
      const answer = await res.json();
      if (res.status !== 201) throw new Error(JSON.stringify(answer));
      sentAt.set(answer.job_id, sent);
    }
  }));
  return sentAt;
}

async function* stdinLines(): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "ws-url": { type: "string" },
      "api-url": { type: "string" },
      "robot-token": { type: "string" },
      "api-token": { type: "string" },
      robots: { type: "string", default: "20" },
      slots: { type: "string", default: "4" },
      "work-ms": { type: "string", default: "0" },
      jobs: { type: "string", default: "0" },
      concurrency: { type: "string", default: "50" },
      "connect-batch": { type: "string", default: "0" },
      "name-prefix": { type: "string", default: "bench" },
    },
  });
  const print = (line: unknown) => console.log(JSON.stringify(line));
  const assigned: Record<string, number> = {};
  const fleet = await startRobots({
    url: values["ws-url"]!,
    token: values["robot-token"]!,
    robots: Number(values.robots),
    slots: Number(values.slots),
    workMs: Number(values["work-ms"]),
    onAssigned: (id, at) => (assigned[id] = at),
    connectBatch: Number(values["connect-batch"]) || undefined,
    namePrefix: values["name-prefix"],
  });
  print({ type: "ready" });
  let sent: Record<string, number> = {};
  for await (const line of stdinLines()) {
    if (line === "go") {
      const start = wallNow();
      const sentAt = await submitJobs({
        url: values["api-url"]!,
        apiToken: values["api-token"]!,
        jobs: Number(values.jobs),
        concurrency: Number(values.concurrency),
      });
      sent = Object.fromEntries(sentAt);
      print({ type: "submitted", start, end: wallNow() });
    } else if (line === "stop") {
      await fleet.close();
      print({ type: "report", sent, assigned });
      break;
    }
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
