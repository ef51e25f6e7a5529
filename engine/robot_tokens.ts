/**
 * Per-robot provisioning tokens: `POST /api/v1/robots` issues a robot its own token, shown
 * once; only its SHA-256 is kept, in the log (stream `robot_token-<robot_id>`):
 * - `robot_token.issued` `{robot_id, name, token_sha256, issued_at}` (a new one replaces the
 *   previous token)
 * - `robot_token.revoked` `{revoked_at, reason}`
 *
 * A robot registers with either the shared robot token or its own active token (which is
 * good for its own `robot_id` only). Tokens are 256-bit random values, so a plain SHA-256 is
 * enough at rest (no password hashing needed: nothing to brute-force).
 *
 * @module
 */
import type { EventStore } from "../events/mod.ts";
import { timingSafeEqual } from "../config/tokens.ts";
import type { Clock } from "./clock.ts";

/** Prefix of the token streams. */
export const ROBOT_TOKEN_STREAM_PREFIX = "robot_token-";

/** A robot's credential as folded from its stream (never the token itself). */
export interface RobotCredential {
  robot_id: string;
  name: string | null;
  /** SHA-256 (hex) of the active token, or null once revoked. */
  token_sha256: string | null;
  issued_at: string;
  revoked_at: string | null;
  stream_version: number;
}

/** A credential as the API shows it. */
export interface RobotCredentialView {
  robot_id: string;
  name: string | null;
  active: boolean;
  issued_at: string;
  revoked_at: string | null;
}

/** Thrown when provisioning a robot that already has an active token (the API answers 409). */
export class RobotAlreadyProvisionedError extends Error {
  override name = "RobotAlreadyProvisionedError";
  readonly robotId: string;
  constructor(robotId: string) {
    super(
      `Robot ${robotId} already has an active token; rotate it with POST /api/v1/robots/${robotId}/token`,
    );
    this.robotId = robotId;
  }
}

/** Thrown for a robot without an active token (the API answers 404). */
export class RobotTokenNotFoundError extends Error {
  override name = "RobotTokenNotFoundError";
  readonly robotId: string;
  constructor(robotId: string) {
    super(`Robot ${robotId} has no active token`);
    this.robotId = robotId;
  }
}

/** SHA-256 of a token, lower-case hex. */
export async function tokenSha256(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@linkcode RobotTokens}. */
export interface RobotTokensOptions {
  store: Pick<EventStore, "append">;
  clock: Clock;
  /** Awaited after each append with its event's global position (read your writes). */
  settled?(position: number): Promise<void>;
}

/** The robots' own tokens; see the module doc. */
export class RobotTokens {
  #options: RobotTokensOptions;
  #credentials = new Map<string, RobotCredential>();

  constructor(options: RobotTokensOptions) {
    this.#options = options;
  }

  /** Applies events read from the log (others are ignored; each event once per version). */
  apply(
    events: Iterable<
      { streamId: string; type: string; data: Record<string, unknown>; streamVersion: number }
    >,
  ): void {
    for (const e of events) {
      if (!e.streamId.startsWith(ROBOT_TOKEN_STREAM_PREFIX)) continue;
      const id = e.streamId.slice(ROBOT_TOKEN_STREAM_PREFIX.length);
      const current = this.#credentials.get(id);
      if (e.streamVersion !== (current?.stream_version ?? 0) + 1) continue;
      const d = e.data;
      if (e.type === "robot_token.issued") {
        this.#credentials.set(id, {
          robot_id: id,
          name: (d.name as string | null) ?? null,
          token_sha256: d.token_sha256 as string,
          issued_at: d.issued_at as string,
          revoked_at: null,
          stream_version: e.streamVersion,
        });
      } else if (current && e.type === "robot_token.revoked") {
        this.#credentials.set(id, {
          ...current,
          token_sha256: null,
          revoked_at: d.revoked_at as string,
          stream_version: e.streamVersion,
        });
      } else if (current) {
        this.#credentials.set(id, { ...current, stream_version: e.streamVersion });
      }
    }
  }

  /**
   * Issues a token for a robot (`robot_token.issued`).
   * @param options `rotate`: replace an active token instead of refusing.
   * @returns the credential and the token, which is never shown again.
   * @throws {TypeError} for a bad `robot_id` | {RobotAlreadyProvisionedError} when it has an
   *   active token and `rotate` is not set | {RobotTokenNotFoundError} when rotating a robot
   *   without an active token.
   */
  async issue(
    robotId: string,
    options: { name?: string | null; rotate?: boolean } = {},
  ): Promise<RobotCredentialView & { token: string }> {
    // The same rule as registration (engine/robot_messages.ts), so every token can be used.
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(robotId)) {
      throw new TypeError(
        "robot_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
      );
    }
    const current = this.#credentials.get(robotId);
    const active = current?.token_sha256 != null;
    if (active && !options.rotate) throw new RobotAlreadyProvisionedError(robotId);
    if (!active && options.rotate) throw new RobotTokenNotFoundError(robotId);
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const token = "rbt_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    await this.#append(robotId, current?.stream_version ?? 0, "robot_token.issued", {
      robot_id: robotId,
      name: options.name ?? current?.name ?? null,
      token_sha256: await tokenSha256(token),
      issued_at: this.#now(),
    });
    return { ...this.get(robotId)!, token };
  }

  /** Revokes a robot's token (`robot_token.revoked`). @throws {RobotTokenNotFoundError} */
  async revoke(robotId: string, reason = "revoked by operator"): Promise<RobotCredentialView> {
    const current = this.#credentials.get(robotId);
    if (!current || current.token_sha256 === null) throw new RobotTokenNotFoundError(robotId);
    await this.#append(robotId, current.stream_version, "robot_token.revoked", {
      revoked_at: this.#now(),
      reason,
    });
    return this.get(robotId)!;
  }

  /** A robot's credential, or undefined when it was never provisioned. */
  get(robotId: string): RobotCredentialView | undefined {
    const c = this.#credentials.get(robotId);
    if (!c) return undefined;
    return {
      robot_id: c.robot_id,
      name: c.name,
      active: c.token_sha256 !== null,
      issued_at: c.issued_at,
      revoked_at: c.revoked_at,
    };
  }

  /** Whether `token` is the active token of `robotId` (compared in constant time). */
  async verify(robotId: string, token: string): Promise<boolean> {
    const expected = this.#credentials.get(robotId)?.token_sha256;
    if (!expected) return false;
    return timingSafeEqual(await tokenSha256(token), expected);
  }

  #now(): string {
    return new Date(this.#options.clock.now()).toISOString();
  }

  async #append(
    robotId: string,
    expectedVersion: number,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    const { events } = await this.#options.store.append([{
      streamId: ROBOT_TOKEN_STREAM_PREFIX + robotId,
      expectedVersion,
      events: [{ type, data, metadata: { schema_version: 1 } }],
    }]);
    this.apply(events);
    await this.#options.settled?.(events[events.length - 1].globalPosition);
  }
}
