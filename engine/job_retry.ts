/**
 * Retrying a finished job from the API: a new job with the same workflow version, variables,
 * priority, time limit, robot request, capabilities and retry policy, linked to the original
 * by `retry_of` (in its `job.submitted` event, so the link is in the log).
 *
 * @module
 */
import { type JobStatus, TERMINAL_STATUSES } from "../actors/mod.ts";
import {
  type JobCommands,
  JobNotFoundError,
  type JobView,
  type SubmitJobInput,
} from "./job_commands.ts";
import type { EngineCore } from "./orchestrator_engine.ts";
import { uuidFromSha256 } from "../schedules/schedule_state.ts";

/** Thrown when retrying a job that has not finished (the API answers 409). */
export class JobNotFinishedError extends Error {
  override name = "JobNotFinishedError";
  readonly jobId: string;
  readonly status: JobStatus;
  constructor(jobId: string, status: JobStatus) {
    super(`Job ${jobId} is ${status}; only a finished job can be retried`);
    this.jobId = jobId;
    this.status = status;
  }
}

/** Options of {@linkcode retryJob}. */
export interface RetryJobOptions {
  /**
   * `Idempotency-Key` of the request: the same key for the same job gives the same new job
   * (its id is derived from both).
   */
  idempotencyKey?: string;
}

/**
 * Submits a new job that runs a finished (completed, failed, cancelled or timed out) job
 * again, with `retry_of` = the original's id.
 * @returns the new job's view, with `replayed` when the idempotency key was seen before and
 *   `position` (global position of its last event) when it was written now.
 * @throws {JobNotFoundError} for an unknown job | {JobNotFinishedError} for a job still
 *   pending, queued, dispatched or running.
 */
export async function retryJob(
  core: EngineCore,
  jobs: JobCommands,
  jobId: string,
  options: RetryJobOptions = {},
): Promise<JobView & { replayed?: boolean; position?: number }> {
  const state = core.jobs.get(jobId);
  const c = state?.snapshot.context;
  if (!state || !c || c.job_id === null || !c.workflow) throw new JobNotFoundError(jobId);
  const status = state.snapshot.value as JobStatus;
  if (!TERMINAL_STATUSES.has(status)) throw new JobNotFinishedError(jobId, status);
  return await jobs.submit({
    workflow: c.workflow.content,
    workflow_id: c.workflow.workflow_id,
    workflow_name: c.workflow.name,
    workflow_version: c.workflow.version,
    variables: c.variables,
    priority: c.priority,
    timeout: c.timeout,
    robot_id: c.requested_robot_id,
    required_capabilities: c.required_capabilities,
    retry: c.retry,
    retry_of: jobId,
    load_balancing: c.load_balancing as SubmitJobInput["load_balancing"],
    org_id: core.orgs.orgOf(`job-${jobId}`),
    job_id: options.idempotencyKey === undefined
      ? undefined
      : await uuidFromSha256(`retry:${jobId}:${options.idempotencyKey}`),
  });
}
