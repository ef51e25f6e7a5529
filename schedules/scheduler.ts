/**
 * The scheduler: keeps every schedule's state folded from its `schedule-<id>` stream, arms one
 * timer per enabled schedule on the injected clock, and on each tick submits a job whose id
 * is derived from (`schedule_id`, `scheduled_for`) before recording `schedule.fired` with an
 * event id derived from the same pair. A restart, a re-saved schedule or a second scheduler
 * on the same log can therefore never create a second job for one tick.
 *
 * The overlap policy asks {@linkcode SchedulerOptions.jobActive} whether the schedule's
 * previous run is still active and records each decision (`schedule.skipped`,
 * `schedule.queued`, or a fire), so a restart replays them rather than deciding again. A
 * node follows the log with {@linkcode Scheduler.observe}: schedules added or changed by
 * another node are armed without a restart, and a tick held by `queue_one` fires as soon as
 * the event that ends the previous run is applied.
 *
 * @module
 */
import { canonicalJson, type RecordedEvent, WrongExpectedVersionError } from "../events/mod.ts";
import { InvalidScheduleError, nextRuns, type NextRunsSpec } from "./next_runs.ts";
import { parseScheduleDefinition, type ScheduleDefinition } from "./schedule_input.ts";
import {
  applyScheduleEvent,
  SCHEDULE_STREAM_PREFIX,
  type ScheduleState,
  uuidFromSha256,
} from "./schedule_state.ts";
import { missedTicks } from "./_misfires.ts";
import {
  ScheduleExistsError,
  ScheduleNotFoundError,
  type SchedulerOptions,
  type ScheduleView,
} from "./scheduler_types.ts";
import { overlapDecision } from "./_overlap.ts";

/** Milliseconds before a failed fire (e.g. the store is down) is tried again. */
const RETRY_MS = 1000;

/** Longest single timer; longer waits are re-armed in chunks (never early). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Specification of the next-run computation for a schedule. */
export function specOf(s: ScheduleDefinition): NextRunsSpec {
  return {
    frequency: s.frequency,
    cron_expression: s.cron_expression,
    timezone: s.timezone,
    anchor: s.start_at,
  };
}

/** Schedules that fire exactly once per tick; see the module doc. */
export class Scheduler {
  #options: SchedulerOptions;
  #states = new Map<string, ScheduleState>();
  #timers = new Map<string, unknown>();
  #queues = new Map<string, Promise<void>>();
  /** Schedule id by the job id of its previous run. */
  #runOf = new Map<string, string>();
  /** Schedules whose events arrived with a gap: re-read from the store before use. */
  #stale = new Set<string>();
  #running = false;

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  /**
   * The schedules folded from the log (before `start`), for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; live references, serialised at once).
   */
  checkpointState(): unknown {
    return { states: this.#states, runOf: this.#runOf, stale: this.#stale };
  }

  /** Replaces the folded schedules with those of {@linkcode Scheduler.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      states: Map<string, ScheduleState>;
      runOf: Map<string, string>;
      stale: Set<string>;
    };
    this.#states = s.states;
    this.#runOf = s.runOf;
    this.#stale = s.stale;
  }

  /**
   * Folds every `schedule-*` stream from the log, handles misfires and held ticks, and arms
   * timers.
   * @param options `readLog: false` when the log was already passed to
   * {@linkcode Scheduler.observe} (the orchestrator does so while it replays). @default true
   */
  async start(options: { readLog?: boolean } = {}): Promise<void> {
    let after = 0;
    while (options.readLog ?? true) {
      const batch = await this.#options.store.readAll({ after, limit: 1000 });
      if (batch.length === 0) break;
      this.observe(batch);
      after = batch[batch.length - 1].globalPosition;
    }
    for (const id of this.#stale) await this.#refresh(id);
    this.#running = true;
    for (const id of this.#states.keys()) this.#enqueue(id, () => this.#reconcile(id));
    await this.idle();
  }

  /**
   * Follows the log: applies `schedule-*` events this scheduler has not applied yet (recorded
   * by another node, or read before `start()`) and re-arms the schedules they change; on an
   * event of a schedule's previous run that holds a tick (`queue_one`), fires the tick once
   * the run has ended. Events already applied are ignored by stream version, so a node may
   * pass every event it applies, its own included. Call it after the job read model that
   * {@linkcode SchedulerOptions.jobActive} consults has applied the same events.
   * @param events recorded events, in log order.
   */
  observe(events: readonly RecordedEvent[]): void {
    for (const e of events) {
      if (e.streamId.startsWith(SCHEDULE_STREAM_PREFIX)) {
        const id = e.streamId.slice(SCHEDULE_STREAM_PREFIX.length);
        if (!this.#apply(id, e) || !this.#running) continue;
        this.#enqueue(id, async () => {
          if (this.#stale.has(id)) await this.#refresh(id);
          await this.#reconcile(id);
        });
      } else if (this.#running && e.streamId.startsWith("job-")) {
        const id = this.#runOf.get(e.streamId.slice(4));
        if (id !== undefined && this.#states.get(id)?.pending_run) {
          this.#enqueue(id, () => this.#releaseHeld(id));
        }
      }
    }
  }

  /** Clears every timer and waits for fires in progress. */
  async stop(): Promise<void> {
    this.#running = false;
    for (const handle of this.#timers.values()) this.#options.clock.clearTimeout(handle);
    this.#timers.clear();
    await this.idle();
  }

  /** Resolves once no fire or command is in progress (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#queues.size > 0) await Promise.all(this.#queues.values());
  }

  /**
   * Adds a schedule (`schedule.added`); `options.org_id` is recorded as the org it belongs to
   * (its jobs are that org's).
   * @throws {InvalidScheduleError} naming the offending field.
   * @throws {ScheduleExistsError} when `schedule_id` is taken.
   */
  add(input: Record<string, unknown>, options: { org_id?: string } = {}): Promise<ScheduleView> {
    const definition = parseScheduleDefinition(input, { now: this.#now() });
    this.#checkWorkflow(definition);
    const id = typeof input.schedule_id === "string" && input.schedule_id !== ""
      ? input.schedule_id
      : crypto.randomUUID();
    return this.#command(id, async () => {
      try {
        const position = await this.#append(id, 0, "schedule.added", {
          schedule_id: id,
          ...(options.org_id !== undefined ? { org_id: options.org_id } : {}),
          definition,
          added_at: this.#now().toString(),
        });
        // Read your writes: the schedule's org is known to the API (its next call is not 404).
        await this.#options.settled?.(position);
      } catch (error) {
        if (error instanceof WrongExpectedVersionError) {
          throw new ScheduleExistsError(id, { cause: error });
        }
        throw error;
      }
    });
  }

  /**
   * Changes fields of a schedule; an unchanged re-save records nothing.
   * @throws {ScheduleNotFoundError} | {InvalidScheduleError}
   */
  update(id: string, patch: Record<string, unknown>): Promise<ScheduleView> {
    const base = this.#get(id);
    const next = parseScheduleDefinition(patch, { now: this.#now(), base: definitionOf(base) });
    if ("workflow_id" in patch) this.#checkWorkflow(next);
    const changes = Object.fromEntries(
      Object.entries(next).filter(([k, v]) =>
        canonicalJson(v) !== canonicalJson(base[k as keyof ScheduleDefinition])
      ),
    );
    if (Object.keys(changes).length === 0) return Promise.resolve(this.get(id));
    return this.#command(id, () =>
      this.#append(id, "any", "schedule.updated", {
        changes,
        updated_at: this.#now().toString(),
      }));
  }

  /** Stops firing until resumed (`schedule.paused`); a no-op when paused. */
  pause(id: string): Promise<ScheduleView> {
    if (!this.#get(id).enabled) return Promise.resolve(this.get(id));
    return this.#command(
      id,
      () => this.#append(id, "any", "schedule.paused", { paused_at: this.#now().toString() }),
    );
  }

  /** Fires again (`schedule.resumed`); ticks missed while paused follow the misfire policy. */
  resume(id: string): Promise<ScheduleView> {
    if (this.#get(id).enabled) return Promise.resolve(this.get(id));
    return this.#command(
      id,
      () => this.#append(id, "any", "schedule.resumed", { resumed_at: this.#now().toString() }),
    );
  }

  /** Removes a schedule (`schedule.removed`). @throws {ScheduleNotFoundError} */
  async remove(id: string): Promise<void> {
    this.#get(id);
    await this.#command(
      id,
      () => this.#append(id, "any", "schedule.removed", { removed_at: this.#now().toString() }),
    );
  }

  /** The schedule's view. @throws {ScheduleNotFoundError} */
  get(id: string): ScheduleView {
    const s = this.#get(id);
    const after = latest(Temporal.Instant.from(s.cursor), this.#now());
    const next = s.enabled ? nextRuns(specOf(s), after, 1)[0] : undefined;
    return {
      ...definitionOf(s),
      schedule_id: s.schedule_id,
      next_run: next?.toString() ?? null,
      last_run: s.last_run,
      last_job_id: s.last_job_id,
      pending_run: s.pending_run,
      created_at: s.created_at,
      updated_at: s.updated_at,
    };
  }

  /** Ids of the schedules (not removed) that run workflow `workflowId` by id, oldest first. */
  usedBy(workflowId: string): string[] {
    return [...this.#states.values()]
      .filter((s) => !s.removed && s.workflow === null && s.workflow_id === workflowId)
      .map((s) => s.schedule_id);
  }

  /** Every schedule not removed, oldest first. */
  list(): ScheduleView[] {
    return [...this.#states.values()].filter((s) => !s.removed).map((s) => this.get(s.schedule_id));
  }

  /**
   * The schedule's next `count` runs strictly after `after` (whether or not it is paused).
   * @throws {ScheduleNotFoundError} | {RangeError} on a bad count.
   */
  nextRuns(id: string, after: Temporal.Instant, count: number): Temporal.Instant[] {
    return nextRuns(specOf(this.#get(id)), after, count);
  }

  /** The injected clock's current instant. */
  now(): Temporal.Instant {
    return Temporal.Instant.fromEpochMilliseconds(this.#options.clock.now());
  }

  #now(): Temporal.Instant {
    return this.now();
  }

  #get(id: string): ScheduleState {
    const s = this.#states.get(id);
    if (!s || s.removed) throw new ScheduleNotFoundError(id);
    return s;
  }

  #put(id: string, state: ScheduleState | undefined): void {
    if (!state) return;
    const before = this.#states.get(id)?.last_job_id;
    if (before && before !== state.last_job_id) this.#runOf.delete(before);
    if (state.last_job_id && !state.removed) this.#runOf.set(state.last_job_id, id);
    else if (state.last_job_id) this.#runOf.delete(state.last_job_id);
    this.#states.set(id, state);
  }

  /**
   * Applies one event of `schedule-<id>` once: an event at or below the folded version is
   * ignored; one beyond the next version marks the stream stale (re-read before use).
   * @returns whether the state changed or must be re-read.
   */
  #apply(id: string, e: RecordedEvent): boolean {
    const current = this.#states.get(id);
    const version = current?.version ?? 0;
    if (e.streamVersion <= version) return false;
    if (e.streamVersion > version + 1) {
      this.#stale.add(id);
      return true;
    }
    this.#put(id, applyScheduleEvent(current, e));
    return true;
  }

  /** Folds `schedule-<id>` again from the store (after a gap). */
  async #refresh(id: string): Promise<void> {
    let state: ScheduleState | undefined;
    for (const e of await this.#options.store.readStream(SCHEDULE_STREAM_PREFIX + id)) {
      state = applyScheduleEvent(state, e);
    }
    this.#stale.delete(id);
    this.#put(id, state);
  }

  async #append(
    id: string,
    expectedVersion: number | "any",
    type: string,
    data: Record<string, unknown>,
    eventId?: string,
    tick = false,
  ): Promise<number> {
    // A tick's events are the leader's (cluster mode): fenced, with the term in metadata.
    const fence = tick ? this.#options.leaderFence?.() ?? null : null;
    const { events } = await this.#options.store.append([{
      streamId: SCHEDULE_STREAM_PREFIX + id,
      expectedVersion,
      // Schema version 1 of every schedule event (see actors/event_schemas.ts).
      events: [{
        type,
        data,
        metadata: { schema_version: 1, ...fence?.metadata() },
        eventId,
      }],
    }], fence ? { guard: (tx) => fence.check(tx) } : {});
    for (const e of events) this.#apply(id, e);
    if (this.#stale.has(id)) await this.#refresh(id);
    return events[events.length - 1].globalPosition;
  }

  /** @throws {InvalidScheduleError} naming `workflow_id` when no stored workflow has it. */
  #checkWorkflow(definition: ScheduleDefinition): void {
    const id = definition.workflow_id;
    if (
      definition.workflow === null && id !== null && !(this.#options.workflowExists?.(id) ?? true)
    ) {
      throw new InvalidScheduleError(
        "workflow_id",
        `Workflow ${JSON.stringify(id)} does not exist`,
      );
    }
  }

  /** Runs a command in the schedule's queue, then re-arms it; resolves with its view. */
  #command(id: string, fn: () => Promise<unknown>): Promise<ScheduleView> {
    return new Promise((resolve, reject) => {
      this.#enqueue(id, async () => {
        try {
          await fn();
        } catch (error) {
          reject(error);
          return;
        }
        try {
          await this.#reconcile(id);
        } catch (error) {
          this.#failed(id, error);
        }
        resolve(this.#states.get(id)!.removed ? undefined! : this.get(id));
      }, reject);
    });
  }

  /** Serialises work per schedule: a command and a fire never interleave. */
  #enqueue(id: string, fn: () => Promise<void>, onError?: (error: unknown) => void): void {
    const previous = this.#queues.get(id) ?? Promise.resolve();
    const run = previous.then(fn).catch(onError ?? ((e) => this.#failed(id, e))).finally(() => {
      if (this.#queues.get(id) === run) this.#queues.delete(id);
    });
    this.#queues.set(id, run);
  }

  /** Reports a failed fire or arm and tries again in {@linkcode RETRY_MS}: never stalls. */
  #failed(id: string, error: unknown): void {
    (this.#options.onError ?? console.error)(error);
    if (!this.#running) return;
    const old = this.#timers.get(id);
    if (old !== undefined) this.#options.clock.clearTimeout(old);
    this.#timers.set(
      id,
      this.#options.clock.setTimeout(
        () => this.#enqueue(id, () => this.#reconcile(id)),
        RETRY_MS,
      ),
    );
  }

  /** Handles missed ticks per the misfire policy and arms the timer of the next one. */
  async #reconcile(id: string): Promise<void> {
    const timer = this.#timers.get(id);
    if (timer !== undefined) this.#options.clock.clearTimeout(timer);
    this.#timers.delete(id);
    if (!this.#running || !this.#states.get(id)?.enabled) return;
    await this.#releaseHeld(id);
    const s = this.#states.get(id);
    if (!s || s.removed || !s.enabled) return;
    const spec = specOf(s);
    const now = this.#now();
    const cursor = Temporal.Instant.from(s.cursor);
    const first = nextRuns(spec, cursor, 1)[0];
    const grace = this.#options.misfireGraceMs ?? 5000;
    let after = cursor;
    if (first && now.epochMilliseconds - first.epochMilliseconds > grace) {
      for (const tick of missedTicks(spec, s, now)) await this.#tick(id, tick, true);
      after = now;
    }
    // A tick already due (within the grace) fires now; the first one ahead gets a timer.
    for (;;) {
      const next = nextRuns(spec, after, 1)[0];
      if (!next) return;
      if (next.epochMilliseconds > this.#options.clock.now()) return this.#arm(id, next);
      await this.#tick(id, next, false);
      after = next;
    }
  }

  #arm(id: string, tick: Temporal.Instant): void {
    const delay = tick.epochMilliseconds - this.#options.clock.now();
    const handle = this.#options.clock.setTimeout(
      () => this.#enqueue(id, () => this.#onTimer(id, tick)),
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    );
    this.#timers.set(id, handle);
  }

  async #onTimer(id: string, tick: Temporal.Instant): Promise<void> {
    this.#timers.delete(id);
    if (!this.#running) return;
    // A long wait in chunks: never fire early.
    if (this.#options.clock.now() < tick.epochMilliseconds) return this.#arm(id, tick);
    const s = this.#states.get(id);
    if (!s || s.removed || !s.enabled) return;
    if (Temporal.Instant.compare(tick, Temporal.Instant.from(s.cursor)) > 0) {
      await this.#tick(id, tick, false);
    }
    await this.#reconcile(id);
  }

  /** Whether the schedule's previous run is still active. */
  #previousActive(s: ScheduleState): boolean {
    return s.last_job_id !== null && (this.#options.jobActive?.(s.last_job_id) ?? false);
  }

  /** Fires the tick held by `queue_one` once the previous run has ended (not while paused). */
  async #releaseHeld(id: string): Promise<void> {
    const s = this.#states.get(id);
    if (!this.#running || !s?.pending_run || s.removed || !s.enabled) return;
    if (this.#previousActive(s)) return;
    await this.#fire(id, Temporal.Instant.from(s.pending_run), { catchUp: false, queued: true });
  }

  /** A tick is due: fires it, skips it or holds it, as the overlap policy decides. */
  async #tick(id: string, tick: Temporal.Instant, catchUp: boolean): Promise<void> {
    await this.#releaseHeld(id);
    const s = this.#states.get(id)!;
    const decision = overlapDecision(
      s.overlap_policy,
      s.overlap_policy !== "allow" && this.#previousActive(s),
      s.pending_run !== null,
    );
    const scheduledFor = tick.toString();
    if (decision.action === "fire") return this.#fire(id, tick, { catchUp, queued: false });
    const type = decision.action === "skip" ? "schedule.skipped" : "schedule.queued";
    const data = decision.action === "skip"
      ? { scheduled_for: scheduledFor, reason: decision.reason, active_job_id: s.last_job_id }
      : { scheduled_for: scheduledFor, active_job_id: s.last_job_id };
    await this.#append(
      id,
      "any",
      type,
      data,
      await uuidFromSha256(`${type}|${id}|${scheduledFor}`),
      true,
    );
  }

  /** Submits the tick's job, then records `schedule.fired` (both idempotent per tick). */
  async #fire(
    id: string,
    tick: Temporal.Instant,
    how: { catchUp: boolean; queued: boolean },
  ): Promise<void> {
    const s = this.#states.get(id)!;
    const scheduledFor = tick.toString();
    const jobId = await uuidFromSha256(`${id}|${scheduledFor}`);
    try {
      await this.#options.submitJob({
        job_id: jobId,
        schedule_id: id,
        scheduled_for: scheduledFor,
        workflow: s.workflow,
        workflow_id: s.workflow_id,
        variables: s.variables,
        priority: s.priority,
        robot_id: s.robot_id,
      });
    } catch (error) {
      // The stored workflow was deleted (by a node that did not yet know the schedule, or
      // before deletes were refused) or has no published version: the tick is recorded as
      // skipped, so the schedule's history shows why no job ran, and the next tick tries again.
      const reason = WORKFLOW_GONE[(error as Error)?.name];
      if (s.workflow !== null || reason === undefined) throw error;
      await this.#append(
        id,
        "any",
        "schedule.skipped",
        { scheduled_for: scheduledFor, reason, workflow_id: s.workflow_id, active_job_id: null },
        await uuidFromSha256(`schedule.skipped|${id}|${scheduledFor}`),
        true,
      );
      return;
    }
    await this.#append(
      id,
      "any",
      "schedule.fired",
      {
        scheduled_for: scheduledFor,
        job_id: jobId,
        catch_up: how.catchUp,
        ...(how.queued ? { queued: true } : {}),
      },
      await uuidFromSha256(`schedule.fired|${id}|${scheduledFor}`),
      true,
    );
  }
}

/** Skip reasons of `schedule.skipped` for a stored workflow a tick cannot run, by error name. */
const WORKFLOW_GONE: Record<string, string> = {
  WorkflowNotFoundError: "workflow_not_found",
  WorkflowNotPublishedError: "workflow_not_published",
};

function latest(a: Temporal.Instant, b: Temporal.Instant): Temporal.Instant {
  return Temporal.Instant.compare(a, b) >= 0 ? a : b;
}

function definitionOf(s: ScheduleState): ScheduleDefinition {
  const {
    schedule_id: _id,
    last_run: _l,
    created_at: _c,
    updated_at: _u,
    removed: _r,
    cursor: _k,
    version: _v,
    last_job_id: _j,
    pending_run: _p,
    ...definition
  } = s;
  return definition;
}
