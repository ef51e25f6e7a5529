/**
 * The invariants every job must keep whatever failed (issue 5): checked over the whole
 * event log, after a fault-injection scenario or by an operator after an incident.
 *
 * | rule                 | what it means                                                                                 |
 * | -------------------- | --------------------------------------------------------------------------------------------- |
 * | `lost_submission`    | a job the API accepted (201/202 with a `job_id`) has no `job.submitted` in the log             |
 * | `duplicate_submit`   | a job stream holds more than one `job.submitted`                                              |
 * | `duplicate_terminal` | a job has more than one terminal event (`completed`, `failed`, `cancelled`, `timed_out`)      |
 * | `after_terminal`     | an event follows the job's terminal event                                                     |
 * | `overlapping_leases` | a lease is granted (`job.dispatched`) while the previous lease of the job is still active     |
 * | `stale_lease`        | an event carries a `lease_id` that is not the job's active lease (fencing broken)             |
 * | `bad_attempt`        | attempt numbers are not 1, 2, 3… in dispatch order                                            |
 * | `not_terminal`       | with `requireTerminal`: a job that has not ended                                              |
 * | `robot_overcommitted`| a robot holds more jobs than its `max_concurrent_jobs`, or the same job twice                 |
 * | `robot_holds_ended`  | with `requireTerminal`: a robot still holds a job that has ended (a leaked slot)              |
 *
 * A lease is active from its `job.dispatched` until the job is rejected (`job.rejected`),
 * requeued (`job.queued`: robot lost, restarted, send failed), scheduled for a retry
 * (`job.retry_scheduled`) or ends (a terminal event).
 *
 * @module
 */
import { setTimeout as delay } from "node:timers/promises";
import type { RecordedEvent } from "../events/mod.ts";

/** Names of the invariants, as in the module's table. */
export type JobInvariantRule =
  | "lost_submission"
  | "duplicate_submit"
  | "duplicate_terminal"
  | "after_terminal"
  | "overlapping_leases"
  | "stale_lease"
  | "bad_attempt"
  | "not_terminal"
  | "robot_overcommitted"
  | "robot_holds_ended";

/** One broken invariant. */
export interface JobInvariantViolation {
  rule: JobInvariantRule;
  /** `job-<id>` or `robot-<id>`. */
  streamId: string;
  /** Version of the offending event, when one event is at fault. */
  streamVersion?: number;
  /** What was seen, in a sentence. */
  message: string;
}

/** Options of {@linkcode checkJobEvents} and {@linkcode checkJobInvariants}. */
export interface JobInvariantOptions {
  /** Ids of jobs the API accepted; each must be in the log. @default [] */
  accepted?: Iterable<string>;
  /**
   * Whether every job must have ended: set it once robots and time allowed every job to
   * finish (no job waits for a robot that is not there or for a far deadline).
   * @default true
   */
  requireTerminal?: boolean;
}

/** What {@linkcode checkJobEvents} found. */
export interface JobInvariantReport {
  /** True when no invariant is broken. */
  ok: boolean;
  /** Job streams seen. */
  jobs: number;
  /** Events read (all streams). */
  events: number;
  /** Jobs by their final event type (`job.completed`…) or `open` for jobs not ended. */
  outcomes: Record<string, number>;
  /** Every broken invariant, in log order (at most 1000). */
  violations: JobInvariantViolation[];
}

/** Event types that end a job for good. */
export const TERMINAL_JOB_EVENTS: ReadonlySet<string> = new Set([
  "job.completed",
  "job.failed",
  "job.cancelled",
  "job.timed_out",
]);

/** Event types that end the active lease without ending the job. */
const LEASE_ENDING = new Set(["job.rejected", "job.queued", "job.retry_scheduled"]);

/** Event types whose `lease_id` must be the active lease. */
const LEASED = new Set([
  "job.started",
  "job.progressed",
  "job.logged",
  "job.completed",
  "job.rejected",
]);

/** Event types whose `lease_id`, when not null, must be the active lease. */
const MAYBE_LEASED = new Set(["job.failed", "job.retry_scheduled", "job.timed_out"]);

const MAX_VIOLATIONS = 1000;

interface JobTrack {
  submitted: number;
  terminal: RecordedEvent | null;
  lease: string | null;
  attempt: number;
}

/**
 * Checks the job invariants over events of the log (any order of streams; each stream's
 * events in version order, as `readAll` returns them).
 *
 * @param events Every event of the log (other categories are skipped).
 * @param options Accepted job ids; whether every job must have ended.
 * @returns The report; `ok` is false when any invariant is broken.
 * @example Check a log
 * ```ts
 * import { checkJobEvents } from "./job_invariants.ts";
 * const report = checkJobEvents([], { accepted: ["j1"] });
 * console.log(report.ok, report.violations[0].rule); // false lost_submission
 * ```
 */
export function checkJobEvents(
  events: Iterable<RecordedEvent>,
  options: JobInvariantOptions = {},
): JobInvariantReport {
  const requireTerminal = options.requireTerminal ?? true;
  const violations: JobInvariantViolation[] = [];
  const report = (v: JobInvariantViolation) => {
    if (violations.length < MAX_VIOLATIONS) violations.push(v);
  };
  const jobs = new Map<string, JobTrack>();
  const robots = new Map<string, { max: number; held: Set<string> }>();
  let count = 0;
  for (const e of events) {
    count++;
    if (e.streamId.startsWith("job-")) checkJobEvent(e, jobs, report);
    else if (e.streamId.startsWith("robot-")) checkRobotEvent(e, robots, report);
  }
  for (const jobId of options.accepted ?? []) {
    if (!(jobs.get(jobId)?.submitted)) {
      report({
        rule: "lost_submission",
        streamId: `job-${jobId}`,
        message: `Job ${jobId} was accepted by the API but has no job.submitted in the log`,
      });
    }
  }
  const outcomes: Record<string, number> = {};
  for (const [jobId, track] of jobs) {
    const outcome = track.terminal?.type ?? "open";
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (requireTerminal && !track.terminal) {
      report({
        rule: "not_terminal",
        streamId: `job-${jobId}`,
        message: `Job ${jobId} never ended (active lease: ${track.lease ?? "none"})`,
      });
    }
  }
  if (requireTerminal) {
    for (const [robotId, robot] of robots) {
      for (const jobId of robot.held) {
        if (jobs.get(jobId)?.terminal) {
          report({
            rule: "robot_holds_ended",
            streamId: `robot-${robotId}`,
            message: `Robot ${robotId} still holds job ${jobId}, which has ended`,
          });
        }
      }
    }
  }
  return { ok: violations.length === 0, jobs: jobs.size, events: count, outcomes, violations };
}

function checkJobEvent(
  e: RecordedEvent,
  jobs: Map<string, JobTrack>,
  report: (v: JobInvariantViolation) => void,
): void {
  const jobId = e.streamId.slice(4);
  let track = jobs.get(jobId);
  if (!track) {
    track = { submitted: 0, terminal: null, lease: null, attempt: 0 };
    jobs.set(jobId, track);
  }
  const at = { streamId: e.streamId, streamVersion: e.streamVersion };
  const data = e.data as Record<string, unknown>;
  if (track.terminal) {
    report({
      rule: TERMINAL_JOB_EVENTS.has(e.type) ? "duplicate_terminal" : "after_terminal",
      ...at,
      message: `${e.type} at version ${e.streamVersion} follows ${track.terminal.type} ` +
        `at version ${track.terminal.streamVersion}`,
    });
    return;
  }
  const leaseId = typeof data.lease_id === "string" ? data.lease_id : null;
  const fenced = LEASED.has(e.type) || (MAYBE_LEASED.has(e.type) && leaseId !== null);
  if (fenced && leaseId !== track.lease) {
    report({
      rule: "stale_lease",
      ...at,
      message: `${e.type} for lease ${leaseId} while the active lease is ${track.lease ?? "none"}`,
    });
  }
  switch (e.type) {
    case "job.submitted":
      if (++track.submitted > 1) {
        report({ rule: "duplicate_submit", ...at, message: `job.submitted again` });
      }
      return;
    case "job.dispatched": {
      if (track.lease !== null) {
        report({
          rule: "overlapping_leases",
          ...at,
          message: `Lease ${leaseId} granted to ${data.robot_id} while lease ${track.lease} ` +
            `is still active`,
        });
      }
      const attempt = Number(data.attempt);
      if (attempt !== track.attempt + 1) {
        report({
          rule: "bad_attempt",
          ...at,
          message: `Attempt ${data.attempt} follows attempt ${track.attempt}`,
        });
      }
      track.attempt = Number.isSafeInteger(attempt) ? attempt : track.attempt + 1;
      track.lease = leaseId;
      return;
    }
  }
  if (LEASE_ENDING.has(e.type)) track.lease = null;
  if (TERMINAL_JOB_EVENTS.has(e.type)) {
    track.terminal = e;
    track.lease = null;
  }
}

function checkRobotEvent(
  e: RecordedEvent,
  robots: Map<string, { max: number; held: Set<string> }>,
  report: (v: JobInvariantViolation) => void,
): void {
  const robotId = e.streamId.slice(6);
  let robot = robots.get(robotId);
  if (!robot) {
    robot = { max: 1, held: new Set() };
    robots.set(robotId, robot);
  }
  const data = e.data as Record<string, unknown>;
  const at = { streamId: e.streamId, streamVersion: e.streamVersion };
  if (e.type === "robot.registered") {
    robot.max = Number(data.max_concurrent_jobs) || 1;
  } else if (e.type === "robot.job_assigned") {
    const jobId = String(data.job_id);
    if (robot.held.has(jobId)) {
      report({ rule: "robot_overcommitted", ...at, message: `Job ${jobId} assigned twice` });
    }
    robot.held.add(jobId);
    if (robot.held.size > robot.max) {
      report({
        rule: "robot_overcommitted",
        ...at,
        message: `Robot ${robotId} holds ${robot.held.size} jobs, max ${robot.max}`,
      });
    }
  } else if (e.type === "robot.job_released") {
    robot.held.delete(String(data.job_id));
  }
}

/** What {@linkcode checkJobInvariants} reads: the store's `readAll`. */
export interface JobInvariantSource {
  readAll(options: { after?: number; limit?: number }): Promise<RecordedEvent[]>;
  /**
   * Whether committed events are still held back from `readAll` by an older open
   * transaction (`SqlEventStore.hasHeldBackEvents`). When given, the check waits for them.
   */
  hasHeldBackEvents?(): Promise<boolean>;
}

/** How long {@linkcode checkJobInvariants} waits for held-back events, in ms. */
const HELD_BACK_WAIT_MS = 60_000;

/**
 * Reads the whole log (gap-safe `readAll`, 10,000 events a page) and checks the job
 * invariants (see {@linkcode checkJobEvents}).
 *
 * @param store The event store.
 * @param options Accepted job ids; whether every job must have ended.
 * @returns The report.
 * @throws {Error} The store's error when the log cannot be read.
 */
export async function checkJobInvariants(
  store: JobInvariantSource,
  options: JobInvariantOptions = {},
): Promise<JobInvariantReport> {
  const events: RecordedEvent[] = [];
  const until = Date.now() + HELD_BACK_WAIT_MS;
  for (;;) {
    const after = events.length ? events[events.length - 1].globalPosition : 0;
    const page = await store.readAll({ after, limit: 10_000 });
    if (page.length > 0) {
      for (const e of page) events.push(e);
      continue;
    }
    // The gap-safe horizon is the server's oldest open transaction, in any schema or
    // database: on a shared server, events already committed can stay invisible for a
    // moment. The log checked is the whole log, so wait for them (bounded).
    if (!store.hasHeldBackEvents || Date.now() > until) break;
    if (!(await store.hasHeldBackEvents())) break;
    await delay(20);
  }
  return checkJobEvents(events, options);
}
