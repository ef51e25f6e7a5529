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
  jobMachine,
  type JobStatus,
  replay,
  robotMachine,
  type RobotStatus,
  TERMINAL_STATUSES,
} from "../actors/mod.ts";
import {
  type NewEvent,
  type RecordedEvent,
  type SqlEventStore,
  WrongExpectedVersionError,
} from "../events/mod.ts";
import { DashboardProjection, QueueProjection } from "../projections/mod.ts";
import type { Clock } from "./clock.ts";
import { KeyedMutex } from "./keyed_mutex.ts";
import type { LoadBalancingStrategy } from "./robot_pool.ts";

/** Engine configuration. */
export interface EngineConfig {
  /** Time limit of an attempt when neither the job nor the workflow sets one, in seconds. */
  defaultJobTimeout: number;
  /** Seconds between robot heartbeats (sent to robots at registration). */
  heartbeatInterval: number;
  /** Seconds of silence after which a robot is declared lost (server clock). */
  heartbeatTimeout: number;
  /** Seconds a running job's robot has to confirm a cancel before its lease is revoked. */
  cancelGrace: number;
  loadBalancing: LoadBalancingStrategy;
}

/** Default configuration (heartbeat figures after Hatchet: beat often, lost after 30 s). */
export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  defaultJobTimeout: 3600,
  heartbeatInterval: 5,
  heartbeatTimeout: 30,
  cancelGrace: 30,
  loadBalancing: "least_loaded",
};

/** One stream's part of a command: the events the machine must accept, in order. */
export interface Change {
  streamId: string;
  events: { type: string; data: Record<string, unknown> }[];
}

type JobState = ActorState<typeof jobMachine>;
type RobotState = ActorState<typeof robotMachine>;

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
  /** Robot that last completed each workflow (for `affinity`). */
  readonly lastRobotOfWorkflow = new Map<string, string>();
  /** Global position of the last event (in log order) applied to the projections. */
  position = 0;
  #locks = new KeyedMutex();
  #listeners = new Set<EventListener>();

  constructor(store: SqlEventStore, clock: Clock, config: EngineConfig) {
    this.store = store;
    this.clock = clock;
    this.config = config;
  }

  /** Current time as RFC 3339 UTC. */
  nowIso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** Status of a job (`pending` when unknown). */
  jobStatus(jobId: string): JobStatus {
    return (this.jobs.get(jobId)?.snapshot.value ?? "pending") as JobStatus;
  }

  /** Status of a robot (`offline` when unknown). */
  robotStatus(robotId: string): RobotStatus {
    return (this.robots.get(robotId)?.snapshot.value ?? "offline") as RobotStatus;
  }

  /** Registers a listener of applied events; returns its removal function. */
  onEvents(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Decides and appends a command touching one or several streams, atomically.
   * Retries twice after a version conflict (another writer got there first), re-deciding
   * on the fresh state.
   * @throws {InvalidTransitionError} when a machine refuses an event; nothing is written.
   */
  commit(changes: Change[], metadata: Record<string, unknown> = {}): Promise<RecordedEvent[]> {
    const keys = changes.map((c) => c.streamId);
    return this.#locks.run(keys, async () => {
      for (let attempt = 0;; attempt++) {
        const plans = [];
        for (const change of changes) {
          const state = await this.#load(change.streamId);
          const machine = machineOf(change.streamId);
          let current = state as ActorState<typeof machine>;
          for (const e of change.events) {
            const snapshot = decide(machine, change.streamId, current, { ...e.data, type: e.type });
            current = { snapshot, version: current.version + 1 } as typeof current;
          }
          plans.push({ change, expectedVersion: state.version });
        }
        try {
          const result = await this.store.append(plans.map((p) => ({
            streamId: p.change.streamId,
            expectedVersion: p.expectedVersion,
            events: p.change.events.map((e): NewEvent => ({
              type: e.type,
              data: e.data,
              metadata,
            })),
          })));
          for (const e of result.events) this.#advanceActor(e);
          return result.events;
        } catch (error) {
          if (!(error instanceof WrongExpectedVersionError) || attempt >= 2) throw error;
          this.#forget(error.streamId);
        }
      }
    });
  }

  async #load(streamId: string): Promise<ActorState<typeof jobMachine | typeof robotMachine>> {
    const cached = streamId.startsWith("job-")
      ? this.jobs.get(streamId.slice(4))
      : this.robots.get(streamId.slice(6));
    if (cached) return cached;
    const events = await this.store.readStream(streamId);
    const state = replay(machineOf(streamId), events);
    this.#setActor(streamId, state);
    return state;
  }

  #forget(streamId: string): void {
    if (streamId.startsWith("job-")) this.jobs.delete(streamId.slice(4));
    else this.robots.delete(streamId.slice(6));
  }

  #setActor(streamId: string, state: ActorState<typeof jobMachine | typeof robotMachine>): void {
    if (streamId.startsWith("job-")) this.jobs.set(streamId.slice(4), state as JobState);
    else if (streamId.startsWith("robot-")) {
      this.robots.set(streamId.slice(6), state as RobotState);
    }
  }

  /** Applies an event to its actor's cached state, once per stream version. */
  #advanceActor(event: RecordedEvent): void {
    const isJob = event.streamId.startsWith("job-");
    if (!isJob && !event.streamId.startsWith("robot-")) return;
    const machine = machineOf(event.streamId);
    const cached =
      (isJob ? this.jobs.get(event.streamId.slice(4)) : this.robots.get(event.streamId.slice(6))) ??
        initialState(machine);
    if (event.streamVersion <= cached.version) return;
    if (event.streamVersion !== cached.version + 1) {
      // A gap means this node missed writes (another node's); reload on next use.
      this.#forget(event.streamId);
      return;
    }
    this.#setActor(
      event.streamId,
      applyEvent(machine, cached as ActorState<typeof machine>, event, event.streamVersion),
    );
  }

  /** Feeds events read from the log, in global order, to the actors and projections. */
  applyFromLog(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      this.#advanceActor(event);
      this.queue.apply(event);
      this.dashboard.apply(event);
      if (event.type === "job.completed") {
        const job = this.jobs.get(event.streamId.slice(4))?.snapshot.context;
        const robotId = String((job?.robot_id ?? "") || "");
        if (job?.workflow && robotId) {
          this.lastRobotOfWorkflow.set(job.workflow.workflow_id, robotId);
        }
      }
      // The checkpoint is the last event in log order (not the largest position: the
      // gap-safe order is by transaction, see EventStore.readAll).
      this.position = event.globalPosition;
    }
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        console.error("event listener failed:", error);
      }
    }
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
