/**
 * Graceful shutdown (SIGTERM), after the reference's lifecycle "4. Shutdown": stop the
 * scheduler, stop dispatching, tell robots, let running jobs finish up to a drain
 * timeout, requeue what remains, close.
 *
 * @module
 */
import { InvalidTransitionError, type JobStatus } from "../actors/mod.ts";
import type { Orchestrator } from "./orchestrator.ts";

/** Options of {@linkcode drainOrchestrator}. */
export interface DrainOptions {
  /** Seconds to wait for running jobs. @default the engine's `drainTimeout` */
  timeoutSeconds?: number;
  /** Where progress lines go. @default console.log */
  log?: (line: string) => void;
  /** Aborting it ends the wait at once (a second SIGTERM): what runs is requeued. */
  signal?: AbortSignal;
}

/** What a drain did. */
export interface DrainReport {
  /** Jobs that were dispatched or running when the drain began and ended during it. */
  finished: string[];
  /** Jobs still dispatched or running at the drain timeout, put back in the queue. */
  requeued: string[];
  /** Time the drain waited for running jobs, in ms. */
  waitedMs: number;
}

/** Reason recorded on `job.queued` for a job requeued by a shutdown. */
export const SHUTDOWN_REQUEUE_REASON = "orchestrator_shutdown";

/**
 * Drains the orchestrator, then stops it ({@linkcode Orchestrator.stop}; the store stays
 * open).
 *
 * 1. The scheduler stops (no tick submits a job) and the dispatcher stops (no job is
 *    assigned; submissions are still accepted and wait in the queue for the next start).
 * 2. Every connected robot gets `draining {reason, drain_timeout, deadline}` (an
 *    extension of protocol version 1; robots that connect meanwhile get it too). Robots
 *    keep reporting: progress, logs and results are recorded as usual.
 * 3. The drain waits until no job is dispatched or running, or `timeoutSeconds`.
 * 4. Each job still dispatched or running is put back in the queue (`job.queued` with
 *    reason `orchestrator_shutdown` and `robot.job_released`, in one append), and its robot
 *    gets `cancel_job` for the old lease, so that it stops the work; a late result of that
 *    lease is refused as stale.
 * 5. Robot connections are closed (1001) and timers stopped.
 *
 * @returns which jobs finished during the drain and which were requeued.
 */
export async function drainOrchestrator(
  orchestrator: Orchestrator,
  options: DrainOptions = {},
): Promise<DrainReport> {
  const { core, dispatcher, sessions, scheduler } = orchestrator;
  const log = options.log ?? console.log;
  const seconds = options.timeoutSeconds ?? core.config.drainTimeout;
  await scheduler.stop();
  await dispatcher.halt();
  const inFlight = (): string[] =>
    [...core.jobs].filter(([, s]) => isInFlight(s.snapshot.value as JobStatus)).map(([id]) => id);
  const atStart = inFlight();
  const startedAt = core.clock.now();
  const deadline = new Date(startedAt + seconds * 1000).toISOString();
  const told = sessions.announceDrain({
    reason: "orchestrator shutting down",
    drain_timeout: seconds,
    deadline,
  });
  log(
    `draining: scheduler and dispatch stopped; ${atStart.length} job(s) running; ` +
      `${told.length} robot(s) told; waiting up to ${seconds} s`,
  );
  await waitUntil(orchestrator, () => inFlight().length === 0, seconds * 1000, options.signal);
  const waitedMs = core.clock.now() - startedAt;
  const requeued: string[] = [];
  for (const jobId of inFlight()) {
    const job = core.jobs.get(jobId)!.snapshot.context;
    const robotId = job.robot_id;
    if (!robotId) continue;
    let outcome: "queued" | "cancelled";
    try {
      outcome = await dispatcher.releaseLease(jobId, robotId, SHUTDOWN_REQUEUE_REASON);
    } catch (error) {
      // The robot's result won the race: the job ended during the drain after all.
      if (error instanceof InvalidTransitionError) continue;
      throw error;
    }
    if (outcome === "cancelled") {
      // Its cancel was requested and not confirmed in time: it ends cancelled, not requeued.
      sessions.send(robotId, "cancel_job", {
        job_id: jobId,
        lease_id: job.lease_id,
        reason: "orchestrator shutting down; the job was cancelled",
      });
      log(`draining: cancelled job ${jobId} (its cancel was requested; robot ${robotId})`);
      continue;
    }
    requeued.push(jobId);
    sessions.send(robotId, "cancel_job", {
      job_id: jobId,
      lease_id: job.lease_id,
      reason: "orchestrator shutting down; the job was requeued",
    });
    log(`draining: requeued job ${jobId} (attempt ${job.attempt} on robot ${robotId})`);
  }
  const finished = atStart.filter((id) => !requeued.includes(id));
  log(
    `drained in ${(waitedMs / 1000).toFixed(1)} s: ${finished.length} job(s) finished, ` +
      `${requeued.length} requeued`,
  );
  await orchestrator.stop();
  return { finished, requeued, waitedMs };
}

function isInFlight(status: JobStatus): boolean {
  return status === "dispatched" || status === "running";
}

/** Resolves when `done()` holds (checked after each applied batch), after `ms`, or on abort. */
function waitUntil(
  orchestrator: Orchestrator,
  done: () => boolean,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  const clock = orchestrator.core.clock;
  return new Promise((resolve) => {
    const finish = () => {
      off();
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", finish);
      resolve();
    };
    const off = orchestrator.core.onEvents(() => {
      if (done()) finish();
    });
    const timer = clock.setTimeout(finish, ms);
    signal?.addEventListener("abort", finish);
    if (done() || signal?.aborted) finish();
  });
}
