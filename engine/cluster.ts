/**
 * Cluster mode: several orchestrator nodes on one PostgreSQL database (README, "Scaling
 * out"). Nodes coordinate only through the database:
 *
 * - **Dispatch on every node, for its own robots.** Each node plans the whole fleet — its
 *   robots and the robots of other live nodes (`robot.connected` records the node) — with
 *   the same strategy over the same log, and writes only its own robots' assignments, then
 *   delivers them over its own sockets. Two nodes whose views differ for a moment may both
 *   try to assign a job: the job's stream version decides (optimistic concurrency), the
 *   loser re-reads and moves on, so a job is never assigned twice.
 * - **Work that must happen once runs on the leader** ({@linkcode LeaderElector}: lease row
 *   and fencing token): job deadlines, schedule ticks, seals, requeueing the jobs of robots
 *   whose node died and that did not come back, and the hooks registered with
 *   {@linkcode ClusterNode.onLeader} (alert evaluation). Its writes of deadlines and
 *   requeues carry the fencing check in their append's transaction: a former leader's are
 *   refused.
 * - **Node liveness** ({@linkcode NodeRegistry}): a heartbeat row per node; robots of a node
 *   silent for `nodeTimeoutMs` are left out of every node's plan, and the leader requeues
 *   their jobs once the node has been silent for the heartbeat timeout plus the reconnect
 *   grace, unless they re-registered on another node (with `active_job_ids`) before.
 *
 * PGlite is one process per database: cluster mode needs PostgreSQL.
 *
 * @module
 */
import { TERMINAL_STATUSES } from "../actors/mod.ts";
import type { JobStatus } from "../actors/mod.ts";
import type { RecordedEvent, SqlClient, SqlTx } from "../events/mod.ts";
import type { Clock } from "./clock.ts";
import { checkFence, LeaderElector, type Leadership } from "./leader_election.ts";
import { NodeRegistry } from "./node_registry.ts";
import type { Orchestrator } from "./orchestrator.ts";

/** Name of the orchestrator's election in `leader_leases`. */
export const LEADER_ELECTION = "orchestrator";
/** Stream of `leader.elected` events: one per term, written by the new leader (fenced). */
export const LEADER_STREAM = "leader-orchestrator";

/** Cluster configuration. */
export interface ClusterOptions {
  /**
   * Connection(s) for the lease and node tables: the orchestrator's PostgreSQL, same
   * schema as the events (a small pool of its own). PGlite is refused.
   */
  client: SqlClient;
  /** This node's id, unique in the cluster; a new one per process start is best. */
  nodeId: string;
  /** Leader lease in milliseconds. @default 6000 */
  leaseMs?: number;
  /** Milliseconds between election rounds. @default 2000 */
  renewMs?: number;
  /** Milliseconds between node heartbeats. @default 2000 */
  nodeIntervalMs?: number;
  /**
   * A node silent this long (milliseconds) is taken for dead: its robots leave every
   * node's dispatch plan. @default 3 × nodeIntervalMs
   */
  nodeTimeoutMs?: number;
}

/** A leader-only task: started when a term begins; the function it returns ends it. */
export type LeaderHook = (leadership: Leadership) => (() => void) | void;

/** What the cluster says about this node (for `/healthz` and tests). */
export interface ClusterStatus {
  node_id: string;
  leader: boolean;
  /** Fencing token of this node's term, or null when it is not the leader. */
  leader_token: number | null;
}

/** A default node id: host name, process id and a random suffix. */
export function defaultNodeId(): string {
  let host = "node";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys */ }
  return `${host}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/** One orchestrator node of a cluster. Created by the orchestrator when configured. */
export class ClusterNode {
  readonly nodeId: string;
  readonly elector: LeaderElector;
  readonly registry: NodeRegistry;
  readonly nodeTimeoutMs: number;
  readonly #orch: Orchestrator;
  readonly #clock: Clock;
  #term: Leadership | null = null;
  #hooks = new Set<LeaderHook>();
  #hookStops: (() => void)[] = [];
  #noticed = new Map<string, number>();
  #sweeping = false;
  #stopped = false;
  #termChange: Promise<void> = Promise.resolve();
  /** Leases held by robots whose socket this node holds: job id → robot and lease. */
  #held = new Map<string, { robotId: string; leaseId: string }>();

  /**
   * Wires this node into the orchestrator's parts (sessions record the node id, dispatch
   * plans across nodes, deadlines wait for leadership). Nothing runs before `start()`.
   * @throws {TypeError} When the client is exclusive (PGlite) or `nodeId` is empty.
   */
  constructor(orchestrator: Orchestrator, options: ClusterOptions) {
    if (options.client.exclusive || orchestrator.core.store.exclusive) {
      throw new TypeError("cluster mode needs PostgreSQL: PGlite is one process per database");
    }
    if (!options.nodeId) throw new TypeError("nodeId must be set");
    this.nodeId = options.nodeId;
    this.#orch = orchestrator;
    this.#clock = orchestrator.core.clock;
    const interval = options.nodeIntervalMs ?? 2000;
    this.nodeTimeoutMs = options.nodeTimeoutMs ?? 3 * interval;
    this.registry = new NodeRegistry({
      client: options.client,
      nodeId: this.nodeId,
      intervalMs: interval,
      clock: this.#clock,
      onRound: () => {
        this.#orch.dispatcher.request(); // a node may have died or come: plan again
        if (this.#term) this.#sweepLostRobots();
      },
    });
    this.elector = new LeaderElector({
      client: options.client,
      name: LEADER_ELECTION,
      nodeId: this.nodeId,
      leaseMs: options.leaseMs,
      renewMs: options.renewMs,
      clock: this.#clock,
      onChange: (leadership) => {
        this.#termChange = this.#termChange.then(() => this.#setTerm(leadership))
          .catch((error) => console.error("leader term change failed:", error));
      },
    });
    const { core, sessions, dispatcher } = orchestrator;
    sessions.nodeId = this.nodeId;
    dispatcher.ownsDeadlines = false;
    dispatcher.remoteRobots = () => this.#remoteRobots();
    dispatcher.dispatchFromCommits = false;
    core.leaderFence = {
      check: (tx: SqlTx) =>
        checkFence(tx, {
          name: LEADER_ELECTION,
          nodeId: this.nodeId,
          token: this.#term?.token ?? 0,
          clock: this.#clock,
        }),
      metadata: () => ({ leader_node: this.nodeId, leader_token: this.#term?.token ?? null }),
    };
    core.onEvents((events) => this.#observe(events));
  }

  /** Whether this node is the leader now. */
  get isLeader(): boolean {
    return this.#term !== null && this.elector.leadership !== null;
  }

  /** This node's id and leadership. */
  status(): ClusterStatus {
    return {
      node_id: this.nodeId,
      leader: this.isLeader,
      leader_token: this.isLeader ? this.#term!.token : null,
    };
  }

  /**
   * Registers work that runs only on the leader (e.g. alert evaluation, `engine/alerts.ts`):
   * `hook` is called when a term begins (at once when this node leads already); the
   * function it returns, if any, when the term ends.
   * @returns A function that unregisters the hook (ending it if it runs).
   */
  onLeader(hook: LeaderHook): () => void {
    this.#hooks.add(hook);
    if (this.#term) this.#startHook(hook, this.#term);
    return () => this.#hooks.delete(hook);
  }

  /** Starts the node heartbeat and the campaign for leadership (after the log replay). */
  async start(): Promise<void> {
    await this.registry.start();
    await this.elector.start();
    await this.#termChange;
  }

  /**
   * Stops campaigning and the heartbeat; with `release`, a leader hands the lease over at
   * once (graceful shutdown) instead of letting it run out.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    await this.elector.stop({ release: options.release });
    await this.#termChange;
    await this.#setTerm(null);
    await this.registry.stop();
  }

  /** Robots connected to other live nodes, for the dispatch plan. */
  *#remoteRobots(): Iterable<string> {
    for (const [robotId, state] of this.#orch.core.robots) {
      const status = state.snapshot.value;
      if (status !== "online" && status !== "busy") continue;
      const nodeId = state.snapshot.context.node_id;
      if (nodeId === null || nodeId === this.nodeId) continue;
      if (this.registry.alive(nodeId, this.nodeTimeoutMs)) yield robotId;
    }
  }

  /**
   * Follows the log on every node: hands robots over, delivers what other nodes decided
   * for this node's robots (cancels, deadlines, pause and resume), keeps the leader's
   * deadlines.
   */
  #observe(events: readonly RecordedEvent[]): void {
    const { core, sessions, dispatcher } = this.#orch;
    for (const e of events) {
      const id = e.streamId.slice(e.streamId.indexOf("-") + 1);
      switch (e.type) {
        case "robot.connected":
          if (e.data.node_id !== this.nodeId) sessions.handOver(id);
          else {
            for (const jobId of core.robots.get(id)?.snapshot.context.current_jobs ?? []) {
              const lease = core.jobs.get(jobId)?.snapshot.context.lease_id;
              if (lease) this.#held.set(jobId, { robotId: id, leaseId: lease });
            }
          }
          break;
        case "robot.disconnected":
          // The leader took this node for dead while it still held the robot: let the robot
          // register again, so that the log has it connected.
          if (
            e.metadata.leader_token != null && e.metadata.leader_node !== this.nodeId &&
            e.data.node_id === this.nodeId
          ) sessions.dropTakenForLost(id);
          break;
        case "robot.paused":
        case "robot.resumed":
          // Paused or resumed through another node's API: this node holds the socket.
          if (e.metadata.node_id && e.metadata.node_id !== this.nodeId) {
            sessions.send(id, e.type === "robot.paused" ? "pause" : "resume", { robot_id: id });
          }
          break;
        case "job.dispatched": {
          const robotId = String(e.data.robot_id);
          const lease = String(e.data.lease_id);
          if (sessions.liveness(robotId)) this.#held.set(id, { robotId, leaseId: lease });
          const job = core.jobs.get(id)?.snapshot.context;
          if (this.#term && job?.lease_id === lease && typeof e.data.deadline === "string") {
            dispatcher.armDeadline(id, lease, e.data.deadline);
          }
          break;
        }
        case "job.cancel_requested": {
          const job = core.jobs.get(id)?.snapshot;
          // The leader keeps the cancel's grace deadline, whichever node took the cancel.
          const grace = e.data.grace_deadline;
          if (this.#term && job?.context.lease_id && typeof grace === "string") {
            dispatcher.armCancelGrace(id, job.context.lease_id, grace);
          }
          // A cancel asked on another node: this node holds the robot's socket.
          const robotId = job?.context.robot_id;
          if (robotId && job.context.lease_id && !TERMINAL_STATUSES.has(job.value as JobStatus)) {
            sessions.send(robotId, "cancel_job", {
              job_id: id,
              lease_id: job.context.lease_id,
              reason: String(e.data.reason ?? "cancelled"),
            });
          }
          break;
        }
        case "job.timed_out":
        case "job.retry_scheduled":
        case "job.queued":
        case "job.completed":
        case "job.failed":
        case "job.cancelled": {
          const held = this.#held.get(id);
          this.#held.delete(id);
          // The attempt is over wherever it ended: drop its deadline (and cancel grace) timer.
          dispatcher.disarm(id);
          // The leader revoked the lease (deadline, or the robot taken for lost): the robot
          // this node holds is told to stop, as the leader would if it held the socket.
          if (
            held && e.metadata.leader_token != null && e.data.lease_id === held.leaseId &&
            (e.type === "job.timed_out" || e.type === "job.retry_scheduled")
          ) {
            sessions.send(held.robotId, "cancel_job", {
              job_id: id,
              lease_id: held.leaseId,
              reason: "timeout",
            });
          }
          break;
        }
      }
    }
  }

  async #setTerm(leadership: Leadership | null): Promise<void> {
    if (this.#stopped && leadership !== null) return;
    if (this.#term && leadership?.token === this.#term.token) return;
    if (this.#term) await this.#endTerm();
    if (leadership) await this.#beginTerm(leadership);
  }

  async #beginTerm(leadership: Leadership): Promise<void> {
    const { core, dispatcher, scheduler } = this.#orch;
    this.#term = leadership;
    console.log(`node ${this.nodeId} is the leader (fencing token ${leadership.token})`);
    dispatcher.ownsDeadlines = true;
    dispatcher.armFromLog();
    await core.store.append([{
      streamId: LEADER_STREAM,
      expectedVersion: "any",
      events: [{
        type: "leader.elected",
        data: { node_id: this.nodeId, token: leadership.token, elected_at: core.nowIso() },
      }],
    }], { guard: (tx) => core.leaderFence!.check(tx) }).catch((error) =>
      console.error("leader.elected not recorded:", error)
    );
    this.#orch.startSealing();
    await scheduler.start({ readLog: false }).catch((error) =>
      console.error("scheduler start on the leader failed:", error)
    );
    this.registry.prune().catch(() => {});
    for (const hook of this.#hooks) this.#startHook(hook, leadership);
    this.#sweepLostRobots();
  }

  async #endTerm(): Promise<void> {
    const { dispatcher, scheduler } = this.#orch;
    console.log(`node ${this.nodeId} is no longer the leader`);
    this.#term = null;
    dispatcher.ownsDeadlines = false;
    dispatcher.disarmDeadlines();
    this.#orch.stopSealing();
    for (const stop of this.#hookStops.splice(0)) {
      try {
        stop();
      } catch (error) {
        console.error("leader hook stop failed:", error);
      }
    }
    this.#noticed.clear();
    await scheduler.stop();
  }

  #startHook(hook: LeaderHook, leadership: Leadership): void {
    try {
      const stop = hook(leadership);
      if (typeof stop === "function") this.#hookStops.push(stop);
    } catch (error) {
      console.error("leader hook failed:", error);
    }
  }

  /**
   * Leader: requeues the jobs of robots the log has connected to a node that has been
   * silent for the heartbeat timeout plus the reconnect grace (or, for a robot with no
   * recorded node, that long since this leader noticed it), and records them offline.
   */
  #sweepLostRobots(): void {
    if (this.#sweeping || !this.#term) return;
    this.#sweeping = true;
    this.#sweep().catch((error) => console.error("lost robots sweep:", error))
      .finally(() => (this.#sweeping = false));
  }

  async #sweep(): Promise<void> {
    const { core, dispatcher } = this.#orch;
    const { heartbeatTimeout, reconnectGrace } = core.config;
    const limitMs = (heartbeatTimeout + reconnectGrace) * 1000;
    const now = this.#clock.now();
    const lost: [string, string | null][] = [];
    for (const [robotId, state] of core.robots) {
      if (state.snapshot.value === "offline") {
        this.#noticed.delete(robotId);
        continue;
      }
      const nodeId = state.snapshot.context.node_id;
      // This node's robots are its sessions' business (heartbeats, reconnect grace).
      if (nodeId === this.nodeId || (nodeId && this.registry.alive(nodeId, this.nodeTimeoutMs))) {
        this.#noticed.delete(robotId);
        continue;
      }
      const since = (nodeId ? this.registry.lastHeartbeat(nodeId) : undefined) ??
        this.#noticed.get(robotId) ?? now;
      if (!this.#noticed.has(robotId)) this.#noticed.set(robotId, since);
      if (now - since >= limitMs) lost.push([robotId, nodeId]);
    }
    for (const [robotId, nodeId] of lost) {
      if (!this.#term) return;
      const ctx = core.robots.get(robotId)?.snapshot.context;
      if (!ctx || ctx.node_id !== nodeId) continue;
      const reason = nodeId ? `node_lost: ${nodeId}` : "not_reconnected";
      for (const jobId of [...ctx.current_jobs]) {
        const job = core.jobs.get(jobId)?.snapshot;
        const status = job?.value as JobStatus | undefined;
        if (job?.context.robot_id !== robotId) continue;
        if (status !== "dispatched" && status !== "running") continue;
        await dispatcher.releaseLease(jobId, robotId, `robot_lost: ${reason}`, { asLeader: true })
          .catch((error) => console.error(`requeue of ${jobId} failed:`, error));
      }
      await core.commit(
        [{
          streamId: `robot-${robotId}`,
          events: [{
            type: "robot.disconnected",
            data: { disconnected_at: core.nowIso(), reason, node_id: nodeId },
          }],
        }],
        {},
        { asLeader: true },
      ).catch((error) => console.error(`robot ${robotId} not recorded lost:`, error));
      this.#noticed.delete(robotId);
    }
    if (lost.length) dispatcher.request();
  }
}
