/**
 * The jobs a robot runs: takes or refuses `job_assignment`s, runs accepted jobs, handles
 * `cancel_job`, and reports through the robot's `send`.
 *
 * @module
 */

import { JobReporter, type JobReporterOptions } from "./job_reporter.ts";
import type { JobResultLike } from "./job_result.ts";
import { runJob, toJobResultPayload } from "./job_runner.ts";
import type { CancelJobPayload, Envelope, JobAssignmentPayload } from "./protocol_messages.ts";
import type { JobInfo, RobotLogger } from "./robot_client_options.ts";
import type { WorkflowExecutor } from "./workflow_engine.ts";

/** Sends a message; `durable` ones are kept while disconnected and sent later. */
export type SendMessage = (
  type: string,
  payload: unknown,
  options?: { correlationId?: string; durable?: boolean },
) => void;

/** Options of {@linkcode JobSlots}. */
export interface JobSlotsOptions {
  /** Jobs run at once. */
  maxConcurrentJobs: number;
  /** Runs a workflow. */
  executor: WorkflowExecutor;
  /** Where job events are written. */
  logger: RobotLogger;
  /** Sends protocol messages. */
  send: SendMessage;
  /** Log batching and progress throttling of each job. */
  reporting: Omit<JobReporterOptions, "sendLogs" | "sendProgress">;
  /** After `job_accepted` was sent and the job started. */
  onStarted(info: JobInfo): void;
  /** After `job_rejected` was sent. */
  onRejected(info: JobInfo & { reason: string }): void;
  /** After the result was sent (or dropped, for an abandoned job). */
  onFinished(info: JobInfo & { result: JobResultLike }): void;
}

interface RunningJob extends JobInfo {
  controller: AbortController;
  abandoned: boolean;
}

/** Running jobs of one robot. */
export class JobSlots {
  #o: JobSlotsOptions;
  #jobs = new Map<string, RunningJob>();

  /**
   * Creates an empty set of slots.
   *
   * @param options Capacity, executor, logger, sender and callbacks.
   */
  constructor(options: JobSlotsOptions) {
    this.#o = options;
  }

  /** Number of running jobs. */
  get size(): number {
    return this.#jobs.size;
  }

  /** Ids of the running jobs. */
  get ids(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Whether every slot is taken. */
  get full(): boolean {
    return this.#jobs.size >= this.#o.maxConcurrentJobs;
  }

  /**
   * Answers a `job_assignment`: `job_accepted` and the job starts, or `job_rejected`.
   *
   * @param env The assignment message (the answer's `correlation_id` is its id).
   * @param refusal Why the robot takes no job now (paused, shutting down), if so.
   */
  assign(env: Envelope, refusal?: string): void {
    const p = env.payload as Partial<JobAssignmentPayload>;
    const correlationId = env.id;
    if (
      typeof p.job_id !== "string" || !p.job_id || typeof p.lease_id !== "string" || !p.lease_id
    ) {
      this.#o.send("error", {
        code: "invalid_message",
        message: "job_assignment needs a job_id and a lease_id",
      }, { correlationId });
      return;
    }
    const info: JobInfo = {
      jobId: p.job_id,
      leaseId: p.lease_id,
      workflowName: String(p.workflow?.name ?? ""),
    };
    const ids = { job_id: info.jobId, lease_id: info.leaseId };
    const existing = this.#jobs.get(info.jobId);
    if (existing?.leaseId === info.leaseId) {
      this.#o.send("job_accepted", ids, { correlationId });
      return;
    }
    const reason = existing
      ? "job is already running on this robot under another lease"
      : refusal ??
        (this.full
          ? `robot is at capacity (${this.#jobs.size} of ${this.#o.maxConcurrentJobs} jobs)`
          : undefined);
    if (reason) {
      this.#o.send("job_rejected", { ...ids, reason }, { correlationId });
      this.#o.logger.info(`Rejected job ${info.jobId}: ${reason}`);
      this.#o.onRejected({ ...info, reason });
      return;
    }
    this.#o.send("job_accepted", ids, { correlationId });
    this.#start(info, p as JobAssignmentPayload);
  }

  #start(info: JobInfo, assignment: JobAssignmentPayload): void {
    const job: RunningJob = { ...info, controller: new AbortController(), abandoned: false };
    const ids = { job_id: info.jobId, lease_id: info.leaseId };
    this.#jobs.set(info.jobId, job);
    this.#o.onStarted(info);
    const reporter = new JobReporter({
      ...this.#o.reporting,
      sendLogs: (entries) => {
        if (!job.abandoned) this.#o.send("job_log", { ...ids, entries }, { durable: true });
      },
      sendProgress: (progress) => {
        if (!job.abandoned) this.#o.send("job_progress", { ...ids, ...progress });
      },
    });
    runJob({ assignment, executor: this.#o.executor, signal: job.controller.signal, reporter })
      .then((result) => {
        this.#jobs.delete(info.jobId);
        if (!job.abandoned) {
          const { payload, truncated } = toJobResultPayload(info.jobId, info.leaseId, result);
          if (truncated) this.#o.logger.warn(`Result of job ${info.jobId} was too large; trimmed`);
          this.#o.send("job_result", payload, { durable: true });
        }
        this.#o.logger.info(`Job ${info.jobId} ${result.status}`);
        this.#o.onFinished({ ...info, result });
      })
      .catch((e) => this.#o.logger.error(`Job ${info.jobId} bookkeeping failed: ${e}`));
  }

  /** Answers a `cancel_job`: aborts the run (its result will say `cancelled`) or errors. */
  cancel(env: Envelope): void {
    const p = env.payload as Partial<CancelJobPayload>;
    const job = typeof p.job_id === "string" ? this.#jobs.get(p.job_id) : undefined;
    if (!job) {
      this.#o.send("error", {
        code: "unknown_job",
        message: `No job ${JSON.stringify(p.job_id)} is running on this robot`,
      }, { correlationId: env.id });
      return;
    }
    if (typeof p.lease_id === "string" && p.lease_id && p.lease_id !== job.leaseId) {
      this.#o.send("error", {
        code: "stale_lease",
        message: `Job ${job.jobId} runs under lease ${job.leaseId}, not ${p.lease_id}`,
      }, { correlationId: env.id });
      return;
    }
    this.#o.logger.info(`Cancelling job ${job.jobId}`);
    job.controller.abort(typeof p.reason === "string" && p.reason ? p.reason : "cancel_job");
  }

  /** Cancels every running job (their results will say `cancelled`). */
  abortAll(reason: string): void {
    for (const job of this.#jobs.values()) job.controller.abort(reason);
  }

  /**
   * Stops, without reporting, every job not in `keep` (the orchestrator gave them away
   * while the robot was disconnected).
   *
   * @returns The ids of the jobs dropped.
   */
  abandonAllExcept(keep: ReadonlySet<string>): Set<string> {
    const dropped = new Set<string>();
    for (const job of this.#jobs.values()) {
      if (keep.has(job.jobId)) continue;
      this.#o.logger.warn(`Job ${job.jobId} was given to another robot; stopping it here`);
      job.abandoned = true;
      job.controller.abort("lease lost while disconnected");
      dropped.add(job.jobId);
    }
    return dropped;
  }
}
