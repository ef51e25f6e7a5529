/**
 * Shutdown checkpoints: a graceful shutdown that applied at least `checkpointEvery` events
 * since the last start-up checkpoint writes one at the log's end, so that the next start
 * folds nothing; that start ends in the state of a full replay. A shutdown with fewer new
 * events writes nothing, and neither does a kill -9: the next start uses the older one.
 */
import assert from "node:assert/strict";
import { deserialize } from "node:v8";
import { captureCheckpoint, Orchestrator, summarizeReadModels } from "../engine/mod.ts";
import type { SqlEventStore } from "../events/mod.ts";
import { RobotClient } from "../robot/robot_client.ts";
import { BACKENDS, startOrchestrator } from "./_harness.ts";
import {
  api,
  killProcess,
  type OrchestratorProc,
  PROCESS_BACKENDS,
  startOrchestratorProcess,
} from "./_orchestrator_process.ts";
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

/** Starts an orchestrator on `store` without serving; returns its state and start report. */
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
  return { state, summary, report: { ...orchestrator.startReport } };
}

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] a graceful shutdown after checkpointEvery new events writes a checkpoint the next start restores, with the state of a full replay`, async () => {
    const { store, drop } = await backend.open();
    try {
      // An empty log: the start writes no checkpoint; everything is appended after it.
      const t = await startOrchestrator(store, { checkpointEvery: 5 });
      assert.equal(t.orchestrator.startReport.checkpointWritten, false);
      const robot = new RobotClient({
        url: t.wsUrl,
        token: t.robotToken,
        name: "robot-s",
        maxConcurrentJobs: 2,
        logger: quiet,
      });
      const lines: string[] = [];
      try {
        await robot.start();
        const wf = JSON.parse(
          await Deno.readTextFile(new URL("stress_task_2.json", WORKFLOWS_DIR)),
        );
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          ids.push(
            (await t.api("POST", "/api/v1/jobs", { workflow: wf, priority: i })).body.job_id,
          );
        }
        await Promise.all(ids.map((id) => t.waitForJob(id, ["completed"])));
        assert.equal((await t.api("POST", "/api/v1/tokens", { role: "viewer" })).status, 201);
        await robot.close();
        await t.waitUntil(() => t.orchestrator.robot("robot-s")?.status === "offline");
        const queued = await t.api("POST", "/api/v1/jobs", { workflow: wf });
        await t.waitForJob(queued.body.job_id, ["queued"]);
        // As main.ts does: drain (stops the orchestrator), close the server, then write.
        await t.orchestrator.drain({ timeoutSeconds: 0, log: () => {} });
      } finally {
        await robot.close();
        await t.stop({ keepStore: true });
      }
      const report = await t.orchestrator.writeShutdownCheckpoint({ log: (l) => lines.push(l) });
      assert.equal(report.written, true, report.reason);
      // Read after the write, which waited for events held back by open transactions.
      const last = await store.currentPosition();
      assert.equal(report.position, last);
      assert.ok(report.bytes > 0);
      assert.match(
        lines.join("\n"),
        new RegExp(`^shutdown checkpoint written at position ${last} \\(\\d+ events since`),
      );

      const restored = await startOn(store, 5);
      assert.equal(restored.report.restoredPosition, last);
      assert.equal(restored.report.eventsFolded, 0);
      // checkpointEvery 0: no checkpoint read: the whole log.
      const full = await startOn(store, 0);
      assert.equal(full.report.restoredPosition, 0);
      assert.ok(full.report.eventsFolded > 20, `${full.report.eventsFolded} events`);
      assert.deepEqual(restored.state, full.state);
      assert.deepEqual(restored.summary, full.summary);
      assert.equal(full.summary.jobs.length, 4);

      // A shutdown with fewer new events (one submitted job: 2 events) writes nothing.
      const u = await startOrchestrator(store, { checkpointEvery: 5 });
      assert.equal(u.orchestrator.startReport.restoredPosition, last);
      const { body } = await u.api("POST", "/api/v1/jobs", { workflow: { nodes: {} } });
      await u.waitForJob(body.job_id, ["queued"]);
      await u.orchestrator.drain({ timeoutSeconds: 0, log: () => {} });
      await u.stop({ keepStore: true });
      const none = await u.orchestrator.writeShutdownCheckpoint({ log: (l) => lines.push(l) });
      assert.deepEqual([none.written, none.reason], [false, "few events"]);
      assert.equal(none.position, await store.currentPosition());
      assert.equal(lines.length, 1);
      const again = await startOn(store, 5);
      assert.equal(again.report.restoredPosition, last);
      assert.equal(again.report.eventsFolded, 2);
    } finally {
      await store.close();
      await drop();
    }
  });
}

/** The position of the start-up checkpoint a process restored, and the events it folded. */
function startLine(orch: OrchestratorProc): { restored: number; folded: number } {
  const m = orch.output().match(
    /\((\d+) events folded(?: after the start-up checkpoint at (\d+))?\); ready/,
  );
  assert.ok(m, orch.output());
  return { restored: Number(m[2] ?? 0), folded: Number(m[1]) };
}

for (const [name, setup] of PROCESS_BACKENDS) {
  Deno.test(`[${name}] SIGTERM writes a shutdown checkpoint the next start restores; fewer events or kill -9 write none`, async () => {
    const { env: storeEnv, cleanup } = await setup();
    const env = {
      ...storeEnv,
      ORCHESTRATOR_API_TOKEN: "ckpt-api-token",
      ORCHESTRATOR_ROBOT_TOKEN: "ckpt-robot-token",
      CHECKPOINT_EVERY: "5",
      SEAL_INTERVAL: "0",
    };
    const procs: OrchestratorProc[] = [];
    const start = async () => {
      const orch = await startOrchestratorProcess(env);
      procs.push(orch);
      return orch;
    };
    const submit = (orch: OrchestratorProc, n: number) =>
      Promise.all(
        Array.from(
          { length: n },
          async () =>
            (await api(orch.url, env.ORCHESTRATOR_API_TOKEN, "POST", "/api/v1/jobs", {
              workflow: { nodes: {} },
            })).status,
        ),
      );
    const stop = async (orch: OrchestratorProc) => {
      orch.child.kill("SIGTERM");
      assert.equal((await orch.child.status).code, 0, orch.output());
    };
    try {
      let orch = await start();
      assert.deepEqual(startLine(orch), { restored: 0, folded: 0 });
      assert.deepEqual(await submit(orch, 4), [201, 201, 201, 201]); // 8 events
      await stop(orch);
      const written = orch.output().match(/shutdown checkpoint written at position (\d+) /);
      assert.ok(written, orch.output());
      const position = Number(written[1]);
      assert.ok(position >= 8, `position ${position}`);

      orch = await start();
      assert.deepEqual(startLine(orch), { restored: position, folded: 0 });
      const jobs = await api(orch.url, env.ORCHESTRATOR_API_TOKEN, "GET", "/api/v1/jobs");
      assert.equal(jobs.body.jobs.length, 4);
      // Two events since the checkpoint: no new one at SIGTERM.
      assert.deepEqual(await submit(orch, 1), [201]);
      await stop(orch);
      assert.doesNotMatch(orch.output(), /shutdown checkpoint written/);

      // kill -9 after 8 more events: nothing written; the next start uses the first one.
      orch = await start();
      assert.equal(startLine(orch).restored, position);
      assert.deepEqual(await submit(orch, 4), [201, 201, 201, 201]);
      await killProcess(orch);
      orch = await start();
      const after = startLine(orch);
      assert.equal(after.restored, position);
      assert.ok(after.folded >= 10, `${after.folded} events folded`);
      const all = await api(orch.url, env.ORCHESTRATOR_API_TOKEN, "GET", "/api/v1/jobs");
      assert.equal(all.body.jobs.length, 9);
    } finally {
      for (const p of procs) await killProcess(p);
      await cleanup();
    }
  });
}
