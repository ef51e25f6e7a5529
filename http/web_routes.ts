/**
 * The operator's web dashboard: the page at `/`, its files under `/web/`, the realtime
 * channel (`GET /api/v1/stream`, see `realtime_routes.ts`) and the read endpoints only the
 * dashboard needs (`GET /api/v1/metrics/history`, `GET /api/v1/activity`).
 *
 * Mounted with one `app.route("/", webRoutes(...))` after the app's auth middleware
 * (`auth_middleware.ts`): the page and its files are public (they hold no data), the `/api`
 * routes here are checked by it and answer for the caller's org only. Files are read from the project's `web/` folder (no CDN: the dashboard works
 * without internet access).
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { Orchestrator } from "../engine/mod.ts";
import { HISTORY_RESOLUTION_MS, MetricsHistory } from "../projections/metrics_history.ts";
import { eventJson } from "./app.ts";
import { realtimeRoutes } from "./realtime_routes.ts";
import { principal } from "./auth.ts";
import { DEFAULT_ORG } from "../engine/mod.ts";
import { validQuery } from "./validation.ts";
import { ActivityQuery, HistoryQuery } from "./admin_schemas.ts";

/** Options of {@linkcode webRoutes}. */
export interface WebRoutesOptions {
  orchestrator: Orchestrator;
  /** Bearer token of API clients. */
  apiToken: string;
  /**
   * Folder the dashboard's files are served from.
   * @default the project's `web/` folder
   */
  root?: URL;
  /**
   * Reads a file (the adapter to the runtime); null when it does not exist.
   * @default Deno.readFile, null on NotFound
   */
  readFile?: (url: URL) => Promise<Uint8Array | null>;
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
};

/** Points a history answer holds at most. */
export const MAX_HISTORY_POINTS = 2000;

async function denoReadFile(url: URL): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(url);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.IsADirectory) {
      return null;
    }
    throw error;
  }
}

function badRequest(c: Context, field: string, message: string): Response {
  return c.json({ error: { code: "invalid_request", field, message } }, 400);
}

/** The smallest step (ms, a multiple of the resolution) giving at most `points` points. */
export function stepFor(rangeMs: number, points = 240): number {
  const raw = Math.ceil(rangeMs / points / HISTORY_RESOLUTION_MS) * HISTORY_RESOLUTION_MS;
  return Math.max(HISTORY_RESOLUTION_MS, raw);
}

/**
 * The dashboard's routes:
 * - `GET /` the page; `GET /web/<file>` its scripts, styles and vendored libraries.
 * - `GET /api/v1/stream` the realtime channel (Server-Sent Events).
 * - `GET /api/v1/metrics/history?from=&to=&step=` → `{from, to, step, points}`: jobs
 *   submitted / completed / failed / cancelled, mean execution time (seconds), queue depth,
 *   running jobs, capacity and utilisation (0–1) per step. `from`/`to` RFC 3339 (default the
 *   last hour up to now), `step` seconds, a multiple of 10 (default: at most 240 points);
 *   400 naming the field when invalid or when it would give more than
 *   {@linkcode MAX_HISTORY_POINTS} points.
 * - `GET /api/v1/activity?limit=&robot_id=` → `{events}`: the latest events of the log, or
 *   of one robot's stream (oldest first, `limit` 1–100, default 20; 404 for an unknown robot).
 */
export function webRoutes(options: WebRoutesOptions): Hono {
  const { orchestrator: orch, apiToken } = options;
  const root = options.root ?? new URL("../web/", import.meta.url);
  const readFile = options.readFile ?? denoReadFile;
  const app = new Hono();
  app.route("/", realtimeRoutes({ orchestrator: orch, apiToken }));

  const serveFile = async (c: Context, path: string) => {
    if (!/^([\w-][\w.-]*\/)*[\w-][\w.-]*\.[a-z]+$/.test(path) || path.includes("..")) {
      return c.notFound();
    }
    const type = CONTENT_TYPES[path.slice(path.lastIndexOf(".") + 1)];
    const bytes = type ? await readFile(new URL(path, root)) : null;
    if (!bytes) return c.notFound();
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": type!,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    });
  };
  app.get("/", (c) => serveFile(c, "index.html"));
  app.get("/web/*", (c) => serveFile(c, c.req.path.slice("/web/".length)));

  // The history projections (one per org) follow the log on demand: each request reads
  // what is new.
  const histories = new Map<string, MetricsHistory>();
  const historyOf = (org: string) => {
    let h = histories.get(org);
    if (!h) histories.set(org, h = new MetricsHistory());
    return h;
  };
  let cursor = 0;
  let catchingUp: Promise<void> | null = null;
  const catchUp = (): Promise<void> => {
    catchingUp ??= (async () => {
      try {
        const orgs = new Map<string, string>();
        for (;;) {
          const batch = await orch.core.store.readAll({ after: cursor, limit: 2000 });
          if (batch.length === 0) break;
          for (const e of batch) {
            if (e.streamVersion === 1) {
              const named = (e.data as { org_id?: unknown }).org_id;
              orgs.set(e.streamId, typeof named === "string" ? named : DEFAULT_ORG);
            }
            historyOf(orgs.get(e.streamId) ?? orch.core.orgs.orgOf(e.streamId)).apply(e);
          }
          cursor = batch[batch.length - 1].globalPosition;
        }
      } finally {
        catchingUp = null;
      }
    })();
    return catchingUp;
  };

  app.get("/api/v1/metrics/history", async (c) => {
    const history = () => historyOf(principal(c).org_id);
    const now = orch.core.clock.now();
    const q = validQuery(c, HistoryQuery);
    const to = q.to === undefined ? now : Date.parse(q.to);
    const from = q.from === undefined ? to - 3_600_000 : Date.parse(q.from);
    if (from >= to) return badRequest(c, "from", "from must be before to");
    if (q.step !== undefined && (q.step * 1000) % HISTORY_RESOLUTION_MS !== 0) {
      return badRequest(
        c,
        "step",
        `step must be a multiple of ${HISTORY_RESOLUTION_MS / 1000} seconds, got ${q.step}`,
      );
    }
    const step = q.step === undefined ? stepFor(to - from) : q.step * 1000;
    if ((to - from) / step > MAX_HISTORY_POINTS) {
      return badRequest(c, "step", `at most ${MAX_HISTORY_POINTS} points; use a larger step`);
    }
    await catchUp();
    return c.json({
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      step: step / 1000,
      points: history().series(from, to, step),
    });
  });

  app.get("/api/v1/activity", async (c) => {
    const org = principal(c).org_id;
    const { limit = 20, robot_id: robotId } = validQuery(c, ActivityQuery);
    if (robotId !== undefined) {
      // The tail of one robot's stream: its own log, newest last.
      const version = orch.core.robots.get(robotId)?.version;
      if (version === undefined || orch.core.orgs.robotOrg(robotId) !== org) {
        return c.json(
          { error: { code: "not_found", message: `Robot ${robotId} does not exist` } },
          404,
        );
      }
      const events = await orch.core.store.readStream(`robot-${robotId}`, {
        fromVersion: Math.max(1, version - limit + 1),
      });
      return c.json({ events: events.slice(-limit).map(eventJson) });
    }
    await catchUp();
    return c.json({
      events: historyOf(org).recent(limit).map(eventJson),
      checkpoint: cursor,
    });
  });
  return app;
}
