// deno-lint-ignore-file no-explicit-any -- JSON bodies of API answers in tests
/**
 * Two orchestrator processes (`main.ts`) on one PostgreSQL schema, on the real clock: a
 * schedule created on one node is followed by the other without a restart, both fire
 * `* * * * * *`, and ten seconds make exactly ten jobs, one per tick. The test awaits the
 * fires through the events API's long poll; it never sleeps.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { TEST_DATABASE_URL } from "./_harness.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const TOKEN = "two-nodes-api-token";
const WORKFLOW = { metadata: { name: "every-second" }, nodes: {}, connections: [] };

interface Node {
  child: Deno.ChildProcess;
  url: string;
  output: () => string;
}

async function startNode(env: Record<string, string>): Promise<Node> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN],
    env: { ...env, ORCHESTRATOR_HOST: "127.0.0.1", ORCHESTRATOR_PORT: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const url = await new Promise<string>((resolve, reject) => {
    const reader = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk);
        const m = text.match(/listening on (http:\/\/[\d.]+:\d+)/);
        if (m && /; ready/.test(text)) resolve(m[1]);
      }
      reject(new Error(`orchestrator exited before listening:\n${text}`));
    };
    reader(child.stdout).catch(reject);
    reader(child.stderr).catch(() => {});
  });
  return { child, url, output: () => text };
}

async function api(n: Node, method: string, path: string, body?: unknown) {
  const res = await fetch(n.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Long-polls the node's events API on `stream` until `done(events so far)` holds.
 * @returns every event of the stream seen.
 */
async function follow(
  n: Node,
  stream: string,
  done: (events: any[]) => boolean,
): Promise<any[]> {
  const seen: any[] = [];
  let after = 0;
  for (let i = 0; i < 200 && !done(seen); i++) {
    const page = (await api(n, "GET", `/api/v1/events?stream=${stream}&after=${after}&wait=5`))
      .body;
    seen.push(...page.events);
    after = page.next_after;
  }
  assert.ok(done(seen), `${stream} never reached the expected events`);
  return seen;
}

/** The first ten consecutive seconds with a fire, when the fires hold them. */
function firstTenSeconds(events: any[]): string[] | null {
  const ticks = [
    ...new Set(
      events.filter((e) => e.type === "schedule.fired")
        .map((e) => e.data.scheduled_for as string),
    ),
  ].sort();
  if (ticks.length < 10) return null;
  return ticks.slice(0, 10);
}

Deno.test("two orchestrator processes on one PostgreSQL schema: * * * * * * for 10 s makes exactly 10 jobs", async () => {
  const schema = `n_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  const env = (dir: string) => ({
    DATA_DIR: dir,
    DATABASE_URL: TEST_DATABASE_URL,
    DATABASE_SCHEMA: schema,
    ORCHESTRATOR_API_TOKEN: TOKEN,
    ORCHESTRATOR_ROBOT_TOKEN: "two-nodes-robot-token",
    SEAL_INTERVAL: "0",
  });
  const nodes: Node[] = [];
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    nodes.push(await startNode(env(dirs[0]))); // creates the schema
    nodes.push(await startNode(env(dirs[1])));
    const [a, b] = nodes;
    const created = await api(a, "POST", "/api/v1/schedules", {
      schedule_id: "tick",
      workflow: WORKFLOW,
      cron_expression: "* * * * * *",
      // A node slowed down past the misfire grace still makes every tick.
      misfire_policy: "run_all",
      catch_up_window: 60,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    // Node B follows the log: it knows the schedule without a restart.
    const onB = await follow(b, "schedule-tick", (events) => firstTenSeconds(events) !== null);
    const window = firstTenSeconds(onB)!;
    const seen = await api(b, "GET", "/api/v1/schedules/tick");
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assert.equal(seen.body.cron_expression, "* * * * * *");
    // ... and changes it: pausing on B stops both nodes.
    assert.equal((await api(b, "POST", "/api/v1/schedules/tick/pause")).status, 200);
    await follow(a, "schedule-tick", (events) => events.some((e) => e.type === "schedule.paused"));

    // Ten consecutive seconds.
    const first = Temporal.Instant.from(window[0]);
    assert.deepEqual(
      window,
      Array.from({ length: 10 }, (_, i) => first.add({ seconds: i }).toString()),
    );

    const events = sql.unsafe(
      `select stream_id, type, data from ${schema}.events order by global_position`,
    );
    const rows = (await events) as unknown as { stream_id: string; type: string; data: any }[];
    const fired = rows.filter((r) =>
      r.stream_id === "schedule-tick" && r.type === "schedule.fired"
    );
    const submitted = rows.filter((r) => r.type === "job.submitted");
    // One fire per tick, one job per fire, no job without a fire.
    const ticks = fired.map((r) => r.data.scheduled_for);
    assert.equal(new Set(ticks).size, ticks.length, `a tick fired twice: ${ticks}`);
    const jobStreams = submitted.map((r) => r.stream_id);
    assert.equal(new Set(jobStreams).size, jobStreams.length, "a job was submitted twice");
    assert.deepEqual(
      new Set(jobStreams),
      new Set(fired.map((r) => `job-${r.data.job_id}`)),
      "every job belongs to exactly one fire",
    );
    const inWindow = fired.filter((r) => window.includes(r.data.scheduled_for));
    assert.equal(inWindow.length, 10);
    const jobsInWindow = new Set(inWindow.map((r) => `job-${r.data.job_id}`));
    assert.equal(submitted.filter((r) => jobsInWindow.has(r.stream_id)).length, 10);
  } finally {
    for (const n of nodes) {
      n.child.kill("SIGKILL");
      await n.child.status;
      await n.child.stdout.cancel().catch(() => {});
    }
    await sql.unsafe(`drop schema if exists ${schema} cascade`);
    await sql.end();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  }
});
