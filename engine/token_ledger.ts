/**
 * The machinery shared by robot tokens (`robot_tokens.ts`) and API tokens (`api_tokens.ts`):
 * a credential per stream `<prefix><id>`, folded from `<kind>.issued` (a new one replaces the
 * previous token) and `<kind>.revoked` events. A token is shown once; only its SHA-256 is
 * kept, in the log, so tokens survive restarts and replays and can be audited.
 *
 * Tokens are 256-bit random values, so a plain SHA-256 is enough at rest (no password
 * hashing needed: nothing to brute-force).
 *
 * @module
 */
import type { EventStore } from "../events/mod.ts";
import { timingSafeEqual } from "../config/tokens.ts";
import type { Clock } from "./clock.ts";
import { DEFAULT_ORG } from "./org_index.ts";

/** SHA-256 of a token, lower-case hex. */
export async function tokenSha256(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A credential as folded from its stream (never the token itself). */
export interface Credential {
  id: string;
  name: string | null;
  /** The org the credential belongs to (`default` for events written without one). */
  org_id: string;
  /** Extra facts of the `issued` event (e.g. an API token's `role`). */
  extra: Record<string, unknown>;
  /** SHA-256 (hex) of the active token, or null once revoked. */
  token_sha256: string | null;
  issued_at: string;
  revoked_at: string | null;
  stream_version: number;
}

/** Options of {@linkcode TokenLedger}. */
export interface TokenLedgerOptions {
  store: Pick<EventStore, "append">;
  clock: Clock;
  /** Awaited after each append with its event's global position (read your writes). */
  settled?(position: number): Promise<void>;
}

/** What distinguishes one kind of credential from another. */
export interface TokenKind {
  /** Stream prefix, e.g. `robot_token-`. */
  streamPrefix: string;
  /** Event type prefix, e.g. `robot_token` (events `robot_token.issued`, `.revoked`). */
  eventPrefix: string;
  /** Name of the id field in `issued` events, e.g. `robot_id`. */
  idField: string;
  /** Prefix of the token text, e.g. `rbt_`. */
  tokenPrefix: string;
}

/** Thrown when an id has no active token (the API answers 404). */
export class TokenNotFoundError extends Error {
  override name = "TokenNotFoundError";
  readonly id: string;
  constructor(message: string, id: string) {
    super(message);
    this.id = id;
  }
}

/** A ledger of credentials of one kind; see the module doc. */
export class TokenLedger {
  protected readonly options: TokenLedgerOptions;
  protected readonly kind: TokenKind;
  protected readonly credentials = new Map<string, Credential>();
  #byHash = new Map<string, string>();

  constructor(options: TokenLedgerOptions, kind: TokenKind) {
    this.options = options;
    this.kind = kind;
  }

  /** Applies events read from the log (others are ignored; each event once per version). */
  apply(
    events: Iterable<
      { streamId: string; type: string; data: Record<string, unknown>; streamVersion: number }
    >,
  ): void {
    const { streamPrefix, eventPrefix, idField } = this.kind;
    for (const e of events) {
      if (!e.streamId.startsWith(streamPrefix)) continue;
      const id = e.streamId.slice(streamPrefix.length);
      const current = this.credentials.get(id);
      if (e.streamVersion !== (current?.stream_version ?? 0) + 1) continue;
      const d = e.data;
      if (current?.token_sha256) this.#byHash.delete(current.token_sha256);
      let next: Credential;
      if (e.type === `${eventPrefix}.issued`) {
        const {
          [idField]: _id,
          name,
          org_id,
          token_sha256,
          issued_at,
          ...extra
        } = d;
        next = {
          id,
          name: (name as string | null) ?? null,
          // An entity never changes org: a rotation keeps the first one.
          org_id: current?.org_id ?? (typeof org_id === "string" ? org_id : DEFAULT_ORG),
          extra: { ...current?.extra, ...extra },
          token_sha256: token_sha256 as string,
          issued_at: issued_at as string,
          revoked_at: null,
          stream_version: e.streamVersion,
        };
      } else if (current && e.type === `${eventPrefix}.revoked`) {
        next = {
          ...current,
          token_sha256: null,
          revoked_at: d.revoked_at as string,
          stream_version: e.streamVersion,
        };
      } else if (current) {
        next = { ...current, stream_version: e.streamVersion };
      } else {
        continue;
      }
      this.credentials.set(id, next);
      if (next.token_sha256) this.#byHash.set(next.token_sha256, id);
    }
  }

  /** The credential of an id, or undefined when it was never issued. */
  credential(id: string): Credential | undefined {
    return this.credentials.get(id);
  }

  /** Every credential, in issue order of their streams. */
  all(): Credential[] {
    return [...this.credentials.values()];
  }

  /** The credential whose active token is `token`, else undefined. */
  async findByToken(token: string): Promise<Credential | undefined> {
    const id = this.#byHash.get(await tokenSha256(token));
    return id === undefined ? undefined : this.credentials.get(id);
  }

  /** Whether `token` is the active token of `id` (compared in constant time). */
  async verify(id: string, token: string): Promise<boolean> {
    const expected = this.credentials.get(id)?.token_sha256;
    if (!expected) return false;
    return timingSafeEqual(await tokenSha256(token), expected);
  }

  /**
   * Records a new token for `id` (`<kind>.issued`), replacing an active one.
   * @param fields facts of the event besides the id, hash and time (`name`, `org_id`, …).
   * @returns the token, which is never shown again.
   */
  protected async issueToken(
    id: string,
    fields: Record<string, unknown>,
  ): Promise<string> {
    const current = this.credentials.get(id);
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const token = this.kind.tokenPrefix +
      Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    await this.#append(id, current?.stream_version ?? 0, `${this.kind.eventPrefix}.issued`, {
      [this.kind.idField]: id,
      ...fields,
      token_sha256: await tokenSha256(token),
      issued_at: this.#now(),
    });
    return token;
  }

  /** Records `<kind>.revoked`. @throws {TokenNotFoundError} without an active token. */
  protected async revokeToken(id: string, reason: string, notFound: string): Promise<void> {
    const current = this.credentials.get(id);
    if (!current || current.token_sha256 === null) throw new TokenNotFoundError(notFound, id);
    await this.#append(id, current.stream_version, `${this.kind.eventPrefix}.revoked`, {
      revoked_at: this.#now(),
      reason,
    });
  }

  /**
   * The ledger folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; live references, serialised at once).
   */
  checkpointState(): unknown {
    return { credentials: this.credentials, byHash: this.#byHash };
  }

  /** Replaces the ledger with one from {@linkcode TokenLedger.checkpointState}. */
  restoreState(state: unknown): void {
    const s = state as { credentials: Map<string, Credential>; byHash: Map<string, string> };
    this.credentials.clear();
    for (const [k, v] of s.credentials) this.credentials.set(k, v);
    this.#byHash = s.byHash;
  }

  #now(): string {
    return new Date(this.options.clock.now()).toISOString();
  }

  async #append(
    id: string,
    expectedVersion: number,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    const { events } = await this.options.store.append([{
      streamId: this.kind.streamPrefix + id,
      expectedVersion,
      events: [{ type, data, metadata: { schema_version: 1 } }],
    }]);
    this.apply(events);
    await this.options.settled?.(events[events.length - 1].globalPosition);
  }
}
