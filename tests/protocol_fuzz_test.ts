/**
 * Protocol fuzzing: at least 10,000 malformed or hostile frames from a seeded generator
 * (mutations of valid frames, type confusion, huge numbers, deep nesting, random bytes,
 * oversized frames, valid frames for other robots' jobs) over real WebSockets to a real
 * orchestrator, while a well-behaved robot runs real jobs. At the end the orchestrator
 * still serves, every job completed exactly once on the good robot, and the log verifies.
 *
 * PostgreSQL gets 10,000 frames, the embedded store 5,000 (its start alone takes ~20 s on a
 * loaded machine, and the file should stay near a minute). `FUZZ_SEED=<n>` replays a run;
 * `FUZZ_FRAMES=<n>` sets the number of frames on both.
 */
import assert from "node:assert/strict";
import { verifyLog } from "../audit/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator, type TestOrchestrator } from "./_harness.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20261129);
const FRAMES_SET = Deno.env.get("FUZZ_FRAMES");
const framesFor = (backend: string): number =>
  FRAMES_SET ? Number(FRAMES_SET) : backend === "postgres" ? 10_000 : 5_000;
const CONNECTIONS = 12;
const JOBS = 24;
const GOOD_ROBOT = "good-robot";

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The frame generator; `jobs()` gives the real jobs with their current lease. */
class FrameGenerator {
  #r: () => number;
  #jobs: () => { job_id: string; lease_id: string | null }[];
  #robotId: string;

  constructor(
    seed: number,
    robotId: string,
    jobs: () => { job_id: string; lease_id: string | null }[],
  ) {
    this.#r = prng(seed);
    this.#jobs = jobs;
    this.#robotId = robotId;
  }

  #int(n: number): number {
    return Math.floor(this.#r() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)];
  }

  /** A hostile scalar or structure. */
  #weird(): Json | undefined {
    const choices: (() => Json | undefined)[] = [
      () => null,
      () => undefined,
      () => this.#r() < 0.5,
      () => this.#pick([0, -1, -0, 1e308, -1e308, 9007199254740993, 1e-320, 2 ** 31, 4.5]),
      () => "",
      () => "a\u0000b",
      () => "lone \ud800 surrogate",
      () => "\udfff",
      () => "x".repeat(this.#int(70_000)),
      () => this.#pick(["online", "paused", "completed", "failed", "__proto__", "constructor"]),
      () => [],
      () => [1, "two", null, { three: 3 }],
      () => ({}),
      () => ({ __proto__: { polluted: true } } as unknown as Json),
      () => this.#nested(this.#int(60)),
      () => crypto.randomUUID(),
    ];
    return this.#pick(choices)();
  }

  #nested(depth: number): Json {
    let v: Json = "bottom";
    for (let i = 0; i < depth; i++) v = this.#r() < 0.5 ? [v] : { k: v };
    return v;
  }

  #realJob(): { job_id: string; lease_id: string } {
    const jobs = this.#jobs();
    const job = jobs.length ? this.#pick(jobs) : { job_id: crypto.randomUUID(), lease_id: null };
    return { job_id: job.job_id, lease_id: job.lease_id ?? crypto.randomUUID() };
  }

  /** A valid frame of a random robot → orchestrator type, often about a real job. */
  #valid(): { type: string; payload: Record<string, Json> } {
    const ref = this.#realJob();
    const entry = { timestamp: new Date().toISOString(), level: "info", message: "fuzz" };
    const templates: (() => { type: string; payload: Record<string, Json> })[] = [
      () => ({
        type: "register",
        payload: {
          robot_id: this.#robotId,
          name: "fuzzer",
          capabilities: ["fuzz"],
          tags: [],
          max_concurrent_jobs: 1,
          auth_token: "test-robot-token",
        },
      }),
      () => ({
        type: "heartbeat",
        payload: { robot_id: this.#robotId, status: "online", current_jobs: 0, active_job_ids: [] },
      }),
      () => ({ type: "status_update", payload: { robot_id: this.#robotId, status: "paused" } }),
      () => ({ type: "status_update", payload: { robot_id: this.#robotId, status: "online" } }),
      () => ({ type: "job_accepted", payload: ref }),
      () => ({ type: "job_rejected", payload: { ...ref, reason: "fuzz" } }),
      () => ({ type: "job_progress", payload: { ...ref, progress: 50, message: "half" } }),
      () => ({ type: "job_log", payload: { ...ref, entries: [entry] } }),
      () => ({
        type: "job_result",
        payload: {
          ...ref,
          status: this.#pick(["completed", "failed", "cancelled"]),
          outputs: { stolen: true },
          logs: [entry],
          execution_time: 1,
          node_results: {},
        },
      }),
      () => ({ type: "error", payload: { code: "fuzz", message: "robot-side error" } }),
    ];
    return this.#pick(templates)();
  }

  #envelope(type: Json, payload: Json): string {
    return JSON.stringify({
      type,
      id: crypto.randomUUID(),
      timestamp: new Date().toISOString(),
      payload,
    });
  }

  /** The next hostile frame: text, or bytes for a binary frame. */
  next(): string | Uint8Array<ArrayBuffer> {
    const kind = this.#int(100);
    if (kind < 40) {
      // Mutation of a valid frame: a field dropped, retyped or made hostile.
      const { type, payload } = this.#valid();
      const keys = Object.keys(payload);
      const n = 1 + this.#int(3);
      for (let i = 0; i < n && keys.length; i++) {
        const key = this.#r() < 0.8 ? this.#pick(keys) : this.#pick(["extra", "__proto__", ""]);
        const value = this.#weird();
        if (value === undefined) delete payload[key];
        else payload[key] = value;
      }
      return this.#envelope(type, payload);
    }
    if (kind < 55) {
      // A valid frame, for a job that is another robot's (or no longer exists).
      const { type, payload } = this.#valid();
      return this.#envelope(type, payload);
    }
    if (kind < 65) {
      // Type confusion in the envelope.
      const { type, payload } = this.#valid();
      const t = this.#r() < 0.5 ? this.#weird() ?? 7 : type;
      const p = this.#r() < 0.5 ? this.#weird() ?? "payload" : payload;
      return this.#envelope(t, p);
    }
    if (kind < 72) {
      // Deep nesting, past the limit most of the time.
      const { type, payload } = this.#valid();
      payload.outputs = this.#nested(20 + this.#int(3000));
      return this.#envelope(type, payload);
    }
    if (kind < 80) {
      // Text edits of a valid frame: truncated, a character replaced, bytes appended.
      const text = this.#envelope(this.#valid().type, this.#valid().payload);
      const at = this.#int(text.length);
      const edit = this.#int(3);
      if (edit === 0) return text.slice(0, at);
      if (edit === 1) {
        return text.slice(0, at) + this.#pick(['"', "{", "]", "\\", "\u0000", "💥"]) +
          text.slice(at + 1);
      }
      return text + this.#pick(["}", ",", " trailing", "\ud800"]);
    }
    if (kind < 88) {
      // Random bytes, as a binary or text frame.
      const bytes = new Uint8Array(1 + this.#int(512));
      for (let i = 0; i < bytes.length; i++) bytes[i] = this.#int(256);
      return this.#r() < 0.5 ? bytes : String.fromCharCode(...bytes.subarray(0, 200));
    }
    if (kind < 89 && this.#r() < 0.3) {
      // Rarely: a frame over the size limit.
      return this.#envelope("job_log", { entries: ["y".repeat(1024 * 1024 + this.#int(1024))] });
    }
    // Unknown or near-miss message types.
    return this.#envelope(
      this.#pick([
        "job_teleport",
        "Register",
        "register ",
        "heartbeat\u0000",
        "",
        "job_result_ack",
        "shutdown",
        "draining",
      ]),
      this.#valid().payload,
    );
  }
}

/** One fuzzing connection: sends batches of hostile frames, each followed by a probe. */
async function fuzzConnection(
  o: TestOrchestrator,
  index: number,
  frames: number,
  jobs: () => { job_id: string; lease_id: string | null }[],
): Promise<{ sent: number; reconnects: number; errors: Map<string, number> }> {
  const gen = new FrameGenerator(SEED + index, `fuzz-${index}`, jobs);
  const errors = new Map<string, number>();
  let sent = 0;
  let reconnects = 0;
  while (sent < frames) {
    const ws = new WebSocket(o.wsUrl);
    const replies = new Map<string, () => void>();
    let closed = false;
    const onClosed = new Promise<void>((resolve) => {
      ws.onclose = () => {
        closed = true;
        for (const r of replies.values()) r();
        resolve();
      };
    });
    ws.onerror = () => {};
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      if (msg.type === "error") {
        errors.set(msg.payload.code, (errors.get(msg.payload.code) ?? 0) + 1);
      }
      const done = replies.get(msg.correlation_id);
      if (done) {
        replies.delete(msg.correlation_id);
        done();
      }
    };
    const opened = await new Promise<boolean>((resolve) => {
      ws.onopen = () => resolve(true);
      onClosed.then(() => resolve(false));
    });
    if (!opened) continue;
    // Half of the connections register first (as their own fuzz robot), half never do.
    if (index % 2 === 0) {
      const id = crypto.randomUUID();
      const ack = new Promise<void>((resolve) => replies.set(id, resolve));
      ws.send(JSON.stringify({
        type: "register",
        id,
        payload: { robot_id: `fuzz-${index}`, capabilities: ["fuzz"], auth_token: o.robotToken },
      }));
      await ack;
    }
    while (!closed && sent < frames) {
      const batch = 10 + Math.floor(Math.random() * 15);
      for (let i = 0; i < batch && sent < frames && !closed; i++) {
        ws.send(gen.next());
        sent++;
      }
      // A probe that is always answered paces the connection (one round trip per batch).
      const id = crypto.randomUUID();
      const answered = new Promise<void>((resolve) => replies.set(id, resolve));
      if (closed) break;
      ws.send(JSON.stringify({ type: "heartbeat", id, payload: {} }));
      await answered;
    }
    if (!closed) {
      ws.close();
      await onClosed;
    }
    reconnects++;
  }
  return { sent, reconnects, errors };
}

for (const backend of BACKENDS) {
  const FRAMES = framesFor(backend.name);
  Deno.test(`[${backend.name}] ${FRAMES} hostile frames while real jobs run: no crash, every job completed once, log verifies`, async () => {
    const { store, drop } = await backend.open();
    const o = await startOrchestrator(store, { heartbeatInterval: 5, heartbeatTimeout: 120 });
    const wf = JSON.parse(await Deno.readTextFile(new URL("stress_task_6.json", WORKFLOWS_DIR)));
    const robot = new RobotClient({
      url: o.wsUrl,
      token: o.robotToken,
      name: GOOD_ROBOT,
      capabilities: ["good"],
      maxConcurrentJobs: 4,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const jobIds: string[] = [];
    const started = performance.now();
    try {
      await robot.start();
      const submit = async () => {
        const res = await o.api("POST", "/api/v1/jobs", {
          workflow: wf,
          required_capabilities: ["good"],
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        jobIds.push(res.body.job_id);
      };
      for (let i = 0; i < JOBS / 2; i++) await submit();
      const jobs = () =>
        jobIds.map((job_id) => ({
          job_id,
          lease_id: o.orchestrator.core.jobs.get(job_id)?.snapshot.context.lease_id ?? null,
        }));
      const perConnection = Math.ceil(FRAMES / CONNECTIONS);
      const fuzzing = Promise.all(
        Array.from({ length: CONNECTIONS }, (_, i) => fuzzConnection(o, i, perConnection, jobs)),
      );
      // The other half of the jobs are submitted while the fuzzing goes on.
      for (let i = JOBS / 2; i < JOBS; i++) await submit();
      const results = await fuzzing;
      const sent = results.reduce((n, r) => n + r.sent, 0);
      const errors = new Map<string, number>();
      for (const r of results) {
        for (const [k, v] of r.errors) errors.set(k, (errors.get(k) ?? 0) + v);
      }
      console.log(
        `fuzz seed ${SEED}: ${sent} frames on ${results.reduce((n, r) => n + r.reconnects, 0)} ` +
          `connections in ${((performance.now() - started) / 1000).toFixed(1)} s; errors ${
            JSON.stringify(Object.fromEntries(errors))
          }`,
      );
      assert.ok(sent >= FRAMES, `sent ${sent}`);
      for (
        const code of [
          "invalid_json",
          "invalid_message",
          "unknown_type",
          "stale_lease",
          "not_registered",
        ]
      ) {
        assert.ok((errors.get(code) ?? 0) > 0, `no ${code} error seen`);
      }

      for (const jobId of jobIds) {
        const view = await o.waitForJob(
          jobId,
          ["completed", "failed", "cancelled", "timeout"],
          AbortSignal.timeout(60_000),
        );
        assert.equal(view.status, "completed", `job ${jobId}`);
      }
      for (const jobId of jobIds) {
        const events = await store.readStream(`job-${jobId}`);
        const terminal = events.filter((e) =>
          ["job.completed", "job.failed", "job.cancelled", "job.timed_out"].includes(e.type)
        );
        assert.deepEqual(terminal.map((e) => e.type), ["job.completed"], `job ${jobId}`);
        for (const e of events.filter((e) => e.type === "job.dispatched")) {
          assert.equal(e.data.robot_id, GOOD_ROBOT, `job ${jobId} went to ${e.data.robot_id}`);
        }
        assert.equal(
          (terminal[0].data.result as { outputs: Record<string, unknown> }).outputs.stolen,
          undefined,
        );
      }
      console.log(
        `all ${JOBS} jobs completed at ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      assert.equal((await fetch(`${o.url}/healthz`).then((r) => r.json())).status, "ok");
      const verified = await verifyLog(store);
      assert.equal(verified.ok, true, JSON.stringify(verified));
    } finally {
      await robot.close();
      await o.stop();
      await drop();
    }
  });
}
