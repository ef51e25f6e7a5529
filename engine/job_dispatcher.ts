/**
 * The reference's `JobDispatcher`: gives queued jobs to robots with room, the moment a job
 * is queued or a robot frees up (event-driven, no polling), and enforces job deadlines.
 *
 * A dispatch is one atomic append to two streams: `job.dispatched` on the job's stream and
 * `robot.job_assigned` on the robot's, each with its expected version, so neither a job
 * assigned twice nor a robot over its `max_concurrent_jobs` can be written.
 *
 * @module
 */
import { InvalidTransitionError, type JobStatus } from "../actors/mod.ts";
import { WrongExpectedVersionError } from "../events/mod.ts";
import type { QueueEntry } from "../projections/queue_projection.ts";
import { retryDelaySeconds } from "./retry_policy.ts";
import type { CommitOptions, EngineCore } from "./orchestrator_engine.ts";
import {
  type Candidate,
  ineligibility,
  type LoadBalancingStrategy,
  selectRobot,
} from "./robot_pool.ts";

/** What the dispatcher needs from the robot connections. */
export interface RobotLinks {
  /** Robot ids with an open, registered connection. */
  connectedRobotIds(): Iterable<string>;
  /** Sends a protocol message to a connected robot; false when it is not connected. */
  send(robotId: string, type: string, payload: Record<string, unknown>): boolean;
}

/** Dispatcher and deadline keeper. */
export class JobDispatcher {
  #core: EngineCore;
  #links: RobotLinks;
  #running = false;
  #again = false;
  #halted = false;
  /** The passes in progress (settles when no pass is running). */
  #passes: Promise<void> = Promise.resolve();
  #lastChosen: string | null = null;
  #deadlines = new Map<string, { leaseId: string; handle: unknown }>();
  #graces = new Map<string, unknown>();
  #wake: { at: number; handle: unknown } | null = null;
  /** Why each queued job could not be dispatched in the last pass (job id → reason). */
  readonly waitReasons = new Map<string, string>();
  /** Robots a workflow is deployed on, preferred for its jobs (set by the orchestrator). */
  deployedRobots: (workflowId: string) => ReadonlySet<string> = () => new Set();
  /**
   * Cluster mode (`engine/cluster.ts`): robots connected to other live nodes. A pass plans
   * the whole fleet — this node's robots and these — with the same strategy over the same
   * log, and writes only the assignments of this node's robots; the jobs it planned for
   * other nodes' robots are left to those nodes, which plan alike. Empty on a single node.
   */
  remoteRobots: () => Iterable<string> = () => [];
  /**
   * Whether this node keeps job deadlines and cancel grace deadlines: true on a single
   * node; in cluster mode only the leader keeps them, armed from the log
   * (`engine/cluster.ts`).
   */
  ownsDeadlines = true;
  /**
   * Whether a pass also plans the jobs this node's own appends queued and the log's
   * read-back has not applied yet (`EngineCore.committedQueue`): a submission is then
   * dispatched right after its commit, not one subscription round trip later. True on a
   * single node; cluster mode turns it off, because there every node must plan from the
   * same log (a job only one node has seen would make the plans differ).
   */
  dispatchFromCommits = true;

  constructor(core: EngineCore, links: RobotLinks) {
    this.#core = core;
    this.#links = links;
  }

  /** Asks for a dispatch pass; passes never overlap, and one requested during a pass runs after it. */
  request(): void {
    if (this.#halted) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#passes = Promise.resolve().then(async () => {
      try {
        do {
          this.#again = false;
          await this.#pass();
        } while (this.#again && !this.#halted);
      } catch (error) {
        console.error("dispatch pass failed:", error);
      } finally {
        this.#running = false;
      }
    });
  }

  /**
   * Stops dispatching for good (graceful shutdown): later requests do nothing; resolves
   * once the pass in progress, if any, has written its assignments.
   */
  async halt(): Promise<void> {
    this.#halted = true;
    await this.#passes;
  }

  #candidates(): (Candidate & { local: boolean })[] {
    const out: (Candidate & { local: boolean })[] = [];
    const local = new Set(this.#links.connectedRobotIds());
    const ids = new Set([...local, ...this.remoteRobots()]);
    for (const robotId of ids) {
      const state = this.#core.robots.get(robotId);
      if (!state) continue;
      const status = state.snapshot.value;
      if (status !== "online" && status !== "busy") continue;
      const c = state.snapshot.context;
      out.push({
        robot_id: robotId,
        org_id: this.#core.orgs.orgOf(`robot-${robotId}`),
        running: c.current_jobs.length,
        max_concurrent_jobs: c.max_concurrent_jobs,
        capabilities: c.capabilities,
        tags: c.tags,
        local: local.has(robotId),
      });
    }
    return out;
  }

  /**
   * One pass over the queue: decides every assignment first (robots' room is tracked as
   * jobs are placed), then writes them all at once, so that group commit puts the whole
   * pass in one transaction.
   */
  async #pass(): Promise<void> {
    let robots = this.#candidates().filter((r) => r.running < r.max_concurrent_jobs);
    if (!robots.some((r) => r.local)) return;
    const defaultStrategy = this.#core.config.loadBalancing as LoadBalancingStrategy;
    const assignments: Promise<boolean>[] = [];
    const now = this.#core.clock.now();
    let nextRetry = Infinity;
    for (const entry of this.#queueOrder()) {
      const state = this.#core.jobs.get(entry.job_id);
      if (!state || state.snapshot.value !== "queued") continue;
      const retryAt = entry.not_before ? Date.parse(entry.not_before) : 0;
      if (retryAt > now) {
        nextRetry = Math.min(nextRetry, retryAt);
        continue;
      }
      const job = state.snapshot.context;
      // A job only ever goes to a robot of its own org (nor names other orgs' robots).
      const org = this.#core.orgs.orgOf(`job-${entry.job_id}`);
      const ofOrg = robots.filter((r) => r.org_id === org);
      const eligible = ofOrg.filter((r) => ineligibility(r, job) === null);
      if (eligible.length === 0) {
        const reasons = ofOrg.length
          ? ofOrg.map((r) => `${r.robot_id}: ${ineligibility(r, job)}`)
          : ["no robot of this organisation has room"];
        this.waitReasons.set(entry.job_id, `no eligible robot (${reasons.join("; ")})`);
        continue;
      }
      const robot = selectRobot<Candidate & { local: boolean }>(eligible, {
        strategy: (job.load_balancing as LoadBalancingStrategy | null) ?? defaultStrategy,
        lastChosen: this.#lastChosen,
        preferred: job.workflow
          ? this.#core.lastRobotOfWorkflow.get(job.workflow.workflow_id)
          : null,
        holding: job.workflow ? this.deployedRobots(job.workflow.workflow_id) : undefined,
      })!;
      this.#lastChosen = robot.robot_id;
      this.waitReasons.delete(entry.job_id);
      robot.running++;
      // Planned for another node's robot: that node writes it (it plans the same way).
      if (robot.local) assignments.push(this.#dispatch(entry.job_id, robot.robot_id));
      robots = robots.filter((r) => r.running < r.max_concurrent_jobs);
      if (!robots.some((r) => r.local)) break;
    }
    if (nextRetry < Infinity) this.#wakeAt(nextRetry);
    await Promise.all(assignments);
  }

  /**
   * The queue in dispatch order (highest priority first, FIFO within one): the queue
   * projection's entries and, when {@linkcode JobDispatcher.dispatchFromCommits}, the jobs
   * committed here but not yet read back, each after the projection's entries of its
   * priority (its `job.queued` comes later in the log than every event applied so far).
   */
  *#queueOrder(): Generator<QueueEntry> {
    const queue = this.#core.queue;
    const committed = this.dispatchFromCommits && this.#core.committedQueue.size > 0
      ? [...this.#core.committedQueue.values()].filter((e) => !queue.has(e.job_id))
      : [];
    if (committed.length === 0) return yield* queue.ordered();
    committed.sort((a, b) => b.priority - a.priority); // stable: commit order within one
    let next = 0;
    for (const entry of queue.ordered()) {
      while (next < committed.length && committed[next].priority > entry.priority) {
        yield committed[next++];
      }
      yield entry;
    }
    while (next < committed.length) yield committed[next++];
  }

  /** Runs a pass at `atMs` (ms since epoch), when the earliest retry delay ends. */
  #wakeAt(atMs: number): void {
    if (this.#wake && this.#wake.at <= atMs) return;
    if (this.#wake) this.#core.clock.clearTimeout(this.#wake.handle);
    const handle = this.#core.clock.setTimeout(() => {
      this.#wake = null;
      this.request();
    }, atMs - this.#core.clock.now());
    this.#wake = { at: atMs, handle };
  }

  /**
   * The events that end a failed attempt: `job.retry_scheduled` when the job's retry
   * policy has retries left and the error type is retryable (configuration
   * `retryableErrors`), else `final` (`job.failed` or `job.timed_out`).
   */
  failureEvent(
    jobId: string,
    failure: { errorType: string; error: string; leaseId: string | null; result: unknown },
    final: { type: string; data: Record<string, unknown> },
  ): { type: string; data: Record<string, unknown> } {
    const job = this.#core.jobs.get(jobId)?.snapshot.context;
    if (
      !job || job.cancel_requested || job.failures >= job.retry.max_retries ||
      !this.#core.config.retryableErrors.includes(failure.errorType)
    ) return final;
    const retry = job.failures + 1;
    const delay = retryDelaySeconds(job.retry, retry, this.#core.random());
    return {
      type: "job.retry_scheduled",
      data: {
        lease_id: failure.leaseId,
        failed_at: this.#core.nowIso(),
        error: failure.error,
        // Why the attempt failed (`job_timeout` for a missed deadline): alerts tell a
        // timeout from a robot's error by it.
        error_type: failure.errorType,
        result: failure.result ?? null,
        retry,
        retry_at: new Date(this.#core.clock.now() + delay * 1000).toISOString(),
      },
    };
  }

  async #dispatch(jobId: string, robotId: string): Promise<boolean> {
    const job = this.#core.jobs.get(jobId)!.snapshot.context;
    const leaseId = crypto.randomUUID();
    const attempt = job.attempt + 1;
    const now = this.#core.clock.now();
    const deadline = new Date(now + job.timeout * 1000).toISOString();
    try {
      await this.#core.commit([
        {
          streamId: `job-${jobId}`,
          events: [{
            type: "job.dispatched",
            data: {
              robot_id: robotId,
              lease_id: leaseId,
              attempt,
              dispatched_at: new Date(now).toISOString(),
              deadline,
            },
          }],
        },
        {
          streamId: `robot-${robotId}`,
          events: [{ type: "robot.job_assigned", data: { job_id: jobId, lease_id: leaseId } }],
        },
      ]);
    } catch (error) {
      if (error instanceof InvalidTransitionError || error instanceof WrongExpectedVersionError) {
        return false; // the job or robot changed meanwhile; the next pass sees the new state
      }
      throw error;
    }
    if (this.ownsDeadlines) this.armDeadline(jobId, leaseId, deadline);
    const sent = this.#links.send(robotId, "job_assignment", {
      job_id: jobId,
      lease_id: leaseId,
      attempt,
      workflow: job.workflow,
      variables: job.variables,
      priority: job.priority,
      timeout: job.timeout,
      deadline,
    });
    if (!sent) await this.releaseLease(jobId, robotId, "robot_lost");
    return sent;
  }

  /** Starts the timer that ends an attempt at its absolute deadline (RFC 3339). */
  armDeadline(jobId: string, leaseId: string, deadline: string): void {
    this.disarm(jobId);
    const delay = Date.parse(deadline) - this.#core.clock.now();
    const handle = this.#core.clock.setTimeout(() => {
      this.#deadlines.delete(jobId);
      this.#timeOut(jobId, leaseId).catch((e) => console.error("timeout failed:", e));
    }, delay);
    this.#deadlines.set(jobId, { leaseId, handle });
  }

  /**
   * Arms, from the read models (the log), the deadline of every dispatched or running job
   * and the grace deadline of every unconfirmed cancel: after a start's replay, or when
   * this node becomes the leader. Both are absolute instants in the log, so one that has
   * passed while no process kept it fires at once.
   */
  armFromLog(): void {
    for (const [jobId, state] of this.#core.jobs) {
      const c = state.snapshot.context;
      const status = state.snapshot.value as JobStatus;
      if ((status !== "dispatched" && status !== "running") || !c.lease_id) continue;
      if (c.deadline) this.armDeadline(jobId, c.lease_id, c.deadline);
      if (c.cancel_requested && c.cancel_grace_deadline) {
        this.armCancelGrace(jobId, c.lease_id, c.cancel_grace_deadline);
      }
    }
  }

  /**
   * Stops every job's deadline and cancel grace timer (cluster mode: this node stopped
   * being the leader).
   */
  disarmDeadlines(): void {
    for (const { handle } of this.#deadlines.values()) this.#core.clock.clearTimeout(handle);
    this.#deadlines.clear();
    for (const handle of this.#graces.values()) this.#core.clock.clearTimeout(handle);
    this.#graces.clear();
  }

  /** Stops the retry wake-up timer (at shutdown). */
  stopTimers(): void {
    if (this.#wake) this.#core.clock.clearTimeout(this.#wake.handle);
    this.#wake = null;
  }

  /** Stops a job's deadline and cancel-grace timers. */
  disarm(jobId: string): void {
    const d = this.#deadlines.get(jobId);
    if (d) this.#core.clock.clearTimeout(d.handle);
    this.#deadlines.delete(jobId);
    const g = this.#graces.get(jobId);
    if (g !== undefined) this.#core.clock.clearTimeout(g);
    this.#graces.delete(jobId);
  }

  /**
   * At the cancel's grace deadline (RFC 3339, absolute: `grace_deadline` of
   * `job.cancel_requested`), an unconfirmed cancel revokes the lease: `job.cancelled` (and
   * the robot's `robot.job_released`), written as leader (fenced in cluster mode). Only
   * where deadlines are kept (`ownsDeadlines`); arming again replaces the job's timer.
   */
  armCancelGrace(jobId: string, leaseId: string, graceDeadline: string): void {
    if (!this.ownsDeadlines) return;
    const previous = this.#graces.get(jobId);
    if (previous !== undefined) this.#core.clock.clearTimeout(previous);
    const delay = Math.max(0, Date.parse(graceDeadline) - this.#core.clock.now());
    const handle = this.#core.clock.setTimeout(() => {
      this.#graces.delete(jobId);
      const job = this.#core.jobs.get(jobId)?.snapshot.context;
      if (!job || job.lease_id !== leaseId || this.#core.isTerminal(jobId)) return;
      this.#end(jobId, job.robot_id, {
        type: "job.cancelled",
        data: { cancelled_at: this.#core.nowIso(), reason: "cancel not confirmed; lease revoked" },
      }, { asLeader: true }).catch((e) => console.error("cancel grace failed:", e));
    }, Number.isNaN(delay) ? 0 : delay);
    this.#graces.set(jobId, handle);
  }

  async #timeOut(jobId: string, leaseId: string): Promise<void> {
    const job = this.#core.jobs.get(jobId)?.snapshot.context;
    if (!job || job.lease_id !== leaseId || this.#core.isTerminal(jobId)) return;
    if (job.robot_id) {
      this.#links.send(job.robot_id, "cancel_job", {
        job_id: jobId,
        lease_id: leaseId,
        reason: "timeout",
      });
    }
    await this.#end(
      jobId,
      job.robot_id,
      this.failureEvent(
        jobId,
        { errorType: "job_timeout", error: "Job exceeded its timeout", leaseId, result: null },
        { type: "job.timed_out", data: { timed_out_at: this.#core.nowIso(), lease_id: leaseId } },
      ),
      { asLeader: true },
    );
  }

  async #end(
    jobId: string,
    robotId: string | null,
    event: { type: string; data: Record<string, unknown> },
    options: CommitOptions = {},
  ): Promise<void> {
    const changes = [{ streamId: `job-${jobId}`, events: [event] }];
    if (robotId && this.#core.robots.get(robotId)?.snapshot.context.current_jobs.includes(jobId)) {
      changes.push({
        streamId: `robot-${robotId}`,
        events: [{ type: "robot.job_released", data: { job_id: jobId, reason: event.type } }],
      });
    }
    await this.#core.commit(changes, {}, options);
    this.disarm(jobId);
    this.request();
  }

  /**
   * Ends the lease of a dispatched or running job whose robot lost it (or is being let go
   * of) and releases the robot: the job goes back to the queue, unless its cancel was
   * requested: then it ends `cancelled` now (issue 5: a cancelled job is never run again;
   * the robot that could have confirmed the cancel no longer holds the job).
   * @param options `asLeader` when the leader requeues the jobs of a dead node's robot.
   * @returns what became of the job.
   * @throws {InvalidTransitionError} when the job is no longer dispatched or running.
   * @throws {FencedError} When written `asLeader` after this node's term ended.
   */
  async releaseLease(
    jobId: string,
    robotId: string,
    reason: string,
    options: CommitOptions = {},
  ): Promise<"queued" | "cancelled"> {
    const job = this.#core.jobs.get(jobId)?.snapshot.context;
    if (job?.cancel_requested) {
      await this.#end(jobId, robotId, {
        type: "job.cancelled",
        data: {
          cancelled_at: this.#core.nowIso(),
          reason: `${job.cancel_reason ?? "cancel requested"} (lease revoked: ${reason})`,
        },
      }, options);
      return "cancelled";
    }
    await this.#end(jobId, robotId, {
      type: "job.queued",
      data: { queued_at: this.#core.nowIso(), reason },
    }, options);
    return "queued";
  }
}
