/**
 * Per-robot provisioning tokens: `POST /api/v1/robots` issues a robot its own token, shown
 * once; only its SHA-256 is kept, in the log (stream `robot_token-<robot_id>`, folded by the
 * shared {@linkcode TokenLedger}):
 * - `robot_token.issued` `{robot_id, name, org_id, token_sha256, issued_at}` (a new one
 *   replaces the previous token; the org is the provisioning token's)
 * - `robot_token.revoked` `{revoked_at, reason}`
 *
 * A robot registers with either the shared robot token (org `default`), an API token of role
 * `robot`, or its own active token (which is good for its own `robot_id` only); the robot
 * then belongs to that token's org.
 *
 * @module
 */
import { DEFAULT_ORG } from "./org_index.ts";
import { TokenLedger, type TokenLedgerOptions, TokenNotFoundError } from "./token_ledger.ts";

export { tokenSha256 } from "./token_ledger.ts";

/** Prefix of the token streams. */
export const ROBOT_TOKEN_STREAM_PREFIX = "robot_token-";

/** A credential as the API shows it. */
export interface RobotCredentialView {
  robot_id: string;
  name: string | null;
  org_id: string;
  active: boolean;
  issued_at: string;
  revoked_at: string | null;
}

/**
 * Thrown when provisioning a robot id that is taken (the API answers 409): one of the
 * caller's org with an active token, or any robot of another org (robot ids are global). The
 * message is the same in both cases, so it does not tell another org's robot from one's own.
 */
export class RobotAlreadyProvisionedError extends Error {
  override name = "RobotAlreadyProvisionedError";
  readonly robotId: string;
  constructor(robotId: string) {
    super(
      `Robot id ${robotId} is taken (robot ids are unique across organisations); choose another, or rotate the token of a robot of yours with POST /api/v1/robots/${robotId}/token`,
    );
    this.robotId = robotId;
  }
}

/** Thrown for a robot without an active token (the API answers 404). */
export class RobotTokenNotFoundError extends TokenNotFoundError {
  override name = "RobotTokenNotFoundError";
  readonly robotId: string;
  constructor(robotId: string) {
    super(`Robot ${robotId} has no active token`, robotId);
    this.robotId = robotId;
  }
}

/** Options of {@linkcode RobotTokens}. */
export type RobotTokensOptions = TokenLedgerOptions;

/** The robots' own tokens; see the module doc. */
export class RobotTokens extends TokenLedger {
  constructor(options: RobotTokensOptions) {
    super(options, {
      streamPrefix: ROBOT_TOKEN_STREAM_PREFIX,
      eventPrefix: "robot_token",
      idField: "robot_id",
      tokenPrefix: "rbt_",
    });
  }

  /**
   * Issues a token for a robot (`robot_token.issued`).
   * @param options `rotate`: replace an active token instead of refusing; `org_id`: the org
   *   of a new robot (default `default`; a rotation keeps the robot's org).
   * @returns the credential and the token, which is never shown again.
   * @throws {TypeError} for a bad `robot_id` | {RobotAlreadyProvisionedError} when it has an
   *   active token and `rotate` is not set | {RobotTokenNotFoundError} when rotating a robot
   *   without an active token.
   */
  async issue(
    robotId: string,
    options: { name?: string | null; rotate?: boolean; org_id?: string } = {},
  ): Promise<RobotCredentialView & { token: string }> {
    const current = this.credentials.get(robotId);
    const active = current?.token_sha256 != null;
    // First: rotating the token of a robot that has none (a malformed id never has one) is
    // "not found", not a bad id.
    if (!active && options.rotate) throw new RobotTokenNotFoundError(robotId);
    // The same rule as registration (engine/robot_messages.ts), so every token can be used.
    if (!/^[A-Za-z0-9._:-]{1,128}$/.test(robotId)) {
      throw new TypeError(
        "robot_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
      );
    }
    if (active && !options.rotate) throw new RobotAlreadyProvisionedError(robotId);
    const token = await this.issueToken(robotId, {
      name: options.name ?? current?.name ?? null,
      org_id: current?.org_id ?? options.org_id ?? DEFAULT_ORG,
    });
    return { ...this.get(robotId)!, token };
  }

  /** Revokes a robot's token (`robot_token.revoked`). @throws {RobotTokenNotFoundError} */
  async revoke(robotId: string, reason = "revoked by operator"): Promise<RobotCredentialView> {
    const current = this.credentials.get(robotId);
    if (!current || current.token_sha256 === null) throw new RobotTokenNotFoundError(robotId);
    await this.revokeToken(robotId, reason, `Robot ${robotId} has no active token`);
    return this.get(robotId)!;
  }

  /** A robot's credential, or undefined when it was never provisioned. */
  get(robotId: string): RobotCredentialView | undefined {
    const c = this.credentials.get(robotId);
    if (!c) return undefined;
    return {
      robot_id: c.id,
      name: c.name,
      org_id: c.org_id,
      active: c.token_sha256 !== null,
      issued_at: c.issued_at,
      revoked_at: c.revoked_at,
    };
  }
}
