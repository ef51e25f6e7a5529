/**
 * API tokens with an org and a role, provisioned through the API by admins (stream
 * `api_token-<token_id>`, folded by the shared {@linkcode TokenLedger}):
 * - `api_token.issued` `{token_id, name, org_id, role, token_sha256, issued_at}`
 * - `api_token.revoked` `{revoked_at, reason}`
 *
 * The configured `ORCHESTRATOR_API_TOKEN` is not in the log: it is always an `admin` of org
 * `default` (see `http/auth.ts`).
 *
 * @module
 */
import { checkOrgId } from "./org_index.ts";
import { TokenLedger, type TokenLedgerOptions, TokenNotFoundError } from "./token_ledger.ts";

/** Prefix of the API token streams. */
export const API_TOKEN_STREAM_PREFIX = "api_token-";

/**
 * Roles of API tokens (issue #6): `admin` everything in its org, tokens included;
 * `operator` jobs, robot commands, schedules and workflows; `viewer` reads; `auditor` the
 * log and the audit endpoints only; `robot` the robot WebSocket only.
 */
export const ROLES = ["admin", "operator", "viewer", "auditor", "robot"] as const;

/** One of {@linkcode ROLES}. */
export type Role = typeof ROLES[number];

/** An API token as the API shows it (never the token itself). */
export interface ApiTokenView {
  token_id: string;
  name: string | null;
  org_id: string;
  role: Role;
  active: boolean;
  issued_at: string;
  revoked_at: string | null;
}

/** Thrown for a token id without an active token (the API answers 404). */
export class ApiTokenNotFoundError extends TokenNotFoundError {
  override name = "ApiTokenNotFoundError";
  constructor(tokenId: string) {
    super(`API token ${tokenId} does not exist or is revoked`, tokenId);
  }
}

/** The provisioned API tokens; see the module doc. */
export class ApiTokens extends TokenLedger {
  constructor(options: TokenLedgerOptions) {
    super(options, {
      streamPrefix: API_TOKEN_STREAM_PREFIX,
      eventPrefix: "api_token",
      idField: "token_id",
      tokenPrefix: "oat_",
    });
  }

  /**
   * Issues a new API token (`api_token.issued`) with a random `token_id`.
   * @returns the view and the token, which is never shown again.
   * @throws {TypeError} naming `org_id`, `role` or `name` when invalid.
   */
  async issue(
    input: { org_id: string; role: string; name?: string | null },
  ): Promise<ApiTokenView & { token: string }> {
    checkOrgId(input.org_id);
    if (!(ROLES as readonly string[]).includes(input.role)) {
      throw new TypeError(
        `role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(input.role)}`,
      );
    }
    const tokenId = crypto.randomUUID();
    const token = await this.issueToken(tokenId, {
      name: input.name ?? null,
      org_id: input.org_id,
      role: input.role,
    });
    return { ...this.get(tokenId)!, token };
  }

  /** Revokes a token (`api_token.revoked`). @throws {ApiTokenNotFoundError} */
  async revoke(tokenId: string, reason = "revoked by admin"): Promise<ApiTokenView> {
    const current = this.credentials.get(tokenId);
    if (!current || current.token_sha256 === null) throw new ApiTokenNotFoundError(tokenId);
    await this.revokeToken(tokenId, reason, `API token ${tokenId} is not active`);
    return this.get(tokenId)!;
  }

  /** A token's view, or undefined when never issued. */
  get(tokenId: string): ApiTokenView | undefined {
    const c = this.credentials.get(tokenId);
    if (!c) return undefined;
    return {
      token_id: c.id,
      name: c.name,
      org_id: c.org_id,
      role: c.extra.role as Role,
      active: c.token_sha256 !== null,
      issued_at: c.issued_at,
      revoked_at: c.revoked_at,
    };
  }

  /** The tokens of one org (or of every org), active and revoked, in issue order. */
  list(orgId?: string): ApiTokenView[] {
    return this.all().filter((c) => orgId === undefined || c.org_id === orgId)
      .map((c) => this.get(c.id)!);
  }
}
