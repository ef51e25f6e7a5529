/**
 * The reference's `OrchestratorEngine`: accepts commands, decides them with the job and
 * robot machines, appends the resulting events, and keeps its state from the log.
 *
 * State flows one way: command → machine decides → events appended with expected versions
 * → the subscription feeds every event (in global order) to the projections. The actor
 * caches (one snapshot per stream) are also advanced right after a successful append so a
 * client reads its own writes; each event is applied at most once per stream version.
 *
 * @module
 */
import {
  type ActorState,
  applyEvent,
  decide,
  initialState,
  InvalidTransitionError,
  jobMachine,
  type JobStatus,
  robotMachine,
  type RobotStatus,
  schemaMetadata,
  TERMINAL_STATUSES,
} from "../actors/mod.ts";
import { loadActor, saveActorSnapshot, upcastEvent } from "./actor_snapshots.ts";
import {
  type AppendResult,
  isStoreUnavailable,
  type NewEvent,
  type RecordedEvent,
  type SqlEventStore,
  type SqlTx,
  type StreamAppend,
  WrongExpectedVersionError,
} from "../events/mod.ts";
import { DashboardProjection, QueueProjection } from "../projections/mod.ts";
import type { QueueEntry } from "../projections/queue_projection.ts";
import type { Clock } from "./clock.ts";
import { decodeActors, encodeActors, type EncodedActors } from "./startup_checkpoint.ts";
import { DEFAULT_ORG, OrgIndex } from "./org_index.ts";
import {
  DEFAULT_RETRY_POLICY,
  DEFAULT_RETRYABLE_ERRORS,
  type RetryPolicy,
} from "./retry_policy.ts";
import type { LoadBalancingStrategy } from "./robot_pool.ts";

/** Engine configuration. */
export interface EngineConfig {
  /** Time limit of an attempt when neither the job nor the workflow sets one, in seconds. */
  defaultJobTimeout: number;
  /** Seconds between robot heartbeats (sent to robots at registration). */
  heartbeatInterval: number;
  /** Seconds of silence after which a robot is declared lost (server clock). */
  heartbeatTimeout: number;
  /**
   * Seconds a robot whose connection dropped (without a goodbye) keeps its jobs, so that
   * it can reconnect with them in `active_job_ids`; 0 requeues them at once.
   */
  reconnectGrace: number;
  /** Seconds a running job's robot has to confirm a cancel before its lease is revoked. */
  cancelGrace: number;
  loadBalancing: LoadBalancingStrategy;
  /** Seconds between seals of the log (tamper evidence for deleted tails); 0 = never. */
  sealInterval: number;
  /** Error types (`job_result.error.type`, or `job_timeout`) that are retried. */
  retryableErrors: readonly string[];
  /** Retry policy of jobs that neither set one nor have `settings.retry_count`. */
  retry: RetryPolicy;
  /**
   * A stream's actor is snapshotted each time this node's appends carry its version past
   * a multiple of this number of events (robot streams grow by two per job); 0 = never.
   * Snapshots only bound the work of re-loading a stream (see `actor_snapshots.ts`).
   */
  snapshotEvery: number;
  /**
   * A start-up that folded at least this many events from the log writes a start-up
   * checkpoint of the whole folded state (`startup_checkpoint.ts`), so that the next start
   * folds only what came after; 0 = never write or read one.
   */
  checkpointEvery: number;
  /**
   * Seconds a graceful shutdown may spend writing a start-up checkpoint of the state it
   * stops with (`Orchestrator.writeShutdownCheckpoint`); past it none is written. 0 = never.
   */
  shutdownCheckpointTimeout: number;
  /**
   * Messages per second one robot connection may send on average (bursts of twice that);
   * frames beyond it are refused with `error {code: "rate_limited"}`.
   */
  robotMessageRate: number;
  /**
   * Seconds after which a robot connection that answers nothing, not even a WebSocket
   * ping, is closed (half-open sockets): a ping after `pingTimeout / 2` s of silence, and
   * the close `pingTimeout / 2` s later without a pong. 0 disables pings.
   */
  pingTimeout: number;
  /** Seconds a graceful shutdown waits for running jobs before requeueing them. */
  drainTimeout: number;
}

/** Default configuration (heartbeat figures after Hatchet: beat often, lost after 30 s). */
export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  defaultJobTimeout: 3600,
  heartbeatInterval: 5,
  heartbeatTimeout: 30,
  reconnectGrace: 15,
  cancelGrace: 30,
  loadBalancing: "least_loaded",
  sealInterval: 300,
  retryableErrors: DEFAULT_RETRYABLE_ERRORS,
  retry: DEFAULT_RETRY_POLICY,
  snapshotEvery: 1000,
  checkpointEvery: 100_000,
  shutdownCheckpointTimeout: 10,
  robotMessageRate: 500,
  pingTimeout: 20,
  drainTimeout: 30,
};

/** One stream's part of a command: the events the machine must accept, in order. */
export interface Change {
  streamId: string;
  events: { type: string; data: Record<string, unknown> }[];
  /**
   * Precondition checked when the command is decided (after every earlier write to the
   * stream): the actor must be in one of these states, else the command is refused with
   * `InvalidTransitionError` and nothing is written. For a decision the caller took on a
   * state that an append in flight may change (e.g. cancelling a job as "queued" while its
   * dispatch is being written).
   */
  inStates?: readonly string[];
}

type JobState = ActorState<typeof jobMachine>;
type AnyMachine = typeof jobMachine | typeof robotMachine;
type AnyActorState = ActorState<AnyMachine>;

/** Most commands written in one append (one transaction). */
const MAX_COMMANDS_PER_APPEND = 500;

/**
 * Most appends in flight at once, each on its own connection. Appends in flight touch
 * disjoint sets of streams, so they can neither conflict with nor depend on each other;
 * PostgreSQL flushes the WAL of commits that arrive together once.
 */
const MAX_APPENDS_IN_FLIGHT = 4;

interface PendingCommand {
  changes: Change[];
  metadata: Record<string, unknown>;
  /** Written only under the current leader's term (see `EngineCore.leaderFence`). */
  asLeader: boolean;
  resolve(events: RecordedEvent[]): void;
  reject(error: unknown): void;
  attempts: number;
}
type RobotState = ActorState<typeof robotMachine>;

/**
 * What makes a leader's writes refused once its term is over (cluster mode,
 * `engine/cluster.ts`): a check run inside the append's transaction, and the metadata that
 * records the term in each event it writes.
 */
export interface LeaderFence {
  /** Throws (`FencedError`) when this node's term is over; runs in the append's transaction. */
  check(tx: SqlTx): Promise<void>;
  /** Recorded in the metadata of each fenced event, e.g. `{leader_node, leader_token}`. */
  metadata(): Record<string, unknown>;
}

/** Options of {@linkcode EngineCore.commit}. */
export interface CommitOptions {
  /**
   * Work that only the leader does (deadlines, requeueing lost robots' jobs): when
   * `EngineCore.leaderFence` is set, the append runs its check in the same transaction and
   * the command is refused with its error when the term is over. @default false
   */
  asLeader?: boolean;
}

/** Event types that put a job (back) in the queue (as `QueueProjection` applies them). */
const ENTERS_QUEUE = new Set(["job.queued", "job.rejected", "job.retry_scheduled"]);

/** Listener of recorded events, called after the projections have applied them. */
export type EventListener = (events: readonly RecordedEvent[]) => void;

/** The part of the engine that holds state and writes events. */
export class EngineCore {
  readonly store: SqlEventStore;
  readonly clock: Clock;
  readonly config: EngineConfig;
  readonly jobs = new Map<string, JobState>();
  readonly robots = new Map<string, RobotState>();
  readonly queue = new QueueProjection();
  readonly dashboard = new DashboardProjection();
  /** The org of every stream (see `org_index.ts`). */
  readonly orgs = new OrgIndex();
  /** DashboardMetrics of each org, fed with its streams' events only. */
  readonly orgDashboards = new Map<string, DashboardProjection>([
    [DEFAULT_ORG, new DashboardProjection()],
  ]);
  /** Robot that last completed each workflow (for `affinity`). */
  readonly lastRobotOfWorkflow = new Map<string, string>();
  /** Global position of the last event (in log order) applied to the projections; the
   * gap-safe order is by transaction, so this is not the largest position seen. */
  position = 0;
  /** Source of jitter for retry delays, in [0, 1). */
  random: () => number = Math.random;
  /**
   * Why the store could not be reached, while appends wait for it (null when the last
   * append went through).
   */
  storeFailure: Error | null = null;
  #pending: PendingCommand[] = [];
  #snapshotting: Promise<void> = Promise.resolve();
  /** Streams written by the appends in flight. */
  readonly #busy = new Set<string>();
  #inFlight = 0;
  #pumpQueued = false;
  #listeners = new Set<EventListener>();
  #stopRetrying: (() => void) | null = null;
  #retrying = true;
  /** Set in cluster mode: fences commands committed `asLeader`. Null: a single node. */
  leaderFence: LeaderFence | null = null;
  /**
   * Jobs that this node's own appends put in the queue (`job.queued`, `job.rejected`,
   * `job.retry_scheduled`) and that the log's read-back has not applied to
   * {@linkcode EngineCore.queue} yet, in commit order (job id → entry and the version of
   * that event). They are committed, so the dispatcher may plan them at once instead of
   * one subscription round trip later (`JobDispatcher`, "dispatch from commits"); each
   * leaves this map when the read-back applies that event or a later one of its stream, or
   * when a later local commit takes it out of the queue.
   */
  readonly committedQueue = new Map<string, QueueEntry & { version: number }>();
  #committedQueueListeners = new Set<() => void>();

  constructor(store: SqlEventStore, clock: Clock, config: EngineConfig) {
    this.store = store;
    this.clock = clock;
    this.config = config;
  }

  /** Current time as RFC 3339 UTC. */
  nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** True when no command waits to be decided and no append of this engine is in flight. */
  get idle(): boolean {
    return this.#pending.length === 0 && this.#inFlight === 0;
  }

  /** Status of a job (`pending` when unknown). */
  jobStatus(jobId: string): JobStatus {
    return (this.jobs.get(jobId)?.snapshot.value ?? "pending") as JobStatus;
  }

  /** Status of a robot (`offline` when unknown). */
  robotStatus(robotId: string): RobotStatus {
    return (this.robots.get(robotId)?.snapshot.value ?? "offline") as RobotStatus;
  }

  /**
   * Registers a listener called right after one of this node's appends put a job in the
   * queue ({@linkcode EngineCore.committedQueue}); returns its removal function.
   */
  onCommittedQueue(listener: () => void): () => void {
    this.#committedQueueListeners.add(listener);
    return () => this.#committedQueueListeners.delete(listener);
  }

  /** Registers a listener of applied events; returns its removal function. */
  onEvents(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Decides and appends a command touching one or several streams, atomically.
   *
   * Group commit: the commands that arrive in one tick, or while appends are in flight,
   * are decided one after the other against the state their predecessors leave, then
   * written together in one transaction (one `append` with one entry per stream, expected
   * version = the stream's version before the batch). Up to
   * {@linkcode MAX_APPENDS_IN_FLIGHT} such appends run at once, on disjoint sets of
   * streams: a command that touches a stream of an append in flight waits for it, and so
   * does every later command on any of its streams (each stream's commands are written in
   * the order they came). A command the machines refuse is rejected alone. When the batch
   * meets a version conflict (another writer got there first) its commands are re-decided
   * on fresh state, at most three times each; when it fails otherwise, each command is
   * retried alone so that one bad command cannot fail the others.
   *
   * @returns the command's recorded events, in order.
   * @throws {InvalidTransitionError} when a machine refuses an event; nothing is written.
   * @throws {WrongExpectedVersionError} after three conflicts in a row on a stream the command writes.
   */
  commit(
    changes: Change[],
    metadata: Record<string, unknown> = {},
    options: CommitOptions = {},
  ): Promise<RecordedEvent[]> {
    const asLeader = options.asLeader === true && this.leaderFence !== null;
    if (asLeader) metadata = { ...metadata, ...this.leaderFence!.metadata() };
    return new Promise((resolve, reject) => {
      this.#pending.push({ changes, metadata, asLeader, resolve, reject, attempts: 0 });
      this.#schedulePump();
    });
  }

  /** Starts appends at the end of this tick, so that its commands share one. */
  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  /** Starts appends of pending commands while fewer than the maximum are in flight. */
  #pump(): void {
    while (this.#inFlight < MAX_APPENDS_IN_FLIGHT && this.#pending.length > 0) {
      const batch = this.#takeBatch();
      if (batch.length === 0) return;
      const streams = new Set(batch.flatMap((cmd) => cmd.changes.map((c) => c.streamId)));
      for (const streamId of streams) this.#busy.add(streamId);
      this.#inFlight++;
      this.#write(batch, batch.length > 1)
        .catch((error) => {
          for (const cmd of batch) cmd.reject(error);
        })
        .finally(() => {
          for (const streamId of streams) this.#busy.delete(streamId);
          this.#inFlight--;
          this.#pump();
        });
    }
  }

  /**
   * Takes from the pending commands, in order, those that touch no stream of an append in
   * flight nor of an earlier command left waiting (at most
   * {@linkcode MAX_COMMANDS_PER_APPEND}).
   */
  #takeBatch(): PendingCommand[] {
    const batch: PendingCommand[] = [];
    const waiting: PendingCommand[] = [];
    const blocked = new Set(this.#busy);
    for (const cmd of this.#pending) {
      const ids = cmd.changes.map((c) => c.streamId);
      if (batch.length >= MAX_COMMANDS_PER_APPEND || ids.some((id) => blocked.has(id))) {
        for (const id of ids) blocked.add(id);
        waiting.push(cmd);
      } else {
        batch.push(cmd);
      }
    }
    this.#pending = waiting;
    return batch;
  }

  /** Decides and appends a batch of commands; settles every command's promise. */
  async #write(batch: PendingCommand[], splitOnFailure: boolean): Promise<void> {
    const tentative = new Map<string, AnyActorState>();
    const base = new Map<string, number>();
    const accepted: { cmd: PendingCommand; slots: [string, number][] }[] = [];
    const eventsOf = new Map<string, NewEvent[]>();
    // Commands refused only by the state an earlier command of this batch would leave (not
    // yet written): decided again after this append, on the state it leaves, so that the
    // caller sees the refusal after the write that caused it has been applied (e.g. the
    // loser of two submissions with one Idempotency-Key then finds the winner's job).
    const deferred: PendingCommand[] = [];
    for (const cmd of batch) {
      const afterBatch = cmd.changes.some((c) => tentative.has(c.streamId));
      try {
        const mine = new Map<string, AnyActorState>();
        for (const change of cmd.changes) {
          const machine = machineOf(change.streamId);
          let state = mine.get(change.streamId) ?? tentative.get(change.streamId);
          if (!state) {
            state = await this.#load(change.streamId);
            base.set(change.streamId, state.version);
          }
          if (change.inStates && !change.inStates.includes(String(state.snapshot.value))) {
            throw new InvalidTransitionError(
              change.streamId,
              String(state.snapshot.value),
              change.events[0]?.type ?? "(none)",
            );
          }
          for (const e of change.events) {
            const snapshot = decide(machine, change.streamId, state as never, {
              ...e.data,
              type: e.type,
            });
            state = { snapshot, version: state.version + 1 } as AnyActorState;
          }
          mine.set(change.streamId, state);
        }
        const slots: [string, number][] = [];
        for (const change of cmd.changes) {
          const list = eventsOf.get(change.streamId) ?? [];
          eventsOf.set(change.streamId, list);
          for (const e of change.events) {
            slots.push([change.streamId, list.length]);
            list.push({
              type: e.type,
              data: e.data,
              metadata: { ...schemaMetadata(e.type), ...cmd.metadata },
              // Chosen here, so that an append sent again after a lost connection is an
              // idempotent replay when its first try was committed after all.
              eventId: crypto.randomUUID(),
            });
          }
        }
        for (const [id, state] of mine) tentative.set(id, state);
        accepted.push({ cmd, slots });
      } catch (error) {
        if (afterBatch && error instanceof InvalidTransitionError) deferred.push(cmd);
        else cmd.reject(error);
      }
    }
    if (accepted.length === 0) return;
    const order = [...eventsOf.keys()];
    const fence = this.leaderFence;
    const guard = fence && accepted.some((a) => a.cmd.asLeader)
      ? (tx: SqlTx) => fence.check(tx)
      : undefined;
    try {
      const result = await this.#appendThroughOutage(
        order.map((streamId) => ({
          streamId,
          expectedVersion: base.get(streamId)!,
          events: eventsOf.get(streamId)!,
        })),
        guard,
      );
      // The store returns events in the given order: stream by stream, then in stream order.
      const recorded = new Map<string, RecordedEvent[]>();
      for (const e of result.events) {
        const list = recorded.get(e.streamId) ?? [];
        recorded.set(e.streamId, list);
        list.push(e);
      }
      for (const e of result.events) {
        // A stream's org is fixed by its first event, now committed: known before the
        // read-back, so that a job dispatched from its commit goes to its own org's robot.
        this.orgs.apply(e);
        this.#advanceActor(e);
      }
      this.#noteCommittedQueue(result.events);
      this.#snapshotCrossed(result.events, base);
      for (const { cmd, slots } of accepted) {
        cmd.resolve(slots.map(([streamId, i]) => recorded.get(streamId)![i]));
      }
      this.#pending.unshift(...deferred);
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        this.#forget(error.streamId);
        // Only the commands that wrote the conflicting stream spend one of their three
        // tries: with several nodes, one node's stale dispatch must not use up the tries
        // of the results batched with it.
        const retry = accepted.map((a) => a.cmd).filter((cmd) => {
          if (!cmd.changes.some((c) => c.streamId === error.streamId)) return true;
          if (++cmd.attempts < 3) return true;
          cmd.reject(error);
          return false;
        });
        // Before later commands of the same streams, which waited behind this batch.
        this.#pending.unshift(...retry, ...deferred);
      } else if (splitOnFailure && accepted.length > 1) {
        for (const { cmd } of accepted) await this.#write([cmd], false);
        this.#pending.unshift(...deferred);
      } else {
        for (const { cmd } of accepted) cmd.reject(error);
        this.#pending.unshift(...deferred);
      }
    }
  }

  /** Updates {@linkcode EngineCore.committedQueue} with this node's recorded events. */
  #noteCommittedQueue(events: readonly RecordedEvent[]): void {
    let queued = false;
    for (const e of events) {
      if (!e.streamId.startsWith("job-")) continue;
      const jobId = e.streamId.slice(4);
      if (!ENTERS_QUEUE.has(e.type)) {
        this.committedQueue.delete(jobId);
        continue;
      }
      const job = this.jobs.get(jobId);
      this.committedQueue.delete(jobId); // re-inserted last: commit order
      if (!job || job.snapshot.value !== "queued") continue;
      this.committedQueue.set(jobId, {
        job_id: jobId,
        priority: job.snapshot.context.priority,
        queued_at: String(e.data.queued_at ?? e.data.failed_at ?? e.recordedAt.toISOString()),
        position: e.globalPosition,
        not_before: typeof e.data.retry_at === "string" ? e.data.retry_at : null,
        version: e.streamVersion,
      });
      queued = true;
    }
    if (!queued) return;
    for (const listener of this.#committedQueueListeners) {
      try {
        listener();
      } catch (error) {
        console.error("committed-queue listener failed:", error);
      }
    }
  }

  /**
   * Appends; while the database cannot be reached (connection refused or dropped, server
   * restarting: {@linkcode isStoreUnavailable}) sends the same append again after 50 ms,
   * 100 ms… up to 2 s, until it goes through or {@linkcode EngineCore.stopRetrying} is
   * called. Commands wait meanwhile (later ones queue behind), so a database restart
   * delays writes but loses none and leaves nothing half-done; the fixed event ids make a
   * retry of an append that was in fact committed a replay, not a second write.
   */
  async #appendThroughOutage(
    writes: StreamAppend[],
    guard?: (tx: SqlTx) => Promise<void>,
  ): Promise<AppendResult> {
    for (let attempt = 0;; attempt++) {
      try {
        const result = await this.store.append(writes, guard ? { guard } : undefined);
        if (this.storeFailure) {
          console.error("event store reachable again; waiting appends went through");
          this.storeFailure = null;
        }
        return result;
      } catch (error) {
        if (!isStoreUnavailable(error) || !this.#retrying) throw error;
        if (!this.storeFailure) {
          console.error(`event store unreachable, appends wait for it: ${error}`);
        }
        this.storeFailure = error as Error;
        await new Promise<void>((resolve) => {
          const handle = this.clock.setTimeout(() => {
            this.#stopRetrying = null;
            resolve();
          }, Math.min(2000, 50 * 2 ** Math.min(attempt, 6)));
          this.#stopRetrying = () => {
            this.clock.clearTimeout(handle);
            resolve();
          };
        });
      }
    }
  }

  /** Makes appends waiting for an unreachable store fail now, and later ones at once. */
  stopRetrying(): void {
    this.#retrying = false;
    this.#stopRetrying?.();
    this.#stopRetrying = null;
  }

  async #load(streamId: string): Promise<ActorState<typeof jobMachine | typeof robotMachine>> {
    if (!this.#mustRead.has(streamId)) {
      const cached = this.#cached(streamId);
      if (cached) return cached;
      // Every job in the log is folded into memory at start and followed afterwards, so a
      // job stream this node does not hold is new: no read is needed (one round trip per
      // submitted job was the fleet bench's first bottleneck). The append's expected version
      // 0 still decides: when another node wrote the stream first, the conflict marks it to
      // be read.
      if (streamId.startsWith("job-")) return initialState(jobMachine);
    }
    return await this.#read(streamId);
  }

  /** The cached state of an actor's stream, if any. */
  #cached(streamId: string): ActorState<typeof jobMachine | typeof robotMachine> | undefined {
    return streamId.startsWith("job-")
      ? this.jobs.get(streamId.slice(4))
      : this.robots.get(streamId.slice(6));
  }

  /**
   * Reads a stream from the store (not horizon-bound) and caches it, unless the log's
   * events advanced the cache further meanwhile; returns the cached state.
   */
  async #read(streamId: string): Promise<ActorState<typeof jobMachine | typeof robotMachine>> {
    const { state } = await loadActor(this.store, machineOf(streamId), streamId);
    this.#mustRead.delete(streamId);
    const cached = this.#cached(streamId);
    if (cached && cached.version >= state.version) return cached;
    this.#setActor(streamId, state);
    return state;
  }

  /**
   * Snapshots every stream of an append whose version went past a multiple of
   * `snapshotEvery`, in the background (a snapshot is a cache: a failed write is logged).
   */
  #snapshotCrossed(events: readonly RecordedEvent[], base: Map<string, number>): void {
    const every = this.config.snapshotEvery;
    if (!(every > 0)) return;
    const last = new Map<string, RecordedEvent>();
    for (const e of events) last.set(e.streamId, e);
    for (const [streamId, e] of last) {
      if (Math.floor(e.streamVersion / every) <= Math.floor((base.get(streamId) ?? 0) / every)) {
        continue;
      }
      const state = streamId.startsWith("job-")
        ? this.jobs.get(streamId.slice(4))
        : this.robots.get(streamId.slice(6));
      if (state?.version !== e.streamVersion) continue;
      this.#snapshotting = this.#snapshotting
        .then(() => saveActorSnapshot(this.store, machineOf(streamId), streamId, state, e.eventId))
        .catch((error) => console.error(`snapshot of ${streamId} failed:`, error));
    }
  }

  /** Resolves once the snapshots started so far are written (or have failed). */
  snapshotsWritten(): Promise<void> {
    return this.#snapshotting;
  }

  /** Job streams met in a version conflict: the next load reads them from the store. */
  readonly #mustRead = new Set<string>();

  /**
   * Marks a stream another writer got to first: the next command reads it from the store.
   * The cached state stays (it is a true prefix of the stream, and the views show it): the
   * log's events keep advancing it meanwhile. Deleting it left a job unknown to this node
   * for good when no command touched it again (another node completed it).
   */
  #forget(streamId: string): void {
    this.#mustRead.add(streamId);
  }

  #setActor(streamId: string, state: ActorState<typeof jobMachine | typeof robotMachine>): void {
    if (streamId.startsWith("job-")) this.jobs.set(streamId.slice(4), state as JobState);
    else if (streamId.startsWith("robot-")) {
      this.robots.set(streamId.slice(6), state as RobotState);
    }
  }

  /** Applies an event to its actor's cached state, once per stream version. */
  #advanceActor(event: RecordedEvent): void {
    const streamId = event.streamId;
    const isJob = streamId.startsWith("job-");
    if (!isJob && !streamId.startsWith("robot-")) return;
    const actors: Map<string, AnyActorState> = isJob ? this.jobs : this.robots;
    const id = streamId.slice(isJob ? 4 : 6);
    const machine = isJob ? jobMachine : robotMachine;
    const cached = actors.get(id) ?? initialState(machine as AnyMachine);
    if (event.streamVersion <= cached.version) return;
    if (event.streamVersion !== cached.version + 1) {
      // A gap means this node missed writes (another node's): read the stream again, now
      // (the views must not stay behind) and before the next command on it.
      if (!this.#mustRead.has(streamId)) {
        this.#mustRead.add(streamId);
        this.#read(streamId).catch((error) =>
          console.error(`reading ${streamId} after a gap failed (read on next use):`, error)
        );
      }
      return;
    }
    actors.set(id, applyEvent(machine as AnyMachine, cached, event, event.streamVersion));
  }

  /** Feeds events read from the log, in global order, to the actors and projections. */
  applyFromLog(events: readonly RecordedEvent[]): void {
    for (const recorded of events) {
      // The checkpoint moves past every event, folded or not (other categories).
      this.position = recorded.globalPosition;
      this.orgs.apply(recorded);
      const event = upcastEvent(recorded);
      if (event === null) continue;
      this.#advanceActor(event);
      this.queue.apply(event);
      if (this.committedQueue.size > 0 && event.streamId.startsWith("job-")) {
        const committed = this.committedQueue.get(event.streamId.slice(4));
        if (committed && event.streamVersion >= committed.version) {
          this.committedQueue.delete(event.streamId.slice(4));
        }
      }
      this.dashboard.apply(event);
      const org = this.orgs.orgOf(event.streamId);
      let orgDashboard = this.orgDashboards.get(org);
      if (!orgDashboard) this.orgDashboards.set(org, orgDashboard = new DashboardProjection());
      orgDashboard.apply(event);
      if (event.type === "job.completed") {
        const job = this.jobs.get(event.streamId.slice(4))?.snapshot.context;
        const robotId = String((job?.robot_id ?? "") || "");
        if (job?.workflow && robotId) {
          this.lastRobotOfWorkflow.set(job.workflow.workflow_id, robotId);
        }
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        console.error("event listener failed:", error);
      }
    }
  }

  /**
   * The state folded from the log (actors, projections, org index, position), for a
   * start-up checkpoint (`engine/startup_checkpoint.ts`): live references, to be serialised
   * at once, when no command is being decided.
   */
  checkpointState(): unknown {
    return {
      position: this.position,
      jobs: encodeActors(this.jobs),
      robots: encodeActors(this.robots),
      queue: this.queue.checkpointState(),
      dashboard: this.dashboard.checkpointState(),
      orgs: this.orgs.checkpointState(),
      orgDashboards: new Map(
        [...this.orgDashboards].map(([org, d]) => [org, d.checkpointState()]),
      ),
      lastRobotOfWorkflow: this.lastRobotOfWorkflow,
    };
  }

  /** Replaces the folded state with one from {@linkcode EngineCore.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as {
      position: number;
      jobs: EncodedActors;
      robots: EncodedActors;
      queue: unknown;
      dashboard: unknown;
      orgs: unknown;
      orgDashboards: Map<string, unknown>;
      lastRobotOfWorkflow: Map<string, string>;
    };
    const copy = <V>(to: Map<string, V>, from: Map<string, V>) => {
      to.clear();
      for (const [k, v] of from) to.set(k, v);
    };
    this.position = s.position;
    decodeActors(s.jobs, this.jobs);
    decodeActors(s.robots, this.robots);
    this.queue.restoreState(s.queue);
    this.dashboard.restoreState(s.dashboard);
    this.orgs.restoreState(s.orgs);
    this.orgDashboards.clear();
    for (const [org, d] of s.orgDashboards) {
      const projection = new DashboardProjection();
      projection.restoreState(d);
      this.orgDashboards.set(org, projection);
    }
    copy(this.lastRobotOfWorkflow, s.lastRobotOfWorkflow);
  }

  /** Whether a job is finished for good. */
  isTerminal(jobId: string): boolean {
    return TERMINAL_STATUSES.has(this.jobStatus(jobId));
  }
}

function machineOf(streamId: string): typeof jobMachine | typeof robotMachine {
  if (streamId.startsWith("job-")) return jobMachine;
  if (streamId.startsWith("robot-")) return robotMachine;
  throw new TypeError(`No machine for stream ${streamId}`);
}
