/**
 * Which orchestrator nodes of a cluster are alive: each node writes its heartbeat into the
 * table `orchestrator_nodes` every round and reads everyone else's in the same round.
 *
 * Plain statements only (no session state, no LISTEN): it works behind a transaction-mode
 * pooler. Times are the nodes' clocks (milliseconds since the epoch), so nodes' clocks must
 * agree to well within the timeouts compared against them (NTP), as for the leader lease.
 *
 * @module
 */
import type { SqlClient } from "../events/mod.ts";
import { type Clock, systemClock } from "./clock.ts";

/** The node table, created in the first schema of the `search_path` if missing. */
const NODES_TABLE = `create table if not exists orchestrator_nodes (
  node_id text primary key,
  started_at_ms bigint not null,
  heartbeat_at_ms bigint not null
)`;

/** Rows whose heartbeat is older than this are deleted by {@linkcode NodeRegistry.prune}. */
const PRUNE_AFTER_MS = 24 * 3600 * 1000;

/** Options of {@linkcode NodeRegistry}. */
export interface NodeRegistryOptions {
  /** Where the table lives (the orchestrator's PostgreSQL). */
  client: SqlClient;
  /** This node's id, unique in the cluster (a new one per process start). */
  nodeId: string;
  /** Milliseconds between two heartbeats of this node. @default 2000 */
  intervalMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Called after each round (with every node's last heartbeat). */
  onRound?: () => void;
  /** Receives the error of a failed round (the next round tries again). @default console.error */
  onError?: (error: unknown) => void;
}

/**
 * This node's heartbeat row and a view of every node's last heartbeat, refreshed each
 * round (`intervalMs`). A node whose heartbeat is older than a caller's timeout is taken
 * for dead: its robots' connections are gone with it.
 */
export class NodeRegistry {
  readonly nodeId: string;
  readonly intervalMs: number;
  readonly #client: SqlClient;
  readonly #clock: Clock;
  readonly #onRound?: () => void;
  readonly #onError: (error: unknown) => void;
  #heartbeats = new Map<string, number>();
  #startedAt = 0;
  #timer: unknown = null;
  #running = false;
  #round: Promise<void> = Promise.resolve();

  /**
   * @param options Client, node id, interval, clock, callbacks.
   * @throws {TypeError} When `nodeId` is empty.
   * @throws {RangeError} When `intervalMs` is not a positive number.
   */
  constructor(options: NodeRegistryOptions) {
    if (!options.nodeId) throw new TypeError("nodeId must be set");
    const intervalMs = options.intervalMs ?? 2000;
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
    this.nodeId = options.nodeId;
    this.intervalMs = intervalMs;
    this.#client = options.client;
    this.#clock = options.clock ?? systemClock;
    this.#onRound = options.onRound;
    this.#onError = options.onError ?? ((error) => console.error("node registry:", error));
  }

  /**
   * Creates the table if needed, writes the first heartbeat, then one every `intervalMs`.
   * @throws {Error} The driver's error of the first round.
   */
  async start(): Promise<void> {
    await this.#client.query(NODES_TABLE);
    this.#startedAt = this.#clock.now();
    await this.beat();
    this.#running = true;
    this.#schedule();
  }

  /** Stops the heartbeats (the row stays and ages: other nodes then take this one for dead). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round.catch(() => {});
  }

  /**
   * One round: writes this node's heartbeat and reads every node's.
   * @throws {Error} The driver's error.
   */
  async beat(): Promise<void> {
    const now = this.#clock.now();
    await this.#client.query(
      `insert into orchestrator_nodes (node_id, started_at_ms, heartbeat_at_ms)
       values ($1, $2::int8, $3::int8)
       on conflict (node_id) do update set heartbeat_at_ms = excluded.heartbeat_at_ms`,
      [this.nodeId, this.#startedAt || now, now],
    );
    const rows = await this.#client.query<{ node_id: string; heartbeat_at_ms: number }>(
      "select node_id, heartbeat_at_ms from orchestrator_nodes",
    );
    this.#heartbeats = new Map(rows.map((r) => [r.node_id, Number(r.heartbeat_at_ms)]));
    this.#onRound?.();
  }

  /** Deletes the rows of nodes silent for a day (the leader calls it now and then). */
  async prune(): Promise<void> {
    await this.#client.query("delete from orchestrator_nodes where heartbeat_at_ms < $1::int8", [
      this.#clock.now() - PRUNE_AFTER_MS,
    ]);
  }

  /** A node's last heartbeat as of the last round, in ms since the epoch; undefined if unknown. */
  lastHeartbeat(nodeId: string): number | undefined {
    return nodeId === this.nodeId && this.#running
      ? this.#clock.now()
      : this.#heartbeats.get(nodeId);
  }

  /**
   * Whether a node wrote a heartbeat within the last `withinMs` milliseconds (this node:
   * while it runs).
   */
  alive(nodeId: string, withinMs: number): boolean {
    const last = this.lastHeartbeat(nodeId);
    return last !== undefined && this.#clock.now() - last <= withinMs;
  }

  /** Every known node and its last heartbeat (ms since the epoch). */
  nodes(): Map<string, number> {
    return new Map(this.#heartbeats);
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (!this.#running) return;
      this.#round = this.beat().catch((error) => this.#onError(error)).finally(() => {
        if (this.#running) this.#schedule();
      });
    }, this.intervalMs);
  }
}
