/**
 * Authentication and authorisation of the API: who the bearer token is (its org and role),
 * what each role may do, and the org scoping of ids in paths.
 *
 * - **Tokens.** The configured `ORCHESTRATOR_API_TOKEN` is an `admin` of org `default`;
 *   tokens provisioned with `POST /api/v1/tokens` carry the org and role they were issued
 *   with (`engine/api_tokens.ts`). Missing, unknown or revoked: 401.
 * - **Roles** (issue #6): each operation of `openapi_document.ts` names an
 *   {@linkcode Access}; a role outside it gets 403 `forbidden`.
 * - **Orgs.** A path id (`:id`) of a job, robot, workflow, schedule or token of another org
 *   is answered 404 `not_found`, exactly as an unknown id, so existence does not leak. Lists
 *   and streams are filtered by the routes themselves.
 * - A **system admin** (an `admin` of org `default`) may also issue, list and revoke the
 *   tokens of any org: that is how an org is created (its first admin token). It also sees
 *   and acknowledges every org's alerts (the fleet-wide view).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { DEFAULT_ORG, type Orchestrator, type Role } from "../engine/mod.ts";
import { timingSafeEqual } from "../config/tokens.ts";

/** Who a request is. */
export interface Principal {
  org_id: string;
  role: Role;
  /** Id of the provisioned token; null for the configured `ORCHESTRATOR_API_TOKEN`. */
  token_id: string | null;
}

/**
 * What an operation needs:
 * - `public`: no token
 * - `any`: any role but `robot`
 * - `read`: `admin`, `operator`, `viewer`
 * - `log`: the log and audit reads: `admin`, `operator`, `viewer`, `auditor`
 * - `audit`: audit writes (sealing): `admin`, `auditor`
 * - `operate`: `admin`, `operator`
 * - `admin`: `admin`
 * - `system`: fleet-wide figures (`/metrics`): `admin`, `operator`, `viewer` of org `default`
 */
export type Access = "public" | "any" | "read" | "log" | "audit" | "operate" | "admin" | "system";

/** The roles each {@linkcode Access} admits. */
export const ACCESS_ROLES: Record<Access, readonly Role[]> = {
  public: ["admin", "operator", "viewer", "auditor", "robot"],
  any: ["admin", "operator", "viewer", "auditor"],
  read: ["admin", "operator", "viewer"],
  log: ["admin", "operator", "viewer", "auditor"],
  audit: ["admin", "auditor"],
  operate: ["admin", "operator"],
  admin: ["admin"],
  system: ["admin", "operator", "viewer"],
};

/**
 * Calls `fn` once when the API token `tokenId` is revoked (`api_token.revoked` applied from
 * the log): long-lived connections (SSE, `/ws/realtime`) authenticated with it end then, as
 * its REST calls are refused from then on. Nothing for the configured token (`null`).
 * @returns a function that stops watching.
 */
export function onTokenRevoked(
  orch: Orchestrator,
  tokenId: string | null,
  fn: () => void,
): () => void {
  if (tokenId === null) return () => {};
  const stream = `api_token-${tokenId}`;
  const off = orch.core.onEvents((events) => {
    if (events.some((e) => e.streamId === stream && e.type === "api_token.revoked")) {
      off();
      fn();
    }
  });
  return off;
}

/** Whether `principal` may use an operation of `access`. */
export function allowed(access: Access, principal: Principal): boolean {
  if (!ACCESS_ROLES[access].includes(principal.role)) return false;
  return access !== "system" || principal.org_id === DEFAULT_ORG;
}

/** Whether `principal` is an admin of org `default` (may manage every org's tokens). */
export function isSystemAdmin(principal: Principal): boolean {
  return principal.role === "admin" && principal.org_id === DEFAULT_ORG;
}

/**
 * The principal of a bearer token (`Authorization: Bearer <token>`, or `?token=` when
 * `allowQuery`, for `EventSource` which cannot set headers), or null when the token is
 * missing, unknown or revoked. The configured token is compared in constant time.
 */
export async function authenticate(
  c: Context,
  orch: Orchestrator,
  apiToken: string,
  allowQuery = false,
): Promise<Principal | null> {
  const header = c.req.header("authorization");
  let token: string | undefined;
  // The scheme name is case-insensitive (RFC 7235, section 2.1).
  if (header !== undefined) token = /^bearer /i.test(header) ? header.slice(7).trim() : "";
  else if (allowQuery) token = c.req.query("token");
  if (token === undefined || token === "") return null;
  return await principalOf(token, orch, apiToken);
}

/** The principal of a token (see {@linkcode authenticate}), or null. */
export async function principalOf(
  token: string,
  orch: Orchestrator,
  apiToken: string,
): Promise<Principal | null> {
  if (timingSafeEqual(token, apiToken)) {
    return { org_id: DEFAULT_ORG, role: "admin", token_id: null };
  }
  const credential = await orch.apiTokens.findByToken(token);
  if (!credential) return null;
  return {
    org_id: credential.org_id,
    role: credential.extra.role as Role,
    token_id: credential.id,
  };
}

/**
 * Mounts `routes` behind a fixed principal: for testing one group of routes in-process
 * without the app (`createApp` mounts the real middleware instead).
 */
export function withPrincipal(routes: Hono, who: Principal): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    c.set("principal" as never, who as never);
    await next();
  });
  app.route("/", routes);
  return app;
}

/** The principal the auth middleware set on this request. @throws {Error} when none was. */
export function principal(c: Context): Principal {
  const p = c.get("principal" as never) as Principal | undefined;
  if (!p) throw new Error(`No principal on ${c.req.method} ${c.req.path}`);
  return p;
}

/**
 * The stream(s) whose org decides who sees a path id, by the path segment before `:id`.
 * Every `:id` route must name its resource here (the app refuses to start otherwise).
 */
export const ID_RESOURCES: Record<
  string,
  {
    noun: string;
    orgOf(orch: Orchestrator, id: string): string;
    /** A system admin ({@linkcode isSystemAdmin}) reaches this resource of every org. */
    systemAdminAnyOrg?: boolean;
  }
> = {
  jobs: { noun: "Job", orgOf: (o, id) => o.core.orgs.orgOf(`job-${id}`) },
  robots: { noun: "Robot", orgOf: (o, id) => o.core.orgs.robotOrg(id) },
  workflows: { noun: "Workflow", orgOf: (o, id) => o.core.orgs.orgOf(`workflow-${id}`) },
  schedules: { noun: "Schedule", orgOf: (o, id) => o.core.orgs.orgOf(`schedule-${id}`) },
  tokens: {
    noun: "API token",
    orgOf: (o, id) => o.core.orgs.orgOf(`api_token-${id}`),
    systemAdminAnyOrg: true,
  },
  // An alert belongs to the org in its `alert.raised` (the robot's, the job's, or the org
  // whose figures met the threshold; `alerts/alert_state.ts`); the system admin sees and
  // acknowledges every org's (the fleet-wide view).
  alerts: {
    noun: "Alert",
    orgOf: (o, id) => o.core.orgs.orgOf(`alert-${id}`),
    systemAdminAnyOrg: true,
  },
};
