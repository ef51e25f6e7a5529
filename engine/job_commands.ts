/**
 * Job commands of the reference's `OrchestratorEngine`: `submit_job`, `cancel_job`,
 * `get_job_status`, and the jobs read model served by the API.
 *
 * @module
 */
import {
  InvalidTransitionError,
  type JobContext,
  type JobStatus,
  priorityName,
  TERMINAL_STATUSES,
  type WorkflowRef,
} from "../actors/mod.ts";
import type { CommitOptions, EngineCore } from "./orchestrator_engine.ts";
import type { RetryPolicy } from "./retry_policy.ts";
import type { LoadBalancingStrategy } from "./robot_pool.ts";
import { DEFAULT_ORG } from "./org_index.ts";
import { uuidFromSha256 } from "../schedules/schedule_state.ts";

/** Input of {@linkcode JobCommands.submit}, already validated by the caller. */
export interface SubmitJobInput {
  /** CasareRPA workflow JSON. */
  workflow: Record<string, unknown>;
  variables?: Record<string, unknown>;
  /** 0 low … 3 critical. @default 1 */
  priority?: number;
  /** Seconds; default: the workflow's `settings.timeout`, else the engine default. */
  timeout?: number;
  robot_id?: string | null;
  required_capabilities?: string[];
  /** Id of the workflow; default: derived from its metadata name. */
  workflow_id?: string;
  /** Name and version of a stored workflow; default: from the content's `metadata`. */
  workflow_name?: string;
  workflow_version?: string;
  /** The finished job this one retries (`POST /api/v1/jobs/:id/retry`). */
  retry_of?: string;
  /** Load-balancing strategy of this job; default: the orchestrator's `LOAD_BALANCING`. */
  load_balancing?: LoadBalancingStrategy | null;
  /** Retry policy; default: the workflow's `settings.retry_count` as `max_retries`, else the engine's. */
  retry?: RetryPolicy;
  /** Id of the job; default: a random UUID. */
  job_id?: string;
  /** The org the job belongs to (recorded in `job.submitted`). @default "default" */
  org_id?: string;
  /**
   * `Idempotency-Key` of the request with the SHA-256 of its body: the same key gives the
   * same job (the job id is derived from the key); the same key with another body is an
   * {@linkcode IdempotencyKeyReusedError}.
   */
  idempotency?: { key: string; request_sha256: string };
}

/** Longest time limit of one attempt, in seconds (7 days). */
export const MAX_JOB_TIMEOUT_SECONDS = 7 * 24 * 3600;

/** Thrown when an `Idempotency-Key` is reused with a different request body. */
export class IdempotencyKeyReusedError extends Error {
  override name = "IdempotencyKeyReusedError";
  readonly key: string;
  constructor(key: string) {
    super(`Idempotency-Key ${key} was already used with a different request body`);
    this.key = key;
  }
}

/**
 * The job id an idempotency key stands for: a name-based UUID of the key, and of the org
 * for orgs other than `default` (so two orgs using the same key get two jobs, and neither
 * sees the other's).
 */
export function jobIdForIdempotencyKey(key: string, orgId: string = DEFAULT_ORG): Promise<string> {
  return uuidFromSha256(orgId === DEFAULT_ORG ? `job:${key}` : `job:${orgId}:${key}`);
}

/** A job as the API shows it: the reference's `Job` fields plus progress and lease. */
export interface JobView {
  job_id: string;
  workflow_id: string | null;
  workflow_name: string | null;
  /** Version of the workflow the job runs (a stored workflow's version number, as text). */
  workflow_version: string | null;
  status: JobStatus;
  priority: string;
  variables: Record<string, unknown>;
  robot_id: string | null;
  created_at: string | null;
  queued_at: string | null;
  dispatched_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  error: string | null;
  /** Seconds. */
  timeout: number;
  attempt: number;
  deadline: string | null;
  progress: number;
  current_node: string | null;
  cancel_requested: boolean;
  queue_reason: string | null;
  /** Failed attempts that were retried, and the most allowed. */
  failures: number;
  max_retries: number;
  /** When a retried job becomes eligible again (RFC 3339), else null. */
  retry_at: string | null;
  /** The finished job this one retries, else null. */
  retry_of: string | null;
  /** Load-balancing strategy asked for this job, else null (the orchestrator's default). */
  load_balancing: string | null;
  result: JobContext["result"];
  /** The org the job belongs to. */
  org_id?: string;
}

/** Filters and paging of {@linkcode JobCommands.list}. Instants are RFC 3339 UTC. */
export interface JobListOptions {
  status?: JobStatus;
  workflow_id?: string;
  /** Robot holding (or that last held) the job. */
  robot_id?: string;
  /** Only jobs created strictly after / before these instants. */
  created_after?: string;
  created_before?: string;
  /** @default "desc" (newest first) */
  order?: "asc" | "desc";
  /** `next_cursor` of the previous page. */
  cursor?: string;
  /** @default 100 */
  limit?: number;
  /** Only jobs of this org. */
  org_id?: string;
}

/** Thrown when a job id is unknown. */
export class JobNotFoundError extends Error {
  override name = "JobNotFoundError";
  readonly jobId: string;
  constructor(jobId: string) {
    super(`Job ${jobId} does not exist`);
    this.jobId = jobId;
  }
}

/** Thrown when a cancel arrives after the job already finished. Carries the final view. */
export class JobAlreadyFinishedError extends Error {
  override name = "JobAlreadyFinishedError";
  readonly job: JobView;
  constructor(job: JobView) {
    super(`Job ${job.job_id} already ended ${job.status}`);
    this.job = job;
  }
}

/** Hooks the commands need from the rest of the engine. */
export interface JobCommandHooks {
  /** Asks the robot holding a lease to stop the job (protocol `cancel_job`). */
  sendCancel(robotId: string, jobId: string, leaseId: string, reason: string): void;
  /**
   * Arms the timer after which an unconfirmed cancel revokes the lease, at the absolute
   * `graceDeadline` (RFC 3339) recorded in `job.cancel_requested`.
   */
  armCancelGrace(jobId: string, leaseId: string, graceDeadline: string): void;
}

/** Job commands and queries. */
export class JobCommands {
  #core: EngineCore;
  #hooks: JobCommandHooks;
  constructor(core: EngineCore, hooks: JobCommandHooks) {
    this.#core = core;
    this.#hooks = hooks;
  }

  /**
   * Submits a job: records `job.submitted` and `job.queued` in one append.
   * @param options `asLeader`: a schedule tick's job, fenced in cluster mode (see
   *   `CommitOptions`).
   * @returns the job's view right after submission.
   * @throws {FencedError} With `asLeader`, when this node's term is over.
   */
  async submit(
    input: SubmitJobInput,
    options: CommitOptions = {},
  ): Promise<JobView & { replayed?: boolean; position?: number }> {
    const jobId = input.idempotency
      ? await jobIdForIdempotencyKey(input.idempotency.key, input.org_id)
      : input.job_id ?? crypto.randomUUID();
    const existing = this.#replayed(jobId, input);
    if (existing) return existing;
    const now = this.#core.nowIso();
    const meta = (input.workflow.metadata ?? {}) as Record<string, unknown>;
    const settings = (input.workflow.settings ?? {}) as Record<string, unknown>;
    const name = input.workflow_name ?? (typeof meta.name === "string" ? meta.name : "workflow");
    const workflow: WorkflowRef = {
      workflow_id: input.workflow_id ?? slug(name),
      name,
      version: input.workflow_version ??
        (typeof meta.version === "string" ? meta.version : "1.0.0"),
      content: input.workflow,
    };
    const settingsTimeout = Number(settings.timeout);
    // Clamped to (0, 7 days] whatever the source, so a deadline is always a valid instant.
    const timeout = Math.min(
      MAX_JOB_TIMEOUT_SECONDS,
      input.timeout ??
        (Number.isFinite(settingsTimeout) && settingsTimeout > 0
          ? settingsTimeout
          : this.#core.config.defaultJobTimeout),
    );
    const retryCount = settings.retry_count;
    const retry = input.retry ??
      (typeof retryCount === "number" && Number.isInteger(retryCount) && retryCount >= 0
        ? { ...this.#core.config.retry, max_retries: Math.min(retryCount, 100) }
        : this.#core.config.retry);
    const commit = this.#core.commit(
      [{
        streamId: `job-${jobId}`,
        events: [
          {
            type: "job.submitted",
            data: {
              job_id: jobId,
              org_id: input.org_id ?? DEFAULT_ORG,
              workflow,
              variables: input.variables ?? {},
              priority: input.priority ?? 1,
              timeout,
              robot_id: input.robot_id ?? null,
              required_capabilities: input.required_capabilities ?? [],
              retry,
              created_at: now,
              idempotency_key: input.idempotency?.key ?? null,
              request_sha256: input.idempotency?.request_sha256 ?? null,
              ...(input.retry_of ? { retry_of: input.retry_of } : {}),
              ...(input.load_balancing ? { load_balancing: input.load_balancing } : {}),
            },
          },
          { type: "job.queued", data: { queued_at: now, reason: "submitted" } },
        ],
      }],
      {},
      options,
    );
    let recorded;
    try {
      recorded = await commit;
    } catch (error) {
      // Two requests with one key raced: the loser answers with the winner's job.
      const winner = error instanceof InvalidTransitionError && this.#replayed(jobId, input);
      if (winner) return winner;
      throw error;
    }
    return { ...this.view(jobId)!, position: recorded[recorded.length - 1].globalPosition };
  }

  #replayed(jobId: string, input: SubmitJobInput): (JobView & { replayed: true }) | undefined {
    const state = this.#core.jobs.get(jobId);
    if (!state || state.snapshot.context.job_id === null) return undefined;
    const c = state.snapshot.context;
    if (input.idempotency && c.request_sha256 !== input.idempotency.request_sha256) {
      throw new IdempotencyKeyReusedError(input.idempotency.key);
    }
    if (!input.idempotency && !input.job_id) return undefined;
    return { ...toJobView(state.snapshot.value as JobStatus, c), replayed: true };
  }

  /**
   * Cancels a job. A pending or queued job is cancelled at once; a dispatched or running one
   * is asked to stop (`cancel_job`) and ends `cancelled` when its robot confirms, or when
   * the grace period ends.
   * @throws {JobNotFoundError} for an unknown job.
   * @throws {JobAlreadyFinishedError} when it already ended (the API answers 409).
   */
  async cancel(jobId: string, reason = "cancelled by user"): Promise<JobView> {
    for (let attempt = 0;; attempt++) {
      const job = this.view(jobId);
      if (!job) throw new JobNotFoundError(jobId);
      if (TERMINAL_STATUSES.has(job.status)) throw new JobAlreadyFinishedError(job);
      const ctx = this.#core.jobs.get(jobId)!.snapshot.context;
      if (job.status === "pending" || job.status === "queued") {
        try {
          // Checked again when decided: a dispatch of this job may be in flight, and a bare
          // `job.cancelled` after it would end the job without telling or freeing its robot.
          await this.#core.commit([{
            streamId: `job-${jobId}`,
            inStates: ["pending", "queued"],
            events: [{
              type: "job.cancelled",
              data: { cancelled_at: this.#core.nowIso(), reason },
            }],
          }]);
        } catch (error) {
          // It left the queue meanwhile (dispatched, or ended): decide again on what it is now.
          if (error instanceof InvalidTransitionError && attempt < 3) continue;
          throw error;
        }
      } else if (!ctx.cancel_requested && ctx.robot_id && ctx.lease_id) {
        // The grace deadline is in the log as an absolute instant, like a job's deadline:
        // whichever process keeps deadlines enforces it, after a restart or a failover too.
        const now = this.#core.clock.now();
        const graceDeadline = new Date(now + this.#core.config.cancelGrace * 1000).toISOString();
        await this.#core.commit([{
          streamId: `job-${jobId}`,
          events: [{
            type: "job.cancel_requested",
            data: {
              requested_at: new Date(now).toISOString(),
              reason,
              grace_deadline: graceDeadline,
            },
          }],
        }]);
        this.#hooks.sendCancel(ctx.robot_id, jobId, ctx.lease_id, reason);
        this.#hooks.armCancelGrace(jobId, ctx.lease_id, graceDeadline);
      }
      return this.view(jobId)!;
    }
  }

  /** The job's view, or undefined when unknown. */
  view(jobId: string): JobView | undefined {
    const state = this.#core.jobs.get(jobId);
    if (!state || state.snapshot.context.job_id === null) return undefined;
    return {
      ...toJobView(state.snapshot.value as JobStatus, state.snapshot.context),
      org_id: this.#core.orgs.orgOf(`job-${jobId}`),
    };
  }

  /**
   * Jobs matching the filters, sorted by `created_at` then `job_id` (newest first unless
   * `order` is `"asc"`), at most `limit` (default 100) after the `cursor` position.
   * @returns the page and the cursor of its last job when more may follow, else null.
   */
  list(options: JobListOptions = {}): { jobs: JobView[]; next_cursor: string | null } {
    const asc = options.order === "asc";
    const key = (v: JobView) => `${v.created_at}|${v.job_id}`;
    const views: JobView[] = [];
    for (const state of this.#core.jobs.values()) {
      const c = state.snapshot.context;
      if (c.job_id === null) continue;
      if (
        options.org_id !== undefined && this.#core.orgs.orgOf(`job-${c.job_id}`) !== options.org_id
      ) {
        continue;
      }
      if (options.status && state.snapshot.value !== options.status) continue;
      if (options.workflow_id && c.workflow?.workflow_id !== options.workflow_id) continue;
      if (options.robot_id && c.robot_id !== options.robot_id) continue;
      if (options.created_after && c.created_at! <= options.created_after) continue;
      if (options.created_before && c.created_at! >= options.created_before) continue;
      const view = {
        ...toJobView(state.snapshot.value as JobStatus, c),
        org_id: this.#core.orgs.orgOf(`job-${c.job_id}`),
      };
      if (options.cursor && (asc ? key(view) <= options.cursor : key(view) >= options.cursor)) {
        continue;
      }
      views.push(view);
    }
    views.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (asc ? 1 : -1));
    const limit = options.limit ?? 100;
    const page = views.slice(0, limit);
    return {
      jobs: page,
      next_cursor: views.length > limit && page.length > 0 ? key(page[page.length - 1]) : null,
    };
  }
}

/** The API view of a job in `status` with context `c`. */
export function toJobView(status: JobStatus, c: JobContext): JobView {
  return {
    job_id: c.job_id!,
    workflow_id: c.workflow?.workflow_id ?? null,
    workflow_name: c.workflow?.name ?? null,
    workflow_version: c.workflow?.version ?? null,
    status,
    priority: priorityName(c.priority),
    variables: c.variables,
    robot_id: c.robot_id,
    created_at: c.created_at,
    queued_at: c.queued_at,
    dispatched_at: c.dispatched_at,
    started_at: c.started_at,
    completed_at: c.completed_at,
    error: c.error,
    timeout: c.timeout,
    attempt: c.attempt,
    deadline: c.deadline,
    progress: c.progress,
    current_node: c.current_node,
    cancel_requested: c.cancel_requested,
    queue_reason: c.queue_reason,
    failures: c.failures,
    max_retries: c.retry.max_retries,
    retry_at: c.retry_at,
    retry_of: c.retry_of,
    load_balancing: c.load_balancing,
    result: c.result,
  };
}

function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "workflow";
}
