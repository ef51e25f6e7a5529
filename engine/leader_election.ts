/**
 * Leader election through PostgreSQL: a lease row per election with a fencing token that
 * grows by one at every change of leader. Work that must happen once in a cluster of
 * orchestrator nodes (schedule ticks, deadlines, seals, requeueing the robots of dead
 * nodes) runs on the leader (`engine/cluster.ts`; README, "Scaling out").
 *
 * Only plain transactions: no session advisory lock and no LISTEN, so it works behind a
 * transaction-mode pooler too.
 *
 * @module
 */

import type { SqlClient, SqlTx } from "../events/mod.ts";
import { type Clock, systemClock } from "./clock.ts";

/** The lease table, created in the first schema of the `search_path` if missing. */
const LEASES_TABLE = `create table if not exists leader_leases (
  name text primary key,
  holder text not null,
  token bigint not null check (token > 0),
  expires_at_ms bigint not null
)`;

/** A node's term as leader. */
export interface Leadership {
  /** Fencing token of the term: larger than every earlier term's. */
  token: number;
  /** When the lease runs out unless renewed, in milliseconds since the epoch (the clock's). */
  expiresAtMs: number;
}

/** Options of {@linkcode LeaderElector}. */
export interface LeaderElectorOptions {
  /** Where the lease row lives (PostgreSQL, or PGlite for a single process). */
  client: SqlClient;
  /** What is elected, e.g. `dispatch`; one row per name. */
  name: string;
  /** This node's id, unique among the candidates (e.g. host and process id). */
  nodeId: string;
  /**
   * Lease length in milliseconds: a leader that stops renewing loses the lease this long
   * after its last renewal. Every node's clock must agree to well within it (NTP).
   * @default 6000
   */
  leaseMs?: number;
  /**
   * Milliseconds between two rounds (renewal by the leader, attempt by the others). A dead
   * leader is replaced at most `leaseMs + renewMs` after its last renewal.
   * @default 2000
   */
  renewMs?: number;
  /** Time and timers. @default systemClock */
  clock?: Clock;
  /** Called when this node becomes leader (with its term) or stops being it (null). */
  onChange?: (leadership: Leadership | null) => void;
  /** Receives the error of a failed round (the next round tries again). @default console.error */
  onError?: (error: unknown) => void;
}

/**
 * Thrown by {@linkcode runFenced} when the caller's term is over: another node took the
 * lease (a larger token), or the caller's lease ran out.
 */
export class FencedError extends Error {
  override name = "FencedError";
  /** The election. */
  readonly election: string;
  /** The token the caller presented. */
  readonly token: number;
  /** The lease's current token and holder (null when there is no lease row). */
  readonly currentToken: number | null;
  readonly currentHolder: string | null;

  constructor(
    election: string,
    token: number,
    current: { token: number; holder: string } | null,
    why: string,
  ) {
    super(
      `Write of election ${election} with fencing token ${token} refused: ${why}` +
        (current ? ` (lease: token ${current.token}, holder ${current.holder})` : ""),
    );
    this.election = election;
    this.token = token;
    this.currentToken = current?.token ?? null;
    this.currentHolder = current?.holder ?? null;
  }
}

/**
 * Creates the `leader_leases` table if missing.
 * @throws {Error} The driver's error.
 */
export async function migrateLeaderLeases(client: SqlClient): Promise<void> {
  await client.query(LEASES_TABLE);
}

/**
 * Campaigns for leadership of one election, renewing while it holds the lease.
 *
 * Each round is one statement: insert the lease row, or renew it when this node holds it
 * and it has not run out, or take it over when it has run out, with `token + 1`. So at
 * any clock time at most one node holds an unexpired lease, and each new term has a larger
 * token. A node that stops (crash, SIGKILL, long pause) stops renewing; another takes over
 * once the lease has run out.
 *
 * @example Two nodes, one leader
 * ```ts
 * import { createPgliteClient } from "../events/mod.ts";
 * import { LeaderElector } from "./leader_election.ts";
 * const client = await createPgliteClient({ dataDir: "memory://" });
 * const a = new LeaderElector({ client, name: "dispatch", nodeId: "a" });
 * const b = new LeaderElector({ client, name: "dispatch", nodeId: "b" });
 * await a.start();
 * await b.start();
 * console.log(a.leadership?.token, b.leadership); // 1 null
 * await a.stop({ release: true });
 * await b.stop();
 * await client.close();
 * ```
 */
export class LeaderElector {
  readonly #client: SqlClient;
  readonly #name: string;
  readonly #nodeId: string;
  readonly #leaseMs: number;
  readonly #renewMs: number;
  readonly #clock: Clock;
  readonly #onChange?: (leadership: Leadership | null) => void;
  readonly #onError: (error: unknown) => void;
  #leadership: Leadership | null = null;
  #timer: unknown = null;
  #running = false;
  #round: Promise<unknown> = Promise.resolve();

  /**
   * @param options Client, election name, node id, timing, clock, callbacks.
   * @throws {RangeError} When `leaseMs` or `renewMs` is not a positive number, or
   *   `renewMs` is not below `leaseMs`.
   * @throws {TypeError} When `name` or `nodeId` is empty.
   */
  constructor(options: LeaderElectorOptions) {
    const { leaseMs = 6000, renewMs = 2000 } = options;
    if (!(leaseMs > 0) || !(renewMs > 0) || renewMs >= leaseMs) {
      throw new RangeError(
        `leaseMs and renewMs must be positive with renewMs < leaseMs, got ${leaseMs} and ` +
          `${renewMs}`,
      );
    }
    if (!options.name || !options.nodeId) throw new TypeError("name and nodeId must be set");
    this.#client = options.client;
    this.#name = options.name;
    this.#nodeId = options.nodeId;
    this.#leaseMs = leaseMs;
    this.#renewMs = renewMs;
    this.#clock = options.clock ?? systemClock;
    this.#onChange = options.onChange;
    this.#onError = options.onError ?? ((error) => console.error("leader election:", error));
  }

  /**
   * This node's term, while its lease has not run out on this node's clock; null otherwise
   * (also between a missed renewal and the takeover by another node).
   */
  get leadership(): Leadership | null {
    const held = this.#leadership;
    return held && this.#clock.now() < held.expiresAtMs ? held : null;
  }

  /** Creates the table if needed, runs a first round, then one every `renewMs`. */
  async start(): Promise<void> {
    await migrateLeaderLeases(this.#client);
    this.#running = true;
    await this.#tick();
  }

  /**
   * Stops campaigning. With `release`, a leader also gives the lease up at once (its row
   * expires now), so another node takes over at its next round instead of after `leaseMs`.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.#running = false;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round.catch(() => {});
    if (options.release && this.#leadership) {
      await this.#client.query(
        `update leader_leases set expires_at_ms = $3::int8
         where name = $1 and holder = $2 and token = $4::int8`,
        [this.#name, this.#nodeId, this.#clock.now(), this.#leadership.token],
      );
    }
    this.#set(null);
  }

  /** Resolves when the round in flight (if any) has finished. For tests and shutdown. */
  async idle(): Promise<void> {
    await this.#round.catch(() => {});
  }

  /**
   * One round: acquire, renew or take over the lease.
   * @returns This node's term, or null when another node holds an unexpired lease.
   * @throws {Error} The driver's error.
   */
  async campaign(): Promise<Leadership | null> {
    const now = this.#clock.now();
    const rows = await this.#client.query<{ token: number; expires_at_ms: number }>(
      `insert into leader_leases as l (name, holder, token, expires_at_ms)
       values ($1, $2, 1, $4::int8)
       on conflict (name) do update set
         holder = excluded.holder,
         token = case when l.holder = excluded.holder and l.expires_at_ms > $3::int8
           then l.token else l.token + 1 end,
         expires_at_ms = excluded.expires_at_ms
       where (l.holder = excluded.holder and l.expires_at_ms > $3::int8)
          or l.expires_at_ms <= $3::int8
       returning token, expires_at_ms`,
      [this.#name, this.#nodeId, now, now + this.#leaseMs],
    );
    const leadership = rows[0]
      ? { token: Number(rows[0].token), expiresAtMs: Number(rows[0].expires_at_ms) }
      : null;
    this.#set(leadership);
    return leadership;
  }

  async #tick(): Promise<void> {
    this.#timer = null;
    if (!this.#running) return;
    const round = this.campaign().catch((error) => {
      if (this.leadership === null) this.#set(null);
      this.#onError(error);
    });
    this.#round = round;
    await round;
    if (this.#running) this.#timer = this.#clock.setTimeout(() => this.#tick(), this.#renewMs);
  }

  #set(next: Leadership | null): void {
    const before = this.#leadership;
    this.#leadership = next;
    if ((before?.token ?? null) !== (next?.token ?? null)) this.#onChange?.(next);
  }
}

/** Options of {@linkcode runFenced}. */
export interface RunFencedOptions {
  /** The election. */
  name: string;
  /** The caller's node id. */
  nodeId: string;
  /** The caller's fencing token (its `Leadership.token`). */
  token: number;
  /** Time of the check (the lease must not have run out). @default systemClock */
  clock?: Clock;
}

/**
 * Runs `fn` in a transaction only while the caller still holds the lease with `token`: the
 * transaction first reads the lease row `FOR SHARE` (a takeover, which updates the row,
 * waits until this transaction ends) and refuses when the token or holder differ or the
 * lease has run out. So a former leader that comes back from a pause cannot write as
 * leader: everything `fn` writes commits only under a current term.
 *
 * @param client Where the lease row and the written tables live.
 * @param options Election, node id, token, clock.
 * @param fn The leader's writes.
 * @returns What `fn` resolved to.
 * @throws {FencedError} When the term is over; nothing of `fn` ran.
 * @throws {Error} What `fn` threw, after the rollback.
 */
export async function runFenced<T>(
  client: SqlClient,
  options: RunFencedOptions,
  fn: (tx: SqlTx) => Promise<T>,
): Promise<T> {
  return await client.transaction(async (tx) => {
    await checkFence(tx, options);
    return await fn(tx);
  });
}

/**
 * The check of {@linkcode runFenced}, inside a transaction the caller runs (e.g. as the
 * `guard` of an event store append): reads the lease row `FOR SHARE`, so a takeover waits
 * until that transaction ends, and throws when the caller's term is over.
 *
 * @param tx An open transaction on the database of the lease table.
 * @param options Election, node id, token, clock.
 * @throws {FencedError} When there is no lease, another term has begun (token or holder
 *   differ) or the lease has run out on the caller's clock.
 */
export async function checkFence(tx: SqlTx, options: RunFencedOptions): Promise<void> {
  const { name, nodeId, token } = options;
  const now = (options.clock ?? systemClock).now();
  const [lease] = await tx.query<{ holder: string; token: number; expires_at_ms: number }>(
    "select holder, token, expires_at_ms from leader_leases where name = $1 for share",
    [name],
  );
  const current = lease ? { token: Number(lease.token), holder: lease.holder } : null;
  if (!lease) throw new FencedError(name, token, null, "there is no lease");
  if (current!.token !== token || lease.holder !== nodeId) {
    throw new FencedError(name, token, current, "another term has begun");
  }
  if (Number(lease.expires_at_ms) <= now) {
    throw new FencedError(name, token, current, "the lease has run out");
  }
}
