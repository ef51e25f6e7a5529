/**
 * Start-up checkpoints are a cache: a start that restores one and folds only the log's
 * tail ends in exactly the state of a full replay; a checkpoint of another code version,
 * one whose event is no longer in the log, or damaged bytes are ignored (full replay, same
 * state), and so is a checkpoint table emptied by hand.
 */
import assert from "node:assert/strict";
import { deserialize } from "node:v8";
import {
  captureCheckpoint,
  checkpointCodeVersion,
  compressCheckpoint,
  Orchestrator,
  summarizeReadModels,
} from "../engine/mod.ts";
import type { SqlEventStore } from "../events/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import { WORKFLOWS_DIR } from "./workflow_expectations.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Every folded part of the orchestrator's state, as a checkpoint holds it, and the actors. */
function foldedState(orchestrator: Orchestrator): unknown {
  return {
    checkpoint: deserialize(captureCheckpoint(orchestrator.checkpointParts())),
    jobs: new Map(orchestrator.core.jobs),
    robots: new Map(orchestrator.core.robots),
  };
}

/** Starts an orchestrator on `store` without serving; returns it and its folded state. */
async function startOn(store: SqlEventStore, checkpointEvery: number) {
  const orchestrator = new Orchestrator({
    store,
    robotToken: "test-robot-token",
    config: { checkpointEvery },
  });
  await orchestrator.start();
  await orchestrator.checkpointWritten();
  const state = foldedState(orchestrator);
  const summary = summarizeReadModels(orchestrator.core, orchestrator.core.clock.now());
  await orchestrator.stop();
  return { orchestrator, state, summary, report: { ...orchestrator.startReport } };
}

/**
 * A log with completed jobs (a robot ran them), an API token and a queued job: written by
 * an orchestrator that checkpoints every start folding ≥ 1 event.
 */
async function writeHistory(store: SqlEventStore): Promise<void> {
  const t = await startOrchestrator(store, { checkpointEvery: 1 });
  const robot = new RobotClient({
    url: t.wsUrl,
    token: t.robotToken,
    name: "robot-c",
    maxConcurrentJobs: 2,
    logger: quiet,
  });
  try {
    await robot.start();
    const wf = JSON.parse(await Deno.readTextFile(new URL("stress_task_2.json", WORKFLOWS_DIR)));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await t.api("POST", "/api/v1/jobs", { workflow: wf, priority: i })).body.job_id);
    }
    await Promise.all(ids.map((id) => t.waitForJob(id, ["completed"])));
    assert.equal((await t.api("POST", "/api/v1/tokens", { role: "viewer" })).status, 201);
    await robot.close();
    await t.waitUntil(() => t.orchestrator.robot("robot-c")?.status === "offline");
    const queued = await t.api("POST", "/api/v1/jobs", { workflow: wf });
    await t.waitForJob(queued.body.job_id, ["queued"]);
    await t.orchestrator.subscription!.caughtUp();
  } finally {
    await robot.close();
    await t.stop({ keepStore: true });
  }
}

/** What the read API answers: every listing and the Prometheus metrics folded from the log. */
const READ_PATHS = [
  "/api/v1/jobs?limit=100",
  "/api/v1/robots",
  "/api/v1/alerts",
  "/api/v1/tokens",
  "/api/v1/workflows",
  "/api/v1/schedules",
  "/api/v1/metrics/dashboard",
  "/metrics",
];

/**
 * Starts a serving orchestrator on `store` and reads {@linkcode READ_PATHS}; the metrics
 * text without the lines of this process (uptime, append timings, memory).
 */
async function readApi(store: SqlEventStore, checkpointEvery: number) {
  const t = await startOrchestrator(store, { checkpointEvery });
  try {
    const out: Record<string, unknown> = {};
    for (const path of READ_PATHS) {
      const res = await fetch(t.url + path, {
        headers: { authorization: `Bearer ${t.apiToken}` },
      });
      assert.equal(res.status, 200, path);
      out[path] = path === "/metrics"
        ? (await res.text()).split("\n").filter((line) =>
          !/process_|uptime|append|heap|memory|_created|scrape/.test(line)
        )
        : await res.json();
    }
    return { restoredPosition: t.orchestrator.startReport.restoredPosition, out };
  } finally {
    await t.stop({ keepStore: true });
  }
}

/** Appends a tail after the checkpoint: two more submitted (queued) jobs. */
async function writeTail(store: SqlEventStore): Promise<void> {
  const t = await startOrchestrator(store, { checkpointEvery: 0 });
  try {
    for (let i = 0; i < 2; i++) {
      const { body } = await t.api("POST", "/api/v1/jobs", { workflow: { nodes: {} } });
      await t.waitForJob(body.job_id, ["queued"]);
    }
    await t.orchestrator.subscription!.caughtUp();
  } finally {
    await t.stop({ keepStore: true });
  }
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a start from a checkpoint folds only the tail and ends in the state of a full replay`, async () => {
    const { store, reopen, drop } = await backend.open();
    let current = store;
    try {
      await writeHistory(current);
      // This start folds the whole log and writes a checkpoint at its end.
      const first = await startOn(current, 1);
      assert.equal(first.report.restoredPosition, 0);
      assert.equal(first.report.checkpointWritten, true);
      const checkpointAt = first.orchestrator.core.position;
      await writeTail(current);

      const restored = await startOn(current, 1);
      assert.equal(restored.report.restoredPosition, checkpointAt);
      const tail = (await current.readAll({ after: checkpointAt, limit: 10_000 })).length;
      assert.ok(tail >= 4, `tail of ${tail} events`);
      assert.equal(restored.report.eventsFolded, tail);

      // checkpointEvery 0: no checkpoint read (nor written): the whole log.
      const full = await startOn(current, 0);
      assert.equal(full.report.restoredPosition, 0);
      assert.ok(full.report.eventsFolded > tail);
      assert.deepEqual(restored.state, full.state);
      assert.deepEqual(restored.summary, full.summary);
      assert.equal(full.summary.jobs.length, 6);

      // What the API serves is the same too.
      const viaCheckpoint = await readApi(current, 1);
      assert.ok(viaCheckpoint.restoredPosition > 0);
      const viaFullReplay = await readApi(current, 0);
      assert.equal(viaFullReplay.restoredPosition, 0);
      assert.deepEqual(viaCheckpoint.out, viaFullReplay.out);

      // Through a reopened store too (the checkpoint is in the database).
      await current.close();
      current = await reopen();
      const again = await startOn(current, 1);
      assert.ok(again.report.restoredPosition > 0);
      assert.deepEqual(again.state, full.state);

      // Deleting every checkpoint changes no result.
      assert.ok(await current.snapshots.clearCheckpoints() > 0);
      const none = await startOn(current, 1);
      assert.equal(none.report.restoredPosition, 0);
      assert.deepEqual(none.state, full.state);
    } finally {
      await current.close();
      await drop();
    }
  });

  Deno.test(`[${backend.name}] a checkpoint of another code version, of an event not in the log, or damaged is ignored: full replay, same state`, async () => {
    const { store, drop } = await backend.open();
    try {
      await writeHistory(store);
      const full = await startOn(store, 0);
      const position = full.orchestrator.core.position;
      const [last] = await store.readAll({ after: position - 1, limit: 1 });
      assert.equal(last.globalPosition, position);
      const version = await checkpointCodeVersion({ alerts: full.orchestrator.alerts.config });
      assert.ok(version);
      const good = await compressCheckpoint(captureCheckpoint(full.orchestrator.checkpointParts()));

      const attempts: [string, Parameters<typeof store.snapshots.saveCheckpoint>[0]][] = [
        ["another code version", {
          codeVersion: "another-version",
          position,
          eventId: last.eventId,
          data: good,
        }],
        ["an event id the log does not hold at that position", {
          codeVersion: version,
          position,
          eventId: crypto.randomUUID(),
          data: good,
        }],
        ["bytes that do not gunzip", {
          codeVersion: version,
          position,
          eventId: last.eventId,
          data: good.slice(0, 100),
        }],
        ["bytes that do not deserialise", {
          codeVersion: version,
          position,
          eventId: last.eventId,
          data: await compressCheckpoint(new TextEncoder().encode("not a V8 serialisation")),
        }],
        ["a state of other parts", {
          codeVersion: version,
          position,
          eventId: last.eventId,
          data: await compressCheckpoint(captureCheckpoint({ core: full.orchestrator.core })),
        }],
      ];
      for (const [what, checkpoint] of attempts) {
        await store.snapshots.saveCheckpoint(checkpoint);
        const start = await startOn(store, 1_000_000);
        assert.equal(start.report.restoredPosition, 0, what);
        assert.deepEqual(start.state, full.state, what);
      }

      // The genuine checkpoint is used, with the same result.
      await store.snapshots.saveCheckpoint({
        codeVersion: version,
        position,
        eventId: last.eventId,
        data: good,
      });
      const used = await startOn(store, 1_000_000);
      assert.equal(used.report.restoredPosition, position);
      assert.equal(used.report.eventsFolded, 0);
      assert.deepEqual(used.state, full.state);
      assert.ok(await store.snapshots.loadCheckpoint(version));
      assert.equal(await store.snapshots.loadCheckpoint("another-version"), null);
    } finally {
      await store.close();
      await drop();
    }
  });
}
