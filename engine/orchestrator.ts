/**
 * The orchestrator: the engine's parts wired together, started from the log.
 *
 * Start-up rebuilds every actor and projection from the log (from the latest usable start-up
 * checkpoint plus the events after it, see `startup_checkpoint.ts`), re-arms the
 * deadlines of jobs that were dispatched or running, then follows the log live. Robots the
 * log says were connected get one heartbeat timeout plus the reconnect grace to reconnect
 * before they are declared lost and their jobs requeued.
 *
 * @module
 */
import {
  type RecordedEvent,
  type SqlEventStore,
  subscribeAll,
  subscribeDirect,
  type Subscription,
} from "../events/mod.ts";
import { type DashboardMetrics, DashboardProjection } from "../projections/mod.ts";
import { type Clock, systemClock } from "./clock.ts";
import { Scheduler } from "../schedules/mod.ts";
import { JobCommands } from "./job_commands.ts";
import { JobDispatcher } from "./job_dispatcher.ts";
import { type DrainOptions, drainOrchestrator, type DrainReport } from "./graceful_shutdown.ts";
import { DEFAULT_ENGINE_CONFIG, type EngineConfig, EngineCore } from "./orchestrator_engine.ts";
import { type RobotView, robotView } from "./read_models.ts";
import { RobotSessions } from "./robot_sessions.ts";
import { WorkflowRegistry } from "./workflow_registry.ts";
import { FleetMetrics } from "./fleet_metrics.ts";
import { ROBOT_TOKEN_STREAM_PREFIX, RobotTokens } from "./robot_tokens.ts";
import type { Logger } from "./logger.ts";
import { type AlertConfig, AlertMonitor } from "../alerts/mod.ts";
import { API_TOKEN_STREAM_PREFIX, ApiTokens } from "./api_tokens.ts";
import { DEFAULT_ORG } from "./org_index.ts";
import { ClusterNode, type ClusterOptions, type LeaderHook } from "./cluster.ts";
import {
  captureCheckpoint,
  checkpointCodeVersion,
  type CheckpointPart,
  compressCheckpoint,
  decodeCheckpoint,
} from "./startup_checkpoint.ts";

/** Options of {@linkcode Orchestrator}. */
export interface OrchestratorOptions {
  store: SqlEventStore;
  /** Token robots must present (protocol "Transport"). */
  robotToken: string;
  /** @default systemClock */
  clock?: Clock;
  config?: Partial<EngineConfig>;
  /** Alert thresholds and webhooks (`ALERT_*`). @default DEFAULT_ALERT_CONFIG */
  alerts?: Partial<AlertConfig>;
  /** Where alerts and deliveries are logged. @default silentLogger */
  logger?: Logger;
  /** Sends webhook requests (tests may wrap it). @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Cluster mode (PostgreSQL only): this process is one node of several on the database;
   * work that must happen once runs on the elected leader (`engine/cluster.ts`).
   * @default undefined (a single node, which does everything)
   */
  cluster?: ClusterOptions;
}

/** What {@linkcode Orchestrator.writeShutdownCheckpoint} did. */
export interface ShutdownCheckpointReport {
  /** True when the checkpoint was stored. */
  written: boolean;
  /**
   * `written`, or why not: `checkpoints off` (cluster mode, `checkpointEvery` or the
   * timeout 0, unreadable source, failed read models), `few events` (fewer than
   * `checkpointEvery` since the last checkpoint), `busy` (a command was pending), `timeout`.
   */
  reason: "written" | "checkpoints off" | "few events" | "busy" | "timeout";
  /** The log position it holds the fold up to (the state's position when not written). */
  position: number;
  /** Gzipped size in bytes (0 when not written). */
  bytes: number;
  /** Time from the call to the stored checkpoint, in ms (0 when not written). */
  ms: number;
}

/** The orchestrator engine. */
export class Orchestrator {
  readonly core: EngineCore;
  readonly jobs: JobCommands;
  readonly dispatcher: JobDispatcher;
  readonly sessions: RobotSessions;
  /** The reference's JobScheduler: schedules that submit jobs on their ticks. */
  readonly scheduler: Scheduler;
  /** The workflow catalogue and its deployments (`workflow-<id>` streams). */
  readonly workflows: WorkflowRegistry;
  /** Counters and histograms folded from the log (for `GET /metrics`). */
  readonly metrics: FleetMetrics = new FleetMetrics();
  /** Robots' own provisioning tokens (hashed, in `robot_token-<id>` streams). */
  readonly robotTokens: RobotTokens;
  /** Alerts (`alert-<id>` streams): raised, resolved, delivered to webhooks. */
  readonly alerts: AlertMonitor;
  /** API tokens with an org and a role (hashed, in `api_token-<id>` streams). */
  readonly apiTokens: ApiTokens;
  /** This node of the cluster, in cluster mode; null on a single node. */
  readonly cluster: ClusterNode | null = null;
  #subscription: Subscription | null = null;
  #offAppends: () => void;

  /** The live subscription (after `start()`), e.g. to wait until an event was applied. */
  get subscription(): Subscription | null {
    return this.#subscription;
  }
  #ready = false;
  #absentTimer: unknown = null;
  #sealTimer: unknown = null;
  #failure: Error | null = null;
  #draining = false;

  constructor(options: OrchestratorOptions) {
    const config = { ...DEFAULT_ENGINE_CONFIG, ...options.config };
    this.core = new EngineCore(options.store, options.clock ?? systemClock, config);
    this.sessions = new RobotSessions(this.core, options.robotToken);
    this.dispatcher = new JobDispatcher(this.core, this.sessions);
    this.sessions.attach(this.dispatcher);
    // Dispatch from commits: a job this node queued is planned right after its append.
    this.core.onCommittedQueue(() => {
      if (this.dispatcher.dispatchFromCommits) this.dispatcher.request();
    });
    this.workflows = new WorkflowRegistry({
      store: options.store,
      clock: this.core.clock,
      robotExists: (id, orgId) =>
        this.robot(id) !== undefined &&
        (orgId === undefined || this.core.orgs.orgOf(`robot-${id}`) === orgId),
      orgOf: (streamId) => this.core.orgs.orgOf(streamId),
      settled: (position) => this.settled(position),
      usedBy: (workflowId) => this.scheduler.usedBy(workflowId),
    });
    this.core.onEvents((events) => {
      if (events.length === 0) return;
      this.#sinceCheckpoint += events.length;
      this.#positionEventId = events[events.length - 1].eventId;
    });
    this.core.onEvents((events) => this.workflows.apply(events));
    this.core.onEvents((events) => this.metrics.apply(events));
    this.#offAppends = options.store.observeAppends((o) => this.metrics.observeAppend(o));
    this.alerts = new AlertMonitor({
      store: options.store,
      clock: this.core.clock,
      config: options.alerts,
      random: () => this.core.random(),
      fetch: options.fetch,
      logger: options.logger,
      settled: (position) => this.settled(position),
      // The engine folds the org index before it hands events to listeners.
      orgOf: (streamId) => this.core.orgs.orgOf(streamId),
      leaderFence: () => this.core.leaderFence,
    });
    this.core.onEvents((events) => this.alerts.apply(events));
    this.robotTokens = new RobotTokens({
      store: options.store,
      clock: this.core.clock,
      settled: (position) => this.settled(position),
    });
    this.core.onEvents((events) => this.robotTokens.apply(events));
    this.sessions.ownTokenValid = (id, token) => this.robotTokens.verify(id, token);
    this.apiTokens = new ApiTokens({
      store: options.store,
      clock: this.core.clock,
      settled: (position) => this.settled(position),
    });
    this.core.onEvents((events) => this.apiTokens.apply(events));
    this.sessions.ownTokenOrg = (id) => this.robotTokens.credential(id)?.org_id ?? DEFAULT_ORG;
    this.sessions.robotApiToken = async (token) => {
      const credential = await this.apiTokens.findByToken(token);
      return credential?.extra.role === "robot"
        ? { org_id: credential.org_id, token_id: credential.id }
        : null;
    };
    this.sessions.credentialActive = (stream, sha256) => {
      const [ledger, prefix] = stream.startsWith(API_TOKEN_STREAM_PREFIX)
        ? [this.apiTokens, API_TOKEN_STREAM_PREFIX]
        : [this.robotTokens, ROBOT_TOKEN_STREAM_PREFIX];
      return ledger.credential(stream.slice(prefix.length))?.token_sha256 === sha256;
    };
    // After the token ledgers applied them (listeners run in the order they were added): a
    // revoked or replaced robot token, or a revoked API token, closes the robot connections
    // that registered with it, on whichever node holds them.
    this.core.onEvents((events) => {
      for (const e of events) {
        if (
          e.type === "api_token.revoked" || e.type === "robot_token.revoked" ||
          e.type === "robot_token.issued"
        ) this.sessions.recheckCredential(e.streamId);
      }
    });
    this.sessions.existingRobotOrg = (id) =>
      this.core.robots.get(id)?.snapshot.context.robot_id != null ||
        this.robotTokens.credential(id) !== undefined
        ? this.core.orgs.robotOrg(id)
        : null;
    this.dispatcher.deployedRobots = (id) => this.workflows.deployedRobots(id);
    this.scheduler = new Scheduler({
      store: options.store,
      clock: this.core.clock,
      workflowExists: (id) => this.workflows.exists(id),
      settled: (position) => this.settled(position),
      leaderFence: () => this.core.leaderFence,
      submitJob: async (input) => {
        // A schedule naming a stored workflow runs its published version.
        const stored = !input.workflow && input.workflow_id
          ? this.workflows.resolve(input.workflow_id)
          : null;
        const workflow = input.workflow ?? stored?.content;
        if (!workflow) {
          throw new TypeError(`Schedule ${input.schedule_id} names no workflow`);
        }
        const job = await this.jobs.submit({
          workflow,
          workflow_id: input.workflow_id ?? undefined,
          workflow_name: stored?.name,
          workflow_version: stored ? String(stored.version) : undefined,
          variables: input.variables,
          priority: input.priority,
          robot_id: input.robot_id,
          job_id: input.job_id,
          // A schedule's jobs belong to the schedule's org.
          org_id: this.core.orgs.orgOf(`schedule-${input.schedule_id}`),
        }, { asLeader: true });
        return { job_id: job.job_id };
      },
      jobActive: (jobId) => {
        const job = this.core.jobs.get(jobId);
        return job !== undefined && job.snapshot.context.job_id !== null &&
          !this.core.isTerminal(jobId);
      },
    });
    // The scheduler folds the log as the read models do (replay, then live, this node's and
    // other nodes' events alike): schedules changed elsewhere are armed without a restart.
    this.core.onEvents((events) => this.scheduler.observe(events));
    this.jobs = new JobCommands(this.core, {
      sendCancel: (robotId, jobId, leaseId, reason) =>
        this.sessions.send(robotId, "cancel_job", { job_id: jobId, lease_id: leaseId, reason }),
      armCancelGrace: (jobId, leaseId, graceDeadline) =>
        this.dispatcher.armCancelGrace(jobId, leaseId, graceDeadline),
    });
    if (options.cluster) this.cluster = new ClusterNode(this, options.cluster);
  }

  #leaderHookStops: (() => void)[] = [];

  /**
   * Runs `hook` where work that must happen once belongs (e.g. alert evaluation): on a
   * single node at once (token 0: it is always its own leader) until `stop()`; in cluster
   * mode on the leader only, started with each term and stopped when it ends
   * ({@linkcode ClusterNode.onLeader}).
   * @returns A function that unregisters the hook.
   */
  onLeader(hook: LeaderHook): () => void {
    if (this.cluster) return this.cluster.onLeader(hook);
    const stop = hook({ token: 0, expiresAtMs: Infinity });
    if (typeof stop === "function") this.#leaderHookStops.push(stop);
    return () => {
      const i = typeof stop === "function" ? this.#leaderHookStops.indexOf(stop) : -1;
      if (i >= 0) this.#leaderHookStops.splice(i, 1)[0]();
    };
  }

  /** True once the log has been read and projections follow it. */
  get ready(): boolean {
    return this.#ready && this.#failure === null;
  }

  /** True from the start of a graceful shutdown ({@linkcode Orchestrator.drain}). */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Graceful shutdown: stops the scheduler and dispatch, tells robots, waits up to the
   * drain timeout for running jobs, requeues the rest, then {@linkcode Orchestrator.stop}s.
   * See {@linkcode drainOrchestrator}.
   */
  drain(options: DrainOptions = {}): Promise<DrainReport> {
    this.#draining = true;
    return drainOrchestrator(this, options);
  }

  /** Why the read models stopped following the log, if they did. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** What a start-up checkpoint holds: every component that folds the log, by name. */
  checkpointParts(): Record<string, CheckpointPart> {
    return {
      core: this.core,
      workflows: this.workflows,
      metrics: this.metrics,
      alerts: this.alerts,
      robotTokens: this.robotTokens,
      apiTokens: this.apiTokens,
      scheduler: this.scheduler,
      sessions: this.sessions,
    };
  }

  #checkpointWrite: Promise<void> = Promise.resolve();
  /** The code version checkpoints are keyed by (null: checkpoints off, or not started). */
  #checkpointVersion: string | null = null;
  /** Events applied since the last checkpoint was restored or captured. */
  #sinceCheckpoint = 0;
  /** Id of the event at `core.position` (null before the first). */
  #positionEventId: string | null = null;

  /**
   * How the last start used start-up checkpoints: the position it started folding after
   * (0: the whole log), the events it folded, and whether it wrote a checkpoint.
   */
  startReport: { restoredPosition: number; eventsFolded: number; checkpointWritten: boolean } = {
    restoredPosition: 0,
    eventsFolded: 0,
    checkpointWritten: false,
  };

  /** Resolves once the checkpoint the last start began to write is stored (or failed). */
  checkpointWritten(): Promise<void> {
    return this.#checkpointWrite;
  }

  /**
   * Restores the latest usable start-up checkpoint (single node, checkpoints enabled, state
   * not folded yet). Returns the code version checkpoints are keyed by, or null when they
   * are off.
   */
  async #restoreCheckpoint(): Promise<string | null> {
    if (this.cluster || !(this.core.config.checkpointEvery > 0)) return null;
    const version = await checkpointCodeVersion({ alerts: this.alerts.config });
    if (version === null || this.core.position !== 0) return version;
    let checkpoint = null;
    try {
      checkpoint = await this.core.store.snapshots.loadCheckpoint(version);
    } catch (error) {
      console.error("start-up checkpoint not readable, folding the whole log:", error);
    }
    if (!checkpoint) return version;
    const parts = this.checkpointParts();
    const state = await decodeCheckpoint(checkpoint.data, parts);
    if (!state) {
      console.error("start-up checkpoint does not decode, folding the whole log");
      return version;
    }
    for (const [name, part] of Object.entries(parts)) part.restoreState(state[name]);
    if (this.core.position !== checkpoint.position) {
      throw new Error(
        `start-up checkpoint at ${checkpoint.position} restored position ${this.core.position}`,
      );
    }
    this.startReport.restoredPosition = checkpoint.position;
    this.#positionEventId = checkpoint.eventId;
    this.#sinceCheckpoint = 0;
    return version;
  }

  /** Rebuilds state from the log and starts following it. */
  async start(): Promise<void> {
    const store = this.core.store;
    const checkpointVersion = await this.#restoreCheckpoint();
    this.#checkpointVersion = checkpointVersion;
    let yielded = performance.now();
    let folded = 0;
    let lastEventId: string | null = null;
    for await (const page of store.scanAll({ after: this.core.position })) {
      this.core.applyFromLog(page);
      folded += page.length;
      lastEventId = page[page.length - 1].eventId;
      // Let the server answer (/healthz: 503 "starting") during a long replay, every 50 ms
      // (a timer per page would cost its 4 ms clamp a thousand times per million events).
      if (performance.now() - yielded > 50) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        yielded = performance.now();
      }
    }
    this.startReport.eventsFolded = folded;
    if (
      checkpointVersion !== null && lastEventId !== null &&
      folded >= this.core.config.checkpointEvery
    ) {
      // The state is exactly the fold of the log up to the position now (no command has
      // run yet): serialised at once, written in the background.
      const raw = captureCheckpoint(this.checkpointParts());
      const position = this.core.position;
      const eventId = lastEventId;
      this.#sinceCheckpoint = 0;
      this.#checkpointWrite = compressCheckpoint(raw)
        .then((data) =>
          store.snapshots.saveCheckpoint({
            codeVersion: checkpointVersion,
            position,
            eventId,
            data,
          })
        )
        .then(() => {
          this.startReport.checkpointWritten = true;
        })
        .catch((error) => console.error("start-up checkpoint not written:", error));
    }
    // In cluster mode deadlines, seals, schedule ticks and absent robots are the leader's.
    if (!this.cluster) this.dispatcher.armFromLog();
    // An exclusive store (PGlite) hands over its own appends; others are read back
    // gap-safely, since other processes may write too.
    const onEvents = (events: readonly RecordedEvent[]) => {
      this.core.applyFromLog(events);
      this.dispatcher.request();
    };
    this.#subscription = store.exclusive
      ? subscribeDirect(store, { after: this.core.position, onEvents })
      : subscribeAll(store, {
        after: this.core.position,
        onEvents,
        onError: (error: unknown) => console.error("log subscription:", error),
      });
    this.#subscription.done.catch((error) => {
      // The fold met history it cannot read (or the handler failed): stop serving stale
      // read models rather than skipping events. /healthz reports it.
      this.#failure = error instanceof Error ? error : new Error(String(error));
      console.error("the read models stopped following the log:", this.#failure.message);
    });
    // After a restart every robot's connection dropped without a goodbye: each gets the
    // silence a live robot is allowed plus the grace of a dropped connection. The heartbeat
    // timeout alone is not enough: a robot whose reconnect backoff reached its cap (30 s in
    // the reference robot, the default heartbeat timeout) would lose its running job to
    // another robot by a hair.
    const { heartbeatTimeout, reconnectGrace } = this.core.config;
    if (this.cluster) {
      this.#ready = true;
      await this.cluster.start();
      this.dispatcher.request();
      return;
    }
    this.#absentTimer = this.core.clock.setTimeout(() => {
      this.#absentTimer = null;
      this.#expireAbsentRobots().catch((e) => console.error("absent robots:", e));
    }, (heartbeatTimeout + reconnectGrace) * 1000);
    this.#ready = true;
    this.dispatcher.request();
    this.#scheduleSeal();
    this.alerts.start();
    // After the jobs are replayed, so that a catch-up tick finds the job it already made.
    await this.scheduler.start({ readLog: false });
  }

  /**
   * Starts sealing the log every `sealInterval` seconds (cluster mode: the leader calls it
   * when its term begins).
   */
  startSealing(): void {
    if (this.#sealTimer === null) this.#scheduleSeal();
  }

  /** Stops the periodic seal (cluster mode: the leader's term ended). */
  stopSealing(): void {
    if (this.#sealTimer !== null) this.core.clock.clearTimeout(this.#sealTimer);
    this.#sealTimer = null;
  }

  /** Seals the log every `sealInterval` seconds (a seal writes nothing when nothing changed). */
  #scheduleSeal(): void {
    this.#sealTimer = null;
    const seconds = this.core.config.sealInterval;
    if (!(seconds > 0) || !this.#ready) return;
    const timer = this.core.clock.setTimeout(() => {
      // Cluster mode: the leader's seal runs its fencing check in the seal's transaction.
      const fence = this.core.leaderFence;
      this.core.store.seal(fence ? { guard: (tx) => fence.check(tx) } : {})
        .catch((error) => console.error("periodic seal failed:", error))
        .finally(() => {
          if (this.#sealTimer === timer) this.#scheduleSeal();
        });
    }, seconds * 1000);
    this.#sealTimer = timer;
  }

  async #expireAbsentRobots(): Promise<void> {
    const connected = new Set(this.sessions.connectedRobotIds());
    for (const [robotId, state] of this.core.robots) {
      if (state.snapshot.value !== "offline" && !connected.has(robotId)) {
        await this.sessions.markLost(robotId, "not_reconnected_after_restart");
      }
    }
  }

  /**
   * Asks the event store for its position: null when it answers within `timeoutMs`, else
   * why it did not (for `/healthz`: "degraded" while the database cannot be reached).
   * @param timeoutMs Longest wait in milliseconds. @default 2000
   */
  async storeProblem(timeoutMs = 2000): Promise<string | null> {
    let timer: unknown = null;
    try {
      await Promise.race([
        this.core.store.currentPosition(),
        new Promise((_, reject) => {
          timer = this.core.clock.setTimeout(
            () => reject(new Error(`no answer in ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
      return null;
    } catch (error) {
      return `event store unreachable: ${error instanceof Error ? error.message : error}`;
    } finally {
      if (timer !== null) this.core.clock.clearTimeout(timer);
    }
  }

  /** Stops following the log, closes robot connections and timers (not the store). */
  async stop(): Promise<void> {
    // Appends waiting for an unreachable database give up, so that stopping cannot hang.
    this.core.stopRetrying();
    // A leader hands its lease over at once rather than letting it run out.
    await this.cluster?.stop({ release: true });
    for (const stop of this.#leaderHookStops.splice(0)) stop();
    await this.scheduler.stop();
    await this.alerts.stop();
    this.#ready = false;
    if (this.#absentTimer !== null) this.core.clock.clearTimeout(this.#absentTimer);
    if (this.#sealTimer !== null) this.core.clock.clearTimeout(this.#sealTimer);
    await this.sessions.close();
    for (const jobId of this.core.jobs.keys()) this.dispatcher.disarm(jobId);
    this.dispatcher.stopTimers();
    await this.#subscription?.close();
    this.#subscription = null;
    this.#offAppends();
    await this.#checkpointWrite;
  }

  /**
   * Writes a start-up checkpoint of the state this node stops with, so that the next start
   * folds only what comes after it (otherwise it refolds every event applied since this
   * start). Called by `main.ts` at a graceful shutdown, after {@linkcode Orchestrator.drain}
   * and once the HTTP server has closed, i.e. when nothing in this process decides or appends
   * any more (the caller's promise: appends of workflows, tokens or schedules are not
   * tracked here).
   *
   * It first folds the log's tail that the closed subscription had not applied yet
   * (`scanAll` from `core.position`, as a start does; again while `hasHeldBackEvents`, as
   * the subscription's `caughtUp` waits for an open transaction), so the state is exactly
   * the fold of the log up to its last event, the checkpoint's position; it writes when at least
   * `checkpointEvery` events were applied since the last checkpoint was restored or
   * captured, and no command of the engine is pending or in flight at the capture (checked
   * in the same synchronous step as the capture). Single node only: nothing in cluster mode,
   * with checkpoints off, or after the read models failed.
   *
   * Bounded by `timeoutMs`: the tail fold and the compression are checked against the
   * deadline and the write is raced with what is left; past it one line says the checkpoint
   * was skipped (a write already sent finishes or fails on its own; a checkpoint is only a
   * cache, and the previous one stays until one is stored whole).
   *
   * @param options.timeoutMs Longest time in ms. @default `shutdownCheckpointTimeout` × 1000
   * @param options.log Where the one line about it goes. @default console.log
   * @returns Whether a checkpoint was written, why not, and its position, gzipped size
   *   (bytes) and the time taken (ms).
   * @throws {TypeError} When the orchestrator still follows the log (not stopped).
   * @throws The store's error when the tail cannot be read or the write fails.
   */
  async writeShutdownCheckpoint(
    options: { timeoutMs?: number; log?: (line: string) => void } = {},
  ): Promise<ShutdownCheckpointReport> {
    if (this.#subscription !== null || this.#ready) {
      throw new TypeError("writeShutdownCheckpoint() needs a stopped orchestrator: stop() first");
    }
    const log = options.log ?? console.log;
    const clock = this.core.clock;
    const timeoutMs = options.timeoutMs ?? this.core.config.shutdownCheckpointTimeout * 1000;
    const startedAt = clock.now();
    const deadline = startedAt + timeoutMs;
    const skip = (
      reason: ShutdownCheckpointReport["reason"],
      line?: string,
    ): ShutdownCheckpointReport => {
      if (line) log(`shutdown checkpoint skipped: ${line}`);
      return { written: false, reason, position: this.core.position, bytes: 0, ms: 0 };
    };
    const version = this.#checkpointVersion;
    if (version === null || this.cluster || this.#failure || !(timeoutMs > 0)) {
      return skip("checkpoints off");
    }
    // The tail, until no committed event is held back behind an open transaction (this
    // node's last appends may be; their effects are in the actors already).
    for (let pause = 10, heldBack = false;; pause = Math.min(2 * pause, 200)) {
      for await (const page of this.core.store.scanAll({ after: this.core.position })) {
        this.core.applyFromLog(page);
        if (clock.now() > deadline) break;
      }
      if (clock.now() > deadline) {
        return skip(
          "timeout",
          heldBack
            ? `the log's tail was held back by an open transaction for over ${timeoutMs} ms`
            : `folding the log's tail took over ${timeoutMs} ms`,
        );
      }
      heldBack = await this.core.store.hasHeldBackEvents();
      if (!heldBack) break;
      await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), pause));
    }
    const tailMs = clock.now() - startedAt;
    const every = this.core.config.checkpointEvery;
    if (this.#sinceCheckpoint < every || this.#positionEventId === null) {
      return skip("few events");
    }
    if (!this.core.idle) return skip("busy", "commands were still being decided or appended");
    // Synchronous from the check above: exactly the fold up to `position`.
    const raw = captureCheckpoint(this.checkpointParts());
    const position = this.core.position;
    const eventId = this.#positionEventId;
    const events = this.#sinceCheckpoint;
    const data = await compressCheckpoint(raw);
    if (clock.now() > deadline) {
      return skip("timeout", `capturing the state took over ${timeoutMs} ms`);
    }
    let timer: unknown = null;
    const stored = await Promise.race([
      this.core.store.snapshots.saveCheckpoint({ codeVersion: version, position, eventId, data })
        .then(() => true),
      new Promise<false>((resolve) => {
        timer = clock.setTimeout(() => resolve(false), Math.max(0, deadline - clock.now()));
      }),
    ]).finally(() => clock.clearTimeout(timer));
    if (!stored) return skip("timeout", `writing it took over ${timeoutMs} ms`);
    this.#sinceCheckpoint = 0;
    const ms = clock.now() - startedAt;
    log(
      `shutdown checkpoint written at position ${position} (${events} events since the last ` +
        `one; ${(data.length / 2 ** 20).toFixed(1)} MiB gzipped; ${ms} ms, of which ` +
        `${tailMs} ms folding the log's tail)`,
    );
    return { written: true, reason: "written", position, bytes: data.length, ms };
  }

  /**
   * Resolves when this node applies new events from the log, or when `signal` aborts
   * (never rejects).
   */
  nextEvents(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        off();
        signal.removeEventListener("abort", done);
        resolve();
      };
      const off = this.core.onEvents(done);
      if (signal.aborted) done();
      else signal.addEventListener("abort", done);
    });
  }

  /**
   * Resolves once the read models have applied the event at `position`, or after
   * `timeoutMs` (default 5000 ms) — never rejects: a client is answered either way.
   */
  async settled(position: number, timeoutMs = 5000): Promise<void> {
    await this.#subscription?.waitFor(position, { signal: AbortSignal.timeout(timeoutMs) })
      .catch(() => {});
  }

  /**
   * Pauses or resumes a robot from the API: records `robot.paused` / `robot.resumed` and
   * tells the robot (`pause` / `resume`). A paused robot gets no new job; its running jobs
   * go on.
   * @throws {InvalidTransitionError} when the robot is offline (or already in that state).
   */
  async setRobotPaused(robotId: string, paused: boolean): Promise<void> {
    const at = this.core.nowIso();
    await this.core.commit([{
      streamId: `robot-${robotId}`,
      events: [
        paused
          ? { type: "robot.paused", data: { paused_at: at, reason: "paused by operator" } }
          : { type: "robot.resumed", data: { resumed_at: at } },
      ],
      // Cluster mode: the node holding the robot's socket sends it when another took this.
    }], this.cluster ? { node_id: this.cluster.nodeId } : {});
    this.sessions.send(robotId, paused ? "pause" : "resume", { robot_id: robotId });
    if (!paused) this.dispatcher.request();
  }

  /** Robots known to the log, by robot id; only those of `orgId` when given. */
  robots(orgId?: string): RobotView[] {
    return [...this.core.robots.keys()].sort()
      .filter((id) => orgId === undefined || this.core.orgs.orgOf(`robot-${id}`) === orgId)
      .map((id) => this.robot(id)!).filter(Boolean);
  }

  /** One robot, or undefined when unknown. */
  robot(robotId: string): RobotView | undefined {
    return robotView(this.core, robotId, this.sessions.liveness(robotId));
  }

  /** The reference's DashboardMetrics as of now. */
  dashboard(orgId?: string): DashboardMetrics {
    const projection = orgId === undefined
      ? this.core.dashboard
      : this.core.orgDashboards.get(orgId) ?? new DashboardProjection();
    return projection.metrics(this.core.clock.now());
  }
}
